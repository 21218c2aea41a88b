/*
 * logs.c - the log store: an in-memory head of streams, immutable zstd-compressed log files, the
 * query merge over both, and the WAL codec. How entries are laid out inside one compressed chunk
 * is in logs_chunk.c.
 *
 * Head. A stream (label set) is found through a u64map keyed by labels_hash, with labels_eq
 * resolving collisions. Each stream keeps its entries in one array, in arrival order, split into
 * sorted runs: an entry that is not older than the stream's last entry extends the last run,
 * an older one starts a new run. Adjacent runs are merged (stable, so equal timestamps keep
 * arrival order) whenever the last run grows past half of the one before it, which keeps
 * O(log n) runs and O(log n) amortised moves per entry; reading or writing a stream merges the
 * rest. Exact duplicates (same stream, ts and line) are found by a binary search per run and
 * dropped, as Loki does. Lines, labels and metadata are copied into one arena.
 *
 * File (layout in store/format_spans_logs.h). Streams sorted by labels, each stream's entries in
 * chunks of ~64 KiB raw, zstd-compressed, with a chunk index giving each chunk's time range so
 * queries skip chunks without reading them. This file writes and reads the chunk index and the
 * stream table, and the frames through zfile.c; logs_chunk.c encodes and decodes a chunk's content.
 *
 * Query. logs_select groups sources (a head stream, a stream of each file) by label set and runs
 * one k-way merge (binary heap) over all of them in time order. File chunks enter the heap
 * unopened, keyed by their time bound, and are decompressed only when they reach the top, so a
 * query with a limit reads only the chunks it needs. Entries with the same stream, ts and line
 * from different sources are delivered once.
 */
#include "store/logs.h"

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

/* Head blocks are written on the server's thread: a fast level. Compaction can spend more. */
#define LOGS_ZSTD_LEVEL_HEAD 3
#define LOGS_ZSTD_LEVEL_MERGE 9

static bool str_eqn(const char *a, size_t na, str_t b)
{
    return na == b.len && (na == 0 || memcmp(a, b.ptr, na) == 0);
}

/* ---- head ---- */

typedef struct lentry {
    int64_t ts;
    const char *line;
    uint32_t line_len;
    uint32_t n_meta;
    label_t *meta;
} lentry_t;

typedef struct lstream {
    labels_t labels;
    uint32_t next_same_hash;
    lentry_t *e;
    size_t n, cap;
    uint32_t *runs; /* starts of runs 1..n_runs (run 0 starts at 0) */
    uint32_t n_runs, cap_runs;
    int64_t min_ts, max_ts;
} lstream_t;

struct logs_head {
    arena_t a;
    lstream_t *s;
    size_t n_s, cap_s;
    u64map_t by_hash;
    uint64_t n_entries, vec_bytes;
    int64_t min_ns, max_ns;
    lentry_t *tmp; /* merge scratch */
    size_t tmp_cap;
};

logs_head_t *logs_head_new(void)
{
    logs_head_t *h = calloc(1, sizeof *h);
    if (!h)
        abort();
    arena_init(&h->a, 64 << 10);
    u64map_init(&h->by_hash);
    h->min_ns = INT64_MAX;
    h->max_ns = INT64_MIN;
    return h;
}

static void streams_free(logs_head_t *h)
{
    for (size_t i = 0; i < h->n_s; i++) {
        free(h->s[i].e);
        free(h->s[i].runs);
    }
}

void logs_head_free(logs_head_t *h)
{
    if (!h)
        return;
    streams_free(h);
    free(h->s);
    free(h->tmp);
    arena_deinit(&h->a);
    u64map_deinit(&h->by_hash);
    free(h);
}

void logs_head_reset(logs_head_t *h)
{
    streams_free(h);
    h->n_s = 0;
    arena_reset(&h->a);
    u64map_deinit(&h->by_hash);
    u64map_init(&h->by_hash);
    free(h->tmp);
    h->tmp = NULL;
    h->tmp_cap = 0;
    h->n_entries = h->vec_bytes = 0;
    h->min_ns = INT64_MAX;
    h->max_ns = INT64_MIN;
}

uint64_t logs_head_entries(const logs_head_t *h) { return h->n_entries; }
uint64_t logs_head_streams(const logs_head_t *h) { return h->n_s; }
int64_t logs_head_min_ns(const logs_head_t *h) { return h->min_ns; }
int64_t logs_head_max_ns(const logs_head_t *h) { return h->max_ns; }
uint64_t logs_head_bytes(const logs_head_t *h)
{
    return h->a.total_bytes + h->vec_bytes + h->cap_s * sizeof(lstream_t) + h->by_hash.cap * 16;
}

static lstream_t *head_stream(logs_head_t *h, const labels_t *ls)
{
    uint64_t key = labels_hash(ls);
    uint64_t *slot = u64map_get(&h->by_hash, key);
    uint32_t first = slot ? (uint32_t)*slot : LOGS_NONE;
    for (uint32_t i = first; i != LOGS_NONE; i = h->s[i].next_same_hash)
        if (labels_eq(&h->s[i].labels, ls))
            return &h->s[i];
    if (h->n_s == h->cap_s) {
        h->cap_s = h->cap_s ? h->cap_s * 2 : 64;
        h->s = db__xrealloc(h->s, h->cap_s * sizeof *h->s);
    }
    uint32_t id = (uint32_t)h->n_s++;
    lstream_t *s = &h->s[id];
    memset(s, 0, sizeof *s);
    s->labels = labels_copy(ls, &h->a);
    s->next_same_hash = first;
    s->min_ts = INT64_MAX;
    s->max_ts = INT64_MIN;
    u64map_put(&h->by_hash, key, id);
    return s;
}

static size_t run_start(const lstream_t *s, uint32_t k) { return k == 0 ? 0 : s->runs[k - 1]; }
static size_t run_end(const lstream_t *s, uint32_t k) { return k == s->n_runs ? s->n : s->runs[k]; }

