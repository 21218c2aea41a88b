/*
 * spans_file.c - immutable span files: the writer (from the head, or merging files for
 * compaction), the reader (open, lookup by trace id, time-range scan) and the verifier. It was
 * split from spans.c (STYLE.md: files past ~1,500 lines) along the format's boundary: the head
 * knows nothing of pages, and this file nothing of the head, which hands it spans already sorted
 * through spans__file_write.
 *
 * Format (layout in store/format_spans_logs.h). Spans sorted by (trace id, start) are cut into
 * pages of ~128 KiB raw; a page stores its spans column by column (ids, parent references inside
 * the page, delta-encoded start times, durations, string-table indices, dictionary indices, and
 * the span protobuf stripped of the fields the columns already hold) and is compressed with zstd.
 * Resources and scopes go once into a file dictionary. A sorted trace-id table (24 bytes per
 * trace) and the page index (with each page's start-time range, so scans skip pages) are kept in
 * memory after open; pages are read with pread on demand, verified by CRC-32C, and the last one
 * decoded is cached. spans_file_scan_pre decodes a page's columns without rebuilding the span
 * protobufs and rebuilds one only for a span its caller's prefilter keeps. Frames and the file's
 * header and footer tail go through zfile.c, which log files share. Merging files is a k-way merge
 * by trace id.
 */
#include "store/spans.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/crc32c.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/varint.h"
#include "store/format_spans_logs.h"
#include "store/internal.h"
#include "store/zfile.h"

#define SPANS_ZSTD_LEVEL 6

static bool is_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static bool in_range(int64_t t, int64_t mint, int64_t maxt) { return t >= mint && t <= maxt; }

/* ---- span protobuf stripping (recipe) ---- */

/* Canonical encoding of recipe field code for s into out (room for 11 bytes, name excluded: for
 * SPANS_F_NAME only the tag and length are written). Returns its length. */
static size_t canon_head(const db_span_t *s, int code, uint8_t *out)
{
    switch (code) {
    case SPANS_F_TRACE_ID:
        out[0] = 0x0a, out[1] = 0x10;
        memcpy(out + 2, s->trace_id, 16);
        return 18;
    case SPANS_F_SPAN_ID:
        out[0] = 0x12, out[1] = 0x08;
        memcpy(out + 2, s->span_id, 8);
        return 10;
    case SPANS_F_PARENT:
        out[0] = 0x22, out[1] = 0x08;
        memcpy(out + 2, s->parent_span_id, 8);
        return 10;
    case SPANS_F_NAME:
        out[0] = 0x2a;
        return 1 + uvarint_put(out + 1, s->name.len);
    case SPANS_F_KIND:
        out[0] = 0x30;
        return 1 + uvarint_put(out + 1, (uint64_t)(int64_t)s->kind);
    case SPANS_F_START:
        out[0] = 0x39;
        store_u64le(out + 1, (uint64_t)s->start_ns);
        return 9;
    case SPANS_F_END:
        out[0] = 0x41;
        store_u64le(out + 1, (uint64_t)s->end_ns);
        return 9;
    }
    return 0;
}

static void canon_put(buf_t *out, const db_span_t *s, int code)
{
    uint8_t tmp[24];
    buf_append(out, tmp, canon_head(s, code, tmp));
    if (code == SPANS_F_NAME)
        buf_put_str(out, s->name);
}

static int code_for_tag(uint8_t tag)
{
    switch (tag) {
    case 0x0a:
        return SPANS_F_TRACE_ID;
    case 0x12:
        return SPANS_F_SPAN_ID;
    case 0x22:
        return SPANS_F_PARENT;
    case 0x2a:
        return SPANS_F_NAME;
    case 0x30:
        return SPANS_F_KIND;
    case 0x39:
        return SPANS_F_START;
    case 0x41:
        return SPANS_F_END;
    }
    return 0;
}

/* Length of the top-level protobuf field at [p, end), or 0 when it cannot be parsed. */
static size_t pb_field_len(const uint8_t *p, const uint8_t *end)
{
    uint64_t tag, v;
    size_t k = uvarint_get(p, end, &tag), n;
    if (!k || (tag >> 3) == 0)
        return 0;
    switch (tag & 7) {
    case 0:
        n = uvarint_get(p + k, end, &v);
        return n ? k + n : 0;
    case 1:
        return (size_t)(end - p) >= k + 8 ? k + 8 : 0;
    case 2:
        n = uvarint_get(p + k, end, &v);
        if (!n || v > (uint64_t)(end - p) - k - n)
            return 0;
        return k + n + (size_t)v;
    case 5:
        return (size_t)(end - p) >= k + 4 ? k + 4 : 0;
    }
    return 0;
}

/* Splits s->span_pb into recipe values (appended to recipe, 0-terminated) and remainder bytes. */
static void pb_strip(const db_span_t *s, buf_t *recipe, buf_t *rem)
{
    if (!s->span_pb.len) {
        buf_putc(recipe, 0);
        return;
    }
    const uint8_t *p = (const uint8_t *)s->span_pb.ptr, *end = p + s->span_pb.len;
    const uint8_t *raw_from = p;
    uint64_t gap = 0;
    while (p < end) {
        size_t n = pb_field_len(p, end);
        if (!n)
            break;
        int code = code_for_tag(p[0]);
        if (code) {
            uint8_t tmp[24];
            size_t h = canon_head(s, code, tmp);
            size_t want = h + (code == SPANS_F_NAME ? s->name.len : 0);
            if (n == want && memcmp(p, tmp, h) == 0 &&
                (code != SPANS_F_NAME || s->name.len == 0 ||
                 memcmp(p + h, s->name.ptr, s->name.len) == 0)) {
                buf_append(rem, raw_from, (size_t)(p - raw_from));
                buf_put_uvarint(recipe, gap << 3 | (uint64_t)code);
                gap = 0;
                p += n;
                raw_from = p;
                continue;
            }
        }
        gap += n;
        p += n;
    }
    buf_append(rem, raw_from, (size_t)(end - raw_from));
    buf_putc(recipe, 0);
}

