/*
 * metreg.c - derived counters and histograms (see metreg.h).
 *
 * A series (one family, one label set) is found through a u64map keyed by the label hash mixed
 * with the family's id; a collision between different series probes key+1, key+2, ... Each
 * series is one allocation: the struct, its values (1 for a counter; buckets + "+Inf" + sum for
 * a histogram), its label array and the label strings.
 */
#include "pipeline/metreg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/fmtnum.h"
#include "base/hash.h"

#define DEFAULT_STALE_MS (15 * 60 * 1000)
#define DEFAULT_MAX_SERIES 50000
#define MAX_LABELS 72

struct metreg_family {
    metreg_t *reg;
    uint64_t id;
    bool histogram;
    const char *name, *help, *unit;
    const char *total, *bucket, *sum, *count; /* the series names */
    double *bounds;
    size_t n_bounds;
    char (*le)[FMTNUM_MAX + 1];
};

typedef struct series {
    metreg_family_t *fam;
    labels_t labels;
    uint64_t key;
    int64_t last_seen_ms; /* -1: updated since the last flush */
    bool flushed;
    double v[]; /* counter: [0]; histogram: [0..n_bounds] per bucket (not cumulative), then sum */
} series_t;

struct metreg {
    int64_t stale_ms;
    size_t max_series;
    metreg_family_t **fams;
    size_t n_fams;
    series_t **series;
    size_t n_series, cap_series;
    u64map_t index;
    uint64_t dropped;
    int64_t last_flush_ms;
    arena_t arena; /* families */
};

metreg_t *metreg_new(int64_t stale_ms, size_t max_series)
{
    metreg_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->stale_ms = stale_ms > 0 ? stale_ms : DEFAULT_STALE_MS;
    r->max_series = max_series ? max_series : DEFAULT_MAX_SERIES;
    u64map_init(&r->index);
    arena_init(&r->arena, 2048);
    return r;
}

void metreg_free(metreg_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_series; i++)
        free(r->series[i]);
    free(r->series);
    free(r->fams);
    u64map_deinit(&r->index);
    arena_deinit(&r->arena);
    free(r);
}

size_t metreg_n_series(const metreg_t *r) { return r->n_series; }
uint64_t metreg_dropped(const metreg_t *r) { return r->dropped; }

static metreg_family_t *family_new(metreg_t *r, const char *name, const char *help,
                                   const char *unit)
{
    metreg_family_t **nv = realloc(r->fams, (r->n_fams + 1) * sizeof *nv);
    if (!nv)
        return NULL;
    r->fams = nv;
    metreg_family_t *f = arena_calloc(&r->arena, 1, sizeof *f);
    f->reg = r;
    f->id = hash_u64(r->n_fams + 1);
    f->name = arena_sprintf(&r->arena, "%s", name);
    f->help = arena_sprintf(&r->arena, "%s", help ? help : "");
    f->unit = arena_sprintf(&r->arena, "%s", unit ? unit : "");
    r->fams[r->n_fams++] = f;
    return f;
}

metreg_family_t *metreg_counter(metreg_t *r, const char *name, const char *help, const char *unit)
{
    metreg_family_t *f = family_new(r, name, help, unit);
    if (f)
        f->total = arena_sprintf(&r->arena, "%s_total", name);
    return f;
}

int metreg_histogram(metreg_t *r, const char *name, const char *help, const char *unit,
                     const double *bounds, size_t n, metreg_family_t **out, err_t *err)
{
    *out = NULL;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
            return err_set(err, ERR_INVAL, "%s: histogram buckets must be finite and ascending",
                           name);
    metreg_family_t *f = family_new(r, name, help, unit);
    if (!f)
        return err_set(err, ERR_NOMEM, "out of memory");
    f->histogram = true;
    f->bucket = arena_sprintf(&r->arena, "%s_bucket", name);
    f->sum = arena_sprintf(&r->arena, "%s_sum", name);
    f->count = arena_sprintf(&r->arena, "%s_count", name);
    f->bounds = arena_alloc(&r->arena, (n + 1) * sizeof *f->bounds);
    f->le = arena_alloc(&r->arena, (n + 1) * sizeof *f->le);
    for (size_t i = 0; i < n; i++) {
        f->bounds[i] = bounds[i];
        f->le[i][fmt_float_prom(f->le[i], bounds[i])] = '\0';
    }
    strcpy(f->le[n], "+Inf");
    f->n_bounds = n;
    *out = f;
    return 0;
}

static int cmp_label(const void *a, const void *b)
{
    const label_t *x = a, *y = b;
    return str_cmp(x->name, y->name);
}

void metreg_labels_normalize(labels_t *ls)
{
    /* Stable like glibc's qsort (a merge sort), so the first of equal names wins either way;
     * label sets here are small, where insertion sort beats qsort's calls per comparison. */
    if (ls->n <= 32) {
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
        qsort(ls->v, ls->n, sizeof *ls->v, cmp_label);
    }
    size_t w = 0;
    for (size_t i = 0; i < ls->n; i++) {
        if (w > 0 && str_eq(ls->v[w - 1].name, ls->v[i].name))
            continue;
        if (ls->v[i].value.len) /* Prometheus has no empty-valued labels */
            ls->v[w++] = ls->v[i];
    }
    ls->n = w;
}

static size_t n_values(const metreg_family_t *f) { return f->histogram ? f->n_bounds + 2 : 1; }

