/*
 * gate.c - work-conserving per-tenant admission (see gate.h for the rules).
 *
 * Tenants are kept while they have requests in the gate, in one hash table; those with
 * parked requests are also on `turns`, the round-robin order of service: a tenant joins at
 * the tail when it first parks and goes back to the tail each time it is served.
 */
#include "http/gate.h"

#include "core/hash.h"
#include "core/htab.h"
#include "core/list.h"
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GATE_BUCKETS 256
#define GATE_KEY 80

struct http_gate_tenant {
    char key[GATE_KEY];
    int running;
    struct http_gate_entry *head, *tail; /* parked, oldest first */
    struct td_link turn;                 /* on gate.turns while it has parked requests */
    struct td_link idle;                 /* on gate.idle while it lingers */
    long long idle_since;
    struct td_hnode node; /* in gate.tenants */
};

struct http_gate {
    int share, alone, slots;
    long long linger_us;
    int running;            /* admitted requests, all tenants */
    struct td_htab tenants; /* struct http_gate_tenant, while it has requests in the gate */
    struct td_list turns;   /* tenants with parked requests, next to be served first */
    struct td_list idle;    /* tenants with nothing in the gate, lingering, oldest first */
};

struct http_gate *http_gate_new(int share, int alone, int slots, long long linger_us)
{
    struct http_gate *g = td_xcalloc(1, sizeof(*g));
    g->share = share;
    g->alone = alone > 0 ? alone : 0;
    if (g->alone > 0 && g->alone < share)
        g->alone = share;
    g->slots = slots > 0 ? slots : 0;
    g->linger_us = linger_us > 0 ? linger_us : 0;
    td_htab_init(&g->tenants, GATE_BUCKETS);
    return g;
}

void http_gate_free(struct http_gate *g)
{
    if (!g)
        return;
    for (struct td_hnode *n; (n = td_htab_pop(&g->tenants));)
        free(TD_CONTAINER_OF(n, struct http_gate_tenant, node));
    td_htab_cleanup(&g->tenants);
    free(g);
}

int http_gate_tenants(const struct http_gate *g)
{
    return (int)g->tenants.count;
}

static int tenant_eq(const struct td_hnode *n, const void *key)
{
    return strcmp(TD_CONTAINER_OF(n, struct http_gate_tenant, node)->key, key) == 0;
}

static struct http_gate_tenant *tenant_get(struct http_gate *g, const char *key)
{
    char k[GATE_KEY];
    snprintf(k, sizeof(k), "%s", key);
    unsigned h = td_hash_str(k);
    struct td_hnode *n = td_htab_find(&g->tenants, h, tenant_eq, k);
    if (n) {
        struct http_gate_tenant *t = TD_CONTAINER_OF(n, struct http_gate_tenant, node);
        td_list_unlink(&g->idle, &t->idle);
        return t;
    }
    struct http_gate_tenant *t = td_xcalloc(1, sizeof(*t));
    memcpy(t->key, k, sizeof(k));
    td_htab_add(&g->tenants, &t->node, h);
    return t;
}

static void tenant_forget(struct http_gate *g, struct http_gate_tenant *t)
{
    td_list_unlink(&g->turns, &t->turn);
    td_list_unlink(&g->idle, &t->idle);
    td_htab_del(&g->tenants, &t->node);
    free(t);
}

/* t has nothing running or parked any more: it lingers, or is forgotten at once. */
static void tenant_settle(struct http_gate *g, struct http_gate_tenant *t, long long now)
{
    if (t->running > 0 || t->head)
        return;
    if (g->linger_us == 0) {
        tenant_forget(g, t);
        return;
    }
    t->idle_since = now;
    td_list_append(&g->idle, &t->idle);
}

/* Forget the tenants that have lingered long enough. */
static void expire(struct http_gate *g, long long now)
{
    while (g->idle.head) {
        struct http_gate_tenant *t = TD_CONTAINER_OF(g->idle.head, struct http_gate_tenant, idle);
        if (now - t->idle_since < g->linger_us)
            return;
        tenant_forget(g, t);
    }
}

