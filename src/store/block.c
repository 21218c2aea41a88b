/*
 * block.c - block writer, reader and metrics merge (layouts in store/format.h).
 *
 * Writer: chunks stream to <id>.tmp/chunks as they are produced (samples are re-chunked into
 * chunks of up to BLOCK_CHUNK_SAMPLES, or raw chunks copied); series labels and chunk refs stay in
 * memory until finish, which builds the symbol table (all label strings, sorted, unique), the
 * series entries, the postings (from (name, value, ref) triples sorted once) and the lookup
 * tables, each section checksummed, then meta, then the fsync-and-rename dance.
 *
 * Reader: meta is read and checked, index and chunks are mapped, the index footer and section
 * CRCs are verified once at open; after that every lookup is a binary search or an offset read
 * in the mapping, each bounds-checked, so even a file that changed under us cannot make a read
 * leave the mapping.
 */
#include "store/block.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/crc32c.h"
#include "base/log.h"
#include "base/varint.h"
#include "store/chunk.h"
#include "store/internal.h"

#define FLUSH_BYTES (1u << 20)

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "skillscope: out of memory writing a block\n");
        abort();
    }
    return q;
}

#define GROW(arr, n, cap)                                                                          \
    do {                                                                                           \
        if ((n) == (cap)) {                                                                        \
            (cap) = (cap) ? (cap)*2 : 64;                                                          \
            (arr) = xrealloc((arr), (cap) * sizeof *(arr));                                        \
        }                                                                                          \
    } while (0)

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int store__rmtree(const char *path)
{
    return nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : ERR_IO;
}

/* ---- buffered file writer with running CRCs ---- */

typedef struct fwriter {
    int fd;
    buf_t b;
    uint64_t off;     /* bytes handed to fw_put so far */
    uint32_t crc;     /* whole file */
    uint32_t sec_crc; /* current section */
    uint64_t sec_off;
    int err; /* errno of the first failure */
} fwriter_t;

static int fw_open(fwriter_t *f, const char *path)
{
    memset(f, 0, sizeof *f);
    f->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd < 0)
        return errno;
    buf_init(&f->b, FLUSH_BYTES + 4096);
    return 0;
}

static void fw_flush(fwriter_t *f)
{
    const uint8_t *p = f->b.pos;
    size_t n = buf_len(&f->b);
    while (n && !f->err) {
        ssize_t r = write(f->fd, p, n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            f->err = errno;
            break;
        }
        p += r;
        n -= (size_t)r;
    }
    buf_clear(&f->b);
}

static void fw_put(fwriter_t *f, const void *p, size_t n)
{
    f->crc = crc32c(f->crc, p, n);
    f->sec_crc = crc32c(f->sec_crc, p, n);
    f->off += n;
    if (n >= FLUSH_BYTES) {
        fw_flush(f);
        const uint8_t *q = p;
        while (n && !f->err) {
            ssize_t r = write(f->fd, q, n);
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                f->err = errno;
                break;
            }
            q += r;
            n -= (size_t)r;
        }
        return;
    }
    buf_append(&f->b, p, n);
    if (buf_len(&f->b) >= FLUSH_BYTES)
        fw_flush(f);
}

static void fw_u32(fwriter_t *f, uint32_t v)
{
    uint8_t b[4];
    store_u32le(b, v);
    fw_put(f, b, 4);
}

static void fw_u64(fwriter_t *f, uint64_t v)
{
    uint8_t b[8];
    store_u64le(b, v);
    fw_put(f, b, 8);
}

static void fw_uvarint(fwriter_t *f, uint64_t v)
{
    uint8_t b[UVARINT_MAX];
    fw_put(f, b, uvarint_put(b, v));
}

static void fw_section_begin(fwriter_t *f)
{
    f->sec_crc = 0;
    f->sec_off = f->off;
}

/* Flushes, syncs and closes; returns 0 or an errno. */
static int fw_close(fwriter_t *f)
{
    fw_flush(f);
    if (!f->err && fdatasync(f->fd) != 0)
        f->err = errno;
    close(f->fd);
    f->fd = -1;
    buf_deinit(&f->b);
    return f->err;
}

static void fw_abort(fwriter_t *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    buf_deinit(&f->b);
}

/* ---- meta ---- */

static void meta_encode(const block_meta_t *m, uint8_t out[BLOCK_META_BYTES])
{
    memset(out, 0, BLOCK_META_BYTES);
    memcpy(out, BLOCK_META_MAGIC, 8);
    store_u32le(out + 8, m->version);
    store_u32le(out + 12, m->level);
    int64_t v[] = {m->min_t,
                   m->max_t,
                   m->m_mint,
                   m->m_maxt,
                   (int64_t)m->n_series,
                   (int64_t)m->n_samples,
                   (int64_t)m->n_chunks,
                   (int64_t)m->n_spans,
                   (int64_t)m->n_logs,
                   m->span_min_ns,
                   m->span_max_ns,
                   m->log_min_ns,
                   m->log_max_ns};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        store_u64le(out + 16 + 8 * i, (uint64_t)v[i]);
    store_u32le(out + 120, m->n_files);
    for (uint32_t i = 0; i < m->n_files && i < BLOCK_MAX_FILES; i++) {
        uint8_t *p = out + 124 + 16 * i;
        p[0] = m->files[i].kind;
        store_u32le(p + 4, m->files[i].crc);
        store_u64le(p + 8, m->files[i].size);
    }
    store_u32le(out + 252, crc32c(0, out, 252));
}

