/*
 * internal.h - helpers shared by the handlers of src/api only.
 */
#ifndef TD_API_INTERNAL_H
#define TD_API_INTERNAL_H

#include "db/sqljson.h"
#include "http/request.h"
#include "tenant/provision.h"

#include <jansson.h>

/* A user as the API shows it (never the password hash), built by PostgreSQL. */
#define USER_JSON(a)                                                                               \
    DB_SQL_OBJECT(a ".id, " a ".email, " a ".name, " a                                             \
                    ".role, " DB_SQL_TS(a ".created_at") " AS created_at")

/* The one way a handler or the guard refuses: detail (static or in req->arena) goes on the
 * request and err comes back, for api_dispatch to write as problem+json. A NULL detail
 * keeps one set deeper down (api_tenant_exec), else the problem says the code's title.
 * `return api_fail(req, TD_ECONFLICT, "this slug is taken");` */
static inline int api_fail(struct http_req *req, int err, const char *detail)
{
    if (detail)
        req->detail = detail;
    return err;
}

/* Tie a tenant reference to the request: released when the request's arena is freed. */
void api_hold_tenant(struct http_req *req, struct tnt_tenant *t);

/* The tenant named by an operator route's {id} parameter (id or slug), held by the
 * request. Returns 0, TD_ETENANT_NOTFOUND or TD_EUNAVAILABLE. */
int api_admin_find_tenant(struct http_req *req, struct tnt_tenant **out) TD_MUSTCHECK;

/* Validate a {email,password,name} object into owner (strings borrowed from obj).
 * Returns 0 or TD_EVALIDATION with *detail set. */
int api_owner_fields(struct http_req *req, json_t *obj, struct tnt_owner *owner,
                     const char **detail) TD_MUSTCHECK;

#endif