/* ---- file writer ---- */

enum {
    COL_SPANID,
    COL_PARENT,
    COL_EXPLICIT,
    COL_START,
    COL_DUR,
    COL_NAME,
    COL_SVC,
    COL_KIND,
    COL_STATUS,
    COL_RES,
    COL_SCOPE,
    COL_RECIPE,
    COL_PBLEN,
    COL_PB,
    N_COLS
};

typedef struct swriter {
    zfile_out_t z;
    spans_dict_t res, scopes;
    /* current page */
    spans_dict_t strs;
    buf_t run_ids, run_lens, cols[N_COLS];
    uint32_t n, n_runs, n_explicit, run_len, run_first;
    int64_t prev_start, pmin, pmax;
    u64map_t run_map; /* hash_u64(span id) -> page index, within the current run */
    /* file */
    buf_t page_index, trace_table, raw;
    uint32_t n_pages;
    uint64_t n_spans, n_traces;
    int64_t min_ns, max_ns;
    uint8_t last_trace[16];
    bool have_trace;
} swriter_t;

static int w_init(swriter_t *w, const char *path, err_t *err)
{
    memset(w, 0, sizeof *w);
    int rc = zfile_out_open(&w->z, path, SPANS_MAGIC, SPANS_VERSION, SPANS_ZSTD_LEVEL, err);
    if (rc)
        return rc;
    spans__dict_init(&w->res);
    spans__dict_init(&w->scopes);
    spans__dict_init(&w->strs);
    u64map_init(&w->run_map);
    w->min_ns = INT64_MAX;
    w->max_ns = INT64_MIN;
    w->pmin = INT64_MAX;
    w->pmax = INT64_MIN;
    return 0;
}

static void w_deinit(swriter_t *w)
{
    zfile_out_close(&w->z);
    spans__dict_deinit(&w->res);
    spans__dict_deinit(&w->scopes);
    spans__dict_deinit(&w->strs);
    u64map_deinit(&w->run_map);
    buf_deinit(&w->run_ids);
    buf_deinit(&w->run_lens);
    for (int i = 0; i < N_COLS; i++)
        buf_deinit(&w->cols[i]);
    buf_deinit(&w->page_index);
    buf_deinit(&w->trace_table);
    buf_deinit(&w->raw);
}

static size_t w_page_bytes(const swriter_t *w)
{
    size_t n = buf_len(&w->run_ids) + buf_len(&w->run_lens) + buf_len(&w->strs.data);
    for (int i = 0; i < N_COLS; i++)
        n += buf_len(&w->cols[i]);
    return n;
}

static void w_end_run(swriter_t *w)
{
    if (!w->run_len)
        return;
    buf_put_uvarint(&w->run_lens, w->run_len);
    w->run_len = 0;
    if (w->run_map.cap > 4096) {
        u64map_deinit(&w->run_map);
        u64map_init(&w->run_map);
    } else if (w->run_map.len) {
        u64map_clear(&w->run_map);
    }
}

static void w_flush_page(swriter_t *w)
{
    if (!w->n)
        return;
    w_end_run(w);
    buf_t *raw = &w->raw;
    buf_clear(raw);
    buf_put_uvarint(raw, w->n);
    buf_put_uvarint(raw, w->n_runs);
    buf_append(raw, w->run_ids.pos, buf_len(&w->run_ids));
    buf_append(raw, w->run_lens.pos, buf_len(&w->run_lens));
    buf_put_uvarint(raw, w->strs.n);
    buf_append(raw, w->strs.data.pos, buf_len(&w->strs.data));
    for (int i = 0; i < N_COLS; i++) {
        if (i == COL_EXPLICIT)
            buf_put_uvarint(raw, w->n_explicit);
        buf_append(raw, w->cols[i].pos, buf_len(&w->cols[i]));
    }
    uint64_t off = zfile_out_pos(&w->z);
    uint32_t crc = 0;
    uint32_t clen = zfile_out_frame(&w->z, raw, &crc);
    uint8_t rec[SPANS_PAGE_REC_BYTES];
    store_u64le(rec, off);
    store_u32le(rec + 8, clen);
    store_u32le(rec + 12, (uint32_t)buf_len(raw));
    store_u32le(rec + 16, w->n);
    store_u32le(rec + 20, crc);
    store_u64le(rec + 24, (uint64_t)w->pmin);
    store_u64le(rec + 32, (uint64_t)w->pmax);
    buf_append(&w->page_index, rec, sizeof rec);
    w->n_pages++;
    w->n = w->n_runs = w->n_explicit = 0;
    w->prev_start = 0;
    w->pmin = INT64_MAX;
    w->pmax = INT64_MIN;
    buf_clear(&w->run_ids);
    buf_clear(&w->run_lens);
    for (int i = 0; i < N_COLS; i++)
        buf_clear(&w->cols[i]);
    spans__dict_clear(&w->strs);
    zfile_out_flush(&w->z, false);
}

