"""suite_grafana_prom.py - the requests Grafana's Prometheus data source sends get the answers it
expects (issue 3: "Grafana's Prometheus data source must work unchanged").

Why: users point an unmodified Grafana at Skillscope. Grafana does not only run queries: "Save &
test" runs `1+1` at time 4 and reads buildinfo (a `features` key there makes it take the server
for Mimir), panels POST form-encoded queries and retry as GET on 400/405, template variables and
the label browser call labels / label values / series with match[] and start/end, autocomplete
reads metadata, and the exemplar toggle probes query_exemplars with start/end in milliseconds.
Each shape below is the one PROM-API.md §0-§2 documents for Prometheus.

How: one server; a counter with two jobs and a gauge are pushed over OTLP/HTTP JSON (so the
metadata has a type), then every call is made the way Grafana makes it (GET and, where Grafana
uses it, POST with an application/x-www-form-urlencoded body) and the JSON is checked field by
field, including values computed from the pushed points.
"""

import json
import re

from harness import R, Server, http, now_ms, prom_metric_name, qs

FORM = {'Content-Type': 'application/x-www-form-urlencoded'}


def kv(key, v):
    return {'key': key, 'value': {'stringValue': v}}


def push(srv, metrics, service):
    req = {'resourceMetrics': [{'resource': {'attributes': [kv('service.name', service)]},
                                'scopeMetrics': [{'metrics': metrics}]}]}
    r = http('POST', srv.otlp_port, '/v1/metrics', json.dumps(req).encode(),
             {'Content-Type': 'application/json'})
    R.check('push %s -> 200' % service, r.status == 200, r)


def counter(name, points, attrs):
    dps = [{'timeUnixNano': str(ms * 10**6), 'asDouble': v,
            'attributes': [kv(k, v2) for k, v2 in attrs]} for ms, v in points]
    return {'name': name, 'description': 'Requests served.', 'unit': '1',
            'sum': {'aggregationTemporality': 2, 'isMonotonic': True, 'dataPoints': dps}}


def gauge(name, points):
    dps = [{'timeUnixNano': str(ms * 10**6), 'asDouble': v} for ms, v in points]
    return {'name': name, 'description': 'Queue depth.', 'gauge': {'dataPoints': dps}}


def get(srv, path, params):
    r = http('GET', srv.http_port, path + ('?' + qs(params) if params else ''))
    return r, _json(r)


def post(srv, path, params, url_params=()):
    url = path + ('?' + qs(url_params) if url_params else '')
    r = http('POST', srv.http_port, url, qs(params).encode(), FORM)
    return r, _json(r)


def _json(r):
    try:
        return r.json()
    except ValueError:
        return None


def ok(tag, r, j):
    """A success envelope: HTTP 200, JSON content type, status success."""
    good = R.check(tag + ': HTTP 200', r.status == 200, r)
    R.check(tag + ': JSON content type', 'application/json' in r.ctype(), r.ctype())
    return good and R.eq(tag + ': status success', (j or {}).get('status'), 'success')


