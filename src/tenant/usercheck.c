/*
 * usercheck.c - remembered user checks (see usercheck.h): a direct-mapped table keyed by
 * (tenant object generation, user id) with a keyed hash (random key per process: a
 * client cannot aim collisions), one lock per stripe of slots. A collision only evicts.
 */
#include "tenant/usercheck.h"

#include "core/clock.h"
#include "core/mem.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define UC_SLOTS 65536 /* power of two; 4 MiB */
#define UC_STRIPES 64

struct uslot {
    unsigned long long gen; /* 0: empty */
    char user[37];
    int rank;
    long long at_us;
};

struct tnt_usercheck {
    struct uslot *slots; /* UC_SLOTS */
    pthread_mutex_t locks[UC_STRIPES];
    atomic_ullong hits, misses, evictions;
    unsigned char key[crypto_shorthash_KEYBYTES];
};

struct tnt_usercheck *tnt_usercheck_new(void)
{
    if (sodium_init() < 0) /* idempotent; randombytes_buf needs it */
        abort();
    struct tnt_usercheck *u = td_xcalloc(1, sizeof(*u));
    u->slots = td_xcalloc(UC_SLOTS, sizeof(*u->slots));
    randombytes_buf(u->key, sizeof(u->key));
    for (int i = 0; i < UC_STRIPES; i++)
        pthread_mutex_init(&u->locks[i], NULL);
    return u;
}

void tnt_usercheck_free(struct tnt_usercheck *u)
{
    if (!u)
        return;
    for (int i = 0; i < UC_STRIPES; i++)
        pthread_mutex_destroy(&u->locks[i]);
    free(u->slots);
    free(u);
}

/* member 1 < admin 2 < owner 3 (the order of TNT_USER_CHECK_SQL); 0 for anything else */
static int rank_of(const char *role)
{
    static const char *const ranks[] = {"member", "admin", "owner"};
    for (int i = 0; role && i < 3; i++)
        if (strcmp(role, ranks[i]) == 0)
            return i + 1;
    return 0;
}

static uint64_t slot_of(const struct tnt_usercheck *u, unsigned long long gen, const char *user,
                        size_t len)
{
    unsigned char in[sizeof(gen) + 36];
    uint64_t h;
    memcpy(in, &gen, sizeof(gen));
    memcpy(in + sizeof(gen), user, len);
    crypto_shorthash((unsigned char *)&h, in, sizeof(gen) + len, u->key);
    return h;
}

int tnt_usercheck_ok(struct tnt_usercheck *u, const struct tnt_tenant *t, const char *user,
                     const char *min, int ttl_s)
{
    size_t len = strlen(user);
    if (ttl_s <= 0 || len != 36 || !t->gen)
        return 0;
    uint64_t h = slot_of(u, t->gen, user, len);
    struct uslot *s = &u->slots[h & (UC_SLOTS - 1)];
    pthread_mutex_t *m = &u->locks[h % UC_STRIPES];
    int need = min ? rank_of(min) : 1;
    pthread_mutex_lock(m);
    int ok = s->gen == t->gen && memcmp(s->user, user, 36) == 0 && s->rank >= need && need > 0 &&
             td_now_us() - s->at_us < (long long)ttl_s * 1000000;
    pthread_mutex_unlock(m);
    atomic_fetch_add_explicit(ok ? &u->hits : &u->misses, 1, memory_order_relaxed);
    return ok;
}

void tnt_usercheck_put(struct tnt_usercheck *u, const struct tnt_tenant *t, const char *user,
                       const char *role)
{
    size_t len = strlen(user);
    int rank = rank_of(role);
    if (len != 36 || !t->gen || !rank)
        return;
    uint64_t h = slot_of(u, t->gen, user, len);
    struct uslot *s = &u->slots[h & (UC_SLOTS - 1)];
    pthread_mutex_t *m = &u->locks[h % UC_STRIPES];
    long long at = td_now_us();
    pthread_mutex_lock(m);
    if (s->gen && (s->gen != t->gen || memcmp(s->user, user, 36) != 0))
        atomic_fetch_add_explicit(&u->evictions, 1, memory_order_relaxed);
    s->gen = t->gen;
    memcpy(s->user, user, 36);
    s->user[36] = '\0';
    s->rank = rank;
    s->at_us = at;
    pthread_mutex_unlock(m);
}

void tnt_usercheck_stats(struct tnt_usercheck *u, struct td_cache_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->hits = atomic_load(&u->hits);
    out->misses = atomic_load(&u->misses);
    out->evictions = atomic_load(&u->evictions);
    out->bytes = out->budget = UC_SLOTS * sizeof(struct uslot);
}
