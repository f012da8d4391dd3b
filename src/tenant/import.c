/*
 * import.c - an export streamed back in as a new tenant (see export.h). Lines are taken as
 * they arrive; the header provisions the tenant, rows go in batches of one table (the
 * lines' own text, so every digit and every json value stays as exported) through
 * json_populate_record, all inside one transaction on the new storage. Memory holds one
 * unfinished line and one batch, whatever the size of the export.
 */
#include "tenant/export.h"

#include "core/log.h"
#include "core/mem.h"
#include "tenant/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_ROWS 1000
#define BATCH_BYTES (4u << 20)
#define MAX_LINE (64u << 20)

struct table_info {
    char **cols; /* every column but tenant_id, as in the catalog */
    int ncols;
    char *insert_sql;
};

struct buf {
    char *p;
    size_t len, cap;
};

struct tnt_import {
    struct db *db;
    const struct mig_set *migs;
    tnt_import_header_fn on_header;
    void *ctx;
    struct buf line; /* an unfinished line */
    long long lineno;
    int rc, seen_header, finished;
    int replace; /* over t's rows (tnt_import_begin_replace), not a new tenant */
    char detail[512];
    json_t *tenant;
    struct tnt_tenant *t;
    PGconn *pg;
    struct tnt__tables tables;
    struct table_info *info;
    struct buf batch; /* "[line,line,..." of table batch_table */
    int batch_table, batch_rows;
    long long batch_first, rows;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 2 > b->cap) {
        while (b->len + n + 2 > b->cap)
            b->cap = b->cap ? b->cap * 2 : 65536;
        b->p = td_xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* Record the first failure; later calls return it. */
static int fail(struct tnt_import *im, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct tnt_import *im, int rc, const char *fmt, ...)
{
    if (im->rc < 0)
        return im->rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(im->detail, sizeof(im->detail), fmt, ap);
    va_end(ap);
    im->rc = rc;
    return rc;
}

void tnt_import_begin(struct db *db, const struct mig_set *migs, tnt_import_header_fn on_header,
                      void *ctx, struct tnt_import **out)
{
    struct tnt_import *im = td_xcalloc(1, sizeof(*im));
    im->db = db;
    im->migs = migs;
    im->on_header = on_header;
    im->ctx = ctx;
    im->batch_table = -1;
    *out = im;
}

void tnt_import_begin_replace(struct db *db, const struct tnt_tenant *t, struct tnt_import **out)
{
    tnt_import_begin(db, NULL, NULL, NULL, out);
    (*out)->replace = 1;
    (*out)->t = tnt_tenant_ref((struct tnt_tenant *)t);
}

/* ---- the new tenant ---------------------------------------------------------- */

/* Status and subscription of the new tenant's catalog row; im->t is replaced. */
static int restore_catalog(struct tnt_import *im, const char *status, const char *expires)
{
    PGconn *cat = NULL;
    int rc = db_admin_connect(im->db, 0, NULL, &cat);
    if (rc < 0)
        return fail(im, rc, "the catalog is unreachable");
    char *sql = td_xasprintf("UPDATE tenantd.tenants SET status = $2, subscription_expires_at = "
                             "$3::timestamptz, updated_at = now() WHERE id = $1 RETURNING %s",
                             tnt_catalog_columns);
    PGresult *r = PQexecParams(cat, sql, 3, NULL, (const char *const[]){im->t->id, status, expires},
                               NULL, NULL, 0);
    free(sql);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        tnt_tenant_unref(im->t);
        im->t = tnt_tenant_from_row(im->db, r, 0);
    } else {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        rc = state && !strncmp(state, "22", 2)
                 ? fail(im, TD_EVALIDATION,
                        "subscription_expires_at must be an RFC 3339 timestamp or null")
                 : fail(im, db_map_error(r), "the tenant's catalog row could not be updated");
    }
    PQclear(r);
    PQfinish(cat);
    return rc;
}

