/*
 * runner.c - the LogQL conformance runner: executes Loki's logqltest files
 * (../shared/specs/loki/logqltest/ files) against our LogQL parser and evaluator.
 *
 * Why: Loki's own declarative corpus pins LogQL metric-query semantics (windows, parsers, label
 * clashes, error labels, binary matching) far better than hand-written tests.
 *
 * The file language (../shared/specs/LOKI-API.md §6; promqltest-like): `#` starts a comment
 * (outside quotes), blank lines end a command body. Commands:
 *   clear                      fresh storage (a real db_t in a temp dir, WAL fsync off)
 *   load                       followed by lines
 *       {labels} "line" | `line`  @ <dur> [repeat every <dur> for <N>] [metadata k="v" ...]
 *     (no escape processing in either quote form; {{.i}} becomes the 0-based repeat index;
 *     empty-valued stream labels are dropped on write, as Loki does)
 *   eval instant at <dur> <query>
 *   eval range from <dur> to <dur> step <dur> <query>
 *     followed by expected series `{labels} v v _ ...` (promqltest value syntax), a bare scalar,
 *     `expect empty`, `expect fail [msg: <substring> | regex: <re>]`, `expect ordered`, or
 *     `skip values-comparison on "..."` (ignored: it concerns Loki's sharded execution).
 * Times are offsets from the corpus epoch 2026-01-01T00:00:00Z. Label sets compare as sets and
 * an empty value is significant. Values compare with promqltest's almost-equal.
 *
 * Skips come from tests/logql/skip.txt: `<file>[:<line>]  <reason>`.
 * Usage: runner [--dir DIR] [--skip FILE] [-v] [FILE.logqltest ...]
 * The last line printed is "N passed, N failed"; the exit status is non-zero on failure.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <pcre2.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/log.h"
#include "query/logql.h"
#include "store/db.h"

#include "../promql/pqt.h"

#define EPOCH_NS (1767225600LL * 1000000000LL)

typedef struct skip {
    char file[128];
    int line; /* 0 = whole file */
} skip_t;

typedef struct runner {
    db_t *db;
    char dir[64];
    bool verbose;
    skip_t *skips;
    size_t n_skips;
    unsigned passed, failed, skipped;
} runner_t;

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void storage_close(runner_t *r)
{
    if (r->db)
        db_close(r->db);
    r->db = NULL;
    if (r->dir[0])
        nftw(r->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    r->dir[0] = 0;
}

static int storage_open(runner_t *r)
{
    snprintf(r->dir, sizeof r->dir, "/tmp/logqltest.XXXXXX");
    if (!mkdtemp(r->dir)) {
        perror("mkdtemp");
        return -1;
    }
    db_opts_t o;
    db_opts_default(&o);
    o.dir = r->dir;
    o.fsync_mode = WAL_FSYNC_OFF;
    o.retention_ms = 0;
    o.retention_bytes = 0;
    o.ooo_window_ms = 1000LL * 86400000 * 365;
    err_t err = {0};
    if (db_open(&o, &r->db, &err)) {
        fprintf(stderr, "runner: db_open %s: %s\n", r->dir, err.msg);
        return -1;
    }
    return 0;
}

static void commit_done(void *arg, const db_commit_result_t *res)
{
    int *state = arg;
    *state = res->status ? -1 : 1;
    if (res->logs_rejected)
        fprintf(stderr, "runner: %llu log entries rejected by the store: %s\n",
                (unsigned long long)res->logs_rejected, res->reject_reason);
}

static int storage_commit(runner_t *r, db_batch_t *b)
{
    int state = 0;
    for (;;) {
        int rc = db_commit(r->db, b, commit_done, &state);
        if (rc == 0)
            break;
        if (rc != ERR_OVERLOAD) {
            db_batch_free(b);
            fprintf(stderr, "runner: db_commit: %s\n", err_str(rc));
            return -1;
        }
        db_poll(r->db);
        usleep(1000);
    }
    while (!state) {
        struct pollfd p = {.fd = db_event_fd(r->db), .events = POLLIN};
        poll(&p, 1, 50);
        db_poll(r->db);
    }
    return state < 0 ? -1 : 0;
}

/* ---- lexical helpers ---- */

/* Drops a `#` comment that is outside quotes and preceded by whitespace (or at the start). */
static str_t strip_comment(str_t s)
{
    char q = 0;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (q) {
            if (c == '\\' && q == '"')
                i++;
            else if (c == q)
                q = 0;
        } else if (c == '"' || c == '`') {
            q = c;
        } else if (c == '#' && (i == 0 || pqt_is_space(s.ptr[i - 1]))) {
            return pqt_trim((str_t){s.ptr, i});
        }
    }
    return pqt_trim(s);
}

