/*
 * health.c - GET /health (the process is alive) and GET /ready (the catalog answers and
 * migrations are applied).
 */
#include "api/handlers.h"

#include "api/app.h"

#include <string.h>

int api_health(struct http_req *req)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    return http_reply_json_text(req, 200, ok, strlen(ok));
}

int api_ready(struct http_req *req)
{
    static const char ok[] = "{\"status\":\"ready\"}";
    if (!atomic_load(&req->app->ready))
        return TD_EUNAVAILABLE;
    struct db_target tg = {.server = 0};
    struct db_stmt st = {"SELECT 1", 0, NULL, 0};
    PGresult *r = NULL;
    int rc = db_exec(req->app->db, &tg, &st, 1, &r);
    PQclear(r);
    if (rc < 0)
        return TD_EUNAVAILABLE;
    return http_reply_json_text(req, 200, ok, strlen(ok));
}