/* Columns and INSERT statement of table i of the new storage. */
static int table_info(struct tnt_import *im, const char *schema, int i)
{
    struct table_info *ti = &im->info[i];
    PGresult *r = NULL;
    char *q = tnt__qualified(im->pg, schema, im->tables.names[i]);
    int rc = q ? db_admin_exec(im->pg, "reading a table's columns",
                               "SELECT attname, attgenerated <> '' FROM pg_attribute WHERE "
                               "attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped "
                               "AND attname <> 'tenant_id' ORDER BY attnum",
                               1, (const char *const[]){q}, &r)
               : TD_EINTERNAL;
    if (rc < 0) {
        free(q);
        return rc;
    }
    ti->ncols = PQntuples(r);
    ti->cols = td_xcalloc((size_t)ti->ncols + 1, sizeof(char *));
    struct buf into = {0}, from = {0};
    for (int c = 0; c < ti->ncols; c++) {
        ti->cols[c] = td_xstrdup(PQgetvalue(r, c, 0));
        if (PQgetvalue(r, c, 1)[0] == 't')
            continue; /* a generated column: exported, recomputed here, never written */
        char *qc = PQescapeIdentifier(im->pg, ti->cols[c], strlen(ti->cols[c]));
        buf_add(&into, ", ", 2);
        buf_add(&into, qc, strlen(qc));
        buf_add(&from, ", r.", 4);
        buf_add(&from, qc, strlen(qc));
        PQfreemem(qc);
    }
    ti->insert_sql = td_xasprintf("INSERT INTO %s (tenant_id%s) OVERRIDING SYSTEM VALUE "
                                  "SELECT $1::uuid%s FROM json_array_elements($2::json) e, "
                                  "LATERAL json_populate_record(NULL::%s, e->'row') r",
                                  q, into.p ? into.p : "", from.p ? from.p : "", q);
    free(into.p);
    free(from.p);
    free(q);
    PQclear(r);
    return 0;
}

/* Every row the tenant owns, children first (a restore in place starts from nothing). */
static int delete_rows(struct tnt_import *im, const char *schema)
{
    int rc = 0;
    for (int i = im->tables.n - 1; rc == 0 && i >= 0; i--) {
        char *q = tnt__qualified(im->pg, schema, im->tables.names[i]);
        char *sql = q ? td_xasprintf("DELETE FROM %s WHERE tenant_id = $1", q) : NULL;
        rc = sql ? db_admin_exec(im->pg, "removing the rows to replace", sql, 1,
                                 (const char *const[]){im->t->id}, NULL)
                 : TD_EINTERNAL;
        free(sql);
        free(q);
    }
    return rc;
}

/* The tenant's storage, in an open transaction, with its tables described. */
static int open_storage(struct tnt_import *im)
{
    const struct tnt_tenant *t = im->t;
    const char *schema = t->isolation == TNT_ISO_POOL ? "pool" : t->ident;
    int rc = db_admin_connect(im->db, t->server_idx,
                              t->isolation == TNT_ISO_DATABASE ? t->dbname : NULL, &im->pg);
    if (rc == 0)
        rc = db_admin_exec(im->pg, "starting the import", "BEGIN", 0, NULL, NULL);
    if (rc == 0)
        rc = tnt__tables_read(im->pg, schema, &im->tables);
    if (rc == 0)
        im->info = td_xcalloc((size_t)im->tables.n + 1, sizeof(*im->info));
    for (int i = 0; rc == 0 && i < im->tables.n; i++)
        rc = table_info(im, schema, i);
    if (rc == 0 && im->replace)
        rc = delete_rows(im, schema);
    return rc < 0 ? fail(im, rc, "the tenant's storage is unreachable") : 0;
}

static int header(struct tnt_import *im, json_t *v)
{
    json_t *fmt = json_object_get(v, "format"), *ver = json_object_get(v, "version");
    json_t *t = json_object_get(v, "tenant");
    if (!json_is_string(fmt) || strcmp(json_string_value(fmt), TNT_EXPORT_FORMAT) != 0 ||
        !json_is_integer(ver) || !json_is_object(t))
        return fail(im, TD_EVALIDATION,
                    "line %lld must be the header {\"format\":\"" TNT_EXPORT_FORMAT
                    "\",\"version\":1,\"tenant\":{...}}",
                    im->lineno);
    if (json_integer_value(ver) != TNT_EXPORT_VERSION)
        return fail(im, TD_EVALIDATION, "export version %lld is not supported (only %d)",
                    (long long)json_integer_value(ver), TNT_EXPORT_VERSION);
    im->tenant = json_incref(t);
    if (im->replace)
        return open_storage(im);
    struct tnt_new n = {.isolation = -1};
    const char *status = NULL, *expires = NULL, *detail = NULL;
    int rc = im->on_header(im->ctx, im->tenant, &n, &status, &expires, &detail);
    if (rc < 0)
        return fail(im, rc, "%s", detail ? detail : "the exported tenant is refused");
    n.owner = NULL;
    char *owner_json = NULL;
    rc = tnt_provision(im->db, im->migs, &n, &im->t, &owner_json);
    free(owner_json);
    if (rc == TD_ECONFLICT)
        return fail(im, rc, "this slug is taken");
    if (rc == TD_EVALIDATION)
        return fail(im, rc, "server is not a configured database server");
    if (rc < 0)
        return fail(im, rc, "the new tenant could not be provisioned");
    if ((rc = restore_catalog(im, status ? status : "active", expires)) < 0)
        return rc;
    return open_storage(im);
}

