/*
 * ship.c - `skillscope ship FILE... --label k=v`: follows JSON-lines log files and pushes their
 * lines to a running server through the Loki push API (POST /loki/api/v1/push, JSON), for
 * one-off use where a `sources:` entry in the server's config is not worth it.
 *
 * How: one follower (ingest/filelog.h) per FILE argument (a path or a quoted glob), the same
 * follower and line mapper the server's `sources:` use, so rotation, truncation, partial lines,
 * long lines and the JSON field mapping behave the same. Each round reads what is new, maps every
 * line to a Loki entry (stream = --label pairs + filename, structured metadata as the third
 * element of each value) and pushes one request of at most SHIP_BATCH_LINES lines; then it waits
 * for inotify or SHIP_POLL_MS. A push that fails for a reason worth retrying (connection refused,
 * 429, 5xx) is retried with backoff and the files are not read further meanwhile, so nothing is
 * lost while the server restarts; a 4xx refusal is printed and those lines are counted as not
 * delivered. Without --positions, positions are kept in memory only: a new `ship` starts at the
 * end of each file (or at its start with --from-start). With --positions FILE (the server's
 * positions.json format), each file starts where the last run's delivered lines ended, and the
 * file is rewritten after every settled push: a file's position advances only past lines the
 * server answered (delivered, or refused for good). --once reads what the files hold, pushes it
 * and exits.
 */
#include <errno.h>
#include <glob.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/json.h"
#include "cli/cli.h"
#include "ingest/filelog.h"

#define DEFAULT_SERVER "http://127.0.0.1:3000"
#define SHIP_BATCH_LINES 20000
#define SHIP_BATCH_BYTES (6u << 20) /* JSON-escaped, well under the 16 MiB body limit */
#define SHIP_POLL_MS 250
#define SHIP_TIMEOUT_MS 30000
#define SHIP_MAX_FILES 64
#define SHIP_ONCE_GIVE_UP_MS 15000

static volatile sig_atomic_t stop_flag;

static void on_sig(int signo)
{
    (void)signo;
    stop_flag = 1;
}

static void usage(FILE *f)
{
    fputs("Usage: skillscope ship FILE... [--label k=v]... [--server URL] [--from-start]\n"
          "                           [--once] [--line original|message] [--positions FILE]\n"
          "\n"
          "Follows JSON-lines log files (like tail -F) and pushes each line to a running\n"
          "server through the Loki push API (POST /loki/api/v1/push). FILE may be a glob in\n"
          "quotes ('/var/log/app/*.jsonl'); files that appear later are picked up, rotated\n"
          "and truncated files are followed. Stops on Ctrl-C after pushing what it read.\n"
          "\n"
          "Each JSON line keeps its original text as the log line; its timestamp (timestamp,\n"
          "time, ts, @timestamp: RFC3339 or epoch s/ms/us/ns) becomes the entry's time; level,\n"
          "trace_id, span_id and every other field become structured metadata (nested objects\n"
          "flattened with '_'). Lines that are not JSON are sent as they are.\n"
          "\n"
          "Flags:\n"
          "  --label k=v      stream label (repeatable); filename=<absolute path> is added\n"
          "  --server URL     the server (default " DEFAULT_SERVER ")\n"
          "  --from-start     read the files from their start (default: only new lines)\n"
          "  --once           push what the files hold now and exit (implies --from-start;\n"
          "                   gives up after 15 s when the server cannot be reached)\n"
          "  --line message   store the message field as the line instead of the JSON line\n"
          "  --positions F    keep each file's delivered position in F (JSON) and start from\n"
          "                   it next time, so repeated runs send every line once\n"
          "  -h, --help       this help\n"
          "\n"
          "Exit status: 0 when every line read was delivered, 1 when some were refused or\n"
          "could not be delivered, 2 for a bad command line.\n"
          "\n"
          "Example:\n"
          "  skillscope ship '/var/log/skillmeat/*.jsonl' --label service_name=skillmeat\n",
          f);
}

