/*
 * tenant.c - tenant objects and the bounded cache of resolved tenants.
 */
#include "tenant/tenant.h"

#include "auth/jwt.h"
#include "core/clock.h"
#include "core/hash.h"
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

#define CACHE_BUCKETS 4096

struct cache_entry {
    char *key; /* slug or id */
    struct tnt_tenant *t;
    struct cache_entry *next;
};

struct tnt_cache {
    struct db *db;
    int max, ttl_ms, count;
    pthread_mutex_t mu;
    struct cache_entry *buckets[CACHE_BUCKETS];
};

struct tnt_cache *tnt_cache_new(struct db *db, int max, int ttl_ms)
{
    struct tnt_cache *c = td_xcalloc(1, sizeof(*c));
    c->db = db;
    c->max = max;
    c->ttl_ms = ttl_ms;
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

static unsigned bucket_of(const char *key)
{
    return td_hash_str(key) % CACHE_BUCKETS;
}

static void clear_locked(struct tnt_cache *c, const char *id)
{
    for (int b = 0; b < CACHE_BUCKETS; b++) {
        struct cache_entry **pp = &c->buckets[b];
        while (*pp) {
            struct cache_entry *e = *pp;
            if (id && strcmp(e->t->id, id) != 0) {
                pp = &e->next;
                continue;
            }
            *pp = e->next;
            tnt_tenant_unref(e->t);
            free(e->key);
            free(e);
            c->count--;
        }
    }
}

void tnt_cache_free(struct tnt_cache *c)
{
    if (!c)
        return;
    clear_locked(c, NULL);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void tnt_cache_invalidate(struct tnt_cache *c, const char *id)
{
    pthread_mutex_lock(&c->mu);
    clear_locked(c, id);
    pthread_mutex_unlock(&c->mu);
}

/* The entry filed under key, expired or not, or NULL. */
static struct cache_entry *find_locked(struct tnt_cache *c, const char *key)
{
    for (struct cache_entry *e = c->buckets[bucket_of(key)]; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static struct tnt_tenant *lookup_locked(struct tnt_cache *c, const char *key)
{
    struct cache_entry *e = find_locked(c, key);
    return e && td_now_us() - e->t->loaded_us < (long long)c->ttl_ms * 1000 ? e->t : NULL;
}

static void insert_locked(struct tnt_cache *c, const char *key, struct tnt_tenant *t)
{
    struct cache_entry *e = find_locked(c, key);
    if (e) {
        tnt_tenant_unref(e->t);
        e->t = tnt_tenant_ref(t);
        return;
    }
    if (c->count >= c->max)
        clear_locked(c, NULL); /* rare: a full cache starts over rather than track recency */
    unsigned b = bucket_of(key);
    e = td_xcalloc(1, sizeof(*e));
    e->key = td_xstrdup(key);
    e->t = tnt_tenant_ref(t);
    e->next = c->buckets[b];
    c->buckets[b] = e;
    c->count++;
}

int tnt_cache_get(struct tnt_cache *c, const char *key, struct tnt_tenant **out)
{
    *out = NULL;
    pthread_mutex_lock(&c->mu);
    struct tnt_tenant *t = lookup_locked(c, key);
    if (t)
        *out = tnt_tenant_ref(t);
    pthread_mutex_unlock(&c->mu);
    if (*out)
        return 0;

    int by_id = auth_is_uuid(key);
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
    t = tnt_tenant_from_row(c->db, r, 0);
    PQclear(r);
    pthread_mutex_lock(&c->mu);
    /* an entry that only expired (no change was announced) hands its generation on: what
     * was learnt about the tenant's users stays valid (src/tenant/usercheck.h) */
    struct cache_entry *old = find_locked(c, t->id);
    if (old)
        t->gen = old->t->gen;
    insert_locked(c, t->id, t);
    /* never file a tenant under a UUID that is not its id (a UUID-shaped slug from an older
     * catalog would answer for the tenant that has that id) */
    if (!auth_is_uuid(t->slug))
        insert_locked(c, t->slug, t);
    pthread_mutex_unlock(&c->mu);
    *out = t; /* the creation reference becomes the caller's */
    return 0;
}
