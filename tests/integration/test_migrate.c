/*
 * test_migrate.c - `tenantd migrate` against a running server (SPEC §1, §6; docs/migrations.md):
 * dry run changes nothing; a tenant behind the expected version gets 503 until migrated; one
 * tenant whose storage is broken on purpose fails while the others migrate, is reported (exit
 * status, JSON summary, GET /admin/migrations) and finishes on a re-run after repair; an
 * edited applied file is refused; a second runner exits 3 or waits (--wait).
 * Migration files are added to a temporary copy of migrations/ (TENANTD_MIGRATIONS_DIR).
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct td_server srv;
static char migdir[64];                /* the temporary copy of migrations/ */
static char migenv[128];               /* TENANTD_MIGRATIONS_DIR=... */
static struct td_principal ta, tb, tp; /* schema, schema (broken later), pool */
static char td_slug[64] = "mig-d";     /* database tenant */
static char td_id[64];
/* The shipped tenant migrations' version (B) and the test's own files after it: B+1 adds the
 * priority column, B+2 sleeps. Held as text too, for the ledger assertions. */
static int base_v;
static char vb[16], vp[16], prio_file[64], prio_name[48], slow_file[64];

static const char priority_sql[] =
    "ALTER TABLE projects ADD COLUMN priority integer NOT NULL DEFAULT 0;\n"
    "CREATE INDEX projects_priority_idx ON projects (tenant_id, priority);\n";

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (!f)
        return strdup("");
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = calloc(1, (size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n)
        buf[0] = '\0';
    fclose(f);
    return buf;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Start `tenantd migrate args...` with the server's data dir and the copied migrations;
 * stdout and stderr go to files under the data dir. Returns the pid. */
static pid_t migrate_start(const char *const *args, const char *tag)
{
    const char *bin = getenv("TENANTD_BIN");
    char out[160], err[160];
    char *argv[16];
    char *env[TD_CLI_ENV_MAX], dd[128];
    int a = 0;
    pid_t pid;

    snprintf(out, sizeof(out), "%s/migrate-%s.out", srv.dir, tag);
    snprintf(err, sizeof(err), "%s/migrate-%s.err", srv.dir, tag);
    td_cli_env(&srv, (const char *[]){migenv, "TENANTD_LOG_LEVEL=warn", NULL}, env, dd, sizeof(dd));
    argv[a++] = (char *)bin;
    argv[a++] = "migrate";
    for (const char *const *p = args; p && *p && a < 15; p++)
        argv[a++] = (char *)*p;
    argv[a] = NULL;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fo, 1);
        dup2(fe, 2);
        execve(bin, argv, env);
        _exit(127);
    }
    return pid;
}

