/*
 * server.h - the HTTP/1.1 server on libmicrohttpd: one thread per connection, bodies
 * capped at HTTP_MAX_BODY, a 30 s idle timeout, graceful stop.
 */
#ifndef TD_HTTP_SERVER_H
#define TD_HTTP_SERVER_H

#include "http/request.h"

struct http_server;

/*
 * Listen on "host:port" and call dispatch(req) for each complete request; threads 0 means
 * one thread per connection, N an epoll loop on each of N threads. dispatch must
 * queue a response (http_reply* or http_problem_send). done(req), if not NULL, runs
 * after the response is queued (access log). Returns 0 or TD_EUNAVAILABLE.
 */
int http_server_start(const char *listen, int threads, struct td_app *app,
                      int (*dispatch)(struct http_req *), void (*done)(struct http_req *),
                      struct http_server **out) TD_MUSTCHECK;
/* Stop accepting, give in-flight requests up to grace_s seconds, then close everything. */
void http_server_stop(struct http_server *s, int grace_s);
/* Requests being served right now. */
int http_server_active(const struct http_server *s);

#endif
