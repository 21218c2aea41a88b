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
 * The last byte is zero-padded; the count says where the samples end.
 */
#include "store/chunk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/varint.h"

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

static void put_bits(chunk_app_t *a, uint64_t v, unsigned n)
{
    ensure(a, a->hdr + (size_t)((a->nbits + n + 7) / 8));
    uint8_t *p = a->bytes + a->hdr;
    while (n) {
        uint64_t byte = a->nbits >> 3;
        unsigned off = (unsigned)(a->nbits & 7), room = 8 - off;
        unsigned take = room < n ? room : n;
        uint8_t bits = (uint8_t)((v >> (n - take)) & ((1u << take) - 1));
        p[byte] |= (uint8_t)(bits << (room - take));
        a->nbits += take;
        n -= take;
    }
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
    a->bytes[0] = (uint8_t)(a->n >> 8);
    a->bytes[1] = (uint8_t)a->n;
    return true;
}

uint8_t *chunk_app_take(chunk_app_t *a, size_t *len)
{
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

uint16_t chunk_samples(const uint8_t *p, size_t len)
{
    return len >= 2 ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}

void chunk_iter_init(chunk_iter_t *it, const uint8_t *p, size_t len)
{
    memset(it, 0, sizeof *it);
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

static inline uint64_t get_bits(chunk_iter_t *it, unsigned n)
{
    if (n == 0)
        return 0;
    if (it->pos + n > it->nbits) {
        it->err = true;
        return 0;
    }
    uint64_t r = 0, pos = it->pos;
    unsigned left = n;
    /* Fast path: 8 whole bytes available hold any <= 57-bit field at any bit offset. */
    if (n <= 57 && (pos >> 3) + 8 <= (uint64_t)(it->end - it->p)) {
        uint64_t w = 0;
        const uint8_t *b = it->p + (pos >> 3);
        for (int i = 0; i < 8; i++)
            w = w << 8 | b[i];
        r = (w << (pos & 7)) >> (64 - n);
        it->pos = pos + n;
        return r;
    }
    while (left) {
        uint64_t byte = pos >> 3;
        unsigned off = (unsigned)(pos & 7), avail = 8 - off;
        unsigned take = avail < left ? avail : left;
        uint64_t bits = ((uint64_t)it->p[byte] >> (avail - take)) & ((1u << take) - 1);
        r = (r << take) | bits;
        left -= take;
        pos += take;
    }
    it->pos = pos;
    return r;
}

static inline int64_t sext(uint64_t v, unsigned n)
{
    return (int64_t)(v << (64 - n)) >> (64 - n);
}

bool chunk_iter_next(chunk_iter_t *it, int64_t *t, double *v)
{
    if (it->i >= it->n || it->err)
        return false;
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
