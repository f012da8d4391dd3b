/*
 * test_bad_input.c - malformed requests get the right 4xx problem (SPEC §3), never a 5xx,
 * and the server keeps serving: broken JSON, wrong shapes and types, length limits in
 * code points, invalid UTF-8, oversized bodies and headers, bad ids and query values.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct td_server srv;
static struct td_principal t; /* enterprise pool tenant: no quota in the way */
static char coll[128];        /* /t/<slug>/projects */
static char item[256];        /* /t/<slug>/projects/<id> */

static int setup(void **state)
{
    struct td_resp r;
    (void)state;
    if (td_server_start(&srv, NULL) != 0)
        return -1;
    if (td_admin_create_tenant(&srv, "bad-input", "pool", "enterprise", "owner@bad.test",
                               "owner-password", &t) != 201 ||
        !t.token[0])
        return -1;
    snprintf(coll, sizeof(coll), "/t/%s/projects", t.slug);
    td_call(&srv, "POST", coll, t.token, "{\"name\":\"target\"}", &r);
    if (r.status != 201 || !td_jstr(r.json, "id")) {
        td_resp_free(&r);
        return -1;
    }
    snprintf(item, sizeof(item), "%s/%s", coll, td_jstr(r.json, "id"));
    td_resp_free(&r);
    return 0;
}

TD_SUITE_TEARDOWN(srv)

static void assert_alive(void)
{
    struct td_resp r;
    td_http(&srv, "GET", "/health", NULL, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
}

/* Send body (len bytes) with the tenant's token; check for a problem with status/code and
 * that the server still answers /health. */
static bool check_len(const char *method, const char *path, const char *body, size_t len,
                      long status, const char *code)
{
    struct td_resp r;
    char auth[2200];
    const char *h[] = {auth, NULL};
    bool ok;
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t.token);
    td_http_len(&srv, method, path, h, body, len, false, &r);
    ok = td_check_problem(&r, status, code);
    if (!ok)
        fprintf(stderr, "  request body: %.200s\n", body);
    td_resp_free(&r);
    td_http(&srv, "GET", "/health", NULL, NULL, &r);
    ok &= td_check_status(&r, 200);
    td_resp_free(&r);
    return ok;
}

static bool check(const char *method, const char *path, const char *body, long status,
                  const char *code)
{
    return check_len(method, path, body, strlen(body), status, code);
}

static void expect(const char *method, const char *path, const char *body, long status,
                   const char *code)
{
    assert_true(check(method, path, body, status, code));
}

static void test_malformed_json(void **state)
{
    static const char *const bad[] = {
        "{",
        "}",
        "{\"name\":}",
        "{\"name\":\"x\"",
        "{'name':'x'}",
        "nonsense",
        "{\"name\":\"x\",}",
        "{\"name\" \"x\"}",
        "{\"name\":\"x\"} trailing",
        "\"unterminated",
        "{\"name\":tru}",
        "{\"name\":\"\\q\"}",
        " ",
    };
    (void)state;

    bool ok = true;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ok &= check("POST", coll, bad[i], 400, "invalid_json");
    ok &= check("POST", coll, "", 400, "invalid_json");
    ok &= check("PATCH", item, "{\"status\":", 400, "invalid_json");
    assert_true(ok);
}

static void test_not_an_object(void **state)
{
    /* POST also takes an array of 1-100 objects (SPEC §7); PATCH only an object */
    static const char *const bad[] = {"[]", "[{\"name\":\"x\"}]", "\"name\"", "42", "null", "true"};
    (void)state;
    bool ok = true;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (i != 1)
            ok &= check("POST", coll, bad[i], 400, "validation_failed");
        ok &= check("PATCH", item, bad[i], 400, "validation_failed");
    }
    assert_true(ok);
}

static void test_wrong_types_and_missing(void **state)
{
    static const char *const bad_create[] = {
        "{}",
        "{\"description\":\"no name\"}",
        "{\"name\":null}",
        "{\"name\":42}",
        "{\"name\":true}",
        "{\"name\":[\"x\"]}",
        "{\"name\":{\"x\":1}}",
        "{\"name\":\"\"}",
        "{\"name\":\"   \"}",
        "{\"name\":\" \\t\\n\\r \"}",
        "{\"name\":\"ok\",\"description\":5}",
        "{\"name\":\"ok\",\"description\":[]}",
        "{\"name\":\"ok\",\"description\":false}",
    };
    static const char *const bad_patch[] = {
        "{\"name\":42}",     "{\"name\":\"\"}",     "{\"name\":\"  \"}",
        "{\"name\":null}",   "{\"status\":1}",      "{\"status\":\"gone\"}",
        "{\"status\":\"\"}", "{\"description\":7}", "{\"status\":true}",
    };
    (void)state;
    bool ok = true;
    for (size_t i = 0; i < sizeof(bad_create) / sizeof(bad_create[0]); i++)
        ok &= check("POST", coll, bad_create[i], 400, "validation_failed");
    for (size_t i = 0; i < sizeof(bad_patch) / sizeof(bad_patch[0]); i++)
        ok &= check("PATCH", item, bad_patch[i], 400, "validation_failed");
    assert_true(ok);
}

