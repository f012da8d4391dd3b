/*
 * test_lifecycle.c - plans and the tenant lifecycle (SPEC §5, §6): project and user quotas,
 * the monthly API budget (429 + Retry-After), PATCH /admin/tenants validation, suspension
 * and expiry, DELETE with and without confirm for every isolation (storage gone, checked
 * in SQL), and a second tenantd on the same catalog seeing a suspension within a second.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PW "lifecycle-pw-1"

static struct td_server srv;

TD_SUITE_SERVER(srv)

static long patch_tenant(struct td_server *s, const char *key, const char *body, struct td_resp *r)
{
    char path[256];
    snprintf(path, sizeof(path), "/admin/tenants/%s", key);
    return td_admin(s, "PATCH", path, body, r);
}

/* Status of GET /t/{slug}/projects with token (response freed). */
static long projects_status(struct td_server *s, const char *slug, const char *token)
{
    struct td_resp r;
    char path[256];
    snprintf(path, sizeof(path), "/t/%s/projects", slug);
    long st = td_call(s, "GET", path, token, NULL, &r);
    td_resp_free(&r);
    return st;
}

static long create_project(const struct td_principal *p, const char *name, char *id_out,
                           size_t size)
{
    struct td_resp r;
    char path[256], body[256];
    snprintf(path, sizeof(path), "/t/%s/projects", p->slug);
    snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
    long st = td_call(&srv, "POST", path, p->token, body, &r);
    if (st == 403 && !td_check_problem(&r, 403, "quota_exceeded"))
        st = -403;
    if (id_out)
        snprintf(id_out, size, "%s", st == 201 ? td_jstr(r.json, "id") : "");
    td_resp_free(&r);
    return st;
}

static long create_user(const struct td_principal *p, const char *email, const char *role)
{
    struct td_resp r;
    char path[256], body[512];
    snprintf(path, sizeof(path), "/t/%s/users", p->slug);
    snprintf(body, sizeof(body),
             "{\"email\":\"%s\",\"password\":\"" PW "\",\"name\":\"U\",\"role\":\"%s\"}", email,
             role);
    long st = td_call(&srv, "POST", path, p->token, body, &r);
    if (st == 403 && !td_check_problem(&r, 403, "quota_exceeded"))
        st = -403;
    td_resp_free(&r);
    return st;
}

/* usage.<key> of GET /admin/tenants/{slug}, or -1. */
static long long usage_of(const char *slug, const char *key)
{
    struct td_resp r;
    char path[256];
    snprintf(path, sizeof(path), "/admin/tenants/%s", slug);
    td_admin(&srv, "GET", path, NULL, &r);
    json_t *v = r.status == 200 ? json_object_get(json_object_get(r.json, "usage"), key) : NULL;
    long long n = json_is_integer(v) ? json_integer_value(v) : -1;
    td_resp_free(&r);
    return n;
}

/* ---- plans: quotas ---- */

static void test_project_quota(void **state)
{
    struct td_principal p;
    char id[64];
    struct td_resp r;
    (void)state;
    assert_int_equal(td_admin_create_tenant(&srv, "quota-p", NULL, NULL, "o@quota-p.test", PW, &p),
                     201);
    assert_int_equal(create_project(&p, "one", NULL, 0), 201);
    assert_int_equal(create_project(&p, "two", NULL, 0), 201);
    assert_int_equal(create_project(&p, "three", id, sizeof(id)), 201);
    assert_int_equal(create_project(&p, "four", NULL, 0), 403);
    assert_int_equal(usage_of("quota-p", "projects"), 3);

    /* a delete frees a place */
    char path[256];
    snprintf(path, sizeof(path), "/t/quota-p/projects/%s", id);
    td_call(&srv, "DELETE", path, p.token, NULL, &r);
    TD_ASSERT_STATUS(&r, 204);
    td_resp_free(&r);
    assert_int_equal(create_project(&p, "three again", NULL, 0), 201);
    assert_int_equal(create_project(&p, "four", NULL, 0), 403);

    /* a higher plan lifts the limit at once; a lower one deletes nothing but blocks */
    patch_tenant(&srv, "quota-p", "{\"plan\":\"starter\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "plan"), "starter");
    td_resp_free(&r);
    assert_int_equal(create_project(&p, "four", NULL, 0), 201);
    assert_int_equal(create_project(&p, "five", NULL, 0), 201);
    patch_tenant(&srv, "quota-p", "{\"plan\":\"free\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    assert_int_equal(create_project(&p, "six", NULL, 0), 403);
    td_call(&srv, "GET", "/t/quota-p/projects", p.token, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "data")), 5);
    td_resp_free(&r);
    assert_int_equal(usage_of("quota-p", "projects"), 5);
}

