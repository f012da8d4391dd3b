/*
 * hash.h - FNV-1a, the one non-keyed hash: for in-memory tables whose keys clients cannot
 * choose freely (tenant ids and slugs, tenant keys of the HTTP gate, statement texts).
 * Keys a client picks go through a keyed hash instead (crypto_shorthash).
 */
#ifndef TD_CORE_HASH_H
#define TD_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

/* 32-bit FNV-1a of a NUL-terminated string. */
static inline unsigned td_hash_str(const char *s)
{
    unsigned h = 2166136261u;
    for (const char *p = s; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h;
}

/* 32-bit FNV-1a of n bytes (a binary key such as a UUID's 16). */
static inline unsigned td_hash_bytes(const void *key, size_t n)
{
    const unsigned char *p = key;
    unsigned h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

#define TD_HASH64_INIT 1469598103934665603ULL

/* 64-bit FNV-1a: continue h over the NUL-terminated string s (start from TD_HASH64_INIT). */
static inline uint64_t td_hash64_str(uint64_t h, const char *s)
{
    for (const char *p = s; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

/* Continue h over one byte (a separator between two strings). */
static inline uint64_t td_hash64_byte(uint64_t h, unsigned char b)
{
    return (h ^ b) * 1099511628211ULL;
}

/* Rendezvous (highest random weight) hashing: place's weight for a key whose
 * td_hash64_str is keyhash. A key belongs to the place of highest weight; ranking the
 * places by weight gives its second choice, third, and so on. */
static inline uint64_t td_rendezvous_weight(uint64_t keyhash, unsigned place)
{
    /* FNV alone mixes the last bytes too little: finish with a 64-bit mixer */
    uint64_t h = keyhash ^ ((uint64_t)(place + 1) * 0x9e3779b97f4a7c15ULL);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* The place (0..n-1) of highest weight for keyhash. n >= 1. */
static inline unsigned td_rendezvous_best(uint64_t keyhash, unsigned n)
{
    uint64_t best = 0;
    unsigned pick = 0;
    for (unsigned i = 0; i < n; i++) {
        uint64_t h = td_rendezvous_weight(keyhash, i);
        if (i == 0 || h > best) {
            best = h;
            pick = i;
        }
    }
    return pick;
}

/* Which of n places (0..n-1) key belongs to. Every key spreads evenly; when place n-1 is
 * added or removed, only the keys that go to it move, the others stay where they were.
 * n >= 1. */
static inline unsigned td_rendezvous(const char *key, unsigned n)
{
    return td_rendezvous_best(td_hash64_str(TD_HASH64_INIT, key), n);
}

#endif
