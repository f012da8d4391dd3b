/*
 * test_jwt.c - user tokens (HS256 only, SPEC §4), UUID checks, password hashing and
 * constant-time secret comparison.
 */
#include "auth/jwt.h"
#include "auth/password.h"

#include <jwt.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define SECRET "0123456789abcdef0123456789abcdef-test"
#define OTHER_SECRET "fedcba9876543210fedcba9876543210-test"
#define SUB "0b7e9a52-2d8e-4c4a-9d0f-3f6a1c2b5e11"
#define TID "a1b2c3d4-e5f6-4a5b-8c7d-9e0f1a2b3c4d"
#define NOW ((time_t)1700000000)

/* noinline: gcc 12 -Wdangling-pointer misreads &tok passed to auth_jwt_sign when inlined */
__attribute__((noinline)) static char *sign(const char *secret, const char *sub, const char *tid,
                                            const char *role, time_t now, int ttl)
{
    char *tok = NULL;
    assert_int_equal(auth_jwt_sign(secret, sub, tid, role, now, ttl, &tok), 0);
    assert_non_null(tok);
    return tok;
}

static int verify(const char *token, time_t now)
{
    struct auth_claims c;
    return auth_jwt_verify(SECRET, token, now, &c);
}

static char *b64url(const void *bin, size_t len)
{
    size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = malloc(cap);
    sodium_bin2base64(out, cap, bin, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

/* "<b64 header>.<b64 payload>.<sig>" from JSON texts; caller frees. */
static char *hand_token(const char *header, const char *payload, const char *sig)
{
    char *h = b64url(header, strlen(header));
    char *p = b64url(payload, strlen(payload));
    size_t n = strlen(h) + strlen(p) + strlen(sig) + 3;
    char *tok = malloc(n);
    snprintf(tok, n, "%s.%s.%s", h, p, sig);
    free(h);
    free(p);
    return tok;
}

#define HS256_HEADER "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

/* A hand-built token signed with HMAC-SHA256 over "<header>.<payload>"; caller frees. */
static char *hand_signed(const char *header, const char *payload, const char *key)
{
    char *unsigned_tok = hand_token(header, payload, "");
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, strlen(key));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)unsigned_tok,
                                  strlen(unsigned_tok) - 1); /* without the final '.' */
    crypto_auth_hmacsha256_final(&st, mac);
    char *sig = b64url(mac, sizeof(mac));
    char *tok = malloc(strlen(unsigned_tok) + strlen(sig) + 1);
    strcpy(tok, unsigned_tok);
    strcat(tok, sig);
    free(sig);
    free(unsigned_tok);
    return tok;
}

/* A libjwt token with arbitrary grants (NULL values skipped), HS256 unless told. */
static char *lib_token(jwt_alg_t alg, const char *key, const char *sub, const char *tid,
                       const char *role, long exp)
{
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    if (sub)
        assert_int_equal(jwt_add_grant(jwt, "sub", sub), 0);
    if (tid)
        assert_int_equal(jwt_add_grant(jwt, "tid", tid), 0);
    if (role)
        assert_int_equal(jwt_add_grant(jwt, "role", role), 0);
    if (exp)
        assert_int_equal(jwt_add_grant_int(jwt, "exp", exp), 0);
    assert_int_equal(jwt_set_alg(jwt, alg, (const unsigned char *)key, key ? (int)strlen(key) : 0),
                     0);
    char *tok = jwt_encode_str(jwt);
    assert_non_null(tok);
    jwt_free(jwt);
    return tok;
}

static void test_round_trip(void **state)
{
    (void)state;
    char *tok = sign(SECRET, SUB, TID, "admin", NOW, 3600);
    struct auth_claims c;
    memset(&c, 0xAA, sizeof(c));
    assert_int_equal(auth_jwt_verify(SECRET, tok, NOW, &c), 0);
    assert_string_equal(c.sub, SUB);
    assert_string_equal(c.tid, TID);
    assert_string_equal(c.role, "admin");
    assert_int_equal(c.exp, NOW + 3600);
    /* still valid one second before expiry */
    assert_int_equal(verify(tok, NOW + 3599), 0);
    free(tok);

    for (int i = 0; i < 3; i++) {
        static const char *const roles[] = {"owner", "admin", "member"};
        tok = sign(SECRET, SUB, TID, roles[i], NOW, 60);
        assert_int_equal(auth_jwt_verify(SECRET, tok, NOW, &c), 0);
        assert_string_equal(c.role, roles[i]);
        free(tok);
    }

    /* a libjwt HS256 token with the same claims is accepted too */
    tok = lib_token(JWT_ALG_HS256, SECRET, SUB, TID, "member", (long)NOW + 10);
    assert_int_equal(verify(tok, NOW), 0);
    free(tok);
}

