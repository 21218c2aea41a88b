/*
 * fuzz_logs_file.c - log files read from disk (store/logs.c) are untrusted bytes.
 *
 * The input is one log file. It is opened as is, and once more with every checksum recomputed
 * (when the footer locates them), so mutations get past the CRCs into the stream table and chunk
 * decoders (timestamps, JSON templates and value columns, metadata). Checked properties:
 *   1. open, verify, select, label listing and merge never crash or leak; a file that fails gives
 *      ERR_CORRUPT or ERR_UNSUPPORTED;
 *   2. a file that opens and verifies selects at most logs_file_entries entries in time order;
 *      without duplicates, backward is exactly forward reversed;
 *   3. merging it with itself (every entry twice) gives a file that selects the same entries,
 *      byte for byte (encode/decode round trip).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/crc32c.h"
#include "base/log.h"
#include "store/format_spans_logs.h"
#include "store/logs.h"

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

static void fix_crcs(uint8_t *p, size_t n)
{
    if (n < LOGS_HEADER_BYTES + LOGS_FOOTER_BYTES)
        return;
    uint8_t *ft = p + n - LOGS_FOOTER_BYTES;
    uint64_t lim = n - LOGS_FOOTER_BYTES;
    uint64_t st = load_u64le(ft), ci = load_u64le(ft + 24);
    uint32_t st_clen = load_u32le(ft + 8), n_chunks = load_u32le(ft + 32);
    if (st <= lim && st_clen <= lim - st)
        store_u32le(ft + 16, crc32c(0, p + st, st_clen));
    if (ci <= lim && n_chunks <= (lim - ci) / LOGS_CHUNK_REC_BYTES) {
        for (uint32_t i = 0; i < n_chunks; i++) {
            uint8_t *rec = p + ci + (uint64_t)i * LOGS_CHUNK_REC_BYTES;
            uint64_t off = load_u64le(rec);
            uint32_t clen = load_u32le(rec + 8);
            if (off <= lim && clen <= lim - off)
                store_u32le(rec + 20, crc32c(0, p + off, clen));
        }
        store_u32le(ft + 36, crc32c(0, p + ci, (size_t)n_chunks * LOGS_CHUNK_REC_BYTES));
    }
    store_u32le(ft + 68, crc32c(0, ft, 68));
}

/* Entries as records: "stream|ts|line|meta\n" with lengths, so lines may hold anything. */
typedef struct col {
    buf_t out;
    uint64_t n;
    int64_t last;
    bool backward, bad_order;
    size_t *starts;
    size_t cap;
} col_t;

static bool col_cb(void *arg, const db_log_entry_t *e)
{
    col_t *c = arg;
    if (c->n && (c->backward ? e->ts_ns > c->last : e->ts_ns < c->last))
        c->bad_order = true;
    c->last = e->ts_ns;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        c->starts = realloc(c->starts, c->cap * sizeof *c->starts);
    }
    c->starts[c->n++] = buf_len(&c->out);
    labels_encode(&c->out, e->stream);
    buf_put_u64le(&c->out, (uint64_t)e->ts_ns);
    buf_put_uvarint(&c->out, e->line.len);
    buf_put_str(&c->out, e->line);
    labels_encode(&c->out, e->meta);
    return true;
}

static void col_select(logs_file_t *f, bool backward, col_t *c)
{
    err_t err;
    memset(c, 0, sizeof *c);
    c->backward = backward;
    if (logs_select(NULL, &f, 1, NULL, 0, INT64_MIN, INT64_MAX, backward, 0, col_cb, c, &err) != 0)
        abort();
    if (c->bad_order)
        abort();
}

static void col_free(col_t *c)
{
    buf_deinit(&c->out);
    free(c->starts);
}

static bool same(const col_t *a, const col_t *b)
{
    return a->n == b->n && buf_len(&a->out) == buf_len(&b->out) &&
           (a->n == 0 || memcmp(a->out.pos, b->out.pos, buf_len(&a->out)) == 0);
}

/* True if b lists a's records in reverse order. */
static bool reversed(const col_t *a, const col_t *b)
{
    if (a->n != b->n || buf_len(&a->out) != buf_len(&b->out))
        return false;
    for (uint64_t i = 0; i < a->n; i++) {
        uint64_t j = a->n - 1 - i;
        size_t la = (i + 1 < a->n ? a->starts[i + 1] : buf_len(&a->out)) - a->starts[i];
        size_t lb = (j + 1 < b->n ? b->starts[j + 1] : buf_len(&b->out)) - b->starts[j];
        if (la != lb || memcmp(a->out.pos + a->starts[i], b->out.pos + b->starts[j], la) != 0)
            return false;
    }
    return true;
}

static void check_file(const char *path, const char *path2)
{
    logs_file_t *f = NULL;
    err_t err;
    int rc = logs_file_open(path, &f, &err);
    if (rc) {
        if (rc != ERR_CORRUPT && rc != ERR_UNSUPPORTED)
            abort();
        return;
    }
    arena_t a;
    arena_init(&a, 0);
    str_t *names;
    size_t n_names;
    if (logs_label_names(NULL, &f, 1, INT64_MIN, INT64_MAX, &a, &names, &n_names) != 0)
        abort();
    rc = logs_file_verify(f, &err);
    if (rc) {
        if (rc != ERR_CORRUPT)
            abort();
        col_t c; /* a query over a bad file skips the bad chunks */
        col_select(f, false, &c);
        col_free(&c);
        logs_file_close(f);
        arena_deinit(&a);
        return;
    }
    col_t fwd, bwd;
    col_select(f, false, &fwd);
    col_select(f, true, &bwd);
    if (fwd.n > logs_file_entries(f) || bwd.n != fwd.n)
        abort();
    if (fwd.n == logs_file_entries(f) && !reversed(&fwd, &bwd))
        abort();
    logs_file_t *in[2] = {f, f};
    if (logs_file_merge(in, 2, path2, NULL, &err) != 0)
        abort();
    logs_file_t *g = NULL;
    if (logs_file_open(path2, &g, &err) != 0 || logs_file_verify(g, &err) != 0)
        abort();
    col_t m;
    col_select(g, false, &m);
    if (!same(&fwd, &m) || logs_file_entries(g) != fwd.n)
        abort();
    col_free(&m);
    logs_file_close(g);
    col_free(&fwd);
    col_free(&bwd);
    logs_file_close(f);
    arena_deinit(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[256], path2[300];
    if (!path[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(path, sizeof path, "%s/fuzz-logs-%d", t ? t : "/tmp", (int)getpid());
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
