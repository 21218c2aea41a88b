/*
 * promql_parse.c - the PromQL parser: tokens (promql_lex.c) to a syntax tree, then a type check.
 *
 * Recursive descent with precedence climbing, mirroring the precedence table of Prometheus'
 * yacc grammar (lowest first): or; and unless; == != <= < >= >; + -; * / % atan2; ^ (right
 * associative). Unary +/- bind like * (so -2^2 is -(2^2)), and a sign on a number literal is
 * folded into it. The postfix modifiers [range], [range:step], offset and @ bind tightest.
 * Aggregations take by/without before or after their argument list.
 *
 * Parsing stops at the first syntax error (longjmp back to promql_parse, which releases the
 * regexes compiled so far). The type check then runs over the finished tree in the order of
 * Prometheus' checkAST, so error messages and positions match Prometheus' for the common cases:
 * "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector".
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "query/internal.h"
#include "query/promql.h"

typedef struct matcher_list {
    matcher_t *m;
    size_t n;
    struct matcher_list *next;
} matcher_list_t;

typedef struct parser {
    pql_lexer_t lx;
    size_t i;
    arena_t *a;
    str_t q;
    err_t *err;
    jmp_buf jb;
    matcher_list_t *compiled;
} parser_t;

enum { KW_NONE, KW_AGG, KW_OP, KW_KEY };

static const char *const aggr_names[] = {
    "sum",    "avg",  "count",   "min",          "max",      "group",  "stddev",
    "stdvar", "topk", "bottomk", "count_values", "quantile", "limitk", "limit_ratio"};
static const char *const keywords[] = {"offset",     "by",          "without", "on",    "ignoring",
                                       "group_left", "group_right", "bool",    "start", "end"};

static bool word_is(str_t w, const char *kw)
{
    return w.len == strlen(kw) && strncasecmp(w.ptr, kw, w.len) == 0;
}

static int keyword_kind(str_t w, int *index)
{
    for (int i = 0; i < (int)(sizeof aggr_names / sizeof *aggr_names); i++)
        if (word_is(w, aggr_names[i])) {
            *index = i;
            return KW_AGG;
        }
    static const char *const ops[] = {"and", "or", "unless", "atan2"};
    for (int i = 0; i < 4; i++)
        if (word_is(w, ops[i])) {
            *index = i;
            return KW_OP;
        }
    for (int i = 0; i < (int)(sizeof keywords / sizeof *keywords); i++)
        if (word_is(w, keywords[i])) {
            *index = i;
            return KW_KEY;
        }
    return KW_NONE;
}

static const pql_token_t *cur(const parser_t *p) { return &p->lx.toks[p->i]; }
static const pql_token_t *peek(const parser_t *p, size_t k)
{
    size_t j = p->i + k < p->lx.n ? p->i + k : p->lx.n - 1;
    return &p->lx.toks[j];
}
static str_t tok_text(const parser_t *p, const pql_token_t *t)
{
    return (str_t){p->q.ptr + t->pos, t->len};
}
static void advance(parser_t *p)
{
    if (p->i + 1 < p->lx.n)
        p->i++;
}

static bool is_kw(const parser_t *p, const pql_token_t *t, const char *kw)
{
    return t->kind == PQL_IDENT && word_is(tok_text(p, t), kw);
}

static void pos_of(str_t q, uint32_t off, int *line, int *col)
{
    int l = 1;
    long last = -1;
    for (uint32_t i = 0; i < off && i < q.len; i++)
        if (q.ptr[i] == '\n') {
            l++;
            last = (long)i;
        }
    *line = l;
    *col = (int)((long)off - last);
}

__attribute__((noreturn, format(printf, 3, 4))) static void fail(parser_t *p, uint32_t off,
                                                                 const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line, col;
    pos_of(p->q, off, &line, &col);
    err_set_at(p->err, ERR_PARSE, line, col, "%d:%d: parse error: %s", line, col, msg);
    longjmp(p->jb, 1);
}

static const char *quoted(parser_t *p, str_t s)
{
    buf_t b;
    buf_init(&b, s.len + 8);
    pql_quote(&b, s);
    char *r = arena_strndup(p->a, (const char *)b.pos, buf_len(&b));
    buf_deinit(&b);
    return r;
}

/* Prometheus' Item.desc(): how an unexpected token is named in messages. */
static const char *tok_desc(parser_t *p, const pql_token_t *t)
{
    str_t s = tok_text(p, t);
    int idx;
    switch (t->kind) {
    case PQL_EOF:
        return "end of input";
    case PQL_IDENT:
    case PQL_METRIC_IDENT:
        switch (t->kind == PQL_IDENT ? keyword_kind(s, &idx) : KW_NONE) {
        case KW_AGG:
            return arena_sprintf(p->a, "<aggr:%.*s>", STR_FMT(s));
        case KW_OP:
            return arena_sprintf(p->a, "<op:%.*s>", STR_FMT(s));
        case KW_KEY:
            return arena_sprintf(p->a, "<%.*s>", STR_FMT(s));
        default:
            return arena_sprintf(p->a, "%s %s",
                                 t->kind == PQL_IDENT ? "identifier" : "metric identifier",
                                 quoted(p, s));
        }
    case PQL_NUMBER:
    case PQL_DURATION:
    case PQL_STRING: {
        const char *what = t->kind == PQL_NUMBER     ? "number"
                           : t->kind == PQL_DURATION ? "duration"
                                                     : "string";
        if (s.len > 10) {
            size_t k = 0, runes = 0;
            while (k < s.len && runes < 10) {
                k++;
                while (k < s.len && ((unsigned char)s.ptr[k] & 0xC0) == 0x80)
                    k++;
                runes++;
            }
            return arena_sprintf(p->a, "%s %s...", what, quoted(p, (str_t){s.ptr, k}));
        }
        return arena_sprintf(p->a, "%s %s", what, quoted(p, s));
    }
    case PQL_ADD:
    case PQL_SUB:
    case PQL_MUL:
    case PQL_DIV:
    case PQL_MOD:
    case PQL_POW:
    case PQL_EQLC:
    case PQL_NEQ:
    case PQL_LSS:
    case PQL_LTE:
    case PQL_GTR:
    case PQL_GTE:
    case PQL_AT:
    case PQL_EQL_REGEX:
    case PQL_NEQ_REGEX:
        return arena_sprintf(p->a, "<op:%.*s>", STR_FMT(s));
    default:
        return quoted(p, s);
    }
}