/* First index in [lo, hi) of e with ts >= t. */
static size_t lower_ts(const lentry_t *e, size_t lo, size_t hi, int64_t t)
{
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (e[mid].ts < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool stream_has(const lstream_t *s, int64_t ts, str_t line)
{
    for (uint32_t k = 0; k <= s->n_runs; k++) {
        size_t end = run_end(s, k);
        for (size_t i = lower_ts(s->e, run_start(s, k), end, ts); i < end && s->e[i].ts == ts; i++)
            if (str_eqn(s->e[i].line, s->e[i].line_len, line))
                return true;
    }
    return false;
}

/* Merges the last two runs (stable: the earlier run wins ties). */
static void merge_last_runs(logs_head_t *h, lstream_t *s)
{
    size_t a = run_start(s, s->n_runs - 1), b = s->runs[s->n_runs - 1], c = s->n;
    size_t nl = b - a;
    if (nl > h->tmp_cap) {
        h->tmp_cap = nl;
        h->tmp = db__xrealloc(h->tmp, nl * sizeof *h->tmp);
    }
    memcpy(h->tmp, s->e + a, nl * sizeof *h->tmp);
    size_t i = 0, j = b, o = a;
    while (i < nl && j < c) {
        if (s->e[j].ts < h->tmp[i].ts)
            s->e[o++] = s->e[j++];
        else
            s->e[o++] = h->tmp[i++];
    }
    while (i < nl)
        s->e[o++] = h->tmp[i++];
    s->n_runs--;
}

static void stream_sort(logs_head_t *h, lstream_t *s)
{
    while (s->n_runs)
        merge_last_runs(h, s);
}

bool logs_head_append(logs_head_t *h, const labels_t *stream, int64_t ts_ns, str_t line,
                      const labels_t *meta)
{
    lstream_t *s = head_stream(h, stream);
    if (s->n && ts_ns <= s->max_ts && stream_has(s, ts_ns, line))
        return false;
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 16;
        h->vec_bytes += (ncap - s->cap) * sizeof *s->e;
        s->e = db__xrealloc(s->e, ncap * sizeof *s->e);
        s->cap = ncap;
    }
    if (s->n && ts_ns < s->e[s->n - 1].ts) {
        if (s->n_runs == s->cap_runs) {
            s->cap_runs = s->cap_runs ? s->cap_runs * 2 : 4;
            s->runs = db__xrealloc(s->runs, s->cap_runs * sizeof *s->runs);
        }
        s->runs[s->n_runs++] = (uint32_t)s->n;
    }
    lentry_t *e = &s->e[s->n++];
    e->ts = ts_ns;
    char *l = arena_alloc(&h->a, line.len ? line.len : 1);
    if (line.len)
        memcpy(l, line.ptr, line.len);
    e->line = l;
    e->line_len = (uint32_t)line.len;
    e->n_meta = 0;
    e->meta = NULL;
    if (meta && meta->n) {
        labels_t c = labels_copy(meta, &h->a);
        e->meta = c.v;
        e->n_meta = (uint32_t)c.n;
    }
    while (s->n_runs) {
        size_t last = s->n - s->runs[s->n_runs - 1];
        size_t prev = s->runs[s->n_runs - 1] - run_start(s, s->n_runs - 1);
        if (last * 2 <= prev)
            break;
        merge_last_runs(h, s);
    }
    if (ts_ns < s->min_ts)
        s->min_ts = ts_ns;
    if (ts_ns > s->max_ts)
        s->max_ts = ts_ns;
    if (ts_ns < h->min_ns)
        h->min_ns = ts_ns;
    if (ts_ns > h->max_ns)
        h->max_ns = ts_ns;
    h->n_entries++;
    return true;
}

/* ---- file writer ---- */

typedef struct lwriter {
    zfile_out_t z;
    logs_cenc_t c;
    /* current stream */
    buf_t s_labels;
    uint32_t s_first, s_chunks;
    uint64_t s_entries;
    int64_t s_min, s_max;
    /* file */
    buf_t streams, chunk_index, raw;
    uint32_t n_streams, n_chunks;
    uint64_t n_entries;
    int64_t min_ns, max_ns;
} lwriter_t;

static int lw_init(lwriter_t *w, const char *path, int level, err_t *err)
{
    memset(w, 0, sizeof *w);
    int rc = zfile_out_open(&w->z, path, LOGS_MAGIC, LOGS_VERSION, level, err);
    if (rc)
        return rc;
    w->min_ns = INT64_MAX;
    w->max_ns = INT64_MIN;
    return 0;
}

static void lw_deinit(lwriter_t *w)
{
    zfile_out_close(&w->z);
    logs__cenc_deinit(&w->c);
    buf_t *bufs[] = {&w->s_labels, &w->streams, &w->chunk_index, &w->raw};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        buf_deinit(bufs[i]);
}

static void lw_flush_chunk(lwriter_t *w)
{
    if (!w->c.n)
        return;
    logs__cenc_finish(&w->c, &w->raw);
    uint64_t off = zfile_out_pos(&w->z);
    uint32_t crc = 0, clen = zfile_out_frame(&w->z, &w->raw, &crc);
    uint8_t rec[LOGS_CHUNK_REC_BYTES];
    memset(rec, 0, sizeof rec);
    store_u64le(rec, off);
    store_u32le(rec + 8, clen);
    store_u32le(rec + 12, (uint32_t)buf_len(&w->raw));
    store_u32le(rec + 16, w->c.n);
    store_u32le(rec + 20, crc);
    store_u64le(rec + 24, (uint64_t)w->c.min_ts);
    store_u64le(rec + 32, (uint64_t)w->c.max_ts);
    store_u32le(rec + 40, w->n_streams);
    buf_append(&w->chunk_index, rec, sizeof rec);
    w->n_chunks++;
    w->s_chunks++;
    logs__cenc_clear(&w->c);
    zfile_out_flush(&w->z, false);
}

static void lw_begin_stream(lwriter_t *w, const labels_t *ls)
{
    buf_clear(&w->s_labels);
    labels_encode(&w->s_labels, ls);
    w->s_first = w->n_chunks;
    w->s_chunks = 0;
    w->s_entries = 0;
    w->s_min = INT64_MAX;
    w->s_max = INT64_MIN;
}

/* Adds an entry to the current stream, in time order (see cenc_add). */
static void lw_add(lwriter_t *w, int64_t ts, str_t line, const labels_t *meta, str_t meta_raw)
{
    logs__cenc_add(&w->c, ts, line, meta, meta_raw);
    w->s_entries++;
    w->n_entries++;
    if (ts < w->s_min)
        w->s_min = ts;
    if (ts > w->s_max)
        w->s_max = ts;
    if (ts < w->min_ns)
        w->min_ns = ts;
    if (ts > w->max_ns)
        w->max_ns = ts;
    if (w->c.bytes >= LOGS_CHUNK_RAW_TARGET)
        lw_flush_chunk(w);
}

static void lw_end_stream(lwriter_t *w)
{
    lw_flush_chunk(w);
    if (!w->s_entries)
        return;
    buf_append(&w->streams, w->s_labels.pos, buf_len(&w->s_labels));
    buf_put_uvarint(&w->streams, w->s_first);
    buf_put_uvarint(&w->streams, w->s_chunks);
    buf_put_uvarint(&w->streams, w->s_entries);
    store__put_zz(&w->streams, w->s_min);
    store__put_zz(&w->streams, w->s_max);
    w->n_streams++;
}

static int lw_finish(lwriter_t *w, uint64_t *bytes)
{
    uint8_t ft[LOGS_FOOTER_BYTES];
    memset(ft, 0, sizeof ft);
    buf_clear(&w->raw);
    buf_put_uvarint(&w->raw, w->n_streams);
    buf_append(&w->raw, w->streams.pos, buf_len(&w->streams));
    store_u64le(ft, zfile_out_pos(&w->z));
    uint32_t crc = 0;
    store_u32le(ft + 8, zfile_out_frame(&w->z, &w->raw, &crc));
    store_u32le(ft + 12, (uint32_t)buf_len(&w->raw));
    store_u32le(ft + 16, crc);
    store_u32le(ft + 20, w->n_streams);
    store_u64le(ft + 24, zfile_out_pos(&w->z));
    store_u32le(ft + 32, w->n_chunks);
    store_u32le(ft + 36, crc32c(0, w->chunk_index.pos, buf_len(&w->chunk_index)));
    buf_append(&w->z.out, w->chunk_index.pos, buf_len(&w->chunk_index));
    store_u64le(ft + 40, w->n_entries);
    store_u64le(ft + 48, (uint64_t)w->min_ns);
    store_u64le(ft + 56, (uint64_t)w->max_ns);
    return zfile_out_finish(&w->z, ft, sizeof ft, bytes);
}

static int stream_order_cmp(const void *a, const void *b)
{
    return labels_cmp(&(*(lstream_t *const *)a)->labels, &(*(lstream_t *const *)b)->labels);
}

int logs_head_write(logs_head_t *h, const char *path, uint64_t *bytes, err_t *err)
{
    lwriter_t w;
    int rc = lw_init(&w, path, LOGS_ZSTD_LEVEL_HEAD, err);
    if (rc)
        return rc;
    lstream_t **order = db__xrealloc(NULL, h->n_s * sizeof *order);
    for (size_t i = 0; i < h->n_s; i++)
        order[i] = &h->s[i];
    qsort(order, h->n_s, sizeof *order, stream_order_cmp);
    for (size_t k = 0; k < h->n_s && !w.z.rc; k++) {
        lstream_t *s = order[k];
        stream_sort(h, s);
        lw_begin_stream(&w, &s->labels);
        for (size_t i = 0; i < s->n; i++) {
            const lentry_t *e = &s->e[i];
            labels_t m = {e->meta, e->n_meta};
            lw_add(&w, e->ts, (str_t){e->line, e->line_len}, &m, STR_NULL);
        }
        lw_end_stream(&w);
    }
    free(order);
    rc = lw_finish(&w, bytes);
    lw_deinit(&w);
    return rc;
}

/* ---- file reader ---- */

typedef struct chunk_rec {
    uint64_t off;
    uint32_t clen, rlen, n, crc;
    int64_t min_ts, max_ts;
    uint32_t stream;
} chunk_rec_t;

typedef struct fstream {
    labels_t labels;
    uint32_t first, n_chunks;
    uint64_t n_entries;
    int64_t min_ts, max_ts;
} fstream_t;

struct logs_file {
    char *path;
    zfile_in_t in;
    arena_t a;
    uint8_t *streams_raw;
    fstream_t *streams;
    uint32_t n_streams, n_chunks;
    chunk_rec_t *chunks;
    uint64_t n_entries;
    int64_t min_ns, max_ns;
};

#define CORRUPT(err, path, off, what) ZFILE_CORRUPT(err, "log", path, off, what)

/* Reads and decodes chunk ci of f into d (see logs__chunk_decode). */
static int load_chunk(logs_file_t *f, uint32_t ci, logs_dchunk_t *d)
{
    const chunk_rec_t *c = &f->chunks[ci];
    d->n = 0;
    int rc = zfile_in_frame(&f->in, c->off, c->clen, c->rlen, c->crc, &d->comp, &d->raw);
    if (rc)
        return rc;
    return logs__chunk_decode(d, c->n, c->min_ts, c->max_ts);
}

static int decode_streams(logs_file_t *f, const uint8_t *p, size_t len, err_t *err, uint64_t off)
{
    store_rd_t r = {p, p + len, false};
    uint64_t n = store__rd_uv(&r);
    if (r.bad || n != f->n_streams || n > len)
        return CORRUPT(err, f->path, off, "bad stream table");
    f->streams = db__xrealloc(NULL, (size_t)(n ? n : 1) * sizeof *f->streams);
    uint64_t next_chunk = 0, entries = 0;
    for (uint64_t i = 0; i < n; i++) {
        fstream_t *s = &f->streams[i];
        s->labels = store__rd_labels(&r, &f->a);
        if (r.bad)
            return CORRUPT(err, f->path, off, "bad stream labels");
        uint64_t first = store__rd_uv(&r), nc = store__rd_uv(&r);
        s->n_entries = store__rd_uv(&r);
        s->min_ts = zigzag_dec(store__rd_uv(&r));
        s->max_ts = zigzag_dec(store__rd_uv(&r));
        if (r.bad || first != next_chunk || nc == 0 || nc > f->n_chunks - next_chunk ||
            (i && labels_cmp(&f->streams[i - 1].labels, &s->labels) >= 0))
            return CORRUPT(err, f->path, off, "bad stream table entry");
        s->first = (uint32_t)first;
        s->n_chunks = (uint32_t)nc;
        uint64_t ce = 0;
        for (uint32_t k = s->first; k < s->first + s->n_chunks; k++) {
            const chunk_rec_t *c = &f->chunks[k];
            if (c->stream != i || (k > s->first && c->min_ts < f->chunks[k - 1].max_ts) ||
                c->min_ts < s->min_ts || c->max_ts > s->max_ts)
                return CORRUPT(err, f->path, off, "chunk index does not match stream table");
            ce += c->n;
        }
        if (ce != s->n_entries)
            return CORRUPT(err, f->path, off, "stream entry count mismatch");
        next_chunk += nc;
        entries += s->n_entries;
    }
    if (r.p != r.end || next_chunk != f->n_chunks || entries != f->n_entries)
        return CORRUPT(err, f->path, off, "stream table does not cover the chunks");
    return 0;
}

/* Where the footer says the sections are (checked against each other and the file size). */
typedef struct sections {
    uint64_t st_off, ci_off;
    uint32_t st_clen, st_rlen, st_crc, ci_crc;
} sections_t;

static int read_footer(logs_file_t *f, sections_t *sec, err_t *err)
{
    uint8_t ft[LOGS_FOOTER_BYTES];
    int rc = zfile_in_ends(&f->in, f->path, "log", LOGS_MAGIC, LOGS_VERSION, ft, sizeof ft, err);
    if (rc)
        return rc;
    uint64_t fto = f->in.size - LOGS_FOOTER_BYTES;
    sec->st_off = load_u64le(ft);
    sec->st_clen = load_u32le(ft + 8);
    sec->st_rlen = load_u32le(ft + 12);
    sec->st_crc = load_u32le(ft + 16);
    f->n_streams = load_u32le(ft + 20);
    sec->ci_off = load_u64le(ft + 24);
    f->n_chunks = load_u32le(ft + 32);
    sec->ci_crc = load_u32le(ft + 36);
    f->n_entries = load_u64le(ft + 40);
    f->min_ns = (int64_t)load_u64le(ft + 48);
    f->max_ns = (int64_t)load_u64le(ft + 56);
    if (sec->st_off < LOGS_HEADER_BYTES || sec->st_off > fto || sec->st_clen > fto - sec->st_off ||
        sec->ci_off != sec->st_off + sec->st_clen ||
        sec->ci_off + (uint64_t)f->n_chunks * LOGS_CHUNK_REC_BYTES != fto ||
        sec->st_rlen > LOGS_STREAMS_RAW_MAX)
        return CORRUPT(err, f->path, fto, "section offsets out of bounds");
    return 0;
}

/* Reads the chunk index: chunks must tile [16, stream table) and span the file's time range. */
static int read_chunk_index(logs_file_t *f, const sections_t *sec, err_t *err)
{
    size_t clen = (size_t)f->n_chunks * LOGS_CHUNK_REC_BYTES;
    uint8_t *cbuf = db__xrealloc(NULL, clen);
    int rc = 0;
    if (zfile_in_read_crc(&f->in, cbuf, clen, sec->ci_off, sec->ci_crc) != 0)
        rc = CORRUPT(err, f->path, sec->ci_off, "chunk index checksum mismatch");
    f->chunks = db__xrealloc(NULL, (f->n_chunks ? f->n_chunks : 1) * sizeof *f->chunks);
    uint64_t expect = LOGS_HEADER_BYTES;
    int64_t fmin = INT64_MAX, fmax = INT64_MIN;
    for (uint32_t i = 0; i < f->n_chunks && !rc; i++) {
        const uint8_t *q = cbuf + (size_t)i * LOGS_CHUNK_REC_BYTES;
        chunk_rec_t *c = &f->chunks[i];
        c->off = load_u64le(q);
        c->clen = load_u32le(q + 8);
        c->rlen = load_u32le(q + 12);
        c->n = load_u32le(q + 16);
        c->crc = load_u32le(q + 20);
        c->min_ts = (int64_t)load_u64le(q + 24);
        c->max_ts = (int64_t)load_u64le(q + 32);
        c->stream = load_u32le(q + 40);
        if (c->off != expect || c->clen > sec->st_off - c->off || c->n == 0 ||
            c->rlen > LOGS_CHUNK_RAW_MAX || c->min_ts > c->max_ts || c->stream >= f->n_streams ||
            load_u32le(q + 44) != 0)
            rc = CORRUPT(err, f->path, sec->ci_off + (uint64_t)i * LOGS_CHUNK_REC_BYTES,
                         "bad chunk index entry");
        expect += c->clen;
        fmin = c->min_ts < fmin ? c->min_ts : fmin;
        fmax = c->max_ts > fmax ? c->max_ts : fmax;
    }
    free(cbuf);
    if (!rc && (expect != sec->st_off || fmin != f->min_ns || fmax != f->max_ns))
        rc = CORRUPT(err, f->path, sec->ci_off, "chunk index does not cover the chunks");
    return rc;
}

static int read_stream_table(logs_file_t *f, const sections_t *sec, err_t *err)
{
    buf_t comp = BUF_INIT, raw = BUF_INIT;
    int rc =
        zfile_in_frame(&f->in, sec->st_off, sec->st_clen, sec->st_rlen, sec->st_crc, &comp, &raw);
    buf_deinit(&comp);
    if (rc) {
        buf_deinit(&raw);
        return rc == ERR_IO ? err_set(err, rc, "%s: read: %s", f->path, strerror(errno))
                            : CORRUPT(err, f->path, sec->st_off, "bad stream table frame");
    }
    f->streams_raw = buf_steal(&raw, &(size_t){0});
    return decode_streams(f, f->streams_raw, sec->st_rlen, err, sec->st_off);
}

int logs_file_open(const char *path, logs_file_t **out, err_t *err)
{
    *out = NULL;
    logs_file_t *f = calloc(1, sizeof *f);
    if (!f)
        return err_set(err, ERR_NOMEM, "%s: out of memory", path);
    arena_init(&f->a, 0);
    f->path = strdup(path);
    sections_t sec = {0};
    int rc = zfile_in_open(&f->in, path, err);
    if (!rc && !(rc = read_footer(f, &sec, err)) && !(rc = read_chunk_index(f, &sec, err)))
        rc = read_stream_table(f, &sec, err);
    if (rc) {
        logs_file_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

void logs_file_close(logs_file_t *f)
{
    if (!f)
        return;
    zfile_in_close(&f->in);
    free(f->path);
    free(f->streams_raw);
    free(f->streams);
    free(f->chunks);
    arena_deinit(&f->a);
    free(f);
}

uint64_t logs_file_entries(const logs_file_t *f) { return f->n_entries; }

int logs_file_verify(logs_file_t *f, err_t *err)
{
    logs_dchunk_t *d = calloc(1, sizeof *d);
    int rc = 0;
    for (uint32_t i = 0; i < f->n_chunks && !rc; i++) {
        rc = load_chunk(f, i, d);
        if (rc == ERR_IO)
            rc = err_set(err, rc, "%s: read: %s", f->path, strerror(errno));
        else if (rc)
            rc = CORRUPT(err, f->path, f->chunks[i].off, "bad chunk");
    }
    logs__dchunk_free(d);
    return rc;
}

/* ---- k-way merge over head streams and file streams ---- */

typedef struct lsrc {
    uint32_t group;
    lstream_t *hs;       /* head source, or NULL */
    size_t lo, hi;       /* head: remaining entries [lo, hi); file: within the open chunk */
    logs_file_t *f;      /* file source */
    uint32_t c_lo, c_hi; /* file: chunks not yet opened, [c_lo, c_hi) */
    logs_dchunk_t *dc;   /* file: the open chunk, or NULL (pending: key is a chunk bound) */
    int64_t key;
} lsrc_t;

typedef struct mentry {
    int64_t ts;
    str_t line;
    uint32_t group;
    const lentry_t *he; /* head entry (metadata as labels), or NULL */
    str_t meta_raw;     /* file entry metadata in binary form */
} mentry_t;

typedef struct merger {
    lsrc_t *src;
    size_t n_src, cap_src;
    uint32_t *heap;
    size_t n_heap;
    bool backward;
    int64_t mint, maxt;
    logs_dchunk_t *free_chunks, *release;
    bool strict; /* a bad chunk stops the merge (compaction) instead of being skipped */
    int rc;
    err_t *err;
    bool have_last;
    int64_t last_ts;
    uint32_t last_group;
    buf_t run_lines; /* lines delivered for (last_ts, last_group): uvarint len + bytes */
} merger_t;

static void merger_init(merger_t *m, bool backward, int64_t mint, int64_t maxt)
{
    memset(m, 0, sizeof *m);
    m->backward = backward;
    m->mint = mint;
    m->maxt = maxt;
}

static void chunk_put(merger_t *m, logs_dchunk_t *d)
{
    if (d) {
        d->next_free = m->free_chunks;
        m->free_chunks = d;
    }
}

static void merger_deinit(merger_t *m)
{
    for (size_t i = 0; i < m->n_src; i++)
        logs__dchunk_free(m->src[i].dc);
    logs__dchunk_free(m->release);
    while (m->free_chunks) {
        logs_dchunk_t *d = m->free_chunks;
        m->free_chunks = d->next_free;
        logs__dchunk_free(d);
    }
    free(m->src);
    free(m->heap);
    buf_deinit(&m->run_lines);
}

/* True if source a comes before source b. */
static bool src_before(const merger_t *m, uint32_t ia, uint32_t ib)
{
    const lsrc_t *a = &m->src[ia], *b = &m->src[ib];
    if (a->key != b->key)
        return m->backward ? a->key > b->key : a->key < b->key;
    bool pa = a->f && !a->dc, pb = b->f && !b->dc;
    if (pa != pb)
        return pa; /* open pending chunks first so equal timestamps meet in order */
    if (a->group != b->group)
        return m->backward ? a->group > b->group : a->group < b->group;
    return m->backward ? ia > ib : ia < ib;
}

static void heap_down(merger_t *m, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, best = i;
        if (l < m->n_heap && src_before(m, m->heap[l], m->heap[best]))
            best = l;
        if (r < m->n_heap && src_before(m, m->heap[r], m->heap[best]))
            best = r;
        if (best == i)
            return;
        uint32_t t = m->heap[i];
        m->heap[i] = m->heap[best];
        m->heap[best] = t;
        i = best;
    }
}

static void heap_push(merger_t *m, uint32_t si)
{
    size_t i = m->n_heap++;
    m->heap[i] = si;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!src_before(m, m->heap[i], m->heap[p]))
            break;
        uint32_t t = m->heap[i];
        m->heap[i] = m->heap[p];
        m->heap[p] = t;
        i = p;
    }
}

