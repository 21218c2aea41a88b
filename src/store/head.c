/*
 * head.c - series table, appends with order/duplicate rules, out-of-order buffers, snapshots for
 * readers, truncation after a cut, and metric metadata.
 *
 * Series are found by labels hash in a u64map (collisions chained through next_hash and resolved
 * with labels_eq) and by id in a second u64map. Each series keeps closed chunks plus one open
 * chunk appender; a chunk is closed at HEAD_CHUNK_SAMPLES samples or when it would span more than
 * HEAD_CHUNK_RANGE_MS. Out-of-order samples live in a small sorted array per series; readers
 * merge it with the chunks and block writes fold it in.
 */
#include "store/head.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "skillscope: out of memory in the head\n");
        abort();
    }
    return q;
}

static uint64_t dbits(double v)
{
    uint64_t b;
    memcpy(&b, &v, 8);
    return b;
}

head_t *head_new(int64_t ooo_window_ms)
{
    head_t *h = calloc(1, sizeof *h);
    if (!h)
        abort();
    h->ooo_window_ms = ooo_window_ms;
    u64map_init(&h->by_hash);
    u64map_init(&h->by_id);
    u64map_init(&h->meta_by_hash);
    index_mem_init(&h->index);
    h->next_id = 1;
    h->min_t = INT64_MAX;
    h->max_t = INT64_MIN;
    return h;
}

static size_t series_drop_samples(head_series_t *s)
{
    size_t freed = 0;
    for (uint32_t i = 0; i < s->n_chunks; i++) {
        freed += s->chunks[i].len;
        free(s->chunks[i].data);
    }
    freed += s->app.cap + s->cap_ooo * 16 + s->cap_chunks * sizeof *s->chunks;
    free(s->chunks);
    s->chunks = NULL;
    s->n_chunks = s->cap_chunks = 0;
    chunk_app_deinit(&s->app);
    free(s->ooo_t);
    free(s->ooo_v);
    s->ooo_t = NULL;
    s->ooo_v = NULL;
    s->n_ooo = s->cap_ooo = 0;
    s->n_samples = 0;
    s->hmin = INT64_MAX;
    s->hmax = INT64_MIN;
    return freed;
}

void head_free(head_t *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n_series; i++) {
        series_drop_samples(h->series[i]);
        free(h->series[i]);
    }
    free(h->series);
    for (size_t i = 0; i < h->n_meta; i++) {
        free((char *)h->meta[i].metric.ptr);
        free((char *)h->meta[i].help.ptr);
        free((char *)h->meta[i].unit.ptr);
    }
    free(h->meta);
    u64map_deinit(&h->by_hash);
    u64map_deinit(&h->by_id);
    u64map_deinit(&h->meta_by_hash);
    index_mem_deinit(&h->index);
    free(h);
}

head_series_t *head_get(head_t *h, const labels_t *ls, uint64_t hash)
{
    uint64_t *slot = u64map_get(&h->by_hash, hash);
    for (head_series_t *s = slot ? (head_series_t *)(uintptr_t)*slot : NULL; s; s = s->next_hash)
        if (labels_eq(&s->ls, ls))
            return s;
    return NULL;
}

head_series_t *head_by_id(const head_t *h, uint64_t id)
{
    uint64_t *slot = id ? u64map_get(&h->by_id, hash_u64(id)) : NULL;
    return slot ? (head_series_t *)(uintptr_t)*slot : NULL;
}

