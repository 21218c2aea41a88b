/*
 * logql_tmpl.c - the Go text/template subset of LogQL's line_format and label_format.
 *
 * Supported (what Loki users write in practice):
 *   text with {{ actions }}, trim markers {{- and -}}, template comments
 *   {{ .label }}  {{ __line__ }}  {{ __timestamp__ }}  string, raw-string and number literals
 *   pipelines {{ .a | ToUpper | printf "%s!" }} (the piped value becomes the last argument)
 *   parenthesised sub-pipelines, {{ if PIPELINE }} ... {{ else if ... }} ... {{ else }} ... {{ end
 * }} functions: ToUpper ToLower upper lower title Title Replace replace Trim TrimLeft TrimRight
 *   TrimPrefix TrimSuffix TrimSpace trim trimAll trimPrefix trimSuffix regexReplaceAll
 *   regexReplaceAllLiteral printf (%s %d %v %q %f %.Nf %x %%) default contains hasPrefix hasSuffix
 *   add sub mul div mod addf subf mulf divf eq ne lt le gt ge and or not len repeat substr
 *   unixEpoch unixEpochMillis alignLeft alignRight indent nindent quote squote
 * A missing label renders as "" (Loki executes templates over a map of strings). Unknown functions
 * are parse errors worded like Go's ("template: line:1: function \"x\" not defined"); runtime
 * errors (a bad regex, a non-number to add) make the stage set TemplateFormatErr.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/fmtnum.h"
#include "query/logql_internal.h"

#define PRINTF_MAX_WIDTH 4096
/* Any one function result and a whole rendering are bounded, so `repeat`, `Replace` or
 * `regexReplaceAll` cannot multiply a long line into gigabytes. */
#define TMPL_MAX_OUT (1024 * 1024)

typedef enum { A_FIELD, A_STR, A_NUM, A_FUNC, A_LINE, A_TS, A_PIPE, A_DOT, A_BOOL } arg_kind_t;

typedef struct tpipe tpipe_t;

typedef struct targ {
    arg_kind_t kind;
    str_t s;
    double num;
    bool is_int;
    int fn;
    tpipe_t *pipe;
} targ_t;

typedef struct tcmd {
    targ_t *args;
    size_t n;
} tcmd_t;

struct tpipe {
    tcmd_t *cmds;
    size_t n;
};

typedef enum { N_TEXT, N_ACTION, N_IF } node_kind_t;

typedef struct tnode tnode_t;
typedef struct tlist {
    tnode_t *v;
    size_t n, cap;
} tlist_t;

struct tnode {
    node_kind_t kind;
    str_t text;
    tpipe_t *pipe;
    tlist_t then, els;
};

struct lq_tmpl {
    tlist_t root;
};

/* ---- values ---- */

typedef enum { V_STR, V_INT, V_FLOAT, V_BOOL } vkind_t;

typedef struct tval {
    vkind_t k;
    str_t s;
    int64_t i;
    double f;
    bool b;
} tval_t;

typedef struct tctx {
    lq_builder_t *b;
    arena_t *a;
    char err[320];
} tctx_t;

static tval_t vstr(str_t s) { return (tval_t){.k = V_STR, .s = s}; }

static str_t to_str(tctx_t *c, tval_t v)
{
    char nb[FMTNUM_MAX];
    switch (v.k) {
    case V_STR:
        return v.s;
    case V_INT:
        return str_cstr(arena_sprintf(c->a, "%lld", (long long)v.i));
    case V_FLOAT:
        fmt_float_prom(nb, v.f);
        return arena_str(c->a, str_cstr(nb));
    case V_BOOL:
        return v.b ? STR("true") : STR("false");
    }
    return STR("");
}

static bool to_num(tval_t v, double *out)
{
    switch (v.k) {
    case V_INT:
        *out = (double)v.i;
        return true;
    case V_FLOAT:
        *out = v.f;
        return true;
    case V_BOOL:
        *out = v.b;
        return true;
    case V_STR: {
        char nb[64];
        if (!v.s.len || v.s.len >= sizeof nb)
            return false;
        memcpy(nb, v.s.ptr, v.s.len);
        nb[v.s.len] = 0;
        char *e;
        *out = strtod(nb, &e);
        return *e == 0;
    }
    }
    return false;
}

static bool truthy(tval_t v)
{
    switch (v.k) {
    case V_STR:
        return v.s.len > 0;
    case V_INT:
        return v.i != 0;
    case V_FLOAT:
        return v.f != 0;
    case V_BOOL:
        return v.b;
    }
    return false;
}

/* ---- functions ---- */

typedef bool (*tfn_t)(tctx_t *c, tval_t *a, size_t n, tval_t *out);

static str_t dup_upper(tctx_t *c, str_t s, bool up)
{
    char *p = arena_alloc(c->a, s.len + 1);
    for (size_t i = 0; i < s.len; i++)
        p[i] = (char)(up ? toupper((unsigned char)s.ptr[i]) : tolower((unsigned char)s.ptr[i]));
    return (str_t){p, s.len};
}

static bool f_upper(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)n;
    *o = vstr(dup_upper(c, to_str(c, a[0]), true));
    return true;
}
static bool f_lower(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)n;
    *o = vstr(dup_upper(c, to_str(c, a[0]), false));
    return true;
}
static bool f_title(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)n;
    str_t s = to_str(c, a[0]);
    char *p = arena_alloc(c->a, s.len + 1);
    bool start = true;
    for (size_t i = 0; i < s.len; i++) {
        char ch = s.ptr[i];
        p[i] = start ? (char)toupper((unsigned char)ch) : ch;
        start = isspace((unsigned char)ch) || ch == '-' || ch == '_';
    }
    *o = vstr((str_t){p, s.len});
    return true;
}

