/*
 * promql_agg.c - PromQL aggregation operators over instant vectors, with by (...) / without (...).
 *
 * Each input series is assigned to its group once (label sets are fixed along the steps); each
 * step then folds the present series of every group. sum uses Kahan-Neumaier summation; avg sums
 * the same way and switches to an incremental mean only when the sum would overflow; stddev and
 * stdvar use Welford's online algorithm; quantile interpolates between the closest ranks. topk,
 * bottomk and limitk keep input series (with their labels and name-removal marks); count_values
 * adds the value as a label.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "base/fmtnum.h"
#include "query/internal.h"

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    if (isnan(x))
        return isnan(y) ? 0 : -1;
    if (isnan(y))
        return 1;
    return x < y ? -1 : x > y;
}

double pqe__quantile(double q, double *vals, size_t n)
{
    if (n == 0 || isnan(q))
        return NAN;
    if (q < 0)
        return -INFINITY;
    if (q > 1)
        return INFINITY;
    qsort(vals, n, sizeof *vals, dbl_cmp);
    double rank = q * (double)(n - 1);
    double lower = fmax(0, floor(rank));
    double upper = fmin((double)(n - 1), lower + 1);
    double w = rank - floor(rank);
    return vals[(size_t)lower] * (1 - w) + vals[(size_t)upper] * w;
}

typedef struct grp {
    double v, comp, mean, count;
    bool incremental, seen;
    double *vals; /* quantile */
    size_t n_vals;
} grp_t;

static labels_t group_labels(pqe_ctx_t *c, const pq_node_t *n, const labels_t *ls)
{
    if (n->u.agg.without)
        return pqe__labels_del(c, ls, n->u.agg.grouping, n->u.agg.n_grouping, true);
    return pqe__labels_keep(c, ls, n->u.agg.grouping, n->u.agg.n_grouping);
}

static bool groups_by_name(const pq_node_t *n)
{
    if (n->u.agg.without)
        return false;
    for (size_t i = 0; i < n->u.agg.n_grouping; i++)
        if (str_eq_cstr(n->u.agg.grouping[i], "__name__"))
            return true;
    return false;
}

static void fold(pq_aggop_t op, grp_t *g, double f)
{
    if (!g->seen) {
        g->seen = true;
        g->count = 1;
        g->v = f;
        g->comp = 0;
        g->mean = f;
        g->incremental = false;
        if (op == PQ_AGG_STDDEV || op == PQ_AGG_STDVAR)
            g->v = (isnan(f) || isinf(f)) ? NAN : 0;
        if (op == PQ_AGG_COUNT || op == PQ_AGG_GROUP)
            g->v = 1;
        return;
    }
    switch (op) {
    case PQ_AGG_SUM:
        pqe__kahan_inc(f, &g->v, &g->comp);
        break;
    case PQ_AGG_AVG:
        g->count++;
        if (!g->incremental) {
            double nv = g->v, nc = g->comp;
            pqe__kahan_inc(f, &nv, &nc);
            if (!isinf(nv)) {
                g->v = nv;
                g->comp = nc;
                break;
            }
            g->incremental = true;
            g->mean = g->v / (g->count - 1);
            g->comp /= g->count - 1;
        }
        if (isinf(g->mean)) {
            if (isinf(f) && (g->mean > 0) == (f > 0))
                break;
            if (!isinf(f) && !isnan(f))
                break;
        }
        {
            double cur = g->mean + g->comp;
            pqe__kahan_inc(f / g->count - cur / g->count, &g->mean, &g->comp);
        }
        break;
    case PQ_AGG_COUNT:
        g->v++;
        break;
    case PQ_AGG_MIN:
        if (g->v > f || isnan(g->v))
            g->v = f;
        break;
    case PQ_AGG_MAX:
        if (g->v < f || isnan(g->v))
            g->v = f;
        break;
    case PQ_AGG_STDDEV:
    case PQ_AGG_STDVAR: {
        g->count++;
        double d = f - g->mean;
        g->mean += d / g->count;
        g->v += d * (f - g->mean);
        break;
    }
    default:
        break;
    }
}

static double finish(pq_aggop_t op, grp_t *g)
{
    switch (op) {
    case PQ_AGG_SUM:
        return g->v + g->comp;
    case PQ_AGG_AVG:
        if (g->incremental)
            return g->mean + g->comp;
        return (g->v + g->comp) / g->count;
    case PQ_AGG_STDVAR:
        return g->v / g->count;
    case PQ_AGG_STDDEV:
        return sqrt(g->v / g->count);
    default:
        return g->v;
    }
}