head_series_t *head_create(head_t *h, const labels_t *ls, uint64_t hash, uint64_t id)
{
    size_t strs = 0;
    for (size_t i = 0; i < ls->n; i++)
        strs += ls->v[i].name.len + ls->v[i].value.len;
    size_t sz = sizeof(head_series_t) + ls->n * sizeof(label_t) + strs;
    head_series_t *s = calloc(1, sz);
    if (!s)
        abort();
    label_t *lv = (label_t *)(s + 1);
    char *p = (char *)(lv + ls->n);
    for (size_t i = 0; i < ls->n; i++) {
        str_t n = ls->v[i].name, v = ls->v[i].value;
        if (n.len)
            memcpy(p, n.ptr, n.len);
        lv[i].name = (str_t){p, n.len};
        p += n.len;
        if (v.len)
            memcpy(p, v.ptr, v.len);
        lv[i].value = (str_t){p, v.len};
        p += v.len;
    }
    s->ls = (labels_t){ls->n ? lv : NULL, ls->n};
    s->hash = hash;
    s->max_t = INT64_MIN;
    s->hmin = INT64_MAX;
    s->hmax = INT64_MIN;
    chunk_app_init(&s->app);
    if (!id)
        id = h->next_id;
    s->id = id;
    if (id >= h->next_id)
        h->next_id = id + 1;
    uint64_t *slot = u64map_get(&h->by_hash, hash);
    if (slot) {
        head_series_t *o = (head_series_t *)(uintptr_t)*slot;
        while (o->next_hash)
            o = o->next_hash;
        o->next_hash = s;
    } else {
        u64map_put(&h->by_hash, hash, (uint64_t)(uintptr_t)s);
    }
    u64map_put(&h->by_id, hash_u64(id), (uint64_t)(uintptr_t)s);
    if (h->n_series == h->cap_series) {
        h->cap_series = h->cap_series ? h->cap_series * 2 : 256;
        h->series = xrealloc(h->series, h->cap_series * sizeof *h->series);
    }
    /* Replay may create ids out of order (a checkpoint then older records); keep ascending. */
    size_t pos = h->n_series;
    while (pos > 0 && h->series[pos - 1]->id > id)
        pos--;
    if (pos < h->n_series) {
        memmove(h->series + pos + 1, h->series + pos, (h->n_series - pos) * sizeof *h->series);
        h->series[pos] = s;
        h->n_series++;
        /* Postings must stay ascending: rebuild (rare, replay only). */
        index_mem_deinit(&h->index);
        index_mem_init(&h->index);
        for (size_t i = 0; i < h->n_series; i++)
            index_mem_add(&h->index, h->series[i]->id, &h->series[i]->ls);
    } else {
        h->series[h->n_series++] = s;
        index_mem_add(&h->index, id, &s->ls);
    }
    h->bytes += sz + 64;
    return s;
}

void head_set_state(head_t *h, head_series_t *s, int64_t max_t, double last_v)
{
    (void)h;
    if (max_t > s->max_t || s->max_t == INT64_MIN) {
        s->max_t = max_t;
        s->last_v = last_v;
    }
}

static void note_sample(head_t *h, head_series_t *s, int64_t t)
{
    s->n_samples++;
    h->n_samples++;
    if (t < s->hmin)
        s->hmin = t;
    if (t > s->hmax)
        s->hmax = t;
    if (t < h->min_t)
        h->min_t = t;
    if (t > h->max_t)
        h->max_t = t;
}

static void close_chunk(head_t *h, head_series_t *s)
{
    if (s->n_chunks == s->cap_chunks) {
        uint32_t ncap = s->cap_chunks ? s->cap_chunks * 2 : 2;
        s->chunks = xrealloc(s->chunks, ncap * sizeof *s->chunks);
        h->bytes += (ncap - s->cap_chunks) * sizeof *s->chunks;
        s->cap_chunks = ncap;
    }
    head_chunk_t *c = &s->chunks[s->n_chunks++];
    int64_t mint = s->app.mint, maxt = s->app.t;
    uint16_t n = s->app.n;
    size_t cap = s->app.cap, len;
    c->data = chunk_app_take(&s->app, &len);
    c->len = (uint32_t)len;
    c->n = n;
    c->mint = mint;
    c->maxt = maxt;
    h->bytes -= cap - len;
    h->n_chunks++;
}

/* Looks t up among the in-order chunks: 1 and *v when present, 0 when not. */
static int find_in_chunks(head_series_t *s, int64_t t, double *v)
{
    for (uint32_t i = 0; i <= s->n_chunks; i++) {
        const uint8_t *p;
        size_t len;
        int64_t mint, maxt;
        if (i < s->n_chunks) {
            p = s->chunks[i].data;
            len = s->chunks[i].len;
            mint = s->chunks[i].mint;
            maxt = s->chunks[i].maxt;
        } else {
            if (!s->app.n)
                break;
            chunk_app_sync(&s->app);
            p = s->app.bytes;
            len = chunk_app_len(&s->app);
            mint = s->app.mint;
            maxt = s->app.t;
        }
        if (t < mint || t > maxt)
            continue;
        chunk_iter_t it;
        chunk_iter_init(&it, p, len);
        int64_t ct;
        double cv;
        while (chunk_iter_next(&it, &ct, &cv)) {
            if (ct == t) {
                *v = cv;
                return 1;
            }
            if (ct > t)
                break;
        }
        return 0;
    }
    return 0;
}

