/*
 * http_client.h - outbound HTTP/1.1 requests from the loop thread (scrapes; later alert
 * delivery and remote_write out).
 *
 * One call = one TCP connection: connect (numeric addresses directly, host names through an
 * asynchronous evdns lookup that also reads /etc/hosts), send the request with
 * "Connection: close", read the response (Content-Length, chunked or until close), decode a gzip
 * body, call back once. The whole exchange has one deadline. The response body is bounded both
 * on the wire and after decoding, so a large or compressed-bomb answer fails with a message
 * instead of growing memory. Plain http only: "https://" is refused with ERR_UNSUPPORTED.
 *
 * Threads: everything runs on the loop's thread; the callback too.
 */
#ifndef NET_HTTP_CLIENT_H
#define NET_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/str.h"
#include "net/loop.h"

#define HTTP_CLIENT_DEFAULT_TIMEOUT_MS 30000
#define HTTP_CLIENT_DEFAULT_MAX_BODY_BYTES (64u << 20)

typedef struct http_client_req {
    const char *method;         /* NULL = "GET" */
    const char *url;            /* "http://host[:port][/path][?query]" */
    const char *const *headers; /* extra "Name: value" strings, NULL-terminated; may be NULL */
    str_t body;                 /* sent with Content-Length when non-empty */
    int64_t timeout_ms;         /* the whole exchange; 0 = HTTP_CLIENT_DEFAULT_TIMEOUT_MS */
    size_t max_body_bytes;      /* decoded (and wire) body limit; 0 = the default 64 MiB */
    bool accept_gzip;           /* send Accept-Encoding: gzip (gzip/deflate answers are decoded
                                   either way) */
} http_client_req_t;

typedef struct http_call http_call_t;

typedef struct http_client_resp {
    const http_call_t *call; /* for http_call_header */
    int status;              /* HTTP status; 0 when the exchange failed */
    const char *error;       /* why it failed ("connect: Connection refused", "timed out after
                                10000 ms", ...), NULL on success */
    str_t body;              /* decoded body */
    size_t wire_bytes;       /* body bytes as received (before decoding) */
    int64_t duration_ns;     /* from the call to the callback */
} http_client_resp_t;

/* Called exactly once per call that http_client_send started (unless cancelled), never from
 * inside http_client_send. resp and everything it points to are valid during the call only. */
typedef void (*http_client_cb)(void *arg, const http_client_resp_t *resp);

/* Starts the request. On success *out (may be NULL) is the handle, owned by the client until the
 * callback returns. Fails synchronously with ERR_INVAL ("invalid URL ...") or ERR_UNSUPPORTED
 * (https) and a message in err; nothing is called back then. */
int http_client_send(loop_t *l, const http_client_req_t *req, http_client_cb cb, void *arg,
                     http_call_t **out, err_t *err);
/* Aborts a call whose callback has not run yet; the callback will not run. Not from inside the
 * callback. */
void http_call_cancel(http_call_t *c);
/* A response header of a finished call (case-insensitive name), for use inside the callback;
 * NULL when absent. */
const char *http_call_header(const http_call_t *c, const char *name);

/* Splits an http URL: host (IPv6 without brackets), port (default 80) and the request target
 * ("/" when the URL has no path). Strings go to out_host/out_target (caller frees with free()).
 * ERR_UNSUPPORTED for https and other schemes, ERR_INVAL for malformed URLs. */
int http_url_split(const char *url, char **out_host, int *out_port, char **out_target, err_t *err);

#endif
