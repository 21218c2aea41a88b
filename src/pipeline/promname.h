/*
 * promname.h - OpenTelemetry -> Prometheus names, the way Prometheus' own OTLP receiver builds them
 * (prometheus/otlptranslator, strategy UnderscoreEscapingWithSuffixes; see
 * ../shared/specs/OTLP-NOTES.md §7):
 *   http.server.duration (unit "s", histogram)    -> http_server_duration_seconds
 *   claude_code.token.usage (unit "tokens", sum)  -> claude_code_token_usage_tokens_total
 *   system.memory.utilization (unit "1", gauge)   -> system_memory_utilization_ratio
 * Label names: invalid characters become '_', a leading digit gets "key_", a single leading '_'
 * becomes "key_" ("__x" stays).
 */
#ifndef PIPELINE_PROMNAME_H
#define PIPELINE_PROMNAME_H

#include <stdbool.h>

#include "base/arena.h"
#include "base/str.h"

typedef enum {
    PROMNAME_GAUGE,
    PROMNAME_COUNTER,
    PROMNAME_HISTOGRAM,
    PROMNAME_SUMMARY
} promname_kind_t;

/* Metric family name (without _bucket/_sum/_count, which the caller appends). In arena a. */
str_t promname_metric(arena_t *a, str_t name, str_t unit, promname_kind_t kind);
/* Sanitised label name; returns name itself when already valid. */
str_t promname_label(arena_t *a, str_t name);

#endif
