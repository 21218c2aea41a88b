// traces.js - /traces: a TraceQL search form and its results; /traces/<id>: the trace as a
// waterfall (services, durations, status), a span's attributes, events and resource on click, and
// the logs that carry the trace id.

import { tempo, loki } from '../lib/api.js';
import { formatValue, escapeHtml } from '../lib/format.js';
import { resolve, fmtTime } from '../lib/time.js';
import { params, update } from '../lib/state.js';
import { rangeFromUrl, toolbar } from '../lib/controls.js';
import { color } from '../lib/chart.js';

function anyValue(v) {
  if (!v) return '';
  if ('stringValue' in v) return v.stringValue;
  if ('intValue' in v) return String(v.intValue);
  if ('doubleValue' in v) return String(v.doubleValue);
  if ('boolValue' in v) return String(v.boolValue);
  if ('arrayValue' in v) return JSON.stringify((v.arrayValue.values || []).map(anyValue));
  if ('kvlistValue' in v) return JSON.stringify(Object.fromEntries((v.kvlistValue.values || []).map((kv) => [kv.key, anyValue(kv.value)])));
  if ('bytesValue' in v) return v.bytesValue;
  return '';
}

function attrRows(attrs) {
  return (attrs || []).map((a) => `<tr><td>${escapeHtml(a.key)}</td><td>${escapeHtml(anyValue(a.value))}</td></tr>`).join('');
}

