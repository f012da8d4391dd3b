/*
 * tenants_query.c - GET /admin/tenants: the fleet, paged, with search (?q= slug or name),
 * filters (?plan, ?status, ?isolation, ?server) and ?sort=created|api_calls
 * (docs/admin-tenants.md). The SQL is assembled from fixed pieces for the parameters
 * present, so each combination is its own prepared statement with its own plan; values
 * are always bound.
 */
#include "api/handlers.h"

#include "app/app.h"
#include "api/internal.h"
#include "api/validate.h"
#include "db/sqljson.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define ITEM_JSON                                                                                  \
    DB_SQL_OBJECT("x.id, x.slug, x.name, x.plan, x.isolation, x.status, x.server, " DB_SQL_TS(     \
        "x.subscription_expires_at") " AS subscription_expires_at, " DB_SQL_TS("x.created_at") " " \
                                                                                               "A" \
                                                                                               "S" \
                                                                                               " " \
                                                                                               "c" \
                                                                                               "r" \
                                                                                               "e" \
                                                                                               "a" \
                                                                                               "t" \
                                                                                               "e" \
                                                                                               "d" \
                                                                                               "_" \
                                                                                               "a" \
                                                                                               "t" \
                                                                                               "," \
                                                                                               " " \
                                                                                               "C" \
                                                                                               "O" \
                                                                                               "A" \
                                                                                               "L" \
                                                                                               "E" \
                                                                                               "S" \
                                                                                               "C" \
                                                                                               "E" \
                                                                                               "(" \
                                                                                               "u" \
                                                                                               "." \
                                                                                               "a" \
                                                                                               "p" \
                                                                                               "i" \
                                                                                               "_" \
                                                                                               "c" \
                                                                                               "a" \
                                                                                               "l" \
                                                                                               "l" \
                                                                                               "s" \
                                                                                               "," \
                                                                                               " " \
                                                                                               "0" \
                                                                                               ")" \
                                                                                               " " \
                                                                                               "A" \
                                                                                               "S" \
                                                                                               " " \
                                                                                               "a" \
                                                                                               "p" \
                                                                                               "i" \
                                                                                               "_" \
                                                                                               "c" \
                                                                                               "a" \
                                                                                               "l" \
                                                                                               "l" \
                                                                                               "s" \
                                                                                               "_" \
                                                                                               "m" \
                                                                                               "o" \
                                                                                               "n" \
                                                                                               "t" \
                                                                                               "h")

/* The month's usage row: the list shows API calls this month beside each tenant. */
#define FROM                                                                                       \
    " FROM tenantd.tenants x LEFT JOIN tenantd.usage u ON u.tenant_id = x.id AND u.month = "       \
    "date_trunc('month', now() AT TIME ZONE 'UTC')::date"

#define KEY_CREATED "(extract(epoch FROM x.created_at) * 1000000)::bigint"
#define KEY_CALLS "COALESCE(u.api_calls, 0)"

static const char *const plans[] = {"free", "starter", "pro", "enterprise", NULL};
static const char *const statuses[] = {"active", "suspended", NULL};
static const char *const isolations[] = {"pool", "schema", "database", NULL};

struct query {
    char sql[1536];
    size_t len;
    const char *params[10];
    int n;
};

static void add(struct query *q, const char *s)
{
    size_t l = strlen(s);
    if (q->len + l < sizeof(q->sql)) {
        memcpy(q->sql + q->len, s, l + 1);
        q->len += l;
    }
}

/* "AND <col> = $n" for a value, which must be one of set (NULL: any short text). */
static int filter(struct http_req *req, struct query *q, const char *name, const char *col,
                  const char *const *set, const char **detail)
{
    const char *v = http_query(req, name);
    if (!v)
        return 0;
    int ok = set ? 0 : strlen(v) > 0 && strlen(v) <= 63;
    for (const char *const *s = set; s && *s; s++)
        ok |= strcmp(*s, v) == 0;
    if (!ok) {
        *detail = td_arena_printf(req->arena, "%s is not one of the accepted values", name);
        return TD_EBADREQ;
    }
    q->params[q->n++] = v;
    char piece[96];
    snprintf(piece, sizeof(piece), " AND %s = $%d", col, q->n);
    add(q, piece);
    return 0;
}

/* ?q=: a case-insensitive substring of the slug or the name; LIKE's own characters in it
 * are matched literally. */
static int search(struct http_req *req, struct query *q, const char **detail)
{
    const char *v = http_query(req, "q");
    if (!v || !*v)
        return 0;
    if (strlen(v) > 200) {
        *detail = "q must be at most 200 characters";
        return TD_EBADREQ;
    }
    char *pat = td_arena_alloc(req->arena, strlen(v) * 2 + 3), *w = pat;
    *w++ = '%';
    for (const char *p = v; *p; p++) {
        if (*p == '%' || *p == '_' || *p == '\\')
            *w++ = '\\';
        *w++ = *p;
    }
    *w++ = '%';
    *w = '\0';
    q->params[q->n++] = pat;
    char piece[96];
    snprintf(piece, sizeof(piece), " AND (x.slug ILIKE $%d OR x.name ILIKE $%d)", q->n, q->n);
    add(q, piece);
    return 0;
}

