"""suite_bad_input.py - malformed and hostile OTLP/HTTP requests get the right 4xx, never a crash.

Why: every byte of an ingest request is untrusted. OTLP-NOTES.md §2-§3 fix the answers: 400 with
a google.rpc.Status (encoded like the request) whose message says what is malformed, 413 when the
body is too large after decompression, 415 for other content types, 405 for other methods. The
server must stay up and bounded in memory (a gzip bomb must not be inflated into RAM).

How: one server; each case sends one request, checks the status (and the Status body for 400s),
then checks that /-/ready still answers. The gzip bomb is a hand-built deflate stream (one
dynamic-Huffman block of length-258/distance-1 matches, 2 bits per 258 zero bytes) that inflates
to 10 GiB from ~10 MiB; VmRSS/VmHWM of the server are read from /proc before and after.
"""

import json
import random
import select
import socket
import struct
import time
import zlib

from harness import R, Server, gz, http, now_ms
import pb

# ---- request bodies ----------------------------------------------------------------------------


def kv(key, **v):
    return {'key': key, 'value': v}


def span(**over):
    t = now_ms() * 10**6
    s = {'traceId': '5b8efff798038103d269b633813fc60c', 'spanId': 'eee19b7ec3c1b174',
         'name': 'bad-input', 'kind': 2, 'startTimeUnixNano': str(t), 'endTimeUnixNano': str(t + 1)}
    s.update(over)
    return s


def traces_req(*spans):
    return {'resourceSpans': [{'resource': {'attributes': [kv('service.name',
                                                               stringValue='bad')]},
                               'scopeSpans': [{'spans': list(spans)}]}]}


def logs_req(*recs):
    return {'resourceLogs': [{'resource': {'attributes': [kv('service.name', stringValue='bad')]},
                              'scopeLogs': [{'logRecords': list(recs)}]}]}


def log_rec(**over):
    r = {'timeUnixNano': str(now_ms() * 10**6), 'body': {'stringValue': 'x'}}
    r.update(over)
    return r


def nested_json_value(depth, kind='kvlist'):
    """AnyValue JSON text nested depth levels deep (built as text: json.dumps would recurse)."""
    if kind == 'kvlist':
        opener, closer = '{"kvlistValue":{"values":[{"key":"k","value":', '}]}}'
    else:
        opener, closer = '{"arrayValue":{"values":[', ']}}'
    return opener * depth + '{"stringValue":"x"}' + closer * depth


def nested_pb_value(depth, kind='kvlist'):
    v = pb.f_len(1, b'x')  # AnyValue{string_value}
    for _ in range(depth):
        if kind == 'kvlist':
            v = pb.f_len(6, pb.f_len(1, pb.f_len(1, b'k') + pb.f_len(2, v)))
        else:
            v = pb.f_len(5, pb.f_len(1, v))
    return v


def pb_traces_with_attr_value(value_bytes):
    """ExportTraceServiceRequest with one valid span carrying attribute k=<value_bytes>."""
    s = pb.json_to_pb('Span', span())
    s += pb.f_len(9, pb.f_len(1, b'deep') + pb.f_len(2, value_bytes))
    ss = pb.f_len(2, s)
    rs = pb.f_len(2, ss)
    return pb.f_len(1, rs)


def json_traces_with_attr_value(value_json):
    sp = span()
    sp['attributes'] = ['@@VALUE@@']
    text = json.dumps(traces_req(sp))
    return text.replace('"@@VALUE@@"', '{"key":"deep","value":%s}' % value_json).encode()


def random_invalid(signal, seed, n=4096):
    """Random bytes that really are not a decodable request (checked with the local walker)."""
    rnd = random.Random(seed)
    while True:
        b = rnd.randbytes(n)
        try:
            pb.strict_walk(pb.SIGNAL_MSG[signal], b)
        except (pb.WireError, UnicodeDecodeError):
            return b
        except Exception:  # noqa: BLE001 - any decode failure makes it invalid
            return b


# ---- gzip bomb ----------------------------------------------------------------------------------


class BitWriter:
    def __init__(self):
        self.acc = 0
        self.n = 0

    def put(self, val, nbits):
        self.acc |= (val & ((1 << nbits) - 1)) << self.n
        self.n += nbits

    def huff(self, code, length):
        for i in range(length - 1, -1, -1):
            self.put((code >> i) & 1, 1)


