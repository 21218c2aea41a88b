/*
 * remote_write.h - the Prometheus remote-write receiver: POST /api/v1/write.
 *
 * Accepts snappy-compressed (block format) prometheus.WriteRequest (remote write 1.0) and
 * io.prometheus.write.v2.Request (2.0), chosen by the Content-Type proto= parameter as
 * ../shared/specs/PROM-API.md §3 prescribes. Answers 204 once the samples are durable in the WAL,
 * 400 (plain text) for invalid requests or samples the store refused, 415 for other content
 * types or encodings, 503 + Retry-After when overloaded.
 */
#ifndef INGEST_REMOTE_WRITE_H
#define INGEST_REMOTE_WRITE_H

#include "base/err.h"
#include "net/http.h"
#include "store/db.h"

/* Registers POST /api/v1/write on every listener. db must outlive srv's routes. */
int remote_write_register(http_server_t *srv, db_t *db, err_t *err);

#endif
