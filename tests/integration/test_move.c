/*
 * test_move.c - moving a tenant between isolations (POST /admin/tenants/{id}/move) with
 * no row lost, writes during a move, and export / import round trips (SPEC §6): every
 * row compared in the database itself, old storage gone, old passwords still working.
 */
#include "harness.h"
#include "pgextra.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct td_server srv;

TD_SUITE_SERVER(srv)

/* Superuser connection to the database holding the tenant's rows in isolation iso. */
static PGconn *storage_conn(const char *tenant_id, const char *iso, char *schema, size_t size)
{
    char ident[40], db[48];
    td_storage_name(tenant_id, ident, sizeof(ident));
    snprintf(schema, size, "%s", strcmp(iso, "pool") == 0 ? "pool" : ident);
    snprintf(db, sizeof(db), "td_%s", ident + 2);
    return td_db_in(&srv, strcmp(iso, "database") == 0 ? db : NULL, "postgres");
}

static void fingerprint(const char *tenant_id, const char *iso, char *out, size_t size)
{
    char schema[40];
    PGconn *c = storage_conn(tenant_id, iso, schema, sizeof(schema));
    assert_non_null(c);
    assert_true(td_fingerprint(c, schema, tenant_id, out, size));
    PQfinish(c);
}

/* Where the tenant's storage exists: bit 0 its schema (main db), bit 1 its database,
 * bit 2 its role, bit 3 rows in the shared pool tables. */
static int storage_state(const char *tenant_id)
{
    char ident[40], sql[512];
    PGconn *c = td_db(&srv, "postgres");
    int st = 0;
    assert_non_null(c);
    td_storage_name(tenant_id, ident, sizeof(ident));
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_namespace WHERE nspname = '%s'", ident);
    st |= td_sql_count(c, sql) > 0 ? 1 : 0;
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_database WHERE datname = 'td_%s'",
             ident + 2);
    st |= td_sql_count(c, sql) > 0 ? 2 : 0;
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_roles WHERE rolname = '%s'", ident);
    st |= td_sql_count(c, sql) > 0 ? 4 : 0;
    snprintf(sql, sizeof(sql),
             "SELECT (SELECT count(*) FROM pool.users WHERE tenant_id = '%s') + "
             "(SELECT count(*) FROM pool.projects WHERE tenant_id = '%s') + "
             "(SELECT count(*) FROM pool.audit_logs WHERE tenant_id = '%s')",
             tenant_id, tenant_id, tenant_id);
    st |= td_sql_count(c, sql) > 0 ? 8 : 0;
    PQfinish(c);
    return st;
}

static int expected_state(const char *iso)
{
    if (strcmp(iso, "pool") == 0)
        return 8;
    return strcmp(iso, "schema") == 0 ? 1 | 4 : 2 | 4;
}

static long move(const char *key, const char *body, struct td_resp *r)
{
    char path[160];
    snprintf(path, sizeof(path), "/admin/tenants/%s/move", key);
    return td_admin(&srv, "POST", path, body, r);
}

static void post_project(const struct td_principal *p, const char *name)
{
    char path[128], body[128];
    struct td_resp r;
    snprintf(path, sizeof(path), "/t/%s/projects", p->slug);
    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"description\":\"d\"}", name);
    td_call(&srv, "POST", path, p->token, body, &r);
    TD_ASSERT_STATUS(&r, 201);
    td_resp_free(&r);
}

