/* test_db.c - the storage facade end to end: commits and acks, restarts, crashes, torn tails,
 * injected WAL faults, order rules, deltas, head cuts, compaction, retention, spans and logs,
 * read-only opens. */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/crc32c.h"
#include "base/log.h"
#include "store/db.h"
#include "store/format.h"
#include "store/internal.h"
#include "test.h"

typedef struct ack {
    int calls, status;
    db_commit_result_t res;
} ack_t;

static void on_ack(void *arg, const db_commit_result_t *res)
{
    ack_t *a = arg;
    a->calls++;
    a->status = res->status;
    a->res = *res;
}

/* Polls until every ack in v has been called (or 10 s pass). */
static void wait_acks(db_t *db, ack_t *v, size_t n)
{
    int64_t deadline = clock_mono_ns() + 10000000000LL;
    for (;;) {
        db_poll(db);
        bool all = true;
        for (size_t i = 0; i < n; i++)
            if (!v[i].calls)
                all = false;
        if (all || clock_mono_ns() > deadline)
            return;
        struct pollfd p = {db_event_fd(db), POLLIN, 0};
        poll(&p, 1, 50);
    }
}

static db_t *open_db(const char *dir, wal_fsync_mode_t mode)
{
    db_opts_t o;
    db_opts_default(&o);
    o.dir = dir;
    o.fsync_mode = mode;
    o.retention_ms = 0;
    db_t *db;
    err_t err;
    if (log_level() < LOG_WARN)
        log_set_level(LOG_WARN);
    if (db_open(&o, &db, &err) != 0) {
        printf("db_open: %s\n", err.msg);
        return NULL;
    }
    return db;
}

static db_t *open_opts(db_opts_t *o)
{
    db_t *db;
    err_t err;
    if (log_level() < LOG_WARN)
        log_set_level(LOG_WARN);
    if (db_open(o, &db, &err) != 0) {
        printf("db_open: %s\n", err.msg);
        return NULL;
    }
    return db;
}

static void sample(db_batch_t *b, const char *name, const char *job, int64_t t, double v)
{
    label_t l[] = {{STR("job"), str_cstr(job)}, {STR("__name__"), str_cstr(name)}};
    labels_t ls = {l, 2};
    db_batch_add_sample(b, &ls, t, v);
}

static int commit_wait(db_t *db, db_batch_t *b, ack_t *a)
{
    memset(a, 0, sizeof *a);
    int rc = db_commit(db, b, on_ack, a);
    if (rc)
        return rc;
    wait_acks(db, a, 1);
    return a->calls == 1 ? a->status : -100;
}

/* Reads every sample of the series selected by sel in [mint, maxt]. Returns the count. */
static size_t read_series(db_t *db, const char *sel, int64_t mint, int64_t maxt, int64_t *ts,
                          double *vs, size_t cap, size_t *n_series)
{
    arena_t a;
    arena_init(&a, 0);
    matcher_t *ms;
    size_t nm;
    err_t err;
    size_t n = 0;
    *n_series = 0;
    if (matchers_parse(str_cstr(sel), &a, &ms, &nm, &err) == 0) {
        db_series_iter_t *it;
        if (db_select(db, ms, nm, mint, maxt, &a, &it, &err) == 0) {
            while (db_series_next(it)) {
                (*n_series)++;
                int64_t t;
                double v;
                while (db_sample_next(it, &t, &v)) {
                    if (n < cap) {
                        ts[n] = t;
                        vs[n] = v;
                    }
                    n++;
                }
            }
        }
        matchers_deinit(ms, nm);
    }
    arena_deinit(&a);
    return n;
}

static void quiet(void) { log_set_level(LOG_ERROR + 1); }
static void loud(void) { log_set_level(LOG_WARN); }

TEST(open_empty_commit_select_reopen)
{
    const char *dir = test_tmpdir();
    db_t *db = open_db(dir, WAL_FSYNC_BATCH);
    REQUIRE(db);
    db_batch_t *b = db_batch_new();
    for (int i = 0; i < 100; i++) {
        sample(b, "up", "a", 1000 + i * 15000, i);
        sample(b, "up", "b", 1000 + i * 15000, -i);
    }
    db_batch_add_metadata(b, STR("up"), DB_MTYPE_GAUGE, STR("Is it up."), STR(""));
    CHECK_EQ_INT(db_batch_items(b), 201);
    ack_t a;
    REQUIRE_OK(commit_wait(db, b, &a));
    CHECK_EQ_U64(a.res.samples_accepted, 200);
    CHECK_EQ_U64(a.res.samples_rejected, 0);
    int64_t ts[300];
    double vs[300];
    size_t ns;
    CHECK_EQ_INT(read_series(db, "up", INT64_MIN, INT64_MAX, ts, vs, 300, &ns), 200);
    CHECK_EQ_INT(ns, 2);
    CHECK_EQ_INT(read_series(db, "up{job=\"a\"}", 16000, 46000, ts, vs, 300, &ns), 3);
    CHECK_EQ_INT(ts[0], 16000);
    CHECK_EQ_DBL(vs[2], 3);
    db_stats_t st;
    db_get_stats(db, &st);
    CHECK_EQ_U64(st.head_series, 2);
    CHECK_EQ_U64(st.head_samples, 200);
    CHECK_EQ_U64(st.samples_appended, 200);
    CHECK(st.wal_bytes_written > 0);
    CHECK(st.wal_fsyncs >= 1);
    CHECK_EQ_INT(st.min_time_ms, 1000);
    db_close(db);

    /* Clean close wrote a block; reopen reads it back and replays only a checkpoint. */
    db = open_db(dir, WAL_FSYNC_BATCH);
    REQUIRE(db);
    db_get_stats(db, &st);
    CHECK_EQ_U64(st.blocks, 1);
    CHECK_EQ_U64(st.block_samples, 200);
    CHECK_EQ_U64(st.head_samples, 0);
    CHECK_EQ_INT(read_series(db, "up{job=~\"a|b\"}", INT64_MIN, INT64_MAX, ts, vs, 300, &ns), 200);
    CHECK_EQ_INT(read_series(db, "up{job=\"b\"}", 16000, 16000, ts, vs, 300, &ns), 1);
    CHECK_EQ_DBL(vs[0], -1);
    /* Order state survived: a duplicate with another value is still refused. */
    b = db_batch_new();
    sample(b, "up", "a", 1000 + 99 * 15000, 5);
    sample(b, "up", "a", 1000 + 100 * 15000, 100);
    REQUIRE_OK(commit_wait(db, b, &a));
    CHECK_EQ_U64(a.res.samples_accepted, 1);
    CHECK_EQ_U64(a.res.samples_rejected, 1);
    CHECK(strstr(a.res.reject_reason, "duplicate sample for timestamp") != NULL);
    CHECK_EQ_INT(read_series(db, "up{job=\"a\"}", INT64_MIN, INT64_MAX, ts, vs, 300, &ns), 101);
    db_close(db);
}

