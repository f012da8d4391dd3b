/*
 * test_budget.c - tenantd's PostgreSQL connections stay inside the documented budget:
 * the request pool (TENANTD_POOL_SIZE, user tenantd_app) plus a fixed part, one
 * notification listener, the job workers (TENANTD_JOB_WORKERS), one kept catalog
 * connection shared by the table registry and provisioning, and the event loops' pipelines
 * (TENANTD_PIPELINE per loop: with 2 loops here, 2). Each part is named in
 * application_name so that pg_stat_activity can count it. By default the pipelines take the
 * resource routes' reads and leave their writes to the pools.
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

static long pipelined(struct td_server *srv)
{
    return td_metric(srv, "tenantd_db_pipeline_transactions_total{server=\"main\"}");
}

static void test_default_pipelines_take_reads_only(void **state)
{
    (void)state;
    struct td_server srv;
    const char *env[] = {"TENANTD_HTTP_THREADS=2", NULL}; /* TENANTD_PIPELINE unset */
    assert_int_equal(td_server_start(&srv, env), 0);
    struct td_principal t[2];
    /* enterprise: no project quota in the way of ten writes */
    assert_int_equal(td_admin_create_tenant(&srv, "reads-pool", "pool", "enterprise",
                                            "o@reads-pool.example", "budget-password-1", &t[0]),
                     201);
    assert_int_equal(td_admin_create_tenant(&srv, "reads-schema", "schema", "enterprise",
                                            "o@reads-schema.example", "budget-password-1", &t[1]),
                     201);
    for (int k = 0; k < 2; k++) {
        struct td_resp r;
        long before = pipelined(&srv);
        for (int i = 0; i < 10; i++) {
            assert_int_equal(td_call(&srv, "POST", "/projects", t[k].token, "{\"name\":\"w\"}", &r),
                             201);
            td_resp_free(&r);
        }
        long after_writes = pipelined(&srv);
        for (int i = 0; i < 10; i++) {
            assert_int_equal(td_call(&srv, "GET", "/projects", t[k].token, NULL, &r), 200);
            td_resp_free(&r);
        }
        long after_reads = pipelined(&srv);
        assert_true(before >= 0);
        assert_int_equal(after_writes, before);        /* writes on the pools */
        assert_true(after_reads >= after_writes + 10); /* every read on a pipeline */
    }
    assert_int_equal(td_server_stop(&srv), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connections_inside_budget),
        cmocka_unit_test(test_default_pipelines_take_reads_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
