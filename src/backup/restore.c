/*
 * restore.c - the tenant_restore and tenant_clone jobs: make sure the moment is archived,
 * recover a scratch copy of the cluster at that moment, export the tenant from it with the
 * normal export, and import it into the live server (as a new tenant, or in place of the
 * tenant's current rows, which are first kept as an export file).
 */
#include "backup/internal.h"

#include "core/log.h"
#include "core/mem.h"
#include "tenant/export.h"
#include "tenant/tenant.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ARCHIVE_WAIT_MS 120000

struct job {
    struct bkp *b;
    PGconn *pg; /* catalog, superuser */
    int server; /* where the tenant lives: its backups are that server's */
    const char *id;
    const json_t *p;
    char *err;
    size_t cap;
    char at[64];
    long long export_ms, import_ms, rows;
};

static const char *pstr(const struct job *j, const char *key)
{
    return json_string_value(json_object_get(j->p, key));
}

static int __attribute__((format(printf, 3, 4))) fail(struct job *j, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->err, j->cap, fmt, ap);
    va_end(ap);
    return rc;
}

/* Progress doubles as the lease's heartbeat: a restore outlives JOBS_LEASE_S. */
static void progress(struct job *j, double f)
{
    char v[16];
    snprintf(v, sizeof(v), "%.2f", f);
    (void)!db_admin_exec(j->pg, "recording a job's progress",
                         "UPDATE tenantd.jobs SET progress = $2, locked_at = now() WHERE id = $1",
                         2, (const char *const[]){j->id, v}, NULL);
}

static void beat(void *arg)
{
    struct job *j = arg;
    (void)!db_admin_exec(j->pg, "extending a job's lease",
                         "UPDATE tenantd.jobs SET locked_at = now() WHERE id = $1", 1,
                         (const char *const[]){j->id}, NULL);
}

/* Wait until the segment named wal is in the archive of the server pg is connected to. */
static int wait_archived(struct job *j, PGconn *pg, const char *wal)
{
    long long t0 = bkp__now_ms();
    const struct timespec pause = {0, 200 * 1000 * 1000};
    for (;;) {
        PGresult *r = NULL;
        int rc = db_admin_exec(pg, "waiting for the archive",
                               "SELECT coalesce(last_archived_wal >= $1, false) FROM "
                               "pg_stat_archiver",
                               1, (const char *const[]){wal}, &r);
        int done = rc == 0 && PQgetvalue(r, 0, 0)[0] == 't';
        PQclear(r);
        if (done)
            return 0;
        if (rc < 0 || bkp__now_ms() - t0 > ARCHIVE_WAIT_MS)
            return fail(j, TD_EUNAVAILABLE, "WAL segment %s of server %s was not archived in time",
                        wal, db_server_name(j->b->db, j->server));
        nanosleep(&pause, NULL);
    }
}

/* On the tenant's server: a commit after the moment, then a WAL switch, then wait until that
 * segment is archived: recovery must find a commit past its target in the archive, or it
 * ends short of it. A clone's moment is that server's now(). */
