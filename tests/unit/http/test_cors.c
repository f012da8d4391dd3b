/*
 * test_cors.c - the allowed origins are compared exactly: no prefix, suffix, case or
 * wildcard match, and an unset list allows nothing.
 */
#include "http/cors.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

static void test_exact_origins(void **state)
{
    (void)state;
    struct http_cors *c = http_cors_new("https://app.example.com,http://localhost:3000");
    assert_non_null(c);
    assert_true(http_cors_allowed(c, "https://app.example.com"));
    assert_true(http_cors_allowed(c, "http://localhost:3000"));
    const char *refused[] = {"https://app.example.com.evil.test",
                             "https://evil-app.example.com",
                             "http://app.example.com",
                             "https://app.example.com/",
                             "https://APP.example.com",
                             "http://localhost:30000",
                             "http://localhost",
                             "null",
                             "",
                             NULL};
    for (int i = 0; refused[i]; i++)
        assert_false(http_cors_allowed(c, refused[i]));
    assert_false(http_cors_allowed(c, NULL));
    http_cors_free(c);
}

static void test_unset(void **state)
{
    (void)state;
    assert_null(http_cors_new(NULL));
    assert_null(http_cors_new(""));
    assert_false(http_cors_allowed(NULL, "https://app.example.com"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_origins),
        cmocka_unit_test(test_unset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
