/*
 * promql_funcs.c - PromQL function implementations (floats; native histograms are out of scope).
 *
 * Functions over range vectors walk each series' window (te - range, te] per step (the window's
 * ends are cursors that only move forward, and over a selector each series is streamed through
 * pqe__rows rather than held as a matrix): rate, increase
 * and delta extrapolate as Prometheus' extrapolatedRate does (1.1x average-interval threshold,
 * counters never extrapolated below zero), deriv and predict_linear use the Kahan-compensated
 * least-squares fit, *_over_time fold the window. Functions over instant vectors map values and
 * mark __name__ for removal unless they keep the metric's meaning (last/first_over_time, sort*,
 * label_*). histogram_quantile works on classic `le` buckets with Prometheus' monotonicity fix
 * and linear interpolation inside the bucket that holds the rank. Anything not implemented fails
 * with "function X is not supported yet".
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/fmtnum.h"
#include "query/internal.h"

static double go_min(double a, double b)
{
    if (isnan(a) || isnan(b))
        return NAN;
    return a < b ? a : b;
}

static double go_max(double a, double b)
{
    if (isnan(a) || isnan(b))
        return NAN;
    return a > b ? a : b;
}

static bool is(const pq_node_t *n, const char *name)
{
    return strcmp(n->u.call.func->name, name) == 0;
}

static int unsupported(pqe_ctx_t *c, const pq_node_t *n)
{
    return err_set(c->err, ERR_UNSUPPORTED, "function %s is not supported yet",
                   n->u.call.func->name);
}

static void quantile_warn(pqe_ctx_t *c, const pq_node_t *at, const double *q);

/* ---- instant-vector math ---- */

typedef double (*fn1_t)(double);

static double f_sgn(double v) { return v > 0 ? 1 : v < 0 ? -1 : v; }
static double f_deg(double v) { return v * 180 / M_PI; }
static double f_rad(double v) { return v * M_PI / 180; }

static const struct {
    const char *name;
    fn1_t fn;
} simple_fns[] = {
    {"abs", fabs},    {"ceil", ceil}, {"floor", floor}, {"exp", exp},   {"sqrt", sqrt},
    {"ln", log},      {"log2", log2}, {"log10", log10}, {"sgn", f_sgn}, {"acos", acos},
    {"acosh", acosh}, {"asin", asin}, {"asinh", asinh}, {"atan", atan}, {"atanh", atanh},
    {"cos", cos},     {"cosh", cosh}, {"sin", sin},     {"sinh", sinh}, {"tan", tan},
    {"tanh", tanh},   {"deg", f_deg}, {"rad", f_rad},
};

static void mark_drop(pqe_val_t *v)
{
    for (size_t k = 0; k < v->n_series; k++)
        v->series[k].drop_name = true;
}

static int eval_scalar_arg(pqe_ctx_t *c, const pq_node_t *n, size_t i, double **out)
{
    pqe_val_t v;
    int rc = pqe__eval(c, n->u.call.args[i], &v);
    if (rc)
        return rc;
    *out = v.scalar;
    return 0;
}

static int map_vector(pqe_ctx_t *c, const pq_node_t *n, pqe_val_t *out)
{
    int rc = pqe__eval(c, n->u.call.args[0], out);
    if (rc)
        return rc;
    const char *name = n->u.call.func->name;
    for (size_t f = 0; f < sizeof simple_fns / sizeof simple_fns[0]; f++) {
        if (strcmp(simple_fns[f].name, name))
            continue;
        for (size_t k = 0; k < out->n_series; k++)
            for (size_t i = 0; i < c->n_steps; i++)
                out->series[k].v[i] = simple_fns[f].fn(out->series[k].v[i]);
        mark_drop(out);
        return 0;
    }
    double *a1 = NULL, *a2 = NULL;
    if (n->u.call.n_args > 1 && (rc = eval_scalar_arg(c, n, 1, &a1)))
        return rc;
    if (n->u.call.n_args > 2 && (rc = eval_scalar_arg(c, n, 2, &a2)))
        return rc;
    for (size_t k = 0; k < out->n_series; k++) {
        pqe_series_t *s = &out->series[k];
        for (size_t i = 0; i < c->n_steps; i++) {
            double v = s->v[i];
            if (!strcmp(name, "round")) {
                double inv = 1.0 / (a1 ? a1[i] : 1.0);
                v = floor(v * inv + 0.5) / inv;
            } else if (!strcmp(name, "clamp")) {
                if (a2[i] < a1[i])
                    s->has[i] = 0;
                v = go_max(a1[i], go_min(a2[i], v));
            } else if (!strcmp(name, "clamp_min")) {
                v = go_max(a1[i], v);
            } else if (!strcmp(name, "clamp_max")) {
                v = go_min(a1[i], v);
            } else {
                return unsupported(c, n);
            }
            s->v[i] = v;
        }
    }
    mark_drop(out);
    return 0;
}

/* ---- date functions ---- */

static bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static double date_part(const char *name, double v)
{
    time_t t = (time_t)v;
    struct tm tm;
    gmtime_r(&t, &tm);
    if (!strcmp(name, "day_of_month"))
        return tm.tm_mday;
    if (!strcmp(name, "day_of_week"))
        return tm.tm_wday;
    if (!strcmp(name, "day_of_year"))
        return tm.tm_yday + 1;
    if (!strcmp(name, "days_in_month")) {
        static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        return d[tm.tm_mon] + (tm.tm_mon == 1 && leap(tm.tm_year + 1900));
    }
    if (!strcmp(name, "hour"))
        return tm.tm_hour;
    if (!strcmp(name, "minute"))
        return tm.tm_min;
    if (!strcmp(name, "month"))
        return tm.tm_mon + 1;
    return tm.tm_year + 1900;
}

static int date_fn(pqe_ctx_t *c, const pq_node_t *n, pqe_val_t *out)
{
    const char *name = n->u.call.func->name;
    if (n->u.call.n_args == 0) {
        pqe_series_t *s = pqe__new_series(c, out, 1);
        for (size_t i = 0; i < c->n_steps; i++) {
            s->has[i] = 1;
            s->v[i] = date_part(name, (double)pqe__t(c, i) / 1000.0);
        }
        return 0;
    }
    int rc = pqe__eval(c, n->u.call.args[0], out);
    if (rc)
        return rc;
    for (size_t k = 0; k < out->n_series; k++)
        for (size_t i = 0; i < c->n_steps; i++)
            if (out->series[k].has[i]) {
                double v = out->series[k].v[i];
                if (isnan(v) || isinf(v))
                    out->series[k].has[i] = 0;
                else
                    out->series[k].v[i] = date_part(name, v);
            }
    mark_drop(out);
    return 0;
}

/* ---- range-vector functions ---- */

