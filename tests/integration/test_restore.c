/*
 * test_restore.c - continuous backup and per-tenant point-in-time restore and clone
 * (SPEC §5 restore window, §6 restore, clone, jobs): rows written, the moment noted, rows
 * changed and deleted, the tenant restored to the moment and every row of every tenant
 * table compared (through the export, which covers them all), another tenant's later writes
 * kept; a deleted tenant brought back; a clone beside its original; the refusals, which
 * change nothing (a moment before the oldest backup too, API and CLI); tenants on a server
 * given by URL restored and cloned. One tenantd with backups on (the harness turns them off
 * elsewhere) and a second PostgreSQL server of the test's own that archives into tenantd's
 * repository as its operator would set it up.
 */
#include "harness.h"
#include "pgextra.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static struct td_server srv;
static struct td_pg second;   /* a server given by URL, archiving as its operator sets it up */
static char servers_env[256]; /* TENANTD_DB_SERVERS naming it */

static json_t *ready_backup(void)
{
    struct td_resp r;
    td_http(&srv, "GET", "/ready", NULL, NULL, &r);
    json_t *b = r.status == 200 ? json_incref(json_object_get(r.json, "backup")) : NULL;
    td_resp_free(&r);
    return b;
}

static int setup(void **state)
{
    (void)state;
    char *env = servers_env, ci[200];
    /* archive_command is set once tenantd has written the stanza (td_pg_archive_to) */
    if (td_pg_start_conf(&second, 5434, "archive_mode = on\nwal_level = replica\n") < 0)
        return -1;
    td_pg_conninfo(&second, "postgres", ci, sizeof(ci));
    snprintf(env, sizeof(servers_env), "TENANTD_DB_SERVERS=second=%s", ci);
    const char *extra[] = {"TENANTD_BACKUP=1", env, NULL};
    if (td_server_start(&srv, extra) != 0)
        return -1;
    /* the first base backup is taken in the background at start */
    for (int i = 0; i < 600; i++) {
        json_t *b = ready_backup();
        int done = b && json_is_string(json_object_get(b, "last_backup_at"));
        json_decref(b);
        if (done) {
            td_sleep_ms(1100); /* a moment must lie a whole second past the backup's end */
            return 0;
        }
        td_sleep_ms(100);
    }
    fprintf(stderr, "no base backup within 60 s\n");
    td_server_print_log(&srv);
    return -1;
}

static int teardown(void **state)
{
    (void)state;
    int rc = td_server_stop(&srv);
    td_pg_stop(&second);
    return rc;
}

/* A tenant on server, with its owner logged in when owner_email is given. */
static void make_tenant_on(const char *server, const char *slug, const char *iso, const char *plan,
                           const char *owner_email, struct td_principal *p)
{
    struct td_resp r;
    json_t *b = json_pack("{s:s, s:s, s:s, s:s}", "slug", slug, "name", slug, "isolation", iso,
                          "server", server);
    if (plan)
        json_object_set_new(b, "plan", json_string(plan));
    if (owner_email)
        json_object_set_new(b, "owner",
                            json_pack("{s:s, s:s, s:s}", "email", owner_email, "password",
                                      "password1", "name", "Owner"));
    char *text = json_dumps(b, JSON_COMPACT);
    td_admin(&srv, "POST", "/admin/tenants", text, &r);
    TD_ASSERT_STATUS(&r, 201);
    memset(p, 0, sizeof(*p));
    snprintf(p->slug, sizeof(p->slug), "%s", slug);
    snprintf(p->tenant_id, sizeof(p->tenant_id), "%s", td_jstr(r.json, "id"));
    td_resp_free(&r);
    free(text);
    json_decref(b);
    if (owner_email)
        assert_int_equal(td_login(&srv, slug, owner_email, "password1", p->token, sizeof(p->token)),
                         200);
}

/* A tenant on the embedded cluster ("main": new tenants would otherwise spread over both
 * servers). */
static void make_tenant(const char *slug, const char *iso, const char *plan,
                        const char *owner_email, struct td_principal *p)
{
    make_tenant_on("main", slug, iso, plan, owner_email, p);
}

