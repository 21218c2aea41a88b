/*
 * db_read.c - the facade's read path (store/db.h): metric selections and their sample iterators,
 * label names and values, metadata, traces and span scans, and log queries, each merged over the
 * loaded blocks and the in-memory head.
 *
 * Metrics: a selection gathers, per matching series, chunk references from every overlapping
 * block and a snapshot of the head's chunks and out-of-order samples; db_sample_next merges them
 * with a small min-heap ordered by (timestamp, source age) and drops repeated timestamps, so the
 * oldest source wins on a conflict. A source is opened only once the merge reaches its first
 * timestamp. Most series need no merge: their chunks follow each other without overlapping in
 * time and there are no out-of-order samples. Such a series is read "linearly", one chunk after
 * the other with a single decoder and no heap, and db_sample_read decodes it in bulk; chunks
 * outside [mint, maxt] (or before a seek) are never opened.
 *
 * Spans and logs: the blocks whose time range overlaps the query are handed, with the head, to
 * the span and log stores (spans.c, logs.c), which do the searching; traces are deduplicated here
 * because a span can be both in a block and in a replayed WAL.
 */
#include "store/db.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "store/block.h"
#include "store/chunk.h"
#include "store/head.h"
#include "store/index.h"
#include "store/internal.h"
#include "store/logs.h"
#include "store/spans.h"

/* ---- reads: metrics ---- */

typedef struct src {
    block_t *b; /* NULL: p/len hold a head snapshot */
    uint64_t off;
    const uint8_t *p;
    size_t len;
    int64_t mint, maxt;
    uint32_t prio;
} src_t;

typedef struct sel_series {
    labels_t ls;
    src_t *srcs;
    uint32_t n_srcs;
    uint32_t seq;
    int64_t *ooo_t;
    double *ooo_v;
    uint32_t n_ooo, ooo_prio;
} sel_series_t;

typedef struct cursor {
    chunk_iter_t it;
    bool ooo;
    uint32_t oi;
    int64_t t, maxt;
    double v;
    uint32_t prio;
} cursor_t;

struct db_series_iter {
    sel_series_t *v;
    size_t n, i; /* i: current + 1 (0 before the first) */
    int64_t mint, maxt;
    cursor_t *heap;
    size_t n_heap, cap_heap;
    arena_t *a;
    uint32_t next_src;
    bool ooo_opened, have_peek;
    int64_t lb, last_t, peek_t;
    double peek_v;
    bool linear;   /* current series' sources do not overlap and it has no out-of-order part */
    bool lin_open; /* linear: lin holds the open chunk (sources before next_src are done) */
    chunk_iter_t lin;
};

static bool cur_less(const cursor_t *x, const cursor_t *y)
{
    return x->t < y->t || (x->t == y->t && x->prio < y->prio);
}

static void heap_push(db_series_iter_t *it, const cursor_t *c)
{
    if (it->n_heap == it->cap_heap) {
        size_t ncap = it->cap_heap ? it->cap_heap * 2 : 8;
        cursor_t *nh = arena_alloc(it->a, ncap * sizeof *nh);
        if (it->n_heap)
            memcpy(nh, it->heap, it->n_heap * sizeof *nh);
        it->heap = nh;
        it->cap_heap = ncap;
    }
    size_t i = it->n_heap++;
    it->heap[i] = *c;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cur_less(&it->heap[i], &it->heap[p]))
            break;
        cursor_t t = it->heap[i];
        it->heap[i] = it->heap[p];
        it->heap[p] = t;
        i = p;
    }
}

static void heap_pop(db_series_iter_t *it, cursor_t *out)
{
    *out = it->heap[0];
    it->heap[0] = it->heap[--it->n_heap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < it->n_heap && cur_less(&it->heap[l], &it->heap[m]))
            m = l;
        if (r < it->n_heap && cur_less(&it->heap[r], &it->heap[m]))
            m = r;
        if (m == i)
            break;
        cursor_t t = it->heap[i];
        it->heap[i] = it->heap[m];
        it->heap[m] = t;
        i = m;
    }
}

