/*
 * db_maintain.c - the facade's periodic work (db_maintain, store/db.h): cutting the head into a
 * block, checkpointing the WAL, compaction and retention.
 *
 * Head cut (db_maintain, a commit that finds the head over head_max_bytes, db_close): the head's
 * metrics, spans and logs become one block; then the WAL switches to a new segment that starts
 * with a checkpoint (every live series' id, labels, newest timestamp and value, plus all metadata,
 * closed by CHECKPOINT_END); once that is durable the older segments are deleted. A crash anywhere
 * in between leaves either the old segments (replayed again: data also in the block is
 * deduplicated on read and by compaction) or a complete checkpoint.
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
 */
#include "store/db.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/varint.h"
#include "store/block.h"
#include "store/format.h"
#include "store/head.h"
#include "store/index.h"
#include "store/internal.h"
#include "store/logs.h"
#include "store/spans.h"
#include "store/wal.h"

#define IDLE_SERIES_RANGES 4 /* forget series idle for this many head ranges at a cut */

static int64_t ns_to_ms(int64_t ns) { return ns >= 0 ? ns / 1000000 : -((-ns + 999999) / 1000000); }

static void put_f64(buf_t *b, double v)
{
    uint64_t x;
    memcpy(&x, &v, 8);
    buf_put_u64le(b, x);
}

/* ---- head cut ---- */

static bool head_has_data(const db_t *db)
{
    return db->head->n_samples || spans_head_count(db->spans) || logs_head_entries(db->logs);
}

void db__head_range(const db_t *db, int64_t *mint, int64_t *maxt)
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

uint64_t db__head_bytes(const db_t *db)
{
    return db->head->bytes + index_mem_bytes(&db->head->index) + spans_head_bytes(db->spans) +
           logs_head_bytes(db->logs);
}

bool db__head_over(const db_t *db)
{
    uint64_t now = db__head_bytes(db);
    return db->o.head_max_bytes && now > db->head_base_bytes &&
           now - db->head_base_bytes >= db->o.head_max_bytes;
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
    char *path = db__path_join(db->blocks_dir, id);
    dblock_t d;
    int rc = db__dblock_open(path, &d, err);
    free(path);
    if (!rc)
        db__blocks_add(db, d);
    return rc;
}

static int write_head_block(db_t *db, err_t *err)
{
    block_writer_t *w;
    int rc = block_writer_new(db->blocks_dir, &w, err);
    if (rc)
        return rc;
    head_t *h = db->head;
    head_series_t **v = db__xrealloc(NULL, (h->n_series + 1) * sizeof *v);
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
        db__enc_series(b, s->id, &s->ls);
        buf_put_uvarint(b, zigzag_enc(s->max_t));
        put_f64(b, s->last_v);
        if (buf_len(b) >= DB_RECORD_FLUSH_BYTES) {
            wal_add(db->wal, WAL_REC_CHECKPOINT, b->pos, buf_len(b));
            buf_clear(b);
        }
    }
    if (buf_len(b))
        wal_add(db->wal, WAL_REC_CHECKPOINT, b->pos, buf_len(b));
    buf_clear(b);
    for (size_t i = 0; i < h->n_meta; i++) {
        db__enc_meta(b, h->meta[i].metric, h->meta[i].type, h->meta[i].help, h->meta[i].unit);
        if (buf_len(b) >= DB_RECORD_FLUSH_BYTES) {
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

int db__cut_head(db_t *db, err_t *err)
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
    db->head_base_bytes = db__head_bytes(db);
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
    char *del = db__xrealloc(NULL, n);
    snprintf(del, n, "%s.del", dir);
    if (rename(dir, del) == 0) {
        store__fsync_dir(db->blocks_dir);
        store__rmtree(del);
    } else {
        log_error("cannot remove block", "dir=%s error=\"%s\"", dir, strerror(errno));
    }
    free(del);
    log_info("block removed", "id=%s reason=%s", block_id(d.b), why);
    db->retired = db__grow(db->retired, &db->cap_retired, db->n_retired, sizeof *db->retired);
    db->retired[db->n_retired++] = d;
}

static int merge_blocks(db_t *db, const size_t *idx, size_t n, err_t *err)
{
    block_t **in = db__xrealloc(NULL, n * sizeof *in);
    spans_file_t **sf = db__xrealloc(NULL, n * sizeof *sf);
    logs_file_t **lf = db__xrealloc(NULL, n * sizeof *lf);
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
            size_t *sorted = db__xrealloc(NULL, n * sizeof *sorted);
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
    size_t *idx = db__xrealloc(NULL, (db->n_blocks + 1) * sizeof *idx);
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
        db__dblock_close(&db->retired[i]);
    db->n_retired = 0;
}

void db_maintain(db_t *db, int64_t now_ms)
{
    if (db->o.read_only)
        return;
    close_retired(db);
    if (db->closing)
        return;
    if (head_has_data(db)) {
        int64_t lo, hi;
        db__head_range(db, &lo, &hi);
        bool cut =
            hi - lo >= db->o.block_range_ms || db__head_over(db) ||
            (db->head_first_wall_ms && now_ms - db->head_first_wall_ms >= db->o.block_range_ms);
        if (cut) {
            err_t err;
            db__cut_head(db, &err);
        }
    }
    for (int i = 0; i < 16 && compact_once(db, now_ms); i++)
        ;
    apply_retention(db, now_ms);
}
