/*
 * test_hibernate.c - light hibernation of idle database tenants (TENANTD_HIBERNATE_AFTER):
 * a tenant idle for the configured time loses its connections and its database refuses
 * the runtime role; another tenant kept busy meanwhile is unaffected; the next request to
 * the sleeping tenant wakes it transparently, with every row intact.
 */
#include "harness.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_database_hibernates_and_wakes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