/* The rows of the tenant's export (header left out), one string: every table, every
 * column, in the export's fixed order. */
static char *rows_of(const char *slug)
{
    struct td_resp r;
    char path[128];
    snprintf(path, sizeof(path), "/admin/tenants/%s/export", slug);
    td_admin(&srv, "GET", path, NULL, &r);
    assert_int_equal(r.status, 200);
    char *nl = strchr(r.body, '\n');
    assert_non_null(nl);
    char *rows = strdup(nl + 1);
    td_resp_free(&r);
    return rows;
}

static void now_rfc3339(char *out, size_t size)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, size - n, ".%06ldZ", (long)tv.tv_usec);
}

static void add_project(const struct td_principal *p, const char *name, char *id, size_t size)
{
    struct td_resp r;
    char path[96], body[128];
    snprintf(path, sizeof(path), "/t/%s/projects", p->slug);
    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"description\":\"d of %s\"}", name, name);
    td_call(&srv, "POST", path, p->token, body, &r);
    TD_ASSERT_STATUS(&r, 201);
    if (id)
        snprintf(id, size, "%s", td_jstr(r.json, "id"));
    td_resp_free(&r);
}

/* Wait for the job to finish; returns its final JSON (caller json_decref). */
static json_t *wait_job(const char *id)
{
    char path[96];
    snprintf(path, sizeof(path), "/admin/jobs/%s", id);
    for (int i = 0; i < 1800; i++) {
        struct td_resp r;
        td_admin(&srv, "GET", path, NULL, &r);
        assert_int_equal(r.status, 200);
        const char *st = td_jstr(r.json, "status");
        assert_non_null(st);
        if (!strcmp(st, "succeeded") || !strcmp(st, "failed")) {
            json_t *j = json_incref(r.json);
            td_resp_free(&r);
            if (!strcmp(st, "failed"))
                fprintf(stderr, "job failed: %s\n", json_dumps(j, JSON_COMPACT));
            return j;
        }
        assert_true(!strcmp(st, "queued") || !strcmp(st, "running"));
        td_resp_free(&r);
        td_sleep_ms(100);
    }
    fail_msg("job %s did not finish in 180 s", id);
    return NULL;
}

/* POST path with body as the operator; expects 202 and waits for success. Returns the
 * resulting tenant's slug in slug_out. */
static void run_job(const char *path, const char *body, char *slug_out, size_t size)
{
    struct td_resp r;
    td_admin(&srv, "POST", path, body, &r);
    TD_ASSERT_STATUS(&r, 202);
    assert_string_equal(td_jstr(r.json, "status"), "queued");
    json_t *j = wait_job(td_jstr(r.json, "id"));
    td_resp_free(&r);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "succeeded");
    assert_true(json_is_null(json_object_get(j, "error")));
    assert_true(json_real_value(json_object_get(j, "progress")) == 1.0);
    assert_non_null(json_string_value(json_object_get(j, "finished_at")));
    json_t *t = json_object_get(j, "result");
    assert_true(json_is_object(t));
    if (slug_out)
        snprintf(slug_out, size, "%s", json_string_value(json_object_get(t, "slug")));
    json_decref(j);
}

/* Write, note, change, restore in place, compare; the other tenant keeps its later
 * writes and the owner's token still works. */
