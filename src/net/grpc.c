/*
 * grpc.c - unary gRPC over HTTP/2 cleartext (prior knowledge), one nghttp2 server session per
 * connection, on the libevent loop.
 *
 * Wire format (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md):
 *   request:  HEADERS :method POST, :path /Service/Method, content-type application/grpc[+proto],
 *             optional grpc-encoding; DATA carrying messages, each
 *             [1 byte compressed flag][4 bytes big-endian length][length bytes]; END_STREAM.
 *   response: HEADERS :status 200, content-type application/grpc; DATA with one message;
 *             trailing HEADERS grpc-status, grpc-message (percent-encoded), END_STREAM.
 *             An error is "Trailers-Only": one HEADERS frame carrying :status, content-type,
 *             grpc-status and grpc-message with END_STREAM.
 *
 * Byte path: the socket's bufferevent (or a caller's transport, grpc_conn_new) feeds
 * nghttp2_session_mem_recv; nghttp2 calls back per header, data chunk and frame. A call (one per
 * stream) reassembles its single message: the prefix is parsed as soon as its 5 bytes are in,
 * so an over-limit length is refused before anything past the limit is buffered. At END_STREAM
 * the message is inflated if flagged (bounded by the same limit) and handed to the route's
 * handler. Output is pulled with nghttp2_session_mem_send into the bufferevent; while more than
 * OUT_HIGH_WATER bytes wait for the socket, pulling stops until the write callback fires.
 *
 * nghttp2 must not be re-entered from its own callbacks, so a reply submitted while bytes are
 * being parsed (a handler answering at once) is only queued; the bytes go out when mem_recv
 * returns. A call whose stream closes while its handler still owns it (client reset, connection
 * lost) is detached onto the server's orphan list and freed by the late reply.
 *
 * Memory per connection is bounded: each message by max_recv_bytes (checked from its prefix and
 * while inflating), the messages of all calls on a connection by max_conn_msg_bytes (announced
 * lengths are reserved at the prefix and released at the reply), the output by OUT_HIGH_WATER.
 * Nothing is sent before the client's preface arrives; a socket that sends no preface within
 * PREFACE_TIMEOUT_S is closed, one idle (no calls, no bytes) for idle_timeout_ms gets GOAWAY.
 *
 * Shutdown sends GOAWAY with the last stream id processed: nghttp2 refuses newer streams, older
 * ones complete; nghttp2_session_want_read/want_write turn false once a GOAWAY'd session has no
 * active stream, which is when a connection closes (after its output drained).
 */
#include "net/grpc.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <nghttp2/nghttp2.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/selfmon.h"
#include "net/http.h"
#include "net/internal.h"

#define DEFAULT_MAX_STREAMS 100
#define STREAM_WINDOW_BYTES (1u << 20)
#define CONN_WINDOW_BYTES (16u << 20)
#define MAX_HEADER_BYTES (64u << 10)
#define MAX_HEADERS 64
#define OUT_HIGH_WATER (256u << 10)
/* Request-message bytes one connection may have announced and not yet released (received or
 * still arriving, handed to a handler and not answered); at least twice the message limit. */
#define CONN_MAX_MSG_BYTES (64u << 20)
#define MSG_INITIAL_BYTES (64u << 10)
#define PREFACE_TIMEOUT_S 10
/* A connection without calls that has been silent this long gets GOAWAY (clients reconnect
 * when they next need to; keepalive PINGs count as traffic). */
#define DEFAULT_IDLE_TIMEOUT_MS 300000
#define ACCEPT_ENCODING "identity,deflate,gzip"

static const char PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define PREFACE_LEN (sizeof PREFACE - 1)

typedef struct route {
    const char *path;
    grpc_handler_fn fn;
    void *arg;
} route_t;

typedef struct hdr {
    const char *name, *value;
} hdr_t;

typedef enum {
    CALL_READING,    /* headers accepted, collecting the message */
    CALL_DISPATCHED, /* the handler owns it */
    CALL_ANSWERED,   /* a response is submitted; freed when the stream closes */
} call_state_t;

struct grpc_call {
    grpc_server_t *srv;
    grpc_conn_t *conn; /* NULL once detached */
    grpc_call_t *prev, *next;
    int32_t stream_id;
    call_state_t state;
    bool cancelled;
    bool headers_done;
    arena_t arena;
    hdr_t *hdrs;
    size_t n_hdrs;
    size_t hdr_bytes;
    const char *path, *method, *content_type, *encoding;
    const route_t *route;
    uint8_t prefix[5];
    size_t prefix_len;
    bool compressed;
    uint32_t msg_len;
    size_t reserved; /* msg_len counted in conn->reserved */
    buf_t msg;       /* the message as received */
    buf_t inflated;
    buf_t out; /* response DATA: prefix + message */
    size_t out_off;
};

