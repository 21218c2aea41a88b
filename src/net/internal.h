/*
 * internal.h - what the files of src/net share with each other and nobody else: the libevent
 * base behind a loop_t, so servers in this folder (HTTP/1.1, HTTP/2) can create their libevent
 * objects on it.
 */
#ifndef NET_INTERNAL_H
#define NET_INTERNAL_H

#include <event2/event.h>

#include "net/loop.h"

struct event_base *loop__base(loop_t *l);

#endif
