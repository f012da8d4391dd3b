/*
 * test_ops.c - what an operator and an integrator rely on (issue 8): GET /metrics scraped
 * and parsed (request counters, histograms, bounded per-tenant counters, denials, rate
 * limiting, pools, provisioning), the JSON access log with no secret in any log line, and
 * GET /openapi.json describing routes that exist.
 */
#include "harness.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct td_server srv;
static int metrics_port;

#define METRICS_TOKEN "it-metrics-token-0123456789abcdef0123456"

static int setup(void **state)
{
    /* debug: the most the server ever logs, so the secrets test covers every line */
    static char listen[64];
    static const char *env[] = {"TENANTD_LOG_LEVEL=debug", "TENANTD_METRICS_TOKEN=" METRICS_TOKEN,
                                listen, NULL};
    (void)state;
    metrics_port = td_free_port();
    snprintf(listen, sizeof(listen), "TENANTD_METRICS_LISTEN=127.0.0.1:%d", metrics_port);
    return td_server_start(&srv, env);
}

TD_SUITE_TEARDOWN(srv)

/* ---- a small Prometheus text-format reader -------------------------------------------- */

struct sample {
    char *series; /* name{labels} exactly as exposed */
    double value;
};

struct scrape {
    struct sample *s;
    size_t n;
    char *text;
};

