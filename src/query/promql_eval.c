/*
 * promql_eval.c - the PromQL evaluator core: steps, selectors, subqueries, result assembly.
 *
 * Every node is evaluated once over all steps of the query (an instant query is a range query of
 * one step), as Prometheus' range evaluation does. An instant vector is a list of series, each with
 * a dense value array and a presence byte per step; since a series' labels are fixed along the
 * steps, operators and aggregations match series once and then walk the steps. A range vector
 * keeps the raw points of each series (stale markers dropped) covering every step's window
 * (te - range, te], so range functions compute their windows per step with binary searches.
 *
 * Selectors stream series from db_select over the union of all steps' windows; pqe__rows turns
 * each selected series into one row of values per step (decoded once, on worker threads by
 * batches) and hands the rows to a sink in selection order, so aggregations fold them without
 * the input vector ever being whole (see pqe__stream in internal.h). An instant
 * selector at te returns the newest sample in (te - lookback, te] unless it is the stale NaN.
 * Subqueries evaluate their expression at absolute multiples of the subquery step and turn the
 * result into a range vector. `__name__` is only marked for removal (delayed name removal) and
 * dropped when the result is assembled, where series that then share a label set are merged or,
 * at the same step, rejected.
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "query/internal.h"
#include "query/promql.h"

#define STALE_NAN_BITS 0x7ff0000000000002ULL

void promql_opts_default(pq_opts_t *o)
{
    o->lookback_ms = 5 * 60 * 1000;
    o->timeout_ms = 0;
    o->max_samples = 50000000;
    o->default_subquery_step_ms = 60 * 1000;
}

static bool is_stale(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b == STALE_NAN_BITS;
}

int pqe__check(pqe_ctx_t *c)
{
    if (c->deadline_ns && clock_mono_ns() > c->deadline_ns)
        return err_set(c->err, ERR_TIMEOUT, "query timed out in query execution");
    return 0;
}

void pqe__annotate(pqe_ctx_t *c, bool warn, const pq_node_t *at, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char *s = arena_sprintf(c->a, "PromQL %s: %s (%d:%d)", warn ? "warning" : "info", msg,
                            at->pos.line, at->pos.col);
    char ***list = warn ? &c->ann->warns : &c->ann->infos;
    size_t *n = warn ? &c->ann->n_warns : &c->ann->n_infos;
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*list)[i], s))
            return;
    char **nl = ARENA_ARRAY(c->a, char *, *n + 2);
    if (*n)
        memcpy(nl, *list, *n * sizeof *nl);
    nl[(*n)++] = s;
    nl[*n] = NULL;
    *list = nl;
}

static int count_samples(pqe_ctx_t *c, uint64_t n)
{
    if (c->o->max_samples && n > c->o->max_samples)
        return err_set(c->err, ERR_TOOBIG,
                       "query processing would load too many samples into memory in query "
                       "execution");
    return 0;
}

double *pqe__new_scalar(pqe_ctx_t *c) { return ARENA_ARRAY(c->a, double, c->n_steps); }

void pqe__series_alloc(pqe_ctx_t *c, pqe_series_t *s)
{
    s->v = ARENA_ARRAY(c->a, double, c->n_steps);
    s->has = ARENA_ARRAY(c->a, uint8_t, c->n_steps);
}

pqe_series_t *pqe__new_series(pqe_ctx_t *c, pqe_val_t *v, size_t n)
{
    v->type = PQ_TYPE_VECTOR;
    v->series = ARENA_ARRAY(c->a, pqe_series_t, n ? n : 1);
    v->n_series = n;
    for (size_t i = 0; i < n; i++)
        pqe__series_alloc(c, &v->series[i]);
    return v->series;
}

/* ---- accumulator ---- */

void pqe__acc_init(pqe_acc_t *acc) { memset(acc, 0, sizeof *acc); }

static void acc_rehash(pqe_ctx_t *c, pqe_acc_t *acc)
{
    size_t cap = acc->hcap ? acc->hcap * 2 : 64;
    acc->hkeys = ARENA_ARRAY(c->a, uint64_t, cap);
    acc->hidx = ARENA_ARRAY(c->a, uint32_t, cap);
    acc->hcap = cap;
    for (size_t i = 0; i < acc->n; i++) {
        uint64_t h = labels_hash(&acc->s[i].labels);
        size_t j = h & (cap - 1);
        while (acc->hidx[j])
            j = (j + 1) & (cap - 1);
        acc->hkeys[j] = h;
        acc->hidx[j] = (uint32_t)i + 1;
    }
}

