// needs-deb: prometheus prometheus-node-exporter python3-prometheus-client
'use strict';
/*
 * scrape.test.js - Skillscope scraping real exposition producers nobody here wrote, side by side
 * with the real Prometheus scraping the same targets from the same scrape_configs file.
 *
 * Why: the exposition formats and Prometheus' scrape semantics (target labels, relabelling,
 * /api/v1/targets, metadata) are only proven against real producers and the real consumer.
 *
 * How: Debian's prometheus-node-exporter (a fixed set of collectors that need no privileges),
 * Debian's prometheus (its own /metrics), and a tiny exporter written with Debian's
 * python3-prometheus-client (which answers OpenMetrics when asked, as Prometheus asks) start on
 * free loopback ports with temp dirs. One YAML file with their scrape_configs (relabelling, a
 * dropped and a failing target included) is given to both `skillscope serve --config` and
 * `prometheus --config.file`. Then:
 *   - values Skillscope stored equal what the producers' /metrics show right now (build_info
 *     labels, series counts per name, stable values such as MemTotal, the python exporter's fixed
 *     values), and the metadata types and help texts equal their # TYPE / # HELP lines;
 *   - /api/v1/targets of both agree target by target (discoveredLabels, labels, scrapePool,
 *     scrapeUrl, globalUrl, health, scrapeInterval, scrapeTimeout) and on droppedTargets;
 *   - the series label sets of the node and python jobs are the same in both stores.
 * Every process is stopped by PID at the end (and recorded in SKILLSCOPE_INTEROP_PIDS).
 */

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = process.env.SKILLSCOPE_BIN || path.join(ROOT, 'skillscope');
const PROM = process.env.PROMETHEUS_BIN || 'prometheus';
const NODE_EXPORTER = process.env.NODE_EXPORTER_BIN || 'prometheus-node-exporter';
/* Debian's python3-prometheus-client installs for Debian's interpreter, not a pyenv one on PATH. */
const DEB_PYTHON = process.env.DEB_PYTHON_BIN || '/usr/bin/python3';
const OM_ACCEPT = 'application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1';

const procs = [];
let tmp = null;
const port = {};

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

function tail(rec) {
  try {
    return fs.readFileSync(rec.logPath, 'utf8').slice(-1500);
  } catch (e) {
    return '(no log)';
  }
}

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

/* A python3-prometheus-client exporter with fixed values of every type. */
const PY_EXPORTER = `
import sys, time
from prometheus_client import Counter, Gauge, Histogram, Summary, Info, Enum, start_http_server
c = Counter('interop_jobs', 'Jobs processed.', ['kind'])
c.labels(kind='a').inc(3)
c.labels(kind='b "quoted"').inc(4.5)
g = Gauge('interop_temperature_celsius', 'A gauge with a unit.', unit='celsius')
g.set(-7.25)
h = Histogram('interop_latency_seconds', 'Latency.', buckets=(0.1, 1.0))
for v in (0.05, 0.5, 2.0):
    h.observe(v)
s = Summary('interop_size_bytes', 'Sizes.')
s.observe(10)
s.observe(30)
Info('interop_build', 'Build info.').info({'version': '1.2.3', 'branch': 'main'})
Enum('interop_state', 'State.', states=['starting', 'running']).state('running')
start_http_server(int(sys.argv[1]), addr='127.0.0.1')
while True:
    time.sleep(3600)
`;

function configYaml() {
  return `global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ['127.0.0.1:${port.node}']
        labels: {env: interop}
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: 'go_.*'
        action: drop
  - job_name: prom
    static_configs:
      - targets: ['127.0.0.1:${port.prom}']
  - job_name: py
    static_configs:
      - targets: ['127.0.0.1:${port.py}']
    relabel_configs:
      - source_labels: [__address__]
        regex: '(.*):(\\d+)'
        target_label: port
        replacement: 'p$2'
  - job_name: gone
    static_configs:
      - targets: ['127.0.0.1:1', 'localhost:${port.dead}']
    relabel_configs:
      - source_labels: [__address__]
        regex: '127\\..*'
        action: drop
`;
}

async function getJSON(p, pathq) {
  const r = await fetch(`http://127.0.0.1:${p}${pathq}`);
  const text = await r.text();
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`GET ${pathq} on ${p}: HTTP ${r.status} ${text.slice(0, 300)}`);
  }
}

