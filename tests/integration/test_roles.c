/*
 * test_roles.c - users and roles (SPEC §6): the owner > admin > member matrix, the last
 * owner, unique emails ignoring case, no password hash in any response, and the audit
 * log (entries for every user and project write, readable only by owner/admin of the
 * same tenant, paginated).
 */
#include "harness.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PW "correct-horse-9"
#define UA "roles-test-agent/1.0"

static struct td_server srv;

/* The tenant every test works on, its users, and a second tenant. */
static struct td_principal owner, other;
static char admin_id[64], admin_tok[2048], member_id[64], member_tok[2048];
static char project_id[64];

TD_SUITE_SERVER(srv)

/* The response body never carries a password or its hash. */
static bool no_secret(const struct td_resp *r)
{
    if (strstr(r->body, "password") || strstr(r->body, "argon2")) {
        fprintf(stderr, "  %s leaks a secret: %s\n", r->what, r->body);
        return false;
    }
    return true;
}

/* POST /t/roles/users as token; copies the new id to id_out (may be NULL). */
static long create_user(const char *token, const char *email, const char *role, char *id_out,
                        size_t size, struct td_resp *r)
{
    char body[512];
    snprintf(body, sizeof(body),
             "{\"email\":\"%s\",\"password\":\"" PW "\",\"name\":\"User %s\",\"role\":\"%s\"}",
             email, role, role);
    long st = td_call(&srv, "POST", "/t/roles/users", token, body, r);
    if (id_out)
        snprintf(id_out, size, "%s", st == 201 ? td_jstr(r->json, "id") : "");
    return st;
}

static void user_path(char *out, size_t size, const char *id)
{
    snprintf(out, size, "/t/roles/users/%s", id);
}

static void test_make_team(void **state)
{
    struct td_resp r;
    (void)state;
    assert_int_equal(
        td_admin_create_tenant(&srv, "roles", "pool", "starter", "owner@roles.test", PW, &owner),
        201);
    assert_int_equal(td_admin_create_tenant(&srv, "others", "schema", "starter",
                                            "owner@others.test", PW, &other),
                     201);

    create_user(owner.token, "admin@roles.test", "admin", admin_id, sizeof(admin_id), &r);
    TD_ASSERT_STATUS(&r, 201);
    assert_string_equal(td_jstr(r.json, "role"), "admin");
    assert_string_equal(td_jstr(r.json, "email"), "admin@roles.test");
    assert_true(no_secret(&r));
    td_resp_free(&r);
    create_user(owner.token, "member@roles.test", "member", member_id, sizeof(member_id), &r);
    TD_ASSERT_STATUS(&r, 201);
    td_resp_free(&r);
    assert_int_equal(td_login(&srv, "roles", "admin@roles.test", PW, admin_tok, sizeof(admin_tok)),
                     200);
    assert_int_equal(
        td_login(&srv, "roles", "member@roles.test", PW, member_tok, sizeof(member_tok)), 200);
}

static void test_member_cannot_write_users(void **state)
{
    struct td_resp r;
    char path[256];
    (void)state;
    assert_true(member_tok[0] != '\0');

    create_user(member_tok, "new1@roles.test", "member", NULL, 0, &r);
    TD_ASSERT_PROBLEM(&r, 403, "forbidden");
    td_resp_free(&r);
    user_path(path, sizeof(path), admin_id);
    td_call(&srv, "PATCH", path, member_tok, "{\"name\":\"Hacked\"}", &r);
    TD_ASSERT_PROBLEM(&r, 403, "forbidden");
    td_resp_free(&r);
    td_call(&srv, "DELETE", path, member_tok, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 403, "forbidden");
    td_resp_free(&r);
    /* promoting oneself is a role change: admin's business */
    user_path(path, sizeof(path), member_id);
    td_call(&srv, "PATCH", path, member_tok, "{\"role\":\"admin\"}", &r);
    TD_ASSERT_PROBLEM(&r, 403, "forbidden");
    td_resp_free(&r);

    /* reading is for everyone, and the refused writes changed nothing */
    td_call(&srv, "GET", "/t/roles/users", member_tok, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "data")), 3);
    assert_true(no_secret(&r));
    td_resp_free(&r);
    user_path(path, sizeof(path), admin_id);
    td_call(&srv, "GET", path, member_tok, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "name"), "User admin");
    assert_string_equal(td_jstr(r.json, "role"), "admin");
    td_resp_free(&r);
    td_call(&srv, "GET", "/t/roles/me", member_tok, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "role"), "member");
    assert_true(no_secret(&r));
    td_resp_free(&r);
}

