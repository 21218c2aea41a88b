/* test_head.c - the head: series table, append rules, out-of-order buffer, postings selection. */
#include <stdlib.h>

#include "store/head.h"
#include "store/index.h"
#include "test.h"

#define L(n, v)                                                                                    \
    {                                                                                              \
        STR(n), STR(v)                                                                             \
    }

static head_series_t *mk(head_t *h, label_t *v, size_t n)
{
    labels_t ls = {v, n};
    labels_sort(&ls);
    uint64_t hash = labels_hash(&ls);
    head_series_t *s = head_get(h, &ls, hash);
    return s ? s : head_create(h, &ls, hash, 0);
}

TEST(series_table)
{
    head_t *h = head_new(600000);
    label_t a[] = {L("__name__", "up"), L("job", "a")};
    label_t b[] = {L("job", "b"), L("__name__", "up")};
    head_series_t *sa = mk(h, a, 2), *sb = mk(h, b, 2);
    CHECK(sa != sb);
    CHECK(mk(h, a, 2) == sa);
    CHECK_EQ_U64(sa->id, 1);
    CHECK_EQ_U64(sb->id, 2);
    CHECK(head_by_id(h, 2) == sb);
    CHECK(head_by_id(h, 3) == NULL);
    CHECK_EQ_STRN(sb->ls.v[0].name, "__name__");
    /* A forced hash collision still separates the series. */
    label_t c[] = {L("__name__", "up"), L("job", "c")};
    labels_t lc = {c, 2};
    head_series_t *sc = head_create(h, &lc, sa->hash, 0);
    CHECK(head_get(h, &lc, sa->hash) == sc);
    labels_t la = {a, 2};
    CHECK(head_get(h, &la, sa->hash) == sa);
    /* Replay may hand out explicit ids; new ones continue above. */
    label_t d[] = {L("__name__", "x")};
    labels_t ld = {d, 1};
    head_series_t *sd = head_create(h, &ld, labels_hash(&ld), 100);
    CHECK_EQ_U64(sd->id, 100);
    label_t e[] = {L("__name__", "y")};
    CHECK_EQ_U64(mk(h, e, 1)->id, 101);
    head_free(h);
}

static double stale(void)
{
    uint64_t b = 0x7ff0000000000002ULL;
    double d;
    memcpy(&d, &b, 8);
    return d;
}

typedef struct samples {
    int64_t t[4096];
    double v[4096];
    size_t n;
} samples_t;

static void grab(void *arg, int64_t t, double v)
{
    samples_t *s = arg;
    if (s->n < 4096) {
        s->t[s->n] = t;
        s->v[s->n++] = v;
    }
}

TEST(append_rules)
{
    head_t *h = head_new(600000);
    label_t a[] = {L("__name__", "up")};
    head_series_t *s = mk(h, a, 1);
    CHECK_EQ_INT(head_append(h, s, 1000000, 1), HEAD_OK);
    CHECK_EQ_INT(head_append(h, s, 1000000, 1), HEAD_DUP);
    CHECK_EQ_INT(head_append(h, s, 1000000, 2), HEAD_ERR_DUPLICATE);
    CHECK_EQ_INT(head_append(h, s, 1015000, stale()), HEAD_OK);
    CHECK_EQ_INT(head_append(h, s, 1015000, stale()), HEAD_DUP);
    /* Out of order within 10m: kept; beyond: rejected. */
    CHECK_EQ_INT(head_append(h, s, 1005000, 5), HEAD_OK);
    CHECK_EQ_INT(head_append(h, s, 1005000, 5), HEAD_DUP);
    CHECK_EQ_INT(head_append(h, s, 1005000, 6), HEAD_ERR_DUPLICATE);
    CHECK_EQ_INT(head_append(h, s, 1015000 - 600000, 7), HEAD_OK);
    CHECK_EQ_INT(head_append(h, s, 1015000 - 600001, 7), HEAD_ERR_OUT_OF_ORDER);
    /* Out-of-order sample equal to an in-order one. */
    CHECK_EQ_INT(head_append(h, s, 1030000, 9), HEAD_OK);
    CHECK_EQ_INT(head_append(h, s, 1015000, 3), HEAD_ERR_DUPLICATE);
    CHECK_EQ_INT(head_append(h, s, 1000000, 1), HEAD_DUP);
    CHECK_EQ_U64(h->n_samples, 5);
    samples_t *got = calloc(1, sizeof *got);
    head_series_samples(s, grab, got);
    int64_t want_t[] = {415000, 1000000, 1005000, 1015000, 1030000};
    REQUIRE(got->n == 5);
    for (size_t i = 0; i < 5; i++)
        CHECK_EQ_INT(got->t[i], want_t[i]);
    uint64_t b;
    memcpy(&b, &got->v[3], 8);
    CHECK_EQ_U64(b, 0x7ff0000000000002ULL);
    free(got);
    /* Old data for a new series is fine (any age in order). */
    label_t c[] = {L("__name__", "old")};
    head_series_t *o = mk(h, c, 1);
    CHECK_EQ_INT(head_append(h, o, 5, 1), HEAD_OK);
    head_free(h);
}

