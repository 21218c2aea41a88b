/*
 * dashboards.c - built-in and user dashboards, and Grafana dashboard import (see dashboards.h).
 *
 * Dashboards are held as jansson objects in Skillscope's schema. A user dashboard is saved
 * atomically (temp file, fsync, rename) as <dir>/<slug>.json in that schema, so what the UI shows
 * after a restart is what the import answered.
 *
 * Grafana conversion keeps what our panels can show: the panel type (timeseries/graph, stat,
 * gauge, bargauge/barchart, table, heatmap, logs, traces, row), grid size, targets (expr or query,
 * legendFormat, the data source type choosing PromQL, LogQL or TraceQL), unit, decimals, min, max,
 * threshold steps, description; template variables of type query (label_values) and custom.
 * Everything else that carries meaning (other panel types, transformations, other variable types,
 * unknown units, data sources of other types) is reported as not understood.
 */
#include "web/dashboards.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "web/assets.h"

#define MAX_SLUG 64
#define MAX_DASHBOARDS 1000
#define MAX_BODY_BYTES (4u << 20)

typedef struct entry {
    char slug[MAX_SLUG + 1];
    json_t *doc;
    bool builtin;
} entry_t;

static struct {
    entry_t *v;
    size_t n;
    char *dir;
} g;

/* ---- slugs ---- */

static bool slug_valid(const char *s, size_t n)
{
    if (n == 0 || n > MAX_SLUG)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* "Claude Code – costs" -> "claude-code-costs". */
static void slugify(const char *title, char *out)
{
    size_t n = 0;
    bool dash = false;
    for (const char *p = title; *p && n < MAX_SLUG; p++) {
        char c = *p;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            if (dash && n > 0)
                out[n++] = '-';
            if (n < MAX_SLUG)
                out[n++] = c;
            dash = false;
        } else {
            dash = true;
        }
    }
    if (n == 0)
        memcpy(out, "dashboard", (n = 9));
    out[n] = '\0';
}

/* ---- conversion ---- */

