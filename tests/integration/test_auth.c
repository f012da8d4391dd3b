/*
 * test_auth.c - signup, login through every tenant source, token validation (HS256 only,
 * expiry, signature, deleted users) and the tenant identification rules of SPEC §4,
 * including subdomain routing (the server runs with TENANTD_BASE_DOMAIN=example.test).
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct td_server srv;
static struct td_principal acme;  /* signup: acme-auth */
static struct td_principal other; /* signup: other-auth */

static const char *const ACME_PW = "correct horse 1";

static int setup(void **state)
{
    const char *const env[] = {"TENANTD_BASE_DOMAIN=example.test", NULL};
    (void)state;
    if (td_server_start(&srv, env) != 0)
        return -1;
    if (td_signup(&srv, "other-auth", "boss@other.test", "other-password", &other) != 201)
        return -1;
    return 0;
}

TD_SUITE_TEARDOWN(srv)

static long login_with(const char *path, const char *const *headers, const char *email,
                       const char *password, struct td_resp *r)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"%s\"}", email, password);
    return td_http(&srv, "POST", path, headers, body, r);
}

/* Request with a bearer token and one extra header (may be NULL). */
static long call_h(const char *method, const char *path, const char *token, const char *extra,
                   struct td_resp *r)
{
    char auth[2200];
    const char *h[3] = {NULL, NULL, NULL};
    int k = 0;
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        h[k++] = auth;
    }
    if (extra)
        h[k++] = extra;
    return td_http(&srv, method, path, h, NULL, r);
}

static void test_signup(void **state)
{
    struct td_resp r;
    const char *body = "{\"organization\":{\"slug\":\"acme-auth\",\"name\":\"Acme Inc\"},"
                       "\"user\":{\"email\":\"Alice@Acme.test\",\"password\":\"correct horse 1\","
                       "\"name\":\"Alice\"}}";
    json_t *t, *u, *claims;
    (void)state;

    td_http(&srv, "POST", "/signup", NULL, body, &r);
    TD_ASSERT_STATUS(&r, 201);
    t = json_object_get(r.json, "tenant");
    u = json_object_get(r.json, "user");
    assert_true(td_is_uuid(td_jstr(t, "id")));
    assert_string_equal(td_jstr(t, "slug"), "acme-auth");
    assert_string_equal(td_jstr(t, "name"), "Acme Inc");
    assert_string_equal(td_jstr(t, "plan"), "free");
    assert_string_equal(td_jstr(t, "isolation"), "pool");
    assert_string_equal(td_jstr(t, "status"), "active");
    assert_true(td_is_uuid(td_jstr(u, "id")));
    assert_string_equal(td_jstr(u, "name"), "Alice");
    assert_string_equal(td_jstr(u, "role"), "owner");
    assert_non_null(td_jstr(u, "email"));
    assert_true(td_parse_time(td_jstr(u, "created_at")) > 0);
    assert_null(json_object_get(u, "password"));
    assert_null(json_object_get(u, "password_hash"));
    assert_null(strstr(r.body, "correct horse"));
    assert_non_null(td_jstr(r.json, "token"));

    snprintf(acme.slug, sizeof(acme.slug), "acme-auth");
    snprintf(acme.tenant_id, sizeof(acme.tenant_id), "%s", td_jstr(t, "id"));
    snprintf(acme.user_id, sizeof(acme.user_id), "%s", td_jstr(u, "id"));
    snprintf(acme.email, sizeof(acme.email), "Alice@Acme.test");
    snprintf(acme.token, sizeof(acme.token), "%s", td_jstr(r.json, "token"));

    /* Claims: sub, tid, role, iat, exp with the default TTL of 3600 s. */
    claims = td_jwt_payload(acme.token);
    assert_non_null(claims);
    assert_string_equal(td_jstr(claims, "sub"), acme.user_id);
    assert_string_equal(td_jstr(claims, "tid"), acme.tenant_id);
    assert_string_equal(td_jstr(claims, "role"), "owner");
    assert_true(json_is_integer(json_object_get(claims, "iat")));
    assert_true(json_is_integer(json_object_get(claims, "exp")));
    assert_int_equal(json_integer_value(json_object_get(claims, "exp")) -
                         json_integer_value(json_object_get(claims, "iat")),
                     3600);
    json_decref(claims);
    td_resp_free(&r);

    /* The signup token works right away. */
    td_call(&srv, "GET", "/t/acme-auth/me", acme.token, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "id"), acme.user_id);
    td_resp_free(&r);

    /* Same slug again: 409. */
    td_http(&srv, "POST", "/signup", NULL, body, &r);
    TD_ASSERT_PROBLEM(&r, 409, "conflict");
    td_resp_free(&r);
}

