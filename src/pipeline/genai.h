/*
 * genai.h - AI-usage metrics derived from OpenTelemetry GenAI spans and Claude Code events, so
 * that dashboards and alerts need neither TraceQL nor LogQL for tokens, cost and errors:
 *
 *   genai_requests_total{service, model, operation, agent}          completed model requests
 *   genai_tokens_total{service, model, type, agent}                 type: input | output |
 *                                                                   cache_read | cache_creation
 *   genai_cost_usd_total{service, model, agent}                     reported cost, else priced
 *   genai_request_duration_seconds_{bucket,sum,count}{service, model, operation}
 *   genai_errors_total{service, model, error}                       failed model requests
 *   genai_tool_calls_total{service, tool, outcome}                  outcome: success | failure
 *   genai_tool_decisions_total{service, tool, decision}             accept | reject (Claude Code)
 *
 * Spans count when they carry gen_ai.request.model / gen_ai.response.model or
 * gen_ai.operation.name (semantic conventions for GenAI): operation "execute_tool" (or a
 * gen_ai.tool.name) is a tool call, anything else a model request with tokens from
 * gen_ai.usage.input_tokens / output_tokens (and the older prompt_tokens / completion_tokens),
 * duration from the span, an error when the status is ERROR (error = error.type or "error").
 * Log records count by their event name (attribute event.name or the record's event_name) as
 * Claude Code sends them: api_request (model, *_tokens, cost_usd, duration_ms), api_error (model,
 * status_code), tool_result (tool_name, success), tool_decision (tool_name, decision).
 *
 * Cost is the reported one (Claude Code's cost_usd); otherwise, when a price entry's model is a
 * prefix of the request's model (longest prefix wins), tokens x price per million. There is no
 * built-in price list: prices change, and a wrong default would be a wrong answer.
 *
 * Threads: one thread (the loop thread).
 */
#ifndef PIPELINE_GENAI_H
#define PIPELINE_GENAI_H

#include "base/err.h"
#include "pipeline/metreg.h"
#include "proto/otlp.h"

typedef struct genai_price {
    const char *model;                                /* prefix of model names */
    double input, output, cache_read, cache_creation; /* USD per million tokens */
} genai_price_t;

typedef struct genai genai_t;

/* Registers the families in reg (which must outlive the result); prices are copied. */
int genai_new(metreg_t *reg, const genai_price_t *prices, size_t n_prices, genai_t **out,
              err_t *err);
void genai_free(genai_t *g);

/* Decoded requests, borrowed for the call. */
void genai_observe_traces(genai_t *g, const otlp_traces_t *t);
void genai_observe_logs(genai_t *g, const otlp_logs_t *l);

#endif
