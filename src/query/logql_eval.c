/*
 * logql_eval.c - LogQL evaluation over the log store (Loki pkg/logql/engine.go, evaluator.go,
 * range_vector.go, vector aggregation and binary operators as in PromQL).
 *
 * Log queries stream the selected entries (db_logs_select, in the requested direction) through
 * the pipeline and file each surviving entry under its post-pipeline label set until `limit`
 * entries are collected.
 *
 * Metric queries are evaluated step-wise like Loki: steps are start, start+step, ... <= end. A
 * range aggregation reads every entry in (start-offset-range, end-offset] once, runs the pipeline
 * and the sample extractor (count/bytes or unwrap), keeps per output series the (ts, value) samples
 * in time order, and then slides the left-open window (t-offset-range, t-offset] over them. Series
 * values are dense arrays over the steps with a presence byte, so vector aggregation and binary
 * operators can match series once and combine step by step, as PromQL does (the semantics match
 * src/query/promql_agg.c / promql_binop.c; those take PromQL AST nodes, so they are not shared).
 *
 * A range aggregation whose output series still carries __error__ fails the query with Loki's
 * pipeline error message; grouping (`by`/`without` on unwrapped aggregations) is applied at
 * extraction unless the sample has an error, which keeps all labels (Loki's GroupedLabels).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/hash.h"
#include "query/logql_internal.h"

#define NS_PER_S 1000000000LL
/* Series one range aggregation may build before the query is refused (memory bound: each keeps
 * one value and one presence byte per step). */
#define LQ_MAX_INNER_SERIES 200000

typedef struct vser {
    labels_t ls;
    double *v;
    uint8_t *has;
} vser_t;

typedef struct val {
    bool scalar;
    double *sv;
    vser_t *s;
    size_t n;
} val_t;

typedef struct ev {
    db_t *db;
    arena_t *a;
    err_t *err;
    const lq_opts_t *o;
    int64_t start, step;
    size_t n; /* steps */
    lq_stats_t *stats;
} ev_t;

static int64_t step_t(const ev_t *e, size_t i) { return e->start + (int64_t)i * e->step; }

/* ---- label-set map ---- */

typedef struct smap {
    u64map_t m;
    labels_t *ls; /* index -> labels */
    size_t n, cap;
    arena_t *a;
} smap_t;

static void smap_init(smap_t *s, arena_t *a)
{
    memset(s, 0, sizeof *s);
    u64map_init(&s->m);
    s->a = a;
}

/* Index of ls (copied when new); *created tells which. */
static size_t smap_get(smap_t *s, const labels_t *ls, bool add, bool *created)
{
    uint64_t h = labels_hash(ls);
    if (created)
        *created = false;
    for (uint64_t k = h;; k = k * 0x9e3779b97f4a7c15ULL + 1) {
        uint64_t key = k ? k : 1;
        uint64_t *slot = u64map_get(&s->m, key);
        if (slot) {
            if (labels_eq(&s->ls[*slot - 1], ls))
                return (size_t)*slot - 1;
            continue;
        }
        if (!add)
            return (size_t)-1;
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 16;
            labels_t *v = arena_alloc(s->a, cap * sizeof *v);
            if (s->n)
                memcpy(v, s->ls, s->n * sizeof *v);
            s->ls = v;
            s->cap = cap;
        }
        s->ls[s->n] = labels_copy(ls, s->a);
        u64map_put(&s->m, key, ++s->n);
        if (created)
            *created = true;
        return s->n - 1;
    }
}

static void smap_deinit(smap_t *s) { u64map_deinit(&s->m); }

static vser_t *new_series(ev_t *e, size_t n)
{
    vser_t *s = arena_calloc(e->a, n ? n : 1, sizeof *s);
    for (size_t i = 0; i < n; i++) {
        s[i].v = arena_calloc(e->a, e->n, sizeof(double));
        s[i].has = arena_calloc(e->a, e->n, 1);
    }
    return s;
}

static int check_deadline(ev_t *e)
{
    if (e->o->deadline_ns && clock_mono_ns() > e->o->deadline_ns)
        return err_set(e->err, ERR_TIMEOUT, "query timed out");
    return 0;
}

/* ---- range aggregations ---- */

typedef struct rser {
    lq_point_t *p;
    size_t n, cap;
} rser_t;

typedef struct rctx {
    ev_t *e;
    const lq_expr_t *x;
    lq_builder_t b;
    arena_t scratch;
    smap_t map;
    rser_t *s;
    size_t s_cap;
    u64map_t fast; /* stream pointer -> series index + 1 (no label-changing stages, no meta) */
    bool fast_ok;
    const lq_grouping_t *push; /* a sum's grouping applied at extraction (see eval_vagg) */
    int rc;
    uint64_t seen;
} rctx_t;

static bool stages_change_labels(const lq_log_t *l)
{
    for (size_t i = 0; i < l->n_stages; i++)
        if (l->stages[i].kind != LQS_LINE_FILTER && l->stages[i].kind != LQS_DECOLORIZE &&
            l->stages[i].kind != LQS_LINE_FORMAT)
            return true;
    return false;
}

static labels_t group_labels(arena_t *a, const labels_t *ls, const lq_grouping_t *g,
                             str_t extra_drop)
{
    labels_t out = {arena_alloc(a, (ls->n + 1) * sizeof(label_t)), 0};
    for (size_t i = 0; i < ls->n; i++) {
        bool named = false;
        for (size_t k = 0; g && k < g->n && !named; k++)
            named = str_eq(g->names[k], ls->v[i].name);
        bool keep;
        if (g && g->present && !g->without)
            keep = named;
        else
            keep = !named && !(extra_drop.len && str_eq(extra_drop, ls->v[i].name));
        if (keep)
            out.v[out.n++] = ls->v[i];
    }
    return out;
}

