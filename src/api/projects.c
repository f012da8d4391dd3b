/*
 * projects.c - /projects: list (cursor paging), get, create (plan quota), update,
 * delete. PostgreSQL builds every JSON body; each write and its audit row are one
 * statement, so they commit together.
 */
#include "api/handlers.h"

#include "app/app.h"
#include "tenant/plans.h"
#include "api/tx.h"
#include "api/validate.h"
#include "auth/jwt.h"
#include "db/sqljson.h"
#include "http/problem.h"

#include <stdio.h>
#include <string.h>

#define PROJECT_JSON(a)                                                                            \
    DB_SQL_OBJECT(a ".id, " a ".name, " a ".description, " a ".status, " DB_SQL_TS(                \
        a ".created_at") " AS created_at, " DB_SQL_TS(a ".updated_at") " AS updated_at")

static const char list_sql[] = LIST_SQL("projects", PROJECT_JSON("x"));
static const char list_after_sql[] = LIST_SQL_AFTER("projects", PROJECT_JSON("x"));
static const char get_sql[] = "SELECT " PROJECT_JSON("p") " FROM projects p WHERE p.id = $1";

/* $1 name, $2 description, $3 actor, $4 ip, $5 user agent; CREATE_LIMITED also $6 = the
 * plan's project limit (the count runs only for plans that have one). */
#define CREATE_SQL(with, insert)                                                                   \
    "WITH " with "p AS (INSERT INTO projects (name, description) " insert " RETURNING *), "        \
    "j AS (SELECT " PROJECT_JSON("p") " AS v, p.id FROM p), "                                      \
                                      "a AS (INSERT INTO audit_logs (actor_id, action, "           \
                                      "entity_type, entity_id, new_values, ip, "                   \
                                      "user_agent) SELECT $3, 'create', 'project', j.id, "         \
                                      "j.v::jsonb, $4, $5 FROM j) SELECT v FROM j"
static const char create_sql[] = CREATE_SQL("", "VALUES ($1, $2)");
static const char create_limited_sql[] = CREATE_SQL("c AS (SELECT count(*) AS n FROM projects), ",
                                                    "SELECT $1, $2 FROM c WHERE c.n < $6::bigint");

static const char update_sql[] =
    "WITH o AS (SELECT * FROM projects WHERE id = $1 FOR UPDATE), "
    "p AS (UPDATE projects t SET name = COALESCE($2, t.name), "
    "description = CASE WHEN $3::bool THEN $4 ELSE t.description END, "
    "status = COALESCE($5, t.status), updated_at = clock_timestamp() FROM o "
    "WHERE t.id = o.id RETURNING t.*), "
    "j AS (SELECT " PROJECT_JSON(
        "p") " AS v, p.id FROM p), "
             "a AS (INSERT INTO audit_logs (actor_id, action, entity_type, entity_id, old_values, "
             "new_values, ip, user_agent) SELECT $6, 'update', 'project', j.id, "
             "(SELECT " PROJECT_JSON("o") " FROM o)::jsonb, j.v::jsonb, $7, $8 FROM j) "
                                          "SELECT v FROM j";

static const char delete_sql[] =
    "WITH d AS (DELETE FROM projects WHERE id = $1 RETURNING *), "
    "a AS (INSERT INTO audit_logs (actor_id, action, entity_type, entity_id, old_values, ip, "
    "user_agent) SELECT $2, 'delete', 'project', d.id, (" PROJECT_JSON(
        "d") ")::jsonb, $3, $4 "
             "FROM d) SELECT 1 FROM d";

static const char *const project_fields[] = {"name", "description", "status", NULL};
static const char *const project_status[] = {"active", "archived", NULL};

const char *api_user_agent(struct http_req *req)
{
    const char *ua = http_header(req, "User-Agent");
    return ua ? ua : "";
}

/* Shared by every list route: paging parameters, one statement, relay its JSON. */
int api_list(struct http_req *req, const char *first, const char *after, const char *min_role)
{
    int limit;
    const char *cus, *cid, *detail = NULL;
    int rc = api_paging(req, &limit, &cus, &cid, &detail);
    if (rc < 0)
        return http_problem_send(req, rc, detail);
    char lim[8];
    snprintf(lim, sizeof(lim), "%d", limit);
    const char **p = td_arena_alloc(req->arena, 3 * sizeof(char *));
    p[0] = td_arena_strdup(req->arena, lim);
    p[1] = cus;
    p[2] = cid;
    struct db_stmt st = {cus ? after : first, cus ? 3 : 1, p, 1};
    PGresult *r;
    rc = api_tenant_exec(req, min_role, &st, 1, &r);
    if (rc < 0)
        return rc;
    return api_reply_page(req, r, limit);
}

int api_projects_list(struct http_req *req)
{
    return api_list(req, list_sql, list_after_sql, NULL);
}

