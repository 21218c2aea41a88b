/*
 * runner.c - the PromQL conformance runner: executes Prometheus' promqltest files
 * (the .test files in ../shared/specs/promql-tests/) against our parser and evaluator.
 *
 * Why: the upstream suite pins down PromQL semantics far better than hand-written tests, and
 * running it unchanged makes progress visible (N passed / N failed / N skipped).
 *
 * The file language (see ../shared/specs/PROMQL-TESTS.md, derived from promqltest/test.go): lines
 * are trimmed, `#` lines are blank, blank lines end a command body. Commands: `clear` (empty the
 * storage), `load <interval>` / `load_with_nhcb <interval>` (series descriptions; the NHCB part is
 * not implemented, so the native histograms it would create are treated like native histogram
 * series), `eval instant at <t> <expr>` and `eval range from <s> to <e> step <d> <expr>` (with the
 * legacy eval_fail/_warn/_info/_ordered verbs) followed by expect lines, a bare scalar, or
 * expected series. Storage is a real db_t in a temp dir (WAL fsync off); `clear` closes it and
 * opens a fresh directory.
 *
 * Comparison follows test.go: floats with almost.Equal(1e-6) where the stale NaN equals only
 * itself; vectors unordered by full label set (positional with `ordered`); matrices must be sorted
 * and match point by point. For instant evals the strict checks of test.go run too (unless
 * --no-strict): the query with `@ <t>` added to every selector and subquery without one, evaluated
 * at several times, and the same query as a range query from t-1m to t+1m whose points at t must
 * equal the instant result.
 *
 * Skips come from one file (tests/promql/skip.txt): whole files or file:line with a reason.
 * Native histograms are not loaded; evals with {{...}} literals in the query or the expected
 * values are skipped, and an eval that reads a series which had histogram samples (or a
 * load_with_nhcb histogram) is run but counted as skipped, not failed, when it does not pass.
 * Everything else, including queries the engine does not support yet, counts as passed or failed.
 *
 * Files: runner.c (commands, storage, execution, comparison), pqt_syntax.c (tokens: durations,
 * strings, series descriptions; the --self-test), pqt.h. tests/promql/run.sh builds and runs it.
 *
 * Usage: runner [--dir DIR] [--skip FILE] [--no-strict] [--soft-annotations] [-v] [--self-test]
 *               [FILE.test ...]
 */
#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <ftw.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/str.h"
#include "query/promql.h"
#include "store/db.h"
#include "store/labels.h"

#include "pqt.h"

#define MSG_MAX 400
/* An eval running longer than this kills the child; it is reported and the file resumes. */
#define EVAL_TIMEOUT_S 120

/* ---- the test file model ---- */

typedef enum { ANN_NONE, ANN_EXPECT, ANN_NO } ann_mode_t;

typedef struct ann_expect {
    bool regex;
    char *text; /* NULL = anything */
} ann_expect_t;

typedef struct exp_series {
    labels_t ls;
    pqt_values_t vals;
    int j; /* 1-based position among result lines */
} exp_series_t;

typedef struct eval_cmd {
    const char *file;
    int line;
    char *expr;
    bool range;
    int64_t t_ms, start_ms, end_ms, step_ms;
    bool fail;
    bool fail_regex;
    char *fail_text; /* NULL = any error */
    bool ordered;
    bool range_vector; /* expect range vector from .. to .. step .. */
    bool expect_string;
    str_t string_val;
    bool expect_scalar;
    double scalar_val;
    ann_mode_t warn_mode, info_mode;
    ann_expect_t warns[16], infos[16];
    int n_warns, n_infos;
    exp_series_t *exp;
    size_t n_exp;
    const char *skip_reason;
} eval_cmd_t;

typedef struct skip_entry {
    char *file; /* base name */
    int line;   /* 0 = the whole file */
    char *reason;
} skip_entry_t;

/* Shared with the parent process (each file runs in a child, so an engine crash costs one eval). */
typedef struct counters {
    uint64_t passed, failed, skipped;
    int cur_line; /* > 0 while the eval on that line runs, -line after it finished */
    char dir[64]; /* the child's storage directory, removed by the parent after a crash */
} counters_t;

typedef struct runner {
    counters_t *cnt;
    int resume_after; /* evals on lines <= this already ran (before a crash) */
    db_t *db;
    char *dir;
    bool strict, soft_ann, verbose;
    skip_entry_t *skips;
    size_t n_skips;
    uint64_t passed, failed, skipped;
    /* series that had native histogram samples (not loaded) since the last clear */
    labels_t *hist;
    size_t n_hist, cap_hist;
    arena_t hist_arena;
} runner_t;