/* Wait for pid; its exit status (-1 when it did not exit normally). */
static int migrate_wait(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

struct run_out {
    int status;
    char *out, *err;
    json_t *json; /* stdout parsed, or NULL */
};

static void run_free(struct run_out *r)
{
    free(r->out);
    free(r->err);
    json_decref(r->json);
}

/* Run `tenantd migrate args...` to completion. */
static void migrate(const char *const *args, const char *tag, struct run_out *r)
{
    char path[160];

    r->status = migrate_wait(migrate_start(args, tag));
    snprintf(path, sizeof(path), "%s/migrate-%s.out", srv.dir, tag);
    r->out = slurp(path);
    snprintf(path, sizeof(path), "%s/migrate-%s.err", srv.dir, tag);
    r->err = slurp(path);
    r->json = json_loads(r->out, 0, NULL);
    if (!r->json)
        fprintf(stderr, "migrate %s: exit %d\nstdout: %s\nstderr: %s\n", tag, r->status, r->out,
                r->err);
}

static int jint(const json_t *o, const char *key)
{
    return (int)json_integer_value(json_object_get(o, key));
}

/* GET /t/{slug}/projects with p's token until it answers want (at most ~8 s). */
static long projects_until(const struct td_principal *p, long want, struct td_resp *r)
{
    char path[128];
    snprintf(path, sizeof(path), "/t/%s/projects", p->slug);
    for (int i = 0; i < 80; i++) {
        td_call(&srv, "GET", path, p->token, NULL, r);
        if (r->status == want)
            return r->status;
        td_resp_free(r);
        td_sleep_ms(100);
    }
    return td_call(&srv, "GET", path, p->token, NULL, r);
}

/* The highest version in a tenant's ledger ("" when none). */
static void ledger_max(const char *tenant_id, const char *dbname, char *out, size_t size)
{
    char ident[64] = "pool", sql[160];
    PGconn *c;

    if (tenant_id)
        td_storage_name(tenant_id, ident, sizeof(ident));
    c = td_db_in(&srv, dbname, "postgres");
    assert_non_null(c);
    snprintf(sql, sizeof(sql), "SELECT COALESCE(max(version), 0) FROM %s.tenantd_migrations",
             ident);
    assert_true(td_sql_value(c, sql, 0, NULL, out, size));
    PQfinish(c);
}

static void catalog_value(const char *sql, const char *param, char *out, size_t size)
{
    PGconn *c = td_db(&srv, "postgres");
    assert_non_null(c);
    assert_true(td_sql_value(c, sql, param ? 1 : 0, param ? (const char *const[]){param} : NULL,
                             out, size));
    PQfinish(c);
}

static void db_exec(const char *dbname, const char *sql)
{
    PGconn *c = td_db_in(&srv, dbname, "postgres");
    PGresult *res;

    assert_non_null(c);
    res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
    PQfinish(c);
}

/* The highest NNNN of migrations/tenant/NNNN_*.sql in the copy, and the names after it. */
static int shipped_version(void)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/tenant", migdir);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int v = atoi(e->d_name);
        if (v > base_v && strstr(e->d_name, ".sql"))
            base_v = v;
    }
    closedir(d);
    snprintf(vb, sizeof(vb), "%d", base_v);
    snprintf(vp, sizeof(vp), "%d", base_v + 1);
    snprintf(prio_name, sizeof(prio_name), "%04d_priority", base_v + 1);
    snprintf(prio_file, sizeof(prio_file), "tenant/%s.sql", prio_name);
    snprintf(slow_file, sizeof(slow_file), "tenant/%04d_slow.sql", base_v + 2);
    return base_v > 0 ? 0 : -1;
}

static int setup(void **state)
{
    const char *env[2] = {migenv, NULL};
    struct td_principal pd;
    (void)state;

    if (td_migrations_copy("tdmig", migdir, sizeof(migdir), migenv, sizeof(migenv)) != 0)
        return -1;
    if (shipped_version() < 0)
        return -1;
    if (td_server_start(&srv, env) < 0)
        return -1;
    if (td_admin_create_tenant(&srv, "mig-a", "schema", NULL, "owner@a.example", "password-a1",
                               &ta) != 201 ||
        td_admin_create_tenant(&srv, "mig-b", "schema", NULL, "owner@b.example", "password-b1",
                               &tb) != 201 ||
        td_admin_create_tenant(&srv, "mig-p", "pool", NULL, "owner@p.example", "password-p1",
                               &tp) != 201 ||
        td_admin_create_tenant(&srv, td_slug, "database", NULL, NULL, NULL, &pd) != 201)
        return -1;
    snprintf(td_id, sizeof(td_id), "%s", pd.tenant_id);
    return ta.token[0] && tb.token[0] && tp.token[0] ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    td_migrations_remove(migdir);
    return td_server_stop(&srv);
}

static void tenant_dbname(char *out, size_t size)
{
    char ident[64];
    td_storage_name(td_id, ident, sizeof(ident));
    snprintf(out, size, "td_%s", ident + 2);
}

