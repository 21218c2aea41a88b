/*
 * promql_lex.c - the PromQL lexer, plus the string, duration and quoting helpers the parser and
 * the printer share.
 *
 * The whole query is tokenized up front into an array; a lexer error stops the scan and becomes
 * the last token, so the parser reports it only when it gets that far (as Prometheus' streaming
 * lexer does). Inside braces only label names, strings, matcher operators, ',' and '}' are
 * valid. Number scanning follows Prometheus' rules (hex, '_' between digits, exponents) and a
 * number directly followed by a unit letter is a duration (`5m`, `1h30m`, `10s53ms`). Error
 * messages use Prometheus' wording ("unexpected character inside braces: '*'", "bad number or
 * duration syntax: \"5mm\"", "unterminated quoted string").
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "query/internal.h"

typedef struct lx {
    pql_lexer_t *out;
    const char *s;
    uint32_t n, pos;
    size_t cap;
    arena_t *a;
    int paren;
    bool bracket, brace;
} lx_t;

static bool is_alpha(int c) { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_alnum(int c) { return is_alpha(c) || is_digit(c); }
static bool is_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static int peekc(const lx_t *l, uint32_t off)
{
    return l->pos + off < l->n ? (unsigned char)l->s[l->pos + off] : -1;
}

static void emit(lx_t *l, pql_tok_t k, uint32_t start, uint32_t end)
{
    if (l->out->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        pql_token_t *t = ARENA_ARRAY(l->a, pql_token_t, cap);
        if (l->out->n)
            memcpy(t, l->out->toks, l->out->n * sizeof *t);
        l->out->toks = t;
        l->cap = cap;
    }
    l->out->toks[l->out->n++] = (pql_token_t){k, start, end - start};
}

/* Decodes one UTF-8 rune at p (n bytes available); returns its length, or 0 when invalid. */
static int utf8_decode(const unsigned char *p, size_t n, uint32_t *r)
{
    if (n == 0)
        return 0;
    if (p[0] < 0x80) {
        *r = p[0];
        return 1;
    }
    int len = p[0] >= 0xF0 ? 4 : p[0] >= 0xE0 ? 3 : p[0] >= 0xC2 ? 2 : 0;
    if (len == 0 || p[0] > 0xF4 || (size_t)len > n)
        return 0;
    uint32_t v = p[0] & (0x7F >> len);
    for (int i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (p[i] & 0x3F);
    }
    if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10FFFF)) ||
        (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *r = v;
    return len;
}

static void put_utf8(char *o, size_t *k, uint32_t r)
{
    if (r < 0x80) {
        o[(*k)++] = (char)r;
    } else if (r < 0x800) {
        o[(*k)++] = (char)(0xC0 | r >> 6);
        o[(*k)++] = (char)(0x80 | (r & 0x3F));
    } else if (r < 0x10000) {
        o[(*k)++] = (char)(0xE0 | r >> 12);
        o[(*k)++] = (char)(0x80 | ((r >> 6) & 0x3F));
        o[(*k)++] = (char)(0x80 | (r & 0x3F));
    } else {
        o[(*k)++] = (char)(0xF0 | r >> 18);
        o[(*k)++] = (char)(0x80 | ((r >> 12) & 0x3F));
        o[(*k)++] = (char)(0x80 | ((r >> 6) & 0x3F));
        o[(*k)++] = (char)(0x80 | (r & 0x3F));
    }
}

