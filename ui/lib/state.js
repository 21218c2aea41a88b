// state.js - every view's state lives in the URL (time range, refresh, variables, query), so a
// page can be bookmarked, shared and reloaded as it is.

export function params() {
  return new URLSearchParams(location.search);
}

// Replaces the given keys (null removes; arrays repeat) and navigates; render() runs via the
// router's popstate-like hook.
export function update(changes, { replace = false } = {}) {
  const p = params();
  for (const [k, v] of Object.entries(changes)) {
    p.delete(k);
    if (v === null || v === undefined) continue;
    if (Array.isArray(v)) v.forEach((x) => p.append(k, x)); else p.set(k, v);
  }
  const url = location.pathname + (p.toString() ? '?' + p.toString() : '');
  if (replace) history.replaceState(null, '', url); else history.pushState(null, '', url);
  window.dispatchEvent(new Event('skillscope:navigate'));
}

export function go(url) {
  history.pushState(null, '', url);
  window.dispatchEvent(new Event('skillscope:navigate'));
}
