/*
 * api.h - what the HTTP server and the startup code call in src/api: the dispatcher,
 * the route table and the access log. The handlers themselves stay in handlers.h.
 */
#ifndef TD_API_API_H
#define TD_API_API_H

#include "http/request.h"

#include <stddef.h>

/* Route, guard and answer one request (the http server's dispatch callback). */
int api_dispatch(struct http_req *req);
/* The metrics address's dispatch: GET /metrics without a token, 404 for any other path. */
int api_dispatch_metrics(struct http_req *req);
/* 1 when req's route is marked HTTP_ROUTE_SLOW (run on an HTTP worker, not a loop). */
int api_slow_route(struct http_req *req);
/* 1 when req's route is marked HTTP_ROUTE_STREAM and req carries the operator token: its
 * body is then spooled to a file, of any size (an anonymous client cannot fill the disk). */
int api_spool_route(struct http_req *req);
/* 1 when req carries the operator token (the guard still answers for the route). */
int api_is_operator(struct http_req *req);
/* The tenant req names (token's tid, else /t/{slug} or X-Tenant-ID) into out, for the
 * server's per-tenant admission; 0 when it names none. Nothing is checked beyond the
 * token: the guard still decides. */
int api_tenant_key(struct http_req *req, char *out, size_t cap);
/* The route table (for OpenAPI and its test). */
struct http_route;
const struct http_route *api_routes(size_t *n);
/* Access log line, after the response is queued. */
void api_log_request(struct http_req *req);
/* access_log.c: req's line on standard output; on an event loop whose access_log_loop_start
 * ran, buffered until the loop's iteration ends. */
void api_access_log(const struct http_req *req, long long duration_us);
struct http_loop;
void api_access_log_loop_start(struct http_loop *l);
void api_access_log_loop_stop(struct http_loop *l);

#endif
