/*
 * test_attacks.c - the cross-tenant attack suite (issue 7). For every isolation, tenant A
 * (with a valid owner token) goes after tenant B's data: by B's ids, by naming B through
 * /t/{slug}, X-Tenant-ID and the Host subdomain, with tampered tokens (wrong key, alg none,
 * expired, spliced), and with SQL-injection payloads in every string field, header, query
 * parameter and path segment. Every attempt must get the right 4xx of SPEC §3/§4, leak
 * nothing of B, and leave B's rows byte-for-byte unchanged (a superuser checksum of B's
 * users, projects and audit_logs is compared after every single attempt).
 */
#include "harness.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define BASE_DOMAIN "example.test"
#define NISO 3
#define ANY_CODE NULL
#define ANY_4XX -4 /* expected "status" for cases where only the class is fixed */

struct side {
    const char *iso;
    struct td_principal owner;
    char member_id[64];
    char proj[2][64];
    char storage[40]; /* t_<hex> */
    char schema[40];  /* where its tables live: pool or t_<hex> */
    char dbname[40];  /* tenantd or td_<hex> */
    PGconn *db;       /* superuser, in dbname */
    char sum[64];     /* checksum of its rows */
};

static struct td_server srv;
static const char *const isolations[NISO] = {"pool", "schema", "database"};
static struct side A[NISO], B[NISO];
static long attempts, failures;

/* ---- fixtures -------------------------------------------------------------------------- */

static void checksum(struct side *s, char *out, size_t size)
{
    char sql[1024];
    const char *p[1] = {s->owner.tenant_id};
    snprintf(sql, sizeof(sql),
             "SELECT md5(coalesce((SELECT string_agg(x::text, ',' ORDER BY x.id) FROM %s.users x "
             "WHERE x.tenant_id = $1), '') || '#' || coalesce((SELECT string_agg(x::text, ',' "
             "ORDER BY x.id) FROM %s.projects x WHERE x.tenant_id = $1), '') || '#' || "
             "coalesce((SELECT string_agg(x::text, ',' ORDER BY x.id) FROM %s.audit_logs x "
             "WHERE x.tenant_id = $1), ''))",
             s->schema, s->schema, s->schema);
    if (!td_sql_value(s->db, sql, 1, p, out, size))
        snprintf(out, size, "error: %s", PQerrorMessage(s->db));
}

static void make_side(struct side *s, const char *iso, char which)
{
    char slug[64], email[128], path[128], body[512];
    struct td_resp r;

    memset(s, 0, sizeof(*s));
    s->iso = iso;
    snprintf(slug, sizeof(slug), "atk-%c-%s", which, iso);
    snprintf(email, sizeof(email), "owner@%s.test", slug);
    assert_int_equal(
        td_admin_create_tenant(&srv, slug, iso, "enterprise", email, "owner-password-1", &s->owner),
        201);
    assert_true(s->owner.token[0] && td_is_uuid(s->owner.user_id));
    td_storage_name(s->owner.tenant_id, s->storage, sizeof(s->storage));
    snprintf(s->schema, sizeof(s->schema), "%s", strcmp(iso, "pool") ? s->storage : "pool");
    if (strcmp(iso, "database") == 0)
        snprintf(s->dbname, sizeof(s->dbname), "td_%s", s->storage + 2);
    else
        snprintf(s->dbname, sizeof(s->dbname), "tenantd");
    s->db = td_db_in(&srv, s->dbname, "postgres");
    assert_non_null(s->db);

    snprintf(path, sizeof(path), "/t/%s/projects", slug);
    for (int i = 0; i < 2; i++) {
        snprintf(body, sizeof(body), "{\"name\":\"secret-%s-%d\",\"description\":\"only %s\"}",
                 slug, i, slug);
        td_call(&srv, "POST", path, s->owner.token, body, &r);
        TD_ASSERT_STATUS(&r, 201);
        snprintf(s->proj[i], sizeof(s->proj[i]), "%s", td_jstr(r.json, "id"));
        td_resp_free(&r);
    }
    snprintf(path, sizeof(path), "/t/%s/users", slug);
    snprintf(body, sizeof(body),
             "{\"email\":\"member@%s.test\",\"password\":\"member-password-1\",\"name\":\"M\","
             "\"role\":\"member\"}",
             slug);
    td_call(&srv, "POST", path, s->owner.token, body, &r);
    TD_ASSERT_STATUS(&r, 201);
    snprintf(s->member_id, sizeof(s->member_id), "%s", td_jstr(r.json, "id"));
    td_resp_free(&r);
    checksum(s, s->sum, sizeof(s->sum));
    assert_int_equal(strlen(s->sum), 32);
}

static int setup(void **state)
{
    /* thousands of refused logins from one address: this suite checks how injected input
     * is answered, not throttling (test_web.c), so the limits are out of its way */
    static const char *const env[] = {"TENANTD_BASE_DOMAIN=" BASE_DOMAIN,
                                      "TENANTD_LOGIN_MAX_PER_EMAIL=1000000",
                                      "TENANTD_LOGIN_MAX_PER_ADDR=1000000", NULL};
    (void)state;
    if (td_server_start(&srv, env) != 0)
        return -1;
    for (int i = 0; i < NISO; i++) {
        make_side(&A[i], isolations[i], 'a');
        make_side(&B[i], isolations[i], 'b');
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < NISO; i++) {
        PQfinish(A[i].db);
        PQfinish(B[i].db);
    }
    fprintf(stderr, "attacks: %ld attempts, %ld failures\n", attempts, failures);
    printf("attack cases tried: %ld\n", attempts);
    return td_server_stop(&srv);
}

