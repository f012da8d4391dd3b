/*
 * openapi.c - GET /openapi.json: OpenAPI 3.1 built from the route table and the
 * description table below. Schemas are written in a compact notation ("*name:type?",
 * '*' required, '?' nullable) so the table stays readable next to SPEC.md §5-6.
 */
#include "api/openapi.h"

#include "api/api.h"
#include "app/app.h"
#include "core/err.h"
#include "core/mem.h"
#include "http/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- schemas --------------------------------------------------------------------------- */

struct schema_def {
    const char *name;
    const char *description;
    const char *props;
};

#define PLAN "enum(free|starter|pro|enterprise)"
#define ISO "enum(pool|schema|database)"
#define ROLE "enum(owner|admin|member)"

static const struct schema_def schemas[] = {
    {"Tenant", "An organisation; storage names derive from its id, never from user text.",
     "*id:uuid *slug:slug *name:string *plan:" PLAN " *isolation:" ISO
     " *status:enum(active|suspended) *server:string *subscription_expires_at:date-time? "
     "*created_at:date-time"},
    {"TenantUsage", "Current figures of a tenant (api_calls_month may lag by up to 5 s).",
     "*users:int *projects:int *api_calls_month:int"},
    {"TenantWithUsage",
     "A tenant with its usage; hibernated is true while its database sleeps (then usage is "
     "null: reading it would wake the database).",
     "*id:uuid *slug:slug *name:string *plan:" PLAN " *isolation:" ISO
     " *status:enum(active|suspended) *server:string *subscription_expires_at:date-time? "
     "*created_at:date-time *hibernated:bool *usage:ref(TenantUsage)?"},
    {"TenantSleep", "A database tenant after POST /admin/tenants/{id}/hibernate or /wake.",
     "*id:uuid *slug:slug *name:string *plan:" PLAN " *isolation:" ISO
     " *status:enum(active|suspended) *server:string *subscription_expires_at:date-time? "
     "*created_at:date-time *hibernated:bool"},
    {"TenantCreated", "The new tenant; owner is present when one was asked for.",
     "*id:uuid *slug:slug *name:string *plan:" PLAN " *isolation:" ISO
     " *status:enum(active|suspended) *server:string *subscription_expires_at:date-time? "
     "*created_at:date-time owner:ref(User)"},
    {"NewUserFields", "A tenant's first user.", "*email:email *password:password *name:name"},
    {"TenantCreate", "POST /admin/tenants.",
     "*slug:slug *name:name plan:" PLAN " isolation:" ISO " server:string "
     "owner:ref(NewUserFields)?"},
    {"TenantPatch", "PATCH /admin/tenants/{id}; subscription_expires_at null clears it.",
     "name:name plan:" PLAN " status:enum(active|suspended) subscription_expires_at:date-time?"},
    {"TenantMove", "POST /admin/tenants/{id}/move: at least one field.",
     "isolation:" ISO " server:string"},
    {"TenantRestore",
     "POST /admin/tenants/{id}/restore: the tenant as it was at `at`, as a new tenant under "
     "slug, or in place of its current rows (then ?confirm={slug} is required).",
     "*at:date-time slug:slug"},
    {"TenantClone", "POST /admin/tenants/{id}/clone: a copy as of now under a new slug.",
     "*slug:slug"},
    {"Job",
     "A background job (restore, clone): error is a problem object when it failed, result "
     "the tenant when it succeeded.",
     "*id:uuid *kind:string *status:enum(queued|running|succeeded|failed) *progress:fraction "
     "*error:object? *result:ref(Tenant)? *created_at:date-time *finished_at:date-time?"},
    {"Organization", "The tenant made by a signup.", "*slug:slug *name:name"},
    {"Signup", "POST /signup.", "*organization:ref(Organization) *user:ref(NewUserFields)"},
    {"SignupResult", "The tenant (plan free), its owner and the owner's token.",
     "*tenant:ref(Tenant) *user:ref(User) *token:string"},
    {"Login", "POST /auth/login, with the tenant named by /t/{slug}, X-Tenant-ID or subdomain.",
     "*email:email *password:string"},
    {"LoginResult", "A bearer token (HS256 JWT: sub, tid, role, iat, exp).",
     "*token:string *expires_at:date-time *user:ref(User)"},
    {"User", "A user of one tenant; the password hash is never shown.",
     "*id:uuid *email:email *name:string *role:" ROLE " *created_at:date-time"},
    {"UserCreate", "POST /users.", "*email:email *password:password *name:name *role:" ROLE},
    {"UserPatch", "PATCH /users/{id}.", "name:name role:" ROLE " password:password"},
    {"Project", "A project of one tenant.",
     "*id:uuid *name:string *description:string? *status:enum(active|archived) "
     "*created_at:date-time *updated_at:date-time"},
    {"ProjectCreate", "POST /projects.", "*name:name description:description?"},
    {"ProjectPatch", "PATCH /projects/{id}.",
     "name:name description:description? status:enum(active|archived)"},
    {"AuditEntry",
     "One write: values are the whole row without secrets; old_values is null on create, "
     "new_values null on delete.",
     "*id:uuid *actor_id:uuid? *action:enum(create|update|delete) *entity_type:enum(user|project) "
     "*entity_id:uuid *old_values:object? *new_values:object? *ip:string? *user_agent:string? "
     "*created_at:date-time"},
    {"Status", "A probe's answer.", "*status:string"},
    {"Migrations", "Catalog and per-tenant schema versions, pending and failed.", ""},
    {"AnalyticsByPlan", "Tenants of one plan and status.",
     "*plan:" PLAN " *status:enum(active|suspended) *tenants:int"},
    {"AnalyticsTenant",
     "Figures of one tenant; users and projects as last collected from its storage (null "
     "until the first collection).",
     "*id:uuid *slug:slug *plan:" PLAN " *status:enum(active|suspended) *isolation:" ISO
     " *users:int? *projects:int? *api_calls_month:int *collected_at:date-time?"},
    {"AnalyticsMonth", "API calls of one calendar month (UTC), deleted tenants included.",
     "*month:string *tenants:int *api_calls:int"},
    {"Analytics",
     "GET /admin/analytics: read from materialized views refreshed by the analytics_refresh "
     "job (every 5 minutes), never from tenant storage.",
     "*refreshed_at:date-time? *tenants_total:int *by_plan_status:list(AnalyticsByPlan) "
     "*tenants:list(AnalyticsTenant) *api_calls_by_month:list(AnalyticsMonth)"},
};

