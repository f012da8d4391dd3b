/*
 * test_hibernate.c - light hibernation of idle database tenants (TENANTD_HIBERNATE_AFTER):
 * a tenant idle for the configured time loses its connections and its database refuses
 * the runtime role; another tenant kept busy meanwhile is unaffected; the next request to
 * the sleeping tenant wakes it transparently, with every row intact. An operator can
 * also hibernate and wake a database tenant by hand (admin API and CLI), and sees the
 * state in GET /admin/tenants/{id}; a tenant without a database of its own is refused.
 */
#include "harness.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static void sql_text(PGconn *pg, const char *sql, const char *param, char *out, size_t size)
{
    const char *params[] = {param};
    assert_true(td_sql_value(pg, sql, param ? 1 : 0, param ? params : NULL, out, size));
}

/* The database of a tenant: td_<32 hex of its id> (the schema is t_<hex>). */
static void db_name(const char *tenant_id, char *out, size_t size)
{
    char schema[64];
    td_storage_name(tenant_id, schema, sizeof(schema));
    snprintf(out, size, "td_%.40s", schema + 2);
}

static long get_projects(struct td_server *srv, const struct td_principal *t)
{
    char path[160];
    snprintf(path, sizeof(path), "/t/%.63s/projects", t->slug);
    struct td_resp r;
    long st = td_call(srv, "GET", path, t->token, NULL, &r);
    if (st == 200)
        st = json_array_size(json_object_get(r.json, "data")) == 1 ? 200 : 599;
    td_resp_free(&r);
    return st;
}

static void test_idle_database_hibernates_and_wakes(void **state)
{
    (void)state;
    struct td_server srv;
    const char *env[] = {"TENANTD_HIBERNATE_AFTER=2s", NULL};
    assert_int_equal(td_server_start(&srv, env), 0);
    struct td_principal a, b;
    assert_int_equal(td_admin_create_tenant(&srv, "sleepy", "database", "enterprise",
                                            "owner@sleepy.test", "owner-password-1", &a),
                     201);
    assert_int_equal(td_admin_create_tenant(&srv, "busy", "database", "enterprise",
                                            "owner@busy.test", "owner-password-1", &b),
                     201);
    struct td_resp r;
    assert_int_equal(
        td_call(&srv, "POST", "/t/sleepy/projects", a.token, "{\"name\":\"kept\"}", &r), 201);
    td_resp_free(&r);
    assert_int_equal(td_call(&srv, "POST", "/t/busy/projects", b.token, "{\"name\":\"b\"}", &r),
                     201);
    td_resp_free(&r);
    assert_int_equal(get_projects(&srv, &a), 200);

    char dba[64], v[64];
    db_name(a.tenant_id, dba, sizeof(dba));
    PGconn *pg = td_db(&srv, "postgres");
    assert_non_null(pg);
    sql_text(pg, "SELECT count(*) FROM pg_database WHERE datname = $1", dba, v, sizeof(v));
    assert_string_equal(v, "1");

    /* B stays busy; A sleeps after 2 s idle */
    int asleep = 0;
    for (int i = 0; i < 40 && !asleep; i++) {
        assert_int_equal(get_projects(&srv, &b), 200);
        td_sleep_ms(250);
        sql_text(pg, "SELECT datconnlimit FROM pg_database WHERE datname = $1", dba, v, sizeof(v));
        asleep = strcmp(v, "0") == 0;
    }
    assert_true(asleep);
    sql_text(pg,
             "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND usename = 'tenantd_app'",
             dba, v, sizeof(v));
    assert_string_equal(v, "0");
    char dbb[64];
    db_name(b.tenant_id, dbb, sizeof(dbb));
    sql_text(pg, "SELECT datconnlimit FROM pg_database WHERE datname = $1", dbb, v, sizeof(v));
    assert_string_equal(v, "-1");

    /* the next request wakes A, row intact, in one request */
    double t0 = td_now_s();
    assert_int_equal(get_projects(&srv, &a), 200);
    fprintf(stderr, "wake: first request after hibernation answered in %.0f ms\n",
            (td_now_s() - t0) * 1000);
    sql_text(pg, "SELECT datconnlimit FROM pg_database WHERE datname = $1", dba, v, sizeof(v));
    assert_string_equal(v, "-1");
    PQfinish(pg);
    assert_int_equal(td_server_stop(&srv), 0);
}

/* 1 when the runtime role can connect to database dbname (the harness logs a refusal). */
static int app_can_connect(struct td_server *srv, const char *dbname)
{
    PGconn *c = td_db_in(srv, dbname, "tenantd_app");
    PQfinish(c);
    return c != NULL;
}

/* GET /admin/tenants/{id}: its "hibernated", and whether "usage" is an object. */
static int shown_hibernated(struct td_server *srv, const char *id, int *has_usage)
{
    char path[128];
    struct td_resp r;
    snprintf(path, sizeof(path), "/admin/tenants/%s", id);
    assert_int_equal(td_admin(srv, "GET", path, NULL, &r), 200);
    json_t *h = json_object_get(r.json, "hibernated");
    assert_true(json_is_boolean(h));
    *has_usage = json_is_object(json_object_get(r.json, "usage"));
    int v = json_is_true(h);
    td_resp_free(&r);
    return v;
}

/* POST /admin/tenants/{id}/{what}; 200 responses must show the tenant in that state. */
static long post_sleep(struct td_server *srv, const char *id, const char *what, struct td_resp *r)
{
    char path[160];
    snprintf(path, sizeof(path), "/admin/tenants/%s/%s", id, what);
    long st = td_admin(srv, "POST", path, NULL, r);
    if (st == 200) {
        assert_string_equal(td_jstr(r->json, "id"), id);
        assert_int_equal(json_is_true(json_object_get(r->json, "hibernated")),
                         strcmp(what, "hibernate") == 0);
    }
    return st;
}

