/*
 * tx.c - the tenant transaction of a request: user check plus the handler's statements,
 * pipelined by db_exec into one round trip.
 */
#include "api/tx.h"
#include "api/pipeline.h"
#include "resource/resource.h"

#include "app/app.h"
#include "api/internal.h"
#include "tenant/usercheck.h"
#include "api/validate.h"
#include "http/loop.h"
#include "http/problem.h"
#include "http/router.h"
#include "migrate/files.h"
#include "core/uuid.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define MAX_STMTS 6

const char api_quota_lock_sql[] =
    "SELECT pg_advisory_xact_lock(hashtextextended(current_setting('app.tenant_id'), 7204003))";

static void clear_result(void *p)
{
    PQclear(p);
}

/* Whether req->tenant lives elsewhere by now; if so req->tenant becomes the new one. */
static int tenant_moved(struct http_req *req)
{
    struct tnt_tenant *cur;
    if (tnt_cache_get(req->app->cache, req->tenant->id, &cur) < 0)
        return 0;
    api_hold_tenant(req, cur);
    if (cur->isolation == req->tenant->isolation && cur->server_idx == req->tenant->server_idx)
        return 0;
    req->tenant = cur;
    return 1;
}

/* Pool storage: the user check in the context statement, after the tenant settings. */
static const char pool_ctx_check_sql[] = DB_POOL_CTX_SQL(TNT_USER_CHECK_SQL("pool.", "$3", "$4"));

static int is_read(const struct http_req *req)
{
    return !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD");
}

/* A read whose user check may come from tnt_usercheck (writes always check). */
static int may_skip_check(const struct http_req *req, const char *min_role)
{
    return is_read(req) && tnt_usercheck_ok(req->app->usercheck, req->tenant, req->claims.sub,
                                            min_role, req->app->cfg->user_check_ttl);
}

/* The target and statements of req's transaction: the user check (when there is a user
 * and check is set) then stmts. Returns how many statements precede stmts in all[]. */
static int build_tx(struct http_req *req, const char *min_role, const struct db_stmt *stmts, int n,
                    int check, char *role, struct db_target *tg, struct db_stmt *all)
{
    int k = 0;
    tnt_tenant_target(req->tenant, tg);
    /* a replica that has replayed this tenant's last write answers as the primary would */
    tg->read_only = is_read(req) && !strcmp(req->app->cfg->read_replicas, "reads");
    role[0] = '\0';
    if (!req->has_claims || !check) {
        /* no user, or a remembered check */
    } else if (req->tenant->isolation == TNT_ISO_POOL) {
        tg->ctx_sql = pool_ctx_check_sql; /* checked in the context statement */
        tg->ctx_params[0] = req->claims.sub;
        tg->ctx_params[1] = min_role;
        tg->ctx_value = role;
        tg->ctx_value_cap = TNT_ROLE_MAX;
    } else {
        const char **gp = td_arena_alloc(req->arena, 2 * sizeof(char *));
        gp[0] = req->claims.sub;
        gp[1] = min_role;
        /* The statement locks users before its snapshot is taken: when a move held the
         * tenant's tables, the guard sees the users the move deleted (and fails) instead
         * of an older snapshot that would let this transaction write into the old storage
         * after the move released it. */
        all[k++] = (struct db_stmt){"SELECT " TNT_USER_CHECK_SQL("", "$1", "$2"), 2, gp, 0};
    }
    memcpy(&all[k], stmts, sizeof(*stmts) * (size_t)n);
    return k;
}

