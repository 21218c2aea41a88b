/* test_logs.c - store/logs: head (out-of-order, duplicates), files, select, merge, WAL codec. */
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include "base/arena.h"
#include "base/buf.h"
#include "store/labels.h"
#include "store/logs.h"
#include "test.h"

static uint64_t rng = 0x2545f4914f6cdd1dULL;
static uint64_t rnd(void) { return test_xorshift(&rng); }

static char *tmp_path(const char *name)
{
    static char path[8][512];
    static int k;
    char *p = path[k++ % 8];
    snprintf(p, 512, "%s/%s", test_tmpdir(), name);
    return p;
}

/* Label sets from "a=b,c=d" (sorted by the caller), in arena a. */
static labels_t ls_make(arena_t *a, const char *spec)
{
    labels_t ls = {arena_calloc(a, 8, sizeof(label_t)), 0};
    const char *p = spec;
    while (*p) {
        const char *eq = strchr(p, '='), *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        ls.v[ls.n].name = arena_str(a, str_from(p, (size_t)(eq - p)));
        ls.v[ls.n].value = arena_str(a, str_from(eq + 1, (size_t)(end - eq - 1)));
        ls.n++;
        p = *end ? end + 1 : end;
    }
    labels_sort(&ls);
    return ls;
}

/* Collected entries: "stream|ts|line|meta" strings, for comparisons. */
typedef struct col {
    buf_t out;
    size_t n, stop_after;
    int64_t last_ts;
    bool backward, order_ok;
} col_t;

static bool col_cb(void *arg, const db_log_entry_t *e)
{
    col_t *c = arg;
    if (c->n && (c->backward ? e->ts_ns > c->last_ts : e->ts_ns < c->last_ts))
        c->order_ok = false;
    c->last_ts = e->ts_ns;
    labels_format(&c->out, e->stream);
    buf_printf(&c->out, "|%lld|", (long long)e->ts_ns);
    buf_put_str(&c->out, e->line); /* lines may hold NUL bytes */
    buf_putc(&c->out, '|');
    labels_format(&c->out, e->meta);
    buf_putc(&c->out, '\n');
    c->n++;
    return !(c->stop_after && c->n >= c->stop_after);
}

static void col_init(col_t *c, bool backward)
{
    memset(c, 0, sizeof *c);
    c->backward = backward;
    c->order_ok = true;
}

static int select_all(logs_head_t *h, logs_file_t **f, size_t nf, const matcher_t *ms, size_t nms,
                      int64_t mint, int64_t maxt, bool backward, size_t limit, col_t *c)
{
    err_t err = {0};
    col_init(c, backward);
    return logs_select(h, f, nf, ms, nms, mint, maxt, backward, limit, col_cb, c, &err);
}

TEST(head_out_of_order_and_duplicates)
{
    arena_t a;
    arena_init(&a, 0);
    logs_head_t *h = logs_head_new();
    labels_t s1 = ls_make(&a, "app=api,env=prod"), s2 = ls_make(&a, "app=web");
    labels_t m1 = ls_make(&a, "trace_id=abc");
    CHECK(logs_head_append(h, &s1, 100, STR("a"), NULL));
    CHECK(logs_head_append(h, &s1, 200, STR("b"), &m1));
    CHECK(!logs_head_append(h, &s1, 200, STR("b"), NULL));   /* exact duplicate */
    CHECK(logs_head_append(h, &s1, 200, STR("b2"), NULL));   /* same ts, other line */
    CHECK(logs_head_append(h, &s1, 50, STR("early"), NULL)); /* out of order */
    CHECK(!logs_head_append(h, &s1, 100, STR("a"), NULL));   /* duplicate in an older run */
    CHECK(!logs_head_append(h, &s1, 50, STR("early"), NULL));
    CHECK(logs_head_append(h, &s1, 150, STR("mid"), NULL));
    CHECK(logs_head_append(h, &s2, 100, STR("a"), NULL)); /* same ts+line, other stream */
    CHECK(logs_head_append(h, &s1, 200, STR("b3"), NULL));
    CHECK_EQ_U64(logs_head_entries(h), 7);
    CHECK_EQ_U64(logs_head_streams(h), 2);
    CHECK_EQ_INT(logs_head_min_ns(h), 50);
    CHECK_EQ_INT(logs_head_max_ns(h), 200);
    CHECK(logs_head_bytes(h) > 0);
    col_t c;
    CHECK_OK(select_all(h, NULL, 0, NULL, 0, 0, 1000, false, 0, &c));
    CHECK_EQ_STR(buf_cstr(&c.out), "{app=\"api\", env=\"prod\"}|50|early|{}\n"
                                   "{app=\"api\", env=\"prod\"}|100|a|{}\n"
                                   "{app=\"web\"}|100|a|{}\n"
                                   "{app=\"api\", env=\"prod\"}|150|mid|{}\n"
                                   "{app=\"api\", env=\"prod\"}|200|b|{trace_id=\"abc\"}\n"
                                   "{app=\"api\", env=\"prod\"}|200|b2|{}\n"
                                   "{app=\"api\", env=\"prod\"}|200|b3|{}\n");
    buf_deinit(&c.out);
    CHECK_OK(select_all(h, NULL, 0, NULL, 0, 0, 1000, true, 3, &c));
    CHECK_EQ_STR(buf_cstr(&c.out), "{app=\"api\", env=\"prod\"}|200|b3|{}\n"
                                   "{app=\"api\", env=\"prod\"}|200|b2|{}\n"
                                   "{app=\"api\", env=\"prod\"}|200|b|{trace_id=\"abc\"}\n");
    buf_deinit(&c.out);
    logs_head_reset(h);
    CHECK_EQ_U64(logs_head_entries(h), 0);
    CHECK_EQ_U64(logs_head_streams(h), 0);
    CHECK_EQ_INT(logs_head_min_ns(h), INT64_MAX);
    CHECK(logs_head_append(h, &s1, 100, STR("a"), NULL));
    logs_head_free(h);
    arena_deinit(&a);
}