/* "unexpected X[ in context][, expected what]", or the lexer's error when X is one. */
__attribute__((noreturn)) static void unexpected(parser_t *p, const char *context,
                                                 const char *expected)
{
    const pql_token_t *t = cur(p);
    if (t->kind == PQL_ERR)
        fail(p, t->pos, "%s", p->lx.err);
    fail(p, t->pos, "unexpected %s%s%s%s%s", tok_desc(p, t), context ? " in " : "",
         context ? context : "", expected ? ", expected " : "", expected ? expected : "");
}

static pq_node_t *new_node(parser_t *p, pq_kind_t k, uint32_t start, uint32_t end)
{
    pq_node_t *n = ARENA_NEW(p->a, pq_node_t);
    n->kind = k;
    pos_of(p->q, start, &n->pos.line, &n->pos.col);
    n->pos.start = start;
    n->pos.end = end;
    return n;
}

static uint32_t prev_end(const parser_t *p)
{
    const pql_token_t *t = &p->lx.toks[p->i ? p->i - 1 : 0];
    return t->pos + t->len;
}

/* Go strconv.ParseInt(s, 0, 64), then ParseFloat, as Prometheus reads number literals. */
static double parse_number(parser_t *p, const pql_token_t *t)
{
    str_t s = tok_text(p, t);
    char *buf = arena_alloc(p->a, s.len + 1);
    size_t k = 0;
    bool under = false;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] == '_')
            under = true;
        else
            buf[k++] = s.ptr[i];
    }
    buf[k] = '\0';
    bool hex = k > 2 && buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X');
    bool isint = k > 0;
    for (size_t i = hex ? 2 : 0; i < k; i++)
        if (!(hex ? strchr("0123456789abcdefABCDEF", buf[i]) : strchr("0123456789", buf[i])))
            isint = false;
    if (isint && !hex && k > 1 && buf[0] == '0') {
        for (size_t i = 1; i < k; i++)
            if (buf[i] > '7')
                isint = false;
    }
    if (isint) {
        errno = 0;
        char *e;
        unsigned long long v = strtoull(buf, &e, hex ? 16 : (k > 1 && buf[0] == '0') ? 8 : 10);
        if (errno == 0 && *e == '\0' && v <= (unsigned long long)INT64_MAX)
            return (double)(int64_t)v;
    }
    const char *why = NULL;
    double f = 0;
    if (under || (hex && !strpbrk(buf, "pP"))) {
        why = "invalid syntax";
    } else {
        errno = 0;
        char *e;
        f = strtod(buf, &e);
        if (*e != '\0' || k == 0)
            why = "invalid syntax";
        else if (errno == ERANGE && isinf(f))
            why = "value out of range";
    }
    if (why)
        fail(p, t->pos, "error parsing number: strconv.ParseFloat: parsing %s: %s", quoted(p, s),
             why);
    return f;
}

/* A duration token: DURATION, or NUMBER of seconds. */
static int64_t parse_dur(parser_t *p, const pql_token_t *t)
{
    if (t->kind == PQL_DURATION) {
        char msg[256];
        int64_t ms;
        if (pql_parse_duration(tok_text(p, t), &ms, msg) < 0)
            fail(p, t->pos, "%s", msg);
        return ms;
    }
    double v = parse_number(p, t);
    if (!isfinite(v) || fabs(v) >= 9.2e9)
        fail(p, t->pos, "duration out of range");
    return (int64_t)llround(v * 1000.0);
}

static bool is_dur_tok(const pql_token_t *t)
{
    return t->kind == PQL_NUMBER || t->kind == PQL_DURATION;
}

static pq_node_t *parse_expr(parser_t *p, int minprec);

static bool is_arith(const pql_token_t *t)
{
    return t->kind == PQL_ADD || t->kind == PQL_SUB || t->kind == PQL_MUL || t->kind == PQL_DIV ||
           t->kind == PQL_MOD || t->kind == PQL_POW;
}

/* ---- selectors ---- */

static void add_matcher(parser_t *p, matcher_t **ms, size_t *n, size_t *cap, match_type_t type,
                        str_t name, str_t value, uint32_t at)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 4;
        matcher_t *m = ARENA_ARRAY(p->a, matcher_t, c);
        if (*n)
            memcpy(m, *ms, *n * sizeof *m);
        *ms = m;
        *cap = c; /* the old array's compiled regexes moved with the copy */
    }
    err_t e = {0};
    if (matcher_init(&(*ms)[*n], type, name, value, &e) < 0)
        fail(p, at, "%s", e.msg);
    (*n)++;
}

