/*
 * main.c - argv to a subcommand: serve (default), migrate, tenants, version, --help.
 */
#include "app/app.h"
#include "cli/cli.h"
#include "core/config.h"
#include "core/log.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <microhttpd.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: tenantd [serve] [flags]\n"
        "       tenantd migrate [--tenant SLUG]... [--jobs N] [--dry-run]\n"
        "       tenantd tenants create|list|show|update|suspend|resume|delete|move|hibernate|\n"
        "                       wake|export|import|restore|clone ...  (tenantd tenants --help)\n"
        "       tenantd version\n"
        "       tenantd --help\n\n"
        "subcommands:\n"
        "  serve     run the HTTP server (default)\n"
        "  migrate   apply pending catalog and tenant migrations\n"
        "  tenants   the tenant lifecycle of the admin API, for operators\n"
        "  version   version, build options, linked library versions\n\n"
        "serve flags (each also an environment variable):\n%s",
        td_config_flags_help());
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 && argv[1][0] != '-' ? argv[1] : "serve";
    int first = argc > 1 && argv[1][0] != '-' ? 2 : 1;
    if (argc > 1 &&
        (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "version")) {
        printf("tenantd %s\nbuild: C11%s\nlibpq %d, libmicrohttpd %s, jansson %s, libsodium %s\n",
               TD_VERSION,
#ifdef __SANITIZE_ADDRESS__
               ", asan",
#else
               "",
#endif
               PQlibVersion(), MHD_get_version(), JANSSON_VERSION, sodium_version_string());
        return 0;
    }
    int serve = !strcmp(cmd, "serve");
    int tenants = !strcmp(cmd, "tenants");
    int migrate = !strcmp(cmd, "migrate");
    int status;
    if (!serve && !tenants && !migrate) {
        fprintf(stderr, "tenantd: unknown subcommand \"%s\"\n", cmd);
        usage(stderr);
        return 2;
    }
    if (tenants && (status = cli_tenants_check(argc - first, argv + first)) >= 0)
        return status;
    struct td_config cfg;
    const char *err = NULL;
    if (td_config_load(&cfg, serve ? argc - first : 0, argv + first, &err) < 0) {
        fprintf(stderr, "tenantd: %s\n", err);
        td_config_cleanup(&cfg);
        return 1;
    }
    if (serve)
        status = td_serve(&cfg);
    else if (migrate)
        status = cli_migrate(&cfg, argc - first, argv + first);
    else
        status = cli_tenants(&cfg, argc - first, argv + first);
    td_config_cleanup(&cfg);
    return status;
}
