"""suite_scrape.py - Prometheus scraping: exposition served here, read back through the APIs.

Why: Skillscope replaces Prometheus' scraper, so a target configured in `scrape_configs` must end
up queryable exactly as exposed, with up/scrape_* series, staleness, relabelling and honor_labels
behaving as in Prometheus, and bad targets reported (with the exposition line number) without
hurting the server.

How: a threaded http.server on 127.0.0.1 serves exposition texts this suite controls, per path
(status, Content-Type, gzip, delay). The server starts with a YAML config listing one job per
behaviour (1 s interval) and the suite polls /api/v1/targets until each target has been scraped
after a change, then checks /api/v1/query, /api/v1/metadata and /api/v1/targets. Expected values
are the ones written into the exposition here.
"""

import datetime
import gzip
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import R, Server, free_ports, get_json, http, tmpdir

TEXT = 'text/plain; version=0.0.4; charset=utf-8'
OM = 'application/openmetrics-text; version=1.0.0; charset=utf-8'
PROM_ACCEPT = ('application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,'
               '*/*;q=0.1')


class Targets:
    """What the exposition server answers, per path; changed by the suite while it runs."""

    def __init__(self):
        self.lock = threading.Lock()
        self.routes = {}
        self.requests = []  # (path, headers dict)

    def set(self, path, body, ctype=TEXT, status=200, gz=False, delay=0.0):
        with self.lock:
            self.routes[path] = (status, ctype, body.encode() if isinstance(body, str) else body,
                                 gz, delay)

    def get(self, path):
        with self.lock:
            return self.routes.get(path)


