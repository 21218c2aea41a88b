/*
 * spanmetrics.c - span counts, latency histograms and sizes per label set (see spanmetrics.h).
 *
 * A label set is found by its labels_hash in a u64map whose values are indexes into the series
 * vector; a hash collision between different label sets probes hash+1, hash+2, ... Each series is
 * one allocation: the struct, its bucket counts, its label array and the label strings.
 */
#include "pipeline/spanmetrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/fmtnum.h"
#include "base/hash.h"
#include "pipeline/promname.h"

#define MAX_DIMS 64
#define DEFAULT_FLUSH_MS 15000
#define DEFAULT_STALE_MS (15 * 60 * 1000)
#define DEFAULT_MAX_SERIES 50000

const char *const spanmetrics_default_dimensions[] = {
    "test.id",
    "test.category",
    "test.result",
    "test.actual_skill",
    "test.expected_skill",
    "claude.model",
    "routing.confidence",
    "skill.name",
    "skill.version",
    "skill.md.hash",
    "vcs.branch",
    "vcs.commit.sha",
    "worker.id",
    "error.type",
    "gen_ai.request.model",
    "gen_ai.operation.name",
    NULL,
};

const double spanmetrics_default_buckets[] = {
    0.002, 0.004, 0.008, 0.016,  0.032,  0.064,  0.128,   0.256,   0.512,   1.024,
    2.048, 4.096, 8.192, 16.384, 32.768, 65.536, 131.072, 262.144, 524.288,
};
const size_t spanmetrics_n_default_buckets =
    sizeof spanmetrics_default_buckets / sizeof spanmetrics_default_buckets[0];

typedef struct sm_series {
    labels_t labels; /* sorted; strings inside this allocation */
    uint64_t hash;
    int64_t last_seen_ms;
    bool flushed;
    double calls, size_bytes, lat_sum;
    double buckets[]; /* n_buckets + 1 (+Inf), not cumulative */
} sm_series_t;

struct spanmetrics {
    char **dims;      /* attribute names */
    str_t *dim_label; /* their label names */
    size_t n_dims;
    double *bounds;
    size_t n_bounds;
    char (*le)[FMTNUM_MAX + 1]; /* bounds formatted as Prometheus formats le */
    int64_t flush_ms, stale_ms;
    size_t max_series;
    sm_series_t **series;
    size_t n_series, cap_series;
    u64map_t index;
    uint64_t dropped;
    int64_t last_flush_ms;
    arena_t arena; /* dims, labels, le strings */
};

static const char *const kind_names[] = {
    "SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",      "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER",
};
static const char *const status_names[] = {"STATUS_CODE_UNSET", "STATUS_CODE_OK",
                                           "STATUS_CODE_ERROR"};

