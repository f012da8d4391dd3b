/*
 * tenant.c - tenant objects and the bounded cache of resolved tenants.
 */
#include "tenant/tenant.h"

#include "auth/jwt.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/htab.h"
#include "core/log.h"
#include "core/mem.h"
#include "db/sqljson.h"
#include "tenant/names.h"
#include "tenant/plans.h"

#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char tnt_catalog_columns[] = "id, slug, name, plan, isolation, status, server, " DB_SQL_TS(
    "subscription_expires_at") ", "
                               "extract(epoch from subscription_expires_at)::bigint, " DB_SQL_TS(
                                   "created_at") ", "
                                                 "schema_version";

static const char *const iso_names[] = {"pool", "schema", "database"};

const char *tnt_isolation_name(enum tnt_isolation iso)
{
    return iso_names[iso];
}

int tnt_isolation_parse(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (s && strcmp(s, iso_names[i]) == 0)
            return i;
    return -1;
}

/*
 * A tenant is one allocation: the object, its strings after it, and the cache's hook in
 * front (struct centry: a tenant is filed under its id in at most one cache, and the hook
 * is left alone once the cache drops it). One block instead of seven, no storage names for
 * a pool tenant, the server's name borrowed from the db and the creation time in 8 bytes
 * keep a cached pool tenant at about 250 bytes, so that the cache holds 100,000 of them in
 * about 25 MiB.
 */
enum { CE_ID, CE_SLUG };

struct centry {
    struct td_hnode node;
    unsigned slot;          /* its index in the shard's ring (the clock) */
    unsigned bytes;         /* memory it holds, allocator overhead and ring slot included */
    unsigned char ref;      /* looked up since the clock's hand last passed */
    unsigned char kind;     /* CE_ID: in a struct tnt_block; CE_SLUG: a struct by_slug */
    unsigned char ttl_only; /* an invalidation ran while it was read: confirmations do not
                             * extend it (it may predate a change already announced) */
};

struct tnt_block {
    struct centry ce;
    struct tnt_tenant t;
    char strings[];
};

static struct tnt_block *block_of(struct tnt_tenant *t)
{
    return TD_CONTAINER_OF(t, struct tnt_block, t);
}

struct tnt_tenant *tnt_tenant_ref(struct tnt_tenant *t)
{
    atomic_fetch_add(&t->refs, 1);
    return t;
}

void tnt_tenant_unref(struct tnt_tenant *t)
{
    if (!t || atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    free(block_of(t));
}

enum { S_SLUG, S_NAME, S_PLAN, S_SERVER, S_CREATED, S_EXPIRES, S_IDENT, S_DBNAME, S_COUNT };

static char no_name[1]; /* a pool tenant's ident and dbname */

/* A tenant (1 ref, a new generation) with id and the strings s[S_*] (NULL: none; ident and
 * dbname "") copied into its block; the rest is the caller's to fill. */
static struct tnt_tenant *tenant_alloc(const char *id, const char *const s[S_COUNT])
{
    static atomic_ullong gens;
    size_t len[S_COUNT], total = 0;
    /* a known plan's name is the plan table's (static): ~16 bytes less a tenant */
    const struct tnt_plan *plan = tnt_plan_get(s[S_PLAN]);
    for (int i = 0; i < S_COUNT; i++)
        total += len[i] = s[i] && !(i == S_PLAN && plan) ? strlen(s[i]) + 1 : 0;
    struct tnt_block *b = td_xcalloc(1, sizeof(*b) + total);
    struct tnt_tenant *t = &b->t;
    char *p = b->strings, **dst[S_COUNT] = {&t->slug,   &t->name,         &t->plan,
                                            &t->server, &t->created_text, &t->expires_at_text,
                                            &t->ident,  &t->dbname};
    t->plan = plan ? (char *)plan->name : NULL;
    t->ident = t->dbname = no_name;
    for (int i = 0; i < S_COUNT; i++) {
        if (!len[i])
            continue;
        memcpy(p, s[i], len[i]);
        *dst[i] = p;
        p += len[i];
    }
    atomic_init(&t->refs, 1);
    t->gen = atomic_fetch_add(&gens, 1) + 1;
    snprintf(t->id, sizeof(t->id), "%s", id);
    t->loaded_us = td_now_us();
    return t;
}

/* The microseconds since the epoch of "YYYY-MM-DDTHH:MI:SS.ffffffZ" (DB_SQL_TS) into out. */
static void ts_format(long long us, char out[64])
{
    time_t sec = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(us % 1000000));
}