static int meta_decode(const uint8_t *in, size_t n, block_meta_t *m, const char *path, err_t *err)
{
    if (n != BLOCK_META_BYTES || memcmp(in, BLOCK_META_MAGIC, 8) != 0)
        return err_set(err, ERR_CORRUPT, "%s: not a block meta file (size %zu)", path, n);
    if (crc32c(0, in, 252) != load_u32le(in + 252))
        return err_set(err, ERR_CORRUPT, "%s: checksum mismatch at offset 252", path);
    memset(m, 0, sizeof *m);
    m->version = load_u32le(in + 8);
    if (m->version != BLOCK_VERSION)
        return err_set(err, ERR_UNSUPPORTED, "%s: block version %u not supported", path,
                       m->version);
    m->level = load_u32le(in + 12);
    int64_t v[13];
    for (size_t i = 0; i < 13; i++)
        v[i] = (int64_t)load_u64le(in + 16 + 8 * i);
    m->min_t = v[0];
    m->max_t = v[1];
    m->m_mint = v[2];
    m->m_maxt = v[3];
    m->n_series = (uint64_t)v[4];
    m->n_samples = (uint64_t)v[5];
    m->n_chunks = (uint64_t)v[6];
    m->n_spans = (uint64_t)v[7];
    m->n_logs = (uint64_t)v[8];
    m->span_min_ns = v[9];
    m->span_max_ns = v[10];
    m->log_min_ns = v[11];
    m->log_max_ns = v[12];
    m->n_files = load_u32le(in + 120);
    if (m->n_files > BLOCK_MAX_FILES)
        return err_set(err, ERR_CORRUPT, "%s: %u files at offset 120", path, m->n_files);
    for (uint32_t i = 0; i < m->n_files; i++) {
        const uint8_t *p = in + 124 + 16 * i;
        m->files[i].kind = p[0];
        m->files[i].crc = load_u32le(p + 4);
        m->files[i].size = load_u64le(p + 8);
    }
    return 0;
}

static const char *file_name(uint8_t kind)
{
    switch (kind) {
    case BLOCK_FILE_INDEX:
        return "index";
    case BLOCK_FILE_CHUNKS:
        return "chunks";
    case BLOCK_FILE_SPANS:
        return "spans";
    case BLOCK_FILE_LOGS:
        return "logs";
    }
    return "unknown";
}

/* ---- writer ---- */

typedef struct wseries {
    labels_t ls;
    uint32_t first_chunk, n_chunks;
} wseries_t;

typedef struct extra_file {
    block_file_kind_t kind;
    uint64_t count;
    int64_t min_ns, max_ns;
} extra_file_t;

struct block_writer {
    char *blocks_dir, *tmp_dir;
    char id[17];
    fwriter_t chunks;
    arena_t arena;
    wseries_t *series;
    size_t n_series, cap_series;
    block_chunk_ref_t *crefs;
    size_t n_crefs, cap_crefs;
    bool in_series;
    labels_t cur;
    uint32_t cur_first;
    int64_t *bt; /* samples of the chunk being built */
    double *bv;
    size_t bn;
    buf_t enc_buf;
    int64_t last_t;
    int64_t m_mint, m_maxt;
    uint64_t n_samples;
    extra_file_t extra[4];
    size_t n_extra;
};

static uint64_t last_block_id;

/* A fresh id whose directory does not exist yet (ids only grow within a process; the check
 * covers a clock that went backwards across restarts). */
static void new_id(const char *blocks_dir, char out[17])
{
    uint64_t r = (uint64_t)clock_mono_ns() ^ ((uint64_t)getpid() << 7);
    r = (r ^ (r >> 29)) * 0xbf58476d1ce4e5b9ULL;
    uint64_t id = ((uint64_t)clock_now_ms() << 16) | ((r >> 40) & 0xffff);
    if (id <= last_block_id)
        id = last_block_id + 1;
    for (;; id++) {
        char path[4200];
        struct stat st;
        snprintf(out, 17, "%016llx", (unsigned long long)id);
        snprintf(path, sizeof path, "%s/%s", blocks_dir, out);
        if (stat(path, &st) != 0)
            break;
    }
    last_block_id = id;
}

