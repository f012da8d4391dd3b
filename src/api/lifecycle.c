/*
 * lifecycle.c - tenant changes an operator makes, through the admin API or the CLI: one
 * implementation, so both tell the other instances (NOTIFY) the same way.
 */
#include "api/lifecycle.h"
#include "api/metrics.h"

#include "api/plans.h"
#include "api/validate.h"
#include "core/log.h"
#include "core/mem.h"
#include "resource/resource.h"
#include "tenant/provision.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* auth.c: {email,password,name} of an owner, checked as on signup. */
int api_owner_fields(struct http_req *req, json_t *obj, struct tnt_owner *owner,
                     const char **detail);

static const char *const create_fields[] = {"slug",   "name",  "plan", "isolation",
                                            "server", "owner", NULL};
static const char *const plan_names[] = {"free", "starter", "pro", "enterprise", NULL};
static const char *const iso_names[] = {"pool", "schema", "database", NULL};

int api_tenant_create(struct http_req *req, json_t *body, json_t **out, const char **detail)
{
    const char *slug, *name, *plan, *iso, *server;
    char *owner_json = NULL;
    struct tnt_owner owner;
    struct tnt_tenant *t = NULL;
    int rc;
    *out = NULL;
    if ((rc = api_no_unknown(req, body, create_fields, detail)) < 0 ||
        (rc = api_field_str(req, body, "slug", 1, 40, &slug, detail)) < 0 ||
        (rc = api_field_str(req, body, "name", 1, 200, &name, detail)) < 0 ||
        (rc = api_field_enum(req, body, "plan", 0, plan_names, &plan, detail)) < 0 ||
        (rc = api_field_enum(req, body, "isolation", 0, iso_names, &iso, detail)) < 0 ||
        (rc = api_field_str(req, body, "server", 0, 64, &server, detail)) < 0)
        return rc;
    if (!api_check_slug(slug)) {
        *detail = "slug must match ^[a-z][a-z0-9-]{1,38}[a-z0-9]$";
        return TD_EVALIDATION;
    }
    json_t *o = json_object_get(body, "owner");
    if (o && json_is_null(o))
        o = NULL;
    if (o && (rc = api_owner_fields(req, o, &owner, detail)) < 0)
        return rc;
    if (server && db_server_find(req->app->db, server) < 0) {
        *detail = "server is not a configured database server";
        return TD_EVALIDATION;
    }
    if (!iso)
        iso = req->app->cfg->default_isolation;
    struct tnt_new n = {slug,
                        name,
                        plan ? plan : "free",
                        iso ? tnt_isolation_parse(iso) : -1,
                        server,
                        o ? &owner : NULL};
    long long t0 = api_metrics_now_us();
    rc = tnt_provision(req->app->db, &req->app->tenant_migs, &n, &t, &owner_json);
    api_metrics_provision(rc, t0);
    if (rc == TD_ECONFLICT)
        *detail = "this slug is taken";
    if (rc < 0)
        return rc;
    *out = tnt_tenant_json(t);
    if (owner_json)
        json_object_set_new(*out, "owner", json_loads(owner_json, 0, NULL));
    tnt_tenant_unref(t);
    free(owner_json);
    return 0;
}

void api_tenant_notify(struct td_app *app, const char *id)
{
    PGconn *pg = NULL;
    /* the local cache first: this instance must not serve the old row even when the
     * catalog is unreachable for the NOTIFY */
    tnt_cache_invalidate(app->cache, id);
    if (db_admin_connect(app->db, 0, NULL, &pg) < 0 ||
        db_admin_exec(pg, "notifying other instances", "SELECT pg_notify('tenantd_tenants', $1)", 1,
                      (const char *const[]){id}, NULL) < 0)
        td_log_warn("other instances may serve tenant %s from their cache until it expires", id);
    PQfinish(pg);
}

/* Two digits at s within [lo, hi]; -1 otherwise. */
static int two_digits(const char *s, int lo, int hi)
{
    if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]))
        return -1;
    int v = (s[0] - '0') * 10 + (s[1] - '0');
    return v >= lo && v <= hi ? v : -1;
}

/* "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)": RFC 3339's date-time. PostgreSQL alone
 * would also take "tomorrow" or "epoch", and log every typo as a server error. */
