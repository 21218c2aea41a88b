"""suite_traceql.py - TraceQL search and the Tempo search API over a generated skill-test run.

Why: skill-test results arrive as spans; "which tests failed on commit abc" must be one TraceQL
query away, through the endpoints Grafana's Tempo data source calls (TEMPO-API.md §3), and through
`skillscope traces` / `skillscope trace` on a terminal.

How: a run of 2 commits x 6 tests is generated here (one trace per test: a root span of service
skill-tests with test.id / test.result / durations and ERROR status for failures, a child LLM span
of service claude-agent), sent as OTLP protobuf over HTTP to the real binary. Expected answers are
computed from that description in Python, never taken from the server. Then tags, tag values,
limits, spss, minDuration, bad input, and the CLI's output.
"""

import os
import re
import subprocess
import time

from harness import R, Server, binary, get_json, http, qs
import pb

COMMITS = {'abc': {'t2', 't5'}, 'def': {'t3'}}  # commit -> failed tests
TESTS = ['t1', 't2', 't3', 't4', 't5', 't6']


def kv(key, **v):
    return {'key': key, 'value': v}


def hexid(n, width):
    return ('%0' + str(width) + 'x') % n


def make_run(base_ns):
    """The run: {trace_hex: info} and the OTLP/JSON requests (one per commit)."""
    traces = {}
    requests = []
    n = 0
    for ci, (commit, failed) in enumerate(sorted(COMMITS.items())):
        root_spans, llm_spans = [], []
        for ti, test in enumerate(TESTS):
            n += 1
            tid = hexid(0x5eed0000 + n, 32)
            root_id, llm_id = hexid(0x100 + n, 16), hexid(0x200 + n, 16)
            start = base_ns + n * 10_000_000_000
            dur = (ti + 1) * 1_000_000_000  # t1 1s ... t6 6s
            result = 'failed' if test in failed else 'passed'
            root = {'traceId': tid, 'spanId': root_id, 'name': 'test ' + test, 'kind': 2,
                    'startTimeUnixNano': str(start), 'endTimeUnixNano': str(start + dur),
                    'attributes': [kv('test.id', stringValue=test),
                                   kv('test.result', stringValue=result),
                                   kv('test.attempt', intValue='1'),
                                   kv('test-suite', stringValue='routing')],
                    'status': {'code': 2, 'message': 'assertion failed'} if result == 'failed'
                    else {'code': 1}}
            llm_start = start + 100_000_000
            llm_dur = dur // 2
            llm = {'traceId': tid, 'spanId': llm_id, 'parentSpanId': root_id, 'name': 'llm call',
                   'kind': 3, 'startTimeUnixNano': str(llm_start),
                   'endTimeUnixNano': str(llm_start + llm_dur),
                   'attributes': [kv('gen_ai.request.model', stringValue='claude-x'),
                                  kv('gen_ai.usage.input_tokens', intValue=str(100 * (ti + 1))),
                                  kv('test.id', stringValue=test)]}
            root_spans.append(root)
            llm_spans.append(llm)
            traces[tid] = {'commit': commit, 'test': test, 'result': result, 'start': start,
                           'dur': dur, 'root_id': root_id, 'llm_id': llm_id, 'llm_dur': llm_dur}
        res = lambda svc: {'attributes': [kv('service.name', stringValue=svc),  # noqa: E731
                                          kv('vcs.commit.sha', stringValue=commit)]}
        requests.append({'resourceSpans': [
            {'resource': res('skill-tests'),
             'scopeSpans': [{'scope': {'name': 'skill-runner', 'version': '1.0'},
                             'spans': root_spans}]},
            {'resource': res('claude-agent'),
             'scopeSpans': [{'scope': {'name': 'agent'}, 'spans': llm_spans}]}]})
    return traces, requests


def search(srv, q=None, **params):
    p = [('q', q)] if q is not None else []
    p += sorted(params.items())
    return get_json(srv.http_port, '/api/search', p)


