/*
 * test_pool.c - the connection pool's rules (budget, per-database LRU, reuse, recycling,
 * tenant share, round-robin service), driven through its ops with counting fake
 * connections. Ordering is forced with threads, a condition variable and the pool's own
 * waiter count; the acquire timeout is only used to show that a request waits.
 */
#include "pool_fake.h"

/* ---- reuse ---- */

static void test_idle_connection_reused(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    struct db_pool *p = pool_new(f, 4, 8, 100, 1000, 0);
    struct db_slot *s = NULL;

    assert_int_equal(db_pool_acquire(p, NULL, "t1", &s), 0);
    assert_non_null(s);
    assert_non_null(db_slot_conn(s));
    void *first = db_slot_conn(s);
    db_pool_release(p, s, "t1", 0);
    struct db_pool_stats st = stats(p);
    assert_int_equal(st.misses, 1);
    assert_int_equal(st.hits, 0);
    assert_int_equal(st.open, 1);
    assert_int_equal(st.in_use, 0);

    /* the idle connection is handed out again: a hit, nothing opened */
    assert_int_equal(db_pool_acquire(p, NULL, "t2", &s), 0);
    assert_ptr_equal(db_slot_conn(s), first);
    st = stats(p);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 1);
    assert_int_equal(st.in_use, 1);
    assert_int_equal(f->opens, 1);

    /* a second concurrent borrower needs a new connection: a miss */
    struct db_slot *s2 = NULL;
    assert_int_equal(db_pool_acquire(p, NULL, "t3", &s2), 0);
    assert_ptr_not_equal(db_slot_conn(s2), first);
    assert_int_equal(stats(p).misses, 2);
    assert_int_equal(f->opens, 2);
    db_pool_release(p, s2, "t3", 0);
    db_pool_release(p, s, "t2", 0);

    /* an idle connection of the default database does not serve another database */
    assert_int_equal(db_pool_acquire(p, "d1", "t1", &s), 0);
    assert_string_equal(db_of(s), "d1");
    assert_int_equal(stats(p).misses, 3);
    db_pool_release(p, s, "t1", 0);
    assert_int_equal(db_pool_acquire(p, "d1", "t1", &s), 0);
    assert_string_equal(db_of(s), "d1");
    assert_int_equal(stats(p).hits, 2);
    db_pool_release(p, s, "t1", 0);

    assert_int_equal(f->closes, 0);
    pool_done(p, f);
}

static void test_broken_release_closes(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    struct db_pool *p = pool_new(f, 2, 8, 100, 1000, 0);
    struct db_slot *s = NULL;

    assert_int_equal(db_pool_acquire(p, "d1", "t1", &s), 0);
    void *first = db_slot_conn(s);
    db_pool_release(p, s, "t1", 1);
    assert_int_equal(f->closes, 1);
    assert_int_equal(f->live, 0);
    assert_int_equal(stats(p).open, 0);
    assert_int_equal(stats(p).in_use, 0);

    /* the next borrower gets a fresh connection */
    assert_int_equal(db_pool_acquire(p, "d1", "t1", &s), 0);
    assert_int_equal(f->opens, 2);
    assert_int_equal(stats(p).misses, 2);
    assert_int_equal(stats(p).hits, 0);
    (void)first; /* the address may be reused by malloc; the counters are the proof */
    db_pool_release(p, s, "t1", 0);

    /* the budget slot of a broken connection is given back */
    struct db_slot *a = NULL, *b = NULL;
    assert_int_equal(db_pool_acquire(p, NULL, NULL, &a), 0);
    assert_int_equal(db_pool_acquire(p, NULL, NULL, &b), 0);
    assert_int_equal(closes_of(f, "d1"), 2); /* b took the budget of d1's idle one */
    db_pool_release(p, a, NULL, 1);
    db_pool_release(p, b, NULL, 1);
    assert_int_equal(stats(p).open, 0);
    assert_int_equal(f->live, 0);
    pool_done(p, f);
}

