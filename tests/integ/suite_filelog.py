"""suite_filelog.py - JSON log files: `sources:` in the server's config and `skillscope ship`.

Why: many services write JSON lines to files; a user should not need Promtail. The server follows
the files named by a glob, survives rotation (rename + create) and copytruncate, remembers its
position across restarts (no duplicates after a clean restart, no loss after a crash), and the
one-off `skillscope ship` pushes a file to a running server through the Loki push API. A bad
`sources:` entry stops the server at start with a message naming the file, line and key.

How: a real server with a config whose `sources:` glob points into a temp dir; lines carry a
unique id and an RFC3339 timestamp; they are read back with GET /loki/api/v1/query_range and
counted by id (each must appear exactly once, except that a crash may repeat lines: at-least-once,
which the store's duplicate check then absorbs since the line's own timestamp is kept).
"""

import json
import os
import shutil
import signal
import subprocess
import time

from harness import R, Server, binary, http, qs, register_pid, tmpdir

BASE_NS = (time.time_ns() // 10**9 - 86400) * 10**9  # a day ago: inside Loki's query limits


def ts(i):
    ns = BASE_NS + i * 1000000
    s, frac = divmod(ns, 1000000000)
    return time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(s)) + '.%09dZ' % frac


def line(i, tag='a', extra=None):
    o = {'timestamp': ts(i), 'level': 'info' if i % 3 else 'error', 'message': 'event %d' % i,
         'logger': 'skillmeat.test', 'id': i, 'tag': tag,
         'trace_id': '%032x' % (i + 1), 'span_id': '%016x' % (i + 1),
         'ctx': {'user': 'u%d' % (i % 5), 'n': i}}
    if extra:
        o.update(extra)
    return json.dumps(o) + '\n'


def append(path, text):
    with open(path, 'a') as f:
        f.write(text)


def query(srv, sel, limit=5000):
    params = [('query', sel), ('start', str(BASE_NS - 10**9)),
              ('end', str(time.time_ns() + 3600 * 10**9)), ('limit', str(limit)),
              ('direction', 'forward')]
    r = http('GET', srv.http_port, '/loki/api/v1/query_range?' + qs(params))
    if r.status != 200:
        return None, r
    return r.json()['data']['result'], r


def ids(result):
    """id -> count over every entry of every stream (JSON lines only)."""
    out = {}
    for st in result or []:
        for v in st['values']:
            try:
                i = json.loads(v[1])['id']
            except (ValueError, KeyError, TypeError):
                continue
            out[i] = out.get(i, 0) + 1
    return out


def wait_ids(srv, sel, want, timeout=10.0):
    """Polls until every id in want is present; returns (id counts, seconds waited)."""
    t0 = time.monotonic()
    got = {}
    while time.monotonic() - t0 < timeout:
        res, _ = query(srv, sel)
        got = ids(res)
        if all(i in got for i in want):
            return got, time.monotonic() - t0
        time.sleep(0.1)
    return got, time.monotonic() - t0


def exactly_once(name, got, want):
    missing = sorted(i for i in want if i not in got)
    dups = sorted(i for i in want if got.get(i, 0) > 1)
    R.check(name + ': no line lost', not missing, 'missing ids %s' % missing[:20])
    R.check(name + ': no line twice', not dups, 'duplicated ids %s' % dups[:20])


def write_config(d, glob_path, extra=''):
    cfg = os.path.join(d, 'skillscope.yaml')
    with open(cfg, 'w') as f:
        f.write('sources:\n'
                '  - path: %s\n'
                '    labels: {service_name: skillmeat, env: dev}\n%s' % (glob_path, extra))
    return cfg


