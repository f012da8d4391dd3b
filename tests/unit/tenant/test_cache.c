/*
 * test_cache.c - the tenant cache's table without a catalog: tenants filed by id, slugs
 * pointing at ids, forgetting one tenant, a slug reused by a new tenant, the generation
 * handed on when an entry only expired, the TTL and the bound per shard. Includes
 * tenant.c to reach its static functions (lookups that miss would go to the catalog).
 */
#include "tenant/tenant.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

static struct tnt_tenant *mk(const char *id, const char *slug, unsigned long long gen)
{
    struct tnt_tenant *t = td_xcalloc(1, sizeof(*t));
    atomic_init(&t->refs, 1);
    snprintf(t->id, sizeof(t->id), "%s", id);
    t->slug = td_xstrdup(slug);
    t->gen = gen;
    t->loaded_us = td_now_us();
    return t;
}

/* As tnt_cache_get files a tenant it loaded; the creation reference is dropped. */
static void put(struct tnt_cache *c, struct tnt_tenant *t)
{
    insert_id(c, t);
    insert_slug(c, t->slug, t->id);
    tnt_tenant_unref(t);
}

#define ID_A "00000000-0000-4000-8000-00000000000a"
#define ID_B "00000000-0000-4000-8000-00000000000b"

static void test_by_id_and_slug(void **state)
{
    (void)state;
    struct tnt_cache *c = tnt_cache_new(NULL, 1000, 60000);
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
    struct tnt_cache *c = tnt_cache_new(NULL, 1000, 60000);
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
    struct tnt_cache *c = tnt_cache_new(NULL, 1000, 60000);
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

static void test_ttl_and_bound(void **state)
{
    (void)state;
    struct tnt_cache *c = tnt_cache_new(NULL, CACHE_SHARDS * 4, 50);
    put(c, mk(ID_A, "acme", 1));
    usleep(100000);
    assert_null(lookup(c, ID_A, 1));
    /* many tenants: no shard holds more than its share, and the last one is found */
    char id[37], slug[16];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof(id), "00000000-0000-4000-8000-%012d", i);
        snprintf(slug, sizeof(slug), "t-%d", i);
        put(c, mk(id, slug, 1));
    }
    for (int i = 0; i < CACHE_SHARDS; i++) {
        assert_true(c->shards[i].ids.count <= 4);
        assert_true(c->shards[i].slugs.count <= 4);
    }
    struct tnt_tenant *t = lookup(c, "t-999", 0);
    assert_non_null(t);
    assert_string_equal(t->id, id);
    tnt_tenant_unref(t);
    tnt_cache_invalidate(c, NULL);
    assert_null(lookup(c, id, 1));
    tnt_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_by_id_and_slug),
        cmocka_unit_test(test_slug_reused),
        cmocka_unit_test(test_generation),
        cmocka_unit_test(test_ttl_and_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
