/*
 * db.c - the storage facade (store/db.h): opening a data directory, batches, the commit path,
 * completions, stats and close. The rest of the facade lives beside it, sharing struct db through
 * store/internal.h: db_replay.c rebuilds the head from the WAL at open, db_maintain.c cuts the
 * head into blocks, compacts and applies retention, db_read.c answers reads.
 *
 * Commit: samples are resolved to head series (created and logged with a SERIES record before
 * their first sample), checked and appended; accepted samples, changed metadata, spans and log
 * entries are encoded into WAL records and queued; the commit's completion waits in a FIFO until
 * the WAL reports its LSN durable (db_poll), or fails with ERR_IO if the WAL broke first.
 *
 * Open: the LOCK file is flock'd exclusively (its text is the owner's pid, for the error a second
 * process gets), blocks are loaded, the WAL replayed and a fresh segment started. A read-only
 * open (db_opts_t.read_only) takes the lock shared, creates and removes nothing, writes no pid,
 * has no WAL writer, and refuses commits.
 */
#include "store/db.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/varint.h"
#include "store/block.h"
#include "store/format.h"
#include "store/head.h"
#include "store/internal.h"
#include "store/logs.h"
#include "store/spans.h"
#include "store/wal.h"

void db_opts_default(db_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->dir = "./skillscope-data";
    o->retention_ms = 90LL * 24 * 3600 * 1000;
    o->retention_bytes = 10ULL << 30;
    o->fsync_mode = WAL_FSYNC_BATCH;
    o->ooo_window_ms = 10 * 60 * 1000;
    o->block_range_ms = 2 * 3600 * 1000;
    o->head_max_bytes = 64ULL << 20; /* keeps peak RSS under ~100 MiB (about 2 bytes per sample) */
}

void *db__xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "skillscope: out of memory in the storage engine\n");
        abort();
    }
    return q;
}

char *db__path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = db__xrealloc(NULL, n);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* ---- batches ---- */

void *db__grow(void *p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return p;
    size_t ncap = *cap ? *cap * 2 : 16;
    p = db__xrealloc(p, ncap * size);
    *cap = ncap;
    return p;
}

static labels_t copy_labels(arena_t *a, const labels_t *ls)
{
    return ls ? labels_copy(ls, a) : (labels_t){NULL, 0};
}

db_batch_t *db_batch_new(void)
{
    db_batch_t *b = calloc(1, sizeof *b);
    if (!b)
        abort();
    arena_init(&b->arena, 16384);
    return b;
}

void db_batch_free(db_batch_t *b)
{
    if (!b)
        return;
    arena_deinit(&b->arena);
    free(b->samples);
    free(b->meta);
    free(b->spans);
    free(b->logs);
    free(b);
}

static void add_sample(db_batch_t *b, const labels_t *ls, int64_t ts_ms, double v, bool delta,
                       int64_t start_ms)
{
    b->samples = db__grow(b->samples, &b->samples_cap, b->n_samples, sizeof *b->samples);
    db_batch_sample_t *s = &b->samples[b->n_samples++];
    const db_batch_sample_t *prev = b->n_samples > 1 ? s - 1 : NULL;
    /* The caller's array may have been rewritten since: same place and same content. */
    if (prev && ls && ls->n && ls->v == b->last_in.v && ls->n == b->last_in.n &&
        labels_eq(ls, &prev->ls))
        s->ls = prev->ls;
    else
        s->ls = copy_labels(&b->arena, ls);
    b->last_in = ls ? *ls : (labels_t){NULL, 0};
    s->ts_ms = ts_ms;
    s->v = v;
    s->delta = delta;
    s->start_ms = start_ms;
}

void db_batch_add_sample(db_batch_t *b, const labels_t *ls, int64_t ts_ms, double value)
{
    add_sample(b, ls, ts_ms, value, false, 0);
}

void db_batch_add_delta(db_batch_t *b, const labels_t *ls, int64_t start_ms, int64_t ts_ms,
                        double delta)
{
    add_sample(b, ls, ts_ms, delta, true, start_ms);
}

void db_batch_add_metadata(db_batch_t *b, str_t metric, db_mtype_t type, str_t help, str_t unit)
{
    b->meta = db__grow(b->meta, &b->meta_cap, b->n_meta, sizeof *b->meta);
    db_batch_meta_t *m = &b->meta[b->n_meta++];
    m->metric = arena_str(&b->arena, metric);
    m->type = type;
    m->help = arena_str(&b->arena, help);
    m->unit = arena_str(&b->arena, unit);
}