/* ---- rows -------------------------------------------------------------------- */

/* What PostgreSQL refused, said without its own words (no SQL text reaches a client). */
static const char *misfit(const PGresult *r, char *buf, size_t size)
{
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *col = PQresultErrorField(r, PG_DIAG_COLUMN_NAME);
    const char *con = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);
    if (!strcmp(state, "23502"))
        snprintf(buf, size, "column \"%.64s\" is missing or null", col ? col : "?");
    else if (!strcmp(state, "23514"))
        snprintf(buf, size, "check \"%.64s\" does not hold", con ? con : "?");
    else if (!strcmp(state, "23503"))
        snprintf(buf, size,
                 "a reference (\"%.64s\") names a row the export does not hold before it",
                 con ? con : "?");
    else
        snprintf(buf, size, "a value of the wrong type or out of range");
    return buf;
}

/* Insert the batch (one statement: a self-reference inside it is checked at its end). */
static int flush(struct tnt_import *im)
{
    char why[200];
    if (im->batch_rows == 0)
        return 0;
    const char *table = im->tables.names[im->batch_table];
    buf_add(&im->batch, "]", 1);
    PGresult *r = PQexecParams(im->pg, im->info[im->batch_table].insert_sql, 2, NULL,
                               (const char *const[]){im->t->id, im->batch.p}, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (state && !strcmp(state, "23505"))
            rc = fail(im, TD_ECONFLICT,
                      "lines %lld-%lld (%s): a row's key already exists in that storage (is the "
                      "exported tenant still there? import it into another isolation or server)",
                      im->batch_first, im->lineno, table);
        else if (state && (!strncmp(state, "22", 2) || !strncmp(state, "23", 2)))
            rc = fail(im, TD_EVALIDATION, "lines %lld-%lld (%s): a row does not fit its table: %s",
                      im->batch_first, im->lineno, table, misfit(r, why, sizeof(why)));
        else
            rc = fail(im, db_map_error(r), "lines %lld-%lld (%s) could not be inserted",
                      im->batch_first, im->lineno, table);
    } else if (atoll(PQcmdTuples(r)) != im->batch_rows) {
        rc = fail(im, TD_EINTERNAL, "lines %lld-%lld (%s): %s rows inserted of %d", im->batch_first,
                  im->lineno, table, PQcmdTuples(r), im->batch_rows);
    }
    PQclear(r);
    im->rows += rc == 0 ? im->batch_rows : 0;
    im->batch.len = 0;
    im->batch_rows = 0;
    return rc;
}

static int table_index(const struct tnt_import *im, const char *name)
{
    for (int i = 0; name && i < im->tables.n; i++)
        if (!strcmp(im->tables.names[i], name))
            return i;
    return -1;
}

/* A {"table","row"} line: checked here, its own text added to the batch. */
static int row(struct tnt_import *im, json_t *v, const char *text, size_t len)
{
    json_t *tb = json_object_get(v, "table"), *rw = json_object_get(v, "row");
    int k = json_is_string(tb) ? table_index(im, json_string_value(tb)) : -1;
    if (!json_is_object(rw) || !json_is_string(tb) || json_object_size(v) != 2)
        return fail(im, TD_EVALIDATION, "line %lld must be {\"table\":\"<table>\",\"row\":{...}}",
                    im->lineno);
    if (k < 0)
        return fail(im, TD_EVALIDATION, "line %lld: no table \"%.64s\" in this storage", im->lineno,
                    json_string_value(tb));
    const char *key;
    json_t *val;
    json_object_foreach(rw, key, val)
    {
        int c = 0;
        while (c < im->info[k].ncols && strcmp(im->info[k].cols[c], key) != 0)
            c++;
        if (c == im->info[k].ncols)
            return fail(im, TD_EVALIDATION, "line %lld: table %s has no column \"%.64s\"",
                        im->lineno, im->tables.names[k], key);
    }
    if (im->batch_table != k || im->batch_rows >= BATCH_ROWS || im->batch.len >= BATCH_BYTES) {
        int rc = flush(im);
        if (rc < 0)
            return rc;
        im->batch_table = k;
    }
    buf_add(&im->batch, im->batch_rows ? "," : "[", 1);
    buf_add(&im->batch, text, len);
    if (im->batch_rows++ == 0)
        im->batch_first = im->lineno;
    return 0;
}

