/*
 * cluster.c - the embedded PostgreSQL cluster under <data_dir>/pg: initdb on first use,
 * start with pg_ctl (as the postgres user when we run as root, since PostgreSQL refuses
 * root), reuse a server already running there, and create the application database.
 */
#include "pg/cluster.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"

#include <libpq-fe.h>

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PGC_PORT 5432
#define PGC_PORT_STR "5432"
#define PGC_LIBDIR "/usr/lib/postgresql"
#define PGC_CONNECT_WAIT_MS 10000
#define PGC_MAX_ARGS 16
#define PGC_NAMEDATALEN 64 /* PostgreSQL's NAMEDATALEN: identifiers are at most 63 bytes */

struct pgc_cluster {
    char *data_dir; /* absolute */
    char *pg_dir;   /* absolute data directory of the cluster, also its socket directory */
    char *log_path; /* <data_dir>/pg.log: output of initdb, pg_ctl and the server */
    char *bin_dir;  /* where initdb and pg_ctl live */
    char *user;     /* superuser role, named after the OS user the server runs as */
    char *conninfo;
    int started;    /* this process started the server, so stop() stops it */
    int drop_privs; /* we are root: run the tools as run_uid */
    uid_t run_uid;
    gid_t run_gid;
    gid_t *groups; /* supplementary groups of run_uid, looked up before fork */
    int ngroups;
};

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0, n;
    char *buf = td_xmalloc(cap);
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap) {
            cap *= 2;
            buf = td_xrealloc(buf, cap);
        }
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

/* libpq error messages span lines; the log wants one. */
static char *one_line(const char *msg)
{
    char *s = td_xstrdup(msg ? msg : "");
    for (char *p = s; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == ' ')
        s[--n] = '\0';
    return s;
}

static int identity_init(struct pgc_cluster *c)
{
    if (geteuid() != 0) {
        struct passwd *pw = getpwuid(geteuid());
        if (!pw) {
            td_log_error("cannot start embedded postgresql: uid %u has no user name",
                         (unsigned)geteuid());
            return TD_EUNAVAILABLE;
        }
        c->user = td_xstrdup(pw->pw_name);
        return TD_OK;
    }
    struct passwd *pw = getpwnam("postgres");
    if (!pw) {
        td_log_error("cannot start embedded postgresql: it refuses to run as root and there "
                     "is no \"postgres\" system user to run it as");
        return TD_EUNAVAILABLE;
    }
    c->user = td_xstrdup("postgres");
    c->drop_privs = 1;
    c->run_uid = pw->pw_uid;
    c->run_gid = pw->pw_gid;
    /* initgroups() reads /etc/group and allocates, which a forked child of a threaded
     * process must not do, so the group list is resolved here and set with setgroups(). */
    int n = 16;
    c->groups = td_xmalloc((size_t)n * sizeof(gid_t));
    for (;;) {
        int want = n;
        if (getgrouplist(c->user, c->run_gid, c->groups, &want) >= 0) {
            c->ngroups = want;
            break;
        }
        n = want > n ? want : n * 2;
        c->groups = td_xrealloc(c->groups, (size_t)n * sizeof(gid_t));
    }
    return TD_OK;
}

/* mkdir -p: missing parents 0755, the leaf 0700 (it also holds secrets). */
static int mkdir_p(const char *path)
{
    char *p = td_xstrdup(path);
    int rc = 0;
    for (char *s = strchr(p + 1, '/'); s && rc == 0; s = strchr(s + 1, '/')) {
        *s = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
            rc = -1;
        *s = '/';
    }
    if (rc == 0 && mkdir(p, 0700) < 0 && errno != EEXIST)
        rc = -1;
    free(p);
    return rc;
}

/* The POSIX rule: the owner class, else the group class, else other. */
static int can_search(const struct pgc_cluster *c, const struct stat *st)
{
    if (st->st_uid == c->run_uid)
        return (st->st_mode & S_IXUSR) != 0;
    for (int i = 0; i < c->ngroups; i++)
        if (st->st_gid == c->groups[i])
            return (st->st_mode & S_IXGRP) != 0;
    return (st->st_mode & S_IXOTH) != 0;
}

