/*
 * query.c - the query grammar of a list (SPEC §7, PostgREST's): filters ?col=[not.]op.value,
 * order, select, embed, limit and cursor. Columns and relations are looked up in the
 * description; nothing of the request reaches SQL but bound values.
 */
#include "resource/resource.h"

#include "core/hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    enum res_op op;
} ops[] = {{"eq", RES_EQ}, {"neq", RES_NEQ},   {"lt", RES_LT},     {"lte", RES_LTE},
           {"gt", RES_GT}, {"gte", RES_GTE},   {"like", RES_LIKE}, {"ilike", RES_ILIKE},
           {"in", RES_IN}, {"is", RES_IS_NULL}};

static unsigned long long hash64(unsigned long long h, const char *s)
{
    return td_hash64_byte(td_hash64_str(h, s), 0xff);
}

/* A column a request may name: exists and is not private. */
static int visible_col(const struct res_table *t, const char *name)
{
    int c = res_col_find(t, name);
    return c >= 0 && !t->cols[c].is_private ? c : -1;
}

static int scalar_col(const struct res_col *c)
{
    return !c->is_array && c->kind != RES_JSON;
}

/* like/ilike: * is the wildcard; %, _ and \ of the value are literal. */
static const char *like_pattern(struct td_arena *a, const char *v)
{
    char *p = td_arena_alloc(a, 2 * strlen(v) + 1), *w = p;
    for (; *v; v++) {
        if (*v == '%' || *v == '_' || *v == '\\')
            *w++ = '\\';
        *w++ = *v == '*' ? '%' : *v;
    }
    *w = '\0';
    return p;
}

/* in.(a,b,"c,d") into an array literal {"a","b","c,d"}, each item checked for c. */
static int in_list(const struct res_col *c, const char *v, struct td_arena *a, const char **out)
{
    size_t n = strlen(v);
    if (n < 2 || v[0] != '(' || v[n - 1] != ')')
        return -1;
    char *lit = td_arena_alloc(a, 4 * n + 4), *w = lit;
    char *item = td_arena_alloc(a, n + 1);
    *w++ = '{';
    const char *p = v + 1, *end = v + n - 1;
    int count = 0;
    while (p <= end) {
        size_t k = 0;
        if (*p == '"') {
            for (p++; p < end && *p != '"'; p++)
                item[k++] = (*p == '\\' && p + 1 < end) ? *++p : *p;
            if (p >= end)
                return -1;
            p++;
        } else {
            while (p < end && *p != ',')
                item[k++] = *p++;
        }
        item[k] = '\0';
        if (p < end && *p != ',')
            return -1;
        p++;
        if (res_value_text_ok(c, item) < 0 || ++count > 100)
            return -1;
        if (count > 1)
            *w++ = ',';
        *w++ = '"';
        for (size_t i = 0; i < k; i++) {
            if (item[i] == '"' || item[i] == '\\')
                *w++ = '\\';
            *w++ = item[i];
        }
        *w++ = '"';
    }
    *w++ = '}';
    *w = '\0';
    *out = lit;
    return count ? 0 : -1;
}