/* Schemas that get a "<Name>List" page {data, next_cursor} (SPEC §3). */
static const char *const listed[] = {"Tenant", "User", "Project", "AuditEntry"};

static const char *const problem_codes[] = {
    "invalid_json",       "validation_failed", "bad_request",
    "tenant_required",    "unauthorized",      "subscription_expired",
    "forbidden",          "tenant_mismatch",   "tenant_suspended",
    "quota_exceeded",     "not_found",         "tenant_not_found",
    "method_not_allowed", "conflict",          "payload_too_large",
    "rate_limited",       "unavailable",       "internal",
};

static json_t *ref(const char *name)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "#/components/schemas/%s", name);
    return json_pack("{s:s}", "$ref", buf);
}

/* Schema of one type word: uuid, string, int, enum(a|b), ref(X), list(X) ... */
static json_t *type_schema(const char *t)
{
    char inner[256] = "";
    const char *open = strchr(t, '(');
    if (open) {
        snprintf(inner, sizeof(inner), "%.*s", (int)(strlen(open + 1) - 1), open + 1);
    }
    if (!strcmp(t, "uuid"))
        return json_pack("{s:s, s:s}", "type", "string", "format", "uuid");
    if (!strcmp(t, "date-time"))
        return json_pack("{s:s, s:s}", "type", "string", "format", "date-time");
    if (!strcmp(t, "email"))
        return json_pack("{s:s, s:s, s:i}", "type", "string", "format", "email", "maxLength", 254);
    if (!strcmp(t, "slug"))
        return json_pack("{s:s, s:s}", "type", "string", "pattern",
                         "^[a-z][a-z0-9-]{1,38}[a-z0-9]$");
    if (!strcmp(t, "password"))
        return json_pack("{s:s, s:i, s:i}", "type", "string", "minLength", 8, "maxLength", 128);
    if (!strcmp(t, "name"))
        return json_pack("{s:s, s:i, s:i}", "type", "string", "minLength", 1, "maxLength", 200);
    if (!strcmp(t, "description"))
        return json_pack("{s:s, s:i}", "type", "string", "maxLength", 10000);
    if (!strcmp(t, "int"))
        return json_pack("{s:s}", "type", "integer");
    if (!strcmp(t, "object"))
        return json_pack("{s:s}", "type", "object");
    if (!strcmp(t, "bool"))
        return json_pack("{s:s}", "type", "boolean");
    if (!strcmp(t, "fraction"))
        return json_pack("{s:s, s:i, s:i}", "type", "number", "minimum", 0, "maximum", 1);
    if (!strncmp(t, "ref(", 4))
        return ref(inner);
    if (!strncmp(t, "list(", 5))
        return json_pack("{s:s, s:o}", "type", "array", "items", ref(inner));
    if (!strncmp(t, "enum(", 5)) {
        json_t *vals = json_array();
        for (char *save = NULL, *v = strtok_r(inner, "|", &save); v; v = strtok_r(NULL, "|", &save))
            json_array_append_new(vals, json_string(v));
        return json_pack("{s:s, s:o}", "type", "string", "enum", vals);
    }
    return json_pack("{s:s}", "type", "string");
}

