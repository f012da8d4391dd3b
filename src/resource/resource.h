/*
 * resource.h - the tenant tables as REST resources (SPEC §7): their description read from
 * the catalog, the query grammar and the SQL built from both. Knows no HTTP; src/api's
 * resources.c serves it.
 */
#ifndef TD_RESOURCE_RESOURCE_H
#define TD_RESOURCE_RESOURCE_H

#include "core/err.h"
#include "core/mem.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdatomic.h>

struct db;

/* How a column's values look in JSON (an array column has is_array and its element's kind). */
enum res_kind {
    RES_TEXT,
    RES_INT,
    RES_NUMERIC,
    RES_FLOAT,
    RES_BOOL,
    RES_UUID,
    RES_DATE,
    RES_TSTZ,
    RES_TS,
    RES_JSON,
    RES_OTHER, /* any other type: a string PostgreSQL parses */
};

struct res_col {
    char *name;
    char *qname;   /* quoted identifier */
    char *cast;    /* type for a parameter's cast, without modifier ("integer", "text[]") */
    char *sqltype; /* format_type with modifier, for messages and OpenAPI */
    enum res_kind kind;
    int is_array;
    int int_bits; /* 16, 32 or 64 for RES_INT */
    int maxlen;   /* varchar(n)/char(n): n code points; else -1 */
    int notnull;
    int has_default;
    int is_private;
    int readonly; /* readonly comment, identity or generated, created_at, updated_at */
};

struct res_table;

/* A foreign key (tenant_id, col) -> target (tenant_id, id); others are not embeddable. */
struct res_fk {
    char *conname;
    int col;                  /* index of the referencing column */
    struct res_table *target; /* NULL when the target is not described */
    int target_idx;
};

struct res_table {
    char *name;
    char *qname;
    char *path; /* name with _ written - */
    char *read_role, *write_role;
    int expose;
    int nmax;
    char **max_plans;
    long *max_rows;
    struct res_col *cols;
    int ncols;
    int id_col, created_col, updated_col; /* -1 when absent */
    int has_jsonb;                        /* some column's JSON text has jsonb's spaces */
    struct res_fk *fks;
    int nfks;
    /* The row's JSON expression with every visible column, for the aliases x, p, o and d,
     * built once at load (res_sql_cache): most statements embed one, and writing it takes
     * dozens of printf calls. NULL: built per statement. */
    char *row_json[4];
};

/* One migration version's tables; immutable once built, shared by every thread. */
struct res_desc {
    atomic_int refs;
    long version;
    struct res_table *tables;
    int ntables;
};

/* Load the description of schema (normally "pool") on a superuser connection. */
int res_desc_load(PGconn *pg, const char *schema, long version, struct res_desc **out) TD_MUSTCHECK;
void res_desc_ref(struct res_desc *d);
void res_desc_unref(struct res_desc *d);
/* A served table by path ("line-items"), or NULL. */
const struct res_table *res_desc_by_path(const struct res_desc *d, const char *path);
const struct res_table *res_desc_by_name(const struct res_desc *d, const char *name);
int res_col_find(const struct res_table *t, const char *name);
/* Plan max of t for plan, or -1 (unlimited). */
long res_table_max(const struct res_table *t, const char *plan);
/* Whether t is served: exposed, uuid id. */
int res_table_served(const struct res_table *t);

/*
 * The process's current description, reloaded by a watcher thread when the pool
 * schema's migration version changes (polled every second).
 */
struct res_registry;
int res_registry_new(struct db *db, struct res_registry **out) TD_MUSTCHECK;
void res_registry_free(struct res_registry *r);
/* +1 reference to the current description (NULL before the first load). Thread-safe. */
struct res_desc *res_registry_get(struct res_registry *r);
/* Reload now when the version changed (used at start and by the watcher). */
int res_registry_refresh(struct res_registry *r) TD_MUSTCHECK;

/* ---- query grammar (query.c) ---- */

enum res_op {
    RES_EQ,
    RES_NEQ,
    RES_LT,
    RES_LTE,
    RES_GT,
    RES_GTE,
    RES_LIKE,
    RES_ILIKE,
    RES_IN,
    RES_IS_NULL,
    RES_IS_TRUE,
    RES_IS_FALSE
};

