/*
 * internal.h - storage helpers shared by provision.c, move.c, export.c and sweep.c: the
 * tenant tables of a schema (read from the PostgreSQL catalog, in foreign-key order) and
 * dropping or emptying a tenant's storage. Not for use outside src/tenant.
 */
#ifndef TD_TENANT_INTERNAL_H
#define TD_TENANT_INTERNAL_H

#include "db/db.h"
#include "tenant/names.h"

/* lock_timeout of the statements that drop or empty a tenant's storage: a drop that would
 * wait behind the tenant's own transactions fails (and can be retried) instead of hanging. */
#define TNT__DROP_LOCK_TIMEOUT "5s"

/*
 * The tenant tables of a schema: every ordinary or partitioned table with a tenant_id
 * column (the ledger has none), parents before the tables whose foreign keys reference
 * them, ties by name. Every storage runs the same tenant migration files, so any storage's
 * list is every storage's list at the same version.
 */
struct tnt__tables {
    int n;
    char **names; /* raw table names (from the catalog), quote before use */
};

/* Read schema's tenant tables on pg. Returns 0 or the mapped database error (logged).
 * Release with tnt__tables_cleanup. */
int tnt__tables_read(PGconn *pg, const char *schema, struct tnt__tables *out) TD_MUSTCHECK;
void tnt__tables_cleanup(struct tnt__tables *t);

/* "<schema>.<table>" quoted for SQL text (schema checked by tnt_name_quote); malloc'd, or
 * NULL (logged). */
char *tnt__qualified(PGconn *pg, const char *schema, const char *table);

/* Delete tenant_id's rows from every tenant table of the pool schema, children first, as
 * bound parameters; inside the caller's transaction if one is open. Returns 0 or the mapped
 * error (logged). */
int tnt__pool_delete(PGconn *pg, const char *tenant_id) TD_MUSTCHECK;

/* After rows were copied in with their own ids: move the sequence of each identity or serial
 * column of every table of tb (in schema) past the highest value now stored, never back, so
 * the next row's default does not collide. Returns 0 or the mapped error (logged). */
int tnt__sync_sequences(PGconn *pg, const char *schema, const struct tnt__tables *tb) TD_MUSTCHECK;

/* DROP SCHEMA IF EXISTS schema CASCADE. */
int tnt__drop_schema(PGconn *pg, const char *schema) TD_MUSTCHECK;
/* DROP OWNED BY + DROP ROLE role when it exists (on pg's database). */
int tnt__drop_role(PGconn *pg, const char *role) TD_MUSTCHECK;
/* DROP DATABASE IF EXISTS database WITH (FORCE), after closing the pools' idle connections
 * to it; on srv, a connection to server's default database. */
int tnt__drop_database(struct db *db, PGconn *srv, int server, const char *database) TD_MUSTCHECK;

#endif
