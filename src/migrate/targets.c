/*
 * targets.c - one storage target of `tenantd migrate`: a server's pool schema or one
 * tenant's schema, migrated in its own transaction under a per-target advisory lock, its
 * outcome (version, duration, or error) summarised in the catalog row(s) of its tenant(s).
 */
#include "migrate/internal.h"
#include "tenant/names.h"

#include "core/clock.h"
#include "core/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct mig__target *mig__target_add(struct mig__run *run, int server, const char *database,
                                    const char *schema, const char *id, const char *slug,
                                    int row_version, int row_failed)
{
    if (run->ntargets == run->cap) {
        run->cap = run->cap ? run->cap * 2 : 64;
        run->targets = td_xrealloc(run->targets, sizeof(*run->targets) * (size_t)run->cap);
    }
    struct mig__target *t = &run->targets[run->ntargets++];
    memset(t, 0, sizeof(*t));
    t->server = server;
    t->database = database ? td_xstrdup(database) : NULL;
    snprintf(t->schema, sizeof(t->schema), "%s", schema);
    snprintf(t->id, sizeof(t->id), "%s", id ? id : "");
    t->slug = slug ? td_xstrdup(slug) : NULL;
    t->row_version = row_version;
    t->row_failed = row_failed;
    return t;
}

void mig__targets_free(struct mig__run *run)
{
    for (int i = 0; i < run->ntargets; i++) {
        struct mig__target *t = &run->targets[i];
        free(t->database);
        free(t->slug);
        free(t->error);
        free(t->pending);
    }
    free(run->targets);
    run->targets = NULL;
    run->ntargets = run->cap = 0;
}

void mig__worker_cleanup(struct mig__worker *w)
{
    if (!w->srv)
        return;
    for (int s = 0; s < db_server_count(w->run->db); s++)
        PQfinish(w->srv[s]);
    free(w->srv);
    w->srv = NULL;
}

/* A connection to server's default database, opened on first use and kept. */
static PGconn *server_conn(struct mig__worker *w, int server)
{
    if (!w->srv)
        w->srv = td_xcalloc((size_t)db_server_count(w->run->db), sizeof(PGconn *));
    if (w->srv[server] && PQstatus(w->srv[server]) != CONNECTION_OK) {
        PQfinish(w->srv[server]);
        w->srv[server] = NULL;
    }
    if (!w->srv[server] && db_admin_connect(w->run->db, server, NULL, &w->srv[server]) < 0)
        w->srv[server] = NULL;
    return w->srv[server];
}

static void fail(struct mig__target *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct mig__target *t, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    free(t->error);
    t->error = td_xstrdup(buf);
    t->state = MIG__FAILED;
}

/* Dry run: which files t lacks (or which applied file was edited). */
static void inspect(PGconn *pg, const struct mig_set *s, struct mig__target *t)
{
    struct mig_ledger l = {0};
    int *pending = td_xcalloc((size_t)s->n + 1, sizeof(int));
    int np = 0;
    char *err = NULL;
    char *qs = tnt_name_quote(pg, t->schema);
    char *ledger = qs ? td_xasprintf("%s.tenantd_migrations", qs) : NULL;
    int rc = ledger ? mig_ledger_read(pg, ledger, &l) : TD_EINTERNAL;
    free(ledger);
    PQfreemem(qs);
    if (rc < 0) {
        fail(t, "could not read the ledger: %s", PQerrorMessage(pg));
        goto out;
    }
    t->version = l.max_version;
    if (mig_pending(s, &l, pending, &np, &err) < 0) {
        fail(t, "%s", err);
    } else if (np == 0) {
        t->state = MIG__CURRENT;
    } else {
        size_t cap = (size_t)np * 80 + 1, len = 0;
        t->pending = td_xcalloc(cap, 1);
        for (int k = 0; k < np; k++)
            len += (size_t)snprintf(t->pending + len, cap - len, "%s%s", k ? ", " : "",
                                    s->files[pending[k]].name);
        t->state = MIG__TODO;
    }
    mig_ledger_cleanup(&l);
out:
    free(pending);
}

static const char ok_tenant_sql[] =
    "WITH u AS (UPDATE tenantd.tenants SET schema_version = $2, migration_error = NULL, "
    "migrated_at = CASE WHEN $4::bool THEN now() ELSE migrated_at END, "
    "migration_ms = CASE WHEN $4::bool THEN $3::int ELSE migration_ms END WHERE id = $1 "
    "RETURNING id) SELECT pg_notify('tenantd_tenants', id::text) FROM u";
/* Pool tenants are not refused while their pool schema is behind (see tx.c), so no
 * NOTIFY is needed; their rows carry the pool's version for GET /admin/migrations. */
