/* test_base.c - base/: formatting, checksums, varints, hash table, parsers, JSON writer. */
#include "base/arena.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/crc32c.h"
#include "base/fmtnum.h"
#include "base/hash.h"
#include "base/json.h"
#include "base/varint.h"
#include "test.h"

#include <stdlib.h>

TEST(fmt_float_prom_matches_go)
{
    static const struct {
        double v;
        const char *want;
    } cases[] = {{1, "1"},
                 {0.1, "0.1"},
                 {1267.1266666666666, "1267.1266666666666"},
                 {1e-7, "1e-07"},
                 {1e21, "1e+21"},
                 {123456789012345678901.0, "123456789012345680000"},
                 {-2.5, "-2.5"},
                 {0, "0"},
                 {1e-6, "0.000001"},
                 {NAN, "NaN"},
                 {INFINITY, "+Inf"},
                 {-INFINITY, "-Inf"},
                 {100, "100"},
                 {0.30000000000000004, "0.30000000000000004"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[FMTNUM_MAX];
        fmt_float_prom(out, cases[i].v);
        CHECK_EQ_STR(out, cases[i].want);
    }
    char out[FMTNUM_MAX];
    fmt_float_e(out, 1);
    CHECK_EQ_STR(out, "1e+00");
    fmt_float_e(out, 42);
    CHECK_EQ_STR(out, "4.2e+01");
}

/* The shortest digits are checked against their definition on doubles spread over the ranges the
 * integer path and the printf path take, powers of two (lopsided intervals), integers and values
 * next to powers of ten: the output reads back as the double, one digit fewer does not, and the
 * digits are the correctly rounded ones (printf's %.{p-1}e, which Go's 'e' layout matches for
 * positive exponents up to 99). */
static uint64_t fmt_rng = 0x9e3779b97f4a7c15u;

static int fmt_check_shortest(double x)
{
    char out[FMTNUM_MAX], ref[64];
    fmt_float_e(out, x);
    if (strtod(out, NULL) != x)
        return 0;
    int p = 0;
    for (const char *c = out; *c && *c != 'e'; c++)
        p += *c >= '0' && *c <= '9';
    snprintf(ref, sizeof ref, "%.*e", p - 1, x);
    if (strcmp(ref, out) != 0)
        return 0;
    if (p > 1) {
        snprintf(ref, sizeof ref, "%.*e", p - 2, x);
        if (strtod(ref, NULL) == x)
            return 0;
    }
    return 1;
}

TEST(fmt_float_shortest_property)
{
    int bad = 0;
    for (int i = 0; i < 300000 && bad < 5; i++) {
        uint64_t r = test_xorshift(&fmt_rng);
        double x;
        switch (i % 6) {
        case 0: { /* any exponent from 1e-20 to 1e20 */
            uint64_t bits =
                (r & ((UINT64_C(1) << 52) - 1)) | ((uint64_t)(957 + (r >> 56) % 133) << 52);
            memcpy(&x, &bits, sizeof x);
            break;
        }
        case 1: /* ratios like a dashboard's averages */
            x = (double)(r % 100000000) / (double)(1 + (r >> 40) % 9999);
            break;
        case 2: /* integers, some past 2^53 */
            x = (double)(r >> (r % 40));
            break;
        case 3: /* powers of two and their neighbours */
            x = ldexp(1.0, (int)(r % 140) - 70);
            x = (r >> 63) ? nextafter(x, 0) : (r >> 62 & 1) ? nextafter(x, INFINITY) : x;
            break;
        case 4: /* next to powers of ten */
            x = pow(10, (int)(r % 40) - 20);
            x = (r >> 63) ? nextafter(x, 0) : nextafter(x, INFINITY);
            break;
        default: /* short decimals */
            x = (double)(r % 100000) / pow(10, (int)((r >> 32) % 12));
            break;
        }
        if (x > 0 && isfinite(x) && !fmt_check_shortest(x)) {
            char out[FMTNUM_MAX];
            fmt_float_e(out, x);
            fprintf(stderr, "shortest of %a: got %s\n", x, out);
            bad++;
        }
    }
    CHECK(bad == 0);
}

TEST(fmt_ts_prom)
{
    char out[32];
    fmt_ts_prom(out, 1435781451781);
    CHECK_EQ_STR(out, "1435781451.781");
    fmt_ts_prom(out, 1435781430050);
    CHECK_EQ_STR(out, "1435781430.050");
    fmt_ts_prom(out, 1700000000000);
    CHECK_EQ_STR(out, "1700000000");
    fmt_ts_prom(out, 1500);
    CHECK_EQ_STR(out, "1.500");
}

TEST(crc32c_known_vector)
{
    CHECK_EQ_U64(crc32c(0, "123456789", 9), 0xE3069283u);
    /* Incremental equals one-shot, at odd split points. */
    const char *s = "The quick brown fox jumps over the lazy dog, twice over and again.";
    size_t n = strlen(s);
    uint32_t whole = crc32c(0, s, n);
    for (size_t k = 0; k < n; k += 7)
        CHECK_EQ_U64(crc32c(crc32c(0, s, k), s + k, n - k), whole);
}

TEST(varint_round_trip)
{
    uint64_t vals[] = {0, 1, 127, 128, 300, 1ULL << 32, UINT64_MAX};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        uint8_t b[UVARINT_MAX];
        size_t n = uvarint_put(b, vals[i]);
        CHECK_EQ_INT(n, uvarint_len(vals[i]));
        uint64_t got = 0;
        CHECK_EQ_INT(uvarint_get(b, b + n, &got), n);
        CHECK_EQ_U64(got, vals[i]);
        CHECK_EQ_INT(uvarint_get(b, b + n - 1, &got), 0); /* truncated */
    }
    CHECK_EQ_INT(zigzag_dec(zigzag_enc(-5)), -5);
    CHECK_EQ_U64(zigzag_enc(-1), 1);
}

