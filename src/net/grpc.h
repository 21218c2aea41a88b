/*
 * grpc.h - the gRPC server (HTTP/2 cleartext with prior knowledge, libnghttp2) for unary calls.
 *
 * A grpc_server_t listens on one port and routes each call by its :path
 * ("/package.Service/Method") to a handler registered with grpc_route. Before a handler runs the
 * server has read the request headers (POST, content-type application/grpc[+proto]), reassembled
 * the single length-prefixed request message from DATA frames, refused it with
 * RESOURCE_EXHAUSTED as soon as its 5-byte prefix announces more than the maximum message size
 * (nothing past the limit is buffered), and inflated it when the compressed flag is set
 * (grpc-encoding gzip or deflate; the inflated size is bounded while inflating). Unknown methods
 * get UNIMPLEMENTED, framing errors INTERNAL, each with a grpc-message saying what was wrong.
 *
 * Replies: a handler calls grpc_reply (status OK with a response message) or grpc_reply_error
 * exactly once, before returning or later from the loop thread (e.g. once the WAL is durable).
 * If the client resets the stream or the connection goes away first, the call is marked
 * cancelled and the late reply only frees it. Responses are HEADERS (:status 200), one
 * length-prefixed DATA message, and trailers grpc-status + grpc-message (percent-encoded);
 * errors are Trailers-Only.
 *
 * nghttp2 handles flow control (automatic WINDOW_UPDATE as data is consumed), stream
 * concurrency (SETTINGS_MAX_CONCURRENT_STREAMS), frame-size and header errors (GOAWAY). Bytes
 * that are not the HTTP/2 connection preface close the connection; an HTTP/1.x request line is
 * answered first with a plain-text 505 saying the port speaks gRPC only (the server's SETTINGS
 * wait for the client's preface, so the 505 is the first thing such a client reads).
 *
 * Connections are normally sockets accepted by the listener; grpc_conn_new makes one over a
 * caller-supplied transport (tests and the fuzzer feed bytes in memory).
 *
 * Threads: everything here runs on the loop thread.
 */
#ifndef NET_GRPC_H
#define NET_GRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/err.h"
#include "base/str.h"
#include "net/loop.h"

/* google.rpc.Code values used in grpc-status. */
enum {
    GRPC_STATUS_OK = 0,
    GRPC_STATUS_CANCELLED = 1,
    GRPC_STATUS_UNKNOWN = 2,
    GRPC_STATUS_INVALID_ARGUMENT = 3,
    GRPC_STATUS_DEADLINE_EXCEEDED = 4,
    GRPC_STATUS_NOT_FOUND = 5,
    GRPC_STATUS_RESOURCE_EXHAUSTED = 8,
    GRPC_STATUS_FAILED_PRECONDITION = 9,
    GRPC_STATUS_UNIMPLEMENTED = 12,
    GRPC_STATUS_INTERNAL = 13,
    GRPC_STATUS_UNAVAILABLE = 14,
};

/* Default maximum size of a received message, compressed or inflated (as grpc-go and grpc-js). */
#define GRPC_DEFAULT_MAX_RECV_BYTES (4u << 20)

typedef struct grpc_server grpc_server_t;
typedef struct grpc_call grpc_call_t;
typedef struct grpc_conn grpc_conn_t;

/* msg/len is the request message (inflated), valid until the call is replied to. */
typedef void (*grpc_handler_fn)(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg);

typedef struct grpc_opts {
    size_t max_recv_bytes; /* 0 = GRPC_DEFAULT_MAX_RECV_BYTES */
    uint32_t max_streams;  /* concurrent streams per connection; 0 = 100 */
    /* Request-message bytes the calls of one connection may have announced and not released
     * (until their handler replies); 0 = 64 MiB, at least 2 x max_recv_bytes. Past it a new
     * message gets RESOURCE_EXHAUSTED. */
    size_t max_conn_msg_bytes;
    /* A socket connection without calls, silent this long, gets GOAWAY; 0 = 300 s. */
    int64_t idle_timeout_ms;
} grpc_opts_t;

