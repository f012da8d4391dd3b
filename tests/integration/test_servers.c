/*
 * test_servers.c - several PostgreSQL servers (TENANTD_DB_SERVERS): the harness's
 * embedded cluster is "main", the test starts a second cluster of its own ("second",
 * unix socket only). New tenants spread over both; schema and database tenants on
 * "second" work end to end; moves between servers keep every row and leave nothing
 * behind on the old server.
 */
#include "harness.h"
#include "pgextra.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct td_server srv;
static struct td_pg second;

static int setup(void **state)
{
    (void)state;
    char env[256], ci[200];
    if (td_pg_start(&second, 5433) < 0)
        return -1;
    td_pg_conninfo(&second, "postgres", ci, sizeof(ci));
    snprintf(env, sizeof(env), "TENANTD_DB_SERVERS=second=%s", ci);
    const char *extra[] = {env, NULL};
    return td_server_start(&srv, extra);
}

static int teardown(void **state)
{
    (void)state;
    int rc = td_server_stop(&srv);
    td_pg_stop(&second);
    return rc;
}

/* Superuser connection to a database (NULL: the server's default) of server. */
static PGconn *conn_to(const char *server, const char *db)
{
    if (strcmp(server, "second") == 0)
        return td_pg_connect(&second, db);
    return td_db_in(&srv, db, "postgres");
}

/* Fingerprint of the tenant's rows where iso on server keeps them. */
static void fingerprint(const char *server, const char *iso, const char *tenant_id, char *out,
                        size_t size)
{
    char ident[40], db[48];
    td_storage_name(tenant_id, ident, sizeof(ident));
    snprintf(db, sizeof(db), "td_%s", ident + 2);
    PGconn *c = conn_to(server, strcmp(iso, "database") == 0 ? db : NULL);
    assert_non_null(c);
    assert_true(td_fingerprint(c, strcmp(iso, "pool") == 0 ? "pool" : ident, tenant_id, out, size));
    PQfinish(c);
}

/* What of the tenant exists on server: 1 schema, 2 database, 4 role, 8 pool rows. */
static int storage_on(const char *server, const char *tenant_id)
{
    char ident[40], sql[512];
    int st = 0;
    PGconn *c = conn_to(server, NULL);
    assert_non_null(c);
    td_storage_name(tenant_id, ident, sizeof(ident));
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_namespace WHERE nspname = '%s'", ident);
    st |= td_sql_count(c, sql) > 0 ? 1 : 0;
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_database WHERE datname = 'td_%s'",
             ident + 2);
    st |= td_sql_count(c, sql) > 0 ? 2 : 0;
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_roles WHERE rolname = '%s'", ident);
    st |= td_sql_count(c, sql) > 0 ? 4 : 0;
    snprintf(sql, sizeof(sql),
             "SELECT (SELECT count(*) FROM pool.users WHERE tenant_id = '%s') + "
             "(SELECT count(*) FROM pool.projects WHERE tenant_id = '%s')",
             tenant_id, tenant_id);
    st |= td_sql_count(c, sql) > 0 ? 8 : 0;
    PQfinish(c);
    return st;
}

static int expected(const char *iso)
{
    if (strcmp(iso, "pool") == 0)
        return 8;
    return strcmp(iso, "schema") == 0 ? 1 | 4 : 2 | 4;
}