/* ---- one attempt ----------------------------------------------------------------------- */

/* Request headers by value (copied freely); attempt_r builds the NULL-terminated list. */
struct hdrs {
    char buf[8][2300];
    int n;
};

static void hdr(struct hdrs *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void hdr(struct hdrs *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->buf[h->n++], sizeof(h->buf[0]), fmt, ap);
    va_end(ap);
}

static struct hdrs bearer(const char *token)
{
    struct hdrs h;
    memset(&h, 0, sizeof(h));
    if (token)
        hdr(&h, "Authorization: Bearer %s", token);
    return h;
}

/* Nothing of any victim in a response: ids, e-mails, project names. */
static bool leaks_victim(const struct td_resp *r, const struct side *self)
{
    for (int i = 0; i < NISO; i++) {
        const struct side *b = &B[i];
        const char *needles[] = {b->owner.user_id, b->member_id,   b->proj[0],
                                 b->proj[1],       b->owner.email, "secret-atk-b"};
        if (b == self)
            continue;
        for (size_t k = 0; k < sizeof(needles) / sizeof(needles[0]); k++)
            if (r->body && strstr(r->body, needles[k])) {
                fprintf(stderr, "  %s: response leaks \"%s\" of %s\n", r->what, needles[k],
                        b->owner.slug);
                return true;
            }
    }
    return false;
}

/* Database error text must never reach a client. */
static bool leaks_sql(const struct td_resp *r)
{
    static const char *const marks[] = {"syntax error", "SQLSTATE",   "ERROR:", "relation \"",
                                        "violates",     "pg_catalog", "PQ"};
    if (!r->body || r->status < 400)
        return false;
    for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
        if (strstr(r->body, marks[i])) {
            fprintf(stderr, "  %s: problem leaks database text: %.300s\n", r->what, r->body);
            return true;
        }
    return false;
}

/* Every victim's rows still hash to what they did before the attack. */
static bool victims_unchanged(const char *what)
{
    bool ok = true;
    for (int i = 0; i < NISO; i++) {
        char now[256];
        checksum(&B[i], now, sizeof(now));
        if (strcmp(now, B[i].sum) != 0) {
            fprintf(stderr, "  %s: rows of %s changed (%s -> %s)\n", what, B[i].owner.slug,
                    B[i].sum, now);
            snprintf(B[i].sum, sizeof(B[i].sum), "%.63s", now); /* report each change once */
            ok = false;
        }
    }
    return ok;
}

/*
 * Send one request and check it. status ANY_4XX accepts any 4xx problem; code NULL any
 * code. self: the tenant whose own data may appear in the answer (NULL: none).
 * Returns the response (caller frees) so callers can look further.
 */
static void attempt_r(const char *method, const char *path, const struct hdrs *h, const char *body,
                      size_t body_len, long status, const char *code, const struct side *self,
                      struct td_resp *r)
{
    const char *v[9] = {NULL};
    bool ok;
    for (int i = 0; h && i < h->n; i++)
        v[i] = h->buf[i];
    td_http_len(&srv, method, path, v, body, body_len, false, r);
    attempts++;
    if (status == ANY_4XX) {
        ok = r->status >= 400 && r->status < 500 && td_check_problem(r, r->status, code);
        if (!ok && !(r->status >= 400 && r->status < 500))
            fprintf(stderr, "  %s: expected a 4xx, got %ld: %.300s\n", r->what, r->status, r->body);
    } else if (status >= 400) {
        ok = td_check_problem(r, status, code);
    } else {
        ok = td_check_status(r, status);
    }
    ok = !leaks_victim(r, self) && ok;
    ok = !leaks_sql(r) && ok;
    ok = victims_unchanged(r->what) && ok;
    if (!ok)
        failures++;
}

static void attempt(const char *method, const char *path, const struct hdrs *h, const char *body,
                    long status, const char *code)
{
    struct td_resp r;
    attempt_r(method, path, h, body, body ? strlen(body) : 0, status, code, NULL, &r);
    td_resp_free(&r);
}

static void finish(const char *phase, long before_attempts, long before_failures)
{
    fprintf(stderr, "attacks: %s: %ld attempts, %ld failures\n", phase, attempts - before_attempts,
            failures - before_failures);
    assert_int_equal(failures - before_failures, 0);
}

/* ---- 1. B's ids with A's own identification ------------------------------------------ */

/* How A names itself: 0 token only, 1 /t/{A}, 2 X-Tenant-ID, 3 Host subdomain. */
static void self_named(const struct side *a, int how, const char *rest, char *path, size_t size,
                       struct hdrs *h)
{
    *h = bearer(a->owner.token);
    snprintf(path, size, "%s", rest);
    if (how == 1)
        snprintf(path, size, "/t/%s%s", a->owner.slug, rest);
    else if (how == 2)
        hdr(h, "X-Tenant-ID: %s", a->owner.tenant_id);
    else if (how == 3) {
        char host[128];
        snprintf(host, sizeof(host), "%s.%s:8080", a->owner.slug, BASE_DOMAIN);
        hdr(h, "Host: %s", host);
    }
}

