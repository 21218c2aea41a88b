/*
 * otlp_grpc.h - OTLP/gRPC: the unary Export methods of the trace, metrics and logs collector
 * services, registered on the gRPC server.
 */
#ifndef INGEST_OTLP_GRPC_H
#define INGEST_OTLP_GRPC_H

#include "base/err.h"
#include "net/grpc.h"
#include "store/db.h"

#define OTLP_GRPC_TRACES_PATH "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
#define OTLP_GRPC_METRICS_PATH "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
#define OTLP_GRPC_LOGS_PATH "/opentelemetry.proto.collector.logs.v1.LogsService/Export"

/* Registers the three Export methods; db must outlive srv. */
int otlp_grpc_register(grpc_server_t *srv, db_t *db, err_t *err);

#endif