/* Adds one span; spans must come in (trace id, start) order. */
static void w_add(swriter_t *w, const db_span_t *s)
{
    bool new_trace = !w->have_trace || memcmp(s->trace_id, w->last_trace, 16) != 0;
    if (new_trace) {
        uint8_t rec[SPANS_TRACE_REC_BYTES];
        memcpy(rec, s->trace_id, 16);
        store_u32le(rec + 16, w->n_pages);
        store_u32le(rec + 20, w->n);
        buf_append(&w->trace_table, rec, sizeof rec);
        memcpy(w->last_trace, s->trace_id, 16);
        w->have_trace = true;
        w->n_traces++;
    }
    if (new_trace || w->run_len == 0) {
        w_end_run(w);
        buf_append(&w->run_ids, s->trace_id, 16);
        w->n_runs++;
        w->run_first = w->n;
    }
    uint32_t idx = w->n++;
    w->run_len++;
    buf_append(&w->cols[COL_SPANID], s->span_id, 8);
    uint64_t code = 0;
    if (!is_zero(s->parent_span_id, 8)) {
        uint64_t *slot = u64map_get(&w->run_map, hash_u64(load_u64le(s->parent_span_id)));
        if (slot) {
            code = *slot + 2;
        } else {
            code = 1;
            buf_append(&w->cols[COL_EXPLICIT], s->parent_span_id, 8);
            w->n_explicit++;
        }
    }
    buf_put_uvarint(&w->cols[COL_PARENT], code);
    uint64_t sid = load_u64le(s->span_id);
    if (sid)
        u64map_put(&w->run_map, hash_u64(sid), idx);
    store__put_zz(&w->cols[COL_START], (int64_t)((uint64_t)s->start_ns - (uint64_t)w->prev_start));
    w->prev_start = s->start_ns;
    store__put_zz(&w->cols[COL_DUR], (int64_t)((uint64_t)s->end_ns - (uint64_t)s->start_ns));
    buf_put_uvarint(&w->cols[COL_NAME], spans__dict_intern(&w->strs, s->name));
    buf_put_uvarint(&w->cols[COL_SVC], spans__dict_intern(&w->strs, s->service_name));
    store__put_zz(&w->cols[COL_KIND], s->kind);
    store__put_zz(&w->cols[COL_STATUS], s->status_code);
    buf_put_uvarint(&w->cols[COL_RES], spans__dict_intern(&w->res, s->resource_pb));
    buf_put_uvarint(&w->cols[COL_SCOPE], spans__dict_intern(&w->scopes, s->scope_pb));
    size_t before = buf_len(&w->cols[COL_PB]);
    pb_strip(s, &w->cols[COL_RECIPE], &w->cols[COL_PB]);
    buf_put_uvarint(&w->cols[COL_PBLEN], buf_len(&w->cols[COL_PB]) - before);
    if (s->start_ns < w->pmin)
        w->pmin = s->start_ns;
    if (s->start_ns > w->pmax)
        w->pmax = s->start_ns;
    if (s->start_ns < w->min_ns)
        w->min_ns = s->start_ns;
    if (s->start_ns > w->max_ns)
        w->max_ns = s->start_ns;
    w->n_spans++;
    if (w_page_bytes(w) >= SPANS_PAGE_RAW_TARGET)
        w_flush_page(w);
}

static int w_finish(swriter_t *w, uint64_t *bytes)
{
    w_flush_page(w);
    uint8_t ft[SPANS_FOOTER_BYTES];
    memset(ft, 0, sizeof ft);
    /* dictionary */
    buf_clear(&w->raw);
    buf_put_uvarint(&w->raw, w->res.n);
    buf_append(&w->raw, w->res.data.pos, buf_len(&w->res.data));
    buf_put_uvarint(&w->raw, w->scopes.n);
    buf_append(&w->raw, w->scopes.data.pos, buf_len(&w->scopes.data));
    store_u64le(ft, zfile_out_pos(&w->z));
    uint32_t crc = 0;
    store_u32le(ft + 8, zfile_out_frame(&w->z, &w->raw, &crc));
    store_u32le(ft + 12, (uint32_t)buf_len(&w->raw));
    store_u32le(ft + 16, crc);
    store_u32le(ft + 20, w->n_pages);
    store_u64le(ft + 24, zfile_out_pos(&w->z));
    store_u32le(ft + 32, crc32c(0, w->page_index.pos, buf_len(&w->page_index)));
    buf_append(&w->z.out, w->page_index.pos, buf_len(&w->page_index));
    store_u64le(ft + 40, zfile_out_pos(&w->z));
    store_u64le(ft + 48, w->n_traces);
    store_u32le(ft + 56, crc32c(0, w->trace_table.pos, buf_len(&w->trace_table)));
    buf_append(&w->z.out, w->trace_table.pos, buf_len(&w->trace_table));
    store_u64le(ft + 64, w->n_spans);
    store_u64le(ft + 72, (uint64_t)w->min_ns);
    store_u64le(ft + 80, (uint64_t)w->max_ns);
    return zfile_out_finish(&w->z, ft, sizeof ft, bytes);
}

int spans__file_write(const char *path, bool (*next)(void *arg, db_span_t *s), void *arg,
                      uint64_t *bytes, err_t *err)
{
    swriter_t w;
    int rc = w_init(&w, path, err);
    if (rc)
        return rc;
    db_span_t s;
    while (!w.z.rc && next(arg, &s))
        w_add(&w, &s);
    rc = w_finish(&w, bytes);
    w_deinit(&w);
    return rc;
}

/* ---- file reader ---- */

typedef struct page_rec {
    uint64_t off;
    uint32_t clen, rlen, n;
    uint32_t crc;
    int64_t min_ns, max_ns;
} page_rec_t;

/* A decoded page: span strs point into raw (names), pbs (span protobufs) and the file dictionary.
 */
typedef struct dpage {
    uint32_t idx;
    bool valid;
    buf_t comp, raw, pbs;
    db_span_t *spans;
    size_t n, cap;
    /* Lazy decode (spans_file_scan_pre): span_pb is left empty and rebuilt one span at a time
     * from its recipe and remainder, found through these (cap entries each). */
    bool lazy;
    const uint8_t **rec, **rem;
    uint64_t *rem_len;
    const uint8_t *rec_end;
    size_t mat; /* index + 1 of the span whose protobuf d->pbs holds, 0 = none */
} dpage_t;

