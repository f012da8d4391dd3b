/*
 * test_projects.c - the project API (SPEC §6) once per isolation (pool, schema, database):
 * create, get, patch, delete, newest-first paging with cursors, and bad ids / query values.
 */
#include "harness.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct td_server srv;

TD_SUITE_SERVER(srv)

static void assert_project(const json_t *p, const char *name, const char *status)
{
    long long created, updated;
    assert_true(json_is_object(p));
    assert_true(td_is_uuid(td_jstr(p, "id")));
    assert_string_equal(td_jstr(p, "name"), name);
    assert_non_null(json_object_get(p, "description"));
    assert_string_equal(td_jstr(p, "status"), status);
    created = td_parse_time(td_jstr(p, "created_at"));
    updated = td_parse_time(td_jstr(p, "updated_at"));
    assert_true(created > 0);
    assert_true(updated >= created);
    assert_null(json_object_get(p, "tenant_id"));
}

static void proj_path(char *out, size_t size, const char *slug, const char *id)
{
    snprintf(out, size, "/t/%s/projects/%s", slug, id);
}

struct ctx {
    const char *isolation;
    struct td_principal t;
    char coll[128];
    char apollo[256]; /* path of the project the CRUD steps work on */
    char created_at[64];
};

static struct ctx ctxs[3] = {
    {.isolation = "pool"}, {.isolation = "schema"}, {.isolation = "database"}};

static void test_make_tenant(void **state)
{
    struct ctx *c = *state;
    struct td_resp r;
    char slug[64], email[128], path[128];

    snprintf(slug, sizeof(slug), "proj-%s", c->isolation);
    snprintf(email, sizeof(email), "owner@%s.test", slug);
    assert_int_equal(td_admin_create_tenant(&srv, slug, c->isolation, "enterprise", email,
                                            "owner-password", &c->t),
                     201);
    assert_true(c->t.token[0] != '\0');
    snprintf(c->coll, sizeof(c->coll), "/t/%s/projects", slug);
    snprintf(path, sizeof(path), "/admin/tenants/%s", slug);
    td_admin(&srv, "GET", path, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "isolation"), c->isolation);
    assert_string_equal(td_jstr(r.json, "plan"), "enterprise");
    td_resp_free(&r);
}

