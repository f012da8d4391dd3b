/*
 * test_pipeline.c - the resource routes on an event loop's PostgreSQL pipeline, over HTTP,
 * with one loop so that concurrent requests share its one pipeline: tenants of pool and
 * schema isolation at once where one create fails on a constraint (only it fails, the
 * others commit), a client that goes away while its statement is in flight (its write
 * still commits, the server goes on), and the pipeline's backend ended with requests in
 * it (each gets a 503 or its own answer, and the server serves again).
 */
#include "harness.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct td_server srv;
static struct td_principal ta, tb, ts; /* pool, pool, schema */
static char s_ident[40];

static int setup(void **state)
{
    (void)state;
    /* one loop and its pipeline; no per-tenant gate on the loops (a deferred request holds
     * its tenant's place there, and these tests put several of one tenant in flight); the
     * tests hold the pipeline behind a lock on purpose, so it stays open for more */
    const char *env[] = {"TENANTD_HTTP_THREADS=1",          "TENANTD_PIPELINE=1",
                         "TENANTD_PIPELINE_WRITES=1",       "TENANTD_POOL_SIZE=2",
                         "TENANTD_USER_CHECK_TTL=0",        "TENANTD_TENANT_SHARE=100",
                         "TENANTD_PIPELINE_STALL_MS=60000", NULL};
    if (td_server_start(&srv, env) < 0)
        return -1;
    if (td_admin_create_tenant(&srv, "pl-a", "pool", "enterprise", "o@pl-a.test", "owner-pass-1",
                               &ta) != 201 ||
        td_admin_create_tenant(&srv, "pl-b", "pool", "enterprise", "o@pl-b.test", "owner-pass-1",
                               &tb) != 201 ||
        td_admin_create_tenant(&srv, "pl-s", "schema", "enterprise", "o@pl-s.test", "owner-pass-1",
                               &ts) != 201)
        return -1;
    td_storage_name(ts.tenant_id, s_ident, sizeof(s_ident));
    return 0;
}

TD_SUITE_TEARDOWN(srv)

/* One request on its own thread. */
struct call {
    struct td_principal *t;
    const char *method;
    char path[160];
    char body[160];
    long status;
    char name[64]; /* the answer's "name", if any */
    pthread_t th;
};

static void *call_main(void *arg)
{
    struct call *c = arg;
    struct td_resp r;
    c->status = td_call(&srv, c->method, c->path, c->t->token, c->body[0] ? c->body : NULL, &r);
    const char *n = r.json ? td_jstr(r.json, "name") : NULL;
    snprintf(c->name, sizeof(c->name), "%s", n ? n : "");
    td_resp_free(&r);
    return NULL;
}

static void post_project(struct call *c, struct td_principal *t, const char *name,
                         const char *status)
{
    memset(c, 0, sizeof(*c));
    c->t = t;
    c->method = "POST";
    snprintf(c->path, sizeof(c->path), "/t/%s/projects", t->slug);
    snprintf(c->body, sizeof(c->body), "{\"name\":\"%s\",\"status\":\"%s\"}", name, status);
    assert_int_equal(pthread_create(&c->th, NULL, call_main, c), 0);
}

static long metric(const char *name)
{
    char series[128];
    snprintf(series, sizeof(series), "%s{server=\"main\"}", name);
    return td_metric(&srv, series);
}

/* Held from another connection, the lock keeps the pipeline's first transaction waiting,
 * and the requests that come meanwhile queue behind it on the same connection. */
static PGconn *lock_projects(void)
{
    PGconn *su = td_db(&srv, "postgres");
    assert_non_null(su);
    PGresult *r = PQexec(su, "BEGIN; LOCK TABLE pool.projects IN ACCESS EXCLUSIVE MODE");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    return su;
}

static void unlock_projects(PGconn *su)
{
    PGresult *r = PQexec(su, "COMMIT");
    PQclear(r);
    PQfinish(su);
}

/* Requests of three tenants in flight together on the loop's one pipeline, tenant B's
 * failing on the status check: it alone gets 400, every other row commits. */