static json_t *nullable(json_t *s)
{
    json_t *type = json_object_get(s, "type");
    if (json_is_string(type) && !json_object_get(s, "$ref")) {
        json_object_set_new(s, "type", json_pack("[s, s]", json_string_value(type), "null"));
        json_t *e = json_object_get(s, "enum");
        if (e)
            json_array_append_new(e, json_null());
        return s;
    }
    return json_pack("{s:[o, {s:s}]}", "oneOf", s, "type", "null");
}

static json_t *object_schema(const struct schema_def *d)
{
    json_t *props = json_object(), *req = json_array();
    char buf[2048];
    snprintf(buf, sizeof(buf), "%s", d->props);
    for (char *save = NULL, *f = strtok_r(buf, " ", &save); f; f = strtok_r(NULL, " ", &save)) {
        int required = f[0] == '*';
        char *name = f + required, *colon = strchr(name, ':');
        if (!colon)
            continue;
        *colon = '\0';
        char *type = colon + 1;
        size_t tl = strlen(type);
        int null_ok = tl > 0 && type[tl - 1] == '?';
        if (null_ok)
            type[tl - 1] = '\0';
        json_t *s = type_schema(type);
        json_object_set_new(props, name, null_ok ? nullable(s) : s);
        if (required)
            json_array_append_new(req, json_string(name));
    }
    json_t *o = json_pack("{s:s, s:s, s:o}", "type", "object", "description", d->description,
                          "properties", props);
    if (json_array_size(req))
        json_object_set_new(o, "required", req);
    else
        json_decref(req);
    return o;
}

