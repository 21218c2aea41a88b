/*
 * http.c - the HTTP/1.1 server: listeners, router, request decoding, replies, CORS, shutdown.
 *
 * libevent's evhttp does the wire protocol (one evhttp per listener, so a route can be tied to one
 * port); everything after "a complete request arrived" is ours. Each request gets an http_req_t
 * that tracks it from dispatch until libevent has written the response or dropped the connection:
 *
 *   dispatch ── handler replies now ─────────────┐
 *      └────── handler returns (async) ── reply ─┴─> written (on_complete) ─> freed
 *                     └── client went away (peek sees EOF) ─> cancelled ─> late reply frees it
 *
 * evhttp stops reading a connection while its request is being handled, so it would never notice
 * a client that disconnects before an asynchronous reply. While a reply is pending we therefore
 * watch the socket ourselves and recv(MSG_PEEK) when it turns readable: EOF or an error means the
 * client is gone, so we free the connection (evhttp frees the request with it; its close callback
 * tells us) and mark the request cancelled. Pipelined bytes end the watch without consuming them.
 *
 * Bodies: evhttp enforces the largest raw limit of any route while reading; the route's own raw
 * limit is checked after routing. Content-Encoding gzip/deflate/zstd is decoded into a buffer that
 * grows by doubling but never past the route's decoded limit + 1 byte, so a compression bomb
 * fails with 413 after allocating at most that much.
 *
 * Graceful shutdown closes the listening sockets, answers further requests on kept-alive
 * connections with 503 + Connection: close, and reports done when the in-flight count (requests
 * dispatched and not yet written or dropped) reaches zero or the timeout passes.
 */
#include "net/http.h"

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <zlib.h>
#include <zstd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/selfmon.h"
#include "net/internal.h"

#define MAX_LISTENERS 8
#define MAX_HEADERS_BYTES (256u << 10)
#define CONN_TIMEOUT_SECS 120
#define STATUS_CLASSES 5 /* 1xx .. 5xx */

typedef struct route_metrics {
    selfmon_histogram_t *duration;
    selfmon_counter_t *by_class[STATUS_CLASSES];
} route_metrics_t;

typedef struct route {
    const char *listener; /* NULL = all */
    const char *pattern;
    size_t match_len; /* pattern length without the trailing '*' */
    bool prefix;
    unsigned methods;
    http_handler_fn fn;
    void *arg;
    size_t max_body_bytes;
    size_t max_decoded_bytes;
    http_body_error_fn body_error;
    route_metrics_t m;
} route_t;

typedef struct listener {
    http_server_t *srv;
    const char *name;
    char addr[300];
    int port;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
} listener_t;

typedef struct header {
    const char *key;
    const char *value;
} header_t;

struct http_req {
    http_server_t *srv;
    http_req_t *prev, *next; /* live requests of the server */
    struct evhttp_request *evreq;
    struct event *watch;
    listener_t *lst;
    const route_t *route;
    route_metrics_t *metrics;
    arena_t arena;
    int64_t start_ns;

    const char *method;
    unsigned method_bit;
    str_t path, tail, query;
    http_param_t *params;
    size_t n_params;
    header_t *headers;
    size_t n_headers;
    str_t media_type;
    const char *content_type;
    struct evbuffer *raw;
    buf_t decoded;
    str_t body;
    const char *content_encoding;
    const char *peer;

    bool replied;
    bool cancelled;
    bool streaming; /* http_reply_start was called and http_reply_end not yet */
    http_stream_close_fn stream_close;
    void *stream_arg;
};

struct http_server {
    loop_t *loop;
    listener_t lst[MAX_LISTENERS];
    size_t n_lst;
    route_t *routes;
    size_t n_routes;
    size_t max_body_bytes; /* largest raw limit over routes: what evhttp enforces */
    char *cors_origin;
    http_req_t *live;
    size_t inflight;
    route_metrics_t unmatched;

    bool shutting_down;
    void (*done_cb)(void *arg);
    void *done_arg;
    loop_timer_t *shutdown_timer;
    loop_timer_t *done_timer;
};

static const double duration_bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                         0.5,   1,     2.5,  5,     10,   30,  60};

/* ---------------------------------------------------------------------------------------------
 * Server and listeners
 * ------------------------------------------------------------------------------------------- */

static void dispatch(struct evhttp_request *evreq, void *arg);

/* Label strings handed to selfmon must outlive the process; identical ones are shared. */
static const char *intern(const char *s)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static struct interned {
        struct interned *next;
        char s[];
    } * head;
    pthread_mutex_lock(&mu);
    for (struct interned *i = head; i; i = i->next) {
        if (strcmp(i->s, s) == 0) {
            pthread_mutex_unlock(&mu);
            return i->s;
        }
    }
    size_t n = strlen(s);
    struct interned *i = malloc(sizeof *i + n + 1);
    if (!i) {
        pthread_mutex_unlock(&mu);
        abort();
    }
    memcpy(i->s, s, n + 1);
    i->next = head;
    head = i;
    pthread_mutex_unlock(&mu);
    return i->s;
}

