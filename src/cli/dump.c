/*
 * dump.c - `skillscope dump`: stored samples, log entries and spans as JSON lines, for debugging
 * the ingest -> store -> read round trip.
 *
 *   skillscope dump [--server URL | --data-dir DIR] [--metrics SELECTOR] [--logs SELECTOR]
 *                   [--traces] [--start T] [--end T]
 *
 * A running server holds the data directory's lock, so by default dump asks the server
 * (GET <URL>/api/skillscope/dump through cli_http_get). With --data-dir it opens the store itself,
 * which works only while no server owns the directory. Both paths print the lines written by
 * api_dump_write, so the output is the same either way. Without any of --metrics/--logs/--traces
 * everything is dumped. Times: Unix seconds, RFC3339, "now", or a duration meaning that long ago
 * ("1h"); the default is all time.
 */
#include "cli/dump.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/fmtnum.h"
#include "cli/cli.h"
#include "query/api.h"
#include "query/params.h"
#include "store/db.h"

#define DEFAULT_SERVER "http://127.0.0.1:3000"
#define RECV_TIMEOUT_S 300

static void usage(FILE *f)
{
    fputs("usage: skillscope dump [--server URL | --data-dir DIR] [--metrics SELECTOR]\n"
          "                       [--logs SELECTOR] [--traces] [--start T] [--end T]\n"
          "\n"
          "Prints stored items as JSON lines (one sample, log entry or span per line).\n"
          "  --server URL      ask a running server (default " DEFAULT_SERVER ")\n"
          "  --data-dir DIR    read DIR directly (only while no server holds it)\n"
          "  --metrics SEL     samples of series matching SEL, e.g. 'up{job=\"x\"}'\n"
          "  --logs SEL        log entries of streams matching SEL, e.g. '{service_name=\"x\"}'\n"
          "                    ('{}' = every stream)\n"
          "  --traces          spans\n"
          "  --start T, --end T  Unix seconds, RFC3339, 'now' or a duration ago ('1h');\n"
          "                    default: all time\n"
          "With none of --metrics/--logs/--traces, everything is printed.\n",
          f);
}

/* T as ms: Unix seconds / RFC3339 (Prometheus syntax), "now", or a duration ago. */
static int parse_when(const char *s, int64_t *ms, err_t *err)
{
    str_t v = str_cstr(s);
    if (str_eq_cstr(v, "now")) {
        *ms = clock_now_ms();
        return 0;
    }
    if (params_prom_time(v, 0, ms, NULL) == 0 && v.len)
        return 0;
    int64_t ago;
    if (v.len && duration_parse_ms(v, &ago, NULL) == 0) {
        *ms = clock_now_ms() - ago;
        return 0;
    }
    return err_set(err, ERR_PARSE,
                   "invalid time \"%s\": use Unix seconds, RFC3339, 'now' or a duration like 1h",
                   s);
}

static void write_stdout(void *arg, buf_t *b)
{
    (void)arg;
    if (buf_len(b))
        fwrite(b->pos, 1, buf_len(b), stdout);
    buf_clear(b);
}