static bool range_entry(void *arg, const db_log_entry_t *de)
{
    rctx_t *r = arg;
    const lq_expr_t *x = r->x;
    ev_t *e = r->e;
    e->stats->lines_scanned++;
    e->stats->bytes_scanned += de->line.len;
    if ((++r->seen & 4095) == 0 && check_deadline(e) != 0) {
        r->rc = ERR_TIMEOUT;
        return false;
    }
    size_t idx;
    double v = 1;
    size_t k0 = lq__n_leading_filters(&x->log);
    for (size_t i = 0; i < k0; i++)
        if (!lq__line_filter(&x->log.stages[i], de->line))
            return true;
    bool simple = r->fast_ok && (!de->meta || de->meta->n == 0);
    if (simple && x->log.n_stages == k0 && !x->unwrap) {
        /* no pipeline at all: the stream is the series */
        uint64_t key = (uint64_t)(uintptr_t)de->stream;
        uint64_t *slot = u64map_get(&r->fast, key);
        if (slot) {
            idx = (size_t)*slot - 1;
        } else {
            idx = smap_get(&r->map, de->stream, true, NULL);
            u64map_put(&r->fast, key, idx + 1);
        }
        if (x->rop == LQ_R_BYTES || x->rop == LQ_R_BYTES_RATE)
            v = (double)de->line.len;
    } else {
        arena_reset(&r->scratch);
        r->b.a = &r->scratch;
        lq_builder_reset(&r->b, de->stream, de->meta, de->line, de->ts_ns);
        if (!lq_pipeline_run(x->log.stages + k0, x->log.n_stages - k0, &r->b))
            return true;
        if (x->unwrap) {
            bool ok;
            str_t sv = lq_builder_get(&r->b, x->unwrap_label, &ok);
            if (!sv.len)
                return true;
            char msg[128];
            int rc = x->conv == LQ_CONV_DURATION ? lq_parse_go_duration(sv, &v, msg)
                     : x->conv == LQ_CONV_BYTES  ? lq_parse_bytes(sv, &v, msg)
                                                 : lq_parse_float(sv, &v, msg);
            if (rc != 0) {
                v = 0;
                if (!r->b.err.len) {
                    r->b.err = STR("SampleExtractionErr");
                    r->b.err_details = arena_str(&r->scratch, str_cstr(msg));
                }
            }
            for (size_t i = 0; i < x->n_post; i++)
                if (!lq_label_filter(x->post[i], &r->b))
                    return true;
        } else if (x->rop == LQ_R_BYTES || x->rop == LQ_R_BYTES_RATE) {
            v = (double)r->b.line.len;
        }
        labels_t ls = lq_builder_labels(&r->b);
        if (!r->b.err.len && (x->grouping.present || x->unwrap))
            ls = group_labels(&r->scratch, &ls, &x->grouping,
                              x->unwrap ? x->unwrap_label : STR_NULL);
        if (r->push) {
            /* keep __error__ through the pushed-down grouping so the query still fails on it */
            labels_t g = group_labels(&r->scratch, &ls, r->push, STR_NULL);
            if (r->b.err.len) {
                labels_t ge = {arena_alloc(&r->scratch, (g.n + 2) * sizeof(label_t)), 0};
                memcpy(ge.v, g.v, g.n * sizeof(label_t));
                ge.n = g.n;
                for (size_t i = 0; i < ls.n; i++)
                    if (str_eq_cstr(ls.v[i].name, "__error__") ||
                        str_eq_cstr(ls.v[i].name, "__error_details__"))
                        ge.v[ge.n++] = ls.v[i];
                labels_sort(&ge);
                g = ge;
            }
            ls = g;
        }
        idx = smap_get(&r->map, &ls, true, NULL);
    }
    if (idx >= r->s_cap) {
        size_t cap = r->s_cap ? r->s_cap * 2 : 16;
        while (cap <= idx)
            cap *= 2;
        rser_t *ns = arena_calloc(e->a, cap, sizeof *ns);
        if (r->s_cap)
            memcpy(ns, r->s, r->s_cap * sizeof *ns);
        r->s = ns;
        r->s_cap = cap;
    }
    rser_t *s = &r->s[idx];
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        lq_point_t *p = malloc(cap * sizeof *p);
        if (!p) {
            r->rc = ERR_NOMEM;
            return false;
        }
        if (s->n)
            memcpy(p, s->p, s->n * sizeof *p);
        free(s->p);
        s->p = p;
        s->cap = cap;
    }
    s->p[s->n++] = (lq_point_t){de->ts_ns, v};
    if (r->map.n > LQ_MAX_INNER_SERIES) {
        r->rc = err_set(e->err, ERR_TOOBIG,
                        "a range aggregation produced more than %d series; aggregate it with sum "
                        "by (...) or drop high-cardinality labels (| drop x, | keep a, b)",
                        LQ_MAX_INNER_SERIES);
        return false;
    }
    return true;
}

static void kahan(double inc, double *sum, double *c)
{
    double t = *sum + inc;
    if (isinf(t))
        *c = 0;
    else if (fabs(*sum) >= fabs(inc))
        *c += (*sum - t) + inc;
    else
        *c += (inc - t) + *sum;
    *sum = t;
}

static double quantile(double q, double *v, size_t n);

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    if (isnan(x))
        return isnan(y) ? 0 : -1;
    if (isnan(y))
        return 1;
    return x < y ? -1 : x > y;
}

static double quantile(double q, double *v, size_t n)
{
    if (!n || isnan(q))
        return NAN;
    if (q < 0)
        return -INFINITY;
    if (q > 1)
        return INFINITY;
    qsort(v, n, sizeof *v, cmp_dbl);
    double rank = q * (double)(n - 1);
    size_t lo = (size_t)floor(rank);
    size_t hi = lo + 1 < n ? lo + 1 : n - 1;
    double w = rank - (double)lo;
    return v[lo] * (1 - w) + v[hi] * w;
}

static double rate_counter(const lq_point_t *p, size_t n, int64_t t_end, int64_t range)
{
    if (n < 2)
        return 0;
    double first = p[0].v, last = p[n - 1].v;
    double result = last - first, prev = first;
    for (size_t i = 1; i < n; i++) {
        if (p[i].v < prev)
            result += prev;
        prev = p[i].v;
    }
    double range_s = (double)range / 1e9;
    double to_start = (double)(p[0].t_ns - (t_end - range)) / 1e9;
    double to_end = (double)(t_end - p[n - 1].t_ns) / 1e9;
    double sampled = (double)(p[n - 1].t_ns - p[0].t_ns) / 1e9;
    double avg = sampled / (double)(n - 1);
    double thr = avg * 1.1;
    if (to_start >= thr)
        to_start = avg / 2;
    if (result > 0 && first >= 0) {
        double to_zero = sampled * (first / result);
        if (to_zero < to_start)
            to_start = to_zero;
    }
    double ext = sampled + to_start;
    if (to_end >= thr)
        to_end = avg / 2;
    ext += to_end;
    return result * (ext / sampled) / range_s;
}

