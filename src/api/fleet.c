/*
 * fleet.c - the operator's views of one tenant beyond its record, and of the servers: its
 * users and audit log (the tenant routes' own lists, run as the operator), its API calls
 * per day, its schema version and migration error, and each server's pool. They exist for
 * the console, and are scriptable like every admin route.
 */
#include "api/handlers.h"

#include "app/app.h"
#include "api/internal.h"
#include "db/pool.h"
#include "db/sqljson.h"
#include "migrate/files.h"

#include <stdio.h>
#include <string.h>

/* The tenant route's list, in the tenant named by {id}: no user token, so no user check. */
static int as_operator(struct http_req *req, int (*list)(struct http_req *))
{
    struct tnt_tenant *t;
    int rc = api_admin_find_tenant(req, &t);
    if (rc < 0)
        return rc;
    req->tenant = t;
    return list(req);
}

int api_admin_tenant_users(struct http_req *req)
{
    return as_operator(req, api_users_list);
}

int api_admin_tenant_audit(struct http_req *req)
{
    return as_operator(req, api_audit_list);
}

/* Every day of the month so far, zero where no call was counted. */
/* Every day of the month so far, zero where no call was counted; compact JSON (json_agg
 * and json_build_object would add spaces). */
static const char usage_sql[] =
    "SELECT '{\"month\":\"' || to_char(m.month, 'YYYY-MM') || '\",\"days\":[' || "
    "(SELECT string_agg(row_to_json(x)::text, ',' ORDER BY x.day) FROM (SELECT "
    "to_char(d.day, 'YYYY-MM-DD') AS day, COALESCE(u.api_calls, 0) AS api_calls "
    "FROM generate_series(m.month, (now() AT TIME ZONE 'UTC')::date, interval '1 day') AS "
    "d(day) LEFT JOIN tenantd.usage_daily u ON u.tenant_id = $1 AND u.day = d.day::date) x) "
    "|| ']}' FROM (SELECT date_trunc('month', now() AT TIME ZONE 'UTC')::date AS month) m";

int api_admin_tenant_usage(struct http_req *req)
{
    struct tnt_tenant *t;
    int rc = api_admin_find_tenant(req, &t);
    if (rc < 0)
        return rc;
    struct db_target tg = {.server = 0};
    struct db_stmt st = {usage_sql, 1, (const char *const[]){t->id}, 0};
    PGresult *r = NULL;
    rc = db_exec(req->app->db, &tg, &st, 1, &r);
    if (rc == 0)
        rc = http_reply_json_text(req, 200, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
    PQclear(r);
    return rc;
}

static const char migration_sql[] = "SELECT " DB_SQL_OBJECT(
    "schema_version, $2::int AS expected_version, migration_error AS "
    "error, " DB_SQL_TS("migrated_at") " AS migrated_at") " "
                                                          "FROM tenantd.tenants WHERE id = $1";

int api_admin_tenant_migration(struct http_req *req)
{
    struct tnt_tenant *t;
    int rc = api_admin_find_tenant(req, &t);
    if (rc < 0)
        return rc;
    char expected[16];
    snprintf(expected, sizeof(expected), "%d", mig_expected_get(&req->app->expected));
    /* the ledger columns are not the runtime role's to read: a short superuser connection,
     * as GET /admin/migrations does */
    PGconn *pg = NULL;
    PGresult *r = NULL;
    rc = db_admin_connect(req->app->db, 0, NULL, &pg);
    if (rc == 0)
        rc = db_admin_exec(pg, "reading a tenant's migration state", migration_sql, 2,
                           (const char *const[]){t->id, expected}, &r);
    if (rc == 0 && PQntuples(r) == 0)
        rc = TD_ETENANT_NOTFOUND;
    if (rc == 0)
        rc = http_reply_json_text(req, 200, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
    PQclear(r);
    PQfinish(pg);
    return rc;
}

static json_t *server_json(struct td_app *app, int s)
{
    struct db_pool_stats st;
    db_server_pool_stats(app->db, s, &st);
    json_t *j = json_pack("{s:s,s:i,s:i,s:i,s:i,s:i}", "name", db_server_name(app->db, s), "open",
                          st.open, "in_use", st.in_use, "waiting", st.waiting, "tenant_pools",
                          st.dbs, "tenants_tracked", st.tenants);
    json_object_set_new(j, "lru_hits", json_integer(st.hits));
    json_object_set_new(j, "lru_misses", json_integer(st.misses));
    json_object_set_new(j, "lru_evictions", json_integer(st.evictions));
    json_object_set_new(j, "connections_opened", json_integer(st.opened));
    json_object_set_new(j, "open_us", json_integer(st.open_us));
    json_object_set_new(j, "hold_us", json_integer(st.hold_us));
    return j;
}

int api_admin_servers(struct http_req *req)
{
    struct td_app *app = req->app;
    const struct td_config *c = app->cfg;
    json_t *list = json_array();
    for (int s = 0; s < db_server_count(app->db); s++)
        json_array_append_new(list, server_json(app, s));
    /* one budget for every server: the settings name it once */
    json_t *out =
        json_pack("{s:o,s:{s:i,s:i,s:i,s:i}}", "servers", list, "budget", "in_flight_per_server",
                  c->pool_size, "connections_per_server", c->max_connections, "tenant_pools",
                  c->tenant_pools, "tenant_share_percent", c->tenant_share);
    return http_reply_json(req, 200, out);
}
