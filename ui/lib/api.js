// api.js - the Prometheus, Loki and Tempo HTTP APIs of this server, as the UI uses them. Every
// call resolves to the API's data or throws an Error whose message is the server's own.

async function call(url, opts) {
  let res;
  try {
    res = await fetch(url, opts);
  } catch (e) {
    throw new Error(`cannot reach the server: ${e.message}`);
  }
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { /* Loki errors are text/plain */ }
  if (!res.ok || (body && body.status === 'error')) {
    const msg = (body && (body.error || body.message)) || text.trim() || `HTTP ${res.status}`;
    throw new Error(msg);
  }
  return body;
}

function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null) continue;
    if (Array.isArray(v)) v.forEach((x) => u.append(k, x)); else u.append(k, v);
  }
  return u.toString();
}

// POST form like Grafana does (long expressions fit), answered as GET would be.
function post(path, params) {
  return call(path, {
    method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: qs(params),
  });
}

export const prom = {
  // -> {resultType, result}
  range: async (query, startMs, endMs, stepS) =>
    (await post('/api/v1/query_range', { query, start: startMs / 1000, end: endMs / 1000, step: stepS })).data,
  instant: async (query, timeMs) => (await post('/api/v1/query', { query, time: timeMs / 1000 })).data,
  labelValues: async (label, match, startMs, endMs) =>
    (await call(`/api/v1/label/${encodeURIComponent(label)}/values?` +
      qs({ 'match[]': match, start: startMs && startMs / 1000, end: endMs && endMs / 1000 }))).data,
  series: async (match, startMs, endMs) =>
    (await call('/api/v1/series?' + qs({ 'match[]': match, start: startMs / 1000, end: endMs / 1000 }))).data,
};

export const loki = {
  range: async (query, startMs, endMs, { limit = 1000, direction = 'backward', stepS } = {}) =>
    (await call('/loki/api/v1/query_range?' + qs({
      query, start: `${startMs}000000`, end: `${endMs}000000`, limit, direction, step: stepS,
    }))).data,
  labels: async (startMs, endMs) =>
    (await call('/loki/api/v1/labels?' + qs({ start: `${startMs}000000`, end: `${endMs}000000` }))).data || [],
};

export const tempo = {
  search: async (q, startMs, endMs, limit = 20) =>
    call('/api/search?' + qs({ q, start: Math.floor(startMs / 1000), end: Math.ceil(endMs / 1000), limit })),
  trace: async (id) => call(`/api/v2/traces/${encodeURIComponent(id)}`),
};

export async function status() {
  return call('/api/skillscope/status');
}
