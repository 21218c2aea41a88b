/* test_spans.c - store/spans: head, span files (round trip, merge, corruption), WAL codec. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/varint.h"
#include "store/spans.h"
#include "test.h"

/* ---- building realistic spans ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void) { return test_xorshift(&rng_state); }

static void pb_tag(buf_t *b, unsigned field, unsigned wt) { buf_put_uvarint(b, field << 3 | wt); }
static void pb_bytes(buf_t *b, unsigned field, const void *p, size_t n)
{
    pb_tag(b, field, 2);
    buf_put_uvarint(b, n);
    buf_append(b, p, n);
}
static void pb_fixed64(buf_t *b, unsigned field, uint64_t v)
{
    pb_tag(b, field, 1);
    buf_put_u64le(b, v);
}
static void pb_attr_str(buf_t *b, unsigned field, const char *k, const char *v)
{
    buf_t kv = BUF_INIT, av = BUF_INIT;
    pb_bytes(&av, 1, v, strlen(v));
    pb_bytes(&kv, 1, k, strlen(k));
    pb_bytes(&kv, 2, av.pos, buf_len(&av));
    pb_bytes(b, field, kv.pos, buf_len(&kv));
    buf_deinit(&kv);
    buf_deinit(&av);
}
static void pb_attr_int(buf_t *b, unsigned field, const char *k, int64_t v)
{
    buf_t kv = BUF_INIT, av = BUF_INIT;
    pb_tag(&av, 3, 0);
    buf_put_uvarint(&av, (uint64_t)v);
    pb_bytes(&kv, 1, k, strlen(k));
    pb_bytes(&kv, 2, av.pos, buf_len(&av));
    pb_bytes(b, field, kv.pos, buf_len(&kv));
    buf_deinit(&kv);
    buf_deinit(&av);
}

typedef enum { ORDER_GO, ORDER_JS, ORDER_ODD } pb_order_t;

/* Encodes s's fields as an OTLP Span the way SDK encoders do (Go: field-number order; JS: flags
 * right after parent_span_id; ODD: a hand-written order with a non-canonical name). */
static void encode_span_pb(buf_t *b, const db_span_t *s, pb_order_t order, int attrs)
{
    pb_bytes(b, 1, s->trace_id, 16);
    pb_bytes(b, 2, s->span_id, 8);
    if (order == ORDER_ODD) {
        pb_fixed64(b, 8, (uint64_t)s->end_ns);
        pb_bytes(b, 5, "other-name", 10);
    }
    static const uint8_t zero[8];
    if (memcmp(s->parent_span_id, zero, 8) != 0)
        pb_bytes(b, 4, s->parent_span_id, 8);
    if (order == ORDER_JS) {
        pb_tag(b, 16, 5);
        buf_put_u32le(b, 0x101);
    }
    if (order != ORDER_ODD)
        pb_bytes(b, 5, s->name.ptr, s->name.len);
    if (s->kind) {
        pb_tag(b, 6, 0);
        buf_put_uvarint(b, (uint64_t)(int64_t)s->kind);
    }
    pb_fixed64(b, 7, (uint64_t)s->start_ns);
    if (order != ORDER_ODD)
        pb_fixed64(b, 8, (uint64_t)s->end_ns);
    char tmp[64];
    for (int i = 0; i < attrs; i++) {
        switch (i % 6) {
        case 0:
            pb_attr_str(b, 9, "gen_ai.request.model",
                        (rnd() & 1) ? "claude-sonnet-4" : "claude-haiku-4");
            break;
        case 1:
            pb_attr_int(b, 9, "gen_ai.usage.input_tokens", (int64_t)(rnd() % 20000));
            break;
        case 2:
            pb_attr_int(b, 9, "gen_ai.usage.output_tokens", (int64_t)(rnd() % 4000));
            break;
        case 3:
            snprintf(tmp, sizeof tmp, "tests/skills/case_%03u.yaml", (unsigned)(rnd() % 200));
            pb_attr_str(b, 9, "test.case", tmp);
            break;
        case 4:
            pb_attr_str(b, 9, "test.result", (rnd() % 10) ? "passed" : "failed");
            break;
        case 5:
            snprintf(tmp, sizeof tmp, "%016llx", (unsigned long long)rnd());
            pb_attr_str(b, 9, "vcs.commit.sha", tmp);
            break;
        }
    }
    if (s->status_code) {
        uint8_t st[2] = {0x18, (uint8_t)s->status_code};
        pb_bytes(b, 15, st, 2);
    }
}

