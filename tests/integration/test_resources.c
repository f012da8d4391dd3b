/*
 * test_resources.c - tenant tables served without C code (SPEC §7), in every isolation: a
 * test migration (tests/integration/migrations/9101_resource_domain.sql) declares
 * customers, invoices, line_items, an admin-write settings table with a plan max and a
 * hidden table. CRUD, bulk creation, validation and constraint paths, filters, order,
 * select, embeds both ways, cursors under a non-default order, roles, quota, the audit
 * log, cross-tenant references, and a table added by `tenantd migrate` while serving.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static struct td_server srv;
static char migdir[64];
static char migenv[128];

static int setup(void **state)
{
    (void)state;
    if (td_migrations_dir("td-res", "9101_resource_domain.sql", migdir, sizeof(migdir), migenv,
                          sizeof(migenv)) != 0)
        return -1;
    const char *extra[] = {migenv, NULL};
    return td_server_start(&srv, extra);
}

static int teardown(void **state)
{
    (void)state;
    td_migrations_remove(migdir);
    return td_server_stop(&srv);
}

/* One tenant of an isolation: its owner, a member and an admin. */
struct tenant {
    struct td_principal owner;
    char member[2048], admin[2048];
};

static void make_tenant(const char *slug, const char *iso, struct tenant *t)
{
    char email[128];
    snprintf(email, sizeof(email), "owner@%s.test", slug);
    assert_int_equal(
        td_admin_create_tenant(&srv, slug, iso, "free", email, "owner-password", &t->owner), 201);
    snprintf(email, sizeof(email), "member@%s.test", slug);
    assert_int_equal(
        td_add_user(&srv, slug, t->owner.token, email, "member-password", "member", NULL, 0), 201);
    assert_int_equal(td_login(&srv, slug, email, "member-password", t->member, sizeof(t->member)),
                     200);
    snprintf(email, sizeof(email), "admin@%s.test", slug);
    assert_int_equal(
        td_add_user(&srv, slug, t->owner.token, email, "admin-password", "admin", NULL, 0), 201);
    assert_int_equal(td_login(&srv, slug, email, "admin-password", t->admin, sizeof(t->admin)),
                     200);
}

/* METHOD /t/{slug}{path} as token; r is the caller's to free. */
static long req(const struct tenant *t, const char *token, const char *method, const char *path,
                const char *body, struct td_resp *r)
{
    char full[1024];
    snprintf(full, sizeof(full), "/t/%s%s", t->owner.slug, path);
    return td_call(&srv, method, full, token ? token : t->owner.token, body, r);
}

/* Expect status; on 2xx with an object body, copy its id. */
static void expect(const struct tenant *t, const char *method, const char *path, const char *body,
                   long status, const char *code, char *id)
{
    struct td_resp r;
    req(t, NULL, method, path, body, &r);
    if (code)
        TD_ASSERT_PROBLEM(&r, status, code);
    else
        TD_ASSERT_STATUS(&r, status);
    if (id)
        snprintf(id, 64, "%s", td_jstr(r.json, "id"));
    td_resp_free(&r);
}

