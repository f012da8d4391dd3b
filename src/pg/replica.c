/*
 * replica.c - the embedded cluster's streaming replica (see replica.h and README.md).
 *
 * It lives beside the primary, in <data_dir>/pg-replica, and listens only on a socket in
 * its own directory (same port number, another directory). pg_basebackup -R writes
 * standby.signal and primary_conninfo, so the copy starts as a hot standby that follows
 * the primary over the socket.
 */
#include "pg/replica.h"

#include "core/log.h"
#include "core/mem.h"
#include "pg/cluster.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct pgc_replica {
    const struct pgc_cluster *primary;
    char *dir, *log, *conninfo, *pg_ctl;
    int started;
};

static int exists(const char *dir, const char *name)
{
    char *p = td_xasprintf("%s/%s", dir, name);
    int ok = access(p, F_OK) == 0;
    free(p);
    return ok;
}

/* The settings that differ from the primary's copied postgresql.conf (later lines win). */
static int write_conf(const struct pgc_replica *r)
{
    char *path = td_xasprintf("%s/postgresql.conf", r->dir);
    FILE *f = fopen(path, "ae");
    int ok = f && fprintf(f,
                          "\n# tenantd: embedded replica settings\n"
                          "unix_socket_directories = '%s'\n"
                          "hot_standby = on\n"
                          /* long analytics reads are not cancelled by replayed vacuums */
                          "hot_standby_feedback = on\n"
                          "archive_mode = off\n",
                          r->dir) > 0;
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok)
        td_log_error("cannot write %s: %s", path, strerror(errno));
    free(path);
    return ok ? 0 : TD_EUNAVAILABLE;
}

/* pg_basebackup -R from the primary's socket into an empty r->dir. */
static int make_copy(const struct pgc_replica *r)
{
    if (mkdir(r->dir, 0700) < 0 && errno != EEXIST) {
        td_log_error("cannot create %s: %s", r->dir, strerror(errno));
        return TD_EUNAVAILABLE;
    }
    if (pgc_cluster_give(r->primary, r->dir) < 0)
        return TD_EUNAVAILABLE;
    char *tool = td_xasprintf("%s/pg_basebackup", pgc_cluster_bin_dir(r->primary));
    const char *args[] = {"-D",
                          r->dir,
                          "-R",
                          "-X",
                          "stream",
                          "-c",
                          "fast",
                          "-h",
                          pgc_cluster_socket_dir(r->primary),
                          "-p",
                          "5432",
                          "-U",
                          pgc_cluster_user(r->primary),
                          NULL};
    td_log_info("making the embedded replica in %s (pg_basebackup -R)", r->dir);
    int st = pgc_cluster_run(r->primary, tool, args, r->log);
    free(tool);
    if (st != 0) {
        td_log_error("cannot make the embedded replica: pg_basebackup failed (exit status %d), "
                     "see %s; remove %s before trying again",
                     st, r->log, r->dir);
        return TD_EUNAVAILABLE;
    }
    /* the primary's socket lives in its data directory: its lock file came along */
    char *lock = td_xasprintf("%s/.s.PGSQL.5432.lock", r->dir);
    (void)unlink(lock);
    free(lock);
    return write_conf(r);
}

static int running(const struct pgc_replica *r)
{
    const char *args[] = {"status", "-D", r->dir, NULL};
    return exists(r->dir, "postmaster.pid") &&
           pgc_cluster_run(r->primary, r->pg_ctl, args, NULL) == 0;
}

int pgc_replica_start(const struct pgc_cluster *primary, struct pgc_replica **out)
{
    struct pgc_replica *r = td_xcalloc(1, sizeof(*r));
    r->primary = primary;
    r->dir = td_xasprintf("%s-replica", pgc_cluster_socket_dir(primary));
    r->log = td_xasprintf("%s-replica.log", pgc_cluster_socket_dir(primary));
    r->pg_ctl = td_xasprintf("%s/pg_ctl", pgc_cluster_bin_dir(primary));
    r->conninfo = td_xasprintf("host='%s' port=5432 dbname=tenantd user='%s'", r->dir,
                               pgc_cluster_user(primary));
    *out = NULL;
    int rc = 0;
    if (!exists(r->dir, "standby.signal"))
        rc = make_copy(r);
    if (rc == 0 && running(r)) {
        td_log_info("reusing the replica already running in %s", r->dir);
    } else if (rc == 0) {
        const char *args[] = {"start", "-w",   "-t", "60",      "-D", r->dir,
                              "-l",    r->log, "-o", "-p 5432", NULL};
        int st = pgc_cluster_run(primary, r->pg_ctl, args, NULL);
        if (st != 0) {
            td_log_error("cannot start the embedded replica in %s (exit status %d), see %s", r->dir,
                         st, r->log);
            rc = TD_EUNAVAILABLE;
        } else {
            r->started = 1;
            td_log_info("embedded replica started in %s", r->dir);
        }
    }
    if (rc < 0) {
        pgc_replica_stop(r);
        return rc;
    }
    *out = r;
    return 0;
}

const char *pgc_replica_conninfo(const struct pgc_replica *r)
{
    return r->conninfo;
}

void pgc_replica_stop(struct pgc_replica *r)
{
    if (!r)
        return;
    /* an operator (or a test) may have stopped it meanwhile */
    if (r->started && running(r)) {
        const char *args[] = {"stop", "-m", "fast", "-w", "-D", r->dir, NULL};
        if (pgc_cluster_run(r->primary, r->pg_ctl, args, NULL) != 0)
            td_log_error("cannot stop the embedded replica in %s, see %s", r->dir, r->log);
    }
    free(r->dir);
    free(r->log);
    free(r->conninfo);
    free(r->pg_ctl);
    free(r);
}
