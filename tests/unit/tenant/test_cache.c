/*
 * test_cache.c - the tenant cache's table without a catalog: tenants filed by id, slugs
 * pointing at ids, forgetting one tenant, a slug reused by a new tenant, the generation
 * handed on when an entry only expired, the TTL, the memory bound per shard, eviction of
 * one entry (CLOCK) that keeps the others, a walk over more tenants than the old
 * fixed-count cache held, what a pool tenant costs, and 100,000 of them in the default
 * budget. Includes tenant.c to reach its static functions (lookups that miss would go to
 * the catalog).
 */
#include "tenant/tenant.c"

#include "app/app.h"
#include "core/config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

static struct tnt_tenant *mk(const char *id, const char *slug, unsigned long long gen)
{
    const char *s[S_COUNT] = {slug, "Tenant name", "pro", "main", "2026-01-01T00:00:00.000000Z",
                              NULL};
    struct tnt_tenant *t = tenant_alloc(id, s);
    t->gen = gen;
    return t;
}

/* As tnt_cache_get files a tenant it loaded; the creation reference is dropped. */
static void put(struct tnt_cache *c, struct tnt_tenant *t)
{
    insert_id(c, t, atomic_load(&c->invalidations));
    insert_slug(c, t->slug, t->id);
    tnt_tenant_unref(t);
}

#define ID_A "00000000-0000-4000-8000-00000000000a"
#define ID_B "00000000-0000-4000-8000-00000000000b"

static void test_by_id_and_slug(void **state)
{
    (void)state;
    struct tnt_cache *c = tnt_cache_new(NULL, 1 << 20, 60000);
    put(c, mk(ID_A, "acme", 1));
    struct tnt_tenant *a = lookup(c, ID_A, 1), *b = lookup(c, "acme", 0);
    assert_non_null(a);
    assert_ptr_equal(a, b);
    assert_null(lookup(c, "other", 0));
    assert_null(lookup(c, ID_B, 1));
    tnt_tenant_unref(a);
    tnt_tenant_unref(b);
    /* forgetting the id forgets the slug too: its id is gone */
    tnt_cache_invalidate(c, ID_A);
    assert_null(lookup(c, ID_A, 1));
    assert_null(lookup(c, "acme", 0));
    tnt_cache_free(c);
}

/* A deleted tenant's slug taken by a new tenant answers for the new one only. */
static void test_slug_reused(void **state)
{
    (void)state;
    struct tnt_cache *c = tnt_cache_new(NULL, 1 << 20, 60000);
    put(c, mk(ID_A, "acme", 1));
    tnt_cache_invalidate(c, ID_A);
    put(c, mk(ID_B, "acme", 2));
    struct tnt_tenant *t = lookup(c, "acme", 0);
    assert_non_null(t);
    assert_string_equal(t->id, ID_B);
    tnt_tenant_unref(t);
    assert_null(lookup(c, ID_A, 1));
    tnt_cache_free(c);
}

/* A reload without an announced change keeps the generation (remembered user checks stay
 * valid); after an invalidation the new object keeps its own. */
static void test_generation(void **state)
{
    (void)state;
    struct tnt_cache *c = tnt_cache_new(NULL, 1 << 20, 60000);
    put(c, mk(ID_A, "acme", 5));
    put(c, mk(ID_A, "acme", 9));
    struct tnt_tenant *t = lookup(c, ID_A, 1);
    assert_int_equal(t->gen, 5);
    tnt_tenant_unref(t);
    tnt_cache_invalidate(c, ID_A);
    put(c, mk(ID_A, "acme", 11));
    t = lookup(c, ID_A, 1);
    assert_int_equal(t->gen, 11);
    tnt_tenant_unref(t);
    tnt_cache_free(c);
}

static void id_of(int i, char id[37])
{
    snprintf(id, 37, "00000000-0000-4000-8000-%012d", i);
}

