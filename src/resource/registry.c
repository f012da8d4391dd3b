/*
 * registry.c - the process's current table description. A watcher thread asks the pool
 * schema's ledger for its version every second and, when it changed, loads the new
 * description and swaps it in; requests holding the old one keep it until they finish.
 * So a table added by `tenantd migrate` is served within about a second, without restart.
 */
#include "resource/resource.h"

#include "core/log.h"
#include "db/db.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#define RES_SCHEMA "pool"

struct res_registry {
    struct db *db;
    pthread_mutex_t mu; /* guards cur and the pointer-to-reference step of get */
    struct res_desc *cur;
    pthread_t thread;
    int started;
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    int stop;
};

/* The sum of the applied versions: it grows with every file applied, also with one numbered
 * below the newest (the runner applies any pending file; max(version) would not move). */
static const char version_sql[] =
    "SELECT coalesce(sum(version), 0) FROM " RES_SCHEMA ".tenantd_migrations";

struct res_desc *res_registry_get(struct res_registry *r)
{
    pthread_mutex_lock(&r->mu);
    struct res_desc *d = r->cur;
    if (d)
        res_desc_ref(d);
    pthread_mutex_unlock(&r->mu);
    return d;
}

/* The watcher borrows the process's kept catalog connection for each look rather than
 * holding one of its own: one connection fewer outside the request pool. */
int res_registry_refresh(struct res_registry *r)
{
    PGconn *pg = NULL;
    int rc = db_admin_borrow(r->db, &pg);
    if (rc < 0)
        goto out;
    PGresult *v = PQexec(pg, version_sql);
    if (PQresultStatus(v) != PGRES_TUPLES_OK || PQntuples(v) != 1) {
        PQclear(v);
        rc = TD_EUNAVAILABLE;
        goto out;
    }
    long version = atol(PQgetvalue(v, 0, 0));
    PQclear(v);
    struct res_desc *old = res_registry_get(r);
    long have = old ? old->version : -1;
    res_desc_unref(old);
    if (have == version)
        goto out;
    struct res_desc *d;
    rc = res_desc_load(pg, RES_SCHEMA, version, &d);
    /* the loader sets the session's search_path; the connection is shared (provisioning) */
    PQclear(PQexec(pg, "RESET search_path"));
    if (rc < 0)
        goto out;
    pthread_mutex_lock(&r->mu);
    old = r->cur;
    r->cur = d;
    pthread_mutex_unlock(&r->mu);
    res_desc_unref(old);
    td_log_info("tenant tables described at ledger key %ld (%d tables)", version, d->ntables);
out:
    db_admin_return(r->db, pg);
    return rc;
}

static void *watch(void *arg)
{
    struct res_registry *r = arg;
    pthread_mutex_lock(&r->stop_mu);
    while (!r->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&r->stop_cv, &r->stop_mu, &ts);
        if (r->stop)
            break;
        pthread_mutex_unlock(&r->stop_mu);
        if (res_registry_refresh(r) < 0)
            td_log_warn("the tenant tables could not be read; the previous description stays");
        pthread_mutex_lock(&r->stop_mu);
    }
    pthread_mutex_unlock(&r->stop_mu);
    return NULL;
}

int res_registry_new(struct db *db, struct res_registry **out)
{
    struct res_registry *r = td_xcalloc(1, sizeof(*r));
    r->db = db;
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->stop_mu, NULL);
    pthread_cond_init(&r->stop_cv, NULL);
    *out = r;
    int rc = res_registry_refresh(r);
    if (rc < 0)
        td_log_warn("the tenant tables could not be read yet; retrying every second");
    if (pthread_create(&r->thread, NULL, watch, r) != 0) {
        res_registry_free(r);
        *out = NULL;
        return TD_EINTERNAL;
    }
    r->started = 1;
    return 0;
}

void res_registry_free(struct res_registry *r)
{
    if (!r)
        return;
    if (r->started) {
        pthread_mutex_lock(&r->stop_mu);
        r->stop = 1;
        pthread_cond_signal(&r->stop_cv);
        pthread_mutex_unlock(&r->stop_mu);
        pthread_join(r->thread, NULL);
    }
    res_desc_unref(r->cur);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->stop_mu);
    pthread_cond_destroy(&r->stop_cv);
    free(r);
}
