/*
 * tail.c - `skillscope tail`: what a running server receives, as it arrives, one readable line per
 * item, like the OpenTelemetry collector's debug exporter at basic verbosity:
 *
 *   12:00:01.234 span   claude-code  claude_code.api_request  412ms OK  trace=4bf92f35… model=…
 *   12:00:01.240 log    {service_name="claude-code", event_name="api_request"}  line  k=v …
 *   12:00:01.300 metric claude_code_token_usage_tokens_total{type="input"} 1234
 *
 * How: GET /api/skillscope/tail (ingest/tail.h) read with cli_http_stream; each NDJSON object is
 * decoded with jansson and printed (times in local time, the span's start for spans). --json
 * prints the objects unchanged. Ctrl-C ends it cleanly (exit 0).
 */
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/fmtnum.h"
#include "cli/cli.h"

#define DEFAULT_SERVER "http://127.0.0.1:3000"
#define CONNECT_TIMEOUT_MS 10000
#define MAX_ATTRS 8  /* attributes / metadata shown per line */
#define MAX_VALUE 60 /* characters of one shown value */
#define MAX_LINE 200 /* characters of a log line shown */

static volatile sig_atomic_t stop_flag;

static void on_sig(int signo)
{
    (void)signo;
    stop_flag = 1;
}

static void usage(FILE *f)
{
    fputs("Usage: skillscope tail [--traces] [--logs] [--metrics] [--filter k=v]...\n"
          "                       [--server URL] [--json]\n"
          "\n"
          "Prints the spans, log entries and metric samples a running server receives, as\n"
          "they become durable, one line each. Ctrl-C stops.\n"
          "\n"
          "Flags:\n"
          "  --traces, --logs, --metrics   only these signals (default: all three)\n"
          "  --filter k=v    only items where k equals v (repeatable; all must match):\n"
          "                  a metric's label, a log's stream label or metadata field, a\n"
          "                  span's attribute or resource attribute, or name, service.name,\n"
          "                  trace_id, span_id, status (OK, ERROR, UNSET)\n"
          "  --server URL    the server (default " DEFAULT_SERVER ")\n"
          "  --json          print the server's NDJSON objects unchanged\n"
          "  -h, --help      this help\n"
          "\n"
          "Lines: time, kind, then\n"
          "  span    service  name  duration status  trace=<id prefix>  attributes\n"
          "  log     {stream labels}  line  metadata\n"
          "  metric  name{labels} value\n"
          "A line '--- N items dropped ---' means the terminal read too slowly to keep up.\n",
          f);
}

typedef struct tailc {
    buf_t pending; /* an incomplete NDJSON line */
    bool json_out;
    bool started;
    int status;
    buf_t err_body;
    uint64_t items;
} tailc_t;

static void put_time_ns(buf_t *b, int64_t ns)
{
    time_t sec = (time_t)(ns / 1000000000);
    int ms = (int)((ns % 1000000000) / 1000000);
    struct tm tm;
    localtime_r(&sec, &tm);
    buf_printf(b, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

static int64_t num_str(json_t *v)
{
    if (json_is_string(v))
        return strtoll(json_string_value(v), NULL, 10);
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    return 0;
}

static void put_clipped(buf_t *b, const char *s, size_t max)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n && i < max; i++) {
        char c = s[i];
        buf_putc(b, c == '\n' || c == '\r' || c == '\t' ? ' ' : c);
    }
    if (n > max)
        buf_puts(b, "…");
}

/* k=v pairs of an object, at most MAX_ATTRS, each value clipped. */
static void put_pairs(buf_t *b, json_t *o, size_t *shown)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (*shown == MAX_ATTRS) {
            buf_puts(b, " …");
            (*shown)++;
            return;
        }
        if (*shown > MAX_ATTRS)
            return;
        buf_printf(b, " %s=", k);
        put_clipped(b, json_is_string(v) ? json_string_value(v) : "", MAX_VALUE);
        (*shown)++;
    }
}