/* Everything is current: a run migrates nothing and exits 0; GET /admin/migrations agrees. */
static void test_nothing_pending(void **state)
{
    struct run_out r;
    struct td_resp resp;
    (void)state;

    migrate(NULL, "noop", &r);
    assert_int_equal(r.status, 0);
    assert_non_null(r.json);
    assert_int_equal(jint(r.json, "failed"), 0);
    assert_int_equal(jint(r.json, "migrated"), 0);
    /* the pool of the one server + three non-pool tenants' schemas */
    assert_int_equal(jint(r.json, "targets"), 1 + 3);
    run_free(&r);

    td_admin(&srv, "GET", "/admin/migrations", NULL, &resp);
    TD_ASSERT_STATUS(&resp, 200);
    assert_int_equal(jint(resp.json, "expected_version"), base_v);
    assert_int_equal(jint(resp.json, "pending"), 0);
    assert_int_equal(jint(json_object_get(resp.json, "tenants_by_version"), vb), 4);
    assert_int_equal(json_array_size(json_object_get(resp.json, "failed")), 0);
    assert_true(jint(resp.json, "catalog_version") >= 2);
    td_resp_free(&resp);

    td_call(&srv, "GET", "/admin/migrations", NULL, NULL, &resp);
    TD_ASSERT_PROBLEM(&resp, 401, "unauthorized");
    td_resp_free(&resp);
}

/* A new file: the dry run lists it for every target and changes nothing anywhere. */
static void test_dry_run_changes_nothing(void **state)
{
    const char *args[] = {"--dry-run", NULL};
    struct run_out r;
    char v[64], dbname[80];
    size_t i;
    json_t *item;
    int seen_a = 0, seen_pool = 0;
    (void)state;

    write_file(migdir, prio_file, priority_sql);
    migrate(args, "dry", &r);
    assert_int_equal(r.status, 0);
    assert_non_null(r.json);
    assert_int_equal(jint(r.json, "targets"), 4);
    assert_int_equal(jint(r.json, "pending"), 4);
    json_array_foreach(json_object_get(r.json, "plan"), i, item)
    {
        const char *slug = td_jstr(item, "tenant");
        assert_string_equal(td_jstr(item, "pending"), prio_name);
        seen_a += slug && !strcmp(slug, "mig-a");
        seen_pool += !slug;
    }
    assert_int_equal(seen_a, 1);
    assert_int_equal(seen_pool, 1);
    run_free(&r);

    /* nothing applied: ledgers, catalog summary, the column itself */
    ledger_max(ta.tenant_id, NULL, v, sizeof(v));
    assert_string_equal(v, vb);
    ledger_max(NULL, NULL, v, sizeof(v));
    assert_string_equal(v, vb);
    tenant_dbname(dbname, sizeof(dbname));
    ledger_max(td_id, dbname, v, sizeof(v));
    assert_string_equal(v, vb);
    catalog_value("SELECT schema_version FROM tenantd.tenants WHERE slug = $1", "mig-a", v,
                  sizeof(v));
    assert_string_equal(v, vb);
    catalog_value("SELECT count(*) FROM information_schema.columns WHERE column_name = 'priority'",
                  NULL, v, sizeof(v));
    assert_string_equal(v, "0");
}

/* With B+1 on disk the server expects version B+1: schema tenants still at B get 503
 * unavailable with Retry-After (noticed without a restart); the pool tenant is served. */
