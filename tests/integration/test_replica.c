/*
 * test_replica.c - read replicas: tenantd makes and starts a streaming replica of its
 * embedded cluster (TENANTD_REPLICA=1) and sends tenant reads to it
 * (TENANTD_READ_REPLICAS=reads) only once it has replayed the tenant's last write.
 * Counted through /metrics: a write followed at once by a read sees the write, and reads
 * do go to the replica once it caught up; with replay paused (pg_wal_replay_pause) the
 * writing tenant reads from the primary while another still reads the replica, and a
 * lag past the bound sends everyone to the primary; the replica stopped under load costs
 * no request.
 */
#include "harness.h"
#include "pgextra.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct td_server srv;
static struct td_principal alice, bob;

static int setup(void **state)
{
    (void)state;
    /* 64 KiB: the writes of one test pass it while replay is paused */
    const char *extra[] = {"TENANTD_REPLICA=1", "TENANTD_READ_REPLICAS=reads",
                           "TENANTD_REPLICA_MAX_LAG_KB=64", "TENANTD_USER_CHECK_TTL=0", NULL};
    if (td_server_start(&srv, extra) < 0)
        return -1;
    /* no project limit; a pool tenant and a schema tenant (SET ROLE on the replica) */
    if (td_admin_create_tenant(&srv, "rep-alice", "pool", "enterprise", "alice@rep.example",
                               "correct-horse-1", &alice) != 201 ||
        td_admin_create_tenant(&srv, "rep-bob", "schema", "enterprise", "bob@rep.example",
                               "correct-horse-1", &bob) != 201)
        return -1;
    return 0;
}

TD_SUITE_TEARDOWN(srv)

/* A superuser connection to the replica tenantd made beside its cluster. */
static PGconn *replica_db(void)
{
    char ci[256];
    snprintf(ci, sizeof(ci), "host=%s/pg-replica port=5432 dbname=tenantd user=postgres", srv.dir);
    PGconn *c = PQconnectdb(ci);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    return c;
}

/* The value of the /metrics line that starts with prefix (-1: none). */
static long long metric(const char *prefix)
{
    struct td_resp r;
    long long v = -1;
    td_admin(&srv, "GET", "/metrics", NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    for (const char *p = r.body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, prefix, strlen(prefix)) && p[strlen(prefix)] == ' ')
            v = atoll(p + strlen(prefix) + 1);
    td_resp_free(&r);
    return v;
}

#define READS_REPLICA "tenantd_replica_reads_total{server=\"main\",target=\"replica\"}"
#define READS_PRIMARY "tenantd_replica_reads_total{server=\"main\",target=\"primary\"}"

/* POST a project as p; its id to id[64]. */
static void add_project(const struct td_principal *p, const char *name, char *id)
{
    char body[128], path[96];
    struct td_resp r;
    snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
    snprintf(path, sizeof(path), "/t/%s/projects", p->slug);
    td_call(&srv, "POST", path, p->token, body, &r);
    TD_ASSERT_STATUS(&r, 201);
    snprintf(id, 64, "%s", td_jstr(r.json, "id"));
    td_resp_free(&r);
}

/* GET the project as p: 200 and its name, or fail. */
static void see_project(const struct td_principal *p, const char *id, const char *name)
{
    char path[160];
    struct td_resp r;
    snprintf(path, sizeof(path), "/t/%s/projects/%s", p->slug, id);
    td_call(&srv, "GET", path, p->token, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "name"), name);
    td_resp_free(&r);
}

/* Writes read back at once, then reads once the replica caught up: those go to it. */
static void test_read_your_writes_and_replica_share(void **state)
{
    (void)state;
    char id[64], name[32];
    for (int i = 0; i < 30; i++) {
        snprintf(name, sizeof(name), "ryw-%d", i);
        add_project(&alice, name, id);
        see_project(&alice, id, name);
    }
    td_sleep_ms(500); /* a few polls: the replica has replayed everything by now */
    long long rep0 = metric(READS_REPLICA), prim0 = metric(READS_PRIMARY);
    for (int i = 0; i < 40; i++)
        see_project(&alice, id, name);
    long long rep = metric(READS_REPLICA) - rep0, prim = metric(READS_PRIMARY) - prim0;
    fprintf(stderr, "caught up: %lld reads on the replica, %lld on the primary\n", rep, prim);
    assert_true(rep >= 36);
    assert_int_equal(metric("tenantd_replica_up{server=\"main\"}"), 1);
}

