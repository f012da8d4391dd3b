/*
 * users.c - /users (roles owner > admin > member; the last owner stays) and /audit-logs.
 * Role rules that depend on the target row are decided inside the statement, so each
 * write is still one round trip; the statement reports which rule refused it.
 */
#include "api/handlers.h"

#include "app/app.h"
#include "api/internal.h"
#include "app/lifecycle.h"
#include "tenant/plans.h"
#include "api/tx.h"
#include "api/validate.h"
#include "auth/jwt.h"
#include "auth/password.h"

#include <stdio.h>
#include <string.h>

/* Audit values are stored as json in the API's compact style (written by row_to_json,
 * timestamps formatted), so the list relays them as they are. */
#define AUDIT_JSON(a)                                                                              \
    DB_SQL_OBJECT(a ".id, " a ".actor_id, " a ".action, " a ".entity_type, " a ".entity_id, " a    \
                    ".old_values, " a ".new_values, " a ".ip, " a                                  \
                    ".user_agent, " DB_SQL_TS(a ".created_at") " AS created_at")

static const char list_sql[] = LIST_SQL("users", USER_JSON("x"));
static const char list_after_sql[] = LIST_SQL_AFTER("users", USER_JSON("x"));
static const char audit_sql[] = LIST_SQL("audit_logs", AUDIT_JSON("x"));
static const char audit_after_sql[] = LIST_SQL_AFTER("audit_logs", AUDIT_JSON("x"));
static const char get_sql[] = "SELECT " USER_JSON("u") " FROM users u WHERE u.id = $1";

static const char create_sql[] =
    "WITH c AS (SELECT count(*) AS n FROM users), "
    "u AS (INSERT INTO users (email, name, role, password_hash) SELECT $1, $2, $3, $4 FROM c "
    "WHERE $5::bigint < 0 OR c.n < $5::bigint RETURNING *), "
    "j AS (SELECT " USER_JSON(
        "u") " AS v, u.id FROM u), "
             "a AS (INSERT INTO audit_logs (actor_id, action, entity_type, entity_id, new_values, "
             "ip, "
             "user_agent) SELECT $6, 'create', 'user', j.id, j.v, $7, $8 FROM j) "
             "SELECT v FROM j";

/*
 * The target ($1) and every owner, locked in id order, as they are now: two owners
 * demoting or removing each other at once serialise here, and the second one counts
 * the owners the first left (a count in the statement's snapshot would let both pass
 * and leave none). Locking in one order keeps them from deadlocking.
 */
#define LOCK_OWNERS_SQL                                                                            \
    "SELECT id, role FROM users WHERE id = $1 OR role = 'owner' ORDER BY id FOR UPDATE"

static const char update_sql[] =
    "WITH lk AS MATERIALIZED (" LOCK_OWNERS_SQL "), "
    "o AS (SELECT * FROM users WHERE id = $1), "
    "s AS (SELECT CASE WHEN (k.role = 'owner' OR $3 = 'owner') AND "
    "(SELECT role FROM users WHERE id = $5) <> 'owner' THEN 'forbidden' "
    "WHEN k.role = 'owner' AND COALESCE($3, 'owner') <> 'owner' AND "
    "(SELECT count(*) FROM lk WHERE lk.role = 'owner') <= 1 THEN 'last_owner' "
    "ELSE 'ok' END AS st FROM lk k WHERE k.id = $1), "
    "u AS (UPDATE users t SET name = COALESCE($2, t.name), role = COALESCE($3, t.role), "
    "password_hash = COALESCE($4, t.password_hash), updated_at = clock_timestamp() "
    "FROM o, s WHERE t.id = o.id AND s.st = 'ok' RETURNING t.*), "
    "j AS (SELECT " USER_JSON(
        "u") " AS v, u.id FROM u), "
             "a AS (INSERT INTO audit_logs (actor_id, action, entity_type, entity_id, old_values, "
             "new_values, ip, user_agent) SELECT $5, 'update', 'user', j.id, "
             "(SELECT " USER_JSON("o") " FROM o), j.v, $6, $7 FROM j) "
                                       "SELECT (SELECT st FROM s), (SELECT v FROM j)";

