/*
 * test_basics.c - probes, unknown routes, request ids and the operator's tenant API
 * (SPEC §3, §5, §6): admin token required, create/list/get, duplicate and bad slugs.
 */
#include "harness.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct td_server srv;

TD_SUITE_SERVER(srv)

static void test_health_and_ready(void **state)
{
    struct td_resp r;
    (void)state;

    td_http(&srv, "GET", "/health", NULL, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_true(r.request_id[0] != '\0');
    td_resp_free(&r);

    td_http(&srv, "GET", "/ready", NULL, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
}

static void test_unknown_route_is_404_problem(void **state)
{
    struct td_resp r;
    (void)state;

    td_http(&srv, "GET", "/no/such/route", NULL, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 404, "not_found");
    assert_true(r.request_id[0] != '\0');
    td_resp_free(&r);

    td_admin(&srv, "GET", "/admin/no-such-thing", NULL, &r);
    TD_ASSERT_PROBLEM(&r, 404, "not_found");
    td_resp_free(&r);
}

static void test_request_id_echoed(void **state)
{
    struct td_resp r;
    const char *h[] = {"X-Request-Id: it-basics-req-4711", NULL};
    char first[128];
    (void)state;

    td_http(&srv, "GET", "/health", h, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(r.request_id, "it-basics-req-4711");
    td_resp_free(&r);

    /* Echoed on errors too. */
    td_http(&srv, "GET", "/nowhere", h, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 404, "not_found");
    assert_string_equal(r.request_id, "it-basics-req-4711");
    td_resp_free(&r);

    /* Generated ids differ between requests. */
    td_http(&srv, "GET", "/health", NULL, NULL, &r);
    snprintf(first, sizeof(first), "%s", r.request_id);
    td_resp_free(&r);
    td_http(&srv, "GET", "/health", NULL, NULL, &r);
    assert_true(first[0] != '\0');
    assert_string_not_equal(first, r.request_id);
    td_resp_free(&r);
}

static void test_admin_requires_admin_token(void **state)
{
    struct td_resp r;
    struct td_principal user;
    (void)state;

    td_http(&srv, "GET", "/admin/tenants", NULL, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
    td_resp_free(&r);

    td_call(&srv, "GET", "/admin/tenants", "not-the-admin-token-0123456789abcdefghij", NULL, &r);
    TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
    td_resp_free(&r);

    td_call(&srv, "POST", "/admin/tenants", NULL, "{\"slug\":\"sneaky\",\"name\":\"x\"}", &r);
    TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
    td_resp_free(&r);

    /* A valid user token is still not an operator token. */
    assert_int_equal(td_signup(&srv, "basics-user", "owner@basics.test", "password-123", &user),
                     201);
    td_call(&srv, "GET", "/admin/tenants", user.token, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
    td_resp_free(&r);
    td_call(&srv, "POST", "/admin/tenants", user.token, "{\"slug\":\"sneaky\",\"name\":\"x\"}", &r);
    TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
    td_resp_free(&r);

    /* Nothing was created by the refused requests. */
    td_admin(&srv, "GET", "/admin/tenants/sneaky", NULL, &r);
    assert_int_equal(r.status, 404);
    td_resp_free(&r);
}

static void assert_tenant_shape(const json_t *t, const char *slug, const char *plan,
                                const char *isolation)
{
    assert_true(json_is_object(t));
    assert_true(td_is_uuid(td_jstr(t, "id")));
    assert_string_equal(td_jstr(t, "slug"), slug);
    assert_non_null(td_jstr(t, "name"));
    assert_string_equal(td_jstr(t, "plan"), plan);
    assert_string_equal(td_jstr(t, "isolation"), isolation);
    assert_string_equal(td_jstr(t, "status"), "active");
    assert_true(td_parse_time(td_jstr(t, "created_at")) > 0);
    assert_non_null(json_object_get(t, "server"));
    assert_true(json_is_null(json_object_get(t, "subscription_expires_at")));
}

static void test_admin_create_get_list(void **state)
{
    struct td_resp r;
    char id[64], path[128];
    (void)state;

    td_admin(&srv, "POST", "/admin/tenants", "{\"slug\":\"acme-basics\",\"name\":\"Acme Basics\"}",
             &r);
    TD_ASSERT_STATUS(&r, 201);
    assert_true(strncmp(r.content_type, "application/json", 16) == 0);
    assert_tenant_shape(r.json, "acme-basics", "free", "pool");
    assert_string_equal(td_jstr(r.json, "name"), "Acme Basics");
    snprintf(id, sizeof(id), "%s", td_jstr(r.json, "id"));
    td_resp_free(&r);

    /* By id, with usage. */
    snprintf(path, sizeof(path), "/admin/tenants/%s", id);
    td_admin(&srv, "GET", path, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_tenant_shape(r.json, "acme-basics", "free", "pool");
    assert_string_equal(td_jstr(r.json, "id"), id);
    {
        json_t *u = json_object_get(r.json, "usage");
        assert_true(json_is_object(u));
        assert_true(json_is_integer(json_object_get(u, "users")));
        assert_int_equal(json_integer_value(json_object_get(u, "users")), 0);
        assert_int_equal(json_integer_value(json_object_get(u, "projects")), 0);
        assert_true(json_is_integer(json_object_get(u, "api_calls_month")));
    }
    td_resp_free(&r);

    /* By slug: the same tenant. */
    td_admin(&srv, "GET", "/admin/tenants/acme-basics", NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "id"), id);
    td_resp_free(&r);

    /* In the list. */
    td_admin(&srv, "GET", "/admin/tenants?limit=100", NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    {
        json_t *data = json_object_get(r.json, "data"), *t;
        size_t i;
        bool found = false;
        assert_true(json_is_array(data));
        assert_non_null(json_object_get(r.json, "next_cursor"));
        json_array_foreach(data, i, t)
        {
            if (td_jstr(t, "id") && strcmp(td_jstr(t, "id"), id) == 0)
                found = true;
        }
        assert_true(found);
    }
    td_resp_free(&r);

    /* Unknown id and unknown slug. */
    td_admin(&srv, "GET", "/admin/tenants/00000000-0000-4000-8000-000000000000", NULL, &r);
    assert_int_equal(r.status, 404);
    td_resp_free(&r);
    td_admin(&srv, "GET", "/admin/tenants/no-such-tenant", NULL, &r);
    assert_int_equal(r.status, 404);
    td_resp_free(&r);
}

static void test_admin_plan_sets_isolation(void **state)
{
    struct td_resp r;
    (void)state;

    td_admin(&srv, "POST", "/admin/tenants",
             "{\"slug\":\"pro-basics\",\"name\":\"Pro\",\"plan\":\"pro\"}", &r);
    TD_ASSERT_STATUS(&r, 201);
    assert_tenant_shape(r.json, "pro-basics", "pro", "schema");
    td_resp_free(&r);

    td_admin(&srv, "POST", "/admin/tenants",
             "{\"slug\":\"starter-schema\",\"name\":\"S\",\"plan\":\"starter\","
             "\"isolation\":\"schema\"}",
             &r);
    TD_ASSERT_STATUS(&r, 201);
    assert_tenant_shape(r.json, "starter-schema", "starter", "schema");
    td_resp_free(&r);

    td_admin(&srv, "POST", "/admin/tenants",
             "{\"slug\":\"bad-plan\",\"name\":\"x\",\"plan\":\"platinum\"}", &r);
    TD_ASSERT_PROBLEM(&r, 400, "validation_failed");
    td_resp_free(&r);
    td_admin(&srv, "POST", "/admin/tenants",
             "{\"slug\":\"bad-iso\",\"name\":\"x\",\"isolation\":\"cluster\"}", &r);
    TD_ASSERT_PROBLEM(&r, 400, "validation_failed");
    td_resp_free(&r);
}

static void test_admin_list_paging(void **state)
{
    struct td_resp r;
    char cursor[512] = "", path[700];
    int pages = 0, total = 0;
    (void)state;

    for (int i = 0; i < 3; i++) {
        char body[128];
        snprintf(body, sizeof(body), "{\"slug\":\"page-%d\",\"name\":\"Page %d\"}", i, i);
        td_admin(&srv, "POST", "/admin/tenants", body, &r);
        TD_ASSERT_STATUS(&r, 201);
        td_resp_free(&r);
    }
    /* Newest first: page-2 is the first tenant of the first page of size 1. */
    for (;;) {
        json_t *data, *next;
        if (cursor[0])
            snprintf(path, sizeof(path), "/admin/tenants?limit=1&cursor=%s", cursor);
        else
            snprintf(path, sizeof(path), "/admin/tenants?limit=1");
        td_admin(&srv, "GET", path, NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        data = json_object_get(r.json, "data");
        assert_true(json_is_array(data));
        assert_true(json_array_size(data) <= 1);
        if (pages == 0)
            assert_string_equal(td_jstr(json_array_get(data, 0), "slug"), "page-2");
        if (pages == 1)
            assert_string_equal(td_jstr(json_array_get(data, 0), "slug"), "page-1");
        total += (int)json_array_size(data);
        pages++;
        next = json_object_get(r.json, "next_cursor");
        assert_non_null(next);
        if (json_is_null(next)) {
            td_resp_free(&r);
            break;
        }
        assert_true(json_is_string(next));
        td_urlencode(json_string_value(next), cursor, sizeof(cursor));
        td_resp_free(&r);
        assert_true(pages < 100);
    }
    /* basics-user, acme-basics, pro-basics, starter-schema, page-0..2 at least. */
    assert_true(total >= 7);

    td_admin(&srv, "GET", "/admin/tenants?limit=0", NULL, &r);
    TD_ASSERT_PROBLEM(&r, 400, "bad_request");
    td_resp_free(&r);
    td_admin(&srv, "GET", "/admin/tenants?cursor=%21%21garbage", NULL, &r);
    TD_ASSERT_PROBLEM(&r, 400, "bad_request");
    td_resp_free(&r);
}

static void test_admin_duplicate_slug(void **state)
{
    struct td_resp r;
    (void)state;

    td_admin(&srv, "POST", "/admin/tenants", "{\"slug\":\"dup-slug\",\"name\":\"One\"}", &r);
    TD_ASSERT_STATUS(&r, 201);
    td_resp_free(&r);
    td_admin(&srv, "POST", "/admin/tenants", "{\"slug\":\"dup-slug\",\"name\":\"Two\"}", &r);
    TD_ASSERT_PROBLEM(&r, 409, "conflict");
    td_resp_free(&r);
    /* A slug taken through signup is taken for the operator too. */
    td_admin(&srv, "POST", "/admin/tenants", "{\"slug\":\"basics-user\",\"name\":\"x\"}", &r);
    TD_ASSERT_PROBLEM(&r, 409, "conflict");
    td_resp_free(&r);
    /* The first one is unchanged. */
    td_admin(&srv, "GET", "/admin/tenants/dup-slug", NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "name"), "One");
    td_resp_free(&r);
}

static void test_admin_bad_slug(void **state)
{
    static const char *const bad[] = {
        "\"ab\"",                                        /* too short */
        "\"Acme\"",                                      /* upper case */
        "\"1acme\"",                                     /* starts with a digit */
        "\"-acme\"",                                     /* starts with a hyphen */
        "\"acme-\"",                                     /* ends with a hyphen */
        "\"ac_me\"",                                     /* underscore */
        "\"ac me\"",                                     /* space */
        "\"acme.co\"",                                   /* dot */
        "\"\"",                                          /* empty */
        "42",                                            /* not a string */
        "null",                                          /* null */
        "\"acm\\u00e9\"",                                /* non-ASCII letter */
        "\"a2345678901234567890123456789012345678901\"", /* 41 characters */
    };
    struct td_resp r;
    char body[256];
    bool ok = true;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body), "{\"slug\":%s,\"name\":\"Bad\"}", bad[i]);
        td_admin(&srv, "POST", "/admin/tenants", body, &r);
        if (!td_check_problem(&r, 400, "validation_failed")) {
            fprintf(stderr, "  slug %s\n", bad[i]);
            ok = false;
        }
        td_resp_free(&r);
    }
    assert_true(ok);
    td_admin(&srv, "POST", "/admin/tenants", "{\"name\":\"No slug\"}", &r);
    TD_ASSERT_PROBLEM(&r, 400, "validation_failed");
    td_resp_free(&r);
    td_admin(&srv, "POST", "/admin/tenants", "{\"slug\":\"no-name\"}", &r);
    TD_ASSERT_PROBLEM(&r, 400, "validation_failed");
    td_resp_free(&r);

    /* Boundaries that are valid: 3 and 40 characters. */
    td_admin(&srv, "POST", "/admin/tenants", "{\"slug\":\"ab1\",\"name\":\"Short\"}", &r);
    TD_ASSERT_STATUS(&r, 201);
    td_resp_free(&r);
    td_admin(&srv, "POST", "/admin/tenants",
             "{\"slug\":\"a23456789012345678901234567890123456789z\",\"name\":\"Long\"}", &r);
    TD_ASSERT_STATUS(&r, 201);
    td_resp_free(&r);
}

static void test_openapi_and_metrics(void **state)
{
    struct td_resp r;
    (void)state;

    td_http(&srv, "GET", "/openapi.json", NULL, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_true(json_is_object(r.json));
    assert_true(td_jstr(r.json, "openapi") && strncmp(td_jstr(r.json, "openapi"), "3.1", 3) == 0);
    {
        json_t *paths = json_object_get(r.json, "paths");
        assert_true(json_is_object(paths));
        assert_non_null(json_object_get(paths, "/projects"));
        assert_non_null(json_object_get(paths, "/projects/{id}"));
        assert_non_null(json_object_get(paths, "/admin/tenants"));
        assert_non_null(json_object_get(paths, "/signup"));
    }
    td_resp_free(&r);

    td_admin(&srv, "GET", "/metrics", NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_true(strncmp(r.content_type, "text/plain", 10) == 0);
    td_resp_free(&r);
}

struct racer {
    const char *body;
    long status;
    char code[64];
};

static void *race_main(void *arg)
{
    struct racer *x = arg;
    struct td_resp r;
    td_admin(&srv, "POST", "/admin/tenants", x->body, &r);
    x->status = r.status;
    snprintf(x->code, sizeof(x->code), "%s",
             td_jstr(r.json, "code") ? td_jstr(r.json, "code") : "");
    td_resp_free(&r);
    return NULL;
}

static void test_admin_concurrent_same_slug(void **state)
{
    static const char *const isolations[] = {"pool", "schema"};
    (void)state;

    for (size_t k = 0; k < 2; k++) {
        pthread_t th[6];
        struct racer x[6];
        char body[128];
        int created = 0, conflicts = 0;
        snprintf(body, sizeof(body),
                 "{\"slug\":\"race-%s\",\"name\":\"Race\",\"isolation\":\"%s\"}", isolations[k],
                 isolations[k]);
        for (int i = 0; i < 6; i++) {
            x[i].body = body;
            assert_int_equal(pthread_create(&th[i], NULL, race_main, &x[i]), 0);
        }
        for (int i = 0; i < 6; i++) {
            pthread_join(th[i], NULL);
            if (x[i].status == 201)
                created++;
            else if (x[i].status == 409 && strcmp(x[i].code, "conflict") == 0)
                conflicts++;
            else
                fprintf(stderr, "  concurrent create race-%s -> %ld %s\n", isolations[k],
                        x[i].status, x[i].code);
        }
        assert_int_equal(created, 1);
        assert_int_equal(conflicts, 5);
    }
}

static void test_admin_delete_tenant(void **state)
{
    struct td_principal p;
    struct td_resp r;
    char storage[40], val[32], path[160];
    const char *params[1] = {storage};
    PGconn *c;
    (void)state;

    assert_int_equal(td_admin_create_tenant(&srv, "doomed", "schema", "pro", "o@doomed.test",
                                            "doomed-password", &p),
                     201);
    assert_true(p.token[0] != '\0');
    td_storage_name(p.tenant_id, storage, sizeof(storage));
    c = td_db(&srv, "postgres");
    assert_non_null(c);
    assert_true(td_sql_value(c, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", 1, params,
                             val, sizeof(val)));
    assert_string_equal(val, "1");

    /* confirm is required and must be the slug. */
    td_admin(&srv, "DELETE", "/admin/tenants/doomed", NULL, &r);
    TD_ASSERT_PROBLEM(&r, 400, "bad_request");
    td_resp_free(&r);
    td_admin(&srv, "DELETE", "/admin/tenants/doomed?confirm=other", NULL, &r);
    TD_ASSERT_PROBLEM(&r, 400, "bad_request");
    td_resp_free(&r);
    td_call(&srv, "GET", "/t/doomed/projects", p.token, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);

    snprintf(path, sizeof(path), "/admin/tenants/%s?confirm=doomed", p.tenant_id);
    td_admin(&srv, "DELETE", path, NULL, &r);
    TD_ASSERT_STATUS(&r, 204);
    td_resp_free(&r);

    /* Gone: for the operator, for login and for its old tokens; storage dropped. */
    td_admin(&srv, "GET", "/admin/tenants/doomed", NULL, &r);
    assert_int_equal(r.status, 404);
    td_resp_free(&r);
    td_http(&srv, "POST", "/t/doomed/auth/login", NULL,
            "{\"email\":\"o@doomed.test\",\"password\":\"doomed-password\"}", &r);
    TD_ASSERT_PROBLEM(&r, 404, "tenant_not_found");
    td_resp_free(&r);
    td_call(&srv, "GET", "/t/doomed/projects", p.token, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 404, "tenant_not_found");
    td_resp_free(&r);
    assert_true(td_sql_value(c, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", 1, params,
                             val, sizeof(val)));
    assert_string_equal(val, "0");
    assert_true(td_sql_value(c, "SELECT count(*) FROM pg_roles WHERE rolname = $1", 1, params, val,
                             sizeof(val)));
    assert_string_equal(val, "0");
    PQfinish(c);

    /* The slug is free again. */
    td_admin(&srv, "POST", "/admin/tenants", "{\"slug\":\"doomed\",\"name\":\"Reborn\"}", &r);
    TD_ASSERT_STATUS(&r, 201);
    assert_string_not_equal(td_jstr(r.json, "id"), p.tenant_id);
    td_resp_free(&r);
    /* The old token does not open the new tenant of the same slug: it is well signed and
     * unexpired, so the answer is the mismatch of its tid with the tenant the path names
     * (SPEC §4: token, then mismatch). */
    td_call(&srv, "GET", "/t/doomed/projects", p.token, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 403, "tenant_mismatch");
    td_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_and_ready),
        cmocka_unit_test(test_unknown_route_is_404_problem),
        cmocka_unit_test(test_request_id_echoed),
        cmocka_unit_test(test_admin_requires_admin_token),
        cmocka_unit_test(test_admin_create_get_list),
        cmocka_unit_test(test_admin_plan_sets_isolation),
        cmocka_unit_test(test_admin_list_paging),
        cmocka_unit_test(test_admin_duplicate_slug),
        cmocka_unit_test(test_admin_bad_slug),
        cmocka_unit_test(test_admin_concurrent_same_slug),
        cmocka_unit_test(test_admin_delete_tenant),
        cmocka_unit_test(test_openapi_and_metrics),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
