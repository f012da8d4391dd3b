/*
 * migrations.c - GET /admin/migrations: the version the code expects, the catalog's
 * version, how many tenants are at each version, how many are behind, and the tenants
 * whose last migration failed with their errors (all from the catalog summary that
 * `tenantd migrate` and provisioning keep).
 */
#include "api/handlers.h"

#include "app/app.h"
#include "core/mem.h"
#include "db/sqljson.h"
#include "migrate/files.h"

#include <stdio.h>
#include <stdlib.h>

/* Compact JSON with the API's timestamps (db/sqljson.h); json_object_agg would write
 * { "1" : 4 }, so the by-version object is joined from its members. */
static const char summary_sql[] =
    "SELECT row_to_json(s) FROM (SELECT $1::int AS expected_version, "
    "(SELECT COALESCE(max(version), 0) FROM tenantd.catalog_migrations) AS catalog_version, "
    "$2::int AS catalog_expected_version, "
    "(SELECT count(*) FROM tenantd.tenants) AS tenants, "
    "(SELECT ('{' || COALESCE(string_agg(to_json(v.schema_version::text)::text || ':' || v.n, "
    "',' ORDER BY v.schema_version), '') || '}')::json FROM (SELECT schema_version, count(*) "
    "AS n FROM tenantd.tenants GROUP BY schema_version) v) AS tenants_by_version, "
    "(SELECT count(*) FROM tenantd.tenants WHERE schema_version < $1::int) AS pending, "
    "(SELECT " DB_SQL_TS("max(migrated_at)") " FROM tenantd.tenants) AS last_migrated_at, "
                                             "(SELECT COALESCE(json_agg(f ORDER BY f.slug), '[]') "
                                             "FROM (SELECT id, slug, isolation, "
                                             "server, schema_version AS version, migration_error "
                                             "AS error FROM tenantd.tenants "
                                             "WHERE migration_error IS NOT NULL) f) AS failed) s";

int api_admin_migrations(struct http_req *req)
{
    const char *dir = req->app->cfg->migrations_dir;
    char expected[16], cat_expected[16];
    snprintf(expected, sizeof(expected), "%d", mig_expected_get(&req->app->expected));
    char *cat_dir = td_xasprintf("%s/catalog", dir);
    int latest = mig_dir_latest(cat_dir);
    free(cat_dir);
    snprintf(cat_expected, sizeof(cat_expected), "%d",
             latest < 0 ? mig_latest(&req->app->catalog_migs) : latest);
    /* the runtime role may not read the ledgers: an operator route, rare, so a short
     * superuser connection */
    PGconn *pg = NULL;
    PGresult *r = NULL;
    int rc = db_admin_connect(req->app->db, 0, NULL, &pg);
    if (rc == 0)
        rc = db_admin_exec(pg, "summarising migrations", summary_sql, 2,
                           (const char *const[]){expected, cat_expected}, &r);
    if (rc == 0)
        rc = http_reply_json_text(req, 200, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
    PQclear(r);
    PQfinish(pg);
    return rc;
}
