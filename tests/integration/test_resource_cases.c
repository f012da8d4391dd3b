/*
 * test_resource_cases.c - the resource engine (SPEC §7) in every isolation, on a second
 * domain (tests/integration/migrations/9201_shop_domain.sql: smallint range, numeric
 * digits, varchar length, boolean filters, arrays, jsonb, CASCADE and RESTRICT keys) beside
 * test_resources.c: CRUD and batches, every filter, order, select and embed, a cursor
 * under a non-default order, validation and constraint paths, another tenant's rows,
 * roles and plan limits, audit entries, OpenAPI, metrics and usage, and a table added by
 * `tenantd migrate` while the server runs in a file numbered below the newest applied one.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct td_server srv;
static char migdir[64];
static char migenv[128];

#define NISO TD_NISO
static struct td_principal owners[NISO];

static int setup(void **state)
{
    (void)state;
    return td_domain_suite_start(&srv, "td-res", "9201_shop_domain.sql", "res", migdir,
                                 sizeof(migdir), migenv, sizeof(migenv), owners);
}

static int teardown(void **state)
{
    (void)state;
    td_migrations_remove(migdir);
    return td_server_stop(&srv);
}

/* METHOD /t/{slug}{path} as p. */
static long req(const struct td_principal *p, const char *method, const char *path,
                const char *body, struct td_resp *r)
{
    char full[2048];
    snprintf(full, sizeof(full), "/t/%.63s%.1900s", p->slug, path);
    return td_call(&srv, method, full, p->token, body, r);
}

/* POST path body → 201; the new row's id copied to id. */
static void create(const struct td_principal *p, const char *path, const char *body, char *id)
{
    struct td_resp r;
    req(p, "POST", path, body, &r);
    TD_ASSERT_STATUS(&r, 201);
    if (id)
        snprintf(id, 64, "%s", td_jstr(r.json, "id"));
    td_resp_free(&r);
}

