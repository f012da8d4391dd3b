/*
 * test_cli.c - `tenantd tenants ...` against the data dir of a running test server (the
 * CLI reuses its PostgreSQL): JSON on stdout, exit statuses 0/1/2, and every change seen
 * by the running server at once (NOTIFY), as with the admin API.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PW "cli-password-1"

extern char **environ;

static struct td_server srv;

struct cli_out {
    int status; /* exit status, or -1 */
    char out[65536];
    char err[16384];
    json_t *json; /* stdout parsed, or NULL */
};

TD_SUITE_SERVER(srv)

static void read_all(int fd, char *buf, size_t size)
{
    size_t n = 0;
    ssize_t k;
    lseek(fd, 0, SEEK_SET);
    while (n + 1 < size && (k = read(fd, buf + n, size - 1 - n)) > 0)
        n += (size_t)k;
    buf[n] = '\0';
}

/* Run `tenantd tenants <args>` with data_dir (NULL: the test server's); NULL-terminated
 * args. Fills o; the caller json_decrefs o->json. */
static void run_in(const char *data_dir, struct cli_out *o, const char *const *args)
{
    const char *bin = getenv("TENANTD_BIN");
    char *argv[32];
    char *env[256];
    char dd[256];
    int k = 0, n = 0;
    char out_path[] = "/tmp/tdcli-out.XXXXXX", err_path[] = "/tmp/tdcli-err.XXXXXX";
    int ofd = mkstemp(out_path), efd = mkstemp(err_path);

    memset(o, 0, sizeof(*o));
    o->status = -1;
    assert_true(bin && ofd >= 0 && efd >= 0);
    unlink(out_path);
    unlink(err_path);
    argv[k++] = (char *)bin;
    argv[k++] = "tenants";
    for (const char *const *a = args; *a && k < 31; a++)
        argv[k++] = (char *)*a;
    argv[k] = NULL;
    for (char **e = environ; *e && n < 250; e++)
        if (strncmp(*e, "TENANTD_", 8) != 0)
            env[n++] = *e;
    snprintf(dd, sizeof(dd), "TENANTD_DATA_DIR=%s", data_dir ? data_dir : srv.dir);
    env[n++] = dd;
    /* the secrets the server runs with: the CLI derives the runtime role's password
     * from the JWT secret, as every instance sharing a catalog must */
    env[n++] = "TENANTD_ADMIN_TOKEN=" TD_TEST_ADMIN_TOKEN;
    env[n++] = "TENANTD_JWT_SECRET=" TD_TEST_JWT_SECRET;
    env[n++] = "TENANTD_LOG_LEVEL=warn";
    env[n] = NULL;

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(ofd, 1);
        dup2(efd, 2);
        execve(bin, argv, env);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    o->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    read_all(ofd, o->out, sizeof(o->out));
    read_all(efd, o->err, sizeof(o->err));
    close(ofd);
    close(efd);
    o->json = o->out[0] ? json_loads(o->out, 0, NULL) : NULL;
}

static void run(struct cli_out *o, const char *const *args)
{
    run_in(NULL, o, args);
}

#define RUN(o, ...) run((o), (const char *const[]){__VA_ARGS__, NULL})

/* Checks the exit status, printing the streams when it differs. */
static bool check_status(const struct cli_out *o, int want)
{
    if (o->status == want)
        return true;
    fprintf(stderr, "  exit status %d, expected %d\n  stdout: %s\n  stderr: %s\n", o->status, want,
            o->out, o->err);
    return false;
}

static void done(struct cli_out *o)
{
    json_decref(o->json);
    o->json = NULL;
}

static long projects_status(const char *slug, const char *token)
{
    struct td_resp r;
    char path[256];
    snprintf(path, sizeof(path), "/t/%s/projects", slug);
    long st = td_call(&srv, "GET", path, token, NULL, &r);
    td_resp_free(&r);
    return st;
}

static struct cli_out o;
static char owner_tok[2048];
static char cli_id[64];

