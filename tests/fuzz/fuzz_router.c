/*
 * fuzz_router.c - request routing and tenant identification: the /t/{slug} split, route
 * matching over the real table (api_routes), Host subdomains, and the slug/UUID checks
 * every tenant name and {id} goes through. Input: "METHOD\nURL\nHOST\nBASE" (any part may
 * be missing). Besides sanitizer reports, each result is checked against the contract in
 * router.h / resolver.h and against a POSIX regex for slugs and UUIDs.
 */
#include "api/api.h"
#include "app/app.h"
#include "api/validate.h"
#include "auth/jwt.h"
#include "core/mem.h"
#include "http/router.h"
#include "tenant/resolver.h"

#include <ctype.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static regex_t slug_re, uuid_re;

static void init_once(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    if (regcomp(&slug_re, "^[a-z][a-z0-9-]{1,38}[a-z0-9]$", REG_EXTENDED | REG_NOSUB) ||
        regcomp(&uuid_re,
                "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
                REG_EXTENDED | REG_NOSUB))
        abort();
}

/* Next '\n'-separated field of [*p, end) as a fresh NUL-terminated string (NULs dropped,
 * as an HTTP library would never hand them over inside a C string). */
static char *field(const uint8_t **p, const uint8_t *end, int *present)
{
    const uint8_t *s = *p;
    *present = s < end;
    const uint8_t *e = s;
    while (e < end && *e != '\n')
        e++;
    char *out = malloc((size_t)(e - s) + 1);
    size_t k = 0;
    for (const uint8_t *c = s; c < e; c++)
        if (*c)
            out[k++] = (char)*c;
    out[k] = '\0';
    *p = e < end ? e + 1 : end;
    return out;
}

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant broken: %s\n", what);
        abort();
    }
}

static int count_params(const char *pattern)
{
    int n = 0;
    for (const char *c = pattern; *c; c++)
        n += *c == '{';
    return n;
}

/* Rebuild the path from a pattern and matched params; it must equal what was matched. */
static void check_match(const struct http_route *r, const char *path, const char **params, int np)
{
    char buf[8192];
    size_t k = 0;
    int i = 0;
    check(np == count_params(r->pattern), "nparams equals the pattern's {params}");
    for (int j = 0; j < np; j++)
        check(params[j][0] != '\0' && !strchr(params[j], '/'), "a param is one non-empty segment");
    for (const char *c = r->pattern; *c;) {
        if (*c == '{') {
            const char *v = params[i++];
            size_t l = strlen(v);
            if (k + l >= sizeof(buf))
                return;
            memcpy(buf + k, v, l);
            k += l;
            c = strchr(c, '}') + 1;
        } else {
            if (k + 1 >= sizeof(buf))
                return;
            buf[k++] = *c++;
        }
    }
    buf[k] = '\0';
    size_t pl = strlen(path);
    int same =
        strcmp(buf, path) == 0 || (pl == k + 1 && path[k] == '/' && strncmp(buf, path, k) == 0);
    check(same, "a match rebuilds the path (one trailing slash tolerated)");
}

static void fuzz_route(const char *method, const char *url)
{
    struct td_arena *a = td_arena_new();
    const char *slug = NULL, *rest = NULL;
    int has = http_router_split_tenant(url, a, &slug, &rest);
    if (has) {
        check(slug && *slug && !strchr(slug, '/'), "split slug is one non-empty segment");
        check(rest[0] == '/', "the rest after /t/{slug} starts with /");
        size_t sl = strlen(slug);
        check(strncmp(url + 3, slug, sl) == 0, "slug comes from the url");
        check(strcmp(rest, "/") == 0 ? (url[3 + sl] == '\0' || strcmp(url + 3 + sl, "/") == 0)
                                     : strcmp(url + 3 + sl, rest) == 0,
              "rest is the url after the slug");
        check(api_check_slug(slug) == (!regexec(&slug_re, slug, 0, NULL, 0) &&
                                       regexec(&uuid_re, slug, 0, NULL, 0) != 0),
              "api_check_slug agrees with the SPEC regex (UUID shapes refused)");
    } else {
        check(slug == NULL && rest == url, "no split leaves the url whole");
    }

    size_t n;
    const struct http_route *routes = api_routes(&n);
    const char *params[HTTP_MAX_PARAMS];
    int np = -1, known = -1;
    const struct http_route *r = http_router_match(routes, n, method, rest, a, params, &np, &known);
    check(known == 0 || known == 1, "path_known is a flag");
    if (r) {
        check(strcmp(r->method, method) == 0, "the matched route has the method");
        check_match(r, rest, params, np);
        for (int i = 0; i < np; i++)
            check(auth_is_uuid(params[i]) == !regexec(&uuid_re, params[i], 0, NULL, 0),
                  "auth_is_uuid agrees with the UUID regex");
    } else {
        check(np == 0, "no match, no params");
        if (known) {
            /* the same path under another method must match */
            int hit = 0;
            for (size_t i = 0; i < n && !hit; i++) {
                const char *p2[HTTP_MAX_PARAMS];
                int n2, k2;
                hit = http_router_match(&routes[i], 1, routes[i].method, rest, a, p2, &n2, &k2) !=
                      NULL;
            }
            check(hit, "path_known means some route has this path");
        }
    }
    td_arena_free(a);
}

static void fuzz_host(const char *host, const char *base)
{
    char out[64];
    memset(out, 'x', sizeof(out));
    size_t cap = 1 + (strlen(host) % sizeof(out));
    int ok = tnt_subdomain(host, base, out, cap);
    if (!ok)
        return;
    size_t l = strlen(out);
    size_t bl = strlen(base);
    check(l > 0 && l < cap, "subdomain fits the buffer");
    check(!strchr(out, '.') && !strchr(out, ':'), "subdomain is one label");
    for (size_t i = 0; i < l; i++)
        check(!isupper((unsigned char)out[i]), "subdomain is lower-cased");
    check(strncasecmp(host, out, l) == 0 && host[l] == '.', "subdomain is the host's first label");
    check(strncasecmp(host + l + 1, base, bl) == 0 &&
              (host[l + 1 + bl] == '\0' || host[l + 1 + bl] == ':'),
          "the rest of the host is the base domain (and a port)");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    const uint8_t *p = data, *end = data + size;
    int has_m, has_u, has_h, has_b;
    char *method = field(&p, end, &has_m);
    char *url = field(&p, end, &has_u);
    char *host = field(&p, end, &has_h);
    char *base = field(&p, end, &has_b);
    if (!has_b) {
        free(base);
        base = strdup("example.com");
    }
    fuzz_route(method, url);
    /* the bare path too, as api_dispatch sees it without a prefix */
    fuzz_route(method, url[0] == '/' ? url : "/");
    fuzz_host(host, base);
    fuzz_host(url, base);
    free(method);
    free(url);
    free(host);
    free(base);
    return 0;
}
