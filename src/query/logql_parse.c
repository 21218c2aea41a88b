/*
 * logql_parse.c - LogQL parser: tokens (logql_lex.c) -> AST (logql.h), with Loki's validation.
 *
 * Recursive descent over Loki's grammar (pkg/logql/syntax/syntax.y, condensed in
 * ../shared/specs/LOKI-API.md §3). Binary operators use precedence climbing with Prometheus'
 * table (or < and/unless < comparisons < +,- < *,/,% < ^, ^ right-associative). Syntax errors read
 * like goyacc's, "parse error at line 1, col 17: syntax error: unexpected IDENTIFIER, expecting
 * STRING", because Grafana users and Loki's own conformance corpus see those texts.
 *
 * A log range can be written with the range right after the selector or after the pipeline
 * ({a="b"}[5m] |= "x", {a="b"} |= "x" [5m], ({a="b"} |= "x")[5m]); offset follows the range and
 * unwrap comes last in the pipeline, followed only by label filters.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/logql_internal.h"

typedef struct parser {
    lq_lexer_t lx;
    lq_tok_t tok, peek;
    bool has_peek;
    logql_query_t *q;
    arena_t *a;
    err_t *err;
    int depth; /* nesting of parentheses, bounded so hostile input cannot exhaust the stack */
    jmp_buf jb;
} parser_t;

#define MAX_DEPTH 256

static void next(parser_t *p)
{
    if (p->has_peek) {
        p->tok = p->peek;
        p->has_peek = false;
    } else {
        p->tok = lq_lex_next(&p->lx);
    }
}

static lq_tok_t *peek(parser_t *p)
{
    if (!p->has_peek) {
        p->peek = lq_lex_next(&p->lx);
        p->has_peek = true;
    }
    return &p->peek;
}

static str_t ttext(const parser_t *p, const lq_tok_t *t)
{
    return (str_t){p->lx.in.ptr + t->pos, t->len};
}

static bool is_kw(const parser_t *p, const lq_tok_t *t, const char *kw)
{
    return t->kind == LQT_IDENT && str_eq_cstr(ttext(p, t), kw);
}

static const char *const k_keywords[] = {"by",
                                         "without",
                                         "bool",
                                         "on",
                                         "ignoring",
                                         "group_left",
                                         "group_right",
                                         "offset",
                                         "unwrap",
                                         "ip",
                                         "json",
                                         "logfmt",
                                         "regexp",
                                         "pattern",
                                         "unpack",
                                         "line_format",
                                         "label_format",
                                         "decolorize",
                                         "drop",
                                         "keep",
                                         "and",
                                         "or",
                                         "unless",
                                         "vector",
                                         "label_replace",
                                         "duration",
                                         "duration_seconds",
                                         "bytes",
                                         "sum",
                                         "avg",
                                         "count",
                                         "max",
                                         "min",
                                         "stddev",
                                         "stdvar",
                                         "bottomk",
                                         "topk",
                                         "sort",
                                         "sort_desc",
                                         "approx_topk",
                                         "count_over_time",
                                         "rate",
                                         "rate_counter",
                                         "bytes_over_time",
                                         "bytes_rate",
                                         "avg_over_time",
                                         "sum_over_time",
                                         "min_over_time",
                                         "max_over_time",
                                         "stdvar_over_time",
                                         "stddev_over_time",
                                         "quantile_over_time",
                                         "first_over_time",
                                         "last_over_time",
                                         "absent_over_time",
                                         NULL};

static void describe(const parser_t *p, const lq_tok_t *t, char *out, size_t cap)
{
    switch (t->kind) {
    case LQT_EOF:
        snprintf(out, cap, "$end");
        return;
    case LQT_STRING:
        snprintf(out, cap, "STRING");
        return;
    case LQT_NUMBER:
        snprintf(out, cap, "NUMBER");
        return;
    case LQT_DURATION:
        snprintf(out, cap, "DURATION");
        return;
    case LQT_BYTES:
        snprintf(out, cap, "BYTES");
        return;
    case LQT_IDENT: {
        str_t s = ttext(p, t);
        for (size_t i = 0; k_keywords[i]; i++)
            if (str_eq_cstr(s, k_keywords[i])) {
                snprintf(out, cap, "%s", k_keywords[i]);
                return;
            }
        snprintf(out, cap, "IDENTIFIER");
        return;
    }
    default: {
        str_t s = ttext(p, t);
        snprintf(out, cap, "%.*s", STR_FMT(s));
    }
    }
}

