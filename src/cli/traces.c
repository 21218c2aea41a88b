/*
 * traces.c - `skillscope traces 'TraceQL'` (a table of matching traces) and `skillscope trace ID`
 * (one trace's span tree with its timeline drawn in the terminal).
 *
 *   skillscope traces QUERY [--since 1h] [--limit N] [--spss N] [--server URL] [-o table|json]
 *   skillscope trace ID [--server URL] [-o tree|json]
 *
 * Both are clients of the running server's Tempo API (GET /api/search, GET /api/v2/traces/<id>),
 * so they answer exactly what Grafana's Tempo data source sees and need no access to the data
 * directory the server has locked. The search table has one row per trace: id, root service, root
 * span name, start (UTC), duration and the number of matched spans. The tree lists spans under
 * their parents (children by start time; spans whose parent is missing start their own tree),
 * each with service, duration, status and a bar placed on the trace's timeline, then a line of
 * key attributes (test.*, gen_ai.*, then others, at most TREE_ATTRS) and, for errors, the status
 * message. Errors: a refused query prints the server's message (with its line and column) and
 * exits 1; an unknown trace is "not found", exit 1; bad flags exit 2.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "cli/cli.h"
#include "query/traceql.h"

#define DEFAULT_SERVER "http://127.0.0.1:3000"
#define TIMEOUT_MS 120000
#define BAR_WIDTH 40
#define TREE_ATTRS 6
#define MAX_TREE_DEPTH 64

static void usage_traces(FILE *f)
{
    fputs("Usage: skillscope traces QUERY [--since D] [--limit N] [--spss N] [--server URL]\n"
          "                         [-o table|json]\n"
          "\n"
          "Searches the traces of a running server with TraceQL (GET /api/search) and prints\n"
          "one row per matching trace, newest first: trace id, root service, root span name,\n"
          "start (UTC), duration and the number of matched spans.\n"
          "\n"
          "Flags:\n"
          "  --since D       how far back to search (default 1h; at most 168h): 30m, 6h, 7d\n"
          "  --limit N       at most N traces (default 20)\n"
          "  --spss N        spans kept per trace's spanset (default 3; only with -o json)\n"
          "  --server URL    the server's HTTP API (default " DEFAULT_SERVER ")\n"
          "  -o, --output F  table (default) or json (the API's answer, unchanged)\n"
          "  -h, --help      this help\n"
          "\n"
          "Examples:\n"
          "  skillscope traces '{ span.test.result = \"failed\" && resource.vcs.commit.sha = "
          "\"abc\" }'\n"
          "  skillscope traces '{ status = error && duration > 30s }' --since 24h\n"
          "  skillscope traces '{ resource.service.name = \"claude-code\" } | count() > 10'\n"
          "\n"
          "Open one of them with: skillscope trace ID\n",
          f);
}

static void usage_trace(FILE *f)
{
    fputs("Usage: skillscope trace ID [--server URL] [-o tree|json]\n"
          "\n"
          "Prints one trace of a running server (GET /api/v2/traces/ID) as a tree of spans:\n"
          "service, duration, status and a bar on the trace's timeline for each span, with\n"
          "its key attributes (test.*, gen_ai.*, ...) and error messages underneath.\n"
          "\n"
          "Flags:\n"
          "  --server URL    the server's HTTP API (default " DEFAULT_SERVER ")\n"
          "  -o, --output F  tree (default) or json (OTLP/JSON as the API answers it)\n"
          "  -h, --help      this help\n",
          f);
}

/* Fetches path from the server; prints why and returns false when it cannot. */
static bool fetch(const char *cmd, const char *server, const cli_url_t *u, const char *path,
                  int *status, buf_t *body)
{
    err_t err;
    int rc = cli_http_get(u->host, u->port, path, TIMEOUT_MS, status, body, &err);
    if (rc == ERR_TIMEOUT) {
        fprintf(stderr, "skillscope %s: no answer from %s within %d s\n", cmd, server,
                TIMEOUT_MS / 1000);
        return false;
    }
    if (rc != 0) {
        fprintf(stderr,
                "skillscope %s: cannot reach %s: %s (is the server running? start it with "
                "`skillscope start`, or point --server at it)\n",
                cmd, server, err.msg);
        return false;
    }
    return true;
}

