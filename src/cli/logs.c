/*
 * logs.c - `skillscope logs 'LogQL'`: runs a LogQL query on a running server and prints the answer.
 *
 *   skillscope logs QUERY [--since 1h] [--end T] [--step D] [--limit N] [--server URL]
 *                         [-o table|json]
 *
 * A log query goes to /loki/api/v1/query_range (start = end - since, end = --end or now, direction
 * backward) and prints one line per entry, newest first: RFC3339 time, the entry's label set, the
 * line. A metric query is sent the same way (step --step, else about 60 points) and prints one
 * block per series: its labels, then "time value" lines. T is Unix seconds or RFC3339. -o json
 * writes the body as received. An API error prints "skillscope logs: <message>" on stderr and
 * exits 1.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "cli/cli.h"

#define DEFAULT_SERVER "http://127.0.0.1:3000"
#define TIMEOUT_MS 130000

static void usage(FILE *f)
{
    fprintf(f,
            "usage: skillscope logs QUERY [--since DURATION] [--limit N] [--server URL] "
            "[-o table|json]\n"
            "  QUERY           LogQL, e.g. '{service_name=\"claude-code\"} |= \"error\"' or\n"
            "                  'sum by (event_name) (count_over_time({service_name=\"claude-code\"}"
            "[5m]))'\n"
            "  --since D       how far back to look (default 1h)\n"
            "  --end T         end of the range, Unix seconds or RFC3339 (default now)\n"
            "  --step D        metric queries: the step (default since/60)\n"
            "  --limit N       max log entries (default 100)\n"
            "  --server URL    the server's HTTP API (default " DEFAULT_SERVER ")\n");
}

static void print_labels(json_t *obj)
{
    const char *k;
    json_t *v;
    int first = 1;
    putchar('{');
    json_object_foreach(obj, k, v)
    {
        printf("%s%s=\"", first ? "" : ", ", k);
        for (const char *c = json_string_value(v) ? json_string_value(v) : ""; *c; c++) {
            if (*c == '"' || *c == '\\')
                putchar('\\');
            if (*c == '\n')
                fputs("\\n", stdout);
            else
                putchar(*c);
        }
        putchar('"');
        first = 0;
    }
    putchar('}');
}

static void print_time_ns(int64_t ns)
{
    char t[64];
    rfc3339_format_ms(t, ns / 1000000);
    fputs(t, stdout);
}

typedef struct row {
    int64_t ts;
    json_t *stream, *line;
} row_t;

static int cmp_row(const void *a, const void *b)
{
    const row_t *x = a, *y = b;
    return x->ts > y->ts ? -1 : x->ts < y->ts; /* newest first */
}

static int print_answer(json_t *data)
{
    const char *type = json_string_value(json_object_get(data, "resultType"));
    json_t *res = json_object_get(data, "result");
    size_t i;
    json_t *s;
    if (type && strcmp(type, "streams") == 0) {
        /* the API groups entries by label set; a terminal reader wants one timeline */
        size_t n = 0, cap = 64;
        row_t *rows = malloc(cap * sizeof *rows);
        if (!rows)
            abort();
        json_array_foreach(res, i, s)
        {
            size_t k;
            json_t *e;
            json_array_foreach(json_object_get(s, "values"), k, e)
            {
                if (n == cap) {
                    cap *= 2;
                    rows = realloc(rows, cap * sizeof *rows);
                    if (!rows)
                        abort();
                }
                const char *ts = json_string_value(json_array_get(e, 0));
                rows[n++] = (row_t){ts ? strtoll(ts, NULL, 10) : 0, json_object_get(s, "stream"),
                                    json_array_get(e, 1)};
            }
        }
        qsort(rows, n, sizeof *rows, cmp_row);
        for (size_t k = 0; k < n; k++) {
            print_time_ns(rows[k].ts);
            putchar(' ');
            print_labels(rows[k].stream);
            const char *line = json_string_value(rows[k].line);
            printf(" %s\n", line ? line : "");
        }
        free(rows);
        return 0;
    }
    if (type && strcmp(type, "scalar") == 0) {
        printf("%s\n", json_string_value(json_array_get(res, 1)));
        return 0;
    }
    json_array_foreach(res, i, s)
    {
        print_labels(json_object_get(s, "metric"));
        putchar('\n');
        json_t *vals = json_object_get(s, "values");
        json_t *one = json_object_get(s, "value");
        size_t k;
        json_t *p;
        if (one) {
            vals = json_array();
            json_array_append(vals, one);
        }
        json_array_foreach(vals, k, p)
        {
            printf("  ");
            print_time_ns((int64_t)(json_number_value(json_array_get(p, 0)) * 1e9));
            printf(" %s\n", json_string_value(json_array_get(p, 1)));
        }
        if (one)
            json_decref(vals);
    }
    return 0;
}