static void check_login_ok(struct td_resp *r)
{
    long long exp;
    json_t *claims;

    TD_ASSERT_STATUS(r, 200);
    assert_non_null(td_jstr(r->json, "token"));
    exp = td_parse_time(td_jstr(r->json, "expires_at"));
    assert_true(exp > (long long)time(NULL) + 3500 && exp < (long long)time(NULL) + 3700);
    assert_string_equal(td_jstr(json_object_get(r->json, "user"), "id"), acme.user_id);
    assert_null(json_object_get(json_object_get(r->json, "user"), "password_hash"));
    claims = td_jwt_payload(td_jstr(r->json, "token"));
    assert_string_equal(td_jstr(claims, "tid"), acme.tenant_id);
    json_decref(claims);
}

static void test_login_every_source(void **state)
{
    struct td_resp r;
    char h[128];
    const char *hs[] = {h, NULL};
    (void)state;

    login_with("/t/acme-auth/auth/login", NULL, acme.email, ACME_PW, &r);
    check_login_ok(&r);
    td_resp_free(&r);

    snprintf(h, sizeof(h), "X-Tenant-ID: acme-auth");
    login_with("/auth/login", hs, acme.email, ACME_PW, &r);
    check_login_ok(&r);
    td_resp_free(&r);

    snprintf(h, sizeof(h), "X-Tenant-ID: %s", acme.tenant_id);
    login_with("/auth/login", hs, acme.email, ACME_PW, &r);
    check_login_ok(&r);
    td_resp_free(&r);

    snprintf(h, sizeof(h), "Host: acme-auth.example.test:8080");
    login_with("/auth/login", hs, acme.email, ACME_PW, &r);
    check_login_ok(&r);
    td_resp_free(&r);

    snprintf(h, sizeof(h), "Host: acme-auth.example.test");
    login_with("/auth/login", hs, acme.email, ACME_PW, &r);
    check_login_ok(&r);
    td_resp_free(&r);

    /* Email is unique ignoring case, so it matches ignoring case. */
    login_with("/t/acme-auth/auth/login", NULL, "alice@acme.test", ACME_PW, &r);
    check_login_ok(&r);
    td_resp_free(&r);
}

static void test_login_wrong_credentials_same_body(void **state)
{
    struct td_resp a, b, c;
    (void)state;

    login_with("/t/acme-auth/auth/login", NULL, acme.email, "wrong password", &a);
    TD_ASSERT_PROBLEM(&a, 401, "unauthorized");
    login_with("/t/acme-auth/auth/login", NULL, "nobody@acme.test", ACME_PW, &b);
    TD_ASSERT_PROBLEM(&b, 401, "unauthorized");
    /* A user of another tenant is unknown here. */
    login_with("/t/acme-auth/auth/login", NULL, "boss@other.test", "other-password", &c);
    TD_ASSERT_PROBLEM(&c, 401, "unauthorized");
    if (!json_equal(a.json, b.json) || !json_equal(a.json, c.json))
        fprintf(stderr, "  bodies differ:\n  %s\n  %s\n  %s\n", a.body, b.body, c.body);
    assert_true(json_equal(a.json, b.json));
    assert_true(json_equal(a.json, c.json));
    td_resp_free(&a);
    td_resp_free(&b);
    td_resp_free(&c);

    /* an empty password is malformed input, refused before any lookup (SPEC §3) */
    login_with("/t/acme-auth/auth/login", NULL, acme.email, "", &a);
    TD_ASSERT_PROBLEM(&a, 400, "validation_failed");
    td_resp_free(&a);
}

static void test_login_tenant_rules(void **state)
{
    struct td_resp r;
    char h[128];
    const char *hs[] = {h, NULL};
    (void)state;

    login_with("/auth/login", NULL, acme.email, ACME_PW, &r);
    TD_ASSERT_PROBLEM(&r, 400, "tenant_required");
    td_resp_free(&r);

    login_with("/t/no-such-tenant/auth/login", NULL, acme.email, ACME_PW, &r);
    TD_ASSERT_PROBLEM(&r, 404, "tenant_not_found");
    td_resp_free(&r);

    snprintf(h, sizeof(h), "X-Tenant-ID: other-auth");
    login_with("/t/acme-auth/auth/login", hs, acme.email, ACME_PW, &r);
    TD_ASSERT_PROBLEM(&r, 403, "tenant_mismatch");
    td_resp_free(&r);

    snprintf(h, sizeof(h), "Host: other-auth.example.test");
    login_with("/t/acme-auth/auth/login", hs, acme.email, ACME_PW, &r);
    TD_ASSERT_PROBLEM(&r, 403, "tenant_mismatch");
    td_resp_free(&r);
}