/* prefix + n copies of unit + "\"}" (malloc'd). */
static char *repeat_body(const char *prefix, const char *unit, int n)
{
    size_t pl = strlen(prefix), ul = strlen(unit);
    char *b = malloc(pl + ul * (size_t)n + 3), *p = b;
    memcpy(p, prefix, pl);
    p += pl;
    for (int i = 0; i < n; i++) {
        memcpy(p, unit, ul);
        p += ul;
    }
    strcpy(p, "\"}");
    return b;
}

static void expect_created(const char *body)
{
    struct td_resp r;
    td_call(&srv, "POST", coll, t.token, body, &r);
    TD_ASSERT_STATUS(&r, 201);
    td_resp_free(&r);
}

static void test_lengths_in_code_points(void **state)
{
    static const char *const units[] = {"a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x9a\x80",
                                        "\\u00e9"};
    (void)state;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        char *ok = repeat_body("{\"name\":\"", units[i], 200);
        char *bad = repeat_body("{\"name\":\"", units[i], 201);
        expect_created(ok);
        expect("POST", coll, bad, 400, "validation_failed");
        expect("PATCH", item, bad, 400, "validation_failed");
        free(ok);
        free(bad);
    }
    {
        char *ok = repeat_body("{\"name\":\"n\",\"description\":\"", "\xc3\xa9", 10000);
        char *bad = repeat_body("{\"name\":\"n\",\"description\":\"", "\xc3\xa9", 10001);
        char *bad_patch = repeat_body("{\"description\":\"", "\xc3\xa9", 10001);
        expect_created(ok);
        expect("POST", coll, bad, 400, "validation_failed");
        expect("PATCH", item, bad_patch, 400, "validation_failed");
        free(ok);
        free(bad);
        free(bad_patch);
    }
    /* A name padded with spaces is still a name. */
    expect_created("{\"name\":\"  padded  \"}");
}

static void test_invalid_utf8(void **state)
{
    static const char *const bad[] = {
        "{\"name\":\"\xff\xfe\"}",          /* never valid */
        "{\"name\":\"\xc0\xaf\"}",          /* overlong '/' */
        "{\"name\":\"\xc3\"}",              /* truncated sequence */
        "{\"name\":\"a\xe2\x82\"}",         /* truncated 3-byte */
        "{\"name\":\"\xed\xa0\x80\"}",      /* UTF-16 surrogate in UTF-8 */
        "{\"name\":\"\xf4\x90\x80\x80\"}",  /* above U+10FFFF */
        "{\"na\x80me\":\"x\"}",             /* in a key */
        "\xef\xbb\xbf{\"name\":\"x\"\xfe}", /* outside strings */
    };
    (void)state;
    bool ok = true;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ok &= check("POST", coll, bad[i], 400, "invalid_json");
    ok &= check("PATCH", item, "{\"name\":\"\xff\"}", 400, "invalid_json");
    assert_true(ok);
}

static void test_escapes_that_cannot_be_stored(void **state)
{
    /* NUL cannot live in a PostgreSQL text; a lone surrogate is not a character. */
    static const char *const bad[] = {"{\"name\":\"a\\u0000b\"}", "{\"name\":\"\\ud800\"}",
                                      "{\"name\":\"x\",\"description\":\"\\u0000\"}"};
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct td_resp r;
        td_call(&srv, "POST", coll, t.token, bad[i], &r);
        if (r.status != 400)
            fprintf(stderr, "  %s -> %ld %s\n", bad[i], r.status, r.body);
        assert_int_equal(r.status, 400);
        assert_true(td_check_problem(&r, 400, NULL));
        assert_true(strcmp(td_jstr(r.json, "code"), "invalid_json") == 0 ||
                    strcmp(td_jstr(r.json, "code"), "validation_failed") == 0);
        td_resp_free(&r);
        assert_alive();
    }
}

