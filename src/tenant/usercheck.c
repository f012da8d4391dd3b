/*
 * usercheck.c - remembered user checks (see usercheck.h): a set-associative table (UC_WAYS
 * slots a set, two sets a fact may live in, as many sets as the memory budget holds)
 * keyed by (tenant object generation, user id) with a keyed hash (random key per process:
 * a client cannot aim collisions), one lock per stripe of sets. A full set only evicts.
 */
#include "tenant/usercheck.h"

#include "core/clock.h"
#include "core/mem.h"
#include "core/uuid.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define UC_WAYS 8
#define UC_STRIPES 64

struct uslot {
    unsigned long long gen; /* 0: empty */
    long long at_us;
    unsigned char user[16]; /* the user's UUID as bytes */
    uint32_t used;          /* recency within the set: larger is more recent */
    uint8_t rank;
};

struct tnt_usercheck {
    struct uslot *slots; /* nsets * UC_WAYS */
    size_t nsets;
    pthread_mutex_t locks[UC_STRIPES];
    atomic_ullong hits, misses, evictions, filled;
    unsigned char key[crypto_shorthash_siphashx24_KEYBYTES];
};

struct tnt_usercheck *tnt_usercheck_new(size_t budget)
{
    if (sodium_init() < 0) /* idempotent; randombytes_buf needs it */
        abort();
    struct tnt_usercheck *u = td_xcalloc(1, sizeof(*u));
    u->nsets = budget / (UC_WAYS * sizeof(struct uslot));
    if (u->nsets == 0)
        u->nsets = 1;
    u->slots = td_xcalloc(u->nsets * UC_WAYS, sizeof(*u->slots));
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

/* The two sets (gen, user) may live in, by a 128-bit keyed hash. */
static void sets_of(struct tnt_usercheck *u, unsigned long long gen, const unsigned char user[16],
                    size_t sets[2])
{
    unsigned char in[sizeof(gen) + 16];
    uint64_t h[2];
    memcpy(in, &gen, sizeof(gen));
    memcpy(in + sizeof(gen), user, 16);
    crypto_shorthash_siphashx24((unsigned char *)h, in, sizeof(in), u->key);
    sets[0] = (size_t)(h[0] % u->nsets);
    sets[1] = (size_t)(h[1] % u->nsets);
}

/* Whether set holds a fact that user has at least rank need (its lock held); marks it used. */
static int scan(struct uslot *set, unsigned long long gen, const unsigned char user[16], int need,
                long long now, int ttl_s)
{
    uint32_t newest = 0;
    for (int w = 0; w < UC_WAYS; w++)
        if (set[w].used > newest)
            newest = set[w].used;
    for (int w = 0; w < UC_WAYS; w++) {
        struct uslot *s = &set[w];
        if (s->gen == gen && memcmp(s->user, user, 16) == 0 && s->rank >= need && need > 0 &&
            now - s->at_us < (long long)ttl_s * 1000000) {
            s->used = newest + 1;
            return 1;
        }
    }
    return 0;
}

int tnt_usercheck_ok(struct tnt_usercheck *u, const struct tnt_tenant *t, const char *user,
                     const char *min, int ttl_s)
{
    unsigned char ub[16];
    if (ttl_s <= 0 || !t->gen || td_uuid_parse(user, ub) < 0)
        return 0;
    size_t sets[2];
    sets_of(u, t->gen, ub, sets);
    int need = min ? rank_of(min) : 1, ok = 0;
    long long now = td_now_us();
    for (int k = 0; k < 2 && !ok; k++) {
        pthread_mutex_t *m = &u->locks[sets[k] % UC_STRIPES];
        pthread_mutex_lock(m);
        ok = scan(&u->slots[sets[k] * UC_WAYS], t->gen, ub, need, now, ttl_s);
        pthread_mutex_unlock(m);
    }
    atomic_fetch_add_explicit(ok ? &u->hits : &u->misses, 1, memory_order_relaxed);
    return ok;
}

/* The slot for in in set: mode 0 the user's own, 1 an empty one, 2 the one used longest
 * ago; NULL when none is. */
static struct uslot *slot_for(struct uslot *set, const struct uslot *in, int mode)
{
    struct uslot *v = NULL;
    for (int w = 0; w < UC_WAYS; w++) {
        const struct uslot *s = &set[w];
        if ((mode == 0 && s->gen == in->gen && memcmp(s->user, in->user, 16) == 0) ||
            (mode == 1 && !s->gen) || (mode == 2 && (!v || s->used < v->used)))
            v = &set[w];
    }
    return v;
}

/* Two sets can hold a fact (two choices): it goes where it is already or a slot is free, so
 * that facts evict each other only when the table is nearly full. (With one set of eight, a
 * walk over 100,000 users in room for 150,000 forgot 5% of them.) */
void tnt_usercheck_put(struct tnt_usercheck *u, const struct tnt_tenant *t, const char *user,
                       const char *role)
{
    struct uslot in = {.gen = t->gen, .rank = (uint8_t)rank_of(role), .at_us = td_now_us()};
    if (!t->gen || !in.rank || td_uuid_parse(user, in.user) < 0)
        return;
    size_t sets[2];
    sets_of(u, t->gen, in.user, sets);
    /* the user's own fact in either set (a demotion must replace it), else a free slot in
     * either, else the first set's slot used longest ago */
    for (int pass = 0; pass < 5; pass++) {
        size_t set = sets[pass % 2];
        pthread_mutex_t *m = &u->locks[set % UC_STRIPES];
        pthread_mutex_lock(m);
        struct uslot *v = slot_for(&u->slots[set * UC_WAYS], &in, pass / 2);
        if (v) {
            int same = v->gen == in.gen && memcmp(v->user, in.user, 16) == 0;
            if (!same)
                atomic_fetch_add_explicit(v->gen ? &u->evictions : &u->filled, 1,
                                          memory_order_relaxed);
            for (int w = 0; w < UC_WAYS; w++)
                if (u->slots[set * UC_WAYS + w].used > in.used)
                    in.used = u->slots[set * UC_WAYS + w].used;
            in.used++;
            *v = in;
        }
        pthread_mutex_unlock(m);
        if (v)
            return;
    }
}

void tnt_usercheck_stats(struct tnt_usercheck *u, struct td_cache_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->hits = atomic_load(&u->hits);
    out->misses = atomic_load(&u->misses);
    out->evictions = atomic_load(&u->evictions);
    out->bytes = out->budget = u->nsets * UC_WAYS * sizeof(struct uslot);
    out->entries = atomic_load(&u->filled);
}
