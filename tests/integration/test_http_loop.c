/*
 * test_http_loop.c - the server's event loops on a real socket, with one loop thread: a handler
 * that defers is answered later from a file descriptor watched on its loop while the loop serves
 * another client; a client that hangs up while its request is deferred is seen as gone and its
 * request freed; http_loop_post runs on the loop's thread; loop_start, loop_stop and the flush
 * hooks run there too. No database: the dispatch is the test's own.
 */
#include "harness.h"

#include "http/loop.h"
#include "http/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* What the loop thread saw; read by the test thread once a request or a post completed. */
static struct {
    struct http_loop *started, *stopped; /* loop_start / loop_stop */
    pthread_t loop_thread;
    atomic_int flushes;
    atomic_int deferred;   /* requests waiting on their eventfd */
    atomic_int gone_seen;  /* continuations that found their client gone */
    atomic_int posted;     /* http_loop_post calls run on the loop's thread */
    atomic_int gone_probe; /* http_req_gone of the deferred request, read on the loop */
    struct http_req *waiting;
    int efd;
} seen;

static void on_flush(struct http_loop *l, void *arg);

static void on_loop_start(struct http_loop *l)
{
    seen.started = l;
    seen.loop_thread = pthread_self();
    assert_int_equal(http_loop_on_flush(l, on_flush, NULL), 0);
}

static void on_loop_stop(struct http_loop *l)
{
    seen.stopped = l;
}

static void on_flush(struct http_loop *l, void *arg)
{
    (void)l;
    (void)arg;
    atomic_fetch_add(&seen.flushes, 1);
}

/* The continuation: the "result" arrived on the eventfd. */
static void on_ready(struct http_loop *l, int fd, unsigned events, void *arg)
{
    (void)events;
    struct http_req *req = arg;
    uint64_t n;
    assert_int_equal(read(fd, &n, sizeof(n)), sizeof(n));
    http_loop_unwatch(l, fd);
    close(fd);
    if (http_req_gone(req))
        atomic_fetch_add(&seen.gone_seen, 1);
    else
        http_reply(req, 200, "text/plain", "late", 4);
    seen.waiting = NULL;
    atomic_fetch_sub(&seen.deferred, 1);
    http_req_resume(req);
}

static int dispatch(struct http_req *req)
{
    if (strcmp(req->url, "/defer") == 0) {
        struct http_loop *l = http_req_loop(req);
        assert_non_null(l);
        assert_ptr_equal(l, seen.started);
        int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        assert_int_equal(http_loop_watch(l, fd, EPOLLIN, on_ready, req), 0);
        seen.efd = fd;
        seen.waiting = req;
        http_req_defer(req);
        atomic_fetch_add(&seen.deferred, 1);
        return 0;
    }
    if (strcmp(req->url, "/slow") == 0) /* on the worker: no loop */
        return http_reply(req, 200, "text/plain", http_req_loop(req) ? "late" : "fast", 4);
    return http_reply(req, 200, "text/plain", "fast", 4);
}

