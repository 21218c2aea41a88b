/*
 * index.c - postings set algebra, Prometheus-style matcher selection, and the head's in-memory
 * inverted index.
 *
 * In-memory index: a pair table (name, value, ascending id list) found through a u64map keyed by
 * hash(name 0xff value); a name table (name, list of its pairs) keyed by hash(name). Hash
 * collisions between different strings are chained through `next` (index + 1), and every lookup
 * compares the strings, so a collision costs a comparison, never a wrong answer. Ids arrive in
 * ascending order (series ids only grow), so postings are appended, never inserted.
 */
#include "store/index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct index_pair {
    str_t name, value;
    uint64_t *ids;
    uint32_t n, cap;
    uint32_t next; /* collision chain: pair index + 1, 0 = end */
};

struct index_name {
    str_t name;
    uint32_t *pairs;
    uint32_t n, cap;
    uint32_t next;
};

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "skillscope: out of memory in the series index\n");
        abort();
    }
    return q;
}

/* ---- set operations ---- */

postings_t postings_intersect(postings_t x, postings_t y, arena_t *a)
{
    if (!x.n || !y.n)
        return (postings_t){NULL, 0};
    if (x.n > y.n) {
        postings_t t = x;
        x = y;
        y = t;
    }
    uint64_t *out = arena_alloc(a, x.n * sizeof *out);
    size_t n = 0, j = 0;
    for (size_t i = 0; i < x.n && j < y.n; i++) {
        uint64_t v = x.v[i];
        if (y.v[j] < v) {
            /* Gallop: y is usually much longer than x. */
            size_t step = 1, lo = j, hi = j + 1;
            while (hi < y.n && y.v[hi] < v) {
                lo = hi;
                step *= 2;
                hi = j + step;
            }
            if (hi > y.n)
                hi = y.n;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (y.v[mid] < v)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            j = lo;
        }
        if (j < y.n && y.v[j] == v)
            out[n++] = v;
    }
    return (postings_t){out, n};
}

postings_t postings_subtract(postings_t x, postings_t y, arena_t *a)
{
    if (!x.n || !y.n)
        return x;
    uint64_t *out = arena_alloc(a, x.n * sizeof *out);
    size_t n = 0, j = 0;
    for (size_t i = 0; i < x.n; i++) {
        while (j < y.n && y.v[j] < x.v[i])
            j++;
        if (j < y.n && y.v[j] == x.v[i])
            continue;
        out[n++] = x.v[i];
    }
    return (postings_t){out, n};
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

postings_t postings_union(const postings_t *lists, size_t n, arena_t *a)
{
    size_t total = 0, nonempty = 0, last = 0;
    for (size_t i = 0; i < n; i++) {
        total += lists[i].n;
        if (lists[i].n) {
            nonempty++;
            last = i;
        }
    }
    if (nonempty == 0)
        return (postings_t){NULL, 0};
    if (nonempty == 1)
        return lists[last];
    uint64_t *out = arena_alloc(a, total * sizeof *out);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (lists[i].n)
            memcpy(out + k, lists[i].v, lists[i].n * sizeof *out);
        k += lists[i].n;
    }
    if (nonempty == 2) {
        /* Common case: merge instead of sorting. */
        postings_t x = {NULL, 0}, y = {NULL, 0};
        for (size_t i = 0; i < n; i++)
            if (lists[i].n) {
                if (!x.n)
                    x = lists[i];
                else
                    y = lists[i];
            }
        size_t i = 0, j = 0;
        k = 0;
        while (i < x.n || j < y.n) {
            uint64_t v;
            if (j >= y.n || (i < x.n && x.v[i] < y.v[j]))
                v = x.v[i++];
            else if (i >= x.n || y.v[j] < x.v[i])
                v = y.v[j++];
            else {
                v = x.v[i++];
                j++;
            }
            out[k++] = v;
        }
        return (postings_t){out, k};
    }
    qsort(out, total, sizeof *out, cmp_u64);
    size_t m = 0;
    for (size_t i = 0; i < total; i++)
        if (m == 0 || out[m - 1] != out[i])
            out[m++] = out[i];
    return (postings_t){out, m};
}

/* ---- selection ---- */

typedef struct collect {
    const index_reader_t *r;
    const matcher_t *m;
    str_t name;
    arena_t *a;
    postings_t *lists;
    size_t n, cap;
} collect_t;

static void collect_value(void *arg, str_t value)
{
    collect_t *c = arg;
    if (!value.len || !matcher_matches(c->m, value))
        return;
    postings_t p;
    c->r->postings(c->r->ctx, c->name, value, c->a, &p);
    if (!p.n)
        return;
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 16;
        postings_t *nl = arena_alloc(c->a, ncap * sizeof *nl);
        if (c->n)
            memcpy(nl, c->lists, c->n * sizeof *nl);
        c->lists = nl;
        c->cap = ncap;
    }
    c->lists[c->n++] = p;
}

