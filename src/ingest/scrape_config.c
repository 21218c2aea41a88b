/*
 * scrape_config.c - `scrape_configs` from the YAML document into scrape_config_t, and the
 * relabelling engine (scrape.h).
 *
 * The YAML is walked node by node (libyaml's document model, already loaded by the config
 * loader); every error carries the file, the line of the offending node and a path such as
 * scrape_configs[1].relabel_configs[0].action, then says what is wrong. Keys Prometheus has and
 * Skillscope does not support (TLS, auth, service discovery) are refused by name rather than
 * silently ignored, so a copied Prometheus config never half-works.
 *
 * Relabelling follows Prometheus' model/relabel: the source label values joined by the separator
 * are matched against the fully anchored regex; replace writes the expanded replacement to the
 * expanded target label (an empty result deletes it), keep/drop filter, keepequal/dropequal
 * compare with the target label, hashmod stores the MD5-based hash modulo modulus (the last 8
 * bytes of the digest, big-endian, as Prometheus), labelmap copies matching names to the expanded
 * replacement, labeldrop/labelkeep filter names, lowercase/uppercase set the target label. The
 * regexes are PCRE2 (store/labels' matcher with its RE2-compatible limits); $1, ${1}, $name and
 * ${name} expand as in Go's regexp.Expand.
 */
#include <ctype.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "ingest/scrape.h"

#define DEFAULT_INTERVAL_MS 60000
#define DEFAULT_TIMEOUT_MS 10000

/* ---- MD5 (RFC 1321), for hashmod ---- */

typedef struct md5 {
    uint32_t h[4];
    uint64_t len;
    uint8_t blk[64];
    size_t n;
} md5_t;

static uint32_t rol(uint32_t x, int c) { return (x << c) | (x >> (32 - c)); }

static void md5_block(md5_t *m, const uint8_t *p)
{
    static const uint32_t K[64] = {
        0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
        0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
        0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
        0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
        0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
        0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
        0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
        0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
        0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
        0xeb86d391};
    static const int R[64] = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                              5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
                              4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                              6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};
    uint32_t w[16];
    for (int i = 0; i < 16; i++)
        w[i] = load_u32le(p + 4 * i);
    uint32_t a = m->h[0], b = m->h[1], c = m->h[2], d = m->h[3];
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int g;
        if (i < 16) {
            f = (b & c) | (~b & d);
            g = i;
        } else if (i < 32) {
            f = (d & b) | (~d & c);
            g = (5 * i + 1) % 16;
        } else if (i < 48) {
            f = b ^ c ^ d;
            g = (3 * i + 5) % 16;
        } else {
            f = c ^ (b | ~d);
            g = (7 * i) % 16;
        }
        uint32_t t = d;
        d = c;
        c = b;
        b = b + rol(a + f + K[i] + w[g], R[i]);
        a = t;
    }
    m->h[0] += a;
    m->h[1] += b;
    m->h[2] += c;
    m->h[3] += d;
}

static void md5_update(md5_t *m, const uint8_t *p, size_t n)
{
    m->len += n;
    while (n) {
        size_t k = 64 - m->n < n ? 64 - m->n : n;
        memcpy(m->blk + m->n, p, k);
        m->n += k;
        p += k;
        n -= k;
        if (m->n == 64) {
            md5_block(m, m->blk);
            m->n = 0;
        }
    }
}

static void md5_sum(const void *p, size_t n, uint8_t out[16])
{
    md5_t m = {.h = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476}};
    md5_update(&m, p, n);
    uint64_t bits = m.len * 8;
    uint8_t pad = 0x80, zero = 0;
    md5_update(&m, &pad, 1);
    while (m.n != 56)
        md5_update(&m, &zero, 1);
    uint8_t lenb[8];
    store_u64le(lenb, bits);
    md5_update(&m, lenb, 8);
    for (int i = 0; i < 4; i++)
        store_u32le(out + 4 * i, m.h[i]);
}

/* ---- relabelling ---- */

typedef struct lbuild {
    label_t *v;
    size_t n, cap;
    arena_t *a;
} lbuild_t;

static str_t lb_get(const lbuild_t *b, str_t name)
{
    for (size_t i = 0; i < b->n; i++)
        if (str_eq(b->v[i].name, name))
            return b->v[i].value;
    return STR_NULL;
}

static void lb_del(lbuild_t *b, str_t name)
{
    for (size_t i = 0; i < b->n; i++)
        if (str_eq(b->v[i].name, name)) {
            b->v[i] = b->v[--b->n];
            return;
        }
}

