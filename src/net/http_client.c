/*
 * http_client.c - outbound HTTP/1.1 over libevent bufferevents (http_client.h).
 *
 * A call goes through: a 0 ms timer (so no callback ever runs inside http_client_send), connect
 * (bufferevent_socket_connect_hostname; numeric hosts need no lookup, names get a per-call evdns
 * base that reads resolv.conf and /etc/hosts), write the request, then a small response state
 * machine fed from the input evbuffer:
 *
 *   STATUS -> HEADERS -> BODY_LEN (Content-Length) | CHUNK_SIZE <-> CHUNK_DATA -> TRAILERS
 *                      | BODY_EOF (no length: until the server closes)
 *
 * The status line plus headers may take at most 64 KiB; the wire body at most max_body_bytes.
 * A gzip or deflate Content-Encoding is decoded with net/http's decoder, which enforces the same
 * limit on the decoded size. A one-shot timer holds the deadline of the whole exchange.
 */
#include "net/http_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/version.h"
#include "net/http.h"
#include "net/internal.h"

#define MAX_HEADER_BYTES (64u << 10)
#define MAX_HEADERS 100

typedef enum state {
    S_STATUS,
    S_HEADERS,
    S_BODY_LEN,
    S_CHUNK_SIZE,
    S_CHUNK_DATA,
    S_CHUNK_CRLF,
    S_TRAILERS,
    S_BODY_EOF,
    S_DONE,
} state_t;

typedef struct header {
    char *name;
    char *value;
} header_t;

struct http_call {
    loop_t *loop;
    http_client_cb cb;
    void *arg;
    char *host;
    int port;
    buf_t request;
    int64_t timeout_ms;
    size_t max_body;
    int64_t start_ns;

    loop_timer_t *start_timer; /* 0 ms: connect */
    loop_timer_t *deadline;
    struct evdns_base *dns;
    struct bufferevent *bev;

    state_t state;
    size_t header_bytes;
    int status;
    header_t headers[MAX_HEADERS];
    size_t n_headers;
    bool head_request;
    int64_t content_length; /* -1 = none */
    bool chunked;
    uint64_t chunk_left;
    buf_t body;
    bool finished;
};

static void call_free(http_call_t *c)
{
    if (c->start_timer)
        loop_timer_stop(c->start_timer);
    if (c->deadline)
        loop_timer_stop(c->deadline);
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->dns)
        evdns_base_free(c->dns, 0);
    for (size_t i = 0; i < c->n_headers; i++) {
        free(c->headers[i].name);
        free(c->headers[i].value);
    }
    buf_deinit(&c->request);
    buf_deinit(&c->body);
    free(c->host);
    free(c);
}

const char *http_call_header(const http_call_t *c, const char *name)
{
    for (size_t i = 0; i < c->n_headers; i++)
        if (strcasecmp(c->headers[i].name, name) == 0)
            return c->headers[i].value;
    return NULL;
}

/* Ends the call: runs the callback with either an error or the (decoded) body, then frees. */
static void finish(http_call_t *c, const char *error)
{
    if (c->finished)
        return;
    c->finished = true;
    http_client_resp_t r = {.call = c, .status = error ? 0 : c->status, .error = error};
    r.wire_bytes = buf_len(&c->body);
    buf_t decoded = BUF_INIT;
    char msg[600];
    const char *enc = http_call_header(c, "Content-Encoding");
    http_coding_t coding = enc ? http_coding_parse(str_cstr(enc)) : HTTP_CODING_IDENTITY;
    if (!error && coding != HTTP_CODING_IDENTITY) {
        err_t err;
        err_clear(&err);
        if (coding == HTTP_CODING_UNKNOWN || coding == HTTP_CODING_SNAPPY) {
            snprintf(msg, sizeof msg, "unsupported Content-Encoding \"%s\"", enc);
            r.error = msg;
            r.status = 0;
        } else if (http_decode_body(buf_str(&c->body), coding, c->max_body, &decoded, &err) != 0) {
            snprintf(msg, sizeof msg, "decoding the %s body: %s", enc, err.msg);
            r.error = msg;
            r.status = 0;
        } else {
            r.body = buf_str(&decoded);
        }
    } else if (!error) {
        r.body = buf_str(&c->body);
    }
    r.duration_ns = clock_mono_ns() - c->start_ns;
    c->cb(c->arg, &r);
    buf_deinit(&decoded);
    call_free(c);
}