/* ---- server ---- */

/* The server lives on loop l, which must outlive it. opts may be NULL. */
grpc_server_t *grpc_server_new(loop_t *l, const grpc_opts_t *opts);
/* Closes the listener and every connection; calls still waiting for a reply are freed (their
 * handlers must not reply after this). */
void grpc_server_free(grpc_server_t *s);
/* Binds host:port (0 = a free port) and starts accepting. On failure err says e.g.
 * "127.0.0.1:4317: Address already in use". */
int grpc_server_listen(grpc_server_t *s, const char *host, int port, err_t *err);
/* The bound port, -1 before grpc_server_listen succeeded. */
int grpc_server_port(const grpc_server_t *s);
size_t grpc_server_max_recv_bytes(const grpc_server_t *s);
/* Registers fn for the exact path (e.g. "/opentelemetry.proto.collector.trace.v1.TraceService/
 * Export"); path is kept by pointer (a literal). ERR_INVAL for a path not starting with '/',
 * ERR_EXISTS when taken. */
int grpc_route(grpc_server_t *s, const char *path, grpc_handler_fn fn, void *arg);
/* Graceful shutdown: closes the listener, sends GOAWAY on every connection (streams already
 * started complete, new ones are refused), closes each connection once its streams are done, and
 * calls done(arg) on the loop thread when no connection is left or after timeout_ms. */
void grpc_server_shutdown(grpc_server_t *s, int64_t timeout_ms, void (*done)(void *arg), void *arg);
/* Calls handed to a handler and not yet replied to. */
size_t grpc_server_inflight(const grpc_server_t *s);
size_t grpc_server_n_conns(const grpc_server_t *s);

/* ---- call ---- */

/* The request's :path, and a header value by lowercase name (NULL when absent; the first one when
 * repeated). Both live in the call's arena. */
const char *grpc_call_path(const grpc_call_t *c);
const char *grpc_call_header(const grpc_call_t *c, const char *name);
/* Freed with the call. */
arena_t *grpc_call_arena(grpc_call_t *c);
/* Peer "ip:port" ("memory" for grpc_conn_new connections). */
const char *grpc_call_peer(const grpc_call_t *c);
/* True once the stream or connection went away; a reply is then only a free. */
bool grpc_call_cancelled(const grpc_call_t *c);

/* Sends status OK with msg (copied) as the response message, and ends the call: c must not be
 * used afterwards. */
void grpc_reply(grpc_call_t *c, const void *msg, size_t len);
/* Sends a Trailers-Only error with status code (GRPC_STATUS_*, not OK) and the formatted message,
 * and ends the call. */
void grpc_reply_error(grpc_call_t *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- connections over a caller's transport (tests, fuzzing) ---- */

/* Writes n bytes the server sends on the connection; returns 0, or -1 to drop the connection. */
typedef int (*grpc_write_fn)(const uint8_t *p, size_t n, void *arg);

/* A connection whose output goes to write(arg). Owned by the server (freed by grpc_server_free)
 * unless grpc_conn_free is called first. */
grpc_conn_t *grpc_conn_new(grpc_server_t *s, grpc_write_fn write, void *arg);
/* Feeds received bytes. Returns 0 while the connection lives, or -1 once it is finished (protocol
 * error, GOAWAY done, or junk): then everything the server had to say was written and the caller
 * must call grpc_conn_free. */
int grpc_conn_recv(grpc_conn_t *c, const uint8_t *p, size_t n);
/* True when the server has nothing more to say and wants no more input. */
bool grpc_conn_done(const grpc_conn_t *c);
void grpc_conn_free(grpc_conn_t *c);

/* ---- helpers (exposed for tests) ---- */

/* Percent-encodes a grpc-message value (bytes outside 0x20..0x7e and '%' become %XX) into out,
 * NUL-terminated, truncated to fit cap. */
void grpc_percent_encode(const char *msg, char *out, size_t cap);
/* The 5-byte message prefix: compressed flag and big-endian length. */
void grpc_frame_prefix(uint8_t out[5], bool compressed, uint32_t len);

#endif