static int rfc3339_ok(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    if (s[4] != '-' || two_digits(s + 5, 1, 12) < 0 || s[7] != '-' ||
        two_digits(s + 8, 1, 31) < 0 || (s[10] != 'T' && s[10] != 't') ||
        two_digits(s + 11, 0, 23) < 0 || s[13] != ':' || two_digits(s + 14, 0, 59) < 0 ||
        s[16] != ':' || two_digits(s + 17, 0, 60) < 0)
        return 0;
    s += 19;
    if (*s == '.') {
        if (!isdigit((unsigned char)*++s))
            return 0;
        while (isdigit((unsigned char)*s))
            s++;
    }
    if ((*s == 'Z' || *s == 'z') && s[1] == '\0')
        return 1;
    return (*s == '+' || *s == '-') && two_digits(s + 1, 0, 23) >= 0 && s[3] == ':' &&
           two_digits(s + 4, 0, 59) >= 0 && s[6] == '\0';
}

int api_tenant_update(struct td_app *app, const char *id, const struct api_tenant_patch *p,
                      struct tnt_tenant **out)
{
    PGconn *pg = NULL;
    PGresult *r = NULL;
    *out = NULL;
    if (p->set_expires && p->expires && !rfc3339_ok(p->expires))
        return TD_EVALIDATION;
    int rc = db_admin_connect(app->db, 0, NULL, &pg);
    if (rc < 0)
        goto out;
    char *sql = td_xasprintf(
        "UPDATE tenantd.tenants SET name = COALESCE($2, name), plan = COALESCE($3, plan), "
        "status = COALESCE($4, status), subscription_expires_at = CASE WHEN $5::bool THEN "
        "$6::timestamptz ELSE subscription_expires_at END, updated_at = now() WHERE id = $1 "
        "RETURNING %s",
        tnt_catalog_columns);
    const char *params[6] = {id,
                             p->name,
                             p->plan,
                             p->status,
                             p->set_expires ? "true" : "false",
                             p->set_expires ? p->expires : NULL};
    rc = db_admin_exec(pg, "updating a tenant", sql, 6, params, &r);
    free(sql);
    /* a value the catalog cannot take (timestamp syntax, out of range) is the caller's */
    if (rc == TD_EINTERNAL && p->set_expires && p->expires && PQstatus(pg) == CONNECTION_OK)
        rc = TD_EVALIDATION;
    if (rc < 0)
        goto out;
    if (PQntuples(r) == 0) {
        rc = TD_ETENANT_NOTFOUND;
        goto out;
    }
    *out = tnt_tenant_from_row(app->db, r, 0);
    PQfinish(pg);
    pg = NULL;
    api_tenant_notify(app, (*out)->id);
out:
    PQclear(r);
    PQfinish(pg);
    return rc;
}

int api_tenant_delete(struct td_app *app, const struct tnt_tenant *t)
{
    int rc = tnt_drop(app->db, t);
    if (rc == 0)
        api_tenant_notify(app, t->id);
    return rc;
}

static const char usage_sql[] = "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM "
                                "projects)";

/* One row: the row count of every described tenant table, in description order. */
static char *rows_sql(const struct res_desc *d)
{
    size_t cap = 32, len = 0;
    for (int i = 0; i < d->ntables; i++)
        cap += strlen(d->tables[i].qname) + 40;
    char *sql = td_xmalloc(cap);
    len += (size_t)snprintf(sql, cap, "SELECT ");
    for (int i = 0; i < d->ntables; i++)
        len += (size_t)snprintf(sql + len, cap - len, "%s(SELECT count(*) FROM %s)", i ? ", " : "",
                                d->tables[i].qname);
    return sql;
}

int api_tenant_usage(struct td_app *app, const struct tnt_tenant *t, json_t **out)
{
    struct db_target tg;
    struct res_desc *d = app->resources ? res_registry_get(app->resources) : NULL;
    char *rsql = d && d->ntables ? rows_sql(d) : NULL;
    struct db_stmt st[2] = {{usage_sql, 0, NULL, 0}, {rsql, 0, NULL, 0}};
    PGresult *r[2] = {NULL, NULL};
    *out = NULL;
    tnt_tenant_target(t, &tg);
    int rc = db_exec(app->db, &tg, st, rsql ? 2 : 1, r);
    if (rc == 0)
        *out = json_pack("{s:I, s:I, s:I}", "users", (json_int_t)atoll(PQgetvalue(r[0], 0, 0)),
                         "projects", (json_int_t)atoll(PQgetvalue(r[0], 0, 1)), "api_calls_month",
                         (json_int_t)api_usage_month(app->usage, t->id));
    if (rc == 0 && rsql) {
        json_t *rows = json_object();
        for (int i = 0; i < d->ntables; i++)
            json_object_set_new(rows, d->tables[i].name,
                                json_integer((json_int_t)atoll(PQgetvalue(r[1], 0, i))));
        json_object_set_new(*out, "rows", rows);
    }
    PQclear(r[0]);
    PQclear(r[1]);
    free(rsql);
    res_desc_unref(d);
    return rc;
}
