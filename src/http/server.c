/*
 * server.c - libmicrohttpd glue: request lifecycle, body accumulation, responses, requests
 * deferred on their loop, and the start and graceful stop of the loops (loop.c).
 */
#include "http/server.h"

#include "core/clock.h"
#include "core/hash.h"
#include "core/htab.h"
#include "core/log.h"
#include "http/cors.h"
#include "http/gate.h"
#include "http/internal.h"
#include "http/problem.h"
#include "http/proxy.h"
#include "http/router.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ctype.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_RESP_HEADERS 12
/* libmicrohttpd's memory per connection. It holds the header block (HTTP_MAX_HEADERS, 16
 * KiB, in a read buffer that starts at half of it) and some 64 bytes of bookkeeping per
 * field, and libmicrohttpd zeroes all of it after every request (twice: ~1 µs per 16 KiB),
 * so it is kept to what a 16 KiB block of up to HTTP_MAX_FIELDS fields needs. */
#define HTTP_CONN_MEMORY (32 * 1024)

#define GATE_KEY 80
/* A tenant stays in the gate this long after its last request left: a client that sends its
 * next request when it has an answer is still waiting in between (a round trip, plus the
 * scheduling delay of a busy machine), and the tenant that holds the loops must not grow
 * back into them in that gap. */
#define GATE_LINGER_US 5000

struct req_state;
struct http_server;
static void gate_drop(struct http_server *srv, struct req_state *st);

/* The server's part of one loop. */
struct loop_ctx {
    struct http_server *srv;
    struct http_loop *loop;
    struct req_state *waiting; /* deferred by their handler, not resumed yet */
};

struct http_server {
    struct loop_ctx *loops;
    int nloops;
    int listen_fd;
    struct td_app *app;
    int (*dispatch)(struct http_req *);
    int (*slow)(struct http_req *);
    int (*spool)(struct http_req *);
    void (*done)(struct http_req *);
    void (*loop_start)(struct http_loop *);
    void (*loop_stop)(struct http_loop *);
    atomic_int active; /* requests being served */
    atomic_int fresh;  /* connections accepted that have not yet delivered a request */
    /* slow requests: their connection is suspended while a worker runs the handler */
    pthread_mutex_t lock;
    pthread_cond_t more;
    struct req_state *head, *tail;
    int stopping;
    int nworkers;
    pthread_t *workers;
    /* per-tenant admission on the loops (gate.c); a parked request's connection is
     * suspended until the gate names it */
    int (*tenant_key)(struct http_req *, char *, size_t);
    pthread_mutex_t gate_lock;
    struct http_gate *gate;       /* NULL: no tenant share */
    struct http_cors *cors;       /* NULL: no CORS */
    struct http_proxies *proxies; /* NULL: the TCP peer is the client */
};

/* Per-connection state (MHD's socket context). */
struct conn_state {
    int fresh;
    struct http_loop *loop; /* the connection's, on whose thread everything here happens */
    int fd;
    int watched; /* fd is on loop's epoll set for the peer's hang-up (a request deferred) */
    int gone;    /* the peer hung up */
};

/* Per-request state that handlers do not see. */
struct req_state {
    struct http_req req;
    struct http_server *srv;
    size_t body_cap;
    const char *hdr_names[MAX_RESP_HEADERS];
    const char *hdr_values[MAX_RESP_HEADERS];
    int nhdrs;
    int offloaded;                 /* handed to a worker; its connection is suspended */
    int spooled, spool_failed;     /* body goes to req.body_file (opts.spool), not memory */
    struct http_gate_entry gate;   /* its place in srv->gate, parked or running */
    struct MHD_Response *deferred; /* the worker's answer, queued when MHD calls back */
    struct req_state *next;        /* worker queue */
    struct loop_ctx *lctx;         /* the loop that read it */
    struct conn_state *cs;
    int waiting;                     /* deferred by its handler (http_req_defer), not resumed */
    struct req_state *wprev, *wnext; /* lctx->waiting */
};

