/*
 * servicegraph.h - service-graph metrics under Tempo's names, from pairs of spans that cross a
 * service boundary:
 *
 *   traces_service_graph_request_total{client, server, connection_type}
 *   traces_service_graph_request_failed_total{client, server, connection_type}
 *   traces_service_graph_request_server_seconds_{bucket,sum,count}{client, server, connection_type}
 *   traces_service_graph_request_client_seconds_{bucket,sum,count}{client, server, connection_type}
 *   traces_service_graph_unpaired_spans_total{client} or {server}
 *
 * A CLIENT (or PRODUCER) span and the SERVER (or CONSUMER) span whose parent it is form an edge
 * from the client's service to the server's; connection_type is "messaging_system" for
 * producer/consumer pairs and absent otherwise. An edge fails when either side has status ERROR.
 * The two halves may arrive in different requests: a half waits up to wait_ms (Tempo's 10 s) for
 * its peer, then counts as unpaired. At most max_pending halves wait; more are dropped (counted
 * in servicegraph_dropped).
 *
 * Threads: one thread (the loop thread).
 */
#ifndef PIPELINE_SERVICEGRAPH_H
#define PIPELINE_SERVICEGRAPH_H

#include "base/err.h"
#include "pipeline/metreg.h"
#include "proto/otlp.h"

typedef struct servicegraph servicegraph_t;

/* wait_ms 0 = 10 s; max_pending 0 = 10,000. reg must outlive the result. */
int servicegraph_new(metreg_t *reg, int64_t wait_ms, size_t max_pending, servicegraph_t **out,
                     err_t *err);
void servicegraph_free(servicegraph_t *sg);

/* Pairs the client/server spans of t (borrowed) seen at now_ms. */
void servicegraph_observe(servicegraph_t *sg, const otlp_traces_t *t, int64_t now_ms);
/* Counts the halves that waited longer than wait_ms as unpaired and forgets them. */
void servicegraph_expire(servicegraph_t *sg, int64_t now_ms);

size_t servicegraph_pending(const servicegraph_t *sg);
uint64_t servicegraph_dropped(const servicegraph_t *sg);

#endif
