"""suite_claude_code.py - replay a real Claude Code telemetry session and read it back.

Why: Claude Code is the main real-world sender (../shared/specs/claude-code/README.md): DELTA
monotonic sums that the server must add up into cumulative Prometheus counters, and events as log
records that must be queryable as Loki streams {service_name, event_name}.

How: every request of capture-http-json.jsonl is POSTed as recorded (path, Content-Type, raw
JSON). The expected cumulative series are computed here from the capture alone: Prometheus name
per OTLP-NOTES.md §7, labels from the point attributes plus job=service.name, value = running sum
of the deltas per series in export order; every sample is compared exactly. Log records are
counted per event.name from the capture and compared with Loki query_range answers.
"""

import json
import os
import time

from harness import (R, ROOT, Server, any_value_str, attrs_to_labels, get_json, go_float, http,
                     loki_all_entries, prom_label_name, prom_metric_name, prom_range_samples,
                     selector)

# A committed copy of ../shared/specs/claude-code/capture-http-json.jsonl, so the suite needs
# nothing outside the repository.
CAPTURE = os.path.join(ROOT, 'tests', 'data', 'otlp', 'claude-code-capture.jsonl')


def load_capture():
    path = os.environ.get('CLAUDE_CAPTURE') or CAPTURE
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def expected_series(capture):
    """{(name, labels tuple): [(ms, cumulative float)]} from the delta sums of the capture; a
    series starts with 0 at its first point's start time, as Skillscope writes it."""
    series = {}
    for rec in capture:
        if rec['signal'] != 'metrics':
            continue
        for rm in rec['raw_json']['resourceMetrics']:
            res = {a['key']: a['value'] for a in rm['resource']['attributes']}
            job = res['service.name']['stringValue']
            if 'service.namespace' in res:
                job = res['service.namespace']['stringValue'] + '/' + job
            for sm in rm['scopeMetrics']:
                for m in sm['metrics']:
                    s = m['sum']
                    assert s['aggregationTemporality'] == 1 and s['isMonotonic']
                    name = prom_metric_name(m['name'], m.get('unit', ''), 'sum', True)
                    for dp in s['dataPoints']:
                        labels = attrs_to_labels(dp['attributes'])
                        labels['job'] = job
                        key = (name, tuple(sorted(labels.items())))
                        v = float(dp['asDouble']) if 'asDouble' in dp else float(int(dp['asInt']))
                        prev = series.get(key, [])
                        cum = (prev[-1][1] if prev else 0.0) + v
                        ms = int(dp['timeUnixNano']) // 10**6
                        start_ms = int(dp.get('startTimeUnixNano') or 0) // 10**6
                        if not prev and 0 < start_ms < ms:
                            prev = series.setdefault(key, [(start_ms, 0.0)])  # starts at 0
                        series.setdefault(key, []).append((ms, cum))
    return series


def expected_logs(capture):
    """[(ts_ns, line, event_name, attrs dict)] of every log record in the capture."""
    out = []
    for rec in capture:
        if rec['signal'] != 'logs':
            continue
        for rl in rec['raw_json']['resourceLogs']:
            for sl in rl['scopeLogs']:
                for lr in sl['logRecords']:
                    attrs = {a['key']: a['value'] for a in lr.get('attributes', [])}
                    ts = int(lr.get('timeUnixNano') or 0) or int(lr['observedTimeUnixNano'])
                    out.append((ts, lr['body']['stringValue'],
                                attrs.get('event.name', {}).get('stringValue'), attrs))
    return out