static void test_foreign_ids(void **state)
{
    long a0 = attempts, f0 = failures;
    (void)state;
    for (int i = 0; i < NISO; i++)
        for (int j = 0; j < NISO; j++)
            for (int how = 0; how < 4; how++) {
                const struct side *a = &A[i], *b = &B[j];
                struct {
                    const char *method, *coll, *id, *body;
                } cases[] = {
                    {"GET", "/projects/", b->proj[0], NULL},
                    {"PATCH", "/projects/", b->proj[0], "{\"name\":\"pwned\"}"},
                    {"PATCH", "/projects/", b->proj[1], "{\"status\":\"archived\"}"},
                    {"DELETE", "/projects/", b->proj[1], NULL},
                    {"GET", "/users/", b->owner.user_id, NULL},
                    {"GET", "/users/", b->member_id, NULL},
                    {"PATCH", "/users/", b->member_id, "{\"role\":\"owner\"}"},
                    {"PATCH", "/users/", b->owner.user_id, "{\"name\":\"pwned\"}"},
                    {"DELETE", "/users/", b->member_id, NULL},
                    {"DELETE", "/users/", b->owner.user_id, NULL},
                };
                for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
                    char rest[128], path[256];
                    struct hdrs h;
                    snprintf(rest, sizeof(rest), "%s%s", cases[k].coll, cases[k].id);
                    self_named(a, how, rest, path, sizeof(path), &h);
                    attempt(cases[k].method, path, &h, cases[k].body, 404, "not_found");
                }
            }
    finish("foreign ids", a0, f0);
}

/* ---- 2. A's token, B named by path, header, subdomain --------------------------------- */

/* Ways to name b (possibly together with a): returns false past the last one. */
static bool name_victim(int how, const struct side *a, const struct side *b, const char *rest,
                        char *path, size_t size, struct hdrs *h)
{
    char host[160];
    snprintf(path, size, "%s", rest);
    switch (how) {
    case 0:
        snprintf(path, size, "/t/%s%s", b->owner.slug, rest);
        return true;
    case 1:
        snprintf(path, size, "/t/%s%s", b->owner.tenant_id, rest);
        return true;
    case 2:
        hdr(h, "X-Tenant-ID: %s", b->owner.slug);
        return true;
    case 3:
        hdr(h, "X-Tenant-ID: %s", b->owner.tenant_id);
        return true;
    case 4:
        snprintf(host, sizeof(host), "%s.%s", b->owner.slug, BASE_DOMAIN);
        hdr(h, "Host: %s", host);
        return true;
    case 5: {
        /* upper case and a port: still B */
        size_t k = 0;
        for (const char *c = b->owner.slug; *c && k + 1 < sizeof(host); c++)
            host[k++] = (char)toupper((unsigned char)*c);
        snprintf(host + k, sizeof(host) - k, ".EXAMPLE.TEST:8080");
        hdr(h, "Host: %s", host);
        return true;
    }
    case 6:
        snprintf(path, size, "/t/%s%s", a->owner.slug, rest);
        hdr(h, "X-Tenant-ID: %s", b->owner.tenant_id);
        return true;
    case 7:
        hdr(h, "X-Tenant-ID: %s", a->owner.slug);
        snprintf(host, sizeof(host), "%s.%s", b->owner.slug, BASE_DOMAIN);
        hdr(h, "Host: %s", host);
        return true;
    case 8:
        snprintf(path, size, "/t/%s%s", b->owner.slug, rest);
        snprintf(host, sizeof(host), "%s.%s", a->owner.slug, BASE_DOMAIN);
        hdr(h, "Host: %s", host);
        return true;
    default:
        return false;
    }
}

static void test_foreign_tenant_names(void **state)
{
    long a0 = attempts, f0 = failures;
    (void)state;
    for (int i = 0; i < NISO; i++)
        for (int j = 0; j < NISO; j++) {
            const struct side *a = &A[i], *b = &B[j];
            char r_proj0[96], r_proj1[96], r_member[96];
            snprintf(r_proj0, sizeof(r_proj0), "/projects/%s", b->proj[0]);
            snprintf(r_proj1, sizeof(r_proj1), "/projects/%s", b->proj[1]);
            snprintf(r_member, sizeof(r_member), "/users/%s", b->member_id);
            struct {
                const char *method, *rest, *body;
            } routes[] = {
                {"GET", "/me", NULL},
                {"GET", "/users", NULL},
                {"POST", "/users",
                 "{\"email\":\"evil@x.test\",\"password\":\"evil-password\",\"name\":\"E\","
                 "\"role\":\"owner\"}"},
                {"GET", r_member, NULL},
                {"PATCH", r_member, "{\"role\":\"owner\"}"},
                {"DELETE", r_member, NULL},
                {"GET", "/projects", NULL},
                {"GET", "/projects?limit=100", NULL},
                {"POST", "/projects", "{\"name\":\"planted\"}"},
                {"GET", r_proj0, NULL},
                {"PATCH", r_proj0, "{\"name\":\"pwned\"}"},
                {"DELETE", r_proj1, NULL},
                {"GET", "/audit-logs", NULL},
            };
            for (int how = 0;; how++) {
                char path[256];
                struct hdrs h = bearer(a->owner.token);
                if (!name_victim(how, a, b, "", path, sizeof(path), &h))
                    break;
                for (size_t k = 0; k < sizeof(routes) / sizeof(routes[0]); k++) {
                    h = bearer(a->owner.token);
                    name_victim(how, a, b, routes[k].rest, path, sizeof(path), &h);
                    /* A naming itself and B at once is a mismatch too */
                    attempt(routes[k].method, path, &h, routes[k].body, 403, "tenant_mismatch");
                }
            }
            /* the operator's routes with A's user token, aimed at B */
            {
                char adm[8][160];
                const char *methods[8] = {"GET",  "GET", "PATCH", "DELETE",
                                          "POST", "GET", "POST",  "GET"};
                const char *bodies[8] = {NULL,
                                         NULL,
                                         "{\"status\":\"suspended\"}",
                                         NULL,
                                         "{\"isolation\":\"pool\"}",
                                         NULL,
                                         "{}",
                                         NULL};
                snprintf(adm[0], sizeof(adm[0]), "/admin/tenants");
                snprintf(adm[1], sizeof(adm[1]), "/admin/tenants/%s", b->owner.tenant_id);
                snprintf(adm[2], sizeof(adm[2]), "/admin/tenants/%s", b->owner.slug);
                snprintf(adm[3], sizeof(adm[3]), "/admin/tenants/%s?confirm=%s", b->owner.slug,
                         b->owner.slug);
                snprintf(adm[4], sizeof(adm[4]), "/admin/tenants/%s/move", b->owner.slug);
                snprintf(adm[5], sizeof(adm[5]), "/admin/tenants/%s/export", b->owner.slug);
                snprintf(adm[6], sizeof(adm[6]), "/admin/tenants/import?slug=%s", b->owner.slug);
                snprintf(adm[7], sizeof(adm[7]), "/admin/migrations");
                for (int k = 0; k < 8; k++) {
                    struct hdrs ah = bearer(a->owner.token);
                    attempt(methods[k], adm[k], &ah, bodies[k], 401, "unauthorized");
                }
            }
            /* log in to B with A's credentials, or name both */
            char body[256], path[128];
            struct hdrs h;
            snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"owner-password-1\"}",
                     a->owner.email);
            snprintf(path, sizeof(path), "/t/%s/auth/login", b->owner.slug);
            attempt("POST", path, NULL, body, 401, "unauthorized");
            memset(&h, 0, sizeof(h));
            hdr(&h, "X-Tenant-ID: %s", b->owner.tenant_id);
            attempt("POST", "/auth/login", &h, body, 401, "unauthorized");
            hdr(&h, "Host: %s." BASE_DOMAIN, a->owner.slug);
            attempt("POST", "/auth/login", &h, body, 403, "tenant_mismatch");
        }
    finish("foreign tenant names", a0, f0);
}

