/*
 * fuzz_expfmt.c - the exposition parser (proto/expfmt) on untrusted bytes, in both formats.
 *
 * Every input is parsed as text 0.0.4 and as OpenMetrics. Each sample the parser returns is
 * written back with expfmt_write_sample and parsed again as 0.0.4 text: the name, the labels
 * (unescaped bytes), the value (bit-exact, any NaN equal to any NaN) and the timestamp must come
 * back unchanged, and the re-parse must not fail. An error must carry a "line N: " message with
 * N within the input. Any difference aborts, so libFuzzer and the ASan replay report it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "proto/expfmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what, const expfmt_entry_t *e)
{
    fprintf(stderr, "fuzz_expfmt: %s (line %d, metric %.*s)\n", what, e->line, STR_FMT(e->name));
    abort();
}

static void round_trip(const expfmt_entry_t *e)
{
    buf_t b = BUF_INIT;
    expfmt_write_sample(&b, e);
    arena_t a;
    arena_init(&a, 0);
    expfmt_parser_t p;
    expfmt_init(&p, buf_str(&b), EXPFMT_TEXT, &a);
    expfmt_entry_t r;
    err_t err;
    err_clear(&err);
    if (expfmt_next(&p, &r, &err) != 1 || r.kind != EXPFMT_SAMPLE) {
        fprintf(stderr, "re-parse failed: %s\ntext: %.*s", err.msg, STR_FMT(buf_str(&b)));
        die("written sample does not parse", e);
    }
    if (!str_eq(r.name, e->name) || r.n_labels != e->n_labels)
        die("name or label count changed", e);
    for (size_t i = 0; i < e->n_labels; i++)
        if (!str_eq(r.labels[i].name, e->labels[i].name) ||
            !str_eq(r.labels[i].value, e->labels[i].value))
            die("label changed", e);
    bool same =
        memcmp(&r.value, &e->value, sizeof(double)) == 0 || (isnan(r.value) && isnan(e->value));
    if (!same)
        die("value changed", e);
    if (r.has_ts != e->has_ts || (e->has_ts && r.ts_ms != e->ts_ms))
        die("timestamp changed", e);
    if (expfmt_next(&p, &r, &err) != 0)
        die("extra entry after the written sample", e);
    expfmt_deinit(&p);
    arena_deinit(&a);
    buf_deinit(&b);
}

static void parse(const uint8_t *data, size_t size, expfmt_format_t fmt)
{
    arena_t a;
    arena_init(&a, 0);
    expfmt_parser_t p;
    expfmt_init(&p, str_from((const char *)data, size), fmt, &a);
    expfmt_entry_t e;
    err_t err;
    err_clear(&err);
    int rc;
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    while ((rc = expfmt_next(&p, &e, &err)) == 1) {
        if (e.line < 1 || (size_t)e.line > lines)
            die("entry line out of range", &e);
        if (e.kind == EXPFMT_SAMPLE)
            round_trip(&e);
    }
    if (rc < 0) {
        int line = 0;
        if (sscanf(err.msg, "line %d: ", &line) != 1 || line < 1 || (size_t)line > lines + 1 ||
            line != err.line) {
            fprintf(stderr, "fuzz_expfmt: bad error message \"%s\"\n", err.msg);
            abort();
        }
    }
    expfmt_deinit(&p);
    arena_deinit(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse(data, size, EXPFMT_TEXT);
    parse(data, size, EXPFMT_OPENMETRICS);
    return 0;
}
