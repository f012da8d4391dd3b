/*
 * fuzz_ndjson.c - the NDJSON import body (POST /admin/tenants/import): tnt_import_parse on
 * the body as the server stores it (a heap copy with a NUL after it), then the header's
 * tenant fields through the same validate.h checks api_admin_tenants_import applies
 * (query-string overrides aside: they need a live connection). A parsed export must be a
 * tenant object plus arrays of row objects, and the detail of a refusal must fit its buffer.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > HTTP_MAX_BODY)
        return 0;
    char *body = malloc(size + 1);
    memcpy(body, data, size);
    body[size] = '\0';
    char detail[160];
    memset(detail, 0x55, sizeof(detail));
    detail[sizeof(detail) - 1] = '\0';
    struct tnt_import_data d;
    int rc = tnt_import_parse(body, size, &d, detail, sizeof(detail));
    if (rc == 0) {
        check(json_is_object(d.tenant), "a parsed export has a tenant object");
        for (int i = 0; i < TNT_EXPORT_TABLES; i++) {
            check(json_is_array(d.rows[i]), "each table is an array");
            for (size_t k = 0; k < json_array_size(d.rows[i]); k++)
                check(json_is_object(json_array_get(d.rows[i], k)), "each row is an object");
        }
        struct http_req req;
        memset(&req, 0, sizeof(req));
        req.arena = td_arena_new();
        rc = tenant_fields(&req, d.tenant);
        check(rc == 0 || rc == TD_EVALIDATION, "tenant fields are accepted or a 400");
        td_arena_free(req.arena);
        tnt_import_data_cleanup(&d);
    } else {
        check(rc == TD_EINVALID_JSON || rc == TD_EVALIDATION, "a bad export is a 400");
        check(memchr(detail, '\0', sizeof(detail)) != NULL, "the detail is NUL-terminated");
        check(d.tenant == NULL, "nothing is left to free on failure");
    }
    free(body);
    return 0;
}
