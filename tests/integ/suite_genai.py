"""suite_genai.py - AI-usage metrics from a real Claude Code session and from GenAI spans.

Why: dashboards need tokens, cost, errors and tool outcomes as plain Prometheus series, whether
they came as Claude Code events (log records) or as OpenTelemetry GenAI spans.

How: the committed Claude Code capture is replayed as recorded; the expected totals per model,
token type, tool and decision are summed here from its api_request / api_error / tool_result /
tool_decision events and compared with genai_* series. Then GenAI spans without a cost are sent
with a `pricing:` table in the config: the cost must be tokens x price of the longest matching
model prefix; a failed span counts as an error, an execute_tool span as a tool call.
"""

import json
import os
import random
import time

from harness import R, Server, get_json, http, tmpdir
from suite_claude_code import load_capture


def val(v):
    (k, x), = v.items()
    return float(x) if k in ('intValue', 'doubleValue') else x


def expected(capture):
    exp = {'cost': {}, 'tokens': {}, 'requests': {}, 'errors': {}, 'tools': {}, 'decisions': {}}

    def inc(d, k, v=1.0):
        d[k] = d.get(k, 0.0) + v
    for rec in capture:
        if rec['signal'] != 'logs':
            continue
        for rl in rec['raw_json']['resourceLogs']:
            for sl in rl['scopeLogs']:
                for lr in sl['logRecords']:
                    a = {x['key']: val(x['value']) for x in lr['attributes']}
                    ev = a.get('event.name')
                    if ev == 'api_request':
                        m = a['model']
                        inc(exp['requests'], m)
                        inc(exp['cost'], m, a['cost_usd'])
                        for t in ('input', 'output', 'cache_read', 'cache_creation'):
                            inc(exp['tokens'], (m, t), float(a[t + '_tokens']))
                    elif ev == 'api_error':
                        inc(exp['errors'], (a['model'], str(int(a['status_code']))))
                    elif ev == 'tool_result':
                        inc(exp['tools'], (a['tool_name'],
                                           'success' if a['success'] == 'true' else 'failure'))
                    elif ev == 'tool_decision':
                        inc(exp['decisions'], (a['tool_name'], a['decision']))
    return exp


def q(port, expr, keys):
    r, body = get_json(port, '/api/v1/query', [('query', expr)])
    if r.status != 200 or not body:
        R.check('query ' + expr, False, r.text()[:300])
        return {}
    out = {}
    for s in body['data']['result']:
        k = tuple(s['metric'].get(x, '') for x in keys)
        out[k[0] if len(k) == 1 else k] = round(float(s['value'][1]), 9)
    return out


def rounded(d):
    return {k: round(v, 9) for k, v in d.items()}


def attr(k, v):
    if isinstance(v, int):
        return {'key': k, 'value': {'intValue': str(v)}}
    return {'key': k, 'value': {'stringValue': v}}


def genai_spans():
    rnd = random.Random(3)
    now = time.time_ns()

    def span(name, attrs, status=1, dur_ms=1200):
        return {'traceId': '%032x' % rnd.getrandbits(128), 'spanId': '%016x' % rnd.getrandbits(64),
                'name': name, 'kind': 3, 'startTimeUnixNano': str(now - dur_ms * 1000000),
                'endTimeUnixNano': str(now), 'attributes': attrs, 'status': {'code': status}}
    spans = [
        span('chat claude-sonnet-4-5', [attr('gen_ai.operation.name', 'chat'),
                                        attr('gen_ai.request.model', 'claude-sonnet-4-5'),
                                        attr('gen_ai.agent.name', 'planner'),
                                        attr('gen_ai.usage.input_tokens', 1000),
                                        attr('gen_ai.usage.output_tokens', 200)]),
        span('chat gpt-4o-mini', [attr('gen_ai.operation.name', 'chat'),
                                  attr('gen_ai.request.model', 'gpt-4o-mini'),
                                  attr('gen_ai.usage.input_tokens', 500),
                                  attr('gen_ai.usage.output_tokens', 100)]),
        span('chat claude-sonnet-4-5', [attr('gen_ai.operation.name', 'chat'),
                                        attr('gen_ai.request.model', 'claude-sonnet-4-5'),
                                        attr('error.type', 'rate_limited')], status=2),
        span('execute_tool search', [attr('gen_ai.operation.name', 'execute_tool'),
                                     attr('gen_ai.tool.name', 'search')]),
        span('execute_tool search', [attr('gen_ai.operation.name', 'execute_tool'),
                                     attr('gen_ai.tool.name', 'search')], status=2),
    ]
    return {'resourceSpans': [{'resource': {'attributes': [attr('service.name', 'agents')]},
                               'scopeSpans': [{'scope': {'name': 'x'}, 'spans': spans}]}]}


