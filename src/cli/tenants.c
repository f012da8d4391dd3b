/*
 * tenants.c - `tenantd tenants ...`: the operator's tenant lifecycle from a shell. Every
 * command goes through the code the admin API uses (lifecycle.c, tnt_provision, tnt_drop,
 * tnt_move, tnt_export/tnt_import), prints JSON on stdout (export: NDJSON) and tells
 * running servers about the change (NOTIFY).
 * Exit status: 0 done, 1 failed (not found, conflict, database), 2 bad usage.
 */
#include "cli/cli.h"

#include "app/lifecycle.h"
#include "tenant/check.h"
#include "auth/jwt.h"
#include "core/mem.h"
#include "tenant/export.h"
#include "tenant/move.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: tenantd tenants create --slug SLUG --name NAME [--plan PLAN] [--isolation ISO]\n"
    "                              [--server NAME] [--owner-email EMAIL\n"
    "                              --owner-password PASSWORD --owner-name NAME]\n"
    "       tenantd tenants list\n"
    "       tenantd tenants show ID|SLUG\n"
    "       tenantd tenants update ID|SLUG [--name NAME] [--plan PLAN] [--expires TIME|never]\n"
    "       tenantd tenants suspend ID|SLUG\n"
    "       tenantd tenants resume ID|SLUG\n"
    "       tenantd tenants delete ID|SLUG --confirm SLUG\n"
    "       tenantd tenants move ID|SLUG [--isolation ISO] [--server NAME]\n"
    "       tenantd tenants hibernate ID|SLUG\n"
    "       tenantd tenants wake ID|SLUG\n"
    "       tenantd tenants export ID|SLUG [--output FILE]\n"
    "       tenantd tenants import [--input FILE] [--slug SLUG] [--isolation ISO] [--server NAME]\n"
    "       tenantd tenants restore ID|SLUG --at TIME [--slug NEW | --confirm SLUG] [--no-wait]\n"
    "       tenantd tenants clone ID|SLUG --slug NEW [--no-wait]\n"
    "PLAN is free, starter, pro or enterprise; ISO is pool, schema or database; TIME is an\n"
    "RFC 3339 timestamp. Results are JSON on stdout; export writes NDJSON (password hashes\n"
    "included: a FILE is created with mode 0600) and import reads it (stdin by default).\n"
    "Exit status: 0 done, 1 failed, 2 bad usage. Running servers sharing the catalog see\n"
    "every change at once. restore (to the moment TIME, in place with --confirm or as a new\n"
    "tenant with --slug) and clone queue the admin API's job, which a running `tenantd serve`\n"
    "works on, and wait for it (exit status 1 when the job fails); --no-wait prints the\n"
    "queued job and returns (see GET /admin/jobs/{id}).\n";

/* At most this many --name value options per command. */
#define CLI_MAX_OPTS 8

struct cli_opt {
    const char *name; /* without the leading "--" */
    const char *value;
};

/* What one command accepts: its options (all take a value) and how many positionals. */
struct cli_cmd {
    const char *name;
    int positionals;
    const char *const opts[CLI_MAX_OPTS + 1];
};

static const struct cli_cmd commands[] = {
    {"create",
     0,
     {"slug", "name", "plan", "isolation", "server", "owner-email", "owner-password", "owner-name",
      NULL}},
    {"list", 0, {NULL}},
    {"show", 1, {NULL}},
    {"update", 1, {"name", "plan", "expires", NULL}},
    {"suspend", 1, {NULL}},
    {"resume", 1, {NULL}},
    {"delete", 1, {"confirm", NULL}},
    {"move", 1, {"isolation", "server", NULL}},
    {"hibernate", 1, {NULL}},
    {"wake", 1, {NULL}},
    {"export", 1, {"output", NULL}},
    {"import", 0, {"input", "slug", "isolation", "server", NULL}},
    {"restore", 1, {"at", "slug", "confirm", "no-wait", NULL}},
    {"clone", 1, {"slug", "no-wait", NULL}},
};

struct cli_args {
    const struct cli_cmd *cmd;
    const char *pos; /* the ID|SLUG positional, or NULL */
    struct cli_opt opts[CLI_MAX_OPTS];
};

/* Bad usage: the reason and the usage on stderr, exit status 2. */
static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tenantd tenants: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n%s", usage_text);
    va_end(ap);
    return 2;
}

/* The value of option name, or NULL when not given. */
static const char *opt(const struct cli_args *a, const char *name)
{
    for (int i = 0; i < CLI_MAX_OPTS && a->opts[i].name; i++)
        if (!strcmp(a->opts[i].name, name))
            return a->opts[i].value;
    return NULL;
}