typedef struct ranked {
    size_t k;
    double v;
} ranked_t;

static int cmp_top(const void *a, const void *b)
{
    const ranked_t *x = a, *y = b;
    bool nx = isnan(x->v), ny = isnan(y->v);
    if (nx != ny)
        return nx ? 1 : -1;
    if (!nx && x->v != y->v)
        return x->v > y->v ? -1 : 1;
    return x->k < y->k ? -1 : x->k > y->k;
}

static int cmp_bottom(const void *a, const void *b)
{
    const ranked_t *x = a, *y = b;
    bool nx = isnan(x->v), ny = isnan(y->v);
    if (nx != ny)
        return nx ? 1 : -1;
    if (!nx && x->v != y->v)
        return x->v < y->v ? -1 : 1;
    return x->k < y->k ? -1 : x->k > y->k;
}

/* Keeps the k best of the m entries of buf (best first under cmp, a total order) in buf[0..k):
 * a bounded heap whose root is the worst entry kept, O(m log k) instead of sorting all m. The
 * kept set is the first k of the sorted order; their order in buf is not. */
static size_t keep_best(ranked_t *buf, size_t m, size_t k, int (*cmp)(const void *, const void *))
{
    if (k >= m)
        return m;
    for (size_t h = 0; h < m; h++) {
        ranked_t x = buf[h];
        size_t i;
        if (h < k) { /* sift up: parents are worse or equal */
            i = h;
            while (i > 0 && cmp(&buf[(i - 1) / 2], &x) < 0) {
                buf[i] = buf[(i - 1) / 2];
                i = (i - 1) / 2;
            }
            buf[i] = x;
            continue;
        }
        if (cmp(&x, &buf[0]) >= 0)
            continue;
        i = 0; /* replace the root, sift down */
        for (;;) {
            size_t l = 2 * i + 1, r = l + 1, w = l;
            if (l >= k)
                break;
            if (r < k && cmp(&buf[r], &buf[l]) > 0)
                w = r;
            if (cmp(&buf[w], &x) <= 0)
                break;
            buf[i] = buf[w];
            i = w;
        }
        buf[i] = x;
    }
    return k;
}

/* topk, bottomk, limitk: output series are the input series, present where selected. */
static int select_k(pqe_ctx_t *c, const pq_node_t *n, pqe_val_t *in, const double *param,
                    const size_t *grp, size_t ng, pqe_val_t *out)
{
    pq_aggop_t op = n->u.agg.op;
    ranked_t *buf = ARENA_ARRAY(c->a, ranked_t, in->n_series + 1);
    size_t *off, *mem = pqe__members(c, grp, in->n_series, ng, &off);
    uint8_t *keep = ARENA_ARRAY(c->a, uint8_t, in->n_series + 1);
    for (size_t i = 0; i < c->n_steps; i++) {
        double kf = param[i];
        if (isnan(kf))
            return err_set(c->err, ERR_INVAL, "Parameter value is NaN");
        if (kf >= 9.2233720368547758e18 || kf <= -9.2233720368547758e18)
            return err_set(c->err, ERR_INVAL, "Scalar value %g overflows int64", kf);
        int64_t k = (int64_t)kf;
        memset(keep, 0, in->n_series + 1);
        if (k >= 1) {
            for (size_t g = 0; g < ng; g++) {
                size_t m = 0;
                for (size_t j = off[g]; j < off[g + 1]; j++) {
                    size_t s = mem[j];
                    if (in->series[s].has[i])
                        buf[m++] = (ranked_t){s, in->series[s].v[i]};
                }
                size_t kk = (uint64_t)k < m ? (size_t)k : m;
                if (op == PQ_AGG_TOPK)
                    kk = keep_best(buf, m, kk, cmp_top);
                else if (op == PQ_AGG_BOTTOMK)
                    kk = keep_best(buf, m, kk, cmp_bottom);
                for (size_t j = 0; j < kk; j++)
                    keep[buf[j].k] = 1;
            }
        }
        for (size_t s = 0; s < in->n_series; s++)
            if (!keep[s])
                in->series[s].has[i] = 0;
    }
    out->type = PQ_TYPE_VECTOR;
    out->series = in->series;
    out->n_series = in->n_series;
    /* An instant topk/bottomk is ordered by value (Prometheus sorts the heap). */
    if (c->n_steps == 1 && op != PQ_AGG_LIMITK) {
        size_t m = 0;
        for (size_t s = 0; s < in->n_series; s++)
            if (in->series[s].has[0])
                buf[m++] = (ranked_t){s, in->series[s].v[0]};
        qsort(buf, m, sizeof *buf, op == PQ_AGG_TOPK ? cmp_top : cmp_bottom);
        pqe_series_t *ns = ARENA_ARRAY(c->a, pqe_series_t, m + 1);
        for (size_t j = 0; j < m; j++)
            ns[j] = in->series[buf[j].k];
        out->series = ns;
        out->n_series = m;
    }
    return 0;
}

