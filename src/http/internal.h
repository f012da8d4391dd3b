/*
 * internal.h - what server.c needs of loop.c; not for use outside src/http.
 */
#ifndef TD_HTTP_INTERNAL_H
#define TD_HTTP_INTERNAL_H

#include "http/loop.h"

#include <stddef.h>

struct MHD_Connection;
struct MHD_Daemon;
struct http_req;
struct http_proxies;

/* req->request_id: the client's X-Request-Id when it is a sane token, else a fresh one. */
void http__request_id(struct http_req *req);
/* req->client_ip: the TCP peer, or the client it names in X-Forwarded-For when the peer is one
 * of proxies (may be NULL). */
void http__client_ip(struct http_req *req, struct http_proxies *proxies);
/* The header block as sent: request line (the query string's arguments approximated by their
 * decoded length) and every field; *fields gets how many header fields there are. */
size_t http__header_size(struct MHD_Connection *conn, const char *url, const char *method,
                         const char *version, int *fields);

/* Start a loop thread driving d (a daemon in external epoll mode, MHD_USE_ITC, which the loop
 * then owns): start(l, arg) runs first on the new thread; on http__loop_free, stop(l, arg) runs
 * on it, then the daemon is stopped there. 0 or TD_EUNAVAILABLE (nothing started; d is stopped). */
int http__loop_start(struct MHD_Daemon *d, http_loop_fn start, http_loop_fn stop, void *arg,
                     struct http_loop **out) TD_MUSTCHECK;
/* Run fn on l's thread and wait until it returned. Not from l's own thread. */
void http__loop_call(struct http_loop *l, http_loop_fn fn, void *arg);
/* Stop l (see http__loop_start), join its thread, free it. NULL is ignored. */
void http__loop_free(struct http_loop *l);
/* The daemon l drives, and the arg given to http__loop_start. */
struct MHD_Daemon *http__loop_daemon(struct http_loop *l);
void *http__loop_owner(struct http_loop *l);
/* A non-blocking socket listening on "host:port" (host: an IPv4 address, localhost, * or
 * empty), for every loop's daemon to accept from; the caller closes it. -1 (logged) on failure. */
int http__listen_open(const char *listen);
/* The loop whose thread is calling, or NULL. */
struct http_loop *http__loop_current(void);
/* The daemon has work this thread just gave it (a resumed connection): run it in this
 * iteration rather than after another wake-up. */
void http__loop_kick(struct http_loop *l);

#endif