static void heap_pop(merger_t *m)
{
    m->heap[0] = m->heap[--m->n_heap];
    if (m->n_heap)
        heap_down(m, 0);
}

static lsrc_t *merger_new_src(merger_t *m, uint32_t group)
{
    if (m->n_src == m->cap_src) {
        m->cap_src = m->cap_src ? m->cap_src * 2 : 16;
        m->src = db__xrealloc(m->src, m->cap_src * sizeof *m->src);
    }
    lsrc_t *s = &m->src[m->n_src++];
    memset(s, 0, sizeof *s);
    s->group = group;
    return s;
}

/* Sets a file source's key from its next unopened chunk; false when none is left. */
static bool src_pend(merger_t *m, lsrc_t *s)
{
    if (s->c_lo >= s->c_hi)
        return false;
    const chunk_rec_t *c = &s->f->chunks[m->backward ? s->c_hi - 1 : s->c_lo];
    s->key = m->backward ? c->max_ts : c->min_ts;
    return true;
}

/* Adds a head stream (sorted) as a source. */
static void merger_add_head(merger_t *m, lstream_t *hs, uint32_t group)
{
    size_t lo = lower_ts(hs->e, 0, hs->n, m->mint);
    size_t hi = m->maxt == INT64_MAX ? hs->n : lower_ts(hs->e, lo, hs->n, m->maxt + 1);
    if (lo >= hi)
        return;
    lsrc_t *s = merger_new_src(m, group);
    s->hs = hs;
    s->lo = lo;
    s->hi = hi;
    s->key = hs->e[m->backward ? hi - 1 : lo].ts;
}

