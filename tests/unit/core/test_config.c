/*
 * test_config.c - settings per SPEC §2: defaults < environment < serve flags, and a bad
 * value stops start-up with one line naming the variable.
 */
#include "core/config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

extern char **environ;

#define SECRET32 "0123456789abcdef0123456789abcdef"

/* Start every test from an environment without TENANTD_* variables. */
static int clear_env(void **state)
{
    (void)state;
    for (;;) {
        char name[128] = "";
        for (char **e = environ; *e; e++)
            if (strncmp(*e, "TENANTD_", 8) == 0) {
                size_t n = strcspn(*e, "=");
                if (n < sizeof(name)) {
                    memcpy(name, *e, n);
                    name[n] = '\0';
                }
                break;
            }
        if (!name[0])
            return 0;
        unsetenv(name);
    }
}

static int load(struct td_config *cfg, const char **err, int argc, ...)
{
    char *argv[16];
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    *err = NULL;
    return td_config_load(cfg, argc, argv, err);
}

static void test_defaults(void **state)
{
    (void)state;
    struct td_config cfg;
    const char *err;
    assert_int_equal(load(&cfg, &err, 0), 0);
    assert_null(err);
    assert_null(cfg.database_url);
    assert_string_equal(cfg.data_dir, "./var");
    assert_string_equal(cfg.listen, "127.0.0.1:8080");
    assert_null(cfg.admin_token);
    assert_null(cfg.jwt_secret);
    assert_int_equal(cfg.jwt_ttl, 3600);
    assert_null(cfg.base_domain);
    assert_null(cfg.db_servers);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(cfg.pool_size, 2 * cores);
    /* connections open: by memory, at least the admission limit, at most 400; one
     * per-database pool per connection */
    assert_true(cfg.max_connections >= cfg.pool_size && cfg.max_connections <= 400);
    assert_int_equal(cfg.tenant_pools, cfg.max_connections);
    assert_int_equal(cfg.hibernate_after_s, 0); /* hibernation off */
    assert_null(cfg.default_isolation);
    assert_true(cfg.tenant_share >= 1 && cfg.tenant_share <= 100);
    assert_true(cfg.acquire_timeout_ms > 0);
    assert_string_equal(cfg.log_level, "info");
    assert_int_equal(cfg.prepare, 1);
    assert_non_null(cfg.migrations_dir);
    td_config_cleanup(&cfg);
    assert_null(cfg.data_dir);
    assert_null(cfg.listen);
    td_config_cleanup(&cfg); /* twice is harmless */
}

static void test_env_override(void **state)
{
    (void)state;
    setenv("TENANTD_DATABASE_URL", "postgresql://u@db/catalog", 1);
    setenv("TENANTD_DATA_DIR", "/tmp/td", 1);
    setenv("TENANTD_LISTEN", "0.0.0.0:9090", 1);
    setenv("TENANTD_ADMIN_TOKEN", SECRET32 "-admin", 1);
    setenv("TENANTD_JWT_SECRET", SECRET32, 1);
    setenv("TENANTD_JWT_TTL", "60", 1);
    setenv("TENANTD_BASE_DOMAIN", "example.com", 1);
    setenv("TENANTD_DB_SERVERS", "eu=postgresql:///eu,us=postgresql:///us", 1);
    setenv("TENANTD_POOL_SIZE", "7", 1);
    setenv("TENANTD_TENANT_POOLS", "3", 1);
    setenv("TENANTD_MAX_CONNECTIONS", "40", 1);
    setenv("TENANTD_HIBERNATE_AFTER", "7d", 1);
    setenv("TENANTD_DEFAULT_ISOLATION", "schema", 1);
    struct td_config cfg;
    const char *err;
    assert_int_equal(load(&cfg, &err, 0), 0);
    assert_string_equal(cfg.database_url, "postgresql://u@db/catalog");
    assert_string_equal(cfg.data_dir, "/tmp/td");
    assert_string_equal(cfg.listen, "0.0.0.0:9090");
    assert_string_equal(cfg.admin_token, SECRET32 "-admin");
    assert_string_equal(cfg.jwt_secret, SECRET32);
    assert_int_equal(cfg.jwt_ttl, 60);
    assert_string_equal(cfg.base_domain, "example.com");
    assert_string_equal(cfg.db_servers, "eu=postgresql:///eu,us=postgresql:///us");
    assert_int_equal(cfg.pool_size, 7);
    assert_int_equal(cfg.tenant_pools, 3);
    assert_int_equal(cfg.max_connections, 40);
    assert_int_equal(cfg.hibernate_after_s, 7 * 86400);
    assert_string_equal(cfg.default_isolation, "schema");
    td_config_cleanup(&cfg);

    /* an empty variable counts as unset */
    clear_env(NULL);
    setenv("TENANTD_LISTEN", "", 1);
    assert_int_equal(load(&cfg, &err, 0), 0);
    assert_string_equal(cfg.listen, "127.0.0.1:8080");
    td_config_cleanup(&cfg);
}