static pq_node_t *parse_selector(parser_t *p, const pql_token_t *name_tok)
{
    uint32_t start = name_tok ? name_tok->pos : cur(p)->pos;
    matcher_t *ms = NULL;
    size_t n = 0, cap = 0;
    str_t name = name_tok ? arena_str(p->a, tok_text(p, name_tok)) : STR_NULL;
    /* every matcher goes into a list so a later syntax error can free compiled regexes */
    matcher_list_t *ml = ARENA_NEW(p->a, matcher_list_t);
    ml->next = p->compiled;
    p->compiled = ml;
    if (cur(p)->kind == PQL_LBRACE) {
        advance(p);
        while (cur(p)->kind != PQL_RBRACE) {
            const pql_token_t *lt = cur(p);
            if (lt->kind != PQL_IDENT && lt->kind != PQL_STRING)
                unexpected(p, "label matching", "identifier or \"}\"");
            str_t lname = lt->kind == PQL_STRING ? pql_unquote(tok_text(p, lt), p->a)
                                                 : arena_str(p->a, tok_text(p, lt));
            advance(p);
            const pql_token_t *op = cur(p);
            if (lt->kind == PQL_STRING && (op->kind == PQL_COMMA || op->kind == PQL_RBRACE)) {
                /* {"metric.name"} */
                add_matcher(p, &ms, &n, &cap, MATCH_EQ, str_cstr("__name__"), lname, lt->pos);
            } else {
                match_type_t mt;
                switch (op->kind) {
                case PQL_EQL:
                    mt = MATCH_EQ;
                    break;
                case PQL_NEQ:
                    mt = MATCH_NEQ;
                    break;
                case PQL_EQL_REGEX:
                    mt = MATCH_RE;
                    break;
                case PQL_NEQ_REGEX:
                    mt = MATCH_NRE;
                    break;
                default:
                    unexpected(p, "label matching", "label matching operator");
                }
                advance(p);
                if (cur(p)->kind != PQL_STRING)
                    unexpected(p, "label matching", "string");
                str_t val = pql_unquote(tok_text(p, cur(p)), p->a);
                add_matcher(p, &ms, &n, &cap, mt, lname, val, lt->pos);
                ml->m = ms;
                ml->n = n;
                advance(p);
            }
            ml->m = ms;
            ml->n = n;
            if (cur(p)->kind == PQL_COMMA)
                advance(p);
            else if (cur(p)->kind != PQL_RBRACE)
                unexpected(p, "label matching", "\",\" or \"}\"");
        }
        advance(p);
    }
    if (name.len) {
        add_matcher(p, &ms, &n, &cap, MATCH_EQ, str_cstr("__name__"), name, start);
        ml->m = ms;
        ml->n = n;
    }
    pq_node_t *node = new_node(p, PQ_VECTOR_SEL, start, prev_end(p));
    node->u.sel.name = name;
    node->u.sel.matchers = ms;
    node->u.sel.n_matchers = n;
    return node;
}

/* ---- grouping labels, aggregations, calls ---- */

static bool label_tok(parser_t *p, const pql_token_t *t, str_t *out)
{
    if (t->kind == PQL_IDENT) {
        *out = arena_str(p->a, tok_text(p, t));
        return true;
    }
    if (t->kind == PQL_STRING) {
        *out = pql_unquote(tok_text(p, t), p->a);
        return true;
    }
    return false;
}

static void parse_labels(parser_t *p, bool required, str_t **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (cur(p)->kind != PQL_LPAREN) {
        if (required)
            unexpected(p, "grouping opts", "\"(\"");
        return;
    }
    advance(p);
    size_t cap = 0;
    while (cur(p)->kind != PQL_RPAREN) {
        str_t l;
        if (!label_tok(p, cur(p), &l))
            unexpected(p, "grouping opts", "label");
        if (*n_out == cap) {
            cap = cap ? cap * 2 : 4;
            str_t *v = ARENA_ARRAY(p->a, str_t, cap);
            if (*n_out)
                memcpy(v, *out, *n_out * sizeof *v);
            *out = v;
        }
        (*out)[(*n_out)++] = l;
        advance(p);
        if (cur(p)->kind == PQL_COMMA)
            advance(p);
        else if (cur(p)->kind != PQL_RPAREN)
            unexpected(p, "grouping opts", "\",\" or \")\"");
    }
    advance(p);
}

static void parse_grouping(parser_t *p, pq_node_t *n)
{
    n->u.agg.without = is_kw(p, cur(p), "without");
    n->u.agg.has_grouping = true;
    advance(p);
    parse_labels(p, true, &n->u.agg.grouping, &n->u.agg.n_grouping);
}

static pq_node_t **parse_args(parser_t *p, size_t *n_out)
{
    pq_node_t **args = NULL;
    size_t n = 0, cap = 0;
    advance(p); /* ( */
    while (cur(p)->kind != PQL_RPAREN) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            pq_node_t **v = ARENA_ARRAY(p->a, pq_node_t *, cap);
            if (n)
                memcpy(v, args, n * sizeof *v);
            args = v;
        }
        args[n++] = parse_expr(p, 1);
        if (cur(p)->kind == PQL_COMMA) {
            uint32_t comma = cur(p)->pos;
            advance(p);
            if (cur(p)->kind == PQL_RPAREN)
                fail(p, comma, "trailing commas not allowed in function call args");
        } else if (cur(p)->kind != PQL_RPAREN) {
            unexpected(p, NULL, NULL);
        }
    }
    advance(p);
    *n_out = n;
    return args;
}

