/*
 * notify.h - cross-instance cache invalidation: a thread LISTENs on channel
 * "tenantd_tenants" of the catalog and drops the named tenant from the local cache. Every
 * TNT_LISTENER_BEAT_MS it makes a round trip and confirms the cache (tnt_cache_confirm), so
 * cached tenants outlive their TTL while the listener is known to hear every change.
 */
#ifndef TD_TENANT_NOTIFY_H
#define TD_TENANT_NOTIFY_H

#include "tenant/tenant.h"

#define TNT_LISTENER_BEAT_MS 5000

struct tnt_listener;

/* Start listening (reconnecting when the catalog goes away). */
struct tnt_listener *tnt_listener_start(struct db *db, struct tnt_cache *cache);
void tnt_listener_stop(struct tnt_listener *l);

#endif
