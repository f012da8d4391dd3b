/*
 * runner.h - `tenantd migrate`: catalog, then every tenant's storage, in parallel.
 */
#ifndef TD_MIGRATE_RUNNER_H
#define TD_MIGRATE_RUNNER_H

struct td_config;

/*
 * Run `tenantd migrate [--tenant SLUG]... [--jobs N] [--dry-run] [--wait]` (argv holds
 * what follows the subcommand). Opens the database itself: a real run bootstraps like
 * `tenantd serve` (catalog migrations, runtime role, each server's pool schema), a dry
 * run only reads. Exit status: 0 all migrated, 1 a target failed or start-up failed,
 * 2 usage, 3 another run holds the runner lock (without --wait). Not thread-safe: once
 * per process.
 */
int mig_cli_main(struct td_config *cfg, int argc, char **argv);

#endif