/* Reference model: entries appended in random order with duplicates; the head must deliver
 * each (ts, line) once, sorted by ts with arrival order kept among equal timestamps. */
typedef struct ref {
    int64_t ts;
    uint32_t seq;
    char line[24];
} ref_t;

static int ref_cmp(const void *a, const void *b)
{
    const ref_t *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

TEST(head_random_order_matches_reference)
{
    arena_t a;
    arena_init(&a, 0);
    labels_t s1 = ls_make(&a, "job=x");
    logs_head_t *h = logs_head_new();
    enum { N = 20000 };
    ref_t *ref = malloc(N * sizeof *ref);
    size_t n_ref = 0;
    uint32_t seq = 0;
    for (int i = 0; i < N; i++) {
        /* mostly increasing with jitter, some far in the past, many duplicates */
        int64_t ts =
            (i % 10 == 0) ? (int64_t)(rnd() % 1000) * 7 : (int64_t)i * 7 - (int64_t)(rnd() % 50);
        char line[24];
        snprintf(line, sizeof line, "l%u", (unsigned)(rnd() % 3));
        bool dup = false;
        for (size_t k = 0; k < n_ref && !dup; k++) /* quadratic, but small */
            dup = ref[k].ts == ts && strcmp(ref[k].line, line) == 0;
        bool added = logs_head_append(h, &s1, ts, str_cstr(line), NULL);
        CHECK_EQ_INT(added, !dup);
        if (!dup) {
            ref[n_ref].ts = ts;
            ref[n_ref].seq = seq++;
            memcpy(ref[n_ref].line, line, sizeof line);
            n_ref++;
        }
        if (i == N / 2) { /* a read in the middle sorts the stream; appends continue after it */
            col_t c;
            CHECK_OK(select_all(h, NULL, 0, NULL, 0, INT64_MIN, INT64_MAX, false, 0, &c));
            CHECK_EQ_U64(c.n, n_ref);
            buf_deinit(&c.out);
        }
    }
    CHECK_EQ_U64(logs_head_entries(h), n_ref);
    qsort(ref, n_ref, sizeof *ref, ref_cmp);
    buf_t want = BUF_INIT;
    for (size_t i = 0; i < n_ref; i++)
        buf_printf(&want, "{job=\"x\"}|%lld|%s|{}\n", (long long)ref[i].ts, ref[i].line);
    col_t c;
    CHECK_OK(select_all(h, NULL, 0, NULL, 0, INT64_MIN, INT64_MAX, false, 0, &c));
    CHECK(c.order_ok);
    CHECK_EQ_U64(c.n, n_ref);
    CHECK(buf_len(&c.out) == buf_len(&want) && memcmp(c.out.pos, want.pos, buf_len(&want)) == 0);
    buf_deinit(&c.out);
    /* the same through a file */
    const char *path = tmp_path("rand.logs");
    err_t err = {0};
    REQUIRE_OK(logs_head_write(h, path, NULL, &err));
    logs_file_t *f = NULL;
    REQUIRE_OK(logs_file_open(path, &f, &err));
    CHECK_OK(logs_file_verify(f, &err));
    CHECK_EQ_U64(logs_file_entries(f), n_ref);
    CHECK_OK(select_all(NULL, &f, 1, NULL, 0, INT64_MIN, INT64_MAX, false, 0, &c));
    CHECK(buf_len(&c.out) == buf_len(&want) && memcmp(c.out.pos, want.pos, buf_len(&want)) == 0);
    buf_deinit(&c.out);
    logs_file_close(f);
    buf_deinit(&want);
    free(ref);
    logs_head_free(h);
    arena_deinit(&a);
}

/* Builds a head with streams app=a0..a3 x level=info/error, entries at ts = i*10 + stream. */
static logs_head_t *build_head(arena_t *a, int n_per, int64_t t0, int phase)
{
    logs_head_t *h = logs_head_new();
    for (int s = 0; s < 8; s++) {
        char spec[64];
        snprintf(spec, sizeof spec, "app=a%d,level=%s", s / 2, s % 2 ? "error" : "info");
        labels_t ls = ls_make(a, spec);
        char meta_spec[64];
        snprintf(meta_spec, sizeof meta_spec, "trace_id=t%d", s);
        labels_t meta = ls_make(a, meta_spec);
        for (int i = phase; i < n_per; i += 2) {
            char line[128];
            snprintf(line, sizeof line, "{\"msg\":\"entry %d of stream %d\",\"n\":%d}", i, s,
                     i * s);
            logs_head_append(h, &ls, t0 + (int64_t)i * 10 + s, str_cstr(line),
                             i % 3 ? &meta : NULL);
        }
    }
    return h;
}

TEST(select_files_and_head_with_matchers_and_limits)
{
    arena_t a;
    arena_init(&a, 0);
    err_t err = {0};
    /* even entries in file 0, odd ones in file 1, a few of both also in the head (duplicates
     * across sources must come out once) and the head holding newer ones */
    logs_head_t *h0 = build_head(&a, 3000, 0, 0), *h1 = build_head(&a, 3000, 0, 1);
    const char *p0 = tmp_path("s0.logs"), *p1 = tmp_path("s1.logs");
    REQUIRE_OK(logs_head_write(h0, p0, NULL, &err));
    REQUIRE_OK(logs_head_write(h1, p1, NULL, &err));
    logs_file_t *f[2];
    REQUIRE_OK(logs_file_open(p0, &f[0], &err));
    REQUIRE_OK(logs_file_open(p1, &f[1], &err));
    logs_head_t *h = build_head(&a, 3000, 0, 0); /* same as file 0: all duplicates */
    labels_t ls = ls_make(&a, "app=a1,level=error");
    CHECK(logs_head_append(h, &ls, 1000000, STR("newest"), NULL));

    /* everything, forward: each entry once, in order */
    col_t c;
    CHECK_OK(select_all(h, f, 2, NULL, 0, INT64_MIN, INT64_MAX, false, 0, &c));
    CHECK(c.order_ok);
    CHECK_EQ_U64(c.n, 8 * 3000 + 1);
    buf_deinit(&c.out);

    matcher_t ms[2];
    REQUIRE_OK(matcher_init(&ms[0], MATCH_EQ, STR("level"), STR("error"), &err));
    REQUIRE_OK(matcher_init(&ms[1], MATCH_RE, STR("app"), STR("a[01]"), &err));
    CHECK_OK(select_all(h, f, 2, ms, 2, INT64_MIN, INT64_MAX, false, 0, &c));
    CHECK(c.order_ok);
    CHECK_EQ_U64(c.n, 2 * 3000 + 1);
    buf_deinit(&c.out);

    /* backward with a limit: the newest first */
    CHECK_OK(select_all(h, f, 2, ms, 2, INT64_MIN, INT64_MAX, true, 4, &c));
    CHECK(c.order_ok);
    CHECK_EQ_STR(buf_cstr(&c.out), "{app=\"a1\", level=\"error\"}|1000000|newest|{}\n"
                                   "{app=\"a1\", level=\"error\"}|29993|{\"msg\":\"entry 2999 of "
                                   "stream 3\",\"n\":8997}|{trace_id=\"t3\"}\n"
                                   "{app=\"a0\", level=\"error\"}|29991|{\"msg\":\"entry 2999 of "
                                   "stream 1\",\"n\":2999}|{trace_id=\"t1\"}\n"
                                   "{app=\"a1\", level=\"error\"}|29983|{\"msg\":\"entry 2998 of "
                                   "stream 3\",\"n\":8994}|{trace_id=\"t3\"}\n");
    buf_deinit(&c.out);

    /* forward with a limit and a time range */
    CHECK_OK(select_all(h, f, 2, ms, 1, 15000, 15100, false, 3, &c));
    CHECK_EQ_STR(
        buf_cstr(&c.out),
        "{app=\"a0\", level=\"error\"}|15001|{\"msg\":\"entry 1500 of stream 1\",\"n\":1500}|{}\n"
        "{app=\"a1\", level=\"error\"}|15003|{\"msg\":\"entry 1500 of stream 3\",\"n\":4500}|{}\n"
        "{app=\"a2\", level=\"error\"}|15005|{\"msg\":\"entry 1500 of stream 5\",\"n\":7500}|{}\n");
    buf_deinit(&c.out);
    CHECK_OK(select_all(h, f, 2, ms, 1, 15000, 15100, true, 0, &c));
    CHECK(c.order_ok);
    CHECK_EQ_U64(c.n, 4 * 10);
    buf_deinit(&c.out);

    /* callback stops early */
    col_init(&c, false);
    c.stop_after = 5;
    CHECK_OK(logs_select(h, f, 2, NULL, 0, INT64_MIN, INT64_MAX, false, 0, col_cb, &c, &err));
    CHECK_EQ_U64(c.n, 5);
    buf_deinit(&c.out);

    /* nothing matches */
    matcher_t none;
    REQUIRE_OK(matcher_init(&none, MATCH_EQ, STR("app"), STR("zzz"), &err));
    CHECK_OK(select_all(h, f, 2, &none, 1, INT64_MIN, INT64_MAX, false, 0, &c));
    CHECK_EQ_U64(c.n, 0);
    buf_deinit(&c.out);

    /* label names and values */
    str_t *out;
    size_t n_out;
    CHECK_OK(logs_label_names(h, f, 2, INT64_MIN, INT64_MAX, &a, &out, &n_out));
    REQUIRE(n_out == 2);
    CHECK_EQ_STRN(out[0], "app");
    CHECK_EQ_STRN(out[1], "level");
    CHECK_OK(logs_label_values(h, f, 2, STR("app"), INT64_MIN, INT64_MAX, &a, &out, &n_out));
    REQUIRE(n_out == 4);
    CHECK_EQ_STRN(out[0], "a0");
    CHECK_EQ_STRN(out[3], "a3");
    CHECK_OK(logs_label_values(NULL, f, 2, STR("nope"), INT64_MIN, INT64_MAX, &a, &out, &n_out));
    CHECK_EQ_U64(n_out, 0);
    CHECK_OK(logs_label_names(h, NULL, 0, 999999, 1000001, &a, &out, &n_out));
    CHECK_EQ_U64(n_out, 2);

    matcher_deinit(&none);
    matcher_deinit(&ms[0]);
    matcher_deinit(&ms[1]);
    logs_file_close(f[0]);
    logs_file_close(f[1]);
    logs_head_free(h);
    logs_head_free(h0);
    logs_head_free(h1);
    arena_deinit(&a);
}

TEST(file_merge)
{
    arena_t a;
    arena_init(&a, 0);
    err_t err = {0};
    logs_head_t *h0 = build_head(&a, 2000, 0, 0), *h1 = build_head(&a, 2000, 0, 1);
    logs_head_t *h2 = build_head(&a, 500, 0, 0); /* overlaps file 0 exactly */
    labels_t extra = ls_make(&a, "app=zz");
    logs_head_append(h2, &extra, 5, STR("only here"), NULL);
    logs_head_t *hs[3] = {h0, h1, h2};
    logs_file_t *f[3];
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "mg%d.logs", i);
        const char *p = tmp_path(name);
        REQUIRE_OK(logs_head_write(hs[i], p, NULL, &err));
        REQUIRE_OK(logs_file_open(p, &f[i], &err));
    }
    col_t want;
    CHECK_OK(select_all(NULL, f, 3, NULL, 0, INT64_MIN, INT64_MAX, false, 0, &want));
    CHECK_EQ_U64(want.n, 8 * 2000 + 1);
    const char *out = tmp_path("merged.logs");
    uint64_t bytes = 0;
    REQUIRE_OK(logs_file_merge(f, 3, out, &bytes, &err));
    CHECK(bytes > 0);
    logs_file_t *m;
    REQUIRE_OK(logs_file_open(out, &m, &err));
    CHECK_OK(logs_file_verify(m, &err));
    CHECK_EQ_U64(logs_file_entries(m), 8 * 2000 + 1);
    col_t got;
    CHECK_OK(select_all(NULL, &m, 1, NULL, 0, INT64_MIN, INT64_MAX, false, 0, &got));
    CHECK(buf_len(&got.out) == buf_len(&want.out) &&
          memcmp(got.out.pos, want.out.pos, buf_len(&want.out)) == 0);
    buf_deinit(&got.out);
    buf_deinit(&want.out);
    logs_file_close(m);
    for (int i = 0; i < 3; i++)
        logs_file_close(f[i]);
    for (int i = 0; i < 3; i++)
        logs_head_free(hs[i]);
    arena_deinit(&a);
}