struct spans_file {
    char *path;
    zfile_in_t in;
    page_rec_t *pages;
    uint32_t n_pages;
    uint8_t *traces; /* n_traces x SPANS_TRACE_REC_BYTES */
    uint64_t n_traces, n_spans;
    int64_t min_ns, max_ns;
    uint8_t *dict_raw;
    str_t *res, *scopes;
    size_t n_res, n_scopes;
    dpage_t cache;
};

#define CORRUPT(err, path, off, what) ZFILE_CORRUPT(err, "span", path, off, what)

static int decode_dict(spans_file_t *f, const uint8_t *p, size_t n)
{
    store_rd_t r = {p, p + n, false};
    str_t **lists[2] = {&f->res, &f->scopes};
    size_t *counts[2] = {&f->n_res, &f->n_scopes};
    for (int k = 0; k < 2; k++) {
        uint64_t m = store__rd_uv(&r);
        if (r.bad || m > (uint64_t)(r.end - r.p))
            return ERR_CORRUPT;
        *lists[k] = db__xrealloc(NULL, (size_t)m * sizeof(str_t));
        *counts[k] = (size_t)m;
        for (uint64_t i = 0; i < m; i++)
            (*lists[k])[i] = store__rd_str(&r);
        if (r.bad)
            return ERR_CORRUPT;
    }
    return r.p == r.end ? 0 : ERR_CORRUPT;
}

static void dpage_deinit(dpage_t *d)
{
    buf_deinit(&d->comp);
    buf_deinit(&d->raw);
    buf_deinit(&d->pbs);
    free(d->spans);
    free(d->rec);
    free(d->rem);
    free(d->rem_len);
    memset(d, 0, sizeof *d);
}

/* Rebuilds each span's protobuf from its recipe (rr), remainder length (rl) and remainder bytes
 * (rem) into d->pbs, and points d->spans[i].span_pb at it. Every gap is checked. */
/* Appends span i's protobuf to d->pbs from its recipe (read from rr) and its l remainder bytes at
 * rem. Sets rr->bad on a malformed recipe. */
static void rebuild_one(dpage_t *d, size_t i, store_rd_t *rr, const uint8_t *rem, uint64_t l)
{
    uint64_t used = 0;
    for (;;) {
        uint64_t v = store__rd_uv(rr);
        if (rr->bad || v == 0)
            break;
        uint64_t gap = v >> 3;
        int code = (int)(v & 7);
        if (code == 0 || gap > l - used) {
            rr->bad = true;
            break;
        }
        buf_append(&d->pbs, rem + used, (size_t)gap);
        used += gap;
        canon_put(&d->pbs, &d->spans[i], code);
    }
    buf_append(&d->pbs, rem + used, (size_t)(l - used));
}

static int rebuild_pbs(dpage_t *d, size_t n, store_rd_t *rr, store_rd_t *rl, const uint8_t *rem)
{
    buf_clear(&d->pbs);
    buf_reserve(&d->pbs, 1);
    size_t *pb_off = db__xrealloc(NULL, n * sizeof *pb_off);
    for (size_t i = 0; i < n && !rr->bad; i++) {
        uint64_t l = store__rd_uv(rl);
        pb_off[i] = buf_len(&d->pbs);
        rebuild_one(d, i, rr, rem, l);
        rem += l;
    }
    for (size_t i = 0; i < n && !rr->bad; i++) {
        size_t end = i + 1 < n ? pb_off[i + 1] : buf_len(&d->pbs);
        d->spans[i].span_pb = (str_t){(const char *)d->pbs.pos + pb_off[i], end - pb_off[i]};
    }
    free(pb_off);
    return rr->bad ? ERR_CORRUPT : 0;
}