static void test_one_create_fails(void **state)
{
    (void)state;
    enum { N = 9 };
    long tx0 = metric("tenantd_db_pipeline_transactions_total");
    PGconn *lk = lock_projects();
    struct call c[N];
    char names[N][32];
    struct td_principal *who[3] = {&ta, &tb, &ts};
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "one-%d", i);
        post_project(&c[i], who[i % 3], names[i], i == 4 ? "bogus" : "active");
    }
    td_sleep_ms(500); /* all sent and queued behind the lock */
    unlock_projects(lk);
    for (int i = 0; i < N; i++)
        pthread_join(c[i].th, NULL);
    PGconn *su = td_db(&srv, "postgres");
    for (int i = 0; i < N; i++) {
        const char *schema = i % 3 == 2 ? s_ident : "pool";
        if (i == 4) {
            assert_int_equal(c[i].status, 400);
            assert_int_equal(td_projects_named(su, schema, names[i]), 0);
        } else {
            assert_int_equal(c[i].status, 201);
            assert_string_equal(c[i].name, names[i]);
            assert_int_equal(td_projects_named(su, schema, names[i]), 1);
        }
    }
    PQfinish(su);
    /* they went through the pipeline, several at once on its one connection */
    assert_true(metric("tenantd_db_pipeline_transactions_total") >= tx0 + N);
    assert_true(metric("tenantd_db_pipeline_depth_max") >= 3);
}

/* Send a request on a raw connection and close it without reading the answer. */
static void send_and_leave(const struct td_principal *t, const char *method, const char *body)
{
    int fd = td_raw_connect(&srv, 5);
    assert_true(fd >= 0);
    char req[4096];
    int n = snprintf(req, sizeof(req),
                     "%s /t/%s/projects HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     method, t->slug, t->token, body ? strlen(body) : 0, body ? body : "");
    assert_int_equal(write(fd, req, (size_t)n), n);
    td_sleep_ms(200); /* read and in the pipeline, waiting on the lock */
    close(fd);
}

/* Clients that go away while their statements wait in the pipeline: the write still
 * commits, nothing answers them, and the loop goes on serving. */
static void test_client_gone_in_flight(void **state)
{
    (void)state;
    long tx0 = metric("tenantd_db_pipeline_transactions_total");
    PGconn *lk = lock_projects();
    send_and_leave(&ta, "POST", "{\"name\":\"gone-write\"}");
    send_and_leave(&ta, "GET", NULL);
    td_sleep_ms(200);
    unlock_projects(lk);
    struct td_resp r;
    char path[128];
    snprintf(path, sizeof(path), "/t/%s/projects?limit=100", ta.slug);
    assert_int_equal(td_call(&srv, "GET", path, ta.token, NULL, &r), 200);
    assert_non_null(strstr(r.body, "\"gone-write\""));
    td_resp_free(&r);
    PGconn *su = td_db(&srv, "postgres");
    assert_int_equal(td_projects_named(su, "pool", "gone-write"), 1);
    PQfinish(su);
    /* the two that went away were on the pipeline, and so was the GET after them */
    assert_true(metric("tenantd_db_pipeline_transactions_total") >= tx0 + 3);
}

/* The pipeline's backend is ended while requests wait in it: every client gets a 503 or
 * its own answer (and then its row is there), never another's; then the server serves
 * again (on the pools, then on a new pipeline connection). */
static void test_backend_killed(void **state)
{
    (void)state;
    enum { N = 6 };
    PGconn *lk = lock_projects();
    struct call c[N];
    char names[N][32];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "killed-%d", i);
        post_project(&c[i], i % 2 ? &ts : &ta, names[i], "active");
    }
    td_sleep_ms(500);
    char v[16];
    assert_true(td_sql_value(lk,
                             "SELECT count(pg_terminate_backend(pid))::text FROM pg_stat_activity "
                             "WHERE usename = 'tenantd_app' AND wait_event_type = 'Lock'",
                             0, NULL, v, sizeof(v)));
    assert_string_equal(v, "1"); /* the pipeline's one backend */
    unlock_projects(lk);
    PGconn *su = td_db(&srv, "postgres");
    int unavailable = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(c[i].th, NULL);
        if (c[i].status == 503) {
            unavailable++;
            continue;
        }
        assert_int_equal(c[i].status, 201);
        assert_string_equal(c[i].name, names[i]);
        assert_int_equal(td_projects_named(su, i % 2 ? s_ident : "pool", names[i]), 1);
    }
    assert_true(unavailable >= 1); /* at least the one that held the backend */
    PQfinish(su);
    /* served again, and by a pipeline again within a few seconds */
    long tx = metric("tenantd_db_pipeline_transactions_total");
    char path[128];
    snprintf(path, sizeof(path), "/t/%s/projects", ta.slug);
    double end = td_now_s() + 5;
    while (metric("tenantd_db_pipeline_transactions_total") == tx && td_now_s() < end) {
        struct td_resp r;
        assert_int_equal(td_call(&srv, "GET", path, ta.token, NULL, &r), 200);
        td_resp_free(&r);
        td_sleep_ms(100);
    }
    assert_true(metric("tenantd_db_pipeline_transactions_total") > tx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_create_fails),
        cmocka_unit_test(test_client_gone_in_flight),
        cmocka_unit_test(test_backend_killed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
