/*
 * plans.c - plan table and batched monthly API-call counting.
 */
#include "tenant/plans.h"

#include "core/hash.h"
#include "core/htab.h"
#include "core/log.h"
#include "core/mem.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct tnt_plan plans[] = {
    {"free", 5, 3, 10000},
    {"starter", 20, 10, 100000},
    {"pro", 100, 50, 1000000},
    {"enterprise", -1, -1, -1},
};

const struct tnt_plan *tnt_plan_get(const char *name)
{
    for (size_t i = 0; i < sizeof(plans) / sizeof(plans[0]); i++)
        if (name && strcmp(plans[i].name, name) == 0)
            return &plans[i];
    return NULL;
}

/* Every authenticated request counts under its tenant's key: the entries are spread over
 * shards, each with its own lock, so that requests of different tenants rarely wait for
 * each other. The flusher visits one shard at a time. */
#define USAGE_SHARDS 16
#define USAGE_BUCKETS 4096 /* per shard: chains stay short at 100,000 tenants */

struct usage_entry {
    struct td_hnode node;
    char id[37];
    unsigned char loaded; /* base holds the catalog's total of this month */
    unsigned char dirty;  /* on its shard's dirty list */
    int month;            /* year * 12 + month */
    long long base;       /* total in the catalog at the last flush */
    long long pending;    /* counted here, not yet flushed */
    struct usage_entry *dirty_next;
};

/* The flusher visits only the entries counted since the last flush (the dirty list), not
 * every tenant seen: at 100,000 tenants a pass over all of them each second held each
 * shard's lock for its whole table. */
struct usage_shard {
    pthread_mutex_t mu;
    struct td_htab tab;
    struct usage_entry *dirty;
};

struct tnt_usage {
    struct db *db;
    pthread_mutex_t mu; /* stop and cv: the flusher's sleep */
    pthread_cond_t cv;
    pthread_t thread;
    int stop;
    atomic_ullong hits, loads;
    struct usage_shard shards[USAGE_SHARDS];
};

static int month_now(void)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    return (tm.tm_year + 1900) * 12 + tm.tm_mon;
}

long tnt_usage_month_left(void)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_mon += 1;
    time_t end = timegm(&tm);
    return (long)(end - now);
}

static struct usage_shard *shard_of(struct tnt_usage *u, unsigned hash)
{
    return &u->shards[(hash >> 24) % USAGE_SHARDS];
}

static int entry_eq(const struct td_hnode *n, const void *id)
{
    return strcmp(TD_CONTAINER_OF(n, struct usage_entry, node)->id, id) == 0;
}

/* The entry of id in its shard s (s->mu held), made or reset for this month. */
static struct usage_entry *entry_get(struct usage_shard *s, unsigned hash, const char *id)
{
    int m = month_now();
    struct td_hnode *n = td_htab_find(&s->tab, hash, entry_eq, id);
    if (n) {
        struct usage_entry *e = TD_CONTAINER_OF(n, struct usage_entry, node);
        if (e->month != m) {
            e->month = m;
            e->base = e->pending = 0;
            e->loaded = 0;
        }
        return e;
    }
    struct usage_entry *e = td_xcalloc(1, sizeof(*e));
    snprintf(e->id, sizeof(e->id), "%s", id);
    e->month = m;
    td_htab_add(&s->tab, &e->node, hash);
    return e;
}

static const char load_sql[] = "SELECT api_calls FROM tenantd.usage WHERE tenant_id = $1 "
                               "AND month = (date_trunc('month', now() AT TIME ZONE 'UTC'))::date";

/*
 * Called with s->mu held (s: the shard of id); returns with it held. The first time this instance
 * sees a tenant in a month, read the month's total from the catalog, so that a restarted instance
 * does not start over from zero and let a spent budget through until its first flush. The query
 * runs without the lock; counting waits for it, so no call is counted (and flushed) before base is
 * known. A failed read counts from zero and the next flush corrects the total.
 */