static void finish_errno(http_call_t *c, const char *what, int e)
{
    char msg[300];
    snprintf(msg, sizeof msg, "%s: %s", what, e ? strerror(e) : "unknown error");
    finish(c, msg);
}

static void on_deadline(void *arg)
{
    http_call_t *c = arg;
    c->deadline = NULL; /* a fired one-shot timer frees itself */
    char msg[64];
    snprintf(msg, sizeof msg, "timed out after %lld ms", (long long)c->timeout_ms);
    finish(c, msg);
}

static char *dup_trim(const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    char *o = malloc(n + 1);
    if (o) {
        memcpy(o, s, n);
        o[n] = 0;
    }
    return o;
}

static int parse_status(http_call_t *c, const char *line)
{
    /* HTTP/1.x SP 3DIGIT [SP reason] */
    if (strncmp(line, "HTTP/1.", 7) != 0 || !line[7] || line[8] != ' ')
        return -1;
    const char *s = line + 9;
    if (s[0] < '1' || s[0] > '5' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' ||
        (s[3] && s[3] != ' '))
        return -1;
    c->status = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    return 0;
}

static int add_header(http_call_t *c, const char *line)
{
    const char *colon = strchr(line, ':');
    if (!colon || colon == line)
        return -1;
    if (c->n_headers == MAX_HEADERS)
        return -2;
    header_t *h = &c->headers[c->n_headers];
    h->name = dup_trim(line, (size_t)(colon - line));
    h->value = dup_trim(colon + 1, strlen(colon + 1));
    if (!h->name || !h->value) {
        free(h->name);
        free(h->value);
        return -2;
    }
    c->n_headers++;
    return 0;
}

static bool body_room(http_call_t *c, size_t more)
{
    return more <= c->max_body && buf_len(&c->body) <= c->max_body - more; /* no overflow */
}

static void headers_done(http_call_t *c)
{
    const char *te = http_call_header(c, "Transfer-Encoding");
    const char *cl = http_call_header(c, "Content-Length");
    c->chunked = te && strcasestr(te, "chunked");
    c->content_length = -1;
    if (cl) {
        char *end;
        errno = 0;
        long long v = strtoll(cl, &end, 10);
        if (!errno && end != cl && !*end && v >= 0)
            c->content_length = v;
    }
    if (c->head_request || c->status == 204 || c->status == 304)
        c->state = S_DONE;
    else if (c->chunked)
        c->state = S_CHUNK_SIZE;
    else if (c->content_length >= 0)
        c->state = c->content_length == 0 ? S_DONE : S_BODY_LEN;
    else
        c->state = S_BODY_EOF;
}

/* One CRLF-terminated line of the status, headers, chunk framing or trailers (line without its
 * CRLF, n bytes). Returns false with msg set when the response is malformed. */
