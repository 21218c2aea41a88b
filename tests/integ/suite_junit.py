"""suite_junit.py - `skillscope import junit` with reports written by real test runners.

Why: most test suites can write JUnit XML without any OpenTelemetry instrumentation; the import
must understand what the tools actually write, not only our own fixtures, and deliver it so the
trace API shows one span per test with the right result and status.

How: node's test runner (--test-reporter=junit), ctest (--output-junit) and pytest (when
`python3 -m pytest` exists; skipped with a printed reason otherwise) run small test projects in
temp dirs; their reports are imported into a real server and read back with GET
/api/traces/<id> (the id the import prints). Also: re-import sends nothing and duplicates
nothing, an interrupted import is completed by the next one, vcs.* come from a real git
repository and are absent outside one, flags override git, --skill-file/--attr/--service land on
the resource, broken XML exits 1 with file:line:col, a server that is down exits 1 with a clear
message, and a report too big for one request (the server takes 16 MiB) arrives whole in
several.
"""

import json
import os
import re
import shutil
import subprocess
import time

from harness import R, Server, binary, free_ports, http, tmpdir

NODE_TEST = r"""
import test from 'node:test';
import assert from 'node:assert';
test('adds numbers', () => { assert.strictEqual(1 + 1, 2); });
test('compares strings', () => { assert.strictEqual('pdf', 'xlsx'); });
test('needs the network', { skip: 'offline today' }, () => {});
test.describe('skill loader', () => {
  test('loads SKILL.md', () => {});
  test('rejects a bad manifest', () => { throw new Error('bad manifest <front matter>'); });
});
"""

CMAKE = """cmake_minimum_required(VERSION 3.16)
project(junitdemo NONE)
enable_testing()
add_test(NAME passes COMMAND true)
add_test(NAME fails COMMAND false)
add_test(NAME skipped77 COMMAND sh -c "exit 77")
set_tests_properties(skipped77 PROPERTIES SKIP_RETURN_CODE 77)
add_test(NAME prints COMMAND sh -c "echo hello-from-ctest; exit 1")
"""

PYTEST = r"""
import pytest

@pytest.fixture
def broken():
    raise RuntimeError("fixture exploded")

class TestRouter:
    def test_routes_pdf(self, record_property):
        record_property("category", "routing")
        assert "pdf" == "pdf"

    def test_routes_xlsx(self):
        assert "csv" == "xlsx", "expected the xlsx skill"

@pytest.mark.skip(reason="needs a GPU")
def test_gpu():
    pass

def test_setup_error(broken):
    pass
"""


def sh(args, cwd=None, timeout=120, env=None):
    try:
        p = subprocess.run(args, cwd=cwd, capture_output=True, timeout=timeout,
                           stdin=subprocess.DEVNULL, env=env)
        return p.returncode, p.stdout.decode('utf-8', 'replace'), p.stderr.decode('utf-8',
                                                                                  'replace')
    except subprocess.TimeoutExpired:
        return 'timeout', '', ''


def importer(srv, files, cwd, extra=(), env=None):
    return sh([binary(), 'import', 'junit', '--server', 'http://127.0.0.1:%d' % srv.http_port]
              + list(extra) + list(files), cwd=cwd, env=env)


def trace_id_of(out, path):
    m = re.search(re.escape(path) + r': .*trace ([0-9a-f]{32})', out)
    return m.group(1) if m else None


def value(v):
    for k in ('stringValue', 'boolValue', 'doubleValue'):
        if k in v:
            return v[k]
    if 'intValue' in v:
        return int(v['intValue'])
    return None


def attrs(lst):
    return {a['key']: value(a['value']) for a in lst or []}


def get_trace(srv, tid):
    """Returns (resource attrs of the first batch, [span dicts with 'attrs'])."""
    r = http('GET', srv.http_port, '/api/traces/' + tid)
    if r.status != 200:
        return None, []
    j = r.json()
    res, spans = None, []
    for b in j.get('batches', []):
        if res is None:
            res = attrs(b.get('resource', {}).get('attributes'))
        for ss in b.get('scopeSpans', []):
            for sp in ss.get('spans', []):
                sp['attrs'] = attrs(sp.get('attributes'))
                spans.append(sp)
    return res, spans


def by_name(spans):
    return {s['name']: s for s in spans}


