/*
 * test_validate.c - request field checks per SPEC §3 and §5: lengths in code points,
 * whitespace-only strings are empty, emails, passwords and slugs.
 */
#include "api/validate.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static int setup(void **state)
{
    struct http_req *req = calloc(1, sizeof(*req));
    req->arena = td_arena_new();
    *state = req;
    return 0;
}

static int teardown(void **state)
{
    struct http_req *req = *state;
    td_arena_free(req->arena);
    free(req);
    return 0;
}

/* n copies of unit (a UTF-8 sequence) plus suffix, in the arena. */
static char *repeat(struct http_req *req, const char *unit, size_t n, const char *suffix)
{
    size_t ul = strlen(unit), sl = strlen(suffix);
    char *s = td_arena_alloc(req->arena, ul * n + sl + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * ul, unit, ul);
    memcpy(s + ul * n, suffix, sl + 1);
    return s;
}

static void test_utf8_len(void **state)
{
    (void)state;
    assert_int_equal(api_utf8_len(""), 0);
    assert_int_equal(api_utf8_len("abc"), 3);
    assert_int_equal(api_utf8_len("\xc3\xa9"), 1);         /* é */
    assert_int_equal(api_utf8_len("\xe2\x82\xac"), 1);     /* € */
    assert_int_equal(api_utf8_len("\xf0\x9f\x98\x80"), 1); /* U+1F600 */
    assert_int_equal(api_utf8_len("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"), 5);
}