/* Run the transaction; remember a passed user check. */
static int run_tx(struct http_req *req, const char *min_role, const struct db_stmt *stmts, int n,
                  int check, PGresult **out, int *k, struct db_error *err)
{
    struct db_target tg;
    struct db_stmt all[MAX_STMTS + 1];
    char role[TNT_ROLE_MAX];
    *k = build_tx(req, min_role, stmts, n, check, role, &tg, all);
    tg.error = err;
    int rc = db_exec(req->app->db, &tg, all, *k + n, out);
    for (int i = 0; i < *k + n; i++)
        if (out[i])
            td_arena_defer(req->arena, clear_result, out[i]);
    if (rc == 0 && *k && out[0] && PQntuples(out[0]) == 1)
        snprintf(role, sizeof(role), "%s", PQgetvalue(out[0], 0, 0));
    if (rc == 0 && role[0])
        tnt_usercheck_put(req->app->usercheck, req->tenant, req->claims.sub, role);
    return rc;
}

/* Storage behind the version this process expects (files added, `tenantd migrate` not
 * yet done with this tenant): 503 until it is; the runner NOTIFYs each tenant it
 * finishes, which drops it from the cache. Pool storage is migrated as a whole before any
 * tenant schema. Operator routes still reach the old storage. */
static int storage_ready(struct http_req *req, int n)
{
    if (n > MAX_STMTS)
        return TD_EINTERNAL;
    if ((req->route_flags & (HTTP_ROUTE_TENANT | HTTP_ROUTE_TENANT_ANON)) &&
        req->tenant->isolation != TNT_ISO_POOL &&
        req->tenant->schema_version < mig_expected_get(&req->app->expected))
        return api_fail(req, TD_EUNAVAILABLE,
                        "this tenant's storage is being migrated; retry shortly");
    return 0;
}

int api_tenant_exec(struct http_req *req, const char *min_role, const struct db_stmt *stmts, int n,
                    PGresult **res)
{
    return api_tenant_exec_err(req, min_role, stmts, n, res, NULL);
}

int api_tenant_exec_err(struct http_req *req, const char *min_role, const struct db_stmt *stmts,
                        int n, PGresult **res, struct db_error *err)
{
    PGresult *out[MAX_STMTS + 1];
    int k;
    int rc = storage_ready(req, n);
    if (rc < 0)
        return rc;
    int check = !req->has_claims || !may_skip_check(req, min_role);
    rc = run_tx(req, min_role, stmts, n, check, out, &k, err);
    /* A read without the check found nothing: the tenant may have moved away under it
     * (a move empties the old storage) - ask again with the check, which then fails. */
    if (rc == 0 && !check) {
        int empty = 0;
        for (int i = 0; i < n; i++)
            empty |= out[i] && PQntuples(out[i]) == 0;
        if (empty)
            rc = run_tx(req, min_role, stmts, n, check = 1, out, &k, err);
    }
    /* A move (src/tenant/move.c) makes transactions that waited on the old storage fail
     * without committing; run again at the new place (the move dropped the tenant from
     * this instance's cache before letting them go). Moves back to back: a few times. */
    for (int again = 0;
         again < 3 && (rc == TD_EUNAUTHORIZED || rc == TD_EINTERNAL || rc == TD_EUNAVAILABLE) &&
         tenant_moved(req);
         again++)
        rc = run_tx(req, min_role, stmts, n, 1, out, &k, err);
    for (int i = 0; i < n; i++)
        res[i] = out[k + i];
    return rc;
}

/* ---- the same on the loop's pipeline ---------------------------------------------- */

/* A request's transaction on its loop's pipeline; lives in the request's arena. */
struct atx {
    struct http_req *req;
    const char *min_role;
    struct db_stmt stmts[MAX_STMTS];
    int n, k, check, moves;
    struct db_error *err;
    api_tx_cont cont;
    void *arg;
};

static void on_results(void *arg, int rc, PGresult **res, int nres, const struct db_error *e,
                       const char *ctx_value);

/* Queue a's transaction on its tenant's pipeline: 0, or TD_EUNAVAILABLE when there is none
 * for it (a tenant database, a read a replica may take, no pipeline here) or it cannot
 * take it now: then it runs through db_exec. */