static long create_on(const char *slug, const char *iso, const char *server, struct td_principal *p)
{
    char body[512], email[96];
    struct td_resp r;
    memset(p, 0, sizeof(*p));
    snprintf(email, sizeof(email), "o@%s.test", slug);
    snprintf(body, sizeof(body),
             "{\"slug\":\"%s\",\"name\":\"%s\",\"plan\":\"enterprise\",\"isolation\":\"%s\","
             "\"server\":\"%s\",\"owner\":{\"email\":\"%s\",\"password\":\"password-1\","
             "\"name\":\"Owner\"}}",
             slug, slug, iso, server, email);
    long st = td_admin(&srv, "POST", "/admin/tenants", body, &r);
    if (st == 201) {
        assert_string_equal(td_jstr(r.json, "server"), server);
        assert_string_equal(td_jstr(r.json, "isolation"), iso);
        snprintf(p->slug, sizeof(p->slug), "%s", slug);
        snprintf(p->tenant_id, sizeof(p->tenant_id), "%s", td_jstr(r.json, "id"));
        snprintf(p->email, sizeof(p->email), "%s", email);
        assert_int_equal(td_login(&srv, slug, email, "password-1", p->token, sizeof(p->token)),
                         200);
    }
    td_resp_free(&r);
    return st;
}

