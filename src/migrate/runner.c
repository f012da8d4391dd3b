/*
 * runner.c - `tenantd migrate`: the catalog first (as every start-up does), then every
 * storage target (each server's pool schema, then each schema and database tenant) by
 * --jobs worker threads, each target in its own transaction. A failing target is
 * recorded and the run goes on; the ledgers make a re-run resume. One run at a time.
 */
#include "migrate/runner.h"

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/mem.h"
#include "migrate/internal.h"
#include "tenant/names.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_PASSES 3

static double now_s(void)
{
    return (double)td_now_us() / 1e6;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: tenantd migrate [--tenant SLUG]... [--jobs N] [--dry-run] [--wait]\n"
               "  --tenant SLUG  only this tenant (repeatable; a pool tenant means its pool)\n"
               "  --jobs N       targets migrated in parallel (default 4, at most "
               "TENANTD_POOL_SIZE)\n"
               "  --dry-run      list what would run; change nothing\n"
               "  --wait         wait for a run in progress instead of exiting with 3\n");
}

/* 1 when argv[*a] is name (as "name value" or "name=value"): *val set, NULL when missing. */
static int opt_value(int argc, char **argv, int *a, const char *name, const char **val)
{
    size_t n = strlen(name);
    if (strncmp(argv[*a], name, n) != 0 || (argv[*a][n] != '\0' && argv[*a][n] != '='))
        return 0;
    if (argv[*a][n] == '=')
        *val = argv[*a] + n + 1;
    else
        *val = *a + 1 < argc ? argv[++*a] : NULL;
    if (*val && !**val)
        *val = NULL;
    return 1;
}

int mig_cli_parse(int argc, char **argv, int pool_size, struct mig_cli_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->jobs = 4;
    o->only = td_xcalloc((size_t)argc + 1, sizeof(char *));
    for (int a = 0; a < argc; a++) {
        const char *val = NULL;
        char *end;
        if (opt_value(argc, argv, &a, "--tenant", &val) && val) {
            o->only[o->nonly++] = val;
        } else if (opt_value(argc, argv, &a, "--jobs", &val) && val) {
            long n = strtol(val, &end, 10);
            if (*end || n < 1 || n > 1024) {
                fprintf(stderr, "tenantd migrate: --jobs must be a positive number\n");
                return 2;
            }
            o->jobs = (int)n;
        } else if (!strcmp(argv[a], "--dry-run")) {
            o->dry = 1;
        } else if (!strcmp(argv[a], "--wait")) {
            o->wait = 1;
        } else if (!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h")) {
            usage(stdout);
            return -1;
        } else {
            fprintf(stderr, "tenantd migrate: %s \"%s\"\n",
                    strncmp(argv[a], "--tenant", 8) && strncmp(argv[a], "--jobs", 6)
                        ? "unknown argument"
                        : "missing value after",
                    argv[a]);
            usage(stderr);
            return 2;
        }
    }
    if (o->jobs > pool_size) {
        fprintf(stderr,
                "tenantd migrate: --jobs %d capped at the connection budget "
                "(TENANTD_POOL_SIZE=%d)\n",
                o->jobs, pool_size);
        o->jobs = pool_size;
    }
    return 0;
}

/* ---- the runner lock -------------------------------------------------------- */

