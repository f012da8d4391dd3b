/*
 * jwt.c - signing and verification of user tokens with libjwt, HS256 only.
 */
#include "auth/jwt.h"

#include "core/mem.h"

#include <ctype.h>
#include <errno.h>
#include <jwt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int auth_is_uuid(const char *s)
{
    if (!s || strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

int auth_jwt_sign(const char *secret, const char *sub, const char *tid, const char *role,
                  time_t now, int ttl, char **out)
{
    jwt_t *jwt = NULL;
    int rc = TD_EINTERNAL;
    *out = NULL;
    if (jwt_new(&jwt) != 0)
        goto out;
    if (jwt_add_grant(jwt, "sub", sub) || jwt_add_grant(jwt, "tid", tid) ||
        jwt_add_grant(jwt, "role", role) || jwt_add_grant_int(jwt, "iat", (long)now) ||
        jwt_add_grant_int(jwt, "exp", (long)(now + ttl)))
        goto out;
    if (jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret)))
        goto out;
    *out = jwt_encode_str(jwt);
    if (*out)
        rc = 0;
out:
    jwt_free(jwt);
    return rc;
}

static int copy_claim(jwt_t *jwt, const char *name, char *dst, size_t cap)
{
    const char *v = jwt_get_grant(jwt, name);
    if (!v || strlen(v) >= cap)
        return -1;
    strcpy(dst, v);
    return 0;
}

/* Three dot-separated base64url parts, the first two non-empty. libjwt 1.10 writes past
 * an empty buffer on an empty part, so such tokens never reach it. */
static int well_formed(const char *token)
{
    int part = 0;
    size_t len = 0;
    for (const char *p = token;; p++) {
        if (*p == '.' || *p == '\0') {
            if (part < 2 && len == 0)
                return 0;
            part++;
            len = 0;
            if (*p == '\0')
                break;
            continue;
        }
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
            return 0;
        len++;
    }
    return part == 3;
}

/*
 * Tokens already verified, so that a client's every request does not decode base64, parse
 * two JSON documents and compute an HMAC again. A hit needs the same 128-bit keyed
 * SipHash (crypto_shorthash_siphashx24, random key per object: a client can neither aim
 * collisions nor find one but by chance, 2^-128 a try) of the same token bytes, and the
 * secret is the object's own; exp is checked against now on every hit, so the answer is
 * the one a full verification would give. Keeping the tag instead of the token and the
 * claims as bytes keeps a slot at 64 bytes: 100,000 clients' tokens fit in about 9 MiB.
 *
 * Set-associative, VCACHE_WAYS slots a set, and two sets a token may live in (the first
 * with a free way; when both are full, the slot of the first used longest ago is replaced).
 * (With one set of one or two ways, tokens sharing a set evicted each other while the
 * cache had room; with one set of eight, a walk over 20,000 tokens in room for 30,000 still
 * verified 17% again.) The number of sets comes from the memory budget. One lock per
 * stripe of sets, one taken at a time.
 */
#define VCACHE_WAYS 8
#define VCACHE_STRIPES 64
#define VCACHE_MAX_TOKEN 1024

struct vslot {
    uint64_t tag[2];
    unsigned char sub[16], tid[16]; /* the claims' UUIDs, as bytes */
    int64_t exp;                    /* 0: empty */
    uint32_t used;                  /* recency within the set: larger is more recent */
    uint8_t role;                   /* index in roles[] */
};

static const char *const roles[] = {"member", "admin", "owner"};

struct auth_jwt {
    char *secret;
    struct vslot *slots; /* nsets * VCACHE_WAYS */
    size_t nsets;
    pthread_mutex_t locks[VCACHE_STRIPES];
    atomic_ulong verified;                 /* misses: checks verified in full */
    atomic_ullong hits, evictions, filled; /* filled: empty slots filled */
    unsigned char key[crypto_shorthash_siphashx24_KEYBYTES];
};