static bool too_big(tctx_t *c, buf_t *b)
{
    if (buf_len(b) <= TMPL_MAX_OUT)
        return false;
    buf_deinit(b);
    snprintf(c->err, sizeof c->err, "template output over %d bytes", TMPL_MAX_OUT);
    return true;
}

static bool replace_all(tctx_t *c, str_t s, str_t old, str_t new, long max, tval_t *o)
{
    if (!old.len) {
        *o = vstr(s);
        return true;
    }
    buf_t b = BUF_INIT;
    size_t i = 0;
    long done = 0;
    while (i < s.len) {
        if ((max < 0 || done < max) && i + old.len <= s.len &&
            memcmp(s.ptr + i, old.ptr, old.len) == 0) {
            buf_put_str(&b, new);
            i += old.len;
            done++;
            if (too_big(c, &b))
                return false;
        } else {
            buf_putc(&b, s.ptr[i++]);
        }
    }
    *o = vstr(arena_str(c->a, buf_str(&b)));
    buf_deinit(&b);
    return true;
}

static bool f_Replace(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)n;
    double m;
    if (!to_num(a[3], &m))
        return false;
    return replace_all(c, to_str(c, a[0]), to_str(c, a[1]), to_str(c, a[2]), (long)m, o);
}
static bool f_replace(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)n; /* sprig: replace old new src */
    return replace_all(c, to_str(c, a[2]), to_str(c, a[0]), to_str(c, a[1]), -1, o);
}

static bool in_set(char ch, str_t set) { return memchr(set.ptr ? set.ptr : "", ch, set.len); }

static str_t trim_set(str_t s, str_t set, bool l, bool r)
{
    while (l && s.len && in_set(s.ptr[0], set)) {
        s.ptr++;
        s.len--;
    }
    while (r && s.len && in_set(s.ptr[s.len - 1], set))
        s.len--;
    return s;
}

static bool f_Trim(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)n;
    *o = vstr(trim_set(to_str(c, a[0]), to_str(c, a[1]), true, true));
    return true;
}
static bool f_TrimLeft(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)n;
    *o = vstr(trim_set(to_str(c, a[0]), to_str(c, a[1]), true, false));
    return true;
}
static bool f_TrimRight(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)n;
    *o = vstr(trim_set(to_str(c, a[0]), to_str(c, a[1]), false, true));
    return true;
}
static bool f_trimAll(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)n;
    *o = vstr(trim_set(to_str(c, a[1]), to_str(c, a[0]), true, true));
    return true;
}
static bool f_TrimSpace(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)n;
    *o = vstr(trim_set(to_str(c, a[0]), STR(" \t\n\r\v\f"), true, true));
    return true;
}

static str_t cut_prefix(str_t s, str_t p)
{
    if (s.len >= p.len && memcmp(s.ptr, p.ptr ? p.ptr : "", p.len) == 0)
        return (str_t){s.ptr + p.len, s.len - p.len};
    return s;
}
static str_t cut_suffix(str_t s, str_t p)
{
    if (s.len >= p.len && memcmp(s.ptr + s.len - p.len, p.ptr ? p.ptr : "", p.len) == 0)
        return (str_t){s.ptr, s.len - p.len};
    return s;
}
static bool f_TrimPrefix(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)n;
    *o = vstr(cut_prefix(to_str(c, a[0]), to_str(c, a[1])));
    return true;
}
static bool f_TrimSuffix(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)n;
    *o = vstr(cut_suffix(to_str(c, a[0]), to_str(c, a[1])));
    return true;
}
static bool f_trimPrefix(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)n;
    *o = vstr(cut_prefix(to_str(c, a[1]), to_str(c, a[0])));
    return true;
}
static bool f_trimSuffix(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)n;
    *o = vstr(cut_suffix(to_str(c, a[1]), to_str(c, a[0])));
    return true;
}

static bool regex_replace(tctx_t *c, tval_t *a, bool literal, tval_t *o)
{
    str_t re = to_str(c, a[0]), s = to_str(c, a[1]), repl = to_str(c, a[2]);
    char msg[256];
    pcre2_code *code = lq__re_compile(re, false, msg);
    if (!code) {
        snprintf(c->err, sizeof c->err, "error parsing regexp: %s", msg);
        return false;
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    buf_t b = BUF_INIT;
    size_t pos = 0;
    while (pos <= s.len) {
        int rc = pcre2_match(code, (PCRE2_SPTR)(s.ptr ? s.ptr : ""), s.len, pos, 0, md, NULL);
        if (rc < 0)
            break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        buf_append(&b, s.ptr + pos, ov[0] - pos);
        for (size_t i = 0; i < repl.len; i++) {
            char ch = repl.ptr[i];
            if (literal || ch != '$' || i + 1 >= repl.len) {
                buf_putc(&b, ch);
                continue;
            }
            size_t j = i + 1;
            bool brace = repl.ptr[j] == '{';
            if (brace)
                j++;
            int g = 0;
            size_t st = j;
            while (j < repl.len && isdigit((unsigned char)repl.ptr[j]))
                g = g * 10 + (repl.ptr[j++] - '0');
            if (j == st) {
                buf_putc(&b, ch);
                continue;
            }
            if (brace && j < repl.len && repl.ptr[j] == '}')
                j++;
            if (g < rc && ov[2 * g] != PCRE2_UNSET)
                buf_append(&b, s.ptr + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
            i = j - 1;
        }
        if (buf_len(&b) > TMPL_MAX_OUT) {
            too_big(c, &b);
            pcre2_match_data_free(md);
            pcre2_code_free(code);
            return false;
        }
        if (ov[1] == ov[0]) {
            if (ov[0] < s.len)
                buf_putc(&b, s.ptr[ov[0]]);
            pos = ov[0] + 1;
        } else {
            pos = ov[1];
        }
    }
    if (pos < s.len)
        buf_append(&b, s.ptr + pos, s.len - pos);
    *o = vstr(arena_str(c->a, buf_str(&b)));
    buf_deinit(&b);
    pcre2_match_data_free(md);
    pcre2_code_free(code);
    return true;
}
static bool f_rra(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)n;
    return regex_replace(c, a, false, o);
}
static bool f_rral(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)n;
    return regex_replace(c, a, true, o);
}

