/*
 * query.c - `skillscope query EXPR`: runs PromQL on a running server and prints the answer.
 *
 *   skillscope query EXPR [--time T]                          instant query (/api/v1/query)
 *   skillscope query EXPR --start T [--end T] [--step S]      range query (/api/v1/query_range)
 *                         [--server URL] [-o table|json]
 *
 * Why a client of the HTTP API rather than an evaluator of its own: the server holds the data
 * directory's lock, and the API is the one place PromQL runs, so the CLI answers exactly what
 * Grafana would see.
 *
 * How: times are resolved here (RFC3339, Unix seconds, "now", "now-1h", "now+5m"; "now" is cut to
 * whole seconds so relative ranges print readable times) and sent as Unix seconds; a step is sent
 * as typed (Prometheus duration or seconds, which the server parses the same way) or, when absent,
 * chosen as about 250 points over the range in whole seconds. The answer is fetched with
 * cli_http_get and, for -o table, decoded with jansson and printed as aligned text: an instant
 * vector is one row per series (labels in PromQL selector form, then the value), a scalar or string
 * is its value alone, a matrix is one block per series (the series, then one indented "time value"
 * line per sample). -o json writes the body as received. An API error is one line "skillscope
 * query: <errorType>: <error>" on stderr and exit status 1; the body is still written first with -o
 * json.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/fmtnum.h"
#include "cli/cli.h"
#include "query/params.h"

#define DEFAULT_SERVER "http://127.0.0.1:3000"
#define TIMEOUT_MS 120000
#define DEFAULT_RANGE_MS (3600 * 1000)
#define AUTO_STEP_POINTS 250

static void usage(FILE *f)
{
    fputs("Usage: skillscope query EXPR [--time T] [--server URL] [-o table|json]\n"
          "       skillscope query EXPR --start T [--end T] [--step S] [--server URL]\n"
          "                             [-o table|json]\n"
          "\n"
          "Runs the PromQL expression EXPR on a running server (GET /api/v1/query, or\n"
          "/api/v1/query_range when --start, --end or --step is given) and prints the result.\n"
          "\n"
          "Flags:\n"
          "  --time T        evaluation time of an instant query (default: now)\n"
          "  --start T       start of a range query (default: --end minus 1h)\n"
          "  --end T         end of a range query (default: now)\n"
          "  --step S        resolution of a range query: a Prometheus duration (15s, 1m,\n"
          "                  1h30m) or seconds (15, 0.5); default: the range / 250, rounded\n"
          "                  up to whole seconds\n"
          "  --server URL    the server's HTTP API (default " DEFAULT_SERVER ")\n"
          "  -o, --output F  table (default) or json (the API's JSON answer, unchanged)\n"
          "  -h, --help      this help\n"
          "\n"
          "Times T: RFC3339 (2026-01-02T15:04:05Z, 2026-01-02T15:04:05.5+02:00), Unix seconds\n"
          "(1767366245, 1767366245.5), now, or now plus or minus a duration (now-1h, now-30m,\n"
          "now+5m). Flags take their value as the next argument or after '='; put EXPR after\n"
          "'--' when it starts with '-'.\n"
          "\n"
          "Output (table): an instant vector is one line per series, labels then value; a\n"
          "scalar or string prints its value alone; a range result is one block per series:\n"
          "the labels, then one indented line per sample with its time (UTC) and value.\n"
          "\n"
          "Exit status: 0 on success (also for an empty result), 1 when the server refuses\n"
          "the query (printed as 'skillscope query: bad_data: <message>') or cannot be\n"
          "reached, 2 for a bad command line.\n"
          "\n"
          "Examples:\n"
          "  skillscope query 'sum by (model) (claude_code_cost_usage_USD_total)'\n"
          "  skillscope query 'rate(claude_code_token_usage_tokens_total[5m])' --start now-6h "
          "--step 5m\n"
          "  skillscope query up --time 2026-01-02T15:04:05Z -o json\n",
          f);
}

/* T as ms: "now", "now-<duration>", "now+<duration>", Unix seconds or RFC3339. */
static int parse_time(const char *s, int64_t now_ms, int64_t *ms, err_t *err)
{
    str_t v = str_cstr(s);
    if (str_starts_with(v, "now")) {
        str_t rest = {v.ptr + 3, v.len - 3};
        int64_t d = 0;
        if (!rest.len) {
            *ms = now_ms;
            return 0;
        }
        if ((rest.ptr[0] == '-' || rest.ptr[0] == '+') && rest.len > 1 &&
            duration_parse_ms((str_t){rest.ptr + 1, rest.len - 1}, &d, NULL) == 0) {
            *ms = rest.ptr[0] == '-' ? now_ms - d : now_ms + d;
            return 0;
        }
    } else if (v.len && params_prom_time(v, 0, ms, NULL) == 0) {
        return 0;
    }
    return err_set(err, ERR_PARSE,
                   "invalid time \"%s\": use RFC3339 (2026-01-02T15:04:05Z), Unix seconds, now "
                   "or now-1h",
                   s);
}