static void test_body_size_limit(void **state)
{
    const size_t mib = 1024 * 1024;
    char *body = malloc(mib + 2);
    struct td_resp r;
    char auth[2200];
    const char *h[] = {auth, NULL};
    (void)state;

    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t.token);
    /* Exactly 1 MiB of valid JSON (an object padded with whitespace) is accepted. */
    memset(body, ' ', mib + 1);
    memcpy(body, "{\"name\":\"big\"}", 14);
    body[mib + 1] = '\0';
    td_http_len(&srv, "POST", coll, h, body, mib, false, &r);
    TD_ASSERT_STATUS(&r, 201);
    td_resp_free(&r);

    /* One byte more is refused, with and without Content-Length. */
    td_http_len(&srv, "POST", coll, h, body, mib + 1, false, &r);
    TD_ASSERT_PROBLEM(&r, 413, "payload_too_large");
    td_resp_free(&r);
    assert_alive();
    td_http_len(&srv, "POST", coll, h, body, mib + 1, true, &r);
    TD_ASSERT_PROBLEM(&r, 413, "payload_too_large");
    td_resp_free(&r);
    assert_alive();

    /* Far over, on a public route: still 413, no crash. */
    {
        char *huge = malloc(8 * mib);
        memset(huge, 'x', 8 * mib);
        td_http_len(&srv, "POST", "/signup", NULL, huge, 8 * mib, false, &r);
        TD_ASSERT_PROBLEM(&r, 413, "payload_too_large");
        td_resp_free(&r);
        free(huge);
    }
    assert_alive();
    free(body);
}

static void test_header_block_limit(void **state)
{
    size_t n = 20 * 1024;
    char *h = malloc(n + 32);
    const char *hs[] = {h, NULL};
    struct td_resp r;
    (void)state;

    strcpy(h, "X-Padding: ");
    memset(h + strlen(h), 'p', n);
    h[n + 11] = '\0';
    td_http(&srv, "GET", "/health", hs, NULL, &r);
    if (r.status != 0 && r.status != 431)
        fprintf(stderr, "  20 KiB header block -> %ld\n", r.status);
    assert_true(r.status == 0 || r.status == 431);
    td_resp_free(&r);
    free(h);
    assert_alive();
}