static struct usage_entry *entry_loaded(struct tnt_usage *u, struct usage_shard *s, unsigned hash,
                                        const char *id)
{
    struct usage_entry *e = entry_get(s, hash, id);
    if (e->loaded) {
        atomic_fetch_add_explicit(&u->hits, 1, memory_order_relaxed);
        return e;
    }
    atomic_fetch_add_explicit(&u->loads, 1, memory_order_relaxed);
    pthread_mutex_unlock(&s->mu);
    struct db_target tg = {.server = 0};
    struct db_stmt st = {load_sql, 1, (const char *const[]){id}, 0};
    PGresult *r = NULL;
    long long total = 0;
    if (db_exec(u->db, &tg, &st, 1, &r) == 0 && PQntuples(r) == 1)
        total = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    pthread_mutex_lock(&s->mu);
    e = entry_get(s, hash, id);
    if (!e->loaded) {
        /* pending is still 0 here: nothing is counted before the entry is loaded */
        e->base = total > e->base ? total : e->base;
        e->loaded = 1;
    }
    return e;
}

int tnt_usage_hit(struct tnt_usage *u, const char *tenant_id, long limit)
{
    unsigned h = td_hash_str(tenant_id);
    struct usage_shard *s = shard_of(u, h);
    pthread_mutex_lock(&s->mu);
    struct usage_entry *e = entry_loaded(u, s, h, tenant_id);
    int over = limit >= 0 && e->base + e->pending >= limit;
    if (!over) {
        e->pending++;
        if (!e->dirty) {
            e->dirty = 1;
            e->dirty_next = s->dirty;
            s->dirty = e;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return over;
}

long long tnt_usage_month(struct tnt_usage *u, const char *tenant_id)
{
    unsigned h = td_hash_str(tenant_id);
    struct usage_shard *s = shard_of(u, h);
    pthread_mutex_lock(&s->mu);
    struct usage_entry *e = entry_loaded(u, s, h, tenant_id);
    long long n = e->base + e->pending;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* the day's figure too, for the console's chart (tenantd.usage_daily) */
static const char flush_sql[] =
    "WITH x AS (SELECT t, n FROM unnest($1::uuid[], $2::bigint[]) AS x(t, n) "
    "WHERE t IN (SELECT id FROM tenantd.tenants)), "
    "d AS (INSERT INTO tenantd.usage_daily AS d (tenant_id, day, api_calls) "
    "SELECT x.t, (now() AT TIME ZONE 'UTC')::date, x.n FROM x "
    "ON CONFLICT (tenant_id, day) DO UPDATE SET api_calls = d.api_calls + EXCLUDED.api_calls) "
    "INSERT INTO tenantd.usage AS u (tenant_id, month, api_calls) "
    "SELECT x.t, (date_trunc('month', now() AT TIME ZONE 'UTC'))::date, x.n FROM x "
    "ON CONFLICT (tenant_id, month) DO UPDATE SET api_calls = u.api_calls + EXCLUDED.api_calls "
    "RETURNING tenant_id, api_calls";

/* Append "a,b,c" style array literal pieces. */
static void append(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 2 > *cap) {
        *cap = (*len + n + 2) * 2;
        *buf = td_xrealloc(*buf, *cap);
    }
    memcpy(*buf + *len, s, n + 1);
    *len += n;
}

/* Move shard s's pending counts into the array literals (s->mu held). */
static void take_pending(struct usage_shard *s, int m, char **ids, size_t *il, size_t *ic,
                         char **ns, size_t *nl, size_t *nc, int *count)
{
    struct usage_entry *e = s->dirty;
    s->dirty = NULL;
    for (; e; e = e->dirty_next) {
        e->dirty = 0;
        if (!e->pending || e->month != m)
            continue;
        char num[32];
        snprintf(num, sizeof(num), "%s%lld", *count ? "," : "", e->pending);
        append(ids, il, ic, *count ? "," : "");
        append(ids, il, ic, e->id);
        append(ns, nl, nc, num);
        e->base += e->pending; /* optimistic; corrected by what the catalog returns */
        e->pending = 0;
        (*count)++;
    }
}

/* The catalog's totals after a flush, into each tenant's entry. */
static void take_totals(struct tnt_usage *u, const PGresult *r)
{
    for (int i = 0; i < PQntuples(r); i++) {
        const char *id = PQgetvalue(r, i, 0);
        unsigned h = td_hash_str(id);
        struct usage_shard *s = shard_of(u, h);
        pthread_mutex_lock(&s->mu);
        entry_get(s, h, id)->base = atoll(PQgetvalue(r, i, 1));
        pthread_mutex_unlock(&s->mu);
    }
}

void tnt_usage_flush(struct tnt_usage *u)
{
    size_t il = 0, ic = 64, nl = 0, nc = 64;
    char *ids = td_xmalloc(ic), *ns = td_xmalloc(nc);
    int count = 0, m = month_now();
    append(&ids, &il, &ic, "{");
    append(&ns, &nl, &nc, "{");
    for (int i = 0; i < USAGE_SHARDS; i++) {
        pthread_mutex_lock(&u->shards[i].mu);
        take_pending(&u->shards[i], m, &ids, &il, &ic, &ns, &nl, &nc, &count);
        pthread_mutex_unlock(&u->shards[i].mu);
    }
    append(&ids, &il, &ic, "}");
    append(&ns, &nl, &nc, "}");
    if (count) {
        struct db_target tg = {.server = 0};
        struct db_stmt st = {flush_sql, 2, (const char *const[]){ids, ns}, 0};
        PGresult *r = NULL;
        if (db_exec(u->db, &tg, &st, 1, &r) == 0)
            take_totals(u, r);
        else
            td_log_warn("could not record API usage of %d tenants", count);
        PQclear(r);
    }
    free(ids);
    free(ns);
}

static void *flusher(void *arg)
{
    struct tnt_usage *u = arg;
    pthread_mutex_lock(&u->mu);
    while (!u->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&u->cv, &u->mu, &ts);
        pthread_mutex_unlock(&u->mu);
        tnt_usage_flush(u);
        pthread_mutex_lock(&u->mu);
    }
    pthread_mutex_unlock(&u->mu);
    return NULL;
}

struct tnt_usage *tnt_usage_new(struct db *db)
{
    struct tnt_usage *u = td_xcalloc(1, sizeof(*u));
    u->db = db;
    pthread_mutex_init(&u->mu, NULL);
    pthread_cond_init(&u->cv, NULL);
    for (int i = 0; i < USAGE_SHARDS; i++) {
        pthread_mutex_init(&u->shards[i].mu, NULL);
        td_htab_init(&u->shards[i].tab, USAGE_BUCKETS);
    }
    pthread_create(&u->thread, NULL, flusher, u);
    return u;
}

void tnt_usage_free(struct tnt_usage *u)
{
    if (!u)
        return;
    pthread_mutex_lock(&u->mu);
    u->stop = 1;
    pthread_cond_signal(&u->cv);
    pthread_mutex_unlock(&u->mu);
    pthread_join(u->thread, NULL);
    tnt_usage_flush(u);
    for (int i = 0; i < USAGE_SHARDS; i++) {
        struct td_hnode *n;
        while ((n = td_htab_pop(&u->shards[i].tab)))
            free(TD_CONTAINER_OF(n, struct usage_entry, node));
        td_htab_cleanup(&u->shards[i].tab);
        pthread_mutex_destroy(&u->shards[i].mu);
    }
    pthread_mutex_destroy(&u->mu);
    pthread_cond_destroy(&u->cv);
    free(u);
}

void tnt_usage_stats(struct tnt_usage *u, struct td_cache_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->hits = atomic_load(&u->hits);
    out->misses = atomic_load(&u->loads);
    for (int i = 0; i < USAGE_SHARDS; i++) {
        pthread_mutex_lock(&u->shards[i].mu);
        out->entries += u->shards[i].tab.count;
        pthread_mutex_unlock(&u->shards[i].mu);
    }
    /* an entry's chunk (size rounded to 16, plus the allocator's header), and the buckets */
    out->bytes = out->entries * ((sizeof(struct usage_entry) + 15) / 16 * 16 + sizeof(size_t)) +
                 USAGE_SHARDS * USAGE_BUCKETS * sizeof(struct td_hnode *);
}
