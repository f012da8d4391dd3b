/*
 * pool.c - admission-limited, fair connection pool of one server (see pool.h for the rules).
 *
 * Everything is guarded by one mutex. Each waiter sleeps on its own condition variable;
 * after any change, pick() names the single waiter that may proceed and only that one
 * is woken, so the order of service does not depend on wake-up order and a release
 * does not stampede every waiting thread.
 */
#include "db/pool.h"

#include "core/clock.h"
#include "core/hash.h"
#include "core/list.h"
#include "core/mem.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TENANT_BUCKETS 2048
#define SUB_BUCKETS 1024    /* per-database pools by name: found in O(1) on every acquire */
#define TENANT_RECORDS 1024 /* idle tenants whose last service is remembered */

struct db_slot {
    void *conn;
    struct db_subpool *sub;
    struct db_slot *next;
    unsigned long long since; /* when it was lent (now_us) */
    unsigned long long *seen; /* open-addressed set of tenant hashes */
    int nseen;
    int place;     /* default database: its place (affinity), else -1 */
    unsigned uses; /* releases, for the memory probe's rhythm */
    int measured;  /* its backend's memory could be measured: recycle by that alone */
};

void *db_slot_conn(const struct db_slot *s)
{
    return s->conn;
}

int db_slot_place(const struct db_slot *s)
{
    return s->place;
}

struct db_subpool {
    char *database; /* NULL: default database */
    struct db_slot *idle;
    int open, in_use;
    unsigned long long last_used;
    unsigned long long hold_us; /* average time one use of a connection lasts here */
    unsigned long long last_us; /* now_us of its last acquire or release */
    struct db_subpool *next;
    struct db_subpool *hnext; /* chain in sub_hash */
};

struct tenant_use {
    char *key;
    int in_use, waiting;
    unsigned long long mark; /* pick() pass that last saw this tenant's first waiter */
    unsigned long long last_served;
    struct tenant_use *next; /* hash chain */
    struct td_link idle;     /* on the idle list while neither in use nor waiting */
};

struct waiter {
    pthread_cond_t cv;
    const char *database;
    struct tenant_use *tenant; /* NULL: not subject to fairness */
    unsigned long long arrival;
    struct waiter *next;
};

struct db_pool {
    struct db_pool_cfg cfg;
    struct db_pool_ops ops;
    void *ctx;
    pthread_mutex_t mu;
    pthread_condattr_t cattr;
    int open, active, max_open, cap_per_tenant, ndbs;
    struct db_subpool main;
    struct db_subpool *dbs;                     /* per-database pools */
    struct db_subpool *sub_hash[SUB_BUCKETS];   /* the same, by name */
    struct tenant_use *tenants[TENANT_BUCKETS]; /* hash table of tenant records */
    struct td_list idle;                        /* idle records, oldest first */
    int ntenants;
    unsigned long long forgotten; /* latest last_served of a dropped idle record */
    struct waiter *waiters;       /* arrival order */
    int nwaiting;
    unsigned long long clock, pass;
    long long hits, misses, evictions, opened;
    long long affine, recycled_memory, recycled_tenants;
    unsigned long long open_us, hold_us; /* measured averages (EWMA, 1/8) */
    int nplaces;                         /* places of the default database: the budget */
    unsigned char *place_used;
};

struct db_pool *db_pool_new(const struct db_pool_cfg *cfg, const struct db_pool_ops *ops, void *ctx)
{
    struct db_pool *p = td_xcalloc(1, sizeof(*p));
    p->cfg = *cfg;
    p->ops = *ops;
    p->ctx = ctx;
    p->max_open = cfg->max_open > 0 ? cfg->max_open : cfg->budget;
    p->open_us = cfg->open_cost_us > 0 ? (unsigned long long)cfg->open_cost_us : 10000;
    /* the default database never has more connections than statements in flight: one
     * opens only when none is idle */
    p->nplaces = cfg->budget > 0 ? cfg->budget : 1;
    p->place_used = td_xcalloc((size_t)p->nplaces, 1);
    p->cap_per_tenant = cfg->budget * cfg->share_pct / 100;
    if (p->cap_per_tenant < 1)
        p->cap_per_tenant = 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_init(&p->cattr);
    pthread_condattr_setclock(&p->cattr, CLOCK_MONOTONIC);
    return p;
}