TEST(file_empty)
{
    logs_head_t *h = logs_head_new();
    err_t err = {0};
    const char *p = tmp_path("empty.logs");
    REQUIRE_OK(logs_head_write(h, p, NULL, &err));
    logs_file_t *f;
    REQUIRE_OK(logs_file_open(p, &f, &err));
    CHECK_EQ_U64(logs_file_entries(f), 0);
    col_t c;
    CHECK_OK(select_all(h, &f, 1, NULL, 0, INT64_MIN, INT64_MAX, true, 10, &c));
    CHECK_EQ_U64(c.n, 0);
    buf_deinit(&c.out);
    logs_file_close(f);
    logs_head_free(h);
}

/* Lines that stress the chunk transforms (timestamps cut out of the text, JSON templates) come
 * back byte for byte. */
TEST(file_line_encodings_round_trip)
{
    arena_t a;
    arena_init(&a, 0);
    logs_head_t *h = logs_head_new();
    labels_t ls = ls_make(&a, "job=enc");
    const int64_t ts = 1795299609410123456LL; /* 2026-11-21T22:20:09.410123456Z */
    static const char *lines[] = {
        "{\"time\":\"2026-11-21T22:20:09.410Z\",\"msg\":\"ms\"}",
        "{\"time\":\"2026-11-21T22:20:09.410123Z\",\"msg\":\"us\"}",
        "{\"time\":\"2026-11-21T22:20:09.410123456Z\",\"msg\":\"ns\"}",
        "2026-11-21T22:20:09Z seconds at the start",
        "at the end 2026-11-21T22:20:09.410Z",
        "2026-11-21T22:20:09.410Z",
        "{\"ts\":1795299609410,\"level\":\"info\"}",
        "{\"ts\":1795299609410123456,\"level\":\"info\"}",
        "{\"ts\":17952996094109,\"note\":\"ms digits inside a longer number\"}",
        "2026-11-21T22:20:09.411Z is not this entry's time",
        "{\"a\": 1, \"b\": \"two\", \"c\": [1, {\"d\": \"}]\"}], \"e\": null}",
        "{\"a\":1, \"b\":2}",
        "{\"a\": 1,\"b\": 2}",
        "{\"k\\\"ey\":\"v\\\\\",\"\":\"empty key\",\"k\\\"ey\":\"dup\"}",
        "{}",
        "{\"a\":}",
        "{\"a\":1} ",
        " {\"a\":1}",
        "{\"a\":1,}",
        "{\"a\":\"unterminated}",
        "{\"a\":tr ue}",
        "{\"nested\":{\"x\":{\"y\":[[[]]]}},\"z\":-1.5e+10}",
        "{\"bin\":\"\xc3\xa9\xe2\x82\xac\",\"n\":0}",
        "",
        "plain text without any structure",
        "{\"a\":1}",
    };
    size_t n = sizeof lines / sizeof lines[0];
    buf_t want = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        CHECK(logs_head_append(h, &ls, ts, str_cstr(lines[i]), NULL));
        buf_printf(&want, "{job=\"enc\"}|%lld|%s|{}\n", (long long)ts, lines[i]);
    }
    /* a line with NUL bytes, one longer than a chunk, one with 70 fields, and enough distinct
     * keys and templates to pass the per-chunk limits */
    static const char nul[] = "{\"a\":\"x\0y\"}";
    CHECK(logs_head_append(h, &ls, ts + 1, str_from(nul, sizeof nul - 1), NULL));
    buf_printf(&want, "{job=\"enc\"}|%lld|", (long long)ts + 1);
    buf_append(&want, nul, sizeof nul - 1);
    buf_puts(&want, "|{}\n");
    buf_t big = BUF_INIT;
    buf_puts(&big, "{\"big\":\"");
    for (int i = 0; i < 100000; i++)
        buf_putc(&big, (char)('a' + i % 26));
    buf_puts(&big, "\"}");
    CHECK(logs_head_append(h, &ls, ts + 2, buf_str(&big), NULL));
    buf_printf(&want, "{job=\"enc\"}|%lld|%.*s|{}\n", (long long)ts + 2, STR_FMT(buf_str(&big)));
    buf_clear(&big);
    buf_putc(&big, '{');
    for (int i = 0; i < 70; i++)
        buf_printf(&big, "%s\"f%d\":%d", i ? "," : "", i, i);
    buf_putc(&big, '}');
    CHECK(logs_head_append(h, &ls, ts + 3, buf_str(&big), NULL));
    buf_printf(&want, "{job=\"enc\"}|%lld|%.*s|{}\n", (long long)ts + 3, STR_FMT(buf_str(&big)));
    for (int i = 0; i < 600; i++) {
        char line[96];
        snprintf(line, sizeof line, "{\"key%d\":%d,\"k%d\":true}", i, i, i % 300);
        CHECK(logs_head_append(h, &ls, ts + 4 + i, str_cstr(line), NULL));
        buf_printf(&want, "{job=\"enc\"}|%lld|%s|{}\n", (long long)ts + 4 + i, line);
    }
    err_t err = {0};
    const char *path = tmp_path("enc.logs");
    REQUIRE_OK(logs_head_write(h, path, NULL, &err));
    logs_file_t *f;
    REQUIRE_OK(logs_file_open(path, &f, &err));
    CHECK_OK(logs_file_verify(f, &err));
    col_t c;
    CHECK_OK(select_all(NULL, &f, 1, NULL, 0, INT64_MIN, INT64_MAX, false, 0, &c));
    CHECK_EQ_U64(c.n, n + 3 + 600);
    CHECK(buf_len(&c.out) == buf_len(&want) && memcmp(c.out.pos, want.pos, buf_len(&want)) == 0);
    buf_deinit(&c.out);
    /* and once more through a merge (decode, re-encode) */
    const char *path2 = tmp_path("enc2.logs");
    REQUIRE_OK(logs_file_merge(&f, 1, path2, NULL, &err));
    logs_file_t *g;
    REQUIRE_OK(logs_file_open(path2, &g, &err));
    CHECK_OK(select_all(NULL, &g, 1, NULL, 0, INT64_MIN, INT64_MAX, false, 0, &c));
    CHECK(buf_len(&c.out) == buf_len(&want) && memcmp(c.out.pos, want.pos, buf_len(&want)) == 0);
    buf_deinit(&c.out);
    logs_file_close(g);
    logs_file_close(f);
    buf_deinit(&big);
    buf_deinit(&want);
    logs_head_free(h);
    arena_deinit(&a);
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