/*
 * May t run one more request now? Within the total, and under its share, or, when t is the
 * only tenant in the gate, beyond it up to `alone`: the share holds a tenant back only for
 * the sake of another tenant, never for an idle loop.
 */
static int may_run(const struct http_gate *g, const struct http_gate_tenant *t)
{
    if (g->slots > 0 && g->running >= g->slots)
        return 0;
    if (t->running < g->share)
        return 1;
    return g->tenants.count <= 1 && (g->alone == 0 || t->running < g->alone);
}

static void admit(struct http_gate *g, struct http_gate_entry *e)
{
    e->admitted = 1;
    e->tenant->running++;
    g->running++;
}

/* The next tenant whose turn it is: the first in round-robin order that may run. A tenant
 * over its share is passed over while another tenant is in the gate, so a newcomer parked
 * behind a flood is served at the next free slot. */
static struct http_gate_tenant *next_turn(const struct http_gate *g)
{
    for (struct td_link *l = g->turns.head; l; l = l->next) {
        struct http_gate_tenant *t = TD_CONTAINER_OF(l, struct http_gate_tenant, turn);
        if (may_run(g, t))
            return t;
    }
    return NULL;
}

/* Admit parked requests while some tenant's turn allows, one per turn; returns them. */
static struct http_gate_entry *hand_on(struct http_gate *g)
{
    struct http_gate_entry *out = NULL, **tail = &out;
    for (struct http_gate_tenant *t; (t = next_turn(g));) {
        struct http_gate_entry *e = t->head;
        t->head = e->next;
        if (!t->head)
            t->tail = NULL;
        e->next = NULL;
        admit(g, e);
        if (t->head)
            td_list_append(&g->turns, &t->turn); /* back of the line */
        else
            td_list_unlink(&g->turns, &t->turn);
        *tail = e;
        tail = &e->next;
    }
    return out;
}

int http_gate_enter(struct http_gate *g, struct http_gate_entry *e, const char *key,
                    long long now_us)
{
    e->next = NULL;
    e->admitted = 0;
    e->tenant = NULL;
    if (g->share <= 0) {
        e->admitted = 1; /* no gate: runs, holds nothing */
        return 0;
    }
    expire(g, now_us);
    struct http_gate_tenant *t = tenant_get(g, key);
    e->tenant = t;
    if (!t->head && may_run(g, t)) {
        admit(g, e);
        return 0;
    }
    if (t->tail)
        t->tail->next = e;
    else
        t->head = e;
    t->tail = e;
    if (!t->turn.linked)
        td_list_append(&g->turns, &t->turn);
    return 1;
}

struct http_gate_entry *http_gate_leave(struct http_gate *g, struct http_gate_entry *e,
                                        long long now_us)
{
    struct http_gate_tenant *t = e->tenant;
    if (!t || !e->admitted) {
        e->admitted = 0;
        return NULL;
    }
    e->admitted = 0;
    e->tenant = NULL;
    t->running--;
    g->running--;
    tenant_settle(g, t, now_us);
    expire(g, now_us);
    return hand_on(g);
}

struct http_gate_entry *http_gate_drop(struct http_gate *g, struct http_gate_entry *e,
                                       long long now_us)
{
    struct http_gate_tenant *t = e->tenant;
    if (!t || e->admitted)
        return http_gate_leave(g, e, now_us);
    struct http_gate_entry **pp = &t->head, *prev = NULL;
    while (*pp && *pp != e) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = e->next;
        if (t->tail == e)
            t->tail = prev;
    }
    e->next = NULL;
    e->tenant = NULL;
    if (!t->head)
        td_list_unlink(&g->turns, &t->turn);
    tenant_settle(g, t, now_us);
    expire(g, now_us);
    /* the last request of another tenant may have been what held the others back */
    return hand_on(g);
}
