/*
 * console.c - GET /console (the operator console's files, compiled in) and the console's
 * session: the operator token is sent once, to POST /console/session, and exchanged for an
 * HttpOnly, SameSite=Strict cookie; the page then never holds the token. Write requests
 * authenticated by the cookie also need the session's CSRF token in X-CSRF-Token.
 */
#include "api/console.h"

#include "app/app.h"
#include "api/handlers.h"
#include "api/internal.h"
#include "auth/password.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define COOKIE "td_console"
#define PAYLOAD_LEN 24 /* expiry (8 bytes, big-endian unix seconds) + nonce (16) */
#define MAC_LEN crypto_auth_hmacsha256_BYTES
#define B64(n) sodium_base64_ENCODED_LEN((n), sodium_base64_VARIANT_URLSAFE_NO_PADDING)

/* No inline script or style, nothing from elsewhere, never framed. */
static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
                          "base-uri 'none'; form-action 'self'";

static void security_headers(struct http_req *req)
{
    http_set_header(req, "Content-Security-Policy", csp);
    http_set_header(req, "X-Frame-Options", "DENY");
    http_set_header(req, "X-Content-Type-Options", "nosniff");
    http_set_header(req, "Referrer-Policy", "no-referrer");
}

int api_console_asset(struct http_req *req)
{
    const char *name = req->nparams ? req->params[0] : "index.html";
    for (const struct api_console_asset *a = api_console_assets; a->name; a++) {
        if (strcmp(a->name, name) != 0)
            continue;
        security_headers(req);
        /* revalidated each time: a new binary serves new files at the same names */
        http_set_header(req, "Cache-Control", "no-cache");
        return http_reply(req, 200, a->type, (const char *)a->data, a->len);
    }
    return TD_ENOTFOUND;
}

/* The session key: derived from the operator token, so a new token ends every session. */
static void session_key(struct http_req *req, unsigned char key[32])
{
    static const char ctx[] = "tenantd console session v1";
    const char *tok = req->app->cfg->admin_token;
    crypto_generichash(key, 32, (const unsigned char *)tok, strlen(tok), (const unsigned char *)ctx,
                       sizeof(ctx) - 1);
}

