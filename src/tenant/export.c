/*
 * export.c - NDJSON export of a tenant (one statement, streamed in single-row mode) and
 * the import that recreates it as a new tenant (see export.h).
 */
#include "tenant/export.h"

#include "core/log.h"
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const tnt_export_tables[TNT_EXPORT_TABLES] = {"users", "projects", "audit_logs"};

struct tnt_export {
    PGconn *pg;
    PGresult *row; /* the row handed out last, or fetched ahead by open */
    char *header;
    int header_sent;
    int ahead; /* row (NULL: the end) was fetched by open and is not handed out yet */
    int done;
};

static const char *schema_of(const struct tnt_tenant *t)
{
    return t->isolation == TNT_ISO_POOL ? "pool" : t->ident;
}

/* Rows ordered by table, then creation: the same rows always give the same text. */
#define EXPORT_PART(k, table)                                                                      \
    "SELECT " #k " AS k, x.created_at AS c, x.id AS i, '{\"table\":\"" table "\",\"row\":' || "    \
    "(to_jsonb(x) - 'tenant_id')::text || '}' AS line FROM %s." table " x "                        \
    "WHERE x.tenant_id = $1"

static const char export_sql[] =
    "SELECT line FROM (" EXPORT_PART(0, "users") " UNION ALL " EXPORT_PART(
        1, "projects") " UNION ALL " EXPORT_PART(2, "audit_logs") ") q ORDER BY k, c, i";

static char *header_line(const struct tnt_tenant *t)
{
    json_t *h = json_pack("{s:s, s:i, s:o}", "format", TNT_EXPORT_FORMAT, "version",
                          TNT_EXPORT_VERSION, "tenant", tnt_tenant_json(t));
    char *text = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    return text;
}

/* Fetch the next result into e->row: 1 a row, 0 the end, TD_EINTERNAL an error. */
static int fetch(struct tnt_export *e)
{
    PQclear(e->row);
    e->row = PQgetResult(e->pg);
    ExecStatusType st = e->row ? PQresultStatus(e->row) : PGRES_FATAL_ERROR;
    if (st == PGRES_SINGLE_TUPLE)
        return 1;
    int rc = st == PGRES_TUPLES_OK ? 0 : TD_EINTERNAL;
    if (rc < 0)
        td_log_error("export failed: %.*s", (int)strcspn(PQerrorMessage(e->pg), "\n"),
                     PQerrorMessage(e->pg));
    PQclear(e->row);
    e->row = NULL;
    PGresult *extra;
    while ((extra = PQgetResult(e->pg)))
        PQclear(extra);
    return rc;
}

int tnt_export_open(struct db *db, const struct tnt_tenant *t, struct tnt_export **out)
{
    struct tnt_export *e = td_xcalloc(1, sizeof(*e));
    const char *s = schema_of(t);
    char *sql = NULL;
    *out = NULL;
    if (t->server_idx < 0)
        td_log_error("cannot export tenant %s: it is placed on server \"%s\", which this "
                     "instance does not know (TENANTD_DB_SERVERS)",
                     t->slug, t->server);
    int rc = db_admin_connect(db, t->server_idx,
                              t->isolation == TNT_ISO_DATABASE ? t->dbname : NULL, &e->pg);
    if (rc < 0)
        goto out;
    sql = td_xasprintf(export_sql, s, s, s);
    if (!PQsendQueryParams(e->pg, sql, 1, NULL, (const char *const[]){t->id}, NULL, NULL, 0) ||
        !PQsetSingleRowMode(e->pg)) {
        td_log_error("export failed: %.*s", (int)strcspn(PQerrorMessage(e->pg), "\n"),
                     PQerrorMessage(e->pg));
        rc = TD_EUNAVAILABLE;
        goto out;
    }
    rc = fetch(e);
    if (rc < 0)
        goto out;
    e->ahead = 1;
    e->header = header_line(t);
    rc = 0;
out:
    free(sql);
    if (rc < 0)
        tnt_export_close(e);
    else
        *out = e;
    return rc;
}

int tnt_export_next(struct tnt_export *e, const char **line, size_t *len)
{
    int rc = 1;
    if (!e->header_sent) {
        e->header_sent = 1;
        *line = e->header;
        *len = strlen(e->header);
        return 1;
    }
    if (e->done)
        return 0;
    if (e->ahead)
        e->ahead = 0;
    else
        rc = fetch(e);
    if (rc <= 0 || !e->row) {
        e->done = 1;
        return rc < 0 ? rc : 0;
    }
    *line = PQgetvalue(e->row, 0, 0);
    *len = (size_t)PQgetlength(e->row, 0, 0);
    return 1;
}

void tnt_export_close(struct tnt_export *e)
{
    if (!e)
        return;
    PQclear(e->row);
    PQfinish(e->pg); /* abandons an unfinished read */
    free(e->header);
    free(e);
}

