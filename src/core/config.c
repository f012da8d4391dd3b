/*
 * config.c - the settings table and its loader (defaults < environment < flags).
 */
#include "core/config.h"

#include "core/log.h"
#include "core/mem.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum cfg_type { CFG_STR, CFG_INT };

struct cfg_entry {
    const char *name;
    enum cfg_type type;
    size_t offset;
    const char *dflt; /* NULL: unset */
    const char *env;
    const char *flag; /* NULL: environment only */
    int (*valid)(const char *v);
};

static int valid_port_addr(const char *v)
{
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v)
        return 0;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    return *end == '\0' && p > 0 && p < 65536;
}

static int valid_secret(const char *v)
{
    return strlen(v) >= 32;
}

static int valid_nonempty(const char *v)
{
    return v[0] != '\0';
}

static int valid_isolation(const char *v)
{
    return !strcmp(v, "pool") || !strcmp(v, "schema") || !strcmp(v, "database");
}

static int valid_level(const char *v)
{
    return td_log_parse_level(v) >= 0;
}

static int valid_pos_int(const char *v)
{
    char *end;
    long n = strtol(v, &end, 10);
    return *v && *end == '\0' && n >= 1 && n <= 1000000;
}

static int valid_nonneg_int(const char *v)
{
    return strcmp(v, "0") == 0 || valid_pos_int(v);
}

/* "0" (off) or a whole number with a unit: 30s, 15m, 12h, 7d; seconds, or -1 if bad. */
static long duration_s(const char *v)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (!strcmp(v, "0"))
        return 0;
    if (end == v || n < 1 || n > 3650 || end[0] == '\0' || end[1] != '\0')
        return -1;
    switch (end[0]) {
    case 's':
        return n;
    case 'm':
        return n * 60;
    case 'h':
        return n * 3600;
    case 'd':
        return n * 86400;
    }
    return -1;
}

static int valid_duration(const char *v)
{
    return duration_s(v) >= 0;
}

static int valid_percent(const char *v)
{
    return valid_pos_int(v) && atoi(v) <= 100;
}

static int valid_workers(const char *v)
{
    return !strcmp(v, "0") || (valid_pos_int(v) && atoi(v) <= 64);
}

/* Exact origins, comma-separated: scheme://host[:port], no path, no wildcard. */
static int valid_origins(const char *v)
{
    const char *p = v;
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *sep = memmem(p, n, "://", 3);
        if (!sep || sep == p || (size_t)(sep - p) + 3 >= n ||
            memchr(sep + 3, '/', n - (size_t)(sep - p) - 3) || memchr(p, '*', n) ||
            memchr(p, ' ', n))
            return 0;
        p += n;
        if (*p == ',' && !*++p)
            return 0;
    }
    return v[0] != '\0';
}

/* Addresses or networks, comma-separated: "10.0.0.0/8,127.0.0.1,::1,fd00::/8". */
static int valid_proxies(const char *v)
{
    for (const char *p = v; *p;) {
        size_t n = strcspn(p, ",");
        char buf[64], *slash, *end;
        unsigned char a[16];
        if (n == 0 || n >= sizeof(buf))
            return 0;
        memcpy(buf, p, n);
        buf[n] = '\0';
        if ((slash = strchr(buf, '/')))
            *slash = '\0';
        int v4 = inet_pton(AF_INET, buf, a) == 1;
        if (!v4 && inet_pton(AF_INET6, buf, a) != 1)
            return 0;
        long bits = slash ? strtol(slash + 1, &end, 10) : 0;
        if (slash && (!slash[1] || *end || bits < 0 || bits > (v4 ? 32 : 128)))
            return 0;
        p += n;
        if (*p == ',' && !*++p)
            return 0;
    }
    return v[0] != '\0';
}

static int valid_bool(const char *v)
{
    return !strcmp(v, "0") || !strcmp(v, "1");
}

