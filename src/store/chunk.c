/*
 * chunk.c - Gorilla XOR chunk encoder and decoder (Pelkonen et al., "Gorilla: A Fast, Scalable,
 * In-Memory Time Series Database", VLDB 2015), with timestamp buckets tuned for scrape jitter.
 *
 * Layout (also in store/format.h): u16 big-endian sample count; the first timestamp as a zigzag
 * uvarint; the first value as 8 little-endian bytes; then, MSB-first, per later sample:
 *   timestamp: dod = (t - t_prev) - (t_prev - t_prev2), with t_prev - t_prev2 = 0 for sample 2:
 *     '0'                     dod == 0
 *     '10'    + 4 bits        dod in [-8, 7]            (a few ms of scrape jitter)
 *     '110'   + 14 bits       dod in [-8192, 8191]
 *     '1110'  + 20 bits       dod in [-2^19, 2^19 - 1]
 *     '11110' + 32 bits       dod in [-2^31, 2^31 - 1]
 *     '11111' + 64 bits       anything else
 *     (two's complement of the stated width)
 *   value: x = bits(v) XOR bits(v_prev):
 *     '0'                     x == 0
 *     '10' + m bits           x >> trail_prev, m = 64 - lead_prev - trail_prev, when x fits the
 *                             previous window (lead >= lead_prev and trail >= trail_prev)
 *     '11' + 5 bits lead + 6 bits m (64 written as 0) + m bits of x >> trail, a new window
 * The last byte is zero-padded; the count says where the samples end. The appender keeps the
 * newest bits in a 64-bit accumulator and stores whole words, so appending to thousands of series
 * does not touch each chunk's memory every time (chunk_app_sync materializes the tail).
 *
 * Delta chunks (CHUNK_ENC_DELTA, blocks only; layout in store/format.h) target what scrapes look
 * like: timestamps on a near-regular grid (stored as small offsets from base + i * step, zero
 * bits when perfectly regular) and values that are decimals (integers at scale 10^0..10^4) stored
 * as bit-packed deltas or delta-of-deltas with a frame of reference. A random walk of integer
 * steps in [-3, 3] costs 3 bits a sample; ±2 ms jitter adds 3. The block writer encodes both ways
 * and keeps the smaller; anything that does not convert back bit-exactly (NaN, -0, 1/3) stays XOR.
 */
#include "store/chunk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/varint.h"
#include "store/format.h"

#define NO_WINDOW 0xff

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "skillscope: out of memory growing a chunk to %zu bytes\n", n);
        abort();
    }
    return q;
}

void chunk_app_init(chunk_app_t *a)
{
    memset(a, 0, sizeof *a);
    a->lead = NO_WINDOW;
}

void chunk_app_deinit(chunk_app_t *a)
{
    free(a->bytes);
    chunk_app_init(a);
}

static void ensure(chunk_app_t *a, size_t need)
{
    if (need <= a->cap)
        return;
    size_t ncap = a->cap ? a->cap + a->cap / 2 : 32;
    if (ncap < need)
        ncap = need;
    size_t old = a->cap;
    a->bytes = xrealloc(a->bytes, ncap);
    memset(a->bytes + old, 0, ncap - old);
    a->cap = (uint32_t)ncap;
}

static void flush_word(chunk_app_t *a)
{
    size_t need = a->hdr + (size_t)(a->nbits / 8) + 8;
    if (need > a->cap)
        ensure(a, need);
    uint64_t be = __builtin_bswap64(a->acc);
    memcpy(a->bytes + a->hdr + a->nbits / 8, &be, 8);
    a->nbits += 64;
    a->acc = 0;
    a->acc_n = 0;
}