/* Series whose value for m->name is non-empty and accepted by m. */
static postings_t postings_for(const index_reader_t *r, const matcher_t *m, arena_t *a)
{
    postings_t p = {NULL, 0};
    if (m->type == MATCH_EQ) {
        if (m->value.len)
            r->postings(r->ctx, m->name, m->value, a, &p);
        return p;
    }
    collect_t c = {r, m, m->name, a, NULL, 0, 0};
    r->values(r->ctx, m->name, collect_value, &c);
    return postings_union(c.lists, c.n, a);
}

static bool is_match_all(const matcher_t *m)
{
    return m->type == MATCH_RE && m->value.len == 2 && m->value.ptr[0] == '.' &&
           m->value.ptr[1] == '*';
}

void index_select(const index_reader_t *r, const matcher_t *ms, size_t n, arena_t *a,
                  postings_t *out)
{
    postings_t *its = arena_alloc(a, (n + 1) * sizeof *its);
    postings_t *nots = arena_alloc(a, (n + 1) * sizeof *nots);
    size_t n_its = 0, n_nots = 0;
    for (size_t i = 0; i < n; i++) {
        const matcher_t *m = &ms[i];
        if (!matcher_matches_empty(m)) {
            its[n_its++] = postings_for(r, m, a);
            if (!its[n_its - 1].n) {
                *out = (postings_t){NULL, 0};
                return;
            }
            continue;
        }
        if (is_match_all(m))
            continue;
        bool must_be_set = false;
        for (size_t j = 0; j < n; j++)
            if (j != i && str_eq(ms[j].name, m->name) && !matcher_matches_empty(&ms[j]))
                must_be_set = true;
        if (must_be_set) {
            its[n_its++] = postings_for(r, m, a);
            continue;
        }
        /* The inverse matcher selects the series m rejects. */
        matcher_t inv = *m;
        switch (m->type) {
        case MATCH_EQ:
            inv.type = MATCH_NEQ;
            break;
        case MATCH_NEQ:
            inv.type = MATCH_EQ;
            break;
        case MATCH_RE:
            inv.type = MATCH_NRE;
            break;
        case MATCH_NRE:
            inv.type = MATCH_RE;
            break;
        }
        nots[n_nots++] = postings_for(r, &inv, a);
    }
    postings_t res;
    if (n_its == 0) {
        r->all(r->ctx, a, &res);
    } else {
        /* Intersect shortest first. */
        size_t best = 0;
        for (size_t i = 1; i < n_its; i++)
            if (its[i].n < its[best].n)
                best = i;
        res = its[best];
        for (size_t i = 0; i < n_its && res.n; i++)
            if (i != best)
                res = postings_intersect(res, its[i], a);
    }
    for (size_t i = 0; i < n_nots && res.n; i++)
        res = postings_subtract(res, nots[i], a);
    *out = res;
}

/* ---- in-memory index ---- */

void index_mem_init(index_mem_t *x)
{
    memset(x, 0, sizeof *x);
    arena_init(&x->strs, 16384);
    u64map_init(&x->pairs_by_hash);
    u64map_init(&x->names_by_hash);
}

void index_mem_deinit(index_mem_t *x)
{
    for (size_t i = 0; i < x->n_pairs; i++)
        free(x->pairs[i].ids);
    for (size_t i = 0; i < x->n_names; i++)
        free(x->names[i].pairs);
    free(x->pairs);
    free(x->names);
    free(x->all);
    u64map_deinit(&x->pairs_by_hash);
    u64map_deinit(&x->names_by_hash);
    arena_deinit(&x->strs);
    memset(x, 0, sizeof *x);
}

static uint64_t pair_hash(str_t name, str_t value)
{
    uint64_t h = hash64(value.ptr, value.len, hash64(name.ptr, name.len, 0) ^ 0xff);
    return h ? h : 1;
}

static uint64_t name_hash(str_t name)
{
    uint64_t h = hash64(name.ptr, name.len, 0x51);
    return h ? h : 1;
}

static index_name_t *find_name(const index_mem_t *x, str_t name)
{
    uint64_t *slot = u64map_get(&x->names_by_hash, name_hash(name));
    for (uint32_t i = slot ? (uint32_t)*slot : 0; i; i = x->names[i - 1].next)
        if (str_eq(x->names[i - 1].name, name))
            return &x->names[i - 1];
    return NULL;
}

static index_pair_t *find_pair(const index_mem_t *x, str_t name, str_t value)
{
    uint64_t *slot = u64map_get(&x->pairs_by_hash, pair_hash(name, value));
    for (uint32_t i = slot ? (uint32_t)*slot : 0; i; i = x->pairs[i - 1].next) {
        index_pair_t *p = &x->pairs[i - 1];
        if (str_eq(p->value, value) && str_eq(p->name, name))
            return p;
    }
    return NULL;
}