static int parse_filter(const struct res_table *t, const char *key, const char *val,
                        struct td_arena *a, struct res_filter *f, const char **detail)
{
    memset(f, 0, sizeof(*f));
    if ((f->col = visible_col(t, key)) < 0)
        return *detail = td_arena_printf(a, "unknown column %s", key), TD_EBADREQ;
    const struct res_col *c = &t->cols[f->col];
    if (!strncmp(val, "not.", 4))
        f->negate = 1, val += 4;
    const char *dot = strchr(val, '.');
    size_t oplen = dot ? (size_t)(dot - val) : strlen(val);
    size_t i;
    for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (strlen(ops[i].name) == oplen && !strncmp(ops[i].name, val, oplen))
            break;
    if (!dot || i == sizeof(ops) / sizeof(ops[0]))
        return *detail = td_arena_printf(a, "filter %s: unknown operator", key), TD_EBADREQ;
    f->op = ops[i].op;
    const char *v = dot + 1;
    if (f->op == RES_IS_NULL) {
        if (!strcmp(v, "true") || !strcmp(v, "false")) {
            if (c->kind != RES_BOOL || c->is_array)
                return *detail = td_arena_printf(a, "filter %s: not a boolean", key), TD_EBADREQ;
            f->op = v[0] == 't' ? RES_IS_TRUE : RES_IS_FALSE;
        } else if (strcmp(v, "null") != 0) {
            return *detail = td_arena_printf(a, "filter %s: is takes null, true or false", key),
                   TD_EBADREQ;
        }
        return 0;
    }
    if (!scalar_col(c))
        return *detail = td_arena_printf(a, "filter %s: only is.null applies", key), TD_EBADREQ;
    if (f->op == RES_LIKE || f->op == RES_ILIKE) {
        if (c->kind != RES_TEXT)
            return *detail = td_arena_printf(a, "filter %s: like needs a text column", key),
                   TD_EBADREQ;
        f->value = like_pattern(a, v);
        return 0;
    }
    if (f->op == RES_IN)
        return in_list(c, v, a, &f->value) < 0
                   ? (*detail = td_arena_printf(a, "filter %s: bad list", key), TD_EBADREQ)
                   : 0;
    if (res_value_text_ok(c, v) < 0)
        return *detail = td_arena_printf(a, "filter %s: bad value for the column", key), TD_EBADREQ;
    f->value = v;
    return 0;
}

static int parse_order(const struct res_table *t, const char *v, struct td_arena *a,
                       struct res_query *q, const char **detail)
{
    char *s = td_arena_strdup(a, v), *save = NULL;
    q->norder = 0;
    for (char *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *dir = strrchr(tok, '.');
        int desc = 0;
        if (dir && (!strcmp(dir, ".asc") || !strcmp(dir, ".desc"))) {
            desc = dir[1] == 'd';
            *dir = '\0';
        }
        int c = visible_col(t, tok);
        if (c < 0 || !scalar_col(&t->cols[c]) || q->norder == RES_MAX_ORDER)
            return *detail = td_arena_printf(a, "order: cannot order by %s", tok), TD_EBADREQ;
        q->order[q->norder++] = (struct res_order){c, desc};
    }
    if (q->norder == 0)
        return *detail = "order: empty", TD_EBADREQ;
    return 0;
}

static int parse_select(const struct res_table *t, const char *v, struct td_arena *a,
                        struct res_query *q, const char **detail)
{
    char *s = td_arena_strdup(a, v), *save = NULL;
    q->selected = td_arena_alloc(a, (size_t)t->ncols + 1);
    memset(q->selected, 0, (size_t)t->ncols + 1);
    q->selected[t->id_col] = 1;
    for (char *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int c = visible_col(t, tok);
        if (c < 0)
            return *detail = td_arena_printf(a, "select: unknown column %s", tok), TD_EBADREQ;
        q->selected[c] = 1;
    }
    return 0;
}

/* embed=name: a foreign key's column without _id, or a referencing table's path. */
static int find_embed(const struct res_desc *d, const struct res_table *t, const char *name,
                      struct res_embed *e)
{
    for (int i = 0; i < t->nfks; i++) {
        const struct res_fk *fk = &t->fks[i];
        const char *col = t->cols[fk->col].name;
        size_t n = strlen(col);
        if (fk->target && res_table_served(fk->target) && n > 3 && !strcmp(col + n - 3, "_id") &&
            strlen(name) == n - 3 && !strncmp(col, name, n - 3)) {
            *e = (struct res_embed){fk->target, fk, 0, name};
            return 0;
        }
    }
    const struct res_table *o = res_desc_by_path(d, name);
    for (int i = 0; o && i < o->nfks; i++)
        if (o->fks[i].target == t) {
            *e = (struct res_embed){o, &o->fks[i], 1, name};
            return 0;
        }
    return -1;
}

