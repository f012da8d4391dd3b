/*
 * db.c - server registry, libpq connections for the pools, and the pipelined tenant
 * transaction: context, statements and commit in one round trip.
 */
#include "db/db.h"

#include "core/hash.h"
#include "core/htab.h"
#include "core/list.h"
#include "core/log.h"
#include "core/mem.h"
#include "db/internal.h"
#include "db/pool.h"
#include "db/replica.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DB_MAX_SERVERS 16
struct db_server {
    char *name;
    char *conninfo;     /* superuser conninfo (URL or key=value) */
    char *app_conninfo; /* runtime connections (e.g. through PgBouncer); NULL: conninfo */
    struct db *db;
    struct db_pool *pool;
    atomic_ullong pipe_tx; /* transactions sent through the loops' pipelines */
    atomic_int pipe_depth; /* most in flight on one pipeline at once */
};

/* Idle superuser connections to the catalog kept for db_admin_borrow(). */
/* One kept catalog connection, shared by the table registry's watcher (every second) and
 * provisioning: together with the listener and the job workers it makes the fixed part of
 * the connection budget (docs/operations.md); a second caller at the same moment opens a
 * transient one. */
#define DB_IDLE_ADMIN 1

struct db {
    struct db_config cfg;
    char *app_password;
    struct db_server servers[DB_MAX_SERVERS];
    int nservers;
    pthread_mutex_t idle_mu;
    PGconn *idle_admin[DB_IDLE_ADMIN];
    int nidle_admin;
    struct db_server replicas[DB_MAX_SERVERS]; /* pool NULL: that server has none */
    struct db_replicas *rep;
    struct db_hibernator *hib; /* NULL: hibernation off */
};

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    td_log_debug("postgres: %.*s", (int)strcspn(message, "\n"), message);
}

/* The libpq keywords of a connection to conninfo (as user, to database when not NULL).
 * application_name tells the request pool ("tenantd") from administration ("tenantd
 * admin") in pg_stat_activity, so that each part of the budget can be counted. */
static void conn_params(const char *conninfo, const char *user, const char *password,
                        const char *database, const char *appname, const char **keys,
                        const char **vals)
{
    int n = 0;
    keys[n] = "dbname";
    vals[n++] = conninfo;
    if (user) {
        keys[n] = "user";
        vals[n++] = user;
        keys[n] = "password";
        vals[n++] = password;
    }
    if (database) {
        keys[n] = "dbname";
        vals[n++] = database;
    }
    keys[n] = "application_name";
    vals[n++] = appname;
    keys[n] = NULL;
    vals[n] = NULL;
}

static PGconn *connect_as(const char *conninfo, const char *user, const char *password,
                          const char *database, const char *appname)
{
    const char *keys[6], *vals[6];
    conn_params(conninfo, user, password, database, appname, keys, vals);
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(pg) != CONNECTION_OK) {
        td_log_warn("could not connect to postgres%s%s: %.*s", database ? " database " : "",
                    database ? database : "", (int)strcspn(PQerrorMessage(pg), "\n"),
                    PQerrorMessage(pg));
        PQfinish(pg);
        return NULL;
    }
    PQsetNoticeProcessor(pg, quiet_notice, NULL);
    return pg;
}

static void *app_open(void *ctx, const char *database)
{
    struct db_server *s = ctx;
    PGconn *pg = connect_as(s->app_conninfo ? s->app_conninfo : s->conninfo, "tenantd_app",
                            s->db->app_password, database, "tenantd");
    if (!pg)
        return NULL;
    struct db_conn *c = td_xmalloc(sizeof(*c));
    db__conn_init(c, pg);
    return c;
}

/* Close pg and wait (at most 200 ms) until its backend has exited: the server closes its
 * end of the socket only after the backend left pg_stat_activity, so a connection opened
 * into the freed place of the budget never runs beside its predecessor. */