typedef struct group {
    labels_t stream; /* in the batch arena */
    buf_t values;    /* "[...],[...]" */
} group_t;

typedef struct ship {
    cli_url_t url;
    filelog_map_t map;
    filelog_follow_t *fw[SHIP_MAX_FILES];
    size_t n_fw;
    arena_t arena; /* the batch: stream label sets */
    arena_t line_arena;
    group_t *groups;
    size_t n_groups, cap_groups;
    size_t lines, bytes;
    uint64_t delivered, refused, non_json;
    int64_t give_up_ms;   /* --once: stop retrying a push after this long; 0 = retry until Ctrl-C */
    const char *pos_path; /* --positions, or NULL */
    /* the files the batch's lines came from, each with the end of its last line in the batch */
    struct touched {
        filelog_file_t *file;
        uint32_t gen;
        uint64_t end_off;
    } * touched;
    size_t n_touched, cap_touched;
} ship_t;

static void put_values(buf_t *b, const filelog_entry_t *e)
{
    jw_t w;
    jw_init(&w, b);
    if (buf_len(b))
        buf_putc(b, ',');
    jw_arr(&w);
    char ts[32];
    snprintf(ts, sizeof ts, "%" PRId64, e->ts_ns);
    jw_cstr(&w, ts);
    jw_str(&w, e->line);
    if (e->meta.n) {
        jw_obj(&w);
        for (size_t i = 0; i < e->meta.n; i++) {
            jw_key_str(&w, e->meta.v[i].name);
            jw_str(&w, e->meta.v[i].value);
        }
        jw_end(&w);
    }
    jw_end(&w);
}

/* Notes that the batch holds file's lines up to end_off (the file is kept until the push). */
static void touch(ship_t *s, filelog_file_t *file, uint64_t end_off)
{
    uint32_t gen = filelog_file_gen(file);
    for (size_t i = s->n_touched; i-- > 0;)
        if (s->touched[i].file == file && s->touched[i].gen == gen) {
            s->touched[i].end_off = end_off;
            return;
        }
    if (s->n_touched == s->cap_touched) {
        s->cap_touched = s->cap_touched ? s->cap_touched * 2 : 8;
        s->touched = realloc(s->touched, s->cap_touched * sizeof *s->touched);
        if (!s->touched)
            abort();
    }
    filelog_file_ref(file);
    s->touched[s->n_touched++] = (struct touched){file, gen, end_off};
}

/* After a settled push: the touched files' positions advance, and --positions is rewritten. */
static void settle_positions(ship_t *s)
{
    for (size_t i = 0; i < s->n_touched; i++) {
        filelog_file_ack(s->touched[i].file, s->touched[i].gen, s->touched[i].end_off);
        filelog_file_unref(s->touched[i].file);
    }
    s->n_touched = 0;
    if (!s->pos_path)
        return;
    filelog_positions_t p;
    memset(&p, 0, sizeof p);
    for (size_t i = 0; i < s->n_fw; i++)
        filelog_follow_positions(s->fw[i], &p);
    err_t err;
    err_clear(&err);
    if (filelog_positions_save(s->pos_path, &p, &err) != 0)
        fprintf(stderr, "skillscope ship: --positions: %s\n", err.msg);
    filelog_positions_free(&p);
}

