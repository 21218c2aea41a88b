'use strict';
/*
 * logs_parity.test.js - the same log records sent two ways give the same LogQL answers.
 *
 * Why: teams send logs through the OpenTelemetry SDK (OTLP) and through Loki-style pushes
 * (Promtail, Alloy, `skillscope ship`). Loki itself is not packaged for Debian, so instead of
 * comparing with a live Loki, this checks that Skillscope's two paths agree: the OTel JS SDK's
 * log exporter (OTLP/HTTP protobuf) sends records of service "via-otlp", and a Loki JSON push sends
 * the same lines with the same attributes as structured metadata under service_name "via-loki".
 * A set of LogQL log and metric queries must then return identical results for both (after
 * renaming the service), including unwrap on structured metadata and the json parser.
 */
const { test } = require('node:test');
const assert = require('node:assert/strict');

const { resourceFromAttributes } = require('@opentelemetry/resources');
const { LoggerProvider, BatchLogRecordProcessor } = require('@opentelemetry/sdk-logs');
const LogProto = require('@opentelemetry/exporter-logs-otlp-proto');
const { useServer, ports, getJson, sleep } = require('./otel_common.js');

useServer();

const N = 60;
const LEVELS = ['info', 'warn', 'error'];

function record(i, baseMs) {
  const ms = baseMs + i * 1000;
  const body = i % 4 === 0 ? JSON.stringify({ msg: 'request done', status: 200 + (i % 3) * 100, path: `/api/${i % 5}` })
    : `request ${i} took ${10 + i} ms level=${LEVELS[i % 3]}`;
  return { ms, body, attrs: { model: i % 2 ? 'claude-sonnet' : 'claude-haiku', cost_usd: String((i % 7) * 0.25), tool: `t${i % 3}` } };
}

async function sendOtlp(recs) {
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': 'via-otlp' }),
    // batched: the exporter drops exports beyond 30 in flight, which one-by-one export of 60 records hits
    processors: [new BatchLogRecordProcessor({ exporter: new LogProto.OTLPLogExporter({ url: `http://127.0.0.1:${ports().otlp}/v1/logs` }), maxExportBatchSize: 512 })],
  });
  const logger = provider.getLogger('parity');
  for (const r of recs) {
    logger.emit({ body: r.body, timestamp: r.ms, attributes: r.attrs });
  }
  await provider.forceFlush();
  await provider.shutdown();
}

async function sendLoki(recs) {
  const body = { streams: [{ stream: { service_name: 'via-loki' },
    values: recs.map((r) => [`${r.ms}000000`, r.body, r.attrs]) }] };
  const res = await fetch(`http://127.0.0.1:${ports().http}/loki/api/v1/push`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  assert.equal(res.status, 204, await res.text());
}

// Metadata only the OTLP path has (Loki 3's OTLP mapping adds it): not part of the comparison.
const OTLP_ONLY = ['service_name', 'scope_name', 'observed_timestamp', 'severity_text', 'severity_number', 'flags'];

// A query's answer with the service and OTLP-only metadata removed, as a sorted list of entries
// (log queries) or series (metric queries).
function canon(data) {
  const strip = (m) => JSON.stringify(Object.keys(m).filter((k) => !OTLP_ONLY.includes(k)).sort().map((k) => [k, m[k]]));
  if (data.resultType === 'streams')
    return data.result.flatMap((s) => s.values.map(([t, l]) => [t, l, strip(s.stream)])).sort();
  return data.result.map((s) => [strip(s.metric), s.values || s.value]).sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

test('OTLP logs and a Loki push of the same records answer LogQL alike', async () => {
  const base = Date.now() - 120000;
  const recs = Array.from({ length: N }, (_, i) => record(i, base));
  await sendOtlp(recs);
  await sendLoki(recs);
  await sleep(200);
  const start = `${base - 1000}000000`, end = `${base + N * 1000 + 1000}000000`;
  const queries = [
    ['{service_name="$S"}', {}],
    ['{service_name="$S"} |= "took"', {}],
    ['{service_name="$S"} != "took" | json', {}],
    ['{service_name="$S"} | model="claude-haiku"', {}],
    ['{service_name="$S"} | logfmt | level="error"', {}],
    ['sum by (model) (count_over_time({service_name="$S"}[1m]))', { step: '30' }],
    ['sum(sum_over_time({service_name="$S"} | unwrap cost_usd [2m]))', { step: '60' }],
    ['sum by (status) (count_over_time({service_name="$S"} | json | __error__="" [2m]))', { step: '60' }],
    ['topk(2, sum by (tool) (bytes_over_time({service_name="$S"}[2m])))', { step: '60' }],
  ];
  for (const [q, extra] of queries) {
    const ask = async (svc) => {
      const r = await getJson('/loki/api/v1/query_range',
        { query: q.replace('$S', svc), start, end, limit: '1000', direction: 'forward', ...extra });
      assert.equal(r.status, 200, `${q}: ${r.text}`);
      return r.json.data;
    };
    const a = await ask('via-otlp');
    const b = await ask('via-loki');
    assert.ok(a.result.length > 0, `${q}: no result`);
    const ca = JSON.stringify(canon(a)), cb = JSON.stringify(canon(b));
    const fa = canon(a), fb = canon(b);
    const diff = fa.map((x, i) => [i, JSON.stringify(x), JSON.stringify(fb[i])]).filter(([, x, y]) => x !== y).slice(0, 2);
    assert.ok(ca === cb, `${q}: ${fa.length} vs ${fb.length} entries; first differences ${JSON.stringify(diff)}`);
  }
  // unwrap cost_usd sums to the costs sent
  const r = await getJson('/loki/api/v1/query', {
    query: 'sum(sum_over_time({service_name="via-otlp"} | unwrap cost_usd [10m]))', time: String((base + N * 1000) / 1000) });
  const want = recs.reduce((s, x) => s + parseFloat(x.attrs.cost_usd), 0);
  assert.ok(Math.abs(parseFloat(r.json.data.result[0].value[1]) - want) < 1e-9, JSON.stringify(r.json));
});
