"""pb.py - a tiny protobuf wire encoder/decoder and an OTLP schema, for the integration tests.

Why: the tests must send OTLP/protobuf without pip packages, and read protobuf answers back
(Export*ServiceResponse, google.rpc.Status, Tempo's Trace). Field numbers come from
../shared/specs/OTLP-NOTES.md §6.

How: test data is written once as OTLP/JSON dicts (the spec's JSON form: lowerCamelCase keys, hex
ids, int enums, 64-bit ints as strings or numbers). json_to_pb() encodes such a dict as protobuf
following SCHEMA; pb_to_canon() decodes protobuf into the *canonical* dict form, and canon() maps
an OTLP/JSON dict to the same form (ints for every integer, lower-case hex ids, base64 bytes,
proto3 defaults dropped, oneof members kept). Two messages are equal when their canonical forms
are equal, whichever encoding each came in.

Deliberately malformed input can be built too: ids are hex-decoded whatever their length, and a
string field given as Python bytes is written raw (e.g. invalid UTF-8).
"""

import base64
import math
import struct

# ---- wire level -------------------------------------------------------------------------------

VARINT, I64, LEN, I32 = 0, 1, 2, 5


def enc_varint(n):
    if n < 0:
        n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def tag(field, wt):
    return enc_varint((field << 3) | wt)


def f_varint(field, v):
    return tag(field, VARINT) + enc_varint(v)


def f_len(field, b):
    return tag(field, LEN) + enc_varint(len(b)) + b


def f_fixed64(field, v):
    return tag(field, I64) + struct.pack('<Q', v & ((1 << 64) - 1))


def f_double(field, v):
    return tag(field, I64) + struct.pack('<d', v)


def f_fixed32(field, v):
    return tag(field, I32) + struct.pack('<I', v & 0xFFFFFFFF)


def zigzag(n):
    return (n << 1) ^ (n >> 63)


class WireError(ValueError):
    pass


def dec_varint(buf, pos):
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise WireError('truncated varint')
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise WireError('varint too long')


def walk(buf):
    """Yields (field, wire_type, value) for one message level; raises WireError when malformed.
    value is an int for VARINT/I64/I32 (unsigned) and bytes for LEN."""
    pos = 0
    n = len(buf)
    while pos < n:
        key, pos = dec_varint(buf, pos)
        field, wt = key >> 3, key & 7
        if field == 0:
            raise WireError('field number 0')
        if wt == VARINT:
            v, pos = dec_varint(buf, pos)
        elif wt == I64:
            if pos + 8 > n:
                raise WireError('truncated fixed64')
            v = struct.unpack_from('<Q', buf, pos)[0]
            pos += 8
        elif wt == I32:
            if pos + 4 > n:
                raise WireError('truncated fixed32')
            v = struct.unpack_from('<I', buf, pos)[0]
            pos += 4
        elif wt == LEN:
            ln, pos = dec_varint(buf, pos)
            if pos + ln > n:
                raise WireError('truncated length-delimited field')
            v = bytes(buf[pos:pos + ln])
            pos += ln
        else:
            raise WireError('invalid wire type %d' % wt)
        yield field, wt, v


# ---- schema -----------------------------------------------------------------------------------
# message -> list of (json_name, field_no, type, flags). flags: 'r' repeated, 'p' packed repeated,
# 'o' oneof or proto3-optional member (kept even when it holds the default value).
# types: string bytes id bool enum int32 uint32 int64 uint64 sint32 fixed32 fixed64 sfixed64 double,
# or a message name.

