"""suite_query_bad_input.py - hostile PromQL requests get Prometheus' error answers, promptly.

Why: /api/v1/query and /api/v1/query_range take untrusted expressions and parameters. PROM-API.md
fixes the answers: bad_data (400) for what cannot be parsed or validated, execution (422) for
what fails while evaluating (including "too many samples"), timeout (503) when the query runs out
of time; each with a message a person can act on. None may crash or hang the server, and a
regex of catastrophic-backtracking shape must not take seconds against long label values.

How: one server started with --query.max-samples 1000 (so the sample limit is reachable with a
few thousand points); a gauge with long label values and a series of 5000 points are pushed over
OTLP/HTTP JSON. Each case is sent over GET and over POST (form body), timed (cap 5 s), and checked
for status, errorType and a message fragment; /-/ready must answer after every case.
"""

import json
import time

from harness import R, Server, http, now_ms, qs

CAP_S = 5.0
MAX_SAMPLES = 1000


def kv(key, **v):
    return {'key': key, 'value': v}


def gauge_req(name, points, labels=()):
    attrs = [kv(k, stringValue=v) for k, v in labels]
    dps = [{'timeUnixNano': str(ms * 10**6), 'asDouble': v, 'attributes': attrs}
           for ms, v in points]
    return {'resourceMetrics': [{'resource': {'attributes': [kv('service.name',
                                                                stringValue='qbad')]},
                                 'scopeMetrics': [{'metrics': [
                                     {'name': name, 'gauge': {'dataPoints': dps}}]}]}]}


def push(srv, req):
    r = http('POST', srv.otlp_port, '/v1/metrics', json.dumps(req).encode(),
             {'Content-Type': 'application/json'})
    R.check('push %s -> 200' % req['resourceMetrics'][0]['scopeMetrics'][0]['metrics'][0]['name'],
            r.status == 200, r)


def send(srv, method, path, params):
    t0 = time.monotonic()
    if method == 'GET':
        r = http('GET', srv.http_port, path + '?' + qs(params), timeout=CAP_S + 25)
    else:
        r = http('POST', srv.http_port, path, qs(params).encode(),
                 {'Content-Type': 'application/x-www-form-urlencoded'}, timeout=CAP_S + 25)
    return r, time.monotonic() - t0


def expect(srv, name, path, params, status, etype, frag, cap=CAP_S):
    """Sends params over GET and POST; checks status, errorType, a message fragment, time, ready."""
    for method in ('GET', 'POST'):
        tag = '%s [%s]' % (name, method)
        try:
            r, dt = send(srv, method, path, params)
        except Exception as e:  # timeout or reset: the server hung or died
            R.check(tag + ': answered', False, repr(e))
            R.check(tag + ': server still alive', srv.alive(), srv.log_tail())
            continue
        R.check(tag + ': answered within %.0fs' % cap, dt <= cap, '%.2fs' % dt)
        if not R.check(tag + ': HTTP %d' % status, r.status == status, r):
            continue
        try:
            j = r.json()
        except ValueError:
            R.check(tag + ': JSON body', False, r)
            continue
        if status == 200:
            R.eq(tag + ': status success', j.get('status'), 'success')
        else:
            R.eq(tag + ': status error', j.get('status'), 'error')
            R.eq(tag + ': errorType', j.get('errorType'), etype)
            msg = j.get('error') or ''
            R.check(tag + ': message mentions %r' % frag, frag.lower() in msg.lower(), msg)
        rd = http('GET', srv.http_port, '/-/ready', timeout=10)
        R.check(tag + ': /-/ready still answers', rd.status == 200, rd)