/* ---- 3. tampered tokens --------------------------------------------------------------- */

static void token(char *out, size_t size, const char *alg, const char *sub, const char *tid,
                  long exp, const char *key)
{
    char header[128], payload[512];
    long now = (long)time(NULL);
    snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
    snprintf(payload, sizeof(payload),
             "{\"sub\":\"%s\",\"tid\":\"%s\",\"role\":\"owner\",\"iat\":%ld,\"exp\":%ld}", sub, tid,
             now - 100, exp);
    td_jwt_sign(header, payload, key ? key : "", out, size);
    if (!key) /* unsigned: header.payload. */
        strrchr(out, '.')[1] = '\0';
}

/* A's real header and signature around a payload that names B. */
static void spliced(char *out, size_t size, const struct side *a, const struct side *b)
{
    const char *tok = a->owner.token;
    const char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
    char payload[512], enc[1024];
    snprintf(payload, sizeof(payload),
             "{\"sub\":\"%s\",\"tid\":\"%s\",\"role\":\"owner\",\"iat\":%ld,\"exp\":%ld}",
             b->owner.user_id, b->owner.tenant_id, (long)time(NULL), (long)time(NULL) + 3600);
    td_b64url_encode((const unsigned char *)payload, strlen(payload), enc, sizeof(enc));
    snprintf(out, size, "%.*s.%s%s", (int)(d1 - tok), tok, enc, d2);
}

#define NTOKENS 14

static void tampered(const struct side *a, const struct side *b, char toks[NTOKENS][2048])
{
    const char *bs = b->owner.user_id, *bt = b->owner.tenant_id;
    long later = (long)time(NULL) + 3600, past = (long)time(NULL) - 60;
    char secret_cut[64];
    snprintf(secret_cut, sizeof(secret_cut), "%s", TD_TEST_JWT_SECRET);
    secret_cut[strlen(secret_cut) - 1] = '\0';
    token(toks[0], 2048, "HS256", a->owner.user_id, bt, later,
          "wrong-key-0123456789abcdef0123456789abc");
    token(toks[1], 2048, "HS256", bs, bt, later, "wrong-key-0123456789abcdef0123456789abc");
    token(toks[2], 2048, "none", bs, bt, later, NULL);
    token(toks[3], 2048, "None", bs, bt, later, NULL);
    token(toks[4], 2048, "none", bs, bt, later, TD_TEST_JWT_SECRET); /* none, yet signed */
    token(toks[5], 2048, "HS256", bs, bt, past, TD_TEST_JWT_SECRET); /* expired */
    token(toks[6], 2048, "HS256", a->owner.user_id, a->owner.tenant_id, past,
          TD_TEST_JWT_SECRET); /* A's own, expired */
    token(toks[7], 2048, "HS512", bs, bt, later, TD_TEST_JWT_SECRET);
    spliced(toks[8], 2048, a, b);
    token(toks[9], 2048, "HS256", bs, bt, later, NULL); /* signature stripped */
    token(toks[10], 2048, "HS256", bs, bt, later, TD_TEST_ADMIN_TOKEN);
    token(toks[11], 2048, "HS256", bs, bt, later, "");
    token(toks[12], 2048, "HS256", bs, bt, later, secret_cut);
    /* A's real token with the signature of another one */
    snprintf(toks[13], 2048, "%.*s%s", (int)(strrchr(a->owner.token, '.') - a->owner.token),
             a->owner.token, strrchr(b->owner.token, '.'));
}

