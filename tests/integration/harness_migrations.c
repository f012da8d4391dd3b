/*
 * harness_migrations.c - a throw-away migrations directory for suites that add a test
 * domain (the source tree's migrations plus one file of tests/integration/migrations/) or
 * change the migrations (a copy), and the environment of a `tenantd` command run beside
 * the suite's server (`tenantd migrate` against its data dir).
 */
#include "harness.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A link in dir to every .sql file of target. */
static int link_sql_files(const char *target, const char *dir)
{
    DIR *d = opendir(target);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".sql")) {
            char from[768], to[768];
            snprintf(from, sizeof(from), "%s/%s", target, e->d_name);
            snprintf(to, sizeof(to), "%s/%s", dir, e->d_name);
            if (symlink(from, to) != 0) {
                closedir(d);
                return -1;
            }
        }
    if (d)
        closedir(d);
    return d ? 0 : -1;
}

int td_migrations_dir(const char *prefix, const char *test_file, char *dir, size_t dirsize,
                      char *env, size_t envsize)
{
    const char *src = getenv("TD_SOURCE_DIR");
    char path[512], target[512];
    snprintf(dir, dirsize, "/tmp/%s-XXXXXX", prefix);
    if (!src || !mkdtemp(dir))
        return -1;
    /* mkdtemp makes it 0700; open it up like td_server_start's dir. */
    chmod(dir, 0755);
    snprintf(env, envsize, "TENANTD_MIGRATIONS_DIR=%s", dir);
    snprintf(path, sizeof(path), "%s/catalog", dir);
    snprintf(target, sizeof(target), "%s/migrations/catalog", src);
    if (symlink(target, path) != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/tenant", dir);
    mkdir(path, 0755);
    snprintf(target, sizeof(target), "%s/migrations/tenant", src);
    if (link_sql_files(target, path) != 0)
        return -1;
    snprintf(target, sizeof(target), "%s/tests/integration/migrations/%s", src, test_file);
    snprintf(path, sizeof(path), "%s/tenant/%s", dir, test_file);
    return symlink(target, path);
}

void td_migrations_remove(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

int td_migrations_copy(const char *prefix, char *dir, size_t dirsize, char *env, size_t envsize)
{
    const char *src = getenv("TD_SOURCE_DIR");
    char cmd[1200];
    snprintf(dir, dirsize, "/tmp/%s-XXXXXX", prefix);
    if (!src || !mkdtemp(dir))
        return -1;
    snprintf(env, envsize, "TENANTD_MIGRATIONS_DIR=%s", dir);
    snprintf(cmd, sizeof(cmd), "cp -r '%s/migrations/catalog' '%s/migrations/tenant' '%s'/", src,
             src, dir);
    return system(cmd) == 0 ? 0 : -1;
}

void td_cli_env(const struct td_server *s, const char *const *extra, char **env, char *dd,
                size_t ddsize)
{
    extern char **environ;
    int k = 0;
    for (char **e = environ; *e && k < 50; e++)
        if (strncmp(*e, "TENANTD_", 8) != 0)
            env[k++] = *e;
    snprintf(dd, ddsize, "TENANTD_DATA_DIR=%s", s->dir);
    env[k++] = dd;
    env[k++] = "TENANTD_ADMIN_TOKEN=" TD_TEST_ADMIN_TOKEN;
    env[k++] = "TENANTD_JWT_SECRET=" TD_TEST_JWT_SECRET;
    for (; extra && *extra && k < TD_CLI_ENV_MAX - 1; extra++)
        env[k++] = (char *)*extra;
    env[k] = NULL;
}

const char *const td_isolations[TD_NISO] = {"pool", "schema", "database"};

int td_domain_suite_start(struct td_server *s, const char *prefix, const char *domain_file,
                          const char *slug_prefix, char *dir, size_t dirsize, char *env,
                          size_t envsize, struct td_principal owners[TD_NISO])
{
    if (td_migrations_dir(prefix, domain_file, dir, dirsize, env, envsize) != 0)
        return -1;
    const char *extra[] = {env, NULL};
    if (td_server_start(s, extra) != 0)
        return -1;
    for (int i = 0; i < TD_NISO; i++) {
        char slug[32], email[64];
        snprintf(slug, sizeof(slug), "%s-%s", slug_prefix, td_isolations[i]);
        snprintf(email, sizeof(email), "owner@%s.test", td_isolations[i]);
        if (td_admin_create_tenant(s, slug, td_isolations[i], "enterprise", email, "owner-password",
                                   &owners[i]) != 201)
            return -1;
    }
    return 0;
}