static bool cur_step(const sel_series_t *s, cursor_t *c)
{
    if (c->ooo) {
        if (c->oi >= s->n_ooo)
            return false;
        c->t = s->ooo_t[c->oi];
        c->v = s->ooo_v[c->oi];
        c->oi++;
        return true;
    }
    return chunk_iter_next(&c->it, &c->t, &c->v);
}

static void open_sources(db_series_iter_t *it, const sel_series_t *s)
{
    while (it->next_src < s->n_srcs) {
        const src_t *x = &s->srcs[it->next_src];
        if (it->n_heap && x->mint > it->heap[0].t)
            break;
        it->next_src++;
        if (x->maxt < it->lb || x->mint > it->maxt)
            continue;
        const uint8_t *p = x->p;
        size_t len = x->len;
        uint8_t enc = CHUNK_ENC_XOR;
        if (x->b) {
            if (block_chunk(x->b, x->off, &enc, &p, &len) != 0) {
                log_error("corrupt chunk skipped", "block=%s offset=%llu", block_dir(x->b),
                          (unsigned long long)x->off);
                continue;
            }
        }
        cursor_t c;
        memset(&c, 0, sizeof c);
        chunk_iter_init_enc(&c.it, enc, p, len);
        c.maxt = x->maxt;
        c.prio = x->prio;
        if (chunk_iter_seek(&c.it, it->lb, &c.t, &c.v))
            heap_push(it, &c);
    }
    if (!it->ooo_opened) {
        it->ooo_opened = true;
        if (s->n_ooo) {
            cursor_t c;
            memset(&c, 0, sizeof c);
            c.ooo = true;
            c.maxt = INT64_MAX;
            c.prio = s->ooo_prio;
            bool ok;
            while ((ok = cur_step(s, &c)) && c.t < it->lb)
                ;
            if (ok)
                heap_push(it, &c);
        }
    }
}

/* Linear mode: opens the next source that can hold samples in [lb, maxt]; false when none. */
static bool linear_open(db_series_iter_t *it, const sel_series_t *s)
{
    while (it->next_src < s->n_srcs) {
        const src_t *x = &s->srcs[it->next_src++];
        if (x->maxt < it->lb)
            continue;
        if (x->mint > it->maxt) {
            it->next_src = s->n_srcs;
            return false;
        }
        const uint8_t *p = x->p;
        size_t len = x->len;
        uint8_t enc = CHUNK_ENC_XOR;
        if (x->b && block_chunk(x->b, x->off, &enc, &p, &len) != 0) {
            log_error("corrupt chunk skipped", "block=%s offset=%llu", block_dir(x->b),
                      (unsigned long long)x->off);
            continue;
        }
        chunk_iter_init_enc(&it->lin, enc, p, len);
        it->lin_open = true;
        return true;
    }
    return false;
}

/* Linear mode: up to cap samples of the current series into out (lb, maxt and last_t applied).
 * Chunks are decoded by runs of up to 256 samples. */
static size_t linear_read(db_series_iter_t *it, db_sample_t *out, size_t cap)
{
    const sel_series_t *s = &it->v[it->i - 1];
    size_t n = 0;
    int64_t lb = it->lb, mx = it->maxt, last = it->last_t;
    int64_t tb[256];
    double vb[256];
    while (n < cap) {
        if (!it->lin_open && !linear_open(it, s))
            break;
        size_t want = cap - n < 256 ? cap - n : 256;
        size_t got = chunk_iter_read(&it->lin, tb, vb, want);
        if (!got) {
            it->lin_open = false;
            continue;
        }
        bool past = false;
        for (size_t k = 0; k < got; k++) {
            int64_t t = tb[k];
            if (t > mx) {
                past = true;
                break;
            }
            if (t < lb || t <= last)
                continue;
            last = t;
            out[n].t_ms = t;
            out[n].v = vb[k];
            n++;
        }
        if (past) {
            it->lin_open = false;
            it->next_src = s->n_srcs;
            break;
        }
    }
    it->last_t = last;
    return n;
}