static pq_node_t *parse_aggregate(parser_t *p, int op)
{
    uint32_t start = cur(p)->pos;
    pq_node_t *n = new_node(p, PQ_AGGREGATE, start, start);
    n->u.agg.op = (pq_aggop_t)op;
    advance(p);
    if (is_kw(p, cur(p), "by") || is_kw(p, cur(p), "without"))
        parse_grouping(p, n);
    if (cur(p)->kind != PQL_LPAREN)
        unexpected(p, "aggregation", "\"(\"");
    size_t na;
    pq_node_t **args = parse_args(p, &na);
    if (!n->u.agg.has_grouping && (is_kw(p, cur(p), "by") || is_kw(p, cur(p), "without")))
        parse_grouping(p, n);
    if (na == 0)
        fail(p, start, "no arguments for aggregate expression provided");
    bool param = op == PQ_AGG_TOPK || op == PQ_AGG_BOTTOMK || op == PQ_AGG_COUNT_VALUES ||
                 op == PQ_AGG_QUANTILE || op == PQ_AGG_LIMITK || op == PQ_AGG_LIMIT_RATIO;
    size_t want = param ? 2 : 1;
    if (na != want)
        fail(p, start,
             "wrong number of arguments for aggregate expression provided, expected %zu, got %zu",
             want, na);
    n->u.agg.param = param ? args[0] : NULL;
    n->u.agg.expr = args[want - 1];
    n->pos.end = prev_end(p);
    return n;
}

static pq_node_t *parse_call(parser_t *p)
{
    const pql_token_t *nt = cur(p);
    str_t name = tok_text(p, nt);
    const pq_func_t *f = promql_func_lookup(name);
    advance(p);
    size_t na;
    pq_node_t **args = parse_args(p, &na);
    if (!f)
        fail(p, nt->pos, "unknown function with name %s", quoted(p, name));
    pq_node_t *n = new_node(p, PQ_CALL, nt->pos, prev_end(p));
    n->u.call.func = f;
    n->u.call.args = args;
    n->u.call.n_args = na;
    return n;
}

/* ---- postfix modifiers ---- */

static int64_t *offset_slot(pq_node_t *e)
{
    switch (e->kind) {
    case PQ_VECTOR_SEL:
    case PQ_MATRIX_SEL:
        return &e->u.sel.offset_ms;
    case PQ_SUBQUERY:
        return &e->u.subquery.offset_ms;
    default:
        return NULL;
    }
}

static void parse_offset(parser_t *p, pq_node_t *e)
{
    advance(p);
    bool neg = false;
    if (cur(p)->kind == PQL_SUB) {
        neg = true;
        advance(p);
    }
    if (cur(p)->kind == PQL_LPAREN || cur(p)->kind == PQL_IDENT)
        fail(p, cur(p)->pos, "experimental duration expression is not enabled");
    if (!is_dur_tok(cur(p)))
        unexpected(p, "offset", "number, duration, step(), or range()");
    int64_t d = parse_dur(p, cur(p));
    advance(p);
    int64_t *slot = offset_slot(e);
    if (!slot)
        fail(p, e->pos.start,
             "offset modifier must be preceded by an instant vector selector or "
             "range vector selector or a subquery");
    if (*slot != 0)
        fail(p, e->pos.start, "offset may not be set multiple times");
    *slot = neg ? -d : d;
    e->pos.end = prev_end(p);
}

static void parse_at(parser_t *p, pq_node_t *e)
{
    advance(p);
    pq_at_t at = PQ_AT_TIME;
    int64_t ms = 0;
    if (is_kw(p, cur(p), "start") || is_kw(p, cur(p), "end")) {
        at = is_kw(p, cur(p), "start") ? PQ_AT_START : PQ_AT_END;
        advance(p);
        if (cur(p)->kind != PQL_LPAREN)
            unexpected(p, "@", "\"(\"");
        advance(p);
        if (cur(p)->kind != PQL_RPAREN)
            unexpected(p, "@", "\")\"");
        advance(p);
    } else {
        double sign = 1;
        if (cur(p)->kind == PQL_ADD || cur(p)->kind == PQL_SUB) {
            sign = cur(p)->kind == PQL_SUB ? -1 : 1;
            advance(p);
        }
        if (!is_dur_tok(cur(p)))
            unexpected(p, "@", "timestamp");
        double ts;
        if (cur(p)->kind == PQL_DURATION)
            ts = (double)parse_dur(p, cur(p)) / 1000.0;
        else
            ts = parse_number(p, cur(p));
        ts *= sign;
        advance(p);
        if (!isfinite(ts) || fabs(ts * 1000.0) >= 9.2e18) {
            char tmp[64];
            if (isnan(ts))
                snprintf(tmp, sizeof tmp, "NaN");
            else if (isinf(ts))
                snprintf(tmp, sizeof tmp, ts > 0 ? "+Inf" : "-Inf");
            else
                snprintf(tmp, sizeof tmp, "%f", ts);
            fail(p, e->pos.start, "timestamp out of bounds for @ modifier: %s", tmp);
        }
        ms = (int64_t)llround(ts * 1000.0);
    }
    pq_at_t *slot;
    int64_t *ms_slot;
    if (e->kind == PQ_VECTOR_SEL || e->kind == PQ_MATRIX_SEL) {
        slot = &e->u.sel.at;
        ms_slot = &e->u.sel.at_ms;
    } else if (e->kind == PQ_SUBQUERY) {
        slot = &e->u.subquery.at;
        ms_slot = &e->u.subquery.at_ms;
    } else {
        fail(p, e->pos.start,
             "@ modifier must be preceded by an instant vector selector or range "
             "vector selector or a subquery");
    }
    if (*slot != PQ_AT_NONE)
        fail(p, e->pos.start, "@ <timestamp> may not be set multiple times");
    *slot = at;
    *ms_slot = ms;
    e->pos.end = prev_end(p);
}