static void test_tampered_tokens(void **state)
{
    long a0 = attempts, f0 = failures;
    (void)state;
    for (int i = 0; i < NISO; i++)
        for (int j = 0; j < NISO; j++) {
            const struct side *a = &A[i], *b = &B[j];
            static char toks[NTOKENS][2048];
            char r_proj0[96], r_proj1[96], r_member[96];
            snprintf(r_proj0, sizeof(r_proj0), "/projects/%s", b->proj[0]);
            snprintf(r_proj1, sizeof(r_proj1), "/projects/%s", b->proj[1]);
            snprintf(r_member, sizeof(r_member), "/users/%s", b->member_id);
            struct {
                const char *method, *rest, *body;
            } routes[] = {
                {"GET", "/me", NULL},
                {"GET", "/projects", NULL},
                {"POST", "/projects", "{\"name\":\"planted\"}"},
                {"GET", r_proj0, NULL},
                {"PATCH", r_proj0, "{\"name\":\"pwned\"}"},
                {"DELETE", r_proj1, NULL},
                {"GET", "/users", NULL},
                {"DELETE", r_member, NULL},
                {"GET", "/audit-logs", NULL},
            };
            tampered(a, b, toks);
            for (int t = 0; t < NTOKENS; t++)
                for (size_t k = 0; k < sizeof(routes) / sizeof(routes[0]); k++)
                    for (int how = 0; how < 2; how++) {
                        char path[256];
                        struct hdrs h = bearer(toks[t]);
                        snprintf(path, sizeof(path), "%s", routes[k].rest);
                        /* token only, or B also named (rotating through the ways) */
                        if (how == 1)
                            name_victim((int)((t + k) % 6), a, b, routes[k].rest, path,
                                        sizeof(path), &h);
                        attempt(routes[k].method, path, &h, routes[k].body, 401, "unauthorized");
                    }
        }
    finish("tampered tokens", a0, f0);
}

/* ---- 4. injection payloads ------------------------------------------------------------ */

struct payload {
    char s[256];
    size_t len; /* may hold a NUL */
};

static struct payload payloads[32];
static int npayloads;

static void add_payload(const char *s, size_t len)
{
    memcpy(payloads[npayloads].s, s, len);
    payloads[npayloads].s[len] = '\0';
    payloads[npayloads++].len = len;
}

static void make_payloads(void)
{
    static const char *const fixed[] = {
        "' OR 1=1 --",
        "'; DROP TABLE projects; --",
        "\\x00",
        "\xca\xbc OR 1=1 --",                 /* U+02BC modifier apostrophe */
        "\xef\xbc\x87; DROP TABLE users; --", /* U+FF07 fullwidth apostrophe */
        "\xe2\x80\x98 OR \xe2\x80\x98"
        "1\xe2\x80\x99=\xe2\x80\x99"
        "1", /* curly quotes */
        "\" OR \"\"=\"",
        "1; SELECT pg_sleep(3); --",
        "' UNION SELECT id, email, password_hash FROM pool.users --",
        "$1::text || current_setting('app.tenant_id')",
        "%s%s%n%x%p",
        "../../../etc/passwd",
        "\\'; RESET ROLE; SET search_path = public; --",
        "admin'/*",
        "o'connor'--@x.test",
        "a'||(SELECT/**/password_hash/**/FROM/**/pool.users/**/LIMIT/**/1)||'@x.test",
    };
    char buf[256];
    npayloads = 0;
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        add_payload(fixed[i], strlen(fixed[i]));
    add_payload("a\0' OR 1=1 --", 13); /* real NULs */
    add_payload("\0; DROP TABLE projects", 22);
    for (int i = 0; i < NISO; i++) {
        snprintf(buf, sizeof(buf), "%s.projects", B[i].storage);
        add_payload(buf, strlen(buf));
    }
    snprintf(buf, sizeof(buf), "'; SELECT set_config('app.tenant_id', '%s', false); --",
             B[0].owner.tenant_id);
    add_payload(buf, strlen(buf));
    add_payload(B[0].owner.tenant_id, strlen(B[0].owner.tenant_id));
}

static bool has_nul(const struct payload *p)
{
    return strlen(p->s) != p->len;
}

static size_t cps(const struct payload *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->len; i++)
        n += ((unsigned char)p->s[i] & 0xC0) != 0x80;
    return n;
}

static bool str_ok(const struct payload *p, size_t max)
{
    return !has_nul(p) && cps(p) <= max; /* none of the payloads is blank */
}

static bool email_ok(const struct payload *p)
{
    const char *at = strchr(p->s, '@');
    return !has_nul(p) && at && at != p->s && at[1] && !strchr(at + 1, '@') && p->len <= 254 &&
           !strpbrk(p->s, " \t\r\n");
}

static bool password_ok(const struct payload *p)
{
    return !has_nul(p) && cps(p) >= 8 && cps(p) <= 128;
}