static bool merge_next(db_series_iter_t *it, int64_t *t, double *v)
{
    const sel_series_t *s = &it->v[it->i - 1];
    if (it->linear) {
        db_sample_t smp;
        if (!linear_read(it, &smp, 1))
            return false;
        *t = smp.t_ms;
        *v = smp.v;
        return true;
    }
    for (;;) {
        open_sources(it, s);
        if (!it->n_heap)
            return false;
        cursor_t c;
        heap_pop(it, &c);
        int64_t ct = c.t;
        double cv = c.v;
        if (c.maxt >= it->lb && cur_step(s, &c))
            heap_push(it, &c);
        if (ct > it->maxt) {
            it->n_heap = 0;
            it->next_src = s->n_srcs;
            return false;
        }
        if (ct < it->lb || ct <= it->last_t)
            continue;
        it->last_t = ct;
        *t = ct;
        *v = cv;
        return true;
    }
}

static void reset_series(db_series_iter_t *it, int64_t lb)
{
    it->n_heap = 0;
    it->next_src = 0;
    it->ooo_opened = false;
    it->have_peek = false;
    it->lin_open = false;
    it->lb = lb > it->mint ? lb : it->mint;
    it->last_t = INT64_MIN;
}

/* True when the series' sources (sorted by mint) follow each other without overlapping. */
static bool series_linear(const sel_series_t *s)
{
    if (s->n_ooo)
        return false;
    for (uint32_t j = 1; j < s->n_srcs; j++)
        if (s->srcs[j].mint <= s->srcs[j - 1].maxt)
            return false;
    return true;
}

bool db_series_next(db_series_iter_t *it)
{
    while (it->i < it->n) {
        it->i++;
        it->linear = series_linear(&it->v[it->i - 1]);
        reset_series(it, it->mint);
        if (merge_next(it, &it->peek_t, &it->peek_v)) {
            it->have_peek = true;
            return true;
        }
    }
    return false;
}

size_t db_series_count(const db_series_iter_t *it) { return it->n; }

db_series_iter_t *db_select_slice(const db_series_iter_t *it, size_t from, size_t to, arena_t *a)
{
    db_series_iter_t *s = ARENA_NEW(a, db_series_iter_t);
    if (to > it->n)
        to = it->n;
    if (from > to)
        from = to;
    s->a = a;
    s->mint = it->mint;
    s->maxt = it->maxt;
    s->v = it->v + from;
    s->n = to - from;
    return s;
}

const labels_t *db_series_labels(const db_series_iter_t *it)
{
    return it->i ? &it->v[it->i - 1].ls : NULL;
}

bool db_sample_next(db_series_iter_t *it, int64_t *ts_ms, double *v)
{
    if (!it->i || it->i > it->n)
        return false;
    if (it->have_peek) {
        it->have_peek = false;
        *ts_ms = it->peek_t;
        *v = it->peek_v;
        return true;
    }
    return merge_next(it, ts_ms, v);
}

size_t db_sample_read(db_series_iter_t *it, db_sample_t *out, size_t cap)
{
    if (!it->i || it->i > it->n || !cap)
        return 0;
    size_t n = 0;
    if (it->have_peek) {
        it->have_peek = false;
        out[n].t_ms = it->peek_t;
        out[n].v = it->peek_v;
        n++;
    }
    if (it->linear)
        return n + linear_read(it, out + n, cap - n);
    while (n < cap && merge_next(it, &out[n].t_ms, &out[n].v))
        n++;
    return n;
}

void db_sample_seek(db_series_iter_t *it, int64_t ts_ms)
{
    if (!it->i)
        return;
    if (ts_ms > it->last_t) {
        /* Forward: skip lazily. */
        if (ts_ms > it->lb)
            it->lb = ts_ms;
        if (it->have_peek && it->peek_t < ts_ms)
            it->have_peek = false;
        return;
    }
    reset_series(it, ts_ms);
}