static json_t *components(void)
{
    json_t *s = json_object();
    for (size_t i = 0; i < sizeof(schemas) / sizeof(schemas[0]); i++)
        json_object_set_new(s, schemas[i].name, object_schema(&schemas[i]));
    for (size_t i = 0; i < sizeof(listed) / sizeof(listed[0]); i++) {
        char name[64];
        snprintf(name, sizeof(name), "%sList", listed[i]);
        json_object_set_new(s, name,
                            json_pack("{s:s, s:s, s:[s, s], s:{s:{s:s, s:o}, s:{s:[s, s], s:s}}}",
                                      "type", "object", "description", "One page, newest first.",
                                      "required", "data", "next_cursor", "properties", "data",
                                      "type", "array", "items", ref(listed[i]), "next_cursor",
                                      "type", "string", "null", "description",
                                      "pass as ?cursor= for the next page; null on the last"));
    }
    json_t *codes = json_array();
    for (size_t i = 0; i < sizeof(problem_codes) / sizeof(problem_codes[0]); i++)
        json_array_append_new(codes, json_string(problem_codes[i]));
    json_object_set_new(
        s, "Problem",
        json_pack("{s:s, s:s, s:[s, s, s, s, s], s:{s:{s:s, s:s}, s:{s:s}, s:{s:s}, s:{s:s}, "
                  "s:{s:s, s:o}}}",
                  "type", "object", "description",
                  "RFC 9457 problem details; code is stable, detail is for humans and never "
                  "holds SQL, stack traces or another tenant's data.",
                  "required", "type", "title", "status", "detail", "code", "properties", "type",
                  "type", "string", "format", "uri", "title", "type", "string", "status", "type",
                  "integer", "detail", "type", "string", "code", "type", "string", "enum", codes));
    return json_pack(
        "{s:o, s:{s:{s:s, s:s, s:s, s:s}, s:{s:s, s:s, s:s}, s:{s:s, s:s, s:s}}, "
        "s:{s:{s:s, s:s, s:b, s:s, s:{s:s}}}}",
        "schemas", s, "securitySchemes", "userToken", "type", "http", "scheme", "bearer",
        "bearerFormat", "JWT", "description",
        "token from POST /auth/login or POST /signup; valid only for the tenant in its tid",
        "adminToken", "type", "http", "scheme", "bearer", "description",
        "the platform operator's token (TENANTD_ADMIN_TOKEN)", "metricsToken", "type", "http",
        "scheme", "bearer", "description",
        "the scraper's token (TENANTD_METRICS_TOKEN); TENANTD_METRICS_LISTEN serves /metrics "
        "without one",
        "parameters", "TenantId", "name", "X-Tenant-ID", "in", "header", "required", 0,
        "description",
        "the tenant's id or slug; alternatives: the /t/{slug} path prefix, the subdomain "
        "(TENANTD_BASE_DOMAIN) or the token's tid. All that are given must agree.",
        "schema", "type", "string");
}

/* ---- operations ------------------------------------------------------------------------ */

struct op_desc {
    const char *method, *path, *tag, *summary;
    const char *request;  /* schema name, "ndjson", or NULL */
    int status;           /* success status */
    const char *response; /* schema name, "ndjson", "text", or NULL (no body) */
    const char *errors;   /* problem codes besides those implied by the route kind */
    const char *query;    /* query parameters: limit, cursor, confirm, slug */
};

