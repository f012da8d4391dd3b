/*
 * harness.c - integration test harness (see harness.h): process control of build/tenantd,
 * HTTP with libcurl, SQL with libpq, and the small JWT/SHA-256 helpers the auth tests need.
 */
#include "harness.h"

#include <sodium.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

extern char **environ;

#define PG_BIN "/usr/lib/postgresql/15/bin"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
}

void td_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

double td_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int td_raw_connect(const struct td_server *s, int timeout_s)
{
    struct sockaddr_in a;
    struct timeval tv = {timeout_s, 0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)s->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

int td_raw_status(int fd)
{
    char buf[4096];
    size_t len = 0;
    while (len < sizeof(buf) - 1) {
        ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    buf[len] = '\0';
    int st = 0;
    return sscanf(buf, "HTTP/1.%*d %d", &st) == 1 ? st : 0;
}

int td_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int port = -1;

    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

void td_server_print_log(const struct td_server *s)
{
    FILE *f = fopen(s->log_path, "r");
    char buf[4096];
    long size;
    size_t n;

    if (!f) {
        fprintf(stderr, "harness: no server log at %s\n", s->log_path);
        return;
    }
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, size > 16384 ? size - 16384 : 0, SEEK_SET);
    fprintf(stderr, "---- tail of %s ----\n", s->log_path);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, stderr);
    fprintf(stderr, "---- end of log ----\n");
    fclose(f);
}

/* Child environment: ours without any inherited TENANTD_* (always the embedded cluster). */
static char **child_env(const struct td_server *s, const char *const *extra_env)
{
    size_t n = 0, k = 0;
    char **env;
    char buf[256];

    while (environ[n])
        n++;
    for (const char *const *e = extra_env; e && *e; e++)
        n++;
    env = calloc(n + 9, sizeof(*env));
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "TENANTD_", 8) != 0)
            env[k++] = strdup(*e);
    /* extras first: getenv() returns the first match, so they override the defaults */
    for (const char *const *e = extra_env; e && *e; e++)
        env[k++] = strdup(*e);
    snprintf(buf, sizeof(buf), "TENANTD_DATA_DIR=%s", s->dir);
    env[k++] = strdup(buf);
    snprintf(buf, sizeof(buf), "TENANTD_LISTEN=127.0.0.1:%d", s->port);
    env[k++] = strdup(buf);
    env[k++] = strdup("TENANTD_ADMIN_TOKEN=" TD_TEST_ADMIN_TOKEN);
    env[k++] = strdup("TENANTD_JWT_SECRET=" TD_TEST_JWT_SECRET);
    env[k++] = strdup("TENANTD_LOG_LEVEL=warn");
    /* WAL archiving and base backups cost every test a few seconds; test_restore turns
     * them on (its extra_env comes first and wins) */
    env[k++] = strdup("TENANTD_BACKUP=0");
    /* TD_IT_PIPELINE=N: every suite with N PostgreSQL pipelines per loop (a suite's own
     * TENANTD_PIPELINE, in extra_env, still wins) */
    const char *pl = getenv("TD_IT_PIPELINE");
    if (pl) {
        snprintf(buf, sizeof(buf), "TENANTD_PIPELINE=%s", pl);
        env[k++] = strdup(buf);
    }
    env[k] = NULL;
    return env;
}

static void free_env(char **env)
{
    for (char **e = env; *e; e++)
        free(*e);
    free(env);
}

static bool use_valgrind(void)
{
    const char *v = getenv("TENANTD_VALGRIND");
    return v && strcmp(v, "1") == 0;
}