typedef struct sel_builder {
    arena_t *a;
    sel_series_t *v;
    size_t n, cap;
} sel_builder_t;

static sel_series_t *sel_add(sel_builder_t *sb)
{
    if (sb->n == sb->cap) {
        size_t ncap = sb->cap ? sb->cap * 2 : 64;
        sel_series_t *nv = arena_alloc(sb->a, ncap * sizeof *nv);
        if (sb->n)
            memcpy(nv, sb->v, sb->n * sizeof *nv);
        sb->v = nv;
        sb->cap = ncap;
    }
    sel_series_t *s = &sb->v[sb->n];
    memset(s, 0, sizeof *s);
    s->seq = (uint32_t)sb->n++;
    return s;
}

static int cmp_sel(const void *a, const void *b)
{
    const sel_series_t *x = a, *y = b;
    int c = labels_cmp(&x->ls, &y->ls);
    return c ? c : (x->seq < y->seq ? -1 : x->seq > y->seq);
}

static int cmp_src(const void *a, const void *b)
{
    const src_t *x = a, *y = b;
    if (x->mint != y->mint)
        return x->mint < y->mint ? -1 : 1;
    return x->prio < y->prio ? -1 : x->prio > y->prio;
}

static bool metrics_overlap(const block_meta_t *m, int64_t mint, int64_t maxt)
{
    return m->n_series && m->m_mint <= maxt && m->m_maxt >= mint;
}

/* Every matching series with chunks overlapping [mint, maxt], merged over sources, sorted. */
static void build_selection(db_t *db, const matcher_t *ms, size_t n, int64_t mint, int64_t maxt,
                            arena_t *a, sel_series_t **out, size_t *n_out)
{
    sel_builder_t sb = {a, NULL, 0, 0};
    for (size_t bi = 0; bi < db->n_blocks; bi++) {
        block_t *b = db->blocks[bi].b;
        if (!metrics_overlap(block_meta(b), mint, maxt))
            continue;
        index_reader_t r = block_index_reader(b);
        postings_t p;
        index_select(&r, ms, n, a, &p);
        for (size_t i = 0; i < p.n; i++) {
            labels_t ls;
            block_chunk_ref_t *c;
            size_t nc;
            if (block_series(b, p.v[i], a, &ls, &c, &nc) != 0)
                continue;
            size_t k = 0;
            for (size_t j = 0; j < nc; j++)
                if (c[j].maxt >= mint && c[j].mint <= maxt)
                    k++;
            if (!k)
                continue;
            sel_series_t *s = sel_add(&sb);
            s->ls = ls;
            s->srcs = arena_alloc(a, k * sizeof *s->srcs);
            for (size_t j = 0; j < nc; j++)
                if (c[j].maxt >= mint && c[j].mint <= maxt)
                    s->srcs[s->n_srcs++] =
                        (src_t){b, c[j].off, NULL, 0, c[j].mint, c[j].maxt, (uint32_t)bi};
        }
    }
    head_series_t **hs;
    size_t nh;
    head_select(db->head, ms, n, mint, maxt, a, &hs, &nh);
    uint32_t hprio = (uint32_t)db->n_blocks;
    for (size_t i = 0; i < nh; i++) {
        head_snap_t snap;
        head_series_snapshot(hs[i], mint, maxt, a, &snap);
        if (!snap.n_chunks && !snap.n_ooo)
            continue;
        sel_series_t *s = sel_add(&sb);
        s->ls = labels_copy(&hs[i]->ls, a);
        s->srcs = arena_alloc(a, (snap.n_chunks + 1) * sizeof *s->srcs);
        for (size_t j = 0; j < snap.n_chunks; j++)
            s->srcs[s->n_srcs++] = (src_t){NULL,
                                           0,
                                           snap.chunks[j].p,
                                           snap.chunks[j].len,
                                           snap.chunks[j].mint,
                                           snap.chunks[j].maxt,
                                           hprio};
        s->ooo_t = snap.ooo_t;
        s->ooo_v = snap.ooo_v;
        s->n_ooo = (uint32_t)snap.n_ooo;
        s->ooo_prio = hprio;
    }
    if (sb.n > 1)
        qsort(sb.v, sb.n, sizeof *sb.v, cmp_sel);
    /* Merge entries with equal label sets. */
    size_t k = 0;
    for (size_t i = 0; i < sb.n;) {
        size_t j = i + 1;
        while (j < sb.n && labels_eq(&sb.v[i].ls, &sb.v[j].ls))
            j++;
        sel_series_t m = sb.v[i];
        if (j - i > 1) {
            uint32_t total = 0;
            for (size_t q = i; q < j; q++)
                total += sb.v[q].n_srcs;
            src_t *srcs = arena_alloc(a, (total + 1) * sizeof *srcs);
            uint32_t ns = 0;
            for (size_t q = i; q < j; q++) {
                memcpy(srcs + ns, sb.v[q].srcs, sb.v[q].n_srcs * sizeof *srcs);
                ns += sb.v[q].n_srcs;
                if (sb.v[q].n_ooo) {
                    m.ooo_t = sb.v[q].ooo_t;
                    m.ooo_v = sb.v[q].ooo_v;
                    m.n_ooo = sb.v[q].n_ooo;
                    m.ooo_prio = sb.v[q].ooo_prio;
                }
            }
            qsort(srcs, ns, sizeof *srcs, cmp_src);
            m.srcs = srcs;
            m.n_srcs = ns;
        }
        sb.v[k++] = m;
        i = j;
    }
    *out = sb.v;
    *n_out = k;
}