/* As root, the postgres user must be able to reach <data_dir>/pg and <data_dir>/pg.log. */
static int check_reachable(const struct pgc_cluster *c)
{
    char *p = td_xstrdup(c->data_dir);
    struct stat st;
    int rc = TD_EUNAVAILABLE;
    for (char *s = p; s; s = strchr(s + 1, '/')) {
        char save = s[1];
        s[1] = '\0'; /* the prefix up to and including this slash */
        int ok = stat(p, &st) == 0 && can_search(c, &st);
        s[1] = save;
        if (!ok) {
            td_log_error("cannot start embedded postgresql: user %s cannot enter %.*s (run "
                         "chmod o+x on it or choose another data directory)",
                         c->user, (int)(s == p ? 1 : s - p), p);
            goto out;
        }
    }
    if (stat(p, &st) < 0 || (!can_search(c, &st) && chmod(p, (st.st_mode & 07777) | S_IXOTH) < 0)) {
        td_log_error("cannot start embedded postgresql: cannot make %s searchable by user %s: %s",
                     p, c->user, strerror(errno));
        goto out;
    }
    rc = TD_OK;
out:
    free(p);
    return rc;
}

/* Paths reach pg_ctl's shell command line (double-quoted), postgresql.conf and conninfo. */
static int check_path(const char *path)
{
    for (const char *s = path; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f || strchr("\"'\\$`", *s)) {
            td_log_error("cannot start embedded postgresql: data directory %s contains a quote, "
                         "backslash, $, ` or control character",
                         path);
            return TD_EUNAVAILABLE;
        }
    }
    struct sockaddr_un sun;
    size_t len = strlen(path) + strlen("/.s.PGSQL." PGC_PORT_STR);
    if (len >= sizeof(sun.sun_path)) {
        td_log_error("cannot start embedded postgresql: socket path %s/.s.PGSQL.%d would be %zu "
                     "bytes, over the system limit of %zu; choose a shorter data directory",
                     path, PGC_PORT, len, sizeof(sun.sun_path) - 1);
        return TD_EUNAVAILABLE;
    }
    return TD_OK;
}

static int has_cluster(const struct pgc_cluster *c)
{
    char *p = td_xasprintf("%s/PG_VERSION", c->pg_dir);
    int yes = access(p, F_OK) == 0;
    free(p);
    return yes;
}

/* Refuse a bad path before creating anything; realpath() output is checked again later. */
static int precheck_path(const char *data_dir)
{
    char *cwd = data_dir[0] == '/' ? NULL : getcwd(NULL, 0);
    char *pg = td_xasprintf("%s%s%s/pg", cwd ? cwd : "", cwd ? "/" : "", data_dir);
    int rc = check_path(pg);
    free(pg);
    free(cwd);
    return rc;
}

static int prepare_dirs(struct pgc_cluster *c, const char *data_dir)
{
    char *abs = NULL;
    if (precheck_path(data_dir) < 0)
        return TD_EUNAVAILABLE;
    if (mkdir_p(data_dir) < 0 || !(abs = realpath(data_dir, NULL))) {
        td_log_error("cannot start embedded postgresql: cannot create data directory %s: %s",
                     data_dir, strerror(errno));
        return TD_EUNAVAILABLE;
    }
    c->data_dir = td_xstrdup(abs);
    free(abs);
    c->pg_dir = td_xasprintf("%s/pg", strcmp(c->data_dir, "/") ? c->data_dir : "");
    c->log_path = td_xasprintf("%s/pg.log", strcmp(c->data_dir, "/") ? c->data_dir : "");
    int rc = check_path(c->pg_dir);
    if (rc == TD_OK && c->drop_privs)
        rc = check_reachable(c);
    if (rc < 0)
        return rc;
    if (mkdir(c->pg_dir, 0700) < 0 && errno != EEXIST) {
        td_log_error("cannot start embedded postgresql: cannot create %s: %s", c->pg_dir,
                     strerror(errno));
        return TD_EUNAVAILABLE;
    }
    /* initdb must own the directory it fills; an existing cluster keeps its owner. */
    if (c->drop_privs && !has_cluster(c) && chown(c->pg_dir, c->run_uid, c->run_gid) < 0) {
        td_log_error("cannot start embedded postgresql: cannot give %s to user %s: %s", c->pg_dir,
                     c->user, strerror(errno));
        return TD_EUNAVAILABLE;
    }
    return TD_OK;
}