static void resume_posted(struct http_loop *l, void *arg)
{
    MHD_resume_connection(arg);
    http__loop_kick(l);
}

/* A daemon in external mode has no channel that wakes it: a connection is resumed on its own
 * loop's thread, to which another thread (a worker, a gate slot freed on another loop) posts
 * it. Every resume in this file goes through here, never MHD_resume_connection directly. */
static void conn_resume(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn_state *cs = ci ? ci->socket_context : NULL;
    struct http_loop *l = cs ? cs->loop : NULL;
    if (l && l != http__loop_current() && http_loop_post(l, resume_posted, c) == 0)
        return;
    MHD_resume_connection(c);
    if (l)
        http__loop_kick(l);
}

void http_set_header(struct http_req *req, const char *name, const char *value)
{
    struct req_state *st = (struct req_state *)req;
    for (int i = 0; i < st->nhdrs; i++)
        if (strcmp(st->hdr_names[i], name) == 0) {
            st->hdr_values[i] = td_arena_strdup(req->arena, value);
            return;
        }
    if (st->nhdrs == MAX_RESP_HEADERS)
        return;
    st->hdr_names[st->nhdrs] = name;
    st->hdr_values[st->nhdrs++] = td_arena_strdup(req->arena, value);
}

void http_default_header(struct http_req *req, const char *name, const char *value)
{
    struct req_state *st = (struct req_state *)req;
    for (int i = 0; i < st->nhdrs; i++)
        if (strcmp(st->hdr_names[i], name) == 0)
            return;
    http_set_header(req, name, value);
}

/* CORS headers: Vary on every answer once origins are configured (a cache must not hand
 * one origin's answer to another), the rest only for a listed origin. */
static void add_cors(struct http_req *req, struct MHD_Response *resp)
{
    struct http_cors *cors = ((struct req_state *)req)->srv->cors;
    if (!cors)
        return;
    MHD_add_response_header(resp, "Vary", "Origin");
    const char *origin = http_header(req, "Origin");
    if (!http_cors_allowed(cors, origin))
        return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
    MHD_add_response_header(resp, "Access-Control-Expose-Headers", HTTP_CORS_EXPOSE_HEADERS);
}