struct auth_jwt *auth_jwt_new(const char *secret, size_t budget)
{
    if (sodium_init() < 0) /* idempotent; randombytes_buf needs it */
        abort();
    struct auth_jwt *j = td_xcalloc(1, sizeof(*j));
    j->secret = td_xstrdup(secret);
    j->nsets = budget / (VCACHE_WAYS * sizeof(struct vslot));
    if (j->nsets == 0)
        j->nsets = 1;
    j->slots = td_xcalloc(j->nsets * VCACHE_WAYS, sizeof(*j->slots));
    randombytes_buf(j->key, sizeof(j->key));
    for (int i = 0; i < VCACHE_STRIPES; i++)
        pthread_mutex_init(&j->locks[i], NULL);
    return j;
}

void auth_jwt_free(struct auth_jwt *j)
{
    if (!j)
        return;
    for (int i = 0; i < VCACHE_STRIPES; i++)
        pthread_mutex_destroy(&j->locks[i]);
    sodium_memzero(j->secret, strlen(j->secret));
    free(j->secret);
    free(j->slots);
    free(j);
}

/* The lowercase UUID text u (8-4-4-4-12) as 16 bytes; -1 when it is anything else (such
 * claims are verified every time: the bytes could not give the same text back). */
static int uuid_bytes(const char *u, unsigned char out[16])
{
    static const char hex[] = "0123456789abcdef";
    int k = 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            continue;
        const char *p = memchr(hex, u[i], 16);
        if (!u[i] || !p)
            return -1;
        if (k % 2 == 0)
            out[k / 2] = (unsigned char)((p - hex) << 4);
        else
            out[k / 2] |= (unsigned char)(p - hex);
        k++;
    }
    return u[36] == '\0' ? 0 : -1;
}

static void uuid_text(const unsigned char in[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[in[i] >> 4];
        *p++ = hex[in[i] & 15];
    }
    *p = '\0';
}

/* Set k (0 or 1) of tag: its first slot, and the lock of its stripe. */
static struct vslot *vcache_set(struct auth_jwt *j, const uint64_t tag[2], int k,
                                pthread_mutex_t **m)
{
    size_t set = (size_t)(tag[k] % j->nsets);
    *m = &j->locks[set % VCACHE_STRIPES];
    return &j->slots[set * VCACHE_WAYS];
}

/* Look for tag in one set (its lock held); on a hit fill *c and mark the slot used. */
static int vcache_scan(struct vslot *set, const uint64_t tag[2], time_t now, struct auth_claims *c)
{
    struct vslot *v = NULL;
    uint32_t newest = 0;
    for (int w = 0; w < VCACHE_WAYS; w++) {
        if (set[w].used > newest)
            newest = set[w].used;
        if (set[w].exp && set[w].tag[0] == tag[0] && set[w].tag[1] == tag[1])
            v = &set[w];
    }
    if (!v || v->exp <= (int64_t)now)
        return 0;
    uuid_text(v->sub, c->sub);
    uuid_text(v->tid, c->tid);
    memcpy(c->role, roles[v->role], strlen(roles[v->role]) + 1); /* fits: checked at put */
    c->exp = v->exp;
    v->used = newest + 1;
    return 1;
}

static int vcache_get(struct auth_jwt *j, const uint64_t tag[2], time_t now, struct auth_claims *c)
{
    int hit = 0;
    for (int k = 0; k < 2 && !hit; k++) {
        pthread_mutex_t *m;
        struct vslot *set = vcache_set(j, tag, k, &m);
        pthread_mutex_lock(m);
        hit = vcache_scan(set, tag, now, c);
        pthread_mutex_unlock(m);
    }
    return hit;
}

/* Put in into set k: into an empty way, or (evict set) over the way used longest ago.
 * Returns 1 when it was put. */
