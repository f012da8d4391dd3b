/*
 * test_gate.c - the per-tenant admission gate (gate.c), deterministically: a tenant alone
 * runs as many requests as it has; while another tenant is in the gate it is held to its
 * share; freed slots go to the waiting tenants in round-robin order, a newcomer first; a
 * tenant's record goes with its last request.
 */
#include "http/gate.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define NREQ 16

/* A request: its tenant and its place in the gate. */
struct req {
    const char *tenant;
    struct http_gate_entry e;
};

static struct req reqs[NREQ];
static long long now; /* the time every call passes, in us: moved by the tests only */

static struct req *req_of(int i, const char *tenant)
{
    memset(&reqs[i], 0, sizeof(reqs[i]));
    reqs[i].tenant = tenant;
    return &reqs[i];
}

static int enter(struct http_gate *g, struct req *r)
{
    return http_gate_enter(g, &r->e, r->tenant, now);
}

/* The resume list as a string of tenant names with the request's index: "b1 a3". */
static const char *names(struct http_gate_entry *e)
{
    static char buf[256];
    buf[0] = '\0';
    for (; e; e = e->next) {
        struct req *r = (struct req *)((char *)e - offsetof(struct req, e));
        char one[16];
        snprintf(one, sizeof(one), "%s%s%d", buf[0] ? " " : "", r->tenant, (int)(r - reqs));
        strncat(buf, one, sizeof(buf) - strlen(buf) - 1);
    }
    return buf;
}

static const char *leave(struct http_gate *g, struct req *r)
{
    assert_true(r->e.admitted);
    return names(http_gate_leave(g, &r->e, now));
}

/* The old scenario, with a second tenant in the gate so the share applies: a tenant past
 * its share parks, another is not held up, a freed slot goes to the tenant's oldest parked
 * request, a parked request whose client left is never resumed. */
static void test_share_park_and_hand_on(void **state)
{
    (void)state;
    struct http_gate *g = http_gate_new(2, 0, 0, 0);
    struct req *b1 = req_of(1, "b"), *a2 = req_of(2, "a"), *a3 = req_of(3, "a"),
               *a4 = req_of(4, "a"), *a5 = req_of(5, "a");
    assert_int_equal(enter(g, b1), 0);
    assert_int_equal(enter(g, a2), 0);
    assert_int_equal(enter(g, a3), 0);
    assert_int_equal(enter(g, a4), 1); /* parked: b is in the gate */
    assert_int_equal(enter(g, a5), 1);
    assert_int_equal(http_gate_tenants(g), 2);
    assert_string_equal(leave(g, a2), "a4");
    assert_true(a4->e.admitted);
    assert_false(a5->e.admitted);
    assert_string_equal(names(http_gate_drop(g, &a5->e, now)), "");
    assert_string_equal(leave(g, a3), "");
    assert_string_equal(leave(g, a4), "");
    assert_string_equal(leave(g, b1), "");
    assert_int_equal(http_gate_tenants(g), 0);
    http_gate_free(g);

    g = http_gate_new(0, 0, 0, 0); /* no share: no gate at all */
    for (int i = 0; i < 8; i++)
        assert_int_equal(enter(g, req_of(i, "a")), 0);
    assert_int_equal(http_gate_tenants(g), 0);
    http_gate_free(g);
}

