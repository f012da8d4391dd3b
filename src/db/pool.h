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
 * Affinity: the default database's connections hold numbered places (0..budget-1). A
 * tenant ranks the places by rendezvous hashing and takes the idle connection of its
 * highest-ranked place (a new connection takes its best free place), so a schema
 * tenant keeps coming back to the same backend, whose catalog caches then hold about
 * 1/pool of the schemas. Never a wait for the preferred place while another is idle.
 *
 * Recycling: every probe_every-th release of a connection the pool asks ops->memory for
 * its backend's memory and closes it above max_backend_bytes; a connection whose memory
 * cannot be measured is closed after it served max_tenants distinct tenants instead.
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
    /* bytes of memory of conn's backend, or -1 when it cannot be told; NULL: never
     * measured (runs outside the pool lock, on a connection no one else holds) */
    long long (*memory)(void *ctx, void *conn);
};

struct db_pool_cfg {
    int budget;                  /* statements in flight at most, all databases together */
    int max_open;                /* connections open at most; 0: budget (the two limits are one) */
    int max_dbs;                 /* per-database pools kept (LRU) */
    int open_cost_us;            /* cost of one open until one is measured; 0: 10 ms */
    int share_pct;               /* per-tenant share of budget */
    int timeout_ms;              /* how long an acquire may wait */
    int max_tenants;             /* recycle a connection after it served this many tenants, when its
                                  * memory cannot be measured; 0: never */
    long long max_backend_bytes; /* recycle a connection whose backend holds more; 0: never */
    int probe_every;             /* measure a backend every this many releases; 0: 64 */
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
    long long affine;           /* default-database uses that got the tenant's first place */
    long long recycled_memory;  /* connections closed for their backend's memory */
    long long recycled_tenants; /* ... for the count of tenants they served */
};
/* The place (0..max_open-1) of s's connection in the default database, or -1. */
int db_slot_place(const struct db_slot *s);
void db_pool_stats(struct db_pool *p, struct db_pool_stats *st);

#endif