void db_batch_add_span(db_batch_t *b, const db_span_t *s)
{
    b->spans = db__grow(b->spans, &b->spans_cap, b->n_spans, sizeof *b->spans);
    db_span_t *d = &b->spans[b->n_spans++];
    *d = *s;
    d->name = arena_str(&b->arena, s->name);
    d->service_name = arena_str(&b->arena, s->service_name);
    d->resource_pb = arena_str(&b->arena, s->resource_pb);
    d->scope_pb = arena_str(&b->arena, s->scope_pb);
    d->span_pb = arena_str(&b->arena, s->span_pb);
}

void db_batch_add_log(db_batch_t *b, const labels_t *stream, int64_t ts_ns, str_t line,
                      const labels_t *meta)
{
    b->logs = db__grow(b->logs, &b->logs_cap, b->n_logs, sizeof *b->logs);
    db_batch_log_t *e = &b->logs[b->n_logs++];
    e->stream = copy_labels(&b->arena, stream);
    e->ts_ns = ts_ns;
    e->line = arena_str(&b->arena, line);
    e->meta = copy_labels(&b->arena, meta);
}

size_t db_batch_items(const db_batch_t *b)
{
    return b->n_samples + b->n_meta + b->n_spans + b->n_logs;
}

/* ---- WAL record encoders ---- */

void db__enc_series(buf_t *b, uint64_t id, const labels_t *ls)
{
    buf_put_uvarint(b, id);
    labels_encode(b, ls);
}

static void enc_sample(db_t *db, uint64_t id, int64_t ts, double v)
{
    uint8_t *p = buf_reserve(&db->rec_samples, 2 * UVARINT_MAX + 8);
    p += uvarint_put(p, zigzag_enc((int64_t)(id - db->smp_prev_id)));
    p += uvarint_put(p, zigzag_enc((int64_t)((uint64_t)ts - (uint64_t)db->smp_prev_ts)));
    uint64_t x;
    memcpy(&x, &v, 8);
    store_u64le(p, x);
    db->rec_samples.last = p + 8;
    db->smp_prev_id = id;
    db->smp_prev_ts = ts;
}

void db__enc_meta(buf_t *b, str_t metric, db_mtype_t type, str_t help, str_t unit)
{
    buf_put_uvarint(b, metric.len);
    buf_put_str(b, metric);
    buf_putc(b, (char)type);
    buf_put_uvarint(b, help.len);
    buf_put_str(b, help);
    buf_put_uvarint(b, unit.len);
    buf_put_str(b, unit);
}

/* Hands the series and sample records collected so far to the WAL (series first). */
static void flush_records(db_t *db)
{
    if (buf_len(&db->rec_series)) {
        wal_add(db->wal, WAL_REC_SERIES, db->rec_series.pos, buf_len(&db->rec_series));
        buf_clear(&db->rec_series);
    }
    if (buf_len(&db->rec_samples)) {
        wal_add(db->wal, WAL_REC_SAMPLES, db->rec_samples.pos, buf_len(&db->rec_samples));
        buf_clear(&db->rec_samples);
    }
    db->smp_prev_id = 0;
    db->smp_prev_ts = 0;
}

/* ---- open / close ---- */

static int cmp_dblock(const void *a, const void *b)
{
    const block_meta_t *x = block_meta(((const dblock_t *)a)->b);
    const block_meta_t *y = block_meta(((const dblock_t *)b)->b);
    if (x->min_t != y->min_t)
        return x->min_t < y->min_t ? -1 : 1;
    return strcmp(block_id(((const dblock_t *)a)->b), block_id(((const dblock_t *)b)->b));
}

void db__dblock_close(dblock_t *d)
{
    if (d->spans)
        spans_file_close(d->spans);
    if (d->logs)
        logs_file_close(d->logs);
    block_close(d->b);
    memset(d, 0, sizeof *d);
}