static void test_create_and_get(void **state)
{
    struct ctx *c = *state;
    const struct td_principal *t = &c->t;
    struct td_resp r;

    assert_true(t->token[0] != '\0');
    td_call(&srv, "POST", c->coll, t->token,
            "{\"name\":\"Apollo\",\"description\":\"to the moon\"}", &r);
    TD_ASSERT_STATUS(&r, 201);
    assert_project(r.json, "Apollo", "active");
    assert_string_equal(td_jstr(r.json, "description"), "to the moon");
    proj_path(c->apollo, sizeof(c->apollo), t->slug, td_jstr(r.json, "id"));
    snprintf(c->created_at, sizeof(c->created_at), "%s", td_jstr(r.json, "created_at"));
    td_resp_free(&r);

    td_call(&srv, "POST", c->coll, t->token, "{\"name\":\"Gemini\"}", &r);
    TD_ASSERT_STATUS(&r, 201);
    assert_project(r.json, "Gemini", "active");
    assert_true(json_is_null(json_object_get(r.json, "description")));
    td_resp_free(&r);

    td_call(&srv, "POST", c->coll, t->token, "{\"name\":\"Mercury\",\"description\":null}", &r);
    TD_ASSERT_STATUS(&r, 201);
    assert_true(json_is_null(json_object_get(r.json, "description")));
    td_resp_free(&r);

    td_call(&srv, "GET", c->apollo, t->token, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_project(r.json, "Apollo", "active");
    assert_string_equal(td_jstr(r.json, "created_at"), c->created_at);
    assert_string_equal(td_jstr(r.json, "description"), "to the moon");
    td_resp_free(&r);
}

static void test_patch(void **state)
{
    struct ctx *c = *state;
    const struct td_principal *t = &c->t;
    struct td_resp r;

    assert_true(c->apollo[0] != '\0');
    /* Patch name, description, status; untouched fields stay. */
    td_call(&srv, "PATCH", c->apollo, t->token, "{\"name\":\"Apollo 11\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_project(r.json, "Apollo 11", "active");
    assert_string_equal(td_jstr(r.json, "description"), "to the moon");
    assert_string_equal(td_jstr(r.json, "created_at"), c->created_at);
    td_resp_free(&r);

    td_call(&srv, "PATCH", c->apollo, t->token, "{\"status\":\"archived\",\"description\":null}",
            &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_project(r.json, "Apollo 11", "archived");
    assert_true(json_is_null(json_object_get(r.json, "description")));
    td_resp_free(&r);

    td_call(&srv, "PATCH", c->apollo, t->token, "{\"status\":\"active\",\"description\":\"back\"}",
            &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_project(r.json, "Apollo 11", "active");
    assert_string_equal(td_jstr(r.json, "description"), "back");
    td_resp_free(&r);

    td_call(&srv, "GET", c->apollo, t->token, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_project(r.json, "Apollo 11", "active");
    assert_string_equal(td_jstr(r.json, "description"), "back");
    td_resp_free(&r);
}

static void test_bad_patch(void **state)
{
    static const char *const bad[] = {
        "{\"status\":\"deleted\"}", "{\"status\":\"ARCHIVED\"}", "{\"name\":\"\"}",
        "{\"name\":null}",          "{\"status\":null}",         "{\"name\":\"   \"}",
    };
    struct ctx *c = *state;
    struct td_resp r;
    bool ok = true;

    assert_true(c->apollo[0] != '\0');
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        td_call(&srv, "PATCH", c->apollo, c->t.token, bad[i], &r);
        if (!td_check_problem(&r, 400, "validation_failed")) {
            fprintf(stderr, "  body: %s\n", bad[i]);
            ok = false;
        }
        td_resp_free(&r);
    }
    /* Bad patches change nothing. */
    td_call(&srv, "GET", c->apollo, c->t.token, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_project(r.json, "Apollo 11", "active");
    assert_string_equal(td_jstr(r.json, "description"), "back");
    td_resp_free(&r);
    assert_true(ok);
}

static void test_delete(void **state)
{
    struct ctx *c = *state;
    const struct td_principal *t = &c->t;
    struct td_resp r;

    assert_true(c->apollo[0] != '\0');
    /* Delete: 204 with no body, then gone for every verb. */
    td_call(&srv, "DELETE", c->apollo, t->token, NULL, &r);
    TD_ASSERT_STATUS(&r, 204);
    assert_int_equal(r.body_len, 0);
    td_resp_free(&r);
    td_call(&srv, "GET", c->apollo, t->token, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 404, "not_found");
    td_resp_free(&r);
    td_call(&srv, "PATCH", c->apollo, t->token, "{\"name\":\"zombie\"}", &r);
    TD_ASSERT_PROBLEM(&r, 404, "not_found");
    td_resp_free(&r);
    td_call(&srv, "DELETE", c->apollo, t->token, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 404, "not_found");
    td_resp_free(&r);
}

static void test_unknown_and_malformed_ids(void **state)
{
    static const char *const ids[] = {"00000000-0000-4000-8000-000000000000",
                                      "not-a-uuid",
                                      "123",
                                      "0000000000000000000000000000000000000",
                                      "%27%20OR%201%3D1--",
                                      "00000000-0000-4000-8000-00000000000g"};
    struct ctx *c = *state;
    const struct td_principal *t = &c->t;
    struct td_resp r;
    char path[256];
    bool ok = true;

    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        proj_path(path, sizeof(path), t->slug, ids[i]);
        td_call(&srv, "GET", path, t->token, NULL, &r);
        ok &= td_check_problem(&r, 404, "not_found");
        td_resp_free(&r);
        td_call(&srv, "PATCH", path, t->token, "{\"name\":\"x\"}", &r);
        ok &= td_check_problem(&r, 404, "not_found");
        td_resp_free(&r);
        td_call(&srv, "DELETE", path, t->token, NULL, &r);
        ok &= td_check_problem(&r, 404, "not_found");
        td_resp_free(&r);
    }
    assert_true(ok);
}

/* Walk the whole list with the given limit; names in order into names[] (max n). */
static int walk(const struct td_principal *t, int limit, char names[][32], int n)
{
    struct td_resp r;
    char cursor[1024] = "", path[1400];
    int got = 0, pages = 0;

    for (;;) {
        json_t *data, *next, *p;
        size_t i;
        if (cursor[0])
            snprintf(path, sizeof(path), "/t/%s/projects?limit=%d&cursor=%s", t->slug, limit,
                     cursor);
        else
            snprintf(path, sizeof(path), "/t/%s/projects?limit=%d", t->slug, limit);
        td_call(&srv, "GET", path, t->token, NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        data = json_object_get(r.json, "data");
        next = json_object_get(r.json, "next_cursor");
        assert_true(json_is_array(data));
        assert_non_null(next);
        assert_true((int)json_array_size(data) <= limit);
        json_array_foreach(data, i, p)
        {
            assert_true(got < n);
            snprintf(names[got++], 32, "%s", td_jstr(p, "name"));
        }
        pages++;
        assert_true(pages <= n + 1);
        if (json_is_null(next)) {
            td_resp_free(&r);
            break;
        }
        /* A full page always precedes a cursor. */
        assert_int_equal(json_array_size(data), limit);
        assert_true(json_is_string(next));
        td_urlencode(json_string_value(next), cursor, sizeof(cursor));
        td_resp_free(&r);
    }
    return got;
}

static void test_paging(void **state)
{
    struct ctx *cx = *state;
    const struct td_principal *t = &cx->t;
    struct td_resp r;
    char coll[128], path[1400];
    static char names[64][32];
    int n;

    snprintf(coll, sizeof(coll), "/t/%s/projects", t->slug);
    /* Start from an empty tenant (crud() left Gemini and Mercury). */
    td_call(&srv, "GET", coll, t->token, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    {
        json_t *p;
        size_t i;
        json_array_foreach(json_object_get(r.json, "data"), i, p)
        {
            struct td_resp d;
            proj_path(path, sizeof(path), t->slug, td_jstr(p, "id"));
            td_call(&srv, "DELETE", path, t->token, NULL, &d);
            TD_ASSERT_STATUS(&d, 204);
            td_resp_free(&d);
        }
    }
    td_resp_free(&r);

    for (int i = 0; i < 25; i++) {
        char body[64];
        snprintf(body, sizeof(body), "{\"name\":\"p%02d\"}", i);
        td_call(&srv, "POST", coll, t->token, body, &r);
        TD_ASSERT_STATUS(&r, 201);
        td_resp_free(&r);
    }

    /* Every page size sees the same 25, newest first, no gaps, no duplicates. */
    {
        static const int limits[] = {10, 7, 1, 25, 100};
        for (size_t k = 0; k < sizeof(limits) / sizeof(limits[0]); k++) {
            n = walk(t, limits[k], names, 64);
            assert_int_equal(n, 25);
            for (int i = 0; i < 25; i++) {
                char want[32];
                snprintf(want, sizeof(want), "p%02d", 24 - i);
                assert_string_equal(names[i], want);
            }
        }
    }

    /* Default limit 20. */
    td_call(&srv, "GET", coll, t->token, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "data")), 20);
    assert_true(json_is_string(json_object_get(r.json, "next_cursor")));
    td_resp_free(&r);

    /* A project created between pages does not shift the pages already walked. */
    {
        char cursor[1024];
        snprintf(path, sizeof(path), "%s?limit=10", coll);
        td_call(&srv, "GET", path, t->token, NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        td_urlencode(td_jstr(r.json, "next_cursor"), cursor, sizeof(cursor));
        td_resp_free(&r);
        td_call(&srv, "POST", coll, t->token, "{\"name\":\"late\"}", &r);
        TD_ASSERT_STATUS(&r, 201);
        td_resp_free(&r);
        snprintf(path, sizeof(path), "%s?limit=10&cursor=%s", coll, cursor);
        td_call(&srv, "GET", path, t->token, NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        assert_string_equal(td_jstr(json_array_get(json_object_get(r.json, "data"), 0), "name"),
                            "p14");
        td_resp_free(&r);
    }
}

static void test_bad_queries(void **state)
{
    struct ctx *cx = *state;
    const struct td_principal *t = &cx->t;
    struct td_resp r;
    char path[512];
    bool ok = true;

    assert_true(t->token[0] != '\0');
    {
        static const char *const bad[] = {"limit=0",   "limit=101", "limit=abc", "limit=-1",
                                          "limit=",    "limit=1.5", "limit=10x", "cursor=%21%21",
                                          "cursor=zz", "cursor="};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            snprintf(path, sizeof(path), "%s?%s", cx->coll, bad[i]);
            td_call(&srv, "GET", path, t->token, NULL, &r);
            ok &= td_check_problem(&r, 400, "bad_request");
            td_resp_free(&r);
        }
    }
    snprintf(path, sizeof(path), "%s?limit=100", cx->coll);
    td_call(&srv, "GET", path, t->token, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "data")), 26);
    assert_true(json_is_null(json_object_get(r.json, "next_cursor")));
    td_resp_free(&r);
    assert_true(ok);
}

static void test_usage(void **state)
{
    struct ctx *cx = *state;
    struct td_resp r;
    char path[128];

    snprintf(path, sizeof(path), "/admin/tenants/%s", cx->t.slug);
    /* Usage may lag by up to 5 s. */
    for (int tries = 0;; tries++) {
        json_int_t n;
        td_admin(&srv, "GET", path, NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        n = json_integer_value(json_object_get(json_object_get(r.json, "usage"), "projects"));
        td_resp_free(&r);
        if (n == 26 || tries == 12) {
            assert_int_equal(n, 26);
            break;
        }
        usleep(500000);
    }
}

#define SUITE(k)                                                                                   \
    cmocka_unit_test_prestate(test_make_tenant, &ctxs[k]),                                         \
        cmocka_unit_test_prestate(test_create_and_get, &ctxs[k]),                                  \
        cmocka_unit_test_prestate(test_patch, &ctxs[k]),                                           \
        cmocka_unit_test_prestate(test_bad_patch, &ctxs[k]),                                       \
        cmocka_unit_test_prestate(test_delete, &ctxs[k]),                                          \
        cmocka_unit_test_prestate(test_unknown_and_malformed_ids, &ctxs[k]),                       \
        cmocka_unit_test_prestate(test_paging, &ctxs[k]),                                          \
        cmocka_unit_test_prestate(test_bad_queries, &ctxs[k]),                                     \
        cmocka_unit_test_prestate(test_usage, &ctxs[k])

struct racer {
    const char *token;
    const char *path;
    long status;
    char code[64];
};

static void *race_main(void *arg)
{
    struct racer *x = arg;
    struct td_resp r;
    td_call(&srv, "POST", x->path, x->token, "{\"name\":\"racer\"}", &r);
    x->status = r.status;
    snprintf(x->code, sizeof(x->code), "%s",
             td_jstr(r.json, "code") ? td_jstr(r.json, "code") : "");
    td_resp_free(&r);
    return NULL;
}

/* The free plan allows 3 projects, also when 8 creations race (pool and schema). */
static void test_plan_limit_under_concurrency(void **state)
{
    static const char *const isolations[] = {"pool", "schema"};
    (void)state;

    for (size_t k = 0; k < 2; k++) {
        struct td_principal t;
        struct td_resp r;
        pthread_t th[8];
        struct racer x[8];
        char slug[64], path[128];
        int created = 0, refused = 0;

        snprintf(slug, sizeof(slug), "quota-%s", isolations[k]);
        assert_int_equal(td_admin_create_tenant(&srv, slug, isolations[k], "free", "o@quota.test",
                                                "quota-password", &t),
                         201);
        assert_true(t.token[0] != '\0');
        snprintf(path, sizeof(path), "/t/%s/projects", slug);
        for (int i = 0; i < 8; i++) {
            x[i].token = t.token;
            x[i].path = path;
            assert_int_equal(pthread_create(&th[i], NULL, race_main, &x[i]), 0);
        }
        for (int i = 0; i < 8; i++) {
            pthread_join(th[i], NULL);
            if (x[i].status == 201)
                created++;
            else if (x[i].status == 403 && strcmp(x[i].code, "quota_exceeded") == 0)
                refused++;
            else
                fprintf(stderr, "  %s: concurrent create -> %ld %s\n", slug, x[i].status,
                        x[i].code);
        }
        snprintf(path, sizeof(path), "/t/%s/projects?limit=100", slug);
        td_call(&srv, "GET", path, t.token, NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        if (created != 3)
            fprintf(stderr,
                    "  %s: %d projects created by 8 racing requests on the free plan "
                    "(limit 3), %zu listed\n",
                    slug, created, json_array_size(json_object_get(r.json, "data")));
        assert_int_equal(json_array_size(json_object_get(r.json, "data")), 3);
        td_resp_free(&r);
        assert_int_equal(created, 3);
        assert_int_equal(refused, 5);
        /* And one more, alone, is refused too. */
        snprintf(path, sizeof(path), "/t/%s/projects", slug);
        td_call(&srv, "POST", path, t.token, "{\"name\":\"fourth\"}", &r);
        TD_ASSERT_PROBLEM(&r, 403, "quota_exceeded");
        td_resp_free(&r);
    }
}

int main(void)
{
    /* The same steps for each isolation; cmocka names them alike, so the tenant slug
     * (proj-<isolation>) in the failure messages tells which one failed. */
    const struct CMUnitTest tests[] = {SUITE(0), SUITE(1), SUITE(2),
                                       cmocka_unit_test(test_plan_limit_under_concurrency)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