/* GET a list; the ids of data[] joined by "," into out, "key" values when key != NULL. */
static void list(const struct tenant *t, const char *path, const char *key, char *out, size_t size,
                 char *cursor)
{
    struct td_resp r;
    req(t, NULL, "GET", path, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    json_t *data = json_object_get(r.json, "data"), *row;
    size_t i, k = 0;
    out[0] = '\0';
    json_array_foreach(data, i, row)
    {
        json_t *v = json_object_get(row, key ? key : "id");
        char buf[64];
        if (json_is_integer(v))
            snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
        else
            snprintf(buf, sizeof(buf), "%s", json_is_string(v) ? json_string_value(v) : "null");
        k += (size_t)snprintf(out + k, size - k, "%s%s", i ? "," : "", buf);
    }
    if (cursor) {
        const char *c = td_jstr(r.json, "next_cursor");
        snprintf(cursor, 512, "%s", c ? c : "");
    }
    td_resp_free(&r);
}

static void crud(const struct tenant *t)
{
    struct td_resp r;
    char id[64], path[128];
    req(t, t->member, "POST", "/customers",
        "{\"name\":\"Ada\",\"email\":\"ada@x.test\",\"score\":7,\"vip\":true}", &r);
    TD_ASSERT_STATUS(&r, 201);
    assert_string_equal(td_jstr(r.json, "name"), "Ada");
    assert_int_equal(json_integer_value(json_object_get(r.json, "score")), 7);
    assert_true(json_is_true(json_object_get(r.json, "vip")));
    assert_null(json_object_get(r.json, "tenant_id"));
    assert_null(json_object_get(r.json, "secret"));
    const char *created = td_jstr(r.json, "created_at");
    assert_int_equal(strlen(created), 27); /* YYYY-MM-DDTHH:MM:SS.ffffffZ */
    assert_true(strstr(r.body, "\": ") == NULL);
    snprintf(id, sizeof(id), "%s", td_jstr(r.json, "id"));
    td_resp_free(&r);
    snprintf(path, sizeof(path), "/customers/%s", id);
    req(t, t->member, "GET", path, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "email"), "ada@x.test");
    char before[64];
    snprintf(before, sizeof(before), "%s", td_jstr(r.json, "updated_at"));
    td_resp_free(&r);
    req(t, t->member, "PATCH", path, "{\"score\":8,\"email\":null}", &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "score")), 8);
    assert_true(json_is_null(json_object_get(r.json, "email")));
    assert_string_equal(td_jstr(r.json, "name"), "Ada");
    assert_true(strcmp(td_jstr(r.json, "updated_at"), before) > 0);
    td_resp_free(&r);
    expect(t, "DELETE", path, NULL, 204, NULL, NULL);
    expect(t, "GET", path, NULL, 404, "not_found", NULL);
    expect(t, "DELETE", path, NULL, 404, "not_found", NULL);
    expect(t, "GET", "/customers/not-a-uuid", NULL, 404, "not_found", NULL);
    expect(t, "GET", "/ledger-notes", NULL, 404, "not_found", NULL);
    /* a row of defaults only, one or several */
    req(t, t->member, "POST", "/pings", "{}", &r);
    TD_ASSERT_STATUS(&r, 201);
    assert_int_equal(strlen(td_jstr(r.json, "at")), 27);
    assert_true(json_is_null(json_object_get(r.json, "note")));
    td_resp_free(&r);
    req(t, t->member, "POST", "/pings", "[{},{\"note\":\"n\"},{}]", &r);
    TD_ASSERT_STATUS(&r, 201);
    assert_int_equal(json_array_size(json_object_get(r.json, "data")), 3);
    td_resp_free(&r);
    req(t, t->member, "POST", "/pings", "[{},{}]", &r);
    TD_ASSERT_STATUS(&r, 201);
    assert_int_equal(json_array_size(json_object_get(r.json, "data")), 2);
    td_resp_free(&r);
    expect(t, "PUT", "/customers", "{}", 405, NULL, NULL);
}

static void bulk(const struct tenant *t)
{
    struct td_resp r;
    char ids[4096];
    req(t, NULL, "POST", "/customers",
        "[{\"name\":\"B1\",\"score\":1},{\"name\":\"B2\"},{\"name\":\"B3\",\"vip\":true}]", &r);
    TD_ASSERT_STATUS(&r, 201);
    json_t *data = json_object_get(r.json, "data");
    assert_int_equal(json_array_size(data), 3);
    assert_string_equal(td_jstr(json_array_get(data, 1), "name"), "B2");
    assert_true(json_is_false(json_object_get(json_array_get(data, 1), "vip")));
    td_resp_free(&r);
    /* all or none: the second row's unique violation leaves nothing */
    expect(t, "POST", "/customers",
           "[{\"name\":\"U1\",\"email\":\"u@x.test\"},{\"name\":\"U2\",\"email\":\"u@x.test\"}]",
           409, "conflict", NULL);
    list(t, "/customers?name=like.U*", NULL, ids, sizeof(ids), NULL);
    assert_string_equal(ids, "");
    expect(t, "POST", "/customers", "[]", 400, "validation_failed", NULL);
    expect(t, "POST", "/customers", "[{\"name\":\"ok\"},{\"name\":5}]", 400, "validation_failed",
           NULL);
    expect(t, "POST", "/customers", "[1]", 400, "validation_failed", NULL);
}

