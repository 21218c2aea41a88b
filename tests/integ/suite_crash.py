"""suite_crash.py - SIGKILL during sustained ingest loses nothing acknowledged, duplicates nothing.

Why: DESIGN.md's durability contract: an ingest request is acknowledged only after its WAL records
are written; on restart the WAL is replayed (a torn tail is truncated, never fatal). A process
crash (SIGKILL) must therefore keep every acknowledged sample, span and log line, exactly once.

How: several rounds on one data dir. In each round a client thread sends protobuf requests as fast
as the server takes them (each request: 10 gauge samples of one series per round, one trace of
3 spans, 5 log lines) and records which requests got HTTP 200. After a random delay the main
thread SIGKILLs the server mid-stream, restarts it on the same dir, and checks every round so far:
samples via an instant range query (all acked timestamps present, no timestamp twice, values
right, nothing present that was never sent), each acked trace by id (exactly 3 spans), log lines
via Loki query_range (each acked line exactly once, unknown lines absent).
"""

import random
import threading
import time

from harness import (R, Server, get_json, http, loki_all_entries, now_ms, prom_range_samples)
import pb

ROUNDS = 3
SAMPLES_PER_REQ = 10
SPANS_PER_REQ = 3
LOGS_PER_REQ = 5
MAX_REQS = 800


def kv(key, **v):
    return {'key': key, 'value': v}


class Round:
    def __init__(self, idx, rnd):
        self.idx = idx
        self.t0_ms = now_ms() - 60000
        self.acked = []  # request numbers that got 200 (all three signals of that number)
        self.acked_sig = {'metrics': set(), 'traces': set(), 'logs': set()}
        self.sent = 0
        self.errors = []
        self.trace_ids = [rnd.randbytes(16).hex() for _ in range(MAX_REQS)]
        self.span_ids = [[rnd.randbytes(8).hex() for _ in range(SPANS_PER_REQ)]
                         for _ in range(MAX_REQS)]

    def sample_ts(self, i, k):
        return self.t0_ms + i * SAMPLES_PER_REQ + k

    def sample_value(self, i, k):
        return float(self.idx * 1_000_000 + i * SAMPLES_PER_REQ + k)

    def line(self, i, k):
        return 'crash round %d req %d line %d' % (self.idx, i, k)

    def metrics(self, i):
        pts = [{'timeUnixNano': str(self.sample_ts(i, k) * 10**6),
                'asDouble': self.sample_value(i, k)} for k in range(SAMPLES_PER_REQ)]
        return {'resourceMetrics': [{'resource': {'attributes': [
            kv('service.name', stringValue='crash')]}, 'scopeMetrics': [{'metrics': [
                {'name': 'crash_gauge', 'gauge': {'dataPoints': [
                    dict(p, attributes=[kv('round', stringValue=str(self.idx))]) for p in pts]}}]}]}]}

    def traces(self, i):
        t = (self.t0_ms + i) * 10**6
        ids = self.span_ids[i]
        spans = [{'traceId': self.trace_ids[i], 'spanId': ids[k], 'name': 'crash-%d' % k,
                  'kind': 1, 'startTimeUnixNano': str(t + k), 'endTimeUnixNano': str(t + 1000 + k),
                  'attributes': [kv('req', intValue=str(i))]} for k in range(SPANS_PER_REQ)]
        for k in range(1, SPANS_PER_REQ):
            spans[k]['parentSpanId'] = ids[0]
        return {'resourceSpans': [{'resource': {'attributes': [
            kv('service.name', stringValue='crash')]}, 'scopeSpans': [{'spans': spans}]}]}

    def logs(self, i):
        recs = [{'timeUnixNano': str(self.sample_ts(i, k) * 10**6 + 7), 'body': {
            'stringValue': self.line(i, k)}} for k in range(LOGS_PER_REQ)]
        return {'resourceLogs': [{'resource': {'attributes': [
            kv('service.name', stringValue='crash-%d' % self.idx)]}, 'scopeLogs': [
                {'logRecords': recs}]}]}


def client(srv_port, rnd_round, stop):
    for i in range(MAX_REQS):
        if stop.is_set():
            return
        rnd_round.sent = i + 1
        ok = True
        for sig, build in (('metrics', rnd_round.metrics), ('traces', rnd_round.traces),
                           ('logs', rnd_round.logs)):
            try:
                r = http('POST', srv_port, '/v1/' + sig, pb.encode_request(sig, build(i)),
                         {'Content-Type': 'application/x-protobuf'}, timeout=10)
            except OSError:
                return  # the server died under us: this request is not acknowledged
            if r.status == 200:
                rnd_round.acked_sig[sig].add(i)
            else:
                ok = False
                if r.status not in (429, 503):
                    rnd_round.errors.append((i, sig, r))
                    return
        if ok:
            rnd_round.acked.append(i)


