/*
 * move.c - moving a tenant between isolations and servers (see move.h).
 *
 * Order: lock the catalog row, create the new (empty, migrated) storage, lock the old
 * tables (ACCESS EXCLUSIVE: the tenant's reads and writes wait from here), COPY every
 * row into the new storage in one transaction, compare row counts, commit it, switch
 * the catalog row (with its pg_notify, one transaction), then drop the old copy while
 * its locks are still held.
 * A failure before the switch drops what was made and leaves the tenant where it was.
 */
#include "tenant/move.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "tenant/internal.h"
#include "tenant/provision.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long a move waits for transactions already running on the old tables. */
#define MOVE_LOCK_TIMEOUT "5s"

struct move {
    struct db *db;
    const struct mig_set *migs;
    struct tnt_cache *cache;
    struct tnt_tenant *cur; /* the catalog row, locked */
    struct tnt_tenant dst;  /* cur at its new place; strings borrowed, never unref'd */
    char ident[TNT_NAME_MAX], dbname[TNT_NAME_MAX]; /* dst's storage names */
    PGconn *cat, *src, *tgt;
    int shared_role; /* old and new storage use the same role t_<hex> on one server */
    int role_made, db_made, tgt_committed;
    struct tnt__tables tables; /* every tenant table, parents first */
    long long *counts;         /* rows of each in the old storage */
    long long total;
};

static void drop_role(PGconn *pg, const char *role);

static const char *schema_of(const struct tnt_tenant *t)
{
    return t->isolation == TNT_ISO_POOL ? "pool" : t->ident;
}

static const char *database_of(const struct tnt_tenant *t)
{
    return t->isolation == TNT_ISO_DATABASE ? t->dbname : NULL;
}

static int exec(PGconn *pg, const char *what, const char *sql)
{
    return db_admin_exec(pg, what, sql, 0, NULL, NULL);
}

/* Milliseconds, with the fraction, for the move's timings. */
static double now_ms(void)
{
    return (double)td_now_us() / 1000.0;
}

static int lock_catalog(struct move *m, const char *id)
{
    PGresult *r = NULL;
    int rc = db_admin_connect(m->db, 0, NULL, &m->cat);
    if (rc == 0)
        rc = exec(m->cat, "starting a move", "BEGIN");
    if (rc < 0)
        return rc;
    /* NO KEY: the usage flusher's foreign-key checks (KEY SHARE) must not wait for us */
    char *sql = td_xasprintf("SELECT %s FROM tenantd.tenants WHERE id = $1 FOR NO KEY UPDATE",
                             tnt_catalog_columns);
    rc = db_admin_exec(m->cat, "locking the tenant's catalog row", sql, 1,
                       (const char *const[]){id}, &r);
    free(sql);
    if (rc == 0 && PQntuples(r) == 0)
        rc = TD_ETENANT_NOTFOUND;
    if (rc == 0)
        m->cur = tnt_tenant_from_row(m->db, r, 0);
    PQclear(r);
    if (rc == 0 && m->cur->server_idx < 0) {
        td_log_error("tenant %s lives on server %s, which is not configured", m->cur->slug,
                     m->cur->server);
        rc = TD_EUNAVAILABLE;
    }
    return rc;
}

/* Rank of a table in the lock order: the order in which the tenant's own transactions
 * take their locks, so that the move's LOCK waits behind them instead of deadlocking with
 * them. Every authenticated request reads users first (its guard); a write then takes its
 * table, then the tables its foreign keys reference (children before parents), and its
 * audit entry last. */
static int lock_rank(const struct tnt__tables *tb, int i)
{
    if (!strcmp(tb->names[i], "users"))
        return -1;
    if (!strcmp(tb->names[i], "audit_logs"))
        return tb->n;
    return tb->n - 1 - i; /* tb is parents first */
}

/* "s.a, s.b, ..." of every tenant table in lock order, quoted; NULL (logged) on failure. */
static char *table_list(PGconn *pg, const char *schema, const struct tnt__tables *tb)
{
    char *list = td_xstrdup("");
    for (int rank = -1; list && rank <= tb->n; rank++)
        for (int i = 0; list && i < tb->n; i++) {
            if (lock_rank(tb, i) != rank)
                continue;
            char *q = tnt__qualified(pg, schema, tb->names[i]);
            char *next = q ? td_xasprintf("%s%s%s", list, *list ? ", " : "", q) : NULL;
            free(q);
            free(list);
            list = next;
        }
    return list;
}