static void test_user_quota(void **state)
{
    struct td_principal p;
    char email[64];
    (void)state;
    assert_int_equal(td_admin_create_tenant(&srv, "quota-u", NULL, NULL, "o@quota-u.test", PW, &p),
                     201);
    /* the owner is user 1 of 5 */
    for (int i = 2; i <= 5; i++) {
        snprintf(email, sizeof(email), "u%d@quota-u.test", i);
        assert_int_equal(create_user(&p, email, i == 2 ? "admin" : "member"), 201);
    }
    assert_int_equal(create_user(&p, "u6@quota-u.test", "member"), 403);
    assert_int_equal(create_user(&p, "u7@quota-u.test", "owner"), 403);
    assert_int_equal(usage_of("quota-u", "users"), 5);
    /* the refused user does not exist */
    assert_int_equal(td_login(&srv, "quota-u", "u6@quota-u.test", PW, NULL, 0), 401);

    struct td_resp r;
    patch_tenant(&srv, "quota-u", "{\"plan\":\"starter\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    assert_int_equal(create_user(&p, "u6@quota-u.test", "member"), 201);
    assert_int_equal(usage_of("quota-u", "users"), 6);
}

/* ---- plans: the monthly API budget ---- */

static long month_left(void)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_mon += 1;
    return (long)(timegm(&tm) - now);
}

static void test_api_budget(void **state)
{
    struct td_principal p;
    struct td_resp r;
    (void)state;
    assert_int_equal(td_admin_create_tenant(&srv, "budget", NULL, NULL, "o@budget.test", PW, &p),
                     201);
    /* this month's calls so far, as another instance (or an earlier run) recorded them */
    PGconn *db = td_db(&srv, "postgres");
    assert_non_null(db);
    const char *params[1] = {p.tenant_id};
    PGresult *res = td_sql(db,
                           "INSERT INTO tenantd.usage (tenant_id, month, api_calls) VALUES "
                           "($1, date_trunc('month', now() AT TIME ZONE 'UTC')::date, 9998)",
                           1, params);
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);

    /* 10,000 a month on free: two calls left, then 429 until the month ends */
    assert_int_equal(projects_status(&srv, "budget", p.token), 200);
    assert_int_equal(projects_status(&srv, "budget", p.token), 200);
    for (int i = 0; i < 3; i++) {
        td_call(&srv, "GET", "/t/budget/projects", p.token, NULL, &r);
        TD_ASSERT_PROBLEM(&r, 429, "rate_limited");
        long ra = atol(r.retry_after);
        long want = month_left();
        if (ra < want - 5 || ra > want + 5)
            fprintf(stderr, "  Retry-After %s, expected about %ld\n", r.retry_after, want);
        assert_true(ra >= want - 5 && ra <= want + 5);
        td_resp_free(&r);
    }
    td_call(&srv, "POST", "/t/budget/projects", p.token, "{\"name\":\"x\"}", &r);
    TD_ASSERT_PROBLEM(&r, 429, "rate_limited");
    td_resp_free(&r);

    /* refused calls are not counted; the figure reaches the catalog within seconds */
    double t0 = td_now_s();
    char calls[32] = "";
    while (td_now_s() - t0 < 6) {
        assert_true(td_sql_value(db,
                                 "SELECT api_calls FROM tenantd.usage WHERE tenant_id = $1 AND "
                                 "month = date_trunc('month', now() AT TIME ZONE 'UTC')::date",
                                 1, params, calls, sizeof(calls)));
        if (!strcmp(calls, "10000"))
            break;
        td_sleep_ms(200);
    }
    assert_string_equal(calls, "10000");
    assert_int_equal(usage_of("budget", "api_calls_month"), 10000);
    PQfinish(db);

    /* the operator's routes are never rate limited; a bigger plan frees the tenant */
    patch_tenant(&srv, "budget", "{\"plan\":\"starter\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    assert_int_equal(projects_status(&srv, "budget", p.token), 200);
}