static void test_admin_cannot_touch_owners(void **state)
{
    struct td_resp r;
    char path[256], id[64];
    (void)state;
    assert_true(admin_tok[0] != '\0');

    create_user(admin_tok, "owner2@roles.test", "owner", NULL, 0, &r);
    TD_ASSERT_PROBLEM(&r, 403, "forbidden");
    td_resp_free(&r);
    user_path(path, sizeof(path), owner.user_id);
    td_call(&srv, "PATCH", path, admin_tok, "{\"role\":\"member\"}", &r);
    TD_ASSERT_PROBLEM(&r, 403, "forbidden");
    td_resp_free(&r);
    td_call(&srv, "PATCH", path, admin_tok, "{\"name\":\"Renamed\"}", &r);
    TD_ASSERT_PROBLEM(&r, 403, "forbidden");
    td_resp_free(&r);
    td_call(&srv, "PATCH", path, admin_tok, "{\"password\":\"new-password-1\"}", &r);
    TD_ASSERT_PROBLEM(&r, 403, "forbidden");
    td_resp_free(&r);
    td_call(&srv, "DELETE", path, admin_tok, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 403, "forbidden");
    td_resp_free(&r);
    /* nor promote anyone to owner */
    user_path(path, sizeof(path), member_id);
    td_call(&srv, "PATCH", path, admin_tok, "{\"role\":\"owner\"}", &r);
    TD_ASSERT_PROBLEM(&r, 403, "forbidden");
    td_resp_free(&r);
    /* the owner is untouched and can still log in with the old password */
    assert_int_equal(td_login(&srv, "roles", "owner@roles.test", PW, NULL, 0), 200);

    /* an admin manages admins and members */
    create_user(admin_tok, "temp@roles.test", "member", id, sizeof(id), &r);
    TD_ASSERT_STATUS(&r, 201);
    td_resp_free(&r);
    user_path(path, sizeof(path), id);
    td_call(&srv, "PATCH", path, admin_tok, "{\"role\":\"admin\",\"name\":\"Temp Admin\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "role"), "admin");
    assert_string_equal(td_jstr(r.json, "name"), "Temp Admin");
    assert_true(no_secret(&r));
    td_resp_free(&r);
    td_call(&srv, "DELETE", path, admin_tok, NULL, &r);
    TD_ASSERT_STATUS(&r, 204);
    td_resp_free(&r);
    td_call(&srv, "GET", path, admin_tok, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 404, "not_found");
    td_resp_free(&r);
    /* the deleted user's address is free again */
    create_user(admin_tok, "temp@roles.test", "member", id, sizeof(id), &r);
    TD_ASSERT_STATUS(&r, 201);
    td_resp_free(&r);
    user_path(path, sizeof(path), id);
    td_call(&srv, "DELETE", path, admin_tok, NULL, &r);
    TD_ASSERT_STATUS(&r, 204);
    td_resp_free(&r);
}

static void test_last_owner(void **state)
{
    struct td_resp r;
    char self[256], path[256], owner2[64], tok2[2048];
    (void)state;
    assert_true(owner.token[0] != '\0');

    user_path(self, sizeof(self), owner.user_id);
    td_call(&srv, "PATCH", self, owner.token, "{\"role\":\"admin\"}", &r);
    TD_ASSERT_PROBLEM(&r, 409, "conflict");
    td_resp_free(&r);
    td_call(&srv, "DELETE", self, owner.token, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 409, "conflict");
    td_resp_free(&r);
    td_call(&srv, "GET", "/t/roles/me", owner.token, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "role"), "owner");
    td_resp_free(&r);

    /* an owner can make another owner; then either can step down, but not both */
    create_user(owner.token, "owner2@roles.test", "owner", owner2, sizeof(owner2), &r);
    TD_ASSERT_STATUS(&r, 201);
    assert_string_equal(td_jstr(r.json, "role"), "owner");
    td_resp_free(&r);
    assert_int_equal(td_login(&srv, "roles", "owner2@roles.test", PW, tok2, sizeof(tok2)), 200);
    td_call(&srv, "PATCH", self, tok2, "{\"role\":\"admin\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "role"), "admin");
    td_resp_free(&r);
    user_path(path, sizeof(path), owner2);
    td_call(&srv, "PATCH", path, tok2, "{\"role\":\"member\"}", &r);
    TD_ASSERT_PROBLEM(&r, 409, "conflict");
    td_resp_free(&r);
    td_call(&srv, "DELETE", path, tok2, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 409, "conflict");
    td_resp_free(&r);
    /* the first owner, now admin, cannot take the role back by itself */
    td_call(&srv, "PATCH", self, owner.token, "{\"role\":\"owner\"}", &r);
    TD_ASSERT_PROBLEM(&r, 403, "forbidden");
    td_resp_free(&r);
    td_call(&srv, "PATCH", self, tok2, "{\"role\":\"owner\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "role"), "owner");
    td_resp_free(&r);
    /* with two owners again, one may remove the other */
    td_call(&srv, "DELETE", path, owner.token, NULL, &r);
    TD_ASSERT_STATUS(&r, 204);
    td_resp_free(&r);
    /* a removed user's token stops working at once */
    td_call(&srv, "GET", "/t/roles/me", tok2, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
    td_resp_free(&r);
}

static void test_duplicate_email(void **state)
{
    static const char *const dups[] = {"member@roles.test", "MEMBER@roles.test",
                                       "Member@Roles.Test", "owner@ROLES.test"};
    struct td_resp r;
    bool ok = true;
    (void)state;
    for (size_t i = 0; i < sizeof(dups) / sizeof(dups[0]); i++) {
        create_user(owner.token, dups[i], "member", NULL, 0, &r);
        if (!td_check_problem(&r, 409, "conflict")) {
            fprintf(stderr, "  email: %s\n", dups[i]);
            ok = false;
        }
        td_resp_free(&r);
    }
    assert_true(ok);
    /* unique per tenant only: another tenant may use the same address */
    char body[256];
    snprintf(body, sizeof(body),
             "{\"email\":\"member@roles.test\",\"password\":\"" PW
             "\",\"name\":\"Twin\",\"role\":\"member\"}");
    td_call(&srv, "POST", "/t/others/users", other.token, body, &r);
    TD_ASSERT_STATUS(&r, 201);
    td_resp_free(&r);
}

static void test_user_validation(void **state)
{
    static const char *const bad[] = {
        "{\"email\":\"x@roles.test\",\"password\":\"" PW "\",\"name\":\"X\",\"role\":\"boss\"}",
        "{\"email\":\"x@roles.test\",\"password\":\"" PW "\",\"name\":\"X\"}",
        "{\"email\":\"x@roles.test\",\"password\":\"short\",\"name\":\"X\",\"role\":\"member\"}",
        "{\"email\":\"not-an-email\",\"password\":\"" PW "\",\"name\":\"X\",\"role\":\"member\"}",
        "{\"email\":\"x@roles.test\",\"password\":\"" PW "\",\"name\":\"  \",\"role\":\"member\"}",
        "{\"email\":\"x@roles.test\",\"password\":\"" PW
        "\",\"name\":\"X\",\"role\":\"member\",\"is_admin\":true}",
    };
    struct td_resp r;
    char path[256];
    bool ok = true;
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        td_call(&srv, "POST", "/t/roles/users", owner.token, bad[i], &r);
        if (!td_check_problem(&r, 400, "validation_failed")) {
            fprintf(stderr, "  body: %s\n", bad[i]);
            ok = false;
        }
        td_resp_free(&r);
    }
    user_path(path, sizeof(path), member_id);
    td_call(&srv, "PATCH", path, owner.token, "{\"role\":\"superuser\"}", &r);
    ok = td_check_problem(&r, 400, "validation_failed") && ok;
    td_resp_free(&r);
    user_path(path, sizeof(path), "00000000-0000-4000-8000-000000000000");
    td_call(&srv, "PATCH", path, owner.token, "{\"name\":\"Nobody\"}", &r);
    ok = td_check_problem(&r, 404, "not_found") && ok;
    td_resp_free(&r);
    td_call(&srv, "DELETE", path, owner.token, NULL, &r);
    ok = td_check_problem(&r, 404, "not_found") && ok;
    td_resp_free(&r);
    /* another tenant's user is not found, never forbidden */
    user_path(path, sizeof(path), other.user_id);
    td_call(&srv, "DELETE", path, owner.token, NULL, &r);
    ok = td_check_problem(&r, 404, "not_found") && ok;
    td_resp_free(&r);
    assert_true(ok);
}

static void test_member_edits_self(void **state)
{
    struct td_resp r;
    char path[256], tok[2048];
    (void)state;
    user_path(path, sizeof(path), member_id);
    td_call(&srv, "PATCH", path, member_tok, "{\"name\":\"Mia\",\"password\":\"new-pass-word\"}",
            &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_string_equal(td_jstr(r.json, "name"), "Mia");
    assert_string_equal(td_jstr(r.json, "role"), "member");
    assert_true(no_secret(&r));
    td_resp_free(&r);
    assert_int_equal(
        td_login(&srv, "roles", "member@roles.test", "new-pass-word", tok, sizeof(tok)), 200);
    assert_int_equal(td_login(&srv, "roles", "member@roles.test", PW, NULL, 0), 401);
}

/* Audit entries of the tenant as token sees them (limit 100); caller json_decref. */
static json_t *audit(const char *token)
{
    struct td_resp r;
    td_call(&srv, "GET", "/t/roles/audit-logs?limit=100", token, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_true(no_secret(&r));
    json_t *data = json_incref(json_object_get(r.json, "data"));
    td_resp_free(&r);
    return data;
}

/* The newest entry for (action, type, id), or NULL. */
static json_t *find_entry(json_t *data, const char *action, const char *type, const char *id)
{
    size_t i;
    json_t *e;
    json_array_foreach(data, i, e)
    {
        const char *a = td_jstr(e, "action"), *t = td_jstr(e, "entity_type"),
                   *x = td_jstr(e, "entity_id");
        if (a && t && x && !strcmp(a, action) && !strcmp(t, type) && !strcmp(x, id))
            return e;
    }
    return NULL;
}

static void test_audit_entries(void **state)
{
    struct td_resp r;
    char path[256], uid[64];
    const char *h[3];
    char auth[2200];
    (void)state;

    /* one user and one project through their whole life, with a known user agent */
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", admin_tok);
    h[0] = auth;
    h[1] = "User-Agent: " UA;
    h[2] = NULL;
    td_http(&srv, "POST", "/t/roles/users", h,
            "{\"email\":\"audited@roles.test\",\"password\":\"" PW
            "\",\"name\":\"Audited\",\"role\":\"member\"}",
            &r);
    TD_ASSERT_STATUS(&r, 201);
    snprintf(uid, sizeof(uid), "%s", td_jstr(r.json, "id"));
    td_resp_free(&r);
    user_path(path, sizeof(path), uid);
    td_http(&srv, "PATCH", path, h, "{\"role\":\"admin\",\"password\":\"another-pass\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    td_http(&srv, "DELETE", path, h, NULL, &r);
    TD_ASSERT_STATUS(&r, 204);
    td_resp_free(&r);

    td_http(&srv, "POST", "/t/roles/projects", h, "{\"name\":\"Ledger\"}", &r);
    TD_ASSERT_STATUS(&r, 201);
    snprintf(project_id, sizeof(project_id), "%s", td_jstr(r.json, "id"));
    td_resp_free(&r);
    snprintf(path, sizeof(path), "/t/roles/projects/%s", project_id);
    td_http(&srv, "PATCH", path, h, "{\"name\":\"Ledger 2\",\"status\":\"archived\"}", &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    td_http(&srv, "DELETE", path, h, NULL, &r);
    TD_ASSERT_STATUS(&r, 204);
    td_resp_free(&r);

    json_t *data = audit(owner.token);
    json_t *e = find_entry(data, "create", "user", uid);
    assert_non_null(e);
    assert_string_equal(td_jstr(e, "actor_id"), admin_id);
    assert_true(json_is_null(json_object_get(e, "old_values")));
    assert_string_equal(td_jstr(json_object_get(e, "new_values"), "email"), "audited@roles.test");
    assert_string_equal(td_jstr(json_object_get(e, "new_values"), "role"), "member");
    assert_string_equal(td_jstr(e, "ip"), "127.0.0.1");
    assert_string_equal(td_jstr(e, "user_agent"), UA);
    assert_true(td_parse_time(td_jstr(e, "created_at")) > 0);
    assert_true(td_is_uuid(td_jstr(e, "id")));

    e = find_entry(data, "update", "user", uid);
    assert_non_null(e);
    assert_string_equal(td_jstr(json_object_get(e, "old_values"), "role"), "member");
    assert_string_equal(td_jstr(json_object_get(e, "new_values"), "role"), "admin");

    e = find_entry(data, "delete", "user", uid);
    assert_non_null(e);
    assert_string_equal(td_jstr(json_object_get(e, "old_values"), "email"), "audited@roles.test");
    assert_true(json_is_null(json_object_get(e, "new_values")));

    e = find_entry(data, "create", "projects", project_id);
    assert_non_null(e);
    assert_true(json_is_null(json_object_get(e, "old_values")));
    assert_string_equal(td_jstr(json_object_get(e, "new_values"), "name"), "Ledger");
    assert_string_equal(td_jstr(e, "actor_id"), admin_id);

    e = find_entry(data, "update", "projects", project_id);
    assert_non_null(e);
    assert_string_equal(td_jstr(json_object_get(e, "old_values"), "name"), "Ledger");
    assert_string_equal(td_jstr(json_object_get(e, "old_values"), "status"), "active");
    assert_string_equal(td_jstr(json_object_get(e, "new_values"), "name"), "Ledger 2");
    assert_string_equal(td_jstr(json_object_get(e, "new_values"), "status"), "archived");

    e = find_entry(data, "delete", "projects", project_id);
    assert_non_null(e);
    assert_string_equal(td_jstr(json_object_get(e, "old_values"), "name"), "Ledger 2");
    assert_true(json_is_null(json_object_get(e, "new_values")));

    /* the writes of the earlier tests are there too: member creation, owner2's removal */
    assert_non_null(find_entry(data, "create", "user", member_id));
    assert_non_null(find_entry(data, "update", "user", member_id));
    json_decref(data);
}

/* A refused write leaves no audit entry (the entry is part of the write's transaction). */
static void test_refused_writes_not_audited(void **state)
{
    struct td_resp r;
    char path[256];
    (void)state;
    json_t *before = audit(admin_tok);
    create_user(member_tok, "sneaky@roles.test", "member", NULL, 0, &r);
    TD_ASSERT_PROBLEM(&r, 403, "forbidden");
    td_resp_free(&r);
    user_path(path, sizeof(path), owner.user_id);
    td_call(&srv, "DELETE", path, admin_tok, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 403, "forbidden");
    td_resp_free(&r);
    td_call(&srv, "PATCH", path, owner.token, "{\"role\":\"member\"}", &r);
    TD_ASSERT_PROBLEM(&r, 409, "conflict");
    td_resp_free(&r);
    create_user(owner.token, "MEMBER@roles.test", "member", NULL, 0, &r);
    TD_ASSERT_PROBLEM(&r, 409, "conflict");
    td_resp_free(&r);
    json_t *after = audit(admin_tok);
    assert_int_equal(json_array_size(after), json_array_size(before));
    json_decref(before);
    json_decref(after);
}

static void test_audit_access(void **state)
{
    struct td_resp r;
    (void)state;
    td_call(&srv, "GET", "/t/roles/audit-logs", member_tok, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 403, "forbidden");
    td_resp_free(&r);
    /* another tenant's owner: the token names its own tenant */
    td_call(&srv, "GET", "/t/roles/audit-logs", other.token, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 403, "tenant_mismatch");
    td_resp_free(&r);
    td_call(&srv, "GET", "/t/roles/audit-logs", NULL, NULL, &r);
    TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
    td_resp_free(&r);

    /* and its own log holds none of this tenant's entries */
    td_call(&srv, "GET", "/t/others/audit-logs?limit=100", other.token, NULL, &r);
    TD_ASSERT_STATUS(&r, 200);
    assert_null(strstr(r.body, project_id));
    assert_null(strstr(r.body, admin_id));
    assert_null(strstr(r.body, member_id));
    /* the owner made at creation and the twin made by that owner */
    assert_int_equal(json_array_size(json_object_get(r.json, "data")), 2);
    td_resp_free(&r);
}

static void test_audit_paging(void **state)
{
    struct td_resp r;
    char path[512];
    size_t total = 0, pages = 0;
    json_t *seen = json_object();
    (void)state;
    snprintf(path, sizeof(path), "/t/roles/audit-logs?limit=3");
    for (;;) {
        td_call(&srv, "GET", path, owner.token, NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        json_t *data = json_object_get(r.json, "data");
        size_t i;
        json_t *e;
        long long prev = -1;
        assert_true(json_array_size(data) <= 3);
        json_array_foreach(data, i, e)
        {
            const char *id = td_jstr(e, "id");
            assert_null(json_object_get(seen, id));
            json_object_set_new(seen, id, json_true());
            long long t = td_parse_time(td_jstr(e, "created_at"));
            assert_true(prev < 0 || t <= prev);
            prev = t;
            total++;
        }
        pages++;
        const char *next = td_jstr(r.json, "next_cursor");
        if (!next) {
            td_resp_free(&r);
            break;
        }
        char enc[256];
        td_urlencode(next, enc, sizeof(enc));
        snprintf(path, sizeof(path), "/t/roles/audit-logs?limit=3&cursor=%s", enc);
        td_resp_free(&r);
        assert_true(pages < 100);
    }
    json_decref(seen);
    json_t *all = audit(owner.token);
    assert_int_equal(total, json_array_size(all));
    assert_true(total > 9);
    assert_true(pages >= 4);
    json_decref(all);
}

/* ---- the last owner under concurrency ---- */

struct race_call {
    const char *method, *path, *token, *body;
    long status;
};

static void *race_run(void *arg)
{
    struct race_call *c = arg;
    struct td_resp r;
    c->status = td_call(&srv, c->method, c->path, c->token, c->body, &r);
    td_resp_free(&r);
    return NULL;
}

/*
 * Two owners remove each other at the same time: exactly one succeeds. The first call is
 * made to wait on a row lock held from SQL on its target, the second runs meanwhile, then
 * the lock goes: a check that counted owners in a stale snapshot lets both through.
 */
static void race_owners(PGconn *db, const char *locked_id, struct race_call *first,
                        struct race_call *second)
{
    pthread_t t1, t2;
    const char *p[1] = {locked_id};
    PQclear(td_sql(db, "BEGIN", 0, NULL));
    PGresult *res = td_sql(db, "SELECT 1 FROM pool.users WHERE id = $1 FOR UPDATE", 1, p);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    PQclear(res);
    assert_int_equal(pthread_create(&t1, NULL, race_run, first), 0);
    td_sleep_ms(300);
    assert_int_equal(pthread_create(&t2, NULL, race_run, second), 0);
    td_sleep_ms(300);
    PQclear(td_sql(db, "COMMIT", 0, NULL));
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
}

static void test_last_owner_race(void **state)
{
    struct td_principal a;
    struct td_resp r;
    char b_id[64], b_tok[2048], a_path[256], b_path[256], n[16];
    (void)state;
    assert_int_equal(td_admin_create_tenant(&srv, "race", "pool", "starter", "a@race.test", PW, &a),
                     201);
    td_call(&srv, "POST", "/t/race/users", a.token,
            "{\"email\":\"b@race.test\",\"password\":\"" PW "\",\"name\":\"B\",\"role\":\"owner\"}",
            &r);
    TD_ASSERT_STATUS(&r, 201);
    snprintf(b_id, sizeof(b_id), "%s", td_jstr(r.json, "id"));
    td_resp_free(&r);
    assert_int_equal(td_login(&srv, "race", "b@race.test", PW, b_tok, sizeof(b_tok)), 200);
    snprintf(a_path, sizeof(a_path), "/t/race/users/%s", a.user_id);
    snprintf(b_path, sizeof(b_path), "/t/race/users/%s", b_id);
    PGconn *db = td_db(&srv, "postgres");
    assert_non_null(db);
    const char *tp[1] = {a.tenant_id};
    const char *count_sql = "SELECT count(*) FROM pool.users WHERE tenant_id = $1 AND role = "
                            "'owner'";

    /* demote each other */
    struct race_call d1 = {"PATCH", b_path, a.token, "{\"role\":\"admin\"}", 0};
    struct race_call d2 = {"PATCH", a_path, b_tok, "{\"role\":\"admin\"}", 0};
    race_owners(db, b_id, &d1, &d2);
    fprintf(stderr, "  demotions: %ld and %ld\n", d1.status, d2.status);
    assert_true(td_sql_value(db, count_sql, 1, tp, n, sizeof(n)));
    assert_string_equal(n, "1");
    assert_true((d1.status == 200 && d2.status == 409) || (d1.status == 409 && d2.status == 200));

    /* restore two owners, then remove each other */
    const char *owner_tok = d1.status == 200 ? a.token : b_tok;
    td_call(&srv, "PATCH", d1.status == 200 ? b_path : a_path, owner_tok, "{\"role\":\"owner\"}",
            &r);
    TD_ASSERT_STATUS(&r, 200);
    td_resp_free(&r);
    struct race_call x1 = {"DELETE", b_path, a.token, NULL, 0};
    struct race_call x2 = {"DELETE", a_path, b_tok, NULL, 0};
    race_owners(db, b_id, &x1, &x2);
    fprintf(stderr, "  removals: %ld and %ld\n", x1.status, x2.status);
    assert_true(td_sql_value(db, count_sql, 1, tp, n, sizeof(n)));
    assert_string_equal(n, "1");
    assert_true((x1.status == 204 && x2.status == 409) || (x1.status == 409 && x2.status == 204));
    PQfinish(db);
}

/*
 * The user check runs in the database, in every isolation, on every request: a token
 * keeps only what the users table still grants - a demoted admin's token stops writing
 * users at once, a removed user's token stops working at once.
 */
static void test_check_every_isolation(void **state)
{
    static const char *const isos[] = {"pool", "schema", "database"};
    (void)state;
    for (size_t i = 0; i < sizeof(isos) / sizeof(isos[0]); i++) {
        struct td_principal o;
        struct td_resp r;
        char slug[32], email[64], users[64], path[160], id[64], tok[2048];
        snprintf(slug, sizeof(slug), "check-%s", isos[i]);
        snprintf(users, sizeof(users), "/t/%s/users", slug);
        snprintf(email, sizeof(email), "owner@%s.test", slug);
        assert_int_equal(td_admin_create_tenant(&srv, slug, isos[i], NULL, email, PW, &o), 201);

        snprintf(email, sizeof(email), "admin@%s.test", slug);
        assert_int_equal(td_add_user(&srv, slug, o.token, email, PW, "admin", id, sizeof(id)), 201);
        assert_int_equal(td_login(&srv, slug, email, PW, tok, sizeof(tok)), 200);
        /* an admin may add a member */
        assert_int_equal(td_add_user(&srv, slug, tok, "m1@x.test", PW, "member", NULL, 0), 201);
        /* demoted to member: the same token may read but no longer add users */
        snprintf(path, sizeof(path), "%s/%s", users, id);
        td_call(&srv, "PATCH", path, o.token, "{\"role\":\"member\"}", &r);
        TD_ASSERT_STATUS(&r, 200);
        td_resp_free(&r);
        td_call(&srv, "POST", users, tok,
                "{\"email\":\"m2@x.test\",\"password\":\"" PW
                "\",\"name\":\"M\",\"role\":\"member\"}",
                &r);
        TD_ASSERT_PROBLEM(&r, 403, "forbidden");
        td_resp_free(&r);
        /* reads remember a passed check (TENANTD_USER_CHECK_TTL): read a non-empty list
         * twice, so that the removal below must be noticed through the invalidation */
        snprintf(path, sizeof(path), "/t/%s/projects", slug);
        td_call(&srv, "POST", path, o.token, "{\"name\":\"p\"}", &r);
        TD_ASSERT_STATUS(&r, 201);
        td_resp_free(&r);
        for (int j = 0; j < 2; j++) {
            td_call(&srv, "GET", path, tok, NULL, &r);
            TD_ASSERT_STATUS(&r, 200);
            td_resp_free(&r);
        }
        /* removed: the token answers 401 */
        snprintf(path, sizeof(path), "%s/%s", users, id);
        td_call(&srv, "DELETE", path, o.token, NULL, &r);
        TD_ASSERT_STATUS(&r, 204);
        td_resp_free(&r);
        snprintf(path, sizeof(path), "/t/%s/projects", slug);
        td_call(&srv, "GET", path, tok, NULL, &r);
        TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
        td_resp_free(&r);
        /* the owner is unaffected */
        td_call(&srv, "GET", path, o.token, NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        td_resp_free(&r);
    }
}

/*
 * A user removed behind tenantd's back (SQL on the database) loses writes at once and
 * reads within TENANTD_USER_CHECK_TTL; with 0, reads at once too.
 */
static void check_sql_removal(int ttl)
{
    struct td_server s2;
    char env_ttl[64];
    snprintf(env_ttl, sizeof(env_ttl), "TENANTD_USER_CHECK_TTL=%d", ttl);
    const char *env[] = {env_ttl, NULL};
    assert_int_equal(td_server_start(&s2, env), 0);
    static const char *const isos[] = {"pool", "schema"};
    for (size_t i = 0; i < 2; i++) {
        struct td_principal o;
        struct td_resp r;
        char slug[32], email[64], path[96], db_name[40];
        snprintf(slug, sizeof(slug), "sqlrm-%s", isos[i]);
        snprintf(email, sizeof(email), "owner@%s.test", slug);
        assert_int_equal(td_admin_create_tenant(&s2, slug, isos[i], NULL, email, PW, &o), 201);
        snprintf(path, sizeof(path), "/t/%s/projects", slug);
        td_call(&s2, "POST", path, o.token, "{\"name\":\"p\"}", &r);
        TD_ASSERT_STATUS(&r, 201);
        td_resp_free(&r);
        td_call(&s2, "GET", path, o.token, NULL, &r);
        TD_ASSERT_STATUS(&r, 200);
        td_resp_free(&r);

        PGconn *db = td_db(&s2, "postgres");
        assert_non_null(db);
        char sql[160];
        if (!strcmp(isos[i], "pool")) {
            snprintf(sql, sizeof(sql), "DELETE FROM pool.users WHERE id = $1");
        } else {
            td_storage_name(o.tenant_id, db_name, sizeof(db_name));
            snprintf(sql, sizeof(sql), "DELETE FROM %s.users WHERE id = $1", db_name);
        }
        const char *p[1] = {o.user_id};
        PGresult *res = td_sql(db, sql, 1, p);
        assert_string_equal(PQcmdTuples(res), "1");
        PQclear(res);
        PQfinish(db);

        td_call(&s2, "POST", path, o.token, "{\"name\":\"q\"}", &r);
        TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
        td_resp_free(&r);
        if (ttl > 0)
            td_sleep_ms(ttl * 1000 + 200);
        td_call(&s2, "GET", path, o.token, NULL, &r);
        TD_ASSERT_PROBLEM(&r, 401, "unauthorized");
        td_resp_free(&r);
    }
    td_server_stop(&s2);
}

static void test_sql_removal_ttl(void **state)
{
    (void)state;
    check_sql_removal(1);
    check_sql_removal(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_make_team),
        cmocka_unit_test(test_member_cannot_write_users),
        cmocka_unit_test(test_admin_cannot_touch_owners),
        cmocka_unit_test(test_last_owner),
        cmocka_unit_test(test_duplicate_email),
        cmocka_unit_test(test_user_validation),
        cmocka_unit_test(test_member_edits_self),
        cmocka_unit_test(test_audit_entries),
        cmocka_unit_test(test_refused_writes_not_audited),
        cmocka_unit_test(test_audit_access),
        cmocka_unit_test(test_audit_paging),
        cmocka_unit_test(test_last_owner_race),
        cmocka_unit_test(test_check_every_isolation),
        cmocka_unit_test(test_sql_removal_ttl),
    };
    return cmocka_run_group_tests_name("roles", tests, setup, teardown);
}
