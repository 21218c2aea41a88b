'use strict';
/*
 * otel_common.js - what the OpenTelemetry SDK interop tests share: one `skillscope serve` on free
 * loopback ports (temp data dir, stopped by PID), HTTP helpers for the query APIs, an exporter
 * wrapper that records every ExportResult and exported item, and the three scenarios (traces,
 * metrics in a given temporality, logs) that send through a given exporter and read everything
 * back through the Tempo, Prometheus and Loki APIs, comparing exactly with what the SDK recorded.
 * otel_sdk.test.js runs them over OTLP/HTTP (json, protobuf), otel_grpc.test.js over OTLP/gRPC.
 *
 * A scenario's `flavour` names its data (service names, metric prefixes), so several flavours can
 * share one server without seeing each other's series.
 */

const { before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const api = require('@opentelemetry/api');
const { SeverityNumber } = require('@opentelemetry/api-logs');
const { ExportResultCode } = require('@opentelemetry/core');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { BasicTracerProvider, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { AggregationTemporality, MeterProvider, PeriodicExportingMetricReader } = require('@opentelemetry/sdk-metrics');
const { LoggerProvider, SimpleLogRecordProcessor } = require('@opentelemetry/sdk-logs');
const { AggregationTemporalityPreference } = require('@opentelemetry/exporter-metrics-otlp-http');

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = process.env.SKILLSCOPE_BIN || path.join(ROOT, 'skillscope');

let server = null;
let ports = null;
let dataDir = null;
let logPath = null;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function get(port, p, headers = {}) {
  const res = await fetch(`http://127.0.0.1:${port}${p}`, { headers });
  const buf = Buffer.from(await res.arrayBuffer());
  return { status: res.status, ctype: res.headers.get('content-type') || '', body: buf };
}

async function getJson(p, params) {
  const q = new URLSearchParams(params).toString();
  const r = await get(ports.http, q ? `${p}?${q}` : p);
  let j = null;
  try {
    j = JSON.parse(r.body.toString('utf8'));
  } catch (e) {
    j = null;
  }
  return { status: r.status, json: j, text: r.body.toString('utf8').slice(0, 500) };
}

function logTail() {
  try {
    return fs.readFileSync(logPath, 'utf8').slice(-1500);
  } catch (e) {
    return '(no log)';
  }
}

let extraArgs = [];

async function startServer() {
  dataDir = fs.mkdtempSync(path.join(process.env.SKILLSCOPE_INTEROP_TMP || os.tmpdir(), 'ss-interop-'));
  logPath = path.join(dataDir, 'server.log');
  ports = { http: await freePort(), otlp: await freePort(), grpc: await freePort() };
  const out = fs.openSync(logPath, 'w');
  server = spawn(BIN, ['serve', '--data-dir', path.join(dataDir, 'data'), '--listen', '127.0.0.1',
    '--http-port', String(ports.http), '--otlp-http-port', String(ports.otlp),
    '--otlp-grpc-port', String(ports.grpc), ...extraArgs], { stdio: ['ignore', out, out] });
  if (process.env.SKILLSCOPE_INTEROP_PIDS) {
    fs.appendFileSync(process.env.SKILLSCOPE_INTEROP_PIDS, `${server.pid}\n`);
  }
  let exited = null;
  server.on('exit', (code, sig) => { exited = `${code} ${sig}`; });
  const t0 = Date.now();
  for (;;) {
    if (exited) throw new Error(`server exited (${exited}) before ready: ${logTail()}`);
    try {
      const r = await get(ports.http, '/-/ready');
      if (r.status === 200) break;
    } catch (e) { /* not listening yet */ }
    if (Date.now() - t0 > 10000) throw new Error(`server not ready after 10 s: ${logTail()}`);
    await sleep(20);
  }
}

async function stopServer() {
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    const t0 = Date.now();
    while (server.exitCode === null && server.signalCode === null && Date.now() - t0 < 10000) {
      await sleep(50);
    }
    if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
  }
  if (!process.env.INTEROP_KEEP && dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
}

/* Starts the server (with extra `skillscope serve` flags) before the file's tests and stops it
 * after them. */
function useServer(args = []) {
  extraArgs = args;
  before(startServer);
  after(stopServer);
}

/* Wraps an exporter: records each ExportResult and the items it exported. */
function recording(inner) {
  const rec = { results: [], items: [], pending: 0 };
  /* Resolves once every export started so far has called back (SimpleLogRecordProcessor's
   * forceFlush does not wait for in-flight exports). */
  rec.settled = async () => {
    const t0 = Date.now();
    while (rec.pending > 0 && Date.now() - t0 < 15000) await sleep(10);
  };
  const wrapper = {
    export(items, cb) {
      rec.items.push(...(Array.isArray(items) ? items : [items]));
      rec.pending++;
      inner.export(items, (res) => { rec.results.push(res); rec.pending--; cb(res); });
    },
    shutdown: () => inner.shutdown(),
    forceFlush: () => (inner.forceFlush ? inner.forceFlush() : Promise.resolve()),
  };
  if (inner.selectAggregationTemporality) {
    wrapper.selectAggregationTemporality = (k) => inner.selectAggregationTemporality(k);
  }
  if (inner.selectAggregation) wrapper.selectAggregation = (k) => inner.selectAggregation(k);
  return { wrapper, rec };
}

function assertAllExportsOk(rec, what) {
  assert.ok(rec.results.length > 0, `${what}: nothing was exported`);
  for (const r of rec.results) {
    assert.equal(r.code, ExportResultCode.SUCCESS,
      `${what}: export failed: ${r.error && (r.error.message || r.error)}`);
  }
}

const hrToNs = (hr) => (BigInt(hr[0]) * 1000000000n + BigInt(hr[1])).toString();

/* OTLP/JSON attribute list (or protobuf-decoded) -> {key: plain JS value}. */
function attrMap(list) {
  const out = {};
  for (const kv of list || []) out[kv.key] = anyValue(kv.value || {});
  return out;
}

function anyValue(v) {
  if ('stringValue' in v) return v.stringValue;
  if ('boolValue' in v) return v.boolValue;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return Number(v.doubleValue);
  if ('arrayValue' in v) return ((v.arrayValue || {}).values || []).map(anyValue);
  if ('kvlistValue' in v) return attrMap((v.kvlistValue || {}).values);
  if ('bytesValue' in v) return v.bytesValue;
  return null;
}

function typeOf(v) {
  return Object.keys(v || {}).find((k) => k.endsWith('Value'));
}

/* Sends a root and a child span through exporter and reads the trace back from /api/traces. */
async function traceScenario(t, flavour, exporter) {
  const { wrapper, rec } = recording(exporter);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': `interop-traces-${flavour}`,
      'deployment.environment': 'interop' }),
    spanProcessors: [new SimpleSpanProcessor(wrapper)],
  });
  const tracer = provider.getTracer('interop-tracer', '1.2.3');
  const linked = { traceId: 'a'.repeat(31) + '1', spanId: 'b'.repeat(15) + '2',
    traceFlags: api.TraceFlags.SAMPLED };
  const root = tracer.startSpan('root-op', {
    kind: api.SpanKind.SERVER,
    attributes: { 'http.method': 'GET', 'http.status_code': 200, ratio: 0.5, ok: true,
      tags: ['a', 'b'] },
    links: [{ context: linked, attributes: { 'link.reason': 'retry' } }],
  });
  root.addEvent('ev1', { 'ev.attr': 'x', 'ev.n': 7 });
  root.setStatus({ code: api.SpanStatusCode.OK });
  const ctx = api.trace.setSpan(api.ROOT_CONTEXT, root);
  const child = tracer.startSpan('child-op', { kind: api.SpanKind.CLIENT,
    attributes: { 'db.system': 'sqlite' } }, ctx);
  child.setStatus({ code: api.SpanStatusCode.ERROR, message: 'bad' });
  child.end();
  root.end();
  await provider.forceFlush();
  await rec.settled();
  assertAllExportsOk(rec, 'trace export');
  const traceId = root.spanContext().traceId;
  const sent = Object.fromEntries(rec.items.map((s) => [s.name, s]));

  const r = await get(ports.http, `/api/traces/${traceId}`);
  assert.equal(r.status, 200, `GET /api/traces/${traceId}: ${r.body.toString().slice(0, 300)}`);
  const j = JSON.parse(r.body.toString('utf8'));
  // Tempo's v1 shape: OTLP/JSON resource spans under the key "batches".
  await t.test('answer is Tempo v1 JSON {"batches":[...]}', () => {
    assert.ok(Array.isArray(j.batches), `top-level keys: ${Object.keys(j)}`);
  });
  const resourceSpans = j.batches || [];
  const spans = [];
  for (const rs of resourceSpans) {
    for (const ss of rs.scopeSpans || []) {
      for (const sp of ss.spans || []) spans.push({ rs, ss, sp });
    }
  }
  await t.test('two spans', () => assert.equal(spans.length, 2));
  const byName = Object.fromEntries(spans.map((x) => [x.sp.name, x]));
  await t.test('root span', () => {
    const { rs, ss, sp } = byName['root-op'];
    assert.equal(sp.traceId.toLowerCase(), traceId);
    assert.equal(sp.spanId.toLowerCase(), root.spanContext().spanId);
    assert.ok(!sp.parentSpanId, `root has no parent, got ${sp.parentSpanId}`);
    assert.equal(Number(sp.kind), 2);
    assert.equal(String(sp.startTimeUnixNano), hrToNs(sent['root-op'].startTime));
    assert.equal(String(sp.endTimeUnixNano), hrToNs(sent['root-op'].endTime));
    assert.deepEqual(attrMap(sp.attributes), { 'http.method': 'GET', 'http.status_code': 200,
      ratio: 0.5, ok: true, tags: ['a', 'b'] });
    const types = Object.fromEntries(sp.attributes.map((a) => [a.key, typeOf(a.value)]));
    assert.deepEqual(types, { 'http.method': 'stringValue', 'http.status_code': 'intValue',
      ratio: 'doubleValue', ok: 'boolValue', tags: 'arrayValue' });
    assert.equal(sp.events.length, 1);
    assert.equal(sp.events[0].name, 'ev1');
    assert.equal(String(sp.events[0].timeUnixNano), hrToNs(sent['root-op'].events[0].time));
    assert.deepEqual(attrMap(sp.events[0].attributes), { 'ev.attr': 'x', 'ev.n': 7 });
    assert.equal(sp.links.length, 1);
    assert.equal(sp.links[0].traceId.toLowerCase(), linked.traceId);
    assert.equal(sp.links[0].spanId.toLowerCase(), linked.spanId);
    assert.deepEqual(attrMap(sp.links[0].attributes), { 'link.reason': 'retry' });
    assert.equal(Number((sp.status || {}).code), 1);
    assert.equal(attrMap(rs.resource.attributes)['service.name'], `interop-traces-${flavour}`);
    assert.equal(attrMap(rs.resource.attributes)['deployment.environment'], 'interop');
    assert.equal(ss.scope.name, 'interop-tracer');
    assert.equal(ss.scope.version, '1.2.3');
  });
  await t.test('child span', () => {
    const { sp } = byName['child-op'];
    assert.equal(sp.parentSpanId.toLowerCase(), root.spanContext().spanId);
    assert.equal(sp.spanId.toLowerCase(), child.spanContext().spanId);
    assert.equal(Number(sp.kind), 3);
    assert.equal(String(sp.startTimeUnixNano), hrToNs(sent['child-op'].startTime));
    assert.deepEqual(attrMap(sp.attributes), { 'db.system': 'sqlite' });
    assert.equal(Number(sp.status.code), 2);
    assert.equal(sp.status.message, 'bad');
  });
  await provider.shutdown();
}