/* s (DB_SQL_TS) as microseconds since the epoch into *out; -1 when s does not come back
 * from them as the same text (then it is kept as text). */
static int ts_parse(const char *s, long long *out)
{
    struct tm tm = {0};
    int us = 0, n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%6dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &us, &n) != 7 ||
        n == 0 || s[n] != '\0' || tm.tm_year < 1970)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out = (long long)timegm(&tm) * 1000000 + us;
    char back[64];
    ts_format(*out, back);
    return strcmp(back, s) == 0 ? 0 : -1;
}

const char *tnt_tenant_created_at(const struct tnt_tenant *t, char out[64])
{
    if (t->created_text)
        return t->created_text;
    ts_format(t->created_us, out);
    return out;
}

struct tnt_tenant *tnt_tenant_from_row(struct db *db, const PGresult *r, int row)
{
    const char *id = PQgetvalue(r, row, 0), *server = PQgetvalue(r, row, 6);
    int iso = tnt_isolation_parse(PQgetvalue(r, row, 4));
    int server_idx = db ? db_server_find(db, server) : 0;
    const char *created = PQgetvalue(r, row, 9);
    long long created_us = 0;
    char ident[TNT_NAME_MAX], dbname[TNT_NAME_MAX];
    /* the catalog's ids are UUIDs (a column of that type): names cannot fail here */
    if (tnt_name_of(id, TNT_NAME_SCHEMA, ident) < 0 ||
        tnt_name_of(id, TNT_NAME_DATABASE, dbname) < 0)
        td_log_error("tenant id %s is not a UUID", id);
    const char *s[S_COUNT] = {PQgetvalue(r, row, 1),
                              PQgetvalue(r, row, 2),
                              PQgetvalue(r, row, 3),
                              db && server_idx >= 0 ? NULL : server,
                              ts_parse(created, &created_us) < 0 ? created : NULL,
                              PQgetisnull(r, row, 7) ? NULL : PQgetvalue(r, row, 7),
                              iso != TNT_ISO_POOL ? ident : NULL,
                              iso != TNT_ISO_POOL ? dbname : NULL};
    struct tnt_tenant *t = tenant_alloc(id, s);
    if (!t->server)
        t->server = (char *)db_server_name(db, server_idx);
    t->created_us = t->created_text ? 0 : created_us;
    t->isolation = (enum tnt_isolation)iso;
    t->suspended = strcmp(PQgetvalue(r, row, 5), "suspended") == 0;
    t->server_idx = server_idx;
    if (t->server_idx < 0)
        td_log_error("tenant %s is placed on server \"%s\", which this instance does not know "
                     "(TENANTD_DB_SERVERS): its requests fail until it is configured",
                     t->slug, t->server);
    if (s[S_EXPIRES])
        t->expires_at = atoll(PQgetvalue(r, row, 8));
    t->schema_version = PQnfields(r) > 10 ? atoi(PQgetvalue(r, row, 10)) : 0;
    return t;
}

json_t *tnt_tenant_json(const struct tnt_tenant *t)
{
    char created[64];
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:s}", "id", t->id, "slug", t->slug, "name",
        t->name, "plan", t->plan, "isolation", tnt_isolation_name(t->isolation), "status",
        t->suspended ? "suspended" : "active", "server", t->server, "subscription_expires_at",
        t->expires_at_text, "created_at", tnt_tenant_created_at(t, created));
}

void tnt_tenant_target(const struct tnt_tenant *t, struct db_target *out)
{
    out->server = t->server_idx; /* -1 (unknown server): db_exec refuses it */
    out->tenant_id = t->id;
    out->ctx_sql = NULL;
    out->ctx_params[0] = out->ctx_params[1] = NULL;
    out->ctx_value = NULL;
    out->ctx_value_cap = 0;
    out->read_only = 0;
    out->error = NULL;
    switch (t->isolation) {
    case TNT_ISO_POOL:
        out->database = NULL;
        out->search_path = "pool";
        out->role = NULL;
        break;
    case TNT_ISO_SCHEMA:
        out->database = NULL;
        out->search_path = t->ident;
        out->role = t->ident;
        break;
    case TNT_ISO_DATABASE:
        out->database = t->dbname;
        out->search_path = t->ident;
        out->role = t->ident;
        break;
    }
}

/* ---- cache ---------------------------------------------------------------- */

