/*
 * internal.h - helpers shared inside src/db only: the hibernation of idle tenant
 * databases (hibernate.c) reaches the servers' pools of db.c through these; db_exec (db.c)
 * and the pipelines (pipe.c) send a tenant transaction through stmt.c.
 */
#ifndef TD_DB_INTERNAL_H
#define TD_DB_INTERNAL_H

#include "core/htab.h"
#include "core/list.h"
#include "db/db.h"
#include "db/pool.h"

struct db_hibernator;

/* The pool of server (a valid index). */
struct db_pool *db__server_pool(struct db *db, int server);

/* Start the thread that hibernates tenant databases idle for cfg->hibernate_after_s;
 * NULL when that is 0. Stopped (and joined) by db__hibernator_stop, which accepts NULL. */
struct db_hibernator *db__hibernator_start(struct db *db, int after_s);
void db__hibernator_stop(struct db_hibernator *h);

/* Let database on server take connections again if it was hibernated. Returns 1 when it
 * was (and is now awake), 0 when it was not, or a negative TD_E* code. */
int db__wake(struct db *db, int server, const char *database);

/* A runtime connection and the statements prepared on it (stmt.c). */
struct db_conn {
    PGconn *pg;
    struct td_htab stmts;
    struct td_list lru; /* least recently used first */
    int nstmts;
    unsigned long long seq;
};

void db__conn_init(struct db_conn *c, PGconn *pg);
/* Bytes of memory pg's backend holds (db/memory.c), or -1 when it cannot be told (not
 * idle, behind a pooler: pooled 1, neither local nor allowed to read its contexts). */
long long db__backend_memory(PGconn *pg, int pooled);
/* Forget c's statements (not pg, which the caller closes). */
void db__conn_cleanup(struct db_conn *c);

#define DB__MAX_PIPELINE 8 /* statements of one transaction at most */
#define DB__MAX_SENT (3 * (DB__MAX_PIPELINE + 1))

enum { DB__SENT_STMT, DB__SENT_PARSE, DB__SENT_DEALLOCATE, DB__SENT_CTX };

/* What was sent for one statement, to pair its result with its sender. */
struct db__sent {
    int kind;
    int index;       /* DB__SENT_STMT: index into the caller's statements */
    struct stmt *st; /* DB__SENT_PARSE: the entry to mark prepared */
};

/* Queue t's context statement (when t has a tenant) and stmts on c's pipeline, without the
 * Sync; sent[] (DB__MAX_SENT) receives what each result will belong to, *ns their number.
 * prepare: named statements per connection. 1, or 0 when libpq refused (the connection is
 * broken, or n > DB__MAX_PIPELINE): the pipeline then holds a partial transaction. */
int db__send_tx(struct db_conn *c, int prepare, const struct db_target *t,
                const struct db_stmt *stmts, int n, struct db__sent *sent, int *ns);
/* Account the result r of what s describes: *rc takes the first failure's mapped code
 * (t->error its fields), t->ctx_value the context item, res[s->index] a statement's
 * result (r is then the caller's), else r is cleared. */
void db__take_result(const struct db_target *t, const struct db__sent *s, PGresult *r, int *rc,
                     PGresult **res);

/* Start a non-blocking connection of the runtime role to server's default database
 * (PQconnectStartParams; drive it with PQconnectPoll). NULL when libpq could not start. */
PGconn *db__app_connect_start(struct db *db, int server);
/* A pipeline to server took a transaction; inflight: how many it has in flight now. */
void db__pipe_note(struct db *db, int server, int inflight);
/* db_config.pipe_stall_ms (db/pipe.h). */
int db__pipe_stall_ms(const struct db *db);
/* 1 when runtime statements are prepared per connection (TENANTD_PREPARE). */
int db__prepare(const struct db *db);

#endif
