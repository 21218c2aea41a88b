/*
 * logql_internal.h - cross-file internals of the LogQL implementation (logql_*.c only).
 */
#ifndef QUERY_LOGQL_INTERNAL_H
#define QUERY_LOGQL_INTERNAL_H

#include "query/logql.h"

typedef enum lqt {
    LQT_EOF,
    LQT_ERR,
    LQT_IDENT,
    LQT_STRING,
    LQT_NUMBER,
    LQT_DURATION,
    LQT_BYTES,
    LQT_LBRACE,
    LQT_RBRACE,
    LQT_LPAREN,
    LQT_RPAREN,
    LQT_LBRACKET,
    LQT_RBRACKET,
    LQT_COMMA,
    LQT_EQ,       /* = */
    LQT_NEQ,      /* != */
    LQT_RE,       /* =~ */
    LQT_NRE,      /* !~ */
    LQT_PIPE_EQ,  /* |= */
    LQT_PIPE_RE,  /* |~ */
    LQT_PIPE_PAT, /* |> */
    LQT_NPAT,     /* !> */
    LQT_PIPE,     /* | */
    LQT_CMP_EQ,   /* == */
    LQT_GT,
    LQT_GE,
    LQT_LT,
    LQT_LE,
    LQT_ADD,
    LQT_SUB,
    LQT_MUL,
    LQT_DIV,
    LQT_MOD,
    LQT_POW,
    LQT_FLAG, /* --strict, --keep-empty */
} lqt_t;

typedef struct lq_tok {
    lqt_t kind;
    uint32_t pos, len; /* byte range in the query */
    int line, col;
    str_t sval;   /* STRING: unquoted value (arena) */
    double num;   /* NUMBER; DURATION: ns; BYTES: bytes */
    bool num_bad; /* NUMBER that strconv.ParseFloat refuses (0x1A, 0b1) */
} lq_tok_t;

typedef struct lq_lexer {
    str_t in;
    size_t pos;
    int line, col0; /* current line and the byte offset where it starts */
    arena_t *a;
    char err[256];
} lq_lexer_t;

void lq_lex_init(lq_lexer_t *lx, str_t in, arena_t *a);
/* Next token; LQT_ERR with lx->err on a lexical error. */
lq_tok_t lq_lex_next(lq_lexer_t *lx);
/* Prometheus model duration ("5m", "1h30m", "1d") in ns; -1 when malformed. */
int lq_parse_prom_duration(str_t s, int64_t *ns);
/* Go strconv.Quote of s into out. */
void lq_quote(buf_t *out, str_t s);

/* Registers a compiled regex / matchers with the query for logql_free. */
void lq__keep_code(logql_query_t *q, void *code);
void lq__keep_matchers(logql_query_t *q, matcher_t *m);
/* Compiles re (PCRE2, UTF) unanchored; NULL with a Go-like message in msg (256 bytes). */
void *lq__re_compile(str_t re, bool anchored, char *msg);
/* True if the compiled regex matches somewhere in s. */
bool lq__re_match(const void *code, str_t s);

/* One line-filter stage on a line (the evaluator runs leading filters before building labels). */
bool lq__line_filter(const lq_stage_t *st, str_t line);
/* Number of leading line-filter stages. */
static inline size_t lq__n_leading_filters(const lq_log_t *l)
{
    size_t k = 0;
    while (k < l->n_stages && l->stages[k].kind == LQS_LINE_FILTER)
        k++;
    return k;
}

/* ip("...") filters and pattern expressions (logql_pipe.c). */
lq_ipf_t *lq__ip_parse(str_t s, arena_t *a, char *msg);
bool lq__ip_line_match(const lq_ipf_t *f, str_t line);
lq_pat_t *lq__pat_parse(str_t s, arena_t *a, char *msg);
size_t lq__pat_n_captures(const lq_pat_t *p, bool named_only);

#endif