static double window_agg(const lq_expr_t *x, const lq_point_t *p, size_t n, int64_t t_end,
                         double *scratch)
{
    double range_s = (double)x->range_ns / 1e9;
    double sum = 0, c = 0;
    switch (x->rop) {
    case LQ_R_COUNT:
        return (double)n;
    case LQ_R_RATE:
        if (!x->unwrap)
            return (double)n / range_s;
        for (size_t i = 0; i < n; i++)
            kahan(p[i].v, &sum, &c);
        return (sum + c) / range_s;
    case LQ_R_BYTES:
    case LQ_R_BYTES_RATE:
    case LQ_R_SUM:
        for (size_t i = 0; i < n; i++)
            kahan(p[i].v, &sum, &c);
        return x->rop == LQ_R_BYTES_RATE ? (sum + c) / range_s : sum + c;
    case LQ_R_AVG: {
        /* PromQL avg_over_time: Kahan sum / count, with an incremental fallback on overflow */
        for (size_t i = 0; i < n; i++)
            kahan(p[i].v, &sum, &c);
        double r = (sum + c) / (double)n;
        bool any_inf = false;
        for (size_t i = 0; i < n && !any_inf; i++)
            any_inf = isinf(p[i].v);
        if (isinf(r) && !any_inf) { /* the sum overflowed: incremental mean */
            double mean = 0;
            for (size_t i = 0; i < n; i++)
                mean += p[i].v / (double)n - mean / (double)n;
            return mean;
        }
        return r;
    }
    case LQ_R_MIN: {
        double m = p[0].v;
        for (size_t i = 1; i < n; i++)
            if (p[i].v < m || isnan(m))
                m = p[i].v;
        return m;
    }
    case LQ_R_MAX: {
        double m = p[0].v;
        for (size_t i = 1; i < n; i++)
            if (p[i].v > m || isnan(m))
                m = p[i].v;
        return m;
    }
    case LQ_R_STDVAR:
    case LQ_R_STDDEV: {
        double mean = 0, m2 = 0;
        for (size_t i = 0; i < n; i++) {
            double d = p[i].v - mean;
            mean += d / (double)(i + 1);
            m2 += d * (p[i].v - mean);
        }
        double var = m2 / (double)n;
        return x->rop == LQ_R_STDDEV ? sqrt(var) : var;
    }
    case LQ_R_QUANTILE:
        for (size_t i = 0; i < n; i++)
            scratch[i] = p[i].v;
        return quantile(x->param, scratch, n);
    case LQ_R_FIRST:
        return p[0].v;
    case LQ_R_LAST:
        return p[n - 1].v;
    case LQ_R_RATE_COUNTER:
        return rate_counter(p, n, t_end, x->range_ns);
    case LQ_R_ABSENT:
        return 1;
    }
    return 0;
}

static void pipeline_error(ev_t *e, const labels_t *ls)
{
    buf_t b = BUF_INIT;
    labels_format(&b, ls);
    str_t er = labels_get(ls, "__error__");
    err_set(e->err, ERR_INVAL,
            "pipeline error: '%.*s' for series: '%.*s'.\nUse a label filter to intentionally skip "
            "this error. (e.g | __error__!=\"%.*s\").\nTo skip all potential errors you can match "
            "empty errors.(e.g __error__=\"\")\nThe label filter can also be specified after "
            "unwrap. (e.g | unwrap latency | __error__=\"\" )\n",
            STR_FMT(er), STR_FMT(buf_str(&b)), STR_FMT(er));
    buf_deinit(&b);
}

static int eval_range(ev_t *e, const lq_expr_t *x, const lq_grouping_t *push, val_t *out)
{
    rctx_t r = {.e = e, .x = x, .push = push};
    arena_init(&r.scratch, 64 * 1024);
    smap_init(&r.map, e->a);
    u64map_init(&r.fast);
    r.fast_ok = !stages_change_labels(&x->log) && !x->unwrap && !x->grouping.present && !push;
    int64_t last = step_t(e, e->n - 1);
    int64_t mint = e->start - x->offset_ns - x->range_ns + 1;
    int64_t maxt = last - x->offset_ns;
    int rc = 0;
    if (maxt >= mint)
        rc = db_logs_select(e->db, x->log.ms, x->log.n_ms, mint, maxt, false, 0, range_entry, &r,
                            e->err);
    if (!rc)
        rc = r.rc;
    arena_deinit(&r.scratch);
    u64map_deinit(&r.fast);
    if (rc) {
        for (size_t i = 0; i < r.map.n; i++)
            free(r.s[i].p);
        smap_deinit(&r.map);
        return rc;
    }
    size_t ns = r.map.n;
    memset(out, 0, sizeof *out);
    if (x->rop == LQ_R_ABSENT) {
        /* one series of the selector's equality labels, present where nothing matched */
        labels_t ls = {arena_alloc(e->a, (x->log.n_ms + 1) * sizeof(label_t)), 0};
        for (size_t i = 0; i < x->log.n_ms; i++) {
            const matcher_t *m = &x->log.ms[i];
            bool dup = false;
            for (size_t k = 0; k < ls.n; k++)
                dup |= str_eq(ls.v[k].name, m->name);
            if (m->type == MATCH_EQ && !dup)
                ls.v[ls.n++] = (label_t){m->name, m->value};
        }
        labels_sort(&ls);
        out->s = new_series(e, 1);
        out->n = 1;
        out->s[0].ls = ls;
        size_t *lo = arena_calloc(e->a, ns + 1, sizeof *lo);
        size_t *hi = arena_calloc(e->a, ns + 1, sizeof *hi);
        for (size_t i = 0; i < e->n; i++) {
            int64_t te = step_t(e, i) - x->offset_ns, ts = te - x->range_ns;
            bool any = false;
            for (size_t k = 0; k < ns; k++) {
                rser_t *s = &r.s[k];
                while (hi[k] < s->n && s->p[hi[k]].t_ns <= te)
                    hi[k]++;
                while (lo[k] < hi[k] && s->p[lo[k]].t_ns <= ts)
                    lo[k]++;
                if (hi[k] > lo[k])
                    any = true;
            }
            if (!any) {
                out->s[0].v[i] = 1;
                out->s[0].has[i] = 1;
            }
        }
        for (size_t i = 0; i < ns; i++)
            free(r.s[i].p);
        smap_deinit(&r.map);
        return 0;
    }
    out->s = new_series(e, ns);
    out->n = ns;
    size_t maxn = 0;
    for (size_t k = 0; k < ns; k++)
        if (r.s[k].n > maxn)
            maxn = r.s[k].n;
    double *scratch = x->rop == LQ_R_QUANTILE ? malloc((maxn + 1) * sizeof(double)) : NULL;
    for (size_t k = 0; k < ns && !rc; k++) {
        rser_t *s = &r.s[k];
        vser_t *o = &out->s[k];
        o->ls = r.map.ls[k];
        size_t lo = 0, hi = 0;
        bool any = false;
        /* count and bytes windows in O(1) from prefix sums (integers: exact in a double), so
         * a long range with a small step does not rescan the overlap at every step */
        bool count_only = !x->unwrap && (x->rop == LQ_R_COUNT || x->rop == LQ_R_RATE);
        bool bytes = x->rop == LQ_R_BYTES || x->rop == LQ_R_BYTES_RATE;
        double *pre = NULL;
        if (bytes && e->n > 1) {
            pre = malloc((s->n + 1) * sizeof *pre);
            if (!pre) {
                rc = ERR_NOMEM;
                break;
            }
            pre[0] = 0;
            for (size_t q = 0; q < s->n; q++)
                pre[q + 1] = pre[q] + s->p[q].v;
        }
        for (size_t i = 0; i < e->n; i++) {
            int64_t te = step_t(e, i) - x->offset_ns, ts = te - x->range_ns;
            while (hi < s->n && s->p[hi].t_ns <= te)
                hi++;
            while (lo < hi && s->p[lo].t_ns <= ts)
                lo++;
            if (hi == lo)
                continue;
            if (count_only)
                o->v[i] = x->rop == LQ_R_COUNT ? (double)(hi - lo)
                                               : (double)(hi - lo) / ((double)x->range_ns / 1e9);
            else if (pre)
                o->v[i] = x->rop == LQ_R_BYTES ? pre[hi] - pre[lo]
                                               : (pre[hi] - pre[lo]) / ((double)x->range_ns / 1e9);
            else
                o->v[i] = window_agg(x, s->p + lo, hi - lo, te, scratch);
            o->has[i] = 1;
            any = true;
        }
        free(pre);
        if (any && labels_get(&o->ls, "__error__").len) {
            pipeline_error(e, &o->ls);
            rc = ERR_INVAL;
        }
    }
    free(scratch);
    for (size_t i = 0; i < ns; i++)
        free(r.s[i].p);
    smap_deinit(&r.map);
    return rc;
}

