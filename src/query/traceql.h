/*
 * traceql.h - TraceQL (a subset of Grafana Tempo's trace query language): lexer, parser with type
 * checks, and an evaluator over the span store.
 *
 *   traceql_lex.c    tokens, Go string escapes, Go durations (`1h30m`, `1.5s`)
 *   traceql_parse.c  recursive descent with Tempo's precedences (expr.y), validation, the AST
 *   traceql_eval.c   per-span evaluation, search over db_spans_scan, tag names and values
 *
 * Supported (see docs/API.md for the user-facing list): spanset filters `{ ... }` with `&& || !`,
 * parentheses, comparisons `= != > >= < <= =~ !~` (regexes fully anchored, PCRE2 via
 * store/labels.h), arithmetic `+ - * / % ^` and unary minus, static values (strings, ints,
 * floats, durations, true/false, nil, status and kind keywords), intrinsics (name, status,
 * statusMessage, kind, duration, rootName, rootServiceName, traceDuration, span:id, span:parentID,
 * trace:id, instrumentation:name/version and the span:/trace: scoped forms), attributes
 * (`span.x`, `resource.x`, `instrumentation.x`, unscoped `.x` = span or resource), quoted names
 * (`span."a b"`), spanset operators `&&` and `||`, and pipelines of spanset filters, aggregate
 * filters (`count() > 2`, `avg(duration) > 1s`, min/max/sum) and `select(...)`. Everything else
 * Tempo parses (structural operators, by(), coalesce(), metrics functions, parent., event.,
 * link., childCount, nestedSet*) is rejected with ERR_UNSUPPORTED and a message naming it.
 *
 * Errors are ERR_PARSE (syntax, types: Tempo's validate step) or ERR_UNSUPPORTED, both with
 * err->line/col set and a message "parse error at line 1, col 12: ...".
 */
#ifndef QUERY_TRACEQL_H
#define QUERY_TRACEQL_H

#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/json.h"
#include "base/str.h"
#include "store/db.h"
#include "store/labels.h"

/* ---- lexer ---- */

typedef enum tql_tok {
    TQL_T_EOF,
    TQL_T_ERR, /* lexer error: message in the lexer's err */
    TQL_T_LBRACE,
    TQL_T_RBRACE,
    TQL_T_LPAREN,
    TQL_T_RPAREN,
    TQL_T_COMMA,
    TQL_T_PIPE, /* | */
    TQL_T_AND,  /* && */
    TQL_T_OR,   /* || */
    TQL_T_NOT,  /* ! */
    TQL_T_EQ,   /* = */
    TQL_T_NEQ,  /* != */
    TQL_T_GT,
    TQL_T_GTE,
    TQL_T_LT,
    TQL_T_LTE,
    TQL_T_RE,  /* =~ */
    TQL_T_NRE, /* !~ (also "not sibling" between spansets) */
    TQL_T_ADD,
    TQL_T_SUB,
    TQL_T_MUL,
    TQL_T_DIV,
    TQL_T_MOD,
    TQL_T_POW,
    TQL_T_STRUCT, /* >> << ~ !> !< !>> !<< &> &< &>> &<< &~ (structural; text says which) */
    TQL_T_STRING, /* text includes the quotes */
    TQL_T_INT,
    TQL_T_FLOAT,
    TQL_T_DURATION,
    TQL_T_IDENT,     /* a keyword or bare word: true, status, count, span, ... */
    TQL_T_ATTR,      /* .name, span.name, resource."a b": text is the whole token */
    TQL_T_SCOPED_IN, /* span:name, trace:duration, ...: text is the whole token */
} tql_tok_t;

typedef struct tql_token {
    tql_tok_t kind;
    uint32_t pos, len; /* byte range in the query */
} tql_token_t;

typedef struct tql_lexer {
    str_t in;
    tql_token_t *toks; /* ends with TQL_T_EOF or TQL_T_ERR */
    size_t n;
    char err[256];
} tql_lexer_t;

/* Tokenizes in into the arena; a lexer error becomes the last token (TQL_T_ERR at its position). */
void traceql_lex(str_t in, arena_t *a, tql_lexer_t *lx);
/* Go's time.ParseDuration ("1h30m", "1.5s", "-2ms", "300us", "0"). ERR_PARSE with a message. */
int traceql_parse_go_duration(str_t s, int64_t *ns, err_t *err);
/* 1-based line and column (in bytes) of byte offset pos of in. */
void traceql_line_col(str_t in, uint32_t pos, int *line, int *col);

/* ---- AST ---- */

typedef enum tql_vtype {
    TQL_V_NIL, /* the literal nil, or a missing attribute */
    TQL_V_BOOL,
    TQL_V_INT,
    TQL_V_FLOAT,
    TQL_V_STRING,
    TQL_V_DURATION, /* ns in i */
    TQL_V_STATUS,   /* OTLP status code in i: 0 unset, 1 ok, 2 error */
    TQL_V_KIND,     /* OTLP span kind in i */
    TQL_V_OTHER,    /* an attribute of a type TraceQL cannot compare (array, map, bytes) */
} tql_vtype_t;

