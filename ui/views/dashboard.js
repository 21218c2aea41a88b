// dashboard.js - renders a dashboard (schema: docs/DASHBOARDS.md) at /d/<slug>: template
// variables filled from label values, a 24-column grid of panels, each querying on its own and
// showing its data, "No data", or its query's error. Time range, refresh and variables live in
// the URL.

import { prom, loki, tempo } from '../lib/api.js';
import { timeSeries, heatmap, color } from '../lib/chart.js';
import { formatValue, thresholdColor, legendOf, escapeHtml } from '../lib/format.js';
import { resolve, stepFor, fmtTime } from '../lib/time.js';
import { params, update } from '../lib/state.js';
import { rangeFromUrl, toolbar, zoomTo } from '../lib/controls.js';

const ROW_PX = 34;

// ---- template variables ----

function regexEscape(s) { return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); }

// Values of each variable: from the URL, else the default, else the first option.
async function resolveVariables(dash, startMs, endMs) {
  const p = params();
  const out = [];
  for (const v of dash.variables || []) {
    let options = [];
    let error = null;
    try {
      if (v.values) options = v.values;
      else {
        const m = /^label_values\(\s*(?:(.*),\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\)$/.exec(v.query || '');
        if (!m) throw new Error(`variable ${v.name}: query must be label_values([selector,] label)`);
        options = await prom.labelValues(m[2], m[1] ? [interpolate(m[1], out)] : undefined, startMs, endMs);
      }
    } catch (e) { error = e.message; }
    let selected = p.getAll('var-' + v.name);
    if (!selected.length) selected = [v.default ?? (v.includeAll ? 'All' : options[0] ?? '')];
    out.push({ ...v, options, selected, error });
  }
  return out;
}

// Replaces $name and ${name}: one value as is; several, or All, as a regex alternation for =~.
export function interpolate(expr, vars, extra = {}) {
  return expr.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (all, a, b) => {
    const name = a || b;
    if (name in extra) return extra[name];
    const v = vars.find((x) => x.name === name);
    if (!v) return all;
    if (v.selected.includes('All')) return '.*';
    if (v.selected.length === 1) return v.selected[0];
    return '(' + v.selected.map(regexEscape).join('|') + ')';
  });
}

function variableBar(vars) {
  const el = document.createElement('div');
  el.className = 'vars';
  for (const v of vars) {
    const opts = (v.includeAll ? ['All'] : []).concat(v.options);
    const sel = document.createElement('select');
    if (v.multi) sel.multiple = true;
    sel.innerHTML = opts.map((o) => `<option ${v.selected.includes(o) ? 'selected' : ''}>${escapeHtml(o)}</option>`).join('');
    sel.addEventListener('change', () =>
      update({ ['var-' + v.name]: [...sel.selectedOptions].map((o) => o.value) }));
    const lab = document.createElement('label');
    lab.textContent = (v.label || v.name) + ' ';
    lab.appendChild(sel);
    if (v.error) {
      const e = document.createElement('span');
      e.className = 'error';
      e.textContent = v.error;
      lab.appendChild(e);
    }
    el.appendChild(lab);
  }
  return el;
}

// ---- data ----

// Grafana's built-in variables: $__range (the selected range; $__range_s in seconds as a
// number), $__interval (the step) and $__rate_interval (at least four 15 s scrapes, and a step
// plus one scrape).
function builtins(startMs, endMs, step) {
  const s = step || stepFor(startMs, endMs);
  const range = Math.max(1, Math.round((endMs - startMs) / 1000));
  return { __range: `${range}s`, __range_s: String(range), __interval: `${s}s`,
    __rate_interval: `${Math.max(60, s + 15)}s` };
}

function toSeries(data, legend) {
  if (data.resultType === 'scalar') return [{ label: legend || 'scalar', metric: {}, points: [[data.result[0], +data.result[1]]] }];
  return data.result.map((r) => ({
    label: legendOf(legend, r.metric), metric: r.metric,
    points: r.values ? r.values.map(([t, v]) => [t, +v]) : [[r.value[0], +r.value[1]]],
  }));
}