static const struct op_desc ops[] = {
    {"GET", "/health", "ops", "The process is alive", NULL, 200, "Status", "", NULL},
    {"GET", "/ready", "ops", "The database answers and migrations are applied", NULL, 200, "Status",
     "unavailable", NULL},
    {"GET", "/metrics", "ops", "Prometheus metrics (text format 0.0.4)", NULL, 200, "text", "",
     NULL},
    {"GET", "/openapi.json", "ops", "This document", NULL, 200, "object", "", NULL},
    {"POST", "/signup", "auth", "Create a tenant (plan free) and its owner", "Signup", 201,
     "SignupResult", "conflict unavailable", NULL},
    {"POST", "/auth/login", "auth", "Exchange email and password for a token", "Login", 200,
     "LoginResult", "", NULL},
    {"GET", "/me", "users", "The user of the token", NULL, 200, "User", "", NULL},
    {"GET", "/users", "users", "List users", NULL, 200, "UserList", "bad_request", "limit cursor"},
    {"POST", "/users", "users", "Create a user (owner, admin; only an owner makes an owner)",
     "UserCreate", 201, "User", "forbidden conflict quota_exceeded", NULL},
    {"GET", "/users/{id}", "users", "One user", NULL, 200, "User", "not_found", NULL},
    {"PATCH", "/users/{id}", "users",
     "Change a user (owner, admin; anyone their own name and "
     "password)",
     "UserPatch", 200, "User", "forbidden conflict not_found", NULL},
    {"DELETE", "/users/{id}", "users", "Remove a user (never the last owner)", NULL, 204, NULL,
     "forbidden conflict not_found", NULL},
    {"GET", "/audit-logs", "audit", "Every write in the tenant (owner, admin)", NULL, 200,
     "AuditEntryList", "forbidden bad_request", "limit cursor"},
    {"POST", "/admin/tenants", "admin", "Create and provision a tenant", "TenantCreate", 201,
     "TenantCreated", "conflict", NULL},
    {"POST", "/admin/tenants/import", "admin", "Import an export as a new tenant", "ndjson", 201,
     "Tenant", "bad_request conflict", "slug"},
    {"GET", "/admin/tenants", "admin", "List tenants: search, filter, sort", NULL, 200,
     "TenantList", "bad_request", "limit cursor q plan status isolation server sort"},
    {"GET", "/admin/tenants/{id}", "admin", "One tenant with its usage", NULL, 200,
     "TenantWithUsage", "tenant_not_found", NULL},
    {"PATCH", "/admin/tenants/{id}", "admin", "Change name, plan, status or subscription",
     "TenantPatch", 200, "Tenant", "tenant_not_found", NULL},
    {"DELETE", "/admin/tenants/{id}", "admin", "Delete a tenant and drop its storage", NULL, 204,
     NULL, "bad_request tenant_not_found", "confirm"},
    {"POST", "/admin/tenants/{id}/move", "admin", "Move a tenant to another isolation or server",
     "TenantMove", 200, "Tenant", "tenant_not_found", NULL},
    {"POST", "/admin/tenants/{id}/hibernate", "admin",
     "Hibernate a database tenant: its database refuses connections until the next request", NULL,
     200, "TenantSleep", "tenant_not_found conflict", NULL},
    {"POST", "/admin/tenants/{id}/wake", "admin", "Wake a hibernated database tenant", NULL, 200,
     "TenantSleep", "tenant_not_found conflict", NULL},
    {"GET", "/admin/tenants/{id}/export", "admin", "Every row of a tenant as NDJSON", NULL, 200,
     "ndjson", "tenant_not_found", NULL},
    {"POST", "/admin/tenants/{id}/restore", "admin",
     "Restore a tenant (also a deleted one) to a past moment, in place or as a new tenant",
     "TenantRestore", 202, "Job", "bad_request tenant_not_found conflict", "confirm"},
    {"POST", "/admin/tenants/{id}/clone", "admin", "Copy a tenant as of now under a new slug",
     "TenantClone", 202, "Job", "tenant_not_found conflict", NULL},
    {"GET", "/admin/jobs/{id}", "admin", "A background job's status, progress and outcome", NULL,
     200, "Job", "not_found", NULL},
    {"GET", "/admin/migrations", "admin", "Schema versions: catalog and every tenant", NULL, 200,
     "Migrations", "", NULL},
    {"GET", "/admin/analytics", "admin", "Cross-tenant figures from the catalog", NULL, 200,
     "Analytics", "bad_request", "limit"},
    {"GET", "/admin/tenants/{id}/users", "admin", "A tenant's users", NULL, 200, "UserList",
     "bad_request tenant_not_found", "limit cursor"},
    {"GET", "/admin/tenants/{id}/audit-logs", "admin", "A tenant's audit log", NULL, 200,
     "AuditEntryList", "bad_request tenant_not_found", "limit cursor"},
    {"GET", "/admin/tenants/{id}/usage", "admin", "A tenant's API calls per day this month", NULL,
     200, "object", "tenant_not_found", NULL},
    {"GET", "/admin/tenants/{id}/migration", "admin", "A tenant's schema version and last error",
     NULL, 200, "object", "tenant_not_found", NULL},
    {"GET", "/admin/servers", "admin", "Each server's pool against the budget", NULL, 200, "object",
     "", NULL},
    {"GET", "/admin/live", "admin", "Requests per second, p99 and errors, fleet and top tenants",
     NULL, 200, "object", "", "seconds"},
    {"POST", "/console/session", "console", "Sign in: the operator token for a session cookie",
     "object", 201, "object", "unauthorized invalid_json validation_failed", NULL},
    {"GET", "/console/session", "console", "The session's CSRF token (204 without a session)", NULL,
     200, "object", "", NULL},
    {"DELETE", "/console/session", "console", "Sign out", NULL, 204, NULL, "", NULL},
    {"GET", "/console", "console", "The operator console", NULL, 200, "html", "", NULL},
    {"GET", "/console/{file}", "console", "The console's scripts and styles", NULL, 200, "html",
     "not_found", NULL},
};

