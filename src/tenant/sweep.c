/*
 * sweep.c - start-up removal of tenant storage that no catalog row owns: what a tenantd
 * killed in the middle of provisioning leaves behind (a database tenant's role and its
 * CREATE DATABASE, and storage on another server, are made outside the catalog's
 * transaction). A provisioning in progress holds the advisory lock
 * (TNT_PROVISION_LOCK, hashtext(id)) until its catalog row commits, so the storage of a
 * live provisioning, in this instance or another, is never touched.
 */
#include "tenant/internal.h"
#include "tenant/provision.h"

#include "core/log.h"
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOCK_SQL "SELECT pg_try_advisory_xact_lock(" TNT_PROVISION_LOCK ", hashtext($1))"

/* A CREATE DATABASE of a client that is gone still runs to its end, and its database only
 * shows once it has: wait for those (at most 30 s) before looking. Provisioning writes the
 * name quoted (tnt_name_quote), so the text to look for is CREATE DATABASE "td_... */
static void wait_database_creations(PGconn *pg)
{
    for (int i = 0; i < 150; i++) {
        PGresult *r = PQexec(pg, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                                 "AND pid <> pg_backend_pid() AND query ILIKE "
                                 "'CREATE DATABASE \"td\\_%'");
        int busy = PQresultStatus(r) == PGRES_TUPLES_OK && atoi(PQgetvalue(r, 0, 0)) > 0;
        PQclear(r);
        if (!busy)
            return;
        usleep(200 * 1000);
    }
}

/* 1 when tenant id has neither a catalog row nor a provisioning in progress. */
static int is_orphan(PGconn *cat, const char *id)
{
    const char *p[1] = {id};
    int orphan = 0;
    PGresult *r = PQexec(cat, "BEGIN");
    PQclear(r);
    /* two statements: the row is looked for in a snapshot taken after the lock is ours */
    r = PQexecParams(cat, LOCK_SQL, 1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "t") == 0) {
        PQclear(r);
        r = PQexecParams(cat, "SELECT 1 FROM tenantd.tenants WHERE id = $1::uuid", 1, NULL, p, NULL,
                         NULL, 0);
        orphan = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 0;
    }
    PQclear(r);
    PQclear(PQexec(cat, "COMMIT"));
    return orphan;
}

static int drop_orphan(struct db *db, int server, PGconn *pg, const char *id)
{
    char schema[TNT_NAME_MAX], database[TNT_NAME_MAX];
    if (tnt_name_of(id, TNT_NAME_SCHEMA, schema) < 0 ||
        tnt_name_of(id, TNT_NAME_DATABASE, database) < 0)
        return TD_EINTERNAL;
    int rc = tnt__drop_database(db, pg, server, database);
    if (rc == 0)
        rc = tnt__drop_schema(pg, schema);
    if (rc == 0)
        rc = tnt__drop_role(pg, schema);
    return rc;
}

/* 1 when schema t_<hex> of the database pg is connected to holds projects. */
static int holds_projects(PGconn *pg, const char *id)
{
    char schema[TNT_NAME_MAX];
    if (tnt_name_of(id, TNT_NAME_SCHEMA, schema) < 0)
        return 1;
    char *q = tnt__qualified(pg, schema, "projects");
    if (!q)
        return 1;
    PGresult *r = PQexecParams(pg, "SELECT to_regclass($1) IS NOT NULL", 1, NULL,
                               (const char *const[]){q}, NULL, NULL, 0);
    int has = PQresultStatus(r) != PGRES_TUPLES_OK || strcmp(PQgetvalue(r, 0, 0), "f") != 0;
    PQclear(r);
    if (has) {
        char *sql = td_xasprintf("SELECT EXISTS (SELECT 1 FROM %s)", q);
        r = PQexec(pg, sql);
        has = PQresultStatus(r) != PGRES_TUPLES_OK || strcmp(PQgetvalue(r, 0, 0), "f") != 0;
        PQclear(r);
        free(sql);
    }
    free(q);
    return has;
}

/* An interrupted provisioning never got as far as a project: storage that holds some is
 * not ours to drop (another catalog's on a shared server?), whatever the catalog says. */
static int looks_used(struct db *db, int server, PGconn *pg, const char *id)
{
    char dbname[TNT_NAME_MAX];
    PGconn *tdb = NULL;
    if (holds_projects(pg, id) || tnt_name_of(id, TNT_NAME_DATABASE, dbname) < 0)
        return 1;
    PGresult *r = PQexecParams(pg, "SELECT 1 FROM pg_database WHERE datname = $1", 1, NULL,
                               (const char *const[]){dbname}, NULL, NULL, 0);
    int exists = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    PQclear(r);
    if (!exists)
        return 0;
    if (db_admin_connect(db, server, dbname, &tdb) < 0)
        return 1; /* cannot tell: leave it */
    int used = holds_projects(tdb, id);
    PQfinish(tdb);
    return used;
}

static void sweep_server(struct db *db, int server, PGconn *cat)
{
    PGconn *pg = NULL;
    PGresult *r = NULL;
    if (db_admin_connect(db, server, NULL, &pg) < 0)
        return;
    wait_database_creations(pg);
    if (db_admin_exec(pg, "listing tenant storage",
                      "SELECT DISTINCT h FROM ("
                      "SELECT substr(rolname, 3) AS h FROM pg_roles "
                      "WHERE rolname ~ '^t_[0-9a-f]{32}$' UNION ALL "
                      "SELECT substr(nspname, 3) FROM pg_namespace "
                      "WHERE nspname ~ '^t_[0-9a-f]{32}$' UNION ALL "
                      "SELECT substr(datname, 4) FROM pg_database "
                      "WHERE datname ~ '^td_[0-9a-f]{32}$') s",
                      0, NULL, &r) < 0)
        goto out;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *h = PQgetvalue(r, i, 0);
        char id[37];
        snprintf(id, sizeof(id), "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
        if (!is_orphan(cat, id))
            continue;
        if (looks_used(db, server, pg, id)) {
            td_log_warn("storage of tenant %s on server %s has no catalog row but holds "
                        "projects: left alone",
                        id, db_server_name(db, server));
            continue;
        }
        if (drop_orphan(db, server, pg, id) == 0)
            td_log_warn("dropped the storage of tenant %s on server %s: no catalog row "
                        "(left by an interrupted provisioning)",
                        id, db_server_name(db, server));
    }
out:
    PQclear(r);
    PQfinish(pg);
}

void tnt_sweep_orphans(struct db *db)
{
    PGconn *cat = NULL;
    if (db_admin_connect(db, 0, NULL, &cat) < 0)
        return;
    for (int s = 0; s < db_server_count(db); s++)
        sweep_server(db, s, cat);
    PQfinish(cat);
}