/* How rate/increase/delta extrapolate depends, besides the values, only on where the window's
 * first and last samples sit in it and on how many there are; with regular scrapes that repeats
 * from step to step, so range_row keeps the last one computed and extrapolated() reuses it while
 * the key matches. The arithmetic is Prometheus' to the bit either way. */
typedef struct win_geom {
    bool valid;
    int64_t d_start, d_end; /* first sample - window start, window end - last sample (ms) */
    size_t n;
    double to_start, to_end, sampled; /* seconds, after the 1.1 x average-gap threshold */
    double factor, factor_rate;       /* (sampled + to_start + to_end) / sampled [/ range] */
} win_geom_t;

typedef struct win {
    const pq_point_t *p;
    size_t n;
    int64_t te, range_ms; /* window (te - range, te] */
    int64_t t;            /* step time */
    double a1, a2;        /* scalar arguments */
    bool no_resets;       /* known: no value in the window is below its predecessor */
    win_geom_t *geom;     /* the extrapolation geometry last used for this series, or NULL */
} win_t;

typedef bool (*rangefn_t)(const win_t *w, double *out);

static double extrapolation_factor(double sampled, double to_start, double to_end, bool rate,
                                   int64_t range_ms)
{
    double factor = (sampled + to_start + to_end) / sampled;
    if (rate)
        factor /= (double)range_ms / 1000;
    return factor;
}

static const win_geom_t *window_geom(const win_t *w, win_geom_t *local)
{
    const pq_point_t *p = w->p;
    size_t n = w->n;
    int64_t d_start = p[0].t_ms - (w->te - w->range_ms), d_end = w->te - p[n - 1].t_ms;
    win_geom_t *g = w->geom ? w->geom : local;
    if (g->valid && g->d_start == d_start && g->d_end == d_end && g->n == n)
        return g;
    g->valid = true;
    g->d_start = d_start;
    g->d_end = d_end;
    g->n = n;
    double to_start = (double)d_start / 1000;
    double to_end = (double)d_end / 1000;
    double sampled = (double)(p[n - 1].t_ms - p[0].t_ms) / 1000;
    double avg = sampled / (double)(n - 1);
    double threshold = avg * 1.1;
    if (to_start >= threshold)
        to_start = avg / 2;
    if (to_end >= threshold)
        to_end = avg / 2;
    g->to_start = to_start;
    g->to_end = to_end;
    g->sampled = sampled;
    g->factor = extrapolation_factor(sampled, to_start, to_end, false, w->range_ms);
    g->factor_rate = extrapolation_factor(sampled, to_start, to_end, true, w->range_ms);
    return g;
}

static bool extrapolated(const win_t *w, bool counter, bool rate, double *out)
{
    if (w->n < 2)
        return false;
    const pq_point_t *p = w->p;
    size_t n = w->n;
    double result = p[n - 1].v - p[0].v;
    if (counter && !w->no_resets)
        for (size_t i = 1; i < n; i++)
            if (p[i].v < p[i - 1].v)
                result += p[i - 1].v;
    win_geom_t local = {0};
    const win_geom_t *g = window_geom(w, &local);
    double factor = rate ? g->factor_rate : g->factor;
    if (counter && result > 0 && p[0].v >= 0) {
        /* A counter is not extrapolated below zero: to_start becomes at most
         * sampled * (first / result). That division is skipped when first * sampled is clearly
         * above to_start * result (by far more than the rounding of either side), the common
         * case of a counter much larger than its increase in one window. */
        double lhs = p[0].v * g->sampled, rhs = g->to_start * result;
        bool clearly_above =
            isfinite(lhs) && isfinite(rhs) && rhs > 1e-290 && lhs > rhs * (1 + 1e-9);
        if (!clearly_above) {
            double to_zero = g->sampled * (p[0].v / result);
            if (to_zero < g->to_start)
                factor = extrapolation_factor(g->sampled, to_zero, g->to_end, rate, w->range_ms);
        }
    }
    *out = result * factor;
    return true;
}

static bool r_rate(const win_t *w, double *o) { return extrapolated(w, true, true, o); }
static bool r_increase(const win_t *w, double *o) { return extrapolated(w, true, false, o); }
static bool r_delta(const win_t *w, double *o) { return extrapolated(w, false, false, o); }

static bool instant_delta(const win_t *w, bool rate, double *out)
{
    if (w->n < 2)
        return false;
    pq_point_t last = w->p[w->n - 1], prev = w->p[w->n - 2];
    double r = (rate && last.v < prev.v) ? last.v : last.v - prev.v;
    int64_t iv = last.t_ms - prev.t_ms;
    if (iv == 0)
        return false;
    if (rate)
        r /= (double)iv / 1000;
    *out = r;
    return true;
}

static bool r_irate(const win_t *w, double *o) { return instant_delta(w, true, o); }
static bool r_idelta(const win_t *w, double *o) { return instant_delta(w, false, o); }

