/*
 * fuzz_json.c - JSON request bodies of every write route, validated exactly as the
 * handlers do before they touch the database: http_body_object() on a hand-built request,
 * then the route's chain of validate.h checks. Input: one selector byte (the route), then
 * the body. When a chain accepts a body, the accepted values are checked against SPEC §3
 * and §6 (lengths in code points, no NUL, not blank, one '@', slug pattern, enum sets).
 */
#include "api/validate.h"
#include "auth/jwt.h"
#include "core/mem.h"
#include "http/request.h"
#include "tenant/provision.h"

#include <ctype.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* src/api/auth.c: {email,password,name} of an owner (signup, admin create). */
int api_owner_fields(struct http_req *req, json_t *obj, struct tnt_owner *owner,
                     const char **detail);

static regex_t slug_re;

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant broken: %s\n", what);
        abort();
    }
}

static int blank(const char *s)
{
    for (; *s; s++)
        if (!isspace((unsigned char)*s))
            return 0;
    return 1;
}

/* An accepted string: present when required, no NUL, not blank, at most max code points. */
static void accepted(json_t *obj, const char *name, const char *v, int required, size_t max)
{
    if (!v) {
        check(!required, "a required field is present when accepted");
        return;
    }
    json_t *j = json_object_get(obj, name);
    check(json_is_string(j) && json_string_value(j) == v, "the value is the body's string");
    check(strlen(v) == json_string_length(j), "no NUL inside an accepted string");
    check(!blank(v), "an accepted string is not blank");
    check(api_utf8_len(v) <= max, "an accepted string is within its length");
}

static void accepted_email(const char *e)
{
    const char *at = strchr(e, '@');
    check(at && at != e && at[1] && !strchr(at + 1, '@') && strlen(e) <= 254,
          "an accepted email has one inner '@' and at most 254 bytes");
}

static void accepted_password(const char *p)
{
    size_t n = api_utf8_len(p);
    check(n >= 8 && n <= 128, "an accepted password has 8 to 128 characters");
}

static void accepted_enum(const char *v, const char *const *set)
{
    if (!v)
        return;
    for (; *set; set++)
        if (!strcmp(*set, v))
            return;
    check(0, "an accepted enum value is in its set");
}

static void accepted_owner(json_t *o, const struct tnt_owner *ow)
{
    accepted(o, "email", ow->email, 1, 254);
    accepted(o, "password", ow->password, 1, 128);
    accepted(o, "name", ow->name, 1, 200);
    accepted_email(ow->email);
    accepted_password(ow->password);
}

static const char *const roles[] = {"owner", "admin", "member", NULL};
static const char *const plans[] = {"free", "starter", "pro", "enterprise", NULL};
static const char *const isos[] = {"pool", "schema", "database", NULL};
static const char *const pstatus[] = {"active", "archived", NULL};
static const char *const tstatus[] = {"active", "suspended", NULL};

/* POST /signup (src/api/auth.c api_signup) */
static int v_signup(struct http_req *req, json_t *body, const char **detail)
{
    static const char *const top[] = {"organization", "user", NULL};
    static const char *const org_f[] = {"slug", "name", NULL};
    const char *slug, *name;
    struct tnt_owner ow;
    json_t *org = json_object_get(body, "organization");
    int rc;
    if ((rc = api_no_unknown(req, body, top, detail)) < 0)
        return rc;
    if (!json_is_object(org))
        return TD_EVALIDATION;
    if ((rc = api_no_unknown(req, org, org_f, detail)) < 0 ||
        (rc = api_field_str(req, org, "slug", 1, 40, &slug, detail)) < 0 ||
        (rc = api_field_str(req, org, "name", 1, 200, &name, detail)) < 0 ||
        (rc = api_owner_fields(req, json_object_get(body, "user"), &ow, detail)) < 0)
        return rc;
    if (!api_check_slug(slug))
        return TD_EVALIDATION;
    check(!regexec(&slug_re, slug, 0, NULL, 0), "an accepted slug matches the SPEC pattern");
    accepted(org, "slug", slug, 1, 40);
    accepted(org, "name", name, 1, 200);
    accepted_owner(json_object_get(body, "user"), &ow);
    return 0;
}

/* POST /auth/login */
static int v_login(struct http_req *req, json_t *body, const char **detail)
{
    const char *email, *pw;
    int rc;
    if ((rc = api_field_str(req, body, "email", 1, 254, &email, detail)) < 0 ||
        (rc = api_field_str(req, body, "password", 1, 1024, &pw, detail)) < 0)
        return rc;
    accepted(body, "email", email, 1, 254);
    accepted(body, "password", pw, 1, 1024);
    return 0;
}