static void metrics_init(route_metrics_t *m, const char *handler)
{
    char buf[512], esc[400];
    size_t n = 0;
    for (const char *p = handler; *p && n < sizeof esc - 2; p++) {
        if (*p == '"' || *p == '\\')
            esc[n++] = '\\';
        esc[n++] = *p;
    }
    esc[n] = '\0';
    snprintf(buf, sizeof buf, "handler=\"%s\"", esc);
    m->duration = selfmon_histogram(
        "skillscope_http_request_duration_seconds",
        "Time from a complete request to its reply being queued, by route.", intern(buf),
        duration_bounds, sizeof duration_bounds / sizeof duration_bounds[0]);
    for (int c = 0; c < STATUS_CLASSES; c++) {
        snprintf(buf, sizeof buf, "handler=\"%s\",code=\"%dxx\"", esc, c + 1);
        m->by_class[c] =
            selfmon_counter("skillscope_http_requests_total",
                            "HTTP requests answered, by route and status class.", intern(buf));
    }
}

http_server_t *http_server_new(loop_t *l)
{
    http_server_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->loop = l;
    s->max_body_bytes = HTTP_DEFAULT_MAX_BODY_BYTES;
    s->cors_origin = strdup("*");
    metrics_init(&s->unmatched, "unmatched");
    return s;
}

static void req_free(http_req_t *r);
static void stream_closed(http_req_t *r);

void http_server_free(http_server_t *s)
{
    if (!s)
        return;
    /* Freeing an evhttp frees its connections; their close callbacks settle our requests. */
    for (size_t i = 0; i < s->n_lst; i++)
        evhttp_free(s->lst[i].http);
    while (s->live) {
        if (s->live->streaming)
            stream_closed(s->live);
        req_free(s->live);
    }
    if (s->shutdown_timer)
        loop_timer_stop(s->shutdown_timer);
    if (s->done_timer)
        loop_timer_stop(s->done_timer);
    free(s->routes);
    free(s->cors_origin);
    free(s);
}

void http_server_set_cors_origin(http_server_t *s, const char *origin)
{
    free(s->cors_origin);
    s->cors_origin = origin && origin[0] ? strdup(origin) : NULL;
}

void net__format_addr(char *out, size_t cap, const char *host, int port)
{
    if (strchr(host, ':'))
        snprintf(out, cap, "[%s]:%d", host, port);
    else
        snprintf(out, cap, "%s:%d", host, port);
}

int http_server_listen(http_server_t *s, const char *name, const char *host, int port, err_t *err)
{
    char addr[300];
    net__format_addr(addr, sizeof addr, host, port);
    if (s->n_lst == MAX_LISTENERS)
        return err_set(err, ERR_INVAL, "%s: too many listeners", addr);
    if (port < 0 || port > 65535)
        return err_set(err, ERR_INVAL, "%s: port out of range", addr);
    for (size_t i = 0; i < s->n_lst; i++)
        if (strcmp(s->lst[i].name, name) == 0)
            return err_set(err, ERR_EXISTS, "listener %s already exists", name);

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
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        freeaddrinfo(ai);
        return err_set(err, ERR_IO, "%s: %s", addr, strerror(e));
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* Accepted sockets inherit this on Linux. Without it a response written as headers then body
     * waits for the client's delayed ACK (40 ms) whenever the first segment is still unacked. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        int e = errno;
        freeaddrinfo(ai);
        close(fd);
        return err_set(err, ERR_IO, "%s: %s", addr, strerror(e));
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int bound_port = port;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }

    listener_t *l = &s->lst[s->n_lst];
    memset(l, 0, sizeof *l);
    l->srv = s;
    l->name = name;
    l->port = bound_port;
    net__format_addr(l->addr, sizeof l->addr, host, bound_port);
    l->http = evhttp_new(loop__base(s->loop));
    if (!l->http) {
        close(fd);
        return err_set(err, ERR_NOMEM, "%s: cannot create the HTTP server", l->addr);
    }
    evhttp_set_allowed_methods(l->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_max_body_size(l->http, (ev_ssize_t)s->max_body_bytes);
    evhttp_set_max_headers_size(l->http, MAX_HEADERS_BYTES);
    evhttp_set_timeout(l->http, CONN_TIMEOUT_SECS);
    evhttp_set_default_content_type(l->http, NULL);
    evhttp_set_gencb(l->http, dispatch, l);
    l->bound = evhttp_accept_socket_with_handle(l->http, fd);
    if (!l->bound) {
        evhttp_free(l->http);
        close(fd);
        return err_set(err, ERR_IO, "%s: cannot accept connections", l->addr);
    }
    s->n_lst++;
    return 0;
}

int http_server_port(const http_server_t *s, const char *name)
{
    for (size_t i = 0; i < s->n_lst; i++)
        if (strcmp(s->lst[i].name, name) == 0)
            return s->lst[i].port;
    return -1;
}

