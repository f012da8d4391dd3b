/*
 * resources.c - the routes of every served tenant table (SPEC §7): /{t} and /{t}/{id},
 * resolved against the current table description when no built-in route matches. The
 * statements come from src/resource; PostgreSQL's refusals become §7's problem codes.
 */
#include "api/handlers.h"
#include "api/internal.h"
#include "app/app.h"
#include "api/tx.h"
#include "http/router.h"
#include "resource/resource.h"

#include <stdio.h>
#include <string.h>

#define T HTTP_ROUTE_TENANT

static const struct http_route resource_routes[] = {
    {"GET", "/{t}", T, api_resource_list},           {"POST", "/{t}", T, api_resource_create},
    {"GET", "/{t}/{id}", T, api_resource_get},       {"PATCH", "/{t}/{id}", T, api_resource_update},
    {"DELETE", "/{t}/{id}", T, api_resource_delete},
};

const struct http_route *api_resource_routes(size_t *n)
{
    *n = sizeof(resource_routes) / sizeof(resource_routes[0]);
    return resource_routes;
}

static void unref_desc(void *p)
{
    res_desc_unref(p);
}

const struct http_route *api_resource_match(struct http_req *req, int *path_known)
{
    int known = 0, np = 0;
    const char *params[HTTP_MAX_PARAMS];
    const struct http_route *r =
        http_router_match(resource_routes, sizeof(resource_routes) / sizeof(resource_routes[0]),
                          req->method, req->path, req->arena, params, &np, &known);
    *path_known = 0;
    if ((!r && !known) || !req->app->resources)
        return NULL;
    /* params[0] may be unset when only another method matched: match that path again */
    if (!r) {
        const char *p = req->path + 1, *e = strchr(p, '/');
        params[0] = e ? td_arena_strndup(req->arena, p, (size_t)(e - p)) : p;
    }
    struct res_desc *d = res_registry_get(req->app->resources);
    int served = res_desc_by_path(d, params[0]) != NULL;
    res_desc_unref(d);
    if (!served)
        return NULL;
    if (!r) {
        *path_known = 1;
        return NULL;
    }
    memcpy(req->params, params, sizeof(params[0]) * (size_t)np);
    req->nparams = np;
    return r;
}

/* The request's table in a description held until the request ends. */
static const struct res_table *table_of(struct http_req *req, const struct res_desc **dout)
{
    struct res_desc *d = res_registry_get(req->app->resources);
    if (!d)
        return NULL;
    td_arena_defer(req->arena, unref_desc, d);
    *dout = d;
    return res_desc_by_path(d, req->params[0]);
}

/* The table of a /{t}/{id} route, or NULL when there is none or {id} cannot be one of its ids
 * (a malformed id is a 404, like an unknown one). */
static const struct res_table *row_table(struct http_req *req, const struct res_desc **dout)
{
    const struct res_table *t = table_of(req, dout);
    return t && res_value_text_ok(&t->cols[t->id_col], req->params[1]) == 0 ? t : NULL;
}

static int rank(const char *role)
{
    return !role ? 0 : !strcmp(role, "owner") ? 2 : !strcmp(role, "admin") ? 1 : 0;
}

static const char *higher(const char *a, const char *b)
{
    return rank(b) > rank(a) ? b : a;
}

static int fail(struct http_req *req, int rc, const char *detail)
{
    return rc < 0 ? api_fail(req, rc, detail) : rc;
}

