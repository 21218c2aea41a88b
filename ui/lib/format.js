// format.js - values with units, as dashboard panels show them.

const SI = ['', 'K', 'M', 'G', 'T', 'P'];
const BIN = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

function fixed(v, decimals) {
  if (decimals !== undefined && decimals !== null) return v.toFixed(decimals);
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}

function scaled(v, base, units, decimals) {
  let i = 0;
  while (Math.abs(v) >= base && i < units.length - 1) { v /= base; i++; }
  return fixed(v, decimals) + (units[i] ? ' ' + units[i] : '');
}

function duration(sec, decimals) {
  const a = Math.abs(sec);
  if (a === 0) return '0 s';
  if (a < 1e-3) return fixed(sec * 1e6, decimals) + ' µs';
  if (a < 1) return fixed(sec * 1e3, decimals) + ' ms';
  if (a < 120) return fixed(sec, decimals) + ' s';
  if (a < 7200) return fixed(sec / 60, decimals) + ' min';
  if (a < 172800) return fixed(sec / 3600, decimals) + ' h';
  return fixed(sec / 86400, decimals) + ' d';
}

// unit: short (default), none, percent (0-100), percentunit (0-1), s, ms, bytes, usd, tokens, reqps.
export function formatValue(v, unit = 'short', decimals) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  switch (unit) {
    case 'none': return String(v);
    case 'percent': return fixed(v, decimals ?? 1) + '%';
    case 'percentunit': return fixed(v * 100, decimals ?? 1) + '%';
    case 's': return duration(v, decimals);
    case 'ms': return duration(v / 1000, decimals);
    case 'bytes': return scaled(v, 1024, BIN, decimals);
    case 'usd': return '$' + (Math.abs(v) >= 1000 ? scaled(v, 1000, SI, decimals ?? 1) : fixed(v, decimals ?? (Math.abs(v) < 1 ? 4 : 2)));
    case 'tokens': return scaled(v, 1000, SI, decimals).trim() + ' tok';
    case 'reqps': return scaled(v, 1000, SI, decimals) + ' req/s';
    default: return scaled(v, 1000, SI, decimals);
  }
}

// The color of the highest threshold at or below v; thresholds: [{value, color}] ascending,
// the first may have value null (base color).
export function thresholdColor(v, thresholds, fallback = 'var(--fg)') {
  if (!thresholds || !thresholds.length || v === null || Number.isNaN(v)) return fallback;
  let c = fallback;
  for (const t of thresholds) if (t.value === null || t.value === undefined || v >= t.value) c = t.color;
  return c;
}

// "{{span_name}} on {{vcs_commit_sha}}" with the series' labels; the label set when no template.
export function legendOf(template, metric) {
  if (template) return template.replace(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, (_, k) => metric[k] ?? '');
  const { __name__, ...rest } = metric;
  const inner = Object.entries(rest).map(([k, v]) => `${k}="${v}"`).join(', ');
  return (__name__ || '') + (inner ? `{${inner}}` : (__name__ ? '' : '{}'));
}

export function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}
