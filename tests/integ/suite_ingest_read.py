"""suite_ingest_read.py - OTLP in (JSON, protobuf, gzip, both ports), exact values out.

Why: the core promise: what an OTLP client sends comes back unchanged through the Prometheus,
Tempo and Loki read APIs, with the OTel->Prometheus naming of OTLP-NOTES.md §7 and delta sums made
cumulative.

How: four variants (json on the OTLP port, protobuf on the main port, gzipped json on the OTLP
port, gzipped protobuf on the main port), each with its own metric names, trace and log service,
built from one OTLP/JSON description (lib/pb.py encodes protobuf). Expected Prometheus names,
labels and value strings are computed here from the specs (lib/harness.py), not taken from the
server. Then partial success, CORS, /metrics and the health endpoints.
"""

import base64
import json
import random

from harness import (R, Server, attrs_to_labels, fmt_ts, get_json, go_float, gz, http,
                     loki_entries, now_ms, prom_metric_name, prom_range_samples, prom_ts_ms,
                     selector)
import pb

VARIANTS = [  # name, port key, encoding, gzip, numbers-for-64-bit-ints
    ('json', 'otlp', 'json', False, False),
    ('pb', 'http', 'pb', False, False),
    ('jsongz', 'otlp', 'json', True, True),
    ('pbgz', 'http', 'pb', True, False),
]

INT64_KEYS = {'timeUnixNano', 'startTimeUnixNano', 'endTimeUnixNano', 'observedTimeUnixNano',
              'intValue', 'asInt', 'count', 'bucketCounts'}

RESPONSE_REJECT_KEY = {'traces': 'rejectedSpans', 'metrics': 'rejectedDataPoints',
                       'logs': 'rejectedLogRecords'}


def numify(o):
    """64-bit ints as JSON numbers instead of strings (receivers MUST accept both)."""
    if isinstance(o, dict):
        return {k: (_num(v) if k in INT64_KEYS else numify(v)) for k, v in o.items()}
    if isinstance(o, list):
        return [numify(x) for x in o]
    return o


def _num(v):
    if isinstance(v, list):
        return [int(x) for x in v]
    if isinstance(v, str):
        return int(v)
    return v


def port_of(srv, key):
    return srv.otlp_port if key == 'otlp' else srv.http_port


def send(srv, port_key, signal, obj, enc, use_gzip, numbers=False, extra_headers=None):
    if enc == 'json':
        body = json.dumps(numify(obj) if numbers else obj).encode()
        ctype = 'application/json'
    else:
        body = pb.encode_request(signal, obj)
        ctype = 'application/x-protobuf'
    headers = {'Content-Type': ctype}
    if use_gzip:
        body = gz(body)
        headers['Content-Encoding'] = 'gzip'
    headers.update(extra_headers or {})
    return http('POST', port_of(srv, port_key), '/v1/' + signal, body, headers)


def decode_export_response(r, enc, signal='metrics'):
    """The Export*ServiceResponse as a dict {partialSuccess: {rejected, errorMessage}} or None.
    JSON must use the signal's own key (rejectedSpans / rejectedDataPoints / rejectedLogRecords)."""
    try:
        if enc == 'json':
            if not r.body.strip():
                return None
            j = r.json()
            ps = j.get('partialSuccess') or {}
            out = {}
            for k, v in ps.items():
                if k == RESPONSE_REJECT_KEY[signal]:
                    out['rejected'] = int(v)
                elif k == 'errorMessage':
                    out['errorMessage'] = v
                else:
                    out['unexpected key ' + k] = v
            return {'partialSuccess': out} if out else {}
        return pb.pb_to_canon('ExportResponse', r.body)
    except (ValueError, pb.WireError):
        return None


def check_ok_response(name, r, enc, signal='metrics'):
    if not R.check(name + ': HTTP 200', r.status == 200, r):
        return
    want_ct = 'application/json' if enc == 'json' else 'application/x-protobuf'
    R.eq(name + ': response Content-Type', r.ctype(), want_ct)
    d = decode_export_response(r, enc, signal)
    R.check(name + ': response body decodes as Export*ServiceResponse', d is not None,
            r.raw_body[:200])
    if d is not None:
        R.check(name + ': no partial_success on full success', not d.get('partialSuccess'), d)


# ---- metrics -----------------------------------------------------------------------------------


def kv(key, **v):
    return {'key': key, 'value': v}


def metrics_resource(v):
    return {'attributes': [kv('service.name', stringValue='ir-svc'),
                           kv('service.namespace', stringValue='ir-' + v),
                           kv('service.instance.id', stringValue='inst-' + v),
                           kv('service.version', stringValue='1.2.3'),
                           kv('host.name', stringValue='host-' + v)]}


