/*
 * harness.h - integration test harness: starts build/tenantd against a throw-away
 * embedded PostgreSQL cluster in a temporary directory, talks HTTP to it with libcurl
 * and SQL with libpq. One server per test binary (cmocka group setup/teardown).
 */
#ifndef TD_IT_HARNESS_H
#define TD_IT_HARNESS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <sys/types.h>
#include <cmocka.h>
#include <jansson.h>
#include <libpq-fe.h>

/* Fixed secrets every test server is started with (40 characters each). */
#define TD_TEST_ADMIN_TOKEN "it-admin-token-0123456789abcdef012345678"
#define TD_TEST_JWT_SECRET "it-jwt-secret-0123456789abcdef0123456789"

struct td_server {
    char dir[64];       /* temporary data dir, mode 0755 */
    char log_path[128]; /* stdout+stderr of tenantd */
    char base_url[64];  /* http://127.0.0.1:<port> */
    int port;
    pid_t pid;
};

struct td_resp {
    long status; /* 0 when no HTTP response arrived (connection closed, refused) */
    char *body;  /* NUL-terminated, malloc'd */
    size_t body_len;
    json_t *json; /* parsed body or NULL */
    char content_type[128];
    char request_id[128];
    char retry_after[64];
    char headers[4096]; /* the final response's header lines as received (truncated) */
    char what[256];     /* "METHOD path" for messages */
};

/* A tenant user as the tests need it. */
struct td_principal {
    char slug[64];
    char tenant_id[64];
    char user_id[64];
    char email[128];
    char token[2048];
};

/*
 * Start `$TENANTD_BIN serve` in a fresh temporary dir; extra_env is a NULL-terminated list
 * of "NAME=value" (may be NULL). Waits for GET /health == 200. Returns 0 or -1 (log printed).
 */
int td_server_start(struct td_server *s, const char *const *extra_env);
/* SIGTERM, wait, remove the temporary dir. Returns 0 when tenantd exited 0, else -1. */
int td_server_stop(struct td_server *s);
/* Print the last part of the server log to stderr. */
void td_server_print_log(const struct td_server *s);

/* A temporary migrations dir "/tmp/<prefix>-XXXXXX" (path in dir) linking the source tree's
 * migrations/catalog, every .sql of migrations/tenant and tests/integration/migrations/<test_file>
 * (TD_SOURCE_DIR); env gets "TENANTD_MIGRATIONS_DIR=<dir>". Returns 0 or -1. */
int td_migrations_dir(const char *prefix, const char *test_file, char *dir, size_t dirsize,
                      char *env, size_t envsize);
/* The same dir as a copy of the source tree's migrations/catalog and migrations/tenant,
 * for a suite that adds or removes files in it. Returns 0 or -1. */
int td_migrations_copy(const char *prefix, char *dir, size_t dirsize, char *env, size_t envsize);
/* rm -rf the dir made by td_migrations_dir (a failure is printed, not fatal). */
void td_migrations_remove(const char *dir);

/* The three isolations, in the order the domain suites keep their owners. */
#define TD_NISO 3
extern const char *const td_isolations[TD_NISO];
/* A suite on a test domain: td_migrations_dir(prefix, domain_file) into dir/env, server s
 * started on it, and one enterprise tenant per isolation ("<slug_prefix>-<isolation>",
 * owner "owner@<isolation>.test") whose owners land in owners[]. Returns 0 or -1. */
int td_domain_suite_start(struct td_server *s, const char *prefix, const char *domain_file,
                          const char *slug_prefix, char *dir, size_t dirsize, char *env,
                          size_t envsize, struct td_principal owners[TD_NISO]);

/* The environment of a `tenantd` command run beside server s: the test's environment less its
 * TENANTD_* variables, then s's TENANTD_DATA_DIR (the string kept in dd), the test admin token
 * and JWT secret, and the NULL-terminated extra "NAME=value" strings. env holds
 * TD_CLI_ENV_MAX pointers; the list ends with NULL. */
#define TD_CLI_ENV_MAX 64
void td_cli_env(const struct td_server *s, const char *const *extra, char **env, char *dd,
                size_t ddsize);

/* cmocka group setup and teardown of a suite whose tests share the server srv (a
 * struct td_server of the file): TD_SUITE_SERVER starts it with no extra environment,
 * TD_SUITE_TEARDOWN only stops it (for a suite whose setup does more). Each defines
 * static setup() and/or teardown() for cmocka_run_group_tests. */
#define TD_SUITE_TEARDOWN(srv)                                                                     \
    static int teardown(void **state)                                                              \
    {                                                                                              \
        (void)state;                                                                               \
        return td_server_stop(&(srv));                                                             \
    }
#define TD_SUITE_SERVER(srv)                                                                       \
    static int setup(void **state)                                                                 \
    {                                                                                              \
        (void)state;                                                                               \
        return td_server_start(&(srv), NULL);                                                      \
    }                                                                                              \
    TD_SUITE_TEARDOWN(srv)

/*
 * One HTTP request. headers: NULL-terminated "Name: value" list or NULL. body may be NULL.
 * Content-Type: application/json is sent with a body unless headers set one.
 * Returns r->status. Free r with td_resp_free().
 */
