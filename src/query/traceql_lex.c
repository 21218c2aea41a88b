/*
 * traceql_lex.c - the TraceQL lexer, Go duration parsing and formatting (see traceql.h).
 *
 * The query is tokenized up front into an array; a lexer error stops the scan and becomes the
 * last token. Rules follow Tempo's pkg/traceql/lexer.go:
 *   - an attribute starts with '.' or a scope word followed by '.' (span. resource. parent. event.
 *     link. instrumentation.) and runs until whitespace or one of { } ( ) = ~ ! < > & | ^ , so
 *     `span.http.status_code` and `.foo-bar` are single names; `."a b"` is a quoted name with \"
 *     and \\ escapes;
 *   - span: trace: event: link: instrumentation: followed by a word is a scoped intrinsic;
 *   - a number directly followed by a unit (ns us µs ms s m h) is a duration, compound as in Go
 *     (`1h30m`); other numbers are ints or floats (`1.5`, `1e9`);
 *   - strings are "..." with Go escapes or `...` raw.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "query/traceql.h"

typedef struct lx {
    tql_lexer_t *out;
    const char *s;
    uint32_t n, pos;
    size_t cap;
    arena_t *a;
} lx_t;

static bool is_alpha(int c) { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Tempo's isAttributeRune: everything but whitespace and the operator/bracket characters. */
static bool is_attr_rune(int c) { return c >= 0 && !is_space(c) && !strchr("{}()=~!<>&|^,", c); }

static int peekc(const lx_t *l, uint32_t off)
{
    return l->pos + off < l->n ? (unsigned char)l->s[l->pos + off] : -1;
}

static void emit(lx_t *l, tql_tok_t k, uint32_t start, uint32_t end)
{
    if (l->out->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        tql_token_t *t = ARENA_ARRAY(l->a, tql_token_t, cap);
        if (l->out->n)
            memcpy(t, l->out->toks, l->out->n * sizeof *t);
        l->out->toks = t;
        l->cap = cap;
    }
    l->out->toks[l->out->n++] = (tql_token_t){k, start, end - start};
}

static bool fail(lx_t *l, uint32_t at, const char *fmt, const char *arg)
{
    snprintf(l->out->err, sizeof l->out->err, fmt, arg);
    emit(l, TQL_T_ERR, at, at);
    return false;
}

