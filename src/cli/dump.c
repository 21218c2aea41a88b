/*
 * dump.c - `skillscope dump`: stored samples, log entries and spans as JSON lines, for debugging
 * the ingest -> store -> read round trip.
 *
 *   skillscope dump [--server URL | --data-dir DIR] [--metrics SELECTOR] [--logs SELECTOR]
 *                   [--traces] [--start T] [--end T]
 *
 * A running server holds the data directory's lock, so by default dump asks the server
 * (GET <URL>/api/skillscope/dump, a small HTTP/1.1 client over a socket: Connection: close,
 * Content-Length, chunked or read-to-close bodies). With --data-dir it opens the store itself,
 * which works only while no server owns the directory. Both paths print the lines written by
 * api_dump_write, so the output is the same either way. Without any of --metrics/--logs/--traces
 * everything is dumped. Times: Unix seconds, RFC3339, "now", or a duration meaning that long ago
 * ("1h"); the default is all time.
 */
#include "cli/dump.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/fmtnum.h"
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

/* ---- the HTTP client ---- */

typedef struct url {
    char host[256];
    char port[8];
    char prefix[512]; /* path prefix without a trailing '/', may be empty */
} url_t;

static int parse_url(const char *s, url_t *u, err_t *err)
{
    const char *p = s;
    if (!strncmp(p, "http://", 7))
        p += 7;
    else if (strstr(p, "://"))
        return err_set(err, ERR_INVAL, "unsupported URL \"%s\": only http:// is supported", s);
    const char *slash = strchr(p, '/');
    size_t hostport = slash ? (size_t)(slash - p) : strlen(p);
    const char *host = p, *hend = p + hostport, *colon = NULL;
    if (*host == '[') {
        const char *rb = memchr(host, ']', hostport);
        if (!rb)
            return err_set(err, ERR_INVAL, "bad URL \"%s\"", s);
        colon = rb + 1 < hend && rb[1] == ':' ? rb + 1 : NULL;
        host++;
        hend = rb;
    } else {
        colon = memchr(host, ':', hostport);
        if (colon)
            hend = colon;
    }
    size_t hl = (size_t)(hend - host);
    if (!hl || hl >= sizeof u->host)
        return err_set(err, ERR_INVAL, "bad host in URL \"%s\"", s);
    memcpy(u->host, host, hl);
    u->host[hl] = '\0';
    const char *pend = p + hostport;
    size_t pl = colon ? (size_t)(pend - colon - 1) : 0;
    if (colon && (!pl || pl >= sizeof u->port))
        return err_set(err, ERR_INVAL, "bad port in URL \"%s\"", s);
    if (colon) {
        memcpy(u->port, colon + 1, pl);
        u->port[pl] = '\0';
    } else {
        strcpy(u->port, "80");
    }
    const char *path = slash ? slash : "";
    size_t n = strlen(path);
    while (n && path[n - 1] == '/')
        n--;
    if (n >= sizeof u->prefix)
        return err_set(err, ERR_INVAL, "URL path too long in \"%s\"", s);
    memcpy(u->prefix, path, n);
    u->prefix[n] = '\0';
    return 0;
}

static void put_param(buf_t *b, bool *first, const char *key, str_t v)
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

