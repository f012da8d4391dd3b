/*
 * admin.c - the operator's /admin/tenants routes.
 */
#include "api/handlers.h"

#include "app/app.h"
#include "api/internal.h"
#include "app/lifecycle.h"
#include "tenant/check.h"
#include "tenant/plans.h"
#include "api/tx.h"
#include "api/validate.h"
#include "auth/jwt.h"
#include "tenant/provision.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void release_tenant(void *p)
{
    tnt_tenant_unref(p);
}

void api_hold_tenant(struct http_req *req, struct tnt_tenant *t)
{
    td_arena_defer(req->arena, release_tenant, t);
}

int api_admin_find_tenant(struct http_req *req, struct tnt_tenant **out)
{
    const char *key = req->params[0];
    if (!auth_is_uuid(key) && !api_check_slug(key))
        return TD_ETENANT_NOTFOUND;
    int rc = tnt_cache_get(req->app->cache, key, out);
    if (rc == 0)
        api_hold_tenant(req, *out);
    return rc;
}

static const char *const create_fields[] = {"slug",   "name",  "plan", "isolation",
                                            "server", "owner", NULL};

/* The POST /admin/tenants body {slug,name,plan?,isolation?,server?,owner?} into s: types
 * and the request's own detail wording here, the values' rules in app_tenant_create. */
static int create_spec(struct http_req *req, json_t *body, struct app_tenant_spec *s,
                       struct tnt_owner *owner, const char **detail)
{
    int rc;
    memset(s, 0, sizeof(*s));
    if ((rc = api_no_unknown(req, body, create_fields, detail)) < 0 ||
        (rc = api_field_str(req, body, "slug", 1, 40, &s->slug, detail)) < 0 ||
        (rc = api_field_str(req, body, "name", 1, 200, &s->name, detail)) < 0 ||
        (rc = api_field_enum(req, body, "plan", 0, tnt_plan_names, &s->plan, detail)) < 0 ||
        (rc = api_field_enum(req, body, "isolation", 0, tnt_isolation_names, &s->isolation,
                             detail)) < 0 ||
        (rc = api_field_str(req, body, "server", 0, 64, &s->server, detail)) < 0)
        return rc;
    json_t *o = json_object_get(body, "owner");
    if (o && !json_is_null(o)) {
        if ((rc = api_owner_fields(req, o, owner, detail)) < 0)
            return rc;
        s->owner = owner;
    }
    return 0;
}

int api_admin_tenants_create(struct http_req *req)
{
    json_t *body = NULL, *out = NULL;
    const char *detail = NULL;
    struct app_tenant_spec spec;
    struct tnt_owner owner;
    int rc = http_body_object(req, &body);
    if (rc == 0)
        rc = create_spec(req, body, &spec, &owner, &detail);
    if (rc == 0)
        rc = app_tenant_create(req->app, &spec, &out, &detail);
    json_decref(body);
    if (rc < 0)
        return api_fail(req, rc, detail);
    return rc < 0 ? rc : http_reply_json(req, 201, out);
}

int api_admin_tenants_get(struct http_req *req)
{
    struct tnt_tenant *t;
    json_t *j;
    int rc = api_admin_find_tenant(req, &t);
    if (rc < 0)
        return rc;
    req->tenant = t;
    if ((rc = app_tenant_show(req->app, t, &j)) < 0)
        return rc;
    return http_reply_json(req, 200, j);
}

/* POST /admin/tenants/{id}/hibernate and /wake: 200 with the tenant and its state. */
static int hibernate_route(struct http_req *req, int hibernate)
{
    struct tnt_tenant *t;
    json_t *j;
    const char *detail = NULL;
    int rc = api_admin_find_tenant(req, &t);
    if (rc < 0)
        return rc;
    req->tenant = t;
    if ((rc = app_tenant_hibernate(req->app, t, hibernate, &detail)) < 0)
        return api_fail(req, rc, detail);
    j = tnt_tenant_json(t);
    json_object_set_new(j, "hibernated", json_boolean(hibernate));
    return http_reply_json(req, 200, j);
}

int api_admin_tenants_hibernate(struct http_req *req)
{
    return hibernate_route(req, 1);
}

int api_admin_tenants_wake(struct http_req *req)
{
    return hibernate_route(req, 0);
}

static const char *const patch_fields[] = {"name", "plan", "status", "subscription_expires_at",
                                           NULL};

int api_admin_tenants_update(struct http_req *req)
{
    json_t *body = NULL;
    const char *detail = NULL, *name, *plan, *status, *expires = NULL;
    struct tnt_tenant *t, *nt = NULL;
    int rc = api_admin_find_tenant(req, &t);
    if (rc < 0)
        return rc;
    if ((rc = http_body_object(req, &body)) < 0)
        goto out;
    if ((rc = api_no_unknown(req, body, patch_fields, &detail)) < 0)
        goto out;
    /* only subscription_expires_at can be cleared; a null name, plan or status is a
     * wrong type, as in every other PATCH */
    static const char *const not_null[] = {"name", "plan", "status", NULL};
    for (const char *const *f = not_null; *f; f++)
        if (json_is_null(json_object_get(body, *f))) {
            rc = TD_EVALIDATION;
            detail = td_arena_printf(req->arena, "%s must not be null", *f);
            goto out;
        }
    if ((rc = api_field_str(req, body, "name", 0, 200, &name, &detail)) < 0 ||
        (rc = api_field_enum(req, body, "plan", 0, tnt_plan_names, &plan, &detail)) < 0 ||
        (rc = api_field_enum(req, body, "status", 0, tnt_status_names, &status, &detail)) < 0)
        goto out;
    json_t *e = json_object_get(body, "subscription_expires_at");
    if (e && !json_is_null(e) &&
        (rc = api_field_str(req, body, "subscription_expires_at", 1, 64, &expires, &detail)) < 0)
        goto out;
    struct app_tenant_patch p = {name, plan, status, e != NULL, expires};
    rc = app_tenant_update(req->app, t->id, &p, &nt);
    if (rc == TD_EVALIDATION && !detail)
        detail = "subscription_expires_at must be an RFC 3339 timestamp";
    if (rc < 0)
        goto out;
    rc = http_reply_json(req, 200, tnt_tenant_json(nt));
    tnt_tenant_unref(nt);
out:
    json_decref(body);
    if (rc < 0)
        return api_fail(req, rc, detail);
    return rc;
}

int api_admin_tenants_delete(struct http_req *req)
{
    struct tnt_tenant *t;
    int rc = api_admin_find_tenant(req, &t);
    if (rc < 0)
        return rc;
    const char *confirm = http_query(req, "confirm");
    if (!confirm || strcmp(confirm, t->slug) != 0)
        return api_fail(req, TD_EBADREQ, "confirm must be the tenant's slug: ?confirm=<slug>");
    if ((rc = app_tenant_delete(req->app, t)) < 0)
        return rc;
    return http_reply_empty(req, 204);
}
