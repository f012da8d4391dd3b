/*
 * open.c - the operator subcommands' entry points: open the application the way the
 * command needs, run it, close.
 */
#include "cli/cli.h"

#include "migrate/runner.h"

#include <stdio.h>

int cli_tenants(struct td_config *cfg, int argc, char **argv)
{
    struct td_app app;
    int status;
    if (td_app_open(&app, cfg, TD_APP_FULL) < 0)
        status = 1;
    else
        status = cli_tenants_run(&app, argc, argv);
    td_app_close(&app);
    return status;
}

int cli_migrate(struct td_config *cfg, int argc, char **argv)
{
    struct mig_cli_opts o;
    struct td_app app;
    int status = mig_cli_parse(argc, argv, cfg->pool_size, &o);
    if (status != 0) {
        mig_cli_opts_cleanup(&o);
        return status < 0 ? 0 : status;
    }
    /* a dry run must not bootstrap: that would apply catalog and pool migrations */
    if (td_app_open(&app, cfg, o.dry ? TD_APP_READONLY : TD_APP_FULL) < 0) {
        fprintf(stderr, "tenantd migrate: could not start (see the log above)\n");
        status = 1;
    } else {
        status = mig_cli_run(&o, app.db, &app.catalog_migs, &app.tenant_migs);
    }
    td_app_close(&app);
    mig_cli_opts_cleanup(&o);
    return status;
}
