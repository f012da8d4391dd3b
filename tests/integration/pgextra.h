/*
 * pgextra.h - extra processes for the integration tests that need more than the
 * harness's one embedded cluster: a throw-away PostgreSQL cluster of the test's own
 * (initdb + pg_ctl as the postgres user, unix socket in its temp dir only) and a
 * PgBouncer in front of one. Header-only (static functions); include after harness.h.
 */
#ifndef TD_IT_PGEXTRA_H
#define TD_IT_PGEXTRA_H

#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TD_PG_BIN "/usr/lib/postgresql/15/bin"

struct td_pg {
    char dir[64]; /* temp dir, owned by postgres: data/, socket, logs */
    int port;
    pid_t bouncer; /* pgbouncer started by td_bouncer_start, or 0 */
    int bouncer_port;
};

/* Become the postgres user (in a forked child). */
static inline void td_pg_become_postgres(void)
{
    struct passwd *pw = getpwnam("postgres");
    if (!pw || setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
        _exit(126);
    setenv("HOME", pw->pw_dir, 1);
}

/* Run argv as postgres with output to log (appended); returns the exit status or -1. */
static inline int td_pg_run(const char *log, char *const argv[])
{
    pid_t pid = fork();
    int st;
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        td_pg_become_postgres();
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static inline void td_pg_print_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char buf[4096];
    size_t n;
    if (!f)
        return;
    fprintf(stderr, "---- %s ----\n", path);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, stderr);
    fclose(f);
}

/* initdb and start a cluster listening only on a unix socket in pg->dir, on port, with
 * extra lines (or NULL) appended to its postgresql.conf. */
static inline int td_pg_start_conf(struct td_pg *pg, int port, const char *extra)
{
    char data[96], log[96], conf[128], opt[96];
    struct passwd *pw = getpwnam("postgres");
    memset(pg, 0, sizeof(*pg));
    pg->port = port;
    strcpy(pg->dir, "/tmp/tdpg.XXXXXX");
    if (!pw || !mkdtemp(pg->dir) || chown(pg->dir, pw->pw_uid, pw->pw_gid) != 0 ||
        chmod(pg->dir, 0755) != 0) {
        fprintf(stderr, "pgextra: cannot make a cluster dir: %s\n", strerror(errno));
        return -1;
    }
    snprintf(data, sizeof(data), "%s/data", pg->dir);
    snprintf(log, sizeof(log), "%s/tools.log", pg->dir);
    char *initdb[] = {TD_PG_BIN "/initdb", "-D",           data, "-U",
                      "postgres",          "--auth=trust", "-E", "UTF8",
                      "--locale=C.UTF-8",  "-N",           NULL};
    if (td_pg_run(log, initdb) != 0) {
        td_pg_print_file(log);
        return -1;
    }
    snprintf(conf, sizeof(conf), "%s/postgresql.conf", data);
    FILE *f = fopen(conf, "a");
    if (!f)
        return -1;
    fprintf(f,
            "\nlisten_addresses = ''\nunix_socket_directories = '%s'\nport = %d\n"
            "max_connections = 300\nfsync = off\nsynchronous_commit = off\n"
            "full_page_writes = off\ntimezone = 'UTC'\n",
            pg->dir, port);
    if (extra)
        fputs(extra, f);
    fclose(f);
    snprintf(opt, sizeof(opt), "%s/pg.log", pg->dir);
    char *start[] = {TD_PG_BIN "/pg_ctl", "-D", data, "-l", opt, "-w", "-t", "60", "start", NULL};
    if (td_pg_run(log, start) != 0) {
        td_pg_print_file(log);
        td_pg_print_file(opt);
        return -1;
    }
    return 0;
}

static inline int td_pg_start(struct td_pg *pg, int port)
{
    return td_pg_start_conf(pg, port, NULL);
}

/* "host=<dir> port=<port> dbname=<db> user=postgres" */
static inline void td_pg_conninfo(const struct td_pg *pg, const char *db, char *out, size_t size)
{
    snprintf(out, size, "host=%s port=%d dbname=%s user=postgres", pg->dir, pg->port,
             db ? db : "postgres");
}