static int atx_submit(struct atx *a)
{
    struct http_req *req = a->req;
    if (req->tenant->isolation == TNT_ISO_DATABASE)
        return TD_EUNAVAILABLE;
    /* A pipeline runs its transactions one after another on one backend, so a write that
     * waits on a lock (its tenant's quota, a row) holds up every transaction behind it:
     * writes keep to the pools unless asked for (measured: bench/README.md) */
    if (!req->app->cfg->pipeline_writes && !is_read(req))
        return TD_EUNAVAILABLE;
    struct db_pipe *p = api_pipeline_pick(req, req->tenant->server_idx, req->tenant->id);
    if (!p)
        return TD_EUNAVAILABLE;
    struct db_target tg;
    struct db_stmt all[MAX_STMTS + 1];
    char role[TNT_ROLE_MAX];
    a->k = build_tx(req, a->min_role, a->stmts, a->n, a->check, role, &tg, all);
    if (tg.read_only)
        return TD_EUNAVAILABLE;
    return db_pipe_submit(p, &tg, all, a->k + a->n, on_results, a, NULL);
}

/* Whether a's transaction must run again, as api_tenant_exec_err decides: a read without
 * the user check that found nothing, or a failure after the tenant moved. */
static int atx_again(struct atx *a, int rc, PGresult **out)
{
    if (rc == 0 && !a->check) {
        int empty = 0;
        for (int i = 0; i < a->n; i++)
            empty |= out[i] && PQntuples(out[i]) == 0;
        if (empty)
            return a->check = 1;
    }
    if ((rc == TD_EUNAUTHORIZED || rc == TD_EINTERNAL || rc == TD_EUNAVAILABLE) && a->moves < 3 &&
        tenant_moved(a->req)) {
        a->moves++;
        return a->check = 1;
    }
    return 0;
}

/* The continuation answers; a refusal becomes the problem response; the server sends. */
static void atx_finish(struct atx *a, int rc, PGresult **out)
{
    struct http_req *req = a->req;
    rc = a->cont(req, rc, out, a->arg);
    if (rc < 0 && !req->responded)
        http_problem_send(req, rc, req->detail);
    http_req_resume(req);
}

static void on_results(void *arg, int rc, PGresult **res, int nres, const struct db_error *e,
                       const char *ctx_value)
{
    struct atx *a = arg;
    struct http_req *req = a->req;
    for (int i = 0; i < nres; i++)
        if (res[i])
            td_arena_defer(req->arena, clear_result, res[i]);
    if (http_req_gone(req)) {
        http_req_resume(req); /* frees it; the results go with its arena */
        return;
    }
    if (a->err && e->sqlstate[0])
        *a->err = *e;
    /* a passed user check is remembered, as run_tx does */
    char role[TNT_ROLE_MAX];
    snprintf(role, sizeof(role), "%s", ctx_value);
    if (rc == 0 && a->k && res[0] && PQntuples(res[0]) == 1)
        snprintf(role, sizeof(role), "%s", PQgetvalue(res[0], 0, 0));
    if (rc == 0 && role[0])
        tnt_usercheck_put(req->app->usercheck, req->tenant, req->claims.sub, role);
    if (!atx_again(a, rc, res + a->k)) {
        atx_finish(a, rc, res + a->k);
        return;
    }
    if (atx_submit(a) == 0)
        return;
    PGresult *out[MAX_STMTS] = {NULL};
    rc = api_tenant_exec_err(req, a->min_role, a->stmts, a->n, out, a->err);
    atx_finish(a, rc, out);
}