/* A pool of spans whose strings live in an arena. */
typedef struct pool {
    arena_t a;
    db_span_t *v;
    size_t n, cap;
} pool_t;

/* When set, trace and span ids are random like real SDK ids (for the size report). */
static bool random_ids;

static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static const char *names[] = {"skill.test", "llm.call", "tool.exec", "file.read", "grade"};
static const char *services[] = {"skill-runner", "claude-code", "grader"};

static str_t pool_str(pool_t *p, const void *s, size_t n)
{
    char *c = arena_alloc(&p->a, n + 1);
    memcpy(c, s, n);
    return (str_t){c, n};
}

/* Adds a span of trace t (1-based id), index k within it, parent = k/2 (k=0 is the root). */
static db_span_t *pool_add(pool_t *p, uint32_t t, uint32_t k, int64_t start, pb_order_t order,
                           int attrs)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 256;
        p->v = realloc(p->v, p->cap * sizeof *p->v);
    }
    db_span_t *s = &p->v[p->n++];
    memset(s, 0, sizeof *s);
    for (int i = 0; i < 4; i++)
        store_u32le(s->trace_id + 4 * i, t * 2654435761u + (uint32_t)i * 40503u);
    store_u32le(s->span_id, t);
    store_u32le(s->span_id + 4, k + 1);
    if (k) {
        store_u32le(s->parent_span_id, t);
        store_u32le(s->parent_span_id + 4, k / 2 + 1);
    }
    if (random_ids) {
        store_u64le(s->trace_id, mix(t));
        store_u64le(s->trace_id + 8, mix(t + 0x1234567));
        store_u64le(s->span_id, mix((uint64_t)t << 32 | (k + 1)));
        if (k)
            store_u64le(s->parent_span_id, mix((uint64_t)t << 32 | (k / 2 + 1)));
    }
    s->start_ns = start;
    s->end_ns = start + 1000000 + (int64_t)(rnd() % 5000000000ULL);
    const char *nm = names[k == 0 ? 0 : 1 + k % 4];
    s->name = pool_str(p, nm, strlen(nm));
    const char *sv = services[t % 3];
    s->service_name = pool_str(p, sv, strlen(sv));
    s->kind = k == 0 ? 2 : (int)(k % 3 + 1);
    s->status_code = (k % 7 == 3) ? 2 : 0;
    char res[128];
    int rn = snprintf(res, sizeof res, "\x0a\x1c\x0a\x0cservice.name\x12\x0c\x0a\x0a%s-%u", "svc",
                      t % 3);
    s->resource_pb = pool_str(p, res, (size_t)rn);
    s->scope_pb = pool_str(p,
                           "\x0a\x08my.scope\x12\x05"
                           "1.2.3",
                           17);
    buf_t b = BUF_INIT;
    encode_span_pb(&b, s, order, attrs);
    s->span_pb = pool_str(p, b.pos, buf_len(&b));
    buf_deinit(&b);
    return s;
}

static void pool_free(pool_t *p)
{
    arena_deinit(&p->a);
    free(p->v);
}

static bool span_eq(const db_span_t *a, const db_span_t *b)
{
    return memcmp(a->trace_id, b->trace_id, 16) == 0 && memcmp(a->span_id, b->span_id, 8) == 0 &&
           memcmp(a->parent_span_id, b->parent_span_id, 8) == 0 && a->start_ns == b->start_ns &&
           a->end_ns == b->end_ns && str_eq(a->name, b->name) &&
           str_eq(a->service_name, b->service_name) && a->kind == b->kind &&
           a->status_code == b->status_code && str_eq(a->resource_pb, b->resource_pb) &&
           str_eq(a->scope_pb, b->scope_pb) && str_eq(a->span_pb, b->span_pb);
}

/* Collects delivered spans (deep copies) for comparison. */
typedef struct got {
    pool_t p;
    size_t stop_after;
} got_t;