static void test_other_bodies(void **state)
{
    struct td_resp r;
    const char *h[] = {"X-Tenant-ID: bad-input", NULL};
    (void)state;

    /* Signup. */
    {
        static const char *const bad[] = {
            "{}",
            "{\"organization\":{\"slug\":\"ok-slug\",\"name\":\"x\"}}",
            "{\"organization\":\"ok-slug\",\"user\":{\"email\":\"a@b.test\","
            "\"password\":\"password1\",\"name\":\"A\"}}",
            "{\"organization\":{\"slug\":\"Bad Slug\",\"name\":\"x\"},\"user\":{\"email\":"
            "\"a@b.test\",\"password\":\"password1\",\"name\":\"A\"}}",
            "{\"organization\":{\"slug\":\"ok-slug\",\"name\":\"x\"},\"user\":{\"email\":"
            "\"no-at.test\",\"password\":\"password1\",\"name\":\"A\"}}",
            "{\"organization\":{\"slug\":\"ok-slug\",\"name\":\"x\"},\"user\":{\"email\":"
            "\"a@b@c.test\",\"password\":\"password1\",\"name\":\"A\"}}",
            "{\"organization\":{\"slug\":\"ok-slug\",\"name\":\"x\"},\"user\":{\"email\":"
            "\"a@b.test\",\"password\":\"short12\",\"name\":\"A\"}}",
            "{\"organization\":{\"slug\":\"ok-slug\",\"name\":\"x\"},\"user\":{\"email\":"
            "\"a@b.test\",\"password\":12345678,\"name\":\"A\"}}",
            "{\"organization\":{\"slug\":\"ok-slug\",\"name\":\"  \"},\"user\":{\"email\":"
            "\"a@b.test\",\"password\":\"password1\",\"name\":\"A\"}}",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            td_http(&srv, "POST", "/signup", NULL, bad[i], &r);
            TD_ASSERT_PROBLEM(&r, 400, "validation_failed");
            td_resp_free(&r);
        }
        /* 129-character password, 255-character email. */
        {
            char body[1024], pw[130], local[300];
            memset(pw, 'p', 129);
            pw[129] = '\0';
            snprintf(body, sizeof(body),
                     "{\"organization\":{\"slug\":\"ok-slug\",\"name\":\"x\"},\"user\":{"
                     "\"email\":\"a@b.test\",\"password\":\"%s\",\"name\":\"A\"}}",
                     pw);
            td_http(&srv, "POST", "/signup", NULL, body, &r);
            TD_ASSERT_PROBLEM(&r, 400, "validation_failed");
            td_resp_free(&r);
            memset(local, 'e', 248);
            local[248] = '\0';
            snprintf(body, sizeof(body),
                     "{\"organization\":{\"slug\":\"ok-slug\",\"name\":\"x\"},\"user\":{"
                     "\"email\":\"%s@b.test\",\"password\":\"password1\",\"name\":\"A\"}}",
                     local); /* 248 + 7 = 255 */
            td_http(&srv, "POST", "/signup", NULL, body, &r);
            TD_ASSERT_PROBLEM(&r, 400, "validation_failed");
            td_resp_free(&r);
        }
        td_http(&srv, "POST", "/signup", NULL, "{\"organization\":", &r);
        TD_ASSERT_PROBLEM(&r, 400, "invalid_json");
        td_resp_free(&r);
        /* None of these created the tenant. */
        td_admin(&srv, "GET", "/admin/tenants/ok-slug", NULL, &r);
        assert_int_equal(r.status, 404);
        td_resp_free(&r);
    }

    /* Login. */
    td_http(&srv, "POST", "/auth/login", h, "{\"email\":", &r);
    TD_ASSERT_PROBLEM(&r, 400, "invalid_json");
    td_resp_free(&r);
    td_http(&srv, "POST", "/auth/login", h, "[]", &r);
    TD_ASSERT_PROBLEM(&r, 400, "validation_failed");
    td_resp_free(&r);
    td_http(&srv, "POST", "/auth/login", h, "{\"email\":1,\"password\":2}", &r);
    TD_ASSERT_PROBLEM(&r, 400, "validation_failed"); /* a value of the wrong type */
    td_resp_free(&r);

    /* Admin. */
    td_admin(&srv, "POST", "/admin/tenants", "{\"slug\":", &r);
    TD_ASSERT_PROBLEM(&r, 400, "invalid_json");
    td_resp_free(&r);
    td_admin(&srv, "POST", "/admin/tenants", "[\"slug\"]", &r);
    TD_ASSERT_PROBLEM(&r, 400, "validation_failed");
    td_resp_free(&r);
    td_admin(&srv, "PATCH", "/admin/tenants/bad-input", "{\"status\":\"deleted\"}", &r);
    TD_ASSERT_PROBLEM(&r, 400, "validation_failed");
    td_resp_free(&r);
    td_admin(&srv, "PATCH", "/admin/tenants/bad-input", "{\"plan\":7}", &r);
    TD_ASSERT_PROBLEM(&r, 400, "validation_failed");
    td_resp_free(&r);
    td_admin(&srv, "PATCH", "/admin/tenants/bad-input",
             "{\"subscription_expires_at\":\"next tuesday\"}", &r);
    TD_ASSERT_PROBLEM(&r, 400, "validation_failed");
    td_resp_free(&r);
    td_admin(&srv, "DELETE", "/admin/tenants/bad-input", NULL, &r);
    TD_ASSERT_PROBLEM(&r, 400, "bad_request");
    td_resp_free(&r);
    td_admin(&srv, "DELETE", "/admin/tenants/bad-input?confirm=wrong", NULL, &r);
    TD_ASSERT_PROBLEM(&r, 400, "bad_request");
    td_resp_free(&r);

    /* Users. */
    expect("POST", "/t/bad-input/users",
           "{\"email\":\"x@y.test\",\"password\":\"password1\","
           "\"name\":\"X\",\"role\":\"god\"}",
           400, "validation_failed");
    expect("POST", "/t/bad-input/users",
           "{\"email\":\"x@y.test\",\"password\":\"pw\","
           "\"name\":\"X\",\"role\":\"member\"}",
           400, "validation_failed");
    expect("POST", "/t/bad-input/users",
           "{\"email\":\"owner@bad.test\",\"password\":"
           "\"password1\",\"name\":\"X\",\"role\":\"member\"}",
           409, "conflict");
    expect("POST", "/t/bad-input/users",
           "{\"email\":\"OWNER@Bad.Test\",\"password\":"
           "\"password1\",\"name\":\"X\",\"role\":\"member\"}",
           409, "conflict");
    assert_alive();
}

