/*
 * cli.h - the operator subcommands `tenantd tenants ...` and `tenantd migrate ...`. Each
 * opens the application itself (src/app), calls the same services as the HTTP handlers
 * and returns the process exit status.
 */
#ifndef TD_CLI_CLI_H
#define TD_CLI_CLI_H

#include "app/app.h"

/* Check the arguments of `tenantd tenants` before anything is opened: the exit status
 * when the command ends there (2 bad usage, 0 --help), or -1 to go on. */
int cli_tenants_check(int argc, char **argv);
/* `tenantd tenants ...` on an opened application (argv[0] is the command); returns the
 * exit status: 0 done, 1 failed, 2 bad usage. */
int cli_tenants_run(struct td_app *app, int argc, char **argv);
/* `tenantd tenants ...` after cli_tenants_check(): open the application, run, close. */
int cli_tenants(struct td_config *cfg, int argc, char **argv);

/* `tenantd tenants restore|clone` (cli/restore.c), argv already checked. */
struct cli_restore_args {
    int clone, no_wait;
    const char *key, *at, *new_slug, *confirm;
};
/* Queue the restore or clone job as the admin API does and, unless no_wait, wait for it
 * (a `tenantd serve` job worker runs it); prints the job as JSON. Exit status: 0 queued
 * (no_wait) or succeeded, 1 failed or refused (not found, slug taken, backups off), 2 a
 * refused value (the moment, the confirmation). */
int cli_restore(struct td_app *app, const struct cli_restore_args *a);

/* `tenantd migrate [--tenant SLUG]... [--jobs N] [--dry-run] [--wait]`: a real run opens
 * the application as `serve` does (bootstrap included), a dry run opens it read-only.
 * Exit status: 0 all migrated, 1 a target or start-up failed, 2 usage, 3 another run
 * holds the runner lock (without --wait). */
int cli_migrate(struct td_config *cfg, int argc, char **argv);

#endif