static void got_cb(void *arg, const db_span_t *s)
{
    got_t *g = arg;
    pool_t *p = &g->p;
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 256;
        p->v = realloc(p->v, p->cap * sizeof *p->v);
    }
    db_span_t *d = &p->v[p->n++];
    *d = *s;
    d->name = pool_str(p, s->name.ptr, s->name.len);
    d->service_name = pool_str(p, s->service_name.ptr, s->service_name.len);
    d->resource_pb = pool_str(p, s->resource_pb.ptr, s->resource_pb.len);
    d->scope_pb = pool_str(p, s->scope_pb.ptr, s->scope_pb.len);
    d->span_pb = pool_str(p, s->span_pb.ptr, s->span_pb.len);
}

static bool got_scan_cb(void *arg, const db_span_t *s)
{
    got_t *g = arg;
    got_cb(arg, s);
    return !(g->stop_after && g->p.n >= g->stop_after);
}

static void got_init(got_t *g)
{
    memset(g, 0, sizeof *g);
    arena_init(&g->p.a, 0);
}

/* Expected spans of trace t from pool, in (start, insertion) order. */
static size_t expect_trace(const pool_t *p, const uint8_t tid[16], const db_span_t **out)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++)
        if (memcmp(p->v[i].trace_id, tid, 16) == 0)
            out[n++] = &p->v[i];
    for (size_t i = 1; i < n; i++) { /* insertion sort, stable */
        const db_span_t *x = out[i];
        size_t j = i;
        while (j > 0 && out[j - 1]->start_ns > x->start_ns) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = x;
    }
    return n;
}

static char *tmp_path(const char *name)
{
    static char path[4][512];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, 512, "%s/%s", test_tmpdir(), name);
    return p;
}

/* ---- head ---- */

TEST(head_append_trace_scan)
{
    spans_head_t *h = spans_head_new();
    pool_t p = {0};
    arena_init(&p.a, 0);
    CHECK_EQ_INT(spans_head_min_ns(h), INT64_MAX);
    CHECK_EQ_INT(spans_head_max_ns(h), INT64_MIN);
    /* three traces, interleaved, spans arriving out of start order */
    for (uint32_t k = 0; k < 10; k++)
        for (uint32_t t = 1; t <= 3; t++)
            pool_add(&p, t, k, 1000000000LL * t + (int64_t)((k * 7919) % 10) * 1000, ORDER_GO, 4);
    for (size_t i = 0; i < p.n; i++)
        spans_head_append(h, &p.v[i]);
    CHECK_EQ_U64(spans_head_count(h), 30);
    CHECK_EQ_U64(spans_head_traces(h), 3);
    CHECK(spans_head_bytes(h) > 0);
    CHECK_EQ_INT(spans_head_min_ns(h), 1000000000LL);
    CHECK_EQ_INT(spans_head_max_ns(h), 3000000000LL + 9000);
    for (uint32_t t = 1; t <= 3; t++) {
        const db_span_t *want[64];
        size_t nw = expect_trace(&p, p.v[t - 1].trace_id, want);
        got_t g;
        got_init(&g);
        size_t n = spans_head_trace(h, p.v[t - 1].trace_id, 0, 0, got_cb, &g);
        CHECK_EQ_U64(n, nw);
        REQUIRE(g.p.n == nw);
        for (size_t i = 0; i < nw; i++)
            CHECK(span_eq(&g.p.v[i], want[i]));
        for (size_t i = 1; i < g.p.n; i++)
            CHECK(g.p.v[i - 1].start_ns <= g.p.v[i].start_ns);
        pool_free(&g.p);
    }
    /* time-filtered trace lookup and a missing trace */
    got_t g;
    got_init(&g);
    CHECK_EQ_U64(
        spans_head_trace(h, p.v[0].trace_id, 1000000000LL, 1000000000LL + 4000, got_cb, &g), 5);
    uint8_t none[16] = {1, 2, 3};
    CHECK_EQ_U64(spans_head_trace(h, none, 0, 0, got_cb, &g), 0);
    pool_free(&g.p);
    /* scan: range, then early stop */
    got_init(&g);
    CHECK(spans_head_scan(h, 2000000000LL, 2000000000LL + 9000, got_scan_cb, &g));
    CHECK_EQ_U64(g.p.n, 10);
    pool_free(&g.p);
    got_init(&g);
    g.stop_after = 7;
    CHECK(!spans_head_scan(h, 0, INT64_MAX, got_scan_cb, &g));
    CHECK_EQ_U64(g.p.n, 7);
    pool_free(&g.p);
    spans_head_reset(h);
    CHECK_EQ_U64(spans_head_count(h), 0);
    CHECK_EQ_U64(spans_head_traces(h), 0);
    got_init(&g);
    CHECK_EQ_U64(spans_head_trace(h, p.v[0].trace_id, 0, 0, got_cb, &g), 0);
    pool_free(&g.p);
    spans_head_append(h, &p.v[0]);
    CHECK_EQ_U64(spans_head_count(h), 1);
    spans_head_free(h);
    pool_free(&p);
}

