/*
 * test_db_pipe.c - the non-blocking pipeline connection (src/db/pipe.c) against the real
 * cluster, driven by a small poll loop: several tenants' transactions in flight on one
 * connection where one fails mid-pipeline (only it fails, the others commit), the same
 * statement prepared by one transaction while another is in flight, the backend killed
 * with transactions in flight (each gets TD_EUNAVAILABLE or its own answer, and the pipe
 * reconnects), a transaction whose caller went away, and a pipeline stalled behind a slow
 * transaction that takes no more until it answers.
 */
#include "harness.h"

#include "db/pipe.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct td_server srv;
static struct td_principal pa, pb, ps; /* two pool tenants, one schema tenant */
static char s_ident[40];

static int setup(void **state)
{
    (void)state;
    if (td_server_start(&srv, NULL) < 0)
        return -1;
    if (td_admin_create_tenant(&srv, "pipe-a", "pool", "enterprise", NULL, NULL, &pa) != 201 ||
        td_admin_create_tenant(&srv, "pipe-b", "pool", "enterprise", NULL, NULL, &pb) != 201 ||
        td_admin_create_tenant(&srv, "pipe-s", "schema", "enterprise", NULL, NULL, &ps) != 201)
        return -1;
    td_storage_name(ps.tenant_id, s_ident, sizeof(s_ident));
    return 0;
}

TD_SUITE_TEARDOWN(srv)

/* ---- a poll loop standing in for an event loop ---------------------------------------- */

struct io {
    int fd;
    unsigned events;
};

static int io_watch(void *ctx, int fd, unsigned events)
{
    struct io *io = ctx;
    io->fd = fd;
    io->events = events;
    return 0;
}

static void io_unwatch(void *ctx, int fd)
{
    struct io *io = ctx;
    if (io->fd == fd)
        io->fd = -1;
}

struct loop {
    struct db *db;
    struct io io;
    struct db_pipe *p;
};

static void loop_open_stall(struct loop *l, int stall_ms)
{
    char conninfo[256];
    snprintf(conninfo, sizeof(conninfo), "host=%s/pg port=5432 dbname=tenantd", srv.dir);
    struct db_config cfg = {.main_conninfo = conninfo,
                            .app_password = "unused-peer-auth",
                            .pool_size = 2,
                            .tenant_pools = 4,
                            .acquire_timeout_ms = 2000,
                            .tenant_share = 100,
                            .conn_max_tenants = 500,
                            .prepare = 1,
                            .pipe_stall_ms = stall_ms};
    assert_int_equal(db_new(&cfg, &l->db), 0);
    l->io.fd = -1;
    struct db_pipe_io io = {io_watch, io_watch, io_unwatch, &l->io};
    l->p = db_pipe_new(l->db, 0, &io);
}

static void loop_open(struct loop *l)
{
    loop_open_stall(l, 60000); /* the tests keep transactions waiting on purpose */
}

static void loop_close(struct loop *l)
{
    db_pipe_free(l->p);
    db_free(l->db);
}

/* One iteration: flush what was queued, wait for the socket, hand over its events. */
static void loop_once(struct loop *l, int timeout_ms)
{
    db_pipe_flush(l->p);
    if (l->io.fd < 0) {
        td_sleep_ms(timeout_ms);
        return;
    }
    struct pollfd pfd = {.fd = l->io.fd, .events = (short)l->io.events};
    if (poll(&pfd, 1, timeout_ms) > 0) {
        unsigned ev = (unsigned)pfd.revents & (DB_PIPE_IN | DB_PIPE_OUT);
        if (pfd.revents & (POLLHUP | POLLERR))
            ev |= DB_PIPE_IN | DB_PIPE_OUT;
        db_pipe_events(l->p, ev);
    }
}

/* Run until *count reaches want (or 10 s pass). */
static void loop_until(struct loop *l, const int *count, int want)
{
    double end = td_now_s() + 10;
    while (*count < want && td_now_s() < end)
        loop_once(l, 20);
    assert_int_equal(*count, want);
}

static void loop_until_ready(struct loop *l)
{
    double end = td_now_s() + 10;
    while (!db_pipe_ready(l->p) && td_now_s() < end)
        loop_once(l, 20);
    assert_true(db_pipe_ready(l->p));
}

/* ---- batches -------------------------------------------------------------------------- */

struct done {
    int *count; /* completions so far, shared by a test's batches */
    int order;  /* *count before this one completed */
    int called;
    int rc;
    char value[128]; /* res[n-1] row 0 column 0, "" when none */
    struct db_error err;
};

