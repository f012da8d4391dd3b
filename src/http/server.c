/*
 * server.c - libmicrohttpd glue: request lifecycle, body accumulation, responses.
 */
#include "http/server.h"

#include "core/clock.h"
#include "core/hash.h"
#include "core/htab.h"
#include "core/log.h"
#include "http/cors.h"
#include "http/gate.h"
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_RESP_HEADERS 12
/* libmicrohttpd's memory per connection: a 16 KiB header block (HTTP_MAX_HEADERS) plus its
 * bookkeeping per field (some 50 bytes each), so that many small fields under the limit are
 * served; with 20 KiB, 300 fields of 10 bytes already got its own 431. */
#define HTTP_CONN_MEMORY (48 * 1024)

#define GATE_KEY 80

struct req_state;
struct http_server;
static void gate_drop(struct http_server *srv, struct req_state *st);

struct http_server {
    struct MHD_Daemon *daemon;
    struct td_app *app;
    int (*dispatch)(struct http_req *);
    int (*slow)(struct http_req *);
    int (*spool)(struct http_req *);
    void (*done)(struct http_req *);
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
};

const char *http_header(struct http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_query(struct http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

struct query_args {
    struct http_req *req;
    const char **keys, **vals;
    int n, cap;
};

static enum MHD_Result query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    struct query_args *q = cls;
    (void)kind;
    if (q->n == q->cap)
        return MHD_NO;
    q->keys[q->n] = key;
    q->vals[q->n++] = value ? value : "";
    return MHD_YES;
}

int http_query_all(struct http_req *req, const char *const **keys, const char *const **vals)
{
    struct query_args q = {req, NULL, NULL, 0, HTTP_MAX_QUERY_ARGS};
    q.keys = td_arena_alloc(req->arena, sizeof(char *) * HTTP_MAX_QUERY_ARGS);
    q.vals = td_arena_alloc(req->arena, sizeof(char *) * HTTP_MAX_QUERY_ARGS);
    int total = MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, NULL, NULL);
    if (total > HTTP_MAX_QUERY_ARGS)
        return -1;
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, query_arg, &q);
    *keys = q.keys;
    *vals = q.vals;
    return q.n;
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

int http_reply_json_text(struct http_req *req, int status, const char *json, size_t len)
{
    return http_reply(req, status, "application/json", json, len);
}

int http_reply_json(struct http_req *req, int status, json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    if (!text)
        return TD_EINTERNAL;
    int rc = http_reply_json_text(req, status, text, strlen(text));
    free(text);
    return rc;
}

int http_reply_empty(struct http_req *req, int status)
{
    return http_reply(req, status, NULL, "", 0);
}

int http_body_object(struct http_req *req, json_t **out)
{
    json_error_t err;
    *out = NULL;
    if (!req->body || req->body_len == 0)
        return TD_EINVALID_JSON;
    /* jansson rejects invalid UTF-8 and, without JSON_ALLOW_NUL, NUL bytes in strings */
    json_t *v =
        json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (!v)
        return TD_EINVALID_JSON;
    if (!json_is_object(v)) {
        json_decref(v);
        return TD_EVALIDATION;
    }
    *out = v;
    return 0;
}

static void set_request_id(struct http_req *req)
{
    const char *given = http_header(req, "X-Request-Id");
    size_t n = given ? strlen(given) : 0;
    int ok = n > 0 && n < sizeof(req->request_id);
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)given[i]) || strchr("._:-", given[i]);
    if (ok) {
        memcpy(req->request_id, given, n + 1);
        return;
    }
    /* unique, not secret: a random prefix per thread and a counter, so that a request
     * costs no getrandom() call */
    static _Thread_local uint64_t seed[2], seq;
    if (!seed[0] && !seed[1])
        randombytes_buf(seed, sizeof(seed));
    uint64_t id[2] = {seed[0], seed[1] + seq++};
    sodium_bin2hex(req->request_id, sizeof(req->request_id), (const unsigned char *)id, sizeof(id));
}

static void set_client_ip(struct http_server *srv, struct http_req *req)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    req->client_ip[0] = '\0';
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
                  req->client_ip, sizeof(req->client_ip));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                  req->client_ip, sizeof(req->client_ip));
    if (srv->proxies && req->client_ip[0]) {
        char peer[sizeof(req->client_ip)];
        memcpy(peer, req->client_ip, sizeof(peer));
        http_proxies_client(srv->proxies, peer, http_header(req, "X-Forwarded-For"), req->client_ip,
                            sizeof(req->client_ip));
    }
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
    set_request_id(req);
    set_client_ip(srv, req);
    atomic_fetch_add(&srv->active, 1);
    return st;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)conn;
    struct http_server *srv = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        struct conn_state *cs = td_xcalloc(1, sizeof(*cs));
        cs->fresh = 1;
        atomic_fetch_add(&srv->fresh, 1);
        *socket_context = cs;
        return;
    }
    struct conn_state *cs = *socket_context;
    if (cs && cs->fresh)
        atomic_fetch_sub(&srv->fresh, 1);
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
        MHD_resume_connection(st->req.conn);
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
    int park = http_gate_enter(srv->gate, &st->gate, key);
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
    struct http_gate_entry *resume = http_gate_leave(srv->gate, &st->gate);
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
    struct http_gate_entry *resume = http_gate_drop(srv->gate, &st->gate);
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

