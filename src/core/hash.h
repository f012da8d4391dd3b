/*
 * hash.h - FNV-1a, the one non-keyed hash: for in-memory tables whose keys clients cannot
 * choose freely (tenant ids and slugs, tenant keys of the HTTP gate, statement texts).
 * Keys a client picks go through a keyed hash instead (crypto_shorthash).
 */
#ifndef TD_CORE_HASH_H
#define TD_CORE_HASH_H

#include <stdint.h>

/* 32-bit FNV-1a of a NUL-terminated string. */
static inline unsigned td_hash_str(const char *s)
{
    unsigned h = 2166136261u;
    for (const char *p = s; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
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

/* Rendezvous (highest random weight) hashing: which of n places (0..n-1) key belongs to.
 * Every key spreads evenly; when place n-1 is added or removed, only the keys that go
 * to it move, the others stay where they were. n >= 1. */
static inline unsigned td_rendezvous(const char *key, unsigned n)
{
    uint64_t base = td_hash64_str(TD_HASH64_INIT, key), best = 0;
    unsigned pick = 0;
    for (unsigned i = 0; i < n; i++) {
        /* the place's weight for key: FNV alone mixes the last bytes too little */
        uint64_t h = base ^ ((uint64_t)(i + 1) * 0x9e3779b97f4a7c15ULL);
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdULL;
        h ^= h >> 33;
        h *= 0xc4ceb9fe1a85ec53ULL;
        h ^= h >> 33;
        if (i == 0 || h > best) {
            best = h;
            pick = i;
        }
    }
    return pick;
}

#endif