def check_mapping(srv, logdir):
    path = os.path.join(logdir, 'map.jsonl')
    append(path, line(900, 'map') + 'this is not json\n')
    got, _ = wait_ids(srv, '{service_name="skillmeat", filename="%s"}' % path, [900])
    res, _ = query(srv, '{service_name="skillmeat", filename="%s"}' % path)
    entries = [(st['stream'], v) for st in res or [] for v in st['values']]
    js = [e for e in entries if e[1][1].startswith('{')]
    R.check('mapping: the JSON line is stored as written', len(js) == 1 and
            js[0][1][1] == line(900, 'map').rstrip('\n'), entries)
    if js:
        labels, v = js[0]
        R.eq('mapping: timestamp field is the entry time', v[0], str(BASE_NS + 900 * 1000000))
        # Loki 3 returns structured metadata merged into the stream map (categorize-labels off)
        meta = dict(labels)
        if len(v) > 2 and isinstance(v[2], dict):
            meta.update(v[2].get('structuredMetadata', v[2]))
        R.eq('mapping: level as metadata', meta.get('level'), 'error')
        R.eq('mapping: trace_id as metadata', meta.get('trace_id'), '%032x' % 901)
        R.eq('mapping: nested field flattened with _', meta.get('ctx_user'), 'u0')
        R.eq('mapping: static labels kept', (meta.get('service_name'), meta.get('env')),
             ('skillmeat', 'dev'))
        R.check('mapping: message not duplicated as metadata', 'message' not in meta, meta)
    plain = [e for e in entries if e[1][1] == 'this is not json']
    R.check('mapping: a non-JSON line is stored as it is', len(plain) == 1, entries)
    t0 = time.monotonic()
    while True:  # the counters are brought up to date every 500 ms
        m = http('GET', srv.http_port, '/metrics').text()
        got = {ln.split()[0]: float(ln.split()[1]) for ln in m.splitlines()
               if ln.startswith('skillscope_filelog_lines_total')}
        if got.get('skillscope_filelog_lines_total{outcome="not_json"}', 0) >= 1 or \
                time.monotonic() - t0 > 3:
            break
        time.sleep(0.1)
    R.check('/metrics counts committed and non-JSON file lines',
            got.get('skillscope_filelog_lines_total{outcome="committed"}', 0) >= 52 and
            got.get('skillscope_filelog_lines_total{outcome="not_json"}', 0) >= 1, got)


def run():
    d = tmpdir('ss-filelog-')
    logdir = os.path.join(d, 'logs')
    os.makedirs(logdir)
    cfg = write_config(d, os.path.join(logdir, '*.jsonl'))
    app = os.path.join(logdir, 'app.jsonl')
    sel = '{service_name="skillmeat", filename="%s"}' % app
    append(app, ''.join(line(i) for i in range(0, 50)))  # before the server starts

    srv = Server(data_dir=os.path.join(d, 'data'), extra_args=['--config', cfg], name='filelog')
    srv.start()
    want = list(range(0, 50))
    got, _ = wait_ids(srv, sel, want)
    exactly_once('existing file read at start', got, want)

    # a line appears within seconds of being written
    t0 = time.monotonic()
    append(app, line(50))
    got, waited = wait_ids(srv, sel, [50], timeout=5)
    R.check('a new line is queryable within 5 s', 50 in got, 'waited %.2fs' % waited)
    print('     filelog: line visible after %.0f ms' % ((time.monotonic() - t0) * 1000))
    want.append(50)

    check_mapping(srv, logdir)

    # rotation: rename + create, the writer still appending to the old inode for a moment
    append(app, ''.join(line(i) for i in range(51, 80)))
    os.rename(app, app + '.1')   # no longer matches *.jsonl
    append(app + '.1', line(80))  # late write to the old inode
    append(app, ''.join(line(i) for i in range(81, 100)))
    want += list(range(51, 100))
    got, _ = wait_ids(srv, sel, want)
    exactly_once('rotation (rename + create)', got, want)

    # copytruncate: copy away, truncate in place, keep writing
    append(app, ''.join(line(i) for i in range(100, 120)))
    wait_ids(srv, sel, list(range(100, 120)))
    shutil.copy(app, os.path.join(logdir, 'app.copy'))
    with open(app, 'r+') as f:
        f.truncate(0)
    append(app, ''.join(line(i) for i in range(120, 130)))
    want += list(range(100, 130))
    got, _ = wait_ids(srv, sel, want)
    exactly_once('copytruncate', got, want)

    # partial last line: held until its newline arrives
    part = line(130)
    append(app, part[:40])
    time.sleep(1.2)
    res, _ = query(srv, sel)
    R.check('partial line not stored before its newline',
            not any(v[1].startswith(part[:40]) and v[1] != part.rstrip('\n')
                    for st in res or [] for v in st['values']), res)
    append(app, part[40:])
    want.append(130)
    got, _ = wait_ids(srv, sel, want)
    exactly_once('partial line completed', got, want)

    # clean restart: lines written while the server is down come once, nothing repeats
    rc = srv.stop()
    R.eq('server stops cleanly', rc, 0)
    pos = os.path.join(srv.data_dir, 'positions.json')
    R.check('positions.json written', os.path.exists(pos))
    append(app, ''.join(line(i) for i in range(131, 160)))
    srv.start()
    want += list(range(131, 160))
    got, _ = wait_ids(srv, sel, want)
    exactly_once('clean restart', got, want)

    # crash: SIGKILL, then restart; at-least-once, the store drops exact repeats
    append(app, ''.join(line(i) for i in range(160, 200)))
    wait_ids(srv, sel, list(range(160, 200)))
    srv.kill()
    append(app, ''.join(line(i) for i in range(200, 210)))
    srv.start()
    want += list(range(160, 210))
    got, _ = wait_ids(srv, sel, want)
    missing = [i for i in want if i not in got]
    R.check('crash + restart: no line lost', not missing, missing[:20])

    # a new file matching the glob is picked up
    other = os.path.join(logdir, 'other.jsonl')
    append(other, line(300, 'other'))
    got, _ = wait_ids(srv, '{service_name="skillmeat", filename="%s"}' % other, [300])
    R.check('a file created later is followed', 300 in got, got)

    check_ship(srv, d)
    srv.stop()
    check_bad_config(d)


