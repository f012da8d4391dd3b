/*
 * loop.h - the server's event loops: each is a thread of ours with its own epoll set, its own
 * libmicrohttpd daemon (external mode) and any other file descriptors a module watches on it
 * (e.g. PostgreSQL sockets), so that a request can wait on PostgreSQL without blocking the loop.
 * Everything registered on a loop is called on that loop's thread only.
 */
#ifndef TD_HTTP_LOOP_H
#define TD_HTTP_LOOP_H

#include "core/err.h"

struct http_loop;
struct http_req;
struct td_app;

typedef void (*http_fd_cb)(struct http_loop *loop, int fd, unsigned events, void *arg);
typedef void (*http_loop_fn)(struct http_loop *loop, void *arg);

#define HTTP_LOOP_SLOTS 4

/* Watch fd for events (EPOLLIN / EPOLLOUT bits, EPOLLET allowed); cb runs on the loop's
 * thread with the ready bits. The caller keeps fd open until http_loop_unwatch. Loop thread
 * only. 0, TD_ECONFLICT (fd already watched) or TD_EINTERNAL (epoll_ctl failed). */
int http_loop_watch(struct http_loop *l, int fd, unsigned events, http_fd_cb cb, void *arg);
/* Change the events of a watched fd. Loop thread only. 0, TD_ENOTFOUND or TD_EINTERNAL. */
int http_loop_modify(struct http_loop *l, int fd, unsigned events);
/* Stop watching fd (before closing it); an event already read for it is not delivered. Loop
 * thread only. */
void http_loop_unwatch(struct http_loop *l, int fd);
/* fn runs once at the end of every loop iteration, after every ready event of that
 * iteration was handled (the point to flush what the iteration queued: one write for
 * many requests). At most HTTP_LOOP_SLOTS per loop: 0 or TD_ECONFLICT. Loop thread only. */
int http_loop_on_flush(struct http_loop *l, http_loop_fn fn, void *arg);
/* Per-loop module data: slot 0 belongs to db (its pipelines), others unused for now. The
 * owner frees it in its loop_stop callback. */
void *http_loop_data(struct http_loop *l, int slot);
void http_loop_set_data(struct http_loop *l, int slot, void *data);
/* Run fn on l's thread soon, in the order posted (thread-safe; an eventfd wakes the loop).
 * A post that arrives after the loop stopped is not run. 0 or TD_EUNAVAILABLE (stopped). */
int http_loop_post(struct http_loop *l, http_loop_fn fn, void *arg);
/* Called once on each loop's thread when it starts (setup of per-loop data, e.g. open the
 * pipelines) and when it stops (teardown); set in http_server_opts.loop_start/loop_stop.
 * loop_stop runs before the loop's connections close: it must answer and resume every request
 * it deferred (the server answers 503 for any still deferred after it). */

/* The application the server of l serves (what http_server_start was given), for a
 * module's loop_start that opens per-loop resources. Any thread. */
struct td_app *http_loop_app(struct http_loop *l);

/* The loop that is serving req, when called on that loop's thread (NULL on a worker thread). */
struct http_loop *http_req_loop(struct http_req *req);

/* A handler that started asynchronous work calls http_req_defer(req) and returns 0
 * without answering; the connection is suspended. Later, on the same loop's thread, the
 * continuation answers (http_reply_* / http_problem_send as usual) and calls
 * http_req_resume(req), after which the server queues the answer and runs done().
 * If the client goes away meanwhile, http_req_gone(req) is 1 and the continuation must
 * still call http_req_resume(req) exactly once (the server frees the request then).
 * A continuation that resumes without an answer gets a 500. Loop thread only. */
void http_req_defer(struct http_req *req);
void http_req_resume(struct http_req *req);
int http_req_gone(const struct http_req *req);

#endif