/* Go's %q of a rune: 'a', '\n', '\x01', 'é'. */
static void quote_rune(char *o, size_t cap, const char *p, size_t n)
{
    uint32_t r = 0xFFFD;
    int len = utf8_decode((const unsigned char *)p, n, &r);
    if (len == 0)
        r = 0xFFFD;
    static const char esc[] = "\a\b\f\n\r\t\v";
    static const char escl[] = "abfnrtv";
    const char *e = r && r < 0x80 ? strchr(esc, (int)r) : NULL;
    if (r == '\'' || r == '\\')
        snprintf(o, cap, "'\\%c'", (char)r);
    else if (e)
        snprintf(o, cap, "'\\%c'", escl[e - esc]);
    else if (r < 0x20 || r == 0x7F)
        snprintf(o, cap, "'\\x%02x'", (unsigned)r);
    else if (len == 0)
        snprintf(o, cap, "'\\ufffd'");
    else
        snprintf(o, cap, "'%.*s'", len, p);
}

static void lx_errorf(lx_t *l, uint32_t start, const char *fmt, const char *arg)
{
    snprintf(l->out->err, sizeof l->out->err, fmt, arg);
    emit(l, PQL_ERR, start, start);
}

static void lx_err_char(lx_t *l, uint32_t start, const char *fmt, uint32_t at)
{
    char q[16];
    quote_rune(q, sizeof q, l->s + at, l->n - at);
    lx_errorf(l, start, fmt, q);
}

/* Scans or decodes a quoted string starting at its opening quote. Returns the bytes consumed,
 * or 0 with msg set. out (may be NULL) receives the decoded bytes. */
static size_t scan_string(const char *s, size_t n, char *out, size_t *out_len, char *msg,
                          size_t msgsz)
{
    char q = s[0];
    size_t i = 1, k = 0;
    for (;;) {
        if (i >= n || (q != '`' && s[i] == '\n')) {
            snprintf(msg, msgsz,
                     q == '`' ? "unterminated raw string" : "unterminated quoted string");
            return 0;
        }
        unsigned char c = (unsigned char)s[i];
        if (c == (unsigned char)q) {
            i++;
            break;
        }
        if (c == '\\' && q != '`') {
            i++;
            if (i >= n) {
                snprintf(msg, msgsz, "escape sequence not terminated");
                return 0;
            }
            char e = s[i];
            const char *simple = strchr("abfnrtv\\", e);
            if (e && (simple || e == q)) {
                static const char map[] = "\a\b\f\n\r\t\v\\";
                if (out)
                    out[k++] = simple ? map[simple - "abfnrtv\\"] : q;
                k += out ? 0 : 1;
                i++;
                continue;
            }
            int digits = 0, base = 16;
            uint32_t max = 255;
            if (e >= '0' && e <= '7') {
                digits = 3, base = 8;
            } else if (e == 'x') {
                digits = 2;
                i++;
            } else if (e == 'u') {
                digits = 4, max = 0x10FFFF;
                i++;
            } else if (e == 'U') {
                digits = 8, max = 0x10FFFF;
                i++;
            } else {
                uint32_t r = 0xFFFD;
                int len = utf8_decode((const unsigned char *)s + i, n - i, &r);
                snprintf(msg, msgsz, "unknown escape sequence U+%04X '%.*s'", (unsigned)r,
                         len ? len : 0, s + i);
                return 0;
            }
            uint32_t v = 0;
            for (int d = 0; d < digits; d++, i++) {
                if (i >= n) {
                    snprintf(msg, msgsz, "escape sequence not terminated");
                    return 0;
                }
                int ch = (unsigned char)s[i], dv;
                if (ch >= '0' && ch <= '9')
                    dv = ch - '0';
                else if (ch >= 'a' && ch <= 'f')
                    dv = ch - 'a' + 10;
                else if (ch >= 'A' && ch <= 'F')
                    dv = ch - 'A' + 10;
                else
                    dv = 99;
                if (dv >= base) {
                    uint32_t r = 0xFFFD;
                    int len = utf8_decode((const unsigned char *)s + i, n - i, &r);
                    if (ch == '\n' || i + 1 >= n) {
                        snprintf(msg, msgsz, "escape sequence not terminated");
                        return 0;
                    }
                    snprintf(msg, msgsz, "illegal character U+%04X '%.*s' in escape sequence",
                             (unsigned)r, len, s + i);
                    return 0;
                }
                v = v * (uint32_t)base + (uint32_t)dv;
            }
            if (v > max || (v >= 0xD800 && v <= 0xDFFF && max > 255)) {
                snprintf(msg, msgsz, "escape sequence is an invalid Unicode code point");
                return 0;
            }
            if (max == 255) {
                if (out)
                    out[k] = (char)v;
                k++;
            } else {
                char tmp[4];
                size_t tk = 0;
                put_utf8(tmp, &tk, v);
                if (out)
                    memcpy(out + k, tmp, tk);
                k += tk;
            }
            continue;
        }
        uint32_t r;
        int len = utf8_decode((const unsigned char *)s + i, n - i, &r);
        if (len == 0) {
            snprintf(msg, msgsz, "invalid UTF-8 rune");
            return 0;
        }
        if (out)
            memcpy(out + k, s + i, (size_t)len);
        k += (size_t)len;
        i += (size_t)len;
    }
    if (out_len)
        *out_len = k;
    return i;
}