long td_http(struct td_server *s, const char *method, const char *path, const char *const *headers,
             const char *body, struct td_resp *r);
/* Same with an explicit body length (binary bodies); chunked: send without Content-Length. */
long td_http_len(struct td_server *s, const char *method, const char *path,
                 const char *const *headers, const char *body, size_t len, bool chunked,
                 struct td_resp *r);
/* Request with an optional bearer token (NULL: none). */
long td_call(struct td_server *s, const char *method, const char *path, const char *token,
             const char *body, struct td_resp *r);
/* Request with the admin token. */
long td_admin(struct td_server *s, const char *method, const char *path, const char *body,
              struct td_resp *r);
void td_resp_free(struct td_resp *r);
/* The value of one series of GET /metrics (as the admin), e.g.
 * "tenantd_db_pool_open_connections{server=\"main\"}", or -1 when it is not there. */
long td_metric(struct td_server *s, const char *series);
/* Value of response header name (case-insensitive) copied to out, or NULL when absent. */
const char *td_resp_header(const struct td_resp *r, const char *name, char *out, size_t size);

/* String member of an object (NULL when missing or not a string). */
const char *td_jstr(const json_t *obj, const char *key);

/* POST /signup; fills p (token, ids). Returns the HTTP status. */
long td_signup(struct td_server *s, const char *slug, const char *email, const char *password,
               struct td_principal *p);
/*
 * POST /admin/tenants {slug,name,isolation?,plan?,owner?}; isolation/plan may be NULL; with
 * owner_email the owner is created and logged in (p->token). Returns the HTTP status of the
 * create (201 expected).
 */
long td_admin_create_tenant(struct td_server *s, const char *slug, const char *isolation,
                            const char *plan, const char *owner_email, const char *owner_password,
                            struct td_principal *p);
/* POST /t/{slug}/users {email,password,name,role} as token; copies the new id to id[size]
 * (may be NULL). Returns the HTTP status. */
long td_add_user(struct td_server *s, const char *slug, const char *token, const char *email,
                 const char *password, const char *role, char *id, size_t size);
/* POST /t/{slug}/auth/login; copies the token to token[size]. Returns the HTTP status. */
long td_login(struct td_server *s, const char *slug, const char *email, const char *password,
              char *token, size_t size);

/* Connect to database dbname (NULL: tenantd) of the embedded cluster as user. */
PGconn *td_db(struct td_server *s, const char *user);
PGconn *td_db_in(struct td_server *s, const char *dbname, const char *user);
/* Run sql with text params; returns the result (caller PQclear). */
PGresult *td_sql(PGconn *c, const char *sql, int nparams, const char *const *params);
/* First column of the first row of a query expected to succeed, copied to out. */
/* Rows of schema.projects named name (the superuser's view: every tenant's). */
long td_projects_named(PGconn *su, const char *schema, const char *name);
bool td_sql_value(PGconn *c, const char *sql, int nparams, const char *const *params, char *out,
                  size_t size);

/* "t_" + uuid without dashes (storage name of schema/role), out >= 35 bytes. */
void td_storage_name(const char *uuid, char *out, size_t size);
bool td_is_uuid(const char *s);
/* Percent-encode everything but RFC 3986 unreserved characters (query values). */
void td_urlencode(const char *in, char *out, size_t size);
/* RFC 3339 UTC timestamp ("...Z" or "...+00:00"); returns seconds since epoch or -1. */
long long td_parse_time(const char *s);

/* JWT helpers (HS256 by hand: SHA-256 and HMAC implemented in the harness). */
size_t td_b64url_encode(const unsigned char *in, size_t len, char *out, size_t size);
/* Returns the decoded length or -1; out gets a terminating NUL. */
long td_b64url_decode(const char *in, size_t len, unsigned char *out, size_t size);
void td_hmac_sha256(const unsigned char *key, size_t klen, const unsigned char *msg, size_t mlen,
                    unsigned char out[32]);
/* header.payload.signature of the given JSON texts, signed with secret; alg as in header. */
void td_jwt_sign(const char *header_json, const char *payload_json, const char *secret, char *out,
                 size_t size);
/* Decoded payload of a token (caller json_decref) or NULL. */
json_t *td_jwt_payload(const char *token);

/* Checks with diagnostics on stderr; use through the macros below. */
bool td_check_status(const struct td_resp *r, long status);
bool td_check_problem(const struct td_resp *r, long status, const char *code);

#define TD_ASSERT_STATUS(r, st) assert_true(td_check_status((r), (st)))
#define TD_ASSERT_PROBLEM(r, st, code) assert_true(td_check_problem((r), (st), (code)))

/* Run argv (PATH lookup) with stdout and stderr discarded; its exit status, 128 when it
 * was killed, -1 when it could not be run. */
int td_run_quiet(char *const argv[]);

void td_sleep_ms(long ms);
/* CLOCK_MONOTONIC in seconds. */
double td_now_s(void);
/* A TCP port of 127.0.0.1 free right now (for a second listener), or -1. */
int td_free_port(void);
/* A raw TCP connection to the server (receive timeout timeout_s), or -1. */
int td_raw_connect(const struct td_server *s, int timeout_s);
/* The status of the first response on fd, 0 when none came before the timeout. */
int td_raw_status(int fd);

#endif