int spanmetrics_new(const spanmetrics_opts_t *o, spanmetrics_t **out, err_t *err)
{
    spanmetrics_opts_t def = {0};
    if (!o)
        o = &def;
    *out = NULL;
    spanmetrics_t *sm = calloc(1, sizeof *sm);
    if (!sm)
        return err_set(err, ERR_NOMEM, "out of memory");
    arena_init(&sm->arena, 4096);
    u64map_init(&sm->index);
    sm->flush_ms = o->flush_interval_ms > 0 ? o->flush_interval_ms : DEFAULT_FLUSH_MS;
    sm->stale_ms = o->stale_ms > 0 ? o->stale_ms : DEFAULT_STALE_MS;
    sm->max_series = o->max_series ? o->max_series : DEFAULT_MAX_SERIES;

    const char *const *dims = o->dimensions;
    size_t n_dims = o->n_dimensions;
    if (!dims)
        for (dims = spanmetrics_default_dimensions, n_dims = 0; dims[n_dims];)
            n_dims++;
    if (n_dims > MAX_DIMS) {
        spanmetrics_free(sm);
        return err_set(err, ERR_INVAL, "span metrics: %zu dimensions (at most %d)", n_dims,
                       MAX_DIMS);
    }
    sm->dims = arena_alloc(&sm->arena, (n_dims + 1) * sizeof *sm->dims);
    sm->dim_label = arena_alloc(&sm->arena, (n_dims + 1) * sizeof *sm->dim_label);
    for (size_t i = 0; i < n_dims; i++) {
        sm->dims[i] = arena_strndup(&sm->arena, dims[i], strlen(dims[i]));
        sm->dim_label[i] = promname_label(&sm->arena, str_cstr(dims[i]));
        if (!sm->dim_label[i].len) {
            err_set(err, ERR_INVAL, "span metrics: dimension \"%s\" gives no label name", dims[i]);
            spanmetrics_free(sm);
            return ERR_INVAL;
        }
    }
    sm->n_dims = n_dims;

    const double *b = o->buckets_s ? o->buckets_s : spanmetrics_default_buckets;
    size_t nb = o->buckets_s ? o->n_buckets : spanmetrics_n_default_buckets;
    sm->bounds = arena_alloc(&sm->arena, (nb + 1) * sizeof *sm->bounds);
    sm->le = arena_alloc(&sm->arena, (nb + 1) * sizeof *sm->le);
    for (size_t i = 0; i < nb; i++) {
        if (!isfinite(b[i]) || (i > 0 && b[i] <= b[i - 1])) {
            spanmetrics_free(sm);
            return err_set(err, ERR_INVAL,
                           "span metrics: histogram buckets must be finite and ascending");
        }
        sm->bounds[i] = b[i];
        sm->le[i][fmt_float_prom(sm->le[i], b[i])] = '\0';
    }
    strcpy(sm->le[nb], "+Inf");
    sm->n_bounds = nb;
    *out = sm;
    return 0;
}

void spanmetrics_free(spanmetrics_t *sm)
{
    if (!sm)
        return;
    for (size_t i = 0; i < sm->n_series; i++)
        free(sm->series[i]);
    free(sm->series);
    u64map_deinit(&sm->index);
    arena_deinit(&sm->arena);
    free(sm);
}

int64_t spanmetrics_flush_interval_ms(const spanmetrics_t *sm) { return sm->flush_ms; }
size_t spanmetrics_n_series(const spanmetrics_t *sm) { return sm->n_series; }
uint64_t spanmetrics_dropped(const spanmetrics_t *sm) { return sm->dropped; }

static int cmp_label(const void *a, const void *b)
{
    const label_t *x = a, *y = b;
    return str_cmp(x->name, y->name);
}

/* A copy of ls (sorted) in one allocation with room for the bucket counts. */
static sm_series_t *series_new(const labels_t *ls, uint64_t hash, size_t n_counts)
{
    size_t strings = 0;
    for (size_t i = 0; i < ls->n; i++)
        strings += ls->v[i].name.len + ls->v[i].value.len;
    size_t head = sizeof(sm_series_t) + n_counts * sizeof(double);
    head = (head + _Alignof(label_t) - 1) & ~(_Alignof(label_t) - 1);
    sm_series_t *s = calloc(1, head + ls->n * sizeof(label_t) + strings);
    if (!s)
        return NULL;
    label_t *v = (label_t *)((char *)s + head);
    char *p = (char *)(v + ls->n);
    for (size_t i = 0; i < ls->n; i++) {
        v[i].name = (str_t){p, ls->v[i].name.len};
        memcpy(p, ls->v[i].name.ptr, ls->v[i].name.len);
        p += ls->v[i].name.len;
        v[i].value = (str_t){p, ls->v[i].value.len};
        memcpy(p, ls->v[i].value.ptr, ls->v[i].value.len);
        p += ls->v[i].value.len;
    }
    s->labels = (labels_t){v, ls->n};
    s->hash = hash;
    return s;
}

