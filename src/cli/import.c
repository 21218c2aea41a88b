/*
 * import.c - `skillscope import junit FILE...`: test results from JUnit XML into traces.
 *
 * Each file becomes one trace (ingest/junit.c: reader and mapping) sent as OTLP/HTTP protobuf to
 * POST /v1/traces on --server, so the server stores it exactly as if a test runner instrumented
 * with OpenTelemetry had sent it.
 *
 * Resource attributes: service.name (--service, default "junit"); vcs.branch, vcs.commit.sha and
 * vcs.dirty from the flags, else from `git` run in the working directory (spawned with a fixed
 * argv, no shell; absent outside a repository, a detached HEAD has no branch; dirty means tracked
 * files differ from HEAD, as `git describe --dirty`); skill.md.hash from --skill-file, the XXH3-128
 * of the file's bytes as 32 lower-case hex digits (the canonical big-endian form `xxhsum -H2`
 * prints; no SHA-256 is in the libraries we link); then every --attr k=v, which replaces an
 * attribute of the same key.
 *
 * Idempotence: the trace id is a hash of the file's bytes and span ids derive from it, so a file
 * always maps to the same ids. Before sending, GET /api/traces/<id> lists the spans the server
 * already has; only missing ones are sent ("already imported" when none is missing). Spans go in
 * requests of at most IMPORT_BATCH_BYTES, the root span last, so an interrupted import is completed
 * by running it again.
 *
 * Exit status: 0 when every file's spans are on the server (sent now or before), 1 when anything
 * was not delivered (unreadable or invalid file, server unreachable, an HTTP error), 2 for a bad
 * command line.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "base/arena.h"
#include "base/hash.h"
#include "base/version.h"
#include "cli/cli.h"
#include "ingest/junit.h"
#include "proto/otlp.h"

extern char **environ;

#define DEFAULT_SERVER "http://127.0.0.1:3000"
#define TIMEOUT_MS 30000
#define IMPORT_BATCH_BYTES (3u << 20) /* spans per request; the server takes up to 16 MiB */
#define MAX_FILE_BYTES (512u << 20)
#define MAX_ATTRS 64
#define GIT_OUT_BYTES 4096

static void usage(FILE *f)
{
    fputs("Usage: skillscope import junit FILE... [--server URL] [--service NAME]\n"
          "                               [--skill-file PATH] [--attr KEY=VALUE]...\n"
          "                               [--branch B] [--commit SHA] [--dirty true|false]\n"
          "\n"
          "Turns JUnit XML test reports (pytest --junitxml, node --test-reporter=junit,\n"
          "ctest --output-junit, go-junit-report, jest-junit, Maven surefire) into traces\n"
          "and sends them over OTLP/HTTP to a running server: one trace per file, a span\n"
          "per suite and per test case with test.id, test.name, test.category, test.result\n"
          "(passed|failed|skipped), test.duration_ms and the failure message; span status OK\n"
          "for a pass, ERROR for a failure or error, unset for a skip.\n"
          "\n"
          "Flags:\n"
          "  --server URL        the server (default " DEFAULT_SERVER ")\n"
          "  --service NAME      resource service.name (default junit)\n"
          "  --skill-file PATH   adds skill.md.hash: XXH3-128 of the file, 32 hex digits\n"
          "  --attr KEY=VALUE    an extra resource attribute (repeatable)\n"
          "  --branch B          vcs.branch (default: git in the working directory)\n"
          "  --commit SHA        vcs.commit.sha (default: git)\n"
          "  --dirty true|false  vcs.dirty (default: git; true when tracked files changed)\n"
          "  -h, --help          this help\n"
          "\n"
          "Re-importing a file sends nothing new: the trace id is a hash of the file, and\n"
          "spans the server already has are skipped (\"already imported\"). Outside a git\n"
          "repository the vcs.* attributes are left out unless given as flags.\n"
          "\n"
          "Output: one line per file: tests, passed, failed, skipped and the trace id\n"
          "(look it up with GET /api/traces/<id>).\n"
          "Exit status: 0 when everything is on the server, 1 when something was not\n"
          "delivered (invalid file, server unreachable, HTTP error), 2 for a bad command line.\n"
          "\n"
          "Examples:\n"
          "  pytest --junitxml=results.xml\n"
          "  node --test --test-reporter=junit --test-reporter-destination=results.xml\n"
          "  ctest --test-dir build --output-junit results.xml   # writes build/results.xml\n"
          "  skillscope import junit results.xml --skill-file SKILL.md --attr model=opus\n",
          f);
}