struct grpc_conn {
    grpc_server_t *srv;
    grpc_conn_t *prev, *next;
    nghttp2_session *session;
    struct bufferevent *bev; /* NULL for caller transports */
    grpc_write_fn write;
    void *write_arg;
    char peer[64];
    size_t preface_matched;
    bool preface_ok;
    bool finished; /* nothing more to read or write: close once the output drained */
    bool goaway_sent;
    int in_recv;
    size_t reserved; /* announced message bytes of the calls on it */
    grpc_call_t *calls;
};

struct grpc_server {
    loop_t *loop;
    struct evconnlistener *lst;
    int port;
    size_t max_recv_bytes;
    size_t max_conn_msg_bytes;
    int64_t idle_timeout_ms;
    uint32_t max_streams;
    route_t *routes;
    size_t n_routes;
    grpc_conn_t *conns;
    size_t n_conns;
    grpc_call_t *orphans;
    size_t inflight;
    bool shutting_down;
    loop_timer_t *shutdown_timer, *done_timer;
    void (*done_cb)(void *);
    void *done_arg;
};

/* Skillscope's own metrics: responses by status, request messages by encoding. */
static const char *const code_labels[17] = {
    "code=\"OK\"",
    "code=\"CANCELLED\"",
    "code=\"UNKNOWN\"",
    "code=\"INVALID_ARGUMENT\"",
    "code=\"DEADLINE_EXCEEDED\"",
    "code=\"NOT_FOUND\"",
    "code=\"ALREADY_EXISTS\"",
    "code=\"PERMISSION_DENIED\"",
    "code=\"RESOURCE_EXHAUSTED\"",
    "code=\"FAILED_PRECONDITION\"",
    "code=\"ABORTED\"",
    "code=\"OUT_OF_RANGE\"",
    "code=\"UNIMPLEMENTED\"",
    "code=\"INTERNAL\"",
    "code=\"UNAVAILABLE\"",
    "code=\"DATA_LOSS\"",
    "code=\"UNAUTHENTICATED\"",
};
static selfmon_counter_t *m_responses[17];
static selfmon_counter_t *m_msgs_identity, *m_msgs_gzip, *m_msgs_deflate;

static void metrics_init(void)
{
    for (int i = 0; i < 17; i++)
        m_responses[i] = selfmon_counter("skillscope_grpc_responses_total",
                                         "gRPC calls answered, by grpc-status.", code_labels[i]);
    static const char help[] = "gRPC request messages received, by grpc-encoding of the message.";
    m_msgs_identity =
        selfmon_counter("skillscope_grpc_received_messages_total", help, "encoding=\"identity\"");
    m_msgs_gzip =
        selfmon_counter("skillscope_grpc_received_messages_total", help, "encoding=\"gzip\"");
    m_msgs_deflate =
        selfmon_counter("skillscope_grpc_received_messages_total", help, "encoding=\"deflate\"");
}

static void count_response(int code)
{
    if (code >= 0 && code < 17 && m_responses[code])
        selfmon_counter_add(m_responses[code], 1);
}

static void conn_flush(grpc_conn_t *c);
static void conn_maybe_close(grpc_conn_t *c);
static void maybe_shutdown_done(grpc_server_t *s);

/* ---------------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------------- */

