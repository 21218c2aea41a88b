/*
 * logql.h - LogQL: Loki's query language over the log store (parser, pipeline, evaluator).
 *
 * Files: logql_lex.c (tokens), logql_parse.c (grammar -> AST), logql_pipe.c (the log pipeline:
 * line filters, parsers, label filters, formatters, unwrap), logql_tmpl.c (the Go text/template
 * subset of line_format/label_format), logql_eval.c (log selection and metric evaluation:
 * range aggregations, vector aggregations, binary operators). The grammar and semantics follow
 * grafana/loki pkg/logql/syntax/syntax.y and pkg/logql (see ../shared/specs/LOKI-API.md §3-4).
 *
 * A parsed query owns an arena (AST, strings) and the compiled regexes; logql_free releases both.
 * Timestamps are ns throughout, as Loki's are.
 */
#ifndef QUERY_LOGQL_H
#define QUERY_LOGQL_H

#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/str.h"
#include "store/db.h"
#include "store/labels.h"

/* ---- AST ---- */

typedef enum lq_lf_op {
    LQ_LF_CONTAINS,  /* |= */
    LQ_LF_NCONTAINS, /* != */
    LQ_LF_RE,        /* |~ */
    LQ_LF_NRE,       /* !~ */
    LQ_LF_PAT,       /* |> */
    LQ_LF_NPAT,      /* !> */
} lq_lf_op_t;

typedef struct lq_ipf lq_ipf_t; /* a parsed ip("...") pattern */
typedef struct lq_pat lq_pat_t; /* a compiled pattern (<_> literals <name>) */
typedef struct lq_tmpl lq_tmpl_t;

/* One operand of a line filter ("a" or ip("...")); `or` chains make several. */
typedef struct lq_lf_arg {
    str_t s;
    void *re;      /* pcre2_code * for |~ !~ */
    lq_pat_t *pat; /* for |> !> */
    lq_ipf_t *ip;  /* ip("...") */
} lq_lf_arg_t;

typedef enum lq_lbf_kind {
    LQ_LBF_AND,
    LQ_LBF_OR,
    LQ_LBF_STR,      /* name (=|!=|=~|!~) "value" */
    LQ_LBF_NUM,      /* name op number */
    LQ_LBF_DURATION, /* name op 5s */
    LQ_LBF_BYTES,    /* name op 5MB */
    LQ_LBF_IP,       /* name (=|!=) ip("...") */
} lq_lbf_kind_t;

typedef enum lq_cmp { LQ_CMP_EQ, LQ_CMP_NE, LQ_CMP_GT, LQ_CMP_GE, LQ_CMP_LT, LQ_CMP_LE } lq_cmp_t;

typedef struct lq_lbf lq_lbf_t;
struct lq_lbf {
    lq_lbf_kind_t kind;
    lq_lbf_t *l, *r; /* AND/OR */
    matcher_t m;     /* STR; m.name is the label for the others too */
    lq_cmp_t cmp;
    double num; /* NUM/DURATION (seconds)/BYTES */
    lq_ipf_t *ip;
};

typedef enum lq_stage_kind {
    LQS_LINE_FILTER,
    LQS_JSON,
    LQS_LOGFMT,
    LQS_REGEXP,
    LQS_PATTERN,
    LQS_UNPACK,
    LQS_LABEL_FILTER,
    LQS_LINE_FORMAT,
    LQS_LABEL_FORMAT,
    LQS_DECOLORIZE,
    LQS_DROP,
    LQS_KEEP,
} lq_stage_kind_t;

/* json/logfmt extraction `name="path"`, label_format `dst=src` / `dst="{{tmpl}}"`. */
typedef struct lq_param {
    str_t name;
    str_t value;
    bool is_tmpl;    /* label_format with a quoted template */
    lq_tmpl_t *tmpl; /* label_format template */
    str_t *path;     /* json: path components */
    size_t n_path;
    matcher_t m; /* drop/keep with a matcher (has_m) */
    bool has_m;
} lq_param_t;

typedef struct lq_stage {
    lq_stage_kind_t kind;
    /* LINE_FILTER */
    lq_lf_op_t lf_op;
    lq_lf_arg_t *args;
    size_t n_args;
    /* parsers, label_format, drop/keep */
    lq_param_t *params;
    size_t n_params;
    bool strict, keep_empty; /* logfmt flags */
    void *re;                /* regexp */
    str_t *re_names;         /* regexp: group number -> name (empty when unnamed) */
    size_t n_re_names;
    lq_pat_t *pat;   /* pattern */
    lq_lbf_t *lbf;   /* LABEL_FILTER */
    lq_tmpl_t *tmpl; /* LINE_FORMAT */
} lq_stage_t;

