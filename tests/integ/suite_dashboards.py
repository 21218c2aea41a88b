"""suite_dashboards.py - built-in and user dashboards, and Grafana's import call.

Why: teams arrive with Grafana dashboards and provisioning scripts that POST /api/dashboards/db;
their dashboards must load beside the built-in ones, converted, with a clear list of what was not
understood, and survive restarts. A --dashboards DIR of files loads the same way.

How: a realistic Grafana dashboard (Prometheus timeseries and stat, a Loki logs panel, a text
panel, a collapsed row, query/custom/interval variables) is imported and read back converted;
overwrite rules, bad bodies, deletion, persistence across a restart and a directory of files with
a broken one are checked against the real binary.
"""

import json
import os

from harness import R, Server, get_json, http, tmpdir

GRAFANA = {
    "uid": "team-latency", "title": "Team latency", "tags": ["team"],
    "time": {"from": "now-24h", "to": "now"}, "refresh": "30s",
    "templating": {"list": [
        {"type": "query", "name": "job", "label": "Job",
         "query": {"query": "label_values(up, job)", "refId": "A"}, "multi": True, "includeAll": True,
         "current": {"value": ["$__all"]}},
        {"type": "custom", "name": "q", "query": "0.5, 0.95, 0.99", "current": {"value": "0.95"}},
        {"type": "interval", "name": "iv", "query": "1m,5m"},
    ]},
    "panels": [
        {"type": "timeseries", "title": "p95 latency", "gridPos": {"x": 0, "y": 0, "w": 12, "h": 8},
         "datasource": {"type": "prometheus", "uid": "prom"},
         "targets": [{"expr": "histogram_quantile($q, sum by (le) (rate(http_duration_seconds_bucket{job=~\"$job\"}[5m])))",
                      "legendFormat": "p{{quantile}}", "refId": "A"},
                     {"expr": "up", "hide": True, "refId": "B"}],
         "fieldConfig": {"defaults": {"unit": "s", "min": 0,
                                      "thresholds": {"mode": "absolute", "steps": [
                                          {"color": "green", "value": None}, {"color": "red", "value": 2}]}}}},
        {"type": "stat", "title": "Spend", "gridPos": {"w": 6, "h": 4},
         "targets": [{"expr": "sum(genai_cost_usd_total)", "legendFormat": "__auto"}],
         "fieldConfig": {"defaults": {"unit": "currencyUSD", "decimals": 2}}},
        {"type": "text", "title": "Read me", "options": {"content": "hello"}},
        {"type": "row", "title": "Logs", "collapsed": True, "panels": [
            {"type": "logs", "title": "Errors", "datasource": {"type": "loki", "uid": "loki"},
             "targets": [{"expr": "{service_name=\"api\"} |= \"error\""}]},
            {"type": "timeseries", "title": "Odd units", "targets": [{"expr": "up"}],
             "fieldConfig": {"defaults": {"unit": "lengthm"}}, "transformations": [{"id": "reduce"}]},
        ]},
    ],
}


def post(port, body, raw=None):
    r = http('POST', port, '/api/dashboards/db', raw if raw is not None else json.dumps(body).encode(),
             {'Content-Type': 'application/json'})
    try:
        return r, r.json()
    except ValueError:
        return r, None


