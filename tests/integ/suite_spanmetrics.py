"""suite_spanmetrics.py - span metrics under Tempo's names, and the seed's recording rules over them.

Why: the OTEL-LGTM-Skills recording rules (routing_test:pass_rate_24h and friends) compute pass
rates from traces_spanmetrics_calls_total{service, span_name, status_code}, which Tempo's metrics
generator derives from the test spans. Skillscope derives the same series itself.

How: a generated skill-test run (5 tests, several runs each, known pass/fail pattern and
durations, one test taking 100 s) is sent as OTLP/JSON spans in three requests; with
span_metrics.flush_interval 1s the counters reach the store within seconds. Expected counts,
pass rates and mean durations are computed here from the generated spans. The seed's rule
expressions are evaluated at the time of the last flush, so increase() covers exactly the
written samples.
"""

import json
import os
import random
import time

from harness import R, Server, get_json, http, tmpdir

SERVICE = 'jira-assistant-routing-tests'
TESTS = ['routing_test_TC%03d' % i for i in range(1, 6)]
# results per test across the runs: p = pass (STATUS_CODE_OK), f = fail (STATUS_CODE_ERROR)
PATTERN = {
    'routing_test_TC001': 'pppppp',
    'routing_test_TC002': 'pfpfpf',
    'routing_test_TC003': 'ffffff',
    'routing_test_TC004': 'ppfppp',
    'routing_test_TC005': 'fpfffp',
}
RUNS = 6

PASS_RATE = '''(
  sum by (span_name) (increase(traces_spanmetrics_calls_total{
      service="jira-assistant-routing-tests", status_code="STATUS_CODE_OK",
      span_name=~"routing_test_TC.*"}[24h]))
) / (
  sum by (span_name) (increase(traces_spanmetrics_calls_total{
      service="jira-assistant-routing-tests", span_name=~"routing_test_TC.*"}[24h]))
)'''
AVG_DURATION = '''(
  sum by (span_name) (increase(traces_spanmetrics_latency_sum{
      service="jira-assistant-routing-tests", span_name=~"routing_test_TC.*"}[24h]))
) / (
  sum by (span_name) (increase(traces_spanmetrics_latency_count{
      service="jira-assistant-routing-tests", span_name=~"routing_test_TC.*"}[24h]))
)'''


def attr(k, v):
    return {'key': k, 'value': {'stringValue': v}}


def duration_ms(test, run):
    if test == 'routing_test_TC004':
        return 100000 + run  # beyond Tempo's 16 s buckets
    return 1000 * (TESTS.index(test) + 1) + 37 * run