typedef enum lq_conv { LQ_CONV_NONE, LQ_CONV_DURATION, LQ_CONV_BYTES } lq_conv_t;

typedef struct lq_log {
    matcher_t *ms;
    size_t n_ms;
    lq_stage_t *stages;
    size_t n_stages;
} lq_log_t;

typedef enum lq_kind {
    LQ_LOG,           /* a log query: selector + pipeline */
    LQ_RANGE,         /* count_over_time(... [5m]) */
    LQ_VAGG,          /* sum by (x) (...) */
    LQ_BIN,           /* a + b */
    LQ_LIT,           /* 1.5 */
    LQ_VECTOR,        /* vector(1) */
    LQ_LABEL_REPLACE, /* label_replace(v, dst, repl, src, re) */
} lq_kind_t;

typedef enum lq_rop {
    LQ_R_COUNT,
    LQ_R_RATE,
    LQ_R_RATE_COUNTER,
    LQ_R_BYTES,
    LQ_R_BYTES_RATE,
    LQ_R_AVG,
    LQ_R_SUM,
    LQ_R_MIN,
    LQ_R_MAX,
    LQ_R_STDVAR,
    LQ_R_STDDEV,
    LQ_R_QUANTILE,
    LQ_R_FIRST,
    LQ_R_LAST,
    LQ_R_ABSENT,
} lq_rop_t;

typedef enum lq_vop {
    LQ_V_SUM,
    LQ_V_AVG,
    LQ_V_COUNT,
    LQ_V_MAX,
    LQ_V_MIN,
    LQ_V_STDDEV,
    LQ_V_STDVAR,
    LQ_V_BOTTOMK,
    LQ_V_TOPK,
    LQ_V_SORT,
    LQ_V_SORT_DESC,
    LQ_V_APPROX_TOPK,
} lq_vop_t;

typedef enum lq_bop {
    LQ_B_OR,
    LQ_B_AND,
    LQ_B_UNLESS,
    LQ_B_EQ,
    LQ_B_NE,
    LQ_B_GT,
    LQ_B_GE,
    LQ_B_LT,
    LQ_B_LE,
    LQ_B_ADD,
    LQ_B_SUB,
    LQ_B_MUL,
    LQ_B_DIV,
    LQ_B_MOD,
    LQ_B_POW,
} lq_bop_t;

typedef struct lq_grouping {
    bool present, without;
    str_t *names;
    size_t n;
} lq_grouping_t;

typedef struct lq_expr lq_expr_t;
struct lq_expr {
    lq_kind_t kind;
    int line, col; /* where the expression starts */
    lq_log_t log;  /* LOG, RANGE */
    /* RANGE */
    lq_rop_t rop;
    int64_t range_ns, offset_ns;
    bool unwrap;
    str_t unwrap_label;
    lq_conv_t conv;
    lq_lbf_t **post; /* label filters after unwrap */
    size_t n_post;
    double param; /* quantile */
    lq_grouping_t grouping;
    /* VAGG */
    lq_vop_t vop;
    lq_expr_t *inner;
    /* BIN */
    lq_bop_t bop;
    lq_expr_t *lhs, *rhs;
    bool bool_mod;
    bool has_on, on; /* on (true) / ignoring (false) */
    str_t *on_names;
    size_t n_on;
    int card; /* 0 one-to-one, 1 group_left, 2 group_right */
    str_t *inc_names;
    size_t n_inc;
    /* LIT, VECTOR */
    double value;
    /* LABEL_REPLACE */
    str_t dst, repl, src, regex;
    void *re;
};

typedef struct logql_query {
    arena_t arena;
    lq_expr_t *root;
    void **codes; /* compiled pcre2 codes and matchers to release */
    size_t n_codes, cap_codes;
    matcher_t **mats;
    size_t n_mats, cap_mats;
} logql_query_t;

/* Parses q. On success *out owns everything (logql_free). On failure err holds Loki's message,
 * "parse error at line 1, col 17: syntax error: unexpected ..." or the validation error. */
int logql_parse(str_t q, logql_query_t **out, err_t *err);
void logql_free(logql_query_t *q);
static inline bool logql_is_log(const logql_query_t *q) { return q->root->kind == LQ_LOG; }

/* ---- pipeline ---- */

typedef enum lq_lcat { LQ_CAT_STREAM, LQ_CAT_META, LQ_CAT_PARSED } lq_lcat_t;

