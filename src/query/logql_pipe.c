/*
 * logql_pipe.c - the LogQL log pipeline: what happens to one log entry between the store and a
 * result (Loki pkg/logql/log).
 *
 * The working state is a label builder (Loki's LabelsBuilder): every label carries its category
 * (stream, structured metadata, parsed) because name clashes are resolved by category. The base
 * name goes to the highest-precedence source (stream > metadata > parsed) and the loser spills to
 * <name>_extracted, where a parsed value overwrites a metadata one. A duplicate key within one
 * parser run keeps its first value. Parse failures never drop the line: they set __error__
 * (JSONParserErr, LogfmtParserErr, LabelFilterErr, SampleExtractionErr, TemplateFormatErr) and
 * __error_details__, which a later `| __error__=""` can filter; a metric query whose output still
 * carries __error__ fails (logql_eval.c).
 *
 * Label filters follow Loki's label_filter.go: string matchers read an absent label as "" (and
 * __error__ as the current error); numeric, duration and bytes filters drop a line that lacks the
 * label, keep a line whose value does not convert (setting LabelFilterErr, the first failure owning
 * __error_details__), and otherwise compare. `or` skips its right side when the left matched.
 *
 * Regexes in line filters and `regexp` are PCRE2 (UTF, invalid UTF-8 tolerated) with a match and
 * depth limit, so a pathological pattern fails fast and counts as "no match".
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/logql_internal.h"

#define RE_MATCH_LIMIT 1000000
#define RE_DEPTH_LIMIT 10000

/* ---- regexes ---- */

static pcre2_match_context *g_mctx;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static __thread pcre2_match_data *t_md;

static void mctx_init(void)
{
    g_mctx = pcre2_match_context_create(NULL);
    if (g_mctx) {
        pcre2_set_match_limit(g_mctx, RE_MATCH_LIMIT);
        pcre2_set_depth_limit(g_mctx, RE_DEPTH_LIMIT);
    }
}

void *lq__re_compile(str_t re, bool anchored, char *msg)
{
    pthread_once(&g_once, mctx_init);
    int ec;
    PCRE2_SIZE eoff;
    uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY;
    if (anchored)
        opts |= PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_DOTALL;
    pcre2_code *c =
        pcre2_compile((PCRE2_SPTR)(re.ptr ? re.ptr : ""), re.len, opts, &ec, &eoff, NULL);
    if (!c) {
        PCRE2_UCHAR m[200];
        pcre2_get_error_message(ec, m, sizeof m);
        snprintf(msg, 256, "%s at offset %zu", (const char *)m, (size_t)eoff);
        return NULL;
    }
    pcre2_jit_compile(c, PCRE2_JIT_COMPLETE);
    return c;
}

static pcre2_match_data *md_get(void)
{
    if (!t_md)
        t_md = pcre2_match_data_create(64, NULL);
    return t_md;
}

bool lq__re_match(const void *code, str_t s)
{
    pcre2_match_data *md = md_get();
    int rc = pcre2_match(code, (PCRE2_SPTR)(s.ptr ? s.ptr : ""), s.len, 0, 0, md, g_mctx);
    return rc >= 0;
}

/* ---- label builder ---- */

static void push(lq_builder_t *b, str_t name, str_t value, uint8_t cat)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        lq_label_t *v = arena_alloc(b->a, cap * sizeof *v);
        if (b->n)
            memcpy(v, b->v, b->n * sizeof *v);
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = (lq_label_t){name, value, cat, false};
}

static lq_label_t *find(const lq_builder_t *b, str_t name)
{
    for (size_t i = 0; i < b->n; i++)
        if (!b->v[i].del && str_eq(b->v[i].name, name))
            return &b->v[i];
    return NULL;
}

static str_t with_suffix(arena_t *a, str_t name)
{
    char *p = arena_alloc(a, name.len + 10);
    memcpy(p, name.ptr, name.len);
    memcpy(p + name.len, "_extracted", 10);
    return (str_t){p, name.len + 10};
}

void lq_builder_reset(lq_builder_t *b, const labels_t *stream, const labels_t *meta, str_t line,
                      int64_t ts_ns)
{
    b->n = 0;
    b->cap = 0;
    b->v = NULL;
    b->line = line;
    b->ts_ns = ts_ns;
    b->err = b->err_details = STR_NULL;
    for (size_t i = 0; i < stream->n; i++)
        push(b, stream->v[i].name, stream->v[i].value, LQ_CAT_STREAM);
    for (size_t i = 0; meta && i < meta->n; i++) {
        str_t name = meta->v[i].name;
        lq_label_t *l = find(b, name);
        if (l && l->cat == LQ_CAT_STREAM)
            name = with_suffix(b->a, name);
        l = find(b, name);
        if (l) {
            l->value = meta->v[i].value;
            continue;
        }
        push(b, name, meta->v[i].value, LQ_CAT_META);
    }
}

str_t lq_builder_get(const lq_builder_t *b, str_t name, bool *ok)
{
    lq_label_t *l = find(b, name);
    *ok = l != NULL;
    return l ? l->value : STR("");
}

void lq_builder_del(lq_builder_t *b, str_t name)
{
    for (size_t i = 0; i < b->n; i++)
        if (!b->v[i].del && str_eq(b->v[i].name, name))
            b->v[i].del = true;
}

/* Sets name to value replacing whatever holds the name (label_format, unpack's line). */
static void set_replace(lq_builder_t *b, str_t name, str_t value)
{
    lq_label_t *l = find(b, name);
    if (l) {
        l->value = value;
        l->cat = LQ_CAT_PARSED;
        return;
    }
    push(b, name, value, LQ_CAT_PARSED);
}

void lq_builder_set(lq_builder_t *b, str_t name, str_t value, lq_lcat_t cat)
{
    if (cat != LQ_CAT_PARSED) {
        set_replace(b, name, value);
        return;
    }
    set_replace(b, name, value);
}

/* A parser's extracted key: clash -> _extracted; a key this run already set keeps its value.
 * seen marks the labels set by the current run (index range from `mark`). */
