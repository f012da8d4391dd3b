/*
 * migrations.c - GET /admin/migrations: the version the code expects, the catalog's
 * version, how many tenants are at each version, how many are behind, and the tenants
 * whose last migration failed with their errors (all from the catalog summary that
 * `tenantd migrate` and provisioning keep).
 */
#include "api/handlers.h"

#include "api/app.h"
#include "core/mem.h"
#include "migrate/files.h"

#include <stdio.h>
#include <stdlib.h>

#define TS(c) "to_char(" c " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

static const char summary_sql[] =
    "SELECT json_build_object("
    "'expected_version', $1::int, "
    "'catalog_version', (SELECT COALESCE(max(version), 0) FROM tenantd.catalog_migrations), "
    "'catalog_expected_version', $2::int, "
    "'tenants', (SELECT count(*) FROM tenantd.tenants), "
    "'tenants_by_version', (SELECT COALESCE(json_object_agg(v.schema_version::text, v.n "
    "ORDER BY v.schema_version), '{}'::json) FROM (SELECT schema_version, count(*) AS n "
    "FROM tenantd.tenants GROUP BY schema_version) v), "
    "'pending', (SELECT count(*) FROM tenantd.tenants WHERE schema_version < $1::int), "
    "'last_migrated_at', (SELECT " TS(
        "max(migrated_at)") " FROM tenantd.tenants), "
                            "'failed', (SELECT COALESCE(json_agg(json_build_object('id', id, "
                            "'slug', slug, "
                            "'isolation', isolation, 'server', server, 'version', schema_version, "
                            "'error', migration_error) ORDER BY slug), '[]'::json) "
                            "FROM tenantd.tenants WHERE migration_error IS NOT NULL))";

int api_admin_migrations(struct http_req *req)
{
    const char *dir = req->app->cfg->migrations_dir;
    char expected[16], cat_expected[16];
    snprintf(expected, sizeof(expected), "%d", mig_expected_version(dir));
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
