/*
 * guard.c - everything checked before a handler runs, in SPEC §4's order:
 * identification (400/404), token (401), mismatch (403), tenant status (403/402),
 * API budget (429); roles and plan limits are the handlers' part.
 */
#include "api/app.h"
#include "api/console.h"
#include "api/internal.h"
#include "api/handlers.h"
#include "api/plans.h"
#include "auth/jwt.h"
#include "auth/password.h"
#include "http/problem.h"
#include "http/router.h"
#include "tenant/resolver.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* The bearer token of the request, or NULL. */
static const char *bearer(struct http_req *req)
{
    const char *h = http_header(req, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    return *h ? h : NULL;
}

int api_is_operator(struct http_req *req)
{
    const char *tok = bearer(req);
    return tok && auth_secret_equal(tok, req->app->cfg->admin_token);
}

int api_tenant_key(struct http_req *req, char *out, size_t cap)
{
    struct auth_claims c;
    const char *tok = bearer(req), *named = req->path_slug;
    if (tok && auth_jwt_verify(req->app->cfg->jwt_secret, tok, time(NULL), &c) == 0)
        return snprintf(out, cap, "%s", c.tid), 1; /* remembered: the guard's check is free */
    if (!named)
        named = http_header(req, "X-Tenant-ID");
    if (!named || strlen(named) >= cap)
        return 0;
    return snprintf(out, cap, "%s", named), 1;
}

static int guard_admin(struct http_req *req)
{
    const char *tok = bearer(req), *detail = NULL;
    if (!tok) { /* the console: a session cookie, and its CSRF token on writes */
        int rc = api_console_check(req, &detail);
        return rc < 0 ? (http_problem_send(req, rc, detail), 1) : 0;
    }
    if (!auth_secret_equal(tok, req->app->cfg->admin_token))
        return http_problem_send(req, TD_EUNAUTHORIZED, "the operator token is required"), 1;
    return 0;
}

/* /metrics names tenants: the operator token, or the scraper's own token. A user token,
 * even a valid one, is neither. */
static int guard_metrics(struct http_req *req)
{
    const char *tok = bearer(req), *mt = req->app->cfg->metrics_token;
    if (tok &&
        (auth_secret_equal(tok, req->app->cfg->admin_token) || (mt && auth_secret_equal(tok, mt))))
        return 0;
    http_problem_send(req, TD_EUNAUTHORIZED, "the operator token or the metrics token is required");
    return 1;
}

static int fail(struct http_req *req, int err, const char *detail)
{
    http_problem_send(req, err, detail);
    return 1;
}

/* Returns 0 to go on to the handler, 1 when a response was queued. */
static int guard_tenant(struct http_req *req, int need_token)
{
    struct td_app *app = req->app;
    char sub[64];
    const char *sources[3] = {req->path_slug, http_header(req, "X-Tenant-ID"), NULL};
    if (app->cfg->base_domain &&
        tnt_subdomain(http_header(req, "Host"), app->cfg->base_domain, sub, sizeof(sub)))
        sources[2] = sub;
    const char *tok = need_token ? bearer(req) : NULL;
    int named = sources[0] || sources[1] || sources[2];

    struct tnt_tenant *t = NULL;
    int mismatch = 0;
    if (named) {
        int rc = tnt_resolve(app->cache, sources, 3, &t, &mismatch);
        if (rc < 0)
            return fail(req, rc, rc == TD_ETENANT_NOTFOUND ? "no such tenant" : NULL);
        req->tenant = t;
        api_hold_tenant(req, t);
    } else if (!tok) {
        return fail(req, TD_ETENANT_REQUIRED,
                    "name the tenant by /t/{slug}, X-Tenant-ID, subdomain or token");
    }
    if (need_token) {
        if (!tok)
            return fail(req, TD_EUNAUTHORIZED, "a bearer token is required");
        if (auth_jwt_verify(app->cfg->jwt_secret, tok, time(NULL), &req->claims) < 0)
            return fail(req, TD_EUNAUTHORIZED, "the token is invalid or expired");
        req->has_claims = 1;
        if (!named) {
            int rc = tnt_cache_get(app->cache, req->claims.tid, &t);
            if (rc < 0)
                return fail(req, rc, NULL);
            req->tenant = t;
            api_hold_tenant(req, t);
        }
        if (strcmp(req->claims.tid, t->id) != 0)
            mismatch = 1;
    }
    if (mismatch)
        return fail(req, TD_EMISMATCH, "the request names more than one tenant");
    if (t->suspended)
        return fail(req, TD_ESUSPENDED, "this tenant is suspended");
    if (t->expires_at && t->expires_at <= (long long)time(NULL))
        return fail(req, TD_EEXPIRED, "this tenant's subscription has expired");
    if (need_token) {
        const struct api_plan *plan = api_plan_get(t->plan);
        if (api_usage_hit(app->usage, t->id, plan ? plan->api_calls : -1)) {
            char ra[24];
            snprintf(ra, sizeof(ra), "%ld", api_usage_month_left());
            http_set_header(req, "Retry-After", ra);
            return fail(req, TD_ERATELIMIT, "the plan's monthly API budget is spent");
        }
    }
    return 0;
}

int api_guard(struct http_req *req)
{
    if (req->route_flags & HTTP_ROUTE_ADMIN)
        return guard_admin(req);
    if (req->route_flags & HTTP_ROUTE_METRICS)
        return guard_metrics(req);
    if (req->route_flags & (HTTP_ROUTE_TENANT | HTTP_ROUTE_TENANT_ANON))
        return guard_tenant(req, (req->route_flags & HTTP_ROUTE_TENANT) != 0);
    return 0;
}