/* ---- files ---- */

static void check_file_matches(spans_file_t *f, const pool_t *p, const uint8_t (*tids)[16],
                               size_t n_tids)
{
    const db_span_t **want = malloc(p->n * sizeof *want);
    for (size_t t = 0; t < n_tids; t++) {
        size_t nw = expect_trace(p, tids[t], want);
        got_t g;
        got_init(&g);
        size_t n = spans_file_trace(f, tids[t], 0, 0, got_cb, &g);
        CHECK_EQ_U64(n, nw);
        if (g.p.n == nw) {
            for (size_t i = 0; i < nw; i++)
                if (!span_eq(&g.p.v[i], want[i])) {
                    test_fail_at(__FILE__, __LINE__, "trace %zu span %zu differs", t, i);
                    break;
                }
        }
        pool_free(&g.p);
    }
    free(want);
}

TEST(file_round_trip_byte_exact)
{
    spans_head_t *h = spans_head_new();
    pool_t p = {0};
    arena_init(&p.a, 0);
    uint8_t tids[40][16];
    size_t n_tids = 0;
    for (uint32_t t = 1; t <= 40; t++) {
        pb_order_t order = t % 5 == 0 ? ORDER_JS : t % 7 == 0 ? ORDER_ODD : ORDER_GO;
        for (uint32_t k = 0; k < 1 + t % 9; k++) {
            db_span_t *s = pool_add(&p, t, k, 5000000000LL + t * 1000000LL + (k % 3) * 10, order,
                                    (int)(k % 5));
            if (t == 11 && k == 1) /* a span whose protobuf is not protobuf at all */
                s->span_pb = pool_str(&p, "\xff\xff\x01garbage", 10);
            if (t == 12 && k == 0)
                s->span_pb = STR_NULL;
            if (t == 13)
                s->kind = -3;
        }
        memcpy(tids[n_tids++], p.v[p.n - 1].trace_id, 16);
    }
    for (size_t i = p.n; i-- > 0;) /* reverse arrival */
        spans_head_append(h, &p.v[i]);
    const char *path = tmp_path("rt.spans");
    uint64_t bytes = 0;
    err_t err = {0};
    REQUIRE_OK(spans_head_write(h, path, &bytes, &err));
    struct stat st;
    REQUIRE(stat(path, &st) == 0);
    CHECK_EQ_U64(bytes, (uint64_t)st.st_size);
    spans_file_t *f = NULL;
    REQUIRE_OK(spans_file_open(path, &f, &err));
    CHECK_EQ_U64(spans_file_count(f), p.n);
    CHECK_OK(spans_file_verify(f, &err));
    /* the head wrote traces reversed within equal starts; expectation follows arrival order */
    pool_t rev = {0};
    arena_init(&rev.a, 0);
    for (size_t i = p.n; i-- > 0;) {
        if (rev.n == rev.cap) {
            rev.cap = rev.cap ? rev.cap * 2 : 256;
            rev.v = realloc(rev.v, rev.cap * sizeof *rev.v);
        }
        rev.v[rev.n++] = p.v[i];
    }
    check_file_matches(f, &rev, (const uint8_t(*)[16])tids, n_tids);
    uint8_t none[16] = {0xff};
    got_t g;
    got_init(&g);
    CHECK_EQ_U64(spans_file_trace(f, none, 0, 0, got_cb, &g), 0);
    CHECK(spans_file_scan(f, 0, INT64_MAX, got_scan_cb, &g));
    CHECK_EQ_U64(g.p.n, p.n);
    pool_free(&g.p);
    got_init(&g);
    CHECK(spans_file_scan(f, 5000000000LL + 10 * 1000000LL, 5000000000LL + 12 * 1000000LL - 1,
                          got_scan_cb, &g));
    CHECK_EQ_U64(g.p.n, (1 + 10 % 9) + (1 + 11 % 9)); /* traces 10 and 11 (starts +0..+20) */
    pool_free(&g.p);
    spans_file_close(f);
    free(rev.v);
    arena_deinit(&rev.a);
    spans_head_free(h);
    pool_free(&p);
}