/* Parses a raw page into d->spans. Every index and length is checked against the page. */
static int decode_page(const spans_file_t *f, const page_rec_t *pr, dpage_t *d, bool lazy)
{
    store_rd_t r = {d->raw.pos, d->raw.last, false};
    size_t rlen = buf_len(&d->raw);
    uint64_t n = store__rd_uv(&r);
    if (r.bad || n != pr->n || n > rlen / 8)
        return ERR_CORRUPT;
    if (n > d->cap) {
        d->cap = (size_t)n;
        d->spans = db__xrealloc(d->spans, d->cap * sizeof *d->spans);
        d->rec = db__xrealloc(d->rec, d->cap * sizeof *d->rec);
        d->rem = db__xrealloc(d->rem, d->cap * sizeof *d->rem);
        d->rem_len = db__xrealloc(d->rem_len, d->cap * sizeof *d->rem_len);
    }
    d->n = 0;
    db_span_t *sp = d->spans;
    uint64_t n_runs = store__rd_uv(&r);
    if (r.bad || n_runs == 0 || n_runs > n)
        return ERR_CORRUPT;
    const uint8_t *ids = store__rd_bytes(&r, n_runs * 16);
    uint64_t at = 0;
    for (uint64_t i = 0; i < n_runs; i++) {
        uint64_t len = store__rd_uv(&r);
        if (r.bad || len == 0 || len > n - at)
            return ERR_CORRUPT;
        for (uint64_t j = 0; j < len; j++)
            memcpy(sp[at + j].trace_id, ids + i * 16, 16);
        at += len;
    }
    if (at != n)
        return ERR_CORRUPT;
    uint64_t n_strs = store__rd_uv(&r);
    if (r.bad || n_strs > rlen)
        return ERR_CORRUPT;
    str_t *strs = db__xrealloc(NULL, (size_t)(n_strs ? n_strs : 1) * sizeof *strs);
    for (uint64_t i = 0; i < n_strs; i++)
        strs[i] = store__rd_str(&r);
    const uint8_t *sids = store__rd_bytes(&r, n * 8);
    int rc = ERR_CORRUPT;
    if (r.bad)
        goto out;
    for (uint64_t i = 0; i < n; i++)
        memcpy(sp[i].span_id, sids + i * 8, 8);
    /* parent codes: remember them in start_ns until the explicit column is known */
    uint64_t n_expl_seen = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t c = store__rd_uv(&r);
        if (c >= 2 && c - 2 >= i)
            goto out;
        n_expl_seen += c == 1;
        sp[i].start_ns = (int64_t)c;
    }
    uint64_t n_expl = store__rd_uv(&r);
    if (r.bad || n_expl != n_expl_seen)
        goto out;
    const uint8_t *expl = store__rd_bytes(&r, n_expl * 8);
    if (r.bad)
        goto out;
    for (uint64_t i = 0, e = 0; i < n; i++) {
        uint64_t c = (uint64_t)sp[i].start_ns;
        if (c == 0)
            memset(sp[i].parent_span_id, 0, 8);
        else if (c == 1)
            memcpy(sp[i].parent_span_id, expl + 8 * e++, 8);
        else
            memcpy(sp[i].parent_span_id, sp[c - 2].span_id, 8);
    }
    uint64_t t = 0;
    for (uint64_t i = 0; i < n; i++) {
        t += (uint64_t)zigzag_dec(store__rd_uv(&r));
        sp[i].start_ns = (int64_t)t;
    }
    for (uint64_t i = 0; i < n; i++)
        sp[i].end_ns = (int64_t)((uint64_t)sp[i].start_ns + (uint64_t)zigzag_dec(store__rd_uv(&r)));
    for (int k = 0; k < 2; k++) {
        for (uint64_t i = 0; i < n; i++) {
            uint64_t v = store__rd_uv(&r);
            if (v >= n_strs)
                goto out;
            if (k == 0)
                sp[i].name = strs[v];
            else
                sp[i].service_name = strs[v];
        }
    }
    for (uint64_t i = 0; i < n; i++)
        sp[i].kind = (int)zigzag_dec(store__rd_uv(&r));
    for (uint64_t i = 0; i < n; i++)
        sp[i].status_code = (int)zigzag_dec(store__rd_uv(&r));
    for (uint64_t i = 0; i < n; i++) {
        uint64_t v = store__rd_uv(&r);
        if (v >= f->n_res)
            goto out;
        sp[i].resource_pb = f->res[v];
    }
    for (uint64_t i = 0; i < n; i++) {
        uint64_t v = store__rd_uv(&r);
        if (v >= f->n_scopes)
            goto out;
        sp[i].scope_pb = f->scopes[v];
    }
    if (r.bad)
        goto out;
    /* recipes: remember where each starts; lengths come next, then the remainders */
    const uint8_t *recipes = r.p;
    for (uint64_t i = 0; i < n; i++) {
        d->rec[i] = r.p;
        while (store__rd_uv(&r) != 0 && !r.bad)
            ;
    }
    const uint8_t *rem_lens = r.p;
    uint64_t rem_total = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t l = store__rd_uv(&r);
        if (l > rlen)
            goto out;
        d->rem_len[i] = l;
        rem_total += l;
    }
    const uint8_t *rem = store__rd_bytes(&r, rem_total);
    if (r.bad || r.p != r.end)
        goto out;
    d->lazy = lazy;
    d->mat = 0;
    if (lazy) {
        d->rec_end = rem_lens;
        const uint8_t *from = rem;
        for (uint64_t i = 0; i < n; i++) {
            d->rem[i] = from;
            from += d->rem_len[i];
            sp[i].span_pb = STR_NULL;
        }
    } else {
        store_rd_t rr = {recipes, rem_lens, false}, rl = {rem_lens, rem, false};
        if (rebuild_pbs(d, (size_t)n, &rr, &rl, rem) != 0)
            goto out;
    }
    d->n = (size_t)n;
    rc = 0;
out:
    free(strs);
    return rc;
}

/* Loads page idx into d (no-op when already there; a lazily decoded page is decoded again for an
 * eager caller). ERR_CORRUPT / ERR_IO are logged by callers. */
static int load_page_mode(spans_file_t *f, uint32_t idx, dpage_t *d, bool lazy)
{
    if (d->valid && d->idx == idx && (lazy || !d->lazy))
        return 0;
    d->valid = false;
    const page_rec_t *pr = &f->pages[idx];
    int rc = zfile_in_frame(&f->in, pr->off, pr->clen, pr->rlen, pr->crc, &d->comp, &d->raw);
    if (!rc)
        rc = decode_page(f, pr, d, lazy);
    if (rc)
        return rc;
    d->idx = idx;
    d->valid = true;
    return 0;
}

static int load_page(spans_file_t *f, uint32_t idx, dpage_t *d)
{
    return load_page_mode(f, idx, d, false);
}

/* Rebuilds span i's protobuf of a lazily decoded page (valid until the next call). */
static int materialize(dpage_t *d, size_t i)
{
    if (!d->lazy || d->spans[i].span_pb.ptr)
        return 0;
    buf_clear(&d->pbs);
    buf_reserve(&d->pbs, 1);
    store_rd_t rr = {d->rec[i], d->rec_end, false};
    rebuild_one(d, i, &rr, d->rem[i], d->rem_len[i]);
    if (rr.bad)
        return ERR_CORRUPT;
    /* Only one rebuilt span is kept: forget the previous one's pointer. */
    if (d->mat && d->mat - 1 < d->n)
        d->spans[d->mat - 1].span_pb = STR_NULL;
    d->spans[i].span_pb = buf_str(&d->pbs);
    d->mat = i + 1;
    return 0;
}

