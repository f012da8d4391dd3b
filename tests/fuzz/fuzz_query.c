/*
 * fuzz_query.c - the resource query grammar (src/resource/query.c) and the list statement
 * built from it (sql.c). Input: a query string "k=v&k=v..." (no percent-decoding: the HTTP
 * server has done that). The description is built here by hand: a table of every column
 * kind, a private column, and a second table whose foreign key makes embeds both ways.
 * Besides sanitizer reports: a parsed query names only visible columns, ends its order with
 * id, and its statement holds no byte of a value (values are parameters).
 */
#include "resource/resource.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define QUERY_ARGS 64

static struct res_col col(const char *name, enum res_kind kind, int notnull)
{
    struct res_col c = {0};
    c.name = (char *)name;
    c.qname = res_quote(NULL, name);
    c.kind = kind;
    c.notnull = notnull;
    c.maxlen = -1;
    c.int_bits = 32;
    c.cast = (char *)(kind == RES_INT       ? "integer"
                      : kind == RES_NUMERIC ? "numeric"
                      : kind == RES_FLOAT   ? "double precision"
                      : kind == RES_BOOL    ? "boolean"
                      : kind == RES_UUID    ? "uuid"
                      : kind == RES_DATE    ? "date"
                      : kind == RES_TSTZ    ? "timestamp with time zone"
                      : kind == RES_JSON    ? "jsonb"
                                            : "text");
    c.sqltype = c.cast;
    return c;
}

static struct res_desc *desc(void)
{
    static struct res_desc d;
    static struct res_table t[2];
    static struct res_col a[10], b[4];
    static struct res_fk fk;
    if (d.ntables)
        return &d;
    a[0] = col("id", RES_UUID, 1);
    a[1] = col("name", RES_TEXT, 1);
    a[2] = col("score", RES_INT, 0);
    a[3] = col("amount", RES_NUMERIC, 0);
    a[4] = col("ratio", RES_FLOAT, 0);
    a[5] = col("vip", RES_BOOL, 1);
    a[6] = col("due", RES_DATE, 0);
    a[7] = col("meta", RES_JSON, 0);
    a[8] = col("secret", RES_TEXT, 0);
    a[8].is_private = 1;
    a[9] = col("created_at", RES_TSTZ, 1);
    b[0] = col("id", RES_UUID, 1);
    b[1] = col("item_id", RES_UUID, 1);
    b[2] = col("qty", RES_INT, 1);
    b[3] = col("created_at", RES_TSTZ, 1);
    t[0] = (struct res_table){.name = "items",
                              .path = "items",
                              .read_role = "member",
                              .write_role = "member",
                              .expose = 1,
                              .cols = a,
                              .ncols = 10,
                              .id_col = 0,
                              .created_col = 9,
                              .updated_col = -1};
    t[0].qname = res_quote(NULL, "items");
    fk = (struct res_fk){"line_items_fk", 1, &t[0], 0};
    t[1] = (struct res_table){.name = "line_items",
                              .path = "line-items",
                              .read_role = "member",
                              .write_role = "member",
                              .expose = 1,
                              .cols = b,
                              .ncols = 4,
                              .id_col = 0,
                              .created_col = 3,
                              .updated_col = -1,
                              .fks = &fk,
                              .nfks = 1};
    t[1].qname = res_quote(NULL, "line_items");
    d.tables = t;
    d.ntables = 2;
    return &d;
}

static void check(const struct res_table *t, const struct res_query *q, const char *sql)
{
    for (int i = 0; i < q->nfilters; i++) {
        const struct res_col *c = &t->cols[q->filters[i].col];
        if (c->is_private)
            abort();
        /* a value long enough to be unmistakable never appears in the statement text */
        const char *v = q->filters[i].value;
        if (v && strlen(v) >= 12 && strstr(sql, v))
            abort();
    }
    if (q->norder < 1 || q->norder > RES_MAX_ORDER + 1)
        abort();
    for (int i = 0; i < q->norder; i++)
        if (t->cols[q->order[i].col].is_private)
            abort();
    int has_id = 0;
    for (int i = 0; i < q->norder; i++)
        has_id |= q->order[i].col == t->id_col;
    if (!has_id)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct res_desc *d = desc();
    const struct res_table *t = &d->tables[size % 2];
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    const char *keys[QUERY_ARGS], *vals[QUERY_ARGS];
    int n = 0;
    for (char *save = NULL, *kv = strtok_r(s, "&", &save); kv && n < QUERY_ARGS;
         kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        if (eq)
            *eq = '\0';
        keys[n] = kv;
        vals[n++] = eq ? eq + 1 : "";
    }
    struct td_arena *a = td_arena_new();
    struct res_query q;
    struct res_sql sql;
    const char *detail = NULL;
    if (res_query_parse(d, t, keys, vals, n, a, &q, &detail) == 0) {
        if (res_sql_list(t, &q, "20", a, &sql, &detail) == 0)
            check(t, &q, sql.sql);
    } else if (!detail) {
        abort(); /* every refusal says why */
    }
    if (res_query_parse_one(d, t, keys, vals, n, a, &q, &detail) == 0) {
        res_sql_get(t, &q, "00000000-0000-0000-0000-000000000000", a, &sql);
        if (!sql.sql)
            abort();
    }
    td_arena_free(a);
    free(s);
    return 0;
}