void grpc_percent_encode(const char *msg, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    if (!cap)
        return;
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        if (*p >= 0x20 && *p <= 0x7e && *p != '%') {
            if (n + 1 >= cap)
                break;
            out[n++] = (char)*p;
        } else {
            if (n + 3 >= cap)
                break;
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    out[n] = '\0';
}

void grpc_frame_prefix(uint8_t out[5], bool compressed, uint32_t len)
{
    out[0] = compressed ? 1 : 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

static nghttp2_nv make_nv(const char *name, const char *value)
{
    nghttp2_nv nv = {(uint8_t *)name, (uint8_t *)value, strlen(name), strlen(value),
                     NGHTTP2_NV_FLAG_NONE};
    return nv;
}

static const route_t *route_find(const grpc_server_t *s, const char *path)
{
    for (size_t i = 0; i < s->n_routes; i++)
        if (strcmp(s->routes[i].path, path) == 0)
            return &s->routes[i];
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Calls
 * ------------------------------------------------------------------------------------------- */

static void list_remove(grpc_call_t **head, grpc_call_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        *head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void list_push(grpc_call_t **head, grpc_call_t *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head)
        (*head)->prev = c;
    *head = c;
}

static grpc_call_t *call_new(grpc_conn_t *conn, int32_t stream_id)
{
    grpc_call_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->srv = conn->srv;
    c->conn = conn;
    c->stream_id = stream_id;
    arena_init(&c->arena, 2048);
    c->hdrs = ARENA_ARRAY(&c->arena, hdr_t, MAX_HEADERS);
    list_push(&conn->calls, c);
    return c;
}

/* Frees the request message and gives its bytes back to the connection's budget. */
static void call_release_msg(grpc_call_t *c)
{
    if (c->conn)
        c->conn->reserved -= c->reserved;
    c->reserved = 0;
    buf_deinit(&c->msg);
    buf_deinit(&c->inflated);
}

static void call_free(grpc_call_t *c)
{
    call_release_msg(c);
    if (c->conn)
        list_remove(&c->conn->calls, c);
    else
        list_remove(&c->srv->orphans, c);
    buf_deinit(&c->out);
    arena_deinit(&c->arena);
    free(c);
}

/* The handler still owns c but its stream is gone: keep it for the late reply. */
static void call_detach(grpc_call_t *c)
{
    c->conn->reserved -= c->reserved;
    c->reserved = 0;
    list_remove(&c->conn->calls, c);
    c->conn = NULL;
    c->cancelled = true;
    list_push(&c->srv->orphans, c);
}

const char *grpc_call_path(const grpc_call_t *c) { return c->path ? c->path : ""; }
arena_t *grpc_call_arena(grpc_call_t *c) { return &c->arena; }
bool grpc_call_cancelled(const grpc_call_t *c) { return c->cancelled; }
const char *grpc_call_peer(const grpc_call_t *c) { return c->conn ? c->conn->peer : "gone"; }

const char *grpc_call_header(const grpc_call_t *c, const char *name)
{
    for (size_t i = 0; i < c->n_hdrs; i++)
        if (strcmp(c->hdrs[i].name, name) == 0)
            return c->hdrs[i].value;
    return NULL;
}

/* Submits a Trailers-Only response (status != OK). The stream may still be receiving: once the
 * HEADERS frame is out, on_frame_send resets it so the client stops sending. */
static void submit_error(grpc_call_t *c, int code, const char *msg, int http_status)
{
    char status[16], st[8], enc[1024];
    snprintf(status, sizeof status, "%d", code);
    snprintf(st, sizeof st, "%d", http_status);
    grpc_percent_encode(msg, enc, sizeof enc);
    nghttp2_nv nv[5] = {make_nv(":status", st), make_nv("content-type", "application/grpc"),
                        make_nv("grpc-accept-encoding", ACCEPT_ENCODING),
                        make_nv("grpc-status", status), make_nv("grpc-message", enc)};
    c->state = CALL_ANSWERED;
    count_response(code);
    log_debug("grpc call failed", "path=\"%s\" code=%d msg=\"%s\"", grpc_call_path(c), code, msg);
    nghttp2_submit_response(c->conn->session, c->stream_id, nv, enc[0] ? 5 : 4, NULL);
}

static void fail_call(grpc_call_t *c, int code, int http_status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail_call(grpc_call_t *c, int code, int http_status, const char *fmt, ...)
{
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    call_release_msg(c);
    submit_error(c, code, msg, http_status);
}

static ssize_t read_out(nghttp2_session *session, int32_t stream_id, uint8_t *dst, size_t cap,
                        uint32_t *flags, nghttp2_data_source *src, void *user)
{
    (void)user;
    grpc_call_t *c = src->ptr;
    size_t left = buf_len(&c->out) - c->out_off;
    size_t n = left < cap ? left : cap;
    memcpy(dst, c->out.pos + c->out_off, n);
    c->out_off += n;
    if (c->out_off == buf_len(&c->out)) {
        *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        nghttp2_nv tr = make_nv("grpc-status", "0");
        if (nghttp2_submit_trailer(session, stream_id, &tr, 1) != 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return (ssize_t)n;
}

/* The call leaves the handler: count it, and free it when there is no stream to answer on. */
static bool reply_begin(grpc_call_t *c)
{
    if (c->state != CALL_DISPATCHED) {
        log_error("grpc: reply on a call not owned by a handler", "path=\"%s\"", grpc_call_path(c));
        return false;
    }
    c->srv->inflight--;
    if (!c->conn || c->cancelled) {
        call_free(c);
        return false;
    }
    return true;
}

void grpc_reply(grpc_call_t *c, const void *msg, size_t len)
{
    if (!reply_begin(c))
        return;
    grpc_conn_t *conn = c->conn;
    buf_init(&c->out, len + 5);
    grpc_frame_prefix(buf_reserve(&c->out, 5), false, (uint32_t)len);
    c->out.last += 5;
    buf_append(&c->out, msg, len);
    call_release_msg(c); /* msg may point into it: only now is the handler done with it */
    c->state = CALL_ANSWERED;
    count_response(GRPC_STATUS_OK);
    nghttp2_nv nv[3] = {make_nv(":status", "200"), make_nv("content-type", "application/grpc"),
                        make_nv("grpc-accept-encoding", ACCEPT_ENCODING)};
    nghttp2_data_provider prd;
    prd.source.ptr = c;
    prd.read_callback = read_out;
    nghttp2_submit_response(conn->session, c->stream_id, nv, 3, &prd);
    conn_flush(conn); /* may free c (stream closed) */
    conn_maybe_close(conn);
}

void grpc_reply_error(grpc_call_t *c, int code, const char *fmt, ...)
{
    if (!reply_begin(c))
        return;
    grpc_conn_t *conn = c->conn;
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    call_release_msg(c);
    submit_error(c, code == GRPC_STATUS_OK ? GRPC_STATUS_UNKNOWN : code, msg, 200);
    conn_flush(conn);
    conn_maybe_close(conn);
}

/* ---------------------------------------------------------------------------------------------
 * Request processing (nghttp2 callbacks)
 * ------------------------------------------------------------------------------------------- */

static bool grpc_content_type(const char *ct)
{
    static const char base[] = "application/grpc";
    if (!ct || strncmp(ct, base, sizeof base - 1) != 0)
        return false;
    char next = ct[sizeof base - 1];
    return next == '\0' || next == '+' || next == ';';
}

/* All request headers are in: accept the call or answer it with an error. */
static void headers_done(grpc_call_t *c)
{
    c->headers_done = true;
    if (!c->method || strcmp(c->method, "POST") != 0) {
        fail_call(c, GRPC_STATUS_UNIMPLEMENTED, 405, "gRPC requires POST, got %s",
                  c->method ? c->method : "no :method");
        return;
    }
    if (!grpc_content_type(c->content_type)) {
        fail_call(c, GRPC_STATUS_INTERNAL, 415,
                  "invalid gRPC request content-type \"%s\" (want application/grpc or "
                  "application/grpc+proto)",
                  c->content_type ? c->content_type : "");
        return;
    }
    if (c->encoding && strcmp(c->encoding, "identity") != 0 && strcmp(c->encoding, "gzip") != 0 &&
        strcmp(c->encoding, "deflate") != 0) {
        fail_call(c, GRPC_STATUS_UNIMPLEMENTED, 200,
                  "grpc-encoding \"%s\" is not supported (supported: " ACCEPT_ENCODING ")",
                  c->encoding);
        return;
    }
    c->route = c->path ? route_find(c->srv, c->path) : NULL;
    if (!c->route) {
        fail_call(c, GRPC_STATUS_UNIMPLEMENTED, 200, "unknown method %s", grpc_call_path(c));
        return;
    }
}

/* Appends DATA bytes to the call's message, enforcing one message of at most the limit. */
static void data_in(grpc_call_t *c, const uint8_t *p, size_t n)
{
    size_t max = c->srv->max_recv_bytes;
    while (n && c->state == CALL_READING) {
        if (c->prefix_len < 5) {
            if (c->prefix_len == 0 && buf_len(&c->msg) > 0) {
                fail_call(c, GRPC_STATUS_INTERNAL, 200,
                          "unary call received more than one request message");
                return;
            }
            size_t k = 5 - c->prefix_len < n ? 5 - c->prefix_len : n;
            memcpy(c->prefix + c->prefix_len, p, k);
            c->prefix_len += k;
            p += k;
            n -= k;
            if (c->prefix_len < 5)
                return;
            if (c->prefix[0] > 1) {
                fail_call(c, GRPC_STATUS_INTERNAL, 200,
                          "invalid gRPC message prefix: compressed flag is %u (want 0 or 1)",
                          c->prefix[0]);
                return;
            }
            c->compressed = c->prefix[0] == 1;
            c->msg_len = (uint32_t)c->prefix[1] << 24 | (uint32_t)c->prefix[2] << 16 |
                         (uint32_t)c->prefix[3] << 8 | c->prefix[4];
            if (c->msg_len > max) {
                fail_call(c, GRPC_STATUS_RESOURCE_EXHAUSTED, 200,
                          "received message larger than max (%u vs. %zu bytes)", c->msg_len, max);
                return;
            }
            grpc_conn_t *conn = c->conn;
            if (conn->reserved + c->msg_len > c->srv->max_conn_msg_bytes) {
                fail_call(c, GRPC_STATUS_RESOURCE_EXHAUSTED, 200,
                          "too many request bytes in flight on this connection (%zu + %u over "
                          "%zu); retry later",
                          conn->reserved, c->msg_len, c->srv->max_conn_msg_bytes);
                return;
            }
            c->reserved = c->msg_len;
            conn->reserved += c->msg_len;
            buf_init(&c->msg, c->msg_len < MSG_INITIAL_BYTES ? (c->msg_len ? c->msg_len : 1)
                                                             : MSG_INITIAL_BYTES);
            continue;
        }
        size_t want = c->msg_len - buf_len(&c->msg);
        if (want == 0) {
            fail_call(c, GRPC_STATUS_INTERNAL, 200,
                      "unary call received more than one request message");
            return;
        }
        size_t k = want < n ? want : n;
        buf_append(&c->msg, p, k);
        p += k;
        n -= k;
        if (buf_len(&c->msg) == c->msg_len)
            c->prefix_len = 0; /* a further prefix byte is a second message: refused above */
    }
}

/* The client finished sending: validate the message and hand it to the handler. */
static void request_end(grpc_call_t *c)
{
    if (c->state != CALL_READING)
        return;
    if (c->prefix_len == 0 && !c->msg.start) {
        fail_call(c, GRPC_STATUS_INTERNAL, 200, "unary call ended without a request message");
        return;
    }
    if (c->prefix_len > 0 && c->prefix_len < 5) {
        fail_call(c, GRPC_STATUS_INTERNAL, 200,
                  "truncated gRPC message: the stream ended after %zu of 5 prefix bytes",
                  c->prefix_len);
        return;
    }
    if (c->prefix_len == 5 && buf_len(&c->msg) < c->msg_len) {
        fail_call(c, GRPC_STATUS_INTERNAL, 200,
                  "truncated gRPC message: the prefix announced %u bytes, the stream ended after "
                  "%zu",
                  c->msg_len, buf_len(&c->msg));
        return;
    }
    str_t body = buf_str(&c->msg);
    if (c->compressed) {
        if (!c->encoding || strcmp(c->encoding, "identity") == 0) {
            fail_call(c, GRPC_STATUS_INTERNAL, 200,
                      "message is flagged compressed but the request has no grpc-encoding");
            return;
        }
        http_coding_t coding =
            strcmp(c->encoding, "gzip") == 0 ? HTTP_CODING_GZIP : HTTP_CODING_DEFLATE;
        size_t max = c->srv->max_recv_bytes;
        err_t err;
        err_clear(&err);
        int rc = http_decode_body(body, coding, max, &c->inflated, &err);
        if (rc == 0 && buf_len(&c->inflated) > max)
            rc = ERR_TOOBIG;
        if (rc == ERR_TOOBIG) {
            fail_call(c, GRPC_STATUS_RESOURCE_EXHAUSTED, 200,
                      "received message after decompression larger than max (over %zu bytes)", max);
            return;
        }
        if (rc) {
            fail_call(c, GRPC_STATUS_INTERNAL, 200, "cannot decompress the %s message: %s",
                      c->encoding, err.msg[0] ? err.msg : err_str(rc));
            return;
        }
        buf_deinit(&c->msg);
        body = buf_str(&c->inflated);
        selfmon_counter_add(coding == HTTP_CODING_GZIP ? m_msgs_gzip : m_msgs_deflate, 1);
    } else {
        selfmon_counter_add(m_msgs_identity, 1);
    }
    c->state = CALL_DISPATCHED;
    c->srv->inflight++;
    c->route->fn(c, (const uint8_t *)body.ptr, body.len, c->route->arg);
}

static grpc_call_t *stream_call(nghttp2_session *session, int32_t stream_id)
{
    return nghttp2_session_get_stream_user_data(session, stream_id);
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    grpc_conn_t *conn = user;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    grpc_call_t *c = call_new(conn, frame->hd.stream_id);
    if (!c)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, c);
    return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    (void)flags;
    (void)user;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    grpc_call_t *c = stream_call(session, frame->hd.stream_id);
    if (!c || c->headers_done) /* trailers from the client carry nothing we use */
        return 0;
    c->hdr_bytes += namelen + valuelen + 32;
    if (c->hdr_bytes > MAX_HEADER_BYTES || c->n_hdrs == MAX_HEADERS)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
    const char *n = arena_strndup(&c->arena, (const char *)name, namelen);
    const char *v = arena_strndup(&c->arena, (const char *)value, valuelen);
    c->hdrs[c->n_hdrs++] = (hdr_t){n, v};
    if (strcmp(n, ":path") == 0)
        c->path = v;
    else if (strcmp(n, ":method") == 0)
        c->method = v;
    else if (strcmp(n, "content-type") == 0)
        c->content_type = v;
    else if (strcmp(n, "grpc-encoding") == 0)
        c->encoding = v;
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    (void)user;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    grpc_call_t *c = stream_call(session, frame->hd.stream_id);
    if (!c)
        return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
        headers_done(c);
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
        request_end(c);
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *user)
{
    (void)flags;
    (void)user;
    grpc_call_t *c = stream_call(session, stream_id);
    if (c && c->state == CALL_READING)
        data_in(c, data, len);
    return 0;
}

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    (void)user;
    /* An early answer (error before the request ended): stop the client's upload. */
    if (frame->hd.type == NGHTTP2_HEADERS && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        !nghttp2_session_get_stream_remote_close(session, frame->hd.stream_id))
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_NO_ERROR);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user)
{
    (void)error_code;
    (void)user;
    grpc_call_t *c = stream_call(session, stream_id);
    if (!c)
        return 0;
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    if (c->state == CALL_DISPATCHED)
        call_detach(c);
    else
        call_free(c);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------------------------- */

static nghttp2_session_callbacks *callbacks(void)
{
    static nghttp2_session_callbacks *cbs;
    if (!cbs) {
        if (nghttp2_session_callbacks_new(&cbs) != 0)
            return NULL;
        nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
        nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
        nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    }
    return cbs;
}

static grpc_conn_t *conn_new(grpc_server_t *s)
{
    nghttp2_session_callbacks *cbs = callbacks();
    grpc_conn_t *c = calloc(1, sizeof *c);
    if (!c || !cbs) {
        free(c);
        return NULL;
    }
    c->srv = s;
    if (nghttp2_session_server_new(&c->session, cbs, c) != 0) {
        free(c);
        return NULL;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, s->max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW_BYTES},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_BYTES},
    };
    nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
    nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW_BYTES);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    return c;
}

static void conn_free(grpc_conn_t *c)
{
    grpc_server_t *s = c->srv;
    while (c->calls) {
        grpc_call_t *call = c->calls;
        if (call->state == CALL_DISPATCHED)
            call_detach(call);
        else
            call_free(call);
    }
    nghttp2_session_del(c->session);
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_conns--;
    free(c);
    maybe_shutdown_done(s);
}

static int conn_write(grpc_conn_t *c, const uint8_t *p, size_t n)
{
    if (c->bev)
        return evbuffer_add(bufferevent_get_output(c->bev), p, n) == 0 ? 0 : -1;
    return c->write(p, n, c->write_arg);
}

static size_t conn_pending_out(grpc_conn_t *c)
{
    return c->bev ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0;
}

/* Moves what nghttp2 has to send to the transport, unless called from inside its callbacks. */
static void conn_flush(grpc_conn_t *c)
{
    if (c->in_recv || c->finished)
        return;
    /* Nothing goes out before the client's preface (an HTTP/1.x client must read the plain-text
     * 505 first), except a GOAWAY at shutdown. libevent also calls on_write once a new socket
     * is writable, so this is where that is decided. */
    if (!c->preface_ok && !c->srv->shutting_down)
        return;
    while (conn_pending_out(c) < OUT_HIGH_WATER) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(c->session, &p);
        if (n < 0) {
            log_debug("grpc: send failed", "peer=%s err=\"%s\"", c->peer, nghttp2_strerror((int)n));
            c->finished = true;
            return;
        }
        if (n == 0)
            break;
        if (conn_write(c, p, (size_t)n) != 0) {
            c->finished = true;
            return;
        }
    }
    if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session))
        c->finished = true;
}