typedef struct tql_value {
    tql_vtype_t type;
    union {
        bool b;
        int64_t i;
        double d;
        str_t s;
    } u;
} tql_value_t;

typedef enum tql_op {
    TQL_OP_NONE,
    TQL_OP_AND,
    TQL_OP_OR,
    TQL_OP_EQ,
    TQL_OP_NEQ,
    TQL_OP_GT,
    TQL_OP_GTE,
    TQL_OP_LT,
    TQL_OP_LTE,
    TQL_OP_RE,
    TQL_OP_NRE,
    TQL_OP_ADD,
    TQL_OP_SUB,
    TQL_OP_MUL,
    TQL_OP_DIV,
    TQL_OP_MOD,
    TQL_OP_POW,
    TQL_OP_NOT,
    TQL_OP_NEG,
    TQL_OP_CONTAINS, /* internal: case-insensitive substring (the legacy `tags` search) */
} tql_op_t;

typedef enum tql_intrinsic {
    TQL_IN_NAME,
    TQL_IN_STATUS,
    TQL_IN_STATUS_MESSAGE,
    TQL_IN_KIND,
    TQL_IN_DURATION,
    TQL_IN_TRACE_DURATION,
    TQL_IN_ROOT_NAME,
    TQL_IN_ROOT_SERVICE,
    TQL_IN_SPAN_ID,
    TQL_IN_PARENT_ID,
    TQL_IN_TRACE_ID,
    TQL_IN_INSTR_NAME,
    TQL_IN_INSTR_VERSION,
} tql_intrinsic_t;

typedef enum tql_scope {
    TQL_SC_ANY, /* .x: span attribute, else resource attribute */
    TQL_SC_SPAN,
    TQL_SC_RESOURCE,
    TQL_SC_INSTR, /* instrumentation scope attributes */
} tql_scope_t;

typedef enum tql_ntype {
    TQL_N_STATIC,
    TQL_N_ATTR,
    TQL_N_INTRINSIC,
    TQL_N_BINARY,
    TQL_N_UNARY
} tql_ntype_t;

typedef struct tql_expr {
    tql_ntype_t type;
    tql_op_t op;        /* BINARY, UNARY */
    uint32_t pos;       /* byte offset in the query */
    tql_value_t v;      /* STATIC */
    tql_scope_t scope;  /* ATTR */
    str_t name;         /* ATTR: unquoted attribute name */
    tql_intrinsic_t in; /* INTRINSIC */
    struct tql_expr *l, *r;
    matcher_t *re; /* RE/NRE against a static pattern (r), compiled */
} tql_expr_t;

typedef enum tql_agg {
    TQL_AGG_COUNT,
    TQL_AGG_AVG,
    TQL_AGG_MIN,
    TQL_AGG_MAX,
    TQL_AGG_SUM
} tql_agg_t;

typedef enum tql_stage_kind { TQL_ST_FILTER, TQL_ST_AGG, TQL_ST_SELECT } tql_stage_kind_t;

typedef struct tql_stage {
    tql_stage_kind_t kind;
    tql_expr_t *filter;  /* FILTER: NULL for {} */
    tql_agg_t agg;       /* AGG */
    tql_expr_t *field;   /* AGG: NULL for count() */
    tql_op_t cmp;        /* AGG */
    tql_value_t value;   /* AGG: a number or duration */
    tql_expr_t **fields; /* SELECT */
    size_t n_fields;
} tql_stage_t;

/* A spanset pipeline without spanset operators: the unit evaluated span by span. */
typedef struct tql_leaf {
    tql_stage_t *stages;
    size_t n_stages;
    size_t index; /* in tql_query_t.leaves */
} tql_leaf_t;

typedef enum tql_set_type { TQL_SET_LEAF, TQL_SET_AND, TQL_SET_OR } tql_set_type_t;

typedef struct tql_set {
    tql_set_type_t type;
    tql_leaf_t *leaf;
    struct tql_set *l, *r;
} tql_set_t;

typedef struct tql_query {
    tql_set_t *root;
    tql_leaf_t **leaves;
    size_t n_leaves;
    bool uses_trace;     /* references traceDuration / rootName / rootServiceName: two passes */
    matcher_t **regexes; /* compiled, released by traceql_free */
    size_t n_regexes, cap_regexes;
} tql_query_t;

/* Parses and validates q. The AST lives in arena a; call traceql_free to release compiled
 * regexes. ERR_PARSE / ERR_UNSUPPORTED with a positioned message. */
int traceql_parse(str_t q, arena_t *a, tql_query_t **out, err_t *err);
void traceql_free(tql_query_t *q);
/* Parses one field: an attribute (`span.x`, `resource."a b"`, `.x`) or an intrinsic (`status`,
 * `span:name`), as the tag-values endpoints name them. Lives in a. */
