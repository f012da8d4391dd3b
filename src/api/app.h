/*
 * app.h - what every handler reaches through req->app: configuration, the database
 * registry, the tenant cache, the migration sets and the usage counters. Built once by
 * `tenantd serve` and shared read-only (the members are themselves thread-safe).
 */
#ifndef TD_API_APP_H
#define TD_API_APP_H

#include "core/config.h"
#include "http/request.h"
#include "db/db.h"
#include "migrate/files.h"
#include "tenant/tenant.h"

#include <stdatomic.h>

struct api_usage;
struct bkp;
struct auth_throttle;
struct pgc_cluster;
struct res_registry;
struct tnt_listener;

struct td_app {
    struct td_config *cfg;
    struct db *db;
    struct tnt_cache *cache;
    struct mig_set catalog_migs, tenant_migs;
    struct api_usage *usage;
    atomic_int ready;
    struct pgc_cluster *cluster; /* embedded PostgreSQL, or NULL */
    struct tnt_listener *listener;
    struct bkp *backup;             /* backups and restore (serve only), or NULL */
    struct auth_throttle *throttle; /* failed logins, per process */
    struct res_registry *resources; /* served tenant tables (serve only), or NULL */
};

/*
 * Everything but the HTTP server: embedded cluster (when no database URL), secrets
 * in data_dir, migrations loaded and applied, servers bootstrapped, tenant cache and
 * usage counters. On failure logs why and returns a negative code; td_app_close()
 * is still safe to call.
 */
int td_app_open(struct td_app *app, struct td_config *cfg) TD_MUSTCHECK;
void td_app_close(struct td_app *app);

/* `tenantd serve`; returns the exit status. */
int api_serve(struct td_config *cfg);
/* `tenantd tenants ...`; returns the exit status. */
int api_cli_tenants(struct td_app *app, int argc, char **argv);
/* Check the arguments of `tenantd tenants` before anything is opened: the exit status
 * when the command ends there (2 bad usage, 0 --help), or -1 to go on. */
int api_cli_tenants_check(int argc, char **argv);

/* Route, guard and answer one request (the http server's dispatch callback). */
int api_dispatch(struct http_req *req);
/* The metrics address's dispatch: GET /metrics without a token, 404 for any other path. */
int api_dispatch_metrics(struct http_req *req);
/* 1 when req's route is marked HTTP_ROUTE_SLOW (run on an HTTP worker, not a loop). */
int api_slow_route(struct http_req *req);
/* 1 when req's route is marked HTTP_ROUTE_STREAM and req carries the operator token: its
 * body is then spooled to a file, of any size (an anonymous client cannot fill the disk). */
int api_spool_route(struct http_req *req);
/* 1 when req carries the operator token (the guard still answers for the route). */
int api_is_operator(struct http_req *req);
/* The tenant req names (token's tid, else /t/{slug} or X-Tenant-ID) into out, for the
 * server's per-tenant admission; 0 when it names none. Nothing is checked beyond the
 * token: the guard still decides. */
int api_tenant_key(struct http_req *req, char *out, size_t cap);
/* The route table (for OpenAPI and its test). */
struct http_route;
const struct http_route *api_routes(size_t *n);
/* Access log line, after the response is queued. */
void api_log_request(struct http_req *req);

#endif
