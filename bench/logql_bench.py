#!/usr/bin/env python3
"""LogQL benchmark: line-filter throughput and metric-query latency over a large stored log set.

Usage: bench/logql_bench.py [--bin PATH] [--lines N] [--runs N] [--quick]

A fresh `skillscope serve` (free loopback ports, empty temp data dir) is loaded with N log records
(default 1,000,000) over OTLP/HTTP JSON, shaped like Claude Code's events: resource service.name
"bench", attribute event.name (api_request / tool_result, so two streams per service), structured
metadata model, cost_usd, session.id, and a ~120-byte logfmt body. Timestamps spread over the hour
before now. After loading, each query runs --runs times (default 3) through
/loki/api/v1/query[_range]; reported are the best wall time and, from the answer's
stats.summary.totalLinesProcessed, lines scanned per second:
  1. line filter, log query:  {service_name="bench"} |= "needle-that-is-rare"   (scans everything)
  2. line filter, metric:     sum(count_over_time({service_name="bench"} |= "status=503" [1h]))
  3. regex filter, metric:    sum(count_over_time({service_name="bench"} |~ "dur=9[0-9]ms" [1h]))
  4. logfmt + label filter:   sum by (status) (count_over_time({...} | logfmt | status >= 500 [1h]))
  5. unwrap metadata, range:  sum by (model) (sum_over_time({..., event_name="api_request"}
                              | unwrap cost_usd [5m])) over the hour, step 1m (61 steps)
Every answer must be 200; anything else aborts the run.
"""
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def arg(name, default):
    if name in sys.argv:
        return sys.argv[sys.argv.index(name) + 1]
    return default


QUICK = "--quick" in sys.argv
BIN = arg("--bin", os.environ.get("SKILLSCOPE_BIN", os.path.join(ROOT, "skillscope")))
LINES = int(arg("--lines", 100000 if QUICK else 1000000))
RUNS = int(arg("--runs", 3))
BATCH = 5000
MODELS = ["claude-sonnet-4", "claude-opus-4", "claude-haiku-4"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def sv(s):
    return {"stringValue": s}


def batch_body(rng, t0_ns, span_ns, start, n):
    recs = {"api_request": [], "tool_result": []}
    for i in range(start, start + n):
        ev = "api_request" if i % 3 else "tool_result"
        status = 503 if i % 97 == 0 else (500 if i % 31 == 0 else 200)
        body = "level=%s status=%d dur=%dms route=/v1/messages req=%08x user=u%03d" % (
            "error" if status >= 500 else "info", status, rng.randrange(1, 1000), i,
            i % 500)
        recs[ev].append({
            "timeUnixNano": str(t0_ns + (i * span_ns) // LINES),
            "body": sv(body),
            "attributes": [
                {"key": "event.name", "value": sv(ev)},
                {"key": "model", "value": sv(MODELS[i % 3])},
                {"key": "cost_usd", "value": {"doubleValue": round(rng.random() / 100, 6)}},
                {"key": "session.id", "value": sv("s%d" % (i % 50))},
            ]})
    rl = []
    for ev, lrs in recs.items():
        rl.append({"resource": {"attributes": [{"key": "service.name", "value": sv("bench")}]},
                   "scopeLogs": [{"scope": {"name": "bench"}, "logRecords": lrs}]})
    return json.dumps({"resourceLogs": rl}).encode()


def get(port, path, params):
    url = "http://127.0.0.1:%d%s?%s" % (port, path, urllib.parse.urlencode(params))
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=600) as r:
            body = r.read()
    except urllib.error.HTTPError as e:
        raise SystemExit("query failed: %d %s" % (e.code, e.read()[:300]))
    return time.perf_counter() - t, json.loads(body)


def main():
    if not os.access(BIN, os.X_OK):
        raise SystemExit("no binary at %s (make, or --bin PATH)" % BIN)
    tmp = tempfile.mkdtemp(prefix="logql-bench.")
    http_port, otlp_port, grpc_port = free_port(), free_port(), free_port()
    env = dict(os.environ, SKILLSCOPE_HTTP_PORT=str(http_port),
               SKILLSCOPE_OTLP_HTTP_PORT=str(otlp_port), SKILLSCOPE_OTLP_GRPC_PORT=str(grpc_port))
    srv = subprocess.Popen([BIN, "serve", "--data-dir", os.path.join(tmp, "data"),
                            "--listen", "127.0.0.1", "--http-port", str(http_port),
                            "--otlp-http-port", str(otlp_port), "--otlp-grpc-port",
                            str(grpc_port)], env=env, stdout=subprocess.DEVNULL,
                           stderr=open(os.path.join(tmp, "server.log"), "w"))
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % http_port, timeout=1)
                break
            except Exception:
                time.sleep(0.05)
        rng = random.Random(1)
        now_ns = time.time_ns()
        t0 = now_ns - 3600 * 10**9
        conn = http.client.HTTPConnection("127.0.0.1", otlp_port, timeout=120)
        t = time.perf_counter()
        for start in range(0, LINES, BATCH):
            body = batch_body(rng, t0, 3600 * 10**9 - 10**9, start, min(BATCH, LINES - start))
            conn.request("POST", "/v1/logs", body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise SystemExit("load failed: %d" % r.status)
        print("loaded %d log records over OTLP/HTTP JSON in %.1fs" % (LINES, time.perf_counter() - t))
        start_ns, end_ns = str(t0 - 10**9), str(now_ns + 10**9)
        at = str(now_ns)
        queries = [
            ("line filter (log query, nothing matches)", "/loki/api/v1/query_range",
             [("query", '{service_name="bench"} |= "needle-that-is-rare"'),
              ("start", start_ns), ("end", end_ns), ("limit", "100")]),
            ("line filter |= (metric)", "/loki/api/v1/query",
             [("query", 'sum(count_over_time({service_name="bench"} |= "status=503" [1h]))'),
              ("time", at)]),
            ("regex filter |~ (metric)", "/loki/api/v1/query",
             [("query", 'sum(count_over_time({service_name="bench"} |~ "dur=9[0-9]ms" [1h]))'),
              ("time", at)]),
            ("logfmt + numeric label filter", "/loki/api/v1/query",
             [("query", 'sum by (status) (count_over_time({service_name="bench"} | logfmt '
                        '| status >= 500 [1h]))'), ("time", at)]),
            ("unwrap cost_usd, range 61 steps", "/loki/api/v1/query_range",
             [("query", 'sum by (model) (sum_over_time({service_name="bench", '
                        'event_name="api_request"} | unwrap cost_usd [5m]))'),
              ("start", str(now_ns - 3600 * 10**9)), ("end", at), ("step", "60")]),
        ]
        print("%-36s %10s %14s %16s" % ("query", "best s", "lines scanned", "lines/s"))
        for name, path, params in queries:
            best, scanned = None, 0
            for _ in range(RUNS):
                dt, j = get(http_port, path, params)
                scanned = j["data"]["stats"]["summary"]["totalLinesProcessed"]
                best = dt if best is None else min(best, dt)
            print("%-36s %10.3f %14d %16.0f" % (name, best, scanned, scanned / best))
    finally:
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(timeout=60)
        except subprocess.TimeoutExpired:
            srv.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
