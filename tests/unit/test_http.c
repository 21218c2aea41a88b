/*
 * test_http.c - net/http + net/loop: a real server on 127.0.0.1 (random ports) driven by raw
 * HTTP/1.1 written by hand over sockets, plus the parsing helpers the fuzzer also exercises.
 * The loop runs in a second thread; handlers run there, the test talks from the main thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/selfmon.h"
#include "net/http.h"
#include "net/loop.h"
#include "test.h"

/* ---- test server ---- */

typedef struct tsrv {
    loop_t *loop;
    http_server_t *http;
    pthread_t th;
    int port, otlp_port;
    loop_async_t *shutdown_async;
    atomic_int shutdown_done;
} tsrv_t;

static atomic_int async_cancelled = -1; /* set by the delayed replier: was the request cancelled? */
static atomic_int async_replied;

static void h_hello(http_req_t *r, void *arg)
{
    (void)arg;
    http_reply(r, 200, "text/plain", "hello", 5);
}

static void h_tail(http_req_t *r, void *arg)
{
    http_reply_text(r, 200, "%s tail=%.*s", (const char *)arg, STR_FMT(http_req_tail(r)));
}

static void h_params(http_req_t *r, void *arg)
{
    (void)arg;
    str_t *m;
    size_t n = http_req_params(r, "match[]", &m);
    buf_t b = BUF_INIT;
    str_t x = http_req_param(r, "x"), sp = http_req_param(r, "sp"), e = http_req_param(r, "empty");
    buf_printf(&b, "x=%.*s sp=%.*s empty=%s/%zu match=", STR_FMT(x), STR_FMT(sp),
               e.ptr ? "present" : "absent", e.len);
    for (size_t i = 0; i < n; i++)
        buf_printf(&b, "%s%.*s", i ? "," : "", STR_FMT(m[i]));
    str_t missing = http_req_param(r, "missing");
    buf_printf(&b, " missing=%s mt=%.*s proto=%.*s", missing.ptr ? "present" : "absent",
               STR_FMT(http_req_media_type(r)), STR_FMT(http_req_content_type_param(r, "proto")));
    const char *ua = http_req_header(r, "x-TEST-header");
    buf_printf(&b, " hdr=%s method=%s", ua ? ua : "(none)", http_req_method(r));
    http_reply_buf(r, 200, "text/plain", &b);
    buf_deinit(&b);
}

static void h_body(http_req_t *r, void *arg)
{
    (void)arg;
    str_t body = http_req_body(r);
    const char *ce = http_req_content_encoding(r);
    buf_t b = BUF_INIT;
    buf_printf(&b, "len=%zu ce=%s crc=%lu", body.len, ce ? ce : "none",
               crc32(0, (const Bytef *)body.ptr, (uInt)body.len));
    http_reply_buf(r, 200, "text/plain", &b);
    buf_deinit(&b);
}

static void h_big(http_req_t *r, void *arg)
{
    (void)arg;
    buf_t b = BUF_INIT;
    for (int i = 0; i < 500; i++)
        buf_printf(&b, "line %d of a large response\n", i);
    http_reply_buf(r, 200, "text/plain", &b);
}

typedef struct delayed {
    http_req_t *req;
    int status;
} delayed_t;

static delayed_t *pending_delayed; /* freed by the test if the loop stops first */

static void delayed_reply(void *arg)
{
    delayed_t *d = arg;
    pending_delayed = NULL;
    atomic_store(&async_cancelled, http_req_cancelled(d->req));
    http_reply_text(d->req, d->status, "late reply");
    atomic_store(&async_replied, 1);
    free(d);
}

static void h_slow(http_req_t *r, void *arg)
{
    loop_t *loop = arg;
    delayed_t *d = malloc(sizeof *d);
    d->req = r;
    d->status = 202;
    pending_delayed = d;
    str_t ms = http_req_param(r, "ms");
    loop_timer_start(loop, ms.ptr ? atoi(ms.ptr) : 300, false, delayed_reply, d);
}

static void on_shutdown_done(void *arg)
{
    tsrv_t *t = arg;
    atomic_store(&t->shutdown_done, 1);
}

static void do_shutdown(void *arg)
{
    tsrv_t *t = arg;
    http_server_shutdown(t->http, 5000, on_shutdown_done, t);
}

static void *loop_thread(void *arg)
{
    tsrv_t *t = arg;
    loop_run(t->loop);
    return NULL;
}

static const char *tag_api = "api", *tag_traces = "traces";