struct res_filter {
    int col;
    enum res_op op;
    int negate;
    const char *value; /* bound parameter text (like patterns translated, in: array literal) */
};

struct res_order {
    int col;
    int desc;
};

/* An embedded relation: forward (fk of this table) or reverse (fk of another table). */
struct res_embed {
    const struct res_table *other;
    const struct res_fk *fk;
    int reverse;
    const char *key;
};

#define RES_MAX_FILTERS 16
#define RES_MAX_ORDER 8
#define RES_MAX_EMBED 8

struct res_query {
    struct res_filter filters[RES_MAX_FILTERS];
    int nfilters;
    struct res_order order[RES_MAX_ORDER + 1]; /* the id tie-break is the last */
    int norder;
    unsigned char *selected; /* per column, NULL: all */
    struct res_embed embeds[RES_MAX_EMBED];
    int nembeds;
    int limit;
    const char *cursor;
    unsigned long long shape; /* hash of filters and order: a cursor's fingerprint */
};

/*
 * Parse a list's query arguments (keys[i]=vals[i]) for table t of d into q (arena memory).
 * Returns 0 or TD_EBADREQ with *detail set. Pure: no I/O.
 */
int res_query_parse(const struct res_desc *d, const struct res_table *t, const char *const *keys,
                    const char *const *vals, int n, struct td_arena *a, struct res_query *q,
                    const char **detail) TD_MUSTCHECK;
/* Only select and embed (GET one row). */
int res_query_parse_one(const struct res_desc *d, const struct res_table *t,
                        const char *const *keys, const char *const *vals, int n, struct td_arena *a,
                        struct res_query *q, const char **detail) TD_MUSTCHECK;
/* Check a value's text for a column (filters, cursors): 0 or -1. */
int res_value_text_ok(const struct res_col *c, const char *v);
/* Validate one JSON value for a column (writes) and give its parameter text (arena, NULL
 * for null). Returns 0 or -1 with *why set. */
int res_value_json(const struct res_col *c, json_t *v, struct td_arena *a, const char **text,
                   const char **why);

/* Drop the whitespace outside strings of a JSON text in place (jsonb writes "a": [1, 2]);
 * returns the new length. */
size_t res_json_compact(char *s, size_t len);

/* ---- SQL (sql.c) ---- */

/* Build t's cached statement parts (row_json); freed with the description. */
void res_sql_cache(struct res_table *t);

struct res_sql {
    char *sql;
    const char **params;
    int nparams;
};

/* A list: $1 limit; rows: json, the order columns as text, id (for the cursor). */
int res_sql_list(const struct res_table *t, const struct res_query *q, const char *limit,
                 struct td_arena *a, struct res_sql *out, const char **detail) TD_MUSTCHECK;
/* One row by id ($1). */
void res_sql_get(const struct res_table *t, const struct res_query *q, const char *id,
                 struct td_arena *a, struct res_sql *out);
/* Audit parameters: actor, ip, user agent (borrowed). */
struct res_actor {
    const char *user, *ip, *agent;
};
/* Insert rows (JSON objects, validated here): one result row per inserted row. Returns 0 or
 * TD_EVALIDATION with *detail set. */
int res_sql_insert(const struct res_table *t, json_t *const *rows, int nrows,
                   const struct res_actor *who, struct td_arena *a, struct res_sql *out,
                   const char **detail) TD_MUSTCHECK;
int res_sql_update(const struct res_table *t, const char *id, json_t *obj,
                   const struct res_actor *who, struct td_arena *a, struct res_sql *out,
                   const char **detail) TD_MUSTCHECK;
void res_sql_delete(const struct res_table *t, const char *id, const struct res_actor *who,
                    struct td_arena *a, struct res_sql *out);
/* The cursor of a list's row (columns 1..) and the cursor's parameters back. */
char *res_cursor_make(const struct res_query *q, PGresult *r, int row, struct td_arena *a);

/* Quote an identifier (arena). */
char *res_quote(struct td_arena *a, const char *name);

#endif