/* The first line of an error body, at most 400 bytes. */
static void print_error(const char *cmd, int status, const buf_t *body)
{
    str_t t = buf_str(body);
    size_t n = t.len;
    const char *nl = t.len ? memchr(t.ptr, '\n', t.len) : NULL;
    if (nl)
        n = (size_t)(nl - t.ptr);
    if (n > 400)
        n = 400;
    fprintf(stderr, "skillscope %s: HTTP %d: %.*s\n", cmd, status, (int)n, n ? t.ptr : "");
}

static void fmt_dur(char *out, size_t cap, int64_t ns)
{
    buf_t b = BUF_INIT;
    /* Round to what a person reads: ms below a minute, else seconds. */
    if (ns >= 60000000000LL)
        ns = ns / 1000000000 * 1000000000;
    else if (ns >= 1000000)
        ns = ns / 1000000 * 1000000;
    traceql_fmt_duration(&b, ns);
    snprintf(out, cap, "%.*s", (int)buf_len(&b), (const char *)b.pos);
    buf_deinit(&b);
}

static int64_t json_i64(json_t *v)
{
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    const char *s = json_string_value(v);
    return s ? strtoll(s, NULL, 10) : 0;
}

static const char *jstr(json_t *o, const char *key, const char *def)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : def;
}

/* Display width of a UTF-8 string (code points). */
static int u8width(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static void pad(const char *s, int width)
{
    fputs(s, stdout);
    for (int w = u8width(s); w < width; w++)
        putchar(' ');
}

static int print_search(json_t *j)
{
    json_t *traces = json_object_get(j, "traces");
    size_t n = json_array_size(traces);
    if (!n) {
        puts("(no traces)");
        return CLI_EXIT_OK;
    }
    int w_svc = (int)strlen("ROOT SERVICE"), w_name = (int)strlen("ROOT NAME");
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(traces, i);
        int a = u8width(jstr(t, "rootServiceName", "")), b = u8width(jstr(t, "rootTraceName", ""));
        w_svc = a > w_svc ? a : w_svc;
        w_name = b > w_name ? b : w_name;
    }
    w_svc = w_svc > 40 ? 40 : w_svc;
    w_name = w_name > 60 ? 60 : w_name;
    printf("%-32s  ", "TRACE ID");
    pad("ROOT SERVICE", w_svc);
    printf("  ");
    pad("ROOT NAME", w_name);
    printf("  %-24s  %10s  %s\n", "START", "DURATION", "MATCHED");
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(traces, i);
        char ts[40], dur[40];
        rfc3339_format_ms(ts, json_i64(json_object_get(t, "startTimeUnixNano")) / 1000000);
        fmt_dur(dur, sizeof dur, json_i64(json_object_get(t, "durationMs")) * 1000000);
        json_t *ss = json_array_get(json_object_get(t, "spanSets"), 0);
        printf("%-32s  ", jstr(t, "traceID", "?"));
        pad(jstr(t, "rootServiceName", ""), w_svc);
        printf("  ");
        pad(jstr(t, "rootTraceName", ""), w_name);
        printf("  %-24s  %10s  %lld\n", ts, dur,
               (long long)json_i64(json_object_get(ss, "matched")));
    }
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_ERROR;
}

/* Common flag loop: positional argument into *pos, --server, -o, plus the command's own. */
typedef struct flagdef {
    const char *name;
    const char **slot;
} flagdef_t;

