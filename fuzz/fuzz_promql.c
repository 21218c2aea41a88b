/*
 * fuzz_promql.c - the PromQL parser and printer on arbitrary query text.
 *
 * Beyond "no crash, no UB, no leak" (compiled regexes are released on every error path), it
 * asserts that a successful parse has a type, that its canonical text parses again, and that
 * format -> parse -> format is a fixed point. The corpus seeds are every query of the
 * conformance suite plus the error cases of the unit tests.
 */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "query/promql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena_t a;
    arena_init(&a, 0);
    pq_node_t *n;
    err_t err = {0};
    if (promql_parse((str_t){(const char *)data, size}, &a, &n, &err) == 0) {
        assert(n && n->type != PQ_TYPE_NONE);
        buf_t b1 = BUF_INIT, b2 = BUF_INIT;
        promql_format(&b1, n);
        pq_node_t *n2;
        int rc = promql_parse(buf_str(&b1), &a, &n2, &err);
        assert(rc == 0);
        assert(n2->type == n->type);
        promql_format(&b2, n2);
        assert(buf_len(&b1) == buf_len(&b2) && memcmp(b1.pos, b2.pos, buf_len(&b1)) == 0);
        promql_free(n2);
        promql_free(n);
        buf_deinit(&b1);
        buf_deinit(&b2);
    } else {
        assert(err.code == ERR_PARSE && strstr(err.msg, "parse error: ") != NULL);
    }
    arena_deinit(&a);
    return 0;
}