int db_select(db_t *db, const matcher_t *ms, size_t n, int64_t mint_ms, int64_t maxt_ms, arena_t *a,
              db_series_iter_t **out, err_t *err)
{
    (void)err;
    db_series_iter_t *it = ARENA_NEW(a, db_series_iter_t);
    it->a = a;
    it->mint = mint_ms;
    it->maxt = maxt_ms;
    if (mint_ms <= maxt_ms)
        build_selection(db, ms, n, mint_ms, maxt_ms, a, &it->v, &it->n);
    *out = it;
    return 0;
}

typedef struct strset {
    arena_t *a;
    str_t *v;
    size_t n, cap;
} strset_t;

static void strset_add(void *arg, str_t s)
{
    strset_t *ss = arg;
    if (ss->n == ss->cap) {
        size_t ncap = ss->cap ? ss->cap * 2 : 64;
        str_t *nv = arena_alloc(ss->a, ncap * sizeof *nv);
        if (ss->n)
            memcpy(nv, ss->v, ss->n * sizeof *nv);
        ss->v = nv;
        ss->cap = ncap;
    }
    ss->v[ss->n++] = s;
}

static int cmp_str_p(const void *a, const void *b)
{
    return str_cmp(*(const str_t *)a, *(const str_t *)b);
}

/* Sorts, removes duplicates and copies the survivors into the arena. */
static void strset_finish(strset_t *ss, str_t **out, size_t *n_out)
{
    if (ss->n > 1)
        qsort(ss->v, ss->n, sizeof *ss->v, cmp_str_p);
    size_t k = 0;
    for (size_t i = 0; i < ss->n; i++)
        if (!k || !str_eq(ss->v[k - 1], ss->v[i]))
            ss->v[k++] = ss->v[i];
    for (size_t i = 0; i < k; i++)
        ss->v[i] = arena_str(ss->a, ss->v[i]);
    *out = ss->v;
    *n_out = k;
}

static bool head_overlaps(const db_t *db, int64_t mint, int64_t maxt)
{
    return db->head->n_samples && db->head->min_t <= maxt && db->head->max_t >= mint;
}