static int parse_flags(const char *cmd, int argc, char **argv, const char **pos,
                       const flagdef_t *defs, size_t n_defs, void (*usage)(FILE *))
{
    bool done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (done || a[0] != '-' || !a[1]) {
            if (*pos) {
                fprintf(stderr,
                        "skillscope %s: one argument expected, got \"%s\" too (quote the "
                        "query)\n",
                        cmd, a);
                return CLI_EXIT_USAGE;
            }
            *pos = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            done = true;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return CLI_EXIT_OK;
        }
        const char **slot = NULL;
        for (size_t k = 0; k < n_defs && !slot; k++)
            if (cli_flag_value(argc, argv, &i, defs[k].name, &v))
                slot = defs[k].slot;
        if (!slot) {
            fprintf(stderr, "skillscope %s: unknown flag %s (see skillscope %s --help)\n", cmd, a,
                    cmd);
            return CLI_EXIT_USAGE;
        }
        if (!v) {
            fprintf(stderr, "skillscope %s: %s needs a value\n", cmd, a);
            return CLI_EXIT_USAGE;
        }
        *slot = v;
    }
    return -1;
}

int cli_traces_main(int argc, char **argv)
{
    const char *q = NULL, *since = "1h", *limit = "20", *spss = NULL, *server = DEFAULT_SERVER,
               *output = "table";
    const flagdef_t defs[] = {{"--since", &since},   {"--limit", &limit},   {"--spss", &spss},
                              {"--server", &server}, {"--output", &output}, {"-o", &output}};
    int rc =
        parse_flags("traces", argc, argv, &q, defs, sizeof defs / sizeof defs[0], usage_traces);
    if (rc >= 0)
        return rc;
    if (!q || !*q) {
        fprintf(stderr, "skillscope traces: no TraceQL query given (see skillscope traces "
                        "--help)\n");
        return CLI_EXIT_USAGE;
    }
    if (strcmp(output, "table") != 0 && strcmp(output, "json") != 0) {
        fprintf(stderr, "skillscope traces: -o must be table or json, not \"%s\"\n", output);
        return CLI_EXIT_USAGE;
    }
    int64_t since_ms = 0;
    err_t err;
    if (duration_parse_ms(str_cstr(since), &since_ms, &err) != 0 || since_ms <= 0) {
        fprintf(stderr,
                "skillscope traces: invalid --since \"%s\": use a duration such as 30m, "
                "6h or 7d\n",
                since);
        return CLI_EXIT_USAGE;
    }
    char *end;
    long lim = strtol(limit, &end, 10);
    if (*end || lim <= 0) {
        fprintf(stderr, "skillscope traces: --limit must be a positive number, not \"%s\"\n",
                limit);
        return CLI_EXIT_USAGE;
    }
    cli_url_t u;
    if (cli_url_parse(server, &u, &err) != 0) {
        fprintf(stderr, "skillscope traces: --server: %s\n", err.msg);
        return CLI_EXIT_USAGE;
    }
    int64_t now_s = clock_now_ms() / 1000;
    char tmp[32];
    buf_t path = BUF_INIT;
    bool first = true;
    buf_printf(&path, "%s/api/search", u.prefix);
    cli_url_param(&path, &first, "q", str_cstr(q));
    snprintf(tmp, sizeof tmp, "%lld", (long long)(now_s - (since_ms + 999) / 1000));
    cli_url_param(&path, &first, "start", str_cstr(tmp));
    snprintf(tmp, sizeof tmp, "%lld", (long long)now_s + 1);
    cli_url_param(&path, &first, "end", str_cstr(tmp));
    cli_url_param(&path, &first, "limit", str_cstr(limit));
    if (spss)
        cli_url_param(&path, &first, "spss", str_cstr(spss));
    int status = 0;
    buf_t body = BUF_INIT;
    int code = CLI_EXIT_ERROR;
    if (fetch("traces", server, &u, buf_cstr(&path), &status, &body)) {
        if (status != 200) {
            print_error("traces", status, &body);
        } else if (!strcmp(output, "json")) {
            fwrite(body.pos, 1, buf_len(&body), stdout);
            putchar('\n');
            code = CLI_EXIT_OK;
        } else {
            json_error_t je;
            json_t *j = json_loadb((const char *)body.pos, buf_len(&body), 0, &je);
            if (!j)
                fprintf(stderr, "skillscope traces: the answer is not JSON: %s\n", je.text);
            else
                code = print_search(j);
            json_decref(j);
        }
    }
    buf_deinit(&path);
    buf_deinit(&body);
    return code;
}