static int tools_in(const char *dir)
{
    char *a = td_xasprintf("%s/initdb", dir);
    char *b = td_xasprintf("%s/pg_ctl", dir);
    int ok = access(a, X_OK) == 0 && access(b, X_OK) == 0;
    free(a);
    free(b);
    return ok;
}

/* "15" -> 15000, "9.6" -> 9006: PGC_LIBDIR/<version>/bin/initdb */
static long glob_version(const char *path)
{
    const char *v = path + strlen(PGC_LIBDIR "/");
    char *end;
    long major = strtol(v, &end, 10), minor = 0;
    if (*end == '.')
        minor = strtol(end + 1, &end, 10);
    return *end == '/' ? major * 1000 + minor : -1;
}

/* PGC_LIBDIR/<version>/bin, the cluster's own version if installed, else the newest. */
static char *find_lib_bin_dir(const char *want_version, char **version_out)
{
    char *best = NULL;
    if (want_version) {
        best = td_xasprintf(PGC_LIBDIR "/%s/bin", want_version);
        if (tools_in(best)) {
            *version_out = td_xstrdup(want_version);
            return best;
        }
        free(best);
        best = NULL;
    }
    glob_t g;
    long best_v = -1;
    if (glob(PGC_LIBDIR "/*/bin/initdb", 0, NULL, &g) != 0)
        return NULL;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        long v = glob_version(g.gl_pathv[i]);
        char *dir = td_xstrndup(g.gl_pathv[i], strlen(g.gl_pathv[i]) - strlen("/initdb"));
        if (v > best_v && tools_in(dir)) {
            free(best);
            best = dir;
            best_v = v;
        } else {
            free(dir);
        }
    }
    globfree(&g);
    if (best) {
        const char *v = best + strlen(PGC_LIBDIR "/");
        *version_out = td_xstrndup(v, strcspn(v, "/"));
    }
    return best;
}

static char *find_path_bin_dir(void)
{
    /* PATH is how the process finds programs, not a tenantd setting (see core/config.c). */
    const char *path = getenv("PATH");
    if (!path)
        return NULL;
    char *copy = td_xstrdup(path), *save = NULL, *found = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save))
        if (tools_in(dir))
            found = realpath(dir, NULL); /* the child runs from / */
    free(copy);
    if (!found)
        return NULL;
    char *dir = td_xstrdup(found);
    free(found);
    return dir;
}

static int find_binaries(struct pgc_cluster *c)
{
    char *pv_path = td_xasprintf("%s/PG_VERSION", c->pg_dir);
    char *want = read_file(pv_path);
    char *have = NULL;
    int rc = TD_EUNAVAILABLE;
    if (want) {
        want[strcspn(want, " \t\r\n")] = '\0';
        if (want[0] == '\0' || want[strspn(want, "0123456789.")] != '\0')
            want[0] = '\0'; /* not a version: do not build a path from it */
    }
    c->bin_dir = find_lib_bin_dir(want && want[0] ? want : NULL, &have);
    if (!c->bin_dir)
        c->bin_dir = find_path_bin_dir();
    if (!c->bin_dir) {
        td_log_error("cannot start embedded postgresql: no initdb and pg_ctl in " PGC_LIBDIR
                     "/*/bin or PATH (install the postgresql package)");
        goto out;
    }
    if (want && want[0] && have && strcmp(want, have) != 0) {
        td_log_error("cannot start embedded postgresql: %s was created by postgresql %s but "
                     "only postgresql %s is installed",
                     c->pg_dir, want, have);
        goto out;
    }
    rc = TD_OK;
out:
    free(pv_path);
    free(want);
    free(have);
    return rc;
}

