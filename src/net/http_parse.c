/*
 * http_parse.c - the parts of HTTP message handling that only read bytes: percent-decoding, form
 * and query-string parsing, Content-Encoding names and body decoding (gzip, deflate, zstd) under a
 * size bound, Accept-Encoding, media types and their parameters. All input is untrusted; these are
 * exposed in http.h for the server, the tests and the fuzzer.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>
#include <zstd.h>

#include "net/http.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long http_url_decode(str_t s, bool plus_space, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (c == '%') {
            if (i + 2 >= s.len)
                return -1;
            int hi = hexval((unsigned char)s.ptr[i + 1]), lo = hexval((unsigned char)s.ptr[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && plus_space) {
            out[o++] = ' ';
        } else {
            out[o++] = c;
        }
    }
    return (long)o;
}

/* Grows an arena array of params whose capacity is implied by n (8, 16, 32, ...). */
static http_param_t *params_push(arena_t *a, http_param_t **params, size_t *n)
{
    size_t cap = 0;
    if (*n) {
        cap = 8;
        while (cap < *n)
            cap *= 2;
    }
    if (*n == cap) {
        size_t ncap = cap ? cap * 2 : 8;
        http_param_t *p = ARENA_ARRAY(a, http_param_t, ncap);
        if (*n)
            memcpy(p, *params, *n * sizeof *p);
        *params = p;
    }
    return &(*params)[(*n)++];
}

static int decode_into(arena_t *a, str_t in, str_t *out)
{
    char *p = arena_alloc(a, in.len + 1);
    long n = http_url_decode(in, true, p);
    if (n < 0)
        return -1;
    p[n] = '\0';
    *out = (str_t){p, (size_t)n};
    return 0;
}

int http_parse_form(str_t s, arena_t *a, http_param_t **params, size_t *n, err_t *err)
{
    size_t i = 0;
    while (i < s.len) {
        size_t j = i;
        while (j < s.len && s.ptr[j] != '&')
            j++;
        if (j > i) {
            str_t pair = {s.ptr + i, j - i};
            const char *eq = memchr(pair.ptr, '=', pair.len);
            str_t k = eq ? (str_t){pair.ptr, (size_t)(eq - pair.ptr)} : pair;
            str_t v = eq ? (str_t){eq + 1, pair.len - k.len - 1} : (str_t){pair.ptr + pair.len, 0};
            str_t dk, dv;
            if (decode_into(a, k, &dk) != 0 || decode_into(a, v, &dv) != 0) {
                size_t show = pair.len > 60 ? 60 : pair.len;
                return err_set(err, ERR_PARSE, "invalid URL escape in \"%.*s%s\"", (int)show,
                               pair.ptr, pair.len > show ? "..." : "");
            }
            http_param_t *p = params_push(a, params, n);
            p->key = dk;
            p->value = dv;
        }
        i = j + 1;
    }
    return 0;
}

