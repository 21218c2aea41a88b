/*
 * arena.h - region allocator: allocate freely, free once.
 *
 * A request, a decode or a query gets an arena. Memory comes from a chain of blocks that grow
 * geometrically; nothing is freed until arena_reset/arena_deinit. Allocations are 16-byte aligned.
 * Out-of-memory aborts the process (see arena.c for why).
 */
#ifndef BASE_ARENA_H
#define BASE_ARENA_H

#include <stddef.h>

#include "base/str.h"

typedef struct arena_block arena_block_t;

typedef struct arena {
    arena_block_t *head;
    size_t block_bytes; /* size of the next block to allocate */
    size_t total_bytes; /* bytes obtained from malloc, for accounting */
} arena_t;

/* Caller-owned arena; first_block_bytes 0 picks a default (4 KiB). */
void arena_init(arena_t *a, size_t first_block_bytes);
void arena_deinit(arena_t *a);
/* Frees every block but the first, which is kept for reuse. */
void arena_reset(arena_t *a);
/* Uninitialised memory valid until reset/deinit. */
void *arena_alloc(arena_t *a, size_t n);
/* Zeroed memory. */
void *arena_calloc(arena_t *a, size_t count, size_t size);
/* NUL-terminated copy. */
char *arena_strndup(arena_t *a, const char *s, size_t n);
str_t arena_str(arena_t *a, str_t s);
char *arena_sprintf(arena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define ARENA_NEW(a, T) ((T *)arena_calloc((a), 1, sizeof(T)))
#define ARENA_ARRAY(a, T, n) ((T *)arena_calloc((a), (n), sizeof(T)))

#endif
