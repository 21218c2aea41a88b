/*
 * labels.c - label sets, label matchers and the series-selector parser.
 *
 * Label sets are plain sorted arrays of {name, value} str_t pairs. The hash feeds the names and
 * values, each followed by a 0xff separator byte (which cannot occur in UTF-8), through xxh3 so
 * {a="bc"} and {ab="c"} differ.
 *
 * Regex matchers follow Prometheus: the pattern must match the whole value, and `.` matches a
 * newline (Go's `^(?s:re)$`). Instead of wrapping the pattern in text (which a pattern like `a)|(b`
 * could escape) it is compiled with PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_DOTALL, and
 * PCRE2_DOLLAR_ENDONLY so `$` means end of text as in RE2. Subjects that are not valid UTF-8 are
 * matched with PCRE2_MATCH_INVALID_UTF (invalid bytes never match a character class). A shared
 * match context caps backtracking (match and depth limits) so a pathological pattern fails fast;
 * such a failure counts as "the regex did not match".
 *
 * The selector grammar is PromQL's vector selector without offsets or ranges:
 *   selector := [metric_name] ['{' [item {',' item} [',']] '}']
 *   item     := (label_name | string) op string   |   string      (a bare string is __name__)
 *   op       := '=' | '!=' | '=~' | '!~'
 * Strings are double- or single-quoted with Go escapes, or back-quoted raw.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "store/labels.h"

#include <pcre2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/utf8.h"
#include "base/varint.h"

#define RE_MATCH_LIMIT 1000000
#define RE_DEPTH_LIMIT 10000

/* ---- label sets ---- */

static int label_cmp_name(const void *a, const void *b)
{
    return str_cmp(((const label_t *)a)->name, ((const label_t *)b)->name);
}

int labels_sort(labels_t *ls)
{
    if (ls->n < 2)
        return 0;
    /* Insertion sort: label sets are small and usually nearly sorted already. */
    if (ls->n <= 16) {
        for (size_t i = 1; i < ls->n; i++) {
            label_t x = ls->v[i];
            size_t j = i;
            while (j > 0 && str_cmp(ls->v[j - 1].name, x.name) > 0) {
                ls->v[j] = ls->v[j - 1];
                j--;
            }
            ls->v[j] = x;
        }
    } else {
        qsort(ls->v, ls->n, sizeof *ls->v, label_cmp_name);
    }
    for (size_t i = 1; i < ls->n; i++)
        if (str_eq(ls->v[i - 1].name, ls->v[i].name))
            return ERR_DUPLICATE;
    return 0;
}

int labels_cmp(const labels_t *a, const labels_t *b)
{
    size_t n = a->n < b->n ? a->n : b->n;
    for (size_t i = 0; i < n; i++) {
        int c = str_cmp(a->v[i].name, b->v[i].name);
        if (c)
            return c;
        c = str_cmp(a->v[i].value, b->v[i].value);
        if (c)
            return c;
    }
    return a->n < b->n ? -1 : a->n > b->n;
}

bool labels_eq(const labels_t *a, const labels_t *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (!str_eq(a->v[i].name, b->v[i].name) || !str_eq(a->v[i].value, b->v[i].value))
            return false;
    return true;
}

uint64_t labels_hash(const labels_t *ls)
{
    uint8_t tmp[1024];
    size_t n = 0;
    bool fits = true;
    for (size_t i = 0; i < ls->n && fits; i++) {
        size_t need = ls->v[i].name.len + ls->v[i].value.len + 2;
        if (n + need > sizeof tmp) {
            fits = false;
            break;
        }
        if (ls->v[i].name.len)
            memcpy(tmp + n, ls->v[i].name.ptr, ls->v[i].name.len);
        n += ls->v[i].name.len;
        tmp[n++] = 0xff;
        if (ls->v[i].value.len)
            memcpy(tmp + n, ls->v[i].value.ptr, ls->v[i].value.len);
        n += ls->v[i].value.len;
        tmp[n++] = 0xff;
    }
    uint64_t h;
    if (fits) {
        h = hash64(tmp, n, 0);
    } else {
        /* Rare huge label sets: chain the hash string by string (same equality semantics). */
        h = 0x9e3779b97f4a7c15ULL;
        for (size_t i = 0; i < ls->n; i++) {
            h = hash64(ls->v[i].name.ptr, ls->v[i].name.len, h) ^ 0xff;
            h = hash64(ls->v[i].value.ptr, ls->v[i].value.len, h) ^ 0xfe;
        }
        h = hash_u64(h ^ ls->n);
    }
    return h ? h : 1;
}