/* ---- vector aggregation ---- */

static int eval(ev_t *e, const lq_expr_t *x, val_t *out);

static int cmp_labels_p_series(const void *a, const void *b)
{
    return labels_cmp(&((const lq_series_t *)a)->labels, &((const lq_series_t *)b)->labels);
}

typedef struct kv {
    double v;
    size_t idx;
} kv_t;

static bool g_desc;
static int cmp_kv(const void *a, const void *b)
{
    const kv_t *x = a, *y = b;
    int r;
    if (isnan(x->v) || isnan(y->v))
        r = isnan(x->v) && isnan(y->v) ? 0 : isnan(x->v) ? 1 : -1; /* NaN last */
    else
        r = x->v < y->v ? -1 : x->v > y->v;
    if (g_desc && !(isnan(x->v) || isnan(y->v)))
        r = -r;
    if (!r)
        r = x->idx < y->idx ? -1 : x->idx > y->idx;
    return r;
}

/* sum by (g) over an additive range aggregation (count, rate, bytes, sum_over_time) equals the
 * range aggregation over samples grouped by g at extraction, which never materialises the
 * per-stream series (one per entry when metadata is unique, as OTLP events' often is). */
static bool can_push_sum(const lq_expr_t *x)
{
    const lq_expr_t *r = x->inner;
    return x->vop == LQ_V_SUM && r->kind == LQ_RANGE && !r->grouping.present &&
           (r->rop == LQ_R_COUNT || r->rop == LQ_R_RATE || r->rop == LQ_R_BYTES ||
            r->rop == LQ_R_BYTES_RATE || r->rop == LQ_R_SUM);
}

static int eval_vagg(ev_t *e, const lq_expr_t *x, val_t *out)
{
    val_t in;
    if (can_push_sum(x)) {
        lq_grouping_t g = x->grouping;
        g.present = true; /* sum (...) without grouping: by () */
        return eval_range(e, x->inner, &g, out);
    }
    int rc = eval(e, x->inner, &in);
    if (rc)
        return rc;
    memset(out, 0, sizeof *out);
    if (in.scalar)
        return err_set(e->err, ERR_INVAL, "unexpected scalar in vector aggregation");
    if (x->vop == LQ_V_APPROX_TOPK && e->n > 1)
        return err_set(e->err, ERR_INVAL, "approx_topk is only supported on instant queries");
    /* groups */
    smap_t gm;
    smap_init(&gm, e->a);
    size_t *grp = arena_alloc(e->a, (in.n + 1) * sizeof *grp);
    for (size_t k = 0; k < in.n; k++) {
        labels_t g = group_labels(e->a, &in.s[k].ls, &x->grouping, STR_NULL);
        if (!x->grouping.present)
            g.n = 0;
        grp[k] = smap_get(&gm, &g, true, NULL);
    }
    size_t ng = gm.n;
    if (x->vop == LQ_V_TOPK || x->vop == LQ_V_BOTTOMK || x->vop == LQ_V_APPROX_TOPK ||
        x->vop == LQ_V_SORT || x->vop == LQ_V_SORT_DESC) {
        vser_t *o = new_series(e, in.n);
        for (size_t k = 0; k < in.n; k++)
            o[k].ls = in.s[k].ls;
        size_t kk = (size_t)x->param;
        kv_t *tmp = arena_alloc(e->a, (in.n + 1) * sizeof *tmp);
        for (size_t i = 0; i < e->n; i++) {
            if (x->vop == LQ_V_SORT || x->vop == LQ_V_SORT_DESC) {
                for (size_t k = 0; k < in.n; k++)
                    if (in.s[k].has[i]) {
                        o[k].v[i] = in.s[k].v[i];
                        o[k].has[i] = 1;
                    }
                continue;
            }
            for (size_t g = 0; g < ng; g++) {
                size_t m = 0;
                for (size_t k = 0; k < in.n; k++)
                    if (grp[k] == g && in.s[k].has[i])
                        tmp[m++] = (kv_t){in.s[k].v[i], k};
                g_desc = x->vop != LQ_V_BOTTOMK;
                qsort(tmp, m, sizeof *tmp, cmp_kv);
                for (size_t j = 0; j < m && j < kk; j++) {
                    o[tmp[j].idx].v[i] = tmp[j].v;
                    o[tmp[j].idx].has[i] = 1;
                }
            }
        }
        out->s = o;
        out->n = in.n;
        if (e->n == 1 && x->vop != LQ_V_APPROX_TOPK) {
            /* instant: order the result as Loki does (sorted by value) */
            size_t m = 0;
            for (size_t k = 0; k < in.n; k++)
                if (o[k].has[0])
                    tmp[m++] = (kv_t){o[k].v[0], k};
            g_desc = x->vop == LQ_V_SORT_DESC || x->vop == LQ_V_TOPK;
            qsort(tmp, m, sizeof *tmp, cmp_kv);
            vser_t *sorted = arena_alloc(e->a, (m + 1) * sizeof *sorted);
            for (size_t j = 0; j < m; j++)
                sorted[j] = o[tmp[j].idx];
            out->s = sorted;
            out->n = m;
        }
        smap_deinit(&gm);
        return 0;
    }
    vser_t *o = new_series(e, ng);
    for (size_t g = 0; g < ng; g++)
        o[g].ls = gm.ls[g];
    double *acc = arena_calloc(e->a, ng * 4 + 1, sizeof(double));
    size_t *cnt = arena_calloc(e->a, ng + 1, sizeof(size_t));
    for (size_t i = 0; i < e->n; i++) {
        memset(acc, 0, ng * 4 * sizeof(double));
        memset(cnt, 0, ng * sizeof(size_t));
        for (size_t k = 0; k < in.n; k++) {
            if (!in.s[k].has[i])
                continue;
            size_t g = grp[k];
            double v = in.s[k].v[i];
            double *a = &acc[g * 4];
            size_t c = cnt[g]++;
            switch (x->vop) {
            case LQ_V_SUM:
                kahan(v, &a[0], &a[1]);
                break;
            case LQ_V_AVG:
                kahan(v, &a[0], &a[1]);
                break;
            case LQ_V_COUNT:
                break;
            case LQ_V_MAX:
                if (!c || v > a[0] || isnan(a[0]))
                    a[0] = v;
                break;
            case LQ_V_MIN:
                if (!c || v < a[0] || isnan(a[0]))
                    a[0] = v;
                break;
            case LQ_V_STDDEV:
            case LQ_V_STDVAR: {
                double d = v - a[0];
                a[0] += d / (double)(c + 1);
                a[1] += d * (v - a[0]);
                break;
            }
            default:
                break;
            }
        }
        for (size_t g = 0; g < ng; g++) {
            if (!cnt[g])
                continue;
            double *a = &acc[g * 4], r = 0;
            switch (x->vop) {
            case LQ_V_SUM:
                r = a[0] + a[1];
                break;
            case LQ_V_AVG:
                r = (a[0] + a[1]) / (double)cnt[g];
                break;
            case LQ_V_COUNT:
                r = (double)cnt[g];
                break;
            case LQ_V_MAX:
            case LQ_V_MIN:
                r = a[0];
                break;
            case LQ_V_STDVAR:
                r = a[1] / (double)cnt[g];
                break;
            case LQ_V_STDDEV:
                r = sqrt(a[1] / (double)cnt[g]);
                break;
            default:
                break;
            }
            o[g].v[i] = r;
            o[g].has[i] = 1;
        }
    }
    smap_deinit(&gm);
    out->s = o;
    out->n = ng;
    return 0;
}

