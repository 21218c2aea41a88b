// tests.js - /tests: every test seen in the range with its runs and pass rate (span metrics);
// /tests/<name>: one test's history - pass rate by commit and by day, and its recent runs with
// their outcome and duration (TraceQL search on the span name), each linked to its trace.

import { prom, tempo } from '../lib/api.js';
import { formatValue, thresholdColor, escapeHtml } from '../lib/format.js';
import { resolve, fmtTime } from '../lib/time.js';
import { rangeFromUrl, toolbar, zoomTo } from '../lib/controls.js';
import { timeSeries } from '../lib/chart.js';

const GOOD = [{ value: null, color: '#e02f44' }, { value: 0.7, color: '#f2cc0c' }, { value: 0.85, color: '#56a64b' }];
const CALLS = 'traces_spanmetrics_calls_total{test_result!=""%s}';

function sel(extra) { return CALLS.replace('%s', extra ? ', ' + extra : ''); }
function promStr(s) { return JSON.stringify(s); }

async function renderList(root, r, startMs, endMs) {
  const range = `${Math.max(60, Math.round((endMs - startMs) / 1000))}s`;
  root.innerHTML = '<h1>Tests</h1>';
  root.appendChild(toolbar(r));
  const out = document.createElement('div');
  root.appendChild(out);
  try {
    const [runs, ok] = await Promise.all([
      prom.instant(`sum by (span_name, service) (increase(${sel()}[${range}]))`, endMs),
      prom.instant(`sum by (span_name, service) (increase(${sel('status_code="STATUS_CODE_OK"')}[${range}]))`, endMs),
    ]);
    const okOf = new Map(ok.result.map((x) => [x.metric.span_name + '\0' + x.metric.service, +x.value[1]]));
    const rows = runs.result.map((x) => {
      const n = +x.value[1], p = okOf.get(x.metric.span_name + '\0' + x.metric.service) || 0;
      return { name: x.metric.span_name, svc: x.metric.service, n, rate: n ? p / n : 0 };
    }).sort((a, b) => a.rate - b.rate || a.name.localeCompare(b.name));
    out.innerHTML = rows.length ? `<table class="data"><thead><tr><th>Test</th><th>Service</th><th>Runs</th><th>Pass rate</th></tr></thead><tbody>${rows.map((t) =>
      `<tr><td><a href="/tests/${encodeURIComponent(t.name)}?from=${encodeURIComponent(r.from)}&to=${encodeURIComponent(r.to)}">${escapeHtml(t.name)}</a></td><td>${escapeHtml(t.svc || '')}</td>
      <td class="num">${formatValue(t.n, 'short', 0)}</td><td class="num" style="color:${thresholdColor(t.rate, GOOD)}">${formatValue(t.rate, 'percentunit')}</td></tr>`).join('')}</tbody></table>`
      : '<div class="nodata">No test spans in this range (spans with a test.result attribute)</div>';
  } catch (e) {
    out.innerHTML = `<div class="error">${escapeHtml(e.message)}</div>`;
  }
}

async function renderTest(root, name, r, startMs, endMs) {
  const range = `${Math.max(60, Math.round((endMs - startMs) / 1000))}s`;
  const n = `span_name=${promStr(name)}`;
  root.innerHTML = `<h1>${escapeHtml(name)}</h1><p class="sub"><a href="/tests">All tests</a></p>`;
  root.appendChild(toolbar(r));
  const out = document.createElement('div');
  out.className = 'grid';
  out.innerHTML = `<section class="panel" style="grid-column:span 12"><div class="ptitle">Pass rate by commit</div><div class="body bycommit"></div></section>
    <section class="panel" style="grid-column:span 12"><div class="ptitle">Pass rate over time</div><div class="body overtime"></div></section>
    <section class="panel" style="grid-column:span 24"><div class="ptitle">Recent runs</div><div class="body runs"></div></section>`;
  root.appendChild(out);
  const err = (el, e) => { el.innerHTML = `<div class="error">${escapeHtml(e.message)}</div>`; };
  const byCommit = out.querySelector('.bycommit');
  try {
    const d = await prom.instant(`sum by (vcs_commit_sha) (increase(${sel(n + ', status_code="STATUS_CODE_OK", vcs_commit_sha!=""')}[${range}])) / sum by (vcs_commit_sha) (increase(${sel(n + ', vcs_commit_sha!=""')}[${range}]))`, endMs);
    byCommit.innerHTML = d.result.length ? `<table class="data">${d.result.map((x) => `<tr><td><code>${escapeHtml(x.metric.vcs_commit_sha)}</code></td>
      <td class="num" style="color:${thresholdColor(+x.value[1], GOOD)}">${formatValue(+x.value[1], 'percentunit')}</td></tr>`).join('')}</table>` : '<div class="nodata">No data</div>';
  } catch (e) { err(byCommit, e); }
  const over = out.querySelector('.overtime');
  try {
    const step = Math.max(60, Math.round((endMs - startMs) / 1000 / 60));
    const d = await prom.range(`sum(increase(${sel(n + ', status_code="STATUS_CODE_OK"')}[${step}s])) / sum(increase(${sel(n)}[${step}s]))`, startMs, endMs, step);
    const series = d.result.map((x) => ({ label: 'pass rate', points: x.values.map(([t, v]) => [t, +v]) }));
    if (!series.length) over.innerHTML = '<div class="nodata">No data</div>';
    else timeSeries(over, series, { unit: 'percentunit', min: 0, max: 1, height: 200, startMs, endMs, onZoom: zoomTo });
  } catch (e) { err(over, e); }
  const runs = out.querySelector('.runs');
  try {
    const res = await tempo.search(`{ name = ${promStr(name)} }`, startMs, endMs, 50);
    const ts = res.traces || [];
    runs.innerHTML = ts.length ? `<table class="data"><thead><tr><th>Started</th><th>Trace</th><th>Duration</th><th>Outcome</th></tr></thead><tbody>${ts.map((t) => {
      const spans = (t.spanSets || [t.spanSet]).filter(Boolean).flatMap((s) => s.spans || []);
      const attrs = Object.fromEntries(spans.flatMap((s) => (s.attributes || []).map((a) => [a.key, Object.values(a.value || {})[0]])));
      const outcome = attrs['test.result'] || attrs.status || '';
      return `<tr><td>${fmtTime(+String(t.startTimeUnixNano).slice(0, -6))}</td><td><a href="/traces/${t.traceID}">${t.traceID.slice(0, 16)}…</a></td>
        <td class="num">${formatValue((spans[0] && +spans[0].durationNanos / 1e9) || (t.durationMs || 0) / 1000, 's')}</td><td>${escapeHtml(outcome)}</td></tr>`;
    }).join('')}</tbody></table>` : '<div class="nodata">No runs in this range</div>';
  } catch (e) { err(runs, e); }
}

export async function renderTests(root, m) {
  const r = rangeFromUrl({ from: 'now-7d' });
  const now = Date.now();
  const startMs = resolve(r.from, now), endMs = resolve(r.to, now);
  document.title = 'Tests · Skillscope';
  if (m[1]) await renderTest(root, decodeURIComponent(m[1]), r, startMs, endMs);
  else await renderList(root, r, startMs, endMs);
  root.dataset.rendered = 'true';
  return () => {};
}
