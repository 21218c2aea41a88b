// explore.js - one query in PromQL, LogQL or TraceQL with its chart and table (or log lines, or
// matching traces), the query's error shown where it is. State: ?lang=&q=&from=&to=.

import { prom, loki, tempo } from '../lib/api.js';
import { timeSeries } from '../lib/chart.js';
import { formatValue, legendOf, escapeHtml } from '../lib/format.js';
import { resolve, stepFor, fmtTime } from '../lib/time.js';
import { params, update } from '../lib/state.js';
import { rangeFromUrl, toolbar, zoomTo } from '../lib/controls.js';

const HINT = {
  promql: 'sum by (span_name) (rate(traces_spanmetrics_calls_total[5m]))',
  logql: '{service_name="claude-code", event_name="api_request"}',
  traceql: '{ span.test.result = "failed" }',
};

function seriesTable(series) {
  return `<table class="data"><thead><tr><th>Series</th><th>Last value</th></tr></thead><tbody>${series.map((s) =>
    `<tr><td>${escapeHtml(s.label)}</td><td class="num">${escapeHtml(formatValue(s.points[s.points.length - 1]?.[1]))}</td></tr>`).join('')}</tbody></table>`;
}

async function run(out, lang, q, startMs, endMs) {
  out.innerHTML = '<div class="loading">Running…</div>';
  try {
    if (lang === 'traceql') {
      const res = await tempo.search(q, startMs, endMs, 50);
      const ts = res.traces || [];
      out.innerHTML = ts.length ? `<table class="data"><thead><tr><th>Trace</th><th>Service</th><th>Name</th><th>Start</th><th>Duration</th><th>Matched</th></tr></thead><tbody>${ts.map((t) =>
        `<tr><td><a href="/traces/${t.traceID}">${t.traceID}</a></td><td>${escapeHtml(t.rootServiceName || '')}</td><td>${escapeHtml(t.rootTraceName || '')}</td>
        <td>${fmtTime(+String(t.startTimeUnixNano).slice(0, -6))}</td><td class="num">${formatValue((t.durationMs || 0) / 1000, 's')}</td>
        <td class="num">${(t.spanSets || [t.spanSet]).filter(Boolean).reduce((n, s) => n + (s.matched || 0), 0)}</td></tr>`).join('')}</tbody></table>` : '<div class="nodata">No traces match</div>';
      return;
    }
    const step = stepFor(startMs, endMs);
    const data = lang === 'logql' ? await loki.range(q, startMs, endMs, { limit: 500, stepS: step })
      : await prom.range(q, startMs, endMs, step);
    if (data.resultType === 'streams') {
      const lines = data.result.flatMap((s) => s.values.map(([t, l]) => ({ t: +t.slice(0, -6), l, s: s.stream }))).sort((a, b) => b.t - a.t);
      out.innerHTML = lines.length ? `<table class="data logs">${lines.map((e) => `<tr><td class="ts">${fmtTime(e.t)}</td><td class="lbl">${escapeHtml(legendOf('', e.s))}</td><td>${escapeHtml(e.l)}</td></tr>`).join('')}</table>` : '<div class="nodata">No data</div>';
      return;
    }
    const series = data.result.map((r) => ({ label: legendOf('', r.metric), points: (r.values || [r.value]).map(([t, v]) => [t, +v]) }));
    if (!series.length) { out.innerHTML = '<div class="nodata">No data</div>'; return; }
    out.innerHTML = '<div class="chart"></div>' + seriesTable(series);
    timeSeries(out.querySelector('.chart'), series, { height: 300, startMs, endMs, onZoom: zoomTo });
  } catch (e) {
    out.innerHTML = `<div class="error">${escapeHtml(e.message)}</div>`;
  }
}

export async function renderExplore(root) {
  const p = params();
  const lang = ['promql', 'logql', 'traceql'].includes(p.get('lang')) ? p.get('lang') : 'promql';
  const q = p.get('q') || '';
  const r = rangeFromUrl({ from: 'now-1h' });
  document.title = 'Explore · Skillscope';
  root.innerHTML = `<h1>Explore</h1>
    <form class="query"><select name="lang">${['promql', 'logql', 'traceql'].map((l) =>
      `<option value="${l}" ${l === lang ? 'selected' : ''}>${{ promql: 'PromQL', logql: 'LogQL', traceql: 'TraceQL' }[l]}</option>`).join('')}</select>
      <textarea name="q" rows="3" spellcheck="false" placeholder="${escapeHtml(HINT[lang])}">${escapeHtml(q)}</textarea>
      <button type="submit">Run</button></form><div class="out"></div>`;
  root.insertBefore(toolbar(r), root.querySelector('form'));
  const form = root.querySelector('form');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    update({ lang: form.lang.value, q: form.q.value });
  });
  form.q.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey || e.shiftKey)) { e.preventDefault(); form.requestSubmit(); }
  });
  form.lang.addEventListener('change', () => { form.q.placeholder = HINT[form.lang.value]; });
  if (q) {
    const now = Date.now();
    await run(root.querySelector('.out'), lang, q, resolve(r.from, now), resolve(r.to, now));
  }
  root.dataset.rendered = 'true';
  return () => {};
}
