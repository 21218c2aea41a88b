'use strict';
/*
 * otel_grpc.test.js - OTLP/gRPC against the real binary with clients nobody here wrote: the
 * OpenTelemetry JS SDK's gRPC exporters (@opentelemetry/exporter-*-otlp-grpc, which run on
 * @grpc/grpc-js) and @grpc/grpc-js itself.
 *
 * The exporters send traces, metrics (cumulative and delta) and logs, uncompressed and with
 * gzip, through the same scenarios as otel_sdk.test.js (otel_common.js): everything is read back
 * through the Tempo, Prometheus and Loki APIs and compared exactly with what the SDK recorded.
 * Skillscope's own /metrics proves the gzip flavour really arrived gzip-compressed.
 *
 * A raw grpc-js client then checks the error statuses a gRPC client sees: UNIMPLEMENTED for an
 * unknown method, RESOURCE_EXHAUSTED for a message over --otlp-grpc-max-recv-bytes (set to 1MiB
 * here) and for a gzip message that inflates past it, INVALID_ARGUMENT with what is wrong for
 * garbage protobuf, partial success in the response message, and many concurrent calls over
 * several connections.
 */

const { test } = require('node:test');
const assert = require('node:assert/strict');
const zlib = require('node:zlib');

const grpc = require('@grpc/grpc-js');
const TraceGrpc = require('@opentelemetry/exporter-trace-otlp-grpc');
const MetricGrpc = require('@opentelemetry/exporter-metrics-otlp-grpc');
const LogGrpc = require('@opentelemetry/exporter-logs-otlp-grpc');
const C = require('./otel_common');

const MAX_RECV = 1 << 20;
C.useServer(['--otlp-grpc-max-recv-bytes', '1MiB']);

const url = () => `http://127.0.0.1:${C.ports().grpc}`;
const FLAVOURS = { grpc: 'none', grpcgz: 'gzip' };

/* Skillscope's counter of gRPC request messages by encoding, from its /metrics. */
async function receivedMessages(encoding) {
  const r = await C.get(C.ports().http, '/metrics');
  const re = new RegExp(
    `^skillscope_grpc_received_messages_total\\{encoding="${encoding}"\\} (\\S+)$`, 'm');
  const m = r.body.toString('utf8').match(re);
  return m ? Number(m[1]) : 0;
}

for (const [flavour, compression] of Object.entries(FLAVOURS)) {
  const enc = compression === 'gzip' ? 'gzip' : 'identity';
  test(`traces via gRPC exporter (compression ${compression})`, async (t) => {
    const before = await receivedMessages(enc);
    await C.traceScenario(t, flavour, new TraceGrpc.OTLPTraceExporter({ url: url(), compression }));
    assert.ok(await receivedMessages(enc) > before, `no ${enc} message counted`);
  });
}

for (const [flavour, compression] of Object.entries(FLAVOURS)) {
  for (const temporality of ['cumulative', 'delta']) {
    test(`metrics via gRPC exporter (compression ${compression}), ${temporality} temporality`,
      async (t) => {
        const enc = compression === 'gzip' ? 'gzip' : 'identity';
        const before = await receivedMessages(enc);
        await C.metricScenario(t, flavour, temporality, new MetricGrpc.OTLPMetricExporter({
          url: url(), compression, temporalityPreference: C.temporalityPreference(temporality) }));
        assert.ok(await receivedMessages(enc) >= before + 2, `two ${enc} messages counted`);
      });
  }
}

for (const [flavour, compression] of Object.entries(FLAVOURS)) {
  test(`logs via gRPC exporter (compression ${compression})`, async (t) => {
    const enc = compression === 'gzip' ? 'gzip' : 'identity';
    const before = await receivedMessages(enc);
    await C.logScenario(t, flavour, new LogGrpc.OTLPLogExporter({ url: url(), compression }));
    assert.ok(await receivedMessages(enc) > before, `no ${enc} message counted`);
  });
}

/* ---- raw @grpc/grpc-js client ---- */

