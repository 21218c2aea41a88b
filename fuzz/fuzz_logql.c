/*
 * fuzz_logql.c - the LogQL parser (query/logql_parse.c) and the log pipeline on untrusted bytes.
 *
 * The input is parsed as a query. A parse error must carry a message starting with "parse error"
 * and, when it has a position, a line/column inside the input. A query that parses is run through
 * its pipeline stages (line filters, parsers, label filters, templates) on a few fixed log lines
 * and on the input itself as a line, with stream labels and structured metadata, so the JSON and
 * logfmt scanners, templates and label filters see hostile data too. Any violation aborts, so
 * libFuzzer and the ASan replay report it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "query/logql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run_pipe(const lq_expr_t *x, str_t line)
{
    if (!x)
        return;
    if (x->kind == LQ_LOG || x->kind == LQ_RANGE) {
        label_t sl[2] = {{STR("app"), STR("a")}, {STR("level"), STR("info")}};
        label_t ml[1] = {{STR("trace_id"), STR("abc")}};
        labels_t stream = {sl, 2}, meta = {ml, 1};
        arena_t a;
        arena_init(&a, 0);
        lq_builder_t b = {.a = &a};
        lq_builder_reset(&b, &stream, &meta, line, 1700000000000000000LL);
        if (lq_pipeline_run(x->log.stages, x->log.n_stages, &b)) {
            for (size_t i = 0; i < x->n_post; i++)
                lq_label_filter(x->post[i], &b);
            labels_t ls = lq_builder_labels(&b);
            for (size_t i = 1; i < ls.n; i++)
                if (str_cmp(ls.v[i - 1].name, ls.v[i].name) > 0)
                    abort();
        }
        arena_deinit(&a);
    }
    run_pipe(x->inner, line);
    run_pipe(x->lhs, line);
    run_pipe(x->rhs, line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    str_t q = {(const char *)data, size};
    logql_query_t *lq = NULL;
    err_t err = {0};
    if (logql_parse(q, &lq, &err) != 0) {
        if (strncmp(err.msg, "parse error", 11) != 0) {
            fprintf(stderr, "fuzz_logql: error without the parse error prefix: %s\n", err.msg);
            abort();
        }
        if (err.line > 0 && (size_t)err.col > size + 1) {
            fprintf(stderr, "fuzz_logql: column %d outside the input (%zu bytes)\n", err.col, size);
            abort();
        }
        return 0;
    }
    static const char *const lines[] = {
        "level=info status=200 msg=\"hi there\" took=2s size=3MB",
        "{\"a\":{\"b\":1},\"c\":[1,2],\"d\":\"x\",\"_entry\":\"e=1\"}",
        "GET /api 200 10.0.0.7:80",
        "",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        run_pipe(lq->root, str_cstr(lines[i]));
    run_pipe(lq->root, q);
    logql_free(lq);
    return 0;
}