async function query(p, q) {
  const j = await getJSON(p, `/api/v1/query?query=${encodeURIComponent(q)}`);
  assert.equal(j.status, 'success', `${q}: ${JSON.stringify(j)}`);
  return j.data.result;
}

/* Parses 0.0.4 text just enough for the comparisons here (our reference: a few lines of JS). */
function parseText(text) {
  const samples = [];
  const types = {};
  const help = {};
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      types[name] = type;
    } else if (line.startsWith('# HELP ')) {
      const rest = line.slice(7);
      const i = rest.indexOf(' ');
      help[rest.slice(0, i)] = rest.slice(i + 1).replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
    } else if (line && !line.startsWith('#')) {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)/.exec(line);
      if (!m) continue;
      const labels = {};
      if (m[2]) {
        const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
        let x;
        while ((x = re.exec(m[2]))) labels[x[1]] = x[2].replace(/\\"/g, '"').replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
      }
      samples.push({ name: m[1], labels, value: m[3] });
    }
  }
  return { samples, types, help };
}

async function scrapeText(p) {
  const r = await fetch(`http://127.0.0.1:${p}/metrics`);
  return parseText(await r.text());
}

/* Waits until every target of both servers has been scraped at least twice. */
async function waitScraped() {
  const t0 = Date.now();
  for (;;) {
    const [a, b] = await Promise.all([getJSON(port.ss, '/api/v1/targets'), getJSON(port.prom, '/api/v1/targets')]);
    const ready = (j) => j.data.activeTargets.length === 4 &&
      j.data.activeTargets.every((t) => !t.lastScrape.startsWith('0001') && Date.parse(t.lastScrape) > t0 + 1100);
    if (ready(a) && ready(b)) return [a, b];
    if (Date.now() - t0 > 30000) throw new Error(`targets not scraped in 30 s: ${JSON.stringify(a.data)} / ${JSON.stringify(b.data)}`);
    await sleep(200);
  }
}

const labelKey = (m) => JSON.stringify(Object.keys(m).sort().map((k) => [k, m[k]]));

let targets = null;