static int dump_local(const char *dir, const api_dump_opts_t *o)
{
    db_opts_t opts;
    db_opts_default(&opts);
    opts.dir = dir;
    opts.read_only = true;
    db_t *db;
    err_t err = {0};
    int rc = db_open(&opts, &db, &err);
    if (rc == ERR_EXISTS) {
        fprintf(stderr,
                "skillscope dump: %s is in use by a running server; ask it instead with --server "
                "(default " DEFAULT_SERVER ")\n",
                dir);
        return 1;
    }
    if (rc != 0) {
        fprintf(stderr, "skillscope dump: cannot open %s: %s\n", dir,
                err.msg[0] ? err.msg : err_str(rc));
        return 1;
    }
    buf_t out = BUF_INIT;
    rc = api_dump_write(db, o, &out, write_stdout, NULL, &err);
    write_stdout(NULL, &out);
    buf_deinit(&out);
    db_close(db);
    if (rc != 0) {
        fprintf(stderr, "skillscope dump: %s\n", err.msg[0] ? err.msg : err_str(rc));
        return 1;
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

static int dump_remote(const char *server, const api_dump_opts_t *o)
{
    cli_url_t u;
    err_t err = {0};
    if (cli_url_parse(server, &u, &err) != 0) {
        fprintf(stderr, "skillscope dump: %s\n", err.msg);
        return 2;
    }
    buf_t path = BUF_INIT;
    buf_printf(&path, "%s/api/skillscope/dump", u.prefix);
    bool first = true;
    char tmp[FMTNUM_MAX];
    if (o->metrics.ptr)
        cli_url_param(&path, &first, "metrics", o->metrics);
    if (o->logs.ptr)
        cli_url_param(&path, &first, "logs", o->logs);
    if (o->traces)
        cli_url_param(&path, &first, "traces", STR("1"));
    if (o->start_ms != PARAMS_PROM_MIN_TIME_MS) {
        size_t n = fmt_ts_prom(tmp, o->start_ms);
        cli_url_param(&path, &first, "start", (str_t){tmp, n});
    }
    if (o->end_ms != PARAMS_PROM_MAX_TIME_MS) {
        size_t n = fmt_ts_prom(tmp, o->end_ms);
        cli_url_param(&path, &first, "end", (str_t){tmp, n});
    }
    int status = 0;
    buf_t body = BUF_INIT;
    int rc =
        cli_http_get(u.host, u.port, buf_cstr(&path), RECV_TIMEOUT_S * 1000, &status, &body, &err);
    buf_deinit(&path);
    str_t text = buf_str(&body);
    int exit_code = 0;
    if (rc != 0) {
        fprintf(stderr, "skillscope dump: cannot get %s: %s%s\n", server, err.msg,
                rc == ERR_TIMEOUT ? "" : " (is `skillscope serve` running?)");
        exit_code = 1;
    } else if (status != 200) {
        fprintf(stderr, "skillscope dump: %s answered %d: %.*s%s", server, status, STR_FMT(text),
                text.len && text.ptr[text.len - 1] == '\n' ? "" : "\n");
        exit_code = 1;
    } else {
        fwrite(text.ptr, 1, text.len, stdout);
        exit_code = fflush(stdout) == 0 ? 0 : 1;
    }
    buf_deinit(&body);
    return exit_code;
}

int cli_dump_main(int argc, char **argv)
{
    const char *server = NULL, *dir = NULL, *start = NULL, *end = NULL;
    const char *metrics = NULL, *logs = NULL;
    bool traces = false;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--traces")) {
            traces = true;
            continue;
        }
        const char **slot = cli_flag_value(argc, argv, &i, "--server", &v)     ? &server
                            : cli_flag_value(argc, argv, &i, "--data-dir", &v) ? &dir
                            : cli_flag_value(argc, argv, &i, "--metrics", &v)  ? &metrics
                            : cli_flag_value(argc, argv, &i, "--logs", &v)     ? &logs
                            : cli_flag_value(argc, argv, &i, "--start", &v)    ? &start
                            : cli_flag_value(argc, argv, &i, "--end", &v)      ? &end
                                                                               : NULL;
        if (!slot) {
            fprintf(stderr, "skillscope dump: unknown argument \"%s\"\n", a);
            usage(stderr);
            return 2;
        }
        if (!v) {
            fprintf(stderr, "skillscope dump: %s needs a value\n", a);
            return 2;
        }
        *slot = v;
    }
    if (server && dir) {
        fprintf(stderr, "skillscope dump: --server and --data-dir exclude each other\n");
        return 2;
    }
    api_dump_opts_t o = {0};
    o.start_ms = PARAMS_PROM_MIN_TIME_MS;
    o.end_ms = PARAMS_PROM_MAX_TIME_MS;
    err_t err;
    if ((start && parse_when(start, &o.start_ms, &err) != 0) ||
        (end && parse_when(end, &o.end_ms, &err) != 0)) {
        fprintf(stderr, "skillscope dump: %s\n", err.msg);
        return 2;
    }
    if (o.end_ms < o.start_ms) {
        fprintf(stderr, "skillscope dump: --end is before --start\n");
        return 2;
    }
    if (!metrics && !logs && !traces) {
        metrics = "{__name__=~\".+\"}";
        logs = "{}";
        traces = true;
    }
    o.metrics = metrics ? str_cstr(metrics) : STR_NULL;
    o.logs = logs ? str_cstr(logs) : STR_NULL;
    o.traces = traces;
    if (dir)
        return dump_local(dir, &o);
    return dump_remote(server ? server : DEFAULT_SERVER, &o);
}