int db__dblock_open(const char *dir, dblock_t *d, err_t *err)
{
    memset(d, 0, sizeof *d);
    int rc = block_open(dir, &d->b, err);
    if (rc)
        return rc;
    char path[4200];
    if (block_has_file(d->b, BLOCK_FILE_SPANS)) {
        snprintf(path, sizeof path, "%s/spans", dir);
        rc = spans_file_open(path, &d->spans, err);
    }
    if (!rc && block_has_file(d->b, BLOCK_FILE_LOGS)) {
        snprintf(path, sizeof path, "%s/logs", dir);
        rc = logs_file_open(path, &d->logs, err);
    }
    if (rc)
        db__dblock_close(d);
    return rc;
}

void db__blocks_add(db_t *db, dblock_t d)
{
    db->blocks = db__grow(db->blocks, &db->cap_blocks, db->n_blocks, sizeof *db->blocks);
    db->blocks[db->n_blocks++] = d;
    qsort(db->blocks, db->n_blocks, sizeof *db->blocks, cmp_dblock);
}

static int load_blocks(db_t *db, err_t *err)
{
    DIR *d = opendir(db->blocks_dir);
    if (!d) {
        if (db->o.read_only && errno == ENOENT)
            return 0; /* no block was ever written */
        return err_set(err, ERR_IO, "open %s: %s", db->blocks_dir, strerror(errno));
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *name = e->d_name;
        if (name[0] == '.')
            continue;
        char *path = db__path_join(db->blocks_dir, name);
        size_t len = strlen(name);
        if (len > 4 &&
            (strcmp(name + len - 4, ".tmp") == 0 || strcmp(name + len - 4, ".del") == 0)) {
            if (db->o.read_only) {
                log_info("skipping an unfinished block directory", "dir=%s", path);
            } else {
                log_info("removing an unfinished block directory", "dir=%s", path);
                store__rmtree(path);
            }
        } else if (len == 16 && strspn(name, "0123456789abcdef") == 16) {
            dblock_t blk;
            err_t e2;
            if (db__dblock_open(path, &blk, &e2) == 0)
                db__blocks_add(db, blk);
            else
                log_error("block cannot be opened; leaving it out", "dir=%s error=\"%s\"", path,
                          e2.msg);
        }
        free(path);
    }
    closedir(d);
    return 0;
}

/* Exclusive for a writer, which records its pid in the file; shared for a read-only open, which
 * writes nothing and reads a directory without a LOCK file (never served) unlocked. */
static int take_lock(db_t *db, err_t *err)
{
    bool ro = db->o.read_only;
    char *path = db__path_join(db->dir, "LOCK");
    int fd = ro ? open(path, O_RDONLY | O_CLOEXEC) : open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno, rc = 0;
        if (!ro || e != ENOENT)
            rc = err_set(err, ERR_IO, "open %s: %s", path, strerror(e));
        free(path);
        return rc;
    }
    if (flock(fd, (ro ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
        char buf[32] = {0};
        ssize_t r = pread(fd, buf, sizeof buf - 1, 0);
        long pid = r > 0 ? strtol(buf, NULL, 10) : 0;
        close(fd);
        /* Readers leave the last writer's pid in place: name it only while it runs. */
        if (pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH)
            pid = 0;
        int rc;
        if (pid > 0)
            rc = err_set(err, ERR_EXISTS, "data directory %s is in use by process %ld (lock %s)",
                         db->dir, pid, path);
        else
            rc = err_set(err, ERR_EXISTS,
                         "data directory %s is in use by another process (lock %s)", db->dir, path);
        free(path);
        return rc;
    }
    free(path);
    if (ro) {
        db->lock_fd = fd;
        return 0;
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) == 0 && pwrite(fd, buf, (size_t)n, 0) != n)
        log_warn("cannot record the pid in the lock file", "dir=%s", db->dir);
    db->lock_fd = fd;
    return 0;
}

static void db_free(db_t *db)
{
    for (size_t i = 0; i < db->n_blocks; i++)
        db__dblock_close(&db->blocks[i]);
    for (size_t i = 0; i < db->n_retired; i++)
        db__dblock_close(&db->retired[i]);
    free(db->blocks);
    free(db->retired);
    head_free(db->head);
    if (db->spans)
        spans_head_free(db->spans);
    if (db->logs)
        logs_head_free(db->logs);
    for (size_t i = 0; i < db->q_len; i++) /* completions that never ran (crash simulation) */
        db_batch_free(db->q[(db->q_head + i) % db->q_cap].tap_batch);
    free(db->q);
    buf_deinit(&db->rec_series);
    buf_deinit(&db->rec_samples);
    buf_deinit(&db->rec_meta);
    buf_deinit(&db->rec_other);
    arena_deinit(&db->replay_arena);
    u64map_deinit(&db->replay_alias);
    if (db->lock_fd >= 0)
        close(db->lock_fd);
    free(db->dir);
    free(db->blocks_dir);
    free(db->wal_dir);
    free(db);
}