static const char delete_sql[] =
    "WITH lk AS MATERIALIZED (" LOCK_OWNERS_SQL "), "
    "s AS (SELECT CASE WHEN k.role = 'owner' AND (SELECT role FROM users WHERE id = $2) "
    "<> 'owner' THEN 'forbidden' WHEN k.role = 'owner' AND "
    "(SELECT count(*) FROM lk WHERE lk.role = 'owner') <= 1 THEN 'last_owner' "
    "ELSE 'ok' END AS st FROM lk k WHERE k.id = $1), "
    "d AS (DELETE FROM users t USING s WHERE t.id = $1 AND s.st = 'ok' RETURNING t.*), "
    "a AS (INSERT INTO audit_logs (actor_id, action, entity_type, entity_id, old_values, ip, "
    "user_agent) SELECT $2, 'delete', 'user', d.id, " USER_JSON("d") ", $3, $4 FROM d) "
                                                                     "SELECT (SELECT st FROM s)";

static const char *const create_fields[] = {"email", "password", "name", "role", NULL};
static const char *const patch_fields[] = {"name", "role", "password", NULL};
static const char *const roles[] = {"owner", "admin", "member", NULL};

int api_users_list(struct http_req *req)
{
    return api_list(req, list_sql, list_after_sql, NULL);
}

int api_audit_list(struct http_req *req)
{
    return api_list(req, audit_sql, audit_after_sql, "admin");
}

int api_users_get(struct http_req *req)
{
    if (!auth_is_uuid(req->params[0]))
        return TD_ENOTFOUND;
    struct db_stmt st = {get_sql, 1, &req->params[0], 0};
    PGresult *r;
    int rc = api_tenant_exec(req, NULL, &st, 1, &r);
    return rc < 0 ? rc : api_reply_row(req, 200, r);
}

/* Map the rule a user write reported to a response code. */
static int rule_result(const char *st, const char **detail)
{
    if (!st || !*st)
        return TD_ENOTFOUND;
    if (!strcmp(st, "forbidden")) {
        *detail = "only an owner can change or remove an owner";
        return TD_EFORBIDDEN;
    }
    if (!strcmp(st, "last_owner")) {
        *detail = "the last owner cannot be removed or demoted";
        return TD_ECONFLICT;
    }
    return 0;
}

int api_users_create(struct http_req *req)
{
    json_t *body = NULL;
    const char *email, *pw, *name, *role, *detail = NULL;
    char hash[AUTH_HASH_MAX];
    int rc = http_body_object(req, &body);
    if (rc < 0)
        goto out;
    if ((rc = api_no_unknown(req, body, create_fields, &detail)) < 0 ||
        (rc = api_field_str(req, body, "email", 1, 254, &email, &detail)) < 0 ||
        (rc = api_check_email(req, email, &detail)) < 0 ||
        (rc = api_field_str(req, body, "password", 1, 128, &pw, &detail)) < 0 ||
        (rc = api_check_password(req, pw, &detail)) < 0 ||
        (rc = api_field_str(req, body, "name", 1, 200, &name, &detail)) < 0 ||
        (rc = api_field_enum(req, body, "role", 1, roles, &role, &detail)) < 0)
        goto out;
    if ((rc = auth_password_hash(pw, hash)) < 0)
        goto out;
    const struct tnt_plan *plan = tnt_plan_get(req->tenant->plan);
    char lim[24];
    snprintf(lim, sizeof(lim), "%ld", plan ? plan->max_users : -1L);
    const char *p[8] = {
        email, name, role, hash, lim, req->claims.sub, req->client_ip, api_user_agent(req)};
    struct db_stmt st[2] = {{api_quota_lock_sql, 0, NULL, 0}, {create_sql, 8, p, 0}};
    PGresult *res[2], *r;
    int limited = plan && plan->max_users >= 0;
    rc = api_tenant_exec(req, strcmp(role, "owner") ? "admin" : "owner", limited ? st : st + 1,
                         limited ? 2 : 1, limited ? res : res + 1);
    r = res[1];
    if (rc == TD_ECONFLICT)
        detail = "a user with this email exists";
    else if (rc == TD_EFORBIDDEN)
        detail = "this role may not create that user";
    else if (rc == 0 && PQntuples(r) == 0) {
        rc = TD_EQUOTA;
        detail = "the plan's user limit is reached";
    } else if (rc == 0)
        rc = api_reply_row(req, 201, r);
out:
    json_decref(body);
    if (rc < 0)
        return api_fail(req, rc, detail);
    return rc;
}