TEST(lock_names_holder)
{
    const char *dir = test_tmpdir();
    db_t *db = open_db(dir, WAL_FSYNC_OFF);
    REQUIRE(db);
    db_opts_t o;
    db_opts_default(&o);
    o.dir = dir;
    db_t *db2;
    err_t err;
    CHECK_EQ_INT(db_open(&o, &db2, &err), ERR_EXISTS);
    char pid[32];
    snprintf(pid, sizeof pid, "process %ld", (long)getpid());
    CHECK(strstr(err.msg, pid) != NULL);
    db_close(db);
}

static int meta_calls;
static void meta_cb(void *arg, str_t metric, db_mtype_t type, str_t help, str_t unit)
{
    (void)arg;
    (void)unit;
    meta_calls++;
    CHECK_EQ_STRN(metric, "req_total");
    CHECK_EQ_INT(type, DB_MTYPE_COUNTER);
    CHECK_EQ_STRN(help, "Requests.");
}

TEST(labels_and_metadata_survive_restart)
{
    const char *dir = test_tmpdir();
    db_t *db = open_db(dir, WAL_FSYNC_BATCH);
    REQUIRE(db);
    db_batch_t *b = db_batch_new();
    sample(b, "req_total", "api", 1000, 1);
    sample(b, "req_total", "web", 1000, 2);
    sample(b, "up", "api", 1000, 1);
    db_batch_add_metadata(b, STR("req_total"), DB_MTYPE_COUNTER, STR("Requests."), STR(""));
    ack_t a;
    REQUIRE_OK(commit_wait(db, b, &a));
    for (int round = 0; round < 3; round++) {
        arena_t ar;
        arena_init(&ar, 0);
        str_t *v;
        size_t n;
        err_t err;
        REQUIRE_OK(db_label_names(db, NULL, 0, INT64_MIN, INT64_MAX, &ar, &v, &n, &err));
        REQUIRE(n == 2);
        CHECK_EQ_STRN(v[0], "__name__");
        CHECK_EQ_STRN(v[1], "job");
        REQUIRE_OK(
            db_label_values(db, STR("job"), NULL, 0, INT64_MIN, INT64_MAX, &ar, &v, &n, &err));
        REQUIRE(n == 2);
        CHECK_EQ_STRN(v[0], "api");
        CHECK_EQ_STRN(v[1], "web");
        matcher_t m;
        matcher_init(&m, MATCH_EQ, STR("__name__"), STR("up"), NULL);
        REQUIRE_OK(db_label_values(db, STR("job"), &m, 1, INT64_MIN, INT64_MAX, &ar, &v, &n, &err));
        CHECK_EQ_INT(n, 1);
        /* Outside the data's time range: nothing. */
        REQUIRE_OK(db_label_names(db, NULL, 0, 5000, 6000, &ar, &v, &n, &err));
        CHECK_EQ_INT(n, 0);
        meta_calls = 0;
        db_metadata(db, STR(""), meta_cb, NULL);
        CHECK_EQ_INT(meta_calls, 1);
        arena_deinit(&ar);
        /* Round 0: from the head; 1: after a clean close (block + checkpoint); 2: after a
         * crash following the checkpoint. */
        if (round == 0) {
            db_close(db);
        } else {
            db__abandon(db);
        }
        db = open_db(dir, WAL_FSYNC_BATCH);
        REQUIRE(db);
    }
    db_close(db);
}

TEST(crash_keeps_every_acked_sample_once)
{
    wal_fsync_mode_t modes[] = {WAL_FSYNC_BATCH, WAL_FSYNC_ALWAYS, WAL_FSYNC_OFF};
    for (int m = 0; m < 3; m++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/m%d", test_tmpdir(), m);
        db_t *db = open_db(dir, modes[m]);
        REQUIRE(db);
        enum { N = 50 };
        ack_t acks[N];
        memset(acks, 0, sizeof acks);
        for (int i = 0; i < N; i++) {
            db_batch_t *b = db_batch_new();
            for (int s = 0; s < 20; s++) {
                char job[16];
                snprintf(job, sizeof job, "j%d", s);
                sample(b, "m", job, i * 1000, i * 100 + s);
            }
            REQUIRE_OK(db_commit(db, b, on_ack, &acks[i]));
            if (i % 7 == 0)
                db_poll(db);
        }
        wait_acks(db, acks, N);
        for (int i = 0; i < N; i++)
            CHECK_EQ_INT(acks[i].status, 0);
        /* More commits that are never waited for: may or may not survive. */
        for (int i = N; i < N + 5; i++) {
            db_batch_t *b = db_batch_new();
            sample(b, "m", "j0", i * 1000, i * 100);
            db_commit(db, b, NULL, NULL);
        }
        db__abandon(db);
        db = open_db(dir, modes[m]);
        REQUIRE(db);
        static int64_t ts[4000];
        static double vs[4000];
        size_t ns;
        size_t n = read_series(db, "m{job=\"j3\"}", INT64_MIN, INT64_MAX, ts, vs, 4000, &ns);
        CHECK_EQ_INT(n, N);
        for (size_t i = 0; i < n && i < N; i++) {
            CHECK_EQ_INT(ts[i], (int64_t)i * 1000);
            CHECK_EQ_DBL(vs[i], (double)i * 100 + 3);
        }
        n = read_series(db, "m", INT64_MIN, INT64_MAX, ts, vs, 4000, &ns);
        CHECK(n >= N * 20 && n <= N * 20 + 5);
        CHECK_EQ_INT(ns, 20);
        /* A second crash right after replay changes nothing. */
        db__abandon(db);
        db = open_db(dir, modes[m]);
        REQUIRE(db);
        CHECK(read_series(db, "m", INT64_MIN, INT64_MAX, ts, vs, 4000, &ns) >= N * 20);
        db_close(db);
    }
}

static char *last_segment(const char *dir, char *out, size_t n)
{
    char wal[4200];
    snprintf(wal, sizeof wal, "%s/wal", dir);
    DIR *d = opendir(wal);
    struct dirent *e;
    unsigned long best = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || strlen(e->d_name) != 8)
            continue;
        unsigned long seq = strtoul(e->d_name, NULL, 16);
        char p[4300];
        snprintf(p, sizeof p, "%s/%08lx", wal, seq);
        struct stat st;
        if (stat(p, &st) == 0 && st.st_size > 0 && seq > best)
            best = seq;
    }
    closedir(d);
    snprintf(out, n, "%s/%08lx", wal, best);
    return out;
}