int block_writer_new(const char *blocks_dir, block_writer_t **out, err_t *err)
{
    *out = NULL;
    block_writer_t *w = calloc(1, sizeof *w);
    if (!w)
        abort();
    new_id(blocks_dir, w->id);
    w->blocks_dir = strdup(blocks_dir);
    size_t n = strlen(blocks_dir) + 32;
    w->tmp_dir = malloc(n);
    snprintf(w->tmp_dir, n, "%s/%s.tmp", blocks_dir, w->id);
    if (mkdir(w->tmp_dir, 0755) != 0) {
        int rc = err_set(err, ERR_IO, "create block directory %s: %s", w->tmp_dir, strerror(errno));
        free(w->tmp_dir);
        free(w->blocks_dir);
        free(w);
        return rc;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/chunks", w->tmp_dir);
    int e = fw_open(&w->chunks, path);
    if (e) {
        store__rmtree(w->tmp_dir);
        free(w->tmp_dir);
        free(w->blocks_dir);
        free(w);
        return err_set(err, ERR_IO, "create %s: %s", path, strerror(e));
    }
    uint8_t hdr[BLOCK_FILE_HDR] = {0};
    memcpy(hdr, BLOCK_CHUNKS_MAGIC, 8);
    store_u32le(hdr + 8, BLOCK_VERSION);
    fw_put(&w->chunks, hdr, sizeof hdr);
    arena_init(&w->arena, 65536);
    w->bt = xrealloc(NULL, BLOCK_CHUNK_SAMPLES * sizeof *w->bt);
    w->bv = xrealloc(NULL, BLOCK_CHUNK_SAMPLES * sizeof *w->bv);
    w->m_mint = INT64_MAX;
    w->m_maxt = INT64_MIN;
    *out = w;
    return 0;
}

const char *block_writer_dir(const block_writer_t *w) { return w->tmp_dir; }

int block_writer_series_begin(block_writer_t *w, const labels_t *ls, err_t *err)
{
    if (w->in_series)
        return err_set(err, ERR_INVAL, "block writer: series_begin inside a series");
    if (w->n_series && labels_cmp(&w->series[w->n_series - 1].ls, ls) >= 0)
        return err_set(err, ERR_INVAL, "block writer: series out of label order");
    w->cur = labels_copy(ls, &w->arena);
    w->cur_first = (uint32_t)w->n_crefs;
    w->in_series = true;
    w->last_t = INT64_MIN;
    return 0;
}

static void put_chunk(block_writer_t *w, uint8_t enc, const uint8_t *data, size_t len, int64_t mint,
                      int64_t maxt, uint32_t n)
{
    GROW(w->crefs, w->n_crefs, w->cap_crefs);
    w->crefs[w->n_crefs++] = (block_chunk_ref_t){w->chunks.off, mint, maxt, n};
    uint8_t hdr[UVARINT_MAX + 1];
    size_t k = uvarint_put(hdr, len);
    hdr[k++] = enc;
    fw_put(&w->chunks, hdr, k);
    fw_put(&w->chunks, data, len);
    uint32_t crc = crc32c(crc32c(0, &enc, 1), data, len);
    fw_u32(&w->chunks, crc);
    if (mint < w->m_mint)
        w->m_mint = mint;
    if (maxt > w->m_maxt)
        w->m_maxt = maxt;
    w->n_samples += n;
}

/* Encodes the buffered samples both ways and keeps the smaller chunk. */
static void flush_app(block_writer_t *w)
{
    if (!w->bn)
        return;
    chunk_app_t app;
    chunk_app_init(&app);
    for (size_t i = 0; i < w->bn; i++)
        chunk_app_append(&app, w->bt[i], w->bv[i]);
    chunk_app_sync(&app);
    buf_clear(&w->enc_buf);
    if (chunk_encode_delta(&w->enc_buf, w->bt, w->bv, w->bn) &&
        buf_len(&w->enc_buf) < chunk_app_len(&app))
        put_chunk(w, CHUNK_ENC_DELTA, w->enc_buf.pos, buf_len(&w->enc_buf), w->bt[0],
                  w->bt[w->bn - 1], (uint32_t)w->bn);
    else
        put_chunk(w, CHUNK_ENC_XOR, app.bytes, chunk_app_len(&app), w->bt[0], w->bt[w->bn - 1],
                  (uint32_t)w->bn);
    chunk_app_deinit(&app);
    w->bn = 0;
}

int block_writer_sample(block_writer_t *w, int64_t t, double v, err_t *err)
{
    if (!w->in_series)
        return err_set(err, ERR_INVAL, "block writer: sample outside a series");
    if (t <= w->last_t)
        return err_set(err, ERR_INVAL, "block writer: sample at %lld not after %lld", (long long)t,
                       (long long)w->last_t);
    if (w->bn >= BLOCK_CHUNK_SAMPLES)
        flush_app(w);
    w->bt[w->bn] = t;
    w->bv[w->bn++] = v;
    w->last_t = t;
    return 0;
}

int block_writer_raw_chunk(block_writer_t *w, uint8_t enc, const uint8_t *data, size_t len,
                           int64_t mint, int64_t maxt, uint32_t n, err_t *err)
{
    if (!w->in_series)
        return err_set(err, ERR_INVAL, "block writer: chunk outside a series");
    flush_app(w);
    if (mint <= w->last_t || maxt < mint)
        return err_set(err, ERR_INVAL, "block writer: chunk [%lld, %lld] overlaps", (long long)mint,
                       (long long)maxt);
    put_chunk(w, enc, data, len, mint, maxt, n);
    w->last_t = maxt;
    return 0;
}

int block_writer_series_end(block_writer_t *w, err_t *err)
{
    if (!w->in_series)
        return err_set(err, ERR_INVAL, "block writer: series_end outside a series");
    flush_app(w);
    w->in_series = false;
    uint32_t nc = (uint32_t)w->n_crefs - w->cur_first;
    if (!nc)
        return 0; /* nothing in range: the series is left out */
    GROW(w->series, w->n_series, w->cap_series);
    w->series[w->n_series++] = (wseries_t){w->cur, w->cur_first, nc};
    return 0;
}

void block_writer_add_file(block_writer_t *w, block_file_kind_t kind, uint64_t count,
                           int64_t min_ns, int64_t max_ns)
{
    if (w->n_extra < sizeof w->extra / sizeof w->extra[0])
        w->extra[w->n_extra++] = (extra_file_t){kind, count, min_ns, max_ns};
}

static int cmp_str(const void *a, const void *b)
{
    return str_cmp(*(const str_t *)a, *(const str_t *)b);
}

typedef struct triple {
    uint64_t key; /* name symbol << 32 | value symbol */
    uint32_t ref;
} triple_t;

static int cmp_triple(const void *a, const void *b)
{
    const triple_t *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->ref < y->ref ? -1 : x->ref > y->ref;
}

static uint32_t sym_find(const str_t *syms, size_t n, str_t s)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = str_cmp(syms[mid], s);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (uint32_t)lo;
}

typedef struct sec {
    uint64_t off, len;
    uint32_t crc;
} sec_t;

static void sec_end(fwriter_t *f, sec_t *s)
{
    s->off = f->sec_off;
    s->len = f->off - f->sec_off;
    s->crc = f->sec_crc;
}

