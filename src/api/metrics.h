/*
 * metrics.h - the process's Prometheus metrics: request counters and latency histograms by
 * route, bounded per-tenant counters, denials, rate limiting, provisioning and migration
 * counters, and the rendering of everything (pools and jobs included) for GET /metrics.
 *
 * The counters belong to one application (struct td_app.metrics), are zero when it opens,
 * and only ever grow. Recording is
 * lock-free on the request path (atomics; a tenant's first request takes one stripe lock).
 */
#ifndef TD_API_METRICS_H
#define TD_API_METRICS_H

#include "http/request.h"

/* Tenants shown with their own label in tenantd_tenant_requests_total; the rest are summed
 * into tenant="other". */
#define API_METRICS_TOP_TENANTS 50

struct td_app;
struct api_metrics;

/* The counters of one application, all zero. Allocation failure aborts. */
struct api_metrics *api_metrics_new(void);
/* NULL is a no-op. */
void api_metrics_free(struct api_metrics *m);

/* Record one finished request: route, method, status, duration, tenant, denials and rate
 * limiting. Called once per request by the access log hook. Thread-safe, lock-free after a
 * tenant's first request. */
void api_metrics_request(struct api_metrics *m, const struct http_req *req);

/* Record one tenant provisioning that started at started_us (td_now_us(), core/clock.h) and
 * ended with rc (0 or a TD_E* code); TD_ECONFLICT and TD_EVALIDATION (refused before
 * any storage was made) are not counted. Thread-safe. */
void api_metrics_provision(struct api_metrics *m, int rc, long long started_us);

/* Record one migration run of this process (at start-up: the catalog and the shared pool
 * schemas) that started at started_us and ended with rc. Thread-safe. */
void api_metrics_migration(struct api_metrics *m, int rc, long long started_us);

/* The whole exposition (text format 0.0.4) of app's metrics, pools and job queue included,
 * as a heap string the caller frees; *len gets its length. Thread-safe. */
char *api_metrics_render(struct td_app *app, size_t *len);

#endif