static int count_values(pqe_ctx_t *c, const pq_node_t *n, pqe_val_t *in, str_t label,
                        pqe_val_t *out)
{
    if (!label_name_valid(label))
        return err_set(c->err, ERR_INVAL, "invalid label name \"%.*s\"", (int)label.len, label.ptr);
    labels_t *gl = ARENA_ARRAY(c->a, labels_t, in->n_series + 1);
    for (size_t s = 0; s < in->n_series; s++)
        gl[s] = group_labels(c, n, &in->series[s].labels);
    pqe_acc_t acc;
    pqe__acc_init(&acc);
    for (size_t i = 0; i < c->n_steps; i++)
        for (size_t s = 0; s < in->n_series; s++) {
            if (!in->series[s].has[i])
                continue;
            char num[64];
            size_t len = fmt_float_f(num, in->series[s].v[i]);
            str_t val = arena_str(c->a, (str_t){num, len});
            labels_t ls = pqe__labels_set(c, &gl[s], label, val);
            size_t idx = pqe__acc_series(c, &acc, &ls);
            pqe_series_t *d = &acc.s[idx];
            if (!d->has[i]) {
                d->has[i] = 1;
                d->v[i] = 0;
            }
            d->v[i]++;
        }
    pqe__acc_finish(&acc, out);
    return 0;
}

/* Prometheus' labels.Hash: XXH64 over name 0xff value 0xff ... */
static uint64_t prom_labels_hash(const labels_t *ls)
{
    XXH64_state_t *st = XXH64_createState();
    XXH64_reset(st, 0);
    const uint8_t sep = 0xff;
    for (size_t i = 0; i < ls->n; i++) {
        XXH64_update(st, ls->v[i].name.ptr, ls->v[i].name.len);
        XXH64_update(st, &sep, 1);
        XXH64_update(st, ls->v[i].value.ptr, ls->v[i].value.len);
        XXH64_update(st, &sep, 1);
    }
    uint64_t h = XXH64_digest(st);
    XXH64_freeState(st);
    return h;
}

/* limit_ratio(r, v): a series is kept when its label hash, scaled to [0, 1], is below r (r >= 0)
 * or at least 1 + r (r < 0), so r and -(1 - r) select complementary sets. */
static int limit_ratio(pqe_ctx_t *c, const pq_node_t *n, pqe_val_t *in, const double *ratio,
                       pqe_val_t *out)
{
    double *off = ARENA_ARRAY(c->a, double, in->n_series + 1);
    for (size_t s = 0; s < in->n_series; s++)
        off[s] = (double)prom_labels_hash(&in->series[s].labels) / 18446744073709551615.0;
    for (size_t i = 0; i < c->n_steps; i++) {
        double r = ratio[i];
        if (isnan(r))
            return err_set(c->err, ERR_INVAL, "Ratio value is NaN");
        if (r < -1 || r > 1) {
            double capped = r < -1 ? -1 : 1;
            pqe__annotate(c, true, n->u.agg.param,
                          "ratio value should be between -1 and 1, got %g, capping to %g", r,
                          capped);
            r = capped;
        }
        for (size_t s = 0; s < in->n_series; s++) {
            bool keep = (r >= 0 && off[s] < r) || (r < 0 && off[s] >= 1.0 + r);
            if (!keep)
                in->series[s].has[i] = 0;
        }
    }
    out->type = PQ_TYPE_VECTOR;
    out->series = in->series;
    out->n_series = in->n_series;
    return 0;
}

/* ---- streaming aggregation ----
 * sum, avg, count, group, min and max fold each input series into its group as the series
 * arrives (pqe__stream), step by step, so the input vector is never held whole. Each (group,
 * step) sees the series in the same order as the step-major fold above, so the results are the
 * same to the last bit. State per group: the output series' value and presence arrays, plus the
 * Kahan compensation (sum, avg) and count, mean and mode arrays (avg). */

typedef struct sagg_grp {
    double *comp, *count, *mean;
    uint8_t *incremental;
} sagg_grp_t;

typedef struct sagg {
    const pq_node_t *n;
    pq_aggop_t op;
    bool by_name;
    pqe_acc_t groups;
    sagg_grp_t *st; /* per group, parallel to groups.s */
    size_t st_cap;
} sagg_t;