static void set_parsed(lq_builder_t *b, str_t name, str_t value, size_t mark)
{
    lq_label_t *l = find(b, name);
    if (l && l->cat != LQ_CAT_PARSED) {
        name = with_suffix(b->a, name);
        l = find(b, name);
    }
    if (l) {
        if ((size_t)(l - b->v) >= mark && l->cat == LQ_CAT_PARSED)
            return; /* duplicate key in this run: the first wins */
        l->del = true;
    }
    push(b, name, value, LQ_CAT_PARSED);
}

static bool has_err(const lq_builder_t *b) { return b->err.len > 0; }

static void set_err(lq_builder_t *b, const char *e, str_t details)
{
    if (has_err(b))
        return;
    b->err = str_cstr(e);
    b->err_details = arena_str(b->a, details);
}

static int cmp_label(const void *x, const void *y)
{
    return str_cmp(((const label_t *)x)->name, ((const label_t *)y)->name);
}

labels_t lq_builder_labels(lq_builder_t *b)
{
    labels_t ls = {arena_alloc(b->a, (b->n + 2) * sizeof(label_t)), 0};
    for (size_t i = 0; i < b->n; i++)
        if (!b->v[i].del)
            ls.v[ls.n++] = (label_t){b->v[i].name, b->v[i].value};
    if (has_err(b)) {
        ls.v[ls.n++] = (label_t){STR("__error__"), b->err};
        if (b->err_details.len)
            ls.v[ls.n++] = (label_t){STR("__error_details__"), b->err_details};
    }
    qsort(ls.v, ls.n, sizeof(label_t), cmp_label);
    /* an empty value is no label (Prometheus' rule), except a parsed "" which Loki keeps */
    return ls;
}

/* ---- conversions ---- */

int lq_parse_float(str_t s, double *v, char *msg)
{
    char nb[128];
    bool ok = s.len > 0 && s.len < sizeof nb;
    if (ok) {
        memcpy(nb, s.ptr, s.len);
        nb[s.len] = 0;
        char *e;
        errno = 0;
        /* Go ParseFloat: no leading space, no hex without p */
        if (isspace((unsigned char)nb[0]))
            ok = false;
        const char *h = nb[0] == '-' || nb[0] == '+' ? nb + 1 : nb;
        if ((h[0] == '0' && (h[1] == 'x' || h[1] == 'X') && !strpbrk(h, "pP")))
            ok = false;
        if (ok) {
            *v = strtod(nb, &e);
            ok = *e == 0;
            if (ok && errno == ERANGE && fabs(*v) > 1)
                ok = true; /* Go returns ±Inf with an error; treat as value */
        }
        if (ok && (strcasecmp(h, "infinity") == 0 || strcasecmp(h, "inf") == 0 ||
                   strcasecmp(h, "nan") == 0))
            ok = true;
    }
    if (!ok) {
        buf_t b = BUF_INIT;
        buf_puts(&b, "strconv.ParseFloat: parsing ");
        lq_quote(&b, s);
        buf_puts(&b, ": invalid syntax");
        snprintf(msg, 128, "%.*s", STR_FMT(buf_str(&b)));
        buf_deinit(&b);
        return -1;
    }
    return 0;
}

static void go_dur_err(char *msg, const char *what, str_t s, str_t unit)
{
    buf_t b = BUF_INIT;
    buf_printf(&b, "time: %s", what);
    if (unit.ptr) {
        buf_putc(&b, ' ');
        lq_quote(&b, unit);
        buf_puts(&b, " in duration ");
    } else {
        buf_putc(&b, ' ');
    }
    lq_quote(&b, s);
    snprintf(msg, 128, "%.*s", STR_FMT(buf_str(&b)));
    buf_deinit(&b);
}

int lq_parse_go_duration(str_t s, double *secs, char *msg)
{
    static const struct {
        const char *u;
        double s;
    } units[] = {{"ns", 1e-9}, {"us", 1e-6}, {"\xc2\xb5s", 1e-6}, {"\xce\xbcs", 1e-6},
                 {"ms", 1e-3}, {"s", 1},     {"m", 60},           {"h", 3600}};
    size_t i = 0;
    bool neg = false;
    if (i < s.len && (s.ptr[i] == '-' || s.ptr[i] == '+'))
        neg = s.ptr[i++] == '-';
    if (s.len - i == 1 && s.ptr[i] == '0') {
        *secs = 0;
        return 0;
    }
    if (i == s.len) {
        go_dur_err(msg, "invalid duration", s, STR_NULL);
        return -1;
    }
    double total = 0;
    while (i < s.len) {
        if (!(isdigit((unsigned char)s.ptr[i]) || s.ptr[i] == '.')) {
            go_dur_err(msg, "invalid duration", s, STR_NULL);
            return -1;
        }
        size_t st = i;
        bool digits = false;
        while (i < s.len && isdigit((unsigned char)s.ptr[i])) {
            i++;
            digits = true;
        }
        if (i < s.len && s.ptr[i] == '.') {
            i++;
            while (i < s.len && isdigit((unsigned char)s.ptr[i])) {
                i++;
                digits = true;
            }
        }
        if (!digits) {
            go_dur_err(msg, "invalid duration", s, STR_NULL);
            return -1;
        }
        char nb[64];
        size_t nl = i - st < 63 ? i - st : 63;
        memcpy(nb, s.ptr + st, nl);
        nb[nl] = 0;
        double v = strtod(nb, NULL);
        size_t us = i;
        while (i < s.len && !isdigit((unsigned char)s.ptr[i]) && s.ptr[i] != '.')
            i++;
        str_t u = {s.ptr + us, i - us};
        if (!u.len) {
            go_dur_err(msg, "missing unit in duration", s, STR_NULL);
            return -1;
        }
        double mul = 0;
        for (size_t k = 0; k < sizeof units / sizeof units[0]; k++)
            if (str_eq_cstr(u, units[k].u))
                mul = units[k].s;
        if (mul == 0) {
            go_dur_err(msg, "unknown unit", s, u);
            return -1;
        }
        total += v * mul;
    }
    *secs = neg ? -total : total;
    return 0;
}

