/*
 * replica.c - replica lag sampling and the read-your-writes routing rule (see replica.h).
 */
#include "db/replica.h"

#include "core/clock.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/mem.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPLICA_POLL_MS 20
#define REPLICA_STALE_US 1000000ULL /* a sample older than this: the replica is skipped */
#define KEY_SLOTS 8192              /* remembered keys; an overwritten one is a miss */

/* The last write of one key: its commit LSN, or the poll generation it was marked at
 * (pending: the requirement is the primary's position sampled two polls later). */
struct key_slot {
    unsigned long long hash, lsn, pending_gen;
};

struct rep_server {
    char *primary_info, *replica_info; /* replica_info NULL: none */
    PGconn *primary, *replica;         /* the poller's own connections */
    /* under r->mu */
    int up;
    unsigned long long replay, insert, sampled_us, gen;
    double replay_age_s;
    atomic_llong reads_replica, reads_primary, fallbacks;
};

struct db_replicas {
    int n;
    struct rep_server *s;
    long long max_lag;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    pthread_t thread;
    struct key_slot keys[KEY_SLOTS];
};

static unsigned long long now_us(void)
{
    return (unsigned long long)td_now_us();
}

unsigned long long db_lsn_parse(const char *s)
{
    char *end;
    if (!s || !*s)
        return 0;
    unsigned long long hi = strtoull(s, &end, 16);
    if (*end != '/')
        return 0;
    unsigned long long lo = strtoull(end + 1, &end, 16);
    return *end ? 0 : hi << 32 | lo;
}

static unsigned long long key_hash(int server, const char *key)
{
    /* | 1: 0 marks an empty slot */
    return td_hash64_str(TD_HASH64_INIT ^ (unsigned long long)server, key) | 1;
}

static PGconn *poll_connect(const char *conninfo)
{
    const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *vals[] = {conninfo, "2", "tenantd-replica-poll", NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(pg) != CONNECTION_OK) {
        PQfinish(pg);
        return NULL;
    }
    return pg;
}

/* One value of a one-row query on *pg (connecting first when needed); NULL on failure,
 * which closes the connection so the next poll reconnects. Caller PQclear()s. */
static PGresult *poll_query(PGconn **pg, const char *conninfo, const char *sql)
{
    if (!*pg && !(*pg = poll_connect(conninfo)))
        return NULL;
    PGresult *res = PQexec(*pg, sql);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        return res;
    PQclear(res);
    PQfinish(*pg);
    *pg = NULL;
    return NULL;
}

static void sample(struct db_replicas *r, struct rep_server *s)
{
    PGresult *p = poll_query(&s->primary, s->primary_info, "SELECT pg_current_wal_insert_lsn()");
    PGresult *q = p ? poll_query(&s->replica, s->replica_info,
                                 "SELECT pg_last_wal_replay_lsn(), pg_is_in_recovery(), "
                                 "coalesce(extract(epoch FROM now() - "
                                 "pg_last_xact_replay_timestamp())::float8, -1)")
                    : NULL;
    pthread_mutex_lock(&r->mu);
    int was_up = s->up;
    s->up = q && !strcmp(PQgetvalue(q, 0, 1), "t") && db_lsn_parse(PQgetvalue(q, 0, 0));
    if (p) {
        s->insert = db_lsn_parse(PQgetvalue(p, 0, 0));
        s->gen++;
    }
    if (s->up) {
        s->replay = db_lsn_parse(PQgetvalue(q, 0, 0));
        s->replay_age_s = atof(PQgetvalue(q, 0, 2));
        s->sampled_us = now_us();
    }
    pthread_mutex_unlock(&r->mu);
    if (was_up != s->up)
        td_log_info("replica %s: %s", s->up ? "up" : "skipped",
                    s->up ? "replaying" : "not answering");
    PQclear(p);
    PQclear(q);
}