static head_append_result_t append_ooo(head_t *h, head_series_t *s, int64_t t, double v)
{
    double old;
    if (find_in_chunks(s, t, &old))
        return dbits(old) == dbits(v) ? HEAD_DUP : HEAD_ERR_DUPLICATE;
    uint32_t lo = 0, hi = s->n_ooo;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->ooo_t[mid] < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < s->n_ooo && s->ooo_t[lo] == t)
        return dbits(s->ooo_v[lo]) == dbits(v) ? HEAD_DUP : HEAD_ERR_DUPLICATE;
    if (s->n_ooo == s->cap_ooo) {
        uint32_t ncap = s->cap_ooo ? s->cap_ooo * 2 : 4;
        s->ooo_t = xrealloc(s->ooo_t, ncap * sizeof *s->ooo_t);
        s->ooo_v = xrealloc(s->ooo_v, ncap * sizeof *s->ooo_v);
        h->bytes += (ncap - s->cap_ooo) * 16;
        s->cap_ooo = ncap;
    }
    memmove(s->ooo_t + lo + 1, s->ooo_t + lo, (s->n_ooo - lo) * sizeof *s->ooo_t);
    memmove(s->ooo_v + lo + 1, s->ooo_v + lo, (s->n_ooo - lo) * sizeof *s->ooo_v);
    s->ooo_t[lo] = t;
    s->ooo_v[lo] = v;
    s->n_ooo++;
    note_sample(h, s, t);
    return HEAD_OK;
}

head_append_result_t head_append(head_t *h, head_series_t *s, int64_t t, double v)
{
    if (s->max_t != INT64_MIN && t <= s->max_t) {
        if (t == s->max_t)
            return dbits(s->last_v) == dbits(v) ? HEAD_DUP : HEAD_ERR_DUPLICATE;
        if (h->ooo_window_ms <= 0 || t < s->max_t - h->ooo_window_ms)
            return HEAD_ERR_OUT_OF_ORDER;
        return append_ooo(h, s, t, v);
    }
    if (s->app.n && (s->app.n >= HEAD_CHUNK_SAMPLES || t - s->app.mint >= HEAD_CHUNK_RANGE_MS))
        close_chunk(h, s);
    uint32_t cap0 = s->app.cap;
    chunk_app_append(&s->app, t, v);
    h->bytes += s->app.cap - cap0;
    s->max_t = t;
    s->last_v = v;
    note_sample(h, s, t);
    return HEAD_OK;
}

/* ---- metadata ---- */

static str_t dup_str(str_t s)
{
    char *p = malloc(s.len + 1);
    if (!p)
        abort();
    if (s.len)
        memcpy(p, s.ptr, s.len);
    p[s.len] = '\0';
    return (str_t){p, s.len};
}

bool head_set_meta(head_t *h, str_t metric, db_mtype_t type, str_t help, str_t unit)
{
    uint64_t key = hash_str(metric) | 1;
    uint64_t *slot = u64map_get(&h->meta_by_hash, key);
    head_meta_t *m = NULL;
    if (slot) {
        m = &h->meta[*slot - 1];
        if (!str_eq(m->metric, metric))
            m = NULL; /* a 64-bit collision: the later family keeps no metadata */
        if (!m)
            return false;
        if (m->type == type && str_eq(m->help, help) && str_eq(m->unit, unit))
            return false;
        free((char *)m->help.ptr);
        free((char *)m->unit.ptr);
    } else {
        if (h->n_meta == h->cap_meta) {
            h->cap_meta = h->cap_meta ? h->cap_meta * 2 : 64;
            h->meta = xrealloc(h->meta, h->cap_meta * sizeof *h->meta);
        }
        m = &h->meta[h->n_meta++];
        m->metric = dup_str(metric);
        u64map_put(&h->meta_by_hash, key, h->n_meta);
    }
    m->type = type;
    m->help = dup_str(help);
    m->unit = dup_str(unit);
    return true;
}

void head_meta_each(const head_t *h, str_t metric,
                    void (*cb)(void *arg, str_t metric, db_mtype_t type, str_t help, str_t unit),
                    void *arg)
{
    if (metric.len) {
        uint64_t *slot = u64map_get(&h->meta_by_hash, hash_str(metric) | 1);
        if (slot && str_eq(h->meta[*slot - 1].metric, metric)) {
            const head_meta_t *m = &h->meta[*slot - 1];
            cb(arg, m->metric, m->type, m->help, m->unit);
        }
        return;
    }
    for (size_t i = 0; i < h->n_meta; i++)
        cb(arg, h->meta[i].metric, h->meta[i].type, h->meta[i].help, h->meta[i].unit);
}

/* ---- reading ---- */

void head_select(head_t *h, const matcher_t *ms, size_t n, int64_t mint, int64_t maxt, arena_t *a,
                 head_series_t ***out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (!h->n_samples || h->max_t < mint || h->min_t > maxt)
        return;
    index_reader_t r = index_mem_reader(&h->index);
    postings_t p;
    index_select(&r, ms, n, a, &p);
    if (!p.n)
        return;
    head_series_t **v = arena_alloc(a, p.n * sizeof *v);
    size_t k = 0;
    for (size_t i = 0; i < p.n; i++) {
        head_series_t *s = head_by_id(h, p.v[i]);
        if (s && s->n_samples && s->hmin <= maxt && s->hmax >= mint)
            v[k++] = s;
    }
    *out = v;
    *n_out = k;
}