static _Noreturn void fail_at(parser_t *p, const lq_tok_t *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static _Noreturn void fail_at(parser_t *p, const lq_tok_t *t, const char *fmt, ...)
{
    char m[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    err_set_at(p->err, ERR_PARSE, t->line, t->col, "parse error at line %d, col %d: %s", t->line,
               t->col, m);
    longjmp(p->jb, 1);
}

/* Validation error without a position (Loki reports these without line/col too). */
static _Noreturn void fail_plain(parser_t *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static _Noreturn void fail_plain(parser_t *p, const char *fmt, ...)
{
    char m[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    err_set(p->err, ERR_PARSE, "parse error : %s", m);
    longjmp(p->jb, 1);
}

static _Noreturn void unexpected(parser_t *p, const char *expecting)
{
    if (p->tok.kind == LQT_ERR)
        fail_at(p, &p->tok, "syntax error: %s", p->lx.err);
    char d[64];
    describe(p, &p->tok, d, sizeof d);
    if (expecting)
        fail_at(p, &p->tok, "syntax error: unexpected %s, expecting %s", d, expecting);
    fail_at(p, &p->tok, "syntax error: unexpected %s", d);
}

static void expect(parser_t *p, lqt_t k, const char *what)
{
    if (p->tok.kind != k)
        unexpected(p, what);
    next(p);
}

static str_t expect_ident(parser_t *p)
{
    if (p->tok.kind != LQT_IDENT)
        unexpected(p, "IDENTIFIER");
    str_t s = arena_str(p->a, ttext(p, &p->tok));
    next(p);
    return s;
}

static str_t expect_string(parser_t *p)
{
    if (p->tok.kind != LQT_STRING)
        unexpected(p, "STRING");
    str_t s = p->tok.sval;
    next(p);
    return s;
}

void lq__keep_code(logql_query_t *q, void *code)
{
    if (q->n_codes == q->cap_codes) {
        size_t cap = q->cap_codes ? q->cap_codes * 2 : 8;
        void **v = arena_alloc(&q->arena, cap * sizeof *v);
        if (q->n_codes)
            memcpy(v, q->codes, q->n_codes * sizeof *v);
        q->codes = v;
        q->cap_codes = cap;
    }
    q->codes[q->n_codes++] = code;
}

void lq__keep_matchers(logql_query_t *q, matcher_t *m)
{
    if (q->n_mats == q->cap_mats) {
        size_t cap = q->cap_mats ? q->cap_mats * 2 : 8;
        matcher_t **v = arena_alloc(&q->arena, cap * sizeof *v);
        if (q->n_mats)
            memcpy(v, q->mats, q->n_mats * sizeof *v);
        q->mats = v;
        q->cap_mats = cap;
    }
    q->mats[q->n_mats++] = m;
}

static void matcher_or_fail(parser_t *p, const lq_tok_t *at, matcher_t *m, match_type_t type,
                            str_t name, str_t value)
{
    err_t e = {0};
    if (matcher_init(m, type, name, value, &e) != 0) {
        const char *msg = e.msg;
        const char *c = strstr(msg, ": ");
        fail_at(p, at, "error parsing regexp: %s: `%.*s`", c ? c + 2 : msg, STR_FMT(value));
    }
    lq__keep_matchers(p->q, m);
}

/* ---- selector ---- */

static void parse_selector(parser_t *p, lq_log_t *log)
{
    expect(p, LQT_LBRACE, "{");
    size_t cap = 4;
    log->ms = ARENA_ARRAY(p->a, matcher_t, cap);
    while (p->tok.kind != LQT_RBRACE) {
        if (log->n_ms)
            expect(p, LQT_COMMA, ", or }");
        lq_tok_t at = p->tok;
        str_t name = expect_ident(p);
        match_type_t mt;
        switch (p->tok.kind) {
        case LQT_EQ:
            mt = MATCH_EQ;
            break;
        case LQT_NEQ:
            mt = MATCH_NEQ;
            break;
        case LQT_RE:
            mt = MATCH_RE;
            break;
        case LQT_NRE:
            mt = MATCH_NRE;
            break;
        default:
            unexpected(p, "=, !=, =~ or !~");
        }
        next(p);
        str_t value = expect_string(p);
        if (log->n_ms == cap) {
            matcher_t *v = ARENA_ARRAY(p->a, matcher_t, cap * 2);
            memcpy(v, log->ms, cap * sizeof *v);
            log->ms = v;
            cap *= 2;
        }
        matcher_t *m = &log->ms[log->n_ms];
        err_t e = {0};
        if (matcher_init(m, mt, name, value, &e) != 0) {
            const char *c = strstr(e.msg, ": ");
            fail_at(p, &at, "error parsing regexp: %s: `%.*s`", c ? c + 2 : e.msg, STR_FMT(value));
        }
        lq__keep_matchers(p->q, m);
        log->n_ms++;
    }
    next(p);
    bool ok = false;
    for (size_t i = 0; i < log->n_ms && !ok; i++)
        ok = !matcher_matches_empty(&log->ms[i]);
    if (!ok)
        fail_plain(p, "queries require at least one regexp or equality matcher that does not have "
                      "an empty-compatible value. For instance, app=~\".*\" does not meet this "
                      "requirement, but app=~\".+\" will");
}

/* ---- pipeline stages ---- */

typedef struct stage_vec {
    lq_stage_t *v;
    size_t n, cap;
} stage_vec_t;

static lq_stage_t *add_stage(parser_t *p, stage_vec_t *sv, lq_stage_kind_t k)
{
    if (sv->n == sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 4;
        lq_stage_t *v = ARENA_ARRAY(p->a, lq_stage_t, cap);
        if (sv->n)
            memcpy(v, sv->v, sv->n * sizeof *v);
        sv->v = v;
        sv->cap = cap;
    }
    lq_stage_t *s = &sv->v[sv->n++];
    memset(s, 0, sizeof *s);
    s->kind = k;
    return s;
}

static bool is_line_filter_tok(lqt_t k)
{
    return k == LQT_PIPE_EQ || k == LQT_NEQ || k == LQT_PIPE_RE || k == LQT_NRE ||
           k == LQT_PIPE_PAT || k == LQT_NPAT;
}

static void parse_line_filter(parser_t *p, stage_vec_t *sv)
{
    lq_stage_t *s = add_stage(p, sv, LQS_LINE_FILTER);
    switch (p->tok.kind) {
    case LQT_PIPE_EQ:
        s->lf_op = LQ_LF_CONTAINS;
        break;
    case LQT_NEQ:
        s->lf_op = LQ_LF_NCONTAINS;
        break;
    case LQT_PIPE_RE:
        s->lf_op = LQ_LF_RE;
        break;
    case LQT_NRE:
        s->lf_op = LQ_LF_NRE;
        break;
    case LQT_PIPE_PAT:
        s->lf_op = LQ_LF_PAT;
        break;
    default:
        s->lf_op = LQ_LF_NPAT;
        break;
    }
    next(p);
    size_t cap = 2;
    s->args = ARENA_ARRAY(p->a, lq_lf_arg_t, cap);
    for (;;) {
        if (s->n_args == cap) {
            lq_lf_arg_t *v = ARENA_ARRAY(p->a, lq_lf_arg_t, cap * 2);
            memcpy(v, s->args, cap * sizeof *v);
            s->args = v;
            cap *= 2;
        }
        lq_lf_arg_t *arg = &s->args[s->n_args++];
        lq_tok_t at = p->tok;
        if (is_kw(p, &p->tok, "ip")) {
            next(p);
            expect(p, LQT_LPAREN, "(");
            str_t v = expect_string(p);
            expect(p, LQT_RPAREN, ")");
            if (s->lf_op != LQ_LF_CONTAINS && s->lf_op != LQ_LF_NCONTAINS)
                fail_at(p, &at, "ip: invalid operation: only |= and != are supported");
            char msg[256];
            arg->ip = lq__ip_parse(v, p->a, msg);
            if (!arg->ip)
                fail_at(p, &at, "ip: invalid pattern: %s", msg);
            arg->s = v;
        } else {
            arg->s = expect_string(p);
            char msg[256];
            if (s->lf_op == LQ_LF_RE || s->lf_op == LQ_LF_NRE) {
                matcher_t m;
                err_t e = {0};
                if (matcher_init(&m, MATCH_RE, STR("line"), arg->s, &e) != 0) {
                    const char *c = strstr(e.msg, ": ");
                    fail_at(p, &at, "error parsing regexp: %s: `%.*s`", c ? c + 2 : e.msg,
                            STR_FMT(arg->s));
                }
                matcher_deinit(&m);
                arg->re = lq__re_compile(arg->s, false, msg);
                if (!arg->re)
                    fail_at(p, &at, "error parsing regexp: %s: `%.*s`", msg, STR_FMT(arg->s));
                lq__keep_code(p->q, arg->re);
            } else if (s->lf_op == LQ_LF_PAT || s->lf_op == LQ_LF_NPAT) {
                arg->pat = lq__pat_parse(arg->s, p->a, msg);
                if (!arg->pat)
                    fail_at(p, &at, "%s", msg);
                if (lq__pat_n_captures(arg->pat, true) > 0)
                    fail_at(p, &at, "invalid pattern: named captures are not allowed in filters");
            }
        }
        if (!is_kw(p, &p->tok, "or"))
            break;
        /* `or` continues the filter only when followed by a string or ip(...) */
        lq_tok_t *nx = peek(p);
        if (nx->kind != LQT_STRING && !is_kw(p, nx, "ip"))
            break;
        next(p);
    }
}

static lq_lbf_t *parse_lbf_or(parser_t *p);

static lq_cmp_t cmp_of(lqt_t k)
{
    switch (k) {
    case LQT_NEQ:
        return LQ_CMP_NE;
    case LQT_GT:
        return LQ_CMP_GT;
    case LQT_GE:
        return LQ_CMP_GE;
    case LQT_LT:
        return LQ_CMP_LT;
    case LQT_LE:
        return LQ_CMP_LE;
    default:
        return LQ_CMP_EQ;
    }
}

static _Noreturn void too_deep(parser_t *p)
{
    fail_at(p, &p->tok, "syntax error: expression nested more than %d levels deep", MAX_DEPTH);
}

static lq_lbf_t *parse_lbf_primary(parser_t *p)
{
    if (p->tok.kind == LQT_LPAREN) {
        if (++p->depth > MAX_DEPTH)
            too_deep(p);
        next(p);
        lq_lbf_t *f = parse_lbf_or(p);
        expect(p, LQT_RPAREN, ")");
        p->depth--;
        return f;
    }
    lq_tok_t at = p->tok;
    str_t name = expect_ident(p);
    lqt_t op = p->tok.kind;
    if (op != LQT_EQ && op != LQT_NEQ && op != LQT_RE && op != LQT_NRE && op != LQT_CMP_EQ &&
        op != LQT_GT && op != LQT_GE && op != LQT_LT && op != LQT_LE)
        unexpected(p, "=, !=, =~, !~, ==, >, >=, < or <=");
    next(p);
    lq_lbf_t *f = ARENA_NEW(p->a, lq_lbf_t);
    f->m.name = name;
    if (is_kw(p, &p->tok, "ip")) {
        if (op != LQT_EQ && op != LQT_NEQ)
            unexpected(p, NULL);
        next(p);
        expect(p, LQT_LPAREN, "(");
        lq_tok_t sat = p->tok;
        str_t v = expect_string(p);
        expect(p, LQT_RPAREN, ")");
        char msg[256];
        f->kind = LQ_LBF_IP;
        f->cmp = op == LQT_EQ ? LQ_CMP_EQ : LQ_CMP_NE;
        f->ip = lq__ip_parse(v, p->a, msg);
        if (!f->ip)
            fail_at(p, &sat, "ip: invalid pattern: %s", msg);
        return f;
    }
    if (p->tok.kind == LQT_STRING) {
        if (op != LQT_EQ && op != LQT_NEQ && op != LQT_RE && op != LQT_NRE)
            unexpected(p, "NUMBER, DURATION or BYTES");
        match_type_t mt = op == LQT_EQ    ? MATCH_EQ
                          : op == LQT_NEQ ? MATCH_NEQ
                          : op == LQT_RE  ? MATCH_RE
                                          : MATCH_NRE;
        f->kind = LQ_LBF_STR;
        matcher_or_fail(p, &p->tok, &f->m, mt, name, p->tok.sval);
        next(p);
        return f;
    }
    if (op == LQT_RE || op == LQT_NRE)
        unexpected(p, "STRING");
    f->cmp = cmp_of(op);
    if (p->tok.kind == LQT_NUMBER) {
        if (p->tok.num_bad)
            fail_at(p, &p->tok, "unable to parse literal as a float: %.*s",
                    STR_FMT(ttext(p, &p->tok)));
        f->kind = LQ_LBF_NUM;
        f->num = p->tok.num;
    } else if (p->tok.kind == LQT_DURATION) {
        f->kind = LQ_LBF_DURATION;
        f->num = p->tok.num / 1e9;
    } else if (p->tok.kind == LQT_BYTES) {
        f->kind = LQ_LBF_BYTES;
        f->num = p->tok.num;
    } else {
        unexpected(p, "STRING, NUMBER, DURATION or BYTES");
    }
    (void)at;
    next(p);
    return f;
}

static lq_lbf_t *lbf_bin(parser_t *p, lq_lbf_kind_t k, lq_lbf_t *l, lq_lbf_t *r)
{
    lq_lbf_t *f = ARENA_NEW(p->a, lq_lbf_t);
    f->kind = k;
    f->l = l;
    f->r = r;
    return f;
}

static lq_lbf_t *parse_lbf_and(parser_t *p)
{
    lq_lbf_t *l = parse_lbf_primary(p);
    for (;;) {
        if (is_kw(p, &p->tok, "and") || p->tok.kind == LQT_COMMA) {
            next(p);
        } else if (p->tok.kind == LQT_IDENT && !is_kw(p, &p->tok, "or")) {
            /* juxtaposition: `a="x" b="y"` means and, when an operator follows the name */
            lqt_t k = peek(p)->kind;
            if (!(k == LQT_EQ || k == LQT_NEQ || k == LQT_RE || k == LQT_NRE || k == LQT_CMP_EQ ||
                  k == LQT_GT || k == LQT_GE || k == LQT_LT || k == LQT_LE))
                return l;
        } else if (p->tok.kind != LQT_LPAREN) {
            return l;
        }
        l = lbf_bin(p, LQ_LBF_AND, l, parse_lbf_primary(p));
    }
}

static lq_lbf_t *parse_lbf_or(parser_t *p)
{
    lq_lbf_t *l = parse_lbf_and(p);
    while (is_kw(p, &p->tok, "or")) {
        next(p);
        l = lbf_bin(p, LQ_LBF_OR, l, parse_lbf_and(p));
    }
    return l;
}

static lq_param_t *grow_params(parser_t *p, lq_stage_t *s, size_t *cap)
{
    if (s->n_params == *cap) {
        size_t c = *cap ? *cap * 2 : 4;
        lq_param_t *v = ARENA_ARRAY(p->a, lq_param_t, c);
        if (s->n_params)
            memcpy(v, s->params, s->n_params * sizeof *v);
        s->params = v;
        *cap = c;
    }
    lq_param_t *pr = &s->params[s->n_params++];
    memset(pr, 0, sizeof *pr);
    return pr;
}

/* JSON path `a.b[0]["k"]` -> components (array indexes as decimal text prefixed by '['). */
static bool json_path(str_t s, arena_t *a, str_t **out, size_t *n)
{
    size_t cap = 8;
    str_t *v = ARENA_ARRAY(a, str_t, cap);
    size_t k = 0, i = 0;
    while (i < s.len) {
        if (k == cap) {
            str_t *nv = ARENA_ARRAY(a, str_t, cap * 2);
            memcpy(nv, v, cap * sizeof *v);
            v = nv;
            cap *= 2;
        }
        if (s.ptr[i] == '[') {
            i++;
            if (i < s.len && s.ptr[i] == '"') {
                size_t st = ++i;
                while (i < s.len && s.ptr[i] != '"')
                    i++;
                if (i + 1 >= s.len || s.ptr[i + 1] != ']')
                    return false;
                v[k++] = (str_t){s.ptr + st, i - st};
                i += 2;
            } else {
                size_t st = i;
                while (i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9')
                    i++;
                if (i == st || i >= s.len || s.ptr[i] != ']')
                    return false;
                char *t = arena_alloc(a, i - st + 1);
                t[0] = '[';
                memcpy(t + 1, s.ptr + st, i - st);
                v[k++] = (str_t){t, i - st + 1};
                i++;
            }
            if (i < s.len && s.ptr[i] == '.')
                i++;
            continue;
        }
        size_t st = i;
        while (i < s.len && s.ptr[i] != '.' && s.ptr[i] != '[')
            i++;
        if (i == st)
            return false;
        v[k++] = (str_t){s.ptr + st, i - st};
        if (i < s.len && s.ptr[i] == '.') {
            i++;
            if (i == s.len)
                return false;
        }
    }
    *out = v;
    *n = k;
    return k > 0;
}

static void parse_extractions(parser_t *p, lq_stage_t *s, bool json)
{
    size_t cap = 0;
    while (p->tok.kind == LQT_IDENT) {
        lq_tok_t at = p->tok;
        lq_param_t *pr = grow_params(p, s, &cap);
        pr->name = expect_ident(p);
        if (p->tok.kind == LQT_EQ) {
            next(p);
            at = p->tok;
            pr->value = expect_string(p);
        } else {
            pr->value = pr->name;
        }
        if (json && !json_path(pr->value, p->a, &pr->path, &pr->n_path))
            fail_at(p, &at, "cannot parse expression [%.*s]: invalid json path",
                    STR_FMT(pr->value));
        if (p->tok.kind != LQT_COMMA)
            break;
        next(p);
    }
}

static void parse_named_matchers(parser_t *p, lq_stage_t *s)
{
    size_t cap = 0;
    for (;;) {
        lq_param_t *pr = grow_params(p, s, &cap);
        pr->name = expect_ident(p);
        lqt_t k = p->tok.kind;
        if (k == LQT_EQ || k == LQT_NEQ || k == LQT_RE || k == LQT_NRE) {
            next(p);
            lq_tok_t at = p->tok;
            str_t v = expect_string(p);
            match_type_t mt = k == LQT_EQ    ? MATCH_EQ
                              : k == LQT_NEQ ? MATCH_NEQ
                              : k == LQT_RE  ? MATCH_RE
                                             : MATCH_NRE;
            matcher_or_fail(p, &at, &pr->m, mt, pr->name, v);
            pr->has_m = true;
        }
        if (p->tok.kind != LQT_COMMA)
            break;
        next(p);
    }
}

/* Parses `| stage` after the pipe; returns false (nothing consumed past the pipe) on `unwrap`. */
static void parse_stage(parser_t *p, stage_vec_t *sv)
{
    lq_tok_t at = p->tok;
    if (p->tok.kind != LQT_IDENT && p->tok.kind != LQT_LPAREN)
        unexpected(p, "IDENTIFIER");
    if (p->tok.kind == LQT_IDENT) {
        str_t w = ttext(p, &p->tok);
        lqt_t nk = peek(p)->kind;
        bool filter_follows = nk == LQT_EQ || nk == LQT_NEQ || nk == LQT_RE || nk == LQT_NRE ||
                              nk == LQT_CMP_EQ || nk == LQT_GT || nk == LQT_GE || nk == LQT_LT ||
                              nk == LQT_LE;
        if (!filter_follows) {
            if (str_eq_cstr(w, "json")) {
                next(p);
                lq_stage_t *s = add_stage(p, sv, LQS_JSON);
                parse_extractions(p, s, true);
                return;
            }
            if (str_eq_cstr(w, "logfmt")) {
                next(p);
                lq_stage_t *s = add_stage(p, sv, LQS_LOGFMT);
                while (p->tok.kind == LQT_FLAG) {
                    str_t f = ttext(p, &p->tok);
                    if (str_eq_cstr(f, "--strict"))
                        s->strict = true;
                    else if (str_eq_cstr(f, "--keep-empty"))
                        s->keep_empty = true;
                    else
                        fail_at(p, &p->tok, "syntax error: unexpected flag %.*s", STR_FMT(f));
                    next(p);
                }
                parse_extractions(p, s, false);
                return;
            }
            if (str_eq_cstr(w, "unpack")) {
                next(p);
                add_stage(p, sv, LQS_UNPACK);
                return;
            }
            if (str_eq_cstr(w, "decolorize")) {
                next(p);
                add_stage(p, sv, LQS_DECOLORIZE);
                return;
            }
            if (str_eq_cstr(w, "regexp")) {
                next(p);
                lq_tok_t sat = p->tok;
                str_t re = expect_string(p);
                lq_stage_t *s = add_stage(p, sv, LQS_REGEXP);
                char msg[256];
                matcher_t m;
                err_t e = {0};
                if (matcher_init(&m, MATCH_RE, STR("line"), re, &e) != 0) {
                    if (strstr(e.msg, "same name"))
                        fail_at(p, &sat, "invalid regexp: duplicate extracted label name");
                    const char *c = strstr(e.msg, ": ");
                    fail_at(p, &sat, "error parsing regexp: %s: `%.*s`", c ? c + 2 : e.msg,
                            STR_FMT(re));
                }
                matcher_deinit(&m);
                s->re = lq__re_compile(re, false, msg);
                if (!s->re)
                    fail_at(p, &sat, "error parsing regexp: %s: `%.*s`", msg, STR_FMT(re));
                lq__keep_code(p->q, s->re);
                uint32_t cnt = 0, esz = 0;
                PCRE2_SPTR tbl;
                pcre2_pattern_info(s->re, PCRE2_INFO_CAPTURECOUNT, &cnt);
                pcre2_pattern_info(s->re, PCRE2_INFO_NAMECOUNT, &esz);
                uint32_t nn = esz;
                pcre2_pattern_info(s->re, PCRE2_INFO_NAMEENTRYSIZE, &esz);
                pcre2_pattern_info(s->re, PCRE2_INFO_NAMETABLE, &tbl);
                s->n_re_names = cnt + 1;
                s->re_names = ARENA_ARRAY(p->a, str_t, cnt + 1);
                for (uint32_t i = 0; i < nn; i++) {
                    const uint8_t *e2 = tbl + (size_t)i * esz;
                    uint32_t g = (uint32_t)e2[0] << 8 | e2[1];
                    if (g <= cnt)
                        s->re_names[g] = arena_str(p->a, str_cstr((const char *)e2 + 2));
                }
                if (nn == 0)
                    fail_at(p, &sat, "at least one named capture must be supplied");
                return;
            }
            if (str_eq_cstr(w, "pattern")) {
                next(p);
                lq_tok_t sat = p->tok;
                str_t pat = expect_string(p);
                lq_stage_t *s = add_stage(p, sv, LQS_PATTERN);
                char msg[256];
                s->pat = lq__pat_parse(pat, p->a, msg);
                if (!s->pat)
                    fail_at(p, &sat, "%s", msg);
                if (lq__pat_n_captures(s->pat, false) == 0)
                    fail_at(p, &sat, "at least one capture is required");
                return;
            }
            if (str_eq_cstr(w, "line_format")) {
                next(p);
                lq_tok_t sat = p->tok;
                str_t t = expect_string(p);
                lq_stage_t *s = add_stage(p, sv, LQS_LINE_FORMAT);
                err_t e = {0};
                if (lq_tmpl_compile(t, p->a, p->q, &s->tmpl, &e) != 0)
                    fail_at(p, &sat, "%s", e.msg);
                return;
            }
            if (str_eq_cstr(w, "label_format")) {
                next(p);
                lq_stage_t *s = add_stage(p, sv, LQS_LABEL_FORMAT);
                size_t cap = 0;
                for (;;) {
                    lq_tok_t nat = p->tok;
                    lq_param_t *pr = grow_params(p, s, &cap);
                    pr->name = expect_ident(p);
                    expect(p, LQT_EQ, "=");
                    if (p->tok.kind == LQT_STRING) {
                        lq_tok_t sat = p->tok;
                        pr->value = expect_string(p);
                        pr->is_tmpl = true;
                        err_t e = {0};
                        if (lq_tmpl_compile(pr->value, p->a, p->q, &pr->tmpl, &e) != 0)
                            fail_at(p, &sat, "%s", e.msg);
                    } else {
                        pr->value = expect_ident(p);
                    }
                    for (size_t i = 0; i + 1 < s->n_params; i++)
                        if (str_eq(s->params[i].name, pr->name))
                            fail_at(p, &nat, "multiple label name '%.*s' appears in formatting",
                                    STR_FMT(pr->name));
                    if (p->tok.kind != LQT_COMMA)
                        break;
                    next(p);
                }
                return;
            }
            if (str_eq_cstr(w, "drop") || str_eq_cstr(w, "keep")) {
                next(p);
                lq_stage_t *s = add_stage(p, sv, str_eq_cstr(w, "drop") ? LQS_DROP : LQS_KEEP);
                parse_named_matchers(p, s);
                return;
            }
        }
    }
    (void)at;
    lq_stage_t *s = add_stage(p, sv, LQS_LABEL_FILTER);
    s->lbf = parse_lbf_or(p);
}

/* Stages until something that is not `|`/line filter; stops before `| unwrap`. */
static void parse_stages(parser_t *p, stage_vec_t *sv)
{
    for (;;) {
        if (is_line_filter_tok(p->tok.kind)) {
            parse_line_filter(p, sv);
            continue;
        }
        if (p->tok.kind != LQT_PIPE)
            return;
        if (is_kw(p, peek(p), "unwrap"))
            return;
        next(p);
        parse_stage(p, sv);
    }
}

static int64_t parse_range(parser_t *p)
{
    expect(p, LQT_LBRACKET, "[");
    if (p->tok.kind != LQT_DURATION)
        unexpected(p, "DURATION");
    int64_t ns = (int64_t)p->tok.num;
    next(p);
    expect(p, LQT_RBRACKET, "]");
    return ns;
}

static void parse_unwrap(parser_t *p, lq_expr_t *e)
{
    expect(p, LQT_PIPE, "|");
    next(p); /* unwrap */
    e->unwrap = true;
    if ((is_kw(p, &p->tok, "duration") || is_kw(p, &p->tok, "duration_seconds") ||
         is_kw(p, &p->tok, "bytes")) &&
        peek(p)->kind == LQT_LPAREN) {
        e->conv = is_kw(p, &p->tok, "bytes") ? LQ_CONV_BYTES : LQ_CONV_DURATION;
        next(p);
        next(p);
        e->unwrap_label = expect_ident(p);
        expect(p, LQT_RPAREN, ")");
    } else {
        e->unwrap_label = expect_ident(p);
    }
    size_t cap = 0;
    while (p->tok.kind == LQT_PIPE) {
        next(p);
        if (e->n_post == cap) {
            size_t c = cap ? cap * 2 : 4;
            lq_lbf_t **v = ARENA_ARRAY(p->a, lq_lbf_t *, c);
            if (e->n_post)
                memcpy(v, e->post, e->n_post * sizeof *v);
            e->post = v;
            cap = c;
        }
        e->post[e->n_post++] = parse_lbf_or(p);
    }
}

/* The log-range argument of a range aggregation. */
static void parse_log_range(parser_t *p, lq_expr_t *e)
{
    stage_vec_t sv = {0};
    bool have_range = false;
    if (p->tok.kind == LQT_LPAREN) {
        next(p);
        parse_selector(p, &e->log);
        parse_stages(p, &sv);
        if (p->tok.kind == LQT_PIPE)
            parse_unwrap(p, e);
        expect(p, LQT_RPAREN, ")");
    } else {
        parse_selector(p, &e->log);
        if (p->tok.kind == LQT_LBRACKET) {
            e->range_ns = parse_range(p);
            have_range = true;
            if (is_kw(p, &p->tok, "offset")) {
                next(p);
                if (p->tok.kind != LQT_DURATION)
                    unexpected(p, "DURATION");
                e->offset_ns = (int64_t)p->tok.num;
                next(p);
            }
        }
        parse_stages(p, &sv);
        if (p->tok.kind == LQT_PIPE)
            parse_unwrap(p, e);
    }
    if (!have_range) {
        e->range_ns = parse_range(p);
        if (is_kw(p, &p->tok, "offset")) {
            next(p);
            if (p->tok.kind != LQT_DURATION)
                unexpected(p, "DURATION");
            e->offset_ns = (int64_t)p->tok.num;
            next(p);
        }
    }
    e->log.stages = sv.v;
    e->log.n_stages = sv.n;
}

static void parse_grouping(parser_t *p, lq_grouping_t *g)
{
    g->present = true;
    g->without = is_kw(p, &p->tok, "without");
    next(p);
    expect(p, LQT_LPAREN, "(");
    size_t cap = 4;
    g->names = ARENA_ARRAY(p->a, str_t, cap);
    while (p->tok.kind != LQT_RPAREN) {
        if (g->n) {
            expect(p, LQT_COMMA, ", or )");
            if (p->tok.kind == LQT_RPAREN)
                break;
        }
        if (g->n == cap) {
            str_t *v = ARENA_ARRAY(p->a, str_t, cap * 2);
            memcpy(v, g->names, cap * sizeof *v);
            g->names = v;
            cap *= 2;
        }
        g->names[g->n++] = expect_ident(p);
    }
    next(p);
}

static const struct {
    const char *name;
    lq_rop_t op;
} k_rops[] = {
    {"count_over_time", LQ_R_COUNT},     {"rate", LQ_R_RATE},
    {"rate_counter", LQ_R_RATE_COUNTER}, {"bytes_over_time", LQ_R_BYTES},
    {"bytes_rate", LQ_R_BYTES_RATE},     {"avg_over_time", LQ_R_AVG},
    {"sum_over_time", LQ_R_SUM},         {"min_over_time", LQ_R_MIN},
    {"max_over_time", LQ_R_MAX},         {"stdvar_over_time", LQ_R_STDVAR},
    {"stddev_over_time", LQ_R_STDDEV},   {"quantile_over_time", LQ_R_QUANTILE},
    {"first_over_time", LQ_R_FIRST},     {"last_over_time", LQ_R_LAST},
    {"absent_over_time", LQ_R_ABSENT},
};

static const struct {
    const char *name;
    lq_vop_t op;
} k_vops[] = {
    {"sum", LQ_V_SUM},
    {"avg", LQ_V_AVG},
    {"count", LQ_V_COUNT},
    {"max", LQ_V_MAX},
    {"min", LQ_V_MIN},
    {"stddev", LQ_V_STDDEV},
    {"stdvar", LQ_V_STDVAR},
    {"bottomk", LQ_V_BOTTOMK},
    {"topk", LQ_V_TOPK},
    {"sort", LQ_V_SORT},
    {"sort_desc", LQ_V_SORT_DESC},
    {"approx_topk", LQ_V_APPROX_TOPK},
};

static lq_expr_t *parse_expr(parser_t *p, int min_prec);
static lq_expr_t *parse_primary1(parser_t *p, lq_tok_t at);

static lq_expr_t *new_expr(parser_t *p, lq_kind_t k, const lq_tok_t *at)
{
    lq_expr_t *e = ARENA_NEW(p->a, lq_expr_t);
    e->kind = k;
    e->line = at->line;
    e->col = at->col;
    return e;
}

static lq_expr_t *parse_range_agg(parser_t *p, lq_rop_t op, const lq_tok_t *at)
{
    lq_expr_t *e = new_expr(p, LQ_RANGE, at);
    e->rop = op;
    str_t opname = ttext(p, at);
    next(p);
    expect(p, LQT_LPAREN, "(");
    if (op == LQ_R_QUANTILE) {
        if (p->tok.kind != LQT_NUMBER)
            unexpected(p, "NUMBER");
        if (p->tok.num_bad)
            fail_at(p, &p->tok, "unable to parse literal as a float: %.*s",
                    STR_FMT(ttext(p, &p->tok)));
        e->param = p->tok.num;
        next(p);
        expect(p, LQT_COMMA, ",");
    }
    parse_log_range(p, e);
    expect(p, LQT_RPAREN, ")");
    if (is_kw(p, &p->tok, "by") || is_kw(p, &p->tok, "without"))
        parse_grouping(p, &e->grouping);
    bool unwrap_op = !(op == LQ_R_COUNT || op == LQ_R_RATE || op == LQ_R_BYTES ||
                       op == LQ_R_BYTES_RATE || op == LQ_R_ABSENT);
    if (e->unwrap && (op == LQ_R_COUNT || op == LQ_R_BYTES || op == LQ_R_BYTES_RATE))
        fail_plain(p, "invalid aggregation %.*s with unwrap", STR_FMT(opname));
    if (!e->unwrap && unwrap_op)
        fail_plain(p, "invalid aggregation %.*s without unwrap", STR_FMT(opname));
    if (e->grouping.present &&
        (op == LQ_R_COUNT || op == LQ_R_RATE || op == LQ_R_BYTES || op == LQ_R_BYTES_RATE ||
         op == LQ_R_SUM || op == LQ_R_ABSENT || op == LQ_R_RATE_COUNTER))
        fail_plain(p, "grouping not allowed for %.*s aggregation", STR_FMT(opname));
    return e;
}

static double expect_number(parser_t *p)
{
    bool neg = false;
    if (p->tok.kind == LQT_SUB || p->tok.kind == LQT_ADD) {
        neg = p->tok.kind == LQT_SUB;
        next(p);
    }
    if (p->tok.kind != LQT_NUMBER)
        unexpected(p, "NUMBER");
    if (p->tok.num_bad)
        fail_at(p, &p->tok, "unable to parse literal as a float: %.*s", STR_FMT(ttext(p, &p->tok)));
    double v = p->tok.num;
    next(p);
    return neg ? -v : v;
}

static lq_expr_t *parse_vector_agg(parser_t *p, lq_vop_t op, const lq_tok_t *at)
{
    lq_expr_t *e = new_expr(p, LQ_VAGG, at);
    e->vop = op;
    str_t opname = ttext(p, at);
    next(p);
    if (is_kw(p, &p->tok, "by") || is_kw(p, &p->tok, "without"))
        parse_grouping(p, &e->grouping);
    expect(p, LQT_LPAREN, "(");
    bool has_param = op == LQ_V_TOPK || op == LQ_V_BOTTOMK || op == LQ_V_APPROX_TOPK;
    if (has_param) {
        lq_tok_t pat = p->tok;
        lq_expr_t *first = parse_expr(p, 0);
        if (p->tok.kind != LQT_COMMA)
            fail_at(p, &pat, "syntax error: %.*s: parameter required", STR_FMT(opname));
        next(p);
        if (first->kind != LQ_LIT)
            fail_at(p, &pat, "syntax error: unexpected parameter for %.*s: invalid parameter",
                    STR_FMT(opname));
        double k = first->value;
        if (k != (double)(int64_t)k || k <= 0)
            fail_at(p, &pat, "invalid parameter %.*s(%g,", STR_FMT(opname), k);
        e->param = k;
    }
    e->inner = parse_expr(p, 0);
    expect(p, LQT_RPAREN, ")");
    if (is_kw(p, &p->tok, "by") || is_kw(p, &p->tok, "without")) {
        if (e->grouping.present)
            unexpected(p, NULL);
        parse_grouping(p, &e->grouping);
    }
    if (e->inner->kind == LQ_LOG)
        fail_at(p, at, "syntax error: unexpected log query in vector aggregation");
    if (op == LQ_V_APPROX_TOPK && e->grouping.present)
        fail_plain(p, "grouping not allowed for approx_topk aggregation");
    if ((op == LQ_V_SORT || op == LQ_V_SORT_DESC) && e->grouping.present)
        fail_plain(p, "grouping not allowed for %.*s aggregation", STR_FMT(opname));
    return e;
}

static lq_expr_t *parse_primary(parser_t *p)
{
    lq_tok_t at = p->tok;
    if (++p->depth > MAX_DEPTH)
        too_deep(p);
    lq_expr_t *e = parse_primary1(p, at);
    p->depth--;
    return e;
}

static lq_expr_t *parse_primary1(parser_t *p, lq_tok_t at)
{
    switch (p->tok.kind) {
    case LQT_LPAREN: {
        next(p);
        lq_expr_t *e = parse_expr(p, 0);
        expect(p, LQT_RPAREN, ")");
        return e;
    }
    case LQT_LBRACE: {
        lq_expr_t *e = new_expr(p, LQ_LOG, &at);
        parse_selector(p, &e->log);
        stage_vec_t sv = {0};
        parse_stages(p, &sv);
        e->log.stages = sv.v;
        e->log.n_stages = sv.n;
        if (p->tok.kind == LQT_PIPE) /* unwrap in a log query */
            unexpected(p, NULL);
        if (p->tok.kind == LQT_LBRACKET)
            fail_at(p, &p->tok, "syntax error: unexpected RANGE");
        return e;
    }
    case LQT_NUMBER:
    case LQT_ADD:
    case LQT_SUB: {
        lq_expr_t *e = new_expr(p, LQ_LIT, &at);
        e->value = expect_number(p);
        return e;
    }
    case LQT_IDENT: {
        str_t w = ttext(p, &p->tok);
        for (size_t i = 0; i < sizeof k_rops / sizeof k_rops[0]; i++)
            if (str_eq_cstr(w, k_rops[i].name) && peek(p)->kind == LQT_LPAREN)
                return parse_range_agg(p, k_rops[i].op, &at);
        for (size_t i = 0; i < sizeof k_vops / sizeof k_vops[0]; i++)
            if (str_eq_cstr(w, k_vops[i].name))
                return parse_vector_agg(p, k_vops[i].op, &at);
        if (str_eq_cstr(w, "vector")) {
            lq_expr_t *e = new_expr(p, LQ_VECTOR, &at);
            next(p);
            expect(p, LQT_LPAREN, "(");
            e->value = expect_number(p);
            expect(p, LQT_RPAREN, ")");
            return e;
        }
        if (str_eq_cstr(w, "label_replace")) {
            lq_expr_t *e = new_expr(p, LQ_LABEL_REPLACE, &at);
            next(p);
            expect(p, LQT_LPAREN, "(");
            e->inner = parse_expr(p, 0);
            expect(p, LQT_COMMA, ",");
            e->dst = expect_string(p);
            expect(p, LQT_COMMA, ",");
            e->repl = expect_string(p);
            expect(p, LQT_COMMA, ",");
            e->src = expect_string(p);
            expect(p, LQT_COMMA, ",");
            lq_tok_t rat = p->tok;
            e->regex = expect_string(p);
            expect(p, LQT_RPAREN, ")");
            matcher_t *m = ARENA_NEW(p->a, matcher_t);
            matcher_or_fail(p, &rat, m, MATCH_RE, e->src, e->regex);
            e->re = m;
            if (!label_name_valid(e->dst))
                fail_at(p, &at, "invalid destination label name in label_replace(): %.*s",
                        STR_FMT(e->dst));
            return e;
        }
        unexpected(p, NULL);
    }
    default:
        unexpected(p, NULL);
    }
}

static int bop_prec(const parser_t *p, const lq_tok_t *t, lq_bop_t *op)
{
    switch (t->kind) {
    case LQT_ADD:
        *op = LQ_B_ADD;
        return 4;
    case LQT_SUB:
        *op = LQ_B_SUB;
        return 4;
    case LQT_MUL:
        *op = LQ_B_MUL;
        return 5;
    case LQT_DIV:
        *op = LQ_B_DIV;
        return 5;
    case LQT_MOD:
        *op = LQ_B_MOD;
        return 5;
    case LQT_POW:
        *op = LQ_B_POW;
        return 6;
    case LQT_CMP_EQ:
        *op = LQ_B_EQ;
        return 3;
    case LQT_NEQ:
        *op = LQ_B_NE;
        return 3;
    case LQT_GT:
        *op = LQ_B_GT;
        return 3;
    case LQT_GE:
        *op = LQ_B_GE;
        return 3;
    case LQT_LT:
        *op = LQ_B_LT;
        return 3;
    case LQT_LE:
        *op = LQ_B_LE;
        return 3;
    case LQT_IDENT:
        if (is_kw(p, t, "or")) {
            *op = LQ_B_OR;
            return 1;
        }
        if (is_kw(p, t, "and")) {
            *op = LQ_B_AND;
            return 2;
        }
        if (is_kw(p, t, "unless")) {
            *op = LQ_B_UNLESS;
            return 2;
        }
        return 0;
    default:
        return 0;
    }
}

static str_t *parse_label_list(parser_t *p, size_t *n)
{
    expect(p, LQT_LPAREN, "(");
    size_t cap = 4;
    str_t *v = ARENA_ARRAY(p->a, str_t, cap);
    *n = 0;
    while (p->tok.kind != LQT_RPAREN) {
        if (*n)
            expect(p, LQT_COMMA, ", or )");
        if (*n == cap) {
            str_t *nv = ARENA_ARRAY(p->a, str_t, cap * 2);
            memcpy(nv, v, cap * sizeof *v);
            v = nv;
            cap *= 2;
        }
        v[(*n)++] = expect_ident(p);
    }
    next(p);
    return v;
}

static bool is_cmp(lq_bop_t op) { return op >= LQ_B_EQ && op <= LQ_B_LE; }
static bool is_set(lq_bop_t op) { return op <= LQ_B_UNLESS; }

static lq_expr_t *parse_expr(parser_t *p, int min_prec)
{
    lq_expr_t *lhs = parse_primary(p);
    for (;;) {
        lq_bop_t op;
        int prec = bop_prec(p, &p->tok, &op);
        if (!prec || prec < min_prec)
            return lhs;
        lq_tok_t at = p->tok;
        next(p);
        lq_expr_t *e = new_expr(p, LQ_BIN, &at);
        e->bop = op;
        e->line = lhs->line;
        e->col = lhs->col;
        if (is_kw(p, &p->tok, "bool")) {
            if (!is_cmp(op))
                unexpected(p, NULL);
            e->bool_mod = true;
            next(p);
        }
        if (is_kw(p, &p->tok, "on") || is_kw(p, &p->tok, "ignoring")) {
            e->has_on = true;
            e->on = is_kw(p, &p->tok, "on");
            next(p);
            e->on_names = parse_label_list(p, &e->n_on);
            if (is_kw(p, &p->tok, "group_left") || is_kw(p, &p->tok, "group_right")) {
                if (is_set(op))
                    fail_at(p, &p->tok, "syntax error: no grouping allowed for \"%s\" operation",
                            op == LQ_B_OR    ? "or"
                            : op == LQ_B_AND ? "and"
                                             : "unless");
                e->card = is_kw(p, &p->tok, "group_left") ? 1 : 2;
                next(p);
                if (p->tok.kind == LQT_LPAREN)
                    e->inc_names = parse_label_list(p, &e->n_inc);
            }
        }
        int next_min = op == LQ_B_POW ? prec : prec + 1;
        e->lhs = lhs;
        e->rhs = parse_expr(p, next_min);
        if (e->lhs->kind == LQ_LOG || e->rhs->kind == LQ_LOG)
            fail_at(p, &at, "syntax error: unexpected log query in binary operation");
        if (is_set(op) && (e->lhs->kind == LQ_LIT || e->rhs->kind == LQ_LIT))
            fail_plain(p, "unexpected literal for %s leg of logical/set binary operation (%s)",
                       e->lhs->kind == LQ_LIT ? "left" : "right",
                       op == LQ_B_OR    ? "or"
                       : op == LQ_B_AND ? "and"
                                        : "unless");
        lhs = e;
    }
}

int logql_parse(str_t q, logql_query_t **out, err_t *err)
{
    logql_query_t *lq = calloc(1, sizeof *lq);
    if (!lq)
        return err_set(err, ERR_NOMEM, "out of memory");
    arena_init(&lq->arena, 4096);
    parser_t *p = arena_calloc(&lq->arena, 1, sizeof *p);
    p->q = lq;
    p->a = &lq->arena;
    p->err = err;
    lq_lex_init(&p->lx, q, p->a);
    if (setjmp(p->jb)) {
        logql_free(lq);
        return ERR_PARSE;
    }
    next(p);
    if (p->tok.kind == LQT_EOF)
        fail_plain(p, "syntax error: unexpected $end");
    lq_expr_t *e = parse_expr(p, 0);
    if (p->tok.kind != LQT_EOF)
        unexpected(p, NULL);
    lq->root = e;
    *out = lq;
    return 0;
}

void logql_free(logql_query_t *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->n_codes; i++)
        pcre2_code_free(q->codes[i]);
    for (size_t i = 0; i < q->n_mats; i++)
        matcher_deinit(q->mats[i]);
    arena_deinit(&q->arena);
    free(q);
}
