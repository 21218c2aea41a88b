/*
 * logs_chunk.c - the content of one log file chunk: the encoder the file writer feeds entries to,
 * and the decoder the reader and the query merge use. It was split from logs.c (STYLE.md: files
 * past ~1,500 lines) along the codec's boundary: nothing here knows files, streams or queries,
 * only a chunk's bytes and the entries they hold.
 *
 * A chunk holds entries of one stream in time order, column by column (delta-encoded timestamps,
 * line forms, timestamp cuts, metadata, then the JSON section and the raw lines; layout in
 * store/format_spans_logs.h). Two transforms remove what zstd codes poorly: the entry's own
 * timestamp, when the line spells it out (RFC 3339 or epoch digits), is cut out and re-rendered on
 * read; and a line that is a flat JSON object becomes a template (its key sequence, once per
 * chunk) plus values appended to one column per key, so key text disappears and like values sit
 * together. Both are exact: a line is transformed only when the inverse rebuilds it byte for byte.
 * Decoding checks every count, length and index against the chunk, so a corrupt chunk is an
 * error, never a crash.
 */
#include "store/logs.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/hash.h"
#include "base/varint.h"
#include "store/internal.h"
#include "store/labels.h"

/* ---- the entry's own timestamp inside its line ----
 * Many log lines carry their timestamp as text ("time":"2026-11-21T22:20:09.410Z" or epoch
 * milliseconds). When the line holds exactly the rendering of the entry's ts in one of these forms,
 * the chunk stores the line without it plus (offset, form), and the reader renders it back.
 */

enum { TSF_RFC_S, TSF_RFC_MS, TSF_RFC_US, TSF_RFC_NS, TSF_EPOCH_MS, TSF_EPOCH_NS, TSF_COUNT };

static size_t put_digits(char *out, uint64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--, v /= 10)
        out[i] = (char)('0' + v % 10);
    return (size_t)width;
}

static size_t put_uint(char *out, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while (v /= 10);
    for (int i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return (size_t)n;
}

/* Renders ts (ns, >= 0) in form fmt into out (>= 32 bytes); 0 when not representable. */
static size_t ts_render(int64_t ts, int fmt, char *out)
{
    if (ts < 0)
        return 0;
    uint64_t t = (uint64_t)ts;
    if (fmt == TSF_EPOCH_MS)
        return put_uint(out, t / 1000000);
    if (fmt == TSF_EPOCH_NS)
        return put_uint(out, t);
    uint64_t secs = t / 1000000000, sod = secs % 86400;
    /* civil_from_days (H. Hinnant), days since 1970-01-01, non-negative here */
    int64_t z = (int64_t)(secs / 86400) + 719468;
    int64_t era = z / 146097, doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    if (y > 9999)
        return 0;
    size_t n = put_digits(out, (uint64_t)y, 4);
    out[n++] = '-';
    n += put_digits(out + n, (uint64_t)m, 2);
    out[n++] = '-';
    n += put_digits(out + n, (uint64_t)d, 2);
    out[n++] = 'T';
    n += put_digits(out + n, sod / 3600, 2);
    out[n++] = ':';
    n += put_digits(out + n, sod / 60 % 60, 2);
    out[n++] = ':';
    n += put_digits(out + n, sod % 60, 2);
    static const int frac[] = {0, 3, 6, 9};
    if (frac[fmt]) {
        out[n++] = '.';
        uint64_t ns = t % 1000000000;
        for (int i = frac[fmt]; i < 9; i++)
            ns /= 10;
        n += put_digits(out + n, ns, frac[fmt]);
    }
    out[n++] = 'Z';
    return n;
}

/* Finds the entry's timestamp in line: its offset and form, or false. */
static bool ts_find(str_t line, int64_t ts, size_t *off, int *fmt)
{
    char r[40];
    if (line.len < 13 || ts_render(ts, TSF_RFC_NS, r) == 0)
        return false;
    const char *p = memmem(line.ptr, line.len, r, 19);
    if (p) {
        size_t at = (size_t)(p - line.ptr), left = line.len - at;
        for (int f = TSF_RFC_NS; f >= TSF_RFC_S; f--) {
            size_t n = ts_render(ts, f, r);
            if (n <= left && memcmp(p, r, n) == 0) {
                *off = at;
                *fmt = f;
                return true;
            }
        }
    }
    size_t n = ts_render(ts, TSF_EPOCH_NS, r);
    if (n > 6 && (p = memmem(line.ptr, line.len, r, n - 6)) != NULL) {
        size_t at = (size_t)(p - line.ptr);
        *off = at;
        *fmt = (line.len - at >= n && memcmp(p, r, n) == 0) ? TSF_EPOCH_NS : TSF_EPOCH_MS;
        return true;
    }
    return false;
}

/* ---- chunk encoding: JSON lines split into per-key value columns ----
 * A line that is exactly a flat-syntax JSON object ({"k":v,...} or Python's {"k": v, ...}; a value
 * is a string, a bare token such as a number or true, or a nested object/array kept verbatim) is
 * stored as a template (its key sequence and separator style, once per chunk) plus its values,
 * each appended to the column of its key. The key text disappears and values of one key sit
 * together (numbers with numbers, repeated ids next to each other), which compresses far better
 * than the lines as written. Anything else is stored as written.
 */

#define JSON_MAX_FIELDS 64
#define JSON_MAX_KEYS 256
#define JSON_MAX_TEMPLATES 256

typedef struct jfield {
    str_t key, value;
} jfield_t;

/* Scans a JSON string starting at p[0] == '"'; returns the index just past its closing quote. */
static size_t json_skip_string(const char *p, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        if (p[i] == '\\')
            i++;
        else if (p[i] == '"')
            return i + 1;
    }
    return 0;
}

