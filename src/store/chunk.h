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

#define CHUNK_MAX_SAMPLES 65535

/* A chunk being written. bytes is malloc'd and owned by the appender until chunk_app_take. */
typedef struct chunk_app {
    uint8_t *bytes;
    uint32_t cap;      /* allocated bytes */
    uint32_t hdr;      /* bytes before the bit stream */
    uint64_t nbits;    /* bits written after hdr */
    uint16_t n;        /* samples */
    uint8_t lead;      /* XOR window of the previous value */
    uint8_t trail;
    int64_t mint, t, tdelta;
    uint64_t v;
} chunk_app_t;

void chunk_app_init(chunk_app_t *a);
/* Frees the bytes (if not taken). */
void chunk_app_deinit(chunk_app_t *a);
/* Appends a sample; t must be greater than the previous one (callers enforce order). Fails
 * (returns false) only when the chunk holds CHUNK_MAX_SAMPLES already. */
bool chunk_app_append(chunk_app_t *a, int64_t t, double v);
/* Length in bytes of the encoded chunk so far. */
static inline size_t chunk_app_len(const chunk_app_t *a) { return a->hdr + (size_t)((a->nbits + 7) / 8); }
/* Hands the bytes (exactly chunk_app_len, shrunk to fit) to the caller (free()) and resets a. */
uint8_t *chunk_app_take(chunk_app_t *a, size_t *len);

typedef struct chunk_iter {
    const uint8_t *p, *end; /* bit stream */
    uint64_t pos;           /* bit position in [p, end) */
    uint64_t nbits;
    uint16_t n, i;          /* samples in the chunk, samples returned */
    uint8_t lead, trail;
    bool err;
    int64_t t, tdelta;
    uint64_t v;
} chunk_iter_t;

/* Iterates a chunk held in [p, p+len); the bytes must outlive the iterator. A malformed chunk
 * ends the iteration early and sets it->err (never reads out of bounds). */
void chunk_iter_init(chunk_iter_t *it, const uint8_t *p, size_t len);
bool chunk_iter_next(chunk_iter_t *it, int64_t *t, double *v);
/* Number of samples the chunk header claims (0 if the chunk is too short to have a header). */
uint16_t chunk_samples(const uint8_t *p, size_t len);

#endif
