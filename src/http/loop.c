/*
 * loop.c - one event loop per thread: an epoll set holding the loop's libmicrohttpd daemon
 * (its own epoll fd, external mode), an eventfd for posted calls, and the fds modules watch
 * (PostgreSQL sockets). An iteration handles every ready fd, then runs the daemon when it has
 * work, then the flush hooks, so that what the iteration queued leaves in one write.
 */
#include "http/internal.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define LOOP_EVENTS 64

struct watch {
    int fd; /* -1 once unwatched: an event already read for it is dropped */
    unsigned events;
    http_fd_cb cb;
    void *arg;
    struct watch *next_dead;
};

struct post {
    http_loop_fn fn;
    void *arg;
    struct post *next;
};

struct flush {
    http_loop_fn fn;
    void *arg;
};

struct http_loop {
    int epfd, evfd;
    pthread_t thread;
    struct MHD_Daemon *daemon;
    http_loop_fn start, stop;
    void *owner;
    int stopping; /* loop thread only */
    int kicked;   /* run the daemon in this iteration */
    /* watched fds, indexed by fd (the daemon's and the eventfd's included) */
    struct watch **watches;
    int nwatches;
    struct watch *dead; /* unwatched during this iteration, freed at its end */
    struct flush flushes[HTTP_LOOP_SLOTS];
    int nflushes;
    void *data[HTTP_LOOP_SLOTS];
    pthread_mutex_t lock; /* posts */
    struct post *head, *tail;
    int closed; /* no more posts accepted */
};

static _Thread_local struct http_loop *current;

struct http_loop *http__loop_current(void)
{
    return current;
}

struct MHD_Daemon *http__loop_daemon(struct http_loop *l)
{
    return l->daemon;
}

void *http__loop_owner(struct http_loop *l)
{
    return l->owner;
}

void http__loop_kick(struct http_loop *l)
{
    l->kicked = 1;
}

void *http_loop_data(struct http_loop *l, int slot)
{
    return slot >= 0 && slot < HTTP_LOOP_SLOTS ? l->data[slot] : NULL;
}

void http_loop_set_data(struct http_loop *l, int slot, void *data)
{
    if (slot >= 0 && slot < HTTP_LOOP_SLOTS)
        l->data[slot] = data;
}

int http_loop_on_flush(struct http_loop *l, http_loop_fn fn, void *arg)
{
    if (l->nflushes == HTTP_LOOP_SLOTS)
        return TD_ECONFLICT;
    l->flushes[l->nflushes].fn = fn;
    l->flushes[l->nflushes++].arg = arg;
    return 0;
}

static struct watch *watch_of(struct http_loop *l, int fd)
{
    return fd >= 0 && fd < l->nwatches ? l->watches[fd] : NULL;
}

int http_loop_watch(struct http_loop *l, int fd, unsigned events, http_fd_cb cb, void *arg)
{
    if (fd < 0 || watch_of(l, fd))
        return TD_ECONFLICT;
    if (fd >= l->nwatches) {
        int n = l->nwatches ? l->nwatches : 64;
        while (n <= fd)
            n *= 2;
        l->watches = td_xrealloc(l->watches, sizeof(*l->watches) * (size_t)n);
        memset(l->watches + l->nwatches, 0, sizeof(*l->watches) * (size_t)(n - l->nwatches));
        l->nwatches = n;
    }
    struct watch *w = td_xcalloc(1, sizeof(*w));
    w->fd = fd;
    w->events = events;
    w->cb = cb;
    w->arg = arg;
    struct epoll_event ev = {.events = events, .data.ptr = w};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        td_log_error("could not watch fd %d: %s", fd, strerror(errno));
        free(w);
        return TD_EINTERNAL;
    }
    l->watches[fd] = w;
    return 0;
}

int http_loop_modify(struct http_loop *l, int fd, unsigned events)
{
    struct watch *w = watch_of(l, fd);
    if (!w)
        return TD_ENOTFOUND;
    struct epoll_event ev = {.events = events, .data.ptr = w};
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) != 0) {
        td_log_error("could not change the events of fd %d: %s", fd, strerror(errno));
        return TD_EINTERNAL;
    }
    w->events = events;
    return 0;
}