static int line(struct tnt_import *im, const char *p, size_t len)
{
    im->lineno++;
    while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
    if (strspn(p, " \t\r") >= len)
        return 0;
    json_error_t err;
    /* a row's numbers as reals: this parse only checks its shape, the values sent are the
     * line's text (every digit kept); the header's version is an integer */
    json_t *v = json_loadb(
        p, len, JSON_REJECT_DUPLICATES | (im->seen_header ? JSON_DECODE_INT_AS_REAL : 0), &err);
    int rc;
    if (!v)
        rc = fail(im, TD_EINVALID_JSON, "line %lld is not valid JSON", im->lineno);
    else if (!json_is_object(v))
        rc = fail(im, TD_EVALIDATION, "line %lld is not a JSON object", im->lineno);
    else if (!im->seen_header)
        rc = (im->seen_header = 1, header(im, v));
    else
        rc = row(im, v, p, len);
    json_decref(v);
    return rc;
}

int tnt_import_feed(struct tnt_import *im, const char *data, size_t len)
{
    while (im->rc == 0 && len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        if (im->line.len + take > MAX_LINE)
            return fail(im, TD_EVALIDATION, "line %lld is longer than %u MiB", im->lineno + 1,
                        MAX_LINE >> 20);
        if (!nl) {
            buf_add(&im->line, data, take);
            break;
        }
        if (im->line.len == 0) {
            line(im, data, take);
        } else {
            buf_add(&im->line, data, take);
            line(im, im->line.p, im->line.len);
            im->line.len = 0;
        }
        data += take + 1;
        len -= take + 1;
    }
    return im->rc;
}

int tnt_import_finish(struct tnt_import *im, struct tnt_tenant **out)
{
    *out = NULL;
    if (im->rc == 0 && im->line.len > 0) {
        line(im, im->line.p, im->line.len);
        im->line.len = 0;
    }
    if (im->rc == 0 && !im->seen_header)
        fail(im, TD_EVALIDATION, "the body is empty: expected an export (NDJSON)");
    const char *schema = im->t && im->t->isolation != TNT_ISO_POOL ? im->t->ident : "pool";
    if (im->rc == 0 && flush(im) == 0 && tnt__sync_sequences(im->pg, schema, &im->tables) < 0)
        fail(im, TD_EINTERNAL, "the sequences of the new storage could not be set");
    if (im->rc == 0 && db_admin_exec(im->pg, "committing the import", "COMMIT", 0, NULL, NULL) < 0)
        fail(im, TD_EUNAVAILABLE, "the import could not be committed");
    if (im->rc < 0)
        return im->rc;
    im->finished = 1;
    td_log_info("imported tenant %s: %lld rows into %d tables", im->t->slug, im->rows,
                im->tables.n);
    *out = tnt_tenant_ref(im->t);
    return 0;
}

const char *tnt_import_detail(const struct tnt_import *im)
{
    return im->rc < 0 ? im->detail : NULL;
}

long long tnt_import_rows(const struct tnt_import *im)
{
    return im->rows;
}

void tnt_import_free(struct tnt_import *im)
{
    if (!im)
        return;
    PQfinish(im->pg); /* rolls back an unfinished import */
    if (im->t && !im->finished && !im->replace && tnt_drop(im->db, im->t) < 0)
        td_log_error("could not remove the half-imported tenant %s", im->t->slug);
    tnt_tenant_unref(im->t);
    for (int i = 0; im->info && i < im->tables.n; i++) {
        for (int c = 0; c < im->info[i].ncols; c++)
            free(im->info[i].cols[c]);
        free(im->info[i].cols);
        free(im->info[i].insert_sql);
    }
    free(im->info);
    tnt__tables_cleanup(&im->tables);
    json_decref(im->tenant);
    free(im->line.p);
    free(im->batch.p);
    free(im);
}
