/*
 * internal.h (ingest) - helpers shared by the ingest handlers; included by nothing outside
 * src/ingest.
 *
 * Snappy block bodies (Prometheus remote write, Loki push) and the plain-text 503 replies for a
 * store that cannot take or make durable a batch. Defined in remote_write.c, where they started.
 */
#ifndef INGEST_INTERNAL_H
#define INGEST_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "base/str.h"
#include "net/http.h"

/* Seconds a client is told to wait (Retry-After) when the store is overloaded. */
#define INGEST_RETRY_AFTER_S "1"

/* Uncompresses a snappy block-format body into the request arena (*out). On failure it has already
 * answered: 400 for a corrupt block, 413 when the uncompressed size exceeds max_bytes; returns
 * false. */
bool ingest__snappy_body(http_req_t *req, str_t body, size_t max_bytes, str_t *out);

/* Answers 503 + Retry-After after db_commit refused a batch (rc ERR_OVERLOAD: the WAL queue is
 * full; otherwise the store is shutting down). */
void ingest__reply_refused(http_req_t *req, int rc);

/* Answers 503 + Retry-After when the commit callback reports the WAL write failed; what names the
 * items ("samples", "log entries"). */
void ingest__reply_not_durable(http_req_t *req, const char *what);

#endif