static pq_node_t *parse_bracket(parser_t *p, pq_node_t *e)
{
    uint32_t lb = cur(p)->pos;
    advance(p);
    const pql_token_t *dt = cur(p);
    if (dt->kind == PQL_LPAREN || dt->kind == PQL_IDENT ||
        (is_dur_tok(dt) && is_arith(peek(p, 1))) ||
        (dt->kind == PQL_SUB && is_dur_tok(peek(p, 1)) && is_arith(peek(p, 2))))
        fail(p, dt->pos, "experimental duration expression is not enabled");
    if (dt->kind == PQL_SUB && is_dur_tok(peek(p, 1)))
        fail(p, dt->pos, "duration must be greater than 0");
    if (!is_dur_tok(dt))
        unexpected(p, "subquery or range selector", "number, duration, step(), or range()");
    int64_t range = parse_dur(p, dt);
    advance(p);
    if (range <= 0)
        fail(p, dt->pos, "duration must be greater than 0");
    if (cur(p)->kind == PQL_RBRACKET) {
        advance(p);
        if (e->kind != PQ_VECTOR_SEL)
            fail(p, lb, "ranges only allowed for vector selectors");
        if (e->u.sel.offset_ms != 0)
            fail(p, lb, "no offset modifiers allowed before range");
        if (e->u.sel.at != PQ_AT_NONE)
            fail(p, lb, "no @ modifiers allowed before range");
        e->kind = PQ_MATRIX_SEL;
        e->u.sel.range_ms = range;
        e->pos.end = prev_end(p);
        return e;
    }
    if (cur(p)->kind != PQL_COLON)
        unexpected(p, "subquery or range", "\":\" or \"]\"");
    advance(p);
    int64_t step = 0;
    if (is_dur_tok(cur(p))) {
        const pql_token_t *st = cur(p);
        step = parse_dur(p, st);
        advance(p);
        if (step < 0)
            fail(p, st->pos, "duration must be greater than 0");
        if (cur(p)->kind != PQL_RBRACKET)
            unexpected(p, "subquery selector", "\"]\"");
    } else if (cur(p)->kind != PQL_RBRACKET) {
        unexpected(p, "subquery selector", "duration or \"]\"");
    }
    advance(p);
    pq_node_t *n = new_node(p, PQ_SUBQUERY, e->pos.start, prev_end(p));
    n->u.subquery.expr = e;
    n->u.subquery.range_ms = range;
    n->u.subquery.step_ms = step;
    return n;
}

/* ---- expressions ---- */

static pq_node_t *parse_primary(parser_t *p)
{
    const pql_token_t *t = cur(p);
    switch (t->kind) {
    case PQL_NUMBER: {
        pq_node_t *n = new_node(p, PQ_NUMBER, t->pos, t->pos + t->len);
        n->u.number = parse_number(p, t);
        advance(p);
        return n;
    }
    case PQL_DURATION: {
        pq_node_t *n = new_node(p, PQ_NUMBER, t->pos, t->pos + t->len);
        n->u.number = (double)parse_dur(p, t) / 1000.0;
        advance(p);
        return n;
    }
    case PQL_STRING: {
        pq_node_t *n = new_node(p, PQ_STRING, t->pos, t->pos + t->len);
        n->u.string = pql_unquote(tok_text(p, t), p->a);
        advance(p);
        return n;
    }
    case PQL_LPAREN: {
        advance(p);
        pq_node_t *inner = parse_expr(p, 1);
        if (cur(p)->kind != PQL_RPAREN)
            unexpected(p, NULL, NULL);
        advance(p);
        pq_node_t *n = new_node(p, PQ_PAREN, t->pos, prev_end(p));
        n->u.paren.expr = inner;
        return n;
    }
    case PQL_LBRACE:
        return parse_selector(p, NULL);
    case PQL_IDENT:
    case PQL_METRIC_IDENT: {
        int idx = 0;
        int kk = t->kind == PQL_IDENT ? keyword_kind(tok_text(p, t), &idx) : KW_NONE;
        const pql_token_t *nx = peek(p, 1);
        if (kk == KW_AGG &&
            (nx->kind == PQL_LPAREN || is_kw(p, nx, "by") || is_kw(p, nx, "without")))
            return parse_aggregate(p, idx);
        if ((kk == KW_NONE || (kk == KW_KEY && idx >= 8)) && t->kind == PQL_IDENT &&
            nx->kind == PQL_LPAREN)
            return parse_call(p); /* start() and end() are functions too */
        if ((kk == KW_OP && idx == 3) ||
            (kk == KW_KEY && idx >= 3 && idx <= 7)) /* atan2, on .. bool */
            unexpected(p, NULL, NULL);
        advance(p);
        return parse_selector(p, t);
    }
    default:
        unexpected(p, NULL, NULL);
    }
}

