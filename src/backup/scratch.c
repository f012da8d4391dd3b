/*
 * scratch.c - a throw-away copy of one server (the embedded cluster, or a server given by
 * URL whose base backups and WAL are in the repository) as it was at one moment:
 * `pgbackrest restore --type=time` into its own directory, then a postgres on its own
 * socket directory and port that replays archived WAL up to the moment and promotes.
 */
#include "backup/internal.h"

#include "core/log.h"
#include "core/mem.h"
#include "pg/cluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A port nobody listens on now. The scratch server listens on no TCP address: the port only
 * names its socket file and shared memory key, but a free one keeps any tool that assumes
 * TCP from meeting another server. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port > 0 ? port : 55432;
}

static void stop_server(struct bkp *b, struct bkp__scratch *s);

static int make_dir(struct bkp *b, const char *path)
{
    if (mkdir(path, 0700) < 0 && errno != EEXIST) {
        td_log_error("cannot create %s: %s", path, strerror(errno));
        return TD_EUNAVAILABLE;
    }
    return pgc_cluster_give(b->cluster, path);
}

/* Always restored by pgBackRest, which refuses them in --db-include. */
static int system_db(const char *name)
{
    return !strcmp(name, "postgres") || !strcmp(name, "template0") || !strcmp(name, "template1");
}

static int restore_files(struct bkp *b, int server, struct bkp__scratch *s, const char *at,
                         const char *const *dbs)
{
    char *pgpath = td_xasprintf("--pg1-path=%s", s->pgdata);
    char *target = td_xasprintf("--target=%s", at);
    const char *args[16] = {
        pgpath, target, "--type=time", "--target-action=promote", "--archive-mode=off", NULL};
    int n = 5, st;
    char *inc[8] = {0};
    for (int i = 0, k = 0; dbs && dbs[i] && k < 8; i++)
        if (!system_db(dbs[i]))
            args[n++] = inc[k++] = td_xasprintf("--db-include=%s", dbs[i]);
    int some = n > 5;
    args[n++] = "restore";
    args[n] = NULL;
    const char *stanza = b->servers[server].stanza;
    st = bkp__pgbackrest(b, stanza, args, NULL);
    s->partial = st == 0 && some;
    if (st != 0 && some) {
        /* a database created after the backup is not in it: restore them all */
        td_log_info("backup: restore of only the needed databases failed (exit status %d); "
                    "restoring every database",
                    st);
        args[5] = "restore";
        args[6] = NULL;
        bkp__remove_tree(s->pgdata);
        if (make_dir(b, s->pgdata) == 0)
            st = bkp__pgbackrest(b, stanza, args, NULL);
    }
    for (int i = 0; i < 8; i++)
        free(inc[i]);
    free(pgpath);
    free(target);
    return st;
}

/* The copy is entered by its own socket only (a 0700 directory of the server's user, no
 * TCP), so trust is safe; the copied pg_hba.conf may want passwords tenantd does not have.
 * A server whose configuration lives outside its data directory (Debian's /etc) left no
 * postgresql.conf: an empty one will do, everything needed is on the command line. */
static int write_config(struct bkp *b, struct bkp__scratch *s)
{
    char *hba = td_xasprintf("%s/hba.conf", s->dir);
    char *conf = td_xasprintf("%s/postgresql.conf", s->pgdata);
    FILE *f = fopen(hba, "we");
    int rc = f && fputs("local all all trust\n", f) >= 0 ? 0 : TD_EUNAVAILABLE;
    if (f && fclose(f) != 0)
        rc = TD_EUNAVAILABLE;
    if (rc == 0)
        rc = pgc_cluster_give(b->cluster, hba);
    if (rc == 0 && access(conf, F_OK) != 0) {
        f = fopen(conf, "we");
        rc = f && fclose(f) == 0 ? pgc_cluster_give(b->cluster, conf) : TD_EUNAVAILABLE;
    }
    free(hba);
    free(conf);
    return rc;
}