/* ---- table output ---- */

static bool legacy_name(const char *s)
{
    if (!*s)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(p > s && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

static void put_quoted(buf_t *b, const char *s)
{
    buf_putc(b, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            buf_putc(b, '\\');
        if (*s == '\n')
            buf_puts(b, "\\n");
        else
            buf_putc(b, *s);
    }
    buf_putc(b, '"');
}

/* A label set as PromQL writes it: name{a="1", b="2"}, or {"dotted.name", a="1"}. */
static void format_series(buf_t *b, json_t *metric)
{
    const char *name = json_string_value(json_object_get(metric, "__name__"));
    bool outside = name && legacy_name(name);
    if (outside)
        buf_puts(b, name);
    bool first = true;
    if (name && !outside) {
        buf_putc(b, '{');
        put_quoted(b, name);
        first = false;
    }
    const char *k;
    json_t *v;
    json_object_foreach(metric, k, v)
    {
        if (!strcmp(k, "__name__"))
            continue;
        buf_puts(b, first ? "{" : ", ");
        first = false;
        if (legacy_name(k) && !strchr(k, ':'))
            buf_puts(b, k);
        else
            put_quoted(b, k);
        buf_putc(b, '=');
        put_quoted(b, json_string_value(v) ? json_string_value(v) : "");
    }
    if (!first)
        buf_putc(b, '}');
    else if (!outside)
        buf_puts(b, "{}");
}

/* A sample's value: the string of [t, "v"], or a native histogram's count and sum. */
static void format_value(buf_t *b, json_t *pair, bool histogram)
{
    json_t *v = json_array_get(pair, 1);
    if (!histogram) {
        buf_puts(b, json_string_value(v) ? json_string_value(v) : "?");
        return;
    }
    const char *count = json_string_value(json_object_get(v, "count"));
    const char *sum = json_string_value(json_object_get(v, "sum"));
    buf_printf(b, "histogram count=%s sum=%s", count ? count : "?", sum ? sum : "?");
}

static int64_t sample_ms(json_t *pair)
{
    return (int64_t)llround(json_number_value(json_array_get(pair, 0)) * 1000.0);
}

static void print_vector(json_t *result)
{
    size_t n = json_array_size(result);
    if (!n) {
        puts("(no series)");
        return;
    }
    buf_t *names = calloc(n, sizeof *names);
    size_t width = strlen("SERIES");
    for (size_t i = 0; i < n; i++) {
        format_series(&names[i], json_object_get(json_array_get(result, i), "metric"));
        if (buf_len(&names[i]) > width)
            width = buf_len(&names[i]);
    }
    printf("%-*s  VALUE\n", (int)width, "SERIES");
    buf_t val = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(result, i);
        json_t *h = json_object_get(s, "histogram");
        buf_clear(&val);
        format_value(&val, h ? h : json_object_get(s, "value"), h != NULL);
        str_t name = buf_str(&names[i]), v = buf_str(&val);
        printf("%-*.*s  %.*s\n", (int)width, STR_FMT(name), STR_FMT(v));
        buf_deinit(&names[i]);
    }
    buf_deinit(&val);
    free(names);
}

static void print_points(json_t *points, bool histogram, bool whole_seconds, buf_t *tmp)
{
    size_t i;
    json_t *p;
    json_array_foreach(points, i, p)
    {
        char ts[32];
        rfc3339_format_ms(ts, sample_ms(p));
        if (whole_seconds)
            strcpy(ts + 19, "Z");
        buf_clear(tmp);
        format_value(tmp, p, histogram);
        str_t v = buf_str(tmp);
        printf("  %s  %.*s\n", ts, STR_FMT(v));
    }
}

static void print_matrix(json_t *result)
{
    size_t n = json_array_size(result);
    if (!n) {
        puts("(no series)");
        return;
    }
    buf_t b = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(result, i);
        json_t *values = json_object_get(s, "values"), *hists = json_object_get(s, "histograms");
        bool whole = true;
        for (int k = 0; k < 2; k++) {
            json_t *p;
            size_t j;
            json_array_foreach(k ? hists : values, j, p) whole = whole && sample_ms(p) % 1000 == 0;
        }
        buf_clear(&b);
        format_series(&b, json_object_get(s, "metric"));
        str_t name = buf_str(&b);
        printf("%s%.*s\n", i ? "\n" : "", STR_FMT(name));
        print_points(values, false, whole, &b);
        print_points(hists, true, whole, &b);
    }
    buf_deinit(&b);
}

