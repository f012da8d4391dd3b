/*
 * notify.h - cross-instance cache invalidation: a thread LISTENs on channel
 * "tenantd_tenants" of the catalog and drops the named tenant from the local cache.
 */
#ifndef TD_TENANT_NOTIFY_H
#define TD_TENANT_NOTIFY_H

#include "tenant/tenant.h"

struct tnt_listener;

/* Start listening (reconnecting when the catalog goes away). */
struct tnt_listener *tnt_listener_start(struct db *db, struct tnt_cache *cache);
void tnt_listener_stop(struct tnt_listener *l);

#endif