/* Sets name=value (copied into the arena); an empty value deletes, as in Prometheus. */
static void lb_set(lbuild_t *b, str_t name, str_t value)
{
    if (!value.len) {
        lb_del(b, name);
        return;
    }
    value = arena_str(b->a, value);
    for (size_t i = 0; i < b->n; i++)
        if (str_eq(b->v[i].name, name)) {
            b->v[i].value = value;
            return;
        }
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        label_t *nv = arena_alloc(b->a, cap * sizeof *nv);
        if (b->n)
            memcpy(nv, b->v, b->n * sizeof *nv);
        b->v = nv;
        b->cap = cap;
    }
    b->v[b->n++] = (label_t){arena_str(b->a, name), value};
}

/* Runs the rule's regex on s; true on a match (captures left in the matcher's match data). */
static bool re_match(const matcher_t *m, str_t s)
{
    if (!m->re)
        return false;
    return pcre2_match(m->re, (PCRE2_SPTR)(s.ptr ? s.ptr : ""), s.len, 0, 0, m->re_match, NULL) >=
           0;
}

void relabel_expand(const matcher_t *re, str_t src, str_t tmpl, buf_t *out)
{
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(re->re_match);
    uint32_t n_ov = pcre2_get_ovector_count(re->re_match);
    for (size_t i = 0; i < tmpl.len; i++) {
        char c = tmpl.ptr[i];
        if (c != '$' || i + 1 >= tmpl.len) {
            buf_putc(out, c);
            continue;
        }
        if (tmpl.ptr[i + 1] == '$') {
            buf_putc(out, '$');
            i++;
            continue;
        }
        size_t j = i + 1, nb, ne;
        bool brace = tmpl.ptr[j] == '{';
        if (brace)
            j++;
        nb = j;
        while (j < tmpl.len && (isalnum((unsigned char)tmpl.ptr[j]) || tmpl.ptr[j] == '_'))
            j++;
        ne = j;
        if (ne == nb || (brace && (j >= tmpl.len || tmpl.ptr[j] != '}'))) {
            buf_putc(out, '$'); /* malformed: the '$' is literal, as in Go */
            continue;
        }
        i = brace ? j : j - 1;
        str_t name = str_from(tmpl.ptr + nb, ne - nb);
        long num = -1;
        bool digits = true;
        for (size_t k = 0; k < name.len; k++)
            digits &= name.ptr[k] >= '0' && name.ptr[k] <= '9';
        if (digits) {
            num = 0;
            for (size_t k = 0; k < name.len && num < 100000; k++)
                num = num * 10 + (name.ptr[k] - '0');
        } else {
            char nm[128];
            if (name.len < sizeof nm) {
                memcpy(nm, name.ptr, name.len);
                nm[name.len] = 0;
                int r = pcre2_substring_number_from_name(re->re, (PCRE2_SPTR)nm);
                if (r > 0)
                    num = r;
            }
        }
        if (num < 0 || (uint32_t)num >= n_ov)
            continue;
        PCRE2_SIZE b = ov[2 * num], e = ov[2 * num + 1];
        if (b == PCRE2_UNSET || e < b || e > src.len)
            continue;
        buf_append(out, src.ptr + b, e - b);
    }
}

static str_t expand_to_arena(const matcher_t *re, str_t src, str_t tmpl, arena_t *a)
{
    buf_t b = BUF_INIT;
    relabel_expand(re, src, tmpl, &b);
    str_t r = arena_str(a, buf_str(&b));
    buf_deinit(&b);
    return r;
}

static bool valid_label_name(str_t s) { return s.len && label_name_valid(s); }

