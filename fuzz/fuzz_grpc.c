/*
 * fuzz_grpc.c - the gRPC server (net/grpc.c over nghttp2) on untrusted connection bytes.
 *
 * A server with a 4 KiB message limit and three methods (echo, fail, answer later) gets one
 * connection over an in-memory transport (grpc_conn_new) whose output is discarded. The first
 * input byte shapes the feeding: bit 0 prepends the HTTP/2 connection preface (so mutations need
 * not rediscover it), bits 1-7 pick a read size (0 = everything at once), as a socket would
 * split it. The rest is fed to grpc_conn_recv until the connection ends. Calls held by the "later"
 * method are then answered, half of them after the connection is gone. Invariants checked: the
 * in-flight count equals the calls handed out and not answered, and drops to 0; ASan/LSan catch
 * any use after free or leak on every path (reset, GOAWAY, junk, limit, inflate errors).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/grpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#define MAX_HELD 256

static grpc_call_t *held[MAX_HELD];
static size_t n_held;

static int sink(const uint8_t *p, size_t n, void *arg)
{
    (void)p;
    size_t *total = arg;
    *total += n;
    return 0;
}

static void h_echo(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    (void)arg;
    grpc_reply(call, msg, len);
}

static void h_fail(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    (void)arg;
    grpc_reply_error(call, GRPC_STATUS_INVALID_ARGUMENT, "bad %zu bytes: %.*s", len,
                     (int)(len < 40 ? len : 40), (const char *)msg);
}

static void h_later(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    (void)arg;
    (void)msg;
    (void)len;
    if (n_held == MAX_HELD) {
        grpc_reply_error(call, GRPC_STATUS_UNAVAILABLE, "busy");
        return;
    }
    held[n_held++] = call;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    grpc_opts_t o = {.max_recv_bytes = 4096, .max_streams = 16};
    grpc_server_t *s = grpc_server_new(NULL, &o);
    grpc_route(s, "/t.S/Echo", h_echo, NULL);
    grpc_route(s, "/t.S/Fail", h_fail, NULL);
    grpc_route(s, "/t.S/Later", h_later, NULL);
    n_held = 0;
    size_t out_bytes = 0;
    grpc_conn_t *c = grpc_conn_new(s, sink, &out_bytes);
    bool alive = c != NULL;
    if (alive && (mode & 1))
        alive = grpc_conn_recv(c, (const uint8_t *)PREFACE, sizeof PREFACE - 1) == 0;
    size_t step = (size_t)(mode >> 1);
    if (step == 0)
        step = size ? size : 1;
    for (size_t off = 0; alive && off < size; off += step) {
        size_t k = size - off < step ? size - off : step;
        alive = grpc_conn_recv(c, data + off, k) == 0;
    }
    if (grpc_server_inflight(s) != n_held) {
        fprintf(stderr, "inflight %zu != held %zu\n", grpc_server_inflight(s), n_held);
        abort();
    }
    /* Answer the first half with the connection still there, then drop it and answer the rest. */
    size_t half = n_held / 2;
    for (size_t i = 0; i < half; i++)
        grpc_reply(held[i], "ok", 2);
    if (c)
        grpc_conn_free(c);
    for (size_t i = half; i < n_held; i++)
        grpc_reply_error(held[i], GRPC_STATUS_UNAVAILABLE, "late");
    if (grpc_server_inflight(s) != 0) {
        fprintf(stderr, "inflight %zu after every reply\n", grpc_server_inflight(s));
        abort();
    }
    grpc_server_free(s);
    return 0;
}
