/*
 * test_db_pool.c - database-per-tenant connections under steady load, end to end: with
 * 2 statements in flight at most (TENANTD_POOL_SIZE) and 6 tenant databases served by 4
 * concurrent clients, every database keeps its warm connection: no tenantd backend is
 * younger than the load, and no database holds more than the expected one or two. Also
 * the embedded cluster's authentication: peer on its socket, nothing else.
 */
#include "harness.h"

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

enum { NDB = 6, NCLIENTS = 4, PER_CLIENT = 60 };

struct client {
    struct td_server *srv;
    struct td_principal *t;
    int id, failures;
};

static void *client_main(void *arg)
{
    struct client *c = arg;
    unsigned seed = 99u + (unsigned)c->id;
    for (int i = 0; i < PER_CLIENT; i++) {
        seed = seed * 1103515245u + 12345u;
        struct td_principal *t = &c->t[(seed >> 16) % NDB];
        char path[160];
        snprintf(path, sizeof(path), "/t/%.63s/projects", t->slug);
        struct td_resp r;
        if (td_call(c->srv, "GET", path, t->token, NULL, &r) != 200)
            c->failures++;
        td_resp_free(&r);
    }
    return NULL;
}

static long count_of(PGconn *pg, const char *sql)
{
    char v[32];
    assert_true(td_sql_value(pg, sql, 0, NULL, v, sizeof(v)));
    return atol(v);
}

static void test_database_connections_stay_warm(void **state)
{
    (void)state;
    struct td_server srv;
    const char *env[] = {"TENANTD_POOL_SIZE=2", "TENANTD_HTTP_THREADS=4",
                         "TENANTD_MAX_CONNECTIONS=16", NULL};
    assert_int_equal(td_server_start(&srv, env), 0);
    struct td_principal t[NDB];
    for (int i = 0; i < NDB; i++) {
        char slug[32], email[64];
        snprintf(slug, sizeof(slug), "warm-%d", i);
        snprintf(email, sizeof(email), "owner@warm-%d.test", i);
        assert_int_equal(td_admin_create_tenant(&srv, slug, "database", "enterprise", email,
                                                "owner-password-1", &t[i]),
                         201);
    }
    /* one pass opens each database's connection */
    for (int i = 0; i < NDB; i++) {
        char path[160];
        snprintf(path, sizeof(path), "/t/%.63s/projects", t[i].slug);
        struct td_resp r;
        assert_int_equal(td_call(&srv, "GET", path, t[i].token, NULL, &r), 200);
        td_resp_free(&r);
    }
    PGconn *pg = td_db(&srv, "postgres");
    assert_non_null(pg);
    PGresult *mark = PQexec(pg, "CREATE TEMP TABLE load_start AS SELECT clock_timestamp() AS t");
    assert_int_equal(PQresultStatus(mark), PGRES_COMMAND_OK);
    PQclear(mark);

    pthread_t th[NCLIENTS];
    struct client cl[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++) {
        cl[i] = (struct client){.srv = &srv, .t = t, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, client_main, &cl[i]), 0);
    }
    for (int i = 0; i < NCLIENTS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(cl[i].failures, 0);
    }

    static const char backends[] = "FROM pg_stat_activity WHERE usename = 'tenantd_app' AND "
                                   "application_name = 'tenantd' AND datname LIKE 'td\\_%'";
    char sql[512];
    /* reused, not reopened: every tenant database's backend predates the load */
    snprintf(sql, sizeof(sql), "SELECT count(*) %s AND backend_start > (SELECT t FROM load_start)",
             backends);
    assert_int_equal(count_of(pg, sql), 0);
    snprintf(sql, sizeof(sql), "SELECT count(DISTINCT datname) %s", backends);
    assert_int_equal(count_of(pg, sql), NDB);
    /* a busy database's request waited for its connection rather than open more */
    snprintf(sql, sizeof(sql),
             "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n %s "
             "GROUP BY datname) x",
             backends);
    assert_true(count_of(pg, sql) <= 2);

    /* the embedded cluster authenticates by peer on its socket, and by nothing else */
    assert_int_equal(count_of(pg, "SELECT count(*) FROM pg_hba_file_rules WHERE "
                                  "type <> 'local' OR auth_method <> 'peer' OR error IS NOT NULL"),
                     0);
    assert_true(count_of(pg, "SELECT count(*) FROM pg_hba_file_rules") >= 1);
    PQfinish(pg);
    assert_int_equal(td_server_stop(&srv), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_database_connections_stay_warm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
