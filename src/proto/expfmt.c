/*
 * expfmt.c - Prometheus text 0.0.4 and OpenMetrics 1.0 text parser (expfmt.h).
 *
 * A hand-written scanner, one line per expfmt_next call (comments that are not metadata are
 * skipped inside the call). Grammar of a sample line, as Prometheus' textparse lexers accept it:
 *
 *   name [ "{" [ lname blanks? "=" blanks? '"' value '"' { "," lname = "value" } [","] ] "}" ]
 *        blanks value [ blanks timestamp ] [ blanks "#" blanks exemplar ] blanks? EOL
 *
 * with name [a-zA-Z_:][a-zA-Z0-9_:]*, lname [a-zA-Z_][a-zA-Z0-9_]*, blanks spaces or tabs. Values
 * follow Go's strconv.ParseFloat (decimal, hex with p exponent, NaN, +Inf, -Inf, Inf, case-
 * insensitive); 0.0.4 timestamps strconv.ParseInt milliseconds, OpenMetrics timestamps float
 * seconds (multiplied by 1000 and truncated, as Prometheus does). A "\r" before "\n" is accepted.
 * Label values and HELP texts without a backslash are returned as slices of the input; with one,
 * they are unescaped into the arena (unknown escapes are kept as written, as Prometheus does).
 */
#include "proto/expfmt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/fmtnum.h"

expfmt_format_t expfmt_format_of(const char *ct)
{
    if (!ct)
        return EXPFMT_TEXT;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    static const char om[] = "application/openmetrics-text";
    if (strncasecmp(ct, om, sizeof om - 1) == 0) {
        char c = ct[sizeof om - 1];
        if (c == 0 || c == ';' || c == ' ' || c == '\t')
            return EXPFMT_OPENMETRICS;
    }
    return EXPFMT_TEXT;
}

const char *expfmt_format_name(expfmt_format_t f)
{
    return f == EXPFMT_OPENMETRICS ? "OpenMetrics 1.0" : "text 0.0.4";
}