/* ---- metrics ---- */

function promSel(name, labels) {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  return `${name}{${parts.join(',')}}`;
}

/* All samples of one series in the last 15 minutes: [[ms, "value"], ...]. */
async function samples(name, labels) {
  const sel = promSel(name, labels);
  const r = await getJson('/api/v1/query', { query: `${sel}[15m]`, time: (Date.now() / 1000 + 5).toFixed(3) });
  assert.equal(r.status, 200, `${sel}: ${r.text}`);
  assert.equal(r.json.data.resultType, 'matrix');
  assert.equal(r.json.data.result.length, 1, `${sel}: one series expected, got ${JSON.stringify(r.json.data.result).slice(0, 400)}`);
  return r.json.data.result[0].values.map(([t, v]) => [Math.round(t * 1000), v]);
}

/* Values with consecutive repeats removed (a cumulative series re-exported unchanged). */
function steps(vals) {
  const out = [];
  for (const [, v] of vals) if (out[out.length - 1] !== v) out.push(v);
  return out;
}

/* The preference to give a metric exporter for 'cumulative' or 'delta'. */
function temporalityPreference(temporality) {
  return temporality === 'delta'
    ? AggregationTemporalityPreference.DELTA : AggregationTemporalityPreference.CUMULATIVE;
}