TEST(file_empty_head)
{
    spans_head_t *h = spans_head_new();
    const char *path = tmp_path("empty.spans");
    err_t err = {0};
    REQUIRE_OK(spans_head_write(h, path, NULL, &err));
    spans_file_t *f = NULL;
    REQUIRE_OK(spans_file_open(path, &f, &err));
    CHECK_EQ_U64(spans_file_count(f), 0);
    CHECK_OK(spans_file_verify(f, &err));
    got_t g;
    got_init(&g);
    CHECK(spans_file_scan(f, 0, INT64_MAX, got_scan_cb, &g));
    CHECK_EQ_U64(g.p.n, 0);
    pool_free(&g.p);
    spans_file_close(f);
    spans_head_free(h);
}

/* Many pages, one trace spanning several of them; reports bytes per span. */
TEST(file_multi_page_and_size)
{
    spans_head_t *h = spans_head_new();
    pool_t p = {0};
    arena_init(&p.a, 0);
    uint8_t(*tids)[16] = malloc(2001 * 16);
    size_t n_tids = 0;
    uint64_t raw = 0;
    int64_t t0 = 1700000000000000000LL;
    random_ids = true;
    for (uint32_t t = 1; t <= 2000; t++) {
        uint32_t n = 4 + (uint32_t)(rnd() % 12);
        int64_t start = t0 + (int64_t)t * 2000000000LL;
        for (uint32_t k = 0; k < n; k++) {
            start += (int64_t)(rnd() % 50000000);
            pool_add(&p, t, k, start, ORDER_GO, 6);
        }
        memcpy(tids[n_tids++], p.v[p.n - 1].trace_id, 16);
    }
    for (uint32_t k = 0; k < 6000; k++) /* a large trace */
        pool_add(&p, 5000, k, t0 + (int64_t)k * 1000, ORDER_JS, 3);
    memcpy(tids[n_tids++], p.v[p.n - 1].trace_id, 16);
    random_ids = false;
    struct timespec a0, a1;
    clock_gettime(CLOCK_MONOTONIC, &a0);
    for (size_t i = 0; i < p.n; i++)
        spans_head_append(h, &p.v[i]);
    clock_gettime(CLOCK_MONOTONIC, &a1);
    for (size_t i = 0; i < p.n; i++)
        raw += p.v[i].span_pb.len + 3; /* + tag and length inside ScopeSpans */
    const char *path = tmp_path("big.spans");
    uint64_t bytes = 0;
    err_t err = {0};
    REQUIRE_OK(spans_head_write(h, path, &bytes, &err));
    spans_file_t *f = NULL;
    REQUIRE_OK(spans_file_open(path, &f, &err));
    CHECK_OK(spans_file_verify(f, &err));
    check_file_matches(f, &p, (const uint8_t(*)[16])tids, n_tids);
    double asecs = (double)(a1.tv_sec - a0.tv_sec) + (double)(a1.tv_nsec - a0.tv_nsec) / 1e9;
    if (getenv("SKILLSCOPE_REPORT"))
        printf("spans head: %.0f appends/s, %.1f B of head memory per span\n", (double)p.n / asecs,
               (double)spans_head_bytes(h) / (double)p.n);
    if (getenv("SKILLSCOPE_REPORT"))
        printf("spans: %zu spans, raw span protobuf %.1f B/span, file %.1f B/span (ratio %.3f)\n",
               p.n, (double)raw / (double)p.n, (double)bytes / (double)p.n,
               (double)bytes / (double)raw);
    CHECK(bytes * 3 < raw); /* at least 3x smaller than the protobufs alone */
    spans_file_close(f);
    free(tids);
    spans_head_free(h);
    pool_free(&p);
}