/* `tenantd tenants <what> <slug>` against srv's data dir: the exit status. */
static int cli(struct td_server *srv, const char *what, const char *slug)
{
    const char *bin = getenv("TENANTD_BIN");
    assert_non_null(bin);
    setenv("TENANTD_DATA_DIR", srv->dir, 1);
    setenv("TENANTD_ADMIN_TOKEN", TD_TEST_ADMIN_TOKEN, 1);
    setenv("TENANTD_JWT_SECRET", TD_TEST_JWT_SECRET, 1);
    char *argv[] = {(char *)bin, "tenants", (char *)what, (char *)slug, NULL};
    return td_run_quiet(argv);
}

static void test_operator_hibernates_and_wakes(void **state)
{
    (void)state;
    struct td_server srv;
    struct td_resp r;
    int usage;
    /* no TENANTD_HIBERNATE_AFTER: waking must not depend on the idle sweep */
    assert_int_equal(td_server_start(&srv, NULL), 0);
    struct td_principal a, p;
    assert_int_equal(td_admin_create_tenant(&srv, "handy", "database", "enterprise",
                                            "owner@handy.test", "owner-password-1", &a),
                     201);
    assert_int_equal(td_admin_create_tenant(&srv, "pooled", "pool", "free", "owner@pooled.test",
                                            "owner-password-1", &p),
                     201);
    assert_int_equal(td_call(&srv, "POST", "/t/handy/projects", a.token, "{\"name\":\"kept\"}", &r),
                     201);
    td_resp_free(&r);
    char dba[64];
    db_name(a.tenant_id, dba, sizeof(dba));
    assert_false(shown_hibernated(&srv, a.tenant_id, &usage));
    assert_true(usage);
    assert_true(app_can_connect(&srv, dba));

    /* by API: the database refuses the runtime role, and showing it does not wake it */
    assert_int_equal(post_sleep(&srv, a.tenant_id, "hibernate", &r), 200);
    td_resp_free(&r);
    assert_false(app_can_connect(&srv, dba));
    assert_true(shown_hibernated(&srv, a.tenant_id, &usage));
    assert_false(usage);
    assert_false(app_can_connect(&srv, dba));
    /* the next tenant request wakes it, row intact */
    assert_int_equal(get_projects(&srv, &a), 200);
    assert_true(app_can_connect(&srv, dba));
    assert_false(shown_hibernated(&srv, a.tenant_id, &usage));

    /* wake by API */
    assert_int_equal(post_sleep(&srv, a.tenant_id, "hibernate", &r), 200);
    td_resp_free(&r);
    assert_int_equal(post_sleep(&srv, a.tenant_id, "wake", &r), 200);
    td_resp_free(&r);
    assert_true(app_can_connect(&srv, dba));
    assert_false(shown_hibernated(&srv, a.tenant_id, &usage));

    /* a tenant without a database of its own cannot sleep; an unknown one is not found */
    assert_int_equal(post_sleep(&srv, p.tenant_id, "hibernate", &r), 409);
    assert_true(td_check_problem(&r, 409, "conflict"));
    td_resp_free(&r);
    assert_int_equal(post_sleep(&srv, "00000000-0000-4000-8000-000000000000", "wake", &r), 404);
    td_resp_free(&r);
    assert_false(shown_hibernated(&srv, p.tenant_id, &usage));

    /* the CLI does the same */
    assert_int_equal(cli(&srv, "hibernate", "handy"), 0);
    assert_false(app_can_connect(&srv, dba));
    assert_true(shown_hibernated(&srv, a.tenant_id, &usage));
    assert_int_equal(cli(&srv, "wake", "handy"), 0);
    assert_true(app_can_connect(&srv, dba));
    assert_int_equal(cli(&srv, "hibernate", "pooled"), 1);
    assert_int_equal(cli(&srv, "hibernate", "handy"), 0);
    assert_int_equal(get_projects(&srv, &a), 200);

    /* a wake that cannot get the tenant connected (here its runtime role also lost
     * CONNECT) answers 503 with Retry-After, never a 500; once it can, it works again */
    PGconn *pg = td_db(&srv, "postgres");
    assert_non_null(pg);
    char acl[512], q[1024];
    sql_text(pg, "SELECT datacl::text FROM pg_database WHERE datname = $1", dba, acl, sizeof(acl));
    snprintf(q, sizeof(q), "REVOKE CONNECT ON DATABASE %s FROM PUBLIC, tenantd_app", dba);
    PQclear(td_sql(pg, q, 0, NULL));
    assert_int_equal(post_sleep(&srv, a.tenant_id, "hibernate", &r), 200);
    td_resp_free(&r);
    char path[160], ra[16];
    snprintf(path, sizeof(path), "/t/%.63s/projects", a.slug);
    double t0 = td_now_s();
    assert_int_equal(td_call(&srv, "GET", path, a.token, NULL, &r), 503);
    fprintf(stderr, "failed wake answered 503 in %.0f ms\n", (td_now_s() - t0) * 1000);
    assert_true(td_check_problem(&r, 503, "unavailable"));
    assert_non_null(td_resp_header(&r, "Retry-After", ra, sizeof(ra)));
    td_resp_free(&r);
    const char *params[] = {acl, dba};
    PQclear(
        td_sql(pg, "UPDATE pg_database SET datacl = $1::aclitem[] WHERE datname = $2", 2, params));
    PQfinish(pg);
    assert_int_equal(get_projects(&srv, &a), 200);
    assert_int_equal(td_server_stop(&srv), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_database_hibernates_and_wakes),
        cmocka_unit_test(test_operator_hibernates_and_wakes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