async function rangeSeries(panel, vars, startMs, endMs) {
  const step = panel.step || stepFor(startMs, endMs);
  const all = [];
  for (const q of panel.queries || []) {
    const expr = interpolate(q.expr, vars, builtins(startMs, endMs, step));
    const data = (q.lang || 'promql') === 'logql'
      ? await loki.range(expr, startMs, endMs, { stepS: step })
      : await prom.range(expr, startMs, endMs, step);
    all.push(...toSeries(data, q.legend));
  }
  return all;
}

async function instantSeries(panel, vars, startMs, endMs) {
  const all = [];
  for (const q of panel.queries || []) {
    const data = await prom.instant(interpolate(q.expr, vars, builtins(startMs, endMs)), endMs);
    all.push(...toSeries(data, q.legend));
  }
  return all;
}

// ---- panels ----

function noData(body) { body.innerHTML = '<div class="nodata">No data</div>'; }

function renderStat(body, panel, series) {
  if (!series.length) return noData(body);
  body.innerHTML = `<div class="stats">${series.slice(0, 12).map((s) => {
    const v = s.points[s.points.length - 1][1];
    return `<div class="stat"><div class="v" style="color:${thresholdColor(v, panel.thresholds)}">${escapeHtml(formatValue(v, panel.unit, panel.decimals))}</div>
      ${series.length > 1 ? `<div class="l">${escapeHtml(s.label)}</div>` : ''}</div>`;
  }).join('')}</div>`;
}

function renderGauge(body, panel, series) {
  if (!series.length) return noData(body);
  const min = panel.min ?? 0, max = panel.max ?? (panel.unit === 'percentunit' ? 1 : 100);
  body.innerHTML = `<div class="stats">${series.slice(0, 6).map((s) => {
    const v = s.points[s.points.length - 1][1];
    const f = Math.max(0, Math.min(1, (v - min) / (max - min || 1)));
    const a = Math.PI * (1 - f), x = 50 + 40 * Math.cos(a), y = 50 - 40 * Math.sin(a);
    const c = thresholdColor(v, panel.thresholds, color(0));
    return `<div class="stat"><svg viewBox="0 0 100 60" width="160">
        <path d="M10 50 A40 40 0 0 1 90 50" stroke="var(--grid)" stroke-width="9" fill="none"/>
        <path d="M10 50 A40 40 0 0 1 ${x.toFixed(2)} ${y.toFixed(2)}" stroke="${c}" stroke-width="9" fill="none"/>
      </svg><div class="v" style="color:${c}">${escapeHtml(formatValue(v, panel.unit, panel.decimals))}</div>
      ${series.length > 1 ? `<div class="l">${escapeHtml(s.label)}</div>` : ''}</div>`;
  }).join('')}</div>`;
}

// Horizontal bars, one per series, sorted by value (Grafana's bar gauge).
function renderBars(body, panel, series) {
  if (!series.length) return noData(body);
  const rows = series.map((s) => ({ l: s.label, v: s.points[s.points.length - 1][1], m: s.metric }))
    .sort((a, b) => b.v - a.v).slice(0, panel.limit || 30);
  const max = panel.max ?? Math.max(...rows.map((r) => r.v), 0) ?? 1;
  body.innerHTML = `<table class="bars">${rows.map((r, i) => `<tr>
      <td class="l">${linkFor(panel, r.m, escapeHtml(r.l))}</td>
      <td class="b"><div style="width:${Math.max(0, Math.min(100, 100 * r.v / (max || 1)))}%;background:${thresholdColor(r.v, panel.thresholds, color(i))}"></div></td>
      <td class="v">${escapeHtml(formatValue(r.v, panel.unit, panel.decimals))}</td></tr>`).join('')}</table>`;
}

// A cell's content as a link when the panel maps that label to a URL ("${value}" substituted),
// and trace ids always to the trace view.
function linkFor(panel, metric, html, labelName) {
  const links = panel.links || {};
  const name = labelName || Object.keys(links).find((k) => metric && metric[k] !== undefined);
  if (name && links[name] && metric && metric[name] !== undefined)
    return `<a href="${escapeHtml(links[name].replace('${value}', encodeURIComponent(metric[name])))}">${html}</a>`;
  return html;
}

