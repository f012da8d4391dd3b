/*
 * test_web.c - what a browser front end on another origin relies on (SPEC §3): one compact
 * JSON style with one timestamp format in the bodies of every route family, CORS for listed
 * origins only (preflight before any tenant or token check), Cache-Control: no-store on
 * authenticated answers and on tokens, login throttling, and the 16 KiB header limit.
 */
#include "harness.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define APP_ORIGIN "https://app.example.test"
#define DEV_ORIGIN "http://localhost:3000"

static struct td_server srv;
static struct td_principal owner; /* tenant web-pool (signup, plan free) */
static regex_t ts_re;

static int setup(void **state)
{
    /* the test client plays a reverse proxy: its X-Forwarded-For names the client */
    static const char *const env[] = {"TENANTD_CORS_ORIGINS=" APP_ORIGIN "," DEV_ORIGIN,
                                      "TENANTD_TRUSTED_PROXIES=127.0.0.1", NULL};
    (void)state;
    if (regcomp(&ts_re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$",
                REG_EXTENDED | REG_NOSUB) != 0)
        return -1;
    if (td_server_start(&srv, env) != 0)
        return -1;
    return td_signup(&srv, "web-pool", "owner@web.test", "owner-password-1", &owner) == 201 ? 0
                                                                                            : -1;
}

static int teardown(void **state)
{
    (void)state;
    regfree(&ts_re);
    return td_server_stop(&srv);
}

/* ---- one JSON style -------------------------------------------------------------------- */

/* Every member named *_at, at any depth, is null or the one timestamp format; returns how
 * many timestamps were seen. */
static int check_times(const struct td_resp *r, json_t *v)
{
    const char *key;
    json_t *m;
    size_t i;
    int seen = 0;
    if (json_is_array(v))
        json_array_foreach(v, i, m) seen += check_times(r, m);
    if (!json_is_object(v))
        return seen;
    json_object_foreach(v, key, m)
    {
        size_t l = strlen(key);
        if (l > 3 && !strcmp(key + l - 3, "_at") && !json_is_null(m)) {
            if (!json_is_string(m) || regexec(&ts_re, json_string_value(m), 0, NULL, 0) != 0)
                fail_msg("%s: %s is not YYYY-MM-DDTHH:MM:SS.ffffffZ in %s", r->what, key, r->body);
            seen++;
        }
        seen += check_times(r, m);
    }
    return seen;
}

/* The body is JSON, compact (no space around a member's colon), and its timestamps are in
 * the one format; at least min_times of them. Frees r. */
static void check_body(struct td_resp *r, long status, int min_times)
{
    TD_ASSERT_STATUS(r, status);
    if (!r->json)
        fail_msg("%s: not JSON: %s", r->what, r->body);
    if (strstr(r->body, " : ") || strstr(r->body, "\": ") || strstr(r->body, "\" :"))
        fail_msg("%s: not compact: %s", r->what, r->body);
    int n = check_times(r, r->json);
    if (n < min_times)
        fail_msg("%s: %d timestamps, expected at least %d: %s", r->what, n, min_times, r->body);
    td_resp_free(r);
}

static void call_check(const char *method, const char *path, const char *token, const char *body,
                       long status, int min_times)
{
    struct td_resp r;
    td_call(&srv, method, path, token, body, &r);
    check_body(&r, status, min_times);
}

static void admin_check(const char *method, const char *path, const char *body, long status,
                        int min_times)
{
    call_check(method, path, TD_TEST_ADMIN_TOKEN, body, status, min_times);
}

