/*
 * auth.c - POST /signup, POST /auth/login, GET /me.
 */
#include "api/handlers.h"

#include "app/app.h"
#include "api/metrics.h"
#include "api/internal.h"
#include "api/tx.h"
#include "api/validate.h"
#include "core/clock.h"
#include "auth/jwt.h"
#include "auth/password.h"
#include "auth/throttle.h"
#include "tenant/provision.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const signup_fields[] = {"organization", "user", NULL};
static const char *const org_fields[] = {"slug", "name", NULL};
static const char *const user_fields[] = {"email", "password", "name", NULL};

int api_owner_fields(struct http_req *req, json_t *obj, struct tnt_owner *owner,
                     const char **detail)
{
    int rc;
    if (!json_is_object(obj)) {
        *detail = "user must be an object";
        return TD_EVALIDATION;
    }
    if ((rc = api_no_unknown(req, obj, user_fields, detail)) < 0 ||
        (rc = api_field_str(req, obj, "email", 1, 254, &owner->email, detail)) < 0 ||
        (rc = api_check_email(req, owner->email, detail)) < 0 ||
        (rc = api_field_str(req, obj, "password", 1, 128, &owner->password, detail)) < 0 ||
        (rc = api_check_password(req, owner->password, detail)) < 0 ||
        (rc = api_field_str(req, obj, "name", 1, 200, &owner->name, detail)) < 0)
        return rc;
    return 0;
}

