/*
 * test.h - the unit test harness.
 *
 *   TEST(wal_replays_torn_tail) { ... CHECK_EQ_INT(got, 3); ... }
 *
 * Each TEST registers itself at load time under the suite named after its file (test_wal.c ->
 * "wal"), so adding a test file needs no edit elsewhere. CHECK_* print file:line and both values
 * and mark the test failed without stopping it; REQUIRE_* also return from the test. The runner
 * (main.c) prints "N passed, N failed" last and exits non-zero on any failure; `tests/unit/run
 * SUITE [TEST]` runs a subset.
 */
#ifndef TEST_H
#define TEST_H

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef void (*test_fn)(void);
void test_register(const char *file, const char *name, test_fn fn);
void test_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A fresh empty directory under $TMPDIR for this test; removed after the test passes. */
const char *test_tmpdir(void);

#define TEST(name)                                                                                 \
    static void test_##name(void);                                                                 \
    __attribute__((constructor)) static void reg_##name(void)                                      \
    {                                                                                              \
        test_register(__FILE__, #name, test_##name);                                               \
    }                                                                                              \
    static void test_##name(void)

extern int test_failed_now;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            test_fail_at(__FILE__, __LINE__, "CHECK(%s) failed", #cond);                           \
    } while (0)
#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            test_fail_at(__FILE__, __LINE__, "REQUIRE(%s) failed", #cond);                         \
            return;                                                                                \
        }                                                                                          \
    } while (0)
#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_)                                                                              \
            test_fail_at(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, a_, b_);            \
    } while (0)
#define CHECK_EQ_U64(a, b)                                                                         \
    do {                                                                                           \
        unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b);             \
        if (a_ != b_)                                                                              \
            test_fail_at(__FILE__, __LINE__, "%s == %s: %llu != %llu", #a, #b, a_, b_);            \
    } while (0)
#define CHECK_EQ_DBL(a, b)                                                                         \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(a_ == b_ || (isnan(a_) && isnan(b_))))                                               \
            test_fail_at(__FILE__, __LINE__, "%s == %s: %.17g != %.17g", #a, #b, a_, b_);          \
    } while (0)
#define CHECK_EQ_STR(a, b)                                                                         \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                                     \
            test_fail_at(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b,                 \
                         a_ ? a_ : "(null)", b_ ? b_ : "(null)");                                  \
    } while (0)
/* Compares a str_t with a C string. */
#define CHECK_EQ_STRN(s, cs)                                                                       \
    do {                                                                                           \
        str_t s_ = (s);                                                                            \
        const char *c_ = (cs);                                                                     \
        if (s_.len != strlen(c_) || (s_.len && memcmp(s_.ptr, c_, s_.len) != 0))                   \
            test_fail_at(__FILE__, __LINE__, "%s == %s: \"%.*s\" != \"%s\"", #s, #cs, (int)s_.len, \
                         s_.ptr ? s_.ptr : "", c_);                                                \
    } while (0)
#define CHECK_OK(expr)                                                                             \
    do {                                                                                           \
        int r_ = (expr);                                                                           \
        if (r_ != 0)                                                                               \
            test_fail_at(__FILE__, __LINE__, "%s returned %d", #expr, r_);                         \
    } while (0)
#define REQUIRE_OK(expr)                                                                           \
    do {                                                                                           \
        int r_ = (expr);                                                                           \
        if (r_ != 0) {                                                                             \
            test_fail_at(__FILE__, __LINE__, "%s returned %d", #expr, r_);                         \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* xorshift64: the tests' deterministic pseudo-random numbers (state must not be 0). */
static inline uint64_t test_xorshift(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

#endif