static bool apply_one(const relabel_rule_t *r, lbuild_t *lb)
{
    buf_t joined = BUF_INIT;
    for (size_t i = 0; i < r->n_source; i++) {
        if (i)
            buf_put_str(&joined, r->separator);
        buf_put_str(&joined, lb_get(lb, r->source_labels[i]));
    }
    str_t val = arena_str(lb->a, buf_str(&joined));
    buf_deinit(&joined);
    switch (r->action) {
    case RELABEL_DROP:
        if (re_match(&r->re, val))
            return false;
        break;
    case RELABEL_KEEP:
        if (!re_match(&r->re, val))
            return false;
        break;
    case RELABEL_DROPEQUAL:
        if (str_eq(lb_get(lb, r->target_label), val))
            return false;
        break;
    case RELABEL_KEEPEQUAL:
        if (!str_eq(lb_get(lb, r->target_label), val))
            return false;
        break;
    case RELABEL_REPLACE: {
        if (!re_match(&r->re, val))
            break;
        str_t target = expand_to_arena(&r->re, val, r->target_label, lb->a);
        if (!valid_label_name(target))
            break;
        str_t res = expand_to_arena(&r->re, val, r->replacement, lb->a);
        lb_set(lb, target, res);
        break;
    }
    case RELABEL_LOWERCASE:
    case RELABEL_UPPERCASE: {
        char *s = arena_strndup(lb->a, val.ptr ? val.ptr : "", val.len);
        for (size_t i = 0; i < val.len; i++)
            s[i] = (char)(r->action == RELABEL_LOWERCASE ? tolower((unsigned char)s[i])
                                                         : toupper((unsigned char)s[i]));
        lb_set(lb, r->target_label, str_from(s, val.len));
        break;
    }
    case RELABEL_HASHMOD: {
        uint8_t d[16];
        md5_sum(val.ptr ? val.ptr : "", val.len, d);
        uint64_t h = 0;
        for (int i = 8; i < 16; i++)
            h = h << 8 | d[i];
        char num[32];
        int n = snprintf(num, sizeof num, "%llu", (unsigned long long)(h % r->modulus));
        lb_set(lb, r->target_label, str_from(num, (size_t)n));
        break;
    }
    case RELABEL_LABELMAP: {
        size_t n0 = lb->n;
        label_t *snap = arena_alloc(lb->a, (n0 ? n0 : 1) * sizeof *snap);
        if (n0)
            memcpy(snap, lb->v, n0 * sizeof *snap);
        for (size_t i = 0; i < n0; i++)
            if (re_match(&r->re, snap[i].name)) {
                str_t nm = expand_to_arena(&r->re, snap[i].name, r->replacement, lb->a);
                if (valid_label_name(nm))
                    lb_set(lb, nm, snap[i].value);
            }
        break;
    }
    case RELABEL_LABELDROP:
    case RELABEL_LABELKEEP:
        for (size_t i = 0; i < lb->n;) {
            bool m = re_match(&r->re, lb->v[i].name);
            if (m == (r->action == RELABEL_LABELDROP))
                lb->v[i] = lb->v[--lb->n]; /* re-check the label moved into slot i */
            else
                i++;
        }
        break;
    }
    return true;
}

bool relabel_apply(const relabel_rule_t *rules, size_t n, const labels_t *in, arena_t *a,
                   labels_t *out)
{
    lbuild_t lb = {.a = a};
    lb.cap = in->n + 8;
    lb.v = arena_alloc(a, lb.cap * sizeof *lb.v);
    for (size_t i = 0; i < in->n; i++)
        if (in->v[i].value.len)
            lb.v[lb.n++] = in->v[i];
    for (size_t i = 0; i < n; i++)
        if (!apply_one(&rules[i], &lb))
            return false;
    out->v = lb.v;
    out->n = lb.n;
    labels_sort(out); /* names are unique by construction */
    return true;
}

/* ---- YAML ---- */

typedef struct yctx {
    yaml_document_t *doc;
    const char *file;
    err_t *err;
    arena_t *a;
} yctx_t;

/* snprintf for config paths (truncation is harmless there). */
static void pathf(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void pathf(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, cap, fmt, ap);
    va_end(ap);
}

static yaml_node_t *ynode(yctx_t *c, int id) { return yaml_document_get_node(c->doc, id); }
static int yline(const yaml_node_t *n) { return n ? (int)n->start_mark.line + 1 : 0; }