size_t http_server_n_listeners(const http_server_t *s) { return s->n_lst; }
const char *http_server_listener_name(const http_server_t *s, size_t i) { return s->lst[i].name; }
const char *http_server_listener_addr(const http_server_t *s, size_t i) { return s->lst[i].addr; }
size_t http_server_inflight(const http_server_t *s) { return s->inflight; }

int http_route(http_server_t *s, const char *listener, unsigned methods, const char *pattern,
               http_handler_fn fn, void *arg, const http_route_opts_t *opts)
{
    size_t plen = strlen(pattern);
    if (!fn || plen == 0 || pattern[0] != '/' || (methods & ~0x7fu) || !methods)
        return ERR_INVAL;
    bool prefix = pattern[plen - 1] == '*';
    size_t match_len = prefix ? plen - 1 : plen;
    if (memchr(pattern, '*', match_len))
        return ERR_INVAL;
    for (size_t i = 0; i < s->n_routes; i++) {
        const route_t *r = &s->routes[i];
        bool same_listener = !r->listener || !listener || strcmp(r->listener, listener) == 0;
        if (strcmp(r->pattern, pattern) == 0 && same_listener && (r->methods & methods))
            return ERR_EXISTS;
    }
    route_t *nr = realloc(s->routes, (s->n_routes + 1) * sizeof *nr);
    if (!nr)
        return ERR_NOMEM;
    s->routes = nr;
    route_t *r = &s->routes[s->n_routes++];
    memset(r, 0, sizeof *r);
    r->listener = listener;
    r->pattern = pattern;
    r->match_len = match_len;
    r->prefix = prefix;
    r->methods = methods;
    r->fn = fn;
    r->arg = arg;
    r->max_body_bytes =
        opts && opts->max_body_bytes ? opts->max_body_bytes : HTTP_DEFAULT_MAX_BODY_BYTES;
    r->max_decoded_bytes =
        opts && opts->max_decoded_bytes ? opts->max_decoded_bytes : HTTP_DEFAULT_MAX_DECODED_BYTES;
    r->body_error = opts ? opts->body_error : NULL;
    metrics_init(&r->m, pattern);
    if (r->max_body_bytes > s->max_body_bytes || s->n_routes == 1) {
        size_t mx = 0;
        for (size_t i = 0; i < s->n_routes; i++)
            if (s->routes[i].max_body_bytes > mx)
                mx = s->routes[i].max_body_bytes;
        s->max_body_bytes = mx > HTTP_DEFAULT_MAX_BODY_BYTES ? mx : HTTP_DEFAULT_MAX_BODY_BYTES;
        for (size_t i = 0; i < s->n_lst; i++)
            evhttp_set_max_body_size(s->lst[i].http, (ev_ssize_t)s->max_body_bytes);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Request lifecycle
 * ------------------------------------------------------------------------------------------- */

static void maybe_shutdown_done(http_server_t *s);

static void req_release_body(http_req_t *r)
{
    if (r->raw) {
        evbuffer_free(r->raw);
        r->raw = NULL;
    }
    buf_deinit(&r->decoded);
    r->body = STR_NULL;
}

static void watch_stop(http_req_t *r)
{
    if (r->watch) {
        event_free(r->watch);
        r->watch = NULL;
    }
}

/* Unlinks and frees r; the caller has made sure libevent no longer references it. */
static void req_free(http_req_t *r)
{
    http_server_t *s = r->srv;
    watch_stop(r);
    if (r->evreq) {
        struct evhttp_connection *evcon = evhttp_request_get_connection(r->evreq);
        if (evcon)
            evhttp_connection_set_closecb(evcon, NULL, NULL);
        evhttp_request_set_on_complete_cb(r->evreq, NULL, NULL);
    }
    if (r->prev)
        r->prev->next = r->next;
    else
        s->live = r->next;
    if (r->next)
        r->next->prev = r->prev;
    s->inflight--;
    req_release_body(r);
    arena_deinit(&r->arena);
    free(r);
}

/* The response has been written out; libevent frees evreq right after this returns. */
static void on_complete(struct evhttp_request *evreq, void *arg)
{
    (void)evreq;
    http_req_t *r = arg;
    http_server_t *s = r->srv;
    req_free(r);
    maybe_shutdown_done(s);
}

/* The connection is being freed (client gone, write error, server freed). */
static void stream_closed(http_req_t *r)
{
    http_stream_close_fn fn = r->stream_close;
    r->stream_close = NULL;
    r->streaming = false;
    if (fn)
        fn(r->stream_arg);
}

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    http_req_t *r = arg;
    http_server_t *s = r->srv;
    watch_stop(r);
    if (r->streaming) /* the owner lets go of r before it is freed below */
        stream_closed(r);
    evhttp_connection_set_closecb(evcon, NULL, NULL);
    if (r->evreq) {
        evhttp_request_set_on_complete_cb(r->evreq, NULL, NULL);
        /* A request libevent detached from its connection is ours to free. */
        if (!evhttp_request_get_connection(r->evreq))
            evhttp_request_free(r->evreq);
        r->evreq = NULL;
    }
    if (r->replied) {
        req_free(r);
        maybe_shutdown_done(s);
    } else {
        r->cancelled = true;
        log_debug("http client went away before the reply", "path=\"%.*s\" peer=%s",
                  STR_FMT(r->path), r->peer ? r->peer : "");
    }
}

/* The socket of a request awaiting an asynchronous reply became readable. */
static void on_watch(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    http_req_t *r = arg;
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    watch_stop(r);
    if (n > 0) /* pipelined data: leave it for evhttp; we can no longer tell */
        return;
    struct evhttp_connection *evcon = r->evreq ? evhttp_request_get_connection(r->evreq) : NULL;
    if (evcon)
        evhttp_connection_free(evcon); /* calls on_conn_close, which cancels r */
}

static void watch_start(http_req_t *r)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->evreq);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    if (fd < 0)
        return;
    r->watch = event_new(loop__base(r->srv->loop), fd, EV_READ | EV_PERSIST, on_watch, r);
    if (r->watch)
        event_add(r->watch, NULL);
}

