/*
 * request.c - what a handler reads of its request (headers, query, JSON body) and the replies
 * built on http_reply, none of which needs the server's state; and the request id and header
 * block size the server takes when a request begins.
 */
#include "http/internal.h"
#include "http/proxy.h"
#include "http/request.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <microhttpd.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

void http__request_id(struct http_req *req)
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

struct header_block {
    size_t bytes;
    int fields;
};

static enum MHD_Result add_header_size(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
    struct header_block *b = cls;
    b->bytes += strlen(key) + (value ? strlen(value) : 0) + 4; /* ": " and CRLF */
    b->fields += kind == MHD_HEADER_KIND;
    return MHD_YES;
}

/* The header block as sent: request line (the query string's arguments approximated by
 * their decoded length) and every field. MHD refuses by itself only past its connection
 * memory; below that, this makes the limit the same for every request. */
size_t http__header_size(struct MHD_Connection *conn, const char *url, const char *method,
                         const char *version, int *fields)
{
    struct header_block b = {strlen(method) + strlen(url) + strlen(version) + 4, 0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, add_header_size, &b);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_header_size, &b);
    *fields = b.fields;
    return b.bytes;
}

void http__client_ip(struct http_req *req, struct http_proxies *proxies)
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
    if (proxies && req->client_ip[0]) {
        char peer[sizeof(req->client_ip)];
        memcpy(peer, req->client_ip, sizeof(peer));
        http_proxies_client(proxies, peer, http_header(req, "X-Forwarded-For"), req->client_ip,
                            sizeof(req->client_ip));
    }
}
