/*
 * fuzz_jwt.c - user token parsing and verification (auth_jwt_verify). Input: one mode
 * byte, then data.
 *   mode even: data is the token text as a client sends it.
 *   mode odd:  data is "HEADER_JSON\nPAYLOAD_JSON"; the driver base64url-encodes both and
 *              signs them with the server's key (HS256), so the claim checks behind the
 *              signature are reached too.
 * Whatever verifies must satisfy auth_jwt_verify's contract: UUID sub and tid, a known
 * role, exp in the future; an unsigned or foreign-key token never verifies.
 */
#include "auth/jwt.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "fuzz-jwt-secret-0123456789abcdef0123456789"
#define NOW ((time_t)1700000000)

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant broken: %s\n", what);
        abort();
    }
}

static char *b64(const uint8_t *p, size_t n)
{
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = malloc(cap);
    sodium_bin2base64(out, cap, p, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

/* header.payload signed with key (any length, as HS256 allows). */
static char *sign(const uint8_t *h, size_t hn, const uint8_t *p, size_t pn, const char *key)
{
    char *hb = b64(h, hn), *pb = b64(p, pn);
    size_t len = strlen(hb) + 1 + strlen(pb);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    char *msg = malloc(len + 1);
    snprintf(msg, len + 1, "%s.%s", hb, pb);
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, strlen(key));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, len);
    crypto_auth_hmacsha256_final(&st, mac);
    char *sb = b64(mac, sizeof(mac));
    char *tok = malloc(len + 2 + strlen(sb));
    sprintf(tok, "%s.%s", msg, sb);
    free(hb);
    free(pb);
    free(msg);
    free(sb);
    return tok;
}

static void verified(const struct auth_claims *c)
{
    check(auth_is_uuid(c->sub) && auth_is_uuid(c->tid), "sub and tid are UUIDs");
    check(!strcmp(c->role, "owner") || !strcmp(c->role, "admin") || !strcmp(c->role, "member"),
          "role is known");
    check(c->exp > (long long)NOW, "exp is in the future");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        init = 1;
        if (sodium_init() < 0)
            abort();
    }
    if (size < 1 || size > 8192)
        return 0;
    struct auth_claims c;
    int mode = data[0] & 1;
    data++;
    size--;
    if (mode == 0) {
        char *tok = malloc(size + 1);
        memcpy(tok, data, size);
        tok[size] = '\0';
        if (auth_jwt_verify(SECRET, tok, NOW, &c) == 0)
            verified(&c);
        free(tok);
        return 0;
    }
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hn = nl ? (size_t)(nl - data) : 0;
    const uint8_t *p = nl ? nl + 1 : data;
    size_t pn = size - (size_t)(p - data);
    char *tok = sign(data, hn, p, pn, SECRET);
    int rc = auth_jwt_verify(SECRET, tok, NOW, &c);
    check(rc == 0 || rc == TD_EUNAUTHORIZED, "verify returns 0 or unauthorized");
    if (rc == 0)
        verified(&c);
    /* the same token under a wrong key, or with its signature cut off, never verifies */
    char *other = sign(data, hn, p, pn, "not-the-server-key-0123456789abcdef0123");
    check(auth_jwt_verify(SECRET, other, NOW, &c) != 0, "a foreign key never verifies");
    char *dot = strrchr(tok, '.');
    dot[1] = '\0';
    check(auth_jwt_verify(SECRET, tok, NOW, &c) != 0, "an unsigned token never verifies");
    free(other);
    free(tok);
    return 0;
}