static void test_expired(void **state)
{
    (void)state;
    char *tok = sign(SECRET, SUB, TID, "owner", NOW, 3600);
    struct auth_claims c;
    assert_int_equal(auth_jwt_verify(SECRET, tok, NOW + 3600, &c), TD_EUNAUTHORIZED);
    assert_int_equal(auth_jwt_verify(SECRET, tok, NOW + 7200, &c), TD_EUNAUTHORIZED);
    free(tok);

    tok = lib_token(JWT_ALG_HS256, SECRET, SUB, TID, "owner", 0); /* no exp at all */
    assert_int_equal(verify(tok, NOW), TD_EUNAUTHORIZED);
    free(tok);
}

static void test_wrong_key(void **state)
{
    (void)state;
    char *tok = sign(OTHER_SECRET, SUB, TID, "owner", NOW, 3600);
    assert_int_equal(verify(tok, NOW), TD_EUNAUTHORIZED);
    free(tok);
    /* a prefix of the right key is another key */
    tok = sign("0123456789abcdef0123456789abcdef", SUB, TID, "owner", NOW, 3600);
    assert_int_equal(verify(tok, NOW), TD_EUNAUTHORIZED);
    free(tok);
}

static void test_alg_none(void **state)
{
    (void)state;
    char payload[256];
    snprintf(payload, sizeof(payload),
             "{\"sub\":\"%s\",\"tid\":\"%s\",\"role\":\"owner\",\"exp\":%ld}", SUB, TID,
             (long)NOW + 3600);
    /* control: the same hand-built token, HS256 and signed, is accepted */
    char *ok = hand_signed(HS256_HEADER, payload, SECRET);
    assert_int_equal(verify(ok, NOW), 0);
    free(ok);

    static const char *const headers[] = {
        "{\"alg\":\"none\"}",
        "{\"alg\":\"none\",\"typ\":\"JWT\"}",
        "{\"alg\":\"None\",\"typ\":\"JWT\"}",
        "{\"typ\":\"JWT\"}",
    };
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        char *tok = hand_token(headers[i], payload, "");
        if (verify(tok, NOW) != TD_EUNAUTHORIZED)
            fail_msg("accepted header %s", headers[i]);
        free(tok);
        /* even with a valid HMAC over this header and payload */
        tok = hand_signed(headers[i], payload, SECRET);
        if (verify(tok, NOW) != TD_EUNAUTHORIZED)
            fail_msg("accepted header %s with a signature", headers[i]);
        free(tok);
    }
}

static void test_other_alg(void **state)
{
    (void)state;
    /* correctly signed with the right secret, but not HS256 */
    char *tok = lib_token(JWT_ALG_HS512, SECRET, SUB, TID, "owner", (long)NOW + 3600);
    assert_int_equal(verify(tok, NOW), TD_EUNAUTHORIZED);
    free(tok);
    tok = lib_token(JWT_ALG_HS384, SECRET, SUB, TID, "owner", (long)NOW + 3600);
    assert_int_equal(verify(tok, NOW), TD_EUNAUTHORIZED);
    free(tok);
}

static void test_tampered(void **state)
{
    (void)state;
    char *good = sign(SECRET, SUB, TID, "member", NOW, 3600);
    char *sig = strdup(strrchr(good, '.') + 1);
    char payload[256];
    snprintf(payload, sizeof(payload),
             "{\"exp\":%ld,\"iat\":%ld,\"role\":\"owner\",\"sub\":\"%s\",\"tid\":\"%s\"}",
             (long)NOW + 3600, (long)NOW, SUB, TID);
    char *tok = hand_token(HS256_HEADER, payload, sig);
    assert_int_equal(verify(tok, NOW), TD_EUNAUTHORIZED);
    free(tok);
    free(sig);

    /* flip one character of the signature */
    tok = strdup(good);
    size_t dot = (size_t)(strrchr(tok, '.') - tok);
    tok[dot + 1] = tok[dot + 1] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(tok, NOW), TD_EUNAUTHORIZED);
    /* drop the signature */
    tok[dot + 1] = '\0';
    assert_int_equal(verify(tok, NOW), TD_EUNAUTHORIZED);
    free(tok);
    free(good);
}