int db_label_names(db_t *db, const matcher_t *ms, size_t n, int64_t mint_ms, int64_t maxt_ms,
                   arena_t *a, str_t **out, size_t *n_out, err_t *err)
{
    (void)err;
    strset_t ss = {a, NULL, 0, 0};
    if (n == 0) {
        for (size_t i = 0; i < db->n_blocks; i++)
            if (metrics_overlap(block_meta(db->blocks[i].b), mint_ms, maxt_ms))
                block_label_names(db->blocks[i].b, strset_add, &ss);
        if (head_overlaps(db, mint_ms, maxt_ms))
            index_mem_names(&db->head->index, strset_add, &ss);
    } else {
        sel_series_t *v;
        size_t nv;
        build_selection(db, ms, n, mint_ms, maxt_ms, a, &v, &nv);
        for (size_t i = 0; i < nv; i++)
            for (size_t j = 0; j < v[i].ls.n; j++)
                strset_add(&ss, v[i].ls.v[j].name);
    }
    strset_finish(&ss, out, n_out);
    return 0;
}

int db_label_values(db_t *db, str_t name, const matcher_t *ms, size_t n, int64_t mint_ms,
                    int64_t maxt_ms, arena_t *a, str_t **out, size_t *n_out, err_t *err)
{
    (void)err;
    strset_t ss = {a, NULL, 0, 0};
    if (n == 0) {
        for (size_t i = 0; i < db->n_blocks; i++)
            if (metrics_overlap(block_meta(db->blocks[i].b), mint_ms, maxt_ms))
                block_label_values(db->blocks[i].b, name, strset_add, &ss);
        if (head_overlaps(db, mint_ms, maxt_ms))
            index_mem_values(&db->head->index, name, strset_add, &ss);
    } else {
        sel_series_t *v;
        size_t nv;
        build_selection(db, ms, n, mint_ms, maxt_ms, a, &v, &nv);
        for (size_t i = 0; i < nv; i++)
            for (size_t j = 0; j < v[i].ls.n; j++)
                if (str_eq(v[i].ls.v[j].name, name))
                    strset_add(&ss, v[i].ls.v[j].value);
    }
    strset_finish(&ss, out, n_out);
    return 0;
}

void db_metadata(db_t *db, str_t metric,
                 void (*cb)(void *arg, str_t metric, db_mtype_t type, str_t help, str_t unit),
                 void *arg)
{
    head_meta_each(db->head, metric, cb, arg);
}

/* ---- reads: spans ---- */

typedef struct span_gather {
    arena_t a;
    db_span_t *v;
    size_t n, cap;
} span_gather_t;

static void gather_span(void *arg, const db_span_t *s)
{
    span_gather_t *g = arg;
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 64;
        g->v = db__xrealloc(g->v, g->cap * sizeof *g->v);
    }
    db_span_t *d = &g->v[g->n++];
    *d = *s;
    d->name = arena_str(&g->a, s->name);
    d->service_name = arena_str(&g->a, s->service_name);
    d->resource_pb = arena_str(&g->a, s->resource_pb);
    d->scope_pb = arena_str(&g->a, s->scope_pb);
    d->span_pb = arena_str(&g->a, s->span_pb);
}

static int cmp_span(const void *a, const void *b)
{
    const db_span_t *x = a, *y = b;
    if (x->start_ns != y->start_ns)
        return x->start_ns < y->start_ns ? -1 : 1;
    return memcmp(x->span_id, y->span_id, 8);
}

static bool spans_overlap(const block_meta_t *m, int64_t mint, int64_t maxt)
{
    return m->n_spans && (maxt <= 0 || (m->span_min_ns <= maxt && m->span_max_ns >= mint));
}