static int yerr(yctx_t *c, const yaml_node_t *n, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int yerr(yctx_t *c, const yaml_node_t *n, const char *path, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set_at(c->err, ERR_PARSE, yline(n), n ? (int)n->start_mark.column + 1 : 0,
                      "%s:%d: %s: %s", c->file, yline(n), path, msg);
}

static const char *yscalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static str_t ystr(yctx_t *c, const yaml_node_t *n)
{
    return arena_str(c->a, str_from(yscalar(n), n->data.scalar.length));
}

static bool ynull(const yaml_node_t *n)
{
    const char *s = yscalar(n);
    return s && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           (!s[0] || strcmp(s, "null") == 0 || strcmp(s, "~") == 0);
}

static int want_scalar(yctx_t *c, yaml_node_t *n, const char *path, const char **out)
{
    *out = yscalar(n);
    if (!*out)
        return yerr(c, n, path, "expected a single value");
    return 0;
}

static int get_duration(yctx_t *c, yaml_node_t *n, const char *path, int64_t *ms)
{
    const char *s;
    int rc = want_scalar(c, n, path, &s);
    if (rc)
        return rc;
    err_t e;
    err_clear(&e);
    if (duration_parse_ms(str_cstr(s), ms, &e) != 0)
        return yerr(c, n, path, "invalid duration \"%s\": %s", s, e.msg);
    if (*ms <= 0)
        return yerr(c, n, path, "duration must be greater than 0, got \"%s\"", s);
    return 0;
}

static int get_bool(yctx_t *c, yaml_node_t *n, const char *path, bool *v)
{
    const char *s;
    int rc = want_scalar(c, n, path, &s);
    if (rc)
        return rc;
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
        *v = true;
    else if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
        *v = false;
    else
        return yerr(c, n, path, "expected true or false, got \"%s\"", s);
    return 0;
}

static int get_uint(yctx_t *c, yaml_node_t *n, const char *path, uint64_t *v)
{
    const char *s;
    int rc = want_scalar(c, n, path, &s);
    if (rc)
        return rc;
    char *end;
    if (!s[0] || !isdigit((unsigned char)s[0]))
        return yerr(c, n, path, "expected a non-negative integer, got \"%s\"", s);
    *v = strtoull(s, &end, 10);
    if (*end)
        return yerr(c, n, path, "expected a non-negative integer, got \"%s\"", s);
    return 0;
}

static int get_label_name(yctx_t *c, yaml_node_t *n, const char *path, str_t *out)
{
    const char *s;
    int rc = want_scalar(c, n, path, &s);
    if (rc)
        return rc;
    *out = ystr(c, n);
    if (!valid_label_name(*out))
        return yerr(c, n, path, "\"%s\" is not a valid label name", s);
    return 0;
}

static int get_label_map(yctx_t *c, yaml_node_t *n, const char *path, labels_t *out)
{
    out->v = NULL;
    out->n = 0;
    if (ynull(n))
        return 0;
    if (n->type != YAML_MAPPING_NODE)
        return yerr(c, n, path, "expected a mapping of label names to values");
    size_t cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    out->v = ARENA_ARRAY(c->a, label_t, cnt ? cnt : 1);
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = ynode(c, p->key), *v = ynode(c, p->value);
        char sub[300];
        pathf(sub, sizeof sub, "%s.%s", path, yscalar(k) ? yscalar(k) : "?");
        str_t name;
        int rc = get_label_name(c, k, sub, &name);
        if (rc)
            return rc;
        const char *vs;
        if ((rc = want_scalar(c, v, sub, &vs)) != 0)
            return rc;
        for (size_t i = 0; i < out->n; i++)
            if (str_eq(out->v[i].name, name))
                return yerr(c, k, sub, "duplicate label name");
        out->v[out->n++] = (label_t){name, ystr(c, v)};
    }
    labels_sort(out);
    return 0;
}

static const struct {
    const char *name;
    relabel_action_t action;
} actions[] = {
    {"replace", RELABEL_REPLACE},     {"keep", RELABEL_KEEP},
    {"drop", RELABEL_DROP},           {"keepequal", RELABEL_KEEPEQUAL},
    {"dropequal", RELABEL_DROPEQUAL}, {"hashmod", RELABEL_HASHMOD},
    {"labelmap", RELABEL_LABELMAP},   {"labeldrop", RELABEL_LABELDROP},
    {"labelkeep", RELABEL_LABELKEEP}, {"lowercase", RELABEL_LOWERCASE},
    {"uppercase", RELABEL_UPPERCASE},
};

static const char *action_name(relabel_action_t a)
{
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
        if (actions[i].action == a)
            return actions[i].name;
    return "?";
}

