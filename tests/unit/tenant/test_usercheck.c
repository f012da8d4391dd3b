/*
 * test_usercheck.c - remembered user checks: a fact holds for its tenant object's
 * generation, the role it was seen with and the TTL; two tables are independent.
 */
#include "tenant/usercheck.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define U1 "0b7e9a52-2d8e-4c4a-9d0f-000000000001"
#define U2 "0b7e9a52-2d8e-4c4a-9d0f-000000000002"

static struct tnt_tenant tenant(unsigned long long gen)
{
    struct tnt_tenant t;
    memset(&t, 0, sizeof(t));
    t.gen = gen;
    return t;
}

static void test_role_order(void **state)
{
    (void)state;
    struct tnt_usercheck *u = tnt_usercheck_new();
    struct tnt_tenant t = tenant(7);
    assert_false(tnt_usercheck_ok(u, &t, U1, NULL, 60));
    tnt_usercheck_put(u, &t, U1, "admin");
    assert_true(tnt_usercheck_ok(u, &t, U1, NULL, 60));
    assert_true(tnt_usercheck_ok(u, &t, U1, "member", 60));
    assert_true(tnt_usercheck_ok(u, &t, U1, "admin", 60));
    assert_false(tnt_usercheck_ok(u, &t, U1, "owner", 60));
    /* an unknown role proves nothing, asked or told */
    assert_false(tnt_usercheck_ok(u, &t, U1, "root", 60));
    tnt_usercheck_put(u, &t, U2, "root");
    assert_false(tnt_usercheck_ok(u, &t, U2, NULL, 60));
    /* a demotion seen by the database replaces the fact */
    tnt_usercheck_put(u, &t, U1, "member");
    assert_false(tnt_usercheck_ok(u, &t, U1, "admin", 60));
    tnt_usercheck_free(u);
}

static void test_generation_and_ttl(void **state)
{
    (void)state;
    struct tnt_usercheck *u = tnt_usercheck_new();
    struct tnt_tenant t = tenant(7), next = tenant(8), unpublished = tenant(0);
    tnt_usercheck_put(u, &t, U1, "owner");
    /* a changed tenant is a new generation: nothing learnt before holds */
    assert_false(tnt_usercheck_ok(u, &next, U1, NULL, 60));
    /* TTL 0 turns remembering off */
    assert_false(tnt_usercheck_ok(u, &t, U1, NULL, 0));
    /* an object with no generation is never remembered */
    tnt_usercheck_put(u, &unpublished, U2, "owner");
    assert_false(tnt_usercheck_ok(u, &unpublished, U2, NULL, 60));
    /* not a user id */
    tnt_usercheck_put(u, &t, "short", "owner");
    assert_false(tnt_usercheck_ok(u, &t, "short", NULL, 60));
    sleep(2);
    assert_false(tnt_usercheck_ok(u, &t, U1, NULL, 1));
    assert_true(tnt_usercheck_ok(u, &t, U1, NULL, 60));
    tnt_usercheck_free(u);
}

/* Each application has its own table: what one learnt, the other does not know. */
static void test_two_tables(void **state)
{
    (void)state;
    struct tnt_usercheck *a = tnt_usercheck_new(), *b = tnt_usercheck_new();
    struct tnt_tenant t = tenant(7);
    tnt_usercheck_put(a, &t, U1, "owner");
    assert_true(tnt_usercheck_ok(a, &t, U1, NULL, 60));
    assert_false(tnt_usercheck_ok(b, &t, U1, NULL, 60));
    tnt_usercheck_free(a);
    tnt_usercheck_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_role_order),
        cmocka_unit_test(test_generation_and_ttl),
        cmocka_unit_test(test_two_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