static int parse_embed(const struct res_desc *d, const struct res_table *t, const char *v,
                       struct td_arena *a, struct res_query *q, const char **detail)
{
    char *s = td_arena_strdup(a, v), *save = NULL;
    for (char *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (q->nembeds == RES_MAX_EMBED || find_embed(d, t, tok, &q->embeds[q->nembeds]) < 0)
            return *detail = td_arena_printf(a, "embed: unknown relation %s", tok), TD_EBADREQ;
        q->nembeds++;
    }
    return 0;
}

static void default_order(const struct res_table *t, struct res_query *q)
{
    q->norder = 0;
    if (t->created_col >= 0)
        q->order[q->norder++] = (struct res_order){t->created_col, 1};
}

/* The id tie-break (unless the order already ends in id) and the cursor fingerprint. */
static void finish_order(const struct res_table *t, struct res_query *q)
{
    int last_desc = q->norder ? q->order[q->norder - 1].desc : 1;
    int has_id = 0;
    for (int i = 0; i < q->norder; i++)
        has_id |= q->order[i].col == t->id_col;
    if (!has_id)
        q->order[q->norder++] = (struct res_order){t->id_col, last_desc};
    unsigned long long h = hash64(TD_HASH64_INIT, t->name);
    for (int i = 0; i < q->norder; i++) {
        h = hash64(h, t->cols[q->order[i].col].name);
        h = hash64(h, q->order[i].desc ? "d" : "a");
    }
    unsigned long long fsum = 0;
    for (int i = 0; i < q->nfilters; i++) {
        const struct res_filter *f = &q->filters[i];
        char op[16];
        snprintf(op, sizeof(op), "%d.%d", (int)f->op, f->negate);
        fsum += hash64(hash64(hash64(TD_HASH64_INIT, t->cols[f->col].name), op),
                       f->value ? f->value : "");
    }
    q->shape = h ^ fsum;
}

static int parse_common(const struct res_desc *d, const struct res_table *t, const char *key,
                        const char *val, struct td_arena *a, struct res_query *q,
                        const char **detail, int *used)
{
    *used = 1;
    if (!strcmp(key, "select"))
        return parse_select(t, val, a, q, detail);
    if (!strcmp(key, "embed"))
        return parse_embed(d, t, val, a, q, detail);
    *used = 0;
    return 0;
}

int res_query_parse(const struct res_desc *d, const struct res_table *t, const char *const *keys,
                    const char *const *vals, int n, struct td_arena *a, struct res_query *q,
                    const char **detail)
{
    memset(q, 0, sizeof(*q));
    q->limit = 20;
    default_order(t, q);
    for (int i = 0; i < n; i++) {
        const char *k = keys[i], *v = vals[i] ? vals[i] : "";
        int used, rc = parse_common(d, t, k, v, a, q, detail, &used);
        if (rc < 0)
            return rc;
        if (used)
            continue;
        if (!strcmp(k, "limit")) {
            char *end;
            long l = strtol(v, &end, 10);
            if (!*v || *end || l < 1 || l > 100)
                return *detail = "limit must be an integer from 1 to 100", TD_EBADREQ;
            q->limit = (int)l;
        } else if (!strcmp(k, "cursor")) {
            q->cursor = v;
        } else if (!strcmp(k, "order")) {
            if ((rc = parse_order(t, v, a, q, detail)) < 0)
                return rc;
        } else if (q->nfilters == RES_MAX_FILTERS) {
            return *detail = "too many filters", TD_EBADREQ;
        } else if ((rc = parse_filter(t, k, v, a, &q->filters[q->nfilters++], detail)) < 0) {
            return rc;
        }
    }
    finish_order(t, q);
    return 0;
}

int res_query_parse_one(const struct res_desc *d, const struct res_table *t,
                        const char *const *keys, const char *const *vals, int n, struct td_arena *a,
                        struct res_query *q, const char **detail)
{
    memset(q, 0, sizeof(*q));
    for (int i = 0; i < n; i++) {
        int used, rc = parse_common(d, t, keys[i], vals[i] ? vals[i] : "", a, q, detail, &used);
        if (rc < 0)
            return rc;
        if (!used)
            return *detail = td_arena_printf(a, "unknown parameter %s", keys[i]), TD_EBADREQ;
    }
    return 0;
}
