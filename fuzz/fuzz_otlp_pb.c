/*
 * fuzz_otlp_pb.c - the OTLP protobuf decoders on untrusted bytes.
 *
 * The input is decoded as a trace, a metrics and a logs request. Whenever a decode succeeds the
 * model is re-encoded to protobuf and decoded again, and must come back equal (and re-encode to
 * the same bytes); it is also written as OTLP/JSON and read back, which must give the same model.
 * Any difference aborts, so libFuzzer and the ASan replay report it.
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
        if (otlp_pb_decode_##kind(data, size, &a, &m1, &err) != 0)                                 \
            break;                                                                                 \
        buf_t b1 = BUF_INIT, b2 = BUF_INIT, j = BUF_INIT;                                          \
        otlp_pb_encode_##kind(&b1, &m1);                                                           \
        if (otlp_pb_decode_##kind(b1.pos, buf_len(&b1), &a, &m2, &err) != 0) {                     \
            fprintf(stderr, #kind ": re-encoding does not decode: %s\n", err.msg);                 \
            abort();                                                                               \
        }                                                                                          \
        if (m1.field != m2.field || !otlp_##kind##_equal(&m1, &m2)) {                              \
            fprintf(stderr, #kind ": protobuf round trip changed the model\n");                    \
            abort();                                                                               \
        }                                                                                          \
        otlp_pb_encode_##kind(&b2, &m2);                                                           \
        if (buf_len(&b1) != buf_len(&b2) ||                                                        \
            (buf_len(&b1) && memcmp(b1.pos, b2.pos, buf_len(&b1)) != 0)) {                         \
            fprintf(stderr, #kind ": encoding is not canonical\n");                                \
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
        buf_deinit(&b1);                                                                           \
        buf_deinit(&b2);                                                                           \
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