static int write_index(block_writer_t *w, const char *path, uint64_t *size, uint32_t *crc)
{
    fwriter_t f;
    int e = fw_open(&f, path);
    if (e)
        return e;
    uint8_t hdr[BLOCK_FILE_HDR] = {0};
    memcpy(hdr, BLOCK_INDEX_MAGIC, 8);
    store_u32le(hdr + 8, BLOCK_VERSION);
    fw_put(&f, hdr, sizeof hdr);

    /* Symbols. */
    size_t n_all = 0;
    for (size_t i = 0; i < w->n_series; i++)
        n_all += 2 * w->series[i].ls.n;
    str_t *syms = xrealloc(NULL, n_all * sizeof *syms);
    size_t k = 0;
    for (size_t i = 0; i < w->n_series; i++)
        for (size_t j = 0; j < w->series[i].ls.n; j++) {
            syms[k++] = w->series[i].ls.v[j].name;
            syms[k++] = w->series[i].ls.v[j].value;
        }
    if (k)
        qsort(syms, k, sizeof *syms, cmp_str);
    size_t n_syms = 0;
    for (size_t i = 0; i < k; i++)
        if (!n_syms || !str_eq(syms[n_syms - 1], syms[i]))
            syms[n_syms++] = syms[i];
    sec_t secs[BLOCK_INDEX_SECTIONS];
    fw_section_begin(&f);
    uint64_t area = f.off;
    uint32_t *sym_off = xrealloc(NULL, n_syms * sizeof *sym_off);
    for (size_t i = 0; i < n_syms; i++) {
        sym_off[i] = (uint32_t)(f.off - area);
        fw_uvarint(&f, syms[i].len);
        fw_put(&f, syms[i].ptr, syms[i].len);
    }
    for (size_t i = 0; i < n_syms; i++)
        fw_u32(&f, sym_off[i]);
    fw_u32(&f, (uint32_t)n_syms);
    sec_end(&f, &secs[0]);
    free(sym_off);

    /* Series entries, then their offset table. */
    fw_section_begin(&f);
    uint64_t *ser_off = xrealloc(NULL, w->n_series * sizeof *ser_off);
    triple_t *tr = xrealloc(NULL, (n_all / 2) * sizeof *tr);
    size_t n_tr = 0;
    for (size_t i = 0; i < w->n_series; i++) {
        const wseries_t *s = &w->series[i];
        ser_off[i] = f.off;
        fw_uvarint(&f, s->ls.n);
        for (size_t j = 0; j < s->ls.n; j++) {
            uint32_t ns = sym_find(syms, n_syms, s->ls.v[j].name);
            uint32_t vs = sym_find(syms, n_syms, s->ls.v[j].value);
            fw_uvarint(&f, ns);
            fw_uvarint(&f, vs);
            if (s->ls.v[j].value.len)
                tr[n_tr++] = (triple_t){(uint64_t)ns << 32 | vs, (uint32_t)i};
        }
        fw_uvarint(&f, s->n_chunks);
        int64_t prev_maxt = 0;
        uint64_t prev_off = 0;
        for (uint32_t c = 0; c < s->n_chunks; c++) {
            const block_chunk_ref_t *r = &w->crefs[s->first_chunk + c];
            fw_uvarint(&f, zigzag_enc((int64_t)((uint64_t)r->mint - (uint64_t)prev_maxt)));
            fw_uvarint(&f, (uint64_t)r->maxt - (uint64_t)r->mint);
            fw_uvarint(&f, r->off - prev_off);
            fw_uvarint(&f, r->n);
            prev_maxt = r->maxt;
            prev_off = r->off;
        }
    }
    for (size_t i = 0; i < w->n_series; i++)
        fw_u64(&f, ser_off[i]);
    fw_u32(&f, (uint32_t)w->n_series);
    sec_end(&f, &secs[1]);
    free(ser_off);

    /* Postings. */
    if (n_tr)
        qsort(tr, n_tr, sizeof *tr, cmp_triple);
    fw_section_begin(&f);
    size_t n_pairs = 0;
    uint64_t *pair_off = xrealloc(NULL, (n_tr + 1) * sizeof *pair_off);
    uint64_t *pair_key = xrealloc(NULL, (n_tr + 1) * sizeof *pair_key);
    for (size_t i = 0; i < n_tr;) {
        size_t j = i;
        while (j < n_tr && tr[j].key == tr[i].key)
            j++;
        pair_key[n_pairs] = tr[i].key;
        pair_off[n_pairs++] = f.off;
        fw_u32(&f, (uint32_t)(j - i));
        for (size_t q = i; q < j; q++)
            fw_u32(&f, tr[q].ref);
        i = j;
    }
    sec_end(&f, &secs[2]);
    free(tr);

    /* Pairs table. */
    fw_section_begin(&f);
    fw_u32(&f, (uint32_t)n_pairs);
    for (size_t i = 0; i < n_pairs; i++) {
        fw_u32(&f, (uint32_t)(pair_key[i] >> 32));
        fw_u32(&f, (uint32_t)pair_key[i]);
        fw_u64(&f, pair_off[i]);
    }
    sec_end(&f, &secs[3]);

    /* Names table. */
    fw_section_begin(&f);
    size_t n_names = 0;
    for (size_t i = 0; i < n_pairs; i++)
        if (i == 0 || pair_key[i] >> 32 != pair_key[i - 1] >> 32)
            n_names++;
    fw_u32(&f, (uint32_t)n_names);
    for (size_t i = 0; i < n_pairs;) {
        size_t j = i;
        while (j < n_pairs && pair_key[j] >> 32 == pair_key[i] >> 32)
            j++;
        fw_u32(&f, (uint32_t)(pair_key[i] >> 32));
        fw_u32(&f, (uint32_t)i);
        fw_u32(&f, (uint32_t)(j - i));
        i = j;
    }
    sec_end(&f, &secs[4]);
    free(pair_off);
    free(pair_key);
    free(syms);

    /* Footer. */
    uint8_t foot[BLOCK_INDEX_FOOTER_BYTES] = {0};
    for (int i = 0; i < BLOCK_INDEX_SECTIONS; i++) {
        store_u64le(foot + 24 * i, secs[i].off);
        store_u64le(foot + 24 * i + 8, secs[i].len);
        store_u32le(foot + 24 * i + 16, secs[i].crc);
    }
    store_u32le(foot + 24 * BLOCK_INDEX_SECTIONS, crc32c(0, foot, 24 * BLOCK_INDEX_SECTIONS));
    memcpy(foot + 24 * BLOCK_INDEX_SECTIONS + 4, BLOCK_INDEX_TAIL_MAGIC, 4);
    fw_put(&f, foot, sizeof foot);
    *size = f.off;
    *crc = f.crc;
    return fw_close(&f);
}

/* Size and CRC of a file written by another module. */
static int file_crc(const char *path, uint64_t *size, uint32_t *crc)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    uint8_t *b = malloc(1 << 20);
    uint32_t c = 0;
    uint64_t n = 0;
    for (;;) {
        ssize_t r = read(fd, b, 1 << 20);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(b);
            close(fd);
            return e;
        }
        if (r == 0)
            break;
        c = crc32c(c, b, (size_t)r);
        n += (uint64_t)r;
    }
    free(b);
    close(fd);
    *size = n;
    *crc = c;
    return 0;
}

static int64_t ns_to_ms_floor(int64_t ns)
{
    return ns >= 0 ? ns / 1000000 : -((-ns + 999999) / 1000000);
}

static int finish(block_writer_t *w, uint32_t level, char *id_out, err_t *err);

int block_writer_finish(block_writer_t *w, uint32_t level, char *id_out, err_t *err)
{
    int rc = finish(w, level, id_out, err);
    if (rc)
        block_writer_abort(w);
    return rc;
}