static bool parse_dur(str_t w, int64_t *ns)
{
    /* Go time.ParseDuration subset used by the corpus: 10s, 1m30s, 500ms, 0 */
    char msg[128];
    double secs;
    if (lq_parse_go_duration(w, &secs, msg) != 0)
        return false;
    *ns = (int64_t)llround(secs * 1e9);
    return true;
}

/* {a="b", c=""} -> sorted labels (empty values kept) */
static int parse_labelset(str_t s, size_t *i, arena_t *a, labels_t *out)
{
    while (*i < s.len && pqt_is_space(s.ptr[*i]))
        (*i)++;
    if (*i >= s.len || s.ptr[*i] != '{')
        return -1;
    (*i)++;
    size_t cap = 8;
    out->v = ARENA_ARRAY(a, label_t, cap);
    out->n = 0;
    for (;;) {
        while (*i < s.len && (pqt_is_space(s.ptr[*i]) || s.ptr[*i] == ','))
            (*i)++;
        if (*i >= s.len)
            return -1;
        if (s.ptr[*i] == '}') {
            (*i)++;
            break;
        }
        size_t st = *i;
        while (*i < s.len && pqt_ident_char(s.ptr[*i]))
            (*i)++;
        str_t name = arena_str(a, (str_t){s.ptr + st, *i - st});
        while (*i < s.len && pqt_is_space(s.ptr[*i]))
            (*i)++;
        if (*i >= s.len || s.ptr[*i] != '=')
            return -1;
        (*i)++;
        while (*i < s.len && pqt_is_space(s.ptr[*i]))
            (*i)++;
        str_t val;
        if (pqt_unquote(s, i, a, &val))
            return -1;
        if (out->n == cap) {
            label_t *v = ARENA_ARRAY(a, label_t, cap * 2);
            memcpy(v, out->v, cap * sizeof *v);
            out->v = v;
            cap *= 2;
        }
        out->v[out->n++] = (label_t){name, val};
    }
    return labels_sort(out) ? -1 : 0;
}

/* ---- load ---- */

typedef struct lentry {
    labels_t stream, meta;
    int64_t ts;
    str_t line;
    size_t seq;
} lentry_t;

static int cmp_lentry(const void *a, const void *b)
{
    const lentry_t *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

typedef struct lvec {
    lentry_t *v;
    size_t n, cap;
} lvec_t;

static void lvec_push(lvec_t *l, lentry_t e)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        if (!l->v)
            abort();
    }
    e.seq = l->n;
    l->v[l->n++] = e;
}