static int open_and_check(const char *path)
{
    logs_file_t *f = NULL;
    err_t err = {0};
    int rc = logs_file_open(path, &f, &err);
    if (rc)
        return rc;
    rc = logs_file_verify(f, &err);
    if (rc == 0) {
        col_t c;
        select_all(NULL, &f, 1, NULL, 0, INT64_MIN, INT64_MAX, false, 0, &c);
        buf_deinit(&c.out);
    }
    logs_file_close(f);
    return rc;
}

TEST(file_corruption_detected)
{
    arena_t a;
    arena_init(&a, 0);
    logs_head_t *h = build_head(&a, 40, 1000, 0);
    const char *path = tmp_path("c.logs"), *bad = tmp_path("c-bad.logs");
    err_t err = {0};
    REQUIRE_OK(logs_head_write(h, path, NULL, &err));
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
    for (size_t len = 0; len < n; len += (len < 100 || len > n - 100) ? 1 : 5) {
        write_all(bad, orig, len);
        CHECK_EQ_INT(open_and_check(bad), ERR_CORRUPT);
    }
    logs_file_t *f = NULL;
    CHECK_EQ_INT(logs_file_open(tmp_path("missing.logs"), &f, &err), ERR_NOTFOUND);
    free(b);
    free(orig);
    logs_head_free(h);
    arena_deinit(&a);
}

