/*
 * test_resolver.c - tenant from the Host subdomain (SPEC §4, TENANTD_BASE_DOMAIN).
 */
#include "tenant/resolver.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#define BASE "example.com"

static void expect_slug(const char *host, const char *base, const char *want)
{
    char out[64];
    memset(out, 'x', sizeof(out));
    if (!tnt_subdomain(host, base, out, sizeof(out)))
        fail_msg("\"%s\" under \"%s\" was rejected", host, base ? base : "(null)");
    assert_string_equal(out, want);
}

static void expect_none(const char *host, const char *base)
{
    char out[64] = "";
    if (tnt_subdomain(host, base, out, sizeof(out)))
        fail_msg("\"%s\" under \"%s\" gave \"%s\"", host ? host : "(null)", base ? base : "(null)",
                 out);
}

static void test_subdomain_plain(void **state)
{
    (void)state;
    expect_slug("acme.example.com", BASE, "acme");
    expect_slug("a.example.com", BASE, "a");
    expect_slug("acme-corp2.example.com", BASE, "acme-corp2");
}

static void test_subdomain_port(void **state)
{
    (void)state;
    expect_slug("acme.example.com:8080", BASE, "acme");
    expect_slug("acme.example.com:", BASE, "acme");
    expect_none("example.com:8080", BASE);
    expect_none("evil-example.com:8080", BASE);
}

static void test_subdomain_case(void **state)
{
    (void)state;
    expect_slug("ACME.example.com", BASE, "acme");
    expect_slug("Acme.EXAMPLE.Com:443", BASE, "acme");
    expect_slug("acme.example.com", "Example.COM", "acme");
}

static void test_subdomain_rejected(void **state)
{
    (void)state;
    expect_none("a.b.example.com", BASE);  /* nested */
    expect_none("example.com", BASE);      /* the base itself */
    expect_none(".example.com", BASE);     /* empty label */
    expect_none("evil-example.com", BASE); /* suffix without a dot */
    expect_none("acmeexample.com", BASE);
    expect_none("acme.example.org", BASE);
    expect_none("acme.example.com.evil.net", BASE);
    expect_none("com", BASE);
    expect_none("", BASE);
    expect_none("acme.example.com", NULL); /* subdomain routing off */
    expect_none("acme.example.com", "");
    expect_none(NULL, BASE);
}

static void test_subdomain_capacity(void **state)
{
    (void)state;
    char out[5];
    assert_int_equal(tnt_subdomain("acme.example.com", BASE, out, sizeof(out)), 1);
    assert_string_equal(out, "acme");
    assert_int_equal(tnt_subdomain("acmex.example.com", BASE, out, sizeof(out)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subdomain_plain),    cmocka_unit_test(test_subdomain_port),
        cmocka_unit_test(test_subdomain_case),     cmocka_unit_test(test_subdomain_rejected),
        cmocka_unit_test(test_subdomain_capacity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
