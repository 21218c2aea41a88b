/*
 * internal.h - cross-file internals of src/query (included by nothing outside the folder).
 */
#ifndef QUERY_INTERNAL_H
#define QUERY_INTERNAL_H

/* ==== PromQL lexer, parser and printer internals (promql_lex.c, promql_parse.c,
 * promql_format.c) ==== */

#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/str.h"

typedef enum pql_tok {
    PQL_EOF,
    PQL_ERR, /* lexer error: pql_lexer_t.err holds the message */
    PQL_IDENT,
    PQL_METRIC_IDENT, /* identifier with a ':' */
    PQL_NUMBER,
    PQL_DURATION,
    PQL_STRING, /* text includes the quotes */
    PQL_LPAREN,
    PQL_RPAREN,
    PQL_LBRACE,
    PQL_RBRACE,
    PQL_LBRACKET,
    PQL_RBRACKET,
    PQL_COMMA,
    PQL_COLON,
    PQL_EQL,       /* = */
    PQL_EQL_REGEX, /* =~ */
    PQL_NEQ_REGEX, /* !~ */
    PQL_ADD,
    PQL_SUB,
    PQL_MUL,
    PQL_DIV,
    PQL_MOD,
    PQL_POW,
    PQL_EQLC, /* == */
    PQL_NEQ,
    PQL_LSS,
    PQL_LTE,
    PQL_GTR,
    PQL_GTE,
    PQL_AT,
} pql_tok_t;

typedef struct pql_token {
    pql_tok_t kind;
    uint32_t pos, len; /* byte range in the query */
} pql_token_t;

typedef struct pql_lexer {
    str_t in;
    pql_token_t *toks; /* ends with PQL_EOF or PQL_ERR */
    size_t n;
    char err[256];
} pql_lexer_t;

/* Tokenizes in (comments dropped) into the arena; a lexer error becomes the last token. */
void pql_lex(str_t in, arena_t *a, pql_lexer_t *lx);
/* Decodes the quoted string token raw (already validated by the lexer) into the arena. */
str_t pql_unquote(str_t raw, arena_t *a);
/* Prometheus' model.ParseDuration ("1h30m", "0"); ERR_PARSE with msg (256 bytes) on failure. */
int pql_parse_duration(str_t s, int64_t *ms, char *msg);
/* Go strconv.Quote (also used for %q in messages). */
void pql_quote(buf_t *out, str_t s);
/* Prometheus model.Duration.String(): "5m", "1h30m", "0s". ms must be >= 0. */
void pql_fmt_duration(buf_t *out, int64_t ms);
/* True for [a-zA-Z_][a-zA-Z0-9_]* (label) or, with colon, [a-zA-Z_:][a-zA-Z0-9_:]* (metric). */
bool pql_legacy_name(str_t s, bool colon);

#endif

/* ==== PromQL evaluator internals (promql_eval.c, _binop.c, _agg.c, _funcs.c) ==== */
#ifndef QUERY_INTERNAL_PQE_H
#define QUERY_INTERNAL_PQE_H

#include "query/promql.h"

/* An instant-vector series over the current steps: dense values plus a presence byte per step.
 * Label sets never change along the steps, which lets operators match series once. */
typedef struct pqe_series {
    labels_t labels;
    double *v;
    uint8_t *has;
    bool drop_name; /* __name__ is removed at the end of evaluation (delayed name removal) */
} pqe_series_t;

/* A range-vector series: raw points (stale markers dropped) covering every step's window. */
typedef struct pqe_mseries {
    labels_t labels;
    pq_point_t *pts;
    size_t n;
    bool drop_name;
} pqe_mseries_t;

typedef struct pqe_val {
    pq_type_t type;
    double *scalar;       /* SCALAR: one value per step */
    str_t string;         /* STRING */
    pqe_series_t *series; /* VECTOR */
    size_t n_series;
    pqe_mseries_t *ms; /* MATRIX */
    size_t n_ms;
    int64_t range_ms, offset_ms; /* MATRIX: the window of step t is (te - range, te] */
    bool has_at;                 /* MATRIX: te = at_ms - offset, else t - offset */
    int64_t at_ms;
} pqe_val_t;