TEST(torn_tail_truncated_on_open)
{
    const char *dir = test_tmpdir();
    db_t *db = open_db(dir, WAL_FSYNC_BATCH);
    REQUIRE(db);
    db_batch_t *b = db_batch_new();
    for (int i = 0; i < 10; i++)
        sample(b, "x", "a", i * 1000, i);
    ack_t a;
    REQUIRE_OK(commit_wait(db, b, &a));
    db__abandon(db);
    char seg[4400];
    last_segment(dir, seg, sizeof seg);
    int fd = open(seg, O_WRONLY | O_APPEND);
    uint8_t torn[] = {200, 0, 0, 0, 9, 9, 9, 9, WAL_REC_SAMPLES, 1, 2, 3};
    CHECK_EQ_INT(write(fd, torn, sizeof torn), (long long)sizeof torn);
    close(fd);
    quiet();
    db = open_db(dir, WAL_FSYNC_BATCH);
    loud();
    REQUIRE(db);
    db_stats_t st;
    db_get_stats(db, &st);
    CHECK_EQ_U64(st.wal_corrupt_truncations, 1);
    CHECK(st.wal_replay_records >= 2);
    int64_t ts[20];
    double vs[20];
    size_t ns;
    CHECK_EQ_INT(read_series(db, "x", INT64_MIN, INT64_MAX, ts, vs, 20, &ns), 10);
    db_close(db);
}

TEST(wal_faults_ack_nothing_after_failure)
{
    /* kind 0: k-th write fails; 1: k-th write torn; 2: k-th fsync fails. */
    for (int kind = 0; kind < 3; kind++) {
        for (int k = 1; k <= 5; k += 2) {
            char dir[4096];
            snprintf(dir, sizeof dir, "%s/f%d_%d", test_tmpdir(), kind, k);
            db_t *db = open_db(dir, WAL_FSYNC_ALWAYS);
            REQUIRE(db);
            quiet();
            wal__fault_set(kind == 0 ? k : 0, kind == 1 ? k : 0, kind == 2 ? k : 0);
            enum { N = 12 };
            ack_t acks[N];
            memset(acks, 0, sizeof acks);
            for (int i = 0; i < N; i++) {
                db_batch_t *b = db_batch_new();
                sample(b, "f", "a", i * 1000, i);
                REQUIRE_OK(db_commit(db, b, on_ack, &acks[i]));
                wait_acks(db, &acks[i], 1);
            }
            int first_fail = -1;
            for (int i = 0; i < N; i++) {
                CHECK_EQ_INT(acks[i].calls, 1);
                if (acks[i].status && first_fail < 0)
                    first_fail = i;
                if (first_fail >= 0)
                    CHECK_EQ_INT(acks[i].status, ERR_IO); /* nothing acked after a failure */
            }
            CHECK(first_fail >= 0);
            db__abandon(db);
            wal__fault_set(0, 0, 0);
            db = open_db(dir, WAL_FSYNC_ALWAYS);
            loud();
            REQUIRE(db);
            int64_t ts[N];
            double vs[N];
            size_t ns;
            size_t n = read_series(db, "f", INT64_MIN, INT64_MAX, ts, vs, N, &ns);
            /* Every acknowledged sample survived, in order, once. */
            CHECK(n >= (size_t)first_fail);
            for (size_t i = 0; i < n && i < N; i++)
                CHECK_EQ_INT(ts[i], (int64_t)i * 1000);
            db_close(db);
        }
    }
}

TEST(order_rules_and_reasons)
{
    const char *dir = test_tmpdir();
    db_opts_t o;
    db_opts_default(&o);
    o.dir = dir;
    o.retention_ms = 0;
    o.ooo_window_ms = 60000;
    db_t *db = open_opts(&o);
    REQUIRE(db);
    db_batch_t *b = db_batch_new();
    sample(b, "o", "a", 1000000, 1);
    sample(b, "o", "a", 1000000, 1);         /* same value: dropped silently */
    sample(b, "o", "a", 1000000 - 30000, 2); /* within the window */
    sample(b, "o", "a", 1000000 - 90000, 3); /* too far back */
    sample(b, "o", "a", 1000000, 7);         /* same ts, other value */
    label_t bad[] = {{STR("a"), STR("1")}, {STR("a"), STR("2")}};
    labels_t lb = {bad, 2};
    db_batch_add_sample(b, &lb, 1, 1);
    ack_t a;
    REQUIRE_OK(commit_wait(db, b, &a));
    CHECK_EQ_U64(a.res.samples_accepted, 3);
    CHECK_EQ_U64(a.res.samples_rejected, 3);
    CHECK(strstr(a.res.reject_reason,
                 "out of order sample for series {__name__=\"o\", job=\"a\"}") != NULL);
    int64_t ts[10];
    double vs[10];
    size_t ns;
    CHECK_EQ_INT(read_series(db, "o", INT64_MIN, INT64_MAX, ts, vs, 10, &ns), 2);
    CHECK_EQ_INT(ts[0], 1000000 - 30000);
    CHECK_EQ_DBL(vs[1], 1);
    /* Retention refuses samples older than the retention period. */
    db_close(db);
    o.retention_ms = 3600000;
    db = open_opts(&o);
    REQUIRE(db);
    b = db_batch_new();
    sample(b, "r", "a", clock_now_ms() - 7200000, 1);
    sample(b, "r", "a", clock_now_ms(), 1);
    REQUIRE_OK(commit_wait(db, b, &a));
    CHECK_EQ_U64(a.res.samples_rejected, 1);
    CHECK(strstr(a.res.reject_reason, "too old") != NULL);
    db_close(db);
}

/* Consecutive samples of one label set share one copy in the batch and one lookup at commit;
 * a caller rewriting its label array in place between samples still gets what it wrote. */