/* ---- WAL codec ---- */

typedef struct wcol {
    buf_t out;
    size_t n;
} wcol_t;

static void wal_cb(void *arg, const logs_wal_entry_t *e)
{
    wcol_t *c = arg;
    labels_format(&c->out, &e->stream);
    buf_printf(&c->out, "|%lld|%.*s|", (long long)e->ts_ns, STR_FMT(e->line));
    labels_format(&c->out, &e->meta);
    buf_putc(&c->out, '\n');
    c->n++;
}

TEST(wal_round_trip_and_corruption)
{
    arena_t a;
    arena_init(&a, 0);
    logs_wal_entry_t e[6];
    memset(e, 0, sizeof e);
    const char *streams[] = {"app=a", "app=b,env=x", "app=a"};
    buf_t want = BUF_INIT;
    int64_t ts[6] = {100, 50, INT64_MAX, INT64_MIN, 0, 100};
    for (int i = 0; i < 6; i++) {
        e[i].stream = ls_make(&a, streams[i % 3]);
        e[i].ts_ns = ts[i];
        char line[32];
        snprintf(line, sizeof line, "line %d", i);
        e[i].line = arena_str(&a, str_cstr(line));
        if (i % 2)
            e[i].meta = ls_make(&a, "k=v,trace_id=123");
        labels_format(&want, &e[i].stream);
        buf_printf(&want, "|%lld|%s|", (long long)ts[i], line);
        labels_format(&want, &e[i].meta);
        buf_putc(&want, '\n');
    }
    buf_t b = BUF_INIT;
    logs_wal_encode(&b, e, 6);
    wcol_t c = {BUF_INIT, 0};
    arena_t da;
    arena_init(&da, 0);
    REQUIRE_OK(logs_wal_decode(b.pos, buf_len(&b), &da, wal_cb, &c));
    CHECK_EQ_STR(buf_cstr(&c.out), buf_cstr(&want));
    buf_deinit(&c.out);
    for (size_t len = 0; len < buf_len(&b); len++) {
        wcol_t t = {BUF_INIT, 0};
        CHECK_EQ_INT(logs_wal_decode(b.pos, len, &da, wal_cb, &t), ERR_CORRUPT);
        CHECK_EQ_U64(t.n, 0);
        buf_deinit(&t.out);
    }
    uint8_t *cp = malloc(buf_len(&b));
    for (size_t off = 0; off < buf_len(&b); off++) {
        memcpy(cp, b.pos, buf_len(&b));
        cp[off] ^= 0x5a;
        wcol_t t = {BUF_INIT, 0};
        int rc = logs_wal_decode(cp, buf_len(&b), &da, wal_cb, &t);
        CHECK(rc == 0 || rc == ERR_CORRUPT);
        if (rc)
            CHECK_EQ_U64(t.n, 0);
        buf_deinit(&t.out);
    }
    free(cp);
    buf_clear(&b);
    logs_wal_encode(&b, NULL, 0);
    c.n = 0;
    CHECK_OK(logs_wal_decode(b.pos, buf_len(&b), &da, wal_cb, &c));
    CHECK_EQ_U64(c.n, 0);
    buf_deinit(&b);
    buf_deinit(&want);
    arena_deinit(&da);
    arena_deinit(&a);
}