static bool f_printf(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    str_t f = to_str(c, a[0]);
    buf_t b = BUF_INIT;
    size_t ai = 1;
    for (size_t i = 0; i < f.len; i++) {
        if (f.ptr[i] != '%' || i + 1 >= f.len) {
            buf_putc(&b, f.ptr[i]);
            continue;
        }
        char spec[32];
        size_t k = 0;
        spec[k++] = '%';
        i++;
        long num = 0;
        bool too_wide = false;
        while (i < f.len && strchr("-+ #0123456789.", f.ptr[i])) {
            char ch = f.ptr[i++];
            num = ch >= '0' && ch <= '9' ? num * 10 + (ch - '0') : 0;
            /* a width or precision is bounded: "%999999999d" must not allocate gigabytes */
            if (num > PRINTF_MAX_WIDTH || k >= 20)
                too_wide = true;
            else
                spec[k++] = ch;
        }
        if (too_wide) {
            buf_deinit(&b);
            snprintf(c->err, sizeof c->err, "error calling printf: width or precision over %d",
                     PRINTF_MAX_WIDTH);
            return false;
        }
        if (i >= f.len)
            break;
        char conv = f.ptr[i];
        if (conv == '%') {
            buf_putc(&b, '%');
            continue;
        }
        if (ai >= n) {
            buf_printf(&b, "%%!%c(MISSING)", conv);
            continue;
        }
        tval_t v = a[ai++];
        double d;
        switch (conv) {
        case 'd':
            if (!to_num(v, &d)) {
                buf_printf(&b, "%%!d(string=%.*s)", STR_FMT(to_str(c, v)));
                break;
            }
            spec[k++] = 'l';
            spec[k++] = 'l';
            spec[k++] = 'd';
            spec[k] = 0;
            buf_printf(&b, spec, (long long)d);
            break;
        case 'f':
        case 'g':
        case 'e':
            if (!to_num(v, &d)) {
                buf_printf(&b, "%%!%c(string=%.*s)", conv, STR_FMT(to_str(c, v)));
                break;
            }
            spec[k++] = conv;
            spec[k] = 0;
            buf_printf(&b, spec, d);
            break;
        case 'x':
        case 'X':
            if (v.k == V_INT || v.k == V_FLOAT) {
                to_num(v, &d);
                spec[k++] = 'l';
                spec[k++] = 'l';
                spec[k++] = conv;
                spec[k] = 0;
                buf_printf(&b, spec, (long long)d);
            } else {
                str_t s = to_str(c, v);
                for (size_t j = 0; j < s.len; j++)
                    buf_printf(&b, conv == 'x' ? "%02x" : "%02X", (unsigned char)s.ptr[j]);
            }
            break;
        case 'q':
            lq_quote(&b, to_str(c, v));
            break;
        default: {
            str_t s = to_str(c, v);
            spec[k++] = '.';
            spec[k++] = '*';
            spec[k++] = 's';
            spec[k] = 0;
            if (k == 4)
                buf_put_str(&b, s);
            else
                buf_printf(&b, spec, (int)s.len, s.ptr);
        }
        }
    }
    if (too_big(c, &b))
        return false;
    *o = vstr(arena_str(c->a, buf_str(&b)));
    buf_deinit(&b);
    return true;
}

static bool f_default(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)c;
    *o = (n > 1 && truthy(a[1])) ? a[1] : a[0];
    return true;
}

static bool f_contains(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)n;
    str_t sub = to_str(c, a[0]), s = to_str(c, a[1]);
    o->k = V_BOOL;
    o->b = !sub.len || (s.len >= sub.len && memmem(s.ptr, s.len, sub.ptr, sub.len));
    return true;
}
static bool f_hasPrefix(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)n;
    str_t s = to_str(c, a[0]), p = to_str(c, a[1]);
    o->k = V_BOOL;
    o->b = s.len >= p.len && memcmp(s.ptr, p.ptr ? p.ptr : "", p.len) == 0;
    return true;
}
static bool f_hasSuffix(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)n;
    str_t s = to_str(c, a[0]), p = to_str(c, a[1]);
    o->k = V_BOOL;
    o->b = s.len >= p.len && memcmp(s.ptr + s.len - p.len, p.ptr ? p.ptr : "", p.len) == 0;
    return true;
}