static unsigned long long now_us(struct db_pool *p)
{
    if (p->ops.now_us)
        return p->ops.now_us(p->ctx);
    return (unsigned long long)td_now_us();
}

static unsigned long long ewma(unsigned long long avg, unsigned long long sample)
{
    return (avg * 7 + sample) / 8;
}

static void slot_free(struct db_slot *s)
{
    free(s->seen);
    free(s);
}

/* Close the idle connections of sub; caller holds no lock (ops may block). */
static void close_list(struct db_pool *p, struct db_slot *s)
{
    while (s) {
        struct db_slot *next = s->next;
        p->ops.close(p->ctx, s->conn);
        slot_free(s);
        s = next;
    }
}

void db_pool_free(struct db_pool *p)
{
    if (!p)
        return;
    close_list(p, p->main.idle);
    struct db_subpool *d = p->dbs;
    while (d) {
        struct db_subpool *next = d->next;
        close_list(p, d->idle);
        free(d->database);
        free(d);
        d = next;
    }
    for (int b = 0; b < TENANT_BUCKETS; b++) {
        struct tenant_use *t = p->tenants[b];
        while (t) {
            struct tenant_use *next = t->next;
            free(t->key);
            free(t);
            t = next;
        }
    }
    pthread_mutex_destroy(&p->mu);
    pthread_condattr_destroy(&p->cattr);
    free(p->place_used);
    free(p);
}

static struct db_subpool *find_sub(struct db_pool *p, const char *database)
{
    if (!database)
        return &p->main;
    for (struct db_subpool *d = p->sub_hash[td_hash_str(database) % SUB_BUCKETS]; d; d = d->hnext)
        if (strcmp(d->database, database) == 0)
            return d;
    return NULL;
}

/* Take d off the list and the hash (the caller frees it). */
static void sub_unlink(struct db_pool *p, struct db_subpool *d)
{
    for (struct db_subpool **pp = &p->dbs; *pp; pp = &(*pp)->next)
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    for (struct db_subpool **pp = &p->sub_hash[td_hash_str(d->database) % SUB_BUCKETS]; *pp;
         pp = &(*pp)->hnext)
        if (*pp == d) {
            *pp = d->hnext;
            break;
        }
    p->ndbs--;
}

/* The record of tenant key, created when missing; taken off the idle list (the caller is
 * about to count a use or a wait). */
static struct tenant_use *tenant_get(struct db_pool *p, const char *key)
{
    struct tenant_use **head = &p->tenants[td_hash_str(key) % TENANT_BUCKETS];
    for (struct tenant_use *t = *head; t; t = t->next)
        if (strcmp(t->key, key) == 0) {
            td_list_unlink(&p->idle, &t->idle);
            return t;
        }
    struct tenant_use *t = td_xcalloc(1, sizeof(*t));
    t->key = td_xstrdup(key);
    /* a tenant whose record was dropped ranks as served when the newest dropped one was:
     * forgetting history must not move it ahead of tenants served since */
    t->last_served = p->forgotten;
    t->next = *head;
    *head = t;
    p->ntenants++;
    return t;
}

/* After t's use or wait ended: an idle record joins the idle list (newest last), and past
 * TENANT_RECORDS records the idle one that went idle longest ago is dropped. O(1). */
static void tenant_settle(struct db_pool *p, struct tenant_use *t)
{
    if (!t->idle.linked && !t->in_use && !t->waiting)
        td_list_append(&p->idle, &t->idle);
    if (p->ntenants <= TENANT_RECORDS || !p->idle.head)
        return;
    struct tenant_use *v = TD_CONTAINER_OF(p->idle.head, struct tenant_use, idle);
    td_list_unlink(&p->idle, &v->idle);
    for (struct tenant_use **pp = &p->tenants[td_hash_str(v->key) % TENANT_BUCKETS]; *pp;
         pp = &(*pp)->next)
        if (*pp == v) {
            *pp = v->next;
            break;
        }
    if (v->last_served > p->forgotten)
        p->forgotten = v->last_served;
    free(v->key);
    free(v);
    p->ntenants--;
}

