/*
 * provision.c - tenant storage: bootstrap of each server, creation and removal.
 *
 * Schema and pool tenants on the catalog's server are made in ONE transaction with
 * their catalog row: a failure leaves nothing behind. Storage on another server, and
 * database tenants (CREATE DATABASE cannot run in a transaction), are made first and
 * dropped again if anything after fails.
 */
#include "tenant/provision.h"

#include "auth/password.h"
#include "core/log.h"
#include "core/mem.h"
#include "db/sqljson.h"
#include "tenant/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BOOTSTRAP_LOCK "7204002"

enum tnt_isolation tnt_plan_isolation(const char *plan)
{
    if (!strcmp(plan, "pro"))
        return TNT_ISO_SCHEMA;
    if (!strcmp(plan, "enterprise"))
        return TNT_ISO_DATABASE;
    return TNT_ISO_POOL;
}

static int exec(PGconn *pg, const char *what, const char *sql)
{
    return db_admin_exec(pg, what, sql, 0, NULL, NULL);
}

/* Grants that let the runtime role reach a schema's tables (directly, or as role),
 * tables added by later migrations included. */
static int grant_schema(PGconn *pg, const char *schema, const char *grantee)
{
    return mig_grant_schema(pg, schema, grantee);
}

static int bootstrap_server(struct db *db, int server, const struct mig_set *catalog,
                            const struct mig_set *tenant, const char *app_password)
{
    PGconn *pg = NULL;
    int rc = db_admin_connect(db, server, NULL, &pg);
    if (rc < 0)
        return rc;
    if (server == 0 && (rc = mig_apply_catalog(pg, catalog)) < 0)
        goto out;
    rc = exec(pg, "locking bootstrap", "SELECT pg_advisory_lock(" BOOTSTRAP_LOCK ")");
    if (rc < 0)
        goto out;
    char *pw = PQescapeLiteral(pg, app_password, strlen(app_password));
    char *sql = td_xasprintf(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenantd_app') THEN "
        "CREATE ROLE tenantd_app LOGIN NOINHERIT; END IF; END $$; "
        "ALTER ROLE tenantd_app LOGIN NOINHERIT NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE "
        "PASSWORD %s; ALTER ROLE tenantd_app SET timezone = 'UTC'; "
        "CREATE SCHEMA IF NOT EXISTS pool",
        pw);
    PQfreemem(pw);
    rc = exec(pg, "creating the runtime role", sql);
    free(sql);
    if (rc == 0 && server == 0)
        rc = exec(pg, "granting catalog reads",
                  "GRANT USAGE ON SCHEMA tenantd TO tenantd_app; "
                  "GRANT SELECT ON tenantd.tenants TO tenantd_app; "
                  "GRANT SELECT, INSERT, UPDATE ON tenantd.usage TO tenantd_app; "
                  "GRANT SELECT, INSERT, UPDATE ON tenantd.usage_daily TO tenantd_app");
    if (rc == 0)
        rc = exec(pg, "migrating the pool schema", "BEGIN");
    int applied = 0;
    char *err = NULL;
    if (rc == 0 && (rc = mig_apply_tenant(pg, "pool", tenant, &applied, &err)) < 0)
        td_log_error("could not migrate the pool schema: %s", err ? err : "database error");
    if (rc == 0)
        rc = grant_schema(pg, "pool", "tenantd_app");
    if (rc == 0)
        rc = exec(pg, "migrating the pool schema", "COMMIT");
    else
        PQclear(PQexec(pg, "ROLLBACK"));
    if (rc == 0 && applied)
        td_log_info("migrated the pool schema of server %s (%d files)", db_server_name(db, server),
                    applied);
    PQclear(PQexec(pg, "SELECT pg_advisory_unlock(" BOOTSTRAP_LOCK ")"));
out:
    PQfinish(pg);
    return rc;
}

int tnt_bootstrap(struct db *db, const struct mig_set *catalog, const struct mig_set *tenant,
                  const char *app_password)
{
    for (int s = 0; s < db_server_count(db); s++) {
        int rc = bootstrap_server(db, s, catalog, tenant, app_password);
        if (rc < 0) {
            td_log_error("could not prepare server %s", db_server_name(db, s));
            return rc;
        }
    }
    tnt_sweep_orphans(db);
    return 0;
}

