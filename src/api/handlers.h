/*
 * handlers.h - the route handlers (the .c files of src/api) and the guard they run behind.
 * Each handler queues exactly one response, or returns a negative TD_E* code, with its
 * reason in req->detail (api_fail, internal.h), that api_dispatch turns into the problem
 * response: no handler writes problem+json itself.
 */
#ifndef TD_API_HANDLERS_H
#define TD_API_HANDLERS_H

#include "http/request.h"

/* guard.c: admin token, tenant identification, user token, status, API budget. Returns 0
 * to go on to the handler, or a TD_E* code with req->detail (nothing queued). */
int api_guard(struct http_req *req) TD_MUSTCHECK;

/* restore.c */
int api_admin_tenants_restore(struct http_req *req);
int api_admin_tenants_clone(struct http_req *req);
int api_admin_jobs_get(struct http_req *req);

/* health.c */
int api_health(struct http_req *req);
int api_ready(struct http_req *req);

/* auth.c */
int api_signup(struct http_req *req);
int api_login(struct http_req *req);
int api_me(struct http_req *req);

/* resources.c: the served tenant tables (projects among them) */
struct http_route;
int api_resource_list(struct http_req *req);
int api_resource_get(struct http_req *req);
int api_resource_create(struct http_req *req);
int api_resource_update(struct http_req *req);
int api_resource_delete(struct http_req *req);
/* The resource route of req's path when it names a served table (params filled), else NULL;
 * *path_known is 1 when the table is served but not with this method. */
const struct http_route *api_resource_match(struct http_req *req, int *path_known);
/* The resource routes (patterns /{t} and /{t}/{id}): the metrics label them by pattern. */
const struct http_route *api_resource_routes(size_t *n);

/* users.c */
int api_users_list(struct http_req *req);
int api_users_get(struct http_req *req);
int api_users_create(struct http_req *req);
int api_users_update(struct http_req *req);
int api_users_delete(struct http_req *req);
int api_audit_list(struct http_req *req);

/* admin.c */
int api_admin_tenants_create(struct http_req *req);
int api_admin_tenants_list(struct http_req *req);
int api_admin_tenants_get(struct http_req *req);
int api_admin_tenants_update(struct http_req *req);
int api_admin_tenants_delete(struct http_req *req);
int api_admin_tenants_hibernate(struct http_req *req);
int api_admin_tenants_wake(struct http_req *req);

/* transfer.c (move, export, import) */
int api_admin_tenants_move(struct http_req *req);
int api_admin_tenants_export(struct http_req *req);
int api_admin_tenants_import(struct http_req *req);

/* migrations.c */
int api_admin_migrations(struct http_req *req);

/* ops.c (metrics, OpenAPI, analytics) */
int api_metrics(struct http_req *req);
int api_openapi(struct http_req *req);
int api_admin_analytics(struct http_req *req);
/* Record one finished request in the metrics (called from the access log hook). */
void api_metrics_observe(struct http_req *req);

/* fleet.c: one tenant's users, audit log, API calls per day and migration state; pools */
int api_admin_tenant_users(struct http_req *req);
int api_admin_tenant_audit(struct http_req *req);
int api_admin_tenant_usage(struct http_req *req);
int api_admin_tenant_migration(struct http_req *req);
int api_admin_servers(struct http_req *req);

#endif
