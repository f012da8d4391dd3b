/*
 * request.h - one HTTP request as handlers see it, and the calls that answer it.
 *
 * A request owns an arena (req->arena) freed after the response is queued; every
 * string reached from the request lives at least that long. Each request is served
 * on one thread; nothing here is shared between requests.
 */
#ifndef TD_HTTP_REQUEST_H
#define TD_HTTP_REQUEST_H

#include "core/err.h"
#include "core/mem.h"

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#define HTTP_MAX_BODY (1024 * 1024)
#define HTTP_MAX_HEADERS (16 * 1024) /* request line and header fields, as sent */
#define HTTP_MAX_FIELDS 100          /* header fields of one request */
#define HTTP_MAX_PARAMS 4

struct MHD_Connection;
struct td_app;
struct tnt_tenant;

/* Claims of a verified user token. */
struct auth_claims {
    char sub[37];  /* user id */
    char tid[37];  /* tenant id */
    char role[8];  /* owner, admin, member */
    long long exp; /* unix seconds */
};

struct http_req {
    struct MHD_Connection *conn;
    struct td_app *app;
    struct td_arena *arena;
    const char *method;
    const char *url;       /* as received, without the query string */
    const char *path;      /* url without a /t/{slug} prefix */
    const char *path_slug; /* the {slug} of /t/{slug}/..., or NULL */
    char *body;            /* NUL-terminated copy of the body; body_len excludes the NUL */
    size_t body_len;       /* of body, or of body_file */
    FILE *body_file;       /* instead of body for a spooled route (opts.spool), at offset 0 */
    int body_too_large;
    const char *params[HTTP_MAX_PARAMS]; /* {id} segments of the matched route */
    int nparams;
    char request_id[72];
    char client_ip[64];
    int route_flags;
    const char *route_pattern;
    const void *route; /* the route table entry once matched (params filled), else NULL */
    int route_known;   /* no match, but the path exists with another method */
    /* filled by the guard on tenant routes */
    struct tnt_tenant *tenant; /* +1 ref, released with the arena */
    struct auth_claims claims;
    int has_claims;    /* claims belong to this tenant route's verified token */
    int token_checked; /* the bearer token verified once: 1 valid (claims), -1 not, 0 not yet */
    /* a refusal: the handler's or the guard's reason for the TD_E* code it returns, written
     * by the dispatcher as the problem's detail (NULL: the code's title) */
    const char *detail;
    /* response bookkeeping */
    int status;
    int err; /* TD_E* code of a problem response (http_problem_send), else 0 */
    size_t bytes_out;
    int responded;
    long long started_us;
};

/* Value of a request header (case-insensitive), or NULL. */
const char *http_header(struct http_req *req, const char *name);
/* Value of a query-string argument, or NULL. */
const char *http_query(struct http_req *req, const char *name);
/* Every query-string argument in order (arena arrays; a value-less key gives ""). Returns
 * how many, or -1 past HTTP_MAX_QUERY_ARGS. */
#define HTTP_MAX_QUERY_ARGS 64
int http_query_all(struct http_req *req, const char *const **keys, const char *const **vals);

/* Queue a response whose body is copied. Returns 0 or TD_EINTERNAL. */
int http_reply(struct http_req *req, int status, const char *content_type, const char *body,
               size_t len);
/* Queue a JSON text produced elsewhere (e.g. by PostgreSQL), relayed as is. */
int http_reply_json_text(struct http_req *req, int status, const char *json, size_t len);
/* Serialise and queue a jansson value; steals the reference to v. */
int http_reply_json(struct http_req *req, int status, json_t *v);
/*
 * Queue a response whose body is pulled, chunked, from pull(ctx, buf, max) on this
 * request's thread after the handler returns: it returns the bytes written (> 0), 0
 * at the end, or -1 to abort the connection (the client sees a truncated body).
 * cleanup(ctx) runs exactly once, when the response is done or abandoned (also when
 * queueing fails). Returns 0 or TD_EINTERNAL.
 */
int http_reply_stream(struct http_req *req, int status, const char *content_type,
                      long (*pull)(void *ctx, char *buf, size_t max), void (*cleanup)(void *ctx),
                      void *ctx);
/* 204 with no body. */
int http_reply_empty(struct http_req *req, int status);
/* Add a header to the response about to be queued (e.g. Retry-After), replacing one of
 * the same name; http_default_header adds it only when none was set. */
void http_set_header(struct http_req *req, const char *name, const char *value);
void http_default_header(struct http_req *req, const char *name, const char *value);

/* Parse the body as a JSON object. TD_EINVALID_JSON or TD_EVALIDATION (not an object). */
int http_body_object(struct http_req *req, json_t **out) TD_MUSTCHECK;

#endif
