// app.js - the Skillscope UI: a navigation bar and a router from the URL's path to a view.
// Every view takes its state from the URL and returns a cleanup function (timers).

import { renderDashboard, renderDashboardList } from './views/dashboard.js';
import { renderExplore } from './views/explore.js';
import { renderTraces } from './views/traces.js';
import { renderLogs } from './views/logs.js';
import { renderTests } from './views/tests.js';
import { renderAlerts } from './views/alerts.js';
import { escapeHtml } from './lib/format.js';

const routes = [
  [/^\/d\/?$/, (root) => renderDashboardList(root)],
  [/^\/d\/([A-Za-z0-9_-]+)$/, (root, m) => renderDashboard(root, m[1])],
  [/^\/explore$/, (root) => renderExplore(root)],
  [/^\/traces(?:\/([^/]+))?$/, (root, m) => renderTraces(root, m)],
  [/^\/logs$/, (root) => renderLogs(root)],
  [/^\/tests(?:\/([^/]+))?$/, (root, m) => renderTests(root, m)],
  [/^\/alerts$/, (root) => renderAlerts(root)],
];

let cleanup = () => {};

async function render() {
  const root = document.getElementById('main');
  cleanup();
  cleanup = () => {};
  delete root.dataset.rendered;
  for (const [re, view] of routes) {
    const m = re.exec(location.pathname);
    if (m) {
      cleanup = (await view(root, m)) || (() => {});
      markNav();
      return;
    }
  }
  root.innerHTML = `<div class="error">No page at ${escapeHtml(location.pathname)}</div>`;
}

function markNav() {
  for (const a of document.querySelectorAll('nav a'))
    a.classList.toggle('active', location.pathname.startsWith(a.getAttribute('href')) && a.getAttribute('href') !== '/');
}

async function nav() {
  const el = document.createElement('nav');
  let dashboards = [];
  try { dashboards = await (await fetch('/api/dashboards')).json(); } catch { /* shown as an empty menu */ }
  el.innerHTML = `<a class="brand" href="/">Skillscope</a>
    ${dashboards.map((d) => `<a href="${d.url}">${escapeHtml(d.title)}</a>`).join('')}
    <a href="/explore">Explore</a> <a href="/traces">Traces</a> <a href="/logs">Logs</a>
    <a href="/tests">Tests</a> <a href="/alerts">Alerts</a>`;
  return el;
}

// Same-origin links navigate inside the app; the rest (API links, /) load normally.
document.addEventListener('click', (e) => {
  const a = e.target.closest('a');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !routes.some(([re]) => re.test(url.pathname))) return;
  e.preventDefault();
  history.pushState(null, '', url.pathname + url.search);
  render();
});
window.addEventListener('popstate', render);
window.addEventListener('skillscope:navigate', render);

(async () => {
  const app = document.getElementById('app');
  app.appendChild(await nav());
  const main = document.createElement('main');
  main.id = 'main';
  app.appendChild(main);
  render();
})();
