/*
 * test_router.c - route matching ({param} segments, method mismatch, trailing slash) and
 * the /t/{slug} tenant prefix split.
 */
#include "http/router.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static int h_dummy(struct http_req *req)
{
    (void)req;
    return 0;
}

static const struct http_route routes[] = {
    {"GET", "/health", HTTP_ROUTE_PUBLIC, h_dummy},
    {"GET", "/", HTTP_ROUTE_PUBLIC, h_dummy},
    {"GET", "/projects", HTTP_ROUTE_TENANT, h_dummy},
    {"POST", "/projects", HTTP_ROUTE_TENANT, h_dummy},
    {"GET", "/projects/{id}", HTTP_ROUTE_TENANT, h_dummy},
    {"DELETE", "/projects/{id}", HTTP_ROUTE_TENANT, h_dummy},
    {"POST", "/admin/tenants/import", HTTP_ROUTE_ADMIN, h_dummy},
    {"POST", "/admin/tenants/{id}/move", HTTP_ROUTE_ADMIN, h_dummy},
    {"GET", "/a/{x}/b/{y}", HTTP_ROUTE_PUBLIC, h_dummy},
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

struct match {
    const struct http_route *r;
    const char *params[HTTP_MAX_PARAMS];
    int nparams, known;
};

static struct match match(struct td_arena *a, const char *method, const char *path)
{
    struct match m;
    memset(&m, 0, sizeof(m));
    m.nparams = -1;
    m.known = -1;
    m.r = http_router_match(routes, NROUTES, method, path, a, m.params, &m.nparams, &m.known);
    return m;
}

static int setup(void **state)
{
    *state = td_arena_new();
    return 0;
}

static int teardown(void **state)
{
    td_arena_free(*state);
    return 0;
}

static void test_match_static(void **state)
{
    struct match m = match(*state, "GET", "/health");
    assert_ptr_equal(m.r, &routes[0]);
    assert_int_equal(m.nparams, 0);

    m = match(*state, "GET", "/");
    assert_ptr_equal(m.r, &routes[1]);

    /* same path, method picks the route */
    m = match(*state, "GET", "/projects");
    assert_ptr_equal(m.r, &routes[2]);
    m = match(*state, "POST", "/projects");
    assert_ptr_equal(m.r, &routes[3]);
}

static void test_match_params(void **state)
{
    char path[] = "/projects/0b7e9a52-2d8e-4c4a-9d0f-3f6a1c2b5e11";
    struct match m = match(*state, "GET", path);
    assert_ptr_equal(m.r, &routes[4]);
    assert_int_equal(m.nparams, 1);
    assert_string_equal(m.params[0], "0b7e9a52-2d8e-4c4a-9d0f-3f6a1c2b5e11");
    /* params are arena copies, not pointers into the path */
    path[10] = 'X';
    assert_string_equal(m.params[0], "0b7e9a52-2d8e-4c4a-9d0f-3f6a1c2b5e11");

    m = match(*state, "DELETE", "/projects/p1");
    assert_ptr_equal(m.r, &routes[5]);
    assert_string_equal(m.params[0], "p1");

    m = match(*state, "POST", "/admin/tenants/abc/move");
    assert_ptr_equal(m.r, &routes[7]);
    assert_int_equal(m.nparams, 1);
    assert_string_equal(m.params[0], "abc");

    m = match(*state, "GET", "/a/1/b/two");
    assert_ptr_equal(m.r, &routes[8]);
    assert_int_equal(m.nparams, 2);
    assert_string_equal(m.params[0], "1");
    assert_string_equal(m.params[1], "two");

    /* a literal route listed first wins over a {param} one */
    m = match(*state, "POST", "/admin/tenants/import");
    assert_ptr_equal(m.r, &routes[6]);
    assert_int_equal(m.nparams, 0);
}

static void test_match_method_mismatch(void **state)
{
    struct match m = match(*state, "DELETE", "/health");
    assert_null(m.r);
    assert_int_equal(m.known, 1);

    m = match(*state, "PATCH", "/projects/p1");
    assert_null(m.r);
    assert_int_equal(m.known, 1);

    m = match(*state, "get", "/health"); /* methods are case-sensitive */
    assert_null(m.r);
    assert_int_equal(m.known, 1);
}

static void test_match_trailing_slash(void **state)
{
    struct match m = match(*state, "GET", "/health/");
    assert_ptr_equal(m.r, &routes[0]);

    m = match(*state, "POST", "/projects/");
    assert_ptr_equal(m.r, &routes[3]);

    m = match(*state, "GET", "/projects/p1/");
    assert_ptr_equal(m.r, &routes[4]);
    assert_int_equal(m.nparams, 1);
    assert_string_equal(m.params[0], "p1");

    /* only one */
    m = match(*state, "GET", "/health//");
    assert_null(m.r);
    assert_int_equal(m.known, 0);
}

static void test_match_none(void **state)
{
    static const char *const paths[] = {
        "/nope",         "/healthz",   "/heal", "/projects//", "/projects/p1/extra",
        "/projects//p1", "//projects", "",      "health",      "/a/1/b",
        "/a//b/2",       "/a/1/b/2/3",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct match m = match(*state, "GET", paths[i]);
        if (m.r)
            fail_msg("\"%s\" matched %s", paths[i], m.r->pattern);
        assert_int_equal(m.nparams, 0);
        assert_int_equal(m.known, 0);
    }
}

static void test_split_tenant(void **state)
{
    const char *slug = "x", *rest = NULL;

    assert_int_equal(http_router_split_tenant("/t/acme/projects", *state, &slug, &rest), 1);
    assert_string_equal(slug, "acme");
    assert_string_equal(rest, "/projects");

    assert_int_equal(http_router_split_tenant("/t/acme/projects/p1/", *state, &slug, &rest), 1);
    assert_string_equal(slug, "acme");
    assert_string_equal(rest, "/projects/p1/");

    assert_int_equal(http_router_split_tenant("/t/acme", *state, &slug, &rest), 1);
    assert_string_equal(slug, "acme");
    assert_string_equal(rest, "/");

    assert_int_equal(http_router_split_tenant("/t/acme/", *state, &slug, &rest), 1);
    assert_string_equal(slug, "acme");
    assert_string_equal(rest, "/");
}

static void test_split_tenant_absent(void **state)
{
    static const char *const urls[] = {"/t/",       "/t", "/tx", "/tx/acme", "/t//projects",
                                       "/projects", "/",  "",    "t/acme/x", "/T/acme/x"};
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        const char *slug = "x", *rest = NULL;
        if (http_router_split_tenant(urls[i], *state, &slug, &rest) != 0)
            fail_msg("\"%s\" was split", urls[i]);
        assert_null(slug);
        assert_ptr_equal(rest, urls[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_match_static, setup, teardown),
        cmocka_unit_test_setup_teardown(test_match_params, setup, teardown),
        cmocka_unit_test_setup_teardown(test_match_method_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_match_trailing_slash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_match_none, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_tenant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_tenant_absent, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