before(async () => {
  tmp = fs.mkdtempSync(path.join(process.env.SKILLSCOPE_INTEROP_TMP || os.tmpdir(), 'scrape-'));
  for (const k of ['ss', 'otlp', 'grpc', 'prom', 'node', 'py', 'dead']) port[k] = await freePort();
  const cfg = path.join(tmp, 'scrape.yml');
  fs.writeFileSync(cfg, configYaml());
  fs.writeFileSync(path.join(tmp, 'exporter.py'), PY_EXPORTER);
  const ne = start('node_exporter', NODE_EXPORTER, [`--web.listen-address=127.0.0.1:${port.node}`,
    '--collector.disable-defaults', '--collector.cpu', '--collector.meminfo', '--collector.loadavg',
    '--collector.uname', '--collector.stat', '--collector.filefd'], `http://127.0.0.1:${port.node}/metrics`);
  const py = start('py_exporter', DEB_PYTHON, [path.join(tmp, 'exporter.py'), String(port.py)],
    `http://127.0.0.1:${port.py}/metrics`);
  await Promise.all([ne, py]);
  const ss = start('skillscope', BIN, ['serve', '--data-dir', path.join(tmp, 'ss-data'), '--listen', '127.0.0.1',
    '--http-port', String(port.ss), '--otlp-http-port', String(port.otlp), '--otlp-grpc-port', String(port.grpc),
    '--config', cfg], `http://127.0.0.1:${port.ss}/-/ready`);
  const pr = start('prometheus', PROM, [`--config.file=${cfg}`, `--storage.tsdb.path=${path.join(tmp, 'prom-data')}`,
    `--web.listen-address=127.0.0.1:${port.prom}`], `http://127.0.0.1:${port.prom}/-/ready`);
  await Promise.all([ss, pr]);
  targets = await waitScraped();
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

test('the python exporter answers OpenMetrics to the scrape Accept header', async () => {
  const r = await fetch(`http://127.0.0.1:${port.py}/metrics`, { headers: { Accept: OM_ACCEPT } });
  assert.match(r.headers.get('content-type'), /^application\/openmetrics-text/);
  assert.match(await r.text(), /# EOF\n$/);
});

test('/api/v1/targets agrees with Prometheus target by target', async () => {
  const [ss, pr] = targets;
  const byUrl = (j) => Object.fromEntries(j.data.activeTargets.map((t) => [t.scrapeUrl, t]));
  const a = byUrl(ss);
  const b = byUrl(pr);
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
  for (const url of Object.keys(b)) {
    for (const k of ['discoveredLabels', 'labels', 'scrapePool', 'scrapeUrl', 'globalUrl', 'health', 'scrapeInterval', 'scrapeTimeout']) {
      assert.deepEqual(a[url][k], b[url][k], `${url} ${k}`);
    }
    assert.deepEqual(Object.keys(a[url]).sort(), Object.keys(b[url]).sort(), `${url} keys`);
    assert.equal(a[url].lastError === '', b[url].lastError === '', `${url} lastError: ${a[url].lastError} / ${b[url].lastError}`);
  }
  const dropped = (j) => j.data.droppedTargets.map((t) => labelKey(t.discoveredLabels)).sort();
  assert.deepEqual(dropped(ss), dropped(pr));
  assert.equal(ss.data.droppedTargets.length, 1);
  for (const url of Object.keys(a)) {
    if (a[url].scrapePool === 'gone') assert.equal(a[url].health, 'down');
    else assert.equal(a[url].health, 'up', `${url}: ${a[url].lastError}`);
  }
});

test('node_exporter: build info, series counts and values equal its /metrics', async () => {
  const exp = await scrapeText(port.node);
  const bi = exp.samples.find((s) => s.name === 'node_exporter_build_info');
  assert.ok(bi);
  const got = await query(port.ss, 'node_exporter_build_info');
  assert.equal(got.length, 1);
  assert.deepEqual(got[0].metric, { __name__: 'node_exporter_build_info', ...bi.labels, job: 'node', env: 'interop', instance: `127.0.0.1:${port.node}` });
  assert.equal(got[0].value[1], '1');
  for (const name of ['node_cpu_seconds_total', 'node_load1', 'node_memory_MemTotal_bytes', 'node_scrape_collector_success', 'node_uname_info']) {
    const want = exp.samples.filter((s) => s.name === name).length;
    assert.ok(want > 0, `${name} exposed`);
    const r = await query(port.ss, `count(${name}{job="node"})`);
    assert.equal(r[0].value[1], String(want), name);
  }
  const mem = exp.samples.find((s) => s.name === 'node_memory_MemTotal_bytes');
  const r = await query(port.ss, 'node_memory_MemTotal_bytes');
  assert.equal(Number(r[0].value[1]), Number(mem.value));
  const un = exp.samples.find((s) => s.name === 'node_uname_info');
  const u = await query(port.ss, 'node_uname_info');
  assert.equal(u[0].metric.nodename, un.labels.nodename);
  assert.equal(u[0].metric.release, un.labels.release);
  // metric_relabel_configs dropped go_*
  assert.deepEqual(await query(port.ss, '{__name__=~"go_.*", job="node"}'), []);
  assert.ok(exp.samples.some((s) => s.name.startsWith('go_')));
  // scrape_samples_scraped counts every exposed sample, post-relabelling the kept ones
  const scraped = Number((await query(port.ss, 'scrape_samples_scraped{job="node"}'))[0].value[1]);
  const post = Number((await query(port.ss, 'scrape_samples_post_metric_relabeling{job="node"}'))[0].value[1]);
  const goCount = exp.samples.filter((s) => s.name.startsWith('go_')).length;
  assert.equal(scraped - post, goCount);
  assert.ok(Math.abs(scraped - exp.samples.length) <= 2, `${scraped} vs ${exp.samples.length}`);
});

test('node_exporter: metadata types and help texts equal # TYPE / # HELP', async () => {
  const exp = await scrapeText(port.node);
  const md = (await getJSON(port.ss, '/api/v1/metadata')).data;
  for (const name of ['node_cpu_seconds_total', 'node_load1', 'node_memory_MemTotal_bytes', 'node_exporter_build_info', 'node_scrape_collector_duration_seconds']) {
    assert.ok(md[name], `metadata for ${name}`);
    assert.equal(md[name][0].type, exp.types[name], name);
    assert.equal(md[name][0].help, exp.help[name], name);
  }
});

test('prometheus: build info and stable series equal its /metrics', async () => {
  const exp = await scrapeText(port.prom);
  const bi = exp.samples.find((s) => s.name === 'prometheus_build_info');
  const got = await query(port.ss, 'prometheus_build_info');
  assert.equal(got.length, 1);
  assert.deepEqual(got[0].metric, { __name__: 'prometheus_build_info', ...bi.labels, job: 'prom', instance: `127.0.0.1:${port.prom}` });
  for (const name of ['prometheus_tsdb_compaction_chunk_range_seconds_bucket', 'prometheus_engine_query_duration_seconds', 'prometheus_config_last_reload_successful']) {
    const want = exp.samples.filter((s) => s.name === name).length;
    assert.ok(want > 0, `${name} exposed`);
    const r = await query(port.ss, `count(${name}{job="prom"})`);
    assert.equal(r[0].value[1], String(want), name);
  }
  const md = (await getJSON(port.ss, '/api/v1/metadata')).data;
  assert.equal(md.prometheus_http_request_duration_seconds[0].type, 'histogram');
  assert.equal(md.prometheus_engine_query_duration_seconds[0].type, 'summary');
  assert.equal(md.prometheus_build_info[0].type, 'gauge');
  assert.equal(md.prometheus_tsdb_head_series[0].help, exp.help.prometheus_tsdb_head_series);
});

test('python exporter (OpenMetrics): values as set, same series as Prometheus stored', async () => {
  const ss = async (q) => (await query(port.ss, q)).map((r) => [labelKey(r.metric), r.value[1]]).sort();
  const pr = async (q) => (await query(port.prom, q)).map((r) => [labelKey(r.metric), r.value[1]]).sort();
  const inst = { instance: `127.0.0.1:${port.py}`, job: 'py', port: `p${port.py}` };
  assert.deepEqual(await ss('interop_jobs_total'), [
    [labelKey({ __name__: 'interop_jobs_total', kind: 'a', ...inst }), '3'],
    [labelKey({ __name__: 'interop_jobs_total', kind: 'b "quoted"', ...inst }), '4.5'],
  ]);
  assert.deepEqual(await ss('interop_temperature_celsius'), [[labelKey({ __name__: 'interop_temperature_celsius', ...inst }), '-7.25']]);
  assert.deepEqual(await ss('interop_latency_seconds_bucket'), [
    [labelKey({ __name__: 'interop_latency_seconds_bucket', le: '+Inf', ...inst }), '3'],
    [labelKey({ __name__: 'interop_latency_seconds_bucket', le: '0.1', ...inst }), '1'],
    [labelKey({ __name__: 'interop_latency_seconds_bucket', le: '1.0', ...inst }), '2'],
  ]);
  assert.deepEqual(await ss('interop_build_info'), [[labelKey({ __name__: 'interop_build_info', version: '1.2.3', branch: 'main', ...inst }), '1']]);
  assert.deepEqual(await ss('interop_state'), [
    [labelKey({ __name__: 'interop_state', interop_state: 'running', ...inst }), '1'],
    [labelKey({ __name__: 'interop_state', interop_state: 'starting', ...inst }), '0'],
  ]);
  // label sets of everything the exporter exposes (process_* / python_gc_* values move; sets do not)
  for (const q of ['{job="py", __name__!~"scrape_.*"}', 'interop_jobs_created']) {
    assert.deepEqual((await ss(q)).map((x) => x[0]), (await pr(q)).map((x) => x[0]), q);
  }
  for (const q of ['interop_size_bytes_sum', 'interop_size_bytes_count', 'interop_latency_seconds_sum', 'up{job="py"}']) {
    assert.deepEqual(await ss(q), await pr(q), q);
  }
  const md = (await getJSON(port.ss, '/api/v1/metadata')).data;
  assert.equal(md.interop_jobs[0].type, 'counter');
  assert.equal(md.interop_jobs[0].help, 'Jobs processed.');
  assert.equal(md.interop_temperature_celsius[0].unit, 'celsius');
  assert.equal(md.interop_state[0].type, 'stateset');
  assert.equal(md.interop_build[0].type, 'info');
});

test('node job: the same series label sets as Prometheus', async () => {
  const sets = async (p) => (await query(p, 'count by (__name__) ({job="node", __name__!~"scrape_.*"})')).map((r) => [r.metric.__name__, r.value[1]]).sort();
  assert.deepEqual(await sets(port.ss), await sets(port.prom));
});