def run():
    d = tmpdir('ss-dash-')
    srv = Server(data_dir=os.path.join(d, 'data'), name='dash')
    srv.start()
    p = srv.http_port
    r, lst = get_json(p, '/api/dashboards')
    R.eq('built-in dashboards listed', sorted(x['slug'] for x in lst if x['builtin']),
         ['agents', 'claude-code', 'executive', 'qa-engineer', 'service-red', 'skills-engineer', 'sre'])

    r, body = post(p, {"dashboard": GRAFANA, "overwrite": False})
    R.eq('import status', r.status, 200)
    R.eq('import answer as Grafana gives it', {k: body.get(k) for k in ('status', 'uid', 'url', 'slug')},
         {'status': 'success', 'uid': 'team-latency', 'url': '/d/team-latency', 'slug': 'team-latency'})
    nu = body.get('skillscope', {}).get('notUnderstood', [])
    R.check('not understood: the text panel', any('"Read me"' in x and 'text' in x for x in nu), nu)
    R.check('not understood: the interval variable', any('"iv"' in x and 'interval' in x for x in nu), nu)
    R.check('not understood: the unit lengthm', any('lengthm' in x for x in nu), nu)
    R.check('not understood: transformations', any('transformations' in x for x in nu), nu)
    R.eq('nothing else reported', len(nu), 4)

    r, got = get_json(p, '/api/dashboards/uid/team-latency')
    R.eq('converted title and time', (got['title'], got['time'], got['refresh']),
         ('Team latency', {'from': 'now-24h', 'to': 'now'}, '30s'))
    R.eq('variables', got['variables'], [
        {'name': 'job', 'label': 'Job', 'multi': True, 'includeAll': True, 'query': 'label_values(up, job)',
         'default': '$__all'},
        {'name': 'q', 'values': ['0.5', '0.95', '0.99'], 'default': '0.95'}])
    ts = got['panels'][0]
    R.eq('timeseries panel', ts, {
        'type': 'timeseries', 'title': 'p95 latency', 'w': 12, 'h': 8,
        'queries': [{'expr': GRAFANA['panels'][0]['targets'][0]['expr'], 'legend': 'p{{quantile}}'}],
        'unit': 's', 'min': 0, 'thresholds': [{'value': None, 'color': 'green'}, {'value': 2, 'color': 'red'}]})
    R.eq('stat panel', got['panels'][1], {'type': 'stat', 'title': 'Spend', 'w': 6, 'h': 4,
                                         'queries': [{'expr': 'sum(genai_cost_usd_total)'}], 'unit': 'usd',
                                         'decimals': 2})
    R.eq('row then its panels', [x['type'] for x in got['panels']], ['timeseries', 'stat', 'row', 'logs', 'timeseries'])
    R.eq('loki target becomes LogQL', got['panels'][3]['queries'], [{'expr': '{service_name="api"} |= "error"', 'lang': 'logql'}])

    r, body = post(p, {"dashboard": GRAFANA})
    R.eq('same uid without overwrite: 412', r.status, 412)
    r, body = post(p, {"dashboard": dict(GRAFANA, title='Team latency v2'), "overwrite": True})
    R.eq('overwrite: 200', r.status, 200)
    r, body = post(p, None, raw=b'{"dashboard": {"title": "x",')
    R.check('invalid JSON: 400 with position', r.status == 400 and 'line 1' in (body or {}).get('message', ''), r.text())
    r, body = post(p, {"dashboard": {"panels": []}})
    R.check('no title: 400', r.status == 400 and 'title' in body.get('message', ''), r.text())
    r, body = post(p, {"dashboard": {"title": "No uid here!", "panels": []}})
    R.eq('slug from the title', body.get('uid'), 'no-uid-here')
    r = http('DELETE', p, '/api/dashboards/uid/qa-engineer')
    R.eq('built-in cannot be deleted', r.status, 403)
    r = http('DELETE', p, '/api/dashboards/uid/no-uid-here')
    R.eq('user dashboard deleted', r.status, 200)
    r = http('GET', p, '/api/dashboards/uid/no-uid-here')
    R.eq('deleted is gone', r.status, 404)
    r = http('GET', p, '/d/team-latency')
    R.check('page URL serves the app', r.status == 200 and b'app.js' in r.body, r.status)

    srv.stop()
    srv.start()
    r, got = get_json(srv.http_port, '/api/dashboards/uid/team-latency')
    R.eq('user dashboard survives a restart', got and got['title'], 'Team latency v2')
    srv.stop()

    # a directory of files: Grafana JSON converted, a broken file skipped with a warning
    dd = os.path.join(d, 'mine')
    os.makedirs(dd)
    with open(os.path.join(dd, 'ops.json'), 'w') as f:
        json.dump(dict(GRAFANA, title='Ops from a file'), f)
    with open(os.path.join(dd, 'broken.json'), 'w') as f:
        f.write('{"title": ')
    s2 = Server(extra_args=['--dashboards', dd], name='dash2')
    s2.start()
    r, lst = get_json(s2.http_port, '/api/dashboards')
    R.check('file dashboard listed', any(x['slug'] == 'ops' and x['title'] == 'Ops from a file' for x in lst), lst)
    R.check('broken file skipped', not any(x['slug'] == 'broken' for x in lst), lst)
    R.check('broken file named in the log', 'broken.json' in s2.log_tail(), s2.log_tail()[-400:])
    s2.stop()
