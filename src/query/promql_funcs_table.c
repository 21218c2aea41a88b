/*
 * promql_funcs_table.c - the PromQL function table: name, argument types, return type.
 *
 * The float functions of Prometheus 3.x, with the experimental ones the conformance suite uses
 * (the suite enables experimental functions). Native-histogram functions (histogram_avg,
 * histogram_count, ...) are listed so queries parse and type-check as in Prometheus; the
 * evaluator rejects them. The arity convention follows Prometheus' Variadic field: n_optional > 0
 * means that many trailing arguments may be left out; -1 means the last type repeats any number
 * of times, including zero (so n_args - 1 arguments are required). Lookup is a binary search
 * over the sorted table.
 */
#include <string.h>

#include "query/promql.h"

#define S PQ_TYPE_SCALAR
#define V PQ_TYPE_VECTOR
#define M PQ_TYPE_MATRIX
#define STRG PQ_TYPE_STRING

/* Sorted by name (strcmp order). */
static const pq_func_t funcs[] = {
    {"abs", {V}, 1, 0, V, false},
    {"absent", {V}, 1, 0, V, false},
    {"absent_over_time", {M}, 1, 0, V, false},
    {"acos", {V}, 1, 0, V, false},
    {"acosh", {V}, 1, 0, V, false},
    {"asin", {V}, 1, 0, V, false},
    {"asinh", {V}, 1, 0, V, false},
    {"atan", {V}, 1, 0, V, false},
    {"atanh", {V}, 1, 0, V, false},
    {"avg_over_time", {M}, 1, 0, V, false},
    {"ceil", {V}, 1, 0, V, false},
    {"changes", {M}, 1, 0, V, false},
    {"clamp", {V, S, S}, 3, 0, V, false},
    {"clamp_max", {V, S}, 2, 0, V, false},
    {"clamp_min", {V, S}, 2, 0, V, false},
    {"cos", {V}, 1, 0, V, false},
    {"cosh", {V}, 1, 0, V, false},
    {"count_over_time", {M}, 1, 0, V, false},
    {"day_of_month", {V}, 1, 1, V, false},
    {"day_of_week", {V}, 1, 1, V, false},
    {"day_of_year", {V}, 1, 1, V, false},
    {"days_in_month", {V}, 1, 1, V, false},
    {"deg", {V}, 1, 0, V, false},
    {"delta", {M}, 1, 0, V, false},
    {"deriv", {M}, 1, 0, V, false},
    {"double_exponential_smoothing", {M, S, S}, 3, 0, V, true},
    {"end", {PQ_TYPE_NONE}, 0, 0, S, true},
    {"exp", {V}, 1, 0, V, false},
    {"first_over_time", {M}, 1, 0, V, false},
    {"floor", {V}, 1, 0, V, false},
    {"histogram_avg", {V}, 1, 0, V, false},
    {"histogram_count", {V}, 1, 0, V, false},
    {"histogram_fraction", {S, S, V}, 3, 0, V, false},
    {"histogram_quantile", {S, V}, 2, 0, V, false},
    {"histogram_quantiles", {V, STRG, S, S}, 4, -1, V, true},
    {"histogram_stddev", {V}, 1, 0, V, false},
    {"histogram_stdvar", {V}, 1, 0, V, false},
    {"histogram_sum", {V}, 1, 0, V, false},
    {"hour", {V}, 1, 1, V, false},
    {"idelta", {M}, 1, 0, V, false},
    {"increase", {M}, 1, 0, V, false},
    {"info", {V, V}, 2, 1, V, true},
    {"irate", {M}, 1, 0, V, false},
    {"label_join", {V, STRG, STRG, STRG}, 4, -1, V, false},
    {"label_replace", {V, STRG, STRG, STRG, STRG}, 5, 0, V, false},
    {"last_over_time", {M}, 1, 0, V, false},
    {"ln", {V}, 1, 0, V, false},
    {"log10", {V}, 1, 0, V, false},
    {"log2", {V}, 1, 0, V, false},
    {"mad_over_time", {M}, 1, 0, V, true},
    {"max_of", {S, S}, 2, 0, S, true},
    {"max_over_time", {M}, 1, 0, V, false},
    {"min_of", {S, S}, 2, 0, S, true},
    {"min_over_time", {M}, 1, 0, V, false},
    {"minute", {V}, 1, 1, V, false},
    {"month", {V}, 1, 1, V, false},
    {"pi", {PQ_TYPE_NONE}, 0, 0, S, false},
    {"predict_linear", {M, S}, 2, 0, V, false},
    {"present_over_time", {M}, 1, 0, V, false},
    {"quantile_over_time", {S, M}, 2, 0, V, false},
    {"rad", {V}, 1, 0, V, false},
    {"range", {PQ_TYPE_NONE}, 0, 0, S, true},
    {"rate", {M}, 1, 0, V, false},
    {"resets", {M}, 1, 0, V, false},
    {"round", {V, S}, 2, 1, V, false},
    {"scalar", {V}, 1, 0, S, false},
    {"sgn", {V}, 1, 0, V, false},
    {"sin", {V}, 1, 0, V, false},
    {"sinh", {V}, 1, 0, V, false},
    {"sort", {V}, 1, 0, V, false},
    {"sort_by_label", {V, STRG}, 2, -1, V, true},
    {"sort_by_label_desc", {V, STRG}, 2, -1, V, true},
    {"sort_desc", {V}, 1, 0, V, false},
    {"sqrt", {V}, 1, 0, V, false},
    {"start", {PQ_TYPE_NONE}, 0, 0, S, true},
    {"start_timestamp", {V}, 1, 0, V, true},
    {"stddev_over_time", {M}, 1, 0, V, false},
    {"stdvar_over_time", {M}, 1, 0, V, false},
    {"step", {PQ_TYPE_NONE}, 0, 0, S, true},
    {"sum_over_time", {M}, 1, 0, V, false},
    {"tan", {V}, 1, 0, V, false},
    {"tanh", {V}, 1, 0, V, false},
    {"time", {PQ_TYPE_NONE}, 0, 0, S, false},
    {"timestamp", {V}, 1, 0, V, false},
    {"ts_of_first_over_time", {M}, 1, 0, V, true},
    {"ts_of_last_over_time", {M}, 1, 0, V, true},
    {"ts_of_max_over_time", {M}, 1, 0, V, true},
    {"ts_of_min_over_time", {M}, 1, 0, V, true},
    {"vector", {S}, 1, 0, V, false},
    {"year", {V}, 1, 1, V, false},
};

const pq_func_t *promql_func_lookup(str_t name)
{
    size_t lo = 0, hi = sizeof funcs / sizeof *funcs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = str_cmp(str_cstr(funcs[mid].name), name);
        if (c == 0)
            return &funcs[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