static void linreg(const win_t *w, int64_t icept_t, double *slope, double *icept)
{
    double n = 0, sx = 0, cx = 0, sy = 0, cy = 0, sxy = 0, cxy = 0, sx2 = 0, cx2 = 0;
    double init = w->p[0].v;
    bool const_y = true;
    for (size_t i = 0; i < w->n; i++) {
        if (const_y && i > 0 && w->p[i].v != init)
            const_y = false;
        n += 1;
        double x = (double)(w->p[i].t_ms - icept_t) / 1e3;
        pqe__kahan_inc(x, &sx, &cx);
        pqe__kahan_inc(w->p[i].v, &sy, &cy);
        pqe__kahan_inc(x * w->p[i].v, &sxy, &cxy);
        pqe__kahan_inc(x * x, &sx2, &cx2);
    }
    if (const_y) {
        if (isinf(init)) {
            *slope = *icept = NAN;
            return;
        }
        *slope = 0;
        *icept = init;
        return;
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    double cov = sxy - sx * sy / n, var = sx2 - sx * sx / n;
    *slope = cov / var;
    *icept = sy / n - *slope * sx / n;
}

static bool r_deriv(const win_t *w, double *o)
{
    if (w->n < 2)
        return false;
    double icept;
    linreg(w, w->p[0].t_ms, o, &icept);
    return true;
}

static bool r_predict(const win_t *w, double *o)
{
    if (w->n < 2)
        return false;
    double slope, icept;
    linreg(w, w->t, &slope, &icept);
    *o = slope * w->a1 + icept;
    return true;
}

static bool r_resets(const win_t *w, double *o)
{
    if (!w->n)
        return false;
    double r = 0;
    for (size_t i = 1; i < w->n; i++)
        r += w->p[i].v < w->p[i - 1].v;
    *o = r;
    return true;
}

static bool r_changes(const win_t *w, double *o)
{
    if (!w->n)
        return false;
    double r = 0;
    for (size_t i = 1; i < w->n; i++) {
        double a = w->p[i].v, b = w->p[i - 1].v;
        if (!(a == b || (isnan(a) && isnan(b))))
            r++;
    }
    *o = r;
    return true;
}

static bool r_avg(const win_t *w, double *o)
{
    if (!w->n)
        return false;
    double sum = w->p[0].v, mean = 0, c = 0;
    bool incr = false;
    for (size_t i = 1; i < w->n; i++) {
        double f = w->p[i].v, count = (double)(i + 1);
        if (!incr) {
            double ns = sum, nc = c;
            pqe__kahan_inc(f, &ns, &nc);
            if (!isinf(ns)) {
                sum = ns;
                c = nc;
                continue;
            }
            incr = true;
            mean = sum / (count - 1);
            c /= count - 1;
        }
        double q = (count - 1) / count;
        mean = q * mean;
        c = q * c;
        pqe__kahan_inc(f / count, &mean, &c);
    }
    if (incr)
        *o = mean + c;
    else
        *o = sum / (double)w->n + c / (double)w->n;
    return true;
}

static bool r_sum(const win_t *w, double *o)
{
    if (!w->n)
        return false;
    double s = 0, c = 0;
    for (size_t i = 0; i < w->n; i++)
        pqe__kahan_inc(w->p[i].v, &s, &c);
    *o = s + c;
    return true;
}

static bool r_count(const win_t *w, double *o)
{
    if (!w->n)
        return false;
    *o = (double)w->n;
    return true;
}

static bool r_present(const win_t *w, double *o)
{
    if (!w->n)
        return false;
    *o = 1;
    return true;
}

static bool r_min(const win_t *w, double *o)
{
    if (!w->n)
        return false;
    double m = w->p[0].v;
    for (size_t i = 0; i < w->n; i++)
        if (w->p[i].v < m || isnan(m))
            m = w->p[i].v;
    *o = m;
    return true;
}

static bool r_max(const win_t *w, double *o)
{
    if (!w->n)
        return false;
    double m = w->p[0].v;
    for (size_t i = 0; i < w->n; i++)
        if (w->p[i].v > m || isnan(m))
            m = w->p[i].v;
    *o = m;
    return true;
}

static bool ts_of_extreme(const win_t *w, bool max, double *o)
{
    if (!w->n)
        return false;
    size_t best = 0;
    for (size_t i = 1; i < w->n; i++) {
        double v = w->p[i].v, b = w->p[best].v;
        if (isnan(b) || (max ? v >= b : v <= b))
            best = i;
    }
    *o = (double)w->p[best].t_ms / 1000;
    return true;
}

static bool r_ts_min(const win_t *w, double *o) { return ts_of_extreme(w, false, o); }
static bool r_ts_max(const win_t *w, double *o) { return ts_of_extreme(w, true, o); }

static bool r_last(const win_t *w, double *o)
{
    if (!w->n)
        return false;
    *o = w->p[w->n - 1].v;
    return true;
}

static bool r_first(const win_t *w, double *o)
{
    if (!w->n)
        return false;
    *o = w->p[0].v;
    return true;
}

static bool r_ts_last(const win_t *w, double *o)
{
    if (!w->n)
        return false;
    *o = (double)w->p[w->n - 1].t_ms / 1000;
    return true;
}

static bool r_ts_first(const win_t *w, double *o)
{
    if (!w->n)
        return false;
    *o = (double)w->p[0].t_ms / 1000;
    return true;
}

static bool variance(const win_t *w, double *o)
{
    if (!w->n)
        return false;
    double count = 0, mean = 0, cm = 0, aux = 0, ca = 0;
    for (size_t i = 0; i < w->n; i++) {
        count++;
        double d = w->p[i].v - (mean + cm);
        pqe__kahan_inc(d / count, &mean, &cm);
        pqe__kahan_inc(d * (w->p[i].v - (mean + cm)), &aux, &ca);
    }
    *o = (aux + ca) / count;
    return true;
}

static bool r_stdvar(const win_t *w, double *o) { return variance(w, o); }

static bool r_stddev(const win_t *w, double *o)
{
    if (!variance(w, o))
        return false;
    *o = sqrt(*o);
    return true;
}

static bool r_quantile(const win_t *w, double *o)
{
    if (!w->n)
        return false;
    double *v = malloc(w->n * sizeof *v);
    if (!v)
        return false;
    for (size_t i = 0; i < w->n; i++)
        v[i] = w->p[i].v;
    *o = pqe__quantile(w->a1, v, w->n);
    free(v);
    return true;
}

static bool r_mad(const win_t *w, double *o)
{
    if (!w->n)
        return false;
    double *v = malloc(w->n * sizeof *v);
    if (!v)
        return false;
    for (size_t i = 0; i < w->n; i++) {
        v[i] = w->p[i].v;
        if (isnan(v[i])) {
            free(v);
            *o = NAN;
            return true;
        }
    }
    double med = pqe__quantile(0.5, v, w->n);
    for (size_t i = 0; i < w->n; i++)
        v[i] = fabs(w->p[i].v - med);
    *o = pqe__quantile(0.5, v, w->n);
    free(v);
    return true;
}

static double trend(size_t i, double tf, double s0, double s1, double b)
{
    if (i == 0)
        return b;
    return tf * (s1 - s0) + (1 - tf) * b;
}

static bool r_des(const win_t *w, double *o)
{
    if (w->n < 2)
        return false;
    double sf = w->a1, tf = w->a2, s0 = 0, s1 = w->p[0].v, b = w->p[1].v - w->p[0].v;
    for (size_t i = 1; i < w->n; i++) {
        double x = sf * w->p[i].v;
        b = trend(i - 1, tf, s0, s1, b);
        double y = (1 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    *o = s1;
    return true;
}

static const struct {
    const char *name;
    rangefn_t fn;
    int matrix_arg; /* index of the range-vector argument */
    bool keep_name;
} range_fns[] = {
    {"rate", r_rate, 0, false},
    {"increase", r_increase, 0, false},
    {"delta", r_delta, 0, false},
    {"irate", r_irate, 0, false},
    {"idelta", r_idelta, 0, false},
    {"deriv", r_deriv, 0, false},
    {"predict_linear", r_predict, 0, false},
    {"resets", r_resets, 0, false},
    {"changes", r_changes, 0, false},
    {"avg_over_time", r_avg, 0, false},
    {"sum_over_time", r_sum, 0, false},
    {"count_over_time", r_count, 0, false},
    {"present_over_time", r_present, 0, false},
    {"min_over_time", r_min, 0, false},
    {"max_over_time", r_max, 0, false},
    {"last_over_time", r_last, 0, true},
    {"first_over_time", r_first, 0, true},
    {"ts_of_last_over_time", r_ts_last, 0, false},
    {"ts_of_first_over_time", r_ts_first, 0, false},
    {"ts_of_min_over_time", r_ts_min, 0, false},
    {"ts_of_max_over_time", r_ts_max, 0, false},
    {"stddev_over_time", r_stddev, 0, false},
    {"stdvar_over_time", r_stdvar, 0, false},
    {"quantile_over_time", r_quantile, 1, false},
    {"mad_over_time", r_mad, 0, false},
    {"double_exponential_smoothing", r_des, 0, false},
    {"holt_winters", r_des, 0, false},
};

/* One range-function evaluation: the function, its scalar arguments and where results go. */
typedef struct rstream {
    size_t f;
    const double *a1, *a2;
    pqe_sink_fn sink;
    void *arg;
    pqe_series_t out; /* scratch values of the current output series (subqueries) */
} rstream_t;

/* Evaluates the function over every step's window of one series (a pqe_row_fn). The windows
 * (te - range, te] move forward with the steps, so both ends are cursors that only advance: one
 * pass over the points per series however many steps there are. */
static size_t range_row(const pqe_ctx_t *c, void *arg, const pqe_val_t *m, const pq_point_t *p,
                        size_t n, double *out_v, uint8_t *out_has)
{
    const rstream_t *r = arg;
    rangefn_t fn = range_fns[r->f].fn;
    /* Counter resets in the window are counted as its ends move (pair i, a drop from point
     * i - 1 to i, is inside when lo < i < hi), so rate and increase skip their reset scan over
     * windows without one: a 7-day increase then costs one pass, not one per step. */
    bool counter = fn == r_rate || fn == r_increase, extrap = counter || fn == r_delta;
    size_t lo = 0, hi = 0, present = 0, resets = 0;
    win_geom_t geom = {0};
    for (size_t i = 0; i < c->n_steps; i++) {
        win_t w;
        w.geom = &geom;
        w.te = (m->has_at ? m->at_ms : pqe__t(c, i)) - m->offset_ms;
        for (; hi < n && p[hi].t_ms <= w.te; hi++)
            if (counter && hi > lo && p[hi].v < p[hi - 1].v)
                resets++;
        for (; lo < hi && p[lo].t_ms <= w.te - m->range_ms; lo++)
            if (counter && lo + 1 < hi && p[lo + 1].v < p[lo].v)
                resets--;
        w.no_resets = counter && resets == 0;
        w.p = p + lo;
        w.n = hi - lo;
        w.range_ms = m->range_ms;
        double v;
        bool ok;
        if (extrap) { /* called directly, so it is inlined here */
            ok = w.n && extrapolated(&w, counter, fn == r_rate, &v);
        } else {
            w.t = pqe__t(c, i);
            w.a1 = r->a1 ? r->a1[i] : 0;
            w.a2 = r->a2 ? r->a2[i] : 0;
            ok = w.n && fn(&w, &v);
        }
        out_has[i] = 0;
        if (ok) {
            out_has[i] = 1;
            out_v[i] = v;
            present++;
        }
    }
    return present;
}

static int range_series(pqe_ctx_t *c, rstream_t *r, const pqe_val_t *m, const pqe_mseries_t *s)
{
    range_row(c, r, m, s->pts, s->n, r->out.v, r->out.has);
    r->out.labels = s->labels;
    r->out.drop_name = s->drop_name || !range_fns[r->f].keep_name;
    return r->sink(c, r->arg, &r->out);
}

static size_t range_fn_index(const pq_node_t *n)
{
    const char *name = n->u.call.func->name;
    for (size_t f = 0; f < sizeof range_fns / sizeof range_fns[0]; f++)
        if (!strcmp(range_fns[f].name, name))
            return f;
    return (size_t)-1;
}

bool pqe__is_range_call(const pq_node_t *n) { return range_fn_index(n) != (size_t)-1; }

int pqe__range_call_stream(pqe_ctx_t *c, const pq_node_t *n, pqe_sink_fn sink, void *arg)
{
    size_t f = range_fn_index(n);
    int ma = range_fns[f].matrix_arg, rc;
    double *a1 = NULL, *a2 = NULL;
    if (n->u.call.n_args > 1) {
        if ((rc = eval_scalar_arg(c, n, ma == 1 ? 0 : 1, &a1)))
            return rc;
    }
    if (n->u.call.n_args > 2 && (rc = eval_scalar_arg(c, n, 2, &a2)))
        return rc;
    const pq_node_t *arg_n = n->u.call.args[ma];
    while (arg_n->kind == PQ_PAREN)
        arg_n = arg_n->u.paren.expr;
    pqe_val_t m;
    if (arg_n->kind != PQ_MATRIX_SEL && (rc = pqe__eval(c, arg_n, &m)))
        return rc;
    if (ma == 1)
        quantile_warn(c, n->u.call.args[0], a1);
    if (range_fns[f].fn == r_des)
        for (size_t i = 0; i < c->n_steps; i++) {
            if (a1[i] <= 0 || a1[i] >= 1)
                return err_set(c->err, ERR_INVAL,
                               "invalid smoothing factor. Expected: 0 < sf < 1, got: %f", a1[i]);
            if (a2[i] <= 0 || a2[i] >= 1)
                return err_set(c->err, ERR_INVAL,
                               "invalid trend factor. Expected: 0 < tf < 1, got: %f", a2[i]);
        }
    rstream_t r;
    memset(&r, 0, sizeof r);
    r.f = f;
    r.a1 = a1;
    r.a2 = a2;
    r.sink = sink;
    r.arg = arg;
    if (arg_n->kind == PQ_MATRIX_SEL) {
        pqe_val_t mp;
        pqe__matrix_params(c, arg_n, &mp);
        int64_t lo = mp.has_at ? mp.at_ms : c->start,
                hi = mp.has_at ? mp.at_ms : pqe__t(c, c->n_steps - 1);
        pqe_rows_t rows = {arg_n,
                           lo - mp.offset_ms - mp.range_ms + 1,
                           hi - mp.offset_ms,
                           false,
                           range_row,
                           &r,
                           &mp,
                           !range_fns[f].keep_name};
        return pqe__rows(c, &rows, sink, arg);
    }
    r.out.v = malloc((c->n_steps ? c->n_steps : 1) * sizeof *r.out.v);
    r.out.has = malloc(c->n_steps ? c->n_steps : 1);
    if (!r.out.v || !r.out.has)
        rc = err_set(c->err, ERR_NOMEM, "out of memory evaluating %s", range_fns[f].name);
    for (size_t k = 0; k < m.n_ms && !rc; k++)
        if (!(rc = pqe__check(c)))
            rc = range_series(c, &r, &m, &m.ms[k]);
    free(r.out.v);
    free(r.out.has);
    return rc;
}

static int range_fn(pqe_ctx_t *c, const pq_node_t *n, pqe_val_t *out)
{
    memset(out, 0, sizeof *out);
    out->type = PQ_TYPE_VECTOR;
    return pqe__range_call_stream(c, n, pqe__sink_collect, out);
}

/* ---- absent ---- */

static labels_t absent_labels(pqe_ctx_t *c, const pq_node_t *arg)
{
    labels_t ls = {ARENA_ARRAY(c->a, label_t, 1), 0};
    while (arg->kind == PQ_PAREN)
        arg = arg->u.paren.expr;
    if (arg->kind != PQ_VECTOR_SEL && arg->kind != PQ_MATRIX_SEL)
        return ls;
    const matcher_t *ms = arg->u.sel.matchers;
    size_t nm = arg->u.sel.n_matchers;
    ls.v = ARENA_ARRAY(c->a, label_t, nm + 1);
    for (size_t i = 0; i < nm; i++) {
        if (ms[i].type != MATCH_EQ || str_eq_cstr(ms[i].name, "__name__"))
            continue;
        bool dup = false;
        for (size_t j = 0; j < nm; j++)
            if (j != i && str_eq(ms[j].name, ms[i].name))
                dup = true;
        if (!dup)
            ls.v[ls.n++] = (label_t){ms[i].name, ms[i].value};
    }
    labels_sort(&ls);
    return ls;
}

static int absent_fn(pqe_ctx_t *c, const pq_node_t *n, bool over_time, pqe_val_t *out)
{
    pqe_val_t v;
    int rc = pqe__eval(c, n->u.call.args[0], &v);
    if (rc)
        return rc;
    pqe_series_t *s = pqe__new_series(c, out, 1);
    s->labels = absent_labels(c, n->u.call.args[0]);
    for (size_t i = 0; i < c->n_steps; i++) {
        bool any = false;
        if (over_time) {
            for (size_t k = 0; k < v.n_ms && !any; k++) {
                size_t lo, hi;
                pqe__window(c, &v, &v.ms[k], i, &lo, &hi, NULL);
                any = hi > lo;
            }
        } else {
            for (size_t k = 0; k < v.n_series && !any; k++)
                any = v.series[k].has[i];
        }
        s->has[i] = !any;
        s->v[i] = 1;
    }
    return 0;
}

/* ---- labels ---- */

/* Go regexp Expand: $name, ${name}, $$; names are [A-Za-z0-9_]+, unknown groups expand to "". */
static void expand(buf_t *b, str_t tmpl, const matcher_t *m, str_t subj, PCRE2_SIZE *ov, int nc)
{
    for (size_t i = 0; i < tmpl.len; i++) {
        char ch = tmpl.ptr[i];
        if (ch != '$' || i + 1 >= tmpl.len) {
            buf_putc(b, ch);
            continue;
        }
        if (tmpl.ptr[i + 1] == '$') {
            buf_putc(b, '$');
            i++;
            continue;
        }
        size_t s = i + 1, e;
        bool brace = tmpl.ptr[s] == '{';
        if (brace)
            s++;
        e = s;
        while (e < tmpl.len && (tmpl.ptr[e] == '_' || (tmpl.ptr[e] >= '0' && tmpl.ptr[e] <= '9') ||
                                ((tmpl.ptr[e] | 32) >= 'a' && (tmpl.ptr[e] | 32) <= 'z')))
            e++;
        if (e == s || (brace && (e >= tmpl.len || tmpl.ptr[e] != '}'))) {
            buf_putc(b, ch);
            continue;
        }
        char name[128];
        size_t nl = e - s < sizeof name - 1 ? e - s : sizeof name - 1;
        memcpy(name, tmpl.ptr + s, nl);
        name[nl] = 0;
        int g = -1;
        bool digits = true;
        for (size_t k = 0; k < nl; k++)
            digits = digits && name[k] >= '0' && name[k] <= '9';
        if (digits)
            g = atoi(name);
        else
            g = pcre2_substring_number_from_name(m->re, (PCRE2_SPTR)name);
        if (g >= 0 && g < nc && ov[2 * g] != PCRE2_UNSET)
            buf_append(b, subj.ptr + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
        i = brace ? e : e - 1;
    }
}

static int label_fn(pqe_ctx_t *c, const pq_node_t *n, pqe_val_t *out)
{
    bool replace = is(n, "label_replace");
    pqe_val_t in;
    int rc = pqe__eval(c, n->u.call.args[0], &in);
    if (rc)
        return rc;
    pqe_val_t sv[6];
    for (size_t i = 1; i < n->u.call.n_args; i++)
        if ((rc = pqe__eval(c, n->u.call.args[i], &sv[i < 6 ? i : 5])))
            return rc;
    str_t dst = sv[1].string;
    if (!label_name_valid(dst))
        return err_set(c->err, ERR_INVAL, "invalid destination label name in %s(): %.*s",
                       n->u.call.func->name, (int)dst.len, dst.ptr);
    matcher_t m = {0};
    if (replace) {
        err_t e2;
        if (matcher_init(&m, MATCH_RE, sv[3].string, sv[4].string, &e2))
            return err_set(c->err, ERR_INVAL, "invalid regular expression in label_replace(): %.*s",
                           (int)sv[4].string.len, sv[4].string.ptr);
    } else {
        for (size_t i = 3; i < n->u.call.n_args; i++) {
            pqe_val_t t;
            if ((rc = pqe__eval(c, n->u.call.args[i], &t)))
                return rc;
            if (!label_name_valid(t.string))
                return err_set(c->err, ERR_INVAL, "invalid source label name in label_join(): %.*s",
                               (int)t.string.len, t.string.ptr);
        }
    }
    pqe_acc_t acc;
    pqe__acc_init(&acc);
    buf_t b;
    buf_init(&b, 64);
    rc = 0;
    for (size_t k = 0; k < in.n_series && !rc; k++) {
        pqe_series_t *s = &in.series[k];
        labels_t ls = s->labels;
        bool changed = true;
        buf_clear(&b);
        if (replace) {
            str_t src = {"", 0};
            for (size_t j = 0; j < s->labels.n; j++)
                if (str_eq(s->labels.v[j].name, sv[3].string))
                    src = s->labels.v[j].value;
            int r = pcre2_match(m.re, (PCRE2_SPTR)(src.ptr ? src.ptr : ""), src.len, 0, 0,
                                m.re_match, NULL);
            if (r >= 0)
                expand(&b, sv[2].string, &m, src, pcre2_get_ovector_pointer(m.re_match),
                       (int)pcre2_get_ovector_count(m.re_match));
            else
                changed = false;
        } else {
            for (size_t i = 3; i < n->u.call.n_args; i++) {
                pqe_val_t t;
                pqe__eval(c, n->u.call.args[i], &t);
                if (i > 3)
                    buf_put_str(&b, sv[2].string);
                for (size_t j = 0; j < s->labels.n; j++)
                    if (str_eq(s->labels.v[j].name, t.string))
                        buf_put_str(&b, s->labels.v[j].value);
            }
        }
        bool drop = s->drop_name;
        if (changed) {
            ls = pqe__labels_set(c, &s->labels, dst, arena_str(c->a, buf_str(&b)));
            if (str_eq_cstr(dst, "__name__"))
                drop = false;
        }
        size_t idx = pqe__acc_series(c, &acc, &ls);
        pqe_series_t *d = &acc.s[idx];
        d->drop_name = d->drop_name || drop;
        for (size_t i = 0; i < c->n_steps; i++) {
            if (!s->has[i])
                continue;
            if (d->has[i]) {
                rc = err_set(c->err, ERR_INVAL,
                             "vector cannot contain metrics with the same labelset");
                break;
            }
            d->has[i] = 1;
            d->v[i] = s->v[i];
        }
    }
    buf_deinit(&b);
    if (replace)
        matcher_deinit(&m);
    if (rc)
        return rc;
    pqe__acc_finish(&acc, out);
    return 0;
}

/* ---- sorting (instant queries only; a range result is sorted by labels) ---- */

static int cmp_asc(const void *a, const void *b)
{
    double x = ((const pqe_series_t *)a)->v[0], y = ((const pqe_series_t *)b)->v[0];
    if (isnan(x) != isnan(y))
        return isnan(x) ? 1 : -1;
    return x < y ? -1 : x > y;
}

static int cmp_desc(const void *a, const void *b)
{
    double x = ((const pqe_series_t *)a)->v[0], y = ((const pqe_series_t *)b)->v[0];
    if (isnan(x) != isnan(y))
        return isnan(x) ? 1 : -1;
    return x > y ? -1 : x < y;
}

/* Natural order: digit runs compare as numbers. */
static int natcmp(str_t a, str_t b)
{
    size_t i = 0, j = 0;
    while (i < a.len && j < b.len) {
        bool da = a.ptr[i] >= '0' && a.ptr[i] <= '9', db = b.ptr[j] >= '0' && b.ptr[j] <= '9';
        if (da && db) {
            size_t si = i, sj = j;
            while (si < a.len && a.ptr[si] == '0')
                si++;
            while (sj < b.len && b.ptr[sj] == '0')
                sj++;
            size_t ei = si, ej = sj;
            while (ei < a.len && a.ptr[ei] >= '0' && a.ptr[ei] <= '9')
                ei++;
            while (ej < b.len && b.ptr[ej] >= '0' && b.ptr[ej] <= '9')
                ej++;
            if (ei - si != ej - sj)
                return ei - si < ej - sj ? -1 : 1;
            int r = memcmp(a.ptr + si, b.ptr + sj, ei - si);
            if (r)
                return r;
            i = ei;
            j = ej;
            continue;
        }
        if (a.ptr[i] != b.ptr[j])
            return (unsigned char)a.ptr[i] < (unsigned char)b.ptr[j] ? -1 : 1;
        i++;
        j++;
    }
    return (a.len - i) < (b.len - j) ? -1 : (a.len - i) > (b.len - j);
}

typedef struct sort_spec {
    const str_t *labels;
    size_t n;
    int dir;
} sort_spec_t;

static str_t lget(const labels_t *ls, str_t name)
{
    for (size_t i = 0; i < ls->n; i++)
        if (str_eq(ls->v[i].name, name))
            return ls->v[i].value;
    return (str_t){"", 0};
}

static int cmp_labels(const void *a, const void *b, void *arg)
{
    const sort_spec_t *sp = arg;
    const labels_t *x = &((const pqe_series_t *)a)->labels, *y = &((const pqe_series_t *)b)->labels;
    for (size_t i = 0; i < sp->n; i++) {
        int r = natcmp(lget(x, sp->labels[i]), lget(y, sp->labels[i]));
        if (r)
            return r * sp->dir;
    }
    return labels_cmp(x, y) * sp->dir;
}

static int sort_fn(pqe_ctx_t *c, const pq_node_t *n, pqe_val_t *out)
{
    int rc = pqe__eval(c, n->u.call.args[0], out);
    if (!rc && c->q_step)
        pqe__annotate(c, true, n,
                      "sort is ineffective for range queries since results are always ordered "
                      "by labels");
    if (rc || c->n_steps != 1)
        return rc;
    size_t m = 0;
    for (size_t k = 0; k < out->n_series; k++)
        if (out->series[k].has[0])
            out->series[m++] = out->series[k];
    out->n_series = m;
    if (is(n, "sort"))
        qsort(out->series, m, sizeof *out->series, cmp_asc);
    else if (is(n, "sort_desc"))
        qsort(out->series, m, sizeof *out->series, cmp_desc);
    else {
        str_t *names = ARENA_ARRAY(c->a, str_t, n->u.call.n_args);
        for (size_t i = 1; i < n->u.call.n_args; i++) {
            pqe_val_t t;
            if ((rc = pqe__eval(c, n->u.call.args[i], &t)))
                return rc;
            names[i - 1] = t.string;
        }
        sort_spec_t sp = {names, n->u.call.n_args - 1, is(n, "sort_by_label_desc") ? -1 : 1};
        qsort_r(out->series, m, sizeof *out->series, cmp_labels, &sp);
    }
    return 0;
}

/* ---- classic histograms: histogram_quantile(s), histogram_fraction over `le` buckets ---- */

typedef struct bucket {
    double le, count;
} bucket_t;

static int bucket_cmp(const void *a, const void *b)
{
    double x = ((const bucket_t *)a)->le, y = ((const bucket_t *)b)->le;
    return x < y ? -1 : x > y;
}

static bool almost_equal(double a, double b, double eps)
{
    if (a == b)
        return true;
    double diff = fabs(a - b), sum = fabs(a) + fabs(b);
    const double min_normal = 2.2250738585072014e-308;
    if (a == 0 || b == 0 || sum < min_normal)
        return diff < eps * min_normal;
    return diff / fmin(sum, 1.7976931348623157e308) < eps;
}

/* Sorts, merges equal bounds and forces monotonic counts; false when the buckets are unusable
 * (no +Inf bucket). *forced is set when a decrease beyond float noise had to be fixed. */
static bool buckets_fix(bucket_t *b, size_t *np, bool *forced)
{
    size_t n = *np;
    qsort(b, n, sizeof *b, bucket_cmp);
    if (n == 0 || !isinf(b[n - 1].le) || b[n - 1].le < 0)
        return false;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && b[m - 1].le == b[i].le)
            b[m - 1].count += b[i].count;
        else
            b[m++] = b[i];
    }
    *np = n = m;
    double prev = b[0].count;
    for (size_t i = 1; i < n; i++) {
        double cur = b[i].count;
        if (cur == prev)
            continue;
        if (almost_equal(prev, cur, 1e-12)) {
            b[i].count = prev;
            continue;
        }
        if (cur < prev) {
            b[i].count = prev;
            *forced = true;
            continue;
        }
        prev = cur;
    }
    return true;
}

static double bucket_quantile(double q, bucket_t *b, size_t n, bool *forced)
{
    if (isnan(q))
        return NAN;
    if (q < 0)
        return -INFINITY;
    if (q > 1)
        return INFINITY;
    if (!buckets_fix(b, &n, forced) || n < 2)
        return NAN;
    double obs = b[n - 1].count;
    if (obs == 0)
        return NAN;
    double rank = q * obs;
    size_t k = 0;
    while (k < n - 1 && !(b[k].count >= rank))
        k++;
    if (k == n - 1)
        return b[n - 2].le;
    if (k == 0 && b[0].le <= 0)
        return b[0].le;
    double start = 0, end = b[k].le, count = b[k].count;
    if (k > 0) {
        start = b[k - 1].le;
        count -= b[k - 1].count;
        rank -= b[k - 1].count;
    }
    return start + (end - start) * (rank / count);
}

/* Fraction of observations in [lower, upper]; observations of a bucket with an infinite bound
 * sit at its finite edge (no interpolation over an infinite width). */
static double bucket_fraction(double lower, double upper, bucket_t *b, size_t n, bool *forced)
{
    if (!buckets_fix(b, &n, forced))
        return NAN;
    double count = b[n - 1].count;
    if (count == 0 || isnan(lower) || isnan(upper))
        return NAN;
    if (lower >= upper)
        return 0;
    double rank = 0, lr = 0, ur = 0;
    bool ls = false, us = false;
    for (size_t i = 0; i < n; i++) {
        double lb = i > 0 ? b[i - 1].le : (b[0].le > 0 ? 0 : -INFINITY), ub = b[i].le;
        if (!ls && lb >= lower) {
            lr = rank;
            ls = true;
        }
        if (!us && lb >= upper) {
            ur = rank;
            us = true;
        }
        if (ls && us)
            break;
        if (!ls && lb < lower && ub > lower) {
            lr = isinf(lb)   ? b[i].count
                 : isinf(ub) ? rank
                             : rank + (b[i].count - rank) * (lower - lb) / (ub - lb);
            ls = true;
        }
        if (!us && lb < upper && ub > upper) {
            ur = isinf(lb)   ? b[i].count
                 : isinf(ub) ? rank
                             : rank + (b[i].count - rank) * (upper - lb) / (ub - lb);
            us = true;
        }
        if (ls && us)
            break;
        rank = b[i].count;
    }
    if (!ls || lr > count)
        lr = count;
    if (!us || ur > count)
        ur = count;
    return (ur - lr) / count;
}

static const char *go_g(char *buf, size_t len, double v)
{
    if (isnan(v))
        return "NaN";
    if (isinf(v))
        return v > 0 ? "+Inf" : "-Inf";
    snprintf(buf, len, "%g", v);
    return buf;
}

static void quantile_warn(pqe_ctx_t *c, const pq_node_t *at, const double *q)
{
    for (size_t i = 0; i < c->n_steps; i++)
        if (isnan(q[i]) || q[i] < 0 || q[i] > 1) {
            char b[64];
            pqe__annotate(c, true, at, "quantile value should be between 0 and 1, got %s",
                          go_g(b, sizeof b, q[i]));
            return;
        }
}

/* The q label value: shortest decimal, with ".0" on integers ("0.0", "0.25", "1.0", "NaN"). */
static str_t q_label(pqe_ctx_t *c, double q)
{
    char tmp[64];
    if (isnan(q) || isinf(q))
        return arena_str(c->a, str_cstr(go_g(tmp, sizeof tmp, q)));
    size_t len = fmt_float_f(tmp, q);
    if (!memchr(tmp, '.', len))
        memcpy(tmp + len, ".0", 3), len += 2;
    return arena_str(c->a, (str_t){tmp, len});
}

enum { H_QUANTILE, H_QUANTILES, H_FRACTION };

static int histogram_fn(pqe_ctx_t *c, const pq_node_t *n, int mode, pqe_val_t *out)
{
    size_t vi = mode == H_QUANTILE ? 1 : mode == H_QUANTILES ? 0 : 2;
    size_t nq = mode == H_QUANTILES ? n->u.call.n_args - 2 : mode == H_QUANTILE ? 1 : 2;
    double **qs = ARENA_ARRAY(c->a, double *, nq + 1);
    const pq_node_t **qn = ARENA_ARRAY(c->a, const pq_node_t *, nq + 1);
    int rc;
    for (size_t j = 0; j < nq; j++) {
        size_t ai = mode == H_QUANTILES ? j + 2 : j;
        if ((rc = eval_scalar_arg(c, n, ai, &qs[j])))
            return rc;
        qn[j] = n->u.call.args[ai];
        if (mode != H_FRACTION)
            quantile_warn(c, qn[j], qs[j]);
    }
    str_t qlabel = {0};
    if (mode == H_QUANTILES) {
        pqe_val_t l;
        if ((rc = pqe__eval(c, n->u.call.args[1], &l)))
            return rc;
        qlabel = l.string;
        if (!label_name_valid(qlabel))
            return err_set(c->err, ERR_INVAL, "invalid label name \"%.*s\"", (int)qlabel.len,
                           qlabel.ptr);
    }
    pqe_val_t in;
    const pq_node_t *vn = n->u.call.args[vi];
    if ((rc = pqe__eval(c, vn, &in)))
        return rc;
    static const str_t le_name = {"le", 2};
    size_t *grp = ARENA_ARRAY(c->a, size_t, in.n_series + 1);
    double *le = ARENA_ARRAY(c->a, double, in.n_series + 1);
    pqe_acc_t groups;
    pqe__acc_init(&groups);
    for (size_t k = 0; k < in.n_series; k++) {
        str_t lv = lget(&in.series[k].labels, le_name);
        char tmp[64];
        char *end = tmp;
        grp[k] = (size_t)-1;
        if (lv.len && lv.len < sizeof tmp) {
            memcpy(tmp, lv.ptr, lv.len);
            tmp[lv.len] = 0;
            le[k] = strtod(tmp, &end);
        }
        if (!lv.len || lv.len >= sizeof tmp || *end) {
            str_t name = lget(&in.series[k].labels, (str_t){"__name__", 8});
            pqe__annotate(c, true, vn,
                          "bucket label \"le\" is missing or has a malformed value of \"%.*s\" "
                          "for metric name \"%.*s\"",
                          (int)lv.len, lv.ptr ? lv.ptr : "", (int)name.len, name.ptr);
            continue;
        }
        labels_t gl = pqe__labels_del(c, &in.series[k].labels, &le_name, 1, false);
        grp[k] = pqe__acc_series(c, &groups, &gl);
    }
    pqe_acc_t acc;
    pqe__acc_init(&acc);
    bucket_t *bs = ARENA_ARRAY(c->a, bucket_t, in.n_series + 1);
    size_t *off, *mem = pqe__members(c, grp, in.n_series, groups.n, &off);
    for (size_t g = 0; g < groups.n; g++)
        for (size_t i = 0; i < c->n_steps; i++) {
            size_t nb = 0;
            for (size_t j = off[g]; j < off[g + 1]; j++) {
                size_t k = mem[j];
                if (in.series[k].has[i])
                    bs[nb++] = (bucket_t){le[k], in.series[k].v[i]};
            }
            if (!nb)
                continue;
            bool forced = false;
            for (size_t j = 0; j < (mode == H_FRACTION ? 1 : nq); j++) {
                bucket_t *cp = ARENA_ARRAY(c->a, bucket_t, nb);
                memcpy(cp, bs, nb * sizeof *cp);
                double v = mode == H_FRACTION ? bucket_fraction(qs[0][i], qs[1][i], cp, nb, &forced)
                                              : bucket_quantile(qs[j][i], cp, nb, &forced);
                labels_t ls = groups.s[g].labels;
                if (mode == H_QUANTILES)
                    ls = pqe__labels_set(c, &ls, qlabel, q_label(c, qs[j][i]));
                if ((rc = pqe__acc_add(c, &acc, &ls, true, i, v)))
                    return rc;
            }
            if (forced) {
                str_t name = lget(&groups.s[g].labels, (str_t){"__name__", 8});
                pqe__annotate(c, false, vn,
                              "input to histogram_quantile needed to be fixed for monotonicity "
                              "(see https://prometheus.io/docs/prometheus/latest/querying/"
                              "functions/#histogram_quantile) for metric name \"%.*s\"",
                              (int)name.len, name.ptr);
            }
        }
    pqe__acc_finish(&acc, out);
    return 0;
}

/* ---- dispatch ---- */

static int timestamp_fn(pqe_ctx_t *c, const pq_node_t *n, pqe_val_t *out)
{
    const pq_node_t *arg = n->u.call.args[0];
    while (arg->kind == PQ_PAREN)
        arg = arg->u.paren.expr;
    int rc;
    if (arg->kind == PQ_VECTOR_SEL) {
        rc = pqe__vector_selector(c, arg, true, out);
    } else {
        rc = pqe__eval(c, arg, out);
        for (size_t k = 0; !rc && k < out->n_series; k++)
            for (size_t i = 0; i < c->n_steps; i++)
                out->series[k].v[i] = (double)pqe__t(c, i) / 1000;
    }
    if (!rc)
        mark_drop(out);
    return rc;
}

int pqe__call(pqe_ctx_t *c, const pq_node_t *n, pqe_val_t *out)
{
    const char *name = n->u.call.func->name;
    int rc;
    memset(out, 0, sizeof *out);
    if (pqe__is_range_call(n))
        return range_fn(c, n, out);
    static const char *const scalars[] = {"time", "pi", "step", "range", "start", "end"};
    for (size_t f = 0; f < sizeof scalars / sizeof scalars[0]; f++) {
        if (strcmp(name, scalars[f]))
            continue;
        out->type = PQ_TYPE_SCALAR;
        out->scalar = pqe__new_scalar(c);
        for (size_t i = 0; i < c->n_steps; i++) {
            double v[] = {(double)pqe__t(c, i) / 1000, M_PI,
                          (double)c->q_step / 1000,    (double)(c->q_end - c->q_start) / 1000,
                          (double)c->q_start / 1000,   (double)c->q_end / 1000};
            out->scalar[i] = v[f];
        }
        return 0;
    }
    if (!strcmp(name, "min_of") || !strcmp(name, "max_of")) {
        out->type = PQ_TYPE_SCALAR;
        out->scalar = pqe__new_scalar(c);
        for (size_t a = 0; a < n->u.call.n_args; a++) {
            double *v;
            if ((rc = eval_scalar_arg(c, n, a, &v)))
                return rc;
            for (size_t i = 0; i < c->n_steps; i++)
                out->scalar[i] = a == 0           ? v[i]
                                 : name[1] == 'i' ? go_min(out->scalar[i], v[i])
                                                  : go_max(out->scalar[i], v[i]);
        }
        return 0;
    }
    if (!strcmp(name, "scalar")) {
        pqe_val_t v;
        if ((rc = pqe__eval(c, n->u.call.args[0], &v)))
            return rc;
        out->type = PQ_TYPE_SCALAR;
        out->scalar = pqe__new_scalar(c);
        for (size_t i = 0; i < c->n_steps; i++) {
            size_t cnt = 0;
            double val = NAN;
            for (size_t k = 0; k < v.n_series; k++)
                if (v.series[k].has[i]) {
                    cnt++;
                    val = v.series[k].v[i];
                }
            out->scalar[i] = cnt == 1 ? val : NAN;
        }
        return 0;
    }
    if (!strcmp(name, "vector")) {
        double *s;
        if ((rc = eval_scalar_arg(c, n, 0, &s)))
            return rc;
        pqe_series_t *o = pqe__new_series(c, out, 1);
        for (size_t i = 0; i < c->n_steps; i++) {
            o->has[i] = 1;
            o->v[i] = s[i];
        }
        return 0;
    }
    if (!strcmp(name, "timestamp"))
        return timestamp_fn(c, n, out);
    if (!strcmp(name, "absent"))
        return absent_fn(c, n, false, out);
    if (!strcmp(name, "absent_over_time"))
        return absent_fn(c, n, true, out);
    if (!strcmp(name, "label_replace") || !strcmp(name, "label_join"))
        return label_fn(c, n, out);
    if (!strncmp(name, "sort", 4))
        return sort_fn(c, n, out);
    if (!strcmp(name, "histogram_quantile"))
        return histogram_fn(c, n, H_QUANTILE, out);
    if (!strcmp(name, "histogram_quantiles"))
        return histogram_fn(c, n, H_QUANTILES, out);
    if (!strcmp(name, "histogram_fraction"))
        return histogram_fn(c, n, H_FRACTION, out);
    static const char *const dates[] = {"day_of_month",  "day_of_week", "day_of_year",
                                        "days_in_month", "hour",        "minute",
                                        "month",         "year"};
    for (size_t i = 0; i < sizeof dates / sizeof dates[0]; i++)
        if (!strcmp(name, dates[i]))
            return date_fn(c, n, out);
    static const char *const mapped[] = {"round", "clamp", "clamp_min", "clamp_max"};
    for (size_t i = 0; i < sizeof mapped / sizeof mapped[0]; i++)
        if (!strcmp(name, mapped[i]))
            return map_vector(c, n, out);
    for (size_t f = 0; f < sizeof simple_fns / sizeof simple_fns[0]; f++)
        if (!strcmp(simple_fns[f].name, name))
            return map_vector(c, n, out);
    return unsupported(c, n);
}