static void note(json_t *nu, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(json_t *nu, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_array_append_new(nu, json_string(msg));
}

static const char *str_of(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void copy_if(json_t *dst, const json_t *src, const char *key, const char *as)
{
    json_t *v = json_object_get(src, key);
    if (v && !json_is_null(v))
        json_object_set(dst, as ? as : key, v);
}

static const char *const unit_map[][2] = {
    {"short", "short"},
    {"none", "none"},
    {"percent", "percent"},
    {"percentunit", "percentunit"},
    {"s", "s"},
    {"ms", "ms"},
    {"bytes", "bytes"},
    {"decbytes", "bytes"},
    {"currencyUSD", "usd"},
    {"reqps", "reqps"},
    {"ops", "short"},
    {"dtdurations", "s"},
};

static const char *const type_map[][2] = {
    {"timeseries", "timeseries"},
    {"graph", "timeseries"},
    {"stat", "stat"},
    {"singlestat", "stat"},
    {"gauge", "gauge"},
    {"bargauge", "bar"},
    {"barchart", "bar"},
    {"table", "table"},
    {"heatmap", "heatmap"},
    {"logs", "logs"},
    {"traces", "traces"},
    {"row", "row"},
};

static const char *lookup(const char *const (*map)[2], size_t n, const char *key)
{
    for (size_t i = 0; key && i < n; i++)
        if (strcmp(map[i][0], key) == 0)
            return map[i][1];
    return NULL;
}

static const char *ds_type(const json_t *ds)
{
    if (json_is_object(ds))
        return str_of(ds, "type");
    return NULL; /* a data source by name: the panel's or the default (Prometheus) */
}

static void convert_panel(const json_t *p, size_t idx, json_t *panels, json_t *nu);

static void convert_targets(const json_t *p, const char *title, json_t *out, json_t *nu)
{
    json_t *queries = json_array();
    const char *pds = ds_type(json_object_get(p, "datasource"));
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(p, "targets"), i, t)
    {
        if (json_is_true(json_object_get(t, "hide")))
            continue;
        const char *ds = ds_type(json_object_get(t, "datasource"));
        if (!ds)
            ds = pds;
        const char *lang = "promql";
        const char *expr = str_of(t, "expr");
        if (ds && strcmp(ds, "loki") == 0) {
            lang = "logql";
        } else if (ds && strcmp(ds, "tempo") == 0) {
            lang = "traceql";
            expr = str_of(t, "query");
        } else if (ds && strcmp(ds, "prometheus") != 0) {
            note(nu, "panel \"%s\": data source type \"%s\"", title, ds);
            continue;
        }
        if (!expr || !*expr)
            continue;
        json_t *q = json_object();
        json_object_set_new(q, "expr", json_string(expr));
        if (strcmp(lang, "promql") != 0)
            json_object_set_new(q, "lang", json_string(lang));
        const char *legend = str_of(t, "legendFormat");
        if (legend && *legend && strcmp(legend, "__auto") != 0)
            json_object_set_new(q, "legend", json_string(legend));
        json_array_append_new(queries, q);
    }
    json_object_set_new(out, "queries", queries);
}

static void convert_field_config(const json_t *p, const char *title, json_t *out, json_t *nu)
{
    const json_t *d = json_object_get(json_object_get(p, "fieldConfig"), "defaults");
    const char *unit = str_of(d, "unit");
    if (unit && *unit) {
        const char *u = lookup(unit_map, sizeof unit_map / sizeof unit_map[0], unit);
        if (u)
            json_object_set_new(out, "unit", json_string(u));
        else
            note(nu, "panel \"%s\": unit \"%s\" (shown as a plain number)", title, unit);
    }
    copy_if(out, d, "decimals", NULL);
    copy_if(out, d, "min", NULL);
    copy_if(out, d, "max", NULL);
    json_t *steps = json_object_get(json_object_get(d, "thresholds"), "steps");
    if (json_array_size(steps)) {
        json_t *th = json_array();
        size_t i;
        json_t *s;
        json_array_foreach(steps, i, s)
        {
            json_t *o = json_object();
            json_t *v = json_object_get(s, "value");
            json_object_set(o, "value", json_is_number(v) ? v : json_null());
            const char *c = str_of(s, "color");
            json_object_set_new(o, "color", json_string(c ? c : "green"));
            json_array_append_new(th, o);
        }
        json_object_set_new(out, "thresholds", th);
    }
}

static void convert_panel(const json_t *p, size_t idx, json_t *panels, json_t *nu)
{
    const char *gtype = str_of(p, "type");
    const char *title = str_of(p, "title");
    char fallback[32];
    if (!title || !*title) {
        snprintf(fallback, sizeof fallback, "#%zu", idx + 1);
        title = fallback;
    }
    if (json_is_array(json_object_get(p, "queries"))) { /* already ours */
        json_array_append(panels, (json_t *)p);
        return;
    }
    const char *type = lookup(type_map, sizeof type_map / sizeof type_map[0], gtype);
    if (!type) {
        note(nu, "panel \"%s\": panel type \"%s\"", title, gtype ? gtype : "(none)");
        return;
    }
    json_t *out = json_object();
    json_object_set_new(out, "type", json_string(type));
    json_object_set_new(out, "title", json_string(title));
    copy_if(out, p, "description", NULL);
    if (strcmp(type, "row") == 0) {
        json_array_append_new(panels, out);
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(p, "panels"), i, c) convert_panel(c, i, panels, nu);
        return;
    }
    const json_t *gp = json_object_get(p, "gridPos");
    copy_if(out, gp, "w", NULL);
    copy_if(out, gp, "h", NULL);
    convert_targets(p, title, out, nu);
    convert_field_config(p, title, out, nu);
    if (json_array_size(json_object_get(p, "transformations")))
        note(nu, "panel \"%s\": transformations", title);
    if (strcmp(gtype, "barchart") == 0 || strcmp(gtype, "graph") == 0) {
        if (json_is_true(json_object_get(p, "bars")))
            json_object_set_new(out, "bars", json_true());
    }
    json_array_append_new(panels, out);
}