/* {"k1":v1,...} with the payload as the value of key `at` (NULL-terminated pairs). */
static char *body_with(const struct payload *p, const char *at, ...)
{
    va_list ap;
    json_t *o = json_object();
    va_start(ap, at);
    for (const char *k = va_arg(ap, const char *); k; k = va_arg(ap, const char *))
        json_object_set_new(o, k, json_string(va_arg(ap, const char *)));
    va_end(ap);
    json_object_set_new(o, at, json_stringn(p->s, p->len));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static void expect_body(const struct side *a, const char *method, const char *path, char *body,
                        bool valid, long ok_status, const char *field, const struct payload *p)
{
    struct td_resp r;
    struct hdrs h = bearer(a->owner.token);
    /* a NUL inside a JSON string is refused by the parser (invalid_json) or the field
     * check (validation_failed): both are the 400 SPEC asks for */
    attempt_r(method, path, &h, body, strlen(body), valid ? ok_status : 400,
              valid || has_nul(p) ? NULL : "validation_failed", a, &r);
    /* stored byte for byte, never interpreted */
    if (valid && field && r.status == ok_status) {
        const char *got = td_jstr(r.json, field);
        if (!got || strlen(got) != p->len || memcmp(got, p->s, p->len) != 0) {
            fprintf(stderr, "  %s: %s came back as \"%s\"\n", r.what, field, got ? got : "(none)");
            failures++;
        }
    }
    td_resp_free(&r);
    free(body);
}

/* A row of A's with column = payload exists (superuser view). */
static bool stored(const struct side *a, const char *table, const char *column,
                   const struct payload *p)
{
    char sql[256], n[32];
    const char *params[2] = {a->owner.tenant_id, p->s};
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.%s WHERE tenant_id = $1 AND %s = $2",
             a->schema, table, column);
    return td_sql_value(a->db, sql, 2, params, n, sizeof(n)) && atoi(n) > 0;
}

static void inject_fields(const struct side *a, const struct payload *p, int idx)
{
    char path[256], mpath[256], email[128];
    const char *slug = a->owner.slug;
    bool ok200 = str_ok(p, 200);

    snprintf(path, sizeof(path), "/t/%s/projects", slug);
    expect_body(a, "POST", path, body_with(p, "name", NULL), ok200, 201, "name", p);
    expect_body(a, "POST", path, body_with(p, "description", "name", "inj", NULL), str_ok(p, 10000),
                201, "description", p);
    expect_body(a, "POST", path, body_with(p, "status", "name", "inj", NULL), false, 0, NULL, p);
    if (ok200 && !stored(a, "projects", "name", p)) {
        fprintf(stderr, "  project name %s not stored verbatim in %s\n", p->s, slug);
        failures++;
    }
    snprintf(path, sizeof(path), "/t/%s/projects/%s", slug, a->proj[0]);
    expect_body(a, "PATCH", path, body_with(p, "name", NULL), ok200, 200, "name", p);
    expect_body(a, "PATCH", path, body_with(p, "description", NULL), str_ok(p, 10000), 200,
                "description", p);
    expect_body(a, "PATCH", path, body_with(p, "status", NULL), false, 0, NULL, p);

    snprintf(path, sizeof(path), "/t/%s/users", slug);
    expect_body(
        a, "POST", path,
        body_with(p, "email", "password", "password-123", "name", "I", "role", "member", NULL),
        email_ok(p), 201, "email", p);
    snprintf(email, sizeof(email), "inj-pw-%d@%s.test", idx, slug);
    expect_body(a, "POST", path,
                body_with(p, "password", "email", email, "name", "I", "role", "member", NULL),
                password_ok(p), 201, NULL, p);
    snprintf(email, sizeof(email), "inj-name-%d@%s.test", idx, slug);
    expect_body(
        a, "POST", path,
        body_with(p, "name", "email", email, "password", "password-123", "role", "member", NULL),
        ok200, 201, "name", p);
    snprintf(email, sizeof(email), "inj-role-%d@%s.test", idx, slug);
    expect_body(a, "POST", path,
                body_with(p, "role", "email", email, "password", "password-123", "name", "I", NULL),
                false, 0, NULL, p);
    snprintf(mpath, sizeof(mpath), "/t/%s/users/%s", slug, a->member_id);
    expect_body(a, "PATCH", mpath, body_with(p, "name", NULL), ok200, 200, "name", p);
    expect_body(a, "PATCH", mpath, body_with(p, "password", NULL), password_ok(p), 200, NULL, p);
    expect_body(a, "PATCH", mpath, body_with(p, "role", NULL), false, 0, NULL, p);

    /* login: a payload is never a credential */
    char *body = body_with(p, "password", "email", a->owner.email, NULL);
    snprintf(path, sizeof(path), "/t/%s/auth/login", slug);
    attempt("POST", path, NULL, body, has_nul(p) ? 400 : 401,
            has_nul(p) ? ANY_CODE : "unauthorized");
    free(body);
    body = body_with(p, "email", "password", "owner-password-1", NULL);
    attempt("POST", path, NULL, body, has_nul(p) ? 400 : 401,
            has_nul(p) ? ANY_CODE : "unauthorized");
    free(body);

    /* slugs of new tenants */
    json_t *o = json_pack("{s:{s:o,s:s},s:{s:s,s:s,s:s}}", "organization", "slug",
                          json_stringn(p->s, p->len), "name", "x", "user", "email", "inj@x.test",
                          "password", "password-123", "name", "I");
    body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    attempt("POST", "/signup", NULL, body, 400, has_nul(p) ? ANY_CODE : "validation_failed");
    free(body);
    body = body_with(p, "slug", "name", "x", NULL);
    struct hdrs adm = bearer(TD_TEST_ADMIN_TOKEN);
    attempt("POST", "/admin/tenants", &adm, body, 400, has_nul(p) ? ANY_CODE : "validation_failed");
    free(body);
}