int db_open(const db_opts_t *opts, db_t **out, err_t *err)
{
    *out = NULL;
    int64_t t0 = clock_mono_ns();
    db_t *db = calloc(1, sizeof *db);
    if (!db)
        abort();
    db->o = *opts;
    db->lock_fd = -1;
    db->dir = strdup(opts->dir && opts->dir[0] ? opts->dir : "./skillscope-data");
    db->o.dir = db->dir;
    db->blocks_dir = db__path_join(db->dir, "blocks");
    db->wal_dir = db__path_join(db->dir, "wal");
    arena_init(&db->replay_arena, 65536);
    u64map_init(&db->replay_alias);
    db->head = head_new(opts->ooo_window_ms);
    db->spans = spans_head_new();
    db->logs = logs_head_new();
    bool ro = opts->read_only;
    int rc = 0;
    struct stat st;
    if (ro && stat(db->dir, &st) != 0) {
        int e = errno;
        rc = err_set(err, e == ENOENT ? ERR_NOTFOUND : ERR_IO, "open %s: %s", db->dir, strerror(e));
    } else if (!ro && mkdir(db->dir, 0755) != 0 && errno != EEXIST) {
        rc = err_set(err, ERR_IO, "create %s: %s", db->dir, strerror(errno));
    }
    if (!rc)
        rc = take_lock(db, err);
    if (!rc && !ro && mkdir(db->blocks_dir, 0755) != 0 && errno != EEXIST)
        rc = err_set(err, ERR_IO, "create %s: %s", db->blocks_dir, strerror(errno));
    if (!rc)
        rc = load_blocks(db, err);
    if (!rc && !ro) {
        wal_opts_t wo = {db->wal_dir, opts->fsync_mode, 0, 0};
        rc = wal_open(&wo, &db->wal, err);
    }
    if (!rc) {
        int64_t r0 = clock_mono_ns();
        rc = db__replay(db, err);
        db->replay_ms = (uint64_t)((clock_mono_ns() - r0) / 1000000);
        u64map_clear(&db->replay_alias);
    }
    if (!rc && !ro)
        rc = wal_start(db->wal, err);
    if (rc) {
        wal_close(db->wal);
        db_free(db);
        return rc;
    }
    wal_stats_t ws = db->ro_wal;
    if (db->wal)
        wal_get_stats(db->wal, &ws);
    log_info("storage opened", "dir=%s mode=%s blocks=%zu series=%zu wal_records=%llu ms=%lld",
             db->dir, ro ? "read-only" : "read-write", db->n_blocks, db->head->n_series,
             (unsigned long long)ws.replay_records, (long long)((clock_mono_ns() - t0) / 1000000));
    *out = db;
    return 0;
}

/* ---- completions ---- */

static void q_push(db_t *db, const completion_t *c)
{
    if (db->q_len == db->q_cap) {
        size_t ncap = db->q_cap ? db->q_cap * 2 : 64;
        completion_t *nq = db__xrealloc(NULL, ncap * sizeof *nq);
        for (size_t i = 0; i < db->q_len; i++)
            nq[i] = db->q[(db->q_head + i) % db->q_cap];
        free(db->q);
        db->q = nq;
        db->q_cap = ncap;
        db->q_head = 0;
    }
    db->q[(db->q_head + db->q_len) % db->q_cap] = *c;
    db->q_len++;
}

static void poke(db_t *db)
{
    uint64_t one = 1;
    ssize_t r = write(wal_event_fd(db->wal), &one, sizeof one);
    (void)r;
}

int db_event_fd(db_t *db) { return db->wal ? wal_event_fd(db->wal) : -1; }

