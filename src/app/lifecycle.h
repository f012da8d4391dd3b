/*
 * lifecycle.h - the operator's tenant changes shared by the admin API (api/admin.c) and
 * the CLI (cli/tenants.c): creation, catalog updates, deletion, usage figures, and telling
 * every instance sharing the catalog to forget a tenant (NOTIFY tenantd_tenants). Each
 * takes plain values and checks them itself, so both callers get the same answers.
 */
#ifndef TD_APP_LIFECYCLE_H
#define TD_APP_LIFECYCLE_H

#include "app/app.h"
#include "tenant/provision.h"

#include <jansson.h>

/* A new tenant as an operator asks for it; NULL members take their defaults (plan
 * "free", isolation TENANTD_DEFAULT_ISOLATION or the plan's, server by placement, no
 * owner). Strings are borrowed. */
struct app_tenant_spec {
    const char *slug, *name, *plan, *isolation, *server;
    const struct tnt_owner *owner;
};

/*
 * Check s (slug, name, plan, isolation, server, owner's email, password and name, as
 * SPEC §3 and §5 say) and provision the tenant (tnt_provision). *out gets the tenant as
 * JSON, with "owner" when one was made (caller decrefs). Returns 0, TD_EVALIDATION,
 * TD_ECONFLICT (slug taken), TD_EUNAVAILABLE or TD_EINTERNAL; *detail (static text) is set
 * for the first two. Thread-safe.
 */
int app_tenant_create(struct td_app *app, const struct app_tenant_spec *s, json_t **out,
                      const char **detail) TD_MUSTCHECK;

/* Fields of a tenant change; NULL leaves a field alone. */
struct app_tenant_patch {
    const char *name, *plan, *status; /* status: "active" or "suspended" */
    int set_expires;                  /* 1: set subscription_expires_at to expires */
    const char *expires;              /* timestamp text, or NULL to clear */
};

/* What is wrong with p's name, plan or status (static text), or NULL when nothing is.
 * The timestamp is checked by app_tenant_update. Pure. */
const char *app_tenant_patch_check(const struct app_tenant_patch *p);

/*
 * Apply p to the catalog row of tenant id, then drop the tenant from this instance's
 * cache and notify the others. *out gets the updated tenant (1 ref, caller unrefs).
 * The values must pass app_tenant_patch_check() and expires must be an RFC 3339
 * date-time. Returns 0, TD_ETENANT_NOTFOUND, TD_EVALIDATION (a bad timestamp or
 * a value the catalog refuses), TD_EUNAVAILABLE or TD_EINTERNAL. Thread-safe.
 */
int app_tenant_update(struct td_app *app, const char *id, const struct app_tenant_patch *p,
                      struct tnt_tenant **out) TD_MUSTCHECK;

/* Drop t's storage, role and catalog row (tnt_drop), then forget and notify as above.
 * Returns 0 or the code of tnt_drop. Thread-safe. */
int app_tenant_delete(struct td_app *app, const struct tnt_tenant *t) TD_MUSTCHECK;

/* Forget tenant id in this instance's cache and NOTIFY tenantd_tenants with the id, so
 * every instance LISTENing on the catalog forgets it too. Best effort. */
void app_tenant_notify(struct td_app *app, const char *id);

/* *out = {users, projects, api_calls_month} of t (new reference). Returns 0 or the
 * TD_E* code of the query in t's storage. Thread-safe. */
int app_tenant_usage(struct td_app *app, const struct tnt_tenant *t, json_t **out) TD_MUSTCHECK;

/* Hibernate (hibernate 1) or wake (0) database tenant t by hand (db_hibernate, db_wake).
 * Returns 0, TD_ECONFLICT (t is not a database tenant: only a database can sleep; *detail
 * says so), TD_EUNAVAILABLE (its server is unreachable or not configured here) or
 * TD_EINTERNAL. Thread-safe. */
int app_tenant_hibernate(struct td_app *app, const struct tnt_tenant *t, int hibernate,
                         const char **detail) TD_MUSTCHECK;

/* 1 when t's database is hibernated, 0 when it is awake or t is not a database tenant, or
 * a TD_E* code. Reads the server's catalog as the superuser: it never wakes t. */
int app_tenant_hibernated(struct td_app *app, const struct tnt_tenant *t) TD_MUSTCHECK;

/* t as JSON (tnt_tenant_json) with "hibernated" and, when t is awake, "usage"
 * (app_tenant_usage; a hibernated tenant's usage is null, reading it would wake it).
 * *out: new reference. Returns 0 or a TD_E* code. Thread-safe. */
int app_tenant_show(struct td_app *app, const struct tnt_tenant *t, json_t **out) TD_MUSTCHECK;

#endif
