/*
 * plans.c - plan table, batched monthly API-call counting and the per-tenant request counts
 * GET /metrics shows (one table of tenants for both).
 */
#include "tenant/plans.h"

#include "core/hash.h"
#include "core/htab.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/uuid.h"

#include <pthread.h>
#include <stddef.h>
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

/* One entry a tenant this instance served: its calls this month (the plan's budget) and
 * its requests since start (GET /metrics), so one table serves both. Entries live as long
 * as the counters, so they come from their shard's arena (no allocator header or rounding
 * each), keyed by the id's 16 bytes with the slug after them: 80 bytes a tenant whose slug
 * has up to 19 characters (a table of each, malloc'd, with text ids, took about 220). */
struct usage_entry {
    struct td_hnode node;
    unsigned char id[16];
    long long base;              /* total in the catalog at the last flush */
    long long pending;           /* counted here, not yet flushed */
    unsigned long long requests; /* requests to tenant routes since start */
    unsigned short month;        /* year * 12 + month */
    unsigned char loaded;        /* base holds the catalog's total of this month */
    unsigned char dirty;         /* on its shard's dirty list */
    char slug[];
};

/* The flusher visits only the entries counted since the last flush (the dirty list), not
 * every tenant seen: at 100,000 tenants a pass over all of them each second held each
 * shard's lock for its whole table. */
