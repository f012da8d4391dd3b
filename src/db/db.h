/*
 * db.h - PostgreSQL servers, connection pools and transactions.
 *
 * Each configured server has one connection budget (TENANTD_POOL_SIZE) shared by its
 * default-database pool and by the per-tenant-database pools, which live in an LRU of
 * at most TENANTD_TENANT_POOLS entries. Eviction only ever closes idle connections.
 * Tenant context lives in the transaction (set_config(..., true)), never in the
 * session: a connection goes back to its pool carrying no tenant state.
 * All functions are thread-safe unless stated otherwise.
 */
#ifndef TD_DB_DB_H
#define TD_DB_DB_H

#include "core/err.h"

#include <libpq-fe.h>

struct db;
struct db_conn;

/* Where and as whom a tenant's transaction runs. Strings are borrowed for the call. */
struct db_target {
    int server;            /* index into the server list */
    const char *database;  /* NULL: the server's default database */
    const char *tenant_id; /* app.tenant_id; NULL for no tenant context */
    const char *search_path;
    const char *role; /* NULL: stay the runtime role (pool isolation) */
    /* Pool isolation only, optional: the caller's own context statement instead of the
     * plain one, built with DB_POOL_CTX_SQL(item) so that item (say, a check) runs in the
     * same statement as the tenant settings, one statement fewer. item refers to
     * ctx_params as $3 and $4. db/ runs it and knows nothing of what it checks; a failure
     * fails the transaction like any statement's. */
    const char *ctx_sql;
    const char *ctx_params[2];
    char *ctx_value; /* out, may be NULL: item's value (text) when the statement ran */
    size_t ctx_value_cap;
    /* 1: a read that may run on the server's replica once it has replayed the tenant's
     * last write (db/replica.h); 0: the primary, and a write's commit LSN is remembered */
    int read_only;
    struct db_error *error; /* out, may be NULL: the first failing statement's fields */
};

/* What a failed statement said, for callers that translate constraint violations. */
struct db_error {
    char sqlstate[8];
    char constraint[64];
    char column[64];
};

/* The context statement of a pool-isolation transaction with one more SELECT-list item
 * (a string literal), evaluated after the tenant settings: set_config runs left to right,
 * and a subquery in item is an initplan, run when item is first evaluated. */
#define DB_POOL_CTX_SQL(item)                                                                      \
    "SELECT set_config('app.tenant_id', $1, true), set_config('search_path', $2, true), " item

struct db_stmt {
    const char *sql;
    int nparams;
    const char *const *params;
    int binary; /* 1: results in binary format (json arrives as its text) */
};

struct db_server_info {
    const char *name;
    const char *admin_conninfo;
};

struct db_config {
    const char *main_conninfo; /* superuser/owner conninfo of the catalog server */
    const char *servers;       /* "name=url,name=url" extra servers, or NULL */
    const char *poolers;       /* "name=url,...": runtime connections of those servers go
                                * there (PgBouncer, transaction mode); NULL: direct */
    const char *app_password;  /* password given to the runtime role */
    int pool_size;             /* statements in flight per server (admission) */
    int max_connections;       /* connections open per server; 0: pool_size */
    int hibernate_after_s;     /* idle tenant databases stop taking connections; 0: never */
    int tenant_pools;
    int acquire_timeout_ms;
    int tenant_share;          /* percent */
    int conn_max_tenants;      /* recycle after this many tenants when memory cannot be read */
    long long backend_memory;  /* recycle a connection whose backend holds more bytes; 0: never */
    int prepare;               /* 1: named prepared statements per connection */
    int pipe_stall_ms;         /* a pipeline with no result for this long takes no more
                                * (they run on the pools); 0: 50 */
    const char *replicas;      /* "name=url,...": streaming replicas of those servers, or NULL */
    long long replica_max_lag; /* bytes of WAL behind its primary a replica may serve at */
};

/* Create the registry (no connection is opened yet). Returns 0 or TD_EBADREQ for a bad
 * server list. */
int db_new(const struct db_config *cfg, struct db **out) TD_MUSTCHECK;
void db_free(struct db *db);

int db_server_count(const struct db *db);
/* Index of the server called name, or -1. */
int db_server_find(const struct db *db, const char *name);
const char *db_server_name(const struct db *db, int server);
const char *db_server_admin_conninfo(const struct db *db, int server);