/* ---------------------------------------------------------------------------------------------
 * Replies
 * ------------------------------------------------------------------------------------------- */

void http_add_header(http_req_t *r, const char *name, const char *value)
{
    if (r->evreq && !r->replied)
        evhttp_add_header(evhttp_request_get_output_headers(r->evreq), name, value);
}

static int gzip_body(const void *in, size_t len, uint8_t **out, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return ERR_NOMEM;
    size_t cap = deflateBound(&z, (uLong)len);
    uint8_t *p = malloc(cap);
    if (!p) {
        deflateEnd(&z);
        return ERR_NOMEM;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = p;
    z.avail_out = (uInt)cap;
    int zr = deflate(&z, Z_FINISH);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    if (zr != Z_STREAM_END) {
        free(p);
        return ERR_IO;
    }
    *out = p;
    return 0;
}

static void free_cleanup(const void *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    free(arg);
}

/* Sends status + body (taking ownership of owned when non-NULL, else copying body). */
static void reply_impl(http_req_t *r, int status, const char *ctype, const void *body, size_t len,
                       uint8_t *owned)
{
    if (r->replied) {
        log_error("http reply sent twice", "path=\"%.*s\" status=%d", STR_FMT(r->path), status);
        free(owned);
        return;
    }
    r->replied = true;
    watch_stop(r);
    route_metrics_t *m = r->metrics ? r->metrics : &r->srv->unmatched;
    selfmon_histogram_observe(m->duration, (double)(clock_mono_ns() - r->start_ns) / 1e9);
    int cls = status / 100 - 1;
    if (cls >= 0 && cls < STATUS_CLASSES)
        selfmon_counter_add(m->by_class[cls], 1);
    if (log_level() <= LOG_DEBUG)
        log_debug("http request", "method=%s path=\"%.*s\" status=%d ms=%.3f", r->method,
                  STR_FMT(r->path), status, (double)(clock_mono_ns() - r->start_ns) / 1e6);

    if (r->cancelled || !r->evreq) {
        http_server_t *s = r->srv;
        free(owned);
        req_free(r);
        maybe_shutdown_done(s);
        return;
    }
    struct evkeyvalq *oh = evhttp_request_get_output_headers(r->evreq);
    if (ctype)
        evhttp_add_header(oh, "Content-Type", ctype);
    if (r->srv->cors_origin) {
        evhttp_add_header(oh, "Access-Control-Allow-Origin", r->srv->cors_origin);
        if (strcmp(r->srv->cors_origin, "*") != 0)
            evhttp_add_header(oh, "Vary", "Origin");
    }
    if (r->srv->shutting_down && !evhttp_find_header(oh, "Connection"))
        evhttp_add_header(oh, "Connection", "close");

    struct evbuffer *eb = evbuffer_new();
    if (r->method_bit == HTTP_HEAD) {
        /* evhttp would send the body of a HEAD response: announce its length, send nothing. */
        char cl[32];
        snprintf(cl, sizeof cl, "%zu", len);
        if (!evhttp_find_header(oh, "Content-Length"))
            evhttp_add_header(oh, "Content-Length", cl);
        len = 0;
    }
    if (len > HTTP_GZIP_MIN_BYTES && status != 204 && status != 304 &&
        !evhttp_find_header(oh, "Content-Encoding") &&
        http_accepts_gzip(http_req_header(r, "Accept-Encoding"))) {
        uint8_t *gz;
        size_t gz_len;
        if (gzip_body(body, len, &gz, &gz_len) == 0) {
            free(owned);
            owned = gz;
            body = gz;
            len = gz_len;
            evhttp_add_header(oh, "Content-Encoding", "gzip");
            evhttp_add_header(oh, "Vary", "Accept-Encoding");
        }
    }
    if (len) {
        if (owned) {
            evbuffer_add_reference(eb, body, len, free_cleanup, owned);
            owned = NULL;
        } else {
            evbuffer_add(eb, body, len);
        }
    }
    free(owned);
    req_release_body(r);
    evhttp_send_reply(r->evreq, status, NULL, eb);
    evbuffer_free(eb);
    /* Only the tracking struct waits for the write to finish; the request's memory goes now. */
    arena_deinit(&r->arena);
    r->n_headers = r->n_params = 0;
    r->path = r->tail = r->query = r->media_type = STR_NULL;
    r->peer = r->content_type = NULL;
}

void http_reply(http_req_t *r, int status, const char *content_type, const void *body, size_t len)
{
    reply_impl(r, status, content_type, body, len, NULL);
}

void http_reply_buf(http_req_t *r, int status, const char *content_type, buf_t *b)
{
    size_t len = buf_len(b);
    if (!len || b->fixed) {
        reply_impl(r, status, content_type, b->pos, len, NULL);
        buf_deinit(b);
        return;
    }
    uint8_t *mem = buf_steal(b, &len);
    reply_impl(r, status, content_type, mem, len, mem);
}

void http_reply_text(http_req_t *r, int status, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof msg - 2)
        n = (int)sizeof msg - 2;
    msg[n++] = '\n';
    reply_impl(r, status, "text/plain; charset=utf-8", msg, (size_t)n, NULL);
}