static enum MHD_Result add_header_size(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
    (void)kind;
    *(size_t *)cls += strlen(key) + (value ? strlen(value) : 0) + 4; /* ": " and CRLF */
    return MHD_YES;
}

/* The header block as sent: request line (the query string's arguments approximated by
 * their decoded length) and every field. MHD refuses by itself only past its connection
 * memory; below that, this makes the limit the same for every request. */
static size_t header_size(struct MHD_Connection *conn, const char *url, const char *method,
                          const char *version)
{
    size_t n = strlen(method) + strlen(url) + strlen(version) + 4;
    MHD_get_connection_values(conn, MHD_HEADER_KIND, add_header_size, &n);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_header_size, &n);
    return n;
}

/* Dispatch req; a handler that answered nothing gets a problem for its code. */
static void run_handler(struct http_server *srv, struct http_req *req)
{
    int rc = srv->dispatch(req);
    if (!req->responded)
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
        if (header_size(conn, url, method, version) > HTTP_MAX_HEADERS) {
            /* answered before any body is read: MHD closes the connection afterwards */
            http_problem_send(&st->req, TD_EHEADERS, "request header block exceeds 16 KiB");
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
    if (st->offloaded) { /* resumed: the worker is done with it */
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
        MHD_resume_connection(st->req.conn);
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

static int parse_listen(const char *listen, struct sockaddr_in *sa)
{
    const char *colon = strrchr(listen, ':');
    if (!colon)
        return TD_EBADREQ;
    char host[64];
    size_t hl = (size_t)(colon - listen);
    if (hl >= sizeof(host))
        return TD_EBADREQ;
    memcpy(host, listen, hl);
    host[hl] = '\0';
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)atoi(colon + 1));
    if (hl == 0 || strcmp(host, "*") == 0 || strcmp(host, "0.0.0.0") == 0)
        sa->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (strcmp(host, "localhost") == 0)
        sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return TD_EBADREQ;
    return 0;
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

int http_server_start(const struct http_server_opts *o, struct td_app *app,
                      struct http_server **out)
{
    struct sockaddr_in sa;
    if (parse_listen(o->listen, &sa) < 0) {
        td_log_error("invalid listen address \"%s\"", o->listen);
        return TD_EUNAVAILABLE;
    }
    struct http_server *s = td_xcalloc(1, sizeof(*s));
    s->app = app;
    s->dispatch = o->dispatch;
    s->slow = o->slow;
    s->spool = o->spool;
    s->done = o->done;
    s->tenant_key = o->tenant_key;
    s->cors = http_cors_new(o->cors_origins);
    s->proxies = http_proxies_new(o->trusted_proxies);
    /* the share is of the loops; a tenant alone may use all of them but one, which a
     * request of any other tenant then finds free even if the tenant's handlers hang */
    if (o->tenant_share > 0 && o->tenant_share < 100)
        s->gate = http_gate_new((o->threads * o->tenant_share + 99) / 100, o->threads - 1, 0);
    pthread_mutex_init(&s->gate_lock, NULL);
    atomic_init(&s->active, 0);
    atomic_init(&s->fresh, 0);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->more, NULL);
    s->workers = td_xcalloc((size_t)(o->workers > 0 ? o->workers : 1), sizeof(pthread_t));
    for (; s->nworkers < o->workers; s->nworkers++)
        if (pthread_create(&s->workers[s->nworkers], NULL, worker_main, s) != 0)
            break;
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG |
                         MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned int)(o->threads > 0 ? o->threads : 1), MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_UNESCAPE_CALLBACK, unescape_path,
        NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)HTTP_CONN_MEMORY, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)2000,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)1024, MHD_OPTION_END);
    if (!s->daemon) {
        td_log_error("could not listen on %s", o->listen);
        stop_workers(s);
        http_cors_free(s->cors);
        http_proxies_free(s->proxies);
        http_gate_free(s->gate);
        free(s);
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
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    /* in flight: requests being served, and connections accepted before the stop whose
     * request is still arriving (a client that never sends one costs the grace period) */
    long long deadline = td_now_us() + (long long)grace_s * 1000000;
    while ((atomic_load(&s->active) > 0 || atomic_load(&s->fresh) > 0) && td_now_us() < deadline)
        usleep(10000);
    /* no connection may stay suspended when the daemon stops: workers answer what they
     * hold first (MHD then drops those answers with their connections) */
    stop_workers(s);
    MHD_stop_daemon(s->daemon);
    http_cors_free(s->cors);
    http_proxies_free(s->proxies);
    /* every connection is gone, and with it every reference to the gate */
    http_gate_free(s->gate);
    free(s);
}