static int parse_rule(yctx_t *c, yaml_node_t *n, const char *path, relabel_rule_t *r)
{
    if (n->type != YAML_MAPPING_NODE)
        return yerr(c, n, path, "expected a mapping (action, source_labels, regex, ...)");
    memset(r, 0, sizeof *r);
    r->line = yline(n);
    r->separator = STR(";");
    r->regex = STR("(.*)");
    r->replacement = STR("$1");
    bool has_sep = false, has_repl = false, has_target = false, has_mod = false;
    yaml_node_t *regex_node = n;
    int rc;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = ynode(c, p->key), *v = ynode(c, p->value);
        const char *key = yscalar(k);
        char sub[300];
        pathf(sub, sizeof sub, "%s.%s", path, key ? key : "?");
        if (!key)
            return yerr(c, k, path, "keys must be plain strings");
        if (!strcmp(key, "action")) {
            const char *s;
            if ((rc = want_scalar(c, v, sub, &s)) != 0)
                return rc;
            bool found = false;
            for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
                if (strcasecmp(s, actions[i].name) == 0) {
                    r->action = actions[i].action;
                    found = true;
                }
            if (!found)
                return yerr(c, v, sub,
                            "unknown relabel action \"%s\" (replace, keep, drop, keepequal, "
                            "dropequal, hashmod, labelmap, labeldrop, labelkeep, lowercase, "
                            "uppercase)",
                            s);
        } else if (!strcmp(key, "source_labels")) {
            if (ynull(v))
                continue;
            if (v->type != YAML_SEQUENCE_NODE)
                return yerr(c, v, sub, "expected a list of label names");
            size_t cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
            r->source_labels = ARENA_ARRAY(c->a, str_t, cnt ? cnt : 1);
            for (yaml_node_item_t *it = v->data.sequence.items.start;
                 it < v->data.sequence.items.top; it++) {
                char sub2[320];
                pathf(sub2, sizeof sub2, "%s[%zu]", sub, r->n_source);
                if ((rc = get_label_name(c, ynode(c, *it), sub2, &r->source_labels[r->n_source])) !=
                    0)
                    return rc;
                r->n_source++;
            }
        } else if (!strcmp(key, "separator")) {
            const char *s;
            if ((rc = want_scalar(c, v, sub, &s)) != 0)
                return rc;
            r->separator = ystr(c, v);
            has_sep = true;
        } else if (!strcmp(key, "regex")) {
            const char *s;
            if ((rc = want_scalar(c, v, sub, &s)) != 0)
                return rc;
            r->regex = ystr(c, v);
            regex_node = v;
        } else if (!strcmp(key, "target_label")) {
            const char *s;
            if ((rc = want_scalar(c, v, sub, &s)) != 0)
                return rc;
            r->target_label = ystr(c, v);
            has_target = true;
        } else if (!strcmp(key, "replacement")) {
            const char *s;
            if ((rc = want_scalar(c, v, sub, &s)) != 0)
                return rc;
            r->replacement = ystr(c, v);
            has_repl = true;
        } else if (!strcmp(key, "modulus")) {
            if ((rc = get_uint(c, v, sub, &r->modulus)) != 0)
                return rc;
            has_mod = true;
        } else {
            return yerr(c, k, sub,
                        "unknown field (a relabel config has action, source_labels, separator, "
                        "regex, target_label, replacement, modulus)");
        }
    }
    const char *an = action_name(r->action);
    if (r->action == RELABEL_HASHMOD && !r->modulus)
        return yerr(c, n, path, "relabel configuration for hashmod requires non-zero modulus");
    if ((r->action == RELABEL_REPLACE || r->action == RELABEL_HASHMOD ||
         r->action == RELABEL_LOWERCASE || r->action == RELABEL_UPPERCASE ||
         r->action == RELABEL_KEEPEQUAL || r->action == RELABEL_DROPEQUAL) &&
        !r->target_label.len)
        return yerr(c, n, path, "relabel configuration for %s action requires 'target_label' value",
                    an);
    if (r->action == RELABEL_REPLACE && !memchr(r->target_label.ptr, '$', r->target_label.len) &&
        !valid_label_name(r->target_label))
        return yerr(c, n, path, "\"%.*s\" is invalid 'target_label' for replace action",
                    STR_FMT(r->target_label));
    if ((r->action == RELABEL_LOWERCASE || r->action == RELABEL_UPPERCASE ||
         r->action == RELABEL_HASHMOD || r->action == RELABEL_KEEPEQUAL ||
         r->action == RELABEL_DROPEQUAL) &&
        !valid_label_name(r->target_label))
        return yerr(c, n, path, "\"%.*s\" is invalid 'target_label' for %s action",
                    STR_FMT(r->target_label), an);
    if (r->action == RELABEL_LABELMAP &&
        !memchr(r->replacement.ptr ? r->replacement.ptr : "", '$', r->replacement.len) &&
        !valid_label_name(r->replacement))
        return yerr(c, n, path, "\"%.*s\" is invalid 'replacement' for labelmap action",
                    STR_FMT(r->replacement));
    if ((r->action == RELABEL_LABELDROP || r->action == RELABEL_LABELKEEP) &&
        (r->n_source || has_target || has_mod || has_sep || has_repl))
        return yerr(c, n, path, "%s action requires only 'regex', and no other fields", an);
    if ((r->action == RELABEL_KEEPEQUAL || r->action == RELABEL_DROPEQUAL) &&
        (has_mod || has_sep || has_repl || !r->n_source))
        return yerr(c, n, path, "%s action requires only 'source_labels' and 'target_label'", an);
    err_t e;
    err_clear(&e);
    if (matcher_init(&r->re, MATCH_RE, STR("regex"), r->regex, &e) != 0) {
        char rp[300];
        pathf(rp, sizeof rp, "%s.regex", path);
        return yerr(c, regex_node, rp, "%s", e.msg);
    }
    return 0;
}

