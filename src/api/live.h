/*
 * live.h - per-second request figures of the last five minutes (a fixed ring in memory),
 * fleet-wide and per tenant, for GET /admin/live.
 */
#ifndef TD_API_LIVE_H
#define TD_API_LIVE_H

#include "http/request.h"

struct api_live;

/* The ring of an application (struct td_app.live); free accepts NULL. */
struct api_live *api_live_new(void);
void api_live_free(struct api_live *l);
/* Count one answered request in req->app's ring (status, tenant, duration). Thread-safe. */
void api_live_observe(const struct http_req *req, long long duration_us);
/* GET /admin/live[?seconds=N]: the window's per-second figures and its top tenants. */
int api_admin_live(struct http_req *req);

#endif