typedef struct lq_label {
    str_t name, value;
    uint8_t cat;
    bool del;
} lq_label_t;

/* The per-entry working state (Loki's LabelsBuilder): labels by category, the current line and the
 * error. Scratch memory is an arena reset per entry. */
typedef struct lq_builder {
    lq_label_t *v;
    size_t n, cap;
    str_t line;
    int64_t ts_ns;
    str_t err, err_details;
    arena_t *a; /* per entry, reset by the caller */
} lq_builder_t;

/* Loads stream labels and metadata (clashes -> name_extracted) into b. */
void lq_builder_reset(lq_builder_t *b, const labels_t *stream, const labels_t *meta, str_t line,
                      int64_t ts_ns);
/* Value of a live label; ok false when absent. */
str_t lq_builder_get(const lq_builder_t *b, str_t name, bool *ok);
void lq_builder_set(lq_builder_t *b, str_t name, str_t value, lq_lcat_t cat);
void lq_builder_del(lq_builder_t *b, str_t name);
/* The live labels (plus __error__/__error_details__) sorted, in b->a. */
labels_t lq_builder_labels(lq_builder_t *b);
/* Runs stages [from, to) on b; false when the entry is filtered out. */
bool lq_pipeline_run(const lq_stage_t *st, size_t n, lq_builder_t *b);
/* Runs one label filter tree (also used after unwrap). */
bool lq_label_filter(const lq_lbf_t *f, lq_builder_t *b);

/* Go time.ParseDuration into seconds; msg (128 bytes) gets Go's error text on failure. */
int lq_parse_go_duration(str_t s, double *secs, char *msg);
/* go-humanize ParseBytes; msg gets the error text on failure. */
int lq_parse_bytes(str_t s, double *bytes, char *msg);
/* strconv.ParseFloat (as Loki's unwrap/number filters use it); msg gets the error text. */
int lq_parse_float(str_t s, double *v, char *msg);

/* ---- templates (logql_tmpl.c) ---- */

/* Compiles a Go text/template subset; ERR_PARSE with Go's message in err. */
int lq_tmpl_compile(str_t src, arena_t *a, logql_query_t *q, lq_tmpl_t **out, err_t *err);
/* Renders against the builder's labels (and __line__/__timestamp__) into out; false on a
 * runtime error (message in out). */
bool lq_tmpl_exec(const lq_tmpl_t *t, lq_builder_t *b, buf_t *out);

/* ---- evaluation ---- */

typedef struct lq_point {
    int64_t t_ns;
    double v;
} lq_point_t;

typedef struct lq_series {
    labels_t labels;
    lq_point_t *pts;
    size_t n;
} lq_series_t;

typedef enum lq_rtype { LQ_RES_STREAMS, LQ_RES_VECTOR, LQ_RES_MATRIX, LQ_RES_SCALAR } lq_rtype_t;

typedef struct lq_entry {
    int64_t ts_ns;
    str_t line;
} lq_entry_t;

typedef struct lq_stream {
    labels_t labels;
    lq_entry_t *v;
    size_t n, cap;
} lq_stream_t;

typedef struct lq_stats {
    uint64_t lines_scanned, bytes_scanned, lines_returned;
    double exec_s;
} lq_stats_t;

typedef struct lq_result {
    lq_rtype_t type;
    lq_series_t
        *series; /* VECTOR (one point each) / MATRIX, sorted by labels (VECTOR: query order) */
    size_t n_series;
    double scalar; /* SCALAR (instant); a range query over a scalar gives a MATRIX */
    int64_t scalar_t_ns;
    lq_stream_t *streams; /* STREAMS, sorted by label string */
    size_t n_streams;
    lq_stats_t stats;
} lq_result_t;

typedef struct lq_opts {
    uint32_t limit; /* log queries: max entries (across streams) */
    bool backward;
    int64_t interval_ns; /* log queries: one entry per interval, 0 = all */
    size_t max_series;   /* metric queries: 0 = unlimited */
    int64_t deadline_ns; /* 0 = none (monotonic clock) */
} lq_opts_t;

/* Log query over [start, end) (end exclusive, as Loki); metric query at start, start+step, ...
 * <= end (instant: start == end, step 0). Result memory is in a. Errors: ERR_INVAL with Loki's
 * message (pipeline errors, matching errors), ERR_TIMEOUT, or the store's error. */
int logql_exec(db_t *db, const logql_query_t *q, int64_t start_ns, int64_t end_ns, int64_t step_ns,
               const lq_opts_t *o, arena_t *a, lq_result_t *out, err_t *err);

#endif
