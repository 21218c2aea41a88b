"""suite_logql.py - LogQL over the real binary: Claude Code's events queried as Loki would.

Why: Claude Code's richest data (every API request with model, tokens, cost; every tool decision)
arrives as OTLP log events. Dashboards ask for it with LogQL, e.g. the session cost
sum_over_time({service_name="claude-code", event_name="api_request"} | unwrap cost_usd [1h]),
where cost_usd is structured metadata (Loki 3 keeps OTLP log attributes there).

How: the real capture (tests/data/otlp/claude-code-capture.jsonl) is replayed over OTLP/HTTP;
every expected number is computed here from the capture alone (cost sum, counts per event, line
filter counts). Bad input must give Loki's 400 text/plain answers: malformed LogQL with a
position, limits (range, points, entries), a refused regex, JSONParserErr for `| json` over
Claude Code's non-JSON bodies (what real Loki does to the seed dashboards' `| json` variant).
`skillscope logs` is run against the server as a user would.
"""

import json
import os
import subprocess

from harness import R, ROOT, Server, binary, get_json, http

CAPTURE = os.path.join(ROOT, 'tests', 'data', 'otlp', 'claude-code-capture.jsonl')


def load_logs():
    out = []
    with open(os.environ.get('CLAUDE_CAPTURE') or CAPTURE) as f:
        capture = [json.loads(line) for line in f if line.strip()]
    for rec in capture:
        if rec['signal'] != 'logs':
            continue
        for rl in rec['raw_json']['resourceLogs']:
            for sl in rl['scopeLogs']:
                for lr in sl['logRecords']:
                    attrs = {a['key']: a['value'] for a in lr.get('attributes', [])}
                    ts = int(lr.get('timeUnixNano') or 0) or int(lr['observedTimeUnixNano'])
                    out.append((ts, lr['body']['stringValue'], attrs))
    return capture, out


def num(v):
    if 'doubleValue' in v:
        return float(v['doubleValue'])
    if 'intValue' in v:
        return float(int(v['intValue']))
    return float(v['stringValue'])


def instant(port, query, t_ns):
    return get_json(port, '/loki/api/v1/query', [('query', query), ('time', str(t_ns))])


