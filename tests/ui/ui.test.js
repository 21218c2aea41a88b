'use strict';
/*
 * ui.test.js - the UI in a real browser: Debian's chromium driven by playwright-core against the
 * real ./skillscope.
 *
 * A generated skill-test run (12 tests, 6 runs, known pass/fail pattern) is sent as OTLP/JSON
 * spans; with span_metrics.flush_interval 1s the span metrics exist within seconds. Then every
 * built-in dashboard is opened: each panel must show a chart, a value, a table, "No data" or an
 * error message - never a blank box - and the QA Engineer dashboard, whose data exists, must show
 * no errors and the counts computed here. Explore must chart a query and show a bad query's error
 * from the server. Time to a rendered dashboard is printed (measured, not asserted).
 * Screenshots go to $SKILLSCOPE_UI_SHOTS (default: the temp dir).
 */
const test = require('node:test');
const assert = require('node:assert');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const BIN = process.env.SKILLSCOPE_BIN || path.join(__dirname, '..', '..', 'skillscope');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skillscope-ui-'));
const SHOTS = process.env.SKILLSCOPE_UI_SHOTS || tmp;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
    s.on('error', reject);
  });
}

const TESTS = Array.from({ length: 12 }, (_, i) => `routing_test_TC${String(i + 1).padStart(3, '0')}`);
// pass (p) / fail (f) per run
const PATTERN = ['pppppp', 'ffffpf', 'pfpfpf', 'pppppf', 'ffffff', 'pppppp',
  'ppfppp', 'fpfpfp', 'pppffp', 'pppppp', 'fffffp', 'pppppp'];
const CATEGORY = ['agile', 'search', 'issue'];

function runBody(run) {
  const now = BigInt(Date.now()) * 1000000n;
  const attr = (k, v) => ({ key: k, value: { stringValue: v } });
  const hex = (n) => Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join('');
  return {
    resourceSpans: [{
      resource: { attributes: [attr('service.name', 'jira-assistant-routing-tests'), attr('vcs.commit.sha', 'c0ffee')] },
      scopeSpans: [{
        scope: { name: 'pytest' },
        spans: TESTS.map((name, i) => {
          const ok = PATTERN[i][run] === 'p';
          const dur = BigInt(1000 + 500 * i) * 1000000n;
          return {
            traceId: hex(32), spanId: hex(16), name, kind: 1,
            startTimeUnixNano: String(now - dur), endTimeUnixNano: String(now),
            attributes: [attr('test.id', name.slice(-5)), attr('test.category', CATEGORY[i % 3]),
              attr('test.result', ok ? 'passed' : 'failed')],
            status: { code: ok ? 1 : 2 },
          };
        }),
      }],
    }],
  };
}

let server, http, otlp, browser;