def ids(j):
    return sorted(t['traceID'] for t in (j or {}).get('traces', []))


def expect_ids(traces, pred):
    return sorted(t for t, i in traces.items() if pred(i))


def check_search_shape(name, j, traces):
    """Every trace carries Tempo's fields with values computed from the run."""
    for t in j.get('traces', []):
        info = traces.get(t.get('traceID'))
        if not R.check(name + ': known trace id (32 hex digits)', info is not None, t):
            return
        R.eq(name + ': rootServiceName', t.get('rootServiceName'), 'skill-tests')
        R.eq(name + ': rootTraceName', t.get('rootTraceName'), 'test ' + info['test'])
        R.eq(name + ': startTimeUnixNano (string)', t.get('startTimeUnixNano'), str(info['start']))
        R.eq(name + ': durationMs', t.get('durationMs'), info['dur'] // 1_000_000)
        R.check(name + ': spanSet equals spanSets[0]',
                t.get('spanSets') and t.get('spanSet') == t['spanSets'][0], t)


def run():
    srv = Server(name='traceql')
    srv.start()
    try:
        _run(srv)
    finally:
        srv.stop()


def _run(srv):
    now_ns = time.time_ns()
    base_ns = now_ns - 3600 * 1_000_000_000
    traces, requests = make_run(base_ns)
    for i, req in enumerate(requests):
        r = http('POST', srv.http_port, '/v1/traces', pb.encode_request('traces', req),
                 {'Content-Type': 'application/x-protobuf'})
        R.eq('OTLP protobuf request %d accepted' % i, r.status, 200)
    start_s, end_s = base_ns // 10**9 - 60, now_ns // 10**9 + 60
    win = {'start': str(start_s), 'end': str(end_s)}

    # -- the question of the issue: the failed tests of one commit --
    q = '{ span.test.result = "failed" && resource.vcs.commit.sha = "abc" }'
    r, j = search(srv, q, **win)
    R.eq('failed tests of abc: HTTP 200', r.status, 200)
    want = expect_ids(traces, lambda i: i['commit'] == 'abc' and i['result'] == 'failed')
    R.eq('failed tests of abc: exactly those traces', ids(j), want)
    if j:
        check_search_shape('failed tests of abc', j, traces)
        for t in j.get('traces', []):
            info = traces[t['traceID']]
            ss = t['spanSets'][0]
            R.eq('failed of abc: matched', ss.get('matched'), 1)
            sp = ss['spans'][0] if ss.get('spans') else {}
            R.eq('failed of abc: matched span is the root', sp.get('spanID'), info['root_id'])
            R.eq('failed of abc: span name', sp.get('name'), 'test ' + info['test'])
            R.eq('failed of abc: durationNanos', sp.get('durationNanos'), str(info['dur']))
            R.eq('failed of abc: span start', sp.get('startTimeUnixNano'), str(info['start']))
            attrs = {a['key']: a['value'] for a in sp.get('attributes', [])}
            R.eq('failed of abc: filtered attributes reported',
                 attrs, {'test.result': {'stringValue': 'failed'},
                         'vcs.commit.sha': {'stringValue': 'abc'}})
        R.check('failed of abc: metrics.inspectedTraces',
                j.get('metrics', {}).get('inspectedTraces') == len(traces), j.get('metrics'))
    # The same without start/end (the whole store) and URL-encoded by a client library.
    r, j = search(srv, q)
    R.eq('failed tests of abc without start/end', ids(j), want)

    cases = [
        ('{ status = error }', lambda i: i['result'] == 'failed'),
        ('{ span:status = error && kind = server }', lambda i: i['result'] == 'failed'),
        ('{ .test.id = "t1" }', lambda i: i['test'] == 't1'),
        ('{ span.test.id =~ "t[12]" }', lambda i: i['test'] in ('t1', 't2')),
        ('{ span.test.id =~ "t" }', lambda i: False),  # regexes are fully anchored
        ('{ span.test.id !~ "t[12]" && kind = server }', lambda i: i['test'] not in ('t1', 't2')),
        ('{ duration > 4s && kind = server }', lambda i: i['dur'] > 4 * 10**9),
        ('{ duration >= 4500ms && name = "llm call" }', lambda i: i['llm_dur'] >= 4.5e9),
        ('{ traceDuration > 3s }', lambda i: i['dur'] > 3 * 10**9),
        ('{ rootServiceName = "skill-tests" && resource.service.name = "claude-agent" }',
         lambda i: True),
        ('{ rootName = "test t4" }', lambda i: i['test'] == 't4'),
        ('{ resource.service.name = "claude-agent" } && { span.test.result = "failed" }',
         lambda i: i['result'] == 'failed'),
        ('{ name = "test t1" } || { name = "test t2" }', lambda i: i['test'] in ('t1', 't2')),
        ('{ span.gen_ai.usage.input_tokens >= 400 }', lambda i: TESTS.index(i['test']) >= 3),
        ('{ span.gen_ai.usage.input_tokens > 250.5 && span.gen_ai.usage.input_tokens < 450 }',
         lambda i: i['test'] in ('t3', 't4')),
        ('{ span.test-suite = "routing" && resource.vcs.commit.sha = "def" }',
         lambda i: i['commit'] == 'def'),
        ('{ span.test.result != nil && status != error && resource.vcs.commit.sha = "def" }',
         lambda i: i['commit'] == 'def' and i['result'] == 'passed'),
        ('{ span.nosuch != "x" }', lambda i: False),  # missing attribute: false even for !=
        ('{ span.nosuch = nil && kind = client && resource.vcs.commit.sha = "abc" }',
         lambda i: i['commit'] == 'abc'),
        ('{ statusMessage = "assertion failed" }', lambda i: i['result'] == 'failed'),
        ('{ instrumentation:name = "agent" && span.test.id = "t6" }', lambda i: i['test'] == 't6'),
        ('{ } | count() > 1', lambda i: True),
        ('{ } | count() > 2', lambda i: False),
        ('{ .test.id = "t5" } | count() = 2', lambda i: i['test'] == 't5'),
        ('{ kind = client } | avg(span.gen_ai.usage.input_tokens) > 350', lambda i:
         TESTS.index(i['test']) >= 3),
        ('{ kind = server } | max(duration) < 2s', lambda i: i['test'] == 't1'),
        ('({ span.test.id = "t1" } | count() = 2) && { status = ok }', lambda i: i['test'] == 't1'),
        ('{ (span.test.id = "t1" || span.test.id = "t2") && !(status = error) && kind = server }',
         lambda i: i['test'] == 't1' or (i['test'] == 't2' and i['result'] == 'passed')),
        ('{ span.test.attempt + 1 = 2 && kind = server && resource.vcs.commit.sha = "abc" }',
         lambda i: i['commit'] == 'abc'),
    ]
    for q, pred in cases:
        r, j = search(srv, q, limit='100', **win)
        if R.eq('%s: HTTP 200' % q, r.status, 200):
            R.eq(q, ids(j), expect_ids(traces, pred))

    # select() adds attributes to the reported spans.
    r, j = search(srv, '{ span.test.id = "t3" } | select(span.test.result, resource.vcs.commit.sha)',
                  **win)
    if R.eq('select(): HTTP 200', r.status, 200) and j.get('traces'):
        sp = j['traces'][0]['spanSets'][0]['spans'][0]
        keys = sorted(a['key'] for a in sp.get('attributes', []))
        R.eq('select(): selected attributes reported', keys,
             ['test.id', 'test.result', 'vcs.commit.sha'])

    # limit: newest first; spss: spans per spanset with the full matched count.
    r, j = search(srv, '{ }', limit='2', **win)
    newest = sorted(traces, key=lambda t: traces[t]['start'], reverse=True)[:2]
    R.eq('limit=2: the two newest traces, newest first', [t['traceID'] for t in j['traces']],
         newest)
    r, j = search(srv, '{ }', limit='1', spss='1', **win)
    ss = j['traces'][0]['spanSets'][0] if j and j.get('traces') else {}
    R.eq('spss=1: one span listed', len(ss.get('spans', [])), 1)
    R.eq('spss=1: matched counts both spans', ss.get('matched'), 2)
    r, j = search(srv, '{ }', limit='1', **win)
    ss = j['traces'][0]['spanSets'][0] if j and j.get('traces') else {}
    R.eq('default spss: both spans listed', len(ss.get('spans', [])), 2)
    r, j = search(srv, '{ }', **win)
    R.eq('default limit 20 (12 traces stored)', len(j.get('traces', [])), 12)
    # A window before the run finds nothing.
    r, j = search(srv, '{ }', start=str(start_s - 7200), end=str(start_s - 3600))
    R.eq('window before the run: no traces', j.get('traces') if j else None, [])

    # Legacy tag search with minDuration / maxDuration (trace durations).
    r, j = get_json(srv.http_port, '/api/search',
                    [('tags', 'test.result=failed'), ('minDuration', '2500ms')] + list(win.items()))
    R.eq('tags + minDuration', ids(j),
         expect_ids(traces, lambda i: i['result'] == 'failed' and i['dur'] >= 2.5e9))
    r, j = get_json(srv.http_port, '/api/search',
                    [('tags', 'service.name=claude vcs.commit.sha="abc"'),
                     ('maxDuration', '2s')] + list(win.items()))
    R.eq('tags (substring, quoted) + maxDuration', ids(j),
         expect_ids(traces, lambda i: i['commit'] == 'abc' and i['dur'] <= 2e9))
    r, j = get_json(srv.http_port, '/api/search', [('minDuration', '5s'), ('limit', '50')])
    R.eq('minDuration alone', ids(j), expect_ids(traces, lambda i: i['dur'] >= 5e9))

    # -- tags and tag values --
    r, j = get_json(srv.http_port, '/api/search/tags', list(win.items()))
    names = set((j or {}).get('tagNames', []))
    for k in ('test.id', 'test.result', 'test-suite', 'gen_ai.request.model', 'service.name',
              'vcs.commit.sha'):
        R.check('v1 tags: %s listed' % k, k in names, sorted(names))
    R.eq('v1 tags: sorted', (j or {}).get('tagNames'), sorted(names))
    r, j = get_json(srv.http_port, '/api/v2/search/tags', list(win.items()))
    scopes = {s['name']: s['tags'] for s in (j or {}).get('scopes', [])}
    R.eq('v2 tags: scopes', sorted(scopes), ['intrinsic', 'resource', 'span'])
    R.eq('v2 tags: resource scope', scopes.get('resource'), ['service.name', 'vcs.commit.sha'])
    R.eq('v2 tags: span scope', scopes.get('span'),
         sorted(['test.id', 'test.result', 'test.attempt', 'test-suite', 'gen_ai.request.model',
                 'gen_ai.usage.input_tokens']))
    for k in ('status', 'kind', 'name', 'duration', 'rootServiceName', 'traceDuration'):
        R.check('v2 tags: intrinsic %s' % k, k in scopes.get('intrinsic', []), scopes)
    r, j = get_json(srv.http_port, '/api/v2/search/tags', [('scope', 'resource')])
    R.eq('v2 tags scope=resource', [s['name'] for s in (j or {}).get('scopes', [])], ['resource'])
    r, j = get_json(srv.http_port, '/api/v2/search/tags',
                    [('scope', 'span'), ('q', '{ resource.service.name = "skill-tests" }')])
    R.eq('v2 tags filtered by q', (j or {}).get('scopes', [{}])[0].get('tags'),
         ['test-suite', 'test.attempt', 'test.id', 'test.result'])

    r, j = get_json(srv.http_port, '/api/search/tag/test.result/values', list(win.items()))
    R.eq('v1 tag values', (j or {}).get('tagValues'), ['failed', 'passed'])
    r, j = get_json(srv.http_port, '/api/v2/search/tag/resource.vcs.commit.sha/values', [])
    R.eq('v2 tag values (string)', (j or {}).get('tagValues'),
         [{'type': 'string', 'value': 'abc'}, {'type': 'string', 'value': 'def'}])
    r, j = get_json(srv.http_port, '/api/v2/search/tag/span.gen_ai.usage.input_tokens/values', [])
    R.eq('v2 tag values (int)', (j or {}).get('tagValues'),
         [{'type': 'int', 'value': str(100 * k)} for k in range(1, 7)])
    r, j = get_json(srv.http_port, '/api/v2/search/tag/status/values', [])
    R.eq('v2 tag values (status keywords)', (j or {}).get('tagValues'),
         [{'type': 'keyword', 'value': v} for v in ('unset', 'ok', 'error')])
    r, j = get_json(srv.http_port, '/api/v2/search/tag/name/values',
                    [('q', '{ resource.service.name = "claude-agent" }')])
    R.eq('v2 tag values (name, filtered by q)', (j or {}).get('tagValues'),
         [{'type': 'string', 'value': 'llm call'}])
    r, j = get_json(srv.http_port, '/api/v2/search/tag/.test.id/values', [('limit', '3')])
    R.eq('v2 tag values: unscoped, limit', len((j or {}).get('tagValues', [])), 3)

    # -- misc endpoints --
    r = http('GET', srv.http_port, '/api/echo')
    R.eq('echo', (r.status, r.text()), (200, 'echo'))
    r, j = get_json(srv.http_port, '/api/status/buildinfo')
    R.check('buildinfo: a version >= 2.6 for Grafana', r.status == 200 and j and
            tuple(int(x) for x in j['version'].split('.')[:2]) >= (2, 6), j)
    tid = want[0] if want else next(iter(traces))
    r = http('GET', srv.http_port, '/api/v2/traces/' + tid, headers={'Accept': 'application/json'})
    R.eq('a found trace opens by id', r.status, 200)

    # -- bad input --
    def bad(name, path, params, status, needle):
        r = http('GET', srv.http_port, path + '?' + qs(params))
        R.eq(name + ': status', r.status, status)
        R.check(name + ': message', needle in r.text(), r.text())

    bad('malformed TraceQL', '/api/search', [('q', '{ span.a = }')], 400,
        'invalid TraceQL query: parse error at line 1, col 12')
    bad('TraceQL type error', '/api/search', [('q', '{ status > ok }')], 400,
        'parse error at line 1, col 10')
    bad('unsupported TraceQL', '/api/search', [('q', '{ } >> { }')], 400,
        'structural operator >> is not supported')
    bad('TraceQL metrics', '/api/search', [('q', '{ } | rate()')], 400, 'not supported')
    bad('limit 0', '/api/search', [('q', '{}'), ('limit', '0')], 400, 'invalid limit')
    bad('huge limit', '/api/search', [('q', '{}'), ('limit', '1000000')], 400,
        'exceeds the maximum of 10000')
    bad('bad spss', '/api/search', [('q', '{}'), ('spss', 'x')], 400, 'invalid spss')
    bad('huge time range', '/api/search', [('q', '{}'), ('start', '1'), ('end', str(end_s))],
        400, 'exceeds')
    bad('end before start', '/api/search', [('start', '200'), ('end', '100')], 400,
        'start must be before end')
    bad('bad start', '/api/search', [('start', 'yesterday')], 400, 'invalid start')
    bad('bad minDuration', '/api/search', [('minDuration', '5 parsecs')], 400,
        'invalid minDuration')
    bad('maxDuration < minDuration', '/api/search', [('minDuration', '2s'),
                                                    ('maxDuration', '1s')], 400, 'maxDuration')
    bad('bad tags', '/api/search', [('tags', 'novalue')], 400, 'invalid tags')
    bad('bad scope', '/api/v2/search/tags', [('scope', 'planet')], 400, 'invalid scope')
    bad('bad v2 tag name', '/api/v2/search/tag/nonsense/values', [], 400, 'parse error')
    r = http('GET', srv.http_port, '/api/traces/00000000000000000000000000abcdef')
    R.eq('unknown trace id: 404 (empty body, as Tempo)', (r.status, r.body), (404, b''))
    r = http('GET', srv.http_port, '/api/v2/traces/xyz')
    R.eq('bad trace id: 400', r.status, 400)
    r = http('GET', srv.http_port, '/api/v2/search/tags', headers={})
    R.eq('v2 tags after the bad requests: the server still answers', r.status, 200)

    check_cli(srv, traces, want)


def cli(args, timeout=30):
    p = subprocess.run([binary()] + args, capture_output=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout.decode('utf-8', 'replace'), p.stderr.decode('utf-8', 'replace')


def check_cli(srv, traces, want):
    url = 'http://127.0.0.1:%d' % srv.http_port
    rc, out, err = cli(['traces', '{ span.test.result = "failed" && resource.vcs.commit.sha = '
                        '"abc" }', '--since', '3h', '--server', url])
    R.eq('cli traces: exit 0', rc, 0)
    lines = [l for l in out.splitlines() if l.strip()]
    R.check('cli traces: header', lines and lines[0].split()[:3] == ['TRACE', 'ID', 'ROOT'] or
            lines and lines[0].startswith('TRACE ID'), out)
    got = sorted(re.findall(r'\b[0-9a-f]{32}\b', out))
    R.eq('cli traces: the failed tests of abc', got, want)
    for t in want:
        row = next((l for l in lines if t in l), '')
        info = traces[t]
        R.check('cli traces: row has root service, name, duration, matched',
                'skill-tests' in row and ('test ' + info['test']) in row and
                ('%ds' % (info['dur'] // 10**9)) in row and row.rstrip().endswith('1'), row)
    rc, out, err = cli(['traces', '{ span.a = }', '--server', url])
    R.check('cli traces: bad query is exit 1 with the position',
            rc == 1 and 'line 1, col 12' in err, (rc, out, err))
    rc, out, err = cli(['traces', '{ }', '--since', '3h', '--limit', '3', '--server', url])
    R.eq('cli traces --limit 3: three rows', len(re.findall(r'\b[0-9a-f]{32}\b', out)), 3)

    tid = want[0]
    info = traces[tid]
    rc, out, err = cli(['trace', tid, '--server', url])
    R.eq('cli trace: exit 0', rc, 0)
    lines = out.splitlines()
    root_line = next((l for l in lines if 'test ' + info['test'] in l), '')
    llm_line = next((l for l in lines if 'llm call' in l), '')
    R.check('cli trace: root span line with service, duration, error status',
            'skill-tests' in root_line and ('%ds' % (info['dur'] // 10**9)) in root_line and
            'error' in root_line.lower(), out)
    R.check('cli trace: child indented under root', llm_line and root_line and
            (len(llm_line) - len(llm_line.lstrip(' │├└─'))) >
            (len(root_line) - len(root_line.lstrip(' │├└─'))), out)
    R.check('cli trace: duration bars drawn', '█' in out or '#' in out, out)
    R.check('cli trace: key attributes shown', 'test.result=failed' in out, out)
    rc, out, err = cli(['trace', '00000000000000000000000000abcdef', '--server', url])
    R.check('cli trace: unknown id is exit 1 "not found"', rc == 1 and 'not found' in err,
            (rc, out, err))
    rc, out, err = cli(['trace', 'zz', '--server', url])
    R.check('cli trace: bad id is exit 2 or 1 with the message', rc in (1, 2) and
            'hex' in err, (rc, out, err))
