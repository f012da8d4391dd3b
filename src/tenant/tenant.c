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

struct tnt_tenant *tnt_tenant_ref(struct tnt_tenant *t)
{
    atomic_fetch_add(&t->refs, 1);
    return t;
}

void tnt_tenant_unref(struct tnt_tenant *t)
{
    if (!t || atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    free(t->slug);
    free(t->name);
    free(t->plan);
    free(t->server);
    free(t->created_at);
    free(t->expires_at_text);
    free(t);
}

struct tnt_tenant *tnt_tenant_from_row(struct db *db, const PGresult *r, int row)
{
    static atomic_ullong gens;
    struct tnt_tenant *t = td_xcalloc(1, sizeof(*t));
    atomic_init(&t->refs, 1);
    t->gen = atomic_fetch_add(&gens, 1) + 1;
    const char *id = PQgetvalue(r, row, 0);
    snprintf(t->id, sizeof(t->id), "%s", id);
    /* the catalog's ids are UUIDs (a column of that type): names cannot fail here */
    if (tnt_name_of(id, TNT_NAME_SCHEMA, t->ident) < 0 ||
        tnt_name_of(id, TNT_NAME_DATABASE, t->dbname) < 0)
        td_log_error("tenant id %s is not a UUID", id);
    t->slug = td_xstrdup(PQgetvalue(r, row, 1));
    t->name = td_xstrdup(PQgetvalue(r, row, 2));
    t->plan = td_xstrdup(PQgetvalue(r, row, 3));
    t->isolation = (enum tnt_isolation)tnt_isolation_parse(PQgetvalue(r, row, 4));
    t->suspended = strcmp(PQgetvalue(r, row, 5), "suspended") == 0;
    t->server = td_xstrdup(PQgetvalue(r, row, 6));
    t->server_idx = db ? db_server_find(db, t->server) : 0;
    if (t->server_idx < 0)
        td_log_error("tenant %s is placed on server \"%s\", which this instance does not know "
                     "(TENANTD_DB_SERVERS): its requests fail until it is configured",
                     t->slug, t->server);
    if (!PQgetisnull(r, row, 7)) {
        t->expires_at_text = td_xstrdup(PQgetvalue(r, row, 7));
        t->expires_at = atoll(PQgetvalue(r, row, 8));
    }
    t->created_at = td_xstrdup(PQgetvalue(r, row, 9));
    t->schema_version = PQnfields(r) > 10 ? atoi(PQgetvalue(r, row, 10)) : 0;
    t->loaded_us = td_now_us();
    return t;
}

json_t *tnt_tenant_json(const struct tnt_tenant *t)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:s}", "id", t->id, "slug", t->slug,
                     "name", t->name, "plan", t->plan, "isolation",
                     tnt_isolation_name(t->isolation), "status",
                     t->suspended ? "suspended" : "active", "server", t->server,
                     "subscription_expires_at", t->expires_at_text, "created_at", t->created_at);
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
 * Tenants are filed by id; a slug is filed as a pointer to an id, so that forgetting a
 * tenant is one removal in one shard (no scan, and no slug entry to chase: a slug whose
 * id is gone is a miss, and a slug reused by a new tenant is re-pointed on its load).
 * Keys are spread over CACHE_SHARDS shards, each with its own lock and table, so lookups
 * of different tenants rarely wait for each other. No lock is held while another is
 * taken.
 */
#define CACHE_SHARDS 16
#define CACHE_BUCKETS 1024 /* per shard */

struct by_id {
    struct td_hnode node;
    struct tnt_tenant *t; /* key: t->id */
};

struct by_slug {
    struct td_hnode node;
    char *slug;
    char id[37];
};

struct cache_shard {
    pthread_mutex_t mu;
    struct td_htab ids, slugs;
};

struct tnt_cache {
    struct db *db;
    int max_per_shard, ttl_ms;
    atomic_ullong hits, misses, evictions;
    struct cache_shard shards[CACHE_SHARDS];
};