static void csrf_of(const unsigned char key[32], const unsigned char *payload, char *out,
                    size_t cap)
{
    unsigned char h[32];
    crypto_generichash_state st;
    crypto_generichash_init(&st, key, 32, sizeof(h));
    crypto_generichash_update(&st, (const unsigned char *)"csrf", 4);
    crypto_generichash_update(&st, payload, PAYLOAD_LEN);
    crypto_generichash_final(&st, h, sizeof(h));
    sodium_bin2base64(out, cap, h, sizeof(h), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static void format_time(long long t, char *out, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%S.000000Z", &tm);
}

/* The session payload of a valid, unexpired cookie of req into payload; 0 or -1. */
static int session_of(struct http_req *req, const unsigned char key[32],
                      unsigned char payload[PAYLOAD_LEN])
{
    const char *c = http_header(req, "Cookie");
    const char *v = NULL;
    for (const char *p = c; p && *p;) {
        while (*p == ' ' || *p == ';')
            p++;
        if (strncmp(p, COOKIE "=", sizeof(COOKIE)) == 0) {
            v = p + sizeof(COOKIE);
            break;
        }
        p = strchr(p, ';');
    }
    if (!v)
        return -1;
    size_t vlen = strcspn(v, "; "), len = 0;
    unsigned char raw[PAYLOAD_LEN + MAC_LEN];
    if (vlen != B64(sizeof(raw)) - 1 ||
        sodium_base642bin(raw, sizeof(raw), v, vlen, NULL, &len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        len != sizeof(raw) ||
        crypto_auth_hmacsha256_verify(raw + PAYLOAD_LEN, raw, PAYLOAD_LEN, key))
        return -1;
    long long exp = 0;
    for (int i = 0; i < 8; i++)
        exp = exp << 8 | raw[i];
    if (exp <= (long long)time(NULL))
        return -1;
    memcpy(payload, raw, PAYLOAD_LEN);
    return 0;
}

/* {csrf_token, expires_at} of the session in payload. */
static int reply_session(struct http_req *req, int status, const unsigned char key[32],
                         const unsigned char *payload)
{
    char csrf[B64(32)], exp_s[40];
    long long exp = 0;
    for (int i = 0; i < 8; i++)
        exp = exp << 8 | payload[i];
    csrf_of(key, payload, csrf, sizeof(csrf));
    format_time(exp, exp_s, sizeof(exp_s));
    http_set_header(req, "Cache-Control", "no-store");
    return http_reply_json(req, status,
                           json_pack("{s:s,s:s}", "csrf_token", csrf, "expires_at", exp_s));
}

static const char *secure_attr(struct http_req *req)
{
    /* tenantd speaks plain HTTP; behind a TLS proxy the cookie must never go out in clear */
    const char *proto = http_header(req, "X-Forwarded-Proto");
    return proto && strcasecmp(proto, "https") == 0 ? "; Secure" : "";
}

int api_console_sign_in(struct http_req *req)
{
    json_t *body = NULL;
    int rc = http_body_object(req, &body);
    if (rc < 0)
        return rc;
    const char *tok = json_string_value(json_object_get(body, "token"));
    int ok = tok && auth_secret_equal(tok, req->app->cfg->admin_token);
    json_decref(body);
    if (!ok)
        return api_fail(req, TD_EUNAUTHORIZED, "that is not the operator token");
    unsigned char key[32], raw[PAYLOAD_LEN + MAC_LEN];
    session_key(req, key);
    long long exp = (long long)time(NULL) + API_CONSOLE_SESSION_TTL;
    for (int i = 7; i >= 0; i--, exp >>= 8)
        raw[i] = (unsigned char)(exp & 0xff);
    randombytes_buf(raw + 8, 16);
    crypto_auth_hmacsha256(raw + PAYLOAD_LEN, raw, PAYLOAD_LEN, key);
    char v[B64(sizeof(raw))], cookie[256];
    sodium_bin2base64(v, sizeof(v), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(cookie, sizeof(cookie), COOKIE "=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Strict%s",
             v, API_CONSOLE_SESSION_TTL, secure_attr(req));
    http_set_header(req, "Set-Cookie", cookie);
    return reply_session(req, 201, key, raw);
}

int api_console_session(struct http_req *req)
{
    unsigned char key[32], payload[PAYLOAD_LEN];
    session_key(req, key);
    /* no session is the normal start of the page, not an error it should log */
    if (session_of(req, key, payload) < 0)
        return http_reply_empty(req, 204);
    return reply_session(req, 200, key, payload);
}

int api_console_sign_out(struct http_req *req)
{
    char cookie[128];
    snprintf(cookie, sizeof(cookie), COOKIE "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict%s",
             secure_attr(req));
    http_set_header(req, "Set-Cookie", cookie);
    return http_reply_empty(req, 204);
}

int api_console_check(struct http_req *req, const char **detail)
{
    unsigned char key[32], payload[PAYLOAD_LEN];
    session_key(req, key);
    if (session_of(req, key, payload) < 0) {
        *detail = "the operator token or a console session is required";
        return TD_EUNAUTHORIZED;
    }
    if (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0)
        return 0;
    /* SameSite=Strict already keeps the cookie off other sites' requests; the header is
     * the second lock, and a page elsewhere cannot read it to send it */
    char want[B64(32)];
    csrf_of(key, payload, want, sizeof(want));
    const char *got = http_header(req, "X-CSRF-Token");
    if (!got || strlen(got) != strlen(want) || sodium_memcmp(got, want, strlen(want)) != 0) {
        *detail = "a console write needs the session's X-CSRF-Token header";
        return TD_EFORBIDDEN;
    }
    return 0;
}