test.before(async () => {
  http = await freePort();
  otlp = await freePort();
  const cfg = path.join(tmp, 'skillscope.yaml');
  fs.writeFileSync(cfg, 'span_metrics:\n  flush_interval: 1s\n');
  server = spawn(BIN, ['serve', '--data-dir', path.join(tmp, 'data'), '--http-port', String(http),
    '--otlp-http-port', String(otlp), '--otlp-grpc-port', '0', '--config', cfg],
  { stdio: ['ignore', fs.openSync(path.join(tmp, 'server.log'), 'w'), 'inherit'] });
  if (process.env.SKILLSCOPE_INTEROP_PIDS) fs.appendFileSync(process.env.SKILLSCOPE_INTEROP_PIDS, `${server.pid}\n`);
  for (let i = 0; i < 200; i++) {
    try { if ((await fetch(`http://127.0.0.1:${http}/-/ready`)).ok) break; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  for (let run = 0; run < 6; run++) {
    const res = await fetch(`http://127.0.0.1:${otlp}/v1/traces`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(runBody(run)),
    });
    assert.strictEqual(res.status, 200);
  }
  await new Promise((r) => setTimeout(r, 2500)); // two flushes
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
});

test.after(async () => {
  if (browser) await browser.close();
  if (server) server.kill('SIGTERM');
});

async function openDashboard(page, slug, query = 'from=now-15m') {
  const t0 = Date.now();
  await page.goto(`http://127.0.0.1:${http}/d/${slug}?${query}`);
  await page.waitForSelector('main[data-rendered="true"]', { timeout: 20000 });
  return Date.now() - t0;
}

// What each panel shows: 'chart' | 'value' | 'table' | 'nodata' | 'error:<msg>' | 'blank'.
function panelStates(page) {
  return page.$$eval('section.panel', (els) => els.map((el) => {
    const b = el.querySelector('.body');
    const title = el.querySelector('.ptitle span').textContent;
    const err = b.querySelector('.error');
    if (err) return [title, 'error:' + err.textContent];
    if (b.querySelector('.nodata')) return [title, 'nodata'];
    if (b.querySelector('canvas, svg, .u-wrap')) return [title, 'chart'];
    if (b.querySelector('.stat .v')) return [title, 'value'];
    if (b.querySelector('table tr')) return [title, 'table'];
    return [title, 'blank'];
  }));
}

test('every built-in dashboard renders every panel', async () => {
  const list = await (await fetch(`http://127.0.0.1:${http}/api/dashboards`)).json();
  assert.ok(list.length >= 1, 'dashboards listed');
  const page = await browser.newPage({ viewport: { width: 1400, height: 1600 } });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  for (const d of list) {
    const ms = await openDashboard(page, d.slug);
    const states = await panelStates(page);
    console.log(`dashboard ${d.slug}: ${states.length} panels rendered in ${ms} ms`);
    await page.screenshot({ path: path.join(SHOTS, `dashboard-${d.slug}.png`), fullPage: true });
    assert.ok(states.length > 0, `${d.slug} has panels`);
    for (const [title, st] of states) {
      assert.notStrictEqual(st, 'blank', `${d.slug} / ${title} is blank`);
      // "No data" is fine for data this test does not send; a query the server refuses is not
      assert.ok(!st.startsWith('error'), `${d.slug} / ${title}: ${st}`);
    }
  }
  assert.deepStrictEqual(pageErrors, []);
  await page.close();
});

test('QA Engineer shows the run\'s counts, flaky and failing tests without errors', async () => {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1600 } });
  await openDashboard(page, 'qa-engineer');
  const states = Object.fromEntries(await panelStates(page));
  for (const [title, st] of Object.entries(states))
    if (title !== 'Skipped') assert.ok(!st.startsWith('error') && st !== 'nodata', `${title}: ${st}`);
  const stat = async (title) => page.$eval(`xpath=//section[.//span[text()="${title}"]]//div[@class="v"]`, (e) => e.textContent);
  const passed = PATTERN.join('').split('').filter((c) => c === 'p').length;
  const failed = TESTS.length * 6 - passed;
  // increase() extrapolates past the last sample, as Prometheus does; on series only seconds old
  // that can add up to about half (1.1 flush intervals over a 2-3 s sampled interval), never less
  const near = (got, want) => parseFloat(got) >= want - 0.5 && parseFloat(got) <= want * 1.5;
  assert.ok(near(await stat('Passed'), passed), `Passed ${await stat('Passed')} vs ${passed}`);
  assert.ok(near(await stat('Failed'), failed), `Failed ${await stat('Failed')} vs ${failed}`);
  const rows = async (title) => page.$$eval(`xpath=//section[.//span[starts-with(text(),"${title}")]]//tbody/tr/td[1]`,
    (tds) => tds.map((t) => t.textContent).sort());
  const rate = (i) => PATTERN[i].split('').filter((c) => c === 'p').length / 6;
  assert.deepStrictEqual(await rows('Flaky tests'), TESTS.filter((_, i) => rate(i) > 0.3 && rate(i) < 0.7).sort());
  assert.deepStrictEqual(await rows('Failing tests'), TESTS.filter((_, i) => rate(i) <= 0.3).sort());
  await page.close();
});

test('Explore charts a PromQL query and shows a bad query\'s error', async () => {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  await page.goto(`http://127.0.0.1:${http}/explore?from=now-15m`);
  await page.fill('textarea[name=q]', 'sum by (span_name) (traces_spanmetrics_calls_total)');
  await page.click('button[type=submit]');
  await page.waitForSelector('.out .chart .u-wrap', { timeout: 10000 });
  assert.strictEqual(await page.$$eval('.out table.data tbody tr', (r) => r.length), TESTS.length);
  assert.match(page.url(), /q=sum/);
  await page.fill('textarea[name=q]', 'sum by (span_name) (rate(x[5m])');
  await page.click('button[type=submit]');
  const err = await page.waitForSelector('.out .error', { timeout: 10000 });
  assert.match(await err.textContent(), /parse error|unclosed|unexpected/);
  await page.close();
});

