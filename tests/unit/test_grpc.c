/*
 * test_grpc.c - the gRPC server (net/grpc.c) driven in memory by an nghttp2 client session.
 *
 * Each test makes a server with a few routes, a connection over grpc_conn_new whose output is
 * collected in a buffer, and a real nghttp2 client session; pump() moves bytes both ways until
 * neither side has anything left to say. What the client session decodes (status, headers,
 * DATA, trailers, GOAWAY, RST_STREAM) is what a gRPC client would see.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "base/buf.h"
#include "net/grpc.h"
#include "net/loop.h"
#include "test.h"

#define ECHO "/test.Svc/Echo"
#define FAIL "/test.Svc/Fail"
#define LATER "/test.Svc/Later"

typedef struct resp {
    int32_t stream_id;
    int http_status;
    char content_type[64];
    int grpc_status; /* -1 until seen */
    char grpc_message[512];
    int header_blocks;
    buf_t data;
    bool closed;
    uint32_t close_error;
    bool rst;
} resp_t;

typedef struct req_body {
    buf_t b;
    size_t off;
} req_body_t;

typedef struct client {
    nghttp2_session *s;
    grpc_server_t *srv;
    grpc_conn_t *conn;
    buf_t from_server;
    bool conn_ended; /* grpc_conn_recv returned -1 */
    bool goaway;
    resp_t resp[64];
    req_body_t body[64];
    size_t n;
    /* handler side */
    int handled;
    grpc_call_t *held[64];
    size_t n_held;
    buf_t last_msg;
} client_t;

static client_t *cur; /* the handlers' view of the test's client */

static int srv_write(const uint8_t *p, size_t n, void *arg)
{
    buf_append(arg, p, n);
    return 0;
}

static void h_echo(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    (void)arg;
    cur->handled++;
    buf_clear(&cur->last_msg);
    buf_append(&cur->last_msg, msg, len);
    grpc_reply(call, msg, len);
}

static void h_fail(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    (void)arg;
    (void)msg;
    cur->handled++;
    grpc_reply_error(call, GRPC_STATUS_INVALID_ARGUMENT, "bad input: 100%% wrong\nat byte %zu",
                     len);
}

static void h_later(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    (void)arg;
    (void)msg;
    (void)len;
    cur->handled++;
    cur->held[cur->n_held++] = call;
}

static resp_t *resp_of(client_t *c, int32_t id)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->resp[i].stream_id == id)
            return &c->resp[i];
    return NULL;
}

static int c_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                       size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                       void *user)
{
    (void)s;
    (void)flags;
    resp_t *r = resp_of(user, f->hd.stream_id);
    if (!r)
        return 0;
    char v[600];
    snprintf(v, sizeof v, "%.*s", (int)valuelen, value);
    if (namelen == 7 && memcmp(name, ":status", 7) == 0)
        r->http_status = atoi(v);
    else if (namelen == 12 && memcmp(name, "content-type", 12) == 0)
        snprintf(r->content_type, sizeof r->content_type, "%.63s", v);
    else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0)
        r->grpc_status = atoi(v);
    else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0)
        snprintf(r->grpc_message, sizeof r->grpc_message, "%.511s", v);
    return 0;
}

static int c_on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
    (void)s;
    resp_t *r = resp_of(user, f->hd.stream_id);
    if (r)
        r->header_blocks++;
    return 0;
}

static int c_on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                     void *user)
{
    (void)s;
    (void)flags;
    resp_t *r = resp_of(user, id);
    if (r)
        buf_append(&r->data, data, len);
    return 0;
}

static int c_on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
    (void)s;
    client_t *c = user;
    if (f->hd.type == NGHTTP2_GOAWAY)
        c->goaway = true;
    if (f->hd.type == NGHTTP2_RST_STREAM) {
        resp_t *r = resp_of(c, f->hd.stream_id);
        if (r)
            r->rst = true;
    }
    return 0;
}

static int c_on_close(nghttp2_session *s, int32_t id, uint32_t err, void *user)
{
    (void)s;
    resp_t *r = resp_of(user, id);
    if (r) {
        r->closed = true;
        r->close_error = err;
    }
    return 0;
}