/* PostgreSQL's refusal of a write, in §7's terms. */
static int translate(struct http_req *req, const struct res_table *t, int rc,
                     const struct db_error *e, int deleting)
{
    if (!e->sqlstate[0])
        return rc;
    const char *s = e->sqlstate, *detail = NULL;
    if (!strcmp(s, "23505"))
        rc = TD_ECONFLICT, detail = td_arena_printf(req->arena,
                                                    "a row with the same values "
                                                    "exists (%s)",
                                                    e->constraint);
    else if (!strcmp(s, "23503") && deleting)
        rc = TD_ECONFLICT, detail = "other rows reference this row";
    else if (!strcmp(s, "23503")) {
        const char *col = e->constraint;
        for (int i = 0; i < t->nfks; i++)
            if (!strcmp(t->fks[i].conname, e->constraint))
                col = t->cols[t->fks[i].col].name;
        rc = TD_EVALIDATION;
        detail = td_arena_printf(req->arena, "%s references a row that does not exist", col);
    } else if (!strcmp(s, "23514"))
        rc = TD_EVALIDATION,
        detail = td_arena_printf(req->arena, "check constraint %s is violated", e->constraint);
    else if (!strcmp(s, "23502"))
        rc = TD_EVALIDATION, detail = td_arena_printf(req->arena, "%s must not be null", e->column);
    else if (!strncmp(s, "22", 2))
        rc = TD_EVALIDATION, detail = "a value does not fit its column's type or range";
    else if (!strcmp(s, "TDQUO"))
        detail = td_arena_printf(req->arena, "the plan's limit of %s rows is reached", t->path);
    return fail(req, rc, detail);
}

static int query_args(struct http_req *req, const char *const **k, const char *const **v)
{
    int n = http_query_all(req, k, v);
    if (n < 0)
        return fail(req, TD_EBADREQ, "too many query parameters");
    return n;
}

/* Whether rows of t (with q's embeds) may carry jsonb's spaced text. */
static int spaced(const struct res_table *t, const struct res_query *q)
{
    int s = t->has_jsonb;
    for (int i = 0; q && i < q->nembeds; i++)
        s |= q->embeds[i].other->has_jsonb;
    return s;
}

/* Compact rows' JSON in place (PGresult values are ours until cleared). */
static void compact_rows(PGresult *r, int n, int yes)
{
    for (int i = 0; yes && i < n; i++) {
        char *v = PQgetvalue(r, i, 0);
        res_json_compact(v, strlen(v));
    }
}

static int reply_one(struct http_req *req, int status, PGresult *r, int compact)
{
    if (!r || PQntuples(r) == 0)
        return TD_ENOTFOUND;
    compact_rows(r, 1, compact);
    const char *v = PQgetvalue(r, 0, 0);
    return http_reply_json_text(req, status, v, strlen(v));
}

/* Join one JSON value per row into {"data":[...],"next_cursor":...}. */
static int reply_rows(struct http_req *req, int status, PGresult *r, int items, const char *cursor,
                      int page)
{
    size_t len = 64 + (cursor ? strlen(cursor) : 0);
    for (int i = 0; i < items; i++)
        len += strlen(PQgetvalue(r, i, 0)) + 1;
    char *buf = td_arena_alloc(req->arena, len), *w = buf;
    w += sprintf(w, "{\"data\":[");
    for (int i = 0; i < items; i++) {
        if (i)
            *w++ = ',';
        size_t l = strlen(PQgetvalue(r, i, 0));
        memcpy(w, PQgetvalue(r, i, 0), l);
        w += l;
    }
    if (page)
        w += sprintf(w, "],\"next_cursor\":%s%s%s}", cursor ? "\"" : "", cursor ? cursor : "null",
                     cursor ? "\"" : "");
    else
        w += sprintf(w, "]}");
    return http_reply_json_text(req, status, buf, (size_t)(w - buf));
}

/* Lowest role that may read t with q's embeds. */
static const char *read_role(const struct res_table *t, const struct res_query *q)
{
    const char *role = t->read_role;
    for (int i = 0; i < q->nembeds; i++)
        role = higher(role, q->embeds[i].other->read_role);
    return role;
}

/* What a route's continuation needs once its transaction answered (in the arena). */
struct rctx {
    const struct res_table *t;
    struct res_query q;
    struct db_error e;
    int array, deleting;
    int at; /* the result the answer is made of */
};

static struct rctx *rctx_new(struct http_req *req, const struct res_table *t,
                             const struct res_query *q)
{
    struct rctx *c = td_arena_alloc(req->arena, sizeof(*c));
    memset(c, 0, sizeof(*c));
    c->t = t;
    if (q)
        c->q = *q;
    return c;
}