static void test_behind_tenant_gets_503(void **state)
{
    struct td_resp r;
    (void)state;

    projects_until(&ta, 503, &r);
    TD_ASSERT_PROBLEM(&r, 503, "unavailable");
    assert_true(r.retry_after[0] != '\0');
    td_resp_free(&r);

    projects_until(&tp, 200, &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
}

/* mig-b's storage is made incompatible: it fails, everyone else is migrated, the run
 * exits 1 and names it; GET /admin/migrations reports it; migrated tenants are served. */
static void test_partial_failure(void **state)
{
    const char *args[] = {"--jobs", "2", NULL};
    char ident[64], sql[256], v[64], dbname[80];
    struct run_out r;
    struct td_resp resp;
    json_t *f;
    (void)state;

    td_storage_name(tb.tenant_id, ident, sizeof(ident));
    snprintf(sql, sizeof(sql), "ALTER TABLE %s.projects ADD COLUMN priority text", ident);
    db_exec(NULL, sql);

    migrate(args, "partial", &r);
    assert_int_equal(r.status, 1);
    assert_non_null(r.json);
    assert_int_equal(jint(r.json, "targets"), 4);
    assert_int_equal(jint(r.json, "failed"), 1);
    /* mig-a and the database tenant (the pool was migrated during start-up) */
    assert_int_equal(jint(r.json, "migrated") + jint(r.json, "current"), 3);
    assert_true(jint(r.json, "migrated") >= 2);
    f = json_array_get(json_object_get(r.json, "failures"), 0);
    assert_non_null(f);
    assert_string_equal(td_jstr(f, "tenant"), "mig-b");
    assert_non_null(strstr(td_jstr(f, "error"), prio_name));
    assert_non_null(strstr(td_jstr(f, "error"), "priority"));
    run_free(&r);

    ledger_max(ta.tenant_id, NULL, v, sizeof(v));
    assert_string_equal(v, vp);
    tenant_dbname(dbname, sizeof(dbname));
    ledger_max(td_id, dbname, v, sizeof(v));
    assert_string_equal(v, vp);
    ledger_max(NULL, NULL, v, sizeof(v));
    assert_string_equal(v, vp);
    ledger_max(tb.tenant_id, NULL, v, sizeof(v));
    assert_string_equal(v, vb);

    td_admin(&srv, "GET", "/admin/migrations", NULL, &resp);
    TD_ASSERT_STATUS(&resp, 200);
    assert_int_equal(jint(resp.json, "expected_version"), base_v + 1);
    assert_int_equal(jint(resp.json, "pending"), 1);
    assert_int_equal(jint(json_object_get(resp.json, "tenants_by_version"), vb), 1);
    assert_int_equal(jint(json_object_get(resp.json, "tenants_by_version"), vp), 3);
    f = json_array_get(json_object_get(resp.json, "failed"), 0);
    assert_int_equal(json_array_size(json_object_get(resp.json, "failed")), 1);
    assert_string_equal(td_jstr(f, "slug"), "mig-b");
    assert_string_equal(td_jstr(f, "id"), tb.tenant_id);
    assert_int_equal(jint(f, "version"), base_v);
    assert_non_null(strstr(td_jstr(f, "error"), "priority"));
    td_resp_free(&resp);

    /* the migrated tenant comes back (the runner's NOTIFY), the failed one stays 503 */
    projects_until(&ta, 200, &resp);
    TD_ASSERT_STATUS(&resp, 200);
    td_resp_free(&resp);
    projects_until(&tb, 503, &resp);
    TD_ASSERT_PROBLEM(&resp, 503, "unavailable");
    td_resp_free(&resp);
}

/* After repair, a re-run resumes: only mig-b is migrated, the report is clean. */
static void test_rerun_after_repair(void **state)
{
    char ident[64], sql[256], v[64];
    struct run_out r;
    struct td_resp resp;
    (void)state;

    td_storage_name(tb.tenant_id, ident, sizeof(ident));
    snprintf(sql, sizeof(sql), "ALTER TABLE %s.projects DROP COLUMN priority", ident);
    db_exec(NULL, sql);

    migrate(NULL, "rerun", &r);
    assert_int_equal(r.status, 0);
    assert_non_null(r.json);
    assert_int_equal(jint(r.json, "migrated"), 1);
    assert_int_equal(jint(r.json, "failed"), 0);
    run_free(&r);
    ledger_max(tb.tenant_id, NULL, v, sizeof(v));
    assert_string_equal(v, vp);

    td_admin(&srv, "GET", "/admin/migrations", NULL, &resp);
    TD_ASSERT_STATUS(&resp, 200);
    assert_int_equal(jint(resp.json, "pending"), 0);
    assert_int_equal(jint(json_object_get(resp.json, "tenants_by_version"), vp), 4);
    assert_int_equal(json_array_size(json_object_get(resp.json, "failed")), 0);
    td_resp_free(&resp);

    projects_until(&tb, 200, &resp);
    TD_ASSERT_STATUS(&resp, 200);
    td_resp_free(&resp);
    /* the new column is there and usable through the tenant's own role */
    td_call(&srv, "POST", "/t/mig-b/projects", tb.token, "{\"name\":\"after migration\"}", &resp);
    TD_ASSERT_STATUS(&resp, 201);
    td_resp_free(&resp);
}

/* An applied file edited afterwards is refused, naming the file; restoring it fixes it. */
static void test_edited_migration_refused(void **state)
{
    const char *dry[] = {"--dry-run", NULL};
    char path[160];
    char *orig;
    struct run_out r;
    (void)state;

    snprintf(path, sizeof(path), "%s/tenant/0001_tenant.sql", migdir);
    orig = slurp(path);
    assert_true(strlen(orig) > 0);
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    fputs("\n-- edited after it was applied\n", f);
    fclose(f);

    migrate(NULL, "edited", &r);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "0001_tenant.sql"));
    assert_non_null(strstr(r.err, "edited"));
    run_free(&r);

    migrate(dry, "edited-dry", &r);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.out, "0001_tenant.sql was edited"));
    run_free(&r);

    write_file(migdir, "tenant/0001_tenant.sql", orig);
    free(orig);
    migrate(NULL, "restored", &r);
    assert_int_equal(r.status, 0);
    run_free(&r);
}