SCHEMA = {
    'AnyValue': [('stringValue', 1, 'string', 'o'), ('boolValue', 2, 'bool', 'o'),
                 ('intValue', 3, 'int64', 'o'), ('doubleValue', 4, 'double', 'o'),
                 ('arrayValue', 5, 'ArrayValue', 'o'), ('kvlistValue', 6, 'KeyValueList', 'o'),
                 ('bytesValue', 7, 'bytes', 'o')],
    'ArrayValue': [('values', 1, 'AnyValue', 'r')],
    'KeyValueList': [('values', 1, 'KeyValue', 'r')],
    'KeyValue': [('key', 1, 'string', ''), ('value', 2, 'AnyValue', '')],
    'InstrumentationScope': [('name', 1, 'string', ''), ('version', 2, 'string', ''),
                             ('attributes', 3, 'KeyValue', 'r'),
                             ('droppedAttributesCount', 4, 'uint32', '')],
    'Resource': [('attributes', 1, 'KeyValue', 'r'), ('droppedAttributesCount', 2, 'uint32', '')],
    # traces
    'TracesData': [('resourceSpans', 1, 'ResourceSpans', 'r')],
    'ResourceSpans': [('resource', 1, 'Resource', ''), ('scopeSpans', 2, 'ScopeSpans', 'r'),
                      ('schemaUrl', 3, 'string', '')],
    'ScopeSpans': [('scope', 1, 'InstrumentationScope', ''), ('spans', 2, 'Span', 'r'),
                   ('schemaUrl', 3, 'string', '')],
    'Span': [('traceId', 1, 'id', ''), ('spanId', 2, 'id', ''), ('traceState', 3, 'string', ''),
             ('parentSpanId', 4, 'id', ''), ('flags', 16, 'fixed32', ''), ('name', 5, 'string', ''),
             ('kind', 6, 'enum', ''), ('startTimeUnixNano', 7, 'fixed64', ''),
             ('endTimeUnixNano', 8, 'fixed64', ''), ('attributes', 9, 'KeyValue', 'r'),
             ('droppedAttributesCount', 10, 'uint32', ''), ('events', 11, 'Event', 'r'),
             ('droppedEventsCount', 12, 'uint32', ''), ('links', 13, 'Link', 'r'),
             ('droppedLinksCount', 14, 'uint32', ''), ('status', 15, 'Status', '')],
    'Event': [('timeUnixNano', 1, 'fixed64', ''), ('name', 2, 'string', ''),
              ('attributes', 3, 'KeyValue', 'r'), ('droppedAttributesCount', 4, 'uint32', '')],
    'Link': [('traceId', 1, 'id', ''), ('spanId', 2, 'id', ''), ('traceState', 3, 'string', ''),
             ('attributes', 4, 'KeyValue', 'r'), ('droppedAttributesCount', 5, 'uint32', ''),
             ('flags', 6, 'fixed32', '')],
    'Status': [('message', 2, 'string', ''), ('code', 3, 'enum', '')],
    # metrics
    'MetricsData': [('resourceMetrics', 1, 'ResourceMetrics', 'r')],
    'ResourceMetrics': [('resource', 1, 'Resource', ''), ('scopeMetrics', 2, 'ScopeMetrics', 'r'),
                        ('schemaUrl', 3, 'string', '')],
    'ScopeMetrics': [('scope', 1, 'InstrumentationScope', ''), ('metrics', 2, 'Metric', 'r'),
                     ('schemaUrl', 3, 'string', '')],
    'Metric': [('name', 1, 'string', ''), ('description', 2, 'string', ''), ('unit', 3, 'string', ''),
               ('gauge', 5, 'Gauge', 'o'), ('sum', 7, 'Sum', 'o'), ('histogram', 9, 'Histogram', 'o'),
               ('exponentialHistogram', 10, 'ExponentialHistogram', 'o'),
               ('summary', 11, 'Summary', 'o'), ('metadata', 12, 'KeyValue', 'r')],
    'Gauge': [('dataPoints', 1, 'NumberDataPoint', 'r')],
    'Sum': [('dataPoints', 1, 'NumberDataPoint', 'r'), ('aggregationTemporality', 2, 'enum', ''),
            ('isMonotonic', 3, 'bool', '')],
    'Histogram': [('dataPoints', 1, 'HistogramDataPoint', 'r'),
                  ('aggregationTemporality', 2, 'enum', '')],
    'ExponentialHistogram': [('dataPoints', 1, 'ExponentialHistogramDataPoint', 'r'),
                             ('aggregationTemporality', 2, 'enum', '')],
    'Summary': [('dataPoints', 1, 'SummaryDataPoint', 'r')],
    'NumberDataPoint': [('attributes', 7, 'KeyValue', 'r'), ('startTimeUnixNano', 2, 'fixed64', ''),
                        ('timeUnixNano', 3, 'fixed64', ''), ('asDouble', 4, 'double', 'o'),
                        ('asInt', 6, 'sfixed64', 'o'), ('exemplars', 5, 'Exemplar', 'r'),
                        ('flags', 8, 'uint32', '')],
    'HistogramDataPoint': [('attributes', 9, 'KeyValue', 'r'),
                           ('startTimeUnixNano', 2, 'fixed64', ''),
                           ('timeUnixNano', 3, 'fixed64', ''), ('count', 4, 'fixed64', ''),
                           ('sum', 5, 'double', 'o'), ('bucketCounts', 6, 'fixed64', 'p'),
                           ('explicitBounds', 7, 'double', 'p'), ('exemplars', 8, 'Exemplar', 'r'),
                           ('flags', 10, 'uint32', ''), ('min', 11, 'double', 'o'),
                           ('max', 12, 'double', 'o')],
    'ExponentialHistogramDataPoint': [
        ('attributes', 1, 'KeyValue', 'r'), ('startTimeUnixNano', 2, 'fixed64', ''),
        ('timeUnixNano', 3, 'fixed64', ''), ('count', 4, 'fixed64', ''), ('sum', 5, 'double', 'o'),
        ('scale', 6, 'sint32', ''), ('zeroCount', 7, 'fixed64', ''), ('positive', 8, 'Buckets', ''),
        ('negative', 9, 'Buckets', ''), ('flags', 10, 'uint32', ''),
        ('exemplars', 11, 'Exemplar', 'r'), ('min', 12, 'double', 'o'), ('max', 13, 'double', 'o'),
        ('zeroThreshold', 14, 'double', '')],
    'Buckets': [('offset', 1, 'sint32', ''), ('bucketCounts', 2, 'uint64', 'p')],
    'SummaryDataPoint': [('attributes', 7, 'KeyValue', 'r'), ('startTimeUnixNano', 2, 'fixed64', ''),
                         ('timeUnixNano', 3, 'fixed64', ''), ('count', 4, 'fixed64', ''),
                         ('sum', 5, 'double', ''), ('quantileValues', 6, 'ValueAtQuantile', 'r'),
                         ('flags', 8, 'uint32', '')],
    'ValueAtQuantile': [('quantile', 1, 'double', ''), ('value', 2, 'double', '')],
    'Exemplar': [('filteredAttributes', 7, 'KeyValue', 'r'), ('timeUnixNano', 2, 'fixed64', ''),
                 ('asDouble', 3, 'double', 'o'), ('asInt', 6, 'sfixed64', 'o'),
                 ('spanId', 4, 'id', ''), ('traceId', 5, 'id', '')],
    # logs
    'LogsData': [('resourceLogs', 1, 'ResourceLogs', 'r')],
    'ResourceLogs': [('resource', 1, 'Resource', ''), ('scopeLogs', 2, 'ScopeLogs', 'r'),
                     ('schemaUrl', 3, 'string', '')],
    'ScopeLogs': [('scope', 1, 'InstrumentationScope', ''), ('logRecords', 2, 'LogRecord', 'r'),
                  ('schemaUrl', 3, 'string', '')],
    'LogRecord': [('timeUnixNano', 1, 'fixed64', ''), ('observedTimeUnixNano', 11, 'fixed64', ''),
                  ('severityNumber', 2, 'enum', ''), ('severityText', 3, 'string', ''),
                  ('body', 5, 'AnyValue', ''), ('attributes', 6, 'KeyValue', 'r'),
                  ('droppedAttributesCount', 7, 'uint32', ''), ('flags', 8, 'fixed32', ''),
                  ('traceId', 9, 'id', ''), ('spanId', 10, 'id', ''), ('eventName', 12, 'string', '')],
    # collector responses and rpc status
    'PartialSuccess': [('rejected', 1, 'int64', ''), ('errorMessage', 2, 'string', '')],
    'ExportResponse': [('partialSuccess', 1, 'PartialSuccess', '')],
    'RpcStatus': [('code', 1, 'int32', ''), ('message', 2, 'string', ''),
                  ('details', 3, 'bytes', 'r')],
}