static int srv_start(tsrv_t *t)
{
    memset(t, 0, sizeof *t);
    err_t err;
    t->loop = loop_new(&err);
    if (!t->loop)
        return -1;
    t->http = http_server_new(t->loop);
    if (http_server_listen(t->http, "main", "127.0.0.1", 0, &err) != 0 ||
        http_server_listen(t->http, "otlp", "127.0.0.1", 0, &err) != 0) {
        printf("listen: %s\n", err.msg);
        return -1;
    }
    t->port = http_server_port(t->http, "main");
    t->otlp_port = http_server_port(t->http, "otlp");
    static const http_route_opts_t small = {.max_body_bytes = 1000, .max_decoded_bytes = 1 << 20};
    int rc = 0;
    rc |= http_route(t->http, NULL, HTTP_GET, "/hello", h_hello, NULL, NULL);
    rc |= http_route(t->http, NULL, HTTP_GET, "/api/*", h_tail, (void *)tag_api, NULL);
    rc |= http_route(t->http, NULL, HTTP_GET, "/api/traces/*", h_tail, (void *)tag_traces, NULL);
    rc |= http_route(t->http, NULL, HTTP_GET, "/api/exact", h_tail, (void *)"exact", NULL);
    rc |= http_route(t->http, NULL, HTTP_GET | HTTP_POST, "/params", h_params, NULL, NULL);
    rc |= http_route(t->http, NULL, HTTP_POST, "/body", h_body, NULL, NULL);
    rc |= http_route(t->http, NULL, HTTP_POST, "/small", h_body, NULL, &small);
    rc |= http_route(t->http, NULL, HTTP_GET, "/big", h_big, NULL, NULL);
    rc |= http_route(t->http, NULL, HTTP_GET | HTTP_POST, "/slow", h_slow, t->loop, NULL);
    rc |= http_route(t->http, "otlp", HTTP_POST, "/v1/traces", h_body, NULL, NULL);
    if (rc != 0)
        return -1;
    t->shutdown_async = loop_async_new(t->loop, do_shutdown, t);
    return pthread_create(&t->th, NULL, loop_thread, t);
}

static void srv_stop(tsrv_t *t)
{
    loop_stop(t->loop);
    pthread_join(t->th, NULL);
    http_server_free(t->http);
    loop_free(t->loop);
}

/* ---- raw client ---- */

typedef struct resp {
    int status;
    char head[8192];
    buf_t body;
} resp_t;

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads one response (Content-Length framed, or until EOF). */
static int read_resp(int fd, resp_t *r)
{
    buf_t in = BUF_INIT;
    memset(r->head, 0, sizeof r->head);
    r->body = BUF_INIT;
    r->status = -1;
    size_t head_len = 0;
    long clen = -1;
    for (;;) {
        if (head_len == 0) {
            const char *all = buf_cstr(&in);
            const char *end = strstr(all, "\r\n\r\n");
            if (end) {
                head_len = (size_t)(end - all) + 4;
                size_t n = head_len < sizeof r->head - 1 ? head_len : sizeof r->head - 1;
                memcpy(r->head, all, n);
                sscanf(all, "HTTP/1.%*d %d", &r->status);
                const char *cl = strcasestr(r->head, "\r\nContent-Length:");
                if (cl)
                    clen = atol(cl + 17);
            }
        }
        if (head_len && clen >= 0 && buf_len(&in) >= head_len + (size_t)clen)
            break;
        if (head_len && (strstr(r->head, " 204 ") || strstr(r->head, " 304 ")))
            break;
        uint8_t *p = buf_reserve(&in, 65536);
        ssize_t n = recv(fd, p, 65536, 0);
        if (n <= 0)
            break;
        in.last += n;
    }
    if (head_len) {
        size_t blen = buf_len(&in) - head_len;
        if (clen >= 0 && (size_t)clen < blen)
            blen = (size_t)clen;
        buf_append(&r->body, in.pos + head_len, blen);
    }
    buf_deinit(&in);
    return r->status;
}

static int roundtrip(int port, const char *req, size_t len, resp_t *r)
{
    int fd = dial(port);
    if (fd < 0)
        return -1;
    send_all(fd, req, len);
    int st = read_resp(fd, r);
    close(fd);
    return st;
}

static int get(int port, const char *req, resp_t *r)
{
    return roundtrip(port, req, strlen(req), r);
}

