/*
 * runner.h - `tenantd migrate`: catalog, then every tenant's storage, in parallel.
 */
#ifndef TD_MIGRATE_RUNNER_H
#define TD_MIGRATE_RUNNER_H

#include "db/db.h"
#include "migrate/files.h"

/* What `tenantd migrate` was asked to do. */
struct mig_cli_opts {
    int dry, wait, jobs;
    const char **only; /* --tenant slugs */
    int nonly;
};

/*
 * Parse `[--tenant SLUG]... [--jobs N] [--dry-run] [--wait]` (argv holds what follows
 * the subcommand) into o; --jobs is capped at pool_size. Returns 0 to go on, -1 after
 * --help (printed; exit 0), or 2 on bad usage (said on stderr). Call
 * mig_cli_opts_cleanup(o) whatever it returns.
 */
int mig_cli_parse(int argc, char **argv, int pool_size, struct mig_cli_opts *o);
void mig_cli_opts_cleanup(struct mig_cli_opts *o);

/*
 * Run the migrations o asks for against db, whose catalog the caller has opened:
 * bootstrapped (catalog migrations, runtime role, pool schemas) for a real run, read-only
 * for o->dry. Exit status: 0 all migrated, 1 a target failed, 2 usage, 3 another run
 * holds the runner lock (without --wait). Not thread-safe: once per process.
 */
int mig_cli_run(const struct mig_cli_opts *o, struct db *db, const struct mig_set *catalog_migs,
                const struct mig_set *tenant_migs);

#endif