static void finish_and_wait(PGconn *pg)
{
    int fd = PQstatus(pg) == CONNECTION_OK ? dup(PQsocket(pg)) : -1;
    PQfinish(pg);
    if (fd < 0)
        return;
    char buf[256];
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    /* the backend sends nothing after Terminate; a few reads at most before EOF */
    for (int i = 0; i < 4 && poll(&pfd, 1, 50) > 0; i++)
        if (read(fd, buf, sizeof(buf)) <= 0)
            break;
    close(fd);
}

static void app_close(void *ctx, void *conn)
{
    (void)ctx;
    struct db_conn *c = conn;
    finish_and_wait(c->pg);
    db__conn_cleanup(c);
    free(c);
}

static long long app_memory(void *ctx, void *conn)
{
    const struct db_server *s = ctx;
    return db__backend_memory(((struct db_conn *)conn)->pg, s->app_conninfo != NULL);
}

static const struct db_pool_ops app_ops = {app_open, app_close, NULL, app_memory};

PGconn *db__app_connect_start(struct db *db, int server)
{
    const struct db_server *s = &db->servers[server];
    const char *keys[6], *vals[6];
    conn_params(s->app_conninfo ? s->app_conninfo : s->conninfo, "tenantd_app", db->app_password,
                NULL, "tenantd pipeline", keys, vals);
    PGconn *pg = PQconnectStartParams(keys, vals, 1);
    if (pg && PQstatus(pg) == CONNECTION_BAD) {
        PQfinish(pg);
        return NULL;
    }
    if (pg)
        PQsetNoticeProcessor(pg, quiet_notice, NULL);
    return pg;
}

void db__pipe_note(struct db *db, int server, int inflight)
{
    struct db_server *s = &db->servers[server];
    atomic_fetch_add_explicit(&s->pipe_tx, 1, memory_order_relaxed);
    int d = atomic_load_explicit(&s->pipe_depth, memory_order_relaxed);
    while (inflight > d && !atomic_compare_exchange_weak(&s->pipe_depth, &d, inflight))
        ;
}

void db_server_pipe_stats(struct db *db, int server, unsigned long long *transactions, int *depth)
{
    *transactions = atomic_load(&db->servers[server].pipe_tx);
    *depth = atomic_load(&db->servers[server].pipe_depth);
}

int db__pipe_stall_ms(const struct db *db)
{
    return db->cfg.pipe_stall_ms > 0 ? db->cfg.pipe_stall_ms : 50;
}

int db__prepare(const struct db *db)
{
    return db->cfg.prepare;
}

static void init_server(struct db *db, struct db_server *s, const char *name, size_t namelen,
                        const char *conninfo, size_t infolen)
{
    s->name = td_xstrndup(name, namelen);
    s->conninfo = td_xstrndup(conninfo, infolen);
    s->db = db;
    struct db_pool_cfg pc = {
        .budget = db->cfg.pool_size,
        .max_open = db->cfg.max_connections,
        .max_dbs = db->cfg.tenant_pools,
        .share_pct = db->cfg.tenant_share,
        .timeout_ms = db->cfg.acquire_timeout_ms,
        .max_tenants = db->cfg.conn_max_tenants,
        .max_backend_bytes = db->cfg.backend_memory,
    };
    s->pool = db_pool_new(&pc, &app_ops, s);
}

static void add_server(struct db *db, const char *name, size_t namelen, const char *conninfo,
                       size_t infolen)
{
    init_server(db, &db->servers[db->nservers++], name, namelen, conninfo, infolen);
}

/* The item "name=value" at p (up to its ',' or the end) of a "name=conninfo,..." list: the
 * index of the server it names, or -1 (no '=', an unknown name or an empty value); *value and
 * *vlen its value, *next the next item or NULL. */