static int list_done(struct http_req *req, int rc, PGresult **res, void *arg)
{
    struct rctx *c = arg;
    if (rc == TD_EVALIDATION) /* a value PostgreSQL could not take: the query's fault */
        return fail(req, TD_EBADREQ, "a query value does not fit its column");
    if (rc < 0)
        return rc;
    PGresult *r = res[0];
    int rows = PQntuples(r), items = rows < c->q.limit ? rows : c->q.limit;
    char *cursor = rows > c->q.limit ? res_cursor_make(&c->q, r, c->q.limit - 1, req->arena) : NULL;
    compact_rows(r, items, spaced(c->t, &c->q));
    return reply_rows(req, 200, r, items, cursor, 1);
}

int api_resource_list(struct http_req *req)
{
    const struct res_desc *d;
    const struct res_table *t = table_of(req, &d);
    if (!t)
        return TD_ENOTFOUND;
    const char *const *k, *const *v, *detail = NULL;
    int n = query_args(req, &k, &v);
    if (n < 0)
        return n;
    struct res_query q;
    struct res_sql s;
    int rc = res_query_parse(d, t, k, v, n, req->arena, &q, &detail);
    if (rc == 0) /* the limit's text is bound: it lives as long as the request */
        rc = res_sql_list(t, &q, td_arena_printf(req->arena, "%d", q.limit), req->arena, &s,
                          &detail);
    if (rc < 0)
        return fail(req, rc, detail);
    struct db_stmt st = {s.sql, s.nparams, s.params, 0};
    struct rctx *c = rctx_new(req, t, &q);
    return api_tenant_exec_then(req, read_role(t, &q), &st, 1, &c->e, list_done, c);
}

static int get_done(struct http_req *req, int rc, PGresult **res, void *arg)
{
    struct rctx *c = arg;
    return rc < 0 ? rc : reply_one(req, 200, res[0], spaced(c->t, &c->q));
}

int api_resource_get(struct http_req *req)
{
    const struct res_desc *d;
    const struct res_table *t = row_table(req, &d);
    if (!t)
        return TD_ENOTFOUND;
    const char *const *k, *const *v, *detail = NULL;
    int n = query_args(req, &k, &v);
    if (n < 0)
        return n;
    struct res_query q;
    struct res_sql s;
    int rc = res_query_parse_one(d, t, k, v, n, req->arena, &q, &detail);
    if (rc < 0)
        return fail(req, rc, detail);
    res_sql_get(t, &q, req->params[1], req->arena, &s);
    struct db_stmt st = {s.sql, s.nparams, s.params, 0};
    struct rctx *c = rctx_new(req, t, &q);
    return api_tenant_exec_then(req, read_role(t, &q), &st, 1, &c->e, get_done, c);
}

/* A write's statements, then cont; PostgreSQL's refusal is translated first. */
static int write_exec(struct http_req *req, struct rctx *c, struct db_stmt *st, int nst,
                      api_tx_cont cont)
{
    return api_tenant_exec_then(req, c->t->write_role, st, nst, &c->e, cont, c);
}

static int write_failed(struct http_req *req, struct rctx *c, int rc)
{
    return translate(req, c->t, rc, &c->e, c->deleting);
}

static void decref_body(void *p)
{
    json_decref(p);
}

/* The body: one object, or an array of 1-100 objects (*array set). */
static int body_rows(struct http_req *req, json_t **body, json_t ***rows, int *n, int *array)
{
    const char *p = req->body ? req->body + strspn(req->body, " \t\r\n") : "";
    *array = *p == '[';
    if (!*array) {
        int rc = http_body_object(req, body);
        if (rc < 0)
            return fail(req, rc,
                        rc == TD_EVALIDATION ? "the body must be an object or an array" : NULL);
        *rows = td_arena_alloc(req->arena, sizeof(json_t *));
        (*rows)[0] = *body;
        *n = 1;
        return 0;
    }
    *body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_array(*body))
        return TD_EINVALID_JSON;
    *n = (int)json_array_size(*body);
    if (*n < 1 || *n > 100)
        return fail(req, TD_EVALIDATION, "an array of 1 to 100 rows is required");
    *rows = td_arena_alloc(req->arena, sizeof(json_t *) * (size_t)*n);
    for (int i = 0; i < *n; i++)
        (*rows)[i] = json_array_get(*body, (size_t)i);
    return 0;
}

/* The table's name is the only text: the rows asked for and the plan's max are bound, so one
 * prepared statement per table serves every request. */
