/*
 * plans.h - plan limits (SPEC §5) and the per-tenant monthly API-call counters.
 *
 * Counting costs no write per request: each instance counts in memory and a background
 * thread adds its deltas to tenantd.usage once a second, reading back the month's
 * total across instances. Figures therefore lag by about a second. The first time an
 * instance sees a tenant in a month it reads that month's total from tenantd.usage
 * (one query), so a restarted instance does not grant a spent budget again.
 */
#ifndef TD_API_PLANS_H
#define TD_API_PLANS_H

#include "db/db.h"

struct api_plan {
    const char *name;
    long max_users, max_projects, api_calls; /* -1: unlimited */
};

/* Limits of the plan called name, or NULL. */
const struct api_plan *api_plan_get(const char *name);

struct api_usage;

/* Start the counters and their flusher thread. */
struct api_usage *api_usage_new(struct db *db);
/* Flush what is pending, stop the thread, free. */
void api_usage_free(struct api_usage *u);
/* Count one call of tenant_id this month; returns 1 when the budget (limit, -1 for
 * none) was already spent, in which case the call is not counted. Thread-safe. */
int api_usage_hit(struct api_usage *u, const char *tenant_id, long limit);
/* Calls counted this month (catalog total plus this instance's pending ones). */
long long api_usage_month(struct api_usage *u, const char *tenant_id);
/* Seconds until the current UTC month ends. */
long api_usage_month_left(void);
/* Write pending counts now. */
void api_usage_flush(struct api_usage *u);

#endif
