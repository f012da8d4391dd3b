/*
 * test_fairness.c - per-tenant admission on the event loops: while one tenant's requests
 * are stuck (its projects table locked), alone it holds every loop but one, its other
 * requests wait parked, and another tenant is still served at once. The control run
 * without a share shows the loops filling up with the stuck tenant's requests.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

enum { NFLOOD = 16 };

static int send_req(int fd, const char *method, const char *path, const char *token,
                    const char *body)
{
    char req[4096];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     method, path, token, body ? strlen(body) : 0, body ? body : "");
    return send(fd, req, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -1;
}

static long lock_waiters(PGconn *c)
{
    char v[32];
    if (!td_sql_value(c,
                      "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                      "AND query ILIKE '%INSERT INTO \"projects\"%'",
                      0, NULL, v, sizeof(v)))
        return -1;
    return atol(v);
}

/*
 * Tenant A's 16 POSTs wait on a lock held by the test; returns how many of them reached
 * PostgreSQL (the loops they hold), and in *b_status / *b_seconds what tenant B's GET,
 * sent meanwhile, got. Every A request must end 201 once the lock is gone.
 */
static long flood_while_locked(const char *share, int leave, int *b_status, double *b_seconds)
{
    struct td_server srv;
    struct td_principal a, b;
    char env_share[64];
    snprintf(env_share, sizeof(env_share), "TENANTD_TENANT_SHARE=%s", share);
    const char *env[] = {"TENANTD_POOL_SIZE=4", "TENANTD_HTTP_THREADS=4", env_share,
                         "TENANTD_ACQUIRE_TIMEOUT_MS=30000", NULL};
    assert_int_equal(td_server_start(&srv, env), 0);
    assert_int_equal(td_admin_create_tenant(&srv, "fair-a", "schema", "enterprise",
                                            "owner@fair-a.test", "owner-password-1", &a),
                     201);
    assert_int_equal(td_admin_create_tenant(&srv, "fair-b", "pool", "enterprise",
                                            "owner@fair-b.test", "owner-password-1", &b),
                     201);
    /* warm both tenants (cache, statements) */
    struct td_resp r;
    assert_int_equal(td_call(&srv, "GET", "/t/fair-a/projects", a.token, NULL, &r), 200);
    td_resp_free(&r);
    assert_int_equal(td_call(&srv, "GET", "/t/fair-b/projects", b.token, NULL, &r), 200);
    td_resp_free(&r);

    char storage[40], sql[128];
    td_storage_name(a.tenant_id, storage, sizeof(storage));
    PGconn *lock = td_db_in(&srv, "tenantd", "postgres"), *watch = td_db(&srv, "postgres");
    assert_non_null(lock);
    assert_non_null(watch);
    snprintf(sql, sizeof(sql), "BEGIN; LOCK TABLE %s.projects IN SHARE ROW EXCLUSIVE MODE",
             storage);
    PGresult *res = PQexec(lock, sql);
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);

    /* One at a time, each given the time to get stuck: a loop stuck in a handler is not
     * in epoll_wait, so the next connection goes to a loop that is free, if any. */
    int fds[NFLOOD];
    long waiting = 0;
    for (int i = 0; i < NFLOOD; i++) {
        fds[i] = td_raw_connect(&srv, 60);
        assert_true(fds[i] >= 0);
        assert_int_equal(
            send_req(fds[i], "POST", "/t/fair-a/projects", a.token, "{\"name\":\"flood\"}"), 0);
        long before = waiting;
        for (int k = 0; k < 10 && waiting == before; k++) {
            td_sleep_ms(20);
            waiting = lock_waiters(watch);
        }
    }
    int fb = td_raw_connect(&srv, 5);
    assert_true(fb >= 0);
    double t0 = td_now_s();
    assert_int_equal(send_req(fb, "GET", "/t/fair-b/projects", b.token, NULL), 0);
    *b_status = td_raw_status(fb);
    *b_seconds = td_now_s() - t0;
    close(fb);

    if (leave) {
        /* A's clients give up: parked or running, their places must come back */
        for (int i = 0; i < NFLOOD; i++)
            close(fds[i]);
        res = PQexec(lock, "COMMIT");
        PQclear(res);
        PQfinish(lock);
        for (int i = 0; i < 8; i++) {
            int fa = td_raw_connect(&srv, 5);
            assert_true(fa >= 0);
            assert_int_equal(send_req(fa, "GET", "/t/fair-a/projects", a.token, NULL), 0);
            int st = td_raw_status(fa);
            close(fa);
            if (st != 200)
                fail_msg("tenant A's request %d after its clients left got %d", i, st);
        }
        PQfinish(watch);
        assert_int_equal(td_server_stop(&srv), 0);
        return waiting;
    }
    res = PQexec(lock, "COMMIT");
    PQclear(res);
    PQfinish(lock);
    int ok = 0;
    for (int i = 0; i < NFLOOD; i++) {
        ok += td_raw_status(fds[i]) == 201;
        close(fds[i]);
    }
    assert_int_equal(ok, NFLOOD);
    char v[32];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.projects WHERE name = 'flood'", storage);
    assert_true(td_sql_value(watch, sql, 0, NULL, v, sizeof(v)));
    assert_int_equal(atol(v), NFLOOD);
    PQfinish(watch);
    assert_int_equal(td_server_stop(&srv), 0);
    return waiting;
}

static void test_share_keeps_loops_free(void **state)
{
    (void)state;
    int bst;
    double bs;
    long held = flood_while_locked("50", 0, &bst, &bs);
    fprintf(stderr, "  share 50%%: A's requests in PostgreSQL %ld of 16; B answered %d in %.3f s\n",
            held, bst, bs);
    assert_int_equal(held, 3); /* alone: past its 50% of 4 loops, to all but one */
    assert_int_equal(bst, 200);
}

static void test_without_share_loops_fill(void **state)
{
    (void)state;
    int bst;
    double bs;
    long held = flood_while_locked("100", 0, &bst, &bs);
    fprintf(stderr, "  no share: A's requests in PostgreSQL %ld of 16; B answered %d in %.3f s\n",
            held, bst, bs);
    assert_int_equal(held, 4); /* every loop stuck */
    assert_int_equal(bst, 0);  /* and B not answered in 5 s */
}

static void test_parked_clients_that_leave(void **state)
{
    (void)state;
    int bst;
    double bs;
    long held = flood_while_locked("50", 1, &bst, &bs);
    assert_int_equal(held, 3);
    assert_int_equal(bst, 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_share_keeps_loops_free),
        cmocka_unit_test(test_without_share_loops_fill),
        cmocka_unit_test(test_parked_clients_that_leave),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