str_t pql_unquote(str_t raw, arena_t *a)
{
    char msg[128];
    char *o = arena_alloc(a, raw.len + 1);
    size_t k = 0;
    if (scan_string(raw.ptr, raw.len, o, &k, msg, sizeof msg) == 0)
        k = 0;
    o[k] = '\0';
    return (str_t){o, k};
}

static bool accept(lx_t *l, const char *set)
{
    int c = peekc(l, 0);
    if (c > 0 && strchr(set, c)) {
        l->pos++;
        return true;
    }
    return false;
}

static bool is_in(lx_t *l, const char *set)
{
    int c = peekc(l, 0);
    return c > 0 && strchr(set, c) != NULL;
}

/* Prometheus' scanNumber: true when a complete number was scanned. */
static bool scan_number(lx_t *l)
{
    uint32_t start = l->pos;
    const char *digits = "0123456789";
    if (peekc(l, 0) == '0' && (peekc(l, 1) == 'x' || peekc(l, 1) == 'X')) {
        l->pos += 2;
        accept(l, "_");
        digits = "0123456789abcdefABCDEF";
    }
    accept(l, ".");
    accept(l, digits);
    bool dot = false, exp = false;
    char set[40];
    snprintf(set, sizeof set, "%s._eE", digits);
    while (is_in(l, set)) {
        if (is_in(l, ".") && dot) {
            l->pos++;
            return false;
        }
        if (is_in(l, "eE") && exp && strlen(digits) == 10) {
            l->pos++;
            return false;
        }
        if (accept(l, ".")) {
            dot = true;
            if (accept(l, "_.") || strlen(digits) > 10)
                return false;
            continue;
        }
        if (strlen(digits) == 10 && accept(l, "eE")) {
            exp = true;
            accept(l, "+-");
            if (accept(l, "._eE") || peekc(l, 0) < 0)
                return false;
            continue;
        }
        if (accept(l, "_")) {
            if (accept(l, "._eE") || peekc(l, 0) < 0)
                return false;
            continue;
        }
        while (accept(l, digits))
            ;
    }
    if (l->pos == start)
        return false;
    return !is_alnum(peekc(l, 0));
}

static bool remaining_duration(lx_t *l)
{
    if (!accept(l, "smhdwy"))
        return false;
    accept(l, "s");
    while (accept(l, "0123456789")) {
        while (accept(l, "0123456789"))
            ;
        if (!accept(l, "smhdw"))
            return false;
        accept(l, "s");
    }
    if (is_alnum(peekc(l, 0))) {
        l->pos++; /* part of the error text */
        return false;
    }
    return true;
}