/* Frees a finished socket connection once its output has drained. */
static void conn_maybe_close(grpc_conn_t *c)
{
    if (c->bev && c->finished && conn_pending_out(c) == 0)
        conn_free(c);
}

/* An HTTP/1.x request line: "METHOD target HTTP/1.x" within the bytes at hand. */
static bool looks_like_http1(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n && i < 16 && p[i] >= 'A' && p[i] <= 'Z')
        i++;
    if (i == 0 || i >= n || p[i] != ' ')
        return false;
    const uint8_t *eol = memchr(p, '\n', n);
    size_t line = eol ? (size_t)(eol - p) : n;
    return memmem(p, line, " HTTP/1.", 8) != NULL;
}

/* Junk before the preface: answer an HTTP/1.x request line in plain text, then close. */
static void refuse_non_h2(grpc_conn_t *c, const uint8_t *p, size_t n)
{
    if (looks_like_http1(p, n)) {
        static const char body[] =
            "This port speaks gRPC (HTTP/2 with prior knowledge) only. Send OTLP/HTTP to the "
            "OTLP/HTTP port (default 4318) instead.\n";
        char resp[512];
        int len = snprintf(resp, sizeof resp,
                           "HTTP/1.1 505 HTTP Version Not Supported\r\n"
                           "Content-Type: text/plain; charset=utf-8\r\n"
                           "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                           sizeof body - 1, body);
        conn_write(c, (const uint8_t *)resp, (size_t)len);
    }
    log_debug("grpc: not HTTP/2, closing", "peer=%s http1=%d", c->peer, looks_like_http1(p, n));
    c->finished = true;
}

int grpc_conn_recv(grpc_conn_t *c, const uint8_t *p, size_t n)
{
    if (c->finished)
        return -1;
    if (!c->preface_ok) {
        size_t k = PREFACE_LEN - c->preface_matched < n ? PREFACE_LEN - c->preface_matched : n;
        if (memcmp(p, PREFACE + c->preface_matched, k) != 0) {
            refuse_non_h2(c, c->preface_matched ? (const uint8_t *)PREFACE : p,
                          c->preface_matched ? c->preface_matched : n);
            return -1;
        }
        c->preface_matched += k;
        if (c->preface_matched == PREFACE_LEN) {
            c->preface_ok = true;
            if (c->bev) {
                int64_t ms = c->srv->idle_timeout_ms;
                struct timeval idle = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
                bufferevent_set_timeouts(c->bev, &idle, NULL);
            }
        }
    }
    c->in_recv++;
    ssize_t rv = nghttp2_session_mem_recv(c->session, p, n);
    c->in_recv--;
    if (rv < 0) {
        log_debug("grpc: protocol error", "peer=%s err=\"%s\"", c->peer, nghttp2_strerror((int)rv));
        if (rv != NGHTTP2_ERR_BAD_CLIENT_MAGIC) /* say why before closing */
            nghttp2_session_terminate_session(c->session, NGHTTP2_PROTOCOL_ERROR);
        conn_flush(c);
        c->finished = true;
        return -1;
    }
    conn_flush(c);
    return c->finished ? -1 : 0;
}

grpc_conn_t *grpc_conn_new(grpc_server_t *s, grpc_write_fn write, void *arg)
{
    grpc_conn_t *c = conn_new(s);
    if (!c)
        return NULL;
    c->write = write;
    c->write_arg = arg;
    snprintf(c->peer, sizeof c->peer, "memory");
    if (s->shutting_down) {
        nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
        c->goaway_sent = true;
    }
    return c; /* the server's SETTINGS go out once the client's preface is in */
}

bool grpc_conn_done(const grpc_conn_t *c) { return c->finished; }
void grpc_conn_free(grpc_conn_t *c) { conn_free(c); }

static void on_read(struct bufferevent *bev, void *arg)
{
    grpc_conn_t *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n;
    while (!c->finished && (n = evbuffer_get_contiguous_space(in)) > 0) {
        const uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)n);
        grpc_conn_recv(c, p, n);
        evbuffer_drain(in, n);
    }
    if (c->finished)
        evbuffer_drain(in, evbuffer_get_length(in));
    conn_maybe_close(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    grpc_conn_t *c = arg;
    conn_flush(c);
    conn_maybe_close(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    grpc_conn_t *c = arg;
    if ((what & BEV_EVENT_TIMEOUT) && c->preface_ok && !c->finished) {
        /* libevent stopped reading at the timeout: keep reading, and say goodbye if idle */
        bufferevent_enable(c->bev, EV_READ);
        if (!c->calls && !c->goaway_sent) {
            log_debug("grpc: idle connection, sending GOAWAY", "peer=%s", c->peer);
            nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                                  nghttp2_session_get_last_proc_stream_id(c->session),
                                  NGHTTP2_NO_ERROR, NULL, 0);
            c->goaway_sent = true;
            conn_flush(c);
            conn_maybe_close(c);
        }
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        log_debug("grpc: connection closed", "peer=%s eof=%d timeout=%d", c->peer,
                  !!(what & BEV_EVENT_EOF), !!(what & BEV_EVENT_TIMEOUT));
        conn_free(c);
    }
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    (void)l;
    (void)salen;
    grpc_server_t *s = arg;
    grpc_conn_t *c = conn_new(s);
    if (!c) {
        close(fd);
        return;
    }
    c->bev = bufferevent_socket_new(loop__base(s->loop), fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        close(fd);
        conn_free(c);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, host, sizeof host);
        port = ntohs(((struct sockaddr_in *)sa)->sin_port);
        snprintf(c->peer, sizeof c->peer, "%s:%d", host, port);
    } else if (sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, host, sizeof host);
        port = ntohs(((struct sockaddr_in6 *)sa)->sin6_port);
        snprintf(c->peer, sizeof c->peer, "[%s]:%d", host, port);
    }
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    struct timeval tv = {PREFACE_TIMEOUT_S, 0};
    bufferevent_set_timeouts(c->bev, &tv, NULL);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    /* Nothing is sent before the client's preface: an HTTP/1.x client must see the plain-text
     * 505 as the first bytes, not a binary SETTINGS frame. */
}