const char *expfmt_type_name(expfmt_type_t t)
{
    static const char *const names[] = {"unknown",        "counter", "gauge", "histogram",
                                        "gaugehistogram", "summary", "info",  "stateset"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

void expfmt_init(expfmt_parser_t *p, str_t text, expfmt_format_t fmt, arena_t *a)
{
    memset(p, 0, sizeof *p);
    p->p = text.ptr ? text.ptr : "";
    p->end = p->p + text.len;
    p->fmt = fmt;
    p->a = a;
}

void expfmt_deinit(expfmt_parser_t *p)
{
    free(p->labels);
    p->labels = NULL;
    p->labels_cap = 0;
}

/* ---- scanning helpers; a "line" is [s, e) without its newline ---- */

typedef struct scan {
    expfmt_parser_t *p;
    const char *start; /* first byte of the line, for columns */
    const char *s, *e;
    err_t *err;
} scan_t;

static bool is_blank(char c) { return c == ' ' || c == '\t'; }
static bool is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
static bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }
static bool is_lname_start(char c) { return c != ':' && is_name_start(c); }
static bool is_lname_char(char c) { return c != ':' && is_name_char(c); }

static void skip_blanks(scan_t *sc)
{
    while (sc->s < sc->e && is_blank(*sc->s))
        sc->s++;
}

/* Describes what is at the cursor for "got ..." in messages. */
static void describe(const scan_t *sc, char *out, size_t cap)
{
    if (sc->s >= sc->e) {
        snprintf(out, cap, "end of line");
        return;
    }
    unsigned char c = (unsigned char)*sc->s;
    if (c >= 0x20 && c < 0x7f && c != '\'')
        snprintf(out, cap, "'%c'", c);
    else if (c == '\'')
        snprintf(out, cap, "\"'\"");
    else
        snprintf(out, cap, "byte 0x%02x", c);
}

static int fail(scan_t *sc, const char *what)
{
    char got[32];
    describe(sc, got, sizeof got);
    int col = (int)(sc->s - sc->start) + 1;
    return err_set_at(sc->err, ERR_PARSE, sc->p->line, col, "line %d: %s, got %s", sc->p->line,
                      what, got);
}

static int fail_plain(scan_t *sc, const char *fmt, const char *arg)
{
    char what[256];
    snprintf(what, sizeof what, fmt, arg);
    int col = (int)(sc->s - sc->start) + 1;
    return err_set_at(sc->err, ERR_PARSE, sc->p->line, col, "line %d: %s", sc->p->line, what);
}

static bool scan_name(scan_t *sc, str_t *out, bool label)
{
    const char *b = sc->s;
    if (sc->s >= sc->e || !(label ? is_lname_start(*sc->s) : is_name_start(*sc->s)))
        return false;
    sc->s++;
    while (sc->s < sc->e && (label ? is_lname_char(*sc->s) : is_name_char(*sc->s)))
        sc->s++;
    *out = str_from(b, (size_t)(sc->s - b));
    return true;
}

/* Unescapes [b, e) into the arena: \\ -> \, \n -> newline, \" -> " when quote_esc; any other
 * escape is kept as written. */
static str_t unescape(arena_t *a, const char *b, const char *e, bool quote_esc)
{
    char *o = arena_alloc(a, (size_t)(e - b) + 1);
    size_t n = 0;
    for (const char *q = b; q < e; q++) {
        if (*q == '\\' && q + 1 < e) {
            char c = q[1];
            if (c == '\\' || c == 'n' || (c == '"' && quote_esc)) {
                o[n++] = c == 'n' ? '\n' : c;
                q++;
                continue;
            }
        }
        o[n++] = *q;
    }
    o[n] = 0;
    return str_from(o, n);
}

/* A quoted label value at the cursor ('"' included). */
static int scan_quoted(scan_t *sc, str_t *out)
{
    if (sc->s >= sc->e || *sc->s != '"')
        return fail(sc, "expected '\"' to start the label value");
    const char *b = ++sc->s;
    bool esc = false;
    while (sc->s < sc->e && *sc->s != '"') {
        if (*sc->s == '\\') {
            esc = true;
            if (sc->s + 1 >= sc->e) {
                sc->s = sc->e; /* a backslash at the end of the line escapes nothing */
                break;
            }
            sc->s++;
        }
        sc->s++;
    }
    if (sc->s >= sc->e) {
        sc->s = b - 1;
        return fail_plain(sc, "%s", "label value is missing its closing '\"'");
    }
    *out = esc ? unescape(sc->p->a, b, sc->s, true) : str_from(b, (size_t)(sc->s - b));
    sc->s++;
    return 0;
}

/* The token up to the next blank or the end of the line. */
static str_t scan_token(scan_t *sc)
{
    const char *b = sc->s;
    while (sc->s < sc->e && !is_blank(*sc->s))
        sc->s++;
    return str_from(b, (size_t)(sc->s - b));
}

static bool tok_ieq(str_t t, const char *w)
{
    size_t n = strlen(w);
    return t.len == n && strncasecmp(t.ptr, w, n) == 0;
}

/* Go strconv.ParseFloat(s, 64), without underscores. */
static bool parse_float(str_t t, double *v)
{
    if (!t.len || t.len > 128)
        return false;
    str_t u = t;
    bool neg = false;
    if (u.ptr[0] == '+' || u.ptr[0] == '-') {
        neg = u.ptr[0] == '-';
        u.ptr++;
        u.len--;
    }
    if (tok_ieq(u, "inf") || tok_ieq(u, "infinity")) {
        *v = neg ? -INFINITY : INFINITY;
        return true;
    }
    if (tok_ieq(u, "nan")) {
        *v = NAN;
        return true;
    }
    bool hex = u.len > 1 && u.ptr[0] == '0' && (u.ptr[1] == 'x' || u.ptr[1] == 'X');
    bool digit = false, exp_p = false;
    for (size_t i = 0; i < t.len; i++) {
        char c = t.ptr[i];
        if (c >= '0' && c <= '9') {
            digit = true;
            continue;
        }
        if (c == '+' || c == '-' || c == '.')
            continue;
        if (hex && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == 'x' || c == 'X')) {
            digit |= c != 'x' && c != 'X';
            continue;
        }
        if (hex && (c == 'p' || c == 'P')) {
            exp_p = true;
            continue;
        }
        if (!hex && (c == 'e' || c == 'E'))
            continue;
        return false;
    }
    if (!digit || (hex && !exp_p))
        return false;
    char tmp[136];
    memcpy(tmp, t.ptr, t.len);
    tmp[t.len] = 0;
    char *endp;
    double d = strtod(tmp, &endp);
    if (endp != tmp + t.len)
        return false;
    *v = d; /* overflow gives +-Inf like Go's value (Go also returns an error; accept it) */
    return true;
}