def run():
    d = tmpdir('ss-genai-')
    cfg = os.path.join(d, 'skillscope.yaml')
    with open(cfg, 'w') as f:
        f.write('span_metrics:\n  flush_interval: 1s\n'
                'pricing:\n'
                '  - {model: claude-sonnet-4, input: 3, output: 15}\n'
                '  - {model: claude, input: 100, output: 100}\n'
                '  - {model: gpt-4o-mini, input: 0.15, output: 0.6}\n')
    srv = Server(extra_args=['--config', cfg], name='genai')
    srv.start()
    capture = load_capture()
    for rec in capture:
        r = http('POST', srv.otlp_port, rec['path'], json.dumps(rec['raw_json']).encode(),
                 {'Content-Type': 'application/json'})
        if r.status != 200:
            R.check('replay %s' % rec['path'], False, '%d %s' % (r.status, r.text()[:200]))
    r = http('POST', srv.otlp_port, '/v1/traces', json.dumps(genai_spans()).encode(),
             {'Content-Type': 'application/json'})
    R.eq('POST GenAI spans', r.status, 200)
    time.sleep(2.5)

    exp = expected(capture)
    R.check('capture has api requests', len(exp['cost']) > 0, exp)
    cc = 'service="claude-code"'
    R.eq('cost by model (reported cost_usd)',
         q(srv.http_port, 'sum by (model) (genai_cost_usd_total{%s})' % cc, ['model']),
         rounded(exp['cost']))
    R.eq('requests by model',
         q(srv.http_port, 'sum by (model) (genai_requests_total{%s})' % cc, ['model']),
         rounded(exp['requests']))
    R.eq('tokens by model and type',
         q(srv.http_port, 'sum by (model, type) (genai_tokens_total{%s})' % cc, ['model', 'type']),
         rounded(exp['tokens']))
    R.eq('errors by model and status',
         q(srv.http_port, 'sum by (model, error) (genai_errors_total{%s})' % cc,
           ['model', 'error']), rounded(exp['errors']))
    R.eq('tool calls by tool and outcome',
         q(srv.http_port, 'sum by (tool, outcome) (genai_tool_calls_total{%s})' % cc,
           ['tool', 'outcome']), rounded(exp['tools']))
    R.eq('tool decisions',
         q(srv.http_port, 'sum by (tool, decision) (genai_tool_decisions_total{%s})' % cc,
           ['tool', 'decision']), rounded(exp['decisions']))

    ag = 'service="agents"'
    R.eq('priced cost of GenAI spans (longest prefix wins)',
         q(srv.http_port, 'sum by (model) (genai_cost_usd_total{%s})' % ag, ['model']),
         {'claude-sonnet-4-5': round(1000 * 3 / 1e6 + 200 * 15 / 1e6, 9),
          'gpt-4o-mini': round(500 * 0.15 / 1e6 + 100 * 0.6 / 1e6, 9)})
    R.eq('GenAI span tokens',
         q(srv.http_port, 'sum by (model, type) (genai_tokens_total{%s})' % ag, ['model', 'type']),
         {('claude-sonnet-4-5', 'input'): 1000.0, ('claude-sonnet-4-5', 'output'): 200.0,
          ('gpt-4o-mini', 'input'): 500.0, ('gpt-4o-mini', 'output'): 100.0})
    R.eq('agent label', q(srv.http_port, 'sum by (agent) (genai_requests_total{%s})' % ag,
                          ['agent']), {'planner': 1.0, '': 1.0})
    R.eq('GenAI span errors', q(srv.http_port, 'genai_errors_total{%s}' % ag, ['error']),
         {'rate_limited': 1.0})
    R.eq('GenAI tool calls', q(srv.http_port, 'genai_tool_calls_total{%s}' % ag, ['outcome']),
         {'success': 1.0, 'failure': 1.0})
    n = q(srv.http_port, 'genai_request_duration_seconds_count{%s}' % ag, ['model'])
    R.eq('request durations observed', n, {'claude-sonnet-4-5': 1.0, 'gpt-4o-mini': 1.0})

    bad = os.path.join(d, 'bad.yaml')
    with open(bad, 'w') as f:
        f.write('pricing:\n  - model: x\n    input: cheap\n')
    b = Server(extra_args=['--config', bad], name='genai-bad')
    try:
        b.start(ready_timeout=5)
        R.check('bad pricing refused', False, 'server started')
    except Exception as e:
        R.check('bad pricing refused with line', 'bad.yaml:3: pricing.input' in str(e),
                str(e)[-300:])
    srv.stop()
