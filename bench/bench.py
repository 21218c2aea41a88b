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
        out = subprocess.run([LOAD, "--port", str(self.otlp), *map(str, args)], check=True,
                             capture_output=True, text=True).stdout
        kv = dict(x.split("=") for x in out.split())
        return int(kv["items"]), float(kv["seconds"])

    def stop(self):
        """SIGTERM (clean stop writes the head to a block); returns (cpu seconds of the whole
        server lifetime, start-up and the final block write included; peak RSS MiB)."""
        self.proc.send_signal(signal.SIGTERM)
        _, status, ru = os.wait4(self.proc.pid, 0)
        self.proc.returncode = status
        return ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024

    def blocks(self):
        return os.path.join(self.dir, "data", "blocks")

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def row(name, value, target=""):
    print(f"| {name} | {value} | {target} |")


def main():
    for p in (BIN, LOAD):
        if not os.path.exists(p):
            sys.exit(f"missing {p}: run `make bench`")
    series, points = (1000, 360) if QUICK else (10000, 1440)
    spans_req, logs_req = (20, 40) if QUICK else (200, 400)
    print(f"workload: {series} series x {points} samples (15 s apart), {spans_req}k spans, "
          f"{logs_req}k log lines of ~244 B; one fresh server per signal; CPU = the server's whole "
          f"lifetime (start, ingest, final block write); {os.cpu_count()} cores\n")
    print("| figure | Skillscope | target |")
    print("| --- | --- | --- |")

    s = Server()
    row("start-up to /-/ready (empty data dir)", f"{s.startup_s * 1000:.0f} ms", "≤ 100 ms")
    time.sleep(0.5)
    idle_kb = status_kb(s.proc.pid, "VmRSS")
    row("idle RSS", f"{idle_kb / 1024:.1f} MiB", "≤ 20 MiB")
    n, wall = s.load("--signal", "metrics", "--series", series, "--points", points,
                     "--batch", 2000, "--conns", 2)
    rss_kb = status_kb(s.proc.pid, "VmRSS")
    cpu, peak = s.stop()
    row("metric ingest, samples per server CPU-second (OTLP protobuf)",
        f"{n / cpu:,.0f} ({n:,} in {wall:.1f} s wall)", "≥ 700k")
    row("RSS per active series (after ingest, head holding them)",
        f"{(rss_kb - idle_kb) * 1024 / series:,.0f} B", "")
    row("peak RSS, metric ingest", f"{peak:.1f} MiB", "≤ 100 MiB")
    mbytes = dir_bytes(s.blocks(), lambda f: f in ("index", "chunks"))
    row("bytes per stored sample (aligned 15 s scrapes)", f"{mbytes / n:.2f}", "≤ 0.44")
    s.cleanup()

    s = Server()
    n, wall = s.load("--signal", "metrics", "--series", series // 10 or 100, "--points", points,
                     "--batch", 2000, "--conns", 2, "--jitter-ms", 2)
    s.stop()
    mbytes = dir_bytes(s.blocks(), lambda f: f in ("index", "chunks"))
    row("bytes per stored sample (±2 ms jitter)", f"{mbytes / n:.2f}", "≤ 0.98")
    s.cleanup()

    s = Server()
    n, wall = s.load("--signal", "traces", "--points", spans_req, "--batch", 1000, "--conns", 2)
    cpu, peak = s.stop()
    row("span ingest, spans per server CPU-second", f"{n / cpu:,.0f} ({n:,} in {wall:.1f} s wall)",
        "≥ 300k")
    row("peak RSS, span ingest", f"{peak:.1f} MiB", "≤ 100 MiB")
    row("bytes per stored span", f"{dir_bytes(s.blocks(), lambda f: f == 'spans') / n:.1f}", "")
    s.cleanup()

    s = Server()
    n, wall = s.load("--signal", "logs", "--points", logs_req, "--batch", 1000, "--conns", 2)
    cpu, peak = s.stop()
    row("log ingest, lines per server CPU-second", f"{n / cpu:,.0f} ({n:,} in {wall:.1f} s wall)",
        "≥ 600k")
    row("peak RSS, log ingest", f"{peak:.1f} MiB", "≤ 100 MiB")
    row("bytes per stored log line (~244 B lines)",
        f"{dir_bytes(s.blocks(), lambda f: f == 'logs') / n:.1f}", "≤ 35")
    s.cleanup()


if __name__ == "__main__":
    main()