static bool arith(tctx_t *c, tval_t *a, size_t n, tval_t *o, char op, bool flt)
{
    double x, y;
    if (!to_num(a[0], &x) || (n > 1 && !to_num(a[1], &y))) {
        snprintf(c->err, sizeof c->err, "error calling arithmetic: not a number");
        return false;
    }
    double r = x;
    for (size_t i = 1; i < n; i++) {
        to_num(a[i], &y);
        if (!flt) {
            x = trunc(r);
            y = trunc(y);
        } else {
            x = r;
        }
        switch (op) {
        case '+':
            r = x + y;
            break;
        case '-':
            r = x - y;
            break;
        case '*':
            r = x * y;
            break;
        case '/':
            if (!flt && y == 0) {
                snprintf(c->err, sizeof c->err, "error calling div: integer divide by zero");
                return false;
            }
            r = flt ? x / y : trunc(x / y);
            break;
        case '%':
            if (y == 0) {
                snprintf(c->err, sizeof c->err, "error calling mod: integer divide by zero");
                return false;
            }
            r = fmod(x, y);
            break;
        }
    }
    if (flt) {
        o->k = V_FLOAT;
        o->f = r;
    } else {
        o->k = V_INT;
        o->i = (int64_t)r;
    }
    return true;
}
static bool f_add(tctx_t *c, tval_t *a, size_t n, tval_t *o) { return arith(c, a, n, o, '+', 0); }
static bool f_sub(tctx_t *c, tval_t *a, size_t n, tval_t *o) { return arith(c, a, n, o, '-', 0); }
static bool f_mul(tctx_t *c, tval_t *a, size_t n, tval_t *o) { return arith(c, a, n, o, '*', 0); }
static bool f_div(tctx_t *c, tval_t *a, size_t n, tval_t *o) { return arith(c, a, n, o, '/', 0); }
static bool f_mod(tctx_t *c, tval_t *a, size_t n, tval_t *o) { return arith(c, a, n, o, '%', 0); }
static bool f_addf(tctx_t *c, tval_t *a, size_t n, tval_t *o) { return arith(c, a, n, o, '+', 1); }
static bool f_subf(tctx_t *c, tval_t *a, size_t n, tval_t *o) { return arith(c, a, n, o, '-', 1); }
static bool f_mulf(tctx_t *c, tval_t *a, size_t n, tval_t *o) { return arith(c, a, n, o, '*', 1); }
static bool f_divf(tctx_t *c, tval_t *a, size_t n, tval_t *o) { return arith(c, a, n, o, '/', 1); }

static int vcmp(tctx_t *c, tval_t x, tval_t y)
{
    double a, b;
    if (x.k != V_STR && y.k != V_STR && to_num(x, &a) && to_num(y, &b))
        return a < b ? -1 : a > b;
    return str_cmp(to_str(c, x), to_str(c, y));
}
#define CMPF(name, expr)                                                                           \
    static bool name(tctx_t *c, tval_t *a, size_t n, tval_t *o)                                    \
    {                                                                                              \
        (void)n;                                                                                   \
        int r = vcmp(c, a[0], a[1]);                                                               \
        o->k = V_BOOL;                                                                             \
        o->b = (expr);                                                                             \
        return true;                                                                               \
    }
CMPF(f_eq, r == 0)
CMPF(f_ne, r != 0)
CMPF(f_lt, r < 0)
CMPF(f_le, r <= 0)
CMPF(f_gt, r > 0)
CMPF(f_ge, r >= 0)

static bool f_and(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)c;
    for (size_t i = 0; i < n; i++)
        if (!truthy(a[i]) || i + 1 == n) {
            *o = a[i];
            return true;
        }
    return true;
}
static bool f_or(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)c;
    for (size_t i = 0; i < n; i++)
        if (truthy(a[i]) || i + 1 == n) {
            *o = a[i];
            return true;
        }
    return true;
}
static bool f_not(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)c;
    (void)n;
    o->k = V_BOOL;
    o->b = !truthy(a[0]);
    return true;
}
static bool f_len(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)n;
    o->k = V_INT;
    o->i = (int64_t)to_str(c, a[0]).len;
    return true;
}
static bool f_repeat(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)n;
    double k;
    if (!to_num(a[0], &k) || k < 0 || k > 10000)
        return false;
    str_t s = to_str(c, a[1]);
    if (k * (double)s.len > TMPL_MAX_OUT) {
        snprintf(c->err, sizeof c->err, "template output over %d bytes", TMPL_MAX_OUT);
        return false;
    }
    buf_t b = BUF_INIT;
    for (int i = 0; i < (int)k; i++)
        buf_put_str(&b, s);
    *o = vstr(arena_str(c->a, buf_str(&b)));
    buf_deinit(&b);
    return true;
}
static bool f_substr(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)n;
    double st, en;
    str_t s = to_str(c, a[2]);
    if (!to_num(a[0], &st) || !to_num(a[1], &en))
        return false;
    if (st < 0)
        st = 0;
    if (en < 0 || en > (double)s.len)
        en = (double)s.len;
    if (st > en)
        st = en;
    *o = vstr((str_t){s.ptr + (size_t)st, (size_t)en - (size_t)st});
    return true;
}
static bool f_unixEpoch(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)n;
    (void)a;
    o->k = V_INT;
    o->i = c->b->ts_ns / 1000000000LL;
    return true;
}
static bool f_unixEpochMillis(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)n;
    (void)a;
    o->k = V_INT;
    o->i = c->b->ts_ns / 1000000LL;
    return true;
}
static bool align(tctx_t *c, tval_t *a, tval_t *o, bool left)
{
    double w;
    if (!to_num(a[0], &w) || w < 0 || w > 10000)
        return false;
    str_t s = to_str(c, a[1]);
    size_t width = (size_t)w;
    if (s.len >= width) {
        *o = vstr((str_t){s.ptr, width});
        return true;
    }
    char *p = arena_alloc(c->a, width);
    memset(p, ' ', width);
    memcpy(left ? p : p + width - s.len, s.ptr ? s.ptr : "", s.len);
    *o = vstr((str_t){p, width});
    return true;
}
static bool f_alignLeft(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)n;
    return align(c, a, o, true);
}
static bool f_alignRight(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)n;
    return align(c, a, o, false);
}
static bool f_quote(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    buf_t b = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_putc(&b, ' ');
        lq_quote(&b, to_str(c, a[i]));
    }
    *o = vstr(arena_str(c->a, buf_str(&b)));
    buf_deinit(&b);
    return true;
}
static bool f_squote(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    buf_t b = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_putc(&b, ' ');
        buf_putc(&b, '\'');
        buf_put_str(&b, to_str(c, a[i]));
        buf_putc(&b, '\'');
    }
    *o = vstr(arena_str(c->a, buf_str(&b)));
    buf_deinit(&b);
    return true;
}
static bool indent(tctx_t *c, tval_t *a, tval_t *o, bool nl)
{
    double w;
    if (!to_num(a[0], &w) || w < 0 || w > 1000)
        return false;
    str_t s = to_str(c, a[1]);
    buf_t b = BUF_INIT;
    if (nl)
        buf_putc(&b, '\n');
    for (int i = 0; i < (int)w; i++)
        buf_putc(&b, ' ');
    for (size_t i = 0; i < s.len; i++) {
        buf_putc(&b, s.ptr[i]);
        if (s.ptr[i] == '\n') {
            for (int k = 0; k < (int)w; k++)
                buf_putc(&b, ' ');
            if (too_big(c, &b))
                return false;
        }
    }
    *o = vstr(arena_str(c->a, buf_str(&b)));
    buf_deinit(&b);
    return true;
}
static bool f_indent(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)n;
    return indent(c, a, o, false);
}
static bool f_nindent(tctx_t *c, tval_t *a, size_t n, tval_t *o)
{
    (void)n;
    return indent(c, a, o, true);
}