static void on_done(void *arg, int rc, PGresult **res, int n, const struct db_error *err,
                    const char *ctx_value)
{
    (void)ctx_value;
    struct done *d = arg;
    d->called++;
    d->order = (*d->count)++;
    d->rc = rc;
    d->err = *err;
    d->value[0] = '\0';
    if (rc == 0 && res[n - 1] && PQntuples(res[n - 1]) > 0)
        snprintf(d->value, sizeof(d->value), "%s", PQgetvalue(res[n - 1], 0, 0));
    for (int i = 0; i < n; i++)
        PQclear(res[i]);
}

static struct db_target pool_target(const struct td_principal *t)
{
    return (struct db_target){.tenant_id = t->tenant_id, .search_path = "pool"};
}

static struct db_target schema_target(void)
{
    return (struct db_target){.tenant_id = ps.tenant_id, .search_path = s_ident, .role = s_ident};
}

static const char count_sql[] = "SELECT count(*)::text FROM projects WHERE name LIKE 'mid-%'";
static const char insert_sql[] =
    "INSERT INTO projects (name, status) VALUES ($1, $2) RETURNING name";

static void submit(struct loop *l, const struct db_target *t, const struct db_stmt *st, int n,
                   struct done *d, int *count)
{
    *d = (struct done){.count = count};
    assert_int_equal(db_pipe_submit(l->p, t, st, n, on_done, d, NULL), 0);
}

/* Four tenants' transactions in flight on one connection; the third fails at its second
 * statement: it alone rolls back (its first row too), the others commit. */
static void test_failure_aborts_only_its_batch(void **state)
{
    (void)state;
    struct loop l;
    loop_open(&l);
    loop_until_ready(&l);
    struct db_target ta = pool_target(&pa), tb = pool_target(&pb), ts = schema_target();
    const char *a1[2] = {"mid-a1", "active"}, *b1[2] = {"mid-b-ok", "active"},
               *b2[2] = {"mid-b-bad", "bogus"}, *s1[2] = {"mid-s", "archived"},
               *a2[2] = {"mid-a2", "active"};
    struct db_stmt sa1[1] = {{insert_sql, 2, a1, 0}};
    struct db_stmt sb[2] = {{insert_sql, 2, b1, 0}, {insert_sql, 2, b2, 0}};
    struct db_stmt ss[1] = {{insert_sql, 2, s1, 0}};
    struct db_stmt sa2[2] = {{insert_sql, 2, a2, 0}, {count_sql, 0, NULL, 0}};
    struct done d[4];
    int count = 0;
    submit(&l, &ta, sa1, 1, &d[0], &count);
    submit(&l, &tb, sb, 2, &d[1], &count);
    submit(&l, &ts, ss, 1, &d[2], &count);
    submit(&l, &ta, sa2, 2, &d[3], &count);
    assert_int_equal(db_pipe_inflight(l.p), 4);
    unsigned long long sent;
    int depth;
    db_server_pipe_stats(l.db, 0, &sent, &depth);
    assert_int_equal(sent, 4);
    assert_int_equal(depth, 4);
    loop_until(&l, &count, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(d[i].called, 1);
        assert_int_equal(d[i].order, i); /* answered in the order sent */
    }
    assert_int_equal(d[0].rc, 0);
    assert_string_equal(d[0].value, "mid-a1");
    assert_int_equal(d[1].rc, TD_EVALIDATION);
    assert_string_equal(d[1].err.sqlstate, "23514");
    assert_string_equal(d[1].err.constraint, "projects_status_check");
    assert_int_equal(d[2].rc, 0);
    assert_string_equal(d[2].value, "mid-s");
    assert_int_equal(d[3].rc, 0);
    assert_string_equal(d[3].value, "2"); /* tenant A sees its two rows, not B's or S's */
    PGconn *su = td_db(&srv, "postgres");
    assert_non_null(su);
    assert_int_equal(td_projects_named(su, "pool", "mid-a1"), 1);
    assert_int_equal(td_projects_named(su, "pool", "mid-a2"), 1);
    assert_int_equal(td_projects_named(su, "pool", "mid-b-ok"), 0);
    assert_int_equal(td_projects_named(su, "pool", "mid-b-bad"), 0);
    assert_int_equal(td_projects_named(su, s_ident, "mid-s"), 1);
    PQfinish(su);
    loop_close(&l);
}

