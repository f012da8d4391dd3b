/*
 * app.c - opening and closing what the server and the CLI share: configuration
 * secrets, the embedded cluster, migrations, server bootstrap, caches.
 */
#include "app/app.h"
#include "api/live.h"
#include "api/metrics.h"
#include "tenant/plans.h"
#include "auth/jwt.h"
#include "auth/throttle.h"
#include "backup/backup.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "pg/cluster.h"
#include "pg/replica.h"
#include "tenant/notify.h"
#include "tenant/provision.h"
#include "tenant/usercheck.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Read data_dir/name, or create it (mode 0600) with 32 random bytes in hex. */
static int load_secret(const char *dir, const char *name, char **out)
{
    char *path = td_xasprintf("%s/%s", dir, name);
    char buf[256];
    int rc = 0;
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(buf, sizeof(buf), f))
            buf[0] = '\0';
        fclose(f);
        buf[strcspn(buf, "\r\n")] = '\0';
        if (strlen(buf) < 32) {
            td_log_error("%s holds fewer than 32 characters", path);
            rc = TD_EBADREQ;
        }
    } else {
        unsigned char rnd[32];
        randombytes_buf(rnd, sizeof(rnd));
        sodium_bin2hex(buf, sizeof(buf), rnd, sizeof(rnd));
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (fd < 0 || write(fd, buf, strlen(buf)) != (ssize_t)strlen(buf) ||
            write(fd, "\n", 1) != 1) {
            td_log_error("could not write %s: %s", path, strerror(errno));
            rc = TD_EINTERNAL;
        } else {
            td_log_info("generated %s (mode 0600)", path);
        }
        if (fd >= 0)
            close(fd);
    }
    if (rc == 0)
        *out = td_xstrdup(buf);
    free(path);
    return rc;
}

/* The embedded cluster when no database URL is given; *conninfo is the catalog's. */
static int open_cluster(struct td_app *app, enum td_app_mode mode, const char **conninfo)
{
    struct td_config *cfg = app->cfg;
    *conninfo = cfg->database_url;
    if (*conninfo && cfg->replica)
        td_log_warn("TENANTD_REPLICA applies to the embedded cluster only: name the replica of "
                    "TENANTD_DATABASE_URL in TENANTD_REPLICA_URLS (main=url)");
    if (*conninfo)
        return 0;
    /* a read-only open starts the cluster as it is configured, without the archiving
     * settings that only a serving process needs */
    char *extra = mode == TD_APP_FULL ? bkp_cluster_conf(cfg) : NULL;
    int rc = extra || !cfg->backup || mode != TD_APP_FULL ? 0 : TD_EUNAVAILABLE;
    if (rc == 0)
        rc = pgc_cluster_start(cfg->data_dir, "tenantd", extra, &app->cluster);
    free(extra);
    if (rc == 0)
        *conninfo = pgc_cluster_conninfo(app->cluster);
    /* a replica that cannot be made is not fatal: reads then go to the primary */
    if (rc == 0 && cfg->replica && mode == TD_APP_FULL &&
        pgc_replica_start(app->cluster, &app->replica) < 0)
        td_log_warn("serving without the embedded replica");
    return rc;
}

/* TENANTD_REPLICA_URLS plus the embedded replica (of server main); NULL: none, or reads
 * from replicas are off. Caller frees. */
static char *replica_list(const struct td_app *app)
{
    const struct td_config *cfg = app->cfg;
    if (!strcmp(cfg->read_replicas, "off"))
        return NULL;
    if (!app->replica)
        return cfg->replica_urls ? td_xstrdup(cfg->replica_urls) : NULL;
    return td_xasprintf("main=%s%s%s", pgc_replica_conninfo(app->replica),
                        cfg->replica_urls ? "," : "", cfg->replica_urls ? cfg->replica_urls : "");
}

static int load_migrations(struct td_app *app)
{
    char *cat_dir = td_xasprintf("%s/catalog", app->cfg->migrations_dir);
    char *ten_dir = td_xasprintf("%s/tenant", app->cfg->migrations_dir);
    int rc = mig_load(cat_dir, &app->catalog_migs);
    if (rc == 0)
        rc = mig_load(ten_dir, &app->tenant_migs);
    free(cat_dir);
    free(ten_dir);
    return rc;
}

/* The database registry. A read-only open makes superuser connections only, so it
 * needs no runtime role password. */
