/*
 * fuzz_logs_wal.c - the log batch WAL payload decoder (logs_wal_decode) on untrusted bytes.
 *
 * Checked properties: decoding never reads out of bounds, crashes or leaks; a payload it rejects
 * delivers nothing; a payload it accepts re-encodes (logs_wal_encode) to a payload that decodes
 * to the same entries, label for label and byte for byte.
 */
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "store/logs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct got {
    logs_wal_entry_t *v;
    size_t n, cap;
} got_t;

static void cb(void *arg, const logs_wal_entry_t *e)
{
    got_t *g = arg;
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 16;
        g->v = realloc(g->v, g->cap * sizeof *g->v);
    }
    g->v[g->n++] = *e; /* labels live in the arena, strings in the payload */
}

static bool labels_same(const labels_t *a, const labels_t *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (!str_eq(a->v[i].name, b->v[i].name) || !str_eq(a->v[i].value, b->v[i].value))
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena_t a;
    arena_init(&a, 0);
    got_t g = {0}, h = {0};
    int rc = logs_wal_decode(data, size, &a, cb, &g);
    if (rc != 0 && (rc != ERR_CORRUPT || g.n != 0))
        abort();
    if (rc == 0) {
        buf_t b = BUF_INIT;
        logs_wal_encode(&b, g.v, g.n);
        if (logs_wal_decode(b.pos, buf_len(&b), &a, cb, &h) != 0 || h.n != g.n)
            abort();
        for (size_t i = 0; i < g.n; i++)
            if (!labels_same(&g.v[i].stream, &h.v[i].stream) || g.v[i].ts_ns != h.v[i].ts_ns ||
                !str_eq(g.v[i].line, h.v[i].line) || !labels_same(&g.v[i].meta, &h.v[i].meta))
                abort();
        buf_deinit(&b);
    }
    free(g.v);
    free(h.v);
    arena_deinit(&a);
    return 0;
}