/* Appends the low n bits of v (1 <= n <= 64), MSB first, through the 64-bit accumulator. */
static inline void put_bits(chunk_app_t *a, uint64_t v, unsigned n)
{
    if (n < 64)
        v &= (1ULL << n) - 1;
    unsigned room = 64u - a->acc_n;
    if (n < room) {
        a->acc = (a->acc << n) | v;
        a->acc_n = (uint8_t)(a->acc_n + n);
        return;
    }
    unsigned rest = n - room; /* <= 63 */
    a->acc = room == 64 ? v >> rest : (a->acc << room) | (v >> rest);
    flush_word(a);
    a->acc = rest ? v & ((1ULL << rest) - 1) : 0;
    a->acc_n = (uint8_t)rest;
}

void chunk_app_sync(chunk_app_t *a)
{
    if (!a->n)
        return;
    size_t nb = (a->acc_n + 7u) / 8, at = a->hdr + (size_t)(a->nbits / 8);
    if (at + nb > a->cap)
        ensure(a, at + nb);
    uint64_t w = a->acc_n ? a->acc << (64 - a->acc_n) : 0;
    for (size_t i = 0; i < nb; i++)
        a->bytes[at + i] = (uint8_t)(w >> (56 - 8 * i));
    a->bytes[0] = (uint8_t)(a->n >> 8);
    a->bytes[1] = (uint8_t)a->n;
}

static inline unsigned clz64(uint64_t x) { return x ? (unsigned)__builtin_clzll(x) : 64; }
static inline unsigned ctz64(uint64_t x) { return x ? (unsigned)__builtin_ctzll(x) : 64; }

bool chunk_app_append(chunk_app_t *a, int64_t t, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, 8);
    if (a->n == CHUNK_MAX_SAMPLES)
        return false;
    if (a->n == 0) {
        ensure(a, 2 + UVARINT_MAX + 8);
        memset(a->bytes, 0, a->cap);
        size_t k = uvarint_put(a->bytes + 2, zigzag_enc(t));
        for (int i = 0; i < 8; i++)
            a->bytes[2 + k + (size_t)i] = (uint8_t)(bits >> (8 * i));
        a->hdr = (uint32_t)(2 + k + 8);
        a->nbits = 0;
        a->acc = 0;
        a->acc_n = 0;
        a->mint = a->t = t;
        a->tdelta = 0;
        a->v = bits;
        a->lead = NO_WINDOW;
    } else {
        int64_t delta = (int64_t)((uint64_t)t - (uint64_t)a->t);
        int64_t dod = (int64_t)((uint64_t)delta - (uint64_t)a->tdelta);
        if (dod == 0)
            put_bits(a, 0, 1);
        else if (dod >= -8 && dod <= 7)
            put_bits(a, 0x2u << 4 | ((uint64_t)dod & 0xf), 6);
        else if (dod >= -8192 && dod <= 8191)
            put_bits(a, 0x6u << 14 | ((uint64_t)dod & 0x3fff), 17);
        else if (dod >= -(1 << 19) && dod <= (1 << 19) - 1)
            put_bits(a, 0xeu << 20 | ((uint64_t)dod & 0xfffff), 24);
        else if (dod >= INT32_MIN && dod <= INT32_MAX) {
            put_bits(a, 0x1e, 5);
            put_bits(a, (uint64_t)dod & 0xffffffffu, 32);
        } else {
            put_bits(a, 0x1f, 5);
            put_bits(a, (uint64_t)dod, 64);
        }
        uint64_t x = bits ^ a->v;
        if (x == 0) {
            put_bits(a, 0, 1);
        } else {
            unsigned lead = clz64(x), trail = ctz64(x);
            if (lead > 31)
                lead = 31;
            if (a->lead != NO_WINDOW && lead >= a->lead && trail >= a->trail) {
                unsigned m = 64 - a->lead - a->trail;
                put_bits(a, 0x2, 2);
                put_bits(a, x >> a->trail, m);
            } else {
                unsigned m = 64 - lead - trail;
                put_bits(a, 0x3u << 11 | (uint64_t)lead << 6 | (m & 63), 13);
                put_bits(a, x >> trail, m);
                a->lead = (uint8_t)lead;
                a->trail = (uint8_t)trail;
            }
        }
        a->tdelta = delta;
        a->t = t;
        a->v = bits;
    }
    a->n++;
    if (a->n == 1) {
        a->bytes[0] = 0;
        a->bytes[1] = 1;
    }
    return true;
}