static int named_item(const struct db *db, const char *p, const char **value, size_t *vlen,
                      const char **next)
{
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    const char *eq = memchr(p, '=', len);
    int found = -1;
    for (int i = 0; eq && i < db->nservers; i++)
        if (strlen(db->servers[i].name) == (size_t)(eq - p) &&
            !memcmp(db->servers[i].name, p, (size_t)(eq - p)))
            found = i;
    if (found < 0 || (size_t)(eq - p) + 1 >= len)
        return -1;
    *value = eq + 1;
    *vlen = len - (size_t)(eq - p) - 1;
    *next = end ? end + 1 : NULL;
    return found;
}

/* "name=conninfo,...": the streaming replica of each named server (one each). */
static int set_replicas(struct db *db, const char *p)
{
    while (p && *p) {
        const char *v;
        size_t vlen;
        int found = named_item(db, p, &v, &vlen, &p);
        if (found < 0 || db->replicas[found].pool)
            return TD_EBADREQ;
        init_server(db, &db->replicas[found], db->servers[found].name,
                    strlen(db->servers[found].name), v, vlen);
    }
    const char *prim[DB_MAX_SERVERS], *repl[DB_MAX_SERVERS];
    for (int i = 0; i < db->nservers; i++) {
        prim[i] = db->servers[i].conninfo;
        repl[i] = db->replicas[i].pool ? db->replicas[i].conninfo : NULL;
    }
    db->rep = db_replicas_new(db->nservers, prim, repl, db->cfg.replica_max_lag);
    return 0;
}

/* "name=conninfo,...": where the runtime role of each named server connects instead. */
static int set_poolers(struct db *db, const char *p)
{
    while (p && *p) {
        const char *v;
        size_t vlen;
        int found = named_item(db, p, &v, &vlen, &p);
        if (found < 0 || db->servers[found].app_conninfo)
            return TD_EBADREQ;
        db->servers[found].app_conninfo = td_xstrndup(v, vlen);
    }
    return 0;
}

int db_new(const struct db_config *cfg, struct db **out)
{
    struct db *db = td_xcalloc(1, sizeof(*db));
    db->cfg = *cfg;
    db->app_password = td_xstrdup(cfg->app_password);
    pthread_mutex_init(&db->idle_mu, NULL);
    add_server(db, "main", 4, cfg->main_conninfo, strlen(cfg->main_conninfo));
    const char *p = cfg->servers;
    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (!eq || eq == p || (size_t)(eq - p) + 1 >= len || db->nservers == DB_MAX_SERVERS) {
            db_free(db);
            return TD_EBADREQ;
        }
        for (int i = 0; i < db->nservers; i++)
            if (strlen(db->servers[i].name) == (size_t)(eq - p) &&
                !memcmp(db->servers[i].name, p, (size_t)(eq - p))) {
                db_free(db);
                return TD_EBADREQ;
            }
        add_server(db, p, (size_t)(eq - p), eq + 1, len - (size_t)(eq - p) - 1);
        p = end ? end + 1 : NULL;
    }
    if (set_poolers(db, cfg->poolers) < 0 || set_replicas(db, cfg->replicas) < 0) {
        db_free(db);
        return TD_EBADREQ;
    }
    db->hib = db__hibernator_start(db, cfg->hibernate_after_s);
    *out = db;
    return 0;
}

void db_free(struct db *db)
{
    if (!db)
        return;
    db_replicas_free(db->rep);
    for (int i = 0; i < DB_MAX_SERVERS; i++) {
        if (db->replicas[i].pool)
            db_pool_free(db->replicas[i].pool);
        free(db->replicas[i].name);
        free(db->replicas[i].conninfo);
    }
    db__hibernator_stop(db->hib);
    for (int i = 0; i < db->nservers; i++) {
        db_pool_free(db->servers[i].pool);
        free(db->servers[i].name);
        free(db->servers[i].conninfo);
        free(db->servers[i].app_conninfo);
    }
    while (db->nidle_admin > 0)
        PQfinish(db->idle_admin[--db->nidle_admin]);
    pthread_mutex_destroy(&db->idle_mu);
    free(db->app_password);
    free(db);
}

int db_server_count(const struct db *db)
{
    return db->nservers;
}

