/*
 * test_arena.c - the request arena: aligned bump allocation across blocks, string
 * helpers, and cleanup callbacks run last-registered-first when the arena is freed.
 */
#include "core/mem.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_alloc_alignment(void **state)
{
    (void)state;
    struct td_arena *a = td_arena_new();
    static const size_t sizes[] = {1, 3, 8, 15, 16, 17, 31, 100, 1000, 4095, 4096, 5000, 7, 1};
    char *prev = NULL;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char *p = td_arena_alloc(a, sizes[i]);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
        assert_int_equal((uintptr_t)p % 16, 0);
        memset(p, (int)i, sizes[i]); /* writable over its whole size (valgrind checks) */
        assert_ptr_not_equal(p, prev);
        prev = p;
    }
    td_arena_free(a);
}

/* Allocations never overlap, within a block and across new blocks. */
static void test_alloc_no_overlap(void **state)
{
    (void)state;
    enum { N = 300 };
    struct td_arena *a = td_arena_new();
    unsigned char *ptrs[N];
    size_t lens[N];
    for (int i = 0; i < N; i++) {
        lens[i] = (size_t)(i * 37 % 700) + 1;
        if (i % 50 == 0)
            lens[i] = 9000; /* larger than a block */
        ptrs[i] = td_arena_alloc(a, lens[i]);
        memset(ptrs[i], i & 0xff, lens[i]);
    }
    for (int i = 0; i < N; i++)
        for (size_t j = 0; j < lens[i]; j++)
            if (ptrs[i][j] != (unsigned char)(i & 0xff))
                fail_msg("allocation %d was overwritten at byte %zu", i, j);
    td_arena_free(a);
}

static void test_strings(void **state)
{
    (void)state;
    struct td_arena *a = td_arena_new();
    char src[] = "hello";
    char *s = td_arena_strdup(a, src);
    assert_string_equal(s, "hello");
    assert_ptr_not_equal(s, src);
    src[0] = 'j';
    assert_string_equal(s, "hello");

    assert_string_equal(td_arena_strdup(a, ""), "");
    assert_string_equal(td_arena_strndup(a, "hello world", 5), "hello");
    assert_string_equal(td_arena_strndup(a, "hi", 0), "");

    assert_string_equal(td_arena_printf(a, "%s-%d-%05.1f", "x", 42, 3.14159), "x-42-003.1");
    assert_string_equal(td_arena_printf(a, "%s", ""), "");
    /* longer than a block */
    char *big = td_arena_printf(a, "%6000d|", 7);
    assert_int_equal(strlen(big), 6001);
    assert_int_equal(big[5999], '7');
    assert_int_equal(big[6000], '|');

    char *h = td_xasprintf("%s=%u", "n", 5u);
    assert_string_equal(h, "n=5");
    free(h);
    h = td_xstrndup("abcdef", 3);
    assert_string_equal(h, "abc");
    free(h);
    td_arena_free(a);
}

struct log {
    int order[8];
    int n;
};

struct entry {
    struct log *log;
    int id;
};

static void record(void *p)
{
    struct entry *e = p;
    e->log->order[e->log->n++] = e->id;
}

static int freed; /* calls of free_it */

static void free_it(void *p)
{
    freed++;
    free(p);
}

static void test_defer_reverse_order(void **state)
{
    (void)state;
    struct log log = {.n = 0};
    struct entry e[4];
    struct td_arena *a = td_arena_new();
    for (int i = 0; i < 4; i++) {
        e[i] = (struct entry){.log = &log, .id = i + 1};
        td_arena_defer(a, record, &e[i]);
        /* allocations in between do not disturb the list */
        td_arena_alloc(a, 3000);
    }
    assert_int_equal(log.n, 0); /* nothing runs before the free */
    td_arena_free(a);
    assert_int_equal(log.n, 4);
    assert_int_equal(log.order[0], 4);
    assert_int_equal(log.order[1], 3);
    assert_int_equal(log.order[2], 2);
    assert_int_equal(log.order[3], 1);
}

/* A foreign heap object tied to the arena is released with it, once, and only when the
 * arena is freed (valgrind also sees no leak). */
static void test_defer_frees_foreign(void **state)
{
    (void)state;
    struct td_arena *a = td_arena_new();
    char *heap = td_xstrdup("owned by the arena");
    freed = 0;
    td_arena_defer(a, free_it, heap);
    td_arena_alloc(a, 100000); /* a new block: the deferred call is kept across blocks */
    assert_int_equal(freed, 0);
    td_arena_free(a);
    assert_int_equal(freed, 1);
    td_arena_free(NULL);
    assert_int_equal(freed, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_alignment),
        cmocka_unit_test(test_alloc_no_overlap),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_defer_reverse_order),
        cmocka_unit_test(test_defer_frees_foreign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