const TRACES = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
const METRICS = '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export';
const identity = (b) => b;

function newClient(opts = {}) {
  return new grpc.Client(`127.0.0.1:${C.ports().grpc}`, grpc.credentials.createInsecure(), opts);
}

/* One unary call with raw bytes; resolves to {err: {code, details}} or {reply: Buffer}. */
function unary(client, method, bytes, callOpts = {}) {
  return new Promise((resolve) => {
    client.makeUnaryRequest(method, identity, identity, bytes, new grpc.Metadata(), callOpts,
      (err, reply) => resolve(err ? { err: { code: err.code, details: err.details } } : { reply }));
  });
}

/* Protobuf writer for hand-made requests: varint, length-delimited and fixed64 fields. */
function varint(n) {
  const out = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return Buffer.from(out);
}
const field = (num, wire) => varint((num << 3) | wire);
const bytesField = (num, b) => Buffer.concat([field(num, 2), varint(b.length), Buffer.from(b)]);
const doubleField = (num, d) => {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(d);
  return Buffer.concat([field(num, 1), b]);
};
const fixed64Field = (num, n) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return Buffer.concat([field(num, 1), b]);
};

/* Reads the fields of a protobuf message into {num: [values]} (length-delimited as Buffers). */
function pbFields(buf) {
  const out = {};
  let i = 0;
  const rdVarint = () => {
    let v = 0n;
    let s = 0n;
    for (;;) {
      const b = buf[i++];
      v |= BigInt(b & 0x7f) << s;
      s += 7n;
      if (!(b & 0x80)) return v;
    }
  };
  while (i < buf.length) {
    const key = Number(rdVarint());
    const num = key >> 3;
    const wire = key & 7;
    let val;
    if (wire === 0) val = rdVarint();
    else if (wire === 2) {
      const n = Number(rdVarint());
      val = buf.subarray(i, i + n);
      i += n;
    } else if (wire === 1) { val = buf.subarray(i, i + 8); i += 8; }
    else if (wire === 5) { val = buf.subarray(i, i + 4); i += 4; }
    else throw new Error(`wire type ${wire}`);
    (out[num] = out[num] || []).push(val);
  }
  return out;
}

/* ExportMetricsServiceRequest with one gauge holding the given points (time_unix_nano 0 = none). */
function gaugeRequest(name, points) {
  const dps = points.map(([tNs, v]) => bytesField(1, Buffer.concat([
    tNs ? fixed64Field(3, tNs) : Buffer.alloc(0), doubleField(4, v)])));
  const metric = Buffer.concat([bytesField(1, Buffer.from(name)),
    bytesField(5, Buffer.concat(dps))]);
  const resource = bytesField(1, bytesField(1, Buffer.concat([
    bytesField(1, Buffer.from('service.name')),
    bytesField(2, bytesField(1, Buffer.from('raw-grpc')))])));
  const scopeMetrics = bytesField(2, bytesField(2, metric));
  return bytesField(1, Buffer.concat([resource, scopeMetrics]));
}

test('raw gRPC client: error statuses', async (t) => {
  const client = newClient();
  await t.test('unknown method is UNIMPLEMENTED', async () => {
    const r = await unary(client, '/opentelemetry.proto.collector.trace.v1.TraceService/Nope',
      Buffer.alloc(0));
    assert.equal(r.err && r.err.code, grpc.status.UNIMPLEMENTED, JSON.stringify(r));
    assert.match(r.err.details, /unknown method .*TraceService\/Nope/);
  });
  await t.test('garbage protobuf is INVALID_ARGUMENT saying what is wrong', async () => {
    const r = await unary(client, TRACES, Buffer.from([0x0a, 0x10, 0x01, 0x02]));
    assert.equal(r.err && r.err.code, grpc.status.INVALID_ARGUMENT, JSON.stringify(r));
    assert.match(r.err.details, /invalid OTLP protobuf traces request: .*truncated/);
  });
  await t.test('a message over the limit is RESOURCE_EXHAUSTED', async () => {
    const r = await unary(client, TRACES, Buffer.alloc(MAX_RECV + 1000, 0x0a));
    assert.equal(r.err && r.err.code, grpc.status.RESOURCE_EXHAUSTED, JSON.stringify(r));
    assert.match(r.err.details,
      new RegExp(`larger than max \\(${MAX_RECV + 1000} vs\\. ${MAX_RECV} bytes\\)`));
  });
  await t.test('the same connection still serves after the errors', async () => {
    const r = await unary(client, TRACES, Buffer.alloc(0));
    assert.ok(!r.err, JSON.stringify(r));
    assert.equal(r.reply.length, 0, 'empty ExportTraceServiceResponse');
  });
  client.close();
});

