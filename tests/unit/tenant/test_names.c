/*
 * test_names.c - storage names come from tenant ids only, in one form, and nothing else
 * passes the check that guards quoting them into SQL text.
 */
#include "tenant/names.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void test_derived(void **state)
{
    (void)state;
    char out[TNT_NAME_MAX];
    assert_int_equal(tnt_name_of("1A29CBDF-b770-4e6f-9a66-863d1394537b", TNT_NAME_SCHEMA, out), 0);
    assert_string_equal(out, "t_1a29cbdfb7704e6f9a66863d1394537b");
    assert_true(tnt_name_valid(out));
    assert_int_equal(tnt_name_of("1a29cbdf-b770-4e6f-9a66-863d1394537b", TNT_NAME_ROLE, out), 0);
    assert_string_equal(out, "t_1a29cbdfb7704e6f9a66863d1394537b");
    assert_int_equal(tnt_name_of("1a29cbdf-b770-4e6f-9a66-863d1394537b", TNT_NAME_DATABASE, out),
                     0);
    assert_string_equal(out, "td_1a29cbdfb7704e6f9a66863d1394537b");
    assert_true(tnt_name_valid(out));
}

static void test_not_uuid(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "acme",
                         "1a29cbdf-b770-4e6f-9a66-863d1394537",
                         "1a29cbdf-b770-4e6f-9a66-863d1394537bb",
                         "1a29cbdfb7704e6f9a66863d1394537b",
                         "1a29cbdf-b770-4e6f-9a66-863d1394537g",
                         "1a29cbdf-b770-4e6f-9a66-863d1394'37b",
                         "1a29cbdf-b770-4e6f-9a66-86\"d1394537b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char out[TNT_NAME_MAX] = "x";
        if (tnt_name_of(bad[i], TNT_NAME_SCHEMA, out) != TD_EVALIDATION)
            fail_msg("\"%s\" gave a name", bad[i]);
        assert_string_equal(out, "");
    }
}

static void test_only_storage_names_pass(void **state)
{
    (void)state;
    assert_true(tnt_name_valid("pool"));
    const char *bad[] = {"public",
                         "tenantd",
                         "t_1A29CBDFB7704E6F9A66863D1394537B",
                         "t_1a29cbdfb7704e6f9a66863d1394537",
                         "t_1a29cbdfb7704e6f9a66863d1394537b; DROP TABLE x",
                         "td_1a29cbdfb7704e6f9a66863d1394537b\"",
                         "x_1a29cbdfb7704e6f9a66863d1394537b",
                         "pool\"",
                         ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (tnt_name_valid(bad[i]))
            fail_msg("\"%s\" passed", bad[i]);
    assert_null(tnt_name_quote(NULL, "public")); /* refused before any connection is used */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_derived),
        cmocka_unit_test(test_not_uuid),
        cmocka_unit_test(test_only_storage_names_pass),
    };
    return cmocka_run_group_tests_name("names", tests, NULL, NULL);
}