/* POST /users */
static int v_users_create(struct http_req *req, json_t *body, const char **detail)
{
    static const char *const f[] = {"email", "password", "name", "role", NULL};
    const char *email, *pw, *name, *role;
    int rc;
    if ((rc = api_no_unknown(req, body, f, detail)) < 0 ||
        (rc = api_field_str(req, body, "email", 1, 254, &email, detail)) < 0 ||
        (rc = api_check_email(req, email, detail)) < 0 ||
        (rc = api_field_str(req, body, "password", 1, 128, &pw, detail)) < 0 ||
        (rc = api_check_password(req, pw, detail)) < 0 ||
        (rc = api_field_str(req, body, "name", 1, 200, &name, detail)) < 0 ||
        (rc = api_field_enum(req, body, "role", 1, roles, &role, detail)) < 0)
        return rc;
    accepted(body, "email", email, 1, 254);
    accepted_email(email);
    accepted_password(pw);
    accepted(body, "name", name, 1, 200);
    check(role != NULL, "role is required");
    accepted_enum(role, roles);
    return 0;
}

/* PATCH /users/{id} */
static int v_users_update(struct http_req *req, json_t *body, const char **detail)
{
    static const char *const f[] = {"name", "role", "password", NULL};
    const char *name, *role, *pw;
    int rc;
    if ((rc = api_no_unknown(req, body, f, detail)) < 0 ||
        (rc = api_field_str(req, body, "name", 0, 200, &name, detail)) < 0 ||
        (rc = api_field_enum(req, body, "role", 0, roles, &role, detail)) < 0 ||
        (rc = api_field_str(req, body, "password", 0, 128, &pw, detail)) < 0)
        return rc;
    if (pw && (rc = api_check_password(req, pw, detail)) < 0)
        return rc;
    accepted(body, "name", name, 0, 200);
    accepted_enum(role, roles);
    if (pw)
        accepted_password(pw);
    return 0;
}

/* description of a project: absent, null, or a string of at most 10000 code points */
static int v_description(json_t *body, const char **detail)
{
    json_t *d = json_object_get(body, "description");
    if (d && !json_is_null(d) &&
        (!json_is_string(d) || api_utf8_len(json_string_value(d)) > 10000 ||
         strlen(json_string_value(d)) != json_string_length(d))) {
        *detail = "description";
        return TD_EVALIDATION;
    }
    if (json_is_string(d))
        check(api_utf8_len(json_string_value(d)) <= 10000 &&
                  strlen(json_string_value(d)) == json_string_length(d),
              "an accepted description is short and has no NUL");
    return 0;
}

/* POST /projects */
static int v_projects_create(struct http_req *req, json_t *body, const char **detail)
{
    static const char *const f[] = {"name", "description", "status", NULL};
    const char *name, *st = NULL;
    int rc;
    if ((rc = api_no_unknown(req, body, f, detail)) < 0 ||
        (rc = api_field_str(req, body, "name", 1, 200, &name, detail)) < 0 ||
        (rc = v_description(body, detail)) < 0)
        return rc;
    if (json_object_get(body, "status") &&
        (rc = api_field_enum(req, body, "status", 0, pstatus, &st, detail)) < 0)
        return rc;
    accepted(body, "name", name, 1, 200);
    accepted_enum(st, pstatus);
    return 0;
}

/* PATCH /projects/{id} */
static int v_projects_update(struct http_req *req, json_t *body, const char **detail)
{
    static const char *const f[] = {"name", "description", "status", NULL};
    const char *name = NULL, *st;
    int rc;
    if ((rc = api_no_unknown(req, body, f, detail)) < 0)
        return rc;
    if (json_object_get(body, "name") &&
        (rc = api_field_str(req, body, "name", 1, 200, &name, detail)) < 0)
        return rc;
    if ((rc = api_field_enum(req, body, "status", 0, pstatus, &st, detail)) < 0 ||
        (rc = v_description(body, detail)) < 0)
        return rc;
    accepted(body, "name", name, 0, 200);
    accepted_enum(st, pstatus);
    return 0;
}