static int parse_rules(yctx_t *c, yaml_node_t *n, const char *path, relabel_rule_t **out,
                       size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (ynull(n))
        return 0;
    if (n->type != YAML_SEQUENCE_NODE)
        return yerr(c, n, path, "expected a list of relabel configs");
    size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    *out = ARENA_ARRAY(c->a, relabel_rule_t, cnt ? cnt : 1);
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        char sub[300];
        pathf(sub, sizeof sub, "%s[%zu]", path, *n_out);
        int rc = parse_rule(c, ynode(c, *it), sub, &(*out)[*n_out]);
        if (rc) {
            matcher_deinit(&(*out)[*n_out].re);
            return rc;
        }
        (*n_out)++;
    }
    return 0;
}

static int parse_static(yctx_t *c, yaml_node_t *n, const char *path, scrape_static_t *s)
{
    memset(s, 0, sizeof *s);
    if (n->type != YAML_MAPPING_NODE)
        return yerr(c, n, path, "expected a mapping with targets and labels");
    int rc;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = ynode(c, p->key), *v = ynode(c, p->value);
        const char *key = yscalar(k);
        char sub[300];
        pathf(sub, sizeof sub, "%s.%s", path, key ? key : "?");
        if (key && !strcmp(key, "targets")) {
            if (ynull(v))
                continue;
            if (v->type != YAML_SEQUENCE_NODE)
                return yerr(c, v, sub, "expected a list of host:port targets");
            size_t cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
            s->targets = ARENA_ARRAY(c->a, str_t, cnt ? cnt : 1);
            for (yaml_node_item_t *it = v->data.sequence.items.start;
                 it < v->data.sequence.items.top; it++) {
                yaml_node_t *t = ynode(c, *it);
                char sub2[320];
                pathf(sub2, sizeof sub2, "%s[%zu]", sub, s->n_targets);
                const char *ts;
                if ((rc = want_scalar(c, t, sub2, &ts)) != 0)
                    return rc;
                if (!ts[0] || strchr(ts, '/') || strchr(ts, ' '))
                    return yerr(c, t, sub2,
                                "\"%s\" is not a valid target: expected host:port (the path goes "
                                "in metrics_path, the scheme in scheme)",
                                ts);
                s->targets[s->n_targets++] = ystr(c, t);
            }
        } else if (key && !strcmp(key, "labels")) {
            if ((rc = get_label_map(c, v, sub, &s->labels)) != 0)
                return rc;
        } else {
            return yerr(c, k, sub, "unknown field (a static config has targets and labels)");
        }
    }
    return 0;
}

/* params: {name: [value, ...]}; the first value of each is used, as Prometheus does. */
static int parse_params(yctx_t *c, yaml_node_t *v, const char *sub, scrape_job_t *j)
{
    if (ynull(v))
        return 0;
    if (v->type != YAML_MAPPING_NODE)
        return yerr(c, v, sub, "expected a mapping of parameter names to lists of values");
    size_t cnt = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    j->params = ARENA_ARRAY(c->a, scrape_param_t, cnt ? cnt : 1);
    for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top; q++) {
        yaml_node_t *pk = ynode(c, q->key), *pv = ynode(c, q->value);
        char sub2[320];
        pathf(sub2, sizeof sub2, "%s.%s", sub, yscalar(pk) ? yscalar(pk) : "?");
        if (!yscalar(pk))
            return yerr(c, pk, sub, "parameter names must be plain strings");
        if (pv->type != YAML_SEQUENCE_NODE)
            return yerr(c, pv, sub2, "expected a list of values");
        if (pv->data.sequence.items.top == pv->data.sequence.items.start)
            continue;
        yaml_node_t *first = ynode(c, *pv->data.sequence.items.start);
        const char *s;
        int rc = want_scalar(c, first, sub2, &s);
        if (rc)
            return rc;
        j->params[j->n_params++] = (scrape_param_t){ystr(c, pk), ystr(c, first)};
    }
    return 0;
}

static int parse_statics(yctx_t *c, yaml_node_t *v, const char *sub, scrape_job_t *j)
{
    if (ynull(v))
        return 0;
    if (v->type != YAML_SEQUENCE_NODE)
        return yerr(c, v, sub, "expected a list of {targets: [...], labels: {...}}");
    size_t cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    j->statics = ARENA_ARRAY(c->a, scrape_static_t, cnt ? cnt : 1);
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        char sub2[320];
        pathf(sub2, sizeof sub2, "%s[%zu]", sub, j->n_statics);
        int rc = parse_static(c, ynode(c, *it), sub2, &j->statics[j->n_statics]);
        if (rc)
            return rc;
        j->n_statics++;
    }
    return 0;
}