#define NOPS (sizeof(ops) / sizeof(ops[0]))

size_t api_openapi_described_count(void)
{
    return NOPS;
}

void api_openapi_described(size_t i, const char **method, const char **path)
{
    *method = ops[i].method;
    *path = ops[i].path;
}

static const struct op_desc *find_op(const char *method, const char *path)
{
    for (size_t i = 0; i < NOPS; i++)
        if (!strcmp(ops[i].method, method) && !strcmp(ops[i].path, path))
            return &ops[i];
    return NULL;
}

static json_t *content(const char *what)
{
    if (!strcmp(what, "ndjson"))
        return json_pack("{s:{s:{s:s}}}", "application/x-ndjson", "schema", "type", "string");
    if (!strcmp(what, "text"))
        return json_pack("{s:{s:{s:s}}}", "text/plain; version=0.0.4", "schema", "type", "string");
    if (!strcmp(what, "object"))
        return json_pack("{s:{s:{s:s}}}", "application/json", "schema", "type", "object");
    if (!strcmp(what, "html"))
        return json_pack("{s:{s:{s:s}}}", "text/html", "schema", "type", "string");
    return json_pack("{s:{s:o}}", "application/json", "schema", ref(what));
}

/* Add code to the problem response of its status in responses. */
static void add_problem(json_t *responses, const char *code)
{
    static const struct {
        const char *code;
        int status;
    } st[] = {{"invalid_json", 400},    {"validation_failed", 400}, {"bad_request", 400},
              {"tenant_required", 400}, {"unauthorized", 401},      {"subscription_expired", 402},
              {"forbidden", 403},       {"tenant_mismatch", 403},   {"tenant_suspended", 403},
              {"quota_exceeded", 403},  {"not_found", 404},         {"tenant_not_found", 404},
              {"conflict", 409},        {"payload_too_large", 413}, {"rate_limited", 429},
              {"unavailable", 503}};
    int status = 0;
    for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++)
        if (!strcmp(st[i].code, code))
            status = st[i].status;
    if (!status)
        return;
    char key[8];
    snprintf(key, sizeof(key), "%d", status);
    json_t *r = json_object_get(responses, key);
    if (!r) {
        r = json_pack("{s:s, s:{s:{s:o}}, s:[]}", "description", "problem codes:", "content",
                      "application/problem+json", "schema", ref("Problem"), "x-problem-codes");
        json_object_set_new(responses, key, r);
    }
    json_t *codes = json_object_get(r, "x-problem-codes");
    for (size_t i = 0; i < json_array_size(codes); i++)
        if (!strcmp(json_string_value(json_array_get(codes, i)), code))
            return;
    json_array_append_new(codes, json_string(code));
    char *d = td_xasprintf("%s %s", json_string_value(json_object_get(r, "description")), code);
    json_object_set_new(r, "description", json_string(d));
    free(d);
}

