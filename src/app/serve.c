/*
 * serve.c - `tenantd serve`: open the app, listen, wait for SIGINT/SIGTERM, stop
 * gracefully (in-flight requests get up to 10 s).
 */
#include "app/app.h"

#include "api/api.h"
#include "api/pipeline.h"
#include "backup/backup.h"
#include "core/log.h"
#include "http/server.h"
#include "jobs/jobs.h"
#include "resource/resource.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>

/* What each event loop holds of its own: the access log's buffer and the pipelines. */
static void loop_start(struct http_loop *l)
{
    api_access_log_loop_start(l);
    api_pipeline_loop_start(l);
}

static void loop_stop(struct http_loop *l)
{
    api_pipeline_loop_stop(l);
    api_access_log_loop_stop(l);
}

int td_serve(struct td_config *cfg)
{
    struct td_app app;
    struct http_server *srv = NULL, *msrv = NULL;
    struct jobs *jobs = NULL;
    int status = 1;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    /* every thread started from here on leaves these signals to sigwait() below */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (td_app_open(&app, cfg, TD_APP_FULL) < 0)
        goto out;
    struct http_server_opts ho = {
        .listen = cfg->listen,
        .threads = cfg->http_threads,
        .workers = cfg->http_workers,
        .dispatch = api_dispatch,
        .slow = api_slow_route,
        .spool = api_spool_route,
        .done = api_log_request,
        .loop_start = loop_start,
        .loop_stop = loop_stop,
        .tenant_key = api_tenant_key,
        .tenant_share = cfg->tenant_share,
        .cors_origins = cfg->cors_origins,
        .trusted_proxies = cfg->trusted_proxies,
    };
    /* before the HTTP server: handlers read app.resources and app.backup */
    if (res_registry_new(app.db, &app.resources) < 0)
        goto out;
    if (bkp_open(cfg, app.cluster, app.db, &app.tenant_migs, &app.backup) < 0)
        goto out;
    if (http_server_start(&ho, &app, &srv) < 0)
        goto out;
    /* /metrics alone, without a token, for a scraper on an internal address; one loop is
     * plenty, and its requests stay out of the access log and the request metrics */
    struct http_server_opts mo = {
        .listen = cfg->metrics_listen, .threads = 1, .dispatch = api_dispatch_metrics};
    if (cfg->metrics_listen && http_server_start(&mo, &app, &msrv) < 0)
        goto out;
    int nk = 0;
    const struct jobs_kind_ext *kinds = bkp_job_kinds(app.backup, &nk);
    if (jobs_start(app.db, &app.expected, cfg->job_workers, kinds, nk, &jobs) < 0)
        goto out;
    atomic_store(&app.jobs, jobs); /* the HTTP loops already read it for /metrics */
    td_log_info("tenantd listening on http://%s (admin token in %s/admin-token unless "
                "TENANTD_ADMIN_TOKEN is set; JWT secret in %s/jwt-secret)",
                cfg->listen, cfg->data_dir, cfg->data_dir);
    if (cfg->metrics_listen)
        td_log_info("metrics without a token on http://%s/metrics", cfg->metrics_listen);
    int sig = 0;
    sigwait(&set, &sig);
    td_log_info("received %s, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    atomic_store(&app.ready, 0);
    status = 0;
out:
    http_server_stop(msrv, 1);
    http_server_stop(srv, 10);
    atomic_store(&app.jobs, NULL);
    jobs_stop(jobs);
    bkp_close(app.backup);
    res_registry_free(app.resources);
    app.resources = NULL;
    td_app_close(&app);
    return status;
}