static inline PGconn *td_pg_connect(const struct td_pg *pg, const char *db)
{
    char ci[256];
    td_pg_conninfo(pg, db, ci, sizeof(ci));
    PGconn *c = PQconnectdb(ci);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pgextra: connect %s: %s\n", ci, PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

/*
 * What the operator of a server given by URL does (docs/operations.md): archive_command
 * pushes WAL to the pgBackRest stanza in conf (the server must run with archive_mode = on),
 * stanza-create, then a full base backup. Real pgbackrest, run as postgres.
 */
static inline int td_pg_archive_to(struct td_pg *pg, const char *conf, const char *stanza)
{
    char sql[640], log[96], confopt[256], stanzaopt[80];
    snprintf(log, sizeof(log), "%s/tools.log", pg->dir);
    snprintf(confopt, sizeof(confopt), "--config=%s", conf);
    snprintf(stanzaopt, sizeof(stanzaopt), "--stanza=%s", stanza);
    PGconn *c = td_pg_connect(pg, "postgres");
    if (!c)
        return -1;
    snprintf(sql, sizeof(sql),
             "ALTER SYSTEM SET archive_command = '/usr/bin/pgbackrest %s %s archive-push %%p'",
             confopt, stanzaopt);
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    r = PQexec(c, "SELECT pg_reload_conf()");
    PQclear(r);
    PQfinish(c);
    char *create[] = {"/usr/bin/pgbackrest", confopt, stanzaopt, "stanza-create", NULL};
    char *backup[] = {"/usr/bin/pgbackrest", confopt, stanzaopt, "--type=full", "backup", NULL};
    if (!ok || td_pg_run(log, create) != 0 || td_pg_run(log, backup) != 0) {
        td_pg_print_file(log);
        return -1;
    }
    return 0;
}

/*
 * PgBouncer (transaction pooling, pool_size server connections per database and user)
 * in front of pg, on a unix socket in pg->dir, port bport. Every database is reachable
 * through it (a "*" entry); users tenantd_app and postgres are accepted (auth trust).
 */
static inline int td_bouncer_start(struct td_pg *pg, int bport, int pool_size)
{
    char ini[96], users[96], log[96], pidf[96];
    snprintf(ini, sizeof(ini), "%s/pgbouncer.ini", pg->dir);
    snprintf(users, sizeof(users), "%s/userlist.txt", pg->dir);
    snprintf(log, sizeof(log), "%s/pgbouncer.log", pg->dir);
    snprintf(pidf, sizeof(pidf), "%s/pgbouncer.pid", pg->dir);
    FILE *f = fopen(users, "w");
    if (!f)
        return -1;
    fprintf(f, "\"tenantd_app\" \"\"\n\"postgres\" \"\"\n");
    fclose(f);
    f = fopen(ini, "w");
    if (!f)
        return -1;
    fprintf(f,
            "[databases]\n* = host=%s port=%d\n\n[pgbouncer]\nlisten_addr =\nlisten_port = %d\n"
            "unix_socket_dir = %s\nauth_type = trust\nauth_file = %s\npool_mode = transaction\n"
            "default_pool_size = %d\nmax_client_conn = 500\nmax_db_connections = 0\n"
            "ignore_startup_parameters = extra_float_digits\nadmin_users = postgres\n"
            "logfile = %s\npidfile = %s\nserver_reset_query =\n",
            pg->dir, pg->port, bport, pg->dir, users, pool_size, log, pidf);
    fclose(f);
    pg->bouncer_port = bport;
    pg->bouncer = fork();
    if (pg->bouncer < 0)
        return -1;
    if (pg->bouncer == 0) {
        td_pg_become_postgres();
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        char *argv[] = {"/usr/sbin/pgbouncer", ini, NULL};
        execv(argv[0], argv);
        _exit(127);
    }
    /* wait for its socket */
    char sock[160];
    snprintf(sock, sizeof(sock), "%s/.s.PGSQL.%d", pg->dir, bport);
    for (int i = 0; i < 100; i++) {
        struct stat sb;
        if (stat(sock, &sb) == 0)
            return 0;
        if (waitpid(pg->bouncer, NULL, WNOHANG) == pg->bouncer) {
            pg->bouncer = 0;
            break;
        }
        struct timespec ts = {0, 100000000L};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "pgextra: pgbouncer did not start\n");
    td_pg_print_file(log);
    return -1;
}

static inline PGconn *td_bouncer_connect(const struct td_pg *pg, const char *db, const char *user)
{
    char ci[256];
    snprintf(ci, sizeof(ci), "host=%s port=%d dbname=%s user=%s", pg->dir, pg->bouncer_port, db,
             user);
    PGconn *c = PQconnectdb(ci);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pgextra: connect %s: %s\n", ci, PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

/*
 * Fingerprint of one tenant's rows in schema (pool, or t_<hex>) on c: per table
 * "count:md5 of every column of every row, by id", joined with spaces. Equal prints
 * mean equal rows (ids, timestamps and password hashes included).
 */
static inline bool td_fingerprint(PGconn *c, const char *schema, const char *tenant_id, char *out,
                                  size_t size)
{
    static const char *const tables[] = {"users", "projects", "audit_logs"};
    size_t k = 0;
    out[0] = '\0';
    for (int i = 0; i < 3; i++) {
        char sql[512], v[128];
        const char *p[1] = {tenant_id};
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t.id)), "
                 "'-') FROM %s.%s t WHERE t.tenant_id = $1",
                 schema, tables[i]);
        if (!td_sql_value(c, sql, 1, p, v, sizeof(v)))
            return false;
        k += (size_t)snprintf(out + k, size > k ? size - k : 0, "%s%s", i ? " " : "", v);
    }
    return true;
}

/* Value of a one-value query as a number (-1 on failure). */
static inline long long td_sql_count(PGconn *c, const char *sql)
{
    char v[64];
    return td_sql_value(c, sql, 0, NULL, v, sizeof(v)) ? atoll(v) : -1;
}

/* Stop pgbouncer (if started) and the cluster, then remove the directory. */
static inline void td_pg_stop(struct td_pg *pg)
{
    char data[96], log[96];
    if (!pg->dir[0])
        return;
    if (pg->bouncer > 0) {
        kill(pg->bouncer, SIGTERM);
        waitpid(pg->bouncer, NULL, 0);
        pg->bouncer = 0;
    }
    snprintf(data, sizeof(data), "%s/data", pg->dir);
    snprintf(log, sizeof(log), "%s/tools.log", pg->dir);
    char *stop[] = {TD_PG_BIN "/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop", NULL};
    (void)td_pg_run(log, stop);
    if (!getenv("TD_IT_KEEP")) {
        pid_t pid = fork();
        if (pid == 0) {
            char *argv[] = {"/bin/rm", "-rf", pg->dir, NULL};
            execv(argv[0], argv);
            _exit(127);
        }
        if (pid > 0)
            waitpid(pid, NULL, 0);
    }
    pg->dir[0] = '\0';
}

#endif
