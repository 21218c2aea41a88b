"""suite_loki_push.py - Loki push (POST /loki/api/v1/push) in, the Loki read API out.

Why: log shippers (Promtail, Alloy, Fluent Bit, Vector, logcli, winston-loki) push to Loki's API
in JSON or in snappy-compressed protobuf; what they send must come back unchanged through
query_range, labels and series, with structured metadata shown as Loki 3 shows it (merged into the
stream labels of the result), and bad pushes must get Loki's 400 messages with nothing stored.

How: bodies are built here from ../shared/specs/LOKI-API.md §1: JSON by hand, protobuf with
lib/pb.py's wire helpers (PushRequest field numbers from specs/loki/push.proto) and compressed by a
small snappy block encoder written below (literal runs plus back-references, valid snappy that the
server decodes with libsnappy; Python has no snappy module here). Every case uses its own job
label so "nothing stored" is a query that must come back empty. The server is restarted at the end
to show the pushed entries were durable (WAL replay).
"""

import gzip
import json
import time
import zlib

from harness import R, Server, get_json, http, loki_entries
import pb

# ---- snappy block format (https://github.com/google/snappy/blob/main/format_description.txt) ----


def _uvarint(n):
    return pb.enc_varint(n)


def _literal(b):
    n = len(b) - 1
    if n < 60:
        return bytes([n << 2]) + b
    if n < 1 << 8:
        return bytes([60 << 2, n]) + b
    if n < 1 << 16:
        return bytes([61 << 2]) + n.to_bytes(2, 'little') + b
    return bytes([62 << 2]) + n.to_bytes(3, 'little') + b


def _copy2(offset, length):
    """Copy with a 2-byte offset, length 1..64."""
    return bytes([((length - 1) << 2) | 2]) + offset.to_bytes(2, 'little')


def snappy_block(data, copies=True):
    """Snappy block: uvarint length, then literals of at most 64 KiB; with copies=True a run
    repeating the previous 4..64 bytes is sent as a back-reference (greedy, tiny window)."""
    out = bytearray(_uvarint(len(data)))
    i, lit = 0, 0
    while i < len(data):
        if copies and i >= 8:
            # try the previous occurrence of the next 8 bytes within a 1 KiB window
            start = max(0, i - 1024)
            j = data.rfind(data[i:i + 8], start, i)
            if j >= 0 and len(data) - i >= 8:
                n = 8
                while n < 64 and i + n < len(data) and data[j + n] == data[i + n]:
                    n += 1
                for k in range(lit, i, 65536):
                    out += _literal(data[k:min(i, k + 65536)])
                out += _copy2(i - j, n)
                i += n
                lit = i
                continue
        i += 1
    for k in range(lit, len(data), 65536):
        out += _literal(data[k:min(len(data), k + 65536)])
    return bytes(out)


# ---- protobuf PushRequest ----------------------------------------------------------------------


def pb_ts(ns, seconds=None, nanos=None):
    s = ns // 1_000_000_000 if seconds is None else seconds
    n = ns % 1_000_000_000 if nanos is None else nanos
    return (pb.f_varint(1, s) if s else b'') + (pb.f_varint(2, n) if n else b'')


def pb_entry(ns, line, meta=(), ts=True, raw_ts=None):
    b = b''
    if ts:
        b += pb.f_len(1, raw_ts if raw_ts is not None else pb_ts(ns))
    b += pb.f_len(2, line if isinstance(line, bytes) else line.encode())
    for k, v in meta:
        b += pb.f_len(3, pb.f_len(1, k.encode()) + pb.f_len(2, v.encode()))
    return b


def pb_stream(labels, entries):
    b = pb.f_len(1, labels.encode())
    for e in entries:
        b += pb.f_len(2, e)
    b += pb.f_varint(3, 12345)  # hash: the server must ignore it
    return b


def pb_push(streams):
    return b''.join(pb.f_len(1, s) for s in streams)


# ---- helpers ------------------------------------------------------------------------------------

PB_HEADERS = {'Content-Type': 'application/x-protobuf'}
JSON_HEADERS = {'Content-Type': 'application/json'}


def push(srv, body, headers, path='/loki/api/v1/push'):
    return http('POST', srv.http_port, path, body=body, headers=headers)


def push_json(srv, obj, **kw):
    return push(srv, json.dumps(obj).encode(), JSON_HEADERS, **kw)


def push_pb(srv, streams, headers=PB_HEADERS):
    return push(srv, snappy_block(pb_push(streams)), headers)


def read(srv, job, t0, t1):
    """Entries of {job=...} in time order (the API groups them by result stream)."""
    r, j, ents = loki_entries(srv.http_port, '{job="%s"}' % job, t0, t1)
    return r, sorted(ents, key=lambda e: (e[1], e[2]))