/* Server with the fewest tenants (ties: the first configured). */
static int pick_server(struct db *db, PGconn *cat, int *server)
{
    PGresult *r = NULL;
    *server = 0;
    if (db_server_count(db) == 1) /* no need to count every tenant */
        return 0;
    int rc =
        db_admin_exec(cat, "counting tenants per server",
                      "SELECT server, count(*) FROM tenantd.tenants GROUP BY server", 0, NULL, &r);
    if (rc < 0)
        return rc;
    long best = -1;
    for (int s = 0; s < db_server_count(db); s++) {
        long n = 0;
        for (int i = 0; i < PQntuples(r); i++)
            if (!strcmp(PQgetvalue(r, i, 0), db_server_name(db, s)))
                n = atol(PQgetvalue(r, i, 1));
        if (best < 0 || n < best) {
            best = n;
            *server = s;
        }
    }
    PQclear(r);
    return 0;
}

static const char owner_sql[] =
    "WITH u AS (INSERT INTO %s.users (tenant_id, email, name, role, password_hash) "
    "VALUES ($1, $2, $3, 'owner', $4) RETURNING *), "
    "j AS (SELECT " DB_SQL_OBJECT("u.id, u.email, u.name, u.role, " DB_SQL_TS(
        "u.created_at") " AS created_at") " AS v, id FROM u), "
                                          "a AS (INSERT INTO %s.audit_logs (tenant_id, actor_id, "
                                          "action, entity_type, entity_id, "
                                          "new_values) SELECT $1, j.id, 'create', 'user', j.id, "
                                          "j.v FROM j) "
                                          "SELECT v FROM j";