struct usage_shard {
    pthread_mutex_t mu;
    struct td_htab tab;
    struct td_arena *arena; /* the entries */
    struct usage_entry **dirty;
    size_t ndirty, dirty_cap;
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

/* A tenant's key: its id as bytes and their hash; -1 when the id is not a UUID (the catalog's
 * ids are: such an id is not counted). */
struct usage_key {
    unsigned char id[16];
    unsigned hash;
};

static int key_of(const char *tenant_id, struct usage_key *k)
{
    if (td_uuid_parse(tenant_id, k->id) < 0)
        return -1;
    k->hash = td_hash_bytes(k->id, sizeof(k->id));
    return 0;
}

static struct usage_shard *shard_of(struct tnt_usage *u, const struct usage_key *k)
{
    return &u->shards[(k->hash >> 24) % USAGE_SHARDS];
}

static int entry_eq(const struct td_hnode *n, const void *id)
{
    return memcmp(TD_CONTAINER_OF(n, struct usage_entry, node)->id, id, 16) == 0;
}

/* The entry of k in its shard s (s->mu held), reset for this month; made (with slug) when
 * there is none and slug is not NULL. */
static struct usage_entry *entry_get(struct usage_shard *s, const struct usage_key *k,
                                     const char *slug)
{
    int m = month_now();
    struct td_hnode *n = td_htab_find(&s->tab, k->hash, entry_eq, k->id);
    struct usage_entry *e = n ? TD_CONTAINER_OF(n, struct usage_entry, node) : NULL;
    if (e && e->month != m) {
        e->month = (unsigned short)m;
        e->base = e->pending = 0;
        e->loaded = 0;
    }
    if (e || !slug)
        return e;
    size_t len = strlen(slug) + 1;
    e = td_arena_alloc(s->arena, offsetof(struct usage_entry, slug) + len);
    memset(e, 0, offsetof(struct usage_entry, slug));
    memcpy(e->id, k->id, sizeof(e->id));
    memcpy(e->slug, slug, len);
    e->month = (unsigned short)m;
    td_htab_add(&s->tab, &e->node, k->hash);
    return e;
}

static const char load_sql[] = "SELECT api_calls FROM tenantd.usage WHERE tenant_id = $1 "
                               "AND month = (date_trunc('month', now() AT TIME ZONE 'UTC'))::date";

/*
 * Called with s->mu held (s: the shard of t); returns with it held. The first time this instance
 * sees a tenant in a month, read the month's total from the catalog, so that a restarted instance
 * does not start over from zero and let a spent budget through until its first flush. The query
 * runs without the lock; counting waits for it, so no call is counted (and flushed) before base is
 * known. A failed read counts from zero and the next flush corrects the total.
 */
static struct usage_entry *entry_loaded(struct tnt_usage *u, struct usage_shard *s,
                                        const struct usage_key *k, const struct tnt_tenant *t)
{
    struct usage_entry *e = entry_get(s, k, t->slug);
    if (e->loaded) {
        atomic_fetch_add_explicit(&u->hits, 1, memory_order_relaxed);
        return e;
    }
    atomic_fetch_add_explicit(&u->loads, 1, memory_order_relaxed);
    pthread_mutex_unlock(&s->mu);
    struct db_target tg = {.server = 0};
    struct db_stmt st = {load_sql, 1, (const char *const[]){t->id}, 0};
    PGresult *r = NULL;
    long long total = 0;
    if (db_exec(u->db, &tg, &st, 1, &r) == 0 && PQntuples(r) == 1)
        total = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    pthread_mutex_lock(&s->mu);
    e = entry_get(s, k, t->slug);
    if (!e->loaded) {
        /* pending is still 0 here: nothing is counted before the entry is loaded */
        e->base = total > e->base ? total : e->base;
        e->loaded = 1;
    }
    return e;
}

int tnt_usage_hit(struct tnt_usage *u, const struct tnt_tenant *t, long limit)
{
    struct usage_key k;
    if (key_of(t->id, &k) < 0)
        return 0;
    struct usage_shard *s = shard_of(u, &k);
    pthread_mutex_lock(&s->mu);
    struct usage_entry *e = entry_loaded(u, s, &k, t);
    int over = limit >= 0 && e->base + e->pending >= limit;
    if (!over) {
        e->pending++;
        if (!e->dirty) {
            if (s->ndirty == s->dirty_cap) {
                s->dirty_cap = s->dirty_cap ? s->dirty_cap * 2 : 64;
                s->dirty = td_xrealloc(s->dirty, s->dirty_cap * sizeof(*s->dirty));
            }
            e->dirty = 1;
            s->dirty[s->ndirty++] = e;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return over;
}

long long tnt_usage_month(struct tnt_usage *u, const struct tnt_tenant *t)
{
    struct usage_key k;
    if (key_of(t->id, &k) < 0)
        return 0;
    struct usage_shard *s = shard_of(u, &k);
    pthread_mutex_lock(&s->mu);
    struct usage_entry *e = entry_loaded(u, s, &k, t);
    long long n = e->base + e->pending;
    pthread_mutex_unlock(&s->mu);
    return n;
}

int tnt_usage_request(struct tnt_usage *u, const struct tnt_tenant *t)
{
    struct usage_key k;
    if (key_of(t->id, &k) < 0)
        return TD_EVALIDATION;
    struct usage_shard *s = shard_of(u, &k);
    pthread_mutex_lock(&s->mu);
    entry_get(s, &k, t->slug)->requests++;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* row a ranks above row b: more requests, or as many and the slug first in order */
static int ranks_above(const struct tnt_request_count *a, const struct tnt_request_count *b)
{
    return a->n != b->n ? a->n > b->n : strcmp(a->slug, b->slug) < 0;
}

static int by_rank(const void *a, const void *b)
{
    return ranks_above(a, b) ? -1 : ranks_above(b, a) ? 1 : 0;
}

/* Offer row to the k best kept in heap (rows[0] the lowest-ranked of them); what it pushes out,
 * or row itself, is added to *rest. */
static void keep_best(struct tnt_request_count *heap, size_t *n, size_t k,
                      struct tnt_request_count row, unsigned long long *rest)
{
    if (*n < k) {
        size_t i = (*n)++;
        for (; i && ranks_above(&heap[(i - 1) / 2], &row); i = (i - 1) / 2)
            heap[i] = heap[(i - 1) / 2];
        heap[i] = row;
        return;
    }
    if (!k || !ranks_above(&row, &heap[0])) {
        *rest += row.n;
        return;
    }
    *rest += heap[0].n;
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= k)
            break;
        if (c + 1 < k && ranks_above(&heap[c], &heap[c + 1]))
            c++;
        if (!ranks_above(&row, &heap[c]))
            break;
        heap[i] = heap[c];
        i = c;
    }
    heap[i] = row;
}

size_t tnt_usage_requests(struct tnt_usage *u, struct tnt_request_count *rows, size_t k,
                          unsigned long long *rest)
{
    size_t n = 0;
    *rest = 0;
    for (int i = 0; i < USAGE_SHARDS; i++) {
        struct usage_shard *s = &u->shards[i];
        pthread_mutex_lock(&s->mu);
        for (unsigned b = 0; b <= s->tab.mask; b++)
            for (struct td_hnode *h = s->tab.buckets[b]; h; h = h->next) {
                struct usage_entry *e = TD_CONTAINER_OF(h, struct usage_entry, node);
                if (e->requests)
                    keep_best(rows, &n, k, (struct tnt_request_count){e->slug, e->requests}, rest);
            }
        pthread_mutex_unlock(&s->mu);
    }
    qsort(rows, n, sizeof(*rows), by_rank);
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

/* Tenants a flush statement carries at most: with thousands of tenants counted a second,
 * one statement for all of them built a text and a result of megabytes (and left the
 * connection's buffers that large). */
#define FLUSH_MAX 1000

/* The two array literals of a flush statement being built. */
struct flush_buf {
    char *ids, *ns;
    size_t il, ic, nl, nc;
    int count;
};

/* Append s to the literal *buf. */
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

static void flush_reset(struct flush_buf *f)
{
    f->il = f->nl = 0;
    f->count = 0;
    append(&f->ids, &f->il, &f->ic, "{");
    append(&f->ns, &f->nl, &f->nc, "{");
}

/* Move shard s's pending counts into f until it holds FLUSH_MAX tenants (s->mu held);
 * returns 1 when s has more left for the next statement. */
static int take_pending(struct usage_shard *s, int m, struct flush_buf *f)
{
    size_t i = 0;
    for (; i < s->ndirty && f->count < FLUSH_MAX; i++) {
        struct usage_entry *e = s->dirty[i];
        e->dirty = 0;
        if (!e->pending || e->month != m)
            continue;
        char num[32], id[37];
        snprintf(num, sizeof(num), "%s%lld", f->count ? "," : "", e->pending);
        td_uuid_format(e->id, id);
        append(&f->ids, &f->il, &f->ic, f->count ? "," : "");
        append(&f->ids, &f->il, &f->ic, id);
        append(&f->ns, &f->nl, &f->nc, num);
        e->base += e->pending; /* optimistic; corrected by what the catalog returns */
        e->pending = 0;
        f->count++;
    }
    if (i > 0) { /* s->dirty is NULL until a first tenant is counted */
        memmove(s->dirty, s->dirty + i, (s->ndirty - i) * sizeof(*s->dirty));
        s->ndirty -= i;
    }
    return s->ndirty > 0;
}

/* The catalog's totals after a flush, into each tenant's entry. */
static void take_totals(struct tnt_usage *u, const PGresult *r)
{
    for (int i = 0; i < PQntuples(r); i++) {
        struct usage_key k;
        if (key_of(PQgetvalue(r, i, 0), &k) < 0)
            continue;
        struct usage_shard *s = shard_of(u, &k);
        pthread_mutex_lock(&s->mu);
        struct usage_entry *e = entry_get(s, &k, NULL); /* flushed: it has an entry */
        if (e)
            e->base = atoll(PQgetvalue(r, i, 1));
        pthread_mutex_unlock(&s->mu);
    }
}

/* Send what f holds (no lock held) and start it again. */
static void flush_send(struct tnt_usage *u, struct flush_buf *f)
{
    append(&f->ids, &f->il, &f->ic, "}");
    append(&f->ns, &f->nl, &f->nc, "}");
    struct db_target tg = {.server = 0};
    struct db_stmt st = {flush_sql, 2, (const char *const[]){f->ids, f->ns}, 0};
    PGresult *r = NULL;
    if (db_exec(u->db, &tg, &st, 1, &r) == 0)
        take_totals(u, r);
    else
        td_log_warn("could not record API usage of %d tenants", f->count);
    PQclear(r);
    flush_reset(f);
}

void tnt_usage_flush(struct tnt_usage *u)
{
    struct flush_buf f = {.ic = 64, .nc = 64};
    f.ids = td_xmalloc(f.ic);
    f.ns = td_xmalloc(f.nc);
    flush_reset(&f);
    int m = month_now();
    for (int i = 0; i < USAGE_SHARDS; i++) {
        struct usage_shard *s = &u->shards[i];
        for (int more = 1; more;) {
            pthread_mutex_lock(&s->mu);
            more = take_pending(s, m, &f);
            pthread_mutex_unlock(&s->mu);
            if (f.count == FLUSH_MAX)
                flush_send(u, &f);
        }
    }
    if (f.count)
        flush_send(u, &f);
    free(f.ids);
    free(f.ns);
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
        u->shards[i].arena = td_arena_new();
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
        td_htab_cleanup(&u->shards[i].tab); /* the entries go with the arena */
        td_arena_free(u->shards[i].arena);
        free(u->shards[i].dirty);
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
        struct usage_shard *s = &u->shards[i];
        pthread_mutex_lock(&s->mu);
        out->entries += s->tab.count;
        /* the entries' blocks, the buckets and the dirty list */
        out->bytes += td_arena_bytes(s->arena) + (s->tab.mask + 1) * sizeof(struct td_hnode *) +
                      s->dirty_cap * sizeof(*s->dirty);
        pthread_mutex_unlock(&s->mu);
    }
}
