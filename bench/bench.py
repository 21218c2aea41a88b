#!/usr/bin/env python3
"""Ingest and storage benchmark for Skillscope (see docs/BENCHMARKS.md).

Starts ./skillscope on free loopback ports with a temp data dir, drives it with
build/release/bench/otlp_load (OTLP/HTTP protobuf, keep-alive connections) and reports, per signal:
items per server CPU-second (utime+stime of the server process from /proc), bytes on disk per item
after a clean stop wrote the head to a block, peak RSS; plus start-up time to /-/ready and idle RSS.
"""
import os, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request

QUICK = "--quick" in sys.argv
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "skillscope")
LOAD = os.path.join(ROOT, "build/release/bench/otlp_load")
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / TICK


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def dir_bytes(path, pred=lambda name: True):
    total = 0
    for root, _, files in os.walk(path):
        for n in files:
            if pred(n):
                total += os.path.getsize(os.path.join(root, n))
    return total


class Server:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="skillscope-bench-")
        self.http, self.otlp, self.grpc = free_port(), free_port(), free_port()
        t0 = time.monotonic()
        self.proc = subprocess.Popen([BIN, "serve", "--data-dir", self.dir + "/data",
                                      "--http-port", str(self.http), "--otlp-http-port", str(self.otlp),
                                      "--otlp-grpc-port", str(self.grpc)],
                                     stdout=subprocess.DEVNULL, stderr=open(self.dir + "/log", "w"))
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except Exception:
                pass
            if self.proc.poll() is not None:
                sys.exit("server died: " + open(self.dir + "/log").read()[-2000:])
            time.sleep(0.002)
        self.startup_s = time.monotonic() - t0

    def load(self, *args):
        cpu0 = cpu_seconds(self.proc.pid)
        out = subprocess.run([LOAD, "--port", str(self.otlp), *map(str, args)], check=True,
                             capture_output=True, text=True).stdout
        cpu = cpu_seconds(self.proc.pid) - cpu0
        kv = dict(x.split("=") for x in out.split())
        return int(kv["items"]), float(kv["seconds"]), cpu, int(kv["bytes"])

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def row(name, value, target=""):
    print(f"| {name} | {value} | {target} |")


def main():
    for p in (BIN, LOAD):
        if not os.path.exists(p):
            sys.exit(f"missing {p}: run `make bench`")
    series, points = (1000, 360) if QUICK else (10000, 360)
    print(f"workload: {series} series x {points} samples (15 s apart), "
          f"{20 if QUICK else 200}k spans, {40 if QUICK else 400}k log lines; "
          f"{os.cpu_count()} cores\n")
    print("| figure | Skillscope | target |")
    print("| --- | --- | --- |")

    s = Server()
    row("start-up to /-/ready (empty data dir)", f"{s.startup_s * 1000:.0f} ms", "≤ 100 ms")
    time.sleep(0.5)
    row("idle RSS", f"{status_kb(s.proc.pid, 'VmRSS') / 1024:.1f} MiB", "≤ 20 MiB")
    idle_kb = status_kb(s.proc.pid, "VmRSS")

    n, wall, cpu, _ = s.load("--signal", "metrics", "--series", series, "--points", points,
                             "--batch", 2000, "--conns", 2)
    row("metric ingest, samples per server CPU-second (OTLP protobuf)", f"{n / cpu:,.0f} ({n:,} in {wall:.1f} s wall)", "≥ 700k")
    rss_kb = status_kb(s.proc.pid, "VmRSS")
    row("RSS per active series (after ingest)", f"{(rss_kb - idle_kb) * 1024 / series:,.0f} B", "")
    row("peak RSS during metric ingest", f"{status_kb(s.proc.pid, 'VmHWM') / 1024:.1f} MiB", "≤ 100 MiB")
    metric_samples = n

    n, wall, cpu, _ = s.load("--signal", "traces", "--points", 20 if QUICK else 200, "--batch", 1000, "--conns", 2)
    row("span ingest, spans per server CPU-second", f"{n / cpu:,.0f} ({n:,} in {wall:.1f} s wall)", "≥ 300k")
    spans = n

    n, wall, cpu, req_bytes = s.load("--signal", "logs", "--points", 40 if QUICK else 400, "--batch", 1000, "--conns", 2)
    row("log ingest, lines per server CPU-second", f"{n / cpu:,.0f} ({n:,} in {wall:.1f} s wall)", "≥ 600k")
    logs = n
    row("peak RSS overall", f"{status_kb(s.proc.pid, 'VmHWM') / 1024:.1f} MiB", "≤ 100 MiB")

    t0 = time.monotonic()
    s.stop()
    row("clean stop (head written to a block)", f"{time.monotonic() - t0:.2f} s", "")
    blocks = os.path.join(s.dir, "data", "blocks")
    mbytes = dir_bytes(blocks, lambda f: f in ("index", "chunks"))
    sbytes = dir_bytes(blocks, lambda f: f == "spans")
    lbytes = dir_bytes(blocks, lambda f: f == "logs")
    row("bytes per stored sample (aligned 15 s scrapes)", f"{mbytes / metric_samples:.2f}", "≤ 0.44")
    row("bytes per stored span", f"{sbytes / spans:.1f}", "")
    row("bytes per stored log line (~244 B lines)", f"{lbytes / logs:.1f}", "≤ 35")
    s.cleanup()

    s = Server()
    n, wall, cpu, _ = s.load("--signal", "metrics", "--series", series // 10 or 100, "--points", points,
                             "--batch", 2000, "--conns", 2, "--jitter-ms", 2)
    s.stop()
    mbytes = dir_bytes(os.path.join(s.dir, "data", "blocks"), lambda f: f in ("index", "chunks"))
    row("bytes per stored sample (±2 ms jitter)", f"{mbytes / n:.2f}", "≤ 0.98")
    s.cleanup()


if __name__ == "__main__":
    main()