static str_t trim(str_t s)
{
    while (s.len && (s.ptr[0] == ' ' || s.ptr[0] == '\t'))
        s.ptr++, s.len--;
    while (s.len && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t'))
        s.len--;
    return s;
}

static bool str_ieq(str_t a, const char *b)
{
    size_t n = strlen(b);
    return a.len == n && strncasecmp(a.ptr, b, n) == 0;
}

http_coding_t http_coding_parse(str_t v)
{
    v = trim(v);
    if (v.len == 0 || str_ieq(v, "identity"))
        return HTTP_CODING_IDENTITY;
    if (str_ieq(v, "gzip") || str_ieq(v, "x-gzip"))
        return HTTP_CODING_GZIP;
    if (str_ieq(v, "deflate"))
        return HTTP_CODING_DEFLATE;
    if (str_ieq(v, "zstd"))
        return HTTP_CODING_ZSTD;
    if (str_ieq(v, "snappy"))
        return HTTP_CODING_SNAPPY;
    return HTTP_CODING_UNKNOWN;
}

/* Output growth for decoders: capacity doubles and never exceeds limit (= max_bytes + 1). */
typedef struct outbuf {
    uint8_t *p;
    size_t len, cap, limit;
} outbuf_t;

static int outbuf_grow(outbuf_t *o)
{
    if (o->cap >= o->limit)
        return ERR_TOOBIG;
    size_t ncap = o->cap ? o->cap * 2 : 64u << 10;
    if (ncap > o->limit || ncap < o->cap)
        ncap = o->limit;
    uint8_t *p = realloc(o->p, ncap);
    if (!p)
        return ERR_NOMEM;
    o->p = p;
    o->cap = ncap;
    return 0;
}

static int inflate_all(str_t in, int window_bits, bool gzip_members, outbuf_t *o, err_t *err)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, window_bits) != Z_OK)
        return err_set(err, ERR_NOMEM, "cannot initialise zlib");
    z.next_in = (Bytef *)in.ptr;
    z.avail_in = (uInt)in.len;
    int rc = 0;
    for (;;) {
        if (o->len == o->cap && (rc = outbuf_grow(o)) != 0)
            break;
        z.next_out = o->p + o->len;
        z.avail_out = (uInt)(o->cap - o->len);
        int zr = inflate(&z, Z_NO_FLUSH);
        o->len = o->cap - z.avail_out;
        if (zr == Z_STREAM_END) {
            if (z.avail_in == 0)
                break;
            /* Another gzip member may follow (concatenated gzip files are one stream). */
            if (gzip_members && z.avail_in >= 2 && z.next_in[0] == 0x1f && z.next_in[1] == 0x8b) {
                inflateReset(&z);
                continue;
            }
            rc = err_set(err, ERR_PARSE, "%u bytes of trailing data after the compressed body",
                         z.avail_in);
            break;
        }
        if (zr == Z_BUF_ERROR && z.avail_out != 0) {
            rc = err_set(err, ERR_PARSE, "compressed body is truncated");
            break;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            rc = err_set(err, ERR_PARSE, "corrupt compressed body: %s",
                         z.msg ? z.msg : "inflate failed");
            break;
        }
    }
    inflateEnd(&z);
    return rc;
}

static int unzstd_all(str_t in, outbuf_t *o, err_t *err)
{
    ZSTD_DStream *d = ZSTD_createDStream();
    if (!d)
        return err_set(err, ERR_NOMEM, "cannot initialise zstd");
    /* Bound the decoder's window allocation by the output limit as well. */
    int wlog = 10;
    while (wlog < 27 && ((size_t)1 << wlog) < o->limit)
        wlog++;
    ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, wlog);
    ZSTD_inBuffer ib = {in.ptr, in.len, 0};
    int rc = 0;
    size_t last = 1;
    while (ib.pos < ib.size || last != 0) {
        if (o->len == o->cap && (rc = outbuf_grow(o)) != 0)
            break;
        ZSTD_outBuffer ob = {o->p, o->cap, o->len};
        size_t before_in = ib.pos, before_out = ob.pos;
        last = ZSTD_decompressStream(d, &ob, &ib);
        o->len = ob.pos;
        if (ZSTD_isError(last)) {
            rc = err_set(err, ERR_PARSE, "corrupt zstd body: %s", ZSTD_getErrorName(last));
            break;
        }
        if (ib.pos == ib.size && last != 0 && ob.pos < ob.size && ib.pos == before_in &&
            ob.pos == before_out) {
            rc = err_set(err, ERR_PARSE, "zstd body is truncated");
            break;
        }
    }
    ZSTD_freeDStream(d);
    return rc;
}

int http_decode_body(str_t in, http_coding_t coding, size_t max_bytes, buf_t *out, err_t *err)
{
    outbuf_t o = {NULL, 0, 0, max_bytes + 1};
    int rc;
    if (in.len == 0 && coding != HTTP_CODING_SNAPPY && coding != HTTP_CODING_UNKNOWN &&
        coding != HTTP_CODING_IDENTITY) {
        buf_init(out, 1); /* an empty body stays empty whatever its declared encoding */
        return 0;
    }
    switch (coding) {
    case HTTP_CODING_GZIP:
        rc = inflate_all(in, 15 + 16, true, &o, err);
        break;
    case HTTP_CODING_DEFLATE:
        /* RFC 9110 deflate is zlib-wrapped; some clients send raw deflate. */
        if (in.len >= 2 && ((unsigned char)in.ptr[0] & 0x0f) == 8 &&
            (((unsigned char)in.ptr[0] << 8) | (unsigned char)in.ptr[1]) % 31 == 0)
            rc = inflate_all(in, 15, false, &o, err);
        else
            rc = inflate_all(in, -15, false, &o, err);
        break;
    case HTTP_CODING_ZSTD:
        rc = unzstd_all(in, &o, err);
        break;
    default:
        free(o.p);
        return err_set(err, ERR_INVAL, "not a compressed encoding");
    }
    if (rc == 0 && o.len > max_bytes)
        rc = ERR_TOOBIG;
    if (rc == ERR_TOOBIG)
        err_set(err, ERR_TOOBIG, "decompressed body exceeds %zu bytes", max_bytes);
    else if (rc == ERR_NOMEM)
        err_set(err, ERR_NOMEM, "out of memory decompressing the body");
    if (rc != 0) {
        free(o.p);
        return rc;
    }
    if (!o.p) { /* empty stream */
        buf_init(out, 1);
        return 0;
    }
    out->start = out->pos = o.p;
    out->last = o.p + o.len;
    out->end = o.p + o.cap;
    out->fixed = false;
    return 0;
}

