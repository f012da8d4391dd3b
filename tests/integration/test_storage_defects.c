/*
 * test_storage_defects.c - a tenant delete that cannot drop the storage keeps the tenant
 * (catalog row, storage, data) and answers a problem, and a retry once the obstacle is gone
 * drops everything; a tenant placed on a server this instance does not know fails with 503
 * (logged, naming the server) and is never served from another server.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PW "defects-pw-1"

static struct td_server srv;

TD_SUITE_SERVER(srv)

static long long count_sql(PGconn *db, const char *sql, const char *param)
{
    char v[64];
    assert_true(td_sql_value(db, sql, param ? 1 : 0, (const char *const[]){param}, v, sizeof(v)));
    return atoll(v);
}

static void exec_ok(PGconn *db, const char *sql)
{
    PGresult *r = td_sql(db, sql, 0, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fprintf(stderr, "%s: %s", sql, PQerrorMessage(db));
    assert_true(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
    PQclear(r);
}

/* 1 when the server log holds text. */
static int log_has(const char *text)
{
    FILE *f = fopen(srv.log_path, "r");
    char line[4096];
    int found = 0;
    while (f && !found && fgets(line, sizeof(line), f))
        found = strstr(line, text) != NULL;
    if (f)
        fclose(f);
    return found;
}

/* Catalog row, role, schema, database and pool rows of tenant id still present. */
struct left {
    long long row, role, schema, database, pool_rows;
};

static void storage_left(PGconn *db, const char *id, struct left *l)
{
    char ident[64], dbname[80];
    td_storage_name(id, ident, sizeof(ident));
    snprintf(dbname, sizeof(dbname), "td_%s", ident + 2);
    l->row = count_sql(db, "SELECT count(*) FROM tenantd.tenants WHERE id = $1", id);
    l->role = count_sql(db, "SELECT count(*) FROM pg_roles WHERE rolname = $1", ident);
    l->schema = count_sql(db, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", ident);
    l->database = count_sql(db, "SELECT count(*) FROM pg_database WHERE datname = $1", dbname);
    l->pool_rows = count_sql(db,
                             "SELECT (SELECT count(*) FROM pool.users WHERE tenant_id = $1) + "
                             "(SELECT count(*) FROM pool.projects WHERE tenant_id = $1)",
                             id);
}

static void make_tenant(const char *slug, const char *iso, struct td_principal *p)
{
    char email[128];
    struct td_resp r;
    snprintf(email, sizeof(email), "o@%s.test", slug);
    assert_int_equal(td_admin_create_tenant(&srv, slug, iso, "enterprise", email, PW, p), 201);
    char path[128];
    snprintf(path, sizeof(path), "/t/%s/projects", slug);
    td_call(&srv, "POST", path, p->token, "{\"name\":\"keep me\"}", &r);
    TD_ASSERT_STATUS(&r, 201);
    td_resp_free(&r);
}

static long delete_tenant(const char *slug, struct td_resp *r)
{
    char path[160];
    snprintf(path, sizeof(path), "/admin/tenants/%s?confirm=%s", slug, slug);
    return td_admin(&srv, "DELETE", path, NULL, r);
}

/* The tenant is whole: catalog row, its project served, its storage in place. */
static void assert_kept(PGconn *db, const struct td_principal *p, const char *iso)
{
    struct td_resp r;
    struct left l;
    char path[160];
    storage_left(db, p->tenant_id, &l);
    assert_int_equal(l.row, 1);
    if (!strcmp(iso, "pool")) {
        assert_true(l.pool_rows >= 2);
    } else {
        assert_int_equal(l.role, 1);
        assert_int_equal(!strcmp(iso, "database") ? l.database : l.schema, 1);
    }
    snprintf(path, sizeof(path), "/admin/tenants/%s", p->slug);
    td_admin(&srv, "GET", path, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    snprintf(path, sizeof(path), "/t/%s/projects", p->slug);
    td_call(&srv, "GET", path, p->token, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "data")), 1);
    td_resp_free(&r);
}

static void assert_gone(PGconn *db, const struct td_principal *p)
{
    struct left l;
    storage_left(db, p->tenant_id, &l);
    assert_int_equal(l.row + l.role + l.schema + l.database + l.pool_rows, 0);
}

/* A lock held on the tenant's data makes the drop time out: 503, everything kept. */
static void drop_blocked_by_lock(const char *slug, const char *iso)
{
    struct td_principal p;
    struct td_resp r;
    char sql[256], ident[64];
    make_tenant(slug, iso, &p);
    td_storage_name(p.tenant_id, ident, sizeof(ident));
    PGconn *db = td_db(&srv, "postgres"), *holder = td_db(&srv, "postgres");
    exec_ok(holder, "BEGIN");
    if (!strcmp(iso, "pool"))
        snprintf(sql, sizeof(sql), "SELECT 1 FROM pool.projects WHERE tenant_id = '%s' FOR UPDATE",
                 p.tenant_id);
    else
        snprintf(sql, sizeof(sql), "LOCK TABLE %s.projects IN ACCESS SHARE MODE", ident);
    exec_ok(holder, sql);

    delete_tenant(slug, &r);
    TD_ASSERT_PROBLEM(&r, 503, "unavailable");
    td_resp_free(&r);
    exec_ok(holder, "ROLLBACK");
    assert_kept(db, &p, iso);
    char want[128];
    snprintf(want, sizeof(want), "could not drop the storage of tenant %s", slug);
    assert_true(log_has(want));

    delete_tenant(slug, &r); /* the obstacle is gone: the retry drops it all */
    TD_ASSERT_STATUS(&r, 204);
    td_resp_free(&r);
    assert_gone(db, &p);
    PQfinish(holder);
    PQfinish(db);
}

