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

#include <stdio.h>
#include <stdlib.h>
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

/* req's line into line[LOG_LINE_MAX]; its length, or 0. */
static size_t format_line(char *line, const struct http_req *req, long long duration_us)
{
    struct timespec rt;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &rt);
    gmtime_r(&rt.tv_sec, &tm);
    if (duration_us < 0)
        duration_us = 0;
    /* the duration in integers: "%.3f" of a double cost as much as the rest of the line */
    int n = snprintf(line, LOG_LINE_MAX,
                     "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"request_id\":\"%s\","
                     "\"tenant\":%s%s%s,\"user\":%s%s%s,\"method\":\"%.16s\",\"route\":\"%s\","
                     "\"status\":%d,\"duration_ms\":%lld.%03lld,\"bytes\":%zu}\n",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     rt.tv_nsec / 1000000, req->request_id, req->tenant ? "\"" : "",
                     req->tenant ? req->tenant->slug : "null", req->tenant ? "\"" : "",
                     req->has_claims ? "\"" : "", req->has_claims ? req->claims.sub : "null",
                     req->has_claims ? "\"" : "", req->method,
                     req->route_pattern ? req->route_pattern : "unmatched", req->status,
                     duration_us / 1000, duration_us % 1000, req->bytes_out);
    if (n <= 0)
        return 0;
    return (size_t)n < LOG_LINE_MAX ? (size_t)n : LOG_LINE_MAX - 1;
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