int td_server_start(struct td_server *s, const char *const *extra_env)
{
    const char *bin = getenv("TENANTD_BIN");
    char **env;
    int timeout_s = use_valgrind() ? 600 : 90;
    struct timespec t0, now;

    pthread_once(&curl_once, curl_init_once);
    memset(s, 0, sizeof(*s));
    if (!bin || !*bin) {
        fprintf(stderr, "harness: TENANTD_BIN is not set\n");
        return -1;
    }
    strcpy(s->dir, "/tmp/tdit.XXXXXX");
    if (!mkdtemp(s->dir) || chmod(s->dir, 0755) != 0) {
        fprintf(stderr, "harness: mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    snprintf(s->log_path, sizeof(s->log_path), "%s/tenantd.log", s->dir);
    s->port = td_free_port();
    if (s->port <= 0)
        return -1;
    snprintf(s->base_url, sizeof(s->base_url), "http://127.0.0.1:%d", s->port);
    env = child_env(s, extra_env);

    s->pid = fork();
    if (s->pid < 0) {
        free_env(env);
        return -1;
    }
    if (s->pid == 0) {
        int fd = open(s->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (use_valgrind()) {
            char *argv[] = {"valgrind", "--error-exitcode=99", "--leak-check=full",
                            "--quiet",  (char *)bin,           "serve",
                            NULL};
            execvpe("valgrind", argv, env);
        } else {
            char *argv[] = {(char *)bin, "serve", NULL};
            execve(bin, argv, env);
        }
        fprintf(stderr, "harness: exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    free_env(env);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct td_resp r;
        int st;

        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            fprintf(stderr, "harness: tenantd exited during start-up (status %d)\n", st);
            s->pid = 0;
            td_server_print_log(s);
            return -1;
        }
        td_http(s, "GET", "/health", NULL, NULL, &r);
        td_resp_free(&r);
        if (r.status == 200)
            return 0;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > timeout_s) {
            fprintf(stderr, "harness: /health not 200 after %d s\n", timeout_s);
            td_server_print_log(s);
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
            s->pid = 0;
            return -1;
        }
        td_sleep_ms(200);
    }
}

int td_run_quiet(char *const argv[])
{
    int st;
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* The postmaster of a data dir still runs when its pid file names a live process. */
static bool postmaster_alive(const char *pidfile)
{
    FILE *f = fopen(pidfile, "r");
    long pid = 0;
    if (!f)
        return false;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    return pid > 0 && kill((pid_t)pid, 0) == 0;
}

int td_server_stop(struct td_server *s)
{
    int rc = 0;
    char path[256];

    if (s->pid > 0) {
        int st = 0;
        int waited = 0;
        kill(s->pid, SIGTERM);
        while (waitpid(s->pid, &st, WNOHANG) == 0) {
            if (waited++ > 300) { /* 30 s */
                fprintf(stderr, "harness: tenantd ignored SIGTERM for 30 s, killing it\n");
                kill(s->pid, SIGKILL);
                waitpid(s->pid, &st, 0);
                rc = -1;
                break;
            }
            td_sleep_ms(100);
        }
        if (rc == 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
            fprintf(stderr, "harness: tenantd did not exit 0 on SIGTERM (wait status %d)\n", st);
            rc = -1;
        }
        if (rc != 0 || getenv("TD_IT_PRINT_LOG"))
            td_server_print_log(s);
        s->pid = 0;
    }
    if (!s->dir[0])
        return rc;
    snprintf(path, sizeof(path), "%s/pg/postmaster.pid", s->dir);
    if (postmaster_alive(path)) {
        char pgdata[128];
        char *argv[] = {"runuser",   "-u", "postgres", "--", PG_BIN "/pg_ctl", "stop", "-m",
                        "immediate", "-D", pgdata,     NULL};
        snprintf(pgdata, sizeof(pgdata), "%s/pg", s->dir);
        fprintf(stderr, "harness: PostgreSQL still running after tenantd stopped\n");
        td_run_quiet(argv);
        rc = -1;
    }
    if (!getenv("TD_IT_KEEP")) {
        char *argv[] = {"rm", "-rf", s->dir, NULL};
        td_run_quiet(argv);
    }
    return rc;
}

/* ---- HTTP ---- */

struct buf {
    char *p;
    size_t len;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct buf *b = ud;
    size_t n = size * nmemb;
    b->p = realloc(b->p, b->len + n + 1);
    memcpy(b->p + b->len, ptr, n);
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

static void copy_header_value(char *dst, size_t size, const char *v, size_t n)
{
    while (n > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)v[n - 1]))
        n--;
    if (n >= size)
        n = size - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct td_resp *r = ud;
    size_t n = size * nmemb;
    static const struct {
        const char *name;
        size_t off;
        size_t size;
    } want[] = {
        {"content-type:", offsetof(struct td_resp, content_type), sizeof(r->content_type)},
        {"x-request-id:", offsetof(struct td_resp, request_id), sizeof(r->request_id)},
        {"retry-after:", offsetof(struct td_resp, retry_after), sizeof(r->retry_after)},
    };

    /* A new status line (100 Continue, then the final one) resets what was seen. */
    if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
        r->content_type[0] = r->request_id[0] = r->retry_after[0] = r->headers[0] = '\0';
        return n;
    }
    size_t have = strlen(r->headers);
    if (have + n < sizeof(r->headers)) {
        memcpy(r->headers + have, ptr, n);
        r->headers[have + n] = '\0';
    }
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        size_t l = strlen(want[i].name);
        if (n >= l && strncasecmp(ptr, want[i].name, l) == 0)
            copy_header_value((char *)r + want[i].off, want[i].size, ptr + l, n - l);
    }
    return n;
}