void db_poll(db_t *db)
{
    if (!db->wal)
        return; /* read-only: no commits */
    int werr;
    uint64_t durable = wal_status(db->wal, &werr);
    while (db->q_len) {
        completion_t *c = &db->q[db->q_head];
        bool done = !c->failed && c->lsn <= durable;
        if (!done && !c->failed && !werr)
            break;
        completion_t cur = *c;
        db->q_head = (db->q_head + 1) % db->q_cap;
        db->q_len--;
        if (!done)
            cur.res.status = ERR_IO;
        if (cur.cb)
            cur.cb(cur.arg, &cur.res);
        if (cur.tap_batch) {
            if (done)
                for (size_t i = 0; i < db->n_taps; i++)
                    db->taps[i].fn(db->taps[i].arg, cur.tap_batch, &cur.res);
            db_batch_free(cur.tap_batch);
        }
    }
}

/* ---- taps ---- */

int db_tap_add(db_t *db, db_tap_fn fn, void *arg)
{
    if (db->n_taps == DB_MAX_TAPS)
        return ERR_TOOBIG;
    db->taps[db->n_taps++] = (db_tap_t){fn, arg};
    return 0;
}

void db_tap_remove(db_t *db, db_tap_fn fn, void *arg)
{
    for (size_t i = 0; i < db->n_taps; i++)
        if (db->taps[i].fn == fn && db->taps[i].arg == arg) {
            db->taps[i] = db->taps[--db->n_taps];
            return;
        }
}

size_t db_batch_n_samples(const db_batch_t *b) { return b->n_samples; }

void db_batch_sample_at(const db_batch_t *b, size_t i, const labels_t **ls, int64_t *ts_ms,
                        double *v)
{
    *ls = &b->samples[i].ls;
    *ts_ms = b->samples[i].ts_ms;
    *v = b->samples[i].v;
}

size_t db_batch_n_spans(const db_batch_t *b) { return b->n_spans; }
const db_span_t *db_batch_span_at(const db_batch_t *b, size_t i) { return &b->spans[i]; }
size_t db_batch_n_logs(const db_batch_t *b) { return b->n_logs; }

void db_batch_log_at(const db_batch_t *b, size_t i, db_log_entry_t *e)
{
    const db_batch_log_t *l = &b->logs[i];
    e->stream = &l->stream;
    e->ts_ns = l->ts_ns;
    e->line = l->line;
    e->meta = &l->meta;
}

/* ---- commit ---- */

static void reject(db_commit_result_t *res, const char *what, const labels_t *ls, const char *why)
{
    if (res->reject_reason[0])
        return;
    buf_t b = BUF_INIT;
    buf_printf(&b, "%s for series ", what);
    if (ls)
        labels_format(&b, ls);
    if (why)
        buf_printf(&b, " %s", why);
    snprintf(res->reject_reason, sizeof res->reject_reason, "%s", buf_cstr(&b));
    buf_deinit(&b);
}

/* Drops empty-valued labels and sorts. Returns 0 or ERR_DUPLICATE / ERR_INVAL. */
static int normalize_labels(labels_t *ls)
{
    size_t k = 0;
    for (size_t i = 0; i < ls->n; i++)
        if (ls->v[i].value.len)
            ls->v[k++] = ls->v[i];
    ls->n = k;
    if (!k)
        return ERR_INVAL;
    return labels_sort(ls);
}