TEST(batch_runs_share_labels)
{
    const char *dir = test_tmpdir();
    db_t *db = open_db(dir, WAL_FSYNC_BATCH);
    REQUIRE(db);
    db_batch_t *b = db_batch_new();
    label_t l[] = {{STR("job"), STR("x")}, {STR("empty"), STR("")}, {STR("__name__"), STR("m")}};
    labels_t ls = {l, 3};
    for (int i = 1; i <= 3; i++)
        db_batch_add_sample(b, &ls, i * 1000, i);
    l[0].value = STR("y"); /* same array, other series */
    db_batch_add_sample(b, &ls, 4000, 4);
    db_batch_add_sample(b, &ls, 5000, 5);
    l[0].value = STR("x"); /* back to the first */
    db_batch_add_sample(b, &ls, 6000, 6);
    label_t dup[] = {{STR("a"), STR("1")}, {STR("a"), STR("2")}};
    labels_t ld = {dup, 2};
    db_batch_add_sample(b, &ld, 1000, 1);
    db_batch_add_sample(b, &ld, 2000, 2);
    ack_t a;
    REQUIRE_OK(commit_wait(db, b, &a));
    CHECK_EQ_U64(a.res.samples_accepted, 6);
    CHECK_EQ_U64(a.res.samples_rejected, 2);
    int64_t ts[10];
    double vs[10];
    size_t ns;
    CHECK_EQ_INT(read_series(db, "m{job=\"x\"}", INT64_MIN, INT64_MAX, ts, vs, 10, &ns), 4);
    CHECK_EQ_INT(ns, 1);
    CHECK_EQ_DBL(vs[3], 6);
    CHECK_EQ_INT(read_series(db, "m{job=\"y\"}", INT64_MIN, INT64_MAX, ts, vs, 10, &ns), 2);
    CHECK_EQ_INT(ts[0], 4000);
    CHECK_EQ_INT(read_series(db, "m{empty=\"\"}", INT64_MIN, INT64_MAX, ts, vs, 10, &ns), 6);
    CHECK_EQ_INT(ns, 2);
    db_close(db);
}

/* Deltas accumulate into a cumulative series that starts at 0 at the first delta's start time
 * (when given and earlier), and keeps counting across a crash and a clean restart without a
 * second zero. */
TEST(delta_accumulates_across_restarts)
{
    const char *dir = test_tmpdir();
    db_t *db = open_db(dir, WAL_FSYNC_BATCH);
    REQUIRE(db);
    label_t l[] = {{STR("__name__"), STR("cost_total")}};
    labels_t ls = {l, 1};
    label_t lo[] = {{STR("__name__"), STR("other_total")}};
    labels_t lso = {lo, 1};
    db_batch_t *b = db_batch_new();
    db_batch_add_delta(b, &ls, 500, 1000, 1.5);
    db_batch_add_delta(b, &ls, 1000, 2000, 2);
    db_batch_add_delta(b, &ls, 1000, 2000, 5);  /* out of order for a delta: refused */
    db_batch_add_delta(b, &lso, 2000, 2000, 7); /* start not before the point: no zero */
    ack_t a;
    REQUIRE_OK(commit_wait(db, b, &a));
    CHECK_EQ_U64(a.res.samples_accepted, 3);
    CHECK_EQ_U64(a.res.samples_rejected, 1);
    db__abandon(db); /* crash: the WAL carries the zero and the cumulative values */
    db = open_db(dir, WAL_FSYNC_BATCH);
    REQUIRE(db);
    b = db_batch_new();
    db_batch_add_delta(b, &ls, 2000, 3000, 10);
    REQUIRE_OK(commit_wait(db, b, &a));
    db_close(db); /* clean: block + checkpoint with the last value */
    db = open_db(dir, WAL_FSYNC_BATCH);
    REQUIRE(db);
    b = db_batch_new();
    db_batch_add_delta(b, &ls, 3000, 4000, 0.5);
    REQUIRE_OK(commit_wait(db, b, &a));
    int64_t ts[10];
    double vs[10];
    size_t ns;
    REQUIRE(read_series(db, "cost_total", INT64_MIN, INT64_MAX, ts, vs, 10, &ns) == 5);
    CHECK_EQ_INT(ts[0], 500);
    CHECK_EQ_DBL(vs[0], 0);
    CHECK_EQ_DBL(vs[1], 1.5);
    CHECK_EQ_DBL(vs[2], 3.5);
    CHECK_EQ_DBL(vs[3], 13.5);
    CHECK_EQ_INT(ts[4], 4000);
    CHECK_EQ_DBL(vs[4], 14);
    CHECK_EQ_INT(read_series(db, "other_total", INT64_MIN, INT64_MAX, ts, vs, 10, &ns), 1);
    db_close(db);
}

TEST(stale_nan_bit_exact)
{
    const char *dir = test_tmpdir();
    db_t *db = open_db(dir, WAL_FSYNC_BATCH);
    REQUIRE(db);
    uint64_t bits = 0x7ff0000000000002ULL;
    double stale;
    memcpy(&stale, &bits, 8);
    db_batch_t *b = db_batch_new();
    sample(b, "s", "a", 1000, 1);
    sample(b, "s", "a", 2000, stale);
    ack_t a;
    REQUIRE_OK(commit_wait(db, b, &a));
    db__abandon(db);
    for (int round = 0; round < 2; round++) {
        db = open_db(dir, WAL_FSYNC_BATCH);
        REQUIRE(db);
        int64_t ts[4];
        double vs[4];
        size_t ns;
        REQUIRE(read_series(db, "s", INT64_MIN, INT64_MAX, ts, vs, 4, &ns) == 2);
        uint64_t got;
        memcpy(&got, &vs[1], 8);
        CHECK_EQ_U64(got, bits);
        db_close(db); /* second round reads it from the block */
    }
}

TEST(seek_and_ooo_merge_on_read)
{
    const char *dir = test_tmpdir();
    db_t *db = open_db(dir, WAL_FSYNC_OFF);
    REQUIRE(db);
    db_batch_t *b = db_batch_new();
    for (int i = 0; i < 300; i += 2)
        sample(b, "q", "a", i * 1000, i);
    for (int i = 299; i > 290; i -= 2)
        sample(b, "q", "a", i * 1000, i); /* out of order, merged on read */
    ack_t a;
    REQUIRE_OK(commit_wait(db, b, &a));
    CHECK_EQ_U64(a.res.samples_accepted, 155);
    arena_t ar;
    arena_init(&ar, 0);
    matcher_t m;
    matcher_init(&m, MATCH_EQ, STR("__name__"), STR("q"), NULL);
    db_series_iter_t *it;
    err_t err;
    REQUIRE_OK(db_select(db, &m, 1, 100000, 298000, &ar, &it, &err));
    REQUIRE(db_series_next(it));
    int64_t t;
    double v;
    REQUIRE(db_sample_next(it, &t, &v));
    CHECK_EQ_INT(t, 100000);
    db_sample_seek(it, 291000);
    int64_t want[] = {291000, 292000, 293000, 294000, 295000, 296000, 297000, 298000};
    for (size_t i = 0; i < 8; i++) {
        REQUIRE(db_sample_next(it, &t, &v));
        CHECK_EQ_INT(t, want[i]);
        CHECK_EQ_DBL(v, want[i] / 1000);
    }
    CHECK(!db_sample_next(it, &t, &v));
    db_sample_seek(it, 150500); /* backwards */
    REQUIRE(db_sample_next(it, &t, &v));
    CHECK_EQ_INT(t, 152000);
    CHECK(!db_series_next(it));
    arena_deinit(&ar);
    db_close(db);
}

