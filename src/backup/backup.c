/*
 * backup.c - continuous backup of the embedded cluster with pgBackRest (configuration,
 * stanza, scheduled full base backups, retention) and the archiving status of every server
 * (pg_stat_archiver) that /ready and /metrics report.
 */
#include "backup/internal.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "pg/cluster.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Retention in days: the longest plan window (enterprise, 30 days) plus one, so that the
 * oldest moment of the window still has a base backup before it. */
#define BKP_RETENTION_DAYS 31
#define BKP_POLL_S 5

long long bkp__now_ms(void)
{
    return td_now_ms();
}

static char *abs_dir(const char *path)
{
    char *r = realpath(path, NULL);
    if (!r)
        return NULL;
    char *s = td_xstrdup(r);
    free(r);
    return s;
}

/* The backup directory, created if missing: TENANTD_BACKUP_DIR or <data_dir>/backups. */
static char *backup_dir(const struct td_config *cfg)
{
    char *want =
        cfg->backup_dir ? td_xstrdup(cfg->backup_dir) : td_xasprintf("%s/backups", cfg->data_dir);
    if (mkdir(want, 0700) < 0 && errno != EEXIST) {
        td_log_error("cannot create backup directory %s: %s", want, strerror(errno));
        free(want);
        return NULL;
    }
    char *dir = abs_dir(want);
    free(want);
    /* the path reaches postgresql.conf and pgbackrest.conf inside quotes */
    for (const char *p = dir; p && *p; p++) {
        if ((unsigned char)*p < 0x20 || strchr("\"'\\$`%", *p)) {
            td_log_error("backup directory %s contains a quote, backslash, $, %%, ` or control "
                         "character",
                         dir);
            free(dir);
            return NULL;
        }
    }
    return dir;
}

