/*
 * cors.c - the allowed origins, compared exactly: an origin is never reflected unless it
 * is one of them, and no pattern or suffix matching can be tricked by evil-example.com.
 */
#include "http/cors.h"

#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

struct http_cors {
    int n;
    char **origins;
};

struct http_cors *http_cors_new(const char *origins)
{
    if (!origins || !*origins)
        return NULL;
    struct http_cors *c = td_xcalloc(1, sizeof(*c));
    for (const char *p = origins; *p;) {
        size_t len = strcspn(p, ",");
        if (len > 0) {
            c->origins = td_xrealloc(c->origins, (size_t)(c->n + 1) * sizeof(char *));
            c->origins[c->n] = td_xmalloc(len + 1);
            memcpy(c->origins[c->n], p, len);
            c->origins[c->n++][len] = '\0';
        }
        p += len + (p[len] == ',');
    }
    return c;
}

void http_cors_free(struct http_cors *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n; i++)
        free(c->origins[i]);
    free(c->origins);
    free(c);
}

int http_cors_allowed(const struct http_cors *c, const char *origin)
{
    if (!c || !origin)
        return 0;
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->origins[i], origin) == 0)
            return 1;
    return 0;
}