/* The series for ls (sorted), created when new; NULL when over max_series or out of memory. */
static sm_series_t *series_get(spanmetrics_t *sm, const labels_t *ls)
{
    uint64_t h = labels_hash(ls);
    for (uint64_t key = h;; key++) {
        uint64_t *idx = u64map_get(&sm->index, key);
        if (!idx)
            break;
        if (labels_eq(&sm->series[*idx]->labels, ls))
            return sm->series[*idx];
    }
    if (sm->n_series >= sm->max_series) {
        sm->dropped++;
        return NULL;
    }
    if (sm->n_series == sm->cap_series) {
        size_t cap = sm->cap_series ? sm->cap_series * 2 : 64;
        sm_series_t **nv = realloc(sm->series, cap * sizeof *nv);
        if (!nv)
            return NULL;
        sm->series = nv;
        sm->cap_series = cap;
    }
    sm_series_t *s = series_new(ls, h, sm->n_bounds + 1);
    if (!s)
        return NULL;
    uint64_t key = h;
    while (u64map_get(&sm->index, key))
        key++;
    u64map_put(&sm->index, key, sm->n_series);
    sm->series[sm->n_series++] = s;
    return s;
}

static const otlp_value_t *dim_value(const otlp_span_t *sp, const otlp_resource_t *r,
                                     const char *name)
{
    const otlp_value_t *v = otlp_attrs_get(&sp->attrs, name);
    return v ? v : otlp_attrs_get(&r->attrs, name);
}

void spanmetrics_observe(spanmetrics_t *sm, const otlp_traces_t *t)
{
    arena_t a;
    arena_init(&a, 4096);
    label_t lv[MAX_DIMS + 4];
    buf_t enc = BUF_INIT;
    for (size_t r = 0; r < t->n_rs; r++) {
        const otlp_resource_spans_t *rs = &t->rs[r];
        const otlp_value_t *svc = otlp_attrs_get(&rs->resource.attrs, "service.name");
        str_t service = svc ? otlp_value_to_str(svc, &a) : STR("");
        for (size_t s = 0; s < rs->n_scopes; s++) {
            const otlp_scope_spans_t *ss = &rs->scopes[s];
            for (size_t k = 0; k < ss->n_spans; k++) {
                const otlp_span_t *sp = &ss->spans[k];
                size_t n = 0;
                if (service.len)
                    lv[n++] = (label_t){STR("service"), service};
                if (sp->name.len)
                    lv[n++] = (label_t){STR("span_name"), sp->name};
                if (sp->kind >= 0 && sp->kind < 6)
                    lv[n++] = (label_t){STR("span_kind"), str_cstr(kind_names[sp->kind])};
                if (sp->status_code >= 0 && sp->status_code < 3)
                    lv[n++] =
                        (label_t){STR("status_code"), str_cstr(status_names[sp->status_code])};
                for (size_t d = 0; d < sm->n_dims; d++) {
                    const otlp_value_t *v = dim_value(sp, &rs->resource, sm->dims[d]);
                    str_t val = v ? otlp_value_to_str(v, &a) : STR("");
                    if (val.len)
                        lv[n++] = (label_t){sm->dim_label[d], val};
                }
                labels_t ls = {lv, n};
                qsort(lv, n, sizeof *lv, cmp_label);
                /* two dimensions with one label name (a.b and a_b): the first one wins */
                size_t w = 0;
                for (size_t i = 0; i < n; i++)
                    if (w == 0 || !str_eq(lv[w - 1].name, lv[i].name))
                        lv[w++] = lv[i];
                ls.n = w;
                sm_series_t *se = series_get(sm, &ls);
                if (!se)
                    continue;
                double dur =
                    sp->end_ns > sp->start_ns ? (double)(sp->end_ns - sp->start_ns) / 1e9 : 0;
                size_t b = 0;
                while (b < sm->n_bounds && dur > sm->bounds[b])
                    b++;
                se->buckets[b] += 1;
                se->calls += 1;
                se->lat_sum += dur;
                size_t size = sp->raw.len;
                if (!size) { /* decoded from JSON: the size its protobuf encoding has */
                    buf_clear(&enc);
                    otlp_pb_encode_span(&enc, sp);
                    size = buf_len(&enc);
                }
                se->size_bytes += (double)size;
                se->last_seen_ms = -1; /* stamped at the next flush */
            }
            arena_reset(&a);
        }
    }
    buf_deinit(&enc);
    arena_deinit(&a);
}