/* GET /admin/analytics reads its materialized views on the replica once it caught up. */
static void test_analytics_reads_replica(void **state)
{
    (void)state;
    td_sleep_ms(300);
    long long rep0 = metric(READS_REPLICA);
    for (int i = 0; i < 5; i++) {
        struct td_resp r;
        td_admin(&srv, "GET", "/admin/analytics", NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        assert_non_null(json_object_get(r.json, "tenants_total"));
        td_resp_free(&r);
    }
    assert_true(metric(READS_REPLICA) - rep0 >= 5);
}

/* Replay paused: alice's new rows are not on the replica, so her reads go to the primary
 * and see them; bob wrote nothing since, so his still go to the replica. */
static void test_paused_replay_sends_writer_to_primary(void **state)
{
    (void)state;
    char bob_id[64], id[64];
    add_project(&bob, "bob-before", bob_id);
    td_sleep_ms(500);
    PGconn *rc = replica_db();
    PQclear(td_sql(rc, "SELECT pg_wal_replay_pause()", 0, NULL));
    add_project(&alice, "while-paused", id);
    char v[16];
    assert_true(td_sql_value(rc, "SELECT count(*) FROM pool.projects WHERE name = 'while-paused'",
                             0, NULL, v, sizeof(v)));
    assert_string_equal(v, "0"); /* the replica really lacks the row */
    long long rep0 = metric(READS_REPLICA), prim0 = metric(READS_PRIMARY);
    for (int i = 0; i < 10; i++)
        see_project(&alice, id, "while-paused");
    assert_true(metric(READS_PRIMARY) - prim0 >= 10);
    assert_true(metric(READS_REPLICA) - rep0 <= 1); /* at most one concurrent job's read */
    rep0 = metric(READS_REPLICA);
    for (int i = 0; i < 10; i++)
        see_project(&bob, bob_id, "bob-before");
    assert_true(metric(READS_REPLICA) - rep0 >= 10);
    /* lag past the bound (64 KiB of WAL): the replica serves nobody */
    for (int i = 0; i < 120; i++)
        add_project(&alice, "filler-filler-filler-filler-filler-filler", id);
    td_sleep_ms(300);
    assert_true(metric("tenantd_replica_lag_bytes{server=\"main\"}") > 64 * 1024);
    rep0 = metric(READS_REPLICA);
    for (int i = 0; i < 10; i++)
        see_project(&bob, bob_id, "bob-before");
    assert_int_equal(metric(READS_REPLICA) - rep0, 0);
    PQclear(td_sql(rc, "SELECT pg_wal_replay_resume()", 0, NULL));
    PQfinish(rc);
}

static void *stop_replica(void *arg)
{
    (void)arg;
    char data[128], log[128];
    snprintf(data, sizeof(data), "%s/pg-replica", srv.dir);
    snprintf(log, sizeof(log), "%s/replica-stop.log", srv.dir);
    td_sleep_ms(300);
    char *argv[] = {TD_PG_BIN "/pg_ctl", "-D", data, "-m", "fast", "-w", "stop", NULL};
    return (void *)(long)td_pg_run(log, argv);
}

/* The replica stops while reads run: every read still answers 200. */
static void test_replica_stopped_under_load(void **state)
{
    (void)state;
    char id[64];
    add_project(&bob, "bob-load", id);
    td_sleep_ms(500);
    long long rep0 = metric(READS_REPLICA);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, stop_replica, NULL), 0);
    double until = td_now_s() + 2.5;
    int n = 0;
    while (td_now_s() < until) {
        see_project(&bob, id, "bob-load");
        n++;
    }
    void *st;
    pthread_join(th, &st);
    assert_int_equal((long)st, 0);
    fprintf(stderr, "replica stopped under load: %d reads, all 200\n", n);
    assert_true(metric(READS_REPLICA) - rep0 > 0); /* some did go to it before the stop */
    assert_int_equal(metric("tenantd_replica_up{server=\"main\"}"), 0);
    long long prim0 = metric(READS_PRIMARY);
    for (int i = 0; i < 10; i++)
        see_project(&bob, id, "bob-load");
    assert_true(metric(READS_PRIMARY) - prim0 >= 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_your_writes_and_replica_share),
        cmocka_unit_test(test_analytics_reads_replica),
        cmocka_unit_test(test_paused_replay_sends_writer_to_primary),
        cmocka_unit_test(test_replica_stopped_under_load),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