static bool parse_int64(str_t t, int64_t *v)
{
    if (!t.len || t.len > 24)
        return false;
    size_t i = 0;
    bool neg = false;
    if (t.ptr[0] == '+' || t.ptr[0] == '-') {
        neg = t.ptr[0] == '-';
        i++;
    }
    if (i == t.len)
        return false;
    uint64_t acc = 0;
    for (; i < t.len; i++) {
        char c = t.ptr[i];
        if (c < '0' || c > '9')
            return false;
        uint64_t d = (uint64_t)(c - '0');
        if (acc > (UINT64_MAX - d) / 10)
            return false;
        acc = acc * 10 + d;
    }
    if (neg ? acc > (uint64_t)INT64_MAX + 1 : acc > (uint64_t)INT64_MAX)
        return false;
    *v = neg ? (int64_t)(0 - acc) : (int64_t)acc;
    return true;
}

static int add_label(scan_t *sc, str_t name, str_t value, size_t *n)
{
    expfmt_parser_t *p = sc->p;
    if (*n >= EXPFMT_MAX_LABELS)
        return fail_plain(sc, "more than %s labels on one sample", "1024");
    for (size_t i = 0; i < *n; i++)
        if (str_eq(p->labels[i].name, name)) {
            char nm[80];
            snprintf(nm, sizeof nm, "%.*s", (int)(name.len < 64 ? name.len : 64), name.ptr);
            return fail_plain(sc, "duplicate label name \"%s\"", nm);
        }
    if (*n == p->labels_cap) {
        size_t cap = p->labels_cap ? p->labels_cap * 2 : 16;
        expfmt_label_t *nl = realloc(p->labels, cap * sizeof *nl);
        if (!nl)
            return err_set(sc->err, ERR_NOMEM, "out of memory");
        p->labels = nl;
        p->labels_cap = cap;
    }
    p->labels[(*n)++] = (expfmt_label_t){name, value};
    return 0;
}

static int parse_labels(scan_t *sc, size_t *n)
{
    sc->s++; /* '{' */
    for (;;) {
        skip_blanks(sc);
        if (sc->s < sc->e && *sc->s == '}') {
            sc->s++;
            return 0;
        }
        str_t name, value;
        if (!scan_name(sc, &name, true))
            return fail(sc, "expected label name or '}'");
        skip_blanks(sc);
        if (sc->s >= sc->e || *sc->s != '=')
            return fail(sc, "expected '=' after label name");
        sc->s++;
        skip_blanks(sc);
        int rc = scan_quoted(sc, &value);
        if (rc)
            return rc;
        if ((rc = add_label(sc, name, value, n)) != 0)
            return rc;
        skip_blanks(sc);
        if (sc->s < sc->e && *sc->s == ',') {
            sc->s++;
            continue;
        }
        if (sc->s < sc->e && *sc->s == '}') {
            sc->s++;
            return 0;
        }
        return fail(sc, "expected ',' or '}' after label value");
    }
}