/* Rows of tenant_id in schema.table on pg, or -1 (logged). */
static long long count_rows(PGconn *pg, const char *schema, const char *table,
                            const char *tenant_id)
{
    PGresult *r = NULL;
    long long n = -1;
    char *q = tnt__qualified(pg, schema, table);
    char *sql = q ? td_xasprintf("SELECT count(*) FROM %s WHERE tenant_id = $1", q) : NULL;
    if (sql && db_admin_exec(pg, "counting the tenant's rows", sql, 1,
                             (const char *const[]){tenant_id}, &r) == 0)
        n = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    free(sql);
    free(q);
    return n;
}

/* Lock the old tables for the whole move and count the rows to copy. */
static int lock_source(struct move *m)
{
    const char *s = schema_of(m->cur);
    int rc = db_admin_connect(m->db, m->cur->server_idx, database_of(m->cur), &m->src);
    if (rc == 0)
        rc = tnt__tables_read(m->src, s, &m->tables);
    if (rc < 0)
        return rc;
    char *list = table_list(m->src, s, &m->tables);
    if (!list)
        return TD_EINTERNAL;
    char *sql = td_xasprintf("BEGIN; SET LOCAL lock_timeout = '" MOVE_LOCK_TIMEOUT "'; "
                             "LOCK TABLE %s IN ACCESS EXCLUSIVE MODE",
                             list);
    free(list);
    PGresult *r = PQexec(m->src, sql);
    free(sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        td_log_warn("move of tenant %s: could not lock its tables: %.*s", m->cur->slug,
                    (int)strcspn(PQerrorMessage(m->src), "\n"), PQerrorMessage(m->src));
        rc = state && strcmp(state, "55P03") != 0 ? db_map_error(r) : TD_EUNAVAILABLE;
        PQclear(r);
        return rc;
    }
    PQclear(r);
    m->counts = td_xcalloc((size_t)m->tables.n + 1, sizeof(long long));
    for (int i = 0; i < m->tables.n; i++) {
        m->counts[i] = count_rows(m->src, s, m->tables.names[i], m->cur->id);
        if (m->counts[i] < 0)
            return TD_EINTERNAL;
        m->total += m->counts[i];
    }
    return 0;
}

/*
 * The new storage, empty and migrated; m->tgt is left in an open transaction on it.
 * Anything already carrying its names there is a leftover of an interrupted move (the
 * tenant lives elsewhere) and is dropped first.
 */
static int make_target(struct move *m)
{
    struct tnt_tenant *d = &m->dst;
    int need_role = d->isolation != TNT_ISO_POOL && !m->shared_role;
    PGconn *srv = NULL;
    int rc = db_admin_connect(m->db, d->server_idx, NULL, &srv);
    if (rc == 0 && d->isolation == TNT_ISO_DATABASE)
        rc = tnt__drop_database(m->db, srv, d->server_idx, d->dbname);
    if (rc == 0 && d->isolation == TNT_ISO_SCHEMA)
        rc = tnt__drop_schema(srv, d->ident);
    else if (rc == 0 && d->isolation == TNT_ISO_POOL)
        rc = tnt__pool_delete(srv, d->id);
    if (rc == 0 && need_role)
        drop_role(srv, d->ident);
    if (rc == 0 && d->isolation == TNT_ISO_DATABASE) {
        if (need_role && (rc = tnt_storage_role(srv, d)) == 0)
            m->role_made = 1;
        if (rc == 0) {
            m->db_made = 1;
            rc = tnt_storage_database(m->db, d->server_idx, srv, d, m->migs);
        }
        if (rc == 0)
            rc = db_admin_connect(m->db, d->server_idx, d->dbname, &m->tgt);
    } else if (rc == 0) {
        rc = db_admin_connect(m->db, d->server_idx, NULL, &m->tgt);
    }
    PQfinish(srv);
    if (rc == 0)
        rc = exec(m->tgt, "starting the copy", "BEGIN");
    if (rc == 0 && d->isolation != TNT_ISO_DATABASE && need_role &&
        (rc = tnt_storage_role(m->tgt, d)) == 0)
        m->role_made = 1;
    if (rc == 0 && d->isolation == TNT_ISO_SCHEMA)
        rc = tnt_storage_schema(m->tgt, d, m->migs);
    return rc;
}