static bool lex_number(lx_t *l)
{
    uint32_t start = l->pos;
    if (scan_number(l)) {
        emit(l, PQL_NUMBER, start, l->pos);
        return true;
    }
    if (remaining_duration(l)) {
        emit(l, PQL_DURATION, start, l->pos);
        return true;
    }
    char buf[160];
    uint32_t len = l->pos - start;
    buf_t b;
    buf_init(&b, 64);
    pql_quote(&b, (str_t){l->s + start, len});
    snprintf(buf, sizeof buf, "%.*s", (int)buf_len(&b), (const char *)b.pos);
    buf_deinit(&b);
    lx_errorf(l, start, "bad number or duration syntax: %s", buf);
    return false;
}

static bool lex_string(lx_t *l)
{
    char msg[160];
    size_t used = scan_string(l->s + l->pos, l->n - l->pos, NULL, NULL, msg, sizeof msg);
    if (used == 0) {
        lx_errorf(l, l->pos, "%s", msg);
        return false;
    }
    emit(l, PQL_STRING, l->pos, l->pos + (uint32_t)used);
    l->pos += (uint32_t)used;
    return true;
}

/* One token inside braces; false after an error. */
static bool lex_brace(lx_t *l)
{
    uint32_t st = l->pos;
    int c = peekc(l, 0);
    if (is_alpha(c)) {
        while (is_alnum(peekc(l, 0)))
            l->pos++;
        emit(l, PQL_IDENT, st, l->pos);
        return true;
    }
    switch (c) {
    case '"':
    case '\'':
    case '`':
        return lex_string(l);
    case ',':
        l->pos++;
        emit(l, PQL_COMMA, st, l->pos);
        return true;
    case '}':
        l->pos++;
        l->brace = false;
        emit(l, PQL_RBRACE, st, l->pos);
        return true;
    case '=':
        l->pos++;
        if (accept(l, "~"))
            emit(l, PQL_EQL_REGEX, st, l->pos);
        else
            emit(l, PQL_EQL, st, l->pos);
        return true;
    case '!':
        l->pos++;
        if (accept(l, "~")) {
            emit(l, PQL_NEQ_REGEX, st, l->pos);
        } else if (accept(l, "=")) {
            emit(l, PQL_NEQ, st, l->pos);
        } else {
            if (l->pos >= l->n) {
                lx_errorf(l, st, "%s", "unexpected end of input inside braces");
                return false;
            }
            lx_err_char(l, st, "unexpected character after '!' inside braces: %s", l->pos);
            return false;
        }
        return true;
    case '{':
        lx_errorf(l, st, "%s", "unexpected left brace '{'");
        return false;
    default:
        lx_err_char(l, st, "unexpected character inside braces: %s", st);
        return false;
    }
}

static bool lex_op(lx_t *l)
{
    uint32_t st = l->pos;
    int c = peekc(l, 0), c1 = peekc(l, 1);
    pql_tok_t k;
    l->pos++;
    switch (c) {
    case ',':
        k = PQL_COMMA;
        break;
    case '+':
        k = PQL_ADD;
        break;
    case '-':
        k = PQL_SUB;
        break;
    case '*':
        k = PQL_MUL;
        break;
    case '/':
        k = PQL_DIV;
        break;
    case '%':
        k = PQL_MOD;
        break;
    case '^':
        k = PQL_POW;
        break;
    case '@':
        k = PQL_AT;
        break;
    case '=':
        if (c1 == '=') {
            l->pos++;
            k = PQL_EQLC;
        } else if (c1 == '~') {
            lx_err_char(l, st, "unexpected character after '=': %s", st + 1);
            return false;
        } else {
            k = PQL_EQL;
        }
        break;
    case '!':
        if (c1 != '=') {
            if (c1 < 0) {
                lx_errorf(l, st, "%s", "unexpected end of input");
                return false;
            }
            lx_err_char(l, st, "unexpected character after '!': %s", st + 1);
            return false;
        }
        l->pos++;
        k = PQL_NEQ;
        break;
    case '<':
    case '>':
        if (c1 == '=') {
            l->pos++;
            k = c == '<' ? PQL_LTE : PQL_GTE;
        } else {
            k = c == '<' ? PQL_LSS : PQL_GTR;
        }
        break;
    case '(':
        l->paren++;
        k = PQL_LPAREN;
        break;
    case ')':
        if (l->paren == 0) {
            lx_errorf(l, st + 1, "%s", "unexpected right parenthesis ')'"); /* as Prometheus */
            return false;
        }
        l->paren--;
        k = PQL_RPAREN;
        break;
    case '[':
        if (l->bracket) {
            lx_errorf(l, st, "%s", "unexpected left bracket '['");
            return false;
        }
        l->bracket = true;
        k = PQL_LBRACKET;
        break;
    case ']':
        if (!l->bracket) {
            lx_errorf(l, st, "%s", "unexpected right bracket ']'");
            return false;
        }
        l->bracket = false;
        k = PQL_RBRACKET;
        break;
    case '{':
        l->brace = true;
        k = PQL_LBRACE;
        break;
    case ':':
        if (!l->bracket) {
            lx_errorf(l, st, "%s", "unexpected colon ':'");
            return false;
        }
        k = PQL_COLON;
        break;
    default:
        lx_err_char(l, st, "unexpected character: %s", st);
        return false;
    }
    emit(l, k, st, l->pos);
    return true;
}