static bool on_line(http_call_t *c, const char *line, size_t n, char *msg, size_t cap)
{
    int bad = 0;
    if (c->state == S_STATUS) {
        c->header_bytes += n + 2;
        if (parse_status(c, line) != 0) {
            snprintf(msg, cap, "malformed HTTP status line \"%.60s\"", line);
            bad = 1;
        } else {
            c->state = S_HEADERS;
        }
    } else if (c->state == S_HEADERS) {
        c->header_bytes += n + 2;
        if (c->header_bytes > MAX_HEADER_BYTES) {
            snprintf(msg, cap, "response headers exceed 64 KiB");
            bad = 1;
        } else if (n == 0) {
            if (c->status < 200) { /* 1xx: the real response follows */
                for (size_t i = 0; i < c->n_headers; i++) {
                    free(c->headers[i].name);
                    free(c->headers[i].value);
                }
                c->n_headers = 0;
                c->state = S_STATUS;
            } else {
                headers_done(c);
                if (c->content_length > 0 && (uint64_t)c->content_length > c->max_body) {
                    snprintf(msg, cap, "response body exceeds %zu bytes", c->max_body);
                    bad = 1;
                }
            }
        } else {
            int rc = add_header(c, line);
            if (rc == -1) {
                snprintf(msg, cap, "malformed response header \"%.60s\"", line);
                bad = 1;
            } else if (rc == -2) {
                snprintf(msg, cap, "more than %d response headers", MAX_HEADERS);
                bad = 1;
            }
        }
    } else if (c->state == S_CHUNK_SIZE) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(line, &end, 16);
        if (end == line || errno || (*end && *end != ';' && *end != ' ')) {
            snprintf(msg, cap, "malformed chunk size \"%.40s\"", line);
            bad = 1;
        } else if (v == 0) {
            c->state = S_TRAILERS;
        } else if (!body_room(c, v)) {
            snprintf(msg, cap, "response body exceeds %zu bytes", c->max_body);
            bad = 1;
        } else {
            c->chunk_left = v;
            c->state = S_CHUNK_DATA;
        }
    } else if (c->state == S_CHUNK_CRLF) {
        if (n != 0) {
            snprintf(msg, cap, "missing CRLF after a chunk");
            bad = 1;
        } else {
            c->state = S_CHUNK_SIZE;
        }
    } else { /* trailers */
        if (n == 0)
            c->state = S_DONE;
    }
    return !bad;
}

/* Consumes what it can from in. Returns false once the call has finished (or failed). */
static bool process(http_call_t *c, struct evbuffer *in)
{
    char msg[200];
    for (;;) {
        switch (c->state) {
        case S_STATUS:
        case S_HEADERS:
        case S_CHUNK_SIZE:
        case S_CHUNK_CRLF:
        case S_TRAILERS: {
            size_t n;
            char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
            if (!line) {
                if (c->state <= S_HEADERS &&
                    c->header_bytes + evbuffer_get_length(in) > MAX_HEADER_BYTES) {
                    finish(c, "response headers exceed 64 KiB");
                    return false;
                }
                return true;
            }
            bool ok = on_line(c, line, n, msg, sizeof msg);
            free(line);
            if (!ok) {
                finish(c, msg);
                return false;
            }
            break;
        }
        case S_BODY_LEN:
        case S_CHUNK_DATA:
        case S_BODY_EOF: {
            size_t avail = evbuffer_get_length(in);
            if (!avail)
                return true;
            size_t want = avail;
            if (c->state == S_BODY_LEN)
                want = (size_t)c->content_length - buf_len(&c->body);
            else if (c->state == S_CHUNK_DATA)
                want = (size_t)c->chunk_left;
            if (want > avail)
                want = avail;
            if (!body_room(c, want)) {
                snprintf(msg, sizeof msg, "response body exceeds %zu bytes", c->max_body);
                finish(c, msg);
                return false;
            }
            uint8_t *dst = buf_reserve(&c->body, want);
            evbuffer_remove(in, dst, want);
            c->body.last += want;
            if (c->state == S_BODY_LEN && buf_len(&c->body) == (size_t)c->content_length)
                c->state = S_DONE;
            else if (c->state == S_CHUNK_DATA && (c->chunk_left -= want) == 0)
                c->state = S_CHUNK_CRLF;
            break;
        }
        case S_DONE:
            finish(c, NULL);
            return false;
        }
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    http_call_t *c = arg;
    process(c, bufferevent_get_input(bev));
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    http_call_t *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        if (c->dns) { /* the lookup is over */
            evdns_base_free(c->dns, 0);
            c->dns = NULL;
        }
        return;
    }
    if (what & BEV_EVENT_EOF) {
        struct evbuffer *in = bufferevent_get_input(bev);
        if (!process(c, in))
            return;
        if (c->state == S_BODY_EOF) {
            finish(c, NULL);
            return;
        }
        finish(c, c->state == S_STATUS && c->header_bytes == 0
                      ? "connection closed by the server before a response"
                      : "connection closed before the response was complete");
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        int dns_err = bufferevent_socket_get_dns_error(bev);
        if (dns_err) {
            char msg[300];
            snprintf(msg, sizeof msg, "lookup %s: %s", c->host, evutil_gai_strerror(dns_err));
            finish(c, msg);
            return;
        }
        int e = EVUTIL_SOCKET_ERROR();
        finish_errno(c, c->state == S_STATUS && c->header_bytes == 0 ? "connect" : "read", e);
    }
}