/* ---------------------------------------------------------------------------------------------
 * Server
 * ------------------------------------------------------------------------------------------- */

grpc_server_t *grpc_server_new(loop_t *l, const grpc_opts_t *opts)
{
    grpc_server_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->loop = l;
    s->port = -1;
    metrics_init();
    s->max_recv_bytes =
        opts && opts->max_recv_bytes ? opts->max_recv_bytes : GRPC_DEFAULT_MAX_RECV_BYTES;
    s->max_streams = opts && opts->max_streams ? opts->max_streams : DEFAULT_MAX_STREAMS;
    s->max_conn_msg_bytes =
        opts && opts->max_conn_msg_bytes ? opts->max_conn_msg_bytes : CONN_MAX_MSG_BYTES;
    s->idle_timeout_ms =
        opts && opts->idle_timeout_ms > 0 ? opts->idle_timeout_ms : DEFAULT_IDLE_TIMEOUT_MS;
    if (s->max_conn_msg_bytes < 2 * s->max_recv_bytes)
        s->max_conn_msg_bytes = 2 * s->max_recv_bytes;
    return s;
}

void grpc_server_free(grpc_server_t *s)
{
    if (!s)
        return;
    if (s->lst)
        evconnlistener_free(s->lst);
    s->done_cb = NULL;
    while (s->conns)
        conn_free(s->conns);
    while (s->orphans)
        call_free(s->orphans);
    if (s->shutdown_timer)
        loop_timer_stop(s->shutdown_timer);
    if (s->done_timer)
        loop_timer_stop(s->done_timer);
    free(s->routes);
    free(s);
}