/* Appends name{ls..., extra} = v at ts. */
static void add(db_batch_t *b, const labels_t *ls, const char *name, const char *le, int64_t ts,
                double v)
{
    label_t lv[MAX_DIMS + 6];
    size_t n = 0;
    lv[n++] = (label_t){STR("__name__"), str_cstr(name)};
    for (size_t i = 0; i < ls->n; i++)
        lv[n++] = ls->v[i];
    if (le)
        lv[n++] = (label_t){STR("le"), str_cstr(le)};
    labels_t all = {lv, n};
    db_batch_add_sample(b, &all, ts, v);
}

static size_t emit(spanmetrics_t *sm, const sm_series_t *s, int64_t ts, bool zero, db_batch_t *b)
{
    const labels_t *ls = &s->labels;
    add(b, ls, "traces_spanmetrics_calls_total", NULL, ts, zero ? 0 : s->calls);
    add(b, ls, "traces_spanmetrics_size_total", NULL, ts, zero ? 0 : s->size_bytes);
    double cum = 0;
    for (size_t i = 0; i <= sm->n_bounds; i++) {
        cum += s->buckets[i];
        add(b, ls, "traces_spanmetrics_latency_bucket", sm->le[i], ts, zero ? 0 : cum);
    }
    add(b, ls, "traces_spanmetrics_latency_sum", NULL, ts, zero ? 0 : s->lat_sum);
    add(b, ls, "traces_spanmetrics_latency_count", NULL, ts, zero ? 0 : s->calls);
    return sm->n_bounds + 5;
}

size_t spanmetrics_flush(spanmetrics_t *sm, int64_t now_ms, db_batch_t *b)
{
    int64_t prev = sm->last_flush_ms > 0 && sm->last_flush_ms < now_ms ? sm->last_flush_ms
                                                                       : now_ms - sm->flush_ms;
    size_t n = 0, w = 0;
    bool removed = false;
    for (size_t i = 0; i < sm->n_series; i++) {
        sm_series_t *s = sm->series[i];
        if (s->last_seen_ms < 0)
            s->last_seen_ms = now_ms;
        if (now_ms - s->last_seen_ms > sm->stale_ms) {
            free(s);
            removed = true;
            continue;
        }
        if (!s->flushed)
            n += emit(sm, s, prev, true, b);
        s->flushed = true;
        n += emit(sm, s, now_ms, false, b);
        sm->series[w++] = s;
    }
    sm->n_series = w;
    if (removed) {
        u64map_clear(&sm->index);
        for (size_t i = 0; i < sm->n_series; i++) {
            uint64_t key = sm->series[i]->hash;
            while (u64map_get(&sm->index, key))
                key++;
            u64map_put(&sm->index, key, i);
        }
    }
    if (n) {
        db_batch_add_metadata(b, STR("traces_spanmetrics_calls"), DB_MTYPE_COUNTER,
                              STR("Spans received, by service, name, kind, status and dimensions."),
                              STR(""));
        db_batch_add_metadata(b, STR("traces_spanmetrics_size"), DB_MTYPE_COUNTER,
                              STR("Bytes of the spans received (protobuf encoding)."), STR(""));
        db_batch_add_metadata(b, STR("traces_spanmetrics_latency"), DB_MTYPE_HISTOGRAM,
                              STR("Span durations in seconds."), STR("seconds"));
    }
    sm->last_flush_ms = now_ms;
    return n;
}