uint8_t *chunk_app_take(chunk_app_t *a, size_t *len)
{
    chunk_app_sync(a);
    size_t n = chunk_app_len(a);
    uint8_t *p = a->bytes;
    if (!p) {
        p = xrealloc(NULL, 2);
        p[0] = p[1] = 0;
        n = 2;
    } else if (n < a->cap) {
        p = xrealloc(p, n);
    }
    *len = n;
    a->bytes = NULL;
    chunk_app_init(a);
    return p;
}

bool chunk_iter_seek(chunk_iter_t *it, int64_t min_t, int64_t *t, double *v)
{
    while (chunk_iter_next(it, t, v))
        if (*t >= min_t)
            return true;
    return false;
}

uint16_t chunk_samples(const uint8_t *p, size_t len)
{
    return len >= 2 ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}

void chunk_iter_init(chunk_iter_t *it, const uint8_t *p, size_t len)
{
    memset(it, 0, sizeof *it);
    it->enc = CHUNK_ENC_XOR;
    it->lead = NO_WINDOW;
    it->n = chunk_samples(p, len);
    if (it->n == 0)
        return;
    const uint8_t *end = p + len, *q = p + 2;
    uint64_t zt;
    size_t k = uvarint_get(q, end, &zt);
    if (!k || (size_t)(end - q) < k + 8) {
        it->err = true;
        it->n = 0;
        return;
    }
    q += k;
    it->t = zigzag_dec(zt);
    it->v = load_u64le(q);
    q += 8;
    it->p = q;
    it->end = end;
    it->nbits = (uint64_t)(end - q) * 8;
}

static inline uint64_t get_bits_at(chunk_iter_t *it, uint64_t *ppos, unsigned n)
{
    if (n == 0)
        return 0;
    uint64_t pos = *ppos;
    if (pos + n > it->nbits) {
        it->err = true;
        return 0;
    }
    uint64_t r = 0;
    /* Fast path: 8 whole bytes available hold any <= 57-bit field at any bit offset. */
    if (n <= 57 && (pos >> 3) + 8 <= (uint64_t)(it->end - it->p)) {
        uint64_t w;
        memcpy(&w, it->p + (pos >> 3), 8);
        w = __builtin_bswap64(w);
        r = (w << (pos & 7)) >> (64 - n);
        *ppos = pos + n;
        return r;
    }
    unsigned left = n;
    while (left) {
        uint64_t byte = pos >> 3;
        unsigned off = (unsigned)(pos & 7), avail = 8 - off;
        unsigned take = avail < left ? avail : left;
        uint64_t bits = ((uint64_t)it->p[byte] >> (avail - take)) & ((1u << take) - 1);
        r = (r << take) | bits;
        left -= take;
        pos += take;
    }
    *ppos = pos;
    return r;
}

static inline uint64_t get_bits(chunk_iter_t *it, unsigned n)
{
    return get_bits_at(it, &it->pos, n);
}

static inline int64_t sext(uint64_t v, unsigned n) { return (int64_t)(v << (64 - n)) >> (64 - n); }

static const double pow10_tab[] = {1, 10, 100, 1000, 10000};
#define MAX_SCALE 4

/* A field of n <= 64 bits at bit pos of a stream already checked to hold it (delta chunks are
 * checked whole when opened, so their reads need no bounds checks). */
static inline uint64_t field_at(const chunk_iter_t *it, uint64_t pos, unsigned n)
{
    if (n == 0)
        return 0;
    /* 8 whole bytes hold any <= 57-bit field at any bit offset */
    if (n <= 57 && (pos >> 3) + 8 <= (uint64_t)(it->end - it->p)) {
        uint64_t w;
        memcpy(&w, it->p + (pos >> 3), 8);
        return (__builtin_bswap64(w) << (pos & 7)) >> (64 - n);
    }
    uint64_t r = 0;
    for (unsigned k = 0; k < n; k++, pos++)
        r = (r << 1) | ((it->p[pos >> 3] >> (7 - (pos & 7))) & 1);
    return r;
}