static void *poller(void *arg)
{
    struct db_replicas *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        pthread_mutex_unlock(&r->mu);
        for (int i = 0; i < r->n; i++)
            if (r->s[i].replica_info)
                sample(r, &r->s[i]);
        pthread_mutex_lock(&r->mu);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += REPLICA_POLL_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        if (!r->stop)
            pthread_cond_timedwait(&r->cv, &r->mu, &until);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

struct db_replicas *db_replicas_new(int nservers, const char *const *primary,
                                    const char *const *replica, long long max_lag)
{
    int any = 0;
    for (int i = 0; i < nservers; i++)
        any |= replica[i] != NULL;
    if (!any)
        return NULL;
    struct db_replicas *r = td_xcalloc(1, sizeof(*r));
    r->n = nservers;
    r->max_lag = max_lag;
    r->s = td_xcalloc((size_t)nservers, sizeof(*r->s));
    for (int i = 0; i < nservers; i++) {
        r->s[i].primary_info = td_xstrdup(primary[i]);
        r->s[i].replica_info = replica[i] ? td_xstrdup(replica[i]) : NULL;
        r->s[i].gen = 1; /* a pending mark is never 0 */
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    for (int i = 0; i < nservers; i++)
        if (r->s[i].replica_info)
            sample(r, &r->s[i]); /* the first reads need not go to the primary */
    if (pthread_create(&r->thread, NULL, poller, r) != 0) {
        td_log_error("cannot start the replica poller: every read goes to the primary");
        r->stop = 1;
        r->thread = pthread_self();
    }
    return r;
}

void db_replicas_free(struct db_replicas *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    int running = !r->stop;
    r->stop = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (running)
        pthread_join(r->thread, NULL);
    for (int i = 0; i < r->n; i++) {
        PQfinish(r->s[i].primary);
        PQfinish(r->s[i].replica);
        free(r->s[i].primary_info);
        free(r->s[i].replica_info);
    }
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r->s);
    free(r);
}

int db_replicas_has(const struct db_replicas *r, int server)
{
    return r && server >= 0 && server < r->n && r->s[server].replica_info;
}

/* The LSN key's reads need, under r->mu; ~0: not known yet (pending). A key never seen
 * becomes pending: it may have been written elsewhere a moment ago. */
static unsigned long long key_need(struct db_replicas *r, struct rep_server *s, int server,
                                   const char *key)
{
    unsigned long long h = key_hash(server, key);
    struct key_slot *k = &r->keys[h % KEY_SLOTS];
    if (k->hash != h)
        *k = (struct key_slot){h, 0, s->gen};
    if (k->pending_gen && s->gen >= k->pending_gen + 2) {
        /* a primary position sampled after the mark covers every earlier commit */
        if (s->insert > k->lsn)
            k->lsn = s->insert;
        k->pending_gen = 0;
    }
    return k->pending_gen ? ~0ULL : k->lsn;
}

int db_replicas_pick(struct db_replicas *r, int server, const char *key)
{
    if (!db_replicas_has(r, server))
        return 0;
    struct rep_server *s = &r->s[server];
    pthread_mutex_lock(&r->mu);
    int ok = !r->stop && s->up && now_us() - s->sampled_us < REPLICA_STALE_US &&
             (long long)(s->insert > s->replay ? s->insert - s->replay : 0) <= r->max_lag;
    if (ok && key)
        ok = s->replay >= key_need(r, s, server, key);
    pthread_mutex_unlock(&r->mu);
    atomic_fetch_add(ok ? &s->reads_replica : &s->reads_primary, 1);
    return ok;
}

void db_replicas_failed(struct db_replicas *r, int server)
{
    if (!db_replicas_has(r, server))
        return;
    pthread_mutex_lock(&r->mu);
    r->s[server].up = 0;
    pthread_mutex_unlock(&r->mu);
    atomic_fetch_add(&r->s[server].fallbacks, 1);
    atomic_fetch_sub(&r->s[server].reads_replica, 1);
    atomic_fetch_add(&r->s[server].reads_primary, 1);
}

unsigned long long db_lsn_query(PGconn *pg)
{
    unsigned long long lsn = 0;
    PGresult *res = PQexec(pg, "SELECT pg_current_wal_insert_lsn()");
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        lsn = db_lsn_parse(PQgetvalue(res, 0, 0));
    PQclear(res);
    return lsn;
}

void db_replicas_wrote(struct db_replicas *r, int server, const char *key, unsigned long long lsn)
{
    if (!db_replicas_has(r, server) || !key)
        return;
    unsigned long long h = key_hash(server, key);
    pthread_mutex_lock(&r->mu);
    struct key_slot *k = &r->keys[h % KEY_SLOTS];
    if (k->hash != h)
        *k = (struct key_slot){h, 0, 0};
    if (lsn > k->lsn)
        k->lsn = lsn;
    if (!lsn)
        k->pending_gen = r->s[server].gen;
    pthread_mutex_unlock(&r->mu);
}

void db_replicas_stats(struct db_replicas *r, int server, struct db_replica_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->replay_age_s = -1;
    if (!db_replicas_has(r, server))
        return;
    struct rep_server *s = &r->s[server];
    pthread_mutex_lock(&r->mu);
    st->configured = 1;
    st->up = s->up && now_us() - s->sampled_us < REPLICA_STALE_US;
    st->lag_bytes = s->insert > s->replay ? (long long)(s->insert - s->replay) : 0;
    st->replay_age_s = s->replay_age_s;
    pthread_mutex_unlock(&r->mu);
    st->reads_replica = atomic_load(&s->reads_replica);
    st->reads_primary = atomic_load(&s->reads_primary);
    st->fallbacks = atomic_load(&s->fallbacks);
}
