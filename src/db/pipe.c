/*
 * pipe.c - a non-blocking libpq connection in pipeline mode for one event loop: batches
 * (one tenant transaction each, ending in its own Sync) are sent as they come and answered
 * in order as their results arrive; a broken connection fails what is in flight and is
 * opened again, without ever blocking the loop.
 */
#include "db/pipe.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "db/internal.h"

#include <stdlib.h>
#include <string.h>

#define PIPE_MAX_INFLIGHT 256 /* beyond: the caller runs its transaction elsewhere */
#define PIPE_RETRY_MS 1000    /* between two failed connection attempts */

enum pipe_state { PIPE_DOWN, PIPE_CONNECTING, PIPE_READY };

struct db_pipe_batch {
    struct db_pipe_batch *next;
    db_pipe_cb cb; /* NULL: cancelled, results are freed */
    void *arg;
    int n, rc;
    int q;     /* the result expected next belongs to sent[q] ... */
    int phase; /* ... 0: its result, 1: the NULL ending it, 2: the Sync after the last */
    int ns;
    struct db__sent sent[DB__MAX_SENT];
    PGresult *res[DB__MAX_PIPELINE];
    /* what db__take_result reads of the target: flags and where errors go (the caller's
     * strings are not kept: role and ctx_sql are only tested for NULL) */
    struct db_target t;
    struct db_error err;
    char ctx_value[64];
};

struct db_pipe {
    struct db *db;
    int server;
    struct db_pipe_io io;
    enum pipe_state state;
    int closing;
    PGconn *pg;
    struct db_conn conn; /* pg and its prepared statements, while READY */
    int fd;              /* watched fd, -1: none */
    unsigned events;     /* what fd is watched for */
    long long retry_at;  /* ms: no connection attempt before */
    struct db_pipe_batch *head, *tail;
    int inflight;
    long long progress_at; /* ms: the last result, or the first batch into an empty pipe */
};

static void set_watch(struct db_pipe *p, int fd, unsigned events)
{
    if (fd != p->fd) {
        if (p->fd >= 0)
            p->io.unwatch(p->io.ctx, p->fd);
        p->fd = -1;
        if (fd >= 0 && p->io.watch(p->io.ctx, fd, events) < 0) {
            td_log_error("pipeline to server %s: could not watch its socket",
                         db_server_name(p->db, p->server));
            return;
        }
        p->fd = fd;
    } else if (fd >= 0 && events != p->events) {
        p->io.modify(p->io.ctx, fd, events);
    }
    p->events = events;
}

/* The batch's end: the callback, or (cancelled) its results freed. */
static void complete(struct db_pipe_batch *b, int rc)
{
    if (rc < 0)
        for (int i = 0; i < b->n; i++) {
            PQclear(b->res[i]);
            b->res[i] = NULL;
        }
    if (b->cb)
        b->cb(b->arg, rc, b->res, b->n, &b->err, b->ctx_value);
    else
        for (int i = 0; i < b->n; i++)
            PQclear(b->res[i]);
    free(b);
}

static struct db_pipe_batch *pop(struct db_pipe *p)
{
    struct db_pipe_batch *b = p->head;
    p->head = b->next;
    if (!p->head)
        p->tail = NULL;
    p->inflight--;
    return b;
}

/* Close the connection; every batch in flight ends with TD_EUNAVAILABLE (none was
 * answered by its Sync, so none is known to have committed or not). */
static void pipe_break(struct db_pipe *p, const char *why)
{
    if (p->pg && !p->closing)
        td_log_warn("pipeline to server %s: %s (%d in flight): %.*s",
                    db_server_name(p->db, p->server), why, p->inflight,
                    (int)strcspn(PQerrorMessage(p->pg), "\n"), PQerrorMessage(p->pg));
    set_watch(p, -1, 0);
    if (p->state == PIPE_READY)
        db__conn_cleanup(&p->conn);
    PQfinish(p->pg);
    p->pg = NULL;
    p->state = PIPE_DOWN;
    p->retry_at = td_now_ms();
    while (p->head)
        complete(pop(p), TD_EUNAVAILABLE);
}

static void connect_start(struct db_pipe *p)
{
    p->pg = db__app_connect_start(p->db, p->server);
    if (!p->pg) {
        p->retry_at = td_now_ms() + PIPE_RETRY_MS;
        return;
    }
    p->state = PIPE_CONNECTING;
    /* PQconnectPoll starts as if it had answered PGRES_POLLING_WRITING */
    set_watch(p, PQsocket(p->pg), DB_PIPE_OUT);
}

/* One step of the connection's start; the socket may change between steps. */
static void connect_step(struct db_pipe *p)
{
    PostgresPollingStatusType st = PQconnectPoll(p->pg);
    if (st == PGRES_POLLING_READING || st == PGRES_POLLING_WRITING) {
        set_watch(p, PQsocket(p->pg), st == PGRES_POLLING_READING ? DB_PIPE_IN : DB_PIPE_OUT);
        return;
    }
    if (st == PGRES_POLLING_OK && PQsetnonblocking(p->pg, 1) == 0 && PQenterPipelineMode(p->pg)) {
        db__conn_init(&p->conn, p->pg);
        p->state = PIPE_READY;
        set_watch(p, PQsocket(p->pg), DB_PIPE_IN);
        return;
    }
    pipe_break(p, "could not connect");
    p->retry_at = td_now_ms() + PIPE_RETRY_MS;
}

/* Feed the result r (NULL: libpq's end of one statement's results) to batch b.
 * Returns 0, or -1 when the results are not in the order sent. */
