/*
 * server.h - the HTTP/1.1 server on libmicrohttpd: a few epoll event loops (loop.h), workers for
 * slow routes, bodies capped at HTTP_MAX_BODY, header blocks at HTTP_MAX_HEADERS, a 30 s
 * idle timeout, graceful stop, CORS, and Cache-Control: no-store on authenticated answers.
 */
#ifndef TD_HTTP_SERVER_H
#define TD_HTTP_SERVER_H

#include "http/loop.h"
#include "http/request.h"

struct http_server;

struct http_server_opts {
    const char *listen; /* "host:port" */
    int threads;        /* event-loop threads (epoll), each serving many connections */
    int workers;        /* threads for routes slow() picks; 0: everything on the loops */
    /* dispatch(req) must queue a response (http_reply* or http_problem_send) */
    int (*dispatch)(struct http_req *);
    /* 1 when req (its route) should run on a worker; may be NULL */
    int (*slow)(struct http_req *);
    /* 1 when req's body, of any size, goes to a temporary file (req->body_file) instead of
     * memory and the HTTP_MAX_BODY limit; asked once the headers are in; may be NULL */
    int (*spool)(struct http_req *);
    /* runs after the response is queued (access log); may be NULL */
    void (*done)(struct http_req *);
    /* called on each loop's thread when it starts and when it stops (http/loop.h); may be
     * NULL */
    void (*loop_start)(struct http_loop *);
    void (*loop_stop)(struct http_loop *);
    /* the tenant a request is for, as far as can be told before dispatch (key into out,
     * returns 1), for admission: one tenant runs on at most tenant_share percent of the
     * loops at once, its other requests wait parked, so another tenant's request never
     * queues behind a flood (0 or 100: no limit); may be NULL */
    int (*tenant_key)(struct http_req *, char *out, size_t cap);
    int tenant_share;
    /* exact origins allowed by CORS, comma-separated; NULL: no CORS headers */
    const char *cors_origins;
    /* reverse proxies whose X-Forwarded-For names the client (http/proxy.h); NULL: none */
    const char *trusted_proxies;
};

/*
 * Listen and call dispatch(req) for each complete request: on the event loop that read
 * it, or, when slow(req) says so, on a worker thread while the connection is suspended
 * (so that a password hash does not stall the loop's other connections). Returns 0 or
 * TD_EUNAVAILABLE.
 */
int http_server_start(const struct http_server_opts *o, struct td_app *app,
                      struct http_server **out) TD_MUSTCHECK;
/* Stop accepting, give in-flight requests up to grace_s seconds, then close everything. */
void http_server_stop(struct http_server *s, int grace_s);
/* Requests being served right now. */
int http_server_active(const struct http_server *s);

#endif