/* Storage of t inside the open transaction on pg (already in the right database). */
static int make_storage(PGconn *pg, const struct tnt_tenant *t, const struct mig_set *migs,
                        const struct tnt_owner *owner, const char *hash, char **owner_json)
{
    int rc = 0;
    const char *schema = t->isolation == TNT_ISO_POOL ? "pool" : t->ident;
    if (t->isolation != TNT_ISO_POOL) {
        /* one round trip from the consolidated baseline, however many files exist */
        if ((rc = mig_apply_baseline(pg, t->ident, migs)) < 0)
            td_log_error("could not create the storage of new tenant %s", t->slug);
        if (rc == 0)
            rc = grant_schema(pg, t->ident, t->ident);
    }
    if (rc == 0 && owner) {
        char *q = tnt_name_quote(pg, schema);
        char *sql = q ? td_xasprintf(owner_sql, q, q) : NULL;
        PGresult *r = NULL;
        rc = sql ? db_admin_exec(pg, "creating the owner", sql, 4,
                                 (const char *const[]){t->id, owner->email, owner->name, hash}, &r)
                 : TD_EINTERNAL;
        free(sql);
        PQfreemem(q);
        if (rc == 0)
            *owner_json = td_xstrdup(PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    return rc;
}

static int make_role(PGconn *pg, const struct tnt_tenant *t)
{
    char *q = tnt_name_quote(pg, t->ident);
    if (!q)
        return TD_EINTERNAL;
    char *sql = td_xasprintf("CREATE ROLE %s NOLOGIN; GRANT %s TO tenantd_app", q, q);
    int rc = exec(pg, "creating the tenant role", sql);
    free(sql);
    PQfreemem(q);
    return rc;
}

/* Database tenant: CREATE DATABASE, then everything inside it in one transaction. */
static int make_database(struct db *db, int server, PGconn *srv, const struct tnt_tenant *t,
                         const struct mig_set *migs, const struct tnt_owner *owner,
                         const char *hash, char **owner_json)
{
    PGconn *tdb = NULL;
    char *q = tnt_name_quote(srv, t->dbname);
    if (!q)
        return TD_EINTERNAL;
    char *sql = td_xasprintf("CREATE DATABASE %s", q);
    int rc = exec(srv, "creating the tenant database", sql);
    free(sql);
    if (rc == 0)
        rc = db_admin_connect(db, server, t->dbname, &tdb);
    if (rc == 0) {
        sql = td_xasprintf("REVOKE ALL ON DATABASE %s FROM PUBLIC; "
                           "GRANT CONNECT ON DATABASE %s TO tenantd_app; "
                           "REVOKE ALL ON SCHEMA public FROM PUBLIC; BEGIN",
                           q, q);
        rc = exec(tdb, "securing the tenant database", sql);
        free(sql);
    }
    if (rc == 0)
        rc = make_storage(tdb, t, migs, owner, hash, owner_json);
    if (rc == 0)
        rc = exec(tdb, "committing the tenant database", "COMMIT");
    PQfinish(tdb);
    PQfreemem(q);
    return rc;
}

/*
 * Remove t's storage on server: its database (database tenants, which cannot be dropped
 * inside a transaction), then in ONE transaction its schema and role, or its rows of every
 * pool table. A failure leaves the transactional part whole, and every step is idempotent,
 * so a failed drop can be retried. Waits at most TNT__DROP_LOCK_TIMEOUT behind the
 * tenant's own transactions. Returns 0 or the code of the first failing step (logged).
 */
static int drop_storage(struct db *db, int server, const struct tnt_tenant *t)
{
    PGconn *pg = NULL;
    int rc = db_admin_connect(db, server, NULL, &pg);
    if (rc == 0)
        rc = exec(pg, "limiting lock waits", "SET lock_timeout = '" TNT__DROP_LOCK_TIMEOUT "'");
    if (rc == 0 && t->isolation == TNT_ISO_DATABASE)
        rc = tnt__drop_database(db, pg, server, t->dbname);
    if (rc == 0)
        rc = exec(pg, "dropping tenant storage", "BEGIN");
    if (rc == 0 && t->isolation == TNT_ISO_POOL)
        rc = tnt__pool_delete(pg, t->id);
    else if (rc == 0)
        rc = tnt__drop_schema(pg, t->ident);
    if (rc == 0 && t->isolation != TNT_ISO_POOL)
        rc = tnt__drop_role(pg, t->ident);
    if (rc == 0)
        rc = exec(pg, "dropping tenant storage", "COMMIT");
    if (rc < 0)
        td_log_error("could not drop the storage of tenant %s (%s on server %s): %.*s", t->slug,
                     tnt_isolation_name(t->isolation), db_server_name(db, server),
                     pg ? (int)strcspn(PQerrorMessage(pg), "\n") : 11,
                     pg ? PQerrorMessage(pg) : "unreachable");
    PQfinish(pg);
    return rc;
}

int tnt_provision(struct db *db, const struct mig_set *migs, const struct tnt_new *n,
                  struct tnt_tenant **out, char **owner_json)
{
    PGconn *cat = NULL, *srv = NULL;
    struct tnt_tenant *t = NULL;
    PGresult *r = NULL;
    char hash[AUTH_HASH_MAX] = "";
    int storage_made = 0, server = 0;
    *out = NULL;
    *owner_json = NULL;

    if (n->owner && auth_password_hash(n->owner->password, hash) < 0)
        return TD_EINTERNAL;
    int rc = db_admin_borrow(db, &cat);
    if (rc < 0)
        goto out;
    if (n->server) {
        server = db_server_find(db, n->server);
        if (server < 0) {
            rc = TD_EVALIDATION;
            goto out;
        }
    } else if ((rc = pick_server(db, cat, &server)) < 0) {
        goto out;
    }
    int iso = n->isolation >= 0 ? n->isolation : (int)tnt_plan_isolation(n->plan);
    char *sql = td_xasprintf("INSERT INTO tenantd.tenants (id, slug, name, plan, isolation, "
                             "server, schema_version, migrated_at) VALUES (coalesce($6::uuid, "
                             "gen_random_uuid()), $1, $2, $3, $4, $5, %d, now()) RETURNING %s",
                             mig_latest(migs), tnt_catalog_columns);
    rc = exec(cat, "starting provisioning", "BEGIN");
    if (rc == 0)
        rc = db_admin_exec(cat, "creating the catalog row", sql, 6,
                           (const char *const[]){n->slug, n->name, n->plan,
                                                 tnt_isolation_name((enum tnt_isolation)iso),
                                                 db_server_name(db, server), n->id},
                           &r);
    free(sql);
    if (rc < 0)
        goto out;
    t = tnt_tenant_from_row(db, r, 0);
    PQclear(r);
    r = NULL;
    /* until the row commits, tnt_sweep_orphans leaves this id's storage alone */
    rc = db_admin_exec(cat, "locking the new tenant",
                       "SELECT pg_advisory_xact_lock(" TNT_PROVISION_LOCK ", hashtext($1))", 1,
                       (const char *const[]){t->id}, NULL);
    if (rc < 0)
        goto out;

    const struct tnt_owner *owner = n->owner;
    if (iso != TNT_ISO_DATABASE && server == 0) {
        /* everything in the catalog's transaction */
        if (iso == TNT_ISO_SCHEMA)
            rc = make_role(cat, t);
        if (rc == 0)
            rc = make_storage(cat, t, migs, owner, hash, owner_json);
    } else {
        rc = db_admin_connect(db, server, NULL, &srv);
        if (rc == 0 && iso != TNT_ISO_POOL)
            rc = make_role(srv, t);
        storage_made = rc == 0;
        if (rc == 0 && iso == TNT_ISO_DATABASE)
            rc = make_database(db, server, srv, t, migs, owner, hash, owner_json);
        else if (rc == 0) {
            rc = exec(srv, "starting remote storage", "BEGIN");
            if (rc == 0)
                rc = make_storage(srv, t, migs, owner, hash, owner_json);
            if (rc == 0)
                rc = exec(srv, "committing remote storage", "COMMIT");
        }
    }
    if (rc == 0)
        rc = exec(cat, "committing provisioning", "COMMIT");
out:
    if (rc < 0) {
        if (cat)
            PQclear(PQexec(cat, "ROLLBACK"));
        if (storage_made && drop_storage(db, server, t) < 0)
            td_log_error("the storage of the failed provisioning of %s remains on server %s; "
                         "the start-up sweep removes it",
                         n->slug, db_server_name(db, server));
        tnt_tenant_unref(t);
        free(*owner_json);
        *owner_json = NULL;
    } else {
        *out = t;
    }
    PQfinish(srv);
    db_admin_return(db, cat);
    sodium_memzero(hash, sizeof(hash));
    return rc;
}

int tnt_drop(struct db *db, const struct tnt_tenant *t)
{
    if (t->server_idx < 0) {
        td_log_error("cannot delete tenant %s: it is placed on server \"%s\", which this "
                     "instance does not know (TENANTD_DB_SERVERS)",
                     t->slug, t->server);
        return TD_EUNAVAILABLE;
    }
    /* the catalog row goes only once the storage is gone: a tenant is never reported
     * deleted while its data remains, and a retry finds it */
    int rc = drop_storage(db, t->server_idx, t);
    if (rc < 0)
        return rc == TD_EUNAVAILABLE ? rc : TD_EINTERNAL;
    PGconn *cat = NULL;
    rc = db_admin_connect(db, 0, NULL, &cat);
    if (rc == 0)
        rc = db_admin_exec(cat, "deleting the catalog row",
                           "DELETE FROM tenantd.tenants WHERE id = $1", 1,
                           (const char *const[]){t->id}, NULL);
    PQfinish(cat);
    return rc;
}

/* ---- storage pieces for moves (src/tenant/move.c) ------------------------- */

int tnt_storage_role(PGconn *pg, const struct tnt_tenant *t)
{
    return make_role(pg, t);
}

int tnt_storage_schema(PGconn *pg, const struct tnt_tenant *t, const struct mig_set *migs)
{
    return make_storage(pg, t, migs, NULL, NULL, NULL);
}

int tnt_storage_database(struct db *db, int server, PGconn *srv, const struct tnt_tenant *t,
                         const struct mig_set *migs)
{
    return make_database(db, server, srv, t, migs, NULL, NULL, NULL);
}