def run():
    capture, logs = load_logs()
    srv = Server(name='logql')
    srv.start()
    for i, rec in enumerate(capture):
        r = http('POST', srv.otlp_port, rec['path'], json.dumps(rec['raw_json']).encode(),
                 {'Content-Type': rec['content_type']})
        R.check('replay request %d -> 200' % i, r.status == 200, r)
    port = srv.http_port
    t_lo = min(l[0] for l in logs) - 60 * 10**9
    t_hi = max(l[0] for l in logs) + 60 * 10**9
    window_h = (t_hi - t_lo) // (3600 * 10**9) + 1

    def ev(name):
        return [l for l in logs if l[2].get('event.name', {}).get('stringValue') == name]

    # --- the cost Claude Code reported, from structured metadata via unwrap ---
    api = ev('api_request')
    want_cost = sum(num(l[2]['cost_usd']) for l in api if 'cost_usd' in l[2])
    R.check('capture has api_request events with cost_usd', len(api) > 0 and want_cost > 0,
            (len(api), want_cost))
    q = ('sum(sum_over_time({service_name="claude-code", event_name="api_request"} '
         '| unwrap cost_usd [%dh]))' % window_h)
    r, j = instant(port, q, t_hi)
    res = (j or {}).get('data', {}).get('result') or []
    got = float(res[0]['value'][1]) if res else None
    R.check('%s = %.6f (sum of cost_usd in the capture)' % (q, want_cost),
            got is not None and abs(got - want_cost) <= 1e-9 * max(1, want_cost), (r, got))
    R.eq('instant metric answer is a vector', (j or {}).get('data', {}).get('resultType'), 'vector')
    R.check('the answer carries a stats summary',
            'summary' in ((j or {}).get('data', {}).get('stats') or {}), j)
    # the same without sum(): one series per label set; their values add up to the same cost
    q1 = ('sum_over_time({service_name="claude-code", event_name="api_request"} '
          '| unwrap cost_usd [%dh])' % window_h)
    r, j = instant(port, q1, t_hi)
    res = (j or {}).get('data', {}).get('result') or []
    total = sum(float(s['value'][1]) for s in res)
    R.check('per-series sum_over_time adds up to the cost', abs(total - want_cost) < 1e-9, total)
    R.check('unwrapped label cost_usd is not in the output labels',
            all('cost_usd' not in s['metric'] for s in res), res[:1])

    # --- counts per event name, range query with a step ---
    q2 = ('sum by (event_name) (count_over_time({service_name="claude-code"}[%dh]))' % window_h)
    r, j = instant(port, q2, t_hi)
    got = {s['metric'].get('event_name'): float(s['value'][1])
           for s in (j or {}).get('data', {}).get('result') or []}
    want = {}
    for l in logs:
        n = l[2].get('event.name', {}).get('stringValue')
        want[n] = want.get(n, 0) + 1
    R.eq('count_over_time by event_name', got, {k: float(v) for k, v in want.items()})
    r, j = get_json(port, '/loki/api/v1/query_range',
                    [('query', 'sum(count_over_time({service_name="claude-code"}[1m]))'),
                     ('start', str(t_lo)), ('end', str(t_hi)), ('step', '60')])
    res = (j or {}).get('data', {}).get('result') or []
    R.eq('range metric query is a matrix', (j or {}).get('data', {}).get('resultType'), 'matrix')
    # windows of 1m stepping by 1m partition time: every event is counted exactly once
    counted = sum(float(v[1]) for s in res for v in s['values'])
    first_step = t_lo
    in_range = sum(1 for l in logs if l[0] > first_step - 60 * 10**9)
    R.eq('1m windows stepping 1m count every event once', counted, float(in_range))

    # --- log queries: line filters, label filters on metadata ---
    body = api[0][1]
    r, j = get_json(port, '/loki/api/v1/query_range',
                    [('query', '{service_name="claude-code"} |= "%s"' % body),
                     ('start', str(t_lo)), ('end', str(t_hi)), ('limit', '1000')])
    n = sum(len(s['values']) for s in (j or {}).get('data', {}).get('result') or [])
    R.eq('|= "%s" finds every entry with that body' % body, n,
         sum(1 for l in logs if body in l[1]))
    model = api[0][2].get('model', {}).get('stringValue')
    if model:
        r, j = get_json(port, '/loki/api/v1/query_range',
                        [('query', '{service_name="claude-code"} | model="%s"' % model),
                         ('start', str(t_lo)), ('end', str(t_hi)), ('limit', '1000')])
        res = (j or {}).get('data', {}).get('result') or []
        n = sum(len(s['values']) for s in res)
        R.eq('| model="%s" (structured metadata label filter)' % model, n,
             sum(1 for l in logs if l[2].get('model', {}).get('stringValue') == model))
        R.check('metadata is in the result stream labels',
                all(s['stream'].get('model') == model for s in res), res[:1])
    r, j = get_json(port, '/loki/api/v1/query_range',
                    [('query', '{service_name="claude-code"} | line_format "{{.event_name}}!"'),
                     ('start', str(t_lo)), ('end', str(t_hi)), ('limit', '3'),
                     ('direction', 'forward')])
    lines = [v[1] for s in (j or {}).get('data', {}).get('result') or [] for v in s['values']]
    R.check('line_format rewrites lines from labels',
            len(lines) == 3 and all(x.endswith('!') and len(x) > 1 for x in lines), lines)

    # --- | json over non-JSON bodies: Loki's JSONParserErr ---
    qj = ('sum(count_over_time({service_name="claude-code", event_name="api_request"} | json '
          '[%dh]))' % window_h)
    r, _ = instant(port, qj, t_hi)
    R.check('| json on non-JSON bodies fails the metric query with JSONParserErr (as Loki)',
            r.status == 400 and 'JSONParserErr' in r.text(), r)
    r, j = instant(port, qj.replace('| json', '| json | __error__=""'), t_hi)
    R.check('| json | __error__="" drops every line', r.status == 200 and
            (j or {}).get('data', {}).get('result') == [], r)

    # --- bad input ---
    r, _ = get_json(port, '/loki/api/v1/query_range',
                    [('query', 'sum(count_over_time({service_name="claude-code"}[5m]'),
                     ('start', str(t_lo)), ('end', str(t_hi))])
    R.check('malformed LogQL -> 400 text/plain with line and column',
            r.status == 400 and r.ctype().startswith('text/plain') and
            r.text().startswith('parse error at line 1, col 53: syntax error: unexpected $end'),
            r)
    r, _ = get_json(port, '/loki/api/v1/query_range',
                    [('query', 'count_over_time({service_name="claude-code"}[5m])'),
                     ('start', '1'), ('end', str(t_hi)), ('step', '864000')])
    R.check('a year-long range -> 400 query length limit',
            r.status == 400 and 'the query time range exceeds the limit' in r.text(), r)
    r, _ = get_json(port, '/loki/api/v1/query_range',
                    [('query', 'count_over_time({service_name="claude-code"}[5m])'),
                     ('start', str(t_hi - 7 * 86400 * 10**9)), ('end', str(t_hi)), ('step', '1')])
    R.check('604800 points -> 400 points limit',
            r.status == 400 and 'maximum resolution of 11,000 points' in r.text(), r)
    r, _ = get_json(port, '/loki/api/v1/query_range',
                    [('query', '{service_name="claude-code"}'), ('limit', '100000'),
                     ('start', str(t_lo)), ('end', str(t_hi))])
    R.check('limit 100000 -> 400 max entries limit',
            r.status == 400 and 'max_entries_limit_per_query' in r.text(), r)
    r, _ = get_json(port, '/loki/api/v1/query_range',
                    [('query', '{service_name="claude-code"} |~ "(a{1001})+"'),
                     ('start', str(t_lo)), ('end', str(t_hi))])
    R.check('regex repeat bomb -> 400', r.status == 400 and 'invalid repeat count' in r.text(), r)
    r, _ = get_json(port, '/loki/api/v1/query_range',
                    [('query', '{service_name="claude-code"} |~ "^(\\\\w+\\\\s?)*$!"'),
                     ('start', str(t_lo)), ('end', str(t_hi))])
    R.check('catastrophic backtracking regex answers (match limit) instead of hanging',
            r.status == 200, r)
    r, _ = instant(port, '{service_name="claude-code"}', t_hi)
    R.check('log query as an instant query -> 400',
            r.status == 400 and 'not supported as an instant query' in r.text(), r)
    r, _ = instant(port, 'count_over_time({service_name=~".*"}[5m])', t_hi)
    R.check('empty-compatible selector -> 400',
            r.status == 400 and 'at least one regexp or equality matcher' in r.text(), r)

    # --- labels with a LogQL query, Grafana's health check ---
    r, j = get_json(port, '/loki/api/v1/labels',
                    [('query', '{service_name="claude-code"} |= "x"'),
                     ('start', str(t_lo)), ('end', str(t_hi))])
    R.check('labels?query= accepts a LogQL pipeline', 'event_name' in ((j or {}).get('data') or []),
            r)
    # --- index/stats (Grafana's "this query will process" hint): no envelope ---
    rng = [('start', str(t_lo)), ('end', str(t_hi))]
    r, j = get_json(port, '/loki/api/v1/index/stats',
                    [('query', '{service_name="claude-code"} |= "x"')] + rng)
    r2, j2 = get_json(port, '/loki/api/v1/series', [('match[]', '{service_name="claude-code"}')] + rng)
    n_streams = len((j2 or {}).get('data') or [])
    R.eq('index/stats counts what the selector holds (the pipeline is not applied, as in Loki)',
         j, {'streams': n_streams, 'chunks': n_streams, 'entries': len(logs),
             'bytes': sum(len(l[1].encode()) for l in logs)})
    r, _ = get_json(port, '/loki/api/v1/index/stats', [('query', '{service_name=')] + rng)
    R.check('index/stats with a broken selector -> 400 parse error',
            r.status == 400 and 'parse error' in r.text(), r)
    r, j = instant(port, 'vector(1)+vector(1)', 4000000000)
    R.eq('Grafana health check vector(1)+vector(1)',
         [s['value'][1] for s in (j or {}).get('data', {}).get('result') or []], ['2'])

    # --- the CLI ---
    end_s = str(t_hi // 10**9)
    since = '%dh' % window_h
    p = subprocess.run([binary(), 'logs', q, '--since', since, '--end', end_s, '--step', '1m',
                        '--server', 'http://127.0.0.1:%d' % port],
                       capture_output=True, text=True, timeout=60)
    R.check('skillscope logs runs a metric query', p.returncode == 0 and '{}' in p.stdout,
            p.stdout + p.stderr)
    p = subprocess.run([binary(), 'logs', '{service_name="claude-code"} |= "%s"' % body,
                        '--since', since, '--end', end_s, '--limit', '2',
                        '--server', 'http://127.0.0.1:%d' % port],
                       capture_output=True, text=True, timeout=60)
    out_lines = [x for x in p.stdout.splitlines() if x.strip()]
    R.check('skillscope logs prints log lines (time, labels, line)',
            p.returncode == 0 and len(out_lines) == 2 and all(body in x for x in out_lines),
            p.stdout + p.stderr)
    p = subprocess.run([binary(), 'logs', '{service_name=', '--server',
                        'http://127.0.0.1:%d' % port], capture_output=True, text=True, timeout=60)
    R.check('skillscope logs reports a parse error', p.returncode == 1 and
            'parse error at line 1' in p.stderr, p.stderr)

    R.check('server still running', srv.alive(), srv.log_tail())
    srv.stop()
