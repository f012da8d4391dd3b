/*
 * routes.c - the route table, dispatch (route, guard, handler) and the access log.
 */
#include "api/api.h"
#include "app/app.h"
#include "api/console.h"
#include "api/handlers.h"
#include "api/live.h"
#include "api/metrics.h"
#include "core/clock.h"
#include "core/log.h"
#include "http/problem.h"
#include "http/router.h"

#include <stdio.h>
#include <string.h>

#define T HTTP_ROUTE_TENANT
#define A HTTP_ROUTE_ADMIN
#define P HTTP_ROUTE_PUBLIC
#define S HTTP_ROUTE_SLOW
#define M HTTP_ROUTE_METRICS

static const struct http_route routes[] = {
    {"GET", "/health", P, api_health},
    {"GET", "/ready", P, api_ready},
    {"GET", "/metrics", M, api_metrics},
    {"GET", "/openapi.json", P, api_openapi},
    {"POST", "/signup", P | S, api_signup},
    {"POST", "/auth/login", HTTP_ROUTE_TENANT_ANON | S, api_login},
    {"GET", "/me", T, api_me},
    {"GET", "/users", T, api_users_list},
    {"POST", "/users", T | S, api_users_create},
    {"GET", "/users/{id}", T, api_users_get},
    {"PATCH", "/users/{id}", T | S, api_users_update},
    {"DELETE", "/users/{id}", T, api_users_delete},
    {"GET", "/audit-logs", T, api_audit_list},
    {"POST", "/admin/tenants", A | S, api_admin_tenants_create},
    {"POST", "/admin/tenants/import", A | S | HTTP_ROUTE_STREAM, api_admin_tenants_import},
    {"GET", "/admin/tenants", A, api_admin_tenants_list},
    {"GET", "/admin/tenants/{id}", A, api_admin_tenants_get},
    {"PATCH", "/admin/tenants/{id}", A | S, api_admin_tenants_update},
    {"DELETE", "/admin/tenants/{id}", A | S, api_admin_tenants_delete},
    {"POST", "/admin/tenants/{id}/move", A | S, api_admin_tenants_move},
    {"POST", "/admin/tenants/{id}/hibernate", A | S, api_admin_tenants_hibernate},
    {"POST", "/admin/tenants/{id}/wake", A | S, api_admin_tenants_wake},
    {"GET", "/admin/tenants/{id}/export", A | S, api_admin_tenants_export},
    {"POST", "/admin/tenants/{id}/restore", A | S, api_admin_tenants_restore},
    {"POST", "/admin/tenants/{id}/clone", A | S, api_admin_tenants_clone},
    {"GET", "/admin/jobs/{id}", A | S, api_admin_jobs_get},
    {"GET", "/admin/migrations", A | S, api_admin_migrations},
    {"GET", "/admin/analytics", A | S, api_admin_analytics},
    {"GET", "/admin/tenants/{id}/users", A, api_admin_tenant_users},
    {"GET", "/admin/tenants/{id}/audit-logs", A, api_admin_tenant_audit},
    {"GET", "/admin/tenants/{id}/usage", A, api_admin_tenant_usage},
    {"GET", "/admin/tenants/{id}/migration", A | S, api_admin_tenant_migration},
    {"GET", "/admin/servers", A, api_admin_servers},
    {"GET", "/admin/live", A, api_admin_live},
    {"GET", "/console", P, api_console_asset},
    {"POST", "/console/session", P, api_console_sign_in},
    {"GET", "/console/session", P, api_console_session},
    {"DELETE", "/console/session", P, api_console_sign_out},
    {"GET", "/console/{file}", P, api_console_asset},
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

const struct http_route *api_routes(size_t *n)
{
    *n = NROUTES;
    return routes;
}

/* Match req's route once: the server asks whether it is slow, then dispatch uses it. */
static const struct http_route *route_of(struct http_req *req)
{
    if (!req->route && !req->route_known) {
        req->route = http_router_match(routes, NROUTES, req->method, req->path, req->arena,
                                       req->params, &req->nparams, &req->route_known);
        /* not a built-in route: perhaps a served tenant table */
        if (!req->route && !req->route_known)
            req->route = api_resource_match(req, &req->route_known);
    }
    return req->route;
}

int api_slow_route(struct http_req *req)
{
    const struct http_route *r = route_of(req);
    return r && (r->flags & HTTP_ROUTE_SLOW);
}

int api_spool_route(struct http_req *req)
{
    const struct http_route *r = route_of(req);
    return r && (r->flags & HTTP_ROUTE_STREAM) && api_is_operator(req);
}

int api_dispatch(struct http_req *req)
{
    const struct http_route *r = route_of(req);
    if (!r) {
        if (req->route_known)
            return http_problem_send(req, TD_EMETHOD, "this route does not take that method");
        return http_problem_send(req, TD_ENOTFOUND, "no such route");
    }
    /* only tenant routes may carry a /t/{slug} prefix */
    if (req->path_slug && !(r->flags & (HTTP_ROUTE_TENANT | HTTP_ROUTE_TENANT_ANON)))
        return http_problem_send(req, TD_ENOTFOUND, "no such route");
    req->route_flags = r->flags;
    req->route_pattern = r->pattern;
    /* the guard and the handlers return a TD_E* code with req->detail: the problem
     * response is written here and nowhere else in src/api */
    int rc = api_guard(req);
    if (rc == 0)
        rc = r->handler(req);
    if (rc < 0 && !req->responded)
        return http_problem_send(req, rc, req->detail);
    return 0;
}

int api_dispatch_metrics(struct http_req *req)
{
    /* the metrics address serves nothing else: no tenant route, no /t/{slug} prefix */
    if (strcmp(req->url, "/metrics") != 0)
        return http_problem_send(req, TD_ENOTFOUND, "only /metrics is served here");
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0)
        return http_problem_send(req, TD_EMETHOD, "this route does not take that method");
    req->route_pattern = "/metrics";
    return api_metrics(req);
}

void api_log_request(struct http_req *req)
{
    api_metrics_observe(req);
    long long now = td_now_us();
    api_live_observe(req, now - req->started_us);
    api_access_log(req, now - req->started_us);
}