void pql_lex(str_t in, arena_t *a, pql_lexer_t *out)
{
    memset(out, 0, sizeof *out);
    out->in = in;
    lx_t l = {.out = out, .s = in.ptr, .n = (uint32_t)in.len, .a = a};
    for (;;) {
        int c = peekc(&l, 0);
        if (c < 0) {
            if (l.brace)
                lx_errorf(&l, l.pos, "%s", "unexpected end of input inside braces");
            else if (l.paren > 0)
                lx_errorf(&l, l.pos, "%s", "unclosed left parenthesis");
            else if (l.bracket)
                lx_errorf(&l, l.pos, "%s", "unclosed left bracket");
            else
                emit(&l, PQL_EOF, l.pos, l.pos);
            return;
        }
        if (is_space(c)) {
            l.pos++;
            continue;
        }
        if (c == '#') {
            while (l.pos < l.n && l.s[l.pos] != '\n')
                l.pos++;
            continue;
        }
        bool ok;
        if (l.brace) {
            ok = lex_brace(&l);
        } else if (c == '"' || c == '\'' || c == '`') {
            ok = lex_string(&l);
        } else if (is_digit(c) || (c == '.' && is_digit(peekc(&l, 1)))) {
            ok = lex_number(&l);
        } else if (is_alpha(c)) {
            uint32_t st = l.pos;
            bool colon = false;
            while (is_alnum(peekc(&l, 0)) || peekc(&l, 0) == ':') {
                colon |= l.s[l.pos] == ':';
                l.pos++;
            }
            str_t w = {l.s + st, l.pos - st};
            bool num = w.len == 3 &&
                       (strncasecmp(w.ptr, "inf", 3) == 0 || strncasecmp(w.ptr, "nan", 3) == 0);
            emit(&l, num ? PQL_NUMBER : colon ? PQL_METRIC_IDENT : PQL_IDENT, st, l.pos);
            ok = true;
        } else {
            ok = lex_op(&l);
        }
        if (!ok)
            return;
    }
}

bool pql_legacy_name(str_t s, bool colon)
{
    if (s.len == 0)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        int c = (unsigned char)s.ptr[i];
        if (!(is_alpha(c) || (i > 0 && is_digit(c)) || (colon && c == ':')))
            return false;
    }
    return true;
}