/* 1 when the runner lock is held by some session. */
static int runner_lock_held(void)
{
    char v[16];
    catalog_value("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                  "AND objid = 7204003 AND objsubid = 1",
                  NULL, v, sizeof(v));
    return strcmp(v, "0") != 0;
}

/* Two runners: the second exits 3 with a clear message; with --wait it waits its turn. */
static void test_concurrent_runners(void **state)
{
    const char *jobs1[] = {"--jobs", "1", NULL};
    const char *wait[] = {"--wait", NULL};
    struct run_out r;
    pid_t first, waiter;
    int st;
    (void)state;

    /* slow enough (1 s per target) for the second runner to meet the first */
    write_file(migdir, slow_file, "SELECT pg_sleep(1);\n");
    first = migrate_start(jobs1, "first");
    for (int i = 0; i < 200 && !runner_lock_held(); i++)
        td_sleep_ms(50);
    assert_true(runner_lock_held());

    migrate(NULL, "second", &r);
    assert_int_equal(r.status, 3);
    assert_non_null(strstr(r.err, "another migration run is in progress"));
    run_free(&r);

    waiter = migrate_start(wait, "waiter");
    td_sleep_ms(300);
    assert_int_equal(waitpid(waiter, &st, WNOHANG), 0); /* still waiting */

    assert_int_equal(migrate_wait(first), 0);
    assert_int_equal(migrate_wait(waiter), 0);
    char path[160];
    snprintf(path, sizeof(path), "%s/migrate-waiter.err", srv.dir);
    char *err = slurp(path);
    assert_non_null(strstr(err, "waiting"));
    free(err);
    snprintf(path, sizeof(path), "%s/migrate-waiter.out", srv.dir);
    char *out = slurp(path);
    json_t *j = json_loads(out, 0, NULL);
    assert_non_null(j);
    assert_int_equal(jint(j, "migrated"), 0); /* the first runner had done everything */
    json_decref(j);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_pending),
        cmocka_unit_test(test_dry_run_changes_nothing),
        cmocka_unit_test(test_behind_tenant_gets_503),
        cmocka_unit_test(test_partial_failure),
        cmocka_unit_test(test_rerun_after_repair),
        cmocka_unit_test(test_edited_migration_refused),
        cmocka_unit_test(test_concurrent_runners),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