static void validation(const struct tenant *t)
{
    struct td_resp r;
    char cust[64], inv[64], path[128];
    static const char *const bad[] = {
        "{\"name\":\"x\",\"nope\":1}",
        "{\"name\":\"x\",\"score\":\"7\"}",
        "{\"name\":\"x\",\"score\":1.5}",
        "{\"name\":\"x\",\"score\":99999999999}",
        "{\"score\":1}",
        "{\"name\":null}",
        "{\"name\":\"x\",\"secret\":\"s\"}",
        "{\"name\":\"x\",\"created_at\":\"2024-01-01T00:00:00Z\"}",
        "{\"name\":\"x\",\"tenant_id\":\"00000000-0000-0000-0000-000000000000\"}",
        "{\"name\":\"x\",\"email\":\"0123456789012345678901234567890123456789@\"}",
        "{\"name\":\"x\",\"vip\":null}",
        "{\"name\":\"x\",\"vip\":\"yes\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect(t, "POST", "/customers", bad[i], 400, "validation_failed", NULL);
    req(t, NULL, "POST", "/customers", "{\"name\":\"x\",\"score\":\"7\"}", &r);
    assert_non_null(strstr(td_jstr(r.json, "detail"), "score"));
    td_resp_free(&r);
    expect(t, "POST", "/customers", "not json", 400, "invalid_json", NULL);
    expect(t, "POST", "/customers", "{\"name\":\"V\",\"email\":\"v@x.test\"}", 201, NULL, cust);
    expect(t, "POST", "/customers", "{\"name\":\"W\",\"email\":\"v@x.test\"}", 409, "conflict",
           NULL);
    char body[512];
    snprintf(body, sizeof(body),
             "{\"customer_id\":\"%s\",\"amount\":\"1234567890.1234\",\"due\":\"2024-02-29\","
             "\"meta\":{\"a\":[1,2]},\"tags\":[\"x\",\"y\"]}",
             cust);
    req(t, NULL, "POST", "/invoices", body, &r);
    TD_ASSERT_STATUS(&r, 201);
    assert_non_null(strstr(r.body, "\"amount\":1234567890.1234"));
    assert_non_null(strstr(r.body, "\"due\":\"2024-02-29\""));
    assert_non_null(strstr(r.body, "\"meta\":{\"a\":[1,2]}"));
    assert_non_null(strstr(r.body, "\"tags\":[\"x\",\"y\"]"));
    assert_string_equal(td_jstr(r.json, "state"), "open");
    snprintf(inv, sizeof(inv), "%s", td_jstr(r.json, "id"));
    td_resp_free(&r);
    static const char *const badinv[] = {"\"amount\":-1",
                                         "\"amount\":\"12abc\"",
                                         "\"amount\":1,\"due\":\"2023-02-29\"",
                                         "\"amount\":1,\"tags\":[1,2]",
                                         "\"amount\":1,\"tags\":\"x\"",
                                         "\"amount\":1,\"state\":\"paid\"",
                                         "\"amount\":123456789012"};
    for (size_t i = 0; i < sizeof(badinv) / sizeof(badinv[0]); i++) {
        snprintf(body, sizeof(body), "{\"customer_id\":\"%s\",%s}", cust, badinv[i]);
        expect(t, "POST", "/invoices", body, 400, "validation_failed", NULL);
    }
    snprintf(body, sizeof(body), "{\"customer_id\":\"%s\",\"amount\":-1}", cust);
    req(t, NULL, "POST", "/invoices", body, &r);
    assert_non_null(strstr(td_jstr(r.json, "detail"), "invoices_amount_positive"));
    td_resp_free(&r);
    /* a reference to a row that exists nowhere */
    expect(t, "POST", "/invoices",
           "{\"customer_id\":\"0b0b0b0b-0000-4000-8000-000000000000\",\"amount\":1}", 400,
           "validation_failed", NULL);
    /* deleting a referenced customer: 409; the invoice cascades to its line items */
    snprintf(path, sizeof(path), "/customers/%s", cust);
    expect(t, "DELETE", path, NULL, 409, "conflict", NULL);
    snprintf(body, sizeof(body), "{\"invoice_id\":\"%s\",\"qty\":2,\"price\":1.5}", inv);
    expect(t, "POST", "/line-items", body, 201, NULL, NULL);
    snprintf(path, sizeof(path), "/invoices/%s", inv);
    expect(t, "PATCH", path, "{\"state\":\"paid\"}", 400, "validation_failed", NULL);
    expect(t, "PATCH", path, "{\"amount\":null}", 400, "validation_failed", NULL);
    expect(t, "PATCH", path, "{\"id\":\"0b0b0b0b-0000-4000-8000-000000000000\"}", 400,
           "validation_failed", NULL);
    expect(t, "DELETE", path, NULL, 204, NULL, NULL);
    char ids[256];
    list(t, "/line-items", NULL, ids, sizeof(ids), NULL);
    assert_string_equal(ids, "");
    /* ON DELETE SET NULL: deleting the referrer clears the reference */
    char ref[64];
    expect(t, "POST", "/customers", "{\"name\":\"Referrer\"}", 201, NULL, ref);
    snprintf(body, sizeof(body), "{\"customer_id\":\"%s\",\"referrer_id\":\"%s\",\"amount\":2}",
             cust, ref);
    expect(t, "POST", "/invoices", body, 201, NULL, inv);
    snprintf(path, sizeof(path), "/customers/%s", ref);
    expect(t, "DELETE", path, NULL, 204, NULL, NULL);
    snprintf(path, sizeof(path), "/invoices/%s", inv);
    req(t, NULL, "GET", path, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_true(json_is_null(json_object_get(r.json, "referrer_id")));
    td_resp_free(&r);
    expect(t, "DELETE", path, NULL, 204, NULL, NULL);
    snprintf(path, sizeof(path), "/customers/%s", cust);
    expect(t, "DELETE", path, NULL, 204, NULL, NULL);
}

/* Customers q0..q5 with scores 3,1,null,5,1,4 for the query tests. */
static void seed(const struct tenant *t)
{
    static const char *const rows[] = {"{\"name\":\"q0 Alpha\",\"score\":3,\"email\":\"a@q.test\"}",
                                       "{\"name\":\"q1 beta\",\"score\":1,\"vip\":true}",
                                       "{\"name\":\"q2 Gamma%\"}",
                                       "{\"name\":\"q3 delta\",\"score\":5,\"vip\":true}",
                                       "{\"name\":\"q4 Beta_\",\"score\":1}",
                                       "{\"name\":\"q5 eps\",\"score\":4}"};
    for (size_t i = 0; i < 6; i++)
        expect(t, "POST", "/customers", rows[i], 201, NULL, NULL);
}

static void filters(const struct tenant *t)
{
    static const struct {
        const char *query, *names;
    } cases[] = {
        {"score=eq.1&order=name.asc", "q1 beta,q4 Beta_"},
        {"score=neq.1&name=like.q*&order=name.asc", "q0 Alpha,q3 delta,q5 eps"},
        {"score=lt.3&order=name.asc", "q1 beta,q4 Beta_"},
        {"score=lte.3&order=name.asc", "q0 Alpha,q1 beta,q4 Beta_"},
        {"score=gt.3&order=name.asc", "q3 delta,q5 eps"},
        {"score=gte.4&order=name.asc", "q3 delta,q5 eps"},
        {"name=like.*beta&order=name.asc", "q1 beta"},
        {"name=ilike.*BETA*&order=name.asc", "q1 beta,q4 Beta_"},
        {"name=like.*%25", "q2 Gamma%"},
        {"name=like.*_", "q4 Beta_"},
        {"score=in.(3,5)&order=name.asc", "q0 Alpha,q3 delta"},
        {"name=in.(%22q5%20eps%22,nobody)", "q5 eps"},
        {"score=is.null&name=like.q*", "q2 Gamma%"},
        {"vip=is.true&order=name.asc", "q1 beta,q3 delta"},
        {"vip=is.false&name=like.q*&score=not.is.null&order=name.asc", "q0 Alpha,q4 Beta_,q5 eps"},
        {"score=not.eq.1&name=like.q*&order=score.desc", "q3 delta,q5 eps,q0 Alpha"},
        {"score=not.in.(1,3,4)&order=name.asc", "q3 delta"},
        {"name=like.q*&order=score.asc,name.desc", "q4 Beta_,q1 beta,q0 Alpha,q5 eps,q3 delta,"
                                                   "q2 Gamma%"},
        {"name=like.q*&order=score.desc,name.asc&limit=3", "q2 Gamma%,q3 delta,q5 eps"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[256], names[1024];
        snprintf(path, sizeof(path), "/customers?%s&name=like.q*", cases[i].query);
        list(t, path, "name", names, sizeof(names), NULL);
        if (strcmp(names, cases[i].names) != 0)
            fprintf(stderr, "%s: got %s\n", path, names);
        assert_string_equal(names, cases[i].names);
    }
    static const char *const bad[] = {
        "nope=eq.1",    "score=eq.x",    "score=foo.1",    "score",      "secret=eq.s",
        "score=like.1", "vip=is.maybe",  "score=in.(1,x)", "score=in.1", "order=nope.asc",
        "order=secret", "select=nope",   "embed=nope",     "limit=0",    "limit=101",
        "cursor=zzz",   "score=is.true", "meta=eq.1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char path[256];
        snprintf(path, sizeof(path), "/customers?%s", bad[i]);
        expect(t, "GET", path, NULL, 400, "bad_request", NULL);
    }
}

/* Page through order=score.asc,name.desc two at a time: every row once, in order. */
static void cursors(const struct tenant *t)
{
    char all[1024], got[1024] = "", page[1024], cursor[512] = "", path[1024];
    list(t, "/customers?name=like.q*&order=score.asc,name.desc&limit=100", "name", all, sizeof(all),
         NULL);
    int pages = 0;
    do {
        snprintf(path, sizeof(path),
                 "/customers?name=like.q*&order=score.asc,name.desc&limit=2%s%s",
                 cursor[0] ? "&cursor=" : "", cursor);
        list(t, path, "name", page, sizeof(page), cursor);
        if (page[0] && strlen(got) + strlen(page) + 2 < sizeof(got)) {
            if (got[0])
                strcat(got, ",");
            strcat(got, page);
        }
        pages++;
    } while (cursor[0] && pages < 10);
    assert_int_equal(pages, 3);
    assert_string_equal(got, all);
    /* the default order pages too */
    list(t, "/customers?limit=2", NULL, page, sizeof(page), cursor);
    assert_true(cursor[0] != '\0');
    snprintf(path, sizeof(path), "/customers?limit=2&cursor=%s", cursor);
    list(t, path, NULL, got, sizeof(got), NULL);
    assert_true(strstr(page, got) == NULL);
    /* a cursor is bound to its filters and order */
    list(t, "/customers?name=like.q*&order=score.asc&limit=2", NULL, page, sizeof(page), cursor);
    snprintf(path, sizeof(path), "/customers?name=like.q*&order=score.desc&limit=2&cursor=%s",
             cursor);
    expect(t, "GET", path, NULL, 400, "bad_request", NULL);
    snprintf(path, sizeof(path), "/customers?name=like.x*&order=score.asc&limit=2&cursor=%s",
             cursor);
    expect(t, "GET", path, NULL, 400, "bad_request", NULL);
}

static void select_embed(const struct tenant *t)
{
    struct td_resp r;
    char cust[64], body[256], path[256];
    req(t, NULL, "GET", "/customers?select=name&name=eq.q0%20Alpha", NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    json_t *row = json_array_get(json_object_get(r.json, "data"), 0);
    assert_int_equal(json_object_size(row), 2); /* name and id */
    assert_non_null(td_jstr(row, "id"));
    snprintf(cust, sizeof(cust), "%s", td_jstr(row, "id"));
    td_resp_free(&r);
    for (int i = 0; i < 2; i++) {
        snprintf(body, sizeof(body), "{\"customer_id\":\"%s\",\"amount\":%d}", cust, 10 + i);
        expect(t, "POST", "/invoices", body, 201, NULL, NULL);
    }
    req(t, NULL, "GET", "/invoices?embed=customer&select=amount", NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    row = json_array_get(json_object_get(r.json, "data"), 0);
    assert_string_equal(td_jstr(json_object_get(row, "customer"), "name"), "q0 Alpha");
    assert_null(json_object_get(json_object_get(row, "customer"), "secret"));
    td_resp_free(&r);
    snprintf(path, sizeof(path), "/customers/%s?embed=invoices", cust);
    req(t, NULL, "GET", path, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    json_t *inv = json_object_get(r.json, "invoices");
    assert_int_equal(json_array_size(inv), 2);
    assert_true(json_number_value(json_object_get(json_array_get(inv, 0), "amount")) == 11.0);
    td_resp_free(&r);
    req(t, NULL, "GET", "/customers?embed=invoices&score=eq.5", NULL, &r);
    row = json_array_get(json_object_get(r.json, "data"), 0);
    assert_int_equal(json_array_size(json_object_get(row, "invoices")), 0);
    td_resp_free(&r);
}

static void roles_quota(const struct tenant *t)
{
    struct td_resp r;
    req(t, t->member, "POST", "/settings", "{\"key\":\"a\"}", &r);
    TD_ASSERT_PROBLEM(&r, 403, "forbidden");
    td_resp_free(&r);
    req(t, t->member, "GET", "/settings", NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    req(t, t->admin, "POST", "/settings", "{\"key\":\"a\",\"value\":[1,{\"b\":null}]}", &r);
    TD_ASSERT_STATUS(&r, 201);
    assert_non_null(strstr(r.body, "\"value\":[1,{\"b\":null}]"));
    td_resp_free(&r);
    req(t, t->admin, "POST", "/settings", "[{\"key\":\"b\"},{\"key\":\"c\"}]", &r);
    TD_ASSERT_PROBLEM(&r, 403, "quota_exceeded");
    td_resp_free(&r);
    req(t, t->admin, "POST", "/settings", "{\"key\":\"b\"}", &r);
    TD_ASSERT_STATUS(&r, 201);
    td_resp_free(&r);
    req(t, t->admin, "POST", "/settings", "{\"key\":\"c\"}", &r);
    TD_ASSERT_PROBLEM(&r, 403, "quota_exceeded");
    td_resp_free(&r);
}

static void audit(const struct tenant *t)
{
    struct td_resp r;
    req(t, NULL, "GET", "/audit-logs?limit=100", NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    json_t *data = json_object_get(r.json, "data"), *e;
    size_t i;
    int creates = 0, updates = 0, deletes = 0;
    json_array_foreach(data, i, e)
    {
        if (strcmp(td_jstr(e, "entity_type"), "customers") != 0)
            continue;
        const char *a = td_jstr(e, "action");
        json_t *nv = json_object_get(e, "new_values"), *ov = json_object_get(e, "old_values");
        assert_null(json_object_get(nv, "secret"));
        assert_null(json_object_get(ov, "secret"));
        assert_null(json_object_get(nv, "tenant_id"));
        creates += !strcmp(a, "create") && json_is_null(ov) && td_jstr(nv, "name");
        updates += !strcmp(a, "update") && td_jstr(ov, "name") && td_jstr(nv, "name");
        deletes += !strcmp(a, "delete") && json_is_null(nv) && td_jstr(ov, "name");
        if (td_jstr(nv, "created_at"))
            assert_int_equal(strlen(td_jstr(nv, "created_at")), 27);
    }
    assert_true(creates >= 10);
    assert_true(updates >= 1);
    assert_true(deletes >= 2);
    td_resp_free(&r);
}

/* Another tenant's customer is a row that exists nowhere, and its ids are 404. */
static void cross_tenant(const struct tenant *a, const struct tenant *b)
{
    char cust[64], body[256], path[128], ids[1024];
    expect(a, "POST", "/customers", "{\"name\":\"A's\"}", 201, NULL, cust);
    snprintf(body, sizeof(body), "{\"customer_id\":\"%s\",\"amount\":1}", cust);
    expect(b, "POST", "/invoices", body, 400, "validation_failed", NULL);
    snprintf(body, sizeof(body), "[{\"name\":\"B's\"}]");
    snprintf(path, sizeof(path), "/customers/%s", cust);
    expect(b, "GET", path, NULL, 404, "not_found", NULL);
    expect(b, "PATCH", path, "{\"name\":\"stolen\"}", 404, "not_found", NULL);
    expect(b, "DELETE", path, NULL, 404, "not_found", NULL);
    /* the same id in two tenants (composite keys) */
    snprintf(body, sizeof(body), "{\"id\":\"%s\",\"name\":\"twin\"}", cust);
    expect(b, "POST", "/customers", body, 201, NULL, NULL);
    expect(a, "GET", path, NULL, 200, NULL, NULL);
    snprintf(path, sizeof(path), "/customers?id=eq.%s", cust);
    list(b, path, "name", ids, sizeof(ids), NULL);
    assert_string_equal(ids, "twin");
    list(a, path, "name", ids, sizeof(ids), NULL);
    assert_string_equal(ids, "A's");
}

static void run_isolation(const char *iso)
{
    struct tenant t, other;
    char slug[64];
    snprintf(slug, sizeof(slug), "res-%s", iso);
    make_tenant(slug, iso, &t);
    snprintf(slug, sizeof(slug), "res2-%s", iso);
    make_tenant(slug, iso, &other);
    crud(&t);
    bulk(&t);
    validation(&t);
    seed(&t);
    filters(&t);
    cursors(&t);
    select_embed(&t);
    roles_quota(&t);
    audit(&t);
    cross_tenant(&t, &other);
}

static void test_pool(void **state)
{
    (void)state;
    run_isolation("pool");
}

static void test_schema(void **state)
{
    (void)state;
    run_isolation("schema");
}

static void test_database(void **state)
{
    (void)state;
    run_isolation("database");
}

/* Run `tenantd migrate` against the server's data dir and the test migrations. */
static int migrate(void)
{
    const char *bin = getenv("TENANTD_BIN");
    char *env[TD_CLI_ENV_MAX], dd[128];
    td_cli_env(&srv, (const char *[]){migenv, "TENANTD_LOG_LEVEL=warn", NULL}, env, dd, sizeof(dd));
    char *argv[] = {(char *)bin, "migrate", NULL};
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        execve(bin, argv, env);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A table added by `tenantd migrate` is served within 2 s, without a restart. */
static void test_added_table(void **state)
{
    (void)state;
    struct tenant t;
    struct td_resp r;
    make_tenant("res-live", "schema", &t);
    expect(&t, "GET", "/shipments", NULL, 404, "not_found", NULL);
    char path[128];
    snprintf(path, sizeof(path), "%s/tenant/9102_shipments.sql", migdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("CREATE TABLE shipments (tenant_id uuid NOT NULL DEFAULT NULLIF(current_setting("
          "'app.tenant_id', true), '')::uuid, id uuid NOT NULL DEFAULT gen_random_uuid(), "
          "label text NOT NULL, PRIMARY KEY (tenant_id, id));\n",
          f);
    fclose(f);
    assert_int_equal(migrate(), 0);
    double t0 = td_now_s();
    long st = 0;
    while (td_now_s() - t0 < 2.0) {
        st = req(&t, NULL, "POST", "/shipments", "{\"label\":\"box\"}", &r);
        td_resp_free(&r);
        if (st == 201)
            break;
        td_sleep_ms(100);
    }
    assert_int_equal(st, 201);
    expect(&t, "GET", "/shipments?label=eq.box", NULL, 200, NULL, NULL);
    unlink(path);
    /* usage.rows counts every tenant table */
    td_admin(&srv, "GET", "/admin/tenants/res-live", NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    json_t *rows = json_object_get(json_object_get(r.json, "usage"), "rows");
    assert_int_equal(json_integer_value(json_object_get(rows, "shipments")), 1);
    assert_int_equal(json_integer_value(json_object_get(rows, "users")), 3);
    assert_true(json_is_integer(json_object_get(rows, "ledger_notes")));
    td_resp_free(&r);
}

/* Each resource in /openapi.json: its paths and its row's JSON Schema. */
static void test_openapi(void **state)
{
    (void)state;
    struct td_resp r;
    td_http(&srv, "GET", "/openapi.json", NULL, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    json_t *paths = json_object_get(r.json, "paths");
    assert_non_null(json_object_get(json_object_get(paths, "/line-items"), "get"));
    assert_non_null(json_object_get(json_object_get(paths, "/customers/{id}"), "patch"));
    assert_non_null(json_object_get(paths, "/projects"));
    assert_null(json_object_get(paths, "/ledger-notes"));
    json_t *schemas = json_object_get(json_object_get(r.json, "components"), "schemas");
    json_t *inv = json_object_get(schemas, "Row_invoices");
    json_t *props = json_object_get(inv, "properties");
    assert_string_equal(td_jstr(json_object_get(props, "due"), "format"), "date");
    assert_string_equal(td_jstr(json_object_get(props, "created_at"), "format"), "date-time");
    assert_string_equal(td_jstr(json_object_get(props, "customer_id"), "format"), "uuid");
    assert_string_equal(td_jstr(json_object_get(json_object_get(props, "tags"), "items"), "type"),
                        "string");
    json_t *req = json_object_get(inv, "required");
    assert_int_equal(json_array_size(req), 2); /* customer_id, amount */
    json_t *cust = json_object_get(json_object_get(schemas, "Row_customers"), "properties");
    assert_null(json_object_get(cust, "secret"));
    assert_null(json_object_get(cust, "tenant_id"));
    td_resp_free(&r);
}

/* /metrics counts a served table under its route pattern, never under its own path: the
 * label set stays bounded however many tables a tenant declares. */
static void test_metrics_label(void **state)
{
    (void)state;
    struct td_resp r;
    td_admin(&srv, "GET", "/metrics", NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_non_null(strstr(r.body, "route=\"/{t}\",method=\"GET\",status=\"200\""));
    assert_non_null(strstr(r.body, "route=\"/{t}\",method=\"POST\",status=\"201\""));
    assert_non_null(strstr(r.body, "route=\"/{t}/{id}\",method=\"PATCH\",status=\"200\""));
    assert_null(strstr(r.body, "route=\"/customers"));
    assert_null(strstr(r.body, "route=\"unmatched\",method=\"GET\",status=\"200\""));
    td_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool),     cmocka_unit_test(test_schema),
        cmocka_unit_test(test_database), cmocka_unit_test(test_added_table),
        cmocka_unit_test(test_openapi),  cmocka_unit_test(test_metrics_label),
    };
    return cmocka_run_group_tests_name("resources", tests, setup, teardown);
}
