/*
 * access_log.c - one JSON line per answered request on standard output. On an event loop
 * the lines of one iteration are kept in the loop thread's buffer and leave in one write
 * when the iteration ends (its flush hook): a write(2) per request was one of the few
 * system calls a request costs. Elsewhere (workers, the second listener) a line is
 * written at once.
 */
#include "api/api.h"

#include "core/log.h"
#include "core/mem.h"
#include "http/loop.h"
#include "http/request.h"
#include "tenant/tenant.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 768
#define LOG_BUF_SIZE (32 * 1024) /* a full buffer is written before the iteration ends */

struct log_buf {
    size_t len;
    char data[LOG_BUF_SIZE];
};

static _Thread_local struct log_buf *loop_buf; /* set on an event loop's thread only */

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, p, n);
        if (w <= 0)
            return; /* a closed or full stdout loses lines, never requests */
        p += w;
        n -= (size_t)w;
    }
}

static void flush_buf(struct http_loop *l, void *arg)
{
    (void)l;
    struct log_buf *b = arg;
    write_all(b->data, b->len);
    b->len = 0;
}

void api_access_log_loop_start(struct http_loop *l)
{
    struct log_buf *b = td_xmalloc(sizeof(*b));
    b->len = 0;
    if (http_loop_on_flush(l, flush_buf, b) < 0) {
        free(b);
        return; /* lines are written one by one */
    }
    loop_buf = b;
}

void api_access_log_loop_stop(struct http_loop *l)
{
    struct log_buf *b = loop_buf;
    if (!b)
        return;
    flush_buf(l, b);
    loop_buf = NULL;
    free(b);
}

static char *put(char *w, const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    memcpy(w, s, n);
    return w + n;
}

#define PUT_LIT(w, lit) (memcpy((w), (lit), sizeof(lit) - 1), (w) + sizeof(lit) - 1)

/* v in decimal, at least width digits (zero-padded) */
static char *put_num(char *w, unsigned long long v, int width)
{
    char d[24];
    int n = 0;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v || n < width);
    while (n)
        *w++ = d[--n];
    return w;
}

static char *put_quoted_or_null(char *w, const char *s, size_t max)
{
    if (!s)
        return PUT_LIT(w, "null");
    *w++ = '"';
    w = put(w, s, max);
    *w++ = '"';
    return w;
}

/* req's line into line[LOG_LINE_MAX]; its length. Built by appending: snprintf spent
 * some 8,000 instructions a request on it. Every field is bounded, so the line fits. */
static size_t format_line(char *line, const struct http_req *req, long long duration_us)
{
    struct timespec rt;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &rt);
    gmtime_r(&rt.tv_sec, &tm);
    if (duration_us < 0)
        duration_us = 0;
    char *w = PUT_LIT(line, "{\"time\":\"");
    w = put_num(w, (unsigned)(tm.tm_year + 1900), 4);
    *w++ = '-';
    w = put_num(w, (unsigned)(tm.tm_mon + 1), 2);
    *w++ = '-';
    w = put_num(w, (unsigned)tm.tm_mday, 2);
    *w++ = 'T';
    w = put_num(w, (unsigned)tm.tm_hour, 2);
    *w++ = ':';
    w = put_num(w, (unsigned)tm.tm_min, 2);
    *w++ = ':';
    w = put_num(w, (unsigned)tm.tm_sec, 2);
    *w++ = '.';
    w = put_num(w, (unsigned long long)(rt.tv_nsec / 1000000), 3);
    w = PUT_LIT(w, "Z\",\"request_id\":");
    w = put_quoted_or_null(w, req->request_id, sizeof(req->request_id));
    w = PUT_LIT(w, ",\"tenant\":");
    w = put_quoted_or_null(w, req->tenant ? req->tenant->slug : NULL, 64);
    w = PUT_LIT(w, ",\"user\":");
    w = put_quoted_or_null(w, req->has_claims ? req->claims.sub : NULL, 64);
    w = PUT_LIT(w, ",\"method\":");
    w = put_quoted_or_null(w, req->method, 16);
    w = PUT_LIT(w, ",\"route\":");
    w = put_quoted_or_null(w, req->route_pattern ? req->route_pattern : "unmatched", 160);
    w = PUT_LIT(w, ",\"status\":");
    w = put_num(w, (unsigned)req->status, 1);
    w = PUT_LIT(w, ",\"duration_ms\":");
    w = put_num(w, (unsigned long long)(duration_us / 1000), 1);
    *w++ = '.';
    w = put_num(w, (unsigned long long)(duration_us % 1000), 3);
    w = PUT_LIT(w, ",\"bytes\":");
    w = put_num(w, (unsigned long long)req->bytes_out, 1);
    w = PUT_LIT(w, "}\n");
    return (size_t)(w - line);
}

void api_access_log(const struct http_req *req, long long duration_us)
{
    if (!td_log_enabled(TD_LOG_INFO))
        return;
    struct log_buf *b = loop_buf;
    if (!b) {
        char line[LOG_LINE_MAX];
        write_all(line, format_line(line, req, duration_us));
        return;
    }
    if (LOG_BUF_SIZE - b->len < LOG_LINE_MAX) {
        write_all(b->data, b->len);
        b->len = 0;
    }
    b->len += format_line(b->data + b->len, req, duration_us);
}