static void test_one_json_style(void **state)
{
    struct td_resp r;
    char path[256], id[64], pid[64];
    (void)state;

    /* signup: tenant and user created_at; login: expires_at and the user */
    td_http(&srv, "POST", "/signup", NULL,
            "{\"organization\":{\"slug\":\"web-style\",\"name\":\"Style\"},\"user\":{\"email\":"
            "\"s@web.test\",\"password\":\"style-password\",\"name\":\"S\"}}",
            &r);
    check_body(&r, 201, 2);
    call_check("POST", "/t/web-pool/auth/login", NULL,
               "{\"email\":\"owner@web.test\",\"password\":\"owner-password-1\"}", 200, 2);
    call_check("GET", "/t/web-pool/me", owner.token, NULL, 200, 1);

    /* users, projects and the audit log with old and new values */
    assert_int_equal(td_add_user(&srv, "web-pool", owner.token, "m@web.test", "member-password",
                                 "member", id, sizeof(id)),
                     201);
    call_check("GET", "/t/web-pool/users", owner.token, NULL, 200, 2);
    snprintf(path, sizeof(path), "/t/web-pool/users/%s", id);
    call_check("GET", path, owner.token, NULL, 200, 1);
    call_check("PATCH", path, owner.token, "{\"name\":\"Renamed\"}", 200, 1);
    td_call(&srv, "POST", "/t/web-pool/projects", owner.token, "{\"name\":\"P\"}", &r);
    snprintf(pid, sizeof(pid), "%s", td_jstr(r.json, "id") ? td_jstr(r.json, "id") : "");
    check_body(&r, 201, 2);
    snprintf(path, sizeof(path), "/t/web-pool/projects/%s", pid);
    call_check("PATCH", path, owner.token, "{\"status\":\"archived\"}", 200, 2);
    call_check("GET", path, owner.token, NULL, 200, 2);
    call_check("GET", "/t/web-pool/projects", owner.token, NULL, 200, 2);
    /* audit: own created_at, and the values' created_at (and updated_at) old and new */
    call_check("GET", "/t/web-pool/audit-logs?limit=100", owner.token, NULL, 200, 12);

    /* the operator's routes */
    admin_check("POST", "/admin/tenants",
                "{\"slug\":\"web-schema\",\"name\":\"Schema\",\"isolation\":\"schema\","
                "\"owner\":{\"email\":\"o@web.test\",\"password\":\"owner-password\",\"name\":"
                "\"O\"}}",
                201, 2);
    admin_check("PATCH", "/admin/tenants/web-schema",
                "{\"subscription_expires_at\":\"2031-02-03T04:05:06Z\"}", 200, 2);
    admin_check("GET", "/admin/tenants", NULL, 200, 3);
    admin_check("GET", "/admin/tenants/web-schema", NULL, 200, 2);
    admin_check("GET", "/admin/migrations", NULL, 200, 0);
    admin_check("GET", "/admin/analytics", NULL, 200, 0);
    call_check("GET", "/t/web-schema/users", NULL, NULL, 401, 0); /* problem+json */
    call_check("GET", "/health", NULL, NULL, 200, 0);

    /* a schema tenant's audit values too */
    char tok[2048];
    assert_int_equal(td_login(&srv, "web-schema", "o@web.test", "owner-password", tok, sizeof(tok)),
                     200);
    call_check("POST", "/t/web-schema/users", tok,
               "{\"email\":\"x@web.test\",\"password\":\"x-password\",\"name\":\"X\",\"role\":"
               "\"member\"}",
               201, 1);
    call_check("GET", "/t/web-schema/audit-logs", tok, NULL, 200, 4);
}

/* ---- CORS ------------------------------------------------------------------------------ */

/* A response header's value, "" when absent. */
static const char *hdr(const struct td_resp *r, const char *name)
{
    static char v[512];
    return td_resp_header(r, name, v, sizeof(v)) ? v : "";
}

static void assert_no_cors(const struct td_resp *r)
{
    if (strcasestr(r->headers, "access-control-"))
        fail_msg("%s: CORS headers for an unlisted origin:\n%s", r->what, r->headers);
}