/* Add the common headers to resp, queue it and record the answer; consumes resp. */
static int queue(struct http_req *req, int status, const char *content_type,
                 struct MHD_Response *resp, size_t len)
{
    struct req_state *st = (struct req_state *)req;
    /* an answer to a request that proves who it is (a token or a session cookie) is that
     * client's alone, and so is one that hands out a session cookie; handlers that hand
     * out a token in the body set it themselves */
    int private = http_header(req, "Authorization") || http_header(req, "Cookie");
    for (int i = 0; i < st->nhdrs && !private; i++)
    private = strcasecmp(st->hdr_names[i], "Set-Cookie") == 0;
    if (private)
        http_default_header(req, "Cache-Control", "no-store");
    if (content_type)
        MHD_add_response_header(resp, "Content-Type", content_type);
    MHD_add_response_header(resp, "X-Request-Id", req->request_id);
    add_cors(req, resp);
    for (int i = 0; i < st->nhdrs; i++)
        MHD_add_response_header(resp, st->hdr_names[i], st->hdr_values[i]);
    req->responded = 1;
    req->status = status;
    req->bytes_out = len;
    if (st->offloaded) { /* on a worker: MHD takes it once the connection is resumed */
        st->deferred = resp;
        return 0;
    }
    enum MHD_Result r = MHD_queue_response(req->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return r == MHD_YES ? 0 : TD_EINTERNAL;
}

int http_reply(struct http_req *req, int status, const char *content_type, const char *body,
               size_t len)
{
    if (req->responded)
        return 0;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return TD_EINTERNAL;
    return queue(req, status, content_type, resp, len);
}

struct stream {
    long (*pull)(void *ctx, char *buf, size_t max);
    void (*cleanup)(void *ctx);
    void *ctx;
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct stream *s = cls;
    long n = s->pull(s->ctx, buf, max);
    if (n > 0)
        return (ssize_t)n;
    /* 0 would mean "nothing yet, ask again" to MHD */
    return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void stream_free(void *cls)
{
    struct stream *s = cls;
    s->cleanup(s->ctx);
    free(s);
}

int http_reply_stream(struct http_req *req, int status, const char *content_type,
                      long (*pull)(void *ctx, char *buf, size_t max), void (*cleanup)(void *ctx),
                      void *ctx)
{
    if (req->responded) {
        cleanup(ctx);
        return 0;
    }
    struct stream *s = td_xmalloc(sizeof(*s));
    s->pull = pull;
    s->cleanup = cleanup;
    s->ctx = ctx;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, stream_read, s, stream_free);
    if (!resp) {
        stream_free(s);
        return TD_EINTERNAL;
    }
    return queue(req, status, content_type, resp, 0);
}

static struct req_state *req_new(struct http_server *srv, struct MHD_Connection *conn,
                                 const char *url, const char *method)
{
    struct req_state *st = td_xcalloc(1, sizeof(*st));
    struct http_req *req = &st->req;
    st->srv = srv;
    req->conn = conn;
    req->app = srv->app;
    req->arena = td_arena_new();
    req->method = td_arena_strdup(req->arena, method);
    req->url = td_arena_strdup(req->arena, url);
    req->started_us = td_now_us();
    http_router_split_tenant(req->url, req->arena, &req->path_slug, &req->path);
    http__request_id(req);
    http__client_ip(req, srv->proxies);
    struct http_loop *l = http__loop_current();
    st->lctx = l ? http__loop_owner(l) : NULL;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    st->cs = ci ? ci->socket_context : NULL;
    atomic_fetch_add(&srv->active, 1);
    return st;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct http_server *srv = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        struct conn_state *cs = td_xcalloc(1, sizeof(*cs));
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        cs->fresh = 1;
        cs->loop = http__loop_current();
        cs->fd = ci ? ci->connect_fd : -1;
        atomic_fetch_add(&srv->fresh, 1);
        *socket_context = cs;
        return;
    }
    struct conn_state *cs = *socket_context;
    if (cs && cs->fresh)
        atomic_fetch_sub(&srv->fresh, 1);
    if (cs && cs->watched)
        http_loop_unwatch(cs->loop, cs->fd);
    free(cs);
    *socket_context = NULL;
}

/* The connection delivered its first request: it no longer holds up a graceful stop. */
static void conn_not_fresh(struct http_server *srv, struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn_state *cs = ci ? ci->socket_context : NULL;
    if (cs && cs->fresh) {
        cs->fresh = 0;
        atomic_fetch_sub(&srv->fresh, 1);
    }
}

static void waiting_unlink(struct req_state *st)
{
    if (st->wprev)
        st->wprev->wnext = st->wnext;
    else
        st->lctx->waiting = st->wnext;
    if (st->wnext)
        st->wnext->wprev = st->wprev;
    st->wprev = st->wnext = NULL;
    st->waiting = 0;
}

static void conn_hup(struct http_loop *l, int fd, unsigned events, void *arg)
{
    (void)l;
    (void)fd;
    (void)events;
    ((struct conn_state *)arg)->gone = 1;
}

void http_req_defer(struct http_req *req)
{
    struct req_state *st = (struct req_state *)req;
    struct loop_ctx *lc = st->lctx;
    if (!lc || http__loop_current() != lc->loop) {
        td_log_error("a request can only be deferred on its event loop");
        return; /* unanswered: the dispatcher's 500 */
    }
    st->waiting = 1;
    st->offloaded = 1; /* like a worker's, its answer is queued when MHD calls back */
    st->wnext = lc->waiting;
    if (lc->waiting)
        lc->waiting->wprev = st;
    lc->waiting = st;
    MHD_suspend_connection(req->conn);
    /* MHD does not look at a suspended connection: watch its hang-up ourselves, once per
     * connection, edge-triggered so that a half-closed peer does not wake the loop again */
    struct conn_state *cs = st->cs;
    if (cs && !cs->watched && cs->fd >= 0 &&
        http_loop_watch(cs->loop, cs->fd, EPOLLRDHUP | EPOLLET, conn_hup, cs) == 0)
        cs->watched = 1;
}

