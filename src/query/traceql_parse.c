/*
 * traceql_parse.c - the TraceQL parser and validator (see traceql.h for the supported subset).
 *
 * Recursive descent over the token array with Tempo's precedences (pkg/traceql/expr.y), lowest
 * first:
 *   spanset level:  |   then  && ||   then structural (> < >> << ~ and the &/! variants)
 *   field level:    && || (one level, left-assoc)  then  = != < <= > >= =~ !~  then  + -
 *                   then prefix !  then  * / %  then  ^ (right)  then unary minus
 * After parsing, a validation pass applies Tempo's type rules (a filter must be boolean, both
 * sides of a comparison must have compatible types, status and kind only compare with = and !=,
 * intrinsics and resource.service.name cannot be nil, regexes must compile), reorders `&&`/`||`
 * operands so cheap intrinsic comparisons run before attribute lookups, and notes whether the
 * query needs trace-level values (two scans). What Tempo parses but Skillscope does not evaluate
 * is an ERR_UNSUPPORTED error naming the feature, at its position.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/traceql.h"

typedef struct ps {
    tql_lexer_t lx;
    size_t i;
    arena_t *a;
    err_t *err;
    tql_query_t *q;
    int rc;
    int depth; /* recursion depth, bounded by MAX_DEPTH */
} ps_t;

static const tql_token_t *tok(ps_t *p) { return &p->lx.toks[p->i]; }
static tql_tok_t kind(ps_t *p) { return p->lx.toks[p->i].kind; }
static str_t text(ps_t *p, const tql_token_t *t) { return (str_t){p->lx.in.ptr + t->pos, t->len}; }
static void next(ps_t *p)
{
    if (p->i + 1 < p->lx.n)
        p->i++;
}