struct upload {
    const char *p;
    size_t left;
};

static size_t on_read(char *dst, size_t size, size_t nmemb, void *ud)
{
    struct upload *u = ud;
    size_t n = size * nmemb;
    if (n > u->left)
        n = u->left;
    if (n > 65536)
        n = 65536;
    memcpy(dst, u->p, n);
    u->p += n;
    u->left -= n;
    return n;
}

long td_http_len(struct td_server *s, const char *method, const char *path,
                 const char *const *headers, const char *body, size_t len, bool chunked,
                 struct td_resp *r)
{
    CURL *c;
    struct curl_slist *hl = NULL;
    struct buf b = {NULL, 0};
    struct upload up = {body, len};
    char url[4096];
    bool have_ct = false;
    CURLcode cc;

    pthread_once(&curl_once, curl_init_once);
    memset(r, 0, sizeof(*r));
    snprintf(r->what, sizeof(r->what), "%s %s", method, path);
    c = curl_easy_init();
    snprintf(url, sizeof(url), "%s%s", s->base_url, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, use_valgrind() ? 300L : 60L);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    for (const char *const *h = headers; h && *h; h++) {
        hl = curl_slist_append(hl, *h);
        if (strncasecmp(*h, "content-type:", 13) == 0)
            have_ct = true;
    }
    if (body) {
        if (!have_ct)
            hl = curl_slist_append(hl, "Content-Type: application/json");
        if (chunked) {
            hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
            curl_easy_setopt(c, CURLOPT_POST, 1L);
            curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(c, CURLOPT_READDATA, &up);
        } else {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        }
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    cc = curl_easy_perform(c);
    if (cc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    else
        r->status = 0;
    curl_easy_cleanup(c);
    curl_slist_free_all(hl);
    r->body = b.p ? b.p : strdup("");
    r->body_len = b.len;
    if (r->body_len > 0)
        r->json = json_loadb(r->body, r->body_len, 0, NULL);
    return r->status;
}

long td_http(struct td_server *s, const char *method, const char *path, const char *const *headers,
             const char *body, struct td_resp *r)
{
    return td_http_len(s, method, path, headers, body, body ? strlen(body) : 0, false, r);
}

long td_call(struct td_server *s, const char *method, const char *path, const char *token,
             const char *body, struct td_resp *r)
{
    char auth[2200];
    const char *h[] = {auth, NULL};
    if (!token)
        return td_http(s, method, path, NULL, body, r);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    return td_http(s, method, path, h, body, r);
}

long td_admin(struct td_server *s, const char *method, const char *path, const char *body,
              struct td_resp *r)
{
    return td_call(s, method, path, TD_TEST_ADMIN_TOKEN, body, r);
}

long td_metric(struct td_server *s, const char *series)
{
    struct td_resp r;
    if (td_admin(s, "GET", "/metrics", NULL, &r) != 200) {
        td_resp_free(&r);
        return -1;
    }
    char key[256];
    snprintf(key, sizeof(key), "\n%s ", series);
    const char *p = r.body ? strstr(r.body, key) : NULL;
    long v = p ? atol(p + strlen(key)) : -1;
    td_resp_free(&r);
    return v;
}

void td_resp_free(struct td_resp *r)
{
    free(r->body);
    r->body = NULL;
    if (r->json)
        json_decref(r->json);
    r->json = NULL;
}

const char *td_resp_header(const struct td_resp *r, const char *name, char *out, size_t size)
{
    size_t l = strlen(name);
    for (const char *line = r->headers; *line;) {
        const char *end = strstr(line, "\r\n");
        size_t n = end ? (size_t)(end - line) : strlen(line);
        if (n > l && line[l] == ':' && strncasecmp(line, name, l) == 0) {
            copy_header_value(out, size, line + l + 1, n - l - 1);
            return out;
        }
        line += n + (end ? 2 : 0);
    }
    return NULL;
}

const char *td_jstr(const json_t *obj, const char *key)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void copy_str(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

long td_signup(struct td_server *s, const char *slug, const char *email, const char *password,
               struct td_principal *p)
{
    struct td_resp r;
    json_t *body = json_pack("{s:{s:s,s:s},s:{s:s,s:s,s:s}}", "organization", "slug", slug, "name",
                             slug, "user", "email", email, "password", password, "name", "Owner");
    char *text = json_dumps(body, JSON_COMPACT);
    long st;

    memset(p, 0, sizeof(*p));
    st = td_http(s, "POST", "/signup", NULL, text, &r);
    free(text);
    json_decref(body);
    if (st == 201 && r.json) {
        json_t *t = json_object_get(r.json, "tenant");
        json_t *u = json_object_get(r.json, "user");
        copy_str(p->slug, sizeof(p->slug), td_jstr(t, "slug"));
        copy_str(p->tenant_id, sizeof(p->tenant_id), td_jstr(t, "id"));
        copy_str(p->user_id, sizeof(p->user_id), td_jstr(u, "id"));
        copy_str(p->token, sizeof(p->token), td_jstr(r.json, "token"));
        copy_str(p->email, sizeof(p->email), email);
    } else {
        fprintf(stderr, "harness: signup %s -> %ld %s\n", slug, st, r.body);
    }
    td_resp_free(&r);
    return st;
}

long td_login(struct td_server *s, const char *slug, const char *email, const char *password,
              char *token, size_t size)
{
    struct td_resp r;
    char path[128];
    json_t *body = json_pack("{s:s,s:s}", "email", email, "password", password);
    char *text = json_dumps(body, JSON_COMPACT);
    long st;

    snprintf(path, sizeof(path), "/t/%s/auth/login", slug);
    st = td_http(s, "POST", path, NULL, text, &r);
    free(text);
    json_decref(body);
    if (token)
        copy_str(token, size, st == 200 ? td_jstr(r.json, "token") : NULL);
    if (st != 200)
        fprintf(stderr, "harness: login %s/%s -> %ld %s\n", slug, email, st, r.body);
    td_resp_free(&r);
    return st;
}

long td_add_user(struct td_server *s, const char *slug, const char *token, const char *email,
                 const char *password, const char *role, char *id, size_t size)
{
    struct td_resp r;
    char path[128];
    json_t *body = json_pack("{s:s,s:s,s:s,s:s}", "email", email, "password", password, "name",
                             "User", "role", role);
    char *text = json_dumps(body, JSON_COMPACT);
    snprintf(path, sizeof(path), "/t/%s/users", slug);
    long st = td_call(s, "POST", path, token, text, &r);
    free(text);
    json_decref(body);
    if (id)
        copy_str(id, size, st == 201 ? td_jstr(r.json, "id") : NULL);
    td_resp_free(&r);
    return st;
}

long td_admin_create_tenant(struct td_server *s, const char *slug, const char *isolation,
                            const char *plan, const char *owner_email, const char *owner_password,
                            struct td_principal *p)
{
    struct td_resp r;
    json_t *body = json_pack("{s:s,s:s}", "slug", slug, "name", slug);
    char *text;
    long st;

    memset(p, 0, sizeof(*p));
    if (isolation)
        json_object_set_new(body, "isolation", json_string(isolation));
    if (plan)
        json_object_set_new(body, "plan", json_string(plan));
    if (owner_email)
        json_object_set_new(body, "owner",
                            json_pack("{s:s,s:s,s:s}", "email", owner_email, "password",
                                      owner_password, "name", "Owner"));
    text = json_dumps(body, JSON_COMPACT);
    st = td_admin(s, "POST", "/admin/tenants", text, &r);
    free(text);
    json_decref(body);
    if (st == 201 && r.json) {
        copy_str(p->slug, sizeof(p->slug), td_jstr(r.json, "slug"));
        copy_str(p->tenant_id, sizeof(p->tenant_id), td_jstr(r.json, "id"));
    } else {
        fprintf(stderr, "harness: create tenant %s -> %ld %s\n", slug, st, r.body);
    }
    td_resp_free(&r);
    if (st == 201 && owner_email) {
        copy_str(p->email, sizeof(p->email), owner_email);
        if (td_login(s, slug, owner_email, owner_password, p->token, sizeof(p->token)) == 200) {
            json_t *claims = td_jwt_payload(p->token);
            copy_str(p->user_id, sizeof(p->user_id), td_jstr(claims, "sub"));
            json_decref(claims);
        }
    }
    return st;
}

/* ---- SQL ---- */

PGconn *td_db_in(struct td_server *s, const char *dbname, const char *user)
{
    char conninfo[512];
    PGconn *c;
    snprintf(conninfo, sizeof(conninfo), "host=%s/pg port=5432 dbname=%s user=%s", s->dir,
             dbname ? dbname : "tenantd", user);
    c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "harness: connect %s: %s\n", conninfo, PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

PGconn *td_db(struct td_server *s, const char *user)
{
    return td_db_in(s, NULL, user);
}

PGresult *td_sql(PGconn *c, const char *sql, int nparams, const char *const *params)
{
    return PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
}

bool td_sql_value(PGconn *c, const char *sql, int nparams, const char *const *params, char *out,
                  size_t size)
{
    PGresult *res = td_sql(c, sql, nparams, params);
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) >= 1;
    if (ok)
        copy_str(out, size, PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0));
    else
        fprintf(stderr, "harness: sql \"%s\": %s (%d rows)\n", sql, PQresultErrorMessage(res),
                PQntuples(res));
    PQclear(res);
    return ok;
}

void td_storage_name(const char *uuid, char *out, size_t size)
{
    size_t k = 0;
    if (size < 3)
        return;
    out[k++] = 't';
    out[k++] = '_';
    for (const char *p = uuid; *p && k + 1 < size; p++)
        if (*p != '-')
            out[k++] = (char)tolower((unsigned char)*p);
    out[k] = '\0';
}

void td_urlencode(const char *in, char *out, size_t size)
{
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)(in ? in : ""); *p && k + 4 < size; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~')
            out[k++] = (char)*p;
        else
            k += (size_t)snprintf(out + k, size - k, "%%%02X", *p);
    }
    if (size)
        out[k] = '\0';
}