/* A "..." (Go escapes) or `...` string at pos; validates escapes. */
static bool lex_string(lx_t *l)
{
    uint32_t start = l->pos;
    char q = l->s[l->pos++];
    while (l->pos < l->n) {
        char c = l->s[l->pos];
        if (c == q) {
            l->pos++;
            emit(l, TQL_T_STRING, start, l->pos);
            return true;
        }
        if (c == '\\' && q == '"') {
            if (l->pos + 1 >= l->n)
                break;
            char e = l->s[l->pos + 1];
            int hex = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
            if (hex) {
                for (int i = 0; i < hex; i++) {
                    int h = peekc(l, 2 + (uint32_t)i);
                    if (!(is_digit(h) || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F')))
                        return fail(l, l->pos, "invalid escape sequence in string%s", "");
                }
                l->pos += 2 + (uint32_t)hex;
                continue;
            }
            if (e >= '0' && e <= '7') {
                for (int i = 0; i < 3; i++)
                    if (peekc(l, 1 + (uint32_t)i) < '0' || peekc(l, 1 + (uint32_t)i) > '7')
                        return fail(l, l->pos, "invalid escape sequence in string%s", "");
                l->pos += 4;
                continue;
            }
            if (!strchr("abfnrtv\\\"'", e))
                return fail(l, l->pos, "invalid escape sequence in string%s", "");
            l->pos += 2;
            continue;
        }
        l->pos++;
    }
    return fail(l, start, "unterminated string%s", "");
}

/* A quoted attribute name ."..." (only \" and \\ escape); pos is at the quote. */
static bool skip_quoted_name(lx_t *l)
{
    uint32_t start = l->pos++;
    while (l->pos < l->n) {
        char c = l->s[l->pos];
        if (c == '"') {
            l->pos++;
            return true;
        }
        if (c == '\\') {
            int e = peekc(l, 1);
            if (e != '"' && e != '\\')
                return fail(l, l->pos,
                            "invalid escape in quoted attribute name (only \\\" and "
                            "\\\\)%s",
                            "");
            l->pos += 2;
            continue;
        }
        l->pos++;
    }
    return fail(l, start, "unterminated quoted attribute name%s", "");
}

/* The name part of an attribute token after its '.'. */
static bool lex_attr_name(lx_t *l, uint32_t start)
{
    if (peekc(l, 0) == '"') {
        if (!skip_quoted_name(l))
            return false;
    } else {
        uint32_t name = l->pos;
        while (l->pos < l->n && is_attr_rune((unsigned char)l->s[l->pos]))
            l->pos++;
        if (l->pos == name)
            return fail(l, start, "attribute name expected after '.'%s", "");
    }
    emit(l, TQL_T_ATTR, start, l->pos);
    return true;
}

static bool lex_number(lx_t *l)
{
    uint32_t start = l->pos;
    bool flt = false;
    while (is_digit(peekc(l, 0)))
        l->pos++;
    if (peekc(l, 0) == '.' && is_digit(peekc(l, 1))) {
        flt = true;
        l->pos++;
        while (is_digit(peekc(l, 0)))
            l->pos++;
    }
    int c = peekc(l, 0);
    if ((c == 'e' || c == 'E') &&
        (is_digit(peekc(l, 1)) ||
         ((peekc(l, 1) == '+' || peekc(l, 1) == '-') && is_digit(peekc(l, 2))))) {
        flt = true;
        l->pos += 2;
        while (is_digit(peekc(l, 0)))
            l->pos++;
        c = peekc(l, 0);
    }
    /* A unit letter (or µ) right after the digits: a duration such as 1h30m or 1.5s. */
    if (is_alpha(c) || c == 0xc2 || c == 0xce) {
        while (l->pos < l->n) {
            c = peekc(l, 0);
            if (is_alpha(c) || is_digit(c) || c == '.' || c >= 0x80)
                l->pos++;
            else
                break;
        }
        int64_t ns;
        err_t err;
        if (traceql_parse_go_duration((str_t){l->s + start, l->pos - start}, &ns, &err) != 0) {
            char tmp[128];
            snprintf(tmp, sizeof tmp, "%.*s", (int)(l->pos - start), l->s + start);
            return fail(l, start, "invalid number or duration \"%s\"", tmp);
        }
        emit(l, TQL_T_DURATION, start, l->pos);
        return true;
    }
    emit(l, flt ? TQL_T_FLOAT : TQL_T_INT, start, l->pos);
    return true;
}

static bool is_attr_scope(str_t w)
{
    static const char *scopes[] = {"span",  "resource", "parent",
                                   "event", "link",     "instrumentation"};
    for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++)
        if (str_eq_cstr(w, scopes[i]))
            return true;
    return false;
}

static bool is_intrinsic_scope(str_t w)
{
    static const char *scopes[] = {"span", "trace", "event", "link", "instrumentation"};
    for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++)
        if (str_eq_cstr(w, scopes[i]))
            return true;
    return false;
}

static bool lex_word(lx_t *l)
{
    uint32_t start = l->pos;
    while (is_alpha(peekc(l, 0)) || is_digit(peekc(l, 0)))
        l->pos++;
    str_t w = {l->s + start, l->pos - start};
    if (peekc(l, 0) == '.' && is_attr_scope(w)) {
        l->pos++;
        return lex_attr_name(l, start);
    }
    if (peekc(l, 0) == ':' && is_intrinsic_scope(w)) {
        l->pos++;
        uint32_t name = l->pos;
        while (is_alpha(peekc(l, 0)) || is_digit(peekc(l, 0)))
            l->pos++;
        if (l->pos == name)
            return fail(l, start, "intrinsic name expected after '%s:'",
                        arena_strndup(l->a, w.ptr, w.len));
        emit(l, TQL_T_SCOPED_IN, start, l->pos);
        return true;
    }
    emit(l, TQL_T_IDENT, start, l->pos);
    return true;
}

