// chart.js - charts on uPlot (loaded as the global `uPlot` from /ui/vendor): time series (lines or
// bars, optionally stacked) with a legend that shows values under the cursor and toggles series
// on click, drag-to-zoom, and a canvas heatmap for histogram buckets over time.

import { formatValue } from './format.js';

const PALETTE = ['#3274d9', '#e0752d', '#56a64b', '#e02f44', '#8f3bb8', '#37872d', '#f2cc0c',
  '#1f60c4', '#c4162a', '#73bf69', '#8ab8ff', '#ff9830', '#b877d9', '#5794f2', '#fade2a'];

export function color(i) { return PALETTE[i % PALETTE.length]; }

// series: [{label, points: [[tSeconds, value]...]}] -> uPlot's columnar data on the union of
// timestamps, null where a series has no point.
export function align(series) {
  const ts = new Set();
  for (const s of series) for (const [t] of s.points) ts.add(t);
  const xs = [...ts].sort((a, b) => a - b);
  const idx = new Map(xs.map((t, i) => [t, i]));
  const cols = series.map((s) => {
    const col = new Array(xs.length).fill(null);
    for (const [t, v] of s.points) col[idx.get(t)] = v;
    return col;
  });
  return [xs, ...cols];
}

function stackData(data) {
  const out = [data[0]];
  const acc = new Array(data[0].length).fill(0);
  for (let i = 1; i < data.length; i++) {
    out.push(data[i].map((v, k) => (v === null ? null : (acc[k] += v))));
  }
  return out;
}

// Draws into el (emptied); returns a handle with destroy(). opts: unit, decimals, bars, stack,
// min, max, height, startMs/endMs (the x range; default the data's), onZoom(startMs, endMs).
export function timeSeries(el, series, opts = {}) {
  el.textContent = '';
  let data = align(series);
  if (opts.stack) data = stackData(data);
  const unit = opts.unit || 'short';
  const fmt = (v) => formatValue(v, unit, opts.decimals);
  const bars = opts.bars ? uPlot.paths.bars({ size: [0.8, 40] }) : undefined;
  const u = new uPlot({
    width: Math.max(200, el.clientWidth || 400),
    height: opts.height || 220,
    cursor: { drag: { x: true, y: false } },
    legend: { live: true },
    scales: { x: { time: true, range: (u, lo, hi) => [opts.startMs ? opts.startMs / 1000 : lo, opts.endMs ? opts.endMs / 1000 : hi] },
      y: { range: (u, lo, hi) => [opts.min ?? Math.min(0, lo), opts.max ?? (hi === lo ? hi + 1 : hi)] } },
    axes: [{ stroke: 'var(--muted)', grid: { stroke: 'var(--grid)' } },
      { stroke: 'var(--muted)', grid: { stroke: 'var(--grid)' }, size: 70, values: (u, ticks) => ticks.map(fmt) }],
    series: [{}, ...series.map((s, i) => ({
      label: s.label, stroke: color(i), width: 1.5, value: (u, v) => fmt(v),
      fill: opts.stack || opts.bars ? color(i) + '55' : undefined, paths: bars, spanGaps: false,
      points: { show: s.points.length < 3 },
    }))],
    hooks: {
      setSelect: [(u) => {
        if (!opts.onZoom || u.select.width < 5) return;
        const a = u.posToVal(u.select.left, 'x'), b = u.posToVal(u.select.left + u.select.width, 'x');
        opts.onZoom(Math.round(a * 1000), Math.round(b * 1000));
      }],
    },
  }, data, el);
  const ro = new ResizeObserver(() => u.setSize({ width: Math.max(200, el.clientWidth), height: opts.height || 220 }));
  ro.observe(el);
  return { destroy() { ro.disconnect(); u.destroy(); } };
}

// Histogram buckets over time as a heatmap. buckets: [{le: number, points: [[t, cumulative]]}].
// Each column shows the per-bucket counts (differences between consecutive le) at one step.
export function heatmap(el, buckets, opts = {}) {
  el.textContent = '';
  const bs = buckets.filter((b) => b.points.length).sort((a, b) => a.le - b.le);
  const data = align(bs.map((b) => ({ points: b.points })));
  const xs = data[0];
  const rows = bs.length;
  const counts = [];
  let max = 0;
  for (let c = 0; c < xs.length; c++) {
    const col = [];
    for (let r = 0; r < rows; r++) {
      const cur = data[r + 1][c] ?? 0, prev = r ? (data[r][c] ?? 0) : 0;
      const v = Math.max(0, cur - prev);
      col.push(v);
      max = Math.max(max, v);
    }
    counts.push(col);
  }
  const canvas = document.createElement('canvas');
  const w = Math.max(200, el.clientWidth || 400), h = opts.height || 220, left = 70, bottom = 20;
  canvas.width = w; canvas.height = h;
  el.appendChild(canvas);
  const g = canvas.getContext('2d');
  g.font = '11px system-ui, sans-serif';
  g.fillStyle = getComputedStyle(el).getPropertyValue('--muted') || '#888';
  const cw = (w - left) / Math.max(1, xs.length), rh = (h - bottom) / Math.max(1, rows);
  for (let r = 0; r < rows; r++) {
    const y = h - bottom - (r + 1) * rh;
    if (rows < 12 || r % Math.ceil(rows / 10) === 0)
      g.fillText(Number.isFinite(bs[r].le) ? formatValue(bs[r].le, opts.unit || 'short') : '+Inf', 2, y + rh / 2 + 4);
    for (let c = 0; c < xs.length; c++) {
      const v = counts[c][r];
      if (!v) continue;
      g.fillStyle = `rgba(224, 117, 45, ${0.15 + 0.85 * v / max})`;
      g.fillRect(left + c * cw, y, Math.ceil(cw), Math.ceil(rh));
    }
  }
  g.fillStyle = getComputedStyle(el).getPropertyValue('--muted') || '#888';
  if (xs.length) {
    g.fillText(new Date(xs[0] * 1000).toLocaleTimeString(), left, h - 5);
    const last = new Date(xs[xs.length - 1] * 1000).toLocaleTimeString();
    g.fillText(last, w - g.measureText(last).width - 2, h - 5);
  }
  canvas.title = `max ${max} per bucket and step`;
  return { destroy() {} };
}