test('a trace opens as a waterfall, tests list with history, logs and alerts pages render', async () => {
  const page = await browser.newPage({ viewport: { width: 1300, height: 1000 } });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  // one trace of two spans (a parent and a failing child), with a log line carrying its id
  const tid = 'ab'.repeat(16);
  const now = BigInt(Date.now()) * 1000000n;
  const span = (id, parent, name, status) => ({ traceId: tid, spanId: id, parentSpanId: parent, name, kind: 1,
    startTimeUnixNano: String(now - 2000000000n), endTimeUnixNano: String(now), status: { code: status },
    attributes: [{ key: 'test.result', value: { stringValue: status === 2 ? 'failed' : 'passed' } }] });
  let res = await fetch(`http://127.0.0.1:${otlp}/v1/traces`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'ui-suite' } }] },
      scopeSpans: [{ spans: [span('1111111111111111', '', 'suite', 1), span('2222222222222222', '1111111111111111', 'test_one', 2)] }] }] }) });
  assert.strictEqual(res.status, 200);
  await page.goto(`http://127.0.0.1:${http}/traces/${tid}`);
  await page.waitForSelector('main[data-rendered="true"]');
  assert.deepStrictEqual(await page.$$eval('table.waterfall tbody tr td:first-child', (t) => t.map((x) => x.textContent.trim())),
    ['suite', '● test_one']);
  await page.click('table.waterfall tbody tr:nth-child(2)');
  assert.match(await page.textContent('.detail'), /test\.result\s*failed/);

  await page.goto(`http://127.0.0.1:${http}/tests?from=now-15m`);
  await page.waitForSelector('main[data-rendered="true"]');
  const listed = await page.$$eval('tbody tr td:first-child a', (a) => a.map((x) => x.textContent));
  for (const t of TESTS) assert.ok(listed.includes(t), `${t} listed in ${listed}`);
  await page.click(`text=${TESTS[0]}`);
  await page.waitForSelector('main[data-rendered="true"] .bycommit table');
  assert.match(await page.textContent('.bycommit'), /c0ffee\s*100(\.0)?%/);

  await page.goto(`http://127.0.0.1:${http}/logs?q=${encodeURIComponent('{service_name="nothing-here"}')}&from=now-15m`);
  await page.waitForSelector('main[data-rendered="true"]');
  assert.match(await page.textContent('.out'), /No logs match/);
  await page.goto(`http://127.0.0.1:${http}/alerts`);
  await page.waitForSelector('main[data-rendered="true"]');
  assert.match(await page.textContent('main'), /No alerts are firing or pending/);
  assert.deepStrictEqual(pageErrors, []);
  await page.close();
});

test('Claude Code dashboard shows a real session\'s cost, tokens, tools and API requests', async () => {
  // the committed capture of a real Claude Code session, replayed as it was sent
  const capture = fs.readFileSync(path.join(__dirname, '..', 'data', 'otlp', 'claude-code-capture.jsonl'), 'utf8')
    .split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  let cost = 0, first = Infinity;
  for (const rec of capture) {
    const res = await fetch(`http://127.0.0.1:${otlp}${rec.path}`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(rec.raw_json) });
    assert.strictEqual(res.status, 200);
    if (rec.signal === 'metrics')
      for (const rm of rec.raw_json.resourceMetrics) for (const sm of rm.scopeMetrics) for (const m of sm.metrics)
        for (const dp of m.sum.dataPoints) {
          first = Math.min(first, Number(BigInt(dp.timeUnixNano) / 1000000n));
          if (m.name === 'claude_code.cost.usage') cost += dp.asDouble;
        }
  }
  await new Promise((r) => setTimeout(r, 2500)); // derived genai_* metrics flush every second here
  const page = await browser.newPage({ viewport: { width: 1400, height: 2000 } });
  // the session was recorded earlier: a range from before it until now (the derived metrics are
  // stamped at ingest)
  await openDashboard(page, 'claude-code', `from=${first - 3600000}&to=now`);
  const states = Object.fromEntries(await panelStates(page));
  for (const t of ['Sessions', 'Cost', 'Tokens', 'Cost by model', 'Tokens by type', 'Tool decisions',
    'Tool success rate', 'API errors', 'Top sessions by cost', 'Recent API requests'])
    assert.ok(states[t] && !states[t].startsWith('error') && states[t] !== 'nodata', `${t}: ${states[t]}`);
  const shown = await page.$eval('xpath=//section[.//span[text()="Cost"]]//div[@class="v"]', (e) => e.textContent);
  assert.strictEqual(shown, '$' + cost.toFixed(4), `Cost shows ${shown}, the session reported ${cost}`);
  await page.screenshot({ path: path.join(SHOTS, 'dashboard-claude-code-data.png'), fullPage: true });
  await page.close();
});