str_t labels_get(const labels_t *ls, const char *name)
{
    str_t key = str_cstr(name);
    for (size_t i = 0; i < ls->n; i++)
        if (str_eq(ls->v[i].name, key))
            return ls->v[i].value;
    return STR_NULL;
}

labels_t labels_copy(const labels_t *ls, arena_t *a)
{
    labels_t out = {NULL, ls->n};
    if (!ls->n)
        return out;
    out.v = arena_alloc(a, ls->n * sizeof *out.v);
    size_t total = 0;
    for (size_t i = 0; i < ls->n; i++)
        total += ls->v[i].name.len + ls->v[i].value.len + 2;
    char *p = arena_alloc(a, total);
    for (size_t i = 0; i < ls->n; i++) {
        str_t s = ls->v[i].name;
        memcpy(p, s.ptr ? s.ptr : "", s.len);
        p[s.len] = '\0';
        out.v[i].name = (str_t){p, s.len};
        p += s.len + 1;
        s = ls->v[i].value;
        memcpy(p, s.ptr ? s.ptr : "", s.len);
        p[s.len] = '\0';
        out.v[i].value = (str_t){p, s.len};
        p += s.len + 1;
    }
    return out;
}

/* Go strconv.Quote, close enough for logs and errors: printable UTF-8 kept, the rest escaped. */
static void quote_go(buf_t *out, str_t s)
{
    static const char hex[] = "0123456789abcdef";
    buf_putc(out, '"');
    const uint8_t *p = (const uint8_t *)s.ptr, *end = p + s.len;
    while (p < end) {
        uint8_t c = *p;
        const char *esc = NULL;
        switch (c) {
        case '\a':
            esc = "\\a";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '\v':
            esc = "\\v";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '"':
            esc = "\\\"";
            break;
        default:
            break;
        }
        if (esc) {
            buf_puts(out, esc);
            p++;
            continue;
        }
        if (c < 0x20 || c == 0x7f) {
            char x[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            buf_append(out, x, 4);
            p++;
            continue;
        }
        uint32_t cp;
        size_t n = utf8_decode(p, end, &cp);
        if (!n) {
            char x[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            buf_append(out, x, 4);
            p++;
            continue;
        }
        buf_append(out, p, n);
        p += n;
    }
    buf_putc(out, '"');
}

void labels_format(buf_t *out, const labels_t *ls)
{
    buf_putc(out, '{');
    for (size_t i = 0; i < ls->n; i++) {
        if (i)
            buf_puts(out, ", ");
        buf_put_str(out, ls->v[i].name);
        buf_putc(out, '=');
        quote_go(out, ls->v[i].value);
    }
    buf_putc(out, '}');
}

void labels_encode(buf_t *out, const labels_t *ls)
{
    size_t need = UVARINT_MAX;
    for (size_t i = 0; i < ls->n; i++)
        need += 2 * UVARINT_MAX + ls->v[i].name.len + ls->v[i].value.len;
    uint8_t *p = buf_reserve(out, need);
    p += uvarint_put(p, ls->n);
    for (size_t i = 0; i < ls->n; i++) {
        p += uvarint_put(p, ls->v[i].name.len);
        if (ls->v[i].name.len)
            memcpy(p, ls->v[i].name.ptr, ls->v[i].name.len);
        p += ls->v[i].name.len;
        p += uvarint_put(p, ls->v[i].value.len);
        if (ls->v[i].value.len)
            memcpy(p, ls->v[i].value.ptr, ls->v[i].value.len);
        p += ls->v[i].value.len;
    }
    out->last = p;
}

static int get_str(const uint8_t **p, const uint8_t *end, str_t *s)
{
    uint64_t n;
    size_t k = uvarint_get(*p, end, &n);
    if (!k || n > (uint64_t)(end - *p - (ptrdiff_t)k))
        return ERR_CORRUPT;
    *p += k;
    *s = (str_t){(const char *)*p, (size_t)n};
    *p += n;
    return 0;
}

int labels_decode(const uint8_t **p, const uint8_t *end, arena_t *a, labels_t *out)
{
    uint64_t n;
    size_t k = uvarint_get(*p, end, &n);
    /* Each label needs at least two length bytes: bounds n before allocating. */
    if (!k || n > (uint64_t)(end - *p - (ptrdiff_t)k) / 2)
        return ERR_CORRUPT;
    const uint8_t *q = *p + k;
    out->n = (size_t)n;
    out->v = n ? arena_alloc(a, (size_t)n * sizeof *out->v) : NULL;
    for (size_t i = 0; i < n; i++) {
        if (get_str(&q, end, &out->v[i].name) || get_str(&q, end, &out->v[i].value))
            return ERR_CORRUPT;
    }
    *p = q;
    return 0;
}

bool label_name_valid(str_t name)
{
    if (!name.len)
        return false;
    for (size_t i = 0; i < name.len; i++) {
        char c = name.ptr[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

/* ---- matchers ---- */

static pcre2_match_context *g_mctx;
static pthread_once_t g_mctx_once = PTHREAD_ONCE_INIT;

static void mctx_init(void)
{
    g_mctx = pcre2_match_context_create(NULL);
    if (g_mctx) {
        pcre2_set_match_limit(g_mctx, RE_MATCH_LIMIT);
        pcre2_set_depth_limit(g_mctx, RE_DEPTH_LIMIT);
    }
}

/*
 * RE2 (and so Prometheus) refuses repetition counts above 1000 ("a{1001}"), which PCRE2 accepts;
 * a count like that also multiplies the compiled size. Returns the offset of the offending '{',
 * or -1. Escaped characters and character classes are skipped; a '{' that does not start a
 * well-formed {n}, {n,} or {n,m} is a literal, as in both engines.
 */
static long repeat_over_limit(str_t re)
{
    const char *p = re.ptr;
    size_t n = re.len;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\\') {
            i++;
            continue;
        }
        if (p[i] == '[') { /* character class: up to the closing ']' (a leading ']' is literal) */
            size_t j = i + 1;
            if (j < n && p[j] == '^')
                j++;
            if (j < n && p[j] == ']')
                j++;
            while (j < n && p[j] != ']')
                j += p[j] == '\\' ? 2 : 1;
            i = j;
            continue;
        }
        if (p[i] != '{')
            continue;
        size_t j = i + 1;
        unsigned long a = 0, b = 0;
        bool digits_a = false, digits_b = false, comma = false;
        for (; j < n && p[j] >= '0' && p[j] <= '9'; j++, digits_a = true)
            if (a <= 100000) /* saturate: any longer count is over the limit anyway */
                a = a * 10 + (unsigned long)(p[j] - '0');
        if (j < n && p[j] == ',') {
            comma = true;
            j++;
            for (; j < n && p[j] >= '0' && p[j] <= '9'; j++, digits_b = true)
                if (b <= 100000)
                    b = b * 10 + (unsigned long)(p[j] - '0');
        }
        if (!digits_a || j >= n || p[j] != '}')
            continue; /* not a repetition: a literal '{' */
        if (a > 1000 || (comma && digits_b && b > 1000))
            return (long)i;
    }
    return -1;
}

int matcher_init(matcher_t *m, match_type_t type, str_t name, str_t value, err_t *err)
{
    memset(m, 0, sizeof *m);
    m->type = type;
    m->name = name;
    m->value = value;
    if (type != MATCH_RE && type != MATCH_NRE)
        return 0;
    long rep = repeat_over_limit(value);
    if (rep >= 0)
        return err_set(err, ERR_PARSE,
                       "invalid regular expression \"%.*s\" at offset %ld: invalid repeat count "
                       "(at most 1000, as in RE2)",
                       STR_FMT(value), rep);
    pthread_once(&g_mctx_once, mctx_init);
    int ec;
    PCRE2_SIZE eoff;
    uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_DOTALL | PCRE2_ANCHORED |
                    PCRE2_ENDANCHORED | PCRE2_DOLLAR_ENDONLY;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)(value.ptr ? value.ptr : ""), value.len, opts, &ec, &eoff, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return err_set(err, ERR_PARSE, "invalid regular expression \"%.*s\" at offset %zu: %s",
                       STR_FMT(value), (size_t)eoff, (const char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* best effort: the interpreter is the fallback */
    m->re = re;
    m->re_match = pcre2_match_data_create_from_pattern(re, NULL);
    if (!m->re_match) {
        pcre2_code_free(re);
        m->re = NULL;
        return err_set(err, ERR_NOMEM, "out of memory compiling a regular expression");
    }
    return 0;
}

void matcher_deinit(matcher_t *m)
{
    if (m->re_match)
        pcre2_match_data_free(m->re_match);
    if (m->re)
        pcre2_code_free(m->re);
    m->re = m->re_match = NULL;
}

static bool re_matches(const matcher_t *m, str_t value)
{
    str_t pat = m->value;
    if (pat.len == 2 && pat.ptr[0] == '.' && pat.ptr[1] == '*')
        return true;
    if (pat.len == 2 && pat.ptr[0] == '.' && pat.ptr[1] == '+')
        return value.len > 0;
    if (!m->re)
        return false;
    int rc = pcre2_match(m->re, (PCRE2_SPTR)(value.ptr ? value.ptr : ""), value.len, 0, 0,
                         m->re_match, g_mctx);
    return rc >= 0;
}

bool matcher_matches(const matcher_t *m, str_t value)
{
    switch (m->type) {
    case MATCH_EQ:
        return str_eq(m->value, value);
    case MATCH_NEQ:
        return !str_eq(m->value, value);
    case MATCH_RE:
        return re_matches(m, value);
    case MATCH_NRE:
        return !re_matches(m, value);
    }
    return false;
}

bool matcher_matches_empty(const matcher_t *m) { return matcher_matches(m, STR("")); }

bool matchers_match(const matcher_t *ms, size_t n, const labels_t *ls)
{
    for (size_t i = 0; i < n; i++) {
        str_t v = STR("");
        for (size_t j = 0; j < ls->n; j++) {
            if (str_eq(ls->v[j].name, ms[i].name)) {
                v = ls->v[j].value;
                break;
            }
        }
        if (!matcher_matches(&ms[i], v))
            return false;
    }
    return true;
}

void matchers_deinit(matcher_t *ms, size_t n)
{
    for (size_t i = 0; i < n; i++)
        matcher_deinit(&ms[i]);
}

/* ---- selector parser ---- */

typedef struct parser {
    const char *s;
    size_t len, pos;
    arena_t *a;
    err_t *err;
} parser_t;

static int perr(parser_t *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int perr(parser_t *p, size_t pos, const char *fmt, ...)
{
    int line = 1, col = 1;
    for (size_t i = 0; i < pos && i < p->len; i++) {
        if (p->s[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set_at(p->err, ERR_PARSE, line, col, "%d:%d: %s", line, col, msg);
}

static void skip_ws(parser_t *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
            p->pos++;
        else if (c == '#') { /* PromQL comments run to the end of the line */
            while (p->pos < p->len && p->s[p->pos] != '\n')
                p->pos++;
        } else
            break;
    }
}

static bool is_ident_start(char c, bool colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}

static bool is_ident_char(char c, bool colon)
{
    return is_ident_start(c, colon) || (c >= '0' && c <= '9');
}

static str_t lex_ident(parser_t *p, bool colon)
{
    size_t start = p->pos;
    if (p->pos < p->len && is_ident_start(p->s[p->pos], colon)) {
        p->pos++;
        while (p->pos < p->len && is_ident_char(p->s[p->pos], colon))
            p->pos++;
    }
    return (str_t){p->s + start, p->pos - start};
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void put_utf8(buf_t *b, uint32_t cp)
{
    if (cp < 0x80) {
        buf_putc(b, (char)cp);
    } else if (cp < 0x800) {
        buf_putc(b, (char)(0xc0 | cp >> 6));
        buf_putc(b, (char)(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        buf_putc(b, (char)(0xe0 | cp >> 12));
        buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
        buf_putc(b, (char)(0x80 | (cp & 0x3f)));
    } else {
        buf_putc(b, (char)(0xf0 | cp >> 18));
        buf_putc(b, (char)(0x80 | ((cp >> 12) & 0x3f)));
        buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
        buf_putc(b, (char)(0x80 | (cp & 0x3f)));
    }
}

/* One escape after the backslash at p->pos (already consumed); appends the bytes it denotes. */
static int lex_escape(parser_t *p, char quote, buf_t *b)
{
    size_t at = p->pos - 1;
    if (p->pos >= p->len)
        return perr(p, at, "unterminated quoted string");
    char c = p->s[p->pos++];
    switch (c) {
    case 'a':
        buf_putc(b, '\a');
        return 0;
    case 'b':
        buf_putc(b, '\b');
        return 0;
    case 'f':
        buf_putc(b, '\f');
        return 0;
    case 'n':
        buf_putc(b, '\n');
        return 0;
    case 'r':
        buf_putc(b, '\r');
        return 0;
    case 't':
        buf_putc(b, '\t');
        return 0;
    case 'v':
        buf_putc(b, '\v');
        return 0;
    case '\\':
        buf_putc(b, '\\');
        return 0;
    case '"':
    case '\'':
        if (c != quote)
            return perr(p, at, "unknown escape sequence '\\%c'", c);
        buf_putc(b, c);
        return 0;
    case 'x':
    case 'u':
    case 'U': {
        int nd = c == 'x' ? 2 : c == 'u' ? 4 : 8;
        uint32_t v = 0;
        for (int i = 0; i < nd; i++) {
            int h = p->pos < p->len ? hexval(p->s[p->pos]) : -1;
            if (h < 0)
                return perr(p, at, "invalid escape sequence: expected %d hex digits after \\%c", nd,
                            c);
            v = v << 4 | (uint32_t)h;
            p->pos++;
        }
        if (c == 'x') {
            buf_putc(b, (char)v);
        } else {
            if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
                return perr(p, at, "invalid Unicode code point in escape sequence");
            put_utf8(b, v);
        }
        return 0;
    }
    default:
        if (c >= '0' && c <= '7') {
            uint32_t v = (uint32_t)(c - '0');
            for (int i = 0; i < 2; i++) {
                if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '7')
                    return perr(p, at, "invalid escape sequence: expected 3 octal digits");
                v = v * 8 + (uint32_t)(p->s[p->pos++] - '0');
            }
            if (v > 255)
                return perr(p, at, "octal escape value > 255: %u", v);
            buf_putc(b, (char)v);
            return 0;
        }
        return perr(p, at, "unknown escape sequence '\\%c'", c);
    }
}

/* A quoted string at p->pos (which is on the opening quote); the result lives in the arena. */
static int lex_string(parser_t *p, str_t *out)
{
    size_t start = p->pos;
    char q = p->s[p->pos++];
    buf_t b = BUF_INIT;
    int rc = 0;
    for (;;) {
        if (p->pos >= p->len) {
            rc = perr(p, start, "unterminated quoted string");
            break;
        }
        char c = p->s[p->pos++];
        if (c == q)
            break;
        if (q != '`' && c == '\n') {
            rc = perr(p, start, "unterminated quoted string");
            break;
        }
        if (q != '`' && c == '\\') {
            rc = lex_escape(p, q, &b);
            if (rc)
                break;
            continue;
        }
        buf_putc(&b, c);
    }
    if (!rc)
        *out = arena_str(p->a, buf_str(&b));
    buf_deinit(&b);
    return rc;
}

static bool at_quote(parser_t *p)
{
    if (p->pos >= p->len)
        return false;
    char c = p->s[p->pos];
    return c == '"' || c == '\'' || c == '`';
}

static const char *describe(parser_t *p, char *tmp, size_t n)
{
    if (p->pos >= p->len)
        return "end of input";
    snprintf(tmp, n, "character '%c'", p->s[p->pos]);
    return tmp;
}

typedef struct mlist {
    matcher_t *v;
    size_t n, cap;
    size_t *pos;
} mlist_t;

static void mlist_push(mlist_t *l, parser_t *p, matcher_t m, size_t pos)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 8;
        matcher_t *nv = arena_alloc(p->a, ncap * sizeof *nv);
        size_t *np = arena_alloc(p->a, ncap * sizeof *np);
        if (l->n) {
            memcpy(nv, l->v, l->n * sizeof *nv);
            memcpy(np, l->pos, l->n * sizeof *np);
        }
        l->v = nv;
        l->pos = np;
        l->cap = ncap;
    }
    l->pos[l->n] = pos;
    l->v[l->n++] = m;
}

static int parse_item(parser_t *p, mlist_t *l)
{
    char tmp[32];
    size_t start = p->pos;
    str_t name;
    bool quoted = at_quote(p);
    if (quoted) {
        int rc = lex_string(p, &name);
        if (rc)
            return rc;
    } else {
        name = lex_ident(p, false);
        if (!name.len)
            return perr(p, p->pos, "unexpected %s inside braces, expected a label name",
                        describe(p, tmp, sizeof tmp));
    }
    skip_ws(p);
    match_type_t type;
    const char *s = p->s + p->pos;
    size_t rest = p->len - p->pos;
    if (quoted && (rest == 0 || *s == ',' || *s == '}')) {
        /* A bare quoted string is the metric name (Prometheus 3 UTF-8 names). */
        matcher_t m;
        matcher_init(&m, MATCH_EQ, STR("__name__"), name, NULL);
        mlist_push(l, p, m, start);
        return 0;
    }
    if (rest >= 2 && s[0] == '!' && s[1] == '=') {
        type = MATCH_NEQ;
        p->pos += 2;
    } else if (rest >= 2 && s[0] == '=' && s[1] == '~') {
        type = MATCH_RE;
        p->pos += 2;
    } else if (rest >= 2 && s[0] == '!' && s[1] == '~') {
        type = MATCH_NRE;
        p->pos += 2;
    } else if (rest >= 1 && s[0] == '=') {
        type = MATCH_EQ;
        p->pos += 1;
    } else {
        return perr(p, p->pos, "unexpected %s in label matching, expected one of =, !=, =~, !~",
                    describe(p, tmp, sizeof tmp));
    }
    skip_ws(p);
    if (!at_quote(p))
        return perr(p, p->pos, "unexpected %s in label matching, expected a quoted string",
                    describe(p, tmp, sizeof tmp));
    size_t vpos = p->pos;
    str_t value;
    int rc = lex_string(p, &value);
    if (rc)
        return rc;
    matcher_t m;
    rc = matcher_init(&m, type, name, value, p->err);
    if (rc) {
        char msg[sizeof p->err->msg];
        snprintf(msg, sizeof msg, "%s", p->err ? p->err->msg : "invalid regular expression");
        return perr(p, vpos, "%s", msg);
    }
    mlist_push(l, p, m, start);
    return 0;
}

int matchers_parse(str_t sel, arena_t *a, matcher_t **out, size_t *n_out, err_t *err)
{
    parser_t p = {sel.ptr ? sel.ptr : "", sel.len, 0, a, err};
    mlist_t l = {0};
    char tmp[32];
    int rc = 0;
    skip_ws(&p);
    size_t name_pos = p.pos;
    str_t metric = lex_ident(&p, true);
    bool has_name = metric.len > 0;
    if (has_name) {
        matcher_t m;
        matcher_init(&m, MATCH_EQ, STR("__name__"), arena_str(a, metric), NULL);
        mlist_push(&l, &p, m, name_pos);
    }
    skip_ws(&p);
    bool braces = false;
    if (p.pos < p.len && p.s[p.pos] == '{') {
        braces = true;
        p.pos++;
        for (;;) {
            skip_ws(&p);
            if (p.pos >= p.len) {
                rc = perr(&p, p.pos, "unexpected end of input inside braces");
                goto fail;
            }
            if (p.s[p.pos] == '}') {
                p.pos++;
                break;
            }
            rc = parse_item(&p, &l);
            if (rc)
                goto fail;
            skip_ws(&p);
            if (p.pos < p.len && p.s[p.pos] == ',') {
                p.pos++;
                continue;
            }
            if (p.pos < p.len && p.s[p.pos] == '}') {
                p.pos++;
                break;
            }
            rc = perr(&p, p.pos, "unexpected %s inside braces, expected ',' or '}'",
                      describe(&p, tmp, sizeof tmp));
            goto fail;
        }
    }
    skip_ws(&p);
    if (p.pos < p.len) {
        rc = perr(&p, p.pos, "unexpected %s after the selector", describe(&p, tmp, sizeof tmp));
        goto fail;
    }
    if (!has_name && !braces) {
        rc = perr(&p, p.pos, "unexpected end of input, expected a metric name or '{'");
        goto fail;
    }
    bool non_empty = false;
    for (size_t i = 0; i < l.n; i++) {
        if (has_name && i > 0 && str_eq_cstr(l.v[i].name, "__name__")) {
            rc = perr(&p, l.pos[i], "metric name must not be set twice: \"%.*s\" or \"%.*s\"",
                      STR_FMT(metric), STR_FMT(l.v[i].value));
            goto fail;
        }
        if (!matcher_matches_empty(&l.v[i]))
            non_empty = true;
    }
    if (!non_empty) {
        rc = perr(&p, 0, "vector selector must contain at least one non-empty matcher");
        goto fail;
    }
    *out = l.v;
    *n_out = l.n;
    return 0;
fail:
    matchers_deinit(l.v, l.n);
    *out = NULL;
    *n_out = 0;
    return rc;
}

void labels_write_json(jw_t *w, const labels_t *ls)
{
    jw_obj(w);
    for (size_t i = 0; ls && i < ls->n; i++) {
        jw_key_str(w, ls->v[i].name);
        jw_str(w, ls->v[i].value);
    }
    jw_end(w);
}