static void test_cors_preflight_before_tenant_and_token(void **state)
{
    struct td_resp r;
    (void)state;
    /* a tenant route, no token, as a browser sends it */
    const char *pre[] = {"Origin: " APP_ORIGIN, "Access-Control-Request-Method: POST",
                         "Access-Control-Request-Headers: authorization, content-type", NULL};
    const char *paths[] = {"/t/web-pool/projects", "/projects", "/t/no-such-tenant/users/1",
                           "/admin/tenants", "/auth/login"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        td_http(&srv, "OPTIONS", paths[i], pre, NULL, &r);
        TD_ASSERT_STATUS(&r, 204);
        assert_string_equal(hdr(&r, "Access-Control-Allow-Origin"), APP_ORIGIN);
        assert_non_null(strstr(hdr(&r, "Access-Control-Allow-Methods"), "POST"));
        assert_non_null(strstr(hdr(&r, "Access-Control-Allow-Methods"), "PATCH"));
        const char *allow = hdr(&r, "Access-Control-Allow-Headers");
        assert_non_null(allow);
        const char *need[] = {"Authorization", "Content-Type", "X-Tenant-ID", "X-Request-Id"};
        for (size_t k = 0; k < 4; k++)
            if (!strcasestr(allow, need[k]))
                fail_msg("Access-Control-Allow-Headers lacks %s: %s", need[k], allow);
        assert_true(atoi(hdr(&r, "Access-Control-Max-Age")) > 0);
        assert_non_null(strstr(hdr(&r, "Vary"), "Origin"));
        td_resp_free(&r);
    }

    /* an unlisted origin (or a look-alike) gets no CORS header, and no 204 */
    const char *evil[] = {"Origin: https://evil.test", "Access-Control-Request-Method: POST", NULL};
    const char *alike[] = {"Origin: " APP_ORIGIN ".evil.test",
                           "Access-Control-Request-Method: POST", NULL};
    td_http(&srv, "OPTIONS", "/t/web-pool/projects", evil, NULL, &r);
    assert_true(r.status != 204);
    assert_no_cors(&r);
    td_resp_free(&r);
    td_http(&srv, "OPTIONS", "/t/web-pool/projects", alike, NULL, &r);
    assert_true(r.status != 204);
    assert_no_cors(&r);
    td_resp_free(&r);
}

