/*
 * fmtnum.h - numbers formatted the way Go (and so Prometheus, Loki, Tempo) format them.
 * C printf has no shortest-round-trip mode; these do.
 */
#ifndef BASE_FMTNUM_H
#define BASE_FMTNUM_H

#include <stddef.h>
#include <stdint.h>

#define FMTNUM_MAX 400 /* fmt_float_f of 1e308 or 5e-324 is ~330 bytes */

/* Go strconv.FormatFloat(f, 'f'|'e' chosen as Prometheus does, -1, 64): "1", "0.1", "1e-07",
 * "1e+21", "NaN", "+Inf", "-Inf". Writes a NUL-terminated string to out; returns its length. */
size_t fmt_float_prom(char *out, double f);
/* Go strconv.FormatFloat(f, 'f', -1, 64): never an exponent ("0.0000001"); NaN/+Inf/-Inf. */
size_t fmt_float_f(char *out, double f);
/* Go strconv.FormatFloat(f, 'e', -1, 64): "1e+00", "4.2e+01". */
size_t fmt_float_e(char *out, double f);
/* Prometheus JSON sample timestamp from ms: "1435781451.781", "1435781430.050", "1700000000". */
size_t fmt_ts_prom(char *out, int64_t ms);

#endif
