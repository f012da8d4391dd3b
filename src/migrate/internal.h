/*
 * internal.h - shared between runner.c (the `tenantd migrate` command) and targets.c
 * (what one storage target is and how one is migrated). Not for use outside src/migrate.
 */
#ifndef TD_MIGRATE_INTERNAL_H
#define TD_MIGRATE_INTERNAL_H

#include "db/db.h"
#include "migrate/files.h"

#include <pthread.h>
#include <stdatomic.h>

/* Advisory lock keys (bigint keys in the catalog database unless noted). */
#define MIG__RUNNER_LOCK "7204003"
#define MIG__POOL_LOCK "7204002"   /* = provision.c's bootstrap lock, per server */
#define MIG__TENANT_LOCK "7204004" /* (key, hashtext(schema)) per tenant schema */

enum mig__state { MIG__TODO, MIG__MIGRATED, MIG__CURRENT, MIG__FAILED };

/* One storage to migrate: a server's pool schema or one tenant's schema. */
struct mig__target {
    int server;
    char *database;  /* NULL: the server's default database (pool, schema tenants) */
    char schema[40]; /* "pool" or "t_<32 hex>" */
    char id[37];     /* tenant id; "" for a pool schema */
    char *slug;      /* NULL for a pool schema */
    int row_version; /* the catalog's schema_version; -1 for a pool schema */
    int row_failed;  /* the catalog holds an error for it */
    /* outcome */
    enum mig__state state;
    int version, applied;
    char *error;
    char *pending; /* dry run: "0002_a, 0003_b" */
};

/* One worker's connections, kept across targets: the default database of each server
 * (index 0 is the catalog's). */
struct mig__worker {
    struct mig__run *run;
    PGconn **srv;
    pthread_t thread;
};

struct mig__run {
    struct db *db;
    const struct mig_set *tenant_migs;
    int dry;
    struct mig__target *targets;
    int ntargets, cap;
    atomic_int next, end, done, failed;
};

/*
 * After each tenant migration file, inside its transaction with search_path at the storage's
 * schema: enable and FORCE the tenant policy on every table with tenant_id
 * (mig__enforce_sql), then refuse what SPEC §7 forbids: a table without tenant_id uuid NOT
 * NULL, a foreign key to a tenant table that does not pair tenant_id with tenant_id, a
 * tenantd comment whose text after the word is not a JSON object, or a served table whose
 * path is a built-in route. Returns 0, or TD_EVALIDATION with msg naming the table (the
 * caller rolls back: nothing of the file stays), or the database error.
 */
int mig__check_tenant(PGconn *pg, char *msg, size_t cap) TD_MUSTCHECK;
extern const char mig__enforce_sql[];

/* Append a target (strings copied). */
struct mig__target *mig__target_add(struct mig__run *run, int server, const char *database,
                                    const char *schema, const char *id, const char *slug,
                                    int row_version, int row_failed);
void mig__targets_free(struct mig__run *run);

/* Migrate (or, in a dry run, inspect) t with w's connections; fills t's outcome and records
 * it in the catalog. Never stops on a failure: it is t's outcome. */
void mig__process(struct mig__worker *w, struct mig__target *t);
/* Close w's connections. */
void mig__worker_cleanup(struct mig__worker *w);

#endif
