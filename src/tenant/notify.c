/*
 * notify.c - LISTEN tenantd_tenants on a dedicated catalog connection.
 */
#include "tenant/notify.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

struct tnt_listener {
    struct db *db;
    struct tnt_cache *cache;
    pthread_t thread;
    atomic_int stop;
};

/* Apply the notifications libpq has received. */
static void drain(struct tnt_listener *l, PGconn *pg)
{
    PGnotify *n;
    while ((n = PQnotifies(pg))) {
        tnt_cache_invalidate(l->cache, n->extra && *n->extra ? n->extra : NULL);
        /* its storage changed (restore, move, import): reads wait for a replica to
         * replay past the primary's position from now on */
        for (int s = 0; n->extra && *n->extra && s < db_server_count(l->db); s++)
            db_note_write(l->db, s, n->extra, NULL);
        PQfreemem(n);
    }
}

/* A round trip on the listening connection: PostgreSQL sends the notifications of every
 * change committed before the query started ahead of its answer, so once they are applied
 * the cache is known to be current as of the start (tnt_cache_confirm). -1: connection lost. */
static int heartbeat(struct tnt_listener *l, PGconn *pg)
{
    long long start = td_now_us();
    PGresult *r = PQexec(pg, "SELECT 1");
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    if (!ok)
        return -1;
    drain(l, pg);
    tnt_cache_confirm(l->cache, start);
    return 0;
}

static void *listen_loop(void *arg)
{
    struct tnt_listener *l = arg;
    PGconn *pg = NULL;
    long long beat = 0;
    while (!atomic_load(&l->stop)) {
        if (!pg) {
            tnt_cache_confirm(l->cache, 0); /* changes may go unannounced: the TTL rules */
            if (db_admin_connect(l->db, 0, NULL, &pg) < 0 ||
                db_admin_exec(pg, "listening for tenant changes",
                              "SET application_name = 'tenantd listener'; LISTEN tenantd_tenants",
                              0, NULL, NULL) < 0) {
                PQfinish(pg);
                pg = NULL;
                sleep(1);
                continue;
            }
            /* changes made while we were not listening are unknown: start over */
            tnt_cache_invalidate(l->cache, NULL);
        }
        if (td_now_us() - beat >= TNT_LISTENER_BEAT_MS * 1000LL) {
            beat = td_now_us();
            if (heartbeat(l, pg) < 0) {
                PQfinish(pg);
                pg = NULL;
                continue;
            }
        }
        struct pollfd pfd = {.fd = PQsocket(pg), .events = POLLIN};
        if (poll(&pfd, 1, 200) <= 0)
            continue;
        if (!PQconsumeInput(pg)) {
            PQfinish(pg);
            pg = NULL;
            continue;
        }
        drain(l, pg);
    }
    PQfinish(pg);
    return NULL;
}

struct tnt_listener *tnt_listener_start(struct db *db, struct tnt_cache *cache)
{
    struct tnt_listener *l = td_xcalloc(1, sizeof(*l));
    l->db = db;
    l->cache = cache;
    atomic_init(&l->stop, 0);
    pthread_create(&l->thread, NULL, listen_loop, l);
    return l;
}

void tnt_listener_stop(struct tnt_listener *l)
{
    if (!l)
        return;
    atomic_store(&l->stop, 1);
    pthread_join(l->thread, NULL);
    free(l);
}