bool td_is_uuid(const char *s)
{
    if (!s || strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

long long td_parse_time(const char *s)
{
    struct tm tm;
    const char *rest;
    if (!s)
        return -1;
    memset(&tm, 0, sizeof(tm));
    rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest)
        return -1;
    if (*rest == '.') {
        rest++;
        if (!isdigit((unsigned char)*rest))
            return -1;
        while (isdigit((unsigned char)*rest))
            rest++;
    }
    if (strcmp(rest, "Z") != 0 && strcmp(rest, "+00:00") != 0)
        return -1;
    return (long long)timegm(&tm);
}

/* ---- base64url, SHA-256, HMAC, JWT ---- */

size_t td_b64url_encode(const unsigned char *in, size_t len, char *out, size_t size)
{
    if (size < sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING))
        return 0;
    sodium_bin2base64(out, size, in, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return strlen(out);
}

long td_b64url_decode(const char *in, size_t len, unsigned char *out, size_t size)
{
    size_t n = 0;
    if (sodium_base642bin(out, size, in, len, NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return -1;
    return (long)n;
}

void td_hmac_sha256(const unsigned char *key, size_t klen, const unsigned char *msg, size_t mlen,
                    unsigned char out[32])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, klen);
    crypto_auth_hmacsha256_update(&st, msg, mlen);
    crypto_auth_hmacsha256_final(&st, out);
}

void td_jwt_sign(const char *header_json, const char *payload_json, const char *secret, char *out,
                 size_t size)
{
    char h[1024], p[2048], sig[64];
    unsigned char mac[32];
    size_t n;

    td_b64url_encode((const unsigned char *)header_json, strlen(header_json), h, sizeof(h));
    td_b64url_encode((const unsigned char *)payload_json, strlen(payload_json), p, sizeof(p));
    n = (size_t)snprintf(out, size, "%s.%s", h, p);
    td_hmac_sha256((const unsigned char *)secret, strlen(secret), (const unsigned char *)out, n,
                   mac);
    td_b64url_encode(mac, sizeof(mac), sig, sizeof(sig));
    snprintf(out + n, size - n, ".%s", sig);
}

json_t *td_jwt_payload(const char *token)
{
    const char *a = strchr(token, '.');
    const char *b = a ? strchr(a + 1, '.') : NULL;
    unsigned char buf[2048];
    long n;
    if (!b)
        return NULL;
    n = td_b64url_decode(a + 1, (size_t)(b - a - 1), buf, sizeof(buf));
    if (n < 0)
        return NULL;
    return json_loadb((const char *)buf, (size_t)n, 0, NULL);
}

/* ---- checks ---- */

bool td_check_status(const struct td_resp *r, long status)
{
    if (r->status == status)
        return true;
    fprintf(stderr, "  %s: expected status %ld, got %ld: %.600s\n", r->what, status, r->status,
            r->body ? r->body : "");
    return false;
}

bool td_check_problem(const struct td_resp *r, long status, const char *code)
{
    bool ok = td_check_status(r, status);
    const char *c;
    json_t *st;

    if (!ok)
        return false;
    if (strncmp(r->content_type, "application/problem+json", 24) != 0) {
        fprintf(stderr, "  %s: content-type \"%s\", want application/problem+json\n", r->what,
                r->content_type);
        ok = false;
    }
    if (!json_is_object(r->json)) {
        fprintf(stderr, "  %s: problem body is not a JSON object: %.300s\n", r->what, r->body);
        return false;
    }
    for (const char *const *k = (const char *const[]){"type", "title", "detail", "code", NULL}; *k;
         k++) {
        if (!td_jstr(r->json, *k)) {
            fprintf(stderr, "  %s: problem lacks string \"%s\": %.300s\n", r->what, *k, r->body);
            ok = false;
        }
    }
    st = json_object_get(r->json, "status");
    if (!json_is_integer(st) || json_integer_value(st) != status) {
        fprintf(stderr, "  %s: problem \"status\" is not %ld: %.300s\n", r->what, status, r->body);
        ok = false;
    }
    /* No error leaks SQL text or driver messages (SPEC §3). */
    for (const char *const *k =
             (const char *const[]){"SELECT ", "INSERT ", "UPDATE ", "DELETE FROM",
                                   "ERROR:", "SQLSTATE", "violates", "relation \"", "libpq", NULL};
         *k; k++) {
        if (strstr(r->body, *k)) {
            fprintf(stderr, "  %s: problem leaks \"%s\": %.300s\n", r->what, *k, r->body);
            ok = false;
        }
    }
    c = td_jstr(r->json, "code");
    if (code && (!c || strcmp(c, code) != 0)) {
        fprintf(stderr, "  %s: code \"%s\", want \"%s\": %.300s\n", r->what, c ? c : "(none)", code,
                r->body);
        ok = false;
    }
    return ok;
}

long td_projects_named(PGconn *su, const char *schema, const char *name)
{
    char sql[256], v[32];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.projects WHERE name = $1", schema);
    const char *p[1] = {name};
    if (!td_sql_value(su, sql, 1, p, v, sizeof(v)))
        return -1;
    return atol(v);
}