static const char *header(resp_t *r, const char *name)
{
    static char val[1024];
    char pat[256];
    snprintf(pat, sizeof pat, "\r\n%s:", name);
    const char *p = strcasestr(r->head, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    size_t n = strcspn(p, "\r");
    if (n >= sizeof val)
        n = sizeof val - 1;
    memcpy(val, p, n);
    val[n] = '\0';
    return val;
}

static const char *body(resp_t *r) { return buf_cstr(&r->body); }

static void gzip_buf(const void *in, size_t n, int window_bits, buf_t *out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    deflateInit2(&z, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
    size_t cap = deflateBound(&z, (uLong)n);
    uint8_t *p = buf_reserve(out, cap);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = p;
    z.avail_out = (uInt)cap;
    deflate(&z, Z_FINISH);
    out->last += cap - z.avail_out;
    deflateEnd(&z);
}

static void post(buf_t *req, const char *path, const char *extra_headers, const void *b, size_t n)
{
    buf_printf(req,
               "POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%sContent-Length: %zu\r\n\r\n",
               path, extra_headers, n);
    buf_append(req, b, n);
}

/* ---- tests over sockets ---- */

TEST(routing_exact_prefix_and_listeners)
{
    tsrv_t t;
    REQUIRE_OK(srv_start(&t));
    resp_t r;
    CHECK_EQ_INT(get(t.port, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r),
                 200);
    CHECK_EQ_STR(body(&r), "hello");
    CHECK_EQ_STR(header(&r, "Content-Type"), "text/plain");
    CHECK_EQ_STR(header(&r, "Access-Control-Allow-Origin"), "*");
    buf_deinit(&r.body);

    CHECK_EQ_INT(get(t.port, "GET /api/traces/abc%2Fd HTTP/1.1\r\nConnection: close\r\n\r\n", &r),
                 200);
    CHECK_EQ_STR(body(&r), "traces tail=abc/d\n");
    buf_deinit(&r.body);
    CHECK_EQ_INT(get(t.port, "GET /api/v1/query HTTP/1.1\r\nConnection: close\r\n\r\n", &r), 200);
    CHECK_EQ_STR(body(&r), "api tail=v1/query\n");
    buf_deinit(&r.body);
    CHECK_EQ_INT(get(t.port, "GET /api/exact HTTP/1.1\r\nConnection: close\r\n\r\n", &r), 200);
    CHECK_EQ_STR(body(&r), "exact tail=\n");
    buf_deinit(&r.body);
    /* Absolute-form target. */
    CHECK_EQ_INT(
        get(t.port, "GET http://example.com/hello?x=1 HTTP/1.1\r\nConnection: close\r\n\r\n", &r),
        200);
    buf_deinit(&r.body);
    /* HEAD is routed like GET and gets no body. */
    CHECK_EQ_INT(get(t.port, "HEAD /hello HTTP/1.1\r\nConnection: close\r\n\r\n", &r), 200);
    CHECK_EQ_INT(r.body.last - r.body.pos, 0);
    buf_deinit(&r.body);

    /* A route bound to one listener is absent on the other. */
    buf_t req = BUF_INIT;
    post(&req, "/v1/traces", "", "abc", 3);
    CHECK_EQ_INT(roundtrip(t.otlp_port, (char *)req.pos, buf_len(&req), &r), 200);
    buf_deinit(&r.body);
    CHECK_EQ_INT(roundtrip(t.port, (char *)req.pos, buf_len(&req), &r), 404);
    buf_deinit(&r.body);
    buf_deinit(&req);
    /* Routes on all listeners work on both. */
    CHECK_EQ_INT(get(t.otlp_port, "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n", &r), 200);
    buf_deinit(&r.body);

    /* Keep-alive: two requests on one connection. */
    int fd = dial(t.port);
    REQUIRE(fd >= 0);
    const char *two = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, two, strlen(two));
    CHECK_EQ_INT(read_resp(fd, &r), 200);
    buf_deinit(&r.body);
    send_all(fd, two, strlen(two));
    CHECK_EQ_INT(read_resp(fd, &r), 200);
    CHECK_EQ_STR(body(&r), "hello");
    buf_deinit(&r.body);
    close(fd);
    srv_stop(&t);

    CHECK(selfmon_counter_get(selfmon_counter("skillscope_http_requests_total", "",
                                              "handler=\"/hello\",code=\"2xx\"")) >= 5);
}

TEST(not_found_and_method_not_allowed)
{
    tsrv_t t;
    REQUIRE_OK(srv_start(&t));
    resp_t r;
    CHECK_EQ_INT(get(t.port, "GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n", &r), 404);
    CHECK_EQ_STR(body(&r), "404 page not found: /nope\n");
    buf_deinit(&r.body);
    CHECK_EQ_INT(get(t.port, "DELETE /hello HTTP/1.1\r\nConnection: close\r\n\r\n", &r), 405);
    CHECK_EQ_STR(header(&r, "Allow"), "GET, HEAD, OPTIONS");
    buf_deinit(&r.body);
    CHECK_EQ_INT(get(t.port, "PUT /params HTTP/1.1\r\nConnection: close\r\n\r\n", &r), 405);
    CHECK_EQ_STR(header(&r, "Allow"), "GET, POST, HEAD, OPTIONS");
    buf_deinit(&r.body);
    CHECK_EQ_INT(get(t.port, "GET /v1/traces HTTP/1.1\r\nConnection: close\r\n\r\n", &r), 404);
    buf_deinit(&r.body);
    CHECK_EQ_INT(get(t.otlp_port, "GET /v1/traces HTTP/1.1\r\nConnection: close\r\n\r\n", &r), 405);
    CHECK_EQ_STR(header(&r, "Allow"), "POST, OPTIONS");
    buf_deinit(&r.body);
    /* Malformed path escape. */
    CHECK_EQ_INT(get(t.port, "GET /hel%zzlo HTTP/1.1\r\nConnection: close\r\n\r\n", &r), 400);
    buf_deinit(&r.body);
    srv_stop(&t);
}

TEST(query_and_form_are_merged_body_first)
{
    tsrv_t t;
    REQUIRE_OK(srv_start(&t));
    resp_t r;
    CHECK_EQ_INT(get(t.port,
                     "GET /params?x=1&match[]=a&match%5B%5D=b%20c&sp=a+b&empty= HTTP/1.1\r\n"
                     "X-Test-Header: yes\r\nConnection: close\r\n\r\n",
                     &r),
                 200);
    CHECK_EQ_STR(body(&r), "x=1 sp=a b empty=present/0 match=a,b c missing=absent mt= proto= "
                           "hdr=yes method=GET");
    buf_deinit(&r.body);

    const char *form = "x=2&match[]=fromBody";
    buf_t req = BUF_INIT;
    post(&req, "/params?x=1&match[]=fromQuery",
         "Content-Type: Application/X-WWW-Form-Urlencoded; charset=utf-8\r\n", form, strlen(form));
    CHECK_EQ_INT(roundtrip(t.port, (char *)req.pos, buf_len(&req), &r), 200);
    CHECK_EQ_STR(body(&r), "x=2 sp= empty=absent/0 match=fromBody,fromQuery missing=absent "
                           "mt=application/x-www-form-urlencoded proto= hdr=(none) method=POST");
    buf_deinit(&r.body);
    buf_clear(&req);

    /* A non-form body is not parsed as parameters; Content-Type parameters are readable. */
    post(&req, "/params?x=q",
         "Content-Type: application/x-protobuf;proto=io.prometheus.write.v2.Request\r\n", "x=2", 3);
    CHECK_EQ_INT(roundtrip(t.port, (char *)req.pos, buf_len(&req), &r), 200);
    CHECK_EQ_STR(body(&r), "x=q sp= empty=absent/0 match= missing=absent mt=application/x-protobuf "
                           "proto=io.prometheus.write.v2.Request hdr=(none) method=POST");
    buf_deinit(&r.body);
    buf_clear(&req);

    /* Bad escapes are a 400 naming the pair. */
    CHECK_EQ_INT(
        get(t.port, "GET /params?q=100%25&bad=%G1 HTTP/1.1\r\nConnection: close\r\n\r\n", &r), 400);
    CHECK(strstr(body(&r), "bad=%G1") != NULL);
    buf_deinit(&r.body);
    buf_deinit(&req);
    srv_stop(&t);
}

TEST(compressed_request_bodies)
{
    tsrv_t t;
    REQUIRE_OK(srv_start(&t));
    char plain[3000];
    for (size_t i = 0; i < sizeof plain; i++)
        plain[i] = (char)('a' + i % 7);
    char want[128];
    snprintf(want, sizeof want, "len=%zu ce=none crc=%lu", sizeof plain,
             crc32(0, (const Bytef *)plain, sizeof plain));
    resp_t r;
    buf_t z = BUF_INIT, req = BUF_INIT;

    gzip_buf(plain, sizeof plain, 15 + 16, &z);
    post(&req, "/body", "Content-Encoding: gzip\r\n", z.pos, buf_len(&z));
    CHECK_EQ_INT(roundtrip(t.port, (char *)req.pos, buf_len(&req), &r), 200);
    CHECK_EQ_STR(body(&r), want);
    buf_deinit(&r.body);

    /* Two concatenated gzip members are one body. */
    buf_clear(&z);
    buf_clear(&req);
    gzip_buf(plain, 1000, 15 + 16, &z);
    gzip_buf(plain + 1000, sizeof plain - 1000, 15 + 16, &z);
    post(&req, "/body", "Content-Encoding: x-gzip\r\n", z.pos, buf_len(&z));
    CHECK_EQ_INT(roundtrip(t.port, (char *)req.pos, buf_len(&req), &r), 200);
    CHECK_EQ_STR(body(&r), want);
    buf_deinit(&r.body);

    /* deflate, zlib-wrapped and raw. */
    for (int wb = 0; wb < 2; wb++) {
        buf_clear(&z);
        buf_clear(&req);
        gzip_buf(plain, sizeof plain, wb ? -15 : 15, &z);
        post(&req, "/body", "Content-Encoding: deflate\r\n", z.pos, buf_len(&z));
        CHECK_EQ_INT(roundtrip(t.port, (char *)req.pos, buf_len(&req), &r), 200);
        CHECK_EQ_STR(body(&r), want);
        buf_deinit(&r.body);
    }

    /* zstd */
    buf_clear(&z);
    buf_clear(&req);
    size_t zc = ZSTD_compress(buf_reserve(&z, ZSTD_compressBound(sizeof plain)),
                              ZSTD_compressBound(sizeof plain), plain, sizeof plain, 3);
    REQUIRE(!ZSTD_isError(zc));
    z.last += zc;
    post(&req, "/body", "Content-Encoding: zstd\r\n", z.pos, buf_len(&z));
    CHECK_EQ_INT(roundtrip(t.port, (char *)req.pos, buf_len(&req), &r), 200);
    CHECK_EQ_STR(body(&r), want);
    buf_deinit(&r.body);

    /* Corrupt gzip: 400. */
    buf_clear(&req);
    post(&req, "/body", "Content-Encoding: gzip\r\n", "\x1f\x8b\x08\x00garbage", 11);
    CHECK_EQ_INT(roundtrip(t.port, (char *)req.pos, buf_len(&req), &r), 400);
    buf_deinit(&r.body);

    /* Unknown encoding: 415; snappy: passed through raw and flagged. */
    buf_clear(&req);
    post(&req, "/body", "Content-Encoding: br\r\n", "abc", 3);
    CHECK_EQ_INT(roundtrip(t.port, (char *)req.pos, buf_len(&req), &r), 415);
    CHECK_EQ_STR(body(&r), "unsupported Content-Encoding \"br\"\n");
    buf_deinit(&r.body);
    buf_clear(&req);
    post(&req, "/body", "Content-Encoding: snappy\r\n", "abc", 3);
    CHECK_EQ_INT(roundtrip(t.port, (char *)req.pos, buf_len(&req), &r), 200);
    snprintf(want, sizeof want, "len=3 ce=snappy crc=%lu", crc32(0, (const Bytef *)"abc", 3));
    CHECK_EQ_STR(body(&r), want);
    buf_deinit(&r.body);
    buf_deinit(&z);
    buf_deinit(&req);
    srv_stop(&t);
}

static void make_bomb(buf_t *z, size_t plain_bytes)
{
    z_stream s;
    memset(&s, 0, sizeof s);
    deflateInit2(&s, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY);
    static uint8_t zeros[1 << 16];
    size_t left = plain_bytes;
    do {
        size_t n = left < sizeof zeros ? left : sizeof zeros;
        left -= n;
        s.next_in = zeros;
        s.avail_in = (uInt)n;
        do {
            uint8_t *p = buf_reserve(z, 1 << 16);
            s.next_out = p;
            s.avail_out = 1 << 16;
            deflate(&s, left ? Z_NO_FLUSH : Z_FINISH);
            z->last += (1 << 16) - s.avail_out;
        } while (s.avail_out == 0);
    } while (left);
    deflateEnd(&s);
}

TEST(gzip_bomb_is_refused_with_bounded_memory)
{
    buf_t z = BUF_INIT;
    make_bomb(&z, (size_t)256 << 20); /* 256 MiB of zeros, ~256 KiB compressed */
    CHECK(buf_len(&z) < 300000);

    /* Decoder level, in a child so its peak RSS is measured alone. */
    pid_t pid = fork();
    if (pid == 0) {
        struct rusage ru0, ru1;
        getrusage(RUSAGE_SELF, &ru0);
        buf_t out = BUF_INIT;
        err_t err;
        int rc = http_decode_body(buf_str(&z), HTTP_CODING_GZIP, 4 << 20, &out, &err);
        getrusage(RUSAGE_SELF, &ru1);
        long grew_kib = ru1.ru_maxrss - ru0.ru_maxrss;
        _exit(rc == ERR_TOOBIG && strcmp(err.msg, "decompressed body exceeds 4194304 bytes") == 0 &&
                      grew_kib < 64 * 1024
                  ? 0
                  : 1);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);

    /* A body right at the limit decodes; one byte over does not. */
    buf_t small = BUF_INIT, out = BUF_INIT;
    make_bomb(&small, 100000);
    err_t err;
    CHECK_OK(http_decode_body(buf_str(&small), HTTP_CODING_GZIP, 100000, &out, &err));
    CHECK_EQ_U64(buf_len(&out), 100000);
    CHECK((size_t)(out.end - out.start) <= 100001);
    buf_deinit(&out);
    CHECK_EQ_INT(http_decode_body(buf_str(&small), HTTP_CODING_GZIP, 99999, &out, &err),
                 ERR_TOOBIG);
    buf_deinit(&small);

    /* Over HTTP: 413 with the limit in the message. */
    tsrv_t t;
    REQUIRE_OK(srv_start(&t));
    buf_t req = BUF_INIT;
    post(&req, "/body", "Content-Encoding: gzip\r\n", z.pos, buf_len(&z));
    resp_t r;
    CHECK_EQ_INT(roundtrip(t.port, (char *)req.pos, buf_len(&req), &r), 413);
    CHECK_EQ_STR(body(&r), "decompressed body exceeds 67108864 bytes\n");
    buf_deinit(&r.body);
    buf_deinit(&req);
    buf_deinit(&z);
    srv_stop(&t);
}

TEST(oversize_raw_body)
{
    tsrv_t t;
    REQUIRE_OK(srv_start(&t));
    resp_t r;
    char big[5000];
    memset(big, 'x', sizeof big);
    buf_t req = BUF_INIT;
    post(&req, "/small", "", big, sizeof big);
    CHECK_EQ_INT(roundtrip(t.port, (char *)req.pos, buf_len(&req), &r), 413);
    CHECK_EQ_STR(body(&r), "request body exceeds 1000 bytes\n");
    buf_deinit(&r.body);
    buf_clear(&req);
    post(&req, "/small", "", big, 900);
    CHECK_EQ_INT(roundtrip(t.port, (char *)req.pos, buf_len(&req), &r), 200);
    buf_deinit(&r.body);
    /* Beyond what any route accepts: refused from the Content-Length alone. */
    const char *huge = "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\nxx";
    CHECK_EQ_INT(get(t.port, huge, &r), 413);
    buf_deinit(&r.body);
    buf_deinit(&req);
    srv_stop(&t);
}

TEST(cors_preflight_and_headers)
{
    tsrv_t t;
    REQUIRE_OK(srv_start(&t));
    resp_t r;
    CHECK_EQ_INT(get(t.otlp_port,
                     "OPTIONS /v1/traces HTTP/1.1\r\nHost: x\r\nOrigin: http://localhost:8080\r\n"
                     "Access-Control-Request-Method: POST\r\n"
                     "Access-Control-Request-Headers: content-type,x-custom\r\n"
                     "Connection: close\r\n\r\n",
                     &r),
                 204);
    CHECK_EQ_STR(header(&r, "Access-Control-Allow-Origin"), "*");
    CHECK_EQ_STR(header(&r, "Access-Control-Allow-Headers"), "content-type,x-custom");
    CHECK(strstr(header(&r, "Access-Control-Allow-Methods"), "POST") != NULL);
    CHECK_EQ_STR(header(&r, "Access-Control-Max-Age"), "86400");
    buf_deinit(&r.body);
    srv_stop(&t);

    REQUIRE_OK(srv_start(&t));
    http_server_set_cors_origin(t.http, "http://ui.example");
    CHECK_EQ_INT(get(t.port,
                     "GET /hello HTTP/1.1\r\nOrigin: http://ui.example\r\n"
                     "Connection: close\r\n\r\n",
                     &r),
                 200);
    CHECK_EQ_STR(header(&r, "Access-Control-Allow-Origin"), "http://ui.example");
    CHECK_EQ_STR(header(&r, "Vary"), "Origin");
    buf_deinit(&r.body);
    srv_stop(&t);
}

static bool wait_for(atomic_int *flag, int want, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        if (atomic_load(flag) == want)
            return true;
        usleep(10000);
    }
    return atomic_load(flag) == want;
}

