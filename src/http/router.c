/*
 * router.c - segment-by-segment matching of a path against route patterns.
 */
#include "http/router.h"

#include <string.h>

/* Compare one path against one pattern; on success params[] point into the arena. */
static int match_one(const char *pattern, const char *path, struct td_arena *arena,
                     const char **params, int *nparams)
{
    int np = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p != '/' || *s != '/')
            return 0;
        p++;
        s++;
        const char *pe = strchr(p, '/');
        const char *se = strchr(s, '/');
        size_t plen = pe ? (size_t)(pe - p) : strlen(p);
        size_t slen = se ? (size_t)(se - s) : strlen(s);
        if (plen > 1 && p[0] == '{' && p[plen - 1] == '}') {
            if (slen == 0 || np == HTTP_MAX_PARAMS)
                return 0;
            params[np++] = td_arena_strndup(arena, s, slen);
        } else if (plen != slen || memcmp(p, s, plen) != 0) {
            return 0;
        }
        p += plen;
        s += slen;
    }
    /* a single trailing slash on the path is tolerated */
    if (*p == '\0' && (*s == '\0' || (s[0] == '/' && s[1] == '\0'))) {
        *nparams = np;
        return 1;
    }
    return 0;
}

const struct http_route *http_router_match(const struct http_route *routes, size_t n,
                                           const char *method, const char *path,
                                           struct td_arena *arena, const char **params,
                                           int *nparams, int *path_known)
{
    *path_known = 0;
    *nparams = 0;
    for (size_t i = 0; i < n; i++) {
        const char *tmp[HTTP_MAX_PARAMS];
        int ntmp = 0;
        if (!match_one(routes[i].pattern, path, arena, tmp, &ntmp))
            continue;
        if (strcmp(routes[i].method, method) != 0) {
            *path_known = 1;
            continue;
        }
        memcpy(params, tmp, sizeof(tmp[0]) * (size_t)ntmp);
        *nparams = ntmp;
        return &routes[i];
    }
    return NULL;
}

int http_router_split_tenant(const char *url, struct td_arena *arena, const char **slug,
                             const char **rest)
{
    if (strncmp(url, "/t/", 3) != 0 || url[3] == '\0' || url[3] == '/') {
        *slug = NULL;
        *rest = url;
        return 0;
    }
    const char *s = url + 3;
    const char *e = strchr(s, '/');
    if (!e) {
        *slug = td_arena_strdup(arena, s);
        *rest = "/";
    } else {
        *slug = td_arena_strndup(arena, s, (size_t)(e - s));
        *rest = e;
    }
    return 1;
}