/* Parse argv (argv[0] is the command) into a; returns -1 when fine, else an exit status. */
static int parse(int argc, char **argv, struct cli_args *a)
{
    memset(a, 0, sizeof(*a));
    if (argc < 1)
        return usage_error("%s", "a command is required");
    if (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h") || !strcmp(argv[0], "help")) {
        fputs(usage_text, stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(argv[0], commands[i].name))
            a->cmd = &commands[i];
    if (!a->cmd)
        return usage_error("unknown command \"%s\"", argv[0]);
    int nopts = 0, npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0) {
            if (npos++ >= a->cmd->positionals)
                return usage_error("unexpected argument \"%s\"", arg);
            a->pos = arg;
            continue;
        }
        const char *eq = strchr(arg + 2, '=');
        size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        const char *const *o = a->cmd->opts;
        while (*o && (strlen(*o) != len || strncmp(*o, arg + 2, len) != 0))
            o++;
        if (!*o)
            return usage_error("unknown option \"%s\"", arg);
        if (opt(a, *o))
            return usage_error("option \"%s\" given twice", arg);
        /* the one option without a value */
        const char *value = !strcmp(*o, "no-wait") ? (eq ? NULL : "1")
                            : eq                   ? eq + 1
                                                   : (i + 1 < argc ? argv[++i] : NULL);
        if (!value)
            return usage_error(eq ? "option \"%s\" takes no value" : "option \"%s\" needs a value",
                               arg);
        a->opts[nopts++] = (struct cli_opt){*o, value};
    }
    if (npos < a->cmd->positionals)
        return usage_error("%s needs the tenant's id or slug", a->cmd->name);
    /* everything that needs no database is checked here, before anything is opened */
    const char *c = a->cmd->name;
    if (!strcmp(c, "delete") && !opt(a, "confirm"))
        return usage_error("%s", "delete needs --confirm SLUG");
    if (!strcmp(c, "restore") && !opt(a, "at"))
        return usage_error("%s", "restore needs --at TIME");
    if (!strcmp(c, "restore") && !opt(a, "slug") && !opt(a, "confirm"))
        return usage_error("%s",
                           "restore in place needs --confirm SLUG (or --slug NEW for a copy)");
    if (!strcmp(c, "clone") && !opt(a, "slug"))
        return usage_error("%s", "clone needs --slug NEW");
    if (!strcmp(c, "create") && (!opt(a, "slug") || !opt(a, "name")))
        return usage_error("%s", "create needs --slug and --name");
    int owner = !!opt(a, "owner-email") + !!opt(a, "owner-password") + !!opt(a, "owner-name");
    if (owner && owner != 3)
        return usage_error("%s", "an owner needs --owner-email, --owner-password and "
                                 "--owner-name");
    if (!strcmp(c, "update") && !opt(a, "name") && !opt(a, "plan") && !opt(a, "expires"))
        return usage_error("%s", "update needs --name, --plan or --expires");
    if (!strcmp(c, "move") && !opt(a, "isolation") && !opt(a, "server"))
        return usage_error("%s", "move needs --isolation, --server or both");
    const char *iso = opt(a, "isolation");
    if (iso && tnt_isolation_parse(iso) < 0)
        return usage_error("unknown isolation \"%s\"", iso);
    if (opt(a, "slug") && !tnt_slug_ok(opt(a, "slug")))
        return usage_error("%s", "a slug must match ^[a-z][a-z0-9-]{1,38}[a-z0-9]$");
    return -1;
}

int cli_tenants_check(int argc, char **argv)
{
    struct cli_args a;
    return parse(argc, argv, &a);
}