static int print_table(json_t *data)
{
    const char *type = json_string_value(json_object_get(data, "resultType"));
    json_t *result = json_object_get(data, "result");
    if (!type) {
        fprintf(stderr, "skillscope query: the answer has no data.resultType\n");
        return CLI_EXIT_ERROR;
    }
    if (!strcmp(type, "vector")) {
        print_vector(result);
    } else if (!strcmp(type, "matrix")) {
        print_matrix(result);
    } else if (!strcmp(type, "scalar") || !strcmp(type, "string")) {
        const char *v = json_string_value(json_array_get(result, 1));
        puts(v ? v : "?");
    } else {
        fprintf(stderr, "skillscope query: unknown result type \"%s\"\n", type);
        return CLI_EXIT_ERROR;
    }
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_ERROR;
}

/* Prints the answer; returns the exit code. */
static int handle_answer(const char *server, int status, buf_t *body, bool json_out)
{
    str_t text = buf_str(body);
    if (json_out && text.len) {
        fwrite(text.ptr, 1, text.len, stdout);
        if (text.ptr[text.len - 1] != '\n')
            putchar('\n');
        fflush(stdout);
    }
    json_error_t je;
    json_t *j = json_loadb(text.ptr, text.len, 0, &je);
    const char *st = json_string_value(json_object_get(j, "status"));
    int code = CLI_EXIT_ERROR;
    if (!st) {
        size_t line = text.len;
        const char *nl = memchr(text.ptr, '\n', text.len);
        if (nl)
            line = (size_t)(nl - text.ptr);
        if (line > 200)
            line = 200;
        if (status != 200)
            fprintf(stderr, "skillscope query: %s answered HTTP %d: %.*s\n", server, status,
                    (int)line, text.ptr);
        else
            fprintf(stderr, "skillscope query: %s did not answer with API JSON: %s\n", server,
                    j ? "no \"status\" field" : je.text);
    } else if (strcmp(st, "success") != 0) {
        const char *type = json_string_value(json_object_get(j, "errorType"));
        const char *msg = json_string_value(json_object_get(j, "error"));
        fprintf(stderr, "skillscope query: %s: %s\n", type ? type : "error",
                msg ? msg : "(no message)");
    } else {
        const char *kinds[] = {"warnings", "infos"};
        for (int k = 0; k < 2; k++) {
            size_t i;
            json_t *w;
            json_array_foreach(json_object_get(j, kinds[k]), i, w)
                fprintf(stderr, "skillscope query: %s: %s\n", k ? "info" : "warning",
                        json_string_value(w) ? json_string_value(w) : "?");
        }
        code = json_out ? CLI_EXIT_OK : print_table(json_object_get(j, "data"));
    }
    json_decref(j);
    return code;
}