static size_t count_blocks(const char *dir)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/blocks", dir);
    DIR *d = opendir(p);
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    if (d)
        closedir(d);
    return n;
}

TEST(head_cut_compaction_retention)
{
    const char *dir = test_tmpdir();
    db_opts_t o;
    db_opts_default(&o);
    o.dir = dir;
    o.retention_ms = 0;
    o.retention_bytes = 0;
    o.block_range_ms = 3600000; /* 1h head; 12h and 3.5d compaction windows */
    db_t *db = open_opts(&o);
    REQUIRE(db);
    ack_t a;
    /* 10 hours of data for 5 series, cut every hour. */
    for (int h = 0; h < 10; h++) {
        db_batch_t *b = db_batch_new();
        for (int s = 0; s < 5; s++)
            for (int k = 0; k < 240; k++) {
                char job[16];
                snprintf(job, sizeof job, "j%d", s);
                sample(b, "c", job, (int64_t)h * 3600000 + k * 15000, h * 1000 + k);
            }
        REQUIRE_OK(commit_wait(db, b, &a));
        db_maintain(db, (int64_t)h * 3600000 + 3600000); /* windows still open */
    }
    db_stats_t st;
    db_get_stats(db, &st);
    CHECK(st.blocks >= 4); /* a cut once the head spans an hour */
    CHECK_EQ_U64(st.block_samples + st.head_samples, 5 * 240 * 10);
    static int64_t ts[20000];
    static double vs[20000];
    size_t ns;
    CHECK_EQ_INT(read_series(db, "c", INT64_MIN, INT64_MAX, ts, vs, 20000, &ns), 12000);
    CHECK_EQ_INT(ns, 5);
    CHECK_EQ_INT(read_series(db, "c{job=\"j2\"}", INT64_MIN, INT64_MAX, ts, vs, 20000, &ns), 2400);
    for (size_t i = 1; i < 2400; i++)
        CHECK(ts[i] > ts[i - 1]);
    /* Once the 12h window has passed, its blocks merge into one. */
    db_maintain(db, 13LL * 3600000);
    db_maintain(db, 13LL * 3600000); /* second round unmaps the retired inputs */
    db_get_stats(db, &st);
    CHECK_EQ_U64(st.blocks, 1);
    CHECK_EQ_U64(st.block_samples + st.head_samples, 12000);
    CHECK_EQ_U64(count_blocks(dir), 1);
    CHECK_EQ_INT(read_series(db, "c", 3600000, 3600000 + 15000 * 9, ts, vs, 20000, &ns), 50);
    /* Overlapping data (out-of-order backfill into an old hour) merges and dedupes. */
    db_close(db);
    db = open_opts(&o);
    REQUIRE(db);
    db_batch_t *b = db_batch_new();
    sample(b, "c", "new", 5000, 1);
    sample(b, "c", "new2", 0, 0);
    sample(b, "c", "j0", 0, 0); /* existing series: far beyond the out-of-order window */
    REQUIRE_OK(commit_wait(db, b, &a));
    CHECK_EQ_U64(a.res.samples_accepted, 2);
    db_close(db); /* cut: a block overlapping the big one */
    db = open_opts(&o);
    REQUIRE(db);
    db_maintain(db, 13LL * 3600000);
    db_get_stats(db, &st);
    CHECK_EQ_U64(st.blocks, 1);
    CHECK_EQ_U64(st.block_samples, 12002);
    /* Retention by age drops whole blocks older than the period. */
    db_close(db);
    o.retention_ms = 3600000;
    db = open_opts(&o);
    REQUIRE(db);
    quiet();
    db_maintain(db, 20LL * 3600000);
    loud();
    db_get_stats(db, &st);
    CHECK_EQ_U64(st.blocks, 0);
    CHECK_EQ_INT(read_series(db, "c", INT64_MIN, INT64_MAX, ts, vs, 20000, &ns), 0);
    db_close(db);
}

TEST(retention_by_size_drops_oldest)
{
    const char *dir = test_tmpdir();
    db_opts_t o;
    db_opts_default(&o);
    o.dir = dir;
    o.retention_ms = 0;
    o.block_range_ms = 1800000;
    o.retention_bytes = 1ULL << 40;
    db_t *db = open_opts(&o);
    REQUIRE(db);
    ack_t a;
    for (int h = 0; h < 4; h++) {
        db_batch_t *b = db_batch_new();
        for (int k = 0; k < 100; k++)
            sample(b, "z", "a", (int64_t)h * 3600000 + k * 36000, k * 1.1);
        REQUIRE_OK(commit_wait(db, b, &a));
        db_maintain(db, (int64_t)h * 3600000 + 3600000);
    }
    db_stats_t st;
    db_get_stats(db, &st);
    uint64_t blocks = st.blocks;
    CHECK(blocks >= 3);
    db_close(db);
    o.retention_bytes = st.block_bytes / 2;
    db = open_opts(&o);
    REQUIRE(db);
    quiet();
    db_maintain(db, 4LL * 3600000);
    loud();
    db_get_stats(db, &st);
    CHECK(st.blocks < blocks);
    CHECK(st.blocks >= 1);
    CHECK(st.block_bytes + st.wal_bytes_on_disk <= o.retention_bytes);
    /* The newest data survived, the oldest went. */
    int64_t ts[1000];
    double vs[1000];
    size_t ns;
    size_t n = read_series(db, "z", INT64_MIN, INT64_MAX, ts, vs, 1000, &ns);
    CHECK(n > 0 && n < 400);
    CHECK(ts[0] >= 3600000);
    db_close(db);
}

static void span_of(db_span_t *s, uint8_t trace, uint8_t id, int64_t start)
{
    memset(s, 0, sizeof *s);
    memset(s->trace_id, trace, 16);
    memset(s->span_id, id, 8);
    s->start_ns = start;
    s->end_ns = start + 1000;
    s->name = STR("op");
    s->service_name = STR("svc");
    s->kind = 2;
    s->resource_pb = STR("");
    s->scope_pb = STR("");
    s->span_pb = STR("");
}

static int trace_n;
static int64_t trace_prev;
static void trace_cb(void *arg, const db_span_t *s)
{
    (void)arg;
    CHECK(s->start_ns >= trace_prev);
    trace_prev = s->start_ns;
    CHECK_EQ_STRN(s->service_name, "svc");
    trace_n++;
}

static int logs_n;
static bool logs_cb(void *arg, const db_log_entry_t *e)
{
    (void)arg;
    CHECK_EQ_STRN(labels_get(e->stream, "app"), "web");
    logs_n++;
    return true;
}

