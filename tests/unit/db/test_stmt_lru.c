/*
 * test_stmt_lru.c - the prepared statements kept per connection: one entry per (SQL text,
 * search_path), at most STMT_MAX, the least recently used evicted first and named for
 * DEALLOCATE only when the server had it prepared, one whose Parse is on its way never.
 * No server: the table alone (includes stmt.c to reach it).
 */
#include "db/stmt.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

struct look {
    struct stmt *st;
    int fresh, created;
    char evicted[24];
};

static struct look look(struct db_conn *c, const char *sql, const char *path)
{
    struct look l;
    l.st = stmt_lookup(c, sql, path, &l.fresh, &l.created, l.evicted, sizeof(l.evicted));
    return l;
}

static struct db_conn *conn_new(void)
{
    struct db_conn *c = td_xmalloc(sizeof(*c));
    db__conn_init(c, NULL);
    return c;
}

static void conn_free(struct db_conn *c)
{
    db__conn_cleanup(c);
    free(c);
}

static void sql_of(int i, char *buf, size_t cap)
{
    snprintf(buf, cap, "SELECT %d", i);
}

static void test_key_and_fresh(void **state)
{
    (void)state;
    struct db_conn *c = conn_new();
    struct look a = look(c, "SELECT 1", NULL);
    assert_true(a.created);
    assert_true(a.fresh);
    /* the same text under another search_path is another statement (its own plan) */
    struct look b = look(c, "SELECT 1", "t_aa");
    assert_true(b.created);
    assert_ptr_not_equal(a.st, b.st);
    assert_string_not_equal(a.st->name, b.st->name);
    /* seen again before the Parse was confirmed: still to be parsed */
    struct look again = look(c, "SELECT 1", NULL);
    assert_ptr_equal(again.st, a.st);
    assert_false(again.created);
    assert_true(again.fresh);
    a.st->ready = 1;
    again = look(c, "SELECT 1", NULL);
    assert_false(again.fresh);
    assert_int_equal(c->nstmts, 2);
    conn_forget_stmts(c);
    assert_int_equal(c->nstmts, 0);
    conn_free(c);
}

static void test_lru_eviction(void **state)
{
    (void)state;
    struct db_conn *c = conn_new();
    char sql[32], first_name[24];
    for (int i = 0; i < STMT_MAX; i++) {
        sql_of(i, sql, sizeof(sql));
        struct look l = look(c, sql, NULL);
        assert_string_equal(l.evicted, "");
        l.st->ready = 1;
        if (i == 0)
            snprintf(first_name, sizeof(first_name), "%s", l.st->name);
    }
    assert_int_equal(c->nstmts, STMT_MAX);
    /* statement 0 used again: statement 1 is now the least recently used */
    sql_of(0, sql, sizeof(sql));
    assert_false(look(c, sql, NULL).created);
    sql_of(STMT_MAX, sql, sizeof(sql));
    struct look l = look(c, sql, NULL);
    assert_true(l.created);
    assert_int_equal(c->nstmts, STMT_MAX);
    assert_string_not_equal(l.evicted, "");
    assert_string_not_equal(l.evicted, first_name);
    sql_of(1, sql, sizeof(sql));
    assert_true(look(c, sql, NULL).created); /* 1 was the one evicted */
    sql_of(0, sql, sizeof(sql));
    assert_false(look(c, sql, NULL).created);
    /* an evicted statement that was never prepared needs no DEALLOCATE */
    for (int i = 0; i < STMT_MAX; i++) {
        sql_of(10000 + i, sql, sizeof(sql));
        look(c, sql, NULL); /* left unprepared */
    }
    sql_of(20000, sql, sizeof(sql));
    look(c, sql, NULL);
    sql_of(20001, sql, sizeof(sql));
    l = look(c, sql, NULL);
    assert_string_equal(l.evicted, ""); /* 10000..: never ready */
    assert_int_equal(c->nstmts, STMT_MAX);
    conn_free(c);
}

/* A statement whose Parse is still in a pipeline stays, though least recently used: its
 * result will mark it prepared, and a freed entry cannot be. */
static void test_pending_not_evicted(void **state)
{
    (void)state;
    struct db_conn *c = conn_new();
    char sql[32];
    struct stmt *first = NULL;
    for (int i = 0; i < STMT_MAX; i++) {
        sql_of(i, sql, sizeof(sql));
        struct look l = look(c, sql, NULL);
        l.st->ready = 1;
        if (i == 0)
            first = l.st;
    }
    first->ready = 0;
    first->pending = 1;
    sql_of(STMT_MAX, sql, sizeof(sql));
    struct look l = look(c, sql, NULL);
    assert_true(l.created);
    assert_string_not_equal(l.evicted, ""); /* statement 1 went instead */
    assert_string_not_equal(l.evicted, first->name);
    sql_of(0, sql, sizeof(sql));
    struct look again = look(c, sql, NULL);
    assert_false(again.created);
    assert_ptr_equal(again.st, first);
    assert_int_equal(c->nstmts, STMT_MAX);
    conn_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_and_fresh),
        cmocka_unit_test(test_lru_eviction),
        cmocka_unit_test(test_pending_not_evicted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