static int vcache_fill(struct auth_jwt *j, struct vslot in, int k, int evict)
{
    pthread_mutex_t *m;
    struct vslot *set = vcache_set(j, in.tag, k, &m), *v = &set[0];
    pthread_mutex_lock(m);
    for (int w = 0; w < VCACHE_WAYS; w++) {
        if (set[w].used > in.used)
            in.used = set[w].used;
        if (v->exp && (!set[w].exp || set[w].used < v->used))
            v = &set[w];
    }
    int put = !v->exp || evict;
    if (put) {
        atomic_fetch_add_explicit(v->exp ? &j->evictions : &j->filled, 1, memory_order_relaxed);
        in.used++;
        *v = in;
    }
    pthread_mutex_unlock(m);
    return put;
}

/* Two sets can hold a token (two choices): it goes where a way is free, so that a set
 * overflows, and its tokens evict each other, only when the whole cache is nearly full. */
static void vcache_put(struct auth_jwt *j, const uint64_t tag[2], const struct auth_claims *c)
{
    struct vslot in = {.tag = {tag[0], tag[1]}, .exp = c->exp};
    while (in.role < 2 && strcmp(roles[in.role], c->role) != 0)
        in.role++;
    if (uuid_bytes(c->sub, in.sub) < 0 || uuid_bytes(c->tid, in.tid) < 0 ||
        strcmp(roles[in.role], c->role) != 0 || c->exp <= 0)
        return;
    if (!vcache_fill(j, in, 0, 0) && !vcache_fill(j, in, 1, 0))
        vcache_fill(j, in, 0, 1);
}

int auth_jwt_check(struct auth_jwt *j, const char *token, time_t now, struct auth_claims *c)
{
    size_t len = token ? strlen(token) : 0;
    if (!token || len > VCACHE_MAX_TOKEN) /* rare: verified every time */
        return auth_jwt_verify(j->secret, token, now, c);
    uint64_t tag[2];
    crypto_shorthash_siphashx24((unsigned char *)tag, (const unsigned char *)token, len, j->key);
    if (vcache_get(j, tag, now, c)) {
        atomic_fetch_add_explicit(&j->hits, 1, memory_order_relaxed);
        return 0;
    }
    atomic_fetch_add_explicit(&j->verified, 1, memory_order_relaxed);
    int rc = auth_jwt_verify(j->secret, token, now, c);
    if (rc == 0)
        vcache_put(j, tag, c);
    return rc;
}

unsigned long auth_jwt_verified(struct auth_jwt *j)
{
    return atomic_load_explicit(&j->verified, memory_order_relaxed);
}

void auth_jwt_stats(struct auth_jwt *j, struct td_cache_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->hits = atomic_load(&j->hits);
    out->misses = atomic_load(&j->verified);
    out->evictions = atomic_load(&j->evictions);
    size_t n = j->nsets * VCACHE_WAYS;
    out->bytes = out->budget = n * sizeof(struct vslot);
    out->entries = atomic_load(&j->filled);
}

int auth_jwt_verify(const char *secret, const char *token, time_t now, struct auth_claims *c)
{
    jwt_t *jwt = NULL;
    int rc = TD_EUNAUTHORIZED;
    memset(c, 0, sizeof(*c));
    if (!token || strlen(token) > 4096 || !well_formed(token))
        goto out;
    if (jwt_decode(&jwt, token, (const unsigned char *)secret, (int)strlen(secret)) != 0)
        goto out;
    if (jwt_get_alg(jwt) != JWT_ALG_HS256)
        goto out;
    if (copy_claim(jwt, "sub", c->sub, sizeof(c->sub)) ||
        copy_claim(jwt, "tid", c->tid, sizeof(c->tid)) ||
        copy_claim(jwt, "role", c->role, sizeof(c->role)))
        goto out;
    if (!auth_is_uuid(c->sub) || !auth_is_uuid(c->tid))
        goto out;
    if (strcmp(c->role, "owner") && strcmp(c->role, "admin") && strcmp(c->role, "member"))
        goto out;
    errno = 0;
    long exp = jwt_get_grant_int(jwt, "exp");
    if (errno != 0 || exp <= (long)now)
        goto out;
    c->exp = exp;
    rc = 0;
out:
    jwt_free(jwt);
    if (rc < 0)
        memset(c, 0, sizeof(*c));
    return rc;
}