TEST(spans_and_logs_round_trip)
{
    const char *dir = test_tmpdir();
    db_t *db = open_db(dir, WAL_FSYNC_BATCH);
    REQUIRE(db);
    db_batch_t *b = db_batch_new();
    db_span_t s;
    for (int i = 0; i < 5; i++) {
        span_of(&s, 7, (uint8_t)(i + 1), 1000000000LL * (5 - i));
        db_batch_add_span(b, &s);
    }
    span_of(&s, 8, 9, 1000000000LL);
    db_batch_add_span(b, &s);
    label_t sl[] = {{STR("app"), STR("web")}};
    labels_t stream = {sl, 1};
    for (int i = 0; i < 10; i++)
        db_batch_add_log(b, &stream, 1000000000LL * i, STR("hello"), NULL);
    db_batch_add_log(b, &stream, 0, STR("hello"), NULL); /* exact duplicate: dropped */
    ack_t a;
    REQUIRE_OK(commit_wait(db, b, &a));
    CHECK_EQ_U64(a.res.spans_accepted, 6);
    CHECK_EQ_U64(a.res.logs_accepted, 11);
    uint8_t tid[16];
    memset(tid, 7, 16);
    /* Head, after a crash (WAL replay), after a clean close (block). */
    for (int round = 0; round < 3; round++) {
        trace_n = 0;
        trace_prev = INT64_MIN;
        CHECK_OK(db_trace_get(db, tid, 0, 0, trace_cb, NULL));
        CHECK_EQ_INT(trace_n, 5);
        uint8_t none[16] = {1};
        CHECK_EQ_INT(db_trace_get(db, none, 0, 0, trace_cb, NULL), ERR_NOTFOUND);
        logs_n = 0;
        matcher_t m;
        matcher_init(&m, MATCH_EQ, STR("app"), STR("web"), NULL);
        err_t err;
        CHECK_OK(db_logs_select(db, &m, 1, 0, INT64_MAX, false, 0, logs_cb, NULL, &err));
        CHECK_EQ_INT(logs_n, 10);
        db_stats_t st;
        db_get_stats(db, &st);
        CHECK_EQ_U64(st.head_spans + st.block_spans, 6);
        CHECK_EQ_U64(st.head_log_entries + st.block_log_entries, 10);
        if (round == 0)
            db__abandon(db);
        else
            db_close(db);
        db = open_db(dir, WAL_FSYNC_BATCH);
        REQUIRE(db);
    }
    db_close(db);
}

TEST(closed_and_null_callbacks)
{
    const char *dir = test_tmpdir();
    db_t *db = open_db(dir, WAL_FSYNC_BATCH);
    REQUIRE(db);
    db_batch_t *b = db_batch_new();
    sample(b, "n", "a", 1, 1);
    CHECK_OK(db_commit(db, b, NULL, NULL));
    /* An empty batch completes too. */
    ack_t a;
    REQUIRE_OK(commit_wait(db, db_batch_new(), &a));
    CHECK_EQ_INT(a.status, 0);
    db_close(db);
}

TEST(head_max_bytes_cuts_on_commit)
{
    const char *dir = test_tmpdir();
    db_opts_t o;
    db_opts_default(&o);
    o.dir = dir;
    o.retention_ms = 0;
    o.head_max_bytes = 64 << 10;
    db_t *db = open_opts(&o);
    REQUIRE(db);
    ack_t a;
    for (int r = 0; r < 20; r++) {
        db_batch_t *b = db_batch_new();
        for (int s = 0; s < 50; s++) {
            char job[16];
            snprintf(job, sizeof job, "j%d", s);
            for (int k = 0; k < 20; k++)
                sample(b, "big", job, (int64_t)(r * 20 + k) * 1000, k * 0.37 + r);
        }
        REQUIRE_OK(commit_wait(db, b, &a));
    }
    db_stats_t st;
    db_get_stats(db, &st);
    CHECK(st.blocks >= 1);
    CHECK_EQ_U64(st.block_samples + st.head_samples, 20 * 50 * 20);
    static int64_t ts[20000];
    static double vs[20000];
    size_t ns;
    CHECK_EQ_INT(read_series(db, "big", INT64_MIN, INT64_MAX, ts, vs, 20000, &ns), 20000);
    db_close(db);
}

/* Live series survive a cut: their memory must not count toward the next one, or a head with
 * more series than head_max_bytes holds would be cut by every commit (found importing 100k tests,
 * whose span metrics kept the server writing blocks without pause). */
TEST(head_max_bytes_ignores_series_that_survive_a_cut)
{
    const char *dir = test_tmpdir();
    db_opts_t o;
    db_opts_default(&o);
    o.dir = dir;
    o.retention_ms = 0;
    o.head_max_bytes = 64 << 10;
    db_t *db = open_opts(&o);
    REQUIRE(db);
    ack_t a;
    /* 20,000 series: their labels and postings alone are over 64 KiB */
    db_batch_t *b = db_batch_new();
    for (int s = 0; s < 20000; s++) {
        char job[24];
        snprintf(job, sizeof job, "series-%d", s);
        sample(b, "many", job, 1000, s);
    }
    REQUIRE_OK(commit_wait(db, b, &a));
    db_maintain(db, clock_now_ms());
    db_stats_t st;
    db_get_stats(db, &st);
    CHECK(st.blocks >= 1);
    CHECK_EQ_U64(st.head_samples, 0);
    /* a few more samples to the same series: no new cut, by commit or by maintenance */
    for (int r = 1; r <= 5; r++) {
        b = db_batch_new();
        for (int s = 0; s < 20000; s += 500) {
            char job[24];
            snprintf(job, sizeof job, "series-%d", s);
            sample(b, "many", job, 1000 + r * 1000, s);
        }
        REQUIRE_OK(commit_wait(db, b, &a));
        db_maintain(db, clock_now_ms());
    }
    db_get_stats(db, &st);
    CHECK_EQ_U64(st.head_samples, 5 * 40); /* still in the head: nothing was cut */
    db_close(db);
}