/*
 * Tenants are filed by id; a slug asked for is filed as a pointer to an id, so that
 * forgetting a tenant is one removal in one shard (no scan, and no slug entry to chase: a
 * slug whose id is gone is a miss, and a slug reused by a new tenant is re-pointed on its
 * load). Keys are spread over CACHE_SHARDS shards, each with its own lock, table and
 * share of the memory budget, so lookups of different tenants rarely wait for each other.
 * No lock is held while another is taken.
 *
 * A full shard makes room by CLOCK (second chance): its entries sit in a ring; a lookup
 * sets the entry's ref bit; the hand passes over entries with the bit set (clearing it)
 * and drops the first without. One entry goes per entry that comes, and the entries in
 * use stay. (Emptying the whole shard instead, as this once did, made every tenant miss
 * again when more tenants were active than the cache held.)
 */
#define CACHE_SHARDS 16
#define CACHE_ENTRY_EST 272 /* bytes of a typical cached tenant: sizes the tables */

struct by_slug {
    struct centry ce;
    char id[37];
    char slug[];
};

struct cache_shard {
    pthread_mutex_t mu;
    struct td_htab ids, slugs;
    struct centry **ring; /* every entry of both tables; the clock's hand walks it */
    unsigned n, cap, hand;
    size_t bytes; /* entries, ring and tables */
};

struct tnt_cache {
    struct db *db;
    size_t shard_budget;
    int ttl_ms;
    atomic_llong confirmed_us;   /* see tnt_cache_confirm; 0: not confirmed */
    atomic_ullong invalidations; /* counts tnt_cache_invalidate calls */
    atomic_ullong hits, misses, evictions;
    struct cache_shard shards[CACHE_SHARDS];
};

/* What an allocation holds: usable size plus the allocator's header, plus a ring slot. */
static unsigned held(void *p)
{
    return (unsigned)(malloc_usable_size(p) + sizeof(size_t) + sizeof(struct centry *));
}

struct tnt_cache *tnt_cache_new(struct db *db, size_t budget, int ttl_ms)
{
    struct tnt_cache *c = td_xcalloc(1, sizeof(*c));
    c->db = db;
    c->shard_budget = budget / CACHE_SHARDS;
    c->ttl_ms = ttl_ms;
    /* about one bucket per tenant the budget holds: chains stay short at any size */
    size_t nb = c->shard_budget / CACHE_ENTRY_EST;
    nb = nb < 16 ? 16 : nb > (1u << 22) ? (1u << 22) : nb;
    for (int i = 0; i < CACHE_SHARDS; i++) {
        struct cache_shard *s = &c->shards[i];
        pthread_mutex_init(&s->mu, NULL);
        td_htab_init(&s->ids, (unsigned)nb);
        td_htab_init(&s->slugs, (unsigned)nb / 4);
        s->bytes = (s->ids.mask + 1 + s->slugs.mask + 1) * sizeof(struct td_hnode *);
    }
    return c;
}

static struct cache_shard *shard_of(struct tnt_cache *c, unsigned hash)
{
    /* the high bits: the low ones pick the bucket inside the shard */
    return &c->shards[(hash >> 24) % CACHE_SHARDS];
}

static int id_eq(const struct td_hnode *n, const void *key)
{
    const struct centry *e = TD_CONTAINER_OF(n, struct centry, node);
    return strcmp(TD_CONTAINER_OF(e, struct tnt_block, ce)->t.id, key) == 0;
}

static int slug_eq(const struct td_hnode *n, const void *key)
{
    const struct centry *e = TD_CONTAINER_OF(n, struct centry, node);
    return strcmp(TD_CONTAINER_OF(e, struct by_slug, ce)->slug, key) == 0;
}

/* File e (s->mu held). */
static void ring_add(struct cache_shard *s, struct centry *e, unsigned hash)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->ring = td_xrealloc(s->ring, s->cap * sizeof(*s->ring));
    }
    e->slot = s->n;
    e->ref = 0; /* a second chance is earned by a lookup */
    s->ring[s->n++] = e;
    td_htab_add(e->kind == CE_ID ? &s->ids : &s->slugs, &e->node, hash);
    s->bytes += e->bytes;
}

/* Unfile e and drop the cache's hold on it (s->mu held). */
static void drop(struct cache_shard *s, struct centry *e)
{
    struct centry *last = s->ring[--s->n];
    s->ring[e->slot] = last;
    last->slot = e->slot;
    td_htab_del(e->kind == CE_ID ? &s->ids : &s->slugs, &e->node);
    s->bytes -= e->bytes;
    if (e->kind == CE_ID)
        tnt_tenant_unref(&TD_CONTAINER_OF(e, struct tnt_block, ce)->t);
    else
        free(TD_CONTAINER_OF(e, struct by_slug, ce));
}