void http_loop_unwatch(struct http_loop *l, int fd)
{
    struct watch *w = watch_of(l, fd);
    if (!w)
        return;
    /* fails harmlessly when fd was closed already (the kernel dropped it from the set) */
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    l->watches[fd] = NULL;
    w->fd = -1;
    w->next_dead = l->dead;
    l->dead = w;
}

int http_loop_post(struct http_loop *l, http_loop_fn fn, void *arg)
{
    struct post *p = td_xmalloc(sizeof(*p));
    p->fn = fn;
    p->arg = arg;
    p->next = NULL;
    pthread_mutex_lock(&l->lock);
    if (l->closed) {
        pthread_mutex_unlock(&l->lock);
        free(p);
        return TD_EUNAVAILABLE;
    }
    /* only the first post of a batch writes: the loop reads the eventfd before it takes the
     * batch, so a later post either joins a batch not yet taken or finds the queue empty */
    int wake = !l->head;
    if (l->tail)
        l->tail->next = p;
    else
        l->head = p;
    l->tail = p;
    pthread_mutex_unlock(&l->lock);
    uint64_t one = 1;
    if (wake && write(l->evfd, &one, sizeof(one)) != sizeof(one))
        td_log_error("could not wake an event loop: %s", strerror(errno));
    return 0;
}

static void run_posts(struct http_loop *l, int fd, unsigned events, void *arg)
{
    (void)events;
    (void)arg;
    uint64_t n;
    if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        td_log_error("could not read an event loop's eventfd: %s", strerror(errno));
    pthread_mutex_lock(&l->lock);
    struct post *p = l->head;
    l->head = l->tail = NULL;
    pthread_mutex_unlock(&l->lock);
    while (p) {
        struct post *next = p->next;
        p->fn(l, p->arg);
        free(p);
        p = next;
    }
}

static void daemon_ready(struct http_loop *l, int fd, unsigned events, void *arg)
{
    (void)fd;
    (void)events;
    (void)arg;
    l->kicked = 1;
}

/* Milliseconds epoll may sleep: until the daemon's next timeout, 0 when it has work queued. */
static int next_timeout(struct http_loop *l, long long *deadline_ms)
{
    MHD_UNSIGNED_LONG_LONG ms;
    *deadline_ms = -1;
    if (l->kicked)
        return 0;
    if (MHD_get_timeout(l->daemon, &ms) != MHD_YES)
        return -1;
    if (ms > 60000)
        ms = 60000;
    *deadline_ms = td_now_ms() + (long long)ms;
    return (int)ms;
}

static void iterate(struct http_loop *l)
{
    struct epoll_event ev[LOOP_EVENTS];
    long long deadline;
    int timeout = next_timeout(l, &deadline);
    int n = epoll_wait(l->epfd, ev, LOOP_EVENTS, timeout);
    if (n < 0 && errno != EINTR)
        td_log_error("epoll_wait on an event loop failed: %s", strerror(errno));
    for (int i = 0; i < n; i++) {
        struct watch *w = ev[i].data.ptr;
        if (w->fd >= 0)
            w->cb(l, w->fd, ev[i].events, w->arg);
    }
    /* the daemon last: callbacks above may have resumed connections it should serve now */
    if (l->kicked || (deadline >= 0 && td_now_ms() >= deadline)) {
        l->kicked = 0;
        MHD_run(l->daemon);
    }
    for (int i = 0; i < l->nflushes; i++)
        l->flushes[i].fn(l, l->flushes[i].arg);
    while (l->dead) {
        struct watch *w = l->dead;
        l->dead = w->next_dead;
        free(w);
    }
}

static void *loop_main(void *arg)
{
    struct http_loop *l = arg;
    current = l;
    if (l->start)
        l->start(l, l->owner);
    while (!l->stopping)
        iterate(l);
    if (l->stop)
        l->stop(l, l->owner);
    /* on this thread: closing connections unwatches their fds from this loop; quiesced
     * first, so that the daemon leaves the shared listening socket to the server */
    MHD_quiesce_daemon(l->daemon);
    MHD_stop_daemon(l->daemon);
    l->daemon = NULL;
    current = NULL;
    return NULL;
}

