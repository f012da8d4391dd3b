/*
 * pool_fake.h - counting fake connections and a test-driven clock for the pool's unit
 * tests (test_pool.c, test_pool_warm.c): the pool opens and closes through these ops, and
 * reads the time the test sets, so every rule is checked by counts, never by timing.
 */
#ifndef TD_TESTS_POOL_FAKE_H
#define TD_TESTS_POOL_FAKE_H

#include "db/pool.h"

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

/* ---- fake connections: counters behind a mutex (ops run outside the pool lock) ---- */

#define FAKE_MAX_CLOSED 256

struct fake_conn {
    int id;
    char database[32]; /* "" for the default database */
    long long memory;  /* what ops->memory reports for its backend */
};

struct fake {
    pthread_mutex_t mu;
    int opens, closes, live, max_live, next_id;
    int fail_opens; /* fail this many next opens */
    /* the pool's clock (us): frozen unless a test moves it; an open moves it by open_cost */
    unsigned long long now, open_cost;
    char closed[FAKE_MAX_CLOSED][32];
    int nclosed;
};

static inline void *fake_open(void *ctx, const char *database)
{
    struct fake *f = ctx;
    pthread_mutex_lock(&f->mu);
    if (f->fail_opens > 0) {
        f->fail_opens--;
        pthread_mutex_unlock(&f->mu);
        return NULL;
    }
    struct fake_conn *c = calloc(1, sizeof(*c));
    c->id = ++f->next_id;
    f->now += f->open_cost;
    snprintf(c->database, sizeof(c->database), "%s", database ? database : "");
    f->opens++;
    f->live++;
    if (f->live > f->max_live)
        f->max_live = f->live;
    pthread_mutex_unlock(&f->mu);
    return c;
}

static inline void fake_close(void *ctx, void *conn)
{
    struct fake *f = ctx;
    struct fake_conn *c = conn;
    pthread_mutex_lock(&f->mu);
    f->closes++;
    f->live--;
    if (f->nclosed < FAKE_MAX_CLOSED)
        snprintf(f->closed[f->nclosed++], sizeof(f->closed[0]), "%s", c->database);
    pthread_mutex_unlock(&f->mu);
    free(c);
}

static inline unsigned long long fake_now(void *ctx)
{
    struct fake *f = ctx;
    pthread_mutex_lock(&f->mu);
    unsigned long long t = f->now;
    pthread_mutex_unlock(&f->mu);
    return t;
}

static inline void fake_advance(struct fake *f, unsigned long long us)
{
    pthread_mutex_lock(&f->mu);
    f->now += us;
    pthread_mutex_unlock(&f->mu);
}

/* The backend memory a test set on the connection (fake_conn.memory). */
static inline long long fake_memory(void *ctx, void *conn)
{
    struct fake *f = ctx;
    pthread_mutex_lock(&f->mu);
    long long m = ((struct fake_conn *)conn)->memory;
    pthread_mutex_unlock(&f->mu);
    return m;
}

static const struct db_pool_ops fake_ops = {fake_open, fake_close, fake_now, NULL};
static const struct db_pool_ops fake_ops_memory = {fake_open, fake_close, fake_now, fake_memory};

static inline struct fake *fake_new(void)
{
    struct fake *f = calloc(1, sizeof(*f));
    pthread_mutex_init(&f->mu, NULL);
    return f;
}

static inline void fake_free(struct fake *f)
{
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static inline int closes_of(struct fake *f, const char *database)
{
    int n = 0;
    pthread_mutex_lock(&f->mu);
    for (int i = 0; i < f->nclosed; i++)
        if (strcmp(f->closed[i], database) == 0)
            n++;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static inline const char *db_of(struct db_slot *s)
{
    return ((struct fake_conn *)db_slot_conn(s))->database;
}

static inline struct db_pool *pool_new(struct fake *f, int budget, int max_dbs, int share,
                                       int timeout, int max_tenants)
{
    struct db_pool_cfg cfg = {
        .budget = budget,
        .max_dbs = max_dbs,
        .share_pct = share,
        .timeout_ms = timeout,
        .max_tenants = max_tenants,
    };
    return db_pool_new(&cfg, &fake_ops, f);
}

static inline struct db_pool_stats stats(struct db_pool *p)
{
    struct db_pool_stats st;
    db_pool_stats(p, &st);
    return st;
}

/* Free the pool and check every connection it opened was closed exactly once. */
static inline void pool_done(struct db_pool *p, struct fake *f)
{
    db_pool_free(p);
    assert_int_equal(f->live, 0);
    assert_int_equal(f->opens, f->closes);
    fake_free(f);
}

static inline void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Block until n requests wait in the pool. The bound only turns a hang into a failure. */
static inline void wait_for_waiting(struct db_pool *p, int n)
{
    for (int i = 0; i < 60000; i++) {
        if (stats(p).waiting >= n)
            return;
        sleep_ms(1);
    }
    fail_msg("pool never had %d waiters", n);
}

#endif
