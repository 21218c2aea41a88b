/*
 * convert.c - OTLP model -> db_batch (see convert.h for the mapping rules).
 *
 * Label sets are assembled in a small builder: point attributes first (sanitised; attributes whose
 * names collide after sanitising are joined with ';' in key order, as Prometheus does), then
 * promoted resource attributes where the point has no such label, then job/instance (which
 * override), then the series-specific extras (__name__, le, quantile).
 */
#include "pipeline/convert.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fmtnum.h"
#include "base/hash.h"
#include "pipeline/promname.h"

const char *const convert_promoted_resource_attrs[] = {
    "service.name",
    "service.namespace",
    "service.version",
    "service.instance.id",
    "deployment.environment",
    "deployment.environment.name",
    "skill.name",
    "skill.version",
    "vcs.branch",
    "vcs.commit.sha",
    NULL,
};

const char *const convert_log_stream_attrs[] = {
    "service.name",
    "service.namespace",
    "service.instance.id",
    "deployment.environment",
    "deployment.environment.name",
    "cloud.region",
    "cloud.availability_zone",
    "k8s.cluster.name",
    "k8s.namespace.name",
    "k8s.pod.name",
    "k8s.container.name",
    "container.name",
    "k8s.replicaset.name",
    "k8s.deployment.name",
    "k8s.statefulset.name",
    "k8s.daemonset.name",
    "k8s.cronjob.name",
    "k8s.job.name",
    NULL,
};

#define STALE_NAN_BITS 0x7ff0000000000002ULL
/* Exponential histograms finer than this are merged down to it before becoming classic buckets:
 * 2^(1/8) growth, ~9% wide buckets. */
#define EXP_MAX_SCALE 3

