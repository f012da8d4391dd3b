/*
 * stmt.c - what db_exec (db.c) and the pipelines (pipe.c) share: the prepared statements
 * kept per connection, and the sending of one tenant transaction (context statement, then
 * the caller's statements) with the pairing of each result to what was sent.
 */
#include "core/hash.h"
#include "core/log.h"
#include "core/mem.h"
#include "db/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STMT_BUCKETS 64
#define STMT_MAX 256 /* prepared statements kept per connection (LRU) */

/*
 * A statement prepared on one connection. The key is a hash of the SQL text and the
 * search_path it runs under: a schema tenant's statements keep their own plans instead of
 * being re-planned whenever the previous request was another tenant's. A tenant statement
 * is prepared the second time it is seen while remembered; the first time it runs
 * unnamed, so that thousands of tenants seen once each cost no Parse + DEALLOCATE churn in
 * the LRU.
 */
struct stmt {
    struct td_hnode node; /* in db_conn.stmts, hashed by key */
    unsigned long long key;
    char name[24];
    int ready;   /* the server confirmed the Parse */
    int pending; /* a Parse is on its way: a pipeline behind it may not rely on it */
    struct td_link lru;
};

void db__conn_init(struct db_conn *c, PGconn *pg)
{
    memset(c, 0, sizeof(*c));
    c->pg = pg;
    td_htab_init(&c->stmts, STMT_BUCKETS);
}

static void conn_forget_stmts(struct db_conn *c)
{
    struct td_hnode *n;
    while ((n = td_htab_pop(&c->stmts)))
        free(TD_CONTAINER_OF(n, struct stmt, node));
    c->lru = (struct td_list){NULL, NULL};
    c->nstmts = 0;
}

void db__conn_cleanup(struct db_conn *c)
{
    conn_forget_stmts(c);
    td_htab_cleanup(&c->stmts);
}

static unsigned long long stmt_key(const char *sql, const char *search_path)
{
    uint64_t h = td_hash64_byte(td_hash64_str(TD_HASH64_INIT, sql), 0xff);
    return td_hash64_str(h, search_path ? search_path : "");
}

/* The 64-bit key decides; the table hashes its low 32 bits. */
static int stmt_eq(const struct td_hnode *n, const void *key)
{
    return TD_CONTAINER_OF(n, struct stmt, node)->key == *(const unsigned long long *)key;
}

/* Drop the least recently used statement (name copied to evicted) to make room. One whose
 * Parse is still on its way stays (a result will point at it): the table may then hold
 * more than STMT_MAX for as long as many pipelines are in flight. */
static void stmt_evict(struct db_conn *c, char *evicted, size_t cap)
{
    struct td_link *l = c->lru.head;
    while (l && TD_CONTAINER_OF(l, struct stmt, lru)->pending)
        l = l->next;
    if (!l)
        return;
    struct stmt *st = TD_CONTAINER_OF(l, struct stmt, lru);
    td_list_unlink(&c->lru, &st->lru);
    td_htab_del(&c->stmts, &st->node);
    snprintf(evicted, cap, "%s", st->ready ? st->name : "");
    free(st);
    c->nstmts--;
}

/*
 * The prepared statement for sql on c, creating its entry when missing: *fresh is set
 * when it must be Parsed in this pipeline first; *evicted names one to DEALLOCATE.
 */
static struct stmt *stmt_lookup(struct db_conn *c, const char *sql, const char *search_path,
                                int *fresh, int *created, char *evicted, size_t cap)
{
    unsigned long long key = stmt_key(sql, search_path);
    evicted[0] = '\0';
    *created = 0;
    struct td_hnode *n = td_htab_find(&c->stmts, (unsigned)key, stmt_eq, &key);
    if (n) {
        struct stmt *st = TD_CONTAINER_OF(n, struct stmt, node);
        td_list_append(&c->lru, &st->lru);
        *fresh = !st->ready;
        return st;
    }
    *created = 1;
    if (c->nstmts >= STMT_MAX)
        stmt_evict(c, evicted, cap);
    struct stmt *st = td_xcalloc(1, sizeof(*st));
    st->key = key;
    snprintf(st->name, sizeof(st->name), "td%llu", ++c->seq);
    td_htab_add(&c->stmts, &st->node, (unsigned)key);
    td_list_append(&c->lru, &st->lru);
    c->nstmts++;
    *fresh = 1;
    return st;
}

static const char ctx_pool_sql[] =
    "SELECT set_config('app.tenant_id', $1, true), set_config('search_path', $2, true)";
static const char ctx_role_sql[] =
    "SELECT set_config('app.tenant_id', $1, true), set_config('search_path', $2, true), "
    "set_config('role', $3, true)";

