/*
 * lifecycle.c - tenant changes an operator makes, through the admin API or the CLI: one
 * implementation, so both tell the other instances (NOTIFY) the same way.
 */
#include "app/lifecycle.h"
#include "api/metrics.h"
#include "tenant/check.h"
#include "tenant/plans.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "resource/resource.h"
#include "tenant/provision.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The plain checks of a new tenant; *detail says what is wrong. */
static int check_spec(struct td_app *app, const struct app_tenant_spec *s, const char **detail)
{
    const struct tnt_owner *o = s->owner;
    if (!s->slug || !tnt_slug_ok(s->slug))
        *detail = "slug must match ^[a-z][a-z0-9-]{1,38}[a-z0-9]$";
    else if (!tnt_text_ok(s->name, 200))
        *detail = "name must not be empty and have at most 200 characters";
    else if (s->plan && !tnt_one_of(s->plan, tnt_plan_names))
        *detail = "plan has an unknown value";
    else if (s->isolation && !tnt_one_of(s->isolation, tnt_isolation_names))
        *detail = "isolation has an unknown value";
    else if (s->server && db_server_find(app->db, s->server) < 0)
        *detail = "server is not a configured database server";
    else if (o && (!o->email || !tnt_email_ok(o->email)))
        *detail = "email is not a valid address";
    else if (o && (!o->password || !tnt_password_ok(o->password)))
        *detail = "password must have 8 to 128 characters";
    else if (o && !tnt_text_ok(o->name, 200))
        *detail = "name of the owner must not be empty and have at most 200 characters";
    else
        return 0;
    return TD_EVALIDATION;
}

int app_tenant_create(struct td_app *app, const struct app_tenant_spec *s, json_t **out,
                      const char **detail)
{
    char *owner_json = NULL;
    struct tnt_tenant *t = NULL;
    *out = NULL;
    int rc = check_spec(app, s, detail);
    if (rc < 0)
        return rc;
    const char *iso = s->isolation ? s->isolation : app->cfg->default_isolation;
    struct tnt_new n = {s->slug,
                        s->name,
                        s->plan ? s->plan : "free",
                        iso ? tnt_isolation_parse(iso) : -1,
                        s->server,
                        s->owner,
                        NULL};
    long long t0 = td_now_us();
    rc = tnt_provision(app->db, &app->tenant_migs, &n, &t, &owner_json);
    api_metrics_provision(app->metrics, rc, t0);
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

void app_tenant_notify(struct td_app *app, const char *id)
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

const char *app_tenant_patch_check(const struct app_tenant_patch *p)
{
    if (p->name && !tnt_text_ok(p->name, 200))
        return "name must not be empty and have at most 200 characters";
    if (p->plan && !tnt_one_of(p->plan, tnt_plan_names))
        return "plan has an unknown value";
    if (p->status && !tnt_one_of(p->status, tnt_status_names))
        return "status has an unknown value";
    return NULL;
}

int app_tenant_update(struct td_app *app, const char *id, const struct app_tenant_patch *p,
                      struct tnt_tenant **out)
{
    PGconn *pg = NULL;
    PGresult *r = NULL;
    *out = NULL;
    if (app_tenant_patch_check(p) || (p->set_expires && p->expires && !rfc3339_ok(p->expires)))
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
    app_tenant_notify(app, (*out)->id);
out:
    PQclear(r);
    PQfinish(pg);
    return rc;
}

int app_tenant_delete(struct td_app *app, const struct tnt_tenant *t)
{
    int rc = tnt_drop(app->db, t);
    if (rc == 0)
        app_tenant_notify(app, t->id);
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

int app_tenant_usage(struct td_app *app, const struct tnt_tenant *t, json_t **out)
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
                         (json_int_t)tnt_usage_month(app->usage, t));
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

int app_tenant_hibernate(struct td_app *app, const struct tnt_tenant *t, int hibernate,
                         const char **detail)
{
    if (t->isolation != TNT_ISO_DATABASE) {
        *detail = "only a database tenant can hibernate: this tenant has no database of its own";
        return TD_ECONFLICT;
    }
    int rc = hibernate ? db_hibernate(app->db, t->server_idx, t->dbname)
                       : db_wake(app->db, t->server_idx, t->dbname);
    if (rc == TD_EUNAVAILABLE)
        *detail = "the tenant's database server is unreachable";
    return rc < 0 ? rc : 0;
}

int app_tenant_hibernated(struct td_app *app, const struct tnt_tenant *t)
{
    if (t->isolation != TNT_ISO_DATABASE)
        return 0;
    return db_hibernated(app->db, t->server_idx, t->dbname);
}

int app_tenant_show(struct td_app *app, const struct tnt_tenant *t, json_t **out)
{
    json_t *usage = NULL;
    *out = NULL;
    int asleep = app_tenant_hibernated(app, t);
    if (asleep < 0)
        return asleep;
    int rc = asleep ? 0 : app_tenant_usage(app, t, &usage);
    if (rc < 0)
        return rc;
    *out = tnt_tenant_json(t);
    json_object_set_new(*out, "hibernated", json_boolean(asleep));
    json_object_set_new(*out, "usage", usage ? usage : json_null());
    return 0;
}
