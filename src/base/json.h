/*
 * json.h - a streaming JSON writer into a buf_t.
 *
 * Keeps track of commas per nesting level so callers only say what they write:
 *   jw_obj(&w); jw_key(&w, "status"); jw_cstr(&w, "success"); jw_end(&w);
 * Strings are escaped per RFC 8259; invalid UTF-8 bytes are replaced by U+FFFD so the output is
 * always valid JSON whatever the input was.
 */
#ifndef BASE_JSON_H
#define BASE_JSON_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/str.h"

#define JW_MAX_DEPTH 128 /* deeper nesting is written flat-closed; callers bound depth */

typedef struct jw {
    buf_t *b;
    int depth;
    bool first[JW_MAX_DEPTH];  /* no element written yet at this depth */
    char closer[JW_MAX_DEPTH]; /* '}' or ']' for each open level */
    bool after_key;
} jw_t;

void jw_init(jw_t *w, buf_t *b);
void jw_obj(jw_t *w);
void jw_arr(jw_t *w);
/* Closes the innermost object or array. */
void jw_end(jw_t *w);
void jw_key(jw_t *w, const char *k);
void jw_key_str(jw_t *w, str_t k);
void jw_str(jw_t *w, str_t s);
void jw_cstr(jw_t *w, const char *s);
void jw_int(jw_t *w, int64_t v);
/* v as a JSON string ("1700000000000000000"): how Loki, Tempo and OTLP/JSON write nanosecond
 * times, which a double cannot hold exactly. */
void jw_int_str(jw_t *w, int64_t v);
void jw_uint(jw_t *w, uint64_t v);
/* A finite double as a JSON number (shortest round trip); NaN/Inf become null. */
void jw_double(jw_t *w, double v);
void jw_bool(jw_t *w, bool v);
void jw_null(jw_t *w);
/* Writes pre-encoded JSON as one value. */
void jw_raw(jw_t *w, const char *json, size_t n);
/* Appends s escaped (without quotes) to b. */
void json_escape(buf_t *b, str_t s);

#endif