static void job_free(scrape_job_t *j)
{
    for (size_t i = 0; i < j->n_relabel; i++)
        matcher_deinit(&j->relabel[i].re);
    for (size_t i = 0; i < j->n_metric_relabel; i++)
        matcher_deinit(&j->metric_relabel[i].re);
    j->n_relabel = j->n_metric_relabel = 0;
}

/* Prometheus keys Skillscope refuses with a reason rather than "unknown field". */
static const char *unsupported_reason(const char *key)
{
    static const char *const sd[] = {
        "file_sd_configs",  "kubernetes_sd_configs", "consul_sd_configs", "dns_sd_configs",
        "ec2_sd_configs",   "http_sd_configs",       "docker_sd_configs", "gce_sd_configs",
        "azure_sd_configs", "dockerswarm_sd_configs"};
    for (size_t i = 0; i < sizeof sd / sizeof sd[0]; i++)
        if (!strcmp(key, sd[i]))
            return "service discovery is not supported: list targets in static_configs";
    static const char *const tls[] = {
        "tls_config",   "basic_auth",        "authorization", "oauth2",
        "bearer_token", "bearer_token_file", "proxy_url",     "proxy_from_environment"};
    for (size_t i = 0; i < sizeof tls / sizeof tls[0]; i++)
        if (!strcmp(key, tls[i]))
            return "TLS, authentication and proxies are not supported (plain http only)";
    return NULL;
}

static int parse_job(yctx_t *c, yaml_node_t *n, const char *path, const scrape_config_t *cfg,
                     scrape_job_t *j)
{
    memset(j, 0, sizeof *j);
    j->line = yline(n);
    j->metrics_path = STR("/metrics");
    j->scheme = STR("http");
    j->honor_timestamps = true;
    if (n->type != YAML_MAPPING_NODE)
        return yerr(c, n, path, "expected a mapping (job_name, static_configs, ...)");
    int rc;
    bool has_timeout = false, has_interval = false;
    yaml_node_t *timeout_node = n;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = ynode(c, p->key), *v = ynode(c, p->value);
        const char *key = yscalar(k);
        if (!key)
            return yerr(c, k, path, "keys must be plain strings");
        char sub[300];
        pathf(sub, sizeof sub, "%s.%s", path, key);
        const char *s;
        if (!strcmp(key, "job_name")) {
            if ((rc = want_scalar(c, v, sub, &s)) != 0)
                return rc;
            if (!s[0])
                return yerr(c, v, sub, "job_name must not be empty");
            j->job_name = ystr(c, v);
        } else if (!strcmp(key, "scrape_interval")) {
            if ((rc = get_duration(c, v, sub, &j->interval_ms)) != 0)
                return rc;
            has_interval = true;
        } else if (!strcmp(key, "scrape_timeout")) {
            if ((rc = get_duration(c, v, sub, &j->timeout_ms)) != 0)
                return rc;
            has_timeout = true;
            timeout_node = v;
        } else if (!strcmp(key, "metrics_path")) {
            if ((rc = want_scalar(c, v, sub, &s)) != 0)
                return rc;
            if (s[0] != '/')
                return yerr(c, v, sub, "must start with '/', got \"%s\"", s);
            j->metrics_path = ystr(c, v);
        } else if (!strcmp(key, "scheme")) {
            if ((rc = want_scalar(c, v, sub, &s)) != 0)
                return rc;
            if (!strcmp(s, "https"))
                return yerr(c, v, sub,
                            "https is not supported: Skillscope scrapes plain http only (put a "
                            "local http endpoint or a TLS-terminating proxy in front)");
            if (strcmp(s, "http") != 0)
                return yerr(c, v, sub, "unknown scheme \"%s\" (http is supported)", s);
        } else if (!strcmp(key, "params")) {
            if ((rc = parse_params(c, v, sub, j)) != 0)
                return rc;
        } else if (!strcmp(key, "honor_labels")) {
            if ((rc = get_bool(c, v, sub, &j->honor_labels)) != 0)
                return rc;
        } else if (!strcmp(key, "honor_timestamps")) {
            if ((rc = get_bool(c, v, sub, &j->honor_timestamps)) != 0)
                return rc;
        } else if (!strcmp(key, "sample_limit")) {
            if ((rc = get_uint(c, v, sub, &j->sample_limit)) != 0)
                return rc;
        } else if (!strcmp(key, "body_size_limit")) {
            if ((rc = want_scalar(c, v, sub, &s)) != 0)
                return rc;
            err_t e;
            err_clear(&e);
            if (size_parse_bytes(str_cstr(s), &j->body_size_limit, &e) != 0)
                return yerr(c, v, sub, "invalid size \"%s\": %s", s, e.msg);
        } else if (!strcmp(key, "static_configs")) {
            if ((rc = parse_statics(c, v, sub, j)) != 0)
                return rc;
        } else if (!strcmp(key, "relabel_configs")) {
            if ((rc = parse_rules(c, v, sub, &j->relabel, &j->n_relabel)) != 0)
                return rc;
        } else if (!strcmp(key, "metric_relabel_configs")) {
            if ((rc = parse_rules(c, v, sub, &j->metric_relabel, &j->n_metric_relabel)) != 0)
                return rc;
        } else if (unsupported_reason(key)) {
            return yerr(c, k, sub, "%s", unsupported_reason(key));
        } else {
            return yerr(c, k, sub,
                        "unknown field (supported: job_name, scrape_interval, scrape_timeout, "
                        "metrics_path, scheme, params, honor_labels, honor_timestamps, "
                        "sample_limit, body_size_limit, static_configs, relabel_configs, "
                        "metric_relabel_configs)");
        }
    }
    if (!j->job_name.len)
        return yerr(c, n, path, "job_name is required");
    if (!has_interval)
        j->interval_ms = cfg->global_interval_ms;
    if (!has_timeout)
        j->timeout_ms =
            cfg->global_timeout_ms > j->interval_ms ? j->interval_ms : cfg->global_timeout_ms;
    if (j->timeout_ms > j->interval_ms)
        return yerr(c, timeout_node, path,
                    "scrape timeout greater than scrape interval for scrape config with job "
                    "name \"%.*s\"",
                    STR_FMT(j->job_name));
    return 0;
}