static pq_node_t *parse_postfix(parser_t *p)
{
    pq_node_t *e = parse_primary(p);
    for (;;) {
        if (cur(p)->kind == PQL_LBRACKET)
            e = parse_bracket(p, e);
        else if (is_kw(p, cur(p), "offset"))
            parse_offset(p, e);
        else if (cur(p)->kind == PQL_AT)
            parse_at(p, e);
        else if (is_kw(p, cur(p), "anchored") || is_kw(p, cur(p), "smoothed"))
            fail(p, e->pos.start, "%.*s modifier is experimental and not enabled",
                 STR_FMT(tok_text(p, cur(p))));
        else
            return e;
    }
}

enum { PREC_POW = 6 };

static pq_node_t *parse_unary(parser_t *p)
{
    const pql_token_t *t = cur(p);
    if (t->kind != PQL_ADD && t->kind != PQL_SUB)
        return parse_postfix(p);
    advance(p);
    pq_node_t *e = parse_expr(p, PREC_POW);
    if (e->kind == PQ_NUMBER) {
        if (t->kind == PQL_SUB)
            e->u.number = -e->u.number;
        e->pos.start = t->pos;
        pos_of(p->q, t->pos, &e->pos.line, &e->pos.col);
        return e;
    }
    pq_node_t *n = new_node(p, PQ_UNARY, t->pos, e->pos.end);
    n->u.unary.op = t->kind == PQL_SUB ? '-' : '+';
    n->u.unary.expr = e;
    return n;
}

/* Binary operator at t: its precedence (0 = none) and op. */
static int binop_at(parser_t *p, const pql_token_t *t, pq_binop_t *op)
{
    switch (t->kind) {
    case PQL_ADD:
        *op = PQ_ADD;
        return 4;
    case PQL_SUB:
        *op = PQ_SUB;
        return 4;
    case PQL_MUL:
        *op = PQ_MUL;
        return 5;
    case PQL_DIV:
        *op = PQ_DIV;
        return 5;
    case PQL_MOD:
        *op = PQ_MOD;
        return 5;
    case PQL_POW:
        *op = PQ_POW;
        return 6;
    case PQL_EQLC:
        *op = PQ_EQL;
        return 3;
    case PQL_NEQ:
        *op = PQ_NEQ;
        return 3;
    case PQL_GTR:
        *op = PQ_GTR;
        return 3;
    case PQL_LSS:
        *op = PQ_LSS;
        return 3;
    case PQL_GTE:
        *op = PQ_GTE;
        return 3;
    case PQL_LTE:
        *op = PQ_LTE;
        return 3;
    case PQL_IDENT: {
        str_t w = tok_text(p, t);
        if (word_is(w, "and")) {
            *op = PQ_AND;
            return 2;
        }
        if (word_is(w, "unless")) {
            *op = PQ_UNLESS;
            return 2;
        }
        if (word_is(w, "or")) {
            *op = PQ_OR;
            return 1;
        }
        if (word_is(w, "atan2")) {
            *op = PQ_ATAN2;
            return 5;
        }
        return 0;
    }
    default:
        return 0;
    }
}

static pq_node_t *parse_expr(parser_t *p, int minprec)
{
    pq_node_t *lhs = parse_unary(p);
    for (;;) {
        pq_binop_t op;
        int prec = binop_at(p, cur(p), &op);
        if (prec == 0 || prec < minprec)
            return lhs;
        advance(p);
        pq_node_t *n = new_node(p, PQ_BINARY, lhs->pos.start, 0);
        n->u.binary.op = op;
        n->u.binary.lhs = lhs;
        if (is_kw(p, cur(p), "bool")) {
            n->u.binary.return_bool = true;
            advance(p);
        }
        if (is_kw(p, cur(p), "on") || is_kw(p, cur(p), "ignoring")) {
            n->u.binary.has_matching = true;
            n->u.binary.on = is_kw(p, cur(p), "on");
            advance(p);
            parse_labels(p, true, &n->u.binary.match_labels, &n->u.binary.n_match_labels);
            if (is_kw(p, cur(p), "group_left") || is_kw(p, cur(p), "group_right")) {
                n->u.binary.card =
                    is_kw(p, cur(p), "group_left") ? PQ_CARD_MANY_TO_ONE : PQ_CARD_ONE_TO_MANY;
                advance(p);
                parse_labels(p, false, &n->u.binary.include, &n->u.binary.n_include);
            }
        }
        if ((is_kw(p, cur(p), "fill") || is_kw(p, cur(p), "fill_left") ||
             is_kw(p, cur(p), "fill_right")) &&
            peek(p, 1)->kind == PQL_LPAREN)
            fail(p, lhs->pos.start, "binop fill modifiers are experimental and not enabled");
        n->u.binary.rhs = parse_expr(p, op == PQ_POW ? prec : prec + 1);
        n->pos.end = n->u.binary.rhs->pos.end;
        lhs = n;
    }
}

/* ---- type check (Prometheus' checkAST) ---- */

static const char *doc_type(pq_type_t t)
{
    switch (t) {
    case PQ_TYPE_SCALAR:
        return "scalar";
    case PQ_TYPE_VECTOR:
        return "instant vector";
    case PQ_TYPE_MATRIX:
        return "range vector";
    case PQ_TYPE_STRING:
        return "string";
    default:
        return "none";
    }
}