TEST(u64map_insert_delete_churn)
{
    u64map_t m;
    u64map_init(&m);
    for (uint64_t i = 1; i <= 5000; i++)
        u64map_put(&m, hash_u64(i), i);
    for (uint64_t i = 1; i <= 5000; i += 2)
        CHECK(u64map_del(&m, hash_u64(i)));
    CHECK_EQ_INT(m.len, 2500);
    for (uint64_t i = 1; i <= 5000; i++) {
        uint64_t *v = u64map_get(&m, hash_u64(i));
        if (i % 2)
            CHECK(v == NULL);
        else if (!v || *v != i)
            CHECK(!"lost entry after deletions");
    }
    u64map_deinit(&m);
}

TEST(duration_and_size_parse)
{
    int64_t ms;
    err_t err;
    CHECK_OK(duration_parse_ms(STR("90d"), &ms, &err));
    CHECK_EQ_INT(ms, 90LL * 86400000);
    CHECK_OK(duration_parse_ms(STR("1h30m"), &ms, &err));
    CHECK_EQ_INT(ms, 5400000);
    CHECK_OK(duration_parse_ms(STR("100ms"), &ms, &err));
    CHECK_EQ_INT(ms, 100);
    CHECK(duration_parse_ms(STR("5x"), &ms, &err) == ERR_PARSE);
    CHECK(duration_parse_ms(STR("30m1h"), &ms, &err) == ERR_PARSE);
    uint64_t b;
    CHECK_OK(size_parse_bytes(STR("10GiB"), &b, &err));
    CHECK_EQ_U64(b, 10ULL << 30);
    CHECK_OK(size_parse_bytes(STR("512MB"), &b, &err));
    CHECK_EQ_U64(b, 512000000ULL);
    CHECK(size_parse_bytes(STR("lots"), &b, &err) == ERR_PARSE);
}

TEST(rfc3339_parse)
{
    int64_t ns;
    err_t err;
    CHECK_OK(rfc3339_parse_ns(STR("2015-07-01T20:10:51.781Z"), &ns, &err));
    CHECK_EQ_INT(ns, 1435781451781000000LL);
    CHECK_OK(rfc3339_parse_ns(STR("2015-07-01T22:10:51+02:00"), &ns, &err));
    CHECK_EQ_INT(ns, 1435781451000000000LL);
    CHECK(rfc3339_parse_ns(STR("2015-07-01"), &ns, &err) == ERR_PARSE);
    CHECK(rfc3339_parse_ns(STR("9999-12-31T23:59:59Z"), &ns, &err) == ERR_PARSE);
    CHECK(rfc3339_parse_ns(STR("0001-01-01T00:00:00Z"), &ns, &err) == ERR_PARSE);
    char out[32];
    rfc3339_format_ms(out, 1435781451781);
    CHECK_EQ_STR(out, "2015-07-01T20:10:51.781Z");
}

TEST(json_writer_escapes_and_nests)
{
    buf_t b;
    buf_init(&b, 0);
    jw_t w;
    jw_init(&w, &b);
    jw_obj(&w);
    jw_key(&w, "a");
    jw_arr(&w);
    jw_int(&w, 1);
    jw_cstr(&w, "x\"y\n\x01");
    jw_str(&w, STR("bad\xffutf8"));
    jw_end(&w);
    jw_key(&w, "b");
    jw_double(&w, 0.5);
    jw_end(&w);
    CHECK_EQ_STR(buf_cstr(&b),
                 "{\"a\":[1,\"x\\\"y\\n\\u0001\",\"bad\xef\xbf\xbdutf8\"],\"b\":0.5}");
    buf_deinit(&b);
}

TEST(arena_big_and_small)
{
    arena_t a;
    arena_init(&a, 64);
    char *p = arena_alloc(&a, 10);
    memset(p, 1, 10);
    char *big = arena_alloc(&a, 100000);
    memset(big, 2, 100000);
    char *q = arena_alloc(&a, 10);
    memset(q, 3, 10);
    CHECK(p[9] == 1 && big[99999] == 2 && q[0] == 3);
    CHECK(((uintptr_t)q & 15) == 0);
    arena_reset(&a);
    CHECK(arena_alloc(&a, 8) != NULL);
    arena_deinit(&a);
}