TEST(async_reply_after_disconnect_is_safe)
{
    tsrv_t t;
    REQUIRE_OK(srv_start(&t));
    /* Normal async reply first. */
    resp_t r;
    atomic_store(&async_replied, 0);
    CHECK_EQ_INT(get(t.port, "GET /slow?ms=50 HTTP/1.1\r\nConnection: close\r\n\r\n", &r), 202);
    CHECK_EQ_STR(body(&r), "late reply\n");
    CHECK_EQ_INT(atomic_load(&async_cancelled), 0);
    buf_deinit(&r.body);

    /* Client leaves before the reply: the request is cancelled, the late reply is a no-op. */
    atomic_store(&async_replied, 0);
    atomic_store(&async_cancelled, -1);
    int fd = dial(t.port);
    const char *q = "GET /slow?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, q, strlen(q));
    usleep(50000);
    close(fd);
    CHECK(wait_for(&async_replied, 1, 3000));
    CHECK_EQ_INT(atomic_load(&async_cancelled), 1);

    /* Same with an abortive close (RST) on a POST. */
    atomic_store(&async_replied, 0);
    fd = dial(t.port);
    const char *p = "POST /slow?ms=300 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc";
    send_all(fd, p, strlen(p));
    usleep(50000);
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
    CHECK(wait_for(&async_replied, 1, 3000));
    CHECK_EQ_INT(atomic_load(&async_cancelled), 1);

    /* The server still works and nothing is left in flight. */
    CHECK_EQ_INT(get(t.port, "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n", &r), 200);
    buf_deinit(&r.body);
    usleep(50000);
    CHECK_EQ_INT(http_server_inflight(t.http), 0);

    /* A request still pending when the server is freed is released with it. */
    atomic_store(&async_replied, 0);
    fd = dial(t.port);
    q = "GET /slow?ms=100000 HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, q, strlen(q));
    usleep(100000);
    srv_stop(&t);
    close(fd);
    free(pending_delayed);
    pending_delayed = NULL;
}

