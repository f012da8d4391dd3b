/*
 * test_htab.c - the intrusive hash table: find by hash and key, colliding hashes, delete,
 * pop until empty.
 */
#include "core/hash.h"
#include "core/htab.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

struct item {
    struct td_hnode node;
    char key[16];
};

static int eq(const struct td_hnode *n, const void *key)
{
    return strcmp(TD_CONTAINER_OF(n, struct item, node)->key, key) == 0;
}

static void test_find_del_pop(void **state)
{
    (void)state;
    struct td_htab t;
    struct item it[200];
    td_htab_init(&t, 5); /* rounded up to 8: long chains */
    assert_int_equal(t.mask, 7);
    for (int i = 0; i < 200; i++) {
        snprintf(it[i].key, sizeof(it[i].key), "k%d", i);
        /* every fourth one shares a hash with its neighbour: keys still tell them apart */
        td_htab_add(&t, &it[i].node, i % 4 ? td_hash_str(it[i].key) : 42u);
    }
    assert_int_equal(t.count, 200);
    for (int i = 0; i < 200; i++) {
        unsigned h = i % 4 ? td_hash_str(it[i].key) : 42u;
        assert_ptr_equal(td_htab_find(&t, h, eq, it[i].key), &it[i].node);
    }
    assert_null(td_htab_find(&t, td_hash_str("k1"), eq, "k2"));
    td_htab_del(&t, &it[8].node);
    assert_null(td_htab_find(&t, 42u, eq, "k8"));
    assert_ptr_equal(td_htab_find(&t, 42u, eq, "k12"), &it[12].node);
    assert_int_equal(t.count, 199);
    int popped = 0;
    while (td_htab_pop(&t))
        popped++;
    assert_int_equal(popped, 199);
    assert_int_equal(t.count, 0);
    assert_null(td_htab_find(&t, 42u, eq, "k12"));
    td_htab_cleanup(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_find_del_pop)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
