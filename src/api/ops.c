/*
 * ops.c - GET /metrics, GET /openapi.json, GET /admin/analytics, and the metrics hook of
 * the access log.
 */
#include "api/handlers.h"
#include "api/internal.h"

#include "app/app.h"
#include "api/metrics.h"
#include "api/openapi.h"
#include "db/sqljson.h"
#include "resource/resource.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int api_metrics(struct http_req *req)
{
    size_t len;
    char *text = api_metrics_render(req->app, &len);
    int rc = http_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
    return rc;
}

/* The document depends on static tables and on the served tables' description: serialised
 * once per description version. */
static pthread_mutex_t openapi_mu = PTHREAD_MUTEX_INITIALIZER;
static char *openapi_text;
static long openapi_version = -2;

int api_openapi(struct http_req *req)
{
    struct res_desc *d = req->app->resources ? res_registry_get(req->app->resources) : NULL;
    long version = d ? d->version : -1;
    pthread_mutex_lock(&openapi_mu);
    if (!openapi_text || openapi_version != version) {
        json_t *doc = api_openapi_build();
        api_openapi_resources(doc, d);
        free(openapi_text);
        openapi_text = json_dumps(doc, JSON_COMPACT);
        openapi_version = version;
        json_decref(doc);
    }
    int rc = openapi_text ? http_reply_json_text(req, 200, openapi_text, strlen(openapi_text))
                          : TD_EINTERNAL;
    pthread_mutex_unlock(&openapi_mu);
    res_desc_unref(d);
    return rc;
}

/* Only materialized views of the catalog: tenant storage is read by the analytics_refresh
 * job, never here. */
static const char analytics_sql[] =
    "SELECT row_to_json(s) FROM (SELECT "
    "(SELECT " DB_SQL_TS(
        "refreshed_at") " FROM tenantd.analytics_meta) AS refreshed_at, "
                        "(SELECT count(*) FROM tenantd.analytics_tenants) AS tenants_total, "
                        "COALESCE((SELECT json_agg(g ORDER BY g.plan, g.status) FROM (SELECT plan, "
                        "status, count(*) "
                        "AS tenants FROM tenantd.analytics_tenants GROUP BY plan, status) g), "
                        "'[]') "
                        "AS by_plan_status, "
                        "COALESCE((SELECT json_agg(x ORDER BY x.api_calls_month DESC, x.slug) FROM "
                        "(SELECT id, slug, "
                        "plan, status, isolation, users, projects, api_calls_month, " DB_SQL_TS(
                            "collected_at") " AS collected_at FROM tenantd.analytics_tenants ORDER "
                                            "BY "
                                            "api_calls_month DESC, slug LIMIT $1::int) x), '[]') "
                                            "AS tenants, "
                                            "COALESCE((SELECT json_agg(m ORDER BY m.month DESC) "
                                            "FROM (SELECT "
                                            "to_char(month, 'YYYY-MM') AS month, tenants, "
                                            "api_calls FROM "
                                            "tenantd.analytics_usage) m), '[]') AS "
                                            "api_calls_by_month) s";

int api_admin_analytics(struct http_req *req)
{
    const char *ls = http_query(req, "limit");
    char *end = NULL;
    long limit = ls ? strtol(ls, &end, 10) : 100;
    if (ls && (!*ls || *end || limit < 1 || limit > 1000))
        return api_fail(req, TD_EBADREQ, "limit must be an integer from 1 to 1000");
    char lim[16];
    snprintf(lim, sizeof(lim), "%ld", limit);
    PGconn *pg = NULL;
    PGresult *r = NULL;
    int on_replica = 0;
    /* the replica when it has replayed the last refresh this process made */
    int rc = strcmp(req->app->cfg->read_replicas, "off")
                 ? db_read_connect(req->app->db, 0, "analytics", &pg, &on_replica)
                 : db_admin_connect(req->app->db, 0, NULL, &pg);
    if (rc == 0)
        rc = db_admin_exec(pg, "reading analytics", analytics_sql, 1, (const char *const[]){lim},
                           &r);
    if (rc < 0 && on_replica) {
        PQfinish(pg);
        pg = NULL;
        rc = db_admin_connect(req->app->db, 0, NULL, &pg);
        if (rc == 0)
            rc = db_admin_exec(pg, "reading analytics", analytics_sql, 1,
                               (const char *const[]){lim}, &r);
    }
    if (rc == 0)
        rc = http_reply_json_text(req, 200, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
    PQclear(r);
    PQfinish(pg);
    return rc;
}

void api_metrics_observe(struct http_req *req)
{
    api_metrics_request(req->app->metrics, req);
}