HIST_BOUNDS = [0.5, 1, 5, 10]
HIST_POINTS = [([1, 2, 3, 0, 1], 42.75), ([2, 2, 3, 1, 1], 60), ([2, 2, 3, 1, 1], 60)]


def metrics_request(v, k, t0_ms):
    """The k-th (0..2) export of variant v; point time t0 + k s."""
    t_ns = str((t0_ms + k * 1000) * 10**6)
    start_ns = str((t0_ms - 60000) * 10**6)
    dstart_ns = str((t0_ms + (k - 1) * 1000) * 10**6)
    req_get = [1, 5, 12][k]
    req_post = [0, 2, 3][k]
    counts, hsum = HIST_POINTS[k]
    p = 'ir.' + v
    metrics = [
        {'name': p + '.requests', 'unit': '{request}', 'description': 'requests',
         'sum': {'aggregationTemporality': 2, 'isMonotonic': True, 'dataPoints': [
             {'attributes': [kv('http.method', stringValue='GET'),
                             kv('http.status_code', intValue='200')],
              'startTimeUnixNano': start_ns, 'timeUnixNano': t_ns, 'asInt': str(req_get)},
             {'attributes': [kv('http.method', stringValue='POST'),
                             kv('http.status_code', intValue='200')],
              'startTimeUnixNano': start_ns, 'timeUnixNano': t_ns, 'asInt': str(req_post)}]}},
        {'name': p + '.delta.bytes', 'unit': 'By',
         'sum': {'aggregationTemporality': 1, 'isMonotonic': True, 'dataPoints': [
             {'attributes': [kv('dir', stringValue='in')], 'startTimeUnixNano': dstart_ns,
              'timeUnixNano': t_ns, 'asDouble': [1.5, 2.25, 0][k]}]}},
        {'name': p + '.queue.size', 'unit': '',
         'sum': {'aggregationTemporality': 2, 'isMonotonic': False, 'dataPoints': [
             {'attributes': [kv('queue', stringValue='q1')], 'startTimeUnixNano': start_ns,
              'timeUnixNano': t_ns, 'asInt': str([-3, 4, 0][k])}]}},
        {'name': p + '.temperature', 'unit': 'Cel',
         'gauge': {'dataPoints': [
             {'attributes': [kv('1st.attr', stringValue='a'), kv('_priv', stringValue='p'),
                             kv('ok', boolValue=True)],
              'timeUnixNano': t_ns, 'asDouble': [21.5, -0.125, 1e-7][k]}]}},
        {'name': p + '.cpu.utilization', 'unit': '1',
         'gauge': {'dataPoints': [{'attributes': [kv('cpu', intValue='0')], 'timeUnixNano': t_ns,
                                   'asDouble': [0.25, 0.5, 1][k]}]}},
        {'name': p + '.net.io', 'unit': 'By/s',
         'gauge': {'dataPoints': [{'attributes': [kv('nic', stringValue='lo')],
                                   'timeUnixNano': t_ns, 'asInt': str([1024, 2048, 0][k])}]}},
        {'name': p + '.latency', 'unit': 'ms',
         'histogram': {'aggregationTemporality': 2, 'dataPoints': [
             {'attributes': [kv('route', stringValue='/x')], 'startTimeUnixNano': start_ns,
              'timeUnixNano': t_ns, 'count': str(sum(counts)), 'sum': hsum,
              'bucketCounts': [str(c) for c in counts], 'explicitBounds': HIST_BOUNDS}]}},
        {'name': p + '.rpc.duration', 'unit': 's',
         'summary': {'dataPoints': [
             {'attributes': [kv('rpc', stringValue='Get')], 'startTimeUnixNano': start_ns,
              'timeUnixNano': t_ns, 'count': str(10 + k), 'sum': 5.5 + k,
              'quantileValues': [{'quantile': 0.5, 'value': 0.1 * (k + 1)},
                                 {'quantile': 0.99, 'value': 2 + k}]}]}},
    ]
    return {'resourceMetrics': [{'resource': metrics_resource(v), 'scopeMetrics': [
        {'scope': {'name': 'ir.meter', 'version': '0.0.1'}, 'metrics': metrics}]}]}


