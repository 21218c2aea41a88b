/*
 * otlp.h (ingest) - the transport-independent half of OTLP ingest, shared by OTLP/HTTP and
 * OTLP/gRPC: decode a request body, convert it into a storage batch, and encode the responses
 * (success with optional partial success, or a google.rpc.Status error) in the request's encoding.
 */
#ifndef INGEST_OTLP_H
#define INGEST_OTLP_H

#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "pipeline/convert.h"
#include "store/db.h"

typedef enum { OTLP_SIGNAL_TRACES, OTLP_SIGNAL_METRICS, OTLP_SIGNAL_LOGS } otlp_signal_t;
typedef enum { OTLP_ENC_PROTOBUF, OTLP_ENC_JSON } otlp_enc_t;

/* "spans", "metric points", "log records": what the signal's items are called in messages. */
const char *ingest_signal_items(otlp_signal_t sig);
/* "traces", "metrics", "logs": the label value used in Skillscope's own metrics. */
const char *ingest_signal_name(otlp_signal_t sig);

/*
 * Decodes body and appends its items to a new batch (*out, owned by the caller, possibly empty).
 * ERR_PARSE with err saying what is malformed; then *out is NULL. Items refused during conversion
 * are counted in res (partial success). Spans are also counted in the span metrics
 * (ingest/derived.h) here, before the commit: a request the store then refuses with 503 and the
 * client retries is counted twice. Scratch memory comes from a; body must stay alive only
 * during the call (the batch copies what it keeps).
 */
int ingest_otlp_prepare(otlp_signal_t sig, otlp_enc_t enc, const uint8_t *body, size_t n,
                        arena_t *a, db_batch_t **out, convert_result_t *res, err_t *err);

/* Export<Signal>ServiceResponse in the given encoding; rejected 0 and an empty msg gives the
 * empty success body ("" in protobuf, "{}" in JSON). */
void ingest_otlp_response(buf_t *out, otlp_signal_t sig, otlp_enc_t enc, uint64_t rejected,
                          const char *msg);
/* google.rpc.Status{code, message} in the given encoding. */
void ingest_otlp_status(buf_t *out, otlp_enc_t enc, int32_t grpc_code, const char *msg);

/* The items of the signal that the store refused in a commit (for metrics: samples, which are at
 * most the points sent). */
uint64_t ingest_otlp_store_rejected(otlp_signal_t sig, const db_commit_result_t *res);
/* Counts what a request brought in Skillscope's own metrics. */
void ingest_count(otlp_signal_t sig, uint64_t accepted, uint64_t refused);

#endif
