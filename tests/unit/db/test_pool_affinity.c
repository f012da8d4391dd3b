/*
 * test_pool_affinity.c - which connection a tenant gets (its place by rendezvous hashing,
 * the next-ranked idle one when that is busy, a new connection in its place after a
 * recycle) and when a connection is recycled (its backend's reported memory, the count of
 * tenants only when memory cannot be told), through the pool's ops with fake connections.
 */
#include "pool_fake.h"

#include "core/hash.h"

#define BUDGET 4

/* A pool that measures its connections' memory (fake_conn.memory). */
static struct db_pool *pool_mem(struct fake *f, int budget, long long max_bytes, int every,
                                int max_tenants)
{
    struct db_pool_cfg cfg = {.budget = budget,
                              .max_dbs = 8,
                              .share_pct = 100,
                              .timeout_ms = 1000,
                              .max_tenants = max_tenants,
                              .max_backend_bytes = max_bytes,
                              .probe_every = every};
    return db_pool_new(&cfg, &fake_ops_memory, f);
}

/* Open every place: BUDGET connections held at once, then all given back. */
static void open_all(struct db_pool *p)
{
    struct db_slot *s[BUDGET];
    for (int i = 0; i < BUDGET; i++) {
        char t[16];
        snprintf(t, sizeof(t), "warm%d", i);
        assert_int_equal(db_pool_acquire(p, NULL, t, &s[i]), 0);
    }
    for (int i = 0; i < BUDGET; i++) {
        char t[16];
        snprintf(t, sizeof(t), "warm%d", i);
        db_pool_release(p, s[i], t, 0);
    }
}

/* The pool's hash of a tenant key (0 means no tenant there). */
static uint64_t key_hash(const char *tenant)
{
    return td_hash64_str(TD_HASH64_INIT, tenant) | 1;
}

static unsigned first_place(const char *tenant)
{
    return td_rendezvous_best(key_hash(tenant), BUDGET);
}

/* The place tenant ranks second. */
static unsigned second_place(const char *tenant)
{
    uint64_t th = key_hash(tenant);
    unsigned first = td_rendezvous_best(th, BUDGET), second = first == 0 ? 1 : 0;
    for (unsigned i = 0; i < BUDGET; i++)
        if (i != first && td_rendezvous_weight(th, i) > td_rendezvous_weight(th, second))
            second = i;
    return second;
}

/* Tenants used in turn, round after round: each always gets the connection of its own
 * place, and the tenants spread over every connection. */
static void test_tenant_keeps_its_connection(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    struct db_pool *p = pool_new(f, BUDGET, 8, 100, 1000, 0);
    open_all(p);
    long long affine = stats(p).affine;
    void *conn_of[40] = {0};
    int used[BUDGET] = {0};
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 40; i++) {
            char t[16];
            struct db_slot *s;
            snprintf(t, sizeof(t), "tenant%d", i);
            assert_int_equal(db_pool_acquire(p, NULL, t, &s), 0);
            assert_int_equal(db_slot_place(s), (int)first_place(t));
            if (round == 0)
                conn_of[i] = db_slot_conn(s);
            assert_ptr_equal(db_slot_conn(s), conn_of[i]);
            used[db_slot_place(s)]++;
            db_pool_release(p, s, t, 0);
        }
    for (int i = 0; i < BUDGET; i++)
        assert_true(used[i] > 0);
    assert_int_equal(f->opens, BUDGET);
    assert_int_equal(stats(p).affine - affine, 120);
    pool_done(p, f);
}

/* Its place busy, a tenant takes the idle connection it ranks next, without waiting. */
static void test_busy_place_takes_next_rank(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    struct db_pool *p = pool_new(f, BUDGET, 8, 100, 1000, 0);
    open_all(p);
    for (int i = 0; i < 20; i++) {
        char t[16];
        struct db_slot *a, *b;
        snprintf(t, sizeof(t), "tenant%d", i);
        assert_int_equal(db_pool_acquire(p, NULL, t, &a), 0);
        assert_int_equal(db_pool_acquire(p, NULL, t, &b), 0);
        assert_int_equal(db_slot_place(a), (int)first_place(t));
        assert_int_equal(db_slot_place(b), (int)second_place(t));
        db_pool_release(p, b, t, 0);
        db_pool_release(p, a, t, 0);
    }
    assert_int_equal(stats(p).waiting, 0);
    assert_int_equal(f->opens, BUDGET);
    pool_done(p, f);
}