static const struct {
    const char *name;
    int min, max; /* max -1: variadic */
    tfn_t fn;
} k_funcs[] = {
    {"ToUpper", 1, 1, f_upper},
    {"ToLower", 1, 1, f_lower},
    {"upper", 1, 1, f_upper},
    {"lower", 1, 1, f_lower},
    {"title", 1, 1, f_title},
    {"Title", 1, 1, f_title},
    {"Replace", 4, 4, f_Replace},
    {"replace", 3, 3, f_replace},
    {"Trim", 2, 2, f_Trim},
    {"TrimLeft", 2, 2, f_TrimLeft},
    {"TrimRight", 2, 2, f_TrimRight},
    {"TrimPrefix", 2, 2, f_TrimPrefix},
    {"TrimSuffix", 2, 2, f_TrimSuffix},
    {"TrimSpace", 1, 1, f_TrimSpace},
    {"trim", 1, 1, f_TrimSpace},
    {"trimAll", 2, 2, f_trimAll},
    {"trimPrefix", 2, 2, f_trimPrefix},
    {"trimSuffix", 2, 2, f_trimSuffix},
    {"regexReplaceAll", 3, 3, f_rra},
    {"regexReplaceAllLiteral", 3, 3, f_rral},
    {"printf", 1, -1, f_printf},
    {"default", 1, 2, f_default},
    {"contains", 2, 2, f_contains},
    {"hasPrefix", 2, 2, f_hasPrefix},
    {"hasSuffix", 2, 2, f_hasSuffix},
    {"add", 2, -1, f_add},
    {"sub", 2, 2, f_sub},
    {"mul", 2, -1, f_mul},
    {"div", 2, 2, f_div},
    {"mod", 2, 2, f_mod},
    {"addf", 2, -1, f_addf},
    {"subf", 2, 2, f_subf},
    {"mulf", 2, -1, f_mulf},
    {"divf", 2, 2, f_divf},
    {"eq", 2, 2, f_eq},
    {"ne", 2, 2, f_ne},
    {"lt", 2, 2, f_lt},
    {"le", 2, 2, f_le},
    {"gt", 2, 2, f_gt},
    {"ge", 2, 2, f_ge},
    {"and", 1, -1, f_and},
    {"or", 1, -1, f_or},
    {"not", 1, 1, f_not},
    {"len", 1, 1, f_len},
    {"repeat", 2, 2, f_repeat},
    {"substr", 3, 3, f_substr},
    {"unixEpoch", 0, 0, f_unixEpoch},
    {"unixEpochMillis", 0, 0, f_unixEpochMillis},
    {"alignLeft", 2, 2, f_alignLeft},
    {"alignRight", 2, 2, f_alignRight},
    {"indent", 2, 2, f_indent},
    {"nindent", 2, 2, f_nindent},
    {"quote", 0, -1, f_quote},
    {"squote", 0, -1, f_squote},
};

/* ---- parser ---- */

typedef struct tparser {
    str_t s;
    size_t i;
    arena_t *a;
    err_t *err;
    int line;
    int depth; /* nesting of ( ) and {{if}}, bounded against stack exhaustion */
} tparser_t;

#define TMPL_MAX_DEPTH 100

static int tfail(tparser_t *p, const char *fmt, const char *arg)
{
    char m[200];
    snprintf(m, sizeof m, fmt, arg);
    return err_set(p->err, ERR_PARSE, "template: line:%d: %s", p->line, m);
}

static void tws(tparser_t *p, size_t end)
{
    while (p->i < end && isspace((unsigned char)p->s.ptr[p->i]))
        p->i++;
}

static int parse_pipe(tparser_t *p, size_t end, tpipe_t **out);