int grpc_server_listen(grpc_server_t *s, const char *host, int port, err_t *err)
{
    char addr[300];
    net__format_addr(addr, sizeof addr, host, port);
    if (s->lst)
        return err_set(err, ERR_EXISTS, "%s: the gRPC server is already listening", addr);
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    int gai = getaddrinfo(host[0] ? host : NULL, portstr, &hints, &ai);
    if (gai != 0)
        return err_set(err, ERR_INVAL, "%s: %s", addr, gai_strerror(gai));
    errno = 0;
    s->lst =
        evconnlistener_new_bind(loop__base(s->loop), on_accept, s,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE,
                                1024, ai->ai_addr, (int)ai->ai_addrlen);
    int e = errno;
    freeaddrinfo(ai);
    if (!s->lst)
        return err_set(err, ERR_IO, "%s: %s", addr, e ? strerror(e) : "cannot listen");
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    s->port = port;
    if (getsockname(evconnlistener_get_fd(s->lst), (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            s->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return 0;
}

int grpc_server_port(const grpc_server_t *s) { return s->port; }
size_t grpc_server_max_recv_bytes(const grpc_server_t *s) { return s->max_recv_bytes; }
size_t grpc_server_inflight(const grpc_server_t *s) { return s->inflight; }
size_t grpc_server_n_conns(const grpc_server_t *s) { return s->n_conns; }

int grpc_route(grpc_server_t *s, const char *path, grpc_handler_fn fn, void *arg)
{
    if (!fn || !path || path[0] != '/')
        return ERR_INVAL;
    if (route_find(s, path))
        return ERR_EXISTS;
    route_t *nr = realloc(s->routes, (s->n_routes + 1) * sizeof *nr);
    if (!nr)
        return ERR_NOMEM;
    s->routes = nr;
    s->routes[s->n_routes++] = (route_t){path, fn, arg};
    return 0;
}

static void fire_done(void *arg)
{
    grpc_server_t *s = arg;
    s->done_timer = NULL;
    if (s->shutdown_timer) {
        loop_timer_stop(s->shutdown_timer);
        s->shutdown_timer = NULL;
    }
    void (*cb)(void *) = s->done_cb;
    s->done_cb = NULL;
    if (cb)
        cb(s->done_arg);
}

static void maybe_shutdown_done(grpc_server_t *s)
{
    if (s->shutting_down && s->n_conns == 0 && s->done_cb && !s->done_timer && s->loop)
        s->done_timer = loop_timer_start(s->loop, 0, false, fire_done, s);
}

static void shutdown_timeout(void *arg)
{
    grpc_server_t *s = arg;
    s->shutdown_timer = NULL;
    if (s->n_conns)
        log_warn("shutdown: gRPC connections still busy after the grace period",
                 "conns=%zu inflight=%zu", s->n_conns, s->inflight);
    if (s->done_timer) {
        loop_timer_stop(s->done_timer);
        s->done_timer = NULL;
    }
    fire_done(s);
}

void grpc_server_shutdown(grpc_server_t *s, int64_t timeout_ms, void (*done)(void *arg), void *arg)
{
    s->done_cb = done;
    s->done_arg = arg;
    if (!s->shutting_down) {
        s->shutting_down = true;
        if (s->lst) {
            evconnlistener_free(s->lst);
            s->lst = NULL;
        }
        for (grpc_conn_t *c = s->conns, *next; c; c = next) {
            next = c->next;
            if (!c->goaway_sent && !c->finished) {
                nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                                      nghttp2_session_get_last_proc_stream_id(c->session),
                                      NGHTTP2_NO_ERROR, NULL, 0);
                c->goaway_sent = true;
            }
            conn_flush(c);
            conn_maybe_close(c);
        }
    }
    if (!s->shutdown_timer && s->loop)
        s->shutdown_timer = loop_timer_start(s->loop, timeout_ms, false, shutdown_timeout, s);
    maybe_shutdown_done(s);
}