/* ---- trace tree ---- */

typedef struct tspan {
    json_t *j;
    const char *id, *parent, *name, *service;
    int64_t start, end;
    int status;
    size_t *kids, n_kids;
    bool done;
} tspan_t;

static int kid_cmp(const void *x, const void *y, void *arg)
{
    const tspan_t *v = arg;
    const tspan_t *a = &v[*(const size_t *)x], *b = &v[*(const size_t *)y];
    return a->start < b->start ? -1 : a->start > b->start;
}

static int attr_rank(const char *k)
{
    if (!strncmp(k, "test.", 5) || !strncmp(k, "skill.", 6))
        return 0;
    if (!strncmp(k, "gen_ai.", 7) || !strncmp(k, "vcs.", 4))
        return 1;
    return 2;
}

static void value_text(json_t *v, buf_t *out)
{
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x)
    {
        if (json_is_string(x))
            buf_puts(out, json_string_value(x));
        else if (json_is_boolean(x))
            buf_puts(out, json_is_true(x) ? "true" : "false");
        else if (json_is_integer(x))
            buf_printf(out, "%lld", (long long)json_integer_value(x));
        else if (json_is_real(x))
            buf_printf(out, "%g", json_real_value(x));
        else
            buf_puts(out, "[...]");
        return;
    }
}

static void print_attrs(json_t *attrs, const char *indent)
{
    size_t n = json_array_size(attrs), shown = 0;
    if (!n)
        return;
    buf_t line = BUF_INIT;
    for (int rank = 0; rank < 3 && shown < TREE_ATTRS; rank++)
        for (size_t i = 0; i < n && shown < TREE_ATTRS; i++) {
            json_t *a = json_array_get(attrs, i);
            const char *k = jstr(a, "key", "");
            if (attr_rank(k) != rank)
                continue;
            buf_puts(&line, shown ? "  " : "");
            buf_printf(&line, "%s=", k);
            value_text(json_object_get(a, "value"), &line);
            shown++;
        }
    if (n > shown)
        buf_printf(&line, "  (+%zu more)", n - shown);
    printf("%s%s\n", indent, buf_cstr(&line));
    buf_deinit(&line);
}

typedef struct tree {
    tspan_t *v;
    size_t n;
    int64_t t0, t1;
    int w_label;
} tree_t;

static void print_span(tree_t *t, size_t i, buf_t *prefix, bool last, int depth)
{
    tspan_t *s = &t->v[i];
    s->done = true;
    char dur[40], bar[BAR_WIDTH * 3 + 1];
    fmt_dur(dur, sizeof dur, s->end - s->start);
    double span = (double)(t->t1 - t->t0 > 0 ? t->t1 - t->t0 : 1);
    int off = (int)((double)(s->start - t->t0) / span * BAR_WIDTH);
    int len = (int)((double)(s->end - s->start) / span * BAR_WIDTH + 0.5);
    off = off < 0 ? 0 : off > BAR_WIDTH - 1 ? BAR_WIDTH - 1 : off;
    len = len < 1 ? 1 : len > BAR_WIDTH - off ? BAR_WIDTH - off : len;
    size_t b = 0;
    for (int k = 0; k < BAR_WIDTH; k++) {
        if (k >= off && k < off + len) {
            memcpy(bar + b, "\xe2\x96\x88", 3); /* █ */
            b += 3;
        } else {
            bar[b++] = k < off ? '.' : ' ';
        }
    }
    bar[b] = 0;
    buf_t label = BUF_INIT;
    buf_put_str(&label, buf_str(prefix));
    if (depth)
        buf_puts(&label, last ? "\xe2\x94\x94\xe2\x94\x80 " : "\xe2\x94\x9c\xe2\x94\x80 ");
    buf_puts(&label, s->name);
    static const char *st[] = {"-", "ok", "ERROR"};
    pad(buf_cstr(&label), t->w_label);
    printf("  %-16s %9s  %-6s  %s\n", s->service, dur,
           st[s->status >= 0 && s->status <= 2 ? s->status : 0], bar);
    size_t mark = buf_len(prefix);
    if (depth)
        buf_puts(prefix, last ? "   " : "\xe2\x94\x82  ");
    buf_t ind = BUF_INIT;
    buf_put_str(&ind, buf_str(prefix));
    buf_puts(&ind, s->n_kids ? "\xe2\x94\x82    " : "     ");
    print_attrs(json_object_get(s->j, "attributes"), buf_cstr(&ind));
    json_t *status = json_object_get(s->j, "status");
    const char *msg = jstr(status, "message", "");
    if (*msg)
        printf("%sstatus: %s\n", buf_cstr(&ind), msg);
    buf_deinit(&ind);
    buf_deinit(&label);
    if (depth < MAX_TREE_DEPTH)
        for (size_t k = 0; k < s->n_kids; k++)
            if (!t->v[s->kids[k]].done)
                print_span(t, s->kids[k], prefix, k + 1 == s->n_kids, depth + 1);
    prefix->last = prefix->pos + mark;
}