static void convert_variables(const json_t *in, json_t *out, json_t *nu)
{
    if (json_is_array(json_object_get(in, "variables"))) {
        json_object_set(out, "variables", json_object_get(in, "variables"));
        return;
    }
    json_t *vars = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(json_object_get(in, "templating"), "list"), i, v)
    {
        const char *type = str_of(v, "type");
        const char *name = str_of(v, "name");
        if (!name)
            continue;
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(name));
        copy_if(o, v, "label", NULL);
        copy_if(o, v, "multi", NULL);
        copy_if(o, v, "includeAll", NULL);
        json_t *q = json_object_get(v, "query");
        const char *qs = json_is_string(q) ? json_string_value(q) : str_of(q, "query");
        if (type && strcmp(type, "query") == 0 && qs && strncmp(qs, "label_values(", 13) == 0) {
            json_object_set_new(o, "query", json_string(qs));
        } else if (type && strcmp(type, "custom") == 0 && qs) {
            json_t *vals = json_array();
            char *dup = strdup(qs), *save = NULL;
            for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                while (*t == ' ')
                    t++;
                json_array_append_new(vals, json_string(t));
            }
            free(dup);
            json_object_set_new(o, "values", vals);
        } else {
            note(nu, "variable \"%s\": type \"%s\"%s%s", name, type ? type : "(none)",
                 qs ? " with query " : "", qs ? qs : "");
            json_decref(o);
            continue;
        }
        json_t *cur = json_object_get(json_object_get(v, "current"), "value");
        if (json_is_string(cur))
            json_object_set(o, "default", cur);
        else if (json_is_array(cur) && json_array_size(cur))
            json_object_set(o, "default", json_array_get(cur, 0));
        json_array_append_new(vars, o);
    }
    json_object_set_new(out, "variables", vars);
}

int dashboards_convert(const json_t *in, json_t **out, json_t *nu, err_t *err)
{
    *out = NULL;
    if (!json_is_object(in))
        return err_set(err, ERR_INVAL, "a dashboard must be a JSON object");
    const char *title = str_of(in, "title");
    if (!title || !*title)
        return err_set(err, ERR_INVAL, "the dashboard has no \"title\"");
    if (!json_is_array(json_object_get(in, "panels")))
        return err_set(err, ERR_INVAL, "the dashboard has no \"panels\" list");
    json_t *o = json_object();
    json_object_set_new(o, "title", json_string(title));
    copy_if(o, in, "description", NULL);
    copy_if(o, in, "tags", NULL);
    const json_t *t = json_object_get(in, "time");
    if (json_is_string(json_object_get(t, "from")) && json_is_string(json_object_get(t, "to")))
        json_object_set_new(o, "time",
                            json_pack("{s:O,s:O}", "from", json_object_get(t, "from"), "to",
                                      json_object_get(t, "to")));
    const char *refresh = str_of(in, "refresh");
    if (refresh && *refresh)
        json_object_set_new(o, "refresh", json_string(refresh));
    convert_variables(in, o, nu);
    json_t *panels = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(in, "panels"), i, p) convert_panel(p, i, panels, nu);
    json_object_set_new(o, "panels", panels);
    *out = o;
    return 0;
}

/* ---- the set of dashboards ---- */

static entry_t *find(const char *slug, size_t n)
{
    for (size_t i = 0; i < g.n; i++)
        if (strlen(g.v[i].slug) == n && memcmp(g.v[i].slug, slug, n) == 0)
            return &g.v[i];
    return NULL;
}

/* Takes doc. A user dashboard replaces one with the same slug. */
static int put(const char *slug, json_t *doc, bool builtin)
{
    entry_t *e = find(slug, strlen(slug));
    if (e) {
        json_decref(e->doc);
        e->doc = doc;
        e->builtin = builtin;
        return 0;
    }
    if (g.n >= MAX_DASHBOARDS) {
        json_decref(doc);
        return ERR_OVERLOAD;
    }
    entry_t *nv = realloc(g.v, (g.n + 1) * sizeof *nv);
    if (!nv) {
        json_decref(doc);
        return ERR_NOMEM;
    }
    g.v = nv;
    e = &g.v[g.n++];
    snprintf(e->slug, sizeof e->slug, "%s", slug);
    e->doc = doc;
    e->builtin = builtin;
    return 0;
}