/* Alone, a tenant is not held to its share: every request runs (up to the total). */
static void test_alone_uses_every_slot(void **state)
{
    (void)state;
    struct http_gate *g = http_gate_new(1, 0, 0, 0);
    for (int i = 0; i < 8; i++)
        assert_int_equal(enter(g, req_of(i, "a")), 0);
    for (int i = 0; i < 8; i++)
        assert_string_equal(leave(g, &reqs[i]), "");
    http_gate_free(g);

    g = http_gate_new(1, 0, 4, 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(enter(g, req_of(i, "a")), 0);
    assert_int_equal(enter(g, req_of(4, "a")), 1); /* the total, not the share */
    assert_string_equal(leave(g, &reqs[0]), "a4");
    http_gate_free(g);

    /* alone 3 of 4 loops: the fourth stays free for whoever comes next, at once */
    g = http_gate_new(2, 3, 0, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(enter(g, req_of(i, "a")), 0);
    assert_int_equal(enter(g, req_of(3, "a")), 1);
    assert_int_equal(enter(g, req_of(4, "b")), 0);
    assert_string_equal(leave(g, &reqs[4]), ""); /* alone again, but at its 3 */
    assert_string_equal(leave(g, &reqs[0]), "a3");
    http_gate_free(g);
}

/* A tenant that took every slot alone is held to its share once another arrives: the
 * newcomer runs at once, the flood's excess drains, and when the newcomer leaves the flood
 * has every slot again. */
static void test_contention_holds_the_excess(void **state)
{
    (void)state;
    struct http_gate *g = http_gate_new(1, 0, 0, 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(enter(g, req_of(i, "a")), 0);
    struct req *b = req_of(10, "b");
    assert_int_equal(enter(g, b), 0);
    assert_int_equal(enter(g, req_of(4, "a")), 1);
    assert_int_equal(enter(g, req_of(5, "a")), 1);
    assert_string_equal(leave(g, &reqs[0]), ""); /* still 3 > 1 running */
    assert_string_equal(leave(g, &reqs[1]), "");
    assert_string_equal(leave(g, &reqs[2]), "");
    assert_string_equal(leave(g, &reqs[3]), "a4"); /* back under its share */
    assert_string_equal(leave(g, b), "a5");        /* alone again: the rest at once */
    assert_string_equal(leave(g, &reqs[4]), "");
    assert_string_equal(leave(g, &reqs[5]), "");
    assert_int_equal(http_gate_tenants(g), 0);
    http_gate_free(g);
}

/* With a total of 4 slots all held by a flood and a long queue behind it, a newcomer gets
 * the next free slot, not a place behind the flood's queue. */
static void test_newcomer_gets_next_slot(void **state)
{
    (void)state;
    struct http_gate *g = http_gate_new(2, 0, 4, 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(enter(g, req_of(i, "a")), 0);
    for (int i = 4; i < 10; i++)
        assert_int_equal(enter(g, req_of(i, "a")), 1);
    struct req *b = req_of(10, "b");
    assert_int_equal(enter(g, b), 1);
    assert_string_equal(leave(g, &reqs[0]), "b10");
    /* a is over its share while b is in the gate: a's slots drain to its share */
    assert_string_equal(leave(g, &reqs[1]), "");
    assert_string_equal(leave(g, &reqs[2]), "a4");
    http_gate_free(g);
}

/* Under contention the waiting tenants are served in turn, one request each, whatever the
 * length of their queues and whoever parked first. */
static void test_round_robin_order(void **state)
{
    (void)state;
    struct http_gate *g = http_gate_new(1, 0, 2, 0);
    assert_int_equal(enter(g, req_of(0, "a")), 0);
    assert_int_equal(enter(g, req_of(1, "a")), 0);
    for (int i = 2; i < 6; i++)
        assert_int_equal(enter(g, req_of(i, "a")), 1);
    assert_int_equal(enter(g, req_of(6, "b")), 1);
    assert_int_equal(enter(g, req_of(7, "b")), 1);
    assert_int_equal(enter(g, req_of(8, "c")), 1);
    const char *want[][2] = {{"0", "b6"}, {"1", "a2"}, {"6", "c8"},
                             {"2", "b7"}, {"8", "a3"}, {"7", "a4"}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_string_equal(leave(g, &reqs[atoi(want[i][0])]), want[i][1]);
    assert_string_equal(leave(g, &reqs[3]), "a5");
    assert_string_equal(leave(g, &reqs[4]), "");
    assert_string_equal(leave(g, &reqs[5]), "");
    assert_int_equal(http_gate_tenants(g), 0);
    http_gate_free(g);
}

/* The other tenant's last request ending by a drop (running or parked) ends the contention:
 * the held-back tenant's parked requests run at once. */
static void test_drop_ends_contention(void **state)
{
    (void)state;
    struct http_gate *g = http_gate_new(1, 0, 0, 0);
    struct req *b1 = req_of(0, "b"), *b2 = req_of(1, "b");
    assert_int_equal(enter(g, b1), 0);
    assert_int_equal(enter(g, req_of(2, "a")), 0);
    assert_int_equal(enter(g, req_of(3, "a")), 1);
    assert_int_equal(enter(g, b2), 1);
    assert_int_equal(enter(g, req_of(4, "a")), 1);
    assert_string_equal(names(http_gate_drop(g, &b2->e, now)), ""); /* b still runs b1 */
    assert_string_equal(names(http_gate_drop(g, &b1->e, now)), "a3 a4");
    assert_null(b1->e.tenant);
    assert_int_equal(http_gate_tenants(g), 1);
    /* a drop of an entry not in the gate changes nothing */
    assert_string_equal(names(http_gate_drop(g, &b1->e, now)), "");
    for (int i = 2; i < 5; i++)
        assert_string_equal(leave(g, &reqs[i]), "");
    assert_int_equal(http_gate_tenants(g), 0);
    http_gate_free(g);
}

/* A tenant whose last request left still holds the flood back for linger_us: its client's
 * next request is on its way. After that, the flood has every slot again. */
static void test_linger_keeps_contention(void **state)
{
    (void)state;
    now = 0;
    struct http_gate *g = http_gate_new(1, 0, 0, 1000);
    struct req *b0 = req_of(0, "b");
    assert_int_equal(enter(g, b0), 0);
    assert_int_equal(enter(g, req_of(1, "a")), 0);
    assert_int_equal(enter(g, req_of(2, "a")), 1);
    now = 100;
    assert_string_equal(leave(g, b0), ""); /* b lingers */
    assert_int_equal(http_gate_tenants(g), 2);
    now = 200;
    assert_string_equal(leave(g, &reqs[1]), "a2"); /* under its share */
    now = 500;
    assert_int_equal(enter(g, req_of(3, "a")), 1);
    now = 1100; /* b's linger is over */
    assert_string_equal(leave(g, &reqs[2]), "a3");
    assert_int_equal(enter(g, req_of(4, "a")), 0); /* alone: past its share */
    assert_int_equal(http_gate_tenants(g), 1);
    assert_string_equal(leave(g, &reqs[3]), "");
    assert_string_equal(leave(g, &reqs[4]), "");
    /* b comes back within its linger: its record is the same, counted once */
    assert_int_equal(enter(g, req_of(5, "b")), 0);
    assert_int_equal(http_gate_tenants(g), 2);
    assert_string_equal(leave(g, &reqs[5]), "");
    now = 3000;
    assert_int_equal(enter(g, req_of(6, "c")), 0); /* a and b are forgotten */
    assert_int_equal(http_gate_tenants(g), 1);
    assert_string_equal(leave(g, &reqs[6]), "");
    http_gate_free(g);
    now = 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_share_park_and_hand_on),
        cmocka_unit_test(test_alone_uses_every_slot),
        cmocka_unit_test(test_contention_holds_the_excess),
        cmocka_unit_test(test_newcomer_gets_next_slot),
        cmocka_unit_test(test_round_robin_order),
        cmocka_unit_test(test_drop_ends_contention),
        cmocka_unit_test(test_linger_keeps_contention),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
