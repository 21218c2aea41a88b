/*
 * clock.h - wall and monotonic time, and the duration/size/time strings users type.
 * Timestamps are int64 ms (or ns, named _ns). Named clock.h because <time.h> is taken.
 */
#ifndef BASE_CLOCK_H
#define BASE_CLOCK_H

#include <stdint.h>

#include "base/err.h"
#include "base/str.h"

int64_t clock_now_ms(void);
int64_t clock_now_ns(void);
/* Monotonic, for measuring elapsed time. */
int64_t clock_mono_ns(void);

/*
 * Prometheus duration syntax: one or more <number><unit> with units y w d h m s ms (e.g. "1h30m",
 * "90d", "100ms"), in decreasing order, each at most once. Result in ms. ERR_PARSE with a message
 * on anything else.
 */
int duration_parse_ms(str_t s, int64_t *ms, err_t *err);
/* "10GiB", "512MB", "100KiB", "1024" (bytes), "2TB". Binary (KiB...) and decimal (KB...) units. */
int size_parse_bytes(str_t s, uint64_t *bytes, err_t *err);
/* RFC3339 / RFC3339Nano ("2015-07-01T20:10:51.781Z", "...+02:00") to ns since epoch. */
int rfc3339_parse_ns(str_t s, int64_t *ns, err_t *err);
/* Writes "2026-11-22T00:15:01.123Z" (ms precision, UTC) to out (at least 32 bytes). */
void rfc3339_format_ms(char *out, int64_t ms);

#endif