def expected_metric_series(v, t0_ms):
    """[(name, labels, [(ms, value string)])], computed from the request builder and the spec."""
    reqs = [metrics_request(v, k, t0_ms) for k in range(3)]
    base = {'job': 'ir-%s/ir-svc' % v, 'instance': 'inst-' + v}
    series = {}

    def add(name, labels, ms, val):
        key = (name, tuple(sorted(labels.items())))
        series.setdefault(key, []).append((ms, go_float(float(val))))

    running = {}
    for req in reqs:
        for m in req['resourceMetrics'][0]['scopeMetrics'][0]['metrics']:
            for kind in ('gauge', 'sum', 'histogram', 'summary'):
                if kind in m:
                    break
            data = m[kind]
            mono = data.get('isMonotonic', False)
            name = prom_metric_name(m['name'], m['unit'], kind, mono)
            for dp in data['dataPoints']:
                ms = int(dp['timeUnixNano']) // 10**6
                labels = dict(base)
                labels.update(attrs_to_labels(dp['attributes']))
                if kind in ('gauge', 'sum'):
                    val = float(dp['asDouble']) if 'asDouble' in dp else int(dp['asInt'])
                    if kind == 'sum' and data['aggregationTemporality'] == 1:
                        key = (name, tuple(sorted(labels.items())))
                        start_ms = int(dp.get('startTimeUnixNano') or 0) // 10**6
                        if key not in running and 0 < start_ms < ms:
                            add(name, labels, start_ms, 0)  # a new delta series starts at 0
                        running[key] = running.get(key, 0.0) + val
                        val = running[key]
                    add(name, labels, ms, val)
                elif kind == 'histogram':
                    cum = 0
                    for i, c in enumerate(dp['bucketCounts']):
                        cum += int(c)
                        le = go_float(float(dp['explicitBounds'][i])) \
                            if i < len(dp['explicitBounds']) else '+Inf'
                        add(name + '_bucket', dict(labels, le=le), ms, cum)
                    add(name + '_sum', labels, ms, dp['sum'])
                    add(name + '_count', labels, ms, int(dp['count']))
                else:
                    for q in dp['quantileValues']:
                        add(name, dict(labels, quantile=go_float(q['quantile'])), ms, q['value'])
                    add(name + '_sum', labels, ms, dp['sum'])
                    add(name + '_count', labels, ms, int(dp['count']))
    return [(k[0], dict(k[1]), vals) for k, vals in sorted(series.items())]


# Labels a server may add from the resource (promotion) or the scope; their values are fixed.
def allowed_extra_labels(v):
    d = {'service_name': 'ir-svc', 'service_namespace': 'ir-' + v,
         'service_instance_id': 'inst-' + v, 'service_version': '1.2.3', 'host_name': 'host-' + v,
         'otel_scope_name': 'ir.meter', 'otel_scope_version': '0.0.1'}
    return d