/* ---- size on a realistic JSON log workload ---- */

static const char *models[] = {"claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"};
static const char *paths[] = {"/api/v1/tests", "/api/v1/runs/%u", "/api/v1/skills/%u/cases",
                              "/healthz", "/api/v1/results/%u/artifacts"};

static void uuid(char *out, uint64_t a, uint64_t b)
{
    snprintf(out, 37, "%08x-%04x-4%03x-a%03x-%012llx", (unsigned)(a >> 32),
             (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xfff, (unsigned)(b >> 48) & 0xfff,
             (unsigned long long)(b & 0xffffffffffffULL));
}

/* One line of a JSON log, ~244 bytes on average: access logs, API request events, test results
 * and warnings, with ids that repeat per session and per request as real systems produce. */
static size_t json_line(char *out, size_t cap, int64_t ts_ns, int svc, uint64_t session)
{
    time_t secs = (time_t)(ts_ns / 1000000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char when[40];
    size_t w = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + w, sizeof when - w, ".%03dZ", (int)(ts_ns / 1000000 % 1000));
    char sid[40], rid[40], path[64];
    uuid(sid, session * 0x9e3779b97f4a7c15ULL, session * 0xc2b2ae3d27d4eb4fULL);
    uuid(rid, rnd(), rnd());
    int kind = (int)(rnd() % 100);
    int n;
    if (kind < 45) {
        snprintf(path, sizeof path, paths[rnd() % 5], (unsigned)(rnd() % 5000));
        n = snprintf(out, cap,
                     "{\"time\":\"%s\",\"level\":\"info\",\"logger\":\"http.access\",\"msg\":"
                     "\"request completed\",\"method\":\"%s\",\"path\":\"%s\",\"status\":%d,"
                     "\"duration_ms\":%.1f,\"bytes\":%u,\"request_id\":\"%s\"}",
                     when, rnd() % 4 ? "GET" : "POST", path, rnd() % 20 ? 200 : 404,
                     (double)(rnd() % 30000) / 10, (unsigned)(rnd() % 40000), rid);
    } else if (kind < 80) {
        n = snprintf(
            out, cap,
            "{\"time\":\"%s\",\"level\":\"info\",\"event\":\"api_request\",\"model\":\"%s\","
            "\"input_tokens\":%u,\"output_tokens\":%u,\"cache_read_tokens\":%u,"
            "\"cost_usd\":%.4f,\"duration_ms\":%u,\"session_id\":\"%s\"}",
            when, models[rnd() % 3], (unsigned)(rnd() % 30000), (unsigned)(rnd() % 4000),
            (unsigned)(rnd() % 100000), (double)(rnd() % 100000) / 1e5, (unsigned)(rnd() % 60000),
            sid);
    } else if (kind < 95) {
        n = snprintf(
            out, cap,
            "{\"time\":\"%s\",\"level\":\"info\",\"logger\":\"skill.runner\",\"msg\":\"test "
            "finished\",\"test\":\"skills/svc%d/case_%03u\",\"result\":\"%s\",\"duration_s\":"
            "%.2f,\"attempt\":%u,\"commit\":\"%012llx\",\"session_id\":\"%s\"}",
            when, svc, (unsigned)(rnd() % 300), rnd() % 8 ? "passed" : "failed",
            (double)(rnd() % 60000) / 1000, (unsigned)(1 + rnd() % 3),
            (unsigned long long)(session * 0x51ed27f1ULL & 0xffffffffffffULL), sid);
    } else {
        n = snprintf(out, cap,
                     "{\"time\":\"%s\",\"level\":\"warn\",\"logger\":\"llm.client\",\"msg\":\"rate "
                     "limited, retrying\",\"model\":\"%s\",\"retry_in_ms\":%u,\"attempt\":%u,"
                     "\"error\":\"429 Too Many Requests: rate_limit_error\",\"request_id\":\"%s\"}",
                     when, models[rnd() % 3], (unsigned)(rnd() % 8000), (unsigned)(1 + rnd() % 5),
                     rid);
    }
    return (size_t)n;
}

TEST(size_on_json_workload)
{
    arena_t a;
    arena_init(&a, 0);
    logs_head_t *h = logs_head_new();
    labels_t streams[12];
    for (int s = 0; s < 12; s++) {
        char spec[96];
        snprintf(spec, sizeof spec, "env=prod,service_name=svc%d,host=worker-%d", s % 6, s);
        streams[s] = ls_make(&a, spec);
    }
    int n = getenv("SKILLSCOPE_REPORT") ? 400000 : 40000;
    int64_t ts = 1795299609410000000LL;
    uint64_t raw = 0;
    /* lines generated first so that the append rate below is the head's alone */
    buf_t text = BUF_INIT;
    size_t *ends = malloc((size_t)n * sizeof *ends);
    int64_t *tss = malloc((size_t)n * sizeof *tss);
    int *sid = malloc((size_t)n * sizeof *sid);
    char line[1024];
    for (int i = 0; i < n; i++) {
        ts += (int64_t)(rnd() % 20000000); /* ~100 lines a second overall */
        int s = (int)(rnd() % 12);
        size_t len =
            json_line(line, sizeof line, ts, s % 6, (uint64_t)(i / 500) * 12 + (uint64_t)s);
        raw += len;
        buf_append(&text, line, len);
        ends[i] = buf_len(&text);
        tss[i] = ts;
        sid[i] = s;
    }
    struct timespec a0, a1;
    clock_gettime(CLOCK_MONOTONIC, &a0);
    for (int i = 0; i < n; i++) {
        size_t start = i ? ends[i - 1] : 0;
        logs_head_append(h, &streams[sid[i]], tss[i],
                         str_from((const char *)text.pos + start, ends[i] - start), NULL);
    }
    clock_gettime(CLOCK_MONOTONIC, &a1);
    double asecs = (double)(a1.tv_sec - a0.tv_sec) + (double)(a1.tv_nsec - a0.tv_nsec) / 1e9;
    if (getenv("SKILLSCOPE_REPORT"))
        printf("logs head: %.0f appends/s, %.1f B of head memory per line\n", n / asecs,
               (double)logs_head_bytes(h) / n);
    buf_deinit(&text);
    free(ends);
    free(tss);
    free(sid);
    const char *path = tmp_path("size.logs");
    uint64_t bytes = 0;
    err_t err = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    REQUIRE_OK(logs_head_write(h, path, &bytes, &err));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (getenv("SKILLSCOPE_REPORT"))
        printf(
            "logs: %d lines, %.1f B/line raw, %.1f B/line stored (%.2fx), written at %.0f MB/s\n",
            n, (double)raw / n, (double)bytes / n, (double)raw / (double)bytes,
            (double)raw / secs / 1e6);
    CHECK(bytes < raw / 4);
    logs_file_t *f;
    REQUIRE_OK(logs_file_open(path, &f, &err));
    CHECK_OK(logs_file_verify(f, &err));
    col_t c;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_OK(select_all(NULL, &f, 1, NULL, 0, INT64_MIN, INT64_MAX, false, 0, &c));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK_EQ_U64(c.n, (uint64_t)n);
    buf_deinit(&c.out);
    if (getenv("SKILLSCOPE_REPORT"))
        printf("logs file: all %d lines read back in time order at %.0f lines/s\n", n, n / secs);
    logs_file_close(f);
    logs_head_free(h);
    arena_deinit(&a);
}