static void test_garbage(void **state)
{
    (void)state;
    static const char *const toks[] = {"",
                                       ".",
                                       "a.b.c",
                                       "abc",
                                       "a.b",
                                       "a.b.c.d",
                                       "e30.e30.",
                                       "\xff\xfe.\x01.x",
                                       "eyJhbGciOiJIUzI1NiJ9.e30."};
    for (size_t i = 0; i < sizeof(toks) / sizeof(toks[0]); i++)
        assert_int_equal(verify(toks[i], NOW), TD_EUNAUTHORIZED);
    assert_int_equal(verify(NULL, NOW), TD_EUNAUTHORIZED);

    /* an oversized token is refused before parsing */
    char *big = malloc(5000);
    memset(big, 'a', 4999);
    big[4999] = '\0';
    assert_int_equal(verify(big, NOW), TD_EUNAUTHORIZED);
    free(big);
}

/*
 * Tokens with an empty header or payload segment. They must be refused, and refused
 * without touching memory out of bounds: run under valgrind this test also checks
 * that such input never reaches a decoder that mishandles empty segments.
 */
static void test_empty_segments(void **state)
{
    (void)state;
    static const char *const toks[] = {"..", "..x", ".e30.x", "eyJhbGciOiJIUzI1NiJ9..",
                                       "eyJhbGciOiJIUzI1NiJ9..x"};
    for (size_t i = 0; i < sizeof(toks) / sizeof(toks[0]); i++)
        assert_int_equal(verify(toks[i], NOW), TD_EUNAUTHORIZED);
}