/* ---- binary operators ---- */

static bool is_cmp_op(lq_bop_t op) { return op >= LQ_B_EQ && op <= LQ_B_LE; }

static bool binop(lq_bop_t op, double l, double r, double *out)
{
    switch (op) {
    case LQ_B_ADD:
        *out = l + r;
        return true;
    case LQ_B_SUB:
        *out = l - r;
        return true;
    case LQ_B_MUL:
        *out = l * r;
        return true;
    case LQ_B_DIV:
        *out = r == 0 ? NAN : l / r;
        return true; /* Loki: x/0 is NaN */
    case LQ_B_MOD:
        *out = r == 0 ? NAN : fmod(l, r);
        return true;
    case LQ_B_POW:
        *out = pow(l, r);
        return true;
    case LQ_B_EQ:
        *out = l;
        return l == r;
    case LQ_B_NE:
        *out = l;
        return l != r;
    case LQ_B_GT:
        *out = l;
        return l > r;
    case LQ_B_GE:
        *out = l;
        return l >= r;
    case LQ_B_LT:
        *out = l;
        return l < r;
    case LQ_B_LE:
        *out = l;
        return l <= r;
    default:
        return false;
    }
}

static labels_t match_sig(arena_t *a, const lq_expr_t *x, const labels_t *ls)
{
    if (!x->has_on)
        return *ls;
    lq_grouping_t g = {true, !x->on, x->on_names, x->n_on};
    return group_labels(a, ls, &g, STR_NULL);
}

static labels_t result_labels(ev_t *e, const lq_expr_t *x, const labels_t *many,
                              const labels_t *one)
{
    labels_t ls = *many;
    if (x->card == 0 && x->has_on) {
        lq_grouping_t g = {true, !x->on, x->on_names, x->n_on};
        ls = group_labels(e->a, many, &g, STR_NULL);
    }
    if (x->n_inc) {
        labels_t o = {arena_alloc(e->a, (ls.n + x->n_inc) * sizeof(label_t)), 0};
        for (size_t i = 0; i < ls.n; i++) {
            bool inc = false;
            for (size_t k = 0; k < x->n_inc; k++)
                inc |= str_eq(x->inc_names[k], ls.v[i].name);
            if (!inc)
                o.v[o.n++] = ls.v[i];
        }
        for (size_t k = 0; k < x->n_inc; k++) {
            str_t v = STR_NULL;
            for (size_t i = 0; i < one->n; i++)
                if (str_eq(one->v[i].name, x->inc_names[k]))
                    v = one->v[i].value;
            bool dup = false;
            for (size_t i = 0; i < o.n; i++)
                dup |= str_eq(o.v[i].name, x->inc_names[k]);
            if (v.len && !dup)
                o.v[o.n++] = (label_t){x->inc_names[k], v};
        }
        labels_sort(&o);
        ls = o;
    }
    return ls;
}

