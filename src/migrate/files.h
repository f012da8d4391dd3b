/*
 * files.h - versioned SQL migrations (NNNN_name.sql) and their ledgers.
 *
 * The catalog's ledger is tenantd.catalog_migrations; each tenant storage (a tenant
 * schema, or the shared "pool" schema of a server) has <schema>.tenantd_migrations.
 * A file's SHA-256 is recorded when applied; a file edited afterwards is refused.
 */
#ifndef TD_MIGRATE_FILES_H
#define TD_MIGRATE_FILES_H

#include "core/err.h"

#include <pthread.h>
#include <stdatomic.h>

#include <libpq-fe.h>

struct mig_file {
    int version;
    char *name; /* file name without .sql */
    char *sql;
    char checksum[65];
};

struct mig_set {
    struct mig_file *files; /* ascending versions */
    int n;
    /* Every file concatenated, then the ledger and its rows: a fresh schema made in one
     * statement (see mig_apply_baseline). Built by mig_load; NULL for an empty set. */
    char *baseline;
};

/* One storage's ledger as read by mig_ledger_read. */
struct mig_ledger {
    int n;
    int *versions;
    char (*checksums)[65];
    int max_version; /* 0 when empty */
};

/* Load every .sql file of dir; a name not NNNN_name.sql or a duplicate version is an error
 * (logged). The set is read-only afterwards and may be shared between threads. */
int mig_load(const char *dir, struct mig_set *out) TD_MUSTCHECK;
void mig_set_cleanup(struct mig_set *s);
/* Highest version in the set, 0 when empty. */
int mig_latest(const struct mig_set *s);

/* Highest NNNN of the NNNN_*.sql names in dir (only names are read); 0 when none,
 * TD_EINTERNAL when dir cannot be opened. Thread-safe. */
int mig_dir_latest(const char *dir);

/* The tenant schema version an application expects (one per struct td_app). */
struct mig_expected {
    char *dir; /* <migrations_dir>/tenant */
    atomic_int version;
    atomic_llong at_ms; /* when version was read (monotonic) */
    pthread_mutex_t mu; /* one re-reader at a time */
};

/* Storage the caller owns; mig_expected_cleanup() frees what init made (safe twice). */
void mig_expected_init(struct mig_expected *e, const char *migrations_dir);
void mig_expected_cleanup(struct mig_expected *e);
/*
 * The highest version in <migrations_dir>/tenant, re-read at most every 2 s so that files
 * added while the server runs are noticed without a restart. Thread-safe and cheap (an
 * atomic load) between refreshes. 0 when the directory is gone.
 */
int mig_expected_get(struct mig_expected *e);

/* Apply pending catalog files on pg (a superuser connection), each in its own
 * transaction, under the catalog advisory lock. Returns 0 or TD_EINTERNAL (logged). */
int mig_apply_catalog(PGconn *pg, const struct mig_set *s) TD_MUSTCHECK;

/*
 * Read the ledger of schema (table "ledger" qualified by the caller, e.g.
 * "t_<hex>.tenantd_migrations" or "tenantd.catalog_migrations"); a missing table is an
 * empty ledger. Safe inside a transaction (never fails on a missing table). *out is the
 * caller's; release with mig_ledger_cleanup. Returns 0 or the mapped database error.
 */
int mig_ledger_read(PGconn *pg, const char *ledger, struct mig_ledger *out) TD_MUSTCHECK;
void mig_ledger_cleanup(struct mig_ledger *l);

/*
 * Which files of s the ledger lacks: their indexes into s->files go to pending (caller's
 * array of at least s->n ints), their count to *npending. Returns 0, or TD_ECONFLICT when
 * an applied file's checksum differs from the recorded one; then *err (static,
 * thread-local) names the file.
 */
int mig_pending(const struct mig_set *s, const struct mig_ledger *l, int *pending, int *npending,
                char **err) TD_MUSTCHECK;

/*
 * Inside the caller's open transaction on pg, bring schema (an identifier made by
 * tenantd, e.g. "pool" or "t_<hex>") up to the latest version, one file after another,
 * each recorded in the ledger with its duration. *applied gets the number of files run.
 * Returns 0, TD_ECONFLICT for an edited file, or the mapped database error; on failure
 * *err (static, thread-local) says which file and why. The caller rolls back on failure.
 */
int mig_apply_tenant(PGconn *pg, const char *schema, const struct mig_set *s, int *applied,
                     char **err) TD_MUSTCHECK;

/*
 * Like mig_apply_tenant; also gives the storage's version afterwards (the highest of the
 * ledger's and the set's) in *version. Thread-safe on distinct connections.
 */
int mig_apply_tenant_v(PGconn *pg, const char *schema, const struct mig_set *s, int *applied,
                       int *version, char **err) TD_MUSTCHECK;

/*
 * Inside the caller's open transaction on pg, create schema (a tenantd-made identifier
 * that must not exist yet) at the latest version in ONE round trip: the files of the set
 * concatenated, then the ledger with every version recorded (duration 0). The cost does
 * not grow with the number of files beyond their own DDL. Returns 0 or the mapped
 * database error (logged).
 */
int mig_apply_baseline(PGconn *pg, const char *schema, const struct mig_set *s) TD_MUSTCHECK;

/*
 * Give grantee the runtime privileges on every table and sequence of schema (tables that
 * later migrations add included), but none on the ledger. One round trip.
 */
int mig_grant_schema(PGconn *pg, const char *schema, const char *grantee) TD_MUSTCHECK;

#endif
