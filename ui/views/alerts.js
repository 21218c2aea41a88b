// alerts.js - /alerts: the rule groups and the active alerts, from the Prometheus API
// (/api/v1/rules, /api/v1/alerts); empty lists until rules are configured.

import { escapeHtml, formatValue } from '../lib/format.js';

async function get(path) {
  const res = await fetch(path);
  const body = await res.json().catch(() => null);
  if (!res.ok || !body || body.status !== 'success') throw new Error((body && body.error) || `HTTP ${res.status}`);
  return body.data;
}

export async function renderAlerts(root) {
  document.title = 'Alerts · Skillscope';
  root.innerHTML = '<h1>Alerts and rules</h1><h2>Firing and pending</h2><div class="alerts"></div><h2>Rules</h2><div class="rules"></div>';
  const a = root.querySelector('.alerts'), r = root.querySelector('.rules');
  try {
    const { alerts } = await get('/api/v1/alerts');
    a.innerHTML = alerts.length ? `<table class="data"><thead><tr><th>Alert</th><th>State</th><th>Labels</th><th>Value</th><th>Since</th></tr></thead><tbody>${alerts.map((x) =>
      `<tr><td>${escapeHtml(x.labels.alertname || '')}</td><td>${escapeHtml(x.state)}</td><td>${escapeHtml(Object.entries(x.labels).filter(([k]) => k !== 'alertname').map(([k, v]) => `${k}=${v}`).join(', '))}</td>
      <td class="num">${escapeHtml(formatValue(+x.value))}</td><td>${escapeHtml(x.activeAt || '')}</td></tr>`).join('')}</tbody></table>` : '<div class="nodata">No alerts are firing or pending</div>';
  } catch (e) { a.innerHTML = `<div class="error">${escapeHtml(e.message)}</div>`; }
  try {
    const { groups } = await get('/api/v1/rules');
    r.innerHTML = groups.length ? groups.map((g) => `<h3>${escapeHtml(g.name)} <span class="sub">${escapeHtml(g.file || '')} every ${g.interval}s</span></h3>
      <table class="data"><tbody>${g.rules.map((x) => `<tr><td>${escapeHtml(x.name)}</td><td>${escapeHtml(x.type)}</td><td><code>${escapeHtml(x.query)}</code></td>
      <td>${escapeHtml(x.health || '')}${x.lastError ? ': ' + escapeHtml(x.lastError) : ''}</td></tr>`).join('')}</tbody></table>`).join('')
      : '<div class="nodata">No rules are configured (rule_files in the config file)</div>';
  } catch (e) { r.innerHTML = `<div class="error">${escapeHtml(e.message)}</div>`; }
  root.dataset.rendered = 'true';
  return () => {};
}
