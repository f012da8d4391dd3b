/*
 * test_hash.c - rendezvous hashing (core/hash.h): keys spread evenly over the places, and
 * adding a place moves only the keys that go to the new one.
 */
#include "core/hash.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>

#include <cmocka.h>

enum { KEYS = 20000 };

static void key_of(int i, char *buf, size_t cap)
{
    snprintf(buf, cap, "8d1c7a52-0000-4000-8000-%012d", i);
}

static void test_spread(void **state)
{
    (void)state;
    int count[4] = {0};
    char key[64];
    for (int i = 0; i < KEYS; i++) {
        key_of(i, key, sizeof(key));
        unsigned p = td_rendezvous(key, 4);
        assert_true(p < 4);
        count[p]++;
    }
    for (int p = 0; p < 4; p++) /* 5,000 each, within 5% */
        assert_in_range(count[p], KEYS / 4 * 95 / 100, KEYS / 4 * 105 / 100);
    assert_int_equal(td_rendezvous(key, 1), 0);
}

static void test_minimal_movement(void **state)
{
    (void)state;
    char key[64];
    int moved = 0;
    for (int i = 0; i < KEYS; i++) {
        key_of(i, key, sizeof(key));
        unsigned before = td_rendezvous(key, 3), after = td_rendezvous(key, 4);
        if (after != before) {
            assert_int_equal(after, 3); /* a key moves only to the new place */
            moved++;
        }
    }
    assert_in_range(moved, KEYS / 4 * 90 / 100, KEYS / 4 * 110 / 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spread),
        cmocka_unit_test(test_minimal_movement),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
