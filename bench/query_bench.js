'use strict';
/*
 * query_bench.js - PromQL dashboard-query latency and remote_write ingest, Skillscope against
 * Prometheus and VictoriaMetrics in one run (issue 3). Driven by bench/query_bench.sh.
 *
 * Why: DESIGN.md sets Skillscope's metric targets relative to the two peers (ingest per server
 * CPU-second, bytes per stored sample, dashboard query latency "<= VM on every query"); the figures
 * must come from the same data on the same machine, not from a table copied from elsewhere.
 *
 * How: one deterministic data set (counters, gauges and classic histograms; SERIES series x 24 h at
 * STEP_S spacing ending now, aligned timestamps) is encoded once into snappy-compressed
 * remote_write 1.0 requests. Each server is fed alone, in time order (30-minute windows), and its
 * utime+stime from /proc/<pid>/stat is read before the first request and after the last one plus a
 * short settle, giving samples per server CPU-second. Then a dashboard query set (range queries over
 * the 24 h at Grafana-like steps) runs RUNS times per server after one warm-up; the median is
 * reported with the ratios Skillscope/Prometheus and Skillscope/VM, and a result check (series count
 * and sum of last points) says whether the three answers agree. Finally bytes on disk are counted
 * (what exactly is counted is printed with the figure). The request encoder here is a Buffer-based
 * copy of the wire format in tests/interop/remote_write.js (same field numbers), because that one
 * builds JS arrays byte by byte and is too slow for ~15M samples; remote_write.js is still used to
 * validate the encoder on a small request.
 *
 * Usage: node query_bench.js  (configuration comes from the environment set by query_bench.sh:
 * SS_PORT, PROM_PORT, VM_PORT, SS_PID, PROM_PID, VM_PID, SS_DIR, PROM_DIR, VM_DIR, SERIES, STEP_S,
 * RUNS). Prints a markdown report on stdout; progress goes to stderr.
 *
 * Query-only mode, for re-timing queries against servers that already hold the data (e.g. started
 * again on the data dirs a KEEP=1 run left): QUERY_ONLY=1 END_MS=<the end timestamp that run
 * printed> and only the *_PORT/*_PID of the servers to time (a server without a port is skipped).
 * Skillscope's peak RSS during the queries is read from /proc/<pid>/status (VmHWM, reset first
 * through /proc/<pid>/clear_refs).
 *
 * Ingest-only mode, for profiling queries against a server in the state the full run measures it
 * (recent data still in the head): INGEST_ONLY=1 and only the *_PORT/*_PID of the servers to feed;
 * the data are sent and the END_MS for QUERY_ONLY is logged, nothing is stopped.
 */

const fs = require('node:fs');
const path = require('node:path');
const rw = require(path.join(__dirname, '..', 'tests', 'interop', 'remote_write.js'));
const snappy = require(path.join(__dirname, '..', 'tests', 'interop', 'node_modules', 'snappyjs'));

const env = process.env;
const SERIES = Number(env.SERIES || 10000);
const STEP_S = Number(env.STEP_S || 60);
const RUNS = Number(env.RUNS || 5);
const HOURS = Number(env.HOURS || 24);
const servers = [
  { name: 'Skillscope', port: env.SS_PORT, pid: env.SS_PID, dir: env.SS_DIR },
  { name: 'Prometheus', port: env.PROM_PORT, pid: env.PROM_PID, dir: env.PROM_DIR },
  { name: 'VictoriaMetrics', port: env.VM_PORT, pid: env.VM_PID, dir: env.VM_DIR },
];
const QUERY_ONLY = env.QUERY_ONLY === '1';
const INGEST_ONLY = env.INGEST_ONLY === '1';