TEST(gzip_responses)
{
    tsrv_t t;
    REQUIRE_OK(srv_start(&t));
    resp_t r;
    CHECK_EQ_INT(get(t.port,
                     "GET /big HTTP/1.1\r\nAccept-Encoding: deflate, gzip;q=0.8\r\n"
                     "Connection: close\r\n\r\n",
                     &r),
                 200);
    CHECK_EQ_STR(header(&r, "Content-Encoding"), "gzip");
    CHECK_EQ_STR(header(&r, "Vary"), "Accept-Encoding");
    buf_t plain = BUF_INIT;
    err_t err;
    CHECK_OK(http_decode_body(buf_str(&r.body), HTTP_CODING_GZIP, 1 << 20, &plain, &err));
    CHECK(buf_len(&plain) > 10000);
    CHECK(strncmp((char *)plain.pos, "line 0 of a large response\nline 1", 33) == 0);
    buf_deinit(&plain);
    buf_deinit(&r.body);

    CHECK_EQ_INT(get(t.port,
                     "GET /big HTTP/1.1\r\nAccept-Encoding: gzip;q=0\r\n"
                     "Connection: close\r\n\r\n",
                     &r),
                 200);
    CHECK(header(&r, "Content-Encoding") == NULL);
    CHECK(buf_len(&r.body) > 10000);
    buf_deinit(&r.body);
    CHECK_EQ_INT(get(t.port,
                     "GET /hello HTTP/1.1\r\nAccept-Encoding: gzip\r\n"
                     "Connection: close\r\n\r\n",
                     &r),
                 200);
    CHECK(header(&r, "Content-Encoding") == NULL);
    CHECK_EQ_STR(body(&r), "hello");
    buf_deinit(&r.body);
    srv_stop(&t);
}

