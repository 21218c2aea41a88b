/*
 * fuzz_prompb.c - the remote-write decoders (proto/prompb) on untrusted bytes.
 *
 * The input is decoded as a v1 WriteRequest and as a v2 Request. When the v1 decode succeeds, the
 * model is re-encoded and decoded again and must come back equal (labels, bit-exact samples,
 * metadata); the re-encoding must be canonical (encode(decode(encode(m))) == encode(m)). Any
 * difference aborts, so libFuzzer and the ASan replay report it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "proto/prompb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool str_same(str_t a, str_t b) { return str_eq(a, b); }

static bool write_equal(const prompb_write_t *x, const prompb_write_t *y)
{
    if (x->n_series != y->n_series || x->n_metadata != y->n_metadata)
        return false;
    for (size_t i = 0; i < x->n_series; i++) {
        const prompb_series_t *a = &x->series[i], *b = &y->series[i];
        if (a->n_labels != b->n_labels || a->n_samples != b->n_samples)
            return false;
        for (size_t k = 0; k < a->n_labels; k++)
            if (!str_same(a->labels[k].name, b->labels[k].name) ||
                !str_same(a->labels[k].value, b->labels[k].value))
                return false;
        for (size_t k = 0; k < a->n_samples; k++)
            if (memcmp(&a->samples[k].value, &b->samples[k].value, sizeof(double)) != 0 ||
                a->samples[k].ts_ms != b->samples[k].ts_ms)
                return false;
    }
    for (size_t i = 0; i < x->n_metadata; i++) {
        const prompb_metadata_t *a = &x->metadata[i], *b = &y->metadata[i];
        if (a->type != b->type || !str_same(a->family, b->family) || !str_same(a->help, b->help) ||
            !str_same(a->unit, b->unit))
            return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena_t a;
    arena_init(&a, 0);
    err_t err = {0};
    prompb_write_t w1, w2;
    if (prompb_decode_v1(data, size, &a, &w1, &err) == 0) {
        buf_t b1 = BUF_INIT, b2 = BUF_INIT;
        prompb_encode_v1(&b1, &w1);
        if (prompb_decode_v1(b1.pos, buf_len(&b1), &a, &w2, &err) != 0) {
            fprintf(stderr, "v1: re-encoding does not decode: %s\n", err.msg);
            abort();
        }
        if (!write_equal(&w1, &w2)) {
            fprintf(stderr, "v1: round trip changed the model\n");
            abort();
        }
        prompb_encode_v1(&b2, &w2);
        if (buf_len(&b1) != buf_len(&b2) ||
            (buf_len(&b1) && memcmp(b1.pos, b2.pos, buf_len(&b1)) != 0)) {
            fprintf(stderr, "v1: encoding is not canonical\n");
            abort();
        }
        buf_deinit(&b1);
        buf_deinit(&b2);
    }
    (void)prompb_decode_v2(data, size, &a, &w1, &err);
    arena_deinit(&a);
    return 0;
}
