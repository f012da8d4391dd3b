/*
 * transfer.c - the operator's move, export and import routes (SPEC §6). The work is
 * done by src/tenant/move.c and src/tenant/export.c; this file is HTTP: input checks,
 * cache invalidation, problem responses and the streamed NDJSON body.
 */
#include "api/handlers.h"

#include "app/app.h"
#include "api/internal.h"
#include "api/validate.h"
#include "auth/jwt.h"
#include "core/log.h"
#include "tenant/export.h"
#include "tenant/move.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const move_fields[] = {"isolation", "server", NULL};
static const char *const iso_names[] = {"pool", "schema", "database", NULL};
static const char *const plan_names[] = {"free", "starter", "pro", "enterprise", NULL};
static const char *const status_names[] = {"active", "suspended", NULL};

int api_admin_tenants_move(struct http_req *req)
{
    json_t *body = NULL;
    const char *iso = NULL, *server = NULL, *detail = NULL;
    struct tnt_tenant *t, *moved = NULL;
    int rc = api_admin_find_tenant(req, &t);
    if (rc < 0)
        return rc;
    if ((rc = http_body_object(req, &body)) < 0)
        goto out;
    if ((rc = api_no_unknown(req, body, move_fields, &detail)) < 0 ||
        (rc = api_field_enum(req, body, "isolation", 0, iso_names, &iso, &detail)) < 0 ||
        (rc = api_field_str(req, body, "server", 0, 64, &server, &detail)) < 0)
        goto out;
    if (!iso && !server) {
        rc = TD_EVALIDATION;
        detail = "give isolation, server or both";
        goto out;
    }
    if (server && db_server_find(req->app->db, server) < 0) {
        rc = TD_EVALIDATION;
        detail = "server is not a configured database server";
        goto out;
    }
    rc = tnt_move_cached(req->app->db, req->app->cache, &req->app->tenant_migs, t,
                         iso ? tnt_isolation_parse(iso) : -1, server, &moved);
    if (rc == TD_EUNAVAILABLE)
        detail = "a database server is unreachable or the tenant's tables stayed busy; "
                 "nothing was moved";
    else if (rc == TD_EINTERNAL)
        detail = "the move failed and was undone; the tenant is where it was";
    if (rc < 0)
        goto out;
    tnt_cache_invalidate(req->app->cache, moved->id);
    rc = http_reply_json(req, 200, tnt_tenant_json(moved));
out:
    tnt_tenant_unref(moved);
    json_decref(body);
    if (rc < 0)
        return api_fail(req, rc, detail);
    return rc;
}

/* ---- export ---------------------------------------------------------------- */

struct export_stream {
    struct tnt_export *e;
    const char *line;
    size_t len, off;
    int newline; /* the current line's "\n" is still to be written */
    int done;
};

static long export_pull(void *ctx, char *buf, size_t max)
{
    struct export_stream *s = ctx;
    size_t n = 0;
    while (n < max) {
        if (s->off < s->len) {
            size_t k = s->len - s->off < max - n ? s->len - s->off : max - n;
            memcpy(buf + n, s->line + s->off, k);
            s->off += k;
            n += k;
        } else if (s->newline) {
            buf[n++] = '\n';
            s->newline = 0;
        } else if (s->done) {
            break;
        } else {
            int rc = tnt_export_next(s->e, &s->line, &s->len);
            if (rc < 0)
                return n ? (long)n : -1; /* truncate: the client must not take it as whole */
            s->done = rc == 0;
            s->off = 0;
            s->newline = rc == 1;
            if (rc == 0)
                s->len = 0;
        }
    }
    return (long)n;
}

static void export_free(void *ctx)
{
    struct export_stream *s = ctx;
    tnt_export_close(s->e);
    free(s);
}

int api_admin_tenants_export(struct http_req *req)
{
    struct tnt_tenant *t;
    struct tnt_export *e = NULL;
    int rc = api_admin_find_tenant(req, &t);
    if (rc < 0)
        return rc;
    if ((rc = tnt_export_open(req->app->db, t, &e)) < 0)
        return rc;
    struct export_stream *s = td_xcalloc(1, sizeof(*s));
    s->e = e;
    char cd[96];
    snprintf(cd, sizeof(cd), "attachment; filename=\"%s.ndjson\"", t->slug);
    http_set_header(req, "Content-Disposition", cd);
    return http_reply_stream(req, 200, "application/x-ndjson", export_pull, export_free, s);
}

