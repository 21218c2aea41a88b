/*
 * cli.c - command dispatch, `help`, `version`, and helpers several commands share.
 *
 * The command table below is the whole of dispatch: `skillscope NAME args...` calls the row's
 * main with argv shifted so argv[0] is NAME. `skillscope help NAME` is `skillscope NAME --help`.
 *
 * cli_http_request (and cli_http_get) is a deliberately small blocking HTTP/1.1 client (one
 * request, Connection: close, Content-Length / chunked / read-to-close bodies, a deadline on every
 * socket operation) for the commands that talk to a running server: start's readiness wait, status,
 * dump, query, import. cli_url_parse splits the --server URL those commands take into host, port
 * and path prefix.
 */
#include "cli/cli.h"

#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <yaml.h>
#include <zlib.h>
#include <zstd.h>

#include "base/clock.h"
#include "base/version.h"
#include "cli/dump.h"
#include "net/loop.h"

static const cli_cmd_t commands[] = {
    {"serve", "run the server in the foreground", cli_serve_main},
    {"start", "run the server in the background (pidfile and log in the data dir)", cli_start_main},
    {"stop", "stop the background server", cli_stop_main},
    {"status", "show whether the server runs, what it received and stores", cli_status_main},
    {"restart", "stop, then start", cli_restart_main},
    {"dump", "print stored samples, log entries and spans as JSON lines", cli_dump_main},
    {"query", "run a PromQL query (instant or range) against a running server", cli_query_main},
    {"logs", "run a LogQL query (log lines or metrics) against a running server", cli_logs_main},
    {"traces", "search traces with TraceQL on a running server (table of traces)", cli_traces_main},
    {"trace", "show one trace as a span tree with a timeline", cli_trace_main},
    {"import", "send test results (JUnit XML) to a running server as traces", cli_import_main},
    {"ship", "follow JSON log files and push their lines to a running server", cli_ship_main},
    {"tail", "print traces, logs and metrics as a running server receives them", cli_tail_main},
    {"version", "print the version and build information", cli_version_main},
    {"help", "show this help, or a command's: skillscope help COMMAND", cli_help_main},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const cli_cmd_t *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void usage(FILE *f)
{
    fputs("Skillscope: OpenTelemetry traces, metrics and logs for AI skills and agents,\n"
          "with Prometheus, Loki and Tempo APIs, in one binary.\n\n"
          "Usage: skillscope COMMAND [flags]\n\nCommands:\n",
          f);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fputs("\nRun 'skillscope COMMAND --help' for the flags of a command.\n", f);
}

int cli_main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "-v") == 0)
        name = "version";
    const cli_cmd_t *cmd = find_command(name);
    if (!cmd) {
        fprintf(stderr, "skillscope: unknown command \"%s\" (see skillscope help)\n", name);
        return CLI_EXIT_USAGE;
    }
    char **sub = argv + 1;
    sub[0] = (char *)cmd->name;
    return cmd->main(argc - 1, sub);
}

int cli_help_main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (argc > 2) {
        fprintf(stderr, "skillscope help: expected at most one command name\n");
        return CLI_EXIT_USAGE;
    }
    const cli_cmd_t *cmd = find_command(argv[1]);
    if (!cmd) {
        fprintf(stderr, "skillscope help: unknown command \"%s\" (see skillscope help)\n", argv[1]);
        return CLI_EXIT_USAGE;
    }
    char *sub[] = {(char *)cmd->name, "--help", NULL};
    return cmd->main(2, sub);
}

int cli_version_main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            puts("Usage: skillscope version\n\nPrints the version and what the binary was built "
                 "with.");
            return CLI_EXIT_OK;
        }
        fprintf(stderr, "skillscope version: unknown flag %s (see skillscope version --help)\n",
                argv[i]);
        return CLI_EXIT_USAGE;
    }
    printf("skillscope %s\n", skillscope_version);
