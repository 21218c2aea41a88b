/*
 * promql_binop.c - PromQL binary operators: arithmetic, comparisons (filtering or `bool`), the set
 * operators and/or/unless, with one-to-one and group_left/group_right vector matching.
 *
 * Matching works on signatures: the label set reduced to the on(...) labels, or stripped of the
 * ignoring(...) labels and __name__. Label sets are fixed along the steps, so signatures and the
 * result labels of a (lhs, rhs) pair are computed once; each step then pairs the series present
 * at that step and reports Prometheus' errors for duplicate match groups.
 */
#include <math.h>
#include <string.h>
#include <sys/types.h>

#include "query/internal.h"

static bool is_cmp(pq_binop_t op) { return op >= PQ_EQL && op <= PQ_LTE; }

/* Value of l op r; for comparisons the lhs value, with *keep the comparison's outcome. */
static double apply(pq_binop_t op, double l, double r, bool *keep)
{
    *keep = true;
    switch (op) {
    case PQ_ADD:
        return l + r;
    case PQ_SUB:
        return l - r;
    case PQ_MUL:
        return l * r;
    case PQ_DIV:
        return l / r;
    case PQ_MOD:
        return fmod(l, r);
    case PQ_POW:
        return pow(l, r);
    case PQ_ATAN2:
        return atan2(l, r);
    case PQ_EQL:
        *keep = l == r;
        return l;
    case PQ_NEQ:
        *keep = l != r;
        return l;
    case PQ_GTR:
        *keep = l > r;
        return l;
    case PQ_LSS:
        *keep = l < r;
        return l;
    case PQ_GTE:
        *keep = l >= r;
        return l;
    case PQ_LTE:
        *keep = l <= r;
        return l;
    default:
        return NAN;
    }
}

static int scalar_scalar(pqe_ctx_t *c, const pq_node_t *n, pqe_val_t *l, pqe_val_t *r,
                         pqe_val_t *out)
{
    out->type = PQ_TYPE_SCALAR;
    out->scalar = pqe__new_scalar(c);
    for (size_t i = 0; i < c->n_steps; i++) {
        bool keep;
        double v = apply(n->u.binary.op, l->scalar[i], r->scalar[i], &keep);
        out->scalar[i] = is_cmp(n->u.binary.op) ? (keep ? 1 : 0) : v;
    }
    return 0;
}

static int vector_scalar(pqe_ctx_t *c, const pq_node_t *n, pqe_val_t *vec, const double *sc,
                         bool swap, pqe_val_t *out)
{
    pq_binop_t op = n->u.binary.op;
    bool rb = n->u.binary.return_bool;
    out->type = PQ_TYPE_VECTOR;
    out->series = vec->series;
    out->n_series = vec->n_series;
    for (size_t k = 0; k < vec->n_series; k++) {
        pqe_series_t *s = &vec->series[k];
        for (size_t i = 0; i < c->n_steps; i++) {
            if (!s->has[i])
                continue;
            double lf = s->v[i], rf = sc[i];
            if (swap) {
                lf = sc[i];
                rf = s->v[i];
            }
            bool keep;
            double v = apply(op, lf, rf, &keep);
            if (is_cmp(op) && swap)
                v = rf;
            if (rb) {
                v = keep ? 1 : 0;
                keep = true;
            }
            if (!keep) {
                s->has[i] = 0;
                continue;
            }
            s->v[i] = v;
        }
        if (!is_cmp(op) || rb)
            s->drop_name = true;
    }
    return 0;
}

typedef struct sig {
    uint64_t h;
    labels_t ls;
} sig_t;

static sig_t signature(pqe_ctx_t *c, const pq_node_t *n, const labels_t *ls)
{
    sig_t s;
    if (n->u.binary.has_matching && n->u.binary.on)
        s.ls = pqe__labels_keep(c, ls, n->u.binary.match_labels, n->u.binary.n_match_labels);
    else
        s.ls = pqe__labels_del(c, ls, n->u.binary.match_labels, n->u.binary.n_match_labels, true);
    s.h = labels_hash(&s.ls);
    return s;
}

/* Groups series by signature: group[k] is series k's group; the groups' signature label sets are
 * the accumulator's series (for lookups from the other side). */
static void group_sigs(pqe_ctx_t *c, const pq_node_t *n, const pqe_val_t *v, size_t *group,
                       pqe_acc_t *acc)
{
    pqe__acc_init(acc);
    for (size_t k = 0; k < v->n_series; k++) {
        sig_t sg = signature(c, n, &v->series[k].labels);
        group[k] = pqe__acc_series(c, acc, &sg.ls);
    }
}

/* For each group of a, the index of the group of b with the same signature, or (size_t)-1. */
static size_t *map_groups(pqe_ctx_t *c, const pqe_acc_t *a, const pqe_acc_t *b)
{
    size_t *m = ARENA_ARRAY(c->a, size_t, a->n + 1);
    for (size_t g = 0; g < a->n; g++)
        m[g] = pqe__acc_find(b, &a->s[g].labels);
    return m;
}