/* Scans a nested object or array verbatim (strings respected); index past its end or 0. */
static size_t json_skip_nested(const char *p, size_t n)
{
    int depth = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '"') {
            size_t k = json_skip_string(p + i, n - i);
            if (!k)
                return 0;
            i += k - 1;
        } else if (c == '{' || c == '[') {
            if (++depth > 64)
                return 0;
        } else if (c == '}' || c == ']') {
            if (--depth == 0)
                return i + 1;
        }
    }
    return 0;
}

static bool bare_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
           c == '-' || c == '+';
}

/* Splits line into fields when it is a flat-syntax JSON object; *spaced says which separators
 * (": " and ", " instead of ":" and ","). Returns the number of fields, 0 when not applicable. */
static size_t json_split(str_t line, jfield_t *f, bool *spaced)
{
    const char *p = line.ptr;
    size_t n = line.len, i = 1, nf = 0;
    if (n < 7 || p[0] != '{' || p[1] != '"' || p[n - 1] != '}')
        return 0;
    for (;;) {
        if (nf == JSON_MAX_FIELDS || i >= n || p[i] != '"')
            return 0;
        size_t k = json_skip_string(p + i, n - i);
        if (!k)
            return 0;
        f[nf].key = (str_t){p + i + 1, k - 2};
        i += k;
        if (i >= n || p[i] != ':')
            return 0;
        i++;
        if (nf == 0)
            *spaced = i < n && p[i] == ' ';
        if (*spaced) {
            if (i >= n || p[i] != ' ')
                return 0;
            i++;
        }
        if (i >= n)
            return 0;
        size_t v;
        if (p[i] == '"')
            v = json_skip_string(p + i, n - i);
        else if (p[i] == '{' || p[i] == '[')
            v = json_skip_nested(p + i, n - i);
        else
            for (v = 0; i + v < n && bare_char(p[i + v]); v++)
                ;
        if (!v)
            return 0;
        f[nf++].value = (str_t){p + i, v};
        i += v;
        if (i == n - 1)
            return nf; /* the closing brace */
        if (i >= n || p[i] != ',')
            return 0;
        i++;
        if (*spaced) {
            if (i >= n || p[i] != ' ')
                return 0;
            i++;
        }
    }
}

/* ---- per-chunk interning of keys and templates (logs_intern_t, internal.h) ---- */

static void intern_clear(logs_intern_t *t)
{
    if (t->map.len)
        u64map_clear(&t->map);
    buf_clear(&t->data);
    t->n = 0;
}

static void intern_deinit(logs_intern_t *t)
{
    u64map_deinit(&t->map);
    buf_deinit(&t->data);
    free(t->off);
    free(t->len);
    free(t->next);
}

