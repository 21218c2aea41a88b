// time.js - time ranges as Grafana writes them in URLs: "now", "now-6h", "now-7d/d" is not
// supported; absolute values are unix milliseconds. Durations use Prometheus units.

const UNIT_MS = { ms: 1, s: 1000, m: 60000, h: 3600000, d: 86400000, w: 604800000, y: 31536000000 };

// "1h30m" -> 5400000; NaN when malformed.
export function parseDuration(s) {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)/y;
  let total = 0, m, pos = 0;
  if (!s) return NaN;
  while (pos < s.length) {
    re.lastIndex = pos;
    if (!(m = re.exec(s))) return NaN;
    total += parseFloat(m[1]) * UNIT_MS[m[2]];
    pos = re.lastIndex;
  }
  return total;
}

// A range end ("now", "now-6h", or unix ms) -> unix ms at `now`.
export function resolve(v, now = Date.now()) {
  if (v === undefined || v === null || v === '' || v === 'now') return now;
  if (/^\d+$/.test(v)) return parseInt(v, 10);
  const m = /^now-(.+)$/.exec(v);
  if (m) {
    const d = parseDuration(m[1]);
    if (!isNaN(d)) return now - d;
  }
  return NaN;
}

export const PRESETS = [
  ['now-5m', 'Last 5 minutes'], ['now-15m', 'Last 15 minutes'], ['now-1h', 'Last 1 hour'],
  ['now-6h', 'Last 6 hours'], ['now-24h', 'Last 24 hours'], ['now-7d', 'Last 7 days'],
  ['now-30d', 'Last 30 days'],
];

// A step giving about `points` points over [start, end] ms, rounded to a friendly value (s).
export function stepFor(startMs, endMs, points = 250) {
  const raw = Math.max(1, (endMs - startMs) / 1000 / points);
  const nice = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400];
  for (const n of nice) if (n >= raw) return n;
  return Math.ceil(raw / 86400) * 86400;
}

export function label(from, to) {
  const p = PRESETS.find(([v]) => v === from);
  if (p && (to === 'now' || !to)) return p[1];
  const f = (v) => new Date(resolve(v)).toLocaleString();
  return `${f(from)} to ${f(to)}`;
}

export function fmtTime(ms) {
  const d = new Date(ms);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