/* Why the scratch server stopped before the moment, from its log: a moment no backup or
 * archived WAL reaches is the caller's error, anything else is ours. */
static int start_failure(const struct bkp__scratch *s, char *err, size_t cap)
{
    char *path = td_xasprintf("%s/pg.log", s->dir);
    FILE *f = fopen(path, "re");
    char line[1024];
    int rc = TD_EUNAVAILABLE;
    snprintf(err, cap, "the recovered copy did not start (see the server log)");
    char last[1024] = "";
    while (f && fgets(line, sizeof(line), f)) {
        if (strstr(line, "FATAL:") || strstr(line, "PANIC:"))
            snprintf(last, sizeof(last), "%s", line);
        if (strstr(line, "before consistent recovery point") ||
            strstr(line, "recovery ended before configured recovery target")) {
            snprintf(err, cap, "no base backup and archived WAL reach that moment");
            rc = TD_EVALIDATION;
        }
    }
    if (f)
        fclose(f);
    /* the scratch directory, log included, is removed when the job ends */
    last[strcspn(last, "\n")] = '\0';
    td_log_error("backup: the recovered copy in %s stopped: %s", s->dir, last[0] ? last : "?");
    free(path);
    return rc;
}

static int start_server(struct bkp *b, struct bkp__scratch *s, char *err, size_t cap)
{
    char *pgctl = td_xasprintf("%s/pg_ctl", pgc_cluster_bin_dir(b->cluster));
    char *logf = td_xasprintf("%s/pg.log", s->dir);
    /* command-line settings beat the copied postgresql.conf: no TCP, our own socket, and
     * no archiving (the copy must never push WAL of its new timeline into the repository).
     * The databases left out of a partial restore are zeroed files: WAL that touches them
     * refers to pages recovery cannot find, which is harmless as nothing reads them, so
     * ignore_invalid_pages lets recovery go on instead of stopping. */
    char *opts =
        td_xasprintf("-p %d -c listen_addresses='' -c unix_socket_directories='%s' "
                     "-c hba_file='%s/hba.conf' -c ssl=off "
                     "-c archive_mode=off -c hot_standby=off -c logging_collector=off "
                     "-c shared_buffers=64MB -c max_connections=20 "
                     "-c max_wal_senders=0 -c max_replication_slots=0%s",
                     s->port, s->dir, s->dir, s->partial ? " -c ignore_invalid_pages=on" : "");
    const char *args[] = {"start", "-w", "-t", "3600", "-D", s->pgdata,
                          "-l",    logf, "-o", opts,   NULL};
    int st = pgc_cluster_run(b->cluster, pgctl, args, b->log), rc = 0;
    if (st == 0)
        s->running = 1;
    else
        rc = start_failure(s, err, cap);
    free(opts);
    free(logf);
    free(pgctl);
    return rc;
}

/* pg_ctl -w returns once the server runs, which with hot_standby off can be before
 * recovery ends: wait until it answers as a primary, or it stopped (the moment was not
 * reached). */
static int wait_promoted(struct bkp__scratch *s, char *err, size_t cap)
{
    const struct timespec pause = {0, 100 * 1000 * 1000};
    char *pidfile = td_xasprintf("%s/postmaster.pid", s->pgdata);
    long long t0 = bkp__now_ms(), beat = t0;
    int rc = TD_EUNAVAILABLE;
    for (;;) {
        PGconn *pg = PQconnectdb(s->conninfo);
        if (PQstatus(pg) == CONNECTION_OK) {
            PGresult *r = PQexec(pg, "SELECT pg_is_in_recovery()");
            int primary = PQresultStatus(r) == PGRES_TUPLES_OK && PQgetvalue(r, 0, 0)[0] == 'f';
            PQclear(r);
            PQfinish(pg);
            if (primary) {
                rc = 0;
                break;
            }
        } else {
            PQfinish(pg);
            if (access(pidfile, F_OK) != 0) {
                s->running = 0;
                rc = start_failure(s, err, cap);
                break;
            }
        }
        if (bkp__now_ms() - t0 > 3600 * 1000) {
            snprintf(err, cap, "WAL replay did not reach the moment within an hour");
            break;
        }
        if (s->tick && bkp__now_ms() - beat > 10000) {
            s->tick(s->tick_arg);
            beat = bkp__now_ms();
        }
        nanosleep(&pause, NULL);
    }
    free(pidfile);
    return rc;
}

