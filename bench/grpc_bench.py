#!/usr/bin/env python3
"""OTLP/gRPC against OTLP/HTTP protobuf ingest cost (see docs/BENCHMARKS.md).

The same payloads (bench/otlp_load.c builds them with the project's OTLP encoder) are sent to a
fresh server once over OTLP/HTTP protobuf (keep-alive HTTP/1.1) and once over OTLP/gRPC (unary
Export calls on HTTP/2, `otlp_load --grpc`), one call in flight per connection, 2 connections.
The figure is items per server CPU-second while loading: utime+stime of the server process (all
its threads, WAL writer included) read from /proc just before and just after the load, so
start-up and the final block write are left out. Each pair runs ROUNDS times, alternating the
transport order; the median is reported.

Usage: python3 bench/grpc_bench.py [--quick]
Env: SKILLSCOPE_BIN (default ./skillscope), OTLP_LOAD (default build/release/bench/otlp_load).
"""
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (Server, cpu_seconds)

QUICK = "--quick" in sys.argv
ROUNDS = 1 if QUICK else 3
bench.BIN = os.environ.get("SKILLSCOPE_BIN") or bench.BIN
LOAD = os.environ.get("OTLP_LOAD") or bench.LOAD


def run_once(grpc, args):
    s = bench.Server()
    try:
        port = s.grpc if grpc else s.otlp
        cpu0 = bench.cpu_seconds(s.proc.pid)
        out = subprocess.run([LOAD, "--port", str(port), *map(str, args)] +
                             (["--grpc"] if grpc else []),
                             check=True, capture_output=True, text=True).stdout
        cpu1 = bench.cpu_seconds(s.proc.pid)
        kv = dict(x.split("=") for x in out.split())
        if int(kv["errors"]):
            sys.exit(f"{'grpc' if grpc else 'http'} load had errors: {out}")
        s.stop()
        return int(kv["items"]) / max(cpu1 - cpu0, 1e-3), int(kv["items"]), int(kv["requests"])
    finally:
        if s.proc.poll() is None:
            s.proc.kill()
        s.cleanup()


def main():
    for p in (bench.BIN, LOAD):
        if not os.path.exists(p):
            sys.exit(f"missing {p}: build the server and {LOAD} first (make bench)")
    scale = 10 if QUICK else 1
    workloads = [
        ("metric samples", ["--signal", "metrics", "--series", 1000, "--points", 600 // scale,
                            "--batch", 1000, "--conns", 2]),
        ("spans", ["--signal", "traces", "--points", 200 // scale, "--batch", 1000,
                   "--conns", 2]),
        ("log lines", ["--signal", "logs", "--points", 400 // scale, "--batch", 1000,
                       "--conns", 2]),
        # small requests, where the per-request transport cost weighs most
        ("metric samples, 50 per request", ["--signal", "metrics", "--series", 500,
                                            "--points", 120 // scale, "--batch", 50,
                                            "--conns", 2]),
    ]
    print(f"{ROUNDS} round(s) per transport, median; 2 connections, one call in flight each; "
          f"server CPU while loading; {os.cpu_count()} cores\n")
    print("| items | OTLP/HTTP protobuf, per server CPU-s | OTLP/gRPC, per server CPU-s "
          "| gRPC / HTTP |")
    print("| --- | --- | --- | --- |")
    for name, args in workloads:
        rates = {False: [], True: []}
        n = reqs = 0
        for r in range(ROUNDS):
            for grpc in ((False, True) if r % 2 == 0 else (True, False)):
                rate, n, reqs = run_once(grpc, args)
                rates[grpc].append(rate)
        h, g = statistics.median(rates[False]), statistics.median(rates[True])
        print(f"| {name} ({n:,} in {reqs} requests) | {h:,.0f} | {g:,.0f} | {g / h:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
