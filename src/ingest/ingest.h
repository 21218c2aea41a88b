/*
 * ingest.h - registers every ingest endpoint on the HTTP server.
 *
 * OTLP/HTTP: POST /v1/traces, /v1/metrics, /v1/logs on every listener (the OTLP port and the main
 * port), plus the paths other backends use for the same bodies (/otlp/v1/traces etc. as Loki and
 * Tempo serve them, /api/v1/otlp/v1/metrics as Prometheus does), so exporters configured for those
 * work unchanged.
 */
#ifndef INGEST_INGEST_H
#define INGEST_INGEST_H

#include "base/err.h"
#include "net/http.h"
#include "store/db.h"

/* db must outlive srv's routes. */
int ingest_register(http_server_t *srv, db_t *db, err_t *err);

#endif