static int parse_arg(tparser_t *p, size_t end, targ_t *a)
{
    const char *s = p->s.ptr;
    char c = s[p->i];
    memset(a, 0, sizeof *a);
    if (c == '.') {
        size_t st = ++p->i;
        while (p->i < end && (isalnum((unsigned char)s[p->i]) || s[p->i] == '_'))
            p->i++;
        if (p->i == st) {
            a->kind = A_DOT;
            return 0;
        }
        a->kind = A_FIELD;
        a->s = (str_t){s + st, p->i - st};
        return 0;
    }
    if (c == '"' || c == '`') {
        size_t st = ++p->i;
        bool esc = false;
        while (p->i < end && s[p->i] != c) {
            if (c == '"' && s[p->i] == '\\') {
                esc = true;
                p->i++;
            }
            p->i++;
        }
        if (p->i >= end)
            return tfail(p, "unterminated quoted string%s", "");
        str_t raw = {s + st, p->i - st};
        p->i++;
        a->kind = A_STR;
        if (c == '"' && esc) {
            /* reuse the LogQL lexer's Go unquoting on a quoted copy */
            lq_lexer_t lx;
            char *q = arena_alloc(p->a, raw.len + 3);
            q[0] = '"';
            memcpy(q + 1, raw.ptr, raw.len);
            q[raw.len + 1] = '"';
            lq_lex_init(&lx, (str_t){q, raw.len + 2}, p->a);
            lq_tok_t t = lq_lex_next(&lx);
            if (t.kind != LQT_STRING)
                return tfail(p, "invalid syntax in string%s", "");
            a->s = t.sval;
        } else {
            a->s = raw;
        }
        return 0;
    }
    if (isdigit((unsigned char)c) ||
        ((c == '-' || c == '+') && p->i + 1 < end && isdigit((unsigned char)s[p->i + 1]))) {
        size_t st = p->i++;
        while (p->i < end && (isalnum((unsigned char)s[p->i]) || s[p->i] == '.'))
            p->i++;
        char nb[64];
        size_t nl = p->i - st < 63 ? p->i - st : 63;
        memcpy(nb, s + st, nl);
        nb[nl] = 0;
        char *e;
        a->kind = A_NUM;
        a->num = strtod(nb, &e);
        if (*e)
            return tfail(p, "bad number syntax: %s", nb);
        a->is_int = !strpbrk(nb, ".eE");
        return 0;
    }
    if (c == '(') {
        p->i++;
        size_t depth = 1, j = p->i;
        char q = 0;
        for (; j < end; j++) {
            if (q) {
                if (s[j] == '\\' && q == '"')
                    j++;
                else if (s[j] == q)
                    q = 0;
            } else if (s[j] == '"' || s[j] == '`') {
                q = s[j];
            } else if (s[j] == '(') {
                depth++;
            } else if (s[j] == ')' && --depth == 0) {
                break;
            }
        }
        if (j >= end)
            return tfail(p, "unclosed left paren%s", "");
        a->kind = A_PIPE;
        if (++p->depth > TMPL_MAX_DEPTH)
            return tfail(p, "nested too deeply%s", "");
        int rc = parse_pipe(p, j, &a->pipe);
        p->depth--;
        if (rc)
            return rc;
        p->i = j + 1;
        return 0;
    }
    if (isalpha((unsigned char)c) || c == '_') {
        size_t st = p->i;
        while (p->i < end && (isalnum((unsigned char)s[p->i]) || s[p->i] == '_'))
            p->i++;
        str_t w = {s + st, p->i - st};
        if (str_eq_cstr(w, "__line__")) {
            a->kind = A_LINE;
            return 0;
        }
        if (str_eq_cstr(w, "__timestamp__")) {
            a->kind = A_TS;
            return 0;
        }
        if (str_eq_cstr(w, "true") || str_eq_cstr(w, "false")) {
            a->kind = A_BOOL;
            a->num = str_eq_cstr(w, "true");
            return 0;
        }
        for (size_t k = 0; k < sizeof k_funcs / sizeof k_funcs[0]; k++)
            if (str_eq_cstr(w, k_funcs[k].name)) {
                a->kind = A_FUNC;
                a->fn = (int)k;
                a->s = w;
                return 0;
            }
        char nm[64];
        snprintf(nm, sizeof nm, "%.*s", (int)(w.len > 60 ? 60 : w.len), w.ptr);
        return tfail(p, "function \"%s\" not defined", nm);
    }
    char m[8] = {c, 0};
    return tfail(p, "unexpected \"%s\" in command", m);
}

static int parse_pipe(tparser_t *p, size_t end, tpipe_t **out)
{
    tpipe_t *pp = ARENA_NEW(p->a, tpipe_t);
    size_t ccap = 2;
    pp->cmds = ARENA_ARRAY(p->a, tcmd_t, ccap);
    for (;;) {
        if (pp->n == ccap) {
            tcmd_t *v = ARENA_ARRAY(p->a, tcmd_t, ccap * 2);
            memcpy(v, pp->cmds, ccap * sizeof *v);
            pp->cmds = v;
            ccap *= 2;
        }
        tcmd_t *cmd = &pp->cmds[pp->n++];
        size_t acap = 4;
        cmd->args = ARENA_ARRAY(p->a, targ_t, acap);
        for (;;) {
            tws(p, end);
            if (p->i >= end || p->s.ptr[p->i] == '|')
                break;
            if (cmd->n == acap) {
                targ_t *v = ARENA_ARRAY(p->a, targ_t, acap * 2);
                memcpy(v, cmd->args, acap * sizeof *v);
                cmd->args = v;
                acap *= 2;
            }
            int rc = parse_arg(p, end, &cmd->args[cmd->n]);
            if (rc)
                return rc;
            cmd->n++;
        }
        if (!cmd->n)
            return tfail(p, "missing value for command%s", "");
        for (size_t k = 1; k < cmd->n; k++)
            if (cmd->args[0].kind != A_FUNC)
                return tfail(p, "can't give argument to non-function %s", "value");
        if (p->i >= end)
            break;
        p->i++; /* '|' */
    }
    *out = pp;
    return 0;
}