function log(...a) {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${a.join(' ')}\n`);
}

/* ---- deterministic data ------------------------------------------------------------------------ */

let seed = 0x2545f491;
function rnd() {
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed / 4294967296;
}

const LE = ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '+Inf'];
const ROUTES = ['/api/chat', '/api/search', '/api/skills', '/api/run', '/login', '/health', '/api/eval', '/api/logs'];
const CODES = ['200', '201', '400', '404', '500', '503'];

/* Series plan: ~24 % histogram series (13 per label set), ~50 % counters, the rest gauges. */
function planSeries() {
  const list = [];
  const nHist = Math.max(1, Math.floor((SERIES * 0.24) / 13));
  for (let i = 0; i < nHist; i++) {
    const base = { job: `svc-${i % 10}`, instance: `host-${i % 50}:9100`, route: ROUTES[i % ROUTES.length], shard: String(i) };
    const rate = 1 + rnd() * 20;
    const mu = Math.log(0.02 + rnd() * 0.3);
    for (const le of LE) list.push({ labels: { __name__: 'http_request_duration_seconds_bucket', ...base, le }, kind: 'bucket', rate, mu, le: le === '+Inf' ? Infinity : Number(le) });
    list.push({ labels: { __name__: 'http_request_duration_seconds_sum', ...base }, kind: 'hsum', rate, mu });
    list.push({ labels: { __name__: 'http_request_duration_seconds_count', ...base }, kind: 'hcount', rate, mu });
  }
  const nCounter = Math.floor(SERIES * 0.5);
  for (let i = 0; i < nCounter; i++) {
    list.push({
      labels: { __name__: 'http_requests_total', job: `svc-${i % 10}`, instance: `host-${i % 50}:9100`, route: ROUTES[(i >> 1) % ROUTES.length], code: CODES[i % CODES.length], shard: String(i) },
      kind: 'counter', rate: (CODES[i % CODES.length] >= '500' ? 0.05 : 1) * (0.5 + rnd() * 10),
    });
  }
  const nGauge = Math.max(0, SERIES - list.length);
  for (let i = 0; i < nGauge; i++) {
    list.push({ labels: { __name__: 'queue_depth', job: `svc-${i % 10}`, instance: `host-${i % 50}:9100`, queue: `q${i}` }, kind: 'gauge', level: 100 + rnd() * 900 });
  }
  return list;
}

/* Normal CDF approximation, for log-normal latency bucket fractions. */
function ncdf(x) {
  const t = 1 / (1 + 0.2316419 * Math.abs(x));
  const d = 0.3989423 * Math.exp((-x * x) / 2);
  const p = d * t * (0.3193815 + t * (-0.3565638 + t * (1.781478 + t * (-1.821256 + t * 1.330274))));
  return x > 0 ? 1 - p : p;
}

/* Per series state advanced one step; histogram series of one label set share the request count. */
function nextValue(s, st, histCount) {
  switch (s.kind) {
    case 'counter':
      st.v += Math.floor(s.rate * STEP_S * (0.5 + rnd()));
      return st.v;
    case 'gauge':
      st.v = Math.max(0, Math.round((st.v === 0 ? s.level : st.v) + (rnd() - 0.5) * 20));
      return st.v;
    case 'bucket':
      return s.le === Infinity ? histCount.c : Math.floor(histCount.c * ncdf((Math.log(s.le) - s.mu) / 0.8));
    case 'hcount':
      return histCount.c;
    case 'hsum':
      return Math.round(histCount.c * Math.exp(s.mu + 0.32) * 1000) / 1000;
    default:
      throw new Error(`unknown kind ${s.kind}`);
  }
}

/* ---- fast remote_write encoding (same wire format as tests/interop/remote_write.js) ---------- */

function varintLen(n) {
  let l = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    l++;
  }
  return l;
}

function putVarint(b, off, n) {
  while (n >= 128) {
    b[off++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  b[off++] = n;
  return off;
}

function labelBytes(labels) {
  const parts = [];
  for (const k of Object.keys(labels).sort()) {
    const kb = Buffer.from(k);
    const vb = Buffer.from(labels[k]);
    const inner = Buffer.alloc(2 + varintLen(kb.length) + kb.length + varintLen(vb.length) + vb.length);
    let o = 0;
    inner[o++] = 0x0a;
    o = putVarint(inner, o, kb.length);
    o += kb.copy(inner, o);
    inner[o++] = 0x12;
    o = putVarint(inner, o, vb.length);
    o += vb.copy(inner, o);
    const outer = Buffer.alloc(1 + varintLen(inner.length) + inner.length);
    let p = 0;
    outer[p++] = 0x0a;
    p = putVarint(outer, p, inner.length);
    inner.copy(outer, p);
    parts.push(outer);
  }
  return Buffer.concat(parts);
}

/* series: [{lb: Buffer (encoded TimeSeries.labels), samples: [[ts, v], ...]}] */
function encodeFast(series) {
  let total = 0;
  const tsLens = [];
  for (const s of series) {
    let l = s.lb.length;
    for (const [ts] of s.samples) {
      const sl = 10 + varintLen(ts);
      l += 1 + varintLen(sl) + sl;
    }
    tsLens.push(l);
    total += 1 + varintLen(l) + l;
  }
  const b = Buffer.alloc(total);
  let o = 0;
  series.forEach((s, i) => {
    b[o++] = 0x0a;
    o = putVarint(b, o, tsLens[i]);
    o += s.lb.copy(b, o);
    for (const [ts, v] of s.samples) {
      b[o++] = 0x12;
      o = putVarint(b, o, 10 + varintLen(ts));
      b[o++] = 0x09;
      b.writeDoubleLE(v, o);
      o += 8;
      b[o++] = 0x10;
      o = putVarint(b, o, ts);
    }
  });
  if (o !== total) throw new Error('encoder length mismatch');
  return b;
}

function checkEncoder() {
  const labels = { __name__: 'x_total', a: 'b', zz: 'ünïcode' };
  const samples = [[1700000000000, 1.5], [1700000060000, 2], [1700000120000, 1e300]];
  const ref = rw.encodeWriteRequest([{ labels, samples }]);
  const mine = encodeFast([{ lb: labelBytes(labels), samples }]);
  if (!ref.equals(mine)) throw new Error('fast encoder disagrees with tests/interop/remote_write.js');
}

/* Builds every request, in time order: 30-minute windows x groups of 500 series. */
function buildRequests(plan, startMs, endMs) {
  const stepMs = STEP_S * 1000;
  const windowMs = 30 * 60 * 1000;
  const lbs = plan.map((s) => labelBytes(s.labels));
  const state = plan.map(() => ({ v: 0 }));
  const histCounts = new Map();
  plan.forEach((s) => {
    if (s.kind === 'bucket' || s.kind === 'hsum' || s.kind === 'hcount') {
      const key = s.labels.shard + '/' + s.labels.job;
      if (!histCounts.has(key)) histCounts.set(key, { c: 0, rate: s.rate, key });
      s.hc = histCounts.get(key);
    }
  });
  const reqs = [];
  let samples = 0;
  let rawBytes = 0;
  for (let w = startMs; w <= endMs; w += windowMs) {
    const we = Math.min(endMs, w + windowMs - stepMs);
    const perSeries = plan.map(() => []);
    for (let t = w; t <= we; t += stepMs) {
      for (const hc of histCounts.values()) hc.c += Math.floor(hc.rate * STEP_S * (0.5 + rnd()));
      plan.forEach((s, i) => perSeries[i].push([t, nextValue(s, state[i], s.hc)]));
    }
    for (let g = 0; g < plan.length; g += 500) {
      const batch = [];
      for (let i = g; i < Math.min(plan.length, g + 500); i++) {
        batch.push({ lb: lbs[i], samples: perSeries[i] });
        samples += perSeries[i].length;
      }
      const raw = encodeFast(batch);
      rawBytes += raw.length;
      reqs.push(Buffer.from(snappy.compress(raw)));
    }
  }
  return { reqs, samples, rawBytes };
}

/* ---- servers --------------------------------------------------------------------------------- */

function cpuSeconds(pid) {
  const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; /* utime, stime in USER_HZ (100 on Linux) */
}

async function post(port, body) {
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/write`, {
    method: 'POST',
    body,
    headers: {
      'Content-Encoding': 'snappy',
      'Content-Type': 'application/x-protobuf',
      'X-Prometheus-Remote-Write-Version': '0.1.0',
    },
  });
  const text = await res.text();
  if (res.status < 200 || res.status > 299) throw new Error(`write to :${port} -> ${res.status} ${text.slice(0, 300)}`);
}