/* Print v (stolen) as JSON on stdout. */
static int print_json(json_t *v)
{
    int rc = json_dumpf(v, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0 ? 0 : 1;
    json_decref(v);
    fputc('\n', stdout);
    return rc;
}

/* A failure other than bad usage: one line on stderr, exit status 1. */
static int fail(const char *what, int rc, const char *detail)
{
    fprintf(stderr, "tenantd tenants %s: %s\n", what,
            detail                      ? detail
            : rc == TD_ETENANT_NOTFOUND ? "no such tenant"
            : rc == TD_EUNAVAILABLE     ? "the database is unreachable"
            : rc == TD_ECONFLICT        ? "conflict"
                                        : td_err_code(rc));
    return 1;
}

/* The tenant called key (id or slug): 0, or an exit status after saying why. */
static int find(struct td_app *app, const char *what, const char *key, struct tnt_tenant **out)
{
    *out = NULL;
    int rc = auth_is_uuid(key) || tnt_slug_ok(key) ? tnt_cache_get(app->cache, key, out)
                                                   : TD_ETENANT_NOTFOUND;
    if (rc == TD_ETENANT_NOTFOUND) {
        fprintf(stderr, "tenantd tenants %s: no tenant \"%s\"\n", what, key);
        return 1;
    }
    return rc < 0 ? fail(what, rc, NULL) : 0;
}

static int cmd_create(struct td_app *app, const struct cli_args *a)
{
    json_t *out = NULL;
    const char *detail = NULL;
    struct tnt_owner owner = {opt(a, "owner-email"), opt(a, "owner-password"),
                              opt(a, "owner-name")};
    struct app_tenant_spec spec = {opt(a, "slug"),   opt(a, "name"),
                                   opt(a, "plan"),   opt(a, "isolation"),
                                   opt(a, "server"), owner.email ? &owner : NULL};
    int rc = app_tenant_create(app, &spec, &out, &detail);
    if (rc == TD_EVALIDATION)
        return usage_error("%s", detail ? detail : "invalid value");
    if (rc < 0)
        return fail("create", rc, detail);
    return print_json(out);
}

static int cmd_list(struct td_app *app)
{
    char *sql = td_xasprintf("SELECT %s FROM tenantd.tenants ORDER BY created_at DESC, id DESC",
                             tnt_catalog_columns);
    struct db_target tg = {.server = 0};
    struct db_stmt st = {sql, 0, NULL, 0};
    PGresult *r = NULL;
    int rc = db_exec(app->db, &tg, &st, 1, &r);
    free(sql);
    if (rc < 0)
        return fail("list", rc, NULL);
    json_t *list = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        struct tnt_tenant *t = tnt_tenant_from_row(app->db, r, i);
        json_array_append_new(list, tnt_tenant_json(t));
        tnt_tenant_unref(t);
    }
    PQclear(r);
    return print_json(list);
}

static int cmd_show(struct td_app *app, const struct cli_args *a)
{
    struct tnt_tenant *t;
    json_t *j;
    int status = find(app, "show", a->pos, &t);
    if (status)
        return status;
    int rc = app_tenant_show(app, t, &j);
    tnt_tenant_unref(t);
    return rc < 0 ? fail("show", rc, NULL) : print_json(j);
}

/* hibernate and wake: a database tenant's database stops or starts taking connections */
static int cmd_hibernate(struct td_app *app, const struct cli_args *a)
{
    struct tnt_tenant *t;
    const char *what = a->cmd->name, *detail = NULL;
    int status = find(app, what, a->pos, &t);
    if (status)
        return status;
    int sleep = !strcmp(what, "hibernate");
    int rc = app_tenant_hibernate(app, t, sleep, &detail);
    json_t *j = rc < 0 ? NULL : tnt_tenant_json(t);
    if (j)
        json_object_set_new(j, "hibernated", json_boolean(sleep));
    tnt_tenant_unref(t);
    return rc < 0 ? fail(what, rc, detail) : print_json(j);
}

/* update, suspend and resume: one catalog change through app_tenant_update. */
static int cmd_update(struct td_app *app, const struct cli_args *a)
{
    struct tnt_tenant *t = NULL, *nt = NULL;
    const char *what = a->cmd->name, *expires = opt(a, "expires"), *bad;
    struct app_tenant_patch p = {opt(a, "name"), opt(a, "plan"), NULL, expires != NULL, expires};
    int status = 0, rc;
    if (!strcmp(what, "suspend") || !strcmp(what, "resume"))
        p.status = !strcmp(what, "suspend") ? "suspended" : "active";
    if (expires && !strcmp(expires, "never"))
        p.expires = NULL;
    if ((bad = app_tenant_patch_check(&p)) != NULL)
        return usage_error("%s", bad);
    if ((status = find(app, what, a->pos, &t)) != 0)
        return status;
    rc = app_tenant_update(app, t->id, &p, &nt);
    if (rc == TD_EVALIDATION)
        status = usage_error("%s", "--expires must be an RFC 3339 timestamp or \"never\"");
    else if (rc < 0)
        status = fail(what, rc, NULL);
    else
        status = print_json(tnt_tenant_json(nt));
    tnt_tenant_unref(nt);
    tnt_tenant_unref(t);
    return status;
}

