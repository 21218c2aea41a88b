/*
 * promql.h - PromQL: the syntax tree, the parser and the evaluator (the float language of
 * Prometheus 3.x; native histograms are out of scope).
 *
 * promql_parse turns a query into a tree allocated in an arena, with positioned errors worded
 * like Prometheus' ("1:17: parse error: unexpected \")\""). Types are checked while parsing, so
 * an evaluator only sees well-typed trees. promql_format prints a tree back as canonical PromQL
 * (format_query, error messages, the test runner).
 *
 * The evaluator runs a tree at one instant or over a range of steps against a db_t, streaming
 * series through db_select iterators. Semantics follow Prometheus 3.x: lookback window (t-5m, t]
 * and range windows (t-r, t] are left-open, a stale NaN ends a series, rate/increase extrapolate
 * as Prometheus does, `__name__` is dropped at the end of evaluation for functions and operators
 * that change a value's meaning (delayed name removal), Kahan-Neumaier summation in sum/avg/
 * *_over_time. ../shared/specs/PROMQL-TESTS.md and the suite in ../shared/specs/promql-tests/
 * pin the behaviour down.
 *
 * Files: promql_lex.c (tokens), promql_parse.c (parser, type checks), promql_format.c (printer),
 * promql_funcs_table.c (the function table), promql_eval.c (core evaluator), promql_funcs.c
 * (function implementations), promql_agg.c (aggregations), promql_binop.c (binary operators).
 */
#ifndef QUERY_PROMQL_H
#define QUERY_PROMQL_H

#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/str.h"
#include "store/db.h"
#include "store/labels.h"

/* ---- syntax tree ---- */

typedef enum pq_type {
    PQ_TYPE_NONE = 0,
    PQ_TYPE_SCALAR,
    PQ_TYPE_VECTOR, /* instant vector */
    PQ_TYPE_MATRIX, /* range vector */
    PQ_TYPE_STRING,
} pq_type_t;

typedef enum pq_kind {
    PQ_NUMBER,     /* u.number */
    PQ_STRING,     /* u.string */
    PQ_VECTOR_SEL, /* u.sel, range_ms == 0 */
    PQ_MATRIX_SEL, /* u.sel, range_ms > 0 */
    PQ_SUBQUERY,   /* u.subquery */
    PQ_CALL,       /* u.call */
    PQ_AGGREGATE,  /* u.agg */
    PQ_BINARY,     /* u.binary */
    PQ_UNARY,      /* u.unary */
    PQ_PAREN,      /* u.paren */
} pq_kind_t;

typedef enum pq_binop {
    PQ_ADD,
    PQ_SUB,
    PQ_MUL,
    PQ_DIV,
    PQ_MOD,
    PQ_POW,
    PQ_ATAN2,
    PQ_EQL,
    PQ_NEQ,
    PQ_GTR,
    PQ_LSS,
    PQ_GTE,
    PQ_LTE,
    PQ_AND,
    PQ_OR,
    PQ_UNLESS,
} pq_binop_t;

typedef enum pq_aggop {
    PQ_AGG_SUM,
    PQ_AGG_AVG,
    PQ_AGG_COUNT,
    PQ_AGG_MIN,
    PQ_AGG_MAX,
    PQ_AGG_GROUP,
    PQ_AGG_STDDEV,
    PQ_AGG_STDVAR,
    PQ_AGG_TOPK,
    PQ_AGG_BOTTOMK,
    PQ_AGG_COUNT_VALUES,
    PQ_AGG_QUANTILE,
    PQ_AGG_LIMITK,
    PQ_AGG_LIMIT_RATIO,
} pq_aggop_t;

typedef enum pq_card {
    PQ_CARD_ONE_TO_ONE,
    PQ_CARD_MANY_TO_ONE /* group_left */,
    PQ_CARD_ONE_TO_MANY /* group_right */,
    PQ_CARD_MANY_TO_MANY /* and, or, unless */,
} pq_card_t;

/* `@` modifier: none, a fixed time, start() or end() of the query. */
typedef enum pq_at { PQ_AT_NONE, PQ_AT_TIME, PQ_AT_START, PQ_AT_END } pq_at_t;

/* Position of a node in the query: 1-based line and column of its first byte, and byte range. */
typedef struct pq_pos {
    int line, col;
    uint32_t start, end;
} pq_pos_t;

typedef struct pq_func pq_func_t;
typedef struct pq_node pq_node_t;

