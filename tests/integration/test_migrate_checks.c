/*
 * test_migrate_checks.c - what tenantd makes sure of after each tenant migration file (SPEC
 * §7): the tenant policy enabled and FORCEd on a table whose file wrote none, in every
 * isolation and for tenants provisioned afterwards, and kept by a file that adds a wider
 * policy of its own; and each refused declaration (no tenant_id, a foreign key without
 * tenant_id, an unreadable tenantd comment on a table or a column, a path of a built-in
 * route) fails `tenantd migrate`, naming the table, with nothing of the file applied.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static struct td_server srv;
static char migdir[64], migenv[128];
static struct td_principal tp, tq, ts, tdb; /* pool, pool, schema, database */

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/tenant/%s", migdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void remove_file(const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/tenant/%s", migdir, name);
    assert_int_equal(unlink(path), 0);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = calloc(1, 1 << 16);
    if (f) {
        size_t n = fread(buf, 1, (1 << 16) - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    return buf;
}

/* `tenantd <args>` with the server's data dir and the temporary migrations; its exit
 * status, and its stdout + stderr in *out (caller frees). */
static int run(char *const *args, char **out)
{
    const char *bin = getenv("TENANTD_BIN");
    char path[160], dd[128], *env[TD_CLI_ENV_MAX];
    int st;
    snprintf(path, sizeof(path), "%s/migrate.out", srv.dir);
    td_cli_env(&srv, (const char *[]){migenv, NULL}, env, dd, sizeof(dd));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        char *argv[16] = {(char *)bin};
        for (int a = 0; args[a] && a < 14; a++)
            argv[a + 1] = args[a];
        execve(bin, argv, env);
        _exit(127);
    }
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    *out = slurp(path);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int migrate(char **out)
{
    return run((char *[]){"migrate", NULL}, out);
}

static int setup(void **state)
{
    (void)state;
    const char *env[2] = {migenv, NULL};
    if (td_migrations_copy("tdchk", migdir, sizeof(migdir), migenv, sizeof(migenv)) != 0)
        return -1;
    if (td_server_start(&srv, env) < 0)
        return -1;
    if (td_admin_create_tenant(&srv, "chk-p", "pool", NULL, NULL, NULL, &tp) != 201 ||
        td_admin_create_tenant(&srv, "chk-q", "pool", NULL, NULL, NULL, &tq) != 201 ||
        td_admin_create_tenant(&srv, "chk-s", "schema", NULL, NULL, NULL, &ts) != 201 ||
        td_admin_create_tenant(&srv, "chk-d", "database", NULL, NULL, NULL, &tdb) != 201)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    td_migrations_remove(migdir);
    return td_server_stop(&srv);
}

/* A connection to the storage of tenant p (its schema name in schema). */
static PGconn *storage(const struct td_principal *p, const char *iso, char *schema, size_t size)
{
    char ident[64], db[80];
    td_storage_name(p->tenant_id, ident, sizeof(ident));
    snprintf(schema, size, "%s", strcmp(iso, "pool") ? ident : "pool");
    snprintf(db, sizeof(db), "td_%s", ident + 2);
    PGconn *c = td_db_in(&srv, strcmp(iso, "database") ? NULL : db, "postgres");
    assert_non_null(c);
    return c;
}

static long long value(PGconn *c, const char *sql, const char *param)
{
    char v[64];
    if (!td_sql_value(c, sql, param ? 1 : 0, (const char *const[]){param}, v, sizeof(v)))
        return -1;
    return v[0] == 't' ? 1 : v[0] == 'f' ? 0 : atoll(v);
}

/* RLS enabled and forced on schema.table, with tenantd's two policies. */
static void assert_policed(PGconn *c, const char *schema, const char *table)
{
    char q[160];
    snprintf(q, sizeof(q), "%s.%s", schema, table);
    assert_int_equal(value(c,
                           "SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE "
                           "oid = $1::regclass",
                           q),
                     1);
    assert_int_equal(value(c,
                           "SELECT count(*) FROM pg_policy WHERE polrelid = $1::regclass AND "
                           "polname IN ('tenant_isolation', 'tenantd_tenant')",
                           q),
                     2);
}

static const char good_sql[] =
    "CREATE TABLE chk_notes (\n"
    "    tenant_id uuid NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), "
    "'')::uuid,\n"
    "    id uuid NOT NULL DEFAULT gen_random_uuid(),\n"
    "    body text NOT NULL,\n"
    "    PRIMARY KEY (tenant_id, id)\n"
    ");\n"
    "COMMENT ON TABLE chk_notes IS 'tenantd {\"write\": \"admin\", \"max\": {\"free\": 3}}';\n"
    "COMMENT ON COLUMN chk_notes.body IS 'tenantd {\"readonly\": true}';\n"
    "-- a policy of the file's own that would let every row through on its own\n"
    "ALTER TABLE chk_notes ENABLE ROW LEVEL SECURITY;\n"
    "CREATE POLICY everyone ON chk_notes USING (true) WITH CHECK (true);\n";

static void test_policy_enforced(void **state)
{
    (void)state;
    char *out = NULL, schema[64];
    write_file("9101_notes.sql", good_sql);
    int st = migrate(&out);
    if (st != 0)
        fprintf(stderr, "%s\n", out);
    assert_int_equal(st, 0);
    free(out);

    const struct {
        const struct td_principal *p;
        const char *iso;
    } where[] = {{&tp, "pool"}, {&ts, "schema"}, {&tdb, "database"}};
    for (size_t i = 0; i < 3; i++) {
        PGconn *c = storage(where[i].p, where[i].iso, schema, sizeof(schema));
        assert_policed(c, schema, "chk_notes");
        PQfinish(c);
    }
    /* provisioned afterwards from the consolidated baseline (by a process that has read the
     * new file): the same */
    struct td_principal late = {0};
    st = run((char *[]){"tenants", "create", "--slug", "chk-late", "--name", "Late", "--isolation",
                        "schema", NULL},
             &out);
    if (st != 0)
        fprintf(stderr, "%s\n", out);
    assert_int_equal(st, 0);
    json_t *made = json_loads(strchr(out, '{'), JSON_DISABLE_EOF_CHECK, NULL);
    free(out);
    assert_non_null(made);
    snprintf(late.tenant_id, sizeof(late.tenant_id), "%s", td_jstr(made, "id"));
    json_decref(made);
    PGconn *c = storage(&late, "schema", schema, sizeof(schema));
    assert_policed(c, schema, "chk_notes");
    PQfinish(c);

    /* the runtime role sees only the transaction's tenant, despite the file's own policy */
    c = td_db(&srv, "postgres");
    PQclear(td_sql(c,
                   "INSERT INTO pool.chk_notes (tenant_id, body) VALUES ($1, 'p'), ($2, 'q'), "
                   "($2, 'q2')",
                   2, (const char *const[]){tp.tenant_id, tq.tenant_id}));
    assert_int_equal(value(c, "SELECT count(*) FROM pool.chk_notes", NULL), 3);
    PQclear(td_sql(c, "BEGIN", 0, NULL));
    PQclear(td_sql(c, "SET LOCAL ROLE tenantd_app", 0, NULL));
    PQclear(td_sql(c, "SELECT set_config('app.tenant_id', $1, true)", 1,
                   (const char *const[]){tq.tenant_id}));
    assert_int_equal(value(c, "SELECT count(*) FROM pool.chk_notes", NULL), 2);
    PQclear(td_sql(c, "SELECT set_config('app.tenant_id', '', true)", 0, NULL));
    assert_int_equal(value(c, "SELECT count(*) FROM pool.chk_notes", NULL), 0);
    PQclear(td_sql(c, "ROLLBACK", 0, NULL));
    PQfinish(c);
}

/* A refused file: migrate fails naming the table, and nothing of it exists anywhere. */
static void refused(const char *sql, const char *table, const char *why)
{
    char *out = NULL, schema[64], q[128];
    write_file("9102_refused.sql", sql);
    int st = migrate(&out);
    remove_file("9102_refused.sql");
    char want[160];
    snprintf(want, sizeof(want), "table %s", table);
    if (st != 1 || !strstr(out, want) || !strstr(out, why))
        fprintf(stderr, "migrate exited %d, wanted \"%s\" and \"%s\" in:\n%s\n", st, want, why,
                out);
    assert_int_equal(st, 1);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, why));
    free(out);
    const struct {
        const struct td_principal *p;
        const char *iso;
    } where[] = {{&tp, "pool"}, {&ts, "schema"}, {&tdb, "database"}};
    for (size_t i = 0; i < 3; i++) {
        PGconn *c = storage(where[i].p, where[i].iso, schema, sizeof(schema));
        snprintf(q, sizeof(q), "%s.%s", schema, table);
        assert_int_equal(value(c, "SELECT to_regclass($1) IS NULL", q), 1);
        snprintf(q, sizeof(q), "SELECT count(*) FROM %s.tenantd_migrations WHERE version = 9102",
                 schema);
        assert_int_equal(value(c, q, NULL), 0);
        PQfinish(c);
    }
}

