/*
 * live.c - the last five minutes of requests, second by second, for the console's live page
 * (GET /admin/live): a fixed ring of per-second slots, each with the fleet's count, errors
 * and a latency histogram, and the same for up to LIVE_TENANTS tenants seen in that second
 * (the rest are summed as "other"). Memory is fixed (about 1 MiB) whatever the traffic.
 */
#include "api/live.h"

#include "app/app.h"
#include "core/mem.h"
#include "tenant/tenant.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIVE_SLOTS 300  /* seconds kept */
#define LIVE_TENANTS 16 /* tenants kept per second */
#define LIVE_BUCKETS 24 /* latency histogram: bucket b holds durations < 64 µs << b */
#define LIVE_TOP 10

struct live_count {
    unsigned requests, err4, err5;
    unsigned hist[LIVE_BUCKETS];
};

struct live_tenant {
    char slug[41];
    struct live_count c;
};

struct live_slot {
    long long second; /* unix seconds this slot holds; another value: stale */
    struct live_count all;
    struct live_tenant tenants[LIVE_TENANTS];
    int ntenants;
};

/* The application's ring (struct td_app.live). */
struct api_live {
    pthread_mutex_t mu;
    struct live_slot ring[LIVE_SLOTS];
};

struct api_live *api_live_new(void)
{
    struct api_live *l = td_xcalloc(1, sizeof(*l));
    pthread_mutex_init(&l->mu, NULL);
    return l;
}

void api_live_free(struct api_live *l)
{
    if (!l)
        return;
    pthread_mutex_destroy(&l->mu);
    free(l);
}

static void count(struct live_count *c, int status, long long us)
{
    c->requests++;
    c->err4 += status >= 400 && status < 500;
    c->err5 += status >= 500;
    int b = 0;
    while (b < LIVE_BUCKETS - 1 && us >= (64LL << b))
        b++;
    c->hist[b]++;
}

static void merge(struct live_count *into, const struct live_count *c)
{
    into->requests += c->requests;
    into->err4 += c->err4;
    into->err5 += c->err5;
    for (int b = 0; b < LIVE_BUCKETS; b++)
        into->hist[b] += c->hist[b];
}

/* The upper bound of the bucket holding the 99th percentile, in microseconds. */
static json_int_t p99_us(const struct live_count *c)
{
    if (!c->requests)
        return 0;
    unsigned want = c->requests - c->requests / 100, seen = 0;
    for (int b = 0; b < LIVE_BUCKETS; b++)
        if ((seen += c->hist[b]) >= want)
            return 64LL << b;
    return 64LL << (LIVE_BUCKETS - 1);
}

void api_live_observe(const struct http_req *req, long long duration_us)
{
    long long now = (long long)time(NULL);
    const char *slug = req->tenant ? req->tenant->slug : NULL;
    struct api_live *l = req->app->live;
    pthread_mutex_lock(&l->mu);
    struct live_slot *s = &l->ring[now % LIVE_SLOTS];
    if (s->second != now) {
        memset(s, 0, sizeof(*s));
        s->second = now;
    }
    count(&s->all, req->status, duration_us);
    if (slug) {
        int i = 0;
        while (i < s->ntenants && strcmp(s->tenants[i].slug, slug) != 0)
            i++;
        if (i == s->ntenants && s->ntenants < LIVE_TENANTS)
            snprintf(s->tenants[s->ntenants++].slug, sizeof(s->tenants[0].slug), "%s", slug);
        if (i < s->ntenants)
            count(&s->tenants[i].c, req->status, duration_us);
    }
    pthread_mutex_unlock(&l->mu);
}

struct agg {
    char slug[41];
    struct live_count c;
    unsigned series[LIVE_SLOTS]; /* requests per second, oldest first */
};

static int by_requests(const void *a, const void *b)
{
    const struct agg *x = a, *y = b;
    return (y->c.requests > x->c.requests) - (y->c.requests < x->c.requests);
}

static struct agg *agg_of(struct agg *aggs, int *n, int cap, const char *slug)
{
    for (int i = 0; i < *n; i++)
        if (!strcmp(aggs[i].slug, slug))
            return &aggs[i];
    if (*n == cap)
        return NULL;
    snprintf(aggs[*n].slug, sizeof(aggs[0].slug), "%s", slug);
    return &aggs[(*n)++];
}

static json_t *count_json(const struct live_count *c)
{
    return json_pack("{s:I,s:I,s:I,s:I}", "requests", (json_int_t)c->requests, "errors_4xx",
                     (json_int_t)c->err4, "errors_5xx", (json_int_t)c->err5, "p99_us", p99_us(c));
}

/* Top tenants of the window, each with its figures and its requests per second. */
static json_t *top_json(struct agg *aggs, int n, int window)
{
    qsort(aggs, (size_t)n, sizeof(*aggs), by_requests);
    json_t *top = json_array();
    for (int i = 0; i < n && i < LIVE_TOP; i++) {
        json_t *t = count_json(&aggs[i].c);
        json_object_set_new(t, "slug", json_string(aggs[i].slug));
        json_t *series = json_array();
        for (int k = 0; k < window; k++)
            json_array_append_new(series, json_integer(aggs[i].series[k]));
        json_object_set_new(t, "requests_per_second", series);
        json_array_append_new(top, t);
    }
    return top;
}

int api_admin_live(struct http_req *req)
{
    int window = 300;
    const char *w = http_query(req, "seconds");
    if (w && (window = atoi(w)) < 10)
        window = 10;
    if (window > LIVE_SLOTS - 1)
        window = LIVE_SLOTS - 1;
    long long now = (long long)time(NULL), first = now - window; /* the running second left out */
    int cap = LIVE_TENANTS * 8, n = 0;
    struct agg *aggs = td_arena_alloc(req->arena, sizeof(*aggs) * (size_t)cap);
    memset(aggs, 0, sizeof(*aggs) * (size_t)cap);
    struct live_count total = {0};
    json_t *secs = json_array();
    struct api_live *l = req->app->live;
    pthread_mutex_lock(&l->mu);
    for (long long sec = first; sec < now; sec++) {
        const struct live_slot *s = &l->ring[sec % LIVE_SLOTS];
        struct live_count none = {0};
        const struct live_count *c = s->second == sec ? &s->all : &none;
        merge(&total, c);
        json_t *one = count_json(c);
        json_object_set_new(one, "t", json_integer(sec));
        json_array_append_new(secs, one);
        for (int i = 0; s->second == sec && i < s->ntenants; i++) {
            struct agg *a = agg_of(aggs, &n, cap, s->tenants[i].slug);
            if (!a)
                continue;
            merge(&a->c, &s->tenants[i].c);
            a->series[sec - first] = s->tenants[i].c.requests;
        }
    }
    pthread_mutex_unlock(&l->mu);
    json_t *out = json_pack("{s:i,s:o,s:o}", "seconds", window, "fleet", count_json(&total),
                            "per_second", secs);
    json_object_set_new(out, "top_tenants", top_json(aggs, n, window));
    return http_reply_json(req, 200, out);
}