static int fail_at(ps_t *p, int code, uint32_t pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_at(ps_t *p, int code, uint32_t pos, const char *fmt, ...)
{
    if (p->rc)
        return p->rc;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line, col;
    traceql_line_col(p->lx.in, pos, &line, &col);
    err_set_at(p->err, code, line, col, "parse error at line %d, col %d: %s", line, col, msg);
    p->rc = code;
    return code;
}

/* "unexpected X" for the current token. */
static int unexpected(ps_t *p, const char *want)
{
    const tql_token_t *t = tok(p);
    if (t->kind == TQL_T_ERR)
        return fail_at(p, ERR_PARSE, t->pos, "%s", p->lx.err);
    if (t->kind == TQL_T_EOF)
        return fail_at(p, ERR_PARSE, t->pos, "unexpected end of query, expected %s", want);
    str_t s = text(p, t);
    return fail_at(p, ERR_PARSE, t->pos, "unexpected %.*s%s, expected %s",
                   s.len > 40 ? 40 : (int)s.len, s.ptr, s.len > 40 ? "..." : "", want);
}

static bool accept(ps_t *p, tql_tok_t k)
{
    if (kind(p) != k)
        return false;
    next(p);
    return true;
}

static bool expect(ps_t *p, tql_tok_t k, const char *what)
{
    if (accept(p, k))
        return true;
    unexpected(p, what);
    return false;
}

/* ---- values ---- */

/* Go's strconv.Unquote for "..." (escapes validated by the lexer) and `...`. */
static str_t unquote(arena_t *a, str_t raw)
{
    if (raw.ptr[0] == '`')
        return arena_str(a, (str_t){raw.ptr + 1, raw.len - 2});
    char *o = arena_alloc(a, raw.len + 1);
    size_t n = 0;
    for (size_t i = 1; i + 1 < raw.len; i++) {
        char c = raw.ptr[i];
        if (c != '\\') {
            o[n++] = c;
            continue;
        }
        char e = raw.ptr[++i];
        uint32_t cp = 0;
        int hex = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
        if (hex) {
            for (int k = 0; k < hex; k++) {
                char h = raw.ptr[++i];
                cp = cp * 16 + (uint32_t)(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
            }
            if (e == 'x') {
                o[n++] = (char)cp;
                continue;
            }
        } else if (e >= '0' && e <= '7') {
            cp = (uint32_t)(e - '0');
            for (int k = 0; k < 2; k++)
                cp = cp * 8 + (uint32_t)(raw.ptr[++i] - '0');
            o[n++] = (char)cp;
            continue;
        } else {
            const char *from = "abfnrtv\\\"'", *to = "\a\b\f\n\r\t\v\\\"'";
            o[n++] = to[strchr(from, e) - from];
            continue;
        }
        if (cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000))
            cp = 0xfffd;
        if (cp < 0x80) {
            o[n++] = (char)cp;
        } else if (cp < 0x800) {
            o[n++] = (char)(0xc0 | cp >> 6);
            o[n++] = (char)(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            o[n++] = (char)(0xe0 | cp >> 12);
            o[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
            o[n++] = (char)(0x80 | (cp & 0x3f));
        } else {
            o[n++] = (char)(0xf0 | cp >> 18);
            o[n++] = (char)(0x80 | ((cp >> 12) & 0x3f));
            o[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
            o[n++] = (char)(0x80 | (cp & 0x3f));
        }
    }
    o[n] = 0;
    return (str_t){o, n};
}

/* A quoted attribute name "..." with \" and \\ escapes. */
static str_t unquote_name(arena_t *a, str_t raw)
{
    char *o = arena_alloc(a, raw.len + 1);
    size_t n = 0;
    for (size_t i = 1; i + 1 < raw.len; i++) {
        if (raw.ptr[i] == '\\')
            i++;
        o[n++] = raw.ptr[i];
    }
    o[n] = 0;
    return (str_t){o, n};
}

static tql_expr_t *node(ps_t *p, tql_ntype_t type, uint32_t pos)
{
    tql_expr_t *e = ARENA_NEW(p->a, tql_expr_t);
    e->type = type;
    e->pos = pos;
    return e;
}

static tql_expr_t *static_node(ps_t *p, uint32_t pos, tql_vtype_t t, int64_t i)
{
    tql_expr_t *e = node(p, TQL_N_STATIC, pos);
    e->v.type = t;
    e->v.u.i = i;
    return e;
}

static const struct {
    const char *word;
    tql_vtype_t type;
    int64_t v;
} k_keywords[] = {
    {"true", TQL_V_BOOL, 1},          {"false", TQL_V_BOOL, 0},         {"nil", TQL_V_NIL, 0},
    {"unset", TQL_V_STATUS, 0},       {"ok", TQL_V_STATUS, 1},          {"error", TQL_V_STATUS, 2},
    {"unspecified", TQL_V_KIND, 0},   {"internal", TQL_V_KIND, 1},      {"server", TQL_V_KIND, 2},
    {"client", TQL_V_KIND, 3},        {"producer", TQL_V_KIND, 4},      {"consumer", TQL_V_KIND, 5},
    {"minInt", TQL_V_INT, INT64_MIN}, {"maxInt", TQL_V_INT, INT64_MAX},
};

static const struct {
    const char *word;
    tql_intrinsic_t in;
} k_intrinsics[] = {
    {"name", TQL_IN_NAME},
    {"status", TQL_IN_STATUS},
    {"statusMessage", TQL_IN_STATUS_MESSAGE},
    {"kind", TQL_IN_KIND},
    {"duration", TQL_IN_DURATION},
    {"traceDuration", TQL_IN_TRACE_DURATION},
    {"rootName", TQL_IN_ROOT_NAME},
    {"rootServiceName", TQL_IN_ROOT_SERVICE},
    {"span:name", TQL_IN_NAME},
    {"span:status", TQL_IN_STATUS},
    {"span:statusMessage", TQL_IN_STATUS_MESSAGE},
    {"span:kind", TQL_IN_KIND},
    {"span:duration", TQL_IN_DURATION},
    {"span:id", TQL_IN_SPAN_ID},
    {"span:parentID", TQL_IN_PARENT_ID},
    {"trace:duration", TQL_IN_TRACE_DURATION},
    {"trace:rootName", TQL_IN_ROOT_NAME},
    {"trace:rootService", TQL_IN_ROOT_SERVICE},
    {"trace:id", TQL_IN_TRACE_ID},
    {"instrumentation:name", TQL_IN_INSTR_NAME},
    {"instrumentation:version", TQL_IN_INSTR_VERSION},
};

/* Intrinsics Tempo knows that Skillscope does not evaluate. */
static const char *k_unsupported_intrinsics[] = {
    "childCount",         "nestedSetLeft",        "nestedSetRight",      "nestedSetParent",
    "span:childCount",    "span:nestedSetLeft",   "span:nestedSetRight", "span:nestedSetParent",
    "event:name",         "event:timeSinceStart", "link:traceID",        "link:spanID",
    "instrumentation:id",
};

static bool lookup_intrinsic(str_t w, tql_intrinsic_t *in)
{
    for (size_t i = 0; i < sizeof k_intrinsics / sizeof k_intrinsics[0]; i++)
        if (str_eq_cstr(w, k_intrinsics[i].word)) {
            *in = k_intrinsics[i].in;
            return true;
        }
    return false;
}

static bool unsupported_intrinsic(str_t w)
{
    for (size_t i = 0; i < sizeof k_unsupported_intrinsics / sizeof k_unsupported_intrinsics[0];
         i++)
        if (str_eq_cstr(w, k_unsupported_intrinsics[i]))
            return true;
    return false;
}

/* An attribute token: scope prefix, then the (maybe quoted) name. */
static tql_expr_t *attr_node(ps_t *p, const tql_token_t *t)
{
    str_t s = text(p, t);
    static const struct {
        const char *prefix;
        int scope; /* -1 unsupported */
    } scopes[] = {{".", TQL_SC_ANY},
                  {"span.", TQL_SC_SPAN},
                  {"resource.", TQL_SC_RESOURCE},
                  {"instrumentation.", TQL_SC_INSTR},
                  {"parent.", -1},
                  {"event.", -1},
                  {"link.", -1}};
    for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++) {
        size_t k = strlen(scopes[i].prefix);
        if (s.len < k || memcmp(s.ptr, scopes[i].prefix, k) != 0)
            continue;
        if (scopes[i].scope < 0) {
            fail_at(p, ERR_UNSUPPORTED, t->pos,
                    "%.*s attributes are not supported (only span., resource., instrumentation. "
                    "and unscoped .name)",
                    (int)k - 1, s.ptr);
            return NULL;
        }
        tql_expr_t *e = node(p, TQL_N_ATTR, t->pos);
        e->scope = (tql_scope_t)scopes[i].scope;
        str_t name = {s.ptr + k, s.len - k};
        e->name = name.len && name.ptr[0] == '"' ? unquote_name(p->a, name) : arena_str(p->a, name);
        return e;
    }
    fail_at(p, ERR_PARSE, t->pos, "bad attribute %.*s", STR_FMT(s));
    return NULL;
}

static tql_expr_t *parse_field(ps_t *p, int min_prec);

static tql_expr_t *parse_primary(ps_t *p)
{
    const tql_token_t *t = tok(p);
    str_t s = text(p, t);
    tql_expr_t *e;
    switch (t->kind) {
    case TQL_T_LPAREN:
        next(p);
        e = parse_field(p, 1);
        if (!e || !expect(p, TQL_T_RPAREN, "')'"))
            return NULL;
        return e;
    case TQL_T_STRING:
        e = node(p, TQL_N_STATIC, t->pos);
        e->v.type = TQL_V_STRING;
        e->v.u.s = unquote(p->a, s);
        next(p);
        return e;
    case TQL_T_INT: {
        char tmp[32];
        if (s.len >= sizeof tmp) {
            fail_at(p, ERR_PARSE, t->pos, "integer %.*s out of range", STR_FMT(s));
            return NULL;
        }
        memcpy(tmp, s.ptr, s.len);
        tmp[s.len] = 0;
        char *end;
        unsigned long long v = strtoull(tmp, &end, 10);
        if (v > (unsigned long long)INT64_MAX) {
            fail_at(p, ERR_PARSE, t->pos, "integer %.*s out of range", STR_FMT(s));
            return NULL;
        }
        next(p);
        return static_node(p, t->pos, TQL_V_INT, (int64_t)v);
    }
    case TQL_T_FLOAT: {
        char tmp[64];
        snprintf(tmp, sizeof tmp, "%.*s", (int)(s.len < 63 ? s.len : 63), s.ptr);
        e = node(p, TQL_N_STATIC, t->pos);
        e->v.type = TQL_V_FLOAT;
        e->v.u.d = strtod(tmp, NULL);
        next(p);
        return e;
    }
    case TQL_T_DURATION: {
        int64_t ns = 0;
        traceql_parse_go_duration(s, &ns, NULL);
        next(p);
        return static_node(p, t->pos, TQL_V_DURATION, ns);
    }
    case TQL_T_ATTR:
        next(p);
        return attr_node(p, t);
    case TQL_T_SCOPED_IN:
    case TQL_T_IDENT: {
        for (size_t i = 0; t->kind == TQL_T_IDENT && i < sizeof k_keywords / sizeof k_keywords[0];
             i++)
            if (str_eq_cstr(s, k_keywords[i].word)) {
                next(p);
                return static_node(p, t->pos, k_keywords[i].type, k_keywords[i].v);
            }
        tql_intrinsic_t in;
        if (lookup_intrinsic(s, &in)) {
            next(p);
            e = node(p, TQL_N_INTRINSIC, t->pos);
            e->in = in;
            if (in == TQL_IN_TRACE_DURATION || in == TQL_IN_ROOT_NAME || in == TQL_IN_ROOT_SERVICE)
                p->q->uses_trace = true;
            return e;
        }
        if (unsupported_intrinsic(s)) {
            fail_at(p, ERR_UNSUPPORTED, t->pos, "intrinsic %.*s is not supported", STR_FMT(s));
            return NULL;
        }
        if (str_eq_cstr(s, "parent")) {
            fail_at(p, ERR_UNSUPPORTED, t->pos, "parent is not supported");
            return NULL;
        }
        if (t->kind == TQL_T_SCOPED_IN) {
            fail_at(p, ERR_PARSE, t->pos, "unknown intrinsic %.*s", STR_FMT(s));
            return NULL;
        }
        fail_at(p, ERR_PARSE, t->pos,
                "unknown identifier %.*s: attribute names start with '.', 'span.' or "
                "'resource.' (e.g. span.%.*s)",
                STR_FMT(s), STR_FMT(s));
        return NULL;
    }
    default:
        unexpected(p, "a field, a value or '('");
        return NULL;
    }
}

/* Binary operator precedence at the field level; 0 when the token is not one. */
static int field_prec(tql_tok_t k, tql_op_t *op)
{
    switch (k) {
    case TQL_T_AND:
        *op = TQL_OP_AND;
        return 1;
    case TQL_T_OR:
        *op = TQL_OP_OR;
        return 1;
    case TQL_T_EQ:
        *op = TQL_OP_EQ;
        return 2;
    case TQL_T_NEQ:
        *op = TQL_OP_NEQ;
        return 2;
    case TQL_T_GT:
        *op = TQL_OP_GT;
        return 2;
    case TQL_T_GTE:
        *op = TQL_OP_GTE;
        return 2;
    case TQL_T_LT:
        *op = TQL_OP_LT;
        return 2;
    case TQL_T_LTE:
        *op = TQL_OP_LTE;
        return 2;
    case TQL_T_RE:
        *op = TQL_OP_RE;
        return 2;
    case TQL_T_NRE:
        *op = TQL_OP_NRE;
        return 2;
    case TQL_T_ADD:
        *op = TQL_OP_ADD;
        return 3;
    case TQL_T_SUB:
        *op = TQL_OP_SUB;
        return 3;
    case TQL_T_MUL:
        *op = TQL_OP_MUL;
        return 5;
    case TQL_T_DIV:
        *op = TQL_OP_DIV;
        return 5;
    case TQL_T_MOD:
        *op = TQL_OP_MOD;
        return 5;
    case TQL_T_POW:
        *op = TQL_OP_POW;
        return 6;
    default:
        return 0;
    }
}

#define MAX_DEPTH 200
/* Left-associative chains are built in loops, but checking and evaluating them recurses once
 * per operator: bounding the tokens bounds that recursion. */
#define TQL_MAX_TOKENS 8192
/* Search keeps per-trace state for each spanset: bound them so one query cannot ask for
 * traces x spansets of memory. */
#define TQL_MAX_SPANSETS 64

static tql_expr_t *parse_prefix(ps_t *p)
{
    const tql_token_t *t = tok(p);
    if (p->depth > MAX_DEPTH) {
        fail_at(p, ERR_PARSE, t->pos, "expression nested too deeply");
        return NULL;
    }
    if (t->kind == TQL_T_NOT || t->kind == TQL_T_SUB) {
        next(p);
        tql_expr_t *e = node(p, TQL_N_UNARY, t->pos);
        e->op = t->kind == TQL_T_NOT ? TQL_OP_NOT : TQL_OP_NEG;
        /* ! binds looser than * / % ^; unary minus tighter than everything. */
        p->depth++;
        e->l = t->kind == TQL_T_NOT ? parse_field(p, 5) : parse_prefix(p);
        p->depth--;
        if (!e->l)
            return NULL;
        /* A negative literal is a literal (so `-1` and `-1s` are static values). */
        if (e->op == TQL_OP_NEG && e->l->type == TQL_N_STATIC &&
            (e->l->v.type == TQL_V_INT || e->l->v.type == TQL_V_DURATION) &&
            e->l->v.u.i != INT64_MIN) {
            e->l->v.u.i = -e->l->v.u.i;
            e->l->pos = t->pos;
            return e->l;
        }
        if (e->op == TQL_OP_NEG && e->l->type == TQL_N_STATIC && e->l->v.type == TQL_V_FLOAT) {
            e->l->v.u.d = -e->l->v.u.d;
            e->l->pos = t->pos;
            return e->l;
        }
        return e;
    }
    return parse_primary(p);
}

static tql_expr_t *parse_field(ps_t *p, int min_prec)
{
    if (p->depth > MAX_DEPTH) {
        fail_at(p, ERR_PARSE, tok(p)->pos, "expression nested too deeply");
        return NULL;
    }
    p->depth++;
    tql_expr_t *l = parse_prefix(p);
    while (l) {
        tql_op_t op = TQL_OP_NONE;
        const tql_token_t *t = tok(p);
        int prec = field_prec(t->kind, &op);
        if (!prec || prec < min_prec)
            break;
        next(p);
        tql_expr_t *r = parse_field(p, op == TQL_OP_POW ? prec : prec + 1);
        if (!r) {
            l = NULL;
            break;
        }
        tql_expr_t *e = node(p, TQL_N_BINARY, t->pos);
        e->op = op;
        e->l = l;
        e->r = r;
        l = e;
    }
    p->depth--;
    return l;
}

/* ---- validation (Tempo's validate step) ---- */

typedef enum cls { C_BOOL, C_NUM, C_STR, C_STATUS, C_KIND, C_NIL, C_ANY, C_OTHER } cls_t;

static const char *cls_name(cls_t c)
{
    static const char *n[] = {"boolean", "number", "string",    "status",
                              "kind",    "nil",    "attribute", "value"};
    return n[c];
}

static cls_t intrinsic_cls(tql_intrinsic_t in)
{
    switch (in) {
    case TQL_IN_STATUS:
        return C_STATUS;
    case TQL_IN_KIND:
        return C_KIND;
    case TQL_IN_DURATION:
    case TQL_IN_TRACE_DURATION:
        return C_NUM;
    default:
        return C_STR;
    }
}

static const char *op_text(tql_op_t op)
{
    static const char *t[] = {"",   "&&", "||", "=", "!=", ">", ">=", "<", "<=", "=~",
                              "!~", "+",  "-",  "*", "/",  "%", "^",  "!", "-",  "contains"};
    return t[op];
}

static bool is_arith(tql_op_t op) { return op >= TQL_OP_ADD && op <= TQL_OP_POW; }

static int cost(const tql_expr_t *e)
{
    if (!e)
        return 0;
    switch (e->type) {
    case TQL_N_STATIC:
        return 0;
    case TQL_N_INTRINSIC:
        return e->in == TQL_IN_STATUS_MESSAGE || e->in == TQL_IN_INSTR_NAME ||
                       e->in == TQL_IN_INSTR_VERSION
                   ? 5
                   : 1;
    case TQL_N_ATTR:
        return 10;
    default:
        return cost(e->l) + cost(e->r) + (e->re ? 3 : 0);
    }
}

static bool is_service_name(const tql_expr_t *e)
{
    return e->type == TQL_N_ATTR && e->scope == TQL_SC_RESOURCE &&
           str_eq_cstr(e->name, "service.name");
}

static int check(ps_t *p, tql_expr_t *e, cls_t *out)
{
    switch (e->type) {
    case TQL_N_STATIC:
        switch (e->v.type) {
        case TQL_V_BOOL:
            *out = C_BOOL;
            break;
        case TQL_V_INT:
        case TQL_V_FLOAT:
        case TQL_V_DURATION:
            *out = C_NUM;
            break;
        case TQL_V_STRING:
            *out = C_STR;
            break;
        case TQL_V_STATUS:
            *out = C_STATUS;
            break;
        case TQL_V_KIND:
            *out = C_KIND;
            break;
        case TQL_V_NIL:
            *out = C_NIL;
            break;
        default:
            *out = C_OTHER;
        }
        return 0;
    case TQL_N_ATTR:
        *out = C_ANY;
        return 0;
    case TQL_N_INTRINSIC:
        *out = intrinsic_cls(e->in);
        return 0;
    case TQL_N_UNARY: {
        cls_t c;
        if (check(p, e->l, &c))
            return p->rc;
        if (e->op == TQL_OP_NOT) {
            if (c != C_BOOL && c != C_ANY)
                return fail_at(p, ERR_PARSE, e->pos, "invalid operand to !: %s is not boolean",
                               cls_name(c));
            *out = C_BOOL;
        } else {
            if (c != C_NUM && c != C_ANY)
                return fail_at(p, ERR_PARSE, e->pos,
                               "invalid operand to unary -: %s is not a "
                               "number",
                               cls_name(c));
            *out = C_NUM;
        }
        return 0;
    }
    case TQL_N_BINARY:
        break;
    }
    cls_t l, r;
    if (check(p, e->l, &l) || check(p, e->r, &r))
        return p->rc;
    tql_op_t op = e->op;
    if (op == TQL_OP_AND || op == TQL_OP_OR) {
        if ((l != C_BOOL && l != C_ANY) || (r != C_BOOL && r != C_ANY))
            return fail_at(p, ERR_PARSE, e->pos,
                           "invalid operands to %s: %s and %s (both must "
                           "be boolean)",
                           op_text(op), cls_name(l), cls_name(r));
        /* Cheap side first: intrinsics come from columns, attributes need a protobuf walk. */
        if (cost(e->l) > cost(e->r)) {
            tql_expr_t *t = e->l;
            e->l = e->r;
            e->r = t;
        }
        *out = C_BOOL;
        return 0;
    }
    if (is_arith(op)) {
        if ((l != C_NUM && l != C_ANY) || (r != C_NUM && r != C_ANY))
            return fail_at(p, ERR_PARSE, e->pos,
                           "invalid operands to %s: %s and %s (both must "
                           "be numbers)",
                           op_text(op), cls_name(l), cls_name(r));
        *out = C_NUM;
        return 0;
    }
    if (op == TQL_OP_CONTAINS) {
        *out = C_BOOL;
        return 0;
    }
    /* Comparisons. */
    *out = C_BOOL;
    if (l == C_NIL || r == C_NIL) {
        cls_t o = l == C_NIL ? r : l;
        const tql_expr_t *oe = l == C_NIL ? e->r : e->l;
        if (op != TQL_OP_EQ && op != TQL_OP_NEQ)
            return fail_at(p, ERR_PARSE, e->pos, "nil can only be compared with = or !=");
        if (o == C_STATUS || o == C_KIND || o == C_NUM || o == C_BOOL || is_service_name(oe))
            return fail_at(p, ERR_PARSE, e->pos, "%s cannot be compared with nil",
                           is_service_name(oe) ? "resource.service.name" : cls_name(o));
        return 0;
    }
    if (op == TQL_OP_RE || op == TQL_OP_NRE) {
        if ((l != C_STR && l != C_ANY) || (r != C_STR && r != C_ANY))
            return fail_at(p, ERR_PARSE, e->pos,
                           "invalid operands to %s: %s and %s (both must "
                           "be strings)",
                           op_text(op), cls_name(l), cls_name(r));
        if (e->r->type != TQL_N_STATIC)
            return fail_at(p, ERR_UNSUPPORTED, e->r->pos,
                           "a regular expression that is not a string literal is not supported");
        matcher_t *m = ARENA_NEW(p->a, matcher_t);
        err_t rerr;
        if (matcher_init(m, MATCH_RE, STR("regex"), e->r->v.u.s, &rerr) != 0)
            return fail_at(p, ERR_PARSE, e->r->pos, "%s", rerr.msg);
        if (p->q->n_regexes == p->q->cap_regexes) {
            size_t cap = p->q->cap_regexes ? p->q->cap_regexes * 2 : 4;
            matcher_t **v = ARENA_ARRAY(p->a, matcher_t *, cap);
            if (p->q->n_regexes)
                memcpy(v, p->q->regexes, p->q->n_regexes * sizeof *v);
            p->q->regexes = v;
            p->q->cap_regexes = cap;
        }
        p->q->regexes[p->q->n_regexes++] = m;
        e->re = m;
        return 0;
    }
    if (l != C_ANY && r != C_ANY && l != r)
        return fail_at(p, ERR_PARSE, e->pos, "cannot compare %s with %s", cls_name(l), cls_name(r));
    if (op != TQL_OP_EQ && op != TQL_OP_NEQ) {
        cls_t c = l == C_ANY ? r : l;
        if (c == C_STATUS || c == C_KIND || c == C_BOOL)
            return fail_at(p, ERR_PARSE, e->pos,
                           "%s values can only be compared with = or !=", cls_name(c));
    }
    return 0;
}

/* A spanset filter's expression must be boolean (an attribute counts: `{ .flag }`). */
static int check_filter(ps_t *p, tql_expr_t *e)
{
    cls_t c;
    if (check(p, e, &c))
        return p->rc;
    if (c != C_BOOL && c != C_ANY)
        return fail_at(p, ERR_PARSE, e->pos,
                       "a spanset filter must evaluate to a boolean, not "
                       "a %s",
                       cls_name(c));
    return 0;
}

static bool refs_span(const tql_expr_t *e)
{
    if (!e)
        return false;
    if (e->type == TQL_N_ATTR || e->type == TQL_N_INTRINSIC)
        return true;
    return refs_span(e->l) || refs_span(e->r);
}

/* ---- spanset level ---- */

static tql_leaf_t *new_leaf(ps_t *p)
{
    tql_leaf_t *l = ARENA_NEW(p->a, tql_leaf_t);
    return l;
}

/* Appends to a leaf's stages, doubling the array at powers of two (long pipelines stay linear). */
static void add_stage(ps_t *p, tql_leaf_t *l, const tql_stage_t *st)
{
    size_t n = l->n_stages;
    if ((n & (n - 1)) == 0) { /* 0, 1, 2, 4, ...: full */
        tql_stage_t *v = ARENA_ARRAY(p->a, tql_stage_t, n ? 2 * n : 1);
        if (n)
            memcpy(v, l->stages, n * sizeof *v);
        l->stages = v;
    }
    l->stages[l->n_stages++] = *st;
}

static tql_set_t *leaf_set(ps_t *p, tql_leaf_t *l)
{
    tql_set_t *s = ARENA_NEW(p->a, tql_set_t);
    s->type = TQL_SET_LEAF;
    s->leaf = l;
    return s;
}

/* { fieldExpr? } */
static bool parse_filter(ps_t *p, tql_stage_t *st)
{
    memset(st, 0, sizeof *st);
    st->kind = TQL_ST_FILTER;
    if (!expect(p, TQL_T_LBRACE, "'{'"))
        return false;
    if (accept(p, TQL_T_RBRACE))
        return true;
    st->filter = parse_field(p, 1);
    if (!st->filter || !expect(p, TQL_T_RBRACE, "'}' or an operator"))
        return false;
    return check_filter(p, st->filter) == 0;
}

static const char *k_metrics_fns[] = {
    "rate",          "count_over_time",    "min_over_time",       "max_over_time", "avg_over_time",
    "sum_over_time", "quantile_over_time", "histogram_over_time", "compare",       "topk",
    "bottomk",
};

static bool is_stage_word(str_t w)
{
    static const char *words[] = {"count", "avg", "min", "max", "sum", "select", "by", "coalesce"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (str_eq_cstr(w, words[i]))
            return true;
    for (size_t i = 0; i < sizeof k_metrics_fns / sizeof k_metrics_fns[0]; i++)
        if (str_eq_cstr(w, k_metrics_fns[i]))
            return true;
    return false;
}

/* A constant numeric expression on the right of an aggregate comparison (`> 1 - 3`, `> 2s`). */
static bool fold_number(ps_t *p, tql_expr_t *e, tql_value_t *out)
{
    if (refs_span(e)) {
        fail_at(p, ERR_UNSUPPORTED, e->pos,
                "comparing an aggregate with anything but a number or duration is not supported");
        return false;
    }
    cls_t c;
    if (check(p, e, &c))
        return false;
    if (c != C_NUM) {
        fail_at(p, ERR_PARSE, e->pos, "an aggregate must be compared with a number, not a %s",
                cls_name(c));
        return false;
    }
    traceql_span_ctx_t ctx;
    memset(&ctx, 0, sizeof ctx);
    *out = traceql_eval(e, &ctx);
    if (out->type == TQL_V_NIL) {
        fail_at(p, ERR_PARSE, e->pos, "the value of this expression is undefined");
        return false;
    }
    return true;
}

/* A pipeline stage other than a spanset filter: count() > 2, avg(f) < 1s, select(a, b), and the
 * ones rejected as unsupported. */
static bool parse_stage_fn(ps_t *p, tql_stage_t *st)
{
    memset(st, 0, sizeof *st);
    const tql_token_t *t = tok(p);
    str_t w = text(p, t);
    for (size_t i = 0; i < sizeof k_metrics_fns / sizeof k_metrics_fns[0]; i++)
        if (str_eq_cstr(w, k_metrics_fns[i])) {
            fail_at(p, ERR_UNSUPPORTED, t->pos,
                    "TraceQL metrics (%.*s()) are not supported; use span metrics through the "
                    "Prometheus API",
                    STR_FMT(w));
            return false;
        }
    next(p);
    if (!expect(p, TQL_T_LPAREN, "'('"))
        return false;
    if (str_eq_cstr(w, "coalesce")) {
        if (expect(p, TQL_T_RPAREN, "')'"))
            fail_at(p, ERR_UNSUPPORTED, t->pos, "coalesce() is not supported");
        return false;
    }
    if (str_eq_cstr(w, "select") || str_eq_cstr(w, "by")) {
        bool by = str_eq_cstr(w, "by");
        st->kind = TQL_ST_SELECT;
        do {
            tql_expr_t *f = parse_field(p, 1);
            if (!f)
                return false;
            if (!by && f->type != TQL_N_ATTR && f->type != TQL_N_INTRINSIC) {
                fail_at(p, ERR_PARSE, f->pos, "select() takes attributes and intrinsics only");
                return false;
            }
            size_t n = st->n_fields;
            if ((n & (n - 1)) == 0) {
                tql_expr_t **v = ARENA_ARRAY(p->a, tql_expr_t *, n ? 2 * n : 1);
                if (n)
                    memcpy(v, st->fields, n * sizeof *v);
                st->fields = v;
            }
            st->fields[st->n_fields++] = f;
        } while (!by && accept(p, TQL_T_COMMA));
        if (!expect(p, TQL_T_RPAREN, by ? "')'" : "',' or ')'"))
            return false;
        if (by) {
            if (!refs_span(st->fields[0])) {
                fail_at(p, ERR_PARSE, st->fields[0]->pos, "by() must refer to the span");
                return false;
            }
            fail_at(p, ERR_UNSUPPORTED, t->pos, "by() grouping is not supported");
            return false;
        }
        return true;
    }
    st->kind = TQL_ST_AGG;
    static const char *aggs[] = {"count", "avg", "min", "max", "sum"};
    for (size_t i = 0; i < 5; i++)
        if (str_eq_cstr(w, aggs[i]))
            st->agg = (tql_agg_t)i;
    if (st->agg != TQL_AGG_COUNT) {
        st->field = parse_field(p, 1);
        if (!st->field)
            return false;
        cls_t c;
        if (check(p, st->field, &c))
            return false;
        if (c != C_NUM && c != C_ANY) {
            fail_at(p, ERR_PARSE, st->field->pos, "%.*s() needs a numeric field, not a %s",
                    STR_FMT(w), cls_name(c));
            return false;
        }
        if (!refs_span(st->field)) {
            fail_at(p, ERR_PARSE, st->field->pos, "%.*s() must refer to the span", STR_FMT(w));
            return false;
        }
    }
    if (!expect(p, TQL_T_RPAREN, "')'"))
        return false;
    tql_op_t op = TQL_OP_NONE;
    const tql_token_t *ct = tok(p);
    if (field_prec(ct->kind, &op) != 2 || op == TQL_OP_RE || op == TQL_OP_NRE) {
        if (field_prec(ct->kind, &op))
            fail_at(p, ERR_UNSUPPORTED, ct->pos, "arithmetic on aggregates is not supported");
        else
            unexpected(p, "a comparison (an aggregate must be compared: count() > 2)");
        return false;
    }
    next(p);
    st->cmp = op;
    if (kind(p) == TQL_T_IDENT && is_stage_word(text(p, tok(p)))) {
        fail_at(p, ERR_UNSUPPORTED, tok(p)->pos, "comparing two aggregates is not supported");
        return false;
    }
    tql_expr_t *rhs = parse_field(p, 3);
    return rhs && fold_number(p, rhs, &st->value);
}

static tql_set_t *parse_pipeline(ps_t *p, int depth);

/* A spanset: { ... } or ( pipeline ). */
static tql_set_t *parse_spanset_primary(ps_t *p, int depth)
{
    if (kind(p) == TQL_T_LBRACE) {
        tql_leaf_t *l = new_leaf(p);
        tql_stage_t st;
        if (!parse_filter(p, &st))
            return NULL;
        add_stage(p, l, &st);
        return leaf_set(p, l);
    }
    if (kind(p) == TQL_T_LPAREN) {
        next(p);
        tql_set_t *s = parse_pipeline(p, depth + 1);
        if (!s || !expect(p, TQL_T_RPAREN, "')'"))
            return NULL;
        return s;
    }
    /* Scalar arithmetic over metrics queries (`2 * ({} | rate())`): name the real reason. */
    for (size_t i = p->i; i < p->lx.n; i++)
        for (size_t k = 0; k < sizeof k_metrics_fns / sizeof k_metrics_fns[0]; k++)
            if (p->lx.toks[i].kind == TQL_T_IDENT &&
                str_eq_cstr(text(p, &p->lx.toks[i]), k_metrics_fns[k])) {
                fail_at(p, ERR_UNSUPPORTED, tok(p)->pos,
                        "arithmetic on TraceQL metrics is not supported");
                return NULL;
            }
    unexpected(p, "a spanset '{ ... }'");
    return NULL;
}

static tql_set_t *parse_spanset_struct(ps_t *p, int depth)
{
    tql_set_t *l = parse_spanset_primary(p, depth);
    while (l && (kind(p) == TQL_T_STRUCT || kind(p) == TQL_T_GT || kind(p) == TQL_T_LT ||
                 kind(p) == TQL_T_NRE)) {
        const tql_token_t *t = tok(p);
        next(p);
        if (!parse_spanset_primary(p, depth))
            return NULL;
        str_t s = text(p, t);
        fail_at(p, ERR_UNSUPPORTED, t->pos, "structural operator %.*s is not supported",
                STR_FMT(s));
        return NULL;
    }
    return l;
}

static tql_set_t *parse_spanset_expr(ps_t *p, int depth)
{
    tql_set_t *l = parse_spanset_struct(p, depth);
    while (l && (kind(p) == TQL_T_AND || kind(p) == TQL_T_OR)) {
        tql_set_type_t type = kind(p) == TQL_T_AND ? TQL_SET_AND : TQL_SET_OR;
        next(p);
        tql_set_t *r = parse_spanset_struct(p, depth);
        if (!r)
            return NULL;
        tql_set_t *s = ARENA_NEW(p->a, tql_set_t);
        s->type = type;
        s->l = l;
        s->r = r;
        l = s;
    }
    return l;
}

/* spansetExpr ( '|' stage )*, or a pipeline starting with a stage (applied to all spans). */
static tql_set_t *parse_pipeline(ps_t *p, int depth)
{
    if (depth > MAX_DEPTH) {
        fail_at(p, ERR_PARSE, tok(p)->pos, "query nested too deeply");
        return NULL;
    }
    tql_set_t *s;
    if (kind(p) == TQL_T_IDENT && is_stage_word(text(p, tok(p)))) {
        if (str_eq_cstr(text(p, tok(p)), "coalesce")) {
            fail_at(p, ERR_PARSE, tok(p)->pos, "a pipeline cannot start with coalesce()");
            return NULL;
        }
        tql_leaf_t *l = new_leaf(p);
        tql_stage_t st;
        if (!parse_stage_fn(p, &st))
            return NULL;
        add_stage(p, l, &st);
        s = leaf_set(p, l);
    } else {
        s = parse_spanset_expr(p, depth);
    }
    while (s && kind(p) == TQL_T_PIPE) {
        const tql_token_t *t = tok(p);
        next(p);
        tql_stage_t st;
        if (kind(p) == TQL_T_LBRACE) {
            if (!parse_filter(p, &st))
                return NULL;
        } else if (kind(p) == TQL_T_IDENT && is_stage_word(text(p, tok(p)))) {
            if (!parse_stage_fn(p, &st))
                return NULL;
        } else {
            unexpected(p, "a pipeline stage ({ ... }, count() > N, avg(f) > N, select(...))");
            return NULL;
        }
        if (s->type != TQL_SET_LEAF) {
            fail_at(p, ERR_UNSUPPORTED, t->pos,
                    "a pipeline stage after a spanset operator (&&, ||) is not supported; put "
                    "the stage inside parentheses on one side");
            return NULL;
        }
        add_stage(p, s->leaf, &st);
    }
    if (s && kind(p) == TQL_T_IDENT && str_eq_cstr(text(p, tok(p)), "with")) {
        fail_at(p, ERR_UNSUPPORTED, tok(p)->pos, "query hints (with) are not supported");
        return NULL;
    }
    return s;
}

static void collect_leaves(ps_t *p, tql_set_t *s)
{
    if (s->type == TQL_SET_LEAF) {
        size_t n = p->q->n_leaves;
        if ((n & (n - 1)) == 0) {
            tql_leaf_t **v = ARENA_ARRAY(p->a, tql_leaf_t *, n ? 2 * n : 1);
            if (n)
                memcpy(v, p->q->leaves, n * sizeof *v);
            p->q->leaves = v;
        }
        s->leaf->index = n;
        p->q->leaves[p->q->n_leaves++] = s->leaf;
        return;
    }
    collect_leaves(p, s->l);
    collect_leaves(p, s->r);
}

int traceql_parse(str_t q, arena_t *a, tql_query_t **out, err_t *err)
{
    ps_t p = {.a = a, .err = err};
    *out = NULL;
    p.q = ARENA_NEW(a, tql_query_t);
    traceql_lex(q, a, &p.lx);
    if (p.lx.n > TQL_MAX_TOKENS) {
        fail_at(&p, ERR_PARSE, p.lx.toks[TQL_MAX_TOKENS].pos, "query too long: more than %d tokens",
                TQL_MAX_TOKENS);
        return p.rc;
    }
    if (p.lx.toks[0].kind == TQL_T_EOF) {
        fail_at(&p, ERR_PARSE, 0,
                "empty query: write a spanset such as { } or "
                "{ span.http.status_code >= 500 }");
        return p.rc;
    }
    tql_set_t *s = parse_pipeline(&p, 0);
    if (s && kind(&p) != TQL_T_EOF)
        unexpected(&p, kind(&p) == TQL_T_RPAREN ? "end of query (unbalanced ')')"
                                                : "end of query, '|', '&&' or '||'");
    if (p.rc) {
        traceql_free(p.q);
        return p.rc;
    }
    p.q->root = s;
    collect_leaves(&p, s);
    if (p.q->n_leaves > TQL_MAX_SPANSETS) {
        fail_at(&p, ERR_UNSUPPORTED, 0,
                "a query with more than %d spansets is not supported (this one has %zu)",
                TQL_MAX_SPANSETS, p.q->n_leaves);
        traceql_free(p.q);
        return p.rc;
    }
    *out = p.q;
    return 0;
}

void traceql_free(tql_query_t *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->n_regexes; i++)
        matcher_deinit(q->regexes[i]);
    q->n_regexes = 0;
}

/* ---- the legacy tags search ---- */

int traceql_from_tags(str_t tags, arena_t *a, tql_query_t **out, err_t *err)
{
    tql_query_t *q = ARENA_NEW(a, tql_query_t);
    tql_leaf_t *leaf = ARENA_NEW(a, tql_leaf_t);
    tql_expr_t *all = NULL;
    size_t i = 0;
    while (i < tags.len) {
        while (i < tags.len && (tags.ptr[i] == ' ' || tags.ptr[i] == '\t'))
            i++;
        if (i == tags.len)
            break;
        size_t k0 = i;
        while (i < tags.len && tags.ptr[i] != '=' && tags.ptr[i] != ' ')
            i++;
        str_t key = {tags.ptr + k0, i - k0};
        if (!key.len || i == tags.len || tags.ptr[i] != '=')
            return err_set(err, ERR_PARSE,
                           "invalid tags at offset %zu: expected key=value pairs separated by "
                           "spaces (logfmt)",
                           k0);
        i++;
        str_t val;
        if (i < tags.len && tags.ptr[i] == '"') {
            size_t v0 = i++, close = i;
            while (close < tags.len && tags.ptr[close] != '"')
                close += tags.ptr[close] == '\\' ? 2 : 1;
            char *o = arena_alloc(a, close - i + 1); /* the value is at most this long */
            size_t n = 0;
            while (i < tags.len && tags.ptr[i] != '"') {
                if (tags.ptr[i] == '\\' && i + 1 < tags.len)
                    i++;
                o[n++] = tags.ptr[i++];
            }
            if (i == tags.len)
                return err_set(err, ERR_PARSE, "invalid tags at offset %zu: unterminated quote",
                               v0);
            i++;
            val = (str_t){o, n};
        } else {
            size_t v0 = i;
            while (i < tags.len && tags.ptr[i] != ' ' && tags.ptr[i] != '\t')
                i++;
            val = (str_t){tags.ptr + v0, i - v0};
        }
        tql_expr_t *lhs = ARENA_NEW(a, tql_expr_t);
        tql_intrinsic_t in;
        if ((str_eq_cstr(key, "name") || str_eq_cstr(key, "status")) &&
            lookup_intrinsic(key, &in)) {
            lhs->type = TQL_N_INTRINSIC;
            lhs->in = in;
        } else {
            lhs->type = TQL_N_ATTR;
            lhs->scope = TQL_SC_ANY;
            lhs->name = arena_str(a, key);
        }
        tql_expr_t *rhs = ARENA_NEW(a, tql_expr_t);
        rhs->type = TQL_N_STATIC;
        rhs->v.type = TQL_V_STRING;
        rhs->v.u.s = arena_str(a, val);
        tql_expr_t *c = ARENA_NEW(a, tql_expr_t);
        c->type = TQL_N_BINARY;
        c->op = TQL_OP_CONTAINS;
        c->l = lhs;
        c->r = rhs;
        if (all) {
            tql_expr_t *and = ARENA_NEW(a, tql_expr_t);
            and->type = TQL_N_BINARY;
            and->op = TQL_OP_AND;
            and->l = all;
            and->r = c;
            all = and;
        } else {
            all = c;
        }
    }
    tql_stage_t *st = ARENA_NEW(a, tql_stage_t);
    st->kind = TQL_ST_FILTER;
    st->filter = all;
    leaf->stages = st;
    leaf->n_stages = 1;
    q->root = ARENA_NEW(a, tql_set_t);
    q->root->type = TQL_SET_LEAF;
    q->root->leaf = leaf;
    q->leaves = ARENA_ARRAY(a, tql_leaf_t *, 1);
    q->leaves[0] = leaf;
    q->n_leaves = 1;
    *out = q;
    return 0;
}

int traceql_parse_field(str_t s, arena_t *a, tql_expr_t **out, err_t *err)
{
    ps_t p = {.a = a, .err = err};
    p.q = ARENA_NEW(a, tql_query_t);
    traceql_lex(s, a, &p.lx);
    tql_tok_t k = p.lx.toks[0].kind;
    tql_expr_t *e = NULL;
    if (p.lx.n == 2 && (k == TQL_T_ATTR || k == TQL_T_IDENT || k == TQL_T_SCOPED_IN))
        e = parse_primary(&p);
    if (!e || (e->type != TQL_N_ATTR && e->type != TQL_N_INTRINSIC)) {
        if (!p.rc)
            fail_at(&p, ERR_PARSE, 0,
                    "expected an attribute (span.x, resource.x, .x) or an intrinsic (name, "
                    "status, kind, ...)");
        return p.rc;
    }
    *out = e;
    return 0;
}