/* ---------------------------------------------------------------------------------------------
 * Streaming replies
 * ------------------------------------------------------------------------------------------- */

int http_reply_start(http_req_t *r, int status, const char *content_type,
                     http_stream_close_fn on_close, void *arg)
{
    if (r->replied) {
        log_error("http reply sent twice", "path=\"%.*s\" status=%d", STR_FMT(r->path), status);
        return ERR_INVAL;
    }
    r->replied = true;
    watch_stop(r);
    route_metrics_t *m = r->metrics ? r->metrics : &r->srv->unmatched;
    int cls = status / 100 - 1;
    if (cls >= 0 && cls < STATUS_CLASSES)
        selfmon_counter_add(m->by_class[cls], 1);
    r->streaming = true;
    r->stream_close = on_close;
    r->stream_arg = arg;
    req_release_body(r);
    if (r->cancelled || !r->evreq) {
        /* the client left before the stream started */
        http_server_t *s = r->srv;
        r->streaming = false;
        r->stream_close = NULL;
        req_free(r);
        maybe_shutdown_done(s);
        return ERR_CLOSED;
    }
    struct evkeyvalq *oh = evhttp_request_get_output_headers(r->evreq);
    if (content_type)
        evhttp_add_header(oh, "Content-Type", content_type);
    evhttp_add_header(oh, "Cache-Control", "no-cache");
    evhttp_add_header(oh, "X-Content-Type-Options", "nosniff");
    if (r->srv->cors_origin) {
        evhttp_add_header(oh, "Access-Control-Allow-Origin", r->srv->cors_origin);
        if (strcmp(r->srv->cors_origin, "*") != 0)
            evhttp_add_header(oh, "Vary", "Origin");
    }
    evhttp_send_reply_start(r->evreq, status, NULL);
    /* The client only reads from now on: no read timeout (EOF is still noticed), and a write
     * timeout so a client that stops reading is dropped eventually. */
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->evreq);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    if (bev) {
        struct timeval wtv = {CONN_TIMEOUT_SECS, 0};
        bufferevent_set_timeouts(bev, NULL, &wtv);
    }
    return 0;
}

int http_reply_chunk(http_req_t *r, const void *data, size_t len)
{
    if (!r->streaming || r->cancelled || !r->evreq || !evhttp_request_get_connection(r->evreq))
        return ERR_CLOSED;
    if (!len)
        return 0;
    struct evbuffer *eb = evbuffer_new();
    if (!eb)
        return ERR_NOMEM;
    evbuffer_add(eb, data, len);
    evhttp_send_reply_chunk(r->evreq, eb);
    evbuffer_free(eb);
    return 0;
}

size_t http_reply_queued(const http_req_t *r)
{
    struct evhttp_connection *evcon = r->evreq ? evhttp_request_get_connection(r->evreq) : NULL;
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

void http_reply_end(http_req_t *r)
{
    r->stream_close = NULL;
    r->streaming = false;
    if (r->cancelled || !r->evreq) {
        http_server_t *s = r->srv;
        req_free(r);
        maybe_shutdown_done(s);
        return;
    }
    /* on_complete frees r once the last chunk is written */
    evhttp_send_reply_end(r->evreq);
}

/* ---------------------------------------------------------------------------------------------
 * Dispatch
 * ------------------------------------------------------------------------------------------- */

static const struct {
    enum evhttp_cmd_type ev;
    unsigned bit;
    const char *name;
} methods[] = {
    {EVHTTP_REQ_GET, HTTP_GET, "GET"},
    {EVHTTP_REQ_POST, HTTP_POST, "POST"},
    {EVHTTP_REQ_PUT, HTTP_PUT, "PUT"},
    {EVHTTP_REQ_DELETE, HTTP_DELETE, "DELETE"},
    {EVHTTP_REQ_PATCH, HTTP_PATCH, "PATCH"},
    {EVHTTP_REQ_HEAD, HTTP_HEAD, "HEAD"},
    {EVHTTP_REQ_OPTIONS, HTTP_OPTIONS, "OPTIONS"},
};

static void allow_header(char *out, size_t cap, unsigned mask)
{
    size_t n = 0;
    out[0] = '\0';
    if (mask & HTTP_GET)
        mask |= HTTP_HEAD;
    mask |= HTTP_OPTIONS;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        if (!(mask & methods[i].bit))
            continue;
        int w = snprintf(out + n, cap - n, "%s%s", n ? ", " : "", methods[i].name);
        if (w < 0 || (size_t)w >= cap - n)
            break;
        n += (size_t)w;
    }
}

