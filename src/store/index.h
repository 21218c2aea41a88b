/*
 * index.h - label postings (label name -> value -> ascending series ids) and matcher selection.
 *
 * index_select works over any index_reader_t: the head's in-memory index (index_mem_t, below) and
 * a block's index file (block.c) both provide one. Selection follows Prometheus'
 * PostingsForMatchers: matchers that reject "" intersect the postings of the values they accept;
 * matchers that accept "" (so also select series lacking the label) subtract the postings of the
 * values they reject, unless another matcher already requires the label to be set; with no
 * positive matcher the start set is every series. Empty label values are never indexed (a label
 * with value "" is the same as no label).
 */
#ifndef STORE_INDEX_H
#define STORE_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/hash.h"
#include "base/str.h"
#include "store/labels.h"

typedef struct postings {
    uint64_t *v; /* ascending, unique */
    size_t n;
} postings_t;

typedef void (*index_str_cb)(void *arg, str_t s);

typedef struct index_reader {
    void *ctx;
    /* Postings of name=value (arena-allocated or borrowed; read-only), empty when absent. */
    void (*postings)(void *ctx, str_t name, str_t value, arena_t *a, postings_t *out);
    /* Calls cb once per distinct value of name (any order). */
    void (*values)(void *ctx, str_t name, index_str_cb cb, void *arg);
    /* Every series id. */
    void (*all)(void *ctx, arena_t *a, postings_t *out);
} index_reader_t;

/* Ids of the series matching every matcher, ascending, in arena a. */
void index_select(const index_reader_t *r, const matcher_t *ms, size_t n, arena_t *a,
                  postings_t *out);

/* Set operations on ascending lists; results in arena a (they may alias an input when trivial). */
postings_t postings_intersect(postings_t x, postings_t y, arena_t *a);
postings_t postings_subtract(postings_t x, postings_t y, arena_t *a);
/* Union of n lists. */
postings_t postings_union(const postings_t *lists, size_t n, arena_t *a);

/* ---- the head's in-memory index ---- */

typedef struct index_pair index_pair_t;
typedef struct index_name index_name_t;

typedef struct index_mem {
    arena_t strs;           /* names and values, owned */
    u64map_t pairs_by_hash; /* hash(name, value) -> pair index + 1 */
    u64map_t names_by_hash; /* hash(name) -> name index + 1 */
    index_pair_t *pairs;
    size_t n_pairs, pairs_cap;
    index_name_t *names;
    size_t n_names, names_cap;
    uint64_t *all;
    size_t n_all, all_cap;
    size_t bytes;
} index_mem_t;

void index_mem_init(index_mem_t *x);
void index_mem_deinit(index_mem_t *x);
/* Adds series id with labels ls (copied as needed). ids must be added in ascending order. */
void index_mem_add(index_mem_t *x, uint64_t id, const labels_t *ls);
index_reader_t index_mem_reader(index_mem_t *x);
/* Calls cb once per label name / per value of name (insertion order). */
void index_mem_names(const index_mem_t *x, index_str_cb cb, void *arg);
void index_mem_values(const index_mem_t *x, str_t name, index_str_cb cb, void *arg);
/* Approximate heap bytes. */
size_t index_mem_bytes(const index_mem_t *x);

#endif