static void inject_query_and_headers(const struct side *a, const struct payload *p)
{
    char enc[1024], path[1400], host[400];
    const char *slug = a->owner.slug;
    struct hdrs h;
    struct td_resp r;

    /* B's tenant id as a payload names a real tenant: a mismatch, not an unknown one */
    bool uuid = td_is_uuid(p->s);
    td_urlencode(p->s, enc, sizeof(enc));
    if (has_nul(p)) { /* td_urlencode stops at the NUL: spell it out */
        size_t k = strlen(enc);
        snprintf(enc + k, sizeof(enc) - k, "%%00");
        td_urlencode(p->s + strlen(p->s) + 1, enc + k + 3, sizeof(enc) - k - 3);
    }
    static const char *const lists[] = {"projects", "users", "audit-logs"};
    for (int i = 0; i < 3; i++) {
        h = bearer(a->owner.token);
        snprintf(path, sizeof(path), "/t/%s/%s?cursor=%s", slug, lists[i], enc);
        attempt("GET", path, &h, NULL, 400, "bad_request");
    }
    h = bearer(a->owner.token);
    snprintf(path, sizeof(path), "/t/%s/projects?limit=%s", slug, enc);
    attempt("GET", path, &h, NULL, 400, "bad_request");
    /* a cursor that decodes but carries SQL */
    {
        char raw[512], cur[1024];
        snprintf(raw, sizeof(raw), "1700000000000000_%s", p->s);
        td_b64url_encode((const unsigned char *)raw, strlen(raw), cur, sizeof(cur));
        h = bearer(a->owner.token);
        snprintf(path, sizeof(path), "/t/%s/projects?cursor=%s", slug, cur);
        /* a cursor names its list's filters and order: one made by hand never fits */
        attempt_r("GET", path, &h, NULL, 0, 400, "bad_request", a, &r);
        td_resp_free(&r);
    }
    {
        struct hdrs adm = bearer(TD_TEST_ADMIN_TOKEN);
        snprintf(path, sizeof(path), "/admin/tenants/%s?confirm=%s", slug, enc);
        attempt("DELETE", path, &adm, NULL, 400, "bad_request");
    }

    /* path segments */
    {
        bool slash = strchr(p->s, '/') != NULL;
        h = bearer(a->owner.token);
        snprintf(path, sizeof(path), "/t/%s/projects", enc);
        if (uuid)
            attempt("GET", path, &h, NULL, 403, "tenant_mismatch");
        else
            attempt("GET", path, &h, NULL, 404,
                    has_nul(p) ? ANY_CODE
                    : slash    ? "not_found"
                               : "tenant_not_found");
        static const char *const colls[] = {"projects", "users"};
        static const char *const methods[] = {"GET", "PATCH", "DELETE"};
        for (int c = 0; c < 2; c++)
            for (int m = 0; m < 3; m++) {
                h = bearer(a->owner.token);
                snprintf(path, sizeof(path), "/t/%s/%s/%s", slug, colls[c], enc);
                /* a segment that is no id is a 404, never a list or a 405 */
                attempt(methods[m], path, &h, m == 1 ? "{\"name\":\"x\"}" : NULL, 404,
                        slash ? ANY_CODE : "not_found");
            }
        struct hdrs adm = bearer(TD_TEST_ADMIN_TOKEN);
        for (int m = 0; m < 3 && !uuid; m++) {
            snprintf(path, sizeof(path), "/admin/tenants/%s", enc);
            attempt(methods[m], path, &adm, m == 1 ? "{\"name\":\"x\"}" : NULL, 404, ANY_CODE);
        }
    }

    if (has_nul(p)) /* NUL cannot travel in a header */
        return;
    /* tenant identification headers */
    h = bearer(a->owner.token);
    hdr(&h, "X-Tenant-ID: %s", p->s);
    attempt("GET", "/projects", &h, NULL, uuid ? 403 : 404,
            uuid ? "tenant_mismatch" : "tenant_not_found");
    h = bearer(a->owner.token);
    snprintf(host, sizeof(host), "%s.%s", p->s, BASE_DOMAIN);
    hdr(&h, "Host: %s", host);
    /* not one label under the base domain: no tenant named, the token's own tenant serves */
    if (uuid)
        attempt("GET", "/projects", &h, NULL, 403, "tenant_mismatch");
    else {
        bool label = !strpbrk(p->s, ".:");
        attempt_r("GET", "/projects", &h, NULL, 0, label ? 404 : 200,
                  label ? "tenant_not_found" : NULL, a, &r);
        td_resp_free(&r);
    }
    h = bearer(p->s);
    snprintf(path, sizeof(path), "/t/%s/projects", slug);
    attempt("GET", path, &h, NULL, 401, "unauthorized");

    /* User-Agent lands in the audit log: stored verbatim */
    h = bearer(a->owner.token);
    hdr(&h, "User-Agent: %s", p->s);
    snprintf(path, sizeof(path), "/t/%s/projects", slug);
    attempt_r("POST", path, &h, "{\"name\":\"ua\"}", 13, 201, NULL, a, &r);
    td_resp_free(&r);
    if (!stored(a, "audit_logs", "user_agent", p)) {
        fprintf(stderr, "  user agent %s not stored verbatim in %s\n", p->s, slug);
        failures++;
    }
    /* X-Request-Id is echoed only when harmless */
    memset(&h, 0, sizeof(h));
    hdr(&h, "X-Request-Id: %s", p->s);
    attempt_r("GET", "/health", &h, NULL, 0, 200, NULL, NULL, &r);
    for (const char *c = r.request_id; *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr("._:-", *c)) {
            fprintf(stderr, "  X-Request-Id echoed unsafe \"%s\"\n", r.request_id);
            failures++;
            break;
        }
    td_resp_free(&r);
}