/* Operators of one to three characters, longest first. */
static const struct {
    const char *text;
    tql_tok_t kind;
} k_ops[] = {
    {"&>>", TQL_T_STRUCT}, {"&<<", TQL_T_STRUCT}, {"!>>", TQL_T_STRUCT}, {"!<<", TQL_T_STRUCT},
    {"&&", TQL_T_AND},     {"||", TQL_T_OR},      {"!=", TQL_T_NEQ},     {"!~", TQL_T_NRE},
    {"=~", TQL_T_RE},      {">=", TQL_T_GTE},     {"<=", TQL_T_LTE},     {">>", TQL_T_STRUCT},
    {"<<", TQL_T_STRUCT},  {"&>", TQL_T_STRUCT},  {"&<", TQL_T_STRUCT},  {"&~", TQL_T_STRUCT},
    {"!>", TQL_T_STRUCT},  {"!<", TQL_T_STRUCT},  {"{", TQL_T_LBRACE},   {"}", TQL_T_RBRACE},
    {"(", TQL_T_LPAREN},   {")", TQL_T_RPAREN},   {",", TQL_T_COMMA},    {"|", TQL_T_PIPE},
    {"!", TQL_T_NOT},      {"=", TQL_T_EQ},       {">", TQL_T_GT},       {"<", TQL_T_LT},
    {"~", TQL_T_STRUCT},   {"+", TQL_T_ADD},      {"-", TQL_T_SUB},      {"*", TQL_T_MUL},
    {"/", TQL_T_DIV},      {"%", TQL_T_MOD},      {"^", TQL_T_POW},
};

void traceql_lex(str_t in, arena_t *a, tql_lexer_t *out)
{
    memset(out, 0, sizeof *out);
    out->in = in;
    lx_t l = {.out = out, .s = in.ptr, .n = (uint32_t)in.len, .a = a};
    if (in.len > UINT32_MAX / 2) {
        fail(&l, 0, "query too long%s", "");
        return;
    }
    while (l.pos < l.n) {
        int c = peekc(&l, 0);
        if (is_space(c)) {
            l.pos++;
            continue;
        }
        bool ok = true;
        if (c == '"' || c == '`') {
            ok = lex_string(&l);
        } else if (is_digit(c)) {
            ok = lex_number(&l);
        } else if (c == '.') {
            uint32_t start = l.pos++;
            ok = lex_attr_name(&l, start);
        } else if (is_alpha(c)) {
            ok = lex_word(&l);
        } else {
            size_t i = 0, n_ops = sizeof k_ops / sizeof k_ops[0];
            for (; i < n_ops; i++) {
                size_t k = strlen(k_ops[i].text);
                if (l.pos + k <= l.n && memcmp(l.s + l.pos, k_ops[i].text, k) == 0) {
                    emit(&l, k_ops[i].kind, l.pos, l.pos + (uint32_t)k);
                    l.pos += (uint32_t)k;
                    break;
                }
            }
            if (i == n_ops) {
                char ch[8];
                if (c >= 0x20 && c < 0x7f)
                    snprintf(ch, sizeof ch, "%c", c);
                else
                    snprintf(ch, sizeof ch, "\\x%02x", c);
                ok = fail(&l, l.pos, "unexpected character '%s'", ch);
            }
        }
        if (!ok)
            return;
    }
    emit(&l, TQL_T_EOF, l.n, l.n);
}

void traceql_line_col(str_t in, uint32_t pos, int *line, int *col)
{
    int ln = 1, cl = 1;
    for (uint32_t i = 0; i < pos && i < in.len; i++) {
        if (in.ptr[i] == '\n') {
            ln++;
            cl = 1;
        } else {
            cl++;
        }
    }
    *line = ln;
    *col = cl;
}

/* ---- Go durations ---- */

