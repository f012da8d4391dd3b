/*
 * config.h - every setting of tenantd in one table (core/config.c): name, default,
 * environment variable, serve flag and validator. No getenv() anywhere else.
 */
#ifndef TD_CORE_CONFIG_H
#define TD_CORE_CONFIG_H

#include "core/err.h"

struct td_config {
    char *database_url; /* NULL: embedded cluster under data_dir/pg */
    char *data_dir;
    char *listen;      /* host:port */
    char *admin_token; /* NULL until loaded or generated */
    char *jwt_secret;
    int jwt_ttl;
    char *base_domain;   /* NULL: no subdomain routing */
    char *db_servers;    /* "name=url,name=url" */
    char *pooler_urls;   /* "name=url,...": runtime connections through e.g. PgBouncer */
    int pool_size;       /* statements in flight per server (admission) */
    int max_connections; /* connections open per server (unset: by memory, see config.c) */
    int tenant_pools;
    char *hibernate_after; /* "0" (off) or 30s, 15m, 12h, 7d */
    int hibernate_after_s;
    /* the same in seconds (0: off) */ /* per-database pools kept (unset: max_connections) */
    char *default_isolation;           /* NULL: by plan */
    int tenant_share;                  /* percent of a server's pool one tenant may hold */
    int conn_max_tenants;  /* recycle after this many distinct tenants (memory not readable) */
    int backend_memory_mb; /* recycle a connection whose backend holds more; 0: never */
    int user_check_ttl;    /* seconds a passed user check serves reads; 0: every request */
    int cache_mb;          /* MiB for the tenant, token and user-check caches together */
    int acquire_timeout_ms;
    char *log_level;
    int prepare;      /* 1: prepared statements (off behind PgBouncer < 1.21) */
    int http_threads; /* event-loop threads (0 in the settings: pool_size) */
    int pipeline;     /* PostgreSQL pipelines per event loop and server (0: every request waits on a
                       * pooled connection); connections beside the pools */
    int pipeline_writes;     /* 1: writes too go on the pipelines (0: reads only) */
    int pipeline_stall_ms;   /* a pipeline with no result for this long takes no more until it
                              * answers again: they use the pools */
    int http_workers;        /* threads for slow routes (password hashing, provisioning) */
    char *migrations_dir;    /* migrations/catalog and migrations/tenant live here */
    int job_workers;         /* background job threads of serve; 0: none */
    int login_max_per_email; /* failed logins of one email of a tenant per 5 minutes */
    int login_max_per_addr;  /* failed logins from one client address per 5 minutes */
    char *trusted_proxies;   /* "10.0.0.0/8,::1": peers whose X-Forwarded-For names the client */
    char *cors_origins;      /* "https://app.example.com,..."; NULL: no CORS headers */
    char *metrics_token;     /* NULL: only the operator token reads /metrics on the API address */
    char *metrics_listen;    /* host:port serving /metrics alone, without a token; NULL: none */
    int backup;              /* 1: WAL archiving and base backups of the embedded cluster */
    char *backup_dir;        /* NULL: <data_dir>/backups */
    int backup_interval;     /* seconds between full base backups */
    int backup_incr;         /* seconds between incremental backups (shorter WAL replay) */
    char *replica_urls;      /* "name=url,...": streaming replicas of the servers */
    int replica;             /* 1: the embedded cluster gets a streaming replica */
    char *read_replicas;     /* "off", "analytics" (default) or "reads" (tenant GETs too) */
    int replica_max_lag_kb;  /* a replica further behind than this serves no reads */
};

/*
 * Fill cfg from defaults, then the environment, then serve flags in argv[0..argc).
 * On a bad value returns TD_EINVAL-like TD_EBADREQ and sets *errmsg (static storage)
 * to one line naming the variable. Non-flag arguments are left alone.
 */
int td_config_load(struct td_config *cfg, int argc, char **argv, const char **errmsg) TD_MUSTCHECK;
void td_config_cleanup(struct td_config *cfg);
/* Usage lines for the serve flags, for --help. */
const char *td_config_flags_help(void);

#endif
