"""suite_cli.py - the command line: serve, start/status/stop/restart, version, help, bad flags.

Why: the first thing a user touches. `start` daemonises with a pidfile in the data dir, `status`
and `stop` find the server through that pidfile, an unknown flag is a one-line error naming it,
and an empty data dir is ready fast (DESIGN.md: start-up to ready <= 0.1 s; here only measured and
printed, with a 5 s cap as the check).

How: subprocess with timeouts; PIDs read from the pidfile are registered with run.sh's trap.
"""

import glob
import json
import os
import subprocess
import time

from harness import R, Server, binary, free_ports, http, now_ms, qs, register_pid, tmpdir


def sh(args, timeout=20):
    try:
        p = subprocess.run([binary()] + args, capture_output=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout.decode('utf-8', 'replace'), p.stderr.decode('utf-8',
                                                                                  'replace')
    except subprocess.TimeoutExpired:
        return 'timeout', '', ''


def pid_alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().split(')')[-1].split()[0] != 'Z'
    except OSError:
        return False


def read_pidfile(data_dir):
    files = [f for f in glob.glob(os.path.join(data_dir, '*'))
             if 'pid' in os.path.basename(f).lower() and os.path.isfile(f)]
    for f in files:
        try:
            with open(f) as fh:
                pid = int(fh.read().strip().split()[0])
            register_pid(pid)
            return f, pid
        except (ValueError, IndexError, OSError):
            continue
    return None, None


def wait_ready(port, timeout):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if http('GET', port, '/-/ready', timeout=1).status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


def wait_gone(pid, timeout):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


def run():
    rc, out, err = sh(['version'])
    R.check('`skillscope version` exits 0 and prints a version', rc == 0 and out.strip(),
            (rc, out, err))
    for args in (['help'], ['--help']):
        rc, out, err = sh(args)
        text = out + err
        R.check('`skillscope %s` exits 0' % ' '.join(args), rc == 0, (rc, text[:300]))
        R.check('`skillscope %s` lists the subcommands' % ' '.join(args),
                all(w in text for w in ('serve', 'start', 'stop', 'status')), text[:500])
    rc, out, err = sh(['serve', '--help'])
    R.check('`skillscope serve --help` exits 0 and documents --data-dir',
            rc == 0 and '--data-dir' in out + err, (rc, (out + err)[:300]))

    d = os.path.join(tmpdir('ss-cli-'), 'data')
    rc, out, err = sh(['serve', '--bogus', '--data-dir', d], timeout=10)
    R.check('`serve --bogus` exits non-zero', rc not in (0, 'timeout'), rc)
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    R.check('`serve --bogus` prints a one-line error naming --bogus',
            len(lines) == 1 and '--bogus' in lines[0], err[:500])
    rc, out, err = sh(['frobnicate'], timeout=10)
    R.check('unknown subcommand exits non-zero with a message', rc not in (0, 'timeout')
            and 'frobnicate' in out + err, (rc, out[:200], err[:200]))

    # serve: time to ready on an empty dir, clean SIGTERM
    srv = Server(name='cli-serve')
    dt = srv.start(ready_timeout=5)
    print('   /-/ready answered %.3f s after spawn (empty data dir)' % dt, flush=True)
    R.check('/-/ready within 5 s of start on an empty dir', dt < 5, dt)
    rc = srv.stop()
    R.eq('serve exits 0 on SIGTERM', rc, 0)
    dt = srv.start(ready_timeout=5)
    print('   /-/ready answered %.3f s after spawn (existing data dir)' % dt, flush=True)
    R.check('/-/ready within 5 s of restart on the same dir', dt < 5, dt)
    r = http('GET', srv.http_port, '/')
    R.eq('GET / on the main port answers 200', r.status, 200)
    R.check('GET / is an HTML page', r.ctype().startswith('text/html'), r.ctype())
    R.check('GET / shows the OTLP endpoint with this server\'s OTLP port',
            ('OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:%d' % srv.otlp_port).encode() in r.body,
            r.body[:300])
    R.eq('GET / on the OTLP port is not the home page', http('GET', srv.otlp_port, '/').status, 404)
    srv.stop()

    for mode in ('batch', 'always', 'off'):
        srv = Server(name='cli-fsync-' + mode, extra_args=['--wal-fsync', mode])
        srv.start(ready_timeout=5)
        r = http('POST', srv.otlp_port, '/v1/logs', b'{}', {'Content-Type': 'application/json'})
        R.eq('serve --wal-fsync %s: ready and ingests' % mode, r.status, 200)
        R.eq('serve --wal-fsync %s: exits 0 on SIGTERM' % mode, srv.stop(), 0)
    rc, out, err = sh(['serve', '--data-dir', d, '--wal-fsync', 'sometimes'], timeout=10)
    R.check('`serve --wal-fsync sometimes` exits non-zero naming the bad value',
            rc not in (0, 'timeout') and 'sometimes' in err, (rc, err[:300]))

    check_query()

    # start / status / stop / restart
    d = os.path.join(tmpdir('ss-cli-'), 'data')
    p, q, g = free_ports(3)
    common = ['--data-dir', d, '--listen', '127.0.0.1', '--http-port', str(p),
              '--otlp-http-port', str(q), '--otlp-grpc-port', str(g)]
    rc, out, err = sh(['start'] + common)
    R.check('`start` exits 0', rc == 0, (rc, out[:300], err[:300]))
    R.check('`start` returns with the server ready within 5 s', wait_ready(p, 5))
    f, pid = read_pidfile(d)
    if not R.check('`start` writes a pidfile in the data dir', pid is not None,
                   os.listdir(d) if os.path.isdir(d) else 'no data dir'):
        return
    R.check('pidfile names a live skillscope process', pid_alive(pid), pid)
    rc, out, err = sh(['status'] + common)
    R.check('`status` with the start flags exits 0 while running', rc == 0,
            (rc, out[:300], err[:300]))
    rc, out, err = sh(['status', '--data-dir', d])
    R.check('`status --data-dir D` alone exits 0 while running (finds the port via the data dir)',
            rc == 0, (rc, out[:300], err[:300]))
    R.check('`status` says it is running (pid %d)' % pid,
            str(pid) in out + err or 'running' in (out + err).lower(), out[:300] + err[:300])
    rc, out, err = sh(['start'] + common)
    R.check('a second `start` on the same dir fails', rc not in (0, 'timeout'),
            (rc, out[:200], err[:200]))
    R.check('the first server still answers after the refused start', wait_ready(p, 2))
    rc, out, err = sh(['restart'] + common, timeout=30)
    R.check('`restart` exits 0', rc == 0, (rc, out[:300], err[:300]))
    R.check('old process gone after restart', wait_gone(pid, 10), pid)
    R.check('ready again after restart', wait_ready(p, 5))
    f2, pid2 = read_pidfile(d)
    R.check('restart wrote a new pid', pid2 is not None and pid2 != pid and pid_alive(pid2),
            (pid, pid2))
    rc, out, err = sh(['stop', '--data-dir', d], timeout=30)
    R.check('`stop` exits 0', rc == 0, (rc, out[:300], err[:300]))
    if pid2:
        R.check('process gone after stop', wait_gone(pid2, 10), pid2)
    R.check('port closed after stop', not wait_ready(p, 0.3))
    f3, _ = read_pidfile(d)
    R.check('pidfile removed after stop', f3 is None, f3)
    rc, out, err = sh(['status', '--data-dir', d])
    R.check('`status` exits non-zero when stopped', rc not in (0, 'timeout'), (rc, out[:200]))


# ---- skillscope query ----------------------------------------------------------------------------


def gauge_points(name, room, points):
    """An OTLP/JSON metrics request: gauge `name` with attribute room, points [(ms, value)]."""
    return {'resourceMetrics': [{
        'resource': {'attributes': [{'key': 'service.name', 'value': {'stringValue': 'cliq'}}]},
        'scopeMetrics': [{'metrics': [{'name': name, 'gauge': {'dataPoints': [
            {'timeUnixNano': str(ms * 10**6), 'asDouble': v,
             'attributes': [{'key': 'room', 'value': {'stringValue': room}}]}
            for ms, v in points]}}]}]}]}


def check_query():
    rc, out, err = sh(['query', '--help'])
    R.check('`query --help` exits 0 and documents --time/--start/--end/--step/--server/-o/now-1h',
            rc == 0 and all(w in out for w in ('--time', '--start', '--end', '--step', '--server',
                                               '-o', 'now-1h', 'RFC3339')), (rc, out[:300]))
    rc, out, err = sh(['help'])
    R.check('`skillscope help` lists query', rc == 0 and 'query' in out, out[:500])
    rc, out, err = sh(['query'])
    R.check('`query` without an expression is a usage error (2)', rc == 2 and 'expression' in err,
            (rc, err[:200]))
    rc, out, err = sh(['query', 'up', '-o', 'yaml'])
    R.check('`query -o yaml` is a usage error naming yaml', rc == 2 and 'yaml' in err,
            (rc, err[:200]))
    rc, out, err = sh(['query', 'up', '--time', 'yesterday'])
    R.check('`query --time yesterday` is a usage error naming the value',
            rc == 2 and 'yesterday' in err, (rc, err[:200]))

    srv = Server(name='cli-query')
    srv.start(ready_timeout=5)
    url = 'http://127.0.0.1:%d' % srv.http_port
    t = (now_ms() // 60000 - 1) * 60000  # a whole minute in the recent past
    pts_a = [(t - 120000, 1.5), (t - 60000, 2.5), (t, 3.5)]
    pts_b = [(t - 120000, 10), (t - 60000, 20), (t, 30)]
    for room, pts in (('a', pts_a), ('b', pts_b)):
        r = http('POST', srv.otlp_port, '/v1/metrics', json.dumps(gauge_points(
            'cliq_temp', room, pts)).encode(), {'Content-Type': 'application/json'})
        R.eq('query: OTLP gauge for room %s accepted' % room, r.status, 200)
    ts = '%d' % (t // 1000)

    rc, out, err = sh(['query', 'cliq_temp', '--time', ts, '--server', url])
    lines = out.rstrip('\n').split('\n')
    R.check('instant query exits 0 with a header and one row per series',
            rc == 0 and len(lines) == 3 and lines[0].split() == ['SERIES', 'VALUE'],
            (rc, out[:500], err[:300]))
    rows = {}
    for ln in lines[1:]:
        series, _, value = ln.rpartition('  ')
        rows[series.strip()] = value.strip()
    R.eq('instant query rows: labels then value',
         rows, {'cliq_temp{job="cliq", room="a", service_name="cliq"}': '3.5',
                'cliq_temp{job="cliq", room="b", service_name="cliq"}': '30'})
    R.check('instant query values are aligned in one column',
            len(set(ln.rfind('  ') for ln in lines)) == 1, out[:500])

    rc, out, err = sh(['query', 'sum(cliq_temp)', '--time', ts, '--server', url])
    R.check('instant sum() prints {} and 33.5', rc == 0 and '{}' in out and '33.5' in out,
            (rc, out[:300], err[:300]))
    rc, out, err = sh(['query', '1 + 2', '--server', url])
    R.check('scalar query prints the value alone', rc == 0 and out == '3\n', (rc, out, err))

    start = '%d' % ((t - 120000) // 1000)
    rc, out, err = sh(['query', 'cliq_temp{room="a"}', '--start', start, '--end', ts, '--step',
                       '1m', '--server', url])
    want = 'cliq_temp{job="cliq", room="a", service_name="cliq"}\n' + ''.join(
        '  %s  %s\n' % (time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(ms // 1000)), v)
        for ms, v in pts_a)
    R.check('range query: one block, one "time value" line per step', rc == 0 and out == want,
            (rc, out[:500], want, err[:300]))
    rc, out, err = sh(['query', 'cliq_temp', '--start', start, '--end', ts, '--step', '60',
                       '--server', url])
    R.check('range query with two series: two blocks separated by a blank line',
            rc == 0 and out.count('\n\n') == 1 and out.count('cliq_temp{') == 2,
            (rc, out[:500], err[:300]))
    rc, out, err = sh(['query', 'cliq_temp', '--start', 'now-10m', '--server', url])
    R.check('range query with --start now-10m and the default step exits 0',
            rc == 0 and 'room="a"' in out, (rc, out[:300], err[:300]))

    rc, out, err = sh(['query', 'cliq_temp', '--time', ts, '-o', 'json', '--server', url])
    api = http('GET', srv.http_port, '/api/v1/query?' + qs([('query', 'cliq_temp'), ('time', ts)]))
    R.check('-o json prints the API answer unchanged', rc == 0 and out.rstrip('\n').encode() ==
            api.body.rstrip(b'\n'), (rc, out[:300], api.body[:300]))
    rc, out, err = sh(['query', 'cliq_temp', '--start', start, '--end', ts, '--step', '1m',
                       '-o', 'json', '--server', url])
    try:
        j = json.loads(out)
    except ValueError:
        j = {}
    R.check('range -o json is a matrix', rc == 0 and j.get('data', {}).get('resultType') ==
            'matrix', (rc, out[:300]))

    rc, out, err = sh(['query', 'sum(cliq_temp', '--server', url])
    errl = err.strip().splitlines()
    R.check('a bad query exits 1 with one line "skillscope query: bad_data: ..."',
            rc == 1 and len(errl) == 1 and errl[0].startswith('skillscope query: bad_data: '),
            (rc, out[:200], err[:300]))
    rc, out, err = sh(['query', 'cliq_temp', '--start', ts, '--end', start, '--server', url])
    R.check('--end before --start is a usage error', rc == 2, (rc, err[:200]))

    rc, out, err = sh(['dump', '--server', url, '--metrics', 'cliq_temp'])
    R.check('`dump --server` (shared HTTP client) prints the 6 samples',
            rc == 0 and len([ln for ln in out.splitlines() if 'cliq_temp' in ln]) == 6,
            (rc, out[:300], err[:300]))
    srv.stop()

    (port,) = free_ports(1)
    dead = 'http://127.0.0.1:%d' % port
    rc, out, err = sh(['query', 'up', '--server', dead])
    R.check('query against a server that is not running exits 1 naming the URL and '
            '`skillscope start`', rc == 1 and dead in err and 'skillscope start' in err,
            (rc, err[:300]))