static void load_builtin(void)
{
    static const char pre[] = "/dashboards/", suf[] = ".json";
    for (size_t i = 0; i < web_n_assets; i++) {
        const web_asset_t *a = &web_assets[i];
        size_t n = strlen(a->path);
        if (n <= sizeof pre + sizeof suf - 2 || strncmp(a->path, pre, sizeof pre - 1) != 0 ||
            strcmp(a->path + n - (sizeof suf - 1), suf) != 0)
            continue;
        char slug[MAX_SLUG + 1];
        snprintf(slug, sizeof slug, "%.*s", (int)(n - (sizeof pre - 1) - (sizeof suf - 1)),
                 a->path + sizeof pre - 1);
        json_error_t je;
        json_t *d = json_loadb((const char *)a->data, a->len, 0, &je);
        if (!d) {
            log_error("built-in dashboard is not valid JSON", "path=%s line=%d err=\"%s\"", a->path,
                      je.line, je.text);
            continue;
        }
        put(slug, d, true);
    }
}

static void load_user(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0 || !slug_valid(de->d_name, n - 5))
            continue;
        char path[4096], slug[MAX_SLUG + 1];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        snprintf(slug, sizeof slug, "%.*s", (int)(n - 5), de->d_name);
        json_error_t je;
        json_t *in = json_load_file(path, 0, &je);
        json_t *out = NULL, *nu = json_array();
        err_t err;
        if (!in)
            log_warn("dashboard file skipped", "path=\"%s\" line=%d err=\"%s\"", path, je.line,
                     je.text);
        else if (dashboards_convert(in, &out, nu, &err) != 0)
            log_warn("dashboard file skipped", "path=\"%s\" err=\"%s\"", path, err.msg);
        else
            put(slug, out, false);
        json_decref(in);
        json_decref(nu);
    }
    closedir(d);
}

static int save(const char *slug, const json_t *doc, err_t *err)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s.json", g.dir, slug);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    int fd = text ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
    size_t len = text ? strlen(text) : 0;
    bool ok = fd >= 0 && write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    free(text);
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return err_set(err, ERR_IO, "cannot save %s: %s", path, strerror(e));
    }
    return 0;
}

/* ---- routes ---- */

static void reply_json(http_req_t *r, int status, json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    http_reply(r, status, "application/json", s, s ? strlen(s) : 0);
    free(s);
}

static void reply_error(http_req_t *r, int status, const char *msg)
{
    reply_json(r, status, json_pack("{s:s,s:s}", "message", msg, "status", "error"));
}

static int cmp_entry(const void *a, const void *b)
{
    const entry_t *x = a, *y = b;
    const char *tx = str_of(x->doc, "title"), *ty = str_of(y->doc, "title");
    return strcmp(tx ? tx : x->slug, ty ? ty : y->slug);
}

static void h_list(http_req_t *r, void *arg)
{
    (void)arg;
    qsort(g.v, g.n, sizeof *g.v, cmp_entry);
    json_t *a = json_array();
    for (size_t i = 0; i < g.n; i++) {
        const char *title = str_of(g.v[i].doc, "title");
        const char *desc = str_of(g.v[i].doc, "description");
        char url[MAX_SLUG + 8];
        snprintf(url, sizeof url, "/d/%s", g.v[i].slug);
        json_array_append_new(a,
                              json_pack("{s:s,s:s,s:s,s:s,s:b}", "slug", g.v[i].slug, "title",
                                        title ? title : g.v[i].slug, "description",
                                        desc ? desc : "", "url", url, "builtin", g.v[i].builtin));
    }
    reply_json(r, 200, a);
}