/* Least recently used per-database pool with nothing in use, other than keep. */
static struct db_subpool *evictable_sub(struct db_pool *p, const struct db_subpool *keep)
{
    struct db_subpool *best = NULL;
    for (struct db_subpool *d = p->dbs; d; d = d->next)
        if (d != keep && d->in_use == 0 && (!best || d->last_used < best->last_used))
            best = d;
    return best;
}

/* Some idle connection anywhere but in keep, oldest pool first. */
static struct db_subpool *sub_with_idle(struct db_pool *p, const struct db_subpool *keep)
{
    struct db_subpool *best = NULL;
    if (p->main.idle && keep != &p->main)
        best = &p->main;
    for (struct db_subpool *d = p->dbs; d; d = d->next)
        if (d != keep && d->idle && (!best || d->last_used < best->last_used))
            best = d;
    return best;
}

/*
 * Open another connection to sub's database (all of its connections in use) for w, or
 * wait for one? Open when the expected wait, w's place in that database's queue times
 * the average use of a connection there shared by its open connections, is at least the
 * measured cost of an open: a request waits about one statement rather than pay a fork
 * and a cold catalog, and a second connection comes only under sustained queueing.
 */
static int worth_opening(struct db_pool *p, const struct db_subpool *sub, const struct waiter *w)
{
    unsigned long long place = 1;
    for (const struct waiter *x = p->waiters; x && x != w; x = x->next)
        if (x->database && strcmp(x->database, w->database) == 0)
            place++;
    return sub->hold_us * place / (unsigned long long)sub->open >= p->open_us;
}

/* Can w be served now, possibly by opening a connection or evicting idle ones? */
static int available(struct db_pool *p, const struct waiter *w)
{
    if (p->active >= p->cfg.budget)
        return 0; /* admission: statements in flight are bounded, connections are not */
    struct db_subpool *sub = find_sub(p, w->database);
    if (sub && sub->idle)
        return 1;
    /* a hot database's connection is busy: never evict another database's to open one */
    if (sub && sub != &p->main && sub->open > 0)
        return p->open < p->max_open && worth_opening(p, sub, w);
    if (!sub && p->ndbs >= p->cfg.max_dbs && !evictable_sub(p, NULL))
        return 0;
    return p->open < p->max_open || sub_with_idle(p, sub) != NULL;
}

/* w's tenant holds its share or more (a waiter of no tenant never does). */
static int over_share(const struct db_pool *p, const struct waiter *w)
{
    return w->tenant && w->tenant->in_use >= p->cap_per_tenant;
}

/* Does w go before best? A tenant under its share before one at or over it, then the
 * tenant served least recently. The share therefore holds a tenant back only while another
 * tenant waits: alone, it takes every connection the budget allows (work-conserving). */
static int goes_before(const struct db_pool *p, const struct waiter *w, const struct waiter *best)
{
    int wo = over_share(p, w), bo = over_share(p, best);
    if (wo != bo)
        return bo;
    unsigned long long ls = w->tenant ? w->tenant->last_served : 0;
    unsigned long long bs = best->tenant ? best->tenant->last_served : 0;
    return ls < bs;
}

/* The one waiter allowed to proceed now, or NULL. */
static struct waiter *pick(struct db_pool *p)
{
    struct waiter *best = NULL;
    unsigned long long pass = ++p->pass;
    for (struct waiter *w = p->waiters; w; w = w->next) {
        struct tenant_use *t = w->tenant;
        if (t) {
            /* only the first waiter of each tenant competes: FIFO within a tenant */
            if (t->mark == pass)
                continue;
            t->mark = pass;
        }
        if (!available(p, w))
            continue;
        if (!best || goes_before(p, w, best))
            best = w;
    }
    return best;
}