/* OpenMetrics exemplar after a sample: "# {labels} value [timestamp]". Checked and dropped. */
static int skip_exemplar(scan_t *sc)
{
    sc->s++; /* '#' */
    skip_blanks(sc);
    if (sc->s >= sc->e || *sc->s != '{')
        return fail(sc, "expected '{' to start the exemplar's labels");
    /* The labels are scanned, not stored: the sample's labels stay in the scratch array. */
    sc->s++;
    for (;;) {
        skip_blanks(sc);
        if (sc->s < sc->e && *sc->s == '}') {
            sc->s++;
            break;
        }
        str_t name, value;
        if (!scan_name(sc, &name, true))
            return fail(sc, "expected exemplar label name or '}'");
        if (sc->s >= sc->e || *sc->s != '=')
            return fail(sc, "expected '=' after exemplar label name");
        sc->s++;
        int rc = scan_quoted(sc, &value);
        if (rc)
            return rc;
        if (sc->s < sc->e && *sc->s == ',') {
            sc->s++;
            continue;
        }
        if (sc->s < sc->e && *sc->s == '}') {
            sc->s++;
            break;
        }
        return fail(sc, "expected ',' or '}' after exemplar label value");
    }
    if (sc->s >= sc->e || !is_blank(*sc->s))
        return fail(sc, "expected a blank before the exemplar value");
    skip_blanks(sc);
    double v;
    str_t t = scan_token(sc);
    if (!parse_float(t, &v)) {
        sc->s = t.ptr;
        return fail(sc, "expected a valid exemplar value");
    }
    skip_blanks(sc);
    if (sc->s < sc->e) {
        t = scan_token(sc);
        if (!parse_float(t, &v)) {
            sc->s = t.ptr;
            return fail(sc, "expected a valid exemplar timestamp");
        }
        skip_blanks(sc);
        if (sc->s < sc->e)
            return fail(sc, "expected end of line after the exemplar");
    }
    return 0;
}

static int parse_sample(scan_t *sc, expfmt_entry_t *e)
{
    expfmt_parser_t *p = sc->p;
    str_t name;
    if (!scan_name(sc, &name, false))
        return fail(sc, "expected metric name");
    size_t n = 0;
    int rc;
    if (sc->s < sc->e && *sc->s == '{') {
        if ((rc = parse_labels(sc, &n)) != 0)
            return rc;
    } else if (sc->s < sc->e && !is_blank(*sc->s)) {
        return fail(sc, "expected '{' or a blank after the metric name");
    }
    skip_blanks(sc);
    if (sc->s >= sc->e)
        return fail(sc, "expected value after metric");
    str_t t = scan_token(sc);
    double v;
    if (!parse_float(t, &v)) {
        sc->s = t.ptr;
        char tok[80];
        snprintf(tok, sizeof tok, "%.*s", (int)(t.len < 64 ? t.len : 64), t.ptr);
        return fail_plain(sc, "invalid sample value \"%s\"", tok);
    }
    e->kind = EXPFMT_SAMPLE;
    e->name = name;
    e->labels = n ? p->labels : NULL;
    e->n_labels = n;
    e->value = v;
    e->has_ts = false;
    e->ts_ms = 0;
    skip_blanks(sc);
    if (sc->s < sc->e && *sc->s != '#') {
        t = scan_token(sc);
        if (p->fmt == EXPFMT_OPENMETRICS) {
            double sec;
            if (!parse_float(t, &sec) || isnan(sec) || isinf(sec) || fabs(sec) > 9.2e15) {
                sc->s = t.ptr;
                char tok[80];
                snprintf(tok, sizeof tok, "%.*s", (int)(t.len < 64 ? t.len : 64), t.ptr);
                return fail_plain(sc, "invalid timestamp \"%s\" (seconds expected)", tok);
            }
            e->ts_ms = (int64_t)(sec * 1000);
        } else if (!parse_int64(t, &e->ts_ms)) {
            sc->s = t.ptr;
            char tok[80];
            snprintf(tok, sizeof tok, "%.*s", (int)(t.len < 64 ? t.len : 64), t.ptr);
            return fail_plain(sc, "invalid timestamp \"%s\" (integer milliseconds expected)", tok);
        }
        e->has_ts = true;
        skip_blanks(sc);
    }
    if (sc->s < sc->e && *sc->s == '#' && p->fmt == EXPFMT_OPENMETRICS)
        return skip_exemplar(sc);
    if (sc->s < sc->e)
        return fail(sc, "expected end of line after the sample");
    return 0;
}