void http_req_resume(struct http_req *req)
{
    struct req_state *st = (struct req_state *)req;
    if (!st->waiting)
        return;
    waiting_unlink(st);
    if (!req->responded)
        http_problem_send(req, TD_EINTERNAL, NULL);
    conn_resume(req->conn);
}

int http_req_gone(const struct http_req *req)
{
    const struct req_state *st = (const struct req_state *)req;
    return st->cs && st->cs->gone;
}

struct td_app *http_loop_app(struct http_loop *l)
{
    struct loop_ctx *lc = http__loop_owner(l);
    return lc->srv->app;
}

struct http_loop *http_req_loop(struct http_req *req)
{
    struct req_state *st = (struct req_state *)req;
    struct http_loop *l = http__loop_current();
    return st->lctx && l == st->lctx->loop ? l : NULL;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    (void)toe;
    struct http_server *srv = cls;
    struct req_state *st = *con_cls;
    if (!st)
        return;
    gate_drop(srv, st);
    if (st->waiting)
        waiting_unlink(st);
    if (st->deferred)
        MHD_destroy_response(st->deferred);
    free(st->req.body);
    if (st->req.body_file)
        fclose(st->req.body_file);
    td_arena_free(st->req.arena);
    free(st);
    *con_cls = NULL;
    atomic_fetch_sub(&srv->active, 1);
}

static int append_body(struct req_state *st, const char *data, size_t n)
{
    struct http_req *req = &st->req;
    if (req->body_too_large || req->body_len + n > HTTP_MAX_BODY) {
        req->body_too_large = 1;
        return 0;
    }
    if (req->body_len + n + 1 > st->body_cap) {
        size_t cap = st->body_cap ? st->body_cap : 1024;
        while (cap < req->body_len + n + 1)
            cap *= 2;
        req->body = td_xrealloc(req->body, cap);
        st->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, n);
    req->body_len += n;
    req->body[req->body_len] = '\0';
    return 0;
}

/* A spooled body goes to an unlinked temporary file: memory stays flat and no size limit
 * applies (opts.spool admits only operator requests to streaming routes). */
static void spool_body(struct req_state *st, const char *data, size_t n)
{
    struct http_req *req = &st->req;
    if (st->spool_failed)
        return;
    if (!req->body_file && !(req->body_file = tmpfile())) {
        td_log_error("could not create a temporary file for a request body: %s", strerror(errno));
        st->spool_failed = 1;
        return;
    }
    if (fwrite(data, 1, n, req->body_file) != n) {
        td_log_error("could not spool a request body: %s", strerror(errno));
        st->spool_failed = 1;
        return;
    }
    req->body_len += n;
}

/* Resume the requests the gate named (linked through gate.next); after the lock is let go,
 * since a resumed request may run and end on another loop at once. */
static void gate_resume(struct http_gate_entry *e)
{
    while (e) {
        struct http_gate_entry *next = e->next;
        struct req_state *st = TD_CONTAINER_OF(e, struct req_state, gate);
        conn_resume(st->req.conn);
        e = next;
    }
}

/* Take a running slot for req's tenant, or park the request: returns 1 when parked (the
 * connection is then suspended until the gate hands it a slot). */
static int gate_enter(struct http_server *srv, struct req_state *st)
{
    char key[GATE_KEY];
    if (!srv->gate || !srv->tenant_key || !srv->tenant_key(&st->req, key, sizeof(key)))
        return 0;
    pthread_mutex_lock(&srv->gate_lock);
    int park = http_gate_enter(srv->gate, &st->gate, key, td_now_us());
    if (park)
        MHD_suspend_connection(st->req.conn); /* before any leave can name it */
    pthread_mutex_unlock(&srv->gate_lock);
    return park;
}

