/*
 * test_isolation.c - one tenant can never reach another's rows (SPEC §5), per isolation:
 * through the API (404, never 403, for foreign ids; 403 tenant_mismatch for foreign
 * tenants) and in the database itself, as the runtime role tenantd_app with a tenant's
 * per-transaction context. Also concurrent mixed-tenant traffic through the server's pool.
 */
#include "harness.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NPROJ 3

struct side {
    struct td_principal p;
    char storage[40]; /* t_<hex> */
    char proj[NPROJ][64];
};

static struct td_server srv;
static struct side sides[3][2]; /* [isolation][A, B] */
static const char *const isolations[3] = {"pool", "schema", "database"};

TD_SUITE_SERVER(srv)

static void make_side(struct side *s, const char *isolation, char which)
{
    char slug[64], email[128], coll[128];
    struct td_resp r;

    snprintf(slug, sizeof(slug), "iso-%c-%s", which, isolation);
    snprintf(email, sizeof(email), "owner@%s.test", slug);
    assert_int_equal(
        td_admin_create_tenant(&srv, slug, isolation, "enterprise", email, "owner-password", &s->p),
        201);
    assert_true(s->p.token[0] != '\0');
    td_storage_name(s->p.tenant_id, s->storage, sizeof(s->storage));
    snprintf(coll, sizeof(coll), "/t/%s/projects", slug);
    for (int i = 0; i < NPROJ; i++) {
        char body[128];
        snprintf(body, sizeof(body), "{\"name\":\"%c-secret-%d\",\"description\":\"of %s\"}", which,
                 i, slug);
        td_call(&srv, "POST", coll, s->p.token, body, &r);
        TD_ASSERT_STATUS(&r, 201);
        snprintf(s->proj[i], sizeof(s->proj[i]), "%s", td_jstr(r.json, "id"));
        td_resp_free(&r);
    }
}

