/*
 * loop.h - the event loop every network module runs on (libevent underneath; nothing outside
 * src/net includes libevent headers).
 *
 * One loop_t per server thread. Timers, fd watches and the signal callback run on the thread
 * that calls loop_run. The only calls allowed from other threads are loop_stop and
 * loop_async_send (libevent is set up with pthreads locking for exactly that).
 */
#ifndef NET_LOOP_H
#define NET_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"

typedef struct loop loop_t;
typedef struct loop_timer loop_timer_t;
typedef struct loop_watch loop_watch_t;
typedef struct loop_async loop_async_t;

typedef void (*loop_cb)(void *arg);

/* NULL (with err set) when libevent cannot create a base. The caller owns the loop. */
loop_t *loop_new(err_t *err);
/* Frees the loop; timers, watches and asyncs still registered on it are freed too. */
void loop_free(loop_t *l);
/* Runs until loop_stop (or until nothing is left to wait for). 0, or ERR_IO on a backend error. */
int loop_run(loop_t *l);
/* Makes loop_run return after the current callback. Safe from any thread and from callbacks. */
void loop_stop(loop_t *l);

/* Calls cb every interval_ms (repeat) or once after interval_ms. The timer is owned by the loop;
 * loop_timer_stop cancels and frees it (also allowed from inside cb). A one-shot timer frees
 * itself after its callback: do not stop it afterwards. */
loop_timer_t *loop_timer_start(loop_t *l, int64_t interval_ms, bool repeat, loop_cb cb, void *arg);
void loop_timer_stop(loop_timer_t *t);

/* Calls cb whenever fd is readable (level-triggered). The caller keeps owning fd and must stop
 * the watch before closing it. */
loop_watch_t *loop_watch_fd(loop_t *l, int fd, loop_cb cb, void *arg);
void loop_watch_stop(loop_watch_t *w);

/* A wake-up another thread can trigger: loop_async_send makes cb run once on the loop thread
 * soon after (several sends before it runs coalesce into one call). */
loop_async_t *loop_async_new(loop_t *l, loop_cb cb, void *arg);
void loop_async_send(loop_async_t *a);
void loop_async_free(loop_async_t *a);

/* Calls cb(signo, arg) on the loop thread for SIGINT and SIGTERM (and ignores SIGPIPE for the
 * process). Calling it again replaces the callback. */
int loop_on_signals(loop_t *l, void (*cb)(int signo, void *arg), void *arg, err_t *err);

/* Version of the event library, for `skillscope version`. */
const char *loop_backend_version(void);

#endif