/* ---- resource attributes ---- */

typedef struct attrs {
    otlp_kv_t v[MAX_ATTRS];
    size_t n;
} attrs_t;

static void attrs_set(attrs_t *a, str_t key, otlp_value_t val)
{
    for (size_t i = 0; i < a->n; i++)
        if (str_eq(a->v[i].key, key)) {
            a->v[i].value = val;
            return;
        }
    if (a->n < MAX_ATTRS)
        a->v[a->n++] = (otlp_kv_t){key, val};
}

static void attrs_set_str(attrs_t *a, const char *key, str_t v)
{
    otlp_value_t val = {.type = OTLP_V_STRING};
    val.u.s = v;
    attrs_set(a, str_cstr(key), val);
}

/* Runs git with argv (fixed, no shell) in the working directory; stdout into out (first
 * GIT_OUT_BYTES, the rest drained), trailing newlines cut. 0 when git exited 0. */
static int run_git(char *const argv[], arena_t *a, str_t *out)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, "git", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        return -1;
    }
    char *buf = arena_alloc(a, GIT_OUT_BYTES + 1);
    size_t len = 0;
    for (;;) {
        char tmp[4096];
        ssize_t r = read(fds[0], tmp, sizeof tmp);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        size_t take = (size_t)r < GIT_OUT_BYTES - len ? (size_t)r : GIT_OUT_BYTES - len;
        memcpy(buf + len, tmp, take);
        len += take;
    }
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    buf[len] = '\0';
    *out = (str_t){buf, len};
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void git_context(attrs_t *res, arena_t *a, const char *branch, const char *commit,
                        const char *dirty)
{
    str_t v;
    if (branch)
        attrs_set_str(res, "vcs.branch", str_cstr(branch));
    else if (run_git((char *[]){"git", "rev-parse", "--abbrev-ref", "HEAD", NULL}, a, &v) == 0 &&
             v.len && !str_eq_cstr(v, "HEAD"))
        attrs_set_str(res, "vcs.branch", v);
    if (commit)
        attrs_set_str(res, "vcs.commit.sha", str_cstr(commit));
    else if (run_git((char *[]){"git", "rev-parse", "HEAD", NULL}, a, &v) == 0 && v.len)
        attrs_set_str(res, "vcs.commit.sha", v);
    otlp_value_t d = {.type = OTLP_V_BOOL};
    if (dirty) {
        d.u.b = strcmp(dirty, "true") == 0;
        attrs_set(res, STR("vcs.dirty"), d);
    } else if (run_git((char *[]){"git", "--no-optional-locks", "status", "--porcelain",
                                  "--untracked-files=no", NULL},
                       a, &v) == 0) {
        d.u.b = v.len > 0;
        attrs_set(res, STR("vcs.dirty"), d);
    }
}

/* ---- files ---- */

