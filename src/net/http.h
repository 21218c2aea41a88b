/*
 * http.h - the HTTP/1.1 server every HTTP endpoint of Skillscope registers on.
 *
 * One http_server_t owns one or more named listeners (e.g. "main" on 127.0.0.1:3000 and
 * "otlp_http" on 127.0.0.1:4318). Routes are registered on all listeners or on one by name:
 * a method mask plus an exact path ("/api/v1/query") or a prefix ending in '*'
 * ("/api/traces/" followed by a star; the rest of the path is the request's tail). Exact routes win
 * over prefixes, longer prefixes over shorter ones; a path whose route lacks the method gets 405
 * with Allow, an unknown path 404. HEAD is routed like GET (the body is not sent).
 *
 * Before a handler runs the server has: read the whole body (raw size limit, 413), decoded
 * Content-Encoding gzip / deflate / zstd while enforcing the decompressed size limit as it inflates
 * (413, so a compression bomb never allocates past the limit), answered 415 for unknown encodings
 * (snappy is left as is, see http_req_content_encoding), parsed the query string and an
 * application/x-www-form-urlencoded body into one parameter list (body values first, as Go's
 * FormValue), and copied the headers. Everything a request accessor returns lives in the request's
 * arena and stays valid until the reply.
 *
 * Replies: a handler calls http_reply* once, either before returning or later from the loop
 * thread (asynchronous reply, e.g. after the WAL is durable). If the client disconnects while a
 * reply is pending, the request is marked cancelled and the late http_reply only frees it. The
 * server adds Access-Control-Allow-Origin to every response, answers CORS preflights (OPTIONS)
 * itself, and gzips bodies over 1 KiB for clients that accept gzip.
 *
 * Threads: everything here runs on the loop thread.
 */
#ifndef NET_HTTP_H
#define NET_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/str.h"
#include "net/loop.h"

typedef struct http_server http_server_t;
typedef struct http_req http_req_t;

enum {
    HTTP_GET = 1 << 0,
    HTTP_POST = 1 << 1,
    HTTP_PUT = 1 << 2,
    HTTP_DELETE = 1 << 3,
    HTTP_PATCH = 1 << 4,
    HTTP_HEAD = 1 << 5,
    HTTP_OPTIONS = 1 << 6,
};

/* Defaults per route: raw (on the wire) body 16 MiB, decoded body 64 MiB. OTLP exporters batch
 * well under 4 MiB compressed; remote_write batches are ~1 MiB; the decoded limit bounds memory. */
#define HTTP_DEFAULT_MAX_BODY_BYTES (16u << 20)
#define HTTP_DEFAULT_MAX_DECODED_BYTES (64u << 20)
/* Responses larger than this are gzipped for clients that accept it. */
#define HTTP_GZIP_MIN_BYTES 1024

typedef void (*http_handler_fn)(http_req_t *req, void *arg);

/* Called instead of the default text/plain reply when the body cannot be read or decoded (413,
 * 415, 400 for corrupt compressed data), so a protocol can answer in its own error format. It
 * must reply. arg is the route's handler arg; msg says what was wrong. */
typedef void (*http_body_error_fn)(http_req_t *req, int status, const char *msg, void *arg);

typedef struct http_route_opts {
    size_t max_body_bytes;         /* 0 = HTTP_DEFAULT_MAX_BODY_BYTES */
    size_t max_decoded_bytes;      /* 0 = HTTP_DEFAULT_MAX_DECODED_BYTES */
    http_body_error_fn body_error; /* NULL = text/plain reply */
} http_route_opts_t;

/* ---- server ---- */

/* The server lives on loop l, which must outlive it. */
http_server_t *http_server_new(loop_t *l);
/* Closes listeners and connections; requests still pending are freed without a reply (their
 * handlers must not reply after this). */
void http_server_free(http_server_t *s);
/* Binds host:port (port 0 picks a free port) and starts accepting under the given name (a literal
 * or a string that outlives the server). On failure err says e.g.
 * "127.0.0.1:3000: Address already in use". */