static void restore_in_place(const char *iso)
{
    struct td_principal a, b;
    char slug[32], other[32], at[40], pid[64], path[160], body[128];
    struct td_resp r;
    snprintf(slug, sizeof(slug), "rip-%s", iso);
    snprintf(other, sizeof(other), "rip-other-%s", iso);
    make_tenant(slug, iso, "enterprise", "o@x.io", &a);
    make_tenant(other, "pool", NULL, "o@y.io", &b);
    add_project(&a, "kept", pid, sizeof(pid));
    add_project(&a, "changed", NULL, 0);
    td_add_user(&srv, slug, a.token, "m@x.io", "password1", "member", NULL, 0);
    char *before = rows_of(slug);
    td_sleep_ms(20);
    now_rfc3339(at, sizeof(at));
    td_sleep_ms(20);
    /* after the moment: a change, a delete, a new row, a new user; the other tenant writes */
    snprintf(path, sizeof(path), "/t/%s/projects/%s", slug, pid);
    td_call(&srv, "PATCH", path, a.token, "{\"name\":\"renamed\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    add_project(&a, "later", NULL, 0);
    td_add_user(&srv, slug, a.token, "late@x.io", "password1", "member", NULL, 0);
    char late[2048];
    assert_int_equal(td_login(&srv, slug, "late@x.io", "password1", late, sizeof(late)), 200);
    snprintf(path, sizeof(path), "/t/%s/me", slug);
    td_call(&srv, "GET", path, late, NULL, &r); /* its check is now remembered */
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    add_project(&b, "other-later", NULL, 0);
    char *other_before = rows_of(other);
    char *changed = rows_of(slug);
    assert_string_not_equal(before, changed);

    snprintf(path, sizeof(path), "/admin/tenants/%s/restore?confirm=%s", slug, slug);
    snprintf(body, sizeof(body), "{\"at\":\"%s\"}", at);
    run_job(path, body, NULL, 0);

    char *after = rows_of(slug);
    assert_string_equal(before, after);
    char *other_after = rows_of(other);
    assert_string_equal(other_before, other_after);
    assert_non_null(strstr(other_after, "other-later"));
    /* tokens stay valid only for users that exist in the restored rows */
    snprintf(path, sizeof(path), "/t/%s/me", slug);
    td_call(&srv, "GET", path, a.token, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    td_call(&srv, "GET", path, late, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
    td_resp_free(&r);

    /* the operator action is on record, and the replaced rows were kept as an export */
    PGconn *c = td_db(&srv, "postgres");
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM tenantd.operator_actions WHERE tenant_id = '%s' AND action = "
             "'restore' AND status = 'succeeded' AND actor <> '' AND abs(extract(epoch FROM "
             "target_at - '%s'::timestamptz)) < 0.001",
             a.tenant_id, at);
    assert_int_equal(td_sql_count(c, sql), 1);
    PQfinish(c);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "ls %s/backups/exports/replaced-%s-* >/dev/null 2>&1", srv.dir,
             a.tenant_id);
    assert_int_equal(system(cmd), 0);
    free(before);
    free(changed);
    free(after);
    free(other_before);
    free(other_after);
}

static void test_restore_pool(void **state)
{
    (void)state;
    restore_in_place("pool");
}

static void test_restore_schema(void **state)
{
    (void)state;
    restore_in_place("schema");
}

static void test_restore_database(void **state)
{
    (void)state;
    restore_in_place("database");
}

/* A deleted tenant comes back (by its old slug) with every row it had at the moment. */
static void deleted_back(const char *iso)
{
    struct td_principal a;
    char slug[32], at[40], path[160], body[128];
    struct td_resp r;
    snprintf(slug, sizeof(slug), "gone-%s", iso);
    make_tenant(slug, iso, "pro", "o@g.io", &a);
    add_project(&a, "one", NULL, 0);
    add_project(&a, "two", NULL, 0);
    char *before = rows_of(slug);
    td_sleep_ms(20);
    now_rfc3339(at, sizeof(at));
    td_sleep_ms(20);
    add_project(&a, "three", NULL, 0);
    snprintf(path, sizeof(path), "/admin/tenants/%s?confirm=%s", slug, slug);
    td_admin(&srv, "DELETE", path, NULL, &r);
    TD_ASSERT_STATUS(&r, 204);
    td_resp_free(&r);

    snprintf(path, sizeof(path), "/admin/tenants/%s/restore?confirm=%s", slug, slug);
    snprintf(body, sizeof(body), "{\"at\":\"%s\"}", at);
    char got[48];
    run_job(path, body, got, sizeof(got));
    assert_string_equal(got, slug);
    char *after = rows_of(slug);
    assert_string_equal(before, after);
    assert_int_equal(td_login(&srv, slug, "o@g.io", "password1", NULL, 0), 200);
    /* back under its old id: a token issued before the deletion works again */
    snprintf(path, sizeof(path), "/admin/tenants/%s", slug);
    td_admin(&srv, "GET", path, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "id"), a.tenant_id);
    td_resp_free(&r);
    snprintf(path, sizeof(path), "/t/%s/me", slug);
    td_call(&srv, "GET", path, a.token, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    free(before);
    free(after);
}

static void test_deleted_tenant_pool(void **state)
{
    (void)state;
    deleted_back("pool");
}

static void test_deleted_tenant_schema(void **state)
{
    (void)state;
    deleted_back("schema");
}

/* A clone (as of now) and a restore under a new slug, beside the original. */
static void test_clone_beside_original(void **state)
{
    (void)state;
    struct td_principal a;
    char at[40], body[128], got[48];
    make_tenant("orig-db", "database", "enterprise", "o@c.io", &a);
    add_project(&a, "first", NULL, 0);
    td_sleep_ms(20);
    now_rfc3339(at, sizeof(at));
    td_sleep_ms(20);
    add_project(&a, "second", NULL, 0);
    char *now_rows = rows_of("orig-db");

    run_job("/admin/tenants/orig-db/clone", "{\"slug\":\"orig-db-copy\"}", got, sizeof(got));
    assert_string_equal(got, "orig-db-copy");
    char *copy = rows_of("orig-db-copy");
    assert_string_equal(now_rows, copy);
    assert_int_equal(td_login(&srv, "orig-db-copy", "o@c.io", "password1", NULL, 0), 200);

    snprintf(body, sizeof(body), "{\"at\":\"%s\",\"slug\":\"orig-db-then\"}", at);
    run_job("/admin/tenants/orig-db/restore", body, got, sizeof(got));
    char *then = rows_of("orig-db-then");
    assert_null(strstr(then, "\"second\""));
    assert_non_null(strstr(then, "\"first\""));
    char *orig = rows_of("orig-db");
    assert_string_equal(now_rows, orig);
    free(now_rows);
    free(copy);
    free(then);
    free(orig);
}

static void refused(const char *path, const char *body, long status, const char *code)
{
    struct td_resp r;
    td_admin(&srv, "POST", path, body, &r);
    TD_ASSERT_PROBLEM(&r, status, code);
    td_resp_free(&r);
}

/* A tenant that had a database of its own at the moment and was moved to the pool since:
 * the copy of only the catalog's database does not hold its rows, so every database is
 * copied, and its rows come back into the pool. */
static void test_restore_after_move(void **state)
{
    (void)state;
    struct td_principal a;
    char at[40], body[128];
    struct td_resp r;
    make_tenant("moved", "database", "enterprise", "o@m.io", &a);
    add_project(&a, "before", NULL, 0);
    char *before = rows_of("moved");
    /* a base backup that holds the tenant's database (one made after the backup is created
     * by WAL replay and would be in any copy) */
    char conf[160];
    snprintf(conf, sizeof(conf), "--config=%s/backups/pgbackrest.conf", srv.dir);
    char *argv[] = {"runuser",          "-u",          "postgres", "--", "pgbackrest", conf,
                    "--stanza=tenantd", "--type=incr", "backup",   NULL};
    assert_int_equal(td_run_quiet(argv), 0);
    td_sleep_ms(1100); /* a moment a whole second after that backup */
    now_rfc3339(at, sizeof(at));
    td_sleep_ms(20);
    td_admin(&srv, "POST", "/admin/tenants/moved/move", "{\"isolation\":\"pool\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    add_project(&a, "after", NULL, 0);
    snprintf(body, sizeof(body), "{\"at\":\"%s\"}", at);
    run_job("/admin/tenants/moved/restore?confirm=moved", body, NULL, 0);
    char *after = rows_of("moved");
    assert_string_equal(before, after);
    free(before);
    free(after);
}

/* A pool tenant's clone shares the pool tables with its original: row keys are
 * (tenant_id, id), so the same row ids live side by side. */
static void test_clone_pool(void **state)
{
    (void)state;
    struct td_principal a;
    char got[48];
    make_tenant("orig-pool", "pool", "starter", "o@p.io", &a);
    add_project(&a, "first", NULL, 0);
    add_project(&a, "second", NULL, 0);
    char *rows = rows_of("orig-pool");
    run_job("/admin/tenants/orig-pool/clone", "{\"slug\":\"orig-pool-copy\"}", got, sizeof(got));
    char *copy = rows_of("orig-pool-copy");
    assert_string_equal(rows, copy);
    char *orig = rows_of("orig-pool");
    assert_string_equal(rows, orig);
    assert_int_equal(td_login(&srv, "orig-pool-copy", "o@p.io", "password1", NULL, 0), 200);
    free(rows);
    free(copy);
    free(orig);
}

/* Every refusal is a 4xx problem and queues nothing. */
/* Restoring "refuse" (a free tenant, 1-day window, made to be born three days ago) to a
 * moment outside its window, then to one inside it but before the oldest base backup: the
 * detail names the window, then the oldest moment available. */
static void refuse_old_moments(PGconn *c)
{
    static const struct {
        long ago;
        const char *detail;
    } cases[] = {{2 * 86400, "1 day"}, {3600, "the oldest moment available is 20"}};
    char past[40], body[128];
    PQclear(td_sql(c,
                   "UPDATE tenantd.tenants SET created_at = now() - interval '3 days' WHERE "
                   "slug = 'refuse'",
                   0, NULL));
    for (int i = 0; i < 2; i++) {
        struct td_resp r;
        struct tm tm;
        time_t t = time(NULL) - cases[i].ago;
        gmtime_r(&t, &tm);
        strftime(past, sizeof(past), "%Y-%m-%dT%H:%M:%SZ", &tm);
        snprintf(body, sizeof(body), "{\"at\":\"%s\"}", past);
        td_admin(&srv, "POST", "/admin/tenants/refuse/restore?confirm=refuse", body, &r);
        TD_ASSERT_PROBLEM(&r, 400, "validation_failed");
        assert_non_null(strstr(td_jstr(r.json, "detail"), cases[i].detail));
        td_resp_free(&r);
    }
}

static void test_refusals(void **state)
{
    (void)state;
    struct td_principal a, other;
    char body[128], past[40];
    make_tenant("refuse", "schema", NULL, "o@r.io", &a);
    make_tenant("refuse-taken", "pool", NULL, NULL, &other);
    add_project(&a, "p", NULL, 0);
    char *before = rows_of("refuse");
    PGconn *c = td_db(&srv, "postgres");
    long long jobs0 = td_sql_count(c, "SELECT count(*) FROM tenantd.jobs");

    refused("/admin/tenants/refuse/restore?confirm=refuse", "{\"at\":\"2999-01-01T00:00:00Z\"}",
            400, "validation_failed");
    refused("/admin/tenants/refuse/restore?confirm=refuse", "{\"at\":\"2001-01-01T00:00:00Z\"}",
            400, "validation_failed");
    refused("/admin/tenants/refuse/restore?confirm=refuse", "{\"at\":\"yesterday\"}", 400,
            "validation_failed");
    refused("/admin/tenants/refuse/restore?confirm=refuse", "{}", 400, "validation_failed");
    refused("/admin/tenants/refuse/restore?confirm=refuse", "{\"at\":1}", 400, "validation_failed");
    refused("/admin/tenants/refuse/restore?confirm=refuse", "[]", 400, "validation_failed");
    now_rfc3339(past, sizeof(past));
    snprintf(body, sizeof(body), "{\"at\":\"%s\"}", past);
    refused("/admin/tenants/refuse/restore", body, 400, "bad_request");
    refused("/admin/tenants/refuse/restore?confirm=refuse-taken", body, 400, "bad_request");
    snprintf(body, sizeof(body), "{\"at\":\"%s\",\"slug\":\"refuse-taken\"}", past);
    refused("/admin/tenants/refuse/restore", body, 409, "conflict");
    refused("/admin/tenants/refuse/clone", "{\"slug\":\"refuse-taken\"}", 409, "conflict");
    refused("/admin/tenants/refuse/clone", "{\"slug\":\"Bad Slug\"}", 400, "validation_failed");
    refused("/admin/tenants/refuse/clone", "{}", 400, "validation_failed");
    refused("/admin/tenants/no-such-tenant/restore?confirm=no-such-tenant", body, 404,
            "tenant_not_found");
    refused("/admin/tenants/no-such-tenant/clone", "{\"slug\":\"fresh-slug\"}", 404,
            "tenant_not_found");

    refuse_old_moments(c);
    struct td_resp r;
    td_admin(&srv, "GET", "/admin/jobs/00000000-0000-4000-8000-000000000000", NULL, &r);
    TD_ASSERT_PROBLEM(&r, 404, "not_found");
    td_resp_free(&r);
    td_admin(&srv, "GET", "/admin/jobs/not-a-uuid", NULL, &r);
    TD_ASSERT_PROBLEM(&r, 404, "not_found");
    td_resp_free(&r);

    assert_int_equal(td_sql_count(c, "SELECT count(*) FROM tenantd.jobs"), jobs0);
    assert_int_equal(td_sql_count(c, "SELECT count(*) FROM tenantd.operator_actions WHERE "
                                     "tenant_slug = 'refuse'"),
                     0);
    PQfinish(c);
    char *after = rows_of("refuse");
    assert_string_equal(before, after);
    free(before);
    free(after);
}

/* Tenants on a server given by URL, whose operator archives it into tenantd's repository
 * (stanza "second"): one per isolation written, the moment noted, changed, restored in place
 * and compared; a tenant written meanwhile keeps its later writes; a clone beside one. */
static void test_second_server(void **state)
{
    (void)state;
    static const char *const isos[] = {"pool", "schema", "database"};
    struct td_principal t[3], w;
    char conf[200], slug[32], at[40], path[160], body[128], *before[3];
    snprintf(conf, sizeof(conf), "%s/backups/pgbackrest.conf", srv.dir);
    assert_int_equal(td_pg_archive_to(&second, conf, "second"), 0);
    td_sleep_ms(1100); /* a moment a whole second after that backup */
    make_tenant_on("second", "far-other", "pool", "enterprise", "o@w.io", &w);
    for (int i = 0; i < 3; i++) {
        snprintf(slug, sizeof(slug), "far-%s", isos[i]);
        make_tenant_on("second", slug, isos[i], "enterprise", "o@f.io", &t[i]);
        add_project(&t[i], "kept", NULL, 0);
        add_project(&t[i], "doomed", body, sizeof(body));
        before[i] = rows_of(slug);
        td_sleep_ms(20);
        if (i == 2)
            now_rfc3339(at, sizeof(at));
        td_sleep_ms(20);
    }
    for (int i = 0; i < 3; i++) { /* after the moment: a new row, a deleted one */
        struct td_resp r;
        add_project(&t[i], "later", body, sizeof(body));
        snprintf(path, sizeof(path), "/t/%.40s/projects/%.64s", t[i].slug, body);
        td_call(&srv, "DELETE", path, t[i].token, NULL, &r);
        TD_ASSERT_STATUS(&r, 204);
        td_resp_free(&r);
    }
    add_project(&w, "other-later", NULL, 0);
    char *other_before = rows_of("far-other");
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "/admin/tenants/%.40s/restore?confirm=%.40s", t[i].slug,
                 t[i].slug);
        snprintf(body, sizeof(body), "{\"at\":\"%s\"}", at);
        run_job(path, body, NULL, 0);
        char *after = rows_of(t[i].slug);
        assert_string_equal(before[i], after);
        free(after);
        free(before[i]);
    }
    char *other_after = rows_of("far-other");
    assert_string_equal(other_before, other_after);
    assert_non_null(strstr(other_after, "other-later"));
    char got[48];
    run_job("/admin/tenants/far-schema/clone", "{\"slug\":\"far-copy\"}", got, sizeof(got));
    char *orig = rows_of("far-schema"), *copy = rows_of("far-copy");
    assert_string_equal(orig, copy);
    free(orig);
    free(copy);
    free(other_before);
    free(other_after);
    PGconn *c = td_db(&srv, "postgres");
    PGresult *res = td_sql(c,
                           "SELECT string_agg(tenant_slug || ' ' || detail::text, E'\\n') FROM "
                           "tenantd.operator_actions WHERE tenant_slug LIKE 'far-%'",
                           0, NULL);
    fprintf(stderr, "second server jobs (ms):\n%s\n", PQgetvalue(res, 0, 0));
    PQclear(res);
    PQfinish(c);
    struct td_resp r;
    td_admin(&srv, "GET", "/metrics", NULL, &r);
    assert_non_null(strstr(r.body, "tenantd_wal_archiving{server=\"second\"} 1"));
    td_resp_free(&r);
    /* the second server's own stanza: its last and oldest base backups */
    assert_true(
        td_metric(&srv, "tenantd_backup_last_success_timestamp_seconds{server=\"second\"}") > 0);
    assert_true(td_metric(&srv, "tenantd_backups{server=\"second\"}") >= 1);
    assert_int_equal(td_admin(&srv, "GET", "/ready", NULL, &r), 200);
    json_t *far = json_object_get(json_object_get(r.json, "servers"), "second");
    assert_true(json_is_string(json_object_get(far, "last_backup_at")));
    assert_true(json_is_string(json_object_get(far, "oldest_backup_at")));
    td_resp_free(&r);
}