static void test_bad_ids_and_queries(void **state)
{
    static const char *const paths[] = {
        "/projects/%27%3B%20DROP%20TABLE%20projects%3B--",
        "/projects/..%2F..%2Fadmin",
        "/projects/%00",
        "/projects/00000000-0000-0000-0000-0000000000000000",
        "/users/not-a-uuid",
        "/users/%25",
    };
    static const char *const queries[] = {
        "?limit=1e2",     "?limit=%00",          "?limit=99999999999999999999",
        "?cursor=%FF%FE", "?cursor=' OR 1=1 --",
    };
    char path[512];
    bool ok = true;
    (void)state;

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct td_resp r;
        snprintf(path, sizeof(path), "/t/bad-input%s", paths[i]);
        td_call(&srv, "GET", path, t.token, NULL, &r);
        ok &= td_check_problem(&r, 404, "not_found");
        td_resp_free(&r);
        assert_alive();
    }
    for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
        struct td_resp r;
        char q[128];
        size_t k = 0;
        /* Encode spaces and quotes a client library would encode. */
        for (const char *p = queries[i]; *p && k + 4 < sizeof(q); p++) {
            if (*p == ' ' || *p == '\'')
                k += (size_t)snprintf(q + k, sizeof(q) - k, "%%%02X", (unsigned char)*p);
            else
                q[k++] = *p;
        }
        q[k] = '\0';
        snprintf(path, sizeof(path), "%s%s", coll, q);
        td_call(&srv, "GET", path, t.token, NULL, &r);
        ok &= td_check_problem(&r, 400, "bad_request");
        td_resp_free(&r);
        assert_alive();
    }
    assert_true(ok);
}

static void test_target_untouched(void **state)
{
    struct td_resp r;
    (void)state;
    /* After every refused PATCH above, the target project is as created. */
    td_call(&srv, "GET", item, t.token, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "name"), "target");
    assert_string_equal(td_jstr(r.json, "status"), "active");
    assert_true(json_is_null(json_object_get(r.json, "description")));
    td_resp_free(&r);
}

/* Deterministic PRNG (xorshift32) so a failure reproduces. */
static uint32_t rnd_state = 0x2545f491u;

static uint32_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 17;
    rnd_state ^= rnd_state << 5;
    return rnd_state;
}

static void test_mutated_bodies_never_5xx(void **state)
{
    static const char *const seeds[][2] = {
        {"/t/bad-input/projects", "{\"name\":\"seed\",\"description\":\"d\\u00e9\"}"},
        {"/t/bad-input/users", "{\"email\":\"m@x.test\",\"password\":\"password1\","
                               "\"name\":\"M\",\"role\":\"member\"}"},
        {"/t/bad-input/auth/login", "{\"email\":\"owner@bad.test\",\"password\":\"x\"}"},
        {"/signup", "{\"organization\":{\"slug\":\"fz-a\",\"name\":\"F\"},\"user\":{"
                    "\"email\":\"f@x.test\",\"password\":\"password1\",\"name\":\"F\"}}"},
        {"/admin/tenants", "{\"slug\":\"fz-b\",\"name\":\"F\",\"plan\":\"free\"}"},
    };
    char auth[2200], buf[512];
    int bad = 0;
    (void)state;

    for (int n = 0; n < 400; n++) {
        const char *path = seeds[n % 5][0], *seed = seeds[n % 5][1];
        size_t len = strlen(seed);
        const char *h[] = {auth, NULL};
        struct td_resp r;

        memcpy(buf, seed, len);
        /* 1-3 byte flips, sometimes a truncation. */
        for (uint32_t k = rnd() % 3 + 1; k > 0; k--)
            buf[rnd() % len] = (char)(rnd() & 0xff);
        if (rnd() % 4 == 0)
            len = rnd() % len;
        if (strcmp(path, "/admin/tenants") == 0)
            snprintf(auth, sizeof(auth), "Authorization: Bearer %s", TD_TEST_ADMIN_TOKEN);
        else
            snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t.token);
        td_http_len(&srv, "POST", path, h, buf, len, false, &r);
        if (r.status >= 500 || r.status == 0 ||
            (r.status >= 400 && !td_check_problem(&r, r.status, NULL))) {
            fprintf(stderr, "  case %d: POST %s %.*s -> %ld %.200s\n", n, path, (int)len, buf,
                    r.status, r.body);
            bad++;
        }
        td_resp_free(&r);
    }
    assert_alive();
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_not_an_object),
        cmocka_unit_test(test_wrong_types_and_missing),
        cmocka_unit_test(test_lengths_in_code_points),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_escapes_that_cannot_be_stored),
        cmocka_unit_test(test_body_size_limit),
        cmocka_unit_test(test_header_block_limit),
        cmocka_unit_test(test_other_bodies),
        cmocka_unit_test(test_bad_ids_and_queries),
        cmocka_unit_test(test_target_untouched),
        cmocka_unit_test(test_mutated_bodies_never_5xx),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
