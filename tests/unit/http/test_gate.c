/*
 * test_gate.c - per-tenant admission on the event loops: at most gate_max requests of one
 * tenant run at once, more are parked (their connection suspended) and handed a slot in
 * arrival order, other tenants are not held up, and a tenant's entry goes when its last
 * request does. Includes server.c; libmicrohttpd's suspend and resume are recorded
 * instead of acting on a connection.
 */
#include <microhttpd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

static int suspended, resumed;

static void fake_suspend(struct MHD_Connection *c)
{
    (void)c;
    suspended++;
}

static void fake_resume(struct MHD_Connection *c)
{
    (void)c;
    resumed++;
}

#define MHD_suspend_connection(c) fake_suspend(c)
#define MHD_resume_connection(c) fake_resume(c)
#include "http/server.c"

static int key_of(struct http_req *req, char *out, size_t cap)
{
    snprintf(out, cap, "%s", req->path_slug);
    return 1;
}

static struct req_state *req_of(const char *tenant)
{
    struct req_state *st = td_xcalloc(1, sizeof(*st));
    st->req.path_slug = tenant;
    return st;
}

static int gates_in_use(const struct http_server *s)
{
    return (int)s->gates.count;
}

static void test_share_park_and_hand_on(void **state)
{
    (void)state;
    struct http_server *s = td_xcalloc(1, sizeof(*s));
    s->gate_max = 2;
    s->tenant_key = key_of;
    pthread_mutex_init(&s->gate_lock, NULL);
    td_htab_init(&s->gates, GATE_BUCKETS);
    struct req_state *a1 = req_of("a"), *a2 = req_of("a"), *a3 = req_of("a"), *a4 = req_of("a"),
                     *b1 = req_of("b");
    suspended = resumed = 0;
    assert_int_equal(gate_enter(s, a1), 0);
    assert_int_equal(gate_enter(s, a2), 0);
    assert_int_equal(gate_enter(s, a3), 1); /* parked */
    assert_int_equal(gate_enter(s, a4), 1);
    assert_int_equal(suspended, 2);
    assert_int_equal(gate_enter(s, b1), 0); /* another tenant is not held up */
    assert_int_equal(gates_in_use(s), 2);
    /* a slot freed goes to the oldest parked request of the same tenant */
    gate_leave(s, a1);
    assert_int_equal(resumed, 1);
    assert_true(a3->admitted);
    assert_false(a4->admitted);
    /* a parked request whose client left gives nothing back and is not resumed */
    gate_drop(s, a4);
    gate_leave(s, a2);
    assert_int_equal(resumed, 1);
    gate_leave(s, a3);
    gate_leave(s, b1);
    assert_int_equal(gates_in_use(s), 0);
    /* gate_max 0: no admission at all */
    s->gate_max = 0;
    assert_int_equal(gate_enter(s, a1), 0);
    assert_null(a1->gate);
    pthread_mutex_destroy(&s->gate_lock);
    td_htab_cleanup(&s->gates);
    free(a1);
    free(a2);
    free(a3);
    free(a4);
    free(b1);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_share_park_and_hand_on)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