def _gf2_times(mat, vec):
    s = 0
    i = 0
    while vec:
        if vec & 1:
            s ^= mat[i]
        vec >>= 1
        i += 1
    return s


def _gf2_square(mat):
    return [_gf2_times(mat, mat[n]) for n in range(32)]


def crc32_zeros(n):
    """zlib.crc32(bytes(n)) without touching n bytes (zlib's crc32_combine operator)."""
    odd = [0xEDB88320] + [1 << (k - 1) for k in range(1, 32)]
    even = _gf2_square(odd)
    odd = _gf2_square(even)
    reg = 0xFFFFFFFF
    while n:
        even = _gf2_square(odd)
        if n & 1:
            reg = _gf2_times(even, reg)
        n >>= 1
        if not n:
            break
        odd = _gf2_square(even)
        if n & 1:
            reg = _gf2_times(odd, reg)
        n >>= 1
    return reg ^ 0xFFFFFFFF


def gzip_bomb(total_bytes):
    """A gzip member that inflates to total_bytes zero bytes (1 + 258*k)."""
    k = (total_bytes - 1) // 258
    size = 1 + 258 * k
    bw = BitWriter()
    bw.put(1, 1)  # BFINAL
    bw.put(2, 2)  # dynamic Huffman
    bw.put(286 - 257, 5)  # HLIT
    bw.put(1 - 1, 5)  # HDIST
    order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]
    cl_len = {18: 1, 1: 2, 2: 2}
    bw.put(18 - 4, 4)  # HCLEN: first 18 entries of order
    for sym in order[:18]:
        bw.put(cl_len.get(sym, 0), 3)
    cl_code = {18: (0, 1), 1: (2, 2), 2: (3, 2)}

    def cl(sym, extra=None):
        bw.huff(*cl_code[sym])
        if sym == 18:
            bw.put(extra - 11, 7)

    cl(2)             # literal 0: length 2
    cl(18, 138)       # literals 1..138: 0
    cl(18, 117)       # literals 139..255: 0
    cl(2)             # 256 (end of block): length 2
    cl(18, 28)        # 257..284: 0
    cl(1)             # 285 (length 258): length 1
    cl(1)             # distance code 0: length 1
    bw.huff(2, 2)     # literal 0
    header_bits = bw.n
    total_bits = header_bits + 2 * k + 2
    out = bytearray((total_bits + 7) // 8)
    acc = bw.acc
    for i in range((header_bits + 7) // 8):
        out[i] = (acc >> (8 * i)) & 0xFF
    # k matches are all-zero bits; then end of block (code 11)
    for b in (header_bits + 2 * k, header_bits + 2 * k + 1):
        out[b // 8] |= 1 << (b % 8)
    hdr = b'\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff'
    return hdr + bytes(out) + struct.pack('<II', crc32_zeros(size), size & 0xFFFFFFFF), size


# ---- raw HTTP for bodies the server may refuse before reading them -------------------------------


def raw_post(port, path, headers, body, chunked=False, timeout=120):
    """Sends a request whose body the server may cut short; returns (status, body) or (None, err)."""
    s = socket.create_connection(('127.0.0.1', port), timeout=timeout)
    try:
        h = ['POST %s HTTP/1.1' % path, 'Host: 127.0.0.1:%d' % port, 'Connection: close']
        h += ['%s: %s' % kv_ for kv_ in headers.items()]
        if chunked:
            h.append('Transfer-Encoding: chunked')
        else:
            h.append('Content-Length: %d' % len(body))
        s.sendall(('\r\n'.join(h) + '\r\n\r\n').encode())
        step = 1 << 20
        for off in range(0, len(body), step):
            r, _, _ = select.select([s], [], [], 0)
            if r:
                break  # the server already answered
            piece = body[off:off + step]
            try:
                if chunked:
                    s.sendall(b'%x\r\n' % len(piece) + piece + b'\r\n')
                else:
                    s.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
        else:
            if chunked:
                try:
                    s.sendall(b'0\r\n\r\n')
                except (BrokenPipeError, ConnectionResetError):
                    pass
        data = b''
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
                if b'\r\n\r\n' in data and _complete(data):
                    break
        except (ConnectionResetError, socket.timeout) as e:
            if not data:
                return None, str(e)
        if not data.startswith(b'HTTP/1.'):
            return None, data[:200]
        return int(data.split(b' ', 2)[1]), data.split(b'\r\n\r\n', 1)[-1]
    finally:
        s.close()


def _complete(data):
    head, _, rest = data.partition(b'\r\n\r\n')
    for line in head.split(b'\r\n')[1:]:
        if line.lower().startswith(b'content-length:'):
            return len(rest) >= int(line.split(b':', 1)[1])
    return False


# ---- checks --------------------------------------------------------------------------------------


def still_ready(srv, after):
    try:
        st = http('GET', srv.http_port, '/-/ready', timeout=5).status
    except OSError as e:
        st = str(e)
    R.check('/-/ready after %s' % after, st == 200, 'got %s; server alive=%s; log: %s'
            % (st, srv.alive(), srv.log_tail(600) if not srv.alive() else ''))


def check_400(srv, name, signal, body, enc, keywords=None, extra_headers=None, port=None):
    ctype = 'application/json' if enc == 'json' else 'application/x-protobuf'
    headers = {'Content-Type': ctype}
    headers.update(extra_headers or {})
    try:
        r = http('POST', port or srv.otlp_port, '/v1/' + signal, body, headers)
    except OSError as e:
        R.check(name + ' -> 400', False, 'connection error %s' % e)
        still_ready(srv, name)
        return
    if R.check(name + ' -> 400', r.status == 400, r):
        msg = None
        if enc == 'json':
            R.eq(name + ': error Content-Type', r.ctype(), 'application/json')
            try:
                msg = r.json().get('message')
            except (ValueError, AttributeError):
                pass
        else:
            R.eq(name + ': error Content-Type', r.ctype(), 'application/x-protobuf')
            try:
                msg = pb.pb_to_canon('RpcStatus', r.body).get('message')
            except (ValueError, pb.WireError):
                pass
        if R.check(name + ': body is a Status with a message', bool(msg), r.raw_body[:300]) \
                and keywords:
            R.check(name + ': message says what is malformed (%s)' % '|'.join(keywords),
                    any(k in msg.lower() for k in keywords), msg)
    still_ready(srv, name)


def check_status(srv, name, method, path, body, headers, want, port=None):
    try:
        r = http(method, port or srv.otlp_port, path, body, headers)
        R.check('%s -> %s' % (name, want), r.status in (want if isinstance(want, tuple)
                                                        else (want,)), r)
    except OSError as e:
        R.check('%s -> %s' % (name, want), False, 'connection error %s' % e)
    still_ready(srv, name)


def run():
    srv = Server(name='bad')
    srv.start()
    good = pb.encode_request('traces', traces_req(span()))

    # gzip bomb first, while the server's peak RSS is still its idle one
    bomb, size = gzip_bomb(10 << 30)
    time.sleep(0.2)
    rss0 = srv.rss_kib('VmRSS')
    t0 = time.monotonic()
    st, body = raw_post(srv.otlp_port, '/v1/traces', {'Content-Type': 'application/x-protobuf',
                                                      'Content-Encoding': 'gzip'}, bomb)
    dt = time.monotonic() - t0
    R.check('gzip bomb (%d MiB -> %d GiB of zeros) -> 413' % (len(bomb) >> 20, size >> 30),
            st == 413, 'status %s %r' % (st, body[:200]))
    rss1, hwm = srv.rss_kib('VmRSS'), srv.rss_kib('VmHWM')
    print('   gzip bomb: answered %s in %.2fs; VmRSS %d -> %d KiB, VmHWM %d KiB'
          % (st, dt, rss0, rss1, hwm), flush=True)
    if srv.is_asan():
        # ASan's quarantine keeps freed memory resident on purpose: only the peak is meaningful.
        print('   (ASan build: VmRSS-after check skipped, VmHWM check kept)', flush=True)
    else:
        R.check('gzip bomb: VmRSS grows < 128 MiB', rss1 - rss0 < 128 * 1024,
                '%d -> %d KiB' % (rss0, rss1))
    R.check('gzip bomb: VmHWM stays < idle + 512 MiB', hwm < rss0 + 512 * 1024,
            'idle %d KiB, peak %d KiB' % (rss0, hwm))
    still_ready(srv, 'gzip bomb')
    st, body = raw_post(srv.http_port, '/v1/logs', {'Content-Type': 'application/json',
                                                    'Content-Encoding': 'gzip'}, bomb)
    R.check('gzip bomb on the main port -> 413', st == 413, 'status %s %r' % (st, body[:200]))
    still_ready(srv, 'gzip bomb on the main port')

    big = bytes(70 << 20)
    st, body = raw_post(srv.otlp_port, '/v1/traces', {'Content-Type': 'application/x-protobuf'},
                        big)
    R.check('70 MiB body (Content-Length) -> 413', st == 413, 'status %s %r' % (st, body[:200]))
    still_ready(srv, '70 MiB body')
    st, body = raw_post(srv.otlp_port, '/v1/metrics', {'Content-Type': 'application/x-protobuf'},
                        big, chunked=True)
    R.check('70 MiB body (chunked) -> 413', st == 413, 'status %s %r' % (st, body[:200]))
    still_ready(srv, '70 MiB chunked body')

    # undecodable bodies
    for sig in ('traces', 'metrics', 'logs'):
        req = {'traces': traces_req(span()),
               'metrics': {'resourceMetrics': [{'scopeMetrics': [{'metrics': [
                   {'name': 'g', 'gauge': {'dataPoints': [{'timeUnixNano': '1', 'asDouble': 1}]}}]}]}]},
               'logs': logs_req(log_rec())}[sig]
        full = pb.encode_request(sig, req)
        check_400(srv, 'truncated protobuf %s' % sig, sig, full[:len(full) // 2], 'pb')
        check_400(srv, 'random bytes as protobuf %s' % sig, sig, random_invalid(sig, 7), 'pb')
        check_400(srv, 'invalid JSON %s' % sig, sig, b'{"resource' + sig[:3].encode() + b'":[', 'json')
        check_400(srv, 'gzip header then garbage (%s)' % sig, sig,
                  b'\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff' + bytes(range(200)), 'pb',
                  extra_headers={'Content-Encoding': 'gzip'})
    check_400(srv, 'not JSON at all', 'traces', b'hello world', 'json')
    check_400(srv, 'resourceSpans is an object, not an array', 'traces',
              b'{"resourceSpans":{"x":1}}', 'json')

    # content type, method, encoding
    for ct in ('text/plain', 'application/xml'):
        check_status(srv, 'Content-Type %s' % ct, 'POST', '/v1/traces', good,
                     {'Content-Type': ct}, 415)
    check_status(srv, 'no Content-Type', 'POST', '/v1/traces', good, {}, 415)
    check_status(srv, 'Content-Type text/plain on the main port', 'POST', '/v1/logs', b'{}',
                 {'Content-Type': 'text/plain'}, 415, port=srv.http_port)
    for m, path in (('GET', '/v1/traces'), ('PUT', '/v1/metrics'), ('DELETE', '/v1/logs')):
        check_status(srv, '%s %s' % (m, path), m, path, None, {}, 405)
    check_status(srv, 'GET /v1/metrics on the main port', 'GET', '/v1/metrics', None, {}, 405,
                 port=srv.http_port)
    check_status(srv, 'unknown Content-Encoding br', 'POST', '/v1/traces', good,
                 {'Content-Type': 'application/x-protobuf', 'Content-Encoding': 'br'},
                 (400, 415))

    # semantic errors inside well-formed encodings
    for depth in (100, 10000):
        check_400(srv, 'AnyValue kvlist nested %d deep (JSON)' % depth, 'traces',
                  json_traces_with_attr_value(nested_json_value(depth)), 'json',
                  ['depth', 'nest', 'deep'])
        check_400(srv, 'AnyValue array nested %d deep (JSON)' % depth, 'traces',
                  json_traces_with_attr_value(nested_json_value(depth, 'array')), 'json',
                  ['depth', 'nest', 'deep'])
        check_400(srv, 'AnyValue kvlist nested %d deep (protobuf)' % depth, 'traces',
                  pb_traces_with_attr_value(nested_pb_value(depth)), 'pb',
                  ['depth', 'nest', 'deep'])
        check_400(srv, 'AnyValue array nested %d deep (protobuf)' % depth, 'traces',
                  pb_traces_with_attr_value(nested_pb_value(depth, 'array')), 'pb',
                  ['depth', 'nest', 'deep'])
    lb = pb.f_len(1, pb.f_len(2, pb.f_len(2, pb.f_fixed64(1, now_ms() * 10**6)
                                          + pb.f_len(5, nested_pb_value(10000)))))
    check_400(srv, 'log body nested 10000 deep (protobuf)', 'logs', lb, 'pb',
              ['depth', 'nest', 'deep'])

    utf = ['utf', 'decode byte', 'invalid byte', 'encoding']
    check_400(srv, 'invalid UTF-8 in span name (protobuf)', 'traces',
              pb.encode_request('traces', traces_req(span(name=b'bad \xff\xfe name'))), 'pb', utf)
    check_400(srv, 'invalid UTF-8 in attribute key (protobuf)', 'traces',
              pb.encode_request('traces', traces_req(span(attributes=[
                  {'key': b'k\xc3', 'value': {'stringValue': 'v'}}]))), 'pb', utf)
    check_400(srv, 'invalid UTF-8 in log body (protobuf)', 'logs',
              pb.encode_request('logs', logs_req(log_rec(body={'stringValue': b'\xed\xa0\x80'}))),
              'pb', utf)
    check_400(srv, 'invalid UTF-8 in resource attribute value (protobuf)', 'logs',
              pb.encode_request('logs', {'resourceLogs': [{'resource': {'attributes': [
                  {'key': 'service.name', 'value': {'stringValue': b'\xc0\xaf'}}]},
                  'scopeLogs': [{'logRecords': [log_rec()]}]}]}), 'pb', utf)
    raw_json = json.dumps(logs_req(log_rec(body={'stringValue': '@@BAD@@'}))).encode()
    check_400(srv, 'invalid UTF-8 bytes inside a JSON string', 'logs',
              raw_json.replace(b'@@BAD@@', b'bad \xff byte'), 'json', utf)

    idw = ['trace', 'span', 'id']
    check_400(srv, 'trace id of 15 bytes (protobuf)', 'traces',
              pb.encode_request('traces', traces_req(span(traceId='ab' * 15))), 'pb', idw)
    check_400(srv, 'trace id of 17 bytes (protobuf)', 'traces',
              pb.encode_request('traces', traces_req(span(traceId='ab' * 17))), 'pb', idw)
    check_400(srv, 'span id of 7 bytes (protobuf)', 'traces',
              pb.encode_request('traces', traces_req(span(spanId='cd' * 7))), 'pb', idw)
    check_400(srv, 'parent span id of 5 bytes (protobuf)', 'traces',
              pb.encode_request('traces', traces_req(span(parentSpanId='ef' * 5))), 'pb', idw)
    check_400(srv, 'link trace id of 3 bytes (protobuf)', 'traces',
              pb.encode_request('traces', traces_req(span(links=[
                  {'traceId': 'aabbcc', 'spanId': '0102030405060708'}]))), 'pb', idw)
    check_400(srv, 'log trace id of 8 bytes (protobuf)', 'logs',
              pb.encode_request('logs', logs_req(log_rec(traceId='11' * 8))), 'pb', idw)
    check_400(srv, 'trace id of 30 hex chars (JSON)', 'traces',
              json.dumps(traces_req(span(traceId='ab' * 15))).encode(), 'json', idw)
    check_400(srv, 'span id of 14 hex chars (JSON)', 'traces',
              json.dumps(traces_req(span(spanId='cd' * 7))).encode(), 'json', idw)
    check_400(srv, 'trace id with non-hex characters (JSON)', 'traces',
              json.dumps(traces_req(span(traceId='zz' * 16))).encode(), 'json', idw)

    # the server still takes good data and did not keep anything from the bad requests
    r = http('POST', srv.otlp_port, '/v1/traces', good,
             {'Content-Type': 'application/x-protobuf'})
    R.eq('a valid request after all that -> 200', r.status, 200)
    r = http('POST', srv.otlp_port, '/v1/traces', gz(good),
             {'Content-Type': 'application/x-protobuf', 'Content-Encoding': 'gzip'})
    R.eq('a valid gzipped request after all that -> 200', r.status, 200)
    R.check('server still running', srv.alive(), srv.log_tail())
    srv.stop()


def _selftest():
    b, size = gzip_bomb(1 << 20)
    d = zlib.decompressobj(31)
    out = d.decompress(b)
    assert out == bytes(size) and d.eof, (len(out), size)
    assert crc32_zeros(12345) == zlib.crc32(bytes(12345))


_selftest()