static const char *val_type(pq_type_t t)
{
    switch (t) {
    case PQ_TYPE_SCALAR:
        return "scalar";
    case PQ_TYPE_VECTOR:
        return "vector";
    case PQ_TYPE_MATRIX:
        return "matrix";
    case PQ_TYPE_STRING:
        return "string";
    default:
        return "none";
    }
}

static const char *binop_name(pq_binop_t op)
{
    static const char *const names[] = {"+",  "-", "*", "/",  "%",  "^",   "atan2", "==",
                                        "!=", ">", "<", ">=", "<=", "and", "or",    "unless"};
    return names[op];
}

static bool is_comparison(pq_binop_t op) { return op >= PQ_EQL && op <= PQ_LTE; }
static bool is_set_op(pq_binop_t op) { return op >= PQ_AND; }

static pq_type_t check(parser_t *p, pq_node_t *n);

static void expect_type(parser_t *p, pq_node_t *n, pq_type_t want, const char *ctx)
{
    pq_type_t t = check(p, n);
    if (t != want)
        fail(p, n->pos.start, "expected type %s in %s, got %s", doc_type(want), ctx, doc_type(t));
}

static uint32_t op_pos(const parser_t *p, const pq_node_t *n)
{
    uint32_t i = n->u.binary.lhs->pos.end;
    while (i < p->q.len && p->q.ptr[i] && strchr(" \t\n\r", p->q.ptr[i]))
        i++;
    return i;
}

static void check_selector(parser_t *p, pq_node_t *n)
{
    if (n->u.sel.name.len) {
        for (size_t i = 0; i + 1 < n->u.sel.n_matchers; i++)
            if (str_eq_cstr(n->u.sel.matchers[i].name, "__name__"))
                fail(p, n->pos.start, "metric name must not be set twice: %s or %s",
                     quoted(p, n->u.sel.name), quoted(p, n->u.sel.matchers[i].value));
        return;
    }
    for (size_t i = 0; i < n->u.sel.n_matchers; i++)
        if (!matcher_matches_empty(&n->u.sel.matchers[i]))
            return;
    fail(p, n->pos.start, "vector selector must contain at least one non-empty matcher");
}

static pq_type_t check_call(parser_t *p, pq_node_t *n)
{
    const pq_func_t *f = n->u.call.func;
    size_t na = n->u.call.n_args;
    const char *fname = quoted(p, str_cstr(f->name));
    size_t nargs = (size_t)f->n_args;
    if (f->n_optional == 0) {
        if (na != nargs)
            fail(p, n->pos.start, "expected %zu argument(s) in call to %s, got %zu", nargs, fname,
                 na);
    } else {
        size_t req = f->n_optional < 0 ? nargs - 1 : nargs - (size_t)f->n_optional;
        if (na < req)
            fail(p, n->pos.start, "expected at least %zu argument(s) in call to %s, got %zu", req,
                 fname, na);
        if (f->n_optional > 0 && na > nargs)
            fail(p, n->pos.start, "expected at most %zu argument(s) in call to %s, got %zu", nargs,
                 fname, na);
    }
    if (strcmp(f->name, "info") == 0 && na > 1) {
        pq_node_t *sel = n->u.call.args[1];
        if (sel->kind == PQ_VECTOR_SEL) {
            if (sel->u.sel.name.len)
                fail(p, sel->pos.start,
                     "expected label selectors only, got vector selector instead");
            sel->type = PQ_TYPE_VECTOR; /* bypasses the non-empty matcher rule */
        } else {
            if (check(p, sel) != PQ_TYPE_VECTOR)
                fail(p, n->pos.start,
                     "expected type instant vector in call to function \"info\", "
                     "got %s",
                     doc_type(sel->type));
            fail(p, sel->pos.start, "expected label selectors only");
        }
    }
    for (size_t i = 0; i < na; i++) {
        size_t k = i < nargs ? i : nargs - 1;
        pq_node_t *arg = n->u.call.args[i];
        pq_type_t t = i == 1 && strcmp(f->name, "info") == 0 ? arg->type : check(p, arg);
        if (t != f->arg_types[k])
            fail(p, n->u.call.args[i]->pos.start, "expected type %s in call to function %s, got %s",
                 doc_type(f->arg_types[k]), fname, doc_type(t));
    }
    return f->ret;
}

