/*
 * pipeline.c - the pipelines of one event loop: opened in loop_start, their sockets
 * watched through http/loop.h, flushed at the end of every loop iteration (one write for
 * the batches the iteration queued, as far as libpq allows), closed in loop_stop.
 */
#include "api/pipeline.h"

#include "app/app.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/mem.h"
#include "http/loop.h"

#include <stdlib.h>
#include <sys/epoll.h>

#define LOOP_SLOT_DB 0 /* http_loop_data slot of src/db's per-loop data */

_Static_assert(DB_PIPE_IN == EPOLLIN && DB_PIPE_OUT == EPOLLOUT, "pipe events are epoll's");

/* One pipeline and where its socket is watched. */
struct slot {
    struct http_loop *loop;
    struct db_pipe *pipe;
};

struct loop_pipes {
    int nservers, per; /* pipes[server * per + i] */
    struct slot *slots;
};

static int io_watch(void *ctx, int fd, unsigned events);

static void on_fd(struct http_loop *l, int fd, unsigned events, void *arg)
{
    (void)l;
    (void)fd;
    struct slot *s = arg;
    /* a hang-up or an error: let libpq find out which by reading and writing */
    if (events & (EPOLLHUP | EPOLLERR))
        events |= EPOLLIN | EPOLLOUT;
    if (s->pipe)
        db_pipe_events(s->pipe, events & (DB_PIPE_IN | DB_PIPE_OUT));
}

static int io_watch(void *ctx, int fd, unsigned events)
{
    struct slot *s = ctx;
    return http_loop_watch(s->loop, fd, events, on_fd, s);
}

static int io_modify(void *ctx, int fd, unsigned events)
{
    struct slot *s = ctx;
    return http_loop_modify(s->loop, fd, events);
}

static void io_unwatch(void *ctx, int fd)
{
    struct slot *s = ctx;
    http_loop_unwatch(s->loop, fd);
}

static void flush_all(struct http_loop *l, void *arg)
{
    (void)l;
    struct loop_pipes *lp = arg;
    for (int i = 0; i < lp->nservers * lp->per; i++)
        db_pipe_flush(lp->slots[i].pipe);
}

void api_pipeline_loop_start(struct http_loop *l)
{
    struct td_app *app = http_loop_app(l);
    int per = app->cfg->pipeline;
    if (per <= 0)
        return;
    struct loop_pipes *lp = td_xcalloc(1, sizeof(*lp));
    lp->nservers = db_server_count(app->db);
    lp->per = per;
    lp->slots = td_xcalloc((size_t)(lp->nservers * per), sizeof(*lp->slots));
    for (int i = 0; i < lp->nservers * per; i++) {
        struct slot *s = &lp->slots[i];
        s->loop = l;
        struct db_pipe_io io = {io_watch, io_modify, io_unwatch, s};
        s->pipe = db_pipe_new(app->db, i / per, &io);
    }
    if (http_loop_on_flush(l, flush_all, lp) < 0) {
        td_log_error("event loop: no room for the pipelines' flush; they stay unused");
        for (int i = 0; i < lp->nservers * per; i++)
            db_pipe_free(lp->slots[i].pipe);
        free(lp->slots);
        free(lp);
        return;
    }
    http_loop_set_data(l, LOOP_SLOT_DB, lp);
}

void api_pipeline_loop_stop(struct http_loop *l)
{
    struct loop_pipes *lp = http_loop_data(l, LOOP_SLOT_DB);
    if (!lp)
        return;
    http_loop_set_data(l, LOOP_SLOT_DB, NULL);
    for (int i = 0; i < lp->nservers * lp->per; i++) {
        struct db_pipe *p = lp->slots[i].pipe;
        lp->slots[i].pipe = NULL; /* on_fd may not reach it any more */
        db_pipe_free(p);
    }
    free(lp->slots);
    free(lp);
}

struct db_pipe *api_pipeline_pick(struct http_req *req, int server, const char *tenant_id)
{
    struct http_loop *l = http_req_loop(req);
    struct loop_pipes *lp = l ? http_loop_data(l, LOOP_SLOT_DB) : NULL;
    if (!lp || server < 0 || server >= lp->nservers)
        return NULL;
    /* several per server: a tenant keeps to one, whose backend then has its plans */
    unsigned i = lp->per > 1 ? td_rendezvous(tenant_id, (unsigned)lp->per) : 0;
    return lp->slots[server * lp->per + (int)i].pipe;
}