/* A connection over the memory bound is closed on release; the tenant moves to the idle
 * connection it ranks next and stays there. When the pool next needs a connection, the
 * new one takes the place of the tenant that opened it. */
static void test_recycled_place_is_refilled(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    struct db_pool *p = pool_mem(f, BUDGET, 1000, 1, 0);
    open_all(p);
    const char *t = "tenant7";
    struct db_slot *s;
    assert_int_equal(db_pool_acquire(p, NULL, t, &s), 0);
    void *old = db_slot_conn(s);
    ((struct fake_conn *)old)->memory = 5000;
    db_pool_release(p, s, t, 0);
    assert_int_equal(f->closes, 1);
    assert_int_equal(stats(p).recycled_memory, 1);

    assert_int_equal(db_pool_acquire(p, NULL, t, &s), 0);
    assert_int_equal(f->opens, BUDGET);
    assert_int_equal(db_slot_place(s), (int)second_place(t));
    void *next = db_slot_conn(s);
    db_pool_release(p, s, t, 0);
    assert_int_equal(db_pool_acquire(p, NULL, t, &s), 0);
    assert_ptr_equal(db_slot_conn(s), next);

    /* every other connection busy: the next tenant opens one, in its free place */
    struct db_slot *h[2];
    assert_int_equal(db_pool_acquire(p, NULL, "x", &h[0]), 0);
    assert_int_equal(db_pool_acquire(p, NULL, "y", &h[1]), 0);
    struct db_slot *n;
    assert_int_equal(db_pool_acquire(p, NULL, t, &n), 0);
    assert_int_equal(f->opens, BUDGET + 1);
    assert_int_equal(db_slot_place(n), (int)first_place(t));
    db_pool_release(p, n, t, 0);
    db_pool_release(p, h[1], "y", 0);
    db_pool_release(p, h[0], "x", 0);
    db_pool_release(p, s, t, 0);
    /* its place has a connection again: the tenant is back on it */
    assert_int_equal(db_pool_acquire(p, NULL, t, &s), 0);
    assert_int_equal(db_slot_place(s), (int)first_place(t));
    db_pool_release(p, s, t, 0);
    pool_done(p, f);
}

static void *use_once(struct db_pool *p, int i)
{
    char t[16];
    struct db_slot *s;
    snprintf(t, sizeof(t), "tenant%d", i);
    assert_int_equal(db_pool_acquire(p, NULL, t, &s), 0);
    void *c = db_slot_conn(s);
    db_pool_release(p, s, t, 0);
    return c;
}

/* Measured backends are recycled by memory alone: 50 tenants under the bound keep the
 * connection (the count of 3 does not apply), and it goes at the first probe (every 4th
 * release) that finds it over. */
static void test_recycle_by_memory_not_count(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    struct db_pool *p = pool_mem(f, 1, 1000, 4, 3);
    void *c = use_once(p, 0);
    for (int i = 1; i < 50; i++)
        assert_ptr_equal(use_once(p, i), c);
    assert_int_equal(f->closes, 0);
    ((struct fake_conn *)c)->memory = 2000;
    use_once(p, 50);
    use_once(p, 51);
    assert_int_equal(f->closes, 0);
    use_once(p, 52); /* the 53rd release probes (1st, 5th, ... 53rd) */
    assert_int_equal(f->closes, 1);
    assert_int_equal(stats(p).recycled_memory, 1);
    assert_int_equal(stats(p).recycled_tenants, 0);
    pool_done(p, f);
}

/* A backend whose memory cannot be told (-1) is recycled by the count of tenants. */
static void test_unknown_memory_recycles_by_count(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    struct db_pool *p = pool_mem(f, 1, 1000, 1, 3);
    void *c = use_once(p, 0);
    ((struct fake_conn *)c)->memory = -1;
    use_once(p, 1);
    assert_int_equal(f->closes, 0);
    use_once(p, 2); /* third distinct tenant */
    assert_int_equal(f->closes, 1);
    assert_int_equal(stats(p).recycled_tenants, 1);
    pool_done(p, f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tenant_keeps_its_connection),
        cmocka_unit_test(test_busy_place_takes_next_rank),
        cmocka_unit_test(test_recycled_place_is_refilled),
        cmocka_unit_test(test_recycle_by_memory_not_count),
        cmocka_unit_test(test_unknown_memory_recycles_by_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
