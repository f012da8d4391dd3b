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
 * two JSON documents and compute an HMAC again. A hit needs the same token bytes (the
 * secret is the object's own); exp is checked against now on every hit, so the answer is
 * the one a full verification would give. Two-way set-associative on a keyed SipHash
 * (random key per object: a client cannot aim collisions), the way used longer ago replaced:
 * direct-mapped, two live tokens of one slot evicted each other on every request (with
 * 2,000 tenants 11% of checks missed, each a full verification). One lock per stripe of
 * sets.
 */
#define VCACHE_SLOTS 16384 /* power of two */
#define VCACHE_STRIPES 64
#define VCACHE_MAX_TOKEN 1024

struct vslot {
    uint64_t hash;
    char *token; /* NULL: empty */
    size_t len;
    time_t used; /* last hit or fill: the older way of a set is replaced */
    struct auth_claims claims;
};

struct auth_jwt {
    char *secret;
    struct vslot *slots; /* VCACHE_SLOTS */
    pthread_mutex_t locks[VCACHE_STRIPES];
    atomic_ulong verified; /* misses: checks verified in full */
    atomic_ullong hits, evictions;
    unsigned char key[crypto_shorthash_KEYBYTES];
};

struct auth_jwt *auth_jwt_new(const char *secret)
{
    if (sodium_init() < 0) /* idempotent; randombytes_buf needs it */
        abort();
    struct auth_jwt *j = td_xcalloc(1, sizeof(*j));
    j->secret = td_xstrdup(secret);
    j->slots = td_xcalloc(VCACHE_SLOTS, sizeof(*j->slots));
    randombytes_buf(j->key, sizeof(j->key));
    for (int i = 0; i < VCACHE_STRIPES; i++)
        pthread_mutex_init(&j->locks[i], NULL);
    return j;
}

void auth_jwt_free(struct auth_jwt *j)
{
    if (!j)
        return;
    for (size_t i = 0; i < VCACHE_SLOTS; i++)
        free(j->slots[i].token);
    for (int i = 0; i < VCACHE_STRIPES; i++)
        pthread_mutex_destroy(&j->locks[i]);
    sodium_memzero(j->secret, strlen(j->secret));
    free(j->secret);
    free(j->slots);
    free(j);
}

/* The set of h: two adjacent slots, and the lock of its stripe. */
static struct vslot *vcache_set(struct auth_jwt *j, uint64_t h, pthread_mutex_t **m)
{
    size_t base = (size_t)h & (VCACHE_SLOTS - 2);
    *m = &j->locks[(base >> 1) % VCACHE_STRIPES];
    return &j->slots[base];
}

static int vcache_get(struct auth_jwt *j, uint64_t h, const char *token, size_t len, time_t now,
                      struct auth_claims *c)
{
    pthread_mutex_t *m;
    struct vslot *set = vcache_set(j, h, &m);
    int hit = 0;
    pthread_mutex_lock(m);
    for (int w = 0; w < 2 && !hit; w++) {
        struct vslot *v = &set[w];
        if (v->token && v->hash == h && v->len == len && memcmp(v->token, token, len) == 0 &&
            v->claims.exp > (long)now) {
            *c = v->claims;
            v->used = now;
            hit = 1;
        }
    }
    pthread_mutex_unlock(m);
    return hit;
}

static void vcache_put(struct auth_jwt *j, uint64_t h, const char *token, size_t len, time_t now,
                       const struct auth_claims *c)
{
    pthread_mutex_t *m;
    struct vslot *set = vcache_set(j, h, &m);
    char *copy = td_xmalloc(len);
    memcpy(copy, token, len);
    pthread_mutex_lock(m);
    /* an empty way, else the one used longer ago */
    struct vslot *v = !set[0].token               ? &set[0]
                      : !set[1].token             ? &set[1]
                      : set[1].used < set[0].used ? &set[1]
                                                  : &set[0];
    char *old = v->token;
    if (old)
        atomic_fetch_add_explicit(&j->evictions, 1, memory_order_relaxed);
    v->token = copy;
    v->len = len;
    v->hash = h;
    v->used = now;
    v->claims = *c;
    pthread_mutex_unlock(m);
    free(old);
}

int auth_jwt_check(struct auth_jwt *j, const char *token, time_t now, struct auth_claims *c)
{
    size_t len = token ? strlen(token) : 0;
    if (!token || len > VCACHE_MAX_TOKEN) /* rare: verified every time */
        return auth_jwt_verify(j->secret, token, now, c);
    uint64_t h;
    crypto_shorthash((unsigned char *)&h, (const unsigned char *)token, len, j->key);
    if (vcache_get(j, h, token, len, now, c)) {
        atomic_fetch_add_explicit(&j->hits, 1, memory_order_relaxed);
        return 0;
    }
    atomic_fetch_add_explicit(&j->verified, 1, memory_order_relaxed);
    int rc = auth_jwt_verify(j->secret, token, now, c);
    if (rc == 0)
        vcache_put(j, h, token, len, now, c);
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