/* req is done with its slot: the requests whose turn it is now are resumed. */
static void gate_leave(struct http_server *srv, struct req_state *st)
{
    if (!st->gate.tenant || !st->gate.admitted)
        return;
    pthread_mutex_lock(&srv->gate_lock);
    struct http_gate_entry *resume = http_gate_leave(srv->gate, &st->gate, td_now_us());
    pthread_mutex_unlock(&srv->gate_lock);
    gate_resume(resume);
}

/* The request ends without having run to gate_leave (its client went away while it was
 * parked, or after it was handed a slot): give back what it holds. */
static void gate_drop(struct http_server *srv, struct req_state *st)
{
    if (!st->gate.tenant)
        return;
    pthread_mutex_lock(&srv->gate_lock);
    struct http_gate_entry *resume = http_gate_drop(srv->gate, &st->gate, td_now_us());
    pthread_mutex_unlock(&srv->gate_lock);
    gate_resume(resume);
}

/* A CORS preflight from a listed origin: answered before routing, tenant resolution and
 * authentication (a browser sends it without the token). Returns 1 when answered. */
static int preflight(struct http_server *srv, struct http_req *req)
{
    if (!srv->cors || strcmp(req->method, "OPTIONS") != 0 ||
        !http_cors_allowed(srv->cors, http_header(req, "Origin")))
        return 0;
    http_set_header(req, "Access-Control-Allow-Methods", HTTP_CORS_ALLOW_METHODS);
    http_set_header(req, "Access-Control-Allow-Headers", HTTP_CORS_ALLOW_HEADERS);
    http_set_header(req, "Access-Control-Max-Age", HTTP_CORS_MAX_AGE);
    http_reply_empty(req, 204);
    return 1;
}