static int load_line(str_t s, arena_t *a, lvec_t *out)
{
    size_t i = 0;
    labels_t st;
    if (parse_labelset(s, &i, a, &st))
        return -1;
    labels_t stream = {ARENA_ARRAY(a, label_t, st.n + 1), 0};
    for (size_t k = 0; k < st.n; k++)
        if (st.v[k].value.len)
            stream.v[stream.n++] = st.v[k];
    while (i < s.len && pqt_is_space(s.ptr[i]))
        i++;
    if (i >= s.len || (s.ptr[i] != '"' && s.ptr[i] != '`'))
        return -1;
    char q = s.ptr[i++];
    size_t ls = i;
    while (i < s.len && s.ptr[i] != q)
        i++;
    if (i >= s.len)
        return -1;
    str_t line = {s.ptr + ls, i - ls};
    i++;
    str_t rest = pqt_trim((str_t){s.ptr + i, s.len - i});
    str_t w = pqt_next_word(&rest);
    if (!str_eq_cstr(w, "@"))
        return -1;
    int64_t t0, every = 0;
    if (!parse_dur(pqt_next_word(&rest), &t0))
        return -1;
    long count = 1;
    labels_t meta = {0};
    rest = pqt_trim(rest);
    while (rest.len) {
        if (rest.ptr[0] != '[')
            return -1;
        const char *close = NULL;
        char qq = 0;
        for (size_t k = 1; k < rest.len; k++) {
            char c = rest.ptr[k];
            if (qq) {
                if (c == '\\')
                    k++;
                else if (c == qq)
                    qq = 0;
            } else if (c == '"' || c == '`') {
                qq = c;
            } else if (c == ']') {
                close = rest.ptr + k;
                break;
            }
        }
        if (!close)
            return -1;
        str_t body = {rest.ptr + 1, (size_t)(close - rest.ptr - 1)};
        rest = pqt_trim((str_t){close + 1, rest.len - (size_t)(close + 1 - rest.ptr)});
        str_t bw = body;
        str_t kw = pqt_next_word(&bw);
        if (str_eq_cstr(kw, "repeat")) {
            if (!str_eq_cstr(pqt_next_word(&bw), "every") ||
                !parse_dur(pqt_next_word(&bw), &every) || !str_eq_cstr(pqt_next_word(&bw), "for"))
                return -1;
            str_t nw = pqt_next_word(&bw);
            char nb[32];
            snprintf(nb, sizeof nb, "%.*s", STR_FMT(nw));
            count = strtol(nb, NULL, 10);
            if (count <= 0)
                return -1;
        } else if (str_eq_cstr(kw, "metadata")) {
            size_t cap = 8;
            meta.v = ARENA_ARRAY(a, label_t, cap);
            size_t k = 0;
            str_t mb = bw;
            while (k < mb.len) {
                while (k < mb.len && pqt_is_space(mb.ptr[k]))
                    k++;
                if (k >= mb.len)
                    break;
                size_t ns = k;
                while (k < mb.len && pqt_ident_char(mb.ptr[k]))
                    k++;
                str_t name = arena_str(a, (str_t){mb.ptr + ns, k - ns});
                if (k >= mb.len || mb.ptr[k] != '=')
                    return -1;
                k++;
                str_t val;
                if (pqt_unquote(mb, &k, a, &val))
                    return -1;
                if (meta.n == cap) {
                    label_t *v = ARENA_ARRAY(a, label_t, cap * 2);
                    memcpy(v, meta.v, cap * sizeof *v);
                    meta.v = v;
                    cap *= 2;
                }
                meta.v[meta.n++] = (label_t){name, val};
            }
        } else {
            return -1;
        }
    }
    for (long k = 0; k < count; k++) {
        str_t l = line;
        const char *ph = memmem(line.ptr, line.len, "{{.i}}", 6);
        if (ph) {
            buf_t b = BUF_INIT;
            size_t pos = 0;
            while (ph) {
                buf_append(&b, line.ptr + pos, (size_t)(ph - line.ptr) - pos);
                buf_printf(&b, "%ld", k);
                pos = (size_t)(ph - line.ptr) + 6;
                ph = memmem(line.ptr + pos, line.len - pos, "{{.i}}", 6);
            }
            buf_append(&b, line.ptr + pos, line.len - pos);
            l = arena_str(a, buf_str(&b));
            buf_deinit(&b);
        }
        lvec_push(out, (lentry_t){stream, meta, EPOCH_NS + t0 + k * every, l, 0});
    }
    return 0;
}

/* ---- eval ---- */

typedef struct exp_series {
    labels_t ls;
    pqt_values_t vals;
    bool matched;
} exp_series_t;