/* Id of s, adding it when absent and fewer than max are held; -1 when full. */
static int64_t intern_get(logs_intern_t *t, const void *s, size_t len, size_t max)
{
    uint64_t h = hash64(s, len, 0x10c5);
    h = h ? h : 1;
    uint64_t *slot = u64map_get(&t->map, h);
    uint32_t first = slot ? (uint32_t)*slot : LOGS_NONE;
    for (uint32_t i = first; i != LOGS_NONE; i = t->next[i])
        if (t->len[i] == len && (len == 0 || memcmp(t->data.pos + t->off[i], s, len) == 0))
            return i;
    if (t->n >= max)
        return -1;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 32;
        t->off = db__xrealloc(t->off, t->cap * sizeof *t->off);
        t->len = db__xrealloc(t->len, t->cap * sizeof *t->len);
        t->next = db__xrealloc(t->next, t->cap * sizeof *t->next);
    }
    uint32_t id = (uint32_t)t->n++;
    buf_put_uvarint(&t->data, len);
    t->off[id] = (uint32_t)buf_len(&t->data);
    t->len[id] = (uint32_t)len;
    buf_append(&t->data, s, len);
    t->next[id] = first;
    u64map_put(&t->map, h, id);
    return id;
}

/* ---- the encoder (logs_cenc_t, internal.h) ---- */

void logs__cenc_clear(logs_cenc_t *c)
{
    c->n = 0;
    c->bytes = 0;
    buf_clear(&c->ts);
    buf_clear(&c->form);
    buf_clear(&c->tsf);
    buf_clear(&c->meta);
    buf_clear(&c->raw_len);
    buf_clear(&c->raw);
    intern_clear(&c->keys);
    intern_clear(&c->tmpls);
    for (size_t i = 0; i < c->n_cols; i++) {
        buf_clear(&c->vlen[i]);
        buf_clear(&c->vbytes[i]);
    }
}

void logs__cenc_deinit(logs_cenc_t *c)
{
    buf_t *bufs[] = {&c->ts, &c->form, &c->tsf, &c->meta, &c->raw_len, &c->raw};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        buf_deinit(bufs[i]);
    intern_deinit(&c->keys);
    intern_deinit(&c->tmpls);
    for (size_t i = 0; i < c->n_cols; i++) {
        buf_deinit(&c->vlen[i]);
        buf_deinit(&c->vbytes[i]);
    }
    free(c->vlen);
    free(c->vbytes);
}

/* Stores line (its timestamp already taken out) as a template and values, or as written. */
static void cenc_line(logs_cenc_t *c, str_t line)
{
    jfield_t f[JSON_MAX_FIELDS];
    bool spaced = false;
    size_t nf = json_split(line, f, &spaced);
    uint8_t tmpl[JSON_MAX_FIELDS * 2 + UVARINT_MAX];
    size_t tl = nf ? uvarint_put(tmpl, (uint64_t)nf << 1 | spaced) : 0;
    for (size_t i = 0; i < nf; i++) {
        int64_t k = intern_get(&c->keys, f[i].key.ptr, f[i].key.len, JSON_MAX_KEYS);
        if (k < 0) {
            nf = 0;
            break;
        }
        tl += uvarint_put(tmpl + tl, (uint64_t)k);
        f[i].key.len = (size_t)k; /* reuse: the key id */
    }
    int64_t t = nf ? intern_get(&c->tmpls, tmpl, tl, JSON_MAX_TEMPLATES) : -1;
    if (t < 0) {
        buf_putc(&c->form, 0);
        buf_put_uvarint(&c->raw_len, line.len);
        buf_put_str(&c->raw, line);
        c->bytes += line.len + 2;
        return;
    }
    buf_put_uvarint(&c->form, (uint64_t)t + 1);
    if (c->keys.n > c->n_cols) {
        size_t nc = c->keys.cap;
        c->vlen = db__xrealloc(c->vlen, nc * sizeof *c->vlen);
        c->vbytes = db__xrealloc(c->vbytes, nc * sizeof *c->vbytes);
        for (size_t i = c->n_cols; i < nc; i++)
            c->vlen[i] = c->vbytes[i] = BUF_INIT;
        c->n_cols = nc;
    }
    for (size_t i = 0; i < nf; i++) {
        buf_put_uvarint(&c->vlen[f[i].key.len], f[i].value.len);
        buf_put_str(&c->vbytes[f[i].key.len], f[i].value);
        c->bytes += f[i].value.len + 1;
    }
    c->bytes += 2;
}