static int connect_to(const url_t *u, err_t *err)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(u->host, u->port, &hints, &res);
    if (gai != 0)
        return err_set(err, ERR_IO, "%s:%s: %s", u->host, u->port, gai_strerror(gai));
    int fd = -1, last = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            last = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return err_set(err, ERR_IO, "cannot connect to %s:%s: %s (is `skillscope serve` running?)",
                       u->host, u->port, strerror(last));
    struct timeval tv = {RECV_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static int send_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Reads until the peer closes (the request said Connection: close). */
static int recv_all(int fd, buf_t *in, err_t *err)
{
    for (;;) {
        uint8_t *p = buf_reserve(in, 64 << 10);
        ssize_t k = recv(fd, p, (size_t)(in->end - in->last), 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return err_set(err, ERR_IO, "reading the response: %s", strerror(errno));
        if (k == 0)
            return 0;
        in->last += k;
    }
}

static bool header_is(str_t line, const char *name, str_t *value)
{
    size_t n = strlen(name);
    if (line.len <= n || strncasecmp(line.ptr, name, n) != 0 || line.ptr[n] != ':')
        return false;
    str_t v = {line.ptr + n + 1, line.len - n - 1};
    while (v.len && (v.ptr[0] == ' ' || v.ptr[0] == '\t'))
        v.ptr++, v.len--;
    *value = v;
    return true;
}

/* Undoes chunked transfer coding in place; false when malformed. */
static bool dechunk(str_t in, buf_t *out)
{
    size_t i = 0;
    for (;;) {
        size_t n = 0, digits = 0;
        while (i < in.len) {
            char c = in.ptr[i];
            int v = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (v < 0)
                break;
            if (n > (SIZE_MAX >> 4))
                return false;
            n = n * 16 + (size_t)v;
            digits++;
            i++;
        }
        const char *crlf = digits ? memmem(in.ptr + i, in.len - i, "\r\n", 2) : NULL;
        if (!crlf)
            return false;
        i = (size_t)(crlf - in.ptr) + 2;
        if (!n)
            return true;
        if (in.len - i < n + 2)
            return false;
        buf_append(out, in.ptr + i, n);
        i += n + 2;
    }
}

static int dump_remote(const char *server, const api_dump_opts_t *o)
{
    url_t u;
    err_t err = {0};
    if (parse_url(server, &u, &err) != 0) {
        fprintf(stderr, "skillscope dump: %s\n", err.msg);
        return 2;
    }
    buf_t req = BUF_INIT;
    buf_printf(&req, "GET %s/api/skillscope/dump", u.prefix);
    bool first = true;
    char tmp[FMTNUM_MAX];
    if (o->metrics.ptr)
        put_param(&req, &first, "metrics", o->metrics);
    if (o->logs.ptr)
        put_param(&req, &first, "logs", o->logs);
    if (o->traces)
        put_param(&req, &first, "traces", STR("1"));
    if (o->start_ms != PARAMS_PROM_MIN_TIME_MS) {
        size_t n = fmt_ts_prom(tmp, o->start_ms);
        put_param(&req, &first, "start", (str_t){tmp, n});
    }
    if (o->end_ms != PARAMS_PROM_MAX_TIME_MS) {
        size_t n = fmt_ts_prom(tmp, o->end_ms);
        put_param(&req, &first, "end", (str_t){tmp, n});
    }
    bool v6 = strchr(u.host, ':') != NULL;
    buf_printf(&req,
               " HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: skillscope-dump\r\n"
               "Accept-Encoding: identity\r\nConnection: close\r\n\r\n",
               v6 ? "[" : "", u.host, v6 ? "]" : "", u.port);
    int fd = connect_to(&u, &err);
    if (fd < 0) {
        buf_deinit(&req);
        fprintf(stderr, "skillscope dump: %s\n", err.msg);
        return 1;
    }
    buf_t in = BUF_INIT;
    int rc = send_all(fd, req.pos, buf_len(&req)) == 0
                 ? recv_all(fd, &in, &err)
                 : err_set(&err, ERR_IO, "sending the request: %s", strerror(errno));
    close(fd);
    buf_deinit(&req);
    int status = 0;
    buf_cstr(&in);
    str_t resp = buf_str(&in), body = STR_NULL;
    const char *hend = rc == 0 ? memmem(resp.ptr, resp.len, "\r\n\r\n", 4) : NULL;
    if (rc == 0 && (!hend || sscanf(resp.ptr, "HTTP/1.%*d %d", &status) != 1))
        rc = err_set(&err, ERR_PARSE, "malformed HTTP response from %s", server);
    buf_t dechunked = BUF_INIT;
    if (rc == 0) {
        bool chunked = false;
        long long clen = -1;
        const char *line = (const char *)memmem(resp.ptr, resp.len, "\r\n", 2) + 2;
        while (line < hend) {
            const char *eol = memmem(line, (size_t)(hend + 2 - line), "\r\n", 2);
            str_t l = {line, (size_t)(eol - line)}, v;
            if (header_is(l, "Transfer-Encoding", &v) && v.len >= 7 &&
                !strncasecmp(v.ptr, "chunked", 7))
                chunked = true;
            if (header_is(l, "Content-Length", &v))
                clen = atoll(v.ptr);
            line = eol + 2;
        }
        body = (str_t){hend + 4, resp.len - (size_t)(hend + 4 - resp.ptr)};
        if (chunked) {
            if (!dechunk(body, &dechunked))
                rc = err_set(&err, ERR_PARSE, "malformed chunked body from %s", server);
            body = buf_str(&dechunked);
        } else if (clen >= 0 && (size_t)clen <= body.len) {
            body.len = (size_t)clen;
        } else if (clen >= 0) {
            rc = err_set(&err, ERR_IO, "response from %s ended early", server);
        }
    }
    int exit_code = 0;
    if (rc != 0) {
        fprintf(stderr, "skillscope dump: %s\n", err.msg);
        exit_code = 1;
    } else if (status != 200) {
        fprintf(stderr, "skillscope dump: %s answered %d: %.*s%s", server, status, STR_FMT(body),
                body.len && body.ptr[body.len - 1] == '\n' ? "" : "\n");
        exit_code = 1;
    } else {
        fwrite(body.ptr, 1, body.len, stdout);
        exit_code = fflush(stdout) == 0 ? 0 : 1;
    }
    buf_deinit(&dechunked);
    buf_deinit(&in);
    return exit_code;
}

/* --name VALUE or --name=VALUE. */
static bool opt_value(int argc, char **argv, int *i, const char *name, const char **value)
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
    if (*i + 1 >= argc) {
        *value = NULL;
        return true;
    }
    *value = argv[++*i];
    return true;
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
        const char **slot = opt_value(argc, argv, &i, "--server", &v)     ? &server
                            : opt_value(argc, argv, &i, "--data-dir", &v) ? &dir
                            : opt_value(argc, argv, &i, "--metrics", &v)  ? &metrics
                            : opt_value(argc, argv, &i, "--logs", &v)     ? &logs
                            : opt_value(argc, argv, &i, "--start", &v)    ? &start
                            : opt_value(argc, argv, &i, "--end", &v)      ? &end
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
