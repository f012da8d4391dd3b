/*
 * proxy.c - trusted proxy networks and the X-Forwarded-For walk. Addresses are compared
 * as bytes (IPv4 as IPv4-mapped IPv6), so one prefix match serves both families.
 */
#include "http/proxy.h"

#include "core/mem.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct net {
    unsigned char addr[16];
    int bits;
};

struct http_proxies {
    int n;
    struct net *nets;
};

/* Textual IPv4 or IPv6 (len bytes of s) into 16 bytes; 0 or -1. */
static int parse_addr(const char *s, size_t len, unsigned char out[16], int *v4)
{
    char buf[64];
    while (len > 0 && isspace((unsigned char)*s))
        s++, len--;
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(out, 0, 16);
    if (inet_pton(AF_INET, buf, out + 12) == 1) {
        out[10] = out[11] = 0xff;
        *v4 = 1;
        return 0;
    }
    *v4 = 0;
    return inet_pton(AF_INET6, buf, out) == 1 ? 0 : -1;
}

/* One "addr" or "addr/bits" entry of len bytes. */
static int parse_net(const char *s, size_t len, struct net *out)
{
    const char *slash = memchr(s, '/', len);
    int v4;
    if (parse_addr(s, slash ? (size_t)(slash - s) : len, out->addr, &v4) < 0)
        return -1;
    int max = v4 ? 32 : 128;
    out->bits = max;
    if (slash) {
        char bits[8];
        size_t bl = len - (size_t)(slash - s) - 1;
        if (bl == 0 || bl >= sizeof(bits))
            return -1;
        memcpy(bits, slash + 1, bl);
        bits[bl] = '\0';
        char *end;
        long b = strtol(bits, &end, 10);
        if (*end || b < 0 || b > max)
            return -1;
        out->bits = (int)b;
    }
    if (v4)
        out->bits += 96;
    return 0;
}

static int parse_list(const char *list, struct http_proxies *p)
{
    for (const char *s = list; *s;) {
        size_t len = strcspn(s, ",");
        struct net n;
        if (parse_net(s, len, &n) < 0)
            return -1;
        if (p) {
            p->nets = td_xrealloc(p->nets, (size_t)(p->n + 1) * sizeof(n));
            p->nets[p->n++] = n;
        }
        if (s[len] == ',' && s[len + 1] == '\0')
            return -1; /* a trailing comma: an empty entry */
        s += len + (s[len] == ',');
    }
    return 0;
}

int http_proxies_valid(const char *list)
{
    return list && *list && parse_list(list, NULL) == 0;
}

struct http_proxies *http_proxies_new(const char *list)
{
    if (!list || !*list)
        return NULL;
    struct http_proxies *p = td_xcalloc(1, sizeof(*p));
    if (parse_list(list, p) < 0) {
        http_proxies_free(p);
        return NULL;
    }
    return p;
}

void http_proxies_free(struct http_proxies *p)
{
    if (!p)
        return;
    free(p->nets);
    free(p);
}

static int trusted(const struct http_proxies *p, const unsigned char a[16])
{
    for (int i = 0; p && i < p->n; i++) {
        const struct net *n = &p->nets[i];
        int full = n->bits / 8, rest = n->bits % 8;
        if (memcmp(a, n->addr, (size_t)full) != 0)
            continue;
        if (rest && ((a[full] ^ n->addr[full]) & (0xff << (8 - rest))))
            continue;
        return 1;
    }
    return 0;
}

void http_proxies_client(const struct http_proxies *p, const char *peer, const char *xff, char *out,
                         size_t cap)
{
    unsigned char a[16];
    int v4;
    snprintf(out, cap, "%s", peer);
    if (!p || !xff || parse_addr(peer, strlen(peer), a, &v4) < 0 || !trusted(p, a))
        return;
    /* from the right: each hop appended the address it saw */
    const char *end = xff + strlen(xff);
    while (end > xff) {
        const char *start = end;
        while (start > xff && start[-1] != ',')
            start--;
        if (parse_addr(start, (size_t)(end - start), a, &v4) < 0)
            return; /* not an address: keep what was established */
        snprintf(out, cap, "%.*s", (int)(end - start), start);
        if (!trusted(p, a))
            break;
        end = start > xff ? start - 1 : xff;
    }
    /* trim what the copy kept around the address */
    size_t n = strlen(out), i = 0;
    while (i < n && isspace((unsigned char)out[i]))
        i++;
    memmove(out, out + i, n - i + 1);
    n = strlen(out);
    while (n > 0 && isspace((unsigned char)out[n - 1]))
        out[--n] = '\0';
}
