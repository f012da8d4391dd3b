/*
 * test_proxy.c - the client address behind trusted proxies: X-Forwarded-For counts only when
 * the TCP peer is trusted, and is read from the right past trusted hops, so a client's own
 * header cannot choose its address.
 */
#include "http/proxy.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

static const char *client(const struct http_proxies *p, const char *peer, const char *xff)
{
    static char out[64];
    http_proxies_client(p, peer, xff, out, sizeof(out));
    return out;
}

static void test_untrusted_peer_is_the_client(void **state)
{
    (void)state;
    struct http_proxies *p = http_proxies_new("10.0.0.0/8,127.0.0.1");
    assert_non_null(p);
    assert_string_equal(client(p, "203.0.113.9", "198.51.100.1"), "203.0.113.9");
    assert_string_equal(client(NULL, "127.0.0.1", "198.51.100.1"), "127.0.0.1");
    assert_string_equal(client(p, "127.0.0.1", NULL), "127.0.0.1");
    http_proxies_free(p);
}

static void test_rightmost_untrusted(void **state)
{
    (void)state;
    struct http_proxies *p = http_proxies_new("10.0.0.0/8,127.0.0.1,fd00::/8");
    /* nginx appended the address it saw; what the client sent before it does not count */
    assert_string_equal(client(p, "10.1.2.3", "1.2.3.4, 198.51.100.7"), "198.51.100.7");
    assert_string_equal(client(p, "127.0.0.1", "198.51.100.7, 10.9.9.9"), "198.51.100.7");
    assert_string_equal(client(p, "10.1.2.3", " 2001:db8::5 "), "2001:db8::5");
    assert_string_equal(client(p, "fd00::1", "198.51.100.8,fd12::2"), "198.51.100.8");
    /* all trusted: the leftmost; garbage: the last trusted hop before it */
    assert_string_equal(client(p, "10.1.2.3", "10.0.0.5, 10.0.0.6"), "10.0.0.5");
    assert_string_equal(client(p, "10.1.2.3", "198.51.100.7, not-an-ip"), "10.1.2.3");
    http_proxies_free(p);
}

static void test_networks(void **state)
{
    (void)state;
    struct http_proxies *p = http_proxies_new("192.168.4.0/22");
    assert_string_equal(client(p, "192.168.7.255", "198.51.100.1"), "198.51.100.1");
    assert_string_equal(client(p, "192.168.8.0", "198.51.100.1"), "192.168.8.0");
    http_proxies_free(p);
    assert_true(http_proxies_valid("10.0.0.0/8,::1,fd00::/8,127.0.0.1"));
    assert_false(http_proxies_valid("10.0.0.0/33"));
    assert_false(http_proxies_valid("example.com"));
    assert_false(http_proxies_valid("10.0.0.1,"));
    assert_false(http_proxies_valid(""));
    assert_null(http_proxies_new(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_untrusted_peer_is_the_client),
        cmocka_unit_test(test_rightmost_untrusted),
        cmocka_unit_test(test_networks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