/* Adds file stream fs of f as a source, restricted to chunks overlapping the time range. */
static void merger_add_file(merger_t *m, logs_file_t *f, const fstream_t *fs, uint32_t group)
{
    uint32_t lo = fs->first, hi = fs->first + fs->n_chunks;
    while (lo < hi && f->chunks[lo].max_ts < m->mint)
        lo++;
    while (hi > lo && f->chunks[hi - 1].min_ts > m->maxt)
        hi--;
    if (lo >= hi)
        return;
    lsrc_t *s = merger_new_src(m, group);
    s->f = f;
    s->c_lo = lo;
    s->c_hi = hi;
    src_pend(m, s);
}

static void merger_start(merger_t *m)
{
    m->heap = db__xrealloc(m->heap, (m->n_src ? m->n_src : 1) * sizeof *m->heap);
    m->n_heap = 0;
    for (size_t i = 0; i < m->n_src; i++)
        heap_push(m, (uint32_t)i);
}

/* Opens the next chunk of pending file source s; false when it has nothing in range. */
static bool src_open(merger_t *m, lsrc_t *s)
{
    while (s->c_lo < s->c_hi) {
        uint32_t ci = m->backward ? --s->c_hi : s->c_lo++;
        logs_dchunk_t *d = m->free_chunks;
        if (d)
            m->free_chunks = d->next_free;
        else if (!(d = calloc(1, sizeof *d)))
            abort();
        int rc = load_chunk(s->f, ci, d);
        if (rc && m->strict) {
            chunk_put(m, d);
            m->rc = rc == ERR_IO ? err_set(m->err, rc, "%s: read: %s", s->f->path, strerror(errno))
                                 : CORRUPT(m->err, s->f->path, s->f->chunks[ci].off, "bad chunk");
            s->c_lo = s->c_hi;
            return false;
        }
        if (rc) {
            log_error("log file chunk unreadable, skipped", "file=%s chunk=%u offset=%llu err=%s",
                      s->f->path, ci, (unsigned long long)s->f->chunks[ci].off, err_name(rc));
            chunk_put(m, d);
            continue;
        }
        size_t lo = 0, hi = d->n;
        while (lo < hi && d->ts[lo] < m->mint)
            lo++;
        while (hi > lo && d->ts[hi - 1] > m->maxt)
            hi--;
        if (lo >= hi) {
            chunk_put(m, d);
            continue;
        }
        s->dc = d;
        s->lo = lo;
        s->hi = hi;
        s->key = d->ts[m->backward ? hi - 1 : lo];
        return true;
    }
    return false;
}