/* ---- PATCH /admin/tenants/{id} ---- */

static void test_patch_validation(void **state)
{
    static const char *const bad[] = {
        "{\"status\":\"deleted\"}",
        "{\"status\":\"Suspended\"}",
        "{\"status\":true}",
        "{\"status\":null}",
        "{\"plan\":\"gold\"}",
        "{\"plan\":\"FREE\"}",
        "{\"plan\":null}",
        "{\"name\":\"\"}",
        "{\"name\":\"   \"}",
        "{\"name\":42}",
        "{\"name\":null}",
        "{\"slug\":\"renamed\"}",
        "{\"isolation\":\"schema\"}",
        "{\"subscription_expires_at\":\"soon\"}",
        "{\"subscription_expires_at\":\"tomorrow\"}",
        "{\"subscription_expires_at\":\"2030-13-01T00:00:00Z\"}",
        "{\"subscription_expires_at\":1893456000}",
        "[]",
    };
    struct td_principal p;
    struct td_resp r;
    bool ok = true;
    (void)state;
    assert_int_equal(td_admin_create_tenant(&srv, "patchy", NULL, NULL, NULL, NULL, &p), 201);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        patch_tenant(&srv, "patchy", bad[i], &r);
        if (!td_check_problem(&r, 400, "validation_failed")) {
            fprintf(stderr, "  body: %s\n", bad[i]);
            ok = false;
        }
        td_resp_free(&r);
    }
    patch_tenant(&srv, "patchy", "{\"name\":", &r);
    ok = td_check_problem(&r, 400, "invalid_json") && ok;
    td_resp_free(&r);
    patch_tenant(&srv, "no-such-tenant", "{\"name\":\"x\"}", &r);
    ok = td_check_problem(&r, 404, "tenant_not_found") && ok;
    td_resp_free(&r);
    patch_tenant(&srv, "00000000-0000-4000-8000-000000000000", "{\"name\":\"x\"}", &r);
    ok = td_check_problem(&r, 404, "tenant_not_found") && ok;
    td_resp_free(&r);
    td_call(&srv, "PATCH", "/admin/tenants/patchy", "not-the-admin-token", "{\"name\":\"x\"}", &r);
    ok = td_check_problem(&r, 401, "unauthorized") && ok;
    td_resp_free(&r);
    assert_true(ok);

    /* nothing changed */
    td_admin(&srv, "GET", "/admin/tenants/patchy", NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "name"), "patchy");
    assert_string_equal(td_jstr(r.json, "plan"), "free");
    assert_string_equal(td_jstr(r.json, "status"), "active");
    assert_true(json_is_null(json_object_get(r.json, "subscription_expires_at")));
    td_resp_free(&r);

    /* a good patch by id changes only what it names */
    char path[128];
    snprintf(path, sizeof(path), "/admin/tenants/%s", p.tenant_id);
    td_admin(&srv, "PATCH", path, "{\"name\":\"Patchy Ltd\",\"plan\":\"pro\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "name"), "Patchy Ltd");
    assert_string_equal(td_jstr(r.json, "plan"), "pro");
    assert_string_equal(td_jstr(r.json, "slug"), "patchy");
    assert_string_equal(td_jstr(r.json, "isolation"), "pool");
    assert_string_equal(td_jstr(r.json, "status"), "active");
    td_resp_free(&r);
    td_admin(&srv, "GET", "/admin/tenants/patchy", NULL, &r);
    assert_string_equal(td_jstr(r.json, "name"), "Patchy Ltd");
    assert_string_equal(td_jstr(r.json, "plan"), "pro");
    td_resp_free(&r);
}

