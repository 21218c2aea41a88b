/*
 * hash.h - 64-bit hashing (xxHash3 from Debian's libxxhash) and a u64-keyed hash table.
 */
#ifndef BASE_HASH_H
#define BASE_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/str.h"

uint64_t hash64(const void *p, size_t n, uint64_t seed);
static inline uint64_t hash_str(str_t s) { return hash64(s.ptr, s.len, 0); }
/* A cheap mix for integer keys (splitmix64 finaliser). */
static inline uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/*
 * u64map_t: open addressing, linear probing, power-of-two capacity, key -> uint64 value.
 * Key 0 is reserved as the empty marker; callers whose keys can be 0 map it elsewhere
 * (hash64 of real data is never 0 in practice; a caller may add 1). Not thread-safe.
 * Keys are expected to be well mixed already (hashes); integer ids go through hash_u64 first.
 */
typedef struct u64map {
    uint64_t *keys;
    uint64_t *vals;
    size_t cap; /* power of two or 0 */
    size_t len;
} u64map_t;

void u64map_init(u64map_t *m);
void u64map_deinit(u64map_t *m);
/* Returns a pointer to the value slot for key, or NULL when absent. Valid until the next insert. */
uint64_t *u64map_get(const u64map_t *m, uint64_t key);
/* Inserts or overwrites. Returns the slot. */
uint64_t *u64map_put(u64map_t *m, uint64_t key, uint64_t val);
/* Removes key if present (backward-shift deletion; no tombstones). Returns true if it was there. */
bool u64map_del(u64map_t *m, uint64_t key);
void u64map_clear(u64map_t *m);
/* Iteration: for (size_t i = 0; i < m->cap; i++) if (m->keys[i]) ... */

#endif
