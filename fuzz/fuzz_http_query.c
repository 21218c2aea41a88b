/*
 * fuzz_http_query.c - the HTTP server's parsers of untrusted bytes: query strings and urlencoded
 * forms (with a re-encode/re-parse round trip), header values (Accept-Encoding, Content-Type and
 * its parameters, Content-Encoding) and body decompression with its size limit.
 *
 * The first input byte picks what the rest is fed to.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "net/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void encode(buf_t *b, str_t s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.') {
            buf_putc(b, (char)c);
        } else {
            buf_putc(b, '%');
            buf_putc(b, hex[c >> 4]);
            buf_putc(b, hex[c & 15]);
        }
    }
}

static void fuzz_form(str_t in)
{
    arena_t a;
    arena_init(&a, 0);
    http_param_t *p = NULL;
    size_t n = 0;
    err_t err;
    if (http_parse_form(in, &a, &p, &n, &err) == 0) {
        /* Round trip: re-encoding the pairs and parsing again gives the same pairs. */
        buf_t b = BUF_INIT;
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
            if (p[i].key.len == 0 && p[i].value.len == 0)
                continue; /* "=" alone re-encodes to "=", which parses as one empty pair: fine */
            if (kept++)
                buf_putc(&b, '&');
            encode(&b, p[i].key);
            buf_putc(&b, '=');
            encode(&b, p[i].value);
        }
        http_param_t *q = NULL;
        size_t m = 0;
        if (http_parse_form(buf_str(&b), &a, &q, &m, &err) != 0 || m != kept)
            abort();
        for (size_t i = 0, j = 0; i < n; i++) {
            if (p[i].key.len == 0 && p[i].value.len == 0)
                continue;
            if (!str_eq(p[i].key, q[j].key) || !str_eq(p[i].value, q[j].value))
                abort();
            j++;
        }
        buf_deinit(&b);
    }
    char *out = malloc(in.len + 1);
    long dn = http_url_decode(in, false, out);
    if (dn > (long)in.len)
        abort();
    free(out);
    arena_deinit(&a);
}

static void fuzz_headers(str_t in)
{
    char *c = malloc(in.len + 1);
    memcpy(c, in.ptr, in.len);
    c[in.len] = '\0';
    (void)http_accepts_gzip(c);
    arena_t a;
    arena_init(&a, 0);
    str_t mt = http_media_type(in, &a);
    if (mt.len > in.len)
        abort();
    static const char *names[] = {"proto", "charset", "boundary", ""};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        str_t v = http_content_type_param(in, names[i], &a);
        if (v.ptr && v.len > in.len)
            abort();
    }
    (void)http_coding_parse(in);
    arena_deinit(&a);
    free(c);
}

static void fuzz_decode(str_t in, http_coding_t coding)
{
    const size_t limit = 1 << 20;
    buf_t out = BUF_INIT;
    err_t err;
    int rc = http_decode_body(in, coding, limit, &out, &err);
    if (rc == 0 && buf_len(&out) > limit)
        abort();
    if (rc != 0 && out.start)
        abort(); /* nothing is handed out on failure */
    buf_deinit(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    str_t in = {(const char *)data + 1, size - 1};
    switch (data[0] % 5) {
    case 0:
        fuzz_form(in);
        break;
    case 1:
        fuzz_headers(in);
        break;
    case 2:
        fuzz_decode(in, HTTP_CODING_GZIP);
        break;
    case 3:
        fuzz_decode(in, HTTP_CODING_DEFLATE);
        break;
    case 4:
        fuzz_decode(in, HTTP_CODING_ZSTD);
        break;
    }
    return 0;
}