static int archive_moment(struct job *j)
{
    PGconn *pg = NULL;
    PGresult *r = NULL;
    char wal[64];
    int rc = db_admin_connect(j->b->db, j->server, NULL, &pg);
    if (rc == 0)
        rc = db_admin_exec(pg, "reading the moment", "SELECT now()::text", 0, NULL, &r);
    if (rc < 0) {
        PQfinish(pg);
        return fail(j, rc, "server %s is unreachable", db_server_name(j->b->db, j->server));
    }
    if (!j->at[0])
        snprintf(j->at, sizeof(j->at), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    r = NULL;
    if ((rc = db_admin_exec(pg, "writing a commit past the moment", "SELECT pg_current_xact_id()",
                            0, NULL, NULL)) < 0 ||
        (rc = db_admin_exec(pg, "switching WAL", "SELECT pg_walfile_name(pg_switch_wal())", 0, NULL,
                            &r)) < 0) {
        PQfinish(pg);
        return fail(j, rc, "could not switch WAL on the server");
    }
    snprintf(wal, sizeof(wal), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    rc = wait_archived(j, pg, wal);
    PQfinish(pg);
    return rc;
}

/* The catalog row of the tenant, bound to sdb (the copy): from the copy's own catalog for
 * the embedded cluster (a deleted tenant is found there too); a copy of a server given by
 * URL has no catalog, so from the live one (a deleted tenant: the row kept at deletion).
 * TD_EVALIDATION when the tenant did not exist at that moment. */
static int find_in_copy(struct job *j, struct db *sdb, struct tnt_tenant **out)
{
    PGconn *pg = NULL;
    PGresult *r = NULL;
    int url = j->server != 0, rc = 0;
    char *sql = td_xasprintf(
        url ? "SELECT %s FROM tenantd.tenants WHERE id = $1 UNION ALL "
              "SELECT %s FROM (SELECT (jsonb_populate_record(NULL::"
              "tenantd.tenants, d.last_row)).* FROM tenantd.deleted_tenants "
              "d WHERE d.id = $1 AND d.last_row IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "
              "tenantd.tenants t WHERE t.id = $1)) tenants"
            : "SELECT %s FROM tenantd.tenants WHERE id = $1",
        tnt_catalog_columns, tnt_catalog_columns);
    if (!url)
        rc = db_admin_connect(sdb, 0, NULL, &pg);
    if (rc == 0)
        rc = db_admin_exec(url ? j->pg : pg, "reading the tenant's catalog row", sql, 1,
                           (const char *const[]){pstr(j, "tenant_id")}, &r);
    if (rc < 0)
        fail(j, rc, "the %s catalog did not answer", url ? "live" : "recovered");
    else if (PQntuples(r) == 0 && url)
        rc = fail(j, TD_EVALIDATION,
                  "the catalog keeps no row of the tenant (one deleted before tenantd kept "
                  "deleted tenants' rows cannot be restored from a server given by URL)");
    else if (PQntuples(r) == 0)
        rc = fail(j, TD_EVALIDATION, "the tenant did not exist at %s", j->at);
    else
        *out = tnt_tenant_from_row(sdb, r, 0);
    PQclear(r);
    PQfinish(pg);
    free(sql);
    return rc;
}

/* Write t's export from db into path, one line per row. */
static int export_to(struct job *j, struct db *db, const struct tnt_tenant *t, const char *path)
{
    struct tnt_export *e = NULL;
    FILE *f = fopen(path, "we");
    const char *line;
    size_t len;
    int rc = f ? tnt_export_open(db, t, &e) : TD_EUNAVAILABLE, more = 0;
    long long n = 0;
    while (rc == 0 && (more = tnt_export_next(e, &line, &len)) == 1) {
        if (fwrite(line, 1, len, f) != len || fputc('\n', f) == EOF)
            rc = TD_EUNAVAILABLE;
        n++;
    }
    if (rc == 0 && more < 0)
        rc = more;
    tnt_export_close(e);
    if (f && fclose(f) != 0 && rc == 0)
        rc = TD_EUNAVAILABLE;
    if (rc < 0)
        return fail(j, rc, "could not export the tenant to %s", path);
    if (!j->rows)
        j->rows = n - 1; /* the copy's export, not the kept one of the replaced rows */
    return 0;
}

/* A registry of the copy: the server the tenant lives on is the copy, under its own name
 * (a server given by URL is server 1, after a catalog server that is the copy too). */
static int open_copy(struct job *j, const struct bkp__scratch *s, struct db **out)
{
    char *servers =
        j->server ? td_xasprintf("%s=%s", db_server_name(j->b->db, j->server), s->conninfo) : NULL;
    struct db_config dc = {.main_conninfo = s->conninfo,
                           .servers = servers,
                           .app_password = "unused",
                           .pool_size = 2,
                           .tenant_pools = 2,
                           .acquire_timeout_ms = 5000,
                           .tenant_share = 100,
                           .conn_max_tenants = 500};
    int rc = db_new(&dc, out);
    free(servers);
    return rc < 0 ? fail(j, rc, "could not open the recovered copy") : 0;
}

/* One recovered copy (dbs: the databases to copy, NULL: all), the tenant exported from it.
 * Returns 1 when the tenant lived in a database of its own at the moment that the copy left
 * out (it was moved since): the caller copies again with every database. */
static int copy_and_export(struct job *j, const char *path, const char *const *dbs,
                           long long *restore_ms, long long *replay_ms)
{
    struct bkp *b = j->b;
    struct bkp__scratch s = {.tick = beat, .tick_arg = j};
    struct db *sdb = NULL;
    struct tnt_tenant *t = NULL;
    int rc = bkp__scratch_start(b, j->server, j->id, j->at, dbs, &s, j->err, j->cap);
    *restore_ms += s.restore_ms;
    *replay_ms += s.replay_ms;
    progress(j, 0.6);
    if (rc == 0)
        rc = open_copy(j, &s, &sdb);
    if (rc == 0)
        rc = find_in_copy(j, sdb, &t);
    const char *here = db_server_name(b->db, j->server);
    if (rc == 0 && strcmp(t->server, here) != 0)
        rc = fail(j, TD_EVALIDATION,
                  "the tenant lived on server %s at that moment, not on server %s, whose copy "
                  "this is",
                  t->server, here);
    const char *want = dbs ? dbs[1] : NULL;
    if (rc == 0 && s.partial && t->isolation == TNT_ISO_DATABASE &&
        (!want || strcmp(want, t->dbname) != 0))
        rc = 1;
    long long t0 = bkp__now_ms();
    if (rc == 0)
        rc = export_to(j, sdb, t, path);
    j->export_ms = bkp__now_ms() - t0;
    tnt_tenant_unref(t);
    db_free(sdb);
    bkp__scratch_stop(b, &s);
    return rc;
}

/* Recover the copy, export the tenant from it into path. */
static int export_from_copy(struct job *j, const char *path, long long *restore_ms,
                            long long *replay_ms)
{
    /* the database of pool and schema tenants (the catalog's, on the embedded cluster) and
     * the tenant's own, if any */
    const char *dbs[] = {j->b->servers[j->server].dbname, pstr(j, "dbname"), NULL};
    pthread_mutex_lock(&j->b->restore_mu);
    int rc = copy_and_export(j, path, dbs, restore_ms, replay_ms);
    if (rc == 1) {
        td_log_info("backup: job %s: the tenant had a database of its own at that moment; "
                    "copying every database",
                    j->id);
        rc = copy_and_export(j, path, NULL, restore_ms, replay_ms);
    }
    pthread_mutex_unlock(&j->b->restore_mu);
    return rc;
}

/* Stream the export at path into im and finish it; the reason of a failure goes to j. */
static int feed_file(struct job *j, struct tnt_import *im, const char *path,
                     struct tnt_tenant **out)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return fail(j, TD_EUNAVAILABLE, "could not read the export %s", path);
    char *buf = td_xmalloc(65536);
    size_t k;
    int rc = 0;
    while (rc == 0 && (k = fread(buf, 1, 65536, f)) > 0)
        rc = tnt_import_feed(im, buf, k);
    if (rc == 0 && ferror(f))
        rc = fail(j, TD_EUNAVAILABLE, "could not read the export %s", path);
    free(buf);
    fclose(f);
    if (rc == 0)
        rc = tnt_import_finish(im, out);
    if (rc < 0 && tnt_import_detail(im))
        snprintf(j->err, j->cap, "%s", tnt_import_detail(im));
    return rc;
}

/* The new tenant from the export's header (tnt_import_header_fn): its own fields, under
 * the job's new slug when one was given. */
static int restore_header(void *ctx, json_t *tj, struct tnt_new *n, const char **status,
                          const char **expires, const char **detail)
{
    struct job *j = ctx;
    const char *new_slug = pstr(j, "new_slug");
    const char *iso = json_string_value(json_object_get(tj, "isolation"));
    n->slug = new_slug ? new_slug : json_string_value(json_object_get(tj, "slug"));
    /* a deleted tenant comes back under its old id: its users' tokens name it */
    n->id = new_slug ? NULL : pstr(j, "tenant_id");
    n->name = json_string_value(json_object_get(tj, "name"));
    n->plan = json_string_value(json_object_get(tj, "plan"));
    n->isolation = iso ? tnt_isolation_parse(iso) : -1;
    n->server = json_string_value(json_object_get(tj, "server"));
    *status = json_string_value(json_object_get(tj, "status"));
    *expires = json_string_value(json_object_get(tj, "subscription_expires_at"));
    if (!*status)
        *status = "active";
    if (!n->slug || !n->name || !n->plan) {
        *detail = "the export's tenant has no slug, name or plan";
        return TD_EVALIDATION;
    }
    return 0;
}

/* The live tenant with this id (1 ref), or NULL when it was deleted. */
static int live_tenant(struct job *j, const char *id, struct tnt_tenant **out)
{
    PGresult *r = NULL;
    char *sql = td_xasprintf("SELECT %s FROM tenantd.tenants WHERE id = $1", tnt_catalog_columns);
    int rc = db_admin_exec(j->pg, "reading the tenant", sql, 1, (const char *const[]){id}, &r);
    *out = rc == 0 && PQntuples(r) == 1 ? tnt_tenant_from_row(j->b->db, r, 0) : NULL;
    PQclear(r);
    free(sql);
    return rc;
}

/* Replace the live tenant's rows with the export at path, keeping what it had as an
 * export for its window. */
static int replace_live(struct job *j, struct tnt_tenant *t, const char *path)
{
    char *keep = td_xasprintf("%s/exports/replaced-%s-%s.ndjson", j->b->dir, t->id, j->id);
    struct tnt_import *im = NULL;
    struct tnt_tenant *same = NULL;
    int rc = export_to(j, j->b->db, t, keep);
    if (rc == 0) {
        tnt_import_begin_replace(j->b->db, t, &im);
        rc = feed_file(j, im, path, &same);
    }
    if (rc == 0)
        (void)!db_admin_exec(j->pg, "announcing the restore",
                             "SELECT pg_notify('tenantd_tenants', $1)", 1,
                             (const char *const[]){t->id}, NULL);
    tnt_tenant_unref(same);
    tnt_import_free(im);
    free(keep);
    return rc;
}

/* Import the export at path, streamed: as a new tenant (new_slug, or the old slug of a
 * deleted tenant), or over the live tenant's rows. *out gets the resulting tenant. */
static int import_from(struct job *j, const char *path, struct tnt_tenant **out)
{
    struct tnt_tenant *live = NULL;
    struct tnt_import *im = NULL;
    int rc = 0;
    if (!pstr(j, "new_slug") && (rc = live_tenant(j, pstr(j, "tenant_id"), &live)) < 0)
        goto out;
    if (live) {
        rc = replace_live(j, live, path);
        *out = live;
        live = NULL;
        goto out;
    }
    tnt_import_begin(j->b->db, j->b->migs, restore_header, j, &im);
    rc = feed_file(j, im, path, out);
out:
    if (rc < 0 && !j->err[0])
        snprintf(j->err, j->cap, "the import into the live server failed");
    tnt_import_free(im);
    tnt_tenant_unref(live);
    return rc;
}

static void record(struct job *j, int rc, const struct tnt_tenant *t, json_t *timing)
{
    json_t *err = rc < 0 ? json_pack("{s:i, s:s}", "err", rc, "detail", j->err) : NULL;
    json_t *tj = t ? tnt_tenant_json(t) : NULL;
    char *res = tj ? json_dumps(tj, JSON_COMPACT) : NULL;
    json_decref(tj);
    char *errs = err ? json_dumps(err, JSON_COMPACT) : NULL;
    char *tim = json_dumps(timing, JSON_COMPACT);
    const char *p[4] = {j->id, res, errs, tim};
    if (db_admin_exec(j->pg, "recording the job's outcome",
                      "WITH a AS (UPDATE tenantd.operator_actions SET status = CASE WHEN $3::jsonb "
                      "IS NULL THEN 'succeeded' ELSE 'failed' END, finished_at = now(), "
                      "target_at = coalesce(target_at, $5::timestamptz), detail = $4::jsonb "
                      "WHERE job_id = $1) "
                      "UPDATE tenantd.jobs SET progress = CASE WHEN $3::jsonb IS NULL THEN 1 "
                      "ELSE progress END, result = $2::jsonb, error = $3::jsonb WHERE id = $1",
                      5, (const char *const[]){p[0], p[1], p[2], p[3], j->at[0] ? j->at : NULL},
                      NULL) < 0)
        td_log_warn("backup: could not record the outcome of job %s", j->id);
    json_decref(err);
    free(res);
    free(errs);
    free(tim);
}

int bkp__job_run(void *arg, PGconn *pg, const char *job_id, const json_t *payload, char *err,
                 size_t cap)
{
    struct job j = {.b = arg, .pg = pg, .id = job_id, .p = payload, .err = err, .cap = cap};
    struct tnt_tenant *t = NULL;
    long long restore_ms = 0, replay_ms = 0, t0 = bkp__now_ms();
    char *path = NULL;
    int rc = 0;
    err[0] = '\0';
    const char *server = pstr(&j, "server");
    j.server = server ? db_server_find(j.b->db, server) : 0;
    long long oldest;
    if (j.server < 0)
        rc = fail(&j, TD_EUNAVAILABLE, "server %s is not configured", server);
    else if ((rc = bkp_oldest(j.b, j.server, &oldest, err, cap)) < 0)
        j.server = 0;
    if (rc == 0 && pstr(&j, "at"))
        snprintf(j.at, sizeof(j.at), "%s", pstr(&j, "at"));
    if (rc == 0)
        rc = archive_moment(&j);
    long long archive_ms = bkp__now_ms() - t0;
    progress(&j, 0.1);
    if (rc == 0) {
        path = td_xasprintf("%s/exports/%s.ndjson", j.b->dir, job_id);
        rc = export_from_copy(&j, path, &restore_ms, &replay_ms);
    }
    progress(&j, 0.8);
    t0 = bkp__now_ms();
    if (rc == 0)
        rc = import_from(&j, path, &t);
    j.import_ms = bkp__now_ms() - t0;
    json_t *timing = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "archive_ms", archive_ms,
                               "backup_copy_ms", restore_ms, "wal_replay_ms", replay_ms,
                               "export_ms", j.export_ms, "import_ms", j.import_ms, "rows", j.rows);
    record(&j, rc, t, timing);
    td_log_info("backup: job %s %s (copy %lld ms, replay %lld ms, export %lld ms, import %lld "
                "ms, %lld rows)%s%s",
                job_id, rc == 0 ? "succeeded" : "failed", restore_ms, replay_ms, j.export_ms,
                j.import_ms, j.rows, rc < 0 ? ": " : "", rc < 0 ? err : "");
    json_decref(timing);
    if (path && remove(path) < 0 && errno != ENOENT)
        td_log_warn("backup: could not remove %s", path);
    free(path);
    tnt_tenant_unref(t);
    return rc;
}