int scrape_config_parse(yaml_document_t *doc, yaml_node_t *node, yaml_node_t *global,
                        const char *file, scrape_config_t **out, err_t *err)
{
    *out = NULL;
    scrape_config_t *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return err_set(err, ERR_NOMEM, "out of memory");
    arena_init(&cfg->arena, 4096);
    cfg->global_interval_ms = DEFAULT_INTERVAL_MS;
    cfg->global_timeout_ms = DEFAULT_TIMEOUT_MS;
    yctx_t c = {doc, file ? file : "config", err, &cfg->arena};
    int rc = 0;
    if (global && !ynull(global)) {
        if (global->type != YAML_MAPPING_NODE) {
            rc = yerr(&c, global, "global", "expected a mapping");
            goto fail;
        }
        for (yaml_node_pair_t *p = global->data.mapping.pairs.start;
             p < global->data.mapping.pairs.top; p++) {
            const char *key = yscalar(ynode(&c, p->key));
            yaml_node_t *v = ynode(&c, p->value);
            if (key && !strcmp(key, "scrape_interval"))
                rc = get_duration(&c, v, "global.scrape_interval", &cfg->global_interval_ms);
            else if (key && !strcmp(key, "scrape_timeout"))
                rc = get_duration(&c, v, "global.scrape_timeout", &cfg->global_timeout_ms);
            if (rc)
                goto fail;
        }
        /* The other keys of global (evaluation_interval, external_labels, ...) belong to other
         * parts of the program. */
    }
    if (!node || ynull(node)) {
        *out = cfg;
        return 0;
    }
    if (node->type != YAML_SEQUENCE_NODE) {
        rc = yerr(&c, node, "scrape_configs", "expected a list of scrape configs");
        goto fail;
    }
    size_t cnt = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    cfg->jobs = ARENA_ARRAY(&cfg->arena, scrape_job_t, cnt ? cnt : 1);
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top;
         it++) {
        char path[64];
        pathf(path, sizeof path, "scrape_configs[%zu]", cfg->n_jobs);
        scrape_job_t *j = &cfg->jobs[cfg->n_jobs];
        rc = parse_job(&c, ynode(&c, *it), path, cfg, j);
        cfg->n_jobs++; /* so its regexes are freed even on failure */
        if (rc)
            goto fail;
        for (size_t i = 0; i + 1 < cfg->n_jobs; i++)
            if (str_eq(cfg->jobs[i].job_name, j->job_name)) {
                rc = yerr(&c, ynode(&c, *it), path,
                          "found multiple scrape configs with job name "
                          "\"%.*s\"",
                          STR_FMT(j->job_name));
                goto fail;
            }
    }
    *out = cfg;
    return 0;
fail:
    scrape_config_free(cfg);
    return rc;
}

void scrape_config_free(scrape_config_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_jobs; i++)
        job_free(&c->jobs[i]);
    arena_deinit(&c->arena);
    free(c);
}
