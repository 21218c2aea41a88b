'use strict';
/*
 * remote_write.js - a small Prometheus remote-write 1.0 sender for tests.
 *
 * Why: the differential test (prom_diff.test.js) must feed the same samples to Skillscope and to the
 * real Prometheus, and the only ingest path both share is remote write.
 *
 * How: the prometheus.WriteRequest v1 protobuf is encoded by hand (field numbers from
 * /work/shared/specs/PROM-API.md §3: WriteRequest.timeseries=1, TimeSeries.labels=1/samples=2,
 * Label.name=1/value=2, Sample.value=1 (double)/timestamp=2 (int64 ms)), compressed with the snappy
 * *block* format (npm snappyjs) and POSTed with the spec's headers. Labels are sorted by name, as the
 * spec requires of senders.
 *
 * API: encodeWriteRequest(series) -> Buffer; send(url, series) -> Promise<{status, body}>, where
 * series = [{labels: {__name__: 'x', a: 'b'}, samples: [[timestampMs, value], ...]}]; a value of
 * STALE ('stale') sends the staleness marker 0x7ff0000000000002.
 */

const snappy = require('snappyjs');

function varint(out, n) {
  let v = BigInt.asUintN(64, BigInt(n));
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
}

function tag(out, field, wire) {
  varint(out, (field << 3) | wire);
}

function bytesField(out, field, bytes) {
  tag(out, field, 2);
  varint(out, bytes.length);
  for (const b of bytes) out.push(b);
}

function encodeLabel(name, value) {
  const out = [];
  bytesField(out, 1, Buffer.from(name, 'utf8'));
  bytesField(out, 2, Buffer.from(value, 'utf8'));
  return out;
}

/* Prometheus' staleness marker, bit-exact (a NaN whose payload a JS number would not keep). */
const STALE = 'stale';

function encodeSample(ts, value) {
  const out = [];
  tag(out, 1, 1);
  const d = Buffer.alloc(8);
  if (value === STALE) d.writeBigUInt64LE(0x7ff0000000000002n, 0);
  else d.writeDoubleLE(value, 0);
  for (const b of d) out.push(b);
  tag(out, 2, 0);
  varint(out, ts);
  return out;
}

function encodeTimeSeries(s) {
  const out = [];
  const names = Object.keys(s.labels).sort();
  for (const n of names) bytesField(out, 1, encodeLabel(n, String(s.labels[n])));
  for (const [ts, v] of s.samples) bytesField(out, 2, encodeSample(ts, v));
  return out;
}

function encodeWriteRequest(series) {
  const out = [];
  for (const s of series) bytesField(out, 1, encodeTimeSeries(s));
  return Buffer.from(out);
}

async function send(url, series) {
  const body = snappy.compress(encodeWriteRequest(series));
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'Content-Encoding': 'snappy',
      'Content-Type': 'application/x-protobuf',
      'X-Prometheus-Remote-Write-Version': '0.1.0',
      'User-Agent': 'skillscope-interop-remote-write/1',
    },
    body,
  });
  return { status: res.status, body: await res.text() };
}

module.exports = { encodeWriteRequest, send, STALE };
