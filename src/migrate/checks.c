/*
 * checks.c - what tenantd makes sure of after every tenant migration file (SPEC §7): the
 * tenant policy is enabled and FORCEd on every tenant table, and a file is refused, naming
 * the table, when it leaves a table without tenant_id, a foreign key between tenant tables
 * that does not carry tenant_id, an unreadable tenantd comment, or a served table whose
 * path is a built-in route.
 */
#include "migrate/internal.h"

#include "core/mem.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Run with search_path at the storage's schema. tenant_isolation (permissive) lets a
 * transaction see its tenant's rows; tenantd_tenant (restrictive) keeps any other policy
 * a file writes from widening that. Both read app.tenant_id, so a transaction without it
 * sees nothing.
 */
const char mig__enforce_sql[] =
    "DO $tenantd$ DECLARE r record; e text := 'tenant_id = NULLIF(current_setting("
    "''app.tenant_id'', true), '''')::uuid'; BEGIN "
    "FOR r IN SELECT c.oid::regclass AS t, c.oid FROM pg_class c JOIN pg_namespace n ON "
    "n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') "
    "AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND "
    "a.attname = 'tenant_id' AND a.attnum > 0 AND NOT a.attisdropped) LOOP "
    "EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', r.t); "
    "IF NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = r.oid AND "
    "p.polname = 'tenant_isolation') THEN EXECUTE format('CREATE POLICY tenant_isolation ON %s "
    "USING (%s) WITH CHECK (%s)', r.t, e, e); END IF; "
    "IF NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = r.oid AND "
    "p.polname = 'tenantd_tenant') THEN EXECUTE format('CREATE POLICY tenantd_tenant ON %s AS "
    "RESTRICTIVE USING (%s) WITH CHECK (%s)', r.t, e, e); END IF; "
    "END LOOP; END $tenantd$";

/* Every table of the schema but the ledger: its name, whether tenant_id is a uuid NOT NULL
 * column, and its comment. */
static const char tables_sql[] =
    "SELECT c.relname, EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND "
    "a.attname = 'tenant_id' AND a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull AND "
    "a.atttypid = 'uuid'::regtype), obj_description(c.oid, 'pg_class') FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
    "AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname <> 'tenantd_migrations' "
    "ORDER BY c.relname";

/* Foreign keys to a tenant table whose columns do not pair tenant_id with tenant_id. */
static const char fkeys_sql[] =
    "SELECT c.relname, con.conname FROM pg_constraint con JOIN pg_class c ON "
    "c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE con.contype = 'f' AND n.nspname = current_schema() AND EXISTS (SELECT 1 FROM "
    "pg_attribute a WHERE a.attrelid = con.confrelid AND a.attname = 'tenant_id' AND "
    "NOT a.attisdropped) AND NOT EXISTS (SELECT 1 FROM generate_subscripts(con.conkey, 1) k "
    "JOIN pg_attribute ca ON ca.attrelid = con.conrelid AND ca.attnum = con.conkey[k] "
    "JOIN pg_attribute pa ON pa.attrelid = con.confrelid AND pa.attnum = con.confkey[k] "
    "WHERE ca.attname = 'tenant_id' AND pa.attname = 'tenant_id') ORDER BY 1, 2";

/* Column comments that start with the word tenantd. */
static const char columns_sql[] =
    "SELECT c.relname, a.attname, d.description FROM pg_description d JOIN pg_class c ON "
    "c.oid = d.objoid AND d.classoid = 'pg_class'::regclass JOIN pg_namespace n ON "
    "n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid "
    "WHERE n.nspname = current_schema() AND d.objsubid > 0 AND d.description ~ '^\\s*tenantd' "
    "ORDER BY 1, 2";

/* First path segments the server's own routes take (SPEC §6): a served table may not take
 * one. users and audit_logs are the built-in tables behind two of them. */
static const char *const reserved[] = {"me",      "auth",         "signup",  "health", "ready",
                                       "metrics", "openapi.json", "console", "admin",  "t",
                                       "users",   "audit-logs",   NULL};

/*
 * The options of a comment: NULL when it is not a tenantd comment; else *opts gets the
 * JSON object after the word (caller json_decref) and 0 is returned, or -1 when that text
 * is not a JSON object.
 */
static int options(const char *comment, json_t **opts)
{
    *opts = NULL;
    if (!comment)
        return 0;
    const char *p = comment + strspn(comment, " \t\r\n");
    if (strncmp(p, "tenantd", 7) != 0 || (p[7] && !strchr(" \t\r\n{", p[7])))
        return 0;
    json_error_t err;
    *opts = json_loads(p + 7, JSON_REJECT_DUPLICATES, &err);
    if (json_is_object(*opts))
        return 0;
    json_decref(*opts);
    *opts = NULL;
    return -1;
}

static int one_of(const char *s, const char *const *set)
{
    for (int i = 0; s && set[i]; i++)
        if (!strcmp(s, set[i]))
            return 1;
    return 0;
}

/*
 * What is wrong with the options of a table (column 0) or of a column (column 1), into
 * why[cap]; 0 when they are all known and well typed. A misspelt option would otherwise be
 * ignored and its default (member may write) would silently apply.
 */