def check_metrics_variant(srv, v, t0_ms):
    exp = expected_metric_series(v, t0_ms)
    names = sorted({e[0] for e in exp})
    prefix = 'ir_%s_' % v
    end_ms = t0_ms + 2000
    tag = 'metrics/' + v
    sel_all = '{__name__=~"%s.*"}' % prefix
    r, j = get_json(srv.http_port, '/api/v1/label/__name__/values',
                    [('match[]', sel_all), ('start', fmt_ts(t0_ms - 60000)),
                     ('end', fmt_ts(end_ms + 60000))])
    R.eq(tag + ': /api/v1/label/__name__/values lists exactly the translated names',
         j and j.get('data'), names)
    r, j = get_json(srv.http_port, '/api/v1/series',
                    [('match[]', sel_all), ('start', fmt_ts(t0_ms - 60000)),
                     ('end', fmt_ts(end_ms + 60000))])
    got = (j or {}).get('data') or []
    R.eq(tag + ': /api/v1/series count', len(got), len(exp))
    extra_ok = allowed_extra_labels(v)
    for name, labels, _vals in exp:
        want = dict(labels, __name__=name)
        match = [s for s in got if all(s.get(k) == val for k, val in want.items())]
        if not R.eq(tag + ': series %s present once' % selector(name, labels), len(match), 1):
            continue
        extra = {k: val for k, val in match[0].items() if k not in want}
        R.check(tag + ': series %s has no unexpected labels' % name,
                all(extra_ok.get(k) == val for k, val in extra.items()),
                'extra labels %r' % extra)
    promoted = {'service_name': 'ir-svc', 'service_version': '1.2.3'}
    R.check(tag + ': every series carries the promoted resource attributes %s' % promoted,
            got and all(all(s.get(k) == val for k, val in promoted.items()) for s in got),
            [s for s in got if not all(s.get(k) == val for k, val in promoted.items())][:2])
    # values, exactly, through a range selector
    for name, labels, vals in exp:
        sel = selector(name, labels)
        r, j, series = prom_range_samples(srv.http_port, sel, end_ms, 600)
        if not R.check(tag + ': query %s[10m] succeeds' % sel, r.status == 200 and series is not None,
                       r):
            continue
        if R.eq(tag + ': query %s[10m] returns one series' % sel, len(series), 1):
            R.eq(tag + ': samples of %s' % sel, series[0][1], vals)
    # instant vector of a plain selector at the last point
    for name, labels, vals in exp:
        sel = selector(name, labels)
        r, j = get_json(srv.http_port, '/api/v1/query', [('query', sel), ('time', fmt_ts(end_ms))])
        res = (j or {}).get('data', {}).get('result')
        if R.check(tag + ': instant %s is a one-element vector' % sel,
                   j and j['data'].get('resultType') == 'vector' and res and len(res) == 1, r):
            R.eq(tag + ': instant value of %s' % sel, res[0]['value'][1], vals[-1][1])
            R.eq(tag + ': instant timestamp of %s' % sel, prom_ts_ms(res[0]['value'][0]), end_ms)
    # query_range of a plain selector, step 1s
    name, labels, vals = [e for e in exp if e[0] == prefix + 'temperature_celsius'][0]
    sel = selector(name, labels)
    r, j = get_json(srv.http_port, '/api/v1/query_range',
                    [('query', sel), ('start', fmt_ts(t0_ms)), ('end', fmt_ts(end_ms)),
                     ('step', '1')])
    res = (j or {}).get('data', {}).get('result')
    if R.check(tag + ': query_range %s is a one-series matrix' % sel,
               j and j['data'].get('resultType') == 'matrix' and res and len(res) == 1, r):
        R.eq(tag + ': query_range values of %s' % sel,
             [(prom_ts_ms(t), x) for t, x in res[0]['values']], vals)
        R.eq(tag + ': query_range metric labels of %s' % sel,
             {k: res[0]['metric'].get(k) for k in labels}, labels)
    # labels and label values
    req = prefix + 'requests_total'
    r, j = get_json(srv.http_port, '/api/v1/labels', [('match[]', req)])
    got = (j or {}).get('data') or []
    want = {'__name__', 'http_method', 'http_status_code', 'job', 'instance'}
    R.check(tag + ': /api/v1/labels?match[]=%s has the expected names' % req,
            want <= set(got) and set(got) - want <= set(extra_ok), got)
    R.check(tag + ': /api/v1/labels is sorted', got == sorted(got), got)
    r, j = get_json(srv.http_port, '/api/v1/label/http_method/values', [('match[]', req)])
    R.eq(tag + ': /api/v1/label/http_method/values', (j or {}).get('data'), ['GET', 'POST'])
    r, j = get_json(srv.http_port, '/api/v1/label/http_status_code/values', [('match[]', req)])
    R.eq(tag + ': int attribute becomes label value "200"', (j or {}).get('data'), ['200'])
    # target_info carries the non-identifying resource attributes
    r, j = get_json(srv.http_port, '/api/v1/series',
                    [('match[]', 'target_info{job="ir-%s/ir-svc"}' % v)])
    got = (j or {}).get('data') or []
    if R.eq(tag + ': one target_info series for the resource', len(got), 1):
        ti = got[0]
        R.eq(tag + ': target_info instance', ti.get('instance'), 'inst-' + v)
        R.eq(tag + ': target_info host_name', ti.get('host_name'), 'host-' + v)
        R.eq(tag + ': target_info service_version', ti.get('service_version'), '1.2.3')
    r, j = get_json(srv.http_port, '/api/v1/query',
                    [('query', 'target_info{job="ir-%s/ir-svc"}' % v), ('time', fmt_ts(end_ms))])
    res = (j or {}).get('data', {}).get('result') or []
    R.eq(tag + ': target_info value', [x['value'][1] for x in res], ['1'])


# ---- traces ------------------------------------------------------------------------------------


