/*
 * test_resource_types.c - the resource engine (SPEC §7) on columns whose types the tenant
 * migrations create (tests/integration/migrations/9301_typed_domain.sql: an enum and a
 * domain), in every isolation: each storage has its own copy of such a type, so the
 * statements must name it as the storage's own, not the pool schema's; and an embed named
 * after a column whose name holds a double quote.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct td_server srv;
static char migdir[64];
static char migenv[128];

#define NISO TD_NISO
static struct td_principal owners[NISO];

static int setup(void **state)
{
    (void)state;
    return td_domain_suite_start(&srv, "td-rtypes", "9301_typed_domain.sql", "rt", migdir,
                                 sizeof(migdir), migenv, sizeof(migenv), owners);
}

static int teardown(void **state)
{
    (void)state;
    td_migrations_remove(migdir);
    return td_server_stop(&srv);
}

static long req(const struct td_principal *p, const char *method, const char *path,
                const char *body, struct td_resp *r)
{
    char full[512];
    snprintf(full, sizeof(full), "/t/%.63s%.400s", p->slug, path);
    return td_call(&srv, method, full, p->token, body, r);
}

/* Write, filter and update an enum and a domain column in every isolation. */
static void test_own_types(void **state)
{
    (void)state;
    for (int i = 0; i < NISO; i++) {
        const struct td_principal *p = &owners[i];
        struct td_resp r;
        fprintf(stderr, "isolation %s\n", td_isolations[i]);
        req(p, "POST", "/moods", "{\"name\":\"a\",\"mood\":\"sad\",\"code\":\"x1\"}", &r);
        TD_ASSERT_STATUS(&r, 201);
        assert_string_equal(td_jstr(r.json, "mood"), "sad");
        char path[160];
        snprintf(path, sizeof(path), "/moods/%s", td_jstr(r.json, "id"));
        td_resp_free(&r);

        req(p, "GET", "/moods?mood=eq.sad&code=eq.x1", NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        assert_int_equal(json_array_size(json_object_get(r.json, "data")), 1);
        td_resp_free(&r);

        req(p, "GET", "/moods?mood=in.(happy,sad)&order=mood.desc", NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        assert_int_equal(json_array_size(json_object_get(r.json, "data")), 1);
        td_resp_free(&r);

        req(p, "PATCH", path, "{\"mood\":\"happy\",\"code\":\"y2\"}", &r);
        TD_ASSERT_STATUS(&r, 200);
        assert_string_equal(td_jstr(r.json, "mood"), "happy");
        td_resp_free(&r);

        /* a value the type refuses is the client's fault */
        req(p, "POST", "/moods", "{\"name\":\"b\",\"mood\":\"angry\"}", &r);
        TD_ASSERT_STATUS(&r, 400);
        td_resp_free(&r);
        req(p, "GET", "/moods?mood=eq.angry", NULL, &r);
        TD_ASSERT_STATUS(&r, 400);
        td_resp_free(&r);
    }
}

/* An embed's name is the column's, quoted like any identifier. */
static void test_embed_name_quoted(void **state)
{
    (void)state;
    const struct td_principal *p = &owners[1];
    struct td_resp r;
    req(p, "POST", "/moods", "{\"name\":\"q\"}", &r);
    TD_ASSERT_STATUS(&r, 201);
    char body[128];
    snprintf(body, sizeof(body), "{\"by\\\"who_id\":\"%s\"}", td_jstr(r.json, "id"));
    td_resp_free(&r);
    req(p, "POST", "/notes", body, &r);
    TD_ASSERT_STATUS(&r, 201);
    td_resp_free(&r);
    req(p, "GET", "/notes?embed=by%22who", NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    json_t *row = json_array_get(json_object_get(r.json, "data"), 0);
    assert_string_equal(td_jstr(json_object_get(row, "by\"who"), "name"), "q");
    td_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_types),
        cmocka_unit_test(test_embed_name_quoted),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
