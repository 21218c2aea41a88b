"""suite_tail.py - the live view: GET /api/skillscope/tail and `skillscope tail`.

Why: a user wants to see what arrives as it arrives (like the collector's debug exporter), and a
watcher must never hurt the server: a killed or slow client costs neither memory nor ingest.

How: a real server; `skillscope tail` runs as a subprocess whose stdout a thread collects; OTLP/JSON
traces, logs and metrics are posted to the OTLP port and the readable lines must show up; filters
and signal selection restrict what a client sees; a client that stops reading gets a "dropped"
line instead of growing the server's memory; killing clients leaves the server serving; a server
shutdown ends the streams promptly.
"""

import json
import os
import queue
import signal
import socket
import subprocess
import threading
import time

from harness import R, Server, binary, http, register_pid


def otlp(srv, sig, obj):
    return http('POST', srv.otlp_port, '/v1/' + sig, json.dumps(obj).encode(),
                {'Content-Type': 'application/json'})


def res_attrs(service):
    return {'attributes': [{'key': 'service.name', 'value': {'stringValue': service}}]}


def send_span(srv, service, name, tid, test_id, dur_ms=412, code=1):
    now = time.time_ns()
    return otlp(srv, 'traces', {'resourceSpans': [{
        'resource': res_attrs(service),
        'scopeSpans': [{'spans': [{
            'traceId': tid, 'spanId': tid[:16], 'name': name,
            'startTimeUnixNano': str(now), 'endTimeUnixNano': str(now + dur_ms * 1000000),
            'status': {'code': code},
            'attributes': [{'key': 'test.id', 'value': {'stringValue': test_id}}]}]}]}]})


def send_log(srv, service, body, model='claude-x', n=1, pad=0):
    now = time.time_ns()
    recs = [{'timeUnixNano': str(now + i), 'body': {'stringValue': body + ('x' * pad)},
             'eventName': 'api_request',
             'attributes': [{'key': 'model', 'value': {'stringValue': model}},
                            {'key': 'cost_usd', 'value': {'doubleValue': 0.25}}]}
            for i in range(n)]
    return otlp(srv, 'logs', {'resourceLogs': [{
        'resource': res_attrs(service), 'scopeLogs': [{'logRecords': recs}]}]})


def send_metric(srv, service, value):
    now = time.time_ns()
    return otlp(srv, 'metrics', {'resourceMetrics': [{
        'resource': res_attrs(service),
        'scopeMetrics': [{'metrics': [{
            'name': 'claude_code.token.usage', 'unit': 'tokens',
            'sum': {'aggregationTemporality': 2, 'isMonotonic': True,
                    'dataPoints': [{'timeUnixNano': str(now), 'asInt': str(value),
                                    'attributes': [{'key': 'type',
                                                    'value': {'stringValue': 'input'}}]}]}}]}]}]})