static const char ok_pool_sql[] =
    "UPDATE tenantd.tenants SET schema_version = $2, migration_error = NULL, "
    "migrated_at = CASE WHEN $4::bool THEN now() ELSE migrated_at END, "
    "migration_ms = CASE WHEN $4::bool THEN $3::int ELSE migration_ms END "
    "WHERE isolation = 'pool' AND server = $1 AND "
    "(schema_version <> $2 OR migration_error IS NOT NULL OR $4::bool)";
static const char fail_tenant_sql[] =
    "UPDATE tenantd.tenants SET migration_error = $2 WHERE id = $1";
static const char fail_pool_sql[] =
    "UPDATE tenantd.tenants SET migration_error = $2 WHERE isolation = 'pool' AND server = $1";

/* Record t's outcome in the catalog on cat. */
static int record(struct mig__worker *w, PGconn *cat, const struct mig__target *t, long long ms)
{
    char v[16], d[24];
    snprintf(v, sizeof(v), "%d", t->version);
    snprintf(d, sizeof(d), "%lld", ms);
    const char *key = t->slug ? t->id : db_server_name(w->run->db, t->server);
    if (t->state == MIG__FAILED)
        return db_admin_exec(cat, "recording a failed migration",
                             t->slug ? fail_tenant_sql : fail_pool_sql, 2,
                             (const char *const[]){key, t->error}, NULL);
    return db_admin_exec(cat, "recording a migration", t->slug ? ok_tenant_sql : ok_pool_sql, 4,
                         (const char *const[]){key, v, d, t->applied ? "true" : "false"}, NULL);
}

/* BEGIN, the target's lock, the files, the grants; on pg (no COMMIT yet). */
static int migrate_in_tx(struct mig__run *run, PGconn *pg, struct mig__target *t)
{
    int rc = db_admin_exec(pg, "starting a tenant migration", "BEGIN", 0, NULL, NULL);
    if (rc == 0 && t->slug)
        rc = db_admin_exec(pg, "locking a tenant schema",
                           "SELECT pg_advisory_xact_lock(" MIG__TENANT_LOCK ", hashtext($1))", 1,
                           (const char *const[]){t->schema}, NULL);
    else if (rc == 0)
        rc = db_admin_exec(pg, "locking the pool schema",
                           "SELECT pg_advisory_xact_lock(" MIG__POOL_LOCK ")", 0, NULL, NULL);
    char *err = NULL;
    if (rc < 0) {
        fail(t, "%s", PQerrorMessage(pg));
        return rc;
    }
    rc = mig_apply_tenant_v(pg, t->schema, run->tenant_migs, &t->applied, &t->version, &err);
    if (rc == 0 && t->applied)
        rc = mig_grant_schema(pg, t->schema, t->slug ? t->schema : "tenantd_app");
    if (rc < 0)
        fail(t, "%s", err ? err : PQerrorMessage(pg));
    return rc;
}

void mig__process(struct mig__worker *w, struct mig__target *t)
{
    struct mig__run *run = w->run;
    PGconn *own = NULL, *pg;
    long long t0 = td_now_ms();
    if (t->database) {
        if (db_admin_connect(run->db, t->server, t->database, &own) < 0)
            own = NULL;
        pg = own;
    } else {
        pg = server_conn(w, t->server);
    }
    PGconn *cat = t->server == 0 && !t->database ? pg : server_conn(w, 0);
    if (!pg || !cat) {
        fail(t, "could not connect to server %s", db_server_name(run->db, t->server));
        goto out;
    }
    if (run->dry) {
        inspect(pg, run->tenant_migs, t);
        goto out;
    }
    int rc = migrate_in_tx(run, pg, t);
    t->state = rc < 0 ? MIG__FAILED : t->applied ? MIG__MIGRATED : MIG__CURRENT;
    int changed = t->applied || t->row_version != t->version || t->row_failed || !t->slug;
    /* in the catalog's own database the summary commits with the migration itself */
    if (rc == 0 && changed && pg == cat && (rc = record(w, cat, t, td_now_ms() - t0)) < 0)
        fail(t, "could not record the migration in the catalog: %s", PQerrorMessage(cat));
    if (rc == 0 && db_admin_exec(pg, "committing a tenant migration", "COMMIT", 0, NULL, NULL) < 0)
        fail(t, "%s", PQerrorMessage(pg));
    if (t->state == MIG__FAILED) {
        PQclear(PQexec(pg, "ROLLBACK"));
        if (PQstatus(cat) == CONNECTION_OK)
            (void)record(w, cat, t, 0);
    } else if (changed && pg != cat && record(w, cat, t, td_now_ms() - t0) < 0) {
        fail(t, "migrated, but the catalog could not be updated: %s", PQerrorMessage(cat));
    }
out:
    PQfinish(own);
    if (t->error)
        t->error[strcspn(t->error, "\n")] = '\0';
    if (t->state == MIG__FAILED)
        atomic_fetch_add(&run->failed, 1);
}
