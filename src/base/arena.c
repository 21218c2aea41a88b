/*
 * arena.c - region allocator.
 *
 * Blocks are singly linked, newest first. A request larger than half the block size gets a block of
 * its own so that a big allocation does not waste the rest of the current block. malloc failure
 * aborts: every caller would otherwise need an error path for a condition the process cannot
 * recover from anyway under Linux overcommit; the memory limits that matter are enforced earlier,
 * on input sizes.
 */
#include "base/arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct arena_block {
    arena_block_t *next;
    size_t size;
    size_t used;
    _Alignas(16) unsigned char data[];
};

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "skillscope: out of memory allocating %zu bytes\n", n);
        abort();
    }
    return p;
}

void arena_init(arena_t *a, size_t first_block_bytes)
{
    a->head = NULL;
    a->block_bytes = first_block_bytes ? first_block_bytes : 4096;
    a->total_bytes = 0;
}

void arena_deinit(arena_t *a)
{
    arena_block_t *b = a->head;
    while (b) {
        arena_block_t *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->total_bytes = 0;
}

void arena_reset(arena_t *a)
{
    if (!a->head)
        return;
    arena_block_t *keep = a->head;
    while (keep->next)
        keep = keep->next; /* the oldest block is the first, smallest one */
    arena_block_t *b = a->head;
    while (b != keep) {
        arena_block_t *next = b->next;
        free(b);
        b = next;
    }
    keep->used = 0;
    a->head = keep;
    a->total_bytes = sizeof(arena_block_t) + keep->size;
}

void *arena_alloc(arena_t *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    arena_block_t *b = a->head;
    if (b && b->size - b->used >= n) {
        void *p = b->data + b->used;
        b->used += n;
        return p;
    }
    size_t size = a->block_bytes;
    if (n > size / 2) {
        /* Dedicated block, linked behind the current head so the head keeps its free space. */
        arena_block_t *big = xmalloc(sizeof *big + n);
        big->size = n;
        big->used = n;
        a->total_bytes += sizeof *big + n;
        if (b) {
            big->next = b->next;
            b->next = big;
        } else {
            big->next = NULL;
            a->head = big;
        }
        return big->data;
    }
    arena_block_t *nb = xmalloc(sizeof *nb + size);
    nb->size = size;
    nb->used = n;
    nb->next = b;
    a->head = nb;
    a->total_bytes += sizeof *nb + size;
    if (a->block_bytes < (1u << 20))
        a->block_bytes *= 2;
    return nb->data;
}

void *arena_calloc(arena_t *a, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size) {
        fprintf(stderr, "skillscope: arena allocation overflow\n");
        abort();
    }
    void *p = arena_alloc(a, count * size);
    memset(p, 0, count * size);
    return p;
}

char *arena_strndup(arena_t *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

str_t arena_str(arena_t *a, str_t s) { return (str_t){arena_strndup(a, s.ptr, s.len), s.len}; }

char *arena_sprintf(arena_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = arena_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}
