/*
 * pqt.h - shared by the PromQL conformance runner (runner.c) and its syntax helpers
 * (pqt_syntax.c): the promqltest file language's tokens (../shared/specs/PROMQL-TESTS.md §5-§6).
 */
#ifndef TESTS_PROMQL_PQT_H
#define TESTS_PROMQL_PQT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/str.h"
#include "store/labels.h"

/* A parsed series value sequence; omitted slots (`_`, histogram literals) have omit set. */
typedef struct pqt_values {
    double *v;
    bool *omit;
    size_t n, cap;
    bool hist; /* contains a native histogram literal (not loaded) */
} pqt_values_t;

/* The Prometheus stale marker (NaN with bits 0x7ff0000000000002), and a bit-exact test for it. */
double pqt_stale_nan(void);
bool pqt_is_stale(double d);
/* Go's almost.Equal(a, b, 1e-6) with promqltest's rule that a stale NaN equals only itself. */
bool pqt_almost_equal(double a, double b);

bool pqt_is_space(char c);
str_t pqt_trim(str_t s);
/* Next whitespace-separated word of *s (advancing *s past it); empty at the end. */
str_t pqt_next_word(str_t *s);
/* model.ParseDuration: y w d h m s ms in that order with integers, or "0". -1 on anything else. */
int pqt_parse_duration(str_t s, int64_t *out);
/* Go strconv.Unquote of the "...", '...' or `...` literal at s[*i]; *i moves past it, the value
 * goes to the arena. -1 when malformed. */
int pqt_unquote(str_t s, size_t *i, arena_t *a, str_t *out);
bool pqt_ident_char(char c);
/* A series label part (`name`, `name{a="b"}`, `{a="b"}`, `{"quoted.name", x="y"}`, `{}`) at s[*i]:
 * sorted labels in the arena, labels with empty values dropped. -1 when malformed. */
int pqt_parse_labels(str_t s, size_t *i, arena_t *a, labels_t *out);
/* Appends the value sequence s to sv (heap memory: pqt_values_free). -1 when malformed. */
int pqt_parse_values(str_t s, pqt_values_t *sv);
void pqt_values_free(pqt_values_t *sv);
/* Go parseNumber (ParseInt base 0, then ParseFloat with Inf/NaN): a bare scalar expectation. */
bool pqt_parse_number(str_t s, double *out);
/* %.17g, or "stale" for the stale marker. */
void pqt_fmt_val(double v, char *out, size_t cap);
/* Checks of the functions above; prints failures and returns 0 when all pass. */
int pqt_self_test(void);

#endif
