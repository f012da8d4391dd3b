/*
 * cors.h - CORS for browser front ends on other origins (SPEC §3): the list of exact
 * origins allowed (TENANTD_CORS_ORIGINS) and the headers a listed origin gets.
 */
#ifndef TD_HTTP_CORS_H
#define TD_HTTP_CORS_H

/* What a preflight answer allows; the same for every route. */
#define HTTP_CORS_ALLOW_METHODS "GET, POST, PATCH, DELETE, OPTIONS"
#define HTTP_CORS_ALLOW_HEADERS "Authorization, Content-Type, X-Tenant-ID, X-Request-Id"
#define HTTP_CORS_EXPOSE_HEADERS "X-Request-Id, Retry-After"
#define HTTP_CORS_MAX_AGE "600"

struct http_cors;

/* The origins of a comma-separated list ("https://app.example.com,http://localhost:3000");
 * NULL or "" gives NULL (no CORS). The caller frees it with http_cors_free. */
struct http_cors *http_cors_new(const char *origins);
void http_cors_free(struct http_cors *c);
/* 1 when origin is exactly one of c's origins (c may be NULL: 0). Thread-safe (read-only). */
int http_cors_allowed(const struct http_cors *c, const char *origin);

#endif