/* Annotations collected during one query (deduplicated), shared by nested contexts. */
typedef struct pqe_ann {
    char **warns, **infos;
    size_t n_warns, n_infos;
} pqe_ann_t;

typedef struct pqe_ctx {
    db_t *db;
    arena_t *a;
    const pq_opts_t *o;
    err_t *err;
    int64_t start, step; /* steps start + i*step, i < n_steps */
    size_t n_steps;
    int64_t q_start, q_end; /* the query's own range, for @ start() / end() */
    int64_t q_step;         /* the query's step, 0 for an instant query */
    pqe_ann_t *ann;
    int64_t deadline_ns; /* 0 = none */
} pqe_ctx_t;

/* Output accumulator: series keyed by label set; adding twice at one step fails with
 * "vector cannot contain metrics with the same labelset". */
typedef struct pqe_acc {
    pqe_series_t *s;
    size_t n, cap;
    uint64_t *hkeys; /* open addressing over label hashes, arena-allocated */
    uint32_t *hidx;  /* index + 1, 0 = empty */
    size_t hcap;
} pqe_acc_t;

static inline int64_t pqe__t(const pqe_ctx_t *c, size_t i)
{
    return c->start + (int64_t)i * c->step;
}

int pqe__eval(pqe_ctx_t *c, const pq_node_t *n, pqe_val_t *out);
int pqe__check(pqe_ctx_t *c);
/* Adds "PromQL warning: <msg> (<line>:<col>)" (or info) with the position of node at. */
void pqe__annotate(pqe_ctx_t *c, bool warn, const pq_node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void pqe__acc_init(pqe_acc_t *acc);
/* 0, or ERR_INVAL when the series already has a value at step. drop flags are OR-ed. */
int pqe__acc_add(pqe_ctx_t *c, pqe_acc_t *acc, const labels_t *ls, bool drop_name, size_t step,
                 double v);
/* Index of the series for ls, created (labels copied) when new. */
size_t pqe__acc_series(pqe_ctx_t *c, pqe_acc_t *acc, const labels_t *ls);
/* Index of the series for ls, or (size_t)-1. */
size_t pqe__acc_find(const pqe_acc_t *acc, const labels_t *ls);
void pqe__acc_finish(pqe_acc_t *acc, pqe_val_t *out);
pqe_series_t *pqe__new_series(pqe_ctx_t *c, pqe_val_t *v, size_t n);
/* Allocates the value and presence arrays of one series. */
void pqe__series_alloc(pqe_ctx_t *c, pqe_series_t *s);
double *pqe__new_scalar(pqe_ctx_t *c);

/* Label set helpers; results live in the context arena. */
labels_t pqe__labels_del(pqe_ctx_t *c, const labels_t *ls, const str_t *names, size_t n,
                         bool del_name);
labels_t pqe__labels_keep(pqe_ctx_t *c, const labels_t *ls, const str_t *names, size_t n);
labels_t pqe__labels_set(pqe_ctx_t *c, const labels_t *ls, str_t name, str_t value);
/* Kahan-Neumaier step: adds inc to *sum with compensation *comp. Inline: aggregations call it
 * once per series and step. */
static inline void pqe__kahan_inc(double inc, double *sum, double *comp)
{
    double t = *sum + inc;
    if (__builtin_isinf(t))
        *comp = 0;
    else if (__builtin_fabs(*sum) >= __builtin_fabs(inc))
        *comp += (*sum - t) + inc;
    else
        *comp += (inc - t) + *sum;
    *sum = t;
}
/* Window [lo, hi) of m's points for step i. */
void pqe__window(const pqe_ctx_t *c, const pqe_val_t *m, const pqe_mseries_t *s, size_t i,
                 size_t *lo, size_t *hi, int64_t *te);

/* Evaluates a vector selector; with sample_ts the values are the samples' timestamps in seconds
 * (for timestamp()). */
int pqe__vector_selector(pqe_ctx_t *c, const pq_node_t *n, bool sample_ts, pqe_val_t *out);

/* ---- streaming: instant vectors handed out one series at a time ----
 * A sink receives each series of an instant-vector expression in the order the whole evaluation
 * would list them; s->v / s->has are the producer's scratch, valid during the call only (labels
 * live in the context arena). A non-zero return stops the stream and is passed up. Aggregations
 * consume range functions and selectors this way, so `sum by (x) (rate(m[5m]))` never holds the
 * series x steps matrix of its input. */
typedef int (*pqe_sink_fn)(pqe_ctx_t *c, void *arg, const pqe_series_t *s);

/* Evaluates instant-vector expression n series by series into sink. Selectors and range
 * functions over selectors (or subqueries) stream; anything else is evaluated whole first. */
int pqe__stream(pqe_ctx_t *c, const pq_node_t *n, pqe_sink_fn sink, void *arg);
/* A sink that appends copies of the series to a vector (arg: pqe_val_t, zeroed VECTOR first). */
int pqe__sink_collect(pqe_ctx_t *c, void *arg, const pqe_series_t *s);
/* Streams a vector selector (see pqe__vector_selector). */
int pqe__vector_selector_stream(pqe_ctx_t *c, const pq_node_t *n, bool sample_ts, pqe_sink_fn sink,
                                void *arg);
/* True when call n is a range-vector function (rate, *_over_time, ...). */
bool pqe__is_range_call(const pq_node_t *n);
/* Streams range-vector function call n (pqe__is_range_call). */
int pqe__range_call_stream(pqe_ctx_t *c, const pq_node_t *n, pqe_sink_fn sink, void *arg);

/* Matrix selector n streamed one series at a time: m receives the window parameters (range,
 * offset, @) and no series; each series with samples (stale markers dropped) is passed to fn
 * with its points, which are scratch valid during the call. */
typedef int (*pqe_msink_fn)(pqe_ctx_t *c, void *arg, const pqe_val_t *m, const pqe_mseries_t *s);
int pqe__matrix_selector_stream(pqe_ctx_t *c, const pq_node_t *n, pqe_msink_fn fn, void *arg);
/* Window parameters (range, offset, @) of matrix selector n, no series. */
void pqe__matrix_params(pqe_ctx_t *c, const pq_node_t *n, pqe_val_t *m);
/* Computes one series' values over the steps from its points and returns how many steps have
 * one; must be pure: it runs on worker threads and may only read c (o, start, step, n_steps). */
typedef size_t (*pqe_row_fn)(const pqe_ctx_t *c, void *arg, const pqe_val_t *m, const pq_point_t *p,
                             size_t n, double *v, uint8_t *has);
/* A selector streamed through a row function. */
typedef struct pqe_rows {
    const pq_node_t *sel; /* vector or matrix selector: its matchers */
    int64_t mint, maxt;   /* samples loaded */
    bool instant; /* stale markers kept; a series counts (and is kept) by its present steps, not
                     by its samples */
    pqe_row_fn row;
    void *row_arg;
    const pqe_val_t *m; /* passed to row */
    bool drop_name;     /* of the output series */
} pqe_rows_t;
/* Streams the selected series through r->row into sink, one output series per selected series
 * with samples (with present steps when instant), in selection order. Decoding and row run on
 * up to 4 threads by slices of series; each thread hands its rows to sink in turn, so sink (and the
 * sample limit) see them in selection order, one call at a time, possibly from another thread. */
int pqe__rows(pqe_ctx_t *c, const pqe_rows_t *r, pqe_sink_fn sink, void *arg);

int pqe__binary(pqe_ctx_t *c, const pq_node_t *n, pqe_val_t *out);
int pqe__aggregate(pqe_ctx_t *c, const pq_node_t *n, pqe_val_t *out);
int pqe__call(pqe_ctx_t *c, const pq_node_t *n, pqe_val_t *out);
double pqe__quantile(double q, double *vals, size_t n);
/* Series indexes ordered by group (input order within a group): the members of group g are
 * members[off[g]] .. members[off[g + 1] - 1]. grp[k] == (size_t)-1 leaves series k out. */
size_t *pqe__members(pqe_ctx_t *c, const size_t *grp, size_t n, size_t ng, size_t **off);

#endif