static void test_move_input(void **state)
{
    (void)state;
    struct td_principal p;
    struct td_resp r;
    char before[512], after[512], upd1[64], upd2[64], sql[160];
    assert_int_equal(
        td_admin_create_tenant(&srv, "mv-input", "pool", NULL, "o@mv-input.test", "password-1", &p),
        201);
    post_project(&p, "one");

    move("mv-input", "{}", &r);
    TD_ASSERT_PROBLEM(&r, 400, "validation_failed");
    td_resp_free(&r);
    move("mv-input", "{\"server\":\"nowhere\"}", &r);
    TD_ASSERT_PROBLEM(&r, 400, "validation_failed");
    td_resp_free(&r);
    move("mv-input", "{\"isolation\":\"cluster\"}", &r);
    TD_ASSERT_PROBLEM(&r, 400, "validation_failed");
    td_resp_free(&r);
    move("mv-input", "{\"isolation\":\"schema\",\"color\":\"red\"}", &r);
    TD_ASSERT_PROBLEM(&r, 400, "validation_failed");
    td_resp_free(&r);
    move("mv-input", "{\"isolation\":", &r);
    TD_ASSERT_PROBLEM(&r, 400, "invalid_json");
    td_resp_free(&r);
    move("no-such-tenant", "{\"isolation\":\"schema\"}", &r);
    TD_ASSERT_PROBLEM(&r, 404, "tenant_not_found");
    td_resp_free(&r);
    assert_int_equal(storage_state(p.tenant_id), expected_state("pool"));

    /* where it already is: 200, nothing done (not even the catalog row touched) */
    PGconn *c = td_db(&srv, "postgres");
    snprintf(sql, sizeof(sql), "SELECT updated_at FROM tenantd.tenants WHERE id = '%s'",
             p.tenant_id);
    assert_true(td_sql_value(c, sql, 0, NULL, upd1, sizeof(upd1)));
    fingerprint(p.tenant_id, "pool", before, sizeof(before));
    move(p.tenant_id, "{\"isolation\":\"pool\",\"server\":\"main\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "isolation"), "pool");
    assert_string_equal(td_jstr(r.json, "id"), p.tenant_id);
    td_resp_free(&r);
    fingerprint(p.tenant_id, "pool", after, sizeof(after));
    assert_string_equal(before, after);
    assert_true(td_sql_value(c, sql, 0, NULL, upd2, sizeof(upd2)));
    assert_string_equal(upd1, upd2);
    PQfinish(c);
}

/* Every transition between the three isolations, each keeping every row. */
static void test_move_every_path(void **state)
{
    (void)state;
    static const char *const path[] = {"schema", "database", "pool", "database", "schema", "pool"};
    struct td_principal p;
    struct td_resp r;
    char before[512], after[512], body[96], tok[2048], url[128];
    const char *from = "pool";
    assert_int_equal(
        td_admin_create_tenant(&srv, "mv-path", "pool", "pro", "o@mv-path.test", "password-1", &p),
        201);
    snprintf(url, sizeof(url), "/t/%s/users", p.slug);
    td_call(&srv, "POST", url, p.token,
            "{\"email\":\"m@mv-path.test\",\"password\":\"password-2\",\"name\":\"M\","
            "\"role\":\"member\"}",
            &r);
    TD_ASSERT_STATUS(&r, 201);
    td_resp_free(&r);
    post_project(&p, "alpha");
    post_project(&p, "beta");

    for (size_t i = 0; i < sizeof(path) / sizeof(path[0]); i++) {
        char name[32];
        fingerprint(p.tenant_id, from, before, sizeof(before));
        snprintf(body, sizeof(body), "{\"isolation\":\"%s\"}", path[i]);
        move(p.slug, body, &r);
        TD_ASSERT_STATUS(&r, 200);
        assert_string_equal(td_jstr(r.json, "isolation"), path[i]);
        assert_string_equal(td_jstr(r.json, "id"), p.tenant_id);
        assert_string_equal(td_jstr(r.json, "server"), "main");
        td_resp_free(&r);
        /* every row, every column, in the new place; nothing left in the old one */
        fingerprint(p.tenant_id, path[i], after, sizeof(after));
        assert_string_equal(before, after);
        assert_int_equal(storage_state(p.tenant_id), expected_state(path[i]));

        /* the same API: old token, old passwords, reads and writes */
        snprintf(url, sizeof(url), "/admin/tenants/%s", p.slug);
        td_admin(&srv, "GET", url, NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        assert_string_equal(td_jstr(r.json, "isolation"), path[i]);
        td_resp_free(&r);
        snprintf(url, sizeof(url), "/t/%s/projects?limit=100", p.slug);
        td_call(&srv, "GET", url, p.token, NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        assert_int_equal(json_array_size(json_object_get(r.json, "data")), 2 + i);
        td_resp_free(&r);
        assert_int_equal(td_login(&srv, p.slug, "m@mv-path.test", "password-2", tok, sizeof(tok)),
                         200);
        snprintf(name, sizeof(name), "after-%zu", i);
        post_project(&p, name);
        from = path[i];
    }
}

/* What an interrupted move leaves (storage under the tenant's names where it does not
 * live) does not stop the next move: it is cleared, the tenant's rows are not. */
static void test_move_over_leftovers(void **state)
{
    (void)state;
    struct td_principal p;
    struct td_resp r;
    char ident[40], sql[512], before[512], after[512];
    assert_int_equal(
        td_admin_create_tenant(&srv, "mv-left", "pool", "pro", "o@mv-left.test", "password-1", &p),
        201);
    post_project(&p, "survivor");
    td_storage_name(p.tenant_id, ident, sizeof(ident));
    PGconn *c = td_db(&srv, "postgres");
    assert_non_null(c);
    snprintf(sql, sizeof(sql),
             "CREATE ROLE %s NOLOGIN; CREATE SCHEMA %s; CREATE TABLE %s.users (junk int); "
             "CREATE DATABASE td_%s",
             ident, ident, ident, ident + 2);
    for (char *stmt = strtok(sql, ";"); stmt; stmt = strtok(NULL, ";")) {
        PGresult *res = PQexec(c, stmt);
        assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
        PQclear(res);
    }
    PQfinish(c);
    fingerprint(p.tenant_id, "pool", before, sizeof(before));
    move(p.slug, "{\"isolation\":\"schema\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    fingerprint(p.tenant_id, "schema", after, sizeof(after));
    assert_string_equal(before, after);
    move(p.slug, "{\"isolation\":\"database\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    fingerprint(p.tenant_id, "database", after, sizeof(after));
    assert_string_equal(before, after);
    assert_int_equal(storage_state(p.tenant_id), expected_state("database"));
}

/* A transaction holding the tenant's tables longer than the move's lock_timeout (5 s):
 * 503, nothing moved, the new storage made for it removed again. */
static void test_move_busy_tables(void **state)
{
    (void)state;
    struct td_principal p;
    struct td_resp r;
    char ident[40], sql[160], before[512], after[512];
    assert_int_equal(td_admin_create_tenant(&srv, "mv-busy-tables", "schema", "pro",
                                            "o@mv-busy-tables.test", "password-1", &p),
                     201);
    post_project(&p, "stays");
    fingerprint(p.tenant_id, "schema", before, sizeof(before));
    td_storage_name(p.tenant_id, ident, sizeof(ident));
    PGconn *c = td_db(&srv, "postgres");
    assert_non_null(c);
    snprintf(sql, sizeof(sql), "BEGIN; LOCK TABLE %s.projects IN ACCESS SHARE MODE", ident);
    PGresult *res = PQexec(c, sql);
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    move(p.slug, "{\"isolation\":\"database\"}", &r);
    TD_ASSERT_PROBLEM(&r, 503, "unavailable");
    assert_true(r.retry_after[0] != '\0');
    td_resp_free(&r);
    PQclear(PQexec(c, "ROLLBACK"));
    PQfinish(c);
    assert_int_equal(storage_state(p.tenant_id), expected_state("schema"));
    fingerprint(p.tenant_id, "schema", after, sizeof(after));
    assert_string_equal(before, after);
    move(p.slug, "{\"isolation\":\"database\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    fingerprint(p.tenant_id, "database", after, sizeof(after));
    assert_string_equal(before, after);
}

/* ---- writes while the tenant moves ------------------------------------------ */

#define WRITERS 3
#define WRITES 120

struct writer {
    const struct td_principal *p;
    char tag;
    int done;
    long status[WRITES];
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    char path[128], body[128];
    snprintf(path, sizeof(path), "/t/%s/projects", w->p->slug);
    for (int i = 0; i < WRITES; i++) {
        struct td_resp r;
        snprintf(body, sizeof(body), "{\"name\":\"%c-%d\"}", w->tag, i);
        w->status[i] = td_call(&srv, "POST", path, w->p->token, body, &r);
        td_resp_free(&r);
    }
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static bool writers_done(struct writer *w)
{
    for (int i = 0; i < WRITERS; i++)
        if (!__atomic_load_n(&w[i].done, __ATOMIC_ACQUIRE))
            return false;
    return true;
}

/* Names of the tenant's projects in iso, as one "|name|name|...|" string. */
static char *project_names(const char *tenant_id, const char *iso)
{
    char schema[40], sql[256];
    PGconn *c = storage_conn(tenant_id, iso, schema, sizeof(schema));
    assert_non_null(c);
    snprintf(sql, sizeof(sql),
             "SELECT '|' || coalesce(string_agg(name, '|' ORDER BY name), '') || '|' FROM "
             "%s.projects WHERE tenant_id = '%s'",
             schema, tenant_id);
    PGresult *res = td_sql(c, sql, 0, NULL);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    char *out = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    PQfinish(c);
    return out;
}

static void test_move_during_writes(void **state)
{
    (void)state;
    static const char *const cycle[] = {"schema", "database", "pool"};
    struct td_principal p;
    struct writer w[WRITERS];
    pthread_t th[WRITERS];
    struct td_resp r;
    int moves = 0, created = 0, refused = 0;
    assert_int_equal(td_admin_create_tenant(&srv, "mv-busy", "pool", "enterprise", "o@mv-busy.test",
                                            "password-1", &p),
                     201);
    for (int i = 0; i < WRITERS; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].p = &p;
        w[i].tag = (char)('a' + i);
        assert_int_equal(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
    }
    const char *iso = "pool";
    while (!writers_done(w) || moves < 3) {
        char body[64];
        iso = cycle[moves % 3];
        snprintf(body, sizeof(body), "{\"isolation\":\"%s\"}", iso);
        move(p.slug, body, &r);
        TD_ASSERT_STATUS(&r, 200);
        td_resp_free(&r);
        moves++;
    }
    for (int i = 0; i < WRITERS; i++)
        pthread_join(th[i], NULL);

    /* every acknowledged write is in the final storage; nothing else is */
    char *names = project_names(p.tenant_id, iso);
    for (int i = 0; i < WRITERS; i++)
        for (int j = 0; j < WRITES; j++) {
            char name[32];
            snprintf(name, sizeof(name), "|%c-%d|", w[i].tag, j);
            bool there = strstr(names, name) != NULL;
            if (w[i].status[j] == 201) {
                created++;
                if (!there)
                    fprintf(stderr, "  lost acknowledged write %s\n", name);
                assert_true(there);
            } else {
                refused++;
                /* a refused write is retryable, never a bug report, and never half-done */
                assert_int_equal(w[i].status[j], 503);
                assert_false(there);
            }
        }
    free(names);
    assert_int_equal(storage_state(p.tenant_id), expected_state(iso));
    fprintf(stderr, "  %d moves during %d writes: %d created, %d refused with 503\n", moves,
            WRITERS * WRITES, created, refused);
}

/* The closing note's figure: a tenant with 10,000 rows, moved through every isolation. */
static void test_move_10k_rows(void **state)
{
    (void)state;
    static const char *const path[] = {"schema", "database", "pool"};
    struct td_principal p;
    struct td_resp r;
    char before[512], after[512], sql[768], body[64];
    const char *from = "pool";
    assert_int_equal(td_admin_create_tenant(&srv, "mv-big", "pool", "enterprise", "o@mv-big.test",
                                            "password-1", &p),
                     201);
    PGconn *c = td_db(&srv, "postgres");
    assert_non_null(c);
    snprintf(sql, sizeof(sql),
             "INSERT INTO pool.projects (tenant_id, name, description) SELECT '%s', "
             "'bulk ' || g, repeat('x', 100) FROM generate_series(1, 5000) g; "
             "INSERT INTO pool.audit_logs (tenant_id, actor_id, action, entity_type, entity_id, "
             "new_values) SELECT '%s', '%s', 'create', 'project', gen_random_uuid(), "
             "jsonb_build_object('name', 'bulk ' || g) FROM generate_series(1, 4998) g",
             p.tenant_id, p.tenant_id, p.user_id);
    PGresult *res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        fprintf(stderr, "  %s\n", PQresultErrorMessage(res));
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    PQfinish(c);
    fingerprint(p.tenant_id, "pool", before, sizeof(before));
    assert_int_equal(strncmp(before, "1:", 2), 0);
    assert_non_null(strstr(before, " 5000:"));
    assert_non_null(strstr(before, " 4999:")); /* 4,998 + the owner's creation */
    for (int i = 0; i < 3; i++) {
        struct timespec t0, t1;
        snprintf(body, sizeof(body), "{\"isolation\":\"%s\"}", path[i]);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        move(p.slug, body, &r);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        TD_ASSERT_STATUS(&r, 200);
        td_resp_free(&r);
        fingerprint(p.tenant_id, path[i], after, sizeof(after));
        assert_string_equal(before, after);
        assert_int_equal(storage_state(p.tenant_id), expected_state(path[i]));
        fprintf(stderr, "  moved 10,000 rows %s -> %s in %.0f ms\n", from, path[i],
                (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
        from = path[i];
    }
}

/* ---- export / import ---------------------------------------------------------- */

static void export_of(const char *key, struct td_resp *r)
{
    char path[160];
    snprintf(path, sizeof(path), "/admin/tenants/%s/export", key);
    td_admin(&srv, "GET", path, NULL, r);
    TD_ASSERT_STATUS(r, 200);
    assert_non_null(strstr(r->content_type, "application/x-ndjson"));
}

/* The export's row lines (everything after the header line). */
static const char *rows_of(const struct td_resp *r)
{
    const char *nl = strchr(r->body, '\n');
    assert_non_null(nl);
    return nl + 1;
}

static long import(const char *query, const char *body, size_t len, struct td_resp *r)
{
    char path[256], auth[128];
    const char *h[] = {auth, "Content-Type: application/x-ndjson", NULL};
    snprintf(path, sizeof(path), "/admin/tenants/import%s", query);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", TD_TEST_ADMIN_TOKEN);
    return td_http_len(&srv, "POST", path, h, body, len, false, r);
}

static void make_exportable(const char *slug, const char *iso, struct td_principal *p)
{
    char email[96], url[160];
    struct td_resp r;
    snprintf(email, sizeof(email), "o@%s.test", slug);
    assert_int_equal(td_admin_create_tenant(&srv, slug, iso, "pro", email, "password-1", p), 201);
    post_project(p, "kept");
    post_project(p, "also \\\"quoted\\\" \\\\ and \\u00e9");
    snprintf(url, sizeof(url), "/admin/tenants/%s", slug);
    td_admin(&srv, "PATCH", url, "{\"subscription_expires_at\":\"2099-01-02T03:04:05Z\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
}

static void test_export_format(void **state)
{
    (void)state;
    struct td_principal p;
    struct td_resp r;
    int lines[3] = {0, 0, 0};
    make_exportable("ex-format", "schema", &p);
    export_of(p.slug, &r);
    char *copy = strdup(r.body), *save = NULL;
    int n = 0;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save), n++) {
        json_t *v = json_loads(line, 0, NULL);
        assert_non_null(v);
        if (n == 0) {
            assert_string_equal(td_jstr(v, "format"), "tenantd-export");
            assert_int_equal(json_integer_value(json_object_get(v, "version")), 1);
            json_t *t = json_object_get(v, "tenant");
            assert_string_equal(td_jstr(t, "id"), p.tenant_id);
            assert_string_equal(td_jstr(t, "slug"), "ex-format");
            assert_string_equal(td_jstr(t, "plan"), "pro");
            assert_string_equal(td_jstr(t, "isolation"), "schema");
        } else {
            const char *table = td_jstr(v, "table");
            json_t *row = json_object_get(v, "row");
            assert_non_null(table);
            assert_true(json_is_object(row));
            assert_true(td_is_uuid(td_jstr(row, "id")));
            assert_null(json_object_get(row, "tenant_id"));
            if (strcmp(table, "users") == 0) {
                lines[0]++;
                assert_non_null(strstr(td_jstr(row, "password_hash"), "$argon2id$"));
            } else if (strcmp(table, "projects") == 0) {
                lines[1]++;
            } else {
                assert_string_equal(table, "audit_logs");
                lines[2]++;
            }
        }
        json_decref(v);
    }
    free(copy);
    td_resp_free(&r);
    assert_int_equal(lines[0], 1);
    assert_int_equal(lines[1], 2);
    assert_int_equal(lines[2], 3); /* owner, two projects */

    td_admin(&srv, "GET", "/admin/tenants/no-such-tenant/export", NULL, &r);
    TD_ASSERT_PROBLEM(&r, 404, "tenant_not_found");
    td_resp_free(&r);
}

/* Export -> import (another isolation) -> export gives the same rows; old passwords work. */
static void round_trip(const char *iso, const char *into)
{
    struct td_principal p;
    struct td_resp e1, e2, r;
    char slug[32], copy[40], query[96], tok[2048], email[96], path[128];
    snprintf(slug, sizeof(slug), "rt-%s", iso);
    snprintf(copy, sizeof(copy), "rt-%s-copy", iso);
    make_exportable(slug, iso, &p);
    export_of(slug, &e1);

    snprintf(query, sizeof(query), "?slug=%s&isolation=%s", copy, into);
    import(query, e1.body, e1.body_len, &r);
    TD_ASSERT_STATUS(&r, 201);
    assert_true(td_is_uuid(td_jstr(r.json, "id")));
    assert_string_not_equal(td_jstr(r.json, "id"), p.tenant_id);
    assert_string_equal(td_jstr(r.json, "slug"), copy);
    assert_string_equal(td_jstr(r.json, "isolation"), into);
    assert_string_equal(td_jstr(r.json, "plan"), "pro");
    assert_string_equal(td_jstr(r.json, "status"), "active");
    assert_int_equal(td_parse_time(td_jstr(r.json, "subscription_expires_at")),
                     td_parse_time("2099-01-02T03:04:05Z"));
    td_resp_free(&r);

    export_of(copy, &e2);
    assert_string_equal(rows_of(&e1), rows_of(&e2));
    td_resp_free(&e2);
    td_resp_free(&e1);

    snprintf(email, sizeof(email), "o@%s.test", slug);
    assert_int_equal(td_login(&srv, copy, email, "password-1", tok, sizeof(tok)), 200);
    snprintf(path, sizeof(path), "/t/%s/me", copy);
    td_call(&srv, "GET", path, tok, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "id"), p.user_id);
    td_resp_free(&r);
}

static void test_round_trip_pool(void **state)
{
    (void)state;
    round_trip("pool", "schema");
}

static void test_round_trip_schema(void **state)
{
    (void)state;
    round_trip("schema", "database");
}

static void test_round_trip_database(void **state)
{
    (void)state;
    round_trip("database", "pool");
}

static void assert_no_tenant(const char *slug)
{
    char path[128];
    struct td_resp r;
    snprintf(path, sizeof(path), "/admin/tenants/%s", slug);
    td_admin(&srv, "GET", path, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 404, "tenant_not_found");
    td_resp_free(&r);
}

/* 1 while pool.users is keyed by id alone (before the (tenant_id, id) keys of SPEC §7). */
static int pool_keyed_by_id(void)
{
    PGconn *c = td_db(&srv, "postgres");
    char v[32] = "1";
    (void)td_sql_value(c,
                       "SELECT count(*) FROM pg_index WHERE indrelid = 'pool.users'::regclass "
                       "AND indisprimary AND indnatts = 1",
                       0, NULL, v, sizeof(v));
    PQfinish(c);
    return atoi(v) != 0;
}

static void test_import_refusals(void **state)
{
    (void)state;
    struct td_principal p;
    struct td_resp e, r;
    make_exportable("im-refuse", "pool", &p);
    export_of(p.slug, &e);

    import("", e.body, e.body_len, &r); /* the exported slug is taken */
    TD_ASSERT_PROBLEM(&r, 409, "conflict");
    td_resp_free(&r);
    /* into the same shared pool tables while the original is there: with the tables keyed
     * by (tenant_id, id) (SPEC §7) the copy sits beside it; keyed by id alone, its row ids
     * exist and nothing is made */
    import("?slug=im-refuse-2&isolation=pool", e.body, e.body_len, &r);
    if (pool_keyed_by_id()) {
        TD_ASSERT_PROBLEM(&r, 409, "conflict");
        assert_no_tenant("im-refuse-2");
    } else {
        TD_ASSERT_STATUS(&r, 201);
    }
    td_resp_free(&r);
    import("?slug=Not_A_Slug", e.body, e.body_len, &r);
    TD_ASSERT_PROBLEM(&r, 400, "bad_request");
    td_resp_free(&r);
    import("?slug=im-refuse-3&server=nowhere", e.body, e.body_len, &r);
    TD_ASSERT_PROBLEM(&r, 400, "bad_request");
    td_resp_free(&r);

    static const struct {
        const char *body, *code;
    } bad[] = {
        {"not json at all\n", "invalid_json"},
        {"", "validation_failed"},
        {"[1,2]\n", "validation_failed"},
        {"{\"format\":\"other\",\"version\":1,\"tenant\":{}}\n", "validation_failed"},
        {"{\"format\":\"tenantd-export\",\"version\":2,\"tenant\":{\"slug\":\"im-v2\","
         "\"name\":\"x\"}}\n",
         "validation_failed"},
        {"{\"format\":\"tenantd-export\",\"version\":1,\"tenant\":{\"slug\":\"im-bad\","
         "\"name\":\"x\"}}\n{\"table\":\"secrets\",\"row\":{}}\n",
         "validation_failed"},
        {"{\"format\":\"tenantd-export\",\"version\":1,\"tenant\":{\"slug\":\"im-bad\","
         "\"name\":\"x\"}}\n{\"table\":\"projects\",\"row\":{\"id\":\"nope\",\"name\":\"p\"}}\n",
         "validation_failed"},
        {"{\"format\":\"tenantd-export\",\"version\":1,\"tenant\":{\"slug\":\"im-bad\","
         "\"name\":\"x\"}}\n{\"table\":\"projects\",\"row\":{\"id\":",
         "invalid_json"},
        {"{\"format\":\"tenantd-export\",\"version\":1,\"tenant\":{\"slug\":\"im-bad\","
         "\"name\":\"\"}}\n",
         "validation_failed"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        import("", bad[i].body, strlen(bad[i].body), &r);
        if (!td_check_problem(&r, 400, bad[i].code))
            fprintf(stderr, "  body %zu: %s\n", i, bad[i].body);
        TD_ASSERT_PROBLEM(&r, 400, bad[i].code);
        td_resp_free(&r);
    }
    assert_no_tenant("im-bad");

    /* a backup restored after the tenant is gone: same slug, same ids, old passwords */
    char path[192], tok[2048];
    snprintf(path, sizeof(path), "/admin/tenants/%s?confirm=%s", p.slug, p.slug);
    td_admin(&srv, "DELETE", path, NULL, &r);
    TD_ASSERT_STATUS(&r, 204);
    td_resp_free(&r);
    import("", e.body, e.body_len, &r);
    TD_ASSERT_STATUS(&r, 201);
    assert_string_equal(td_jstr(r.json, "slug"), "im-refuse");
    assert_string_equal(td_jstr(r.json, "isolation"), "pool");
    td_resp_free(&r);
    assert_int_equal(
        td_login(&srv, "im-refuse", "o@im-refuse.test", "password-1", tok, sizeof(tok)), 200);
    td_resp_free(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_move_input),          cmocka_unit_test(test_move_every_path),
        cmocka_unit_test(test_move_over_leftovers), cmocka_unit_test(test_move_busy_tables),
        cmocka_unit_test(test_move_during_writes),  cmocka_unit_test(test_move_10k_rows),
        cmocka_unit_test(test_export_format),       cmocka_unit_test(test_round_trip_pool),
        cmocka_unit_test(test_round_trip_schema),   cmocka_unit_test(test_round_trip_database),
        cmocka_unit_test(test_import_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