int db_server_find(const struct db *db, const char *name)
{
    for (int i = 0; i < db->nservers; i++)
        if (strcmp(db->servers[i].name, name) == 0)
            return i;
    return -1;
}

const char *db_server_name(const struct db *db, int server)
{
    return db->servers[server].name;
}

const char *db_server_admin_conninfo(const struct db *db, int server)
{
    return db->servers[server].conninfo;
}

int db_map_error(const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (!state)
        return TD_EUNAVAILABLE;
    if (!strcmp(state, "23505"))
        return TD_ECONFLICT;
    if (!strcmp(state, "TD401"))
        return TD_EUNAUTHORIZED;
    if (!strcmp(state, "TD403"))
        return TD_EFORBIDDEN;
    if (!strcmp(state, "TD404"))
        return TD_ENOTFOUND;
    if (!strcmp(state, "TD409"))
        return TD_ECONFLICT;
    if (!strcmp(state, "TDQUO"))
        return TD_EQUOTA;
    if (!strcmp(state, "23514") || !strcmp(state, "23502") || !strcmp(state, "23503") ||
        !strncmp(state, "22", 2))
        return TD_EVALIDATION;
    if (!strncmp(state, "08", 2) || !strcmp(state, "57P01") || !strcmp(state, "57P02") ||
        !strcmp(state, "57P03") || !strcmp(state, "53300") || !strcmp(state, "55P03"))
        return TD_EUNAVAILABLE; /* 55P03: lock_timeout, a transient wait */
    td_log_error("postgres error %s: %.*s", state, (int)strcspn(PQresultErrorMessage(res), "\n"),
                 PQresultErrorMessage(res));
    return TD_EINTERNAL;
}

/* The LSN query's result and the Sync after it (see run_pipeline); 0 when the
 * connection failed. */
static int read_lsn(PGconn *pg, unsigned long long *lsn)
{
    PGresult *r = PQgetResult(pg);
    if (!r)
        return 0;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        *lsn = db_lsn_parse(PQgetvalue(r, 0, 0));
    PQclear(r);
    while ((r = PQgetResult(pg)))
        PQclear(r);
    r = PQgetResult(pg);
    int ok = r && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
    PQclear(r);
    return ok;
}

/* Send everything, then read every result. Returns 0, a mapped error, or
 * TD_EUNAVAILABLE with *broken set when the connection failed. lsn (NULL: not wanted)
 * receives the primary's WAL position after the commit. */
static int run_pipeline(struct db_conn *c, int prepare, const struct db_target *t,
                        const struct db_stmt *stmts, int n, PGresult **res, int *broken,
                        int *got_any, unsigned long long *lsn)
{
    PGconn *pg = c->pg;
    struct db__sent sent[DB__MAX_SENT];
    int rc = 0, ns = 0;
    *broken = 0;
    *got_any = 0;
    if (!PQenterPipelineMode(pg) || !db__send_tx(c, prepare, t, stmts, n, sent, &ns) ||
        !PQpipelineSync(pg))
        goto fail;
    /* its own implicit transaction after the Sync, so after the commit: past the end of
     * the commit record, where a replica must have replayed to (same round trip) */
    if (lsn && (!PQsendQueryParams(pg, "SELECT pg_current_wal_insert_lsn()", 0, NULL, NULL, NULL,
                                   NULL, 0) ||
                !PQpipelineSync(pg)))
        goto fail;
    for (int q = 0; q < ns; q++) {
        PGresult *r = PQgetResult(pg);
        if (!r)
            goto fail;
        *got_any = 1;
        /* the backend was ended while idle (hibernation by another process): its goodbye
         * (57P01) came before any answer, and the transaction commits only at the Sync,
         * so nothing ran: the caller may retry on a new connection */
        const char *code =
            PQresultStatus(r) == PGRES_FATAL_ERROR ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
        if (q == 0 && code && !strcmp(code, "57P01")) {
            PQclear(r);
            *got_any = 0;
            goto fail;
        }
        db__take_result(t, &sent[q], r, &rc, res);
        PGresult *extra;
        while ((extra = PQgetResult(pg)))
            PQclear(extra);
    }
    for (;;) {
        PGresult *r = PQgetResult(pg);
        if (!r)
            goto fail;
        ExecStatusType st = PQresultStatus(r);
        PQclear(r);
        if (st == PGRES_PIPELINE_SYNC)
            break;
    }
    if (lsn && !read_lsn(pg, lsn))
        goto fail;
    if (!PQexitPipelineMode(pg))
        goto fail;
    if (PQtransactionStatus(pg) != PQTRANS_IDLE)
        goto fail;
    return rc;
fail:
    *broken = 1;
    for (int i = 0; i < n; i++) {
        PQclear(res[i]);
        res[i] = NULL;
    }
    return TD_EUNAVAILABLE;
}

