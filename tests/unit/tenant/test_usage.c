/*
 * test_usage.c - the per-tenant counters' request counts (GET /metrics) without a catalog:
 * the busiest tenants first, ties by slug, everyone else summed; one entry a tenant whatever
 * the case of its id; ids that are not UUIDs refused; what an entry costs, so that 100,000
 * tenants' counters stay near 8 MiB; and flush statements of at most FLUSH_MAX tenants.
 * Includes plans.c to reach its entries.
 */
#include "tenant/plans.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

static struct tnt_tenant tenant(const char *id, const char *slug)
{
    struct tnt_tenant t;
    memset(&t, 0, sizeof(t));
    snprintf(t.id, sizeof(t.id), "%s", id);
    t.slug = (char *)slug;
    return t;
}

static void count(struct tnt_usage *u, const char *id, const char *slug, int n)
{
    struct tnt_tenant t = tenant(id, slug);
    for (int i = 0; i < n; i++)
        assert_int_equal(tnt_usage_request(u, &t), 0);
}

#define ID_A "00000000-0000-4000-8000-00000000000a"
#define ID_B "00000000-0000-4000-8000-00000000000b"
#define ID_C "00000000-0000-4000-8000-00000000000c"
#define ID_D "00000000-0000-4000-8000-00000000000d"
#define API_TOP 50 /* as GET /metrics shows (API_METRICS_TOP_TENANTS) */

static void test_top(void **state)
{
    (void)state;
    struct tnt_usage *u = tnt_usage_new(NULL);
    count(u, ID_A, "acme", 3);
    count(u, ID_B, "beta", 5);
    count(u, ID_C, "ceta", 3);
    count(u, ID_D, "delta", 1);
    struct tnt_request_count rows[2];
    unsigned long long rest = 99;
    size_t n = tnt_usage_requests(u, rows, 2, &rest);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].slug, "beta");
    assert_int_equal(rows[0].n, 5);
    assert_string_equal(rows[1].slug, "acme"); /* 3 as ceta: the slug decides */
    assert_int_equal(rows[1].n, 3);
    assert_int_equal(rest, 4); /* ceta 3 + delta 1 */
    struct tnt_request_count all[10];
    n = tnt_usage_requests(u, all, 10, &rest);
    assert_int_equal(n, 4);
    assert_int_equal(rest, 0);
    const char *order[] = {"beta", "acme", "ceta", "delta"};
    for (size_t i = 0; i < n; i++)
        assert_string_equal(all[i].slug, order[i]);
    tnt_usage_free(u);
}

/* The id's case does not make a second tenant; an id that is not a UUID is not counted. */
static void test_keys(void **state)
{
    (void)state;
    struct tnt_usage *u = tnt_usage_new(NULL);
    count(u, "0B7E9A52-2D8E-4C4A-9D0F-00000000000A", "acme", 1);
    count(u, "0b7e9a52-2d8e-4c4a-9d0f-00000000000a", "acme", 1);
    struct tnt_tenant bad = tenant("not-a-uuid", "bad");
    assert_int_equal(tnt_usage_request(u, &bad), TD_EVALIDATION);
    struct tnt_request_count rows[4];
    unsigned long long rest;
    assert_int_equal(tnt_usage_requests(u, rows, 4, &rest), 1);
    assert_int_equal(rows[0].n, 2);
    struct td_cache_stats st;
    tnt_usage_stats(u, &st);
    assert_int_equal(st.entries, 1);
    tnt_usage_free(u);
}

/* 100,000 tenants with the bench's slugs (bench-1000001...): 80 bytes an entry in the
 * arenas, under 90 with the buckets (a malloc'd entry with a text id each in two tables, as
 * the usage counters and GET /metrics once had, took about 220); the top 50 are right. */
static void test_100k(void **state)
{
    (void)state;
    enum { N = 100000 };
    struct tnt_usage *u = tnt_usage_new(NULL);
    char id[37], slug[32];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "00000000-0000-4000-8000-%012d", i);
        snprintf(slug, sizeof(slug), "bench-%d", 1000000 + i);
        count(u, id, slug, 1 + (i % 1000 == 7)); /* every thousandth twice */
    }
    struct td_cache_stats st;
    tnt_usage_stats(u, &st);
    assert_int_equal(st.entries, N);
    if (st.bytes > (size_t)N * 90)
        fail_msg("%zu bytes for %d tenants", st.bytes, N);
    struct tnt_request_count rows[API_TOP];
    unsigned long long rest;
    assert_int_equal(tnt_usage_requests(u, rows, API_TOP, &rest), API_TOP);
    for (int i = 0; i < API_TOP; i++) {
        snprintf(slug, sizeof(slug), "bench-%d", 1000000 + 1000 * i + 7);
        assert_string_equal(rows[i].slug, slug);
        assert_int_equal(rows[i].n, 2);
    }
    assert_int_equal(rest, N + N / 1000 - 2 * API_TOP);
    tnt_usage_free(u);
}

/* A flush statement carries at most FLUSH_MAX tenants: 2,500 counted in one shard go out in
 * three, every count once, and what is left waits on the shard's dirty list. */
static void test_flush_chunks(void **state)
{
    (void)state;
    struct tnt_usage *u = tnt_usage_new(NULL);
    struct usage_shard *s = &u->shards[0];
    int m = month_now(), made = 0;
    char id[37];
    for (int i = 0; made < 2500; i++) {
        struct usage_key k;
        snprintf(id, sizeof(id), "00000000-0000-4000-8000-%012d", i);
        assert_int_equal(key_of(id, &k), 0);
        if (shard_of(u, &k) != s)
            continue;
        struct usage_entry *e = entry_get(s, &k, "t");
        e->loaded = 1;
        e->pending = 2;
        e->dirty = 1;
        if (s->ndirty == s->dirty_cap) {
            s->dirty_cap = s->dirty_cap ? s->dirty_cap * 2 : 64;
            s->dirty = td_xrealloc(s->dirty, s->dirty_cap * sizeof(*s->dirty));
        }
        s->dirty[s->ndirty++] = e;
        made++;
    }
    struct flush_buf f = {.ic = 64, .nc = 64};
    f.ids = td_xmalloc(f.ic);
    f.ns = td_xmalloc(f.nc);
    int counts[3], more[3];
    for (int k = 0; k < 3; k++) {
        flush_reset(&f);
        more[k] = take_pending(s, m, &f);
        counts[k] = f.count;
        if (k == 0)
            assert_int_equal(s->ndirty, 1500);
    }
    assert_int_equal(counts[0], FLUSH_MAX);
    assert_int_equal(counts[1], FLUSH_MAX);
    assert_int_equal(counts[2], 500);
    assert_true(more[0] && more[1] && !more[2]);
    assert_int_equal(s->ndirty, 0);
    assert_true(strlen(f.ids) < 40 * 500);
    free(f.ids);
    free(f.ns);
    tnt_usage_free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_top),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_100k),
        cmocka_unit_test(test_flush_chunks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