/* A statement's Parse travels in one transaction while another transaction that uses the
 * same statement is already behind it: the second must not rely on (nor repeat) that
 * Parse, whether it succeeds or is skipped because its transaction failed first. */
static void test_prepared_in_flight(void **state)
{
    (void)state;
    struct loop l;
    loop_open(&l);
    loop_until_ready(&l);
    struct db_target ta = pool_target(&pa);
    static const char x_sql[] = "SELECT 'prep-' || count(*) FROM projects WHERE name = $1";
    const char *xp[1] = {"nothing"}, *bad[2] = {"prep-bad", "bogus"};
    struct db_stmt x[1] = {{x_sql, 1, xp, 0}};
    struct db_stmt badx[2] = {{insert_sql, 2, bad, 0}, {x_sql, 1, xp, 0}};
    struct done d[6];
    int count = 0;
    submit(&l, &ta, x, 1, &d[0], &count); /* first sighting: unnamed, remembered */
    loop_until(&l, &count, 1);
    submit(&l, &ta, x, 1, &d[1], &count); /* second: Parse + Execute */
    submit(&l, &ta, x, 1, &d[2], &count); /* behind that Parse */
    loop_until(&l, &count, 3);
    submit(&l, &ta, x, 1, &d[3], &count); /* prepared by now */
    loop_until(&l, &count, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(d[i].rc, 0);
        assert_string_equal(d[i].value, "prep-0");
    }
    /* the same with a Parse its own transaction skips: a new statement text */
    static const char y_sql[] = "SELECT 'prep-' || count(*) FROM projects WHERE name <> $1";
    struct db_stmt y[1] = {{y_sql, 1, xp, 0}};
    badx[1] = y[0];
    submit(&l, &ta, y, 1, &d[0], &count); /* first sighting */
    loop_until(&l, &count, 5);
    submit(&l, &ta, badx, 2, &d[1], &count); /* fails before its Parse of y */
    submit(&l, &ta, y, 1, &d[2], &count);
    submit(&l, &ta, y, 1, &d[3], &count);
    loop_until(&l, &count, 8);
    assert_int_equal(d[0].rc, 0);
    assert_int_equal(d[1].rc, TD_EVALIDATION);
    assert_int_equal(d[2].rc, 0);
    assert_int_equal(d[3].rc, 0);
    assert_string_equal(d[3].value, d[0].value);
    loop_close(&l);
}

/* The backend is ended while transactions are in flight: each one ends with its own
 * answer (and its row is there) or TD_EUNAVAILABLE, never another's; then the pipe opens
 * a new connection and serves again. */
static void test_backend_killed(void **state)
{
    (void)state;
    enum { N = 12, SLOW = 4 };
    struct loop l;
    loop_open(&l);
    loop_until_ready(&l);
    struct db_target ta = pool_target(&pa), ts = schema_target();
    struct db_stmt pid[1] = {{"SELECT pg_backend_pid()::text", 0, NULL, 0}};
    struct done d[N];
    int count = 0;
    submit(&l, &ta, pid, 1, &d[0], &count);
    loop_until(&l, &count, 1);
    char backend[128];
    snprintf(backend, sizeof(backend), "%s", d[0].value);
    char names[N][32];
    const char *params[N][2];
    struct db_stmt st[N][2];
    count = 0;
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "kill-%d", i);
        params[i][0] = names[i];
        params[i][1] = "active";
        /* the slow one holds the backend while it is ended: it and those behind it fail */
        st[i][0] = (struct db_stmt){i == SLOW ? "SELECT pg_sleep(2)" : "SELECT 1", 0, NULL, 0};
        st[i][1] = (struct db_stmt){insert_sql, 2, params[i], 0};
        submit(&l, i % 2 ? &ts : &ta, st[i], 2, &d[i], &count);
    }
    db_pipe_flush(l.p);
    PGconn *su = td_db(&srv, "postgres");
    assert_non_null(su);
    td_sleep_ms(300); /* the first ones are answered, the slow one sleeps */
    char v[16];
    const char *bp[1] = {backend};
    assert_true(
        td_sql_value(su, "SELECT pg_terminate_backend($1::int)::text", 1, bp, v, sizeof(v)));
    assert_string_equal(v, "true");
    loop_until(&l, &count, N);
    int ok = 0, unavailable = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(d[i].called, 1);
        assert_int_equal(d[i].order, i);
        if (d[i].rc == 0) {
            ok++;
            assert_string_equal(d[i].value, names[i]);
            assert_int_equal(td_projects_named(su, i % 2 ? s_ident : "pool", names[i]), 1);
        } else {
            unavailable++;
            assert_int_equal(d[i].rc, TD_EUNAVAILABLE);
        }
    }
    assert_int_equal(ok, SLOW); /* those before the slow one */
    assert_int_equal(unavailable, N - SLOW);
    assert_int_equal(td_projects_named(su, "pool", "kill-4"), 0);
    assert_false(db_pipe_ready(l.p));
    /* opened again */
    loop_until_ready(&l);
    const char *again[2] = {"kill-again", "active"};
    struct db_stmt sa[1] = {{insert_sql, 2, again, 0}};
    count = 0;
    submit(&l, &ta, sa, 1, &d[0], &count);
    loop_until(&l, &count, 1);
    assert_int_equal(d[0].rc, 0);
    assert_string_equal(d[0].value, "kill-again");
    PQfinish(su);
    loop_close(&l);
}