/* ---- suspension and expiry ---- */

static void test_suspend_and_resume(void **state)
{
    struct td_principal p;
    struct td_resp r;
    char hdr[2200];
    (void)state;
    assert_int_equal(td_admin_create_tenant(&srv, "susp", NULL, NULL, "o@susp.test", PW, &p), 201);
    assert_int_equal(projects_status(&srv, "susp", p.token), 200); /* cached from here on */

    patch_tenant(&srv, "susp", "{\"status\":\"suspended\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "status"), "suspended");
    td_resp_free(&r);

    /* at once, on every tenant route and every way of naming the tenant */
    td_call(&srv, "GET", "/t/susp/projects", p.token, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 403, "tenant_suspended");
    td_resp_free(&r);
    td_call(&srv, "POST", "/t/susp/projects", p.token, "{\"name\":\"x\"}", &r);
    TD_ASSERT_PROBLEM(&r, 403, "tenant_suspended");
    td_resp_free(&r);
    td_call(&srv, "GET", "/me", p.token, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 403, "tenant_suspended");
    td_resp_free(&r);
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", p.token);
    const char *h[] = {hdr, "X-Tenant-ID: susp", NULL};
    td_http(&srv, "GET", "/users", h, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 403, "tenant_suspended");
    td_resp_free(&r);
    assert_int_equal(td_login(&srv, "susp", "o@susp.test", PW, NULL, 0), 403);
    /* the token is checked before the status */
    td_call(&srv, "GET", "/t/susp/projects", "garbage", NULL, &r);
    TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
    td_resp_free(&r);
    /* the operator still sees it */
    td_admin(&srv, "GET", "/admin/tenants/susp", NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "status"), "suspended");
    td_resp_free(&r);

    patch_tenant(&srv, "susp", "{\"status\":\"active\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "status"), "active");
    td_resp_free(&r);
    assert_int_equal(projects_status(&srv, "susp", p.token), 200);
    assert_int_equal(td_login(&srv, "susp", "o@susp.test", PW, NULL, 0), 200);
}

static void test_login_refused_when_suspended(void **state)
{
    struct td_resp r;
    (void)state;
    patch_tenant(&srv, "susp", "{\"status\":\"suspended\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    td_http(&srv, "POST", "/t/susp/auth/login", NULL,
            "{\"email\":\"o@susp.test\",\"password\":\"" PW "\"}", &r);
    TD_ASSERT_PROBLEM(&r, 403, "tenant_suspended");
    assert_null(td_jstr(r.json, "token"));
    td_resp_free(&r);
    patch_tenant(&srv, "susp", "{\"status\":\"active\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
}

static void test_expiry(void **state)
{
    struct td_principal p;
    struct td_resp r;
    (void)state;
    assert_int_equal(td_admin_create_tenant(&srv, "expiring", NULL, NULL, "o@exp.test", PW, &p),
                     201);
    assert_int_equal(projects_status(&srv, "expiring", p.token), 200);

    patch_tenant(&srv, "expiring", "{\"subscription_expires_at\":\"2001-02-03T05:05:06+01:00\"}",
                 &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_int_equal(td_parse_time(td_jstr(r.json, "subscription_expires_at")),
                     td_parse_time("2001-02-03T04:05:06Z"));
    td_resp_free(&r);
    td_call(&srv, "GET", "/t/expiring/projects", p.token, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 402, "subscription_expired");
    td_resp_free(&r);
    td_http(&srv, "POST", "/t/expiring/auth/login", NULL,
            "{\"email\":\"o@exp.test\",\"password\":\"" PW "\"}", &r);
    TD_ASSERT_PROBLEM(&r, 402, "subscription_expired");
    td_resp_free(&r);

    /* suspended and expired: the status is checked first */
    patch_tenant(&srv, "expiring", "{\"status\":\"suspended\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    td_call(&srv, "GET", "/t/expiring/projects", p.token, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 403, "tenant_suspended");
    td_resp_free(&r);
    patch_tenant(&srv, "expiring", "{\"status\":\"active\"}", &r);
    td_resp_free(&r);

    /* renewed */
    patch_tenant(&srv, "expiring", "{\"subscription_expires_at\":\"2999-01-01T00:00:00Z\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "subscription_expires_at"), "2999-01-01T00:00:00.000000Z");
    td_resp_free(&r);
    assert_int_equal(projects_status(&srv, "expiring", p.token), 200);

    /* expired again, then cleared with null */
    patch_tenant(&srv, "expiring", "{\"subscription_expires_at\":\"2020-01-01T00:00:00Z\"}", &r);
    td_resp_free(&r);
    assert_int_equal(projects_status(&srv, "expiring", p.token), 402);
    patch_tenant(&srv, "expiring", "{\"subscription_expires_at\":null}", &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_non_null(json_object_get(r.json, "subscription_expires_at"));
    assert_true(json_is_null(json_object_get(r.json, "subscription_expires_at")));
    td_resp_free(&r);
    assert_int_equal(projects_status(&srv, "expiring", p.token), 200);
    assert_int_equal(td_login(&srv, "expiring", "o@exp.test", PW, NULL, 0), 200);
}

/* ---- DELETE /admin/tenants/{id} ---- */

static long long count_sql(PGconn *db, const char *sql, const char *param)
{
    char v[32];
    const char *params[1] = {param};
    if (!td_sql_value(db, sql, 1, params, v, sizeof(v)))
        return -1;
    return atoll(v);
}

/* Rows and objects tenant id owns anywhere on the cluster (API usage aside: it is
 * flushed in the background). */
static long long storage_left(PGconn *db, const char *id, const char *isolation)
{
    char ident[64], dbname[80];
    long long n = 0;
    td_storage_name(id, ident, sizeof(ident));
    snprintf(dbname, sizeof(dbname), "td_%s", ident + 2);
    n += count_sql(db, "SELECT count(*) FROM tenantd.tenants WHERE id = $1", id);
    n += count_sql(db, "SELECT count(*) FROM pg_roles WHERE rolname = $1", ident);
    n += count_sql(db, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", ident);
    n += count_sql(db, "SELECT count(*) FROM pg_database WHERE datname = $1", dbname);
    if (!strcmp(isolation, "pool")) {
        n += count_sql(db, "SELECT count(*) FROM pool.users WHERE tenant_id = $1", id);
        n += count_sql(db, "SELECT count(*) FROM pool.projects WHERE tenant_id = $1", id);
        n += count_sql(db, "SELECT count(*) FROM pool.audit_logs WHERE tenant_id = $1", id);
    }
    return n;
}

static void delete_one(const char *isolation)
{
    struct td_principal p;
    struct td_resp r;
    char slug[64], email[128], path[256], proj[64], ppath[256];
    bool ok = true;
    snprintf(slug, sizeof(slug), "del-%s", isolation);
    snprintf(email, sizeof(email), "o@%s.test", slug);
    assert_int_equal(td_admin_create_tenant(&srv, slug, isolation, "enterprise", email, PW, &p),
                     201);
    assert_int_equal(create_project(&p, "keep me", proj, sizeof(proj)), 201);
    assert_int_equal(projects_status(&srv, slug, p.token), 200);
    PGconn *db = td_db(&srv, "postgres");
    assert_non_null(db);
    long long before = storage_left(db, p.tenant_id, isolation);
    /* catalog row + role and schema or database, or + pool rows */
    assert_true(before >= 3);

    /* without the right confirm: 400 and nothing touched */
    const char *wrong[] = {"",
                           "?confirm=",
                           "?confirm=nope",
                           "?confirm=DEL-POOL",
                           "?confirm=quota-p",
                           "?confirm=%20",
                           "?slug=x"};
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        snprintf(path, sizeof(path), "/admin/tenants/%s%s", slug, wrong[i]);
        td_admin(&srv, "DELETE", path, NULL, &r);
        if (!td_check_problem(&r, 400, "bad_request")) {
            fprintf(stderr, "  query: %s\n", wrong[i]);
            ok = false;
        }
        td_resp_free(&r);
    }
    assert_true(ok);
    snprintf(ppath, sizeof(ppath), "/t/%s/projects/%s", slug, proj);
    td_call(&srv, "GET", ppath, p.token, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "name"), "keep me");
    td_resp_free(&r);
    assert_int_equal(td_login(&srv, slug, email, PW, NULL, 0), 200);
    assert_int_equal(storage_left(db, p.tenant_id, isolation), before);

    /* the operator token is required */
    snprintf(path, sizeof(path), "/admin/tenants/%s?confirm=%s", slug, slug);
    td_call(&srv, "DELETE", path, p.token, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
    td_resp_free(&r);

    /* by id, confirmed with the slug */
    snprintf(path, sizeof(path), "/admin/tenants/%s?confirm=%s", p.tenant_id, slug);
    td_admin(&srv, "DELETE", path, NULL, &r);
    TD_ASSERT_STATUS(&r, 204);
    assert_int_equal(r.body_len, 0);
    td_resp_free(&r);

    snprintf(path, sizeof(path), "/admin/tenants/%s", slug);
    td_admin(&srv, "GET", path, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 404, "tenant_not_found");
    td_resp_free(&r);
    td_call(&srv, "GET", ppath, p.token, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 404, "tenant_not_found");
    td_resp_free(&r);
    td_call(&srv, "GET", "/me", p.token, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 404, "tenant_not_found");
    td_resp_free(&r);
    snprintf(path, sizeof(path), "/t/%s/auth/login", slug);
    td_http(&srv, "POST", path, NULL, "{\"email\":\"x@y.z\",\"password\":\"whatever1\"}", &r);
    TD_ASSERT_PROBLEM(&r, 404, "tenant_not_found");
    td_resp_free(&r);
    snprintf(path, sizeof(path), "/admin/tenants/%s?confirm=%s", slug, slug);
    td_admin(&srv, "DELETE", path, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 404, "tenant_not_found");
    td_resp_free(&r);

    /* storage, role, catalog row and usage are gone */
    assert_int_equal(storage_left(db, p.tenant_id, isolation), 0);
    assert_int_equal(
        count_sql(db, "SELECT count(*) FROM tenantd.usage WHERE tenant_id = $1", p.tenant_id), 0);
    PQfinish(db);

    /* the slug is free again, for a fresh empty tenant */
    struct td_principal again;
    assert_int_equal(td_admin_create_tenant(&srv, slug, isolation, NULL, email, PW, &again), 201);
    assert_string_not_equal(again.tenant_id, p.tenant_id);
    td_call(&srv, "GET", ppath, again.token, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 404, "not_found");
    td_resp_free(&r);
}

static void test_delete_pool(void **state)
{
    (void)state;
    delete_one("pool");
}

static void test_delete_schema(void **state)
{
    (void)state;
    delete_one("schema");
}

static void test_delete_database(void **state)
{
    (void)state;
    delete_one("database");
}

/* ---- a second instance on the same catalog ---- */

/* Seconds until GET projects on s answers want (polling every 20 ms), or -1 after 5 s. */
static double until_status(struct td_server *s, const char *slug, const char *token, long want)
{
    double t0 = td_now_s();
    while (td_now_s() - t0 < 5) {
        if (projects_status(s, slug, token) == want)
            return td_now_s() - t0;
        td_sleep_ms(20);
    }
    return -1;
}

static void test_second_instance(void **state)
{
    struct td_server srv2;
    struct td_principal p;
    struct td_resp r;
    char url[256];
    double t;
    (void)state;
    snprintf(url, sizeof(url),
             "TENANTD_DATABASE_URL=host=%s/pg port=5432 dbname=tenantd user=postgres", srv.dir);
    const char *env[] = {url, NULL};
    assert_int_equal(td_server_start(&srv2, env), 0);

    assert_int_equal(td_admin_create_tenant(&srv, "shared", NULL, NULL, "o@shared.test", PW, &p),
                     201);
    /* both instances have the tenant cached */
    assert_int_equal(projects_status(&srv, "shared", p.token), 200);
    assert_int_equal(projects_status(&srv2, "shared", p.token), 200);

    /* a user removed through one instance loses reads on the other too, although the
     * other remembered a passed check for that user (TENANTD_USER_CHECK_TTL) */
    char member[2048], path[160];
    td_call(&srv, "POST", "/t/shared/projects", p.token, "{\"name\":\"p\"}", &r);
    TD_ASSERT_STATUS(&r, 201);
    td_resp_free(&r);
    char id[64];
    assert_int_equal(
        td_add_user(&srv, "shared", p.token, "m@shared.test", PW, "member", id, sizeof(id)), 201);
    snprintf(path, sizeof(path), "/t/shared/users/%s", id);
    assert_int_equal(td_login(&srv, "shared", "m@shared.test", PW, member, sizeof(member)), 200);
    assert_int_equal(projects_status(&srv2, "shared", member), 200);
    assert_int_equal(projects_status(&srv2, "shared", member), 200);
    td_call(&srv, "DELETE", path, p.token, NULL, &r);
    TD_ASSERT_STATUS(&r, 204);
    td_resp_free(&r);
    t = until_status(&srv2, "shared", member, 401);
    fprintf(stderr, "  second instance refused the removed user after %.3f s\n", t);
    assert_true(t >= 0 && t <= 1.0);

    patch_tenant(&srv, "shared", "{\"status\":\"suspended\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    t = until_status(&srv2, "shared", p.token, 403);
    fprintf(stderr, "  second instance saw the suspension after %.3f s\n", t);
    assert_true(t >= 0 && t <= 1.0);

    /* and back, from the other side */
    patch_tenant(&srv2, "shared", "{\"status\":\"active\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    t = until_status(&srv, "shared", p.token, 200);
    assert_true(t >= 0 && t <= 1.0);
    t = until_status(&srv2, "shared", p.token, 200);
    assert_true(t >= 0 && t <= 1.0);

    /* a deletion through one is a 404 on the other */
    td_admin(&srv, "DELETE", "/admin/tenants/shared?confirm=shared", NULL, &r);
    TD_ASSERT_STATUS(&r, 204);
    td_resp_free(&r);
    t = until_status(&srv2, "shared", p.token, 404);
    assert_true(t >= 0 && t <= 1.0);

    assert_int_equal(td_server_stop(&srv2), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_project_quota),
        cmocka_unit_test(test_user_quota),
        cmocka_unit_test(test_api_budget),
        cmocka_unit_test(test_patch_validation),
        cmocka_unit_test(test_suspend_and_resume),
        cmocka_unit_test(test_login_refused_when_suspended),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_delete_pool),
        cmocka_unit_test(test_delete_schema),
        cmocka_unit_test(test_delete_database),
        cmocka_unit_test(test_second_instance),
    };
    return cmocka_run_group_tests_name("lifecycle", tests, setup, teardown);
}