static int vv_binop(ev_t *e, const lq_expr_t *x, val_t *l, val_t *r, val_t *out)
{
    size_t nl = l->n, nr = r->n;
    labels_t *sl = arena_alloc(e->a, (nl + 1) * sizeof *sl);
    labels_t *sr = arena_alloc(e->a, (nr + 1) * sizeof *sr);
    for (size_t k = 0; k < nl; k++)
        sl[k] = match_sig(e->a, x, &l->s[k].ls);
    for (size_t k = 0; k < nr; k++)
        sr[k] = match_sig(e->a, x, &r->s[k].ls);
    /* signature ids shared by both sides */
    smap_t sm;
    smap_init(&sm, e->a);
    size_t *il = arena_alloc(e->a, (nl + 1) * sizeof *il);
    size_t *ir = arena_alloc(e->a, (nr + 1) * sizeof *ir);
    for (size_t k = 0; k < nl; k++)
        il[k] = smap_get(&sm, &sl[k], true, NULL);
    for (size_t k = 0; k < nr; k++)
        ir[k] = smap_get(&sm, &sr[k], true, NULL);
    size_t nsig = sm.n;
    smap_deinit(&sm);
    size_t *slot = arena_alloc(e->a, (nsig + 1) * sizeof *slot);
    memset(out, 0, sizeof *out);
    if (x->bop == LQ_B_AND || x->bop == LQ_B_UNLESS || x->bop == LQ_B_OR) {
        size_t n = nl + (x->bop == LQ_B_OR ? nr : 0);
        vser_t *o = new_series(e, n);
        uint8_t *present = arena_alloc(e->a, nsig + 1);
        for (size_t k = 0; k < nl; k++)
            o[k].ls = l->s[k].ls;
        for (size_t k = 0; x->bop == LQ_B_OR && k < nr; k++)
            o[nl + k].ls = r->s[k].ls;
        for (size_t i = 0; i < e->n; i++) {
            memset(present, 0, nsig);
            const val_t *other = x->bop == LQ_B_OR ? l : r;
            const size_t *io = x->bop == LQ_B_OR ? il : ir;
            for (size_t k = 0; k < other->n; k++)
                if (other->s[k].has[i])
                    present[io[k]] = 1;
            for (size_t k = 0; k < nl; k++) {
                if (!l->s[k].has[i])
                    continue;
                bool keep = x->bop == LQ_B_OR    ? true
                            : x->bop == LQ_B_AND ? present[il[k]]
                                                 : !present[il[k]];
                if (keep) {
                    o[k].v[i] = l->s[k].v[i];
                    o[k].has[i] = 1;
                }
            }
            for (size_t k = 0; x->bop == LQ_B_OR && k < nr; k++)
                if (r->s[k].has[i] && !present[ir[k]]) {
                    o[nl + k].v[i] = r->s[k].v[i];
                    o[nl + k].has[i] = 1;
                }
        }
        /* merge series with equal labels (or can yield the same set from both sides) */
        smap_t om;
        smap_init(&om, e->a);
        vser_t *m = new_series(e, n);
        for (size_t k = 0; k < n; k++) {
            bool any = false;
            for (size_t i = 0; i < e->n && !any; i++)
                any = o[k].has[i];
            if (!any)
                continue;
            bool created;
            size_t j = smap_get(&om, &o[k].ls, true, &created);
            m[j].ls = om.ls[j];
            for (size_t i = 0; i < e->n; i++)
                if (o[k].has[i] && !m[j].has[i]) {
                    m[j].v[i] = o[k].v[i];
                    m[j].has[i] = 1;
                }
        }
        out->s = m;
        out->n = om.n;
        smap_deinit(&om);
        return 0;
    }
    /* arithmetic / comparison: "many" side and "one" side */
    bool right_many = x->card == 2;
    val_t *many = right_many ? r : l, *one = right_many ? l : r;
    size_t *imany = right_many ? ir : il, *ione = right_many ? il : ir;
    smap_t om;
    smap_init(&om, e->a);
    size_t ocap = 16, on = 0;
    vser_t *o = new_series(e, ocap);
    size_t *cache = arena_alloc(e->a, (many->n + 1) * sizeof *cache);
    for (size_t k = 0; k < many->n; k++)
        cache[k] = (size_t)-1;
    size_t *used = arena_alloc(e->a, (nsig + 1) * sizeof *used);
    for (size_t i = 0; i < e->n; i++) {
        for (size_t s = 0; s < nsig; s++)
            slot[s] = (size_t)-1;
        for (size_t k = 0; k < one->n; k++) {
            if (!one->s[k].has[i])
                continue;
            if (slot[ione[k]] != (size_t)-1) {
                buf_t b = BUF_INIT;
                labels_format(&b, right_many ? &sl[k] : &sr[k]);
                err_set(e->err, ERR_INVAL,
                        "found duplicate series on the %s hand-side of the operation (match "
                        "group %.*s); many-to-many matching not allowed: matching labels must be "
                        "unique on one side",
                        right_many ? "left" : "right", STR_FMT(buf_str(&b)));
                buf_deinit(&b);
                smap_deinit(&om);
                return ERR_INVAL;
            }
            slot[ione[k]] = k;
        }
        for (size_t s = 0; s < nsig; s++)
            used[s] = (size_t)-1;
        for (size_t k = 0; k < many->n; k++) {
            if (!many->s[k].has[i])
                continue;
            size_t j = slot[imany[k]];
            if (j == (size_t)-1)
                continue;
            if (x->card == 0) {
                if (used[imany[k]] != (size_t)-1) {
                    smap_deinit(&om);
                    return err_set(e->err, ERR_INVAL,
                                   "multiple matches for labels: many-to-one matching must be "
                                   "explicit (group_left/group_right)");
                }
                used[imany[k]] = k;
            }
            double lv = right_many ? one->s[j].v[i] : many->s[k].v[i];
            double rv = right_many ? many->s[k].v[i] : one->s[j].v[i];
            double v;
            bool keep = binop(x->bop, lv, rv, &v);
            if (is_cmp_op(x->bop)) {
                if (x->bool_mod) {
                    v = keep ? 1 : 0;
                    keep = true;
                }
            } else {
                keep = true;
            }
            if (!keep)
                continue;
            labels_t rl;
            if (cache[k] == (size_t)-1 || x->n_inc) {
                rl = result_labels(e, x, &many->s[k].ls, &one->s[j].ls);
            } else {
                rl = om.ls[cache[k]];
            }
            bool created;
            size_t oi = smap_get(&om, &rl, true, &created);
            if (!x->n_inc)
                cache[k] = oi;
            if (oi >= ocap) {
                vser_t *nv = new_series(e, ocap * 2);
                for (size_t q = 0; q < on; q++)
                    nv[q] = o[q];
                o = nv;
                ocap *= 2;
            }
            if (created) {
                o[oi].ls = om.ls[oi];
                on = oi + 1;
            }
            if (o[oi].has[i]) {
                smap_deinit(&om);
                return err_set(e->err, ERR_INVAL,
                               x->card == 0 ? "multiple matches for labels: many-to-one matching "
                                              "must be explicit (group_left/group_right)"
                                            : "multiple matches for labels: grouping labels must "
                                              "ensure unique matches");
            }
            o[oi].v[i] = v;
            o[oi].has[i] = 1;
        }
    }
    smap_deinit(&om);
    out->s = o;
    out->n = on;
    return 0;
}