typedef struct eval_cmd {
    const char *file;
    int line;
    str_t query;
    bool range;
    int64_t start, end, step;
    exp_series_t *ser;
    size_t n_ser;
    bool expect_empty, expect_fail, ordered, has_scalar;
    double scalar;
    str_t fail_msg, fail_re;
} eval_cmd_t;

static void fail(runner_t *r, const eval_cmd_t *c, const char *fmt, const char *detail)
{
    r->failed++;
    printf("FAIL %s:%d: %.*s\n    ", c->file, c->line, STR_FMT(c->query));
    printf(fmt, detail);
    printf("\n");
}

static void fmt_labels(const labels_t *ls, char *out, size_t cap)
{
    buf_t b = BUF_INIT;
    labels_format(&b, ls);
    snprintf(out, cap, "%.*s", STR_FMT(buf_str(&b)));
    buf_deinit(&b);
}

static void run_eval(runner_t *r, eval_cmd_t *c)
{
    err_t err = {0};
    logql_query_t *q = NULL;
    arena_t a;
    arena_init(&a, 0);
    lq_result_t res;
    int rc = logql_parse(c->query, &q, &err);
    if (rc == 0) {
        if (logql_is_log(q)) {
            rc = ERR_INVAL;
            snprintf(err.msg, sizeof err.msg,
                     "log queries are not supported as an instant query "
                     "type, please change your query to a range query "
                     "type");
        } else {
            lq_opts_t o = {.limit = 5000};
            rc = logql_exec(r->db, q, c->start, c->end, c->range ? c->step : 0, &o, &a, &res, &err);
        }
    }
    char buf[2048];
    if (c->expect_fail) {
        if (rc == 0) {
            fail(r, c, "expected an error%s, the query succeeded", "");
        } else if (c->fail_msg.len &&
                   !strstr(err.msg, arena_strndup(&a, c->fail_msg.ptr, c->fail_msg.len))) {
            snprintf(buf, sizeof buf, "error %.600s does not contain %.*s", err.msg,
                     STR_FMT(c->fail_msg));
            fail(r, c, "%s", buf);
        } else if (c->fail_re.len) {
            int ec;
            PCRE2_SIZE eo;
            pcre2_code *re =
                pcre2_compile((PCRE2_SPTR)c->fail_re.ptr, c->fail_re.len, 0, &ec, &eo, NULL);
            pcre2_match_data *md = re ? pcre2_match_data_create_from_pattern(re, NULL) : NULL;
            bool ok =
                re && pcre2_match(re, (PCRE2_SPTR)err.msg, strlen(err.msg), 0, 0, md, NULL) >= 0;
            if (md)
                pcre2_match_data_free(md);
            if (re)
                pcre2_code_free(re);
            if (ok) {
                r->passed++;
            } else {
                snprintf(buf, sizeof buf, "error %.600s does not match /%.*s/", err.msg,
                         STR_FMT(c->fail_re));
                fail(r, c, "%s", buf);
            }
        } else {
            r->passed++;
        }
        goto out;
    }
    if (rc != 0) {
        fail(r, c, "unexpected error: %s", err.msg);
        goto out;
    }
    if (c->has_scalar) {
        double got = NAN;
        bool ok = false;
        if (res.type == LQ_RES_SCALAR) {
            got = res.scalar;
            ok = pqt_almost_equal(c->scalar, got);
        }
        if (ok) {
            r->passed++;
        } else {
            snprintf(buf, sizeof buf, "expected scalar %g, got type %d value %g", c->scalar,
                     (int)res.type, got);
            fail(r, c, "%s", buf);
        }
        goto out;
    }
    if (res.type == LQ_RES_SCALAR) {
        /* a scalar result compares like a {} series */
        static label_t none;
        (void)none;
        res.series = arena_calloc(&a, 1, sizeof *res.series);
        res.series[0].pts = arena_alloc(&a, sizeof(lq_point_t));
        res.series[0].pts[0] = (lq_point_t){res.scalar_t_ns, res.scalar};
        res.series[0].n = 1;
        res.n_series = 1;
    }
    size_t n_steps = c->range ? (size_t)((c->end - c->start) / c->step) + 1 : 1;
    if (c->expect_empty) {
        if (res.n_series == 0) {
            r->passed++;
        } else {
            char l[512];
            fmt_labels(&res.series[0].labels, l, sizeof l);
            fail(r, c, "expected empty, got series like %s", l);
        }
        goto out;
    }
    /* match each result series to an expected one */
    for (size_t k = 0; k < c->n_ser; k++)
        c->ser[k].matched = false;
    for (size_t s = 0; s < res.n_series; s++) {
        const lq_series_t *rs = &res.series[s];
        exp_series_t *ex = NULL;
        size_t ei = 0;
        for (size_t k = 0; k < c->n_ser && !ex; k++)
            if (!c->ser[k].matched && labels_eq(&c->ser[k].ls, &rs->labels)) {
                ex = &c->ser[k];
                ei = k;
            }
        char l[512];
        fmt_labels(&rs->labels, l, sizeof l);
        if (!ex) {
            fail(r, c, "unexpected series %s", l);
            goto out;
        }
        if (c->ordered && ei != s) {
            fail(r, c, "series %s out of order", l);
            goto out;
        }
        ex->matched = true;
        /* compare step by step */
        size_t p = 0;
        for (size_t i = 0; i < n_steps; i++) {
            int64_t t = c->start + (int64_t)i * (c->range ? c->step : 0);
            bool want = i < ex->vals.n && !ex->vals.omit[i];
            bool have = p < rs->n && rs->pts[p].t_ns == t;
            if (want != have) {
                snprintf(buf, sizeof buf, "series %s step %zu: expected %s, got %s", l, i,
                         want ? "a value" : "no value", have ? "a value" : "none");
                fail(r, c, "%s", buf);
                goto out;
            }
            if (have) {
                if (!pqt_almost_equal(ex->vals.v[i], rs->pts[p].v)) {
                    snprintf(buf, sizeof buf, "series %s step %zu: expected %.17g, got %.17g", l, i,
                             ex->vals.v[i], rs->pts[p].v);
                    fail(r, c, "%s", buf);
                    goto out;
                }
                p++;
            }
        }
        if (ex->vals.n > n_steps) {
            fail(r, c, "series %s: more expected values than steps", l);
            goto out;
        }
    }
    for (size_t k = 0; k < c->n_ser; k++)
        if (!c->ser[k].matched) {
            char l[512];
            fmt_labels(&c->ser[k].ls, l, sizeof l);
            fail(r, c, "missing series %s", l);
            goto out;
        }
    r->passed++;
out:
    logql_free(q);
    arena_deinit(&a);
}