/* Rows of a finished COPY, or -1 when it failed (logged). Drains the results. */
static long long copy_result(PGconn *pg, const char *what)
{
    long long n = -1;
    PGresult *r;
    while ((r = PQgetResult(pg))) {
        if (PQresultStatus(r) == PGRES_COMMAND_OK && n < 0)
            n = atoll(PQcmdTuples(r));
        else if (PQresultStatus(r) != PGRES_COMMAND_OK)
            td_log_error("%s failed: %.*s", what, (int)strcspn(PQresultErrorMessage(r), "\n"),
                         PQresultErrorMessage(r));
        PQclear(r);
    }
    return n;
}

/* The COPY statements of one table: its columns named (both sides agree whatever the
 * column order; generated columns are recomputed, not copied), the old side filtered on the tenant.
 * COPY takes no parameters: the id is a checked UUID, quoted as a literal. */
static int copy_sql(struct move *m, const char *table, char **out_sql, char **in_sql)
{
    const char *ss = schema_of(m->cur), *ts = schema_of(&m->dst);
    PGresult *r = NULL;
    char *src = tnt__qualified(m->src, ss, table), *dst = tnt__qualified(m->tgt, ts, table);
    char *lit = PQescapeLiteral(m->src, m->cur->id, strlen(m->cur->id)), checked[TNT_NAME_MAX];
    int rc = src && dst && lit && tnt_name_of(m->cur->id, TNT_NAME_SCHEMA, checked) == 0
                 ? 0
                 : TD_EINTERNAL;
    if (rc == 0)
        rc = db_admin_exec(m->src, "reading a table's columns",
                           "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) "
                           "FROM pg_attribute WHERE attrelid = $1::regclass "
                           "AND attnum > 0 AND NOT attisdropped AND attgenerated = ''",
                           1, (const char *const[]){src}, &r);
    if (rc == 0) {
        *out_sql = td_xasprintf("COPY (SELECT %s FROM %s WHERE tenant_id = %s) TO STDOUT",
                                PQgetvalue(r, 0, 0), src, lit);
        *in_sql = td_xasprintf("COPY %s (%s) FROM STDIN", dst, PQgetvalue(r, 0, 0));
    }
    PQclear(r);
    PQfreemem(lit);
    free(src);
    free(dst);
    return rc;
}

/* Stream one table from the old storage into the new one (COPY out -> COPY in). */
static int copy_table(struct move *m, const char *table, long long *copied)
{
    char *buf, *out_sql = NULL, *in_sql = NULL;
    int n, rc = copy_sql(m, table, &out_sql, &in_sql);
    if (rc < 0)
        return rc;
    rc = TD_EINTERNAL;
    PGresult *r = PQexec(m->tgt, in_sql);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        td_log_error("copying %s in failed: %.*s", table,
                     (int)strcspn(PQerrorMessage(m->tgt), "\n"), PQerrorMessage(m->tgt));
        goto out;
    }
    PQclear(r);
    r = PQexec(m->src, out_sql);
    if (PQresultStatus(r) != PGRES_COPY_OUT) {
        td_log_error("copying %s out failed: %.*s", table,
                     (int)strcspn(PQerrorMessage(m->src), "\n"), PQerrorMessage(m->src));
        PQputCopyEnd(m->tgt, "source failed");
        goto out;
    }
    PQclear(r);
    r = NULL;
    int ok = 1;
    while ((n = PQgetCopyData(m->src, &buf, 0)) > 0) {
        ok = ok && PQputCopyData(m->tgt, buf, n) == 1;
        PQfreemem(buf);
    }
    long long out_n = copy_result(m->src, "copying rows out");
    ok = PQputCopyEnd(m->tgt, ok && n == -1 ? NULL : "copy failed") == 1 && ok && n == -1;
    long long in_n = copy_result(m->tgt, "copying rows in");
    if (ok && out_n >= 0 && in_n == out_n) {
        *copied = in_n;
        rc = 0;
    }
out:
    PQclear(r);
    free(out_sql);
    free(in_sql);
    return rc;
}

/* Copy every table, parents first, then check each count in the new place. */
static int copy_rows(struct move *m)
{
    const char *ts = schema_of(&m->dst);
    int rc = 0;
    for (int i = 0; rc == 0 && i < m->tables.n; i++) {
        const char *tb = m->tables.names[i];
        long long copied = -1, there;
        if ((rc = copy_table(m, tb, &copied)) < 0)
            break;
        there = count_rows(m->tgt, ts, tb, m->cur->id);
        if (there != m->counts[i] || copied != m->counts[i]) {
            td_log_error("move of tenant %s: %s has %lld rows, %lld copied, %lld in the new "
                         "place; nothing switched",
                         m->cur->slug, tb, m->counts[i], copied, there);
            rc = TD_EINTERNAL;
        }
    }
    if (rc == 0)
        rc = tnt__sync_sequences(m->tgt, ts, &m->tables);
    return rc;
}