def run():
    capture = load_capture()
    srv = Server(name='claude')
    srv.start()
    for i, rec in enumerate(capture):
        body = json.dumps(rec['raw_json']).encode()
        r = http('POST', srv.otlp_port, rec['path'], body,
                 {'Content-Type': rec['content_type'], 'User-Agent': rec.get('user_agent', '')})
        R.check('replay request %d (%s) -> 200' % (i, rec['path']), r.status == 200, r)
        if r.status == 200 and r.body.strip():
            try:
                ps = r.json().get('partialSuccess')
            except ValueError:
                ps = 'unparsable'
            R.check('replay request %d: no partial success' % i, not ps, r)

    series = expected_series(capture)
    last_ms = max(v[-1][0] for v in series.values())
    first_ms = min(v[0][0] for v in series.values())
    window_s = (last_ms - first_ms) // 1000 + 600
    names = sorted({k[0] for k in series})
    R.check('capture has the expected metric families',
            'claude_code_token_usage_tokens_total' in names
            and 'claude_code_cost_usage_USD_total' in names, names)
    r, j = get_json(srv.http_port, '/api/v1/label/__name__/values',
                    [('match[]', '{__name__=~"claude_code_.*"}')])
    R.eq('metric names of the session', (j or {}).get('data'), names)
    for (name, labels), vals in sorted(series.items()):
        labels = dict(labels)
        sel = selector(name, labels)
        r, j, got = prom_range_samples(srv.http_port, sel, last_ms + 1000, window_s)
        if not R.eq('one series for %s' % sel, len(got), 1):
            continue
        want = [(ms, go_float(v)) for ms, v in vals]
        R.eq('cumulative samples of %s' % sel, got[0][1], want)
    r, j = get_json(srv.http_port, '/api/v1/series', [('match[]', '{__name__=~"claude_code_.*"}')])
    got = (j or {}).get('data') or []
    promoted = {'job': 'claude-code', 'service_name': 'claude-code', 'service_version': '2.1.197'}
    R.check('every claude_code series has %s' % promoted,
            len(got) == len(series) and all(all(s.get(k) == v for k, v in promoted.items())
                                            for s in got),
            '%d series (want %d); first: %r' % (len(got), len(series), got[:1]))
    # totals per family, summed over all series at the end (independent of the label sets)
    for name in names:
        want_total = sum(v[-1][1] for k, v in series.items() if k[0] == name)
        r, j, got = prom_range_samples(srv.http_port, name, last_ms + 1000, window_s)
        total = sum(float(s[1][-1][1]) for s in got)
        R.check('final total of %s over all series = %s' % (name, go_float(want_total)),
                abs(total - want_total) <= 1e-9 * max(1.0, abs(want_total)),
                'got %r from %d series' % (total, len(got)))

    logs = expected_logs(capture)
    t_lo = min(l[0] for l in logs) - 60 * 10**9
    t_hi = max(l[0] for l in logs) + 60 * 10**9
    r, j, ents = loki_all_entries(srv.http_port, '{service_name="claude-code"}', t_lo, t_hi)
    if R.check('loki {service_name="claude-code"} answers', ents is not None, r):
        R.eq('all %d events are stored once' % len(logs), sorted((e[1], e[2]) for e in ents),
             sorted((l[0], l[1]) for l in logs))
    api = [l for l in logs if l[2] == 'api_request']
    q = '{service_name="claude-code", event_name="api_request"}'
    r, j, ents = loki_all_entries(srv.http_port, q, t_lo, t_hi)
    if R.check('loki %s answers' % q, ents is not None, r):
        R.eq('%s count' % q, len(ents), len(api))
        by_ts = {}
        for e in ents:
            by_ts.setdefault(e[1], []).append(e)
        for ts, line, _ev, attrs in api:
            got = by_ts.get(ts, [])
            if not R.eq('api_request at %d returned once' % ts, len(got), 1):
                continue
            labels, _ts, gline = got[0]
            R.eq('api_request at %d line' % ts, gline, line)
            for key in ('model', 'input_tokens', 'output_tokens', 'cost_usd', 'request_id',
                        'session.id'):
                if key in attrs:
                    R.eq('api_request at %d metadata %s' % (ts, key),
                         labels.get(prom_label_name(key)), any_value_str(attrs[key]))
    r, j = get_json(srv.http_port, '/loki/api/v1/label/event_name/values',
                    [('start', str(t_lo)), ('end', str(t_hi))])
    R.eq('loki event_name label values', (j or {}).get('data'),
         sorted({l[2] for l in logs if l[2]}))
    single_export_session(srv)
    R.check('server still running', srv.alive(), srv.log_tail())
    srv.stop()


def single_export_session(srv):
    """A session that exports its cost once (a short `claude -p` run): one delta point whose
    interval started a minute earlier. The series starts at 0 at that start, so increase() over
    the session gives the cost; with a single sample it would give nothing."""
    t_ms = (int(time.time()) - 120) * 1000
    body = {'resourceMetrics': [{
        'resource': {'attributes': [{'key': 'service.name',
                                     'value': {'stringValue': 'claude-code'}}]},
        'scopeMetrics': [{'metrics': [{
            'name': 'claude_code.cost.usage', 'unit': 'USD',
            'sum': {'aggregationTemporality': 1, 'isMonotonic': True, 'dataPoints': [{
                'attributes': [{'key': 'session.id', 'value': {'stringValue': 'one-shot'}}],
                'startTimeUnixNano': str((t_ms - 60000) * 10**6),
                'timeUnixNano': str(t_ms * 10**6), 'asDouble': 0.4217}]}}]}]}]}
    r = http('POST', srv.otlp_port, '/v1/metrics', json.dumps(body).encode(),
             {'Content-Type': 'application/json'})
    R.check('single-export session accepted', r.status == 200, r)
    q = 'increase(claude_code_cost_usage_USD_total{session_id="one-shot"}[5m])'
    r, j = get_json(srv.http_port, '/api/v1/query', [('query', q), ('time', '%.3f' % (t_ms / 1000))])
    res = ((j or {}).get('data') or {}).get('result') or []
    R.eq('increase() over a single-export session is its cost',
         [x['value'][1] for x in res], ['0.4217'])