static const char quota_sql[] =
    "SELECT tenantd_quota((SELECT count(*) FROM %s) + $1::int, $2::bigint)";

static int create_done(struct http_req *req, int rc, PGresult **res, void *arg)
{
    struct rctx *c = arg;
    if (rc < 0)
        return write_failed(req, c, rc);
    PGresult *r = res[c->at]; /* the insert's: after the quota statements, if any */
    if (c->array)
        compact_rows(r, PQntuples(r), c->t->has_jsonb);
    return c->array ? reply_rows(req, 201, r, PQntuples(r), NULL, 0)
                    : reply_one(req, 201, r, c->t->has_jsonb);
}

int api_resource_create(struct http_req *req)
{
    const struct res_desc *d;
    const struct res_table *t = table_of(req, &d);
    if (!t)
        return TD_ENOTFOUND;
    json_t *body = NULL, **rows = NULL;
    int n = 0, array = 0;
    const char *detail = NULL;
    int rc = body_rows(req, &body, &rows, &n, &array);
    if (body) /* the rows' values may be bound from it until the transaction is done */
        td_arena_defer(req->arena, decref_body, body);
    struct res_sql s;
    struct res_actor who = {req->claims.sub, req->client_ip, api_user_agent(req)};
    if (rc == 0)
        rc = res_sql_insert(t, rows, n, &who, req->arena, &s, &detail);
    if (rc < 0)
        return fail(req, rc, detail);
    long max = res_table_max(t, req->tenant->plan);
    const char **qp = td_arena_alloc(req->arena, 2 * sizeof(char *));
    qp[0] = td_arena_printf(req->arena, "%d", n);
    qp[1] = td_arena_printf(req->arena, "%ld", max);
    struct db_stmt st[3] = {
        {api_quota_lock_sql, 0, NULL, 0},
        {max >= 0 ? td_arena_printf(req->arena, quota_sql, t->qname) : NULL, 2, qp, 0},
        {s.sql, s.nparams, s.params, 0}};
    struct rctx *c = rctx_new(req, t, NULL);
    c->array = array;
    c->at = max >= 0 ? 2 : 0;
    return max >= 0 ? write_exec(req, c, st, 3, create_done)
                    : write_exec(req, c, st + 2, 1, create_done);
}

static int update_done(struct http_req *req, int rc, PGresult **res, void *arg)
{
    struct rctx *c = arg;
    return rc < 0 ? write_failed(req, c, rc) : reply_one(req, 200, res[0], c->t->has_jsonb);
}

int api_resource_update(struct http_req *req)
{
    const struct res_desc *d;
    const struct res_table *t = row_table(req, &d);
    if (!t)
        return TD_ENOTFOUND;
    json_t *body = NULL;
    const char *detail = NULL;
    struct res_sql s;
    struct res_actor who = {req->claims.sub, req->client_ip, api_user_agent(req)};
    int rc = http_body_object(req, &body);
    if (body)
        td_arena_defer(req->arena, decref_body, body);
    if (rc == 0)
        rc = res_sql_update(t, req->params[1], body, &who, req->arena, &s, &detail);
    if (rc < 0)
        return fail(req, rc, detail);
    struct db_stmt st = {s.sql, s.nparams, s.params, 0};
    return write_exec(req, rctx_new(req, t, NULL), &st, 1, update_done);
}

static int delete_done(struct http_req *req, int rc, PGresult **res, void *arg)
{
    struct rctx *c = arg;
    if (rc < 0)
        return write_failed(req, c, rc);
    if (PQntuples(res[0]) == 0)
        return TD_ENOTFOUND;
    return http_reply_empty(req, 204);
}

int api_resource_delete(struct http_req *req)
{
    const struct res_desc *d;
    const struct res_table *t = row_table(req, &d);
    if (!t)
        return TD_ENOTFOUND;
    struct res_sql s;
    struct res_actor who = {req->claims.sub, req->client_ip, api_user_agent(req)};
    res_sql_delete(t, req->params[1], &who, req->arena, &s);
    struct db_stmt st = {s.sql, s.nparams, s.params, 0};
    struct rctx *c = rctx_new(req, t, NULL);
    c->deleting = 1;
    return write_exec(req, c, &st, 1, delete_done);
}