static void test_slug(void **state)
{
    struct http_req *req = *state;
    static const char *const good[] = {"abc", "ab1", "a-b", "a--b", "acme", "acme-corp-2", "a0-z"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!api_check_slug(good[i]))
            fail_msg("rejected \"%s\"", good[i]);

    /* length boundaries: 3 and 40 characters */
    assert_int_equal(api_check_slug(repeat(req, "a", 40, "")), 1);
    assert_int_equal(api_check_slug(repeat(req, "a", 41, "")), 0);
    assert_int_equal(api_check_slug(repeat(req, "a", 39, "9")), 1);
    assert_int_equal(api_check_slug("ab"), 0);
    assert_int_equal(api_check_slug("a"), 0);
    assert_int_equal(api_check_slug(""), 0);

    static const char *const bad[] = {
        "abc-",         /* trailing dash */
        "-abc",         /* leading dash */
        "Acme",         /* uppercase */
        "acMe",         /* uppercase */
        "1acme",        /* leading digit */
        "ac_me",        /* underscore */
        "ac.me",        /* dot */
        "ac me",        /* space */
        "acme\n",       /* newline */
        "ac\xc3\xa9me", /* non-ASCII */
        "a/b",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (api_check_slug(bad[i]))
            fail_msg("accepted \"%s\"", bad[i]);
}

static void test_email(void **state)
{
    struct http_req *req = *state;
    const char *detail = NULL;
    assert_int_equal(api_check_email(req, "a@b", &detail), 0);
    assert_int_equal(api_check_email(req, "alice@example.com", &detail), 0);
    assert_int_equal(api_check_email(req, "Alice.Smith+tag@example.co.uk", &detail), 0);

    static const char *const bad[] = {"",
                                      "alice",
                                      "@example.com",
                                      "alice@",
                                      "a@b@c",
                                      "alice@@example.com",
                                      "al ice@x.io",
                                      "alice@x.io\n",
                                      "alice@x\t.io"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        detail = NULL;
        if (api_check_email(req, bad[i], &detail) != TD_EVALIDATION)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_non_null(detail);
        assert_non_null(strstr(detail, "email"));
    }

    /* at most 254 characters */
    const char *e254 = repeat(req, "a", 254 - 6, "@x.com");
    assert_int_equal(strlen(e254), 254);
    assert_int_equal(api_check_email(req, e254, &detail), 0);
    const char *e255 = repeat(req, "a", 255 - 6, "@x.com");
    assert_int_equal(api_check_email(req, e255, &detail), TD_EVALIDATION);
}

/* SPEC §3: lengths are counted in code points, so a 200-character address is fine even
 * when its UTF-8 form is longer than 254 bytes. */
static void test_email_length_in_code_points(void **state)
{
    struct http_req *req = *state;
    const char *detail = NULL;
    const char *e = repeat(req, "\xc3\xa9", 194, "@x.com"); /* 200 code points, 394 bytes */
    assert_int_equal(api_utf8_len(e), 200);
    assert_int_equal(api_check_email(req, e, &detail), 0);
    e = repeat(req, "\xc3\xa9", 249, "@x.com"); /* 255 code points */
    assert_int_equal(api_check_email(req, e, &detail), TD_EVALIDATION);
}

static void test_password(void **state)
{
    struct http_req *req = *state;
    const char *detail = NULL;
    assert_int_equal(api_check_password(req, "12345678", &detail), 0);
    assert_int_equal(api_check_password(req, "1234567", &detail), TD_EVALIDATION);
    assert_non_null(detail);
    assert_non_null(strstr(detail, "password"));
    assert_int_equal(api_check_password(req, "", &detail), TD_EVALIDATION);
    assert_int_equal(api_check_password(req, repeat(req, "x", 128, ""), &detail), 0);
    assert_int_equal(api_check_password(req, repeat(req, "x", 129, ""), &detail), TD_EVALIDATION);

    /* multibyte characters count once: 7 of them are too few even at 14+ bytes */
    assert_int_equal(api_check_password(req, repeat(req, "\xc3\xa9", 7, ""), &detail),
                     TD_EVALIDATION);
    assert_int_equal(api_check_password(req, repeat(req, "\xc3\xa9", 8, ""), &detail), 0);
    assert_int_equal(api_check_password(req, repeat(req, "\xf0\x9f\x98\x80", 8, ""), &detail), 0);
    /* 128 three-byte characters (384 bytes) are within the limit, 129 are not */
    assert_int_equal(api_check_password(req, repeat(req, "\xe2\x82\xac", 128, ""), &detail), 0);
    assert_int_equal(api_check_password(req, repeat(req, "\xe2\x82\xac", 129, ""), &detail),
                     TD_EVALIDATION);
}

static int field(struct http_req *req, json_t *obj, int required, size_t max, const char **out,
                 const char **detail)
{
    *detail = NULL;
    return api_field_str(req, obj, "name", required, max, out, detail);
}

static void test_field_str(void **state)
{
    struct http_req *req = *state;
    const char *out = "x", *detail = NULL;
    json_t *obj = json_object();

    /* missing */
    assert_int_equal(field(req, obj, 1, 10, &out, &detail), TD_EVALIDATION);
    assert_null(out);
    assert_string_equal(detail, "name is required");
    out = "x";
    assert_int_equal(field(req, obj, 0, 10, &out, &detail), 0);
    assert_null(out);

    /* null */
    json_object_set_new(obj, "name", json_null());
    assert_int_equal(field(req, obj, 1, 10, &out, &detail), TD_EVALIDATION);
    assert_string_equal(detail, "name is required");
    out = "x";
    assert_int_equal(field(req, obj, 0, 10, &out, &detail), 0);
    assert_null(out);

    /* wrong type, required or not */
    json_t *wrong[] = {json_integer(3), json_real(1.5), json_true(),
                       json_false(),    json_object(),  json_array()};
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        json_object_set_new(obj, "name", wrong[i]);
        for (int required = 0; required <= 1; required++) {
            assert_int_equal(field(req, obj, required, 10, &out, &detail), TD_EVALIDATION);
            assert_null(out);
            assert_string_equal(detail, "name must be a string");
        }
    }

    /* empty and whitespace-only */
    static const char *const blank[] = {"", " ", "   ", "\t", " \n\r\t "};
    for (size_t i = 0; i < sizeof(blank) / sizeof(blank[0]); i++) {
        json_object_set_new(obj, "name", json_string(blank[i]));
        for (int required = 0; required <= 1; required++) {
            assert_int_equal(field(req, obj, required, 10, &out, &detail), TD_EVALIDATION);
            assert_string_equal(detail, "name must not be empty");
        }
    }

    /* length in code points: 5 two-byte characters fit in 5, 6 do not */
    json_object_set_new(obj, "name", json_string(repeat(req, "\xc3\xa9", 5, "")));
    assert_int_equal(field(req, obj, 1, 5, &out, &detail), 0);
    assert_string_equal(out, repeat(req, "\xc3\xa9", 5, ""));
    json_object_set_new(obj, "name", json_string(repeat(req, "\xc3\xa9", 6, "")));
    assert_int_equal(field(req, obj, 1, 5, &out, &detail), TD_EVALIDATION);
    assert_string_equal(detail, "name must be at most 5 characters");
    json_object_set_new(obj, "name", json_string("abcdef"));
    assert_int_equal(field(req, obj, 1, 5, &out, &detail), TD_EVALIDATION);
    json_object_set_new(obj, "name", json_string("abcde"));
    assert_int_equal(field(req, obj, 1, 5, &out, &detail), 0);
    assert_string_equal(out, "abcde");

    /* surrounding whitespace around real content is content */
    json_object_set_new(obj, "name", json_string(" a "));
    assert_int_equal(field(req, obj, 1, 5, &out, &detail), 0);
    assert_string_equal(out, " a ");

    /* an embedded NUL (\u0000 in JSON) */
    json_object_set_new(obj, "name", json_stringn("ab\0cd", 5));
    assert_int_equal(field(req, obj, 1, 10, &out, &detail), TD_EVALIDATION);
    assert_string_equal(detail, "name must not contain NUL");
    json_object_set_new(obj, "name", json_stringn("\0", 1));
    assert_int_equal(field(req, obj, 0, 10, &out, &detail), TD_EVALIDATION);

    json_decref(obj);
}

