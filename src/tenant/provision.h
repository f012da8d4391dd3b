/*
 * provision.h - creating and dropping a tenant's storage, and the per-server bootstrap
 * (runtime role, shared "pool" schema). Storage names come from the tenant id only.
 */
#ifndef TD_TENANT_PROVISION_H
#define TD_TENANT_PROVISION_H

#include "migrate/files.h"
#include "tenant/tenant.h"

struct tnt_owner {
    const char *email, *password, *name;
};

struct tnt_new {
    const char *slug, *name, *plan;
    int isolation;                 /* TNT_ISO_*, or -1: the plan's default */
    const char *server;            /* NULL: the server with the fewest tenants */
    const struct tnt_owner *owner; /* NULL: no first user */
    const char *id;                /* NULL: a new id; a deleted tenant restored keeps its own */
};

/*
 * Prepare every server: the runtime role tenantd_app (with password), the shared
 * "pool" schema migrated to the latest version; on the main server also the catalog.
 * Safe to run concurrently from several instances (advisory lock).
 */
int tnt_bootstrap(struct db *db, const struct mig_set *catalog, const struct mig_set *tenant,
                  const char *app_password) TD_MUSTCHECK;

/*
 * Create the tenant: catalog row, storage migrated to the latest version, and the owner
 * when given; all or nothing. *out gets the tenant (1 ref); *owner_json, when an owner
 * was made, the user as JSON text (caller frees). Returns 0, TD_ECONFLICT (slug taken),
 * TD_EVALIDATION (unknown server), TD_EUNAVAILABLE, or TD_EINTERNAL.
 */
int tnt_provision(struct db *db, const struct mig_set *migs, const struct tnt_new *n,
                  struct tnt_tenant **out, char **owner_json) TD_MUSTCHECK;

/* Drop the tenant's storage and role, then its catalog row. */
int tnt_drop(struct db *db, const struct tnt_tenant *t) TD_MUSTCHECK;

/*
 * Pieces of tnt_provision for moving a tenant (src/tenant/move.c). t describes the
 * storage to make (its isolation decides what); no rows are written; on failure the
 * caller drops what was made.
 * tnt_storage_role: CREATE ROLE t->ident and grant it to the runtime role, on pg.
 * tnt_storage_schema: inside the caller's open transaction on pg (connected to the
 *   right database), create t->ident's schema, migrated, with the role's grants.
 * tnt_storage_database: on srv (an admin connection to server, no transaction), CREATE
 *   DATABASE t->dbname, secured, with its schema migrated and committed; the role must
 *   exist. Each returns 0 or the mapped database error (logged).
 */
int tnt_storage_role(PGconn *pg, const struct tnt_tenant *t) TD_MUSTCHECK;
int tnt_storage_schema(PGconn *pg, const struct tnt_tenant *t,
                       const struct mig_set *migs) TD_MUSTCHECK;
int tnt_storage_database(struct db *db, int server, PGconn *srv, const struct tnt_tenant *t,
                         const struct mig_set *migs) TD_MUSTCHECK;

/*
 * Advisory lock (two-key form: TNT_PROVISION_LOCK, hashtext(tenant id)) that
 * tnt_provision holds in the catalog transaction from the row's insertion to its commit.
 */
#define TNT_PROVISION_LOCK "7204003"

/*
 * Drop storage (t_<hex> schema and role, td_<hex> database) on every server whose tenant id
 * has no catalog row and no provisioning in progress: what a process killed mid-provisioning
 * left. Storage holding projects is only reported. Run by tnt_bootstrap; errors are logged.
 */
void tnt_sweep_orphans(struct db *db);

/* Plan's default isolation. */
enum tnt_isolation tnt_plan_isolation(const char *plan);

#endif