def trace_request(v, t0_ms, rnd):
    tid = rnd.randbytes(16).hex()
    other = rnd.randbytes(16).hex()
    root, child, child2, linked = (rnd.randbytes(8).hex() for _ in range(4))
    t = t0_ms * 10**6
    spans = [
        {'traceId': tid, 'spanId': root, 'name': 'GET /ir/' + v, 'kind': 2,
         'startTimeUnixNano': str(t), 'endTimeUnixNano': str(t + 150_000_123),
         'attributes': [kv('http.method', stringValue='GET'), kv('http.status_code', intValue='200'),
                        kv('ratio', doubleValue=3.25), kv('cached', boolValue=True),
                        kv('neg', intValue='-7'),
                        kv('list', arrayValue={'values': [{'stringValue': 'a'},
                                                          {'intValue': '1'}]}),
                        kv('map', kvlistValue={'values': [kv('k', stringValue='v')]}),
                        kv('raw', bytesValue=base64.b64encode(b'\x00\x01\xfe').decode())],
         'status': {'code': 1}},
        {'traceId': tid, 'spanId': child, 'parentSpanId': root, 'name': 'db.query', 'kind': 3,
         'traceState': 'k=v', 'flags': 257,
         'startTimeUnixNano': str(t + 10_000_000), 'endTimeUnixNano': str(t + 60_000_000),
         'events': [{'timeUnixNano': str(t + 20_000_000), 'name': 'retry',
                     'attributes': [kv('attempt', intValue='2')]},
                    {'timeUnixNano': str(t + 30_000_000), 'name': 'exception',
                     'attributes': [kv('exception.message', stringValue='timeout')]}],
         'status': {'code': 2, 'message': 'boom'}},
        {'traceId': tid, 'spanId': child2, 'parentSpanId': root, 'name': 'compute \u2713',
         'kind': 1, 'startTimeUnixNano': str(t + 70_000_000),
         'endTimeUnixNano': str(t + 140_000_000), 'droppedAttributesCount': 2,
         'droppedEventsCount': 1,
         'links': [{'traceId': other, 'spanId': linked, 'traceState': 'a=b',
                    'attributes': [kv('link.kind', stringValue='follows')]}]},
    ]
    req = {'resourceSpans': [{'resource': {'attributes': [
        kv('service.name', stringValue='ir-trace-' + v),
        kv('deployment.environment', stringValue='test')]},
        'scopeSpans': [{'scope': {'name': 'ir.tracer', 'version': '0.1.0'}, 'spans': spans}]}]}
    return tid, req


def sort_attrs(c):
    """Canonical span/resource dict with attribute lists ordered by key (attributes are a map)."""
    if isinstance(c, dict):
        out = {}
        for k, v in c.items():
            if k in ('attributes', 'filteredAttributes') and isinstance(v, list):
                out[k] = sorted((sort_attrs(x) for x in v), key=lambda a: a.get('key', ''))
            else:
                out[k] = sort_attrs(v)
        return out
    if isinstance(c, list):
        return [sort_attrs(x) for x in c]
    return c


def flatten_trace(canon_traces):
    """[(resource, scope, span)] from a canonical TracesData dict."""
    out = []
    for rs in canon_traces.get('resourceSpans', []):
        for ss in rs.get('scopeSpans', []):
            for sp in ss.get('spans', []):
                out.append((rs.get('resource', {}), ss.get('scope', {}), sp))
    return out


def compare_trace(tag, got_flat, req):
    sent = flatten_trace(pb.canon('TracesData', req))
    R.eq(tag + ': span count', len(got_flat), len(sent))
    by_id = {}
    for res, scope, sp in got_flat:
        by_id.setdefault(sp.get('spanId'), []).append((res, scope, sp))
    for res, scope, sp in sent:
        g = by_id.get(sp['spanId'], [])
        if not R.eq(tag + ': span %s (%s) returned once' % (sp['spanId'], sp['name']), len(g), 1):
            continue
        gres, gscope, gsp = g[0]
        R.eq(tag + ': span %s fields' % sp['name'], sort_attrs(gsp), sort_attrs(sp))
        R.eq(tag + ': span %s resource' % sp['name'], sort_attrs(gres), sort_attrs(res))
        R.eq(tag + ': span %s scope' % sp['name'], sort_attrs(gscope), sort_attrs(scope))


def check_trace_read(srv, v, tid, req):
    tag = 'traces/' + v
    r = http('GET', srv.http_port, '/api/traces/' + tid)
    if R.check(tag + ': GET /api/traces/<id> 200', r.status == 200, r):
        R.eq(tag + ': trace JSON Content-Type', r.ctype(), 'application/json')
        try:
            j = r.json()
        except ValueError:
            j = None
        # Tempo's v1 shape: OTLP/JSON resource spans under the key "batches" (TEMPO-API.md 2.1).
        R.check(tag + ': trace JSON is Tempo v1 {"batches":[...]}',
                isinstance(j, dict) and isinstance(j.get('batches'), list) and
                'resourceSpans' not in j, r.body[:300])
        rs = j.get('batches') if isinstance(j, dict) else None
        if R.check(tag + ': trace JSON has a list of resource spans', isinstance(rs, list),
                   r.body[:300]):
            try:
                got = flatten_trace(pb.canon('TracesData', {'resourceSpans': rs}))
            except (ValueError, TypeError, KeyError) as e:
                R.check(tag + ': trace JSON parses as OTLP', False, '%s: %s' % (e, r.body[:300]))
            else:
                compare_trace(tag + ' (json)', got, req)
    r = http('GET', srv.http_port, '/api/traces/' + tid,
             headers={'Accept': 'application/protobuf'})
    if R.check(tag + ': GET /api/traces/<id> Accept: application/protobuf 200', r.status == 200, r):
        R.check(tag + ': protobuf Content-Type',
                r.ctype() in ('application/protobuf', 'application/x-protobuf'), r.ctype())
        try:
            got = flatten_trace(pb.pb_to_canon('TracesData', r.body))
        except (ValueError, pb.WireError) as e:
            R.check(tag + ': protobuf trace decodes', False, '%s: %r' % (e, r.body[:100]))
        else:
            compare_trace(tag + ' (protobuf)', got, req)
    r = http('GET', srv.http_port, '/api/traces/' + tid.upper())
    R.eq(tag + ': upper-case hex trace id is found', r.status, 200)