static series_t *series_new(metreg_family_t *f, const labels_t *ls, uint64_t key)
{
    size_t strings = 0;
    for (size_t i = 0; i < ls->n; i++)
        strings += ls->v[i].name.len + ls->v[i].value.len;
    size_t head = sizeof(series_t) + n_values(f) * sizeof(double);
    head = (head + _Alignof(label_t) - 1) & ~(_Alignof(label_t) - 1);
    series_t *s = calloc(1, head + ls->n * sizeof(label_t) + strings);
    if (!s)
        return NULL;
    label_t *v = (label_t *)((char *)s + head);
    char *p = (char *)(v + ls->n);
    for (size_t i = 0; i < ls->n; i++) {
        const label_t *l = &ls->v[i];
        memcpy(p, l->name.ptr, l->name.len);
        v[i].name = (str_t){p, l->name.len};
        p += l->name.len;
        memcpy(p, l->value.ptr, l->value.len);
        v[i].value = (str_t){p, l->value.len};
        p += l->value.len;
    }
    s->fam = f;
    s->labels = (labels_t){v, ls->n};
    s->key = key;
    return s;
}

static void index_put(metreg_t *r, uint64_t key, size_t idx)
{
    while (u64map_get(&r->index, key))
        key++;
    u64map_put(&r->index, key, idx);
}

static series_t *series_get(metreg_family_t *f, const labels_t *ls, uint64_t hash)
{
    metreg_t *r = f->reg;
    uint64_t key0 = hash ^ f->id;
    for (uint64_t key = key0;; key++) {
        uint64_t *idx = u64map_get(&r->index, key);
        if (!idx)
            break;
        series_t *s = r->series[*idx];
        if (s->fam == f && labels_eq(&s->labels, ls))
            return s;
    }
    if (r->n_series >= r->max_series) {
        r->dropped++;
        return NULL;
    }
    if (r->n_series == r->cap_series) {
        size_t cap = r->cap_series ? r->cap_series * 2 : 64;
        series_t **nv = realloc(r->series, cap * sizeof *nv);
        if (!nv)
            return NULL;
        r->series = nv;
        r->cap_series = cap;
    }
    series_t *s = series_new(f, ls, key0);
    if (!s)
        return NULL;
    index_put(r, key0, r->n_series);
    r->series[r->n_series++] = s;
    return s;
}

void metreg_add(metreg_family_t *f, const labels_t *ls, uint64_t hash, double v)
{
    series_t *s = series_get(f, ls, hash);
    if (!s)
        return;
    s->last_seen_ms = -1;
    if (!f->histogram) {
        s->v[0] += v;
        return;
    }
    size_t b = 0;
    while (b < f->n_bounds && v > f->bounds[b])
        b++;
    s->v[b] += 1;
    s->v[f->n_bounds + 1] += v;
}

/* Appends name{ls..., le} = v at ts. */
static void add_sample(db_batch_t *b, const labels_t *ls, const char *name, const char *le,
                       int64_t ts, double v)
{
    label_t lv[MAX_LABELS + 2];
    size_t n = 0;
    lv[n++] = (label_t){STR("__name__"), str_cstr(name)};
    for (size_t i = 0; i < ls->n && i < MAX_LABELS; i++)
        lv[n++] = ls->v[i];
    if (le)
        lv[n++] = (label_t){STR("le"), str_cstr(le)};
    labels_t all = {lv, n};
    db_batch_add_sample(b, &all, ts, v);
}

static size_t emit(const series_t *s, int64_t ts, bool zero, db_batch_t *b)
{
    const metreg_family_t *f = s->fam;
    if (!f->histogram) {
        add_sample(b, &s->labels, f->total, NULL, ts, zero ? 0 : s->v[0]);
        return 1;
    }
    double cum = 0;
    for (size_t i = 0; i <= f->n_bounds; i++) {
        cum += s->v[i];
        add_sample(b, &s->labels, f->bucket, f->le[i], ts, zero ? 0 : cum);
    }
    add_sample(b, &s->labels, f->sum, NULL, ts, zero ? 0 : s->v[f->n_bounds + 1]);
    add_sample(b, &s->labels, f->count, NULL, ts, zero ? 0 : cum);
    return f->n_bounds + 3;
}

size_t metreg_flush(metreg_t *r, int64_t now_ms, int64_t interval_ms, db_batch_t *b)
{
    int64_t prev =
        r->last_flush_ms > 0 && r->last_flush_ms < now_ms ? r->last_flush_ms : now_ms - interval_ms;
    size_t n = 0, w = 0;
    bool removed = false;
    for (size_t i = 0; i < r->n_series; i++) {
        series_t *s = r->series[i];
        if (s->last_seen_ms < 0)
            s->last_seen_ms = now_ms;
        if (now_ms - s->last_seen_ms > r->stale_ms) {
            free(s);
            removed = true;
            continue;
        }
        if (!s->flushed)
            n += emit(s, prev, true, b);
        s->flushed = true;
        n += emit(s, now_ms, false, b);
        r->series[w++] = s;
    }
    r->n_series = w;
    if (removed) {
        u64map_clear(&r->index);
        for (size_t i = 0; i < r->n_series; i++)
            index_put(r, r->series[i]->key, i);
    }
    if (n)
        for (size_t i = 0; i < r->n_fams; i++) {
            const metreg_family_t *f = r->fams[i];
            db_batch_add_metadata(b, str_cstr(f->name),
                                  f->histogram ? DB_MTYPE_HISTOGRAM : DB_MTYPE_COUNTER,
                                  str_cstr(f->help), str_cstr(f->unit));
        }
    r->last_flush_ms = now_ms;
    return n;
}