static void test_bad_claims(void **state)
{
    (void)state;
    long exp = (long)NOW + 3600;
    struct {
        const char *sub, *tid, *role;
    } cases[] = {
        {"not-a-uuid", TID, "owner"},
        {SUB, "acme", "owner"},
        {SUB, TID, "root"},
        {SUB, TID, "Owner"},
        {SUB, TID, ""},
        {NULL, TID, "owner"},
        {SUB, NULL, "owner"},
        {SUB, TID, NULL},
        {SUB "0", TID, "owner"},
        {"0b7e9a52-2d8e-4c4a-9d0f-3f6a1c2b5e1g", TID, "owner"},
        {SUB, TID, "owner-of-everything"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *tok =
            lib_token(JWT_ALG_HS256, SECRET, cases[i].sub, cases[i].tid, cases[i].role, exp);
        if (verify(tok, NOW) != TD_EUNAUTHORIZED)
            fail_msg("accepted case %zu", i);
        free(tok);
    }

    /* claims of the wrong JSON type */
    char payload[256];
    snprintf(payload, sizeof(payload),
             "{\"sub\":\"%s\",\"tid\":\"%s\",\"role\":\"owner\",\"exp\":\"%ld\"}", SUB, TID, exp);
    char *tok = hand_signed(HS256_HEADER, payload, SECRET);
    assert_int_equal(verify(tok, NOW), TD_EUNAUTHORIZED);
    free(tok);
    snprintf(payload, sizeof(payload),
             "{\"sub\":\"%s\",\"tid\":\"%s\",\"role\":[\"owner\"],\"exp\":%ld}", SUB, TID, exp);
    tok = hand_signed(HS256_HEADER, payload, SECRET);
    assert_int_equal(verify(tok, NOW), TD_EUNAUTHORIZED);
    free(tok);
}

static void test_is_uuid(void **state)
{
    (void)state;
    assert_int_equal(auth_is_uuid(SUB), 1);
    assert_int_equal(auth_is_uuid("00000000-0000-0000-0000-000000000000"), 1);
    assert_int_equal(auth_is_uuid("0B7E9A52-2D8E-4C4A-9D0F-3F6A1C2B5E11"), 1);
    assert_int_equal(auth_is_uuid(NULL), 0);
    assert_int_equal(auth_is_uuid(""), 0);
    assert_int_equal(auth_is_uuid("0b7e9a522d8e4c4a9d0f3f6a1c2b5e11"), 0);
    assert_int_equal(auth_is_uuid("0b7e9a52-2d8e-4c4a-9d0f-3f6a1c2b5e1"), 0);
    assert_int_equal(auth_is_uuid(SUB "1"), 0);
    assert_int_equal(auth_is_uuid("0b7e9a52-2d8e-4c4a-9d0f-3f6a1c2b5e1g"), 0);
    assert_int_equal(auth_is_uuid("0b7e9a52_2d8e-4c4a-9d0f-3f6a1c2b5e11"), 0);
    assert_int_equal(auth_is_uuid("0b7e9a5-22d8e-4c4a-9d0f-3f6a1c2b5e11"), 0);
    assert_int_equal(auth_is_uuid("{b7e9a52-2d8e-4c4a-9d0f-3f6a1c2b5e1}"), 0);
    assert_int_equal(auth_is_uuid(" b7e9a52-2d8e-4c4a-9d0f-3f6a1c2b5e11"), 0);
}

static void test_password(void **state)
{
    (void)state;
    char hash[AUTH_HASH_MAX];
    assert_int_equal(auth_password_hash("correct horse battery", hash), 0);
    assert_non_null(strstr(hash, "$argon2id$"));
    assert_int_equal(auth_password_verify(hash, "correct horse battery"), 1);
    assert_int_equal(auth_password_verify(hash, "correct horse batterz"), 0);
    assert_int_equal(auth_password_verify(hash, ""), 0);
    assert_int_equal(auth_password_verify("not a hash", "correct horse battery"), 0);
    /* unknown user: no hash, never a match */
    assert_int_equal(auth_password_verify(NULL, "correct horse battery"), 0);
    assert_int_equal(auth_password_verify(NULL, "tenantd-dummy-password"), 0);

    /* salted: the same password hashes differently */
    char hash2[AUTH_HASH_MAX];
    assert_int_equal(auth_password_hash("correct horse battery", hash2), 0);
    assert_string_not_equal(hash, hash2);
    assert_int_equal(auth_password_verify(hash2, "correct horse battery"), 1);
}

static void test_secret_equal(void **state)
{
    (void)state;
    assert_int_equal(auth_secret_equal("token-abc", "token-abc"), 1);
    assert_int_equal(auth_secret_equal("", ""), 1);
    assert_int_equal(auth_secret_equal("token-abc", "token-abd"), 0);
    assert_int_equal(auth_secret_equal("token-abc", "token-ab"), 0);
    assert_int_equal(auth_secret_equal("token-ab", "token-abc"), 0);
    assert_int_equal(auth_secret_equal("token-abc", ""), 0);
    assert_int_equal(auth_secret_equal("Token-abc", "token-abc"), 0);
}

static int group_setup(void **state)
{
    (void)state;
    return sodium_init() < 0 ? -1 : 0;
}

/* A token verified once is remembered: the remembered answer must stay the answer a full
 * verification gives, whatever comes after it. */
static void test_verified_cache(void **state)
{
    (void)state;
    struct auth_claims c;
    struct auth_jwt *j = auth_jwt_new(SECRET, 1 << 20),
                    *other = auth_jwt_new(OTHER_SECRET, 1 << 20);
    char *tok = sign(SECRET, SUB, TID, "member", NOW, 100);
    assert_int_equal(auth_jwt_check(j, tok, NOW, &c), 0);
    /* the same bytes under another secret (another application): not the cached answer */
    assert_int_equal(auth_jwt_check(other, tok, NOW, &c), TD_EUNAUTHORIZED);
    assert_int_equal(auth_jwt_check(j, tok, NOW + 1, &c), 0);
    assert_string_equal(c.sub, SUB);
    assert_string_equal(c.role, "member");
    /* expiry is checked on every hit */
    assert_int_equal(auth_jwt_check(j, tok, NOW + 100, &c), TD_EUNAUTHORIZED);
    assert_string_equal(c.sub, "");
    assert_int_equal(auth_jwt_check(j, tok, NOW + 99, &c), 0);
    /* one byte changed anywhere: verified in full, and refused */
    size_t len = strlen(tok);
    for (size_t i = 0; i < len; i += 7) {
        char *bad = strdup(tok);
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        if (auth_jwt_check(j, bad, NOW, &c) != TD_EUNAUTHORIZED)
            fail_msg("accepted a token changed at byte %zu", i);
        free(bad);
    }
    /* a prefix of a cached token */
    tok[len - 1] = '\0';
    assert_int_equal(auth_jwt_check(j, tok, NOW, &c), TD_EUNAUTHORIZED);
    free(tok);
    /* many tokens (more than the cache holds): each one still answers right */
    for (int i = 0; i < 20000; i++) {
        char sub[40];
        snprintf(sub, sizeof(sub), "0b7e9a52-2d8e-4c4a-9d0f-%012d", i);
        tok = sign(SECRET, sub, TID, "owner", NOW, 60);
        assert_int_equal(auth_jwt_check(j, tok, NOW, &c), 0);
        assert_string_equal(c.sub, sub);
        assert_int_equal(auth_jwt_check(j, tok, NOW, &c), 0);
        assert_string_equal(c.sub, sub);
        free(tok);
    }
    auth_jwt_free(j);
    auth_jwt_free(other);
}

/* Signed tokens of n clients (heap strings). */
static char **tokens(int n)
{
    char **toks = calloc((size_t)n, sizeof(char *));
    for (int i = 0; i < n; i++) {
        char sub[40];
        snprintf(sub, sizeof(sub), "0b7e9a52-2d8e-4c4a-9d0f-%012d", i);
        toks[i] = sign(SECRET, sub, TID, "owner", NOW, 60);
    }
    return toks;
}

static void tokens_free(char **toks, int n)
{
    for (int i = 0; i < n; i++)
        free(toks[i]);
    free(toks);
}

/* A walk over 20,000 clients' tokens (more than the 16,384 slots the cache once had), twice,
 * in a budget sized for them: the second walk is answered from the cache. With two ways a
 * set, tokens sharing a set evicted each other while the cache had room. */
static void test_verified_cache_walk(void **state)
{
    (void)state;
    struct auth_claims c;
    enum { N = 20000 };
    struct auth_jwt *j = auth_jwt_new(SECRET, (size_t)N * 64 * 3 / 2);
    char **toks = tokens(N);
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < N; i++)
            assert_int_equal(auth_jwt_check(j, toks[i], NOW, &c), 0);
    unsigned long again = auth_jwt_verified(j) - N;
    if (again > N / 20)
        fail_msg("%lu of %d tokens verified again on the second walk", again, N);
    tokens_free(toks, N);
    auth_jwt_free(j);
}