/* Up to cap samples of a delta chunk: timestamps from the grid plus their residual field, values
 * from the first value and the (delta-of-)delta fields. */
static size_t delta_read(chunk_iter_t *it, int64_t *t, double *v, size_t cap)
{
    size_t k = (size_t)(it->n - it->i);
    if (k > cap)
        k = cap;
    uint64_t pos = it->pos, vpos = it->vpos, t0 = (uint64_t)it->t0, step = (uint64_t)it->step;
    uint64_t vmin = (uint64_t)it->vmin;
    unsigned tsw = it->tsw, vw = it->vw;
    int64_t x = it->x, d = it->d;
    uint16_t i = it->i;
    double div = pow10_tab[it->scale];
    for (size_t j = 0; j < k; j++, i++) {
        t[j] = (int64_t)(t0 + (uint64_t)i * step + field_at(it, pos, tsw));
        pos += tsw;
        if (i == 0) {
            x = it->x0;
        } else {
            if (it->mode == 0)
                d = (int64_t)(vmin + field_at(it, vpos, vw));
            else if (i == 1)
                d = it->d1;
            else
                d = (int64_t)((uint64_t)d + vmin + field_at(it, vpos, vw));
            if (it->mode == 0 || i > 1)
                vpos += vw;
            x = (int64_t)((uint64_t)x + (uint64_t)d);
        }
        v[j] = it->scale ? (double)x / div : (double)x;
    }
    it->pos = pos;
    it->vpos = vpos;
    it->x = x;
    it->d = d;
    it->i = i;
    if (k)
        it->t = t[k - 1];
    return k;
}

size_t chunk_iter_read(chunk_iter_t *it, int64_t *t, double *v, size_t cap)
{
    if (it->i >= it->n || it->err)
        return 0;
    if (it->enc == CHUNK_ENC_DELTA)
        return delta_read(it, t, v, cap);
    size_t k = 0;
    while (k < cap && chunk_iter_next(it, &t[k], &v[k]))
        k++;
    return k;
}

bool chunk_iter_next(chunk_iter_t *it, int64_t *t, double *v)
{
    if (it->i >= it->n || it->err)
        return false;
    if (it->enc == CHUNK_ENC_DELTA)
        return delta_read(it, t, v, 1) == 1;
    if (it->i > 0) {
        int64_t dod;
        if (!get_bits(it, 1))
            dod = 0;
        else if (!get_bits(it, 1))
            dod = sext(get_bits(it, 4), 4);
        else if (!get_bits(it, 1))
            dod = sext(get_bits(it, 14), 14);
        else if (!get_bits(it, 1))
            dod = sext(get_bits(it, 20), 20);
        else if (!get_bits(it, 1))
            dod = sext(get_bits(it, 32), 32);
        else
            dod = (int64_t)get_bits(it, 64);
        it->tdelta = (int64_t)((uint64_t)it->tdelta + (uint64_t)dod);
        it->t = (int64_t)((uint64_t)it->t + (uint64_t)it->tdelta);
        if (get_bits(it, 1)) {
            uint64_t x;
            if (!get_bits(it, 1)) {
                if (it->lead == NO_WINDOW) {
                    it->err = true;
                    return false;
                }
                unsigned m = 64u - it->lead - it->trail;
                x = get_bits(it, m) << it->trail;
            } else {
                unsigned lead = (unsigned)get_bits(it, 5);
                unsigned m = (unsigned)get_bits(it, 6);
                if (m == 0)
                    m = 64;
                if (lead + m > 64) {
                    it->err = true;
                    return false;
                }
                it->lead = (uint8_t)lead;
                it->trail = (uint8_t)(64 - lead - m);
                x = get_bits(it, m) << it->trail;
            }
            it->v ^= x;
        }
        if (it->err)
            return false;
    }
    it->i++;
    *t = it->t;
    memcpy(v, &it->v, 8);
    return true;
}