/* A counter, an up-down counter, a gauge and a histogram in two collection phases, exported by
 * exporter (made with temporalityPreference(temporality)) and read back with /api/v1/query. */
async function metricScenario(t, flavour, temporality, exporter) {
  const { wrapper, rec } = recording(exporter);
  const reader = new PeriodicExportingMetricReader({ exporter: wrapper,
    exportIntervalMillis: 3600000, exportTimeoutMillis: 10000 });
  const inst = `i-${flavour}-${temporality}`;
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ 'service.name': 'interop-metrics',
      'service.namespace': 'ns', 'service.instance.id': inst }),
    readers: [reader],
  });
  const meter = provider.getMeter('interop-meter', '0.1.0');
  const p = `interop.${flavour}.${temporality}`;
  const counter = meter.createCounter(`${p}.requests`, { unit: '{request}' });
  const updown = meter.createUpDownCounter(`${p}.queue`);
  const gauge = meter.createGauge(`${p}.temperature`, { unit: 'Cel' });
  const hist = meter.createHistogram(`${p}.latency`, { unit: 'ms',
    advice: { explicitBucketBoundaries: [10, 100, 1000] } });
  // phase 1
  for (const v of [1, 2, 3]) counter.add(v, { route: '/a' });
  counter.add(10, { route: '/b' });
  updown.add(5);
  updown.add(-2);
  gauge.record(21.5, { room: 'lab' });
  for (const v of [5, 50, 50, 500, 5000]) hist.record(v, { route: '/a' });
  await reader.forceFlush();
  await sleep(20);
  const n = `interop_${flavour}_${temporality}`;
  const base = { job: 'ns/interop-metrics', instance: inst };
  const bucketsPhase1 = { 10: '1', 100: '3', 1000: '4', '+Inf': '5' };
  await t.test('histogram after the first export', async () => {
    for (const [le, v] of Object.entries(bucketsPhase1)) {
      const s = await samples(`${n}_latency_milliseconds_bucket`, { ...base, route: '/a', le });
      assert.equal(s[s.length - 1][1], v, `le=${le}`);
    }
    assert.equal((await samples(`${n}_latency_milliseconds_sum`, { ...base, route: '/a' })).pop()[1], '5605');
    assert.equal((await samples(`${n}_latency_milliseconds_count`, { ...base, route: '/a' })).pop()[1], '5');
  });
  // phase 2
  counter.add(4, { route: '/a' });
  updown.add(10);
  gauge.record(19.25, { room: 'lab' });
  hist.record(5, { route: '/a' });
  hist.record(2000, { route: '/a' });
  await reader.forceFlush();
  assertAllExportsOk(rec, 'metric export');

  await t.test(`the SDK really exported ${temporality} sums`, () => {
    const want = temporality === 'delta' ? AggregationTemporality.DELTA : AggregationTemporality.CUMULATIVE;
    const sums = rec.items.flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics))
      .filter((m) => m.descriptor.name === `${p}.requests`);
    assert.ok(sums.length >= 2, `two exports of ${p}.requests`);
    for (const m of sums) assert.equal(m.aggregationTemporality, want);
  });
  await t.test('counter totals', async () => {
    // A delta series starts at 0 at its first point's start time when that is an earlier
    // millisecond than the point's time (the SDK's first interval can be shorter than 1 ms), so
    // increase() sees the first export's counts; a cumulative one starts at its first value.
    const first = (route) => {
      for (const rm of rec.items)
        for (const sm of rm.scopeMetrics)
          for (const m of sm.metrics)
            if (m.descriptor.name === `${p}.requests`)
              for (const dp of m.dataPoints) if (dp.attributes.route === route) return dp;
      return null;
    };
    const zero = (route) => {
      const dp = first(route);
      const ms = (hr) => BigInt(hrToNs(hr)) / 1000000n;
      return temporality === 'delta' && dp && ms(dp.startTime) < ms(dp.endTime) ? ['0'] : [];
    };
    assert.deepEqual(steps(await samples(`${n}_requests_total`, { ...base, route: '/a' })), [...zero('/a'), '6', '10']);
    assert.deepEqual(steps(await samples(`${n}_requests_total`, { ...base, route: '/b' })), [...zero('/b'), '10']);
  });
  await t.test('up-down counter', async () => {
    assert.deepEqual(steps(await samples(`${n}_queue`, base)), ['3', '13']);
  });
  await t.test('gauge last value', async () => {
    assert.deepEqual(steps(await samples(`${n}_temperature_celsius`, { ...base, room: 'lab' })), ['21.5', '19.25']);
  });
  await t.test(`histogram buckets/sum/count after the second export (${temporality} -> cumulative)`, async () => {
    const want = { 10: '2', 100: '4', 1000: '5', '+Inf': '7' }; // + 5 and 2000
    for (const [le, v] of Object.entries(want)) {
      const s = await samples(`${n}_latency_milliseconds_bucket`, { ...base, route: '/a', le });
      assert.equal(s[s.length - 1][1], v, `le=${le}`);
    }
    assert.equal((await samples(`${n}_latency_milliseconds_sum`, { ...base, route: '/a' })).pop()[1], '7610');
    assert.equal((await samples(`${n}_latency_milliseconds_count`, { ...base, route: '/a' })).pop()[1], '7');
  });
  await t.test('series names', async () => {
    const r = await getJson('/api/v1/label/__name__/values', { 'match[]': `{__name__=~"${n}_.*"}` });
    assert.deepEqual(r.json && r.json.data, [`${n}_latency_milliseconds_bucket`,
      `${n}_latency_milliseconds_count`, `${n}_latency_milliseconds_sum`, `${n}_queue`,
      `${n}_requests_total`, `${n}_temperature_celsius`]);
  });
  await provider.shutdown();
}