async function ingest(srv, reqs) {
  const conc = 2;
  const c0 = cpuSeconds(srv.pid);
  const t0 = Date.now();
  let next = 0;
  async function worker() {
    while (next < reqs.length) await post(srv.port, reqs[next++]);
  }
  await Promise.all(Array.from({ length: conc }, worker));
  const wall = (Date.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 3000));
  return { cpu: cpuSeconds(srv.pid) - c0, wall };
}

function dirBytes(dir, filter) {
  let n = 0;
  if (!fs.existsSync(dir)) return 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) n += dirBytes(p, filter);
    else if (e.isFile() && (!filter || filter(p))) n += fs.statSync(p).size;
  }
  return n;
}

/* ---- queries --------------------------------------------------------------------------------- */

function querySet(endS) {
  const start = endS - HOURS * 3600;
  const r = (name, q, step) => ({ name, q, start, end: endS, step });
  return [
    r('sum(rate) total', 'sum(rate(http_requests_total[5m]))', 60),
    r('sum by (route) rate', 'sum by (route) (rate(http_requests_total[5m]))', 60),
    r('error ratio by job', 'sum by (job) (rate(http_requests_total{code=~"5.."}[5m])) / sum by (job) (rate(http_requests_total[5m]))', 60),
    r('p99 histogram_quantile', 'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))', 60),
    r('p50 by route', 'histogram_quantile(0.5, sum by (le, route) (rate(http_request_duration_seconds_bucket[5m])))', 120),
    r('mean latency sum/count', 'sum(rate(http_request_duration_seconds_sum[5m])) / sum(rate(http_request_duration_seconds_count[5m]))', 60),
    r('topk(10) instances', 'topk(10, sum by (instance) (rate(http_requests_total[5m])))', 120),
    r('increase over 7d', 'sum by (job) (increase(http_requests_total[7d]))', 3600),
    r('offset 1h comparison', 'sum by (job) (rate(http_requests_total[5m])) - sum by (job) (rate(http_requests_total[5m] offset 1h))', 120),
    r('avg gauge by instance', 'avg by (instance) (queue_depth)', 60),
    r('topk(5) max_over_time 1h', 'topk(5, max_over_time(queue_depth[1h]))', 300),
  ];
}

