/*
 * resolver.h - which tenant a request names: path /t/{slug}, X-Tenant-ID (uuid or
 * slug) and Host subdomain. The token's tid is checked by the guard (src/api/guard.c).
 */
#ifndef TD_TENANT_RESOLVER_H
#define TD_TENANT_RESOLVER_H

#include "tenant/tenant.h"

#include <stddef.h>

/*
 * When host (optionally with ":port") is exactly one label under base, copy that label
 * (lowercased) to out and return 1; else return 0. "acme.example.com:8080" under
 * "example.com" gives "acme". Pure; thread-safe.
 */
int tnt_subdomain(const char *host, const char *base, char *out, size_t cap);

/*
 * Resolve the named sources (NULL entries skipped) to one tenant. Returns 0 with *out
 * (a reference) and *mismatch set to 1 when two sources name different tenants;
 * TD_ETENANT_REQUIRED when no source is given; TD_ETENANT_NOTFOUND when one names no
 * tenant; TD_EUNAVAILABLE when the catalog cannot be read.
 */
int tnt_resolve(struct tnt_cache *c, const char *const *sources, int n, struct tnt_tenant **out,
                int *mismatch) TD_MUSTCHECK;

#endif