static bool dedup_seen(merger_t *m, const mentry_t *e)
{
    if (!m->have_last || e->ts != m->last_ts || e->group != m->last_group) {
        m->have_last = true;
        m->last_ts = e->ts;
        m->last_group = e->group;
        buf_clear(&m->run_lines);
    } else {
        store_rd_t r = {m->run_lines.pos, m->run_lines.last, false};
        while (r.p < r.end) {
            uint64_t n = store__rd_uv(&r);
            const uint8_t *p = store__rd_bytes(&r, n);
            if (str_eqn((const char *)p, (size_t)n, e->line))
                return true;
        }
    }
    buf_put_uvarint(&m->run_lines, e->line.len);
    buf_put_str(&m->run_lines, e->line);
    return false;
}

/* Next entry in merge order, duplicates dropped; false at the end. out is valid until the next
 * call. */
static bool merger_next(merger_t *m, mentry_t *out)
{
    chunk_put(m, m->release);
    m->release = NULL;
    while (m->n_heap && !m->rc) {
        uint32_t si = m->heap[0];
        lsrc_t *s = &m->src[si];
        if (s->f && !s->dc) {
            if (src_open(m, s))
                heap_down(m, 0);
            else
                heap_pop(m);
            continue;
        }
        size_t i = m->backward ? s->hi - 1 : s->lo;
        out->group = s->group;
        if (s->hs) {
            const lentry_t *e = &s->hs->e[i];
            out->ts = e->ts;
            out->line = (str_t){e->line, e->line_len};
            out->he = e;
            out->meta_raw = STR_NULL;
        } else {
            const logs_dchunk_t *d = s->dc;
            out->ts = d->ts[i];
            out->line = (str_t){d->line[i], d->line_len[i]};
            out->he = NULL;
            out->meta_raw = (str_t){(const char *)d->raw.pos + d->meta_off[i], d->meta_len[i]};
        }
        if (m->backward)
            s->hi--;
        else
            s->lo++;
        if (s->lo < s->hi) {
            s->key = s->hs ? s->hs->e[m->backward ? s->hi - 1 : s->lo].ts
                           : s->dc->ts[m->backward ? s->hi - 1 : s->lo];
            heap_down(m, 0);
        } else if (s->f) {
            m->release = s->dc; /* out points into it until the next call */
            s->dc = NULL;
            if (src_pend(m, s))
                heap_down(m, 0);
            else
                heap_pop(m);
        } else {
            heap_pop(m);
        }
        if (dedup_seen(m, out)) {
            if (m->release) {
                chunk_put(m, m->release);
                m->release = NULL;
            }
            continue;
        }
        return true;
    }
    return false;
}