static int bad_options(json_t *opts, int column, char *why, size_t cap)
{
    static const char *const roles[] = {"member", "admin", "owner", NULL};
    static const char *const plans[] = {"free", "starter", "pro", "enterprise", NULL};
    const char *k;
    json_t *v;
    json_object_foreach(opts, k, v)
    {
        if (column && (!strcmp(k, "private") || !strcmp(k, "readonly"))) {
            if (!json_is_boolean(v))
                return snprintf(why, cap, "option \"%s\" must be true or false", k), 1;
        } else if (!column && (!strcmp(k, "read") || !strcmp(k, "write"))) {
            if (!one_of(json_string_value(v), roles))
                return snprintf(why, cap, "option \"%s\" must be member, admin or owner", k), 1;
        } else if (!column && !strcmp(k, "expose")) {
            if (!json_is_boolean(v))
                return snprintf(why, cap, "option \"expose\" must be true or false"), 1;
        } else if (!column && !strcmp(k, "max") && json_is_object(v)) {
            const char *plan;
            json_t *n;
            json_object_foreach(v, plan, n)
            {
                if (!one_of(plan, plans) || !json_is_integer(n) || json_integer_value(n) < 0)
                    return snprintf(why, cap,
                                    "option \"max\" takes plans (free, starter, pro, "
                                    "enterprise) with whole numbers of rows"),
                           1;
            }
        } else {
            return snprintf(why, cap, "unknown option \"%.40s\"", k), 1;
        }
    }
    return 0;
}

static int check_tables(PGconn *pg, char *msg, size_t cap)
{
    PGresult *r = NULL;
    char why[160];
    int rc = db_admin_exec(pg, "checking the tenant tables", tables_sql, 0, NULL, &r);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        const char *name = PQgetvalue(r, i, 0);
        json_t *opts = NULL;
        if (PQgetvalue(r, i, 1)[0] != 't') {
            snprintf(msg, cap, "table %s has no tenant_id uuid NOT NULL column", name);
            rc = TD_EVALIDATION;
        } else if (options(PQgetisnull(r, i, 2) ? NULL : PQgetvalue(r, i, 2), &opts) < 0) {
            snprintf(msg, cap,
                     "table %s: its tenantd comment is not a JSON object after the "
                     "word tenantd",
                     name);
            rc = TD_EVALIDATION;
        } else if (opts && bad_options(opts, 0, why, sizeof(why))) {
            snprintf(msg, cap, "table %s: its tenantd comment: %s", name, why);
            rc = TD_EVALIDATION;
        } else if (strcmp(name, "users") != 0 && strcmp(name, "audit_logs") != 0 &&
                   !json_is_false(json_object_get(opts, "expose"))) {
            char path[128];
            snprintf(path, sizeof(path), "%s", name);
            for (char *c = path; *c; c++)
                *c = *c == '_' ? '-' : *c;
            for (int k = 0; reserved[k] && rc == 0; k++)
                if (!strcmp(path, reserved[k])) {
                    snprintf(msg, cap, "table %s: its path /%s collides with a built-in route",
                             name, path);
                    rc = TD_EVALIDATION;
                }
        }
        json_decref(opts);
    }
    PQclear(r);
    return rc;
}

static int check_fkeys_and_columns(PGconn *pg, char *msg, size_t cap)
{
    PGresult *r = NULL;
    int rc = db_admin_exec(pg, "checking foreign keys", fkeys_sql, 0, NULL, &r);
    if (rc == 0 && PQntuples(r) > 0) {
        snprintf(msg, cap,
                 "table %s: foreign key %s references a tenant table without tenant_id (declare "
                 "FOREIGN KEY (tenant_id, ...) REFERENCES t (tenant_id, ...))",
                 PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
        rc = TD_EVALIDATION;
    }
    PQclear(r);
    r = NULL;
    if (rc == 0)
        rc = db_admin_exec(pg, "checking column comments", columns_sql, 0, NULL, &r);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        json_t *opts = NULL;
        char why[160];
        if (options(PQgetvalue(r, i, 2), &opts) < 0) {
            snprintf(msg, cap,
                     "table %s: the tenantd comment of column %s is not a JSON object "
                     "after the word tenantd",
                     PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
            rc = TD_EVALIDATION;
        } else if (opts && bad_options(opts, 1, why, sizeof(why))) {
            snprintf(msg, cap, "table %s: the tenantd comment of column %s: %s",
                     PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), why);
            rc = TD_EVALIDATION;
        }
        json_decref(opts);
    }
    PQclear(r);
    return rc;
}

int mig__check_tenant(PGconn *pg, char *msg, size_t cap)
{
    int rc = db_admin_exec(pg, "enforcing the tenant policy", mig__enforce_sql, 0, NULL, NULL);
    if (rc < 0) {
        snprintf(msg, cap, "the tenant policy could not be enforced");
        return rc;
    }
    rc = check_tables(pg, msg, cap);
    if (rc == 0)
        rc = check_fkeys_and_columns(pg, msg, cap);
    return rc;
}