static void test_cors_on_answers(void **state)
{
    struct td_resp r;
    char auth[2200];
    (void)state;
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", owner.token);
    const char *listed[] = {"Origin: " DEV_ORIGIN, auth, NULL};
    td_http(&srv, "GET", "/t/web-pool/projects", listed, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(hdr(&r, "Access-Control-Allow-Origin"), DEV_ORIGIN);
    assert_non_null(strstr(hdr(&r, "Vary"), "Origin"));
    const char *expose = hdr(&r, "Access-Control-Expose-Headers");
    assert_non_null(expose);
    assert_non_null(strcasestr(expose, "X-Request-Id"));
    assert_non_null(strcasestr(expose, "Retry-After"));
    td_resp_free(&r);

    /* an error is readable by the listed origin too */
    const char *no_token[] = {"Origin: " APP_ORIGIN, NULL};
    td_http(&srv, "GET", "/t/web-pool/projects", no_token, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
    assert_string_equal(hdr(&r, "Access-Control-Allow-Origin"), APP_ORIGIN);
    td_resp_free(&r);

    const char *unlisted[] = {"Origin: https://evil.test", auth, NULL};
    td_http(&srv, "GET", "/t/web-pool/projects", unlisted, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_no_cors(&r);
    td_resp_free(&r);
}

/* ---- no-store -------------------------------------------------------------------------- */

static void assert_no_store(const struct td_resp *r)
{
    const char *cc = hdr(r, "Cache-Control");
    if (!cc || !strstr(cc, "no-store"))
        fail_msg("%s: no Cache-Control: no-store:\n%s", r->what, r->headers);
}

static void test_no_store(void **state)
{
    struct td_resp r;
    (void)state;
    /* answers that carry a token */
    td_http(&srv, "POST", "/t/web-pool/auth/login", NULL,
            "{\"email\":\"owner@web.test\",\"password\":\"owner-password-1\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_no_store(&r);
    td_resp_free(&r);
    td_http(&srv, "POST", "/signup", NULL,
            "{\"organization\":{\"slug\":\"web-store\",\"name\":\"St\"},\"user\":{\"email\":"
            "\"st@web.test\",\"password\":\"store-password\",\"name\":\"S\"}}",
            &r);
    TD_ASSERT_STATUS(&r, 201);
    assert_no_store(&r);
    td_resp_free(&r);
    /* answers to authenticated requests: tenant data, operator data, and refusals */
    const char *paths[] = {"/t/web-pool/me", "/t/web-pool/users", "/t/web-pool/projects"};
    for (size_t i = 0; i < 3; i++) {
        td_call(&srv, "GET", paths[i], owner.token, NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        assert_no_store(&r);
        td_resp_free(&r);
    }
    td_admin(&srv, "GET", "/admin/tenants", NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_no_store(&r);
    td_resp_free(&r);
    td_call(&srv, "GET", "/admin/tenants", owner.token, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
    assert_no_store(&r);
    td_resp_free(&r);
}

/* ---- login throttling ------------------------------------------------------------------ */

static long login(const char *slug, const char *email, const char *password, struct td_resp *r)
{
    char path[128], body[256];
    snprintf(path, sizeof(path), "/t/%s/auth/login", slug);
    snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"%s\"}", email, password);
    return td_http(&srv, "POST", path, NULL, body, r);
}

/* n wrong passwords for email: each 401 with the same body; returns that body (malloc'd) */
static char *fail_logins(const char *slug, const char *email, int n)
{
    struct td_resp r;
    char *first = NULL;
    for (int i = 0; i < n; i++) {
        login(slug, email, "wrong-password", &r);
        TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
        json_object_del(r.json, "instance");
        char *b = json_dumps(r.json, JSON_SORT_KEYS);
        if (!first)
            first = b;
        else {
            assert_string_equal(b, first);
            free(b);
        }
        td_resp_free(&r);
    }
    return first;
}

static char *throttled(const char *slug, const char *email, const char *password)
{
    struct td_resp r;
    login(slug, email, password, &r);
    TD_ASSERT_PROBLEM(&r, 429, "rate_limited");
    long ra = atol(r.retry_after);
    if (ra < 1 || ra > 300)
        fail_msg("Retry-After %s is not within the 5-minute window", r.retry_after);
    char *b = json_dumps(r.json, JSON_SORT_KEYS);
    td_resp_free(&r);
    return b;
}

static void test_login_throttling(void **state)
{
    struct td_resp r;
    struct td_principal t;
    (void)state;
    assert_int_equal(td_signup(&srv, "web-throttle", "ada@thr.test", "ada-password", &t), 201);
    assert_int_equal(td_add_user(&srv, "web-throttle", t.token, "bob@thr.test", "bob-password",
                                 "member", NULL, 0),
                     201);

    /* 10 wrong passwords are 401; the 11th attempt, and then the right password, are 429 */
    char *known401 = fail_logins("web-throttle", "ada@thr.test", 10);
    char *known429 = throttled("web-throttle", "ada@thr.test", "wrong-password");
    free(throttled("web-throttle", "ADA@thr.test", "ada-password"));

    /* another email of the same tenant still logs in; the same email elsewhere is apart */
    assert_int_equal(login("web-throttle", "bob@thr.test", "bob-password", &r), 200);
    td_resp_free(&r);
    assert_int_equal(login("web-pool", "ada@thr.test", "wrong-password", &r), 401);
    td_resp_free(&r);

    /* an email that does not exist is answered exactly alike */
    char *unknown401 = fail_logins("web-throttle", "nobody@thr.test", 10);
    char *unknown429 = throttled("web-throttle", "nobody@thr.test", "wrong-password");
    assert_string_equal(unknown401, known401);
    assert_string_equal(unknown429, known429);
    free(known401);
    free(known429);
    free(unknown401);
    free(unknown429);
}

/* POST /t/{slug}/auth/login as if forwarded by a proxy for client address addr. */
static long login_from(const char *addr, const char *slug, const char *email, const char *password,
                       struct td_resp *r)
{
    char path[128], body[256], xff[96];
    const char *hdrs[] = {xff, NULL};
    snprintf(path, sizeof(path), "/t/%s/auth/login", slug);
    snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"%s\"}", email, password);
    /* what the client claimed comes first; the trusted proxy appended what it saw */
    snprintf(xff, sizeof(xff), "X-Forwarded-For: 192.0.2.1, %s", addr);
    return td_http(&srv, "POST", path, hdrs, body, r);
}

/* 100 failures from one client address, spread over emails of two tenants, stop that
 * address (a correct password included) and no other; behind a trusted proxy the address
 * is the one the proxy saw, not the proxy's. */
static void test_login_throttling_per_address(void **state)
{
    struct td_resp r;
    char email[64];
    (void)state;
    for (int i = 0; i < 100; i++) {
        snprintf(email, sizeof(email), "guess%d@thr.test", i);
        login_from("203.0.113.5", i % 2 ? "web-throttle" : "web-pool", email, "wrong-password", &r);
        TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
        td_resp_free(&r);
    }
    login_from("203.0.113.5", "web-throttle", "bob@thr.test", "bob-password", &r);
    TD_ASSERT_PROBLEM(&r, 429, "rate_limited");
    assert_true(atol(r.retry_after) >= 1 && atol(r.retry_after) <= 300);
    td_resp_free(&r);
    login_from("203.0.113.5", "web-pool", "owner@web.test", "owner-password-1", &r);
    TD_ASSERT_PROBLEM(&r, 429, "rate_limited");
    td_resp_free(&r);
    /* another client behind the same proxy, and the proxy's own address, go on */
    assert_int_equal(login_from("203.0.113.6", "web-throttle", "bob@thr.test", "bob-password", &r),
                     200);
    td_resp_free(&r);
    assert_int_equal(login("web-throttle", "bob@thr.test", "bob-password", &r), 200);
    td_resp_free(&r);
}

/* An email PostgreSQL's lower() folds to a throttled one (here with the Kelvin sign,
 * U+212A, for k) counts as that email: no fresh guesses by spelling it otherwise. */
static void test_login_throttling_case_variants(void **state)
{
    struct td_resp r;
    struct td_principal t;
    (void)state;
    assert_int_equal(td_signup(&srv, "web-kelvin", "kim@thr.test", "kim-password", &t), 201);
    for (int i = 0; i < 10; i++) {
        login_from("203.0.113.9", "web-kelvin", "kim@thr.test", "wrong-password", &r);
        TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
        td_resp_free(&r);
    }
    login_from("203.0.113.10", "web-kelvin", "\\u212aim@thr.test", "kim-password", &r);
    TD_ASSERT_PROBLEM(&r, 429, "rate_limited");
    td_resp_free(&r);
    login_from("203.0.113.11", "web-kelvin", "\\u212aim@thr.test", "wrong-password", &r);
    TD_ASSERT_PROBLEM(&r, 429, "rate_limited");
    td_resp_free(&r);
}

/* ---- header limit ---------------------------------------------------------------------- */

/* GET /health with one header padding the block to about total bytes. */
static long padded(size_t total, struct td_resp *r)
{
    size_t n = total - 100; /* request line, Host, Accept and the field's own name */
    char *h = malloc(n + 16);
    memcpy(h, "X-Pad: ", 7);
    memset(h + 7, 'a', n);
    h[7 + n] = '\0';
    const char *hdrs[] = {h, NULL};
    long st = td_http(&srv, "GET", "/health", hdrs, NULL, r);
    free(h);
    return st;
}

static void test_header_limit(void **state)
{
    struct td_resp r;
    (void)state;
    padded(16 * 1024 - 64, &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    /* above 16 KiB: 431 (or a close), the same below MHD's own memory limit and above it */
    long below = padded(17 * 1024, &r);
    if (below == 431)
        TD_ASSERT_PROBLEM(&r, 431, "headers_too_large");
    td_resp_free(&r);
    assert_true(below == 431 || below == 0);
    size_t sizes[] = {19 * 1024, 24 * 1024, 64 * 1024};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(padded(sizes[i], &r), below);
        td_resp_free(&r);
    }
    /* the server is fine afterwards */
    td_http(&srv, "GET", "/health", NULL, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_json_style),
        cmocka_unit_test(test_cors_preflight_before_tenant_and_token),
        cmocka_unit_test(test_cors_on_answers),
        cmocka_unit_test(test_no_store),
        cmocka_unit_test(test_login_throttling),
        cmocka_unit_test(test_login_throttling_per_address),
        cmocka_unit_test(test_login_throttling_case_variants),
        cmocka_unit_test(test_header_limit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
