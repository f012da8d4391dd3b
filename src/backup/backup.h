/*
 * backup.h - continuous backup of the PostgreSQL servers tenantd manages (pgBackRest: WAL
 * archiving plus scheduled full base backups of the embedded cluster), the archiving
 * status of every server for /ready and /metrics, and the per-tenant restore and clone
 * jobs built on a scratch recovery of that backup. See src/backup/README.md.
 */
#ifndef TD_BACKUP_BACKUP_H
#define TD_BACKUP_BACKUP_H

#include "core/config.h"
#include "core/err.h"
#include "db/db.h"
#include "migrate/files.h"

#include <libpq-fe.h>

/* The pgBackRest stanza of the embedded cluster. */
#define BKP_STANZA "tenantd"

struct bkp;
struct pgc_cluster;

/* Text of the embedded cluster's extra settings (archive_mode, archive_command) for cfg,
 * or NULL when there is no embedded cluster. Caller frees. data_dir must exist. */
char *bkp_cluster_conf(const struct td_config *cfg);

/*
 * Set up backups: with an embedded cluster (cluster non-NULL) and cfg->backup, write the
 * pgBackRest configuration under the backup directory (a stanza for the embedded cluster,
 * created here, and one per server given by URL, which its operator archives into) and
 * create the embedded cluster's stanza; for every
 * server, read its archiving settings and warn when WAL is not archived. Then start the
 * thread that takes a full base backup when none is recent (at once when there is none)
 * and refreshes the status every few seconds. db, migs and cluster must outlive
 * bkp_close(). Returns 0 or TD_EUNAVAILABLE (logged); *out is the caller's.
 */
int bkp_open(const struct td_config *cfg, struct pgc_cluster *cluster, struct db *db,
             const struct mig_set *migs, struct bkp **out) TD_MUSTCHECK;
/* Stop the thread (a base backup under way is waited for) and free. NULL ok. */
void bkp_close(struct bkp *b);

/* What /ready and /metrics show of one server (unix seconds; 0: never / unknown). */
struct bkp_status {
    int archiving;           /* 1: the server archives WAL (archive_mode on) */
    long long last_archived; /* last WAL segment archived */
    long long archive_failed;
    long long last_backup;   /* newest complete base backup of the server's stanza */
    long long oldest_backup; /* oldest kept: the earliest moment a restore can reach */
    long long backups;       /* base backups kept */
};
/* Thread-safe snapshot for server (index into the db registry). b may be NULL. */
void bkp_get_status(struct bkp *b, int server, struct bkp_status *out);
/* 1 when restore and clone can run (an embedded cluster with backups on). */
int bkp_can_restore(const struct bkp *b);
/* The end (unix s) of the oldest base backup of server (index into the db registry) in
 * *oldest: a restore of its tenants reaches back to a second after it. Returns 0, or
 * TD_EUNAVAILABLE with the reason in why (backups off, no stanza for that server, no base
 * backup yet). Thread-safe; may run pgbackrest info once when no backup was known. */
int bkp_oldest(struct bkp *b, int server, long long *oldest, char *why, size_t cap) TD_MUSTCHECK;
/* For a command beside `tenantd serve` (the CLI): a struct bkp that only reads the
 * repository `tenantd serve` configured (no thread, nothing written), for bkp_oldest().
 * *out is set in every case (bkp_close() it); returns 0 or TD_EUNAVAILABLE (backups off,
 * no embedded cluster, or no configuration written yet). */
int bkp_open_info(const struct td_config *cfg, struct pgc_cluster *cluster, struct db *db,
                  struct bkp **out) TD_MUSTCHECK;

/* The job kinds (tenant_restore, tenant_clone) for jobs_start(). */
struct jobs_kind_ext;
const struct jobs_kind_ext *bkp_job_kinds(struct bkp *b, int *n);

#endif