/* ---- delta encoding ---- */

typedef struct rdr {
    const uint8_t *p, *end;
    bool bad;
} rdr_t;

static uint64_t rdr_uv(rdr_t *r)
{
    uint64_t v = 0;
    size_t k = r->bad ? 0 : uvarint_get(r->p, r->end, &v);
    if (!k)
        r->bad = true;
    r->p += k;
    return v;
}

static uint8_t rdr_u8(rdr_t *r)
{
    if (r->bad || r->p >= r->end) {
        r->bad = true;
        return 0;
    }
    return *r->p++;
}

void chunk_iter_init_enc(chunk_iter_t *it, uint8_t enc, const uint8_t *p, size_t len)
{
    if (enc == CHUNK_ENC_XOR) {
        chunk_iter_init(it, p, len);
        return;
    }
    memset(it, 0, sizeof *it);
    it->enc = enc;
    if (enc != CHUNK_ENC_DELTA) {
        it->err = true;
        return;
    }
    it->n = chunk_samples(p, len);
    if (!it->n)
        return;
    rdr_t r = {p + 2, p + len, false};
    it->t0 = zigzag_dec(rdr_uv(&r));
    it->step = zigzag_dec(rdr_uv(&r));
    it->tsw = rdr_u8(&r);
    uint8_t ms = rdr_u8(&r);
    it->scale = ms & 15;
    it->mode = ms >> 4;
    it->x0 = zigzag_dec(rdr_uv(&r));
    if (it->mode == 1 && it->n >= 2)
        it->d1 = zigzag_dec(rdr_uv(&r));
    it->vmin = zigzag_dec(rdr_uv(&r));
    it->vw = rdr_u8(&r);
    uint64_t nv = it->mode == 0 ? (uint64_t)it->n - 1 : (it->n >= 2 ? (uint64_t)it->n - 2 : 0);
    if (r.bad || it->tsw > 64 || it->vw > 64 || it->scale > MAX_SCALE || it->mode > 1) {
        it->err = true;
        it->n = 0;
        return;
    }
    it->p = r.p;
    it->end = p + len;
    it->nbits = (uint64_t)(it->end - it->p) * 8;
    uint64_t ts_bits = (uint64_t)it->n * it->tsw;
    if (ts_bits + nv * it->vw > it->nbits) {
        it->err = true;
        it->n = 0;
        return;
    }
    it->pos = 0;
    it->vpos = ts_bits;
}

static unsigned width_of(uint64_t max) { return max ? 64 - (unsigned)__builtin_clzll(max) : 0; }

/* Bit writer over a buf_t: MSB first. */
typedef struct bw {
    buf_t *b;
    uint64_t acc;
    unsigned n;
} bw_t;

static void bw_put(bw_t *w, uint64_t v, unsigned n)
{
    if (!n)
        return;
    if (n < 64)
        v &= (1ULL << n) - 1;
    while (n) {
        unsigned room = 8 - w->n, take = n < room ? n : room;
        w->acc = (w->acc << take) | ((v >> (n - take)) & ((1u << take) - 1));
        w->n += take;
        n -= take;
        if (w->n == 8) {
            buf_putc(w->b, (char)w->acc);
            w->acc = 0;
            w->n = 0;
        }
    }
}

static void bw_flush(bw_t *w)
{
    if (w->n)
        buf_putc(w->b, (char)(w->acc << (8 - w->n)));
    w->acc = 0;
    w->n = 0;
}