/* {"data":[...],"next_cursor":...}: column 0 the item, 1 the sort key (int8), 2 the id,
 * all binary; the cursor is base64url("<key>_<id>"), as api_paging reads it. */
static int reply(struct http_req *req, PGresult *r, int limit)
{
    int n = PQntuples(r), items = n < limit ? n : limit;
    size_t len = 160;
    for (int i = 0; i < items; i++)
        len += (size_t)PQgetlength(r, i, 0) + 1;
    char *buf = td_arena_alloc(req->arena, len), *w = buf;
    w += sprintf(w, "{\"data\":[");
    for (int i = 0; i < items; i++) {
        if (i)
            *w++ = ',';
        memcpy(w, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0));
        w += PQgetlength(r, i, 0);
    }
    w += sprintf(w, "],\"next_cursor\":");
    if (n > limit) {
        const unsigned char *k = (const unsigned char *)PQgetvalue(r, limit - 1, 1);
        const unsigned char *id = (const unsigned char *)PQgetvalue(r, limit - 1, 2);
        if (PQgetlength(r, limit - 1, 1) != 8 || PQgetlength(r, limit - 1, 2) != 16)
            return TD_EINTERNAL;
        uint64_t key = 0;
        for (int i = 0; i < 8; i++)
            key = key << 8 | k[i];
        char raw[96];
        int rl = snprintf(raw, sizeof(raw), "%lld_", (long long)key);
        for (int i = 0; i < 16; i++)
            rl += snprintf(raw + rl, sizeof(raw) - (size_t)rl, "%s%02x",
                           i == 4 || i == 6 || i == 8 || i == 10 ? "-" : "", id[i]);
        *w++ = '"';
        sodium_bin2base64(
            w, sodium_base64_ENCODED_LEN((size_t)rl, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
            (const unsigned char *)raw, (size_t)rl, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        w += strlen(w);
        *w++ = '"';
    } else {
        w += sprintf(w, "null");
    }
    *w++ = '}';
    return http_reply_json_text(req, 200, buf, (size_t)(w - buf));
}

static int build(struct http_req *req, struct query *q, int limit, const char *cur_key,
                 const char *cur_id, const char **detail)
{
    const char *sort = http_query(req, "sort");
    if (sort && strcmp(sort, "created") != 0 && strcmp(sort, "api_calls") != 0) {
        *detail = "sort must be created or api_calls";
        return TD_EBADREQ;
    }
    int calls = sort && !strcmp(sort, "api_calls");
    const char *key = calls ? KEY_CALLS : KEY_CREATED;
    /* by created: the columns themselves, so tenants_created_idx serves the order */
    const char *order = calls ? KEY_CALLS : "x.created_at";
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit);
    q->params[q->n++] = td_arena_strdup(req->arena, lim);
    add(q, "SELECT " ITEM_JSON ", ");
    add(q, key);
    add(q, ", x.id" FROM " WHERE true");
    int rc;
    if ((rc = search(req, q, detail)) < 0 ||
        (rc = filter(req, q, "plan", "x.plan", plans, detail)) < 0 ||
        (rc = filter(req, q, "status", "x.status", statuses, detail)) < 0 ||
        (rc = filter(req, q, "isolation", "x.isolation", isolations, detail)) < 0 ||
        (rc = filter(req, q, "server", "x.server", NULL, detail)) < 0)
        return rc;
    char piece[256];
    if (cur_key) {
        q->params[q->n++] = cur_key;
        q->params[q->n++] = cur_id;
        /* the row comparison matches the ORDER BY, so a page starts right after the last */
        if (calls)
            snprintf(piece, sizeof(piece), " AND (" KEY_CALLS ", x.id) < ($%d::bigint, $%d::uuid)",
                     q->n - 1, q->n);
        else
            snprintf(piece, sizeof(piece),
                     " AND (x.created_at, x.id) < ('epoch'::timestamptz + $%d::bigint * "
                     "interval '1 microsecond', $%d::uuid)",
                     q->n - 1, q->n);
        add(q, piece);
    }
    snprintf(piece, sizeof(piece), " ORDER BY %s DESC, x.id DESC LIMIT $1::int + 1", order);
    add(q, piece);
    return 0;
}

int api_admin_tenants_list(struct http_req *req)
{
    int limit;
    const char *cus, *cid, *detail = NULL;
    struct query q = {.len = 0, .n = 0};
    int rc = api_paging(req, &limit, &cus, &cid, &detail);
    if (rc == 0)
        rc = build(req, &q, limit, cus, cid, &detail);
    if (rc < 0)
        return api_fail(req, rc, detail);
    struct db_target tg = {.server = 0};
    struct db_stmt st = {q.sql, q.n, q.params, 1};
    PGresult *r = NULL;
    rc = db_exec(req->app->db, &tg, &st, 1, &r);
    if (rc == 0)
        rc = reply(req, r, limit);
    PQclear(r);
    return rc;
}