bool http_accepts_gzip(const char *ae)
{
    if (!ae)
        return false;
    str_t s = str_cstr(ae);
    size_t i = 0;
    while (i <= s.len) {
        size_t j = i;
        while (j < s.len && s.ptr[j] != ',')
            j++;
        str_t item = {s.ptr + i, j - i};
        const char *semi = memchr(item.ptr, ';', item.len);
        str_t coding = trim(semi ? (str_t){item.ptr, (size_t)(semi - item.ptr)} : item);
        if (str_ieq(coding, "gzip") || str_ieq(coding, "x-gzip") || str_ieq(coding, "*")) {
            double q = 1;
            if (semi) {
                str_t params = trim((str_t){semi + 1, item.len - (size_t)(semi - item.ptr) - 1});
                if (params.len >= 2 && (params.ptr[0] == 'q' || params.ptr[0] == 'Q') &&
                    params.ptr[1] == '=') {
                    char num[16];
                    size_t n = params.len - 2 < sizeof num - 1 ? params.len - 2 : sizeof num - 1;
                    memcpy(num, params.ptr + 2, n);
                    num[n] = '\0';
                    q = strtod(num, NULL);
                }
            }
            if (q > 0)
                return true;
        }
        i = j + 1;
    }
    return false;
}

str_t http_media_type(str_t ct, arena_t *a)
{
    const char *semi = ct.len ? memchr(ct.ptr, ';', ct.len) : NULL;
    str_t t = trim(semi ? (str_t){ct.ptr, (size_t)(semi - ct.ptr)} : ct);
    char *p = arena_alloc(a, t.len + 1);
    for (size_t i = 0; i < t.len; i++)
        p[i] = (char)tolower((unsigned char)t.ptr[i]);
    p[t.len] = '\0';
    return (str_t){p, t.len};
}

str_t http_content_type_param(str_t ct, const char *name, arena_t *a)
{
    size_t i = 0, nlen = strlen(name);
    /* Skip the media type. */
    while (i < ct.len && ct.ptr[i] != ';')
        i++;
    while (i < ct.len) {
        i++; /* ';' */
        while (i < ct.len && (ct.ptr[i] == ' ' || ct.ptr[i] == '\t'))
            i++;
        size_t k = i;
        while (i < ct.len && ct.ptr[i] != '=' && ct.ptr[i] != ';')
            i++;
        str_t key = trim((str_t){ct.ptr + k, i - k});
        if (i >= ct.len || ct.ptr[i] == ';')
            continue;
        i++; /* '=' */
        while (i < ct.len && (ct.ptr[i] == ' ' || ct.ptr[i] == '\t'))
            i++;
        char *val = arena_alloc(a, ct.len - i + 1);
        size_t vn = 0;
        if (i < ct.len && ct.ptr[i] == '"') {
            for (i++; i < ct.len && ct.ptr[i] != '"'; i++) {
                if (ct.ptr[i] == '\\' && i + 1 < ct.len)
                    i++;
                val[vn++] = ct.ptr[i];
            }
            while (i < ct.len && ct.ptr[i] != ';')
                i++;
        } else {
            size_t v = i;
            while (i < ct.len && ct.ptr[i] != ';')
                i++;
            str_t t = trim((str_t){ct.ptr + v, i - v});
            memcpy(val, t.ptr, t.len);
            vn = t.len;
        }
        val[vn] = '\0';
        if (key.len == nlen && strncasecmp(key.ptr, name, nlen) == 0)
            return (str_t){val, vn};
    }
    return STR_NULL;
}
