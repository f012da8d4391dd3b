/*
 * htab.h - the one in-memory hash table: intrusive and chained, a fixed power-of-two number
 * of buckets chosen by the owner, no locking (the owner locks, or shards and locks each
 * shard). Embed a struct td_hnode in the element, hash its key with core/hash.h (or a
 * keyed hash for keys a client picks) and get back with TD_CONTAINER_OF (core/list.h).
 * The table never allocates nodes and never frees them: elements belong to the owner.
 */
#ifndef TD_CORE_HTAB_H
#define TD_CORE_HTAB_H

#include "core/list.h"

#include <stddef.h>

struct td_hnode {
    struct td_hnode *next;
    unsigned hash;
};

struct td_htab {
    struct td_hnode **buckets;
    unsigned mask; /* buckets - 1 */
    size_t count;
};

/* nbuckets is rounded up to a power of two. Allocation failure aborts. */
void td_htab_init(struct td_htab *t, unsigned nbuckets);
/* Frees the buckets, not the elements (pop them first). */
void td_htab_cleanup(struct td_htab *t);

/* Key comparison: 1 when n's key is key. */
typedef int (*td_htab_eq_fn)(const struct td_hnode *n, const void *key);

/* The node filed under hash whose key eq() matches, or NULL. */
struct td_hnode *td_htab_find(const struct td_htab *t, unsigned hash, td_htab_eq_fn eq,
                              const void *key);
/* File n under hash (duplicates are the caller's to avoid). */
void td_htab_add(struct td_htab *t, struct td_hnode *n, unsigned hash);
/* Unlink n, which must be in t. */
void td_htab_del(struct td_htab *t, struct td_hnode *n);
/* Unlink and return any node, or NULL when t is empty (to clear it). */
struct td_hnode *td_htab_pop(struct td_htab *t);

#endif
