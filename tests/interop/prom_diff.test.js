// needs-deb: prometheus
'use strict';
/*
 * prom_diff.test.js - differential test: Skillscope's PromQL engine against the real Prometheus.
 *
 * Why: the conformance cases (PROMQL-TESTS.md) pin down behaviour case by case; this test throws a
 * few hundred realistic queries (dashboard and rule shapes of the seed stacks) at both engines over
 * the same data and compares every answer value by value.
 *
 * How: `skillscope serve` and `prometheus --web.enable-remote-write-receiver` (Debian's 2.42) start on
 * free loopback ports with temp dirs; both are killed by PID at the end. About 270 deterministic
 * series shaped like the seed stacks' metrics (counters with resets, gauges, classic histograms,
 * span metrics, claude_code_* counters, a gauge with gaps) get 2 h 15 min of samples on a 15 s grid,
 * remote-written to both in time-ordered 20-minute batches (Prometheus refuses samples older than
 * its head's max time minus 1 h). Each query runs at several instants and as a range query, and the
 * answers must match: same result type, same label sets, values equal within a relative 1e-9
 * (absolute 1e-9 near zero), NaN equals NaN.
 *
 * Staying away from 2.x/3.x differences (the conformance suite pins 3.x): every sample timestamp ends
 * in .3 s while every query time and step is a whole second, so no sample sits on a window edge (3.x
 * range windows are left-open, 2.x closed); query times end in :13/:43 so no subquery point sits on a
 * subquery's left edge; counters start at 0 or far from 0 (see generate()) so the two versions'
 * rate() extrapolation orders agree. Queries 2.42 answers differently by design go to Prometheus
 * rewritten into an equivalent it answers the 3.x way (REWRITE, reason given); EXCLUDED (empty) is
 * for queries that cannot be compared at all. The edges themselves are then checked on purpose
 * ("edge" tests): at sample-aligned times Skillscope's x[5m] must equal 2.42's x[299999ms].
 *
 * Output: one test per query; a mismatch prints the query, the time (or range), the label set and
 * both answers.
 */

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const rw = require('./remote_write.js');

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = process.env.SKILLSCOPE_BIN || path.join(ROOT, 'skillscope');
const PROM = process.env.PROMETHEUS_BIN || 'prometheus';

const STEP_MS = 15000;
const OFFSET_MS = 7300; /* sample grid offset from the whole-second query grid */
const SPAN_MS = 135 * 60000; /* 2 h 15 min of data */
/* T0: a whole minute about 2 h 30 min ago; Prometheus' head accepts anything this recent. */
const T0 = Math.floor((Date.now() - 150 * 60000) / 60000) * 60000;

/* Queries that Prometheus 2.42 answers differently from 3.x by design: Prometheus gets an equivalent
 * query that 2.42 answers the 3.x way (reason given). */
const DELAYED = 'the conformance suite runs with delayed __name__ removal (PROMQL-TESTS.md §4.1, '
  + 'name_label_dropping.test: "sum(rate({env=\"1\"}[10m])) by (env)" aggregates series whose names are '
  + 'still to be dropped); 2.42 drops names at once and fails with "vector cannot contain metrics with the '
  + 'same labelset". Prometheus gets the same sum written per metric name.';
const REWRITE = {
  'queue_depth atan2 2': ['label_replace(queue_depth, "__name__", "", "__name__", ".*") atan2 2',
    '2.42 keeps __name__ on atan2 (its shouldDropMetricName lacks ATAN2); 3.x drops it '
    + '(operators.test: "trigy atan2 trigx" gives {})'],
  'sum(count_over_time({__name__=~"queue_depth|process_resident_memory_bytes"}[10m]))': [
    'sum(count_over_time(queue_depth[10m])) + sum(count_over_time(process_resident_memory_bytes[10m]))', DELAYED],
  'sum(rate({__name__=~"http_request_duration_seconds_(sum|count)"}[5m]))': [
    'sum(rate(http_request_duration_seconds_sum[5m])) + sum(rate(http_request_duration_seconds_count[5m]))', DELAYED],
  'sum(abs({__name__=~"queue_depth|process_resident_memory_bytes"}))': [
    'sum(abs(queue_depth)) + sum(abs(process_resident_memory_bytes))', DELAYED],
};

/* Queries not compared at all (reason given). None so far. */
const EXCLUDED = {};

const procs = [];
let tmp = null;
let ssPort = 0;
let promPort = 0;

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

function start(name, bin, args, readyUrl) {
  const logPath = path.join(tmp, `${name}.log`);
  const out = fs.openSync(logPath, 'w');
  const p = spawn(bin, args, { stdio: ['ignore', out, out] });
  if (process.env.SKILLSCOPE_INTEROP_PIDS) fs.appendFileSync(process.env.SKILLSCOPE_INTEROP_PIDS, `${p.pid}\n`);
  const rec = { name, p, logPath, exited: null };
  p.on('exit', (code, sig) => { rec.exited = `${code} ${sig}`; });
  p.on('error', (e) => { rec.exited = String(e); });
  procs.push(rec);
  return (async () => {
    const t0 = Date.now();
    for (;;) {
      if (rec.exited) throw new Error(`${name} exited (${rec.exited}) before ready: ${tail(rec)}`);
      try {
        const r = await fetch(readyUrl);
        if (r.status === 200) return;
      } catch (e) { /* not listening yet */ }
      if (Date.now() - t0 > 20000) throw new Error(`${name} not ready after 20 s: ${tail(rec)}`);
      await sleep(50);
    }
  })();
}