def run():
    srv = Server(name='grafana')
    srv.start()
    step_ms = 15000
    now = now_ms() // step_ms * step_ms
    t0 = now - 40 * step_ms
    ts = [t0 + i * step_ms for i in range(41)]
    name = prom_metric_name('grafana.requests', '1', 'sum', monotonic=True)
    gname = prom_metric_name('grafana.queue', '', 'gauge')
    # job "api": +3 per step; job "web": +1 per step; a gauge of constant 7 under job "api".
    push(srv, [counter('grafana.requests', [(t, 3.0 * i) for i, t in enumerate(ts)],
                       [('route', '/a')]),
               gauge('grafana.queue', [(t, 7.0) for t in ts])], 'api')
    push(srv, [counter('grafana.requests', [(t, 1.0 * i) for i, t in enumerate(ts)],
                       [('route', '/b')])], 'web')
    start_s, end_s = ts[0] // 1000, ts[-1] // 1000

    # ---- Save & test: instant 1+1 at time 4 (GET and POST), then buildinfo ----
    for how in ('GET', 'POST'):
        params = [('query', '1+1'), ('time', '4')]
        r, j = get(srv, '/api/v1/query', params) if how == 'GET' else \
            post(srv, '/api/v1/query', params)
        if ok('health check 1+1 [%s]' % how, r, j):
            R.eq('health check [%s]: scalar' % how, j['data'].get('resultType'), 'scalar')
            R.eq('health check [%s]: [4, "2"]' % how, j['data'].get('result'), [4, '2'])
    r, j = get(srv, '/api/v1/status/buildinfo', [])
    if ok('buildinfo', r, j):
        d = j['data']
        R.check('buildinfo: no features key (else Grafana assumes Mimir)',
                not d.get('features'), d)
        R.check('buildinfo: every value a string', all(isinstance(v, str) for v in d.values()), d)
        m = re.match(r'^(\d+)\.(\d+)\.(\d+)', d.get('version', ''))
        R.check('buildinfo: version is semver >= 2.24 (labels match[] support)',
                m is not None and (int(m.group(1)), int(m.group(2))) >= (2, 24), d.get('version'))
        for k in ('revision', 'branch', 'buildUser', 'buildDate', 'goVersion'):
            R.check('buildinfo: has %s' % k, k in d, d)

    # ---- panels: POST form query_range, GET fallback gives the same answer ----
    q = 'sum by (job) (rate(%s[1m]))' % name
    params = [('query', q), ('start', str(start_s)), ('end', str(end_s)), ('step', '15')]
    r_post, j_post = post(srv, '/api/v1/query_range', params)
    r_get, j_get = get(srv, '/api/v1/query_range', params)
    if ok('query_range POST form', r_post, j_post):
        d = j_post['data']
        R.eq('query_range: matrix', d.get('resultType'), 'matrix')
        res = d.get('result') or []
        R.eq('query_range: two jobs, sorted by label set',
             [s['metric'] for s in res], [{'job': 'api'}, {'job': 'web'}])
        if len(res) == 2:
            want = {'api': 3 / 15, 'web': 1 / 15}
            for s in res:
                job = s['metric']['job']
                vals = s.get('values') or []
                R.check('query_range %s: points are [number, string]' % job,
                        all(isinstance(p[0], (int, float)) and isinstance(p[1], str)
                            for p in vals), vals[:2])
                R.check('query_range %s: timestamps on the step grid' % job,
                        all(int(p[0]) % 15 == 0 for p in vals), vals[:3])
                inner = [float(p[1]) for p in vals if start_s + 120 <= p[0] <= end_s - 60]
                R.check('query_range %s: rate %.4f/s' % (job, want[job]),
                        inner and all(abs(v - want[job]) < 1e-9 for v in inner), inner[:3])
    if ok('query_range GET fallback', r_get, j_get):
        R.eq('query_range: GET answer equals POST answer', j_get, j_post)
    # Go's FormValue merges URL and body; Grafana's POST may carry some parameters in the URL.
    r, j = post(srv, '/api/v1/query_range', [('start', str(start_s)), ('end', str(end_s)),
                                              ('step', '15')], url_params=[('query', q)])
    if ok('query_range POST, query in URL and the rest in the body', r, j):
        R.eq('query_range: URL+body answer equals POST answer', j, j_post)
    # Fractional start/end/step as Grafana's strconv.FormatFloat writes them; a timeout parameter.
    r, j = post(srv, '/api/v1/query_range', [('query', name), ('start', '%d.5' % start_s),
                                              ('end', str(end_s)), ('step', '7.5'),
                                              ('timeout', '30s')])
    if ok('query_range: fractional start and step, timeout=30s', r, j):
        first = ((j['data'].get('result') or [{}])[0].get('values') or [[None]])[0][0]
        R.eq('query_range: first step at start (a .500 timestamp)', first, start_s + 0.5)
    # Instant table query over POST, as Explore's "Both" mode sends it.
    r, j = post(srv, '/api/v1/query', [('query', 'sum(%s)' % gname), ('time', str(end_s))])
    if ok('instant query POST', r, j):
        R.eq('instant query: vector [t, "7"]',
             [(s['metric'], s['value']) for s in j['data'].get('result') or []],
             [({}, [end_s, '7'])])
    # An error is shown by Grafana as "<errorType>: <error>".
    r, j = post(srv, '/api/v1/query_range', [('query', 'sum(rate(%s[1m])' % name),
                                              ('start', str(start_s)), ('end', str(end_s)),
                                              ('step', '15')])
    R.eq('bad query: HTTP 400', r.status, 400)
    R.eq('bad query: errorType bad_data', (j or {}).get('errorType'), 'bad_data')
    R.check('bad query: error says where', 'parse error' in (j or {}).get('error', ''), j)

    # ---- exemplar toggle probe: start/end in milliseconds ----
    for how in ('GET', 'POST'):
        params = [('query', 'test'), ('start', str(ts[0])), ('end', str(ts[-1]))]
        r, j = get(srv, '/api/v1/query_exemplars', params) if how == 'GET' else \
            post(srv, '/api/v1/query_exemplars', params)
        if ok('query_exemplars probe [%s]' % how, r, j):
            R.eq('query_exemplars [%s]: empty list' % how, j.get('data'), [])

    # ---- template variables and the label browser ----
    rng = [('start', str(start_s)), ('end', str(end_s))]
    r, j = get(srv, '/api/v1/label/__name__/values', rng + [('limit', '40000')])
    if ok('label/__name__/values (metric list)', r, j):
        names = j.get('data') or []
        R.check('metric list: sorted', names == sorted(names), names)
        R.check('metric list: has %s and %s' % (name, gname), name in names and gname in names,
                names)
    r, j = get(srv, '/api/v1/label/job/values', rng + [('match[]', name)])
    if ok('label/job/values with match[]', r, j):
        R.eq('label values: jobs of %s' % name, j.get('data'), ['api', 'web'])
    r, j = get(srv, '/api/v1/label/job/values', rng + [('match[]', gname)])
    if ok('label/job/values with match[] of the gauge', r, j):
        R.eq('label values: jobs of %s' % gname, j.get('data'), ['api'])
    r, j = get(srv, '/api/v1/label/route/values', rng + [('match[]', '%s{job="web"}' % name)])
    if ok('label/route/values with a filtered match[]', r, j):
        R.eq('label values: route of job web', j.get('data'), ['/b'])
    old = [('start', str(start_s - 86400 * 30)), ('end', str(start_s - 86400 * 29))]
    r, j = get(srv, '/api/v1/label/job/values', old + [('match[]', name)])
    if ok('label values outside the data range', r, j):
        R.eq('label values: [] (not null) outside the range', j.get('data'), [])
    r, j = get(srv, '/api/v1/label/U__http_2e_status_code/values', rng)
    if ok('label values of a U__-escaped name', r, j):
        R.eq('escaped name: no such label, []', j.get('data'), [])
    for how in ('GET', 'POST'):
        params = rng + [('match[]', gname), ('limit', '40000')]
        r, j = get(srv, '/api/v1/labels', params) if how == 'GET' else \
            post(srv, '/api/v1/labels', params)
        if ok('labels with match[] [%s]' % how, r, j):
            got = j.get('data') or []
            R.check('labels [%s]: sorted, __name__ and job' % how,
                    got == sorted(got) and '__name__' in got and 'job' in got and
                    'route' not in got, got)
    r, j = get(srv, '/api/v1/labels', rng)
    if ok('labels without match[]', r, j):
        got = j.get('data') or []
        R.check('labels: __name__, job and route', {'__name__', 'job', 'route'} <= set(got), got)
    for how in ('GET', 'POST'):
        params = rng + [('match[]', '{__name__!=""}'), ('limit', '40000')]
        r, j = get(srv, '/api/v1/series', params) if how == 'GET' else \
            post(srv, '/api/v1/series', params)
        if ok('series {__name__!=""} [%s]' % how, r, j):
            got = j.get('data') or []
            mine = sorted((s.get('__name__'), s.get('job'), s.get('route', ''))
                          for s in got if s.get('__name__') in (name, gname))
            R.eq('series [%s]: the three pushed series' % how, mine,
                 sorted([(name, 'api', '/a'), (name, 'web', '/b'), (gname, 'api', '')]))
            R.check('series [%s]: label maps of strings' % how,
                    all(isinstance(v, str) for s in got for v in s.values()), got[:2])
    r, j = get(srv, '/api/v1/series', rng + [('match[]', '%s{job="api"}' % name),
                                             ('match[]', gname)])
    if ok('series with two match[]', r, j):
        R.eq('series: union of both selectors',
             sorted(s['__name__'] for s in j.get('data') or []), sorted([name, gname]))
    r, j = get(srv, '/api/v1/series', rng)
    R.eq('series without match[]: HTTP 400', r.status, 400)
    R.eq('series without match[]: bad_data', (j or {}).get('errorType'), 'bad_data')

    # ---- metadata (autocomplete help and type) ----
    r, j = get(srv, '/api/v1/metadata', [])
    if ok('metadata', r, j):
        d = j.get('data') or {}
        R.check('metadata: object keyed by metric', isinstance(d, dict), d)
        entry = (d.get(name) or [{}])[0]
        R.eq('metadata %s: type counter' % name, entry.get('type'), 'counter')
        R.eq('metadata %s: help' % name, entry.get('help'), 'Requests served.')
        R.check('metadata %s: unit is a string' % name, isinstance(entry.get('unit'), str), entry)
        R.eq('metadata %s: type gauge' % gname, ((d.get(gname) or [{}])[0]).get('type'), 'gauge')
    r, j = get(srv, '/api/v1/metadata', [('metric', gname)])
    if ok('metadata ?metric=', r, j):
        R.eq('metadata ?metric=: only that metric', sorted((j.get('data') or {}).keys()), [gname])
    r, j = get(srv, '/api/v1/metadata', [('limit', '1')])
    if ok('metadata ?limit=1', r, j):
        R.eq('metadata ?limit=1: one metric', len(j.get('data') or {}), 1)

    # ---- "Format query" button ----
    for how in ('GET', 'POST'):
        params = [('query', 'sum(rate(%s{job="api"}[5m]))by(job)' % name)]
        r, j = get(srv, '/api/v1/format_query', params) if how == 'GET' else \
            post(srv, '/api/v1/format_query', params)
        if ok('format_query [%s]' % how, r, j):
            R.eq('format_query [%s]: pretty-printed' % how, j.get('data'),
                 'sum by (job) (rate(%s{job="api"}[5m]))' % name)
    r, j = get(srv, '/api/v1/format_query', [('query', 'sum(')])
    R.eq('format_query of a parse error: HTTP 400', r.status, 400)
    R.eq('format_query of a parse error: bad_data', (j or {}).get('errorType'), 'bad_data')

    R.check('server alive after the Grafana calls', srv.alive(), srv.log_tail())
    srv.stop()