void logs__cenc_add(logs_cenc_t *c, int64_t ts, str_t line, const labels_t *meta, str_t meta_raw)
{
    if (c->n == 0)
        c->min_ts = c->max_ts = ts;
    size_t before = buf_len(&c->ts) + buf_len(&c->tsf) + buf_len(&c->meta);
    buf_put_uvarint(&c->ts, (uint64_t)ts - (uint64_t)c->max_ts);
    c->max_ts = ts;
    size_t off;
    int fmt;
    if (ts_find(line, ts, &off, &fmt)) {
        char r[40], tmp[4096];
        size_t rn = ts_render(ts, fmt, r), ln = line.len - rn;
        buf_put_uvarint(&c->tsf, ((uint64_t)off * TSF_COUNT + (uint64_t)fmt) + 1);
        char *cut = ln <= sizeof tmp ? tmp : db__xrealloc(NULL, ln);
        memcpy(cut, line.ptr, off);
        memcpy(cut + off, line.ptr + off + rn, ln - off);
        cenc_line(c, (str_t){cut, ln});
        if (cut != tmp)
            free(cut);
    } else {
        buf_putc(&c->tsf, 0);
        cenc_line(c, line);
    }
    if (meta_raw.len)
        buf_put_str(&c->meta, meta_raw);
    else if (meta && meta->n)
        labels_encode(&c->meta, meta);
    else
        buf_putc(&c->meta, 0);
    c->bytes += buf_len(&c->ts) + buf_len(&c->tsf) + buf_len(&c->meta) - before;
    c->n++;
}

void logs__cenc_finish(const logs_cenc_t *c, buf_t *raw)
{
    buf_clear(raw);
    buf_put_uvarint(raw, c->n);
    const buf_t *cols[] = {&c->ts, &c->form, &c->tsf, &c->meta};
    for (size_t i = 0; i < 4; i++)
        buf_append(raw, cols[i]->pos, buf_len(cols[i]));
    buf_put_uvarint(raw, c->keys.n);
    buf_append(raw, c->keys.data.pos, buf_len(&c->keys.data));
    buf_put_uvarint(raw, c->tmpls.n);
    buf_append(raw, c->tmpls.data.pos, buf_len(&c->tmpls.data));
    for (size_t k = 0; k < c->keys.n; k++) {
        buf_append(raw, c->vlen[k].pos, buf_len(&c->vlen[k]));
        buf_append(raw, c->vbytes[k].pos, buf_len(&c->vbytes[k]));
    }
    buf_append(raw, c->raw_len.pos, buf_len(&c->raw_len));
    buf_append(raw, c->raw.pos, buf_len(&c->raw));
}

/* ---- the decoder (logs_dchunk_t, internal.h) ---- */

/* Where a chunk's JSON and raw-line columns are, while its lines are rebuilt. */
typedef struct logs_jsec {
    str_t keys[JSON_MAX_KEYS];
    const uint8_t *tmpl[JSON_MAX_TEMPLATES]; /* uvarint fields << 1 | spaced, key ids */
    store_rd_t vlen[JSON_MAX_KEYS];          /* each key's value lengths */
    const uint8_t *vbytes[JSON_MAX_KEYS];    /* each key's next value */
    store_rd_t raw_len;
    const uint8_t *raw;
} jsec_t;

void logs__dchunk_free(logs_dchunk_t *d)
{
    if (!d)
        return;
    buf_deinit(&d->comp);
    buf_deinit(&d->raw);
    free(d->ts);
    buf_deinit(&d->lines);
    free(d->j);
    free(d->line);
    free(d->tsf);
    free(d->form);
    free(d->line_len);
    free(d->meta_off);
    free(d->meta_len);
    free(d);
}

/* Parses the JSON section (keys, templates, value columns) and the raw-lines column of a chunk
 * whose first d->n_parsed entries' forms are known; r must end exactly after them. */
