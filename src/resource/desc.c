/*
 * desc.c - the tenant tables' description, read from the catalog of one storage (every
 * storage runs the same files, so the pool schema stands for all): columns, types,
 * NOT NULL, defaults, foreign keys and the tenantd comments. Built once per migration
 * version and shared read-only; the last reference frees it.
 */
#include "resource/resource.h"

#include "core/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char tables_sql[] =
    "SELECT c.oid::text, c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND "
    "c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname <> 'tenantd_migrations' "
    "AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND "
    "a.attname = 'tenant_id' AND NOT a.attisdropped) ORDER BY c.relname";

/* The describing connection's own; a request's transaction runs with just its schema too. */
static const char search_path_sql[] = "SELECT set_config('search_path', quote_ident($1), false)";

/* base: the element's type name for arrays, else the type's (domains not unwrapped). */
static const char columns_sql[] =
    "SELECT a.attrelid::text, a.attname, format_type(a.atttypid, NULL), "
    "format_type(a.atttypid, a.atttypmod), coalesce(et.typname, t.typname), "
    "(et.oid IS NOT NULL)::int, a.attnotnull::int, (a.atthasdef OR a.attidentity <> '')::int, "
    "(a.attidentity <> '' OR a.attgenerated <> '')::int, a.atttypmod, "
    "col_description(a.attrelid, a.attnum) FROM pg_attribute a JOIN pg_class c ON "
    "c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON "
    "t.oid = a.atttypid LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A' "
    "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped "
    "ORDER BY a.attrelid, a.attnum";

/* Each foreign key with its column names in key order, comma-separated. */
static const char fkeys_sql[] =
    "SELECT con.conrelid::text, con.conname, con.confrelid::text, array_to_string(ARRAY("
    "SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, i) JOIN pg_attribute a ON "
    "a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i), ','), array_to_string(ARRAY("
    "SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, i) JOIN pg_attribute a ON "
    "a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i), ',') FROM pg_constraint con "
    "JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE con.contype = 'f' AND n.nspname = $1 ORDER BY con.conrelid, con.conname";

char *res_quote(struct td_arena *a, const char *name)
{
    size_t n = strlen(name), k = 0;
    char *q = a ? td_arena_alloc(a, 2 * n + 3) : td_xmalloc(2 * n + 3);
    q[k++] = '"';
    for (const char *p = name; *p; p++) {
        if (*p == '"')
            q[k++] = '"';
        q[k++] = *p;
    }
    q[k++] = '"';
    q[k] = '\0';
    return q;
}

/* The JSON object after the word tenantd in a comment, or NULL (caller json_decref). */
static json_t *comment_options(const char *comment)
{
    if (!comment)
        return NULL;
    const char *p = comment + strspn(comment, " \t\r\n");
    if (strncmp(p, "tenantd", 7) != 0 || (p[7] && !strchr(" \t\r\n{", p[7])))
        return NULL;
    json_t *o = json_loads(p + 7, 0, NULL);
    if (json_is_object(o))
        return o;
    json_decref(o);
    return NULL;
}

static const char *role_opt(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    if (v && (!strcmp(v, "member") || !strcmp(v, "admin") || !strcmp(v, "owner")))
        return v;
    return "member";
}

static void table_init(struct res_table *t, const char *name, const char *comment)
{
    memset(t, 0, sizeof(*t));
    t->name = td_xstrdup(name);
    t->qname = res_quote(NULL, name);
    t->path = td_xstrdup(name);
    for (char *c = t->path; *c; c++)
        *c = *c == '_' ? '-' : *c;
    json_t *o = comment_options(comment);
    t->read_role = td_xstrdup(role_opt(o, "read"));
    t->write_role = td_xstrdup(role_opt(o, "write"));
    t->expose = !json_is_false(json_object_get(o, "expose"));
    json_t *max = json_object_get(o, "max");
    if (json_is_object(max)) {
        t->max_plans = td_xcalloc(json_object_size(max) + 1, sizeof(char *));
        t->max_rows = td_xcalloc(json_object_size(max) + 1, sizeof(long));
        const char *k;
        json_t *v;
        json_object_foreach(max, k, v)
        {
            if (!json_is_integer(v))
                continue;
            t->max_plans[t->nmax] = td_xstrdup(k);
            t->max_rows[t->nmax++] = (long)json_integer_value(v);
        }
    }
    t->id_col = t->created_col = t->updated_col = -1;
    json_decref(o);
}