/* Runs between fork() and exec: async-signal-safe calls only, the parent may have threads. */
static void child_exec(const struct pgc_cluster *c, int in, int out, const char *const *argv,
                       const char *failmsg)
{
    sigset_t none;
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    /* Ignored signals and the mask survive exec; the server must see them as usual. */
    static const int sigs[] = {SIGPIPE, SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &dfl, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    in = fcntl(in, F_DUPFD, 3);
    out = fcntl(out, F_DUPFD, 3);
    if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
        _exit(126);
    /* The postmaster outlives us: it must not inherit our sockets and files. */
    closefrom(3);
    if (c->drop_privs && (setgroups((size_t)c->ngroups, c->groups) < 0 || setgid(c->run_gid) < 0 ||
                          setuid(c->run_uid) < 0)) {
        (void)!write(2, failmsg, strlen(failmsg));
        _exit(126);
    }
    if (chdir("/") == 0)
        execv(argv[0], (char *const *)argv);
    (void)!write(2, failmsg, strlen(failmsg));
    _exit(127);
}

static int open_log(const struct pgc_cluster *c, const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    /* pg_ctl -l reopens the log as the server's user. */
    if (fd >= 0 && c->drop_privs && fchown(fd, c->run_uid, c->run_gid) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Run the program at path with args (NULL-terminated, no argv[0]) as the cluster's user, its
 * output appended to log (NULL: discarded). Returns its exit status (128 + signal if
 * killed), or -1 when it could not be run at all (logged). */
static int run_prog(const struct pgc_cluster *c, const char *path, const char *const *args,
                    const char *log)
{
    const char *argv[PGC_MAX_ARGS];
    const char *prog = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char *failmsg = td_xasprintf("tenantd: cannot run %s as user %s\n", path, c->user);
    int in = -1, out = -1, rc = -1, st;
    size_t n = 0;
    argv[0] = path;
    while (args[n] && n + 2 < PGC_MAX_ARGS) {
        argv[n + 1] = args[n];
        n++;
    }
    argv[n + 1] = NULL;
    in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    out = log ? open_log(c, log) : open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (in < 0 || out < 0) {
        td_log_error("cannot run %s: cannot open %s: %s", prog, log ? log : "/dev/null",
                     strerror(errno));
        goto out;
    }
    pid_t pid = fork();
    if (pid < 0) {
        td_log_error("cannot run %s: fork failed: %s", prog, strerror(errno));
        goto out;
    }
    if (pid == 0)
        child_exec(c, in, out, argv, failmsg);
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            td_log_error("cannot wait for %s: %s", prog, strerror(errno));
            goto out;
        }
    }
    rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
out:
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    free(failmsg);
    return rc;
}

/* Run <bin_dir>/<prog>, its output appended to pg.log (or discarded when quiet). */
static int run_tool(const struct pgc_cluster *c, const char *prog, const char *const *args,
                    int quiet)
{
    char *path = td_xasprintf("%s/%s", c->bin_dir, prog);
    int rc = run_prog(c, path, args, quiet ? NULL : c->log_path);
    free(path);
    return rc;
}

static int initdb_with(const struct pgc_cluster *c, const char *locale_opt)
{
    const char *args[] = {"-D", c->pg_dir, "-U",       c->user, "--auth=trust",
                          "-E", "UTF8",    locale_opt, "-N",    NULL};
    return run_tool(c, "initdb", args, 0);
}

static int run_initdb(const struct pgc_cluster *c)
{
    td_log_info("creating embedded postgresql cluster in %s", c->pg_dir);
    int st = initdb_with(c, "--locale=C.UTF-8");
    if (st > 0) {
        /* initdb empties the directory again when it fails. */
        td_log_warn("initdb with locale C.UTF-8 failed (exit status %d), retrying with "
                    "--no-locale",
                    st);
        st = initdb_with(c, "--no-locale");
    }
    if (st == 0)
        return TD_OK;
    if (st > 0)
        td_log_error("cannot start embedded postgresql: initdb failed in %s (exit status %d), "
                     "see %s",
                     c->pg_dir, st, c->log_path);
    return TD_EUNAVAILABLE;
}

/* Appended once per socket directory: a later block wins, so a moved data directory or a
 * crash between initdb and this write is repaired on the next start. */
static int ensure_conf(const struct pgc_cluster *c)
{
    char *path = td_xasprintf("%s/postgresql.conf", c->pg_dir);
    char *marker = td_xasprintf("# tenantd: embedded cluster settings for %s\n", c->pg_dir);
    char *text = read_file(path);
    FILE *f = NULL;
    int rc = TD_EUNAVAILABLE;
    if (text && strstr(text, marker)) {
        rc = TD_OK;
        goto out;
    }
    f = fopen(path, "ae");
    if (!f || fprintf(f,
                      "\n%s"
                      "listen_addresses = ''\n"
                      "unix_socket_directories = '\"%s\"'\n"
                      "max_connections = 500\n"
                      "shared_buffers = 128MB\n"
                      "timezone = 'UTC'\n"
                      "log_timezone = 'UTC'\n"
                      "logging_collector = off\n",
                      marker, c->pg_dir) < 0) {
        td_log_error("cannot start embedded postgresql: cannot write %s: %s", path,
                     strerror(errno));
        goto out;
    }
    rc = TD_OK;
out:
    if (f && fclose(f) != 0 && rc == TD_OK) {
        td_log_error("cannot start embedded postgresql: cannot write %s: %s", path,
                     strerror(errno));
        rc = TD_EUNAVAILABLE;
    }
    free(text);
    free(marker);
    free(path);
    return rc;
}

#define PGC_EXTRA_CONF "tenantd-extra.conf"

/* Settings a caller layers over ours (WAL archiving, src/backup) live in their own file,
 * included once from postgresql.conf: rewriting it never grows postgresql.conf. Sets
 * *changed when the file's text differs from what the server last read. */
static int ensure_extra_conf(struct pgc_cluster *c, const char *extra, int *changed)
{
    char *conf = td_xasprintf("%s/postgresql.conf", c->pg_dir);
    char *path = td_xasprintf("%s/" PGC_EXTRA_CONF, c->pg_dir);
    char *text = read_file(conf), *old = read_file(path);
    static const char line[] = "include_if_exists = '" PGC_EXTRA_CONF "'\n";
    FILE *f = NULL;
    int rc = TD_EUNAVAILABLE;
    *changed = 0;
    if (!text || !strstr(text, line)) {
        f = fopen(conf, "ae");
        if (!f ||
            fprintf(f, "\n# tenantd: settings of the embedded cluster's callers\n%s", line) < 0 ||
            fclose(f) != 0) {
            f = NULL;
            goto fail;
        }
        f = NULL;
    }
    if (old && strcmp(old, extra) == 0) {
        rc = TD_OK;
        goto out;
    }
    *changed = 1;
    f = fopen(path, "we");
    if (!f || fputs(extra, f) < 0 || fclose(f) != 0) {
        f = NULL;
        free(conf);
        conf = td_xstrdup(path);
        goto fail;
    }
    f = NULL;
    if (c->drop_privs && chown(path, c->run_uid, c->run_gid) < 0) {
        free(conf);
        conf = td_xstrdup(path);
        goto fail;
    }
    rc = TD_OK;
    goto out;
fail:
    td_log_error("cannot start embedded postgresql: cannot write %s: %s", conf, strerror(errno));
out:
    if (f)
        fclose(f);
    free(text);
    free(old);
    free(path);
    free(conf);
    return rc;
}

/* Write text to path unless it holds it already (*changed then set). */
static int write_file(const char *path, const char *text, int *changed)
{
    char *old = read_file(path);
    int same = old && strcmp(old, text) == 0;
    free(old);
    if (same)
        return TD_OK;
    *changed = 1;
    /* truncating keeps the owner and mode initdb gave the file */
    FILE *f = fopen(path, "we");
    int ok = f && fputs(text, f) >= 0;
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok)
        td_log_error("cannot start embedded postgresql: cannot write %s: %s", path,
                     strerror(errno));
    return ok ? TD_OK : TD_EUNAVAILABLE;
}