/* Parse the exposition; fails the test on a malformed line or a sample without TYPE. */
static void scrape(struct scrape *sc)
{
    struct td_resp r;
    regex_t re;
    char types[8192] = " ";
    memset(sc, 0, sizeof(*sc));
    td_admin(&srv, "GET", "/metrics", NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_non_null(strstr(r.content_type, "text/plain"));
    assert_non_null(strstr(r.content_type, "version=0.0.4"));
    assert_int_equal(regcomp(&re,
                             "^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{([a-zA-Z_][a-zA-Z0-9_]*=\"[^\"]*\""
                             "(,[a-zA-Z_][a-zA-Z0-9_]*=\"[^\"]*\")*)?\\})? "
                             "(-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?)$",
                             REG_EXTENDED),
                     0);
    sc->text = strdup(r.body);
    sc->s = calloc(8192, sizeof(*sc->s));
    char *save = NULL;
    for (char *line = strtok_r(r.body, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[128], type[32];
        if (sscanf(line, "# TYPE %127s %31s", name, type) == 2) {
            assert_true(strlen(types) + strlen(name) + 2 < sizeof(types));
            strcat(types, name);
            strcat(types, " ");
            continue;
        }
        if (line[0] == '#')
            continue;
        regmatch_t m[8];
        if (regexec(&re, line, 8, m, 0) != 0)
            fail_msg("malformed metrics line: %s", line);
        /* the sample's family (histogram samples end in _bucket, _sum, _count) has a TYPE */
        char fam[140];
        snprintf(fam, sizeof(fam), " %.*s ", (int)(m[1].rm_eo - m[1].rm_so), line);
        if (!strstr(types, fam)) {
            char *suffix = strrchr(fam, '_');
            if (suffix)
                strcpy(suffix, " ");
            if (!strstr(types, fam))
                fail_msg("sample without # TYPE: %s", line);
        }
        assert_true(sc->n < 8192);
        char *sp = strrchr(line, ' ');
        sc->s[sc->n].series = strndup(line, (size_t)(sp - line));
        sc->s[sc->n].value = strtod(sp + 1, NULL);
        sc->n++;
    }
    regfree(&re);
    td_resp_free(&r);
}

static void scrape_free(struct scrape *sc)
{
    for (size_t i = 0; i < sc->n; i++)
        free(sc->s[i].series);
    free(sc->s);
    free(sc->text);
}

/* Value of one series, or -1 when absent. */
static double metric(const struct scrape *sc, const char *series)
{
    for (size_t i = 0; i < sc->n; i++)
        if (!strcmp(sc->s[i].series, series))
            return sc->s[i].value;
    return -1;
}

/* Value of a series, 0 when absent (a counter not yet incremented). */
static double counter(const struct scrape *sc, const char *series)
{
    double v = metric(sc, series);
    return v < 0 ? 0 : v;
}

static void get_n(const char *path, const char *token, int n, long want)
{
    for (int i = 0; i < n; i++) {
        struct td_resp r;
        td_call(&srv, "GET", path, token, NULL, &r);
        TD_ASSERT_STATUS(&r, want);
        td_resp_free(&r);
    }
}

/* ---- metrics ------------------------------------------------------------------------- */

#define RESOURCE_POST "tenantd_http_requests_total{route=\"/{t}\",method=\"POST\",status=\"201\"}"
#define PROJECTS_HIST "tenantd_http_request_duration_seconds"

static void test_request_counters_and_histograms(void **state)
{
    struct td_principal a;
    struct scrape before, after;
    struct td_resp r;
    (void)state;
    assert_int_equal(td_signup(&srv, "ops-metrics", "m@ops.test", "metrics-pass-1", &a), 201);
    scrape(&before);

    for (int i = 0; i < 3; i++) {
        td_call(&srv, "POST", "/t/ops-metrics/projects", a.token, "{\"name\":\"p\"}", &r);
        TD_ASSERT_STATUS(&r, 201);
        td_resp_free(&r);
    }
    get_n("/no/such/route", NULL, 2, 404);
    td_call(&srv, "PUT", "/health", NULL, NULL, &r); /* known path, other method */
    TD_ASSERT_STATUS(&r, 405);
    td_resp_free(&r);

    scrape(&after);
    assert_true(counter(&after, RESOURCE_POST) - counter(&before, RESOURCE_POST) == 3);
    assert_true(counter(&after, "tenantd_http_requests_total{route=\"unmatched\",method=\"GET\","
                                "status=\"404\"}") -
                    counter(&before, "tenantd_http_requests_total{route=\"unmatched\","
                                     "method=\"GET\",status=\"404\"}") ==
                2);
    assert_true(counter(&after, "tenantd_http_requests_total{route=\"unmatched\",method=\"PUT\","
                                "status=\"405\"}") >= 1);
    /* the raw path of an unknown route never becomes a label */
    assert_null(strstr(after.text, "/no/such/route"));

    /* histogram of /{t} (projects is a resource, SPEC 7): cumulative buckets, +Inf == count, count
     * covers the posts */
    const char *les[] = {"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
                         "0.25",  "0.5",    "1",     "2.5",  "5",     "10",   "+Inf"};
    double prev = 0;
    char series[256];
    for (size_t i = 0; i < sizeof(les) / sizeof(les[0]); i++) {
        snprintf(series, sizeof(series), PROJECTS_HIST "_bucket{route=\"/{t}\",le=\"%s\"}", les[i]);
        double v = metric(&after, series);
        assert_true(v >= prev);
        prev = v;
    }
    double count = metric(&after, PROJECTS_HIST "_count{route=\"/{t}\"}");
    assert_true(count >= 3);
    assert_true(prev == count);
    double sum = metric(&after, PROJECTS_HIST "_sum{route=\"/{t}\"}");
    assert_true(sum > 0 && sum < count * 10);

    /* tenant requests are counted under the tenant's slug */
    assert_true(counter(&after, "tenantd_tenant_requests_total{tenant=\"ops-metrics\"}") -
                    counter(&before, "tenantd_tenant_requests_total{tenant=\"ops-metrics\"}") ==
                3);
    scrape_free(&before);
    scrape_free(&after);
}

static void test_denials_and_rate_limit(void **state)
{
    struct td_principal a, b;
    struct scrape before, after;
    struct td_resp r;
    char path[160];
    (void)state;
    assert_int_equal(td_signup(&srv, "ops-deny-a", "a@deny.test", "deny-pass-a1", &a), 201);
    assert_int_equal(td_signup(&srv, "ops-deny-b", "b@deny.test", "deny-pass-b1", &b), 201);
    td_call(&srv, "POST", "/t/ops-deny-b/projects", b.token, "{\"name\":\"b's\"}", &r);
    TD_ASSERT_STATUS(&r, 201);
    char bproj[64];
    snprintf(bproj, sizeof(bproj), "%s", td_jstr(r.json, "id"));
    td_resp_free(&r);
    scrape(&before);

    /* A's token on B's path: tenant_mismatch */
    td_call(&srv, "GET", "/t/ops-deny-b/me", a.token, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 403, "tenant_mismatch");
    td_resp_free(&r);
    /* A writing B's project by id: RLS shows A nothing, 404 */
    snprintf(path, sizeof(path), "/t/ops-deny-a/projects/%s", bproj);
    td_call(&srv, "PATCH", path, a.token, "{\"name\":\"stolen\"}", &r);
    TD_ASSERT_PROBLEM(&r, 404, "not_found");
    td_resp_free(&r);
    td_call(&srv, "DELETE", path, a.token, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 404, "not_found");
    td_resp_free(&r);
    /* a read of a missing id is not a denied write */
    td_call(&srv, "GET", path, a.token, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 404, "not_found");
    td_resp_free(&r);

    /* B's budget spent in the catalog: this instance has not seen B's usage yet, so its
     * first call reads the total and refuses */
    PGconn *c = td_db(&srv, "postgres");
    assert_non_null(c);
    const char *p[1] = {b.tenant_id};
    PGresult *res = td_sql(c,
                           "INSERT INTO tenantd.usage (tenant_id, month, api_calls) VALUES ($1, "
                           "date_trunc('month', now() AT TIME ZONE 'UTC')::date, 10000) "
                           "ON CONFLICT (tenant_id, month) DO UPDATE SET api_calls = 10000",
                           1, p);
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    PQfinish(c);
    td_call(&srv, "GET", "/t/ops-deny-b/projects", b.token, NULL, &r);
    if (r.status != 429) /* the project create above loaded B's counter: wait for a flush */
        for (int i = 0; i < 50 && r.status != 429; i++) {
            td_resp_free(&r);
            struct timespec ts = {0, 200000000L};
            nanosleep(&ts, NULL);
            td_call(&srv, "GET", "/t/ops-deny-b/projects", b.token, NULL, &r);
        }
    TD_ASSERT_PROBLEM(&r, 429, "rate_limited");
    td_resp_free(&r);

    scrape(&after);
    assert_true(counter(&after, "tenantd_denied_total{reason=\"tenant_mismatch\"}") -
                    counter(&before, "tenantd_denied_total{reason=\"tenant_mismatch\"}") ==
                1);
    assert_true(counter(&after, "tenantd_denied_total{reason=\"rls_empty_write\"}") -
                    counter(&before, "tenantd_denied_total{reason=\"rls_empty_write\"}") ==
                2);
    assert_true(counter(&after, "tenantd_rate_limited_total") -
                    counter(&before, "tenantd_rate_limited_total") >=
                1);
    scrape_free(&before);
    scrape_free(&after);
}

/* 55 tenants: the 50 busiest get a label each, the 5 quiet ones only count in "other". */
static void test_tenant_series_are_bounded(void **state)
{
    struct td_principal p;
    struct scrape sc;
    char slug[32], path[96], series[128];
    (void)state;
    for (int i = 0; i < 55; i++) {
        snprintf(slug, sizeof(slug), "ops-card-%02d", i);
        assert_int_equal(td_admin_create_tenant(&srv, slug, NULL, NULL, NULL, NULL, &p), 201);
        snprintf(path, sizeof(path), "/t/%s/me", slug);
        /* no token: 401, but the tenant was identified and the request is its */
        get_n(path, NULL, i < 50 ? 40 : 1, 401);
    }
    scrape(&sc);
    int labelled = 0;
    for (size_t i = 0; i < sc.n; i++)
        if (!strncmp(sc.s[i].series, "tenantd_tenant_requests_total{", 30) &&
            strcmp(sc.s[i].series, "tenantd_tenant_requests_total{tenant=\"other\"}") != 0)
            labelled++;
    assert_int_equal(labelled, 50);
    for (int i = 0; i < 55; i++) {
        snprintf(series, sizeof(series), "tenantd_tenant_requests_total{tenant=\"ops-card-%02d\"}",
                 i);
        if (i < 50)
            assert_true(metric(&sc, series) == 40);
        else
            assert_true(metric(&sc, series) < 0);
    }
    assert_true(metric(&sc, "tenantd_tenant_requests_total{tenant=\"other\"}") >= 5);
    scrape_free(&sc);
}

static void test_pool_and_provisioning_metrics(void **state)
{
    struct td_principal e;
    struct scrape before, after;
    struct td_resp r;
    (void)state;
    scrape(&before);
    assert_int_equal(td_admin_create_tenant(&srv, "ops-ent", NULL, "enterprise", "e@ent.test",
                                            "enterprise-pw1", &e),
                     201);
    td_call(&srv, "GET", "/t/ops-ent/projects", e.token, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    /* a duplicate slug is refused before any storage is made: not a provisioning */
    td_admin(&srv, "POST", "/admin/tenants", "{\"slug\":\"ops-ent\",\"name\":\"dup\"}", &r);
    TD_ASSERT_PROBLEM(&r, 409, "conflict");
    td_resp_free(&r);
    scrape(&after);

    assert_true(counter(&after, "tenantd_tenant_provisions_total{result=\"ok\"}") -
                    counter(&before, "tenantd_tenant_provisions_total{result=\"ok\"}") ==
                1);
    assert_true(counter(&after, "tenantd_tenant_provisions_total{result=\"error\"}") ==
                counter(&before, "tenantd_tenant_provisions_total{result=\"error\"}"));
    assert_true(metric(&after, "tenantd_tenant_provision_duration_seconds_count") ==
                metric(&after, "tenantd_tenant_provisions_total{result=\"ok\"}") +
                    metric(&after, "tenantd_tenant_provisions_total{result=\"error\"}"));
    assert_true(metric(&after, "tenantd_tenant_provision_duration_seconds_sum") > 0);

    /* the database tenant's request opened a per-database pool on server main */
    assert_true(metric(&after, "tenantd_db_pool_tenant_pools{server=\"main\"}") >= 1);
    assert_true(metric(&after, "tenantd_db_pool_open_connections{server=\"main\"}") >= 1);
    assert_true(metric(&after, "tenantd_db_pool_in_use_connections{server=\"main\"}") >= 0);
    assert_true(metric(&after, "tenantd_db_pool_waiting_requests{server=\"main\"}") >= 0);
    assert_true(counter(&after, "tenantd_db_pool_lru_misses_total{server=\"main\"}") >
                counter(&before, "tenantd_db_pool_lru_misses_total{server=\"main\"}"));
    assert_true(metric(&after, "tenantd_db_pool_lru_hits_total{server=\"main\"}") >= 0);
    assert_true(metric(&after, "tenantd_db_pool_lru_evictions_total{server=\"main\"}") >= 0);
    assert_true(metric(&after, "tenantd_jobs_total{result=\"done\"}") >= 0);
    /* the start-up migration ran once, fine; the workers' count of tenants behind the
     * tenant migrations or failed in one is in (counted as the server started) */
    assert_true(metric(&after, "tenantd_migration_runs_total{result=\"ok\"}") == 1);
    assert_true(metric(&after, "tenantd_migration_runs_total{result=\"error\"}") == 0);
    assert_true(metric(&after, "tenantd_migration_run_duration_seconds_count") == 1);
    assert_true(metric(&after, "tenantd_tenant_migrations{state=\"pending\"}") == 0);
    assert_true(metric(&after, "tenantd_tenant_migrations{state=\"failed\"}") == 0);
    scrape_free(&before);
    scrape_free(&after);
}

/* ---- OpenAPI ------------------------------------------------------------------------- */

static void test_openapi_describes_existing_routes(void **state)
{
    struct td_resp r;
    (void)state;
    td_http(&srv, "GET", "/openapi.json", NULL, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_non_null(r.json);
    assert_string_equal(td_jstr(r.json, "openapi"), "3.1.0");
    json_t *paths = json_object_get(r.json, "paths");
    assert_true(json_object_size(paths) >= 15);
    /* the contract's routes are there, tenant routes without the /t/{slug} prefix */
    const char *need[][2] = {{"/projects/{id}", "patch"}, {"/users", "post"},
                             {"/audit-logs", "get"},      {"/admin/tenants/{id}", "delete"},
                             {"/signup", "post"},         {"/auth/login", "post"},
                             {"/metrics", "get"},         {"/admin/analytics", "get"}};
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
        assert_non_null(json_object_get(json_object_get(paths, need[i][0]), need[i][1]));

    /* every described operation exists on the running server: never 405, never the
     * router's "no such route" */
    const char *path, *method;
    json_t *item, *op;
    int checked = 0;
    json_object_foreach(paths, path, item)
    {
        assert_true(strncmp(path, "/t/", 3) != 0);
        char url[256];
        size_t k = 0;
        for (const char *c = path; *c && k + 40 < sizeof(url); c++) {
            if (*c == '{') {
                k += (size_t)snprintf(url + k, sizeof(url) - k,
                                      "00000000-0000-4000-8000-000000000000");
                c = strchr(c, '}');
            } else {
                url[k++] = *c;
            }
        }
        url[k] = '\0';
        json_object_foreach(item, method, op)
        {
            char m[16];
            size_t j = 0;
            for (; method[j] && j + 1 < sizeof(m); j++)
                m[j] = (char)(method[j] & ~0x20);
            m[j] = '\0';
            struct td_resp x;
            td_http(&srv, m, url, NULL, NULL, &x);
            if (x.status == 405 || (x.status == 404 && x.body && strstr(x.body, "no such route")))
                fail_msg("described %s %s does not exist: %ld %s", m, path, x.status, x.body);
            assert_true(x.status >= 200 && x.status < 600);
            td_resp_free(&x);
            checked++;
        }
    }
    assert_true(checked >= 20);
    /* every operation names its problem responses, with the Problem schema */
    json_t *problem = json_object_get(
        json_object_get(json_object_get(r.json, "components"), "schemas"), "Problem");
    assert_non_null(problem);
    td_resp_free(&r);
}

/* ---- logs ---------------------------------------------------------------------------- */

static char *read_log(void)
{
    FILE *f = fopen(srv.log_path, "r");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return buf;
}

static void assert_not_logged(const char *log, const char *secret, const char *what)
{
    if (secret && *secret && strstr(log, secret))
        fail_msg("the server log contains %s", what);
}

static void test_access_log_and_no_secrets(void **state)
{
    struct td_principal a;
    struct td_resp r;
    char token[2048], user_tok[2048], body[512], path[160];
    (void)state;
    const char *owner_pw = "Owner-Secret-Pw-7731";
    const char *user_pw = "User-Secret-Pw-5512";
    const char *new_pw = "Changed-Secret-Pw-9043";
    assert_int_equal(td_signup(&srv, "ops-logs", "owner@logs.test", owner_pw, &a), 201);
    assert_int_equal(td_login(&srv, "ops-logs", "owner@logs.test", owner_pw, token, sizeof(token)),
                     200);
    snprintf(body, sizeof(body),
             "{\"email\":\"u@logs.test\",\"password\":\"%s\",\"name\":\"U\",\"role\":\"member\"}",
             user_pw);
    td_call(&srv, "POST", "/t/ops-logs/users", token, body, &r);
    TD_ASSERT_STATUS(&r, 201);
    char uid[64];
    snprintf(uid, sizeof(uid), "%s", td_jstr(r.json, "id"));
    td_resp_free(&r);
    assert_int_equal(td_login(&srv, "ops-logs", "u@logs.test", user_pw, user_tok, sizeof(user_tok)),
                     200);
    snprintf(path, sizeof(path), "/t/ops-logs/users/%s", uid);
    snprintf(body, sizeof(body), "{\"password\":\"%s\"}", new_pw);
    td_call(&srv, "PATCH", path, token, body, &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    /* failures log too: a wrong password, a bad token, a password in a query string */
    snprintf(body, sizeof(body), "{\"email\":\"u@logs.test\",\"password\":\"%s-wrong\"}", new_pw);
    td_http(&srv, "POST", "/t/ops-logs/auth/login", NULL, body, &r);
    TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
    td_resp_free(&r);
    td_call(&srv, "GET", "/t/ops-logs/me", "Bad-Token-Value-31337", NULL, &r);
    TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
    td_resp_free(&r);
    td_call(&srv, "GET", "/t/ops-logs/projects?cursor=Query-Secret-4242", token, NULL, &r);
    td_resp_free(&r);
    td_admin(&srv, "GET", "/admin/tenants/ops-logs", NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);

    char *log = read_log();
    assert_not_logged(log, owner_pw, "the owner's password");
    assert_not_logged(log, user_pw, "a user's password");
    assert_not_logged(log, new_pw, "a changed password");
    assert_not_logged(log, a.token, "the signup token");
    assert_not_logged(log, token, "a login token");
    assert_not_logged(log, user_tok, "a login token");
    assert_not_logged(log, "Bad-Token-Value-31337", "a presented token");
    assert_not_logged(log, "Query-Secret-4242", "a query parameter");
    assert_not_logged(log, TD_TEST_ADMIN_TOKEN, "the admin token");
    assert_not_logged(log, TD_TEST_JWT_SECRET, "the JWT secret");
    assert_not_logged(log, "$argon2", "a password hash");

    /* one JSON line per request with the documented fields; the tenant and user of the
     * user-token requests are named */
    int lines = 0, named = 0;
    char *save = NULL;
    for (char *l = strtok_r(log, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (l[0] != '{')
            continue;
        json_t *j = json_loads(l, 0, NULL);
        if (!j)
            fail_msg("access log line is not JSON: %s", l);
        const char *fields[] = {"time",  "request_id", "tenant",      "user", "method",
                                "route", "status",     "duration_ms", "bytes"};
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
            if (!json_object_get(j, fields[i]))
                fail_msg("access log line lacks %s: %s", fields[i], l);
        assert_true(td_parse_time(td_jstr(j, "time")) > 0);
        if (td_jstr(j, "tenant") && !strcmp(td_jstr(j, "tenant"), "ops-logs") &&
            td_jstr(j, "user") && !strcmp(td_jstr(j, "route"), "/users/{id}")) {
            assert_string_equal(td_jstr(j, "method"), "PATCH");
            assert_int_equal(json_integer_value(json_object_get(j, "status")), 200);
            named++;
        }
        lines++;
        json_decref(j);
    }
    assert_true(lines >= 10);
    assert_int_equal(named, 1);
    free(log);
}

/* ---- who may read /metrics ------------------------------------------------------------ */

/* GET path with "Authorization: Bearer token" (none when NULL) on s. */
static void get_as(struct td_server *s, const char *path, const char *token, struct td_resp *r)
{
    char auth[2200];
    const char *hdrs[] = {auth, NULL};
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token ? token : "");
    td_http(s, "GET", path, token ? hdrs : NULL, NULL, r);
}

static void test_metrics_needs_a_token(void **state)
{
    struct td_resp r;
    struct td_principal a;
    (void)state;
    assert_int_equal(td_signup(&srv, "ops-private-name", "p@ops.test", "metrics-pass-1", &a), 201);
    get_n("/t/ops-private-name/me", a.token, 3, 200);

    /* the operator token and the metrics token read it, and it names tenants (earlier tests
     * made 50 others busier, so which ones is not pinned here) */
    get_as(&srv, "/metrics", TD_TEST_ADMIN_TOKEN, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_non_null(strstr(r.body, "tenantd_tenant_requests_total{tenant=\""));
    td_resp_free(&r);
    get_as(&srv, "/metrics", METRICS_TOKEN, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_non_null(strstr(r.body, "tenantd_tenant_requests_total{tenant=\""));
    td_resp_free(&r);

    /* nothing else does, and the refusal names no tenant */
    const char *refused[] = {NULL, a.token, "not-a-token", METRICS_TOKEN "x", ""};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        get_as(&srv, "/metrics", refused[i], &r);
        TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
        assert_null(strstr(r.body, "ops-private-name"));
        assert_null(strstr(r.body, "tenant=\""));
        assert_null(strstr(r.body, "tenantd_"));
        td_resp_free(&r);
    }
    /* a tenant prefix does not make it a tenant route */
    get_as(&srv, "/t/ops-private-name/metrics", a.token, &r);
    TD_ASSERT_PROBLEM(&r, 404, "not_found");
    td_resp_free(&r);

    /* the metrics address: /metrics without a token, and nothing else */
    struct td_server m = srv;
    snprintf(m.base_url, sizeof(m.base_url), "http://127.0.0.1:%d", metrics_port);
    get_as(&m, "/metrics", NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_non_null(strstr(r.content_type, "version=0.0.4"));
    assert_non_null(strstr(r.body, "tenantd_tenant_requests_total{tenant=\""));
    td_resp_free(&r);
    const char *other[] = {"/health", "/openapi.json", "/admin/tenants",
                           "/me",     "/metrics/",     "/t/ops-private-name/metrics"};
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        get_as(&m, other[i], TD_TEST_ADMIN_TOKEN, &r);
        TD_ASSERT_PROBLEM(&r, 404, "not_found");
        td_resp_free(&r);
    }
    td_http(&m, "POST", "/metrics", NULL, "{}", &r);
    TD_ASSERT_PROBLEM(&r, 405, "method_not_allowed");
    td_resp_free(&r);
}

/* The API address's other public routes answer as before, and say nothing of tenants. */
static void test_public_routes_name_no_tenant(void **state)
{
    struct td_resp r;
    struct td_principal a;
    (void)state;
    assert_int_equal(td_signup(&srv, "ops-quiet-name", "q@ops.test", "metrics-pass-1", &a), 201);
    get_n("/t/ops-quiet-name/me", a.token, 2, 200);
    const char *paths[] = {"/health", "/ready", "/openapi.json"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        td_http(&srv, "GET", paths[i], NULL, NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        assert_non_null(r.json);
        assert_null(strstr(r.body, "ops-quiet-name"));
        assert_null(strstr(r.body, a.tenant_id));
        td_resp_free(&r);
    }
    td_http(&srv, "GET", "/health", NULL, NULL, &r);
    assert_string_equal(r.body, "{\"status\":\"ok\"}");
    td_resp_free(&r);
    /* /ready also reports the backup state (process-wide figures, no tenant) */
    td_http(&srv, "GET", "/ready", NULL, NULL, &r);
    assert_string_equal(td_jstr(r.json, "status"), "ready");
    td_resp_free(&r);
    /* the document says how /metrics is reached */
    td_http(&srv, "GET", "/openapi.json", NULL, NULL, &r);
    json_t *sec = json_object_get(
        json_object_get(json_object_get(json_object_get(r.json, "paths"), "/metrics"), "get"),
        "security");
    assert_int_equal(json_array_size(sec), 2);
    td_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_counters_and_histograms),
        cmocka_unit_test(test_denials_and_rate_limit),
        cmocka_unit_test(test_tenant_series_are_bounded),
        cmocka_unit_test(test_pool_and_provisioning_metrics),
        cmocka_unit_test(test_openapi_describes_existing_routes),
        cmocka_unit_test(test_access_log_and_no_secrets),
        cmocka_unit_test(test_metrics_needs_a_token),
        cmocka_unit_test(test_public_routes_name_no_tenant),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