static bool skipped(const runner_t *r, const char *file, int line)
{
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    for (size_t i = 0; i < r->n_skips; i++)
        if (strcmp(r->skips[i].file, base) == 0 &&
            (r->skips[i].line == 0 || r->skips[i].line == line))
            return true;
    return false;
}

static bool is_cmd(str_t s)
{
    return str_starts_with(s, "eval ") || str_eq_cstr(s, "load") || str_starts_with(s, "load ") ||
           str_eq_cstr(s, "clear");
}

static int run_file(runner_t *r, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "runner: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    char *text = NULL;
    size_t cap = 0, len = 0;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            text = realloc(text, cap);
            if (!text)
                abort();
        }
        memcpy(text + len, chunk, n);
        len += n;
    }
    fclose(f);
    /* split into lines */
    size_t nl = 0, lcap = 256;
    str_t *lines = malloc(lcap * sizeof *lines);
    for (size_t i = 0, st = 0; i <= len; i++) {
        if (i == len || text[i] == '\n') {
            if (nl == lcap) {
                lcap *= 2;
                lines = realloc(lines, lcap * sizeof *lines);
            }
            lines[nl++] = (str_t){text + st, i - st};
            st = i + 1;
        }
    }
    storage_close(r);
    if (storage_open(r))
        return -1;
    arena_t fa;
    arena_init(&fa, 0);
    int rc = 0;
    for (size_t li = 0; li < nl;) {
        str_t s = strip_comment(lines[li]);
        int lineno = (int)li + 1;
        li++;
        if (!s.len)
            continue;
        if (str_eq_cstr(s, "clear")) {
            storage_close(r);
            if (storage_open(r)) {
                rc = -1;
                break;
            }
            continue;
        }
        if (str_eq_cstr(s, "load")) {
            lvec_t ents = {0};
            while (li < nl) {
                str_t b = strip_comment(lines[li]);
                if (!pqt_trim(lines[li]).len || is_cmd(b))
                    break;
                li++;
                if (!b.len)
                    continue;
                if (load_line(b, &fa, &ents)) {
                    printf("FAIL %s:%zu: bad load line: %.*s\n", path, li, STR_FMT(b));
                    r->failed++;
                }
            }
            qsort(ents.v, ents.n, sizeof *ents.v, cmp_lentry);
            db_batch_t *batch = db_batch_new();
            for (size_t k = 0; k < ents.n; k++)
                db_batch_add_log(batch, &ents.v[k].stream, ents.v[k].ts, ents.v[k].line,
                                 ents.v[k].meta.n ? &ents.v[k].meta : NULL);
            free(ents.v);
            if (storage_commit(r, batch)) {
                rc = -1;
                break;
            }
            continue;
        }
        if (!str_starts_with(s, "eval ")) {
            printf("FAIL %s:%d: unknown command: %.*s\n", path, lineno, STR_FMT(s));
            r->failed++;
            continue;
        }
        eval_cmd_t c = {.file = path, .line = lineno};
        str_t rest = s;
        pqt_next_word(&rest);
        str_t kind = pqt_next_word(&rest);
        bool bad = false;
        if (str_eq_cstr(kind, "instant")) {
            if (!str_eq_cstr(pqt_next_word(&rest), "at") ||
                !parse_dur(pqt_next_word(&rest), &c.start))
                bad = true;
            c.end = c.start;
        } else if (str_eq_cstr(kind, "range")) {
            c.range = true;
            if (!str_eq_cstr(pqt_next_word(&rest), "from") ||
                !parse_dur(pqt_next_word(&rest), &c.start) ||
                !str_eq_cstr(pqt_next_word(&rest), "to") ||
                !parse_dur(pqt_next_word(&rest), &c.end) ||
                !str_eq_cstr(pqt_next_word(&rest), "step") ||
                !parse_dur(pqt_next_word(&rest), &c.step) || c.step <= 0)
                bad = true;
        } else {
            bad = true;
        }
        c.start += EPOCH_NS;
        c.end += EPOCH_NS;
        c.query = pqt_trim(rest);
        size_t scap = 8;
        c.ser = ARENA_ARRAY(&fa, exp_series_t, scap);
        while (li < nl) {
            str_t b = strip_comment(lines[li]);
            if (!pqt_trim(lines[li]).len || is_cmd(b))
                break;
            li++;
            if (!b.len)
                continue;
            if (str_starts_with(b, "expect fail")) {
                c.expect_fail = true;
                str_t m = pqt_trim((str_t){b.ptr + 11, b.len - 11});
                if (str_starts_with(m, "msg:"))
                    c.fail_msg = pqt_trim((str_t){m.ptr + 4, m.len - 4});
                else if (str_starts_with(m, "regex:"))
                    c.fail_re = pqt_trim((str_t){m.ptr + 6, m.len - 6});
                continue;
            }
            if (str_eq_cstr(b, "expect empty")) {
                c.expect_empty = true;
                continue;
            }
            if (str_eq_cstr(b, "expect ordered")) {
                c.ordered = true;
                continue;
            }
            if (str_starts_with(b, "skip ")) {
                continue;
            }
            if (b.ptr[0] == '{') {
                if (c.n_ser == scap) {
                    exp_series_t *v = ARENA_ARRAY(&fa, exp_series_t, scap * 2);
                    memcpy(v, c.ser, scap * sizeof *v);
                    c.ser = v;
                    scap *= 2;
                }
                exp_series_t *e = &c.ser[c.n_ser];
                size_t i = 0;
                if (parse_labelset(b, &i, &fa, &e->ls) ||
                    pqt_parse_values((str_t){b.ptr + i, b.len - i}, &e->vals)) {
                    bad = true;
                    continue;
                }
                c.n_ser++;
                continue;
            }
            if (pqt_parse_number(b, &c.scalar)) {
                c.has_scalar = true;
                continue;
            }
            bad = true;
        }
        if (skipped(r, path, lineno)) {
            r->skipped++;
        } else if (bad) {
            printf("FAIL %s:%d: cannot parse the eval command\n", path, lineno);
            r->failed++;
        } else {
            unsigned before = r->failed;
            run_eval(r, &c);
            if (r->verbose && r->failed == before)
                printf("ok   %s:%d: %.*s\n", path, lineno, STR_FMT(c.query));
        }
        for (size_t k = 0; k < c.n_ser; k++)
            pqt_values_free(&c.ser[k].vals);
    }
    arena_deinit(&fa);
    free(lines);
    free(text);
    return rc;
}