static bool on_line(void *arg, filelog_file_t *file, str_t line, uint64_t end_off)
{
    ship_t *s = arg;
    touch(s, file, end_off);
    filelog_entry_t e;
    arena_reset(&s->line_arena);
    filelog_map_line(&s->map, line, clock_now_ns(), &s->line_arena, &e);
    if (!e.json && !s->map.raw)
        s->non_json++;
    label_t *sv = arena_alloc(&s->line_arena, (e.stream.n + 1) * sizeof *sv);
    if (e.stream.n)
        memcpy(sv, e.stream.v, e.stream.n * sizeof *sv);
    labels_t stream = {sv, e.stream.n};
    if (!labels_get(&stream, "filename").ptr)
        sv[stream.n++] = (label_t){STR("filename"), str_cstr(filelog_file_path(file))};
    labels_sort(&stream);
    group_t *g = NULL;
    for (size_t i = 0; i < s->n_groups && !g; i++)
        if (labels_eq(&s->groups[i].stream, &stream))
            g = &s->groups[i];
    if (!g) {
        if (s->n_groups == s->cap_groups) {
            s->cap_groups = s->cap_groups ? s->cap_groups * 2 : 8;
            s->groups = realloc(s->groups, s->cap_groups * sizeof *s->groups);
            if (!s->groups)
                abort();
        }
        g = &s->groups[s->n_groups++];
        g->stream = labels_copy(&stream, &s->arena);
        g->values = BUF_INIT;
    }
    put_values(&g->values, &e);
    s->lines++;
    s->bytes += line.len;
    return s->lines < SHIP_BATCH_LINES && s->bytes < SHIP_BATCH_BYTES;
}

static void batch_reset(ship_t *s)
{
    for (size_t i = 0; i < s->n_groups; i++)
        buf_deinit(&s->groups[i].values);
    s->n_groups = 0;
    s->lines = s->bytes = 0;
    arena_reset(&s->arena);
}

static void batch_body(ship_t *s, buf_t *body)
{
    jw_t w;
    jw_init(&w, body);
    jw_obj(&w);
    jw_key(&w, "streams");
    jw_arr(&w);
    for (size_t i = 0; i < s->n_groups; i++) {
        jw_obj(&w);
        jw_key(&w, "stream");
        jw_obj(&w);
        for (size_t j = 0; j < s->groups[i].stream.n; j++) {
            jw_key_str(&w, s->groups[i].stream.v[j].name);
            jw_str(&w, s->groups[i].stream.v[j].value);
        }
        jw_end(&w);
        jw_key(&w, "values");
        buf_putc(body, '[');
        buf_append(body, s->groups[i].values.pos, buf_len(&s->groups[i].values));
        buf_putc(body, ']');
        jw_end(&w);
    }
    jw_end(&w);
    jw_end(&w);
}

/* Pushes the batch; retries while the failure may pass (unless stopping). Returns true when the
 * batch is settled (delivered or refused for good). */
static bool push(ship_t *s)
{
    if (!s->lines)
        return true;
    buf_t body = BUF_INIT;
    batch_body(s, &body);
    char path[600];
    snprintf(path, sizeof path, "%s/loki/api/v1/push", s->url.prefix);
    int64_t backoff = 250;
    int64_t t0 = clock_now_ms();
    bool settled = false;
    for (int attempt = 0;; attempt++) {
        int status = 0;
        buf_t resp = BUF_INIT;
        err_t err;
        err_clear(&err);
        int rc = cli_http_request(s->url.host, s->url.port, "POST", path, "application/json",
                                  body.pos, buf_len(&body), SHIP_TIMEOUT_MS, &status, &resp, &err);
        if (rc == 0 && status >= 200 && status < 300) {
            s->delivered += s->lines;
            settled = true;
        } else if (rc == 0 && status >= 400 && status < 500 && status != 429 && status != 408) {
            str_t msg = buf_str(&resp);
            while (msg.len && (msg.ptr[msg.len - 1] == '\n' || msg.ptr[msg.len - 1] == '\r'))
                msg.len--;
            fprintf(stderr, "skillscope ship: the server refused %zu lines: HTTP %d: %.*s\n",
                    s->lines, status, STR_FMT(msg));
            s->refused += s->lines;
            settled = true;
        } else {
            if (attempt == 0 || attempt % 20 == 0) {
                if (rc != 0)
                    fprintf(stderr, "skillscope ship: %s:%d: %s (retrying)\n", s->url.host,
                            s->url.port, err.msg);
                else
                    fprintf(stderr, "skillscope ship: HTTP %d from the server (retrying)\n",
                            status);
            }
        }
        buf_deinit(&resp);
        if (settled || stop_flag)
            break;
        if (s->give_up_ms && clock_now_ms() - t0 >= s->give_up_ms) {
            fprintf(stderr, "skillscope ship: giving up after %lld s\n",
                    (long long)(s->give_up_ms / 1000));
            break;
        }
        for (int64_t waited = 0; waited < backoff && !stop_flag; waited += 50)
            usleep(50 * 1000);
        if (stop_flag)
            break;
        backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
    }
    buf_deinit(&body);
    if (settled) {
        batch_reset(s);
        settle_positions(s);
    }
    return settled;
}