static enum res_kind kind_of(const char *base, int *bits)
{
    static const struct {
        const char *name;
        enum res_kind kind;
        int bits;
    } map[] = {{"text", RES_TEXT, 0},    {"varchar", RES_TEXT, 0}, {"bpchar", RES_TEXT, 0},
               {"name", RES_TEXT, 0},    {"citext", RES_TEXT, 0},  {"int2", RES_INT, 16},
               {"int4", RES_INT, 32},    {"int8", RES_INT, 64},    {"numeric", RES_NUMERIC, 0},
               {"float4", RES_FLOAT, 0}, {"float8", RES_FLOAT, 0}, {"bool", RES_BOOL, 0},
               {"uuid", RES_UUID, 0},    {"date", RES_DATE, 0},    {"timestamptz", RES_TSTZ, 0},
               {"timestamp", RES_TS, 0}, {"json", RES_JSON, 0},    {"jsonb", RES_JSON, 0}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcmp(map[i].name, base)) {
            *bits = map[i].bits;
            return map[i].kind;
        }
    *bits = 0;
    return RES_OTHER;
}

/* Row i of columns_sql into c. */
static void column_init(struct res_col *c, PGresult *r, int i)
{
    memset(c, 0, sizeof(*c));
    c->name = td_xstrdup(PQgetvalue(r, i, 1));
    c->qname = res_quote(NULL, c->name);
    c->sqltype = td_xstrdup(PQgetvalue(r, i, 3));
    c->kind = kind_of(PQgetvalue(r, i, 4), &c->int_bits);
    c->is_array = atoi(PQgetvalue(r, i, 5));
    /* text casts: an explicit cast to varchar(n) or char would truncate silently, while
     * assignment of text to the column checks its length */
    if (c->kind == RES_TEXT)
        c->cast = td_xstrdup(c->is_array ? "text[]" : "text");
    else
        c->cast = td_xstrdup(PQgetvalue(r, i, 2));
    c->notnull = atoi(PQgetvalue(r, i, 6));
    c->has_default = atoi(PQgetvalue(r, i, 7));
    c->readonly = atoi(PQgetvalue(r, i, 8));
    int mod = atoi(PQgetvalue(r, i, 9));
    c->maxlen = c->kind == RES_TEXT && !c->is_array && mod > 4 ? mod - 4 : -1;
    json_t *o = comment_options(PQgetisnull(r, i, 10) ? NULL : PQgetvalue(r, i, 10));
    c->is_private = json_is_true(json_object_get(o, "private"));
    c->readonly |= json_is_true(json_object_get(o, "readonly"));
    json_decref(o);
}

static struct res_table *table_by_oid(struct res_desc *d, char **oids, const char *oid)
{
    for (int i = 0; i < d->ntables; i++)
        if (!strcmp(oids[i], oid))
            return &d->tables[i];
    return NULL;
}

static void add_columns(struct res_desc *d, char **oids, PGresult *r)
{
    for (int i = 0; i < PQntuples(r); i++) {
        struct res_table *t = table_by_oid(d, oids, PQgetvalue(r, i, 0));
        if (!t || !strcmp(PQgetvalue(r, i, 1), "tenant_id"))
            continue;
        t->cols = td_xrealloc(t->cols, sizeof(*t->cols) * (size_t)(t->ncols + 1));
        struct res_col *c = &t->cols[t->ncols];
        column_init(c, r, i);
        if (!strcmp(c->name, "id"))
            t->id_col = t->ncols;
        t->has_jsonb |= c->kind == RES_JSON && !c->is_private;
        if (!strcmp(c->name, "created_at") && c->kind == RES_TSTZ && !c->is_array)
            t->created_col = t->ncols, c->readonly = 1;
        if (!strcmp(c->name, "updated_at") && c->kind == RES_TSTZ && !c->is_array)
            t->updated_col = t->ncols, c->readonly = 1;
        t->ncols++;
    }
}

/* Keep foreign keys of the shape (tenant_id, x) -> (tenant_id, id): the embeddable ones. */
static void add_fkeys(struct res_desc *d, char **oids, PGresult *r)
{
    for (int i = 0; i < PQntuples(r); i++) {
        struct res_table *t = table_by_oid(d, oids, PQgetvalue(r, i, 0));
        struct res_table *to = table_by_oid(d, oids, PQgetvalue(r, i, 2));
        const char *from = PQgetvalue(r, i, 3), *dst = PQgetvalue(r, i, 4);
        const char *col = NULL;
        if (!strncmp(from, "tenant_id,", 10) && !strcmp(dst, "tenant_id,id"))
            col = from + 10;
        if (!t || !to || !col || strchr(col, ','))
            continue;
        int ci = res_col_find(t, col);
        if (ci < 0)
            continue;
        t->fks = td_xrealloc(t->fks, sizeof(*t->fks) * (size_t)(t->nfks + 1));
        t->fks[t->nfks++] =
            (struct res_fk){td_xstrdup(PQgetvalue(r, i, 1)), ci, to, (int)(to - d->tables)};
    }
}