# ---- logs --------------------------------------------------------------------------------------


def logs_request(v, t0_ms, tid, sid):
    t = t0_ms * 10**6
    recs = [
        {'timeUnixNano': str(t + 123), 'severityNumber': 9, 'severityText': 'INFO',
         'body': {'stringValue': 'hello ' + v},
         'attributes': [kv('event.name', stringValue='login'), kv('user.id', stringValue='u1'),
                        kv('count', intValue='3')],
         'traceId': tid, 'spanId': sid},
        {'timeUnixNano': str(t + 1_000_000_456), 'body': {'stringValue': 'multi\nline \u2713 "q"'},
         'attributes': [kv('http.method', stringValue='GET')]},
        {'timeUnixNano': str(t + 2_000_000_000), 'body': {'intValue': '42'}},
        {'observedTimeUnixNano': str(t + 3_000_000_789), 'body': {'stringValue': 'observed only'}},
    ]
    req = {'resourceLogs': [{'resource': {'attributes': [
        kv('service.name', stringValue='ir-logs-' + v), kv('host.name', stringValue='h')]},
        'scopeLogs': [{'scope': {'name': 'ir.logger'}, 'logRecords': recs}]}]}
    want = [  # (ts ns, line, labels that must be present, labels that must be absent)
        (t + 123, 'hello ' + v, {'service_name': 'ir-logs-' + v, 'event_name': 'login',
                                 'user_id': 'u1', 'count': '3'}, set()),
        (t + 1_000_000_456, 'multi\nline \u2713 "q"',
         {'service_name': 'ir-logs-' + v, 'http_method': 'GET'}, {'event_name'}),
        (t + 2_000_000_000, '42', {'service_name': 'ir-logs-' + v}, {'event_name'}),
        (t + 3_000_000_789, 'observed only', {'service_name': 'ir-logs-' + v}, {'event_name'}),
    ]
    return req, want


def streams_ordered(j, backward):
    """Loki orders entries within each stream by the direction; streams have no global order."""
    try:
        for s in j['data']['result']:
            ts = [int(v[0]) for v in s['values']]
            if ts != sorted(ts, reverse=backward):
                return False
        return True
    except (KeyError, TypeError, ValueError):
        return False


def check_logs_read(srv, v, t0_ms, want):
    tag = 'logs/' + v
    q = '{service_name="ir-logs-%s"}' % v
    start, end = (t0_ms - 60000) * 10**6, (t0_ms + 60000) * 10**6
    r, j, ents = loki_entries(srv.http_port, q, start, end, limit=100, direction='forward')
    if not R.check(tag + ': loki query_range %s answers streams' % q,
                   r.status == 200 and j and j['data'].get('resultType') == 'streams', r):
        return
    R.eq(tag + ': entries (ts, line)', sorted((e[1], e[2]) for e in ents),
         [(w[0], w[1]) for w in want])
    R.check(tag + ': forward: entries of each stream oldest first', streams_ordered(j, False), j)
    by_ts = {e[1]: e for e in ents}
    for ts, line, must, absent in want:
        e = by_ts.get(ts)
        if e is None:
            continue
        R.eq(tag + ': labels of %r' % line, {k: e[0].get(k) for k in must}, must)
        R.check(tag + ': no %s label on %r' % (sorted(absent), line),
                not any(k in e[0] for k in absent), e[0])
    r, j, ents = loki_entries(srv.http_port, q, start, end, limit=100, direction='backward')
    R.eq(tag + ': backward returns the same entries', sorted(e[1] for e in ents),
         sorted(w[0] for w in want))
    R.check(tag + ': backward: entries of each stream newest first', streams_ordered(j, True), j)
    q2 = '{service_name="ir-logs-%s", event_name="login"}' % v
    r, j, ents = loki_entries(srv.http_port, q2, start, end)
    R.eq(tag + ': %s selects the one event' % q2, [(e[1], e[2]) for e in ents],
         [(want[0][0], want[0][1])])
    r, j, ents = loki_entries(srv.http_port, q, start, want[3][0], direction='forward')
    R.eq(tag + ': end is exclusive for log queries', sorted(e[1] for e in ents),
         [w[0] for w in want[:3]])
    r, j, ents = loki_entries(srv.http_port, q, start, end, limit=2, direction='forward')
    R.eq(tag + ': limit=2 returns the 2 oldest (forward)', sorted(e[1] for e in ents),
         [w[0] for w in want[:2]])