/*
 * Authentication: peer, on the socket only (listen_addresses is empty). PostgreSQL
 * recommends it for local connections: the kernel names the connecting OS user, and
 * pg_ident.conf lets only this process's user and the user the server runs as log in,
 * as the superuser or as tenantd_app. It replaces initdb's trust, which let any local
 * user who could reach the socket be any role, and costs no more than trust: no password
 * exchange (SCRAM's key derivation and extra round trips, docs/isolation.md).
 */
static int ensure_auth(const struct pgc_cluster *c, int *changed)
{
    struct passwd *pw = getpwuid(geteuid());
    const char *me = pw ? pw->pw_name : c->user;
    char *ident = td_xasprintf("# written by tenantd at every start\n"
                               "tenantd %s %s\ntenantd %s tenantd_app\n"
                               "tenantd %s %s\ntenantd %s tenantd_app\n",
                               me, c->user, me, c->user, c->user, c->user);
    char *hba_path = td_xasprintf("%s/pg_hba.conf", c->pg_dir);
    char *ident_path = td_xasprintf("%s/pg_ident.conf", c->pg_dir);
    int rc = write_file(hba_path,
                        "# written by tenantd at every start: the socket only, peer\n"
                        "local all all peer map=tenantd\n"
                        "local replication all peer map=tenantd\n",
                        changed);
    if (rc == TD_OK)
        rc = write_file(ident_path, ident, changed);
    free(ident);
    free(hba_path);
    free(ident_path);
    return rc;
}

