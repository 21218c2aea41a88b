/*
 * chunk.h - Gorilla-style compressed sample chunks (delta-of-delta timestamps, XOR float values).
 *
 * A chunk is a byte string (layout in store/format.h, "XOR chunk"): a 2-byte sample count, the
 * first timestamp and value, then a bit stream. Values are stored bit-exactly, so NaN payloads
 * such as Prometheus' stale marker 0x7ff0000000000002 survive. The appender keeps the encoder
 * state next to the bytes so appends never re-read the chunk; the iterator decodes forward only.
 */
#ifndef STORE_CHUNK_H
#define STORE_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define CHUNK_MAX_SAMPLES 65535

/* A chunk being written. bytes is malloc'd and owned by the appender until chunk_app_take. */
typedef struct chunk_app {
    uint8_t *bytes;
    uint32_t cap;   /* allocated bytes */
    uint32_t hdr;   /* bytes before the bit stream */
    uint64_t nbits; /* bits stored in bytes after hdr (a multiple of 64) */
    uint64_t acc;   /* the next acc_n (< 64) bits, right-aligned, not yet in bytes */
    uint8_t acc_n;
    uint8_t lead; /* XOR window of the previous value */
    uint8_t trail;
    uint16_t n; /* samples */
    int64_t mint, t, tdelta;
    uint64_t v;
} chunk_app_t;

void chunk_app_init(chunk_app_t *a);
/* Frees the bytes (if not taken). */
void chunk_app_deinit(chunk_app_t *a);
/* Appends a sample; t must be greater than the previous one (callers enforce order). Fails
 * (returns false) only when the chunk holds CHUNK_MAX_SAMPLES already. */
bool chunk_app_append(chunk_app_t *a, int64_t t, double v);
/* Appends keep the newest bits in a register so a hot series does not touch its chunk memory on
 * every sample; call chunk_app_sync before reading bytes (it is cheap and idempotent). */
void chunk_app_sync(chunk_app_t *a);
/* Length in bytes of the encoded chunk so far (valid after chunk_app_sync). */
static inline size_t chunk_app_len(const chunk_app_t *a)
{
    return a->hdr + (size_t)((a->nbits + a->acc_n + 7) / 8);
}
/* Hands the bytes (exactly chunk_app_len, shrunk to fit) to the caller (free()) and resets a. */
uint8_t *chunk_app_take(chunk_app_t *a, size_t *len);

typedef struct chunk_iter {
    const uint8_t *p, *end; /* bit stream */
    uint64_t pos;           /* bit position in [p, end) (timestamps for CHUNK_ENC_DELTA) */
    uint64_t nbits;
    uint16_t n, i; /* samples in the chunk, samples returned */
    uint8_t enc;
    uint8_t lead, trail;
    bool err;
    int64_t t, tdelta;
    uint64_t v;
    /* CHUNK_ENC_DELTA state */
    uint64_t vpos; /* bit position of the next value field */
    int64_t t0, step, x, d, x0, d1, vmin;
    uint8_t tsw, vw, scale, mode;
} chunk_iter_t;

/* Iterates an XOR chunk held in [p, p+len); the bytes must outlive the iterator. A malformed chunk
 * ends the iteration early and sets it->err (never reads out of bounds). */
void chunk_iter_init(chunk_iter_t *it, const uint8_t *p, size_t len);
/* Same for a chunk of any known encoding (CHUNK_ENC_*); unknown encodings set it->err. */
void chunk_iter_init_enc(chunk_iter_t *it, uint8_t enc, const uint8_t *p, size_t len);
bool chunk_iter_next(chunk_iter_t *it, int64_t *t, double *v);
/* Up to cap further samples into t[] and v[] (what chunk_iter_next would give one by one; delta
 * chunks in one tight loop); 0 at the end of the chunk or on error. */
size_t chunk_iter_read(chunk_iter_t *it, int64_t *t, double *v, size_t cap);
/* Advances to the first sample with timestamp >= min_t and returns it (false when none is left).
 * Forward only: decoding is sequential. */
bool chunk_iter_seek(chunk_iter_t *it, int64_t min_t, int64_t *t, double *v);
/* Number of samples the chunk header claims (0 if the chunk is too short to have a header). */
uint16_t chunk_samples(const uint8_t *p, size_t len);

/*
 * CHUNK_ENC_DELTA (blocks only): timestamps as residuals from a regular grid and values as
 * decimal integers (value = x / 10^scale) stored as bit-packed deltas or delta-of-deltas. Appends
 * the encoding of n (1..CHUNK_MAX_SAMPLES) samples with ascending t to out and returns true, or
 * returns false (out untouched) when some value is not such a decimal bit-exactly (NaN, -0,
 * non-decimal fractions): the caller then uses XOR.
 */
bool chunk_encode_delta(buf_t *out, const int64_t *t, const double *v, size_t n);

#endif