size_t pqe__acc_series(pqe_ctx_t *c, pqe_acc_t *acc, const labels_t *ls)
{
    if ((acc->n + 1) * 2 > acc->hcap)
        acc_rehash(c, acc);
    uint64_t h = labels_hash(ls);
    size_t j = h & (acc->hcap - 1);
    while (acc->hidx[j]) {
        size_t k = acc->hidx[j] - 1;
        if (acc->hkeys[j] == h && labels_eq(&acc->s[k].labels, ls))
            return k;
        j = (j + 1) & (acc->hcap - 1);
    }
    if (acc->n == acc->cap) {
        size_t cap = acc->cap ? acc->cap * 2 : 16;
        pqe_series_t *ns = ARENA_ARRAY(c->a, pqe_series_t, cap);
        if (acc->n)
            memcpy(ns, acc->s, acc->n * sizeof *ns);
        acc->s = ns;
        acc->cap = cap;
    }
    pqe_series_t *s = &acc->s[acc->n];
    memset(s, 0, sizeof *s);
    s->labels = labels_copy(ls, c->a);
    pqe__series_alloc(c, s);
    acc->hkeys[j] = h;
    acc->hidx[j] = (uint32_t)acc->n + 1;
    return acc->n++;
}

size_t pqe__acc_find(const pqe_acc_t *acc, const labels_t *ls)
{
    if (!acc->hcap)
        return (size_t)-1;
    uint64_t h = labels_hash(ls);
    size_t j = h & (acc->hcap - 1);
    while (acc->hidx[j]) {
        size_t k = acc->hidx[j] - 1;
        if (acc->hkeys[j] == h && labels_eq(&acc->s[k].labels, ls))
            return k;
        j = (j + 1) & (acc->hcap - 1);
    }
    return (size_t)-1;
}

int pqe__acc_add(pqe_ctx_t *c, pqe_acc_t *acc, const labels_t *ls, bool drop_name, size_t step,
                 double v)
{
    size_t k = pqe__acc_series(c, acc, ls);
    pqe_series_t *s = &acc->s[k];
    if (s->has[step])
        return err_set(c->err, ERR_INVAL, "vector cannot contain metrics with the same labelset");
    s->has[step] = 1;
    s->v[step] = v;
    s->drop_name = s->drop_name || drop_name;
    return 0;
}

void pqe__acc_finish(pqe_acc_t *acc, pqe_val_t *out)
{
    memset(out, 0, sizeof *out);
    out->type = PQ_TYPE_VECTOR;
    out->series = acc->s;
    out->n_series = acc->n;
}

size_t *pqe__members(pqe_ctx_t *c, const size_t *grp, size_t n, size_t ng, size_t **off)
{
    size_t *o = ARENA_ARRAY(c->a, size_t, ng + 2);
    size_t *m = ARENA_ARRAY(c->a, size_t, n + 1);
    for (size_t k = 0; k < n; k++)
        if (grp[k] != (size_t)-1)
            o[grp[k] + 1]++;
    for (size_t g = 0; g < ng; g++)
        o[g + 1] += o[g];
    size_t *fill = ARENA_ARRAY(c->a, size_t, ng + 1);
    for (size_t k = 0; k < n; k++)
        if (grp[k] != (size_t)-1)
            m[o[grp[k]] + fill[grp[k]]++] = k;
    *off = o;
    return m;
}

/* ---- labels ---- */

static bool name_in(str_t name, const str_t *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (str_eq(name, names[i]))
            return true;
    return false;
}

labels_t pqe__labels_del(pqe_ctx_t *c, const labels_t *ls, const str_t *names, size_t n,
                         bool del_name)
{
    labels_t r = {ARENA_ARRAY(c->a, label_t, ls->n ? ls->n : 1), 0};
    for (size_t i = 0; i < ls->n; i++) {
        if (name_in(ls->v[i].name, names, n))
            continue;
        if (del_name && str_eq_cstr(ls->v[i].name, "__name__"))
            continue;
        r.v[r.n++] = ls->v[i];
    }
    return r;
}

labels_t pqe__labels_keep(pqe_ctx_t *c, const labels_t *ls, const str_t *names, size_t n)
{
    labels_t r = {ARENA_ARRAY(c->a, label_t, ls->n ? ls->n : 1), 0};
    for (size_t i = 0; i < ls->n; i++)
        if (name_in(ls->v[i].name, names, n))
            r.v[r.n++] = ls->v[i];
    return r;
}

labels_t pqe__labels_set(pqe_ctx_t *c, const labels_t *ls, str_t name, str_t value)
{
    labels_t r = {ARENA_ARRAY(c->a, label_t, ls->n + 1), 0};
    bool done = false;
    for (size_t i = 0; i < ls->n; i++) {
        int cmp = str_cmp(ls->v[i].name, name);
        if (!done && cmp >= 0) {
            if (value.len)
                r.v[r.n++] = (label_t){name, value};
            done = true;
            if (cmp == 0)
                continue;
        }
        r.v[r.n++] = ls->v[i];
    }
    if (!done && value.len)
        r.v[r.n++] = (label_t){name, value};
    return r;
}

/* ---- selectors ---- */

