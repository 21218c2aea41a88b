/*
 * head.h - the in-memory metrics head: series table, postings, per-series chunks, out-of-order
 * buffers and metric metadata. Everything since the last head cut lives here; db.c logs it to the
 * WAL and writes it to a block at the cut.
 *
 * Append rules (per series; "max" is the newest timestamp ever accepted, kept across cuts):
 *   t > max                         appended in order (any age: retention is the caller's check)
 *   t == max, same value bits       duplicate, silently dropped (HEAD_DUP)
 *   t == max, other value           rejected: "duplicate sample for timestamp"
 *   max - ooo_window <= t < max     kept in the series' out-of-order buffer, merged on read (same
 *                                   duplicate rules against what the head still holds)
 *   t < max - ooo_window            rejected: "out of order sample"
 * Not thread-safe: the owner's thread only.
 */
#ifndef STORE_HEAD_H
#define STORE_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/hash.h"
#include "store/chunk.h"
#include "store/db.h"
#include "store/index.h"
#include "store/labels.h"

#define HEAD_CHUNK_SAMPLES 120
#define HEAD_CHUNK_RANGE_MS (2 * 3600 * 1000)

typedef struct head_chunk {
    uint8_t *data; /* malloc'd, exactly len bytes */
    uint32_t len;
    uint16_t n;
    int64_t mint, maxt;
} head_chunk_t;

typedef struct head_series {
    uint64_t id, hash;
    labels_t ls; /* sorted, no empty values; owned (one allocation with the struct) */
    struct head_series *next_hash; /* labels-hash collision chain */
    int64_t max_t;                 /* newest accepted timestamp, INT64_MIN if none */
    double last_v;                 /* value at max_t */
    int64_t hmin, hmax;   /* time range of the samples the head holds (hmin > hmax when none) */
    uint64_t n_samples;   /* samples the head holds */
    head_chunk_t *chunks; /* closed chunks, time ordered */
    uint32_t n_chunks, cap_chunks;
    chunk_app_t app; /* the open chunk (app.n == 0: none) */
    int64_t *ooo_t;  /* out-of-order samples, ascending t */
    double *ooo_v;
    uint32_t n_ooo, cap_ooo;
} head_series_t;

typedef struct head_meta {
    str_t metric, help, unit; /* owned (malloc) */
    db_mtype_t type;
} head_meta_t;

typedef struct head {
    int64_t ooo_window_ms;
    u64map_t by_hash;       /* labels hash -> head_series_t * */
    u64map_t by_id;         /* hash_u64(id) -> head_series_t * */
    head_series_t **series; /* live series, ascending id */
    size_t n_series, cap_series;
    index_mem_t index;
    uint64_t next_id;
    int64_t min_t, max_t; /* over the samples the head holds */
    uint64_t n_samples, n_chunks, bytes;
    u64map_t meta_by_hash; /* hash(metric) -> meta index + 1 */
    head_meta_t *meta;
    size_t n_meta, cap_meta;
} head_t;

typedef enum head_append_result {
    HEAD_OK = 0,
    HEAD_DUP = 1,              /* identical sample already there: dropped, counts as accepted */
    HEAD_ERR_DUPLICATE = -1,   /* same timestamp, different value */
    HEAD_ERR_OUT_OF_ORDER = -2 /* older than the out-of-order window allows */
} head_append_result_t;

head_t *head_new(int64_t ooo_window_ms);
void head_free(head_t *h);

/* ls must be sorted without empty values; hash = labels_hash(ls). NULL when absent. */
head_series_t *head_get(head_t *h, const labels_t *ls, uint64_t hash);
/* Creates a series (copying ls). id 0 assigns the next id; a given id (WAL replay) must be
 * unused; next ids continue above it. */
head_series_t *head_create(head_t *h, const labels_t *ls, uint64_t hash, uint64_t id);
head_series_t *head_by_id(const head_t *h, uint64_t id);
head_append_result_t head_append(head_t *h, head_series_t *s, int64_t t, double v);
/* Restores max_t / last_v from a checkpoint (only moves max_t forward). */
void head_set_state(head_t *h, head_series_t *s, int64_t max_t, double last_v);

/* Sets a family's metadata; true when it changed (so the caller logs it). */
bool head_set_meta(head_t *h, str_t metric, db_mtype_t type, str_t help, str_t unit);
/* One family (metric.len > 0) or all. */
void head_meta_each(const head_t *h, str_t metric,
                    void (*cb)(void *arg, str_t metric, db_mtype_t type, str_t help, str_t unit),
                    void *arg);

/* Series matching ms with samples in [mint, maxt] (any order), array in arena a. */
void head_select(head_t *h, const matcher_t *ms, size_t n, int64_t mint, int64_t maxt, arena_t *a,
                 head_series_t ***out, size_t *n_out);

/* A series' samples as copies in an arena, for readers that outlive later appends. */
typedef struct head_snap_chunk {
    const uint8_t *p;
    size_t len;
    int64_t mint, maxt;
} head_snap_chunk_t;

typedef struct head_snap {
    head_snap_chunk_t *chunks; /* time ordered, in-order samples */
    size_t n_chunks;
    int64_t *ooo_t;
    double *ooo_v;
    size_t n_ooo;
} head_snap_t;

/* Copies the chunks overlapping [mint, maxt] and the out-of-order samples in it. */
void head_series_snapshot(head_series_t *s, int64_t mint, int64_t maxt, arena_t *a,
                          head_snap_t *out);
/* Calls cb with every sample the series holds, ascending, duplicates merged (in-order chunks and
 * out-of-order buffer). */
void head_series_samples(head_series_t *s, void (*cb)(void *arg, int64_t t, double v), void *arg);

/* After a cut: drops every sample, keeps series state; series whose newest sample is older than
 * idle_before_ms are forgotten. */
void head_truncate(head_t *h, int64_t idle_before_ms);

#endif