static int cmd_delete(struct td_app *app, const struct cli_args *a)
{
    struct tnt_tenant *t;
    int status = find(app, "delete", a->pos, &t);
    if (status)
        return status;
    if (strcmp(opt(a, "confirm"), t->slug) != 0) {
        tnt_tenant_unref(t);
        return usage_error("%s", "--confirm must be the tenant's slug; nothing was deleted");
    }
    int rc = app_tenant_delete(app, t);
    json_t *j =
        rc < 0 ? NULL : json_pack("{s:s, s:s, s:b}", "id", t->id, "slug", t->slug, "deleted", 1);
    tnt_tenant_unref(t);
    return rc < 0 ? fail("delete", rc, NULL) : print_json(j);
}

static int cmd_move(struct td_app *app, const struct cli_args *a)
{
    const char *iso = opt(a, "isolation"), *server = opt(a, "server");
    struct tnt_tenant *t, *moved = NULL;
    if (server && db_server_find(app->db, server) < 0)
        return usage_error("server \"%s\" is not a configured database server", server);
    int status = find(app, "move", a->pos, &t);
    if (status)
        return status;
    /* announces the move itself (NOTIFY), as for the admin API */
    int rc = tnt_move_cached(app->db, app->cache, &app->tenant_migs, t,
                             iso ? tnt_isolation_parse(iso) : -1, server, &moved);
    tnt_tenant_unref(t);
    if (rc == TD_EUNAVAILABLE)
        return fail("move", rc,
                    "a database server is unreachable or the tenant's tables stayed busy; "
                    "nothing was moved");
    if (rc < 0)
        return fail("move", rc, "the move failed and was undone; the tenant is where it was");
    json_t *j = tnt_tenant_json(moved);
    tnt_tenant_unref(moved);
    return print_json(j);
}

static int cmd_export(struct td_app *app, const struct cli_args *a)
{
    const char *path = opt(a, "output");
    struct tnt_tenant *t;
    struct tnt_export *e = NULL;
    FILE *f = stdout;
    long lines = 0;
    int status = find(app, "export", a->pos, &t);
    if (status)
        return status;
    int rc = tnt_export_open(app->db, t, &e);
    if (rc < 0) {
        status = fail("export", rc, NULL);
        goto out;
    }
    if (path) {
        /* the export holds password hashes: never readable by others */
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || fchmod(fd, 0600) < 0 || !(f = fdopen(fd, "w"))) {
            fprintf(stderr, "tenantd tenants export: cannot write %s: %s\n", path, strerror(errno));
            if (fd >= 0)
                close(fd);
            f = NULL;
            status = 1;
            goto out;
        }
    }
    const char *line;
    size_t len;
    while ((rc = tnt_export_next(e, &line, &len)) == 1) {
        fwrite(line, 1, len, f);
        fputc('\n', f);
        lines++;
    }
    if (f != stdout && fclose(f) != 0 && rc == 0)
        rc = TD_EINTERNAL;
    f = NULL;
    if (rc < 0) {
        status = fail("export", rc, "the export stopped midway; its output is incomplete");
        if (path)
            unlink(path);
    } else if (path) {
        status = print_json(json_pack("{s:s, s:s, s:s, s:I}", "id", t->id, "slug", t->slug,
                                      "output", path, "lines", (json_int_t)lines));
    } else {
        status = fflush(stdout) == 0 ? 0 : 1;
    }
out:
    if (f && f != stdout)
        fclose(f);
    tnt_export_close(e);
    tnt_tenant_unref(t);
    return status;
}

/* What the import's header check needs besides the exported tenant. */
struct import_cli {
    struct td_app *app;
    const struct cli_args *a;
    int usage; /* a refusal that is a usage error (exit 2) */
};

/* Member key of the exported tenant: *out is its text, NULL when absent or null. Returns
 * 0, or TD_EVALIDATION with *detail when it is there but not a string. */
static int export_str(json_t *tenant, const char *key, const char **out, const char **detail)
{
    json_t *v = json_object_get(tenant, key);
    *out = json_is_string(v) ? json_string_value(v) : NULL;
    if (v && !json_is_null(v) && !json_is_string(v)) {
        *detail = "the export's tenant has a member of the wrong type";
        return TD_EVALIDATION;
    }
    return 0;
}

/* The exported tenant's fields into n, *st and *expires, with the command's overrides,
 * checked by the value rules POST /admin/tenants/import applies (tenant/check.h). */
