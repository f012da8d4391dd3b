/*
 * test_pool_warm.c - the pool's two limits: statements in flight (admission) apart from
 * connections open. Per-database pools stay warm under steady load over more databases
 * than the admission limit; a request waits for its database's busy connection rather
 * than open a second, unless the measured figures say opening is cheaper; eviction only
 * makes room for a database with no connection and never closes one in use. The pool
 * reads the fake clock, so each rule is checked by counts, never by timing.
 */
#include "pool_fake.h"

static struct db_pool *warm_new(struct fake *f, int active, int max_open, int max_dbs,
                                int timeout_ms)
{
    struct db_pool_cfg cfg = {
        .budget = active,
        .max_open = max_open,
        .max_dbs = max_dbs,
        .share_pct = 100,
        .timeout_ms = timeout_ms,
    };
    return db_pool_new(&cfg, &fake_ops, f);
}

/* One use of database lasting hold_us on the fake clock. */
static void *use_for(struct db_pool *p, struct fake *f, const char *database,
                     unsigned long long hold_us)
{
    struct db_slot *s = NULL;
    assert_int_equal(db_pool_acquire(p, database, NULL, &s), 0);
    assert_string_equal(db_of(s), database);
    void *conn = db_slot_conn(s);
    fake_advance(f, hold_us);
    db_pool_release(p, s, NULL, 0);
    return conn;
}

/*
 * Steady load: a walk over 12 databases with up to 2 statements in flight (the admission
 * limit) and room for 16 connections. Each database is opened once, then reused: 12
 * opens in 2,000 uses, no eviction. The same walk with the two limits conflated (open =
 * in flight = 2, the old budget) reopens on almost every use.
 */
static long long steady_walk(int max_open, long long *evictions)
{
    enum { ACTIVE = 2, NDB = 12, STEPS = 2000 };
    struct fake *f = fake_new();
    f->open_cost = 10000;
    struct db_pool *p = warm_new(f, ACTIVE, max_open, 64, 10);
    struct db_slot *held[ACTIVE] = {0};
    int nheld = 0;
    unsigned seed = 4242;
    for (int step = 0; step < STEPS; step++) {
        seed = seed * 1103515245u + 12345u;
        unsigned r = (seed >> 16) & 0x7fff;
        char name[16];
        snprintf(name, sizeof(name), "db%u", r % NDB);
        int busy = 0;
        for (int i = 0; i < nheld; i++)
            busy |= strcmp(db_of(held[i]), name) == 0;
        if (nheld < ACTIVE && !busy && (r & 0x100)) {
            assert_int_equal(db_pool_acquire(p, name, NULL, &held[nheld]), 0);
            assert_string_equal(db_of(held[nheld]), name);
            nheld++;
        } else if (nheld > 0) {
            fake_advance(f, 500);
            int i = (int)(r % (unsigned)nheld);
            db_pool_release(p, held[i], NULL, 0);
            held[i] = held[--nheld];
        }
        struct db_pool_stats st = stats(p);
        assert_true(st.in_use <= ACTIVE);
        assert_true(st.open <= (max_open ? max_open : ACTIVE));
        assert_int_equal(st.open, f->live);
    }
    while (nheld > 0)
        db_pool_release(p, held[--nheld], NULL, 0);
    long long opens = f->opens;
    *evictions = stats(p).evictions;
    pool_done(p, f);
    return opens;
}

static void test_steady_load_reuses_connections(void **state)
{
    (void)state;
    long long evictions = -1;
    assert_int_equal(steady_walk(16, &evictions), 12);
    assert_int_equal(evictions, 0);
    /* the two limits conflated churn: the contrast shows the walk is a real load */
    assert_true(steady_walk(0, &evictions) > 200);
    assert_true(evictions > 200);
}

/* Admission: with 2 statements in flight, a third waits although connections are free. */
static void test_admission_limits_in_flight_not_open(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    struct db_pool *p = warm_new(f, 2, 8, 16, 20);
    for (int i = 0; i < 6; i++) {
        char name[8];
        snprintf(name, sizeof(name), "d%d", i);
        use_for(p, f, name, 100);
    }
    assert_int_equal(stats(p).open, 6); /* open beyond the admission limit, all idle */
    struct db_slot *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(db_pool_acquire(p, "d0", NULL, &a), 0);
    assert_int_equal(db_pool_acquire(p, "d1", NULL, &b), 0);
    assert_int_equal(db_pool_acquire(p, "d2", NULL, &c), TD_EUNAVAILABLE);
    assert_int_equal(f->opens, 6);
    assert_int_equal(f->closes, 0);
    db_pool_release(p, a, NULL, 0);
    assert_int_equal(db_pool_acquire(p, "d2", NULL, &c), 0);
    assert_int_equal(stats(p).hits, 3);
    db_pool_release(p, b, NULL, 0);
    db_pool_release(p, c, NULL, 0);
    pool_done(p, f);
}

struct waiter_arg {
    struct db_pool *p;
    const char *database;
    struct db_slot *slot;
    int rc;
};

static void *acquire_main(void *arg)
{
    struct waiter_arg *a = arg;
    a->rc = db_pool_acquire(a->p, a->database, NULL, &a->slot);
    return NULL;
}

/*
 * A database whose only connection is busy: the next request waits (one use, 500 us, is
 * shorter than one open, 10 ms) and is served by that same connection when it frees,
 * although the admission limit and the open limit had room for a second one.
 */