static void add_codes(json_t *responses, const char *list)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", list);
    for (char *save = NULL, *c = strtok_r(buf, " ", &save); c; c = strtok_r(NULL, " ", &save))
        add_problem(responses, c);
}

static json_t *parameters(const struct http_route *r, const struct op_desc *d)
{
    json_t *ps = json_array();
    int tenant = (r->flags & (HTTP_ROUTE_TENANT | HTTP_ROUTE_TENANT_ANON)) != 0;
    for (const char *p = strchr(r->pattern, '{'); p; p = strchr(p + 1, '{')) {
        const char *e = strchr(p, '}');
        char name[32];
        snprintf(name, sizeof(name), "%.*s", (int)(e - p - 1), p + 1);
        json_t *schema = tenant ? json_pack("{s:s, s:s}", "type", "string", "format", "uuid")
                                : json_pack("{s:s}", "type", "string");
        json_array_append_new(ps, json_pack("{s:s, s:s, s:b, s:s, s:o}", "name", name, "in", "path",
                                            "required", 1, "description",
                                            tenant ? "the row's id (a malformed id is 404)"
                                                   : "the tenant's id or slug",
                                            "schema", schema));
    }
    if (tenant)
        json_array_append_new(ps, json_pack("{s:s}", "$ref", "#/components/parameters/TenantId"));
    char buf[64];
    snprintf(buf, sizeof(buf), "%s", d->query ? d->query : "");
    for (char *save = NULL, *q = strtok_r(buf, " ", &save); q; q = strtok_r(NULL, " ", &save)) {
        json_t *s = !strcmp(q, "limit") ? json_pack("{s:s, s:i, s:i, s:i}", "type", "integer",
                                                    "minimum", 1, "maximum", 100, "default", 20)
                                        : json_pack("{s:s}", "type", "string");
        static const char *const descs[][2] = {
            {"limit", "page size"},
            {"cursor", "next_cursor of the previous page"},
            {"confirm", "the tenant's slug, to confirm"},
            {"slug", "slug of the new tenant (default: exported)"},
            {"q", "part of the slug or the name, any case"},
            {"plan", "only this plan"},
            {"status", "only active or only suspended"},
            {"isolation", "only this isolation"},
            {"server", "only tenants on this server"},
            {"sort", "created (newest first, the default) or api_calls (this month, most first)"},
            {"seconds", "the window, 10-299 seconds (default 299)"},
        };
        const char *desc = "";
        for (size_t k = 0; k < sizeof(descs) / sizeof(descs[0]); k++)
            if (!strcmp(q, descs[k][0]))
                desc = descs[k][1];
        json_array_append_new(ps, json_pack("{s:s, s:s, s:b, s:s, s:o}", "name", q, "in", "query",
                                            "required", !strcmp(q, "confirm"), "description", desc,
                                            "schema", s));
    }
    return ps;
}