#if defined(__clang__)
    printf("  compiler:  clang %s\n", __clang_version__);
#elif defined(__GNUC__)
    printf("  compiler:  gcc %s\n", __VERSION__);
#endif
    printf("  libraries: libevent %s, zlib %s, zstd %s, libyaml %s, jansson %s\n",
           loop_backend_version(), zlibVersion(), ZSTD_versionString(), yaml_get_version_string(),
           JANSSON_VERSION);
    printf("  platform:  linux, %zu-bit\n", sizeof(void *) * 8);
    return CLI_EXIT_OK;
}

int cli_config(config_t *c, const char *cmd, int argc, char **argv, const char *about)
{
    err_t err;
    int rc = config_load(c, cmd, argc, argv, &err);
    if (rc == CONFIG_HELP) {
        printf("Usage: skillscope %s [flags]\n\n%s\n\nFlags (each also from the environment, or "
               "from the YAML file given\nwith --config; flags win over the environment, which "
               "wins over the file):\n",
               cmd, about);
        config_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (rc != 0) {
        fprintf(stderr, "skillscope %s: %s\n", cmd, err.msg);
        return CLI_EXIT_USAGE;
    }
    return -1;
}

const char *cli_client_host(const config_t *c, bool url)
{
    const char *h = c->listen;
    if (strcmp(h, "0.0.0.0") == 0 || strcmp(h, "") == 0)
        return "127.0.0.1";
    if (strcmp(h, "::") == 0 || strcmp(h, "[::]") == 0)
        return url ? "[::1]" : "::1";
    if (url && strchr(h, ':') && h[0] != '[') {
        static char buf[300];
        snprintf(buf, sizeof buf, "[%s]", h);
        return buf;
    }
    return h;
}

void cli_print_endpoints(FILE *f, const config_t *c)
{
    const char *host = cli_client_host(c, true);
    fprintf(f, "  UI / API    http://%s:%d\n", host, c->http_port);
    if (c->otlp_http_port)
        fprintf(f, "  OTLP/HTTP   http://%s:%d\n", host, c->otlp_http_port);
    if (c->otlp_grpc_port)
        fprintf(f, "  OTLP/gRPC   http://%s:%d\n", host, c->otlp_grpc_port);
    fprintf(f, "  data        %s\n", c->data_dir);
    if (strcmp(c->listen, "0.0.0.0") == 0 || strcmp(c->listen, "::") == 0)
        fprintf(f, "  (listening on every interface: %s)\n", c->listen);
    fprintf(f, "\nPoint OpenTelemetry SDKs (and Claude Code) here with:\n");
    int port = c->otlp_http_port ? c->otlp_http_port : c->http_port;
    fprintf(f, "  export OTEL_EXPORTER_OTLP_ENDPOINT=http://%s:%d\n", host, port);
    fputs("  export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf\n"
          "  export OTEL_METRICS_EXPORTER=otlp\n"
          "  export OTEL_LOGS_EXPORTER=otlp\n"
          "  export OTEL_TRACES_EXPORTER=otlp\n"
          "  export CLAUDE_CODE_ENABLE_TELEMETRY=1\n",
          f);
    if (c->otlp_grpc_port)
        fprintf(f,
                "or, for OTLP/gRPC:\n"
                "  export OTEL_EXPORTER_OTLP_ENDPOINT=http://%s:%d\n"
                "  export OTEL_EXPORTER_OTLP_PROTOCOL=grpc\n",
                host, c->otlp_grpc_port);
}

/* ---- tiny HTTP client ---- */

static int wait_fd(int fd, short events, int64_t deadline_ms, err_t *err)
{
    for (;;) {
        int64_t left = deadline_ms - clock_now_ms();
        if (left <= 0)
            return err_set(err, ERR_TIMEOUT, "timed out");
        struct pollfd p = {fd, events, 0};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return err_set(err, ERR_IO, "%s", strerror(errno));
    }
}

static int dial(const char *host, int port, int64_t deadline_ms, err_t *err)
{
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    char h[300];
    snprintf(h, sizeof h, "%s", host);
    if (h[0] == '[') { /* URL form of an IPv6 address */
        memmove(h, h + 1, strlen(h));
        h[strcspn(h, "]")] = '\0';
    }
    int gai = getaddrinfo(h, ps, &hints, &ai);
    if (gai != 0)
        return err_set(err, ERR_IO, "%s: %s", host, gai_strerror(gai));
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(ai);
        return err_set(err, ERR_IO, "socket: %s", strerror(errno));
    }
    int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    if (rc != 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        return err_set(err, ERR_IO, "%s", strerror(e));
    }
    if (rc != 0) {
        if ((rc = wait_fd(fd, POLLOUT, deadline_ms, err)) != 0) {
            close(fd);
            return rc;
        }
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        if (soerr) {
            close(fd);
            return err_set(err, ERR_IO, "%s", strerror(soerr));
        }
    }
    return fd;
}