static int set_op(pqe_ctx_t *c, const pq_node_t *n, pqe_val_t *l, pqe_val_t *r, pqe_val_t *out)
{
    pq_binop_t op = n->u.binary.op;
    size_t *lg = ARENA_ARRAY(c->a, size_t, l->n_series + 1);
    size_t *rg = ARENA_ARRAY(c->a, size_t, r->n_series + 1);
    pqe_acc_t la, ra;
    group_sigs(c, n, l, lg, &la);
    group_sigs(c, n, r, rg, &ra);
    size_t nlg = la.n, nrg = ra.n;
    size_t *l2r = map_groups(c, &la, &ra), *r2l = map_groups(c, &ra, &la);
    uint8_t *lpres = ARENA_ARRAY(c->a, uint8_t, nlg + 1);
    uint8_t *rpres = ARENA_ARRAY(c->a, uint8_t, nrg + 1);
    for (size_t i = 0; i < c->n_steps; i++) {
        memset(lpres, 0, nlg + 1);
        memset(rpres, 0, nrg + 1);
        for (size_t k = 0; k < l->n_series; k++)
            if (l->series[k].has[i])
                lpres[lg[k]] = 1;
        for (size_t k = 0; k < r->n_series; k++)
            if (r->series[k].has[i])
                rpres[rg[k]] = 1;
        for (size_t k = 0; k < l->n_series; k++) {
            if (!l->series[k].has[i])
                continue;
            size_t g = l2r[lg[k]];
            bool in_r = g != (size_t)-1 && rpres[g];
            if ((op == PQ_AND && !in_r) || (op == PQ_UNLESS && in_r))
                l->series[k].has[i] = 0;
        }
        if (op == PQ_OR)
            for (size_t k = 0; k < r->n_series; k++) {
                size_t g = r2l[rg[k]];
                if (r->series[k].has[i] && g != (size_t)-1 && lpres[g])
                    r->series[k].has[i] = 0;
            }
    }
    out->type = PQ_TYPE_VECTOR;
    if (op != PQ_OR) {
        out->series = l->series;
        out->n_series = l->n_series;
        return 0;
    }
    pqe_acc_t acc;
    pqe__acc_init(&acc);
    pqe_val_t *sides[2] = {l, r};
    for (int sd = 0; sd < 2; sd++)
        for (size_t k = 0; k < sides[sd]->n_series; k++) {
            pqe_series_t *s = &sides[sd]->series[k];
            for (size_t i = 0; i < c->n_steps; i++)
                if (s->has[i]) {
                    int rc = pqe__acc_add(c, &acc, &s->labels, s->drop_name, i, s->v[i]);
                    if (rc)
                        return rc;
                }
        }
    pqe__acc_finish(&acc, out);
    return 0;
}

static labels_t result_labels(pqe_ctx_t *c, const pq_node_t *n, const labels_t *ls,
                              const labels_t *rs)
{
    labels_t out = *ls;
    if (n->u.binary.card == PQ_CARD_ONE_TO_ONE) {
        if (n->u.binary.has_matching && n->u.binary.on)
            out = pqe__labels_keep(c, ls, n->u.binary.match_labels, n->u.binary.n_match_labels);
        else
            out =
                pqe__labels_del(c, ls, n->u.binary.match_labels, n->u.binary.n_match_labels, false);
    }
    for (size_t i = 0; i < n->u.binary.n_include; i++) {
        str_t name = n->u.binary.include[i];
        str_t v = {NULL, 0};
        for (size_t j = 0; j < rs->n; j++)
            if (str_eq(rs->v[j].name, name))
                v = rs->v[j].value;
        out = pqe__labels_set(c, &out, name, v);
    }
    return out;
}

static int dup_error(pqe_ctx_t *c, const labels_t *g, const labels_t *a, const labels_t *b,
                     bool swapped)
{
    buf_t s1, s2, s3;
    buf_init(&s1, 64);
    buf_init(&s2, 64);
    buf_init(&s3, 64);
    labels_format(&s1, g);
    labels_format(&s2, a);
    labels_format(&s3, b);
    err_set(c->err, ERR_INVAL,
            "found duplicate series for the match group %s on the %s hand-side of the operation: "
            "[%s, %s];many-to-many matching not allowed: matching labels must be unique on one "
            "side",
            buf_cstr(&s1), swapped ? "left" : "right", buf_cstr(&s2), buf_cstr(&s3));
    buf_deinit(&s1);
    buf_deinit(&s2);
    buf_deinit(&s3);
    return ERR_INVAL;
}