static void test_flag_override(void **state)
{
    (void)state;
    setenv("TENANTD_LISTEN", "0.0.0.0:9090", 1);
    setenv("TENANTD_DATA_DIR", "/from/env", 1);
    struct td_config cfg;
    const char *err;

    /* --flag=value beats the environment */
    assert_int_equal(load(&cfg, &err, 1, "--listen=127.0.0.1:7000"), 0);
    assert_string_equal(cfg.listen, "127.0.0.1:7000");
    assert_string_equal(cfg.data_dir, "/from/env");
    td_config_cleanup(&cfg);

    /* --flag value, mixed with arguments that are not flags, which are left alone */
    assert_int_equal(load(&cfg, &err, 6, "extra", "--listen", "[::1]:7001", "--data-dir",
                          "/from/flag", "--unknown-flag"),
                     0);
    assert_string_equal(cfg.listen, "[::1]:7001");
    assert_string_equal(cfg.data_dir, "/from/flag");
    td_config_cleanup(&cfg);

    assert_int_equal(load(&cfg, &err, 7, "--database-url", "postgresql:///x", "--admin-token",
                          SECRET32 "-a", "--jwt-secret=" SECRET32 "-j", "--base-domain",
                          "saas.test"),
                     0);
    assert_string_equal(cfg.database_url, "postgresql:///x");
    assert_string_equal(cfg.admin_token, SECRET32 "-a");
    assert_string_equal(cfg.jwt_secret, SECRET32 "-j");
    assert_string_equal(cfg.base_domain, "saas.test");
    td_config_cleanup(&cfg);

    /* the last occurrence wins */
    assert_int_equal(load(&cfg, &err, 3, "--listen=127.0.0.1:1", "--listen", "127.0.0.1:2"), 0);
    assert_string_equal(cfg.listen, "127.0.0.1:2");
    td_config_cleanup(&cfg);

    /* a longer flag sharing the prefix is not --listen */
    assert_int_equal(load(&cfg, &err, 1, "--listener=nonsense"), 0);
    assert_string_equal(cfg.listen, "0.0.0.0:9090");
    td_config_cleanup(&cfg);
}

/* The value of a two-word flag is a value, even when it looks like another flag. */
static void test_flag_value_not_reparsed(void **state)
{
    (void)state;
    struct td_config cfg;
    const char *err;
    assert_int_equal(load(&cfg, &err, 2, "--data-dir", "--base-domain=evil.test"), 0);
    int data_dir_ok = strcmp(cfg.data_dir, "--base-domain=evil.test") == 0;
    int base_domain_set = cfg.base_domain != NULL;
    td_config_cleanup(&cfg);
    assert_true(data_dir_ok);
    assert_false(base_domain_set); /* TENANTD_BASE_DOMAIN was never given */
}

static void expect_bad_env(const char *var, const char *value)
{
    clear_env(NULL);
    setenv(var, value, 1);
    struct td_config cfg;
    const char *err = NULL;
    int rc = load(&cfg, &err, 0);
    if (rc >= 0)
        fail_msg("%s=\"%s\" was accepted", var, value);
    assert_int_equal(rc, TD_EBADREQ);
    assert_non_null(err);
    if (!strstr(err, var))
        fail_msg("message \"%s\" does not name %s", err, var);
    assert_null(strchr(err, '\n')); /* one line */
    td_config_cleanup(&cfg);
    unsetenv(var);
}

