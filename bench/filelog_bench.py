#!/usr/bin/env python3
"""File-shipping benchmark: JSON log lines per server CPU-second, read from files by `sources:`
and pushed by `skillscope ship`.

Usage: bench/filelog_bench.py [--bin PATH] [--lines N] [--quick]

The lines are the JSON log lines of bench/loki_push_bench.py (DESIGN.md's log workload) plus a
"logger" field, ~244 bytes each. The file is written in full before the clock starts.

1. sources: a server is started with `sources: [{path: DIR/*.jsonl}]` on an empty DIR; the file is
   then renamed into DIR (all lines appear at once) and the run ends when positions.json records the
   file's full size (so every line is durable in the WAL). Server CPU = utime+stime from /proc
   between the rename and that moment (positions are saved once a second, so the wall time is an
   upper bound by up to 1 s; CPU is not affected).
2. ship: a fresh server; `skillscope ship FILE --once` pushes the same file through
   POST /loki/api/v1/push (JSON). Server CPU as above until ship exits (it exits after the last
   push was answered 204); the ship client's own CPU from wait4.
"""
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")
LEVELS = ["info", "info", "info", "debug", "warn", "error"]
PATHS = ["/api/skills", "/api/skills/route", "/api/agents/run", "/healthz", "/api/tests/results"]


def arg(name, default):
    if name in sys.argv:
        return sys.argv[sys.argv.index(name) + 1]
    return default


BIN = arg("--bin", os.path.join(ROOT, "skillscope"))
LINES = int(arg("--lines", "200000" if "--quick" in sys.argv else "1000000"))


def write_lines(path, n, seed=1):
    rnd = random.Random(seed)
    total = 0
    with open(path, "w") as f:
        buf = []
        for seq in range(n):
            lvl = rnd.choice(LEVELS)
            v = rnd.getrandbits(64)
            line = ('{"level":"%s","ts":"2026-11-22T00:%02d:%02d.%03dZ","msg":"request completed",'
                    '"logger":"skillmeat.api.request","method":"GET","path":"%s","status":%d,'
                    '"duration_ms":%d,"user_id":"u-%d","request_id":"%016x","bytes":%d}\n'
                    % (lvl, (seq // 60000) % 60, (seq // 1000) % 60, seq % 1000,
                       PATHS[v % 5], 200 if v % 17 else 500, v % 900, v % 5000, v, v % 100000))
            total += len(line)
            buf.append(line)
            if len(buf) == 10000:
                f.write("".join(buf))
                buf = []
        f.write("".join(buf))
    return total


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


class Server:
    def __init__(self, d, config=None):
        self.dir = d
        self.port = free_port()
        args = [BIN, "serve", "--data-dir", d + "/data", "--listen", "127.0.0.1",
                "--http-port", str(self.port), "--otlp-http-port", "0", "--otlp-grpc-port", "0"]
        if config:
            args += ["--config", config]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                     stderr=open(d + "/server.log", "w"))
        t0 = time.monotonic()
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready",
                                            timeout=1) as r:
                    if r.status == 200:
                        return
            except Exception:
                pass
            if self.proc.poll() is not None or time.monotonic() - t0 > 10:
                sys.exit("server did not start: " + open(d + "/server.log").read()[-2000:])
            time.sleep(0.01)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait()


def positions_offset(path):
    try:
        with open(path) as f:
            return sum(e["offset"] for e in json.load(f)["files"])
    except (OSError, ValueError, KeyError):
        return 0


def main():
    top = tempfile.mkdtemp(prefix="skillscope-filelogbench-")
    try:
        src = os.path.join(top, "lines.jsonl")
        size = write_lines(src, LINES)
        print(f"workload: {LINES:,} JSON lines, {size / LINES:.0f} B each on average, "
              f"{size / 1048576:.0f} MiB")

        # 1. sources:
        d = os.path.join(top, "sources")
        logdir = os.path.join(d, "logs")
        os.makedirs(logdir)
        cfg = os.path.join(d, "cfg.yaml")
        with open(cfg, "w") as f:
            f.write("sources:\n  - path: %s/*.jsonl\n    labels: {service_name: bench}\n" % logdir)
        srv = Server(d, cfg)
        time.sleep(0.5)
        c0, t0 = cpu_seconds(srv.proc.pid), time.monotonic()
        os.link(src, os.path.join(logdir, "app.jsonl"))
        pos = os.path.join(d, "data", "positions.json")
        while positions_offset(pos) < size:
            if srv.proc.poll() is not None:
                sys.exit("server died: " + open(d + "/server.log").read()[-2000:])
            time.sleep(0.05)
        c1, t1 = cpu_seconds(srv.proc.pid), time.monotonic()
        srv.stop()
        cpu = c1 - c0
        print(f"sources: {LINES / cpu:,.0f} lines per server CPU-second "
              f"({cpu / LINES * 1e6:.2f} CPU-s per 1M lines); wall {t1 - t0:.1f}s "
              f"(<= {LINES / (t1 - t0):,.0f} lines/s incl. up to 1 s positions lag)")

        # 2. ship
        d = os.path.join(top, "ship")
        os.makedirs(d)
        srv = Server(d)
        c0, t0 = cpu_seconds(srv.proc.pid), time.monotonic()
        p = subprocess.Popen([BIN, "ship", src, "--once", "--label", "service_name=bench",
                              "--server", f"http://127.0.0.1:{srv.port}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, ru = os.wait4(p.pid, 0)
        c1, t1 = cpu_seconds(srv.proc.pid), time.monotonic()
        err = p.stderr.read().decode()
        srv.stop()
        if status != 0:
            sys.exit("ship failed: " + err)
        cpu = c1 - c0
        ship_cpu = ru.ru_utime + ru.ru_stime
        print(f"ship:    {LINES / cpu:,.0f} lines per server CPU-second "
              f"({cpu / LINES * 1e6:.2f} CPU-s per 1M lines); ship client "
              f"{ship_cpu / LINES * 1e6:.2f} CPU-s per 1M lines; wall {t1 - t0:.1f}s "
              f"({LINES / (t1 - t0):,.0f} lines/s)")
    finally:
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