static int64_t at_time(const pqe_ctx_t *c, pq_at_t at, int64_t at_ms)
{
    switch (at) {
    case PQ_AT_START:
        return c->q_start;
    case PQ_AT_END:
        return c->q_end;
    default:
        return at_ms;
    }
}

/* First index with pts[i].t_ms > t. */
static size_t upper_bound(const pq_point_t *pts, size_t n, int64_t t)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (pts[mid].t_ms <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void pqe__window(const pqe_ctx_t *c, const pqe_val_t *m, const pqe_mseries_t *s, size_t i,
                 size_t *lo, size_t *hi, int64_t *te)
{
    int64_t e = (m->has_at ? m->at_ms : pqe__t(c, i)) - m->offset_ms;
    *hi = upper_bound(s->pts, s->n, e);
    *lo = upper_bound(s->pts, *hi, e - m->range_ms);
    if (te)
        *te = e;
}

/* Scratch buffer for one series' samples (heap, reused across the series of a selector). */
typedef struct ptbuf {
    pq_point_t *p;
    size_t n, cap;
} ptbuf_t;

/* Reads the current series' samples into b (stale markers dropped unless keep_stale), in bulk.
 * -1 when out of memory. Thread-safe for distinct iterators and buffers. */
static int read_samples_raw(db_series_iter_t *it, ptbuf_t *b, bool keep_stale)
{
    b->n = 0;
    for (;;) {
        if (b->n == b->cap) {
            size_t cap = b->cap ? b->cap * 2 : 1024;
            pq_point_t *np = realloc(b->p, cap * sizeof *np);
            if (!np)
                return -1;
            b->p = np;
            b->cap = cap;
        }
        size_t got = db_sample_read(it, b->p + b->n, b->cap - b->n);
        if (!got)
            break;
        if (keep_stale) {
            b->n += got;
            continue;
        }
        pq_point_t *p = b->p + b->n;
        size_t k = 0;
        for (size_t j = 0; j < got; j++)
            if (!is_stale(p[j].v))
                p[k++] = p[j];
        b->n += k;
    }
    return 0;
}

static int read_samples(pqe_ctx_t *c, db_series_iter_t *it, ptbuf_t *b, bool keep_stale)
{
    if (read_samples_raw(it, b, keep_stale))
        return err_set(c->err, ERR_NOMEM, "out of memory loading samples");
    return 0;
}

/* Selection times of a selector over the current steps: [te_min, te_max]. */
static void sel_times(const pqe_ctx_t *c, const pq_node_t *n, int64_t *lo, int64_t *hi)
{
    if (n->u.sel.at != PQ_AT_NONE) {
        *lo = *hi = at_time(c, n->u.sel.at, n->u.sel.at_ms) - n->u.sel.offset_ms;
        return;
    }
    *lo = c->start - n->u.sel.offset_ms;
    *hi = pqe__t(c, c->n_steps ? c->n_steps - 1 : 0) - n->u.sel.offset_ms;
}

int pqe__sink_collect(pqe_ctx_t *c, void *arg, const pqe_series_t *s)
{
    pqe_val_t *out = arg;
    /* Capacity doubles at powers of two; out->series is arena memory. */
    size_t n = out->n_series;
    if ((n & (n - 1)) == 0) {
        pqe_series_t *ns = ARENA_ARRAY(c->a, pqe_series_t, n ? n * 2 : 16);
        if (n)
            memcpy(ns, out->series, n * sizeof *ns);
        out->series = ns;
    }
    pqe_series_t *d = &out->series[out->n_series++];
    d->labels = s->labels;
    d->drop_name = s->drop_name;
    pqe__series_alloc(c, d);
    memcpy(d->v, s->v, c->n_steps * sizeof *d->v);
    memcpy(d->has, s->has, c->n_steps);
    return 0;
}

/* Instant selection over the steps (a pqe_row_fn; arg: the selector node, m->has_at for
 * sample_ts). Selection times rise with the steps, so the newest sample at or before te is found
 * by a cursor that only moves forward. */
typedef struct vsel {
    const pq_node_t *n;
    int64_t fixed_te; /* with @ */
    bool sample_ts;
} vsel_t;

static size_t vsel_row(const pqe_ctx_t *c, void *arg, const pqe_val_t *m, const pq_point_t *p,
                       size_t n, double *v, uint8_t *has)
{
    (void)m;
    const vsel_t *x = arg;
    int64_t lb = c->o->lookback_ms, off = x->n->u.sel.offset_ms;
    bool fixed = x->n->u.sel.at != PQ_AT_NONE;
    size_t k = 0, present = 0;
    for (size_t i = 0; i < c->n_steps; i++) {
        int64_t te = fixed ? x->fixed_te : pqe__t(c, i) - off;
        while (k < n && p[k].t_ms <= te)
            k++;
        has[i] = 0;
        if (k == 0 || p[k - 1].t_ms <= te - lb || is_stale(p[k - 1].v))
            continue;
        has[i] = 1;
        v[i] = x->sample_ts ? (double)p[k - 1].t_ms / 1000.0 : p[k - 1].v;
        present++;
    }
    return present;
}

int pqe__vector_selector_stream(pqe_ctx_t *c, const pq_node_t *n, bool sample_ts, pqe_sink_fn sink,
                                void *arg)
{
    int64_t lo, hi;
    sel_times(c, n, &lo, &hi);
    vsel_t x = {n, lo, sample_ts};
    pqe_rows_t r = {n, lo - c->o->lookback_ms + 1, hi, true, vsel_row, &x, NULL, false};
    return pqe__rows(c, &r, sink, arg);
}

int pqe__vector_selector(pqe_ctx_t *c, const pq_node_t *n, bool sample_ts, pqe_val_t *out)
{
    memset(out, 0, sizeof *out);
    out->type = PQ_TYPE_VECTOR;
    return pqe__vector_selector_stream(c, n, sample_ts, pqe__sink_collect, out);
}

void pqe__matrix_params(pqe_ctx_t *c, const pq_node_t *n, pqe_val_t *m)
{
    memset(m, 0, sizeof *m);
    m->type = PQ_TYPE_MATRIX;
    m->range_ms = n->u.sel.range_ms;
    m->offset_ms = n->u.sel.offset_ms;
    m->has_at = n->u.sel.at != PQ_AT_NONE;
    m->at_ms = at_time(c, n->u.sel.at, n->u.sel.at_ms);
}

int pqe__matrix_selector_stream(pqe_ctx_t *c, const pq_node_t *n, pqe_msink_fn fn, void *arg)
{
    int64_t lo, hi, r = n->u.sel.range_ms;
    sel_times(c, n, &lo, &hi);
    db_series_iter_t *it;
    int rc =
        db_select(c->db, n->u.sel.matchers, n->u.sel.n_matchers, lo - r + 1, hi, c->a, &it, c->err);
    if (rc)
        return rc;
    pqe_val_t m;
    pqe__matrix_params(c, n, &m);
    uint64_t total = 0;
    ptbuf_t b = {0};
    while (db_series_next(it)) {
        if ((rc = pqe__check(c)) || (rc = read_samples(c, it, &b, false)))
            break;
        if (!b.n)
            continue;
        total += b.n;
        if ((rc = count_samples(c, total)))
            break;
        pqe_mseries_t ms = {labels_copy(db_series_labels(it), c->a), b.p, b.n, false};
        if ((rc = fn(c, arg, &m, &ms)))
            break;
    }
    free(b.p);
    return rc;
}

/* Keeps a copy of each streamed series (arg: the MATRIX value). */
static int msink_collect(pqe_ctx_t *c, void *arg, const pqe_val_t *m, const pqe_mseries_t *s)
{
    (void)m;
    pqe_val_t *out = arg;
    size_t n = out->n_ms;
    if ((n & (n - 1)) == 0) {
        pqe_mseries_t *nm = ARENA_ARRAY(c->a, pqe_mseries_t, n ? n * 2 : 16);
        if (n)
            memcpy(nm, out->ms, n * sizeof *nm);
        out->ms = nm;
    }
    pq_point_t *pts = ARENA_ARRAY(c->a, pq_point_t, s->n);
    memcpy(pts, s->pts, s->n * sizeof *pts);
    out->ms[out->n_ms++] = (pqe_mseries_t){s->labels, pts, s->n, s->drop_name};
    return 0;
}

static int matrix_selector(pqe_ctx_t *c, const pq_node_t *n, pqe_val_t *out)
{
    pqe__matrix_params(c, n, out);
    return pqe__matrix_selector_stream(c, n, msink_collect, out);
}

/* ---- selector rows, computed in parallel ----
 * pqe__rows cuts the selection into slices of consecutive series, numbered in selection order,
 * and runs up to 4 threads (the calling thread is one); each takes the next slice not yet taken,
 * decodes its slice's series and computes their rows (one value per step) with the pure
 * row function, then waits for its slice's turn and hands the rows to the sink itself: the sink
 * sees the rows one at a time in selection order, exactly what the sequential evaluation gives
 * it, and the sample limit is counted in that same order, while the other threads go on
 * decoding. The turn (under a mutex) orders everything the sinks touch in the context. A slice
 * holds at most PAR_SLICE_BYTES of rows; its thread's buffers are reused from slice to slice. */

#define PAR_MAX_THREADS 4
#define PAR_MIN_SERIES 64 /* fewer series: no threads */
#define PAR_SLICE_BYTES (512u << 10)
#define PAR_SLICES_PER_THREAD 4 /* at least, so that uneven slices even out */

typedef struct par_shared {
    pqe_ctx_t *c;
    const pqe_rows_t *r;
    pqe_sink_fn sink;
    void *arg;
    db_series_iter_t *it;
    size_t nt, per, n_slices;
    pthread_mutex_t mu;
    pthread_cond_t turn_cv;
    size_t next;    /* the next slice to take */
    size_t turn;    /* the slice whose rows go to the sink next */
    uint64_t total; /* samples so far, in selection order (turn holder only) */
    int rc;         /* first error; stops every thread */
} par_shared_t;

typedef struct par_part {
    par_shared_t *sh;
    arena_t arena;           /* the slice iterator */
    const labels_t **labels; /* per row: the series' labels (owned by the selection) */
    uint64_t *n_samples;     /* per row: samples (steps, instant) counted against the limit */
    double *v;               /* per x n_steps */
    uint8_t *has;
    ptbuf_t b;
} par_part_t;

/* Computes the rows of one slice into p; ERR_NOMEM or ERR_TIMEOUT, 0 when done. */
static int slice_rows(par_part_t *p, db_series_iter_t *it, size_t *n_rows)
{
    const par_shared_t *sh = p->sh;
    const pqe_ctx_t *c = sh->c;
    const pqe_rows_t *r = sh->r;
    size_t ns = c->n_steps;
    *n_rows = 0;
    while (db_series_next(it)) {
        if (c->deadline_ns && clock_mono_ns() > c->deadline_ns)
            return ERR_TIMEOUT;
        if (read_samples_raw(it, &p->b, r->instant))
            return ERR_NOMEM;
        size_t j = (*n_rows)++;
        p->labels[j] = db_series_labels(it);
        p->n_samples[j] = p->b.n;
        if (p->b.n) {
            size_t present =
                r->row(c, r->row_arg, r->m, p->b.p, p->b.n, p->v + j * ns, p->has + j * ns);
            if (r->instant)
                p->n_samples[j] = present;
        }
    }
    return 0;
}

/* Hands one slice's rows to the sink (its turn held). */
static int slice_sink(par_part_t *p, size_t n_rows)
{
    par_shared_t *sh = p->sh;
    pqe_ctx_t *c = sh->c;
    size_t ns = c->n_steps;
    int rc = 0;
    pqe_series_t out = {0};
    for (size_t j = 0; j < n_rows && !rc; j++) {
        if (!p->n_samples[j])
            continue;
        sh->total += p->n_samples[j];
        if ((rc = count_samples(c, sh->total)))
            break;
        out.labels = labels_copy(p->labels[j], c->a);
        out.v = p->v + j * ns;
        out.has = p->has + j * ns;
        out.drop_name = sh->r->drop_name;
        rc = sh->sink(c, sh->arg, &out);
    }
    return rc ? rc : pqe__check(c);
}

static void *part_run(void *arg)
{
    par_part_t *p = arg;
    par_shared_t *sh = p->sh;
    for (;;) {
        pthread_mutex_lock(&sh->mu);
        size_t k = sh->rc ? sh->n_slices : sh->next++;
        pthread_mutex_unlock(&sh->mu);
        if (k >= sh->n_slices)
            break;
        arena_reset(&p->arena);
        db_series_iter_t *it = db_select_slice(sh->it, k * sh->per, (k + 1) * sh->per, &p->arena);
        size_t n_rows;
        int rc = slice_rows(p, it, &n_rows);
        pthread_mutex_lock(&sh->mu);
        while (sh->turn != k && !sh->rc)
            pthread_cond_wait(&sh->turn_cv, &sh->mu);
        if (!sh->rc && rc) {
            sh->rc = rc == ERR_TIMEOUT
                         ? err_set(sh->c->err, ERR_TIMEOUT, "query timed out in query execution")
                         : err_set(sh->c->err, ERR_NOMEM, "out of memory loading samples");
            pthread_cond_broadcast(&sh->turn_cv); /* the threads waiting for later turns stop */
        }
        bool stop = sh->rc != 0;
        pthread_mutex_unlock(&sh->mu);
        if (stop)
            break;
        /* Only the turn holder gets here: the sink runs outside the lock but alone. */
        rc = slice_sink(p, n_rows);
        pthread_mutex_lock(&sh->mu);
        if (rc && !sh->rc)
            sh->rc = rc;
        sh->turn = k + 1;
        pthread_cond_broadcast(&sh->turn_cv);
        pthread_mutex_unlock(&sh->mu);
        if (rc)
            break;
    }
    return NULL;
}

static size_t par_threads(size_t n_series)
{
    if (n_series < PAR_MIN_SERIES)
        return 1;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > PAR_MAX_THREADS ? PAR_MAX_THREADS : (size_t)n;
}

int pqe__rows(pqe_ctx_t *c, const pqe_rows_t *r, pqe_sink_fn sink, void *arg)
{
    const pq_node_t *n = r->sel;
    par_shared_t sh = {.c = c, .r = r, .sink = sink, .arg = arg};
    int rc = db_select(c->db, n->u.sel.matchers, n->u.sel.n_matchers, r->mint, r->maxt, c->a,
                       &sh.it, c->err);
    if (rc)
        return rc;
    size_t n_series = db_series_count(sh.it);
    if (!n_series)
        return 0;
    size_t ns = c->n_steps ? c->n_steps : 1;
    sh.nt = par_threads(n_series);
    size_t per = PAR_SLICE_BYTES / (ns * (sizeof(double) + 1));
    size_t even = (n_series + sh.nt * PAR_SLICES_PER_THREAD - 1) / (sh.nt * PAR_SLICES_PER_THREAD);
    sh.per = per < 16 ? 16 : per > even ? even : per;
    sh.n_slices = (n_series + sh.per - 1) / sh.per;
    if (sh.nt > sh.n_slices)
        sh.nt = sh.n_slices;
    pthread_mutex_init(&sh.mu, NULL);
    pthread_cond_init(&sh.turn_cv, NULL);
    par_part_t parts[PAR_MAX_THREADS];
    memset(parts, 0, sizeof parts);
    for (size_t t = 0; t < sh.nt; t++) {
        par_part_t *p = &parts[t];
        p->sh = &sh;
        p->labels = malloc(sh.per * sizeof *p->labels);
        p->n_samples = malloc(sh.per * sizeof *p->n_samples);
        p->v = malloc(sh.per * ns * sizeof *p->v);
        p->has = malloc(sh.per * ns);
        arena_init(&p->arena, 4096);
        if (!p->labels || !p->n_samples || !p->v || !p->has)
            rc = err_set(c->err, ERR_NOMEM, "out of memory evaluating a range selector");
    }
    if (!rc) {
        pthread_t tid[PAR_MAX_THREADS];
        bool started[PAR_MAX_THREADS] = {false};
        for (size_t t = 1; t < sh.nt; t++)
            started[t] = pthread_create(&tid[t], NULL, part_run, &parts[t]) == 0;
        part_run(&parts[0]); /* with no thread to be had, this takes every slice */
        for (size_t t = 1; t < sh.nt; t++)
            if (started[t])
                pthread_join(tid[t], NULL);
        rc = sh.rc;
    }
    for (size_t t = 0; t < sh.nt; t++) {
        free(parts[t].labels);
        free(parts[t].n_samples);
        free(parts[t].v);
        free(parts[t].has);
        free(parts[t].b.p);
        arena_deinit(&parts[t].arena);
    }
    pthread_mutex_destroy(&sh.mu);
    pthread_cond_destroy(&sh.turn_cv);
    return rc;
}

int pqe__stream(pqe_ctx_t *c, const pq_node_t *n, pqe_sink_fn sink, void *arg)
{
    while (n->kind == PQ_PAREN)
        n = n->u.paren.expr;
    if (n->kind == PQ_VECTOR_SEL)
        return pqe__vector_selector_stream(c, n, false, sink, arg);
    if (n->kind == PQ_CALL && pqe__is_range_call(n))
        return pqe__range_call_stream(c, n, sink, arg);
    pqe_val_t v;
    int rc = pqe__eval(c, n, &v);
    if (rc)
        return rc;
    for (size_t k = 0; k < v.n_series; k++)
        if ((rc = sink(c, arg, &v.series[k])))
            return rc;
    return 0;
}

static int subquery(pqe_ctx_t *c, const pq_node_t *n, pqe_val_t *out)
{
    int64_t step = n->u.subquery.step_ms ? n->u.subquery.step_ms : c->o->default_subquery_step_ms;
    int64_t rng = n->u.subquery.range_ms, off = n->u.subquery.offset_ms;
    bool fixed = n->u.subquery.at != PQ_AT_NONE;
    int64_t at = at_time(c, n->u.subquery.at, n->u.subquery.at_ms);
    int64_t lo = (fixed ? at : c->start) - off;
    int64_t hi = (fixed ? at : pqe__t(c, c->n_steps - 1)) - off;
    if (step <= 0)
        return err_set(c->err, ERR_INVAL, "zero or negative subquery step");
    int64_t start = step * ((lo - rng) / step);
    if (start <= lo - rng)
        start += step;
    memset(out, 0, sizeof *out);
    out->type = PQ_TYPE_MATRIX;
    out->range_ms = rng;
    out->offset_ms = off;
    out->has_at = fixed;
    out->at_ms = at;
    if (start > hi)
        return 0;
    pqe_ctx_t in = *c;
    in.start = start;
    in.step = step;
    in.n_steps = (size_t)((hi - start) / step) + 1;
    if (count_samples(c, in.n_steps))
        return ERR_TOOBIG;
    pqe_val_t v;
    int rc = pqe__eval(&in, n->u.subquery.expr, &v);
    if (rc)
        return rc;
    if (v.type == PQ_TYPE_SCALAR) {
        out->ms = ARENA_NEW(c->a, pqe_mseries_t);
        out->n_ms = 1;
        out->ms[0].pts = ARENA_ARRAY(c->a, pq_point_t, in.n_steps);
        for (size_t i = 0; i < in.n_steps; i++)
            out->ms[0].pts[i] = (pq_point_t){pqe__t(&in, i), v.scalar[i]};
        out->ms[0].n = in.n_steps;
        return 0;
    }
    out->ms = ARENA_ARRAY(c->a, pqe_mseries_t, v.n_series ? v.n_series : 1);
    for (size_t k = 0; k < v.n_series; k++) {
        pqe_series_t *s = &v.series[k];
        pqe_mseries_t *m = &out->ms[out->n_ms];
        size_t cnt = 0;
        for (size_t i = 0; i < in.n_steps; i++)
            cnt += s->has[i];
        if (!cnt)
            continue;
        m->labels = s->labels;
        m->drop_name = s->drop_name;
        m->pts = ARENA_ARRAY(c->a, pq_point_t, cnt);
        for (size_t i = 0; i < in.n_steps; i++)
            if (s->has[i])
                m->pts[m->n++] = (pq_point_t){pqe__t(&in, i), s->v[i]};
        out->n_ms++;
    }
    return 0;
}

static int unary(pqe_ctx_t *c, const pq_node_t *n, pqe_val_t *out)
{
    int rc = pqe__eval(c, n->u.unary.expr, out);
    if (rc || n->u.unary.op != '-')
        return rc;
    if (out->type == PQ_TYPE_SCALAR) {
        for (size_t i = 0; i < c->n_steps; i++)
            out->scalar[i] = -out->scalar[i];
        return 0;
    }
    for (size_t k = 0; k < out->n_series; k++) {
        out->series[k].drop_name = true;
        for (size_t i = 0; i < c->n_steps; i++)
            out->series[k].v[i] = -out->series[k].v[i];
    }
    return 0;
}

int pqe__eval(pqe_ctx_t *c, const pq_node_t *n, pqe_val_t *out)
{
    int rc = pqe__check(c);
    if (rc)
        return rc;
    memset(out, 0, sizeof *out);
    switch (n->kind) {
    case PQ_NUMBER:
        out->type = PQ_TYPE_SCALAR;
        out->scalar = pqe__new_scalar(c);
        for (size_t i = 0; i < c->n_steps; i++)
            out->scalar[i] = n->u.number;
        return 0;
    case PQ_STRING:
        out->type = PQ_TYPE_STRING;
        out->string = n->u.string;
        return 0;
    case PQ_VECTOR_SEL:
        return pqe__vector_selector(c, n, false, out);
    case PQ_MATRIX_SEL:
        return matrix_selector(c, n, out);
    case PQ_SUBQUERY:
        return subquery(c, n, out);
    case PQ_CALL:
        return pqe__call(c, n, out);
    case PQ_AGGREGATE:
        return pqe__aggregate(c, n, out);
    case PQ_BINARY:
        return pqe__binary(c, n, out);
    case PQ_UNARY:
        return unary(c, n, out);
    case PQ_PAREN:
        return pqe__eval(c, n->u.paren.expr, out);
    }
    return err_set(c->err, ERR_INVAL, "unknown expression node");
}

/* ---- result assembly ---- */

static int series_cmp(const void *a, const void *b)
{
    return labels_cmp(&((const pq_series_t *)a)->labels, &((const pq_series_t *)b)->labels);
}

/* Metadata labels that go with __name__ when it is dropped (Prometheus' type-and-unit labels). */
static const str_t meta_labels[] = {{"__type__", 8}, {"__unit__", 8}};

/* Drops __name__ where marked and merges series that then share a label set. */
static int cleanup_names(pqe_ctx_t *c, pqe_val_t *v)
{
    bool any = false;
    for (size_t k = 0; k < v->n_series; k++)
        any = any || v->series[k].drop_name;
    if (!any)
        return 0;
    pqe_acc_t acc;
    pqe__acc_init(&acc);
    for (size_t k = 0; k < v->n_series; k++) {
        pqe_series_t *s = &v->series[k];
        labels_t ls =
            s->drop_name ? pqe__labels_del(c, &s->labels, meta_labels, 2, true) : s->labels;
        size_t idx = pqe__acc_series(c, &acc, &ls);
        for (size_t i = 0; i < c->n_steps; i++) {
            if (!s->has[i])
                continue;
            if (acc.s[idx].has[i])
                return err_set(c->err, ERR_INVAL,
                               "vector cannot contain metrics with the same labelset");
            acc.s[idx].has[i] = 1;
            acc.s[idx].v[i] = s->v[i];
        }
    }
    pqe__acc_finish(&acc, v);
    return 0;
}

static void matrix_result(pqe_ctx_t *c, const pqe_val_t *v, pq_result_t *out)
{
    out->type = PQ_TYPE_MATRIX;
    out->series = ARENA_ARRAY(c->a, pq_series_t, v->n_ms ? v->n_ms : 1);
    for (size_t k = 0; k < v->n_ms; k++) {
        size_t lo, hi;
        pqe__window(c, v, &v->ms[k], 0, &lo, &hi, NULL);
        if (lo == hi)
            continue;
        pq_series_t *s = &out->series[out->n_series++];
        s->labels = v->ms[k].drop_name ? pqe__labels_del(c, &v->ms[k].labels, meta_labels, 2, true)
                                       : v->ms[k].labels;
        s->points = v->ms[k].pts + lo;
        s->n_points = hi - lo;
    }
    qsort(out->series, out->n_series, sizeof *out->series, series_cmp);
}

static int run(db_t *db, const pq_node_t *n, int64_t start, int64_t end, int64_t step, bool range,
               const pq_opts_t *o, arena_t *a, pq_result_t *out, err_t *err)
{
    pq_opts_t def;
    if (!o) {
        promql_opts_default(&def);
        o = &def;
    }
    memset(out, 0, sizeof *out);
    pqe_ctx_t c = {.db = db, .a = a, .o = o, .err = err, .start = start, .step = step};
    if (range && o->max_samples && (uint64_t)((end - start) / step) >= o->max_samples)
        return err_set(err, ERR_TOOBIG,
                       "query processing would load too many samples into memory in query "
                       "execution");
    c.n_steps = range ? (size_t)((end - start) / step) + 1 : 1;
    c.q_start = start;
    c.q_end = end;
    c.q_step = range ? step : 0;
    pqe_ann_t ann = {0};
    c.ann = &ann;
    if (o->timeout_ms > 0)
        c.deadline_ns = clock_mono_ns() + o->timeout_ms * 1000000;
    if (range && n->type != PQ_TYPE_SCALAR && n->type != PQ_TYPE_VECTOR)
        return err_set(err, ERR_INVAL,
                       "invalid expression type \"%s\" for range query, must be Scalar or instant "
                       "Vector",
                       n->type == PQ_TYPE_MATRIX ? "range vector" : "string");
    pqe_val_t v;
    int rc = pqe__eval(&c, n, &v);
    if (rc) {
        if (rc == ERR_TIMEOUT)
            err_set(err, ERR_TIMEOUT, "query timed out in query execution");
        return rc;
    }
    out->t_ms = end;
    out->warnings = ann.warns;
    out->infos = ann.infos;
    switch (v.type) {
    case PQ_TYPE_STRING:
        out->type = PQ_TYPE_STRING;
        out->string = v.string;
        return 0;
    case PQ_TYPE_MATRIX:
        matrix_result(&c, &v, out);
        return 0;
    case PQ_TYPE_SCALAR:
        if (!range) {
            out->type = PQ_TYPE_SCALAR;
            out->scalar = v.scalar[0];
            return 0;
        }
        out->type = PQ_TYPE_MATRIX;
        out->series = ARENA_NEW(a, pq_series_t);
        out->n_series = 1;
        out->series[0].points = ARENA_ARRAY(a, pq_point_t, c.n_steps);
        out->series[0].n_points = c.n_steps;
        for (size_t i = 0; i < c.n_steps; i++)
            out->series[0].points[i] = (pq_point_t){pqe__t(&c, i), v.scalar[i]};
        return 0;
    default:
        break;
    }
    if ((rc = cleanup_names(&c, &v)))
        return rc;
    out->type = range ? PQ_TYPE_MATRIX : PQ_TYPE_VECTOR;
    out->series = ARENA_ARRAY(a, pq_series_t, v.n_series ? v.n_series : 1);
    for (size_t k = 0; k < v.n_series; k++) {
        pqe_series_t *s = &v.series[k];
        size_t cnt = 0;
        for (size_t i = 0; i < c.n_steps; i++)
            cnt += s->has[i];
        if (!cnt)
            continue;
        pq_series_t *r = &out->series[out->n_series++];
        r->labels = s->labels;
        r->points = ARENA_ARRAY(a, pq_point_t, cnt);
        for (size_t i = 0; i < c.n_steps; i++)
            if (s->has[i])
                r->points[r->n_points++] = (pq_point_t){pqe__t(&c, i), s->v[i]};
    }
    if (range)
        qsort(out->series, out->n_series, sizeof *out->series, series_cmp);
    return 0;
}

int promql_eval_instant(db_t *db, const pq_node_t *n, int64_t t_ms, const pq_opts_t *o, arena_t *a,
                        pq_result_t *out, err_t *err)
{
    return run(db, n, t_ms, t_ms, 0, false, o, a, out, err);
}

int promql_eval_range(db_t *db, const pq_node_t *n, int64_t start_ms, int64_t end_ms,
                      int64_t step_ms, const pq_opts_t *o, arena_t *a, pq_result_t *out, err_t *err)
{
    if (step_ms <= 0)
        return err_set(err, ERR_INVAL,
                       "zero or negative query resolution step widths are not accepted. Try a "
                       "positive integer");
    if (end_ms < start_ms)
        return err_set(err, ERR_INVAL, "end timestamp must not be before start time");
    return run(db, n, start_ms, end_ms, step_ms, true, o, a, out, err);
}