/* ---- storage ---- */

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int storage_open(runner_t *r)
{
    char tmpl[] = "/tmp/promqltest.XXXXXX";
    if (!mkdtemp(tmpl)) {
        perror("mkdtemp");
        return -1;
    }
    r->dir = strdup(tmpl);
    snprintf(r->cnt->dir, sizeof r->cnt->dir, "%s", tmpl);
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

static void storage_close(runner_t *r)
{
    if (r->db)
        db_close(r->db);
    r->db = NULL;
    if (r->dir) {
        nftw(r->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        r->cnt->dir[0] = 0;
        free(r->dir);
        r->dir = NULL;
    }
    arena_deinit(&r->hist_arena);
    arena_init(&r->hist_arena, 0);
    r->hist = NULL;
    r->n_hist = r->cap_hist = 0;
}

static void add_hist(runner_t *r, const labels_t *ls)
{
    if (r->n_hist == r->cap_hist) {
        r->cap_hist = r->cap_hist ? r->cap_hist * 2 : 16;
        labels_t *n = ARENA_ARRAY(&r->hist_arena, labels_t, r->cap_hist);
        if (r->n_hist)
            memcpy(n, r->hist, r->n_hist * sizeof(labels_t));
        r->hist = n;
    }
    r->hist[r->n_hist++] = labels_copy(ls, &r->hist_arena);
}

static void commit_done(void *arg, const db_commit_result_t *res)
{
    int *state = arg;
    *state = res->status ? -1 : 1;
    if (res->samples_rejected)
        fprintf(stderr, "runner: %llu samples rejected by the store: %s\n",
                (unsigned long long)res->samples_rejected, res->reject_reason);
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

/* ---- reporting ---- */

static void shorten(const char *in, char *out, size_t cap)
{
    size_t n = strlen(in);
    if (n < cap) {
        memcpy(out, in, n + 1);
    } else {
        memcpy(out, in, cap - 4);
        memcpy(out + cap - 4, "...", 4);
    }
    for (char *c = out; *c; c++)
        if (*c == '\n' || *c == '\t')
            *c = ' ';
}

static void report_fail(runner_t *r, const eval_cmd_t *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void report_fail(runner_t *r, const eval_cmd_t *c, const char *fmt, ...)
{
    char msg[2048], smsg[MSG_MAX], sq[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    shorten(msg, smsg, sizeof smsg);
    shorten(c->expr, sq, sizeof sq);
    printf("FAIL %s:%d: %s: %s\n", c->file, c->line, sq, smsg);
    r->cnt->failed++;
}

/* ---- running one eval ---- */

typedef struct outcome {
    char msg[1024]; /* empty = success */
} outcome_t;

static void fail_out(outcome_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail_out(outcome_t *o, const char *fmt, ...)
{
    if (o->msg[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->msg, sizeof o->msg, fmt, ap);
    va_end(ap);
}

static bool re_match(const char *re, const char *subject, bool *bad)
{
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *code =
        pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &eo, NULL);
    if (!code) {
        *bad = true;
        return false;
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    int rc = pcre2_match(code, (PCRE2_SPTR)subject, strlen(subject), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    pcre2_code_free(code);
    return rc >= 0;
}

static bool text_matches(bool regex, const char *want, const char *got)
{
    if (!want)
        return true;
    if (!regex)
        return strcmp(want, got) == 0;
    bool bad = false;
    return re_match(want, got, &bad);
}

static void fmt_labels(const labels_t *ls, char *out, size_t cap)
{
    buf_t b = BUF_INIT;
    labels_format(&b, ls);
    shorten(buf_cstr(&b), out, cap);
    buf_deinit(&b);
}

static const char *type_name(pq_type_t t)
{
    switch (t) {
    case PQ_TYPE_SCALAR:
        return "scalar";
    case PQ_TYPE_VECTOR:
        return "vector";
    case PQ_TYPE_MATRIX:
        return "matrix";
    case PQ_TYPE_STRING:
        return "string";
    default:
        return "none";
    }
}

static const exp_series_t *find_expected(const eval_cmd_t *c, const labels_t *ls)
{
    for (size_t i = 0; i < c->n_exp; i++)
        if (labels_eq(&c->exp[i].ls, ls))
            return &c->exp[i];
    return NULL;
}

/* An annotation matches an expect line; a `msg:` without the trailing " (line:col)" position
 * (as the v3.5 files write them) matches the annotation without it. */
static bool ann_matches(const ann_expect_t *want, const char *got)
{
    if (text_matches(want->regex, want->text, got))
        return true;
    if (want->regex || !want->text)
        return false;
    size_t n = strlen(got);
    const char *p = n ? strrchr(got, '(') : NULL;
    if (!p || p == got || p[-1] != ' ' || got[n - 1] != ')')
        return false;
    for (const char *c = p + 1; c < got + n - 1; c++)
        if (!((*c >= '0' && *c <= '9') || *c == ':'))
            return false;
    size_t k = (size_t)(p - 1 - got);
    return strlen(want->text) == k && strncmp(want->text, got, k) == 0;
}

static void check_annotations(const eval_cmd_t *c, char **got, ann_mode_t mode,
                              const ann_expect_t *want, int n_want, const char *kind, outcome_t *o)
{
    size_t n_got = 0;
    while (got && got[n_got])
        n_got++;
    if (mode == ANN_NO && n_got) {
        fail_out(o, "unexpected %s annotation: %s", kind, got[0]);
        return;
    }
    if (mode != ANN_EXPECT)
        return;
    (void)c;
    if (!n_got) {
        fail_out(o, "expected %s annotations but none were found", kind);
        return;
    }
    for (int i = 0; i < n_want; i++) {
        bool found = false;
        for (size_t k = 0; k < n_got && !found; k++)
            found = ann_matches(&want[i], got[k]);
        if (!found) {
            fail_out(o, "expected %s annotation matching %s%s not found (got: %s)", kind,
                     want[i].regex ? "regex " : "", want[i].text, got[0]);
            return;
        }
    }
    for (size_t k = 0; k < n_got; k++) {
        bool found = false;
        for (int i = 0; i < n_want && !found; i++)
            found = ann_matches(&want[i], got[k]);
        if (!found) {
            fail_out(o, "unexpected %s annotation: %s", kind, got[k]);
            return;
        }
    }
}

/* Compares a vector (instant) result with the expected lines. */
static void compare_vector(const eval_cmd_t *c, const pq_series_t *ss, size_t n, outcome_t *o)
{
    char lb[200], a[40], b[40];
    if (c->expect_scalar) {
        fail_out(o, "expected scalar %g, got vector of %zu series", c->scalar_val, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const exp_series_t *e = find_expected(c, &ss[i].labels);
        fmt_labels(&ss[i].labels, lb, sizeof lb);
        if (!e) {
            fail_out(o, "unexpected metric %s in result (value %s)", lb,
                     ss[i].n_points ? (pqt_fmt_val(ss[i].points[0].v, a, sizeof a), a) : "none");
            return;
        }
        if (c->ordered && e->j != (int)i + 1) {
            fail_out(o, "expected metric %s with value at position %d but was at %zu", lb, e->j,
                     i + 1);
            return;
        }
        if (ss[i].n_points != 1) {
            fail_out(o, "metric %s has %zu points in an instant vector", lb, ss[i].n_points);
            return;
        }
        if (!pqt_almost_equal(e->vals.v[0], ss[i].points[0].v)) {
            pqt_fmt_val(e->vals.v[0], a, sizeof a);
            pqt_fmt_val(ss[i].points[0].v, b, sizeof b);
            fail_out(o, "expected %s for %s but got %s", a, lb, b);
            return;
        }
    }
    for (size_t k = 0; k < c->n_exp; k++) {
        bool seen = false;
        for (size_t i = 0; i < n && !seen; i++)
            seen = labels_eq(&c->exp[k].ls, &ss[i].labels);
        if (!seen) {
            fmt_labels(&c->exp[k].ls, lb, sizeof lb);
            fail_out(o, "expected metric %s not found in result (%zu series)", lb, n);
            return;
        }
    }
}

/* Compares a matrix result whose expected values sit at start + i*step, i < n, t <= end. */
static void compare_matrix(const eval_cmd_t *c, const pq_series_t *ss, size_t n, int64_t start,
                           int64_t end, int64_t step, outcome_t *o)
{
    char lb[200], a[40], b[40];
    if (c->ordered) {
        fail_out(o, "expect ordered is not valid for a matrix result");
        return;
    }
    if (c->expect_scalar) {
        fail_out(o, "expected scalar %g, got matrix of %zu series", c->scalar_val, n);
        return;
    }
    for (size_t i = 0; i + 1 < n; i++) {
        if (labels_cmp(&ss[i].labels, &ss[i + 1].labels) >= 0) {
            fmt_labels(&ss[i + 1].labels, lb, sizeof lb);
            fail_out(o, "matrix result is not sorted by labels (at %s)", lb);
            return;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const exp_series_t *e = find_expected(c, &ss[i].labels);
        fmt_labels(&ss[i].labels, lb, sizeof lb);
        if (!e) {
            fail_out(o, "unexpected metric %s in result (%zu points)", lb, ss[i].n_points);
            return;
        }
        size_t k = 0; /* result point index */
        for (size_t j = 0; j < e->vals.n; j++) {
            if (e->vals.omit[j])
                continue;
            int64_t t = start + (int64_t)j * step;
            if (t > end) {
                fail_out(o, "expected %zu points for %s but the query range ends at %lld", j + 1,
                         lb, (long long)end);
                return;
            }
            if (k >= ss[i].n_points) {
                pqt_fmt_val(e->vals.v[j], a, sizeof a);
                fail_out(o, "expected %s @%lld for %s but the result has only %zu points", a,
                         (long long)t, lb, ss[i].n_points);
                return;
            }
            const pq_point_t *p = &ss[i].points[k++];
            if (p->t_ms != t || !pqt_almost_equal(e->vals.v[j], p->v)) {
                pqt_fmt_val(e->vals.v[j], a, sizeof a);
                pqt_fmt_val(p->v, b, sizeof b);
                fail_out(o, "expected %s @%lld for %s but got %s @%lld", a, (long long)t, lb, b,
                         (long long)p->t_ms);
                return;
            }
        }
        if (k != ss[i].n_points) {
            pqt_fmt_val(ss[i].points[k].v, b, sizeof b);
            fail_out(o, "unexpected extra point %s @%lld for %s (expected %zu points, got %zu)", b,
                     (long long)ss[i].points[k].t_ms, lb, k, ss[i].n_points);
            return;
        }
    }
    for (size_t k = 0; k < c->n_exp; k++) {
        bool seen = false;
        for (size_t i = 0; i < n && !seen; i++)
            seen = labels_eq(&c->exp[k].ls, &ss[i].labels);
        if (!seen) {
            fmt_labels(&c->exp[k].ls, lb, sizeof lb);
            fail_out(o, "expected metric %s not found in result (%zu series)", lb, n);
            return;
        }
    }
}

/* Error handling common to every run: an error is fine only when the eval expects one. Returns
 * true when the run is finished (error seen or expected but missing). */
static bool check_error(const eval_cmd_t *c, int rc, const err_t *err, const char *what,
                        outcome_t *o)
{
    if (rc) {
        if (!c->fail) {
            fail_out(o, "%s error: %s", what, err->msg[0] ? err->msg : err_str(rc));
        } else if (!text_matches(c->fail_regex, c->fail_text, err->msg)) {
            fail_out(o, "expected error %s\"%s\" but got \"%s\"", c->fail_regex ? "matching " : "",
                     c->fail_text, err->msg);
        }
        return true;
    }
    if (c->fail) {
        fail_out(o, "expected an error%s%s but the query succeeded", c->fail_text ? ": " : "",
                 c->fail_text ? c->fail_text : "");
        return true;
    }
    return false;
}

static void eval_opts(pq_opts_t *po)
{
    promql_opts_default(po);
    po->lookback_ms = 5 * 60000;
    po->timeout_ms = 100000;
    po->max_samples = 10000;
    po->default_subquery_step_ms = 60000;
}

/* Runs tree n as the command describes (instant at t, or range) and compares. */
static void run_main(runner_t *r, const eval_cmd_t *c, const pq_node_t *n, int64_t t, outcome_t *o)
{
    arena_t a;
    arena_init(&a, 0);
    pq_opts_t po;
    eval_opts(&po);
    pq_result_t res = {0};
    err_t err = {0};
    int rc;
    if (c->range)
        rc = promql_eval_range(r->db, n, c->start_ms, c->end_ms, c->step_ms, &po, &a, &res, &err);
    else
        rc = promql_eval_instant(r->db, n, t, &po, &a, &res, &err);
    if (check_error(c, rc, &err, "execution", o))
        goto out;
    if (!r->soft_ann) {
        check_annotations(c, res.warnings, c->warn_mode, c->warns, c->n_warns, "warn", o);
        check_annotations(c, res.infos, c->info_mode, c->infos, c->n_infos, "info", o);
    }
    if (c->expect_string) {
        if (res.type != PQ_TYPE_STRING)
            fail_out(o, "expected string \"%.*s\", got %s", STR_FMT(c->string_val),
                     type_name(res.type));
        else if (!str_eq(res.string, c->string_val))
            fail_out(o, "expected string \"%.*s\", got \"%.*s\"", STR_FMT(c->string_val),
                     STR_FMT(res.string));
        goto out;
    }
    switch (res.type) {
    case PQ_TYPE_SCALAR:
        if (!c->expect_scalar) {
            fail_out(o, "expected vector or matrix result, got scalar %g", res.scalar);
        } else if (!pqt_almost_equal(c->scalar_val, res.scalar)) {
            char a1[40], b1[40];
            pqt_fmt_val(c->scalar_val, a1, sizeof a1);
            pqt_fmt_val(res.scalar, b1, sizeof b1);
            fail_out(o, "expected scalar %s, got %s", a1, b1);
        }
        break;
    case PQ_TYPE_VECTOR:
        if (c->range)
            fail_out(o, "range query returned a vector");
        else
            compare_vector(c, res.series, res.n_series, o);
        break;
    case PQ_TYPE_MATRIX:
        if (c->range)
            compare_matrix(c, res.series, res.n_series, c->start_ms, c->end_ms, c->step_ms, o);
        else if (c->range_vector)
            compare_matrix(c, res.series, res.n_series, c->start_ms, c->end_ms, c->step_ms, o);
        else
            fail_out(o, "got a range vector (%zu series) without `expect range vector`",
                     res.n_series);
        break;
    case PQ_TYPE_STRING:
        fail_out(o, "got string \"%.*s\" without `expect string`", STR_FMT(res.string));
        break;
    default:
        fail_out(o, "result has no type");
    }
out:
    arena_deinit(&a);
}

/* Range-mode cross-check: the query from t-1m to t+1m step 1m; points at t must match. */
static void run_range_check(runner_t *r, const eval_cmd_t *c, const pq_node_t *n, outcome_t *o)
{
    arena_t a;
    arena_init(&a, 0);
    pq_opts_t po;
    eval_opts(&po);
    pq_result_t res = {0};
    err_t err = {0};
    int64_t t = c->t_ms;
    int rc = promql_eval_range(r->db, n, t - 60000, t + 60000, 60000, &po, &a, &res, &err);
    outcome_t sub = {{0}};
    if (check_error(c, rc, &err, "range-mode execution", &sub) || sub.msg[0]) {
        if (sub.msg[0])
            fail_out(o, "%s", sub.msg);
        goto out;
    }
    if (res.type != PQ_TYPE_MATRIX) {
        fail_out(o, "range-mode query returned %s, not a matrix", type_name(res.type));
        goto out;
    }
    for (size_t i = 0; i + 1 < res.n_series; i++) {
        if (labels_cmp(&res.series[i].labels, &res.series[i + 1].labels) >= 0) {
            fail_out(o, "range-mode matrix result is not sorted by labels");
            goto out;
        }
    }
    pq_series_t *vec = ARENA_ARRAY(&a, pq_series_t, res.n_series + 1);
    size_t nv = 0;
    for (size_t i = 0; i < res.n_series; i++) {
        for (size_t k = 0; k < res.series[i].n_points; k++) {
            if (res.series[i].points[k].t_ms == t) {
                vec[nv] = res.series[i];
                vec[nv].points = &res.series[i].points[k];
                vec[nv].n_points = 1;
                nv++;
                break;
            }
        }
    }
    if (c->expect_scalar) {
        if (nv < 1) {
            fail_out(o, "range-mode: expected scalar %g at t, got no point", c->scalar_val);
        } else if (!pqt_almost_equal(c->scalar_val, vec[0].points[0].v)) {
            char a1[40], b1[40];
            pqt_fmt_val(c->scalar_val, a1, sizeof a1);
            pqt_fmt_val(vec[0].points[0].v, b1, sizeof b1);
            fail_out(o, "range-mode: expected scalar %s, got %s", a1, b1);
        }
        goto out;
    }
    compare_vector(c, vec, nv, &sub);
    if (sub.msg[0])
        fail_out(o, "range-mode: %s", sub.msg);
out:
    arena_deinit(&a);
}

static bool tree_calls(const pq_node_t *n, const char *const *names)
{
    if (!n)
        return false;
    switch (n->kind) {
    case PQ_CALL:
        for (const char *const *p = names; *p; p++)
            if (strcmp(n->u.call.func->name, *p) == 0)
                return true;
        for (size_t i = 0; i < n->u.call.n_args; i++)
            if (tree_calls(n->u.call.args[i], names))
                return true;
        return false;
    case PQ_SUBQUERY:
        return tree_calls(n->u.subquery.expr, names);
    case PQ_AGGREGATE:
        return tree_calls(n->u.agg.expr, names) || tree_calls(n->u.agg.param, names);
    case PQ_BINARY:
        return tree_calls(n->u.binary.lhs, names) || tree_calls(n->u.binary.rhs, names);
    case PQ_UNARY:
        return tree_calls(n->u.unary.expr, names);
    case PQ_PAREN:
        return tree_calls(n->u.paren.expr, names);
    default:
        return false;
    }
}

/* Adds `@ t` to every selector and subquery without one; does not enter subqueries. */
static void add_at(pq_node_t *n, int64_t t)
{
    if (!n)
        return;
    switch (n->kind) {
    case PQ_VECTOR_SEL:
    case PQ_MATRIX_SEL:
        if (n->u.sel.at == PQ_AT_NONE) {
            n->u.sel.at = PQ_AT_TIME;
            n->u.sel.at_ms = t;
        }
        break;
    case PQ_SUBQUERY:
        if (n->u.subquery.at == PQ_AT_NONE) {
            n->u.subquery.at = PQ_AT_TIME;
            n->u.subquery.at_ms = t;
        }
        break;
    case PQ_CALL:
        for (size_t i = 0; i < n->u.call.n_args; i++)
            add_at(n->u.call.args[i], t);
        break;
    case PQ_AGGREGATE:
        add_at(n->u.agg.expr, t);
        add_at(n->u.agg.param, t);
        break;
    case PQ_BINARY:
        add_at(n->u.binary.lhs, t);
        add_at(n->u.binary.rhs, t);
        break;
    case PQ_UNARY:
        add_at(n->u.unary.expr, t);
        break;
    case PQ_PAREN:
        add_at(n->u.paren.expr, t);
        break;
    default:
        break;
    }
}

/* True if a selector of the tree selects one of the series that had native histogram samples. */
static bool reads_hist(const runner_t *r, const pq_node_t *n)
{
    if (!n)
        return false;
    switch (n->kind) {
    case PQ_VECTOR_SEL:
    case PQ_MATRIX_SEL:
        for (size_t i = 0; i < r->n_hist; i++)
            if (matchers_match(n->u.sel.matchers, n->u.sel.n_matchers, &r->hist[i]))
                return true;
        return false;
    case PQ_CALL:
        for (size_t i = 0; i < n->u.call.n_args; i++)
            if (reads_hist(r, n->u.call.args[i]))
                return true;
        return false;
    case PQ_SUBQUERY:
        return reads_hist(r, n->u.subquery.expr);
    case PQ_AGGREGATE:
        return reads_hist(r, n->u.agg.expr) || reads_hist(r, n->u.agg.param);
    case PQ_BINARY:
        return reads_hist(r, n->u.binary.lhs) || reads_hist(r, n->u.binary.rhs);
    case PQ_UNARY:
        return reads_hist(r, n->u.unary.expr);
    case PQ_PAREN:
        return reads_hist(r, n->u.paren.expr);
    default:
        return false;
    }
}

static void run_eval(runner_t *r, eval_cmd_t *c)
{
    if (c->skip_reason) {
        r->cnt->skipped++;
        if (r->verbose)
            printf("SKIP %s:%d: %s\n", c->file, c->line, c->skip_reason);
        return;
    }
    outcome_t o = {{0}};
    arena_t a;
    arena_init(&a, 0);
    pq_node_t *n = NULL;
    err_t err = {0};
    int rc = promql_parse(str_cstr(c->expr), &a, &n, &err);
    if (rc) {
        check_error(c, rc, &err, "parse", &o);
        arena_deinit(&a);
        goto done;
    }
    int64_t t = c->range_vector ? c->end_ms : c->t_ms;
    run_main(r, c, n, t, &o);
    if (!o.msg[0] && r->strict && !c->range && !c->fail) {
        static const char *const variant_exempt[] = {
            "days_in_month", "day_of_month",   "day_of_week", "day_of_year",
            "end",           "hour",           "minute",      "month",
            "year",          "predict_linear", "range",       "start",
            "step",          "time",           "timestamp",   NULL};
        if (!c->range_vector && !c->expect_string && !c->ordered && !strstr(c->expr, "start()") &&
            !strstr(c->expr, "end()") && !strstr(c->expr, "range()") && !strstr(c->expr, "step()"))
            run_range_check(r, c, n, &o);
        if (!o.msg[0] && !c->range_vector && !tree_calls(n, variant_exempt)) {
            int64_t ts = t, times[5];
            size_t nt;
            if (ts == 0) {
                times[0] = -1000, times[1] = 0, times[2] = 1000;
                nt = 3;
            } else {
                times[0] = -10 * ts, times[1] = 0, times[2] = ts / 5, times[3] = ts,
                times[4] = 10 * ts;
                nt = 5;
            }
            pq_node_t *vn = NULL;
            err_t verr = {0};
            if (promql_parse(str_cstr(c->expr), &a, &vn, &verr) == 0) {
                add_at(vn, ts);
                for (size_t i = 0; i < nt && !o.msg[0]; i++) {
                    outcome_t vo = {{0}};
                    run_main(r, c, vn, times[i], &vo);
                    if (vo.msg[0])
                        fail_out(&o, "with @ %lld evaluated at %lld: %s", (long long)ts,
                                 (long long)times[i], vo.msg);
                }
                promql_free(vn);
            }
        }
    }
    /* The native histogram samples were not loaded; a mismatch on a query that reads such a
     * series is put down to them, not to the engine. */
    bool hist = o.msg[0] && reads_hist(r, n);
    promql_free(n);
    arena_deinit(&a);
    if (hist) {
        r->cnt->skipped++;
        if (r->verbose)
            printf("SKIP %s:%d: reads native histogram series (failed: %.200s)\n", c->file, c->line,
                   o.msg);
        return;
    }
done:
    if (o.msg[0])
        report_fail(r, c, "%s", o.msg);
    else
        r->cnt->passed++;
}

/* ---- parsing a test file ---- */

typedef struct file_ctx {
    runner_t *r;
    const char *name; /* base name */
    str_t *lines;
    size_t n_lines;
    arena_t a;
    uint64_t passed, failed, skipped;
} file_ctx_t;

static const char *skip_reason(runner_t *r, const char *file, int line)
{
    for (size_t i = 0; i < r->n_skips; i++)
        if (r->skips[i].line == line && strcmp(r->skips[i].file, file) == 0)
            return r->skips[i].reason;
    return NULL;
}

/* Reports a malformed test file line; counts as a failure so it is never silently lost. */
static void file_error(file_ctx_t *f, size_t line, const char *msg)
{
    if ((int)line + 1 <= f->r->resume_after)
        return;
    printf("FAIL %s:%zu: test file error: %s\n", f->name, line + 1, msg);
    f->r->cnt->failed++;
}

static size_t body_end(file_ctx_t *f, size_t i)
{
    while (i < f->n_lines && f->lines[i].len)
        i++;
    return i;
}

static size_t do_load(file_ctx_t *f, size_t i, str_t head)
{
    runner_t *r = f->r;
    str_t rest = head;
    str_t verb = pqt_next_word(&rest);
    bool nhcb = str_eq_cstr(verb, "load_with_nhcb");
    size_t end = body_end(f, i + 1);
    int64_t interval;
    if ((!nhcb && !str_eq_cstr(verb, "load")) || pqt_parse_duration(rest, &interval)) {
        file_error(f, i, "invalid load command");
        return end;
    }
    size_t n = end - (i + 1);
    labels_t *ls = ARENA_ARRAY(&f->a, labels_t, n + 1);
    pqt_values_t *vs = calloc(n + 1, sizeof(pqt_values_t));
    size_t m = 0;
    for (size_t k = i + 1; k < end; k++) {
        str_t line = f->lines[k];
        size_t pos = 0;
        labels_t l;
        if (pqt_parse_labels(line, &pos, &f->a, &l)) {
            file_error(f, k, "invalid series labels");
            continue;
        }
        if (str_starts_with(str_from(line.ptr + pos, line.len - pos), "@st")) {
            file_error(f, k, "start timestamp lines are not supported");
            continue;
        }
        pqt_values_t sv = {0};
        if (pqt_parse_values(str_from(line.ptr + pos, line.len - pos), &sv)) {
            file_error(f, k, "invalid series values");
            pqt_values_free(&sv);
            continue;
        }
        size_t slot = m;
        for (size_t q = 0; q < m; q++)
            if (labels_eq(&ls[q], &l))
                slot = q;
        if (slot < m)
            pqt_values_free(&vs[slot]);
        else
            m++;
        ls[slot] = l;
        vs[slot] = sv;
    }
    db_batch_t *b = db_batch_new();
    for (size_t q = 0; q < m; q++) {
        str_t name = labels_get(&ls[q], "__name__");
        if (vs[q].hist)
            add_hist(r, &ls[q]);
        for (size_t k = 0; k < vs[q].n; k++)
            if (!vs[q].omit[k])
                db_batch_add_sample(b, &ls[q], (int64_t)k * interval, vs[q].v[k]);
        if (nhcb && name.len > 7 && memcmp(name.ptr + name.len - 7, "_bucket", 7) == 0) {
            /* the NHCB series: <base>{labels without le} */
            labels_t h = {ARENA_ARRAY(&f->a, label_t, ls[q].n), 0};
            for (size_t k = 0; k < ls[q].n; k++) {
                if (str_eq_cstr(ls[q].v[k].name, "le"))
                    continue;
                h.v[h.n] = ls[q].v[k];
                if (str_eq_cstr(h.v[h.n].name, "__name__"))
                    h.v[h.n].value = str_from(name.ptr, name.len - 7);
                h.n++;
            }
            add_hist(r, &h);
        }
        pqt_values_free(&vs[q]);
    }
    free(vs);
    if (storage_commit(r, b))
        file_error(f, i, "storing the loaded samples failed");
    return end;
}

static int parse_ann_line(str_t rest, eval_cmd_t *c, arena_t *a)
{
    str_t kind = pqt_next_word(&rest);
    bool regex = false;
    char *text = NULL;
    if (rest.len) {
        if (str_starts_with(rest, "regex:"))
            regex = true;
        else if (!str_starts_with(rest, "msg:"))
            return -1;
        str_t t = pqt_trim(str_from(rest.ptr + (regex ? 6 : 4), rest.len - (regex ? 6 : 4)));
        text = arena_strndup(a, t.ptr, t.len);
    }
    if (str_eq_cstr(kind, "fail")) {
        if (c->fail && c->fail_text)
            return -1;
        c->fail = true;
        c->fail_regex = regex;
        c->fail_text = text;
    } else if (str_eq_cstr(kind, "ordered")) {
        if (c->range)
            return -1;
        c->ordered = true;
    } else if (str_eq_cstr(kind, "warn") || str_eq_cstr(kind, "info")) {
        bool w = kind.ptr[0] == 'w';
        ann_mode_t *mode = w ? &c->warn_mode : &c->info_mode;
        int *nn = w ? &c->n_warns : &c->n_infos;
        ann_expect_t *list = w ? c->warns : c->infos;
        if (*mode == ANN_NO || *nn == 16)
            return -1;
        *mode = ANN_EXPECT;
        list[(*nn)++] = (ann_expect_t){regex, text};
    } else if (str_eq_cstr(kind, "no_warn") || str_eq_cstr(kind, "no_info")) {
        ann_mode_t *mode = kind.ptr[3] == 'w' ? &c->warn_mode : &c->info_mode;
        if (*mode == ANN_EXPECT)
            return -1;
        *mode = ANN_NO;
    } else {
        return -1;
    }
    return 0;
}

static int parse_eval_header(str_t head, eval_cmd_t *c, arena_t *a)
{
    str_t rest = head;
    str_t verb = pqt_next_word(&rest);
    if (str_eq_cstr(verb, "eval_fail"))
        c->fail = true;
    else if (str_eq_cstr(verb, "eval_warn"))
        c->warn_mode = ANN_EXPECT, c->n_warns = 1, c->warns[0] = (ann_expect_t){false, NULL};
    else if (str_eq_cstr(verb, "eval_info"))
        c->info_mode = ANN_EXPECT, c->n_infos = 1, c->infos[0] = (ann_expect_t){false, NULL};
    else if (str_eq_cstr(verb, "eval_ordered"))
        c->ordered = true;
    else if (!str_eq_cstr(verb, "eval"))
        return -1;
    str_t mode = pqt_next_word(&rest);
    if (str_eq_cstr(mode, "instant")) {
        str_t save = rest;
        if (!str_eq_cstr(pqt_next_word(&rest), "at") ||
            pqt_parse_duration(pqt_next_word(&rest), &c->t_ms)) {
            (void)save;
            return -1;
        }
    } else if (str_eq_cstr(mode, "range") && !c->ordered) {
        c->range = true;
        if (!str_eq_cstr(pqt_next_word(&rest), "from") ||
            pqt_parse_duration(pqt_next_word(&rest), &c->start_ms) ||
            !str_eq_cstr(pqt_next_word(&rest), "to") ||
            pqt_parse_duration(pqt_next_word(&rest), &c->end_ms) ||
            !str_eq_cstr(pqt_next_word(&rest), "step") ||
            pqt_parse_duration(pqt_next_word(&rest), &c->step_ms))
            return -1;
        if (c->end_ms < c->start_ms || c->step_ms <= 0)
            return -1;
    } else {
        return -1;
    }
    if (!rest.len)
        return -1;
    c->expr = arena_strndup(a, rest.ptr, rest.len);
    return 0;
}

static size_t do_eval(file_ctx_t *f, size_t i, str_t head)
{
    runner_t *r = f->r;
    size_t end = body_end(f, i + 1);
    eval_cmd_t *c = ARENA_NEW(&f->a, eval_cmd_t);
    c->file = f->name;
    c->line = (int)i + 1;
    if (parse_eval_header(head, c, &f->a)) {
        file_error(f, i, "invalid eval command");
        return end;
    }
    c->skip_reason = skip_reason(r, f->name, c->line);
    c->exp = ARENA_ARRAY(&f->a, exp_series_t, end - i);
    int j = 0;
    bool hist = strstr(c->expr, "{{") != NULL;
    for (size_t k = i + 1; k < end; k++) {
        str_t line = f->lines[k];
        str_t rest = line;
        str_t w = pqt_next_word(&rest);
        if (str_eq_cstr(w, "expected_fail_message") || str_eq_cstr(w, "expected_fail_regexp")) {
            c->fail = true;
            c->fail_regex = w.ptr[15] == 'r';
            c->fail_text = arena_strndup(&f->a, rest.ptr, rest.len);
            break;
        }
        if (str_eq_cstr(w, "expect")) {
            str_t r2 = rest;
            str_t kind = pqt_next_word(&r2);
            if (str_eq_cstr(kind, "range")) {
                str_t rr = r2;
                if (!c->range && str_eq_cstr(pqt_next_word(&rr), "vector") &&
                    str_eq_cstr(pqt_next_word(&rr), "from") &&
                    !pqt_parse_duration(pqt_next_word(&rr), &c->start_ms) &&
                    str_eq_cstr(pqt_next_word(&rr), "to") &&
                    !pqt_parse_duration(pqt_next_word(&rr), &c->end_ms) &&
                    str_eq_cstr(pqt_next_word(&rr), "step") &&
                    !pqt_parse_duration(pqt_next_word(&rr), &c->step_ms) && !rr.len) {
                    c->range_vector = true;
                    c->t_ms = c->end_ms;
                    continue;
                }
                file_error(f, k, "invalid expect range vector line");
                return end;
            }
            if (str_eq_cstr(kind, "string")) {
                size_t pos = 0;
                if (c->range || pqt_unquote(r2, &pos, &f->a, &c->string_val) || pos != r2.len) {
                    file_error(f, k, "invalid expect string line");
                    return end;
                }
                c->expect_string = true;
                continue;
            }
            if (parse_ann_line(rest, c, &f->a)) {
                file_error(f, k, "invalid expect line");
                return end;
            }
            continue;
        }
        double num;
        if (pqt_parse_number(line, &num)) {
            c->expect_scalar = true;
            c->scalar_val = num;
            break;
        }
        exp_series_t *e = &c->exp[c->n_exp];
        size_t pos = 0;
        if (pqt_parse_labels(line, &pos, &f->a, &e->ls) ||
            pqt_parse_values(str_from(line.ptr + pos, line.len - pos), &e->vals)) {
            pqt_values_free(&e->vals);
            file_error(f, k, "invalid expected series line");
            return end;
        }
        if (e->vals.hist)
            hist = true;
        if (!c->range && !c->range_vector && e->vals.n != 1) {
            pqt_values_free(&e->vals);
            file_error(f, k, "an instant eval expects exactly one value per series");
            return end;
        }
        e->j = ++j;
        c->n_exp++;
    }
    if (hist && !c->skip_reason)
        c->skip_reason = "native histograms are not supported";
    if (c->line > r->resume_after) {
        r->cnt->cur_line = c->line;
        alarm(EVAL_TIMEOUT_S);
        run_eval(r, c);
        alarm(0);
        r->cnt->cur_line = -c->line;
    }
    for (size_t k = 0; k < c->n_exp; k++)
        pqt_values_free(&c->exp[k].vals);
    return end;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    buf_t b = BUF_INIT;
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, fp)) > 0)
        buf_append(&b, tmp, n);
    fclose(fp);
    buf_cstr(&b);
    return (char *)buf_steal(&b, len);
}

static size_t count_evals(file_ctx_t *f)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n_lines; i++)
        if (str_starts_with(f->lines[i], "eval"))
            n++;
    return n;
}

static int run_file(runner_t *r, const char *path)
{
    size_t len;
    char *text = read_file(path, &len);
    if (!text) {
        fprintf(stderr, "runner: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    file_ctx_t f = {.r = r};
    const char *slash = strrchr(path, '/');
    f.name = slash ? slash + 1 : path;
    arena_init(&f.a, 0);
    size_t cap = 1;
    for (size_t i = 0; i < len; i++)
        cap += text[i] == '\n';
    f.lines = ARENA_ARRAY(&f.a, str_t, cap);
    for (size_t st = 0, i = 0; i <= len; i++) {
        if (i == len || text[i] == '\n') {
            str_t l = pqt_trim(str_from(text + st, i - st));
            if (l.len && l.ptr[0] == '#')
                l.len = 0;
            f.lines[f.n_lines++] = l;
            st = i + 1;
        }
    }
    const char *whole = skip_reason(r, f.name, 0);
    if (whole) {
        r->cnt->skipped += count_evals(&f);
        if (r->verbose)
            printf("SKIP %s: %s\n", f.name, whole);
    } else {
        storage_close(r);
        if (storage_open(r)) {
            arena_deinit(&f.a);
            free(text);
            return -1;
        }
        for (size_t i = 0; i < f.n_lines;) {
            str_t l = f.lines[i];
            if (!l.len) {
                i++;
                continue;
            }
            str_t rest = l;
            str_t w = pqt_next_word(&rest);
            char lw[32] = {0};
            for (size_t k = 0; k < w.len && k < sizeof lw - 1; k++)
                lw[k] = (char)(w.ptr[k] >= 'A' && w.ptr[k] <= 'Z' ? w.ptr[k] + 32 : w.ptr[k]);
            if (strcmp(lw, "clear") == 0) {
                storage_close(r);
                if (storage_open(r))
                    break;
                i++;
            } else if (strncmp(lw, "load", 4) == 0) {
                i = do_load(&f, i, l);
            } else if (strncmp(lw, "eval", 4) == 0) {
                i = do_eval(&f, i, l);
            } else {
                file_error(&f, i, "unknown command");
                i = body_end(&f, i);
            }
        }
    }
    storage_close(r);
    fflush(stdout);
    arena_deinit(&f.a);
    free(text);
    return 0;
}

/* Runs one file in a child process. When the child dies (engine crash, eval timeout), the eval it
 * was running is reported as failed and a new child resumes after it. */
static int run_file_isolated(runner_t *r, const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    uint64_t p0 = r->cnt->passed, f0 = r->cnt->failed, s0 = r->cnt->skipped;
    int rc = 0;
    r->resume_after = 0;
    for (;;) {
        r->cnt->cur_line = 0;
        r->cnt->dir[0] = 0;
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return -1;
        }
        if (pid == 0) {
            int crc = run_file(r, path);
            fflush(stdout);
            _exit(crc ? 2 : 0);
        }
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        if (WIFEXITED(st)) {
            rc = WEXITSTATUS(st) ? -1 : 0;
            break;
        }
        if (r->cnt->dir[0])
            nftw(r->cnt->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        const char *why = WIFSIGNALED(st)
                              ? (WTERMSIG(st) == SIGALRM ? "timed out" : strsignal(WTERMSIG(st)))
                              : "died";
        int line = r->cnt->cur_line;
        if (line <= 0) {
            printf("FAIL %s: the runner died outside an eval (after line %d): %s\n", name, -line,
                   why);
            r->cnt->failed++;
            break;
        }
        printf("FAIL %s:%d: the engine crashed: %s\n", name, line, why);
        r->cnt->failed++;
        r->resume_after = line;
    }
    printf("# %s: %llu passed, %llu failed, %llu skipped\n", name,
           (unsigned long long)(r->cnt->passed - p0), (unsigned long long)(r->cnt->failed - f0),
           (unsigned long long)(r->cnt->skipped - s0));
    return rc;
}

/* skip.txt: `file.test  reason` or `file.test:LINE  reason`; `#` comments. */
static void free_skips(runner_t *r)
{
    for (size_t i = 0; i < r->n_skips; i++) {
        free(r->skips[i].file);
        free(r->skips[i].reason);
    }
    free(r->skips);
    r->skips = NULL;
    r->n_skips = 0;
}

static int load_skips(runner_t *r, const char *path)
{
    size_t len;
    char *text = read_file(path, &len);
    if (!text) {
        fprintf(stderr, "runner: cannot read skip list %s: %s\n", path, strerror(errno));
        return -1;
    }
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        str_t l = pqt_trim(str_cstr(line));
        if (!l.len || l.ptr[0] == '#')
            continue;
        str_t w = pqt_next_word(&l);
        skip_entry_t e = {0};
        const char *colon = memchr(w.ptr, ':', w.len);
        if (colon) {
            e.file = strndup(w.ptr, (size_t)(colon - w.ptr));
            e.line = atoi(colon + 1);
            if (e.line <= 0) {
                fprintf(stderr, "runner: %s: bad entry %.*s\n", path, STR_FMT(w));
                free(e.file);
                free(text);
                return -1;
            }
        } else {
            e.file = strndup(w.ptr, w.len);
        }
        e.reason = strndup(l.ptr, l.len);
        if (!l.len) {
            fprintf(stderr, "runner: %s: entry %s has no reason\n", path, e.file);
            free(e.file);
            free(e.reason);
            free(text);
            return -1;
        }
        r->skips = realloc(r->skips, (r->n_skips + 1) * sizeof(skip_entry_t));
        if (!r->skips)
            abort();
        r->skips[r->n_skips++] = e;
    }
    free(text);
    return 0;
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    runner_t r = {.strict = true};
    arena_init(&r.hist_arena, 0);
    log_set_level(LOG_WARN);
    const char *dir = "../shared/specs/promql-tests";
    const char *skip = "tests/promql/skip.txt";
    char **files = calloc((size_t)argc + 1, sizeof(char *));
    size_t n_files = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--self-test") == 0) {
            for (size_t k = 0; k < n_files; k++)
                free(files[k]);
            free(files);
            return pqt_self_test();
        }
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--skip") == 0 && i + 1 < argc)
            skip = argv[++i];
        else if (strcmp(argv[i], "--no-strict") == 0)
            r.strict = false;
        else if (strcmp(argv[i], "--soft-annotations") == 0)
            r.soft_ann = true;
        else if (strcmp(argv[i], "-v") == 0)
            r.verbose = true;
        else if (argv[i][0] == '-') {
            fprintf(stderr,
                    "usage: %s [--dir DIR] [--skip FILE] [--no-strict] [--soft-annotations] [-v] "
                    "[--self-test] [FILE.test ...]\n",
                    argv[0]);
            return 2;
        } else {
            files[n_files++] = strdup(argv[i]);
        }
    }
    if (*skip && load_skips(&r, skip))
        return 2;
    if (!n_files) {
        DIR *d = opendir(dir);
        if (!d) {
            fprintf(stderr,
                    "runner: cannot open %s: %s (the suite lives in shared/specs beside the "
                    "repository; see --dir)\n",
                    dir, strerror(errno));
            free_skips(&r);
            free(files);
            return 2;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
            size_t n = strlen(de->d_name);
            if (n > 5 && strcmp(de->d_name + n - 5, ".test") == 0) {
                files = realloc(files, (n_files + 2) * sizeof(char *));
                if (!files)
                    abort();
                size_t plen = strlen(dir) + n + 2;
                files[n_files] = malloc(plen);
                snprintf(files[n_files++], plen, "%s/%s", dir, de->d_name);
            }
        }
        closedir(d);
        qsort(files, n_files, sizeof(char *), cmp_cstr);
    }
    r.cnt =
        mmap(NULL, sizeof(counters_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (r.cnt == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    memset(r.cnt, 0, sizeof *r.cnt);
    setvbuf(stdout, NULL, _IOLBF, 0);
    int rc = 0;
    for (size_t i = 0; i < n_files; i++) {
        if (run_file_isolated(&r, files[i]))
            rc = 2;
        free(files[i]);
    }
    free(files);
    storage_close(&r);
    arena_deinit(&r.hist_arena);
    free_skips(&r);
    printf("%llu passed, %llu failed, %llu skipped\n", (unsigned long long)r.cnt->passed,
           (unsigned long long)r.cnt->failed, (unsigned long long)r.cnt->skipped);
    if (rc)
        return rc;
    return r.cnt->failed ? 1 : 0;
}
