/*
 * internal.h - what the files of src/net share with each other and nobody else: the libevent
 * base behind a loop_t, so servers in this folder (HTTP/1.1, HTTP/2) can create their libevent
 * objects on it, and how they write a listening address.
 */
#ifndef NET_INTERNAL_H
#define NET_INTERNAL_H

#include <event2/event.h>

#include "net/loop.h"

struct event_base *loop__base(loop_t *l);

/* "host:port" in URL form (an IPv6 address in brackets), as listeners name themselves in messages
 * ("127.0.0.1:3000: Address already in use") and APIs. */
void net__format_addr(char *out, size_t cap, const char *host, int port);

#endif
