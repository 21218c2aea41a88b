/* test_chunk.c - XOR chunk round trips: regular and jittered timestamps, special floats, bounds. */
#include <stdlib.h>

#include "store/chunk.h"
#include "store/format.h"
#include "test.h"

static uint64_t rng_state = 42;
static uint64_t rnd(void) { return test_xorshift(&rng_state); }

static double bits_to_double(uint64_t b)
{
    double d;
    memcpy(&d, &b, 8);
    return d;
}

static void roundtrip(const int64_t *ts, const double *vs, size_t n)
{
    chunk_app_t a;
    chunk_app_init(&a);
    for (size_t i = 0; i < n; i++)
        REQUIRE(chunk_app_append(&a, ts[i], vs[i]));
    size_t len;
    uint8_t *p = chunk_app_take(&a, &len);
    CHECK_EQ_INT(chunk_samples(p, len), n);
    chunk_iter_t it;
    chunk_iter_init(&it, p, len);
    int64_t t;
    double v;
    size_t i = 0;
    while (chunk_iter_next(&it, &t, &v)) {
        REQUIRE(i < n);
        CHECK_EQ_INT(t, ts[i]);
        CHECK(memcmp(&v, &vs[i], 8) == 0);
        i++;
    }
    CHECK(!it.err);
    CHECK_EQ_INT(i, n);
    /* Every truncation ends early without reading past the end (ASan checks the bounds). */
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *q = malloc(cut ? cut : 1);
        memcpy(q, p, cut);
        chunk_iter_init(&it, q, cut);
        size_t k = 0;
        while (chunk_iter_next(&it, &t, &v))
            k++;
        CHECK(k <= n);
        free(q);
    }
    free(p);
}

TEST(regular_constant)
{
    int64_t ts[120];
    double vs[120];
    for (int i = 0; i < 120; i++) {
        ts[i] = 1700000000000 + i * 15000;
        vs[i] = 1;
    }
    roundtrip(ts, vs, 120);
    chunk_app_t a;
    chunk_app_init(&a);
    for (int i = 0; i < 120; i++)
        chunk_app_append(&a, ts[i], vs[i]);
    /* 2 bits a sample after the first two. */
    chunk_app_sync(&a);
    CHECK(chunk_app_len(&a) < 2 + 6 + 8 + 4 + 120 / 4 + 2);
    chunk_app_deinit(&a);
}

TEST(jitter_and_random)
{
    enum { N = 1000 };
    int64_t *ts = malloc(N * sizeof *ts);
    double *vs = malloc(N * sizeof *vs);
    int64_t t = -5000;
    for (int i = 0; i < N; i++) {
        t += 15000 + (int64_t)(rnd() % 5) - 2;
        ts[i] = t;
        vs[i] = (double)(rnd() % 1000) / 7.0;
    }
    roundtrip(ts, vs, N);
    /* Big jumps in every timestamp bucket, random bit patterns incl. NaNs and infinities. */
    t = 0;
    for (int i = 0; i < N; i++) {
        int64_t steps[] = {1, 17, 9000, 600000, 3000000000LL, 1LL << 40};
        t += steps[rnd() % 6] + (int64_t)(rnd() % 3);
        ts[i] = t;
        vs[i] = bits_to_double(rnd());
    }
    roundtrip(ts, vs, N);
    free(ts);
    free(vs);
}

TEST(special_values)
{
    int64_t ts[] = {INT64_MIN / 4, -1, 0, 1, 2, 1000, 1001, INT64_MAX / 4};
    double vs[] = {bits_to_double(0x7ff0000000000002ULL), NAN,  INFINITY, -INFINITY, -0.0, 0.0,
                   bits_to_double(0x7ff0000000000002ULL), 1e308};
    roundtrip(ts, vs, 8);
    roundtrip(ts, vs, 1);
    roundtrip(ts, vs, 0);
}

TEST(max_samples)
{
    chunk_app_t a;
    chunk_app_init(&a);
    for (int i = 0; i < CHUNK_MAX_SAMPLES; i++)
        REQUIRE(chunk_app_append(&a, i, i));
    CHECK(!chunk_app_append(&a, CHUNK_MAX_SAMPLES, 0));
    size_t len;
    uint8_t *p = chunk_app_take(&a, &len);
    chunk_iter_t it;
    chunk_iter_init(&it, p, len);
    int64_t t;
    double v;
    int n = 0;
    while (chunk_iter_next(&it, &t, &v))
        n++;
    CHECK_EQ_INT(n, CHUNK_MAX_SAMPLES);
    free(p);
}

TEST(garbage_is_safe)
{
    uint8_t buf[64];
    for (int round = 0; round < 2000; round++) {
        for (size_t i = 0; i < sizeof buf; i++)
            buf[i] = (uint8_t)rnd();
        size_t len = rnd() % sizeof buf;
        chunk_iter_t it;
        chunk_iter_init(&it, buf, len);
        int64_t t;
        double v;
        int n = 0;
        while (chunk_iter_next(&it, &t, &v))
            n++;
        CHECK(n <= 65535);
    }
}