/* block_writer_finish without the cleanup on failure. */
static int finish(block_writer_t *w, uint32_t level, char *id_out, err_t *err)
{
    if (w->in_series)
        block_writer_series_end(w, err);
    block_meta_t m;
    memset(&m, 0, sizeof m);
    m.version = BLOCK_VERSION;
    m.level = level ? level : 1;
    m.m_mint = w->m_mint;
    m.m_maxt = w->m_maxt;
    m.n_series = w->n_series;
    m.n_samples = w->n_samples;
    m.n_chunks = w->n_crefs;
    m.span_min_ns = m.log_min_ns = INT64_MAX;
    m.span_max_ns = m.log_max_ns = INT64_MIN;
    uint64_t chunks_size = w->chunks.off;
    uint32_t chunks_crc = w->chunks.crc;
    int e = fw_close(&w->chunks);
    char path[4200];
    if (e)
        return err_set(err, ERR_IO, "write %s/chunks: %s", w->tmp_dir, strerror(e));
    m.files[m.n_files++] = (block_file_info_t){BLOCK_FILE_CHUNKS, chunks_crc, chunks_size};
    snprintf(path, sizeof path, "%s/index", w->tmp_dir);
    uint64_t isize;
    uint32_t icrc;
    e = write_index(w, path, &isize, &icrc);
    if (e)
        return err_set(err, ERR_IO, "write %s: %s", path, strerror(e));
    m.files[m.n_files++] = (block_file_info_t){BLOCK_FILE_INDEX, icrc, isize};
    for (size_t i = 0; i < w->n_extra; i++) {
        const extra_file_t *x = &w->extra[i];
        snprintf(path, sizeof path, "%s/%s", w->tmp_dir, file_name((uint8_t)x->kind));
        uint64_t size;
        uint32_t crc;
        e = file_crc(path, &size, &crc);
        if (e)
            return err_set(err, ERR_IO, "read %s: %s", path, strerror(e));
        m.files[m.n_files++] = (block_file_info_t){(uint8_t)x->kind, crc, size};
        if (x->kind == BLOCK_FILE_SPANS) {
            m.n_spans = x->count;
            m.span_min_ns = x->min_ns;
            m.span_max_ns = x->max_ns;
        } else {
            m.n_logs = x->count;
            m.log_min_ns = x->min_ns;
            m.log_max_ns = x->max_ns;
        }
    }
    m.min_t = m.m_mint;
    m.max_t = m.m_maxt;
    if (m.n_spans) {
        if (ns_to_ms_floor(m.span_min_ns) < m.min_t)
            m.min_t = ns_to_ms_floor(m.span_min_ns);
        if (ns_to_ms_floor(m.span_max_ns) > m.max_t)
            m.max_t = ns_to_ms_floor(m.span_max_ns);
    }
    if (m.n_logs) {
        if (ns_to_ms_floor(m.log_min_ns) < m.min_t)
            m.min_t = ns_to_ms_floor(m.log_min_ns);
        if (ns_to_ms_floor(m.log_max_ns) > m.max_t)
            m.max_t = ns_to_ms_floor(m.log_max_ns);
    }
    uint8_t mb[BLOCK_META_BYTES];
    meta_encode(&m, mb);
    snprintf(path, sizeof path, "%s/meta", w->tmp_dir);
    fwriter_t f;
    e = fw_open(&f, path);
    if (!e) {
        fw_put(&f, mb, sizeof mb);
        e = fw_close(&f);
    }
    if (e)
        return err_set(err, ERR_IO, "write %s: %s", path, strerror(e));
    if (store__fsync_dir(w->tmp_dir) != 0)
        return err_set(err, ERR_IO, "fsync %s", w->tmp_dir);
    char final[4200];
    snprintf(final, sizeof final, "%s/%s", w->blocks_dir, w->id);
    if (rename(w->tmp_dir, final) != 0)
        return err_set(err, ERR_IO, "rename %s: %s", w->tmp_dir, strerror(errno));
    if (store__fsync_dir(w->blocks_dir) != 0)
        return err_set(err, ERR_IO, "fsync %s", w->blocks_dir);
    if (id_out)
        memcpy(id_out, w->id, 17);
    free(w->bt);
    free(w->bv);
    buf_deinit(&w->enc_buf);
    arena_deinit(&w->arena);
    free(w->series);
    free(w->crefs);
    free(w->tmp_dir);
    free(w->blocks_dir);
    free(w);
    return 0;
}

void block_writer_abort(block_writer_t *w)
{
    if (!w)
        return;
    fw_abort(&w->chunks);
    store__rmtree(w->tmp_dir);
    free(w->bt);
    free(w->bv);
    buf_deinit(&w->enc_buf);
    arena_deinit(&w->arena);
    free(w->series);
    free(w->crefs);
    free(w->tmp_dir);
    free(w->blocks_dir);
    free(w);
}

/* ---- reader ---- */

struct block {
    char *dir;
    char id[17];
    block_meta_t meta;
    uint8_t *idx, *chk;
    size_t idx_len, chk_len;
    const uint8_t *sym_area, *sym_tab;
    size_t sym_area_len;
    uint32_t n_syms;
    const uint8_t *ser_tab;
    uint32_t n_series;
    const uint8_t *pairs;
    uint32_t n_pairs;
    const uint8_t *names;
    uint32_t n_names;
    uint64_t bytes;
};