static void test_usage_errors(void **state)
{
    const char *const *const bad[] = {
        (const char *const[]){NULL},
        (const char *const[]){"bogus", NULL},
        (const char *const[]){"create", "--slug", "cli-x", NULL},
        (const char *const[]){"create", "--name", "X", NULL},
        (const char *const[]){"create", "--slug", "cli-x", "--name", "X", "--color", "red", NULL},
        (const char *const[]){"create", "--slug", "cli-x", "--name", NULL},
        (const char *const[]){"create", "--slug", "cli-x", "--name", "X", "--owner-email", "a@b.c",
                              NULL},
        (const char *const[]){"show", NULL},
        (const char *const[]){"show", "a", "b", NULL},
        (const char *const[]){"suspend", NULL},
        (const char *const[]){"delete", "cli-x", NULL},
        (const char *const[]){"list", "extra", NULL},
    };
    char fresh[] = "/tmp/tdcli-fresh.XXXXXX";
    char gone[300];
    bool ok = true;
    (void)state;
    /* bad usage is refused before anything is opened: a data dir that does not exist
     * stays that way */
    assert_non_null(mkdtemp(fresh));
    snprintf(gone, sizeof(gone), "%s/none", fresh);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        run_in(gone, &o, bad[i]);
        if (!check_status(&o, 2) || !strstr(o.err, "usage") || o.out[0]) {
            fprintf(stderr, "  case %zu (%s): stderr %s\n", i, bad[i][0] ? bad[i][0] : "none",
                    o.err);
            ok = false;
        }
        done(&o);
    }
    struct stat sb;
    assert_int_not_equal(stat(gone, &sb), 0);
    rmdir(fresh);
    assert_true(ok);

    run_in(gone, &o, (const char *const[]){"--help", NULL});
    assert_true(check_status(&o, 0));
    assert_non_null(strstr(o.out, "tenantd tenants create"));
    assert_non_null(strstr(o.out, "--confirm SLUG"));
    done(&o);
}

static void test_create(void **state)
{
    struct td_resp r;
    (void)state;
    RUN(&o, "create", "--slug", "cli-one", "--name", "CLI One", "--plan", "starter",
        "--owner-email", "owner@cli-one.test", "--owner-password", PW, "--owner-name", "Olga");
    assert_true(check_status(&o, 0));
    assert_non_null(o.json);
    assert_string_equal(td_jstr(o.json, "slug"), "cli-one");
    assert_string_equal(td_jstr(o.json, "name"), "CLI One");
    assert_string_equal(td_jstr(o.json, "plan"), "starter");
    assert_string_equal(td_jstr(o.json, "isolation"), "pool");
    assert_string_equal(td_jstr(o.json, "status"), "active");
    assert_true(td_is_uuid(td_jstr(o.json, "id")));
    json_t *owner = json_object_get(o.json, "owner");
    assert_string_equal(td_jstr(owner, "email"), "owner@cli-one.test");
    assert_string_equal(td_jstr(owner, "role"), "owner");
    assert_null(strstr(o.out, "password"));
    assert_null(strstr(o.out, "argon2"));
    snprintf(cli_id, sizeof(cli_id), "%s", td_jstr(o.json, "id"));
    done(&o);

    /* the running server serves it: the owner logs in, the operator sees it */
    assert_int_equal(
        td_login(&srv, "cli-one", "owner@cli-one.test", PW, owner_tok, sizeof(owner_tok)), 200);
    assert_int_equal(projects_status("cli-one", owner_tok), 200);
    td_admin(&srv, "GET", "/admin/tenants/cli-one", NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "id"), cli_id);
    assert_string_equal(td_jstr(r.json, "plan"), "starter");
    td_resp_free(&r);

    /* and the server's cluster is still up after the CLI ended */
    td_http(&srv, "GET", "/ready", NULL, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
}

