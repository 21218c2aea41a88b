/*
 * promql_format.c - prints a PromQL tree as canonical text, the way Prometheus' String() methods
 * (promql/parser/printer.go) do: `sum by (job) (rate(x{a="b"}[5m] offset 1m))`.
 *
 * Rules: number literals in Go's shortest 'f' form (Inf, -Inf, NaN spelled out), strings with
 * Go quoting, matchers sorted as strings and joined with ",", the metric name's own __name__
 * matcher left out, durations as model.Duration prints them (5m, 1h30m, 2w, 90d), `@ t` with
 * three decimals before `offset d`, and only the grouping clauses that change meaning (an empty
 * `by ()` is dropped).
 */
#include <stdlib.h>
#include <string.h>

#include "base/fmtnum.h"
#include "query/internal.h"
#include "query/promql.h"

static void put_label(buf_t *out, str_t name)
{
    if (pql_legacy_name(name, false))
        buf_put_str(out, name);
    else
        pql_quote(out, name);
}

static void put_labels(buf_t *out, const str_t *v, size_t n)
{
    buf_putc(out, '(');
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_puts(out, ", ");
        put_label(out, v[i]);
    }
    buf_putc(out, ')');
}

static void put_at_offset(buf_t *out, pq_at_t at, int64_t at_ms, int64_t offset_ms)
{
    switch (at) {
    case PQ_AT_TIME: {
        long long s = at_ms / 1000, r = at_ms % 1000;
        if (r < 0)
            r = -r;
        buf_printf(out, " @ %s%lld.%03lld", at_ms < 0 && s == 0 ? "-" : "", s, r);
        break;
    }
    case PQ_AT_START:
        buf_puts(out, " @ start()");
        break;
    case PQ_AT_END:
        buf_puts(out, " @ end()");
        break;
    default:
        break;
    }
    if (offset_ms > 0) {
        buf_puts(out, " offset ");
        pql_fmt_duration(out, offset_ms);
    } else if (offset_ms < 0) {
        buf_puts(out, " offset -");
        pql_fmt_duration(out, -offset_ms);
    }
}

static int cmp_strs(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    return strcmp(x, y);
}

static void put_selector(buf_t *out, const pq_node_t *n)
{
    buf_put_str(out, n->u.sel.name);
    size_t k = 0;
    char **strs = calloc(n->u.sel.n_matchers + 1, sizeof *strs);
    for (size_t i = 0; strs && i < n->u.sel.n_matchers; i++) {
        const matcher_t *m = &n->u.sel.matchers[i];
        if (str_eq_cstr(m->name, "__name__") && m->type == MATCH_EQ &&
            str_eq(m->value, n->u.sel.name) && m->value.len)
            continue;
        static const char *const ops[] = {"=", "!=", "=~", "!~"};
        buf_t b;
        buf_init(&b, 32);
        put_label(&b, m->name);
        buf_puts(&b, ops[m->type]);
        pql_quote(&b, m->value);
        strs[k++] = strndup((const char *)b.pos, buf_len(&b));
        buf_deinit(&b);
    }
    if (k) {
        qsort(strs, k, sizeof *strs, cmp_strs);
        buf_putc(out, '{');
        for (size_t i = 0; i < k; i++) {
            if (i)
                buf_putc(out, ',');
            buf_puts(out, strs[i]);
            free(strs[i]);
        }
        buf_putc(out, '}');
    }
    free(strs);
    if (n->kind == PQ_MATRIX_SEL) {
        buf_putc(out, '[');
        pql_fmt_duration(out, n->u.sel.range_ms);
        buf_putc(out, ']');
    }
    put_at_offset(out, n->u.sel.at, n->u.sel.at_ms, n->u.sel.offset_ms);
}

static const char *const binop_str[] = {
    "+", "-", "*", "/", "%", "^", "atan2", "==", "!=", ">", "<", ">=", "<=", "and", "or", "unless"};