static void log_bad_page(const spans_file_t *f, uint32_t idx, int rc)
{
    log_error("span file page unreadable, skipped", "file=%s page=%u offset=%llu err=%s", f->path,
              idx, (unsigned long long)f->pages[idx].off, err_name(rc));
}

/* Where the footer says the sections are (checked against each other and the file size). */
typedef struct sections {
    uint64_t dict_off, pidx_off, tt_off;
    uint32_t dict_clen, dict_rlen, dict_crc, pidx_crc, tt_crc;
} sections_t;

static int read_footer(spans_file_t *f, sections_t *sec, err_t *err)
{
    uint8_t ft[SPANS_FOOTER_BYTES];
    int rc = zfile_in_ends(&f->in, f->path, "span", SPANS_MAGIC, SPANS_VERSION, ft, sizeof ft, err);
    if (rc)
        return rc;
    uint64_t fto = f->in.size - SPANS_FOOTER_BYTES;
    sec->dict_off = load_u64le(ft);
    sec->dict_clen = load_u32le(ft + 8);
    sec->dict_rlen = load_u32le(ft + 12);
    sec->dict_crc = load_u32le(ft + 16);
    f->n_pages = load_u32le(ft + 20);
    sec->pidx_off = load_u64le(ft + 24);
    sec->pidx_crc = load_u32le(ft + 32);
    sec->tt_off = load_u64le(ft + 40);
    f->n_traces = load_u64le(ft + 48);
    sec->tt_crc = load_u32le(ft + 56);
    f->n_spans = load_u64le(ft + 64);
    f->min_ns = (int64_t)load_u64le(ft + 72);
    f->max_ns = (int64_t)load_u64le(ft + 80);
    uint64_t plen = (uint64_t)f->n_pages * SPANS_PAGE_REC_BYTES;
    if (sec->dict_off < SPANS_HEADER_BYTES || sec->dict_off > fto ||
        sec->dict_clen > fto - sec->dict_off || sec->pidx_off != sec->dict_off + sec->dict_clen ||
        plen > fto - sec->pidx_off || sec->tt_off != sec->pidx_off + plen ||
        f->n_traces > (fto - sec->tt_off) / SPANS_TRACE_REC_BYTES ||
        sec->tt_off + f->n_traces * SPANS_TRACE_REC_BYTES != fto ||
        sec->dict_rlen > SPANS_DICT_RAW_MAX || (f->n_spans == 0) != (f->n_traces == 0))
        return CORRUPT(err, f->path, fto, "section offsets or counts out of bounds");
    return 0;
}

/* Reads the page index: pages must tile [16, dictionary) and hold n_spans spans in all. */
static int read_page_index(spans_file_t *f, const sections_t *sec, err_t *err)
{
    size_t plen = (size_t)f->n_pages * SPANS_PAGE_REC_BYTES;
    uint8_t *pbuf = db__xrealloc(NULL, plen);
    int rc = 0;
    if (zfile_in_read_crc(&f->in, pbuf, plen, sec->pidx_off, sec->pidx_crc) != 0)
        rc = CORRUPT(err, f->path, sec->pidx_off, "page index checksum mismatch");
    f->pages = db__xrealloc(NULL, (f->n_pages ? f->n_pages : 1) * sizeof *f->pages);
    uint64_t expect = SPANS_HEADER_BYTES, total = 0;
    for (uint32_t i = 0; i < f->n_pages && !rc; i++) {
        const uint8_t *q = pbuf + (size_t)i * SPANS_PAGE_REC_BYTES;
        page_rec_t *pr = &f->pages[i];
        pr->off = load_u64le(q);
        pr->clen = load_u32le(q + 8);
        pr->rlen = load_u32le(q + 12);
        pr->n = load_u32le(q + 16);
        pr->crc = load_u32le(q + 20);
        pr->min_ns = (int64_t)load_u64le(q + 24);
        pr->max_ns = (int64_t)load_u64le(q + 32);
        if (pr->off != expect || pr->clen > sec->dict_off - pr->off || pr->n == 0 ||
            pr->rlen > SPANS_PAGE_RAW_MAX || pr->min_ns > pr->max_ns)
            rc = CORRUPT(err, f->path, sec->pidx_off + (uint64_t)i * SPANS_PAGE_REC_BYTES,
                         "bad page index entry");
        expect += pr->clen;
        total += pr->n;
    }
    free(pbuf);
    if (!rc && (expect != sec->dict_off || total != f->n_spans))
        rc = CORRUPT(err, f->path, sec->pidx_off, "page index does not cover the pages");
    return rc;
}

/* Reads the trace table: ids strictly ascending, each pointing at a span of a page. */
static int read_trace_table(spans_file_t *f, const sections_t *sec, err_t *err)
{
    size_t tlen = (size_t)f->n_traces * SPANS_TRACE_REC_BYTES;
    f->traces = db__xrealloc(NULL, tlen ? tlen : 1);
    if (zfile_in_read_crc(&f->in, f->traces, tlen, sec->tt_off, sec->tt_crc) != 0)
        return CORRUPT(err, f->path, sec->tt_off, "trace table checksum mismatch");
    for (uint64_t i = 0; i < f->n_traces; i++) {
        const uint8_t *q = f->traces + i * SPANS_TRACE_REC_BYTES;
        uint32_t pg = load_u32le(q + 16), at = load_u32le(q + 20);
        if ((i && memcmp(q - SPANS_TRACE_REC_BYTES, q, 16) >= 0) || pg >= f->n_pages ||
            at >= f->pages[pg].n)
            return CORRUPT(err, f->path, sec->tt_off + i * SPANS_TRACE_REC_BYTES,
                           "bad trace table entry");
    }
    return 0;
}