TEST(file_merge)
{
    const char *paths[3] = {tmp_path("m0.spans"), tmp_path("m1.spans"), tmp_path("m2.spans")};
    spans_file_t *in[3];
    err_t err = {0};
    uint8_t tids[30][16];
    for (int fi = 0; fi < 3; fi++) {
        spans_head_t *h = spans_head_new();
        pool_t p = {0};
        arena_init(&p.a, 0);
        /* traces 1..30; each file holds spans k = fi, fi+3, ... of every third-ish trace */
        for (uint32_t t = 1; t <= 30; t++) {
            if ((t + (uint32_t)fi) % 3 == 0)
                continue;
            for (uint32_t k = (uint32_t)fi; k < 9; k += 3)
                pool_add(&p, t, k, 100 + t * 1000 + k * 10, ORDER_GO, 2);
        }
        for (size_t i = 0; i < p.n; i++)
            spans_head_append(h, &p.v[i]);
        REQUIRE_OK(spans_head_write(h, paths[fi], NULL, &err));
        REQUIRE_OK(spans_file_open(paths[fi], &in[fi], &err));
        spans_head_free(h);
        pool_free(&p);
    }
    /* Build the expectation from what the inputs hold. */
    got_t want;
    got_init(&want);
    for (int fi = 0; fi < 3; fi++)
        spans_file_scan(in[fi], 0, INT64_MAX, got_scan_cb, &want);
    size_t n_tids = 0;
    for (uint32_t t = 1; t <= 30; t++) {
        for (size_t i = 0; i < want.p.n; i++) {
            uint32_t tt = load_u32le(want.p.v[i].span_id);
            if (tt == t) {
                memcpy(tids[n_tids++], want.p.v[i].trace_id, 16);
                break;
            }
        }
    }
    CHECK_EQ_U64(n_tids, 30);
    const char *out = tmp_path("merged.spans");
    uint64_t bytes = 0;
    REQUIRE_OK(spans_file_merge(in, 3, out, &bytes, &err));
    spans_file_t *m = NULL;
    REQUIRE_OK(spans_file_open(out, &m, &err));
    CHECK_OK(spans_file_verify(m, &err));
    CHECK_EQ_U64(spans_file_count(m),
                 spans_file_count(in[0]) + spans_file_count(in[1]) + spans_file_count(in[2]));
    check_file_matches(m, &want.p, (const uint8_t(*)[16])tids, n_tids);
    /* merging a file with itself drops the exact duplicates */
    spans_file_t *twice[2] = {m, m};
    const char *out2 = tmp_path("merged2.spans");
    REQUIRE_OK(spans_file_merge(twice, 2, out2, NULL, &err));
    spans_file_t *m2 = NULL;
    REQUIRE_OK(spans_file_open(out2, &m2, &err));
    CHECK_EQ_U64(spans_file_count(m2), spans_file_count(m));
    spans_file_close(m2);
    spans_file_close(m);
    for (int fi = 0; fi < 3; fi++)
        spans_file_close(in[fi]);
    pool_free(&want.p);
}

static uint8_t *read_all(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)len + 1);
    *n = fread(b, 1, (size_t)len, fp);
    fclose(fp);
    return b;
}

static void write_all(const char *path, const uint8_t *p, size_t n)
{
    FILE *fp = fopen(path, "wb");
    fwrite(p, 1, n, fp);
    fclose(fp);
}

/* Opens path and, if that works, verifies and scans it; returns the first error. */
static int open_and_check(const char *path)
{
    spans_file_t *f = NULL;
    err_t err = {0};
    int rc = spans_file_open(path, &f, &err);
    if (rc)
        return rc;
    rc = spans_file_verify(f, &err);
    if (rc == 0) {
        got_t g;
        got_init(&g);
        spans_file_scan(f, INT64_MIN, INT64_MAX, got_scan_cb, &g);
        pool_free(&g.p);
    }
    spans_file_close(f);
    return rc;
}

