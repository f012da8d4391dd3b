/*
 * router.h - method + path to a route, with {param} segments. The table is static data
 * owned by the caller (src/api/routes.c); matching copies the {param} segments and the
 * /t/{slug} prefix into the request's arena, and allocates nothing else.
 */
#ifndef TD_HTTP_ROUTER_H
#define TD_HTTP_ROUTER_H

#include "http/request.h"

#include <stddef.h>

enum http_route_flag {
    HTTP_ROUTE_PUBLIC = 0,
    HTTP_ROUTE_TENANT = 1 << 0,      /* needs a tenant and a user token of that tenant */
    HTTP_ROUTE_ADMIN = 1 << 1,       /* needs the operator token */
    HTTP_ROUTE_TENANT_ANON = 1 << 2, /* needs a tenant, no token (login) */
    HTTP_ROUTE_SLOW = 1 << 3,        /* CPU-heavy or long: runs on a worker, not a loop */
    HTTP_ROUTE_STREAM = 1 << 4,      /* body of any size, spooled to a file (operator only) */
    HTTP_ROUTE_METRICS = 1 << 5,     /* needs the operator token or the metrics token */
};

struct http_route {
    const char *method;
    const char *pattern; /* "/projects/{id}" */
    int flags;
    int (*handler)(struct http_req *req);
};

/*
 * Find the route for method and path. On a match returns it and fills params[] with
 * pointers into arena copies of the segments. Returns NULL when nothing matches; then
 * *path_known is 1 when some route has this path with another method.
 */
const struct http_route *http_router_match(const struct http_route *routes, size_t n,
                                           const char *method, const char *path,
                                           struct td_arena *arena, const char **params,
                                           int *nparams, int *path_known);

/* Split "/t/{slug}/rest" into slug and "/rest"; returns 1 when the prefix was there. */
int http_router_split_tenant(const char *url, struct td_arena *arena, const char **slug,
                             const char **rest);

#endif
