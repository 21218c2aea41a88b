/*
 * home.c - the landing page at "/". Plain HTML with small inline scripts that read
 * /api/skillscope/status for the live counts and /api/dashboards for the dashboard links; no
 * assets, works offline.
 */
#include "web/home.h"

#include <stdio.h>

#include "base/buf.h"

static http_server_t *server;

static const char page_head[] =
    "<!doctype html><html lang=en><head><meta charset=utf-8><title>Skillscope</title>"
    "<meta name=viewport content=\"width=device-width,initial-scale=1\">"
    "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 "
    "1rem;color:#222}code,pre{font:13px ui-monospace,monospace;background:#f4f4f4}pre{padding:"
    ".8rem;overflow:auto}table{border-collapse:collapse}td,th{padding:.2rem .8rem .2rem 0;"
    "text-align:left;vertical-align:top}h1{margin-bottom:0}.sub{color:#666;margin-top:.2rem}"
    "</style></head><body><h1>Skillscope</h1><p class=sub>Telemetry backend for AI skills and "
    "agents: OTLP in, Prometheus / Loki / Tempo APIs out.</p>"
    "<p><a href=\"/explore\">Explore</a> &middot; dashboards: <span "
    "id=dashboards>loading&hellip;</span>"
    "</p><script>fetch('/api/dashboards').then(r=>r.json()).then(l=>{document.getElementById("
    "'dashboards').innerHTML=l.map(d=>`<a href=\"${d.url}\">${d.title}</a>`).join(' &middot; ')})"
    ".catch(e=>{document.getElementById('dashboards').textContent='unavailable: '+e})</script>";

static const char page_counts[] =
    "<h2>Received</h2><table id=counts><tr><td>loading&hellip;</td></tr></table>"
    "<script>fetch('/api/skillscope/status').then(r=>r.json()).then(s=>{let t='<tr><th>signal'"
    "+'<th>accepted<th>refused</tr>';for(const k of ['traces','metrics','logs']){const r=("
    "s.received||{})[k]||{};t+=`<tr><td>${k}<td>${r.accepted||0}<td>${r.refused||0}</tr>`}"
    "const st=s.storage||{};t+=`<tr><td colspan=3>${st.head_series||0} series, "
    "${(st.head_spans||0)+(st.block_spans||0)} spans, ${(st.head_log_entries||0)+"
    "(st.block_log_entries||0)} log entries stored; up ${Math.round(s.uptime_seconds)} s"
    "</tr>`;document.getElementById('counts').innerHTML=t}).catch(e=>{document."
    "getElementById('counts').innerHTML='<tr><td>status unavailable: '+e+'</tr>'})</script>";

static const char page_apis[] =
    "<h2>Look</h2><table>"
    "<tr><td><a href=\"/api/v1/label/__name__/values\">/api/v1/label/__name__/values</a>"
    "<td>metric names (Prometheus API; also series, labels, query for selectors)</tr>"
    "<tr><td><a href=\"/api/v1/series?match[]=%7Bjob%3D~%22.%2B%22%7D\">/api/v1/series</a>"
    "<td>series with a job</tr>"
    "<tr><td><a href=\"/loki/api/v1/labels\">/loki/api/v1/labels</a>"
    "<td>log stream labels (Loki API; also query_range, series)</tr>"
    "<tr><td><code>/api/traces/&lt;trace id&gt;</code><td>a trace (Tempo API)</tr>"
    "<tr><td><a href=\"/metrics\">/metrics</a><td>Skillscope's own metrics</tr>"
    "<tr><td><a href=\"/api/skillscope/status\">/api/skillscope/status</a>"
    "<td>what <code>skillscope status</code> shows</tr></table>"
    "<p>Grafana: add this URL as a Prometheus, a Loki and a Tempo data source.</p></body></html>";

static void h_home(http_req_t *r, void *arg)
{
    (void)arg;
    int otlp = http_server_port(server, "otlp_http");
    if (otlp < 0)
        otlp = http_server_port(server, "main");
    buf_t b;
    buf_init(&b, sizeof page_head + sizeof page_counts + sizeof page_apis + 1024);
    buf_append(&b, page_head, sizeof page_head - 1);
    buf_printf(&b,
               "<h2>Send data</h2><p>Any OpenTelemetry SDK or the Collector, and Claude Code:</p>"
               "<pre>export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:%d\n"
               "export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf\n"
               "export OTEL_TRACES_EXPORTER=otlp OTEL_METRICS_EXPORTER=otlp "
               "OTEL_LOGS_EXPORTER=otlp\n"
               "export CLAUDE_CODE_ENABLE_TELEMETRY=1   # for Claude Code</pre>"
               "<p>Test results without OpenTelemetry: <code>skillscope import junit "
               "results.xml</code> (pytest <code>--junitxml</code>, node "
               "<code>--test-reporter=junit</code>, ctest <code>--output-junit</code>, ...).</p>",
               otlp);
    buf_append(&b, page_counts, sizeof page_counts - 1);
    buf_append(&b, page_apis, sizeof page_apis - 1);
    http_reply_buf(r, 200, "text/html; charset=utf-8", &b);
}

int home_register(http_server_t *srv, const char *listener)
{
    server = srv;
    return http_route(srv, listener, HTTP_GET, "/", h_home, NULL, NULL);
}