static bool streams(pq_aggop_t op)
{
    return op == PQ_AGG_SUM || op == PQ_AGG_AVG || op == PQ_AGG_COUNT || op == PQ_AGG_GROUP ||
           op == PQ_AGG_MIN || op == PQ_AGG_MAX;
}

static sagg_grp_t *sagg_state(pqe_ctx_t *c, sagg_t *g, size_t k)
{
    if (k >= g->st_cap) {
        size_t cap = g->st_cap ? g->st_cap * 2 : 16;
        while (cap <= k)
            cap *= 2;
        sagg_grp_t *ns = ARENA_ARRAY(c->a, sagg_grp_t, cap);
        if (g->st_cap)
            memcpy(ns, g->st, g->st_cap * sizeof *ns);
        g->st = ns;
        g->st_cap = cap;
    }
    sagg_grp_t *st = &g->st[k];
    if (!st->comp && (g->op == PQ_AGG_SUM || g->op == PQ_AGG_AVG)) {
        st->comp = ARENA_ARRAY(c->a, double, c->n_steps);
        if (g->op == PQ_AGG_AVG) {
            st->count = ARENA_ARRAY(c->a, double, c->n_steps);
            st->mean = ARENA_ARRAY(c->a, double, c->n_steps);
            st->incremental = ARENA_ARRAY(c->a, uint8_t, c->n_steps);
        }
    }
    return st;
}

/* fold() for AVG on one (group, step) held in arrays. */
static void avg_fold(sagg_grp_t *st, double *v, size_t i, double f)
{
    st->count[i]++;
    if (!st->incremental[i]) {
        double nv = v[i], nc = st->comp[i];
        pqe__kahan_inc(f, &nv, &nc);
        if (!isinf(nv)) {
            v[i] = nv;
            st->comp[i] = nc;
            return;
        }
        st->incremental[i] = 1;
        st->mean[i] = v[i] / (st->count[i] - 1);
        st->comp[i] /= st->count[i] - 1;
    }
    if (isinf(st->mean[i])) {
        if (isinf(f) && (st->mean[i] > 0) == (f > 0))
            return;
        if (!isinf(f) && !isnan(f))
            return;
    }
    double cur = st->mean[i] + st->comp[i];
    pqe__kahan_inc(f / st->count[i] - cur / st->count[i], &st->mean[i], &st->comp[i]);
}

static int sagg_sink(pqe_ctx_t *c, void *arg, const pqe_series_t *s)
{
    sagg_t *g = arg;
    labels_t gl = group_labels(c, g->n, &s->labels);
    size_t k = pqe__acc_series(c, &g->groups, &gl);
    sagg_grp_t *st = sagg_state(c, g, k);
    pqe_series_t *o = &g->groups.s[k];
    double *ov = o->v;
    uint8_t *oh = o->has;
    const double *v = s->v;
    const uint8_t *has = s->has;
    bool any = false;
    if (g->op == PQ_AGG_SUM) { /* the common case, without the per-step switch */
        double *comp = st->comp;
        for (size_t i = 0; i < c->n_steps; i++) {
            if (!has[i])
                continue;
            any = true;
            if (!oh[i]) {
                oh[i] = 1;
                ov[i] = v[i];
                comp[i] = 0;
            } else {
                pqe__kahan_inc(v[i], &ov[i], &comp[i]);
            }
        }
    } else if (g->op == PQ_AGG_AVG) { /* likewise */
        for (size_t i = 0; i < c->n_steps; i++) {
            if (!has[i])
                continue;
            any = true;
            if (!oh[i]) {
                oh[i] = 1;
                ov[i] = v[i];
                st->comp[i] = 0;
                st->count[i] = 1;
                st->mean[i] = v[i];
                st->incremental[i] = 0;
            } else {
                avg_fold(st, ov, i, v[i]);
            }
        }
    } else {
        for (size_t i = 0; i < c->n_steps; i++) {
            if (!has[i])
                continue;
            any = true;
            double f = v[i];
            if (!oh[i]) { /* count, group, min, max (sum and avg above) */
                oh[i] = 1;
                ov[i] = (g->op == PQ_AGG_COUNT || g->op == PQ_AGG_GROUP) ? 1 : f;
                continue;
            }
            switch (g->op) {
            case PQ_AGG_COUNT:
                ov[i]++;
                break;
            case PQ_AGG_MIN:
                if (ov[i] > f || isnan(ov[i]))
                    ov[i] = f;
                break;
            case PQ_AGG_MAX:
                if (ov[i] < f || isnan(ov[i]))
                    ov[i] = f;
                break;
            default:
                break;
            }
        }
    }
    if (any && g->by_name && s->drop_name)
        o->drop_name = true;
    return 0;
}