/* ---- select, label names and values ---- */

typedef struct group {
    const labels_t *labels;
    uint32_t next_same_hash;
} group_t;

typedef struct groups {
    group_t *v;
    size_t n, cap;
    u64map_t map;
} groups_t;

static uint32_t group_of(groups_t *g, const labels_t *ls)
{
    uint64_t key = labels_hash(ls);
    uint64_t *slot = u64map_get(&g->map, key);
    uint32_t first = slot ? (uint32_t)*slot : LOGS_NONE;
    for (uint32_t i = first; i != LOGS_NONE; i = g->v[i].next_same_hash)
        if (labels_eq(g->v[i].labels, ls))
            return i;
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 64;
        g->v = db__xrealloc(g->v, g->cap * sizeof *g->v);
    }
    uint32_t id = (uint32_t)g->n++;
    g->v[id].labels = ls;
    g->v[id].next_same_hash = first;
    u64map_put(&g->map, key, id);
    return id;
}

static bool overlaps(int64_t min, int64_t max, int64_t mint, int64_t maxt)
{
    return max >= mint && min <= maxt;
}

int logs_select(logs_head_t *h, logs_file_t **files, size_t n_files, const matcher_t *ms,
                size_t n_ms, int64_t mint_ns, int64_t maxt_ns, bool backward, size_t limit,
                bool (*cb)(void *arg, const db_log_entry_t *e), void *arg, err_t *err)
{
    (void)err;
    if (mint_ns > maxt_ns)
        return 0;
    merger_t m;
    merger_init(&m, backward, mint_ns, maxt_ns);
    groups_t g;
    memset(&g, 0, sizeof g);
    u64map_init(&g.map);
    if (h) {
        for (size_t i = 0; i < h->n_s; i++) {
            lstream_t *s = &h->s[i];
            if (!s->n || !overlaps(s->min_ts, s->max_ts, mint_ns, maxt_ns) ||
                !matchers_match(ms, n_ms, &s->labels))
                continue;
            stream_sort(h, s);
            merger_add_head(&m, s, group_of(&g, &s->labels));
        }
    }
    for (size_t fi = 0; fi < n_files; fi++) {
        logs_file_t *f = files[fi];
        if (!overlaps(f->min_ns, f->max_ns, mint_ns, maxt_ns))
            continue;
        for (uint32_t i = 0; i < f->n_streams; i++) {
            const fstream_t *fs = &f->streams[i];
            if (!overlaps(fs->min_ts, fs->max_ts, mint_ns, maxt_ns) ||
                !matchers_match(ms, n_ms, &fs->labels))
                continue;
            merger_add_file(&m, f, fs, group_of(&g, &fs->labels));
        }
    }
    merger_start(&m);
    arena_t scratch;
    arena_init(&scratch, 4096);
    size_t delivered = 0;
    mentry_t me;
    static const labels_t no_meta = {NULL, 0};
    while ((limit == 0 || delivered < limit) && merger_next(&m, &me)) {
        labels_t meta = no_meta;
        if (me.he) {
            meta.v = me.he->meta;
            meta.n = me.he->n_meta;
        } else {
            arena_reset(&scratch);
            const uint8_t *p = (const uint8_t *)me.meta_raw.ptr;
            if (labels_decode(&p, p + me.meta_raw.len, &scratch, &meta) != 0)
                meta = no_meta; /* validated when the chunk was loaded */
        }
        db_log_entry_t e = {g.v[me.group].labels, me.ts, me.line, &meta};
        delivered++;
        if (!cb(arg, &e))
            break;
    }
    arena_deinit(&scratch);
    merger_deinit(&m);
    free(g.v);
    u64map_deinit(&g.map);
    return 0;
}