/* Whatever ends this process (a failed hook, an EPIPE, Ctrl-C), the servers it started go too. */
process.on('exit', () => {
  for (const rec of procs) {
    if (rec.p.exitCode === null && rec.p.signalCode === null) {
      try {
        rec.p.kill('SIGKILL');
      } catch (e) { /* already gone */ }
    }
  }
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

function tail(rec) {
  try {
    return fs.readFileSync(rec.logPath, 'utf8').slice(-1500);
  } catch (e) {
    return '(no log)';
  }
}

/* Deterministic PRNG (mulberry32). */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/* Builds every series: {labels, samples: [[tsMs, value]]}.
 * Counter starts: 2.42 and 3.x order the two limits of rate()'s extrapolation towards the window start
 * differently (3.x, PR #13725: first "half an interval when the series starts inside the window",
 * then "not past the counter's zero point"; 2.42 the other way round). They disagree when a series
 * starts inside the window and its zero point lies between 0.5 and 1.1 sample intervals before the
 * first sample. Every counter (and histogram) therefore starts either at exactly 0 (zero point = the
 * first sample, both agree) or at a large value (zero point far away, both extrapolate half an
 * interval). */
function generate() {
  const rnd = prng(20261122);
  const n = Math.floor(SPAN_MS / STEP_MS);
  const ts = (k) => T0 + OFFSET_MS + k * STEP_MS;
  const series = [];
  const counter = (labels, meanInc, opts = {}) => {
    const s = { labels, samples: [] };
    let v = opts.start || 0;
    const resetAt = opts.reset ? 40 + Math.floor(rnd() * (n - 80)) : -1;
    for (let k = 0; k < n; k++) {
      if (opts.from && k < opts.from) continue;
      if (k === resetAt) v = 0;
      const inc = opts.float ? meanInc * rnd() * 2 : Math.floor(rnd() * 2 * meanInc);
      if (s.samples.length > 0) v += inc; /* the first sample is exactly opts.start, see generate() */
      s.samples.push([ts(k), v]);
    }
    series.push(s);
  };
  const gauge = (labels, base, amp, opts = {}) => {
    const s = { labels, samples: [] };
    let v = base;
    for (let k = 0; k < n; k++) {
      v += (rnd() - 0.5) * amp;
      if (opts.int) v = Math.max(0, Math.round(v));
      if (opts.gap && opts.gap(k)) continue;
      s.samples.push([ts(k), v]);
    }
    series.push(s);
  };
  const histogram = (name, labels, les, meanObs, scale) => {
    const counts = les.map(() => 0);
    const hs = les.map((le) => ({ labels: { ...labels, __name__: `${name}_bucket`, le }, samples: [] }));
    const sum = { labels: { ...labels, __name__: `${name}_sum` }, samples: [] };
    const cnt = { labels: { ...labels, __name__: `${name}_count` }, samples: [] };
    let total = 0;
    let sumV = 0;
    for (let k = 0; k < n; k++) {
      const obs = k === 0 ? 0 : Math.floor(rnd() * 2 * meanObs); /* first sample all zero */
      for (let i = 0; i < obs; i++) {
        const x = -Math.log(1 - rnd()) * scale;
        sumV += x;
        total++;
        les.forEach((le, j) => { if (le === '+Inf' || x <= Number(le)) counts[j]++; });
      }
      hs.forEach((h, j) => h.samples.push([ts(k), counts[j]]));
      sum.samples.push([ts(k), sumV]);
      cnt.samples.push([ts(k), total]);
    }
    series.push(...hs, sum, cnt);
  };

  const jobs = ['api', 'web', 'worker'];
  const insts = ['i0', 'i1'];
  let idx = 0;
  for (const job of jobs) {
    for (const instance of insts) {
      for (const method of ['GET', 'POST']) {
        for (const status of ['200', '404', '500']) {
          const mean = status === '200' ? 20 : status === '404' ? 3 : 1;
          counter({ __name__: 'http_requests_total', job, instance, method, status }, mean,
            { reset: idx % 5 === 0, start: idx++ % 2 === 0 ? 0 : 10000 });
        }
      }
      gauge({ __name__: 'process_resident_memory_bytes', job, instance }, 2e8 + rnd() * 1e8, 4e6);
      gauge({ __name__: 'queue_depth', job, instance }, 5, 3, { int: true });
      histogram('http_request_duration_seconds', { job, instance },
        ['0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '+Inf'], 10, 0.3);
    }
  }
  const services = ['skill-runner', 'grader', 'claude-code'];
  for (const service of services) {
    for (const span_name of ['run_test', 'grade']) {
      for (const status_code of ['STATUS_CODE_OK', 'STATUS_CODE_ERROR', 'STATUS_CODE_UNSET']) {
        for (const test_id of ['t1', 't2', 't3', 't4']) {
          const mean = status_code === 'STATUS_CODE_OK' ? 4 : status_code === 'STATUS_CODE_ERROR' ? 1 : 0.5;
          counter({ __name__: 'traces_spanmetrics_calls_total', service, span_name,
            span_kind: 'SPAN_KIND_INTERNAL', status_code, test_id }, mean,
          { reset: (idx % 7) === 0, from: test_id === 't4' ? 200 : 0, start: idx++ % 3 === 0 ? 500 : 0 });
        }
      }
      histogram('traces_spanmetrics_latency', { service, span_name, span_kind: 'SPAN_KIND_INTERNAL' },
        ['0.5', '1', '2.5', '5', '10', '30', '60', '+Inf'], 3, 12);
    }
  }
  for (const model of ['claude-sonnet-4', 'claude-opus-4']) {
    for (const session_id of ['s1', 's2']) {
      for (const type of ['input', 'output', 'cacheRead', 'cacheCreation']) {
        counter({ __name__: 'claude_code_token_usage_tokens_total', type, model, session_id },
          type === 'cacheRead' ? 3000 : 400, { start: session_id === 's1' ? 0 : 250000 });
      }
      counter({ __name__: 'claude_code_cost_usage_USD_total', model, session_id }, 0.02, { float: true });
    }
    counter({ __name__: 'claude_code_session_count_total', model }, 0.3);
  }
  /* Gauges with gaps longer than the 5 m lookback, and one that starts late. */
  gauge({ __name__: 'worker_up', id: 'a' }, 1, 0, { gap: (k) => k >= 100 && k < 150 });
  gauge({ __name__: 'worker_up', id: 'b' }, 1, 0, { gap: (k) => k >= 300 });
  gauge({ __name__: 'worker_up', id: 'c' }, 0, 0, { gap: (k) => k < 60 });
  /* A series that ends with a staleness marker (as a scrape target going away would), and one that
   * goes stale twice and comes back. */
  gauge({ __name__: 'target_up', id: 'gone' }, 1, 0, { gap: (k) => k > 250 });
  series[series.length - 1].samples.push([ts(251), rw.STALE]);
  const back = { labels: { __name__: 'target_up', id: 'back' }, samples: [] };
  for (let k = 0; k < n; k++) {
    if (k === 120 || k === 400) back.samples.push([ts(k), rw.STALE]);
    else if (!(k > 120 && k < 140)) back.samples.push([ts(k), 1]);
  }
  series.push(back);
  /* NaN and infinities in gauges. */
  const odd = { labels: { __name__: 'odd_gauge', id: 'nan' }, samples: [] };
  const inf = { labels: { __name__: 'odd_gauge', id: 'inf' }, samples: [] };
  for (let k = 0; k < n; k++) {
    odd.samples.push([ts(k), k % 10 === 3 ? NaN : k % 17]);
    inf.samples.push([ts(k), k % 25 === 0 ? Infinity : k % 25 === 12 ? -Infinity : -k]);
  }
  series.push(odd, inf);
  /* Label values with spaces, quotes, backslashes and non-ASCII text. */
  gauge({ __name__: 'odd_labels', path: '/a b/"q"\\x', text: 'grüße → ✓' }, 3, 1);
  gauge({ __name__: 'odd_labels', text: 'no path' }, 5, 1); /* empty values are invalid in remote write */
  return series;
}

async function load(series) {
  const batchMs = 20 * 60000;
  for (let from = T0; from < T0 + SPAN_MS + batchMs; from += batchMs) {
    const batch = series.map((s) => ({ labels: s.labels,
      samples: s.samples.filter(([t]) => t >= from && t < from + batchMs) }))
      .filter((s) => s.samples.length > 0);
    if (batch.length === 0) continue;
    for (const [name, port] of [['skillscope', ssPort], ['prometheus', promPort]]) {
      const r = await rw.send(`http://127.0.0.1:${port}/api/v1/write`, batch);
      if (r.status !== 204 && r.status !== 200) {
        throw new Error(`${name} remote write answered ${r.status}: ${r.body.slice(0, 300)}`);
      }
    }
  }
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(process.env.SKILLSCOPE_INTEROP_TMP || os.tmpdir(), 'prom-diff-'));
  ssPort = await freePort();
  promPort = await freePort();
  const otlp = await freePort();
  const grpc = await freePort();
  fs.writeFileSync(path.join(tmp, 'prometheus.yml'), 'global:\n  scrape_interval: 15s\n');
  const a = start('skillscope', BIN, ['serve', '--data-dir', path.join(tmp, 'ss-data'), '--listen', '127.0.0.1',
    '--http-port', String(ssPort), '--otlp-http-port', String(otlp), '--otlp-grpc-port', String(grpc)],
  `http://127.0.0.1:${ssPort}/-/ready`);
  const b = start('prometheus', PROM, [`--config.file=${path.join(tmp, 'prometheus.yml')}`,
    `--storage.tsdb.path=${path.join(tmp, 'prom-data')}`, `--web.listen-address=127.0.0.1:${promPort}`,
    '--web.enable-remote-write-receiver'], `http://127.0.0.1:${promPort}/-/ready`);
  await Promise.all([a, b]);
  await load(generate());
});

after(async () => {
  for (const rec of procs) {
    if (rec.p.exitCode !== null || rec.p.signalCode !== null) continue;
    rec.p.kill('SIGTERM');
    const t0 = Date.now();
    while (rec.p.exitCode === null && rec.p.signalCode === null && Date.now() - t0 < 10000) await sleep(50);
    if (rec.p.exitCode === null && rec.p.signalCode === null) rec.p.kill('SIGKILL');
  }
  if (!process.env.INTEROP_KEEP && tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

async function query(port, p, params) {
  const res = await fetch(`http://127.0.0.1:${port}${p}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params).toString(),
  });
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch (e) {
    return { status: 'unparsable', http: res.status, text: text.slice(0, 300) };
  }
}

function labelKey(m) {
  return JSON.stringify(Object.keys(m || {}).sort().map((k) => [k, m[k]]));
}

function num(s) {
  return s === 'NaN' ? NaN : s === '+Inf' ? Infinity : s === '-Inf' ? -Infinity : Number(s);
}

function close(a, b) {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b);
  if (a === b) return true;
  return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
}

/* Compares two API answers; returns a list of difference descriptions (empty when equal). With ties
 * set (topk/bottomk), a series missing at one time is forgiven when another series with the same value
 * is there instead: which of several equal series topk keeps is unspecified. */
function diff(ss, pr, ties = false) {
  if (pr.status !== 'success') {
    if (ss.status === 'success') return [`prometheus failed (${pr.errorType}: ${pr.error}) but skillscope succeeded`];
    if (ss.errorType !== pr.errorType) {
      return [`both failed, errorType ${ss.errorType} (${ss.error}) vs prometheus ${pr.errorType} (${pr.error})`];
    }
    return [];
  }
  if (ss.status !== 'success') return [`skillscope failed: ${ss.errorType || ss.http}: ${ss.error || ss.text}`];
  const a = ss.data;
  const b = pr.data;
  if (a.resultType !== b.resultType) return [`resultType ${a.resultType} vs prometheus ${b.resultType}`];
  if (a.resultType === 'scalar' || a.resultType === 'string') {
    const ok = a.resultType === 'string' ? a.result[1] === b.result[1] : close(num(a.result[1]), num(b.result[1]));
    return ok && a.result[0] === b.result[0] ? [] : [`scalar ${JSON.stringify(a.result)} vs prometheus ${JSON.stringify(b.result)}`];
  }
  const out = [];
  const index = (res) => {
    const m = new Map();
    for (const e of res) {
      const k = labelKey(e.metric);
      if (m.has(k)) out.push(`duplicate label set ${k}`);
      m.set(k, e);
    }
    return m;
  };
  const ma = index(a.result);
  const mb = index(b.result);
  const odd = []; /* [kind, time, value, text] for series present on one side only */
  for (const [k, eb] of mb) {
    const ea = ma.get(k);
    if (!ea) {
      for (const [t, v] of eb.value ? [eb.value] : eb.values) odd.push(['missing', t, v, `${k} @${t}: missing in skillscope (prometheus ${v})`]);
      continue;
    }
    if (a.resultType === 'vector') {
      if (ea.value[0] !== eb.value[0] || !close(num(ea.value[1]), num(eb.value[1]))) {
        out.push(`${k}: skillscope ${JSON.stringify(ea.value)} vs prometheus ${JSON.stringify(eb.value)}`);
      }
    } else {
      const pa = new Map((ea.values || []).map(([t, v]) => [t, v]));
      const pb = new Map((eb.values || []).map(([t, v]) => [t, v]));
      for (const [t, v] of pb) {
        if (!pa.has(t)) odd.push(['missing', t, v, `${k} @${t}: missing in skillscope (prometheus ${v})`]);
        else if (!close(num(pa.get(t)), num(v))) out.push(`${k} @${t}: skillscope ${pa.get(t)} vs prometheus ${v}`);
      }
      for (const [t, v] of pa) if (!pb.has(t)) odd.push(['extra', t, v, `${k} @${t}: extra in skillscope (${v})`]);
    }
  }
  for (const [k, ea] of ma) {
    if (!mb.has(k)) {
      for (const [t, v] of ea.value ? [ea.value] : ea.values) odd.push(['extra', t, v, `${k} @${t}: extra in skillscope (${v})`]);
    }
  }
  if (ties) {
    const key = (o) => `${o[1]}/${num(o[2])}`;
    const extra = new Map();
    for (const o of odd) if (o[0] === 'extra') extra.set(key(o), (extra.get(key(o)) || 0) + 1);
    for (const o of odd) {
      if (o[0] !== 'missing' || !extra.get(key(o))) continue;
      extra.set(key(o), extra.get(key(o)) - 1);
      o[0] = 'tie';
    }
    const used = new Map();
    for (const o of odd) if (o[0] === 'tie') used.set(key(o), (used.get(key(o)) || 0) + 1);
    for (const o of odd) {
      if (o[0] !== 'extra' || !used.get(key(o))) continue;
      used.set(key(o), used.get(key(o)) - 1);
      o[0] = 'tie';
    }
  }
  for (const o of odd) if (o[0] !== 'tie') out.push(o[3]);
  return out;
}

/* ---------------------------------------------------------------------------------------------- */
/* Queries. */

const Q = [];
const add = (...qs) => Q.push(...qs);

const counters = ['http_requests_total', 'traces_spanmetrics_calls_total', 'claude_code_token_usage_tokens_total',
  'claude_code_cost_usage_USD_total'];
for (const c of counters) {
  for (const r of ['1m', '5m', '1h']) {
    add(`rate(${c}[${r}])`, `increase(${c}[${r}])`);
  }
  add(`irate(${c}[5m])`, `resets(${c}[1h])`, `sum(rate(${c}[5m]))`);
}
add('delta(process_resident_memory_bytes[5m])', 'delta(queue_depth[1h])', 'idelta(queue_depth[5m])',
  'delta(process_resident_memory_bytes[1m])', 'changes(queue_depth[1h])', 'deriv(process_resident_memory_bytes[10m])',
  'predict_linear(process_resident_memory_bytes[30m], 3600)', 'predict_linear(queue_depth[1h], 600)',
  'deriv(http_requests_total[5m])');

for (const agg of ['sum', 'avg', 'min', 'max', 'count', 'stddev', 'stdvar', 'group']) {
  add(`${agg} by (job) (rate(http_requests_total[5m]))`, `${agg} without (instance, method) (rate(http_requests_total[5m]))`,
    `${agg}(process_resident_memory_bytes)`, `${agg} by (service, status_code) (increase(traces_spanmetrics_calls_total[1h]))`);
}
add('count_values("depth", queue_depth)', 'count_values by (job) ("d", queue_depth)');
for (const k of ['1', '3']) {
  add(`topk(${k}, rate(http_requests_total[5m]))`, `bottomk(${k}, process_resident_memory_bytes)`,
    `topk by (job) (${k}, rate(http_requests_total[5m]))`, `bottomk by (service) (${k}, increase(traces_spanmetrics_calls_total[1h]))`);
}
for (const q of ['0', '0.25', '0.5', '0.9', '1']) add(`quantile(${q}, process_resident_memory_bytes)`,
  `quantile by (job) (${q}, rate(http_requests_total[5m]))`);

for (const phi of ['0.5', '0.9', '0.99']) {
  add(`histogram_quantile(${phi}, sum by (le, job) (rate(http_request_duration_seconds_bucket[5m])))`,
    `histogram_quantile(${phi}, sum by (le) (rate(http_request_duration_seconds_bucket[1h])))`,
    `histogram_quantile(${phi}, rate(http_request_duration_seconds_bucket[5m]))`,
    `histogram_quantile(${phi}, sum by (le, service) (rate(traces_spanmetrics_latency_bucket[5m])))`,
    `histogram_quantile(${phi}, sum by (le, service, span_name) (increase(traces_spanmetrics_latency_bucket[1h])))`);
}
add('sum(rate(http_request_duration_seconds_sum[5m])) by (job) / sum(rate(http_request_duration_seconds_count[5m])) by (job)',
  'rate(traces_spanmetrics_latency_sum[5m]) / rate(traces_spanmetrics_latency_count[5m])',
  'sum by (service) (rate(traces_spanmetrics_latency_bucket{le="2.5"}[5m])) / ignoring(le) sum by (service) (rate(traces_spanmetrics_latency_count[5m]))');

add('http_requests_total offset 10m', 'rate(http_requests_total[5m] offset 30m)',
  'process_resident_memory_bytes - process_resident_memory_bytes offset 1h',
  'sum(increase(claude_code_cost_usage_USD_total[1h] offset 20m))');

for (const op of ['>', '<', '>=', '==', '!=']) {
  add(`queue_depth ${op} 5`, `queue_depth ${op} bool 5`, `rate(http_requests_total[5m]) ${op} 1`);
}
add('queue_depth > bool queue_depth offset 5m', 'process_resident_memory_bytes > 2.5e8',
  '1 < bool 2', 'scalar(sum(queue_depth)) > 10', '2 * 3 + 4 ^ 2 % 5', 'queue_depth * 2 - 1', '-queue_depth', 'queue_depth / 0',
  '-queue_depth / 0', '0 / (queue_depth - queue_depth)', 'queue_depth % 3', 'queue_depth ^ 2', 'queue_depth atan2 2',
  'sum by (job, instance) (queue_depth) atan2 2', '2 atan2 sum by (job, instance) (queue_depth)');
/* Dropping __name__ makes series collide: both must fail with "vector cannot contain metrics with the
 * same labelset" (execution). */
add('count_over_time({__name__=~"queue_depth|process_resident_memory_bytes"}[10m])',
  'sum(count_over_time({__name__=~"queue_depth|process_resident_memory_bytes"}[10m]))',
  'sum(rate({__name__=~"http_request_duration_seconds_(sum|count)"}[5m]))',
  '-{__name__=~"queue_depth|process_resident_memory_bytes"}', 'sum(abs({__name__=~"queue_depth|process_resident_memory_bytes"}))',
  'sum by (__name__) (count_over_time(queue_depth[10m]))');
add('queue_depth > 4 and process_resident_memory_bytes > 0', 'queue_depth and on(job) (queue_depth > 6)',
  'queue_depth or worker_up', 'queue_depth > 5 or queue_depth < 3', 'queue_depth unless queue_depth > 5',
  'queue_depth unless on(job) queue_depth > 7', 'worker_up or on() vector(0)', 'rate(http_requests_total[5m]) and ignoring(status) rate(http_requests_total{status="500"}[5m]) > 0');
add('rate(http_requests_total[5m]) / on(job, instance) group_left sum by (job, instance) (rate(http_requests_total[5m]))',
  'sum by (job, instance) (rate(http_requests_total{status="500"}[5m])) / sum by (job, instance) (rate(http_requests_total[5m]))',
  'rate(http_requests_total[5m]) * on(job, instance) group_left(x) label_replace(queue_depth, "x", "$1", "instance", "i(.*)")',
  'process_resident_memory_bytes / ignoring(instance) group_left sum without (instance) (process_resident_memory_bytes)',
  'sum without (status) (rate(http_requests_total{status=~"5.."}[5m])) / ignoring(status) sum without (status) (rate(http_requests_total[5m]))',
  'queue_depth + on(job, instance) process_resident_memory_bytes',
  'sum by (job) (queue_depth) * on(job) group_right sum by (job, instance) (queue_depth)');
add('label_replace(queue_depth, "host", "$1-$2", "instance", "(i)(.*)")', 'label_replace(queue_depth, "job", "", "job", "api")',
  'label_join(queue_depth, "ji", "/", "job", "instance")', 'label_replace(rate(http_requests_total[5m]), "code", "${1}xx", "status", "(.).*")');
add('absent(nonexistent_metric)', 'absent(queue_depth)', 'absent(nonexistent_metric{job="x", a=~"b"})',
  'absent_over_time(worker_up{id="a"}[5m])', 'absent_over_time(nonexistent[1h])', 'present_over_time(worker_up[10m])');
add('clamp(queue_depth, 3, 6)', 'clamp_min(queue_depth, 4)', 'clamp_max(queue_depth, 4)', 'clamp(queue_depth, 6, 3)',
  'abs(-queue_depth)', 'ceil(rate(http_requests_total[5m]))', 'floor(rate(http_requests_total[5m]))', 'round(rate(http_requests_total[5m]), 0.5)',
  'sqrt(queue_depth)', 'exp(queue_depth / 10)', 'ln(process_resident_memory_bytes)', 'log2(queue_depth)', 'log10(process_resident_memory_bytes)',
  'sgn(queue_depth - 5)', 'timestamp(queue_depth)', 'scalar(queue_depth{job="api", instance="i0"})', 'vector(time())', 'time() - timestamp(worker_up)',
  'sort(queue_depth)', 'sort_desc(rate(http_requests_total[5m]))', 'minute()', 'hour(timestamp(queue_depth))', 'day_of_week()', 'days_in_month()',
  'histogram_quantile(0.9, http_request_duration_seconds_bucket)');
for (const f of ['avg', 'min', 'max', 'sum', 'count', 'last', 'stddev', 'stdvar', 'present']) {
  add(`${f}_over_time(queue_depth[10m])`, `${f}_over_time(process_resident_memory_bytes[1h])`);
}
add('quantile_over_time(0.5, queue_depth[30m])', 'quantile_over_time(0.9, process_resident_memory_bytes[1h])',
  'avg_over_time(worker_up[10m])', 'count_over_time(worker_up[1h])', 'last_over_time(worker_up[10m])');
add('max_over_time(rate(http_requests_total[5m])[30m:1m])', 'avg_over_time(sum(rate(http_requests_total[1m]))[1h:5m])',
  'rate(http_requests_total[5m])[10m:2m]', 'min_over_time(queue_depth[20m:30s])', 'deriv(sum(process_resident_memory_bytes)[30m:1m])',
  'max_over_time(deriv(process_resident_memory_bytes[5m])[20m:])', 'sum_over_time(queue_depth[15m:1m] offset 10m)');

add('queue_depth @ end()', 'rate(http_requests_total[5m] @ start())', `queue_depth @ ${T0 / 1000 + 3600 + 13}`,
  'sum(queue_depth offset -5m)', 'queue_depth offset 1h @ end()', 'worker_up', 'worker_up == 1', 'changes(worker_up[30m])',
  'count(worker_up)', 'absent(worker_up{id="a"})', 'timestamp(worker_up)', 'vector(1) unless worker_up{id="b"}',
  'sum(worker_up) or vector(0)', 'rate(worker_up[10m])', 'idelta(http_requests_total[1m])', 'irate(http_requests_total[1m])',
  'scalar(count(worker_up))', 'time()', 'pi()', '"a string"', '42', '-1.5e3', 'vector(3) + 2', 'count_values by (job) ("v", round(rate(http_requests_total[5m])))',
  'sum by (le) (http_request_duration_seconds_bucket)', 'count without (le) (http_request_duration_seconds_bucket)',
  'avg without (job) (queue_depth) > bool 5', 'max(queue_depth) by (job) + on(job) group_left min(queue_depth) by (job)',
  'group by (job) (queue_depth)', 'stddev_over_time(http_requests_total[30m])', 'quantile(0.5, rate(traces_spanmetrics_calls_total[5m]))',
  'histogram_quantile(0.75, sum without (instance) (rate(http_request_duration_seconds_bucket{job="api"}[10m])))',
  'histogram_quantile(0, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))',
  'histogram_quantile(1, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))',
  'histogram_quantile(1.5, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))',
  'histogram_quantile(0.5, sum by (le) (rate(traces_spanmetrics_latency_bucket{service="nonexistent"}[5m])))',
  'sum(rate(traces_spanmetrics_latency_bucket{le="+Inf"}[5m])) - sum(rate(traces_spanmetrics_latency_count[5m]))',
  'increase(http_requests_total[2m])', 'increase(http_requests_total[90s])', 'rate(http_requests_total[20s])',
  'delta(queue_depth[20s])', 'last_over_time(http_requests_total[1m])', 'max_over_time(worker_up[3m])');

add('target_up', 'count_over_time(target_up[10m])', 'last_over_time(target_up[10m])', 'absent(target_up{id="gone"})',
  'target_up offset 5m', 'changes(target_up[1h])', 'count(target_up)', 'sum(target_up) by (id)');
add('odd_gauge', 'max_over_time(odd_gauge[5m])', 'min_over_time(odd_gauge[5m])', 'sum_over_time(odd_gauge[5m])',
  'avg_over_time(odd_gauge[5m])', 'sum(odd_gauge)', 'max(odd_gauge)', 'min(odd_gauge)', 'avg(odd_gauge)', 'odd_gauge > 5',
  'odd_gauge == odd_gauge', 'odd_gauge != bool 3', 'topk(1, odd_gauge)', 'bottomk(1, odd_gauge)', 'sort(odd_gauge)',
  'quantile(0.5, odd_gauge)', 'quantile_over_time(0.5, odd_gauge[10m])', 'stddev_over_time(odd_gauge[10m])',
  'clamp(odd_gauge, 0, 10)', 'deriv(odd_gauge[10m])', 'delta(odd_gauge[5m])', 'rate(odd_gauge[5m])', 'odd_gauge / 0',
  'count_values("v", odd_gauge)', 'abs(odd_gauge)', 'ln(odd_gauge)', 'predict_linear(odd_gauge[10m], 60)',
  'changes(odd_gauge[10m])', 'resets(odd_gauge[10m])', 'idelta(odd_gauge[1m])');
add('odd_labels', 'odd_labels{text=~"gr.*"}', 'odd_labels{path=""}', 'odd_labels{path!=""}', 'odd_labels{path=~".+"}',
  'odd_labels{path=~"/a b/.*"}', 'label_replace(odd_labels, "p", "[$1]", "path", "/a (.)/.*")',
  'label_join(odd_labels, "both", " | ", "path", "text")', 'count by (text) (odd_labels)', '{text="grüße → ✓"}',
  'odd_labels{nonexistent=""}', 'odd_labels{nonexistent!=""}', 'sum without (path) (odd_labels)');

add('topk(scalar(count(worker_up)), queue_depth)', 'quantile(scalar(min(queue_depth)) / 10, queue_depth)',
  'count by () (queue_depth)', 'sum without (__name__, job) (queue_depth)', '-2 ^ 2', '1 + -queue_depth',
  'queue_depth > bool on(job, instance) group_left process_resident_memory_bytes / 4e7',
  'last_over_time(rate(http_requests_total[5m])[10m:1m] offset 5m)', /* inner range 5m30s: the inner subquery runs at whole 2-minute times, and a 5m inner range would
   * put its left edge on its own 1m grid (the 2.x/3.x edge) */
  'max_over_time(max_over_time(queue_depth[5m30s:1m])[20m:2m])',
  'rate(sum(http_requests_total)[10m:1m])', 'timestamp(max_over_time(queue_depth[10m:1m]))',
  'sort_desc(sum by (job) (queue_depth))', 'absent(sum(nonexistent))', 'sum(nonexistent)', 'count(nonexistent) or vector(0)',
  'histogram_quantile(0.5, sum by (le) (rate(odd_gauge[5m])))', 'rate(http_requests_total[24h])', 'increase(traces_spanmetrics_calls_total[3h])',
  'avg_over_time(http_requests_total[1m] @ end())', 'queue_depth @ start() - queue_depth', 'round(odd_gauge / 3)',
  'floor(-odd_gauge / 4)', 'sum by (job) (rate(http_requests_total[5m])) > bool 10 * on() group_left scalar(sum(queue_depth))');
/* Queries both must refuse, with the same errorType. */
add('queue_depth + on(job) queue_depth', 'rate(queue_depth)', 'sum(rate(queue_depth[5m]))[10m]', 'queue_depth{job=~"("}',
  'histogram_quantile("a", queue_depth)', 'label_replace(queue_depth, "a-b", "x", "job", ".*")', 'nonexistent_function(queue_depth)',
  'queue_depth offset', 'sum by (job) (queue_depth) / on(instance) queue_depth', 'topk(1, queue_depth) by (job) by (x)');

/* OTEL-LGTM-Skills style rule and dashboard expressions. */
add('sum(rate(traces_spanmetrics_calls_total{status_code="STATUS_CODE_OK"}[24h])) by (test_id) / sum(rate(traces_spanmetrics_calls_total[24h])) by (test_id)',
  'sum by (test_id) (rate(traces_spanmetrics_calls_total{status_code="STATUS_CODE_OK"}[1h])) / sum by (test_id) (rate(traces_spanmetrics_calls_total[1h]))',
  'sum(increase(traces_spanmetrics_calls_total{status_code="STATUS_CODE_ERROR"}[24h])) by (test_id, service) > 0',
  '1 - (sum by (test_id) (increase(traces_spanmetrics_calls_total{status_code="STATUS_CODE_OK"}[1h])) / sum by (test_id) (increase(traces_spanmetrics_calls_total[1h])))',
  'sum by (service) (rate(traces_spanmetrics_calls_total{status_code="STATUS_CODE_ERROR"}[5m])) / sum by (service) (rate(traces_spanmetrics_calls_total[5m]))',
  'sum by (service, span_name) (rate(traces_spanmetrics_calls_total[5m]))',
  'topk(5, sum by (test_id) (increase(traces_spanmetrics_calls_total{status_code="STATUS_CODE_ERROR"}[24h])))',
  'count(sum by (test_id) (increase(traces_spanmetrics_calls_total{status_code="STATUS_CODE_ERROR"}[1h])) > 0)',
  'sum by (test_id) (changes(traces_spanmetrics_calls_total{status_code="STATUS_CODE_OK"}[1h]))',
  'sum(increase(claude_code_cost_usage_USD_total[24h])) by (model)', 'sum(rate(claude_code_cost_usage_USD_total[5m])) * 3600',
  'sum by (type) (increase(claude_code_token_usage_tokens_total[1h]))', 'sum by (model, type) (rate(claude_code_token_usage_tokens_total[5m]))',
  'sum(increase(claude_code_token_usage_tokens_total{type="cacheRead"}[1h])) / sum(increase(claude_code_token_usage_tokens_total{type=~"input|cacheRead"}[1h]))',
  'sum(increase(claude_code_session_count_total[24h]))', 'sum by (model) (claude_code_cost_usage_USD_total) / on(model) sum by (model) (claude_code_session_count_total)',
  'sum(rate(http_requests_total{status=~"5.."}[5m])) by (job) / sum(rate(http_requests_total[5m])) by (job) > 0.01',
  'sum(rate(http_requests_total[5m])) by (job)', 'sum(rate(http_requests_total{job=~"api|web", method!="POST"}[5m]))',
  'sum by (job) (rate(http_requests_total{status!~"2.."}[5m]))', 'avg by (job) (avg_over_time(process_resident_memory_bytes[10m]))',
  'max by (id) (worker_up) == 0', 'sum(worker_up)', 'count by (__name__) ({__name__=~"worker_up|queue_depth"})',
  '{__name__="queue_depth", job="api"}', 'http_requests_total{status="500"}', 'traces_spanmetrics_calls_total{test_id="t4"}');

/* Query times end in :13 or :43 s: not a multiple of any subquery step used (30 s, 1m, 2m, 5m), so
 * no subquery evaluation point falls on the left edge of a subquery range (3.x excludes it, 2.x
 * includes it). */
const INSTANTS = [3 * 60 + 13, 35 * 60 + 13, 65 * 60 + 13, 101 * 60 + 43, 132 * 60 + 13, 138 * 60 + 43]
  .map((s) => (T0 / 1000) + s);
/* The second grid (15 s steps over the last 40 minutes of data and beyond its end) is used for
 * queries without subqueries: a 15 s step would put default-step subquery points on range edges. */
const RANGES = [{ start: T0 / 1000 + 10 * 60 + 13, end: T0 / 1000 + 134 * 60 + 13, step: 60 },
  { start: T0 / 1000 + 100 * 60 + 13, end: T0 / 1000 + 145 * 60 + 13, step: 15, noSubquery: true },
  { start: T0 / 1000 + 1, end: T0 / 1000 + 140 * 60, step: 37, noSubquery: true }];

const stats = { compared: 0, nonEmpty: 0, bothFailed: 0 };
function count(b) {
  stats.compared++;
  if (b.status !== 'success') stats.bothFailed++;
  else if (!Array.isArray(b.data.result) || b.data.result.length > 0) stats.nonEmpty++;
}

const seen = new Set();
for (const expr of Q) {
  if (seen.has(expr)) continue;
  seen.add(expr);
  const skip = EXCLUDED[expr];
  test(`diff: ${expr}`, skip ? { skip } : {}, async () => {
    const problems = [];
    const ties = /\b(topk|bottomk)\b/.test(expr);
    const promExpr = REWRITE[expr] ? REWRITE[expr][0] : expr;
    for (const t of INSTANTS) {
      const params = { query: expr, time: String(t) };
      const [a, b] = await Promise.all([query(ssPort, '/api/v1/query', params),
        query(promPort, '/api/v1/query', { ...params, query: promExpr })]);
      count(b);
      for (const d of diff(a, b, ties)) problems.push(`instant time=${t}: ${d}`);
    }
    for (const RANGE of RANGES) {
      if (/\[[^\]]*:[^\]]*\]$/.test(expr)) break; /* a bare subquery is a range vector: instant only */
      if (RANGE.noSubquery && /\[[^\]]*:[^\]]*\]/.test(expr)) continue;
      const params = { query: expr, start: String(RANGE.start), end: String(RANGE.end), step: String(RANGE.step) };
      const [a, b] = await Promise.all([query(ssPort, '/api/v1/query_range', params),
        query(promPort, '/api/v1/query_range', { ...params, query: promExpr })]);
      count(b);
      for (const d of diff(a, b, ties)) problems.push(`range start=${RANGE.start} end=${RANGE.end} step=${RANGE.step}: ${d}`);
    }
    if (problems.length > 0) {
      const shown = problems.slice(0, 8);
      if (problems.length > 8) shown.push(`... and ${problems.length - 8} more differences`);
      const via = REWRITE[expr] ? ` (prometheus ran: ${promExpr})` : '';
      assert.fail(`MISMATCH ${expr}${via}\n  ${shown.join('\n  ')}`);
    }
  });
}

test('data loaded identically (series and sample counts)', async () => {
  for (const expr of ['count({__name__=~".+"})', 'count(count_over_time(queue_depth[3h]))',
    'sum(count_over_time(http_requests_total[3h]))', 'sum(sum_over_time(traces_spanmetrics_calls_total[3h]))']) {
    const t = String(T0 / 1000 + 140 * 60);
    const [a, b] = await Promise.all([query(ssPort, '/api/v1/query', { query: expr, time: t }),
      query(promPort, '/api/v1/query', { query: expr, time: t })]);
    assert.deepEqual(diff(a, b), [], expr);
  }
});

/* At the edges themselves: Skillscope must answer the 3.x way. 3.x windows are left-open, (t-r, t];
 * 2.42's are closed, [t-r, t]. With millisecond timestamps, 2.42 answers 3.x's x[5m] when asked
 * x[299999ms], so at times where a sample sits exactly on the left edge Prometheus gets the window
 * 1 ms shorter (for functions that do not divide by the range). Subqueries likewise: 3.x's [10m:1m]
 * at a whole minute is 2.42's [599999ms:1m]. */
const EDGE = [
  ['count_over_time(queue_depth[5m])', 'count_over_time(queue_depth[299999ms])'],
  ['max_over_time(http_requests_total[5m])', 'max_over_time(http_requests_total[299999ms])'],
  ['min_over_time(http_requests_total[1h])', 'min_over_time(http_requests_total[3599999ms])'],
  ['sum_over_time(queue_depth[1m])', 'sum_over_time(queue_depth[59999ms])'],
  ['changes(queue_depth[10m])', 'changes(queue_depth[599999ms])'],
  ['resets(http_requests_total[1h])', 'resets(http_requests_total[3599999ms])'],
];
/* Sample-aligned instants: a sample sits exactly r before each (r = 1m, 5m, 10m, 1h). */
const EDGE_TIMES = [40, 200, 333].map((k) => (T0 + OFFSET_MS + k * STEP_MS) / 1000);
for (const [expr, promExpr] of EDGE) {
  if (!promExpr) continue;
  test(`edge (3.x left-open window): ${expr}`, async () => {
    const problems = [];
    const r = /\[(\d+)([mh])\]/.exec(expr);
    const rangeS = Number(r[1]) * (r[2] === 'h' ? 3600 : 60);
    for (const t0 of EDGE_TIMES) {
      const t = (t0 + rangeS).toFixed(3);
      const [a, b] = await Promise.all([query(ssPort, '/api/v1/query', { query: expr, time: t }),
        query(promPort, '/api/v1/query', { query: promExpr, time: t })]);
      count(b);
      for (const d of diff(a, b)) problems.push(`instant time=${t}: ${d}`);
    }
    if (problems.length > 0) assert.fail(`MISMATCH ${expr} (prometheus ran: ${promExpr})\n  ${problems.slice(0, 8).join('\n  ')}`);
    /* The times really are edges: 2.42 given the same query counts the edge sample in. */
    const t = (EDGE_TIMES[0] + rangeS).toFixed(3);
    const [a, b] = await Promise.all([query(ssPort, '/api/v1/query', { query: expr, time: t }),
      query(promPort, '/api/v1/query', { query: expr, time: t })]);
    if (/^(count|sum|min)_over_time/.test(expr)) assert.ok(diff(a, b).length > 0, `time ${t} is no edge for ${expr}`);
  });
}
test('edge (3.x left-open subquery range): sum_over_time(queue_depth[10m:1m])', async () => {
  const problems = [];
  for (const m of [30, 77, 121]) {
    const t = String(T0 / 1000 + m * 60);
    const [a, b] = await Promise.all([
      query(ssPort, '/api/v1/query', { query: 'sum_over_time(queue_depth[10m:1m])', time: t }),
      query(promPort, '/api/v1/query', { query: 'sum_over_time(queue_depth[599999ms:1m])', time: t })]);
    count(b);
    for (const d of diff(a, b)) problems.push(`instant time=${t}: ${d}`);
  }
  if (problems.length > 0) assert.fail(`MISMATCH\n  ${problems.slice(0, 8).join('\n  ')}`);
});

/* The comparator itself must see differences: Skillscope's answer against a different Prometheus one. */
test('comparator detects value, label and presence differences', async () => {
  const t = String(T0 / 1000 + 3600 + 13);
  const pairs = [['queue_depth', 'queue_depth * 1.000001'], ['queue_depth', 'label_replace(queue_depth, "x", "y", "", "")'],
    ['queue_depth', 'queue_depth{job="api"}'], ['rate(http_requests_total[5m])', 'rate(http_requests_total[5m] offset 15s)']];
  for (const [x, y] of pairs) {
    const [a, b] = await Promise.all([query(ssPort, '/api/v1/query', { query: x, time: t }),
      query(promPort, '/api/v1/query', { query: y, time: t })]);
    assert.ok(diff(a, b).length > 0, `no difference found between ${x} and ${y}`);
  }
  console.log(`# answers compared: ${stats.compared}, non-empty: ${stats.nonEmpty}, both failed: ${stats.bothFailed}`);
  assert.ok(stats.nonEmpty > stats.compared * 0.8, 'most answers must be non-empty');
});