def verify(srv, rd):
    tag = 'round %d' % rd.idx
    end_ms = rd.sample_ts(rd.sent, 0) + 1000
    r, j, series = prom_range_samples(srv.http_port, 'crash_gauge{round="%d"}' % rd.idx,
                                      end_ms, (end_ms - rd.t0_ms) // 1000 + 60)
    if R.check(tag + ': samples query answers', r.status == 200 and j is not None, r):
        samples = series[0][1] if len(series) == 1 else []
        R.check(tag + ': one series', len(series) == 1 or not rd.acked_sig['metrics'], series[:2])
        ts_list = [t for t, _v in samples]
        R.check(tag + ': no sample timestamp twice', len(ts_list) == len(set(ts_list)),
                '%d samples, %d distinct' % (len(ts_list), len(set(ts_list))))
        have = dict(samples)
        missing = []
        for i in sorted(rd.acked_sig['metrics']):
            for k in range(SAMPLES_PER_REQ):
                ts = rd.sample_ts(i, k)
                if ts not in have:
                    missing.append(ts)
        R.check(tag + ': every acknowledged sample present (%d)'
                % (len(rd.acked_sig['metrics']) * SAMPLES_PER_REQ), not missing,
                '%d missing, first %r' % (len(missing), missing[:5]))
        sent_vals = {rd.sample_ts(i, k): rd.sample_value(i, k)
                     for i in range(rd.sent) for k in range(SAMPLES_PER_REQ)}
        wrong = [(t, v) for t, v in samples if t not in sent_vals or float(v) != sent_vals[t]]
        R.check(tag + ': every stored sample was sent, with its value', not wrong, wrong[:5])
    bad = []
    for i in sorted(rd.acked_sig['traces']):
        r = http('GET', srv.http_port, '/api/traces/' + rd.trace_ids[i],
                 headers={'Accept': 'application/protobuf'})
        if r.status != 200:
            bad.append((i, 'HTTP %d' % r.status))
            continue
        try:
            c = pb.pb_to_canon('TracesData', r.body)
        except (ValueError, pb.WireError) as e:
            bad.append((i, str(e)))
            continue
        ids = [sp['spanId'] for rs in c.get('resourceSpans', []) for ss in rs.get('scopeSpans', [])
               for sp in ss.get('spans', [])]
        if sorted(ids) != sorted(rd.span_ids[i]):
            bad.append((i, ids))
    R.check(tag + ': every acknowledged trace (%d) has its 3 spans exactly once'
            % len(rd.acked_sig['traces']), not bad, bad[:5])
    lo = rd.t0_ms * 10**6
    hi = (end_ms + 1000) * 10**6
    r, j, ents = loki_all_entries(srv.http_port, '{service_name="crash-%d"}' % rd.idx, lo, hi)
    if R.check(tag + ': logs query answers', ents is not None, r):
        lines = [e[2] for e in ents]
        counts = {}
        for ln in lines:
            counts[ln] = counts.get(ln, 0) + 1
        dup = [ln for ln, c in counts.items() if c > 1]
        R.check(tag + ': no log line twice', not dup, dup[:5])
        missing = [rd.line(i, k) for i in sorted(rd.acked_sig['logs']) for k in range(LOGS_PER_REQ)
                   if rd.line(i, k) not in counts]
        R.check(tag + ': every acknowledged log line present (%d)'
                % (len(rd.acked_sig['logs']) * LOGS_PER_REQ), not missing,
                '%d missing, first %r' % (len(missing), missing[:3]))
        sent = {rd.line(i, k) for i in range(rd.sent) for k in range(LOGS_PER_REQ)}
        R.check(tag + ': every stored line was sent', all(ln in sent for ln in lines),
                [ln for ln in lines if ln not in sent][:3])


def run():
    rnd = random.Random(99)
    srv = Server(name='crash', extra_args=['--wal-fsync', 'batch'])
    srv.start()
    rounds = []
    for idx in range(ROUNDS):
        rd = Round(idx, rnd)
        rounds.append(rd)
        stop = threading.Event()
        th = threading.Thread(target=client, args=(srv.otlp_port, rd, stop), daemon=True)
        th.start()
        # let some requests through, then kill mid-stream
        deadline = time.monotonic() + 20
        target = rnd.randint(40, 200)
        while len(rd.acked) < target and th.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rnd.random() * 0.05)
        srv.kill()
        stop.set()
        th.join(15)
        R.check('round %d: client made progress before the kill (%d acked of %d sent)'
                % (idx, len(rd.acked), rd.sent), len(rd.acked) >= 20 and not rd.errors,
                rd.errors[:3])
        print('   crash round %d: %d requests sent, %d fully acknowledged before SIGKILL'
              % (idx, rd.sent, len(rd.acked)), flush=True)
        srv.start(ready_timeout=30)
        for prev in rounds:
            verify(srv, prev)
    # a clean stop and start keeps everything too
    R.eq('clean stop exits 0', srv.stop(), 0)
    srv.start(ready_timeout=30)
    for prev in rounds:
        verify(srv, prev)
    r, j = get_json(srv.http_port, '/api/v1/series', [('match[]', 'crash_gauge')])
    R.eq('one crash_gauge series per round after restarts', len((j or {}).get('data') or []),
         ROUNDS)
    srv.stop()
