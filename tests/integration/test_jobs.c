/*
 * test_jobs.c - tenant-scoped background jobs and the operator's analytics (issue 8):
 * audit-log retention per plan in every isolation, a job touching only its own tenant,
 * suspended and deleted tenants skipped, retries with backoff into the dead-letter state,
 * at-least-once after a lost worker, the usage roll-up, and GET /admin/analytics served
 * from the catalog's materialized views.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct td_server srv;
static PGconn *cat; /* superuser connection to the catalog */

static int setup(void **state)
{
    (void)state;
    if (td_server_start(&srv, NULL) < 0)
        return -1;
    cat = td_db(&srv, "postgres");
    return cat ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    PQfinish(cat);
    return td_server_stop(&srv);
}

static void exec_ok(PGconn *c, const char *sql, int n, const char *const *p)
{
    PGresult *r = td_sql(c, sql, n, p);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("sql failed: %s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

static long long sql_int(PGconn *c, const char *sql, int n, const char *const *p)
{
    char v[64];
    assert_true(td_sql_value(c, sql, n, p, v, sizeof(v)));
    return atoll(v);
}

/* Queue a job by hand (what an operator or another component does); id >= 37 bytes. */
static void enqueue(const char *tenant_id, const char *kind, const char *payload, int max_attempts,
                    char *id)
{
    char att[16];
    snprintf(att, sizeof(att), "%d", max_attempts);
    const char *p[4] = {tenant_id, kind, payload, att};
    assert_true(td_sql_value(cat,
                             "INSERT INTO tenantd.jobs (tenant_id, kind, payload, max_attempts) "
                             "VALUES ($1, $2, $3::jsonb, $4) RETURNING id",
                             4, p, id, 37));
}

/* Wait until job id reaches status (or any final status when status is NULL); returns the
 * final status in out. */
static void wait_job(const char *id, const char *status, char *out, size_t size, int timeout_s)
{
    const char *p[1] = {id};
    for (int i = 0; i < timeout_s * 10; i++) {
        assert_true(
            td_sql_value(cat, "SELECT status FROM tenantd.jobs WHERE id = $1", 1, p, out, size));
        if (status ? !strcmp(out, status)
                   : (!strcmp(out, "done") || !strcmp(out, "dead") || !strcmp(out, "skipped")))
            return;
        td_sleep_ms(100);
    }
    fail_msg("job %s still %s after %d s (wanted %s)", id, out, timeout_s,
             status ? status : "a final status");
}

/* Make the named schedule due now and wait until the jobs it queued are finished. */
static void run_schedule(const char *name)
{
    const char *p[1] = {name};
    long long before = sql_int(cat, "SELECT count(*) FROM tenantd.jobs WHERE kind = $1", 1, p);
    exec_ok(cat, "UPDATE tenantd.job_schedules SET next_run_at = now() WHERE name = $1", 1, p);
    for (int i = 0; i < 300; i++) {
        long long queued = sql_int(cat, "SELECT count(*) FROM tenantd.jobs WHERE kind = $1", 1, p);
        long long open = sql_int(cat,
                                 "SELECT count(*) FROM tenantd.jobs WHERE kind = $1 AND status "
                                 "IN ('queued', 'running')",
                                 1, p);
        if (queued > before && open == 0)
            return;
        td_sleep_ms(100);
    }
    fail_msg("schedule %s did not run within 30 s", name);
}

/* Storage of a tenant: the connection (catalog or its own database) and the table. */
struct storage {
    PGconn *c;
    char table[96];
    int own; /* c must be closed */
};

static void storage_open(const struct td_principal *t, const char *isolation, struct storage *s)
{
    char ident[40], db[48];
    td_storage_name(t->tenant_id, ident, sizeof(ident));
    s->own = !strcmp(isolation, "database");
    if (s->own) {
        snprintf(db, sizeof(db), "td_%s", ident + 2);
        s->c = td_db_in(&srv, db, "postgres");
    } else {
        s->c = cat;
    }
    assert_non_null(s->c);
    snprintf(s->table, sizeof(s->table), "%s.audit_logs",
             !strcmp(isolation, "pool") ? "pool" : ident);
}

static void storage_close(struct storage *s)
{
    if (s->own)
        PQfinish(s->c);
}

/* Add an audit entry `days` old to tenant t's storage, as its migration-time owner would. */
static void old_audit(struct storage *s, const char *tenant_id, int days)
{
    char sql[256], d[16];
    snprintf(d, sizeof(d), "%d", days);
    snprintf(sql, sizeof(sql),
             "INSERT INTO %s (tenant_id, action, entity_type, entity_id, created_at) VALUES "
             "($1, 'create', 'project', gen_random_uuid(), now() - $2::int * interval '1 day')",
             s->table);
    exec_ok(s->c, sql, 2, (const char *const[]){tenant_id, d});
}

/* Audit entries of tenant t older than `days` days (0: all). */
static long long audit_count(struct storage *s, const char *tenant_id, int days)
{
    char sql[256], d[16];
    snprintf(d, sizeof(d), "%d", days);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM %s WHERE tenant_id = $1 AND created_at <= now() - $2::int * "
             "interval '1 day'",
             s->table);
    return sql_int(s->c, sql, 2, (const char *const[]){tenant_id, d});
}

static void add_project(const struct td_principal *t, const char *name)
{
    struct td_resp r;
    char path[96], body[128];
    snprintf(path, sizeof(path), "/t/%s/projects", t->slug);
    snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
    td_call(&srv, "POST", path, t->token, body, &r);
    TD_ASSERT_STATUS(&r, 201);
    td_resp_free(&r);
}

/* ---- retention ----------------------------------------------------------------------- */

static void test_audit_retention_per_plan(void **state)
{
    static const struct {
        const char *slug, *plan, *iso;
        int kept_40, kept_100, kept_400; /* after retention: 40, 100, 400 days old */
    } cases[] = {
        {"jobs-free", "free", "pool", 0, 0, 0},         /* 30 days */
        {"jobs-starter", "starter", "pool", 1, 0, 0},   /* 90 days */
        {"jobs-pro", "pro", "schema", 1, 1, 0},         /* 365 days */
        {"jobs-ent", "enterprise", "database", 1, 1, 1} /* forever */
    };
    struct td_principal t[4];
    struct storage s[4];
    char email[64];
    (void)state;
    for (int i = 0; i < 4; i++) {
        snprintf(email, sizeof(email), "owner@%s.test", cases[i].slug);
        assert_int_equal(td_admin_create_tenant(&srv, cases[i].slug, cases[i].iso, cases[i].plan,
                                                email, "retention-pw-1", &t[i]),
                         201);
        add_project(&t[i], "fresh"); /* a fresh audit entry, which every plan keeps */
        storage_open(&t[i], cases[i].iso, &s[i]);
        old_audit(&s[i], t[i].tenant_id, 40);
        old_audit(&s[i], t[i].tenant_id, 100);
        old_audit(&s[i], t[i].tenant_id, 400);
    }
    run_schedule("audit_retention");
    for (int i = 0; i < 4; i++) {
        long long n40 = audit_count(&s[i], t[i].tenant_id, 40);
        long long n100 = audit_count(&s[i], t[i].tenant_id, 100);
        long long n400 = audit_count(&s[i], t[i].tenant_id, 400);
        /* counts are cumulative: older-than-40 includes the 100 and 400 day entries */
        assert_int_equal(n400, cases[i].kept_400);
        assert_int_equal(n100 - n400, cases[i].kept_100);
        assert_int_equal(n40 - n100, cases[i].kept_40);
        assert_true(audit_count(&s[i], t[i].tenant_id, 0) >= 1 + n40);
        storage_close(&s[i]);
    }
    /* the API still shows the fresh entry */
    struct td_resp r;
    td_call(&srv, "GET", "/t/jobs-free/audit-logs", t[0].token, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_true(json_array_size(json_object_get(r.json, "data")) >= 1);
    td_resp_free(&r);
}

/* A job runs in its tenant's context: a purge of everything in A leaves B's rows, in the
 * shared pool tables (RLS) and in a schema tenant alike. */
static void test_job_touches_only_its_tenant(void **state)
{
    struct td_principal a, b, c;
    struct storage sa, sb, sc;
    char id[40], st[16];
    (void)state;
    assert_int_equal(td_signup(&srv, "jobs-iso-a", "a@iso.test", "isolation-pw-a", &a), 201);
    assert_int_equal(td_signup(&srv, "jobs-iso-b", "b@iso.test", "isolation-pw-b", &b), 201);
    assert_int_equal(td_admin_create_tenant(&srv, "jobs-iso-c", "schema", NULL, "c@iso.test",
                                            "isolation-pw-c", &c),
                     201);
    add_project(&a, "a1");
    add_project(&b, "b1");
    add_project(&c, "c1");
    storage_open(&a, "pool", &sa);
    storage_open(&b, "pool", &sb);
    storage_open(&c, "schema", &sc);
    long long b_before = audit_count(&sb, b.tenant_id, 0);
    long long c_before = audit_count(&sc, c.tenant_id, 0);
    assert_true(audit_count(&sa, a.tenant_id, 0) >= 1 && b_before >= 1 && c_before >= 1);

    enqueue(a.tenant_id, "audit_retention", "{\"days\":0}", 3, id);
    wait_job(id, NULL, st, sizeof(st), 30);
    assert_string_equal(st, "done");
    assert_int_equal(audit_count(&sa, a.tenant_id, 0), 0);
    assert_int_equal(audit_count(&sb, b.tenant_id, 0), b_before);
    assert_int_equal(audit_count(&sc, c.tenant_id, 0), c_before);

    enqueue(c.tenant_id, "audit_retention", "{\"days\":0}", 3, id);
    wait_job(id, NULL, st, sizeof(st), 30);
    assert_string_equal(st, "done");
    assert_int_equal(audit_count(&sc, c.tenant_id, 0), 0);
    assert_int_equal(audit_count(&sb, b.tenant_id, 0), b_before);
    storage_close(&sa);
    storage_close(&sb);
    storage_close(&sc);
}

static void test_suspended_and_deleted_tenants_are_skipped(void **state)
{
    struct td_principal s, d;
    struct storage ss;
    struct td_resp r;
    char id_s[40], id_d[40], st[16];
    (void)state;
    assert_int_equal(td_signup(&srv, "jobs-susp", "s@susp.test", "suspended-pw-1", &s), 201);
    assert_int_equal(td_signup(&srv, "jobs-gone", "g@gone.test", "deleted-pw-1", &d), 201);
    add_project(&s, "s1");
    storage_open(&s, "pool", &ss);
    long long before = audit_count(&ss, s.tenant_id, 0);

    td_admin(&srv, "PATCH", "/admin/tenants/jobs-susp", "{\"status\":\"suspended\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    td_admin(&srv, "DELETE", "/admin/tenants/jobs-gone?confirm=jobs-gone", NULL, &r);
    TD_ASSERT_STATUS(&r, 204);
    td_resp_free(&r);

    enqueue(s.tenant_id, "audit_retention", "{\"days\":0}", 3, id_s);
    enqueue(d.tenant_id, "audit_retention", "{\"days\":0}", 3, id_d);
    wait_job(id_s, NULL, st, sizeof(st), 30);
    assert_string_equal(st, "skipped");
    wait_job(id_d, NULL, st, sizeof(st), 30);
    assert_string_equal(st, "skipped");
    char err[128];
    assert_true(td_sql_value(cat, "SELECT last_error FROM tenantd.jobs WHERE id = $1", 1,
                             (const char *const[]){id_s}, err, sizeof(err)));
    assert_non_null(strstr(err, "suspended"));
    assert_true(td_sql_value(cat, "SELECT last_error FROM tenantd.jobs WHERE id = $1", 1,
                             (const char *const[]){id_d}, err, sizeof(err)));
    assert_non_null(strstr(err, "no longer exists"));
    /* nothing ran in the suspended tenant's storage */
    assert_int_equal(audit_count(&ss, s.tenant_id, 0), before);
    storage_close(&ss);

    /* the scheduler does not even queue retention for a suspended tenant */
    run_schedule("audit_retention");
    assert_int_equal(sql_int(cat,
                             "SELECT count(*) FROM tenantd.jobs WHERE tenant_id = $1 AND kind = "
                             "'audit_retention' AND id <> $2",
                             2, (const char *const[]){s.tenant_id, id_s}),
                     0);
}

/* ---- failure handling ---------------------------------------------------------------- */

static double seconds_until_run(const char *id)
{
    char v[64];
    assert_true(td_sql_value(cat,
                             "SELECT extract(epoch FROM run_at - now()) FROM tenantd.jobs "
                             "WHERE id = $1",
                             1, (const char *const[]){id}, v, sizeof(v)));
    return atof(v);
}

/* Wait for the job to be back in the queue after attempt n; returns the delay it got. */
static double wait_retry(const char *id, int n)
{
    char att[16];
    snprintf(att, sizeof(att), "%d", n);
    for (int i = 0; i < 300; i++) {
        if (sql_int(cat,
                    "SELECT count(*) FROM tenantd.jobs WHERE id = $1 AND attempts = $2::int AND "
                    "status = 'queued'",
                    2, (const char *const[]){id, att}) == 1)
            return seconds_until_run(id);
        td_sleep_ms(50);
    }
    fail_msg("job %s never came back after attempt %d", id, n);
    return -1;
}

static void test_retries_back_off_then_dead_letter(void **state)
{
    char id[40], st[16], err[128];
    (void)state;
    /* a kind this version does not know: retried (a newer instance may know it) */
    enqueue(NULL, "no_such_kind", "{}", 3, id);
    double d1 = wait_retry(id, 1);
    double d2 = wait_retry(id, 2);
    /* 2 s then 4 s, each plus up to 25 % jitter, minus the time it took us to look */
    assert_true(d1 > 1.0 && d1 <= 2.6);
    assert_true(d2 > 2.5 && d2 <= 5.1);
    wait_job(id, NULL, st, sizeof(st), 30);
    assert_string_equal(st, "dead");
    assert_int_equal(sql_int(cat, "SELECT attempts FROM tenantd.jobs WHERE id = $1", 1,
                             (const char *const[]){id}),
                     3);
    assert_true(td_sql_value(cat, "SELECT last_error FROM tenantd.jobs WHERE id = $1", 1,
                             (const char *const[]){id}, err, sizeof(err)));
    assert_non_null(strstr(err, "unknown job kind"));

    /* a bad payload fails every attempt too, and max_attempts 1 means no retry */
    struct td_principal t;
    assert_int_equal(td_signup(&srv, "jobs-bad", "x@bad.test", "bad-payload-pw", &t), 201);
    enqueue(t.tenant_id, "audit_retention", "{\"days\":\"soon\"}", 1, id);
    wait_job(id, NULL, st, sizeof(st), 30);
    assert_string_equal(st, "dead");
    assert_true(td_sql_value(cat, "SELECT last_error FROM tenantd.jobs WHERE id = $1", 1,
                             (const char *const[]){id}, err, sizeof(err)));
    assert_non_null(strstr(err, "days"));
}

/* A worker that died holding a job: the job runs again once the lease has expired (at
 * least once), unless that was its last attempt (then it is dead). */
static void test_lost_worker_job_runs_again(void **state)
{
    struct td_principal t;
    char id[40], id2[40], st[16];
    (void)state;
    assert_int_equal(td_signup(&srv, "jobs-lost", "l@lost.test", "lost-worker-pw", &t), 201);
    /* claimed an hour ago by a worker that is gone: attempt 1 of 3, and attempt 2 of 2 */
    static const char sql[] =
        "INSERT INTO tenantd.jobs (tenant_id, kind, attempts, max_attempts, status, locked_by, "
        "locked_at) VALUES ($1, 'audit_retention', $2::int, $3::int, 'running', 'gone:1:0', "
        "now() - interval '1 hour') RETURNING id";
    assert_true(td_sql_value(cat, sql, 3, (const char *const[]){t.tenant_id, "1", "3"}, id, 37));
    assert_true(td_sql_value(cat, sql, 3, (const char *const[]){t.tenant_id, "2", "2"}, id2, 37));
    wait_job(id, NULL, st, sizeof(st), 30);
    assert_string_equal(st, "done");
    assert_int_equal(sql_int(cat, "SELECT attempts FROM tenantd.jobs WHERE id = $1", 1,
                             (const char *const[]){id}),
                     2);
    wait_job(id2, NULL, st, sizeof(st), 30);
    assert_string_equal(st, "dead");
}

/* ---- analytics and usage ------------------------------------------------------------- */

static json_t *analytics_tenant(json_t *doc, const char *slug)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(doc, "tenants"), i, t)
    {
        if (td_jstr(t, "slug") && !strcmp(td_jstr(t, "slug"), slug))
            return t;
    }
    return NULL;
}

static json_int_t jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static void test_analytics_from_the_catalog(void **state)
{
    struct td_principal a, b;
    struct td_resp r;
    char tok[2048];
    (void)state;
    td_http(&srv, "GET", "/admin/analytics", NULL, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
    td_resp_free(&r);
    td_admin(&srv, "GET", "/admin/analytics?limit=0", NULL, &r);
    TD_ASSERT_PROBLEM(&r, 400, "bad_request");
    td_resp_free(&r);

    assert_int_equal(td_signup(&srv, "jobs-an-a", "a@an.test", "analytics-pw-a", &a), 201);
    assert_int_equal(td_admin_create_tenant(&srv, "jobs-an-b", "schema", "pro", "b@an.test",
                                            "analytics-pw-b", &b),
                     201);
    td_call(&srv, "POST", "/t/jobs-an-a/users", a.token,
            "{\"email\":\"m@an.test\",\"password\":\"member-pw-1\",\"name\":\"M\","
            "\"role\":\"member\"}",
            &r);
    TD_ASSERT_STATUS(&r, 201);
    td_resp_free(&r);
    add_project(&a, "a1");
    add_project(&a, "a2");
    add_project(&b, "b1");
    assert_int_equal(td_login(&srv, "jobs-an-b", "b@an.test", "analytics-pw-b", tok, sizeof(tok)),
                     200);
    td_sleep_ms(2500); /* API-call counters reach the catalog about once a second */

    run_schedule("analytics_refresh");
    td_admin(&srv, "GET", "/admin/analytics?limit=1000", NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    json_t *ta = analytics_tenant(r.json, "jobs-an-a");
    json_t *tb = analytics_tenant(r.json, "jobs-an-b");
    assert_non_null(ta);
    assert_non_null(tb);
    assert_int_equal(jint(ta, "users"), 2);
    assert_int_equal(jint(ta, "projects"), 2);
    assert_int_equal(jint(tb, "users"), 1);
    assert_int_equal(jint(tb, "projects"), 1);
    assert_string_equal(td_jstr(tb, "plan"), "pro");
    assert_string_equal(td_jstr(tb, "isolation"), "schema");
    assert_true(jint(ta, "api_calls_month") >= 3); /* users + two projects */
    assert_true(td_parse_time(td_jstr(r.json, "refreshed_at")) > 0);

    /* tenants by plan and status agree with the catalog */
    long long pro_active = sql_int(cat,
                                   "SELECT count(*) FROM tenantd.tenants WHERE plan = 'pro' AND "
                                   "status = 'active'",
                                   0, NULL);
    size_t i;
    json_t *g;
    int found = 0;
    json_int_t sum = 0;
    json_array_foreach(json_object_get(r.json, "by_plan_status"), i, g)
    {
        sum += jint(g, "tenants");
        if (!strcmp(td_jstr(g, "plan"), "pro") && !strcmp(td_jstr(g, "status"), "active")) {
            assert_int_equal(jint(g, "tenants"), pro_active);
            found = 1;
        }
    }
    assert_true(found);
    assert_int_equal(sum, jint(r.json, "tenants_total"));
    assert_int_equal(jint(r.json, "tenants_total"),
                     sql_int(cat, "SELECT count(*) FROM tenantd.tenants", 0, NULL));
    /* API calls of this month */
    json_t *m = json_array_get(json_object_get(r.json, "api_calls_by_month"), 0);
    assert_non_null(m);
    char month[16];
    time_t now = time(NULL);
    strftime(month, sizeof(month), "%Y-%m", gmtime(&now));
    assert_string_equal(td_jstr(m, "month"), month);
    assert_true(jint(m, "api_calls") >= jint(ta, "api_calls_month"));
    td_resp_free(&r);

    /* the request path reads the views only: a new project shows after the next refresh */
    add_project(&a, "a3");
    td_admin(&srv, "GET", "/admin/analytics?limit=1000", NULL, &r);
    assert_int_equal(jint(analytics_tenant(r.json, "jobs-an-a"), "projects"), 2);
    td_resp_free(&r);
    run_schedule("analytics_refresh");
    td_admin(&srv, "GET", "/admin/analytics?limit=1000", NULL, &r);
    assert_int_equal(jint(analytics_tenant(r.json, "jobs-an-a"), "projects"), 3);
    td_resp_free(&r);
}

static void test_usage_rollup_outlives_the_tenant(void **state)
{
    struct td_principal t;
    struct td_resp r;
    (void)state;
    assert_int_equal(td_signup(&srv, "jobs-roll", "r@roll.test", "rollup-pw-1", &t), 201);
    /* last month's counters, as the instances flushed them */
    exec_ok(cat,
            "INSERT INTO tenantd.usage (tenant_id, month, api_calls) VALUES ($1, (date_trunc("
            "'month', now() AT TIME ZONE 'UTC') - interval '1 month')::date, 1234)",
            1, (const char *const[]){t.tenant_id});
    run_schedule("usage_rollup");
    assert_int_equal(sql_int(cat,
                             "SELECT api_calls FROM tenantd.usage_monthly WHERE tenant_id = $1 "
                             "AND slug = 'jobs-roll' AND plan = 'free'",
                             1, (const char *const[]){t.tenant_id}),
                     1234);
    /* the tenant goes; its closed month stays in the record and in the analytics */
    td_admin(&srv, "DELETE", "/admin/tenants/jobs-roll?confirm=jobs-roll", NULL, &r);
    TD_ASSERT_STATUS(&r, 204);
    td_resp_free(&r);
    run_schedule("analytics_refresh");
    td_admin(&srv, "GET", "/admin/analytics", NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_null(analytics_tenant(r.json, "jobs-roll"));
    char last[16];
    assert_true(td_sql_value(cat,
                             "SELECT to_char(now() AT TIME ZONE 'UTC' - interval '1 month', "
                             "'YYYY-MM')",
                             0, NULL, last, sizeof(last)));
    size_t i;
    json_t *m;
    int found = 0;
    json_array_foreach(json_object_get(r.json, "api_calls_by_month"), i, m)
    {
        if (!strcmp(td_jstr(m, "month"), last)) {
            assert_true(jint(m, "api_calls") >= 1234);
            found = 1;
        }
    }
    assert_true(found);
    td_resp_free(&r);
}

/* ---- logs and metrics of the jobs ------------------------------------------------------- */

static void test_jobs_metrics_and_quiet_log(void **state)
{
    struct td_resp r;
    (void)state;
    td_admin(&srv, "GET", "/metrics", NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    long long done = -1, dead = -1, skipped = -1;
    const char *p = strstr(r.body, "tenantd_jobs_total{result=\"done\"} ");
    assert_non_null(p);
    done = atoll(p + strlen("tenantd_jobs_total{result=\"done\"} "));
    p = strstr(r.body, "tenantd_jobs_total{result=\"dead\"} ");
    assert_non_null(p);
    dead = atoll(p + strlen("tenantd_jobs_total{result=\"dead\"} "));
    p = strstr(r.body, "tenantd_jobs_total{result=\"skipped\"} ");
    assert_non_null(p);
    skipped = atoll(p + strlen("tenantd_jobs_total{result=\"skipped\"} "));
    assert_true(done >= 5);
    assert_true(dead >= 3);
    assert_true(skipped >= 2);
    td_resp_free(&r);

    /* TENANTD_LOG_LEVEL=warn (the harness's default): no access log lines, no info */
    FILE *f = fopen(srv.log_path, "r");
    assert_non_null(f);
    char line[4096];
    int warned = 0;
    while (fgets(line, sizeof(line), f)) {
        assert_null(strstr(line, "\"request_id\""));
        assert_null(strstr(line, " info: "));
        if (strstr(line, " warn: jobs:"))
            warned = 1; /* the dead-lettered jobs were reported */
    }
    fclose(f);
    assert_true(warned);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_audit_retention_per_plan),
        cmocka_unit_test(test_job_touches_only_its_tenant),
        cmocka_unit_test(test_suspended_and_deleted_tenants_are_skipped),
        cmocka_unit_test(test_retries_back_off_then_dead_letter),
        cmocka_unit_test(test_lost_worker_job_runs_again),
        cmocka_unit_test(test_analytics_from_the_catalog),
        cmocka_unit_test(test_usage_rollup_outlives_the_tenant),
        cmocka_unit_test(test_jobs_metrics_and_quiet_log),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
