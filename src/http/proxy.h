/*
 * proxy.h - the client address of a request behind trusted reverse proxies
 * (TENANTD_TRUSTED_PROXIES): when the TCP peer is one of them, the address is taken from
 * X-Forwarded-For, read from the right past every trusted hop, so a client cannot choose
 * it by sending its own header.
 */
#ifndef TD_HTTP_PROXY_H
#define TD_HTTP_PROXY_H

#include <stddef.h>

struct http_proxies;

/* Addresses and networks, comma-separated: "10.0.0.0/8,127.0.0.1,::1,fd00::/8". NULL or ""
 * gives NULL (trust none). Returns NULL for an entry that does not parse; use
 * http_proxies_valid() first. The caller frees with http_proxies_free. */
struct http_proxies *http_proxies_new(const char *list);
void http_proxies_free(struct http_proxies *p);
/* 1 when list parses (for the settings table). */
int http_proxies_valid(const char *list);
/* The client address of a request whose TCP peer is peer (textual) and whose
 * X-Forwarded-For is xff (may be NULL), into out: peer itself unless it is trusted; then the
 * rightmost X-Forwarded-For entry that is not trusted (the leftmost when all are; when an
 * entry does not parse, the last trusted hop before it). Thread-safe (p is read-only). */
void http_proxies_client(const struct http_proxies *p, const char *peer, const char *xff, char *out,
                         size_t cap);

#endif