/* Drop entries by CLOCK until need more bytes fit the shard's budget (s->mu held). */
static void make_room(struct tnt_cache *c, struct cache_shard *s, size_t need)
{
    while (s->n && s->bytes + need > c->shard_budget) {
        if (s->hand >= s->n)
            s->hand = 0;
        struct centry *e = s->ring[s->hand];
        if (e->ref) {
            e->ref = 0;
            s->hand++;
            continue;
        }
        drop(s, e); /* the last entry moved into the hand's slot: looked at next */
        atomic_fetch_add_explicit(&c->evictions, 1, memory_order_relaxed);
    }
}

/* Empty the shard (its lock held, or the cache being freed). */
static void clear_shard(struct cache_shard *s)
{
    while (s->n)
        drop(s, s->ring[s->n - 1]);
}

void tnt_cache_free(struct tnt_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < CACHE_SHARDS; i++) {
        clear_shard(&c->shards[i]);
        free(c->shards[i].ring);
        td_htab_cleanup(&c->shards[i].ids);
        td_htab_cleanup(&c->shards[i].slugs);
        pthread_mutex_destroy(&c->shards[i].mu);
    }
    free(c);
}

void tnt_cache_invalidate(struct tnt_cache *c, const char *id)
{
    atomic_fetch_add(&c->invalidations, 1);
    if (!id) {
        for (int i = 0; i < CACHE_SHARDS; i++) {
            pthread_mutex_lock(&c->shards[i].mu);
            clear_shard(&c->shards[i]);
            pthread_mutex_unlock(&c->shards[i].mu);
        }
        return;
    }
    unsigned h = td_hash_str(id);
    struct cache_shard *s = shard_of(c, h);
    pthread_mutex_lock(&s->mu);
    struct td_hnode *n = td_htab_find(&s->ids, h, id_eq, id);
    if (n)
        drop(s, TD_CONTAINER_OF(n, struct centry, node));
    pthread_mutex_unlock(&s->mu);
}