static int parse_lines(store_rd_t *r, logs_dchunk_t *d, uint64_t n_raw, uint32_t rlen)
{
    jsec_t *j = d->j;
    size_t n = d->n_parsed;
    uint64_t n_keys = store__rd_uv(r);
    if (r->bad || n_keys > JSON_MAX_KEYS)
        return ERR_CORRUPT;
    for (uint64_t k = 0; k < n_keys; k++) {
        uint64_t len = store__rd_uv(r);
        j->keys[k] = (str_t){(const char *)store__rd_bytes(r, len), (size_t)len};
    }
    uint64_t n_tmpls = store__rd_uv(r);
    if (r->bad || n_tmpls > JSON_MAX_TEMPLATES)
        return ERR_CORRUPT;
    uint32_t used[JSON_MAX_TEMPLATES];
    for (uint64_t k = 0; k < n_tmpls; k++) {
        uint64_t len = store__rd_uv(r);
        store_rd_t tr = {store__rd_bytes(r, len), NULL, false};
        tr.end = tr.p ? tr.p + len : NULL;
        j->tmpl[k] = tr.p;
        uint64_t nf = store__rd_uv(&tr) >> 1;
        if (nf == 0 || nf > JSON_MAX_FIELDS)
            return ERR_CORRUPT;
        for (uint64_t f = 0; f < nf; f++)
            if (store__rd_uv(&tr) >= n_keys)
                return ERR_CORRUPT;
        if (tr.bad || tr.p != tr.end)
            return ERR_CORRUPT;
        used[k] = 0;
    }
    if (r->bad)
        return ERR_CORRUPT;
    for (size_t i = 0; i < n; i++) {
        if (d->form[i] > n_tmpls)
            return ERR_CORRUPT;
        if (d->form[i])
            used[d->form[i] - 1]++;
    }
    /* each key's column: as many lengths as the templates in use have fields of that key */
    uint64_t count[JSON_MAX_KEYS] = {0};
    for (uint64_t k = 0; k < n_tmpls; k++) {
        store_rd_t tr = {j->tmpl[k], d->raw.last, false};
        uint64_t nf = store__rd_uv(&tr) >> 1;
        for (uint64_t f = 0; f < nf; f++)
            count[store__rd_uv(&tr)] += used[k];
    }
    for (uint64_t k = 0; k < n_keys; k++) {
        j->vlen[k] = (store_rd_t){r->p, NULL, false};
        uint64_t total = 0;
        for (uint64_t f = 0; f < count[k] && !r->bad; f++) {
            uint64_t l = store__rd_uv(r);
            r->bad |= l > rlen;
            total += l;
        }
        j->vlen[k].end = r->p;
        j->vbytes[k] = store__rd_bytes(r, total);
        if (r->bad)
            return ERR_CORRUPT;
    }
    j->raw_len = (store_rd_t){r->p, NULL, false};
    uint64_t raw_total = 0;
    for (uint64_t i = 0; i < n_raw && !r->bad; i++) {
        uint64_t l = store__rd_uv(r);
        r->bad |= l > rlen;
        raw_total += l;
    }
    j->raw_len.end = r->p;
    j->raw = store__rd_bytes(r, raw_total);
    return r->bad || r->p != r->end ? ERR_CORRUPT : 0;
}

/* Rebuilds every line of a parsed chunk into d->lines (templates filled with their values, the
 * entry's timestamp put back) and points d->line at them. */