static void commit_samples(db_t *db, db_batch_t *b, db_commit_result_t *res, int64_t min_valid)
{
    /* A run of samples sharing one label copy (add_sample) is normalized and looked up once. */
    const label_t *run_v = NULL;
    labels_t run_ls = {NULL, 0};
    int run_rc = 0;
    head_series_t *run_s = NULL;
    for (size_t i = 0; i < b->n_samples; i++) {
        db_batch_sample_t *x = &b->samples[i];
        if (!run_v || x->ls.v != run_v) {
            run_v = x->ls.v;
            run_rc = normalize_labels(&x->ls);
            run_ls = x->ls;
            run_s = NULL;
        } else {
            x->ls = run_ls;
        }
        int nrc = run_rc;
        if (nrc) {
            res->samples_rejected++;
            reject(res, "invalid label set", &x->ls,
                   nrc == ERR_DUPLICATE ? "(duplicate label name)" : "(no labels)");
            continue;
        }
        if (x->ts_ms < min_valid) {
            res->samples_rejected++;
            reject(res, "sample", &x->ls, "is too old (beyond retention)");
            continue;
        }
        head_series_t *s = run_s;
        if (!s) {
            uint64_t h = labels_hash(&x->ls);
            s = head_get(db->head, &x->ls, h);
            if (!s) {
                s = head_create(db->head, &x->ls, h, 0);
                db__enc_series(&db->rec_series, s->id, &s->ls);
            }
            run_s = s;
        }
        double v = x->v;
        if (x->delta) {
            if (s->max_t != INT64_MIN && x->ts_ms <= s->max_t) {
                if (x->ts_ms == s->max_t && x->v == 0) {
                    res->samples_accepted++;
                    continue;
                }
                res->samples_rejected++;
                reject(res, "out of order delta sample", &x->ls, NULL);
                continue;
            }
            if (s->max_t == INT64_MIN && x->start_ms > 0 && x->start_ms < x->ts_ms &&
                x->start_ms >= min_valid && head_append(db->head, s, x->start_ms, 0) == HEAD_OK)
                enc_sample(db, s->id, x->start_ms, 0); /* the new series' zero at its start */
            v = (s->max_t == INT64_MIN ? 0 : s->last_v) + x->v;
            x->v = v; /* what a tap (db_tap_add) shows */
        }
        head_append_result_t r = head_append(db->head, s, x->ts_ms, v);
        if (r == HEAD_OK) {
            enc_sample(db, s->id, x->ts_ms, v);
            res->samples_accepted++;
            if (buf_len(&db->rec_samples) >= DB_RECORD_FLUSH_BYTES)
                flush_records(db);
        } else if (r == HEAD_DUP) {
            res->samples_accepted++;
        } else {
            res->samples_rejected++;
            reject(res,
                   r == HEAD_ERR_DUPLICATE ? "duplicate sample for timestamp"
                                           : "out of order sample",
                   &x->ls, NULL);
        }
    }
    flush_records(db);
    db->samples_appended += res->samples_accepted;
    db->samples_rejected += res->samples_rejected;
}

static void commit_rest(db_t *db, db_batch_t *b, db_commit_result_t *res)
{
    buf_clear(&db->rec_meta);
    for (size_t i = 0; i < b->n_meta; i++) {
        db_batch_meta_t *m = &b->meta[i];
        if (head_set_meta(db->head, m->metric, m->type, m->help, m->unit))
            db__enc_meta(&db->rec_meta, m->metric, m->type, m->help, m->unit);
    }
    if (buf_len(&db->rec_meta))
        wal_add(db->wal, WAL_REC_METADATA, db->rec_meta.pos, buf_len(&db->rec_meta));
    if (b->n_spans) {
        for (size_t i = 0; i < b->n_spans; i++)
            spans_head_append(db->spans, &b->spans[i]);
        for (size_t i = 0; i < b->n_spans;) {
            /* Keep records well below the WAL's limit. */
            size_t j = i, bytes = 0;
            while (j < b->n_spans && (j == i || bytes < DB_RECORD_FLUSH_BYTES)) {
                bytes += b->spans[j].span_pb.len + b->spans[j].resource_pb.len + 128;
                j++;
            }
            buf_clear(&db->rec_other);
            spans_wal_encode(&db->rec_other, b->spans + i, j - i);
            wal_add(db->wal, WAL_REC_SPANS, db->rec_other.pos, buf_len(&db->rec_other));
            i = j;
        }
        res->spans_accepted += b->n_spans;
        db->spans_appended += b->n_spans;
    }
    if (b->n_logs) {
        logs_wal_entry_t *acc = db__xrealloc(NULL, b->n_logs * sizeof *acc);
        size_t n = 0;
        for (size_t i = 0; i < b->n_logs; i++) {
            db_batch_log_t *e = &b->logs[i];
            if (!e->stream.n || labels_sort(&e->stream) != 0) {
                res->logs_rejected++;
                reject(res, "invalid log stream", &e->stream, NULL);
                continue;
            }
            res->logs_accepted++;
            if (logs_head_append(db->logs, &e->stream, e->ts_ns, e->line, &e->meta))
                acc[n++] = (logs_wal_entry_t){e->stream, e->ts_ns, e->line, e->meta};
        }
        for (size_t i = 0; i < n;) {
            size_t j = i, bytes = 0;
            while (j < n && (j == i || bytes < DB_RECORD_FLUSH_BYTES)) {
                bytes += acc[j].line.len + 64;
                j++;
            }
            buf_clear(&db->rec_other);
            logs_wal_encode(&db->rec_other, acc + i, j - i);
            wal_add(db->wal, WAL_REC_LOGS, db->rec_other.pos, buf_len(&db->rec_other));
            i = j;
        }
        free(acc);
        db->logs_appended += res->logs_accepted;
    }
    if (db->rec_other.end - db->rec_other.start > (ptrdiff_t)(4u << 20))
        buf_deinit(&db->rec_other); /* do not keep a huge batch's buffer around */
}