# ---- partial success, CORS, /metrics -------------------------------------------------------------


def gauge_req(name, ms, value, job='ir-partial'):
    return {'resourceMetrics': [{'resource': {'attributes': [kv('service.name', stringValue=job)]},
                                 'scopeMetrics': [{'metrics': [
                                     {'name': name, 'gauge': {'dataPoints': [
                                         {'timeUnixNano': str(ms * 10**6), 'asDouble': value}]}}]}]}]}


def check_partial_success(srv, enc):
    tag = 'partial/' + enc
    tnow = now_ms() - 1000
    g, ok = 'ir_partial_%s' % enc, 'ir_partial_ok_%s' % enc
    r = send(srv, 'otlp', 'metrics', gauge_req(g, tnow, 1), enc, False)
    check_ok_response(tag + ': first point', r, enc)
    req = gauge_req(g, tnow - 2 * 3600 * 1000, 2)
    req['resourceMetrics'][0]['scopeMetrics'][0]['metrics'].append(
        gauge_req(ok, tnow, 3)['resourceMetrics'][0]['scopeMetrics'][0]['metrics'][0])
    r = send(srv, 'otlp', 'metrics', req, enc, False)
    if R.check(tag + ': point 2h older than its series -> still HTTP 200', r.status == 200, r):
        d = decode_export_response(r, enc) or {}
        ps = d.get('partialSuccess') or {}
        R.eq(tag + ': partial_success rejected_data_points for the too-old point',
             ps.get('rejected'), 1)
        R.check(tag + ': partial_success error_message says why', bool(ps.get('errorMessage')), d)
    r = send(srv, 'otlp', 'metrics', gauge_req(g, tnow, 5), enc, False)
    if R.check(tag + ': same timestamp, different value -> HTTP 200', r.status == 200, r):
        d = decode_export_response(r, enc) or {}
        ps = d.get('partialSuccess') or {}
        R.eq(tag + ': partial_success rejects the conflicting duplicate', ps.get('rejected'), 1)
    r, j, series = prom_range_samples(srv.http_port, g, tnow + 1000, 3 * 3600)
    R.eq(tag + ': only the accepted point of %s is stored' % g,
         [s[1] for s in series], [[(tnow, '1')]])
    r, j, series = prom_range_samples(srv.http_port, ok, tnow + 1000, 600)
    R.eq(tag + ': the valid point in the partially rejected request is stored',
         [s[1] for s in series], [[(tnow, '3')]])


def check_empty_requests(srv):
    for sig in ('traces', 'metrics', 'logs'):
        r = http('POST', srv.otlp_port, '/v1/' + sig, b'{}', {'Content-Type': 'application/json'})
        R.eq('empty JSON %s request {} -> 200' % sig, r.status, 200)
        r = http('POST', srv.otlp_port, '/v1/' + sig, b'',
                 {'Content-Type': 'application/x-protobuf'})
        R.eq('empty protobuf %s request (0 bytes) -> 200' % sig, r.status, 200)
        r = http('POST', srv.otlp_port, '/v1/' + sig, b'{}',
                 {'Content-Type': 'application/json; charset=utf-8'})
        R.eq('Content-Type with charset parameter accepted (%s)' % sig, r.status, 200)


def check_cors(srv):
    for pname, port in (('otlp', srv.otlp_port), ('main', srv.http_port)):
        r = http('OPTIONS', port, '/v1/traces', headers={
            'Origin': 'http://example.test', 'Access-Control-Request-Method': 'POST',
            'Access-Control-Request-Headers': 'content-type'})
        tag = 'CORS on %s port' % pname
        R.check(tag + ': preflight answered 200/204', r.status in (200, 204), r)
        R.check(tag + ': preflight Access-Control-Allow-Origin',
                r.header('access-control-allow-origin') in ('*', 'http://example.test'), r.headers)
        R.check(tag + ': preflight allows POST',
                'POST' in r.header('access-control-allow-methods').upper()
                or r.header('access-control-allow-methods') == '*', r.headers)
        ah = r.header('access-control-allow-headers').lower()
        R.check(tag + ': preflight allows Content-Type', 'content-type' in ah or ah == '*',
                r.headers)
        r = http('POST', port, '/v1/logs', b'{}', {'Content-Type': 'application/json',
                                                    'Origin': 'http://example.test'})
        R.check(tag + ': POST response carries Access-Control-Allow-Origin',
                r.status == 200 and r.header('access-control-allow-origin')
                in ('*', 'http://example.test'), r)