/* A transaction whose caller went away still runs to its end on the connection (its row
 * commits) without calling back into the caller's freed memory; the ones behind it are
 * answered as usual. */
static void test_abandoned_batch(void **state)
{
    (void)state;
    struct loop l;
    loop_open(&l);
    loop_until_ready(&l);
    struct db_target ta = pool_target(&pa);
    const char *gone[2] = {"abandoned", "active"}, *kept[2] = {"kept", "active"};
    struct db_stmt sg[2] = {{"SELECT pg_sleep(0.2)", 0, NULL, 0}, {insert_sql, 2, gone, 0}};
    struct db_stmt sk[1] = {{insert_sql, 2, kept, 0}};
    int count = 0;
    struct done *caller = malloc(sizeof(*caller));
    *caller = (struct done){.count = &count};
    struct db_pipe_batch *b;
    assert_int_equal(db_pipe_submit(l.p, &ta, sg, 2, on_done, caller, &b), 0);
    assert_non_null(b);
    db_pipe_flush(l.p);
    db_pipe_cancel(b);
    free(caller); /* what a callback would write into (ASan would tell) */
    struct done d;
    submit(&l, &ta, sk, 1, &d, &count);
    loop_until(&l, &count, 1);
    assert_int_equal(d.rc, 0);
    assert_int_equal(d.order, 0); /* the abandoned one never called back */
    assert_int_equal(db_pipe_inflight(l.p), 0);
    PGconn *su = td_db(&srv, "postgres");
    assert_int_equal(td_projects_named(su, "pool", "abandoned"), 1);
    assert_int_equal(td_projects_named(su, "pool", "kept"), 1);
    PQfinish(su);
    loop_close(&l);
}

/* A transaction that waits (here a sleep; in life a lock) would hold up whatever queues
 * behind it: once the oldest has waited the stall time, the pipeline refuses more (they
 * run on the pools) until it answered. */
static void test_stalled_pipe_refuses(void **state)
{
    (void)state;
    struct loop l;
    loop_open_stall(&l, 100);
    loop_until_ready(&l);
    struct db_target ta = pool_target(&pa);
    struct db_stmt slow[1] = {{"SELECT pg_sleep(0.5)::text", 0, NULL, 0}};
    struct db_stmt quick[1] = {{"SELECT 'quick'", 0, NULL, 0}};
    struct done d[3];
    int count = 0;
    submit(&l, &ta, slow, 1, &d[0], &count);
    submit(&l, &ta, quick, 1, &d[1], &count); /* at once: still taken */
    double end = td_now_s() + 0.2;
    while (td_now_s() < end)
        loop_once(&l, 20);
    d[2] = (struct done){.count = &count};
    assert_int_equal(db_pipe_submit(l.p, &ta, quick, 1, on_done, &d[2], NULL), TD_EUNAVAILABLE);
    assert_int_equal(d[2].called, 0);
    loop_until(&l, &count, 2);
    assert_int_equal(d[0].rc, 0);
    assert_string_equal(d[1].value, "quick");
    submit(&l, &ta, quick, 1, &d[2], &count); /* answered: takes again */
    loop_until(&l, &count, 3);
    assert_string_equal(d[2].value, "quick");
    loop_close(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failure_aborts_only_its_batch),
        cmocka_unit_test(test_prepared_in_flight),
        cmocka_unit_test(test_backend_killed),
        cmocka_unit_test(test_abandoned_batch),
        cmocka_unit_test(test_stalled_pipe_refuses),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