struct tnt_cache *tnt_cache_new(struct db *db, int max, int ttl_ms)
{
    struct tnt_cache *c = td_xcalloc(1, sizeof(*c));
    c->db = db;
    c->max_per_shard = max / CACHE_SHARDS > 0 ? max / CACHE_SHARDS : 1;
    c->ttl_ms = ttl_ms;
    for (int i = 0; i < CACHE_SHARDS; i++) {
        pthread_mutex_init(&c->shards[i].mu, NULL);
        td_htab_init(&c->shards[i].ids, CACHE_BUCKETS);
        td_htab_init(&c->shards[i].slugs, CACHE_BUCKETS);
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
    return strcmp(TD_CONTAINER_OF(n, struct by_id, node)->t->id, key) == 0;
}

static int slug_eq(const struct td_hnode *n, const void *key)
{
    return strcmp(TD_CONTAINER_OF(n, struct by_slug, node)->slug, key) == 0;
}

static void free_id(struct by_id *e)
{
    tnt_tenant_unref(e->t);
    free(e);
}

static void free_slug(struct by_slug *e)
{
    free(e->slug);
    free(e);
}

/* Empty the shard (its lock held, or the cache being freed). */
static void clear_shard(struct cache_shard *s)
{
    struct td_hnode *n;
    while ((n = td_htab_pop(&s->ids)))
        free_id(TD_CONTAINER_OF(n, struct by_id, node));
    while ((n = td_htab_pop(&s->slugs)))
        free_slug(TD_CONTAINER_OF(n, struct by_slug, node));
}

void tnt_cache_free(struct tnt_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < CACHE_SHARDS; i++) {
        clear_shard(&c->shards[i]);
        td_htab_cleanup(&c->shards[i].ids);
        td_htab_cleanup(&c->shards[i].slugs);
        pthread_mutex_destroy(&c->shards[i].mu);
    }
    free(c);
}

void tnt_cache_invalidate(struct tnt_cache *c, const char *id)
{
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
        td_htab_del(&s->ids, n);
    pthread_mutex_unlock(&s->mu);
    if (n)
        free_id(TD_CONTAINER_OF(n, struct by_id, node));
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
        struct tnt_tenant *e = TD_CONTAINER_OF(n, struct by_id, node)->t;
        if (td_now_us() - e->loaded_us < (long long)c->ttl_ms * 1000)
            t = tnt_tenant_ref(e);
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
    if (n)
        memcpy(id, TD_CONTAINER_OF(n, struct by_slug, node)->id, 37);
    pthread_mutex_unlock(&s->mu);
    return n != NULL;
}

/* File t by id. An entry that only expired (no change was announced) hands its generation
 * on: what was learnt about the tenant's users stays valid (src/tenant/usercheck.h). */
static void insert_id(struct tnt_cache *c, struct tnt_tenant *t)
{
    unsigned h = td_hash_str(t->id);
    struct cache_shard *s = shard_of(c, h);
    struct by_id *old = NULL, *e = td_xcalloc(1, sizeof(*e));
    e->t = tnt_tenant_ref(t);
    pthread_mutex_lock(&s->mu);
    struct td_hnode *n = td_htab_find(&s->ids, h, id_eq, t->id);
    if (n) {
        old = TD_CONTAINER_OF(n, struct by_id, node);
        t->gen = old->t->gen;
        td_htab_del(&s->ids, n);
    } else if (s->ids.count >= (size_t)c->max_per_shard) {
        atomic_fetch_add(&c->evictions, s->ids.count);
        clear_shard(s); /* rare: a full shard starts over rather than track recency */
    }
    td_htab_add(&s->ids, &e->node, h);
    pthread_mutex_unlock(&s->mu);
    if (old)
        free_id(old);
}

static void insert_slug(struct tnt_cache *c, const char *slug, const char *id)
{
    unsigned h = td_hash_str(slug);
    struct cache_shard *s = shard_of(c, h);
    pthread_mutex_lock(&s->mu);
    struct td_hnode *n = td_htab_find(&s->slugs, h, slug_eq, slug);
    if (n) {
        memcpy(TD_CONTAINER_OF(n, struct by_slug, node)->id, id, 37);
    } else {
        if (s->slugs.count >= (size_t)c->max_per_shard)
            clear_shard(s);
        struct by_slug *e = td_xcalloc(1, sizeof(*e));
        e->slug = td_xstrdup(slug);
        memcpy(e->id, id, 37);
        td_htab_add(&s->slugs, &e->node, h);
    }
    pthread_mutex_unlock(&s->mu);
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
    int rc = db_exec(c->db, &tg, &st, 1, &r);
    if (rc < 0)
        return rc == TD_EUNAVAILABLE ? rc : TD_EUNAVAILABLE;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return TD_ETENANT_NOTFOUND;
    }
    struct tnt_tenant *t = tnt_tenant_from_row(c->db, r, 0);
    PQclear(r);
    insert_id(c, t);
    /* never file a tenant under a UUID that is not its id (a UUID-shaped slug from an older
     * catalog would answer for the tenant that has that id) */
    if (!auth_is_uuid(t->slug))
        insert_slug(c, t->slug, t->id);
    *out = t; /* the creation reference becomes the caller's */
    return 0;
}

void tnt_cache_stats(struct tnt_cache *c, struct td_cache_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->hits = atomic_load(&c->hits);
    out->misses = atomic_load(&c->misses);
    out->evictions = atomic_load(&c->evictions);
    for (int i = 0; i < CACHE_SHARDS; i++) {
        pthread_mutex_lock(&c->shards[i].mu);
        out->entries += c->shards[i].ids.count;
        pthread_mutex_unlock(&c->shards[i].mu);
    }
}