int db_trace_get(db_t *db, const uint8_t trace_id[16], int64_t mint_ns, int64_t maxt_ns,
                 void (*cb)(void *arg, const db_span_t *s), void *arg)
{
    span_gather_t g;
    memset(&g, 0, sizeof g);
    arena_init(&g.a, 16384);
    int64_t lo = maxt_ns > 0 ? mint_ns : INT64_MIN, hi = maxt_ns > 0 ? maxt_ns : INT64_MAX;
    for (size_t i = 0; i < db->n_blocks; i++)
        if (db->blocks[i].spans && spans_overlap(block_meta(db->blocks[i].b), lo, hi))
            spans_file_trace(db->blocks[i].spans, trace_id, lo, hi, gather_span, &g);
    spans_head_trace(db->spans, trace_id, lo, hi, gather_span, &g);
    if (g.n > 1)
        qsort(g.v, g.n, sizeof *g.v, cmp_span);
    size_t delivered = 0;
    for (size_t i = 0; i < g.n; i++) {
        /* The same span from a block and a replayed WAL: deliver once. */
        if (i && g.v[i].start_ns == g.v[i - 1].start_ns &&
            memcmp(g.v[i].span_id, g.v[i - 1].span_id, 8) == 0)
            continue;
        cb(arg, &g.v[i]);
        delivered++;
    }
    free(g.v);
    arena_deinit(&g.a);
    return delivered ? 0 : ERR_NOTFOUND;
}

void db_spans_scan(db_t *db, int64_t mint_ns, int64_t maxt_ns,
                   bool (*cb)(void *arg, const db_span_t *s), void *arg)
{
    for (size_t i = 0; i < db->n_blocks; i++) {
        if (!db->blocks[i].spans || !spans_overlap(block_meta(db->blocks[i].b), mint_ns, maxt_ns))
            continue;
        if (!spans_file_scan(db->blocks[i].spans, mint_ns, maxt_ns, cb, arg))
            return;
    }
    spans_head_scan(db->spans, mint_ns, maxt_ns, cb, arg);
}

/* ---- reads: logs ---- */

static logs_file_t **log_files(db_t *db, int64_t mint_ns, int64_t maxt_ns, size_t *n)
{
    logs_file_t **v = db__xrealloc(NULL, (db->n_blocks + 1) * sizeof *v);
    size_t k = 0;
    for (size_t i = 0; i < db->n_blocks; i++) {
        const block_meta_t *m = block_meta(db->blocks[i].b);
        if (db->blocks[i].logs && m->log_min_ns <= maxt_ns && m->log_max_ns >= mint_ns)
            v[k++] = db->blocks[i].logs;
    }
    *n = k;
    return v;
}

int db_logs_select(db_t *db, const matcher_t *ms, size_t n, int64_t mint_ns, int64_t maxt_ns,
                   bool backward, size_t limit, bool (*cb)(void *arg, const db_log_entry_t *e),
                   void *arg, err_t *err)
{
    size_t nf;
    logs_file_t **f = log_files(db, mint_ns, maxt_ns, &nf);
    int rc = logs_select(db->logs, f, nf, ms, n, mint_ns, maxt_ns, backward, limit, cb, arg, err);
    free(f);
    return rc;
}

int db_log_label_names(db_t *db, int64_t mint_ns, int64_t maxt_ns, arena_t *a, str_t **out,
                       size_t *n_out, err_t *err)
{
    (void)err;
    size_t nf;
    logs_file_t **f = log_files(db, mint_ns, maxt_ns, &nf);
    int rc = logs_label_names(db->logs, f, nf, mint_ns, maxt_ns, a, out, n_out);
    free(f);
    return rc;
}

int db_log_label_values(db_t *db, str_t name, int64_t mint_ns, int64_t maxt_ns, arena_t *a,
                        str_t **out, size_t *n_out, err_t *err)
{
    (void)err;
    size_t nf;
    logs_file_t **f = log_files(db, mint_ns, maxt_ns, &nf);
    int rc = logs_label_values(db->logs, f, nf, name, mint_ns, maxt_ns, a, out, n_out);
    free(f);
    return rc;
}
