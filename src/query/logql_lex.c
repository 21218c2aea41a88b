/*
 * logql_lex.c - the LogQL tokenizer (Loki pkg/logql/syntax/lex.go).
 *
 * Tokens are produced on demand. Strings are "..." with Go escapes or `...` raw. A number directly
 * followed by letters is a duration ("5m", "1h30m", "500ms", "1d") when it parses as one, else a
 * byte size ("10KB", "1.5KiB"); Loki's lexer makes the same two attempts. Numbers keep Go's literal
 * forms so that strconv.ParseFloat's verdict can be reproduced: hex floats need a 'p' exponent,
 * 0x1A, 0b101 and 0o17 lex as numbers that later fail with "unable to parse literal as a float".
 * `#` starts a comment to the end of the line. Positions are 1-based line and column.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/logql_internal.h"

void lq_lex_init(lq_lexer_t *lx, str_t in, arena_t *a)
{
    memset(lx, 0, sizeof *lx);
    lx->in = in;
    lx->line = 1;
    lx->a = a;
}

static bool is_ident_start(char c) { return isalpha((unsigned char)c) || c == '_'; }
static bool is_ident_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

/* Go string unquote of the "..." body; -1 on a bad escape. */
static int unquote_dq(str_t s, arena_t *a, str_t *out)
{
    char *p = arena_alloc(a, s.len * 4 + 1);
    size_t k = 0;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (c != '\\') {
            p[k++] = c;
            continue;
        }
        if (++i >= s.len)
            return -1;
        c = s.ptr[i];
        switch (c) {
        case 'a':
            p[k++] = '\a';
            break;
        case 'b':
            p[k++] = '\b';
            break;
        case 'f':
            p[k++] = '\f';
            break;
        case 'n':
            p[k++] = '\n';
            break;
        case 'r':
            p[k++] = '\r';
            break;
        case 't':
            p[k++] = '\t';
            break;
        case 'v':
            p[k++] = '\v';
            break;
        case '\\':
            p[k++] = '\\';
            break;
        case '"':
            p[k++] = '"';
            break;
        case '\'':
            p[k++] = '\'';
            break;
        case 'x': {
            if (i + 2 >= s.len)
                return -1;
            char h[3] = {s.ptr[i + 1], s.ptr[i + 2], 0};
            if (!isxdigit((unsigned char)h[0]) || !isxdigit((unsigned char)h[1]))
                return -1;
            p[k++] = (char)strtol(h, NULL, 16);
            i += 2;
            break;
        }
        case 'u':
        case 'U': {
            size_t n = c == 'u' ? 4 : 8;
            if (i + n >= s.len)
                return -1;
            unsigned long cp = 0;
            for (size_t j = 1; j <= n; j++) {
                char d = s.ptr[i + j];
                if (!isxdigit((unsigned char)d))
                    return -1;
                cp = cp * 16 +
                     (unsigned long)(isdigit((unsigned char)d) ? d - '0' : (tolower(d) - 'a' + 10));
            }
            i += n;
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return -1;
            if (cp < 0x80) {
                p[k++] = (char)cp;
            } else if (cp < 0x800) {
                p[k++] = (char)(0xC0 | (cp >> 6));
                p[k++] = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                p[k++] = (char)(0xE0 | (cp >> 12));
                p[k++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                p[k++] = (char)(0x80 | (cp & 0x3F));
            } else {
                p[k++] = (char)(0xF0 | (cp >> 18));
                p[k++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                p[k++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                p[k++] = (char)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default:
            if (c >= '0' && c <= '7') {
                if (i + 2 >= s.len)
                    return -1;
                int v = 0;
                for (int j = 0; j < 3; j++) {
                    char d = s.ptr[i + (size_t)j];
                    if (d < '0' || d > '7')
                        return -1;
                    v = v * 8 + (d - '0');
                }
                if (v > 255)
                    return -1;
                p[k++] = (char)v;
                i += 2;
                break;
            }
            return -1;
        }
    }
    p[k] = 0;
    *out = (str_t){p, k};
    return 0;
}

static const struct {
    const char *u;
    int64_t ns;
} k_units[] = {
    {"ns", 1},
    {"us", 1000},
    {"\xc2\xb5s", 1000},
    {"\xce\xbcs", 1000},
    {"ms", 1000000},
    {"s", 1000000000LL},
    {"m", 60LL * 1000000000LL},
    {"h", 3600LL * 1000000000LL},
    {"d", 86400LL * 1000000000LL},
    {"w", 7 * 86400LL * 1000000000LL},
    {"y", 365 * 86400LL * 1000000000LL},
};

/* Duration with Go's fractional numbers and Prometheus' d/w/y units: "1.5h", "1h30m", "1d". */
static int parse_any_duration(str_t s, int64_t *ns)
{
    size_t i = 0;
    double total = 0;
    bool neg = false;
    if (i < s.len && (s.ptr[i] == '-' || s.ptr[i] == '+'))
        neg = s.ptr[i++] == '-';
    if (i == s.len)
        return -1;
    if (s.len - i == 1 && s.ptr[i] == '0') {
        *ns = 0;
        return 0;
    }
    while (i < s.len) {
        size_t st = i;
        while (i < s.len && (isdigit((unsigned char)s.ptr[i]) || s.ptr[i] == '.'))
            i++;
        if (i == st)
            return -1;
        char nb[64];
        if (i - st >= sizeof nb)
            return -1;
        memcpy(nb, s.ptr + st, i - st);
        nb[i - st] = 0;
        char *e;
        double v = strtod(nb, &e);
        if (*e)
            return -1;
        size_t us = i;
        while (i < s.len && !isdigit((unsigned char)s.ptr[i]) && s.ptr[i] != '.')
            i++;
        str_t u = {s.ptr + us, i - us};
        int64_t mul = 0;
        for (size_t k = 0; k < sizeof k_units / sizeof k_units[0]; k++)
            if (str_eq_cstr(u, k_units[k].u))
                mul = k_units[k].ns;
        if (!mul)
            return -1;
        total += v * (double)mul;
    }
    if (total > 9.2e18)
        return -1;
    *ns = (int64_t)llround(neg ? -total : total);
    return 0;
}

int lq_parse_prom_duration(str_t s, int64_t *ns) { return parse_any_duration(s, ns); }

/* go-humanize ParseBytes of a token (number + unit); -1 when not a size. */
static int parse_bytes_tok(str_t s, double *out)
{
    char msg[128];
    size_t i = 0;
    while (i < s.len && (isdigit((unsigned char)s.ptr[i]) || s.ptr[i] == '.'))
        i++;
    if (i == s.len) /* a bare number is not a bytes token */
        return -1;
    static const char *const units[] = {"B",  "kB",  "KB", "KiB", "MB", "MiB", "GB", "GiB",
                                        "TB", "TiB", "PB", "PiB", "EB", "EiB", NULL};
    str_t u = {s.ptr + i, s.len - i};
    bool known = false;
    for (size_t k = 0; units[k] && !known; k++)
        known = str_eq_cstr(u, units[k]);
    if (!known)
        return -1;
    return lq_parse_bytes(s, out, msg);
}

void lq_quote(buf_t *out, str_t s)
{
    buf_putc(out, '"');
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        switch (c) {
        case '"':
            buf_puts(out, "\\\"");
            break;
        case '\\':
            buf_puts(out, "\\\\");
            break;
        case '\n':
            buf_puts(out, "\\n");
            break;
        case '\r':
            buf_puts(out, "\\r");
            break;
        case '\t':
            buf_puts(out, "\\t");
            break;
        default:
            if (c < 0x20 || c == 0x7f)
                buf_printf(out, "\\x%02x", c);
            else
                buf_putc(out, (char)c);
        }
    }
    buf_putc(out, '"');
}

static lq_tok_t mk(lq_lexer_t *lx, lqt_t k, size_t st, size_t len)
{
    lq_tok_t t = {.kind = k, .pos = (uint32_t)st, .len = (uint32_t)len};
    t.line = lx->line;
    t.col = (int)(st - (size_t)lx->col0) + 1;
    return t;
}

static lq_tok_t lex_err(lq_lexer_t *lx, size_t st, const char *msg)
{
    lq_tok_t t = mk(lx, LQT_ERR, st, 1);
    snprintf(lx->err, sizeof lx->err, "%s", msg);
    return t;
}

/* A Go number literal starting at st: digits, 0x/0b/0o forms, '.', exponent (e or p). */
static size_t scan_number(str_t in, size_t i, bool *hex)
{
    *hex = false;
    if (i + 1 < in.len && in.ptr[i] == '0' && strchr("xXbBoO", in.ptr[i + 1]) && in.ptr[i + 1]) {
        char k = (char)tolower(in.ptr[i + 1]);
        i += 2;
        if (k == 'x') {
            *hex = true;
            while (i < in.len &&
                   (isxdigit((unsigned char)in.ptr[i]) || in.ptr[i] == '.' || in.ptr[i] == '_'))
                i++;
            if (i < in.len && (in.ptr[i] == 'p' || in.ptr[i] == 'P')) {
                i++;
                if (i < in.len && (in.ptr[i] == '+' || in.ptr[i] == '-'))
                    i++;
                while (i < in.len && isdigit((unsigned char)in.ptr[i]))
                    i++;
            }
            return i;
        }
        while (i < in.len && (isdigit((unsigned char)in.ptr[i]) || in.ptr[i] == '_'))
            i++;
        return i;
    }
    while (i < in.len && (isdigit((unsigned char)in.ptr[i]) || in.ptr[i] == '.'))
        i++;
    if (i < in.len && (in.ptr[i] == 'e' || in.ptr[i] == 'E')) {
        size_t j = i + 1;
        if (j < in.len && (in.ptr[j] == '+' || in.ptr[j] == '-'))
            j++;
        if (j < in.len && isdigit((unsigned char)in.ptr[j])) {
            while (j < in.len && isdigit((unsigned char)in.ptr[j]))
                j++;
            i = j;
        }
    }
    return i;
}

lq_tok_t lq_lex_next(lq_lexer_t *lx)
{
    str_t in = lx->in;
    for (;;) {
        while (lx->pos < in.len && isspace((unsigned char)in.ptr[lx->pos])) {
            if (in.ptr[lx->pos] == '\n') {
                lx->line++;
                lx->col0 = (int)lx->pos + 1;
            }
            lx->pos++;
        }
        if (lx->pos < in.len && in.ptr[lx->pos] == '#') {
            while (lx->pos < in.len && in.ptr[lx->pos] != '\n')
                lx->pos++;
            continue;
        }
        break;
    }
    size_t st = lx->pos;
    if (st >= in.len)
        return mk(lx, LQT_EOF, st, 0);
    char c = in.ptr[st];
    char n1 = st + 1 < in.len ? in.ptr[st + 1] : 0;
#define OP(k, l)                                                                                   \
    do {                                                                                           \
        lx->pos = st + (l);                                                                        \
        return mk(lx, k, st, l);                                                                   \
    } while (0)
    switch (c) {
    case '{':
        OP(LQT_LBRACE, 1);
    case '}':
        OP(LQT_RBRACE, 1);
    case '(':
        OP(LQT_LPAREN, 1);
    case ')':
        OP(LQT_RPAREN, 1);
    case '[':
        OP(LQT_LBRACKET, 1);
    case ']':
        OP(LQT_RBRACKET, 1);
    case ',':
        OP(LQT_COMMA, 1);
    case '+':
        OP(LQT_ADD, 1);
    case '*':
        OP(LQT_MUL, 1);
    case '/':
        OP(LQT_DIV, 1);
    case '%':
        OP(LQT_MOD, 1);
    case '^':
        OP(LQT_POW, 1);
    case '=':
        if (n1 == '~')
            OP(LQT_RE, 2);
        if (n1 == '=')
            OP(LQT_CMP_EQ, 2);
        OP(LQT_EQ, 1);
    case '!':
        if (n1 == '=')
            OP(LQT_NEQ, 2);
        if (n1 == '~')
            OP(LQT_NRE, 2);
        if (n1 == '>')
            OP(LQT_NPAT, 2);
        return lex_err(lx, st, "unexpected character: '!'");
    case '|':
        if (n1 == '=')
            OP(LQT_PIPE_EQ, 2);
        if (n1 == '~')
            OP(LQT_PIPE_RE, 2);
        if (n1 == '>')
            OP(LQT_PIPE_PAT, 2);
        OP(LQT_PIPE, 1);
    case '>':
        if (n1 == '=')
            OP(LQT_GE, 2);
        OP(LQT_GT, 1);
    case '<':
        if (n1 == '=')
            OP(LQT_LE, 2);
        OP(LQT_LT, 1);
    case '-':
        if (n1 == '-' && st + 2 < in.len && isalpha((unsigned char)in.ptr[st + 2])) {
            size_t i = st + 2;
            while (i < in.len && (is_ident_char(in.ptr[i]) || in.ptr[i] == '-'))
                i++;
            OP(LQT_FLAG, i - st);
        }
        OP(LQT_SUB, 1);
    default:
        break;
    }
#undef OP
    if (c == '"' || c == '`') {
        size_t i = st + 1;
        while (i < in.len && in.ptr[i] != c) {
            if (c == '"' && in.ptr[i] == '\\')
                i++;
            if (c == '"' && i < in.len && in.ptr[i] == '\n')
                break;
            i++;
        }
        if (i >= in.len || in.ptr[i] != c)
            return lex_err(lx, st, "literal not terminated");
        lq_tok_t t = mk(lx, LQT_STRING, st, i + 1 - st);
        str_t body = {in.ptr + st + 1, i - st - 1};
        if (c == '`') {
            t.sval = arena_str(lx->a, body);
        } else if (unquote_dq(body, lx->a, &t.sval) != 0) {
            return lex_err(lx, st, "invalid syntax");
        }
        for (size_t k = st; k <= i; k++)
            if (in.ptr[k] == '\n') {
                lx->line++;
                lx->col0 = (int)k + 1;
            }
        lx->pos = i + 1;
        return t;
    }
    if (isdigit((unsigned char)c) || (c == '.' && isdigit((unsigned char)n1))) {
        bool hex;
        size_t i = scan_number(in, st, &hex);
        size_t j = i;
        /* a unit suffix: letters (and µ), possibly more number+unit groups */
        while (j < in.len && (isalnum((unsigned char)in.ptr[j]) || in.ptr[j] == '.' ||
                              (unsigned char)in.ptr[j] >= 0x80))
            j++;
        if (j > i && !hex) {
            str_t w = {in.ptr + st, j - st};
            int64_t ns;
            if (parse_any_duration(w, &ns) == 0) {
                lq_tok_t t = mk(lx, LQT_DURATION, st, j - st);
                t.num = (double)ns;
                lx->pos = j;
                return t;
            }
            double b;
            if (parse_bytes_tok(w, &b) == 0) {
                lq_tok_t t = mk(lx, LQT_BYTES, st, j - st);
                t.num = b;
                lx->pos = j;
                return t;
            }
            /* a number followed by an identifier: lexed apart like text/scanner does */
        }
        lq_tok_t t = mk(lx, LQT_NUMBER, st, i - st);
        char nb[128];
        size_t len = i - st < sizeof nb - 1 ? i - st : sizeof nb - 1;
        memcpy(nb, in.ptr + st, len);
        nb[len] = 0;
        bool bad = false;
        if (len >= 2 && nb[0] == '0' && strchr("bBoO", nb[1]))
            bad = true;
        if (hex && !strpbrk(nb, "pP"))
            bad = true;
        if (strchr(nb, '_'))
            bad = true;
        char *e;
        t.num = bad ? 0 : strtod(nb, &e);
        if (!bad && *e)
            bad = true;
        t.num_bad = bad;
        lx->pos = i;
        return t;
    }
    if (is_ident_start(c)) {
        size_t i = st + 1;
        while (i < in.len && is_ident_char(in.ptr[i]))
            i++;
        lx->pos = i;
        return mk(lx, LQT_IDENT, st, i - st);
    }
    char m[64];
    if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f)
        snprintf(m, sizeof m, "unexpected character: '%c'", c);
    else
        snprintf(m, sizeof m, "unexpected character: '\\x%02x'", (unsigned char)c);
    return lex_err(lx, st, m);
}