def status_code(sp):
    return sp.get('status', {}).get('code', 0)


def check_tree(label, spans):
    ids = [s['spanId'] for s in spans]
    R.eq('%s: span ids are unique' % label, len(ids), len(set(ids)))
    roots = [s for s in spans if not s.get('parentSpanId')]
    R.eq('%s: one root span' % label, len(roots), 1)
    orphans = [s['name'] for s in spans if s.get('parentSpanId') and s['parentSpanId'] not in ids]
    R.eq('%s: every parent is in the trace' % label, orphans, [])
    return roots[0] if roots else None


def expect_case(label, spans, name, result, code, msg_part=None):
    sp = by_name(spans).get(name)
    if not R.check('%s: span for test %r' % (label, name), sp is not None,
                   sorted(by_name(spans))):
        return None
    R.eq('%s %r: test.result' % (label, name), sp['attrs'].get('test.result'), result)
    R.eq('%s %r: status code' % (label, name), status_code(sp), code)
    R.check('%s %r: test.id set' % (label, name), bool(sp['attrs'].get('test.id')), sp['attrs'])
    if msg_part is not None:
        R.check('%s %r: status message names the failure' % (label, name),
                msg_part in sp.get('status', {}).get('message', ''), sp.get('status'))
    return sp


def node_part(srv, work):
    d = os.path.join(work, 'node')
    os.makedirs(d)
    with open(os.path.join(d, 'skills.test.mjs'), 'w') as f:
        f.write(NODE_TEST)
    rc, out, err = sh(['node', '--test', '--test-reporter=junit',
                        '--test-reporter-destination=node-results.xml', 'skills.test.mjs'], cwd=d)
    xml = os.path.join(d, 'node-results.xml')
    if not R.check('node wrote a JUnit report', os.path.exists(xml), (rc, out, err)):
        return
    # Outside any git repository, even if the temp dir lies inside one.
    no_git = dict(os.environ, GIT_CEILING_DIRECTORIES=work)
    rc, out, err = importer(srv, ['node-results.xml'], cwd=d, env=no_git)
    R.eq('node: import exits 0', rc, 0)
    R.check('node: summary line', re.search(r'node-results\.xml: 5 tests, 2 passed, 2 failed, '
                                            r'1 skipped; trace [0-9a-f]{32}$', out.strip()),
            (out, err))
    tid = trace_id_of(out, 'node-results.xml')
    if not R.check('node: trace id printed', tid, out):
        return
    res, spans = get_trace(srv, tid)
    R.eq('node: spans stored (root, suite, 5 tests)', len(spans), 7)
    check_tree('node', spans)
    R.eq('node: service.name defaults to junit', (res or {}).get('service.name'), 'junit')
    R.eq('node: outside a git repository there are no vcs.* attributes',
         sorted(k for k in (res or {}) if k.startswith('vcs.')), [])
    expect_case('node', spans, 'adds numbers', 'passed', 1)
    expect_case('node', spans, 'compares strings', 'failed', 2, 'strictly equal')
    sk = expect_case('node', spans, 'needs the network', 'skipped', 0)
    if sk:
        R.eq('node: skip message', sk['attrs'].get('test.skip.message'), 'offline today')
    expect_case('node', spans, 'loads SKILL.md', 'passed', 1)
    bad = expect_case('node', spans, 'rejects a bad manifest', 'failed', 2,
                      'bad manifest <front matter>')
    loader = by_name(spans).get('skill loader')
    if R.check('node: suite span for the describe block', loader is not None):
        if bad:
            R.eq('node: test under its suite', bad.get('parentSpanId'), loader['spanId'])
        R.eq('node: suite counts its failure', loader['attrs'].get('test.suite.failed'), 1)

    # Re-import: the same trace, nothing sent, no duplicates.
    rc, out2, err2 = importer(srv, ['node-results.xml'], cwd=d)
    R.eq('node: re-import exits 0', rc, 0)
    R.check('node: re-import says already imported', 'already imported' in out2, (out2, err2))
    R.eq('node: re-import prints the same trace id', trace_id_of(out2, 'node-results.xml'), tid)
    _, spans2 = get_trace(srv, tid)
    R.eq('node: no duplicate spans after re-import', len(spans2), len(spans))