static const uint8_t *copy_bytes(arena_t *a, const uint8_t *p, size_t n)
{
    uint8_t *q = arena_alloc(a, n ? n : 1);
    if (n)
        memcpy(q, p, n);
    return q;
}

void head_series_snapshot(head_series_t *s, int64_t mint, int64_t maxt, arena_t *a,
                          head_snap_t *out)
{
    memset(out, 0, sizeof *out);
    size_t nc = 0;
    out->chunks = arena_alloc(a, (s->n_chunks + 1) * sizeof *out->chunks);
    for (uint32_t i = 0; i < s->n_chunks; i++) {
        const head_chunk_t *c = &s->chunks[i];
        if (c->maxt < mint || c->mint > maxt)
            continue;
        out->chunks[nc++] =
            (head_snap_chunk_t){copy_bytes(a, c->data, c->len), c->len, c->mint, c->maxt};
    }
    if (s->app.n && s->app.t >= mint && s->app.mint <= maxt) {
        chunk_app_sync(&s->app);
        size_t len = chunk_app_len(&s->app);
        out->chunks[nc++] =
            (head_snap_chunk_t){copy_bytes(a, s->app.bytes, len), len, s->app.mint, s->app.t};
    }
    out->n_chunks = nc;
    uint32_t lo = 0;
    while (lo < s->n_ooo && s->ooo_t[lo] < mint)
        lo++;
    uint32_t hi = lo;
    while (hi < s->n_ooo && s->ooo_t[hi] <= maxt)
        hi++;
    if (hi > lo) {
        out->n_ooo = hi - lo;
        int64_t *t = arena_alloc(a, out->n_ooo * sizeof *t);
        double *v = arena_alloc(a, out->n_ooo * sizeof *v);
        memcpy(t, s->ooo_t + lo, out->n_ooo * sizeof *t);
        memcpy(v, s->ooo_v + lo, out->n_ooo * sizeof *v);
        out->ooo_t = t;
        out->ooo_v = v;
    }
}

void head_series_samples(head_series_t *s, void (*cb)(void *arg, int64_t t, double v), void *arg)
{
    uint32_t oi = 0;
    for (uint32_t i = 0; i <= s->n_chunks; i++) {
        const uint8_t *p;
        size_t len;
        if (i < s->n_chunks) {
            p = s->chunks[i].data;
            len = s->chunks[i].len;
        } else {
            if (!s->app.n)
                break;
            chunk_app_sync(&s->app);
            p = s->app.bytes;
            len = chunk_app_len(&s->app);
        }
        chunk_iter_t it;
        chunk_iter_init(&it, p, len);
        int64_t t;
        double v;
        while (chunk_iter_next(&it, &t, &v)) {
            while (oi < s->n_ooo && s->ooo_t[oi] < t) {
                cb(arg, s->ooo_t[oi], s->ooo_v[oi]);
                oi++;
            }
            if (oi < s->n_ooo && s->ooo_t[oi] == t)
                oi++; /* cannot happen (appends check), but never emit a timestamp twice */
            cb(arg, t, v);
        }
    }
    for (; oi < s->n_ooo; oi++)
        cb(arg, s->ooo_t[oi], s->ooo_v[oi]);
}

void head_truncate(head_t *h, int64_t idle_before_ms)
{
    size_t k = 0;
    bool removed = false;
    for (size_t i = 0; i < h->n_series; i++) {
        head_series_t *s = h->series[i];
        series_drop_samples(s);
        if (s->max_t >= idle_before_ms) {
            h->series[k++] = s;
            continue;
        }
        removed = true;
        u64map_del(&h->by_id, hash_u64(s->id));
        uint64_t *slot = u64map_get(&h->by_hash, s->hash);
        head_series_t *first = slot ? (head_series_t *)(uintptr_t)*slot : NULL;
        if (first == s) {
            if (s->next_hash)
                *slot = (uint64_t)(uintptr_t)s->next_hash;
            else
                u64map_del(&h->by_hash, s->hash);
        } else {
            for (head_series_t *o = first; o; o = o->next_hash)
                if (o->next_hash == s) {
                    o->next_hash = s->next_hash;
                    break;
                }
        }
        free(s);
    }
    h->n_series = k;
    if (removed) {
        index_mem_deinit(&h->index);
        index_mem_init(&h->index);
        for (size_t i = 0; i < h->n_series; i++)
            index_mem_add(&h->index, h->series[i]->id, &h->series[i]->ls);
    }
    h->n_samples = 0;
    h->n_chunks = 0;
    h->min_t = INT64_MAX;
    h->max_t = INT64_MIN;
    /* Recount: per-series sizes drift with rounding; start from the live structures. */
    h->bytes = 0;
    for (size_t i = 0; i < h->n_series; i++)
        h->bytes += sizeof(head_series_t) + 64 + h->series[i]->ls.n * sizeof(label_t);
}
