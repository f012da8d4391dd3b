/*
 * restore.c - the operator's restore and clone routes and GET /admin/jobs/{id} (SPEC §6).
 * The checks that refuse a request run here, before anything changes; the work is a job
 * of src/backup (restore.c there).
 */
#include "api/handlers.h"

#include "app/app.h"
#include "api/internal.h"
#include "api/validate.h"
#include "auth/jwt.h"
#include "backup/backup.h"
#include "http/problem.h"
#include "jobs/jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS(x) "to_char(" x " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* The tenant named by {id}, live or deleted (the newest deletion of a slug), and the reason
 * a restore to $2 must be refused (NULL: none), the plan's window in days included. $3: when
 * the oldest base backup ended, in whole seconds: pgBackRest picks a backup that ended
 * before the moment by that measure, so the moment must lie a second later. */
static const char find_sql[] =
    "WITH t AS (SELECT id, slug, plan, isolation, server, created_at, NULL::timestamptz AS "
    "deleted_at FROM tenantd.tenants WHERE id::text = $1 OR slug = $1 UNION ALL (SELECT id, "
    "slug, plan, isolation, server, created_at, deleted_at FROM tenantd.deleted_tenants WHERE "
    "(id::text = $1 OR slug = $1) AND NOT EXISTS (SELECT 1 FROM tenantd.tenants WHERE id::text "
    "= $1 OR slug = $1) ORDER BY deleted_at DESC LIMIT 1)), w AS (SELECT t.*, CASE t.plan WHEN "
    "'free' THEN 1 WHEN 'starter' THEN 7 WHEN 'pro' THEN 14 ELSE 30 END AS days, "
    "$2::timestamptz AS at FROM t) "
    "SELECT id, slug, isolation, server, deleted_at IS NULL, CASE "
    "WHEN at > now() THEN 'at is in the future' "
    "WHEN at < created_at THEN 'at is before the tenant existed (created ' || " TS(
        "created_at") " || ')' "
                      "WHEN at < now() - days * interval '1 day' THEN 'at is outside the ' || plan "
                      "|| ' plan''s "
                      "restore window of ' || days || ' day' || CASE WHEN days > 1 THEN 's' ELSE "
                      "'' END "
                      "WHEN deleted_at IS NOT NULL AND at >= deleted_at THEN 'at is after the "
                      "tenant was deleted "
                      "(' || " TS(
                          "deleted_at") " || ')' "
                                        "WHEN at < to_timestamp($3::bigint + 1) THEN 'no base "
                                        "backup reaches back to at (the oldest "
                                        "ends ' || " TS(
                                            "to_timestamp($3::bigint)") " || ')' END, to_char(at "
                                                                        "AT TIME ZONE 'UTC', "
                                                                        "'YYYY-MM-DD "
                                                                        "HH24:MI:SS.US') || '+00' "
                                                                        "FROM w";