/* After a failed COMMIT: did it happen? Reads the catalog on a fresh connection. */
static int confirm_switch(struct move *m, struct tnt_tenant **out)
{
    PGconn *pg = NULL;
    PGresult *r = NULL;
    int rc = db_admin_connect(m->db, 0, NULL, &pg);
    char *sql = td_xasprintf("SELECT %s FROM tenantd.tenants WHERE id = $1", tnt_catalog_columns);
    if (rc == 0)
        rc = db_admin_exec(pg, "re-reading the catalog", sql, 1, (const char *const[]){m->cur->id},
                           &r);
    free(sql);
    if (rc == 0 && PQntuples(r) == 1) {
        struct tnt_tenant *t = tnt_tenant_from_row(m->db, r, 0);
        if (t->isolation == m->dst.isolation && t->server_idx == m->dst.server_idx)
            *out = t;
        else
            tnt_tenant_unref(t);
    }
    PQclear(r);
    PQfinish(pg);
    return *out ? 0 : TD_EUNAVAILABLE;
}

static int switch_catalog(struct move *m, struct tnt_tenant **out)
{
    PGresult *r = NULL;
    /* the new storage was made at the latest version (pool: migrated at start-up) */
    char *sql = td_xasprintf("UPDATE tenantd.tenants SET isolation = $2, server = $3, "
                             "schema_version = %d, migration_error = NULL, migrated_at = now(), "
                             "updated_at = now() WHERE id = $1 RETURNING %s",
                             mig_latest(m->migs), tnt_catalog_columns);
    const char *p[3] = {m->cur->id, tnt_isolation_name(m->dst.isolation),
                        db_server_name(m->db, m->dst.server_idx)};
    int rc = db_admin_exec(m->cat, "switching the catalog row", sql, 3, p, &r);
    free(sql);
    if (rc == 0)
        rc = db_admin_exec(m->cat, "announcing the move", "SELECT pg_notify('tenantd_tenants', $1)",
                           1, p, NULL);
    if (rc < 0) {
        PQclear(r);
        return rc;
    }
    struct tnt_tenant *t = tnt_tenant_from_row(m->db, r, 0);
    PQclear(r);
    if (exec(m->cat, "committing the catalog switch", "COMMIT") == 0) {
        *out = t;
        return 0;
    }
    tnt_tenant_unref(t);
    return confirm_switch(m, out);
}

static void drop_role(PGconn *pg, const char *role)
{
    if (tnt__drop_role(pg, role) < 0)
        td_log_error("could not drop role %s; drop it by hand", role);
}

/*
 * The catalog already names the new place. Drop the old copy while the move's locks
 * are still held: transactions waiting on them then fail (their tables or database
 * are gone, or for the shared pool tables their user is) instead of writing into it.
 */
static void release_source(struct move *m)
{
    const struct tnt_tenant *t = m->cur;
    PGconn *srv = NULL;
    int rc = 0;
    if (t->isolation == TNT_ISO_POOL)
        rc = tnt__pool_delete(m->src, t->id);
    else if (t->isolation == TNT_ISO_SCHEMA)
        rc = tnt__drop_schema(m->src, t->ident);
    if (rc == 0 && t->isolation != TNT_ISO_DATABASE)
        rc = exec(m->src, "dropping the old copy", "COMMIT");
    int need_srv =
        t->isolation == TNT_ISO_DATABASE || (t->isolation != TNT_ISO_POOL && !m->shared_role);
    if (need_srv && db_admin_connect(m->db, t->server_idx, NULL, &srv) < 0)
        rc = TD_EUNAVAILABLE;
    /* DROP DATABASE ... FORCE also ends m->src and every transaction waiting in there */
    if (srv && t->isolation == TNT_ISO_DATABASE)
        rc = tnt__drop_database(m->db, srv, t->server_idx, t->dbname);
    PQfinish(m->src);
    m->src = NULL;
    if (srv && t->isolation != TNT_ISO_POOL && !m->shared_role)
        drop_role(srv, t->ident);
    PQfinish(srv);
    if (rc < 0)
        td_log_error("tenant %s moved, but its old copy (%s %s on server %s) could not be "
                     "dropped; drop it by hand",
                     t->slug, tnt_isolation_name(t->isolation),
                     t->isolation == TNT_ISO_DATABASE ? t->dbname : schema_of(t), t->server);
}