def make_handler(targets):
    class H(BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'

        def log_message(self, *a):
            pass

        def do_GET(self):
            path = self.path.split('?')[0]
            with targets.lock:
                targets.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            route = targets.get(path)
            if route is None:
                self.send_response(404)
                self.send_header('Content-Length', '0')
                self.end_headers()
                return
            status, ctype, body, gz, delay = route
            if delay:
                time.sleep(delay)
            if gz:
                body = gzip.compress(body)
            try:
                self.send_response(status)
                self.send_header('Content-Type', ctype)
                if gz:
                    self.send_header('Content-Encoding', 'gzip')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

    return H


def config(port, dead_port):
    t = '127.0.0.1:%d' % port
    return """
global:
  scrape_interval: 1s
  scrape_timeout: 800ms
scrape_configs:
  - job_name: values
    metrics_path: /values
    static_configs: [{targets: ['%(t)s'], labels: {team: core}}]
  - job_name: om
    metrics_path: /om
    static_configs: [{targets: ['%(t)s']}]
  - job_name: gz
    metrics_path: /gz
    static_configs: [{targets: ['%(t)s']}]
  - job_name: bad
    metrics_path: /bad
    static_configs: [{targets: ['%(t)s']}]
  - job_name: vanish
    metrics_path: /vanish
    static_configs: [{targets: ['%(t)s']}]
  - job_name: down
    static_configs: [{targets: ['127.0.0.1:%(dead)d']}]
  - job_name: relabel
    metrics_path: /relabel
    params: {module: [m1]}
    static_configs: [{targets: ['%(t)s', 'drop.example:9']}]
    relabel_configs:
      - source_labels: [__address__]
        regex: 'drop\\..*'
        action: drop
      - source_labels: [__address__]
        regex: '([^:]+):(\\d+)'
        target_label: host
        replacement: 'h-$1'
      - source_labels: [__param_module]
        target_label: module
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: 'drop_me_.*'
        action: drop
      - source_labels: [__name__, kind]
        separator: '/'
        regex: 'renamed_src/(.*)'
        target_label: kind
        replacement: 'was-$1'
      - regex: 'tmp_.*'
        action: labeldrop
  - job_name: conflict
    metrics_path: /labels
    static_configs: [{targets: ['%(t)s']}]
  - job_name: honor
    metrics_path: /labels
    honor_labels: true
    static_configs: [{targets: ['%(t)s']}]
  - job_name: limited
    metrics_path: /limited
    sample_limit: 2
    static_configs: [{targets: ['%(t)s']}]
  - job_name: slow
    metrics_path: /slow
    scrape_timeout: 300ms
    static_configs: [{targets: ['%(t)s']}]
  - job_name: big
    metrics_path: /big
    body_size_limit: 1KiB
    static_configs: [{targets: ['%(t)s']}]
  - job_name: flaky
    metrics_path: /flaky
    static_configs: [{targets: ['%(t)s']}]
  - job_name: ts
    metrics_path: /ts
    static_configs: [{targets: ['%(t)s']}]
""" % {'t': t, 'dead': dead_port}


VALUES = """# HELP demo_requests_total Requests served.
# TYPE demo_requests_total counter
demo_requests_total{path="/a",code="200"} 1027
demo_requests_total{path="/b",code="500"} 3
# HELP demo_temperature_celsius Temperature with an "escaped" \\\\ help.
# TYPE demo_temperature_celsius gauge
demo_temperature_celsius{room="a\\\\b \\"q\\" \\nnl"} -12.5
demo_nan NaN
demo_inf +Inf
demo_neginf -Inf
# TYPE demo_latency_seconds histogram
demo_latency_seconds_bucket{le="0.1"} 5
demo_latency_seconds_bucket{le="+Inf"} 7
demo_latency_seconds_sum 1.25
demo_latency_seconds_count 7
# TYPE demo_quantiles summary
demo_quantiles{quantile="0.99"} 0.5
demo_quantiles_sum 10
demo_quantiles_count 20
"""

OM_BODY = """# TYPE om_jobs counter
# UNIT om_jobs_seconds seconds
# HELP om_jobs Jobs done.
om_jobs_total{kind="x"} 42 # {trace_id="abc"} 1.0 1700000000.5
om_jobs_created{kind="x"} 1700000000
# TYPE om_state stateset
om_state{om_state="a"} 1
om_state{om_state="b"} 0
# TYPE om_info info
om_info_info{version="1.2"} 1
# EOF
"""


def wait_scraped(port, pool, after_ms, timeout=8.0, health=None):
    """Polls /api/v1/targets until pool's first target has a lastScrape after after_ms (and the
    given health); returns the target dict (or the last one seen)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        _, j = get_json(port, '/api/v1/targets')
        for t in (j or {}).get('data', {}).get('activeTargets', []):
            if t['scrapePool'] != pool:
                continue
            last = t
            ls = t['lastScrape']
            if ls.startswith('0001'):
                continue
            ms = iso_ms(ls)
            if ms > after_ms and (health is None or t['health'] == health):
                return t
        time.sleep(0.1)
    return last


def iso_ms(s):
    """'2026-11-22T03:06:34.311Z' -> ms since the epoch."""
    s = s.rstrip('Z')
    if '.' in s:
        base, frac = s.split('.')
        frac = (frac + '000')[:3]
    else:
        base, frac = s, '000'
    dt = datetime.datetime.strptime(base, '%Y-%m-%dT%H:%M:%S').replace(
        tzinfo=datetime.timezone.utc)
    return int(dt.timestamp()) * 1000 + int(frac)


def now_ms():
    return int(time.time() * 1000)


def query(port, q):
    _, j = get_json(port, '/api/v1/query', [('query', q)])
    if not j or j.get('status') != 'success':
        return None
    return j['data']['result']


def one_value(port, q):
    res = query(port, q)
    if not res or len(res) != 1:
        return None
    return res[0]['value'][1]


def run():
    targets = Targets()
    port, dead = free_ports(2)
    srv_http = ThreadingHTTPServer(('127.0.0.1', port), make_handler(targets))
    th = threading.Thread(target=srv_http.serve_forever, daemon=True)
    th.start()
    try:
        _run(targets, port, dead)
    finally:
        srv_http.shutdown()
        srv_http.server_close()


def _run(targets, port, dead):
    targets.set('/values', VALUES)
    targets.set('/om', OM_BODY, ctype=OM)
    targets.set('/gz', 'gz_metric{a="1"} 7\n' * 1 + ''.join(
        'gz_bulk{i="%d"} %d\n' % (i, i) for i in range(300)), gz=True)
    targets.set('/bad', 'ok_metric 1\nok_metric2 2\nbroken{a="1" 5\n')
    targets.set('/vanish', 'v_keep 1\nv_gone 2\n')
    targets.set('/relabel', 'kept_metric{tmp_x="1",stay="s"} 1\ndrop_me_now 2\n'
                'renamed_src{kind="orig"} 3\n')
    targets.set('/labels', 'lbl_metric{job="exposed",instance="exp-inst",exported_job="pre"} 5\n')
    targets.set('/limited', 'l1 1\nl2 2\nl3 3\n')
    targets.set('/slow', 'slow_metric 1\n', delay=1.5)
    targets.set('/big', 'big_metric{pad="%s"} 1\n' % ('x' * 4000))
    targets.set('/flaky', 'flaky_metric 1\n')
    ts_exposed = (now_ms() // 1000 - 30) * 1000
    targets.set('/ts', 'ts_metric 5 %d\nts_plain 6\n' % ts_exposed)

    d = tmpdir('ss-scrape-')
    cfg_path = os.path.join(d, 'scrape.yaml')
    with open(cfg_path, 'w') as f:
        f.write(config(port, dead))
    srv = Server(extra_args=['--config', cfg_path], name='scrape')
    srv.start()
    p = srv.http_port
    t0 = now_ms()

    # ---- values as exposed ----
    t = wait_scraped(p, 'values', t0, health='up')
    R.check('values target up', t and t['health'] == 'up', t)
    R.eq('counter value', one_value(p, 'demo_requests_total{path="/a",code="200"}'), '1027')
    res = query(p, 'demo_requests_total{path="/a"}')
    R.eq('target labels attached',
         res and res[0]['metric'],
         {'__name__': 'demo_requests_total', 'path': '/a', 'code': '200', 'job': 'values',
          'instance': '127.0.0.1:%d' % port, 'team': 'core'})
    R.eq('escaped label value read back',
         [r['metric'].get('room') for r in query(p, 'demo_temperature_celsius') or []],
         ['a\\b "q" \nnl'])
    R.eq('gauge value', one_value(p, 'demo_temperature_celsius'), '-12.5')
    R.eq('NaN', one_value(p, 'demo_nan'), 'NaN')
    R.eq('+Inf', one_value(p, 'demo_inf'), '+Inf')
    R.eq('-Inf', one_value(p, 'demo_neginf'), '-Inf')
    R.eq('histogram bucket', one_value(p, 'demo_latency_seconds_bucket{le="+Inf"}'), '7')
    R.eq('summary quantile', one_value(p, 'demo_quantiles{quantile="0.99"}'), '0.5')
    R.eq('up', one_value(p, 'up{job="values"}'), '1')
    R.eq('scrape_samples_scraped', one_value(p, 'scrape_samples_scraped{job="values"}'), '13')
    R.eq('scrape_samples_post_metric_relabeling',
         one_value(p, 'scrape_samples_post_metric_relabeling{job="values"}'), '13')
    dur = one_value(p, 'scrape_duration_seconds{job="values"}')
    R.check('scrape_duration_seconds is a small positive number',
            dur is not None and 0 < float(dur) < 1, dur)
    R.check('scrape_series_added present',
            one_value(p, 'scrape_series_added{job="values"}') is not None)
    R.eq('sum over the counter series', one_value(p, 'sum(demo_requests_total)'), '1030')
    _, md = get_json(p, '/api/v1/metadata')
    md = (md or {}).get('data', {})
    R.eq('metadata counter', md.get('demo_requests_total'),
         [{'type': 'counter', 'help': 'Requests served.', 'unit': ''}])
    R.eq('metadata help unescaped', md.get('demo_temperature_celsius'),
         [{'type': 'gauge', 'help': 'Temperature with an "escaped" \\ help.', 'unit': ''}])
    R.eq('metadata histogram', (md.get('demo_latency_seconds') or [{}])[0].get('type'),
         'histogram')
    R.eq('metadata summary', (md.get('demo_quantiles') or [{}])[0].get('type'), 'summary')

    # request shape: Prometheus' Accept header, gzip, timeout header
    with targets.lock:
        reqs = [h for path, h in targets.requests if path == '/values']
    R.check('scrape requests arrived', reqs)
    if reqs:
        R.eq('Accept header as Prometheus sends it', reqs[-1].get('accept'), PROM_ACCEPT)
        R.eq('Accept-Encoding gzip', reqs[-1].get('accept-encoding'), 'gzip')
        R.eq('scrape timeout header', reqs[-1].get('x-prometheus-scrape-timeout-seconds'), '0.8')

    # ---- OpenMetrics ----
    t = wait_scraped(p, 'om', t0, health='up')
    R.check('OpenMetrics target up', t and t['health'] == 'up', t)
    R.eq('OM counter', one_value(p, 'om_jobs_total{kind="x"}'), '42')
    R.eq('OM created', one_value(p, 'om_jobs_created'), '1700000000')
    R.eq('OM stateset', sorted(r['metric']['om_state'] + '=' + r['value'][1]
                               for r in query(p, 'om_state') or []), ['a=1', 'b=0'])
    R.eq('OM info', one_value(p, 'om_info_info{version="1.2"}'), '1')
    _, md = get_json(p, '/api/v1/metadata', [('metric', 'om_jobs')])
    R.eq('OM metadata (family name)', (md or {}).get('data'),
         {'om_jobs': [{'type': 'counter', 'help': 'Jobs done.', 'unit': ''}]})
    _, md = get_json(p, '/api/v1/metadata', [('metric', 'om_state')])
    R.eq('OM stateset metadata', (md or {}).get('data', {}).get('om_state', [{}])[0].get('type'),
         'stateset')
    _, tm = get_json(p, '/api/v1/targets/metadata',
                     [('match_target', '{job="om"}'), ('metric', 'om_jobs')])
    R.eq('targets/metadata', (tm or {}).get('data'),
         [{'target': {'instance': '127.0.0.1:%d' % port, 'job': 'om'}, 'metric': 'om_jobs',
           'type': 'counter', 'help': 'Jobs done.', 'unit': ''}])

    # ---- gzip ----
    t = wait_scraped(p, 'gz', t0, health='up')
    R.check('gzip target up', t and t['health'] == 'up', t)
    R.eq('gzip values', one_value(p, 'gz_metric'), '7')
    R.eq('gzip bulk count', one_value(p, 'count(gz_bulk)'), '300')
    R.eq('gzip bulk sum', one_value(p, 'sum(gz_bulk)'), str(sum(range(300))))

    # ---- malformed exposition ----
    t = wait_scraped(p, 'bad', t0)
    R.check('malformed exposition: target down', t and t['health'] == 'down', t)
    R.check('lastError names the line', t and t['lastError'].startswith('line 3: '), t)
    R.eq('malformed: up 0', one_value(p, 'up{job="bad"}'), '0')
    R.eq('malformed: nothing of the scrape stored', query(p, 'ok_metric'), [])
    R.eq('server keeps serving', http('GET', p, '/-/ready').status, 200)

    # ---- target down ----
    t = wait_scraped(p, 'down', t0)
    R.check('dead port: health down', t and t['health'] == 'down', t)
    R.check('dead port: connection error in lastError',
            t and 'connect' in t['lastError'] and 'refused' in t['lastError'].lower(), t)
    R.eq('dead port: up 0', one_value(p, 'up{job="down"}'), '0')

    # ---- timeouts and size limits ----
    t = wait_scraped(p, 'slow', t0)
    R.check('slow target times out', t and t['health'] == 'down' and 'timed out' in t['lastError'],
            t)
    t = wait_scraped(p, 'big', t0)
    R.check('body_size_limit enforced',
            t and t['health'] == 'down' and 'exceeds 1024 bytes' in t['lastError'], t)

    # ---- sample_limit ----
    t = wait_scraped(p, 'limited', t0)
    R.check('sample_limit: down with the reason',
            t and t['health'] == 'down' and 'sample limit exceeded' in t['lastError'], t)
    R.eq('sample_limit: nothing stored', query(p, 'l1'), [])

    # ---- relabelling ----
    t = wait_scraped(p, 'relabel', t0, health='up')
    R.check('relabel target up', t and t['health'] == 'up', t)
    with targets.lock:
        rq = [path for path, h in targets.requests if path.startswith('/relabel')]
    R.check('params sent in the query string', rq and rq[-1] == '/relabel?module=m1', rq[-3:])
    if t:
        R.eq('relabel target labels', t['labels'],
             {'instance': '127.0.0.1:%d' % port, 'job': 'relabel', 'host': 'h-127.0.0.1',
              'module': 'm1'})
        R.eq('scrapeUrl with params', t['scrapeUrl'], 'http://127.0.0.1:%d/relabel?module=m1' % port)
    _, tj = get_json(p, '/api/v1/targets', [('state', 'dropped')])
    dropped = [x['discoveredLabels'].get('__address__')
               for x in (tj or {}).get('data', {}).get('droppedTargets', [])]
    R.eq('dropped target listed', dropped, ['drop.example:9'])
    R.eq('state=dropped: no active', (tj or {}).get('data', {}).get('activeTargets'), [])
    res = query(p, 'kept_metric')
    R.eq('metric relabel: labeldrop and target labels', res and res[0]['metric'],
         {'__name__': 'kept_metric', 'stay': 's', 'job': 'relabel', 'host': 'h-127.0.0.1',
          'module': 'm1', 'instance': '127.0.0.1:%d' % port})
    R.eq('metric relabel: drop', query(p, '{__name__=~"drop_me_.*"}'), [])
    R.eq('metric relabel: replace with joined sources',
         [r['metric'].get('kind') for r in query(p, 'renamed_src') or []], ['was-orig'])
    R.eq('post_metric_relabeling counts kept samples',
         one_value(p, 'scrape_samples_post_metric_relabeling{job="relabel"}'), '2')
    R.eq('samples_scraped counts all', one_value(p, 'scrape_samples_scraped{job="relabel"}'), '3')

    # ---- honor_labels ----
    wait_scraped(p, 'conflict', t0, health='up')
    wait_scraped(p, 'honor', t0, health='up')
    res = query(p, 'lbl_metric{job="conflict"}')
    R.eq('honor_labels false: exported_ prefix', res and res[0]['metric'],
         {'__name__': 'lbl_metric', 'job': 'conflict', 'instance': '127.0.0.1:%d' % port,
          'exported_job': 'pre', 'exported_exported_job': 'exposed',
          'exported_instance': 'exp-inst'})
    res = query(p, 'lbl_metric{job="exposed"}')
    R.eq('honor_labels true: exposed labels win', res and res[0]['metric'],
         {'__name__': 'lbl_metric', 'job': 'exposed', 'instance': 'exp-inst',
          'exported_job': 'pre'})
    R.eq('honor_labels true: up keeps the target labels', one_value(p, 'up{job="honor"}'), '1')

    # ---- explicit timestamps ----
    wait_scraped(p, 'ts', t0, health='up')
    r, j = get_json(p, '/api/v1/query', [('query', 'timestamp(ts_metric)')])
    R.eq('exposed timestamp honoured',
         j and [s['value'][1] for s in j['data']['result']], [str(ts_exposed // 1000)])
    R.eq('sample without timestamp at scrape time', one_value(p, 'ts_plain'), '6')

    # ---- staleness: a series that disappears ----
    t = wait_scraped(p, 'vanish', t0, health='up')
    R.eq('vanish: both present', one_value(p, 'count({__name__=~"v_.*"})'), '2')
    before_change = iso_ms(t['lastScrape']) if t else now_ms()
    changed = now_ms()
    targets.set('/vanish', 'v_keep 1\n')
    t = wait_scraped(p, 'vanish', changed + 50, health='up')
    time.sleep(0.05)
    R.eq('vanished series is stale: query returns nothing', query(p, 'v_gone'), [])
    R.eq('remaining series still there', one_value(p, 'v_keep'), '1')
    r, j = get_json(p, '/api/v1/query', [('query', 'v_gone'), ('time', '%.3f' % (before_change / 1000))])
    R.eq('before the change it was there', j and len(j['data']['result']), 1)

    # ---- a target going down: up 0 and all its series stale ----
    R.eq('flaky up', one_value(p, 'flaky_metric'), '1')
    changed = now_ms()
    targets.set('/flaky', 'oops', status=500)
    t = wait_scraped(p, 'flaky', changed + 50, health='down')
    R.check('HTTP 500: down with the status',
            t and t['health'] == 'down' and 'HTTP status 500' in t['lastError'], t)
    time.sleep(0.05)
    R.eq('failed target: up 0', one_value(p, 'up{job="flaky"}'), '0')
    R.eq('failed target: its series are stale', query(p, 'flaky_metric'), [])
    targets.set('/flaky', 'flaky_metric 2\n')
    t = wait_scraped(p, 'flaky', now_ms(), health='up')
    R.eq('recovered target: value back', one_value(p, 'flaky_metric'), '2')

    # ---- the targets document shape ----
    _, tj = get_json(p, '/api/v1/targets')
    act = (tj or {}).get('data', {}).get('activeTargets', [])
    R.eq('active target count', len(act), 14)
    keys = sorted(act[0].keys()) if act else []
    R.eq('target keys as Prometheus', keys,
         sorted(['discoveredLabels', 'labels', 'scrapePool', 'scrapeUrl', 'globalUrl',
                 'lastError', 'lastScrape', 'lastScrapeDuration', 'health', 'scrapeInterval',
                 'scrapeTimeout']))
    R.eq('pools sorted', [a['scrapePool'] for a in act], sorted(a['scrapePool'] for a in act))
    v = [a for a in act if a['scrapePool'] == 'values']
    if v:
        R.eq('interval/timeout strings', (v[0]['scrapeInterval'], v[0]['scrapeTimeout']),
             ('1s', '800ms'))
    R.eq('scrapePool filter', [a['scrapePool'] for a in
                               get_json(p, '/api/v1/targets', [('scrapePool', 'gz')])[1]['data']
                               ['activeTargets']], ['gz'])

    # ---- Skillscope's own /metrics counts scrapes ----
    m = http('GET', p, '/metrics').text()
    def counter(name):
        mm = re.search(r'^' + re.escape(name) + r' (\S+)$', m, re.M)
        return float(mm.group(1)) if mm else None
    ok_n = counter('skillscope_scrapes_total{result="success"}')
    fail_n = counter('skillscope_scrapes_total{result="failure"}')
    R.check('own metrics: successful scrapes counted', ok_n is not None and ok_n >= 10, ok_n)
    R.check('own metrics: failed scrapes counted', fail_n is not None and fail_n >= 6, fail_n)
    R.check('own metrics: scraped samples counted',
            (counter('skillscope_scrape_samples_total') or 0) >= 13 + 300, m[:200])

    # ---- stopping: every scraped series becomes stale ----
    before_stop = now_ms() - 200
    code = srv.stop()
    R.eq('clean exit', code, 0)
    srv2 = Server(data_dir=srv.data_dir, name='scrape-after')
    srv2.start()
    r, j = get_json(srv2.http_port, '/api/v1/query', [('query', 'count(demo_requests_total)')])
    R.eq('after a stop the scraped series are stale', j and j['data']['result'], [])
    r, j = get_json(srv2.http_port, '/api/v1/query',
                    [('query', 'count(demo_requests_total)'),
                     ('time', '%.3f' % (before_stop / 1000))])
    R.check('and were there before the stop',
            j and j['data']['result'] and j['data']['result'][0]['value'][1] == '2', j)
    srv2.stop()

    # ---- config errors stop the start with file:line ----
    bad = os.path.join(d, 'bad.yaml')
    with open(bad, 'w') as f:
        f.write('scrape_configs:\n  - job_name: x\n    scheme: https\n')
    srv3 = Server(extra_args=['--config', bad], name='scrape-badcfg')
    try:
        srv3.start(ready_timeout=5)
        R.check('https config refused', False, 'server started')
        srv3.stop()
    except Exception as e:  # SuiteAbort with the log
        R.check('https config refused with file:line',
                'bad.yaml:3: scrape_configs[0].scheme: https is not supported' in str(e), str(e))