/* Converts v to integers at scale k; false unless every value round-trips bit-exactly. */
static bool to_ints(const double *v, size_t n, unsigned k, int64_t *x)
{
    for (size_t i = 0; i < n; i++) {
        double s = v[i] * pow10_tab[k];
        if (!(s > -9007199254740992.0 && s < 9007199254740992.0))
            return false;
        int64_t xi = (int64_t)__builtin_llrint(s);
        double back = k ? (double)xi / pow10_tab[k] : (double)xi;
        if (memcmp(&back, &v[i], 8) != 0)
            return false;
        x[i] = xi;
    }
    return true;
}

/* Frame of reference: min and max of a stream of signed fields. */
typedef struct span64 {
    int64_t lo, hi;
} span64_t;

static void span_add(span64_t *s, int64_t v)
{
    s->lo = v < s->lo ? v : s->lo;
    s->hi = v > s->hi ? v : s->hi;
}

static unsigned span_width(const span64_t *s)
{
    return s->lo > s->hi ? 0 : width_of((uint64_t)s->hi - (uint64_t)s->lo);
}

static int64_t field(const int64_t *x, size_t i, int mode)
{
    int64_t d = (int64_t)((uint64_t)x[i] - (uint64_t)x[i - 1]);
    if (!mode)
        return d;
    int64_t dp = (int64_t)((uint64_t)x[i - 1] - (uint64_t)x[i - 2]);
    return (int64_t)((uint64_t)d - (uint64_t)dp);
}

bool chunk_encode_delta(buf_t *out, const int64_t *t, const double *v, size_t n)
{
    if (n == 0 || n > CHUNK_MAX_SAMPLES)
        return false;
    int64_t *x = malloc(n * sizeof *x);
    if (!x)
        abort();
    unsigned k = 0;
    while (k <= MAX_SCALE && !to_ints(v, n, k, x))
        k++;
    if (k > MAX_SCALE) {
        free(x);
        return false;
    }
    /* Grid: rounded mean interval; the base moves so the smallest residual is 0. */
    uint64_t span = (uint64_t)t[n - 1] - (uint64_t)t[0];
    int64_t step = n > 1 && t[n - 1] >= t[0] ? (int64_t)((span + (n - 1) / 2) / (n - 1)) : 0;
    span64_t ts = {INT64_MAX, INT64_MIN}, ds = {INT64_MAX, INT64_MIN}, dds = {INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < n; i++) {
        span_add(&ts, (int64_t)((uint64_t)t[i] - ((uint64_t)t[0] + (uint64_t)i * (uint64_t)step)));
        if (i >= 1)
            span_add(&ds, field(x, i, 0));
        if (i >= 2)
            span_add(&dds, field(x, i, 1));
    }
    int64_t base = (int64_t)((uint64_t)t[0] + (uint64_t)ts.lo);
    unsigned tw = span_width(&ts), dw = span_width(&ds), ddw = span_width(&dds);
    int mode = n >= 3 && ddw < dw ? 1 : 0;
    unsigned vw = mode ? ddw : dw;
    int64_t vmin = mode ? dds.lo : (n >= 2 ? ds.lo : 0);
    uint8_t hdr[2] = {(uint8_t)(n >> 8), (uint8_t)n};
    buf_append(out, hdr, 2);
    buf_put_uvarint(out, zigzag_enc(base));
    buf_put_uvarint(out, zigzag_enc(step));
    buf_putc(out, (char)tw);
    buf_putc(out, (char)(mode << 4 | (int)k));
    buf_put_uvarint(out, zigzag_enc(x[0]));
    if (mode == 1)
        buf_put_uvarint(out, zigzag_enc(field(x, 1, 0)));
    buf_put_uvarint(out, zigzag_enc(vmin));
    buf_putc(out, (char)vw);
    bw_t w = {out, 0, 0};
    for (size_t i = 0; i < n; i++)
        bw_put(&w, (uint64_t)t[i] - ((uint64_t)base + (uint64_t)i * (uint64_t)step), tw);
    for (size_t i = mode ? 2 : 1; i < n; i++)
        bw_put(&w, (uint64_t)field(x, i, mode) - (uint64_t)vmin, vw);
    bw_flush(&w);
    free(x);
    return true;
}