static bool listener_ok(const route_t *rt, const listener_t *l)
{
    return !rt->listener || strcmp(rt->listener, l->name) == 0;
}

/* Finds the route for path/method. On no match returns NULL with *allow = 0 (404) or the mask of
 * methods the path does support (405). */
static const route_t *route_find(const http_server_t *s, const listener_t *l, str_t path,
                                 unsigned method, unsigned *allow)
{
    unsigned want = method == HTTP_HEAD ? HTTP_GET | HTTP_HEAD : method;
    const route_t *best = NULL;
    size_t best_len = 0;
    bool exact = false;
    *allow = 0;
    for (size_t i = 0; i < s->n_routes; i++) {
        const route_t *rt = &s->routes[i];
        if (!listener_ok(rt, l))
            continue;
        if (!rt->prefix) {
            if (rt->match_len != path.len || memcmp(rt->pattern, path.ptr, path.len) != 0)
                continue;
            if (!exact) {
                exact = true;
                best = NULL;
                *allow = 0;
            }
        } else {
            if (exact || path.len < rt->match_len ||
                memcmp(rt->pattern, path.ptr, rt->match_len) != 0 || rt->match_len < best_len)
                continue;
            if (rt->match_len > best_len) {
                best_len = rt->match_len;
                best = NULL;
                *allow = 0;
            }
        }
        *allow |= rt->methods;
        if (!best && (rt->methods & want))
            best = rt;
    }
    return best;
}

static bool cors_preflight(http_req_t *r)
{
    if (r->method_bit != HTTP_OPTIONS)
        return false;
    struct evkeyvalq *oh = evhttp_request_get_output_headers(r->evreq);
    if (r->srv->cors_origin) {
        const char *req_headers = http_req_header(r, "Access-Control-Request-Headers");
        evhttp_add_header(oh, "Access-Control-Allow-Methods",
                          "GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS");
        evhttp_add_header(oh, "Access-Control-Allow-Headers",
                          req_headers && req_headers[0] ? req_headers
                                                        : "Content-Type, Content-Encoding");
        evhttp_add_header(oh, "Access-Control-Max-Age", "86400");
    }
    http_reply(r, 204, NULL, NULL, 0);
    return true;
}

static void copy_headers(http_req_t *r)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(r->evreq);
    size_t n = 0;
    for (struct evkeyval *kv = in->tqh_first; kv; kv = kv->next.tqe_next)
        n++;
    r->headers = ARENA_ARRAY(&r->arena, header_t, n ? n : 1);
    for (struct evkeyval *kv = in->tqh_first; kv; kv = kv->next.tqe_next) {
        r->headers[r->n_headers].key = arena_strndup(&r->arena, kv->key, strlen(kv->key));
        r->headers[r->n_headers].value = arena_strndup(&r->arena, kv->value, strlen(kv->value));
        r->n_headers++;
    }
}

/* Splits the request target into path and query; accepts origin-form and absolute-form. */
static int parse_target(http_req_t *r, const char *uri)
{
    str_t t = str_cstr(uri);
    if (str_starts_with(t, "http://") || str_starts_with(t, "https://")) {
        const char *p = strstr(t.ptr, "://") + 3;
        const char *slash = strchr(p, '/');
        t = slash ? str_cstr(slash) : STR("/");
    }
    const char *hash = memchr(t.ptr, '#', t.len);
    if (hash)
        t.len = (size_t)(hash - t.ptr);
    const char *q = memchr(t.ptr, '?', t.len);
    str_t raw_path = q ? (str_t){t.ptr, (size_t)(q - t.ptr)} : t;
    r->query = q ? (str_t){q + 1, t.len - raw_path.len - 1} : (str_t){t.ptr + t.len, 0};
    char *p = arena_alloc(&r->arena, raw_path.len + 1);
    long n = http_url_decode(raw_path, false, p);
    if (n < 0 || (n > 0 && memchr(p, '\0', (size_t)n)) || n == 0 || p[0] != '/')
        return -1;
    p[n] = '\0';
    r->path = (str_t){p, (size_t)n};
    return 0;
}