static json_t *operation(const struct http_route *r, const struct op_desc *d)
{
    json_t *responses = json_object();
    char key[8];
    snprintf(key, sizeof(key), "%d", d->status);
    json_t *ok = json_pack("{s:s}", "description", d->status == 204 ? "done, no body" : "success");
    if (d->response)
        json_object_set_new(ok, "content", content(d->response));
    json_object_set_new(responses, key, ok);
    if (d->request)
        add_codes(responses, !strcmp(d->request, "ndjson")
                                 ? "payload_too_large"
                                 : "invalid_json validation_failed payload_too_large");
    if (r->flags & HTTP_ROUTE_TENANT)
        add_codes(responses, "tenant_required unauthorized subscription_expired tenant_mismatch "
                             "tenant_suspended tenant_not_found rate_limited unavailable");
    if (r->flags & HTTP_ROUTE_TENANT_ANON)
        add_codes(responses, "tenant_required unauthorized subscription_expired tenant_mismatch "
                             "tenant_suspended tenant_not_found unavailable");
    if (r->flags & HTTP_ROUTE_ADMIN)
        add_codes(responses, "unauthorized unavailable");
    if (r->flags & HTTP_ROUTE_METRICS)
        add_codes(responses, "unauthorized");
    add_codes(responses, d->errors);

    char opid[128];
    size_t n = (size_t)snprintf(opid, sizeof(opid), "%s", r->method);
    for (size_t i = 1; i < n; i++)
        opid[i] = (char)(opid[i] | 0x20); /* Get, Post ... */
    for (const char *p = r->pattern; *p && n + 2 < sizeof(opid); p++)
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))
            opid[n++] =
                (p > r->pattern && (p[-1] == '/' || p[-1] == '-' || p[-1] == '{' || p[-1] == '.'))
                    ? (char)(*p & ~0x20)
                    : *p;
    opid[n] = '\0';

    json_t *op =
        json_pack("{s:s, s:s, s:[s], s:o, s:o}", "operationId", opid, "summary", d->summary, "tags",
                  d->tag, "parameters", parameters(r, d), "responses", responses);
    if (r->flags & HTTP_ROUTE_TENANT)
        json_object_set_new(op, "security", json_pack("[{s:[]}]", "userToken"));
    else if (r->flags & HTTP_ROUTE_ADMIN)
        json_object_set_new(op, "security", json_pack("[{s:[]}]", "adminToken"));
    else if (r->flags & HTTP_ROUTE_METRICS)
        json_object_set_new(op, "security",
                            json_pack("[{s:[]}, {s:[]}]", "adminToken", "metricsToken"));
    else
        json_object_set_new(op, "security", json_array());
    if (r->flags & (HTTP_ROUTE_TENANT | HTTP_ROUTE_TENANT_ANON))
        json_object_set_new(op, "x-tenant-route", json_true());
    if (d->request)
        json_object_set_new(op, "requestBody",
                            json_pack("{s:b, s:o}", "required", 1, "content", content(d->request)));
    return op;
}

json_t *api_openapi_build(void)
{
    size_t n;
    const struct http_route *routes = api_routes(&n);
    json_t *paths = json_object();
    for (size_t i = 0; i < n; i++) {
        const struct op_desc *d = find_op(routes[i].method, routes[i].pattern);
        if (!d)
            continue;
        json_t *item = json_object_get(paths, routes[i].pattern);
        if (!item) {
            item = json_object();
            json_object_set_new(paths, routes[i].pattern, item);
        }
        char m[16];
        size_t k = 0;
        for (; routes[i].method[k] && k + 1 < sizeof(m); k++)
            m[k] = (char)(routes[i].method[k] | 0x20);
        m[k] = '\0';
        json_object_set_new(item, m, operation(&routes[i], d));
    }
    return json_pack(
        "{s:s, s:{s:s, s:s, s:s}, s:[{s:s}], s:[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s}, "
        "{s:s, s:s}, {s:s, s:s}], s:o, s:o}",
        "openapi", "3.1.0", "info", "title", "tenantd", "version", TD_VERSION, "description",
        "Multi-tenant SaaS backend. Tenant routes (x-tenant-route) name their tenant by the "
        "/t/{slug} path prefix, the X-Tenant-ID header, the subdomain or the token's tid; "
        "they are listed without the prefix. Errors are application/problem+json.",
        "servers", "url", "/", "tags", "name", "auth", "description", "signup and login", "name",
        "users", "description", "a tenant's users (roles owner > admin > member)", "name",
        "projects", "description", "a tenant's projects", "name", "audit", "description",
        "a tenant's audit log", "name", "admin", "description", "the platform operator", "name",
        "ops", "description", "probes, metrics, this document", "paths", paths, "components",
        components());
}