static int read_dict(spans_file_t *f, const sections_t *sec, err_t *err)
{
    buf_t comp = BUF_INIT, raw = BUF_INIT;
    int rc = zfile_in_frame(&f->in, sec->dict_off, sec->dict_clen, sec->dict_rlen, sec->dict_crc,
                            &comp, &raw);
    buf_deinit(&comp);
    if (!rc) {
        f->dict_raw = buf_steal(&raw, &(size_t){0});
        rc = decode_dict(f, f->dict_raw, sec->dict_rlen);
    }
    buf_deinit(&raw);
    if (rc == ERR_IO)
        return err_set(err, rc, "%s: read: %s", f->path, strerror(errno));
    return rc ? CORRUPT(err, f->path, sec->dict_off, "bad dictionary") : 0;
}

int spans_file_open(const char *path, spans_file_t **out, err_t *err)
{
    *out = NULL;
    spans_file_t *f = calloc(1, sizeof *f);
    if (!f)
        return err_set(err, ERR_NOMEM, "%s: out of memory", path);
    f->path = strdup(path);
    sections_t sec = {0};
    int rc = zfile_in_open(&f->in, path, err);
    if (!rc && !(rc = read_footer(f, &sec, err)) && !(rc = read_page_index(f, &sec, err)) &&
        !(rc = read_trace_table(f, &sec, err)))
        rc = read_dict(f, &sec, err);
    if (rc) {
        spans_file_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

void spans_file_close(spans_file_t *f)
{
    if (!f)
        return;
    zfile_in_close(&f->in);
    free(f->path);
    free(f->pages);
    free(f->traces);
    free(f->dict_raw);
    free(f->res);
    free(f->scopes);
    dpage_deinit(&f->cache);
    free(f);
}

uint64_t spans_file_count(const spans_file_t *f) { return f->n_spans; }

size_t spans_file_trace(spans_file_t *f, const uint8_t trace_id[16], int64_t mint_ns,
                        int64_t maxt_ns, void (*cb)(void *arg, const db_span_t *s), void *arg)
{
    uint64_t lo = 0, hi = f->n_traces;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (memcmp(f->traces + mid * SPANS_TRACE_REC_BYTES, trace_id, 16) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == f->n_traces || memcmp(f->traces + lo * SPANS_TRACE_REC_BYTES, trace_id, 16) != 0)
        return 0;
    const uint8_t *rec = f->traces + lo * SPANS_TRACE_REC_BYTES;
    uint32_t pg = load_u32le(rec + 16);
    size_t at = load_u32le(rec + 20), delivered = 0;
    for (; pg < f->n_pages; pg++, at = 0) {
        int rc = load_page(f, pg, &f->cache);
        if (rc) {
            log_bad_page(f, pg, rc);
            return delivered;
        }
        for (; at < f->cache.n; at++) {
            const db_span_t *s = &f->cache.spans[at];
            if (memcmp(s->trace_id, trace_id, 16) != 0)
                return delivered;
            if (maxt_ns > 0 && !in_range(s->start_ns, mint_ns, maxt_ns))
                continue;
            cb(arg, s);
            delivered++;
        }
    }
    return delivered;
}

bool spans_file_scan(spans_file_t *f, int64_t mint_ns, int64_t maxt_ns,
                     bool (*cb)(void *arg, const db_span_t *s), void *arg)
{
    for (uint32_t pg = 0; pg < f->n_pages; pg++) {
        const page_rec_t *pr = &f->pages[pg];
        if (pr->max_ns < mint_ns || pr->min_ns > maxt_ns)
            continue;
        int rc = load_page(f, pg, &f->cache);
        if (rc) {
            log_bad_page(f, pg, rc);
            continue;
        }
        for (size_t i = 0; i < f->cache.n; i++) {
            const db_span_t *s = &f->cache.spans[i];
            if (in_range(s->start_ns, mint_ns, maxt_ns) && !cb(arg, s))
                return false;
        }
    }
    return true;
}

bool spans_file_scan_pre(spans_file_t *f, int64_t mint_ns, int64_t maxt_ns,
                         bool (*pre)(void *arg, const db_span_t *s),
                         bool (*cb)(void *arg, const db_span_t *s), void *arg)
{
    for (uint32_t pg = 0; pg < f->n_pages; pg++) {
        const page_rec_t *pr = &f->pages[pg];
        if (pr->max_ns < mint_ns || pr->min_ns > maxt_ns)
            continue;
        int rc = load_page_mode(f, pg, &f->cache, true);
        if (rc) {
            log_bad_page(f, pg, rc);
            continue;
        }
        for (size_t i = 0; i < f->cache.n; i++) {
            const db_span_t *s = &f->cache.spans[i];
            if (!in_range(s->start_ns, mint_ns, maxt_ns) || !pre(arg, s))
                continue;
            if ((rc = materialize(&f->cache, i)) != 0) {
                log_bad_page(f, pg, rc);
                f->cache.valid = false;
                break;
            }
            if (!cb(arg, s))
                return false;
        }
    }
    return true;
}

int spans_file_verify(spans_file_t *f, err_t *err)
{
    dpage_t d;
    memset(&d, 0, sizeof d);
    uint64_t seen_traces = 0;
    const uint8_t *prev = NULL;
    int64_t last_start = INT64_MIN;
    int rc = 0;
    for (uint32_t pg = 0; pg < f->n_pages && !rc; pg++) {
        const page_rec_t *pr = &f->pages[pg];
        rc = load_page(f, pg, &d);
        if (rc) {
            rc = rc == ERR_IO ? err_set(err, rc, "%s: read: %s", f->path, strerror(errno))
                              : CORRUPT(err, f->path, pr->off, "bad page");
            break;
        }
        for (size_t i = 0; i < d.n; i++) {
            const db_span_t *s = &d.spans[i];
            if (s->start_ns < pr->min_ns || s->start_ns > pr->max_ns) {
                rc = CORRUPT(err, f->path, pr->off, "span outside the page's time range");
                break;
            }
            bool first = !prev || memcmp(prev, s->trace_id, 16) != 0;
            if (!first && s->start_ns < last_start) {
                rc = CORRUPT(err, f->path, pr->off, "spans of a trace out of start order");
                break;
            }
            if (first) {
                const uint8_t *rec = f->traces + seen_traces * SPANS_TRACE_REC_BYTES;
                if (seen_traces >= f->n_traces || memcmp(rec, s->trace_id, 16) != 0 ||
                    load_u32le(rec + 16) != pg || load_u32le(rec + 20) != i) {
                    rc = CORRUPT(err, f->path, pr->off, "page does not match the trace table");
                    break;
                }
                seen_traces++;
            }
            prev = f->traces + (seen_traces - 1) * SPANS_TRACE_REC_BYTES;
            last_start = s->start_ns;
        }
    }
    if (!rc && seen_traces != f->n_traces)
        rc = CORRUPT(err, f->path, f->in.size, "trace table lists traces not in the pages");
    dpage_deinit(&d);
    return rc;
}

/* ---- merge ---- */

typedef struct mcur {
    spans_file_t *f;
    dpage_t d;
    uint32_t pg;
    size_t at;
    bool done;
} mcur_t;

/* Positions c on its next span (loading pages as needed); false at the end or on a bad page. */
static int mcur_fill(mcur_t *c)
{
    while (!c->done) {
        if (c->pg >= c->f->n_pages) {
            c->done = true;
            break;
        }
        int rc = load_page(c->f, c->pg, &c->d);
        if (rc)
            return rc;
        if (c->at < c->d.n)
            return 0;
        c->pg++;
        c->at = 0;
    }
    return 0;
}

typedef struct mspan {
    db_span_t s;
    size_t seq;
} mspan_t;

/* By start, then input order (so rewriting one file keeps its order exactly). */
static int mspan_cmp(const void *a, const void *b)
{
    const mspan_t *x = a, *y = b;
    if (x->s.start_ns != y->s.start_ns)
        return x->s.start_ns < y->s.start_ns ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static bool mspan_same(const db_span_t *a, const db_span_t *b)
{
    return a->start_ns == b->start_ns && a->end_ns == b->end_ns &&
           memcmp(a->span_id, b->span_id, 8) == 0 &&
           memcmp(a->parent_span_id, b->parent_span_id, 8) == 0 && str_eq(a->span_pb, b->span_pb) &&
           str_eq(a->resource_pb, b->resource_pb) && str_eq(a->scope_pb, b->scope_pb) &&
           str_eq(a->name, b->name) && str_eq(a->service_name, b->service_name) &&
           a->kind == b->kind && a->status_code == b->status_code;
}

int spans_file_merge(spans_file_t **in, size_t n, const char *path, uint64_t *bytes, err_t *err)
{
    swriter_t w;
    int rc = w_init(&w, path, err);
    if (rc)
        return rc;
    mcur_t *cs = calloc(n ? n : 1, sizeof *cs);
    mspan_t *v = NULL;
    size_t nv = 0, cap = 0;
    arena_t a;
    arena_init(&a, 64 << 10);
    for (size_t i = 0; i < n; i++)
        cs[i].f = in[i];
    for (;;) {
        const uint8_t *min = NULL;
        for (size_t i = 0; i < n && !rc; i++) {
            if ((rc = mcur_fill(&cs[i])) != 0) {
                rc = CORRUPT(err, cs[i].f->path, cs[i].f->pages[cs[i].pg].off, "bad page");
                break;
            }
            if (cs[i].done)
                continue;
            const uint8_t *t = cs[i].d.spans[cs[i].at].trace_id;
            if (!min || memcmp(t, min, 16) < 0)
                min = t;
        }
        if (rc || !min)
            break;
        uint8_t tid[16];
        memcpy(tid, min, 16);
        nv = 0;
        arena_reset(&a);
        for (size_t i = 0; i < n && !rc; i++) {
            mcur_t *c = &cs[i];
            while (!c->done && memcmp(c->d.spans[c->at].trace_id, tid, 16) == 0) {
                if (nv == cap) {
                    cap = cap ? cap * 2 : 256;
                    v = db__xrealloc(v, cap * sizeof *v);
                }
                mspan_t *m = &v[nv];
                m->s = c->d.spans[c->at];
                m->s.name = arena_str(&a, m->s.name);
                m->s.service_name = arena_str(&a, m->s.service_name);
                m->s.span_pb = arena_str(&a, m->s.span_pb);
                m->seq = nv++;
                c->at++;
                if ((rc = mcur_fill(c)) != 0) {
                    rc = CORRUPT(err, c->f->path, c->f->pages[c->pg].off, "bad page");
                    break;
                }
            }
        }
        if (rc)
            break;
        qsort(v, nv, sizeof *v, mspan_cmp);
        size_t run = 0; /* first span with the current start */
        for (size_t i = 0; i < nv && !w.z.rc; i++) {
            if (v[i].s.start_ns != v[run].s.start_ns)
                run = i;
            bool dup = false; /* the same span stored twice (a retried export) */
            for (size_t j = run; j < i && !dup; j++)
                dup = mspan_same(&v[j].s, &v[i].s);
            if (!dup)
                w_add(&w, &v[i].s);
        }
    }
    for (size_t i = 0; i < n; i++)
        dpage_deinit(&cs[i].d);
    free(cs);
    free(v);
    arena_deinit(&a);
    if (rc) {
        w_deinit(&w);
        unlink(path);
        return rc;
    }
    rc = w_finish(&w, bytes);
    w_deinit(&w);
    return rc;
}
