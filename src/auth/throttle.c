/*
 * throttle.c - failed-login counters in a set-associative table: a key hashes (keyed
 * SipHash, so clients cannot aim at one set) to a set of WAYS slots; a new key takes a free
 * or expired slot, else the one whose window opened first. Memory is fixed at creation.
 */
#include "auth/throttle.h"

#include "core/mem.h"

#include <ctype.h>
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <string.h>

#define WAYS 8
#define LOCKS 64

struct slot {
    uint64_t key; /* 0: free */
    time_t since; /* the window's first failure */
    unsigned failures;
};

struct auth_throttle {
    size_t nsets;
    unsigned per_email, per_addr;
    struct slot *slots; /* nsets * WAYS */
    unsigned char hash_key[crypto_shorthash_KEYBYTES];
    pthread_mutex_t locks[LOCKS];
};

struct auth_throttle *auth_throttle_new(size_t slots, unsigned per_email, unsigned per_addr)
{
    struct auth_throttle *t = td_xcalloc(1, sizeof(*t));
    t->per_email = per_email ? per_email : AUTH_THROTTLE_PER_EMAIL;
    t->per_addr = per_addr ? per_addr : AUTH_THROTTLE_PER_ADDR;
    if (slots == 0)
        slots = AUTH_THROTTLE_SLOTS;
    t->nsets = (slots + WAYS - 1) / WAYS;
    t->slots = td_xcalloc(t->nsets * WAYS, sizeof(*t->slots));
    randombytes_buf(t->hash_key, sizeof(t->hash_key));
    for (int i = 0; i < LOCKS; i++)
        pthread_mutex_init(&t->locks[i], NULL);
    return t;
}

void auth_throttle_free(struct auth_throttle *t)
{
    if (!t)
        return;
    for (int i = 0; i < LOCKS; i++)
        pthread_mutex_destroy(&t->locks[i]);
    free(t->slots);
    free(t);
}

/* kind 'e': tenant + email ignoring ASCII case; kind 'a': the client address. */
static uint64_t key_of(const struct auth_throttle *t, char kind, const char *a, const char *b)
{
    char buf[512];
    size_t n = 0;
    buf[n++] = kind;
    for (const char *p = a; *p && n < sizeof(buf) - 2; p++)
        buf[n++] = *p;
    buf[n++] = '\0';
    for (const char *p = b; p && *p && n < sizeof(buf); p++)
        buf[n++] = (char)tolower((unsigned char)*p);
    uint64_t h;
    crypto_shorthash((unsigned char *)&h, (const unsigned char *)buf, n, t->hash_key);
    return h ? h : 1;
}

static int live(const struct slot *s, time_t now)
{
    return s->key && now - s->since < AUTH_THROTTLE_WINDOW_S;
}

/* The slot of key in its set, or NULL; with the set's lock held. */
static struct slot *find(struct auth_throttle *t, uint64_t key, time_t now)
{
    struct slot *set = &t->slots[(key % t->nsets) * WAYS];
    for (int i = 0; i < WAYS; i++)
        if (set[i].key == key && live(&set[i], now))
            return &set[i];
    return NULL;
}

static pthread_mutex_t *lock_of(struct auth_throttle *t, uint64_t key)
{
    return &t->locks[(key % t->nsets) % LOCKS];
}

/* Seconds left of key's window when it has reached limit, else 0. */
static long blocked(struct auth_throttle *t, uint64_t key, unsigned limit, time_t now)
{
    pthread_mutex_t *m = lock_of(t, key);
    pthread_mutex_lock(m);
    struct slot *s = find(t, key, now);
    long left = s && s->failures >= limit ? (long)(s->since + AUTH_THROTTLE_WINDOW_S - now) : 0;
    pthread_mutex_unlock(m);
    return left;
}

static void count(struct auth_throttle *t, uint64_t key, time_t now)
{
    pthread_mutex_t *m = lock_of(t, key);
    pthread_mutex_lock(m);
    struct slot *s = find(t, key, now);
    if (!s) { /* a free or expired slot, else the set's oldest window */
        struct slot *set = &t->slots[(key % t->nsets) * WAYS];
        s = &set[0];
        for (int i = 0; i < WAYS && live(s, now); i++)
            if (!live(&set[i], now) || set[i].since < s->since)
                s = &set[i];
        s->key = key;
        s->since = now;
        s->failures = 0;
    }
    s->failures++;
    pthread_mutex_unlock(m);
}

long auth_throttle_check(struct auth_throttle *t, const char *tenant_id, const char *email,
                         const char *addr, time_t now)
{
    long a = blocked(t, key_of(t, 'e', tenant_id, email), t->per_email, now);
    long b = blocked(t, key_of(t, 'a', addr, NULL), t->per_addr, now);
    long left = a > b ? a : b;
    return left > 0 ? left : 0;
}

void auth_throttle_failed(struct auth_throttle *t, const char *tenant_id, const char *email,
                          const char *addr, time_t now)
{
    count(t, key_of(t, 'e', tenant_id, email), now);
    count(t, key_of(t, 'a', addr, NULL), now);
}

void auth_throttle_passed(struct auth_throttle *t, const char *tenant_id, const char *email,
                          time_t now)
{
    uint64_t key = key_of(t, 'e', tenant_id, email);
    pthread_mutex_t *m = lock_of(t, key);
    pthread_mutex_lock(m);
    struct slot *s = find(t, key, now);
    if (s)
        s->key = 0;
    pthread_mutex_unlock(m);
}