/* RFC 3339 with a zone: 2026-01-02T03:04:05[.ffffff](Z|+hh:mm|-hh:mm). */
static int is_rfc3339(const char *s)
{
    static const char pat[] = "dddd-dd-ddTdd:dd:dd";
    size_t i = 0;
    for (; pat[i]; i++)
        if (pat[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != pat[i])
            return 0;
    if (s[i] == '.') {
        size_t k = ++i;
        while (s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == k)
            return 0;
    }
    if ((s[i] == 'Z' || s[i] == 'z') && !s[i + 1])
        return 1;
    return (s[i] == '+' || s[i] == '-') && s[i + 1] >= '0' && s[i + 1] <= '9' && s[i + 2] >= '0' &&
           s[i + 2] <= '9' && s[i + 3] == ':' && s[i + 4] >= '0' && s[i + 4] <= '9' &&
           s[i + 5] >= '0' && s[i + 5] <= '9' && !s[i + 6];
}

/* 1 when a live tenant has this slug. */
static int slug_taken(PGconn *pg, const char *slug, int *taken)
{
    PGresult *r = NULL;
    int rc = db_admin_exec(pg, "checking a slug", "SELECT 1 FROM tenantd.tenants WHERE slug = $1",
                           1, (const char *const[]){slug}, &r);
    *taken = rc == 0 && PQntuples(r) > 0;
    PQclear(r);
    return rc;
}

static const char job_sql[] =
    "SELECT id, CASE WHEN kind LIKE 'tenant\\_%' THEN substr(kind, 8) ELSE kind END, CASE status "
    "WHEN 'done' THEN 'succeeded' WHEN 'dead' THEN 'failed' WHEN 'skipped' THEN 'failed' ELSE "
    "status END, progress, error::text, result::text, last_error, " TS("created_at") ", " TS(
        "finished_at") " FROM tenantd.jobs WHERE id::text = $1";

static json_t *job_json(PGresult *r)
{
    json_t *err = json_null(), *res = json_null();
    int failed = strcmp(PQgetvalue(r, 0, 2), "failed") == 0;
    if (!PQgetisnull(r, 0, 4)) {
        json_t *e = json_loads(PQgetvalue(r, 0, 4), 0, NULL);
        err = http_problem_json((int)json_integer_value(json_object_get(e, "err")),
                                json_string_value(json_object_get(e, "detail")));
        json_decref(e);
    } else if (failed) {
        err = http_problem_json(TD_EINTERNAL,
                                PQgetisnull(r, 0, 6) ? "the job failed" : PQgetvalue(r, 0, 6));
    }
    if (!PQgetisnull(r, 0, 5) && !failed)
        res = json_loads(PQgetvalue(r, 0, 5), 0, NULL);
    return json_pack("{s:s, s:s, s:s, s:f, s:o, s:o, s:s, s:s?}", "id", PQgetvalue(r, 0, 0), "kind",
                     PQgetvalue(r, 0, 1), "status", PQgetvalue(r, 0, 2), "progress",
                     atof(PQgetvalue(r, 0, 3)), "error", err, "result", res ? res : json_null(),
                     "created_at", PQgetvalue(r, 0, 7), "finished_at",
                     PQgetisnull(r, 0, 8) ? NULL : PQgetvalue(r, 0, 8));
}

static int reply_job(struct http_req *req, PGconn *pg, const char *id, int status)
{
    PGresult *r = NULL;
    int rc = db_admin_exec(pg, "reading a job", job_sql, 1, (const char *const[]){id}, &r);
    if (rc == 0 && PQntuples(r) != 1)
        rc = TD_ENOTFOUND;
    if (rc == 0) {
        /* progress as 0.8, not the 17 digits of the nearest double */
        json_t *j = job_json(r);
        char *text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(4));
        rc = http_reply_json_text(req, status, text, strlen(text));
        free(text);
        json_decref(j);
    }
    PQclear(r);
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

struct restore_req {
    const char *at, *new_slug, *action;
    char tenant_id[40], slug[48], dbname[40], at_norm[40];
    int live;
};

/* Queue the job and its line in the record of operator actions, in one transaction. */
static int enqueue(struct http_req *req, PGconn *pg, const struct restore_req *q, char *job_id)
{
    json_t *p = json_pack("{s:s, s:s, s:s?, s:s?, s:s?}", "tenant_id", q->tenant_id, "slug",
                          q->slug, "new_slug", q->new_slug, "at", q->at ? q->at_norm : NULL,
                          "dbname", q->dbname[0] ? q->dbname : NULL);
    char *payload = json_dumps(p, JSON_COMPACT);
    char actor[128];
    snprintf(actor, sizeof(actor), "operator token from %s", req->client_ip);
    int rc = db_admin_exec(pg, "starting a transaction", "BEGIN", 0, NULL, NULL);
    if (rc == 0)
        rc = jobs_enqueue(pg, NULL, strcmp(q->action, "clone") ? "tenant_restore" : "tenant_clone",
                          payload, 0, 1, job_id);
    if (rc == 0)
        rc = db_admin_exec(pg, "recording the operator action",
                           "INSERT INTO tenantd.operator_actions (action, actor, tenant_id, "
                           "tenant_slug, target_at, new_slug, job_id) VALUES ($1, $2, $3, $4, "
                           "$5::timestamptz, $6, $7)",
                           7,
                           (const char *const[]){q->action, actor, q->tenant_id, q->slug,
                                                 q->at ? q->at_norm : NULL, q->new_slug, job_id},
                           NULL);
    rc = db_admin_exec(pg, "ending a transaction", rc == 0 ? "COMMIT" : "ROLLBACK", 0, NULL, NULL) <
                     0 &&
                 rc == 0
             ? TD_EUNAVAILABLE
             : rc;
    free(payload);
    json_decref(p);
    return rc;
}

/* Find the tenant and check the moment; fills q. */
static int check_tenant(struct http_req *req, PGconn *pg, struct restore_req *q,
                        const char **detail)
{
    struct bkp_status st;
    char oldest[24];
    PGresult *r = NULL;
    bkp_get_status(req->app->backup, 0, &st);
    snprintf(oldest, sizeof(oldest), "%lld", st.oldest_backup);
    const char *p[3] = {req->params[0], q->at ? q->at : "-infinity", oldest};
    int rc = db_admin_exec(pg, "finding the tenant", find_sql, 3, p, &r);
    if (rc == 0 && PQntuples(r) == 0)
        rc = TD_ETENANT_NOTFOUND;
    if (rc == 0)
        q->live = PQgetvalue(r, 0, 4)[0] == 't';
    if (rc == 0 && !q->at && !q->live)
        rc = TD_ETENANT_NOTFOUND; /* a clone is of a live tenant */
    if (rc == 0 && q->at && !PQgetisnull(r, 0, 5)) {
        *detail = td_arena_printf(req->arena, "%s", PQgetvalue(r, 0, 5));
        rc = TD_EVALIDATION;
    }
    const char *main_server = db_server_name(req->app->db, 0);
    if (rc == 0 && strcmp(PQgetvalue(r, 0, 3), main_server) != 0) {
        /* only the embedded cluster's backups are tenantd's (docs/operations.md) */
        *detail = td_arena_printf(req->arena,
                                  "restore and clone cover the tenants of server %s, whose "
                                  "backups tenantd takes; this tenant is on server %s",
                                  main_server, PQgetvalue(r, 0, 3));
        rc = TD_EUNAVAILABLE;
    }
    if (rc == 0) {
        snprintf(q->tenant_id, sizeof(q->tenant_id), "%s", PQgetvalue(r, 0, 0));
        snprintf(q->slug, sizeof(q->slug), "%s", PQgetvalue(r, 0, 1));
        if (strcmp(PQgetvalue(r, 0, 2), "database") == 0)
            snprintf(q->dbname, sizeof(q->dbname), "td_%.8s%.4s%.4s%.4s%.12s", q->tenant_id,
                     q->tenant_id + 9, q->tenant_id + 14, q->tenant_id + 19, q->tenant_id + 24);
        snprintf(q->at_norm, sizeof(q->at_norm), "%s", PQgetvalue(r, 0, 6));
    }
    PQclear(r);
    return rc;
}

static const char *const restore_fields[] = {"at", "slug", NULL};
static const char *const clone_fields[] = {"slug", NULL};

static int restore_or_clone(struct http_req *req, int clone)
{
    struct restore_req q = {.action = clone ? "clone" : "restore"};
    json_t *body = NULL;
    PGconn *pg = NULL;
    const char *detail = NULL;
    char job_id[40];
    int rc = 0, taken = 0;
    const char *key = req->params[0];
    if (!auth_is_uuid(key) && !api_check_slug(key))
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
    if (q.at && !is_rfc3339(q.at)) {
        rc = TD_EVALIDATION;
        detail = "at must be an RFC 3339 timestamp with a zone, e.g. 2026-01-02T03:04:05Z";
        goto out;
    }
    if (q.new_slug && !api_check_slug(q.new_slug)) {
        rc = TD_EVALIDATION;
        detail = "slug must match ^[a-z][a-z0-9-]{1,38}[a-z0-9]$";
        goto out;
    }
    if ((rc = db_admin_connect(req->app->db, 0, NULL, &pg)) < 0 ||
        (rc = check_tenant(req, pg, &q, &detail)) < 0)
        goto out;
    const char *confirm = http_query(req, "confirm");
    if (!clone && !q.new_slug && (!confirm || strcmp(confirm, q.slug) != 0)) {
        rc = TD_EBADREQ;
        detail = "replacing a tenant's data needs ?confirm= with its slug (or give a new slug)";
        goto out;
    }
    /* without a new slug a live tenant keeps its own; a deleted one needs its old slug free */
    if ((q.new_slug || !q.live) &&
        (rc = slug_taken(pg, q.new_slug ? q.new_slug : q.slug, &taken)) < 0)
        goto out;
    if (taken) {
        rc = TD_ECONFLICT;
        detail = "this slug is taken";
        goto out;
    }
    if ((rc = enqueue(req, pg, &q, job_id)) == 0)
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