static void test_ttl_and_bound(void **state)
{
    (void)state;
    struct tnt_cache *c = tnt_cache_new(NULL, CACHE_SHARDS * 4096, 50);
    put(c, mk(ID_A, "acme", 1));
    usleep(100000);
    assert_null(lookup(c, ID_A, 1));
    /* many tenants: no shard holds more than its share of the budget, the last is found */
    char id[37], slug[16];
    for (int i = 0; i < 1000; i++) {
        id_of(i, id);
        snprintf(slug, sizeof(slug), "t-%d", i);
        put(c, mk(id, slug, 1));
    }
    for (int i = 0; i < CACHE_SHARDS; i++) {
        assert_true(c->shards[i].bytes <= 4096);
        assert_true(c->shards[i].n > 0);
    }
    struct tnt_tenant *t = lookup(c, "t-999", 0);
    assert_non_null(t);
    assert_string_equal(t->id, id);
    tnt_tenant_unref(t);
    tnt_cache_invalidate(c, NULL);
    assert_null(lookup(c, id, 1));
    struct td_cache_stats st;
    tnt_cache_stats(c, &st);
    assert_int_equal(st.budget, CACHE_SHARDS * 4096);
    assert_int_equal(st.entries, 0);
    tnt_cache_free(c);
}

/* Past its TTL a tenant stays trusted while the listener confirmed the cache less than the
 * TTL ago, and only then. */
static void test_confirm(void **state)
{
    (void)state;
    struct tnt_cache *c = tnt_cache_new(NULL, 1 << 20, 50);
    put(c, mk(ID_A, "acme", 1));
    usleep(100000);
    assert_null(lookup(c, ID_A, 1));
    tnt_cache_confirm(c, td_now_us());
    struct tnt_tenant *t = lookup(c, ID_A, 1);
    assert_non_null(t);
    tnt_tenant_unref(t);
    usleep(100000); /* the confirmation is older than the TTL now */
    assert_null(lookup(c, ID_A, 1));
    tnt_cache_confirm(c, td_now_us());
    tnt_cache_confirm(c, 0); /* the listener lost its connection */
    assert_null(lookup(c, ID_A, 1));
    /* read before an invalidation that ran before it was filed: only the TTL vouches */
    unsigned long long before = atomic_load(&c->invalidations);
    tnt_cache_invalidate(c, ID_B);
    struct tnt_tenant *stale = mk(ID_A, "acme", 2);
    insert_id(c, stale, before);
    tnt_tenant_unref(stale);
    usleep(100000);
    tnt_cache_confirm(c, td_now_us());
    assert_null(lookup(c, ID_A, 1));
    tnt_cache_free(c);
}

/* A full shard drops one entry, the one not looked up since the hand passed (CLOCK), and
 * keeps the others. (It once emptied the whole shard.) */
static void test_eviction_keeps_others(void **state)
{
    (void)state;
    struct tnt_cache *c = tnt_cache_new(NULL, 1 << 20, 60000);
    char ids[5][37];
    struct cache_shard *s = NULL;
    for (int i = 0, k = 0; k < 5; i++) { /* five tenants of one shard */
        id_of(i, ids[k]);
        struct cache_shard *si = shard_of(c, td_hash_str(ids[k]));
        if (!s)
            s = si;
        if (si == s)
            k++;
    }
    struct tnt_tenant *t = mk(ids[0], "s-0", 1);
    unsigned each = held(block_of(t));
    tnt_tenant_unref(t);
    c->shard_budget = s->bytes + 4 * each; /* room for four */
    for (int k = 0; k < 4; k++)
        insert_id(c, (t = mk(ids[k], "s", 1)), 0), tnt_tenant_unref(t);
    for (int k = 1; k < 4; k++) /* all but the first are used */
        tnt_tenant_unref(lookup(c, ids[k], 1));
    insert_id(c, (t = mk(ids[4], "s", 1)), 0);
    tnt_tenant_unref(t);
    assert_null(lookup(c, ids[0], 1));
    for (int k = 1; k < 5; k++) {
        t = lookup(c, ids[k], 1);
        if (!t)
            fail_msg("tenant %d was dropped with the one that made room", k);
        tnt_tenant_unref(t);
    }
    struct td_cache_stats st;
    tnt_cache_stats(c, &st);
    assert_int_equal(st.evictions, 1);
    tnt_cache_free(c);
}

