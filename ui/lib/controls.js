// controls.js - the time-range picker and refresh selector shared by dashboards and Explore.

import { PRESETS, label } from './time.js';
import { params, update } from './state.js';
import { escapeHtml } from './format.js';

const REFRESH = ['off', '10s', '30s', '1m', '5m', '15m'];

export function rangeFromUrl(defaults = {}) {
  const p = params();
  return { from: p.get('from') || defaults.from || 'now-6h', to: p.get('to') || defaults.to || 'now',
    refresh: p.get('refresh') || defaults.refresh || 'off' };
}

// A toolbar element for range r; changing it updates the URL.
export function toolbar(r) {
  const el = document.createElement('div');
  el.className = 'toolbar';
  const isPreset = PRESETS.some(([v]) => v === r.from) && r.to === 'now';
  el.innerHTML = `
    <label>Time <select class="range">
      ${isPreset ? '' : `<option selected value="">${escapeHtml(label(r.from, r.to))}</option>`}
      ${PRESETS.map(([v, t]) => `<option value="${v}" ${isPreset && v === r.from ? 'selected' : ''}>${t}</option>`).join('')}
    </select></label>
    <label>Refresh <select class="refresh">
      ${REFRESH.map((v) => `<option ${v === r.refresh ? 'selected' : ''}>${v}</option>`).join('')}
    </select></label>`;
  el.querySelector('.range').addEventListener('change', (e) => {
    if (e.target.value) update({ from: e.target.value, to: 'now' });
  });
  el.querySelector('.refresh').addEventListener('change', (e) =>
    update({ refresh: e.target.value === 'off' ? null : e.target.value }));
  return el;
}

// Zooming a chart sets an absolute range.
export function zoomTo(startMs, endMs) {
  update({ from: String(startMs), to: String(endMs) });
}
