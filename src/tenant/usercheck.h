/*
 * usercheck.h - what the database said about a token's user, remembered for a while.
 *
 * Every authenticated transaction checks in the database that the token's user still
 * exists in the tenant's storage and holds the route's role (TNT_USER_CHECK_SQL). For reads
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

/*
 * The user check of an authenticated transaction: the token's user must still exist in
 * the tenant's storage (else SQLSTATE TD401) and hold at least role `min` (else TD403);
 * its value is the user's role. Inline SQL, so that the common case runs no function:
 * ranks member < admin < owner by array_position; only a failing check calls the
 * storage's plpgsql tenant_guard (migrations/tenant/0001_tenant.sql), which raises the
 * error. Naming the users table in the statement also locks it before the statement's
 * snapshot is taken (src/api/tx.c).
 * schema: "" or "pool." (with the dot); user, min: parameter references such as "$1".
 */
#define TNT_USER_CHECK_SQL(schema, user, min)                                                      \
    "coalesce((SELECT CASE WHEN array_position('{member,admin,owner}'::text[], u.role) >= "        \
    "array_position('{member,admin,owner}'::text[], coalesce(" min ", 'member')) THEN u.role "     \
    "ELSE " schema "tenant_guard(" user "::uuid, " min ") END FROM " schema "users u WHERE "       \
    "u.id = " user "::uuid), " schema "tenant_guard(" user "::uuid, " min "))"

/* Room for a user's role as TNT_USER_CHECK_SQL returns it ("member", "admin", "owner"). */
#define TNT_ROLE_MAX 8

/* A table of remembered checks in budget bytes (40 a check; at least one set of 8), one
 * per application. Allocation failure aborts. */
struct tnt_usercheck *tnt_usercheck_new(size_t budget);
/* NULL is a no-op. */
void tnt_usercheck_free(struct tnt_usercheck *u);
/* 1 when user held at least role min (NULL: any role) in t less than ttl_s ago. */
int tnt_usercheck_ok(struct tnt_usercheck *u, const struct tnt_tenant *t, const char *user,
                     const char *min, int ttl_s);
/* Remember that user holds role in t (as the database said just now). */
void tnt_usercheck_put(struct tnt_usercheck *u, const struct tnt_tenant *t, const char *user,
                       const char *role);
/* Checks answered (hits) and not (misses: the transaction checks), facts dropped for
 * others (evictions). Thread-safe. */
void tnt_usercheck_stats(struct tnt_usercheck *u, struct td_cache_stats *out);

#endif