/* GET path → 200; the number of rows in data. */
static size_t count(const struct td_principal *p, const char *path)
{
    struct td_resp r;
    req(p, "GET", path, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    size_t n = json_array_size(json_object_get(r.json, "data"));
    td_resp_free(&r);
    return n;
}

static void expect_problem(const struct td_principal *p, const char *method, const char *path,
                           const char *body, long status, const char *code, const char *in_detail)
{
    struct td_resp r;
    req(p, method, path, body, &r);
    if (code)
        TD_ASSERT_PROBLEM(&r, status, code);
    else
        TD_ASSERT_STATUS(&r, status);
    if (in_detail &&
        !strstr(td_jstr(r.json, "detail") ? td_jstr(r.json, "detail") : "", in_detail)) {
        fprintf(stderr, "%s %s: detail %s lacks %s\n", method, path, td_jstr(r.json, "detail"),
                in_detail);
        fail();
    }
    td_resp_free(&r);
}

static int is_ts(const char *s)
{
    /* YYYY-MM-DDTHH:MM:SS.ffffffZ */
    return s && strlen(s) == 27 && s[10] == 'T' && s[19] == '.' && s[26] == 'Z';
}

static void test_crud(void **state)
{
    (void)state;
    for (int i = 0; i < NISO; i++) {
        const struct td_principal *p = &owners[i];
        struct td_resp r;
        req(p, "POST", "/customers",
            "{\"name\":\"Ada\",\"email\":\"ada@x.test\",\"balance\":\"12345678.1234\","
            "\"birthday\":\"1990-02-03\",\"prefs\":{\"a\":[1,2]},\"tags\":[\"x\",\"y\"]}",
            &r);
        TD_ASSERT_STATUS(&r, 201);
        char id[64], path[160];
        snprintf(id, sizeof(id), "%s", td_jstr(r.json, "id"));
        assert_true(td_is_uuid(id));
        assert_string_equal(td_jstr(r.json, "name"), "Ada");
        assert_int_equal(json_integer_value(json_object_get(r.json, "tier")), 1);
        assert_true(json_is_number(json_object_get(r.json, "balance")));
        assert_non_null(strstr(r.body, "\"balance\":12345678.1234"));
        assert_string_equal(td_jstr(r.json, "birthday"), "1990-02-03");
        assert_non_null(strstr(r.body, "\"prefs\":{\"a\":[1,2]}"));
        assert_non_null(strstr(r.body, "\"tags\":[\"x\",\"y\"]"));
        assert_true(json_is_null(json_object_get(r.json, "seen_at")));
        assert_int_equal(json_integer_value(json_object_get(r.json, "score")), 7);
        assert_null(json_object_get(r.json, "api_key"));
        assert_null(json_object_get(r.json, "tenant_id"));
        assert_true(is_ts(td_jstr(r.json, "created_at")) && is_ts(td_jstr(r.json, "updated_at")));
        assert_null(strstr(r.body, "\": ") ? strstr(r.body, "\" : ") : NULL);
        char updated[40];
        snprintf(updated, sizeof(updated), "%s", td_jstr(r.json, "updated_at"));
        td_resp_free(&r);

        snprintf(path, sizeof(path), "/customers/%s", id);
        req(p, "GET", path, NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        assert_string_equal(td_jstr(r.json, "email"), "ada@x.test");
        td_resp_free(&r);

        req(p, "PATCH", path, "{\"tier\":2,\"birthday\":null}", &r);
        TD_ASSERT_STATUS(&r, 200);
        assert_int_equal(json_integer_value(json_object_get(r.json, "tier")), 2);
        assert_true(json_is_null(json_object_get(r.json, "birthday")));
        assert_string_equal(td_jstr(r.json, "name"), "Ada");
        assert_string_not_equal(td_jstr(r.json, "updated_at"), updated);
        td_resp_free(&r);

        /* timestamptz[]: each element in the API's format, null kept, {} as [] */
        req(p, "PATCH", path,
            "{\"seen_at\":[\"2020-01-01T00:00:00Z\",null,\"2020-06-01T12:30:00.5+02:00\"]}", &r);
        TD_ASSERT_STATUS(&r, 200);
        assert_non_null(strstr(r.body, "\"seen_at\":[\"2020-01-01T00:00:00.000000Z\",null,"
                                       "\"2020-06-01T10:30:00.500000Z\"]"));
        td_resp_free(&r);
        req(p, "PATCH", path, "{\"seen_at\":[]}", &r);
        TD_ASSERT_STATUS(&r, 200);
        assert_non_null(strstr(r.body, "\"seen_at\":[]"));
        td_resp_free(&r);

        /* a batch is all or none */
        size_t before = count(p, "/customers?limit=100");
        expect_problem(p, "POST", "/customers", "[{\"name\":\"B1\"},{\"name\":7}]", 400,
                       "validation_failed", "name");
        expect_problem(p, "POST", "/customers",
                       "[{\"name\":\"B1\",\"email\":\"d@x.test\"},{\"name\":\"B2\",\"email\":"
                       "\"d@x.test\"}]",
                       409, "conflict", NULL);
        assert_int_equal(count(p, "/customers?limit=100"), before);
        req(p, "POST", "/customers", "[{\"name\":\"B1\"},{\"name\":\"B2\",\"tier\":3}]", &r);
        TD_ASSERT_STATUS(&r, 201);
        assert_int_equal(json_array_size(json_object_get(r.json, "data")), 2);
        td_resp_free(&r);
        assert_int_equal(count(p, "/customers?limit=100"), before + 2);
        expect_problem(p, "POST", "/customers", "[]", 400, "validation_failed", NULL);

        req(p, "DELETE", path, NULL, &r);
        TD_ASSERT_STATUS(&r, 204);
        td_resp_free(&r);
        expect_problem(p, "GET", path, NULL, 404, "not_found", NULL);
        expect_problem(p, "DELETE", path, NULL, 404, "not_found", NULL);
        expect_problem(p, "GET", "/customers/not-a-uuid", NULL, 404, "not_found", NULL);
        expect_problem(p, "PUT", "/customers", "{}", 405, NULL, NULL);
    }
}

/* The names in data of GET path, joined with commas into out. */
static void names(const struct td_principal *p, const char *path, const char *key, char *out,
                  size_t size)
{
    struct td_resp r;
    req(p, "GET", path, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    size_t k = 0, i;
    json_t *row;
    out[0] = '\0';
    json_array_foreach(json_object_get(r.json, "data"), i, row) k +=
        (size_t)snprintf(out + k, size - k, "%s%s", i ? "," : "", td_jstr(row, key));
    td_resp_free(&r);
}

#define ASSERT_NAMES(p, path, want)                                                                \
    do {                                                                                           \
        char got_[1024];                                                                           \
        names((p), (path), "name", got_, sizeof(got_));                                            \
        if (strcmp(got_, (want)) != 0)                                                             \
            fprintf(stderr, "GET %s: got [%s], want [%s]\n", (path), got_, (want));                \
        assert_string_equal(got_, (want));                                                         \
    } while (0)

/* Five customers q1..q5, created in order (q5 newest). */
static void seed_queries(const struct td_principal *p, char ids[5][64])
{
    static const char *const rows[] = {
        "{\"name\":\"q1 Alpha\",\"tier\":1,\"balance\":10.5,\"vip\":true,\"email\":\"q1@x.test\"}",
        "{\"name\":\"q2 beta\",\"tier\":2,\"balance\":20,\"birthday\":\"2000-01-01\"}",
        "{\"name\":\"q3 Gamma\",\"tier\":2,\"balance\":\"30.25\",\"vip\":true}",
        "{\"name\":\"q4 delta\",\"tier\":3,\"balance\":40,\"email\":\"q4@x.test\"}",
        "{\"name\":\"q5 Alpha\",\"tier\":3,\"balance\":50}",
    };
    for (int i = 0; i < 5; i++)
        create(p, "/customers", rows[i], ids[i]);
}

static void test_queries(void **state)
{
    (void)state;
    for (int i = 0; i < NISO; i++) {
        const struct td_principal *p = &owners[i];
        char ids[5][64], path[512], body[256];
        seed_queries(p, ids);
        ASSERT_NAMES(p, "/customers?name=like.q*", "q5 Alpha,q4 delta,q3 Gamma,q2 beta,q1 Alpha");
        ASSERT_NAMES(p, "/customers?name=like.q*&tier=eq.2", "q3 Gamma,q2 beta");
        ASSERT_NAMES(p, "/customers?name=like.q*&tier=neq.2", "q5 Alpha,q4 delta,q1 Alpha");
        ASSERT_NAMES(p, "/customers?name=like.q*&balance=lt.20", "q1 Alpha");
        ASSERT_NAMES(p, "/customers?name=like.q*&balance=lte.20", "q2 beta,q1 Alpha");
        ASSERT_NAMES(p, "/customers?name=like.q*&balance=gt.40", "q5 Alpha");
        ASSERT_NAMES(p, "/customers?name=like.q*&balance=gte.40", "q5 Alpha,q4 delta");
        ASSERT_NAMES(p, "/customers?name=like.*Alpha", "q5 Alpha,q1 Alpha");
        ASSERT_NAMES(p, "/customers?name=ilike.*ALPHA", "q5 Alpha,q1 Alpha");
        ASSERT_NAMES(p, "/customers?name=like.q*&tier=in.(1,3)", "q5 Alpha,q4 delta,q1 Alpha");
        ASSERT_NAMES(p, "/customers?name=in.(%22q2%20beta%22,%22q4%20delta%22)",
                     "q4 delta,q2 beta");
        ASSERT_NAMES(p, "/customers?name=like.q*&email=is.null", "q5 Alpha,q3 Gamma,q2 beta");
        ASSERT_NAMES(p, "/customers?name=like.q*&email=not.is.null", "q4 delta,q1 Alpha");
        ASSERT_NAMES(p, "/customers?name=like.q*&vip=is.true", "q3 Gamma,q1 Alpha");
        ASSERT_NAMES(p, "/customers?name=like.q*&vip=is.false", "q5 Alpha,q4 delta,q2 beta");
        ASSERT_NAMES(p, "/customers?name=like.q*&tier=not.eq.2", "q5 Alpha,q4 delta,q1 Alpha");
        ASSERT_NAMES(p, "/customers?name=like.q*&birthday=eq.2000-01-01", "q2 beta");
        ASSERT_NAMES(p, "/customers?name=like.q*&order=balance.asc",
                     "q1 Alpha,q2 beta,q3 Gamma,q4 delta,q5 Alpha");
        ASSERT_NAMES(p, "/customers?name=like.q*&order=tier.desc,name.asc",
                     "q4 delta,q5 Alpha,q2 beta,q3 Gamma,q1 Alpha");

        /* select: only the named columns and id */
        struct td_resp r;
        snprintf(path, sizeof(path), "/customers/%s?select=name", ids[0]);
        req(p, "GET", path, NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        assert_int_equal(json_object_size(r.json), 2);
        assert_string_equal(td_jstr(r.json, "name"), "q1 Alpha");
        assert_string_equal(td_jstr(r.json, "id"), ids[0]);
        td_resp_free(&r);

        /* a cursor walks a non-default order (ties on tier broken by id) */
        char seen[1024] = "", cursor[1024] = "";
        for (int page = 0; page < 5; page++) {
            snprintf(path, sizeof(path), "/customers?name=like.q*&order=tier.asc&limit=2%s%s",
                     cursor[0] ? "&cursor=" : "", cursor);
            req(p, "GET", path, NULL, &r);
            TD_ASSERT_STATUS(&r, 200);
            size_t k;
            json_t *row;
            json_array_foreach(json_object_get(r.json, "data"), k, row)
            {
                strcat(seen, td_jstr(row, "name"));
                strcat(seen, ";");
            }
            const char *next = td_jstr(r.json, "next_cursor");
            if (!next) {
                td_resp_free(&r);
                break;
            }
            td_urlencode(next, cursor, sizeof(cursor));
            td_resp_free(&r);
        }
        assert_int_equal(strlen(seen), strlen("q1 Alpha;q2 beta;q3 Gamma;q4 delta;q5 Alpha;"));
        assert_non_null(strstr(seen, "q1 Alpha;"));
        assert_true(strstr(seen, "q1 Alpha") < strstr(seen, "q2 beta") &&
                    strstr(seen, "q3 Gamma") < strstr(seen, "q4 delta"));
        req(p, "GET", "/customers?name=like.q*&order=tier.asc&limit=2", NULL, &r);
        td_urlencode(td_jstr(r.json, "next_cursor"), cursor, sizeof(cursor));
        td_resp_free(&r);
        snprintf(path, sizeof(path), "/customers?name=like.q*&order=tier.desc&limit=2&cursor=%s",
                 cursor);
        expect_problem(p, "GET", path, NULL, 400, "bad_request", "cursor");
        snprintf(path, sizeof(path), "/customers?order=tier.asc&limit=2&cursor=%s", cursor);
        expect_problem(p, "GET", path, NULL, 400, "bad_request", "cursor");

        /* embeds: the FK target as an object, the referencing rows as an array */
        char order[64];
        snprintf(body, sizeof(body), "{\"customer_id\":\"%s\",\"total\":5}", ids[1]);
        create(p, "/orders", body, order);
        snprintf(body, sizeof(body), "{\"customer_id\":\"%s\",\"total\":6}", ids[1]);
        create(p, "/orders", body, NULL);
        snprintf(path, sizeof(path), "/orders/%s?embed=customer", order);
        req(p, "GET", path, NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        assert_string_equal(td_jstr(json_object_get(r.json, "customer"), "name"), "q2 beta");
        assert_null(json_object_get(json_object_get(r.json, "customer"), "api_key"));
        td_resp_free(&r);
        req(p, "GET", "/customers?name=eq.q2%20beta&embed=orders", NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        json_t *orders =
            json_object_get(json_array_get(json_object_get(r.json, "data"), 0), "orders");
        assert_int_equal(json_array_size(orders), 2);
        assert_true(json_number_value(json_object_get(json_array_get(orders, 0), "total")) == 6.0);
        td_resp_free(&r);

        /* the query's own mistakes */
        expect_problem(p, "GET", "/customers?nope=eq.1", NULL, 400, "bad_request", "nope");
        expect_problem(p, "GET", "/customers?api_key=eq.1", NULL, 400, "bad_request", NULL);
        expect_problem(p, "GET", "/customers?tier=approx.1", NULL, 400, "bad_request", NULL);
        expect_problem(p, "GET", "/customers?tier=eq.abc", NULL, 400, "bad_request", NULL);
        expect_problem(p, "GET", "/customers?birthday=gt.2000-13-45", NULL, 400, "bad_request",
                       NULL);
        expect_problem(p, "GET", "/customers?order=nope.asc", NULL, 400, "bad_request", NULL);
        expect_problem(p, "GET", "/customers?order=tier.up", NULL, 400, "bad_request", NULL);
        expect_problem(p, "GET", "/customers?select=nope", NULL, 400, "bad_request", NULL);
        expect_problem(p, "GET", "/customers?embed=nope", NULL, 400, "bad_request", NULL);
        expect_problem(p, "GET", "/customers?tier=in.1,2", NULL, 400, "bad_request", NULL);
        expect_problem(p, "GET", "/customers?vip=is.maybe", NULL, 400, "bad_request", NULL);
        expect_problem(p, "GET", "/customers?limit=0", NULL, 400, "bad_request", NULL);
        expect_problem(p, "GET", "/customers?cursor=zz", NULL, 400, "bad_request", NULL);
        /* a value is bound, never SQL */
        ASSERT_NAMES(p, "/customers?name=eq.x%27%20OR%20%271%27=%271", "");
    }
}

static void test_validation(void **state)
{
    (void)state;
    for (int i = 0; i < NISO; i++) {
        const struct td_principal *p = &owners[i];
        const char *v = "validation_failed";
        char c1[64], path[160], body[256];
        create(p, "/customers", "{\"name\":\"v1\",\"email\":\"v1@x.test\"}", c1);
        expect_problem(p, "POST", "/customers", "{\"name\":\"x\",\"color\":1}", 400, v, "color");
        expect_problem(p, "POST", "/customers", "{\"tier\":1}", 400, v, "name");
        expect_problem(p, "POST", "/customers", "{\"name\":null}", 400, v, "name");
        expect_problem(p, "POST", "/customers", "{\"name\":5}", 400, v, "name");
        expect_problem(p, "POST", "/customers", "{\"name\":\"123456789012345678901\"}", 400, v,
                       "name");
        /* varchar(20) counts code points: 20 two-byte letters fit, 21 do not */
        create(p, "/customers",
               "{\"name\":\"\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
               "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\"}",
               NULL);
        expect_problem(p, "POST", "/customers",
                       "{\"name\":\"\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
                       "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\"}",
                       400, v, "name");
        expect_problem(p, "POST", "/customers", "{\"name\":\"x\",\"tier\":\"2\"}", 400, v, "tier");
        expect_problem(p, "POST", "/customers", "{\"name\":\"x\",\"tier\":70000}", 400, v, "tier");
        expect_problem(p, "POST", "/customers", "{\"name\":\"x\",\"tier\":9}", 400, v,
                       "customers_tier_range");
        expect_problem(p, "POST", "/customers", "{\"name\":\"x\",\"balance\":\"1e\"}", 400, v,
                       "balance");
        /* numeric(14, 4): 10 digits before the point, the 11th is named */
        expect_problem(p, "POST", "/customers", "{\"name\":\"x\",\"balance\":\"12345678901\"}", 400,
                       v, "balance");
        expect_problem(p, "POST", "/customers", "{\"name\":\"x\",\"balance\":1e12}", 400, v,
                       "balance");
        expect_problem(p, "POST", "/customers", "{\"name\":\"x\",\"balance\":\"1.5e10\"}", 400, v,
                       "balance");
        expect_problem(p, "POST", "/customers", "{\"name\":\"x\",\"birthday\":\"03/02/1990\"}", 400,
                       v, "birthday");
        expect_problem(p, "POST", "/customers", "{\"name\":\"x\",\"birthday\":\"1990-02-30\"}", 400,
                       v, NULL);
        expect_problem(p, "POST", "/customers", "{\"name\":\"x\",\"tags\":\"a\"}", 400, v, "tags");
        expect_problem(p, "POST", "/customers", "{\"name\":\"x\",\"vip\":1}", 400, v, "vip");
        expect_problem(p, "POST", "/customers", "{\"name\":\"x\",\"api_key\":\"k\"}", 400, v,
                       "api_key");
        expect_problem(p, "POST", "/customers", "{\"name\":\"x\",\"score\":1}", 400, v, "score");
        expect_problem(p, "POST", "/customers",
                       "{\"name\":\"x\",\"created_at\":\"2020-01-01T00:"
                       "00:00Z\"}",
                       400, v, "created_at");
        expect_problem(p, "POST", "/customers", "{\"name\":\"x\",\"tenant_id\":\"x\"}", 400, v,
                       "tenant_id");
        expect_problem(p, "POST", "/customers", "{\"name\":\"x\",\"email\":\"v1@x.test\"}", 409,
                       "conflict", NULL);
        expect_problem(p, "POST", "/customers", "nope", 400, "invalid_json", NULL);
        expect_problem(p, "POST", "/customers", "3", 400, v, NULL);
        snprintf(path, sizeof(path), "/customers/%s", c1);
        expect_problem(p, "PATCH", path, "{\"name\":null}", 400, v, "name");
        expect_problem(p, "PATCH", path, "{\"updated_at\":\"2020-01-01T00:00:00Z\"}", 400, v,
                       "updated_at");
        expect_problem(p, "PATCH", path, "{\"id\":\"00000000-0000-4000-8000-000000000000\"}", 400,
                       v, "id");

        /* references: to no row, and a delete of a referenced row */
        expect_problem(p, "POST", "/orders",
                       "{\"customer_id\":\"00000000-0000-4000-8000-000000000000\",\"total\":1}",
                       400, v, "customer_id");
        char o1[64];
        snprintf(body, sizeof(body), "{\"customer_id\":\"%s\",\"total\":1}", c1);
        create(p, "/orders", body, o1);
        snprintf(body, sizeof(body), "{\"customer_id\":\"%s\",\"total\":-1}", c1);
        expect_problem(p, "POST", "/orders", body, 400, v, "orders_total_check");
        expect_problem(p, "DELETE", path, NULL, 409, "conflict", NULL);
        snprintf(body, sizeof(body), "{\"order_id\":\"%s\",\"body\":\"n\"}", o1);
        create(p, "/order-notes", body, NULL);
        snprintf(path, sizeof(path), "/order-notes?order_id=eq.%s", o1);
        assert_int_equal(count(p, path), 1);
        snprintf(path, sizeof(path), "/orders/%s", o1);
        struct td_resp r;
        req(p, "DELETE", path, NULL, &r); /* ON DELETE CASCADE takes the notes */
        TD_ASSERT_STATUS(&r, 204);
        td_resp_free(&r);
        snprintf(path, sizeof(path), "/order-notes?order_id=eq.%s", o1);
        assert_int_equal(count(p, path), 0);
        snprintf(path, sizeof(path), "/customers/%s", c1);
        req(p, "DELETE", path, NULL, &r);
        TD_ASSERT_STATUS(&r, 204);
        td_resp_free(&r);
    }
}

/* Another tenant's rows are as absent as rows that exist nowhere, also as references. */
static void test_cross_tenant(void **state)
{
    (void)state;
    for (int a = 0; a < NISO; a++) {
        const struct td_principal *p = &owners[a], *q = &owners[(a + 1) % NISO];
        char theirs[64], path[160], body[256];
        create(q, "/customers", "{\"name\":\"theirs\"}", theirs);
        snprintf(path, sizeof(path), "/customers/%s", theirs);
        expect_problem(p, "GET", path, NULL, 404, "not_found", NULL);
        expect_problem(p, "PATCH", path, "{\"name\":\"mine\"}", 404, "not_found", NULL);
        expect_problem(p, "DELETE", path, NULL, 404, "not_found", NULL);
        snprintf(body, sizeof(body), "{\"customer_id\":\"%s\",\"total\":1}", theirs);
        expect_problem(p, "POST", "/orders", body, 400, "validation_failed", "customer_id");
        snprintf(path, sizeof(path), "/customers?id=eq.%s", theirs);
        assert_int_equal(count(p, path), 0);
        /* still there, unchanged, for its owner */
        snprintf(path, sizeof(path), "/customers/%s", theirs);
        struct td_resp r;
        req(q, "GET", path, NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        assert_string_equal(td_jstr(r.json, "name"), "theirs");
        td_resp_free(&r);
    }
}

static void test_roles_and_quota(void **state)
{
    (void)state;
    for (int i = 0; i < NISO; i++) {
        struct td_principal o;
        char slug[32], member[2048], email[64];
        snprintf(slug, sizeof(slug), "resq-%s", td_isolations[i]);
        snprintf(email, sizeof(email), "o@%s", slug);
        assert_int_equal(td_admin_create_tenant(&srv, slug, td_isolations[i], "free", email,
                                                "owner-password", &o),
                         201);
        assert_int_equal(
            td_add_user(&srv, slug, o.token, "m@x.test", "member-password", "member", NULL, 0),
            201);
        assert_int_equal(
            td_login(&srv, slug, "m@x.test", "member-password", member, sizeof(member)), 200);
        struct td_principal m = o;
        snprintf(m.token, sizeof(m.token), "%s", member);
        expect_problem(&m, "POST", "/price-plans", "{\"code\":\"a\"}", 403, "forbidden", NULL);
        assert_int_equal(count(&m, "/price-plans"), 0); /* read stays member */
        create(&o, "/price-plans", "{\"code\":\"a\"}", NULL);
        expect_problem(&o, "POST", "/price-plans", "[{\"code\":\"b\"},{\"code\":\"c\"}]", 403,
                       "quota_exceeded", NULL);
        create(&o, "/price-plans", "{\"code\":\"b\"}", NULL);
        expect_problem(&o, "POST", "/price-plans", "{\"code\":\"c\"}", 403, "quota_exceeded", NULL);
        assert_int_equal(count(&o, "/price-plans"), 2);
        /* projects: the free plan's 3 */
        for (int k = 0; k < 3; k++)
            create(&m, "/projects", "{\"name\":\"p\"}", NULL);
        expect_problem(&m, "POST", "/projects", "{\"name\":\"p\"}", 403, "quota_exceeded", NULL);
        /* a hidden table and a built-in one are not resources */
        expect_problem(&o, "GET", "/ledger-entries", NULL, 404, "not_found", NULL);
        expect_problem(&o, "GET", "/tenantd-migrations", NULL, 404, "not_found", NULL);
        /* the engine's routes need a token like every tenant route */
        struct td_resp r;
        char path[128];
        snprintf(path, sizeof(path), "/t/%s/customers", slug);
        td_call(&srv, "GET", path, NULL, NULL, &r);
        TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
        td_resp_free(&r);
        snprintf(path, sizeof(path), "/t/%.63s/customers", owners[i].slug);
        td_call(&srv, "GET", path, o.token, NULL, &r);
        TD_ASSERT_PROBLEM(&r, 403, "tenant_mismatch");
        td_resp_free(&r);
    }
}

static void test_audit(void **state)
{
    (void)state;
    for (int i = 0; i < NISO; i++) {
        const struct td_principal *p = &owners[i];
        char id[64], path[160];
        create(p, "/customers", "{\"name\":\"audited\",\"tier\":1,\"prefs\":{\"a\":[1,2]}}", id);
        PGconn *c = NULL;
        (void)c;
        snprintf(path, sizeof(path), "/customers/%s", id);
        struct td_resp r;
        req(p, "PATCH", path, "{\"tier\":3}", &r);
        TD_ASSERT_STATUS(&r, 200);
        td_resp_free(&r);
        req(p, "DELETE", path, NULL, &r);
        TD_ASSERT_STATUS(&r, 204);
        td_resp_free(&r);
        req(p, "GET", "/audit-logs?limit=100", NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        /* nested jsonb in audit values is compact too (SPEC 3) */
        assert_non_null(strstr(r.body, "\"prefs\":{\"a\":[1,2]}"));
        assert_null(strstr(r.body, "\"a\": ["));
        int seen = 0;
        size_t k;
        json_t *e;
        json_array_foreach(json_object_get(r.json, "data"), k, e)
        {
            if (!td_jstr(e, "entity_id") || strcmp(td_jstr(e, "entity_id"), id) != 0)
                continue;
            assert_string_equal(td_jstr(e, "entity_type"), "customers");
            assert_string_equal(td_jstr(e, "actor_id"), p->user_id);
            const char *action = td_jstr(e, "action");
            json_t *o = json_object_get(e, "old_values"), *n = json_object_get(e, "new_values");
            assert_null(json_object_get(o, "api_key"));
            assert_null(json_object_get(n, "api_key"));
            if (!strcmp(action, "create")) {
                seen |= 1;
                assert_true(json_is_null(o));
                assert_int_equal(json_integer_value(json_object_get(n, "tier")), 1);
            } else if (!strcmp(action, "update")) {
                seen |= 2;
                assert_int_equal(json_integer_value(json_object_get(o, "tier")), 1);
                assert_int_equal(json_integer_value(json_object_get(n, "tier")), 3);
                assert_true(is_ts(td_jstr(n, "updated_at")));
            } else {
                seen |= 4;
                assert_true(json_is_null(n));
                assert_string_equal(td_jstr(o, "name"), "audited");
            }
        }
        td_resp_free(&r);
        assert_int_equal(seen, 7);
    }
}

/* A table added by `tenantd migrate` is served by the running server within 2 s, also from
 * a file numbered below the newest one already applied (9102 after 9201). */
static void test_migration_while_running(void **state)
{
    (void)state;
    char path[256], cmd[1024];
    snprintf(path, sizeof(path), "%s/tenant/9102_late_table.sql", migdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("CREATE TABLE late_items (tenant_id uuid NOT NULL DEFAULT "
          "NULLIF(current_setting('app.tenant_id', true), '')::uuid, id uuid NOT NULL DEFAULT "
          "gen_random_uuid(), label text NOT NULL, PRIMARY KEY (tenant_id, id));\n",
          f);
    fclose(f);
    expect_problem(&owners[0], "GET", "/late-items", NULL, 404, "not_found", NULL);
    snprintf(cmd, sizeof(cmd),
             "env TENANTD_DATA_DIR=%s %s TENANTD_ADMIN_TOKEN=%s TENANTD_JWT_SECRET=%s "
             "TENANTD_LOG_LEVEL=warn %s migrate >%s/late.out 2>&1",
             srv.dir, migenv, TD_TEST_ADMIN_TOKEN, TD_TEST_JWT_SECRET, getenv("TENANTD_BIN"),
             srv.dir);
    assert_int_equal(system(cmd), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < NISO; i++) {
        struct td_resp r;
        for (;;) {
            req(&owners[i], "POST", "/late-items", "{\"label\":\"late\"}", &r);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            if (r.status == 201 ||
                (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 > 2000)
                break;
            td_resp_free(&r);
            usleep(50000);
        }
        TD_ASSERT_STATUS(&r, 201);
        td_resp_free(&r);
        assert_int_equal(count(&owners[i], "/late-items"), 1);
    }
}

/* /openapi.json describes each exposed table; /metrics labels its routes /{t};
 * the operator's tenant view counts rows per table. */
static void test_openapi_metrics_usage(void **state)
{
    (void)state;
    struct td_resp r;
    td_http(&srv, "GET", "/openapi.json", NULL, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    json_t *paths = json_object_get(r.json, "paths");
    assert_non_null(json_object_get(json_object_get(paths, "/customers"), "get"));
    assert_non_null(json_object_get(json_object_get(paths, "/order-notes/{id}"), "patch"));
    assert_non_null(json_object_get(json_object_get(paths, "/projects"), "post"));
    assert_null(json_object_get(paths, "/ledger-entries"));
    json_t *row = json_object_get(json_object_get(json_object_get(r.json, "components"), "schemas"),
                                  "Row_customers");
    json_t *props = json_object_get(row, "properties");
    assert_string_equal(td_jstr(json_object_get(props, "birthday"), "format"), "date");
    assert_string_equal(td_jstr(json_object_get(props, "id"), "format"), "uuid");
    assert_string_equal(td_jstr(json_object_get(props, "created_at"), "format"), "date-time");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(props, "name"), "maxLength")), 20);
    assert_null(json_object_get(props, "api_key"));
    assert_null(json_object_get(props, "tenant_id"));
    json_t *req = json_object_get(row, "required");
    assert_int_equal(json_array_size(req), 1); /* name: the only NOT NULL without a default */
    assert_string_equal(json_string_value(json_array_get(req, 0)), "name");
    td_resp_free(&r);

    assert_int_equal(count(&owners[0], "/customers?limit=1"), 1);
    td_admin(&srv, "GET", "/metrics", NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_non_null(strstr(r.body, "route=\"/{t}\",method=\"GET\",status=\"200\""));
    td_resp_free(&r);

    char path[128];
    snprintf(path, sizeof(path), "/admin/tenants/%s", owners[0].slug);
    td_admin(&srv, "GET", path, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    json_t *rows = json_object_get(json_object_get(r.json, "usage"), "rows");
    assert_true(json_is_object(rows));
    assert_true(json_integer_value(json_object_get(rows, "customers")) > 0);
    assert_true(json_is_integer(json_object_get(rows, "ledger_entries")));
    td_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crud),
        cmocka_unit_test(test_queries),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_cross_tenant),
        cmocka_unit_test(test_roles_and_quota),
        cmocka_unit_test(test_audit),
        cmocka_unit_test(test_openapi_metrics_usage),
        cmocka_unit_test(test_migration_while_running),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
