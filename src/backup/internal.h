/*
 * internal.h - what backup.c (setup, schedule, status), scratch.c (a recovered copy of the
 * cluster) and restore.c (the restore and clone jobs) share. Not for use outside src/backup.
 */
#ifndef TD_BACKUP_INTERNAL_H
#define TD_BACKUP_INTERNAL_H

#include "backup/backup.h"
#include "jobs/jobs.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#define BKP_MAX_SERVERS 32

struct bkp__server {
    atomic_int archiving;
    atomic_llong last_archived, archive_failed;
    atomic_llong last_backup, last_full, oldest_backup, backups, info_at;
    /* set once before the schedule thread starts: the pgBackRest stanza of this server
     * ("" when tenantd cannot restore it), the database its pool and schema tenants live
     * in and the superuser a recovered copy is entered as */
    char stanza[64], dbname[64], user[64];
};

struct bkp {
    const struct td_config *cfg;
    struct pgc_cluster *cluster; /* NULL: servers given by URL, no restore */
    struct db *db;
    const struct mig_set *migs;
    char *dir;        /* absolute backup directory */
    char *conf;       /* <dir>/pgbackrest.conf */
    char *log;        /* <dir>/tenantd-backup.log: output of pgbackrest and scratch servers */
    char *pgbackrest; /* absolute path of the program */
    int enabled;      /* embedded cluster with backups on */
    pthread_t thread;
    int has_thread;
    pthread_mutex_t mu; /* guards stop and the condition variable */
    pthread_cond_t cv;
    int stop;
    pthread_mutex_t restore_mu; /* one scratch recovery at a time (2 cores, disk) */
    atomic_int info_seq;
    struct bkp__server servers[BKP_MAX_SERVERS];
    struct jobs_kind_ext kinds[2];
};

/* Run pgbackrest on stanza with args (NULL-terminated) as the cluster's user, output appended
 * to b->log (or to out_path when non-NULL, truncated first). Returns its exit status or -1. */
int bkp__pgbackrest(struct bkp *b, const char *stanza, const char *const *args,
                    const char *out_path);

/* Re-read the repository's list of backups of one server's stanza into b->servers[server]
 * (last/oldest/count). Thread-safe. Returns 0 or -1. */
int bkp__refresh_info(struct bkp *b, int server);

/* Write the stanza of every server given by URL whose data directory, port and socket
 * tenantd can read (stanzas.c), into the open pgbackrest.conf f. */
void bkp__url_stanzas(struct bkp *b, FILE *f);

/* rm -rf path (it lies under b->dir). Returns 0 or -1. */
int bkp__remove_tree(const char *path);

/* A recovered copy of one server at one moment, on its own socket directory and
 * port, running until bkp__scratch_stop(). */
struct bkp__scratch {
    char *dir;      /* <backup dir>/scratch/<job id> */
    char *pgdata;   /* dir/pg */
    char *conninfo; /* superuser on the tenantd database */
    int port;
    int running;
    int partial; /* only some databases were copied (the others are zeroed files) */
    long long restore_ms, replay_ms; /* time spent copying the backup, and replaying WAL */
    void (*tick)(void *arg);         /* set by the caller: called every 10 s of replay */
    void *tick_arg;
};
/* s->tick and s->tick_arg are the caller's, the rest is filled here.
 * Restore the newest backup of server's stanza before `at` (timestamptz text) into a new
 * scratch directory for job_id, only the databases named in dbs (NULL-terminated; system
 * databases always come) when the backup has them all, then start it and replay WAL up to at.
 * Returns 0, TD_EVALIDATION (no backup or WAL reaches that moment; err says so) or TD_EUNAVAILABLE.
 * s is cleaned up by bkp__scratch_stop() in every case. */
int bkp__scratch_start(struct bkp *b, int server, const char *job_id, const char *at,
                       const char *const *dbs, struct bkp__scratch *s, char *err,
                       size_t cap) TD_MUSTCHECK;
/* Stop the scratch server (immediate: it is thrown away) and remove its directory. */
void bkp__scratch_stop(struct bkp *b, struct bkp__scratch *s);

/* The restore and clone job (restore.c). */
int bkp__job_run(void *arg, PGconn *pg, const char *job_id, const json_t *payload, char *err,
                 size_t cap);

/* Monotonic milliseconds. */
long long bkp__now_ms(void);

#endif