static void client_init(client_t *c, const grpc_opts_t *opts, loop_t *loop)
{
    memset(c, 0, sizeof *c);
    cur = c;
    c->srv = grpc_server_new(loop, opts);
    grpc_route(c->srv, ECHO, h_echo, NULL);
    grpc_route(c->srv, FAIL, h_fail, NULL);
    grpc_route(c->srv, LATER, h_later, NULL);
    buf_init(&c->from_server, 1024);
    buf_init(&c->last_msg, 64);
    c->conn = grpc_conn_new(c->srv, srv_write, &c->from_server);
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, c_on_header);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, c_on_begin_headers);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, c_on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, c_on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, c_on_close);
    nghttp2_session_client_new(&c->s, cb, c);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, NULL, 0);
}

static void client_deinit(client_t *c)
{
    nghttp2_session_del(c->s);
    for (size_t i = 0; i < c->n; i++) {
        buf_deinit(&c->resp[i].data);
        buf_deinit(&c->body[i].b);
    }
    grpc_server_free(c->srv); /* frees the connection too */
    buf_deinit(&c->from_server);
    buf_deinit(&c->last_msg);
    cur = NULL;
}

/* Moves bytes both ways until both sides are quiet. */
static void pump(client_t *c)
{
    for (int round = 0; round < 1000; round++) {
        bool moved = false;
        const uint8_t *p;
        ssize_t n;
        while ((n = nghttp2_session_mem_send(c->s, &p)) > 0) {
            moved = true;
            if (!c->conn_ended && grpc_conn_recv(c->conn, p, (size_t)n) != 0)
                c->conn_ended = true;
        }
        if (buf_len(&c->from_server)) {
            moved = true;
            buf_t in = c->from_server;
            buf_init(&c->from_server, 1024);
            nghttp2_session_mem_recv(c->s, in.pos, buf_len(&in));
            buf_deinit(&in);
        }
        if (!moved)
            return;
    }
}

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *dst, size_t cap, uint32_t *flags,
                         nghttp2_data_source *src, void *user)
{
    (void)s;
    (void)id;
    (void)user;
    req_body_t *b = src->ptr;
    size_t left = buf_len(&b->b) - b->off;
    size_t n = left < cap ? left : cap;
    memcpy(dst, b->b.pos + b->off, n);
    b->off += n;
    if (b->off == buf_len(&b->b))
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static nghttp2_nv nv(const char *n, const char *v)
{
    return (nghttp2_nv){(uint8_t *)n, (uint8_t *)v, strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE};
}

/* Starts a request with raw DATA bytes (already framed); encoding/ctype NULL = default. */
static resp_t *request_raw(client_t *c, const char *path, const char *ctype, const char *encoding,
                           const void *data, size_t len)
{
    nghttp2_nv h[6];
    size_t nh = 0;
    h[nh++] = nv(":method", "POST");
    h[nh++] = nv(":scheme", "http");
    h[nh++] = nv(":path", path);
    h[nh++] = nv(":authority", "test");
    h[nh++] = nv("content-type", ctype ? ctype : "application/grpc");
    if (encoding)
        h[nh++] = nv("grpc-encoding", encoding);
    size_t i = c->n++;
    req_body_t *b = &c->body[i];
    buf_init(&b->b, len + 1);
    buf_append(&b->b, data, len);
    nghttp2_data_provider prd = {.source.ptr = b, .read_callback = body_read};
    int32_t id = nghttp2_submit_request(c->s, NULL, h, nh, &prd, NULL);
    c->resp[i].stream_id = id;
    c->resp[i].grpc_status = -1;
    buf_init(&c->resp[i].data, 64);
    return &c->resp[i];
}

/* A request with one message, optionally flagged compressed. */
static resp_t *request(client_t *c, const char *path, const char *encoding, bool compressed,
                       const void *msg, size_t len)
{
    buf_t b;
    buf_init(&b, len + 5);
    grpc_frame_prefix(buf_reserve(&b, 5), compressed, (uint32_t)len);
    b.last += 5;
    buf_append(&b, msg, len);
    resp_t *r = request_raw(c, path, NULL, encoding, b.pos, buf_len(&b));
    buf_deinit(&b);
    return r;
}

static void gzip_bytes(const void *in, size_t n, buf_t *out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    deflateInit2(&z, 9, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY);
    uLong cap = deflateBound(&z, (uLong)n);
    uint8_t *p = buf_reserve(out, cap);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = p;
    z.avail_out = (uInt)cap;
    deflate(&z, Z_FINISH);
    out->last += z.total_out;
    deflateEnd(&z);
}

/* ---- pure helpers ---- */

TEST(percent_encode)
{
    char out[64];
    grpc_percent_encode("a%b\nc \xc3\xbc~", out, sizeof out);
    CHECK_EQ_STR(out, "a%25b%0Ac %C3%BC~");
    grpc_percent_encode("abcdef", out, 4);
    CHECK_EQ_STR(out, "abc");
    grpc_percent_encode("\n\n", out, 6); /* never a cut escape */
    CHECK_EQ_STR(out, "%0A");
}

TEST(frame_prefix)
{
    uint8_t p[5];
    grpc_frame_prefix(p, true, 0x01020304u);
    CHECK_EQ_INT(p[0], 1);
    CHECK_EQ_INT(p[1], 1);
    CHECK_EQ_INT(p[2], 2);
    CHECK_EQ_INT(p[3], 3);
    CHECK_EQ_INT(p[4], 4);
    grpc_frame_prefix(p, false, 7);
    CHECK_EQ_INT(p[0], 0);
    CHECK_EQ_INT(p[4], 7);
}

TEST(route_errors)
{
    grpc_server_t *s = grpc_server_new(NULL, NULL);
    CHECK_EQ_INT(grpc_route(s, "no-slash", h_echo, NULL), ERR_INVAL);
    CHECK_EQ_INT(grpc_route(s, ECHO, h_echo, NULL), 0);
    CHECK_EQ_INT(grpc_route(s, ECHO, h_echo, NULL), ERR_EXISTS);
    CHECK_EQ_U64(grpc_server_max_recv_bytes(s), GRPC_DEFAULT_MAX_RECV_BYTES);
    grpc_server_free(s);
}

/* ---- calls ---- */

TEST(unary_echo_headers_message_trailers)
{
    client_t c;
    client_init(&c, NULL, NULL);
    resp_t *r = request(&c, ECHO, NULL, false, "hello", 5);
    pump(&c);
    CHECK_EQ_INT(c.handled, 1);
    CHECK(r->closed);
    CHECK_EQ_INT(r->close_error, NGHTTP2_NO_ERROR);
    CHECK_EQ_INT(r->http_status, 200);
    CHECK_EQ_STR(r->content_type, "application/grpc");
    CHECK_EQ_INT(r->grpc_status, 0);
    CHECK_EQ_INT(r->header_blocks, 2); /* headers, then trailers */
    REQUIRE(buf_len(&r->data) == 10);
    CHECK(memcmp(r->data.pos, "\0\0\0\0\5hello", 10) == 0);
    CHECK_EQ_INT(grpc_server_inflight(c.srv), 0);
    CHECK(!c.conn_ended);
    client_deinit(&c);
}

TEST(empty_message_and_grpc_proto_content_type)
{
    client_t c;
    client_init(&c, NULL, NULL);
    uint8_t frame[5] = {0};
    resp_t *r = request_raw(&c, ECHO, "application/grpc+proto", NULL, frame, 5);
    pump(&c);
    CHECK_EQ_INT(r->grpc_status, 0);
    CHECK_EQ_INT(buf_len(&r->data), 5);
    CHECK_EQ_INT(c.handled, 1);
    client_deinit(&c);
}

TEST(error_is_trailers_only_and_percent_encoded)
{
    client_t c;
    client_init(&c, NULL, NULL);
    resp_t *r = request(&c, FAIL, NULL, false, "xyz", 3);
    pump(&c);
    CHECK_EQ_INT(r->http_status, 200);
    CHECK_EQ_INT(r->grpc_status, GRPC_STATUS_INVALID_ARGUMENT);
    CHECK_EQ_STR(r->grpc_message, "bad input: 100%25 wrong%0Aat byte 3");
    CHECK_EQ_INT(r->header_blocks, 1);
    CHECK_EQ_INT(buf_len(&r->data), 0);
    CHECK(r->closed);
    client_deinit(&c);
}

TEST(unknown_method_is_unimplemented)
{
    client_t c;
    client_init(&c, NULL, NULL);
    resp_t *r = request(&c, "/test.Svc/Nope", NULL, false, "x", 1);
    pump(&c);
    CHECK_EQ_INT(r->grpc_status, GRPC_STATUS_UNIMPLEMENTED);
    CHECK_EQ_STR(r->grpc_message, "unknown method /test.Svc/Nope");
    CHECK_EQ_INT(c.handled, 0);
    client_deinit(&c);
}

TEST(wrong_content_type_is_415)
{
    client_t c;
    client_init(&c, NULL, NULL);
    resp_t *r = request_raw(&c, ECHO, "application/json", NULL, "{}", 2);
    resp_t *r2 = request_raw(&c, ECHO, "application/grpcx", NULL, "{}", 2);
    pump(&c);
    CHECK_EQ_INT(r->http_status, 415);
    CHECK_EQ_INT(r->grpc_status, GRPC_STATUS_INTERNAL);
    CHECK(strstr(r->grpc_message, "application/json") != NULL);
    CHECK_EQ_INT(r2->http_status, 415);
    CHECK_EQ_INT(c.handled, 0);
    client_deinit(&c);
}

TEST(size_limit_refused_from_the_prefix)
{
    client_t c;
    grpc_opts_t o = {.max_recv_bytes = 1000};
    client_init(&c, &o, NULL);
    /* Announces 200000 bytes but sends only a few: the answer must not wait for the rest. */
    uint8_t frame[5 + 100];
    memset(frame, 'a', sizeof frame);
    grpc_frame_prefix(frame, false, 200000);
    resp_t *r = request_raw(&c, ECHO, NULL, NULL, frame, sizeof frame);
    /* exactly at the limit is fine */
    buf_t big;
    buf_init(&big, 1000);
    memset(buf_reserve(&big, 1000), 'b', 1000);
    big.last += 1000;
    resp_t *ok = request(&c, ECHO, NULL, false, big.pos, 1000);
    pump(&c);
    CHECK_EQ_INT(r->grpc_status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    CHECK_EQ_STR(r->grpc_message, "received message larger than max (200000 vs. 1000 bytes)");
    CHECK(r->closed);
    CHECK_EQ_INT(ok->grpc_status, 0);
    CHECK_EQ_INT(buf_len(&ok->data), 1005);
    CHECK_EQ_INT(c.handled, 1);
    CHECK(!c.conn_ended);
    buf_deinit(&big);
    client_deinit(&c);
}

TEST(size_limit_stops_an_upload_in_progress)
{
    client_t c;
    grpc_opts_t o = {.max_recv_bytes = 1000};
    client_init(&c, &o, NULL);
    /* 300 KiB announced and sent: refused at the prefix, the stream is reset (RST_STREAM
     * NO_ERROR) so the client stops sending; the connection stays usable. */
    size_t n = 300 << 10;
    uint8_t *frame = calloc(1, n + 5);
    grpc_frame_prefix(frame, false, (uint32_t)n);
    resp_t *r = request_raw(&c, ECHO, NULL, NULL, frame, n + 5);
    pump(&c);
    free(frame);
    CHECK_EQ_INT(r->grpc_status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    CHECK(r->closed);
    CHECK(r->rst);
    resp_t *ok = request(&c, ECHO, NULL, false, "after", 5);
    pump(&c);
    CHECK_EQ_INT(ok->grpc_status, 0);
    CHECK_EQ_INT(c.handled, 1);
    client_deinit(&c);
}

TEST(gzip_message_is_inflated)
{
    client_t c;
    client_init(&c, NULL, NULL);
    char msg[3000];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (char)('a' + i % 7);
    buf_t z;
    buf_init(&z, 256);
    gzip_bytes(msg, sizeof msg, &z);
    CHECK(buf_len(&z) < sizeof msg);
    resp_t *r = request(&c, ECHO, "gzip", true, z.pos, buf_len(&z));
    /* an uncompressed message on a gzip call is allowed (flag 0) */
    resp_t *r2 = request(&c, ECHO, "gzip", false, "plain", 5);
    pump(&c);
    CHECK_EQ_INT(r->grpc_status, 0);
    CHECK_EQ_INT(buf_len(&r->data), sizeof msg + 5);
    CHECK(buf_len(&r->data) == sizeof msg + 5 && memcmp(r->data.pos + 5, msg, sizeof msg) == 0);
    CHECK_EQ_INT(r2->grpc_status, 0);
    CHECK_EQ_INT(buf_len(&r2->data), 10);
    buf_deinit(&z);
    client_deinit(&c);
}

TEST(gzip_bomb_is_resource_exhausted)
{
    client_t c;
    grpc_opts_t o = {.max_recv_bytes = 64 << 10};
    client_init(&c, &o, NULL);
    size_t n = 8 << 20;
    char *zeros = calloc(1, n);
    buf_t z;
    buf_init(&z, 256);
    gzip_bytes(zeros, n, &z);
    free(zeros);
    CHECK(buf_len(&z) < (64u << 10));
    resp_t *r = request(&c, ECHO, "gzip", true, z.pos, buf_len(&z));
    pump(&c);
    CHECK_EQ_INT(r->grpc_status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    CHECK(strstr(r->grpc_message, "decompression") != NULL);
    CHECK_EQ_INT(c.handled, 0);
    buf_deinit(&z);
    client_deinit(&c);
}

TEST(compression_errors)
{
    client_t c;
    client_init(&c, NULL, NULL);
    resp_t *noenc = request(&c, ECHO, NULL, true, "xx", 2);
    resp_t *unknown = request(&c, ECHO, "snappy", false, "xx", 2);
    resp_t *corrupt = request(&c, ECHO, "gzip", true, "not gzip at all", 15);
    pump(&c);
    CHECK_EQ_INT(noenc->grpc_status, GRPC_STATUS_INTERNAL);
    CHECK(strstr(noenc->grpc_message, "no grpc-encoding") != NULL);
    CHECK_EQ_INT(unknown->grpc_status, GRPC_STATUS_UNIMPLEMENTED);
    CHECK(strstr(unknown->grpc_message, "snappy") != NULL);
    CHECK_EQ_INT(corrupt->grpc_status, GRPC_STATUS_INTERNAL);
    CHECK(strstr(corrupt->grpc_message, "decompress") != NULL);
    CHECK_EQ_INT(c.handled, 0);
    client_deinit(&c);
}

TEST(framing_errors)
{
    client_t c;
    client_init(&c, NULL, NULL);
    uint8_t trunc[5 + 50];
    memset(trunc, 'q', sizeof trunc);
    grpc_frame_prefix(trunc, false, 100);
    resp_t *t1 = request_raw(&c, ECHO, NULL, NULL, trunc, sizeof trunc);
    resp_t *t2 = request_raw(&c, ECHO, NULL, NULL, "\0\0\0", 3);
    resp_t *none = request_raw(&c, ECHO, NULL, NULL, "", 0);
    uint8_t two[12] = {0, 0, 0, 0, 1, 'a', 0, 0, 0, 0, 1, 'b'};
    resp_t *dbl = request_raw(&c, ECHO, NULL, NULL, two, sizeof two);
    uint8_t flag[6] = {7, 0, 0, 0, 1, 'a'};
    resp_t *badflag = request_raw(&c, ECHO, NULL, NULL, flag, sizeof flag);
    pump(&c);
    CHECK_EQ_INT(t1->grpc_status, GRPC_STATUS_INTERNAL);
    CHECK_EQ_STR(
        t1->grpc_message,
        "truncated gRPC message: the prefix announced 100 bytes, the stream ended after 50");
    CHECK_EQ_INT(t2->grpc_status, GRPC_STATUS_INTERNAL);
    CHECK(strstr(t2->grpc_message, "3 of 5 prefix bytes") != NULL);
    CHECK_EQ_INT(none->grpc_status, GRPC_STATUS_INTERNAL);
    CHECK(strstr(none->grpc_message, "without a request message") != NULL);
    CHECK_EQ_INT(dbl->grpc_status, GRPC_STATUS_INTERNAL);
    CHECK(strstr(dbl->grpc_message, "more than one") != NULL);
    CHECK_EQ_INT(badflag->grpc_status, GRPC_STATUS_INTERNAL);
    CHECK(strstr(badflag->grpc_message, "compressed flag is 7") != NULL);
    CHECK_EQ_INT(c.handled, 0);
    client_deinit(&c);
}

TEST(many_concurrent_streams)
{
    client_t c;
    client_init(&c, NULL, NULL);
    resp_t *r[50];
    char msg[50][16];
    for (int i = 0; i < 50; i++) {
        snprintf(msg[i], sizeof msg[i], "m%d", i);
        r[i] = request(&c, ECHO, NULL, false, msg[i], strlen(msg[i]));
    }
    pump(&c);
    CHECK_EQ_INT(c.handled, 50);
    for (int i = 0; i < 50; i++) {
        CHECK_EQ_INT(r[i]->grpc_status, 0);
        CHECK(buf_len(&r[i]->data) == 5 + strlen(msg[i]) &&
              memcmp(r[i]->data.pos + 5, msg[i], strlen(msg[i])) == 0);
    }
    client_deinit(&c);
}

TEST(async_reply_after_the_handler_returned)
{
    client_t c;
    client_init(&c, NULL, NULL);
    resp_t *r = request(&c, LATER, NULL, false, "abc", 3);
    pump(&c);
    CHECK_EQ_INT(c.handled, 1);
    CHECK_EQ_INT(grpc_server_inflight(c.srv), 1);
    CHECK(!r->closed);
    CHECK_EQ_INT(r->header_blocks, 0);
    REQUIRE(c.n_held == 1);
    CHECK_EQ_STR(grpc_call_path(c.held[0]), LATER);
    CHECK_EQ_STR(grpc_call_header(c.held[0], "content-type"), "application/grpc");
    CHECK(!grpc_call_cancelled(c.held[0]));
    grpc_reply(c.held[0], "later", 5);
    pump(&c);
    CHECK_EQ_INT(grpc_server_inflight(c.srv), 0);
    CHECK(r->closed);
    CHECK_EQ_INT(r->grpc_status, 0);
    CHECK_EQ_INT(buf_len(&r->data), 10);
    client_deinit(&c);
}

TEST(client_reset_then_late_reply_only_frees)
{
    client_t c;
    client_init(&c, NULL, NULL);
    resp_t *r = request(&c, LATER, NULL, false, "abc", 3);
    pump(&c);
    REQUIRE(c.n_held == 1);
    nghttp2_submit_rst_stream(c.s, NGHTTP2_FLAG_NONE, r->stream_id, NGHTTP2_CANCEL);
    pump(&c);
    CHECK(grpc_call_cancelled(c.held[0]));
    grpc_reply_error(c.held[0], GRPC_STATUS_UNAVAILABLE, "too late");
    pump(&c);
    CHECK_EQ_INT(grpc_server_inflight(c.srv), 0);
    CHECK_EQ_INT(r->grpc_status, -1);
    /* the connection still serves */
    resp_t *ok = request(&c, ECHO, NULL, false, "x", 1);
    pump(&c);
    CHECK_EQ_INT(ok->grpc_status, 0);
    client_deinit(&c);
}

TEST(connection_gone_then_late_reply_only_frees)
{
    client_t c;
    client_init(&c, NULL, NULL);
    request(&c, LATER, NULL, false, "abc", 3);
    request(&c, LATER, NULL, false, "def", 3);
    pump(&c);
    REQUIRE(c.n_held == 2);
    grpc_conn_free(c.conn);
    c.conn_ended = true;
    CHECK_EQ_INT(grpc_server_n_conns(c.srv), 0);
    CHECK(grpc_call_cancelled(c.held[0]));
    grpc_reply(c.held[0], "x", 1);
    CHECK_EQ_INT(grpc_server_inflight(c.srv), 1);
    /* the second is left for grpc_server_free (ASan checks it is freed) */
    client_deinit(&c);
}

/* ---- connection-level input ---- */

typedef struct raw_conn {
    grpc_server_t *srv;
    grpc_conn_t *conn;
    buf_t out;
} raw_conn_t;

static void raw_init(raw_conn_t *r)
{
    r->srv = grpc_server_new(NULL, NULL);
    grpc_route(r->srv, ECHO, h_echo, NULL);
    buf_init(&r->out, 256);
    r->conn = grpc_conn_new(r->srv, srv_write, &r->out);
}

static void raw_deinit(raw_conn_t *r)
{
    grpc_server_free(r->srv);
    buf_deinit(&r->out);
}

TEST(junk_bytes_close_the_connection)
{
    raw_conn_t r;
    raw_init(&r);
    CHECK_EQ_INT(buf_len(&r.out), 0); /* nothing is said before the client's preface */
    CHECK_EQ_INT(grpc_conn_recv(r.conn, (const uint8_t *)"\x16\x03\x01\x02\x00\x01", 6), -1);
    CHECK(grpc_conn_done(r.conn));
    CHECK_EQ_INT(buf_len(&r.out), 0); /* nothing said at all */
    CHECK_EQ_INT(grpc_conn_recv(r.conn, (const uint8_t *)"more", 4), -1);
    raw_deinit(&r);
    /* half the preface, then something else: closed without a word (not an HTTP/1.x line) */
    raw_init(&r);
    CHECK_EQ_INT(grpc_conn_recv(r.conn, (const uint8_t *)"PRI * HTTP/2.0\r\n", 16), 0);
    CHECK_EQ_INT(grpc_conn_recv(r.conn, (const uint8_t *)"\r\nXX\r\n\r\n", 10), -1);
    CHECK_EQ_INT(buf_len(&r.out), 0);
    raw_deinit(&r);
}

TEST(http1_request_gets_a_505_saying_grpc_only)
{
    raw_conn_t r;
    raw_init(&r);
    static const char req[] = "POST /v1/traces HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK_EQ_INT(grpc_conn_recv(r.conn, (const uint8_t *)req, sizeof req - 1), -1);
    str_t said = buf_str(&r.out); /* the first bytes on the connection */
    CHECK(said.len > 0 && memcmp(said.ptr, "HTTP/1.1 505 ", 13) == 0);
    CHECK(memmem(said.ptr, said.len, "gRPC", 4) != NULL);
    raw_deinit(&r);
}

TEST(preface_split_across_reads_then_bad_frame_is_goaway)
{
    raw_conn_t r;
    raw_init(&r);
    static const char pre[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    for (size_t i = 0; i < sizeof pre - 1; i += 5) {
        size_t k = sizeof pre - 1 - i < 5 ? sizeof pre - 1 - i : 5;
        CHECK_EQ_INT(grpc_conn_recv(r.conn, (const uint8_t *)pre + i, k), 0);
    }
    /* a SETTINGS frame longer than SETTINGS_MAX_FRAME_SIZE (16384) */
    uint8_t hdr[9] = {0x00, 0x80, 0x00, 0x04, 0, 0, 0, 0, 0};
    buf_clear(&r.out);
    int rc = grpc_conn_recv(r.conn, hdr, sizeof hdr);
    CHECK_EQ_INT(rc, -1);
    CHECK(grpc_conn_done(r.conn));
    /* the server said GOAWAY (frame type 7) before giving up */
    bool goaway = false;
    for (const uint8_t *p = r.out.pos; p + 9 <= r.out.last;) {
        size_t len = (size_t)p[0] << 16 | (size_t)p[1] << 8 | p[2];
        if (p[3] == 7)
            goaway = true;
        p += 9 + len;
    }
    CHECK(goaway);
    raw_deinit(&r);
}

/* ---- graceful shutdown ---- */

static int shutdown_done;
static void on_shutdown_done(void *arg)
{
    shutdown_done++;
    loop_stop(arg);
}

TEST(graceful_shutdown_finishes_streams_in_flight)
{
    err_t err;
    loop_t *loop = loop_new(&err);
    REQUIRE(loop);
    client_t c;
    client_init(&c, NULL, loop);
    resp_t *r = request(&c, LATER, NULL, false, "abc", 3);
    pump(&c);
    REQUIRE(c.n_held == 1);
    shutdown_done = 0;
    grpc_server_shutdown(c.srv, 60000, on_shutdown_done, loop);
    pump(&c);
    CHECK(c.goaway);
    CHECK(!grpc_conn_done(c.conn));
    CHECK_EQ_INT(shutdown_done, 0);
    grpc_reply(c.held[0], "bye", 3);
    pump(&c);
    CHECK_EQ_INT(r->grpc_status, 0);
    CHECK_EQ_INT(buf_len(&r->data), 8);
    CHECK(grpc_conn_done(c.conn));
    grpc_conn_free(c.conn);
    loop_run(loop); /* the done callback stops it */
    CHECK_EQ_INT(shutdown_done, 1);
    client_deinit(&c);
    loop_free(loop);
}

TEST(connection_budget_bounds_messages_in_flight)
{
    client_t c;
    grpc_opts_t o = {.max_recv_bytes = 1000, .max_conn_msg_bytes = 2500};
    client_init(&c, &o, NULL);
    char m[1000];
    memset(m, 'm', sizeof m);
    resp_t *a = request(&c, LATER, NULL, false, m, sizeof m);
    resp_t *b = request(&c, LATER, NULL, false, m, sizeof m);
    resp_t *third = request(&c, LATER, NULL, false, m, sizeof m);
    pump(&c);
    CHECK_EQ_INT(c.n_held, 2);
    CHECK_EQ_INT(third->grpc_status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    CHECK(strstr(third->grpc_message, "in flight on this connection") != NULL);
    /* an answered call gives its bytes back */
    REQUIRE(c.n_held == 2);
    grpc_reply(c.held[0], "", 0);
    resp_t *fourth = request(&c, ECHO, NULL, false, m, sizeof m);
    pump(&c);
    CHECK_EQ_INT(a->grpc_status, 0);
    CHECK_EQ_INT(fourth->grpc_status, 0);
    CHECK_EQ_INT(b->grpc_status, -1);
    grpc_reply(c.held[1], "", 0);
    pump(&c);
    CHECK_EQ_INT(b->grpc_status, 0);
    client_deinit(&c);
}

/* ---- over real sockets (listener, bufferevent path) ---- */

static void stop_loop(void *arg) { loop_stop(arg); }

/* Runs the loop for ms, then reads everything the server sent on fd (non-blocking) into out;
 * returns true when the server closed the connection. */
static bool run_and_read(loop_t *loop, int fd, int64_t ms, buf_t *out)
{
    loop_timer_start(loop, ms, false, stop_loop, loop);
    loop_run(loop);
    for (;;) {
        uint8_t *p = buf_reserve(out, 4096);
        ssize_t n = recv(fd, p, 4096, MSG_DONTWAIT);
        if (n > 0) {
            out->last += n;
            continue;
        }
        return n == 0;
    }
}

static int dial_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* True when the bytes hold a frame of type t (after skipping the 24-byte preface if any). */
static bool has_frame(const buf_t *b, uint8_t t)
{
    for (const uint8_t *p = b->pos; p + 9 <= b->last;) {
        size_t len = (size_t)p[0] << 16 | (size_t)p[1] << 8 | p[2];
        if (p[3] == t)
            return true;
        p += 9 + len;
    }
    return false;
}

TEST(socket_idle_connection_gets_goaway_and_junk_is_closed)
{
    err_t err;
    loop_t *loop = loop_new(&err);
    REQUIRE(loop);
    grpc_opts_t o = {.idle_timeout_ms = 150};
    grpc_server_t *s = grpc_server_new(loop, &o);
    REQUIRE(grpc_server_listen(s, "127.0.0.1", 0, &err) == 0);
    CHECK(grpc_server_port(s) > 0);
    CHECK_EQ_INT(grpc_server_listen(s, "127.0.0.1", 0, &err), ERR_EXISTS);
    int idle = dial_port(grpc_server_port(s));
    int junk = dial_port(grpc_server_port(s));
    REQUIRE(idle >= 0 && junk >= 0);
    static const char pre[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
    CHECK_EQ_INT(send(idle, pre, sizeof pre - 1, 0), sizeof pre - 1);
    CHECK_EQ_INT(send(junk, "GET / HTTP/1.1\r\n\r\n", 18, 0), 18);
    buf_t a = BUF_INIT, b = BUF_INIT;
    bool idle_closed = run_and_read(loop, idle, 600, &a);
    bool junk_closed = run_and_read(loop, junk, 10, &b);
    CHECK(has_frame(&a, 4)); /* SETTINGS */
    CHECK(has_frame(&a, 7)); /* GOAWAY after the idle timeout */
    CHECK(idle_closed);
    CHECK(junk_closed);
    CHECK(buf_len(&b) > 13 && memcmp(b.pos, "HTTP/1.1 505 ", 13) == 0);
    CHECK_EQ_INT(grpc_server_n_conns(s), 0);
    close(idle);
    close(junk);
    buf_deinit(&a);
    buf_deinit(&b);
    grpc_server_free(s);
    loop_free(loop);
}

TEST(listen_on_a_taken_port_says_so)
{
    err_t err;
    loop_t *loop = loop_new(&err);
    REQUIRE(loop);
    grpc_server_t *a = grpc_server_new(loop, NULL), *b = grpc_server_new(loop, NULL);
    REQUIRE(grpc_server_listen(a, "127.0.0.1", 0, &err) == 0);
    err_clear(&err);
    CHECK_EQ_INT(grpc_server_listen(b, "127.0.0.1", grpc_server_port(a), &err), ERR_IO);
    CHECK(strstr(err.msg, "127.0.0.1:") != NULL && strstr(err.msg, "in use") != NULL);
    grpc_server_free(a);
    grpc_server_free(b);
    loop_free(loop);
}
