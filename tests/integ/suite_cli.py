"""suite_cli.py - the command line: serve, start/status/stop/restart, version, help, bad flags.

Why: the first thing a user touches. `start` daemonises with a pidfile in the data dir, `status`
and `stop` find the server through that pidfile, an unknown flag is a one-line error naming it,
and an empty data dir is ready fast (DESIGN.md: start-up to ready <= 0.1 s; here only measured and
printed, with a 5 s cap as the check).

How: subprocess with timeouts; PIDs read from the pidfile are registered with run.sh's trap.
"""

import glob
import os
import subprocess
import time

from harness import R, Server, binary, free_ports, http, register_pid, tmpdir


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