/* Queue one statement: prepared (Parse once per connection) or unnamed. */
static int send_stmt(struct db_conn *c, int prepare, const char *search_path, const char *sql,
                     int nparams, const char *const *params, int binary, struct db__sent *sent,
                     int *ns, int kind, int index)
{
    struct stmt *st = NULL;
    int fresh = 0, created = 0;
    if (prepare) {
        char evicted[24];
        st = stmt_lookup(c, sql, search_path, &fresh, &created, evicted, sizeof(evicted));
        if (evicted[0]) {
            char dealloc[48];
            snprintf(dealloc, sizeof(dealloc), "DEALLOCATE %s", evicted);
            if (!PQsendQueryParams(c->pg, dealloc, 0, NULL, NULL, NULL, NULL, 0))
                return 0;
            sent[(*ns)++] = (struct db__sent){DB__SENT_DEALLOCATE, -1, NULL};
        }
    }
    /* unnamed: no prepared statements, a tenant statement's first sighting, or a Parse of
     * it still on its way (it may yet fail with the pipeline it is in) */
    if (!prepare || (created && search_path) || st->pending) {
        if (!PQsendQueryParams(c->pg, sql, nparams, NULL, params, NULL, NULL, binary))
            return 0;
        sent[(*ns)++] = (struct db__sent){kind, index, NULL};
        return 1;
    }
    if (fresh) {
        if (!PQsendPrepare(c->pg, st->name, sql, nparams, NULL))
            return 0;
        st->pending = 1;
        sent[(*ns)++] = (struct db__sent){DB__SENT_PARSE, -1, st};
    }
    if (!PQsendQueryPrepared(c->pg, st->name, nparams, params, NULL, NULL, binary))
        return 0;
    sent[(*ns)++] = (struct db__sent){kind, index, NULL};
    return 1;
}

/* Queue t's context statement: the role's, the plain pool one, or the caller's pool one. */
static int send_ctx(struct db_conn *c, int prepare, const struct db_target *t,
                    struct db__sent *sent, int *ns)
{
    if (t->role) {
        const char *p[3] = {t->tenant_id, t->search_path, t->role};
        return send_stmt(c, prepare, NULL, ctx_role_sql, 3, p, 0, sent, ns, DB__SENT_CTX, -1);
    }
    if (t->ctx_sql) {
        const char *p[4] = {t->tenant_id, t->search_path, t->ctx_params[0], t->ctx_params[1]};
        return send_stmt(c, prepare, NULL, t->ctx_sql, 4, p, 0, sent, ns, DB__SENT_CTX, -1);
    }
    const char *p[2] = {t->tenant_id, t->search_path};
    return send_stmt(c, prepare, NULL, ctx_pool_sql, 2, p, 0, sent, ns, DB__SENT_CTX, -1);
}

int db__send_tx(struct db_conn *c, int prepare, const struct db_target *t,
                const struct db_stmt *stmts, int n, struct db__sent *sent, int *ns)
{
    *ns = 0;
    if (n > DB__MAX_PIPELINE)
        return 0;
    if (t->tenant_id && !send_ctx(c, prepare, t, sent, ns))
        return 0;
    for (int i = 0; i < n; i++)
        if (!send_stmt(c, prepare, t->search_path, stmts[i].sql, stmts[i].nparams, stmts[i].params,
                       stmts[i].binary, sent, ns, DB__SENT_STMT, i))
            return 0;
    return 1;
}

static void error_fields(struct db_error *e, const PGresult *r)
{
    const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *c = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);
    const char *col = PQresultErrorField(r, PG_DIAG_COLUMN_NAME);
    snprintf(e->sqlstate, sizeof(e->sqlstate), "%s", s ? s : "");
    snprintf(e->constraint, sizeof(e->constraint), "%s", c ? c : "");
    snprintf(e->column, sizeof(e->column), "%s", col ? col : "");
}

void db__take_result(const struct db_target *t, const struct db__sent *s, PGresult *r, int *rc,
                     PGresult **res)
{
    ExecStatusType st = PQresultStatus(r);
    int ok = st != PGRES_FATAL_ERROR && st != PGRES_PIPELINE_ABORTED;
    if (st == PGRES_FATAL_ERROR && *rc == 0) {
        *rc = db_map_error(r);
        if (t->error)
            error_fields(t->error, r);
    }
    if (s->kind == DB__SENT_PARSE) {
        s->st->pending = 0;
        s->st->ready = ok;
    }
    if (s->kind == DB__SENT_CTX && ok && t->ctx_value && !t->role && t->ctx_sql &&
        PQntuples(r) == 1 && PQnfields(r) == 3)
        snprintf(t->ctx_value, t->ctx_value_cap, "%s", PQgetvalue(r, 0, 2));
    if (s->kind == DB__SENT_STMT && ok)
        res[s->index] = r;
    else
        PQclear(r);
}