int http_server_listen(http_server_t *s, const char *name, const char *host, int port, err_t *err);
/* The bound port of a listener (useful with port 0); -1 if there is no such listener. */
int http_server_port(const http_server_t *s, const char *name);
size_t http_server_n_listeners(const http_server_t *s);
/* Name and "host:port" of listener i (the address in URL form: IPv6 in brackets). */
const char *http_server_listener_name(const http_server_t *s, size_t i);
const char *http_server_listener_addr(const http_server_t *s, size_t i);
/* Access-Control-Allow-Origin value (default "*"; NULL or "" turns CORS headers off). Copied. */
void http_server_set_cors_origin(http_server_t *s, const char *origin);

/* Registers fn for methods (HTTP_GET | ...) on pattern, on the listener named listener (NULL =
 * every listener, including ones added later). pattern is an exact path or a prefix ending in '*';
 * it is kept by pointer (literal). opts may be NULL. ERR_INVAL for a malformed pattern or method
 * mask, ERR_EXISTS when the same pattern, listener and a method are already taken. */
int http_route(http_server_t *s, const char *listener, unsigned methods, const char *pattern,
               http_handler_fn fn, void *arg, const http_route_opts_t *opts);

/* Graceful shutdown: closes the listening sockets, answers new requests on open connections with
 * 503, and calls done(arg) on the loop thread once no request is in flight (handlers finished
 * and replies written) or after timeout_ms, whichever is first. */
void http_server_shutdown(http_server_t *s, int64_t timeout_ms, void (*done)(void *arg), void *arg);
/* Requests received and not yet fully answered. */
size_t http_server_inflight(const http_server_t *s);

/* ---- request ---- */

/* "GET", "POST", ... and the HTTP_* bit. */
const char *http_req_method(const http_req_t *r);
unsigned http_req_method_bit(const http_req_t *r);
/* The percent-decoded path, and the part after the route's prefix ("" for exact routes). */
str_t http_req_path(const http_req_t *r);
str_t http_req_tail(const http_req_t *r);
/* The raw query string (without '?'). */
str_t http_req_query(const http_req_t *r);
/* The first value of parameter name (body before query); ptr is NULL when absent, and a present
 * but empty parameter has a non-NULL ptr and len 0. */
str_t http_req_param(const http_req_t *r, const char *name);
/* Every value of a repeated parameter (e.g. "match[]"), body values first; *out lives in the
 * request arena. Returns the count. */
size_t http_req_params(http_req_t *r, const char *name, str_t **out);
/* All parameters in order (body first): for handlers that look at every key. */
size_t http_req_n_params(const http_req_t *r);
void http_req_param_at(const http_req_t *r, size_t i, str_t *key, str_t *value);
/* Header value (case-insensitive name; the first one when repeated), NULL when absent. */
const char *http_req_header(const http_req_t *r, const char *name);
/* Media type of Content-Type, lowercased, without parameters ("application/x-protobuf");
 * empty when there is no Content-Type. */
str_t http_req_media_type(const http_req_t *r);
/* A Content-Type parameter by name (e.g. "proto", "charset"), unquoted; ptr NULL when absent. */
str_t http_req_content_type_param(const http_req_t *r, const char *name);
/* The body, decoded when it was gzip/deflate/zstd. */
str_t http_req_body(const http_req_t *r);
/* NULL when the body is plain (identity or decoded by the server); "snappy" when the client sent
 * Content-Encoding: snappy, which is left for the caller (remote_write and Loki push use the
 * snappy block format, not the framed stream). */
const char *http_req_content_encoding(const http_req_t *r);
/* Memory freed with the request: allocate freely while handling it. */
arena_t *http_req_arena(http_req_t *r);
/* Peer address "ip:port". */
const char *http_req_peer(const http_req_t *r);
/* Name of the listener the request arrived on. */
const char *http_req_listener(const http_req_t *r);
/* True once the client went away while a reply was pending; replying is then a no-op. */
bool http_req_cancelled(const http_req_t *r);

/* ---- response ---- */