static tnode_t *add_node(tparser_t *p, tlist_t *l)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        tnode_t *v = ARENA_ARRAY(p->a, tnode_t, cap);
        if (l->n)
            memcpy(v, l->v, l->n * sizeof *v);
        l->v = v;
        l->cap = cap;
    }
    tnode_t *n = &l->v[l->n++];
    memset(n, 0, sizeof *n);
    return n;
}

/* Parses nodes into l until EOF or an {{else}}/{{end}}; *stop gets 0 (EOF), 1 (else), 2 (end),
 * 3 (else if: p->i at the condition, cond_end set). */
static int parse_list(tparser_t *p, tlist_t *l, int *stop, size_t *cond_end)
{
    const char *s = p->s.ptr;
    bool trim_next = false;
    for (;;) {
        size_t st = p->i;
        const char *open = p->i < p->s.len ? memmem(s + p->i, p->s.len - p->i, "{{", 2) : NULL;
        size_t te = open ? (size_t)(open - s) : p->s.len;
        str_t text = {s + st, te - st};
        if (trim_next)
            while (text.len && isspace((unsigned char)text.ptr[0])) {
                text.ptr++;
                text.len--;
            }
        bool ltrim = open && te + 2 < p->s.len && s[te + 2] == '-' && te + 3 < p->s.len &&
                     isspace((unsigned char)s[te + 3]);
        if (ltrim)
            while (text.len && isspace((unsigned char)text.ptr[text.len - 1]))
                text.len--;
        if (text.len) {
            tnode_t *n = add_node(p, l);
            n->kind = N_TEXT;
            n->text = text;
        }
        for (size_t k = st; k < te; k++)
            if (s[k] == '\n')
                p->line++;
        if (!open) {
            p->i = p->s.len;
            *stop = 0;
            return 0;
        }
        size_t as = te + 2 + (ltrim ? 1 : 0);
        /* find the closing }} outside strings */
        size_t j = as;
        char q = 0;
        for (; j + 1 < p->s.len; j++) {
            if (q) {
                if (s[j] == '\\' && q == '"')
                    j++;
                else if (s[j] == q)
                    q = 0;
            } else if (s[j] == '"' || s[j] == '`') {
                q = s[j];
            } else if (s[j] == '}' && s[j + 1] == '}') {
                break;
            }
        }
        if (j + 1 >= p->s.len)
            return tfail(p, "unclosed action%s", "");
        size_t ae = j;
        trim_next = false;
        if (ae > as && s[ae - 1] == '-' && ae - 1 > as && isspace((unsigned char)s[ae - 2])) {
            ae--;
            trim_next = true;
        }
        p->i = as;
        tws(p, ae);
        str_t body = {s + p->i, ae - p->i};
        while (body.len && isspace((unsigned char)body.ptr[body.len - 1]))
            body.len--;
        size_t next = j + 2;
        if (body.len >= 2 && body.ptr[0] == '/' && body.ptr[1] == '*') {
            p->i = next;
            continue;
        }
        if (!body.len)
            return tfail(p, "missing value for command%s", "");
        if (str_eq_cstr(body, "end")) {
            p->i = next;
            *stop = 2;
            return 0;
        }
        if (str_eq_cstr(body, "else")) {
            p->i = next;
            *stop = 1;
            return 0;
        }
        if (str_starts_with(body, "else if ")) {
            p->i = (size_t)(body.ptr - s) + 8;
            *cond_end = ae;
            *stop = 3;
            return 0;
        }
        if (str_starts_with(body, "if ") || str_starts_with(body, "if\t")) {
            p->i = (size_t)(body.ptr - s) + 3;
            size_t ce = ae;
            int rc;
            if (++p->depth > TMPL_MAX_DEPTH)
                return tfail(p, "nested too deeply%s", "");
            tnode_t *cur = add_node(p, l);
            cur->kind = N_IF;
            if ((rc = parse_pipe(p, ce, &cur->pipe)))
                return rc;
            p->i = next;
            for (;;) {
                int st2;
                size_t ce2 = 0;
                if ((rc = parse_list(p, &cur->then, &st2, &ce2)))
                    return rc;
                if (st2 == 0)
                    return tfail(p, "unexpected EOF%s", "");
                if (st2 == 2)
                    break;
                if (st2 == 1) {
                    int st3;
                    size_t ce3;
                    if ((rc = parse_list(p, &cur->els, &st3, &ce3)))
                        return rc;
                    if (st3 != 2)
                        return tfail(p, "expected end%s", "");
                    break;
                }
                /* else if: a nested if in the else branch that shares our end */
                tnode_t *nif = add_node(p, &cur->els);
                nif->kind = N_IF;
                if ((rc = parse_pipe(p, ce2, &nif->pipe)))
                    return rc;
                /* skip to after the }} of the else-if action */
                const char *cl = memmem(s + ce2, p->s.len - ce2, "}}", 2);
                p->i = (size_t)(cl - s) + 2;
                cur = nif;
            }
            p->depth--;
            continue;
        }
        tnode_t *n = add_node(p, l);
        n->kind = N_ACTION;
        p->i = (size_t)(body.ptr - s);
        int rc = parse_pipe(p, (size_t)(body.ptr - s) + body.len, &n->pipe);
        if (rc)
            return rc;
        p->i = next;
    }
}

