/*
 * pool.h - one server's connections: a default-database pool plus an LRU of per-database
 * pools, with fair queueing between tenants.
 *
 * Two limits, kept apart: `budget` bounds the statements in flight (admission: about
 * 2 x cores is fastest), `max_open` bounds the connections open, mostly idle, one or two
 * per hot database, so per-database pools stay warm while their database is hot. A
 * request whose database has a connection in use waits for it while the expected wait
 * is shorter than the measured cost of opening one; it opens another only under
 * sustained queueing. Eviction (LRU) happens only when a database with no connection
 * needs a place, and only ever closes idle connections.
 *
 * The pool knows nothing of libpq: it opens and closes connections through ops, so its
 * rules (admission, open limit, LRU, fairness, recycling) are testable on their own. A
 * slot is the caller's from db_pool_acquire() until db_pool_release().
 *
 * Fairness, work-conserving: a tenant's share is max(1, budget * share / 100) connections,
 * and it binds only while another tenant waits. Alone, a tenant takes every connection the
 * budget allows. When several tenants wait, the next free connection goes to a waiting
 * tenant under its share before one at or over it, and among those to the one served least
 * recently (round-robin across tenants, FIFO within one tenant): a tenant that took the
 * whole budget alone gives the next free connection to a newcomer.
 */
#ifndef TD_DB_POOL_H
#define TD_DB_POOL_H

#include "core/err.h"

struct db_pool;

struct db_pool_ops {
    void *(*open)(void *ctx, const char *database); /* NULL on failure */
    void (*close)(void *ctx, void *conn);
    /* microseconds on a monotonic clock; NULL: CLOCK_MONOTONIC. Tests pass their own, so
     * the wait-or-open rule is decided by figures they choose, not by timing. */
    unsigned long long (*now_us)(void *ctx);
};

struct db_pool_cfg {
    int budget;       /* statements in flight at most, all databases together */
    int max_open;     /* connections open at most; 0: budget (the two limits are one) */
    int max_dbs;      /* per-database pools kept (LRU) */
    int open_cost_us; /* cost of one open until one is measured; 0: 10 ms */
    int share_pct;    /* per-tenant share of budget */
    int timeout_ms;   /* how long an acquire may wait */
    int max_tenants;  /* recycle a connection after it served this many tenants; 0: never */
};

/* One pooled connection, lent by db_pool_acquire(); its bookkeeping is the pool's own. */
struct db_slot;

/* The connection ops->open made for slot s. */
void *db_slot_conn(const struct db_slot *s);

struct db_pool *db_pool_new(const struct db_pool_cfg *cfg, const struct db_pool_ops *ops,
                            void *ctx);
/* Closes every connection; none may be in use. */
void db_pool_free(struct db_pool *p);

/*
 * Borrow a connection to database (NULL: default) on behalf of tenant (any string key,
 * NULL: not subject to the tenant share). Returns 0, TD_EUNAVAILABLE when none frees up
 * within timeout_ms or opening one fails.
 */
int db_pool_acquire(struct db_pool *p, const char *database, const char *tenant,
                    struct db_slot **out) TD_MUSTCHECK;
/* Give the slot back; broken: its connection is closed instead of kept. */
void db_pool_release(struct db_pool *p, struct db_slot *s, const char *tenant, int broken);
/* Close idle connections to database and drop its pool (before DROP DATABASE). */
void db_pool_forget(struct db_pool *p, const char *database);

/*
 * Names of the databases whose pool has had nothing in use for idle_us (now_us clock):
 * *names is a NULL-terminated array the caller frees (each name, then the array).
 * Returns how many. Thread-safe.
 */
int db_pool_idle_databases(struct db_pool *p, unsigned long long idle_us, char ***names);

struct db_pool_stats {
    int open, in_use, waiting, dbs;
    int tenants; /* tenant records kept for fairness (idle ones bounded) */
    long long hits, misses, evictions;
    long long opened;           /* connections opened since start (the churn) */
    long long open_us, hold_us; /* measured averages: one open, one use of a connection */
};
void db_pool_stats(struct db_pool *p, struct db_pool_stats *st);

#endif
