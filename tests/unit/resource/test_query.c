/*
 * test_query.c - the resource query grammar (src/resource/query.c) and the list statement
 * built from it (sql.c), on a description made here: every operator, not., like's
 * wildcard, in-lists, order with its id tie-break, select, embeds both ways, limits, the
 * cursor's fingerprint, and values kept out of the statement text.
 */
#include "resource/resource.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

static struct res_col mk(const char *name, enum res_kind kind, const char *cast, int notnull)
{
    struct res_col c = {0};
    c.name = (char *)name;
    c.qname = res_quote(NULL, name);
    c.kind = kind;
    c.cast = (char *)cast;
    c.sqltype = (char *)cast;
    c.notnull = notnull;
    c.maxlen = -1;
    c.int_bits = 32;
    return c;
}

static struct res_desc d;
static struct res_table t[2];
static struct res_col a[8], b[4];
static struct res_fk fk = {"line_items_fk", 1, &t[0], 0};
static struct td_arena *arena;

static int setup(void **state)
{
    (void)state;
    a[0] = mk("id", RES_UUID, "uuid", 1);
    a[1] = mk("name", RES_TEXT, "text", 1);
    a[2] = mk("score", RES_INT, "integer", 0);
    a[3] = mk("vip", RES_BOOL, "boolean", 1);
    a[4] = mk("due", RES_DATE, "date", 0);
    a[5] = mk("meta", RES_JSON, "jsonb", 0);
    a[6] = mk("secret", RES_TEXT, "text", 0);
    a[6].is_private = 1;
    a[7] = mk("created_at", RES_TSTZ, "timestamp with time zone", 1);
    b[0] = mk("id", RES_UUID, "uuid", 1);
    b[1] = mk("item_id", RES_UUID, "uuid", 1);
    b[2] = mk("qty", RES_INT, "integer", 1);
    b[3] = mk("created_at", RES_TSTZ, "timestamp with time zone", 1);
    t[0] = (struct res_table){.name = "items",
                              .qname = "\"items\"",
                              .path = "items",
                              .read_role = "member",
                              .write_role = "member",
                              .expose = 1,
                              .cols = a,
                              .ncols = 8,
                              .id_col = 0,
                              .created_col = 7,
                              .updated_col = -1};
    t[1] = (struct res_table){.name = "line_items",
                              .qname = "\"line_items\"",
                              .path = "line-items",
                              .read_role = "admin",
                              .write_role = "member",
                              .expose = 1,
                              .cols = b,
                              .ncols = 4,
                              .id_col = 0,
                              .created_col = 3,
                              .updated_col = -1,
                              .fks = &fk,
                              .nfks = 1};
    d.tables = t;
    d.ntables = 2;
    arena = td_arena_new();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    td_arena_free(arena);
    return 0;
}

/* Parse one "k=v&k=v" string against table ti. */
static int parse(int ti, const char *qs, struct res_query *q, const char **detail)
{
    char *s = td_arena_strdup(arena, qs);
    const char *keys[16], *vals[16];
    int n = 0;
    for (char *save = NULL, *kv = strtok_r(s, "&", &save); kv && n < 16;
         kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        if (eq)
            *eq = '\0';
        keys[n] = kv;
        vals[n++] = eq ? eq + 1 : "";
    }
    *detail = NULL;
    return res_query_parse(&d, &t[ti], keys, vals, n, arena, q, detail);
}

static void test_operators(void **state)
{
    (void)state;
    static const struct {
        const char *qs;
        enum res_op op;
        int negate;
        const char *value;
    } ok[] = {
        {"score=eq.3", RES_EQ, 0, "3"},
        {"score=neq.-3", RES_NEQ, 0, "-3"},
        {"score=lt.3", RES_LT, 0, "3"},
        {"score=lte.3", RES_LTE, 0, "3"},
        {"score=gt.3", RES_GT, 0, "3"},
        {"score=gte.3", RES_GTE, 0, "3"},
        {"name=like.a*b%_", RES_LIKE, 0, "a%b\\%\\_"},
        {"name=ilike.*x", RES_ILIKE, 0, "%x"},
        {"score=in.(1,2)", RES_IN, 0, "{\"1\",\"2\"}"},
        {"name=in.(\"a,b\",c\\\")", RES_IN, 0, "{\"a,b\",\"c\\\\\\\"\"}"},
        {"score=is.null", RES_IS_NULL, 0, NULL},
        {"vip=is.true", RES_IS_TRUE, 0, NULL},
        {"vip=not.is.false", RES_IS_FALSE, 1, NULL},
        {"due=not.eq.2024-02-29", RES_EQ, 1, "2024-02-29"},
        {"meta=is.null", RES_IS_NULL, 0, NULL},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct res_query q;
        const char *detail;
        if (parse(0, ok[i].qs, &q, &detail) != 0)
            fail_msg("%s refused: %s", ok[i].qs, detail);
        assert_int_equal(q.nfilters, 1);
        assert_int_equal(q.filters[0].op, ok[i].op);
        assert_int_equal(q.filters[0].negate, ok[i].negate);
        if (ok[i].value)
            assert_string_equal(q.filters[0].value, ok[i].value);
    }
}