TEST(graceful_shutdown_waits_for_inflight)
{
    tsrv_t t;
    REQUIRE_OK(srv_start(&t));
    atomic_store(&async_replied, 0);
    int fd = dial(t.port);
    const char *q = "GET /slow?ms=400 HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, q, strlen(q));
    usleep(100000);
    loop_async_send(t.shutdown_async);
    usleep(100000);
    CHECK_EQ_INT(atomic_load(&t.shutdown_done), 0);
    /* No longer accepting. */
    CHECK(dial(t.port) < 0);
    resp_t r;
    CHECK_EQ_INT(read_resp(fd, &r), 202);
    CHECK_EQ_STR(header(&r, "Connection"), "close");
    buf_deinit(&r.body);
    close(fd);
    CHECK(wait_for(&t.shutdown_done, 1, 2000));
    srv_stop(&t);
}

TEST(bind_error_names_address)
{
    err_t err;
    loop_t *l = loop_new(&err);
    REQUIRE(l != NULL);
    http_server_t *a = http_server_new(l), *b = http_server_new(l);
    REQUIRE_OK(http_server_listen(a, "main", "127.0.0.1", 0, &err));
    int port = http_server_port(a, "main");
    CHECK_EQ_INT(http_server_listen(b, "main", "127.0.0.1", port, &err), ERR_IO);
    char want[128];
    snprintf(want, sizeof want, "127.0.0.1:%d: Address already in use", port);
    CHECK_EQ_STR(err.msg, want);
    CHECK_EQ_INT(http_server_listen(b, "x", "no.such.host.invalid", 1, &err), ERR_INVAL);
    CHECK(strncmp(err.msg, "no.such.host.invalid:1: ", 24) == 0);
    CHECK_EQ_INT(http_server_listen(a, "main", "127.0.0.1", 0, &err), ERR_EXISTS);
    CHECK_EQ_STR(http_server_listener_name(a, 0), "main");
    CHECK_EQ_INT(http_server_n_listeners(a), 1);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    CHECK_EQ_STR(http_server_listener_addr(a, 0), addr);
    /* Route validation. */
    CHECK_EQ_INT(http_route(a, NULL, HTTP_GET, "nope", h_hello, NULL, NULL), ERR_INVAL);
    CHECK_EQ_INT(http_route(a, NULL, HTTP_GET, "/a*b", h_hello, NULL, NULL), ERR_INVAL);
    CHECK_OK(http_route(a, NULL, HTTP_GET, "/a", h_hello, NULL, NULL));
    CHECK_OK(http_route(a, NULL, HTTP_POST, "/a", h_hello, NULL, NULL));
    CHECK_EQ_INT(http_route(a, "main", HTTP_GET, "/a", h_hello, NULL, NULL), ERR_EXISTS);
    http_server_free(a);
    http_server_free(b);
    loop_free(l);
}