int cli_query_main(int argc, char **argv)
{
    const char *expr = NULL, *server = DEFAULT_SERVER, *output = "table";
    const char *at = NULL, *start = NULL, *end = NULL, *step = NULL;
    bool flags_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (flags_done || a[0] != '-' || !a[1]) {
            if (expr) {
                fprintf(stderr,
                        "skillscope query: one expression expected, got \"%s\" too "
                        "(quote the expression)\n",
                        a);
                return CLI_EXIT_USAGE;
            }
            expr = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            flags_done = true;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return CLI_EXIT_OK;
        }
        const char **slot = cli_flag_value(argc, argv, &i, "--time", &v)     ? &at
                            : cli_flag_value(argc, argv, &i, "--start", &v)  ? &start
                            : cli_flag_value(argc, argv, &i, "--end", &v)    ? &end
                            : cli_flag_value(argc, argv, &i, "--step", &v)   ? &step
                            : cli_flag_value(argc, argv, &i, "--server", &v) ? &server
                            : cli_flag_value(argc, argv, &i, "--output", &v) ? &output
                            : cli_flag_value(argc, argv, &i, "-o", &v)       ? &output
                                                                             : NULL;
        if (!slot) {
            fprintf(stderr, "skillscope query: unknown flag %s (see skillscope query --help)\n", a);
            return CLI_EXIT_USAGE;
        }
        if (!v) {
            fprintf(stderr, "skillscope query: %s needs a value\n", a);
            return CLI_EXIT_USAGE;
        }
        *slot = v;
    }
    if (!expr || !*expr) {
        fprintf(stderr, "skillscope query: no expression given (see skillscope query --help)\n");
        return CLI_EXIT_USAGE;
    }
    if (strcmp(output, "table") != 0 && strcmp(output, "json") != 0) {
        fprintf(stderr, "skillscope query: -o must be table or json, not \"%s\"\n", output);
        return CLI_EXIT_USAGE;
    }
    bool range = start || end || step;
    if (range && at) {
        fprintf(stderr, "skillscope query: --time is for instant queries; a range query takes "
                        "--start/--end/--step\n");
        return CLI_EXIT_USAGE;
    }
    cli_url_t u;
    err_t err;
    if (cli_url_parse(server, &u, &err) != 0) {
        fprintf(stderr, "skillscope query: --server: %s\n", err.msg);
        return CLI_EXIT_USAGE;
    }

    int64_t now = clock_now_ms() / 1000 * 1000, t_at = 0, t_start = 0, t_end = now, step_ns = 0;
    if ((at && parse_time(at, now, &t_at, &err) != 0) ||
        (end && parse_time(end, now, &t_end, &err) != 0) ||
        (start && parse_time(start, now, &t_start, &err) != 0)) {
        fprintf(stderr, "skillscope query: %s\n", err.msg);
        return CLI_EXIT_USAGE;
    }
    if (range && !start)
        t_start = t_end - DEFAULT_RANGE_MS;
    if (range && t_end < t_start) {
        fprintf(stderr, "skillscope query: --end is before --start\n");
        return CLI_EXIT_USAGE;
    }
    if (step && (params_prom_duration(str_cstr(step), &step_ns, NULL) != 0 || step_ns <= 0)) {
        fprintf(stderr,
                "skillscope query: invalid step \"%s\": use a positive duration (15s, 1m) or "
                "seconds (15, 0.5)\n",
                step);
        return CLI_EXIT_USAGE;
    }

    buf_t path = BUF_INIT;
    char tmp[FMTNUM_MAX];
    bool first = true;
    buf_printf(&path, "%s/api/v1/%s", u.prefix, range ? "query_range" : "query");
    cli_url_param(&path, &first, "query", str_cstr(expr));
    if (range) {
        cli_url_param(&path, &first, "start", (str_t){tmp, fmt_ts_prom(tmp, t_start)});
        cli_url_param(&path, &first, "end", (str_t){tmp, fmt_ts_prom(tmp, t_end)});
        if (step) {
            cli_url_param(&path, &first, "step", str_cstr(step));
        } else {
            int64_t s = ((t_end - t_start) / AUTO_STEP_POINTS + 999) / 1000;
            snprintf(tmp, sizeof tmp, "%lld", (long long)(s < 1 ? 1 : s));
            cli_url_param(&path, &first, "step", str_cstr(tmp));
        }
    } else if (at) {
        cli_url_param(&path, &first, "time", (str_t){tmp, fmt_ts_prom(tmp, t_at)});
    }

    int status = 0;
    buf_t body = BUF_INIT;
    int rc = cli_http_get(u.host, u.port, buf_cstr(&path), TIMEOUT_MS, &status, &body, &err);
    buf_deinit(&path);
    int code;
    if (rc == ERR_TIMEOUT) {
        fprintf(stderr, "skillscope query: no answer from %s within %d s\n", server,
                TIMEOUT_MS / 1000);
        code = CLI_EXIT_ERROR;
    } else if (rc != 0) {
        fprintf(stderr,
                "skillscope query: cannot reach %s: %s (is the server running? start it with "
                "`skillscope start`, or point --server at it)\n",
                server, err.msg);
        code = CLI_EXIT_ERROR;
    } else {
        code = handle_answer(server, status, &body, !strcmp(output, "json"));
    }
    buf_deinit(&body);
    return code;
}
