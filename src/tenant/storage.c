/*
 * storage.c - the tenant tables of a schema as the PostgreSQL catalog describes them, and
 * removing a tenant's storage (see internal.h). Identifiers reach SQL text only quoted
 * (tnt_name_quote, PQescapeIdentifier); values only as parameters.
 */
#include "tenant/internal.h"

#include "core/log.h"
#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

/* Depth of a table = the longest chain of foreign keys from it to a table without any
 * (self-references ignored); parents come first. The depth cap stops a reference cycle. */
static const char tables_sql[] =
    "WITH RECURSIVE t AS (SELECT c.oid, c.relname FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 "
    "AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND EXISTS (SELECT 1 FROM "
    "pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND a.attnum > 0 "
    "AND NOT a.attisdropped)), "
    "e AS (SELECT DISTINCT conrelid AS child, confrelid AS parent FROM pg_constraint "
    "WHERE contype = 'f' AND conrelid <> confrelid AND conrelid IN (SELECT oid FROM t) "
    "AND confrelid IN (SELECT oid FROM t)), "
    "d(oid, depth) AS (SELECT oid, 0 FROM t UNION ALL SELECT e.child, d.depth + 1 FROM d "
    "JOIN e ON e.parent = d.oid WHERE d.depth < 64) "
    "SELECT t.relname FROM t JOIN d USING (oid) GROUP BY t.relname "
    "ORDER BY max(d.depth), t.relname";

int tnt__tables_read(PGconn *pg, const char *schema, struct tnt__tables *out)
{
    PGresult *r = NULL;
    memset(out, 0, sizeof(*out));
    int rc = db_admin_exec(pg, "listing the tenant tables", tables_sql, 1,
                           (const char *const[]){schema}, &r);
    if (rc < 0)
        return rc;
    out->n = PQntuples(r);
    out->names = td_xcalloc((size_t)out->n + 1, sizeof(char *));
    for (int i = 0; i < out->n; i++)
        out->names[i] = td_xstrdup(PQgetvalue(r, i, 0));
    PQclear(r);
    return 0;
}

void tnt__tables_cleanup(struct tnt__tables *t)
{
    for (int i = 0; i < t->n; i++)
        free(t->names[i]);
    free(t->names);
    memset(t, 0, sizeof(*t));
}

char *tnt__qualified(PGconn *pg, const char *schema, const char *table)
{
    char *s = tnt_name_quote(pg, schema);
    char *tb = s ? PQescapeIdentifier(pg, table, strlen(table)) : NULL;
    char *out = tb ? td_xasprintf("%s.%s", s, tb) : NULL;
    if (s && !tb)
        td_log_error("could not quote table name %s", table);
    PQfreemem(s);
    PQfreemem(tb);
    return out;
}

int tnt__pool_delete(PGconn *pg, const char *tenant_id)
{
    struct tnt__tables tb;
    int rc = tnt__tables_read(pg, "pool", &tb);
    for (int i = tb.n - 1; rc == 0 && i >= 0; i--) {
        char *q = tnt__qualified(pg, "pool", tb.names[i]);
        char *sql = q ? td_xasprintf("DELETE FROM %s WHERE tenant_id = $1", q) : NULL;
        rc = sql ? db_admin_exec(pg, "deleting the tenant's pool rows", sql, 1,
                                 (const char *const[]){tenant_id}, NULL)
                 : TD_EINTERNAL;
        free(sql);
        free(q);
    }
    tnt__tables_cleanup(&tb);
    return rc;
}

static int sync_table(PGconn *pg, const char *qualified)
{
    PGresult *r = NULL;
    int rc = db_admin_exec(pg, "finding a table's sequences",
                           "SELECT a.attname, s FROM pg_attribute a, LATERAL "
                           "pg_get_serial_sequence($1, a.attname) s WHERE a.attrelid = "
                           "$1::regclass AND a.attnum > 0 AND NOT a.attisdropped AND s IS NOT NULL",
                           1, (const char *const[]){qualified}, &r);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        const char *col = PQgetvalue(r, i, 0);
        char *qc = PQescapeIdentifier(pg, col, strlen(col));
        char *sql = td_xasprintf("SELECT setval($1::regclass, x.m) FROM (SELECT max(%s) AS m FROM "
                                 "%s) x WHERE x.m > coalesce(pg_sequence_last_value($1::regclass), "
                                 "0)",
                                 qc, qualified);
        rc = db_admin_exec(pg, "moving a sequence past the copied rows", sql, 1,
                           (const char *const[]){PQgetvalue(r, i, 1)}, NULL);
        free(sql);
        PQfreemem(qc);
    }
    PQclear(r);
    return rc;
}

int tnt__sync_sequences(PGconn *pg, const char *schema, const struct tnt__tables *tb)
{
    int rc = 0;
    for (int i = 0; rc == 0 && i < tb->n; i++) {
        char *q = tnt__qualified(pg, schema, tb->names[i]);
        rc = q ? sync_table(pg, q) : TD_EINTERNAL;
        free(q);
    }
    return rc;
}

int tnt__drop_schema(PGconn *pg, const char *schema)
{
    char *q = tnt_name_quote(pg, schema);
    if (!q)
        return TD_EINTERNAL;
    char *sql = td_xasprintf("DROP SCHEMA IF EXISTS %s CASCADE", q);
    int rc = db_admin_exec(pg, "dropping a tenant schema", sql, 0, NULL, NULL);
    free(sql);
    PQfreemem(q);
    return rc;
}

int tnt__drop_role(PGconn *pg, const char *role)
{
    PGresult *r = NULL;
    char *q = tnt_name_quote(pg, role);
    if (!q)
        return TD_EINTERNAL;
    int rc =
        db_admin_exec(pg, "looking for a tenant role", "SELECT 1 FROM pg_roles WHERE rolname = $1",
                      1, (const char *const[]){role}, &r);
    if (rc == 0 && PQntuples(r) == 1) {
        char *sql = td_xasprintf("DROP OWNED BY %s; DROP ROLE %s", q, q);
        rc = db_admin_exec(pg, "dropping a tenant role", sql, 0, NULL, NULL);
        free(sql);
    }
    PQclear(r);
    PQfreemem(q);
    return rc;
}

int tnt__drop_database(struct db *db, PGconn *srv, int server, const char *database)
{
    char *q = tnt_name_quote(srv, database);
    if (!q)
        return TD_EINTERNAL;
    db_forget_database(db, server, database);
    char *sql = td_xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", q);
    int rc = db_admin_exec(srv, "dropping a tenant database", sql, 0, NULL, NULL);
    free(sql);
    PQfreemem(q);
    return rc;
}
