/*
 * test_throttle.c - login throttling (SPEC §3): 10 failures per email of a tenant or 100
 * per client address within 5 minutes block further attempts until the window passes;
 * other emails and tenants are not affected; the table stays its size under a flood of keys.
 */
#include "auth/throttle.h"

#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#define T1 "a1b2c3d4-e5f6-4a5b-8c7d-9e0f1a2b3c4d"
#define T2 "0b7e9a52-2d8e-4c4a-9d0f-3f6a1c2b5e11"
#define NOW ((time_t)1700000000)

static void fail_n(struct auth_throttle *t, const char *tid, const char *email, const char *addr,
                   int n, time_t now)
{
    for (int i = 0; i < n; i++) {
        assert_int_equal(auth_throttle_check(t, tid, email, addr, now), 0);
        auth_throttle_failed(t, tid, email, addr, now);
    }
}

static void test_per_email(void **state)
{
    (void)state;
    struct auth_throttle *t = auth_throttle_new(0, 0, 0);
    fail_n(t, T1, "ada@x.test", "10.0.0.1", AUTH_THROTTLE_PER_EMAIL, NOW);
    /* blocked until the window that opened at the first failure passes */
    assert_int_equal(auth_throttle_check(t, T1, "ada@x.test", "10.0.0.1", NOW + 10),
                     AUTH_THROTTLE_WINDOW_S - 10);
    assert_true(auth_throttle_check(t, T1, "ADA@X.TEST", "10.0.0.9", NOW + 10) > 0);
    /* another email of the tenant, and the same email in another tenant, go on */
    assert_int_equal(auth_throttle_check(t, T1, "bob@x.test", "10.0.0.1", NOW + 10), 0);
    assert_int_equal(auth_throttle_check(t, T2, "ada@x.test", "10.0.0.1", NOW + 10), 0);
    /* the window passes */
    assert_int_equal(
        auth_throttle_check(t, T1, "ada@x.test", "10.0.0.1", NOW + AUTH_THROTTLE_WINDOW_S), 0);
    auth_throttle_free(t);
}

static void test_success_forgets_email(void **state)
{
    (void)state;
    struct auth_throttle *t = auth_throttle_new(0, 0, 0);
    fail_n(t, T1, "ada@x.test", "10.0.0.1", AUTH_THROTTLE_PER_EMAIL - 1, NOW);
    auth_throttle_passed(t, T1, "ada@x.test", NOW);
    fail_n(t, T1, "ada@x.test", "10.0.0.1", AUTH_THROTTLE_PER_EMAIL - 1, NOW);
    assert_int_equal(auth_throttle_check(t, T1, "ada@x.test", "10.0.0.1", NOW), 0);
    auth_throttle_free(t);
}

static void test_per_address_across_tenants(void **state)
{
    (void)state;
    struct auth_throttle *t = auth_throttle_new(0, 0, 0);
    char email[64];
    for (int i = 0; i < AUTH_THROTTLE_PER_ADDR; i++) {
        snprintf(email, sizeof(email), "u%d@x.test", i);
        fail_n(t, i % 2 ? T1 : T2, email, "10.0.0.7", 1, NOW + i);
    }
    /* any email of any tenant from that address, until its window passes */
    assert_true(auth_throttle_check(t, T1, "new@x.test", "10.0.0.7", NOW + 100) > 0);
    assert_true(auth_throttle_check(t, T2, "other@x.test", "10.0.0.7", NOW + 100) > 0);
    assert_int_equal(auth_throttle_check(t, T1, "new@x.test", "10.0.0.8", NOW + 100), 0);
    assert_int_equal(
        auth_throttle_check(t, T1, "new@x.test", "10.0.0.7", NOW + AUTH_THROTTLE_WINDOW_S), 0);
    auth_throttle_free(t);
}

/* A flood of fresh keys takes slots from the oldest windows but never grows the table; a
 * key being guessed right now keeps its count against keys that failed once long ago. */
static void test_bounded(void **state)
{
    (void)state;
    struct auth_throttle *t = auth_throttle_new(64, 0, 0);
    char email[64], addr[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(email, sizeof(email), "flood%d@x.test", i);
        snprintf(addr, sizeof(addr), "10.1.%d.%d", i / 256, i % 256);
        auth_throttle_failed(t, T1, email, addr, NOW);
    }
    fail_n(t, T2, "target@x.test", "10.9.9.9", AUTH_THROTTLE_PER_EMAIL, NOW + 1);
    assert_true(auth_throttle_check(t, T2, "target@x.test", "10.9.9.9", NOW + 2) > 0);
    auth_throttle_free(t);
}

static void test_limits_set(void **state)
{
    (void)state;
    struct auth_throttle *t = auth_throttle_new(0, 3, 5);
    fail_n(t, T1, "ada@x.test", "10.0.0.1", 3, NOW);
    assert_true(auth_throttle_check(t, T1, "ada@x.test", "10.0.0.1", NOW) > 0);
    fail_n(t, T1, "bob@x.test", "10.0.0.1", 2, NOW);
    assert_true(auth_throttle_check(t, T1, "cy@x.test", "10.0.0.1", NOW) > 0);
    auth_throttle_free(t);
}

static int group_setup(void **state)
{
    (void)state;
    return sodium_init() < 0 ? -1 : 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_per_email),
        cmocka_unit_test(test_success_forgets_email),
        cmocka_unit_test(test_per_address_across_tenants),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_limits_set),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
