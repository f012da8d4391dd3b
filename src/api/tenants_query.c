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
#include "api/tx.h"
#include "db/sqljson.h"

#include <stdio.h>
#include <string.h>

#define ITEM_JSON(calls)                                                                                 \
    DB_SQL_OBJECT("x.id, x.slug, x.name, x.plan, x.isolation, x.status, x.server, " DB_SQL_TS(           \
        "x.subscription_expires_at") " AS subscription_expires_at, " DB_SQL_TS("x.created_at") " "       \
                                                                                               "A"       \
                                                                                               "S"       \
                                                                                               " "       \
                                                                                               "c"       \
                                                                                               "r"       \
                                                                                               "e"       \
                                                                                               "a"       \
                                                                                               "t"       \
                                                                                               "e"       \
                                                                                               "d"       \
                                                                                               "_"       \
                                                                                               "a"       \
                                                                                               "t"       \
                                                                                               ","       \
                                                                                               " " calls \
                                                                                               " "       \
                                                                                               "A"       \
                                                                                               "S"       \
                                                                                               " "       \
                                                                                               "a"       \
                                                                                               "p"       \
                                                                                               "i"       \
                                                                                               "_"       \
                                                                                               "c"       \
                                                                                               "a"       \
                                                                                               "l"       \
                                                                                               "l"       \
                                                                                               "s"       \
                                                                                               "_"       \
                                                                                               "m"       \
                                                                                               "o"       \
                                                                                               "n"       \
                                                                                               "t"       \
                                                                                               "h")

#define MONTH "date_trunc('month', now() AT TIME ZONE 'UTC')::date"

/* By created: the newest first from tenants_created_idx, each with its month's usage row. */
#define BY_CREATED                                                                                 \
    "SELECT " ITEM_JSON("COALESCE(u.api_calls, 0)") ", (extract(epoch FROM x.created_at) * "       \
                                                    "1000000)::bigint, x.id FROM tenantd.tenants " \
                                                    "x LEFT JOIN tenantd.usage u ON u.tenant_id "  \
                                                    "= x.id AND u.month = " MONTH " WHERE true"

/* By API calls: the month's usage rows from usage_month_calls_idx, most first, stopping at
 * the page's size; then the tenants without one (0 calls), read only when those rows do not
 * already fill the page with calls above 0 (a one-time filter: the anti-join over the fleet
 * is never run for a full first page). A LEFT JOIN sorted on COALESCE read and sorted every
 * tenant: 100-350 ms at 10,000; this is under 1 ms of PostgreSQL time. */
#define BY_CALLS_USED                                                                              \
    "WITH used AS MATERIALIZED (SELECT " ITEM_JSON(                                                \
        "u.api_calls") " AS j, u.api_calls AS k, x.id FROM tenantd.usage u JOIN tenantd.tenants "  \
                       "x ON x.id = u.tenant_id WHERE u.month = " MONTH
#define BY_CALLS_UNUSED                                                                            \
    " SELECT j, k, id FROM (SELECT j, k, id FROM used UNION ALL (SELECT " ITEM_JSON(               \
        "0") ", 0::bigint, x.id FROM tenantd.tenants x WHERE (SELECT count(*) FILTER (WHERE k > "  \
             "0) FROM used) <= $1::int AND NOT EXISTS (SELECT 1 FROM tenantd.usage u WHERE "       \
             "u.tenant_id = x.id AND u.month = " MONTH ")"

static const char *const plans[] = {"free", "starter", "pro", "enterprise", NULL};
static const char *const statuses[] = {"active", "suspended", NULL};
static const char *const isolations[] = {"pool", "schema", "database", NULL};

struct query {
    char sql[4096];
    size_t len;
    char where[512]; /* " AND ..." of the filters, shared by both branches of BY_CALLS */
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

static void add_where(struct query *q, const char *s)
{
    size_t l = strlen(q->where);
    snprintf(q->where + l, sizeof(q->where) - l, "%s", s);
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
    add_where(q, piece);
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
    add_where(q, piece);
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
        w = api_put_cursor(w, r, limit - 1, 0);
        if (!w)
            return TD_EINTERNAL;
    } else {
        w += sprintf(w, "null");
    }
    *w++ = '}';
    return http_reply_json_text(req, 200, buf, (size_t)(w - buf));
}

/* The page after the cursor (key, id), in the order of each statement. */
static void compose(struct query *q, int calls, int cursor)
{
    char c[256] = "";
    if (!calls) {
        if (cursor)
            snprintf(c, sizeof(c),
                     " AND (x.created_at, x.id) < ('epoch'::timestamptz + $%d::bigint * "
                     "interval '1 microsecond', $%d::uuid)",
                     q->n - 1, q->n);
        add(q, BY_CREATED);
        add(q, q->where);
        add(q, c);
        add(q, " ORDER BY x.created_at DESC, x.id DESC LIMIT $1::int + 1");
        return;
    }
    add(q, BY_CALLS_USED);
    add(q, q->where);
    if (cursor)
        snprintf(c, sizeof(c), " AND (u.api_calls, u.tenant_id) < ($%d::bigint, $%d::uuid)",
                 q->n - 1, q->n);
    add(q, c);
    add(q, " ORDER BY u.api_calls DESC, u.tenant_id DESC LIMIT $1::int + 1)" BY_CALLS_UNUSED);
    add(q, q->where);
    if (cursor)
        snprintf(c, sizeof(c), " AND (0::bigint, x.id) < ($%d::bigint, $%d::uuid)", q->n - 1, q->n);
    add(q, c);
    add(q, " ORDER BY x.id DESC LIMIT $1::int + 1)) s ORDER BY k DESC, id DESC LIMIT $1::int + 1");
}

static int build(struct http_req *req, struct query *q, int limit, const char *cur_key,
                 const char *cur_id, const char **detail)
{
    const char *sort = http_query(req, "sort");
    if (sort && strcmp(sort, "created") != 0 && strcmp(sort, "api_calls") != 0) {
        *detail = "sort must be created or api_calls";
        return TD_EBADREQ;
    }
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit);
    q->params[q->n++] = td_arena_strdup(req->arena, lim);
    int rc;
    if ((rc = search(req, q, detail)) < 0 ||
        (rc = filter(req, q, "plan", "x.plan", plans, detail)) < 0 ||
        (rc = filter(req, q, "status", "x.status", statuses, detail)) < 0 ||
        (rc = filter(req, q, "isolation", "x.isolation", isolations, detail)) < 0 ||
        (rc = filter(req, q, "server", "x.server", NULL, detail)) < 0)
        return rc;
    if (cur_key) {
        q->params[q->n++] = cur_key;
        q->params[q->n++] = cur_id;
    }
    compose(q, sort && !strcmp(sort, "api_calls"), cur_key != NULL);
    return 0;
}

int api_admin_tenants_list(struct http_req *req)
{
    int limit;
    const char *cus, *cid, *detail = NULL;
    struct query q = {.len = 0, .n = 0, .where = ""};
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