/* Adds a response header (copied); call before the reply. */
void http_add_header(http_req_t *r, const char *name, const char *value);
/* Sends the response (body copied) and ends the request: r must not be used afterwards.
 * content_type may be NULL when len is 0. */
void http_reply(http_req_t *r, int status, const char *content_type, const void *body, size_t len);
/* Like http_reply, taking the memory of body (b is left empty). */
void http_reply_buf(http_req_t *r, int status, const char *content_type, buf_t *b);
/* A text/plain reply: the formatted message plus a newline. */
void http_reply_text(http_req_t *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- streaming replies (chunked transfer, e.g. NDJSON that never ends) ----
 *
 * http_reply_start sends the status line and headers (Transfer-Encoding: chunked; no gzip) and
 * counts as the handler's one reply; the body then follows in http_reply_chunk calls, on the loop
 * thread, for as long as the stream lives, and http_reply_end finishes it (r must not be used
 * after). The stream ends without http_reply_end when the client disconnects, or when the server
 * shuts down (http_server_shutdown ends open streams at once so they do not hold up the drain) or
 * is freed: on_close(arg) is then called once, and from that moment r must not be used. Memory is
 * the caller's to bound: check http_reply_queued before writing and drop data for a slow client.
 * A stream has no connection timeout while it is open (the client only reads). */

typedef void (*http_stream_close_fn)(void *arg);

/* ERR_CLOSED when the client already left: r is then freed and on_close is not called. */
int http_reply_start(http_req_t *r, int status, const char *content_type,
                     http_stream_close_fn on_close, void *arg);
/* Queues len bytes (copied) as one chunk. ERR_CLOSED when the stream is no longer writable. */
int http_reply_chunk(http_req_t *r, const void *data, size_t len);
/* Bytes queued on the connection and not yet written to the socket. */
size_t http_reply_queued(const http_req_t *r);
/* Sends the last chunk; r is freed once it is written. on_close is not called. */
void http_reply_end(http_req_t *r);

/* ---- parsing helpers (exposed for tests and the fuzzer; all input is untrusted) ---- */

typedef struct http_param {
    str_t key;
    str_t value;
} http_param_t;

typedef enum http_coding {
    HTTP_CODING_IDENTITY,
    HTTP_CODING_GZIP,
    HTTP_CODING_DEFLATE, /* zlib-wrapped, or raw deflate as some clients send */
    HTTP_CODING_ZSTD,
    HTTP_CODING_SNAPPY,
    HTTP_CODING_UNKNOWN,
} http_coding_t;

/* Percent-decodes s into out (at least s.len bytes); '+' becomes a space when plus_space.
 * Returns the decoded length, or -1 for a malformed escape. */
long http_url_decode(str_t s, bool plus_space, char *out);
/* Parses "a=1&b=%20x&b=2" (query string or urlencoded form) and appends the pairs to *params
 * (an arena array of *n entries, grown in a). ERR_PARSE with a message for malformed escapes. */
int http_parse_form(str_t s, arena_t *a, http_param_t **params, size_t *n, err_t *err);
/* The coding named by a Content-Encoding value ("gzip", "x-gzip", "deflate", "zstd", "snappy",
 * "identity" or empty). */
http_coding_t http_coding_parse(str_t v);
/* Decodes in (gzip, deflate or zstd) into out, failing with ERR_TOOBIG ("decompressed body exceeds
 * N bytes") before out grows past max_bytes (+ at most 64 KiB of slack), ERR_PARSE for corrupt
 * data. out must be empty on entry; the caller frees it. */
int http_decode_body(str_t in, http_coding_t coding, size_t max_bytes, buf_t *out, err_t *err);
/* True when an Accept-Encoding value allows gzip (q > 0, or "*"). */
bool http_accepts_gzip(const char *accept_encoding);
/* The lowercased media type of a Content-Type value, in arena a. */
str_t http_media_type(str_t content_type, arena_t *a);
/* The value of parameter name in a Content-Type value (quotes removed), in a; ptr NULL if absent.
 */
str_t http_content_type_param(str_t content_type, const char *name, arena_t *a);

#endif