// OTLP JSON ids are base64 in Tempo's JSON, hex in OTLP/JSON: accept both, return hex.
function hexId(id) {
  if (!id) return '';
  if (/^[0-9a-f]+$/i.test(id) && (id.length === 16 || id.length === 32)) return id.toLowerCase();
  try {
    return [...atob(id)].map((c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join('');
  } catch { return id; }
}

const KIND = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];
function kindName(k) {
  if (typeof k === 'number') return KIND[k] || String(k);
  return String(k || '').replace('SPAN_KIND_', '').toLowerCase();
}
function statusOf(s) {
  const c = s.status && s.status.code;
  if (c === 2 || c === 'STATUS_CODE_ERROR') return 'error';
  if (c === 1 || c === 'STATUS_CODE_OK') return 'ok';
  return 'unset';
}

// Flattens resourceSpans into spans with their service, depth-first in parent order.
function treeOf(trace) {
  const spans = [];
  for (const rs of trace.resourceSpans || trace.batches || []) {
    const res = rs.resource || {};
    const svc = anyValue(((res.attributes || []).find((a) => a.key === 'service.name') || {}).value) || 'unknown';
    for (const ss of rs.scopeSpans || rs.instrumentationLibrarySpans || [])
      for (const s of ss.spans || [])
        spans.push({ ...s, id: hexId(s.spanId), parent: hexId(s.parentSpanId), svc, res, start: +s.startTimeUnixNano, end: +s.endTimeUnixNano });
  }
  const byId = new Map(spans.map((s) => [s.id, s]));
  const kids = new Map();
  const roots = [];
  for (const s of spans) {
    if (s.parent && byId.has(s.parent)) {
      if (!kids.has(s.parent)) kids.set(s.parent, []);
      kids.get(s.parent).push(s);
    } else roots.push(s);
  }
  const out = [];
  const walk = (s, depth) => {
    out.push({ ...s, depth });
    for (const k of (kids.get(s.id) || []).sort((a, b) => a.start - b.start)) walk(k, depth + 1);
  };
  roots.sort((a, b) => a.start - b.start).forEach((r) => walk(r, 0));
  return out;
}

async function renderTrace(root, id) {
  document.title = `Trace ${id.slice(0, 8)} · Skillscope`;
  root.innerHTML = `<h1>Trace <code>${escapeHtml(id)}</code></h1><div class="out"><div class="loading">Loading…</div></div>`;
  const out = root.querySelector('.out');
  let trace;
  try {
    trace = (await tempo.trace(id)).trace;
  } catch (e) {
    out.innerHTML = `<div class="error">${escapeHtml(e.message || 'trace not found')}</div>`;
    return;
  }
  const spans = treeOf(trace || {});
  if (!spans.length) { out.innerHTML = '<div class="nodata">No spans</div>'; return; }
  const t0 = Math.min(...spans.map((s) => s.start)), t1 = Math.max(...spans.map((s) => s.end));
  const total = Math.max(1, t1 - t0);
  const svcs = [...new Set(spans.map((s) => s.svc))];
  out.innerHTML = `<p class="sub">${spans.length} spans, ${svcs.length} services, ${formatValue(total / 1e9, 's')}, started ${fmtTime(t0 / 1e6)}</p>
    <table class="data waterfall"><thead><tr><th>Span</th><th>Service</th><th>Duration</th><th style="width:45%">Timeline</th></tr></thead><tbody>
    ${spans.map((s, i) => `<tr data-i="${i}" class="span ${statusOf(s)}">
      <td style="padding-left:${0.5 + s.depth * 1.1}rem">${statusOf(s) === 'error' ? '<span class="bad">●</span> ' : ''}${escapeHtml(s.name)}</td>
      <td>${escapeHtml(s.svc)}</td><td class="num">${formatValue((s.end - s.start) / 1e9, 's')}</td>
      <td><div class="bar" style="margin-left:${(100 * (s.start - t0) / total).toFixed(2)}%;width:${Math.max(0.3, 100 * (s.end - s.start) / total).toFixed(2)}%;background:${color(svcs.indexOf(s.svc))}"></div></td></tr>`).join('')}
    </tbody></table><div class="detail"></div><h2>Logs of this trace</h2><div class="logs"><div class="loading">Loading…</div></div>`;
  const detail = out.querySelector('.detail');
  out.querySelector('tbody').addEventListener('click', (e) => {
    const tr = e.target.closest('tr[data-i]');
    if (!tr) return;
    const s = spans[+tr.dataset.i];
    detail.innerHTML = `<h2>${escapeHtml(s.name)}</h2><p class="sub">span ${s.id} · ${kindName(s.kind)} · status ${statusOf(s)}${s.status && s.status.message ? ': ' + escapeHtml(s.status.message) : ''}</p>
      <table class="data"><tbody>${attrRows(s.attributes)}</tbody></table>
      ${(s.events || []).length ? `<h3>Events</h3><table class="data"><tbody>${s.events.map((ev) => `<tr><td>${fmtTime(+ev.timeUnixNano / 1e6)}</td><td>${escapeHtml(ev.name)}</td><td><table>${attrRows(ev.attributes)}</table></td></tr>`).join('')}</tbody></table>` : ''}
      <h3>Resource</h3><table class="data"><tbody>${attrRows(s.res.attributes)}</tbody></table>`;
    detail.scrollIntoView({ behavior: 'smooth' });
  });
  const logsEl = out.querySelector('.logs');
  try {
    const data = await loki.range(`{service_name=~".+"} | trace_id="${id}"`, t0 / 1e6 - 3600e3, t1 / 1e6 + 3600e3, { limit: 200, direction: 'forward' });
    const lines = data.result.flatMap((st) => st.values.map(([t, l]) => ({ t: +t.slice(0, -6), l, s: st.stream }))).sort((a, b) => a.t - b.t);
    logsEl.innerHTML = lines.length ? `<table class="data logs">${lines.map((x) => `<tr><td class="ts">${fmtTime(x.t)}</td><td class="lbl">${escapeHtml(x.s.service_name || '')}</td><td>${escapeHtml(x.l)}</td></tr>`).join('')}</table>` : '<div class="nodata">No logs carry this trace id</div>';
  } catch (e) {
    logsEl.innerHTML = `<div class="error">${escapeHtml(e.message)}</div>`;
  }
}

async function renderSearch(root) {
  const p = params();
  const q = p.get('q') || '{ status = error }';
  const r = rangeFromUrl({ from: 'now-1h' });
  document.title = 'Traces · Skillscope';
  root.innerHTML = `<h1>Traces</h1><form class="query"><textarea name="q" rows="2" spellcheck="false">${escapeHtml(q)}</textarea>
    <input name="id" placeholder="trace id" size="34"><button type="submit">Search</button></form><div class="out"></div>`;
  root.insertBefore(toolbar(r), root.querySelector('form'));
  const form = root.querySelector('form');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const id = form.id.value.trim();
    if (id) { history.pushState(null, '', `/traces/${encodeURIComponent(id)}`); window.dispatchEvent(new Event('skillscope:navigate')); return; }
    update({ q: form.q.value });
  });
  const out = root.querySelector('.out');
  try {
    const now = Date.now();
    const res = await tempo.search(q, resolve(r.from, now), resolve(r.to, now), 50);
    const ts = res.traces || [];
    out.innerHTML = ts.length ? `<table class="data"><thead><tr><th>Trace</th><th>Service</th><th>Name</th><th>Start</th><th>Duration</th><th>Matched spans</th></tr></thead><tbody>${ts.map((t) =>
      `<tr><td><a href="/traces/${t.traceID}">${t.traceID}</a></td><td>${escapeHtml(t.rootServiceName || '')}</td><td>${escapeHtml(t.rootTraceName || '')}</td>
      <td>${fmtTime(+String(t.startTimeUnixNano).slice(0, -6))}</td><td class="num">${formatValue((t.durationMs || 0) / 1000, 's')}</td>
      <td>${(t.spanSets || [t.spanSet]).filter(Boolean).flatMap((s) => s.spans || []).slice(0, 3).map((s) => escapeHtml(s.name || s.spanID)).join(', ')}</td></tr>`).join('')}</tbody></table>` : '<div class="nodata">No traces match</div>';
  } catch (e) {
    out.innerHTML = `<div class="error">${escapeHtml(e.message)}</div>`;
  }
}

export async function renderTraces(root, m) {
  if (m[1]) await renderTrace(root, decodeURIComponent(m[1]));
  else await renderSearch(root);
  root.dataset.rendered = 'true';
  return () => {};
}
