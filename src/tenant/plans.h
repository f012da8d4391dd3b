/*
 * plans.h - plan limits (SPEC §5) and the per-tenant monthly API-call counters.
 *
 * Counting costs no write per request: each instance counts in memory and a background
 * thread adds its deltas to tenantd.usage once a second, reading back the month's
 * total across instances. Figures therefore lag by about a second. The first time an
 * instance sees a tenant in a month it reads that month's total from tenantd.usage
 * (one query), so a restarted instance does not grant a spent budget again. The same
 * entry, one a tenant served and kept until the counters are freed, counts the tenant's
 * requests for GET /metrics.
 */
#ifndef TD_TENANT_PLANS_H
#define TD_TENANT_PLANS_H

#include "core/cachestats.h"
#include "db/db.h"
#include "tenant/tenant.h"

struct tnt_plan {
    const char *name;
    long max_users, max_projects, api_calls; /* -1: unlimited */
};

/* Limits of the plan called name, or NULL. */
const struct tnt_plan *tnt_plan_get(const char *name);

struct tnt_usage;

/* Start the counters and their flusher thread. */
struct tnt_usage *tnt_usage_new(struct db *db);
/* Flush what is pending, stop the thread, free. */
void tnt_usage_free(struct tnt_usage *u);
/* Count one call of tenant t this month; returns 1 when the budget (limit, -1 for none) was
 * already spent, in which case the call is not counted. Thread-safe. */
int tnt_usage_hit(struct tnt_usage *u, const struct tnt_tenant *t, long limit);
/* Calls counted this month (catalog total plus this instance's pending ones). */
long long tnt_usage_month(struct tnt_usage *u, const struct tnt_tenant *t);
/* Count one request to a tenant route of t (GET /metrics), in t's usage entry: one entry a
 * tenant serves both. Returns 0, or TD_EVALIDATION when t's id is not a UUID (not counted).
 * Thread-safe. */
int tnt_usage_request(struct tnt_usage *u, const struct tnt_tenant *t);

struct tnt_request_count {
    const char *slug; /* valid until tnt_usage_free */
    unsigned long long n;
};
/* The k tenants with the most requests counted, into rows[k], most first (ties by slug);
 * returns how many (tenants never counted are left out). *rest gets the sum of every other
 * tenant's requests. Thread-safe. */
size_t tnt_usage_requests(struct tnt_usage *u, struct tnt_request_count *rows, size_t k,
                          unsigned long long *rest);
/* Seconds until the current UTC month ends. */
long tnt_usage_month_left(void);
/* Write pending counts now. */
void tnt_usage_flush(struct tnt_usage *u);
/* Counts found (hits) and read from the catalog first (misses), entries held and their
 * memory. */
void tnt_usage_stats(struct tnt_usage *u, struct td_cache_stats *out);

#endif
