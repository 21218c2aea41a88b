/*
 * db.c - the storage facade (store/db.h): opening a data directory, the commit path, completions,
 * head cuts, compaction, retention, and reads merged over blocks and the head.
 *
 * Commit: samples are resolved to head series (created and logged with a SERIES record before
 * their first sample), checked and appended; accepted samples, changed metadata, spans and log
 * entries are encoded into WAL records and queued; the commit's completion waits in a FIFO until
 * the WAL reports its LSN durable (db_poll), or fails with ERR_IO if the WAL broke first.
 *
 * Head cut (db_maintain, db_close): the head's metrics, spans and logs become one block; then the
 * WAL switches to a new segment that starts with a checkpoint (every live series' id, labels,
 * newest timestamp and value, plus all metadata, closed by CHECKPOINT_END); once that is durable
 * the older segments are deleted. A crash anywhere in between leaves either the old segments
 * (replayed again: data also in the block is deduplicated on read and by compaction) or a
 * complete checkpoint.
 *
 * Compaction: blocks falling entirely in one aligned window of 12 or 84 head ranges (24 h / 7 d
 * by default) are merged once time has moved past the window; that also folds in blocks that
 * overlap (late or backfilled data), which reads merge and deduplicate until then. Overlaps are
 * not merged eagerly: late samples make almost every new block overlap its predecessor, and
 * merging each time would rewrite a growing block every cut. Retention drops whole blocks: those
 * entirely older than the retention period, then the oldest ones while blocks plus WAL exceed the
 * size limit. Dropped or merged blocks are renamed <id>.del, deleted, and unmapped one maintenance
 * round later so iterators handed out before stay valid until then (iterators must not be kept
 * across two db_maintain calls).
 *
 * Reads: a selection gathers, per matching series, chunk references from every overlapping block
 * and a snapshot of the head's chunks and out-of-order samples; db_sample_next merges them with a
 * small min-heap ordered by (timestamp, source age) and drops repeated timestamps, so the oldest
 * source wins on a conflict.
 */
#include "store/db.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
#include "store/chunk.h"
#include "store/format.h"
#include "store/head.h"
#include "store/index.h"
#include "store/internal.h"
#include "store/logs.h"
#include "store/spans.h"
#include "store/wal.h"

#define RECORD_FLUSH_BYTES (1u << 20)
#define IDLE_SERIES_RANGES 4 /* forget series idle for this many head ranges at a cut */

typedef struct dblock {
    block_t *b;
    spans_file_t *spans;
    logs_file_t *logs;
} dblock_t;

typedef struct completion {
    uint64_t lsn;
    bool failed; /* the WAL had already failed when the commit was made */
    db_commit_cb cb;
    void *arg;
    db_commit_result_t res;
} completion_t;

struct db {
    db_opts_t o;
    char *dir, *blocks_dir, *wal_dir;
    int lock_fd;
    wal_t *wal;
    head_t *head;
    spans_head_t *spans;
    logs_head_t *logs;
    int64_t head_first_wall_ms; /* wall time of the first data since the last cut, 0 if none */
    dblock_t *blocks;           /* ordered by min time, then id */
    size_t n_blocks, cap_blocks;
    dblock_t *retired; /* unmapped at the next maintenance round */
    size_t n_retired, cap_retired;
    completion_t *q; /* ring buffer of completions */
    size_t q_head, q_len, q_cap;
    buf_t rec_series, rec_samples, rec_meta, rec_other;
    uint64_t smp_prev_id;
    int64_t smp_prev_ts;
    arena_t replay_arena;
    u64map_t replay_alias; /* WAL series id -> head series, when replay met a known label set */
    bool closing;
    uint64_t samples_appended, samples_rejected, spans_appended, logs_appended;
    uint64_t replay_ms;
};

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

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "skillscope: out of memory in the storage engine\n");
        abort();
    }
    return q;
}

static char *path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = xrealloc(NULL, n);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static int64_t ns_to_ms(int64_t ns) { return ns >= 0 ? ns / 1000000 : -((-ns + 999999) / 1000000); }

/* ---- batches ---- */