TEST(crash_between_block_and_checkpoint_dedupes)
{
    const char *dir = test_tmpdir();
    char cmd[8192];
    db_t *db = open_db(dir, WAL_FSYNC_BATCH);
    REQUIRE(db);
    db_batch_t *b = db_batch_new();
    for (int i = 0; i < 10; i++)
        sample(b, "d", "a", i * 1000, i);
    db_span_t s;
    span_of(&s, 3, 1, 1000);
    db_batch_add_span(b, &s);
    ack_t a;
    REQUIRE_OK(commit_wait(db, b, &a));
    db__abandon(db);
    /* Keep the WAL as it was before the cut, cut, then put the old WAL back: the state after a
     * crash that hit between writing the block and deleting the old segments. */
    snprintf(cmd, sizeof cmd, "cp -r '%s/wal' '%s/wal.bak'", dir, dir);
    REQUIRE(system(cmd) == 0);
    db = open_db(dir, WAL_FSYNC_BATCH);
    REQUIRE(db);
    db_close(db);
    snprintf(cmd, sizeof cmd, "rm -rf '%s/wal' && mv '%s/wal.bak' '%s/wal'", dir, dir, dir);
    REQUIRE(system(cmd) == 0);
    db = open_db(dir, WAL_FSYNC_BATCH);
    REQUIRE(db);
    db_stats_t st;
    db_get_stats(db, &st);
    CHECK_EQ_U64(st.block_samples, 10);
    CHECK_EQ_U64(st.head_samples, 10);
    int64_t ts[40];
    double vs[40];
    size_t ns;
    CHECK_EQ_INT(read_series(db, "d", INT64_MIN, INT64_MAX, ts, vs, 40, &ns), 10);
    uint8_t tid[16];
    memset(tid, 3, 16);
    trace_n = 0;
    trace_prev = INT64_MIN;
    CHECK_OK(db_trace_get(db, tid, 0, 0, trace_cb, NULL));
    CHECK_EQ_INT(trace_n, 1);
    db_close(db); /* a second, overlapping block */
    db = open_db(dir, WAL_FSYNC_BATCH);
    REQUIRE(db);
    db_get_stats(db, &st);
    CHECK_EQ_U64(st.blocks, 2);
    CHECK_EQ_INT(read_series(db, "d", INT64_MIN, INT64_MAX, ts, vs, 40, &ns), 10);
    /* Once their window has passed, compaction folds them into one, deduplicated. */
    db_maintain(db, clock_now_ms() + 30LL * 24 * 3600 * 1000);
    db_get_stats(db, &st);
    CHECK_EQ_U64(st.blocks, 1);
    CHECK_EQ_U64(st.block_samples, 10);
    CHECK_EQ_INT(read_series(db, "d", INT64_MIN, INT64_MAX, ts, vs, 40, &ns), 10);
    for (int i = 0; i < 10; i++)
        CHECK_EQ_INT(ts[i], i * 1000);
    trace_n = 0;
    trace_prev = INT64_MIN;
    CHECK_OK(db_trace_get(db, tid, 0, 0, trace_cb, NULL));
    CHECK_EQ_INT(trace_n, 1);
    db_close(db);
}

/* ---- read-only opens ---- */

typedef struct snap {
    char **v;
    size_t n, cap;
} snap_t;

static void snap_walk(snap_t *s, const char *root, const char *rel)
{
    char path[4600];
    snprintf(path, sizeof path, "%s%s", root, rel);
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    uint32_t crc = 0;
    if (S_ISREG(st.st_mode)) {
        int fd = open(path, O_RDONLY);
        char buf[65536];
        ssize_t r;
        while (fd >= 0 && (r = read(fd, buf, sizeof buf)) > 0)
            crc = crc32c(crc, buf, (size_t)r);
        if (fd >= 0)
            close(fd);
    }
    char line[5000];
    snprintf(line, sizeof line, "%s mode=%o size=%lld mtime=%lld.%09ld ctime=%lld.%09ld crc=%08x\n",
             rel[0] ? rel : ".", (unsigned)st.st_mode, (long long)st.st_size,
             (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec,
             st.st_ctim.tv_nsec, crc);
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
    }
    s->v[s->n++] = strdup(line);
    if (!S_ISDIR(st.st_mode))
        return;
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char sub[4600];
        snprintf(sub, sizeof sub, "%s/%s", rel, e->d_name);
        snap_walk(s, root, sub);
    }
    if (d)
        closedir(d);
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every file and directory under dir with its size, times and a CRC of its bytes, one per line,
 * sorted. The caller frees the result. */
static char *snapshot(const char *dir)
{
    snap_t s = {NULL, 0, 0};
    snap_walk(&s, dir, "");
    qsort(s.v, s.n, sizeof *s.v, cmp_cstr);
    size_t len = 1;
    for (size_t i = 0; i < s.n; i++)
        len += strlen(s.v[i]);
    char *out = malloc(len);
    out[0] = 0;
    for (size_t i = 0; i < s.n; i++) {
        strcat(out, s.v[i]);
        free(s.v[i]);
    }
    free(s.v);
    return out;
}

static void ro_opts(db_opts_t *o, const char *dir)
{
    db_opts_default(o);
    o->dir = dir;
    o->retention_ms = 0;
    o->read_only = true;
}

/* Checks what a read-only open of dir holds: n samples of x{job="a"} (ts = i * 1000, value = i),
 * one span of trace 5 and 3 log lines. */
static void check_ro_contents(db_t *db, int n)
{
    int64_t ts[64];
    double vs[64];
    size_t ns;
    CHECK_EQ_INT(read_series(db, "x", INT64_MIN, INT64_MAX, ts, vs, 64, &ns), n);
    CHECK_EQ_INT(ns, 1);
    for (int i = 0; i < n && i < 64; i++) {
        CHECK_EQ_INT(ts[i], i * 1000);
        CHECK_EQ_DBL(vs[i], i);
    }
    uint8_t tid[16];
    memset(tid, 5, 16);
    trace_n = 0;
    trace_prev = INT64_MIN;
    CHECK_OK(db_trace_get(db, tid, 0, 0, trace_cb, NULL));
    CHECK_EQ_INT(trace_n, 1);
    logs_n = 0;
    matcher_t m;
    matcher_init(&m, MATCH_EQ, STR("app"), STR("web"), NULL);
    err_t err;
    CHECK_OK(db_logs_select(db, &m, 1, 0, INT64_MAX, false, 0, logs_cb, NULL, &err));
    CHECK_EQ_INT(logs_n, 3);
    arena_t ar;
    arena_init(&ar, 0);
    str_t *v;
    size_t nv;
    CHECK_OK(db_label_values(db, STR("job"), NULL, 0, INT64_MIN, INT64_MAX, &ar, &v, &nv, &err));
    CHECK_EQ_INT(nv, 1);
    arena_deinit(&ar);
}

