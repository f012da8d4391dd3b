/*
 * lifecycle.h - the operator's tenant changes shared by the admin API (admin.c) and the
 * CLI (cli.c): catalog updates, deletion, usage figures, and telling every instance
 * sharing the catalog to forget a tenant (NOTIFY tenantd_tenants).
 */
#ifndef TD_API_LIFECYCLE_H
#define TD_API_LIFECYCLE_H

#include "api/app.h"

#include <jansson.h>

/*
 * Check a POST /admin/tenants body {slug,name,plan?,isolation?,server?,owner?} and
 * provision the tenant (tnt_provision). req supplies the app and the arena that holds
 * *detail; the CLI passes a request of its own with only those two set. *out gets the
 * tenant as JSON, with "owner" when one was made (caller decrefs). Returns 0,
 * TD_EVALIDATION, TD_ECONFLICT (slug taken), TD_EUNAVAILABLE or TD_EINTERNAL; *detail
 * is set for the first two.
 */
int api_tenant_create(struct http_req *req, json_t *body, json_t **out,
                      const char **detail) TD_MUSTCHECK;

/* Fields of a tenant change; NULL leaves a field alone. */
struct api_tenant_patch {
    const char *name, *plan, *status; /* status: "active" or "suspended" */
    int set_expires;                  /* 1: set subscription_expires_at to expires */
    const char *expires;              /* timestamp text, or NULL to clear */
};

/*
 * Apply p to the catalog row of tenant id, then drop the tenant from this instance's
 * cache and notify the others. *out gets the updated tenant (1 ref, caller unrefs).
 * expires must be an RFC 3339 date-time; the other values are checked by the catalog's
 * constraints only. Returns 0, TD_ETENANT_NOTFOUND, TD_EVALIDATION (a bad timestamp or
 * a value the catalog refuses), TD_EUNAVAILABLE or TD_EINTERNAL. Thread-safe.
 */
int api_tenant_update(struct td_app *app, const char *id, const struct api_tenant_patch *p,
                      struct tnt_tenant **out) TD_MUSTCHECK;

/* Drop t's storage, role and catalog row (tnt_drop), then forget and notify as above.
 * Returns 0 or the code of tnt_drop. Thread-safe. */
int api_tenant_delete(struct td_app *app, const struct tnt_tenant *t) TD_MUSTCHECK;

/* Forget tenant id in this instance's cache and NOTIFY tenantd_tenants with the id, so
 * every instance LISTENing on the catalog forgets it too. Best effort. */
void api_tenant_notify(struct td_app *app, const char *id);

/* *out = {users, projects, api_calls_month} of t (new reference). Returns 0 or the
 * TD_E* code of the query in t's storage. Thread-safe. */
int api_tenant_usage(struct td_app *app, const struct tnt_tenant *t, json_t **out) TD_MUSTCHECK;

#endif
