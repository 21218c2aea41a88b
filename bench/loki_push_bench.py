#!/usr/bin/env python3
"""Loki push ingest benchmark: log lines per server CPU-second for JSON and snappy protobuf.

Usage: bench/loki_push_bench.py [--bin PATH] [--lines N] [--batch N] [--conns N] [--only json|pb]
                                [--quick]

For each body format a fresh `skillscope serve` is started on free loopback ports with an empty
temp data dir and fed POST /loki/api/v1/push requests over keep-alive connections, the way
Promtail / Alloy send (one request = one batch of streams). Lines are the ~244-byte JSON log lines
of bench/otlp_load.c's log workload (DESIGN.md), in streams labelled {service_name, level}.
Every request body is built and compressed before the clock starts (snappy with the system's
libsnappy through ctypes: real compression, as Go's snappy.Encode does), so the figures are the
server's work only: CPU is utime+stime of the server from /proc, read after the last push was
acknowledged (ingest), and again from wait4 after a clean stop (which also writes the head to a
block); peak RSS likewise (VmHWM after ingest, ru_maxrss after the stop). Every push must answer 204; anything else aborts the run.
"""
import ctypes
import ctypes.util
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
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")
LEVELS = ["info", "info", "info", "debug", "warn", "error"]
PATHS = ["/api/skills", "/api/skills/route", "/api/agents/run", "/healthz", "/api/tests/results"]
SERVICES = ["skills-api", "agent-runner"]


def arg(name, default):
    if name in sys.argv:
        return sys.argv[sys.argv.index(name) + 1]
    return default


QUICK = "--quick" in sys.argv
BIN = arg("--bin", os.environ.get("SKILLSCOPE_BIN", os.path.join(ROOT, "skillscope")))
LINES = int(arg("--lines", 40000 if QUICK else 400000))
BATCH = int(arg("--batch", 1000))
CONNS = int(arg("--conns", 2))
ONLY = arg("--only", "")

# ---- snappy through the system library ---------------------------------------------------------

_lib = ctypes.CDLL(ctypes.util.find_library("snappy") or "libsnappy.so.1")
_lib.snappy_max_compressed_length.restype = ctypes.c_size_t
_lib.snappy_max_compressed_length.argtypes = [ctypes.c_size_t]
_lib.snappy_compress.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                                 ctypes.POINTER(ctypes.c_size_t)]


def snappy(data):
    n = ctypes.c_size_t(_lib.snappy_max_compressed_length(len(data)))
    out = ctypes.create_string_buffer(n.value)
    if _lib.snappy_compress(data, len(data), out, ctypes.byref(n)) != 0:
        raise RuntimeError("snappy_compress failed")
    return out.raw[:n.value]


# ---- protobuf PushRequest (field numbers: ../shared/specs/loki/push.proto) ---------------------


def uvarint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field_len(num, b):
    return uvarint(num << 3 | 2) + uvarint(len(b)) + b


def field_varint(num, v):
    return uvarint(num << 3) + uvarint(v)


def pb_body(streams):
    out = bytearray()
    for labels, entries in streams:
        s = bytearray(field_len(1, labels.encode()))
        for ts, line in entries:
            t = field_varint(1, ts // 1_000_000_000) + field_varint(2, ts % 1_000_000_000)
            s += field_len(2, field_len(1, t) + field_len(2, line.encode()))
        out += field_len(1, bytes(s))
    return snappy(bytes(out))


def json_body(streams):
    return json.dumps({"streams": [
        {"stream": dict(kv.split("=") for kv in labels[1:-1].replace('"', "").split(", ")),
         "values": [[str(ts), line] for ts, line in entries]} for labels, entries in streams]},
        separators=(",", ":")).encode()


# ---- workload -----------------------------------------------------------------------------------


def batches(seed=1):
    """Yields one list of (labels, [(ts_ns, line)]) per request, LINES lines in all."""
    rnd = random.Random(seed)
    t0 = time.time_ns() - 3_600_000_000_000
    seq = 0
    for r in range(0, LINES, BATCH):
        svc = SERVICES[0 if (r // BATCH) % 3 else 1]
        streams = {}
        for i in range(min(BATCH, LINES - r)):
            lvl = rnd.choice(LEVELS)
            v = rnd.getrandbits(64)
            line = ('{"level":"%s","ts":"2026-11-22T00:%02d:%02d.%03dZ","msg":"request completed",'
                    '"method":"GET","path":"%s","status":%d,"duration_ms":%d,"user_id":"u-%d",'
                    '"request_id":"%016x","bytes":%d}'
                    % (lvl, (seq // 60000) % 60, (seq // 1000) % 60, seq % 1000,
                       PATHS[v % 5], 200 if v % 17 else 500, v % 900, v % 5000, v, v % 100000))
            labels = '{service_name="%s", level="%s"}' % (svc, lvl)
            streams.setdefault(labels, []).append((t0 + seq * 1_000_000, line))
            seq += 1
        yield list(streams.items())


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / TICK


class Server:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="skillscope-lokibench-")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [BIN, "serve", "--data-dir", self.dir + "/data", "--listen", "127.0.0.1",
             "--http-port", str(self.port), "--otlp-http-port", str(free_port()),
             "--otlp-grpc-port", str(free_port())],
            stdout=subprocess.DEVNULL, stderr=open(self.dir + "/log", "w"))
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
                sys.exit("server did not start: " + open(self.dir + "/log").read()[-2000:])
            time.sleep(0.01)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        _, status, ru = os.wait4(self.proc.pid, 0)
        self.proc.returncode = status
        return ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def send_all(port, bodies, ctype):
    errors = []

    def worker(k):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for i in range(k, len(bodies), CONNS):
            c.request("POST", "/loki/api/v1/push", body=bodies[i],
                      headers={"Content-Type": ctype})
            r = c.getresponse()
            body = r.read()
            if r.status != 204:
                errors.append(f"HTTP {r.status}: {body[:200]!r}")
                return
        c.close()

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(CONNS)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        sys.exit("push failed: " + errors[0])
    return time.monotonic() - t0


def main():
    if not os.access(BIN, os.X_OK):
        sys.exit(f"missing {BIN}: build it or pass --bin")
    work = list(batches())
    print(f"workload: {LINES:,} lines of ~244 B in {len(work):,} pushes of {BATCH} lines "
          f"({CONNS} keep-alive connections), streams {{service_name, level}}; "
          f"{os.cpu_count()} cores; binary {BIN}\n")
    print("| format | body bytes / line | lines per server CPU-s (ingest) | "
          "lines per server CPU-s (incl. block write at stop) | wall | peak RSS (ingest) | "
          "peak RSS (incl. stop) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for key, name, ctype, enc in (("json", "JSON", "application/json", json_body),
                                  ("pb", "protobuf + snappy", "application/x-protobuf", pb_body)):
        if ONLY and ONLY != key:
            continue
        bodies = [enc(b) for b in work]
        size = sum(len(b) for b in bodies)
        s = Server()
        c0 = cpu_seconds(s.proc.pid)
        wall = send_all(s.port, bodies, ctype)
        ingest_cpu = cpu_seconds(s.proc.pid) - c0
        hwm = status_kb(s.proc.pid, "VmHWM") / 1024
        total_cpu, peak = s.stop()
        print(f"| {name} | {size / LINES:.1f} | {LINES / ingest_cpu:,.0f} | "
              f"{LINES / total_cpu:,.0f} | {wall:.1f} s | {hwm:.1f} MiB | {peak:.1f} MiB |",
              flush=True)
        s.cleanup()


if __name__ == "__main__":
    main()