static void test_bad_env(void **state)
{
    (void)state;
    expect_bad_env("TENANTD_LISTEN", "nonsense");
    expect_bad_env("TENANTD_LISTEN", "127.0.0.1");
    expect_bad_env("TENANTD_LISTEN", "127.0.0.1:0");
    expect_bad_env("TENANTD_LISTEN", "127.0.0.1:65536");
    expect_bad_env("TENANTD_LISTEN", "127.0.0.1:80x");
    expect_bad_env("TENANTD_LISTEN", ":8080");
    expect_bad_env("TENANTD_JWT_SECRET", "short");
    expect_bad_env("TENANTD_JWT_SECRET", "0123456789abcdef0123456789abcde"); /* 31 bytes */
    expect_bad_env("TENANTD_ADMIN_TOKEN", "short");
    expect_bad_env("TENANTD_POOL_SIZE", "0");
    expect_bad_env("TENANTD_POOL_SIZE", "-1");
    expect_bad_env("TENANTD_POOL_SIZE", "four");
    expect_bad_env("TENANTD_POOL_SIZE", "4x");
    expect_bad_env("TENANTD_POOL_SIZE", "99999999999999999999");
    expect_bad_env("TENANTD_JWT_TTL", "0");
    expect_bad_env("TENANTD_TENANT_POOLS", "0");
    expect_bad_env("TENANTD_MAX_CONNECTIONS", "0");
    expect_bad_env("TENANTD_HIBERNATE_AFTER", "7");
    expect_bad_env("TENANTD_HIBERNATE_AFTER", "7x");
    expect_bad_env("TENANTD_HIBERNATE_AFTER", "-1s");
    expect_bad_env("TENANTD_HIBERNATE_AFTER", "1ds");
    expect_bad_env("TENANTD_DEFAULT_ISOLATION", "shared");
}

static void test_bad_value_not_echoed(void **state)
{
    (void)state;
    setenv("TENANTD_JWT_SECRET", "tooshort-secret", 1);
    struct td_config cfg;
    const char *err = NULL;
    assert_int_equal(load(&cfg, &err, 0), TD_EBADREQ);
    assert_null(strstr(err, "tooshort-secret"));
    td_config_cleanup(&cfg);
}

static void test_bad_flag(void **state)
{
    (void)state;
    struct td_config cfg;
    const char *err = NULL;
    assert_int_equal(load(&cfg, &err, 1, "--listen=nonsense"), TD_EBADREQ);
    assert_true(strstr(err, "--listen") || strstr(err, "TENANTD_LISTEN"));
    td_config_cleanup(&cfg);

    assert_int_equal(load(&cfg, &err, 2, "--jwt-secret", "short"), TD_EBADREQ);
    assert_true(strstr(err, "--jwt-secret") || strstr(err, "TENANTD_JWT_SECRET"));
    assert_null(strstr(err, "short"));
    td_config_cleanup(&cfg);

    /* a flag without its value */
    assert_int_equal(load(&cfg, &err, 1, "--listen"), TD_EBADREQ);
    assert_non_null(strstr(err, "--listen"));
    td_config_cleanup(&cfg);

    /* a bad flag after a good environment still fails, and frees cleanly */
    setenv("TENANTD_DATA_DIR", "/from/env", 1);
    assert_int_equal(load(&cfg, &err, 2, "--base-domain=ok.test", "--data-dir="), TD_EBADREQ);
    assert_non_null(strstr(err, "--data-dir"));
    td_config_cleanup(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, clear_env),
        cmocka_unit_test_setup(test_env_override, clear_env),
        cmocka_unit_test_setup(test_flag_override, clear_env),
        cmocka_unit_test_setup(test_flag_value_not_reparsed, clear_env),
        cmocka_unit_test_setup(test_bad_env, clear_env),
        cmocka_unit_test_setup(test_bad_value_not_echoed, clear_env),
        cmocka_unit_test_setup(test_bad_flag, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