static void test_open_failure(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    struct db_pool *p = pool_new(f, 4, 8, 50, 1000, 0);
    struct db_slot *s = (struct db_slot *)&s;

    f->fail_opens = 1;
    assert_int_equal(db_pool_acquire(p, "d1", "A", &s), TD_EUNAVAILABLE);
    assert_null(s);
    struct db_pool_stats st = stats(p);
    assert_int_equal(st.open, 0);
    assert_int_equal(st.in_use, 0);
    assert_int_equal(st.waiting, 0);

    /* the failed attempt neither used the budget nor tenant A's share (2 of 4) */
    struct db_slot *a1 = NULL, *a2 = NULL;
    assert_int_equal(db_pool_acquire(p, "d1", "A", &a1), 0);
    assert_int_equal(db_pool_acquire(p, "d1", "A", &a2), 0);
    db_pool_release(p, a1, "A", 0);
    db_pool_release(p, a2, "A", 0);
    pool_done(p, f);
}

/* ---- budget ---- */

/* Deterministic walk over many databases: never more than budget connections open. */
static void test_budget_never_exceeded(void **state)
{
    (void)state;
    enum { BUDGET = 3, NDB = 10, STEPS = 400 };
    struct fake *f = fake_new();
    struct db_pool *p = pool_new(f, BUDGET, 100, 100, 10, 0);
    struct db_slot *held[BUDGET] = {0};
    int nheld = 0, timeouts = 0;
    unsigned seed = 12345;

    for (int step = 0; step < STEPS; step++) {
        seed = seed * 1103515245u + 12345u;
        unsigned r = (seed >> 16) & 0x7fff;
        char name[16];
        snprintf(name, sizeof(name), "db%u", r % NDB);
        /* a database whose connection is held waits for it instead (test_pool_warm.c) */
        int busy = 0;
        for (int i = 0; i < nheld; i++)
            busy |= strcmp(db_of(held[i]), name) == 0;
        if (nheld < BUDGET && (r & 0x100) && !busy) {
            assert_int_equal(db_pool_acquire(p, name, NULL, &held[nheld]), 0);
            assert_string_equal(db_of(held[nheld]), name);
            nheld++;
        } else if (nheld == BUDGET && timeouts < 3 && (r & 0x200)) {
            /* everything is in use: nothing to evict, so the request must wait */
            struct db_slot *s = NULL;
            assert_int_equal(db_pool_acquire(p, name, NULL, &s), TD_EUNAVAILABLE);
            timeouts++;
        } else if (nheld > 0) {
            int i = (int)(r % (unsigned)nheld);
            db_pool_release(p, held[i], NULL, (r & 0x400) && (r & 0x800));
            held[i] = held[--nheld];
        }
        struct db_pool_stats st = stats(p);
        assert_true(st.open <= BUDGET);
        assert_int_equal(st.open, f->live);
        assert_int_equal(st.in_use, nheld);
        assert_true(f->max_live <= BUDGET);
    }
    assert_int_equal(timeouts, 3);
    assert_true(f->opens > BUDGET); /* the walk did churn connections between databases */
    while (nheld > 0)
        db_pool_release(p, held[--nheld], NULL, 0);
    pool_done(p, f);
}

/* With the budget held by idle connections of other databases, one of them is closed. */
static void test_budget_reclaims_idle_of_other_database(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    struct db_pool *p = pool_new(f, 2, 100, 100, 10, 0);
    struct db_slot *a = NULL, *b = NULL, *c = NULL;

    assert_int_equal(db_pool_acquire(p, "d1", NULL, &a), 0);
    assert_int_equal(db_pool_acquire(p, "d2", NULL, &b), 0);
    assert_int_equal(db_pool_acquire(p, "d3", NULL, &c), TD_EUNAVAILABLE);
    assert_int_equal(f->closes, 0);
    db_pool_release(p, a, NULL, 0);
    assert_int_equal(db_pool_acquire(p, "d3", NULL, &c), 0);
    assert_string_equal(db_of(c), "d3");
    assert_int_equal(closes_of(f, "d1"), 1);
    assert_int_equal(closes_of(f, "d2"), 0); /* in use: untouched */
    assert_int_equal(f->max_live, 2);
    db_pool_release(p, b, NULL, 0);
    db_pool_release(p, c, NULL, 0);
    pool_done(p, f);
}