int db_commit(db_t *db, db_batch_t *b, db_commit_cb cb, void *arg)
{
    if (db->o.read_only)
        return ERR_UNSUPPORTED;
    if (db->closing)
        return ERR_CLOSED;
    if (wal_overloaded(db->wal))
        return ERR_OVERLOAD;
    if (db__head_over(db)) {
        /* Memory bound even when db_maintain runs rarely: cut before taking more. */
        err_t err;
        db__cut_head(db, &err);
    }
    completion_t c;
    memset(&c, 0, sizeof c);
    c.cb = cb;
    c.arg = arg;
    int64_t now = clock_now_ms();
    int64_t min_valid = db->o.retention_ms > 0 ? now - db->o.retention_ms : INT64_MIN;
    if (db_batch_items(b) && !db->head_first_wall_ms)
        db->head_first_wall_ms = now;
    commit_samples(db, b, &c.res, min_valid);
    commit_rest(db, b, &c.res);
    if (wal_commit(db->wal, &c.lsn) != 0)
        c.failed = true;
    if (db->n_taps)
        c.tap_batch = b; /* shown to the taps once durable, then freed (db_poll) */
    else
        db_batch_free(b);
    q_push(db, &c);
    if (c.failed || c.lsn <= wal_durable(db->wal))
        poke(db);
    return 0;
}

/* ---- stats, close ---- */

void db_get_stats(db_t *db, db_stats_t *st)
{
    memset(st, 0, sizeof *st);
    head_t *h = db->head;
    st->head_series = h->n_series;
    st->head_samples = h->n_samples;
    st->head_chunks = h->n_chunks;
    for (size_t i = 0; i < h->n_series; i++)
        if (h->series[i]->app.n)
            st->head_chunks++;
    st->head_spans = spans_head_count(db->spans);
    st->head_traces = spans_head_traces(db->spans);
    st->head_streams = logs_head_streams(db->logs);
    st->head_log_entries = logs_head_entries(db->logs);
    st->blocks = db->n_blocks;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i = 0; i < db->n_blocks; i++) {
        const block_meta_t *m = block_meta(db->blocks[i].b);
        st->block_bytes += block_bytes(db->blocks[i].b);
        st->block_samples += m->n_samples;
        st->block_spans += m->n_spans;
        st->block_log_entries += m->n_logs;
        lo = m->min_t < lo ? m->min_t : lo;
        hi = m->max_t > hi ? m->max_t : hi;
    }
    int64_t hlo, hhi;
    db__head_range(db, &hlo, &hhi);
    lo = hlo < lo ? hlo : lo;
    hi = hhi > hi ? hhi : hi;
    st->min_time_ms = lo <= hi ? lo : 0;
    st->max_time_ms = lo <= hi ? hi : 0;
    wal_stats_t ws = db->ro_wal;
    if (db->wal)
        wal_get_stats(db->wal, &ws);
    st->wal_bytes_written = ws.bytes_written;
    st->wal_fsyncs = ws.fsyncs;
    st->wal_segments = ws.segments;
    st->wal_bytes_on_disk = ws.bytes_on_disk;
    st->wal_replay_records = ws.replay_records;
    st->wal_replay_ms = db->replay_ms;
    st->wal_corrupt_truncations = ws.corrupt_truncations + ws.corrupt_segments;
    st->samples_appended = db->samples_appended;
    st->samples_rejected = db->samples_rejected;
    st->spans_appended = db->spans_appended;
    st->logs_appended = db->logs_appended;
}

void db_close(db_t *db)
{
    if (!db)
        return;
    db->closing = true;
    if (db->o.read_only) {
        db_free(db);
        return;
    }
    uint64_t lsn;
    if (wal_commit(db->wal, &lsn) == 0)
        wal_sync(db->wal, lsn);
    db_poll(db);
    err_t err;
    db__cut_head(db, &err);
    wal_close(db->wal);
    db->wal = NULL;
    db_free(db);
}

void db__abandon(db_t *db)
{
    if (!db)
        return;
    wal__abandon(db->wal);
    db->wal = NULL;
    db_free(db);
}