/* A reference to the unexpired tenant with this id, or NULL. */
static struct tnt_tenant *lookup_id(struct tnt_cache *c, const char *id)
{
    unsigned h = td_hash_str(id);
    struct cache_shard *s = shard_of(c, h);
    struct tnt_tenant *t = NULL;
    pthread_mutex_lock(&s->mu);
    struct td_hnode *n = td_htab_find(&s->ids, h, id_eq, id);
    if (n) {
        struct centry *e = TD_CONTAINER_OF(n, struct centry, node);
        struct tnt_tenant *f = &TD_CONTAINER_OF(e, struct tnt_block, ce)->t;
        /* fresh: loaded, or confirmed by the listener, less than the TTL ago */
        long long seen =
            e->ttl_only ? 0 : atomic_load_explicit(&c->confirmed_us, memory_order_relaxed);
        if (td_now_us() - (seen > f->loaded_us ? seen : f->loaded_us) <
            (long long)c->ttl_ms * 1000) {
            e->ref = 1;
            t = tnt_tenant_ref(f);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return t;
}

/* The id the slug was last seen with into id[37]; 0 when unknown. */
static int lookup_slug(struct tnt_cache *c, const char *slug, char *id)
{
    unsigned h = td_hash_str(slug);
    struct cache_shard *s = shard_of(c, h);
    pthread_mutex_lock(&s->mu);
    struct td_hnode *n = td_htab_find(&s->slugs, h, slug_eq, slug);
    if (n) {
        struct centry *e = TD_CONTAINER_OF(n, struct centry, node);
        e->ref = 1;
        memcpy(id, TD_CONTAINER_OF(e, struct by_slug, ce)->id, 37);
    }
    pthread_mutex_unlock(&s->mu);
    return n != NULL;
}

/* File t by id (the cache takes a reference). An entry that only expired (no change was
 * announced) hands its generation on: what was learnt about the tenant's users stays
 * valid (src/tenant/usercheck.h). A tenant bigger than a shard's budget is not kept. */
static void insert_id(struct tnt_cache *c, struct tnt_tenant *t, unsigned long long invalidations)
{
    unsigned h = td_hash_str(t->id);
    struct cache_shard *s = shard_of(c, h);
    struct centry *e = &block_of(t)->ce;
    e->kind = CE_ID;
    /* read before an invalidation that this insert follows: the row may be older than the
     * change that invalidation announced, so only the TTL vouches for it */
    e->ttl_only = atomic_load(&c->invalidations) != invalidations;
    e->bytes = held(block_of(t));
    pthread_mutex_lock(&s->mu);
    struct td_hnode *n = td_htab_find(&s->ids, h, id_eq, t->id);
    if (n) {
        struct centry *old = TD_CONTAINER_OF(n, struct centry, node);
        t->gen = TD_CONTAINER_OF(old, struct tnt_block, ce)->t.gen;
        drop(s, old);
    }
    make_room(c, s, e->bytes);
    if (s->bytes + e->bytes <= c->shard_budget)
        ring_add(s, &block_of(tnt_tenant_ref(t))->ce, h);
    pthread_mutex_unlock(&s->mu);
}

static void insert_slug(struct tnt_cache *c, const char *slug, const char *id)
{
    unsigned h = td_hash_str(slug);
    struct cache_shard *s = shard_of(c, h);
    size_t len = strlen(slug) + 1;
    struct by_slug *e = td_xmalloc(sizeof(*e) + len);
    memcpy(e->id, id, 37);
    memcpy(e->slug, slug, len);
    e->ce.kind = CE_SLUG;
    e->ce.bytes = held(e);
    pthread_mutex_lock(&s->mu);
    struct td_hnode *n = td_htab_find(&s->slugs, h, slug_eq, slug);
    if (n)
        drop(s, TD_CONTAINER_OF(n, struct centry, node));
    make_room(c, s, e->ce.bytes);
    if (s->bytes + e->ce.bytes <= c->shard_budget) {
        ring_add(s, &e->ce, h);
        e = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    free(e);
}

/* The cached tenant key names (an id, or a slug whose tenant is still cached), or NULL. */
static struct tnt_tenant *lookup(struct tnt_cache *c, const char *key, int by_id)
{
    char id[37];
    if (by_id)
        return lookup_id(c, key);
    if (!lookup_slug(c, key, id))
        return NULL;
    struct tnt_tenant *t = lookup_id(c, id);
    if (t && strcmp(t->slug, key) != 0) { /* cannot happen: slugs do not change */
        tnt_tenant_unref(t);
        t = NULL;
    }
    return t;
}

int tnt_cache_get(struct tnt_cache *c, const char *key, struct tnt_tenant **out)
{
    int by_id = auth_is_uuid(key);
    *out = lookup(c, key, by_id);
    if (*out) {
        atomic_fetch_add_explicit(&c->hits, 1, memory_order_relaxed);
        return 0;
    }
    atomic_fetch_add_explicit(&c->misses, 1, memory_order_relaxed);
    if (!by_id && strlen(key) > 40)
        return TD_ETENANT_NOTFOUND;
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT %s FROM tenantd.tenants WHERE %s = $1", tnt_catalog_columns,
             by_id ? "id" : "slug");
    struct db_target tg = {.server = 0};
    struct db_stmt st = {sql, 1, (const char *const[]){key}, 0};
    PGresult *r = NULL;
    unsigned long long inval = atomic_load(&c->invalidations);
    int rc = db_exec(c->db, &tg, &st, 1, &r);
    if (rc < 0)
        return rc == TD_EUNAVAILABLE ? rc : TD_EUNAVAILABLE;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return TD_ETENANT_NOTFOUND;
    }
    struct tnt_tenant *t = tnt_tenant_from_row(c->db, r, 0);
    PQclear(r);
    insert_id(c, t, inval);
    /* a slug is filed only when asked for (requests naming the tenant by token or id need
     * none), and never a UUID that is not the tenant's id (a UUID-shaped slug from an older
     * catalog would answer for the tenant that has that id) */
    if (!by_id && !auth_is_uuid(t->slug))
        insert_slug(c, t->slug, t->id);
    *out = t; /* the creation reference becomes the caller's */
    return 0;
}

void tnt_cache_confirm(struct tnt_cache *c, long long since_us)
{
    atomic_store(&c->confirmed_us, since_us);
}

void tnt_cache_stats(struct tnt_cache *c, struct td_cache_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->hits = atomic_load(&c->hits);
    out->misses = atomic_load(&c->misses);
    out->evictions = atomic_load(&c->evictions);
    out->budget = c->shard_budget * CACHE_SHARDS;
    for (int i = 0; i < CACHE_SHARDS; i++) {
        pthread_mutex_lock(&c->shards[i].mu);
        out->entries += c->shards[i].n;
        out->bytes += c->shards[i].bytes;
        pthread_mutex_unlock(&c->shards[i].mu);
    }
}
