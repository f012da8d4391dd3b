/*
 * htab.c - the intrusive chained hash table (see htab.h).
 */
#include "core/htab.h"

#include "core/mem.h"

#include <stdlib.h>

void td_htab_init(struct td_htab *t, unsigned nbuckets)
{
    unsigned n = 1;
    while (n < nbuckets)
        n <<= 1;
    t->buckets = td_xcalloc(n, sizeof(*t->buckets));
    t->mask = n - 1;
    t->count = 0;
}

void td_htab_cleanup(struct td_htab *t)
{
    free(t->buckets);
    t->buckets = NULL;
    t->count = 0;
}

struct td_hnode *td_htab_find(const struct td_htab *t, unsigned hash, td_htab_eq_fn eq,
                              const void *key)
{
    for (struct td_hnode *n = t->buckets[hash & t->mask]; n; n = n->next)
        if (n->hash == hash && eq(n, key))
            return n;
    return NULL;
}

void td_htab_add(struct td_htab *t, struct td_hnode *n, unsigned hash)
{
    struct td_hnode **b = &t->buckets[hash & t->mask];
    n->hash = hash;
    n->next = *b;
    *b = n;
    t->count++;
}

void td_htab_del(struct td_htab *t, struct td_hnode *n)
{
    for (struct td_hnode **pp = &t->buckets[n->hash & t->mask]; *pp; pp = &(*pp)->next)
        if (*pp == n) {
            *pp = n->next;
            n->next = NULL;
            t->count--;
            return;
        }
}

struct td_hnode *td_htab_pop(struct td_htab *t)
{
    if (t->count == 0)
        return NULL;
    for (unsigned b = 0; b <= t->mask; b++)
        if (t->buckets[b]) {
            struct td_hnode *n = t->buckets[b];
            td_htab_del(t, n);
            return n;
        }
    return NULL;
}