int lq_parse_bytes(str_t s, double *bytes, char *msg)
{
    static const struct {
        const char *u;
        double m;
    } units[] = {
        {"", 1},
        {"b", 1},
        {"k", 1e3},
        {"kb", 1e3},
        {"ki", 1024.0},
        {"kib", 1024.0},
        {"m", 1e6},
        {"mb", 1e6},
        {"mi", 1048576.0},
        {"mib", 1048576.0},
        {"g", 1e9},
        {"gb", 1e9},
        {"gi", 1073741824.0},
        {"gib", 1073741824.0},
        {"t", 1e12},
        {"tb", 1e12},
        {"ti", 1099511627776.0},
        {"tib", 1099511627776.0},
        {"p", 1e15},
        {"pb", 1e15},
        {"pi", 1125899906842624.0},
        {"pib", 1125899906842624.0},
        {"e", 1e18},
        {"eb", 1e18},
        {"ei", 1152921504606846976.0},
        {"eib", 1152921504606846976.0},
    };
    /* go-humanize ParseBytes: digits, '.' and ',' form the number (commas dropped), then spaces,
     * then a case-insensitive unit. */
    size_t i = 0;
    char nb[128];
    size_t k = 0;
    while (i < s.len && (isdigit((unsigned char)s.ptr[i]) || s.ptr[i] == '.' || s.ptr[i] == ',')) {
        if (s.ptr[i] != ',' && k < sizeof nb - 1)
            nb[k++] = s.ptr[i];
        i++;
    }
    nb[k] = 0;
    str_t num = {nb, k};
    double v;
    char fm[128];
    if (lq_parse_float(num, &v, fm) != 0) {
        snprintf(msg, 128, "%s", fm);
        return -1;
    }
    while (i < s.len && s.ptr[i] == ' ')
        i++;
    char u[8];
    size_t ul = s.len - i;
    if (ul >= sizeof u) {
        snprintf(msg, 128, "unhandled size name: %.*s", (int)ul, s.ptr + i);
        return -1;
    }
    for (size_t j = 0; j < ul; j++)
        u[j] = (char)tolower((unsigned char)s.ptr[i + j]);
    u[ul] = 0;
    for (size_t j = 0; j < sizeof units / sizeof units[0]; j++)
        if (strcmp(u, units[j].u) == 0) {
            double r = v * units[j].m;
            *bytes = r >= 1.8446744073709552e19 ? r : (double)(uint64_t)r; /* uint64, as Go */
            return 0;
        }
    snprintf(msg, 128, "unhandled size name: %s", u);
    return -1;
}

/* ---- ip("...") ---- */

struct lq_ipf {
    int kind; /* 0 single, 1 range, 2 cidr */
    int fam;  /* 4 or 6 */
    uint8_t lo[16], hi[16];
    int bits;
};

static int parse_addr(str_t s, uint8_t out[16], int *fam)
{
    char b[64];
    if (s.len == 0 || s.len >= sizeof b)
        return -1;
    memcpy(b, s.ptr, s.len);
    b[s.len] = 0;
    memset(out, 0, 16);
    if (inet_pton(AF_INET, b, out) == 1) {
        *fam = 4;
        return 0;
    }
    if (inet_pton(AF_INET6, b, out) == 1) {
        *fam = 6;
        return 0;
    }
    return -1;
}

lq_ipf_t *lq__ip_parse(str_t s, arena_t *a, char *msg)
{
    lq_ipf_t *f = ARENA_NEW(a, lq_ipf_t);
    const char *dash = memchr(s.ptr ? s.ptr : "", '-', s.len);
    const char *slash = memchr(s.ptr ? s.ptr : "", '/', s.len);
    int fam2;
    if (dash) {
        f->kind = 1;
        if (parse_addr((str_t){s.ptr, (size_t)(dash - s.ptr)}, f->lo, &f->fam) != 0 ||
            parse_addr((str_t){dash + 1, s.len - (size_t)(dash - s.ptr) - 1}, f->hi, &fam2) != 0 ||
            fam2 != f->fam || memcmp(f->lo, f->hi, 16) > 0)
            goto bad;
        return f;
    }
    if (slash) {
        f->kind = 2;
        if (parse_addr((str_t){s.ptr, (size_t)(slash - s.ptr)}, f->lo, &f->fam) != 0)
            goto bad;
        char nb[8];
        size_t nl = s.len - (size_t)(slash - s.ptr) - 1;
        if (nl == 0 || nl >= sizeof nb)
            goto bad;
        memcpy(nb, slash + 1, nl);
        nb[nl] = 0;
        char *e;
        long bits = strtol(nb, &e, 10);
        if (*e || bits < 0 || bits > (f->fam == 4 ? 32 : 128))
            goto bad;
        f->bits = (int)bits;
        return f;
    }
    f->kind = 0;
    if (parse_addr(s, f->lo, &f->fam) != 0)
        goto bad;
    memcpy(f->hi, f->lo, 16);
    return f;
bad:
    snprintf(msg, 256, "%.*s", (int)(s.len > 100 ? 100 : s.len), s.ptr ? s.ptr : "");
    return NULL;
}

static bool ip_in(const lq_ipf_t *f, const uint8_t *ip, int fam)
{
    if (fam != f->fam)
        return false;
    size_t n = fam == 4 ? 4 : 16;
    if (f->kind == 2) {
        int bits = f->bits;
        for (size_t i = 0; i < n && bits > 0; i++, bits -= 8) {
            uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));
            if ((ip[i] & mask) != (f->lo[i] & mask))
                return false;
        }
        return true;
    }
    return memcmp(ip, f->lo, n) >= 0 && memcmp(ip, f->hi, n) <= 0;
}

static bool ipchar(char c) { return isxdigit((unsigned char)c) || c == '.' || c == ':'; }