/* Run t's transaction on s (the server or its replica). */
static int exec_on(struct db *db, struct db_server *s, const struct db_target *t,
                   const struct db_stmt *stmts, int n, PGresult **res)
{
    /* a tenant's write to a server with a replica: remember where its commit ends */
    int want_lsn = !t->read_only && t->tenant_id && s == &db->servers[t->server] &&
                   db_replicas_has(db->rep, t->server);
    for (int attempt = 0; attempt < 2; attempt++) {
        struct db_slot *slot = NULL;
        int rc = db_pool_acquire(s->pool, t->database, t->tenant_id, &slot);
        /* a hibernated database refuses the runtime role: wake it, connect again (twice:
         * the sweep may hibernate it again between the two). Also without a sweep here:
         * an operator may have hibernated it (admin API or CLI, any instance). */
        for (int w = 0; rc == TD_EUNAVAILABLE && t->database && w < 2; w++)
            if (db__wake(db, t->server, t->database) > 0)
                rc = db_pool_acquire(s->pool, t->database, t->tenant_id, &slot);
            else
                break;
        if (rc < 0)
            return rc;
        struct db_conn *c = db_slot_conn(slot);
        int reused = attempt == 0 && PQstatus(c->pg) == CONNECTION_OK;
        int broken = 0, got_any = 0;
        unsigned long long lsn = 0;
        rc = run_pipeline(c, db->cfg.prepare, t, stmts, n, res, &broken, &got_any,
                          want_lsn ? &lsn : NULL);
        if (rc == 0 && want_lsn)
            db_replicas_wrote(db->rep, t->server, t->tenant_id, lsn);
        db_pool_release(s->pool, slot, t->tenant_id, broken);
        /* A pooled connection that died while idle (server restart) failed before the
         * server answered anything: nothing ran, so one retry on a fresh one is safe. */
        if (broken && reused && !got_any)
            continue;
        return rc;
    }
    return TD_EUNAVAILABLE;
}

int db_exec(struct db *db, const struct db_target *t, const struct db_stmt *stmts, int n,
            PGresult **res)
{
    for (int i = 0; i < n; i++)
        res[i] = NULL;
    /* a server this process does not know is never replaced by another one */
    if (t->server < 0 || t->server >= db->nservers)
        return TD_EUNAVAILABLE;
    if (t->read_only && db_replicas_pick(db->rep, t->server, t->tenant_id)) {
        int rc = exec_on(db, &db->replicas[t->server], t, stmts, n, res);
        if (rc == 0)
            return 0;
        /* down, stopping, or a recovery conflict: a read is safe to run again there */
        db_replicas_failed(db->rep, t->server);
        for (int i = 0; i < n; i++) {
            PQclear(res[i]);
            res[i] = NULL;
        }
    }
    return exec_on(db, &db->servers[t->server], t, stmts, n, res);
}

int db_admin_connect(struct db *db, int server, const char *database, PGconn **out)
{
    *out = NULL;
    if (server < 0 || server >= db->nservers)
        return TD_EUNAVAILABLE;
    *out = connect_as(db->servers[server].conninfo, NULL, NULL, database, "tenantd admin");
    if (!*out)
        return TD_EUNAVAILABLE;
    PGresult *r = PQexec(*out, "SET TIME ZONE 'UTC'; SET client_min_messages = warning");
    PQclear(r);
    return 0;
}