/* Wake the waiter that may proceed now, if any. Caller holds the mutex. */
static void wake_next(struct db_pool *p)
{
    struct waiter *w = pick(p);
    if (w)
        pthread_cond_signal(&w->cv);
}

static void waiter_remove(struct db_pool *p, struct waiter *w)
{
    for (struct waiter **pp = &p->waiters; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    p->nwaiting--;
    if (w->tenant)
        w->tenant->waiting--;
}

/* Unlink the idle default-database connection whose place tenant th (td_hash64_str of
 * its key; 0: no tenant, the first idle one) ranks highest. */
static struct db_slot *take_idle_main(struct db_pool *p, uint64_t th)
{
    struct db_slot **best = &p->main.idle;
    if (th && (*best)->place >= 0) {
        uint64_t bw = td_rendezvous_weight(th, (unsigned)(*best)->place);
        for (struct db_slot **pp = &(*best)->next; *pp; pp = &(*pp)->next) {
            uint64_t w = (*pp)->place >= 0 ? td_rendezvous_weight(th, (unsigned)(*pp)->place) : 0;
            if (w > bw) {
                bw = w;
                best = pp;
            }
        }
    }
    struct db_slot *s = *best;
    *best = s->next;
    return s;
}

/* The free place tenant th ranks highest (th 0: the lowest free one), now taken; -1 when
 * none is free (cannot happen: the default database opens only when none is idle). */
static int place_take(struct db_pool *p, uint64_t th)
{
    int best = -1;
    uint64_t bw = 0;
    for (int i = 0; i < p->nplaces; i++) {
        if (p->place_used[i])
            continue;
        uint64_t w = th ? td_rendezvous_weight(th, (unsigned)i) : 0;
        if (best < 0 || w > bw) {
            best = i;
            bw = w;
        }
    }
    if (best >= 0)
        p->place_used[best] = 1;
    return best;
}

static void place_free(struct db_pool *p, struct db_slot *s)
{
    if (s->place >= 0)
        p->place_used[s->place] = 0;
    s->place = -1;
}

/* Count a default-database use that got the tenant's first place of all. */
static void note_affinity(struct db_pool *p, const struct db_slot *s, uint64_t th)
{
    if (th && s->place >= 0 && (unsigned)s->place == td_rendezvous_best(th, (unsigned)p->nplaces))
        p->affine++;
}

/*
 * Take a connection for w (pick() chose it, so one is available). Returns the slot, with
 * conn NULL when a new connection must be opened; *victims gets connections to close.
 */
static struct db_slot *take(struct db_pool *p, const char *database, uint64_t th,
                            struct db_slot **victims, unsigned long long now)
{
    struct db_subpool *sub = find_sub(p, database);
    *victims = NULL;
    if (sub && sub->idle) {
        struct db_slot *s = sub == &p->main ? take_idle_main(p, th) : sub->idle;
        if (sub != &p->main)
            sub->idle = s->next;
        note_affinity(p, s, th);
        sub->in_use++;
        sub->last_used = ++p->clock;
        sub->last_us = now;
        p->active++;
        p->hits++;
        return s;
    }
    p->misses++;
    if (!sub) {
        if (p->ndbs >= p->cfg.max_dbs) {
            struct db_subpool *old = evictable_sub(p, NULL);
            sub_unlink(p, old);
            p->open -= old->open;
            p->evictions += old->open;
            *victims = old->idle;
            free(old->database);
            free(old);
        }
        sub = td_xcalloc(1, sizeof(*sub));
        sub->database = td_xstrdup(database);
        sub->hold_us = p->hold_us;
        sub->next = p->dbs;
        p->dbs = sub;
        struct db_subpool **head = &p->sub_hash[td_hash_str(database) % SUB_BUCKETS];
        sub->hnext = *head;
        *head = sub;
        p->ndbs++;
    }
    if (p->open >= p->max_open) {
        struct db_subpool *donor = sub_with_idle(p, sub);
        struct db_slot *v = donor->idle;
        donor->idle = v->next;
        donor->open--;
        place_free(p, v);
        p->open--;
        p->evictions++;
        v->next = *victims;
        *victims = v;
    }
    p->open++;
    p->active++;
    sub->open++;
    sub->in_use++;
    sub->last_used = ++p->clock;
    sub->last_us = now;
    struct db_slot *s = td_xcalloc(1, sizeof(*s));
    s->sub = sub;
    s->place = sub == &p->main ? place_take(p, th) : -1;
    note_affinity(p, s, th);
    return s;
}

static void deadline_after(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int db_pool_acquire(struct db_pool *p, const char *database, const char *tenant,
                    struct db_slot **out)
{
    struct waiter w = {.database = database};
    struct timespec deadline;
    pthread_cond_init(&w.cv, &p->cattr);
    deadline_after(&deadline, p->cfg.timeout_ms);
    *out = NULL;

    pthread_mutex_lock(&p->mu);
    w.arrival = ++p->clock;
    w.tenant = tenant ? tenant_get(p, tenant) : NULL;
    if (w.tenant)
        w.tenant->waiting++;
    struct waiter **tail = &p->waiters;
    while (*tail)
        tail = &(*tail)->next;
    *tail = &w;
    p->nwaiting++;

    for (;;) {
        if (pick(p) == &w)
            break;
        if (pthread_cond_timedwait(&w.cv, &p->mu, &deadline) == ETIMEDOUT && pick(p) != &w) {
            waiter_remove(p, &w);
            if (w.tenant)
                tenant_settle(p, w.tenant);
            wake_next(p);
            pthread_mutex_unlock(&p->mu);
            pthread_cond_destroy(&w.cv);
            return TD_EUNAVAILABLE;
        }
    }
    waiter_remove(p, &w);
    if (w.tenant) {
        w.tenant->in_use++;
        w.tenant->last_served = ++p->clock;
    }
    struct db_slot *victims;
    uint64_t th = tenant ? td_hash64_str(TD_HASH64_INIT, tenant) | 1 : 0;
    struct db_slot *s = take(p, database, th, &victims, now_us(p));
    /* others may be servable now (another database, another tenant) */
    wake_next(p);
    pthread_mutex_unlock(&p->mu);
    pthread_cond_destroy(&w.cv);

    close_list(p, victims);
    if (!s->conn) {
        unsigned long long t0 = now_us(p);
        s->conn = p->ops.open(p->ctx, database);
        if (!s->conn) {
            db_pool_release(p, s, tenant, 1);
            return TD_EUNAVAILABLE;
        }
        unsigned long long took = now_us(p) - t0;
        pthread_mutex_lock(&p->mu);
        p->open_us = p->opened++ ? ewma(p->open_us, took) : took;
        pthread_mutex_unlock(&p->mu);
    }
    s->since = now_us(p);
    *out = s;
    return 0;
}

/* Record tenant in the slot's set; 1 when the slot has now served too many tenants. */
static int slot_note_tenant(struct db_pool *p, struct db_slot *s, const char *tenant)
{
    int max = p->cfg.max_tenants;
    if (max <= 0 || !tenant)
        return 0;
    if (s->nseen >= max)
        return 1; /* counted enough (a measured connection lives on): the set stays half empty */
    int cap = 2 * max;
    if (!s->seen)
        s->seen = td_xcalloc((size_t)cap, sizeof(*s->seen));
    unsigned long long h = td_hash64_str(TD_HASH64_INIT, tenant) | 1; /* 0 marks an empty cell */
    for (int i = (int)(h % (unsigned)cap);; i = (i + 1) % cap) {
        if (s->seen[i] == h)
            return 0;
        if (s->seen[i] == 0) {
            s->seen[i] = h;
            return ++s->nseen >= max;
        }
    }
}

/* Is s worn out (close it rather than pool it)? 1: by its backend's memory, 2: by the
 * count of tenants it served, 0: no. Runs outside the lock (the probe is a round trip or
 * a /proc read). */
static int worn_out(struct db_pool *p, struct db_slot *s, const char *tenant)
{
    int many = slot_note_tenant(p, s, tenant);
    if (p->ops.memory && p->cfg.max_backend_bytes > 0 && s->conn) {
        unsigned every = p->cfg.probe_every > 0 ? (unsigned)p->cfg.probe_every : 64;
        if (s->uses++ % every == 0) { /* the first release too: tells whether it can be read */
            long long bytes = p->ops.memory(p->ctx, s->conn);
            s->measured = bytes >= 0;
            if (bytes > p->cfg.max_backend_bytes)
                return 1;
        }
        if (s->measured)
            return 0;
    }
    return many ? 2 : 0;
}

void db_pool_release(struct db_pool *p, struct db_slot *s, const char *tenant, int broken)
{
    if (!s)
        return;
    int worn = broken ? 0 : worn_out(p, s, tenant);
    int recycle = broken || worn;
    unsigned long long held = s->conn ? now_us(p) - s->since : 0;
    pthread_mutex_lock(&p->mu);
    struct db_subpool *sub = s->sub;
    sub->in_use--;
    p->active--;
    if (s->conn) {
        sub->last_us = s->since + held;
        sub->hold_us = ewma(sub->hold_us, held);
        p->hold_us = ewma(p->hold_us, held);
    }
    if (tenant) {
        struct tenant_use *t = tenant_get(p, tenant);
        t->in_use--;
        tenant_settle(p, t);
    }
    if (!recycle) {
        s->next = sub->idle;
        sub->idle = s;
        wake_next(p);
    } else {
        p->recycled_memory += worn == 1;
        p->recycled_tenants += worn == 2;
    }
    pthread_mutex_unlock(&p->mu);
    if (recycle) {
        /* closed before its place is given back: the budget counts it until it is gone */
        if (s->conn)
            p->ops.close(p->ctx, s->conn);
        pthread_mutex_lock(&p->mu);
        place_free(p, s);
        slot_free(s);
        sub->open--;
        p->open--;
        wake_next(p);
        pthread_mutex_unlock(&p->mu);
    }
}

void db_pool_forget(struct db_pool *p, const char *database)
{
    struct db_slot *victims = NULL;
    pthread_mutex_lock(&p->mu);
    struct db_subpool *d = database ? find_sub(p, database) : NULL;
    if (d) {
        victims = d->idle;
        d->idle = NULL;
        p->open -= d->open - d->in_use;
        d->open = d->in_use;
        if (d->in_use == 0) {
            sub_unlink(p, d);
            free(d->database);
            free(d);
        }
    }
    wake_next(p);
    pthread_mutex_unlock(&p->mu);
    close_list(p, victims);
}

int db_pool_idle_databases(struct db_pool *p, unsigned long long idle_us, char ***names)
{
    unsigned long long now = now_us(p);
    int n = 0;
    pthread_mutex_lock(&p->mu);
    *names = td_xcalloc((size_t)p->ndbs + 1, sizeof(**names));
    for (struct db_subpool *d = p->dbs; d; d = d->next)
        if (d->in_use == 0 && now - d->last_us >= idle_us)
            (*names)[n++] = td_xstrdup(d->database);
    pthread_mutex_unlock(&p->mu);
    return n;
}

void db_pool_stats(struct db_pool *p, struct db_pool_stats *st)
{
    pthread_mutex_lock(&p->mu);
    st->open = p->open;
    st->in_use = p->main.in_use;
    for (struct db_subpool *d = p->dbs; d; d = d->next)
        st->in_use += d->in_use;
    st->waiting = p->nwaiting;
    st->dbs = p->ndbs;
    st->tenants = p->ntenants;
    st->hits = p->hits;
    st->misses = p->misses;
    st->evictions = p->evictions;
    st->opened = p->opened;
    st->open_us = (long long)p->open_us;
    st->hold_us = (long long)p->hold_us;
    st->affine = p->affine;
    st->recycled_memory = p->recycled_memory;
    st->recycled_tenants = p->recycled_tenants;
    pthread_mutex_unlock(&p->mu);
}