/* /ready and /metrics say when the last backup and the last archived WAL were. */
static void test_status(void **state)
{
    (void)state;
    json_t *b = ready_backup();
    assert_non_null(b);
    assert_true(json_is_true(json_object_get(b, "archiving")));
    assert_true(json_is_string(json_object_get(b, "last_backup_at")));
    assert_true(json_is_string(json_object_get(b, "last_archived_wal_at")));
    assert_true(json_integer_value(json_object_get(b, "backups")) >= 1);
    json_decref(b);
    struct td_resp r;
    td_admin(&srv, "GET", "/metrics", NULL, &r);
    assert_int_equal(r.status, 200);
    const char *key = "\ntenantd_backup_last_success_timestamp_seconds{server=\"main\"} ";
    const char *m = strstr(r.body, key);
    assert_non_null(m);
    assert_true(atoll(m + strlen(key)) > 0);
    assert_non_null(strstr(r.body, "tenantd_wal_archiving{server=\"main\"} 1"));
    td_resp_free(&r);
}

/* `tenantd tenants <args>` on the test server's data dir, settings as the server's; exit
 * status, stdout and stderr (NUL-terminated, truncated to size). */
static int run_cli(const char *const *args, char *out, char *err, size_t size)
{
    char *argv[16], *env[256], dd[256];
    char op[] = "/tmp/tdrs-out.XXXXXX", ep[] = "/tmp/tdrs-err.XXXXXX";
    int k = 0, n = 0, ofd = mkstemp(op), efd = mkstemp(ep), st = 0;
    const char *bin = getenv("TENANTD_BIN");
    assert_true(bin && ofd >= 0 && efd >= 0);
    unlink(op);
    unlink(ep);
    argv[k++] = (char *)bin;
    argv[k++] = "tenants";
    while (*args && k < 15)
        argv[k++] = (char *)*args++;
    argv[k] = NULL;
    for (char **e = environ; *e && n < 248; e++)
        if (strncmp(*e, "TENANTD_", 8) != 0)
            env[n++] = *e;
    snprintf(dd, sizeof(dd), "TENANTD_DATA_DIR=%s", srv.dir);
    env[n++] = dd;
    env[n++] = "TENANTD_ADMIN_TOKEN=" TD_TEST_ADMIN_TOKEN;
    env[n++] = "TENANTD_JWT_SECRET=" TD_TEST_JWT_SECRET;
    env[n++] = "TENANTD_LOG_LEVEL=warn";
    env[n++] = "TENANTD_BACKUP=1";
    env[n++] = servers_env;
    env[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(ofd, 1);
        dup2(efd, 2);
        execve(bin, argv, env);
        _exit(127);
    }
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    int fds[2] = {ofd, efd};
    char *bufs[2] = {out, err};
    for (int i = 0; i < 2; i++) {
        lseek(fds[i], 0, SEEK_SET);
        ssize_t got = read(fds[i], bufs[i], size - 1);
        bufs[i][got > 0 ? got : 0] = '\0';
        close(fds[i]);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define CLI(out, err, ...) run_cli((const char *const[]){__VA_ARGS__, NULL}, out, err, sizeof(out))

/* The CLI refuses as the admin API does, nothing queued, and a clone through it waits for
 * the job and prints its outcome. */
static void test_cli_restore_and_clone(void **state)
{
    (void)state;
    struct td_principal a;
    char out[16384], err[4096], past[40];
    make_tenant("cli-src", "schema", NULL, "o@cli.io", &a);
    add_project(&a, "kept", NULL, 0);
    PGconn *c = td_db(&srv, "postgres");
    long long jobs0 = td_sql_count(c, "SELECT count(*) FROM tenantd.jobs");

    int st =
        CLI(out, err, "restore", "cli-src", "--at", "2999-01-01T00:00:00Z", "--confirm", "cli-src");
    if (st != 2)
        fprintf(stderr, "exit %d\nstdout: %s\nstderr: %s\n", st, out, err);
    assert_int_equal(st, 2);
    assert_non_null(strstr(err, "at is in the future"));
    now_rfc3339(past, sizeof(past));
    assert_int_equal(CLI(out, err, "restore", "cli-src", "--at", past, "--confirm", "cli-srcx"), 2);
    assert_non_null(strstr(err, "--confirm"));
    assert_int_equal(CLI(out, err, "restore", "no-such-cli", "--at", past, "--slug", "fresh-cli"),
                     1);
    assert_non_null(strstr(err, "no such tenant"));
    assert_int_equal(CLI(out, err, "clone", "cli-src", "--slug", "cli-src"), 1);
    assert_non_null(strstr(err, "slug is taken"));
    assert_int_equal(CLI(out, err, "clone", "cli-src"), 2);
    assert_int_equal(CLI(out, err, "restore", "cli-src", "--at", past), 2);
    /* before the oldest base backup: refused here, not by the job */
    PQclear(td_sql(c,
                   "UPDATE tenantd.tenants SET created_at = now() - interval '3 days' WHERE "
                   "slug = 'cli-src'",
                   0, NULL));
    time_t hour_ago = time(NULL) - 3600;
    struct tm tm;
    gmtime_r(&hour_ago, &tm);
    strftime(past, sizeof(past), "%Y-%m-%dT%H:%M:%SZ", &tm);
    st = CLI(out, err, "restore", "cli-src", "--at", past, "--confirm", "cli-src");
    if (st != 2)
        fprintf(stderr, "exit %d\nstdout: %s\nstderr: %s\n", st, out, err);
    assert_int_equal(st, 2);
    assert_non_null(strstr(err, "the oldest moment available is 20"));
    assert_int_equal(td_sql_count(c, "SELECT count(*) FROM tenantd.jobs"), jobs0);

    char *rows = rows_of("cli-src");
    st = CLI(out, err, "clone", "cli-src", "--slug", "cli-src-copy");
    if (st != 0)
        fprintf(stderr, "exit %d\nstdout: %s\nstderr: %s\n", st, out, err);
    assert_int_equal(st, 0);
    json_t *j = json_loads(out, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "succeeded");
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "clone");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "result"), "slug")),
                        "cli-src-copy");
    json_decref(j);
    char *copy = rows_of("cli-src-copy");
    assert_string_equal(rows, copy);
    assert_int_equal(td_sql_count(c, "SELECT count(*) FROM tenantd.operator_actions WHERE "
                                     "tenant_slug = 'cli-src' AND actor LIKE 'tenantd tenants%'"),
                     1);
    PQfinish(c);
    free(rows);
    free(copy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_cli_restore_and_clone),
        cmocka_unit_test(test_restore_pool),
        cmocka_unit_test(test_restore_schema),
        cmocka_unit_test(test_restore_database),
        cmocka_unit_test(test_deleted_tenant_pool),
        cmocka_unit_test(test_deleted_tenant_schema),
        cmocka_unit_test(test_clone_beside_original),
        cmocka_unit_test(test_clone_pool),
        cmocka_unit_test(test_restore_after_move),
        cmocka_unit_test(test_second_server),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