int db_admin_borrow(struct db *db, PGconn **out)
{
    *out = NULL;
    pthread_mutex_lock(&db->idle_mu);
    if (db->nidle_admin > 0)
        *out = db->idle_admin[--db->nidle_admin];
    pthread_mutex_unlock(&db->idle_mu);
    /* a kept connection may have died meanwhile (server restart): one cheap probe */
    if (*out && PQstatus(*out) == CONNECTION_OK) {
        PGresult *r = PQexec(*out, "");
        int ok = PQresultStatus(r) == PGRES_EMPTY_QUERY;
        PQclear(r);
        if (ok)
            return 0;
    }
    PQfinish(*out);
    return db_admin_connect(db, 0, NULL, out);
}

void db_admin_return(struct db *db, PGconn *pg)
{
    if (pg && PQstatus(pg) == CONNECTION_OK && PQtransactionStatus(pg) == PQTRANS_IDLE) {
        pthread_mutex_lock(&db->idle_mu);
        if (db->nidle_admin < DB_IDLE_ADMIN) {
            db->idle_admin[db->nidle_admin++] = pg;
            pg = NULL;
        }
        pthread_mutex_unlock(&db->idle_mu);
    }
    PQfinish(pg);
}

int db_admin_exec(PGconn *pg, const char *what, const char *sql, int nparams,
                  const char *const *params, PGresult **res)
{
    PGresult *r =
        nparams ? PQexecParams(pg, sql, nparams, NULL, params, NULL, NULL, 0) : PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (res)
            *res = r;
        else
            PQclear(r);
        return 0;
    }
    int rc = PQstatus(pg) == CONNECTION_BAD ? TD_EUNAVAILABLE : db_map_error(r);
    if (rc == TD_EINTERNAL || rc == TD_EUNAVAILABLE)
        td_log_error("%s failed: %.*s", what, (int)strcspn(PQerrorMessage(pg), "\n"),
                     PQerrorMessage(pg));
    PQclear(r);
    if (res)
        *res = NULL;
    return rc;
}

struct db_pool *db__server_pool(struct db *db, int server)
{
    return db->servers[server].pool;
}

void db_forget_database(struct db *db, int server, const char *database)
{
    db_pool_forget(db->servers[server].pool, database);
}

void db_server_stats(struct db *db, int server, int *open, int *in_use, int *waiting, int *pools)
{
    struct db_pool_stats st;
    db_pool_stats(db->servers[server].pool, &st);
    *open = st.open;
    *in_use = st.in_use;
    *waiting = st.waiting;
    *pools = st.dbs;
}

void db_server_pool_stats(struct db *db, int server, struct db_pool_stats *st)
{
    db_pool_stats(db->servers[server].pool, st);
}

void db_server_replica_stats(struct db *db, int server, struct db_replica_stats *st)
{
    db_replicas_stats(db->rep, server, st);
}

int db_read_connect(struct db *db, int server, const char *key, PGconn **out, int *on_replica)
{
    *on_replica = 0;
    if (server >= 0 && server < db->nservers && db_replicas_pick(db->rep, server, key)) {
        *out = connect_as(db->replicas[server].conninfo, NULL, NULL, NULL, "tenantd admin");
        if (*out) {
            PGresult *r = PQexec(*out, "SET TIME ZONE 'UTC'; SET client_min_messages = warning");
            PQclear(r);
            *on_replica = 1;
            return 0;
        }
        db_replicas_failed(db->rep, server);
    }
    return db_admin_connect(db, server, NULL, out);
}

void db_note_write(struct db *db, int server, const char *key, PGconn *pg)
{
    db_replicas_wrote(db->rep, server, key, pg ? db_lsn_query(pg) : 0);
}