function renderTable(body, panel, series) {
  if (!series.length) return noData(body);
  const cols = [...new Set(series.flatMap((s) => Object.keys(s.metric)))].filter((k) => k !== '__name__' || panel.showName);
  const rows = series.map((s) => ({ m: s.metric, v: s.points[s.points.length - 1][1] }));
  if (panel.sort !== 'none') rows.sort((a, b) => (panel.sort === 'asc' ? a.v - b.v : b.v - a.v));
  body.innerHTML = `<table class="data"><thead><tr>${cols.map((c) => `<th>${escapeHtml(c)}</th>`).join('')}<th>${escapeHtml(panel.valueTitle || 'Value')}</th></tr></thead>
    <tbody>${rows.slice(0, panel.limit || 500).map((r) => `<tr>${cols.map((c) => `<td>${linkFor(panel, r.m, escapeHtml(r.m[c] ?? ''), c)}</td>`).join('')}
      <td class="num" style="color:${thresholdColor(r.v, panel.thresholds)}">${escapeHtml(formatValue(r.v, panel.unit, panel.decimals))}</td></tr>`).join('')}</tbody></table>`;
}

async function renderLogs(body, panel, vars, startMs, endMs) {
  const q = panel.queries[0];
  const data = await loki.range(interpolate(q.expr, vars, builtins(startMs, endMs)), startMs, endMs, { limit: panel.limit || 200 });
  const lines = data.result.flatMap((s) => s.values.map(([t, l]) => ({ t: +t.slice(0, -6), l, s: s.stream })))
    .sort((a, b) => b.t - a.t);
  if (!lines.length) return noData(body);
  body.innerHTML = `<table class="data logs">${lines.map((e) => `<tr><td class="ts">${fmtTime(e.t)}</td><td>${escapeHtml(e.l)}</td></tr>`).join('')}</table>`;
}

async function renderTraces(body, panel, vars, startMs, endMs) {
  const q = panel.queries[0];
  const res = await tempo.search(interpolate(q.expr, vars, builtins(startMs, endMs)), startMs, endMs, panel.limit || 20);
  const traces = res.traces || [];
  if (!traces.length) return noData(body);
  body.innerHTML = `<table class="data"><thead><tr><th>Trace</th><th>Service</th><th>Name</th><th>Start</th><th>Duration</th></tr></thead><tbody>
    ${traces.map((t) => `<tr><td><a href="/traces/${t.traceID}">${t.traceID.slice(0, 16)}…</a></td><td>${escapeHtml(t.rootServiceName || '')}</td>
      <td>${escapeHtml(t.rootTraceName || '')}</td><td>${fmtTime(+String(t.startTimeUnixNano).slice(0, -6))}</td>
      <td class="num">${escapeHtml(formatValue((t.durationMs || 0) / 1000, 's'))}</td></tr>`).join('')}</tbody></table>`;
}

async function renderPanel(el, panel, vars, startMs, endMs) {
  const body = el.querySelector('.body');
  body.innerHTML = '<div class="loading">Loading…</div>';
  try {
    if (el._chart) { el._chart.destroy(); el._chart = null; }
    const type = panel.type || 'timeseries';
    if (type === 'logs') return await renderLogs(body, panel, vars, startMs, endMs);
    if (type === 'traces') return await renderTraces(body, panel, vars, startMs, endMs);
    if (type === 'timeseries' || type === 'heatmap') {
      const series = await rangeSeries(panel, vars, startMs, endMs);
      if (!series.length || series.every((s) => !s.points.length)) return noData(body);
      body.textContent = '';
      const h = (panel.h || 8) * ROW_PX - 60;
      if (type === 'heatmap') {
        const buckets = series.map((s) => ({ le: s.metric.le === '+Inf' ? Infinity : parseFloat(s.metric.le), points: s.points }))
          .filter((b) => !Number.isNaN(b.le));
        if (!buckets.length) throw new Error('a heatmap needs series with an "le" label (histogram buckets)');
        el._chart = heatmap(body, buckets, { unit: panel.unit, height: h });
      } else {
        el._chart = timeSeries(body, series, { unit: panel.unit, decimals: panel.decimals, stack: panel.stack,
          bars: panel.bars, min: panel.min, max: panel.max, height: h, startMs, endMs, onZoom: zoomTo });
      }
      return;
    }
    const series = await instantSeries(panel, vars, startMs, endMs);
    if (type === 'stat') renderStat(body, panel, series);
    else if (type === 'gauge') renderGauge(body, panel, series);
    else if (type === 'bar') renderBars(body, panel, series);
    else if (type === 'table') renderTable(body, panel, series);
    else throw new Error(`unknown panel type "${type}"`);
  } catch (e) {
    body.innerHTML = `<div class="error" title="query error">${escapeHtml(e.message)}</div>`;
  }
}