async function runQuery(srv, q) {
  const body = new URLSearchParams({ query: q.q, start: String(q.start), end: String(q.end), step: String(q.step) });
  const t0 = process.hrtime.bigint();
  const res = await fetch(`http://127.0.0.1:${srv.port}/api/v1/query_range`, {
    method: 'POST',
    body,
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
  });
  const text = await res.text();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  let j;
  try {
    j = JSON.parse(text);
  } catch (e) {
    return { ms, err: `${res.status} ${text.slice(0, 200)}` };
  }
  if (j.status !== 'success') return { ms, err: `${res.status} ${j.errorType || ''}: ${(j.error || '').slice(0, 200)}` };
  let sum = 0;
  let points = 0;
  for (const s of j.data.result) {
    points += s.values.length;
    const last = Number(s.values[s.values.length - 1][1]);
    if (Number.isFinite(last)) sum += last;
  }
  return { ms, series: j.data.result.length, points, sum };
}

function median(a) {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function fmtMs(v) {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

function agree(a, b) {
  if (!a || !b || a.err || b.err) return false;
  if (a.series !== b.series) return false;
  const d = Math.abs(a.sum - b.sum);
  return d <= 1e-6 * Math.max(1, Math.abs(a.sum), Math.abs(b.sum)) || d <= 0.02 * Math.max(Math.abs(a.sum), Math.abs(b.sum));
}

function statusKb(pid, field) {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  return m ? Number(m[1]) : NaN;
}

/* Times every query on every server (one warm-up, then RUNS runs); returns Skillscope's peak RSS
 * in MiB over the queries (NaN when it cannot be read). */
async function timeQueries(qs, list) {
  const ss = list.find((x) => x.name === 'Skillscope');
  let rssOk = false;
  if (ss && ss.pid) {
    try {
      fs.writeFileSync(`/proc/${ss.pid}/clear_refs`, '5');
      rssOk = true;
    } catch (e) {
      log(`cannot reset peak RSS of ${ss.pid}: ${e.message}`);
    }
  }
  /* The timed runs of one query are interleaved across the servers (round i starts with server
   * i mod n), so a change in the machine's speed during the run (the 2 cores are shared) weighs on
   * every server alike instead of on whichever ran its five in a row at the time. */
  for (const q of qs) {
    q.res = {};
    const st = new Map();
    for (const srv of list) {
      const first = await runQuery(srv, q); /* warm-up, also the result compared below */
      st.set(srv, { first, times: [], err: first.err });
    }
    for (let i = 0; i < RUNS; i++) {
      for (let k = 0; k < list.length; k++) {
        const srv = list[(i + k) % list.length];
        const x = st.get(srv);
        if (x.err) continue;
        const r = await runQuery(srv, q);
        if (r.err) x.err = r.err;
        x.times.push(r.ms);
      }
    }
    for (const srv of list) {
      const { first, times, err } = st.get(srv);
      q.res[srv.name] = { ...first, med: err ? null : median(times), err };
      log(`  ${q.name} ${srv.name}: ${err ? 'ERROR ' + err : fmtMs(median(times)) + ' ms'} (${first.series} series)`);
    }
  }
  return rssOk ? statusKb(ss.pid, 'VmHWM') / 1024 : NaN;
}

/* QUERY_ONLY=1: time the queries on the servers given by port, print the table, stop nothing. */
async function queryOnly() {
  const endMs = Number(env.END_MS);
  if (!Number.isFinite(endMs)) throw new Error('QUERY_ONLY needs END_MS');
  const list = servers.filter((x) => x.port);
  const qs = querySet(Math.floor(endMs / 1000));
  const rss = await timeQueries(qs, list);
  const out = [];
  out.push(`| query (step) | ${list.map((x) => x.name + ' ms').join(' | ')} | series | last-point sum |`);
  out.push(`|---|${list.map(() => '---:').join('|')}|---|---|`);
  for (const q of qs) {
    const rs = list.map((x) => q.res[x.name]);
    out.push(`| ${q.name} (${q.step}s) | ${rs.map((r) => (r.err ? 'error' : fmtMs(r.med))).join(' | ')} | ${rs.map((r) => r.series).join('/')} | ${rs.map((r) => (r.err ? '-' : r.sum.toPrecision(8))).join('/')} |`);
  }
  if (Number.isFinite(rss)) out.push(`\nSkillscope peak RSS during the queries: ${rss.toFixed(1)} MiB`);
  process.stdout.write(out.join('\n') + '\n');
}

/* ---- main ------------------------------------------------------------------------------------ */

async function main() {
  if (QUERY_ONLY) return queryOnly();
  checkEncoder();
  const stepMs = STEP_S * 1000;
  const endMs = Math.floor(Date.now() / stepMs) * stepMs - stepMs;
  log(`data ends at END_MS=${endMs}`);
  const startMs = endMs - HOURS * 3600 * 1000 + stepMs;
  const plan = planSeries();
  log(`encoding ${plan.length} series x ${HOURS} h at ${STEP_S} s ...`);
  const t0 = Date.now();
  const { reqs, samples, rawBytes } = buildRequests(plan, startMs, endMs);
  const wireBytes = reqs.reduce((n, b) => n + b.length, 0);
  log(`${reqs.length} requests, ${samples} samples, ${(rawBytes / 1e6).toFixed(1)} MB raw, ${(wireBytes / 1e6).toFixed(1)} MB snappy, ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  for (const srv of servers) {
    if (INGEST_ONLY && !srv.port) continue;
    log(`ingest -> ${srv.name}`);
    srv.ing = await ingest(srv, reqs);
    log(`  ${srv.name}: ${srv.ing.cpu.toFixed(2)} CPU-s, ${srv.ing.wall.toFixed(1)} s wall, ${(samples / srv.ing.cpu / 1000).toFixed(0)}k samples/CPU-s`);
  }
  if (INGEST_ONLY) return;
  const vm = servers[2];
  await fetch(`http://127.0.0.1:${vm.port}/internal/force_flush`);
  await new Promise((r) => setTimeout(r, 3000));

  const qs = querySet(Math.floor(endMs / 1000));
  const rss = await timeQueries(qs, servers);

  /* Bytes on disk. Skillscope is stopped by the driver first (SIGTERM writes the head to a block). */
  const ssPid = servers[0].pid;
  process.kill(Number(ssPid), 'SIGTERM');
  for (let i = 0; i < 600; i++) {
    try {
      process.kill(Number(ssPid), 0);
    } catch (e) {
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 500));
  const ssBlocks = dirBytes(path.join(servers[0].dir, 'blocks'), (p) => /\/(index|chunks)$/.test(p) || /\/chunks\//.test(p));
  const ssAll = dirBytes(servers[0].dir);
  const promAll = dirBytes(servers[1].dir);
  const promBlocks = dirBytes(servers[1].dir, (p) => !/\/(wal|chunks_head)\//.test(p) && /\/01[0-9A-Z]{24}\//.test(p));
  const vmAll = dirBytes(servers[2].dir);

  /* ---- report ---- */
  const out = [];
  const P = (s) => out.push(s);
  P(`Workload: ${plan.length} series (${plan.filter((s) => s.kind === 'counter').length} counters, ${plan.filter((s) => s.kind === 'gauge').length} gauges, ${plan.filter((s) => /^(bucket|hsum|hcount)$/.test(s.kind)).length} classic-histogram series), ` +
    `${HOURS} h at ${STEP_S} s aligned spacing = ${samples.toLocaleString('en-US')} samples in ${reqs.length} remote_write requests (${(wireBytes / 1e6).toFixed(1)} MB snappy). ` +
    `Query latency: median of ${RUNS} runs after one warm-up (runs interleaved across the servers), POST /api/v1/query_range over the ${HOURS} h window.`);
  P('');
  P('| query (step) | Skillscope ms | Prometheus ms | VictoriaMetrics ms | SS/Prom | SS/VM | results agree |');
  P('|---|---:|---:|---:|---:|---:|---|');
  for (const q of qs) {
    const [s, p, v] = servers.map((x) => q.res[x.name]);
    const cell = (r) => (r.err ? 'error' : fmtMs(r.med));
    const ratio = (a, b) => (a.err || b.err ? '-' : (a.med / b.med).toFixed(2));
    const ag = `SS=Prom ${agree(s, p) ? 'yes' : 'NO'}, SS=VM ${agree(s, v) ? 'yes' : 'NO'}`;
    P(`| ${q.name} (${q.step}s) | ${cell(s)} | ${cell(p)} | ${cell(v)} | ${ratio(s, p)} | ${ratio(s, v)} | ${ag} |`);
  }
  const [S, Pr, V] = servers;
  const rate = (x) => `${Math.round(samples / x.ing.cpu / 1000)}k`;
  P(`| **ingest, samples per server CPU-second** | ${rate(S)} | ${rate(Pr)} | ${rate(V)} | ${(Pr.ing.cpu / S.ing.cpu).toFixed(2)}x Prom | ${(V.ing.cpu / S.ing.cpu).toFixed(2)}x VM | CPU-s: ${S.ing.cpu.toFixed(1)} / ${Pr.ing.cpu.toFixed(1)} / ${V.ing.cpu.toFixed(1)} |`);
  const bps = (b) => (b / samples).toFixed(2);
  P(`| **bytes per stored sample** | ${bps(ssBlocks)} | ${bps(promAll)} | ${bps(vmAll)} | ${(ssBlocks / promAll).toFixed(2)} | ${(ssBlocks / vmAll).toFixed(2)} | see below |`);
  P('');
  P('Errors and disagreements:');
  let any = false;
  for (const q of qs) {
    for (const srv of servers) {
      const r = q.res[srv.name];
      if (r.err) {
        any = true;
        P(`- ${q.name} on ${srv.name}: ${r.err}`);
      }
    }
    const [s, p, v] = servers.map((x) => q.res[x.name]);
    if (!s.err && !p.err && (!agree(s, p) || !agree(s, v))) {
      any = true;
      P(`- ${q.name}: series ${s.series}/${p.series}/${v.series}, sum of last points ${s.sum.toPrecision(6)}/${p.sum.toPrecision(6)}/${v.err ? '-' : v.sum.toPrecision(6)} (SS/Prom/VM)`);
    }
  }
  if (!any) P('- none');
  P('');
  P(`Bytes counted: Skillscope = index + chunks files under blocks/ after a clean stop (${ssBlocks.toLocaleString('en-US')} B; whole data dir incl. WAL ${ssAll.toLocaleString('en-US')} B = ${bps(ssAll)} per sample); ` +
    `Prometheus = whole data dir, blocks + WAL + chunks_head, server still running (${promAll.toLocaleString('en-US')} B; persisted blocks alone ${promBlocks.toLocaleString('en-US')} B); ` +
    `VictoriaMetrics = whole data dir after /internal/force_flush (${vmAll.toLocaleString('en-US')} B).`);
  if (Number.isFinite(rss)) P(`Skillscope peak RSS during the queries (VmHWM, reset before the first query): ${rss.toFixed(1)} MiB.`);
  P(`Ingest wall time: Skillscope ${S.ing.wall.toFixed(1)} s, Prometheus ${Pr.ing.wall.toFixed(1)} s, VictoriaMetrics ${V.ing.wall.toFixed(1)} s (2 requests in flight; CPU read 3 s after the last reply).`);
  process.stdout.write(out.join('\n') + '\n');
}

main().catch((e) => {
  log('FAILED:', e.stack || e);
  process.exit(1);
});
