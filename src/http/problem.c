/*
 * problem.c - TD_E* codes to HTTP statuses and RFC 9457 problem+json bodies.
 */
#include "http/problem.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

struct problem_kind {
    int err;
    int status;
    const char *title;
};

static const struct problem_kind kinds[] = {
    {TD_EINVALID_JSON, 400, "Invalid JSON"},
    {TD_EVALIDATION, 400, "Validation failed"},
    {TD_EBADREQ, 400, "Bad request"},
    {TD_ETENANT_REQUIRED, 400, "Tenant required"},
    {TD_EUNAUTHORIZED, 401, "Unauthorized"},
    {TD_EEXPIRED, 402, "Subscription expired"},
    {TD_EFORBIDDEN, 403, "Forbidden"},
    {TD_EMISMATCH, 403, "Tenant mismatch"},
    {TD_ESUSPENDED, 403, "Tenant suspended"},
    {TD_EQUOTA, 403, "Quota exceeded"},
    {TD_ENOTFOUND, 404, "Not found"},
    {TD_ETENANT_NOTFOUND, 404, "Tenant not found"},
    {TD_EMETHOD, 405, "Method not allowed"},
    {TD_ECONFLICT, 409, "Conflict"},
    {TD_ETOOLARGE, 413, "Payload too large"},
    {TD_ERATELIMIT, 429, "Rate limited"},
    {TD_EHEADERS, 431, "Request header fields too large"},
    {TD_EUNAVAILABLE, 503, "Service unavailable"},
};

static const struct problem_kind internal = {TD_EINTERNAL, 500, "Internal error"};

static const struct problem_kind *kind_of(int err)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (kinds[i].err == err)
            return &kinds[i];
    return &internal;
}

int http_problem_status(int err)
{
    return kind_of(err)->status;
}

json_t *http_problem_json(int err, const char *detail)
{
    const struct problem_kind *k = kind_of(err);
    const char *code = td_err_code(k->err);
    char type[96];
    snprintf(type, sizeof(type), "urn:tenantd:problem:%s", code);
    return json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", type, "title", k->title, "status",
                     k->status, "detail", detail ? detail : k->title, "code", code);
}

int http_problem_send(struct http_req *req, int err, const char *detail)
{
    const struct problem_kind *k = kind_of(err);
    const char *code = td_err_code(k->err);
    json_t *p =
        json_pack("{s:s, s:s, s:i, s:s, s:s}", "type",
                  td_arena_printf(req->arena, "urn:tenantd:problem:%s", code), "title", k->title,
                  "status", k->status, "detail", detail ? detail : k->title, "code", code);
    if (k->status == 503)
        http_default_header(req, "Retry-After", "1");
    char *text = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    req->err = k->err;
    int rc = http_reply(req, k->status, "application/problem+json", text, strlen(text));
    free(text);
    return rc;
}