/* The cache holds what its budget holds (64 bytes a token); a full set drops only the token
 * used longest ago, and the claims come back from the cache as they were verified. */
static void test_verified_cache_budget(void **state)
{
    (void)state;
    struct auth_claims c;
    struct td_cache_stats st;
    struct auth_jwt *j = auth_jwt_new(SECRET, 10 << 20);
    auth_jwt_stats(j, &st);
    assert_true(st.budget <= 10 << 20 && st.budget > (10 << 20) - 8 * 64);
    auth_jwt_free(j);
    j = auth_jwt_new(SECRET, 8 * 64); /* one set */
    char **toks = tokens(9);
    for (int i = 0; i < 8; i++)
        assert_int_equal(auth_jwt_check(j, toks[i], NOW, &c), 0);
    for (int i = 1; i < 8; i++) /* token 0 is the one not used since */
        assert_int_equal(auth_jwt_check(j, toks[i], NOW, &c), 0);
    assert_int_equal(auth_jwt_verified(j), 8);
    assert_int_equal(auth_jwt_check(j, toks[8], NOW, &c), 0);
    for (int i = 1; i < 9; i++) {
        assert_int_equal(auth_jwt_check(j, toks[i], NOW, &c), 0);
        char sub[40];
        snprintf(sub, sizeof(sub), "0b7e9a52-2d8e-4c4a-9d0f-%012d", i);
        assert_string_equal(c.sub, sub);
        assert_string_equal(c.tid, TID);
        assert_string_equal(c.role, "owner");
        assert_int_equal(c.exp, NOW + 60);
    }
    assert_int_equal(auth_jwt_verified(j), 9);
    assert_int_equal(auth_jwt_check(j, toks[0], NOW, &c), 0); /* dropped: verified again */
    assert_int_equal(auth_jwt_verified(j), 10);
    auth_jwt_stats(j, &st);
    assert_int_equal(st.evictions, 2);
    tokens_free(toks, 9);
    auth_jwt_free(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_alg_none),
        cmocka_unit_test(test_other_alg),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_empty_segments),
        cmocka_unit_test(test_bad_claims),
        cmocka_unit_test(test_is_uuid),
        cmocka_unit_test(test_password),
        cmocka_unit_test(test_secret_equal),
        cmocka_unit_test(test_verified_cache),
        cmocka_unit_test(test_verified_cache_walk),
        cmocka_unit_test(test_verified_cache_budget),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