static void test_field_enum(void **state)
{
    struct http_req *req = *state;
    static const char *const plans[] = {"free", "starter", "pro", "enterprise", NULL};
    const char *out = NULL, *detail = NULL;
    json_t *obj = json_pack("{s:s}", "plan", "pro");
    assert_int_equal(api_field_enum(req, obj, "plan", 1, plans, &out, &detail), 0);
    assert_string_equal(out, "pro");
    json_object_set_new(obj, "plan", json_string("Pro"));
    assert_int_equal(api_field_enum(req, obj, "plan", 1, plans, &out, &detail), TD_EVALIDATION);
    json_object_set_new(obj, "plan", json_string("platinum"));
    assert_int_equal(api_field_enum(req, obj, "plan", 0, plans, &out, &detail), TD_EVALIDATION);
    json_object_del(obj, "plan");
    assert_int_equal(api_field_enum(req, obj, "plan", 0, plans, &out, &detail), 0);
    assert_null(out);
    assert_int_equal(api_field_enum(req, obj, "plan", 1, plans, &out, &detail), TD_EVALIDATION);
    json_decref(obj);
}

static void test_no_unknown(void **state)
{
    struct http_req *req = *state;
    static const char *const allowed[] = {"name", "slug", NULL};
    const char *detail = NULL;
    json_t *obj = json_pack("{s:s,s:s}", "name", "Acme", "slug", "acme");
    assert_int_equal(api_no_unknown(req, obj, allowed, &detail), 0);
    json_object_set_new(obj, "Name", json_string("x"));
    assert_int_equal(api_no_unknown(req, obj, allowed, &detail), TD_EVALIDATION);
    assert_string_equal(detail, "unknown field \"Name\"");
    json_decref(obj);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_len),
        cmocka_unit_test_setup_teardown(test_slug, setup, teardown),
        cmocka_unit_test_setup_teardown(test_email, setup, teardown),
        cmocka_unit_test_setup_teardown(test_email_length_in_code_points, setup, teardown),
        cmocka_unit_test_setup_teardown(test_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_str, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_enum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_unknown, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
