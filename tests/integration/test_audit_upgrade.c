/*
 * test_audit_upgrade.c - tenant migration 0003 (SPEC §3, §6): audit values written while
 * they were jsonb become json holding the API's compact text. Tenants of a pool and of a
 * schema get audit entries from the users routes plus one written the old way (a timestamp
 * in PostgreSQL's own text, a nested value), then `tenantd migrate` applies the file; the
 * stored text must be compact, its timestamps in the one format, NULLs still NULL, and the
 * list must relay the same text.
 * The server starts on a copy of migrations/ without the file (TENANTD_MIGRATIONS_DIR).
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AUDIT_FILE "0003_audit_json.sql"

static struct td_server srv;
static char migdir[64];
static char migenv[128];
static struct td_principal ts, tp; /* schema, pool */

static int setup(void **state)
{
    (void)state;
    char path[160];
    if (td_migrations_copy("td-aud", migdir, sizeof(migdir), migenv, sizeof(migenv)) != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/tenant/" AUDIT_FILE, migdir);
    if (unlink(path) != 0)
        return -1;
    const char *env[] = {migenv, NULL};
    if (td_server_start(&srv, env) < 0)
        return -1;
    if (td_admin_create_tenant(&srv, "aud-s", "schema", NULL, "owner@s.example", "password-s1",
                               &ts) != 201 ||
        td_admin_create_tenant(&srv, "aud-p", "pool", NULL, "owner@p.example", "password-p1",
                               &tp) != 201)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    td_migrations_remove(migdir);
    return td_server_stop(&srv);
}

/* A user created, renamed and deleted through the API, and one entry of the old kind. */
static void write_entries(const char *slug, const struct td_principal *p, const char *schema)
{
    char id[64], path[160];
    struct td_resp r;
    assert_int_equal(td_add_user(&srv, slug, p->token, "audited@up.example", "password-u1",
                                 "member", id, sizeof(id)),
                     201);
    snprintf(path, sizeof(path), "/t/%s/users/%s", slug, id);
    td_call(&srv, "PATCH", path, p->token, "{\"name\":\"Renamed\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    td_call(&srv, "DELETE", path, p->token, NULL, &r);
    TD_ASSERT_STATUS(&r, 204);
    td_resp_free(&r);

    PGconn *c = td_db(&srv, "postgres");
    char sql[512];
    snprintf(sql, sizeof(sql),
             "INSERT INTO %s.audit_logs (tenant_id, action, entity_type, entity_id, new_values, "
             "created_at) VALUES ($1, 'create', 'things', gen_random_uuid(), '{\"note\": \"a: "
             "b\", \"made_at\": \"2024-02-29 23:59:59.5+02\", \"doc\": {\"k\": [1, 2]}}', "
             "'2000-01-01')",
             schema);
    PGresult *res = td_sql(c, sql, 1, (const char *const[]){p->tenant_id});
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    PQfinish(c);
}

static void check_stored(const char *schema, const char *tenant_id)
{
    PGconn *c = td_db(&srv, "postgres");
    char sql[512], v[4096];
    snprintf(sql, sizeof(sql),
             "SELECT format_type(atttypid, NULL) FROM pg_attribute WHERE "
             "attrelid = '%s.audit_logs'::regclass AND attname = 'new_values'",
             schema);
    assert_true(td_sql_value(c, sql, 0, NULL, v, sizeof(v)));
    assert_string_equal(v, "json");
    /* one NULL per side: old on create (two creates), new on delete (one) */
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FILTER (WHERE old_values IS NULL) || ' ' || count(*) FILTER "
             "(WHERE new_values IS NULL) FROM %s.audit_logs WHERE tenant_id = $1",
             schema);
    const char *const p[] = {tenant_id};
    assert_true(td_sql_value(c, sql, 1, p, v, sizeof(v)));
    /* the owner, the user's create and the old-kind entry have no old values */
    assert_string_equal(v, "3 1");
    snprintf(
        sql, sizeof(sql),
        "SELECT string_agg(coalesce(old_values::text, '-') || ' ' || coalesce(new_values::text, "
        "'-'), E'\\n') FROM %s.audit_logs WHERE tenant_id = $1",
        schema);
    assert_true(td_sql_value(c, sql, 1, p, v, sizeof(v)));
    assert_null(strstr(v, "\": "));
    assert_null(strstr(v, "\" :"));
    assert_null(strstr(v, ", \""));
    snprintf(sql, sizeof(sql),
             "SELECT new_values::text FROM %s.audit_logs WHERE tenant_id = $1 AND entity_type = "
             "'things'",
             schema);
    assert_true(td_sql_value(c, sql, 1, p, v, sizeof(v)));
    /* jsonb's key order, compact at every depth; the string's own ": " kept; the
     * timestamp in UTC with six digits */
    assert_string_equal(v, "{\"doc\":{\"k\":[1,2]},\"note\":\"a: b\","
                           "\"made_at\":\"2024-02-29T21:59:59.500000Z\"}");
    PQfinish(c);
}

static void test_values_become_compact_json(void **state)
{
    (void)state;
    char ident[64], cmd[512];
    td_storage_name(ts.tenant_id, ident, sizeof(ident));
    write_entries("aud-s", &ts, ident);
    write_entries("aud-p", &tp, "pool");

    snprintf(cmd, sizeof(cmd), "cp '%s/migrations/tenant/" AUDIT_FILE "' '%s/tenant/'",
             getenv("TD_SOURCE_DIR"), migdir);
    assert_int_equal(system(cmd), 0);
    char dd[160];
    snprintf(dd, sizeof(dd), "TENANTD_DATA_DIR=%s", srv.dir);
    /* the server's settings only: tenantd refuses TENANTD_ names it does not know */
    char *const argv[] = {"env",
                          "-u",
                          "TENANTD_BIN",
                          dd,
                          migenv,
                          "TENANTD_ADMIN_TOKEN=" TD_TEST_ADMIN_TOKEN,
                          "TENANTD_JWT_SECRET=" TD_TEST_JWT_SECRET,
                          (char *)getenv("TENANTD_BIN"),
                          "migrate",
                          NULL};
    assert_int_equal(td_run_quiet(argv), 0);

    check_stored(ident, ts.tenant_id);
    check_stored("pool", tp.tenant_id);

    /* the list relays the stored text */
    struct td_resp r;
    td_call(&srv, "GET", "/t/aud-s/audit-logs?limit=100", ts.token, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_non_null(strstr(r.body, "\"new_values\":{\"doc\":{\"k\":[1,2]},\"note\":\"a: b\","
                                   "\"made_at\":\"2024-02-29T21:59:59.500000Z\"}"));
    assert_non_null(strstr(r.body, "\"old_values\":{\"id\":"));
    td_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_become_compact_json),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