/* Collects label names (name NULL) or the values of one name, deduplicated, into a vector. */
typedef struct strset {
    str_t *v;
    uint32_t *next; /* next index with the same hash */
    size_t n, cap;
    u64map_t map; /* hash -> first index */
} strset_t;

static void strset_add(strset_t *s, str_t x)
{
    uint64_t h = hash_str(x);
    h = h ? h : 1;
    uint64_t *slot = u64map_get(&s->map, h);
    uint32_t first = slot ? (uint32_t)*slot : LOGS_NONE;
    for (uint32_t i = first; i != LOGS_NONE; i = s->next[i])
        if (str_eq(s->v[i], x))
            return;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->v = db__xrealloc(s->v, s->cap * sizeof *s->v);
        s->next = db__xrealloc(s->next, s->cap * sizeof *s->next);
    }
    s->next[s->n] = first;
    u64map_put(&s->map, h, s->n);
    s->v[s->n++] = x;
}

static int str_ptr_cmp(const void *a, const void *b)
{
    return str_cmp(*(const str_t *)a, *(const str_t *)b);
}

static void collect_labels(strset_t *set, const labels_t *ls, const str_t *name)
{
    for (size_t i = 0; i < ls->n; i++) {
        if (!name)
            strset_add(set, ls->v[i].name);
        else if (str_eq(ls->v[i].name, *name))
            strset_add(set, ls->v[i].value);
    }
}

static int label_walk(logs_head_t *h, logs_file_t **files, size_t n_files, const str_t *name,
                      int64_t mint_ns, int64_t maxt_ns, arena_t *a, str_t **out, size_t *n_out)
{
    strset_t set;
    memset(&set, 0, sizeof set);
    u64map_init(&set.map);
    for (size_t i = 0; h && i < h->n_s; i++)
        if (h->s[i].n && overlaps(h->s[i].min_ts, h->s[i].max_ts, mint_ns, maxt_ns))
            collect_labels(&set, &h->s[i].labels, name);
    for (size_t fi = 0; fi < n_files; fi++)
        for (uint32_t i = 0; i < files[fi]->n_streams; i++) {
            const fstream_t *fs = &files[fi]->streams[i];
            if (overlaps(fs->min_ts, fs->max_ts, mint_ns, maxt_ns))
                collect_labels(&set, &fs->labels, name);
        }
    if (set.n)
        qsort(set.v, set.n, sizeof *set.v, str_ptr_cmp);
    *out = set.n ? arena_alloc(a, set.n * sizeof **out) : NULL;
    for (size_t i = 0; i < set.n; i++)
        (*out)[i] = arena_str(a, set.v[i]);
    *n_out = set.n;
    free(set.v);
    free(set.next);
    u64map_deinit(&set.map);
    return 0;
}

int logs_label_names(logs_head_t *h, logs_file_t **files, size_t n_files, int64_t mint_ns,
                     int64_t maxt_ns, arena_t *a, str_t **out, size_t *n_out)
{
    return label_walk(h, files, n_files, NULL, mint_ns, maxt_ns, a, out, n_out);
}

int logs_label_values(logs_head_t *h, logs_file_t **files, size_t n_files, str_t name,
                      int64_t mint_ns, int64_t maxt_ns, arena_t *a, str_t **out, size_t *n_out)
{
    return label_walk(h, files, n_files, &name, mint_ns, maxt_ns, a, out, n_out);
}

/* ---- merge (compaction) ---- */