static uint32_t get_name(index_mem_t *x, str_t name)
{
    uint64_t h = name_hash(name);
    uint64_t *slot = u64map_get(&x->names_by_hash, h);
    uint32_t tail = 0;
    for (uint32_t i = slot ? (uint32_t)*slot : 0; i; i = x->names[i - 1].next) {
        if (str_eq(x->names[i - 1].name, name))
            return i - 1;
        tail = i;
    }
    if (x->n_names == x->names_cap) {
        x->names_cap = x->names_cap ? x->names_cap * 2 : 32;
        x->names = xrealloc(x->names, x->names_cap * sizeof *x->names);
    }
    uint32_t idx = (uint32_t)x->n_names++;
    x->names[idx] = (index_name_t){arena_str(&x->strs, name), NULL, 0, 0, 0};
    x->bytes += sizeof(index_name_t) + name.len + 16;
    if (tail)
        x->names[tail - 1].next = idx + 1;
    else
        u64map_put(&x->names_by_hash, h, idx + 1);
    return idx;
}

static index_pair_t *get_pair(index_mem_t *x, str_t name, str_t value)
{
    uint64_t h = pair_hash(name, value);
    uint64_t *slot = u64map_get(&x->pairs_by_hash, h);
    uint32_t tail = 0;
    for (uint32_t i = slot ? (uint32_t)*slot : 0; i; i = x->pairs[i - 1].next) {
        index_pair_t *p = &x->pairs[i - 1];
        if (str_eq(p->value, value) && str_eq(p->name, name))
            return p;
        tail = i;
    }
    uint32_t ni = get_name(x, name);
    if (x->n_pairs == x->pairs_cap) {
        x->pairs_cap = x->pairs_cap ? x->pairs_cap * 2 : 64;
        x->pairs = xrealloc(x->pairs, x->pairs_cap * sizeof *x->pairs);
    }
    uint32_t idx = (uint32_t)x->n_pairs++;
    index_name_t *nm = &x->names[ni];
    x->pairs[idx] = (index_pair_t){nm->name, arena_str(&x->strs, value), NULL, 0, 0, 0};
    x->bytes += sizeof(index_pair_t) + value.len + 16;
    if (tail)
        x->pairs[tail - 1].next = idx + 1;
    else
        u64map_put(&x->pairs_by_hash, h, idx + 1);
    if (nm->n == nm->cap) {
        nm->cap = nm->cap ? nm->cap * 2 : 4;
        nm->pairs = xrealloc(nm->pairs, nm->cap * sizeof *nm->pairs);
    }
    nm->pairs[nm->n++] = idx;
    x->bytes += sizeof(uint32_t);
    return &x->pairs[idx];
}

void index_mem_add(index_mem_t *x, uint64_t id, const labels_t *ls)
{
    for (size_t i = 0; i < ls->n; i++) {
        if (!ls->v[i].value.len)
            continue;
        index_pair_t *p = get_pair(x, ls->v[i].name, ls->v[i].value);
        if (p->n == p->cap) {
            uint32_t ncap = p->cap ? p->cap * 2 : 2;
            p->ids = xrealloc(p->ids, ncap * sizeof *p->ids);
            x->bytes += (ncap - p->cap) * sizeof *p->ids;
            p->cap = ncap;
        }
        p->ids[p->n++] = id;
    }
    if (x->n_all == x->all_cap) {
        size_t ncap = x->all_cap ? x->all_cap * 2 : 64;
        x->all = xrealloc(x->all, ncap * sizeof *x->all);
        x->bytes += (ncap - x->all_cap) * sizeof *x->all;
        x->all_cap = ncap;
    }
    x->all[x->n_all++] = id;
}

static void mem_postings(void *ctx, str_t name, str_t value, arena_t *a, postings_t *out)
{
    (void)a;
    index_pair_t *p = find_pair(ctx, name, value);
    *out = p ? (postings_t){p->ids, p->n} : (postings_t){NULL, 0};
}

static void mem_values(void *ctx, str_t name, index_str_cb cb, void *arg)
{
    index_mem_values(ctx, name, cb, arg);
}

static void mem_all(void *ctx, arena_t *a, postings_t *out)
{
    (void)a;
    index_mem_t *x = ctx;
    *out = (postings_t){x->all, x->n_all};
}

index_reader_t index_mem_reader(index_mem_t *x)
{
    return (index_reader_t){x, mem_postings, mem_values, mem_all};
}

void index_mem_names(const index_mem_t *x, index_str_cb cb, void *arg)
{
    for (size_t i = 0; i < x->n_names; i++)
        if (x->names[i].n)
            cb(arg, x->names[i].name);
}

void index_mem_values(const index_mem_t *x, str_t name, index_str_cb cb, void *arg)
{
    index_name_t *nm = find_name(x, name);
    if (!nm)
        return;
    for (uint32_t i = 0; i < nm->n; i++)
        cb(arg, x->pairs[nm->pairs[i]].value);
}

size_t index_mem_bytes(const index_mem_t *x)
{
    return x->bytes + x->strs.total_bytes + (x->pairs_by_hash.cap + x->names_by_hash.cap) * 16;
}