static const char tbl[] = "CREATE TABLE %s (tenant_id uuid NOT NULL DEFAULT "
                          "NULLIF(current_setting('app.tenant_id', true), '')::uuid, id uuid NOT "
                          "NULL DEFAULT gen_random_uuid(), PRIMARY KEY (tenant_id, id));\n";

static void test_refused_no_tenant_id(void **state)
{
    (void)state;
    refused("CREATE TABLE chk_plain (id uuid PRIMARY KEY, note text);\n", "chk_plain",
            "no tenant_id");
    refused("CREATE TABLE chk_nullable (tenant_id uuid, id uuid PRIMARY KEY);\n", "chk_nullable",
            "no tenant_id");
}

static void test_refused_foreign_key(void **state)
{
    (void)state;
    /* the parent is unique on id alone, so PostgreSQL takes a key without tenant_id */
    const char sql[] =
        "CREATE TABLE chk_parent (tenant_id uuid NOT NULL DEFAULT NULLIF(current_setting("
        "'app.tenant_id', true), '')::uuid, id uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE, "
        "PRIMARY KEY (tenant_id, id));\n"
        "CREATE TABLE chk_child (tenant_id uuid NOT NULL DEFAULT NULLIF(current_setting("
        "'app.tenant_id', true), '')::uuid, id uuid NOT NULL DEFAULT gen_random_uuid(), "
        "parent_id uuid REFERENCES chk_parent (id), PRIMARY KEY (tenant_id, id));\n";
    refused(sql, "chk_child", "foreign key");
}