/* ---- import ---------------------------------------------------------------- */

/* The exported tenant's fields, checked as POST /admin/tenants checks them. */
static int import_fields(struct http_req *req, json_t *t, struct tnt_new *n, const char **status,
                         const char **expires, const char **detail)
{
    const char *iso = NULL, *q;
    int rc;
    if ((rc = api_field_str(req, t, "slug", 1, 40, &n->slug, detail)) < 0 ||
        (rc = api_field_str(req, t, "name", 1, 200, &n->name, detail)) < 0 ||
        (rc = api_field_enum(req, t, "plan", 0, plan_names, &n->plan, detail)) < 0 ||
        (rc = api_field_enum(req, t, "isolation", 0, iso_names, &iso, detail)) < 0 ||
        (rc = api_field_enum(req, t, "status", 0, status_names, status, detail)) < 0)
        return rc;
    json_t *e = json_object_get(t, "subscription_expires_at");
    if (e && !json_is_null(e) &&
        (rc = api_field_str(req, t, "subscription_expires_at", 1, 64, expires, detail)) < 0)
        return rc;
    if ((q = http_query(req, "slug")))
        n->slug = q;
    if ((q = http_query(req, "isolation")))
        iso = q;
    if ((q = http_query(req, "server")))
        n->server = q;
    if (!api_check_slug(n->slug)) {
        *detail = "slug must match ^[a-z][a-z0-9-]{1,38}[a-z0-9]$";
        return http_query(req, "slug") ? TD_EBADREQ : TD_EVALIDATION;
    }
    if (iso && tnt_isolation_parse(iso) < 0) {
        *detail = "isolation must be pool, schema or database";
        return TD_EBADREQ;
    }
    if (n->server && db_server_find(req->app->db, n->server) < 0) {
        *detail = "server is not a configured database server";
        return TD_EBADREQ;
    }
    n->isolation = iso ? tnt_isolation_parse(iso) : -1;
    if (!n->plan)
        n->plan = "free";
    if (!*status)
        *status = "active";
    return 0;
}

/* The header's tenant, as import_fields checks it (tnt_import_header_fn). */
static int import_header(void *ctx, json_t *tenant, struct tnt_new *n, const char **status,
                         const char **expires, const char **detail)
{
    return import_fields(ctx, tenant, n, status, expires, detail);
}

/* The body (in memory, or spooled to a file for an operator: any size) fed in chunks. */
static int import_feed(struct http_req *req, struct tnt_import *im)
{
    if (!req->body_file)
        return tnt_import_feed(im, req->body ? req->body : "", req->body_len);
    char *buf = td_arena_alloc(req->arena, 65536);
    size_t k;
    int rc = 0;
    while (rc == 0 && (k = fread(buf, 1, 65536, req->body_file)) > 0)
        rc = tnt_import_feed(im, buf, k);
    if (rc == 0 && ferror(req->body_file)) {
        td_log_error("could not read a spooled import body");
        rc = TD_EUNAVAILABLE;
    }
    return rc;
}

int api_admin_tenants_import(struct http_req *req)
{
    struct tnt_import *im = NULL;
    struct tnt_tenant *t = NULL;
    const char *detail = NULL;
    tnt_import_begin(req->app->db, &req->app->tenant_migs, import_header, req, &im);
    int rc = import_feed(req, im);
    if (rc == 0)
        rc = tnt_import_finish(im, &t);
    if (rc < 0)
        detail = tnt_import_detail(im) ? td_arena_strdup(req->arena, tnt_import_detail(im)) : NULL;
    else
        rc = http_reply_json(req, 201, tnt_tenant_json(t));
    tnt_tenant_unref(t);
    tnt_import_free(im);
    if (rc < 0)
        return api_fail(req, rc, detail);
    return rc;
}