static int run(PGconn *pg, const char *sql, const char *schema, PGresult **out)
{
    *out = PQexecParams(pg, sql, 1, NULL, &schema, NULL, NULL, 0);
    if (PQresultStatus(*out) == PGRES_TUPLES_OK)
        return 0;
    td_log_error("reading the tenant tables failed: %.*s", (int)strcspn(PQerrorMessage(pg), "\n"),
                 PQerrorMessage(pg));
    PQclear(*out);
    *out = NULL;
    return TD_EUNAVAILABLE;
}

int res_desc_load(PGconn *pg, const char *schema, long version, struct res_desc **out)
{
    PGresult *tr = NULL, *cr = NULL, *fr = NULL;
    char **oids = NULL;
    *out = NULL;
    /* format_type names a type of the schema unqualified only when the schema is on the
     * search_path: the casts must say `mood`, which each storage's own search_path resolves
     * to its own copy, not `pool.mood`, which a schema or database tenant's column is not */
    int rc = run(pg, search_path_sql, schema, &tr);
    PQclear(tr);
    tr = NULL;
    if (rc == 0)
        rc = run(pg, tables_sql, schema, &tr);
    if (rc == 0)
        rc = run(pg, columns_sql, schema, &cr);
    if (rc == 0)
        rc = run(pg, fkeys_sql, schema, &fr);
    if (rc < 0)
        goto out;
    struct res_desc *d = td_xcalloc(1, sizeof(*d));
    d->version = version;
    d->ntables = PQntuples(tr);
    d->tables = td_xcalloc((size_t)d->ntables + 1, sizeof(*d->tables));
    oids = td_xcalloc((size_t)d->ntables + 1, sizeof(char *));
    for (int i = 0; i < d->ntables; i++) {
        oids[i] = PQgetvalue(tr, i, 0);
        table_init(&d->tables[i], PQgetvalue(tr, i, 1),
                   PQgetisnull(tr, i, 2) ? NULL : PQgetvalue(tr, i, 2));
    }
    add_columns(d, oids, cr);
    add_fkeys(d, oids, fr);
    for (int i = 0; i < d->ntables; i++)
        res_sql_cache(&d->tables[i]);
    atomic_init(&d->refs, 1);
    *out = d;
out:
    free(oids);
    PQclear(tr);
    PQclear(cr);
    PQclear(fr);
    return rc;
}

static void table_free(struct res_table *t)
{
    for (int i = 0; i < t->ncols; i++) {
        struct res_col *c = &t->cols[i];
        free(c->name), free(c->qname), free(c->cast), free(c->sqltype);
    }
    for (int i = 0; i < t->nfks; i++)
        free(t->fks[i].conname);
    for (int i = 0; i < t->nmax; i++)
        free(t->max_plans[i]);
    free(t->max_plans), free(t->max_rows), free(t->cols), free(t->fks);
    for (size_t i = 0; i < sizeof(t->row_json) / sizeof(t->row_json[0]); i++)
        free(t->row_json[i]);
    free(t->name), free(t->qname), free(t->path), free(t->read_role), free(t->write_role);
}

void res_desc_ref(struct res_desc *d)
{
    atomic_fetch_add(&d->refs, 1);
}

void res_desc_unref(struct res_desc *d)
{
    if (!d || atomic_fetch_sub(&d->refs, 1) != 1)
        return;
    for (int i = 0; i < d->ntables; i++)
        table_free(&d->tables[i]);
    free(d->tables);
    free(d);
}

int res_table_served(const struct res_table *t)
{
    return t->expose && strcmp(t->name, "users") != 0 && strcmp(t->name, "audit_logs") != 0 &&
           t->id_col >= 0 && t->cols[t->id_col].kind == RES_UUID && !t->cols[t->id_col].is_array;
}

const struct res_table *res_desc_by_path(const struct res_desc *d, const char *path)
{
    for (int i = 0; d && i < d->ntables; i++)
        if (!strcmp(d->tables[i].path, path) && res_table_served(&d->tables[i]))
            return &d->tables[i];
    return NULL;
}

const struct res_table *res_desc_by_name(const struct res_desc *d, const char *name)
{
    for (int i = 0; d && i < d->ntables; i++)
        if (!strcmp(d->tables[i].name, name))
            return &d->tables[i];
    return NULL;
}

int res_col_find(const struct res_table *t, const char *name)
{
    for (int i = 0; i < t->ncols; i++)
        if (!strcmp(t->cols[i].name, name))
            return i;
    return -1;
}

long res_table_max(const struct res_table *t, const char *plan)
{
    for (int i = 0; i < t->nmax; i++)
        if (plan && !strcmp(t->max_plans[i], plan))
            return t->max_rows[i];
    return -1;
}