static int step(struct db_pipe *p, struct db_pipe_batch *b, PGresult *r)
{
    if (b->phase == 0) {
        if (!r)
            return -1;
        db__take_result(&b->t, &b->sent[b->q], r, &b->rc, b->res);
        b->phase = 1;
        return 0;
    }
    if (b->phase == 1) {
        if (r)
            PQclear(r); /* a statement has one result; nothing else is sent */
        else
            b->phase = ++b->q < b->ns ? 0 : 2;
        return 0;
    }
    if (!r)
        return -1;
    ExecStatusType st = PQresultStatus(r);
    PQclear(r);
    if (st != PGRES_PIPELINE_SYNC)
        return -1;
    complete(pop(p), b->rc);
    return 0;
}

/* Hand over every result libpq holds complete; callbacks may submit or break the pipe. */
static void drain(struct db_pipe *p)
{
    while (p->state == PIPE_READY && p->head && !PQisBusy(p->pg)) {
        p->progress_at = td_now_ms();
        if (step(p, p->head, PQgetResult(p->pg)) < 0) {
            pipe_break(p, "results out of order");
            return;
        }
    }
    if (p->state == PIPE_READY && PQstatus(p->pg) == CONNECTION_BAD)
        pipe_break(p, "connection lost");
}

struct db_pipe *db_pipe_new(struct db *db, int server, const struct db_pipe_io *io)
{
    struct db_pipe *p = td_xcalloc(1, sizeof(*p));
    p->db = db;
    p->server = server;
    p->io = *io;
    p->fd = -1;
    connect_start(p);
    return p;
}

void db_pipe_free(struct db_pipe *p)
{
    if (!p)
        return;
    p->closing = 1;
    pipe_break(p, "closed");
    free(p);
}

static void sync_send(struct db_pipe *p, int *ok)
{
#ifdef LIBPQ_HAS_SEND_PIPELINE_SYNC
    *ok = PQsendPipelineSync(p->pg); /* no write: db_pipe_flush writes the iteration's */
#else
    *ok = PQpipelineSync(p->pg); /* libpq < 17 writes here */
#endif
}

int db_pipe_submit(struct db_pipe *p, const struct db_target *t, const struct db_stmt *stmts, int n,
                   db_pipe_cb cb, void *arg, struct db_pipe_batch **out)
{
    if (out)
        *out = NULL;
    if (p->state == PIPE_DOWN && !p->closing && td_now_ms() >= p->retry_at)
        connect_start(p);
    if (p->state != PIPE_READY || t->database || n < 1 || n > DB__MAX_PIPELINE ||
        p->inflight >= PIPE_MAX_INFLIGHT)
        return TD_EUNAVAILABLE;
    long long now = td_now_ms();
    /* no result for that long (a lock, a slow statement): what would queue behind it on
     * this connection would wait as long, so it goes elsewhere. Not the age of the oldest
     * transaction: under load that is the queue's length, and the queue is the point */
    if (p->head && now - p->progress_at >= db__pipe_stall_ms(p->db))
        return TD_EUNAVAILABLE;
    if (!p->head)
        p->progress_at = now;
    struct db_pipe_batch *b = td_xcalloc(1, sizeof(*b));
    b->cb = cb;
    b->arg = arg;
    b->n = n;
    int ok = db__send_tx(&p->conn, db__prepare(p->db), t, stmts, n, b->sent, &b->ns);
    if (ok)
        sync_send(p, &ok);
    if (!ok) {
        /* libpq may hold part of this transaction: nothing after it may follow */
        free(b);
        pipe_break(p, "could not send");
        return TD_EUNAVAILABLE;
    }
    b->phase = b->ns ? 0 : 2;
    b->t.role = t->role ? "" : NULL;
    b->t.ctx_sql = t->ctx_sql ? "" : NULL;
    b->t.ctx_value = t->ctx_sql ? b->ctx_value : NULL;
    b->t.ctx_value_cap = sizeof(b->ctx_value);
    b->t.error = &b->err;
    if (p->tail)
        p->tail->next = b;
    else
        p->head = b;
    p->tail = b;
    p->inflight++;
    db__pipe_note(p->db, p->server, p->inflight);
    if (out)
        *out = b;
    return 0;
}

void db_pipe_cancel(struct db_pipe_batch *b)
{
    b->cb = NULL;
    b->arg = NULL;
}

void db_pipe_events(struct db_pipe *p, unsigned events)
{
    if (p->state == PIPE_CONNECTING) {
        connect_step(p);
        return;
    }
    if (p->state != PIPE_READY)
        return;
    if ((events & DB_PIPE_OUT) && PQflush(p->pg) < 0) {
        pipe_break(p, "could not send");
        return;
    }
    if ((events & DB_PIPE_IN) && !PQconsumeInput(p->pg)) {
        pipe_break(p, "connection lost");
        return;
    }
    drain(p);
    if (p->state == PIPE_READY && (events & DB_PIPE_OUT))
        db_pipe_flush(p);
}

void db_pipe_flush(struct db_pipe *p)
{
    if (p->state == PIPE_DOWN && !p->closing && td_now_ms() >= p->retry_at)
        connect_start(p);
    if (p->state != PIPE_READY)
        return;
    int r = PQflush(p->pg);
    if (r < 0) {
        pipe_break(p, "could not send");
        return;
    }
    set_watch(p, p->fd, DB_PIPE_IN | (r > 0 ? DB_PIPE_OUT : 0));
    /* a write that would block makes libpq read what arrived meanwhile */
    drain(p);
}

int db_pipe_ready(const struct db_pipe *p)
{
    return p->state == PIPE_READY;
}

int db_pipe_inflight(const struct db_pipe *p)
{
    return p->inflight;
}