static const char *const aggop_str[] = {
    "sum",    "avg",  "count",   "min",          "max",      "group",  "stddev",
    "stdvar", "topk", "bottomk", "count_values", "quantile", "limitk", "limit_ratio"};

void promql_format(buf_t *out, const pq_node_t *n)
{
    switch (n->kind) {
    case PQ_NUMBER: {
        double v = n->u.number;
        if (v != v) {
            buf_puts(out, "NaN");
        } else if (v > 1.7976931348623157e308) {
            buf_puts(out, "Inf");
        } else if (v < -1.7976931348623157e308) {
            buf_puts(out, "-Inf");
        } else {
            char tmp[FMTNUM_MAX];
            buf_append(out, tmp, fmt_float_f(tmp, v));
        }
        break;
    }
    case PQ_STRING:
        pql_quote(out, n->u.string);
        break;
    case PQ_VECTOR_SEL:
    case PQ_MATRIX_SEL:
        put_selector(out, n);
        break;
    case PQ_SUBQUERY:
        promql_format(out, n->u.subquery.expr);
        buf_putc(out, '[');
        pql_fmt_duration(out, n->u.subquery.range_ms);
        buf_putc(out, ':');
        if (n->u.subquery.step_ms)
            pql_fmt_duration(out, n->u.subquery.step_ms);
        buf_putc(out, ']');
        put_at_offset(out, n->u.subquery.at, n->u.subquery.at_ms, n->u.subquery.offset_ms);
        break;
    case PQ_CALL:
        buf_puts(out, n->u.call.func->name);
        buf_putc(out, '(');
        for (size_t i = 0; i < n->u.call.n_args; i++) {
            if (i)
                buf_puts(out, ", ");
            promql_format(out, n->u.call.args[i]);
        }
        buf_putc(out, ')');
        break;
    case PQ_AGGREGATE:
        buf_puts(out, aggop_str[n->u.agg.op]);
        if (n->u.agg.without || n->u.agg.n_grouping) {
            buf_puts(out, n->u.agg.without ? " without " : " by ");
            put_labels(out, n->u.agg.grouping, n->u.agg.n_grouping);
            buf_putc(out, ' ');
        }
        buf_putc(out, '(');
        if (n->u.agg.param) {
            promql_format(out, n->u.agg.param);
            buf_puts(out, ", ");
        }
        promql_format(out, n->u.agg.expr);
        buf_putc(out, ')');
        break;
    case PQ_BINARY:
        promql_format(out, n->u.binary.lhs);
        buf_putc(out, ' ');
        buf_puts(out, binop_str[n->u.binary.op]);
        if (n->u.binary.return_bool)
            buf_puts(out, " bool");
        if (n->u.binary.has_matching &&
            (n->u.binary.n_match_labels || n->u.binary.on ||
             n->u.binary.card == PQ_CARD_MANY_TO_ONE || n->u.binary.card == PQ_CARD_ONE_TO_MANY)) {
            buf_puts(out, n->u.binary.on ? " on " : " ignoring ");
            put_labels(out, n->u.binary.match_labels, n->u.binary.n_match_labels);
            if (n->u.binary.card == PQ_CARD_MANY_TO_ONE ||
                n->u.binary.card == PQ_CARD_ONE_TO_MANY) {
                buf_puts(out, n->u.binary.card == PQ_CARD_MANY_TO_ONE ? " group_left "
                                                                      : " group_right ");
                put_labels(out, n->u.binary.include, n->u.binary.n_include);
            }
        }
        buf_putc(out, ' ');
        promql_format(out, n->u.binary.rhs);
        break;
    case PQ_UNARY:
        buf_putc(out, n->u.unary.op);
        promql_format(out, n->u.unary.expr);
        break;
    case PQ_PAREN:
        buf_putc(out, '(');
        promql_format(out, n->u.paren.expr);
        buf_putc(out, ')');
        break;
    }
}
