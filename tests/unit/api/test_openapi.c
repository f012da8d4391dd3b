/*
 * test_openapi.c - the OpenAPI document against the router's table: every route is
 * described, every described operation is a route, references resolve, path parameters
 * are declared, and tenant routes appear without the /t/{slug} prefix.
 */
#include "api/api.h"
#include "app/app.h"
#include "api/openapi.h"
#include "http/router.h"

#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

static json_t *doc;

static int setup(void **state)
{
    (void)state;
    doc = api_openapi_build();
    return doc ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(doc);
    return 0;
}

static void lower(const char *in, char *out, size_t size)
{
    size_t i = 0;
    for (; in[i] && i + 1 < size; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[i] = '\0';
}

static int is_route(const char *method, const char *path)
{
    size_t n;
    const struct http_route *r = api_routes(&n);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(r[i].method, method) && !strcmp(r[i].pattern, path))
            return 1;
    return 0;
}

static void test_header(void **state)
{
    (void)state;
    assert_string_equal(json_string_value(json_object_get(doc, "openapi")), "3.1.0");
    json_t *info = json_object_get(doc, "info");
    assert_non_null(json_string_value(json_object_get(info, "title")));
    assert_non_null(json_string_value(json_object_get(info, "version")));
    /* the whole document serialises (no NULL left in by a failed json_pack) */
    char *text = json_dumps(doc, JSON_COMPACT);
    assert_non_null(text);
    assert_true(strlen(text) > 1000);
    free(text);
}

static void test_every_route_is_described(void **state)
{
    (void)state;
    size_t n;
    const struct http_route *r = api_routes(&n);
    json_t *paths = json_object_get(doc, "paths");
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) {
        char m[16];
        lower(r[i].method, m, sizeof(m));
        json_t *op = json_object_get(json_object_get(paths, r[i].pattern), m);
        if (!op)
            fail_msg("route %s %s has no OpenAPI description (src/api/openapi.c ops[])",
                     r[i].method, r[i].pattern);
        assert_non_null(json_string_value(json_object_get(op, "summary")));
        assert_non_null(json_string_value(json_object_get(op, "operationId")));
        json_t *responses = json_object_get(op, "responses");
        assert_true(json_object_size(responses) > 0);
        /* one 2xx answer; tenant and admin routes list their 401 */
        int ok = 0;
        const char *key;
        json_t *v;
        json_object_foreach(responses, key, v)
        {
            if (key[0] == '2')
                ok++;
            else
                assert_non_null(json_object_get(v, "x-problem-codes"));
        }
        assert_int_equal(ok, 1);
        if (r[i].flags & (HTTP_ROUTE_TENANT | HTTP_ROUTE_ADMIN))
            assert_non_null(json_object_get(responses, "401"));
    }
}

static void test_every_description_is_a_route(void **state)
{
    (void)state;
    for (size_t i = 0; i < api_openapi_described_count(); i++) {
        const char *m, *p;
        api_openapi_described(i, &m, &p);
        if (!is_route(m, p))
            fail_msg("described operation %s %s is not a route", m, p);
    }
    const char *path, *method;
    json_t *item, *op;
    size_t ops = 0;
    json_object_foreach(json_object_get(doc, "paths"), path, item)
    {
        assert_true(strncmp(path, "/t/", 3) != 0); /* listed without the tenant prefix */
        json_object_foreach(item, method, op)
        {
            char up[16];
            size_t k = 0;
            for (; method[k] && k + 1 < sizeof(up); k++)
                up[k] = (char)toupper((unsigned char)method[k]);
            up[k] = '\0';
            if (!is_route(up, path))
                fail_msg("document lists %s %s, which the router does not know", up, path);
            ops++;
        }
    }
    size_t n;
    api_routes(&n);
    assert_int_equal(ops, n);
}

/* Collect every "$ref" below v. */
static void check_refs(json_t *v)
{
    if (json_is_object(v)) {
        const char *k;
        json_t *c;
        json_object_foreach(v, k, c)
        {
            if (!strcmp(k, "$ref")) {
                const char *ref = json_string_value(c);
                assert_non_null(ref);
                char kind[32], name[64];
                assert_int_equal(sscanf(ref, "#/components/%31[^/]/%63s", kind, name), 2);
                json_t *target = json_object_get(
                    json_object_get(json_object_get(doc, "components"), kind), name);
                if (!target)
                    fail_msg("unresolved reference %s", ref);
            } else {
                check_refs(c);
            }
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c) check_refs(c);
    }
}

static void test_references_resolve(void **state)
{
    (void)state;
    check_refs(doc);
    json_t *schemas = json_object_get(json_object_get(doc, "components"), "schemas");
    /* the contract's objects are all there */
    const char *need[] = {"Tenant", "User", "Project", "AuditEntry", "Problem", NULL};
    for (int i = 0; need[i]; i++)
        assert_non_null(json_object_get(schemas, need[i]));
    json_t *codes = json_object_get(
        json_object_get(json_object_get(json_object_get(schemas, "Problem"), "properties"), "code"),
        "enum");
    assert_true(json_array_size(codes) >= 17);
}

static void test_path_parameters_declared(void **state)
{
    (void)state;
    const char *path, *method;
    json_t *item, *op;
    json_object_foreach(json_object_get(doc, "paths"), path, item)
    {
        json_object_foreach(item, method, op)
        {
            for (const char *p = strchr(path, '{'); p; p = strchr(p + 1, '{')) {
                char name[32];
                assert_int_equal(sscanf(p, "{%31[^}]}", name), 1);
                int found = 0;
                size_t i;
                json_t *prm;
                json_array_foreach(json_object_get(op, "parameters"), i, prm)
                {
                    if (json_is_string(json_object_get(prm, "name")) &&
                        !strcmp(json_string_value(json_object_get(prm, "name")), name) &&
                        !strcmp(json_string_value(json_object_get(prm, "in")), "path"))
                        found = 1;
                }
                if (!found)
                    fail_msg("%s %s does not declare path parameter %s", method, path, name);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_every_route_is_described),
        cmocka_unit_test(test_every_description_is_a_route),
        cmocka_unit_test(test_references_resolve),
        cmocka_unit_test(test_path_parameters_declared),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
