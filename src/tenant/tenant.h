/*
 * tenant.h - a tenant as the catalog describes it, and the cache of resolved tenants.
 *
 * A struct tnt_tenant is immutable once published and refcounted: the cache holds one
 * reference, each request that uses it another (tnt_tenant_unref releases). A change
 * in the catalog publishes a new object; the old one lives until its last user drops it.
 */
#ifndef TD_TENANT_TENANT_H
#define TD_TENANT_TENANT_H

#include "core/cachestats.h"
#include "core/err.h"
#include "db/db.h"

#include <jansson.h>
#include <stdatomic.h>

enum tnt_isolation { TNT_ISO_POOL, TNT_ISO_SCHEMA, TNT_ISO_DATABASE };

struct tnt_tenant {
    atomic_int refs;
    enum tnt_isolation isolation;
    int server_idx; /* index of server in the db; -1: not configured in this instance */
    int suspended;
    int schema_version; /* tenant migration version of its storage (catalog summary) */
    char id[37];
    /* Storage names (tnt_name_of): ident "t_" + 32 hex, the schema and role of schema and
     * database tenants; dbname "td_" + 32 hex, the database of database tenants. Both ""
     * for a pool tenant, which has neither (71 bytes less for most cached tenants). */
    char *ident, *dbname;
    char *slug, *name, *plan, *server, *expires_at_text;
    /* created_at: microseconds since the epoch, or, when the catalog's text does not come
     * back from them, that text (created_text, else NULL): 20 bytes less a tenant.
     * tnt_tenant_created_at gives the text either way. */
    long long created_us;
    char *created_text;
    long long expires_at; /* unix seconds; 0: never */
    long long loaded_us;
    unsigned long long gen; /* changes when a change to the tenant is announced, never 0
                             * (src/tenant/usercheck.h); kept when an entry only expired */
};

struct tnt_cache;

const char *tnt_isolation_name(enum tnt_isolation iso);
/* TNT_ISO_* for "pool", "schema", "database"; -1 otherwise. */
int tnt_isolation_parse(const char *s);

void tnt_tenant_unref(struct tnt_tenant *t);
struct tnt_tenant *tnt_tenant_ref(struct tnt_tenant *t);
/* t's created_at as the catalog gives it (YYYY-MM-DDTHH:MI:SS.ffffffZ, UTC), in out or
 * t's block. */
const char *tnt_tenant_created_at(const struct tnt_tenant *t, char out[64]);
/* Tenant as the API shows it: {id, slug, name, plan, isolation, status, server, ...}. */
json_t *tnt_tenant_json(const struct tnt_tenant *t);
/* The db_target of t's storage (strings point into t); its server is -1 when t's server
 * is not configured here, which db_exec refuses with TD_EUNAVAILABLE. */
void tnt_tenant_target(const struct tnt_tenant *t, struct db_target *out);

/* Cache of tenants holding at most budget bytes (a pool tenant takes about 260), each trusted for
 * ttl_ms; when full, the tenant not looked up for longest (CLOCK) makes room. Thread-safe. */
struct tnt_cache *tnt_cache_new(struct db *db, size_t budget, int ttl_ms);
void tnt_cache_free(struct tnt_cache *c);
/*
 * Find a tenant by slug or id (key may be either), from the cache or the catalog.
 * *out gets a reference the caller releases. Returns 0, TD_ETENANT_NOTFOUND, or
 * TD_EUNAVAILABLE.
 */
int tnt_cache_get(struct tnt_cache *c, const char *key, struct tnt_tenant **out) TD_MUSTCHECK;
/* Forget everything cached about the tenant with this id (NULL: everything). */
void tnt_cache_invalidate(struct tnt_cache *c, const char *id);
/*
 * Every change to the catalog made before since_us (td_now_us()) has been announced to and
 * applied by this cache (the listener's connection did a round trip that started then,
 * and the notifications it brought were applied); 0: that is not known (the listener lost
 * its connection). A cached tenant is trusted while it was loaded or confirmed less than
 * the TTL ago, so with a live listener tenants stay cached however rarely they are used,
 * and never more than the TTL behind the catalog. Thread-safe.
 */
void tnt_cache_confirm(struct tnt_cache *c, long long since_us);
/* Hits, misses (catalog reads), evictions and size so far. Thread-safe. */
void tnt_cache_stats(struct tnt_cache *c, struct td_cache_stats *out);

/* The catalog query's columns, in the order tnt_tenant_from_row expects. */
extern const char tnt_catalog_columns[];
/* Build a tenant (1 ref) from row of a result selecting tnt_catalog_columns. Its server
 * string is db's (db must outlive it) when db knows the server. */
struct tnt_tenant *tnt_tenant_from_row(struct db *db, const PGresult *r, int row);

#endif