/* 30,000 tenants (more than the 20,000 the cache once held) in a budget sized for them:
 * walked twice, the second walk finds at least 95%. */
static void test_walk(void **state)
{
    (void)state;
    enum { N = 30000 };
    struct tnt_cache *c = tnt_cache_new(NULL, (size_t)N * 400, 60000);
    char id[37];
    int found = 0;
    for (int i = 0; i < N; i++) {
        id_of(i, id);
        struct tnt_tenant *t = mk(id, "walk", 1);
        insert_id(c, t, atomic_load(&c->invalidations));
        tnt_tenant_unref(t);
    }
    for (int i = 0; i < N; i++) {
        id_of(i, id);
        struct tnt_tenant *t = lookup(c, id, 1);
        found += t != NULL;
        tnt_tenant_unref(t);
    }
    if (found < N / 100 * 95)
        fail_msg("%d of %d tenants found on the second walk", found, N);
    struct td_cache_stats st;
    tnt_cache_stats(c, &st);
    assert_true(st.bytes <= st.budget);
    tnt_cache_free(c);
}

/* A catalog row as tnt_catalog_columns selects it, with the bench's strings (bench/seed.sql). */
static PGresult *catalog_row(const char *id, int n, const char *isolation)
{
    char slug[32], name[48];
    snprintf(slug, sizeof(slug), "bench-%d", n);
    snprintf(name, sizeof(name), "Bench tenant %d", n);
    const char *v[11] = {id,       slug,   name, "enterprise", isolation,
                         "active", "main", NULL, NULL,         "2026-12-05T04:56:28.123456Z",
                         "3"};
    PGresAttDesc cols[11];
    memset(cols, 0, sizeof(cols));
    for (int i = 0; i < 11; i++)
        cols[i].name = (char *)"c";
    PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    assert_true(PQsetResultAttrs(r, 11, cols));
    for (int i = 0; i < 11; i++)
        assert_true(PQsetvalue(r, 0, i, (char *)v[i], v[i] ? (int)strlen(v[i]) : -1));
    return r;
}

/* A pool tenant of the bench as tnt_tenant_from_row builds it with a db that knows its
 * server (the server's name is the db's). */
static struct tnt_tenant *bench_tenant(const char *id, int n)
{
    char slug[32], name[48];
    snprintf(slug, sizeof(slug), "bench-%d", n);
    snprintf(name, sizeof(name), "Bench tenant %d", n);
    const char *s[S_COUNT] = {slug, name, "enterprise"};
    struct tnt_tenant *t = tenant_alloc(id, s);
    t->server = (char *)"main";
    t->created_us = 1796446588123456; /* 2026-12-05T04:56:28.123456Z */
    return t;
}

/* A pool tenant has no storage names and its creation time in 8 bytes: it holds at most 248
 * bytes with its ring slot (it took 328 with both names and the time as text); a schema
 * tenant has its names; a creation time that does not come back from microseconds is kept
 * as text. */
