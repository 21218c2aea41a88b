'use strict';
/*
 * otel_sdk.test.js - the OpenTelemetry JS SDK and its OTLP/HTTP exporters against the real binary.
 *
 * Why: our own tests only prove we understand our own encoder. Here a client nobody on the project
 * wrote (the official JS SDK with its http/json and http/protobuf exporters) sends traces, metrics
 * and logs, and everything is read back through the Prometheus, Tempo and Loki APIs and compared
 * exactly with what the SDK recorded.
 *
 * How: one server (otel_common.js: `skillscope serve` on free loopback ports, temp data dir,
 * killed by PID at the end). The json flavour exports to the OTLP/HTTP port, the protobuf flavour
 * to the main port. Exporters are wrapped to record every ExportResult and the exported items
 * (exact span and log timestamps). Metrics run in four providers: {json, proto} x {cumulative,
 * delta} temporality, two collection phases each; expected Prometheus names follow OTLP-NOTES.md
 * §7 and are written out literally in otel_common.js.
 */

const { test } = require('node:test');

const TraceJson = require('@opentelemetry/exporter-trace-otlp-http');
const TraceProto = require('@opentelemetry/exporter-trace-otlp-proto');
const MetricJson = require('@opentelemetry/exporter-metrics-otlp-http');
const MetricProto = require('@opentelemetry/exporter-metrics-otlp-proto');
const LogJson = require('@opentelemetry/exporter-logs-otlp-http');
const LogProto = require('@opentelemetry/exporter-logs-otlp-proto');
const C = require('./otel_common');

C.useServer();

const FLAVOURS = {
  json: { port: () => C.ports().otlp, Trace: TraceJson, Metric: MetricJson, Log: LogJson },
  proto: { port: () => C.ports().http, Trace: TraceProto, Metric: MetricProto, Log: LogProto },
};

for (const [flavour, F] of Object.entries(FLAVOURS)) {
  test(`traces via ${flavour} exporter`, (t) => C.traceScenario(t, flavour,
    new F.Trace.OTLPTraceExporter({ url: `http://127.0.0.1:${F.port()}/v1/traces` })));
}

for (const [flavour, F] of Object.entries(FLAVOURS)) {
  for (const temporality of ['cumulative', 'delta']) {
    test(`metrics via ${flavour} exporter, ${temporality} temporality`, (t) =>
      C.metricScenario(t, flavour, temporality, new F.Metric.OTLPMetricExporter({
        url: `http://127.0.0.1:${F.port()}/v1/metrics`,
        temporalityPreference: C.temporalityPreference(temporality) })));
  }
}

for (const [flavour, F] of Object.entries(FLAVOURS)) {
  test(`logs via ${flavour} exporter`, (t) => C.logScenario(t, flavour,
    new F.Log.OTLPLogExporter({ url: `http://127.0.0.1:${F.port()}/v1/logs` })));
}

/* Last: a clean SIGTERM shutdown, and (for sanitizer builds) no ASan/UBSan/LSan report. */
test('server stops cleanly on SIGTERM', () => C.stopScenario());