static int import_header(void *ctx, json_t *tenant, struct tnt_new *n, const char **st,
                         const char **expires, const char **detail)
{
    struct import_cli *c = ctx;
    const char *iso = opt(c->a, "isolation"), *eiso = NULL;
    int rc;
    if ((rc = export_str(tenant, "slug", &n->slug, detail)) < 0 ||
        (rc = export_str(tenant, "name", &n->name, detail)) < 0 ||
        (rc = export_str(tenant, "plan", &n->plan, detail)) < 0 ||
        (rc = export_str(tenant, "status", st, detail)) < 0 ||
        (rc = export_str(tenant, "isolation", &eiso, detail)) < 0 ||
        (rc = export_str(tenant, "subscription_expires_at", expires, detail)) < 0)
        return rc;
    n->slug = opt(c->a, "slug") ? opt(c->a, "slug") : n->slug;
    n->server = opt(c->a, "server");
    n->plan = n->plan ? n->plan : "free";
    iso = iso ? iso : eiso;
    n->isolation = iso ? tnt_isolation_parse(iso) : -1;
    /* bad usage (exit 2): the operator can fix these with --slug and --server */
    c->usage = 1;
    if (!n->slug || !tnt_slug_ok(n->slug)) {
        *detail = "the export's slug is not valid; give --slug";
        return TD_EVALIDATION;
    }
    if (n->server && db_server_find(c->app->db, n->server) < 0) {
        *detail = "--server is not a configured database server";
        return TD_EVALIDATION;
    }
    c->usage = 0;
    if (!tnt_text_ok(n->name, 200))
        *detail = "the export's tenant name is empty or longer than 200 characters";
    else if (!tnt_one_of(n->plan, tnt_plan_names) || (*st && !tnt_one_of(*st, tnt_status_names)))
        *detail = "the export's tenant has an unknown plan or status";
    else
        return 0;
    return TD_EVALIDATION;
}

static int cmd_import(struct td_app *app, const struct cli_args *a)
{
    struct import_cli c = {.app = app, .a = a, .usage = 0};
    struct tnt_import *im = NULL;
    struct tnt_tenant *t = NULL;
    const char *path = opt(a, "input");
    FILE *f = path && strcmp(path, "-") != 0 ? fopen(path, "re") : stdin;
    int status = 1, rc = 0;
    if (!f) {
        fprintf(stderr, "tenantd tenants import: cannot read %s: %s\n", path, strerror(errno));
        goto out;
    }
    /* streamed: memory stays flat whatever the size of the export */
    tnt_import_begin(app->db, &app->tenant_migs, import_header, &c, &im);
    char *buf = td_xmalloc(65536);
    size_t k;
    while (rc == 0 && (k = fread(buf, 1, 65536, f)) > 0)
        rc = tnt_import_feed(im, buf, k);
    free(buf);
    if (rc == 0 && ferror(f)) {
        fprintf(stderr, "tenantd tenants import: cannot read %s: %s\n", path ? path : "stdin",
                strerror(errno));
        goto out;
    }
    if (rc == 0)
        rc = tnt_import_finish(im, &t);
    if (rc < 0) {
        status = c.usage ? usage_error("%s", tnt_import_detail(im))
                         : fail("import", rc, tnt_import_detail(im));
        goto out;
    }
    status = print_json(tnt_tenant_json(t));
out:
    tnt_tenant_unref(t);
    tnt_import_free(im);
    if (f && f != stdin)
        fclose(f);
    return status;
}

int cli_tenants_run(struct td_app *app, int argc, char **argv)
{
    struct cli_args a;
    int status = parse(argc, argv, &a);
    if (status >= 0)
        return status;
    const char *c = a.cmd->name;
    if (!strcmp(c, "create"))
        return cmd_create(app, &a);
    if (!strcmp(c, "list"))
        return cmd_list(app);
    if (!strcmp(c, "show"))
        return cmd_show(app, &a);
    if (!strcmp(c, "delete"))
        return cmd_delete(app, &a);
    if (!strcmp(c, "move"))
        return cmd_move(app, &a);
    if (!strcmp(c, "hibernate") || !strcmp(c, "wake"))
        return cmd_hibernate(app, &a);
    if (!strcmp(c, "export"))
        return cmd_export(app, &a);
    if (!strcmp(c, "import"))
        return cmd_import(app, &a);
    if (!strcmp(c, "restore") || !strcmp(c, "clone")) {
        struct cli_restore_args r = {
            !strcmp(c, "clone"), opt(&a, "no-wait") != NULL, a.pos, opt(&a, "at"),
            opt(&a, "slug"),     opt(&a, "confirm")};
        return cli_restore(app, &r);
    }
    return cmd_update(app, &a);
}
