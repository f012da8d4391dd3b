/*
 * move.h - moving a tenant to another isolation and/or server with no row lost: copy,
 * verify row counts, switch the catalog row, drop the old copy.
 *
 * Writes during a move are blocked, not carried over: the old storage's tables are
 * locked (ACCESS EXCLUSIVE) from before the copy until the old copy is gone, so a
 * transaction that waited fails (its storage vanished) and never commits there. See
 * docs/isolation.md.
 */
#ifndef TD_TENANT_MOVE_H
#define TD_TENANT_MOVE_H

#include "migrate/files.h"
#include "tenant/tenant.h"

/*
 * Move tenant t (as the caller last saw it; the catalog row is re-read and locked) to
 * isolation (TNT_ISO_*, or -1: keep) on server (a configured name, or NULL: keep).
 * When it already lives there nothing is done. *out gets the tenant as it is afterwards
 * (1 ref, caller releases). Returns 0, TD_EVALIDATION (unknown server or isolation),
 * TD_ETENANT_NOTFOUND (deleted meanwhile), TD_EUNAVAILABLE (a server is unreachable or
 * the old storage stayed busy for lock_timeout), or TD_EINTERNAL (row counts differ or
 * another failure; logged). On failure before the catalog switch the tenant stays where
 * it was, untouched. Blocking; thread-safe (concurrent moves of one tenant serialise on
 * its catalog row).
 */
int tnt_move(struct db *db, const struct mig_set *migs, const struct tnt_tenant *t, int isolation,
             const char *server, struct tnt_tenant **out) TD_MUSTCHECK;

/* tnt_move that also drops the tenant from cache (may be NULL) right after the catalog
 * switch and before the old storage is released, so requests that waited for the move
 * find the new place on their retry (src/api/tx.c). */
int tnt_move_cached(struct db *db, struct tnt_cache *cache, const struct mig_set *migs,
                    const struct tnt_tenant *t, int isolation, const char *server,
                    struct tnt_tenant **out) TD_MUSTCHECK;

#endif
