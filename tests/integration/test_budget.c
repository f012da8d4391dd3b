/*
 * test_budget.c - tenantd's PostgreSQL connections stay inside the documented budget:
 * the request pool (TENANTD_POOL_SIZE, user tenantd_app) plus a fixed part, one
 * notification listener, the job workers (TENANTD_JOB_WORKERS), one kept catalog
 * connection shared by the table registry and provisioning, and the event loops' pipelines
 * (TENANTD_PIPELINE per loop: with 2 loops here, 2). Each part is named in
 * application_name so that pg_stat_activity can count it.
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

enum { POOL = 2, JOBS = 2, LOOPS = 2, NTENANTS = 3, NCLIENTS = 4, PER_CLIENT = 30 };

struct client {
    struct td_server *srv;
    struct td_principal *t;
    int id, failures;
};

static void *client_main(void *arg)
{
    struct client *c = arg;
    for (int i = 0; i < PER_CLIENT; i++) {
        struct td_principal *t = &c->t[(c->id + i) % NTENANTS];
        struct td_resp r;
        if (td_call(c->srv, "GET", "/projects", t->token, NULL, &r) != 200)
            c->failures++;
        td_resp_free(&r);
    }
    return NULL;
}

static long count_of(PGconn *pg, const char *where)
{
    char sql[256], v[32];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND %s",
             where);
    assert_true(td_sql_value(pg, sql, 0, NULL, v, sizeof(v)));
    return atol(v);
}

static void test_connections_inside_budget(void **state)
{
    (void)state;
    struct td_server srv;
    const char *env[] = {"TENANTD_POOL_SIZE=2", "TENANTD_JOB_WORKERS=2", "TENANTD_HTTP_THREADS=2",
                         "TENANTD_PIPELINE=1", NULL};
    assert_int_equal(td_server_start(&srv, env), 0);
    struct td_principal t[NTENANTS];
    for (int i = 0; i < NTENANTS; i++) {
        char slug[32], email[64];
        snprintf(slug, sizeof(slug), "budget-%d", i);
        snprintf(email, sizeof(email), "owner@budget-%d.example", i);
        assert_int_equal(td_signup(&srv, slug, email, "budget-password-1", &t[i]), 201);
    }
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
    /* the registry's watcher has looked again (every second) after the signups */
    td_sleep_ms(2500);
    PGconn *pg = td_db(&srv, "postgres");
    assert_non_null(pg);
    assert_int_equal(count_of(pg, "application_name = 'tenantd listener'"), 1);
    assert_int_equal(count_of(pg, "application_name = 'tenantd jobs'"), JOBS);
    assert_true(count_of(pg, "application_name = 'tenantd admin'") <= 1);
    long pool = count_of(pg, "application_name = 'tenantd'");
    assert_true(pool >= 1 && pool <= POOL);
    assert_int_equal(count_of(pg, "application_name = 'tenantd' AND usename <> 'tenantd_app'"), 0);
    assert_int_equal(count_of(pg, "application_name = 'tenantd pipeline' AND usename = "
                                  "'tenantd_app'"),
                     LOOPS);
    assert_true(count_of(pg, "application_name LIKE 'tenantd%'") <= POOL + LOOPS + 1 + JOBS + 1);
    PQfinish(pg);
    assert_int_equal(td_server_stop(&srv), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connections_inside_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
