"""harness.py - shared pieces of the integration suites: the server process, HTTP, checks.

Why: every suite starts the real ./skillscope on free loopback ports with a temporary data dir,
talks to it over sockets, and records named checks. This file holds that machinery so the suites
read as lists of behaviours.

How:
  * Server starts `skillscope serve --data-dir D --listen 127.0.0.1 --http-port P
    --otlp-http-port Q --otlp-grpc-port R`, polls GET /-/ready, and is stopped by PID (SIGTERM,
    then SIGKILL). Every PID is appended to $SKILLSCOPE_INTEG_PIDS so run.sh's trap can kill
    leftovers even if Python dies.
  * http() is a small HTTP/1.1 client on http.client that returns status, lower-cased headers and
    the body (gunzipped when the server gzipped it).
  * Checks: check()/eq() count passes and print one line per failure.
  * Reference implementations the suites compare against, written from the specs, not from the
    server: Go-style float formatting (PROM-API.md §1.2), OTel->Prometheus names
    (OTLP-NOTES.md §7), label sanitising.
"""

import decimal
import gzip
import http.client as httpclient
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

# ---- checks -----------------------------------------------------------------------------------


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.suite = '?'
        self.verbose = os.environ.get('INTEG_VERBOSE') == '1'
        self.failures = []

    def check(self, name, cond, detail=''):
        if cond:
            self.passed += 1
            if self.verbose:
                print('ok   %s: %s' % (self.suite, name), flush=True)
        else:
            self.failed += 1
            line = 'FAIL %s: %s' % (self.suite, name)
            if detail:
                line += ': ' + _clip(str(detail), 1500)
            self.failures.append(line)
            print(line, flush=True)
        return bool(cond)

    def eq(self, name, got, want):
        return self.check(name, got == want, 'got %s, want %s' % (_short(got), _short(want)))


def _short(v):
    return _clip(repr(v), 700)


def _clip(s, n):
    s = s.replace('\n', '\\n')
    return s if len(s) <= n else s[:n] + '...(%d chars)' % len(s)


R = Results()


class SuiteAbort(Exception):
    """Raised when a suite cannot go on (e.g. the server did not start)."""


# ---- server -----------------------------------------------------------------------------------

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))


def binary():
    # absolute: suites run the CLI from other working directories (a temp git repo, ...)
    return os.path.abspath(os.environ.get('SKILLSCOPE_BIN') or os.path.join(ROOT, 'skillscope'))


