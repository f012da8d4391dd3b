/*
 * cluster.h - the embedded PostgreSQL cluster in <data_dir>/pg that tenantd runs when no
 * TENANTD_DATABASE_URL is configured: initdb on first use, pg_ctl start/stop, and the
 * application database. See src/pg/README.md.
 */
#ifndef TD_PG_CLUSTER_H
#define TD_PG_CLUSTER_H

#include "core/err.h"

struct pgc_cluster;

/** Start the cluster in <data_dir>/pg, running initdb first if the directory holds none, or
 * reuse one that is already running there. Ensures a database named `dbname` exists.
 * data_dir is created if missing; relative paths are resolved against the working directory.
 * When running as root the tools run as the `postgres` system user, which must be able to
 * reach data_dir (data_dir itself gets o+x if needed). Server output goes to <data_dir>/pg.log.
 * *out is the caller's until pgc_cluster_stop(). Returns 0, or TD_EUNAVAILABLE with a
 * td_log_error line explaining why. Blocks (up to ~70 s); call from one thread at a time. */
int pgc_cluster_start(const char *data_dir, const char *dbname, const char *extra_conf,
                      struct pgc_cluster **out) TD_MUSTCHECK;

/* extra_conf (may be NULL: leave as it is) is the text of <data_dir>/pg/tenantd-extra.conf,
 * included from postgresql.conf after tenantd's own settings (WAL archiving); when it
 * changes, a server already running there is reloaded (archive_mode itself waits for its
 * next start: it may be serving another process). */

/** libpq conninfo string (keyword=value form) of the superuser on `dbname`, e.g.
 * "host=/abs/var/pg port=5432 dbname=tenantd user=postgres". Owned by c; valid until stop.
 * Thread-safe. */
const char *pgc_cluster_conninfo(const struct pgc_cluster *c);

/** Absolute socket directory (the cluster's data directory, <data_dir>/pg), for tests and
 * other connections. Owned by c; valid until stop. Thread-safe. */
const char *pgc_cluster_socket_dir(const struct pgc_cluster *c);

/* Where the server's programs (pg_ctl, postgres) are, and the superuser role / OS user
 * the server runs as. Owned by c. */
const char *pgc_cluster_bin_dir(const struct pgc_cluster *c);
const char *pgc_cluster_user(const struct pgc_cluster *c);

/* Run the program at path with args (NULL-terminated, without argv[0]) as the server's OS
 * user (root drops to postgres), no shell, stdin /dev/null, output appended to log (NULL:
 * discarded). Returns its exit status (128 + signal when killed) or -1 when it could not
 * run (logged). Thread-safe; blocks until the program exits. */
int pgc_cluster_run(const struct pgc_cluster *c, const char *path, const char *const *args,
                    const char *log);

/* Make path owned by the server's OS user (no-op unless we run as root). Returns 0 or
 * TD_EUNAVAILABLE (logged). */
int pgc_cluster_give(const struct pgc_cluster *c, const char *path) TD_MUSTCHECK;

/** Stop the cluster if this process started it (pg_ctl stop -m fast), then free c. A cluster
 * that was reused is left running. NULL ok. */
void pgc_cluster_stop(struct pgc_cluster *c);

#endif