int api_users_update(struct http_req *req)
{
    json_t *body = NULL;
    const char *name, *role, *pw, *detail = NULL;
    char hash[AUTH_HASH_MAX];
    if (!auth_is_uuid(req->params[0]))
        return TD_ENOTFOUND;
    int rc = http_body_object(req, &body);
    if (rc < 0)
        goto out;
    if ((rc = api_no_unknown(req, body, patch_fields, &detail)) < 0 ||
        (rc = api_field_not_null(req, body, "name", &detail)) < 0 ||
        (rc = api_field_not_null(req, body, "role", &detail)) < 0 ||
        (rc = api_field_not_null(req, body, "password", &detail)) < 0 ||
        (rc = api_field_str(req, body, "name", 0, 200, &name, &detail)) < 0 ||
        (rc = api_field_enum(req, body, "role", 0, roles, &role, &detail)) < 0 ||
        (rc = api_field_str(req, body, "password", 0, 128, &pw, &detail)) < 0)
        goto out;
    if (pw && ((rc = api_check_password(req, pw, &detail)) < 0 ||
               (rc = auth_password_hash(pw, hash)) < 0))
        goto out;
    const char *p[7] = {
        req->params[0],     name, role, pw ? hash : NULL, req->claims.sub, req->client_ip,
        api_user_agent(req)};
    struct db_stmt st = {update_sql, 7, p, 0};
    PGresult *r;
    /* a user may rename themselves or change their own password; everything else is admin */
    int self = strcmp(req->params[0], req->claims.sub) == 0 && !role;
    if ((rc = api_tenant_exec(req, self ? NULL : "admin", &st, 1, &r)) < 0)
        goto out;
    if ((rc = rule_result(PQgetvalue(r, 0, 0), &detail)) < 0)
        goto out;
    /* reads remember user checks (usercheck.h): a new role must be seen everywhere now */
    if (role)
        app_tenant_notify(req->app, req->tenant->id);
    rc = http_reply_json_text(req, 200, PQgetvalue(r, 0, 1), (size_t)PQgetlength(r, 0, 1));
out:
    json_decref(body);
    if (rc < 0)
        return api_fail(req, rc, detail);
    return rc;
}

int api_users_delete(struct http_req *req)
{
    const char *detail = NULL;
    if (!auth_is_uuid(req->params[0]))
        return TD_ENOTFOUND;
    const char *p[4] = {req->params[0], req->claims.sub, req->client_ip, api_user_agent(req)};
    struct db_stmt st = {delete_sql, 4, p, 0};
    PGresult *r;
    int rc = api_tenant_exec(req, "admin", &st, 1, &r);
    if (rc < 0)
        return rc;
    if ((rc = rule_result(PQgetvalue(r, 0, 0), &detail)) < 0)
        return api_fail(req, rc, detail);
    /* reads remember user checks (usercheck.h): the removed user's token must stop now */
    app_tenant_notify(req->app, req->tenant->id);
    return http_reply_empty(req, 204);
}