/* True if an address inside s (a maximal run of hex digits, dots and colons) is in f. */
bool lq__ip_line_match(const lq_ipf_t *f, str_t s)
{
    size_t i = 0;
    while (i < s.len) {
        if (!ipchar(s.ptr[i])) {
            i++;
            continue;
        }
        size_t st = i;
        while (i < s.len && ipchar(s.ptr[i]))
            i++;
        str_t tok = {s.ptr + st, i - st};
        /* trim trailing dots/colons that end a sentence */
        while (tok.len && (tok.ptr[tok.len - 1] == '.'))
            tok.len--;
        uint8_t ip[16];
        int fam;
        if (tok.len >= 2 && parse_addr(tok, ip, &fam) == 0 && ip_in(f, ip, fam))
            return true;
        /* an IPv4 address followed by :port or inside other hex text: try the [0-9.] runs */
        for (size_t k = 0; k < tok.len;) {
            if (!isdigit((unsigned char)tok.ptr[k])) {
                k++;
                continue;
            }
            size_t s4 = k;
            while (k < tok.len && (isdigit((unsigned char)tok.ptr[k]) || tok.ptr[k] == '.'))
                k++;
            str_t v4 = {tok.ptr + s4, k - s4};
            while (v4.len && v4.ptr[v4.len - 1] == '.')
                v4.len--;
            if (v4.len < tok.len && parse_addr(v4, ip, &fam) == 0 && ip_in(f, ip, fam))
                return true;
        }
    }
    return false;
}

/* ---- patterns: literals and <name>/<_> captures ---- */

typedef struct pat_node {
    bool capture;
    str_t text; /* literal text or capture name ("_" unnamed) */
} pat_node_t;

struct lq_pat {
    pat_node_t *v;
    size_t n;
};

lq_pat_t *lq__pat_parse(str_t s, arena_t *a, char *msg)
{
    lq_pat_t *p = ARENA_NEW(a, lq_pat_t);
    p->v = ARENA_ARRAY(a, pat_node_t, s.len + 1);
    size_t i = 0, lit = 0;
    bool lit_open = false;
    while (i < s.len) {
        if (s.ptr[i] == '<') {
            size_t j = i + 1;
            while (j < s.len && (isalnum((unsigned char)s.ptr[j]) || s.ptr[j] == '_'))
                j++;
            if (j < s.len && s.ptr[j] == '>' && j > i + 1 &&
                !isdigit((unsigned char)s.ptr[i + 1])) {
                if (p->n && p->v[p->n - 1].capture) {
                    snprintf(msg, 256, "found consecutive capture '%.*s': invalid pattern",
                             (int)(j + 1 - i), s.ptr + i);
                    return NULL;
                }
                str_t name = {s.ptr + i + 1, j - i - 1};
                for (size_t k = 0; k < p->n; k++)
                    if (p->v[k].capture && str_eq(p->v[k].text, name) && !str_eq_cstr(name, "_")) {
                        snprintf(msg, 256, "duplicate capture name (%.*s): invalid pattern",
                                 STR_FMT(name));
                        return NULL;
                    }
                p->v[p->n++] = (pat_node_t){true, name};
                lit_open = false;
                i = j + 1;
                continue;
            }
        }
        if (!lit_open) {
            p->v[p->n++] = (pat_node_t){false, {s.ptr + i, 0}};
            lit_open = true;
            lit = p->n - 1;
        }
        p->v[lit].text.len++;
        i++;
    }
    return p;
}

size_t lq__pat_n_captures(const lq_pat_t *p, bool named_only)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++)
        if (p->v[i].capture && (!named_only || !str_eq_cstr(p->v[i].text, "_")))
            n++;
    return n;
}

static const char *mem_find(str_t hay, str_t needle)
{
    if (!needle.len)
        return hay.ptr ? hay.ptr : "";
    if (hay.len < needle.len)
        return NULL;
    return memmem(hay.ptr, hay.len, needle.ptr, needle.len);
}

/* Line filter test: the whole line must match. */
static bool pat_test(const lq_pat_t *p, str_t in)
{
    if (!in.len || !p->n)
        return !in.len && !p->n;
    size_t off = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (p->v[i].capture)
            continue;
        str_t rest = {in.ptr + off, in.len - off};
        const char *f = mem_find(rest, p->v[i].text);
        if (!f)
            return false;
        size_t j = (size_t)(f - rest.ptr);
        if (i == 0 && j != 0)
            return false;
        if (i != 0 && j == 0)
            return false;
        off += j + p->v[i].text.len;
    }
    if (!p->v[p->n - 1].capture)
        return off == in.len;
    return true;
}

/* Extraction (Loki's pattern matcher): a missed literal makes the capture run to the end. */
static void pat_extract(const lq_pat_t *p, lq_builder_t *b, size_t mark)
{
    str_t in = b->line;
    if (!in.len || !p->n)
        return;
    size_t i = 0;
    if (!p->v[0].capture) {
        if (!str_starts_with(in, "") || in.len < p->v[0].text.len ||
            memcmp(in.ptr, p->v[0].text.ptr, p->v[0].text.len) != 0)
            return;
        in.ptr += p->v[0].text.len;
        in.len -= p->v[0].text.len;
        i = 1;
    }
    while (i < p->n) {
        const pat_node_t *c = &p->v[i];
        bool named = !str_eq_cstr(c->text, "_");
        if (i + 1 == p->n) {
            if (named)
                set_parsed(b, c->text, in, mark);
            return;
        }
        str_t lit = p->v[i + 1].text;
        const char *f = mem_find(in, lit);
        if (!f) {
            if (named)
                set_parsed(b, c->text, in, mark);
            return;
        }
        size_t j = (size_t)(f - in.ptr);
        if (named)
            set_parsed(b, c->text, (str_t){in.ptr, j}, mark);
        in.ptr += j + lit.len;
        in.len -= j + lit.len;
        i += 2;
    }
}

/* ---- parsers ---- */

/* Loki's sanitizeLabelKey: [^a-zA-Z0-9_] -> '_', a leading digit gets a '_' prefix. prefix is
 * prepended (json flattening) with '_' between. */
