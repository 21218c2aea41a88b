/*
 * hash.c - xxHash3 wrapper and u64map (open addressing with linear probing).
 *
 * Deletion shifts later entries of the same probe run back instead of leaving tombstones, so
 * lookups never degrade after churn. Load factor is kept under 3/4.
 */
#include "base/hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

uint64_t hash64(const void *p, size_t n, uint64_t seed) { return XXH3_64bits_withSeed(p, n, seed); }

void u64map_init(u64map_t *m) { memset(m, 0, sizeof *m); }

void u64map_deinit(u64map_t *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

void u64map_clear(u64map_t *m)
{
    if (m->cap) {
        memset(m->keys, 0, m->cap * sizeof *m->keys);
        m->len = 0;
    }
}

uint64_t *u64map_get(const u64map_t *m, uint64_t key)
{
    if (!m->cap || !key)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = key & mask;; i = (i + 1) & mask) {
        if (m->keys[i] == key)
            return &m->vals[i];
        if (!m->keys[i])
            return NULL;
    }
}

static void grow(u64map_t *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    uint64_t *nk = calloc(ncap, sizeof *nk), *nv = malloc(ncap * sizeof *nv);
    if (!nk || !nv) {
        fprintf(stderr, "skillscope: out of memory growing a hash table\n");
        abort();
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        size_t j = m->keys[i] & (ncap - 1);
        while (nk[j])
            j = (j + 1) & (ncap - 1);
        nk[j] = m->keys[i];
        nv[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = nk;
    m->vals = nv;
    m->cap = ncap;
}

uint64_t *u64map_put(u64map_t *m, uint64_t key, uint64_t val)
{
    if (!key) {
        fprintf(stderr, "skillscope: u64map key 0 is reserved\n");
        abort();
    }
    if ((m->len + 1) * 4 > m->cap * 3)
        grow(m);
    size_t mask = m->cap - 1;
    size_t i = key & mask;
    while (m->keys[i] && m->keys[i] != key)
        i = (i + 1) & mask;
    if (!m->keys[i]) {
        m->keys[i] = key;
        m->len++;
    }
    m->vals[i] = val;
    return &m->vals[i];
}

bool u64map_del(u64map_t *m, uint64_t key)
{
    if (!m->cap || !key)
        return false;
    size_t mask = m->cap - 1;
    size_t i = key & mask;
    while (m->keys[i] != key) {
        if (!m->keys[i])
            return false;
        i = (i + 1) & mask;
    }
    /* Backward shift: move later members of the run into the hole when their home allows it. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
        size_t home = m->keys[j] & mask;
        /* j may move to hole if home is not cyclically in (hole, j]. */
        bool in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!in_range) {
            m->keys[hole] = m->keys[j];
            m->vals[hole] = m->vals[j];
            hole = j;
        }
    }
    m->keys[hole] = 0;
    m->len--;
    return true;
}
