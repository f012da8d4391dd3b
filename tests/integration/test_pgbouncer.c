/*
 * test_pgbouncer.c - tenantd behind a real PgBouncer (Debian's 1.18, transaction pooling,
 * two server connections per database) in front of a cluster of the test's own. The
 * catalog, bootstrap, migrations and LISTEN stay on direct connections
 * (TENANTD_DATABASE_URL); every runtime transaction goes through PgBouncer
 * (TENANTD_POOLER_URLS), unprepared (TENANTD_PREPARE=0). Tenant CRUD in every isolation,
 * concurrent traffic and moves must work, and a server connection PgBouncer hands out
 * afterwards carries no tenant state.
 */
#include "harness.h"
#include "pgextra.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_PORT 5434
#define BOUNCER_PORT 6434

static struct td_server srv;
static struct td_pg pg;
static const char *const isolations[3] = {"pool", "schema", "database"};
static struct td_principal tenants[3];

static int setup(void **state)
{
    (void)state;
    char direct[256], pooled[256], url[300], pool[300];
    if (td_pg_start(&pg, PG_PORT) < 0)
        return -1;
    PGconn *c = td_pg_connect(&pg, "postgres");
    if (!c)
        return -1;
    PQclear(PQexec(c, "CREATE DATABASE tenantd"));
    PQfinish(c);
    if (td_bouncer_start(&pg, BOUNCER_PORT, 2) < 0)
        return -1;
    td_pg_conninfo(&pg, "tenantd", direct, sizeof(direct));
    snprintf(pooled, sizeof(pooled), "host=%s port=%d dbname=tenantd", pg.dir, BOUNCER_PORT);
    snprintf(url, sizeof(url), "TENANTD_DATABASE_URL=%s", direct);
    snprintf(pool, sizeof(pool), "TENANTD_POOLER_URLS=main=%s", pooled);
    const char *extra[] = {url, pool, "TENANTD_PREPARE=0", "TENANTD_POOL_SIZE=6", NULL};
    return td_server_start(&srv, extra);
}

static int teardown(void **state)
{
    (void)state;
    int rc = td_server_stop(&srv);
    td_pg_stop(&pg);
    return rc;
}

/* Transactions PgBouncer has relayed to database db (SHOW STATS), or -1. */
static long long bouncer_xacts(const char *db)
{
    PGconn *c = td_bouncer_connect(&pg, "pgbouncer", "postgres");
    long long n = -1;
    if (!c)
        return -1;
    PGresult *r = PQexec(c, "SHOW STATS");
    int dcol = PQfnumber(r, "database"), xcol = PQfnumber(r, "total_xact_count");
    for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++)
        if (strcmp(PQgetvalue(r, i, dcol), db) == 0)
            n = atoll(PQgetvalue(r, i, xcol));
    PQclear(r);
    PQfinish(c);
    return n;
}

static void crud(const struct td_principal *p, const char *name)
{
    char path[256], body[128], id[64];
    struct td_resp r;
    snprintf(path, sizeof(path), "/t/%.64s/projects", p->slug);
    snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
    td_call(&srv, "POST", path, p->token, body, &r);
    TD_ASSERT_STATUS(&r, 201);
    snprintf(id, sizeof(id), "%s", td_jstr(r.json, "id"));
    td_resp_free(&r);
    snprintf(path, sizeof(path), "/t/%.64s/projects/%.40s", p->slug, id);
    td_call(&srv, "PATCH", path, p->token, "{\"description\":\"behind pgbouncer\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    td_call(&srv, "GET", path, p->token, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "description"), "behind pgbouncer");
    td_resp_free(&r);
    snprintf(path, sizeof(path), "/t/%.64s/users", p->slug);
    td_call(
        &srv, "POST", path, p->token,
        "{\"email\":\"m@b.test\",\"password\":\"password-2\",\"name\":\"M\",\"role\":\"admin\"}",
        &r);
    TD_ASSERT_STATUS(&r, 201);
    td_resp_free(&r);
    snprintf(path, sizeof(path), "/t/%.64s/audit-logs", p->slug);
    td_call(&srv, "GET", path, p->token, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "data")), 4);
    td_resp_free(&r);
}