static void test_refusals(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "nope=eq.1",     "secret=eq.x",
        "score=eq.x",    "score=eq.99999999999",
        "score=foo.1",   "score",
        "score=like.1",  "vip=is.maybe",
        "score=is.true", "score=in.(1,x)",
        "score=in.1",    "score=in.()",
        "meta=eq.{}",    "due=eq.2023-02-29",
        "order=nope",    "order=secret.asc",
        "order=meta",    "select=secret",
        "embed=nope",    "embed=line_items",
        "limit=0",       "limit=101",
        "limit=x",       "order=",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct res_query q;
        const char *detail;
        if (parse(0, bad[i], &q, &detail) != TD_EBADREQ)
            fail_msg("%s accepted", bad[i]);
        assert_non_null(detail);
    }
}

static void test_order_select_embed(void **state)
{
    (void)state;
    struct res_query q;
    const char *detail;
    assert_int_equal(parse(0, "", &q, &detail), 0);
    assert_int_equal(q.norder, 2); /* created_at desc, id desc */
    assert_int_equal(q.order[0].col, 7);
    assert_true(q.order[0].desc && q.order[1].desc);
    assert_int_equal(q.order[1].col, 0);
    assert_int_equal(q.limit, 20);
    assert_int_equal(parse(0, "order=score.asc,name&limit=100", &q, &detail), 0);
    assert_int_equal(q.norder, 3);
    assert_int_equal(q.order[2].col, 0); /* ties by id, in the last column's direction */
    assert_false(q.order[2].desc);
    assert_int_equal(q.limit, 100);
    assert_int_equal(parse(0, "order=id.desc", &q, &detail), 0);
    assert_int_equal(q.norder, 1);
    assert_int_equal(parse(0, "select=name&embed=line-items", &q, &detail), 0);
    assert_true(q.selected[0] && q.selected[1] && !q.selected[2]);
    assert_int_equal(q.nembeds, 1);
    assert_true(q.embeds[0].reverse);
    assert_ptr_equal(q.embeds[0].other, &t[1]);
    assert_int_equal(parse(1, "embed=item", &q, &detail), 0);
    assert_false(q.embeds[0].reverse);
    assert_string_equal(q.embeds[0].key, "item");
}

/* The cursor's fingerprint follows filters and order, not their order in the query. */
static void test_shape(void **state)
{
    (void)state;
    struct res_query q1, q2;
    const char *detail;
    assert_int_equal(parse(0, "score=gt.1&name=like.a*&order=score.asc", &q1, &detail), 0);
    assert_int_equal(parse(0, "order=score.asc&name=like.a*&score=gt.1&limit=5", &q2, &detail), 0);
    assert_true(q1.shape == q2.shape);
    assert_int_equal(parse(0, "score=gt.2&name=like.a*&order=score.asc", &q2, &detail), 0);
    assert_true(q1.shape != q2.shape);
    assert_int_equal(parse(0, "score=gt.1&name=like.a*&order=score.desc", &q2, &detail), 0);
    assert_true(q1.shape != q2.shape);
    assert_int_equal(parse(0, "score=gt.1&name=like.a*&order=score.asc&select=name", &q2, &detail),
                     0);
    assert_true(q1.shape == q2.shape);
}

static const char *cursor_of(const struct res_query *q, const char *json_tail)
{
    char raw[256];
    snprintf(raw, sizeof(raw), "[\"%016llx\",%s]", q->shape, json_tail);
    size_t cap = sodium_base64_ENCODED_LEN(strlen(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = td_arena_alloc(arena, cap);
    sodium_bin2base64(out, cap, (const unsigned char *)raw, strlen(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

static void test_statement(void **state)
{
    (void)state;
    struct res_query q;
    struct res_sql s;
    const char *detail;
    assert_int_equal(parse(0,
                           "name=eq.Robert');DROP TABLE items;--&score=in.(1,2)&"
                           "order=score.desc,name.asc",
                           &q, &detail),
                     0);
    assert_int_equal(res_sql_list(&t[0], &q, "20", arena, &s, &detail), 0);
    assert_null(strstr(s.sql, "Robert"));
    assert_null(strstr(s.sql, "secret"));
    assert_int_equal(s.nparams, 3);
    assert_string_equal(s.params[1], "Robert');DROP TABLE items;--");
    /* a cursor of this list: its values become parameters too; nullable score may be null */
    q.cursor = cursor_of(&q, "null,\"O'Brien\",\"00000000-0000-0000-0000-000000000001\"");
    assert_int_equal(res_sql_list(&t[0], &q, "20", arena, &s, &detail), 0);
    assert_null(strstr(s.sql, "Brien"));
    assert_int_equal(s.nparams, 5);
    /* a cursor of another list, or a broken one */
    struct res_query other;
    assert_int_equal(parse(0, "order=score.asc", &other, &detail), 0);
    q.cursor = cursor_of(&other, "null,\"x\",\"00000000-0000-0000-0000-000000000001\"");
    assert_int_equal(res_sql_list(&t[0], &q, "20", arena, &s, &detail), TD_EBADREQ);
    q.cursor = cursor_of(&q, "1,\"x\",\"not-a-uuid\"");
    assert_int_equal(res_sql_list(&t[0], &q, "20", arena, &s, &detail), TD_EBADREQ);
    q.cursor = "!!";
    assert_int_equal(res_sql_list(&t[0], &q, "20", arena, &s, &detail), TD_EBADREQ);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_operators),          cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_order_select_embed), cmocka_unit_test(test_shape),
        cmocka_unit_test(test_statement),
    };
    return cmocka_run_group_tests_name("resource_query", tests, setup, teardown);
}