static int read_file(const char *path, buf_t *out, int64_t *mtime_ns, err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(err, ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(err, ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > MAX_FILE_BYTES) {
        close(fd);
        return err_set(err, ERR_TOOBIG, "%s: %lld bytes, more than the %u MiB accepted", path,
                       (long long)st.st_size, MAX_FILE_BYTES >> 20);
    }
    *mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    for (;;) {
        uint8_t *p = buf_reserve(out, 65536);
        ssize_t r = read(fd, p, 65536);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return err_set(err, ERR_IO, "%s: %s", path, strerror(e));
        }
        if (r == 0)
            break;
        out->last += r;
        if (buf_len(out) > MAX_FILE_BYTES) {
            close(fd);
            return err_set(err, ERR_TOOBIG, "%s: more than the %u MiB accepted", path,
                           MAX_FILE_BYTES >> 20);
        }
    }
    close(fd);
    return 0;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* ---- server ---- */

static int hexval(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* A span id as JSON gives it: hex (OTLP/JSON, what Skillscope answers) or base64 (Tempo). */
static bool json_span_id(const char *s, uint8_t out[8])
{
    size_t n = strlen(s);
    if (n == 16) {
        bool ok = true;
        for (size_t i = 0; i < 8 && ok; i++) {
            int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
            ok = hi >= 0 && lo >= 0;
            out[i] = (uint8_t)(hi << 4 | lo);
        }
        if (ok)
            return true;
    }
    uint8_t tmp[16];
    if (n <= 16 && otlp_b64_decode(tmp, s, n) == 8) {
        memcpy(out, tmp, 8);
        return true;
    }
    return false;
}

/* Adds to ids every span id in a trace-by-id JSON answer. The answer is scanned, not parsed into
 * a tree: a trace of 100k spans is about 80 MB of JSON, several times that as a jansson tree.
 * Every "spanId" key is followed by its string value; inside JSON strings quotes are escaped,
 * so the pattern cannot match text within a value ("parentSpanId" differs in case). */
static void scan_span_ids(str_t body, u64map_t *ids)
{
    static const char key[] = "\"spanId\"";
    const char *p = body.ptr, *end = body.ptr + body.len;
    while ((p = memmem(p, (size_t)(end - p), key, sizeof key - 1)) != NULL) {
        p += sizeof key - 1;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
            p++;
        if (p >= end || *p != ':')
            continue;
        p++;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
            p++;
        if (p >= end || *p != '"')
            continue;
        const char *v = ++p;
        while (p < end && *p != '"')
            p++;
        char id[32];
        uint8_t sid[8];
        if ((size_t)(p - v) < sizeof id) {
            memcpy(id, v, (size_t)(p - v));
            id[p - v] = '\0';
            if (json_span_id(id, sid) && load_u64le(sid))
                u64map_put(ids, load_u64le(sid), 1);
        }
    }
}

/* Marks in have[] the spans of ss the server already stores. Returns 0 (also for 404: no such
 * trace) or -1 with err set. */
static int existing_spans(const cli_url_t *u, const char *server, const char *trace_hex,
                          const otlp_scope_spans_t *ss, bool *have, err_t *err)
{
    char path[700];
    snprintf(path, sizeof path, "%s/api/traces/%s", u->prefix, trace_hex);
    buf_t body = BUF_INIT;
    int status = 0;
    if (cli_http_get(u->host, u->port, path, TIMEOUT_MS, &status, &body, err) != 0) {
        err_prefix(err, "cannot reach the server at %s", server);
        buf_deinit(&body);
        return -1;
    }
    if (status == 404) {
        buf_deinit(&body);
        return 0;
    }
    str_t b = buf_str(&body);
    if (status != 200 || !b.len || b.ptr[0] != '{' ||
        (!memmem(b.ptr, b.len, "\"batches\"", 9) &&
         !memmem(b.ptr, b.len, "\"resourceSpans\"", 15))) {
        err_set(err, ERR_IO, "GET %s: HTTP %d: not a trace: %.200s", path, status, buf_cstr(&body));
        buf_deinit(&body);
        return -1;
    }
    u64map_t ids;
    u64map_init(&ids);
    scan_span_ids(b, &ids);
    buf_deinit(&body);
    for (size_t i = 0; i < ss->n_spans; i++)
        have[i] = u64map_get(&ids, load_u64le(ss->spans[i].span_id)) != NULL;
    u64map_deinit(&ids);
    return 0;
}

static int post_traces(const cli_url_t *u, const char *server, const otlp_traces_t *t, err_t *err)
{
    buf_t req = BUF_INIT, resp = BUF_INIT;
    otlp_pb_encode_traces(&req, t);
    char path[600];
    snprintf(path, sizeof path, "%s/v1/traces", u->prefix);
    int status = 0;
    int rc = cli_http_request(u->host, u->port, "POST", path, "application/x-protobuf", req.pos,
                              buf_len(&req), TIMEOUT_MS, &status, &resp, err);
    buf_deinit(&req);
    if (rc != 0) {
        err_prefix(err, "cannot reach the server at %s", server);
    } else if (status < 200 || status > 299) {
        rc = err_set(err, ERR_IO, "POST %s: HTTP %d: %.300s", path, status, buf_cstr(&resp));
    }
    buf_deinit(&resp);
    return rc ? -1 : 0;
}

/* Sends the spans of t not marked in have[], in order, in requests of at most
 * IMPORT_BATCH_BYTES. *sent counts them. */
static int send_missing(const cli_url_t *u, const char *server, const otlp_traces_t *t,
                        const bool *have, arena_t *a, size_t *sent, err_t *err)
{
    const otlp_scope_spans_t *ss = &t->rs[0].scopes[0];
    otlp_span_t *batch = ARENA_ARRAY(a, otlp_span_t, ss->n_spans ? ss->n_spans : 1);
    otlp_scope_spans_t bss = *ss;
    otlp_resource_spans_t brs = t->rs[0];
    brs.scopes = &bss;
    otlp_traces_t bt = {&brs, 1};
    size_t nb = 0, bytes = 0;
    buf_t tmp = BUF_INIT;
    *sent = 0;
    for (size_t i = 0; i <= ss->n_spans; i++) {
        size_t sz = 0;
        if (i < ss->n_spans && !have[i]) {
            buf_clear(&tmp);
            otlp_pb_encode_span(&tmp, &ss->spans[i]);
            sz = buf_len(&tmp) + 8;
        }
        bool last = i == ss->n_spans;
        if (nb && (last || bytes + sz > IMPORT_BATCH_BYTES)) {
            bss.spans = batch;
            bss.n_spans = nb;
            if (post_traces(u, server, &bt, err) != 0) {
                buf_deinit(&tmp);
                return -1;
            }
            *sent += nb;
            nb = bytes = 0;
        }
        if (sz) {
            batch[nb++] = ss->spans[i];
            bytes += sz;
        }
    }
    buf_deinit(&tmp);
    return 0;
}

/* Imports one file; prints its summary line. 0 when its spans are all on the server. */
static int import_file(const char *path, const cli_url_t *u, const char *server, const attrs_t *res)
{
    arena_t a;
    arena_init(&a, 1 << 16);
    buf_t data = BUF_INIT;
    err_t err;
    int64_t mtime_ns = 0;
    int rc = -1;
    junit_run_t run;
    if (read_file(path, &data, &mtime_ns, &err) != 0 ||
        junit_parse(data.pos, buf_len(&data), path, NULL, &a, &run, &err) != 0) {
        fprintf(stderr, "skillscope import junit: %s\n", err.msg);
        goto out;
    }
    junit_map_opts_t o = {
        .file_name = str_cstr(base_name(path)),
        .fallback_end_ns = mtime_ns,
        .res_kv = res->v,
        .n_res_kv = res->n,
        .scope_version = str_cstr(skillscope_version),
    };
    junit_trace_id(data.pos, buf_len(&data), o.trace_id);
    otlp_traces_t t;
    junit_to_otlp(&run, &o, &a, &t);
    char hex[33];
    otlp_hex(hex, o.trace_id, 16);
    const otlp_scope_spans_t *ss = &t.rs[0].scopes[0];
    bool *have = ARENA_ARRAY(&a, bool, ss->n_spans);
    size_t sent = 0;
    if (existing_spans(u, server, hex, ss, have, &err) != 0 ||
        send_missing(u, server, &t, have, &a, &sent, &err) != 0) {
        fprintf(stderr, "skillscope import junit: %s: %s\n", path, err.msg);
        goto out;
    }
    printf("%s: %zu tests, %zu passed, %zu failed, %zu skipped; trace %s", path, run.n_cases,
           run.n_passed, run.n_failed, run.n_skipped, hex);
    if (sent == 0)
        printf(" (already imported)\n");
    else if (sent < ss->n_spans)
        printf(" (completed: %zu of %zu spans were missing)\n", sent, ss->n_spans);
    else
        printf("\n");
    rc = 0;
out:
    buf_deinit(&data);
    arena_deinit(&a);
    return rc;
}

/* skill.md.hash: XXH3-128 of the file, canonical (big-endian) hex. */
static int skill_hash(const char *path, char out[33], err_t *err)
{
    buf_t data = BUF_INIT;
    int64_t mt;
    if (read_file(path, &data, &mt, err) != 0) {
        buf_deinit(&data);
        return -1;
    }
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(data.pos, buf_len(&data)));
    otlp_hex(out, c.digest, 16);
    buf_deinit(&data);
    return 0;
}

int cli_import_main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "junit") != 0) {
        fprintf(stderr,
                "skillscope import: unknown format \"%s\": only junit is supported (see "
                "skillscope import --help)\n",
                argv[1]);
        return CLI_EXIT_USAGE;
    }
    const char *server = DEFAULT_SERVER, *service = "junit", *skill = NULL;
    const char *branch = NULL, *commit = NULL, *dirty = NULL;
    const char **files = calloc((size_t)argc, sizeof *files);
    const char **extra = calloc((size_t)argc, sizeof *extra);
    size_t n_files = 0, n_extra = 0;
    bool flags_done = false;
    int rc = CLI_EXIT_USAGE;
    arena_t a;
    arena_init(&a, 0);
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i], *v = NULL;
        if (flags_done || arg[0] != '-' || !arg[1]) {
            files[n_files++] = arg;
            continue;
        }
        if (!strcmp(arg, "--")) {
            flags_done = true;
            continue;
        }
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            usage(stdout);
            rc = CLI_EXIT_OK;
            goto out;
        }
        const char *attr_v = NULL;
        const char **slot = cli_flag_value(argc, argv, &i, "--server", &v)       ? &server
                            : cli_flag_value(argc, argv, &i, "--service", &v)    ? &service
                            : cli_flag_value(argc, argv, &i, "--skill-file", &v) ? &skill
                            : cli_flag_value(argc, argv, &i, "--branch", &v)     ? &branch
                            : cli_flag_value(argc, argv, &i, "--commit", &v)     ? &commit
                            : cli_flag_value(argc, argv, &i, "--dirty", &v)      ? &dirty
                            : cli_flag_value(argc, argv, &i, "--attr", &v)       ? &attr_v
                                                                                 : NULL;
        if (!slot) {
            fprintf(stderr,
                    "skillscope import junit: unknown flag %s (see skillscope import --help)\n",
                    arg);
            goto out;
        }
        if (!v) {
            fprintf(stderr, "skillscope import junit: %s needs a value\n", arg);
            goto out;
        }
        if (slot == &attr_v) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v) {
                fprintf(stderr, "skillscope import junit: --attr \"%s\": expected KEY=VALUE\n", v);
                goto out;
            }
            extra[n_extra++] = v;
            continue;
        }
        *slot = v;
    }
    if (!n_files) {
        fprintf(stderr, "skillscope import junit: no file given (see skillscope import --help)\n");
        goto out;
    }
    if (dirty && strcmp(dirty, "true") != 0 && strcmp(dirty, "false") != 0) {
        fprintf(stderr, "skillscope import junit: --dirty must be true or false, not \"%s\"\n",
                dirty);
        goto out;
    }
    if (!*service) {
        fprintf(stderr, "skillscope import junit: --service must not be empty\n");
        goto out;
    }
    if (n_extra > MAX_ATTRS - 8) {
        fprintf(stderr, "skillscope import junit: at most %d --attr flags\n", MAX_ATTRS - 8);
        goto out;
    }
    cli_url_t u;
    err_t err;
    if (cli_url_parse(server, &u, &err) != 0) {
        fprintf(stderr, "skillscope import junit: --server: %s\n", err.msg);
        goto out;
    }
    attrs_t *res = ARENA_NEW(&a, attrs_t);
    attrs_set_str(res, "service.name", str_cstr(service));
    git_context(res, &a, branch, commit, dirty);
    char hash[33];
    if (skill) {
        if (skill_hash(skill, hash, &err) != 0) {
            fprintf(stderr, "skillscope import junit: --skill-file: %s\n", err.msg);
            rc = CLI_EXIT_ERROR;
            goto out;
        }
        attrs_set_str(res, "skill.md.hash", str_cstr(hash));
    }
    for (size_t i = 0; i < n_extra; i++) {
        const char *eq = strchr(extra[i], '=');
        attrs_set_str(res, arena_strndup(&a, extra[i], (size_t)(eq - extra[i])), str_cstr(eq + 1));
    }
    rc = CLI_EXIT_OK;
    for (size_t i = 0; i < n_files; i++)
        if (import_file(files[i], &u, server, res) != 0)
            rc = CLI_EXIT_ERROR;
out:
    arena_deinit(&a);
    free(files);
    free(extra);
    return rc;
}