int traceql_parse_field(str_t s, arena_t *a, tql_expr_t **out, err_t *err);
/* A query for the legacy `tags` search: logfmt `k=v k2="v 2"`, each a case-insensitive substring
 * match on a span or resource attribute (name and status are the intrinsics). ERR_PARSE when the
 * logfmt is malformed. Free with traceql_free. */
int traceql_from_tags(str_t tags, arena_t *a, tql_query_t **out, err_t *err);

/* ---- evaluation ---- */

/* The value of an attribute with key in a protobuf message whose KeyValue list is field
 * attrs_field (Span 9, Resource 1, InstrumentationScope 3); NIL when absent. Strings point into
 * msg. */
tql_value_t traceql_pb_attr(str_t msg, uint32_t attrs_field, str_t key);

typedef struct traceql_search_opts {
    int64_t mint_ns, maxt_ns;       /* span start window */
    size_t limit;                   /* traces */
    size_t spss;                    /* spans per spanset */
    int64_t min_dur_ns, max_dur_ns; /* trace duration bounds, 0 = none */
} traceql_search_opts_t;

typedef struct traceql_kv {
    str_t key;
    tql_value_t v;
} traceql_kv_t;

typedef struct traceql_span_out {
    uint8_t span_id[8];
    str_t name;
    int64_t start_ns, end_ns;
    traceql_kv_t *attrs;
    size_t n_attrs;
} traceql_span_out_t;

typedef struct traceql_trace_out {
    uint8_t trace_id[16];
    str_t root_service, root_name; /* root_service "<root span not yet received>" without root */
    int64_t start_ns, end_ns;
    traceql_span_out_t *spans;
    size_t n_spans;
    uint64_t matched;
} traceql_trace_out_t;

typedef struct traceql_result {
    traceql_trace_out_t *traces; /* most recent start first */
    size_t n_traces;
    uint64_t inspected_traces, inspected_spans, inspected_bytes;
} traceql_result_t;

/* Runs q over the spans starting in [mint, maxt]. Results live in a. */
int traceql_search(db_t *db, const tql_query_t *q, const traceql_search_opts_t *o, arena_t *a,
                   traceql_result_t *res, err_t *err);

/* The comparison of one span (and its trace's root/duration when uses_trace) against a filter
 * expression: exported for tests. trace_* may be 0/empty when the query does not use them. */
typedef struct traceql_span_ctx {
    const db_span_t *s;
    int64_t trace_start_ns, trace_end_ns;
    str_t root_name, root_service;
    bool has_root;
    char hex[33]; /* scratch for span:id / trace:id values */
} traceql_span_ctx_t;
bool traceql_match(const tql_expr_t *e, traceql_span_ctx_t *c);
tql_value_t traceql_eval(const tql_expr_t *e, traceql_span_ctx_t *c);

/* Tag names by scope over spans in [mint, maxt] (scope bits below), sorted and unique, at most
 * limit per scope (0 = no limit). q (may be NULL) restricts which spans contribute. */
enum { TQL_TAGS_SPAN = 1, TQL_TAGS_RESOURCE = 2, TQL_TAGS_INTRINSIC = 4 };
typedef struct traceql_tags {
    str_t *span, *resource, *intrinsic;
    size_t n_span, n_resource, n_intrinsic;
} traceql_tags_t;
int traceql_tag_names(db_t *db, const tql_query_t *q, int64_t mint_ns, int64_t maxt_ns,
                      unsigned scopes, size_t limit, arena_t *a, traceql_tags_t *out);
/* Distinct values of a tag: name is a TraceQL identifier (`span.x`, `resource.x`, `.x`, an
 * intrinsic) when scoped, else a plain attribute name looked up on spans and resources. Sorted
 * by type then value; at most limit (0 = 1000). ERR_PARSE for an identifier that is not one. */
int traceql_tag_values(db_t *db, const tql_query_t *q, str_t name, bool scoped, int64_t mint_ns,
                       int64_t maxt_ns, size_t limit, arena_t *a, tql_value_t **out, size_t *n_out,
                       err_t *err);

/* Writes v as an OTLP AnyValue JSON object ({"stringValue":"x"}, {"intValue":"3"}, ...); status
 * and kind as their TraceQL keywords, durations as Go duration strings. */
void traceql_value_json(jw_t *w, const tql_value_t *v);
/* v as TraceQL would write it, without quotes for strings (tag values), into out. */
void traceql_value_text(buf_t *out, const tql_value_t *v);
/* "string", "int", "float", "bool", "duration" or "keyword" (status, kind), for v2 tag values. */
const char *traceql_value_type(const tql_value_t *v);
/* Go's time.Duration.String(): "1.5s", "2m0s", "150ms". */
void traceql_fmt_duration(buf_t *out, int64_t ns);

#endif