static bool parse_type_word(str_t w, expfmt_format_t fmt, expfmt_type_t *t)
{
    static const struct {
        const char *w;
        expfmt_type_t t;
        int fmts; /* 1 text, 2 OpenMetrics */
    } words[] = {
        {"counter", EXPFMT_COUNTER, 3},
        {"gauge", EXPFMT_GAUGE, 3},
        {"histogram", EXPFMT_HISTOGRAM, 3},
        {"summary", EXPFMT_SUMMARY, 3},
        {"untyped", EXPFMT_UNKNOWN, 1},
        {"unknown", EXPFMT_UNKNOWN, 2},
        {"gaugehistogram", EXPFMT_GAUGEHISTOGRAM, 2},
        {"info", EXPFMT_INFO, 2},
        {"stateset", EXPFMT_STATESET, 2},
    };
    int bit = fmt == EXPFMT_OPENMETRICS ? 2 : 1;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if ((words[i].fmts & bit) && str_eq_cstr(w, words[i].w)) {
            *t = words[i].t;
            return true;
        }
    return false;
}

/* "# ..." lines. Returns 1 with e filled for metadata, 0 for a comment to skip, or an error. */
static int parse_comment(scan_t *sc, expfmt_entry_t *e)
{
    expfmt_parser_t *p = sc->p;
    bool om = p->fmt == EXPFMT_OPENMETRICS;
    sc->s++; /* '#' */
    if (om && (sc->s >= sc->e || *sc->s != ' '))
        return fail(sc, "expected a space after '#'");
    skip_blanks(sc);
    const char *kw_at = sc->s;
    str_t kw = scan_token(sc);
    expfmt_kind_t kind;
    if (str_eq_cstr(kw, "HELP"))
        kind = EXPFMT_HELP;
    else if (str_eq_cstr(kw, "TYPE"))
        kind = EXPFMT_TYPE;
    else if (om && str_eq_cstr(kw, "UNIT"))
        kind = EXPFMT_UNIT;
    else if (om && str_eq_cstr(kw, "EOF")) {
        skip_blanks(sc);
        if (sc->s < sc->e)
            return fail(sc, "expected end of line after # EOF");
        p->eof_seen = true;
        return 0;
    } else if (om) {
        sc->s = kw_at;
        return fail(sc, "expected HELP, TYPE, UNIT or EOF after '#'");
    } else {
        return 0; /* a plain comment */
    }
    if (sc->s >= sc->e || !is_blank(*sc->s))
        return fail(sc, "expected a blank after the keyword");
    skip_blanks(sc);
    str_t name;
    if (!scan_name(sc, &name, false))
        return fail(sc, kind == EXPFMT_HELP   ? "expected metric name after HELP"
                        : kind == EXPFMT_TYPE ? "expected metric name after TYPE"
                                              : "expected metric name after UNIT");
    memset(e, 0, sizeof *e);
    e->kind = kind;
    e->name = name;
    if (sc->s < sc->e && !is_blank(*sc->s))
        return fail(sc, "expected a blank after the metric name");
    if (kind == EXPFMT_HELP) {
        /* 0.0.4 allows "# HELP name" without text; the text is the rest of the line. */
        if (sc->s < sc->e)
            sc->s++;
        if (!om)
            skip_blanks(sc);
        const char *b = sc->s;
        bool esc = memchr(b, '\\', (size_t)(sc->e - b)) != NULL;
        e->text = esc ? unescape(p->a, b, sc->e, om) : str_from(b, (size_t)(sc->e - b));
        sc->s = sc->e;
        return 1;
    }
    skip_blanks(sc);
    if (kind == EXPFMT_UNIT) {
        const char *b = sc->s;
        str_t u = scan_token(sc);
        skip_blanks(sc);
        if (sc->s < sc->e)
            return fail(sc, "expected end of line after the unit");
        e->text = str_from(b, u.len);
        return 1;
    }
    const char *b = sc->s;
    str_t w = scan_token(sc);
    if (!parse_type_word(w, p->fmt, &e->type)) {
        sc->s = b;
        char tok[80];
        snprintf(tok, sizeof tok, "%.*s", (int)(w.len < 64 ? w.len : 64), w.ptr);
        return fail_plain(sc, "invalid metric type \"%s\"", tok);
    }
    skip_blanks(sc);
    if (sc->s < sc->e)
        return fail(sc, "expected end of line after the metric type");
    return 1;
}