static int server_running(const struct pgc_cluster *c)
{
    const char *args[] = {"status", "-D", c->pg_dir, NULL};
    return run_tool(c, "pg_ctl", args, 1) == 0;
}

static int start_or_reuse(struct pgc_cluster *c, int conf_changed)
{
    char *pidfile = td_xasprintf("%s/postmaster.pid", c->pg_dir);
    int has_pid = access(pidfile, F_OK) == 0;
    free(pidfile);
    if (has_pid && server_running(c) && conf_changed) {
        /* Another process may be using this server: never restart it under it. A reload
         * applies what it can (archive_command); archive_mode waits for the next start. */
        const char *args[] = {"reload", "-D", c->pg_dir, NULL};
        (void)run_tool(c, "pg_ctl", args, 0);
        td_log_warn("the settings of the postgresql server running in %s changed; archive_mode "
                    "takes effect when it is next started",
                    c->pg_dir);
        return TD_OK;
    }
    if (has_pid && server_running(c)) {
        td_log_info("reusing the postgresql server already running in %s", c->pg_dir);
        return TD_OK;
    }
    const char *args[] = {"start",   "-w", "-t",        "60", "-D",
                          c->pg_dir, "-l", c->log_path, "-o", "-p " PGC_PORT_STR,
                          NULL};
    int st = run_tool(c, "pg_ctl", args, 0);
    if (st == 0) {
        c->started = 1;
        td_log_info("embedded postgresql started in %s", c->pg_dir);
        return TD_OK;
    }
    /* Another process may have started it between our check and pg_ctl start. */
    if (st > 0 && server_running(c)) {
        td_log_info("reusing the postgresql server another process started in %s", c->pg_dir);
        return TD_OK;
    }
    if (st > 0)
        td_log_error("cannot start embedded postgresql: pg_ctl start failed in %s (exit "
                     "status %d), see %s",
                     c->pg_dir, st, c->log_path);
    return TD_EUNAVAILABLE;
}

/* A conninfo value, single-quoted when it needs to be. */
static char *conn_value(const char *v)
{
    if (v[0] && !strpbrk(v, " \t\n\r\f\v'\\="))
        return td_xstrdup(v);
    char *q = td_xmalloc(2 * strlen(v) + 3), *p = q;
    *p++ = '\'';
    for (; *v; v++) {
        if (*v == '\'' || *v == '\\')
            *p++ = '\\';
        *p++ = *v;
    }
    *p++ = '\'';
    *p = '\0';
    return q;
}

static char *make_conninfo(const struct pgc_cluster *c, const char *dbname)
{
    char *host = conn_value(c->pg_dir);
    char *db = conn_value(dbname);
    char *user = conn_value(c->user);
    char *s = td_xasprintf("host=%s port=%d dbname=%s user=%s", host, PGC_PORT, db, user);
    free(host);
    free(db);
    free(user);
    return s;
}

/* A reused server may still be starting up or recovering: retry for a while. */
static PGconn *connect_wait(const char *conninfo, const char *pg_dir)
{
    long long t0 = td_now_ms();
    const struct timespec pause = {0, 100 * 1000 * 1000};
    for (;;) {
        PGconn *conn = PQconnectdb(conninfo);
        if (PQstatus(conn) == CONNECTION_OK)
            return conn;
        if (td_now_ms() - t0 >= PGC_CONNECT_WAIT_MS) {
            char *msg = one_line(PQerrorMessage(conn));
            td_log_error("cannot connect to embedded postgresql in %s: %s", pg_dir, msg);
            free(msg);
            PQfinish(conn);
            return NULL;
        }
        PQfinish(conn);
        nanosleep(&pause, NULL);
    }
}

