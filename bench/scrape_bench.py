#!/usr/bin/env python3
"""scrape_bench.py - CPU cost of scraping one 10k-series target, Skillscope vs Prometheus.

Why: issue 4 asks for the scrape cost per 10k series. Measured, never asserted.

How: a python http.server on 127.0.0.1 serves a fixed exposition of N series (100 families with
HELP/TYPE, N/100 label combinations each, realistic label lengths), gzipped when the scraper asks
for gzip (compressed once up front, so the server side costs nothing per scrape). Each scraper
runs alone with a scrape_interval of 1s for DURATION seconds after a warm-up; its CPU time (utime +
stime from /proc/<pid>/stat) over that window, minus the same scraper's idle CPU over an equally
long window without targets, divided by the number of scrapes, is the cost per scrape. Skillscope
runs with its default settings (--wal-fsync batch); Prometheus (Debian's, when installed) with a
temp TSDB dir.

Usage: bench/scrape_bench.py [--series 10000] [--duration 30] [--bin build/release/skillscope]
Prints one line per scraper: ms CPU per scrape, series per CPU second.
"""

import argparse
import gzip
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HZ = os.sysconf('SC_CLK_TCK')


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


def exposition(n):
    fams = 100
    per = max(1, n // fams)
    out = []
    for f in range(fams):
        name = 'bench_requests_%02d_total' % f
        out.append('# HELP %s Requests handled by the benchmark service, family %d.\n' % (name, f))
        out.append('# TYPE %s counter\n' % name)
        for i in range(per):
            out.append('%s{service="checkout-service",endpoint="/api/v1/items/%d",method="GET",'
                       'code="%d",pod="checkout-7d9f8c6b5-%05d"} %d\n'
                       % (name, i % 50, 200 + (i % 5), i, f * 1000 + i))
    return ''.join(out).encode()


def serve(body):
    gz = gzip.compress(body)

    class H(BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'

        def log_message(self, *a):
            pass

        def do_GET(self):
            use_gz = 'gzip' in self.headers.get('Accept-Encoding', '')
            b = gz if use_gz else body
            self.send_response(200)
            self.send_header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
            if use_gz:
                self.send_header('Content-Encoding', 'gzip')
            self.send_header('Content-Length', str(len(b)))
            self.end_headers()
            self.wfile.write(b)

    port = free_port()
    srv = ThreadingHTTPServer(('127.0.0.1', port), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, port, len(gz)


def cpu_s(pid):
    with open('/proc/%d/stat' % pid) as f:
        parts = f.read().rsplit(')', 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / HZ


def wait_http(url, timeout=20):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.1)
    return False


def run_one(kind, binary, target_port, duration, warmup, with_target, tmp):
    port = free_port()
    cfg = os.path.join(tmp, '%s-%s.yml' % (kind, with_target))
    with open(cfg, 'w') as f:
        f.write('global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n')
        if with_target:
            f.write('scrape_configs:\n  - job_name: bench\n    static_configs:\n'
                    "      - targets: ['127.0.0.1:%d']\n" % target_port)
    data = tempfile.mkdtemp(prefix='%s-data-' % kind, dir=tmp)
    if kind == 'skillscope':
        args = [binary, 'serve', '--data-dir', data, '--listen', '127.0.0.1', '--http-port',
                str(port), '--otlp-http-port', '0', '--otlp-grpc-port', '0', '--config', cfg]
        ready = 'http://127.0.0.1:%d/-/ready' % port
    else:
        args = [binary, '--config.file=' + cfg, '--storage.tsdb.path=' + data,
                '--web.listen-address=127.0.0.1:%d' % port]
        ready = 'http://127.0.0.1:%d/-/ready' % port
    log = open(os.path.join(tmp, '%s.log' % kind), 'ab')
    p = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        if not wait_http(ready):
            raise RuntimeError('%s did not get ready' % kind)
        time.sleep(warmup)
        c0, t0 = cpu_s(p.pid), time.time()
        time.sleep(duration)
        c1, t1 = cpu_s(p.pid), time.time()
        scrapes = None
        if with_target:
            q = urllib.request.quote('count_over_time(up{job="bench"}[%ds])' % int(t1 - t0))
            with urllib.request.urlopen('http://127.0.0.1:%d/api/v1/query?query=%s&time=%.3f'
                                        % (port, q, t1)) as r:
                import json
                res = json.load(r)['data']['result']
                scrapes = int(float(res[0]['value'][1])) if res else 0
        return c1 - c0, t1 - t0, scrapes
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--series', type=int, default=10000)
    ap.add_argument('--duration', type=float, default=30)
    ap.add_argument('--warmup', type=float, default=5)
    ap.add_argument('--bin', default=os.environ.get('SKILLSCOPE_BIN', './skillscope'))
    ap.add_argument('--prometheus', default=shutil.which('prometheus'))
    a = ap.parse_args()
    body = exposition(a.series)
    srv, tport, gz_len = serve(body)
    tmp = tempfile.mkdtemp(prefix='scrape-bench-')
    print('target: %d series, %d bytes (%d gzipped), scrape_interval 1s, %.0fs window'
          % (a.series, len(body), gz_len, a.duration))
    scrapers = [('skillscope', a.bin)]
    if a.prometheus:
        scrapers.append(('prometheus', a.prometheus))
    try:
        for kind, binary in scrapers:
            idle, idle_t, _ = run_one(kind, binary, tport, a.duration, a.warmup, False, tmp)
            busy, busy_t, n = run_one(kind, binary, tport, a.duration, a.warmup, True, tmp)
            net = busy - idle * busy_t / idle_t
            per = net / n * 1000 if n else float('nan')
            print('%-10s scrapes=%d cpu=%.2fs idle=%.2fs -> %.1f ms CPU per scrape of %d series '
                  '(%.0f series per CPU second)'
                  % (kind, n or 0, busy, idle, per, a.series,
                     a.series / (per / 1000) if per > 0 else float('nan')))
            sys.stdout.flush()
    finally:
        srv.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