struct pq_node {
    pq_kind_t kind;
    pq_type_t type; /* the value type this node evaluates to */
    pq_pos_t pos;
    union {
        double number;
        str_t string; /* unquoted */
        struct {
            str_t name;          /* metric name given before the braces, or empty */
            matcher_t *matchers; /* all matchers, including __name__="name" when name is given */
            size_t n_matchers;
            int64_t range_ms;  /* > 0 for a range selector `x[5m]` */
            int64_t offset_ms; /* may be negative */
            pq_at_t at;
            int64_t at_ms; /* for PQ_AT_TIME */
        } sel;
        struct {
            pq_node_t *expr;
            int64_t range_ms;
            int64_t step_ms; /* 0 = the default (evaluation interval; 1m in the test suite) */
            int64_t offset_ms;
            pq_at_t at;
            int64_t at_ms;
        } subquery;
        struct {
            const pq_func_t *func;
            pq_node_t **args;
            size_t n_args;
        } call;
        struct {
            pq_aggop_t op;
            pq_node_t *expr;
            pq_node_t *param; /* topk/bottomk/quantile/count_values/limitk/limit_ratio, else NULL */
            str_t *grouping;  /* label names of by (...) / without (...) */
            size_t n_grouping;
            bool without;
            bool has_grouping; /* `by ()` differs from no clause only in printing */
        } agg;
        struct {
            pq_binop_t op;
            pq_node_t *lhs, *rhs;
            bool return_bool;  /* comparison with `bool` */
            bool has_matching; /* on/ignoring present */
            bool on;           /* on (...) when true, ignoring (...) when false */
            str_t *match_labels;
            size_t n_match_labels;
            pq_card_t card;
            str_t *include; /* group_left (...) / group_right (...) extra labels */
            size_t n_include;
        } binary;
        struct {
            char op; /* '-' or '+' */
            pq_node_t *expr;
        } unary;
        struct {
            pq_node_t *expr;
        } paren;
    } u;
};

/* A PromQL function: name, argument types, return type. Evaluated by promql_funcs.c. */
struct pq_func {
    const char *name;
    pq_type_t arg_types[6];
    int n_args;     /* required + optional */
    int n_optional; /* trailing optional arguments; -1 = variadic (last type repeats) */
    pq_type_t ret;
    bool experimental; /* accepted (the test suite enables experimental functions) */
};

/* The function named name, or NULL. */
const pq_func_t *promql_func_lookup(str_t name);

/*
 * Parses query into a tree in arena a. ERR_PARSE with err->msg worded like Prometheus:
 * "1:17: parse error: unexpected \")\"" (err->line/col set too). Regex matchers are compiled
 * (call promql_free to release them).
 */
int promql_parse(str_t query, arena_t *a, pq_node_t **out, err_t *err);
/* Releases compiled regexes of every selector in the tree (the arena frees the rest). */
void promql_free(pq_node_t *n);
/* Canonical PromQL text of a tree, as Prometheus' String() prints it. */
void promql_format(buf_t *out, const pq_node_t *n);

/* ---- evaluation ---- */

/* The store's sample type, so selectors read straight into result arrays. */
typedef db_sample_t pq_point_t;

typedef struct pq_series {
    labels_t labels;
    pq_point_t *points; /* one point for instant vectors */
    size_t n_points;
} pq_series_t;

typedef struct pq_result {
    pq_type_t type; /* SCALAR, VECTOR, MATRIX or STRING; a range query always gives MATRIX */
    double scalar;  /* SCALAR (at time t_ms) */
    str_t string;   /* STRING (at time t_ms) */
    int64_t t_ms;
    pq_series_t *series; /* VECTOR / MATRIX */
    size_t n_series;
    char **warnings; /* "PromQL warning: ..." annotations, NULL-terminated or NULL */
    char **infos;    /* "PromQL info: ..." */
} pq_result_t;

typedef struct pq_opts {
    int64_t lookback_ms;  /* default 5m */
    int64_t timeout_ms;   /* 0 = none; ERR_TIMEOUT "query timed out in ..." */
    uint64_t max_samples; /* samples in memory at once; ERR_TOOBIG beyond; default 50M */
    int64_t default_subquery_step_ms; /* default 1m */
} pq_opts_t;

void promql_opts_default(pq_opts_t *o);

/*
 * Evaluates n at t_ms (instant query) or at start, start+step, ... <= end (range query; the
 * result is a MATRIX, or for a scalar expression one series without labels). Everything the
 * result holds lives in arena a. Errors: ERR_INVAL for execution errors with Prometheus' wording
 * in err->msg (e.g. "vector cannot contain metrics with the same labelset"), ERR_TIMEOUT,
 * ERR_TOOBIG ("query processing would load too many samples into memory in query execution").
 */
int promql_eval_instant(db_t *db, const pq_node_t *n, int64_t t_ms, const pq_opts_t *o, arena_t *a,
                        pq_result_t *out, err_t *err);
int promql_eval_range(db_t *db, const pq_node_t *n, int64_t start_ms, int64_t end_ms,
                      int64_t step_ms, const pq_opts_t *o, arena_t *a, pq_result_t *out,
                      err_t *err);

#endif