int traceql_parse_go_duration(str_t s, int64_t *out, err_t *err)
{
    static const struct {
        const char *unit;
        double ns;
    } units[] = {{"ns", 1},   {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"\xce\xbcs", 1e3},
                 {"ms", 1e6}, {"s", 1e9},  {"m", 60e9},        {"h", 3600e9}};
    size_t i = 0;
    bool neg = false;
    if (i < s.len && (s.ptr[i] == '-' || s.ptr[i] == '+'))
        neg = s.ptr[i++] == '-';
    if (s.len - i == 1 && s.ptr[i] == '0') {
        *out = 0;
        return 0;
    }
    if (i == s.len)
        goto bad;
    double total = 0;
    while (i < s.len) {
        size_t d0 = i;
        double v = 0;
        while (i < s.len && is_digit((unsigned char)s.ptr[i]))
            v = v * 10 + (s.ptr[i++] - '0');
        bool had_int = i > d0;
        bool had_frac = false;
        if (i < s.len && s.ptr[i] == '.') {
            i++;
            double scale = 0.1;
            while (i < s.len && is_digit((unsigned char)s.ptr[i])) {
                v += (s.ptr[i++] - '0') * scale;
                scale /= 10;
                had_frac = true;
            }
        }
        if (!had_int && !had_frac)
            goto bad;
        size_t u0 = i;
        while (i < s.len && !is_digit((unsigned char)s.ptr[i]) && s.ptr[i] != '.')
            i++;
        str_t unit = {s.ptr + u0, i - u0};
        if (!unit.len)
            return err_set(err, ERR_PARSE, "time: missing unit in duration \"%.*s\"", STR_FMT(s));
        double mul = 0;
        for (size_t k = 0; k < sizeof units / sizeof units[0]; k++)
            if (str_eq_cstr(unit, units[k].unit))
                mul = units[k].ns;
        if (!mul)
            return err_set(err, ERR_PARSE, "time: unknown unit \"%.*s\" in duration \"%.*s\"",
                           STR_FMT(unit), STR_FMT(s));
        total += v * mul;
        if (total > 9223372036854775807.0)
            return err_set(err, ERR_PARSE, "time: invalid duration \"%.*s\"", STR_FMT(s));
    }
    *out = (int64_t)llround(neg ? -total : total);
    return 0;
bad:
    return err_set(err, ERR_PARSE, "time: invalid duration \"%.*s\"", STR_FMT(s));
}

/* Go's fmtFrac/fmtInt pieces of time.Duration.String. */
void traceql_fmt_duration(buf_t *out, int64_t d)
{
    char buf[40];
    int w = (int)sizeof buf;
    uint64_t u = d < 0 ? (uint64_t)0 - (uint64_t)d : (uint64_t)d;
    bool neg = d < 0;
    if (u < 1000000000ULL) {
        int prec = 0;
        w--;
        buf[w] = 's';
        w--;
        if (u == 0) {
            buf_puts(out, "0s");
            return;
        } else if (u < 1000ULL) {
            prec = 0;
            buf[w] = 'n';
        } else if (u < 1000000ULL) {
            prec = 3;
            w--;
            memcpy(&buf[w], "\xc2\xb5", 2);
        } else {
            prec = 6;
            buf[w] = 'm';
        }
        /* fmtFrac */
        bool print = false;
        for (int i = 0; i < prec; i++) {
            int digit = (int)(u % 10);
            print = print || digit != 0;
            if (print) {
                buf[--w] = (char)('0' + digit);
            }
            u /= 10;
        }
        if (print)
            buf[--w] = '.';
        if (u == 0)
            buf[--w] = '0';
        while (u > 0) {
            buf[--w] = (char)('0' + u % 10);
            u /= 10;
        }
    } else {
        buf[--w] = 's';
        bool print = false;
        for (int i = 0; i < 9; i++) {
            int digit = (int)(u % 10);
            print = print || digit != 0;
            if (print)
                buf[--w] = (char)('0' + digit);
            u /= 10;
        }
        if (print)
            buf[--w] = '.';
        /* u is now whole seconds */
        uint64_t secs = u % 60;
        u /= 60;
        if (secs == 0)
            buf[--w] = '0';
        while (secs > 0) {
            buf[--w] = (char)('0' + secs % 10);
            secs /= 10;
        }
        if (u > 0) {
            buf[--w] = 'm';
            uint64_t mins = u % 60;
            u /= 60;
            if (mins == 0)
                buf[--w] = '0';
            while (mins > 0) {
                buf[--w] = (char)('0' + mins % 10);
                mins /= 10;
            }
            if (u > 0) {
                buf[--w] = 'h';
                while (u > 0) {
                    buf[--w] = (char)('0' + u % 10);
                    u /= 10;
                }
            }
        }
    }
    if (neg)
        buf[--w] = '-';
    buf_append(out, buf + w, sizeof buf - (size_t)w);
}
