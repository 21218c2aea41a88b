/*
 * labels.h - label sets and label matchers, the vocabulary of every store and query.
 *
 * A label set is sorted by name with unique names (Prometheus' rule); metrics carry __name__ in it.
 * Matchers use PCRE2 for =~ and !~, fully anchored (^(?:re)$) as Prometheus and Loki do, with a
 * match limit so a pathological regex cannot hang a query.
 */
#ifndef STORE_LABELS_H
#define STORE_LABELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/json.h"
#include "base/str.h"

typedef struct label {
    str_t name;
    str_t value;
} label_t;

typedef struct labels {
    label_t *v;
    size_t n;
} labels_t;

/* Sorts by name; returns ERR_DUPLICATE if a name occurs twice (after sorting). */
int labels_sort(labels_t *ls);
/* Lexicographic over (name, value) pairs, as Prometheus orders series. */
int labels_cmp(const labels_t *a, const labels_t *b);
bool labels_eq(const labels_t *a, const labels_t *b);
/* Hash of a sorted label set; equal sets hash equal. Never 0. */
uint64_t labels_hash(const labels_t *ls);
/* Value for name, or an empty str_t (ptr NULL) when absent. */
str_t labels_get(const labels_t *ls, const char *name);
/* Deep copy into the arena. */
labels_t labels_copy(const labels_t *ls, arena_t *a);
/* {"a": "b", "c": "d"}: a label set as the Prometheus, Loki and Tempo APIs write one (ls may be
 * NULL: {}). */
void labels_write_json(jw_t *w, const labels_t *ls);
/* {a="b", c="d"} with Go-style escapes, for logs and errors. */
void labels_format(buf_t *out, const labels_t *ls);
/* Binary form used by the WAL and blocks: uvarint n, then n x (uvarint len, name, uvarint len,
 * value). */
void labels_encode(buf_t *out, const labels_t *ls);
/* Decodes what labels_encode wrote from [*p, end), advancing *p; strings point into the input. */
int labels_decode(const uint8_t **p, const uint8_t *end, arena_t *a, labels_t *out);
/* True if name matches [a-zA-Z_][a-zA-Z0-9_]*. */
bool label_name_valid(str_t name);

typedef enum match_type { MATCH_EQ, MATCH_NEQ, MATCH_RE, MATCH_NRE } match_type_t;

typedef struct matcher {
    match_type_t type;
    str_t name;
    str_t value;
    void *re;       /* pcre2_code * for RE/NRE */
    void *re_match; /* pcre2_match_data * */
} matcher_t;

/* Compiles the regex for RE/NRE. ERR_PARSE with the regex error and offset when invalid.
 * name/value are borrowed: keep them alive as long as the matcher. */
int matcher_init(matcher_t *m, match_type_t type, str_t name, str_t value, err_t *err);
void matcher_deinit(matcher_t *m);
bool matcher_matches(const matcher_t *m, str_t value);
/* True if the matcher accepts the empty string (so it also selects series lacking the label). */
bool matcher_matches_empty(const matcher_t *m);

/*
 * Parses a series selector: `metric`, `metric{a="b"}`, `{a="b", c=~"d.*", e!="", f!~"g"}`, with
 * PromQL string escapes (double, single or back quotes). A leading metric name becomes a
 * __name__ equality matcher. Matchers and their strings live in the arena; call matchers_deinit
 * to release compiled regexes. Errors are positioned: "1:12: unexpected character '}'".
 */
int matchers_parse(str_t sel, arena_t *a, matcher_t **out, size_t *n_out, err_t *err);
void matchers_deinit(matcher_t *ms, size_t n);
/* True if every matcher accepts the label set (a missing label reads as ""). */
bool matchers_match(const matcher_t *ms, size_t n, const labels_t *ls);

#endif
