"""suite_grpc.py - hostile bytes on the OTLP/gRPC port: clear refusals, never a crash, nothing
half-written.

Why: the gRPC port faces the same untrusted networks as the HTTP ports. Junk, TLS sent to a
cleartext port, an HTTP/1.1 client that was pointed at the wrong port, a frame longer than the
HTTP/2 limit, a gRPC message cut short or larger than --otlp-grpc-max-recv-bytes: each must get a
clean answer (close, a plain-text 505, GOAWAY FRAME_SIZE_ERROR, a Trailers-Only gRPC error) while
the server keeps serving and no partial data becomes visible.

How: one server started with --otlp-grpc-max-recv-bytes 64KiB. A tiny HTTP/2 client over raw
sockets written here: it sends the preface, SETTINGS and requests whose HPACK header blocks use
only "literal without indexing, new name" fields (no Huffman), and reads back frame headers and
payloads. Response headers are not HPACK-decoded (nghttp2 Huffman-codes them); an answer is
recognised by structure: a Trailers-Only error is one HEADERS frame with END_STREAM and no DATA,
a success is HEADERS, DATA, then trailing HEADERS with END_STREAM. Exact grpc-status and
grpc-message values are checked by tests/unit/test_grpc.c and tests/interop/otel_grpc.test.js.
After every case /-/ready must answer and a valid export over gRPC must still succeed; the data of
refused requests is looked up through the Tempo API and must be absent.

Last, the recorded Claude Code session (tests/data/otlp/claude-code-capture.jsonl, as
suite_claude_code replays it over OTLP/HTTP) is sent over gRPC, every request on its own stream
of one connection, all in flight at once: the token and cost totals and the session count read
through /api/v1/query must equal those computed from the capture.
"""

import os
import signal
import socket
import struct
import subprocess
import time

from harness import R, Server, get_json, go_float, http, now_ms
import pb
import suite_claude_code

PREFACE = b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'
TRACES = '/opentelemetry.proto.collector.trace.v1.TraceService/Export'
MAX_RECV = 64 << 10

DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
FRAME_SIZE_ERROR = 6

# ---- a minimal HTTP/2 client ----------------------------------------------------------------