function exploreUrl(panel, vars, r) {
  const q = (panel.queries || [])[0];
  if (!q) return null;
  const lang = panel.type === 'traces' ? 'traceql' : (q.lang || 'promql');
  const now = Date.now();
  const expr = interpolate(q.expr, vars, builtins(resolve(r.from, now), resolve(r.to, now)));
  return `/explore?lang=${lang}&q=${encodeURIComponent(expr)}&from=${encodeURIComponent(r.from)}&to=${encodeURIComponent(r.to)}`;
}

export async function renderDashboard(root, slug) {
  root.innerHTML = '<div class="loading">Loading dashboard…</div>';
  let dash;
  try {
    const res = await fetch(`/api/dashboards/uid/${encodeURIComponent(slug)}`);
    if (!res.ok) throw new Error((await res.text()).trim());
    dash = await res.json();
  } catch (e) {
    root.innerHTML = `<div class="error">${escapeHtml(e.message)}</div>`;
    return () => {};
  }
  document.title = `${dash.title} · Skillscope`;
  const r = rangeFromUrl(dash.time ? { from: dash.time.from, to: dash.time.to, refresh: dash.refresh } : {});
  const now = Date.now();
  const startMs = resolve(r.from, now), endMs = resolve(r.to, now);
  const vars = await resolveVariables(dash, startMs, endMs);

  root.innerHTML = `<header class="dash-head"><h1>${escapeHtml(dash.title)}</h1>
    ${dash.description ? `<p class="sub">${escapeHtml(dash.description)}</p>` : ''}</header>`;
  const bar = toolbar(r);
  root.appendChild(bar);
  if (vars.length) root.appendChild(variableBar(vars));
  const grid = document.createElement('div');
  grid.className = 'grid';
  root.appendChild(grid);
  const els = [];
  for (const panel of dash.panels || []) {
    if (panel.type === 'row') {
      const h = document.createElement('h2');
      h.className = 'row';
      h.textContent = panel.title;
      grid.appendChild(h);
      continue;
    }
    const el = document.createElement('section');
    el.className = 'panel';
    el.style.gridColumn = `span ${Math.min(24, panel.w || 12)}`;
    el.style.minHeight = `${(panel.h || 8) * ROW_PX}px`;
    const ex = exploreUrl(panel, vars, r);
    el.innerHTML = `<div class="ptitle"><span title="${escapeHtml(panel.description || '')}">${escapeHtml(panel.title || '')}</span>
      ${ex ? `<a class="explore" href="${ex}" title="Open in Explore">Explore</a>` : ''}</div><div class="body"></div>`;
    grid.appendChild(el);
    els.push([el, panel]);
  }
  const refreshAll = () => {
    const n = Date.now();
    const s = resolve(r.from, n), e = resolve(r.to, n);
    return Promise.all(els.map(([el, p]) => renderPanel(el, p, vars, s, e)));
  };
  await refreshAll();
  let timer = null;
  const every = { '10s': 10e3, '30s': 30e3, '1m': 60e3, '5m': 300e3, '15m': 900e3 }[r.refresh];
  if (every) timer = setInterval(refreshAll, every);
  root.dataset.rendered = 'true';
  return () => { if (timer) clearInterval(timer); };
}

export async function renderDashboardList(root) {
  const res = await fetch('/api/dashboards');
  const list = res.ok ? await res.json() : [];
  root.innerHTML = `<h1>Dashboards</h1><ul class="dashlist">${list.map((d) =>
    `<li><a href="${d.url}">${escapeHtml(d.title)}</a><div class="sub">${escapeHtml(d.description)}</div></li>`).join('')}</ul>`;
  return () => {};
}