# Requests have the same layout as the *Data messages.
SCHEMA['ExportTraceServiceRequest'] = SCHEMA['TracesData']
SCHEMA['ExportMetricsServiceRequest'] = SCHEMA['MetricsData']
SCHEMA['ExportLogsServiceRequest'] = SCHEMA['LogsData']

SIGNAL_MSG = {'traces': 'TracesData', 'metrics': 'MetricsData', 'logs': 'LogsData'}

_VARINT_TYPES = ('bool', 'enum', 'int32', 'uint32', 'int64', 'uint64', 'sint32')
_I64_TYPES = ('fixed64', 'sfixed64', 'double')

ENUM_NAMES = {
    'SPAN_KIND_UNSPECIFIED': 0, 'SPAN_KIND_INTERNAL': 1, 'SPAN_KIND_SERVER': 2,
    'SPAN_KIND_CLIENT': 3, 'SPAN_KIND_PRODUCER': 4, 'SPAN_KIND_CONSUMER': 5,
    'STATUS_CODE_UNSET': 0, 'STATUS_CODE_OK': 1, 'STATUS_CODE_ERROR': 2,
    'AGGREGATION_TEMPORALITY_UNSPECIFIED': 0, 'AGGREGATION_TEMPORALITY_DELTA': 1,
    'AGGREGATION_TEMPORALITY_CUMULATIVE': 2,
}