static pq_type_t check_binary(parser_t *p, pq_node_t *n)
{
    pq_type_t lt = check(p, n->u.binary.lhs), rt = check(p, n->u.binary.rhs);
    pq_binop_t op = n->u.binary.op;
    if (n->u.binary.return_bool && !is_comparison(op))
        fail(p, op_pos(p, n), "bool modifier can only be used on comparison operators");
    if (is_comparison(op) && !n->u.binary.return_bool && lt == PQ_TYPE_SCALAR &&
        rt == PQ_TYPE_SCALAR)
        fail(p, op_pos(p, n), "comparisons between scalars must use BOOL modifier");
    if (is_set_op(op) && n->u.binary.card == PQ_CARD_ONE_TO_ONE)
        n->u.binary.card = PQ_CARD_MANY_TO_MANY;
    if (n->u.binary.on)
        for (size_t i = 0; i < n->u.binary.n_match_labels; i++)
            for (size_t j = 0; j < n->u.binary.n_include; j++)
                if (str_eq(n->u.binary.match_labels[i], n->u.binary.include[j]))
                    fail(p, op_pos(p, n), "label %s must not occur in ON and GROUP clause at once",
                         quoted(p, n->u.binary.match_labels[i]));
    if (lt != PQ_TYPE_SCALAR && lt != PQ_TYPE_VECTOR)
        fail(p, n->u.binary.lhs->pos.start,
             "binary expression must contain only scalar and instant vector types");
    if (rt != PQ_TYPE_SCALAR && rt != PQ_TYPE_VECTOR)
        fail(p, n->u.binary.rhs->pos.start,
             "binary expression must contain only scalar and instant vector types");
    if (lt != PQ_TYPE_VECTOR || rt != PQ_TYPE_VECTOR) {
        if (n->u.binary.n_match_labels > 0)
            fail(p, n->pos.start, "vector matching only allowed between instant vectors");
        n->u.binary.has_matching = false;
        n->u.binary.on = false;
        n->u.binary.n_include = 0;
        n->u.binary.card = is_set_op(op) ? PQ_CARD_MANY_TO_MANY : PQ_CARD_ONE_TO_ONE;
    } else if (is_set_op(op)) {
        if (n->u.binary.card == PQ_CARD_ONE_TO_MANY || n->u.binary.card == PQ_CARD_MANY_TO_ONE)
            fail(p, n->pos.start, "no grouping allowed for \"%s\" operation", binop_name(op));
    }
    if ((lt == PQ_TYPE_SCALAR || rt == PQ_TYPE_SCALAR) && is_set_op(op))
        fail(p, n->pos.start, "set operator \"%s\" not allowed in binary scalar expression",
             binop_name(op));
    return lt == PQ_TYPE_SCALAR && rt == PQ_TYPE_SCALAR ? PQ_TYPE_SCALAR : PQ_TYPE_VECTOR;
}

static pq_type_t check(parser_t *p, pq_node_t *n)
{
    pq_type_t t = PQ_TYPE_NONE;
    switch (n->kind) {
    case PQ_NUMBER:
        t = PQ_TYPE_SCALAR;
        break;
    case PQ_STRING:
        t = PQ_TYPE_STRING;
        break;
    case PQ_VECTOR_SEL:
        check_selector(p, n);
        t = PQ_TYPE_VECTOR;
        break;
    case PQ_MATRIX_SEL:
        check_selector(p, n);
        t = PQ_TYPE_MATRIX;
        break;
    case PQ_SUBQUERY: {
        pq_type_t it = check(p, n->u.subquery.expr);
        if (it != PQ_TYPE_VECTOR)
            fail(p, n->pos.start, "subquery is only allowed on instant vector, got %s instead",
                 val_type(it));
        t = PQ_TYPE_MATRIX;
        break;
    }
    case PQ_CALL:
        t = check_call(p, n);
        break;
    case PQ_AGGREGATE: {
        expect_type(p, n->u.agg.expr, PQ_TYPE_VECTOR, "aggregation expression");
        if (n->u.agg.param)
            expect_type(p, n->u.agg.param,
                        n->u.agg.op == PQ_AGG_COUNT_VALUES ? PQ_TYPE_STRING : PQ_TYPE_SCALAR,
                        "aggregation parameter");
        t = PQ_TYPE_VECTOR;
        break;
    }
    case PQ_BINARY:
        t = check_binary(p, n);
        break;
    case PQ_UNARY: {
        pq_type_t it = check(p, n->u.unary.expr);
        if (it != PQ_TYPE_SCALAR && it != PQ_TYPE_VECTOR)
            fail(p, n->pos.start,
                 "unary expression only allowed on expressions of type scalar or instant "
                 "vector, got \"%s\"",
                 doc_type(it));
        t = it;
        break;
    }
    case PQ_PAREN:
        t = check(p, n->u.paren.expr);
        break;
    }
    n->type = t;
    return t;
}

static void free_compiled(matcher_list_t *l)
{
    for (; l; l = l->next)
        if (l->m)
            matchers_deinit(l->m, l->n);
}

int promql_parse(str_t query, arena_t *a, pq_node_t **out, err_t *err)
{
    parser_t *p = ARENA_NEW(a, parser_t);
    p->a = a;
    p->q = query;
    p->err = err;
    *out = NULL;
    if (setjmp(p->jb)) {
        free_compiled(p->compiled);
        return ERR_PARSE;
    }
    pql_lex(query, a, &p->lx);
    if (p->lx.toks[0].kind == PQL_EOF)
        fail(p, 0, "no expression found in input");
    pq_node_t *n = parse_expr(p, 1);
    if (cur(p)->kind != PQL_EOF)
        unexpected(p, NULL, NULL);
    check(p, n);
    *out = n;
    return 0;
}

void promql_free(pq_node_t *n)
{
    if (!n)
        return;
    switch (n->kind) {
    case PQ_VECTOR_SEL:
    case PQ_MATRIX_SEL:
        matchers_deinit(n->u.sel.matchers, n->u.sel.n_matchers);
        n->u.sel.n_matchers = 0;
        break;
    case PQ_SUBQUERY:
        promql_free(n->u.subquery.expr);
        break;
    case PQ_CALL:
        for (size_t i = 0; i < n->u.call.n_args; i++)
            promql_free(n->u.call.args[i]);
        break;
    case PQ_AGGREGATE:
        promql_free(n->u.agg.expr);
        promql_free(n->u.agg.param);
        break;
    case PQ_BINARY:
        promql_free(n->u.binary.lhs);
        promql_free(n->u.binary.rhs);
        break;
    case PQ_UNARY:
        promql_free(n->u.unary.expr);
        break;
    case PQ_PAREN:
        promql_free(n->u.paren.expr);
        break;
    default:
        break;
    }
}