static int valid_read_replicas(const char *v)
{
    return !strcmp(v, "off") || !strcmp(v, "analytics") || !strcmp(v, "reads");
}

/*
 * Connections kept open per server when TENANTD_MAX_CONNECTIONS is unset: each hot tenant
 * database keeps one warm backend (about 2 MiB of private memory after use, measured in
 * docs/isolation.md; 4 MiB budgeted), within an eighth of physical memory, at least the
 * admission limit and at most 400, which leaves room under the embedded cluster's
 * max_connections (500) for administration, migrations and the job workers.
 */
static int default_max_connections(int pool_size)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    long long mem = pages > 0 && page > 0 ? (long long)pages * page : 2LL << 30;
    long long n = mem / 8 / (4LL << 20);
    if (n > 400)
        n = 400;
    if (n < pool_size)
        n = pool_size;
    return (int)n;
}

#define OFF(f) offsetof(struct td_config, f)

static const struct cfg_entry entries[] = {
    {"database_url", CFG_STR, OFF(database_url), NULL, "TENANTD_DATABASE_URL", "--database-url",
     valid_nonempty},
    {"data_dir", CFG_STR, OFF(data_dir), "./var", "TENANTD_DATA_DIR", "--data-dir", valid_nonempty},
    {"listen", CFG_STR, OFF(listen), "127.0.0.1:8080", "TENANTD_LISTEN", "--listen",
     valid_port_addr},
    {"admin_token", CFG_STR, OFF(admin_token), NULL, "TENANTD_ADMIN_TOKEN", "--admin-token",
     valid_secret},
    {"jwt_secret", CFG_STR, OFF(jwt_secret), NULL, "TENANTD_JWT_SECRET", "--jwt-secret",
     valid_secret},
    {"jwt_ttl", CFG_INT, OFF(jwt_ttl), "3600", "TENANTD_JWT_TTL", NULL, valid_pos_int},
    {"base_domain", CFG_STR, OFF(base_domain), NULL, "TENANTD_BASE_DOMAIN", "--base-domain",
     valid_nonempty},
    {"db_servers", CFG_STR, OFF(db_servers), NULL, "TENANTD_DB_SERVERS", NULL, valid_nonempty},
    {"pooler_urls", CFG_STR, OFF(pooler_urls), NULL, "TENANTD_POOLER_URLS", NULL, valid_nonempty},
    {"pool_size", CFG_INT, OFF(pool_size), NULL, "TENANTD_POOL_SIZE", NULL, valid_pos_int},
    {"max_connections", CFG_INT, OFF(max_connections), NULL, "TENANTD_MAX_CONNECTIONS", NULL,
     valid_pos_int},
    {"tenant_pools", CFG_INT, OFF(tenant_pools), NULL, "TENANTD_TENANT_POOLS", NULL, valid_pos_int},
    {"default_isolation", CFG_STR, OFF(default_isolation), NULL, "TENANTD_DEFAULT_ISOLATION", NULL,
     valid_isolation},
    {"tenant_share", CFG_INT, OFF(tenant_share), "50", "TENANTD_TENANT_SHARE", NULL, valid_percent},
    {"conn_max_tenants", CFG_INT, OFF(conn_max_tenants), "500", "TENANTD_CONN_MAX_TENANTS", NULL,
     valid_pos_int},
    {"backend_memory_mb", CFG_INT, OFF(backend_memory_mb), "128", "TENANTD_BACKEND_MEMORY_MB", NULL,
     valid_nonneg_int},
    {"user_check_ttl", CFG_INT, OFF(user_check_ttl), "60", "TENANTD_USER_CHECK_TTL", NULL,
     valid_nonneg_int},
    {"cache_mb", CFG_INT, OFF(cache_mb), "42", "TENANTD_CACHE_MB", NULL, valid_pos_int},
    {"acquire_timeout_ms", CFG_INT, OFF(acquire_timeout_ms), "5000", "TENANTD_ACQUIRE_TIMEOUT_MS",
     NULL, valid_pos_int},
    {"hibernate_after", CFG_STR, OFF(hibernate_after), "0", "TENANTD_HIBERNATE_AFTER", NULL,
     valid_duration},
    {"log_level", CFG_STR, OFF(log_level), "info", "TENANTD_LOG_LEVEL", NULL, valid_level},
    {"prepare", CFG_INT, OFF(prepare), "1", "TENANTD_PREPARE", NULL, valid_bool},
    {"http_threads", CFG_INT, OFF(http_threads), "0", "TENANTD_HTTP_THREADS", NULL,
     valid_nonneg_int},
    {"pipeline", CFG_INT, OFF(pipeline), "1", "TENANTD_PIPELINE", NULL, valid_nonneg_int},
    {"pipeline_writes", CFG_INT, OFF(pipeline_writes), "0", "TENANTD_PIPELINE_WRITES", NULL,
     valid_nonneg_int},
    {"pipeline_stall_ms", CFG_INT, OFF(pipeline_stall_ms), "50", "TENANTD_PIPELINE_STALL_MS", NULL,
     valid_pos_int},
    {"http_workers", CFG_INT, OFF(http_workers), "4", "TENANTD_HTTP_WORKERS", NULL, valid_pos_int},
    {"migrations_dir", CFG_STR, OFF(migrations_dir), TD_SOURCE_DIR "/migrations",
     "TENANTD_MIGRATIONS_DIR", NULL, valid_nonempty},
    {"job_workers", CFG_INT, OFF(job_workers), "2", "TENANTD_JOB_WORKERS", NULL, valid_workers},
    {"backup", CFG_INT, OFF(backup), "1", "TENANTD_BACKUP", NULL, valid_bool},
    {"backup_dir", CFG_STR, OFF(backup_dir), NULL, "TENANTD_BACKUP_DIR", NULL, valid_nonempty},
    {"backup_interval", CFG_INT, OFF(backup_interval), "86400", "TENANTD_BACKUP_INTERVAL", NULL,
     valid_pos_int},
    {"backup_incr", CFG_INT, OFF(backup_incr), "3600", "TENANTD_BACKUP_INCR_INTERVAL", NULL,
     valid_pos_int},
    {"metrics_token", CFG_STR, OFF(metrics_token), NULL, "TENANTD_METRICS_TOKEN", NULL,
     valid_secret},
    {"login_max_per_email", CFG_INT, OFF(login_max_per_email), "10", "TENANTD_LOGIN_MAX_PER_EMAIL",
     NULL, valid_pos_int},
    {"login_max_per_addr", CFG_INT, OFF(login_max_per_addr), "100", "TENANTD_LOGIN_MAX_PER_ADDR",
     NULL, valid_pos_int},
    {"trusted_proxies", CFG_STR, OFF(trusted_proxies), NULL, "TENANTD_TRUSTED_PROXIES", NULL,
     valid_proxies},
    {"cors_origins", CFG_STR, OFF(cors_origins), NULL, "TENANTD_CORS_ORIGINS", NULL, valid_origins},
    {"metrics_listen", CFG_STR, OFF(metrics_listen), NULL, "TENANTD_METRICS_LISTEN",
     "--metrics-listen", valid_port_addr},
    {"replica_urls", CFG_STR, OFF(replica_urls), NULL, "TENANTD_REPLICA_URLS", NULL,
     valid_nonempty},
    {"replica", CFG_INT, OFF(replica), "0", "TENANTD_REPLICA", "--replica", valid_bool},
    {"read_replicas", CFG_STR, OFF(read_replicas), "analytics", "TENANTD_READ_REPLICAS", NULL,
     valid_read_replicas},
    {"replica_max_lag_kb", CFG_INT, OFF(replica_max_lag_kb), "16384", "TENANTD_REPLICA_MAX_LAG_KB",
     NULL, valid_pos_int},
};