static void put_labels(buf_t *b, json_t *o, bool skip_name)
{
    buf_putc(b, '{');
    const char *k;
    json_t *v;
    bool first = true;
    json_object_foreach(o, k, v)
    {
        if (skip_name && !strcmp(k, "__name__"))
            continue;
        buf_printf(b, "%s%s=\"", first ? "" : ", ", k);
        const char *s = json_is_string(v) ? json_string_value(v) : "";
        for (; *s; s++) {
            if (*s == '"' || *s == '\\')
                buf_putc(b, '\\');
            if (*s == '\n')
                buf_puts(b, "\\n");
            else
                buf_putc(b, *s);
        }
        buf_putc(b, '"');
        first = false;
    }
    buf_putc(b, '}');
}

static void put_duration(buf_t *b, int64_t ns)
{
    if (ns < 0)
        ns = 0;
    if (ns < 1000000)
        buf_printf(b, "%.2fms", (double)ns / 1e6);
    else if (ns < 10000000000LL)
        buf_printf(b, "%" PRId64 "ms", ns / 1000000);
    else
        buf_printf(b, "%.1fs", (double)ns / 1e9);
}

static void render(buf_t *b, json_t *o)
{
    const char *type = json_string_value(json_object_get(o, "type"));
    if (!type)
        return;
    if (!strcmp(type, "span")) {
        int64_t st = num_str(json_object_get(o, "start_ns"));
        int64_t en = num_str(json_object_get(o, "end_ns"));
        put_time_ns(b, st);
        buf_puts(b, " span   ");
        const char *svc = json_string_value(json_object_get(o, "service"));
        const char *name = json_string_value(json_object_get(o, "name"));
        const char *status = json_string_value(json_object_get(o, "status"));
        const char *tid = json_string_value(json_object_get(o, "trace_id"));
        buf_printf(b, "%s  %s  ", svc && *svc ? svc : "-", name ? name : "");
        put_duration(b, en - st);
        buf_printf(b, " %s  trace=%.8s…", status ? status : "UNSET", tid ? tid : "");
        size_t shown = 0;
        put_pairs(b, json_object_get(o, "attributes"), &shown);
        const char *msg = json_string_value(json_object_get(o, "status_message"));
        if (msg && *msg) {
            buf_puts(b, "  status_message=");
            put_clipped(b, msg, MAX_VALUE);
        }
    } else if (!strcmp(type, "log")) {
        put_time_ns(b, num_str(json_object_get(o, "ts_ns")));
        buf_puts(b, " log    ");
        put_labels(b, json_object_get(o, "stream"), false);
        const char *line = json_string_value(json_object_get(o, "line"));
        buf_puts(b, "  ");
        put_clipped(b, line ? line : "", MAX_LINE);
        size_t shown = 0;
        json_t *meta = json_object_get(o, "meta");
        if (json_object_size(meta))
            buf_putc(b, ' ');
        put_pairs(b, meta, &shown);
    } else if (!strcmp(type, "metric")) {
        put_time_ns(b, num_str(json_object_get(o, "ts_ms")) * 1000000);
        buf_puts(b, " metric ");
        json_t *ls = json_object_get(o, "labels");
        const char *name = json_string_value(json_object_get(ls, "__name__"));
        buf_puts(b, name ? name : "");
        put_labels(b, ls, true);
        json_t *v = json_object_get(o, "value");
        char num[FMTNUM_MAX];
        if (json_is_number(v))
            fmt_float_prom(num, json_number_value(v));
        else
            snprintf(num, sizeof num, "NaN");
        buf_printf(b, " %s", num);
    } else if (!strcmp(type, "dropped")) {
        buf_printf(b, "--- %" PRId64 " items dropped (not read fast enough) ---",
                   (int64_t)json_integer_value(json_object_get(o, "count")));
    } else {
        return; /* "start" and future types */
    }
    buf_putc(b, '\n');
}

