/*
 * pipe.h - one non-blocking PostgreSQL connection in pipeline mode, owned by one event
 * loop: many tenant transactions in flight on it at once, each ending in its own Sync, so
 * each is its own implicit transaction and a failure aborts only that one.
 *
 * Single-threaded: every call on a pipe, and every callback it makes, happens on the
 * thread that owns it. The pipe holds one connection to its server's default database, as
 * the runtime role, named "tenantd pipeline" (application_name), apart from the pools.
 */
#ifndef TD_DB_PIPE_H
#define TD_DB_PIPE_H

#include "db/db.h"

struct db_pipe;
struct db_pipe_batch;

/* Event bits: the values of EPOLLIN / EPOLLOUT, which are also POLLIN / POLLOUT. */
#define DB_PIPE_IN 0x001u
#define DB_PIPE_OUT 0x004u

/* How a pipe asks its loop to watch its socket (the fd changes when it reconnects). Each
 * returns 0 or a TD_E* code; the loop then calls db_pipe_events() when fd is ready. */
struct db_pipe_io {
    int (*watch)(void *ctx, int fd, unsigned events);
    int (*modify)(void *ctx, int fd, unsigned events);
    void (*unwatch)(void *ctx, int fd);
    void *ctx;
};

/*
 * A batch's end: rc and res[0..n-1] as db_exec gives them (res[i] are the callee's to
 * PQclear, NULL after a failure), err the failing statement's fields (sqlstate "" when
 * none failed) and ctx_value the caller's context item (db_target.ctx_sql) or "". Runs on
 * the pipe's thread, from db_pipe_events, db_pipe_flush or db_pipe_free; it may submit
 * again.
 */
typedef void (*db_pipe_cb)(void *arg, int rc, PGresult **res, int n, const struct db_error *err,
                           const char *ctx_value);

/* A pipe to server's default database; it starts connecting at once (never blocking).
 * io is copied. */
struct db_pipe *db_pipe_new(struct db *db, int server, const struct db_pipe_io *io);
/* Close; batches still in flight end with TD_EUNAVAILABLE. Accepts NULL. */
void db_pipe_free(struct db_pipe *p);

/*
 * Queue t's transaction (context statement, stmts, Sync: db_exec's contract, at most 8
 * statements; t->database must be NULL and t->read_only is ignored), written at the
 * latest by db_pipe_flush() (libpq before 17 writes at each batch's Sync, 17 and later
 * once for all the batches of an iteration); cb(arg, ...) runs once when the Sync's answer arrives,
 * or with TD_EUNAVAILABLE when the connection breaks first. t and stmts are borrowed for the call.
 * *out (may be NULL) names the batch for db_pipe_cancel. Returns 0, or TD_EUNAVAILABLE
 * with nothing queued and cb never called: not connected (a reconnect is started at most
 * once a second), too many batches in flight, no result for db_config.pipe_stall_ms
 * with batches in flight (a lock: what queues behind would wait as long), or t not for
 * this pipe. Run it elsewhere.
 */
int db_pipe_submit(struct db_pipe *p, const struct db_target *t, const struct db_stmt *stmts, int n,
                   db_pipe_cb cb, void *arg, struct db_pipe_batch **out) TD_MUSTCHECK;
/* The caller of batch b went away: b still runs to its end (the statements are already
 * on their way), its results are freed and its callback never runs. */
void db_pipe_cancel(struct db_pipe_batch *b);

/* The pipe's socket is ready (DB_PIPE_IN / DB_PIPE_OUT; hang-up and error as both). */
void db_pipe_events(struct db_pipe *p, unsigned events);
/* End of a loop iteration: write what the batches of this iteration queued, in as few
 * writes as libpq allows; watch DB_PIPE_OUT only while some stays unsent. */
void db_pipe_flush(struct db_pipe *p);

/* 1 when connected and taking batches. */
int db_pipe_ready(const struct db_pipe *p);
/* Batches in flight. */
int db_pipe_inflight(const struct db_pipe *p);

#endif
