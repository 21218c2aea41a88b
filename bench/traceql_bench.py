#!/usr/bin/env python3
"""Trace-by-id and TraceQL search latency over ~1M stored spans (see docs/BENCHMARKS.md).

Starts ./skillscope (or $SKILLSCOPE_BIN) on free loopback ports with a temp data dir, loads spans
with build/release/bench/otlp_load (OTLP/HTTP protobuf; 10-span traces with test.id, test.result,
gen_ai.request.model attributes, 1 in 13 spans ERROR), then times, from a keep-alive client on
this machine:
  * GET /api/v2/traces/<id> (protobuf, as Grafana asks) and /api/traces/<id> (JSON) for 50 ids;
  * GET /api/search with queries that use only columns (status, name, duration), attributes,
    trace-level values (two scans), pipelines, and the tag endpoints Grafana's editor calls.
It does so twice: right after loading, and after a restart (the clean stop wrote the head to a
block). At 1M spans most spans are in blocks already in the first pass (the head is cut at
64 MiB), so both passes mostly read compressed span files. Prints a Markdown table of
median / min wall milliseconds per request and the server's mean CPU milliseconds per request
(from /proc; the honest figure on a shared machine, where wall time includes waiting for a core).

Usage: bench/traceql_bench.py [--spans N] [--runs N]   (default 1,000,000 spans, 5 runs)
"""
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("SKILLSCOPE_BIN") or os.path.join(ROOT, "skillscope")
LOAD = os.environ.get("OTLP_LOAD") or os.path.join(ROOT, "build/release/bench/otlp_load")


def arg(name, default):
    if name in sys.argv:
        return int(sys.argv[sys.argv.index(name) + 1])
    return default


SPANS = arg("--spans", 1_000_000)
RUNS = arg("--runs", 5)
BATCH = 1000

QUERIES = [
    ("columns: status", "{ status = error }"),
    ("columns: name + duration", '{ name = "skill.test" && duration > 8ms }'),
    ("attribute: test.result", '{ span.test.result = "failed" }'),
    ("attribute + column", '{ span.test.id = "routing-7" && status = error }'),
    ("unscoped attribute", '{ .gen_ai.request.model = "claude-sonnet-4" }'),
    ("resource attribute", '{ resource.service.name = "skill-tests" && kind = server }'),
    ("regex", '{ span.test.id =~ "routing-1[0-9]" }'),
    ("two spansets", '{ status = error } && { span.test.id = "routing-3" }'),
    ("trace-level (2 scans)", "{ traceDuration > 14ms && rootName = \"skill.test\" }"),
    ("pipeline count()", "{ status = error } | count() > 1"),
    ("no match", '{ span.test.id = "nope" }'),
]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.http, self.otlp, self.grpc = free_port(), free_port(), free_port()
        self.log = open(os.path.join(os.path.dirname(data_dir), "log"), "ab")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--data-dir", data_dir, "--listen", "127.0.0.1",
             "--http-port", str(self.http), "--otlp-http-port", str(self.otlp),
             "--otlp-grpc-port", str(self.grpc)],
            stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.http, timeout=1)
                c.request("GET", "/-/ready")
                if c.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise SystemExit("server did not get ready")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


TICK = os.sysconf("SC_CLK_TCK")
SERVER_PID = [0]


def cpu_ms(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) * 1000.0 / TICK


def timed_get(conn, path, headers=None):
    """Wall ms, status, body; the server's CPU ms of the request goes to CPU_LOG."""
    c0 = cpu_ms(SERVER_PID[0])
    t0 = time.perf_counter()
    conn.request("GET", path, headers=headers or {})
    r = conn.getresponse()
    body = r.read()
    wall = (time.perf_counter() - t0) * 1000
    CPU_LOG.append(cpu_ms(SERVER_PID[0]) - c0)
    return wall, r.status, body


CPU_LOG = []


def cpu_since(mark, n):
    """Mean server CPU ms over the n requests logged since mark (clock ticks are 10 ms, so
    single requests are too coarse; the mean over runs is what is reported)."""
    v = CPU_LOG[mark:]
    return sum(v) / max(1, n)


def measure(srv, label):
    SERVER_PID[0] = srv.proc.pid
    conn = http.client.HTTPConnection("127.0.0.1", srv.http, timeout=300)
    rows = []
    q = urllib.parse.quote("{ }")
    _, st, body = timed_get(conn, "/api/search?q=%s&limit=50" % q)
    ids = [t["traceID"] for t in json.loads(body)["traces"]] if st == 200 else []
    for name, path, hdr in [("trace by id, v2 protobuf", "/api/v2/traces/",
                             {"Accept": "application/protobuf"}),
                            ("trace by id, v1 JSON", "/api/traces/", {})]:
        times = []
        mark = len(CPU_LOG)
        for i in ids:
            ms, st, _ = timed_get(conn, path + i, hdr)
            assert st == 200, (path, st)
            times.append(ms)
        rows.append((label, name, "-", statistics.median(times), min(times),
                     cpu_since(mark, len(times)), len(times)))
    for name, query in QUERIES:
        times, n = [], 0
        mark = len(CPU_LOG)
        for _ in range(RUNS):
            ms, st, body = timed_get(conn, "/api/search?limit=20&q=" + urllib.parse.quote(query))
            assert st == 200, (query, st, body[:200])
            n = len(json.loads(body)["traces"])
            times.append(ms)
        rows.append((label, name, query, statistics.median(times), min(times),
                     cpu_since(mark, RUNS), n))
    for name, path in [("tags v2 (all scopes)", "/api/v2/search/tags"),
                       ("tag values v2 span.test.id", "/api/v2/search/tag/span.test.id/values"),
                       ("tag values v2 status", "/api/v2/search/tag/status/values")]:
        times = []
        mark = len(CPU_LOG)
        for _ in range(RUNS):
            ms, st, body = timed_get(conn, path)
            assert st == 200, (path, st)
            times.append(ms)
        rows.append((label, name, "-", statistics.median(times), min(times),
                     cpu_since(mark, RUNS), "-"))
    conn.close()
    return rows


def main():
    for p in (BIN, LOAD):
        if not os.access(p, os.X_OK):
            raise SystemExit("missing %s (make %s)" % (p, "skillscope build/release/bench/otlp_load"))
    tmp = tempfile.mkdtemp(prefix="skillscope-traceql-bench-")
    data = os.path.join(tmp, "data")
    try:
        srv = Server(data)
        t0 = time.monotonic()
        out = subprocess.run([LOAD, "--port", str(srv.otlp), "--signal", "traces",
                              "--points", str(max(1, SPANS // BATCH)), "--batch", str(BATCH),
                              "--conns", "2"], capture_output=True, text=True, check=True)
        load_s = time.monotonic() - t0
        print("loaded: %s (%.1f s)" % (out.stdout.strip(), load_s), flush=True)
        rows = measure(srv, "after load")
        srv.stop()
        srv = Server(data)
        rows += measure(srv, "after restart")
        srv.stop()
        print()
        print("load average at the end: %s" % open("/proc/loadavg").read().split()[:3])
        print()
        print("| where | request | query | wall median ms | wall min ms | server CPU ms | traces |")
        print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
        for where, name, query, med, mn, cpu, n in rows:
            q = "`%s`" % query.replace("|", "\\|") if query != "-" else "-"
            print("| %s | %s | %s | %.1f | %.1f | %.0f | %s |" % (where, name, q, med, mn, cpu, n))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