static int slow(struct http_req *req)
{
    return strcmp(req->url, "/slow") == 0;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void send_get(int fd, const char *path)
{
    char buf[256];
    int n = snprintf(buf, sizeof(buf), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    assert_int_equal(write(fd, buf, (size_t)n), n);
}

/* The answer read within ms milliseconds (the status line and body are all the test looks
 * at), or "" when none came. */
static const char *read_answer(int fd, int ms, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (len + 1 < cap && poll(&p, 1, ms) == 1) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n") && (strstr(buf, "fast") || strstr(buf, "late")))
            break;
    }
    return buf;
}

static int wait_for(atomic_int *v, int want, int ms)
{
    for (int i = 0; i < ms && atomic_load(v) != want; i++)
        usleep(1000);
    return atomic_load(v);
}

static void probe_gone(struct http_loop *l, void *arg)
{
    (void)arg;
    assert_ptr_equal(l, seen.started);
    assert_true(pthread_equal(pthread_self(), seen.loop_thread));
    atomic_fetch_add(&seen.posted, 1);
    if (seen.waiting)
        atomic_store(&seen.gone_probe, http_req_gone(seen.waiting));
}

static struct http_server *start(int *port)
{
    static char listen[64];
    *port = td_free_port();
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", *port);
    struct http_server_opts o = {.listen = listen,
                                 .threads = 1,
                                 .workers = 1,
                                 .slow = slow,
                                 .dispatch = dispatch,
                                 .loop_start = on_loop_start,
                                 .loop_stop = on_loop_stop};
    struct http_server *s = NULL;
    assert_int_equal(http_server_start(&o, NULL, &s), 0);
    for (int i = 0; i < 1000 && !seen.started; i++)
        usleep(1000);
    assert_non_null(seen.started);
    return s;
}

static void wake_deferred(void)
{
    uint64_t one = 1;
    assert_int_equal(write(seen.efd, &one, sizeof(one)), sizeof(one));
}

/* A deferred request does not hold up a second client on the same (only) loop, and is answered
 * from the loop once its fd is ready. */
static void test_defer_keeps_loop_serving(void **state)
{
    (void)state;
    int port;
    char buf[1024];
    struct http_server *s = start(&port);
    int a = connect_to(port), b = connect_to(port);
    send_get(a, "/defer");
    assert_int_equal(wait_for(&seen.deferred, 1, 2000), 1);
    send_get(b, "/other");
    assert_non_null(strstr(read_answer(b, 2000, buf, sizeof(buf)), "HTTP/1.1 200"));
    assert_non_null(strstr(buf, "fast"));
    assert_string_equal(read_answer(a, 100, buf, sizeof(buf)), ""); /* still waiting */
    assert_int_equal(http_server_active(s), 1);
    wake_deferred();
    assert_non_null(strstr(read_answer(a, 2000, buf, sizeof(buf)), "HTTP/1.1 200"));
    assert_non_null(strstr(buf, "late"));
    assert_true(atomic_load(&seen.flushes) > 0);
    /* the same connection serves its next request, and a worker's answer (resumed from the
     * worker's thread, which must wake the loop) */
    send_get(a, "/again");
    assert_non_null(strstr(read_answer(a, 2000, buf, sizeof(buf)), "fast"));
    send_get(a, "/slow");
    assert_non_null(strstr(read_answer(a, 2000, buf, sizeof(buf)), "fast"));
    close(a);
    close(b);
    http_server_stop(s, 1);
    assert_ptr_equal(seen.stopped, seen.started);
    memset(&seen, 0, sizeof(seen));
}

/* The client hangs up while its request is deferred: the request reads as gone on the loop (a
 * post from this thread asks), the continuation still resumes it, and it is freed. */
static void test_client_gone_while_deferred(void **state)
{
    (void)state;
    int port;
    struct http_server *s = start(&port);
    int a = connect_to(port);
    send_get(a, "/defer");
    assert_int_equal(wait_for(&seen.deferred, 1, 2000), 1);
    assert_int_equal(http_loop_post(seen.started, probe_gone, NULL), 0);
    assert_int_equal(wait_for(&seen.posted, 1, 2000), 1);
    assert_int_equal(atomic_load(&seen.gone_probe), 0);
    close(a);
    for (int i = 0; i < 2000 && !atomic_load(&seen.gone_probe); i++) {
        assert_int_equal(http_loop_post(seen.started, probe_gone, NULL), 0);
        usleep(1000);
    }
    assert_int_equal(atomic_load(&seen.gone_probe), 1);
    wake_deferred();
    assert_int_equal(wait_for(&seen.gone_seen, 1, 2000), 1);
    for (int i = 0; i < 2000 && http_server_active(s) > 0; i++)
        usleep(1000);
    assert_int_equal(http_server_active(s), 0);
    http_server_stop(s, 1);
    memset(&seen, 0, sizeof(seen));
}

/* A request still deferred when the server stops is answered by the server (loop_stop left
 * it): the stop neither hangs nor leaks. */
static void test_stop_with_deferred(void **state)
{
    (void)state;
    int port;
    char buf[1024];
    struct http_server *s = start(&port);
    int a = connect_to(port);
    send_get(a, "/defer");
    assert_int_equal(wait_for(&seen.deferred, 1, 2000), 1);
    http_server_stop(s, 0);
    read_answer(a, 500, buf, sizeof(buf)); /* a 503 or a closed connection */
    assert_null(strstr(buf, "HTTP/1.1 200"));
    close(a);
    close(seen.efd); /* the watch went with the loop */
    memset(&seen, 0, sizeof(seen));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defer_keeps_loop_serving),
        cmocka_unit_test(test_client_gone_while_deferred),
        cmocka_unit_test(test_stop_with_deferred),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