static void test_tenant_size(void **state)
{
    (void)state;
    PGresult *r = catalog_row(ID_A, 1000001, "pool");
    struct tnt_tenant *t = tnt_tenant_from_row(NULL, r, 0);
    PQclear(r);
    assert_string_equal(t->ident, "");
    assert_string_equal(t->dbname, "");
    assert_string_equal(t->slug, "bench-1000001");
    assert_string_equal(t->server, "main");
    char buf[64];
    assert_null(t->created_text);
    assert_string_equal(tnt_tenant_created_at(t, buf), "2026-12-05T04:56:28.123456Z");
    json_t *j = tnt_tenant_json(t);
    assert_string_equal(json_string_value(json_object_get(j, "created_at")),
                        "2026-12-05T04:56:28.123456Z");
    json_decref(j);
    assert_null(t->expires_at_text);
    if (held(block_of(t)) > 248)
        fail_msg("a pool tenant holds %u bytes", held(block_of(t)));
    tnt_tenant_unref(t);
    t = bench_tenant(ID_A, 1000001);
    assert_string_equal(tnt_tenant_created_at(t, buf), "2026-12-05T04:56:28.123456Z");
    if (held(block_of(t)) > 248)
        fail_msg("a pool tenant with a borrowed server name holds %u bytes", held(block_of(t)));
    tnt_tenant_unref(t);
    /* leap day, the first microsecond, and texts kept as they came */
    const char *times[] = {"2024-02-29T23:59:59.999999Z", "1970-01-01T00:00:00.000001Z",
                           "2026-13-01T00:00:00.000000Z", "1969-12-31T23:59:59.000000Z", ""};
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        long long us;
        int compact = ts_parse(times[i], &us) == 0;
        assert_int_equal(compact, i < 2);
        PGresult *row = catalog_row(ID_A, 1000001, "pool");
        assert_true(PQsetvalue(row, 0, 9, (char *)times[i], (int)strlen(times[i])));
        t = tnt_tenant_from_row(NULL, row, 0);
        PQclear(row);
        assert_string_equal(tnt_tenant_created_at(t, buf), times[i]);
        tnt_tenant_unref(t);
    }
    r = catalog_row(ID_A, 1000001, "schema");
    t = tnt_tenant_from_row(NULL, r, 0);
    PQclear(r);
    assert_string_equal(t->ident, "t_0000000000004000800000000000000a");
    assert_string_equal(t->dbname, "td_0000000000004000800000000000000a");
    struct db_target tg;
    tnt_tenant_target(t, &tg);
    assert_string_equal(tg.search_path, t->ident);
    tnt_tenant_unref(t);
}

/* The default TENANTD_CACHE_MB's tenant share holds 100,000 of the bench's pool tenants: a
 * second walk finds every one, nothing was evicted. */
static void test_default_budget_holds_100k(void **state)
{
    (void)state;
    enum { N = 100000 };
    struct td_config cfg;
    const char *err = NULL;
    unsetenv("TENANTD_CACHE_MB");
    assert_int_equal(td_config_load(&cfg, 0, NULL, &err), 0);
    size_t tenants, tokens, checks;
    td_app_cache_budgets(cfg.cache_mb, &tenants, &tokens, &checks);
    td_config_cleanup(&cfg);
    struct tnt_cache *c = tnt_cache_new(NULL, tenants, 60000);
    char id[37];
    for (int i = 0; i < N; i++) {
        id_of(i, id);
        struct tnt_tenant *t = bench_tenant(id, 1000000 + i);
        insert_id(c, t, atomic_load(&c->invalidations));
        tnt_tenant_unref(t);
    }
    int found = 0;
    for (int i = 0; i < N; i++) {
        id_of(i, id);
        struct tnt_tenant *t = lookup(c, id, 1);
        found += t != NULL;
        tnt_tenant_unref(t);
    }
    struct td_cache_stats st;
    tnt_cache_stats(c, &st);
    if (found < N || st.evictions)
        fail_msg("%d of %d found, %llu evicted, in %zu bytes (%zu held)", found, N, st.evictions,
                 tenants, st.bytes);
    tnt_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_by_id_and_slug),
        cmocka_unit_test(test_slug_reused),
        cmocka_unit_test(test_generation),
        cmocka_unit_test(test_ttl_and_bound),
        cmocka_unit_test(test_confirm),
        cmocka_unit_test(test_eviction_keeps_others),
        cmocka_unit_test(test_walk),
        cmocka_unit_test(test_tenant_size),
        cmocka_unit_test(test_default_budget_holds_100k),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