static int map_file(const char *path, uint8_t **p, size_t *n, err_t *err)
{
    *p = NULL;
    *n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(err, ERR_IO, "open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return err_set(err, ERR_IO, "stat %s: %s", path, strerror(errno));
    }
    if (st.st_size == 0) {
        close(fd);
        return err_set(err, ERR_CORRUPT, "%s: empty file", path);
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return err_set(err, ERR_IO, "mmap %s: %s", path, strerror(errno));
    *p = m;
    *n = (size_t)st.st_size;
    return 0;
}

static int parse_index(block_t *b, const char *path, err_t *err)
{
    const uint8_t *p = b->idx;
    size_t n = b->idx_len;
    if (n < BLOCK_FILE_HDR + BLOCK_INDEX_FOOTER_BYTES || memcmp(p, BLOCK_INDEX_MAGIC, 8) != 0)
        return err_set(err, ERR_CORRUPT, "%s: not an index file", path);
    if (load_u32le(p + 8) != BLOCK_VERSION)
        return err_set(err, ERR_UNSUPPORTED, "%s: index version %u", path, load_u32le(p + 8));
    const uint8_t *foot = p + n - BLOCK_INDEX_FOOTER_BYTES;
    size_t foff = n - BLOCK_INDEX_FOOTER_BYTES;
    if (memcmp(foot + 24 * BLOCK_INDEX_SECTIONS + 4, BLOCK_INDEX_TAIL_MAGIC, 4) != 0 ||
        crc32c(0, foot, 24 * BLOCK_INDEX_SECTIONS) != load_u32le(foot + 24 * BLOCK_INDEX_SECTIONS))
        return err_set(err, ERR_CORRUPT, "%s: footer checksum mismatch at offset %zu", path, foff);
    const uint8_t *sec[BLOCK_INDEX_SECTIONS];
    size_t len[BLOCK_INDEX_SECTIONS];
    for (int i = 0; i < BLOCK_INDEX_SECTIONS; i++) {
        uint64_t off = load_u64le(foot + 24 * i), l = load_u64le(foot + 24 * i + 8);
        if (off < BLOCK_FILE_HDR || off > foff || l > foff - off)
            return err_set(err, ERR_CORRUPT, "%s: section %d out of bounds (offset %llu)", path, i,
                           (unsigned long long)off);
        if (crc32c(0, p + off, l) != load_u32le(foot + 24 * i + 16))
            return err_set(err, ERR_CORRUPT, "%s: section %d checksum mismatch at offset %llu",
                           path, i, (unsigned long long)off);
        sec[i] = p + off;
        len[i] = l;
    }
    /* Symbols: string area, u32 table, u32 count. */
    if (len[0] < 4)
        goto bad;
    b->n_syms = load_u32le(sec[0] + len[0] - 4);
    if ((uint64_t)b->n_syms * 4 + 4 > len[0])
        goto bad;
    b->sym_tab = sec[0] + len[0] - 4 - (size_t)b->n_syms * 4;
    b->sym_area = sec[0];
    b->sym_area_len = (size_t)(b->sym_tab - sec[0]);
    /* Series: entries, u64 table, u32 count. */
    if (len[1] < 4)
        goto bad;
    b->n_series = load_u32le(sec[1] + len[1] - 4);
    if ((uint64_t)b->n_series * 8 + 4 > len[1])
        goto bad;
    b->ser_tab = sec[1] + len[1] - 4 - (size_t)b->n_series * 8;
    if (len[3] < 4)
        goto bad;
    b->n_pairs = load_u32le(sec[3]);
    if ((uint64_t)b->n_pairs * 16 + 4 > len[3])
        goto bad;
    b->pairs = sec[3] + 4;
    if (len[4] < 4)
        goto bad;
    b->n_names = load_u32le(sec[4]);
    if ((uint64_t)b->n_names * 12 + 4 > len[4])
        goto bad;
    b->names = sec[4] + 4;
    return 0;
bad:
    return err_set(err, ERR_CORRUPT, "%s: malformed section table", path);
}

int block_open(const char *dir, block_t **out, err_t *err)
{
    *out = NULL;
    char path[4200];
    snprintf(path, sizeof path, "%s/meta", dir);
    uint8_t mb[BLOCK_META_BYTES + 1];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(err, ERR_IO, "open %s: %s", path, strerror(errno));
    ssize_t r = read(fd, mb, sizeof mb);
    close(fd);
    if (r < 0)
        return err_set(err, ERR_IO, "read %s: %s", path, strerror(errno));
    block_t *b = calloc(1, sizeof *b);
    if (!b)
        abort();
    int rc = meta_decode(mb, (size_t)r, &b->meta, path, err);
    if (rc) {
        free(b);
        return rc;
    }
    b->dir = strdup(dir);
    const char *slash = strrchr(dir, '/');
    snprintf(b->id, sizeof b->id, "%s", slash ? slash + 1 : dir);
    for (uint32_t i = 0; i < b->meta.n_files; i++)
        b->bytes += b->meta.files[i].size;
    b->bytes += BLOCK_META_BYTES;
    snprintf(path, sizeof path, "%s/index", dir);
    rc = map_file(path, &b->idx, &b->idx_len, err);
    if (!rc)
        rc = parse_index(b, path, err);
    if (!rc) {
        snprintf(path, sizeof path, "%s/chunks", dir);
        rc = map_file(path, &b->chk, &b->chk_len, err);
        if (!rc && (b->chk_len < BLOCK_FILE_HDR || memcmp(b->chk, BLOCK_CHUNKS_MAGIC, 8) != 0))
            rc = err_set(err, ERR_CORRUPT, "%s: not a chunks file", path);
    }
    if (rc) {
        block_close(b);
        return rc;
    }
    madvise(b->chk, b->chk_len, MADV_RANDOM);
    *out = b;
    return 0;
}

void block_close(block_t *b)
{
    if (!b)
        return;
    if (b->idx)
        munmap(b->idx, b->idx_len);
    if (b->chk)
        munmap(b->chk, b->chk_len);
    free(b->dir);
    free(b);
}

const block_meta_t *block_meta(const block_t *b) { return &b->meta; }
const char *block_dir(const block_t *b) { return b->dir; }
const char *block_id(const block_t *b) { return b->id; }
uint64_t block_bytes(const block_t *b) { return b->bytes; }

bool block_has_file(const block_t *b, block_file_kind_t kind)
{
    for (uint32_t i = 0; i < b->meta.n_files; i++)
        if (b->meta.files[i].kind == kind)
            return true;
    return false;
}

static str_t sym(const block_t *b, uint64_t i)
{
    if (i >= b->n_syms)
        return STR("");
    uint32_t off = load_u32le(b->sym_tab + 4 * i);
    if (off >= b->sym_area_len)
        return STR("");
    const uint8_t *p = b->sym_area + off, *end = b->sym_area + b->sym_area_len;
    uint64_t n;
    size_t k = uvarint_get(p, end, &n);
    if (!k || n > (uint64_t)(end - p - (ptrdiff_t)k))
        return STR("");
    return (str_t){(const char *)p + k, (size_t)n};
}

/* Symbol index of s, or -1. */
static int64_t sym_lookup(const block_t *b, str_t s)
{
    uint32_t lo = 0, hi = b->n_syms;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = str_cmp(sym(b, mid), s);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static int64_t name_lookup(const block_t *b, uint32_t ns)
{
    uint32_t lo = 0, hi = b->n_names;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint32_t v = load_u32le(b->names + 12 * mid);
        if (v == ns)
            return mid;
        if (v < ns)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static void read_postings(const block_t *b, uint64_t off, arena_t *a, postings_t *out)
{
    *out = (postings_t){NULL, 0};
    if (off + 4 > b->idx_len)
        return;
    uint32_t n = load_u32le(b->idx + off);
    if ((uint64_t)n * 4 > b->idx_len - off - 4)
        return;
    uint64_t *v = arena_alloc(a, (n ? n : 1) * sizeof *v);
    const uint8_t *p = b->idx + off + 4;
    for (uint32_t i = 0; i < n; i++)
        v[i] = load_u32le(p + 4 * i);
    *out = (postings_t){v, n};
}

static void blk_postings(void *ctx, str_t name, str_t value, arena_t *a, postings_t *out)
{
    block_t *b = ctx;
    *out = (postings_t){NULL, 0};
    int64_t ns = sym_lookup(b, name), vs = ns < 0 ? -1 : sym_lookup(b, value);
    if (vs < 0)
        return;
    uint64_t key = (uint64_t)ns << 32 | (uint64_t)vs;
    uint32_t lo = 0, hi = b->n_pairs;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const uint8_t *p = b->pairs + 16 * mid;
        uint64_t k = (uint64_t)load_u32le(p) << 32 | load_u32le(p + 4);
        if (k == key) {
            read_postings(b, load_u64le(p + 8), a, out);
            return;
        }
        if (k < key)
            lo = mid + 1;
        else
            hi = mid;
    }
}

static void blk_values(void *ctx, str_t name, index_str_cb cb, void *arg)
{
    block_label_values(ctx, name, cb, arg);
}

static void blk_all(void *ctx, arena_t *a, postings_t *out)
{
    block_t *b = ctx;
    uint64_t *v = arena_alloc(a, (b->n_series ? b->n_series : 1) * sizeof *v);
    for (uint32_t i = 0; i < b->n_series; i++)
        v[i] = i;
    *out = (postings_t){v, b->n_series};
}

index_reader_t block_index_reader(block_t *b)
{
    return (index_reader_t){b, blk_postings, blk_values, blk_all};
}

void block_label_names(block_t *b, index_str_cb cb, void *arg)
{
    for (uint32_t i = 0; i < b->n_names; i++)
        cb(arg, sym(b, load_u32le(b->names + 12 * i)));
}

void block_label_values(block_t *b, str_t name, index_str_cb cb, void *arg)
{
    int64_t ns = sym_lookup(b, name);
    if (ns < 0)
        return;
    int64_t ni = name_lookup(b, (uint32_t)ns);
    if (ni < 0)
        return;
    const uint8_t *e = b->names + 12 * ni;
    uint32_t first = load_u32le(e + 4), n = load_u32le(e + 8);
    for (uint32_t i = 0; i < n && first + i < b->n_pairs; i++)
        cb(arg, sym(b, load_u32le(b->pairs + 16 * (first + i) + 4)));
}

int block_series(block_t *b, uint64_t ref, arena_t *a, labels_t *ls, block_chunk_ref_t **chunks,
                 size_t *n_chunks)
{
    if (ref >= b->n_series)
        return ERR_NOTFOUND;
    uint64_t off = load_u64le(b->ser_tab + 8 * ref);
    if (off >= b->idx_len)
        return ERR_CORRUPT;
    const uint8_t *p = b->idx + off, *end = b->ser_tab;
    if (p >= end)
        return ERR_CORRUPT;
    uint64_t n, x, y;
    size_t k = uvarint_get(p, end, &n);
    if (!k || n > (uint64_t)(end - p))
        return ERR_CORRUPT;
    p += k;
    ls->n = (size_t)n;
    ls->v = arena_alloc(a, (n ? n : 1) * sizeof *ls->v);
    for (uint64_t i = 0; i < n; i++) {
        if (!(k = uvarint_get(p, end, &x)))
            return ERR_CORRUPT;
        p += k;
        if (!(k = uvarint_get(p, end, &y)))
            return ERR_CORRUPT;
        p += k;
        ls->v[i].name = sym(b, x);
        ls->v[i].value = sym(b, y);
    }
    if (!(k = uvarint_get(p, end, &n)) || n > (uint64_t)(end - p))
        return ERR_CORRUPT;
    p += k;
    block_chunk_ref_t *c = arena_alloc(a, (n ? n : 1) * sizeof *c);
    int64_t prev_maxt = 0;
    uint64_t prev_off = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t v[4];
        for (int j = 0; j < 4; j++) {
            if (!(k = uvarint_get(p, end, &v[j])))
                return ERR_CORRUPT;
            p += k;
        }
        c[i].mint = (int64_t)((uint64_t)prev_maxt + (uint64_t)zigzag_dec(v[0]));
        c[i].maxt = (int64_t)((uint64_t)c[i].mint + v[1]);
        c[i].off = prev_off + v[2];
        c[i].n = (uint32_t)v[3];
        prev_maxt = c[i].maxt;
        prev_off = c[i].off;
    }
    *chunks = c;
    *n_chunks = (size_t)n;
    return 0;
}

int block_chunk(block_t *b, uint64_t off, uint8_t *enc, const uint8_t **data, size_t *len)
{
    if (off < BLOCK_FILE_HDR || off >= b->chk_len)
        return ERR_CORRUPT;
    const uint8_t *p = b->chk + off, *end = b->chk + b->chk_len;
    uint64_t n;
    size_t k = uvarint_get(p, end, &n);
    if (!k || n > (uint64_t)(end - p) || (uint64_t)(end - p) - k < n + 5)
        return ERR_CORRUPT;
    p += k;
    uint32_t crc = load_u32le(p + 1 + n);
    if (crc32c(0, p, (size_t)n + 1) != crc)
        return ERR_CORRUPT;
    *enc = p[0];
    *data = p + 1;
    *len = (size_t)n;
    return 0;
}

/* ---- merge ---- */

typedef struct msample {
    int64_t t;
    double v;
    uint32_t prio;
} msample_t;

static int cmp_msample(const void *a, const void *b)
{
    const msample_t *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->prio < y->prio ? -1 : x->prio > y->prio;
}

typedef struct mchunk {
    block_t *b;
    block_chunk_ref_t r;
    uint32_t prio;
} mchunk_t;

static int cmp_mchunk(const void *a, const void *b)
{
    const mchunk_t *x = a, *y = b;
    if (x->r.mint != y->r.mint)
        return x->r.mint < y->r.mint ? -1 : 1;
    return x->prio < y->prio ? -1 : x->prio > y->prio;
}

static int merge_series(block_writer_t *w, mchunk_t *cs, size_t nc, int64_t mint, int64_t maxt,
                        err_t *err)
{
    qsort(cs, nc, sizeof *cs, cmp_mchunk);
    bool simple = true;
    uint64_t samples = 0;
    for (size_t i = 0; i < nc; i++) {
        if (cs[i].r.mint < mint || cs[i].r.maxt > maxt)
            simple = false;
        if (i && cs[i].r.mint <= cs[i - 1].r.maxt)
            simple = false;
        samples += cs[i].r.n;
    }
    /* Small chunks from short blocks are re-encoded into full ones: fewer chunk headers, index
     * entries and CRCs per sample in long-lived blocks. */
    if (nc > (samples + BLOCK_CHUNK_SAMPLES - 1) / BLOCK_CHUNK_SAMPLES)
        simple = false;
    if (simple) {
        for (size_t i = 0; i < nc; i++) {
            uint8_t enc;
            const uint8_t *data;
            size_t len;
            if (block_chunk(cs[i].b, cs[i].r.off, &enc, &data, &len) != 0) {
                log_error("block: corrupt chunk skipped during compaction", "block=%s offset=%llu",
                          block_dir(cs[i].b), (unsigned long long)cs[i].r.off);
                continue;
            }
            int rc = block_writer_raw_chunk(w, enc, data, len, cs[i].r.mint, cs[i].r.maxt,
                                            cs[i].r.n, err);
            if (rc)
                return rc;
        }
        return 0;
    }
    size_t total = 0;
    for (size_t i = 0; i < nc; i++)
        total += cs[i].r.n;
    msample_t *ss = xrealloc(NULL, (total + 1) * sizeof *ss);
    size_t n = 0;
    for (size_t i = 0; i < nc; i++) {
        uint8_t enc;
        const uint8_t *data;
        size_t len;
        if (block_chunk(cs[i].b, cs[i].r.off, &enc, &data, &len) != 0) {
            log_error("block: corrupt chunk skipped during compaction", "block=%s offset=%llu",
                      block_dir(cs[i].b), (unsigned long long)cs[i].r.off);
            continue;
        }
        chunk_iter_t it;
        chunk_iter_init_enc(&it, enc, data, len);
        int64_t t;
        double v;
        while (n < total && chunk_iter_next(&it, &t, &v))
            if (t >= mint && t <= maxt)
                ss[n++] = (msample_t){t, v, cs[i].prio};
    }
    qsort(ss, n, sizeof *ss, cmp_msample);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        if (i == 0 || ss[i].t != ss[i - 1].t)
            rc = block_writer_sample(w, ss[i].t, ss[i].v, err);
    free(ss);
    return rc;
}

int block_merge_metrics(block_writer_t *w, block_t **in, size_t n, int64_t mint, int64_t maxt,
                        err_t *err)
{
    arena_t a;
    arena_init(&a, 65536);
    uint64_t *pos = calloc(n ? n : 1, sizeof *pos);
    labels_t *cur = calloc(n ? n : 1, sizeof *cur);
    block_chunk_ref_t **crefs = calloc(n ? n : 1, sizeof *crefs);
    size_t *ncr = calloc(n ? n : 1, sizeof *ncr);
    bool *live = calloc(n ? n : 1, sizeof *live);
    mchunk_t *cs = NULL;
    size_t cs_cap = 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        live[i] = in[i]->n_series > 0;
        if (live[i] && block_series(in[i], 0, &a, &cur[i], &crefs[i], &ncr[i]) != 0)
            live[i] = false;
    }
    for (;;) {
        ssize_t best = -1;
        for (size_t i = 0; i < n; i++)
            if (live[i] && (best < 0 || labels_cmp(&cur[i], &cur[best]) < 0))
                best = (ssize_t)i;
        if (best < 0)
            break;
        labels_t ls = cur[best];
        size_t nc = 0;
        for (size_t i = 0; i < n; i++) {
            if (!live[i] || !labels_eq(&cur[i], &ls))
                continue;
            for (size_t j = 0; j < ncr[i]; j++) {
                if (crefs[i][j].maxt < mint || crefs[i][j].mint > maxt)
                    continue;
                if (nc == cs_cap) {
                    cs_cap = cs_cap ? cs_cap * 2 : 64;
                    cs = xrealloc(cs, cs_cap * sizeof *cs);
                }
                cs[nc++] = (mchunk_t){in[i], crefs[i][j], (uint32_t)i};
            }
        }
        if (nc) {
            rc = block_writer_series_begin(w, &ls, err);
            if (!rc)
                rc = merge_series(w, cs, nc, mint, maxt, err);
            if (!rc)
                rc = block_writer_series_end(w, err);
            if (rc)
                break;
        }
        /* Advance every block that was at this series (ls may point into cur[best]'s arena
         * memory, which stays valid: the arena is only reset below). */
        labels_t key = labels_copy(&ls, &a);
        for (size_t i = 0; i < n; i++) {
            if (!live[i] || !labels_eq(&cur[i], &key))
                continue;
            if (++pos[i] >= in[i]->n_series ||
                block_series(in[i], pos[i], &a, &cur[i], &crefs[i], &ncr[i]) != 0)
                live[i] = false;
        }
        if (a.total_bytes > (64u << 20)) {
            /* Keep memory bounded on huge blocks: re-read the current heads after a reset. */
            arena_reset(&a);
            for (size_t i = 0; i < n; i++)
                if (live[i] && block_series(in[i], pos[i], &a, &cur[i], &crefs[i], &ncr[i]) != 0)
                    live[i] = false;
        }
    }
    free(cs);
    free(pos);
    free(cur);
    free(crefs);
    free(ncr);
    free(live);
    arena_deinit(&a);
    return rc;
}

