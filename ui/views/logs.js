// logs.js - /logs: a LogQL query's lines, newest first, with each entry's labels (stream labels,
// structured metadata and parsed fields, as Loki returns them) and a live tail that polls for
// lines newer than the last one shown. State: ?q=&from=&to=&live=1.

import { loki } from '../lib/api.js';
import { escapeHtml } from '../lib/format.js';
import { resolve, fmtTime } from '../lib/time.js';
import { params, update } from '../lib/state.js';
import { rangeFromUrl, toolbar } from '../lib/controls.js';

const POLL_MS = 2000;
const MAX_ROWS = 2000;

function rows(result) {
  return result.flatMap((s) => s.values.map(([t, l]) => ({ ns: BigInt(t), l, s: s.stream })));
}

function rowHtml(e) {
  const labels = Object.entries(e.s).map(([k, v]) => `<span class="chip">${escapeHtml(k)}=${escapeHtml(v)}</span>`).join('');
  return `<tr><td class="ts">${fmtTime(Number(e.ns / 1000000n))}</td><td>${escapeHtml(e.l)}<div class="chips">${labels}</div></td></tr>`;
}

export async function renderLogs(root) {
  const p = params();
  const q = p.get('q') || '{service_name=~".+"}';
  const live = p.get('live') === '1';
  const r = rangeFromUrl({ from: 'now-1h' });
  document.title = 'Logs · Skillscope';
  root.innerHTML = `<h1>Logs</h1><form class="query"><textarea name="q" rows="2" spellcheck="false">${escapeHtml(q)}</textarea>
    <label><input type="checkbox" name="live" ${live ? 'checked' : ''}> live</label><button type="submit">Run</button></form>
    <div class="out"><div class="loading">Loading…</div></div>`;
  root.insertBefore(toolbar(r), root.querySelector('form'));
  const form = root.querySelector('form');
  form.addEventListener('submit', (e) => { e.preventDefault(); update({ q: form.q.value, live: form.live.checked ? '1' : null }); });
  form.live.addEventListener('change', () => form.requestSubmit());
  const out = root.querySelector('.out');
  const now = Date.now();
  let last = 0n;
  try {
    const data = await loki.range(q, resolve(r.from, now), resolve(r.to, now), { limit: 500 });
    if (data.resultType !== 'streams') throw new Error('this is a metric query: open it in Explore to chart it');
    const es = rows(data.result).sort((a, b) => (a.ns < b.ns ? 1 : -1));
    last = es.length ? es[0].ns : BigInt(now) * 1000000n;
    out.innerHTML = es.length ? `<table class="data logs"><tbody>${es.map(rowHtml).join('')}</tbody></table>` : '<div class="nodata">No logs match</div>';
  } catch (e) {
    out.innerHTML = `<div class="error">${escapeHtml(e.message)}</div>`;
  }
  root.dataset.rendered = 'true';
  if (!live) return () => {};
  let busy = false;
  const timer = setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      const startMs = Number(last / 1000000n);
      const data = await loki.range(q, startMs, Date.now(), { limit: 500, direction: 'forward' });
      const fresh = rows(data.result).filter((e) => e.ns > last).sort((a, b) => (a.ns < b.ns ? 1 : -1));
      if (fresh.length) {
        last = fresh[0].ns;
        let tb = out.querySelector('tbody');
        if (!tb) { out.innerHTML = '<table class="data logs"><tbody></tbody></table>'; tb = out.querySelector('tbody'); }
        tb.insertAdjacentHTML('afterbegin', fresh.map(rowHtml).join(''));
        while (tb.rows.length > MAX_ROWS) tb.deleteRow(-1);
      }
    } catch (e) { /* the next poll retries; the error stays visible in the query form's run */ }
    busy = false;
  }, POLL_MS);
  return () => clearInterval(timer);
}