static void handle_line(tailc_t *t, const char *p, size_t n)
{
    if (!n)
        return;
    if (t->json_out) {
        fwrite(p, 1, n, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        return;
    }
    json_t *o = json_loadb(p, n, 0, NULL);
    if (!o)
        return;
    const char *type = json_string_value(json_object_get(o, "type"));
    if (type && !strcmp(type, "start")) {
        t->started = true;
        fprintf(stderr, "skillscope tail: watching (Ctrl-C to stop)\n");
    }
    buf_t b = BUF_INIT;
    render(&b, o);
    if (buf_len(&b)) {
        fwrite(b.pos, 1, buf_len(&b), stdout);
        fflush(stdout);
        t->items++;
    }
    buf_deinit(&b);
    json_decref(o);
}

static bool on_data(void *arg, const char *p, size_t n)
{
    tailc_t *t = arg;
    if (t->status != 200) {
        if (buf_len(&t->err_body) < 4096)
            buf_append(&t->err_body, p, n);
        return true;
    }
    buf_append(&t->pending, p, n);
    for (;;) {
        const char *s = (const char *)t->pending.pos;
        const char *nl = memchr(s, '\n', buf_len(&t->pending));
        if (!nl)
            break;
        handle_line(t, s, (size_t)(nl - s));
        t->pending.pos += nl - s + 1;
    }
    if (!buf_len(&t->pending))
        buf_clear(&t->pending);
    return !stop_flag;
}

int cli_tail_main(int argc, char **argv)
{
    const char *server = DEFAULT_SERVER;
    buf_t q = BUF_INIT;
    bool first = true;
    buf_t signals = BUF_INIT;
    tailc_t t;
    memset(&t, 0, sizeof t);
    int code = CLI_EXIT_USAGE;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            code = CLI_EXIT_OK;
            goto out;
        } else if (!strcmp(argv[i], "--traces") || !strcmp(argv[i], "--logs") ||
                   !strcmp(argv[i], "--metrics")) {
            if (buf_len(&signals))
                buf_putc(&signals, ',');
            buf_puts(&signals, argv[i] + 2);
        } else if (cli_flag_value(argc, argv, &i, "--filter", &v)) {
            if (!v || !strchr(v, '=') || v[0] == '=') {
                fprintf(stderr, "skillscope tail: --filter needs key=value, got \"%s\"\n",
                        v ? v : "");
                goto out;
            }
            cli_url_param(&q, &first, "filter", str_cstr(v));
        } else if (cli_flag_value(argc, argv, &i, "--server", &v)) {
            if (!v) {
                fprintf(stderr, "skillscope tail: --server needs a URL\n");
                goto out;
            }
            server = v;
        } else if (!strcmp(argv[i], "--json")) {
            t.json_out = true;
        } else {
            fprintf(stderr, "skillscope tail: unknown argument %s (see skillscope tail --help)\n",
                    argv[i]);
            goto out;
        }
    }
    cli_url_t url;
    err_t err;
    err_clear(&err);
    if (cli_url_parse(server, &url, &err) != 0) {
        fprintf(stderr, "skillscope tail: --server: %s\n", err.msg);
        goto out;
    }
    if (buf_len(&signals))
        cli_url_param(&q, &first, "signals", buf_str(&signals));
    buf_t path = BUF_INIT;
    buf_printf(&path, "%s/api/skillscope/tail%.*s", url.prefix, (int)buf_len(&q),
               (const char *)q.pos);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sig;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = cli_http_stream(url.host, url.port, buf_cstr(&path), CONNECT_TIMEOUT_MS, &t.status,
                             on_data, &t, &stop_flag, &err);
    buf_deinit(&path);
    if (rc != 0) {
        fprintf(stderr, "skillscope tail: %s:%d: %s\n", url.host, url.port, err.msg);
        code = CLI_EXIT_ERROR;
    } else if (t.status != 200) {
        str_t msg = buf_str(&t.err_body);
        while (msg.len && (msg.ptr[msg.len - 1] == '\n' || msg.ptr[msg.len - 1] == '\r'))
            msg.len--;
        fprintf(stderr, "skillscope tail: HTTP %d: %.*s\n", t.status, STR_FMT(msg));
        code = CLI_EXIT_ERROR;
    } else if (!stop_flag) {
        fprintf(stderr, "skillscope tail: the server ended the stream\n");
        code = CLI_EXIT_OK;
    } else {
        code = CLI_EXIT_OK;
    }
out:
    buf_deinit(&q);
    buf_deinit(&signals);
    buf_deinit(&t.pending);
    buf_deinit(&t.err_body);
    return code;
}