static void loop_release(struct http_loop *l)
{
    if (l->daemon) {
        MHD_quiesce_daemon(l->daemon);
        MHD_stop_daemon(l->daemon);
    }
    for (int fd = 0; fd < l->nwatches; fd++)
        free(l->watches[fd]);
    free(l->watches);
    while (l->dead) {
        struct watch *w = l->dead;
        l->dead = w->next_dead;
        free(w);
    }
    while (l->head) {
        struct post *p = l->head;
        l->head = p->next;
        free(p);
    }
    if (l->evfd >= 0)
        close(l->evfd);
    if (l->epfd >= 0)
        close(l->epfd);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

int http__loop_start(struct MHD_Daemon *d, http_loop_fn start, http_loop_fn stop, void *arg,
                     struct http_loop **out)
{
    struct http_loop *l = td_xcalloc(1, sizeof(*l));
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
    l->daemon = d;
    l->start = start;
    l->stop = stop;
    l->owner = arg;
    pthread_mutex_init(&l->lock, NULL);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!di || l->epfd < 0 || l->evfd < 0 ||
        http_loop_watch(l, di->epoll_fd, EPOLLIN, daemon_ready, NULL) < 0 ||
        http_loop_watch(l, l->evfd, EPOLLIN, run_posts, NULL) < 0 ||
        pthread_create(&l->thread, NULL, loop_main, l) != 0) {
        td_log_error("could not start an event loop: %s", strerror(errno));
        loop_release(l);
        return TD_EUNAVAILABLE;
    }
    *out = l;
    return 0;
}

struct call {
    http_loop_fn fn;
    void *arg;
    int done;
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

static void call_run(struct http_loop *l, void *arg)
{
    struct call *c = arg;
    c->fn(l, c->arg);
    pthread_mutex_lock(&c->lock);
    c->done = 1;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

void http__loop_call(struct http_loop *l, http_loop_fn fn, void *arg)
{
    struct call c = {.fn = fn, .arg = arg};
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.cond, NULL);
    if (http_loop_post(l, call_run, &c) == 0) {
        pthread_mutex_lock(&c.lock);
        while (!c.done)
            pthread_cond_wait(&c.cond, &c.lock);
        pthread_mutex_unlock(&c.lock);
    }
    pthread_mutex_destroy(&c.lock);
    pthread_cond_destroy(&c.cond);
}

static void set_stopping(struct http_loop *l, void *arg)
{
    (void)arg;
    l->stopping = 1;
}

void http__loop_free(struct http_loop *l)
{
    if (!l)
        return;
    if (http_loop_post(l, set_stopping, NULL) == 0)
        pthread_join(l->thread, NULL);
    pthread_mutex_lock(&l->lock);
    l->closed = 1;
    pthread_mutex_unlock(&l->lock);
    loop_release(l);
}

static int parse_listen(const char *listen, struct sockaddr_in *sa)
{
    const char *colon = strrchr(listen, ':');
    if (!colon)
        return TD_EBADREQ;
    char host[64];
    size_t hl = (size_t)(colon - listen);
    if (hl >= sizeof(host))
        return TD_EBADREQ;
    memcpy(host, listen, hl);
    host[hl] = '\0';
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)atoi(colon + 1));
    if (hl == 0 || strcmp(host, "*") == 0 || strcmp(host, "0.0.0.0") == 0)
        sa->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (strcmp(host, "localhost") == 0)
        sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return TD_EBADREQ;
    return 0;
}

int http__listen_open(const char *addr)
{
    struct sockaddr_in sa;
    if (parse_listen(addr, &sa) < 0) {
        td_log_error("invalid listen address \"%s\"", addr);
        return -1;
    }
    /* one socket for all loops: each daemon's epoll set holds it and the first to accept a
     * connection serves it, as libmicrohttpd's own thread pool does */
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 1024) != 0) {
        td_log_error("could not listen on %s: %s", addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}