static int load_skips(runner_t *r, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "runner: cannot read skip list %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        str_t s = pqt_trim(str_cstr(line));
        if (!s.len || s.ptr[0] == '#')
            continue;
        str_t w = pqt_next_word(&s);
        if (!pqt_trim(s).len) {
            fprintf(stderr, "runner: %s: entry %.*s has no reason\n", path, STR_FMT(w));
            fclose(f);
            return -1;
        }
        r->skips = realloc(r->skips, (r->n_skips + 1) * sizeof *r->skips);
        skip_t *k = &r->skips[r->n_skips++];
        memset(k, 0, sizeof *k);
        const char *colon = memchr(w.ptr, ':', w.len);
        size_t fl = colon ? (size_t)(colon - w.ptr) : w.len;
        snprintf(k->file, sizeof k->file, "%.*s", (int)fl, w.ptr);
        if (colon)
            k->line = atoi(colon + 1);
    }
    fclose(f);
    return 0;
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    runner_t r = {0};
    log_set_level(LOG_WARN);
    const char *dir = "../shared/specs/loki/logqltest";
    const char *skip = "tests/logql/skip.txt";
    char **files = calloc((size_t)argc + 64, sizeof(char *));
    size_t n_files = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--skip") == 0 && i + 1 < argc)
            skip = argv[++i];
        else if (strcmp(argv[i], "-v") == 0)
            r.verbose = true;
        else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: %s [--dir DIR] [--skip FILE] [-v] [FILE.logqltest ...]\n",
                    argv[0]);
            return 2;
        } else
            files[n_files++] = strdup(argv[i]);
    }
    if (*skip && load_skips(&r, skip))
        return 2;
    if (!n_files) {
        DIR *d = opendir(dir);
        if (!d) {
            fprintf(stderr, "runner: cannot open %s: %s\n", dir, strerror(errno));
            return 2;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
            size_t n = strlen(de->d_name);
            if (n > 10 && strcmp(de->d_name + n - 10, ".logqltest") == 0) {
                files = realloc(files, (n_files + 2) * sizeof(char *));
                size_t plen = strlen(dir) + n + 2;
                files[n_files] = malloc(plen);
                snprintf(files[n_files++], plen, "%s/%s", dir, de->d_name);
            }
        }
        closedir(d);
        qsort(files, n_files, sizeof(char *), cmp_cstr);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    int rc = 0;
    for (size_t i = 0; i < n_files; i++) {
        if (run_file(&r, files[i]))
            rc = 2;
        free(files[i]);
    }
    free(files);
    storage_close(&r);
    free(r.skips);
    printf("%u skipped (tests/logql/skip.txt)\n", r.skipped);
    printf("%u passed, %u failed\n", r.passed, r.failed);
    if (rc)
        return rc;
    return r.failed ? 1 : 0;
}