def run_request(run, rnd):
    now = time.time_ns()
    spans = []
    for t in TESTS:
        ok = PATTERN[t][run] == 'p'
        d = duration_ms(t, run)
        spans.append({
            'traceId': '%032x' % rnd.getrandbits(128), 'spanId': '%016x' % rnd.getrandbits(64),
            'name': t, 'kind': 1,
            'startTimeUnixNano': str(now - d * 1000000), 'endTimeUnixNano': str(now),
            'attributes': [attr('test.id', t[-5:]), attr('test.category', 'agile'),
                           attr('test.result', 'pass' if ok else 'fail')],
            'status': {'code': 1 if ok else 2},
        })
    return {'resourceSpans': [{
        'resource': {'attributes': [attr('service.name', SERVICE),
                                    attr('vcs.commit.sha', 'c0ffee%d' % (run // 3))]},
        'scopeSpans': [{'scope': {'name': 'pytest'}, 'spans': spans}]}]}


def query(port, expr, t):
    r, body = get_json(port, '/api/v1/query', [('query', expr), ('time', '%.3f' % t)])
    if r.status != 200 or not body:
        R.check('query %s' % expr.split('\n')[0], False, '%d %s' % (r.status, r.text()[:300]))
        return {}
    return {s['metric'].get('span_name', ''): float(s['value'][1])
            for s in body['data']['result']}


def run():
    d = tmpdir('ss-spanmetrics-')
    cfg = os.path.join(d, 'skillscope.yaml')
    with open(cfg, 'w') as f:
        f.write('span_metrics:\n  flush_interval: 1s\n')
    srv = Server(extra_args=['--config', cfg], name='spanmetrics')
    srv.start()
    rnd = random.Random(7)
    for i in range(3):  # two runs per request
        body = run_request(2 * i, rnd)
        body['resourceSpans'] += run_request(2 * i + 1, rnd)['resourceSpans']
        r = http('POST', srv.otlp_port, '/v1/traces', json.dumps(body).encode(),
                 {'Content-Type': 'application/json'})
        R.eq('POST /v1/traces run %d' % i, r.status, 200)
    time.sleep(2.5)  # two flushes

    # the last flush time: the newest sample of any calls series
    r, body = get_json(srv.http_port, '/api/v1/query',
                       [('query', 'timestamp(traces_spanmetrics_calls_total)')])
    stamps = [float(s['value'][1]) for s in body['data']['result']] if body else []
    R.check('calls series exist', len(stamps) > 0, r.text()[:300])
    if not stamps:
        return
    t = max(stamps)

    counts = query(srv.http_port, 'sum by (span_name) (traces_spanmetrics_calls_total{service="%s"})'
                   % SERVICE, t)
    R.eq('calls per test', counts, {name: float(RUNS) for name in TESTS})
    ok = query(srv.http_port, 'sum by (span_name) (traces_spanmetrics_calls_total'
               '{status_code="STATUS_CODE_OK"})', t)
    R.eq('passed calls per test', ok,
         {n: float(PATTERN[n].count('p')) for n in TESTS if 'p' in PATTERN[n]})

    # As in Prometheus, a test that never passed has no OK series, so the division has no
    # left-hand side for it and the rule gives no value (TC003).
    want = {n: PATTERN[n].count('p') / RUNS for n in TESTS if 'p' in PATTERN[n]}
    got = query(srv.http_port, PASS_RATE, t)
    R.check('routing_test:pass_rate_24h per test', set(got) == set(want) and all(
        abs(got[n] - want[n]) < 1e-9 for n in want), 'got %s want %s' % (got, want))
    flaky = query(srv.http_port, '(%s) > 0.3 and (%s) < 0.7' % (PASS_RATE, PASS_RATE), t)
    R.eq('routing_test:flaky_tests', sorted(flaky), ['routing_test_TC002', 'routing_test_TC005'])

    want_avg = {n: sum(duration_ms(n, k) for k in range(RUNS)) / RUNS / 1000 for n in TESTS}
    got_avg = query(srv.http_port, AVG_DURATION, t)
    R.check('routing_test:avg_duration_24h (seconds)', set(got_avg) == set(want_avg) and all(
        abs(got_avg[n] - want_avg[n]) < 1e-6 for n in want_avg),
        'got %s want %s' % (got_avg, want_avg))

    # a 100 s test sits in the 131.072 s bucket, so quantiles reach minutes
    q = query(srv.http_port, 'histogram_quantile(0.5, sum by (span_name, le) '
              '(traces_spanmetrics_latency_bucket{span_name="routing_test_TC004"}))', t)
    R.check('p50 of a 100 s test within (65.536, 131.072]',
            65.536 < q.get('routing_test_TC004', 0) <= 131.072, q)

    # dimensions from span attributes and from the resource
    r, body = get_json(srv.http_port, '/api/v1/label/vcs_commit_sha/values',
                       [('match[]', 'traces_spanmetrics_calls_total')])
    R.eq('vcs_commit_sha values', body and body['data'], ['c0ffee0', 'c0ffee1'])
    r, body = get_json(srv.http_port, '/api/v1/label/test_result/values',
                       [('match[]', 'traces_spanmetrics_calls_total')])
    R.eq('test_result values', body and body['data'], ['fail', 'pass'])
    r, body = get_json(srv.http_port, '/api/v1/metadata',
                       [('metric', 'traces_spanmetrics_latency')])
    R.eq('latency metadata type', body and body['data'].get('traces_spanmetrics_latency',
                                                            [{}])[0].get('type'), 'histogram')

    # a bad span_metrics config stops the start with file, line and what is wrong
    bad = os.path.join(d, 'bad.yaml')
    with open(bad, 'w') as f:
        f.write('span_metrics:\n  flush_interval: soon\n')
    b = Server(extra_args=['--config', bad], name='spanmetrics-bad')
    try:
        b.start(ready_timeout=5)
        R.check('bad span_metrics config refused', False, 'server started')
    except Exception as e:  # SuiteAbort with the log tail
        R.check('bad span_metrics config refused with line',
                'bad.yaml:2: span_metrics.flush_interval' in str(e), str(e)[-300:])
    srv.stop()
