/*
 * fuzz_otlp_json.c - the OTLP/JSON decoders on untrusted bytes.
 *
 * The input is decoded as a trace, a metrics and a logs request. Whenever a decode succeeds the
 * model is encoded to protobuf and decoded again, and must come back equal (same counts, same
 * content): the two decoders must accept and reject the same things. The model is also written
 * back as OTLP/JSON and re-read, which must give the same model.
 */
#include <stdio.h>
#include <stdlib.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/json.h"
#include "proto/otlp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ROUND_TRIP(kind, type, field)                                                              \
    do {                                                                                           \
        type m1, m2, m3;                                                                           \
        if (otlp_json_decode_##kind((const char *)data, size, &a, &m1, &err) != 0)                 \
            break;                                                                                 \
        buf_t b = BUF_INIT, j = BUF_INIT;                                                          \
        otlp_pb_encode_##kind(&b, &m1);                                                            \
        if (otlp_pb_decode_##kind(b.pos, buf_len(&b), &a, &m2, &err) != 0) {                       \
            fprintf(stderr, #kind ": protobuf encoding does not decode: %s\n", err.msg);           \
            abort();                                                                               \
        }                                                                                          \
        if (m1.field != m2.field || !otlp_##kind##_equal(&m1, &m2)) {                              \
            fprintf(stderr, #kind ": JSON -> protobuf round trip changed the model\n");            \
            abort();                                                                               \
        }                                                                                          \
        jw_t w;                                                                                    \
        jw_init(&w, &j);                                                                           \
        otlp_json_write_##kind(&w, &m1);                                                           \
        if (otlp_json_decode_##kind((const char *)j.pos, buf_len(&j), &a, &m3, &err) != 0) {       \
            fprintf(stderr, #kind ": JSON output does not decode: %s\n", err.msg);                 \
            abort();                                                                               \
        }                                                                                          \
        if (!otlp_##kind##_equal(&m1, &m3)) {                                                      \
            fprintf(stderr, #kind ": JSON round trip changed the model\n");                        \
            abort();                                                                               \
        }                                                                                          \
        buf_deinit(&b);                                                                            \
        buf_deinit(&j);                                                                            \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena_t a;
    err_t err;
    arena_init(&a, 0);
    ROUND_TRIP(traces, otlp_traces_t, n_rs);
    arena_reset(&a);
    ROUND_TRIP(metrics, otlp_metrics_t, n_rm);
    arena_reset(&a);
    ROUND_TRIP(logs, otlp_logs_t, n_rl);
    arena_deinit(&a);
    return 0;
}