def run():
    srv = Server(name='qbad', extra_args=['--query.max-samples', str(MAX_SAMPLES),
                                          '--query.timeout', '2m'])
    srv.start()
    t = now_ms() - 60 * 1000
    # Long label values for the regex bombs: 30 'a's and no trailing 'b' is the worst case.
    push(srv, gauge_req('qbad_long', [(t, 1)], [('a', 'a' * 30), ('path', 'a' * 4000 + '!')]))
    push(srv, gauge_req('qbad_long', [(t, 2)], [('a', 'a' * 5000), ('path', 'x')]))
    # 5000 points, 1 s apart, oldest first (ingest refuses older-than-head points), ending at t.
    many = [(t - i * 1000, float(i)) for i in range(4999, -1, -1)]
    for k in range(0, len(many), 1000):
        push(srv, gauge_req('qbad_many', many[k:k + 1000]))
    ts = '%.3f' % (t / 1000.0)
    Q, QR = '/api/v1/query', '/api/v1/query_range'

    def q(expr, **extra):
        p = [('query', expr), ('time', ts)]
        p.extend(extra.items())
        return p

    def qr(expr, start=None, end=None, step='15s'):
        return [('query', expr), ('start', start or '%.3f' % (t / 1000.0 - 600)),
                ('end', end or ts), ('step', step)]

    # ---- parse errors: bad_data 400 ----
    for expr, frag in [('sum(qbad_long', 'unclosed left parenthesis'),
                       ('qbad_long)', 'unexpected right parenthesis'),
                       ('((qbad_long)', 'unclosed left parenthesis'),
                       ('qbad_long[5x]', 'parse error'),
                       ('qbad_long[5m', 'parse error'),
                       ('rate(qbad_long[-5m])', 'parse error'),
                       ('foo(qbad_long)', 'unknown function with name "foo"'),
                       ('rate(1)', 'expected type range vector'),
                       ('sum(qbad_long[5m])', 'expected type instant vector'),
                       ('qbad_long{a=~"(a"}', 'parse error'),
                       ('', 'parse error'),
                       ('qbad_long{', 'parse error'),
                       ('"unterminated', 'parse error'),
                       ('1 +', 'parse error'),
                       ('{a=""}', 'at least one non-empty matcher'),
                       ('{a=~".*"}', 'at least one non-empty matcher')]:
        expect(srv, 'query %r' % expr, Q, q(expr), 400, 'bad_data', frag)
    expect(srv, 'range query of a range vector', QR, qr('qbad_long[5m]'), 400, 'bad_data',
           'invalid expression type')

    # ---- regex bombs: prompt answers ----
    for expr in ['{__name__=~"(a+)+$"}', 'qbad_long{a=~"((((((((((a*)*)*)*)*)*)*)*)*)*)*b"}',
                 'qbad_long{path=~"(a|aa)+b"}', 'qbad_long{path!~"(a*)*b"}',
                 'count({__name__=~"(.*)*x", path=~"(a|a)*$"})']:
        expect(srv, 'regex bomb %r' % expr, Q, q(expr), 200, None, '')
        expect(srv, 'regex bomb range %r' % expr, QR, qr('count(%s)' % expr), 200, None, '')
    # RE2, and so Prometheus, refuse repetition counts over 1000; PCRE2 alone would accept them.
    expect(srv, 'regex repeat count over 1000', Q, q('qbad_long{path=~"a{1001}"}'), 400,
           'bad_data', 'invalid repeat count')

    # ---- absurd ranges ----
    # Durations past Go's ~292 years (time.Duration overflow) are refused at parse time, as
    # Prometheus does.
    expect(srv, 'range x[100000y]', Q, q('count_over_time(qbad_long[100000y])'), 400, 'bad_data',
           'duration out of range')
    expect(srv, 'range x[0s]', Q, q('qbad_long[0s]'), 400, 'bad_data', 'parse error')
    expect(srv, 'rate over 5000y', Q, q('rate(qbad_long[5000y])'), 400, 'bad_data',
           'duration out of range')
    expect(srv, 'rate over 200y (in range, answered promptly)', Q, q('rate(qbad_long[200y])'),
           200, None, '')
    expect(srv, 'offset 100000y', Q, q('qbad_long offset 100000y'), 400, 'bad_data',
           'duration out of range')
    expect(srv, 'range x[9999999999999y]', Q, q('qbad_long[9999999999999y]'), 400, 'bad_data',
           'parse error')
    expect(srv, 'subquery step 1ms over 1y', Q, q('max_over_time(qbad_long[1y:1ms])'), 422,
           'execution', 'too many samples')

    # ---- absurd steps and times ----
    for step, frag in [('0', 'zero or negative'), ('-15', 'zero or negative'),
                       ('-1s', ''), ('0.0000000001', ''), ('abc', 'invalid parameter'),
                       ('NaN', 'invalid parameter'), ('Inf', ''), ('', 'invalid parameter')]:
        expect(srv, 'step=%r' % step, QR, qr('qbad_long', step=step), 400, 'bad_data', frag)
    expect(srv, '> 11000 points', QR, qr('qbad_long', start='0', end='20000', step='1'), 400,
           'bad_data', '11,000 points')
    expect(srv, '1e-9 s step is > 11000 points', QR, qr('qbad_long', step='1e-9'), 400,
           'bad_data', '11,000 points')
    expect(srv, 'end before start', QR, qr('qbad_long', start='2000', end='1000'), 400,
           'bad_data', 'end timestamp must not be before start')
    for name in ('start', 'end'):
        p = qr('qbad_long')
        p = [(k, 'yesterday' if k == name else v) for k, v in p]
        expect(srv, 'non-numeric %s' % name, QR, p, 400, 'bad_data',
               'invalid parameter "%s"' % name)
    expect(srv, 'missing start', QR, [('query', 'qbad_long'), ('end', ts), ('step', '15s')],
           400, 'bad_data', 'invalid parameter "start"')
    expect(srv, 'non-numeric time', Q, [('query', 'qbad_long'), ('time', 'noon')], 400,
           'bad_data', 'invalid parameter "time"')
    expect(srv, 'time=NaN', Q, [('query', 'qbad_long'), ('time', 'NaN')], 400, 'bad_data',
           'invalid parameter "time"')
    expect(srv, 'time=1e300', Q, [('query', 'qbad_long'), ('time', '1e300')], 400, 'bad_data',
           'invalid parameter "time"')
    expect(srv, 'bad timeout', Q, q('qbad_long', timeout='soon'), 400, 'bad_data',
           'invalid parameter "timeout"')
    expect(srv, 'bad lookback_delta', Q, q('qbad_long', lookback_delta='x'), 400, 'bad_data',
           'lookback delta')
    expect(srv, 'bad limit', Q, q('qbad_long', limit='-1'), 400, 'bad_data',
           'invalid parameter "limit"')

    # ---- limits ----
    expect(srv, 'more samples than --query.max-samples', Q, q('qbad_many[2h]'), 422,
           'execution', 'too many samples')
    expect(srv, 'sum_over_time over the sample limit', Q, q('sum_over_time(qbad_many[2h])'),
           422, 'execution', 'too many samples')
    expect(srv, 'under the sample limit', Q, q('qbad_many[5m]'), 200, None, '')
    srv.stop()

    # Default limits: 11000 points pass; `timeout=1ms` stops a query of millions of steps.
    srv2 = Server(name='qbad-def', data_dir=srv.data_dir)
    srv2.start()
    expect(srv2, '11000 points exactly is fine', QR,
           qr('vector(1)', start='0', end='11000', step='1'), 200, None, '')
    expect(srv2, 'default limit lets qbad_many[2h] through', Q, q('qbad_many[2h]'), 200, None, '')
    expensive = 'count(max_over_time(qbad_many[1h:1ms]) + max_over_time(qbad_long[1h:1ms]))'
    expect(srv2, 'timeout=1ms on an expensive query', Q, q(expensive, timeout='1ms'), 503,
           'timeout', 'timed out')
    expect(srv2, 'timeout=100us on an expensive query', Q, q(expensive, timeout='0.0001'), 503,
           'timeout', 'timed out')
    srv2.stop()

    # A server started with --query.timeout 1ms times out such a query on its own.
    srv3 = Server(name='qbad-to', data_dir=srv.data_dir, extra_args=['--query.timeout', '1ms'])
    srv3.start()
    expect(srv3, '--query.timeout 1ms', Q, q(expensive), 503, 'timeout', 'timed out')
    expect(srv3, 'timeout=1h cannot raise --query.timeout', Q, q(expensive, timeout='1h'), 503,
           'timeout', 'timed out')
    expect(srv3, 'a cheap query still answers', Q, q('vector(1)'), 200, None, '')
    srv3.stop()
    bad = Server(name='qbad-bad', extra_args=['--query.max-samples', 'lots'])
    try:
        bad.start(ready_timeout=5)
        R.check('--query.max-samples lots is refused', False, 'server started')
    except Exception as e:
        R.check('--query.max-samples lots is refused with a message',
                'query.max-samples' in str(e), e)