/*
 * Run stmts (at most 8) in one transaction with t's context, pipelined: one round trip.
 * res[i] receives each statement's result (caller PQclear()s them, NULL on failure).
 * Returns 0, TD_EUNAVAILABLE (no connection, server down, t->server not configured: never
 * another server instead), or the TD_E* code mapped
 * from the first failing statement's SQLSTATE (see db_map_error).
 */
int db_exec(struct db *db, const struct db_target *t, const struct db_stmt *stmts, int n,
            PGresult **res) TD_MUSTCHECK;

/* Map a failed result to a TD_E* code: unique 23505 -> TD_ECONFLICT, foreign key 23503 and
 * data exceptions (class 22) -> TD_EVALIDATION, TD401/TD403/TD409/
 * TDQUO custom codes, check violations -> TD_EVALIDATION, connection loss and lock_timeout
 * (55P03) -> TD_EUNAVAILABLE, anything else -> TD_EINTERNAL (logged). */
int db_map_error(const PGresult *res);

/* Open a superuser connection to server (database NULL: its default). Caller PQfinish()es.
 * Returns 0 or TD_EUNAVAILABLE (also for a server index that is not configured). */
int db_admin_connect(struct db *db, int server, const char *database, PGconn **out) TD_MUSTCHECK;

/* A superuser connection to the catalog (server 0), from a few kept idle (or a new one):
 * work that runs often (provisioning, every signup) would otherwise start a PostgreSQL
 * backend each time. Give it back with db_admin_return(), which keeps it only when it is
 * healthy and idle (no transaction open), else closes it. 0 or TD_EUNAVAILABLE.
 * Thread-safe. */
int db_admin_borrow(struct db *db, PGconn **out) TD_MUSTCHECK;
void db_admin_return(struct db *db, PGconn *pg);

/* Run sql on an admin connection; 0 or the mapped error (logged with what). */
int db_admin_exec(PGconn *pg, const char *what, const char *sql, int nparams,
                  const char *const *params, PGresult **res) TD_MUSTCHECK;

/* Light hibernation by hand (db/hibernate.c). db_hibernate closes this process's idle
 * connections to database on server, sets its CONNECTION LIMIT to 0 (the runtime role is
 * refused, superusers are not) and ends the runtime role's idle backends there. The next
 * db_exec to it wakes it. 0 or TD_EUNAVAILABLE / TD_EINTERNAL. db_wake lets it take
 * connections again: 1 when it was hibernated, 0 when it was not, or a TD_E* code.
 * db_hibernated: 1 hibernated, 0 awake, or a TD_E* code. Thread-safe. */
int db_hibernate(struct db *db, int server, const char *database) TD_MUSTCHECK;
int db_wake(struct db *db, int server, const char *database) TD_MUSTCHECK;
int db_hibernated(struct db *db, int server, const char *database) TD_MUSTCHECK;

/* Close every idle connection to database on server (before DROP DATABASE). */
void db_forget_database(struct db *db, int server, const char *database);

/* Connections currently open to server (all its pools), and the budget. */
void db_server_stats(struct db *db, int server, int *open, int *in_use, int *waiting, int *pools);
/* Server's replica: lag and how many reads it took (db/replica.h). */
struct db_replica_stats;
void db_server_replica_stats(struct db *db, int server, struct db_replica_stats *st);
/* A superuser connection to server's replica when one is up within the lag bound and key
 * (NULL: none) has no write it has not replayed, else to the primary (*on_replica 0).
 * Caller PQfinish()es. 0 or TD_EUNAVAILABLE. */
int db_read_connect(struct db *db, int server, const char *key, PGconn **out,
                    int *on_replica) TD_MUSTCHECK;
/* After a write made through an admin connection pg (NULL: not at hand) that key's reads
 * must see. */
void db_note_write(struct db *db, int server, const char *key, PGconn *pg);

/* Transactions the event loops' pipelines (db/pipe.h) sent to server, and the most that
 * were in flight on one of them at once. */
void db_server_pipe_stats(struct db *db, int server, unsigned long long *transactions, int *depth);

/* Every counter of server's pool (LRU hits, misses and evictions included). */
struct db_pool_stats;
void db_server_pool_stats(struct db *db, int server, struct db_pool_stats *st);

#endif