int api_tenant_exec_then(struct http_req *req, const char *min_role, const struct db_stmt *stmts,
                         int n, struct db_error *err, api_tx_cont cont, void *arg)
{
    int rc = storage_ready(req, n);
    if (rc < 0)
        return rc;
    struct atx *a = td_arena_alloc(req->arena, sizeof(*a));
    *a = (struct atx){
        .req = req, .min_role = min_role, .n = n, .err = err, .cont = cont, .arg = arg};
    memcpy(a->stmts, stmts, sizeof(*stmts) * (size_t)n);
    a->check = !req->has_claims || !may_skip_check(req, min_role);
    if (atx_submit(a) == 0) {
        http_req_defer(req); /* answered by on_results, on this loop */
        return 0;
    }
    PGresult *res[MAX_STMTS] = {NULL};
    rc = api_tenant_exec_err(req, min_role, stmts, n, res, err);
    return cont(req, rc, res, arg);
}

int api_reply_row(struct http_req *req, int status, PGresult *r)
{
    if (!r || PQntuples(r) == 0)
        return TD_ENOTFOUND;
    return http_reply_json_text(req, status, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
}

char *api_put_cursor(char *w, PGresult *r, int row, long long offset)
{
    const unsigned char *k = (const unsigned char *)PQgetvalue(r, row, 1);
    const unsigned char *id = (const unsigned char *)PQgetvalue(r, row, 2);
    if (PQgetlength(r, row, 1) != 8 || PQgetlength(r, row, 2) != 16)
        return NULL;
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | k[i];
    char raw[96];
    int rl = snprintf(raw, sizeof(raw), "%lld_", (long long)u + offset);
    td_uuid_format(id, raw + rl);
    rl += 36;
    *w++ = '"';
    sodium_bin2base64(
        w, sodium_base64_ENCODED_LEN((size_t)rl, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
        (const unsigned char *)raw, (size_t)rl, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    w += strlen(w);
    *w++ = '"';
    return w;
}

int api_reply_page(struct http_req *req, PGresult *r, int limit)
{
    int n = PQntuples(r), items = n < limit ? n : limit;
    size_t len = sizeof("{\"data\":[],\"next_cursor\":null}") + 128;
    for (int i = 0; i < items; i++)
        len += (size_t)PQgetlength(r, i, 0) + 1;
    char *buf = td_arena_alloc(req->arena, len), *w = buf;
    w += sprintf(w, "{\"data\":[");
    for (int i = 0; i < items; i++) {
        if (i)
            *w++ = ',';
        size_t l = (size_t)PQgetlength(r, i, 0);
        memcpy(w, PQgetvalue(r, i, 0), l);
        /* jsonb nested in an item (an audit value's json column) comes as "a": [1, 2] */
        w += res_json_compact(w, l);
    }
    w += sprintf(w, "],\"next_cursor\":");
    if (n > limit) {
        /* binary timestamptz: microseconds since 2000-01-01 UTC */
        w = api_put_cursor(w, r, limit - 1, 946684800000000LL);
        if (!w)
            return TD_EINTERNAL;
    } else {
        w += sprintf(w, "null");
    }
    *w++ = '}';
    return http_reply_json_text(req, 200, buf, (size_t)(w - buf));
}

const char *api_user_agent(struct http_req *req)
{
    const char *ua = http_header(req, "User-Agent");
    return ua ? ua : "";
}

/* Shared by every list route: paging parameters, one statement, relay its JSON. */
int api_list(struct http_req *req, const char *first, const char *after, const char *min_role)
{
    int limit;
    const char *cus, *cid, *detail = NULL;
    int rc = api_paging(req, &limit, &cus, &cid, &detail);
    if (rc < 0)
        return api_fail(req, rc, detail);
    char lim[8];
    snprintf(lim, sizeof(lim), "%d", limit);
    const char **p = td_arena_alloc(req->arena, 3 * sizeof(char *));
    p[0] = td_arena_strdup(req->arena, lim);
    p[1] = cus;
    p[2] = cid;
    struct db_stmt st = {cus ? after : first, cus ? 3 : 1, p, 1};
    PGresult *r;
    rc = api_tenant_exec(req, min_role, &st, 1, &r);
    if (rc < 0)
        return rc;
    return api_reply_page(req, r, limit);
}