/* Allocates the request, links it into the server and hooks it to libevent's callbacks. */
static http_req_t *req_new(listener_t *l, struct evhttp_request *evreq)
{
    http_server_t *s = l->srv;
    http_req_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->srv = s;
    r->evreq = evreq;
    r->lst = l;
    r->start_ns = clock_mono_ns();
    arena_init(&r->arena, 4096);
    r->next = s->live;
    if (s->live)
        s->live->prev = r;
    s->live = r;
    s->inflight++;

    struct evhttp_connection *evcon = evhttp_request_get_connection(evreq);
    evhttp_connection_set_closecb(evcon, on_conn_close, r);
    evhttp_request_set_on_complete_cb(evreq, on_complete, r);

    enum evhttp_cmd_type cmd = evhttp_request_get_command(evreq);
    r->method = "UNKNOWN";
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        if (methods[i].ev == cmd) {
            r->method = methods[i].name;
            r->method_bit = methods[i].bit;
        }
    }
    char *peer_host = NULL;
    ev_uint16_t peer_port = 0;
    evhttp_connection_get_peer(evcon, &peer_host, &peer_port);
    char peer[300];
    net__format_addr(peer, sizeof peer, peer_host ? peer_host : "?", peer_port);
    r->peer = arena_strndup(&r->arena, peer, strlen(peer));
    copy_headers(r);
    return r;
}

/* Replies to a body that cannot be read: through the route's body_error hook when it has one. */
static void body_fail(http_req_t *r, const route_t *rt, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void body_fail(http_req_t *r, const route_t *rt, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!rt->body_error) {
        http_reply_text(r, status, "%s", msg);
        return;
    }
    if (!r->media_type.ptr) { /* the hook may look at the media type to pick its encoding */
        r->content_type = http_req_header(r, "Content-Type");
        r->media_type = http_media_type(str_cstr(r->content_type), &r->arena);
    }
    rt->body_error(r, status, msg, rt->arg);
}

/* Takes the body out of libevent's buffer (so it lives as long as r) and decodes it. Returns
 * false after replying with an error (413, 415, 400). */
static bool req_read_body(http_req_t *r, const route_t *rt)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->evreq);
    size_t raw_len = evbuffer_get_length(in);
    if (raw_len > rt->max_body_bytes) {
        body_fail(r, rt, 413, "request body exceeds %zu bytes", rt->max_body_bytes);
        return false;
    }
    r->raw = evbuffer_new();
    evbuffer_add_buffer(r->raw, in);
    str_t raw = {raw_len ? (const char *)evbuffer_pullup(r->raw, -1) : "", raw_len};
    r->body = raw;

    const char *ce = http_req_header(r, "Content-Encoding");
    http_coding_t coding = http_coding_parse(str_cstr(ce));
    if (coding == HTTP_CODING_UNKNOWN) {
        body_fail(r, rt, 415, "unsupported Content-Encoding \"%s\"", ce);
        return false;
    }
    if (coding == HTTP_CODING_SNAPPY) {
        r->content_encoding = "snappy";
    } else if (coding != HTTP_CODING_IDENTITY) {
        err_t err;
        int rc = http_decode_body(raw, coding, rt->max_decoded_bytes, &r->decoded, &err);
        if (rc != 0) {
            body_fail(r, rt, rc == ERR_TOOBIG ? 413 : 400, "%s", err.msg);
            return false;
        }
        evbuffer_free(r->raw);
        r->raw = NULL;
        r->body = buf_str(&r->decoded);
    } else if (raw_len > rt->max_decoded_bytes) {
        body_fail(r, rt, 413, "request body exceeds %zu bytes", rt->max_decoded_bytes);
        return false;
    }
    return true;
}

/* Parameters: a urlencoded form body first, then the query string. False after a 400. */
static bool req_parse_params(http_req_t *r)
{
    const char *ct = http_req_header(r, "Content-Type");
    r->content_type = ct;
    r->media_type = http_media_type(str_cstr(ct), &r->arena);
    err_t err;
    if (!r->content_encoding && str_eq_cstr(r->media_type, "application/x-www-form-urlencoded") &&
        http_parse_form(r->body, &r->arena, &r->params, &r->n_params, &err) != 0) {
        http_reply_text(r, 400, "invalid form body: %s", err.msg);
        return false;
    }
    if (http_parse_form(r->query, &r->arena, &r->params, &r->n_params, &err) != 0) {
        http_reply_text(r, 400, "invalid query string: %s", err.msg);
        return false;
    }
    return true;
}