static void test_refused_comments(void **state)
{
    (void)state;
    char sql[1024];
    int n = snprintf(sql, sizeof(sql), tbl, "chk_badtable");
    snprintf(sql + n, sizeof(sql) - (size_t)n,
             "COMMENT ON TABLE chk_badtable IS 'tenantd {read: admin}';\n");
    refused(sql, "chk_badtable", "not a JSON object");
    n = snprintf(sql, sizeof(sql), tbl, "chk_badcol");
    snprintf(sql + n, sizeof(sql) - (size_t)n,
             "COMMENT ON COLUMN chk_badcol.id IS 'tenantd private';\n");
    refused(sql, "chk_badcol", "column id");
    /* readable JSON, but an option that would be ignored: refused, not defaulted */
    n = snprintf(sql, sizeof(sql), tbl, "chk_typo");
    snprintf(sql + n, sizeof(sql) - (size_t)n,
             "COMMENT ON TABLE chk_typo IS 'tenantd {\"wirte\": \"admin\"}';\n");
    refused(sql, "chk_typo", "unknown option \"wirte\"");
    n = snprintf(sql, sizeof(sql), tbl, "chk_role");
    snprintf(sql + n, sizeof(sql) - (size_t)n,
             "COMMENT ON TABLE chk_role IS 'tenantd {\"write\": \"root\"}';\n");
    refused(sql, "chk_role", "must be member, admin or owner");
    n = snprintf(sql, sizeof(sql), tbl, "chk_max");
    snprintf(sql + n, sizeof(sql) - (size_t)n,
             "COMMENT ON TABLE chk_max IS 'tenantd {\"max\": {\"free\": \"3\"}}';\n");
    refused(sql, "chk_max", "option \"max\"");
    n = snprintf(sql, sizeof(sql), tbl, "chk_colopt");
    snprintf(sql + n, sizeof(sql) - (size_t)n,
             "COMMENT ON COLUMN chk_colopt.id IS 'tenantd {\"private\": \"yes\"}';\n");
    refused(sql, "chk_colopt", "must be true or false");
}

static void test_refused_route(void **state)
{
    (void)state;
    char sql[1024];
    snprintf(sql, sizeof(sql), tbl, "me");
    refused(sql, "me", "collides with a built-in route");
    snprintf(sql, sizeof(sql), tbl, "audit_logs_x");
    /* not a built-in path: accepted (and removed again by this test's own file) */
    write_file("9103_ok.sql", sql);
    char *out = NULL;
    assert_int_equal(migrate(&out), 0);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_enforced),     cmocka_unit_test(test_refused_no_tenant_id),
        cmocka_unit_test(test_refused_foreign_key), cmocka_unit_test(test_refused_comments),
        cmocka_unit_test(test_refused_route),
    };
    return cmocka_run_group_tests_name("migrate_checks", tests, setup, teardown);
}
