/*
 * loop.c - loop_t over a libevent event_base.
 *
 * Every timer, watch and async is a handle on an intrusive list of its loop, so loop_free can
 * release whatever callers did not stop. libevent is switched to pthreads locking once per
 * process (evthread_use_pthreads) before the first base is created: that is what makes
 * event_active (loop_async_send) and event_base_loopbreak (loop_stop) safe from other threads.
 * A timer may stop itself from its own callback; the handle is then freed after the callback
 * returns instead of under it.
 */
#include "net/loop.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "net/internal.h"

typedef struct handle handle_t;

struct handle {
    loop_t *loop;
    struct event *ev;
    handle_t *prev, *next;
    loop_cb cb;
    void *arg;
};

struct loop_timer {
    handle_t h;
    bool repeat;
    bool in_cb;
    bool stopped;
};

struct loop_watch {
    handle_t h;
};

struct loop_async {
    handle_t h;
};

struct loop {
    struct event_base *base;
    handle_t *handles;
    struct event *sig[2];
    void (*sig_cb)(int signo, void *arg);
    void *sig_arg;
};

static pthread_once_t threads_once = PTHREAD_ONCE_INIT;
static int threads_rc;

static void threads_init(void) { threads_rc = evthread_use_pthreads(); }

struct event_base *loop__base(loop_t *l) { return l->base; }

loop_t *loop_new(err_t *err)
{
    pthread_once(&threads_once, threads_init);
    if (threads_rc != 0) {
        err_set(err, ERR_IO, "libevent: cannot enable pthreads support");
        return NULL;
    }
    loop_t *l = calloc(1, sizeof *l);
    if (!l) {
        err_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    l->base = event_base_new();
    if (!l->base) {
        free(l);
        err_set(err, ERR_IO, "libevent: cannot create an event base");
        return NULL;
    }
    return l;
}

static void handle_link(loop_t *l, handle_t *h, loop_cb cb, void *arg)
{
    h->loop = l;
    h->cb = cb;
    h->arg = arg;
    h->prev = NULL;
    h->next = l->handles;
    if (l->handles)
        l->handles->prev = h;
    l->handles = h;
}

static void handle_free(handle_t *h)
{
    loop_t *l = h->loop;
    if (h->prev)
        h->prev->next = h->next;
    else
        l->handles = h->next;
    if (h->next)
        h->next->prev = h->prev;
    if (h->ev)
        event_free(h->ev);
    free(h);
}

void loop_free(loop_t *l)
{
    if (!l)
        return;
    while (l->handles)
        handle_free(l->handles);
    for (int i = 0; i < 2; i++)
        if (l->sig[i])
            event_free(l->sig[i]);
    event_base_free(l->base);
    free(l);
}

int loop_run(loop_t *l)
{
    return event_base_loop(l->base, EVLOOP_NO_EXIT_ON_EMPTY) < 0 ? ERR_IO : 0;
}

void loop_stop(loop_t *l) { event_base_loopbreak(l->base); }

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    loop_timer_t *t = arg;
    t->in_cb = true;
    t->h.cb(t->h.arg);
    t->in_cb = false;
    if (t->stopped || !t->repeat)
        handle_free(&t->h);
}

loop_timer_t *loop_timer_start(loop_t *l, int64_t interval_ms, bool repeat, loop_cb cb, void *arg)
{
    loop_timer_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->repeat = repeat;
    t->h.ev = event_new(l->base, -1, repeat ? EV_PERSIST : 0, timer_cb, t);
    if (!t->h.ev) {
        free(t);
        return NULL;
    }
    handle_link(l, &t->h, cb, arg);
    struct timeval tv = {(time_t)(interval_ms / 1000), (suseconds_t)(interval_ms % 1000) * 1000};
    event_add(t->h.ev, &tv);
    return t;
}

void loop_timer_stop(loop_timer_t *t)
{
    if (!t)
        return;
    if (t->in_cb) {
        t->stopped = true;
        event_del(t->h.ev);
        return;
    }
    handle_free(&t->h);
}

static void handle_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    handle_t *h = arg;
    h->cb(h->arg);
}

loop_watch_t *loop_watch_fd(loop_t *l, int fd, loop_cb cb, void *arg)
{
    loop_watch_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->h.ev = event_new(l->base, fd, EV_READ | EV_PERSIST, handle_cb, &w->h);
    if (!w->h.ev || event_add(w->h.ev, NULL) != 0) {
        if (w->h.ev)
            event_free(w->h.ev);
        free(w);
        return NULL;
    }
    handle_link(l, &w->h, cb, arg);
    return w;
}

void loop_watch_stop(loop_watch_t *w)
{
    if (w)
        handle_free(&w->h);
}

loop_async_t *loop_async_new(loop_t *l, loop_cb cb, void *arg)
{
    loop_async_t *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->h.ev = event_new(l->base, -1, 0, handle_cb, &a->h);
    if (!a->h.ev) {
        free(a);
        return NULL;
    }
    handle_link(l, &a->h, cb, arg);
    return a;
}

void loop_async_send(loop_async_t *a) { event_active(a->h.ev, EV_TIMEOUT, 0); }

void loop_async_free(loop_async_t *a)
{
    if (a)
        handle_free(&a->h);
}

static void signal_cb(evutil_socket_t signo, short what, void *arg)
{
    (void)what;
    loop_t *l = arg;
    if (l->sig_cb)
        l->sig_cb((int)signo, l->sig_arg);
}

int loop_on_signals(loop_t *l, void (*cb)(int signo, void *arg), void *arg, err_t *err)
{
    signal(SIGPIPE, SIG_IGN);
    l->sig_cb = cb;
    l->sig_arg = arg;
    static const int signos[2] = {SIGINT, SIGTERM};
    for (int i = 0; i < 2; i++) {
        if (l->sig[i])
            continue;
        l->sig[i] = evsignal_new(l->base, signos[i], signal_cb, l);
        if (!l->sig[i] || event_add(l->sig[i], NULL) != 0)
            return err_set(err, ERR_IO, "cannot install a handler for signal %d", signos[i]);
    }
    return 0;
}

const char *loop_backend_version(void) { return event_get_version(); }