static int eval_bin(ev_t *e, const lq_expr_t *x, val_t *out)
{
    val_t l, r;
    int rc = eval(e, x->lhs, &l);
    if (!rc)
        rc = eval(e, x->rhs, &r);
    if (rc)
        return rc;
    memset(out, 0, sizeof *out);
    if (l.scalar && r.scalar) {
        out->scalar = true;
        out->sv = arena_alloc(e->a, e->n * sizeof(double));
        for (size_t i = 0; i < e->n; i++) {
            double v;
            bool keep = binop(x->bop, l.sv[i], r.sv[i], &v);
            if (is_cmp_op(x->bop))
                v = keep ? 1 : 0;
            out->sv[i] = v;
        }
        return 0;
    }
    if (l.scalar || r.scalar) {
        if (x->bop <= LQ_B_UNLESS)
            return err_set(e->err, ERR_INVAL,
                           "unexpected literal for %s leg of logical/set binary operation",
                           l.scalar ? "left" : "right");
        val_t *vec = l.scalar ? &r : &l;
        vser_t *o = new_series(e, vec->n);
        for (size_t k = 0; k < vec->n; k++) {
            o[k].ls = vec->s[k].ls;
            for (size_t i = 0; i < e->n; i++) {
                if (!vec->s[k].has[i])
                    continue;
                double lv = l.scalar ? l.sv[i] : vec->s[k].v[i];
                double rv = l.scalar ? vec->s[k].v[i] : r.sv[i];
                double v;
                bool keep = binop(x->bop, lv, rv, &v);
                if (is_cmp_op(x->bop)) {
                    if (x->bool_mod) {
                        v = keep ? 1 : 0;
                        keep = true;
                    } else {
                        v = vec->s[k].v[i];
                    }
                } else {
                    keep = true;
                }
                if (keep) {
                    o[k].v[i] = v;
                    o[k].has[i] = 1;
                }
            }
        }
        out->s = o;
        out->n = vec->n;
        return 0;
    }
    return vv_binop(e, x, &l, &r, out);
}

/* ---- label_replace ---- */

static int eval_label_replace(ev_t *e, const lq_expr_t *x, val_t *out)
{
    val_t in;
    int rc = eval(e, x->inner, &in);
    if (rc)
        return rc;
    if (in.scalar)
        return err_set(e->err, ERR_INVAL, "label_replace expects a vector");
    const matcher_t *m = x->re;
    *out = in;
    out->s = arena_alloc(e->a, (in.n + 1) * sizeof(vser_t));
    for (size_t k = 0; k < in.n; k++) {
        out->s[k] = in.s[k];
        str_t src = labels_get(&in.s[k].ls, arena_strndup(e->a, x->src.ptr, x->src.len));
        if (!src.ptr)
            src = STR("");
        int n = pcre2_match(m->re, (PCRE2_SPTR)(src.ptr ? src.ptr : ""), src.len, 0, 0, m->re_match,
                            NULL);
        if (n < 0)
            continue;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->re_match);
        buf_t b = BUF_INIT;
        str_t t = x->repl;
        for (size_t i = 0; i < t.len; i++) {
            if (t.ptr[i] != '$' || i + 1 >= t.len) {
                buf_putc(&b, t.ptr[i]);
                continue;
            }
            size_t j = i + 1;
            bool brace = t.ptr[j] == '{';
            if (brace)
                j++;
            size_t st = j;
            while (j < t.len && (isalnum((unsigned char)t.ptr[j]) || t.ptr[j] == '_'))
                j++;
            str_t name = {t.ptr + st, j - st};
            if (brace) {
                if (j >= t.len || t.ptr[j] != '}') {
                    buf_putc(&b, '$');
                    continue;
                }
                j++;
            }
            if (!name.len) {
                buf_putc(&b, '$');
                continue;
            }
            int g = -1;
            bool digits = true;
            for (size_t q = 0; q < name.len; q++)
                digits &= name.ptr[q] >= '0' && name.ptr[q] <= '9';
            if (digits) {
                g = atoi(arena_strndup(e->a, name.ptr, name.len));
            } else {
                g = pcre2_substring_number_from_name(
                    m->re, (PCRE2_SPTR)arena_strndup(e->a, name.ptr, name.len));
            }
            if (g >= 0 && g < n && ov[2 * g] != PCRE2_UNSET)
                buf_append(&b, src.ptr + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
            i = j - 1;
        }
        str_t v = arena_str(e->a, buf_str(&b));
        buf_deinit(&b);
        const labels_t *ls = &in.s[k].ls;
        labels_t nl = {arena_alloc(e->a, (ls->n + 1) * sizeof(label_t)), 0};
        for (size_t i = 0; i < ls->n; i++)
            if (!str_eq(ls->v[i].name, x->dst))
                nl.v[nl.n++] = ls->v[i];
        if (v.len)
            nl.v[nl.n++] = (label_t){x->dst, v};
        labels_sort(&nl);
        out->s[k].ls = nl;
    }
    return 0;
}

static int eval(ev_t *e, const lq_expr_t *x, val_t *out)
{
    int rc = check_deadline(e);
    if (rc)
        return rc;
    memset(out, 0, sizeof *out);
    switch (x->kind) {
    case LQ_LIT:
        out->scalar = true;
        out->sv = arena_alloc(e->a, e->n * sizeof(double));
        for (size_t i = 0; i < e->n; i++)
            out->sv[i] = x->value;
        return 0;
    case LQ_VECTOR:
        out->s = new_series(e, 1);
        out->n = 1;
        for (size_t i = 0; i < e->n; i++) {
            out->s[0].v[i] = x->value;
            out->s[0].has[i] = 1;
        }
        return 0;
    case LQ_RANGE:
        return eval_range(e, x, NULL, out);
    case LQ_VAGG:
        return eval_vagg(e, x, out);
    case LQ_BIN:
        return eval_bin(e, x, out);
    case LQ_LABEL_REPLACE:
        return eval_label_replace(e, x, out);
    case LQ_LOG:
        return err_set(e->err, ERR_INVAL, "log query used where a metric query is expected");
    }
    return ERR_INVAL;
}

/* ---- log queries ---- */

typedef struct lctx {
    ev_t *e;
    const lq_log_t *log;
    lq_builder_t b;
    arena_t scratch;
    smap_t map;
    lq_stream_t *st;
    size_t st_cap;
    uint32_t count, limit;
    bool backward;
    int64_t interval_ns;
    bool have_last;
    int64_t last_ts;
    int rc;
    uint64_t seen;
} lctx_t;

