/*
 * tx.h - running a handler's statements in the request's tenant.
 */
#ifndef TD_API_TX_H
#define TD_API_TX_H

#include "db/db.h"
#include "http/request.h"

/*
 * Run stmts in one transaction in req->tenant's storage. When the request carries a
 * user token, the transaction first checks that the user still exists (TD_EUNAUTHORIZED)
 * and holds min_role or better (TD_EFORBIDDEN; NULL: any role). Results are PQclear()ed
 * with the request arena. Returns 0 or a TD_E* code.
 */
int api_tenant_exec(struct http_req *req, const char *min_role, const struct db_stmt *stmts, int n,
                    PGresult **res) TD_MUSTCHECK;

/* The same; err (may be NULL) receives the failing statement's SQLSTATE and constraint. */
int api_tenant_exec_err(struct http_req *req, const char *min_role, const struct db_stmt *stmts,
                        int n, PGresult **res, struct db_error *err) TD_MUSTCHECK;

/*
 * The continuation of a handler whose transaction ran: rc and res[n] as
 * api_tenant_exec_err gives them (results freed with the arena). It answers req as a
 * handler does, returning 0 or a TD_E* code with req->detail.
 */
typedef int (*api_tx_cont)(struct http_req *req, int rc, PGresult **res, void *arg);

/*
 * api_tenant_exec_err, then cont(req, rc, res, arg); returns what the handler returns.
 * On an event loop with a pipeline to the tenant's server (pool and schema tenants,
 * reads the replicas may not take) the request is deferred, the transaction queued on the
 * pipeline, and this returns 0 at once: cont runs on the same loop when the results
 * arrive, its answer is sent (a problem for a negative code) and the request resumed. A
 * client gone meanwhile gets no cont. Elsewhere, or when the pipeline cannot take it, the
 * transaction runs here (blocking) and cont runs before this returns. The stmts array is
 * copied; their sql, params and err must live as long as req's arena.
 */
int api_tenant_exec_then(struct http_req *req, const char *min_role, const struct db_stmt *stmts,
                         int n, struct db_error *err, api_tx_cont cont, void *arg);

/* Answer with the single JSON value in row 0 column 0 of r, or TD_ENOTFOUND when r has
 * no rows. */
int api_reply_row(struct http_req *req, int status, PGresult *r);

/* Newest first; the cursor is base64url("<created_at in µs>_<id>") of the page's last row.
 * LIST_SQL takes $1 = limit; LIST_SQL_AFTER also $2 = cursor µs and $3 = cursor id. Two
 * texts rather than "$2 IS NULL OR ..." so both plan as an ordered index scan. One row per
 * item (limit + 1 fetched, so the extra one tells that a next page exists): column 0 the
 * item's JSON, columns 1 and 2 what its cursor is made of; api_reply_page() joins them. */
#define LIST_SQL_(table, json, where)                                                              \
    "SELECT " json ", x.created_at, x.id FROM " table " x " where                                  \
    " ORDER BY x.created_at DESC, x.id DESC LIMIT $1::int + 1"
#define LIST_SQL(table, json) LIST_SQL_(table, json, "")
#define LIST_SQL_AFTER(table, json)                                                                \
    LIST_SQL_(table, json,                                                                         \
              "WHERE (x.created_at, x.id) < ('epoch'::timestamptz + $2::bigint * "                 \
              "interval '1 microsecond', $3::uuid)")

/* A statement that serialises a tenant's quota-checked creations until commit: run
 * before the counting statement, which then sees every committed row. */
extern const char api_quota_lock_sql[];

/* Answer {"data": [...], "next_cursor": ...} from the rows of a LIST_SQL statement run
 * with binary results (struct db_stmt.binary): the items' JSON as PostgreSQL built it,
 * joined without parsing; the cursor from the last item's created_at and id, which come
 * in binary so that PostgreSQL formats no text for them. */
int api_reply_page(struct http_req *req, PGresult *r, int limit);
/* Write at w the quoted cursor of row: base64url("<key>_<id>"), the key column 1 (8 bytes,
 * big-endian, plus offset) and the id column 2 (binary uuid), as api_paging reads it.
 * Returns the end, or NULL when the columns are not 8 and 16 bytes. */
char *api_put_cursor(char *w, PGresult *r, int row, long long offset);

/* The User-Agent header, or "". */
const char *api_user_agent(struct http_req *req);
/* A list route: ?limit/?cursor, then first (LIST_SQL) or, with a cursor, after
 * (LIST_SQL_AFTER); the single JSON value is relayed. */
int api_list(struct http_req *req, const char *first, const char *after, const char *min_role);

#endif