int lq_tmpl_compile(str_t src, arena_t *a, logql_query_t *q, lq_tmpl_t **out, err_t *err)
{
    (void)q;
    tparser_t p = {src, 0, a, err, 1, 0};
    lq_tmpl_t *t = ARENA_NEW(a, lq_tmpl_t);
    int stop;
    size_t ce;
    int rc = parse_list(&p, &t->root, &stop, &ce);
    if (rc)
        return rc;
    if (stop == 2)
        return tfail(&p, "unexpected {{end}}%s", "");
    if (stop != 0)
        return tfail(&p, "unexpected {{else}}%s", "");
    *out = t;
    return 0;
}

/* ---- execution ---- */

static bool run_pipe(tctx_t *c, const tpipe_t *pp, tval_t *out);

static bool eval_arg(tctx_t *c, const targ_t *a, tval_t *out)
{
    bool ok;
    switch (a->kind) {
    case A_FIELD:
        *out = vstr(lq_builder_get(c->b, a->s, &ok));
        return true;
    case A_STR:
        *out = vstr(a->s);
        return true;
    case A_NUM:
        if (a->is_int) {
            out->k = V_INT;
            out->i = (int64_t)a->num;
        } else {
            out->k = V_FLOAT;
            out->f = a->num;
        }
        return true;
    case A_BOOL:
        out->k = V_BOOL;
        out->b = a->num != 0;
        return true;
    case A_LINE:
        *out = vstr(c->b->line);
        return true;
    case A_TS: {
        int64_t s = c->b->ts_ns / 1000000000LL;
        time_t tt = (time_t)s;
        struct tm tm;
        gmtime_r(&tt, &tm);
        char tb[64];
        strftime(tb, sizeof tb, "%Y-%m-%d %H:%M:%S +0000 UTC", &tm);
        *out = vstr(arena_str(c->a, str_cstr(tb)));
        return true;
    }
    case A_PIPE:
        return run_pipe(c, a->pipe, out);
    case A_DOT:
        *out = vstr(STR("map[]"));
        return true;
    case A_FUNC: {
        tval_t none[1];
        (void)none;
        if (k_funcs[a->fn].min > 0) {
            snprintf(c->err, sizeof c->err, "wrong number of args for %s: want %d got 0",
                     k_funcs[a->fn].name, k_funcs[a->fn].min);
            return false;
        }
        return k_funcs[a->fn].fn(c, NULL, 0, out);
    }
    }
    return false;
}

static bool run_pipe(tctx_t *c, const tpipe_t *pp, tval_t *out)
{
    tval_t prev;
    bool have_prev = false;
    for (size_t i = 0; i < pp->n; i++) {
        const tcmd_t *cmd = &pp->cmds[i];
        if (cmd->args[0].kind != A_FUNC) {
            if (have_prev) {
                snprintf(c->err, sizeof c->err, "can't give argument to non-function");
                return false;
            }
            if (!eval_arg(c, &cmd->args[0], &prev))
                return false;
            have_prev = true;
            continue;
        }
        size_t n = cmd->n - 1 + (have_prev ? 1 : 0);
        tval_t *args = arena_alloc(c->a, (n + 1) * sizeof *args);
        for (size_t k = 1; k < cmd->n; k++)
            if (!eval_arg(c, &cmd->args[k], &args[k - 1]))
                return false;
        if (have_prev)
            args[n - 1] = prev;
        int fn = cmd->args[0].fn;
        if ((int)n < k_funcs[fn].min || (k_funcs[fn].max >= 0 && (int)n > k_funcs[fn].max)) {
            snprintf(c->err, sizeof c->err, "wrong number of args for %s: want %d got %zu",
                     k_funcs[fn].name, k_funcs[fn].min, n);
            return false;
        }
        memset(&prev, 0, sizeof prev);
        if (!k_funcs[fn].fn(c, args, n, &prev)) {
            if (!c->err[0])
                snprintf(c->err, sizeof c->err, "error calling %s", k_funcs[fn].name);
            return false;
        }
        have_prev = true;
    }
    *out = prev;
    return true;
}

static bool run_list(tctx_t *c, const tlist_t *l, buf_t *out)
{
    for (size_t i = 0; i < l->n; i++) {
        const tnode_t *n = &l->v[i];
        tval_t v;
        switch (n->kind) {
        case N_TEXT:
            buf_put_str(out, n->text);
            break;
        case N_ACTION:
            if (!run_pipe(c, n->pipe, &v))
                return false;
            buf_put_str(out, to_str(c, v));
            if (buf_len(out) > TMPL_MAX_OUT) {
                snprintf(c->err, sizeof c->err, "template output over %d bytes", TMPL_MAX_OUT);
                return false;
            }
            break;
        case N_IF:
            if (!run_pipe(c, n->pipe, &v))
                return false;
            if (!run_list(c, truthy(v) ? &n->then : &n->els, out))
                return false;
            break;
        }
    }
    return true;
}

bool lq_tmpl_exec(const lq_tmpl_t *t, lq_builder_t *b, buf_t *out)
{
    tctx_t c = {b, b->a, {0}};
    if (run_list(&c, &t->root, out))
        return true;
    buf_clear(out);
    buf_printf(out, "template: line:1: %s", c.err);
    return false;
}