static void test_create_isolations_and_errors(void **state)
{
    char ident[64], v[16];
    (void)state;
    RUN(&o, "create", "--slug=cli-schema", "--name=Schema Co", "--isolation=schema");
    assert_true(check_status(&o, 0));
    assert_string_equal(td_jstr(o.json, "isolation"), "schema");
    assert_string_equal(td_jstr(o.json, "plan"), "free");
    assert_null(json_object_get(o.json, "owner"));
    td_storage_name(td_jstr(o.json, "id"), ident, sizeof(ident));
    done(&o);
    PGconn *db = td_db(&srv, "postgres");
    assert_non_null(db);
    const char *p[1] = {ident};
    assert_true(
        td_sql_value(db, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", 1, p, v, 16));
    assert_string_equal(v, "1");
    PQfinish(db);

    /* taken slug: a failure, not a usage error */
    RUN(&o, "create", "--slug", "cli-one", "--name", "Again");
    assert_true(check_status(&o, 1));
    assert_non_null(strstr(o.err, "taken"));
    assert_int_equal(o.out[0], '\0');
    done(&o);
    /* values the admin API refuses are refused the same way, before anything is made */
    const char *const *const bad[] = {
        (const char *const[]){"create", "--slug", "Bad_Slug", "--name", "X", NULL},
        (const char *const[]){"create", "--slug", "cli-two", "--name", "   ", NULL},
        (const char *const[]){"create", "--slug", "cli-two", "--name", "X", "--plan", "gold", NULL},
        (const char *const[]){"create", "--slug", "cli-two", "--name", "X", "--isolation", "vm",
                              NULL},
        (const char *const[]){"create", "--slug", "cli-two", "--name", "X", "--server", "nowhere",
                              NULL},
        (const char *const[]){"create", "--slug", "cli-two", "--name", "X", "--owner-email",
                              "no-at-sign", "--owner-password", PW, "--owner-name", "N", NULL},
        (const char *const[]){"create", "--slug", "cli-two", "--name", "X", "--owner-email",
                              "a@cli-two.test", "--owner-password", "short", "--owner-name", "N",
                              NULL},
    };
    bool ok = true;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        run(&o, bad[i]);
        if (!check_status(&o, 2)) {
            fprintf(stderr, "  case %zu\n", i);
            ok = false;
        }
        done(&o);
    }
    assert_true(ok);
    struct td_resp r;
    td_admin(&srv, "GET", "/admin/tenants/cli-two", NULL, &r);
    TD_ASSERT_PROBLEM(&r, 404, "tenant_not_found");
    td_resp_free(&r);
}

static void test_list_and_show(void **state)
{
    struct td_principal api;
    struct td_resp r;
    size_t i;
    json_t *t;
    int seen = 0;
    (void)state;
    assert_int_equal(td_admin_create_tenant(&srv, "api-made", NULL, NULL, NULL, NULL, &api), 201);
    RUN(&o, "list");
    assert_true(check_status(&o, 0));
    assert_true(json_is_array(o.json));
    json_array_foreach(o.json, i, t)
    {
        const char *slug = td_jstr(t, "slug");
        if (!strcmp(slug, "cli-one") || !strcmp(slug, "cli-schema") || !strcmp(slug, "api-made"))
            seen++;
        if (i == 0)
            assert_string_equal(slug, "api-made"); /* newest first */
    }
    assert_int_equal(seen, 3);
    done(&o);

    td_call(&srv, "POST", "/t/cli-one/projects", owner_tok, "{\"name\":\"P\"}", &r);
    TD_ASSERT_STATUS(&r, 201);
    td_resp_free(&r);
    RUN(&o, "show", "cli-one");
    assert_true(check_status(&o, 0));
    assert_string_equal(td_jstr(o.json, "id"), cli_id);
    json_t *u = json_object_get(o.json, "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "users")), 1);
    assert_int_equal(json_integer_value(json_object_get(u, "projects")), 1);
    assert_true(json_is_integer(json_object_get(u, "api_calls_month")));
    done(&o);
    /* by id too */
    RUN(&o, "show", cli_id);
    assert_true(check_status(&o, 0));
    assert_string_equal(td_jstr(o.json, "slug"), "cli-one");
    done(&o);

    RUN(&o, "show", "no-such-tenant");
    assert_true(check_status(&o, 1));
    assert_non_null(strstr(o.err, "no tenant \"no-such-tenant\""));
    assert_int_equal(o.out[0], '\0');
    done(&o);
    RUN(&o, "show", "00000000-0000-4000-8000-000000000000");
    assert_true(check_status(&o, 1));
    done(&o);
}

/* Seconds until GET projects answers want, polling every 20 ms; -1 after 5 s. */
static double until_status(const char *slug, const char *token, long want)
{
    double t0 = td_now_s();
    while (td_now_s() - t0 < 5) {
        if (projects_status(slug, token) == want)
            return td_now_s() - t0;
        struct timespec ts = {0, 20000000L};
        nanosleep(&ts, NULL);
    }
    return -1;
}

static void test_suspend_resume(void **state)
{
    (void)state;
    assert_int_equal(projects_status("cli-one", owner_tok), 200); /* cached by the server */
    RUN(&o, "suspend", "cli-one");
    assert_true(check_status(&o, 0));
    assert_string_equal(td_jstr(o.json, "status"), "suspended");
    done(&o);
    /* the server learns it from the NOTIFY, not from its cache expiring */
    double t = until_status("cli-one", owner_tok, 403);
    assert_true(t >= 0 && t <= 1.0);
    assert_int_equal(td_login(&srv, "cli-one", "owner@cli-one.test", PW, NULL, 0), 403);

    RUN(&o, "resume", cli_id);
    assert_true(check_status(&o, 0));
    assert_string_equal(td_jstr(o.json, "status"), "active");
    done(&o);
    t = until_status("cli-one", owner_tok, 200);
    assert_true(t >= 0 && t <= 1.0);

    RUN(&o, "suspend", "no-such-tenant");
    assert_true(check_status(&o, 1));
    done(&o);
}

static void test_update(void **state)
{
    (void)state;
    RUN(&o, "update", "cli-one", "--expires", "2001-01-01T00:00:00Z", "--name", "CLI Uno");
    assert_true(check_status(&o, 0));
    assert_string_equal(td_jstr(o.json, "subscription_expires_at"), "2001-01-01T00:00:00.000000Z");
    assert_string_equal(td_jstr(o.json, "name"), "CLI Uno");
    done(&o);
    double t = until_status("cli-one", owner_tok, 402);
    assert_true(t >= 0 && t <= 1.0);

    RUN(&o, "update", "cli-one", "--expires", "next tuesday");
    assert_true(check_status(&o, 2));
    done(&o);
    RUN(&o, "update", "cli-one", "--plan", "platinum");
    assert_true(check_status(&o, 2));
    done(&o);
    RUN(&o, "update", "cli-one");
    assert_true(check_status(&o, 2));
    done(&o);

    RUN(&o, "update", "cli-one", "--expires", "never", "--plan", "pro");
    assert_true(check_status(&o, 0));
    assert_true(json_is_null(json_object_get(o.json, "subscription_expires_at")));
    assert_string_equal(td_jstr(o.json, "plan"), "pro");
    assert_string_equal(td_jstr(o.json, "name"), "CLI Uno");
    done(&o);
    t = until_status("cli-one", owner_tok, 200);
    assert_true(t >= 0 && t <= 1.0);
}

static void test_delete(void **state)
{
    struct td_resp r;
    char v[16];
    (void)state;
    /* a wrong confirm touches nothing */
    RUN(&o, "delete", "cli-one", "--confirm", "cli-uno");
    assert_true(check_status(&o, 2));
    assert_non_null(strstr(o.err, "nothing was deleted"));
    done(&o);
    RUN(&o, "delete", cli_id, "--confirm", cli_id);
    assert_true(check_status(&o, 2));
    done(&o);
    assert_int_equal(projects_status("cli-one", owner_tok), 200);

    RUN(&o, "delete", "cli-one", "--confirm", "cli-one");
    assert_true(check_status(&o, 0));
    assert_string_equal(td_jstr(o.json, "id"), cli_id);
    done(&o);
    double t = until_status("cli-one", owner_tok, 404);
    assert_true(t >= 0 && t <= 1.0);
    td_admin(&srv, "GET", "/admin/tenants/cli-one", NULL, &r);
    TD_ASSERT_PROBLEM(&r, 404, "tenant_not_found");
    td_resp_free(&r);
    PGconn *db = td_db(&srv, "postgres");
    assert_non_null(db);
    const char *p[1] = {cli_id};
    assert_true(td_sql_value(db,
                             "SELECT (SELECT count(*) FROM tenantd.tenants WHERE id = $1) + "
                             "(SELECT count(*) FROM pool.users WHERE tenant_id = $1) + "
                             "(SELECT count(*) FROM pool.projects WHERE tenant_id = $1)",
                             1, p, v, sizeof(v)));
    assert_string_equal(v, "0");
    PQfinish(db);

    RUN(&o, "delete", "cli-one", "--confirm", "cli-one");
    assert_true(check_status(&o, 1));
    assert_non_null(strstr(o.err, "no tenant"));
    done(&o);

    /* the server is unharmed by all of this */
    td_http(&srv, "GET", "/ready", NULL, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
}

static void test_move_export_import(void **state)
{
    struct td_resp r;
    char tok[2048], proj[64], path[256], file[300];
    struct stat sb;
    (void)state;
    RUN(&o, "create", "--slug", "cli-mv", "--name", "Mover", "--owner-email", "o@cli-mv.test",
        "--owner-password", PW, "--owner-name", "Mo");
    assert_true(check_status(&o, 0));
    done(&o);
    assert_int_equal(td_login(&srv, "cli-mv", "o@cli-mv.test", PW, tok, sizeof(tok)), 200);
    td_call(&srv, "POST", "/t/cli-mv/projects", tok, "{\"name\":\"Cargo\"}", &r);
    TD_ASSERT_STATUS(&r, 201);
    snprintf(proj, sizeof(proj), "%s", td_jstr(r.json, "id"));
    td_resp_free(&r);

    RUN(&o, "move", "cli-mv", "--isolation", "schema");
    assert_true(check_status(&o, 0));
    assert_string_equal(td_jstr(o.json, "isolation"), "schema");
    done(&o);
    RUN(&o, "move", "cli-mv", "--isolation", "tent");
    assert_true(check_status(&o, 2));
    done(&o);
    /* the running server follows the move: same project, new storage */
    snprintf(path, sizeof(path), "/t/cli-mv/projects/%s", proj);
    double t0 = td_now_s();
    do {
        td_call(&srv, "GET", path, tok, NULL, &r);
        if (r.status == 200)
            break;
        td_resp_free(&r);
    } while (td_now_s() - t0 < 2);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "name"), "Cargo");
    td_resp_free(&r);

    /* export to a file nobody else can read, and to stdout */
    snprintf(file, sizeof(file), "%s/cli-mv.ndjson", srv.dir);
    RUN(&o, "export", "cli-mv", "--output", file);
    assert_true(check_status(&o, 0));
    assert_true(json_integer_value(json_object_get(o.json, "lines")) >= 4);
    done(&o);
    assert_int_equal(stat(file, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    RUN(&o, "export", "cli-mv");
    assert_true(check_status(&o, 0));
    json_t *head = json_loadb(o.out, strcspn(o.out, "\n"), 0, NULL);
    assert_string_equal(td_jstr(head, "format"), "tenantd-export");
    assert_string_equal(td_jstr(json_object_get(head, "tenant"), "slug"), "cli-mv");
    json_decref(head);
    assert_non_null(strstr(o.out, proj));
    done(&o);

    /* import under a new slug: same rows, old passwords work */
    RUN(&o, "import", "--input", file, "--slug", "cli-mv-copy", "--isolation", "pool");
    assert_true(check_status(&o, 0));
    assert_string_equal(td_jstr(o.json, "slug"), "cli-mv-copy");
    assert_string_equal(td_jstr(o.json, "isolation"), "pool");
    done(&o);
    assert_int_equal(td_login(&srv, "cli-mv-copy", "o@cli-mv.test", PW, tok, sizeof(tok)), 200);
    snprintf(path, sizeof(path), "/t/cli-mv-copy/projects/%s", proj);
    td_call(&srv, "GET", path, tok, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "name"), "Cargo");
    td_resp_free(&r);
    /* the exported slug is taken by the original */
    RUN(&o, "import", "--input", file);
    assert_true(check_status(&o, 1));
    assert_non_null(strstr(o.err, "taken"));
    done(&o);
    RUN(&o, "import", "--input", "/nonexistent/export.ndjson");
    assert_true(check_status(&o, 1));
    done(&o);
    unlink(file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_create),
        cmocka_unit_test(test_create_isolations_and_errors),
        cmocka_unit_test(test_list_and_show),
        cmocka_unit_test(test_suspend_resume),
        cmocka_unit_test(test_update),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_move_export_import),
    };
    return cmocka_run_group_tests_name("cli", tests, setup, teardown);
}