/* Create, read, change and delete a project and a user through the API. */
static void crud(const struct td_principal *p)
{
    char path[256], id[64], uid[64];
    struct td_resp r;
    snprintf(path, sizeof(path), "/t/%s/projects", p->slug);
    td_call(&srv, "POST", path, p->token, "{\"name\":\"on two servers\"}", &r);
    TD_ASSERT_STATUS(&r, 201);
    snprintf(id, sizeof(id), "%s", td_jstr(r.json, "id"));
    td_resp_free(&r);
    snprintf(path, sizeof(path), "/t/%s/projects/%s", p->slug, id);
    td_call(&srv, "PATCH", path, p->token, "{\"status\":\"archived\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "status"), "archived");
    td_resp_free(&r);
    td_call(&srv, "GET", path, p->token, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    td_call(&srv, "DELETE", path, p->token, NULL, &r);
    TD_ASSERT_STATUS(&r, 204);
    td_resp_free(&r);
    td_call(&srv, "GET", path, p->token, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 404, "not_found");
    td_resp_free(&r);
    snprintf(path, sizeof(path), "/t/%s/users", p->slug);
    td_call(
        &srv, "POST", path, p->token,
        "{\"email\":\"m@x.test\",\"password\":\"password-2\",\"name\":\"M\",\"role\":\"member\"}",
        &r);
    TD_ASSERT_STATUS(&r, 201);
    snprintf(uid, sizeof(uid), "%s", td_jstr(r.json, "id"));
    td_resp_free(&r);
    snprintf(path, sizeof(path), "/t/%s/users/%s", p->slug, uid);
    td_call(&srv, "DELETE", path, p->token, NULL, &r);
    TD_ASSERT_STATUS(&r, 204);
    td_resp_free(&r);
    snprintf(path, sizeof(path), "/t/%s/audit-logs?limit=100", p->slug);
    td_call(&srv, "GET", path, p->token, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_true(json_array_size(json_object_get(r.json, "data")) >= 6);
    td_resp_free(&r);
}

static void test_placement_spreads(void **state)
{
    (void)state;
    int on_main = 0, on_second = 0;
    for (int i = 0; i < 4; i++) {
        char slug[32];
        struct td_principal p;
        struct td_resp r;
        snprintf(slug, sizeof(slug), "spread-%d", i);
        assert_int_equal(td_admin_create_tenant(&srv, slug, NULL, NULL, NULL, NULL, &p), 201);
        char path[96];
        snprintf(path, sizeof(path), "/admin/tenants/%s", slug);
        td_admin(&srv, "GET", path, NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        const char *server = td_jstr(r.json, "server");
        assert_non_null(server);
        on_main += strcmp(server, "main") == 0;
        on_second += strcmp(server, "second") == 0;
        td_resp_free(&r);
    }
    /* the emptiest server is chosen each time: two and two */
    assert_int_equal(on_main, 2);
    assert_int_equal(on_second, 2);

    struct td_principal p;
    assert_int_equal(create_on("nowhere-1", "schema", "third", &p), 400);
}

static void test_database_tenant_on_second(void **state)
{
    (void)state;
    struct td_principal p;
    assert_int_equal(create_on("db-second", "database", "second", &p), 201);
    crud(&p);
    assert_int_equal(storage_on("second", p.tenant_id), expected("database"));
    assert_int_equal(storage_on("main", p.tenant_id), 0);
}

static void test_schema_tenant_on_second(void **state)
{
    (void)state;
    struct td_principal p;
    assert_int_equal(create_on("sc-second", "schema", "second", &p), 201);
    crud(&p);
    assert_int_equal(storage_on("second", p.tenant_id), expected("schema"));
    assert_int_equal(storage_on("main", p.tenant_id), 0);
}

static void test_pool_tenant_on_second(void **state)
{
    (void)state;
    struct td_principal p;
    assert_int_equal(create_on("po-second", "pool", "second", &p), 201);
    crud(&p);
    assert_int_equal(storage_on("second", p.tenant_id), expected("pool"));
    assert_int_equal(storage_on("main", p.tenant_id), 0);
}

static void test_move_between_servers(void **state)
{
    (void)state;
    static const struct {
        const char *server, *iso;
    } path[] = {{"second", "schema"}, {"main", "database"}, {"second", "database"},
                {"second", "pool"},   {"main", "pool"},     {"second", "schema"},
                {"main", "schema"}};
    struct td_principal p;
    struct td_resp r;
    char before[512], after[512], body[96], url[128], tok[2048];
    const char *from_server = "main", *from_iso = "schema";
    assert_int_equal(create_on("mover", "schema", "main", &p), 201);
    crud(&p);
    snprintf(url, sizeof(url), "/t/%s/projects", p.slug);
    td_call(&srv, "POST", url, p.token, "{\"name\":\"travels\",\"description\":\"far\"}", &r);
    TD_ASSERT_STATUS(&r, 201);
    td_resp_free(&r);

    for (size_t i = 0; i < sizeof(path) / sizeof(path[0]); i++) {
        fingerprint(from_server, from_iso, p.tenant_id, before, sizeof(before));
        if (strcmp(path[i].iso, from_iso) == 0)
            snprintf(body, sizeof(body), "{\"server\":\"%s\"}", path[i].server);
        else
            snprintf(body, sizeof(body), "{\"server\":\"%s\",\"isolation\":\"%s\"}", path[i].server,
                     path[i].iso);
        snprintf(url, sizeof(url), "/admin/tenants/%s/move", p.slug);
        td_admin(&srv, "POST", url, body, &r);
        TD_ASSERT_STATUS(&r, 200);
        assert_string_equal(td_jstr(r.json, "server"), path[i].server);
        assert_string_equal(td_jstr(r.json, "isolation"), path[i].iso);
        td_resp_free(&r);

        fingerprint(path[i].server, path[i].iso, p.tenant_id, after, sizeof(after));
        assert_string_equal(before, after);
        const char *other = strcmp(path[i].server, "main") == 0 ? "second" : "main";
        assert_int_equal(storage_on(path[i].server, p.tenant_id), expected(path[i].iso));
        assert_int_equal(storage_on(other, p.tenant_id), 0);

        assert_int_equal(td_login(&srv, p.slug, p.email, "password-1", tok, sizeof(tok)), 200);
        snprintf(url, sizeof(url), "/t/%s/projects", p.slug);
        td_call(&srv, "GET", url, p.token, NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        assert_int_equal(json_array_size(json_object_get(r.json, "data")), 1);
        td_resp_free(&r);
        from_server = path[i].server;
        from_iso = path[i].iso;
    }
    snprintf(url, sizeof(url), "/admin/tenants/%s/move", p.slug);
    td_admin(&srv, "POST", url, "{\"server\":\"third\"}", &r);
    TD_ASSERT_PROBLEM(&r, 400, "validation_failed");
    td_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_placement_spreads),
        cmocka_unit_test(test_database_tenant_on_second),
        cmocka_unit_test(test_schema_tenant_on_second),
        cmocka_unit_test(test_pool_tenant_on_second),
        cmocka_unit_test(test_move_between_servers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