test('raw gRPC client: gzip message inflating past the limit is RESOURCE_EXHAUSTED', async () => {
  const client = newClient({ 'grpc.default_compression_algorithm': 2 }); // gzip
  // 4 MiB of one byte compresses to a few KiB, under the 1 MiB limit on the wire.
  const r = await unary(client, TRACES, Buffer.alloc(4 << 20, 0x0a));
  assert.equal(r.err && r.err.code, grpc.status.RESOURCE_EXHAUSTED, JSON.stringify(r));
  assert.match(r.err.details, /after decompression larger than max/);
  assert.ok(zlib.gzipSync(Buffer.alloc(4 << 20, 0x0a)).length < MAX_RECV);
  client.close();
});

test('raw gRPC client: partial success in the response message', async () => {
  const client = newClient();
  const nowNs = BigInt(Date.now()) * 1000000n;
  const r = await unary(client, METRICS, gaugeRequest('raw_grpc_partial', [[nowNs, 42.5], [0, 7]]));
  assert.ok(!r.err, JSON.stringify(r));
  const resp = pbFields(r.reply);
  assert.ok(resp[1], `partial_success expected, reply ${r.reply.toString('hex')}`);
  const ps = pbFields(resp[1][0]);
  assert.equal(ps[1][0], 1n, 'rejected_data_points');
  assert.match(ps[2][0].toString('utf8'), /raw_grpc_partial.*without time_unix_nano/);
  const q = await C.getJson('/api/v1/query', { query: 'raw_grpc_partial',
    time: (Date.now() / 1000 + 1).toFixed(3) });
  assert.equal(q.status, 200, q.text);
  assert.deepEqual(q.json.data.result.map((s) => s.value[1]), ['42.5']);
  client.close();
});

test('raw gRPC client: 400 concurrent calls over 4 connections', async () => {
  const clients = [0, 1, 2, 3].map(() => newClient({ 'grpc.use_local_subchannel_pool': 1 }));
  const t0 = BigInt(Date.now() - 60000) * 1000000n;
  const calls = [];
  for (let i = 0; i < 400; i++) {
    calls.push(unary(clients[i % 4], METRICS,
      gaugeRequest(`raw_grpc_concurrent_${i % 40}`, [[t0 + BigInt(i) * 1000000n, i]])));
  }
  const res = await Promise.all(calls);
  const failed = res.filter((r) => r.err);
  assert.equal(failed.length, 0, JSON.stringify(failed.slice(0, 3)));
  for (const r of res) assert.equal(r.reply.length, 0);
  const q = await C.getJson('/api/v1/query', { query: '{__name__=~"raw_grpc_concurrent_.*"}[5m]',
    time: (Date.now() / 1000).toFixed(3) });
  assert.equal(q.status, 200, q.text);
  assert.equal(q.json.data.result.length, 40);
  const got = q.json.data.result.flatMap((s) => s.values.map((v) => Number(v[1])));
  assert.deepEqual(got.sort((a, b) => a - b), [...Array(400).keys()]);
  for (const c of clients) c.close();
});

/* Last: a clean SIGTERM shutdown, and (for sanitizer builds) no ASan/UBSan/LSan report. */
test('server stops cleanly on SIGTERM', () => C.stopScenario());