static char *find_pgbackrest(void)
{
    if (access("/usr/bin/pgbackrest", X_OK) == 0)
        return td_xstrdup("/usr/bin/pgbackrest");
    /* PATH is how the process finds programs, not a tenantd setting */
    const char *path = getenv("PATH");
    char *copy = td_xstrdup(path ? path : ""), *save = NULL, *found = NULL;
    for (char *d = strtok_r(copy, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
        char *p = td_xasprintf("%s/pgbackrest", d);
        if (d[0] == '/' && access(p, X_OK) == 0)
            found = p;
        else
            free(p);
    }
    free(copy);
    return found;
}

char *bkp_cluster_conf(const struct td_config *cfg)
{
    if (cfg->database_url)
        return NULL;
    if (!cfg->backup)
        return td_xstrdup("# tenantd: backups are off (TENANTD_BACKUP=0)\narchive_mode = off\n");
    char *dir = backup_dir(cfg), *prog = find_pgbackrest();
    char *text = NULL;
    if (dir && prog)
        text = td_xasprintf("# tenantd: WAL archiving to the pgBackRest repository in %s\n"
                            "archive_mode = on\n"
                            "archive_command = '%s --config=%s/pgbackrest.conf --stanza=" BKP_STANZA
                            " archive-push %%p'\n"
                            "archive_timeout = 60\n"
                            "wal_level = replica\n",
                            dir, prog, dir);
    else if (dir)
        td_log_error("backups are on but pgbackrest is not installed (apt-get install "
                     "pgbackrest, or set TENANTD_BACKUP=0)");
    free(dir);
    free(prog);
    return text;
}

int bkp__pgbackrest(struct bkp *b, const char *stanza, const char *const *args,
                    const char *out_path)
{
    const char *argv[16];
    char *confopt = td_xasprintf("--config=%s", b->conf);
    char *stanzaopt = td_xasprintf("--stanza=%s", stanza);
    int n = 0;
    argv[n++] = confopt;
    argv[n++] = stanzaopt;
    for (int i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    if (out_path)
        unlink(out_path);
    int rc = pgc_cluster_run(b->cluster, b->pgbackrest, argv, out_path ? out_path : b->log);
    free(confopt);
    free(stanzaopt);
    return rc;
}

static int write_conf(struct bkp *b)
{
    const char *pg = pgc_cluster_socket_dir(b->cluster);
    FILE *f = fopen(b->conf, "we");
    int ok = f && fprintf(f,
                          "# written by tenantd at every start; see src/backup/README.md\n"
                          "[global]\n"
                          "repo1-path=%s/repo\n"
                          "repo1-retention-full-type=time\n"
                          "repo1-retention-full=%d\n"
                          "log-path=%s/log\n"
                          "lock-path=%s/lock\n"
                          "spool-path=%s/spool\n"
                          "log-level-console=warn\n"
                          "log-level-file=info\n"
                          "compress-type=lz4\n"
                          "process-max=2\n"
                          "start-fast=y\n"
                          "archive-timeout=120\n"
                          "\n[" BKP_STANZA "]\n"
                          "pg1-path=%s\n"
                          "pg1-socket-path=%s\n"
                          "pg1-port=5432\n"
                          "pg1-user=%s\n",
                          b->dir, BKP_RETENTION_DAYS, b->dir, b->dir, b->dir, pg, pg,
                          pgc_cluster_user(b->cluster)) > 0;
    if (ok)
        bkp__url_stanzas(b, f);
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok) {
        td_log_error("cannot write %s: %s", b->conf, strerror(errno));
        return TD_EUNAVAILABLE;
    }
    return 0;
}

/* The repository and its kin belong to the server's user: archive_command runs as it. */
static int prepare_repo(struct bkp *b)
{
    static const char *const subs[] = {"repo", "log", "lock", "spool", "scratch", "exports"};
    int rc = pgc_cluster_give(b->cluster, b->dir);
    for (size_t i = 0; rc == 0 && i < sizeof(subs) / sizeof(subs[0]); i++) {
        char *p = td_xasprintf("%s/%s", b->dir, subs[i]);
        if (mkdir(p, 0700) < 0 && errno != EEXIST) {
            td_log_error("cannot create %s: %s", p, strerror(errno));
            rc = TD_EUNAVAILABLE;
        } else {
            rc = pgc_cluster_give(b->cluster, p);
        }
        free(p);
    }
    if (rc == 0)
        rc = write_conf(b);
    if (rc == 0)
        rc = pgc_cluster_give(b->cluster, b->conf);
    int fd = rc == 0 ? open(b->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : -1;
    if (fd >= 0)
        close(fd);
    if (rc == 0)
        rc = pgc_cluster_give(b->cluster, b->log);
    return rc;
}

static int stanza_create(struct bkp *b)
{
    const char *args[] = {"stanza-create", NULL};
    int st = bkp__pgbackrest(b, BKP_STANZA, args, NULL);
    if (st == 0)
        return 0;
    td_log_error("pgbackrest stanza-create failed (exit status %d), see %s and %s/log", st, b->log,
                 b->dir);
    return TD_EUNAVAILABLE;
}

static long long parse_backups(struct bkp__server *sv, json_t *info)
{
    json_t *list = json_object_get(json_array_get(info, 0), "backup");
    long long last = 0, last_full = 0, oldest = 0, n = 0;
    size_t i;
    json_t *bk;
    json_array_foreach(list, i, bk)
    {
        json_t *ts = json_object_get(bk, "timestamp");
        long long stop = json_integer_value(json_object_get(ts, "stop"));
        if (json_is_true(json_object_get(bk, "error")) || stop <= 0)
            continue;
        if (stop > last)
            last = stop;
        const char *type = json_string_value(json_object_get(bk, "type"));
        if (type && strcmp(type, "full") == 0 && stop > last_full)
            last_full = stop;
        if (!oldest || stop < oldest)
            oldest = stop;
        n++;
    }
    atomic_store(&sv->last_backup, last);
    atomic_store(&sv->last_full, last_full);
    atomic_store(&sv->oldest_backup, oldest);
    atomic_store(&sv->backups, n);
    return n;
}

int bkp__refresh_info(struct bkp *b, int server)
{
    struct bkp__server *sv = &b->servers[server];
    /* the schedule thread and a request may both ask: each its own output file */
    char *path =
        td_xasprintf("%s/info-%d-%d.json", b->dir, server, atomic_fetch_add(&b->info_seq, 1));
    const char *args[] = {"--output=json", "--log-level-console=off", "--log-level-stderr=off",
                          "info", NULL};
    int rc = -1;
    if (sv->stanza[0] && bkp__pgbackrest(b, sv->stanza, args, path) == 0) {
        json_t *info = json_load_file(path, 0, NULL);
        if (json_is_array(info)) {
            parse_backups(sv, info);
            rc = 0;
        }
        json_decref(info);
    }
    atomic_store(&sv->info_at, (long long)time(NULL));
    unlink(path);
    free(path);
    return rc;
}

static void refresh_all_info(struct bkp *b)
{
    for (int i = 0; i < db_server_count(b->db) && i < BKP_MAX_SERVERS; i++)
        bkp__refresh_info(b, i);
}

/* type: "full", or "incr" (the files changed since the last backup: cheap to take, and it
 * bounds the WAL a restore must replay to one incremental interval). */
static void run_backup(struct bkp *b, const char *type)
{
    char *opt = td_xasprintf("--type=%s", type);
    const char *args[] = {opt, "backup", NULL};
    long long t0 = bkp__now_ms();
    td_log_info("backup: taking a base backup (%s) of the embedded cluster", type);
    int st = bkp__pgbackrest(b, BKP_STANZA, args, NULL);
    free(opt);
    if (st == 0)
        td_log_info("backup: base backup (%s) done in %lld ms", type, bkp__now_ms() - t0);
    else
        td_log_error("backup: pgbackrest backup failed (exit status %d), see %s/log", st, b->dir);
    bkp__refresh_info(b, 0);
}

/* One statement per server; a server that does not answer keeps its last figures. The
 * catalog's server is asked on the process's kept catalog connection: a poll must not start
 * a backend each time, nor add a connection to the budget. */
static void refresh_archiver(struct bkp *b)
{
    int n = db_server_count(b->db);
    for (int i = 0; i < n && i < BKP_MAX_SERVERS; i++) {
        PGconn *pg = NULL;
        PGresult *r = NULL;
        int rc = i == 0 ? db_admin_borrow(b->db, &pg) : db_admin_connect(b->db, i, NULL, &pg);
        if (rc == 0 &&
            db_admin_exec(pg, "reading the WAL archiver's status",
                          "SELECT current_setting('archive_mode') <> 'off', "
                          "coalesce(extract(epoch FROM last_archived_time)::bigint, 0), "
                          "failed_count FROM pg_stat_archiver",
                          0, NULL, &r) == 0 &&
            PQntuples(r) == 1) {
            atomic_store(&b->servers[i].archiving, PQgetvalue(r, 0, 0)[0] == 't');
            atomic_store(&b->servers[i].last_archived, atoll(PQgetvalue(r, 0, 1)));
            atomic_store(&b->servers[i].archive_failed, atoll(PQgetvalue(r, 0, 2)));
        }
        PQclear(r);
        if (i == 0)
            db_admin_return(b->db, pg);
        else
            PQfinish(pg);
    }
}

/* Tell the operator of a server given by URL what is missing, once at start. */
static void check_servers(struct bkp *b)
{
    refresh_archiver(b);
    int n = db_server_count(b->db);
    for (int i = 0; i < n && i < BKP_MAX_SERVERS; i++) {
        if (b->enabled && i == 0)
            continue;
        if (!atomic_load(&b->servers[i].archiving))
            td_log_warn("backup: server %s does not archive WAL (archive_mode is off): its "
                        "tenants cannot be restored to a past moment; see docs/operations.md",
                        db_server_name(b->db, i));
    }
}

/* The exports a restore keeps of the rows it replaced serve the longest window; what a
 * crashed job left of its own export serves nothing after a day. */
static void expire_exports(struct bkp *b)
{
    char *dir = td_xasprintf("%s/exports", b->dir);
    DIR *d = opendir(dir);
    struct dirent *e;
    time_t now = time(NULL);
    while (d && (e = readdir(d))) {
        struct stat st;
        char *p = td_xasprintf("%s/%s", dir, e->d_name);
        long keep = strncmp(e->d_name, "replaced-", 9) == 0 ? BKP_RETENTION_DAYS * 86400L : 86400L;
        if (e->d_name[0] != '.' && stat(p, &st) == 0 && S_ISREG(st.st_mode) &&
            now - st.st_mtime > keep && unlink(p) == 0)
            td_log_info("backup: removed %s, older than it is kept", p);
        free(p);
    }
    if (d)
        closedir(d);
    free(dir);
}

/* Seconds to sleep, 0 when stopping. */
static int nap(struct bkp *b, int s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += s;
    pthread_mutex_lock(&b->mu);
    if (!b->stop)
        pthread_cond_timedwait(&b->cv, &b->mu, &ts);
    int stop = b->stop;
    pthread_mutex_unlock(&b->mu);
    return !stop;
}

static void *schedule_main(void *arg)
{
    struct bkp *b = arg;
    long long next_info = 0;
    do {
        refresh_archiver(b);
        if (!b->enabled)
            continue;
        time_t now = time(NULL);
        if (now >= next_info) {
            refresh_all_info(b);
            expire_exports(b);
            next_info = now + 60;
        }
        long long full = atomic_load(&b->servers[0].last_full);
        long long last = atomic_load(&b->servers[0].last_backup);
        int want_full = !full || now - full >= b->cfg->backup_interval;
        if (want_full || now - last >= b->cfg->backup_incr) {
            run_backup(b, want_full ? "full" : "incr");
            refresh_archiver(b); /* the backup's own WAL was just archived */
            next_info = time(NULL) + 60;
        }
    } while (nap(b, BKP_POLL_S));
    return NULL;
}

static void main_stanza(struct bkp *b)
{
    snprintf(b->servers[0].stanza, sizeof(b->servers[0].stanza), "%s", BKP_STANZA);
    snprintf(b->servers[0].dbname, sizeof(b->servers[0].dbname), "tenantd");
    snprintf(b->servers[0].user, sizeof(b->servers[0].user), "%s", pgc_cluster_user(b->cluster));
}

int bkp_open(const struct td_config *cfg, struct pgc_cluster *cluster, struct db *db,
             const struct mig_set *migs, struct bkp **out)
{
    struct bkp *b = td_xcalloc(1, sizeof(*b));
    int rc = 0;
    b->cfg = cfg;
    b->cluster = cluster;
    b->db = db;
    b->migs = migs;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    pthread_mutex_init(&b->restore_mu, NULL);
    b->kinds[0] = (struct jobs_kind_ext){"tenant_restore", bkp__job_run, b};
    b->kinds[1] = (struct jobs_kind_ext){"tenant_clone", bkp__job_run, b};
    *out = NULL;
    if (cluster && cfg->backup) {
        b->dir = backup_dir(cfg);
        b->pgbackrest = find_pgbackrest();
        if (!b->dir || !b->pgbackrest) {
            rc = TD_EUNAVAILABLE;
            goto out;
        }
        b->conf = td_xasprintf("%s/pgbackrest.conf", b->dir);
        b->log = td_xasprintf("%s/tenantd-backup.log", b->dir);
        main_stanza(b);
        if ((rc = prepare_repo(b)) < 0 || (rc = stanza_create(b)) < 0)
            goto out;
        b->enabled = 1;
        refresh_all_info(b);
    }
    check_servers(b);
    if (pthread_create(&b->thread, NULL, schedule_main, b) == 0)
        b->has_thread = 1;
out:
    if (rc < 0)
        bkp_close(b);
    else
        *out = b;
    return rc;
}

void bkp_close(struct bkp *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    b->stop = 1;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    if (b->has_thread)
        pthread_join(b->thread, NULL);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->restore_mu);
    free(b->dir);
    free(b->conf);
    free(b->log);
    free(b->pgbackrest);
    free(b);
}

void bkp_get_status(struct bkp *b, int server, struct bkp_status *o)
{
    memset(o, 0, sizeof(*o));
    if (!b || server < 0 || server >= BKP_MAX_SERVERS)
        return;
    struct bkp__server *sv = &b->servers[server];
    o->archiving = atomic_load(&sv->archiving);
    o->last_archived = atomic_load(&sv->last_archived);
    o->archive_failed = atomic_load(&sv->archive_failed);
    if (b->enabled && sv->stanza[0]) {
        o->last_backup = atomic_load(&sv->last_backup);
        o->oldest_backup = atomic_load(&sv->oldest_backup);
        o->backups = atomic_load(&sv->backups);
    }
}

int bkp_can_restore(const struct bkp *b)
{
    return b && b->enabled;
}

int bkp_oldest(struct bkp *b, int server, long long *oldest, char *why, size_t cap)
{
    *oldest = 0;
    if (!bkp_can_restore(b) || server < 0 || server >= db_server_count(b->db) ||
        server >= BKP_MAX_SERVERS) {
        snprintf(why, cap, "restore and clone need the embedded cluster with backups on");
        return TD_EUNAVAILABLE;
    }
    struct bkp__server *sv = &b->servers[server];
    const char *name = db_server_name(b->db, server);
    if (!sv->stanza[0]) {
        snprintf(why, cap,
                 "server %s has no pgBackRest stanza (tenantd could not read its data "
                 "directory at start; see docs/operations.md)",
                 name);
        return TD_EUNAVAILABLE;
    }
    /* a base backup an operator has just taken counts at once, not after the next round */
    if (!atomic_load(&sv->backups) && time(NULL) - atomic_load(&sv->info_at) >= 2)
        bkp__refresh_info(b, server);
    if (!atomic_load(&sv->backups)) {
        snprintf(why, cap, "server %s has no base backup in the repository yet (stanza %s)", name,
                 sv->stanza);
        return TD_EUNAVAILABLE;
    }
    *oldest = atomic_load(&sv->oldest_backup);
    return 0;
}

int bkp_open_info(const struct td_config *cfg, struct pgc_cluster *cluster, struct db *db,
                  struct bkp **out)
{
    struct bkp *b = td_xcalloc(1, sizeof(*b));
    b->cfg = cfg;
    b->cluster = cluster;
    b->db = db;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    pthread_mutex_init(&b->restore_mu, NULL);
    *out = b;
    if (!cluster || !cfg->backup || !(b->dir = backup_dir(cfg)) ||
        !(b->pgbackrest = find_pgbackrest()))
        return TD_EUNAVAILABLE;
    b->conf = td_xasprintf("%s/pgbackrest.conf", b->dir);
    b->log = td_xasprintf("%s/tenantd-backup.log", b->dir);
    if (access(b->conf, R_OK) != 0)
        return TD_EUNAVAILABLE; /* `tenantd serve` writes it */
    main_stanza(b);
    /* the stanzas `tenantd serve` wrote: one per server, named after it */
    for (int i = 1; i < db_server_count(db) && i < BKP_MAX_SERVERS; i++)
        snprintf(b->servers[i].stanza, sizeof(b->servers[i].stanza), "%s", db_server_name(db, i));
    b->enabled = 1;
    return 0;
}

const struct jobs_kind_ext *bkp_job_kinds(struct bkp *b, int *n)
{
    *n = b ? 2 : 0;
    return b ? b->kinds : NULL;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

int bkp__remove_tree(const char *path)
{
    if (access(path, F_OK) != 0)
        return 0;
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