/* ---- logs ---- */

/* Two log records through exporter, read back with /loki/api/v1/query_range. */
async function logScenario(t, flavour, exporter) {
  const { wrapper, rec } = recording(exporter);
  const service = `interop-logs-${flavour}`;
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': service }),
    processors: [new SimpleLogRecordProcessor({ exporter: wrapper })],
  });
  const logger = provider.getLogger('interop-logger', '0.0.1');
  const sec = Math.floor(Date.now() / 1000) - 30;
  logger.emit({ timestamp: [sec, 123456789], severityNumber: SeverityNumber.WARN,
    severityText: 'WARN', body: `first ${flavour}`,
    attributes: { 'event.name': 'checkout', 'order.id': 1234, ok: true } });
  logger.emit({ timestamp: [sec + 1, 5], body: `second ${flavour} \u2713`,
    attributes: { 'http.method': 'POST' } });
  await provider.forceFlush();
  await rec.settled();
  assertAllExportsOk(rec, 'log export');
  const q = { query: `{service_name="${service}"}`, start: String((sec - 60) * 1e9),
    end: String((sec + 60) * 1e9), direction: 'forward', limit: '100' };
  const r = await getJson('/loki/api/v1/query_range', q);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.data.resultType, 'streams');
  const ents = [];
  for (const s of r.json.data.result) for (const v of s.values) ents.push({ labels: s.stream, ts: v[0], line: v[1] });
  ents.sort((a, b) => (BigInt(a.ts) < BigInt(b.ts) ? -1 : 1));
  await t.test('lines and timestamps', () => {
    assert.deepEqual(ents.map((e) => [e.ts, e.line]), [
      [`${sec}123456789`, `first ${flavour}`], [`${sec + 1}000000005`, `second ${flavour} \u2713`]]);
  });
  await t.test('stream labels and structured metadata', () => {
    const [a, b] = ents;
    assert.equal(a.labels.service_name, service);
    assert.equal(a.labels.event_name, 'checkout');
    assert.equal(a.labels.order_id, '1234');
    assert.equal(a.labels.ok, 'true');
    assert.equal(b.labels.service_name, service);
    assert.equal(b.labels.http_method, 'POST');
    assert.ok(!('event_name' in b.labels), 'no event_name on a record without event.name');
  });
  await t.test('event_name selector', async () => {
    const r2 = await getJson('/loki/api/v1/query_range', { ...q,
      query: `{service_name="${service}", event_name="checkout"}` });
    const n = (r2.json.data.result || []).reduce((acc, s) => acc + s.values.length, 0);
    assert.equal(n, 1);
  });
  await provider.shutdown();
}

/* A clean SIGTERM shutdown, and (for sanitizer builds) no ASan/UBSan/LSan report in the log. */
async function stopScenario() {
  server.kill('SIGTERM');
  const t0 = Date.now();
  while (server.exitCode === null && server.signalCode === null && Date.now() - t0 < 15000) {
    await sleep(50);
  }
  const log = fs.readFileSync(logPath, 'utf8');
  for (const marker of ['ERROR: AddressSanitizer', 'ERROR: LeakSanitizer', 'runtime error:']) {
    const i = log.indexOf(marker);
    assert.ok(i < 0, `sanitizer report in the server log: ${log.slice(Math.max(0, i - 200), i + 1500)}`);
  }
  assert.equal(server.exitCode, 0, `exit code ${server.exitCode} signal ${server.signalCode}`);
}

module.exports = {
  useServer, ports: () => ports, get, getJson, sleep, freePort, logTail, recording,
  assertAllExportsOk, attrMap, anyValue, typeOf, hrToNs, promSel, samples, steps,
  temporalityPreference, traceScenario, metricScenario, logScenario, stopScenario,
};
