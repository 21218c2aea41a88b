/*
 * fuzz_spans_wal.c - the span batch WAL payload decoder (spans_wal_decode) on untrusted bytes.
 *
 * Checked properties: decoding never reads out of bounds, crashes or leaks; a payload it rejects
 * delivers nothing (ERR_CORRUPT before any callback); a payload it accepts re-encodes (with
 * spans_wal_encode) to a payload that decodes to the same spans, field for field.
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "store/spans.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct got {
    db_span_t *v;
    size_t n, cap;
} got_t;

static void cb(void *arg, const db_span_t *s)
{
    got_t *g = arg;
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 16;
        g->v = realloc(g->v, g->cap * sizeof *g->v);
    }
    g->v[g->n++] = *s; /* strs point into the payload, which outlives g */
}

static bool span_eq(const db_span_t *a, const db_span_t *b)
{
    return memcmp(a->trace_id, b->trace_id, 16) == 0 && memcmp(a->span_id, b->span_id, 8) == 0 &&
           memcmp(a->parent_span_id, b->parent_span_id, 8) == 0 && a->start_ns == b->start_ns &&
           a->end_ns == b->end_ns && str_eq(a->name, b->name) &&
           str_eq(a->service_name, b->service_name) && a->kind == b->kind &&
           a->status_code == b->status_code && str_eq(a->resource_pb, b->resource_pb) &&
           str_eq(a->scope_pb, b->scope_pb) && str_eq(a->span_pb, b->span_pb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    got_t g = {0}, h = {0};
    int rc = spans_wal_decode(data, size, cb, &g);
    if (rc != 0 && (rc != ERR_CORRUPT || g.n != 0))
        abort();
    if (rc == 0) {
        buf_t b = BUF_INIT;
        spans_wal_encode(&b, g.v, g.n);
        if (spans_wal_decode(b.pos, buf_len(&b), cb, &h) != 0 || h.n != g.n)
            abort();
        for (size_t i = 0; i < g.n; i++)
            if (!span_eq(&g.v[i], &h.v[i]))
                abort();
        buf_deinit(&b);
    }
    free(g.v);
    free(h.v);
    return 0;
}