class TailProc:
    """`skillscope tail ARGS` with its stdout lines collected by a thread."""

    def __init__(self, srv, args):
        self.p = subprocess.Popen([binary(), 'tail', '--server',
                                   'http://127.0.0.1:%d' % srv.http_port] + args,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        register_pid(self.p.pid)
        self.lines = queue.Queue()
        self.err = []
        threading.Thread(target=self._read, args=(self.p.stdout, self.lines.put),
                         daemon=True).start()
        threading.Thread(target=self._read, args=(self.p.stderr, self.err.append),
                         daemon=True).start()

    @staticmethod
    def _read(f, put):
        for ln in iter(f.readline, b''):
            put(ln.decode('utf-8', 'replace').rstrip('\n'))

    def wait_started(self, timeout=5):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if any('watching' in e for e in self.err):
                return True
            time.sleep(0.02)
        return False

    def collect(self, until, timeout=5):
        """Lines until `until(lines)` is true or the timeout passes."""
        got = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            try:
                got.append(self.lines.get(timeout=0.05))
            except queue.Empty:
                pass
            if until(got):
                break
        return got

    def stop(self, sig=signal.SIGINT):
        self.p.send_signal(sig)
        try:
            return self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()


def has(lines, *parts):
    return any(all(p in ln for p in parts) for ln in lines)


def run():
    srv = Server(name='tail')
    srv.start()

    # bad requests are refused with a message, not a stream
    r = http('GET', srv.http_port, '/api/skillscope/tail?signals=spans,bogus')
    R.check('tail endpoint: unknown signal is a 400 naming it',
            r.status == 400 and 'bogus' in r.text(), r)
    r = http('GET', srv.http_port, '/api/skillscope/tail?filter=novalue')
    R.check('tail endpoint: filter without = is a 400', r.status == 400 and 'key=value' in r.text(),
            r)

    t_all = TailProc(srv, [])
    t_flt = TailProc(srv, ['--filter', 'service.name=other-svc'])
    t_logs = TailProc(srv, ['--logs'])
    R.check('tail clients start', t_all.wait_started() and t_flt.wait_started() and
            t_logs.wait_started(), t_all.err + t_flt.err + t_logs.err)

    tid = '4bf92f3577b34da6a3ce929d0e0e4736'
    R.eq('span accepted', send_span(srv, 'claude-code', 'claude_code.api_request', tid,
                                    'test-42').status, 200)
    R.eq('log accepted', send_log(srv, 'claude-code', 'claude_code.api_request').status, 200)
    R.eq('metric accepted', send_metric(srv, 'claude-code', 1234).status, 200)
    R.eq('other service span accepted', send_span(srv, 'other-svc', 'other.op', 'ab' * 16,
                                                  'test-7', dur_ms=3, code=2).status, 200)

    lines = t_all.collect(lambda g: has(g, 'span', 'other.op') and has(g, 'metric') and
                          has(g, ' log '))
    R.check('span line: time, kind, service, name, duration, status, trace, attribute',
            has(lines, ' span ', 'claude-code', 'claude_code.api_request', '412ms', 'OK',
                'trace=4bf92f35', 'test.id=test-42'), lines)
    R.check('log line: stream labels, body and metadata',
            has(lines, ' log ', 'service_name="claude-code"', 'event_name="api_request"',
                'claude_code.api_request', 'model=claude-x', 'cost_usd=0.25'), lines)
    R.check('metric line: Prometheus name, labels and value',
            has(lines, ' metric ', 'claude_code_token_usage_tokens_total{', 'type="input"',
                ' 1234'), lines)
    R.check('error span shows ERROR', has(lines, 'other.op', 'ERROR', '3ms'), lines)
    R.check('lines start with a time', all(len(ln) > 12 and ln[2] == ':' and ln[8] == '.'
                                           for ln in lines), lines)

    flt = t_flt.collect(lambda g: has(g, 'other.op'), timeout=3)
    flt += t_flt.collect(lambda g: False, timeout=0.5)
    R.check('filter: the matching span is shown', has(flt, 'other.op'), flt)
    R.check('filter: nothing else is shown',
            not has(flt, 'claude-code') and not has(flt, 'metric'), flt)
    lg = t_logs.collect(lambda g: has(g, ' log '), timeout=3)
    lg += t_logs.collect(lambda g: False, timeout=0.5)
    R.check('--logs: only log lines', has(lg, ' log ') and not has(lg, ' span ') and
            not has(lg, ' metric '), lg)

    # raw NDJSON: one object per item, types and fields as documented
    t_json = TailProc(srv, ['--json', '--traces'])
    t_json.collect(lambda g: any('"start"' in ln for ln in g), timeout=5)
    send_span(srv, 'claude-code', 'json.op', 'cd' * 16, 'test-9')
    js = t_json.collect(lambda g: any('json.op' in ln for ln in g))
    objs = [json.loads(ln) for ln in js if ln.startswith('{')]
    span = [o for o in objs if o.get('name') == 'json.op']
    R.check('--json: span object with trace_id, attributes and resource',
            span and span[0]['type'] == 'span' and span[0]['trace_id'] == 'cd' * 16 and
            span[0]['attributes'].get('test.id') == 'test-9' and
            span[0]['resource'].get('service.name') == 'claude-code', objs)
    t_json.stop()

    # a killed client does not hurt the server
    t_flt.stop(signal.SIGKILL)
    t_logs.stop(signal.SIGKILL)
    time.sleep(0.3)
    R.eq('after killed clients: ingest still works',
         send_log(srv, 'claude-code', 'after-kill').status, 200)
    lines = t_all.collect(lambda g: has(g, 'after-kill'))
    R.check('after killed clients: the remaining client still sees items',
            has(lines, 'after-kill'), lines)
    R.check('server alive', srv.alive())

    check_slow_client(srv)

    # Ctrl-C ends the client cleanly
    R.eq('tail exits 0 on Ctrl-C', t_all.stop(), 0)

    # a server shutdown ends open streams at once (no 10 s drain wait)
    t_end = TailProc(srv, ['--metrics'])
    t_end.wait_started()
    t0 = time.monotonic()
    rc = srv.stop()
    took = time.monotonic() - t0
    R.check('server with an open tail stream stops promptly and cleanly',
            rc == 0 and took < 5, 'rc=%s took %.1fs' % (rc, took))
    try:
        t_end.p.wait(5)
    except subprocess.TimeoutExpired:
        pass
    R.check('tail client sees the end of the stream and exits 0',
            t_end.p.returncode == 0 and any('ended' in e for e in t_end.err),
            (t_end.p.returncode, t_end.err))
    if t_end.p.returncode is None:
        t_end.stop(signal.SIGKILL)


def flood(srv, tag):
    """40 requests of 64 log records with 16 KB bodies (about 40 MiB); returns the server's RSS
    growth in MiB."""
    rss0 = srv.rss_kib()
    for i in range(40):
        r = send_log(srv, 'flood', '%s-%d-' % (tag, i), n=64, pad=16000)
        if r.status != 200:
            R.check('flood accepted', False, r)
            break
    time.sleep(0.5)
    return (srv.rss_kib() - rss0) / 1024.0


def check_slow_client(srv):
    """A client that connects and never reads: the server drops items for it (and says how many)
    instead of queueing them all."""
    s = socket.create_connection(('127.0.0.1', srv.http_port))
    s.sendall(b'GET /api/skillscope/tail?signals=logs HTTP/1.1\r\nHost: x\r\n\r\n')
    time.sleep(0.3)
    grown = flood(srv, 'slow')
    print('     tail: server RSS grew %.1f MiB storing ~40 MiB of logs while a tail client '
          'read nothing' % grown)
    send_log(srv, 'flood', 'after-drain')  # queued or dropped too; the next one must get through
    s.settimeout(0.5)
    data = bytearray()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 20 and b'"line":"marker"' not in data:
        try:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            data += chunk
        except socket.timeout:
            send_log(srv, 'flood', 'marker')  # the stream has drained: this one fits
    s.close()
    text = data.decode('utf-8', 'replace')
    received = text.count('"line":"slow-')
    dropped = sum(int(m) for m in __import__('re').findall(r'"type":"dropped","count":(\d+)',
                                                            text))
    print('     tail: slow client received %d flood items (%.1f MiB), %d reported dropped'
          % (received, len(data) / 1048576.0, dropped))
    R.check('slow client: a "dropped" line reports what it missed', dropped > 0, text[-300:])
    R.eq('slow client: received + dropped = sent', received + dropped
         + text.count('"line":"after-drain'), 40 * 64 + 1)
    R.check('slow client: the server queued a bounded amount (< 24 MiB of ~40 MiB)',
            len(data) < 24 << 20, '%d bytes' % len(data))
    R.check('server alive after the slow client', srv.alive())