def git(args, cwd):
    env = dict(os.environ, GIT_AUTHOR_NAME='t', GIT_AUTHOR_EMAIL='t@example.com',
               GIT_COMMITTER_NAME='t', GIT_COMMITTER_EMAIL='t@example.com',
               GIT_CONFIG_NOSYSTEM='1', HOME=cwd)
    return sh(['git'] + args, cwd=cwd, env=env)


def ctest_part(srv, work):
    if not shutil.which('cmake') or not shutil.which('ctest'):
        print('note: cmake/ctest not installed, ctest part skipped')
        return
    d = os.path.join(work, 'ctest')
    os.makedirs(d)
    with open(os.path.join(d, 'CMakeLists.txt'), 'w') as f:
        f.write(CMAKE)
    with open(os.path.join(d, 'SKILL.md'), 'w') as f:
        f.write('# demo skill\n')
    git(['init', '-q', '-b', 'feature/junit'], d)
    git(['add', 'CMakeLists.txt', 'SKILL.md'], d)
    git(['commit', '-q', '-m', 'demo'], d)
    _, sha, _ = git(['rev-parse', 'HEAD'], d)
    sha = sha.strip()
    with open(os.path.join(d, 'SKILL.md'), 'a') as f:
        f.write('changed\n')  # tracked and modified: dirty
    rc, out, err = sh(['cmake', '-S', '.', '-B', 'build'], cwd=d)
    if not R.check('cmake configures the demo project', rc == 0, (rc, out[-500:], err[-500:])):
        return
    rc, out, err = sh(['ctest', '--output-junit', 'ctest-results.xml'],
                       cwd=os.path.join(d, 'build'))
    xml = os.path.join(d, 'build', 'ctest-results.xml')
    if not R.check('ctest wrote a JUnit report', os.path.exists(xml), (rc, out, err)):
        return
    rc, out, err = importer(srv, ['build/ctest-results.xml'], cwd=d,
                            extra=['--skill-file', 'SKILL.md', '--attr', 'team=qa',
                                   '--attr', 'ci.run=42', '--service', 'skills-ci'])
    R.eq('ctest: import exits 0', rc, 0)
    R.check('ctest: summary line', '4 tests, 1 passed, 2 failed, 1 skipped' in out, (out, err))
    tid = trace_id_of(out, 'build/ctest-results.xml')
    if not R.check('ctest: trace id printed', tid, out):
        return
    res, spans = get_trace(srv, tid)
    res = res or {}
    R.eq('ctest: spans stored (root + 4 tests)', len(spans), 5)
    check_tree('ctest', spans)
    R.eq('ctest: vcs.branch from git', res.get('vcs.branch'), 'feature/junit')
    R.eq('ctest: vcs.commit.sha from git', res.get('vcs.commit.sha'), sha)
    R.eq('ctest: vcs.dirty from git (a tracked file changed)', res.get('vcs.dirty'), True)
    R.eq('ctest: --service', res.get('service.name'), 'skills-ci')
    R.eq('ctest: --attr team=qa', res.get('team'), 'qa')
    R.eq('ctest: --attr ci.run=42', res.get('ci.run'), '42')
    h = res.get('skill.md.hash', '')
    R.check('ctest: skill.md.hash is 32 hex digits', re.fullmatch(r'[0-9a-f]{32}', h), h)
    expect_case('ctest', spans, 'passes', 'passed', 1)
    expect_case('ctest', spans, 'fails', 'failed', 2)
    expect_case('ctest', spans, 'skipped77', 'skipped', 0)
    pr = expect_case('ctest', spans, 'prints', 'failed', 2)
    if pr:
        R.check('ctest: system-out kept', 'hello-from-ctest' in pr['attrs'].get(
            'test.system_out', ''), pr['attrs'])

    # Flags win over git; a different SKILL.md gives a different hash.
    with open(os.path.join(d, 'SKILL.md'), 'a') as f:
        f.write('changed again\n')
    shutil.copy(os.path.join(os.path.dirname(__file__), '..', 'data', 'junit', 'go.xml'),
                os.path.join(d, 'go.xml'))
    rc, out, err = importer(srv, ['go.xml'], cwd=d,
                            extra=['--branch', 'release', '--commit', 'abc123', '--dirty',
                                   'false', '--skill-file', 'SKILL.md'])
    R.eq('flags: import exits 0', rc, 0)
    tid2 = trace_id_of(out, 'go.xml')
    res2, spans2 = get_trace(srv, tid2) if tid2 else ({}, [])
    res2 = res2 or {}
    R.eq('flags: --branch wins over git', res2.get('vcs.branch'), 'release')
    R.eq('flags: --commit wins over git', res2.get('vcs.commit.sha'), 'abc123')
    R.eq('flags: --dirty false wins over git', res2.get('vcs.dirty'), False)
    R.check('flags: SKILL.md changed, so its hash did',
            res2.get('skill.md.hash') not in (None, h), (h, res2.get('skill.md.hash')))
    R.eq('go fixture: root + 2 suites + 4 tests', len(spans2), 7)