def _snake(name):
    out = []
    for ch in name:
        if ch.isupper():
            out.append('_' + ch.lower())
        else:
            out.append(ch)
    return ''.join(out)


def _get(obj, jname):
    if jname in obj:
        return obj[jname]
    s = _snake(jname)
    if s in obj:
        return obj[s]
    return None


def _to_int(v):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return int(v)
    if isinstance(v, str):
        if v in ENUM_NAMES:
            return ENUM_NAMES[v]
        return int(v)
    raise TypeError('not an integer: %r' % (v,))


def _to_float(v):
    if isinstance(v, str):
        specials = {'NaN': math.nan, 'Infinity': math.inf, '-Infinity': -math.inf}
        if v in specials:
            return specials[v]
    return float(v)


def _scalar_bytes(ftype, v):
    """Encodes one scalar value without a tag (used for packed fields)."""
    if ftype in ('fixed64', 'sfixed64'):
        return struct.pack('<Q', _to_int(v) & ((1 << 64) - 1))
    if ftype == 'double':
        return struct.pack('<d', _to_float(v))
    if ftype == 'sint32':
        return enc_varint(zigzag(_to_int(v)))
    return enc_varint(_to_int(v))


def _enc_field(fno, ftype, v):
    if ftype in SCHEMA:
        return f_len(fno, json_to_pb(ftype, v))
    if ftype == 'string':
        return f_len(fno, v if isinstance(v, bytes) else v.encode('utf-8'))
    if ftype == 'bytes':
        return f_len(fno, v if isinstance(v, bytes) else base64.b64decode(v))
    if ftype == 'id':
        return f_len(fno, v if isinstance(v, bytes) else bytes.fromhex(v))
    if ftype == 'bool':
        return f_varint(fno, 1 if v else 0)
    if ftype == 'sint32':
        return f_varint(fno, zigzag(_to_int(v)))
    if ftype in _VARINT_TYPES:
        return f_varint(fno, _to_int(v))
    if ftype in ('fixed64', 'sfixed64'):
        return f_fixed64(fno, _to_int(v))
    if ftype == 'double':
        return f_double(fno, _to_float(v))
    if ftype == 'fixed32':
        return f_fixed32(fno, _to_int(v))
    raise ValueError('unknown type ' + ftype)


def json_to_pb(msg, obj):
    """Encodes an OTLP/JSON dict of message type msg as protobuf bytes (fields in schema order)."""
    out = bytearray()
    for jname, fno, ftype, flags in SCHEMA[msg]:
        v = _get(obj, jname)
        if v is None:
            continue
        if 'p' in flags:
            if v:
                out += f_len(fno, b''.join(_scalar_bytes(ftype, x) for x in v))
        elif 'r' in flags:
            for x in v:
                out += _enc_field(fno, ftype, x)
        else:
            out += _enc_field(fno, ftype, v)
    return bytes(out)


def encode_request(signal, obj):
    return json_to_pb(SIGNAL_MSG[signal], obj)


# ---- canonical form ---------------------------------------------------------------------------


def _is_default(ftype, v):
    if ftype in SCHEMA:
        return False
    if ftype in ('string', 'bytes', 'id'):
        return v == ''
    if ftype == 'bool':
        return v is False
    if ftype == 'double':
        return v == 0.0 and math.copysign(1, v) > 0
    return v == 0


def _canon_scalar(ftype, v):
    if ftype == 'string':
        return v
    if ftype == 'bytes':
        return base64.b64encode(base64.b64decode(v)).decode() if v else ''
    if ftype == 'id':
        return v.lower()
    if ftype == 'bool':
        return bool(v)
    if ftype == 'double':
        return _to_float(v)
    return _to_int(v)