static bool is_numeric_host(const char *h)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char tmp[300];
    if (strchr(h, ':')) {
        snprintf(tmp, sizeof tmp, "[%s]:1", h);
    } else {
        snprintf(tmp, sizeof tmp, "%s:1", h);
    }
    return evutil_parse_sockaddr_port(tmp, (struct sockaddr *)&ss, &len) == 0;
}

static void on_start(void *arg)
{
    http_call_t *c = arg;
    c->start_timer = NULL;
    struct event_base *base = loop__base(c->loop);
    c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!c->bev) {
        finish(c, "cannot create a socket buffer");
        return;
    }
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (!is_numeric_host(c->host)) {
        c->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
        if (!c->dns)
            c->dns = evdns_base_new(base, 0);
    }
    bufferevent_write(c->bev, c->request.pos, buf_len(&c->request));
    errno = 0;
    if (bufferevent_socket_connect_hostname(c->bev, c->dns, AF_UNSPEC, c->host, c->port) != 0) {
        int dns_err = bufferevent_socket_get_dns_error(c->bev);
        if (dns_err) {
            char msg[300];
            snprintf(msg, sizeof msg, "lookup %s: %s", c->host, evutil_gai_strerror(dns_err));
            finish(c, msg);
        } else {
            finish_errno(c, "connect", errno);
        }
    }
}