static int ensure_database(const struct pgc_cluster *c, const char *dbname)
{
    char *admin = make_conninfo(c, "postgres");
    char *sql = NULL, *msg = NULL;
    PGresult *res = NULL;
    int rc = TD_EUNAVAILABLE;
    PGconn *conn = connect_wait(admin, c->pg_dir);
    if (!conn)
        goto out;
    const char *params[1] = {dbname};
    res = PQexecParams(conn, "SELECT 1 FROM pg_database WHERE datname = $1", 1, NULL, params, NULL,
                       NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        goto fail;
    if (PQntuples(res) > 0) {
        rc = TD_OK;
        goto out;
    }
    PQclear(res);
    res = NULL;
    char *ident = PQescapeIdentifier(conn, dbname, strlen(dbname));
    if (!ident)
        goto fail;
    sql = td_xasprintf("CREATE DATABASE %s", ident);
    PQfreemem(ident);
    res = PQexec(conn, sql);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    /* 42P04 duplicate_database: another process created it meanwhile. */
    if (PQresultStatus(res) != PGRES_COMMAND_OK && !(state && strcmp(state, "42P04") == 0))
        goto fail;
    td_log_info("created database %s in embedded postgresql", dbname);
    rc = TD_OK;
    goto out;
fail:
    msg = one_line(PQerrorMessage(conn));
    td_log_error("cannot create database %s in embedded postgresql: %s", dbname, msg);
out:
    PQclear(res);
    PQfinish(conn);
    free(msg);
    free(sql);
    free(admin);
    return rc;
}

int pgc_cluster_start(const char *data_dir, const char *dbname, const char *extra_conf,
                      struct pgc_cluster **out)
{
    int changed = 0, auth_changed = 0;
    struct pgc_cluster *c = td_xcalloc(1, sizeof(*c));
    int rc = TD_EUNAVAILABLE;
    *out = NULL;
    if (!data_dir || !data_dir[0]) {
        td_log_error("cannot start embedded postgresql: no data directory given");
        goto out;
    }
    if (!dbname || !dbname[0] || strlen(dbname) >= PGC_NAMEDATALEN) {
        td_log_error("cannot start embedded postgresql: database name must be 1 to %d bytes",
                     PGC_NAMEDATALEN - 1);
        goto out;
    }
    if ((rc = identity_init(c)) < 0 || (rc = prepare_dirs(c, data_dir)) < 0 ||
        (rc = find_binaries(c)) < 0)
        goto out;
    if (!has_cluster(c) && (rc = run_initdb(c)) < 0)
        goto out;
    if ((rc = ensure_conf(c)) < 0 || (rc = ensure_auth(c, &auth_changed)) < 0 ||
        (extra_conf && (rc = ensure_extra_conf(c, extra_conf, &changed)) < 0) ||
        (rc = start_or_reuse(c, changed || auth_changed)) < 0 ||
        (rc = ensure_database(c, dbname)) < 0)
        goto out;
    c->conninfo = make_conninfo(c, dbname);
    *out = c;
    c = NULL;
out:
    pgc_cluster_stop(c); /* stops the server too if we started it before failing */
    return rc;
}

const char *pgc_cluster_conninfo(const struct pgc_cluster *c)
{
    return c->conninfo;
}

const char *pgc_cluster_socket_dir(const struct pgc_cluster *c)
{
    return c->pg_dir;
}

const char *pgc_cluster_bin_dir(const struct pgc_cluster *c)
{
    return c->bin_dir;
}

const char *pgc_cluster_user(const struct pgc_cluster *c)
{
    return c->user;
}

int pgc_cluster_run(const struct pgc_cluster *c, const char *path, const char *const *args,
                    const char *log)
{
    return run_prog(c, path, args, log);
}

int pgc_cluster_give(const struct pgc_cluster *c, const char *path)
{
    if (!c->drop_privs || chown(path, c->run_uid, c->run_gid) == 0)
        return TD_OK;
    td_log_error("cannot give %s to user %s: %s", path, c->user, strerror(errno));
    return TD_EUNAVAILABLE;
}

void pgc_cluster_stop(struct pgc_cluster *c)
{
    if (!c)
        return;
    if (c->started) {
        const char *args[] = {"stop", "-m", "fast", "-w", "-D", c->pg_dir, NULL};
        int st = run_tool(c, "pg_ctl", args, 0);
        if (st == 0)
            td_log_info("embedded postgresql in %s stopped", c->pg_dir);
        else if (st > 0)
            td_log_error("cannot stop embedded postgresql in %s: pg_ctl stop failed (exit "
                         "status %d), see %s",
                         c->pg_dir, st, c->log_path);
    }
    free(c->data_dir);
    free(c->pg_dir);
    free(c->log_path);
    free(c->bin_dir);
    free(c->user);
    free(c->conninfo);
    free(c->groups);
    free(c);
}