static void test_token_usable_on_tenant_routes(void **state)
{
    struct td_resp r;
    char h[128];
    (void)state;

    td_call(&srv, "GET", "/t/acme-auth/projects", acme.token, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_true(json_is_array(json_object_get(r.json, "data")));
    td_resp_free(&r);

    /* The token's tid alone identifies the tenant. */
    td_call(&srv, "GET", "/projects", acme.token, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    td_call(&srv, "GET", "/me", acme.token, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "id"), acme.user_id);
    assert_string_equal(td_jstr(r.json, "role"), "owner");
    assert_null(json_object_get(r.json, "password_hash"));
    td_resp_free(&r);

    /* Agreeing sources. */
    snprintf(h, sizeof(h), "X-Tenant-ID: %s", acme.tenant_id);
    call_h("GET", "/t/acme-auth/projects", acme.token, h, &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    call_h("GET", "/projects", acme.token, "X-Tenant-ID: acme-auth", &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    call_h("GET", "/projects", acme.token, "Host: acme-auth.example.test:8080", &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);

    /* Writes work with the token too. */
    td_call(&srv, "POST", "/projects", acme.token, "{\"name\":\"Auth project\"}", &r);
    TD_ASSERT_STATUS(&r, 201);
    td_resp_free(&r);
}

static void test_missing_or_malformed_token(void **state)
{
    static const char *const bad[] = {
        "Authorization: Bearer",
        "Authorization: Bearer ",
        "Authorization: Bearer not-a-jwt",
        "Authorization: Bearer a.b.c",
        "Authorization: Basic YWxpY2U6cGFzc3dvcmQ=",
        ("Authorization: " TD_TEST_ADMIN_TOKEN),
    };
    struct td_resp r;
    (void)state;

    td_call(&srv, "GET", "/t/acme-auth/projects", NULL, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
    td_resp_free(&r);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *h[] = {bad[i], NULL};
        td_http(&srv, "GET", "/t/acme-auth/projects", h, NULL, &r);
        TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
        td_resp_free(&r);
    }
    /* The operator token is not a user token. */
    td_call(&srv, "GET", "/t/acme-auth/projects", TD_TEST_ADMIN_TOKEN, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
    td_resp_free(&r);
}

/* A token for acme's owner built by the test, with the given alg, exp offset and secret. */
static void craft(char *out, size_t size, const char *alg, long exp_offset, const char *secret,
                  const char *sub)
{
    char header[128], payload[512];
    long long now = (long long)time(NULL);
    snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
    snprintf(payload, sizeof(payload),
             "{\"sub\":\"%s\",\"tid\":\"%s\",\"role\":\"owner\",\"iat\":%lld,\"exp\":%lld}",
             sub ? sub : acme.user_id, acme.tenant_id, now - 60, now + exp_offset);
    td_jwt_sign(header, payload, secret, out, size);
}

static void expect_401(const char *token)
{
    struct td_resp r;
    td_call(&srv, "GET", "/t/acme-auth/projects", token, NULL, &r);
    if (r.status != 401)
        fprintf(stderr, "  token accepted: %s\n", token);
    TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
    td_resp_free(&r);
}

static void test_bad_tokens(void **state)
{
    char tok[2048], tmp[2100];
    struct td_resp r;
    (void)state;

    /* Control: a token the test builds with the right key is accepted. */
    craft(tok, sizeof(tok), "HS256", 600, TD_TEST_JWT_SECRET, NULL);
    td_call(&srv, "GET", "/t/acme-auth/projects", tok, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);

    /* Expired. */
    craft(tok, sizeof(tok), "HS256", -30, TD_TEST_JWT_SECRET, NULL);
    expect_401(tok);

    /* Wrong key. */
    craft(tok, sizeof(tok), "HS256", 600, "some-other-secret-0123456789abcdefghijkl", NULL);
    expect_401(tok);

    /* Other algorithms, right key or none. */
    craft(tok, sizeof(tok), "HS512", 600, TD_TEST_JWT_SECRET, NULL);
    expect_401(tok);
    craft(tok, sizeof(tok), "none", 600, TD_TEST_JWT_SECRET, NULL);
    *strrchr(tok, '.') = '\0';
    snprintf(tmp, sizeof(tmp), "%s.", tok);
    expect_401(tmp);
    expect_401(tok);

    /* Real token with its signature cut, or dropped entirely. */
    snprintf(tok, sizeof(tok), "%s", acme.token);
    *(strrchr(tok, '.') + 1) = '\0';
    expect_401(tok);
    *strrchr(tok, '.') = '\0';
    expect_401(tok);

    /* Real signature, tampered payload (role and exp changed). */
    {
        char payload[1024], b64[1400];
        json_t *claims = td_jwt_payload(acme.token);
        char *text;
        const char *dot1 = strchr(acme.token, '.');
        const char *dot2 = strrchr(acme.token, '.');
        json_object_set_new(claims, "exp", json_integer((long long)time(NULL) + 99999));
        text = json_dumps(claims, JSON_COMPACT);
        snprintf(payload, sizeof(payload), "%s", text);
        free(text);
        json_decref(claims);
        td_b64url_encode((const unsigned char *)payload, strlen(payload), b64, sizeof(b64));
        snprintf(tok, sizeof(tok), "%.*s.%s%s", (int)(dot1 - acme.token), acme.token, b64, dot2);
        expect_401(tok);
    }

    /* Well signed, but the user does not exist in the tenant. */
    craft(tok, sizeof(tok), "HS256", 600, TD_TEST_JWT_SECRET,
          "00000000-0000-4000-8000-000000000001");
    expect_401(tok);
    /* ... or sub is not a uuid at all. */
    craft(tok, sizeof(tok), "HS256", 600, TD_TEST_JWT_SECRET, "alice");
    expect_401(tok);
}

static void test_deleted_user_token(void **state)
{
    struct td_resp r;
    char tok[2048], path[128], id[64];
    (void)state;

    td_call(&srv, "POST", "/t/acme-auth/users", acme.token,
            "{\"email\":\"bob@acme.test\",\"password\":\"bob-password\",\"name\":\"Bob\","
            "\"role\":\"member\"}",
            &r);
    TD_ASSERT_STATUS(&r, 201);
    snprintf(id, sizeof(id), "%s", td_jstr(r.json, "id"));
    td_resp_free(&r);
    assert_int_equal(td_login(&srv, "acme-auth", "bob@acme.test", "bob-password", tok, sizeof(tok)),
                     200);
    td_call(&srv, "GET", "/t/acme-auth/me", tok, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);

    snprintf(path, sizeof(path), "/t/acme-auth/users/%s", id);
    td_call(&srv, "DELETE", path, acme.token, NULL, &r);
    TD_ASSERT_STATUS(&r, 204);
    td_resp_free(&r);
    td_call(&srv, "GET", "/t/acme-auth/me", tok, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
    td_resp_free(&r);
}

static void test_tenant_identification_rules(void **state)
{
    struct td_resp r;
    char h[128];
    (void)state;

    /* None at all. */
    td_call(&srv, "GET", "/projects", NULL, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 400, "tenant_required");
    td_resp_free(&r);
    call_h("GET", "/projects", NULL, "Host: example.test", &r);
    TD_ASSERT_PROBLEM(&r, 400, "tenant_required");
    td_resp_free(&r);

    /* Unknown tenant, by each source; identification comes before the token. */
    td_call(&srv, "GET", "/t/no-such-tenant/projects", acme.token, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 404, "tenant_not_found");
    td_resp_free(&r);
    td_call(&srv, "GET", "/t/no-such-tenant/projects", NULL, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 404, "tenant_not_found");
    td_resp_free(&r);
    call_h("GET", "/projects", NULL, "X-Tenant-ID: no-such-tenant", &r);
    TD_ASSERT_PROBLEM(&r, 404, "tenant_not_found");
    td_resp_free(&r);
    call_h("GET", "/projects", NULL, "X-Tenant-ID: 00000000-0000-4000-8000-00000000abcd", &r);
    TD_ASSERT_PROBLEM(&r, 404, "tenant_not_found");
    td_resp_free(&r);
    call_h("GET", "/projects", NULL, "Host: no-such-tenant.example.test:8080", &r);
    TD_ASSERT_PROBLEM(&r, 404, "tenant_not_found");
    td_resp_free(&r);
    call_h("GET", "/projects", NULL, "X-Tenant-ID: Not A Slug!", &r);
    TD_ASSERT_PROBLEM(&r, 404, "tenant_not_found");
    td_resp_free(&r);

    /* Known tenant, no token: 401 (token is checked before mismatch). */
    call_h("GET", "/t/acme-auth/projects", NULL, "X-Tenant-ID: other-auth", &r);
    TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
    td_resp_free(&r);

    /* Disagreements between path, header, host and token. */
    td_call(&srv, "GET", "/t/other-auth/projects", acme.token, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 403, "tenant_mismatch");
    td_resp_free(&r);
    call_h("GET", "/projects", acme.token, "X-Tenant-ID: other-auth", &r);
    TD_ASSERT_PROBLEM(&r, 403, "tenant_mismatch");
    td_resp_free(&r);
    snprintf(h, sizeof(h), "X-Tenant-ID: %s", other.tenant_id);
    call_h("GET", "/t/acme-auth/projects", acme.token, h, &r);
    TD_ASSERT_PROBLEM(&r, 403, "tenant_mismatch");
    td_resp_free(&r);
    call_h("GET", "/t/acme-auth/projects", other.token, "X-Tenant-ID: other-auth", &r);
    TD_ASSERT_PROBLEM(&r, 403, "tenant_mismatch");
    td_resp_free(&r);
    call_h("GET", "/projects", acme.token, "Host: other-auth.example.test:8080", &r);
    TD_ASSERT_PROBLEM(&r, 403, "tenant_mismatch");
    td_resp_free(&r);
    call_h("GET", "/t/other-auth/projects", other.token, "Host: acme-auth.example.test", &r);
    TD_ASSERT_PROBLEM(&r, 403, "tenant_mismatch");
    td_resp_free(&r);

    /* The Host of a non-matching domain is not a tenant source. */
    call_h("GET", "/projects", acme.token, "Host: other-auth.example.org", &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
}

static void admin_patch(const char *body, long want)
{
    struct td_resp r;
    td_admin(&srv, "PATCH", "/admin/tenants/status-auth", body, &r);
    TD_ASSERT_STATUS(&r, want);
    td_resp_free(&r);
}

/* Login and a token route of status-auth both answer status/code (code NULL: success). */
static void expect_gate(const char *token, long status, const char *code)
{
    struct td_resp r;
    login_with("/t/status-auth/auth/login", NULL, "owner@status.test", "status-password", &r);
    if (code)
        TD_ASSERT_PROBLEM(&r, status, code);
    else
        TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    td_call(&srv, "GET", "/t/status-auth/projects", token, NULL, &r);
    if (code)
        TD_ASSERT_PROBLEM(&r, status, code);
    else
        TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
}

static void test_tenant_status_gates(void **state)
{
    struct td_principal p;
    struct td_resp r;
    (void)state;

    assert_int_equal(td_signup(&srv, "status-auth", "owner@status.test", "status-password", &p),
                     201);
    expect_gate(p.token, 200, NULL);

    /* Suspended: login and routes refused; token problems and mismatches come first. */
    td_admin(&srv, "PATCH", "/admin/tenants/status-auth", "{\"status\":\"suspended\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "status"), "suspended");
    td_resp_free(&r);
    expect_gate(p.token, 403, "tenant_suspended");
    td_call(&srv, "GET", "/t/status-auth/projects", NULL, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
    td_resp_free(&r);
    td_call(&srv, "GET", "/t/status-auth/projects", other.token, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 403, "tenant_mismatch");
    td_resp_free(&r);

    admin_patch("{\"status\":\"active\"}", 200);
    expect_gate(p.token, 200, NULL);

    /* Subscription past: 402, login included; a future date or null lets it through. */
    admin_patch("{\"subscription_expires_at\":\"2020-01-01T00:00:00Z\"}", 200);
    expect_gate(p.token, 402, "subscription_expired");
    td_call(&srv, "GET", "/t/status-auth/projects", NULL, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
    td_resp_free(&r);
    /* Suspension is checked before the subscription. */
    admin_patch("{\"status\":\"suspended\"}", 200);
    expect_gate(p.token, 403, "tenant_suspended");
    admin_patch("{\"status\":\"active\"}", 200);

    admin_patch("{\"subscription_expires_at\":\"2999-01-01T00:00:00Z\"}", 200);
    expect_gate(p.token, 200, NULL);
    admin_patch("{\"subscription_expires_at\":\"2020-01-01T00:00:00Z\"}", 200);
    td_admin(&srv, "PATCH", "/admin/tenants/status-auth", "{\"subscription_expires_at\":null}", &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_true(json_is_null(json_object_get(r.json, "subscription_expires_at")));
    td_resp_free(&r);
    expect_gate(p.token, 200, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signup),
        cmocka_unit_test(test_login_every_source),
        cmocka_unit_test(test_login_wrong_credentials_same_body),
        cmocka_unit_test(test_login_tenant_rules),
        cmocka_unit_test(test_token_usable_on_tenant_routes),
        cmocka_unit_test(test_missing_or_malformed_token),
        cmocka_unit_test(test_bad_tokens),
        cmocka_unit_test(test_deleted_user_token),
        cmocka_unit_test(test_tenant_identification_rules),
        cmocka_unit_test(test_tenant_status_gates),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