/* {token, expires_at} members for user_id with role in tenant t, added to obj. */
static int add_token(struct http_req *req, json_t *obj, const char *user_id, const char *role)
{
    char *tok = NULL;
    time_t now = time(NULL);
    int ttl = req->app->cfg->jwt_ttl;
    int rc =
        auth_jwt_sign(req->app->cfg->jwt_secret, user_id, req->tenant->id, role, now, ttl, &tok);
    if (rc < 0)
        return rc;
    time_t exp = now + ttl;
    struct tm tm;
    char when[32];
    gmtime_r(&exp, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S.000000Z", &tm);
    /* a bearer token must not outlive the answer in any cache */
    http_set_header(req, "Cache-Control", "no-store");
    json_object_set_new(obj, "token", json_string(tok));
    json_object_set_new(obj, "expires_at", json_string(when));
    free(tok);
    return 0;
}

int api_signup(struct http_req *req)
{
    json_t *body = NULL, *out = NULL;
    const char *detail = NULL, *slug, *name;
    char *owner_json = NULL;
    struct tnt_owner owner;
    int rc = http_body_object(req, &body);
    if (rc < 0)
        goto out;
    json_t *org = json_object_get(body, "organization");
    if ((rc = api_no_unknown(req, body, signup_fields, &detail)) < 0)
        goto out;
    if (!json_is_object(org)) {
        rc = TD_EVALIDATION;
        detail = "organization must be an object";
        goto out;
    }
    if ((rc = api_no_unknown(req, org, org_fields, &detail)) < 0 ||
        (rc = api_field_str(req, org, "slug", 1, 40, &slug, &detail)) < 0 ||
        (rc = api_field_str(req, org, "name", 1, 200, &name, &detail)) < 0 ||
        (rc = api_owner_fields(req, json_object_get(body, "user"), &owner, &detail)) < 0)
        goto out;
    if (!api_check_slug(slug)) {
        rc = TD_EVALIDATION;
        detail = "slug must match ^[a-z][a-z0-9-]{1,38}[a-z0-9]$";
        goto out;
    }
    const char *iso = req->app->cfg->default_isolation;
    struct tnt_new n = {slug, name,   "free", iso ? tnt_isolation_parse(iso) : -1,
                        NULL, &owner, NULL};
    struct tnt_tenant *t = NULL;
    long long t0 = td_now_us();
    rc = tnt_provision(req->app->db, &req->app->tenant_migs, &n, &t, &owner_json);
    api_metrics_provision(req->app->metrics, rc, t0);
    if (rc == TD_ECONFLICT)
        detail = "this slug is taken";
    if (rc < 0)
        goto out;
    req->tenant = t;
    api_hold_tenant(req, t);
    json_t *user = json_loads(owner_json, 0, NULL);
    out = json_pack("{s:o, s:o}", "tenant", tnt_tenant_json(t), "user", user);
    rc = add_token(req, out, json_string_value(json_object_get(user, "id")), "owner");
    if (rc == 0) {
        json_object_del(out, "expires_at");
        rc = http_reply_json(req, 201, out);
        out = NULL;
    }
out:
    free(owner_json);
    json_decref(body);
    json_decref(out);
    if (rc < 0)
        return api_fail(req, rc, detail);
    return rc;
}

static const char login_sql[] = "SELECT u.id, u.password_hash, u.role, " USER_JSON(
    "u") " FROM users u WHERE lower(u.email) = lower($1)";
/* The email as the query above compares it. */
static const char fold_sql[] = "SELECT lower($1)";

/* Retry-After and the 429 of a throttled login. */
static int throttled(struct http_req *req, long wait, const char **detail)
{
    char ra[24];
    snprintf(ra, sizeof(ra), "%ld", wait);
    http_set_header(req, "Retry-After", ra);
    *detail = "too many failed logins; try again later";
    return TD_ERATELIMIT;
}

int api_login(struct http_req *req)
{
    json_t *body = NULL;
    const char *email, *password, *detail = NULL;
    int rc = http_body_object(req, &body);
    if (rc < 0)
        goto out;
    if ((rc = api_field_str(req, body, "email", 1, 254, &email, &detail)) < 0 ||
        (rc = api_field_str(req, body, "password", 1, 1024, &password, &detail)) < 0)
        goto out;
    /* before the database and the hash: a throttled guess costs nothing, and an unknown
     * email is counted and refused exactly as a known one */
    struct auth_throttle *th = req->app->throttle;
    const char *tid = req->tenant->id;
    long wait = auth_throttle_check(th, tid, email, req->client_ip, time(NULL));
    if (wait > 0) {
        rc = throttled(req, wait, &detail);
        goto out;
    }
    struct db_stmt st[2] = {{login_sql, 1, &email, 0}, {fold_sql, 1, &email, 0}};
    PGresult *res[2], *r;
    if ((rc = api_tenant_exec(req, NULL, st, 2, res)) < 0)
        goto out;
    r = res[0];
    int found = PQntuples(r) == 1;
    /* lower() folds more than ASCII (the Kelvin sign to k): count the email as PostgreSQL
     * compares it, known or not, else each other spelling would get guesses of its own */
    email = PQgetvalue(res[1], 0, 0);
    if ((wait = auth_throttle_check(th, tid, email, req->client_ip, time(NULL))) > 0) {
        rc = throttled(req, wait, &detail);
        goto out;
    }
    if (!auth_password_verify(found ? PQgetvalue(r, 0, 1) : NULL, password)) {
        auth_throttle_failed(th, tid, email, req->client_ip, time(NULL));
        rc = TD_EUNAUTHORIZED;
        detail = "wrong email or password";
        goto out;
    }
    auth_throttle_passed(th, tid, email, time(NULL));
    json_t *out = json_pack("{s:o}", "user", json_loads(PQgetvalue(r, 0, 3), 0, NULL));
    rc = add_token(req, out, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 2));
    if (rc == 0)
        rc = http_reply_json(req, 200, out);
    else
        json_decref(out);
out:
    json_decref(body);
    if (rc < 0)
        return api_fail(req, rc, detail);
    return rc;
}

static const char me_sql[] = "SELECT " USER_JSON("u") " FROM users u WHERE u.id = $1";

int api_me(struct http_req *req)
{
    const char *p[1] = {req->claims.sub};
    struct db_stmt st = {me_sql, 1, p, 0};
    PGresult *r;
    int rc = api_tenant_exec(req, NULL, &st, 1, &r);
    return rc < 0 ? rc : api_reply_row(req, 200, r);
}