static int open_db(struct td_app *app, enum td_app_mode mode, const char *catalog,
                   const char *app_pw)
{
    struct td_config *cfg = app->cfg;
    int full = mode == TD_APP_FULL;
    char *replicas = full ? replica_list(app) : NULL;
    struct db_config dc = {
        .main_conninfo = catalog,
        .servers = cfg->db_servers,
        .poolers = full ? cfg->pooler_urls : NULL,
        .app_password = full ? app_pw : "unused",
        .pool_size = cfg->pool_size,
        .max_connections = full ? cfg->max_connections : 0,
        .hibernate_after_s = full ? cfg->hibernate_after_s : 0,
        .tenant_pools = cfg->tenant_pools,
        .acquire_timeout_ms = cfg->acquire_timeout_ms,
        .tenant_share = cfg->tenant_share,
        .conn_max_tenants = cfg->conn_max_tenants,
        .backend_memory = (long long)cfg->backend_memory_mb << 20,
        .prepare = full ? cfg->prepare : 0,
        .pipe_stall_ms = cfg->pipeline_stall_ms,
        .replicas = replicas,
        .replica_max_lag = (long long)cfg->replica_max_lag_kb * 1024,
    };
    int rc = db_new(&dc, &app->db);
    if (rc < 0)
        td_log_error("invalid value for TENANTD_DB_SERVERS, TENANTD_POOLER_URLS or "
                     "TENANTD_REPLICA_URLS");
    free(replicas);
    return rc;
}

/* Secrets in data_dir (generated on first use) and the runtime role's password, derived
 * from the JWT secret, which every instance sharing this catalog already has. */
static int open_secrets(struct td_config *cfg, char app_pw[33])
{
    int rc = 0;
    if (mkdir(cfg->data_dir, 0700) < 0 && errno != EEXIST) {
        td_log_error("could not create data directory %s: %s", cfg->data_dir, strerror(errno));
        return TD_EINTERNAL;
    }
    if (!cfg->admin_token && (rc = load_secret(cfg->data_dir, "admin-token", &cfg->admin_token)))
        return rc;
    if (!cfg->jwt_secret && (rc = load_secret(cfg->data_dir, "jwt-secret", &cfg->jwt_secret)))
        return rc;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256(mac, (const unsigned char *)"tenantd_app", 11,
                           (const unsigned char *)cfg->jwt_secret);
    sodium_bin2hex(app_pw, 33, mac, 16);
    return 0;
}

void td_app_cache_budgets(int cache_mb, size_t *tenants, size_t *tokens, size_t *checks)
{
    /* split by what an active tenant costs in each: ~260 bytes of pool tenant (object,
     * strings, table and ring), 64 of token and 40 of user check in tables filled to ~75%:
     * the default 42 MiB hold about 114,000 tenants */
    size_t cache = (size_t)cache_mb << 20;
    *tokens = cache / 1000 * 195;
    *checks = cache / 1000 * 126;
    *tenants = cache - *tokens - *checks;
}

int td_app_open(struct td_app *app, struct td_config *cfg, enum td_app_mode mode)
{
    memset(app, 0, sizeof(*app));
    app->cfg = cfg;
    atomic_init(&app->ready, 0);
    app->metrics = api_metrics_new();
    app->live = api_live_new();
    mig_expected_init(&app->expected, cfg->migrations_dir);
    if (sodium_init() < 0)
        return TD_EINTERNAL;
    char app_pw[33] = "";
    const char *catalog = NULL;
    int rc = mode == TD_APP_FULL ? open_secrets(cfg, app_pw) : 0;
    if (rc == 0)
        rc = open_cluster(app, mode, &catalog);
    if (rc == 0)
        rc = load_migrations(app);
    if (rc == 0)
        rc = open_db(app, mode, catalog, app_pw);
    if (rc < 0 || mode != TD_APP_FULL)
        return rc;
    long long mig_t0 = td_now_us();
    rc = tnt_bootstrap(app->db, &app->catalog_migs, &app->tenant_migs, app_pw);
    api_metrics_migration(app->metrics, rc, mig_t0);
    if (rc < 0)
        return rc;
    size_t tenants, tokens, checks;
    td_app_cache_budgets(cfg->cache_mb, &tenants, &tokens, &checks);
    app->jwt = auth_jwt_new(cfg->jwt_secret, tokens);
    app->usercheck = tnt_usercheck_new(checks);
    app->cache = tnt_cache_new(app->db, tenants, 60000);
    app->usage = tnt_usage_new(app->db);
    app->throttle =
        auth_throttle_new(0, (unsigned)cfg->login_max_per_email, (unsigned)cfg->login_max_per_addr);
    app->listener = tnt_listener_start(app->db, app->cache);
    atomic_store(&app->ready, 1);
    return 0;
}

void td_app_close(struct td_app *app)
{
    tnt_listener_stop(app->listener);
    tnt_usage_free(app->usage);
    auth_throttle_free(app->throttle);
    tnt_cache_free(app->cache);
    auth_jwt_free(app->jwt);
    api_metrics_free(app->metrics);
    api_live_free(app->live);
    tnt_usercheck_free(app->usercheck);
    db_free(app->db);
    mig_set_cleanup(&app->catalog_migs);
    mig_set_cleanup(&app->tenant_migs);
    mig_expected_cleanup(&app->expected);
    pgc_replica_stop(app->replica);
    pgc_cluster_stop(app->cluster);
    memset(app, 0, sizeof(*app));
}
