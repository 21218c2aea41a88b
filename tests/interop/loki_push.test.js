'use strict';
/*
 * loki_push.test.js - winston-loki (a Loki client nobody on the project wrote) pushing to
 * POST /loki/api/v1/push of the real binary, in both of its formats.
 *
 * Why: suite_loki_push.py builds its bodies from the spec; here a shipper used in the field builds
 * them: JSON (`json: true`, with winston's meta sent as structured metadata) and snappy-compressed
 * protobuf (its default when the `snappy` package loads, protobufjs-encoded PushRequest). Every
 * line is read back through /loki/api/v1/query_range and compared with what the client logged.
 * A push Loki would refuse (an invalid label name) must reach the client as Loki's 400 message.
 *
 * How: one server (otel_common.js), winston loggers with a LokiTransport each; `flush()` resolves
 * once every batch was answered. Timestamps are the client's Date.now() (winston-loki replaces
 * them by default), so they are checked to lie in the window around the logging and to be whole
 * milliseconds.
 */

const { test } = require('node:test');
const assert = require('node:assert/strict');
const winston = require('winston');
const LokiTransport = require('winston-loki');
const snappy = require('snappy');
const C = require('./otel_common');

C.useServer();

async function readJob(job, t0ms, t1ms) {
  const r = await C.getJson('/loki/api/v1/query_range', {
    query: `{job="${job}"}`, start: String(t0ms * 1e6), end: String((t1ms + 1000) * 1e6),
    limit: '1000', direction: 'forward',
  });
  assert.equal(r.status, 200, r.text);
  const out = [];
  for (const s of r.json.data.result) {
    for (const [ts, line] of s.values) out.push({ stream: s.stream, ts: BigInt(ts), line });
  }
  out.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : a.line < b.line ? -1 : 1));
  return out;
}

function logger(opts, errors) {
  const transport = new LokiTransport({
    host: `http://127.0.0.1:${C.ports().http}`,
    batching: true,
    interval: 0.1,
    gracefulShutdown: false,
    onConnectionError: (err) => errors.push(err),
    ...opts,
  });
  const log = winston.createLogger({ level: 'debug', transports: [transport] });
  return { log, transport };
}

function checkTimes(got, t0, t1) {
  for (const e of got) {
    assert.equal(e.ts % 1000000n, 0n, `timestamp ${e.ts} is not whole milliseconds`);
    assert.ok(e.ts >= BigInt(t0) * 1000000n && e.ts <= BigInt(t1) * 1000000n,
      `timestamp ${e.ts} outside [${t0}, ${t1}] ms`);
  }
}

test('winston-loki JSON: lines, levels, labels and meta as structured metadata', async () => {
  const errors = [];
  const { log, transport } = logger({ json: true, labels: { job: 'winston-json', app: 'shop' } },
    errors);
  const t0 = Date.now();
  for (let i = 0; i < 20; i++) {
    log.info(`order ${i} placed`, { orderId: `o-${i}`, 'http.method': 'POST' });
  }
  log.warn('stock low');
  log.error('payment failed \u00e9', { code: 402 });
  await transport.flush();
  const t1 = Date.now();
  await transport.close();
  assert.deepEqual(errors, []);
  const got = await readJob('winston-json', t0, t1);
  assert.equal(got.length, 22);
  checkTimes(got, t0, t1);
  /* winston-loki's line is `${message} ${JSON.stringify(rest)}` where rest is winston's info
   * minus message/label/labels/timestamp (winston's meta, then `level`), and in JSON mode rest also
   * goes out as structured metadata, values stringified. A metadata name equal to a stream label
   * (level) shows as level_extracted, as Loki's label builder names it; names that are not label
   * names are normalised (http.method -> http_method) as Loki's distributor does. */
  const byLine = new Map(got.map((e) => [e.line, e.stream]));
  const base = { job: 'winston-json', app: 'shop' };
  for (let i = 0; i < 20; i++) {
    const line = `order ${i} placed {"orderId":"o-${i}","http.method":"POST","level":"info"}`;
    assert.deepEqual(byLine.get(line), {
      ...base, level: 'info', level_extracted: 'info', orderId: `o-${i}`, http_method: 'POST',
    }, line);
  }
  assert.deepEqual(byLine.get('stock low {"level":"warn"}'),
    { ...base, level: 'warn', level_extracted: 'warn' });
  assert.deepEqual(byLine.get('payment failed \u00e9 {"code":402,"level":"error"}'),
    { ...base, level: 'error', level_extracted: 'error', code: '402' });
});

test('winston-loki protobuf + snappy: lines and labels', async () => {
  assert.equal(typeof snappy.compressSync, 'function', 'the snappy package must load');
  const errors = [];
  const { log, transport } = logger({ labels: { job: 'winston-pb', host: 'h1' } }, errors);
  assert.equal(transport.batcher.contentType, 'application/x-protobuf');
  const t0 = Date.now();
  const want = [];
  for (let i = 0; i < 50; i++) {
    const line = `request ${i} ${'x'.repeat(i)} done`;
    (i % 10 === 9 ? log.debug : log.info).call(log, line);
    const level = i % 10 === 9 ? 'debug' : 'info';
    want.push({ line: `${line} {"level":"${level}"}`, level });
  }
  await transport.flush();
  const t1 = Date.now();
  await transport.close();
  assert.deepEqual(errors, []);
  const got = await readJob('winston-pb', t0, t1);
  checkTimes(got, t0, t1);
  const norm = (xs) => xs.map((x) => JSON.stringify(x)).sort();
  assert.deepEqual(norm(got.map((e) => ({ line: e.line, level: e.stream.level }))), norm(want));
  for (const e of got) assert.deepEqual(e.stream, { job: 'winston-pb', host: 'h1', level: e.stream.level });
});

test('winston-loki gets Loki\'s 400 message for an invalid label name; nothing stored', async () => {
  for (const json of [true, false]) {
    const errors = [];
    const job = `winston-bad-${json ? 'json' : 'pb'}`;
    const { log, transport } = logger({
      json, batching: false, clearOnError: true, labels: { job, 'bad-name': 'x' },
    }, errors);
    const t0 = Date.now();
    log.info('refused');
    await transport.flush();
    await transport.close();
    assert.equal(errors.length, 1, `${json}: ${errors}`);
    assert.equal(errors[0].statusCode, 400);
    assert.match(errors[0].message, /Error parsing labels '.*bad-name.*' with error: (invalid label name "bad-name"|1:\d+: )/);
    assert.deepEqual(await readJob(job, t0, Date.now()), []);
  }
});

test('server stops cleanly on SIGTERM', () => C.stopScenario());