def check_ship(srv, d):
    path = os.path.join(d, 'ship.jsonl')
    append(path, ''.join(line(i, 'ship') for i in range(1000, 1010)))
    url = 'http://127.0.0.1:%d' % srv.http_port
    sel = '{service_name="shipped"}'
    # --once: what the file holds, then exit 0
    p = subprocess.run([binary(), 'ship', path, '--label', 'service_name=shipped', '--once',
                        '--server', url], capture_output=True, timeout=30)
    R.eq('ship --once exits 0', p.returncode, 0)
    R.check('ship --once reports what it delivered', b'10 lines delivered' in p.stderr, p.stderr)
    got, _ = wait_ids(srv, sel, range(1000, 1010))
    exactly_once('ship --once', got, range(1000, 1010))

    # following: new lines are pushed until Ctrl-C, then it exits 0
    q = subprocess.Popen([binary(), 'ship', path, '--label', 'service_name=shipped',
                          '--label', 'run=follow', '--server', url],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    register_pid(q.pid)
    time.sleep(0.5)
    append(path, ''.join(line(i, 'ship') for i in range(1010, 1030)))
    got, _ = wait_ids(srv, '{service_name="shipped", run="follow"}', range(1010, 1030))
    exactly_once('ship follows new lines (starts at the end)', got, range(1010, 1030))
    q.send_signal(signal.SIGINT)
    try:
        q.wait(10)
    except subprocess.TimeoutExpired:
        q.kill()
        q.wait()
    R.eq('ship exits 0 on Ctrl-C', q.returncode, 0)

    check_ship_positions(srv, d, url)

    # bad usage
    p = subprocess.run([binary(), 'ship', path, '--label', '9x=y'], capture_output=True,
                       timeout=10)
    R.check('ship --label with a bad name: exit 2 and a message',
            p.returncode == 2 and b'--label' in p.stderr, (p.returncode, p.stderr))
    t0 = time.monotonic()
    p = subprocess.run([binary(), 'ship', path, '--once', '--server', 'http://127.0.0.1:1'],
                       capture_output=True, timeout=60)
    R.check('ship --once to a server that is not there: gives up, exit 1, says so',
            p.returncode == 1 and b'not delivered' in p.stderr and time.monotonic() - t0 < 40,
            (p.returncode, p.stderr[-300:]))


def check_ship_positions(srv, d, url):
    """--positions: repeated --once runs send each line once, and a run that could not deliver
    leaves the position where it was."""
    path = os.path.join(d, 'pos.jsonl')
    pos = os.path.join(d, 'ship-positions.json')
    sel = '{service_name="shipped", run="pos"}'

    def ship(server=url):
        return subprocess.run([binary(), 'ship', path, '--label', 'service_name=shipped',
                               '--label', 'run=pos', '--once', '--positions', pos,
                               '--server', server], capture_output=True, timeout=60)

    append(path, ''.join(line(i, 'pos') for i in range(2000, 2005)))
    p = ship()
    R.check('ship --positions, first run: 5 delivered, exit 0',
            p.returncode == 0 and b'5 lines delivered' in p.stderr, p.stderr)
    try:
        with open(pos) as f:
            saved = json.load(f)
        R.check('ship --positions writes a positions file naming the file',
                path in json.dumps(saved), saved)
    except (OSError, ValueError) as e:
        R.check('ship --positions writes a readable positions file', False, repr(e))
    p = ship()
    R.check('ship --positions, nothing new: 0 delivered',
            p.returncode == 0 and b'0 lines delivered' in p.stderr, p.stderr)
    append(path, ''.join(line(i, 'pos') for i in range(2005, 2008)))
    p = ship()
    R.check('ship --positions, 3 appended: 3 delivered',
            p.returncode == 0 and b'3 lines delivered' in p.stderr, p.stderr)
    append(path, ''.join(line(i, 'pos') for i in range(2008, 2010)))
    p = ship('http://127.0.0.1:1')
    R.eq('ship --positions to a server that is not there: exit 1', p.returncode, 1)
    p = ship()
    R.check('ship --positions after a failed run: the 2 undelivered lines are sent',
            p.returncode == 0 and b'2 lines delivered' in p.stderr, p.stderr)
    got, _ = wait_ids(srv, sel, range(2000, 2010))
    exactly_once('ship --positions over five runs', got, range(2000, 2010))


def check_bad_config(d):
    cases = [
        ('sources:\n  - labels: {a: b}\n', b'path is required'),
        ('sources:\n  - path: /tmp/x/[ab.jsonl\n', b"unclosed '['"),
        ('sources:\n  - path: /tmp/x/*.jsonl\n    labels: {bad-name: x}\n', b'invalid label name'),
        ('sources:\n  - path: /tmp/x/*.jsonl\n    pth: y\n', b'unknown key'),
    ]
    for i, (text, want) in enumerate(cases):
        cfg = os.path.join(d, 'bad%d.yaml' % i)
        with open(cfg, 'w') as f:
            f.write(text)
        srv = Server(data_dir=os.path.join(d, 'bad-data%d' % i), extra_args=['--config', cfg],
                     name='bad')
        from harness import free_ports
        srv.http_port, srv.otlp_port, srv.grpc_port = free_ports(3)
        try:
            p = subprocess.run(srv.cmd(), capture_output=True, timeout=10)
            out = p.stdout + p.stderr
            R.check('bad config %d: exits 2 at start' % i, p.returncode == 2, (p.returncode, out))
            R.check('bad config %d: message names file, line and problem' % i,
                    want in out and (os.path.basename(cfg).encode() + b':') in out, out)
        except subprocess.TimeoutExpired:
            R.check('bad config %d: exits at start' % i, False, 'still running after 10 s')

    # a corrupt positions.json: refuse to start (rather than silently re-read everything)
    cfg = write_config(d, os.path.join(d, 'nothing', '*.jsonl'))
    data = os.path.join(d, 'corrupt-data')
    os.makedirs(data)
    with open(os.path.join(data, 'positions.json'), 'w') as f:
        f.write('{"files":[')
    from harness import free_ports
    srv = Server(data_dir=data, extra_args=['--config', cfg], name='corrupt')
    srv.http_port, srv.otlp_port, srv.grpc_port = free_ports(3)
    p = subprocess.run(srv.cmd(), capture_output=True, timeout=10)
    out = p.stdout + p.stderr
    R.check('corrupt positions.json: exits with a message naming it',
            p.returncode != 0 and b'positions.json' in out, (p.returncode, out[-400:]))

    # a wildcard in the directory part (no inotify on it): found by polling
    base = os.path.join(d, 'wild')
    os.makedirs(os.path.join(base, 'svc-a'))
    cfg = os.path.join(d, 'wild.yaml')
    with open(cfg, 'w') as f:
        f.write('sources:\n  - path: %s/*/app.jsonl\n    labels: {service_name: wild}\n'
                '    labels_from_fields: [level]\n' % base)
    srv = Server(data_dir=os.path.join(d, 'wild-data'), extra_args=['--config', cfg], name='wild')
    srv.start()
    os.makedirs(os.path.join(base, 'svc-b'))
    append(os.path.join(base, 'svc-a', 'app.jsonl'), line(500, 'wild'))
    append(os.path.join(base, 'svc-b', 'app.jsonl'), line(501, 'wild'))
    got, _ = wait_ids(srv, '{service_name="wild"}', [500, 501])
    exactly_once('glob with a wildcard directory', got, [500, 501])
    res, _ = query(srv, '{service_name="wild", level="error"}')
    R.eq('labels_from_fields: select by the promoted label', ids(res), {501: 1})
    r = http('GET', srv.http_port, '/loki/api/v1/label/level/values?' +
             qs([('start', str(BASE_NS - 10**9)), ('end', str(time.time_ns() + 10**12))]))
    R.check('labels_from_fields: level is a stream label (label values API)',
            r.status == 200 and sorted(r.json().get('data') or []) == ['error', 'info'], r)
    srv.stop()
