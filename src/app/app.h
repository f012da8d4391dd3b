/*
 * app.h - the application: configuration, the database registry, the tenant cache, the
 * migration sets and the usage counters. Opened once by each subcommand (`serve`,
 * `migrate`, `tenants`); the HTTP handlers reach it through req->app and share it
 * read-only (the members are themselves thread-safe).
 */
#ifndef TD_APP_APP_H
#define TD_APP_APP_H

#include "core/config.h"
#include "db/db.h"
#include "migrate/files.h"
#include "tenant/tenant.h"

#include <stdatomic.h>

struct tnt_usage;
struct bkp;
struct auth_throttle;
struct auth_jwt;
struct api_live;
struct api_metrics;
struct res_registry;
struct tnt_usercheck;
struct pgc_cluster;
struct pgc_replica;
struct tnt_listener;
struct jobs;

struct td_app {
    struct td_config *cfg;
    struct db *db;
    struct tnt_cache *cache;
    struct mig_set catalog_migs, tenant_migs;
    struct mig_expected expected; /* the tenant schema version requests and jobs expect */
    struct tnt_usage *usage;
    atomic_int ready;
    struct pgc_cluster *cluster; /* embedded PostgreSQL, or NULL */
    struct pgc_replica *replica; /* its streaming replica (TENANTD_REPLICA), or NULL */
    struct tnt_listener *listener;
    struct bkp *backup;              /* backups and restore (serve only), or NULL */
    struct auth_throttle *throttle;  /* failed logins, per process */
    struct auth_jwt *jwt;            /* the JWT secret and the tokens verified with it */
    struct tnt_usercheck *usercheck; /* user checks remembered for reads */
    struct api_metrics *metrics;     /* what GET /metrics shows */
    struct api_live *live;           /* the last minutes per second, for GET /admin/live */
    struct jobs *_Atomic jobs;       /* serve only: the job workers once started, or NULL */
    struct res_registry *resources;  /* served tenant tables (serve only), or NULL */
};

/* TENANTD_CACHE_MB (cache_mb) split into the budgets of the tenant cache, the verified
 * tokens and the remembered user checks, in bytes. */
void td_app_cache_budgets(int cache_mb, size_t *tenants, size_t *tokens, size_t *checks);

/* How td_app_open() opens. */
enum td_app_mode {
    TD_APP_FULL,     /* bootstrap: apply catalog and pool migrations, caches, listener */
    TD_APP_READONLY, /* only the cluster, the migration files and the database registry:
                      * nothing is written (`migrate --dry-run`); superuser connections only */
};

/*
 * Everything but the HTTP server: embedded cluster (when no database URL), secrets
 * in data_dir, migrations loaded and, in TD_APP_FULL, applied, servers bootstrapped,
 * tenant cache and usage counters. On failure logs why and returns a negative code;
 * td_app_close() is still safe to call.
 */
int td_app_open(struct td_app *app, struct td_config *cfg, enum td_app_mode mode) TD_MUSTCHECK;
void td_app_close(struct td_app *app);

/* `tenantd serve`; returns the exit status. */
int td_serve(struct td_config *cfg);

#endif