static bool log_entry(void *arg, const db_log_entry_t *de)
{
    lctx_t *c = arg;
    ev_t *e = c->e;
    e->stats->lines_scanned++;
    e->stats->bytes_scanned += de->line.len;
    if ((++c->seen & 4095) == 0 && check_deadline(e) != 0) {
        c->rc = ERR_TIMEOUT;
        return false;
    }
    if (c->interval_ns > 0 && c->have_last) {
        bool keep = c->backward ? de->ts_ns <= c->last_ts - c->interval_ns
                                : de->ts_ns >= c->last_ts + c->interval_ns;
        if (!keep)
            return true;
    }
    size_t k0 = lq__n_leading_filters(c->log);
    for (size_t i = 0; i < k0; i++)
        if (!lq__line_filter(&c->log->stages[i], de->line))
            return true;
    arena_reset(&c->scratch);
    c->b.a = &c->scratch;
    lq_builder_reset(&c->b, de->stream, de->meta, de->line, de->ts_ns);
    if (!lq_pipeline_run(c->log->stages + k0, c->log->n_stages - k0, &c->b))
        return true;
    labels_t ls = lq_builder_labels(&c->b);
    size_t idx = smap_get(&c->map, &ls, true, NULL);
    if (idx >= c->st_cap) {
        size_t cap = c->st_cap ? c->st_cap * 2 : 16;
        lq_stream_t *v = arena_calloc(e->a, cap, sizeof *v);
        if (c->st_cap)
            memcpy(v, c->st, c->st_cap * sizeof *v);
        c->st = v;
        c->st_cap = cap;
    }
    lq_stream_t *s = &c->st[idx];
    s->labels = c->map.ls[idx];
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        lq_entry_t *v = arena_alloc(e->a, cap * sizeof *v);
        if (s->n)
            memcpy(v, s->v, s->n * sizeof *v);
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (lq_entry_t){de->ts_ns, arena_str(e->a, c->b.line)};
    c->have_last = true;
    c->last_ts = de->ts_ns;
    c->count++;
    e->stats->lines_returned++;
    return c->count < c->limit;
}

static int cmp_stream(const void *a, const void *b)
{
    const lq_stream_t *x = a, *y = b;
    buf_t bx = BUF_INIT, by = BUF_INIT;
    labels_format(&bx, &x->labels);
    labels_format(&by, &y->labels);
    int r = str_cmp(buf_str(&bx), buf_str(&by));
    buf_deinit(&bx);
    buf_deinit(&by);
    return r;
}

static int exec_log(ev_t *e, const lq_log_t *log, int64_t start, int64_t end, lq_result_t *out)
{
    lctx_t c = {.e = e, .log = log, .limit = e->o->limit ? e->o->limit : 100};
    c.backward = e->o->backward;
    c.interval_ns = e->o->interval_ns;
    arena_init(&c.scratch, 64 * 1024);
    smap_init(&c.map, e->a);
    int rc = 0;
    if (end > start)
        rc = db_logs_select(e->db, log->ms, log->n_ms, start, end - 1, c.backward, 0, log_entry, &c,
                            e->err);
    if (!rc)
        rc = c.rc;
    arena_deinit(&c.scratch);
    out->type = LQ_RES_STREAMS;
    out->streams = c.st;
    out->n_streams = c.map.n;
    smap_deinit(&c.map);
    if (rc)
        return rc;
    if (out->n_streams > 1)
        qsort(out->streams, out->n_streams, sizeof *out->streams, cmp_stream);
    return 0;
}

/* True if an instant result keeps evaluation order (sort, sort_desc, topk, bottomk inside). */
static bool has_sort(const lq_expr_t *x)
{
    if (!x)
        return false;
    if (x->kind == LQ_VAGG && (x->vop == LQ_V_SORT || x->vop == LQ_V_SORT_DESC ||
                               x->vop == LQ_V_TOPK || x->vop == LQ_V_BOTTOMK))
        return true;
    return has_sort(x->inner) || has_sort(x->lhs) || has_sort(x->rhs);
}

int logql_exec(db_t *db, const logql_query_t *q, int64_t start_ns, int64_t end_ns, int64_t step_ns,
               const lq_opts_t *o, arena_t *a, lq_result_t *out, err_t *err)
{
    memset(out, 0, sizeof *out);
    int64_t t0 = clock_mono_ns();
    ev_t e = {.db = db,
              .a = a,
              .err = err,
              .o = o,
              .start = start_ns,
              .step = step_ns,
              .stats = &out->stats};
    int rc;
    if (q->root->kind == LQ_LOG) {
        rc = exec_log(&e, &q->root->log, start_ns, end_ns, out);
        out->stats.exec_s = (double)(clock_mono_ns() - t0) / 1e9;
        return rc;
    }
    e.n = step_ns > 0 ? (size_t)((end_ns - start_ns) / step_ns) + 1 : 1;
    val_t v;
    rc = eval(&e, q->root, &v);
    out->stats.exec_s = (double)(clock_mono_ns() - t0) / 1e9;
    if (rc)
        return rc;
    bool instant = step_ns == 0;
    if (v.scalar) {
        if (instant) {
            out->type = LQ_RES_SCALAR;
            out->scalar = v.sv[0];
            out->scalar_t_ns = start_ns;
            return 0;
        }
        out->type = LQ_RES_MATRIX;
        out->series = arena_calloc(a, 1, sizeof *out->series);
        out->n_series = 1;
        out->series[0].pts = arena_alloc(a, e.n * sizeof(lq_point_t));
        for (size_t i = 0; i < e.n; i++)
            out->series[0].pts[i] = (lq_point_t){step_t(&e, i), v.sv[i]};
        out->series[0].n = e.n;
        return 0;
    }
    out->type = instant ? LQ_RES_VECTOR : LQ_RES_MATRIX;
    out->series = arena_calloc(a, v.n + 1, sizeof *out->series);
    size_t k = 0;
    for (size_t s = 0; s < v.n; s++) {
        size_t np = 0;
        for (size_t i = 0; i < e.n; i++)
            np += v.s[s].has[i];
        if (!np)
            continue;
        lq_series_t *o2 = &out->series[k++];
        o2->labels = v.s[s].ls;
        o2->pts = arena_alloc(a, np * sizeof(lq_point_t));
        for (size_t i = 0; i < e.n; i++)
            if (v.s[s].has[i])
                o2->pts[o2->n++] = (lq_point_t){step_t(&e, i), v.s[s].v[i]};
    }
    out->n_series = k;
    bool keep_order = instant && has_sort(q->root);
    if (!keep_order && k > 1)
        qsort(out->series, k, sizeof *out->series, cmp_labels_p_series);
    if (o->max_series && k > o->max_series)
        return err_set(err, ERR_TOOBIG,
                       "maximum of series (%zu) reached for a single query; consider reducing "
                       "query cardinality by adding more filters or aggregating by fewer labels",
                       o->max_series);
    return 0;
}
