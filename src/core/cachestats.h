/*
 * cachestats.h - what a bounded in-memory cache reports (GET /metrics shows it): how often
 * it answered, how often it had to ask the database or verify again, what it dropped to
 * make room, and the memory it holds against its budget.
 */
#ifndef TD_CORE_CACHESTATS_H
#define TD_CORE_CACHESTATS_H

#include <stddef.h>

struct td_cache_stats {
    unsigned long long hits;      /* answered from memory */
    unsigned long long misses;    /* had to load (a statement) or verify in full */
    unsigned long long evictions; /* live entries dropped to make room (not expiry) */
    size_t entries;               /* held now */
    size_t bytes;                 /* memory the entries hold now (allocator overhead included) */
    size_t budget;                /* the most bytes it may hold; 0: not bounded by memory */
};

#endif