void pql_quote(buf_t *out, str_t s)
{
    buf_putc(out, '"');
    for (size_t i = 0; i < s.len;) {
        unsigned char c = (unsigned char)s.ptr[i];
        uint32_t r;
        int len = utf8_decode((const unsigned char *)s.ptr + i, s.len - i, &r);
        const char *e = c && c < 0x80 ? strchr("\a\b\f\n\r\t\v", c) : NULL;
        if (c == '"' || c == '\\') {
            buf_putc(out, '\\');
            buf_putc(out, (char)c);
        } else if (e) {
            buf_putc(out, '\\');
            buf_putc(out, "abfnrtv"[e - "\a\b\f\n\r\t\v"]);
        } else if (len == 0 || c < 0x20 || c == 0x7F) {
            buf_printf(out, "\\x%02x", c);
            i++;
            continue;
        } else if (len > 1 &&
                   (r < 0xA0 || r == 0xAD || r == 0xFEFF || (r >= 0x2028 && r <= 0x2029))) {
            buf_printf(out, r > 0xFFFF ? "\\U%08x" : "\\u%04x", (unsigned)r);
        } else {
            buf_append(out, s.ptr + i, (size_t)len);
        }
        i += len ? (size_t)len : 1;
    }
    buf_putc(out, '"');
}

#define DURATION_MAX_MS (INT64_MAX / 1000000)

int pql_parse_duration(str_t s, int64_t *ms, char *msg)
{
    static const struct {
        const char *u;
        int64_t mult;
    } units[] = {{"y", 365LL * 86400000},
                 {"w", 7LL * 86400000},
                 {"d", 86400000},
                 {"h", 3600000},
                 {"m", 60000},
                 {"s", 1000},
                 {"ms", 1}};
    if (s.len == 1 && s.ptr[0] == '0') {
        *ms = 0;
        return 0;
    }
    size_t i = 0;
    int next_unit = 0;
    int64_t total = 0;
    while (i < s.len) {
        if (!is_digit((unsigned char)s.ptr[i]))
            goto bad;
        int64_t v = 0;
        while (i < s.len && is_digit((unsigned char)s.ptr[i])) {
            if (v > INT64_MAX / 10 - 10)
                goto range;
            v = v * 10 + (s.ptr[i++] - '0');
        }
        size_t us = i;
        while (i < s.len && is_alpha((unsigned char)s.ptr[i]))
            i++;
        str_t unit = {s.ptr + us, i - us};
        int u = -1;
        for (int k = next_unit; k < 7; k++)
            if (str_eq_cstr(unit, units[k].u)) {
                u = k;
                break;
            }
        if (u < 0)
            goto bad;
        next_unit = u + 1;
        /* Prometheus keeps durations in Go's time.Duration (int64 nanoseconds): anything past
         * ~292 years is "out of range" there, so it is here too, although we count in ms. */
        if (v > DURATION_MAX_MS / units[u].mult || total > DURATION_MAX_MS - v * units[u].mult)
            goto range;
        total += v * units[u].mult;
    }
    if (s.len == 0)
        goto bad;
    *ms = total;
    return 0;
bad : {
    buf_t b;
    buf_init(&b, 32);
    pql_quote(&b, s);
    snprintf(msg, 256, "not a valid duration string: %.*s", (int)buf_len(&b), (const char *)b.pos);
    buf_deinit(&b);
    return -1;
}
range:
    snprintf(msg, 256, "duration out of range");
    return -1;
}

void pql_fmt_duration(buf_t *out, int64_t ms)
{
    static const struct {
        const char *u;
        int64_t mult;
        bool exact;
    } units[] = {{"y", 365LL * 86400000, true},
                 {"w", 7LL * 86400000, true},
                 {"d", 86400000, false},
                 {"h", 3600000, false},
                 {"m", 60000, false},
                 {"s", 1000, false},
                 {"ms", 1, false}};
    if (ms == 0) {
        buf_puts(out, "0s");
        return;
    }
    for (int k = 0; k < 7; k++) {
        if (units[k].exact && ms % units[k].mult != 0)
            continue;
        int64_t v = ms / units[k].mult;
        if (v > 0) {
            buf_printf(out, "%lld%s", (long long)v, units[k].u);
            ms -= v * units[k].mult;
        }
    }
}