/* Superuser view of one project row of a tenant: "name|description|status" or "". */
static void row_of(const struct side *s, const char *isolation, const char *id, char *out,
                   size_t size)
{
    char sql[256], db[64];
    const char *params[1] = {id};
    PGconn *c;
    PGresult *res;

    if (strcmp(isolation, "database") == 0) {
        snprintf(db, sizeof(db), "td_%.32s", s->storage + 2);
        c = td_db_in(&srv, db, "postgres");
    } else {
        c = td_db(&srv, "postgres");
    }
    assert_non_null(c);
    snprintf(sql, sizeof(sql),
             "SELECT name || '|' || coalesce(description, '') || '|' || status FROM %s.projects "
             "WHERE id = $1 AND tenant_id = '%s'",
             strcmp(isolation, "pool") == 0 ? "pool" : s->storage, s->p.tenant_id);
    res = td_sql(c, sql, 1, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fprintf(stderr, "  %s: %s\n", sql, PQresultErrorMessage(res));
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    snprintf(out, size, "%s", PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    PQfinish(c);
}

static bool list_has(const json_t *data, const char *id)
{
    size_t i;
    json_t *p;
    json_array_foreach(data, i, p)
    {
        if (td_jstr(p, "id") && strcmp(td_jstr(p, "id"), id) == 0)
            return true;
    }
    return false;
}

static void api_isolation(int k)
{
    const char *iso = isolations[k];
    struct side *a = &sides[k][0], *b = &sides[k][1];
    struct td_resp r;
    char path[256], before[512], after[512], h[160];

    for (int i = 0; i < NPROJ; i++) {
        row_of(b, iso, b->proj[i], before, sizeof(before));
        assert_true(before[0] != '\0');

        /* A's token, A's tenant, B's project id: not found, whatever the verb. */
        snprintf(path, sizeof(path), "/t/%s/projects/%s", a->p.slug, b->proj[i]);
        td_call(&srv, "GET", path, a->p.token, NULL, &r);
        TD_ASSERT_PROBLEM(&r, 404, "not_found");
        assert_null(strstr(r.body, "secret"));
        td_resp_free(&r);
        td_call(&srv, "PATCH", path, a->p.token, "{\"name\":\"pwned\",\"status\":\"archived\"}",
                &r);
        TD_ASSERT_PROBLEM(&r, 404, "not_found");
        td_resp_free(&r);
        td_call(&srv, "DELETE", path, a->p.token, NULL, &r);
        TD_ASSERT_PROBLEM(&r, 404, "not_found");
        td_resp_free(&r);
        snprintf(path, sizeof(path), "/projects/%s", b->proj[i]);
        td_call(&srv, "GET", path, a->p.token, NULL, &r);
        TD_ASSERT_PROBLEM(&r, 404, "not_found");
        td_resp_free(&r);

        row_of(b, iso, b->proj[i], after, sizeof(after));
        assert_string_equal(before, after);
        /* And B still sees it. */
        snprintf(path, sizeof(path), "/t/%s/projects/%s", b->p.slug, b->proj[i]);
        td_call(&srv, "GET", path, b->p.token, NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        td_resp_free(&r);
    }

    /* A's token aimed at B's tenant: mismatch, by header (slug and id) and by path. */
    snprintf(h, sizeof(h), "X-Tenant-ID: %s", b->p.slug);
    {
        char auth[2200];
        const char *hs[] = {auth, h, NULL};
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", a->p.token);
        td_http(&srv, "GET", "/projects", hs, NULL, &r);
        TD_ASSERT_PROBLEM(&r, 403, "tenant_mismatch");
        td_resp_free(&r);
        td_http(&srv, "POST", "/projects", hs, "{\"name\":\"planted\"}", &r);
        TD_ASSERT_PROBLEM(&r, 403, "tenant_mismatch");
        td_resp_free(&r);
        snprintf(h, sizeof(h), "X-Tenant-ID: %s", b->p.tenant_id);
        td_http(&srv, "GET", "/projects", hs, NULL, &r);
        TD_ASSERT_PROBLEM(&r, 403, "tenant_mismatch");
        td_resp_free(&r);
    }
    snprintf(path, sizeof(path), "/t/%s/projects", b->p.slug);
    td_call(&srv, "GET", path, a->p.token, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 403, "tenant_mismatch");
    td_resp_free(&r);
    snprintf(path, sizeof(path), "/t/%s/projects/%s", b->p.slug, b->proj[0]);
    td_call(&srv, "DELETE", path, a->p.token, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 403, "tenant_mismatch");
    td_resp_free(&r);
    snprintf(path, sizeof(path), "/t/%s/users", b->p.slug);
    td_call(&srv, "GET", path, a->p.token, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 403, "tenant_mismatch");
    td_resp_free(&r);

    /* Lists: each sees exactly its own. */
    for (int w = 0; w < 2; w++) {
        struct side *me = &sides[k][w], *them = &sides[k][1 - w];
        json_t *data;
        snprintf(path, sizeof(path), "/t/%s/projects?limit=100", me->p.slug);
        td_call(&srv, "GET", path, me->p.token, NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        data = json_object_get(r.json, "data");
        assert_int_equal(json_array_size(data), NPROJ);
        for (int i = 0; i < NPROJ; i++) {
            assert_true(list_has(data, me->proj[i]));
            assert_false(list_has(data, them->proj[i]));
        }
        td_resp_free(&r);
        /* Users too. */
        snprintf(path, sizeof(path), "/t/%s/users?limit=100", me->p.slug);
        td_call(&srv, "GET", path, me->p.token, NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        assert_int_equal(json_array_size(json_object_get(r.json, "data")), 1);
        assert_null(strstr(r.body, them->p.email));
        td_resp_free(&r);
    }
}

/* Run sql; returns the SQLSTATE on error ("" on success) and the row count / first value. */
static void exec_sql(PGconn *c, const char *sql, char *state, size_t ssize, char *val, size_t vsize)
{
    PGresult *res = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        snprintf(state, ssize, "%s", "");
        if (val)
            snprintf(val, vsize, "%s",
                     st == PGRES_TUPLES_OK && PQntuples(res) > 0 ? PQgetvalue(res, 0, 0)
                                                                 : PQcmdTuples(res));
    } else {
        const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        snprintf(state, ssize, "%s", s ? s : "?????");
        if (val)
            snprintf(val, vsize, "%s", "");
    }
    PQclear(res);
}

/* Begin a transaction with tenant s's context, as the server does. */
static void begin_as(PGconn *c, const struct side *s, const char *isolation)
{
    char sql[512], state[8];
    exec_sql(c, "BEGIN", state, sizeof(state), NULL, 0);
    assert_string_equal(state, "");
    snprintf(sql, sizeof(sql),
             "SELECT set_config('app.tenant_id', '%s', true), set_config('search_path', '%s', "
             "true)",
             s->p.tenant_id, strcmp(isolation, "pool") == 0 ? "pool" : s->storage);
    exec_sql(c, sql, state, sizeof(state), NULL, 0);
    assert_string_equal(state, "");
    if (strcmp(isolation, "pool") != 0) {
        snprintf(sql, sizeof(sql), "SELECT set_config('role', '%s', true)", s->storage);
        exec_sql(c, sql, state, sizeof(state), NULL, 0);
        if (state[0])
            fprintf(stderr, "  tenantd_app cannot assume %s: %s\n", s->storage, state);
        assert_string_equal(state, "");
    }
}

static void sql_expect(PGconn *c, const char *sql, const char *want_state, const char *want_val)
{
    char state[8], val[256];
    exec_sql(c, sql, state, sizeof(state), val, sizeof(val));
    if (strcmp(state, want_state) != 0 || (want_val && strcmp(val, want_val) != 0))
        fprintf(stderr, "  sql: %s\n  sqlstate \"%s\" (want \"%s\"), value \"%s\" (want \"%s\")\n",
                sql, state, want_state, val, want_val ? want_val : "any");
    assert_string_equal(state, want_state);
    if (want_val)
        assert_string_equal(val, want_val);
}

static void rollback(PGconn *c)
{
    PGresult *res = PQexec(c, "ROLLBACK");
    PQclear(res);
}

static void db_isolation(int k)
{
    const char *iso = isolations[k];
    struct side *a = &sides[k][0], *b = &sides[k][1];
    char sql[512], db[64], nproj[8];
    PGconn *c;

    snprintf(nproj, sizeof(nproj), "%d", NPROJ);
    if (strcmp(iso, "database") == 0) {
        snprintf(db, sizeof(db), "td_%.32s", b->storage + 2);
        c = td_db_in(&srv, db, "tenantd_app"); /* in B's database */
    } else {
        c = td_db(&srv, "tenantd_app");
    }
    assert_non_null(c);

    if (strcmp(iso, "pool") == 0) {
        begin_as(c, a, iso);
        sql_expect(c, "SELECT count(*) FROM pool.projects", "", nproj);
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM pool.projects WHERE tenant_id = '%s'",
                 b->p.tenant_id);
        sql_expect(c, sql, "", "0");
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM pool.users WHERE tenant_id = '%s'",
                 b->p.tenant_id);
        sql_expect(c, sql, "", "0");
        snprintf(sql, sizeof(sql), "UPDATE pool.projects SET name = 'pwned' WHERE id = '%s'",
                 b->proj[0]);
        sql_expect(c, sql, "", "0");
        snprintf(sql, sizeof(sql), "DELETE FROM pool.projects WHERE tenant_id = '%s'",
                 b->p.tenant_id);
        sql_expect(c, sql, "", "0");
        snprintf(sql, sizeof(sql),
                 "INSERT INTO pool.projects (tenant_id, name) VALUES ('%s', 'planted')",
                 b->p.tenant_id);
        sql_expect(c, sql, "42501", NULL);
        rollback(c);
        /* Moving one's own row to another tenant is refused too. */
        begin_as(c, a, iso);
        snprintf(sql, sizeof(sql), "UPDATE pool.projects SET tenant_id = '%s' WHERE id = '%s'",
                 b->p.tenant_id, a->proj[0]);
        sql_expect(c, sql, "42501", NULL);
        rollback(c);

        /* No context at all: nothing visible, nothing writable. */
        sql_expect(c, "SELECT count(*) FROM pool.projects", "", "0");
        sql_expect(c, "SELECT count(*) FROM pool.users", "", "0");
        sql_expect(c, "SELECT count(*) FROM pool.audit_logs", "", "0");
        snprintf(sql, sizeof(sql),
                 "INSERT INTO pool.projects (tenant_id, name) VALUES ('%s', 'planted')",
                 a->p.tenant_id);
        sql_expect(c, sql, "42501", NULL);
        /* Empty context is no context. */
        sql_expect(c, "BEGIN", "", NULL);
        sql_expect(c, "SELECT set_config('app.tenant_id', '', true)", "", NULL);
        sql_expect(c, "SELECT count(*) FROM pool.projects", "", "0");
        rollback(c);
    } else {
        begin_as(c, a, iso);
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.projects", b->storage);
        sql_expect(c, sql, "42501", NULL);
        rollback(c);
        begin_as(c, a, iso);
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.users", b->storage);
        sql_expect(c, sql, "42501", NULL);
        rollback(c);
        begin_as(c, a, iso);
        snprintf(sql, sizeof(sql), "UPDATE %s.projects SET name = 'pwned'", b->storage);
        sql_expect(c, sql, "42501", NULL);
        rollback(c);
        /* A's role with B's tenant id set is still refused B's schema. */
        begin_as(c, a, iso);
        snprintf(sql, sizeof(sql),
                 "SELECT set_config('app.tenant_id', '%s', true), set_config('search_path', "
                 "'%s', true)",
                 b->p.tenant_id, b->storage);
        sql_expect(c, sql, "", NULL);
        /* Unqualified lookup skips a schema without USAGE: "does not exist" is a refusal too. */
        {
            char st[8];
            exec_sql(c, "SELECT count(*) FROM projects", st, sizeof(st), NULL, 0);
            if (strcmp(st, "42501") != 0 && strcmp(st, "42P01") != 0)
                fprintf(stderr, "  %s: A's role read B's projects (sqlstate \"%s\")\n", iso, st);
            assert_true(strcmp(st, "42501") == 0 || strcmp(st, "42P01") == 0);
        }
        rollback(c);
        /* The runtime role itself (NOINHERIT) has no rights on tenant schemas. */
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.projects", b->storage);
        sql_expect(c, sql, "42501", NULL);
        if (strcmp(iso, "schema") == 0) {
            /* The tenant role cannot read the catalog or the pool. */
            begin_as(c, a, iso);
            sql_expect(c, "SELECT count(*) FROM tenantd.tenants", "42501", NULL);
            rollback(c);
            begin_as(c, a, iso);
            sql_expect(c, "SELECT count(*) FROM pool.projects", "42501", NULL);
            rollback(c);
        }
        /* B's role in its own schema sees its rows (the control for the checks above). */
        begin_as(c, b, iso);
        sql_expect(c, "SELECT count(*) FROM projects", "", nproj);
        rollback(c);
    }
    PQfinish(c);
}

static void test_isolation(int k)
{
    make_side(&sides[k][0], isolations[k], 'a');
    make_side(&sides[k][1], isolations[k], 'b');
    api_isolation(k);
    db_isolation(k);
}

static void test_pool(void **state)
{
    (void)state;
    test_isolation(0);
}

static void test_schema(void **state)
{
    (void)state;
    test_isolation(1);
}

static void test_database(void **state)
{
    (void)state;
    test_isolation(2);
}

static void test_database_tenant_storage(void **state)
{
    struct side *b = &sides[2][1];
    char db[64], val[64];
    PGconn *c = td_db(&srv, "postgres");
    const char *params[1] = {db};
    (void)state;

    assert_non_null(c);
    snprintf(db, sizeof(db), "td_%.32s", b->storage + 2);
    assert_true(td_sql_value(c, "SELECT count(*) FROM pg_database WHERE datname = $1", 1, params,
                             val, sizeof(val)));
    assert_string_equal(val, "1");
    /* A database tenant's rows are not in the pool. */
    params[0] = b->p.tenant_id;
    assert_true(td_sql_value(c, "SELECT count(*) FROM pool.projects WHERE tenant_id = $1", 1,
                             params, val, sizeof(val)));
    assert_string_equal(val, "0");
    PQfinish(c);
}

static void test_runtime_role(void **state)
{
    PGconn *c = td_db(&srv, "postgres");
    char val[256];
    (void)state;

    assert_non_null(c);
    assert_true(td_sql_value(c,
                             "SELECT rolsuper::text || rolbypassrls::text || rolinherit::text || "
                             "rolcreaterole::text || rolcreatedb::text FROM pg_roles "
                             "WHERE rolname = 'tenantd_app'",
                             0, NULL, val, sizeof(val)));
    assert_string_equal(val, "falsefalsefalsefalsefalse");
    /* No tenant role is privileged either. */
    assert_true(td_sql_value(c,
                             "SELECT count(*) FROM pg_roles WHERE rolname ~ '^t_[0-9a-f]{32}$' "
                             "AND (rolsuper OR rolbypassrls OR rolcreaterole OR rolcreatedb)",
                             0, NULL, val, sizeof(val)));
    assert_string_equal(val, "0");
    /* Pool tables force RLS and are not owned by the runtime role. */
    assert_true(td_sql_value(c,
                             "SELECT count(*) FROM pg_class k JOIN pg_namespace n ON "
                             "n.oid = k.relnamespace WHERE n.nspname = 'pool' AND k.relname IN "
                             "('users', 'projects', 'audit_logs') AND k.relrowsecurity AND "
                             "k.relforcerowsecurity AND pg_get_userbyid(k.relowner) <> "
                             "'tenantd_app'",
                             0, NULL, val, sizeof(val)));
    assert_string_equal(val, "3");
    /* No session default that would carry a tenant. */
    assert_true(td_sql_value(c,
                             "SELECT count(*) FROM pg_db_role_setting s JOIN pg_roles r ON "
                             "r.oid = s.setrole WHERE r.rolname = 'tenantd_app' AND "
                             "array_to_string(s.setconfig, ',') ~ '(app\\.tenant_id|role|t_)'",
                             0, NULL, val, sizeof(val)));
    assert_string_equal(val, "0");
    PQfinish(c);
}

struct worker {
    int id;
    int failures;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (int n = 0; n < 30; n++) {
        int k = (w->id + n) % 3, s = (w->id + n / 3) % 2;
        struct side *me = &sides[k][s], *them = &sides[k][1 - s];
        struct td_resp r;
        char path[128];
        snprintf(path, sizeof(path), "/t/%s/projects?limit=100", me->p.slug);
        td_call(&srv, "GET", path, me->p.token, NULL, &r);
        if (r.status != 200 || json_array_size(json_object_get(r.json, "data")) != NPROJ) {
            fprintf(stderr, "  worker %d: %s -> %ld %.200s\n", w->id, path, r.status, r.body);
            w->failures++;
        } else {
            json_t *data = json_object_get(r.json, "data");
            for (int i = 0; i < NPROJ; i++)
                if (!list_has(data, me->proj[i]) || list_has(data, them->proj[i]))
                    w->failures++;
        }
        td_resp_free(&r);
    }
    return NULL;
}

static void test_concurrent_mixed_tenants(void **state)
{
    pthread_t th[6];
    struct worker w[6];
    PGconn *c;
    char val[512];
    (void)state;

    for (int i = 0; i < 6; i++) {
        w[i].id = i;
        w[i].failures = 0;
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }

    /* Afterwards no server connection is left inside a transaction ... */
    c = td_db(&srv, "postgres");
    assert_non_null(c);
    for (int tries = 0;; tries++) {
        assert_true(td_sql_value(c,
                                 "SELECT count(*) FROM pg_stat_activity WHERE usename = "
                                 "'tenantd_app' AND state LIKE 'idle in transaction%'",
                                 0, NULL, val, sizeof(val)));
        if (strcmp(val, "0") == 0 || tries == 10)
            break;
        usleep(200000);
    }
    assert_string_equal(val, "0");
    PQfinish(c);

    /* ... and a fresh session of the runtime role carries nothing tenant-specific. */
    c = td_db(&srv, "tenantd_app");
    assert_non_null(c);
    assert_true(td_sql_value(c, "SHOW search_path", 0, NULL, val, sizeof(val)));
    assert_null(strstr(val, "t_"));
    assert_true(td_sql_value(c, "SELECT coalesce(current_setting('app.tenant_id', true), '')", 0,
                             NULL, val, sizeof(val)));
    assert_string_equal(val, "");
    assert_true(td_sql_value(c, "SELECT current_user", 0, NULL, val, sizeof(val)));
    assert_string_equal(val, "tenantd_app");
    PQfinish(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool),         cmocka_unit_test(test_schema),
        cmocka_unit_test(test_database),     cmocka_unit_test(test_database_tenant_storage),
        cmocka_unit_test(test_runtime_role), cmocka_unit_test(test_concurrent_mixed_tenants),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