static void dispatch(struct evhttp_request *evreq, void *arg)
{
    listener_t *l = arg;
    http_server_t *s = l->srv;
    http_req_t *r = req_new(l, evreq);
    if (!r) {
        evhttp_send_error(evreq, 503, NULL);
        return;
    }
    if (parse_target(r, evhttp_request_get_uri(evreq)) != 0) {
        r->path = STR("(invalid)");
        http_reply_text(r, 400, "invalid request path");
        return;
    }
    if (s->shutting_down) {
        http_add_header(r, "Connection", "close");
        http_reply_text(r, 503, "Skillscope is shutting down");
        return;
    }
    if (cors_preflight(r))
        return;

    unsigned allow;
    const route_t *rt = route_find(s, l, r->path, r->method_bit, &allow);
    if (!rt) {
        if (!allow) {
            http_reply_text(r, 404, "404 page not found: %.*s", STR_FMT(r->path));
            return;
        }
        char allow_s[128];
        allow_header(allow_s, sizeof allow_s, allow);
        http_add_header(r, "Allow", allow_s);
        http_reply_text(r, 405, "method %s not allowed for %.*s (allowed: %s)", r->method,
                        STR_FMT(r->path), allow_s);
        return;
    }
    r->route = rt;
    r->metrics = (route_metrics_t *)&rt->m;
    r->tail = rt->prefix ? (str_t){r->path.ptr + rt->match_len, r->path.len - rt->match_len}
                         : (str_t){r->path.ptr + r->path.len, 0};
    if (!req_read_body(r, rt) || !req_parse_params(r))
        return;

    rt->fn(r, rt->arg);
    /* r is still allocated: a reply only queues the response (on_complete frees r later), and a
     * request can only be cancelled from the loop, after this returns. */
    if (!r->replied)
        watch_start(r);
}

/* ---------------------------------------------------------------------------------------------
 * Request accessors
 * ------------------------------------------------------------------------------------------- */

const char *http_req_method(const http_req_t *r) { return r->method; }
unsigned http_req_method_bit(const http_req_t *r) { return r->method_bit; }
str_t http_req_path(const http_req_t *r) { return r->path; }
str_t http_req_tail(const http_req_t *r) { return r->tail; }
str_t http_req_query(const http_req_t *r) { return r->query; }
str_t http_req_body(const http_req_t *r) { return r->body; }
const char *http_req_content_encoding(const http_req_t *r) { return r->content_encoding; }
arena_t *http_req_arena(http_req_t *r) { return &r->arena; }
const char *http_req_peer(const http_req_t *r) { return r->peer; }
const char *http_req_listener(const http_req_t *r) { return r->lst->name; }
bool http_req_cancelled(const http_req_t *r) { return r->cancelled; }
str_t http_req_media_type(const http_req_t *r) { return r->media_type; }
size_t http_req_n_params(const http_req_t *r) { return r->n_params; }

void http_req_param_at(const http_req_t *r, size_t i, str_t *key, str_t *value)
{
    *key = r->params[i].key;
    *value = r->params[i].value;
}

str_t http_req_param(const http_req_t *r, const char *name)
{
    for (size_t i = 0; i < r->n_params; i++)
        if (str_eq_cstr(r->params[i].key, name))
            return r->params[i].value;
    return STR_NULL;
}

size_t http_req_params(http_req_t *r, const char *name, str_t **out)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_params; i++)
        n += str_eq_cstr(r->params[i].key, name);
    *out = ARENA_ARRAY(&r->arena, str_t, n ? n : 1);
    n = 0;
    for (size_t i = 0; i < r->n_params; i++)
        if (str_eq_cstr(r->params[i].key, name))
            (*out)[n++] = r->params[i].value;
    return n;
}

const char *http_req_header(const http_req_t *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->headers[i].key, name) == 0)
            return r->headers[i].value;
    return NULL;
}

str_t http_req_content_type_param(const http_req_t *r, const char *name)
{
    return http_content_type_param(str_cstr(r->content_type), name,
                                   (arena_t *)&((http_req_t *)r)->arena);
}

/* ---------------------------------------------------------------------------------------------
 * Graceful shutdown
 * ------------------------------------------------------------------------------------------- */

static void fire_done(void *arg)
{
    http_server_t *s = arg;
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

static void maybe_shutdown_done(http_server_t *s)
{
    if (s->shutting_down && s->inflight == 0 && s->done_cb && !s->done_timer)
        s->done_timer = loop_timer_start(s->loop, 0, false, fire_done, s);
}

static void shutdown_timeout(void *arg)
{
    http_server_t *s = arg;
    s->shutdown_timer = NULL;
    if (s->inflight)
        log_warn("shutdown: requests still in flight after the grace period", "n=%zu", s->inflight);
    if (s->done_timer) {
        loop_timer_stop(s->done_timer);
        s->done_timer = NULL;
    }
    fire_done(s);
}

void http_server_shutdown(http_server_t *s, int64_t timeout_ms, void (*done)(void *arg), void *arg)
{
    if (!s->shutting_down) {
        s->shutting_down = true;
        for (size_t i = 0; i < s->n_lst; i++) {
            if (s->lst[i].bound) {
                evhttp_del_accept_socket(s->lst[i].http, s->lst[i].bound);
                s->lst[i].bound = NULL;
            }
        }
    }
    s->done_cb = done;
    s->done_arg = arg;
    /* Open streams never finish by themselves: end them now. */
    for (http_req_t *r = s->live, *nx; r; r = nx) {
        nx = r->next;
        if (r->streaming) {
            stream_closed(r);
            http_reply_end(r);
        }
    }
    if (!s->shutdown_timer)
        s->shutdown_timer = loop_timer_start(s->loop, timeout_ms, false, shutdown_timeout, s);
    maybe_shutdown_done(s);
}