TEST(file_corruption_detected)
{
    spans_head_t *h = spans_head_new();
    pool_t p = {0};
    arena_init(&p.a, 0);
    for (uint32_t t = 1; t <= 12; t++)
        for (uint32_t k = 0; k < 5; k++)
            pool_add(&p, t, k, 1000 * t + k, ORDER_GO, 3);
    for (size_t i = 0; i < p.n; i++)
        spans_head_append(h, &p.v[i]);
    const char *path = tmp_path("c.spans"), *bad = tmp_path("c-bad.spans");
    err_t err = {0};
    REQUIRE_OK(spans_head_write(h, path, NULL, &err));
    size_t n = 0;
    uint8_t *orig = read_all(path, &n);
    REQUIRE(orig && n > 200);
    uint8_t *b = malloc(n);
    int silent = 0;
    for (size_t off = 0; off < n; off++) {
        memcpy(b, orig, n);
        b[off] ^= (uint8_t)(1u << (off % 8));
        write_all(bad, b, n);
        int rc = open_and_check(bad);
        if (rc != ERR_CORRUPT && rc != ERR_UNSUPPORTED)
            silent++;
    }
    CHECK_EQ_INT(silent, 0);
    for (size_t len = 0; len < n; len += (len < 64 || len > n - 64) ? 1 : 7) {
        write_all(bad, orig, len);
        CHECK_EQ_INT(open_and_check(bad), ERR_CORRUPT);
    }
    spans_file_t *f = NULL;
    CHECK_EQ_INT(spans_file_open(tmp_path("does-not-exist"), &f, &err), ERR_NOTFOUND);
    free(b);
    free(orig);
    spans_head_free(h);
    pool_free(&p);
}

/* ---- WAL codec ---- */

TEST(wal_round_trip_and_corruption)
{
    pool_t p = {0};
    arena_init(&p.a, 0);
    for (uint32_t t = 1; t <= 20; t++)
        for (uint32_t k = 0; k < 3; k++)
            pool_add(&p, t, k, (int64_t)t * 1000 - 5000, ORDER_GO, 2);
    p.v[5].kind = -7;
    p.v[6].end_ns = INT64_MIN;
    p.v[7].start_ns = INT64_MAX;
    buf_t b = BUF_INIT;
    spans_wal_encode(&b, p.v, p.n);
    got_t g;
    got_init(&g);
    REQUIRE_OK(spans_wal_decode(b.pos, buf_len(&b), got_cb, &g));
    REQUIRE(g.p.n == p.n);
    for (size_t i = 0; i < p.n; i++)
        CHECK(span_eq(&g.p.v[i], &p.v[i]));
    pool_free(&g.p);
    /* every truncation and many byte flips: ERR_CORRUPT or a clean decode, never a crash, and
     * nothing delivered when the payload is rejected */
    for (size_t len = 0; len < buf_len(&b); len++) {
        got_init(&g);
        CHECK_EQ_INT(spans_wal_decode(b.pos, len, got_cb, &g), ERR_CORRUPT);
        CHECK_EQ_U64(g.p.n, 0);
        pool_free(&g.p);
    }
    uint8_t *c = malloc(buf_len(&b));
    for (size_t off = 0; off < buf_len(&b); off += 3) {
        memcpy(c, b.pos, buf_len(&b));
        c[off] ^= 0xa5;
        got_init(&g);
        int rc = spans_wal_decode(c, buf_len(&b), got_cb, &g);
        CHECK(rc == 0 || rc == ERR_CORRUPT);
        if (rc)
            CHECK_EQ_U64(g.p.n, 0);
        pool_free(&g.p);
    }
    free(c);
    /* empty batch */
    buf_clear(&b);
    spans_wal_encode(&b, NULL, 0);
    got_init(&g);
    CHECK_OK(spans_wal_decode(b.pos, buf_len(&b), got_cb, &g));
    CHECK_EQ_U64(g.p.n, 0);
    pool_free(&g.p);
    buf_deinit(&b);
    pool_free(&p);
}