static void *grow(void *p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return p;
    size_t ncap = *cap ? *cap * 2 : 16;
    p = xrealloc(p, ncap * size);
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

static void add_sample(db_batch_t *b, const labels_t *ls, int64_t ts_ms, double v, bool delta)
{
    b->samples = grow(b->samples, &b->samples_cap, b->n_samples, sizeof *b->samples);
    db_batch_sample_t *s = &b->samples[b->n_samples++];
    s->ls = copy_labels(&b->arena, ls);
    s->ts_ms = ts_ms;
    s->v = v;
    s->delta = delta;
}

void db_batch_add_sample(db_batch_t *b, const labels_t *ls, int64_t ts_ms, double value)
{
    add_sample(b, ls, ts_ms, value, false);
}

void db_batch_add_delta(db_batch_t *b, const labels_t *ls, int64_t ts_ms, double delta)
{
    add_sample(b, ls, ts_ms, delta, true);
}

void db_batch_add_metadata(db_batch_t *b, str_t metric, db_mtype_t type, str_t help, str_t unit)
{
    b->meta = grow(b->meta, &b->meta_cap, b->n_meta, sizeof *b->meta);
    db_batch_meta_t *m = &b->meta[b->n_meta++];
    m->metric = arena_str(&b->arena, metric);
    m->type = type;
    m->help = arena_str(&b->arena, help);
    m->unit = arena_str(&b->arena, unit);
}

void db_batch_add_span(db_batch_t *b, const db_span_t *s)
{
    b->spans = grow(b->spans, &b->spans_cap, b->n_spans, sizeof *b->spans);
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
    b->logs = grow(b->logs, &b->logs_cap, b->n_logs, sizeof *b->logs);
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

/* ---- WAL record codecs ---- */

static void put_f64(buf_t *b, double v)
{
    uint64_t x;
    memcpy(&x, &v, 8);
    buf_put_u64le(b, x);
}

static void enc_series(buf_t *b, uint64_t id, const labels_t *ls)
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

static void enc_meta(buf_t *b, str_t metric, db_mtype_t type, str_t help, str_t unit)
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

typedef struct rd {
    const uint8_t *p, *end;
    bool bad;
} rd_t;

static uint64_t rd_uv(rd_t *r)
{
    uint64_t v = 0;
    size_t k = r->bad ? 0 : uvarint_get(r->p, r->end, &v);
    if (!k) {
        r->bad = true;
        return 0;
    }
    r->p += k;
    return v;
}

static str_t rd_str(rd_t *r)
{
    uint64_t n = rd_uv(r);
    if (r->bad || n > (uint64_t)(r->end - r->p)) {
        r->bad = true;
        return STR("");
    }
    str_t s = {(const char *)r->p, (size_t)n};
    r->p += n;
    return s;
}

static double rd_f64(rd_t *r)
{
    if (r->bad || r->end - r->p < 8) {
        r->bad = true;
        return 0;
    }
    uint64_t x = load_u64le(r->p);
    r->p += 8;
    double v;
    memcpy(&v, &x, 8);
    return v;
}

static labels_t rd_labels(rd_t *r, arena_t *a)
{
    labels_t ls = {NULL, 0};
    if (!r->bad && labels_decode(&r->p, r->end, a, &ls) != 0)
        r->bad = true;
    return ls;
}

/* ---- replay ---- */

static head_series_t *replay_series(db_t *db, uint64_t id, const labels_t *ls)
{
    head_series_t *s = head_by_id(db->head, id);
    if (s && labels_eq(&s->ls, ls))
        return s;
    uint64_t h = labels_hash(ls);
    head_series_t *o = head_get(db->head, ls, h);
    if (o) {
        /* Known label set under another id (replay overlap): alias the WAL id. */
        if (id)
            u64map_put(&db->replay_alias, hash_u64(id), (uint64_t)(uintptr_t)o);
        return o;
    }
    /* An id taken by another label set means damage upstream: take a fresh id and alias. */
    o = head_create(db->head, ls, h, s ? 0 : id);
    if (s && id)
        u64map_put(&db->replay_alias, hash_u64(id), (uint64_t)(uintptr_t)o);
    return o;
}

static head_series_t *replay_by_id(db_t *db, uint64_t id)
{
    uint64_t *a = db->replay_alias.len ? u64map_get(&db->replay_alias, hash_u64(id)) : NULL;
    if (a)
        return (head_series_t *)(uintptr_t)*a;
    return head_by_id(db->head, id);
}

static void replay_span(void *arg, const db_span_t *s)
{
    db_t *db = arg;
    spans_head_append(db->spans, s);
}

static void replay_log(void *arg, const logs_wal_entry_t *e)
{
    db_t *db = arg;
    logs_head_append(db->logs, &e->stream, e->ts_ns, e->line, &e->meta);
}

static int replay_record(void *arg, uint8_t type, const uint8_t *p, size_t n)
{
    db_t *db = arg;
    rd_t r = {p, p + n, false};
    arena_reset(&db->replay_arena);
    switch (type) {
    case WAL_REC_SERIES:
        while (r.p < r.end && !r.bad) {
            uint64_t id = rd_uv(&r);
            labels_t ls = rd_labels(&r, &db->replay_arena);
            if (!r.bad)
                replay_series(db, id, &ls);
        }
        break;
    case WAL_REC_SAMPLES: {
        uint64_t id = 0;
        int64_t ts = 0;
        while (r.p < r.end && !r.bad) {
            id += (uint64_t)zigzag_dec(rd_uv(&r));
            ts = (int64_t)((uint64_t)ts + (uint64_t)zigzag_dec(rd_uv(&r)));
            double v = rd_f64(&r);
            if (r.bad)
                break;
            head_series_t *s = replay_by_id(db, id);
            if (s && head_append(db->head, s, ts, v) == HEAD_OK && !db->head_first_wall_ms)
                db->head_first_wall_ms = clock_now_ms();
        }
        break;
    }
    case WAL_REC_METADATA:
        while (r.p < r.end && !r.bad) {
            str_t metric = rd_str(&r);
            uint64_t t = r.p < r.end ? *r.p++ : (r.bad = true, 0);
            str_t help = rd_str(&r), unit = rd_str(&r);
            if (!r.bad)
                head_set_meta(db->head, metric, (db_mtype_t)t, help, unit);
        }
        break;
    case WAL_REC_CHECKPOINT:
        while (r.p < r.end && !r.bad) {
            uint64_t id = rd_uv(&r);
            labels_t ls = rd_labels(&r, &db->replay_arena);
            int64_t ts = zigzag_dec(rd_uv(&r));
            double v = rd_f64(&r);
            if (!r.bad)
                head_set_state(db->head, replay_series(db, id, &ls), ts, v);
        }
        break;
    case WAL_REC_CHECKPOINT_END:
        break;
    case WAL_REC_SPANS:
        if (spans_wal_decode(p, n, replay_span, db) != 0)
            return ERR_CORRUPT;
        if (n && !db->head_first_wall_ms)
            db->head_first_wall_ms = clock_now_ms();
        break;
    case WAL_REC_LOGS:
        if (logs_wal_decode(p, n, &db->replay_arena, replay_log, db) != 0)
            return ERR_CORRUPT;
        if (n && !db->head_first_wall_ms)
            db->head_first_wall_ms = clock_now_ms();
        break;
    default:
        return ERR_UNSUPPORTED;
    }
    return r.bad ? ERR_CORRUPT : 0;
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

static void dblock_close(dblock_t *d)
{
    if (d->spans)
        spans_file_close(d->spans);
    if (d->logs)
        logs_file_close(d->logs);
    block_close(d->b);
    memset(d, 0, sizeof *d);
}

static int dblock_open(const char *dir, dblock_t *d, err_t *err)
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
        dblock_close(d);
    return rc;
}

static void blocks_add(db_t *db, dblock_t d)
{
    db->blocks = grow(db->blocks, &db->cap_blocks, db->n_blocks, sizeof *db->blocks);
    db->blocks[db->n_blocks++] = d;
    qsort(db->blocks, db->n_blocks, sizeof *db->blocks, cmp_dblock);
}

static int load_blocks(db_t *db, err_t *err)
{
    DIR *d = opendir(db->blocks_dir);
    if (!d)
        return err_set(err, ERR_IO, "open %s: %s", db->blocks_dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *name = e->d_name;
        if (name[0] == '.')
            continue;
        char *path = path_join(db->blocks_dir, name);
        size_t len = strlen(name);
        if (len > 4 &&
            (strcmp(name + len - 4, ".tmp") == 0 || strcmp(name + len - 4, ".del") == 0)) {
            log_info("removing an unfinished block directory", "dir=%s", path);
            store__rmtree(path);
        } else if (len == 16 && strspn(name, "0123456789abcdef") == 16) {
            dblock_t blk;
            err_t e2;
            if (dblock_open(path, &blk, &e2) == 0)
                blocks_add(db, blk);
            else
                log_error("block cannot be opened; leaving it out", "dir=%s error=\"%s\"", path,
                          e2.msg);
        }
        free(path);
    }
    closedir(d);
    return 0;
}

static int take_lock(db_t *db, err_t *err)
{
    char *path = path_join(db->dir, "LOCK");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        int rc = err_set(err, ERR_IO, "open %s: %s", path, strerror(errno));
        free(path);
        return rc;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char buf[32] = {0};
        ssize_t r = pread(fd, buf, sizeof buf - 1, 0);
        long pid = r > 0 ? strtol(buf, NULL, 10) : 0;
        close(fd);
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
        dblock_close(&db->blocks[i]);
    for (size_t i = 0; i < db->n_retired; i++)
        dblock_close(&db->retired[i]);
    free(db->blocks);
    free(db->retired);
    head_free(db->head);
    if (db->spans)
        spans_head_free(db->spans);
    if (db->logs)
        logs_head_free(db->logs);
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
    db->blocks_dir = path_join(db->dir, "blocks");
    db->wal_dir = path_join(db->dir, "wal");
    arena_init(&db->replay_arena, 65536);
    u64map_init(&db->replay_alias);
    db->head = head_new(opts->ooo_window_ms);
    db->spans = spans_head_new();
    db->logs = logs_head_new();
    int rc = 0;
    if (mkdir(db->dir, 0755) != 0 && errno != EEXIST)
        rc = err_set(err, ERR_IO, "create %s: %s", db->dir, strerror(errno));
    if (!rc)
        rc = take_lock(db, err);
    if (!rc && mkdir(db->blocks_dir, 0755) != 0 && errno != EEXIST)
        rc = err_set(err, ERR_IO, "create %s: %s", db->blocks_dir, strerror(errno));
    if (!rc)
        rc = load_blocks(db, err);
    if (!rc) {
        wal_opts_t wo = {db->wal_dir, opts->fsync_mode, 0, 0};
        rc = wal_open(&wo, &db->wal, err);
    }
    if (!rc) {
        int64_t r0 = clock_mono_ns();
        rc = wal_replay(db->wal, replay_record, db, err);
        db->replay_ms = (uint64_t)((clock_mono_ns() - r0) / 1000000);
        u64map_clear(&db->replay_alias);
    }
    if (!rc)
        rc = wal_start(db->wal, err);
    if (rc) {
        wal_close(db->wal);
        db_free(db);
        return rc;
    }
    wal_stats_t ws;
    wal_get_stats(db->wal, &ws);
    log_info("storage opened", "dir=%s blocks=%zu series=%zu wal_records=%llu ms=%lld", db->dir,
             db->n_blocks, db->head->n_series, (unsigned long long)ws.replay_records,
             (long long)((clock_mono_ns() - t0) / 1000000));
    *out = db;
    return 0;
}

static uint64_t head_bytes(const db_t *db);
static int cut_head(db_t *db, err_t *err);

/* ---- completions ---- */

static void q_push(db_t *db, const completion_t *c)
{
    if (db->q_len == db->q_cap) {
        size_t ncap = db->q_cap ? db->q_cap * 2 : 64;
        completion_t *nq = xrealloc(NULL, ncap * sizeof *nq);
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

int db_event_fd(db_t *db) { return wal_event_fd(db->wal); }

void db_poll(db_t *db)
{
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
    }
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
    for (size_t i = 0; i < b->n_samples; i++) {
        db_batch_sample_t *x = &b->samples[i];
        int nrc = normalize_labels(&x->ls);
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
        uint64_t h = labels_hash(&x->ls);
        head_series_t *s = head_get(db->head, &x->ls, h);
        if (!s) {
            s = head_create(db->head, &x->ls, h, 0);
            enc_series(&db->rec_series, s->id, &s->ls);
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
            v = (s->max_t == INT64_MIN ? 0 : s->last_v) + x->v;
        }
        head_append_result_t r = head_append(db->head, s, x->ts_ms, v);
        if (r == HEAD_OK) {
            enc_sample(db, s->id, x->ts_ms, v);
            res->samples_accepted++;
            if (buf_len(&db->rec_samples) >= RECORD_FLUSH_BYTES)
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
            enc_meta(&db->rec_meta, m->metric, m->type, m->help, m->unit);
    }
    if (buf_len(&db->rec_meta))
        wal_add(db->wal, WAL_REC_METADATA, db->rec_meta.pos, buf_len(&db->rec_meta));
    if (b->n_spans) {
        for (size_t i = 0; i < b->n_spans; i++)
            spans_head_append(db->spans, &b->spans[i]);
        for (size_t i = 0; i < b->n_spans;) {
            /* Keep records well below the WAL's limit. */
            size_t j = i, bytes = 0;
            while (j < b->n_spans && (j == i || bytes < RECORD_FLUSH_BYTES)) {
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
        logs_wal_entry_t *acc = xrealloc(NULL, b->n_logs * sizeof *acc);
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
            while (j < n && (j == i || bytes < RECORD_FLUSH_BYTES)) {
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
    if (db->closing)
        return ERR_CLOSED;
    if (wal_overloaded(db->wal))
        return ERR_OVERLOAD;
    if (db->o.head_max_bytes && head_bytes(db) >= db->o.head_max_bytes) {
        /* Memory bound even when db_maintain runs rarely: cut before taking more. */
        err_t err;
        cut_head(db, &err);
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
    db_batch_free(b);
    q_push(db, &c);
    if (c.failed || c.lsn <= wal_durable(db->wal))
        poke(db);
    return 0;
}

/* ---- head cut ---- */

static bool head_has_data(const db_t *db)
{
    return db->head->n_samples || spans_head_count(db->spans) || logs_head_entries(db->logs);
}

/* Time range (ms) of everything the head holds; mint > maxt when empty. */
static void head_range(const db_t *db, int64_t *mint, int64_t *maxt)
{
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    if (db->head->n_samples) {
        lo = db->head->min_t;
        hi = db->head->max_t;
    }
    if (spans_head_count(db->spans)) {
        int64_t a = ns_to_ms(spans_head_min_ns(db->spans)),
                b = ns_to_ms(spans_head_max_ns(db->spans));
        lo = a < lo ? a : lo;
        hi = b > hi ? b : hi;
    }
    if (logs_head_entries(db->logs)) {
        int64_t a = ns_to_ms(logs_head_min_ns(db->logs)), b = ns_to_ms(logs_head_max_ns(db->logs));
        lo = a < lo ? a : lo;
        hi = b > hi ? b : hi;
    }
    *mint = lo;
    *maxt = hi;
}

static uint64_t head_bytes(const db_t *db)
{
    return db->head->bytes + index_mem_bytes(&db->head->index) + spans_head_bytes(db->spans) +
           logs_head_bytes(db->logs);
}

static int cmp_series_labels(const void *a, const void *b)
{
    return labels_cmp(&(*(head_series_t *const *)a)->ls, &(*(head_series_t *const *)b)->ls);
}

typedef struct wctx {
    block_writer_t *w;
    err_t *err;
    int rc;
} wctx_t;

static void write_sample_cb(void *arg, int64_t t, double v)
{
    wctx_t *c = arg;
    if (!c->rc)
        c->rc = block_writer_sample(c->w, t, v, c->err);
}

static int open_new_block(db_t *db, const char *id, err_t *err)
{
    char *path = path_join(db->blocks_dir, id);
    dblock_t d;
    int rc = dblock_open(path, &d, err);
    free(path);
    if (!rc)
        blocks_add(db, d);
    return rc;
}

static int write_head_block(db_t *db, err_t *err)
{
    block_writer_t *w;
    int rc = block_writer_new(db->blocks_dir, &w, err);
    if (rc)
        return rc;
    head_t *h = db->head;
    head_series_t **v = xrealloc(NULL, (h->n_series + 1) * sizeof *v);
    size_t n = 0;
    for (size_t i = 0; i < h->n_series; i++)
        if (h->series[i]->n_samples)
            v[n++] = h->series[i];
    qsort(v, n, sizeof *v, cmp_series_labels);
    wctx_t c = {w, err, 0};
    for (size_t i = 0; i < n && !c.rc; i++) {
        c.rc = block_writer_series_begin(w, &v[i]->ls, err);
        if (!c.rc)
            head_series_samples(v[i], write_sample_cb, &c);
        if (!c.rc)
            c.rc = block_writer_series_end(w, err);
    }
    free(v);
    rc = c.rc;
    char path[4200];
    uint64_t bytes;
    if (!rc && spans_head_count(db->spans)) {
        snprintf(path, sizeof path, "%s/spans", block_writer_dir(w));
        rc = spans_head_write(db->spans, path, &bytes, err);
        if (!rc)
            block_writer_add_file(w, BLOCK_FILE_SPANS, spans_head_count(db->spans),
                                  spans_head_min_ns(db->spans), spans_head_max_ns(db->spans));
    }
    if (!rc && logs_head_entries(db->logs)) {
        snprintf(path, sizeof path, "%s/logs", block_writer_dir(w));
        rc = logs_head_write(db->logs, path, &bytes, err);
        if (!rc)
            block_writer_add_file(w, BLOCK_FILE_LOGS, logs_head_entries(db->logs),
                                  logs_head_min_ns(db->logs), logs_head_max_ns(db->logs));
    }
    char id[17];
    if (!rc)
        rc = block_writer_finish(w, 1, id, err);
    else
        block_writer_abort(w);
    if (!rc)
        rc = open_new_block(db, id, err);
    return rc;
}

/* Starts a new WAL segment holding the head's state; deletes older segments once durable. */
static int checkpoint(db_t *db)
{
    uint32_t seq = wal_rotate(db->wal);
    buf_t *b = &db->rec_other;
    buf_clear(b);
    head_t *h = db->head;
    for (size_t i = 0; i < h->n_series; i++) {
        head_series_t *s = h->series[i];
        if (s->max_t == INT64_MIN)
            continue;
        enc_series(b, s->id, &s->ls);
        buf_put_uvarint(b, zigzag_enc(s->max_t));
        put_f64(b, s->last_v);
        if (buf_len(b) >= RECORD_FLUSH_BYTES) {
            wal_add(db->wal, WAL_REC_CHECKPOINT, b->pos, buf_len(b));
            buf_clear(b);
        }
    }
    if (buf_len(b))
        wal_add(db->wal, WAL_REC_CHECKPOINT, b->pos, buf_len(b));
    buf_clear(b);
    for (size_t i = 0; i < h->n_meta; i++) {
        enc_meta(b, h->meta[i].metric, h->meta[i].type, h->meta[i].help, h->meta[i].unit);
        if (buf_len(b) >= RECORD_FLUSH_BYTES) {
            wal_add(db->wal, WAL_REC_METADATA, b->pos, buf_len(b));
            buf_clear(b);
        }
    }
    if (buf_len(b))
        wal_add(db->wal, WAL_REC_METADATA, b->pos, buf_len(b));
    buf_clear(b);
    wal_add(db->wal, WAL_REC_CHECKPOINT_END, NULL, 0);
    uint64_t lsn;
    int rc = wal_commit(db->wal, &lsn);
    if (!rc)
        rc = wal_sync(db->wal, lsn);
    if (!rc)
        wal_remove_before(db->wal, seq);
    return rc;
}

static int cut_head(db_t *db, err_t *err)
{
    if (!head_has_data(db))
        return 0;
    int64_t t0 = clock_mono_ns();
    uint64_t n_samples = db->head->n_samples;
    int rc = write_head_block(db, err);
    if (rc) {
        log_error("writing the head to a block failed; keeping it in memory", "error=\"%s\"",
                  err ? err->msg : err_str(rc));
        return rc;
    }
    int64_t idle = db->head->n_samples ? db->head->max_t - IDLE_SERIES_RANGES * db->o.block_range_ms
                                       : INT64_MIN;
    head_truncate(db->head, idle);
    spans_head_reset(db->spans);
    logs_head_reset(db->logs);
    db->head_first_wall_ms = 0;
    rc = checkpoint(db);
    if (rc)
        log_error("WAL checkpoint failed; older segments are kept", "error=\"%s\"", err_str(rc));
    log_info("head written to a block", "samples=%llu ms=%lld", (unsigned long long)n_samples,
             (long long)((clock_mono_ns() - t0) / 1000000));
    return 0;
}

/* ---- compaction and retention ---- */

static void retire(db_t *db, size_t i, const char *why)
{
    dblock_t d = db->blocks[i];
    memmove(db->blocks + i, db->blocks + i + 1, (db->n_blocks - i - 1) * sizeof *db->blocks);
    db->n_blocks--;
    const char *dir = block_dir(d.b);
    size_t n = strlen(dir) + 8;
    char *del = xrealloc(NULL, n);
    snprintf(del, n, "%s.del", dir);
    if (rename(dir, del) == 0) {
        store__fsync_dir(db->blocks_dir);
        store__rmtree(del);
    } else {
        log_error("cannot remove block", "dir=%s error=\"%s\"", dir, strerror(errno));
    }
    free(del);
    log_info("block removed", "id=%s reason=%s", block_id(d.b), why);
    db->retired = grow(db->retired, &db->cap_retired, db->n_retired, sizeof *db->retired);
    db->retired[db->n_retired++] = d;
}

static int merge_blocks(db_t *db, const size_t *idx, size_t n, err_t *err)
{
    block_t **in = xrealloc(NULL, n * sizeof *in);
    spans_file_t **sf = xrealloc(NULL, n * sizeof *sf);
    logs_file_t **lf = xrealloc(NULL, n * sizeof *lf);
    size_t nsf = 0, nlf = 0;
    uint32_t level = 0;
    uint64_t n_spans = 0, n_logs = 0;
    int64_t smin = INT64_MAX, smax = INT64_MIN, lmin = INT64_MAX, lmax = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        dblock_t *d = &db->blocks[idx[i]];
        const block_meta_t *m = block_meta(d->b);
        in[i] = d->b;
        if (m->level > level)
            level = m->level;
        if (d->spans) {
            sf[nsf++] = d->spans;
            n_spans += m->n_spans;
            smin = m->span_min_ns < smin ? m->span_min_ns : smin;
            smax = m->span_max_ns > smax ? m->span_max_ns : smax;
        }
        if (d->logs) {
            lf[nlf++] = d->logs;
            n_logs += m->n_logs;
            lmin = m->log_min_ns < lmin ? m->log_min_ns : lmin;
            lmax = m->log_max_ns > lmax ? m->log_max_ns : lmax;
        }
    }
    block_writer_t *w;
    int rc = block_writer_new(db->blocks_dir, &w, err);
    if (!rc) {
        rc = block_merge_metrics(w, in, n, INT64_MIN, INT64_MAX, err);
        char path[4200];
        uint64_t bytes;
        if (!rc && nsf) {
            snprintf(path, sizeof path, "%s/spans", block_writer_dir(w));
            rc = spans_file_merge(sf, nsf, path, &bytes, err);
            if (!rc)
                block_writer_add_file(w, BLOCK_FILE_SPANS, n_spans, smin, smax);
        }
        if (!rc && nlf) {
            snprintf(path, sizeof path, "%s/logs", block_writer_dir(w));
            rc = logs_file_merge(lf, nlf, path, &bytes, err);
            if (!rc)
                block_writer_add_file(w, BLOCK_FILE_LOGS, n_logs, lmin, lmax);
        }
        char id[17];
        if (!rc)
            rc = block_writer_finish(w, level + 1, id, err);
        else
            block_writer_abort(w);
        if (!rc) {
            /* Retire inputs (highest index first so earlier indexes stay valid), then add. */
            size_t *sorted = xrealloc(NULL, n * sizeof *sorted);
            memcpy(sorted, idx, n * sizeof *sorted);
            for (size_t i = 0; i < n; i++)
                for (size_t j = i + 1; j < n; j++)
                    if (sorted[j] > sorted[i]) {
                        size_t t = sorted[i];
                        sorted[i] = sorted[j];
                        sorted[j] = t;
                    }
            for (size_t i = 0; i < n; i++)
                retire(db, sorted[i], "compacted");
            free(sorted);
            rc = open_new_block(db, id, err);
        }
    }
    free(in);
    free(sf);
    free(lf);
    return rc;
}

static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* Plans and runs one merge; false when there is nothing to do. */
static bool compact_once(db_t *db, int64_t now_ms)
{
    size_t *idx = xrealloc(NULL, (db->n_blocks + 1) * sizeof *idx);
    size_t n = 0;
    int64_t ranges[] = {db->o.block_range_ms * 12, db->o.block_range_ms * 84};
    for (size_t r = 0; r < 2 && n < 2; r++) {
        int64_t R = ranges[r];
        if (R <= 0)
            continue;
        for (size_t i = 0; i < db->n_blocks && n < 2; i++) {
            n = 0;
            const block_meta_t *m = block_meta(db->blocks[i].b);
            int64_t k = floor_div(m->min_t, R), end = (k + 1) * R;
            if (m->max_t >= end || now_ms < end)
                continue;
            for (size_t j = i; j < db->n_blocks; j++) {
                const block_meta_t *mj = block_meta(db->blocks[j].b);
                if (floor_div(mj->min_t, R) != k)
                    break;
                if (mj->max_t < end)
                    idx[n++] = j;
            }
        }
    }
    bool did = false;
    if (n >= 2) {
        err_t err;
        int rc = merge_blocks(db, idx, n, &err);
        if (rc)
            log_error("compaction failed", "blocks=%zu error=\"%s\"", n, err.msg);
        else
            did = true;
    }
    free(idx);
    return did;
}

static void apply_retention(db_t *db, int64_t now_ms)
{
    if (db->o.retention_ms > 0) {
        for (size_t i = 0; i < db->n_blocks;) {
            if (block_meta(db->blocks[i].b)->max_t < now_ms - db->o.retention_ms)
                retire(db, i, "retention_time");
            else
                i++;
        }
    }
    if (db->o.retention_bytes > 0) {
        wal_stats_t ws;
        wal_get_stats(db->wal, &ws);
        uint64_t total = ws.bytes_on_disk;
        for (size_t i = 0; i < db->n_blocks; i++)
            total += block_bytes(db->blocks[i].b);
        while (total > db->o.retention_bytes && db->n_blocks) {
            total -= block_bytes(db->blocks[0].b);
            retire(db, 0, "retention_size");
        }
    }
}

static void close_retired(db_t *db)
{
    for (size_t i = 0; i < db->n_retired; i++)
        dblock_close(&db->retired[i]);
    db->n_retired = 0;
}

void db_maintain(db_t *db, int64_t now_ms)
{
    close_retired(db);
    if (db->closing)
        return;
    if (head_has_data(db)) {
        int64_t lo, hi;
        head_range(db, &lo, &hi);
        bool cut =
            hi - lo >= db->o.block_range_ms ||
            (db->o.head_max_bytes && head_bytes(db) >= db->o.head_max_bytes) ||
            (db->head_first_wall_ms && now_ms - db->head_first_wall_ms >= db->o.block_range_ms);
        if (cut) {
            err_t err;
            cut_head(db, &err);
        }
    }
    for (int i = 0; i < 16 && compact_once(db, now_ms); i++)
        ;
    apply_retention(db, now_ms);
}

/* ---- reads: metrics ---- */

typedef struct src {
    block_t *b; /* NULL: p/len hold a head snapshot */
    uint64_t off;
    const uint8_t *p;
    size_t len;
    int64_t mint, maxt;
    uint32_t prio;
} src_t;

typedef struct sel_series {
    labels_t ls;
    src_t *srcs;
    uint32_t n_srcs;
    uint32_t seq;
    int64_t *ooo_t;
    double *ooo_v;
    uint32_t n_ooo, ooo_prio;
} sel_series_t;

typedef struct cursor {
    chunk_iter_t it;
    bool ooo;
    uint32_t oi;
    int64_t t, maxt;
    double v;
    uint32_t prio;
} cursor_t;

struct db_series_iter {
    sel_series_t *v;
    size_t n, i; /* i: current + 1 (0 before the first) */
    int64_t mint, maxt;
    cursor_t *heap;
    size_t n_heap, cap_heap;
    arena_t *a;
    uint32_t next_src;
    bool ooo_opened, have_peek;
    int64_t lb, last_t, peek_t;
    double peek_v;
};

static bool cur_less(const cursor_t *x, const cursor_t *y)
{
    return x->t < y->t || (x->t == y->t && x->prio < y->prio);
}

static void heap_push(db_series_iter_t *it, const cursor_t *c)
{
    if (it->n_heap == it->cap_heap) {
        size_t ncap = it->cap_heap ? it->cap_heap * 2 : 8;
        cursor_t *nh = arena_alloc(it->a, ncap * sizeof *nh);
        if (it->n_heap)
            memcpy(nh, it->heap, it->n_heap * sizeof *nh);
        it->heap = nh;
        it->cap_heap = ncap;
    }
    size_t i = it->n_heap++;
    it->heap[i] = *c;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cur_less(&it->heap[i], &it->heap[p]))
            break;
        cursor_t t = it->heap[i];
        it->heap[i] = it->heap[p];
        it->heap[p] = t;
        i = p;
    }
}

static void heap_pop(db_series_iter_t *it, cursor_t *out)
{
    *out = it->heap[0];
    it->heap[0] = it->heap[--it->n_heap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < it->n_heap && cur_less(&it->heap[l], &it->heap[m]))
            m = l;
        if (r < it->n_heap && cur_less(&it->heap[r], &it->heap[m]))
            m = r;
        if (m == i)
            break;
        cursor_t t = it->heap[i];
        it->heap[i] = it->heap[m];
        it->heap[m] = t;
        i = m;
    }
}

static bool cur_step(const sel_series_t *s, cursor_t *c)
{
    if (c->ooo) {
        if (c->oi >= s->n_ooo)
            return false;
        c->t = s->ooo_t[c->oi];
        c->v = s->ooo_v[c->oi];
        c->oi++;
        return true;
    }
    return chunk_iter_next(&c->it, &c->t, &c->v);
}

static void open_sources(db_series_iter_t *it, const sel_series_t *s)
{
    while (it->next_src < s->n_srcs) {
        const src_t *x = &s->srcs[it->next_src];
        if (it->n_heap && x->mint > it->heap[0].t)
            break;
        it->next_src++;
        if (x->maxt < it->lb || x->mint > it->maxt)
            continue;
        const uint8_t *p = x->p;
        size_t len = x->len;
        uint8_t enc = CHUNK_ENC_XOR;
        if (x->b) {
            if (block_chunk(x->b, x->off, &enc, &p, &len) != 0) {
                log_error("corrupt chunk skipped", "block=%s offset=%llu", block_dir(x->b),
                          (unsigned long long)x->off);
                continue;
            }
        }
        cursor_t c;
        memset(&c, 0, sizeof c);
        chunk_iter_init_enc(&c.it, enc, p, len);
        c.maxt = x->maxt;
        c.prio = x->prio;
        if (chunk_iter_seek(&c.it, it->lb, &c.t, &c.v))
            heap_push(it, &c);
    }
    if (!it->ooo_opened) {
        it->ooo_opened = true;
        if (s->n_ooo) {
            cursor_t c;
            memset(&c, 0, sizeof c);
            c.ooo = true;
            c.maxt = INT64_MAX;
            c.prio = s->ooo_prio;
            bool ok;
            while ((ok = cur_step(s, &c)) && c.t < it->lb)
                ;
            if (ok)
                heap_push(it, &c);
        }
    }
}

static bool merge_next(db_series_iter_t *it, int64_t *t, double *v)
{
    const sel_series_t *s = &it->v[it->i - 1];
    for (;;) {
        open_sources(it, s);
        if (!it->n_heap)
            return false;
        cursor_t c;
        heap_pop(it, &c);
        int64_t ct = c.t;
        double cv = c.v;
        if (c.maxt >= it->lb && cur_step(s, &c))
            heap_push(it, &c);
        if (ct > it->maxt) {
            it->n_heap = 0;
            it->next_src = s->n_srcs;
            return false;
        }
        if (ct < it->lb || ct <= it->last_t)
            continue;
        it->last_t = ct;
        *t = ct;
        *v = cv;
        return true;
    }
}

static void reset_series(db_series_iter_t *it, int64_t lb)
{
    it->n_heap = 0;
    it->next_src = 0;
    it->ooo_opened = false;
    it->have_peek = false;
    it->lb = lb > it->mint ? lb : it->mint;
    it->last_t = INT64_MIN;
}

bool db_series_next(db_series_iter_t *it)
{
    while (it->i < it->n) {
        it->i++;
        reset_series(it, it->mint);
        if (merge_next(it, &it->peek_t, &it->peek_v)) {
            it->have_peek = true;
            return true;
        }
    }
    return false;
}

const labels_t *db_series_labels(const db_series_iter_t *it)
{
    return it->i ? &it->v[it->i - 1].ls : NULL;
}

bool db_sample_next(db_series_iter_t *it, int64_t *ts_ms, double *v)
{
    if (!it->i || it->i > it->n)
        return false;
    if (it->have_peek) {
        it->have_peek = false;
        *ts_ms = it->peek_t;
        *v = it->peek_v;
        return true;
    }
    return merge_next(it, ts_ms, v);
}

void db_sample_seek(db_series_iter_t *it, int64_t ts_ms)
{
    if (!it->i)
        return;
    if (ts_ms > it->last_t) {
        /* Forward: skip lazily. */
        if (ts_ms > it->lb)
            it->lb = ts_ms;
        if (it->have_peek && it->peek_t < ts_ms)
            it->have_peek = false;
        return;
    }
    reset_series(it, ts_ms);
}

typedef struct sel_builder {
    arena_t *a;
    sel_series_t *v;
    size_t n, cap;
} sel_builder_t;

static sel_series_t *sel_add(sel_builder_t *sb)
{
    if (sb->n == sb->cap) {
        size_t ncap = sb->cap ? sb->cap * 2 : 64;
        sel_series_t *nv = arena_alloc(sb->a, ncap * sizeof *nv);
        if (sb->n)
            memcpy(nv, sb->v, sb->n * sizeof *nv);
        sb->v = nv;
        sb->cap = ncap;
    }
    sel_series_t *s = &sb->v[sb->n];
    memset(s, 0, sizeof *s);
    s->seq = (uint32_t)sb->n++;
    return s;
}

static int cmp_sel(const void *a, const void *b)
{
    const sel_series_t *x = a, *y = b;
    int c = labels_cmp(&x->ls, &y->ls);
    return c ? c : (x->seq < y->seq ? -1 : x->seq > y->seq);
}

static int cmp_src(const void *a, const void *b)
{
    const src_t *x = a, *y = b;
    if (x->mint != y->mint)
        return x->mint < y->mint ? -1 : 1;
    return x->prio < y->prio ? -1 : x->prio > y->prio;
}

static bool metrics_overlap(const block_meta_t *m, int64_t mint, int64_t maxt)
{
    return m->n_series && m->m_mint <= maxt && m->m_maxt >= mint;
}

/* Every matching series with chunks overlapping [mint, maxt], merged over sources, sorted. */
static void build_selection(db_t *db, const matcher_t *ms, size_t n, int64_t mint, int64_t maxt,
                            arena_t *a, sel_series_t **out, size_t *n_out)
{
    sel_builder_t sb = {a, NULL, 0, 0};
    for (size_t bi = 0; bi < db->n_blocks; bi++) {
        block_t *b = db->blocks[bi].b;
        if (!metrics_overlap(block_meta(b), mint, maxt))
            continue;
        index_reader_t r = block_index_reader(b);
        postings_t p;
        index_select(&r, ms, n, a, &p);
        for (size_t i = 0; i < p.n; i++) {
            labels_t ls;
            block_chunk_ref_t *c;
            size_t nc;
            if (block_series(b, p.v[i], a, &ls, &c, &nc) != 0)
                continue;
            size_t k = 0;
            for (size_t j = 0; j < nc; j++)
                if (c[j].maxt >= mint && c[j].mint <= maxt)
                    k++;
            if (!k)
                continue;
            sel_series_t *s = sel_add(&sb);
            s->ls = ls;
            s->srcs = arena_alloc(a, k * sizeof *s->srcs);
            for (size_t j = 0; j < nc; j++)
                if (c[j].maxt >= mint && c[j].mint <= maxt)
                    s->srcs[s->n_srcs++] =
                        (src_t){b, c[j].off, NULL, 0, c[j].mint, c[j].maxt, (uint32_t)bi};
        }
    }
    head_series_t **hs;
    size_t nh;
    head_select(db->head, ms, n, mint, maxt, a, &hs, &nh);
    uint32_t hprio = (uint32_t)db->n_blocks;
    for (size_t i = 0; i < nh; i++) {
        head_snap_t snap;
        head_series_snapshot(hs[i], mint, maxt, a, &snap);
        if (!snap.n_chunks && !snap.n_ooo)
            continue;
        sel_series_t *s = sel_add(&sb);
        s->ls = labels_copy(&hs[i]->ls, a);
        s->srcs = arena_alloc(a, (snap.n_chunks + 1) * sizeof *s->srcs);
        for (size_t j = 0; j < snap.n_chunks; j++)
            s->srcs[s->n_srcs++] = (src_t){NULL,
                                           0,
                                           snap.chunks[j].p,
                                           snap.chunks[j].len,
                                           snap.chunks[j].mint,
                                           snap.chunks[j].maxt,
                                           hprio};
        s->ooo_t = snap.ooo_t;
        s->ooo_v = snap.ooo_v;
        s->n_ooo = (uint32_t)snap.n_ooo;
        s->ooo_prio = hprio;
    }
    if (sb.n > 1)
        qsort(sb.v, sb.n, sizeof *sb.v, cmp_sel);
    /* Merge entries with equal label sets. */
    size_t k = 0;
    for (size_t i = 0; i < sb.n;) {
        size_t j = i + 1;
        while (j < sb.n && labels_eq(&sb.v[i].ls, &sb.v[j].ls))
            j++;
        sel_series_t m = sb.v[i];
        if (j - i > 1) {
            uint32_t total = 0;
            for (size_t q = i; q < j; q++)
                total += sb.v[q].n_srcs;
            src_t *srcs = arena_alloc(a, (total + 1) * sizeof *srcs);
            uint32_t ns = 0;
            for (size_t q = i; q < j; q++) {
                memcpy(srcs + ns, sb.v[q].srcs, sb.v[q].n_srcs * sizeof *srcs);
                ns += sb.v[q].n_srcs;
                if (sb.v[q].n_ooo) {
                    m.ooo_t = sb.v[q].ooo_t;
                    m.ooo_v = sb.v[q].ooo_v;
                    m.n_ooo = sb.v[q].n_ooo;
                    m.ooo_prio = sb.v[q].ooo_prio;
                }
            }
            qsort(srcs, ns, sizeof *srcs, cmp_src);
            m.srcs = srcs;
            m.n_srcs = ns;
        }
        sb.v[k++] = m;
        i = j;
    }
    *out = sb.v;
    *n_out = k;
}

int db_select(db_t *db, const matcher_t *ms, size_t n, int64_t mint_ms, int64_t maxt_ms, arena_t *a,
              db_series_iter_t **out, err_t *err)
{
    (void)err;
    db_series_iter_t *it = ARENA_NEW(a, db_series_iter_t);
    it->a = a;
    it->mint = mint_ms;
    it->maxt = maxt_ms;
    if (mint_ms <= maxt_ms)
        build_selection(db, ms, n, mint_ms, maxt_ms, a, &it->v, &it->n);
    *out = it;
    return 0;
}

typedef struct strset {
    arena_t *a;
    str_t *v;
    size_t n, cap;
} strset_t;

static void strset_add(void *arg, str_t s)
{
    strset_t *ss = arg;
    if (ss->n == ss->cap) {
        size_t ncap = ss->cap ? ss->cap * 2 : 64;
        str_t *nv = arena_alloc(ss->a, ncap * sizeof *nv);
        if (ss->n)
            memcpy(nv, ss->v, ss->n * sizeof *nv);
        ss->v = nv;
        ss->cap = ncap;
    }
    ss->v[ss->n++] = s;
}

static int cmp_str_p(const void *a, const void *b)
{
    return str_cmp(*(const str_t *)a, *(const str_t *)b);
}

/* Sorts, removes duplicates and copies the survivors into the arena. */
static void strset_finish(strset_t *ss, str_t **out, size_t *n_out)
{
    if (ss->n > 1)
        qsort(ss->v, ss->n, sizeof *ss->v, cmp_str_p);
    size_t k = 0;
    for (size_t i = 0; i < ss->n; i++)
        if (!k || !str_eq(ss->v[k - 1], ss->v[i]))
            ss->v[k++] = ss->v[i];
    for (size_t i = 0; i < k; i++)
        ss->v[i] = arena_str(ss->a, ss->v[i]);
    *out = ss->v;
    *n_out = k;
}

static bool head_overlaps(const db_t *db, int64_t mint, int64_t maxt)
{
    return db->head->n_samples && db->head->min_t <= maxt && db->head->max_t >= mint;
}

int db_label_names(db_t *db, const matcher_t *ms, size_t n, int64_t mint_ms, int64_t maxt_ms,
                   arena_t *a, str_t **out, size_t *n_out, err_t *err)
{
    (void)err;
    strset_t ss = {a, NULL, 0, 0};
    if (n == 0) {
        for (size_t i = 0; i < db->n_blocks; i++)
            if (metrics_overlap(block_meta(db->blocks[i].b), mint_ms, maxt_ms))
                block_label_names(db->blocks[i].b, strset_add, &ss);
        if (head_overlaps(db, mint_ms, maxt_ms))
            index_mem_names(&db->head->index, strset_add, &ss);
    } else {
        sel_series_t *v;
        size_t nv;
        build_selection(db, ms, n, mint_ms, maxt_ms, a, &v, &nv);
        for (size_t i = 0; i < nv; i++)
            for (size_t j = 0; j < v[i].ls.n; j++)
                strset_add(&ss, v[i].ls.v[j].name);
    }
    strset_finish(&ss, out, n_out);
    return 0;
}

int db_label_values(db_t *db, str_t name, const matcher_t *ms, size_t n, int64_t mint_ms,
                    int64_t maxt_ms, arena_t *a, str_t **out, size_t *n_out, err_t *err)
{
    (void)err;
    strset_t ss = {a, NULL, 0, 0};
    if (n == 0) {
        for (size_t i = 0; i < db->n_blocks; i++)
            if (metrics_overlap(block_meta(db->blocks[i].b), mint_ms, maxt_ms))
                block_label_values(db->blocks[i].b, name, strset_add, &ss);
        if (head_overlaps(db, mint_ms, maxt_ms))
            index_mem_values(&db->head->index, name, strset_add, &ss);
    } else {
        sel_series_t *v;
        size_t nv;
        build_selection(db, ms, n, mint_ms, maxt_ms, a, &v, &nv);
        for (size_t i = 0; i < nv; i++)
            for (size_t j = 0; j < v[i].ls.n; j++)
                if (str_eq(v[i].ls.v[j].name, name))
                    strset_add(&ss, v[i].ls.v[j].value);
    }
    strset_finish(&ss, out, n_out);
    return 0;
}

void db_metadata(db_t *db, str_t metric,
                 void (*cb)(void *arg, str_t metric, db_mtype_t type, str_t help, str_t unit),
                 void *arg)
{
    head_meta_each(db->head, metric, cb, arg);
}

/* ---- reads: spans ---- */

typedef struct span_gather {
    arena_t a;
    db_span_t *v;
    size_t n, cap;
} span_gather_t;

static void gather_span(void *arg, const db_span_t *s)
{
    span_gather_t *g = arg;
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 64;
        g->v = xrealloc(g->v, g->cap * sizeof *g->v);
    }
    db_span_t *d = &g->v[g->n++];
    *d = *s;
    d->name = arena_str(&g->a, s->name);
    d->service_name = arena_str(&g->a, s->service_name);
    d->resource_pb = arena_str(&g->a, s->resource_pb);
    d->scope_pb = arena_str(&g->a, s->scope_pb);
    d->span_pb = arena_str(&g->a, s->span_pb);
}

static int cmp_span(const void *a, const void *b)
{
    const db_span_t *x = a, *y = b;
    if (x->start_ns != y->start_ns)
        return x->start_ns < y->start_ns ? -1 : 1;
    return memcmp(x->span_id, y->span_id, 8);
}

static bool spans_overlap(const block_meta_t *m, int64_t mint, int64_t maxt)
{
    return m->n_spans && (maxt <= 0 || (m->span_min_ns <= maxt && m->span_max_ns >= mint));
}

int db_trace_get(db_t *db, const uint8_t trace_id[16], int64_t mint_ns, int64_t maxt_ns,
                 void (*cb)(void *arg, const db_span_t *s), void *arg)
{
    span_gather_t g;
    memset(&g, 0, sizeof g);
    arena_init(&g.a, 16384);
    int64_t lo = maxt_ns > 0 ? mint_ns : INT64_MIN, hi = maxt_ns > 0 ? maxt_ns : INT64_MAX;
    for (size_t i = 0; i < db->n_blocks; i++)
        if (db->blocks[i].spans && spans_overlap(block_meta(db->blocks[i].b), lo, hi))
            spans_file_trace(db->blocks[i].spans, trace_id, lo, hi, gather_span, &g);
    spans_head_trace(db->spans, trace_id, lo, hi, gather_span, &g);
    if (g.n > 1)
        qsort(g.v, g.n, sizeof *g.v, cmp_span);
    size_t delivered = 0;
    for (size_t i = 0; i < g.n; i++) {
        /* The same span from a block and a replayed WAL: deliver once. */
        if (i && g.v[i].start_ns == g.v[i - 1].start_ns &&
            memcmp(g.v[i].span_id, g.v[i - 1].span_id, 8) == 0)
            continue;
        cb(arg, &g.v[i]);
        delivered++;
    }
    free(g.v);
    arena_deinit(&g.a);
    return delivered ? 0 : ERR_NOTFOUND;
}

void db_spans_scan(db_t *db, int64_t mint_ns, int64_t maxt_ns,
                   bool (*cb)(void *arg, const db_span_t *s), void *arg)
{
    for (size_t i = 0; i < db->n_blocks; i++) {
        if (!db->blocks[i].spans || !spans_overlap(block_meta(db->blocks[i].b), mint_ns, maxt_ns))
            continue;
        if (!spans_file_scan(db->blocks[i].spans, mint_ns, maxt_ns, cb, arg))
            return;
    }
    spans_head_scan(db->spans, mint_ns, maxt_ns, cb, arg);
}

/* ---- reads: logs ---- */

static logs_file_t **log_files(db_t *db, int64_t mint_ns, int64_t maxt_ns, size_t *n)
{
    logs_file_t **v = xrealloc(NULL, (db->n_blocks + 1) * sizeof *v);
    size_t k = 0;
    for (size_t i = 0; i < db->n_blocks; i++) {
        const block_meta_t *m = block_meta(db->blocks[i].b);
        if (db->blocks[i].logs && m->log_min_ns <= maxt_ns && m->log_max_ns >= mint_ns)
            v[k++] = db->blocks[i].logs;
    }
    *n = k;
    return v;
}

int db_logs_select(db_t *db, const matcher_t *ms, size_t n, int64_t mint_ns, int64_t maxt_ns,
                   bool backward, size_t limit, bool (*cb)(void *arg, const db_log_entry_t *e),
                   void *arg, err_t *err)
{
    size_t nf;
    logs_file_t **f = log_files(db, mint_ns, maxt_ns, &nf);
    int rc = logs_select(db->logs, f, nf, ms, n, mint_ns, maxt_ns, backward, limit, cb, arg, err);
    free(f);
    return rc;
}

int db_log_label_names(db_t *db, int64_t mint_ns, int64_t maxt_ns, arena_t *a, str_t **out,
                       size_t *n_out, err_t *err)
{
    (void)err;
    size_t nf;
    logs_file_t **f = log_files(db, mint_ns, maxt_ns, &nf);
    int rc = logs_label_names(db->logs, f, nf, mint_ns, maxt_ns, a, out, n_out);
    free(f);
    return rc;
}

int db_log_label_values(db_t *db, str_t name, int64_t mint_ns, int64_t maxt_ns, arena_t *a,
                        str_t **out, size_t *n_out, err_t *err)
{
    (void)err;
    size_t nf;
    logs_file_t **f = log_files(db, mint_ns, maxt_ns, &nf);
    int rc = logs_label_values(db->logs, f, nf, name, mint_ns, maxt_ns, a, out, n_out);
    free(f);
    return rc;
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
    head_range(db, &hlo, &hhi);
    lo = hlo < lo ? hlo : lo;
    hi = hhi > hi ? hhi : hi;
    st->min_time_ms = lo <= hi ? lo : 0;
    st->max_time_ms = lo <= hi ? hi : 0;
    wal_stats_t ws;
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
    uint64_t lsn;
    if (wal_commit(db->wal, &lsn) == 0)
        wal_sync(db->wal, lsn);
    db_poll(db);
    err_t err;
    cut_head(db, &err);
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