static void test_injection(void **state)
{
    long a0 = attempts, f0 = failures;
    (void)state;
    make_payloads();
    for (int i = 0; i < NISO; i++)
        for (int k = 0; k < npayloads; k++) {
            inject_fields(&A[i], &payloads[k], k);
            inject_query_and_headers(&A[i], &payloads[k]);
        }
    /* A itself survived: its tables exist and its owner still works */
    for (int i = 0; i < NISO; i++) {
        struct td_resp r;
        char path[128];
        snprintf(path, sizeof(path), "/t/%s/projects?limit=100", A[i].owner.slug);
        td_call(&srv, "GET", path, A[i].owner.token, NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        td_resp_free(&r);
    }
    finish("injection payloads", a0, f0);
}

/* ---- 5. a slug shaped like another tenant's id --------------------------------------- */

/*
 * Regression: a UUID-shaped slug that starts with a letter matches the slug pattern, and
 * the tenant cache kept slugs and ids under one key space, so tenant X with slug = V's id
 * answered lookups of V's id: V's users got 403 tenant_mismatch and the operator's
 * GET/DELETE /admin/tenants/{V's id} reached X. Such slugs are now refused (400) and the
 * cache never files a tenant under a UUID that is not its id.
 */
static void test_slug_shaped_like_an_id(void **state)
{
    static const char fake[] = "abcdef01-2345-4678-9abc-def012345678";
    long a0 = attempts, f0 = failures;
    char body[512], path[256], sql[256];
    struct hdrs adm = bearer(TD_TEST_ADMIN_TOKEN);
    struct td_principal v, x;
    struct td_resp r;
    (void)state;

    snprintf(body, sizeof(body), "{\"slug\":\"%s\",\"name\":\"x\"}", fake);
    attempt("POST", "/admin/tenants", &adm, body, 400, "validation_failed");
    snprintf(body, sizeof(body),
             "{\"organization\":{\"slug\":\"%s\",\"name\":\"x\"},\"user\":{\"email\":\"u@x.test\","
             "\"password\":\"password-123\",\"name\":\"U\"}}",
             fake);
    attempt("POST", "/signup", NULL, body, 400, "validation_failed");

    /* a victim whose id starts with a letter, so that it is a valid slug by the pattern */
    for (int i = 0;; i++) {
        char slug[32];
        assert_true(i < 40);
        snprintf(slug, sizeof(slug), "atk-v%d", i);
        assert_int_equal(td_admin_create_tenant(&srv, slug, "pool", "enterprise", "v@v.test",
                                                "owner-password-1", &v),
                         201);
        if (v.tenant_id[0] >= 'a' && v.tenant_id[0] <= 'f')
            break;
    }
    assert_int_equal(td_admin_create_tenant(&srv, "atk-x", "pool", "free", NULL, NULL, &x), 201);
    /* what an older version could have stored: X's slug is V's id */
    snprintf(sql, sizeof(sql), "UPDATE tenantd.tenants SET slug = $1 WHERE id = $2");
    PGresult *res = td_sql(A[0].db, sql, 2, (const char *const[]){v.tenant_id, x.tenant_id});
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    /* X is loaded into the cache (by its id) */
    snprintf(path, sizeof(path), "/admin/tenants/%s", x.tenant_id);
    td_http(&srv, "GET", path, (const char *const[]){adm.buf[0], NULL}, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);

    /* V's id still means V, for V's users and for the operator */
    struct hdrs h = bearer(v.token);
    attempt_r("GET", "/projects", &h, NULL, 0, 200, NULL, NULL, &r);
    td_resp_free(&r);
    snprintf(path, sizeof(path), "/t/%s/me", v.tenant_id);
    attempt_r("GET", path, &h, NULL, 0, 200, NULL, NULL, &r);
    td_resp_free(&r);
    snprintf(path, sizeof(path), "/admin/tenants/%s", v.tenant_id);
    attempt_r("GET", path, &adm, NULL, 0, 200, NULL, NULL, &r);
    if (!td_jstr(r.json, "id") || strcmp(td_jstr(r.json, "id"), v.tenant_id) != 0) {
        fprintf(stderr, "  GET %s answered tenant %s\n", path, td_jstr(r.json, "id"));
        failures++;
    }
    td_resp_free(&r);
    snprintf(path, sizeof(path), "/admin/tenants/%s?confirm=%s", v.tenant_id, v.tenant_id);
    attempt("DELETE", path, &adm, NULL, 400, "bad_request"); /* V's slug is not its id */
    h = bearer(v.token);
    attempt_r("GET", "/me", &h, NULL, 0, 200, NULL, NULL, &r);
    td_resp_free(&r);
    finish("slug shaped like an id", a0, f0);
}

/* ---- B is whole and still serves its owner -------------------------------------------- */

static void test_victims_intact(void **state)
{
    (void)state;
    for (int i = 0; i < NISO; i++) {
        struct td_resp r;
        char path[128];
        snprintf(path, sizeof(path), "/t/%s/projects", B[i].owner.slug);
        td_call(&srv, "GET", path, B[i].owner.token, NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        json_t *data = json_object_get(r.json, "data");
        assert_int_equal(json_array_size(data), 2);
        td_resp_free(&r);
        assert_int_equal(
            td_login(&srv, B[i].owner.slug, B[i].owner.email, "owner-password-1", NULL, 0), 200);
    }
    assert_true(victims_unchanged("final check"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_foreign_ids),
        cmocka_unit_test(test_foreign_tenant_names),
        cmocka_unit_test(test_tampered_tokens),
        cmocka_unit_test(test_injection),
        cmocka_unit_test(test_slug_shaped_like_an_id),
        cmocka_unit_test(test_victims_intact),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
