/*
 * fuzz_junit.c - the JUnit XML reader and its mapping to OTLP on untrusted bytes.
 *
 * Each input is parsed twice: with the default limits and with tiny ones (depth 4, 3 cases,
 * 2 suites, 2 properties, 5-byte values, 7-byte texts) so the bounds and the cutting of long
 * values are exercised on every input. A parse must either fail with a positioned message
 * ("input:L:C: ...") or give a run whose counts add up; that run is mapped to a trace, which must
 * encode to protobuf that our own strict decoder accepts (valid UTF-8 everywhere, ids of the right
 * length) and that decodes back to the same model.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "ingest/junit.h"
#include "proto/otlp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one(const uint8_t *data, size_t size, const junit_limits_t *lim)
{
    arena_t a;
    arena_init(&a, 0);
    junit_run_t run;
    err_t err;
    if (junit_parse(data, size, "input", lim, &a, &run, &err) != 0) {
        if (strncmp(err.msg, "input:", 6) != 0 || err.line < 1 || err.col < 1) {
            fprintf(stderr, "error without a position: %s\n", err.msg);
            abort();
        }
        arena_deinit(&a);
        return;
    }
    if (run.n_passed + run.n_failed + run.n_skipped != run.n_cases) {
        fprintf(stderr, "counts do not add up\n");
        abort();
    }
    junit_map_opts_t o = {.file_name = STR("input.xml"), .fallback_end_ns = 1700000000000000000};
    junit_trace_id(data, size, o.trace_id);
    otlp_traces_t t, back;
    junit_to_otlp(&run, &o, &a, &t);
    size_t n_spans = t.rs[0].scopes[0].n_spans;
    size_t n_named = 0;
    for (size_t i = 0; i < run.n_suites; i++)
        n_named += !run.suites[i].implicit;
    if (n_spans < run.n_cases + 1 || n_spans > run.n_cases + n_named + 1) {
        fprintf(stderr, "%zu spans for %zu cases and %zu suites\n", n_spans, run.n_cases,
                run.n_suites);
        abort();
    }
    buf_t b = BUF_INIT;
    otlp_pb_encode_traces(&b, &t);
    if (otlp_pb_decode_traces(b.pos, buf_len(&b), &a, &back, &err) != 0) {
        fprintf(stderr, "mapped trace does not decode: %s\n", err.msg);
        abort();
    }
    if (!otlp_traces_equal(&t, &back)) {
        fprintf(stderr, "mapped trace changed in a protobuf round trip\n");
        abort();
    }
    buf_deinit(&b);
    arena_deinit(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const junit_limits_t tiny = {
        .max_depth = 4,
        .max_cases = 3,
        .max_suites = 2,
        .max_props = 2,
        .max_value_bytes = 5,
        .max_text_bytes = 7,
    };
    one(data, size, NULL);
    one(data, size, &tiny);
    return 0;
}