TEST(no_ooo_window)
{
    head_t *h = head_new(0);
    label_t a[] = {L("__name__", "up")};
    head_series_t *s = mk(h, a, 1);
    CHECK_EQ_INT(head_append(h, s, 100, 1), HEAD_OK);
    CHECK_EQ_INT(head_append(h, s, 99, 1), HEAD_ERR_OUT_OF_ORDER);
    head_free(h);
}

TEST(chunks_cut_and_snapshot)
{
    head_t *h = head_new(600000);
    label_t a[] = {L("__name__", "up")};
    head_series_t *s = mk(h, a, 1);
    for (int i = 0; i < 1000; i++)
        CHECK_EQ_INT(head_append(h, s, i * 15000LL, i), HEAD_OK);
    CHECK_EQ_INT(s->n_chunks, 1000 / HEAD_CHUNK_SAMPLES);
    /* A gap over 2h closes the chunk early. */
    head_append(h, s, 1000 * 15000LL + HEAD_CHUNK_RANGE_MS, 0);
    CHECK_EQ_INT(s->n_chunks, 1000 / HEAD_CHUNK_SAMPLES + 1);
    arena_t a2;
    arena_init(&a2, 0);
    head_snap_t snap;
    head_series_snapshot(s, 500 * 15000, 520 * 15000, &a2, &snap);
    CHECK(snap.n_chunks >= 1 && snap.n_chunks <= 2);
    CHECK(snap.chunks[0].mint <= 500 * 15000);
    samples_t *got = calloc(1, sizeof *got);
    head_series_samples(s, grab, got);
    CHECK_EQ_INT(got->n, 1001);
    for (size_t i = 0; i < 1000; i++)
        CHECK_EQ_INT(got->t[i], (int64_t)i * 15000);
    free(got);
    arena_deinit(&a2);
    head_free(h);
}

static int sel(head_t *h, const char *q, uint64_t *ids)
{
    arena_t a;
    arena_init(&a, 0);
    matcher_t *ms;
    size_t n;
    err_t err;
    if (matchers_parse(str_cstr(q), &a, &ms, &n, &err) != 0) {
        printf("parse %s: %s\n", q, err.msg);
        arena_deinit(&a);
        return -1;
    }
    head_series_t **v;
    size_t nv;
    head_select(h, ms, n, INT64_MIN, INT64_MAX, &a, &v, &nv);
    for (size_t i = 0; i < nv; i++)
        ids[i] = v[i]->id;
    matchers_deinit(ms, n);
    arena_deinit(&a);
    return (int)nv;
}

TEST(postings_selection)
{
    head_t *h = head_new(600000);
    label_t s1[] = {L("__name__", "up"), L("job", "a"), L("env", "prod")};
    label_t s2[] = {L("__name__", "up"), L("job", "b")};
    label_t s3[] = {L("__name__", "up"), L("job", "c"), L("env", "dev")};
    label_t s4[] = {L("__name__", "down"), L("job", "a")};
    label_t *all[] = {s1, s2, s3, s4};
    size_t ns[] = {3, 2, 3, 2};
    for (int i = 0; i < 4; i++)
        head_append(h, mk(h, all[i], ns[i]), 1, 1);
    uint64_t ids[8];
    CHECK_EQ_INT(sel(h, "up", ids), 3);
    CHECK_EQ_INT(sel(h, "up{job=\"a\"}", ids), 1);
    CHECK_EQ_U64(ids[0], 1);
    CHECK_EQ_INT(sel(h, "up{env=\"\"}", ids), 1); /* lacks env */
    CHECK_EQ_U64(ids[0], 2);
    CHECK_EQ_INT(sel(h, "up{env!=\"\"}", ids), 2);
    CHECK_EQ_INT(sel(h, "up{env!=\"prod\"}", ids), 2); /* b (no env) and c */
    CHECK_EQ_U64(ids[0], 2);
    CHECK_EQ_U64(ids[1], 3);
    CHECK_EQ_INT(sel(h, "{job=~\"a|b\"}", ids), 3);
    CHECK_EQ_INT(sel(h, "{__name__=~\".+\", job!~\"a|b\"}", ids), 1);
    CHECK_EQ_INT(sel(h, "up{env=~\"prod|\"}", ids), 2); /* prod or missing */
    CHECK_EQ_INT(sel(h, "up{env=~\"prod|\", env!=\"\"}", ids), 1);
    CHECK_EQ_INT(sel(h, "up{env!~\"prod|\"}", ids), 1); /* dev only */
    CHECK_EQ_INT(sel(h, "{__name__=~\".+\", job=~\".*\"}", ids), 4);
    CHECK_EQ_INT(sel(h, "{__name__=~\"u.\"}", ids), 3);
    CHECK_EQ_INT(sel(h, "nothing", ids), 0);
    CHECK_EQ_INT(sel(h, "up{job=\"zz\"}", ids), 0);
    head_free(h);
}