def now_ns():
    return time.time_ns()


def run():
    srv = Server(name='lokipush')
    srv.start()
    base = now_ns() - 60_000_000_000  # a minute ago
    t0, t1 = base - 3_600_000_000_000, base + 600_000_000_000

    # ---- JSON: two streams, out of order, structured metadata in both forms ----
    body = {'streams': [
        {'stream': {'job': 'json-app', 'level': 'info'},
         'values': [[str(base + 3000), 'third'],
                    [str(base + 1000), 'first', {'trace_id': '0242ac120002', 'user_id': 'u1'}],
                    [str(base + 2000), 'second \u00e9 "quoted"']]},
        {'stream': {'job': 'json-app', 'level': 'error'},
         'values': [[str(base + 1500), 'boom',
                     {'structuredMetadata': {'code': '500'}, 'parsed': {'ignored': 'x'}}]]},
    ]}
    r = push_json(srv, body)
    R.eq('json push status', r.status, 204)
    R.eq('json push empty body', r.body, b'')
    r, ents = read(srv, 'json-app', t0, t1)
    R.eq('json read status', r.status, 200)
    R.eq('json read back (order, ts, lines, labels + structured metadata)', ents, [
        ({'job': 'json-app', 'level': 'info', 'trace_id': '0242ac120002', 'user_id': 'u1'},
         base + 1000, 'first'),
        ({'job': 'json-app', 'level': 'error', 'code': '500'}, base + 1500, 'boom'),
        ({'job': 'json-app', 'level': 'info'}, base + 2000, 'second \u00e9 "quoted"'),
        ({'job': 'json-app', 'level': 'info'}, base + 3000, 'third'),
    ])
    r, j = get_json(srv.http_port, '/loki/api/v1/series',
                    [('match[]', '{job="json-app"}'), ('start', str(t0)), ('end', str(t1))])
    got = sorted(json.dumps(s, sort_keys=True) for s in (j or {}).get('data', []))
    R.eq('series: stream labels only, no structured metadata', got, sorted([
        json.dumps({'job': 'json-app', 'level': 'error'}, sort_keys=True),
        json.dumps({'job': 'json-app', 'level': 'info'}, sort_keys=True)]))
    r, j = get_json(srv.http_port, '/loki/api/v1/label/level/values',
                    [('start', str(t0)), ('end', str(t1))])
    R.check('label values include the pushed levels',
            j is not None and {'info', 'error'} <= set(j.get('data', [])), repr(j))

    # An exact duplicate (same stream, ts, line) is dropped, as Loki does.
    r = push_json(srv, {'streams': [{'stream': {'job': 'json-app', 'level': 'info'},
                                     'values': [[str(base + 3000), 'third']]}]})
    R.eq('duplicate push accepted', r.status, 204)
    r, ents = read(srv, 'json-app', t0, t1)
    R.eq('duplicate not stored twice', len(ents), 4)

    # ---- JSON + gzip, JSON + deflate ----
    for enc, comp in (('gzip', gzip.compress), ('deflate', zlib.compress)):
        job = 'json-' + enc
        raw = json.dumps({'streams': [{'stream': {'job': job},
                                       'values': [[str(base + i), 'line %d' % i]
                                                  for i in range(50)]}]}).encode()
        r = push(srv, comp(raw), {'Content-Type': 'application/json', 'Content-Encoding': enc})
        R.eq('json+%s status' % enc, r.status, 204)
        r, ents = read(srv, job, t0, t1)
        R.eq('json+%s read back' % enc, [(e[1], e[2]) for e in ents],
             [(base + i, 'line %d' % i) for i in range(50)])

    # ---- snappy protobuf (Promtail's default) ----
    lines = ['pb line %03d %s' % (i, 'x' * (i % 7)) for i in range(40)]
    entries = [pb_entry(base + 10_000 + i, lines[i],
                        meta=[('pod', 'p-%d' % (i % 2))] if i % 5 == 0 else ())
               for i in range(40)]
    entries.reverse()  # out of order
    r = push_pb(srv, [pb_stream('{job="pb-app", env="prod"}', entries),
                      pb_stream('{job="pb-app",env="dev",empty=""}',
                                [pb_entry(base + 5, 'dev line \u2603')])])
    R.eq('protobuf push status', r.status, 204)
    r, ents = read(srv, 'pb-app', t0, t1)
    want = [({'job': 'pb-app', 'env': 'dev'}, base + 5, 'dev line \u2603')]
    for i in range(40):
        ls = {'job': 'pb-app', 'env': 'prod'}
        if i % 5 == 0:
            ls['pod'] = 'p-%d' % (i % 2)
        want.append((ls, base + 10_000 + i, lines[i]))
    R.eq('protobuf read back (empty label dropped, metadata merged)', ents, want)
    R.check('snappy body used back-references',
            len(snappy_block(pb_push([pb_stream('{a="b"}', entries)]))) <
            len(pb_push([pb_stream('{a="b"}', entries)])))

    # No Content-Type at all is protobuf too; Content-Encoding: snappy is accepted.
    r = push(srv, snappy_block(pb_push([pb_stream('{job="pb-noct"}', [pb_entry(base, 'a')])])),
             {})
    R.eq('protobuf without Content-Type', r.status, 204)
    r = push(srv, snappy_block(pb_push([pb_stream('{job="pb-ce"}', [pb_entry(base, 'b')])])),
             {'Content-Type': 'application/x-protobuf', 'Content-Encoding': 'snappy'})
    R.eq('protobuf with Content-Encoding: snappy', r.status, 204)
    for job, line in (('pb-noct', 'a'), ('pb-ce', 'b')):
        r, ents = read(srv, job, t0, t1)
        R.eq('%s read back' % job, [(e[1], e[2]) for e in ents], [(base, line)])

    # Structured metadata names are normalised as Loki's distributor does (NormalizeLabel).
    r = push_json(srv, {'streams': [{'stream': {'job': 'meta-norm'}, 'values': [
        [str(base), 'x', {'trace.id': 't1', '1st': 'a', 'http-method': 'GET'}]]}]})
    R.eq('metadata with non-label names accepted', r.status, 204)
    r, ents = read(srv, 'meta-norm', t0, t1)
    R.eq('metadata names normalised', [e[0] for e in ents],
         [{'job': 'meta-norm', 'trace_id': 't1', 'key_1st': 'a', 'http_method': 'GET'}])

    # Legacy path and legacy JSON shape; the v1 shape on the legacy path works too.
    r = push_json(srv, {'streams': [{'labels': '{job="legacy"}', 'entries': [
        {'ts': time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(base // 10**9)) + '.5Z',
         'line': 'legacy line'}]}]}, path='/api/prom/push')
    R.eq('legacy push status', r.status, 204)
    r, ents = read(srv, 'legacy', t0, t1)
    R.eq('legacy read back', [(e[1], e[2]) for e in ents],
         [((base // 10**9) * 10**9 + 500_000_000, 'legacy line')])

    # ---- bad input: 400, Loki's message, nothing stored ----
    def bad(name, resp, want_sub, job):
        R.eq('%s: status' % name, resp.status, 400)
        R.check('%s: message' % name, want_sub in resp.text(),
                'want %r in %r' % (want_sub, resp.text()))
        rr, ents = read(srv, job, t0, t1)
        R.check('%s: nothing stored' % name, rr.status == 200 and ents == [],
                '%r %r' % (rr, ents))

    good = {'stream': {'job': 'bad-mixed'}, 'values': [[str(base), 'valid line']]}
    bad('json empty labels', push_json(srv, {'streams': [
        good, {'stream': {}, 'values': [[str(base), 'x']]}]}),
        'error at least one label pair is required per stream', 'bad-mixed')
    bad('json invalid label name', push_json(srv, {'streams': [
        {'stream': {'job': 'bad-name', 'a-b': 'c'}, 'values': [[str(base), 'x']]}]}),
        "Error parsing labels '{a-b=\"c\", job=\"bad-name\"}' with error: invalid label name",
        'bad-name')
    bad('json numeric timestamp', push(srv, (
        '{"streams":[{"stream":{"job":"bad-tsnum"},"values":[[%d,"x"]]}]}' % base).encode(),
        JSON_HEADERS), 'timestamp must be a string of Unix epoch nanoseconds', 'bad-tsnum')
    bad('json unparsable timestamp', push_json(srv, {'streams': [
        {'stream': {'job': 'bad-ts'}, 'values': [['yesterday', 'x']]}]}),
        'timestamp "yesterday" is not an integer', 'bad-ts')
    bad('json zero timestamp', push_json(srv, {'streams': [
        {'stream': {'job': 'bad-zero'}, 'values': [['0', 'x']]}]}),
        'has an invalid timestamp: 0 ns is not after the Unix epoch', 'bad-zero')
    bad('json too far in the future', push_json(srv, {'streams': [
        {'stream': {'job': 'bad-future'},
         'values': [[str(now_ns() + 3_600_000_000_000), 'x']]}]}),
        "entry for stream '{job=\"bad-future\"}' has timestamp too new", 'bad-future')
    bad('json syntax error', push(srv, b'{"streams":[{"stream":{"job":"bad-syntax"},',
                                  JSON_HEADERS), 'invalid JSON at line 1', 'bad-syntax')
    bad('json invalid UTF-8', push(srv, b'{"streams":[{"stream":{"job":"bad-utf8j"},'
                                        b'"values":[["1","\xff"]]}]}', JSON_HEADERS),
        'invalid JSON', 'bad-utf8j')
    bad('json duplicate label', push(srv, (
        '{"streams":[{"stream":{"job":"bad-dupj","job":"x"},"values":[["%d","x"]]}]}'
        % base).encode(), JSON_HEADERS), 'duplicate object key', 'bad-dupj')
    bad('json line too long', push_json(srv, {'streams': [
        {'stream': {'job': 'bad-long'}, 'values': [[str(base), 'x' * 300000]]}]}),
        "Max entry size '262144' bytes exceeded for stream '{job=\"bad-long\"}'", 'bad-long')
    bad('json empty metadata name', push_json(srv, {'streams': [
        {'stream': {'job': 'bad-meta'}, 'values': [[str(base), 'x', {'': '1'}]]}]}),
        "has structured metadata with an empty name", 'bad-meta')
    bad('pb metadata names equal after normalising', push_pb(srv, [
        pb_stream('{job="bad-meta2"}', [pb_entry(base, 'x', meta=[('a.b', '1'), ('a_b', '2')])])]),
        "has duplicate structured metadata name: 'a_b'", 'bad-meta2')

    bad('pb duplicate labels', push_pb(srv, [pb_stream('{job="bad-dup", job="x"}',
                                                       [pb_entry(base, 'x')])]),
        "stream '{job=\"bad-dup\", job=\"x\"}' has duplicate label name: 'job'", 'bad-dup')
    bad('pb unparsable labels', push_pb(srv, [
        pb_stream('{job="bad-lbl"}', [pb_entry(base, 'ok')]),
        pb_stream('{job="bad-lbl", level=info}', [pb_entry(base, 'x')])]),
        "Error parsing labels '{job=\"bad-lbl\", level=info}' with error: 1:23:", 'bad-lbl')
    bad('pb regex matcher in labels', push_pb(srv, [
        pb_stream('{job="bad-re", a=~"x"}', [pb_entry(base, 'x')])]),
        "with error: 1:17: unexpected '=~': a label set takes only '='", 'bad-re')
    bad('pb empty labels', push_pb(srv, [pb_stream('{job="bad-empty"}', [pb_entry(base, 'x')]),
                                         pb_stream('{}', [pb_entry(base, 'x')])]),
        'error at least one label pair is required per stream', 'bad-empty')
    bad('pb missing timestamp', push_pb(srv, [
        pb_stream('{job="bad-nots"}', [pb_entry(base, 'x', ts=False)])]),
        'has no timestamp', 'bad-nots')
    bad('pb nanos out of range', push_pb(srv, [
        pb_stream('{job="bad-nanos"}', [pb_entry(base, 'x', raw_ts=pb_ts(0, 5, 10**9))])]),
        'nanos 1000000000 out of range [0, 999999999]', 'bad-nanos')
    bad('pb invalid UTF-8 line', push_pb(srv, [
        pb_stream('{job="bad-utf8"}', [pb_entry(base, b'\xc3\x28')])]),
        'log line at offset', 'bad-utf8')
    bad('pb truncated', push(srv, snappy_block(pb_push([
        pb_stream('{job="bad-trunc"}', [pb_entry(base, 'x')])])[:-3]), PB_HEADERS),
        'invalid push request (snappy-compressed logproto.PushRequest): ', 'bad-trunc')
    raw = pb_push([pb_stream('{job="bad-snappy"}', [pb_entry(base, 'x')])])
    bad('corrupt snappy', push(srv, _uvarint(len(raw)) + b'\xff' * 10, PB_HEADERS),
        'invalid snappy block', 'bad-snappy')
    bad('uncompressed protobuf', push(srv, raw, PB_HEADERS), 'invalid', 'bad-snappy')

    # ---- still serving, and durable across a restart ----
    r = push_json(srv, {'streams': [{'stream': {'job': 'after-bad'},
                                     'values': [[str(base), 'still here']]}]})
    R.eq('push after bad input', r.status, 204)
    R.check('server alive', srv.alive())
    code = srv.stop()
    R.eq('clean stop', code, 0)
    srv.start()
    for job, n in (('json-app', 4), ('pb-app', 41), ('json-gzip', 50), ('after-bad', 1)):
        r, ents = read(srv, job, t0, t1)
        R.eq('after restart: %s entries' % job, len(ents), n)
    srv.stop()