int logs_file_merge(logs_file_t **in, size_t n, const char *path, uint64_t *bytes, err_t *err)
{
    lwriter_t w;
    int rc = lw_init(&w, path, LOGS_ZSTD_LEVEL_MERGE, err);
    if (rc)
        return rc;
    uint32_t *next = calloc(n ? n : 1, sizeof *next);
    for (;;) {
        const labels_t *min = NULL;
        for (size_t i = 0; i < n; i++) {
            if (next[i] >= in[i]->n_streams)
                continue;
            const labels_t *ls = &in[i]->streams[next[i]].labels;
            if (!min || labels_cmp(ls, min) < 0)
                min = ls;
        }
        if (!min)
            break;
        merger_t m;
        merger_init(&m, false, INT64_MIN, INT64_MAX);
        const labels_t *ls = min;
        for (size_t i = 0; i < n; i++) {
            if (next[i] < in[i]->n_streams && labels_eq(&in[i]->streams[next[i]].labels, ls))
                merger_add_file(&m, in[i], &in[i]->streams[next[i]], 0);
        }
        merger_start(&m);
        m.strict = true;
        m.err = err;
        lw_begin_stream(&w, ls);
        mentry_t e;
        while (!w.z.rc && merger_next(&m, &e))
            lw_add(&w, e.ts, e.line, NULL, e.meta_raw);
        lw_end_stream(&w);
        int m_rc = m.rc;
        merger_deinit(&m);
        /* ls points into an input's stream table, which outlives these increments */
        for (size_t i = 0; i < n; i++)
            if (next[i] < in[i]->n_streams && labels_eq(&in[i]->streams[next[i]].labels, ls))
                next[i]++;
        if (m_rc) {
            rc = m_rc;
            break;
        }
    }
    free(next);
    if (rc) {
        lw_deinit(&w);
        unlink(path);
        return rc;
    }
    rc = lw_finish(&w, bytes);
    lw_deinit(&w);
    return rc;
}

/* ---- WAL codec ----
 * Payload: u8 version (1); uvarint n_streams, n_streams x labels (labels.h binary form);
 * uvarint n, then n entries: uvarint stream index, zz (ts - previous entry's ts, starting at 0),
 * uvarint len + line, metadata labels.
 */

#define LOGS_WAL_VERSION 1

void logs_wal_encode(buf_t *out, const logs_wal_entry_t *entries, size_t n)
{
    u64map_t map;
    u64map_init(&map);
    uint32_t *idx = db__xrealloc(NULL, (n ? n : 1) * sizeof *idx);
    const labels_t **uniq = db__xrealloc(NULL, (n ? n : 1) * sizeof *uniq);
    size_t n_uniq = 0;
    for (size_t i = 0; i < n; i++) {
        const labels_t *ls = &entries[i].stream;
        uint64_t key = labels_hash(ls);
        uint64_t *slot = u64map_get(&map, key);
        if (slot && labels_eq(uniq[*slot], ls)) {
            idx[i] = (uint32_t)*slot;
            continue;
        }
        idx[i] = (uint32_t)n_uniq;
        uniq[n_uniq++] = ls;
        if (!slot)
            u64map_put(&map, key, idx[i]);
    }
    buf_putc(out, LOGS_WAL_VERSION);
    buf_put_uvarint(out, n_uniq);
    for (size_t i = 0; i < n_uniq; i++)
        labels_encode(out, uniq[i]);
    buf_put_uvarint(out, n);
    int64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        const logs_wal_entry_t *e = &entries[i];
        buf_put_uvarint(out, idx[i]);
        store__put_zz(out, (int64_t)((uint64_t)e->ts_ns - (uint64_t)prev));
        prev = e->ts_ns;
        buf_put_uvarint(out, e->line.len);
        buf_put_str(out, e->line);
        labels_encode(out, &e->meta);
    }
    free(idx);
    free(uniq);
    u64map_deinit(&map);
}

int logs_wal_decode(const uint8_t *p, size_t n, arena_t *a,
                    void (*cb)(void *arg, const logs_wal_entry_t *e), void *arg)
{
    /* Pass 1 checks the structure so nothing is delivered from a malformed payload. */
    store_rd_t r = {p, p + n, false};
    const uint8_t *ver = store__rd_bytes(&r, 1);
    if (!ver || *ver != LOGS_WAL_VERSION)
        return ERR_CORRUPT;
    uint64_t n_streams = store__rd_uv(&r);
    if (r.bad || n_streams > n)
        return ERR_CORRUPT;
    const uint8_t *streams_at = r.p;
    for (uint64_t i = 0; i < n_streams && !r.bad; i++)
        store__rd_skip_labels(&r);
    uint64_t count = store__rd_uv(&r);
    if (r.bad || count > n)
        return ERR_CORRUPT;
    const uint8_t *entries_at = r.p;
    for (uint64_t i = 0; i < count && !r.bad; i++) {
        if (store__rd_uv(&r) >= n_streams)
            return ERR_CORRUPT;
        store__rd_uv(&r);
        store__rd_bytes(&r, store__rd_uv(&r));
        store__rd_skip_labels(&r);
    }
    if (r.bad || r.p != r.end)
        return ERR_CORRUPT;
    /* Pass 2 decodes. */
    labels_t *streams = n_streams ? arena_alloc(a, (size_t)n_streams * sizeof *streams) : NULL;
    const uint8_t *q = streams_at;
    for (uint64_t i = 0; i < n_streams; i++)
        if (labels_decode(&q, p + n, a, &streams[i]) != 0)
            return ERR_CORRUPT;
    r = (store_rd_t){entries_at, p + n, false};
    int64_t ts = 0;
    for (uint64_t i = 0; i < count; i++) {
        logs_wal_entry_t e;
        e.stream = streams[store__rd_uv(&r)];
        ts = (int64_t)((uint64_t)ts + (uint64_t)zigzag_dec(store__rd_uv(&r)));
        e.ts_ns = ts;
        uint64_t len = store__rd_uv(&r);
        e.line = (str_t){(const char *)store__rd_bytes(&r, len), (size_t)len};
        e.meta = store__rd_labels(&r, a);
        if (r.bad)
            return ERR_CORRUPT;
        cb(arg, &e);
    }
    return 0;
}