static int parse_label(const char *kv, arena_t *a, label_t *out)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return -1;
    out->name = arena_str(a, str_from(kv, (size_t)(eq - kv)));
    out->value = arena_str(a, str_cstr(eq + 1));
    return label_name_valid(out->name) && out->value.len ? 0 : -1;
}

int cli_ship_main(int argc, char **argv)
{
    ship_t s;
    memset(&s, 0, sizeof s);
    arena_init(&s.arena, 16384);
    arena_init(&s.line_arena, 16384);
    arena_t cfg;
    arena_init(&cfg, 4096);
    const char *server = DEFAULT_SERVER;
    const char *files[SHIP_MAX_FILES];
    size_t n_files = 0;
    label_t *labels = ARENA_ARRAY(&cfg, label_t, (size_t)argc + 1);
    size_t n_labels = 0;
    bool from_start = false, once = false;
    filelog_positions_t saved; /* --positions as loaded: where files start */
    memset(&saved, 0, sizeof saved);
    int code = CLI_EXIT_USAGE;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            code = CLI_EXIT_OK;
            goto out;
        } else if (cli_flag_value(argc, argv, &i, "--label", &v)) {
            if (!v || parse_label(v, &cfg, &labels[n_labels]) != 0) {
                fprintf(stderr,
                        "skillscope ship: --label needs name=value with a label name of "
                        "[a-zA-Z_][a-zA-Z0-9_]* and a non-empty value, got \"%s\"\n",
                        v ? v : "");
                goto out;
            }
            n_labels++;
        } else if (cli_flag_value(argc, argv, &i, "--server", &v)) {
            if (!v) {
                fprintf(stderr, "skillscope ship: --server needs a URL\n");
                goto out;
            }
            server = v;
        } else if (cli_flag_value(argc, argv, &i, "--line", &v)) {
            if (v && !strcmp(v, "message"))
                s.map.line_message = true;
            else if (!v || strcmp(v, "original") != 0) {
                fprintf(stderr, "skillscope ship: --line must be original or message\n");
                goto out;
            }
        } else if (cli_flag_value(argc, argv, &i, "--positions", &v)) {
            if (!v || !*v) {
                fprintf(stderr, "skillscope ship: --positions needs a file path\n");
                goto out;
            }
            s.pos_path = v;
        } else if (!strcmp(argv[i], "--from-start")) {
            from_start = true;
        } else if (!strcmp(argv[i], "--once")) {
            once = from_start = true;
            s.give_up_ms = SHIP_ONCE_GIVE_UP_MS;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "skillscope ship: unknown flag %s (see skillscope ship --help)\n",
                    argv[i]);
            goto out;
        } else {
            if (n_files == SHIP_MAX_FILES) {
                fprintf(stderr, "skillscope ship: at most %d FILE arguments\n", SHIP_MAX_FILES);
                goto out;
            }
            files[n_files++] = argv[i];
        }
    }
    if (!n_files) {
        fprintf(stderr, "skillscope ship: no FILE given (see skillscope ship --help)\n");
        goto out;
    }
    labels_t ls = {labels, n_labels};
    if (labels_sort(&ls) != 0) {
        fprintf(stderr, "skillscope ship: a --label name is given twice\n");
        goto out;
    }
    s.map.labels = ls;
    err_t err;
    if (cli_url_parse(server, &s.url, &err) != 0) {
        fprintf(stderr, "skillscope ship: --server: %s\n", err.msg);
        goto out;
    }
    if (s.pos_path && filelog_positions_load(s.pos_path, &saved, &err) != 0) {
        fprintf(stderr, "skillscope ship: --positions: %s\n", err.msg);
        goto out;
    }
    for (size_t i = 0; i < n_files; i++) {
        glob_t g;
        memset(&g, 0, sizeof g);
        bool none = glob(files[i], 0, NULL, &g) != 0 || g.gl_pathc == 0;
        globfree(&g);
        if (none && once) {
            fprintf(stderr, "skillscope ship: %s: no such file\n", files[i]);
            code = CLI_EXIT_ERROR;
            goto out;
        }
        if (none)
            fprintf(stderr, "skillscope ship: %s: no such file yet; waiting for it\n", files[i]);
        /* absolute, so the filename label does not depend on where ship was started */
        char cwd[4096];
        char *abs = NULL;
        if (files[i][0] != '/' && getcwd(cwd, sizeof cwd))
            abs = arena_sprintf(&cfg, "%s/%s", cwd, files[i]);
        s.fw[s.n_fw++] = filelog_follow_new(abs ? abs : files[i], &saved, !from_start);
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sig;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    code = CLI_EXIT_OK;
    while (!stop_flag) {
        bool more = false;
        for (size_t i = 0; i < s.n_fw && !stop_flag; i++) {
            /* the batch may fill up mid-file: push and keep reading this follower */
            for (;;) {
                bool left = filelog_follow_poll(s.fw[i], SHIP_BATCH_BYTES, on_line, &s);
                if (s.lines >= SHIP_BATCH_LINES || s.bytes >= SHIP_BATCH_BYTES) {
                    if (!push(&s))
                        break;
                    continue;
                }
                more = more || left;
                break;
            }
        }
        if (s.lines && !push(&s))
            break; /* stopping, or --once gave up, while the server was unreachable */
        if (once && !more)
            break;
        if (more)
            continue;
        struct pollfd pf[SHIP_MAX_FILES];
        nfds_t np = 0;
        for (size_t i = 0; i < s.n_fw; i++)
            if (filelog_follow_fd(s.fw[i]) >= 0)
                pf[np++] = (struct pollfd){filelog_follow_fd(s.fw[i]), POLLIN, 0};
        if (poll(pf, np, SHIP_POLL_MS) > 0)
            for (size_t i = 0; i < s.n_fw; i++)
                filelog_follow_drain(s.fw[i]);
    }
    uint64_t undelivered = s.lines; /* read but not pushed when stopped */
    uint64_t truncated = 0;
    for (size_t i = 0; i < s.n_fw; i++) {
        filelog_follow_stats_t st;
        filelog_follow_get_stats(s.fw[i], &st);
        truncated += st.truncated_lines;
    }
    fprintf(stderr,
            "skillscope ship: %" PRIu64 " lines delivered, %" PRIu64 " refused, %" PRIu64
            " not delivered, %" PRIu64 " not JSON, %" PRIu64 " truncated\n",
            s.delivered, s.refused, undelivered, s.non_json, truncated);
    if (s.refused || undelivered)
        code = CLI_EXIT_ERROR;
out:
    batch_reset(&s);
    free(s.groups);
    for (size_t i = 0; i < s.n_touched; i++)
        filelog_file_unref(s.touched[i].file);
    free(s.touched);
    for (size_t i = 0; i < s.n_fw; i++)
        filelog_follow_free(s.fw[i]);
    filelog_positions_free(&saved);
    arena_deinit(&s.arena);
    arena_deinit(&s.line_arena);
    arena_deinit(&cfg);
    return code;
}