/* Undo make_target and the copy after a failure before the catalog switch. */
static void undo_target(struct move *m)
{
    const struct tnt_tenant *d = &m->dst;
    PGconn *srv = NULL;
    PQfinish(m->tgt); /* rolls back what was not committed */
    m->tgt = NULL;
    if (!m->db_made && !m->role_made && !m->tgt_committed)
        return;
    if (db_admin_connect(m->db, d->server_idx, NULL, &srv) < 0) {
        td_log_error("could not remove the unfinished copy of tenant %s on server %s", d->slug,
                     d->server);
        return;
    }
    int rc = 0;
    if (m->db_made)
        rc = tnt__drop_database(m->db, srv, d->server_idx, d->dbname);
    else if (m->tgt_committed && d->isolation == TNT_ISO_SCHEMA)
        rc = tnt__drop_schema(srv, d->ident);
    else if (m->tgt_committed)
        rc = tnt__pool_delete(srv, d->id);
    if (rc < 0)
        td_log_error("could not remove the unfinished copy of tenant %s", d->slug);
    if (m->role_made)
        drop_role(srv, d->ident);
    PQfinish(srv);
}

int tnt_move_cached(struct db *db, struct tnt_cache *cache, const struct mig_set *migs,
                    const struct tnt_tenant *t, int isolation, const char *server,
                    struct tnt_tenant **out)
{
    struct move m = {.db = db, .migs = migs, .cache = cache};
    int to_server = -1, rc;
    double t0 = now_ms();
    *out = NULL;
    if (isolation < -1 || isolation > TNT_ISO_DATABASE)
        return TD_EVALIDATION;
    if (server && (to_server = db_server_find(db, server)) < 0)
        return TD_EVALIDATION;
    if ((rc = lock_catalog(&m, t->id)) < 0)
        goto out;
    memcpy(&m.dst, m.cur, sizeof(m.dst));
    /* a pool tenant has no storage names: the new place's come from the id */
    if (tnt_name_of(m.cur->id, TNT_NAME_SCHEMA, m.ident) == 0 &&
        tnt_name_of(m.cur->id, TNT_NAME_DATABASE, m.dbname) == 0) {
        m.dst.ident = m.ident;
        m.dst.dbname = m.dbname;
    }
    if (isolation >= 0)
        m.dst.isolation = (enum tnt_isolation)isolation;
    if (to_server >= 0) {
        m.dst.server_idx = to_server;
        m.dst.server = (char *)db_server_name(db, to_server);
    }
    if (m.dst.isolation == m.cur->isolation && m.dst.server_idx == m.cur->server_idx) {
        *out = tnt_tenant_ref(m.cur); /* already there: nothing to do */
        goto out;
    }
    m.shared_role = m.cur->isolation != TNT_ISO_POOL && m.dst.isolation != TNT_ISO_POOL &&
                    m.cur->server_idx == m.dst.server_idx;
    /* the empty new storage first: the tenant's requests wait only for the copy */
    if ((rc = make_target(&m)) < 0)
        goto out;
    double t_lock = now_ms();
    if ((rc = lock_source(&m)) < 0 || (rc = copy_rows(&m)) < 0)
        goto out;
    if ((rc = exec(m.tgt, "committing the copy", "COMMIT")) < 0)
        goto out;
    m.tgt_committed = 1;
    if ((rc = switch_catalog(&m, out)) < 0)
        goto out;
    if (cache)
        tnt_cache_invalidate(cache, m.cur->id);
    release_source(&m);
    td_log_info("moved tenant %s from %s on %s to %s on %s: %lld rows in %d tables in %.0f ms "
                "(its requests waited %.0f ms)",
                m.cur->slug, tnt_isolation_name(m.cur->isolation), m.cur->server,
                tnt_isolation_name(m.dst.isolation), m.dst.server, m.total, m.tables.n,
                now_ms() - t0, now_ms() - t_lock);
out:
    if (rc < 0) {
        PQfinish(m.src); /* rolls back: the tenant's tables are free again, untouched */
        m.src = NULL;
        undo_target(&m);
    }
    PQfinish(m.tgt);
    PQfinish(m.cat);
    tnt_tenant_unref(m.cur);
    tnt__tables_cleanup(&m.tables);
    free(m.counts);
    return rc;
}

int tnt_move(struct db *db, const struct mig_set *migs, const struct tnt_tenant *t, int isolation,
             const char *server, struct tnt_tenant **out)
{
    return tnt_move_cached(db, NULL, migs, t, isolation, server, out);
}