int bkp__scratch_start(struct bkp *b, int server, const char *job_id, const char *at,
                       const char *const *dbs, struct bkp__scratch *s, char *err, size_t cap)
{
    s->dir = td_xasprintf("%s/scratch/%.8s", b->dir, job_id);
    s->pgdata = td_xasprintf("%s/pg", s->dir);
    s->port = free_port();
    bkp__remove_tree(s->dir); /* what a crashed attempt left */
    if (make_dir(b, s->dir) < 0 || make_dir(b, s->pgdata) < 0) {
        snprintf(err, cap, "cannot create the scratch directory");
        return TD_EUNAVAILABLE;
    }
    long long t0 = bkp__now_ms();
    int st = restore_files(b, server, s, at, dbs);
    if (st == 0 && write_config(b, s) < 0)
        st = -1;
    s->restore_ms = bkp__now_ms() - t0;
    if (st != 0) {
        snprintf(err, cap,
                 "pgbackrest restore failed (exit status %d); is there a base backup "
                 "before that moment?",
                 st);
        return st == 1 || st == 75 ? TD_EVALIDATION : TD_EUNAVAILABLE;
    }
    t0 = bkp__now_ms();
    s->conninfo = td_xasprintf("host=%s port=%d dbname=%s user=%s", s->dir, s->port,
                               b->servers[server].dbname, b->servers[server].user);
    int rc = start_server(b, s, err, cap);
    if (rc == 0)
        rc = wait_promoted(s, err, cap);
    if (rc == TD_EUNAVAILABLE && s->partial) {
        /* the copy of only some databases did not come up: copy them all, once */
        td_log_warn("backup: the partial copy did not start; restoring every database");
        stop_server(b, s);
        bkp__remove_tree(s->pgdata);
        t0 = bkp__now_ms();
        if ((st = make_dir(b, s->pgdata)) == 0)
            st = restore_files(b, server, s, at, NULL);
        if (st == 0 && write_config(b, s) < 0)
            st = -1;
        s->restore_ms += bkp__now_ms() - t0;
        t0 = bkp__now_ms();
        rc = st == 0 ? start_server(b, s, err, cap) : TD_EUNAVAILABLE;
        if (rc == 0)
            rc = wait_promoted(s, err, cap);
    }
    s->replay_ms = bkp__now_ms() - t0;
    return rc;
}

static void stop_server(struct bkp *b, struct bkp__scratch *s)
{
    if (!s->running)
        return;
    char *pgctl = td_xasprintf("%s/pg_ctl", pgc_cluster_bin_dir(b->cluster));
    const char *args[] = {"stop", "-w", "-m", "immediate", "-D", s->pgdata, NULL};
    if (pgc_cluster_run(b->cluster, pgctl, args, b->log) != 0)
        td_log_error("backup: could not stop the scratch server in %s", s->pgdata);
    free(pgctl);
    s->running = 0;
}

void bkp__scratch_stop(struct bkp *b, struct bkp__scratch *s)
{
    stop_server(b, s);
    if (s->dir && bkp__remove_tree(s->dir) < 0)
        td_log_warn("backup: could not remove %s: %s", s->dir, strerror(errno));
    free(s->dir);
    free(s->pgdata);
    free(s->conninfo);
    memset(s, 0, sizeof(*s));
}