def pytest_part(srv, work):
    py = None
    for cand in ('python3', '/usr/bin/python3'):
        rc, _, _ = sh([cand, '-m', 'pytest', '--version'])
        if rc == 0:
            py = cand
            break
    if not py:
        print('note: pytest is not installed (apt-get install python3-pytest), pytest part '
              'skipped')
        return
    d = os.path.join(work, 'pytest')
    os.makedirs(d)
    with open(os.path.join(d, 'test_skills.py'), 'w') as f:
        f.write(PYTEST)
    rc, out, err = sh([py, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
                        '--junitxml=pytest-results.xml', 'test_skills.py'], cwd=d)
    xml = os.path.join(d, 'pytest-results.xml')
    if not R.check('pytest wrote a JUnit report', os.path.exists(xml), (rc, out, err)):
        return
    rc, out, err = importer(srv, ['pytest-results.xml'], cwd=d)
    R.eq('pytest: import exits 0', rc, 0)
    R.check('pytest: summary line', '4 tests, 1 passed, 2 failed, 1 skipped' in out, (out, err))
    tid = trace_id_of(out, 'pytest-results.xml')
    if not R.check('pytest: trace id printed', tid, out):
        return
    _, spans = get_trace(srv, tid)
    R.eq('pytest: spans stored (root + 4 tests)', len(spans), 5)
    check_tree('pytest', spans)
    ok = expect_case('pytest', spans, 'test_routes_pdf', 'passed', 1)
    if ok:
        R.eq('pytest: test.id', ok['attrs'].get('test.id'),
             'test_skills.TestRouter.test_routes_pdf')
        R.eq('pytest: category from record_property', ok['attrs'].get('test.category'),
             'routing')
    bad = expect_case('pytest', spans, 'test_routes_xlsx', 'failed', 2, 'expected the xlsx skill')
    if bad:
        R.eq('pytest: category from the class name', bad['attrs'].get('test.category'),
             'TestRouter')
    expect_case('pytest', spans, 'test_gpu', 'skipped', 0)
    er = expect_case('pytest', spans, 'test_setup_error', 'failed', 2, 'fixture exploded')
    if er:
        R.eq('pytest: an error is a failure of kind error',
             er['attrs'].get('test.failure.kind'), 'error')


def bad_input_part(srv, work):
    d = os.path.join(work, 'bad')
    os.makedirs(d)
    with open(os.path.join(d, 'broken.xml'), 'w') as f:
        f.write('<testsuite name="x">\n<testcase name="a">\n</testsuite>\n')
    with open(os.path.join(d, 'good.xml'), 'w') as f:
        f.write('<testsuite name="good"><testcase name="only" time="0.1"/></testsuite>\n')
    rc, out, err = importer(srv, ['broken.xml', 'good.xml'], cwd=d)
    R.eq('broken XML: exit status 1', rc, 1)
    R.check('broken XML: error names file:line:col',
            'broken.xml:3:3: mismatched tag' in err, err)
    tid = trace_id_of(out, 'good.xml')
    R.check('broken XML: the other file is still imported', tid, (out, err))
    if tid:
        _, spans = get_trace(srv, tid)
        R.eq('broken XML: good file stored', len(spans), 2)

    rc, out, err = importer(srv, ['missing.xml'], cwd=d)
    R.eq('missing file: exit status 1', rc, 1)
    R.check('missing file: says so', 'missing.xml: No such file or directory' in err, err)

    port = free_ports(1)[0]
    rc, out, err = sh([binary(), 'import', 'junit', '--server', 'http://127.0.0.1:%d' % port,
                        'good.xml'], cwd=d)
    R.eq('server down: exit status 1', rc, 1)
    R.check('server down: clear message',
            'cannot reach the server at http://127.0.0.1:%d' % port in err
            and 'refused' in err.lower(), err)

    rc, out, err = sh([binary(), 'import', 'junit', '--dirty', 'maybe', 'good.xml'], cwd=d)
    R.eq('bad flag value: exit status 2', rc, 2)
    rc, out, err = sh([binary(), 'import', 'junit', '--help'])
    R.check('import --help exits 0 and shows the synopsis',
            rc == 0 and 'skillscope import junit FILE' in out, (rc, out, err))