/* ---- import ---------------------------------------------------------------- */

void tnt_import_data_cleanup(struct tnt_import_data *d)
{
    json_decref(d->tenant);
    for (int i = 0; i < TNT_EXPORT_TABLES; i++)
        json_decref(d->rows[i]);
    memset(d, 0, sizeof(*d));
}

static int table_index(const char *name)
{
    for (int i = 0; name && i < TNT_EXPORT_TABLES; i++)
        if (strcmp(name, tnt_export_tables[i]) == 0)
            return i;
    return -1;
}

/* One non-blank line (number lineno); the first must be the header. */
static int parse_line(json_t *v, int first, int lineno, struct tnt_import_data *d, char *detail,
                      size_t cap)
{
    if (first) {
        json_t *fmt = json_object_get(v, "format"), *ver = json_object_get(v, "version");
        json_t *t = json_object_get(v, "tenant");
        if (!json_is_string(fmt) || strcmp(json_string_value(fmt), TNT_EXPORT_FORMAT) != 0 ||
            !json_is_integer(ver) || !json_is_object(t)) {
            snprintf(detail, cap,
                     "line 1 must be the header {\"format\":\"" TNT_EXPORT_FORMAT
                     "\",\"version\":1,\"tenant\":{...}}");
            return TD_EVALIDATION;
        }
        if (json_integer_value(ver) != TNT_EXPORT_VERSION) {
            snprintf(detail, cap, "export version %lld is not supported (only %d)",
                     (long long)json_integer_value(ver), TNT_EXPORT_VERSION);
            return TD_EVALIDATION;
        }
        d->tenant = json_incref(t);
        return 0;
    }
    json_t *tb = json_object_get(v, "table"), *row = json_object_get(v, "row");
    int k = json_is_string(tb) ? table_index(json_string_value(tb)) : -1;
    if (k < 0 || !json_is_object(row) || json_object_size(v) != 2) {
        snprintf(detail, cap,
                 "line %d must be {\"table\":\"users|projects|audit_logs\",\"row\":{...}}", lineno);
        return TD_EVALIDATION;
    }
    json_array_append(d->rows[k], row);
    return 0;
}

int tnt_import_parse(const char *body, size_t len, struct tnt_import_data *d, char *detail,
                     size_t cap)
{
    int rc = 0, lineno = 0, seen = 0;
    size_t pos = 0;
    memset(d, 0, sizeof(*d));
    for (int i = 0; i < TNT_EXPORT_TABLES; i++)
        d->rows[i] = json_array();
    while (rc == 0 && pos < len) {
        const char *nl = memchr(body + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - body) : len, l = end - pos;
        const char *p = body + pos;
        pos = end + 1;
        lineno++;
        size_t blank = strspn(p, " \t\r");
        if (blank >= l)
            continue;
        json_error_t err;
        json_t *v = json_loadb(p, l, JSON_REJECT_DUPLICATES, &err);
        if (!v) {
            snprintf(detail, cap, "line %d is not valid JSON", lineno);
            rc = TD_EINVALID_JSON;
        } else if (!json_is_object(v)) {
            snprintf(detail, cap, "line %d is not a JSON object", lineno);
            rc = TD_EVALIDATION;
        } else {
            rc = parse_line(v, !seen, lineno, d, detail, cap);
            seen = 1;
        }
        json_decref(v);
    }
    if (rc == 0 && !seen) {
        snprintf(detail, cap, "the body is empty: expected an export (NDJSON)");
        rc = TD_EVALIDATION;
    }
    if (rc < 0)
        tnt_import_data_cleanup(d);
    return rc;
}

/* Map a failed import statement; *detail says what the user can do about it. */
static int import_error(PGresult *r, const char *table, const char **detail)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state && strcmp(state, "23505") == 0) {
        *detail = "a row id of the export already exists in that storage (is the exported "
                  "tenant still there? import it into another isolation or server)";
        return TD_ECONFLICT;
    }
    if (state && (!strncmp(state, "22", 2) || !strncmp(state, "23", 2))) {
        *detail = table ? "a row does not fit its table: a value of the wrong type, or a "
                          "required field missing"
                        : "subscription_expires_at must be an RFC 3339 timestamp or null";
        return TD_EVALIDATION;
    }
    return db_map_error(r);
}

/* Every row of t, children first (audit entries and projects name users). */
static int delete_rows(PGconn *pg, const struct tnt_tenant *t)
{
    int rc = 0;
    for (int i = TNT_EXPORT_TABLES - 1; rc == 0 && i >= 0; i--) {
        char *sql = td_xasprintf("DELETE FROM %s.%s WHERE tenant_id = $1", schema_of(t),
                                 tnt_export_tables[i]);
        rc = db_admin_exec(pg, "removing the rows to replace", sql, 1, (const char *const[]){t->id},
                           NULL);
        free(sql);
    }
    return rc;
}

