/*
 * health.c - GET /health (the process is alive) and GET /ready (the catalog answers and
 * migrations are applied).
 */
#include "api/handlers.h"

#include "app/app.h"
#include "backup/backup.h"

#include <string.h>
#include <time.h>

int api_health(struct http_req *req)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    return http_reply_json_text(req, 200, ok, strlen(ok));
}

/* Unix seconds as the one timestamp style of SPEC §3, or null for 0 (never). */
static json_t *stamp(long long s)
{
    char buf[40];
    time_t t = (time_t)s;
    struct tm tm;
    if (s <= 0 || !gmtime_r(&t, &tm))
        return json_null();
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S.000000Z", &tm);
    return json_string(buf);
}

/* What a server's backups look like: archiving, the last archived WAL segment and the
 * last base backup (null: never). */
static json_t *backup_json(struct td_app *app, int server)
{
    struct bkp_status st;
    bkp_get_status(app->backup, server, &st);
    return json_pack("{s:b, s:o, s:I, s:o, s:o, s:I}", "archiving", st.archiving,
                     "last_archived_wal_at", stamp(st.last_archived), "archive_failures",
                     st.archive_failed, "last_backup_at", stamp(st.last_backup), "oldest_backup_at",
                     stamp(st.oldest_backup), "backups", st.backups);
}

/* Every server's backups, by server name. */
static json_t *servers_json(struct td_app *app)
{
    json_t *o = json_object();
    for (int i = 0; i < db_server_count(app->db); i++)
        json_object_set_new(o, db_server_name(app->db, i), backup_json(app, i));
    return o;
}

int api_ready(struct http_req *req)
{
    if (!atomic_load(&req->app->ready))
        return TD_EUNAVAILABLE;
    struct db_target tg = {.server = 0};
    struct db_stmt st = {"SELECT 1", 0, NULL, 0};
    PGresult *r = NULL;
    int rc = db_exec(req->app->db, &tg, &st, 1, &r);
    PQclear(r);
    if (rc < 0)
        return TD_EUNAVAILABLE;
    return http_reply_json(req, 200,
                           json_pack("{s:s, s:o, s:o}", "status", "ready", "backup",
                                     backup_json(req->app, 0), "servers", servers_json(req->app)));
}