test('Agent Performance and Service RED show GenAI and server spans', async () => {
  const now = BigInt(Date.now()) * 1000000n;
  const attr = (k, v) => (typeof v === 'number' ? { key: k, value: { intValue: String(v) } } : { key: k, value: { stringValue: v } });
  const hex = (n) => Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join('');
  const spans = [];
  for (let i = 0; i < 20; i++) {
    const tid = hex(32), client = hex(16);
    // an agent's model call (GenAI conventions), a call from web to api, and api's server span
    spans.push({ svc: 'agents', span: { traceId: tid, spanId: hex(16), name: 'chat', kind: 3,
      startTimeUnixNano: String(now - 900000000n), endTimeUnixNano: String(now), status: { code: i % 5 ? 1 : 2 },
      attributes: [attr('gen_ai.operation.name', 'chat'), attr('gen_ai.request.model', i % 2 ? 'model-a' : 'model-b'),
        attr('gen_ai.agent.name', i % 3 ? 'planner' : 'coder'), attr('gen_ai.usage.input_tokens', 100 + i),
        attr('gen_ai.usage.output_tokens', 10 + i)] } });
    spans.push({ svc: 'web', span: { traceId: tid, spanId: client, name: 'GET /api', kind: 3,
      startTimeUnixNano: String(now - 300000000n), endTimeUnixNano: String(now), status: { code: 0 } } });
    spans.push({ svc: 'api', span: { traceId: tid, spanId: hex(16), parentSpanId: client, name: 'GET /api', kind: 2,
      startTimeUnixNano: String(now - 250000000n), endTimeUnixNano: String(now), status: { code: i % 4 ? 0 : 2 } } });
  }
  const bySvc = {};
  for (const { svc, span } of spans) (bySvc[svc] = bySvc[svc] || []).push(span);
  const body = { resourceSpans: Object.entries(bySvc).map(([svc, ss]) => ({
    resource: { attributes: [attr('service.name', svc)] }, scopeSpans: [{ scope: { name: 'ui-test' }, spans: ss }] })) };
  const res = await fetch(`http://127.0.0.1:${otlp}/v1/traces`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  assert.strictEqual(res.status, 200);
  await new Promise((r) => setTimeout(r, 2500));
  const page = await browser.newPage({ viewport: { width: 1400, height: 1600 } });
  await openDashboard(page, 'agents');
  let states = Object.fromEntries(await panelStates(page));
  for (const t of ['Requests by agent', 'Cost by agent', 'Tokens by agent', 'Output tokens per input token', 'Error rate by model'])
    assert.ok(states[t] && !states[t].startsWith('error') && (t === 'Cost by agent' || states[t] !== 'nodata'), `${t}: ${states[t]}`);
  const bars = await page.$$eval('xpath=//section[.//span[text()="Requests by agent"]]//table[@class="bars"]//td[@class="l"]', (e) => e.map((x) => x.textContent).sort());
  assert.deepStrictEqual(bars, ['coder', 'planner']);
  await openDashboard(page, 'service-red');
  states = Object.fromEntries(await panelStates(page));
  for (const t of ['Requests per second', 'Error ratio', 'Duration p95', 'Operations', 'Calls between services'])
    assert.ok(states[t] && !states[t].startsWith('error') && states[t] !== 'nodata', `${t}: ${states[t]}`);
  const edges = await page.$$eval('xpath=//section[.//span[text()="Calls between services"]]//tbody/tr', (r) => r.map((x) => x.textContent));
  // 20 calls; increase() extrapolates past the samples (see the QA test): at least 20, at most 30
  const edge = edges.map((e) => /^\s*web\s*api\s*([0-9.]+)/.exec(e)).find(Boolean);
  assert.ok(edge && parseFloat(edge[1]) >= 19.5 && parseFloat(edge[1]) <= 30, edges.join(' | '));
  await page.close();
});