static int insert_rows(PGconn *pg, const struct tnt_tenant *t, const struct tnt_import_data *d,
                       int replace, const char **detail)
{
    const char *s = schema_of(t);
    int rc = db_admin_exec(pg, "starting the import", "BEGIN", 0, NULL, NULL);
    if (rc == 0 && replace)
        rc = delete_rows(pg, t);
    for (int i = 0; rc == 0 && i < TNT_EXPORT_TABLES; i++) {
        size_t n = json_array_size(d->rows[i]);
        if (n == 0)
            continue;
        const char *tb = tnt_export_tables[i];
        char *sql = td_xasprintf("INSERT INTO %s.%s SELECT (jsonb_populate_record(NULL::%s.%s, "
                                 "e || jsonb_build_object('tenant_id', $1::text))).* "
                                 "FROM jsonb_array_elements($2::jsonb) e",
                                 s, tb, s, tb);
        char *rows = json_dumps(d->rows[i], JSON_COMPACT);
        PGresult *r =
            PQexecParams(pg, sql, 2, NULL, (const char *const[]){t->id, rows}, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = import_error(r, tb, detail);
        else if ((size_t)atoll(PQcmdTuples(r)) != n)
            rc = TD_EINTERNAL;
        PQclear(r);
        free(rows);
        free(sql);
    }
    if (rc == 0)
        rc = db_admin_exec(pg, "committing the import", "COMMIT", 0, NULL, NULL);
    else
        (void)!db_admin_exec(pg, "abandoning the import", "ROLLBACK", 0, NULL, NULL);
    return rc;
}

int tnt_import_replace(struct db *db, const struct tnt_tenant *t, const struct tnt_import_data *d,
                       const char **detail)
{
    PGconn *pg = NULL;
    *detail = NULL;
    int rc = db_admin_connect(db, t->server_idx < 0 ? 0 : t->server_idx,
                              t->isolation == TNT_ISO_DATABASE ? t->dbname : NULL, &pg);
    if (rc == 0)
        rc = insert_rows(pg, t, d, 1, detail);
    PQfinish(pg);
    return rc;
}

/* Status and subscription of the new tenant's catalog row; *t is replaced. */
static int restore_catalog(struct db *db, struct tnt_tenant **t, const char *status,
                           const char *expires, const char **detail)
{
    PGconn *cat = NULL;
    int rc = db_admin_connect(db, 0, NULL, &cat);
    if (rc < 0)
        return rc;
    char *sql = td_xasprintf("UPDATE tenantd.tenants SET status = $2, subscription_expires_at = "
                             "$3::timestamptz, updated_at = now() WHERE id = $1 RETURNING %s",
                             tnt_catalog_columns);
    PGresult *r = PQexecParams(cat, sql, 3, NULL, (const char *const[]){(*t)->id, status, expires},
                               NULL, NULL, 0);
    free(sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        rc = PQresultStatus(r) == PGRES_TUPLES_OK ? TD_EINTERNAL : import_error(r, NULL, detail);
    } else {
        tnt_tenant_unref(*t);
        *t = tnt_tenant_from_row(db, r, 0);
    }
    PQclear(r);
    PQfinish(cat);
    return rc;
}

int tnt_import(struct db *db, const struct mig_set *migs, const struct tnt_new *n,
               const char *status, const char *expires, const struct tnt_import_data *d,
               struct tnt_tenant **out, const char **detail)
{
    struct tnt_tenant *t = NULL;
    PGconn *pg = NULL;
    char *owner_json = NULL;
    *out = NULL;
    *detail = NULL;
    int rc = tnt_provision(db, migs, n, &t, &owner_json);
    free(owner_json);
    if (rc == TD_ECONFLICT)
        *detail = "this slug is taken";
    if (rc < 0)
        return rc;
    rc = restore_catalog(db, &t, status, expires, detail);
    if (rc == 0)
        rc = db_admin_connect(db, t->server_idx,
                              t->isolation == TNT_ISO_DATABASE ? t->dbname : NULL, &pg);
    if (rc == 0)
        rc = insert_rows(pg, t, d, 0, detail);
    PQfinish(pg);
    if (rc < 0) {
        if (tnt_drop(db, t) < 0)
            td_log_error("could not remove the half-imported tenant %s", t->slug);
        tnt_tenant_unref(t);
        return rc;
    }
    td_log_info("imported tenant %s (%zu users, %zu projects, %zu audit log rows)", t->slug,
                json_array_size(d->rows[0]), json_array_size(d->rows[1]),
                json_array_size(d->rows[2]));
    *out = t;
    return 0;
}