static int vector_vector(pqe_ctx_t *c, const pq_node_t *n, pqe_val_t *l, pqe_val_t *r,
                         pqe_val_t *out)
{
    pq_binop_t op = n->u.binary.op;
    pq_card_t card = n->u.binary.card;
    bool rb = n->u.binary.return_bool, swapped = card == PQ_CARD_ONE_TO_MANY;
    if (swapped) {
        pqe_val_t *t = l;
        l = r;
        r = t;
    }
    size_t *lg = ARENA_ARRAY(c->a, size_t, l->n_series + 1);
    size_t *rg = ARENA_ARRAY(c->a, size_t, r->n_series + 1);
    pqe_acc_t la, ra;
    group_sigs(c, n, l, lg, &la);
    group_sigs(c, n, r, rg, &ra);
    size_t nrg = ra.n;
    size_t *l2r = map_groups(c, &la, &ra);
    ssize_t *rsel = ARENA_ARRAY(c->a, ssize_t, nrg + 1);
    size_t *used = ARENA_ARRAY(c->a, size_t, nrg + 1);
    ssize_t *cache_r = ARENA_ARRAY(c->a, ssize_t, l->n_series + 1);
    size_t *cache_idx = ARENA_ARRAY(c->a, size_t, l->n_series + 1);
    for (size_t k = 0; k < l->n_series; k++)
        cache_r[k] = -1;
    pqe_acc_t acc;
    pqe__acc_init(&acc);
    for (size_t i = 0; i < c->n_steps; i++) {
        int rc = pqe__check(c);
        if (rc)
            return rc;
        for (size_t g = 0; g < nrg; g++)
            rsel[g] = -1;
        for (size_t k = 0; k < r->n_series; k++) {
            if (!r->series[k].has[i])
                continue;
            if (rsel[rg[k]] >= 0)
                return dup_error(c, &ra.s[rg[k]].labels, &r->series[rsel[rg[k]]].labels,
                                 &r->series[k].labels, swapped);
            rsel[rg[k]] = (ssize_t)k;
        }
        for (size_t k = 0; k < l->n_series; k++) {
            pqe_series_t *s = &l->series[k];
            if (!s->has[i] || l2r[lg[k]] == (size_t)-1)
                continue;
            size_t g = l2r[lg[k]];
            ssize_t rk = rsel[g];
            if (rk < 0)
                continue;
            pqe_series_t *o = &r->series[rk];
            double lf = s->v[i], rf = o->v[i];
            if (swapped) {
                lf = o->v[i];
                rf = s->v[i];
            }
            if (card == PQ_CARD_ONE_TO_ONE) {
                if (used[g] == i + 1)
                    return err_set(c->err, ERR_INVAL,
                                   "multiple matches for labels: many-to-one matching must be "
                                   "explicit (group_left/group_right)");
                used[g] = i + 1;
            }
            bool keep;
            double v = apply(op, lf, rf, &keep);
            if (rb) {
                v = keep ? 1 : 0;
                keep = true;
            }
            if (!keep)
                continue;
            if (cache_r[k] != rk) {
                labels_t rl = result_labels(c, n, &s->labels, &o->labels);
                cache_r[k] = rk;
                cache_idx[k] = pqe__acc_series(c, &acc, &rl);
            }
            pqe_series_t *d = &acc.s[cache_idx[k]];
            if (d->has[i])
                return err_set(c->err, ERR_INVAL,
                               card == PQ_CARD_ONE_TO_ONE
                                   ? "vector cannot contain metrics with the same labelset"
                                   : "multiple matches for labels: grouping labels must ensure "
                                     "unique matches");
            d->has[i] = 1;
            d->v[i] = v;
            if (!is_cmp(op) || rb || s->drop_name)
                d->drop_name = true;
        }
    }
    pqe__acc_finish(&acc, out);
    return 0;
}

int pqe__binary(pqe_ctx_t *c, const pq_node_t *n, pqe_val_t *out)
{
    pqe_val_t l, r;
    int rc = pqe__eval(c, n->u.binary.lhs, &l);
    if (rc)
        return rc;
    if ((rc = pqe__eval(c, n->u.binary.rhs, &r)))
        return rc;
    memset(out, 0, sizeof *out);
    if (l.type == PQ_TYPE_SCALAR && r.type == PQ_TYPE_SCALAR)
        return scalar_scalar(c, n, &l, &r, out);
    if (l.type == PQ_TYPE_VECTOR && r.type == PQ_TYPE_SCALAR)
        return vector_scalar(c, n, &l, r.scalar, false, out);
    if (l.type == PQ_TYPE_SCALAR && r.type == PQ_TYPE_VECTOR)
        return vector_scalar(c, n, &r, l.scalar, true, out);
    if (l.type != PQ_TYPE_VECTOR || r.type != PQ_TYPE_VECTOR)
        return err_set(c->err, ERR_INVAL, "binary operator on unsupported operand types");
    if (n->u.binary.op >= PQ_AND)
        return set_op(c, n, &l, &r, out);
    return vector_vector(c, n, &l, &r, out);
}