static int timer_hits;
static void count_hit(void *arg)
{
    timer_hits++;
    if (timer_hits == 3)
        loop_stop(arg);
}

static void stop_self(void *arg)
{
    loop_timer_t **t = arg;
    loop_timer_stop(*t);
    *t = NULL;
}

static int watch_hits;
static void on_readable(void *arg)
{
    int *fds = arg;
    char c;
    if (read(fds[0], &c, 1) == 1)
        watch_hits++;
}

TEST(loop_timers_watches_async)
{
    err_t err;
    loop_t *l = loop_new(&err);
    REQUIRE(l != NULL);
    timer_hits = 0;
    loop_timer_t *rep = loop_timer_start(l, 5, true, count_hit, l);
    loop_timer_t *self = loop_timer_start(l, 1, true, NULL, NULL);
    loop_timer_stop(self);
    self = loop_timer_start(l, 1, true, stop_self, &self);
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    loop_watch_t *w = loop_watch_fd(l, fds[0], on_readable, fds);
    REQUIRE(write(fds[1], "ab", 2) == 2);
    watch_hits = 0;
    CHECK_OK(loop_run(l));
    CHECK_EQ_INT(timer_hits, 3);
    CHECK(self == NULL);
    CHECK_EQ_INT(watch_hits, 2);
    loop_timer_stop(rep);
    loop_watch_stop(w);
    close(fds[0]);
    close(fds[1]);
    loop_free(l); /* also frees whatever is still registered */
}

/* ---- parsing helpers ---- */

TEST(parse_form_cases)
{
    arena_t a;
    arena_init(&a, 0);
    http_param_t *p = NULL;
    size_t n = 0;
    err_t err;
    CHECK_OK(http_parse_form(STR("a=1&&b=%41+c&c&d=&=e&a=2"), &a, &p, &n, &err));
    REQUIRE(n == 6);
    CHECK_EQ_STRN(p[0].key, "a");
    CHECK_EQ_STRN(p[0].value, "1");
    CHECK_EQ_STRN(p[1].value, "A c");
    CHECK_EQ_STRN(p[2].key, "c");
    CHECK(p[2].value.len == 0 && p[2].value.ptr != NULL);
    CHECK_EQ_STRN(p[3].key, "d");
    CHECK_EQ_STRN(p[4].key, "");
    CHECK_EQ_STRN(p[4].value, "e");
    CHECK_EQ_STRN(p[5].value, "2");
    /* Growth beyond the first arena array keeps earlier entries. */
    buf_t many = BUF_INIT;
    for (int i = 0; i < 100; i++)
        buf_printf(&many, "k%d=v%d&", i, i);
    p = NULL;
    n = 0;
    CHECK_OK(http_parse_form(buf_str(&many), &a, &p, &n, &err));
    CHECK_EQ_INT(n, 100);
    CHECK_EQ_STRN(p[0].value, "v0");
    CHECK_EQ_STRN(p[99].key, "k99");
    buf_deinit(&many);
    CHECK_EQ_INT(http_parse_form(STR("x=%4"), &a, &p, &n, &err), ERR_PARSE);
    CHECK_EQ_STR(err.msg, "invalid URL escape in \"x=%4\"");
    CHECK_EQ_INT(http_parse_form(STR("x%=1"), &a, &p, &n, &err), ERR_PARSE);
    arena_deinit(&a);

    char out[16];
    CHECK_EQ_INT(http_url_decode(STR("a%2Fb+c"), false, out), 5);
    CHECK(memcmp(out, "a/b+c", 5) == 0);
    CHECK_EQ_INT(http_url_decode(STR("%"), false, out), -1);
    CHECK_EQ_INT(http_url_decode(STR("%a"), false, out), -1);
}