static str_t sanitize(arena_t *a, str_t prefix, str_t key)
{
    size_t n = prefix.len + (prefix.len ? 1 : 0) + key.len;
    char *p = arena_alloc(a, n + 2);
    size_t k = 0;
    if (prefix.len) {
        memcpy(p, prefix.ptr, prefix.len);
        k = prefix.len;
        p[k++] = '_';
    }
    for (size_t i = 0; i < key.len; i++) {
        char c = key.ptr[i];
        p[k++] = (isalnum((unsigned char)c) || c == '_') ? c : '_';
    }
    if (!prefix.len && k && isdigit((unsigned char)p[0])) {
        memmove(p + 1, p, k);
        p[0] = '_';
        k++;
    }
    return (str_t){p, k};
}

/* logfmt (go-logfmt): key[=value], values bare or "quoted". Returns false when malformed. */
static bool logfmt_run(const lq_stage_t *st, lq_builder_t *b)
{
    str_t s = b->line;
    size_t i = 0, mark = b->n;
    while (i < s.len) {
        while (i < s.len && (unsigned char)s.ptr[i] <= ' ')
            i++;
        if (i >= s.len)
            break;
        size_t ks = i;
        while (i < s.len && (unsigned char)s.ptr[i] > ' ' && s.ptr[i] != '=' && s.ptr[i] != '"')
            i++;
        str_t key = {s.ptr + ks, i - ks};
        if (!key.len) {
            /* '=' or '"' where a key should be */
            if (st->strict) {
                set_err(b, "LogfmtParserErr",
                        str_cstr(arena_sprintf(b->a,
                                               "logfmt syntax error at pos %zu : unexpected "
                                               "'%c'",
                                               i + 1, s.ptr[i])));
                return false;
            }
            i++;
            while (i < s.len && (unsigned char)s.ptr[i] > ' ')
                i++;
            continue;
        }
        str_t val = STR("");
        bool has_eq = i < s.len && s.ptr[i] == '=';
        if (has_eq) {
            i++;
            if (i < s.len && s.ptr[i] == '"') {
                size_t vs = ++i;
                bool esc = false, closed = false;
                for (; i < s.len; i++) {
                    if (s.ptr[i] == '\\') {
                        esc = true;
                        i++;
                        continue;
                    }
                    if (s.ptr[i] == '"') {
                        closed = true;
                        break;
                    }
                }
                if (!closed) {
                    if (st->strict) {
                        set_err(b, "LogfmtParserErr",
                                str_cstr(arena_sprintf(b->a,
                                                       "logfmt syntax error at pos %zu : "
                                                       "unterminated quoted value",
                                                       s.len + 1)));
                        return false;
                    }
                    break;
                }
                str_t raw = {s.ptr + vs, i - vs};
                i++;
                if (esc) {
                    char *o = arena_alloc(b->a, raw.len + 1);
                    size_t k = 0;
                    for (size_t j = 0; j < raw.len; j++) {
                        if (raw.ptr[j] == '\\' && j + 1 < raw.len) {
                            j++;
                            char c = raw.ptr[j];
                            o[k++] = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
                        } else {
                            o[k++] = raw.ptr[j];
                        }
                    }
                    val = (str_t){o, k};
                } else {
                    val = raw;
                }
            } else {
                size_t vs = i;
                while (i < s.len && (unsigned char)s.ptr[i] > ' ') {
                    if ((s.ptr[i] == '"' || s.ptr[i] == '=') && st->strict) {
                        set_err(b, "LogfmtParserErr",
                                str_cstr(arena_sprintf(b->a,
                                                       "logfmt syntax error at pos %zu : "
                                                       "unexpected '%c'",
                                                       i + 1, s.ptr[i])));
                        return false;
                    }
                    i++;
                }
                val = (str_t){s.ptr + vs, i - vs};
            }
        }
        if (!val.len && !st->keep_empty)
            continue;
        if (st->n_params) {
            for (size_t k = 0; k < st->n_params; k++)
                if (str_eq(st->params[k].value, key))
                    set_parsed(b, st->params[k].name, val, mark);
            continue;
        }
        set_parsed(b, sanitize(b->a, STR_NULL, key), val, mark);
    }
    return true;
}

/* ---- a small JSON scanner (no allocation except unescaped strings) ---- */

typedef struct js {
    const char *p, *end;
    arena_t *a;
    int depth;
} js_t;