static void test_crud_every_isolation(void **state)
{
    (void)state;
    long long before = bouncer_xacts("tenantd");
    for (int i = 0; i < 3; i++) {
        char slug[32], email[64];
        snprintf(slug, sizeof(slug), "pgb-%s", isolations[i]);
        snprintf(email, sizeof(email), "o@%s.test", slug);
        assert_int_equal(td_admin_create_tenant(&srv, slug, isolations[i], "enterprise", email,
                                                "password-1", &tenants[i]),
                         201);
        assert_true(tenants[i].token[0] != '\0');
        crud(&tenants[i], slug);
    }
    /* the runtime transactions went through PgBouncer, database tenants included */
    assert_true(bouncer_xacts("tenantd") > (before < 0 ? 0 : before) + 10);
    char ident[40], db[48];
    td_storage_name(tenants[2].tenant_id, ident, sizeof(ident));
    snprintf(db, sizeof(db), "td_%s", ident + 2);
    assert_true(bouncer_xacts(db) >= 5);
}

/* Concurrent readers of three tenants share PgBouncer's two server connections. */
struct reader {
    int k;
    int bad;
};

static void *reader_main(void *arg)
{
    struct reader *rd = arg;
    const struct td_principal *p = &tenants[rd->k];
    char path[128];
    snprintf(path, sizeof(path), "/t/%.64s/projects", p->slug);
    for (int i = 0; i < 40; i++) {
        struct td_resp r;
        td_call(&srv, "GET", path, p->token, NULL, &r);
        json_t *data = json_object_get(r.json, "data");
        if (r.status != 200 || json_array_size(data) != 1 ||
            strcmp(td_jstr(json_array_get(data, 0), "name"), p->slug) != 0)
            rd->bad++;
        td_resp_free(&r);
    }
    return NULL;
}

static void test_concurrent_tenants(void **state)
{
    (void)state;
    struct reader rd[6];
    pthread_t th[6];
    for (int i = 0; i < 6; i++) {
        rd[i] = (struct reader){i % 3, 0};
        assert_int_equal(pthread_create(&th[i], NULL, reader_main, &rd[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(rd[i].bad, 0);
    }
}

/* The server connections tenantd's transactions ran on are back in PgBouncer's pool with
 * no search_path, tenant setting or role left behind. */
static void test_no_session_state(void **state)
{
    (void)state;
    PGconn *c = td_bouncer_connect(&pg, "tenantd", "tenantd_app");
    assert_non_null(c);
    for (int i = 0; i < 10; i++) {
        char v[256];
        assert_true(td_sql_value(c,
                                 "SELECT current_setting('search_path') || '|' || "
                                 "coalesce(current_setting('app.tenant_id', true), '') || '|' || "
                                 "current_user",
                                 0, NULL, v, sizeof(v)));
        assert_string_equal(v, "\"$user\", public||tenantd_app");
        /* as the runtime role, with no tenant set, the shared tables show nothing */
        assert_true(td_sql_value(c, "SELECT count(*) FROM pool.projects", 0, NULL, v, sizeof(v)));
        assert_string_equal(v, "0");
    }
    PQfinish(c);
}

static void test_move_behind_pgbouncer(void **state)
{
    (void)state;
    static const char *const path[] = {"schema", "database", "pool"};
    const struct td_principal *p = &tenants[0];
    for (int i = 0; i < 3; i++) {
        char url[128], body[64], name[32];
        struct td_resp r;
        snprintf(url, sizeof(url), "/admin/tenants/%s/move", p->slug);
        snprintf(body, sizeof(body), "{\"isolation\":\"%s\"}", path[i]);
        td_admin(&srv, "POST", url, body, &r);
        TD_ASSERT_STATUS(&r, 200);
        td_resp_free(&r);
        snprintf(url, sizeof(url), "/t/%s/projects?limit=100", p->slug);
        td_call(&srv, "GET", url, p->token, NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        assert_int_equal(json_array_size(json_object_get(r.json, "data")), 1 + i);
        td_resp_free(&r);
        snprintf(url, sizeof(url), "/t/%.64s/projects", p->slug);
        snprintf(name, sizeof(name), "after-%s", path[i]);
        snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
        td_call(&srv, "POST", url, p->token, body, &r);
        TD_ASSERT_STATUS(&r, 201);
        td_resp_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crud_every_isolation),
        cmocka_unit_test(test_concurrent_tenants),
        cmocka_unit_test(test_no_session_state),
        cmocka_unit_test(test_move_behind_pgbouncer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