def resume_part(srv, work):
    """An import cut short (some spans stored, the rest not) is completed by running it again:
    a second server gives the exact spans the import makes; two of them are stored first."""
    d = os.path.join(work, 'resume')
    os.makedirs(d)
    with open(os.path.join(d, 'resume.xml'), 'w') as f:
        f.write('<testsuite name="resume" timestamp="2026-01-02T03:04:05Z">'
                + ''.join('<testcase classname="r.C" name="t%d" time="0.5"/>' % i
                          for i in range(5))
                + '</testsuite>')
    ref = Server(name='junit-ref')
    ref.start()
    try:
        rc, out, err = importer(ref, ['resume.xml'], cwd=d)
        tid = trace_id_of(out, 'resume.xml')
        r = http('GET', ref.http_port, '/api/traces/%s' % tid) if tid else None
    finally:
        ref.stop()
    if not R.check('resume: reference import', rc == 0 and r is not None and r.status == 200,
                   (rc, out, err)):
        return
    j = r.json()
    for b in j['batches']:
        for ss in b['scopeSpans']:
            ss['spans'] = [sp for sp in ss['spans'] if sp['name'] in ('t1', 't3')]
    body = json.dumps({'resourceSpans': j['batches']}).encode()
    pr = http('POST', srv.http_port, '/v1/traces', body=body,
              headers={'Content-Type': 'application/json'})
    R.eq('resume: two of the spans stored first', pr.status, 200)
    rc, out, err = importer(srv, ['resume.xml'], cwd=d)
    R.eq('resume: import exits 0', rc, 0)
    R.check('resume: says what it completed', 'completed: 4 of 6 spans were missing' in out,
            (out, err))
    R.eq('resume: same trace id', trace_id_of(out, 'resume.xml'), tid)
    _, spans = get_trace(srv, tid)
    R.eq('resume: every span once', sorted(s['name'] for s in spans),
         ['resume', 't0', 't1', 't2', 't3', 't4'])
    check_tree('resume', spans)


def big_part(srv, work):
    """A report whose spans do not fit one request (the server takes 16 MiB)."""
    d = os.path.join(work, 'big')
    os.makedirs(d)
    n = 1500
    chunk = 'x' * 16000
    with open(os.path.join(d, 'big.xml'), 'w') as f:
        f.write('<testsuite name="big">\n')
        for i in range(n):
            f.write('<testcase classname="big.Case" name="t%05d" time="0.001">'
                    '<system-out>%s</system-out></testcase>\n' % (i, chunk))
        f.write('</testsuite>\n')
    t0 = time.monotonic()
    rc, out, err = importer(srv, ['big.xml'], cwd=d)
    dt = time.monotonic() - t0
    print('measured: import of a %.1f MiB report (%d tests) took %.2f s'
          % (os.path.getsize(os.path.join(d, 'big.xml')) / 1048576.0, n, dt))
    R.eq('big report: import exits 0', rc, 0)
    tid = trace_id_of(out, 'big.xml')
    if R.check('big report: trace id printed', tid, (out, err)):
        _, spans = get_trace(srv, tid)
        R.eq('big report: every span arrived', len(spans), n + 1)


def run():
    srv = Server(name='junit')
    srv.start()
    work = tmpdir('ss-junit-work-')
    try:
        if shutil.which('node'):
            node_part(srv, work)
        else:
            print('note: node is not installed, node part skipped')
        ctest_part(srv, work)
        pytest_part(srv, work)
        bad_input_part(srv, work)
        resume_part(srv, work)
        big_part(srv, work)
    finally:
        srv.stop()
        shutil.rmtree(work, ignore_errors=True)