/* Returns 0 with the lock held by *lockconn, or an exit status. */
static int take_lock(struct db *db, int wait, PGconn **lockconn)
{
    PGresult *r = NULL;
    if (db_admin_connect(db, 0, NULL, lockconn) < 0)
        return 1;
    if (db_admin_exec(*lockconn, "taking the runner lock",
                      "SELECT pg_try_advisory_lock(" MIG__RUNNER_LOCK ")", 0, NULL, &r) < 0)
        return 1;
    int got = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (got)
        return 0;
    if (wait) {
        fprintf(stderr, "tenantd migrate: another migration run is in progress; waiting for it "
                        "to finish\n");
        return db_admin_exec(*lockconn, "waiting for the runner lock",
                             "SELECT pg_advisory_lock(" MIG__RUNNER_LOCK ")", 0, NULL, NULL) < 0
                   ? 1
                   : 0;
    }
    char pid[32] = "?";
    if (db_admin_exec(*lockconn, "finding the other runner",
                      "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND "
                      "classid = 0 AND objid = " MIG__RUNNER_LOCK " AND objsubid = 1 AND "
                      "database = (SELECT oid FROM pg_database WHERE datname = "
                      "current_database())",
                      0, NULL, &r) == 0) {
        if (PQntuples(r) > 0)
            snprintf(pid, sizeof(pid), "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    fprintf(stderr,
            "tenantd migrate: another migration run is in progress (PostgreSQL backend pid "
            "%s); try again when it has finished, or pass --wait\n",
            pid);
    return 3;
}

/* ---- targets ---------------------------------------------------------------- */

static const char list_sql[] =
    "SELECT id, slug, isolation, server, schema_version, migration_error IS NOT NULL "
    "FROM tenantd.tenants WHERE ($1::text[] IS NULL OR slug = ANY($1::text[])) "
    "AND ($2::int IS NULL OR (isolation <> 'pool' AND schema_version < $2::int AND "
    "migration_error IS NULL)) ORDER BY created_at, id";

/* "{a,b}" for text[] (slugs match ^[a-z0-9-]+$, so no quoting is needed; others fail). */
static char *slug_array(const struct mig_cli_opts *o)
{
    if (!o->nonly)
        return NULL;
    size_t len = 3;
    for (int i = 0; i < o->nonly; i++)
        len += strlen(o->only[i]) + 1;
    char *s = td_xcalloc(len, 1);
    strcat(s, "{");
    for (int i = 0; i < o->nonly; i++) {
        if (strspn(o->only[i], "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(o->only[i]))
            continue;
        if (s[1])
            strcat(s, ",");
        strcat(s, o->only[i]);
    }
    strcat(s, "}");
    return s;
}

/* Add every tenant (of o's filter; with below, only non-pool tenants behind it that did
 * not fail) as a target; *pools[s] set when a listed pool tenant lives on server s. */
static int list_tenants(struct mig__run *run, PGconn *cat, const struct mig_cli_opts *o, int below,
                        int *pools, int *nfound)
{
    PGresult *r = NULL;
    char bv[16];
    snprintf(bv, sizeof(bv), "%d", below);
    char *slugs = slug_array(o);
    const char *p[2] = {slugs, below ? bv : NULL};
    int rc = db_admin_exec(cat, "checking the catalog",
                           "SELECT to_regclass('tenantd.tenants') IS NOT NULL", 0, NULL, &r);
    int exists = rc == 0 && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    r = NULL;
    *nfound = 0;
    if (rc == 0 && exists)
        rc = db_admin_exec(cat, "listing tenants", list_sql, 2, p, &r);
    free(slugs);
    for (int i = 0; r && i < PQntuples(r); i++) {
        int server = db_server_find(run->db, PQgetvalue(r, i, 3));
        const char *iso = PQgetvalue(r, i, 2);
        (*nfound)++;
        if (server < 0) {
            td_log_warn("tenant %s is on unknown server %s: skipped", PQgetvalue(r, i, 1),
                        PQgetvalue(r, i, 3));
            continue;
        }
        if (!strcmp(iso, "pool")) {
            pools[server] = 1;
            continue;
        }
        char ident[TNT_NAME_MAX], dbname[TNT_NAME_MAX];
        if (tnt_name_of(PQgetvalue(r, i, 0), TNT_NAME_SCHEMA, ident) < 0 ||
            tnt_name_of(PQgetvalue(r, i, 0), TNT_NAME_DATABASE, dbname) < 0)
            continue;
        mig__target_add(run, server, !strcmp(iso, "database") ? dbname : NULL, ident,
                        PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), atoi(PQgetvalue(r, i, 4)),
                        PQgetvalue(r, i, 5)[0] == 't');
    }
    PQclear(r);
    return rc;
}

/* ---- workers and progress --------------------------------------------------- */

static void *worker_main(void *arg)
{
    struct mig__worker *w = arg;
    struct mig__run *run = w->run;
    for (;;) {
        int i = atomic_fetch_add(&run->next, 1);
        if (i >= atomic_load(&run->end))
            break;
        mig__process(w, &run->targets[i]);
        atomic_fetch_add(&run->done, 1);
    }
    return NULL;
}

static void progress(struct mig__run *run, int total, double t0, int final)
{
    int done = atomic_load(&run->done);
    double el = now_s() - t0, rate = el > 0 ? done / el : 0;
    int width = 30, fill = total ? done * width / total : width;
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    char eta[32] = "-";
    if (rate > 0)
        snprintf(eta, sizeof(eta), "%.0fs", (total - done) / rate);
    fprintf(stderr, "\r%6d/%-6d [%s] %3d%%  %7.1f targets/s  ETA %-6s failed %d%s", done, total,
            bar, total ? done * 100 / total : 100, rate, eta, atomic_load(&run->failed),
            final ? "\n" : "");
    fflush(stderr);
}

/* Process targets [from, to) with up to jobs workers; progress on a terminal. */
static void run_phase(struct mig__run *run, struct mig__worker *w, int jobs, int from, int to,
                      int show, double t0)
{
    int n = to - from;
    if (n <= 0)
        return;
    if (jobs > n)
        jobs = n;
    atomic_store(&run->next, from);
    atomic_store(&run->end, to);
    for (int j = 0; j < jobs; j++)
        pthread_create(&w[j].thread, NULL, worker_main, &w[j]);
    while (show && atomic_load(&run->done) < to) {
        progress(run, run->ntargets, t0, 0);
        nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
    }
    for (int j = 0; j < jobs; j++)
        pthread_join(w[j].thread, NULL);
}

/* ---- output ----------------------------------------------------------------- */

static const char *target_name(const struct mig__run *run, const struct mig__target *t, char *buf,
                               size_t size)
{
    snprintf(buf, size, "%s@%s", t->database ? t->database : t->schema,
             db_server_name(run->db, t->server));
    return buf;
}

static void print_dry(const struct mig__run *run, const char *catalog_pending, int as_json)
{
    json_t *plan = json_array(), *failed = json_array();
    int npending = 0;
    char name[96];
    for (int i = 0; i < run->ntargets; i++) {
        const struct mig__target *t = &run->targets[i];
        target_name(run, t, name, sizeof(name));
        if (t->state == MIG__FAILED)
            json_array_append_new(failed, json_pack("{s:s?, s:s, s:s}", "tenant", t->slug, "target",
                                                    name, "error", t->error));
        if (t->state != MIG__TODO)
            continue;
        npending++;
        json_array_append_new(plan, json_pack("{s:s?, s:s, s:i, s:s}", "tenant", t->slug, "target",
                                              name, "version", t->version, "pending", t->pending));
    }
    if (as_json) {
        json_t *o =
            json_pack("{s:b, s:s, s:i, s:i, s:i, s:o, s:o}", "dry_run", 1, "catalog_pending",
                      catalog_pending, "targets", run->ntargets, "pending", npending, "failed",
                      (int)json_array_size(failed), "plan", plan, "failures", failed);
        json_dumpf(o, stdout, JSON_COMPACT);
        fputc('\n', stdout);
        json_decref(o);
        return;
    }
    printf("catalog: %s\n", *catalog_pending ? catalog_pending : "up to date");
    size_t i;
    json_t *v;
    json_array_foreach(plan, i, v)
    {
        const char *slug = json_string_value(json_object_get(v, "tenant"));
        printf("%s (%s): %s\n", slug ? slug : "pool",
               json_string_value(json_object_get(v, "target")),
               json_string_value(json_object_get(v, "pending")));
    }
    json_array_foreach(failed, i, v)
        printf("%s: %s\n", json_string_value(json_object_get(v, "target")),
               json_string_value(json_object_get(v, "error")));
    printf("%d of %d targets pending, %d refused (dry run: nothing changed)\n", npending,
           run->ntargets, (int)json_array_size(failed));
    json_decref(plan);
    json_decref(failed);
}

static void print_summary(const struct mig__run *run, int expected, double seconds, int as_json,
                          int human)
{
    int migrated = 0, failed = 0;
    json_t *failures = json_array();
    char name[96];
    for (int i = 0; i < run->ntargets; i++) {
        const struct mig__target *t = &run->targets[i];
        migrated += t->state == MIG__MIGRATED;
        if (t->state != MIG__FAILED)
            continue;
        failed++;
        json_array_append_new(failures, json_pack("{s:s?, s:s, s:s}", "tenant", t->slug, "target",
                                                  target_name(run, t, name, sizeof(name)), "error",
                                                  t->error ? t->error : "unknown error"));
    }
    double rate = seconds > 0 ? run->ntargets / seconds : 0;
    if (human) {
        fprintf(stderr,
                "%d targets: %d migrated, %d already at version %d, %d failed in %.2f s "
                "(%.1f targets/s)\n",
                run->ntargets, migrated, run->ntargets - migrated - failed, expected, failed,
                seconds, rate);
        size_t i;
        json_t *v;
        json_array_foreach(failures, i, v)
        {
            const char *slug = json_string_value(json_object_get(v, "tenant"));
            fprintf(stderr, "  failed: %s (%s): %s\n", slug ? slug : "pool",
                    json_string_value(json_object_get(v, "target")),
                    json_string_value(json_object_get(v, "error")));
        }
    }
    if (as_json) {
        json_t *o = json_pack("{s:i, s:i, s:i, s:i, s:O, s:i, s:f, s:f}", "targets", run->ntargets,
                              "migrated", migrated, "current", run->ntargets - migrated - failed,
                              "failed", failed, "failures", failures, "expected_version", expected,
                              "seconds", seconds, "targets_per_second", rate);
        json_dumpf(o, stdout, JSON_COMPACT);
        fputc('\n', stdout);
        fflush(stdout);
        json_decref(o);
    }
    json_decref(failures);
}

/* Pending catalog files ("" when none, or when an applied one was edited: logged). */
static char *catalog_pending(PGconn *cat, const struct mig_set *s, int *edited)
{
    struct mig_ledger l;
    int *pending = td_xcalloc((size_t)s->n + 1, sizeof(int));
    int np = 0;
    char *err = NULL, *out = td_xcalloc((size_t)s->n * 80 + 1, 1);
    size_t len = 0;
    *edited = 0;
    if (mig_ledger_read(cat, "tenantd.catalog_migrations", &l) == 0) {
        if (mig_pending(s, &l, pending, &np, &err) < 0) {
            fprintf(stderr, "tenantd migrate: catalog %s\n", err);
            *edited = 1;
        }
        for (int k = 0; k < np; k++)
            len += (size_t)snprintf(out + len, (size_t)s->n * 80 + 1 - len, "%s%s", k ? ", " : "",
                                    s->files[pending[k]].name);
        mig_ledger_cleanup(&l);
    }
    free(pending);
    return out;
}

/* ---- the command ------------------------------------------------------------ */

/* Pools (of every server, or of listed pool tenants' servers) first, then tenants. */
static int build_targets(struct mig__run *run, PGconn *cat, const struct mig_cli_opts *o)
{
    int ns = db_server_count(run->db), nfound = 0;
    int *pools = td_xcalloc((size_t)ns, sizeof(int));
    struct mig__run tenants = {.db = run->db};
    int rc = list_tenants(&tenants, cat, o, 0, pools, &nfound), distinct = 0;
    for (int i = 0; i < o->nonly; i++) {
        int dup = 0;
        for (int j = 0; j < i; j++)
            dup |= !strcmp(o->only[i], o->only[j]);
        distinct += !dup;
    }
    if (rc == 0 && o->nonly && nfound < distinct) {
        fprintf(stderr,
                "tenantd migrate: --tenant names a tenant that does not exist (%d of "
                "%d found)\n",
                nfound, distinct);
        rc = 2;
    }
    for (int s = 0; rc == 0 && s < ns; s++)
        if (!o->nonly || pools[s])
            mig__target_add(run, s, NULL, "pool", NULL, NULL, -1, 0);
    for (int i = 0; rc == 0 && i < tenants.ntargets; i++) {
        struct mig__target *t = &tenants.targets[i];
        mig__target_add(run, t->server, t->database, t->schema, t->id, t->slug, t->row_version,
                        t->row_failed);
    }
    mig__targets_free(&tenants);
    free(pools);
    return rc;
}

/* Pool tenants created during the run carry an older version in their rows. */
static void pool_rows(struct mig__run *run, PGconn *cat, int npools)
{
    for (int i = 0; !run->dry && i < npools; i++) {
        const struct mig__target *t = &run->targets[i];
        char v[16];
        snprintf(v, sizeof(v), "%d", t->version);
        if (t->state == MIG__FAILED)
            continue;
        if (db_admin_exec(cat, "recording pool versions",
                          "UPDATE tenantd.tenants SET schema_version = $2 WHERE isolation = "
                          "'pool' AND server = $1 AND schema_version < $2 AND migration_error "
                          "IS NULL",
                          2, (const char *const[]){db_server_name(run->db, t->server), v},
                          NULL) < 0)
            td_log_warn("could not record the pool version of new pool tenants");
    }
}

static void run_all(struct mig__run *run, PGconn *cat, const struct mig_cli_opts *o, int npools)
{
    int show = !o->dry && isatty(2);
    double t0 = now_s();
    struct mig__worker *w = td_xcalloc((size_t)o->jobs, sizeof(*w));
    for (int j = 0; j < o->jobs; j++)
        w[j].run = run;
    /* pools first: their tenants' rows and every schema tenant come after */
    run_phase(run, w, o->jobs, 0, npools, show, t0);
    run_phase(run, w, o->jobs, npools, run->ntargets, show, t0);
    /* tenants made meanwhile by a server that provisions at an older version */
    for (int pass = 1; !o->dry && !o->nonly && pass < MAX_PASSES; pass++) {
        int from = run->ntargets, nfound,
            *pools = td_xcalloc((size_t)db_server_count(run->db), sizeof(int));
        int rc = list_tenants(run, cat, o, mig_latest(run->tenant_migs), pools, &nfound);
        free(pools);
        if (rc < 0 || run->ntargets == from)
            break;
        run_phase(run, w, o->jobs, from, run->ntargets, show, t0);
    }
    pool_rows(run, cat, npools);
    if (show)
        progress(run, run->ntargets, t0, 1);
    for (int j = 0; j < o->jobs; j++)
        mig__worker_cleanup(&w[j]);
    free(w);
}

void mig_cli_opts_cleanup(struct mig_cli_opts *o)
{
    free(o->only);
    o->only = NULL;
}

int mig_cli_run(const struct mig_cli_opts *o, struct db *db, const struct mig_set *catalog_migs,
                const struct mig_set *tenant_migs)
{
    struct mig__run run = {0};
    PGconn *cat = NULL, *lock = NULL;
    int status = 0, edited = 0;
    char *cpending = NULL;
    run.db = db;
    run.tenant_migs = tenant_migs;
    run.dry = o->dry;
    if (db_admin_connect(db, 0, NULL, &cat) < 0) {
        status = 1;
        goto out;
    }
    if (!o->dry && (status = take_lock(db, o->wait, &lock)) != 0)
        goto out;
    cpending = catalog_pending(cat, catalog_migs, &edited);
    if ((status = build_targets(&run, cat, o)) != 0)
        goto out;
    int npools = 0;
    while (npools < run.ntargets && !run.targets[npools].slug)
        npools++;
    double t0 = now_s();
    run_all(&run, cat, o, npools);
    double seconds = now_s() - t0;
    if (o->dry)
        print_dry(&run, cpending, !isatty(1));
    else
        print_summary(&run, mig_latest(tenant_migs), seconds, !isatty(1) || !isatty(2), isatty(2));
    status = atomic_load(&run.failed) > 0 || edited ? 1 : 0;
out:
    free(cpending);
    mig__targets_free(&run);
    PQfinish(lock);
    PQfinish(cat);
    return status;
}