static int aggregate_stream(pqe_ctx_t *c, const pq_node_t *n, pqe_val_t *out)
{
    sagg_t g;
    memset(&g, 0, sizeof g);
    g.n = n;
    g.op = n->u.agg.op;
    g.by_name = groups_by_name(n);
    pqe__acc_init(&g.groups);
    int rc = pqe__stream(c, n->u.agg.expr, sagg_sink, &g);
    if (rc)
        return rc;
    for (size_t k = 0; k < g.groups.n; k++) {
        pqe_series_t *o = &g.groups.s[k];
        sagg_grp_t *st = &g.st[k];
        for (size_t i = 0; i < c->n_steps; i++) {
            if (!o->has[i])
                continue;
            if (g.op == PQ_AGG_SUM)
                o->v[i] += st->comp[i];
            else if (g.op == PQ_AGG_AVG)
                o->v[i] = st->incremental[i] ? st->mean[i] + st->comp[i]
                                             : (o->v[i] + st->comp[i]) / st->count[i];
        }
    }
    pqe__acc_finish(&g.groups, out);
    return 0;
}

int pqe__aggregate(pqe_ctx_t *c, const pq_node_t *n, pqe_val_t *out)
{
    pq_aggop_t op = n->u.agg.op;
    pqe_val_t in, param = {0};
    int rc;
    if (n->u.agg.param && (rc = pqe__eval(c, n->u.agg.param, &param)))
        return rc;
    if (streams(op))
        return aggregate_stream(c, n, out);
    if ((rc = pqe__eval(c, n->u.agg.expr, &in)))
        return rc;
    memset(out, 0, sizeof *out);
    if (op == PQ_AGG_LIMIT_RATIO)
        return limit_ratio(c, n, &in, param.scalar, out);
    if (op == PQ_AGG_COUNT_VALUES)
        return count_values(c, n, &in, param.string, out);
    /* Group assignment, once per series. */
    size_t *grp = ARENA_ARRAY(c->a, size_t, in.n_series + 1);
    pqe_acc_t groups;
    pqe__acc_init(&groups);
    for (size_t s = 0; s < in.n_series; s++) {
        labels_t gl = group_labels(c, n, &in.series[s].labels);
        grp[s] = pqe__acc_series(c, &groups, &gl);
    }
    size_t ng = groups.n;
    if (op == PQ_AGG_TOPK || op == PQ_AGG_BOTTOMK || op == PQ_AGG_LIMITK)
        return select_k(c, n, &in, param.scalar, grp, ng, out);
    if (op == PQ_AGG_QUANTILE)
        for (size_t i = 0; i < c->n_steps; i++) {
            double q = param.scalar[i];
            if (isnan(q) || q < 0 || q > 1) {
                char b[64];
                if (isnan(q))
                    snprintf(b, sizeof b, "NaN");
                else if (isinf(q))
                    snprintf(b, sizeof b, "%cInf", q > 0 ? '+' : '-');
                else
                    snprintf(b, sizeof b, "%g", q);
                pqe__annotate(c, true, n->u.agg.param,
                              "quantile value should be between 0 and 1, got %s", b);
                break;
            }
        }
    bool by_name = groups_by_name(n);
    grp_t *st = ARENA_ARRAY(c->a, grp_t, ng + 1);
    for (size_t i = 0; i < c->n_steps; i++) {
        if ((rc = pqe__check(c)))
            return rc;
        memset(st, 0, sizeof(grp_t) * (ng + 1));
        for (size_t s = 0; s < in.n_series; s++) {
            if (!in.series[s].has[i])
                continue;
            grp_t *g = &st[grp[s]];
            double f = in.series[s].v[i];
            if (op == PQ_AGG_QUANTILE) {
                if (!g->vals)
                    g->vals = ARENA_ARRAY(c->a, double, in.n_series);
                g->vals[g->n_vals++] = f;
                g->seen = true;
            } else {
                fold(op, g, f);
            }
            if (by_name && in.series[s].drop_name)
                groups.s[grp[s]].drop_name = true;
        }
        for (size_t g = 0; g < ng; g++) {
            if (!st[g].seen)
                continue;
            groups.s[g].has[i] = 1;
            groups.s[g].v[i] = op == PQ_AGG_QUANTILE
                                   ? pqe__quantile(param.scalar[i], st[g].vals, st[g].n_vals)
                                   : finish(op, &st[g]);
        }
    }
    pqe__acc_finish(&groups, out);
    return 0;
}