def canon(msg, obj):
    """Canonical form of an OTLP/JSON dict (see the file comment)."""
    out = {}
    for jname, _fno, ftype, flags in SCHEMA[msg]:
        v = _get(obj, jname)
        if v is None:
            continue
        if 'r' in flags or 'p' in flags:
            items = [canon(ftype, x) if ftype in SCHEMA else _canon_scalar(ftype, x) for x in v]
            if items:
                out[jname] = items
            continue
        cv = canon(ftype, v) if ftype in SCHEMA else _canon_scalar(ftype, v)
        if 'o' in flags or not _is_default(ftype, cv):
            out[jname] = cv
    return _drop_empty_messages(msg, out)


def _drop_empty_messages(msg, out):
    """An empty singular sub-message (e.g. "status": {}) means the same as an absent one; oneof
    members (an empty kvlistValue) are kept because their presence is the value."""
    for jname, _fno, ftype, flags in SCHEMA[msg]:
        if ftype in SCHEMA and 'o' not in flags and 'r' not in flags and out.get(jname) == {}:
            del out[jname]
    return out


def _dec_scalar(ftype, wt, v):
    if ftype in ('string',):
        if wt != LEN:
            raise WireError('wrong wire type for string')
        return v.decode('utf-8')
    if ftype == 'bytes':
        return base64.b64encode(v).decode()
    if ftype == 'id':
        return v.hex()
    if ftype == 'double':
        if wt != I64:
            raise WireError('wrong wire type for double')
        return struct.unpack('<d', struct.pack('<Q', v))[0]
    if ftype == 'sfixed64' or ftype == 'int64':
        return v - (1 << 64) if v >= (1 << 63) else v
    if ftype == 'int32':
        v &= (1 << 64) - 1
        return v - (1 << 64) if v >= (1 << 63) else v
    if ftype == 'sint32':
        return (v >> 1) ^ -(v & 1)
    if ftype == 'bool':
        return bool(v)
    return v


def _unpack(ftype, data):
    vals = []
    pos = 0
    while pos < len(data):
        if ftype in ('fixed64', 'sfixed64', 'double'):
            if pos + 8 > len(data):
                raise WireError('truncated packed fixed64')
            raw = struct.unpack_from('<Q', data, pos)[0]
            pos += 8
            vals.append(_dec_scalar(ftype, I64, raw))
        else:
            raw, pos = dec_varint(data, pos)
            vals.append(_dec_scalar(ftype, VARINT, raw))
    return vals


def pb_to_canon(msg, data):
    """Decodes protobuf bytes of message type msg into the canonical dict form."""
    by_no = {fno: (jname, ftype, flags) for jname, fno, ftype, flags in SCHEMA[msg]}
    out = {}
    for fno, wt, v in walk(data):
        if fno not in by_no:
            continue
        jname, ftype, flags = by_no[fno]
        if ftype in SCHEMA:
            if wt != LEN:
                raise WireError('wrong wire type for message field %s' % jname)
            val = pb_to_canon(ftype, v)
        elif ('p' in flags) and wt == LEN:
            out.setdefault(jname, []).extend(_unpack(ftype, v))
            continue
        else:
            val = _dec_scalar(ftype, wt, v)
        if 'r' in flags or 'p' in flags:
            out.setdefault(jname, []).append(val)
        elif 'o' in flags and ftype not in SCHEMA:
            # A later oneof member replaces an earlier one.
            for jn, _f, _t, fl in SCHEMA[msg]:
                if 'o' in fl and jn in out and jn != jname and msg in ('AnyValue',
                                                                      'NumberDataPoint',
                                                                      'Exemplar'):
                    del out[jn]
            out[jname] = val
        elif ftype in SCHEMA and jname in out:
            # Repeated occurrences of a singular message field merge.
            out[jname] = _merge(out[jname], val)
        else:
            out[jname] = val
    # drop proto3 defaults of non-oneof scalars so that the form matches canon()
    for jname, _fno, ftype, flags in SCHEMA[msg]:
        if jname in out and 'o' not in flags and 'r' not in flags and 'p' not in flags \
                and ftype not in SCHEMA and _is_default(ftype, out[jname]):
            del out[jname]
    return _drop_empty_messages(msg, out)


def _merge(a, b):
    r = dict(a)
    for k, v in b.items():
        if isinstance(v, list):
            r[k] = r.get(k, []) + v
        elif isinstance(v, dict) and isinstance(r.get(k), dict):
            r[k] = _merge(r[k], v)
        else:
            r[k] = v
    return r


def strict_walk(msg, data):
    """Raises WireError when data is not a well-formed message of type msg (recursively)."""
    pb_to_canon(msg, data)