TEST(header_value_helpers)
{
    CHECK(http_accepts_gzip("gzip"));
    CHECK(http_accepts_gzip("br, GZIP"));
    CHECK(http_accepts_gzip("deflate, gzip;q=0.5"));
    CHECK(http_accepts_gzip("*"));
    CHECK(!http_accepts_gzip("gzip;q=0"));
    CHECK(!http_accepts_gzip("identity"));
    CHECK(!http_accepts_gzip(""));
    CHECK(!http_accepts_gzip(NULL));
    CHECK(!http_accepts_gzip("gzipx"));

    arena_t a;
    arena_init(&a, 0);
    CHECK_EQ_STRN(http_media_type(STR(" Application/JSON ; charset=utf-8"), &a),
                  "application/json");
    CHECK_EQ_STRN(http_media_type(STR(""), &a), "");
    str_t ct = STR("application/x-protobuf; Proto=\"io.prom\\\"v2\" ; charset=utf-8");
    CHECK_EQ_STRN(http_content_type_param(ct, "proto", &a), "io.prom\"v2");
    CHECK_EQ_STRN(http_content_type_param(ct, "charset", &a), "utf-8");
    CHECK(http_content_type_param(ct, "missing", &a).ptr == NULL);
    CHECK(http_content_type_param(STR("text/plain;;x"), "x", &a).ptr == NULL);
    arena_deinit(&a);

    CHECK_EQ_INT(http_coding_parse(STR("")), HTTP_CODING_IDENTITY);
    CHECK_EQ_INT(http_coding_parse(STR(" GZip ")), HTTP_CODING_GZIP);
    CHECK_EQ_INT(http_coding_parse(STR("deflate")), HTTP_CODING_DEFLATE);
    CHECK_EQ_INT(http_coding_parse(STR("zstd")), HTTP_CODING_ZSTD);
    CHECK_EQ_INT(http_coding_parse(STR("snappy")), HTTP_CODING_SNAPPY);
    CHECK_EQ_INT(http_coding_parse(STR("br")), HTTP_CODING_UNKNOWN);
}

TEST(decode_body_edge_cases)
{
    err_t err;
    buf_t out = BUF_INIT, z = BUF_INIT;
    /* Empty gzip stream. */
    gzip_buf("", 0, 15 + 16, &z);
    CHECK_OK(http_decode_body(buf_str(&z), HTTP_CODING_GZIP, 10, &out, &err));
    CHECK_EQ_U64(buf_len(&out), 0);
    buf_deinit(&out);
    /* Truncated stream. */
    str_t trunc = {(const char *)z.pos, buf_len(&z) - 4};
    CHECK_EQ_INT(http_decode_body(trunc, HTTP_CODING_GZIP, 10, &out, &err), ERR_PARSE);
    /* Trailing garbage. */
    buf_append(&z, "zz", 2);
    CHECK_EQ_INT(http_decode_body(buf_str(&z), HTTP_CODING_GZIP, 10, &out, &err), ERR_PARSE);
    CHECK(strstr(err.msg, "trailing") != NULL);
    /* Not compressed at all. */
    CHECK_EQ_INT(http_decode_body(STR("hello"), HTTP_CODING_GZIP, 10, &out, &err), ERR_PARSE);
    CHECK_EQ_INT(http_decode_body(STR("hello"), HTTP_CODING_ZSTD, 10, &out, &err), ERR_PARSE);
    CHECK_EQ_INT(http_decode_body(STR(""), HTTP_CODING_ZSTD, 10, &out, &err), 0);
    buf_deinit(&out);
    CHECK_EQ_INT(http_decode_body(STR("x"), HTTP_CODING_SNAPPY, 10, &out, &err), ERR_INVAL);
    /* zstd bomb. */
    size_t big = 8u << 20;
    char *zeros = calloc(1, big);
    buf_clear(&z);
    size_t zc = ZSTD_compress(buf_reserve(&z, ZSTD_compressBound(big)), ZSTD_compressBound(big),
                              zeros, big, 1);
    z.last += zc;
    CHECK_EQ_INT(http_decode_body(buf_str(&z), HTTP_CODING_ZSTD, 1 << 20, &out, &err), ERR_TOOBIG);
    CHECK_EQ_STR(err.msg, "decompressed body exceeds 1048576 bytes");
    CHECK_OK(http_decode_body(buf_str(&z), HTTP_CODING_ZSTD, big, &out, &err));
    CHECK_EQ_U64(buf_len(&out), big);
    buf_deinit(&out);
    /* Truncated zstd. */
    str_t zt = {(const char *)z.pos, buf_len(&z) / 2};
    CHECK_EQ_INT(http_decode_body(zt, HTTP_CODING_ZSTD, big, &out, &err), ERR_PARSE);
    free(zeros);
    buf_deinit(&z);
}