struct churn_arg {
    struct db_pool *p;
    int id;
    int failures;
};

static void *churn_main(void *arg)
{
    struct churn_arg *a = arg;
    unsigned seed = 777u + (unsigned)a->id;
    for (int i = 0; i < 300; i++) {
        seed = seed * 1103515245u + 12345u;
        char name[16];
        snprintf(name, sizeof(name), "db%u", (seed >> 16) % 12);
        struct db_slot *s = NULL;
        if (db_pool_acquire(a->p, (seed & 0x10000) ? name : NULL, NULL, &s) != 0) {
            a->failures++;
            continue;
        }
        db_pool_release(a->p, s, NULL, 0);
    }
    return NULL;
}

/* Concurrent borrowers over many databases: the budget holds under contention. */
static void test_budget_concurrent(void **state)
{
    (void)state;
    enum { NTHREADS = 4, BUDGET = 3 };
    struct fake *f = fake_new();
    struct db_pool *p = pool_new(f, BUDGET, 5, 100, 60000, 0);
    pthread_t th[NTHREADS];
    struct churn_arg args[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        args[i] = (struct churn_arg){.p = p, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, churn_main, &args[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    struct db_pool_stats st = stats(p);
    assert_true(f->max_live <= BUDGET);
    assert_int_equal(st.open, f->live);
    assert_int_equal(st.in_use, 0);
    assert_int_equal(st.waiting, 0);
    assert_true(st.dbs <= 5);
    assert_int_equal(st.hits + st.misses, NTHREADS * 300);
    pool_done(p, f);
}

/* ---- per-database LRU ---- */

static void use_once(struct db_pool *p, const char *database)
{
    struct db_slot *s = NULL;
    assert_int_equal(db_pool_acquire(p, database, NULL, &s), 0);
    assert_string_equal(db_of(s), database);
    db_pool_release(p, s, NULL, 0);
}

static void test_lru_evicts_least_recently_used(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    struct db_pool *p = pool_new(f, 8, 2, 100, 1000, 0);

    use_once(p, "d1");
    use_once(p, "d2");
    assert_int_equal(stats(p).dbs, 2);
    assert_int_equal(f->closes, 0);

    use_once(p, "d3"); /* d1 is the least recently used */
    assert_int_equal(stats(p).dbs, 2);
    assert_int_equal(closes_of(f, "d1"), 1);
    assert_int_equal(f->closes, 1);
    assert_int_equal(stats(p).evictions, 1);
    assert_int_equal(stats(p).open, 2);

    use_once(p, "d2"); /* still pooled: a hit, and now more recent than d3 */
    assert_int_equal(stats(p).hits, 1);
    use_once(p, "d1"); /* evicted earlier: a miss, evicting d3 */
    assert_int_equal(stats(p).hits, 1);
    assert_int_equal(closes_of(f, "d3"), 1);
    assert_int_equal(closes_of(f, "d2"), 0);
    assert_int_equal(stats(p).dbs, 2);
    pool_done(p, f);
}

static void test_lru_never_evicts_in_use(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    struct db_pool *p = pool_new(f, 8, 2, 100, 20, 0);
    struct db_slot *s1 = NULL, *s3 = NULL, *s4 = NULL;

    assert_int_equal(db_pool_acquire(p, "d1", NULL, &s1), 0); /* oldest, held */
    use_once(p, "d2");
    assert_int_equal(db_pool_acquire(p, "d3", NULL, &s3), 0); /* evicts d2, not d1 */
    assert_int_equal(closes_of(f, "d1"), 0);
    assert_int_equal(closes_of(f, "d2"), 1);
    assert_int_equal(stats(p).dbs, 2);

    /* both pooled databases are in use: a third database has to wait */
    assert_int_equal(db_pool_acquire(p, "d4", NULL, &s4), TD_EUNAVAILABLE);
    assert_null(s4);
    assert_int_equal(f->closes, 1);
    assert_int_equal(stats(p).dbs, 2);
    assert_int_equal(stats(p).in_use, 2);

    /* once d1 is idle it can go */
    db_pool_release(p, s1, NULL, 0);
    assert_int_equal(db_pool_acquire(p, "d4", NULL, &s4), 0);
    assert_int_equal(closes_of(f, "d1"), 1);
    assert_int_equal(closes_of(f, "d3"), 0);
    assert_int_equal(stats(p).dbs, 2);
    db_pool_release(p, s3, NULL, 0);
    db_pool_release(p, s4, NULL, 0);
    pool_done(p, f);
}

/* The default database is not one of the max_dbs per-database pools. */
static void test_lru_default_database_not_counted(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    struct db_pool *p = pool_new(f, 8, 1, 100, 1000, 0);
    use_once(p, "d1");
    struct db_slot *s = NULL;
    assert_int_equal(db_pool_acquire(p, NULL, NULL, &s), 0);
    db_pool_release(p, s, NULL, 0);
    assert_int_equal(f->closes, 0);
    assert_int_equal(stats(p).dbs, 1);
    use_once(p, "d2");
    assert_int_equal(closes_of(f, "d1"), 1);
    assert_int_equal(closes_of(f, ""), 0);
    pool_done(p, f);
}

static void test_forget_closes_idle(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    struct db_pool *p = pool_new(f, 8, 8, 100, 1000, 0);
    use_once(p, "d1");
    use_once(p, "d2");
    db_pool_forget(p, "d1");
    assert_int_equal(closes_of(f, "d1"), 1);
    assert_int_equal(closes_of(f, "d2"), 0);
    struct db_pool_stats st = stats(p);
    assert_int_equal(st.dbs, 1);
    assert_int_equal(st.open, 1);
    db_pool_forget(p, "unknown");
    assert_int_equal(f->closes, 1);
    pool_done(p, f);
}

/* ---- recycling ---- */

static void use_as(struct db_pool *p, const char *tenant, void **conn)
{
    struct db_slot *s = NULL;
    assert_int_equal(db_pool_acquire(p, NULL, tenant, &s), 0);
    *conn = db_slot_conn(s);
    db_pool_release(p, s, tenant, 0);
}

static void test_recycle_after_max_tenants(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    struct db_pool *p = pool_new(f, 1, 8, 100, 1000, 3);
    void *c1, *c;

    use_as(p, "t1", &c1);
    use_as(p, "t1", &c); /* the same tenant again is not a new one */
    assert_ptr_equal(c, c1);
    use_as(p, NULL, &c); /* no tenant: not counted */
    assert_ptr_equal(c, c1);
    use_as(p, "t2", &c);
    assert_ptr_equal(c, c1);
    assert_int_equal(f->closes, 0);
    use_as(p, "t3", &c); /* third distinct tenant: closed on release */
    assert_ptr_equal(c, c1);
    assert_int_equal(f->closes, 1);
    assert_int_equal(stats(p).open, 0);

    use_as(p, "t1", &c); /* a fresh connection, with a fresh count */
    assert_int_equal(f->opens, 2);
    use_as(p, "t2", &c);
    assert_int_equal(f->closes, 1);
    pool_done(p, f);
}

static void test_recycle_disabled(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    struct db_pool *p = pool_new(f, 1, 8, 100, 1000, 0);
    for (int i = 0; i < 50; i++) {
        char t[16];
        void *c;
        snprintf(t, sizeof(t), "tenant%d", i);
        use_as(p, t, &c);
    }
    assert_int_equal(f->opens, 1);
    assert_int_equal(f->closes, 0);
    pool_done(p, f);
}

/* ---- fairness ---- */

/* Budget 4, share 50%: alone, a tenant takes every connection of the budget; the share
 * is per tenant (another is held back by the budget, not by A's share). */
static void test_share_alone_takes_every_connection(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    struct db_pool *p = pool_new(f, 4, 8, 50, 30, 0);
    struct db_slot *a[5] = {NULL}, *b1 = NULL;

    for (int i = 0; i < 4; i++)
        assert_int_equal(db_pool_acquire(p, NULL, "A", &a[i]), 0);
    assert_int_equal(stats(p).open, 4);
    assert_int_equal(db_pool_acquire(p, NULL, "A", &a[4]), TD_EUNAVAILABLE); /* the budget */
    assert_int_equal(db_pool_acquire(p, NULL, "B", &b1), TD_EUNAVAILABLE);
    db_pool_release(p, a[0], "A", 0);
    assert_int_equal(db_pool_acquire(p, NULL, "B", &b1), 0);
    db_pool_release(p, a[1], "A", 0);
    /* B holds one: A is not held to its share by a tenant that does not wait */
    assert_int_equal(db_pool_acquire(p, "d1", "A", &a[0]), 0);
    db_pool_release(p, a[0], "A", 0);
    db_pool_release(p, a[2], "A", 0);
    db_pool_release(p, a[3], "A", 0);
    db_pool_release(p, b1, "B", 0);
    assert_int_equal(stats(p).in_use, 0);
    pool_done(p, f);
}

struct acq_arg {
    struct db_pool *p;
    const char *database, *tenant;
    struct db_slot *slot;
    int rc;
};

static void *acq_main(void *arg)
{
    struct acq_arg *a = arg;
    a->rc = db_pool_acquire(a->p, a->database, a->tenant, &a->slot);
    return NULL;
}

/* A took the whole budget alone and has more waiting; B arrives and waits too. The next
 * free connection goes to B (under its share), not to A's older waiter; once B waits no
 * more, A's waiter takes the next one although A is at its share (work-conserving). The
 * share rounds up to one connection: B, at 1 of a share of 3 * 10%, goes after A. */
static void test_share_newcomer_gets_next_connection(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    struct db_pool *p = pool_new(f, 3, 8, 10, 60000, 0);
    struct db_slot *a[3] = {NULL};
    for (int i = 0; i < 3; i++)
        assert_int_equal(db_pool_acquire(p, NULL, "A", &a[i]), 0);
    struct acq_arg a4 = {.p = p, .tenant = "A", .rc = 99}, b1 = {.p = p, .tenant = "B", .rc = 99},
                   b2 = {.p = p, .tenant = "B", .rc = 99};
    pthread_t ta, tb, tb2;
    assert_int_equal(pthread_create(&ta, NULL, acq_main, &a4), 0);
    wait_for_waiting(p, 1);
    assert_int_equal(pthread_create(&tb, NULL, acq_main, &b1), 0);
    wait_for_waiting(p, 2);

    db_pool_release(p, a[0], "A", 0); /* A 2 in use, over its share of 1: B first */
    pthread_join(tb, NULL);
    assert_int_equal(b1.rc, 0);
    assert_int_equal(stats(p).waiting, 1);
    assert_int_equal(pthread_create(&tb2, NULL, acq_main, &b2), 0);
    wait_for_waiting(p, 2);

    /* A 1, B 1: both at their share; A was served least recently */
    db_pool_release(p, a[1], "A", 0);
    pthread_join(ta, NULL);
    assert_int_equal(a4.rc, 0);
    assert_int_equal(stats(p).waiting, 1);
    db_pool_release(p, a[2], "A", 0); /* B alone waits: beyond its share */
    pthread_join(tb2, NULL);
    assert_int_equal(b2.rc, 0);
    db_pool_release(p, a4.slot, "A", 0);
    db_pool_release(p, b1.slot, "B", 0);
    db_pool_release(p, b2.slot, "B", 0);
    pool_done(p, f);
}

/* Round robin: the next free connection goes to the waiting tenant served least
 * recently; one tenant's requests are served in arrival order. */

#define RR_N 6

struct rr_state {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int nserved;
    const char *order[RR_N];
    const char *tenant_of[RR_N];
    struct db_slot *slots[RR_N];
    int rcs[RR_N];
};

struct rr_arg {
    struct db_pool *p;
    struct rr_state *st;
    const char *name; /* "A1" */
    const char *tenant;
};

static void *rr_main(void *arg)
{
    struct rr_arg *a = arg;
    struct db_slot *s = NULL;
    int rc = db_pool_acquire(a->p, NULL, a->tenant, &s);
    pthread_mutex_lock(&a->st->mu);
    int k = a->st->nserved++;
    a->st->order[k] = a->name;
    a->st->tenant_of[k] = a->tenant;
    a->st->slots[k] = s;
    a->st->rcs[k] = rc;
    pthread_cond_broadcast(&a->st->cv);
    pthread_mutex_unlock(&a->st->mu);
    return NULL;
}

static void test_round_robin_between_tenants(void **state)
{
    (void)state;
    static const char *const names[RR_N] = {"A1", "A2", "A3", "B1", "B2", "C1"};
    static const char *const tenants[RR_N] = {"A", "A", "A", "B", "B", "C"};
    static const char *const expected[RR_N] = {"A1", "B1", "C1", "A2", "B2", "A3"};
    struct fake *f = fake_new();
    /* budget 1 and a 100% share: only the service order decides */
    struct db_pool *p = pool_new(f, 1, 8, 100, 60000, 0);
    struct rr_state st = {.nserved = 0};
    pthread_mutex_init(&st.mu, NULL);
    pthread_cond_init(&st.cv, NULL);
    struct rr_arg args[RR_N];
    pthread_t th[RR_N];

    struct db_slot *holder = NULL;
    assert_int_equal(db_pool_acquire(p, NULL, NULL, &holder), 0);
    for (int i = 0; i < RR_N; i++) {
        args[i] = (struct rr_arg){.p = p, .st = &st, .name = names[i], .tenant = tenants[i]};
        assert_int_equal(pthread_create(&th[i], NULL, rr_main, &args[i]), 0);
        wait_for_waiting(p, i + 1); /* fixes the arrival order */
    }
    assert_int_equal(st.nserved, 0);

    /* hand the one connection on, one release at a time */
    db_pool_release(p, holder, NULL, 0);
    for (int k = 0; k < RR_N; k++) {
        pthread_mutex_lock(&st.mu);
        while (st.nserved <= k)
            pthread_cond_wait(&st.cv, &st.mu);
        assert_int_equal(st.nserved, k + 1); /* exactly one served per release */
        pthread_mutex_unlock(&st.mu);
        assert_int_equal(st.rcs[k], 0);
        db_pool_release(p, st.slots[k], st.tenant_of[k], 0);
    }
    for (int i = 0; i < RR_N; i++)
        pthread_join(th[i], NULL);

    char got[64] = "", want[64] = "";
    for (int k = 0; k < RR_N; k++) {
        strcat(got, st.order[k]);
        strcat(got, " ");
        strcat(want, expected[k]);
        strcat(want, " ");
    }
    assert_string_equal(got, want);
    assert_int_equal(f->opens, 1);
    pthread_cond_destroy(&st.cv);
    pthread_mutex_destroy(&st.mu);
    pool_done(p, f);
}

/*
 * Round robin must remember a tenant that was served and then went idle. B is served
 * first, then A; A goes idle; later A and B both wait when one connection frees up:
 * B was served least recently, so B goes first. (Forgetting A's history would let a
 * tenant that re-acquires right after each release overtake every waiting tenant.)
 */
static void rr_wait_served(struct rr_state *st, int n)
{
    pthread_mutex_lock(&st->mu);
    while (st->nserved < n)
        pthread_cond_wait(&st->cv, &st->mu);
    pthread_mutex_unlock(&st->mu);
}

static void test_round_robin_remembers_idle_tenant(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    /* budget 2, share 100%: only the service order decides */
    struct db_pool *p = pool_new(f, 2, 8, 100, 60000, 0);
    struct rr_state st = {.nserved = 0};
    pthread_mutex_init(&st.mu, NULL);
    pthread_cond_init(&st.cv, NULL);
    struct db_slot *sb = NULL, *sa = NULL, *sn = NULL;

    assert_int_equal(db_pool_acquire(p, NULL, "B", &sb), 0);  /* B served first */
    assert_int_equal(db_pool_acquire(p, NULL, "A", &sa), 0);  /* then A */
    db_pool_release(p, sa, "A", 0);                           /* A goes idle */
    assert_int_equal(db_pool_acquire(p, NULL, NULL, &sn), 0); /* budget full again */
    struct rr_arg b2 = {.p = p, .st = &st, .name = "B2", .tenant = "B"};
    pthread_t tb, ta;
    assert_int_equal(pthread_create(&tb, NULL, rr_main, &b2), 0);
    wait_for_waiting(p, 1);

    struct rr_arg a2 = {.p = p, .st = &st, .name = "A2", .tenant = "A"};
    assert_int_equal(pthread_create(&ta, NULL, rr_main, &a2), 0);
    wait_for_waiting(p, 2);
    assert_int_equal(st.nserved, 0);

    /* frees one connection: B2 and A2 compete for it */
    db_pool_release(p, sb, "B", 0);
    rr_wait_served(&st, 1);
    const char *first = st.order[0];

    /* let the other one through, then clean up */
    db_pool_release(p, sn, NULL, 0);
    rr_wait_served(&st, 2);
    pthread_join(tb, NULL);
    pthread_join(ta, NULL);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(st.rcs[k], 0);
        db_pool_release(p, st.slots[k], st.tenant_of[k], 0);
    }
    pthread_cond_destroy(&st.cv);
    pthread_mutex_destroy(&st.mu);
    pool_done(p, f);
    assert_string_equal(first, "B2");
}

/* Thousands of tenants leave at most 1,024 idle records behind, and a tenant in use keeps
 * its record (its share still holds) however many others come and go meanwhile. */
static void test_tenant_records_bounded(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    /* budget 2, share 50%: one connection per tenant while another waits */
    struct db_pool *p = pool_new(f, 2, 8, 50, 60000, 0);
    struct db_slot *held = NULL, *s = NULL, *sn = NULL;
    assert_int_equal(db_pool_acquire(p, NULL, "X", &held), 0);
    char key[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof(key), "tenant-%d", i);
        assert_int_equal(db_pool_acquire(p, NULL, key, &s), 0);
        db_pool_release(p, s, key, 0);
        assert_true(stats(p).tenants <= 1024);
    }
    /* X's record kept its connection in use: X, at its share, goes after Y, which arrived
     * later (a forgotten record would rank X under its share, first in line) */
    assert_int_equal(db_pool_acquire(p, NULL, NULL, &sn), 0); /* budget full */
    struct acq_arg x2 = {.p = p, .tenant = "X", .rc = 99}, y = {.p = p, .tenant = "Y", .rc = 99};
    pthread_t tx, ty;
    assert_int_equal(pthread_create(&tx, NULL, acq_main, &x2), 0);
    wait_for_waiting(p, 1);
    assert_int_equal(pthread_create(&ty, NULL, acq_main, &y), 0);
    wait_for_waiting(p, 2);
    db_pool_release(p, sn, NULL, 0);
    pthread_join(ty, NULL);
    assert_int_equal(y.rc, 0);
    assert_int_equal(stats(p).waiting, 1);
    db_pool_release(p, held, "X", 0);
    pthread_join(tx, NULL);
    assert_int_equal(x2.rc, 0);
    db_pool_release(p, x2.slot, "X", 0);
    db_pool_release(p, y.slot, "Y", 0);
    assert_true(stats(p).tenants <= 1024);
    pool_done(p, f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_connection_reused),
        cmocka_unit_test(test_broken_release_closes),
        cmocka_unit_test(test_open_failure),
        cmocka_unit_test(test_budget_never_exceeded),
        cmocka_unit_test(test_budget_reclaims_idle_of_other_database),
        cmocka_unit_test(test_budget_concurrent),
        cmocka_unit_test(test_lru_evicts_least_recently_used),
        cmocka_unit_test(test_lru_never_evicts_in_use),
        cmocka_unit_test(test_lru_default_database_not_counted),
        cmocka_unit_test(test_forget_closes_idle),
        cmocka_unit_test(test_recycle_after_max_tenants),
        cmocka_unit_test(test_recycle_disabled),
        cmocka_unit_test(test_share_alone_takes_every_connection),
        cmocka_unit_test(test_share_newcomer_gets_next_connection),
        cmocka_unit_test(test_round_robin_between_tenants),
        cmocka_unit_test(test_round_robin_remembers_idle_tenant),
        cmocka_unit_test(test_tenant_records_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