static int label_width(tree_t *t, size_t i, int depth)
{
    int w = depth * 3 + u8width(t->v[i].name), m = w;
    if (depth >= MAX_TREE_DEPTH)
        return m;
    for (size_t k = 0; k < t->v[i].n_kids; k++) {
        int c = label_width(t, t->v[i].kids[k], depth + 1);
        m = c > m ? c : m;
    }
    return m;
}

static int print_tree(const char *id, json_t *j)
{
    tree_t t = {.t0 = INT64_MAX, .t1 = INT64_MIN};
    json_t *rss = json_object_get(json_object_get(j, "trace"), "resourceSpans");
    size_t cap = 0, i, k, m;
    json_t *rs, *ss, *sp;
    json_array_foreach(rss, i, rs)
    {
        const char *svc = "";
        json_t *a;
        json_array_foreach(json_object_get(json_object_get(rs, "resource"), "attributes"), k, a)
        {
            if (!strcmp(jstr(a, "key", ""), "service.name"))
                svc = jstr(json_object_get(a, "value"), "stringValue", "");
        }
        json_array_foreach(json_object_get(rs, "scopeSpans"), k, ss)
        {
            json_array_foreach(json_object_get(ss, "spans"), m, sp)
            {
                if (t.n == cap) {
                    cap = cap ? cap * 2 : 64;
                    t.v = realloc(t.v, cap * sizeof *t.v);
                    if (!t.v)
                        abort();
                }
                tspan_t *s = &t.v[t.n++];
                memset(s, 0, sizeof *s);
                s->j = sp;
                s->id = jstr(sp, "spanId", "");
                s->parent = jstr(sp, "parentSpanId", "");
                s->name = jstr(sp, "name", "");
                s->service = svc;
                s->start = json_i64(json_object_get(sp, "startTimeUnixNano"));
                s->end = json_i64(json_object_get(sp, "endTimeUnixNano"));
                s->status = (int)json_i64(json_object_get(json_object_get(sp, "status"), "code"));
                t.t0 = s->start < t.t0 ? s->start : t.t0;
                t.t1 = s->end > t.t1 ? s->end : t.t1;
            }
        }
    }
    if (!t.n) {
        fprintf(stderr, "skillscope trace: trace %s not found\n", id);
        return CLI_EXIT_ERROR;
    }
    /* Children lists; a span whose parent is absent (or itself) is a root. */
    size_t *roots = calloc(t.n, sizeof *roots), n_roots = 0;
    for (i = 0; i < t.n; i++) {
        size_t p = t.n;
        for (k = 0; *t.v[i].parent && k < t.n && p == t.n; k++)
            if (k != i && !strcmp(t.v[k].id, t.v[i].parent))
                p = k;
        if (p == t.n) {
            roots[n_roots++] = i;
            continue;
        }
        tspan_t *ps = &t.v[p];
        ps->kids = realloc(ps->kids, (ps->n_kids + 1) * sizeof *ps->kids);
        if (!ps->kids)
            abort();
        ps->kids[ps->n_kids++] = i;
    }
    for (i = 0; i < t.n; i++)
        if (t.v[i].n_kids)
            qsort_r(t.v[i].kids, t.v[i].n_kids, sizeof(size_t), kid_cmp, t.v);
    qsort_r(roots, n_roots, sizeof *roots, kid_cmp, t.v);
    t.w_label = (int)strlen("SPAN");
    for (i = 0; i < n_roots; i++) {
        int w = label_width(&t, roots[i], 0);
        t.w_label = w > t.w_label ? w : t.w_label;
    }
    char dur[40], ts[40];
    fmt_dur(dur, sizeof dur, t.t1 - t.t0);
    rfc3339_format_ms(ts, t.t0 / 1000000);
    printf("trace %s: %zu spans, %s, started %s\n\n", id, t.n, dur, ts);
    pad("SPAN", t.w_label);
    printf("  %-16s %9s  %-6s  %s\n", "SERVICE", "DURATION", "STATUS", "TIMELINE");
    buf_t prefix = BUF_INIT;
    for (i = 0; i < n_roots; i++) {
        buf_clear(&prefix);
        print_span(&t, roots[i], &prefix, true, 0);
    }
    /* Spans in a parent cycle were reached by no root: list them flat. */
    for (i = 0; i < t.n; i++)
        if (!t.v[i].done) {
            buf_clear(&prefix);
            print_span(&t, i, &prefix, true, 0);
        }
    buf_deinit(&prefix);
    for (i = 0; i < t.n; i++)
        free(t.v[i].kids);
    free(t.v);
    free(roots);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_ERROR;
}

