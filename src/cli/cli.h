/*
 * cli.h - the `skillscope <command>` front end: the command table, each command's entry point and
 * what several commands share (config loading with --help, endpoint banner, a tiny HTTP client,
 * the pidfile).
 *
 * Adding a command is one file with an `int cli_<name>_main(int argc, char **argv)` (argv[0] is the
 * command name; it returns the process exit code and handles --help itself) plus one row in the
 * table in cli.c.
 */
#ifndef CLI_CLI_H
#define CLI_CLI_H

#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <sys/types.h>

#include "base/buf.h"
#include "base/err.h"
#include "cli/config.h"

enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_ERROR = 1,
    CLI_EXIT_USAGE = 2,       /* bad command line or configuration */
    CLI_EXIT_NOT_RUNNING = 3, /* `status`: no server is running */
};

typedef struct cli_cmd {
    const char *name;
    const char *summary; /* one line for `skillscope help` */
    int (*main)(int argc, char **argv);
} cli_cmd_t;

/* Dispatches argv[1] to its command; called by main(). */
int cli_main(int argc, char **argv);

int cli_serve_main(int argc, char **argv);
int cli_start_main(int argc, char **argv);
int cli_stop_main(int argc, char **argv);
int cli_status_main(int argc, char **argv);
int cli_restart_main(int argc, char **argv);
int cli_version_main(int argc, char **argv);
int cli_help_main(int argc, char **argv);
/* `skillscope ship FILE...`: follows JSON-lines files, pushes to POST /loki/api/v1/push. */
int cli_ship_main(int argc, char **argv);
/* `skillscope tail`: prints GET /api/skillscope/tail as readable lines. */
int cli_tail_main(int argc, char **argv);
/* `skillscope query EXPR`: PromQL through GET /api/v1/query or /api/v1/query_range. */
int cli_query_main(int argc, char **argv);
/* `skillscope logs QUERY`: LogQL through GET /loki/api/v1/query_range (logs.c). */
int cli_logs_main(int argc, char **argv);
/* `skillscope traces QUERY` (TraceQL search table) and `skillscope trace ID` (span tree), through
 * the Tempo API (traces.c). */
int cli_traces_main(int argc, char **argv);
int cli_trace_main(int argc, char **argv);
/* `skillscope import junit FILE...`: JUnit XML test results as traces over OTLP/HTTP. */
int cli_import_main(int argc, char **argv);

/* Loads the server configuration for command cmd from argv/env/file. Returns -1 when the command
 * should go on, otherwise the exit code to return: 0 after printing --help (synopsis and about
 * first, then the flag table), 2 after printing a one-line error to stderr. */
int cli_config(config_t *c, const char *cmd, int argc, char **argv, const char *about);

/* The host a client on this machine connects to for c->listen (127.0.0.1 for 0.0.0.0, ::1 for
 * ::), in URL form (IPv6 in brackets) when url is true. */
const char *cli_client_host(const config_t *c, bool url);
/* Prints the endpoints and the OTEL_* variables to paste into an instrumented program's
 * environment. */
void cli_print_endpoints(FILE *f, const config_t *c);

/* GET http://host:port/path with a deadline. Returns 0 with *status and the body (chunked or not)
 * in body, or ERR_IO / ERR_TIMEOUT with err saying why (e.g. "connection refused"). */
int cli_http_get(const char *host, int port, const char *path, int timeout_ms, int *status,
                 buf_t *body, err_t *err);
/* The same with any method and an optional request body (Content-Length always sent for a
 * method other than GET; content_type may be NULL). The body is borrowed for the call. */
int cli_http_request(const char *host, int port, const char *method, const char *path,
                     const char *content_type, const void *req_body, size_t req_len, int timeout_ms,
                     int *status, buf_t *body, err_t *err);

/* GET path and hand the response body to fn piece by piece as it arrives (de-chunked), for
 * endless responses such as /api/skillscope/tail. timeout_ms bounds connecting and the response
 * headers only; *status is set before fn first runs. Stops when the server ends the response, fn
 * returns false, or *stop (may be NULL; e.g. set by a signal handler) turns true - checked every
 * 200 ms. 0 then; ERR_IO / ERR_TIMEOUT with err saying why. */
int cli_http_stream(const char *host, int port, const char *path, int timeout_ms, int *status,
                    bool (*fn)(void *arg, const char *p, size_t n), void *arg,
                    volatile sig_atomic_t *stop, err_t *err);

/* A --server URL: http://host[:port][/prefix]; the scheme is optional, https is refused. */
typedef struct cli_url {
    char host[256];   /* URL form: an IPv6 address keeps its brackets (cli_http_get takes that) */
    int port;         /* 80 when the URL has none */
    char prefix[512]; /* path prefix without a trailing '/', may be empty */
} cli_url_t;
int cli_url_parse(const char *s, cli_url_t *u, err_t *err);
/* Appends "?key=value" (the first time, then "&key=value") with value percent-encoded. */
void cli_url_param(buf_t *b, bool *first, const char *key, str_t v);

/* <data-dir>/skillscope.pid: written by serve after it owns the data directory, removed on exit. */
void cli_pidfile_path(const config_t *c, char *out, size_t cap);
int cli_pidfile_write(const config_t *c, err_t *err);
void cli_pidfile_remove(const config_t *c);
/* Matches argv[*i] against --name VALUE or --name=VALUE (advancing *i past a separate value);
 * *value is NULL when the value is missing. False when argv[*i] is another flag. */
bool cli_flag_value(int argc, char **argv, int *i, const char *name, const char **value);
/* The HTTP port recorded in the pidfile by the server that wrote it, or 0. */
int cli_pidfile_port(const config_t *c);
/* The pid in the pidfile if that process is alive and is a skillscope server, else 0. */
pid_t cli_pidfile_pid(const config_t *c);

#endif
