/*
 * export.c - NDJSON export of a tenant (see export.h): every tenant table of its storage,
 * read in one REPEATABLE READ snapshot, one table after another, each row streamed in
 * single-row mode and turned into its line by PostgreSQL itself (row_to_json).
 */
#include "tenant/export.h"

#include "core/log.h"
#include "core/mem.h"
#include "tenant/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tnt_export {
    PGconn *pg;
    const char *schema;
    char id[37];
    struct tnt__tables tables;
    int table;     /* index of the table being read */
    PGresult *row; /* the row handed out last, or fetched ahead by open */
    char *header;
    int header_sent;
    int ahead; /* row (NULL: the end) was fetched by open and is not handed out yet */
    int done;
};

/*
 * For table $1 (regclass text): its select list without tenant_id, timestamptz columns as
 * RFC 3339 UTC with six fractional digits (SPEC §3; json_populate_record reads them back
 * exactly), and its order: created_at when it has one, then its primary key, so the same
 * rows always give the same text.
 */
static const char shape_sql[] =
    "SELECT (SELECT string_agg(CASE WHEN a.atttypid = 'timestamptz'::regtype THEN "
    "format('CASE WHEN isfinite(x.%1$I) THEN to_char(x.%1$I AT TIME ZONE ''UTC'', "
    "''YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'') ELSE x.%1$I::text END AS %1$I', a.attname) "
    "ELSE format('x.%I', a.attname) END, ', ' ORDER BY a.attnum) FROM pg_attribute a "
    "WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped "
    "AND a.attname <> 'tenant_id'), "
    "(SELECT string_agg(format('x.%I', a.attname), ', ' ORDER BY a.attname <> 'created_at', "
    "array_position(i.indkey::int2[], a.attnum)) FROM pg_attribute a LEFT JOIN pg_index i ON "
    "i.indrelid = a.attrelid AND i.indisprimary AND a.attnum = ANY (i.indkey::int2[]) "
    "WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped "
    "AND a.attname <> 'tenant_id' AND (i.indrelid IS NOT NULL OR a.attname = 'created_at'))";

static char *header_line(const struct tnt_tenant *t)
{
    json_t *h = json_pack("{s:s, s:i, s:o}", "format", TNT_EXPORT_FORMAT, "version",
                          TNT_EXPORT_VERSION, "tenant", tnt_tenant_json(t));
    char *text = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    return text;
}

static void log_pg(const char *what, PGconn *pg)
{
    td_log_error("%s: %.*s", what, (int)strcspn(PQerrorMessage(pg), "\n"), PQerrorMessage(pg));
}

/* Send the query of table e->table in single-row mode. */
static int start_table(struct tnt_export *e)
{
    const char *name = e->tables.names[e->table];
    PGresult *r = NULL;
    char *q = tnt__qualified(e->pg, e->schema, name);
    if (!q)
        return TD_EINTERNAL;
    int rc = db_admin_exec(e->pg, "reading a table's columns", shape_sql, 1,
                           (const char *const[]){q}, &r);
    char *sql = NULL;
    if (rc == 0)
        sql = td_xasprintf("SELECT '{\"table\":' || to_json($2::text)::text || ',\"row\":' || "
                           "(SELECT row_to_json(r) FROM (SELECT %s) r)::text || '}' "
                           "FROM %s x WHERE x.tenant_id = $1%s%s",
                           PQgetvalue(r, 0, 0), q, PQgetisnull(r, 0, 1) ? "" : " ORDER BY ",
                           PQgetvalue(r, 0, 1));
    PQclear(r);
    free(q);
    if (rc < 0)
        return rc;
    if (!PQsendQueryParams(e->pg, sql, 2, NULL, (const char *const[]){e->id, name}, NULL, NULL,
                           0) ||
        !PQsetSingleRowMode(e->pg)) {
        log_pg("export failed", e->pg);
        rc = TD_EUNAVAILABLE;
    }
    free(sql);
    return rc;
}

/* Fetch the next row into e->row, going on to the next table at the end of one: 1 a row,
 * 0 the end of the last table, or a negative code. */
static int fetch(struct tnt_export *e)
{
    for (;;) {
        PQclear(e->row);
        e->row = PQgetResult(e->pg);
        ExecStatusType st = e->row ? PQresultStatus(e->row) : PGRES_FATAL_ERROR;
        if (st == PGRES_SINGLE_TUPLE)
            return 1;
        PQclear(e->row);
        e->row = NULL;
        PGresult *extra;
        while ((extra = PQgetResult(e->pg)))
            PQclear(extra);
        if (st != PGRES_TUPLES_OK) {
            log_pg("export failed", e->pg);
            return TD_EINTERNAL;
        }
        if (++e->table >= e->tables.n)
            return 0;
        int rc = start_table(e);
        if (rc < 0)
            return rc;
    }
}

int tnt_export_open(struct db *db, const struct tnt_tenant *t, struct tnt_export **out)
{
    struct tnt_export *e = td_xcalloc(1, sizeof(*e));
    *out = NULL;
    snprintf(e->id, sizeof(e->id), "%s", t->id);
    e->schema = t->isolation == TNT_ISO_POOL ? "pool" : t->ident;
    if (t->server_idx < 0)
        td_log_error("cannot export tenant %s: it is placed on server \"%s\", which this "
                     "instance does not know (TENANTD_DB_SERVERS)",
                     t->slug, t->server);
    int rc = db_admin_connect(db, t->server_idx,
                              t->isolation == TNT_ISO_DATABASE ? t->dbname : NULL, &e->pg);
    if (rc == 0)
        rc = db_admin_exec(e->pg, "starting the export",
                           "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, NULL);
    if (rc == 0)
        rc = tnt__tables_read(e->pg, e->schema, &e->tables);
    if (rc == 0 && e->tables.n == 0) {
        td_log_error("export of tenant %s: its storage has no tenant tables", t->slug);
        rc = TD_EINTERNAL;
    }
    if (rc == 0)
        rc = start_table(e);
    if (rc == 0)
        rc = fetch(e);
    if (rc < 0) {
        tnt_export_close(e);
        return rc;
    }
    e->ahead = 1;
    e->header = header_line(t);
    *out = e;
    return 0;
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
    tnt__tables_cleanup(&e->tables);
    free(e->header);
    free(e);
}