int cli_logs_main(int argc, char **argv)
{
    const char *query = NULL, *server = DEFAULT_SERVER, *since = "1h", *limit = "100",
               *output = "table", *end = NULL, *step_arg = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        const char **slot = cli_flag_value(argc, argv, &i, "--since", &v)    ? &since
                            : cli_flag_value(argc, argv, &i, "--limit", &v)  ? &limit
                            : cli_flag_value(argc, argv, &i, "--server", &v) ? &server
                            : cli_flag_value(argc, argv, &i, "--end", &v)    ? &end
                            : cli_flag_value(argc, argv, &i, "--step", &v)   ? &step_arg
                            : cli_flag_value(argc, argv, &i, "-o", &v)       ? &output
                                                                             : NULL;
        if (slot) {
            *slot = v;
            continue;
        }
        if (argv[i][0] == '-' || query) {
            fprintf(stderr, "skillscope logs: unexpected argument %s\n", argv[i]);
            usage(stderr);
            return 2;
        }
        query = argv[i];
    }
    if (!query) {
        usage(stderr);
        return 2;
    }
    err_t err = {0};
    int64_t since_ms;
    if (duration_parse_ms(str_cstr(since), &since_ms, &err) != 0 || since_ms <= 0) {
        fprintf(stderr, "skillscope logs: --since: %s\n", err.msg[0] ? err.msg : "must be > 0");
        return 2;
    }
    cli_url_t u;
    if (cli_url_parse(server, &u, &err) != 0) {
        fprintf(stderr, "skillscope logs: --server: %s\n", err.msg);
        return 2;
    }
    int64_t now_s = clock_now_ms() / 1000;
    if (end) {
        char *e;
        long long v = strtoll(end, &e, 10);
        int64_t ns;
        if (*e == 0 && e != end) {
            now_s = v;
        } else if (rfc3339_parse_ns(str_cstr(end), &ns, &err) == 0) {
            now_s = ns / 1000000000LL;
        } else {
            fprintf(stderr, "skillscope logs: --end: not Unix seconds or RFC3339: %s\n", end);
            return 2;
        }
    }
    int64_t start_s = now_s - since_ms / 1000, step = since_ms / 1000 / 60;
    if (step_arg) {
        int64_t step_ms;
        if (duration_parse_ms(str_cstr(step_arg), &step_ms, &err) != 0 || step_ms < 1000) {
            fprintf(stderr, "skillscope logs: --step: %s\n",
                    err.msg[0] ? err.msg : "must be at least 1s");
            return 2;
        }
        step = step_ms / 1000;
    }
    char tmp[64];
    buf_t path = BUF_INIT;
    buf_printf(&path, "%s/loki/api/v1/query_range", u.prefix);
    bool first = true;
    cli_url_param(&path, &first, "query", str_cstr(query));
    snprintf(tmp, sizeof tmp, "%lld", (long long)start_s);
    cli_url_param(&path, &first, "start", str_cstr(tmp));
    snprintf(tmp, sizeof tmp, "%lld", (long long)now_s + 1);
    cli_url_param(&path, &first, "end", str_cstr(tmp));
    snprintf(tmp, sizeof tmp, "%lld", (long long)(step > 0 ? step : 1));
    cli_url_param(&path, &first, "step", str_cstr(tmp));
    cli_url_param(&path, &first, "limit", str_cstr(limit));
    buf_t body = BUF_INIT;
    int status = 0;
    int rc = cli_http_get(u.host, u.port, buf_cstr(&path), TIMEOUT_MS, &status, &body, &err);
    buf_deinit(&path);
    if (rc != 0) {
        fprintf(stderr, "skillscope logs: %s: %s\n", server, err.msg);
        buf_deinit(&body);
        return 1;
    }
    if (strcmp(output, "json") == 0)
        fwrite(body.pos, 1, buf_len(&body), stdout);
    if (status != 200) {
        fprintf(stderr, "skillscope logs: %.*s\n", (int)buf_len(&body), (const char *)body.pos);
        buf_deinit(&body);
        return 1;
    }
    rc = 0;
    if (strcmp(output, "json") != 0) {
        json_error_t je;
        json_t *j = json_loadb((const char *)body.pos, buf_len(&body), 0, &je);
        if (!j) {
            fprintf(stderr, "skillscope logs: bad JSON from the server: %s\n", je.text);
            rc = 1;
        } else {
            rc = print_answer(json_object_get(j, "data"));
            json_decref(j);
        }
    }
    buf_deinit(&body);
    return rc;
}