/* Dispatch req; a handler that answered nothing gets a problem for its code. */
static void run_handler(struct http_server *srv, struct http_req *req)
{
    int rc = srv->dispatch(req);
    if (!req->responded && !((struct req_state *)req)->waiting)
        http_problem_send(req, rc < 0 ? rc : TD_EINTERNAL, NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct http_server *srv = cls;
    struct req_state *st = *con_cls;
    if (!st) {
        conn_not_fresh(srv, conn);
        st = req_new(srv, conn, url, method);
        *con_cls = st;
        const char *cl = http_header(&st->req, "Content-Length");
        int fields;
        if (http__header_size(conn, url, method, version, &fields) > HTTP_MAX_HEADERS ||
            fields > HTTP_MAX_FIELDS) {
            /* answered before any body is read: MHD closes the connection afterwards */
            http_problem_send(&st->req, TD_EHEADERS,
                              fields > HTTP_MAX_FIELDS ? "request has more than 100 header fields"
                                                       : "request header block exceeds 16 KiB");
            if (srv->done)
                srv->done(&st->req);
            return MHD_YES;
        } else if (srv->spool && srv->spool(&st->req)) {
            st->spooled = 1; /* any size, to a file */
            return MHD_YES;
        } else if (cl && strtoull(cl, NULL, 10) > HTTP_MAX_BODY) {
            st->req.body_too_large = 1;
        } else {
            return MHD_YES;
        }
    }
    struct http_req *req = &st->req;
    if (*upload_data_size > 0 && st->spooled) {
        spool_body(st, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0 && !req->body_too_large) {
        append_body(st, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (st->offloaded) { /* resumed: the worker or the continuation is done with it */
        gate_leave(srv, st);
        if (st->deferred) {
            MHD_queue_response(conn, (unsigned)req->status, st->deferred);
            MHD_destroy_response(st->deferred);
            st->deferred = NULL;
            if (srv->done)
                srv->done(req);
        }
        return MHD_YES;
    }
    if (req->responded)
        return MHD_YES;
    if (st->gate.tenant && !st->gate.admitted)
        return MHD_YES; /* parked, not resumed yet */
    if (req->body_file && !st->spool_failed &&
        (fflush(req->body_file) != 0 || fseek(req->body_file, 0, SEEK_SET) != 0))
        st->spool_failed = 1;
    if (req->body_too_large) {
        /* answering before the body is read makes MHD close the connection afterwards */
        *upload_data_size = 0;
        http_problem_send(req, TD_ETOOLARGE, "request body exceeds 1 MiB");
    } else if (st->spool_failed) {
        http_problem_send(req, TD_EUNAVAILABLE, "the request body could not be stored");
    } else if (preflight(srv, req)) {
        /* answered */
    } else if (srv->nworkers > 0 && srv->slow && srv->slow(req)) {
        /* password hashing, provisioning, moves: not on an event loop, whose other
         * connections would wait behind it */
        st->offloaded = 1;
        MHD_suspend_connection(conn);
        pthread_mutex_lock(&srv->lock);
        if (srv->tail)
            srv->tail->next = st;
        else
            srv->head = st;
        srv->tail = st;
        pthread_cond_signal(&srv->more);
        pthread_mutex_unlock(&srv->lock);
        return MHD_YES;
    } else {
        if (!st->gate.admitted && gate_enter(srv, st))
            return MHD_YES;
        run_handler(srv, req);
        if (st->waiting)
            return MHD_YES; /* answered when resumed */
        gate_leave(srv, st);
    }
    if (srv->done)
        srv->done(req);
    return MHD_YES;
}

static void *worker_main(void *arg)
{
    struct http_server *srv = arg;
    pthread_mutex_lock(&srv->lock);
    for (;;) {
        while (!srv->head && !srv->stopping)
            pthread_cond_wait(&srv->more, &srv->lock);
        struct req_state *st = srv->head;
        if (!st)
            break; /* stopping, and nothing left to answer */
        srv->head = st->next;
        if (!srv->head)
            srv->tail = NULL;
        pthread_mutex_unlock(&srv->lock);
        run_handler(srv, &st->req);
        conn_resume(st->req.conn);
        pthread_mutex_lock(&srv->lock);
    }
    pthread_mutex_unlock(&srv->lock);
    return NULL;
}

/* Percent-decoding of the path by MHD, except that a path holding an encoded NUL is left
 * encoded: decoded, it would silently cut the path short. */
static size_t unescape_path(void *cls, struct MHD_Connection *conn, char *uri)
{
    (void)cls;
    (void)conn;
    if (strstr(uri, "%00"))
        return strlen(uri);
    return MHD_http_unescape(uri);
}

/* Let the workers answer what is queued, then join them. */
static void stop_workers(struct http_server *s)
{
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_cond_broadcast(&s->more);
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < s->nworkers; i++)
        pthread_join(s->workers[i], NULL);
    free(s->workers);
    s->workers = NULL;
    s->nworkers = 0;
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->more);
}

static void loop_started(struct http_loop *l, void *arg)
{
    struct loop_ctx *lc = arg;
    if (lc->srv->loop_start)
        lc->srv->loop_start(l);
}

/* On the loop's thread, before its connections close: a suspended connection must not
 * outlive the daemon, so a request its module left deferred is answered here. */
static void loop_stopping(struct http_loop *l, void *arg)
{
    struct loop_ctx *lc = arg;
    if (lc->srv->loop_stop)
        lc->srv->loop_stop(l);
    while (lc->waiting) {
        struct http_req *req = &lc->waiting->req;
        td_log_warn("request %s was still deferred when its loop stopped", req->request_id);
        http_problem_send(req, TD_EUNAVAILABLE, "the server is stopping");
        http_req_resume(req);
    }
}

static void loop_quiesce(struct http_loop *l, void *arg)
{
    (void)arg;
    MHD_quiesce_daemon(http__loop_daemon(l));
}

/* One daemon per loop in external epoll mode, all on the one listening socket. */
static int start_loops(struct http_server *s, int n)
{
    unsigned int flags = MHD_USE_ITC | MHD_USE_ERROR_LOG | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    unsigned int limit = (unsigned int)(2000 / n > 0 ? 2000 / n : 1);
    s->loops = td_xcalloc((size_t)n, sizeof(*s->loops));
    for (; s->nloops < n; s->nloops++) {
        struct loop_ctx *lc = &s->loops[s->nloops];
        lc->srv = s;
        struct MHD_Daemon *d = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, s->listen_fd,
            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
            on_connection, s, MHD_OPTION_UNESCAPE_CALLBACK, unescape_path, NULL,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
            (size_t)HTTP_CONN_MEMORY, MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_END);
        if (!d || http__loop_start(d, loop_started, loop_stopping, lc, &lc->loop) < 0)
            return TD_EUNAVAILABLE;
    }
    return 0;
}

static void server_free(struct http_server *s)
{
    /* the daemons stop on their loops' threads; none closes the socket they share */
    for (int i = 0; i < s->nloops; i++)
        http__loop_free(s->loops[i].loop);
    free(s->loops);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    http_cors_free(s->cors);
    http_proxies_free(s->proxies);
    /* every connection is gone, and with it every reference to the gate */
    http_gate_free(s->gate);
    pthread_mutex_destroy(&s->gate_lock);
    free(s);
}

int http_server_start(const struct http_server_opts *o, struct td_app *app,
                      struct http_server **out)
{
    int lfd = http__listen_open(o->listen);
    if (lfd < 0)
        return TD_EUNAVAILABLE;
    struct http_server *s = td_xcalloc(1, sizeof(*s));
    s->listen_fd = lfd;
    s->app = app;
    s->dispatch = o->dispatch;
    s->slow = o->slow;
    s->spool = o->spool;
    s->done = o->done;
    s->loop_start = o->loop_start;
    s->loop_stop = o->loop_stop;
    s->tenant_key = o->tenant_key;
    s->cors = http_cors_new(o->cors_origins);
    s->proxies = http_proxies_new(o->trusted_proxies);
    /* the share is of the loops; a tenant alone may use all of them but one, which a
     * request of any other tenant then finds free even if the tenant's handlers hang */
    if (o->tenant_share > 0 && o->tenant_share < 100)
        s->gate = http_gate_new((o->threads * o->tenant_share + 99) / 100,
                                o->threads > 1 ? o->threads - 1 : 1, 0, GATE_LINGER_US);
    pthread_mutex_init(&s->gate_lock, NULL);
    atomic_init(&s->active, 0);
    atomic_init(&s->fresh, 0);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->more, NULL);
    s->workers = td_xcalloc((size_t)(o->workers > 0 ? o->workers : 1), sizeof(pthread_t));
    for (; s->nworkers < o->workers; s->nworkers++)
        if (pthread_create(&s->workers[s->nworkers], NULL, worker_main, s) != 0)
            break;
    if (start_loops(s, o->threads > 0 ? o->threads : 1) < 0) {
        td_log_error("could not serve %s", o->listen);
        stop_workers(s);
        server_free(s);
        return TD_EUNAVAILABLE;
    }
    *out = s;
    return 0;
}

int http_server_active(const struct http_server *s)
{
    return atomic_load(&s->active);
}

void http_server_stop(struct http_server *s, int grace_s)
{
    if (!s)
        return;
    for (int i = 0; i < s->nloops; i++)
        http__loop_call(s->loops[i].loop, loop_quiesce, NULL);
    close(s->listen_fd);
    s->listen_fd = -1;
    /* in flight: requests being served, and connections accepted before the stop whose
     * request is still arriving (a client that never sends one costs the grace period) */
    long long deadline = td_now_us() + (long long)grace_s * 1000000;
    while ((atomic_load(&s->active) > 0 || atomic_load(&s->fresh) > 0) && td_now_us() < deadline)
        usleep(10000);
    /* no connection may stay suspended when a daemon stops: workers answer what they
     * hold first (MHD then drops those answers with their connections) */
    stop_workers(s);
    server_free(s);
}
