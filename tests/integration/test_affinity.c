/*
 * test_affinity.c - which backend serves a schema tenant, end to end. With all four
 * connections of the budget open and idle, each tenant's transaction runs on the
 * connection of its own place (tenantd_db_pool_affine_total counts those), so each
 * backend sees about a quarter of the schemas; and a connection is recycled by its
 * backend's measured memory (TENANTD_BACKEND_MEMORY_MB), read from the real backend.
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

enum { NTENANTS = 12, ROUNDS = 5, NCLIENTS = 8 };

static struct td_principal tenants[NTENANTS];

static long metric(struct td_server *srv, const char *name)
{
    char series[128];
    snprintf(series, sizeof(series), "%s{server=\"main\"}", name);
    return td_metric(srv, series);
}

static void get_projects(struct td_server *srv, int i)
{
    char path[160];
    snprintf(path, sizeof(path), "/t/%.63s/projects", tenants[i].slug);
    struct td_resp r;
    assert_int_equal(td_call(srv, "GET", path, tenants[i].token, NULL, &r), 200);
    td_resp_free(&r);
}

struct client {
    struct td_server *srv;
    int id;
};

static void *client_main(void *arg)
{
    struct client *c = arg;
    for (int k = 0; k < 3 * NTENANTS; k++)
        get_projects(c->srv, (k + c->id) % NTENANTS);
    return NULL;
}

/* Concurrent clients until every place of the budget has its connection. */
static void open_every_place(struct td_server *srv)
{
    for (int attempt = 0; attempt < 5 && metric(srv, "tenantd_db_pool_open_connections") < 4;
         attempt++) {
        pthread_t th[NCLIENTS];
        struct client c[NCLIENTS];
        for (int i = 0; i < NCLIENTS; i++) {
            c[i] = (struct client){srv, i};
            assert_int_equal(pthread_create(&th[i], NULL, client_main, &c[i]), 0);
        }
        for (int i = 0; i < NCLIENTS; i++)
            pthread_join(th[i], NULL);
    }
    assert_int_equal(metric(srv, "tenantd_db_pool_open_connections"), 4);
}

static void start(struct td_server *srv, const char *memory_env)
{
    const char *env[] = {"TENANTD_POOL_SIZE=4",
                         "TENANTD_HTTP_THREADS=4",
                         "TENANTD_PIPELINE=0",
                         "TENANTD_CONN_MAX_TENANTS=3",
                         memory_env,
                         NULL};
    assert_int_equal(td_server_start(srv, env), 0);
    for (int i = 0; i < NTENANTS; i++) {
        char slug[32], email[64];
        snprintf(slug, sizeof(slug), "aff-%d", i);
        snprintf(email, sizeof(email), "owner@aff-%d.test", i);
        assert_int_equal(td_admin_create_tenant(srv, slug, "schema", "pro", email,
                                                "owner-password-1", &tenants[i]),
                         201);
    }
}

/* Sequential requests with every connection idle: each runs on its tenant's place. The
 * backends stay the same (memory is measured, so the count of 3 tenants does not apply,
 * and none is over the default bound). */
static void test_tenant_runs_on_its_connection(void **state)
{
    (void)state;
    struct td_server srv;
    start(&srv, "TENANTD_BACKEND_MEMORY_MB=1024");
    open_every_place(&srv);
    long affine = metric(&srv, "tenantd_db_pool_affine_total");
    long acquires = metric(&srv, "tenantd_db_pool_acquires_total");
    for (int round = 0; round < ROUNDS; round++)
        for (int i = 0; i < NTENANTS; i++)
            get_projects(&srv, i);
    long got = metric(&srv, "tenantd_db_pool_affine_total") - affine;
    long all = metric(&srv, "tenantd_db_pool_acquires_total") - acquires;
    printf("# affine %ld of %ld acquires (%d requests)\n", got, all, ROUNDS * NTENANTS);
    /* without affinity, a quarter; a few acquires are background work of no tenant */
    assert_true(got >= ROUNDS * NTENANTS * 9 / 10);
    assert_int_equal(metric(&srv, "tenantd_db_pool_recycled_memory_total"), 0);
    assert_int_equal(metric(&srv, "tenantd_db_pool_recycled_tenants_total"), 0);
    td_server_stop(&srv);
}

/* A bound below any backend's size: connections are measured and recycled. */
static void test_recycled_by_measured_memory(void **state)
{
    (void)state;
    struct td_server srv;
    start(&srv, "TENANTD_BACKEND_MEMORY_MB=1");
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < NTENANTS; i++)
            get_projects(&srv, i);
    assert_true(metric(&srv, "tenantd_db_pool_recycled_memory_total") > 0);
    assert_int_equal(metric(&srv, "tenantd_db_pool_recycled_tenants_total"), 0);
    td_server_stop(&srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tenant_runs_on_its_connection),
        cmocka_unit_test(test_recycled_by_measured_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