static void h_get(http_req_t *r, void *arg)
{
    (void)arg;
    str_t slug = http_req_tail(r);
    entry_t *e = find(slug.ptr, slug.len);
    if (!e) {
        char msg[160];
        snprintf(msg, sizeof msg, "no dashboard \"%.*s\"", (int)(slug.len > 64 ? 64 : slug.len),
                 slug.ptr);
        reply_error(r, 404, msg);
        return;
    }
    if (http_req_method_bit(r) == HTTP_DELETE) {
        if (e->builtin) {
            reply_error(r, 403, "built-in dashboards cannot be deleted");
            return;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.json", g.dir, e->slug);
        if (unlink(path) != 0 && errno != ENOENT) {
            reply_error(r, 500, strerror(errno));
            return;
        }
        json_decref(e->doc);
        *e = g.v[--g.n];
        reply_json(r, 200, json_pack("{s:s}", "status", "success"));
        return;
    }
    reply_json(r, 200, json_incref(e->doc));
}

static void h_import(http_req_t *r, void *arg)
{
    (void)arg;
    str_t body = http_req_body(r);
    json_error_t je;
    json_t *req = json_loadb(body.ptr, body.len, 0, &je);
    if (!req) {
        char msg[300];
        snprintf(msg, sizeof msg, "invalid JSON at line %d, column %d: %s", je.line, je.column,
                 je.text);
        reply_error(r, 400, msg);
        return;
    }
    json_t *in = json_object_get(req, "dashboard");
    if (!in)
        in = req; /* a bare dashboard */
    json_t *out = NULL, *nu = json_array();
    err_t err;
    if (dashboards_convert(in, &out, nu, &err) != 0) {
        reply_error(r, 400, err.msg);
        json_decref(req);
        json_decref(nu);
        return;
    }
    char slug[MAX_SLUG + 1];
    const char *uid = str_of(in, "uid");
    if (uid && slug_valid(uid, strlen(uid)))
        snprintf(slug, sizeof slug, "%s", uid);
    else
        slugify(str_of(out, "title"), slug);
    entry_t *e = find(slug, strlen(slug));
    bool overwrite = json_is_true(json_object_get(req, "overwrite"));
    json_decref(req);
    if (e && !e->builtin && !overwrite) {
        reply_error(r, 412,
                    "a dashboard with the same uid already exists (set \"overwrite\": "
                    "true to replace it)");
        json_decref(out);
        json_decref(nu);
        return;
    }
    if (save(slug, out, &err) != 0) {
        reply_error(r, 500, err.msg);
        json_decref(out);
        json_decref(nu);
        return;
    }
    if (put(slug, out, false) != 0) {
        reply_error(r, 507, "too many dashboards");
        json_decref(nu);
        return;
    }
    char url[MAX_SLUG + 8];
    snprintf(url, sizeof url, "/d/%s", slug);
    reply_json(r, 200,
               json_pack("{s:i,s:s,s:s,s:s,s:s,s:i,s:{s:o}}", "id", (int)g.n, "slug", slug,
                         "status", "success", "uid", slug, "url", url, "version", 1, "skillscope",
                         "notUnderstood", nu));
}

int dashboards_register(http_server_t *srv, const char *listener, const char *dir, err_t *err)
{
    dashboards_free();
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return err_set(err, ERR_IO, "cannot create the dashboards directory %s: %s", dir,
                       strerror(errno));
    g.dir = strdup(dir);
    load_builtin();
    load_user(dir);
    http_route_opts_t opts = {.max_body_bytes = MAX_BODY_BYTES};
    int rc = http_route(srv, listener, HTTP_GET, "/api/dashboards", h_list, NULL, NULL);
    if (rc == 0)
        rc = http_route(srv, listener, HTTP_GET | HTTP_DELETE, "/api/dashboards/uid/*", h_get, NULL,
                        NULL);
    if (rc == 0)
        rc = http_route(srv, listener, HTTP_POST, "/api/dashboards/db", h_import, NULL, &opts);
    if (rc != 0)
        return err_set(err, rc, "cannot register the dashboards API: %s", err_str(rc));
    return 0;
}

void dashboards_free(void)
{
    for (size_t i = 0; i < g.n; i++)
        json_decref(g.v[i].doc);
    free(g.v);
    free(g.dir);
    memset(&g, 0, sizeof g);
}