/* POST /admin/tenants */
static int v_admin_create(struct http_req *req, json_t *body, const char **detail)
{
    static const char *const f[] = {"slug", "name", "plan", "isolation", "server", "owner", NULL};
    const char *slug, *name, *plan, *iso, *server;
    struct tnt_owner ow;
    int rc;
    if ((rc = api_no_unknown(req, body, f, detail)) < 0 ||
        (rc = api_field_str(req, body, "slug", 1, 40, &slug, detail)) < 0 ||
        (rc = api_field_str(req, body, "name", 1, 200, &name, detail)) < 0 ||
        (rc = api_field_enum(req, body, "plan", 0, plans, &plan, detail)) < 0 ||
        (rc = api_field_enum(req, body, "isolation", 0, isos, &iso, detail)) < 0 ||
        (rc = api_field_str(req, body, "server", 0, 64, &server, detail)) < 0)
        return rc;
    if (!api_check_slug(slug))
        return TD_EVALIDATION;
    json_t *o = json_object_get(body, "owner");
    if (o && !json_is_null(o)) {
        if ((rc = api_owner_fields(req, o, &ow, detail)) < 0)
            return rc;
        accepted_owner(o, &ow);
    }
    check(!regexec(&slug_re, slug, 0, NULL, 0), "an accepted slug matches the SPEC pattern");
    accepted(body, "name", name, 1, 200);
    accepted_enum(plan, plans);
    accepted_enum(iso, isos);
    check(!iso || tnt_isolation_parse(iso) >= 0, "an accepted isolation parses");
    accepted(body, "server", server, 0, 64);
    return 0;
}

/* PATCH /admin/tenants/{id} */
static int v_admin_update(struct http_req *req, json_t *body, const char **detail)
{
    static const char *const f[] = {"name", "plan", "status", "subscription_expires_at", NULL};
    const char *name, *plan, *status, *expires = NULL;
    int rc;
    if ((rc = api_no_unknown(req, body, f, detail)) < 0 ||
        (rc = api_field_str(req, body, "name", 0, 200, &name, detail)) < 0 ||
        (rc = api_field_enum(req, body, "plan", 0, plans, &plan, detail)) < 0 ||
        (rc = api_field_enum(req, body, "status", 0, tstatus, &status, detail)) < 0)
        return rc;
    json_t *e = json_object_get(body, "subscription_expires_at");
    if (e && !json_is_null(e) &&
        (rc = api_field_str(req, body, "subscription_expires_at", 1, 64, &expires, detail)) < 0)
        return rc;
    accepted(body, "name", name, 0, 200);
    accepted_enum(plan, plans);
    accepted_enum(status, tstatus);
    accepted(body, "subscription_expires_at", expires, 0, 64);
    return 0;
}

/* POST /admin/tenants/{id}/move (src/api/transfer.c) */
static int v_move(struct http_req *req, json_t *body, const char **detail)
{
    static const char *const f[] = {"isolation", "server", NULL};
    const char *iso = NULL, *server = NULL;
    int rc;
    if ((rc = api_no_unknown(req, body, f, detail)) < 0 ||
        (rc = api_field_enum(req, body, "isolation", 0, isos, &iso, detail)) < 0 ||
        (rc = api_field_str(req, body, "server", 0, 64, &server, detail)) < 0)
        return rc;
    if (!iso && !server)
        return TD_EVALIDATION;
    accepted_enum(iso, isos);
    accepted(body, "server", server, 0, 64);
    return 0;
}

typedef int (*validator)(struct http_req *, json_t *, const char **);
static const validator routes[] = {v_signup,       v_login,           v_users_create,
                                   v_users_update, v_projects_create, v_projects_update,
                                   v_admin_create, v_admin_update,    v_move};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        init = 1;
        if (regcomp(&slug_re, "^[a-z][a-z0-9-]{1,38}[a-z0-9]$", REG_EXTENDED | REG_NOSUB))
            abort();
    }
    if (size < 1 || size > HTTP_MAX_BODY)
        return 0;
    struct http_req req;
    memset(&req, 0, sizeof(req));
    req.arena = td_arena_new();
    /* as server.c stores it: a heap copy with a NUL after body_len bytes */
    req.body_len = size - 1;
    req.body = malloc(size);
    memcpy(req.body, data + 1, size - 1);
    req.body[size - 1] = '\0';

    json_t *body = NULL;
    const char *detail = NULL;
    int rc = http_body_object(&req, &body);
    if (rc == 0) {
        check(json_is_object(body), "http_body_object yields an object");
        rc = routes[data[0] % NROUTES](&req, body, &detail);
        check(rc == 0 || rc == TD_EVALIDATION, "a body is accepted or refused as validation");
        if (rc < 0 && detail)
            check(strlen(detail) < 512, "details stay short");
    } else {
        check(rc == TD_EINVALID_JSON || rc == TD_EVALIDATION, "a bad body is 400");
        check(body == NULL, "no object on failure");
    }
    json_decref(body);
    free(req.body);
    td_arena_free(req.arena);
    return 0;
}