TEST(read_only_open_reads_acked_data_and_changes_nothing)
{
    const char *dir = test_tmpdir();
    char cmd[8192];
    db_t *db = open_db(dir, WAL_FSYNC_BATCH);
    REQUIRE(db);
    db_batch_t *b = db_batch_new();
    for (int i = 0; i < 10; i++)
        sample(b, "x", "a", i * 1000, i);
    db_span_t s;
    span_of(&s, 5, 1, 1000);
    db_batch_add_span(b, &s);
    label_t sl[] = {{STR("app"), STR("web")}};
    labels_t stream = {sl, 1};
    for (int i = 0; i < 3; i++)
        db_batch_add_log(b, &stream, 1000000000LL * (i + 1), STR("hello"), NULL);
    ack_t a;
    REQUIRE_OK(commit_wait(db, b, &a));

    /* While a writer holds the directory, a read-only open fails and names it. */
    db_opts_t ro;
    ro_opts(&ro, dir);
    db_t *r;
    err_t err;
    CHECK_EQ_INT(db_open(&ro, &r, &err), ERR_EXISTS);
    char pid[32];
    snprintf(pid, sizeof pid, "process %ld", (long)getpid());
    CHECK(strstr(err.msg, pid) != NULL);

    /* Crash: what was acked is only in the WAL, whose last segment then gets a torn tail. The
     * LOCK file keeps the pid of a writer that is gone. */
    db__abandon(db);
    char seg[4400];
    last_segment(dir, seg, sizeof seg);
    int fd = open(seg, O_WRONLY | O_APPEND);
    uint8_t torn[] = {200, 0, 0, 0, 9, 9, 9, 9, WAL_REC_SAMPLES, 1, 2, 3};
    CHECK_EQ_INT(write(fd, torn, sizeof torn), (long long)sizeof torn);
    close(fd);
    char lock[4200];
    snprintf(lock, sizeof lock, "%s/LOCK", dir);
    fd = open(lock, O_WRONLY | O_TRUNC);
    CHECK_EQ_INT(write(fd, "999999999\n", 10), 10);
    close(fd);
    /* Also an unfinished block directory, which a writer's open would remove. */
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/blocks/0000000000000001.tmp'", dir);
    REQUIRE(system(cmd) == 0);

    char *before = snapshot(dir);
    quiet();
    CHECK_OK(db_open(&ro, &r, &err));
    loud();
    REQUIRE(r);
    check_ro_contents(r, 10);
    db_stats_t st;
    db_get_stats(r, &st);
    CHECK_EQ_U64(st.blocks, 0);
    CHECK_EQ_U64(st.head_samples, 10);
    CHECK_EQ_U64(st.wal_corrupt_truncations, 1); /* found, left in place */
    CHECK(st.wal_replay_records >= 3);
    CHECK(st.wal_segments >= 1);
    CHECK_EQ_U64(st.wal_bytes_written, 0);

    /* Readers share the lock; a writer cannot start meanwhile, and the stale pid is not named. */
    db_t *r2;
    quiet();
    CHECK_OK(db_open(&ro, &r2, &err));
    loud();
    db_close(r2);
    db_opts_t rw;
    db_opts_default(&rw);
    rw.dir = dir;
    db_t *w;
    CHECK_EQ_INT(db_open(&rw, &w, &err), ERR_EXISTS);
    CHECK(strstr(err.msg, "999999999") == NULL);
    CHECK(strstr(err.msg, "in use by another process") != NULL);

    /* Commits are refused without taking the batch; maintenance and polling do nothing. */
    b = db_batch_new();
    sample(b, "x", "a", 100000, 1);
    memset(&a, 0, sizeof a);
    CHECK_EQ_INT(db_commit(r, b, on_ack, &a), ERR_UNSUPPORTED);
    db_batch_free(b);
    CHECK_EQ_INT(db_event_fd(r), -1);
    db_poll(r);
    CHECK_EQ_INT(a.calls, 0);
    db_maintain(r, clock_now_ms() + 365LL * 24 * 3600 * 1000);
    db_close(r);
    char *after = snapshot(dir);
    CHECK_EQ_STR(after, before);
    free(before);
    free(after);

    /* A writer repairs the tail and cuts the head into a block on close; keep the segments of
     * before the cut and put them back afterwards, as a crash between the checkpoint and their
     * deletion would leave them. Then more acked samples go only to the WAL. */
    snprintf(cmd, sizeof cmd, "cp -r '%s/wal' '%s/wal.bak'", dir, dir);
    REQUIRE(system(cmd) == 0);
    quiet();
    db = open_db(dir, WAL_FSYNC_BATCH);
    loud();
    REQUIRE(db);
    db_close(db);
    db = open_db(dir, WAL_FSYNC_BATCH);
    REQUIRE(db);
    b = db_batch_new();
    for (int i = 10; i < 20; i++)
        sample(b, "x", "a", i * 1000, i);
    REQUIRE_OK(commit_wait(db, b, &a));
    CHECK_EQ_U64(a.res.samples_accepted, 10);
    db__abandon(db);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && for f in wal.bak/*; do [ -e \"wal/${f#wal.bak/}\" ] || cp -p \"$f\" wal/; "
             "done && rm -rf wal.bak",
             dir);
    REQUIRE(system(cmd) == 0);

    before = snapshot(dir);
    CHECK(strstr(before, "/wal/00000001 ") != NULL); /* the segment from before the cut */
    CHECK_OK(db_open(&ro, &r, &err));
    REQUIRE(r);
    check_ro_contents(r, 20);
    db_get_stats(r, &st);
    CHECK_EQ_U64(st.blocks, 1);
    CHECK_EQ_U64(st.block_samples, 10);
    CHECK_EQ_U64(st.head_samples, 10); /* replayed from the newest checkpoint on */
    CHECK_EQ_U64(st.wal_corrupt_truncations, 0);
    b = db_batch_new();
    CHECK_EQ_INT(db_commit(r, b, NULL, NULL), ERR_UNSUPPORTED);
    db_batch_free(b);
    db_maintain(r, clock_now_ms() + 365LL * 24 * 3600 * 1000);
    db_close(r);
    after = snapshot(dir);
    CHECK_EQ_STR(after, before);
    free(before);
    free(after);

    /* And the writer still finds everything afterwards. */
    db = open_db(dir, WAL_FSYNC_BATCH);
    REQUIRE(db);
    check_ro_contents(db, 20);
    db_close(db);
}

TEST(read_only_open_creates_nothing)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/missing", test_tmpdir());
    db_opts_t ro;
    ro_opts(&ro, dir);
    db_t *r;
    err_t err;
    CHECK_EQ_INT(db_open(&ro, &r, &err), ERR_NOTFOUND);
    struct stat st;
    CHECK(stat(dir, &st) != 0);
    /* An empty directory (no LOCK, WAL or blocks) opens empty and stays empty. */
    REQUIRE(mkdir(dir, 0755) == 0);
    char *before = snapshot(dir);
    REQUIRE_OK(db_open(&ro, &r, &err));
    db_stats_t ds;
    db_get_stats(r, &ds);
    CHECK_EQ_U64(ds.blocks + ds.head_series + ds.wal_segments, 0);
    db_close(r);
    char *after = snapshot(dir);
    CHECK_EQ_STR(after, before);
    free(before);
    free(after);
}