static void reject(convert_result_t *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void reject(convert_result_t *res, const char *fmt, ...)
{
    res->rejected++;
    if (!res->reason[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(res->reason, sizeof res->reason, fmt, ap);
        va_end(ap);
    }
}

/* ---- label builder ---- */

typedef struct lb {
    label_t *v;
    size_t n, cap;
    size_t base_n; /* labels shared by every series of the current point */
    arena_t *a;
} lb_t;

static void lb_init(lb_t *b, arena_t *a, size_t cap)
{
    b->a = a;
    b->cap = cap + 8;
    b->v = arena_alloc(a, b->cap * sizeof(label_t)); /* filled before read: no zeroing */
    b->n = b->base_n = 0;
}

static ssize_t lb_find(const lb_t *b, str_t name)
{
    for (size_t i = 0; i < b->n; i++)
        if (str_eq(b->v[i].name, name))
            return (ssize_t)i;
    return -1;
}

static void lb_grow(lb_t *b)
{
    if (b->n < b->cap)
        return;
    label_t *nv = arena_alloc(b->a, b->cap * 2 * sizeof(label_t));
    memcpy(nv, b->v, b->n * sizeof *nv);
    b->v = nv;
    b->cap *= 2;
}

enum { LB_JOIN, LB_KEEP, LB_OVERRIDE };

static void lb_set(lb_t *b, str_t name, str_t value, int mode)
{
    if (!value.len)
        return; /* Prometheus drops empty-valued labels */
    ssize_t i = lb_find(b, name);
    if (i >= 0) {
        if (mode == LB_OVERRIDE) {
            b->v[i].value = value;
        } else if (mode == LB_JOIN) {
            str_t old = b->v[i].value;
            char *j = arena_alloc(b->a, old.len + value.len + 2);
            memcpy(j, old.ptr, old.len);
            j[old.len] = ';';
            memcpy(j + old.len + 1, value.ptr, value.len);
            b->v[i].value = (str_t){j, old.len + 1 + value.len};
        }
        return;
    }
    lb_grow(b);
    b->v[b->n++] = (label_t){name, value};
}

static int kv_key_cmp(const void *x, const void *y)
{
    return str_cmp(((const otlp_kv_t *)x)->key, ((const otlp_kv_t *)y)->key);
}

/* Adds attributes in key order so that collisions join deterministically. */
static void lb_add_attrs(lb_t *b, const otlp_attrs_t *attrs, int mode)
{
    if (!attrs->n)
        return;
    otlp_kv_t *sorted = arena_alloc(b->a, attrs->n * sizeof(otlp_kv_t));
    memcpy(sorted, attrs->v, attrs->n * sizeof *sorted);
    if (attrs->n > 16) {
        qsort(sorted, attrs->n, sizeof *sorted, kv_key_cmp);
    } else { /* insertion sort: attribute lists are short, and this runs per data point */
        for (size_t i = 1; i < attrs->n; i++) {
            otlp_kv_t x = sorted[i];
            size_t j = i;
            for (; j > 0 && str_cmp(sorted[j - 1].key, x.key) > 0; j--)
                sorted[j] = sorted[j - 1];
            sorted[j] = x;
        }
    }
    for (size_t i = 0; i < attrs->n; i++) {
        str_t name = promname_label(b->a, sorted[i].key);
        if (!name.len)
            continue;
        lb_set(b, name, otlp_value_to_str(&sorted[i].value, b->a), mode);
    }
}

/* A labels_t over the builder's current content (sorted copy in the arena). */
static labels_t lb_labels(lb_t *b)
{
    labels_t ls = {arena_alloc(b->a, (b->n ? b->n : 1) * sizeof(label_t)), b->n};
    if (b->n)
        memcpy(ls.v, b->v, b->n * sizeof *ls.v);
    for (size_t i = 1; i < ls.n; i++) { /* names are unique by construction; sets are short */
        label_t x = ls.v[i];
        size_t j = i;
        for (; j > 0 && str_cmp(ls.v[j - 1].name, x.name) > 0; j--)
            ls.v[j] = ls.v[j - 1];
        ls.v[j] = x;
    }
    return ls;
}

/* ---- metrics ---- */

typedef struct res_ctx {
    const otlp_resource_t *r;
    str_t job, instance;
    label_t *promoted; /* promoted resource attributes as labels, computed once per resource */
    size_t n_promoted;
    int64_t max_ts_ms;
} res_ctx_t;

static void res_ctx_init(res_ctx_t *rc, const otlp_resource_t *r, arena_t *a)
{
    memset(rc, 0, sizeof *rc);
    rc->r = r;
    rc->max_ts_ms = INT64_MIN;
    const otlp_value_t *svc = otlp_attrs_get(&r->attrs, "service.name");
    const otlp_value_t *ns = otlp_attrs_get(&r->attrs, "service.namespace");
    const otlp_value_t *inst = otlp_attrs_get(&r->attrs, "service.instance.id");
    if (svc) {
        str_t s = otlp_value_to_str(svc, a);
        if (ns) {
            str_t n = otlp_value_to_str(ns, a);
            char *j = arena_alloc(a, n.len + s.len + 2);
            memcpy(j, n.ptr, n.len);
            j[n.len] = '/';
            memcpy(j + n.len + 1, s.ptr, s.len);
            rc->job = (str_t){j, n.len + 1 + s.len};
        } else {
            rc->job = s;
        }
    }
    if (inst)
        rc->instance = otlp_value_to_str(inst, a);
    size_t cap = sizeof convert_promoted_resource_attrs / sizeof convert_promoted_resource_attrs[0];
    rc->promoted = ARENA_ARRAY(a, label_t, cap);
    for (const char *const *p = convert_promoted_resource_attrs; *p; p++) {
        const otlp_value_t *v = otlp_attrs_get(&r->attrs, *p);
        if (v)
            rc->promoted[rc->n_promoted++] =
                (label_t){promname_label(a, str_cstr(*p)), otlp_value_to_str(v, a)};
    }
}

/* Sets up the builder with the labels every series of this point shares. */
static void point_labels(lb_t *b, const res_ctx_t *rc, const otlp_attrs_t *attrs, arena_t *a)
{
    lb_init(b, a, attrs->n + 16);
    lb_add_attrs(b, attrs, LB_JOIN);
    for (size_t i = 0; i < rc->n_promoted; i++)
        lb_set(b, rc->promoted[i].name, rc->promoted[i].value, LB_KEEP);
    if (rc->job.len)
        lb_set(b, STR("job"), rc->job, LB_OVERRIDE);
    if (rc->instance.len)
        lb_set(b, STR("instance"), rc->instance, LB_OVERRIDE);
    b->base_n = b->n;
}

static str_t suffixed(arena_t *a, str_t family, const char *suffix)
{
    size_t sl = strlen(suffix);
    char *p = arena_alloc(a, family.len + sl + 1);
    memcpy(p, family.ptr, family.len);
    memcpy(p + family.len, suffix, sl + 1);
    return (str_t){p, family.len + sl};
}

static str_t fmt_bound(arena_t *a, double v)
{
    char tmp[FMTNUM_MAX];
    size_t n = fmt_float_f(tmp, v);
    return (str_t){arena_strndup(a, tmp, n), n};
}

/* Emits one series: base labels + __name__ + optional extra label. A delta point also carries
 * its start time (0 when unknown), where a new cumulative series begins at zero. */
static void emit(db_batch_t *batch, lb_t *b, str_t name, const char *extra_name, str_t extra_val,
                 int64_t ts_ms, double v, bool delta, int64_t start_ms)
{
    b->n = b->base_n;
    lb_set(b, STR("__name__"), name, LB_OVERRIDE);
    if (extra_name)
        lb_set(b, str_cstr(extra_name), extra_val, LB_OVERRIDE);
    labels_t ls = lb_labels(b);
    if (delta)
        db_batch_add_delta(batch, &ls, start_ms, ts_ms, v);
    else
        db_batch_add_sample(batch, &ls, ts_ms, v);
}

static double stale_nan(void)
{
    double d;
    uint64_t bits = STALE_NAN_BITS;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static bool point_time(uint64_t time_ns, const char *what, str_t metric, int64_t *ts_ms,
                       convert_result_t *res)
{
    if (!time_ns) {
        reject(res, "metric %.*s: %s data point without time_unix_nano", STR_FMT(metric), what);
        return false;
    }
    *ts_ms = (int64_t)(time_ns / 1000000);
    return true;
}

static void convert_number(const otlp_metric_t *m, const res_ctx_t *rc0, db_batch_t *batch,
                           arena_t *a, convert_result_t *res, str_t family)
{
    res_ctx_t *rc = (res_ctx_t *)rc0;
    bool delta = m->type == OTLP_METRIC_SUM && m->temporality == OTLP_TEMPORALITY_DELTA;
    for (size_t i = 0; i < m->points.number.n; i++) {
        const otlp_number_point_t *p = &m->points.number.v[i];
        res->items++;
        int64_t ts;
        if (!point_time(p->time_ns, "number", m->name, &ts, res))
            continue;
        int64_t start_ms = (int64_t)(p->start_ns / 1000000);
        lb_t b;
        point_labels(&b, rc, &p->attrs, a);
        double v = p->is_int ? (double)p->as_int : p->as_double;
        if (p->flags & OTLP_FLAG_NO_RECORDED_VALUE) {
            v = stale_nan();
            emit(batch, &b, family, NULL, STR_NULL, ts, v, false, 0);
        } else {
            emit(batch, &b, family, NULL, STR_NULL, ts, v, delta, start_ms);
        }
        if (ts > rc->max_ts_ms)
            rc->max_ts_ms = ts;
    }
}

static void convert_histogram(const otlp_metric_t *m, res_ctx_t *rc, db_batch_t *batch, arena_t *a,
                              convert_result_t *res, str_t family)
{
    bool delta = m->temporality == OTLP_TEMPORALITY_DELTA;
    str_t bucket = suffixed(a, family, "_bucket"), sum = suffixed(a, family, "_sum"),
          count = suffixed(a, family, "_count");
    for (size_t i = 0; i < m->points.histogram.n; i++) {
        const otlp_histogram_point_t *p = &m->points.histogram.v[i];
        res->items++;
        int64_t ts;
        if (!point_time(p->time_ns, "histogram", m->name, &ts, res))
            continue;
        int64_t start_ms = (int64_t)(p->start_ns / 1000000);
        if (p->n_bucket_counts && p->n_bucket_counts != p->n_bounds + 1) {
            reject(res, "metric %.*s: histogram has %zu bucket counts for %zu bounds (want %zu)",
                   STR_FMT(m->name), p->n_bucket_counts, p->n_bounds, p->n_bounds + 1);
            continue;
        }
        lb_t b;
        point_labels(&b, rc, &p->attrs, a);
        bool stale = p->flags & OTLP_FLAG_NO_RECORDED_VALUE;
        bool d = delta && !stale;
        double cum = 0;
        for (size_t k = 0; k < p->n_bucket_counts; k++) {
            cum += (double)p->bucket_counts[k];
            str_t le = k < p->n_bounds ? fmt_bound(a, p->bounds[k]) : STR("+Inf");
            if (k < p->n_bounds && isinf(p->bounds[k]) && p->bounds[k] > 0)
                continue; /* an explicit +Inf bound duplicates the implicit last bucket */
            emit(batch, &b, bucket, "le", le, ts, stale ? stale_nan() : cum, d, start_ms);
        }
        if (!p->n_bucket_counts) /* no buckets: still expose +Inf = count */
            emit(batch, &b, bucket, "le", STR("+Inf"), ts, stale ? stale_nan() : (double)p->count,
                 d, start_ms);
        if (p->has_sum)
            emit(batch, &b, sum, NULL, STR_NULL, ts, stale ? stale_nan() : p->sum, d, start_ms);
        emit(batch, &b, count, NULL, STR_NULL, ts, stale ? stale_nan() : (double)p->count, d,
             start_ms);
        if (ts > rc->max_ts_ms)
            rc->max_ts_ms = ts;
    }
}

/* floor(j / 2^shift) for negative j too. */
static int64_t idx_down(int64_t j, int shift)
{
    return j >= 0 ? j >> shift : -((-j - 1) >> shift) - 1;
}

typedef struct exp_bucket {
    double le;
    double count;
} exp_bucket_t;

static int exp_bucket_cmp(const void *x, const void *y)
{
    double a = ((const exp_bucket_t *)x)->le, b = ((const exp_bucket_t *)y)->le;
    return a < b ? -1 : a > b;
}

static void convert_exp_histogram(const otlp_metric_t *m, res_ctx_t *rc, db_batch_t *batch,
                                  arena_t *a, convert_result_t *res, str_t family)
{
    bool delta = m->temporality == OTLP_TEMPORALITY_DELTA;
    str_t bucket = suffixed(a, family, "_bucket"), sum = suffixed(a, family, "_sum"),
          count = suffixed(a, family, "_count");
    for (size_t i = 0; i < m->points.exp_histogram.n; i++) {
        const otlp_exp_histogram_point_t *p = &m->points.exp_histogram.v[i];
        res->items++;
        int64_t ts;
        if (!point_time(p->time_ns, "exponential histogram", m->name, &ts, res))
            continue;
        int64_t start_ms = (int64_t)(p->start_ns / 1000000);
        if (p->scale < -10 || p->scale > 20) {
            reject(res, "metric %.*s: exponential histogram scale %d outside [-10, 20]",
                   STR_FMT(m->name), p->scale);
            continue;
        }
        int scale = p->scale, shift = 0;
        if (scale > EXP_MAX_SCALE) {
            shift = scale - EXP_MAX_SCALE;
            scale = EXP_MAX_SCALE;
        }
        double base = pow(2.0, pow(2.0, -scale));
        size_t nb = p->positive.n + p->negative.n + 1;
        exp_bucket_t *bk = ARENA_ARRAY(a, exp_bucket_t, nb);
        size_t n = 0;
        /* Merged buckets are adjacent after downscaling, so merge runs in one pass. */
        for (size_t k = 0; k < p->negative.n; k++) {
            int64_t j = idx_down((int64_t)p->negative.offset + (int64_t)k, shift);
            double le = -pow(base, (double)j); /* |v| in (base^j, base^(j+1)] */
            if (n && bk[n - 1].le == le)
                bk[n - 1].count += (double)p->negative.counts[k];
            else
                bk[n++] = (exp_bucket_t){le, (double)p->negative.counts[k]};
        }
        bk[n++] = (exp_bucket_t){p->zero_threshold, (double)p->zero_count};
        size_t pos0 = n;
        for (size_t k = 0; k < p->positive.n; k++) {
            int64_t j = idx_down((int64_t)p->positive.offset + (int64_t)k, shift);
            double le = pow(base, (double)(j + 1));
            if (n > pos0 && bk[n - 1].le == le)
                bk[n - 1].count += (double)p->positive.counts[k];
            else
                bk[n++] = (exp_bucket_t){le, (double)p->positive.counts[k]};
        }
        qsort(bk, n, sizeof *bk, exp_bucket_cmp);
        lb_t b;
        point_labels(&b, rc, &p->attrs, a);
        bool stale = p->flags & OTLP_FLAG_NO_RECORDED_VALUE;
        bool d = delta && !stale;
        double cum = 0;
        for (size_t k = 0; k < n; k++) {
            cum += bk[k].count;
            if (k + 1 < n && bk[k + 1].le == bk[k].le)
                continue;
            emit(batch, &b, bucket, "le", fmt_bound(a, bk[k].le), ts, stale ? stale_nan() : cum, d,
                 start_ms);
        }
        emit(batch, &b, bucket, "le", STR("+Inf"), ts, stale ? stale_nan() : (double)p->count, d,
             start_ms);
        if (p->has_sum)
            emit(batch, &b, sum, NULL, STR_NULL, ts, stale ? stale_nan() : p->sum, d, start_ms);
        emit(batch, &b, count, NULL, STR_NULL, ts, stale ? stale_nan() : (double)p->count, d,
             start_ms);
        if (ts > rc->max_ts_ms)
            rc->max_ts_ms = ts;
    }
}

static void convert_summary(const otlp_metric_t *m, res_ctx_t *rc, db_batch_t *batch, arena_t *a,
                            convert_result_t *res, str_t family)
{
    str_t sum = suffixed(a, family, "_sum"), count = suffixed(a, family, "_count");
    for (size_t i = 0; i < m->points.summary.n; i++) {
        const otlp_summary_point_t *p = &m->points.summary.v[i];
        res->items++;
        int64_t ts;
        if (!point_time(p->time_ns, "summary", m->name, &ts, res))
            continue;
        lb_t b;
        point_labels(&b, rc, &p->attrs, a);
        bool stale = p->flags & OTLP_FLAG_NO_RECORDED_VALUE;
        for (size_t k = 0; k < p->n_quantiles; k++)
            emit(batch, &b, family, "quantile", fmt_bound(a, p->quantiles[k].quantile), ts,
                 stale ? stale_nan() : p->quantiles[k].value, false, 0);
        emit(batch, &b, sum, NULL, STR_NULL, ts, stale ? stale_nan() : p->sum, false, 0);
        emit(batch, &b, count, NULL, STR_NULL, ts, stale ? stale_nan() : (double)p->count, false,
             0);
        if (ts > rc->max_ts_ms)
            rc->max_ts_ms = ts;
    }
}

/*
 * Family names are computed per metric per request, and exporters send the same few names every
 * time: remember the last results. A direct-mapped cache keyed by a hash of (name, unit, kind);
 * an entry is trusted only when name and unit compare equal. Loop thread only.
 */
#define NAME_CACHE_SLOTS 1024

typedef struct name_entry {
    uint64_t key;
    char *name, *unit, *family;
    size_t name_len, unit_len, family_len;
} name_entry_t;

static name_entry_t name_cache[NAME_CACHE_SLOTS];

static str_t family_name(arena_t *a, str_t name, str_t unit, promname_kind_t kind)
{
    uint64_t key = hash64(name.ptr, name.len, hash64(unit.ptr, unit.len, (uint64_t)kind + 1));
    name_entry_t *e = &name_cache[key % NAME_CACHE_SLOTS];
    if (e->key == key && e->name_len == name.len && e->unit_len == unit.len &&
        (!name.len || memcmp(e->name, name.ptr, name.len) == 0) &&
        (!unit.len || memcmp(e->unit, unit.ptr, unit.len) == 0))
        return arena_str(a, (str_t){e->family, e->family_len}); /* the slot may be reused */
    str_t fam = promname_metric(a, name, unit, kind);
    char *mem = realloc(e->name, name.len + unit.len + fam.len + 3);
    if (!mem)
        return fam;
    e->key = key;
    e->name = mem;
    e->unit = mem + name.len + 1;
    e->family = e->unit + unit.len + 1;
    if (name.len) /* an absent unit (or name) has a NULL ptr */
        memcpy(e->name, name.ptr, name.len);
    if (unit.len)
        memcpy(e->unit, unit.ptr, unit.len);
    if (fam.len)
        memcpy(e->family, fam.ptr, fam.len);
    e->name_len = name.len;
    e->unit_len = unit.len;
    e->family_len = fam.len;
    return fam;
}

static bool identifying(str_t key)
{
    return str_eq_cstr(key, "service.name") || str_eq_cstr(key, "service.namespace") ||
           str_eq_cstr(key, "service.instance.id");
}

/* target_info{job, instance, <other resource attributes>} 1 at the resource's latest point. */
static void emit_target_info(const res_ctx_t *rc, db_batch_t *batch, arena_t *a)
{
    if (rc->max_ts_ms == INT64_MIN)
        return;
    const otlp_attrs_t *ra = &rc->r->attrs;
    otlp_attrs_t rest = {ARENA_ARRAY(a, otlp_kv_t, ra->n ? ra->n : 1), 0};
    for (size_t i = 0; i < ra->n; i++)
        if (!identifying(ra->v[i].key))
            rest.v[rest.n++] = ra->v[i];
    if (!rest.n)
        return;
    lb_t b;
    lb_init(&b, a, rest.n + 4);
    lb_add_attrs(&b, &rest, LB_JOIN);
    if (rc->job.len)
        lb_set(&b, STR("job"), rc->job, LB_OVERRIDE);
    if (rc->instance.len)
        lb_set(&b, STR("instance"), rc->instance, LB_OVERRIDE);
    b.base_n = b.n;
    emit(batch, &b, STR("target_info"), NULL, STR_NULL, rc->max_ts_ms, 1, false, 0);
}

void convert_metrics(const otlp_metrics_t *m, db_batch_t *batch, arena_t *a, convert_result_t *res)
{
    bool target_info_meta = false;
    for (size_t r = 0; r < m->n_rm; r++) {
        const otlp_resource_metrics_t *rm = &m->rm[r];
        res_ctx_t rc;
        res_ctx_init(&rc, &rm->resource, a);
        for (size_t s = 0; s < rm->n_scopes; s++) {
            const otlp_scope_metrics_t *sm = &rm->scopes[s];
            for (size_t k = 0; k < sm->n_metrics; k++) {
                const otlp_metric_t *mt = &sm->metrics[k];
                if (!mt->name.len) {
                    reject(res, "metric without a name");
                    continue;
                }
                promname_kind_t kind = PROMNAME_GAUGE;
                db_mtype_t mtype = DB_MTYPE_GAUGE;
                switch (mt->type) {
                case OTLP_METRIC_SUM:
                    if (mt->is_monotonic) {
                        kind = PROMNAME_COUNTER;
                        mtype = DB_MTYPE_COUNTER;
                    }
                    break;
                case OTLP_METRIC_HISTOGRAM:
                case OTLP_METRIC_EXP_HISTOGRAM:
                    kind = PROMNAME_HISTOGRAM;
                    mtype = DB_MTYPE_HISTOGRAM;
                    break;
                case OTLP_METRIC_SUMMARY:
                    kind = PROMNAME_SUMMARY;
                    mtype = DB_MTYPE_SUMMARY;
                    break;
                case OTLP_METRIC_NONE:
                    continue; /* no data: nothing to store */
                default:
                    break;
                }
                str_t family = family_name(a, mt->name, mt->unit, kind);
                db_batch_add_metadata(batch, family, mtype, mt->description, mt->unit);
                switch (mt->type) {
                case OTLP_METRIC_GAUGE:
                case OTLP_METRIC_SUM:
                    convert_number(mt, &rc, batch, a, res, family);
                    break;
                case OTLP_METRIC_HISTOGRAM:
                    convert_histogram(mt, &rc, batch, a, res, family);
                    break;
                case OTLP_METRIC_EXP_HISTOGRAM:
                    convert_exp_histogram(mt, &rc, batch, a, res, family);
                    break;
                case OTLP_METRIC_SUMMARY:
                    convert_summary(mt, &rc, batch, a, res, family);
                    break;
                default:
                    break;
                }
            }
        }
        if (!target_info_meta && rc.max_ts_ms != INT64_MIN) {
            db_batch_add_metadata(batch, STR("target_info"), DB_MTYPE_GAUGE, STR("Target metadata"),
                                  STR_NULL);
            target_info_meta = true;
        }
        emit_target_info(&rc, batch, a);
    }
}

/* ---- traces ---- */

static str_t encoded(arena_t *a, str_t raw, void (*enc)(buf_t *, const void *), const void *msg)
{
    if (raw.len)
        return raw;
    buf_t b;
    buf_init(&b, 256);
    enc(&b, msg);
    str_t s = arena_str(a, buf_str(&b));
    buf_deinit(&b);
    return s;
}

static void enc_resource(buf_t *b, const void *m) { otlp_pb_encode_resource(b, m); }
static void enc_scope(buf_t *b, const void *m) { otlp_pb_encode_scope(b, m); }
static void enc_span(buf_t *b, const void *m) { otlp_pb_encode_span(b, m); }

void convert_traces(const otlp_traces_t *t, db_batch_t *batch, arena_t *a, convert_result_t *res)
{
    for (size_t r = 0; r < t->n_rs; r++) {
        const otlp_resource_spans_t *rs = &t->rs[r];
        const otlp_value_t *svc = otlp_attrs_get(&rs->resource.attrs, "service.name");
        str_t service = svc ? otlp_value_to_str(svc, a) : STR("unknown_service");
        str_t res_pb = encoded(a, rs->resource.raw, enc_resource, &rs->resource);
        for (size_t s = 0; s < rs->n_scopes; s++) {
            const otlp_scope_spans_t *ss = &rs->scopes[s];
            str_t scope_pb = encoded(a, ss->scope.raw, enc_scope, &ss->scope);
            for (size_t k = 0; k < ss->n_spans; k++) {
                const otlp_span_t *sp = &ss->spans[k];
                res->items++;
                if (sp->start_ns > (uint64_t)INT64_MAX || sp->end_ns > (uint64_t)INT64_MAX) {
                    reject(res, "span %.*s: timestamp out of range", STR_FMT(sp->name));
                    continue;
                }
                db_span_t row;
                memset(&row, 0, sizeof row);
                memcpy(row.trace_id, sp->trace_id, 16);
                memcpy(row.span_id, sp->span_id, 8);
                if (sp->has_parent)
                    memcpy(row.parent_span_id, sp->parent_span_id, 8);
                row.start_ns = (int64_t)sp->start_ns;
                row.end_ns = (int64_t)sp->end_ns;
                row.name = sp->name;
                row.service_name = service;
                row.kind = sp->kind;
                row.status_code = sp->status_code;
                row.resource_pb = res_pb;
                row.scope_pb = scope_pb;
                row.span_pb = encoded(a, sp->raw, enc_span, sp);
                db_batch_add_span(batch, &row);
            }
        }
    }
}

/* ---- logs ---- */

/* Loki flattens map attributes into name_subname labels. */
static void meta_add(lb_t *b, str_t key, const otlp_value_t *v, int depth)
{
    if (v->type == OTLP_V_KVLIST && depth < 4) {
        for (size_t i = 0; i < v->u.kvlist.n; i++) {
            str_t sub = v->u.kvlist.v[i].key;
            char *j = arena_alloc(b->a, key.len + sub.len + 2);
            memcpy(j, key.ptr, key.len);
            j[key.len] = '_';
            memcpy(j + key.len + 1, sub.ptr, sub.len);
            meta_add(b, (str_t){j, key.len + 1 + sub.len}, &v->u.kvlist.v[i].value, depth + 1);
        }
        return;
    }
    str_t name = promname_label(b->a, key);
    if (!name.len)
        return;
    lb_set(b, name, otlp_value_to_str(v, b->a), LB_KEEP);
}

static bool is_stream_attr(str_t key)
{
    for (const char *const *p = convert_log_stream_attrs; *p; p++)
        if (str_eq_cstr(key, *p))
            return true;
    return false;
}

static str_t hex_str(arena_t *a, const uint8_t *id, size_t n)
{
    char *p = arena_alloc(a, 2 * n + 1);
    otlp_hex(p, id, n);
    return (str_t){p, 2 * n};
}

/* Decimal text of v in the arena (no printf: this runs several times per log record). */
static str_t u64_str(arena_t *a, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return arena_str(a, (str_t){tmp + sizeof tmp - n, n});
}

void convert_logs(const otlp_logs_t *l, db_batch_t *batch, arena_t *a, int64_t now_ns,
                  convert_result_t *res)
{
    for (size_t r = 0; r < l->n_rl; r++) {
        const otlp_resource_logs_t *rl = &l->rl[r];
        const otlp_attrs_t *ra = &rl->resource.attrs;
        lb_t stream;
        lb_init(&stream, a, ra->n + 2);
        for (size_t i = 0; i < ra->n; i++)
            if (is_stream_attr(ra->v[i].key))
                lb_set(&stream, promname_label(a, ra->v[i].key),
                       otlp_value_to_str(&ra->v[i].value, a), LB_KEEP);
        if (lb_find(&stream, STR("service_name")) < 0)
            lb_set(&stream, STR("service_name"), STR("unknown_service"), LB_KEEP);
        stream.base_n = stream.n;
        labels_t sls = {0};
        str_t sls_event = STR_NULL; /* event_name the cached stream labels were built for */
        bool have_sls = false;
        for (size_t s = 0; s < rl->n_scopes; s++) {
            const otlp_scope_logs_t *sl = &rl->scopes[s];
            /* Metadata shared by every record of this scope: other resource attributes, scope
             * attributes, scope name and version. Record attributes take precedence over it. */
            lb_t shared;
            lb_init(&shared, a, ra->n + sl->scope.attrs.n + 2);
            for (size_t i = 0; i < ra->n; i++)
                if (!is_stream_attr(ra->v[i].key))
                    meta_add(&shared, ra->v[i].key, &ra->v[i].value, 0);
            for (size_t i = 0; i < sl->scope.attrs.n; i++)
                meta_add(&shared, sl->scope.attrs.v[i].key, &sl->scope.attrs.v[i].value, 0);
            if (sl->scope.name.len)
                lb_set(&shared, STR("scope_name"), sl->scope.name, LB_KEEP);
            if (sl->scope.version.len)
                lb_set(&shared, STR("scope_version"), sl->scope.version, LB_KEEP);
            for (size_t k = 0; k < sl->n_logs; k++) {
                const otlp_log_t *lg = &sl->logs[k];
                res->items++;
                uint64_t ts = lg->time_ns ? lg->time_ns : lg->observed_time_ns;
                if (ts > (uint64_t)INT64_MAX) {
                    reject(res, "log record: timestamp out of range");
                    continue;
                }
                str_t event = lg->event_name;
                const otlp_value_t *ev = otlp_attrs_get(&lg->attrs, "event.name");
                if (!event.len && ev)
                    event = otlp_value_to_str(ev, a);
                if (!have_sls || !str_eq(event, sls_event)) {
                    stream.n = stream.base_n;
                    if (event.len)
                        lb_set(&stream, STR("event_name"), event, LB_OVERRIDE);
                    sls = lb_labels(&stream);
                    sls_event = event;
                    have_sls = true;
                }

                lb_t meta;
                lb_init(&meta, a, lg->attrs.n + shared.n + 8);
                for (size_t i = 0; i < lg->attrs.n; i++)
                    if (!str_eq_cstr(lg->attrs.v[i].key, "event.name"))
                        meta_add(&meta, lg->attrs.v[i].key, &lg->attrs.v[i].value, 0);
                for (size_t i = 0; i < shared.n; i++)
                    lb_set(&meta, shared.v[i].name, shared.v[i].value, LB_KEEP);
                if (lg->severity_text.len)
                    lb_set(&meta, STR("severity_text"), lg->severity_text, LB_OVERRIDE);
                if (lg->severity_number)
                    lb_set(&meta, STR("severity_number"),
                           u64_str(a, (uint64_t)(unsigned)lg->severity_number), LB_OVERRIDE);
                if (lg->observed_time_ns)
                    lb_set(&meta, STR("observed_timestamp"), u64_str(a, lg->observed_time_ns),
                           LB_OVERRIDE);
                if (lg->flags)
                    lb_set(&meta, STR("flags"), u64_str(a, lg->flags), LB_OVERRIDE);
                if (lg->has_trace_id)
                    lb_set(&meta, STR("trace_id"), hex_str(a, lg->trace_id, 16), LB_OVERRIDE);
                if (lg->has_span_id)
                    lb_set(&meta, STR("span_id"), hex_str(a, lg->span_id, 8), LB_OVERRIDE);
                labels_t mls = lb_labels(&meta);

                str_t line =
                    lg->body.type == OTLP_V_EMPTY ? STR("") : otlp_value_to_str(&lg->body, a);
                db_batch_add_log(batch, &sls, ts ? (int64_t)ts : now_ns, line, &mls);
            }
        }
    }
}