#define NENTRIES (sizeof(entries) / sizeof(entries[0]))

static char errbuf[256];

static int set_value(struct td_config *cfg, const struct cfg_entry *e, const char *v,
                     const char *source, const char **errmsg)
{
    if (!e->valid(v)) {
        snprintf(errbuf, sizeof(errbuf), "invalid value for %s", source);
        *errmsg = errbuf;
        return TD_EBADREQ;
    }
    void *field = (char *)cfg + e->offset;
    if (e->type == CFG_STR) {
        free(*(char **)field);
        *(char **)field = td_xstrdup(v);
    } else {
        *(int *)field = atoi(v);
    }
    return 0;
}

int td_config_load(struct td_config *cfg, int argc, char **argv, const char **errmsg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < NENTRIES; i++) {
        const struct cfg_entry *e = &entries[i];
        if (e->dflt && set_value(cfg, e, e->dflt, e->name, errmsg) < 0)
            return TD_EINTERNAL;
        const char *v = getenv(e->env);
        if (v && *v) {
            int rc = set_value(cfg, e, v, e->env, errmsg);
            if (rc < 0)
                return rc;
        }
    }
    for (int a = 0; a < argc; a++) {
        for (size_t i = 0; i < NENTRIES; i++) {
            const struct cfg_entry *e = &entries[i];
            size_t fl = e->flag ? strlen(e->flag) : 0;
            if (!fl || strncmp(argv[a], e->flag, fl) != 0)
                continue;
            const char *v = NULL;
            if (argv[a][fl] == '=')
                v = argv[a] + fl + 1;
            else if (argv[a][fl] == '\0' && a + 1 < argc)
                v = argv[++a];
            else if (argv[a][fl] != '\0')
                continue;
            if (!v) {
                snprintf(errbuf, sizeof(errbuf), "missing value for %s", e->flag);
                *errmsg = errbuf;
                return TD_EBADREQ;
            }
            int rc = set_value(cfg, e, v, e->flag, errmsg);
            if (rc < 0)
                return rc;
            break; /* a flag's value is never itself read as a flag */
        }
    }
    if (cfg->pool_size == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->pool_size = (int)(n > 0 ? 2 * n : 4);
    }
    if (cfg->max_connections == 0)
        cfg->max_connections = default_max_connections(cfg->pool_size);
    if (cfg->tenant_pools == 0)
        cfg->tenant_pools = cfg->max_connections;
    cfg->hibernate_after_s = (int)duration_s(cfg->hibernate_after);
    /* one event loop per pooled connection: every loop can have a statement in flight,
     * and no request waits for a connection while its thread could serve another */
    if (cfg->http_threads == 0)
        cfg->http_threads = cfg->pool_size < 2 ? 2 : cfg->pool_size;
    td_log_set_level((enum td_log_level)td_log_parse_level(cfg->log_level));
    return 0;
}

void td_config_cleanup(struct td_config *cfg)
{
    for (size_t i = 0; i < NENTRIES; i++)
        if (entries[i].type == CFG_STR) {
            char **field = (char **)((char *)cfg + entries[i].offset);
            free(*field);
            *field = NULL;
        }
}

const char *td_config_flags_help(void)
{
    return "  --listen HOST:PORT      address to listen on (TENANTD_LISTEN)\n"
           "  --data-dir DIR          embedded cluster and secrets (TENANTD_DATA_DIR)\n"
           "  --database-url URL      catalog server; unset: embedded (TENANTD_DATABASE_URL)\n"
           "  --admin-token TOKEN     operator bearer token (TENANTD_ADMIN_TOKEN)\n"
           "  --jwt-secret SECRET     HS256 key, >= 32 bytes (TENANTD_JWT_SECRET)\n"
           "  --base-domain DOMAIN    subdomain routing (TENANTD_BASE_DOMAIN)\n"
           "  --metrics-listen H:P    GET /metrics without a token here (TENANTD_METRICS_LISTEN)\n"
           "  --replica 0|1           start a streaming replica of the embedded cluster "
           "(TENANTD_REPLICA)\n";
}
