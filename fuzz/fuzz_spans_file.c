/*
 * fuzz_spans_file.c - span files read from disk (store/spans.c) are untrusted bytes.
 *
 * The input is one span file. It is opened as is, and once more with every checksum recomputed
 * (when the footer locates them), so mutations get past the CRCs into the structure and page
 * decoders. Checked properties:
 *   1. open, verify, scan and trace lookups never crash or leak; a file that fails gives
 *      ERR_CORRUPT or ERR_UNSUPPORTED;
 *   2. a file that opens and verifies scans to exactly spans_file_count spans, every trace of
 *      its table is found, and merging it with itself (a rewrite) gives a file with the same
 *      spans, byte for byte (encode/decode round trip).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/crc32c.h"
#include "base/log.h"
#include "base/varint.h"
#include "store/format_spans_logs.h"
#include "store/spans.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void write_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (n && fwrite(p, 1, n, f) != n)
        abort();
    fclose(f);
}

/* Recomputes every checksum the footer leads to, where offsets stay within the file. */
static void fix_crcs(uint8_t *p, size_t n)
{
    if (n < SPANS_HEADER_BYTES + SPANS_FOOTER_BYTES)
        return;
    uint8_t *ft = p + n - SPANS_FOOTER_BYTES;
    uint64_t lim = n - SPANS_FOOTER_BYTES;
    uint64_t dict_off = load_u64le(ft), pidx = load_u64le(ft + 24), tt = load_u64le(ft + 40);
    uint32_t dict_clen = load_u32le(ft + 8), n_pages = load_u32le(ft + 20);
    uint64_t n_traces = load_u64le(ft + 48);
    if (dict_off <= lim && dict_clen <= lim - dict_off)
        store_u32le(ft + 16, crc32c(0, p + dict_off, dict_clen));
    if (pidx <= lim && n_pages <= (lim - pidx) / SPANS_PAGE_REC_BYTES) {
        for (uint32_t i = 0; i < n_pages; i++) {
            uint8_t *rec = p + pidx + (uint64_t)i * SPANS_PAGE_REC_BYTES;
            uint64_t off = load_u64le(rec);
            uint32_t clen = load_u32le(rec + 8);
            if (off <= lim && clen <= lim - off)
                store_u32le(rec + 20, crc32c(0, p + off, clen));
        }
        store_u32le(ft + 32, crc32c(0, p + pidx, (size_t)n_pages * SPANS_PAGE_REC_BYTES));
    }
    if (tt <= lim && n_traces <= (lim - tt) / SPANS_TRACE_REC_BYTES)
        store_u32le(ft + 56, crc32c(0, p + tt, (size_t)n_traces * SPANS_TRACE_REC_BYTES));
    store_u32le(ft + 92, crc32c(0, ft, 92));
}

typedef struct acc {
    buf_t out;
    uint64_t n;
} acc_t;

static bool scan_cb(void *arg, const db_span_t *s)
{
    acc_t *a = arg;
    buf_append(&a->out, s->trace_id, 16);
    buf_append(&a->out, s->span_id, 8);
    buf_append(&a->out, s->parent_span_id, 8);
    buf_put_u64le(&a->out, (uint64_t)s->start_ns);
    buf_put_u64le(&a->out, (uint64_t)s->end_ns);
    buf_put_u32le(&a->out, (uint32_t)s->kind);
    buf_put_u32le(&a->out, (uint32_t)s->status_code);
    str_t strs[] = {s->name, s->service_name, s->resource_pb, s->scope_pb, s->span_pb};
    for (size_t i = 0; i < 5; i++) {
        buf_put_uvarint(&a->out, strs[i].len);
        buf_put_str(&a->out, strs[i]);
    }
    a->n++;
    return true;
}

static void trace_cb(void *arg, const db_span_t *s)
{
    (void)s;
    (*(size_t *)arg)++;
}

static void check_file(const char *path, const char *path2)
{
    spans_file_t *f = NULL;
    err_t err;
    int rc = spans_file_open(path, &f, &err);
    if (rc) {
        if (rc != ERR_CORRUPT && rc != ERR_UNSUPPORTED)
            abort();
        return;
    }
    rc = spans_file_verify(f, &err);
    if (rc) {
        if (rc != ERR_CORRUPT)
            abort();
        spans_file_close(f);
        return;
    }
    acc_t a = {BUF_INIT, 0};
    if (!spans_file_scan(f, INT64_MIN, INT64_MAX, scan_cb, &a) || a.n != spans_file_count(f))
        abort();
    /* every trace of the scan is found by id */
    for (size_t off = 0, seen = 0; off < buf_len(&a.out) && seen < 64; seen++) {
        size_t got = 0;
        if (spans_file_trace(f, a.out.pos + off, 0, 0, trace_cb, &got) == 0 || got == 0)
            abort();
        /* skip to the next record: fixed part, then five length-prefixed strings */
        size_t p = off + 16 + 8 + 8 + 8 + 8 + 4 + 4;
        for (int i = 0; i < 5; i++) {
            uint64_t len = 0;
            size_t k = uvarint_get(a.out.pos + p, a.out.last, &len);
            p += k + (size_t)len;
        }
        off = p;
    }
    /* rewrite through a merge with itself (every span twice) and compare */
    spans_file_t *in[2] = {f, f};
    if (spans_file_merge(in, 2, path2, NULL, &err) != 0)
        abort();
    spans_file_t *g = NULL;
    if (spans_file_open(path2, &g, &err) != 0 || spans_file_verify(g, &err) != 0)
        abort();
    acc_t b = {BUF_INIT, 0};
    spans_file_scan(g, INT64_MIN, INT64_MAX, scan_cb, &b);
    /* the merge drops exact duplicates, so it may hold fewer spans, never more */
    if (b.n > a.n || (b.n == a.n && (buf_len(&a.out) != buf_len(&b.out) ||
                                     (a.n && memcmp(a.out.pos, b.out.pos, buf_len(&a.out))))))
        abort();
    spans_file_close(g);
    buf_deinit(&a.out);
    buf_deinit(&b.out);
    spans_file_close(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[256], path2[300];
    if (!path[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(path, sizeof path, "%s/fuzz-spans-%d", t ? t : "/tmp", (int)getpid());
        snprintf(path2, sizeof path2, "%s.merged", path);
        log_set_level(LOG_ERROR + 1);
    }
    write_file(path, data, size);
    check_file(path, path2);
    uint8_t *copy = malloc(size ? size : 1);
    if (size)
        memcpy(copy, data, size);
    fix_crcs(copy, size);
    write_file(path, copy, size);
    check_file(path, path2);
    free(copy);
    unlink(path);
    unlink(path2);
    return 0;
}
