/*
 * fuzz_loki_push.c - the Loki push decoders (proto/lokipb) and the receiver's label-string parser
 * and validation (ingest/loki_push) on untrusted bytes.
 *
 * The input is tried four ways: as a PushRequest (uncompressed protobuf), as a JSON push body, as
 * one stream's label string, and, whenever a decode succeeds, through loki_push_prepare (which
 * parses every stream's labels and checks every entry). A protobuf decode that succeeds must
 * survive a round trip: encode, decode again, and get the same streams, entries and metadata, and
 * the re-encoding must be canonical (encode(decode(encode(m))) == encode(m)). Any difference
 * aborts, so libFuzzer and the ASan replay report it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "ingest/loki_push.h"
#include "proto/lokipb.h"
#include "store/db.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW_NS 1790000000000000000LL

static bool pairs_equal(const lokipb_pair_t *x, const lokipb_pair_t *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!str_eq(x[i].name, y[i].name) || !str_eq(x[i].value, y[i].value))
            return false;
    return true;
}

static bool push_equal(const lokipb_push_t *x, const lokipb_push_t *y)
{
    if (x->n_streams != y->n_streams || x->n_entries != y->n_entries)
        return false;
    for (size_t i = 0; i < x->n_streams; i++) {
        const lokipb_stream_t *a = &x->streams[i], *b = &y->streams[i];
        if (!str_eq(a->labels_text, b->labels_text) || a->n_entries != b->n_entries)
            return false;
        for (size_t k = 0; k < a->n_entries; k++) {
            const lokipb_entry_t *e = &a->entries[k], *f = &b->entries[k];
            if (e->ts_ns != f->ts_ns || !str_eq(e->line, f->line) || e->n_meta != f->n_meta ||
                !pairs_equal(e->meta, f->meta, e->n_meta))
                return false;
        }
    }
    return true;
}

static void prepare(const lokipb_push_t *p, arena_t *a)
{
    db_batch_t *b = NULL;
    err_t err = {0};
    if (loki_push_prepare(p, NOW_NS, a, &b, &err) == 0) {
        if (b && db_batch_items(b) != p->n_entries) {
            fprintf(stderr, "prepare: batch has %zu items for %zu entries\n", db_batch_items(b),
                    p->n_entries);
            abort();
        }
        if (b)
            db_batch_free(b);
    } else if (b || !err.msg[0]) {
        fprintf(stderr, "prepare: failed without a message or left a batch\n");
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena_t a;
    arena_init(&a, 0);
    err_t err = {0};
    lokipb_push_t p1, p2;
    if (lokipb_decode(data, size, &a, &p1, &err) == 0) {
        buf_t b1 = BUF_INIT, b2 = BUF_INIT;
        lokipb_encode(&b1, &p1);
        if (lokipb_decode(b1.pos, buf_len(&b1), &a, &p2, &err) != 0) {
            fprintf(stderr, "re-encoding does not decode: %s\n", err.msg);
            abort();
        }
        if (!push_equal(&p1, &p2)) {
            fprintf(stderr, "round trip changed the push\n");
            abort();
        }
        lokipb_encode(&b2, &p2);
        if (buf_len(&b1) != buf_len(&b2) ||
            (buf_len(&b1) && memcmp(b1.pos, b2.pos, buf_len(&b1)) != 0)) {
            fprintf(stderr, "encoding is not canonical\n");
            abort();
        }
        buf_deinit(&b1);
        buf_deinit(&b2);
        prepare(&p1, &a);
    }
    if (lokipb_decode_json(data, size, &a, &p1, &err) == 0)
        prepare(&p1, &a);
    labels_t ls;
    err_clear(&err);
    int rc = loki_push_parse_labels(str_from((const char *)data, size), &a, &ls, &err);
    if (rc == 0) {
        for (size_t i = 0; i < ls.n; i++) {
            if (!ls.v[i].value.len || !label_name_valid(ls.v[i].name) ||
                (i && str_cmp(ls.v[i - 1].name, ls.v[i].name) >= 0)) {
                fprintf(stderr, "parsed labels are not a valid sorted set\n");
                abort();
            }
        }
    } else if (!err.msg[0]) {
        fprintf(stderr, "label parse failed without a message\n");
        abort();
    }
    arena_deinit(&a);
    return 0;
}
