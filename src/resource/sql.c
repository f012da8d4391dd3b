/*
 * sql.c - statements for one resource, built from the description: identifiers are the
 * description's own (quoted), values are parameters. PostgreSQL writes every row's JSON
 * (row_to_json: compact; timestamps in the API's one format), and each write carries its
 * audit row in the same statement.
 */
#include "resource/resource.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS_FMT "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'"

struct sb {
    char *buf;
    size_t len, cap;
};

static void sb_grow(struct sb *b, size_t need)
{
    if (b->len + need + 1 > b->cap) {
        b->cap = (b->len + need + 1) * 2;
        if (b->cap < 1024)
            b->cap = 1024;
        b->buf = td_xrealloc(b->buf, b->cap);
    }
}

/* One formatting pass when the text fits the room left (the usual case), two when not. */
static void sb_add(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(struct sb *b, const char *fmt, ...)
{
    va_list ap;
    size_t room = b->cap - b->len;
    va_start(ap, fmt);
    int n = vsnprintf(b->buf ? b->buf + b->len : NULL, b->buf ? room : 0, fmt, ap);
    va_end(ap);
    if (!b->buf || (size_t)n >= room) {
        sb_grow(b, (size_t)n);
        va_start(ap, fmt);
        vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

static void sb_put(struct sb *b, const char *s)
{
    size_t n = strlen(s);
    sb_grow(b, n);
    memcpy(b->buf + b->len, s, n + 1);
    b->len += n;
}

static char *sb_done(struct sb *b, struct td_arena *a)
{
    char *s = td_arena_strdup(a, b->buf ? b->buf : "");
    free(b->buf);
    b->buf = NULL;
    return s;
}

/* Parameters: a growing arena array. */
struct params {
    const char **v;
    int n, cap;
    struct td_arena *a;
};

static int param(struct params *p, const char *v)
{
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 16;
        const char **nv = td_arena_alloc(p->a, sizeof(char *) * (size_t)cap);
        if (p->n)
            memcpy(nv, p->v, sizeof(char *) * (size_t)p->n);
        p->v = nv;
        p->cap = cap;
    }
    p->v[p->n++] = v;
    return p->n;
}

/* A column's value as JSON text: timestamptz in the API's format, the rest as stored. */
static void col_expr(struct sb *b, const char *alias, const struct res_col *c)
{
    if (c->kind == RES_TSTZ && !c->is_array)
        sb_add(b, "to_char((%s.%s) AT TIME ZONE 'UTC', " TS_FMT ") AS %s", alias, c->qname,
               c->qname);
    else if (c->kind == RES_TSTZ) /* each element too; NULL stays NULL, {} stays [] */
        sb_add(b,
               "CASE WHEN %s.%s IS NULL THEN NULL ELSE ARRAY(SELECT to_char(u_.e AT TIME ZONE "
               "'UTC', " TS_FMT ") FROM unnest(%s.%s) WITH ORDINALITY u_(e, n) ORDER BY u_.n) "
               "END AS %s",
               alias, c->qname, alias, c->qname, c->qname);
    else
        sb_add(b, "%s.%s", alias, c->qname);
}

static void row_json(struct sb *b, const struct res_table *t, const char *alias,
                     const struct res_query *q, int depth);

static void embed_expr(struct sb *b, const struct res_table *t, const char *alias,
                       const struct res_embed *e, int k, int depth)
{
    const struct res_table *o = e->other;
    char ea[16];
    snprintf(ea, sizeof(ea), "e%d_%d", depth, k);
    /* the key comes from a column's or a table's name, which may hold a double quote */
    char *qkey = res_quote(NULL, e->key);
    if (!e->reverse) {
        sb_put(b, "(SELECT ");
        row_json(b, o, ea, NULL, depth + 1);
        sb_add(b, " FROM %s %s WHERE %s.tenant_id = %s.tenant_id AND %s.id = %s.%s) AS %s",
               o->qname, ea, ea, alias, ea, alias, t->cols[e->fk->col].qname, qkey);
        free(qkey);
        return;
    }
    /* the newest 100 referencing rows, newest first */
    const char *ord = o->created_col >= 0 ? o->cols[o->created_col].qname : "id";
    sb_put(b, "(SELECT coalesce(array_to_json(array_agg(s_.j_ ORDER BY s_.o_ DESC, s_.i_ DESC)), "
              "'[]'::json) FROM (SELECT ");
    row_json(b, o, ea, NULL, depth + 1);
    sb_add(b,
           " AS j_, %s.%s AS o_, %s.id AS i_ FROM %s %s WHERE %s.tenant_id = %s.tenant_id AND "
           "%s.%s = %s.id ORDER BY %s.%s DESC, %s.id DESC LIMIT 100) s_) AS %s",
           ea, ord, ea, o->qname, ea, ea, alias, ea, o->cols[e->fk->col].qname, alias, ea, ord, ea,
           qkey);
    free(qkey);
}

/* The row of alias as one JSON object: visible (selected) columns, then the embeds. */
static const char row_aliases[] = "xpod"; /* the index of res_table.row_json */

static void row_json(struct sb *b, const struct res_table *t, const char *alias,
                     const struct res_query *q, int depth)
{
    const char *ka = alias[0] && !alias[1] ? strchr(row_aliases, alias[0]) : NULL;
    if (ka && t->row_json[ka - row_aliases] && (!q || (!q->selected && !q->nembeds))) {
        sb_put(b, t->row_json[ka - row_aliases]);
        return;
    }
    sb_put(b, "(SELECT row_to_json(j_) FROM (SELECT ");
    int n = 0;
    for (int i = 0; i < t->ncols; i++) {
        if (t->cols[i].is_private || (q && q->selected && !q->selected[i]))
            continue;
        if (n++)
            sb_put(b, ", ");
        col_expr(b, alias, &t->cols[i]);
    }
    for (int k = 0; q && k < q->nembeds; k++) {
        sb_put(b, ", ");
        embed_expr(b, t, alias, &q->embeds[k], k, depth);
    }
    sb_put(b, ") j_)");
}

void res_sql_cache(struct res_table *t)
{
    for (int i = 0; row_aliases[i]; i++) {
        char alias[2] = {row_aliases[i], 0};
        struct sb b = {0};
        free(t->row_json[i]);
        t->row_json[i] = NULL;
        row_json(&b, t, alias, NULL, 0);
        t->row_json[i] = b.buf;
    }
}

static const char *const op_sql[] = {"=", "<>", "<", "<=", ">", ">="};

static void filter_sql(struct sb *b, const struct res_table *t, const struct res_filter *f,
                       struct params *p)
{
    const struct res_col *c = &t->cols[f->col];
    sb_add(b, " AND %s(", f->negate ? "NOT " : "");
    switch (f->op) {
    case RES_IS_NULL:
        sb_add(b, "x.%s IS NULL", c->qname);
        break;
    case RES_IS_TRUE:
    case RES_IS_FALSE:
        sb_add(b, "x.%s IS %s", c->qname, f->op == RES_IS_TRUE ? "TRUE" : "FALSE");
        break;
    case RES_LIKE:
    case RES_ILIKE:
        sb_add(b, "x.%s::text %s $%d::text", c->qname, f->op == RES_LIKE ? "LIKE" : "ILIKE",
               param(p, f->value));
        break;
    case RES_IN:
        sb_add(b, "x.%s = ANY($%d::%s[])", c->qname, param(p, f->value), c->cast);
        break;
    default:
        sb_add(b, "x.%s %s $%d::%s", c->qname, op_sql[f->op], param(p, f->value), c->cast);
    }
    sb_put(b, ")");
}

/* Decode q's cursor into one value per order column (NULL items allowed). */
static int cursor_values(const struct res_table *t, const struct res_query *q, struct td_arena *a,
                         const char **vals)
{
    size_t n = strlen(q->cursor);
    unsigned char *raw = td_arena_alloc(a, n + 1);
    size_t len;
    if (sodium_base642bin(raw, n, q->cursor, n, NULL, &len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return -1;
    json_t *j = json_loadb((const char *)raw, len, 0, NULL);
    int rc = -1;
    char shape[24];
    snprintf(shape, sizeof(shape), "%016llx", q->shape);
    if (!json_is_array(j) || json_array_size(j) != (size_t)q->norder + 1 ||
        !json_is_string(json_array_get(j, 0)) ||
        strcmp(json_string_value(json_array_get(j, 0)), shape) != 0)
        goto out;
    for (int i = 0; i < q->norder; i++) {
        json_t *v = json_array_get(j, (size_t)i + 1);
        const struct res_col *c = &t->cols[q->order[i].col];
        if (json_is_null(v) && !c->notnull) {
            vals[i] = NULL;
            continue;
        }
        if (!json_is_string(v) || res_value_text_ok(c, json_string_value(v)) < 0)
            goto out;
        vals[i] = td_arena_strdup(a, json_string_value(v));
    }
    rc = 0;
out:
    json_decref(j);
    return rc;
}

/* Rows after the cursor in the list's order (NULLs last ascending, first descending). */
static void after_sql(struct sb *b, const struct res_table *t, const struct res_query *q,
                      const char **vals, struct params *p)
{
    int same = 1, k[RES_MAX_ORDER + 1];
    for (int i = 0; i < q->norder; i++) {
        same &= q->order[i].desc == q->order[0].desc && t->cols[q->order[i].col].notnull &&
                vals[i] != NULL;
        k[i] = vals[i] ? param(p, vals[i]) : 0;
    }
    if (same) { /* one row comparison: an index scan */
        sb_put(b, " AND (");
        for (int i = 0; i < q->norder; i++)
            sb_add(b, "%sx.%s", i ? ", " : "", t->cols[q->order[i].col].qname);
        sb_add(b, ") %s (", q->order[0].desc ? "<" : ">");
        for (int i = 0; i < q->norder; i++)
            sb_add(b, "%s$%d::%s", i ? ", " : "", k[i], t->cols[q->order[i].col].cast);
        sb_put(b, ")");
        return;
    }
    sb_put(b, " AND (FALSE");
    for (int i = 0; i < q->norder; i++) {
        sb_put(b, " OR (TRUE");
        for (int e = 0; e < i; e++) {
            const struct res_col *c = &t->cols[q->order[e].col];
            if (vals[e])
                sb_add(b, " AND x.%s = $%d::%s", c->qname, k[e], c->cast);
            else
                sb_add(b, " AND x.%s IS NULL", c->qname);
        }
        const struct res_col *c = &t->cols[q->order[i].col];
        if (!q->order[i].desc && vals[i])
            sb_add(b, " AND (x.%s > $%d::%s OR x.%s IS NULL)", c->qname, k[i], c->cast, c->qname);
        else if (!q->order[i].desc)
            sb_put(b, " AND FALSE");
        else if (vals[i])
            sb_add(b, " AND x.%s < $%d::%s", c->qname, k[i], c->cast);
        else
            sb_add(b, " AND x.%s IS NOT NULL", c->qname);
        sb_put(b, ")");
    }
    sb_put(b, ")");
}

int res_sql_list(const struct res_table *t, const struct res_query *q, const char *limit,
                 struct td_arena *a, struct res_sql *out, const char **detail)
{
    struct sb b = {0};
    struct params p = {.a = a};
    const char *vals[RES_MAX_ORDER + 1];
    if (q->cursor && cursor_values(t, q, a, vals) < 0)
        return *detail = "the cursor is not one of this list (same filters and order)", TD_EBADREQ;
    param(&p, limit);
    sb_put(&b, "SELECT ");
    row_json(&b, t, "x", q, 0);
    for (int i = 0; i < q->norder; i++) {
        const struct res_col *c = &t->cols[q->order[i].col];
        if (c->kind == RES_TSTZ)
            sb_add(&b, ", to_char((x.%s) AT TIME ZONE 'UTC', " TS_FMT ")", c->qname);
        else
            sb_add(&b, ", x.%s::text", c->qname);
    }
    sb_add(&b, " FROM %s x WHERE TRUE", t->qname);
    for (int i = 0; i < q->nfilters; i++)
        filter_sql(&b, t, &q->filters[i], &p);
    if (q->cursor)
        after_sql(&b, t, q, vals, &p);
    sb_put(&b, " ORDER BY ");
    for (int i = 0; i < q->norder; i++)
        sb_add(&b, "%sx.%s %s", i ? ", " : "", t->cols[q->order[i].col].qname,
               q->order[i].desc ? "DESC" : "ASC");
    sb_put(&b, " LIMIT $1::int + 1");
    *out = (struct res_sql){sb_done(&b, a), p.v, p.n};
    return 0;
}

char *res_cursor_make(const struct res_query *q, PGresult *r, int row, struct td_arena *a)
{
    json_t *j = json_array();
    char shape[24];
    snprintf(shape, sizeof(shape), "%016llx", q->shape);
    json_array_append_new(j, json_string(shape));
    for (int i = 0; i < q->norder; i++)
        json_array_append_new(
            j, PQgetisnull(r, row, i + 1) ? json_null() : json_string(PQgetvalue(r, row, i + 1)));
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    size_t n = strlen(s);
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = td_arena_alloc(a, cap);
    sodium_bin2base64(out, cap, (const unsigned char *)s, n,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    free(s);
    return out;
}

void res_sql_get(const struct res_table *t, const struct res_query *q, const char *id,
                 struct td_arena *a, struct res_sql *out)
{
    struct sb b = {0};
    struct params p = {.a = a};
    param(&p, id);
    sb_put(&b, "SELECT ");
    row_json(&b, t, "x", q, 0);
    sb_add(&b, " FROM %s x WHERE x.id = $1::uuid", t->qname);
    *out = (struct res_sql){sb_done(&b, a), p.v, p.n};
}

/* $2 actor, $3 ip, $4 user agent, $5 entity type, after $1 (id or a placeholder). */
static void audit_params(struct params *p, const struct res_table *t, const struct res_actor *w)
{
    param(p, w->user);
    param(p, w->ip);
    param(p, w->agent);
    param(p, t->name);
}

static void value_expr(struct sb *b, const struct res_col *c, const char *text, struct params *p)
{
    if (!text)
        sb_put(b, "NULL");
    else if (c->is_array)
        sb_add(b, "ARRAY(SELECT json_array_elements_text($%d::json))::%s", param(p, text), c->cast);
    else
        sb_add(b, "$%d::%s", param(p, text), c->cast);
}

/* A key a write may name: detail when it may not. */
static int writable(const struct res_table *t, const char *key, int patch, struct td_arena *a,
                    int *col, const char **detail)
{
    int c = res_col_find(t, key);
    if (c < 0 || t->cols[c].is_private)
        return *detail = td_arena_printf(a, "%s is not a field of %s", key, t->path),
               TD_EVALIDATION;
    if (t->cols[c].readonly || (patch && c == t->id_col))
        return *detail = td_arena_printf(a, "%s is not writable", key), TD_EVALIDATION;
    *col = c;
    return 0;
}

/* Check every row, and mark the columns any row names. */
static int check_rows(const struct res_table *t, json_t *const *rows, int nrows, struct td_arena *a,
                      unsigned char *used, const char **detail)
{
    for (int r = 0; r < nrows; r++) {
        const char *key, *text, *why, *at = nrows > 1 ? td_arena_printf(a, "[%d].", r) : "";
        json_t *v;
        int c, rc;
        if (!json_is_object(rows[r]))
            return *detail = td_arena_printf(a, "%sthe row must be an object", at), TD_EVALIDATION;
        json_object_foreach(rows[r], key, v)
        {
            if ((rc = writable(t, key, 0, a, &c, detail)) < 0)
                return rc;
            if (res_value_json(&t->cols[c], v, a, &text, &why) < 0)
                return *detail = td_arena_printf(a, "%s%s %s", at, key, why), TD_EVALIDATION;
            if (!text && t->cols[c].notnull)
                return *detail = td_arena_printf(a, "%s%s must not be null", at, key),
                       TD_EVALIDATION;
            used[c] = 1;
        }
        for (c = 0; c < t->ncols; c++)
            if (t->cols[c].notnull && !t->cols[c].has_default && !t->cols[c].is_private &&
                !json_object_get(rows[r], t->cols[c].name))
                return *detail = td_arena_printf(a, "%s%s is required", at, t->cols[c].name),
                       TD_EVALIDATION;
    }
    return 0;
}

static void insert_values(struct sb *b, const struct res_table *t, json_t *const *rows, int nrows,
                          const unsigned char *used, struct td_arena *a, struct params *p)
{
    for (int r = 0; r < nrows; r++) {
        sb_add(b, "%s(", r ? ", " : "");
        int n = 0;
        for (int c = 0; c < t->ncols; c++) {
            if (!used[c])
                continue;
            if (n++)
                sb_put(b, ", ");
            json_t *v = json_object_get(rows[r], t->cols[c].name);
            const char *text = NULL, *why;
            if (!v)
                sb_put(b, "DEFAULT");
            else if (res_value_json(&t->cols[c], v, a, &text, &why) == 0)
                value_expr(b, &t->cols[c], text, p);
        }
        sb_put(b, ")");
    }
}

int res_sql_insert(const struct res_table *t, json_t *const *rows, int nrows,
                   const struct res_actor *who, struct td_arena *a, struct res_sql *out,
                   const char **detail)
{
    unsigned char *used = td_arena_alloc(a, (size_t)t->ncols + 1);
    memset(used, 0, (size_t)t->ncols + 1);
    int rc = check_rows(t, rows, nrows, a, used, detail);
    if (rc < 0)
        return rc;
    struct sb b = {0};
    struct params p = {.a = a};
    param(&p, "");
    audit_params(&p, t, who);
    sb_add(&b, "WITH p AS (INSERT INTO %s", t->qname);
    int n = 0;
    for (int c = 0; c < t->ncols; c++)
        if (used[c])
            sb_add(&b, "%s%s", n++ ? ", " : " (", t->cols[c].qname);
    if (n) {
        sb_put(&b, ") VALUES ");
        insert_values(&b, t, rows, nrows, used, a, &p);
    } else {
        /* every column defaulted: one DEFAULT VALUES row per object */
        sb_add(&b, " SELECT FROM generate_series(1, %d)", nrows);
    }
    sb_put(&b, " RETURNING *), j AS (SELECT ");
    row_json(&b, t, "p", NULL, 0);
    sb_put(&b, " AS v, p.id FROM p), a AS (INSERT INTO audit_logs (actor_id, action, "
               "entity_type, entity_id, new_values, ip, user_agent) SELECT $2::uuid, 'create', "
               "$5, j.id, j.v, $3, $4 FROM j) SELECT v FROM j WHERE $1::text IS NOT NULL");
    *out = (struct res_sql){sb_done(&b, a), p.v, p.n};
    return 0;
}

int res_sql_update(const struct res_table *t, const char *id, json_t *obj,
                   const struct res_actor *who, struct td_arena *a, struct res_sql *out,
                   const char **detail)
{
    struct sb b = {0};
    struct params p = {.a = a};
    param(&p, id);
    audit_params(&p, t, who);
    sb_add(&b,
           "WITH o AS (SELECT * FROM %s WHERE id = $1::uuid FOR UPDATE), p AS (UPDATE %s x "
           "SET ",
           t->qname, t->qname);
    const char *key, *text, *why;
    json_t *v;
    int c, n = 0, rc;
    json_object_foreach(obj, key, v)
    {
        if ((rc = writable(t, key, 1, a, &c, detail)) < 0 ||
            (rc = res_value_json(&t->cols[c], v, a, &text, &why)) < 0) {
            free(b.buf);
            return rc == -1 ? (*detail = td_arena_printf(a, "%s %s", key, why), TD_EVALIDATION)
                            : rc;
        }
        if (!text && t->cols[c].notnull) {
            free(b.buf);
            return *detail = td_arena_printf(a, "%s must not be null", key), TD_EVALIDATION;
        }
        sb_add(&b, "%s%s = ", n++ ? ", " : "", t->cols[c].qname);
        value_expr(&b, &t->cols[c], text, &p);
    }
    if (t->updated_col >= 0)
        sb_add(&b, "%s%s = clock_timestamp()", n++ ? ", " : "", t->cols[t->updated_col].qname);
    if (!n)
        sb_put(&b, "id = x.id");
    sb_put(&b, " FROM o WHERE x.tenant_id = o.tenant_id AND x.id = o.id RETURNING x.*), "
               "j AS (SELECT ");
    row_json(&b, t, "p", NULL, 0);
    sb_put(&b, " AS v, p.id FROM p), a AS (INSERT INTO audit_logs (actor_id, action, "
               "entity_type, entity_id, old_values, new_values, ip, user_agent) SELECT $2::uuid, "
               "'update', $5, j.id, (SELECT ");
    row_json(&b, t, "o", NULL, 0);
    sb_put(&b, " FROM o), j.v, $3, $4 FROM j) SELECT v FROM j");
    *out = (struct res_sql){sb_done(&b, a), p.v, p.n};
    return 0;
}

void res_sql_delete(const struct res_table *t, const char *id, const struct res_actor *who,
                    struct td_arena *a, struct res_sql *out)
{
    struct sb b = {0};
    struct params p = {.a = a};
    param(&p, id);
    audit_params(&p, t, who);
    sb_add(&b,
           "WITH d AS (DELETE FROM %s WHERE id = $1::uuid RETURNING *), a AS (INSERT INTO "
           "audit_logs (actor_id, action, entity_type, entity_id, old_values, ip, user_agent) "
           "SELECT $2::uuid, 'delete', $5, d.id, ",
           t->qname);
    row_json(&b, t, "d", NULL, 0);
    sb_put(&b, ", $3, $4 FROM d) SELECT 1 FROM d");
    *out = (struct res_sql){sb_done(&b, a), p.v, p.n};
}
