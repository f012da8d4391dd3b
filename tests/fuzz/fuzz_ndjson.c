/*
 * fuzz_ndjson.c - the NDJSON import body (POST /admin/tenants/import) through the streaming
 * import (tnt_import_feed), split into chunks at places the input chooses: line reassembly,
 * JSON parsing and the header checks. The header callback runs the tenant fields through the
 * same validate.h checks the import handler applies, then refuses, so nothing needs a
 * database. Every outcome is 0 or a 400 code, and a refusal always says why.
 */
#include "api/validate.h"
#include "core/mem.h"
#include "http/request.h"
#include "tenant/export.h"

#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant broken: %s\n", what);
        abort();
    }
}

static const char *const plans[] = {"free", "starter", "pro", "enterprise", NULL};
static const char *const isos[] = {"pool", "schema", "database", NULL};
static const char *const statuses[] = {"active", "suspended", NULL};

/* src/api/transfer.c import_fields, without the ?slug/?isolation/?server overrides. */
static int tenant_fields(struct http_req *req, json_t *t)
{
    const char *slug, *name, *plan, *iso, *status, *expires = NULL, *detail = NULL;
    int rc;
    if ((rc = api_field_str(req, t, "slug", 1, 40, &slug, &detail)) < 0 ||
        (rc = api_field_str(req, t, "name", 1, 200, &name, &detail)) < 0 ||
        (rc = api_field_enum(req, t, "plan", 0, plans, &plan, &detail)) < 0 ||
        (rc = api_field_enum(req, t, "isolation", 0, isos, &iso, &detail)) < 0 ||
        (rc = api_field_enum(req, t, "status", 0, statuses, &status, &detail)) < 0)
        return rc;
    json_t *e = json_object_get(t, "subscription_expires_at");
    if (e && !json_is_null(e) &&
        (rc = api_field_str(req, t, "subscription_expires_at", 1, 64, &expires, &detail)) < 0)
        return rc;
    if (!api_check_slug(slug))
        return TD_EVALIDATION;
    check(strlen(slug) >= 3 && strlen(slug) <= 40, "an accepted slug has 3 to 40 bytes");
    check(!iso || tnt_isolation_parse(iso) >= 0, "an accepted isolation parses");
    return 0;
}

/* The import's header callback: check the fields, then refuse (no storage is made here). */
static int on_header(void *ctx, json_t *tenant, struct tnt_new *n, const char **status,
                     const char **expires, const char **detail)
{
    (void)n;
    (void)status;
    (void)expires;
    *(int *)ctx = 1;
    struct http_req req;
    memset(&req, 0, sizeof(req));
    req.arena = td_arena_new();
    int rc = tenant_fields(&req, tenant);
    check(rc == 0 || rc == TD_EVALIDATION, "tenant fields are accepted or a 400");
    td_arena_free(req.arena);
    *detail = "refused by the fuzzer";
    return TD_EVALIDATION;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > HTTP_MAX_BODY)
        return 0;
    /* where the body is split: chosen by the input, which stays whole (seeds stay exports) */
    size_t chunk = ((size_t)data[size - 1] * 31 + size) % 97 + 1;
    int header_seen = 0;
    struct tnt_import *im = NULL;
    tnt_import_begin(NULL, NULL, on_header, &header_seen, &im);
    int rc = 0;
    for (size_t off = 0; rc == 0 && off < size; off += chunk)
        rc = tnt_import_feed(im, (const char *)data + off, size - off < chunk ? size - off : chunk);
    struct tnt_tenant *t = NULL;
    if (rc == 0)
        rc = tnt_import_finish(im, &t);
    check(rc == TD_EINVALID_JSON || rc == TD_EVALIDATION, "a body that makes no tenant is a 400");
    check(t == NULL, "no tenant is made without a database");
    const char *why = tnt_import_detail(im);
    check(why != NULL && why[0] != '\0', "a refusal says why");
    check(!header_seen || rc == TD_EVALIDATION, "a refused header is a 400");
    tnt_import_free(im);
    return 0;
}