def free_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(('127.0.0.1', 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def register_pid(pid):
    path = os.environ.get('SKILLSCOPE_INTEG_PIDS')
    if path:
        with open(path, 'a') as f:
            f.write('%d\n' % pid)


_live_servers = []


def tmpdir(prefix):
    base = os.environ.get('SKILLSCOPE_INTEG_TMP') or None
    return tempfile.mkdtemp(prefix=prefix, dir=base)


class Server:
    def __init__(self, data_dir=None, extra_args=(), name='srv'):
        self.data_dir = data_dir or os.path.join(tmpdir('ss-' + name + '-'), 'data')
        self.extra_args = list(extra_args)
        self.name = name
        self.proc = None
        self.log_path = None
        self.http_port = self.otlp_port = self.grpc_port = None
        self.starts = 0

    def cmd(self):
        return [binary(), 'serve', '--data-dir', self.data_dir, '--listen', '127.0.0.1',
                '--http-port', str(self.http_port), '--otlp-http-port', str(self.otlp_port),
                '--otlp-grpc-port', str(self.grpc_port)] + self.extra_args

    def start(self, ready_timeout=10.0):
        """Starts the server and waits for /-/ready; returns seconds from spawn to ready.
        Raises SuiteAbort (with the log tail) when it exits or never gets ready."""
        self.http_port, self.otlp_port, self.grpc_port = free_ports(3)
        self.starts += 1
        self.log_path = os.path.join(os.path.dirname(self.data_dir),
                                     '%s-%d.log' % (self.name, self.starts))
        logf = open(self.log_path, 'wb')
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.cmd(), stdout=logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        logf.close()
        register_pid(self.proc.pid)
        _live_servers.append(self)
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise SuiteAbort('server exited with %d before ready; cmd: %s; log: %s'
                                 % (rc, ' '.join(self.cmd()), self.log_tail()))
            try:
                r = http('GET', self.http_port, '/-/ready', timeout=1.0)
                if r.status == 200:
                    return time.monotonic() - t0
            except OSError:
                pass
            if time.monotonic() - t0 > ready_timeout:
                self.kill()
                raise SuiteAbort('server not ready after %.0fs; log: %s'
                                 % (ready_timeout, self.log_tail()))
            time.sleep(0.02)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15.0):
        """SIGTERM, wait, then SIGKILL. Returns the exit code (negative = killed by signal)."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self in _live_servers:
            _live_servers.remove(self)
        self.sanitizer_report()
        return self.proc.returncode

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self in _live_servers:
            _live_servers.remove(self)
        self.sanitizer_report()

    def sanitizer_report(self):
        """Records a failed check when an ASan/UBSan/LSan build reported an error in its log."""
        if not self.log_path or getattr(self, '_reported', None) == self.log_path:
            return
        self._reported = self.log_path
        try:
            with open(self.log_path, 'rb') as f:
                text = f.read().decode('utf-8', 'replace')
        except OSError:
            return
        for marker in ('ERROR: AddressSanitizer', 'ERROR: LeakSanitizer', 'runtime error:'):
            i = text.find(marker)
            if i >= 0:
                R.check('%s: no sanitizer report in the server log' % self.name, False,
                        text[max(0, i - 200):i + 1800])
                return

    def log_tail(self, n=2000):
        try:
            with open(self.log_path, 'rb') as f:
                data = f.read()
            return data[-n:].decode('utf-8', 'replace')
        except OSError:
            return '(no log)'

    def is_asan(self):
        try:
            with open('/proc/%d/maps' % self.pid) as f:
                return 'libasan' in f.read()
        except OSError:
            return False

    def rss_kib(self, field='VmRSS'):
        with open('/proc/%d/status' % self.pid) as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
        return None


def kill_all_servers():
    for s in list(_live_servers):
        s.kill()


# ---- HTTP -------------------------------------------------------------------------------------


class Resp:
    def __init__(self, status, headers, body, raw_body):
        self.status = status
        self.headers = headers
        self.body = body
        self.raw_body = raw_body

    def header(self, name, default=''):
        return self.headers.get(name.lower(), default)

    def ctype(self):
        return self.header('content-type').split(';')[0].strip().lower()

    def json(self):
        return json.loads(self.body.decode('utf-8'))

    def text(self):
        return self.body.decode('utf-8', 'replace')

    def __repr__(self):
        return 'HTTP %d %s %s' % (self.status, self.header('content-type'),
                                  _clip(self.body.decode('utf-8', 'replace'), 300))


def http(method, port, path, body=None, headers=None, timeout=30.0):
    conn = httpclient.HTTPConnection('127.0.0.1', port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        raw = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        body_out = raw
        if hdrs.get('content-encoding', '').lower() == 'gzip' and raw:
            body_out = gzip.decompress(raw)
        return Resp(r.status, hdrs, body_out, raw)
    finally:
        conn.close()


def qs(params):
    """params: list of (k, v) pairs (repeat keys like match[] freely)."""
    return urllib.parse.urlencode(params, quote_via=urllib.parse.quote)


def get_json(port, path, params=()):
    url = path + ('?' + qs(params) if params else '')
    r = http('GET', port, url)
    try:
        return r, r.json()
    except ValueError:
        return r, None


# ---- reference implementations ------------------------------------------------------------------


def go_float(f):
    """strconv.FormatFloat(f, 'f' or 'e' as Prometheus picks, -1, 64)."""
    if math.isnan(f):
        return 'NaN'
    if math.isinf(f):
        return '+Inf' if f > 0 else '-Inf'
    if f == 0:
        return '-0' if math.copysign(1, f) < 0 else '0'
    d = decimal.Decimal(repr(f))
    sign, digits, exp = d.as_tuple()
    digits = list(digits)
    while len(digits) > 1 and digits[-1] == 0:
        digits.pop()
        exp += 1
    s = '-' if sign else ''
    ds = ''.join(str(x) for x in digits)
    a = abs(f)
    if a < 1e-6 or a >= 1e21:
        e = exp + len(ds) - 1
        mant = ds[0] + ('.' + ds[1:] if len(ds) > 1 else '')
        return '%s%se%s%02d' % (s, mant, '+' if e >= 0 else '-', abs(e))
    if exp >= 0:
        return s + ds + '0' * exp
    point = len(ds) + exp
    if point > 0:
        return s + ds[:point] + '.' + ds[point:]
    return s + '0.' + '0' * (-point) + ds


UNIT_MAP = {'d': 'days', 'h': 'hours', 'min': 'minutes', 's': 'seconds', 'ms': 'milliseconds',
            'us': 'microseconds', 'ns': 'nanoseconds', 'By': 'bytes', 'KiBy': 'kibibytes',
            'MiBy': 'mebibytes', 'GiBy': 'gibibytes', 'TiBy': 'tibibytes', 'KBy': 'kilobytes',
            'MBy': 'megabytes', 'GBy': 'gigabytes', 'TBy': 'terabytes', 'm': 'meters',
            'V': 'volts', 'A': 'amperes', 'J': 'joules', 'W': 'watts', 'g': 'grams',
            'Cel': 'celsius', 'Hz': 'hertz', '1': '', '%': 'percent'}
PER_UNIT_MAP = {'s': 'second', 'm': 'minute', 'h': 'hour', 'd': 'day', 'w': 'week', 'mo': 'month',
                'y': 'year'}


def _clean_unit(u):
    return re.sub(r'[^a-zA-Z0-9]+', '_', u).strip('_')


def prom_metric_name(name, unit, kind, monotonic=False):
    """OTLP-NOTES.md §7 (UnderscoreEscapingWithSuffixes). kind: gauge|sum|histogram|summary."""
    tokens = [t for t in re.split(r'[^a-zA-Z0-9:]+', name) if t]
    unit = unit or ''
    main, per = (unit.split('/', 1) + [''])[:2] if '/' in unit else (unit, '')
    main_s = '' if ('{' in main or '}' in main) else _clean_unit(UNIT_MAP.get(main, main))
    per_s = '' if ('{' in per or '}' in per) else _clean_unit(PER_UNIT_MAP.get(per, per))
    if main_s and main_s not in tokens:
        tokens.append(main_s)
    if per_s and per_s not in tokens:
        tokens.append('per_' + per_s)
    if kind == 'sum' and monotonic:
        tokens = [t for t in tokens if t != 'total'] + ['total']
    if unit == '1' and kind == 'gauge':
        tokens = [t for t in tokens if t != 'ratio'] + ['ratio']
    out = '_'.join(tokens)
    if out and out[0].isdigit():
        out = '_' + out
    return out


def prom_label_name(key):
    out = re.sub(r'[^a-zA-Z0-9_]', '_', key)
    if out and out[0].isdigit():
        out = 'key_' + out
    elif out.startswith('_') and not out.startswith('__'):
        out = 'key' + out
    return out


def any_value_str(v):
    """AnyValue as a label value / log line (collector AsString) for the simple types used here."""
    if 'stringValue' in v:
        return v['stringValue']
    if 'intValue' in v:
        return str(int(v['intValue']))
    if 'boolValue' in v:
        return 'true' if v['boolValue'] else 'false'
    if 'doubleValue' in v:
        return go_float(float(v['doubleValue']))
    raise ValueError('unsupported AnyValue in test data: %r' % (v,))


def attrs_to_labels(attrs):
    return {prom_label_name(a['key']): any_value_str(a['value']) for a in attrs}


def selector(name, labels):
    parts = ['%s="%s"' % (k, v.replace('\\', '\\\\').replace('"', '\\"'))
             for k, v in sorted(labels.items())]
    return '%s{%s}' % (name, ','.join(parts))


def prom_ts_ms(t):
    """A Prometheus JSON sample timestamp (float seconds) as int ms."""
    return int(round(float(t) * 1000))


def fmt_ts(ms):
    """ms -> the seconds string used in query parameters."""
    return '%d.%03d' % (ms // 1000, ms % 1000)


def prom_range_samples(port, sel, time_ms, range_s):
    """Instant query of sel[range] at time_ms; returns (resp, json, [(labels, [(ms, 'v'), ...])])."""
    r, j = get_json(port, '/api/v1/query',
                    [('query', '%s[%ds]' % (sel, range_s)), ('time', fmt_ts(time_ms))])
    series = []
    if j and j.get('status') == 'success' and j['data'].get('resultType') == 'matrix':
        for s in j['data']['result']:
            series.append((s['metric'], [(prom_ts_ms(t), v) for t, v in s['values']]))
    return r, j, series


def loki_entries(port, query, start_ns, end_ns, limit=5000, direction='forward', extra=()):
    """Loki query_range for a log selector; returns (resp, json, [(labels, ts_ns, line)]) in the
    order the server sent them (streams flattened)."""
    params = [('query', query), ('start', str(start_ns)), ('end', str(end_ns)),
              ('limit', str(limit)), ('direction', direction)] + list(extra)
    r, j = get_json(port, '/loki/api/v1/query_range', params)
    out = []
    if j and j.get('status') == 'success' and j['data'].get('resultType') == 'streams':
        for s in j['data']['result']:
            for v in s['values']:
                out.append((s['stream'], int(v[0]), v[1]))
    return r, j, out


def loki_all_entries(port, query, start_ns, end_ns, page=1000):
    """Pages forward through query_range until everything in [start, end) is read."""
    allv = []
    cur = start_ns
    while True:
        r, j, ents = loki_entries(port, query, cur, end_ns, limit=page, direction='forward')
        if r.status != 200 or j is None:
            return r, j, None
        ents.sort(key=lambda e: e[1])
        if len(ents) < page:
            allv.extend(ents)
            return r, j, allv
        last = ents[-1][1]
        # keep everything before the last timestamp; re-read from it (entries with equal ts)
        allv.extend(e for e in ents if e[1] < last)
        if last == cur:
            return r, j, None  # more than `page` entries share one timestamp: cannot page
        cur = last


def now_ms():
    return int(time.time() * 1000)


def gz(b):
    return gzip.compress(b)


def eprint(*a):
    print(*a, file=sys.stderr, flush=True)