static void test_busy_database_waits_and_is_served(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    f->open_cost = 10000;
    struct db_pool *p = warm_new(f, 4, 8, 16, 60000);
    void *only = use_for(p, f, "d1", 500);
    use_for(p, f, "d1", 500);

    struct db_slot *held = NULL;
    assert_int_equal(db_pool_acquire(p, "d1", NULL, &held), 0);
    assert_ptr_equal(db_slot_conn(held), only);
    struct waiter_arg w = {.p = p, .database = "d1"};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, acquire_main, &w), 0);
    wait_for_waiting(p, 1);
    use_for(p, f, "d2", 500); /* others are served meanwhile */
    assert_int_equal(stats(p).waiting, 1);
    assert_int_equal(f->opens, 2); /* d1 once, d2 once: no second d1 connection */

    fake_advance(f, 500);
    db_pool_release(p, held, NULL, 0);
    pthread_join(th, NULL);
    assert_int_equal(w.rc, 0);
    assert_ptr_equal(db_slot_conn(w.slot), only);
    assert_int_equal(f->opens, 2);
    db_pool_release(p, w.slot, NULL, 0);
    pool_done(p, f);
}

/*
 * Sustained queueing opens a second connection: uses of 4 ms against an open of 10 ms,
 * so the first two waiters wait (4 and 8 ms expected) and the third opens (12 ms).
 */
static void test_queue_opens_second_connection(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    f->open_cost = 10000;
    struct db_pool *p = warm_new(f, 8, 8, 16, 60000);
    for (int i = 0; i < 30; i++)
        use_for(p, f, "d1", 4000); /* the average use converges to 4 ms */
    struct db_slot *held = NULL;
    assert_int_equal(db_pool_acquire(p, "d1", NULL, &held), 0);
    struct waiter_arg w[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        w[i] = (struct waiter_arg){.p = p, .database = "d1"};
        assert_int_equal(pthread_create(&th[i], NULL, acquire_main, &w[i]), 0);
        if (i < 2)
            wait_for_waiting(p, i + 1);
    }
    pthread_join(th[2], NULL); /* the third is served by a new connection at once */
    assert_int_equal(w[2].rc, 0);
    assert_int_equal(f->opens, 2);
    assert_int_equal(stats(p).waiting, 2);
    db_pool_release(p, w[2].slot, NULL, 0);
    pthread_join(th[0], NULL);
    db_pool_release(p, held, NULL, 0);
    pthread_join(th[1], NULL);
    assert_int_equal(f->opens, 2);
    db_pool_release(p, w[0].slot, NULL, 0);
    db_pool_release(p, w[1].slot, NULL, 0);
    pool_done(p, f);
}

/*
 * At the open limit, a new database takes the place of the least recently used idle
 * connection, never one in use; a busy hot database never evicts another's connection to
 * open a second one, even when the figures favour opening.
 */
static void test_eviction_spares_connections_in_use(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    f->open_cost = 1000;
    struct db_pool *p = warm_new(f, 4, 3, 16, 20);
    struct db_slot *d1 = NULL, *d3 = NULL, *d4 = NULL, *again = NULL;
    for (int i = 0; i < 3; i++)
        use_for(p, f, "d1", 50000);                           /* d1's uses are long */
    assert_int_equal(db_pool_acquire(p, "d1", NULL, &d1), 0); /* oldest, in use */
    use_for(p, f, "d2", 50000);
    use_for(p, f, "d3", 50000);
    assert_int_equal(db_pool_acquire(p, "d4", NULL, &d4), 0);
    assert_int_equal(closes_of(f, "d2"), 1); /* the LRU idle one */
    assert_int_equal(closes_of(f, "d1"), 0);
    assert_int_equal(stats(p).open, 3);

    /* d1 busy, uses long (50 ms) against opens of 1 ms: opening is worth it, but the
     * open limit is reached, so the request waits rather than close d3 */
    assert_int_equal(db_pool_acquire(p, "d1", NULL, &again), TD_EUNAVAILABLE);
    assert_int_equal(closes_of(f, "d3"), 0);
    assert_int_equal(f->closes, 1);

    /* everything open in use: a new database waits, nothing is closed */
    assert_int_equal(db_pool_acquire(p, "d3", NULL, &d3), 0);
    assert_int_equal(db_pool_acquire(p, "d5", NULL, &again), TD_EUNAVAILABLE);
    assert_int_equal(f->closes, 1);
    db_pool_release(p, d3, NULL, 0);
    assert_int_equal(db_pool_acquire(p, "d5", NULL, &again), 0);
    assert_int_equal(closes_of(f, "d3"), 1);
    assert_int_equal(closes_of(f, "d1"), 0);
    assert_int_equal(closes_of(f, "d4"), 0);
    db_pool_release(p, again, NULL, 0);
    db_pool_release(p, d1, NULL, 0);
    db_pool_release(p, d4, NULL, 0);
    pool_done(p, f);
}

/* The measured averages are what the pool reports (and what it decides by). */
static void test_measures_open_and_use(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    f->open_cost = 8000;
    struct db_pool *p = warm_new(f, 2, 4, 16, 20);
    use_for(p, f, "d1", 800);
    struct db_pool_stats st = stats(p);
    assert_int_equal(st.opened, 1);
    assert_int_equal(st.open_us, 8000);
    assert_int_equal(st.hold_us, 100); /* (7 * 0 + 800) / 8: starts from no use */
    pool_done(p, f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steady_load_reuses_connections),
        cmocka_unit_test(test_admission_limits_in_flight_not_open),
        cmocka_unit_test(test_busy_database_waits_and_is_served),
        cmocka_unit_test(test_queue_opens_second_connection),
        cmocka_unit_test(test_eviction_spares_connections_in_use),
        cmocka_unit_test(test_measures_open_and_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
