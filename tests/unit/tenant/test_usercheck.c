/*
 * test_usercheck.c - remembered user checks: a fact holds for its tenant object's
 * generation, the role it was seen with and the TTL; two tables are independent; the
 * table is as big as its memory budget, a full set drops only the check used longest ago,
 * and a walk over more users than the old fixed table held is remembered.
 */
#include "tenant/usercheck.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
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
    struct tnt_usercheck *u = tnt_usercheck_new(1 << 20);
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
    struct tnt_usercheck *u = tnt_usercheck_new(1 << 20);
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
    struct tnt_usercheck *a = tnt_usercheck_new(1 << 20), *b = tnt_usercheck_new(1 << 20);
    struct tnt_tenant t = tenant(7);
    tnt_usercheck_put(a, &t, U1, "owner");
    assert_true(tnt_usercheck_ok(a, &t, U1, NULL, 60));
    assert_false(tnt_usercheck_ok(b, &t, U1, NULL, 60));
    tnt_usercheck_free(a);
    tnt_usercheck_free(b);
}

static void user_of(int i, char out[37])
{
    snprintf(out, 37, "0b7e9a52-2d8e-4c4a-9d0f-%012d", i);
}

/* The table takes what the budget holds (40 bytes a check), and no more. */
static void test_budget(void **state)
{
    (void)state;
    struct td_cache_stats st;
    struct tnt_usercheck *u = tnt_usercheck_new(10 << 20);
    tnt_usercheck_stats(u, &st);
    assert_true(st.budget <= 10 << 20);
    assert_true(st.budget > (10 << 20) - 8 * 40);
    assert_int_equal(st.budget / 40, (10 << 20) / 40 / 8 * 8);
    assert_int_equal(st.entries, 0);
    tnt_usercheck_free(u);
}

/* One set of 8: a ninth user drops the check used longest ago, and only that one. */
static void test_eviction_keeps_others(void **state)
{
    (void)state;
    struct tnt_usercheck *u = tnt_usercheck_new(8 * 40);
    struct tnt_tenant t = tenant(7);
    char user[10][37];
    for (int i = 0; i < 10; i++)
        user_of(i, user[i]);
    for (int i = 0; i < 8; i++)
        tnt_usercheck_put(u, &t, user[i], "owner");
    for (int i = 1; i < 8; i++) /* user 0 is the one not used since */
        assert_true(tnt_usercheck_ok(u, &t, user[i], NULL, 60));
    tnt_usercheck_put(u, &t, user[8], "owner");
    assert_false(tnt_usercheck_ok(u, &t, user[0], NULL, 60));
    for (int i = 1; i < 9; i++)
        assert_true(tnt_usercheck_ok(u, &t, user[i], NULL, 60));
    struct td_cache_stats st;
    tnt_usercheck_stats(u, &st);
    assert_int_equal(st.evictions, 1);
    tnt_usercheck_free(u);
}

/* 100,000 users of 100,000 tenants (more than the 65,536 slots of the old fixed table) in a
 * budget sized for them, walked twice as requests do (a check not remembered is run and
 * remembered): the second walk finds at least 95% of the checks. */
static void test_walk(void **state)
{
    (void)state;
    enum { N = 100000 };
    struct tnt_usercheck *u = tnt_usercheck_new((size_t)N * 40 * 3 / 2);
    char user[37];
    int found = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < N; i++) {
            struct tnt_tenant t = tenant(1000 + (unsigned long long)i);
            user_of(i, user);
            int ok = tnt_usercheck_ok(u, &t, user, NULL, 60);
            if (!ok)
                tnt_usercheck_put(u, &t, user, "member");
            found += pass == 1 && ok;
        }
    if (found < N / 100 * 95)
        fail_msg("%d of %d checks remembered on the second walk", found, N);
    tnt_usercheck_free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_role_order),
        cmocka_unit_test(test_generation_and_ttl),
        cmocka_unit_test(test_two_tables),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_eviction_keeps_others),
        cmocka_unit_test(test_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