TEST(postings_ops)
{
    arena_t a;
    arena_init(&a, 0);
    uint64_t x[] = {1, 3, 5, 7, 9, 11, 200, 300}, y[] = {2, 3, 4, 9, 300, 400};
    postings_t px = {x, 8}, py = {y, 6};
    postings_t r = postings_intersect(px, py, &a);
    REQUIRE(r.n == 3);
    CHECK_EQ_U64(r.v[0], 3);
    CHECK_EQ_U64(r.v[1], 9);
    CHECK_EQ_U64(r.v[2], 300);
    r = postings_subtract(px, py, &a);
    CHECK_EQ_INT(r.n, 5);
    postings_t lists[] = {px, py, {NULL, 0}, {y, 2}};
    r = postings_union(lists, 4, &a);
    CHECK_EQ_INT(r.n, 11);
    for (size_t i = 1; i < r.n; i++)
        CHECK(r.v[i - 1] < r.v[i]);
    r = postings_union(lists, 2, &a);
    CHECK_EQ_INT(r.n, 11);
    /* Gallop over a long list. */
    uint64_t *big = arena_alloc(&a, 100000 * sizeof *big);
    for (int i = 0; i < 100000; i++)
        big[i] = (uint64_t)i * 3;
    uint64_t few[] = {0, 2999, 3000, 299997};
    r = postings_intersect((postings_t){few, 4}, (postings_t){big, 100000}, &a);
    CHECK_EQ_INT(r.n, 3);
    arena_deinit(&a);
}

TEST(truncate_keeps_state_and_gcs_idle)
{
    head_t *h = head_new(600000);
    label_t a[] = {L("__name__", "a")}, b[] = {L("__name__", "b")};
    head_series_t *sa = mk(h, a, 1), *sb = mk(h, b, 1);
    head_append(h, sa, 1000, 1);
    head_append(h, sb, 5000000, 2);
    head_truncate(h, 2000);
    CHECK_EQ_U64(h->n_samples, 0);
    CHECK_EQ_INT(h->n_series, 1);
    CHECK(head_by_id(h, 1) == NULL);
    CHECK(head_by_id(h, 2) == sb);
    CHECK_EQ_INT(sb->max_t, 5000000);
    CHECK_EQ_INT(head_append(h, sb, 5000000, 3), HEAD_ERR_DUPLICATE);
    CHECK_EQ_INT(head_append(h, sb, 5000000 - 1000, 3), HEAD_OK);
    uint64_t ids[4];
    CHECK_EQ_INT(sel(h, "{__name__=~\"a|b\"}", ids), 1);
    labels_t la = {a, 1};
    CHECK(head_get(h, &la, labels_hash(&la)) == NULL);
    head_free(h);
}

static int meta_n;
static void meta_cb(void *arg, str_t metric, db_mtype_t type, str_t help, str_t unit)
{
    (void)arg;
    (void)metric;
    (void)unit;
    meta_n++;
    CHECK_EQ_INT(type, DB_MTYPE_COUNTER);
    CHECK_EQ_STRN(help, "Requests.");
}

TEST(metadata)
{
    head_t *h = head_new(0);
    CHECK(head_set_meta(h, STR("req_total"), DB_MTYPE_COUNTER, STR("Requests."), STR("")));
    CHECK(!head_set_meta(h, STR("req_total"), DB_MTYPE_COUNTER, STR("Requests."), STR("")));
    CHECK(head_set_meta(h, STR("x"), DB_MTYPE_COUNTER, STR("Requests."), STR("s")));
    meta_n = 0;
    head_meta_each(h, STR(""), meta_cb, NULL);
    CHECK_EQ_INT(meta_n, 2);
    meta_n = 0;
    head_meta_each(h, STR("x"), meta_cb, NULL);
    CHECK_EQ_INT(meta_n, 1);
    head_free(h);
}