static void js_ws(js_t *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

/* Scans a string at j->p (at the quote); *out is the unescaped value. */
static bool js_string(js_t *j, str_t *out)
{
    if (j->p >= j->end || *j->p != '"')
        return false;
    const char *s = ++j->p;
    bool esc = false;
    while (j->p < j->end && *j->p != '"') {
        if ((unsigned char)*j->p < 0x20)
            return false;
        if (*j->p == '\\') {
            esc = true;
            j->p++;
        }
        j->p++;
    }
    if (j->p >= j->end)
        return false;
    str_t raw = {s, (size_t)(j->p - s)};
    j->p++;
    if (!out)
        return true;
    if (!esc) {
        *out = raw;
        return true;
    }
    char *o = arena_alloc(j->a, raw.len + 4);
    size_t k = 0;
    for (size_t i = 0; i < raw.len; i++) {
        char c = raw.ptr[i];
        if (c != '\\') {
            o[k++] = c;
            continue;
        }
        c = raw.ptr[++i];
        switch (c) {
        case 'n':
            o[k++] = '\n';
            break;
        case 't':
            o[k++] = '\t';
            break;
        case 'r':
            o[k++] = '\r';
            break;
        case 'b':
            o[k++] = '\b';
            break;
        case 'f':
            o[k++] = '\f';
            break;
        case 'u': {
            if (i + 4 >= raw.len)
                return false;
            unsigned cp = 0;
            for (int d = 1; d <= 4; d++) {
                char h = raw.ptr[i + (size_t)d];
                if (!isxdigit((unsigned char)h))
                    return false;
                cp = cp * 16 +
                     (unsigned)(isdigit((unsigned char)h) ? h - '0' : tolower(h) - 'a' + 10);
            }
            i += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && i + 6 < raw.len + 0 && raw.ptr[i + 1] == '\\' &&
                raw.ptr[i + 2] == 'u') {
                unsigned lo = 0;
                for (int d = 3; d <= 6; d++) {
                    char h = raw.ptr[i + (size_t)d];
                    lo = lo * 16 +
                         (unsigned)(isdigit((unsigned char)h) ? h - '0' : tolower(h) - 'a' + 10);
                }
                if (lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
            }
            if (cp < 0x80) {
                o[k++] = (char)cp;
            } else if (cp < 0x800) {
                o[k++] = (char)(0xC0 | (cp >> 6));
                o[k++] = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                o[k++] = (char)(0xE0 | (cp >> 12));
                o[k++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                o[k++] = (char)(0x80 | (cp & 0x3F));
            } else {
                o[k++] = (char)(0xF0 | (cp >> 18));
                o[k++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                o[k++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                o[k++] = (char)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default:
            o[k++] = c;
            break;
        }
    }
    *out = (str_t){o, k};
    return true;
}

typedef enum { JV_STR, JV_NUM, JV_TRUE, JV_FALSE, JV_NULL, JV_OBJ, JV_ARR } jv_t;

/* Skips (validating) one value; *raw is its text, *kind its type. */
static bool js_value(js_t *j, jv_t *kind, str_t *raw, str_t *sval)
{
    js_ws(j);
    if (j->p >= j->end)
        return false;
    const char *s = j->p;
    char c = *j->p;
    if (c == '"') {
        *kind = JV_STR;
        if (!js_string(j, sval))
            return false;
    } else if (c == '{' || c == '[') {
        if (++j->depth > 200)
            return false;
        char close = c == '{' ? '}' : ']';
        *kind = c == '{' ? JV_OBJ : JV_ARR;
        j->p++;
        js_ws(j);
        if (j->p < j->end && *j->p == close) {
            j->p++;
        } else {
            for (;;) {
                jv_t k2;
                str_t r2;
                if (c == '{') {
                    js_ws(j);
                    if (!js_string(j, NULL))
                        return false;
                    js_ws(j);
                    if (j->p >= j->end || *j->p != ':')
                        return false;
                    j->p++;
                }
                if (!js_value(j, &k2, &r2, NULL))
                    return false;
                js_ws(j);
                if (j->p < j->end && *j->p == ',') {
                    j->p++;
                    continue;
                }
                if (j->p < j->end && *j->p == close) {
                    j->p++;
                    break;
                }
                return false;
            }
        }
        j->depth--;
    } else if (c == 't' && j->end - j->p >= 4 && memcmp(j->p, "true", 4) == 0) {
        *kind = JV_TRUE;
        j->p += 4;
    } else if (c == 'f' && j->end - j->p >= 5 && memcmp(j->p, "false", 5) == 0) {
        *kind = JV_FALSE;
        j->p += 5;
    } else if (c == 'n' && j->end - j->p >= 4 && memcmp(j->p, "null", 4) == 0) {
        *kind = JV_NULL;
        j->p += 4;
    } else if (c == '-' || isdigit((unsigned char)c)) {
        *kind = JV_NUM;
        j->p++;
        while (j->p < j->end && (isdigit((unsigned char)*j->p) || *j->p == '.' || *j->p == 'e' ||
                                 *j->p == 'E' || *j->p == '+' || *j->p == '-'))
            j->p++;
    } else {
        return false;
    }
    *raw = (str_t){s, (size_t)(j->p - s)};
    return true;
}

/* Flattens object members into labels (prefix_key); arrays and nulls are skipped. */
static bool json_flatten(js_t *j, lq_builder_t *b, str_t prefix, size_t mark)
{
    js_ws(j);
    if (j->p >= j->end || *j->p != '{')
        return false;
    if (++j->depth > 200)
        return false;
    j->p++;
    js_ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        j->depth--;
        return true;
    }
    for (;;) {
        js_ws(j);
        str_t key;
        if (!js_string(j, &key))
            return false;
        js_ws(j);
        if (j->p >= j->end || *j->p != ':')
            return false;
        j->p++;
        js_ws(j);
        if (j->p < j->end && *j->p == '{') {
            if (!json_flatten(j, b, sanitize(b->a, prefix, key), mark))
                return false;
        } else {
            jv_t k;
            str_t raw, sv = STR_NULL;
            if (!js_value(j, &k, &raw, &sv))
                return false;
            str_t name = sanitize(b->a, prefix, key);
            if (k == JV_STR)
                set_parsed(b, name, sv, mark);
            else if (k == JV_NUM || k == JV_TRUE || k == JV_FALSE)
                set_parsed(b, name, raw, mark);
        }
        js_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == '}') {
            j->p++;
            break;
        }
        return false;
    }
    j->depth--;
    return true;
}

/* Value at path in the JSON text doc; false when absent. */
static bool json_lookup(str_t doc, const str_t *path, size_t n, arena_t *a, str_t *out)
{
    js_t j = {doc.ptr, doc.ptr + doc.len, a, 0};
    for (size_t d = 0; d < n; d++) {
        js_ws(&j);
        if (j.p >= j.end)
            return false;
        str_t comp = path[d];
        bool idx = comp.len && comp.ptr[0] == '[';
        if (idx) {
            if (*j.p != '[')
                return false;
            long want = strtol(arena_strndup(a, comp.ptr + 1, comp.len - 1), NULL, 10);
            j.p++;
            js_ws(&j);
            bool found = false;
            for (long i = 0; j.p < j.end && *j.p != ']'; i++) {
                if (i == want) {
                    found = true;
                    break;
                }
                jv_t k;
                str_t raw;
                if (!js_value(&j, &k, &raw, NULL))
                    return false;
                js_ws(&j);
                if (j.p < j.end && *j.p == ',')
                    j.p++;
                js_ws(&j);
            }
            if (!found)
                return false;
            continue;
        }
        if (*j.p != '{')
            return false;
        j.p++;
        bool found = false;
        for (;;) {
            js_ws(&j);
            if (j.p < j.end && *j.p == '}')
                return false;
            str_t key;
            if (!js_string(&j, &key))
                return false;
            js_ws(&j);
            if (j.p >= j.end || *j.p != ':')
                return false;
            j.p++;
            if (str_eq(key, comp)) {
                found = true;
                break;
            }
            jv_t k;
            str_t raw;
            if (!js_value(&j, &k, &raw, NULL))
                return false;
            js_ws(&j);
            if (j.p < j.end && *j.p == ',')
                j.p++;
        }
        if (!found)
            return false;
    }
    jv_t k;
    str_t raw, sv = STR_NULL;
    if (!js_value(&j, &k, &raw, &sv))
        return false;
    if (k == JV_NULL)
        *out = STR("");
    else
        *out = k == JV_STR ? sv : raw;
    return true;
}

static bool json_valid(str_t s, arena_t *a)
{
    js_t j = {s.ptr, s.ptr + s.len, a, 0};
    jv_t k;
    str_t raw;
    js_ws(&j);
    if (j.p >= j.end || *j.p != '{')
        return false;
    if (!js_value(&j, &k, &raw, NULL))
        return false;
    js_ws(&j);
    return j.p == j.end;
}

static void json_run(const lq_stage_t *st, lq_builder_t *b)
{
    size_t mark = b->n;
    if (st->n_params) {
        if (!json_valid(b->line, b->a)) {
            set_err(b, "JSONParserErr", STR("invalid json"));
            return;
        }
        for (size_t i = 0; i < st->n_params; i++) {
            str_t v;
            if (!json_lookup(b->line, st->params[i].path, st->params[i].n_path, b->a, &v))
                v = STR("");
            set_parsed(b, st->params[i].name, v, mark);
        }
        return;
    }
    js_t j = {b->line.ptr, b->line.ptr + b->line.len, b->a, 0};
    bool ok = json_flatten(&j, b, STR_NULL, mark);
    if (ok) {
        js_ws(&j);
        ok = j.p == j.end;
    }
    if (!ok) {
        const char *why = "Value looks like object, but can't find closing '}' symbol";
        js_t t = {b->line.ptr, b->line.ptr + b->line.len, b->a, 0};
        js_ws(&t);
        if (t.p >= t.end || *t.p != '{')
            why = "Value is not an object";
        set_err(b, "JSONParserErr", str_cstr(why));
    }
}

static void unpack_run(lq_builder_t *b)
{
    size_t mark = b->n;
    js_t j = {b->line.ptr, b->line.ptr + b->line.len, b->a, 0};
    js_ws(&j);
    if (j.p >= j.end || *j.p != '{' || !json_valid(b->line, b->a)) {
        set_err(b, "JSONParserErr", STR("Value is not an object"));
        return;
    }
    j.p++;
    str_t entry = STR_NULL;
    bool has_entry = false;
    for (;;) {
        js_ws(&j);
        if (j.p < j.end && *j.p == '}')
            break;
        str_t key;
        if (!js_string(&j, &key))
            break;
        js_ws(&j);
        j.p++; /* ':' (validated) */
        jv_t k;
        str_t raw, sv = STR_NULL;
        if (!js_value(&j, &k, &raw, &sv))
            break;
        if (k == JV_STR) {
            if (str_eq_cstr(key, "_entry")) {
                entry = sv;
                has_entry = true;
            } else {
                set_parsed(b, sanitize(b->a, STR_NULL, key), sv, mark);
            }
        }
        js_ws(&j);
        if (j.p < j.end && *j.p == ',')
            j.p++;
    }
    if (has_entry)
        b->line = entry;
}

static void regexp_run(const lq_stage_t *st, lq_builder_t *b)
{
    pcre2_match_data *md = md_get();
    int rc = pcre2_match(st->re, (PCRE2_SPTR)(b->line.ptr ? b->line.ptr : ""), b->line.len, 0, 0,
                         md, g_mctx);
    if (rc < 0)
        return;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    size_t mark = b->n;
    for (size_t g = 1; g < st->n_re_names && (int)g < rc; g++) {
        if (!st->re_names[g].len || ov[2 * g] == PCRE2_UNSET)
            continue;
        str_t v = {b->line.ptr + ov[2 * g], ov[2 * g + 1] - ov[2 * g]};
        set_parsed(b, st->re_names[g], v, mark);
    }
}

/* ---- label filters ---- */

static bool cmpf(lq_cmp_t c, double a, double v)
{
    switch (c) {
    case LQ_CMP_EQ:
        return a == v;
    case LQ_CMP_NE:
        return a != v;
    case LQ_CMP_GT:
        return a > v;
    case LQ_CMP_GE:
        return a >= v;
    case LQ_CMP_LT:
        return a < v;
    case LQ_CMP_LE:
        return a <= v;
    }
    return false;
}

bool lq_label_filter(const lq_lbf_t *f, lq_builder_t *b)
{
    switch (f->kind) {
    case LQ_LBF_AND: {
        bool l = lq_label_filter(f->l, b);
        bool r = lq_label_filter(f->r, b);
        return l && r;
    }
    case LQ_LBF_OR:
        if (lq_label_filter(f->l, b))
            return true;
        return lq_label_filter(f->r, b);
    case LQ_LBF_STR: {
        str_t v;
        bool ok;
        if (str_eq_cstr(f->m.name, "__error__"))
            v = b->err;
        else if (str_eq_cstr(f->m.name, "__error_details__"))
            v = b->err_details;
        else
            v = lq_builder_get(b, f->m.name, &ok);
        return matcher_matches(&f->m, v);
    }
    case LQ_LBF_IP: {
        if (has_err(b))
            return true;
        bool ok;
        str_t v = lq_builder_get(b, f->m.name, &ok);
        if (!ok)
            return false;
        bool m = lq__ip_line_match(f->ip, v);
        return f->cmp == LQ_CMP_EQ ? m : !m;
    }
    case LQ_LBF_NUM:
    case LQ_LBF_DURATION:
    case LQ_LBF_BYTES: {
        bool ok;
        str_t v = lq_builder_get(b, f->m.name, &ok);
        if (!ok)
            return false;
        double x;
        char msg[128];
        int rc = f->kind == LQ_LBF_NUM        ? lq_parse_float(v, &x, msg)
                 : f->kind == LQ_LBF_DURATION ? lq_parse_go_duration(v, &x, msg)
                                              : lq_parse_bytes(v, &x, msg);
        if (rc != 0) {
            set_err(b, "LabelFilterErr", str_cstr(msg));
            return true;
        }
        return cmpf(f->cmp, x, f->num);
    }
    }
    return false;
}

/* ---- the pipeline ---- */

bool lq__line_filter(const lq_stage_t *st, str_t line)
{
    bool any = false;
    for (size_t i = 0; i < st->n_args && !any; i++) {
        const lq_lf_arg_t *a = &st->args[i];
        if (a->ip)
            any = lq__ip_line_match(a->ip, line);
        else if (a->re)
            any = lq__re_match(a->re, line);
        else if (a->pat)
            any = pat_test(a->pat, line);
        else
            any = mem_find(line, a->s) != NULL;
    }
    switch (st->lf_op) {
    case LQ_LF_CONTAINS:
    case LQ_LF_RE:
    case LQ_LF_PAT:
        return any;
    default:
        return !any;
    }
}

/* Removes ANSI escape sequences (CSI ... final byte, and ESC x). */
static str_t decolorize(arena_t *a, str_t s)
{
    if (!memchr(s.ptr ? s.ptr : "", 0x1b, s.len))
        return s;
    char *o = arena_alloc(a, s.len);
    size_t k = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] != 0x1b) {
            o[k++] = s.ptr[i];
            continue;
        }
        if (i + 1 < s.len && s.ptr[i + 1] == '[') {
            i += 2;
            while (i < s.len && !((s.ptr[i] >= '@' && s.ptr[i] <= '~')))
                i++;
        } else {
            i++;
        }
    }
    return (str_t){o, k};
}

bool lq_pipeline_run(const lq_stage_t *stages, size_t n, lq_builder_t *b)
{
    for (size_t i = 0; i < n; i++) {
        const lq_stage_t *st = &stages[i];
        switch (st->kind) {
        case LQS_LINE_FILTER:
            if (!lq__line_filter(st, b->line))
                return false;
            break;
        case LQS_JSON:
            json_run(st, b);
            break;
        case LQS_LOGFMT:
            logfmt_run(st, b);
            break;
        case LQS_REGEXP:
            regexp_run(st, b);
            break;
        case LQS_PATTERN:
            pat_extract(st->pat, b, b->n);
            break;
        case LQS_UNPACK:
            unpack_run(b);
            break;
        case LQS_LABEL_FILTER:
            if (!lq_label_filter(st->lbf, b))
                return false;
            break;
        case LQS_LINE_FORMAT: {
            buf_t out = BUF_INIT;
            if (!lq_tmpl_exec(st->tmpl, b, &out)) {
                set_err(b, "TemplateFormatErr", buf_str(&out));
            } else {
                b->line = arena_str(b->a, buf_str(&out));
            }
            buf_deinit(&out);
            break;
        }
        case LQS_LABEL_FORMAT: {
            /* all values are computed from the labels as they were before the stage */
            str_t *vals = arena_alloc(b->a, st->n_params * sizeof *vals);
            bool *have = arena_alloc(b->a, st->n_params * sizeof *have);
            for (size_t k = 0; k < st->n_params; k++) {
                const lq_param_t *pr = &st->params[k];
                have[k] = true;
                if (pr->is_tmpl) {
                    buf_t out = BUF_INIT;
                    if (!lq_tmpl_exec(pr->tmpl, b, &out)) {
                        set_err(b, "TemplateFormatErr", buf_str(&out));
                        have[k] = false;
                    }
                    vals[k] = arena_str(b->a, buf_str(&out));
                    buf_deinit(&out);
                } else {
                    bool ok;
                    vals[k] = lq_builder_get(b, pr->value, &ok);
                    have[k] = ok;
                }
            }
            for (size_t k = 0; k < st->n_params; k++) {
                const lq_param_t *pr = &st->params[k];
                if (!pr->is_tmpl) {
                    lq_builder_del(b, pr->value);
                    if (!have[k])
                        continue;
                }
                if (have[k])
                    set_replace(b, pr->name, vals[k]);
            }
            break;
        }
        case LQS_DECOLORIZE:
            b->line = decolorize(b->a, b->line);
            break;
        case LQS_DROP:
            for (size_t k = 0; k < st->n_params; k++) {
                const lq_param_t *pr = &st->params[k];
                bool is_err = str_eq_cstr(pr->name, "__error__");
                bool is_det = str_eq_cstr(pr->name, "__error_details__");
                if (is_err || is_det) {
                    str_t v = is_err ? b->err : b->err_details;
                    if (!pr->has_m || matcher_matches(&pr->m, v)) {
                        if (is_err)
                            b->err = STR_NULL;
                        b->err_details = STR_NULL;
                    }
                    continue;
                }
                if (!pr->has_m) {
                    lq_builder_del(b, pr->name);
                    continue;
                }
                bool ok;
                str_t v = lq_builder_get(b, pr->name, &ok);
                if (ok && matcher_matches(&pr->m, v))
                    lq_builder_del(b, pr->name);
            }
            break;
        case LQS_KEEP:
            for (size_t j = 0; j < b->n; j++) {
                lq_label_t *l = &b->v[j];
                if (l->del)
                    continue;
                bool keep = false;
                for (size_t k = 0; k < st->n_params && !keep; k++) {
                    const lq_param_t *pr = &st->params[k];
                    if (str_eq(pr->name, l->name))
                        keep = !pr->has_m || matcher_matches(&pr->m, l->value);
                }
                if (!keep)
                    l->del = true;
            }
            break;
        }
    }
    return true;
}