def frame(ftype, flags, stream, payload=b''):
    return struct.pack('>I', len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack('>I', stream) + payload


def hpack_int(n, prefix_bits):
    """An HPACK integer with a prefix of prefix_bits bits (first byte's high bits are 0)."""
    limit = (1 << prefix_bits) - 1
    if n < limit:
        return bytes([n])
    out = [limit]
    n -= limit
    while n >= 128:
        out.append(n % 128 + 128)
        n //= 128
    out.append(n)
    return bytes(out)


def hpack_literal(name, value):
    """Literal header field without indexing, new name, no Huffman (RFC 7541 §6.2.2)."""
    name, value = name.encode(), value.encode()
    return b'\x00' + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value


def grpc_headers(path=TRACES, extra=()):
    hs = [(':method', 'POST'), (':scheme', 'http'), (':path', path),
          (':authority', '127.0.0.1'), ('content-type', 'application/grpc'), ('te', 'trailers')]
    return b''.join(hpack_literal(k, v) for k, v in list(hs) + list(extra))


def grpc_message(msg, announced=None):
    return b'\x00' + struct.pack('>I', len(msg) if announced is None else announced) + msg


class H2:
    """One raw HTTP/2 connection; read_until collects the frames the server sends."""

    def __init__(self, port, preface=True):
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=10)
        self.buf = b''
        self.frames = []
        self.closed = False
        if preface:
            self.send(PREFACE + frame(SETTINGS, 0, 0))

    def send(self, b):
        try:
            self.sock.sendall(b)
            return True
        except OSError:
            return False

    def request(self, stream, body, headers=None, end=True, chunk=16384):
        """HEADERS then DATA frames of at most chunk bytes; END_STREAM on the last if end."""
        ok = self.send(frame(HEADERS, END_HEADERS, stream, headers or grpc_headers()))
        for i in range(0, max(len(body), 1), chunk):
            last = i + chunk >= len(body)
            ok = ok and self.send(frame(DATA, END_STREAM if (last and end) else 0, stream,
                                        body[i:i + chunk]))
        return ok

    def _read_some(self, deadline):
        self.sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except OSError:
            data = b''
        if not data:
            self.closed = True
            return False
        self.buf += data
        while len(self.buf) >= 9:
            n = struct.unpack('>I', b'\x00' + self.buf[:3])[0]
            if len(self.buf) < 9 + n:
                break
            ftype, flags = self.buf[3], self.buf[4]
            stream = struct.unpack('>I', self.buf[5:9])[0] & 0x7fffffff
            payload = self.buf[9:9 + n]
            self.buf = self.buf[9 + n:]
            self.frames.append((ftype, flags, stream, payload))
            if ftype == SETTINGS and not flags & ACK:
                self.send(frame(SETTINGS, ACK, 0))
            if ftype == PING and not flags & ACK:
                self.send(frame(PING, ACK, 0, payload))
        return True

    def read_until(self, pred, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not pred(self) and not self.closed and time.monotonic() < deadline:
            self._read_some(deadline)
        return pred(self)

    def read_raw_until_closed(self, timeout=10.0):
        """For non-HTTP/2 answers: every byte until the server closes (or timeout)."""
        deadline = time.monotonic() + timeout
        out = b''
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                d = b''
            if not d:
                self.closed = True
                break
            out += d
        return out

    def stream_frames(self, stream):
        return [f for f in self.frames if f[2] == stream]

    def stream_ended(self, stream):
        return any((f[0] in (HEADERS, DATA) and f[1] & END_STREAM) or f[0] == RST_STREAM
                   for f in self.stream_frames(stream))

    def goaway(self):
        for f in self.frames:
            if f[0] == GOAWAY:
                return struct.unpack('>II', f[3][:8])
        return None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def answer_kind(h2, stream):
    """'ok' (HEADERS, DATA, trailers), 'error' (Trailers-Only), 'reset' or 'none'."""
    fs = [f for f in h2.stream_frames(stream) if f[0] in (HEADERS, DATA, RST_STREAM)]
    kinds = [f[0] for f in fs]
    if kinds[:1] == [RST_STREAM]:
        return 'reset'
    if kinds and kinds[0] == HEADERS and fs[0][1] & END_STREAM:
        return 'error'
    if kinds[:1] == [HEADERS] and DATA in kinds and fs[-1][0] == HEADERS and fs[-1][1] & END_STREAM:
        return 'ok'
    return 'none' if not kinds else 'other %s' % kinds


# ---- data ------------------------------------------------------------------------------------


def trace_request(trace_id, name):
    t = now_ms() * 10**6
    obj = {'resourceSpans': [{
        'resource': {'attributes': [{'key': 'service.name',
                                     'value': {'stringValue': 'grpc-suite'}}]},
        'scopeSpans': [{'spans': [{'traceId': trace_id, 'spanId': 'a1b2c3d4e5f60718', 'name': name,
                                   'kind': 2, 'startTimeUnixNano': str(t),
                                   'endTimeUnixNano': str(t + 1000)}]}]}]}
    return pb.encode_request('traces', obj)


_ids = [0]


def new_trace_id():
    _ids[0] += 1
    return '%08x%016x%08x' % (os.getpid() & 0xffffffff, now_ms(), _ids[0])


def trace_status(srv, trace_id):
    return http('GET', srv.http_port, '/api/traces/' + trace_id).status


# ---- checks ----------------------------------------------------------------------------------


def still_serves(srv, after):
    try:
        st = http('GET', srv.http_port, '/-/ready', timeout=5).status
    except OSError as e:
        st = str(e)
    R.check('/-/ready after %s' % after, st == 200, 'got %s; alive=%s; log: %s'
            % (st, srv.alive(), srv.log_tail(600)))
    tid = new_trace_id()
    h2 = H2(srv.grpc_port)
    h2.request(1, grpc_message(trace_request(tid, 'still-serving')))
    h2.read_until(lambda c: c.stream_ended(1))
    R.eq('a valid gRPC export after %s' % after, answer_kind(h2, 1), 'ok')
    h2.close()
    R.eq('its trace is readable after %s' % after, trace_status(srv, tid), 200)


def case_junk(srv):
    for name, junk in (('random bytes', os.urandom(4096)),
                       ('a TLS ClientHello', bytes.fromhex('160301020001') + os.urandom(512)),
                       ('a preface going wrong half-way',
                        b'PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n' + b'x' * 100)):
        h2 = H2(srv.grpc_port, preface=False)
        h2.send(junk)
        out = h2.read_raw_until_closed(timeout=10)
        R.check('%s: connection closed' % name, h2.closed, 'still open after 10 s')
        R.check('%s: nothing sent back' % name, not out, out[:80])
        h2.close()
        still_serves(srv, name)


def case_http1(srv):
    for name, req in (
            ('HTTP/1.1 POST', b'POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: '
             b'application/x-protobuf\r\nContent-Length: 2\r\n\r\n{}'),
            ('HTTP/1.1 GET with Upgrade: h2c',
             b'GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n'
             b'Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n')):
        h2 = H2(srv.grpc_port, preface=False)
        h2.send(req)
        out = h2.read_raw_until_closed(timeout=10)
        text = out
        R.check('%s: answered 505 (the first bytes)' % name, text.startswith(b'HTTP/1.1 505 '),
                out[:200])
        R.check('%s: says the port speaks gRPC / HTTP/2 only' % name,
                b'gRPC' in text and b'HTTP/2' in text, text[:300])
        R.check('%s: connection closed' % name, h2.closed)
        h2.close()
        still_serves(srv, name)


def case_oversized_frame(srv):
    h2 = H2(srv.grpc_port)
    tid = new_trace_id()
    h2.send(frame(HEADERS, END_HEADERS, 1, grpc_headers()))
    # DATA longer than SETTINGS_MAX_FRAME_SIZE (16384, the server never raised it)
    body = grpc_message(trace_request(tid, 'oversized-frame'))
    body += b'\x00' * (20000 - len(body))
    h2.send(frame(DATA, END_STREAM, 1, body))
    h2.read_until(lambda c: c.goaway() is not None)
    ga = h2.goaway()
    R.check('frame over 16384 bytes: GOAWAY', ga is not None, h2.frames[:5])
    if ga:
        R.eq('frame over 16384 bytes: GOAWAY error FRAME_SIZE_ERROR', ga[1], FRAME_SIZE_ERROR)
    h2.read_until(lambda c: False, timeout=3)
    R.check('frame over 16384 bytes: connection closed', h2.closed)
    R.check('frame over 16384 bytes: no answer on the stream', answer_kind(h2, 1) != 'ok')
    h2.close()
    still_serves(srv, 'an oversized frame')
    R.eq('frame over 16384 bytes: its trace is absent', trace_status(srv, tid), 404)

    # a frame header announcing 16 MiB, then the peer vanishes mid-frame
    h2 = H2(srv.grpc_port)
    h2.send(struct.pack('>I', 0xffffff)[1:] + bytes([DATA, 0]) + struct.pack('>I', 1) +
            b'\x00' * 100)
    h2.read_until(lambda c: c.goaway() is not None, timeout=5)
    R.check('16 MiB frame header: GOAWAY or close', h2.goaway() is not None or h2.closed)
    h2.close()
    still_serves(srv, 'a 16 MiB frame header')


def case_truncated_message(srv):
    h2 = H2(srv.grpc_port)
    tid = new_trace_id()
    msg = trace_request(tid, 'truncated')
    # the prefix announces the whole message, only half arrives before END_STREAM
    h2.request(1, grpc_message(msg[:len(msg) // 2], announced=len(msg)))
    h2.read_until(lambda c: c.stream_ended(1))
    R.eq('truncated gRPC message: a Trailers-Only error', answer_kind(h2, 1), 'error')
    # the connection keeps serving: a full message on the next stream
    tid2 = new_trace_id()
    h2.request(3, grpc_message(trace_request(tid2, 'after-truncated')))
    h2.read_until(lambda c: c.stream_ended(3))
    R.eq('same connection, next stream: ok', answer_kind(h2, 3), 'ok')
    # truncated inside the 5-byte prefix
    h2.request(5, b'\x00\x00\x00')
    h2.read_until(lambda c: c.stream_ended(5))
    R.eq('truncated prefix: a Trailers-Only error', answer_kind(h2, 5), 'error')
    h2.close()
    R.eq('truncated gRPC message: its trace is absent', trace_status(srv, tid), 404)
    R.eq('the full message after it: its trace is present', trace_status(srv, tid2), 200)
    still_serves(srv, 'a truncated gRPC message')

    # the client vanishes in the middle of a message
    h2 = H2(srv.grpc_port)
    tid3 = new_trace_id()
    msg = trace_request(tid3, 'vanished')
    h2.request(1, grpc_message(msg)[:len(msg) // 2], end=False)
    time.sleep(0.2)
    h2.close()
    still_serves(srv, 'a client that vanished mid-message')
    R.eq('vanished client: its trace is absent', trace_status(srv, tid3), 404)


def case_over_limit(srv):
    h2 = H2(srv.grpc_port)
    tid = new_trace_id()
    msg = trace_request(tid, 'over-limit')
    # announce 1 MiB (over the 64 KiB limit) and start uploading: refused from the prefix
    body = grpc_message(msg + b'\x00' * ((1 << 20) - len(msg)))
    t0 = time.monotonic()
    h2.request(1, body[:32768], end=False)
    h2.read_until(lambda c: c.stream_ended(1))
    R.eq('message over --otlp-grpc-max-recv-bytes: a Trailers-Only error before the upload ends',
         answer_kind(h2, 1), 'error')
    R.check('over-limit stream reset so the client stops sending',
            any(f[0] == RST_STREAM for f in h2.stream_frames(1)) or h2.read_until(
                lambda c: any(f[0] == RST_STREAM for f in c.stream_frames(1)), timeout=3),
            h2.stream_frames(1))
    R.check('over-limit answer came without the rest of the message', time.monotonic() - t0 < 9)
    h2.close()
    R.eq('over-limit message: its trace is absent', trace_status(srv, tid), 404)
    still_serves(srv, 'a message over the limit')

    # many streams on one connection, half of them over the limit, all answered
    h2 = H2(srv.grpc_port)
    good = []
    for i in range(20):
        stream = 1 + 2 * i
        if i % 2:
            h2.request(stream, grpc_message(b'\x0a' * 10, announced=MAX_RECV + 1))
        else:
            t = new_trace_id()
            good.append(t)
            h2.request(stream, grpc_message(trace_request(t, 'mixed-%d' % i)))
    h2.read_until(lambda c: all(c.stream_ended(1 + 2 * i) for i in range(20)))
    kinds = [answer_kind(h2, 1 + 2 * i) for i in range(20)]
    R.eq('20 interleaved streams: ok / error alternate',
         kinds, ['ok' if i % 2 == 0 else 'error' for i in range(20)])
    h2.close()
    R.eq('the accepted ones are readable', [trace_status(srv, t) for t in good], [200] * 10)


def case_idle_connections(srv):
    socks = [socket.create_connection(('127.0.0.1', srv.grpc_port)) for _ in range(50)]
    still_serves(srv, '50 connections that never send the preface')
    for s in socks:
        s.close()


def case_claude_code(srv):
    capture = suite_claude_code.load_capture()
    h2 = H2(srv.grpc_port)
    paths = {'traces': TRACES,
             'metrics': '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
             'logs': '/opentelemetry.proto.collector.logs.v1.LogsService/Export'}
    streams = []
    for i, rec in enumerate(capture):
        stream = 1 + 2 * i
        body = pb.encode_request(rec['signal'], rec['raw_json'])
        h2.request(stream, grpc_message(body), headers=grpc_headers(paths[rec['signal']]))
        streams.append(stream)
    h2.read_until(lambda c: all(c.stream_ended(st) for st in streams), timeout=30)
    kinds = [answer_kind(h2, st) for st in streams]
    R.eq('Claude Code capture over gRPC: %d exports answered ok' % len(streams),
         [k for k in kinds if k != 'ok'], [])
    h2.close()
    series = suite_claude_code.expected_series(capture)
    last_ms = max(v[-1][0] for v in series.values())
    t = '%.3f' % ((last_ms + 1000) / 1000)
    for name in ('claude_code_token_usage_tokens_total', 'claude_code_cost_usage_USD_total'):
        want = sum(v[-1][1] for k, v in series.items() if k[0] == name)
        r, j = get_json(srv.http_port, '/api/v1/query',
                        [('query', 'sum(last_over_time(%s[1h]))' % name), ('time', t)])
        got = ((j or {}).get('data') or {}).get('result') or []
        R.check('Claude Code over gRPC: total of %s = %s' % (name, go_float(want)),
                len(got) == 1 and abs(float(got[0]['value'][1]) - want) <= 1e-9 * max(1, want),
                r)
    sessions = {dict(k[1]).get('session_id') for k in series
                if k[0] == 'claude_code_token_usage_tokens_total'} - {None}
    r, j = get_json(srv.http_port, '/api/v1/query', [
        ('query', 'count(count by (session_id) (last_over_time('
                  'claude_code_token_usage_tokens_total[1h])))'), ('time', t)])
    got = ((j or {}).get('data') or {}).get('result') or []
    R.check('Claude Code over gRPC: %d session(s)' % len(sessions),
            len(sessions) > 0 and len(got) == 1 and got[0]['value'][1] == str(len(sessions)), r)


def case_graceful_shutdown():
    """SIGTERM while a call is half-sent: GOAWAY(NO_ERROR) naming the stream, the call still
    completes and is answered, the server exits 0, and after a restart the data is there."""
    srv = Server(name='grpc-stop')
    srv.start()
    h2 = H2(srv.grpc_port)
    tid = new_trace_id()
    body = grpc_message(trace_request(tid, 'during-shutdown'))
    h2.request(1, body[:10], end=False)
    h2.read_until(lambda c: any(f[0] == SETTINGS for f in c.frames), timeout=5)
    time.sleep(0.2)
    srv.proc.send_signal(signal.SIGTERM)
    h2.read_until(lambda c: c.goaway() is not None, timeout=5)
    ga = h2.goaway()
    R.check('SIGTERM: GOAWAY sent to an open connection', ga is not None, h2.frames)
    if ga:
        R.eq('SIGTERM: GOAWAY last stream id covers the call in flight, NO_ERROR', ga, (1, 0))
    h2.send(frame(DATA, END_STREAM, 1, body[10:]))
    h2.read_until(lambda c: c.stream_ended(1))
    R.eq('SIGTERM: the call in flight is still answered ok', answer_kind(h2, 1), 'ok')
    h2.read_until(lambda c: False, timeout=3)
    R.check('SIGTERM: the server closes the connection afterwards', h2.closed)
    h2.close()
    try:
        code = srv.proc.wait(15)
    except subprocess.TimeoutExpired:
        code = 'still running'
    R.eq('SIGTERM: exit code', code, 0)
    srv.stop()
    srv.start()
    R.eq('after restart: the trace answered during shutdown is stored', trace_status(srv, tid), 200)
    srv.stop()


def run():
    srv = Server(name='grpc', extra_args=['--otlp-grpc-max-recv-bytes', '64KiB'])
    srv.start()
    still_serves(srv, 'start')
    case_junk(srv)
    case_http1(srv)
    case_oversized_frame(srv)
    case_truncated_message(srv)
    case_over_limit(srv)
    case_idle_connections(srv)
    case_claude_code(srv)
    code = srv.stop()
    R.eq('clean exit on SIGTERM', code, 0)
    case_graceful_shutdown()