int http_url_split(const char *url, char **out_host, int *out_port, char **out_target, err_t *err)
{
    *out_host = *out_target = NULL;
    const char *p = url ? strstr(url, "://") : NULL;
    if (!p)
        return err_set(err, ERR_INVAL, "invalid URL \"%s\": expected http://host[:port]/path",
                       url ? url : "");
    size_t slen = (size_t)(p - url);
    if (slen == 5 && strncasecmp(url, "https", 5) == 0)
        return err_set(err, ERR_UNSUPPORTED, "https is not supported (URL \"%s\"): use http", url);
    if (slen != 4 || strncasecmp(url, "http", 4) != 0)
        return err_set(err, ERR_UNSUPPORTED, "unsupported URL scheme \"%.*s\" in \"%s\"", (int)slen,
                       url, url);
    const char *h = p + 3;
    size_t hl = strcspn(h, "/?#");
    const char *rest = h + hl;
    const char *host = h, *port_s = NULL;
    size_t host_len = hl;
    if (hl && h[0] == '[') {
        const char *rb = memchr(h, ']', hl);
        if (!rb)
            return err_set(err, ERR_INVAL, "invalid URL \"%s\": missing ']'", url);
        host = h + 1;
        host_len = (size_t)(rb - h - 1);
        if (rb + 1 < rest) {
            if (rb[1] != ':')
                return err_set(err, ERR_INVAL, "invalid URL \"%s\": junk after ']'", url);
            port_s = rb + 2;
        }
    } else {
        const char *colon = memchr(h, ':', hl);
        if (colon) {
            host_len = (size_t)(colon - h);
            port_s = colon + 1;
        }
    }
    if (!host_len || memchr(host, '@', host_len))
        return err_set(err, ERR_INVAL, "invalid URL \"%s\": missing or unsupported host", url);
    int port = 80;
    if (port_s) {
        port = 0;
        if (port_s == rest)
            return err_set(err, ERR_INVAL, "invalid URL \"%s\": empty port", url);
        for (const char *q = port_s; q < rest; q++) {
            if (*q < '0' || *q > '9' || port > 65535)
                return err_set(err, ERR_INVAL, "invalid URL \"%s\": bad port", url);
            port = port * 10 + (*q - '0');
        }
        if (port < 1 || port > 65535)
            return err_set(err, ERR_INVAL, "invalid URL \"%s\": port out of range", url);
    }
    size_t tl = strcspn(rest, "#");
    char *target = malloc(tl + 2);
    char *hs = malloc(host_len + 1);
    if (!target || !hs) {
        free(target);
        free(hs);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    if (!tl || rest[0] != '/') {
        target[0] = '/';
        memcpy(target + 1, rest, tl);
        target[tl + 1] = 0;
    } else {
        memcpy(target, rest, tl);
        target[tl] = 0;
    }
    for (char *q = target; *q; q++)
        if ((unsigned char)*q <= ' ') {
            free(target);
            free(hs);
            return err_set(err, ERR_INVAL, "invalid URL \"%s\": blank or control character", url);
        }
    memcpy(hs, host, host_len);
    hs[host_len] = 0;
    *out_host = hs;
    *out_port = port;
    *out_target = target;
    return 0;
}

int http_client_send(loop_t *l, const http_client_req_t *req, http_client_cb cb, void *arg,
                     http_call_t **out, err_t *err)
{
    if (out)
        *out = NULL;
    char *host, *target;
    int port;
    int rc = http_url_split(req->url, &host, &port, &target, err);
    if (rc)
        return rc;
    const char *method = req->method ? req->method : "GET";
    http_call_t *c = calloc(1, sizeof *c);
    if (!c) {
        free(host);
        free(target);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    c->loop = l;
    c->cb = cb;
    c->arg = arg;
    c->host = host;
    c->port = port;
    c->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : HTTP_CLIENT_DEFAULT_TIMEOUT_MS;
    c->max_body = req->max_body_bytes ? req->max_body_bytes : HTTP_CLIENT_DEFAULT_MAX_BODY_BYTES;
    c->head_request = strcmp(method, "HEAD") == 0;
    c->start_ns = clock_mono_ns();
    buf_init(&c->request, 512);
    bool v6 = strchr(host, ':') != NULL;
    buf_printf(&c->request, "%s %s HTTP/1.1\r\nHost: %s%s%s", method, target, v6 ? "[" : "", host,
               v6 ? "]" : "");
    if (port != 80)
        buf_printf(&c->request, ":%d", port);
    buf_printf(&c->request, "\r\nUser-Agent: Skillscope/%s\r\nConnection: close\r\n",
               skillscope_version);
    if (req->accept_gzip)
        buf_puts(&c->request, "Accept-Encoding: gzip\r\n");
    for (const char *const *h = req->headers; h && *h; h++)
        buf_printf(&c->request, "%s\r\n", *h);
    if (req->body.len || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0)
        buf_printf(&c->request, "Content-Length: %zu\r\n", req->body.len);
    buf_puts(&c->request, "\r\n");
    buf_put_str(&c->request, req->body);
    free(target);

    c->start_timer = loop_timer_start(l, 0, false, on_start, c);
    c->deadline = loop_timer_start(l, c->timeout_ms, false, on_deadline, c);
    if (!c->start_timer || !c->deadline) {
        call_free(c);
        return err_set(err, ERR_NOMEM, "cannot start timers");
    }
    if (out)
        *out = c;
    return 0;
}

void http_call_cancel(http_call_t *c)
{
    if (c && !c->finished) {
        c->finished = true;
        call_free(c);
    }
}