int cli_trace_main(int argc, char **argv)
{
    const char *id = NULL, *server = DEFAULT_SERVER, *output = "tree";
    const flagdef_t defs[] = {{"--server", &server}, {"--output", &output}, {"-o", &output}};
    int rc = parse_flags("trace", argc, argv, &id, defs, sizeof defs / sizeof defs[0], usage_trace);
    if (rc >= 0)
        return rc;
    if (!id || !*id) {
        fprintf(stderr, "skillscope trace: no trace id given (see skillscope trace --help)\n");
        return CLI_EXIT_USAGE;
    }
    if (strcmp(output, "tree") != 0 && strcmp(output, "json") != 0) {
        fprintf(stderr, "skillscope trace: -o must be tree or json, not \"%s\"\n", output);
        return CLI_EXIT_USAGE;
    }
    cli_url_t u;
    err_t err;
    if (cli_url_parse(server, &u, &err) != 0) {
        fprintf(stderr, "skillscope trace: --server: %s\n", err.msg);
        return CLI_EXIT_USAGE;
    }
    buf_t path = BUF_INIT;
    buf_printf(&path, "%s/api/v2/traces/", u.prefix);
    static const char hex[] = "0123456789ABCDEF";
    for (const char *p = id; *p; p++) { /* percent-encode anything but unreserved characters */
        unsigned char c = (unsigned char)*p;
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            strchr("-._~", c))
            buf_putc(&path, (char)c);
        else
            buf_printf(&path, "%%%c%c", hex[c >> 4], hex[c & 15]);
    }
    int status = 0, code = CLI_EXIT_ERROR;
    buf_t body = BUF_INIT;
    if (fetch("trace", server, &u, buf_cstr(&path), &status, &body)) {
        if (status == 404) {
            fprintf(stderr, "skillscope trace: trace %s not found\n", id);
        } else if (status != 200) {
            print_error("trace", status, &body);
        } else if (!strcmp(output, "json")) {
            fwrite(body.pos, 1, buf_len(&body), stdout);
            putchar('\n');
            code = CLI_EXIT_OK;
        } else {
            json_error_t je;
            json_t *j = json_loadb((const char *)body.pos, buf_len(&body), 0, &je);
            if (!j)
                fprintf(stderr, "skillscope trace: the answer is not JSON: %s\n", je.text);
            else
                code = print_tree(id, j);
            json_decref(j);
        }
    }
    buf_deinit(&path);
    buf_deinit(&body);
    return code;
}