/* Decodes a chunked body in place; false when malformed. */
static bool dechunk(buf_t *b)
{
    const char *p = (const char *)b->pos, *end = (const char *)b->last;
    uint8_t *out = b->pos;
    for (;;) {
        char *e;
        unsigned long n = strtoul(p, &e, 16);
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (e == p || !nl)
            return false;
        p = nl + 1;
        if (n == 0)
            break;
        if ((size_t)(end - p) < n + 2)
            return false;
        memmove(out, p, n);
        out += n;
        p += n + 2;
    }
    b->last = out;
    return true;
}

int cli_http_get(const char *host, int port, const char *path, int timeout_ms, int *status,
                 buf_t *body, err_t *err)
{
    return cli_http_request(host, port, "GET", path, NULL, NULL, 0, timeout_ms, status, body, err);
}

int cli_http_request(const char *host, int port, const char *method, const char *path,
                     const char *content_type, const void *req_body, size_t req_len, int timeout_ms,
                     int *status, buf_t *body, err_t *err)
{
    int64_t deadline = clock_now_ms() + timeout_ms;
    int fd = dial(host, port, deadline, err);
    if (fd < 0)
        return fd;
    buf_t req = BUF_INIT; /* the path may be long: dump selectors, query expressions */
    buf_printf(&req,
               "%s %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: skillscope-cli\r\n"
               "Accept: application/json\r\nConnection: close\r\n",
               method, path, host, port);
    if (content_type)
        buf_printf(&req, "Content-Type: %s\r\n", content_type);
    if (req_body || strcmp(method, "GET") != 0)
        buf_printf(&req, "Content-Length: %zu\r\n", req_len);
    buf_printf(&req, "\r\n");
    if (req_len)
        buf_append(&req, req_body, req_len);
    int rc = 0;
    for (size_t off = 0; off < buf_len(&req) && rc == 0;) {
        if ((rc = wait_fd(fd, POLLOUT, deadline, err)) != 0)
            break;
        ssize_t w = send(fd, req.pos + off, buf_len(&req) - off, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            rc = err_set(err, ERR_IO, "send: %s", strerror(errno));
        else if (w > 0)
            off += (size_t)w;
    }
    buf_deinit(&req);
    buf_t in = BUF_INIT;
    while (rc == 0) {
        if ((rc = wait_fd(fd, POLLIN, deadline, err)) != 0)
            break;
        uint8_t *p = buf_reserve(&in, 16384);
        ssize_t r = recv(fd, p, 16384, 0);
        if (r == 0)
            break;
        if (r < 0) {
            if (errno != EAGAIN && errno != EINTR)
                rc = err_set(err, ERR_IO, "recv: %s", strerror(errno));
            continue;
        }
        in.last += r;
    }
    close(fd);
    if (rc != 0) {
        buf_deinit(&in);
        return rc;
    }
    const char *all = buf_cstr(&in);
    const char *hend = strstr(all, "\r\n\r\n");
    if (sscanf(all, "HTTP/1.%*d %d", status) != 1 || !hend) {
        buf_deinit(&in);
        return err_set(err, ERR_IO, "malformed HTTP response");
    }
    size_t hlen = (size_t)(hend - all) + 4;
    bool chunked = false;
    for (const char *h = strstr(all, "\r\n"); h && h < hend; h = strstr(h + 2, "\r\n")) {
        if (strncasecmp(h + 2, "Transfer-Encoding:", 18) == 0 && strstr(h + 20, "chunked") &&
            strstr(h + 20, "chunked") < hend)
            chunked = true;
    }
    buf_append(body, in.pos + hlen, buf_len(&in) - hlen);
    buf_deinit(&in);
    if (chunked) {
        buf_cstr(body);
        if (!dechunk(body))
            return err_set(err, ERR_IO, "malformed chunked body");
    }
    return 0;
}

int cli_http_stream(const char *host, int port, const char *path, int timeout_ms, int *status,
                    bool (*fn)(void *arg, const char *p, size_t n), void *arg,
                    volatile sig_atomic_t *stop, err_t *err)
{
    int64_t deadline = clock_now_ms() + timeout_ms;
    int fd = dial(host, port, deadline, err);
    if (fd < 0)
        return fd;
    buf_t in = BUF_INIT;
    buf_printf(&in,
               "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: skillscope-cli\r\n"
               "Accept: application/x-ndjson\r\nConnection: close\r\n\r\n",
               path, host, port);
    int rc = 0;
    for (size_t off = 0; off < buf_len(&in) && rc == 0;) {
        if ((rc = wait_fd(fd, POLLOUT, deadline, err)) != 0)
            break;
        ssize_t w = send(fd, in.pos + off, buf_len(&in) - off, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            rc = err_set(err, ERR_IO, "send: %s", strerror(errno));
        else if (w > 0)
            off += (size_t)w;
    }
    buf_clear(&in);
    bool headers = false, chunked = false, done = false;
    enum { CH_SIZE, CH_DATA, CH_CRLF } st = CH_SIZE;
    uint64_t left = 0;
    while (rc == 0 && !done && !(stop && *stop)) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int pr = poll(&pfd, 1, 200);
        if (pr < 0 && errno != EINTR) {
            rc = err_set(err, ERR_IO, "poll: %s", strerror(errno));
            break;
        }
        if (pr <= 0) {
            if (!headers && clock_now_ms() > deadline)
                rc = err_set(err, ERR_TIMEOUT, "no response from %s:%d", host, port);
            continue;
        }
        uint8_t *p = buf_reserve(&in, 16384);
        ssize_t r = recv(fd, p, 16384, 0);
        if (r < 0) {
            if (errno != EAGAIN && errno != EINTR)
                rc = err_set(err, ERR_IO, "recv: %s", strerror(errno));
            continue;
        }
        if (r == 0) {
            if (!headers)
                rc = err_set(err, ERR_IO, "connection closed before the response");
            break;
        }
        in.last += r;
        if (!headers) {
            const char *all = buf_cstr(&in);
            const char *hend = strstr(all, "\r\n\r\n");
            if (!hend) {
                if (buf_len(&in) > (64u << 10))
                    rc = err_set(err, ERR_IO, "malformed HTTP response");
                continue;
            }
            if (sscanf(all, "HTTP/1.%*d %d", status) != 1) {
                rc = err_set(err, ERR_IO, "malformed HTTP response");
                break;
            }
            for (const char *h = strstr(all, "\r\n"); h && h < hend; h = strstr(h + 2, "\r\n")) {
                const char *ch = strstr(h + 2, "chunked"), *eol = strstr(h + 2, "\r\n");
                if (strncasecmp(h + 2, "Transfer-Encoding:", 18) == 0 && ch && ch < eol)
                    chunked = true;
            }
            in.pos += (size_t)(hend - all) + 4;
            headers = true;
        }
        /* hand over what the buffer holds, de-chunking as we go */
        while (buf_len(&in) && !done) {
            if (!chunked) {
                if (!fn(arg, (const char *)in.pos, buf_len(&in)))
                    done = true;
                buf_clear(&in);
                break;
            }
            if (st == CH_SIZE) {
                const char *q = memchr(in.pos, '\n', buf_len(&in));
                if (!q)
                    break;
                left = strtoull((const char *)in.pos, NULL, 16);
                in.pos = (uint8_t *)q + 1;
                st = left ? CH_DATA : CH_CRLF;
                if (!left)
                    done = true; /* last chunk */
            } else if (st == CH_DATA) {
                size_t n = buf_len(&in) < left ? buf_len(&in) : (size_t)left;
                if (!fn(arg, (const char *)in.pos, n))
                    done = true;
                in.pos += n;
                left -= n;
                if (!left)
                    st = CH_CRLF;
            } else {
                const char *q = memchr(in.pos, '\n', buf_len(&in));
                if (!q)
                    break;
                in.pos = (uint8_t *)q + 1;
                st = CH_SIZE;
            }
        }
        if (!buf_len(&in))
            buf_clear(&in);
    }
    close(fd);
    buf_deinit(&in);
    return rc;
}

int cli_url_parse(const char *s, cli_url_t *u, err_t *err)
{
    const char *p = s;
    if (!strncmp(p, "http://", 7))
        p += 7;
    else if (strstr(p, "://"))
        return err_set(err, ERR_INVAL, "unsupported URL \"%s\": only http:// is supported", s);
    size_t hostport = strcspn(p, "/");
    const char *colon = NULL, *hend = p + hostport;
    if (*p == '[') {
        const char *rb = memchr(p, ']', hostport);
        if (!rb)
            return err_set(err, ERR_INVAL, "bad URL \"%s\"", s);
        colon = rb + 1 < hend && rb[1] == ':' ? rb + 1 : NULL;
        hend = rb + 1; /* the host keeps its brackets (URL form) */
    } else if ((colon = memchr(p, ':', hostport)) != NULL) {
        hend = colon;
    }
    size_t hl = (size_t)(hend - p);
    if (!hl || hl >= sizeof u->host)
        return err_set(err, ERR_INVAL, "bad host in URL \"%s\"", s);
    memcpy(u->host, p, hl);
    u->host[hl] = '\0';
    u->port = 80;
    if (colon) {
        char *e;
        long port = strtol(colon + 1, &e, 10);
        if (e == colon + 1 || e != p + hostport || port <= 0 || port > 65535)
            return err_set(err, ERR_INVAL, "bad port in URL \"%s\"", s);
        u->port = (int)port;
    }
    const char *path = p + hostport;
    size_t n = strlen(path);
    while (n && path[n - 1] == '/')
        n--;
    if (n >= sizeof u->prefix)
        return err_set(err, ERR_INVAL, "URL path too long in \"%s\"", s);
    memcpy(u->prefix, path, n);
    u->prefix[n] = '\0';
    return 0;
}

void cli_url_param(buf_t *b, bool *first, const char *key, str_t v)
{
    static const char hex[] = "0123456789ABCDEF";
    buf_putc(b, *first ? '?' : '&');
    *first = false;
    buf_puts(b, key);
    buf_putc(b, '=');
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.ptr[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            buf_putc(b, (char)c);
        } else {
            buf_putc(b, '%');
            buf_putc(b, hex[c >> 4]);
            buf_putc(b, hex[c & 15]);
        }
    }
}

bool cli_flag_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return false;
    if (a[n] == '=') {
        *value = a + n + 1;
        return true;
    }
    if (a[n] != '\0')
        return false;
    *value = *i + 1 < argc ? argv[++*i] : NULL;
    return true;
}