int expfmt_next(expfmt_parser_t *p, expfmt_entry_t *e, err_t *err)
{
    e->kind = EXPFMT_END;
    if (p->line < 0)
        return err_set(err, ERR_PARSE, "parser already failed");
    while (p->p < p->end) {
        const char *ls = p->p;
        const char *nl = memchr(ls, '\n', (size_t)(p->end - ls));
        const char *le = nl ? nl : p->end;
        p->p = nl ? nl + 1 : p->end;
        p->line++;
        if (le > ls && le[-1] == '\r')
            le--;
        scan_t sc = {.p = p, .start = ls, .s = ls, .e = le, .err = err};
        if (p->eof_seen) {
            int rc = fail_plain(&sc, "%s", "unexpected data after # EOF");
            p->line = -1;
            return rc;
        }
        skip_blanks(&sc);
        if (sc.s == sc.e)
            continue; /* empty line */
        int rc;
        if (*sc.s == '#') {
            rc = parse_comment(&sc, e);
            if (rc == 0)
                continue;
        } else {
            rc = parse_sample(&sc, e);
            if (rc == 0)
                rc = 1;
        }
        if (rc < 0) {
            e->kind = EXPFMT_END;
            p->line = -1;
            return rc;
        }
        e->line = p->line;
        return 1;
    }
    if (p->fmt == EXPFMT_OPENMETRICS && !p->eof_seen) {
        int line = p->line + 1;
        p->line = -1;
        return err_set_at(err, ERR_PARSE, line, 1,
                          "line %d: unexpected end of input, expected # EOF (OpenMetrics)", line);
    }
    return 0;
}

void expfmt_write_sample(buf_t *out, const expfmt_entry_t *e)
{
    buf_put_str(out, e->name);
    if (e->n_labels) {
        buf_putc(out, '{');
        for (size_t i = 0; i < e->n_labels; i++) {
            if (i)
                buf_putc(out, ',');
            buf_put_str(out, e->labels[i].name);
            buf_puts(out, "=\"");
            str_t v = e->labels[i].value;
            for (size_t k = 0; k < v.len; k++) {
                char c = v.ptr[k];
                if (c == '\\' || c == '"') {
                    buf_putc(out, '\\');
                    buf_putc(out, c);
                } else if (c == '\n') {
                    buf_puts(out, "\\n");
                } else {
                    buf_putc(out, c);
                }
            }
            buf_putc(out, '"');
        }
        buf_putc(out, '}');
    }
    char num[FMTNUM_MAX];
    if (e->value == 0 && signbit(e->value))
        snprintf(num, sizeof num, "-0"); /* Go's client writes -0; keep the sign */
    else
        fmt_float_prom(num, e->value);
    buf_putc(out, ' ');
    buf_puts(out, num);
    if (e->has_ts)
        buf_printf(out, " %lld", (long long)e->ts_ms);
    buf_putc(out, '\n');
}