static void test_drop_blocked_pool(void **state)
{
    (void)state;
    drop_blocked_by_lock("dd-lock-pool", "pool");
}

static void test_drop_blocked_schema(void **state)
{
    (void)state;
    drop_blocked_by_lock("dd-lock-schema", "schema");
}

/* The tenant's role holds a privilege in another database, so DROP ROLE fails: the delete
 * is a 500, the catalog row and role stay, and a retry after revoking it succeeds. */
static void drop_blocked_by_dependency(const char *slug, const char *iso, const char *other)
{
    struct td_principal p;
    struct td_resp r;
    char sql[256], ident[64];
    make_tenant(slug, iso, &p);
    td_storage_name(p.tenant_id, ident, sizeof(ident));
    PGconn *db = td_db(&srv, "postgres");
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", other);
    exec_ok(db, sql);
    PGconn *odb = td_db_in(&srv, other, "postgres");
    exec_ok(odb, "CREATE TABLE hold (x int)");
    snprintf(sql, sizeof(sql), "GRANT SELECT ON hold TO %s", ident);
    exec_ok(odb, sql);

    delete_tenant(slug, &r);
    TD_ASSERT_PROBLEM(&r, 500, "internal");
    td_resp_free(&r);
    struct left l;
    storage_left(db, p.tenant_id, &l);
    assert_int_equal(l.row, 1);
    assert_int_equal(l.role, 1);
    if (!strcmp(iso, "schema"))
        assert_kept(db, &p, iso); /* schema and role go in one transaction */
    char want[128];
    snprintf(want, sizeof(want), "could not drop the storage of tenant %s", slug);
    assert_true(log_has(want));

    exec_ok(odb, "DROP TABLE hold");
    PQfinish(odb);
    delete_tenant(slug, &r);
    TD_ASSERT_STATUS(&r, 204);
    td_resp_free(&r);
    assert_gone(db, &p);
    snprintf(sql, sizeof(sql), "DROP DATABASE %s", other);
    exec_ok(db, sql);
    PQfinish(db);
}

static void test_drop_blocked_database(void **state)
{
    (void)state;
    drop_blocked_by_dependency("dd-dep-db", "database", "it_other_db");
}

static void test_drop_blocked_schema_role(void **state)
{
    (void)state;
    drop_blocked_by_dependency("dd-dep-schema", "schema", "it_other_schema");
}

/* ---- a server this instance does not know ---------------------------------------- */

static void place_on(PGconn *db, const char *id, const char *server)
{
    PGresult *r = td_sql(db,
                         "WITH u AS (UPDATE tenantd.tenants SET server = $2 WHERE id = $1 "
                         "RETURNING id) SELECT pg_notify('tenantd_tenants', id::text) FROM u",
                         2, (const char *const[]){id, server});
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    PQclear(r);
    td_sleep_ms(1500); /* the notification reaches the cache */
}

static void test_unknown_server(void **state)
{
    (void)state;
    struct td_principal p;
    struct td_resp r;
    make_tenant("dd-lost", "pool", &p);
    PGconn *db = td_db(&srv, "postgres");
    char home[64];
    assert_true(td_sql_value(db, "SELECT server FROM tenantd.tenants WHERE id = $1", 1,
                             (const char *const[]){p.tenant_id}, home, sizeof(home)));
    place_on(db, p.tenant_id, "elsewhere");

    /* its rows still sit on this server's pool: they must not be served from here */
    td_call(&srv, "GET", "/t/dd-lost/projects", p.token, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 503, "unavailable");
    td_resp_free(&r);
    td_http(&srv, "POST", "/t/dd-lost/auth/login", NULL,
            "{\"email\":\"o@dd-lost.test\",\"password\":\"" PW "\"}", &r);
    TD_ASSERT_PROBLEM(&r, 503, "unavailable");
    td_resp_free(&r);
    td_admin(&srv, "GET", "/admin/tenants/dd-lost/export", NULL, &r);
    TD_ASSERT_PROBLEM(&r, 503, "unavailable");
    td_resp_free(&r);
    delete_tenant("dd-lost", &r);
    TD_ASSERT_PROBLEM(&r, 503, "unavailable");
    td_resp_free(&r);
    assert_true(log_has("server \"elsewhere\", which this instance does not know"));
    assert_int_equal(
        count_sql(db, "SELECT count(*) FROM pool.projects WHERE tenant_id = $1", p.tenant_id), 1);

    place_on(db, p.tenant_id, home); /* back home: served again */
    td_call(&srv, "GET", "/t/dd-lost/projects", p.token, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    PQfinish(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drop_blocked_pool),
        cmocka_unit_test(test_drop_blocked_schema),
        cmocka_unit_test(test_drop_blocked_database),
        cmocka_unit_test(test_drop_blocked_schema_role),
        cmocka_unit_test(test_unknown_server),
    };
    return cmocka_run_group_tests_name("storage_defects", tests, setup, teardown);
}