def parse_prom_text(text):
    """{(name, frozenset(labels)): value} and {name: type} from the Prometheus text format."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith('# TYPE '):
            parts = line.split()
            types[parts[2]] = parts[3]
            continue
        if not line or line.startswith('#'):
            continue
        if '{' in line:
            name, rest = line.split('{', 1)
            lbl, val = rest.rsplit('}', 1)
            labels = frozenset(
                (k, v) for k, v in (p.split('=', 1) for p in _split_labels(lbl)))
        else:
            name, val = line.split(None, 1)
            labels = frozenset()
        samples[(name, labels)] = float(val.split()[0])
    return samples, types


def _split_labels(s):
    out, cur, inq, esc = [], '', False, False
    for ch in s:
        if esc:
            cur += ch
            esc = False
        elif ch == '\\':
            cur += ch
            esc = True
        elif ch == '"':
            inq = not inq
            cur += ch
        elif ch == ',' and not inq:
            if cur.strip():
                out.append(cur.strip())
            cur = ''
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def check_self_metrics(srv, n_items):
    r = http('GET', srv.http_port, '/metrics')
    if not R.check('/metrics 200', r.status == 200, r):
        return
    R.check('/metrics is Prometheus text (text/plain)', r.ctype() == 'text/plain', r.ctype())
    try:
        samples, types = parse_prom_text(r.text())
    except ValueError as e:
        R.check('/metrics parses as Prometheus text', False, e)
        return
    R.eq('/metrics: skillscope_received_items_total TYPE',
         types.get('skillscope_received_items_total'), 'counter')
    total = sum(v for (n, _l), v in samples.items() if n == 'skillscope_received_items_total')
    R.check('/metrics: skillscope_received_items_total counts what was ingested (>= %d)' % n_items,
            total >= n_items, 'total %s' % total)


# ---- the suite ---------------------------------------------------------------------------------


def run():
    srv = Server(name='ingest')
    srv.start()
    rnd = random.Random(1234)
    t0 = (now_ms() // 1000 - 300) * 1000
    R.eq('/-/ready', http('GET', srv.http_port, '/-/ready').status, 200)
    R.eq('/-/healthy', http('GET', srv.http_port, '/-/healthy').status, 200)
    n_items = 0
    traces, logs_want = {}, {}
    for i, (v, port, enc, use_gz, numbers) in enumerate(VARIANTS):
        vt0 = t0 + i * 10000
        for k in range(3):
            req = metrics_request(v, k, vt0)
            r = send(srv, port, 'metrics', req, enc, use_gz, numbers)
            check_ok_response('metrics/%s: export %d' % (v, k), r, enc)
            n_items += 9
        tid, treq = trace_request(v, vt0, rnd)
        r = send(srv, port, 'traces', treq, enc, use_gz, numbers)
        check_ok_response('traces/%s: export' % v, r, enc, 'traces')
        n_items += 3
        traces[v] = (tid, treq)
        lreq, want = logs_request(v, vt0, tid, treq['resourceSpans'][0]['scopeSpans'][0]
                                  ['spans'][0]['spanId'])
        r = send(srv, port, 'logs', lreq, enc, use_gz, numbers)
        check_ok_response('logs/%s: export' % v, r, enc, 'logs')
        n_items += 4
        logs_want[v] = (vt0, want)
    for i, (v, *_rest) in enumerate(VARIANTS):
        check_metrics_variant(srv, v, t0 + i * 10000)
        check_trace_read(srv, v, *traces[v])
        check_logs_read(srv, v, *logs_want[v])
    r = http('GET', srv.http_port, '/api/traces/' + rnd.randbytes(16).hex())
    R.eq('unknown trace id -> 404', r.status, 404)
    check_partial_success(srv, 'json')
    check_partial_success(srv, 'pb')
    check_empty_requests(srv)
    check_cors(srv)
    check_self_metrics(srv, n_items)
    R.check('server still running at the end', srv.alive(), srv.log_tail())
    rc = srv.stop()
    R.eq('server exits 0 on SIGTERM', rc, 0)