static size_t delta_roundtrip(const int64_t *ts, const double *vs, size_t n)
{
    buf_t b = BUF_INIT;
    if (!chunk_encode_delta(&b, ts, vs, n)) {
        buf_deinit(&b);
        return 0;
    }
    size_t len = buf_len(&b);
    CHECK_EQ_INT(chunk_samples(b.pos, len), n);
    chunk_iter_t it;
    chunk_iter_init_enc(&it, CHUNK_ENC_DELTA, b.pos, len);
    int64_t t;
    double v;
    size_t i = 0;
    while (chunk_iter_next(&it, &t, &v)) {
        if (i < n) {
            CHECK_EQ_INT(t, ts[i]);
            CHECK(memcmp(&v, &vs[i], 8) == 0);
        }
        i++;
    }
    CHECK(!it.err);
    CHECK_EQ_INT(i, n);
    /* The bulk reader gives the same samples, in runs of 1, 2, 3, ... */
    chunk_iter_init_enc(&it, CHUNK_ENC_DELTA, b.pos, len);
    int64_t tb[64];
    double vb[64];
    size_t got, run = 1;
    i = 0;
    while ((got = chunk_iter_read(&it, tb, vb, run)) > 0) {
        CHECK(got <= run);
        for (size_t k = 0; k < got && i < n; k++, i++) {
            CHECK_EQ_INT(tb[k], ts[i]);
            CHECK(memcmp(&vb[k], &vs[i], 8) == 0);
        }
        run = run % 64 + 1;
    }
    CHECK(!it.err);
    CHECK_EQ_INT(i, n);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *q = malloc(cut ? cut : 1);
        memcpy(q, b.pos, cut);
        chunk_iter_init_enc(&it, CHUNK_ENC_DELTA, q, cut);
        size_t k = 0;
        while (chunk_iter_next(&it, &t, &v))
            k++;
        CHECK(k <= n);
        free(q);
    }
    buf_deinit(&b);
    return len;
}

TEST(delta_encoding)
{
    enum { N = 1000 };
    int64_t *ts = malloc(N * sizeof *ts);
    double *vs = malloc(N * sizeof *vs);
    /* Random walk of integers on a regular grid: 3 bits a sample, no timestamp bits. */
    double x = 0;
    for (int i = 0; i < N; i++) {
        ts[i] = 1700000000000 + i * 15000LL;
        x += (double)(rnd() % 7) - 3;
        vs[i] = x;
    }
    size_t len = delta_roundtrip(ts, vs, N);
    CHECK(len > 0 && len < N * 3 / 8 + 32);
    /* Jittered timestamps, two-decimal values. */
    for (int i = 0; i < N; i++) {
        ts[i] = i * 15000LL + (int64_t)(rnd() % 5) - 2;
        vs[i] = (double)(int64_t)(rnd() % 100000) / 100.0;
    }
    CHECK(delta_roundtrip(ts, vs, N) > 0);
    /* A counter growing at a constant rate: delta-of-deltas are all zero. */
    for (int i = 0; i < N; i++) {
        ts[i] = i * 1000LL;
        vs[i] = 5.0 * i;
    }
    len = delta_roundtrip(ts, vs, N);
    CHECK(len > 0 && len < 32);
    CHECK(delta_roundtrip(ts, vs, 1) > 0);
    CHECK(delta_roundtrip(ts, vs, 2) > 0);
    /* Not decimals: refused, so the writer falls back to XOR. */
    vs[5] = 1.0 / 3.0;
    CHECK_EQ_INT(delta_roundtrip(ts, vs, N), 0);
    vs[5] = NAN;
    CHECK_EQ_INT(delta_roundtrip(ts, vs, N), 0);
    vs[5] = -0.0;
    CHECK_EQ_INT(delta_roundtrip(ts, vs, N), 0);
    vs[5] = 1e300;
    CHECK_EQ_INT(delta_roundtrip(ts, vs, N), 0);
    /* Huge integers and timestamp jumps need wide fields but still round-trip. */
    for (int i = 0; i < N; i++) {
        ts[i] = (int64_t)(rnd() >> 20) + (i ? ts[i - 1] : INT64_MIN / 2);
        vs[i] = (double)((int64_t)(rnd() >> 12) - (1LL << 51));
    }
    CHECK(delta_roundtrip(ts, vs, N) > 0);
    free(ts);
    free(vs);
}

TEST(delta_garbage_is_safe)
{
    uint8_t buf[64];
    for (int round = 0; round < 5000; round++) {
        for (size_t i = 0; i < sizeof buf; i++)
            buf[i] = (uint8_t)rnd();
        buf[0] = 0;
        size_t len = rnd() % sizeof buf;
        chunk_iter_t it;
        chunk_iter_init_enc(&it, CHUNK_ENC_DELTA, buf, len);
        int64_t t;
        double v;
        int n = 0;
        while (chunk_iter_next(&it, &t, &v))
            n++;
        CHECK(n <= 255);
        chunk_iter_init_enc(&it, CHUNK_ENC_DELTA, buf, len);
        int64_t tb[300];
        double vb[300];
        CHECK_EQ_INT(chunk_iter_read(&it, tb, vb, 300), n);
    }
    chunk_iter_t it;
    chunk_iter_init_enc(&it, 99, buf, sizeof buf);
    CHECK(it.err);
}

TEST(seek)
{
    chunk_app_t a;
    chunk_app_init(&a);
    for (int i = 0; i < 100; i++)
        chunk_app_append(&a, i * 10, i);
    size_t len;
    uint8_t *p = chunk_app_take(&a, &len);
    chunk_iter_t it;
    chunk_iter_init(&it, p, len);
    int64_t t;
    double v;
    REQUIRE(chunk_iter_seek(&it, 155, &t, &v));
    CHECK_EQ_INT(t, 160);
    CHECK_EQ_DBL(v, 16);
    REQUIRE(chunk_iter_next(&it, &t, &v));
    CHECK_EQ_INT(t, 170);
    REQUIRE(chunk_iter_seek(&it, 0, &t, &v)); /* forward only: the next sample */
    CHECK_EQ_INT(t, 180);
    CHECK(!chunk_iter_seek(&it, 5000, &t, &v));
    free(p);
}