static int rebuild_lines(logs_dchunk_t *d)
{
    jsec_t *j = d->j;
    size_t n = d->n_parsed;
    buf_clear(&d->lines);
    buf_reserve(&d->lines, buf_len(&d->raw) + n * 40);
    for (size_t i = 0; i < n; i++) {
        size_t at = buf_len(&d->lines);
        if (d->form[i] == 0) {
            uint64_t len = store__rd_uv(&j->raw_len);
            buf_append(&d->lines, j->raw, (size_t)len);
            j->raw += len;
        } else {
            store_rd_t tr = {j->tmpl[d->form[i] - 1], d->raw.last, false};
            uint64_t h = store__rd_uv(&tr), nf = h >> 1;
            buf_putc(&d->lines, '{');
            for (uint64_t f = 0; f < nf; f++) {
                uint64_t k = store__rd_uv(&tr), len = store__rd_uv(&j->vlen[k]);
                if (f)
                    buf_puts(&d->lines, (h & 1) ? ", " : ",");
                buf_putc(&d->lines, '"');
                buf_put_str(&d->lines, j->keys[k]);
                buf_puts(&d->lines, (h & 1) ? "\": " : "\":");
                buf_append(&d->lines, j->vbytes[k], (size_t)len);
                j->vbytes[k] += len;
            }
            buf_putc(&d->lines, '}');
        }
        if (d->tsf[i]) {
            size_t off = (d->tsf[i] - 1) / TSF_COUNT, len = buf_len(&d->lines) - at;
            char tsr[40];
            size_t tn = ts_render(d->ts[i], (int)((d->tsf[i] - 1) % TSF_COUNT), tsr);
            if (off > len || tn == 0)
                return ERR_CORRUPT;
            buf_reserve(&d->lines, tn);
            uint8_t *p = d->lines.pos + at + off;
            memmove(p + tn, p, len - off);
            memcpy(p, tsr, tn);
            d->lines.last += tn;
        }
        d->line_len[i] = (uint32_t)(buf_len(&d->lines) - at);
        d->line[i] = (const char *)(uintptr_t)at; /* an offset until d->lines stops growing */
    }
    for (size_t i = 0; i < n; i++)
        d->line[i] = (const char *)d->lines.pos + (uintptr_t)d->line[i];
    return 0;
}

int logs__chunk_decode(logs_dchunk_t *d, uint32_t n_entries, int64_t min_ts, int64_t max_ts)
{
    uint32_t rlen = (uint32_t)buf_len(&d->raw);
    store_rd_t r = {d->raw.pos, d->raw.last, false};
    uint64_t n = store__rd_uv(&r);
    if (r.bad || n != n_entries || n > buf_len(&d->raw) / 4)
        return ERR_CORRUPT;
    if (n > d->cap) {
        d->cap = (size_t)n;
        d->ts = db__xrealloc(d->ts, d->cap * sizeof *d->ts);
        d->line = db__xrealloc(d->line, d->cap * sizeof *d->line);
        d->line_len = db__xrealloc(d->line_len, d->cap * sizeof *d->line_len);
        d->form = db__xrealloc(d->form, d->cap * sizeof *d->form);
        d->tsf = db__xrealloc(d->tsf, d->cap * sizeof *d->tsf);
        d->meta_off = db__xrealloc(d->meta_off, d->cap * sizeof *d->meta_off);
        d->meta_len = db__xrealloc(d->meta_len, d->cap * sizeof *d->meta_len);
    }
    uint64_t t = (uint64_t)min_ts;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t delta = store__rd_uv(&r);
        if (delta > (uint64_t)max_ts - t)
            return ERR_CORRUPT; /* also rejects overflow past max_ts */
        t += delta;
        d->ts[i] = (int64_t)t;
    }
    if (r.bad || d->ts[0] != min_ts || d->ts[n - 1] != max_ts)
        return ERR_CORRUPT;
    uint64_t n_raw = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t v = store__rd_uv(&r);
        if (v > JSON_MAX_TEMPLATES)
            return ERR_CORRUPT;
        d->form[i] = (uint32_t)v;
        n_raw += v == 0;
    }
    for (uint64_t i = 0; i < n; i++) {
        uint64_t v = store__rd_uv(&r);
        if (v > (uint64_t)rlen * TSF_COUNT + TSF_COUNT)
            return ERR_CORRUPT;
        d->tsf[i] = (uint32_t)v;
    }
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *p = r.p;
        store__rd_skip_labels(&r);
        if (r.bad)
            return ERR_CORRUPT;
        d->meta_off[i] = (uint32_t)(p - d->raw.pos);
        d->meta_len[i] = (uint32_t)(r.p - p);
    }
    if (!d->j && !(d->j = malloc(sizeof *d->j)))
        abort();
    d->n_parsed = (size_t)n;
    int rc;
    if ((rc = parse_lines(&r, d, n_raw, rlen)) != 0 || (rc = rebuild_lines(d)) != 0)
        return rc;
    d->n = (size_t)n;
    return 0;
}