/* ---- verification ---- */

int block_verify(const char *dir, err_t *err)
{
    block_t *b;
    int rc = block_open(dir, &b, err);
    if (rc)
        return rc;
    for (uint32_t i = 0; i < b->meta.n_files && !rc; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, file_name(b->meta.files[i].kind));
        uint64_t size;
        uint32_t crc;
        int e = file_crc(path, &size, &crc);
        if (e)
            rc = err_set(err, ERR_IO, "read %s: %s", path, strerror(e));
        else if (size != b->meta.files[i].size || crc != b->meta.files[i].crc)
            rc = err_set(err, ERR_CORRUPT, "%s: size or checksum differs from meta", path);
    }
    arena_t a;
    arena_init(&a, 0);
    for (uint64_t s = 0; s < b->n_series && !rc; s++) {
        labels_t ls;
        block_chunk_ref_t *c;
        size_t nc;
        if (block_series(b, s, &a, &ls, &c, &nc) != 0) {
            rc = err_set(err, ERR_CORRUPT, "%s/index: series %llu malformed", dir,
                         (unsigned long long)s);
            break;
        }
        for (size_t i = 0; i < nc && !rc; i++) {
            uint8_t enc;
            const uint8_t *d;
            size_t len;
            if (block_chunk(b, c[i].off, &enc, &d, &len) != 0)
                rc = err_set(err, ERR_CORRUPT, "%s/chunks: chunk at offset %llu corrupt", dir,
                             (unsigned long long)c[i].off);
        }
        arena_reset(&a);
    }
    arena_deinit(&a);
    block_close(b);
    return rc;
}