int api_projects_get(struct http_req *req)
{
    if (!auth_is_uuid(req->params[0]))
        return TD_ENOTFOUND;
    struct db_stmt st = {get_sql, 1, &req->params[0], 0};
    PGresult *r;
    int rc = api_tenant_exec(req, NULL, &st, 1, &r);
    return rc < 0 ? rc : api_reply_row(req, 200, r);
}

int api_projects_create(struct http_req *req)
{
    json_t *body = NULL;
    const char *name, *desc, *detail = NULL;
    int rc = http_body_object(req, &body);
    if (rc < 0)
        goto out;
    if ((rc = api_no_unknown(req, body, project_fields, &detail)) < 0 ||
        (rc = api_field_str(req, body, "name", 1, 200, &name, &detail)) < 0)
        goto out;
    json_t *d = json_object_get(body, "description");
    desc = d && json_is_string(d) ? json_string_value(d) : NULL;
    if (d && !json_is_null(d) &&
        (!json_is_string(d) || api_utf8_len(desc) > 10000 ||
         strlen(desc) != json_string_length(d))) {
        rc = TD_EVALIDATION;
        detail = "description must be a string of at most 10000 characters";
        goto out;
    }
    if (json_object_get(body, "status")) {
        const char *st;
        if ((rc = api_field_enum(req, body, "status", 0, project_status, &st, &detail)) < 0)
            goto out;
    }
    const struct tnt_plan *plan = tnt_plan_get(req->tenant->plan);
    int limited = plan && plan->max_projects >= 0;
    char lim[24];
    snprintf(lim, sizeof(lim), "%ld", limited ? plan->max_projects : -1L);
    const char *p[6] = {name, desc, req->claims.sub, req->client_ip, api_user_agent(req), lim};
    struct db_stmt st[2] = {{api_quota_lock_sql, 0, NULL, 0},
                            {limited ? create_limited_sql : create_sql, limited ? 6 : 5, p, 0}};
    PGresult *res[2], *r;
    rc =
        api_tenant_exec(req, NULL, limited ? st : st + 1, limited ? 2 : 1, limited ? res : res + 1);
    r = res[1];
    if (rc == 0 && PQntuples(r) == 0) {
        rc = TD_EQUOTA;
        detail = "the plan's project limit is reached";
    } else if (rc == 0) {
        rc = api_reply_row(req, 201, r);
    }
out:
    json_decref(body);
    if (rc < 0 && detail)
        return http_problem_send(req, rc, detail);
    return rc;
}

int api_projects_update(struct http_req *req)
{
    json_t *body = NULL;
    const char *name = NULL, *desc = NULL, *status = NULL, *detail = NULL;
    if (!auth_is_uuid(req->params[0]))
        return TD_ENOTFOUND;
    int rc = http_body_object(req, &body);
    if (rc < 0)
        goto out;
    if ((rc = api_no_unknown(req, body, project_fields, &detail)) < 0 ||
        (rc = api_field_not_null(req, body, "name", &detail)) < 0 ||
        (rc = api_field_not_null(req, body, "status", &detail)) < 0)
        goto out;
    if (json_object_get(body, "name") &&
        (rc = api_field_str(req, body, "name", 1, 200, &name, &detail)) < 0)
        goto out;
    if ((rc = api_field_enum(req, body, "status", 0, project_status, &status, &detail)) < 0)
        goto out;
    json_t *d = json_object_get(body, "description");
    if (d && !json_is_null(d) &&
        (!json_is_string(d) || api_utf8_len(json_string_value(d)) > 10000 ||
         strlen(json_string_value(d)) != json_string_length(d))) {
        rc = TD_EVALIDATION;
        detail = "description must be a string of at most 10000 characters";
        goto out;
    }
    desc = d && json_is_string(d) ? json_string_value(d) : NULL;
    const char *p[8] = {req->params[0],  name,           d ? "true" : "false", desc, status,
                        req->claims.sub, req->client_ip, api_user_agent(req)};
    struct db_stmt st = {update_sql, 8, p, 0};
    PGresult *r;
    rc = api_tenant_exec(req, NULL, &st, 1, &r);
    if (rc == 0)
        rc = api_reply_row(req, 200, r);
out:
    json_decref(body);
    if (rc < 0 && detail)
        return http_problem_send(req, rc, detail);
    return rc;
}

int api_projects_delete(struct http_req *req)
{
    if (!auth_is_uuid(req->params[0]))
        return TD_ENOTFOUND;
    const char *p[4] = {req->params[0], req->claims.sub, req->client_ip, api_user_agent(req)};
    struct db_stmt st = {delete_sql, 4, p, 0};
    PGresult *r;
    int rc = api_tenant_exec(req, NULL, &st, 1, &r);
    if (rc < 0)
        return rc;
    if (PQntuples(r) == 0)
        return TD_ENOTFOUND;
    return http_reply_empty(req, 204);
}
