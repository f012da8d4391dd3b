/*
 * restore.c - the operator's restore and clone routes and GET /admin/jobs/{id} (SPEC §6).
 * The checks that refuse a request and the queueing are app_restore_enqueue() (src/app/
 * restore.c, shared with the CLI); the work is a job of src/backup (restore.c there).
 */
#include "api/handlers.h"

#include "app/app.h"
#include "app/restore.h"
#include "api/internal.h"
#include "api/validate.h"
#include "auth/jwt.h"
#include "backup/backup.h"
#include "http/problem.h"
#include "jobs/jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reply_job(struct http_req *req, PGconn *pg, const char *id, int status)
{
    json_t *j = NULL;
    int rc = app_job_json(pg, id, &j);
    if (rc == 0) {
        /* progress as 0.8, not the 17 digits of the nearest double */
        char *text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(4));
        rc = http_reply_json_text(req, status, text, strlen(text));
        free(text);
    }
    json_decref(j);
    return rc;
}

int api_admin_jobs_get(struct http_req *req)
{
    PGconn *pg = NULL;
    if (!auth_is_uuid(req->params[0]))
        return TD_ENOTFOUND;
    int rc = db_admin_connect(req->app->db, 0, NULL, &pg);
    if (rc == 0)
        rc = reply_job(req, pg, req->params[0], 200);
    PQfinish(pg);
    return rc;
}

static const char *const restore_fields[] = {"at", "slug", NULL};
static const char *const clone_fields[] = {"slug", NULL};

static int restore_or_clone(struct http_req *req, int clone)
{
    struct app_restore q = {.clone = clone, .key = req->params[0]};
    json_t *body = NULL;
    PGconn *pg = NULL;
    const char *detail = NULL;
    char job_id[40], why[APP_RESTORE_DETAIL] = "", actor[128];
    int rc = 0;
    if (!auth_is_uuid(q.key) && !api_check_slug(q.key))
        return TD_ETENANT_NOTFOUND;
    if (!bkp_can_restore(req->app->backup))
        return api_fail(req, TD_EUNAVAILABLE,
                        "restore and clone need the embedded cluster with backups on");
    if ((rc = http_body_object(req, &body)) < 0)
        goto out;
    if ((rc = api_no_unknown(req, body, clone ? clone_fields : restore_fields, &detail)) < 0 ||
        (!clone && (rc = api_field_str(req, body, "at", 1, 64, &q.at, &detail)) < 0) ||
        (rc = api_field_str(req, body, "slug", clone, 40, &q.new_slug, &detail)) < 0)
        goto out;
    snprintf(actor, sizeof(actor), "operator token from %s", req->client_ip);
    q.actor = actor;
    q.confirm = http_query(req, "confirm");
    q.backup = req->app->backup;
    if ((rc = db_admin_connect(req->app->db, 0, NULL, &pg)) < 0)
        goto out;
    rc = app_restore_enqueue(req->app, pg, &q, job_id, why);
    if (rc == TD_EBADREQ)
        detail = "replacing a tenant's data needs ?confirm= with its slug (or give a new slug)";
    else if (rc < 0 && why[0])
        detail = td_arena_printf(req->arena, "%s", why);
    if (rc == 0)
        rc = reply_job(req, pg, job_id, 202);
out:
    PQfinish(pg);
    json_decref(body);
    if (rc < 0)
        return api_fail(req, rc, detail);
    return rc;
}

int api_admin_tenants_restore(struct http_req *req)
{
    return restore_or_clone(req, 0);
}

int api_admin_tenants_clone(struct http_req *req)
{
    return restore_or_clone(req, 1);
}
