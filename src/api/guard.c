/*
 * guard.c - everything checked before a handler runs, in SPEC §4's order:
 * identification (400/404), token (401), mismatch (403), tenant status (403/402),
 * API budget (429); roles and plan limits are the handlers' part.
 */
#include "api/api.h"
#include "app/app.h"
#include "api/console.h"
#include "api/internal.h"
#include "api/handlers.h"
#include "tenant/plans.h"
#include "auth/jwt.h"
#include "auth/password.h"
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

/* Verify req's bearer token once per request: the admission gate asks first, the guard
 * after, and both get the one answer (claims kept in req->claims; has_claims is the
 * guard's to set). */
static int token_claims(struct http_req *req, const char *tok)
{
    if (!req->token_checked)
        req->token_checked =
            auth_jwt_check(req->app->jwt, tok, time(NULL), &req->claims) == 0 ? 1 : -1;
    return req->token_checked > 0 ? 0 : TD_EUNAUTHORIZED;
}

int api_tenant_key(struct http_req *req, char *out, size_t cap)
{
    const char *tok = bearer(req), *named = req->path_slug;
    if (tok && token_claims(req, tok) == 0)
        named = req->claims.tid;
    if (!named)
        named = http_header(req, "X-Tenant-ID");
    if (!named || strlen(named) >= cap)
        return 0;
    snprintf(out, cap, "%s", named);
    return 1;
}

static int guard_admin(struct http_req *req)
{
    const char *tok = bearer(req), *detail = NULL;
    if (!tok) { /* the console: a session cookie, and its CSRF token on writes */
        int rc = api_console_check(req, &detail);
        return rc < 0 ? api_fail(req, rc, detail) : 0;
    }
    if (!auth_secret_equal(tok, req->app->cfg->admin_token))
        return api_fail(req, TD_EUNAUTHORIZED, "the operator token is required");
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
    return api_fail(req, TD_EUNAUTHORIZED, "the operator token or the metrics token is required");
}

/* The tenant the request names (path, X-Tenant-ID, subdomain) into req->tenant; *named is
 * 0 when it names none (then the token's tid will). Returns 0 or a TD_E* code. */
static int guard_named(struct http_req *req, int *named, int *mismatch)
{
    struct td_app *app = req->app;
    char sub[64];
    const char *sources[3] = {req->path_slug, http_header(req, "X-Tenant-ID"), NULL};
    if (app->cfg->base_domain &&
        tnt_subdomain(http_header(req, "Host"), app->cfg->base_domain, sub, sizeof(sub)))
        sources[2] = sub;
    *named = sources[0] || sources[1] || sources[2];
    if (!*named)
        return 0;
    struct tnt_tenant *t = NULL;
    int rc = tnt_resolve(app->cache, sources, 3, &t, mismatch);
    if (rc < 0)
        return api_fail(req, rc, rc == TD_ETENANT_NOTFOUND ? "no such tenant" : NULL);
    req->tenant = t;
    api_hold_tenant(req, t);
    return 0;
}

/* The token step of a tenant route: verified, its tenant when none was named. */
static int guard_token(struct http_req *req, const char *tok, int named, int *mismatch)
{
    if (!tok)
        return api_fail(req, TD_EUNAUTHORIZED, "a bearer token is required");
    if (token_claims(req, tok) < 0)
        return api_fail(req, TD_EUNAUTHORIZED, "the token is invalid or expired");
    req->has_claims = 1;
    if (!named) {
        struct tnt_tenant *t = NULL;
        int rc = tnt_cache_get(req->app->cache, req->claims.tid, &t);
        if (rc < 0)
            return rc;
        req->tenant = t;
        api_hold_tenant(req, t);
    }
    if (strcmp(req->claims.tid, req->tenant->id) != 0)
        *mismatch = 1;
    return 0;
}

/* Returns 0 to go on to the handler, or a TD_E* code with req->detail. */
static int guard_tenant(struct http_req *req, int need_token)
{
    const char *tok = need_token ? bearer(req) : NULL;
    int named = 0, mismatch = 0;
    int rc = guard_named(req, &named, &mismatch);
    if (rc < 0)
        return rc;
    if (!named && !tok)
        return api_fail(req, TD_ETENANT_REQUIRED,
                        "name the tenant by /t/{slug}, X-Tenant-ID, subdomain or token");
    if (need_token && (rc = guard_token(req, tok, named, &mismatch)) < 0)
        return rc;
    const struct tnt_tenant *t = req->tenant;
    if (mismatch)
        return api_fail(req, TD_EMISMATCH, "the request names more than one tenant");
    if (t->suspended)
        return api_fail(req, TD_ESUSPENDED, "this tenant is suspended");
    if (t->expires_at && t->expires_at <= (long long)time(NULL))
        return api_fail(req, TD_EEXPIRED, "this tenant's subscription has expired");
    if (need_token) {
        const struct tnt_plan *plan = tnt_plan_get(t->plan);
        if (tnt_usage_hit(req->app->usage, t, plan ? plan->api_calls : -1)) {
            char ra[24];
            snprintf(ra, sizeof(ra), "%ld", tnt_usage_month_left());
            http_set_header(req, "Retry-After", ra);
            return api_fail(req, TD_ERATELIMIT, "the plan's monthly API budget is spent");
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
