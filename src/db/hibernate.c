/*
 * hibernate.c - light hibernation of idle tenant databases: a database whose pool has
 * had nothing in use for TENANTD_HIBERNATE_AFTER loses its idle connections, and its
 * CONNECTION LIMIT becomes 0, so the runtime role can no longer connect (superusers can:
 * migrations, export and backup still reach it). The next request that cannot connect
 * wakes it (CONNECTION LIMIT -1) and connects again, within the same request.
 * db_hibernate and db_wake do the same by hand, for the operator (admin API, CLI).
 */
#include "db/internal.h"

#include "core/log.h"
#include "core/mem.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct db_hibernator {
    struct db *db;
    unsigned long long after_us;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
};

/* ALTER DATABASE database CONNECTION LIMIT limit on server, as the superuser; with
 * limit 0, also end the runtime role's idle backends there (other instances' pooled
 * connections), so that the database is really asleep. A backend in a transaction is left
 * to finish: it reconnects, is refused, and wakes the database. */
static int set_limit(struct db *db, int server, const char *database, int limit)
{
    PGconn *pg = NULL;
    int rc = db_admin_connect(db, server, NULL, &pg);
    if (rc < 0)
        return rc;
    char *q = PQescapeIdentifier(pg, database, strlen(database));
    if (!q) {
        PQfinish(pg);
        return TD_EINTERNAL;
    }
    char *sql = td_xasprintf("ALTER DATABASE %s CONNECTION LIMIT %d", q, limit);
    rc = db_admin_exec(pg, "changing a tenant database's connection limit", sql, 0, NULL, NULL);
    const char *params[] = {database};
    if (rc == 0 && limit == 0)
        rc = db_admin_exec(pg, "ending a hibernated database's idle connections",
                           "SELECT count(pg_terminate_backend(a.pid)) FROM pg_stat_activity a "
                           "JOIN pg_roles r ON r.rolname = a.usename WHERE a.datname = $1 "
                           "AND a.state = 'idle' AND NOT r.rolsuper AND a.pid <> pg_backend_pid()",
                           1, params, NULL);
    free(sql);
    PQfreemem(q);
    PQfinish(pg);
    return rc;
}

int db_hibernated(struct db *db, int server, const char *database)
{
    PGconn *pg = NULL;
    PGresult *r = NULL;
    int rc = db_admin_connect(db, server, NULL, &pg);
    if (rc < 0)
        return rc;
    const char *params[] = {database};
    rc =
        db_admin_exec(pg, "reading a tenant database's connection limit",
                      "SELECT datconnlimit = 0 FROM pg_database WHERE datname = $1", 1, params, &r);
    int asleep = rc == 0 && PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    PQfinish(pg);
    return rc < 0 ? rc : asleep;
}

int db__wake(struct db *db, int server, const char *database)
{
    int rc = db_hibernated(db, server, database);
    if (rc <= 0)
        return rc;
    if ((rc = set_limit(db, server, database, -1)) < 0)
        return rc;
    td_log_info("woke tenant database %s", database);
    return 1;
}

int db_wake(struct db *db, int server, const char *database)
{
    return db__wake(db, server, database);
}

int db_hibernate(struct db *db, int server, const char *database)
{
    if (server < 0 || server >= db_server_count(db))
        return TD_EUNAVAILABLE;
    /* connections first: a request arriving meanwhile reopens and wakes it */
    db_pool_forget(db__server_pool(db, server), database);
    int rc = set_limit(db, server, database, 0);
    if (rc == 0)
        td_log_info("hibernated tenant database %s on server %s", database,
                    db_server_name(db, server));
    return rc;
}

static void hibernate_idle(struct db_hibernator *h)
{
    for (int s = 0; s < db_server_count(h->db); s++) {
        struct db_pool *p = db__server_pool(h->db, s);
        char **names = NULL;
        int n = db_pool_idle_databases(p, h->after_us, &names);
        for (int i = 0; i < n; i++) {
            int rc = db_hibernate(h->db, s, names[i]);
            (void)rc; /* logged; the next sweep tries again */
            free(names[i]);
        }
        free(names);
    }
}

static void *hibernator_main(void *arg)
{
    struct db_hibernator *h = arg;
    /* look four times per idle period, at most once a second */
    unsigned long long every_ms = h->after_us / 4000;
    if (every_ms > 1000)
        every_ms = 1000;
    if (every_ms < 100)
        every_ms = 100;
    pthread_mutex_lock(&h->mu);
    while (!h->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)(every_ms / 1000);
        ts.tv_nsec += (long)(every_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (pthread_cond_timedwait(&h->cv, &h->mu, &ts) == ETIMEDOUT && !h->stop) {
            pthread_mutex_unlock(&h->mu);
            hibernate_idle(h);
            pthread_mutex_lock(&h->mu);
        }
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

struct db_hibernator *db__hibernator_start(struct db *db, int after_s)
{
    if (after_s <= 0)
        return NULL;
    struct db_hibernator *h = td_xcalloc(1, sizeof(*h));
    h->db = db;
    h->after_us = (unsigned long long)after_s * 1000000ULL;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    if (pthread_create(&h->thread, NULL, hibernator_main, h) != 0) {
        td_log_error("could not start the hibernation of idle tenant databases");
        pthread_cond_destroy(&h->cv);
        pthread_mutex_destroy(&h->mu);
        free(h);
        return NULL;
    }
    return h;
}

void db__hibernator_stop(struct db_hibernator *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->stop = 1;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
