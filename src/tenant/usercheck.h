/*
 * usercheck.h - what the database said about a token's user, remembered for a while.
 *
 * Every authenticated transaction checks in the database that the token's user still
 * exists in the tenant's storage and holds the route's role (DB_GUARD_SQL). For reads
 * that check is the costlier half of the work (a second index probe, and for a schema
 * tenant two more relations each backend must load), so a passed check is remembered
 * for TENANTD_USER_CHECK_TTL seconds and reads within that time skip it. Writes always
 * check. A fact belongs to one published tenant object (struct tnt_tenant.gen): any
 * change to the tenant, including a user's role change or removal through the API
 * (which notifies every instance), publishes a new object and so forgets every fact
 * about that tenant's users. Thread-safe.
 */
#ifndef TD_TENANT_USERCHECK_H
#define TD_TENANT_USERCHECK_H

#include "tenant/tenant.h"

struct tnt_usercheck;

/* A table of remembered checks (one per application: 4 MiB). Allocation failure aborts. */
struct tnt_usercheck *tnt_usercheck_new(void);
/* NULL is a no-op. */
void tnt_usercheck_free(struct tnt_usercheck *u);
/* 1 when user held at least role min (NULL: any role) in t less than ttl_s ago. */
int tnt_usercheck_ok(struct tnt_usercheck *u, const struct tnt_tenant *t, const char *user,
                     const char *min, int ttl_s);
/* Remember that user holds role in t (as the database said just now). */
void tnt_usercheck_put(struct tnt_usercheck *u, const struct tnt_tenant *t, const char *user,
                       const char *role);

#endif
