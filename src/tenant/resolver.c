/*
 * resolver.c - tenant identification from path, header and Host.
 */
#include "tenant/resolver.h"

#include <ctype.h>
#include <strings.h>
#include <string.h>

int tnt_subdomain(const char *host, const char *base, char *out, size_t cap)
{
    if (!host || !base || !*base)
        return 0;
    size_t hl = strcspn(host, ":");
    size_t bl = strlen(base);
    if (hl <= bl + 1 || host[hl - bl - 1] != '.' || strncasecmp(host + hl - bl, base, bl) != 0)
        return 0;
    size_t ll = hl - bl - 1;
    if (ll >= cap || memchr(host, '.', ll))
        return 0;
    for (size_t i = 0; i < ll; i++)
        out[i] = (char)tolower((unsigned char)host[i]);
    out[ll] = '\0';
    return 1;
}

int tnt_resolve(struct tnt_cache *c, const char *const *sources, int n, struct tnt_tenant **out,
                int *mismatch)
{
    struct tnt_tenant *found = NULL;
    *out = NULL;
    *mismatch = 0;
    for (int i = 0; i < n; i++) {
        if (!sources[i])
            continue;
        struct tnt_tenant *t = NULL;
        int rc = tnt_cache_get(c, sources[i], &t);
        if (rc < 0) {
            tnt_tenant_unref(found);
            return rc;
        }
        if (!found) {
            found = t;
            continue;
        }
        if (strcmp(found->id, t->id) != 0)
            *mismatch = 1;
        tnt_tenant_unref(t);
    }
    if (!found)
        return TD_ETENANT_REQUIRED;
    *out = found;
    return 0;
}
