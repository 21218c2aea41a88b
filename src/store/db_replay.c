/*
 * db_replay.c - rebuilds the facade's in-memory head from the WAL at open (store/db.h): decodes
 * each record (layouts in store/format.h) and applies it to the metric head, the span head and
 * the log head.
 *
 * Series ids: a SERIES or CHECKPOINT record normally recreates its series under the logged id.
 * When replay meets a label set the head already knows under another id (segments replayed again
 * after a crash between a head cut and the deletion of the old segments), or an id already taken
 * by another label set (damage upstream), the WAL id is aliased to the head series for the rest
 * of the replay, so later SAMPLES records still land on the right series.
 *
 * Read-only opens (db_opts_t.read_only) replay through a read-only wal_t (wal_open_read_only):
 * the same reader and rules as a writer's open, but the segments older than the newest checkpoint
 * stay and a torn tail is counted and left in place, so no file changes.
 */
#include "store/db.h"

#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/varint.h"
#include "store/format.h"
#include "store/head.h"
#include "store/internal.h"
#include "store/labels.h"
#include "store/logs.h"
#include "store/spans.h"
#include "store/wal.h"

/* ---- record decoding (the rest of the reader is store_rd_t, store/internal.h) ---- */

static double rd_f64(store_rd_t *r)
{
    const uint8_t *p = store__rd_bytes(r, 8);
    uint64_t x = p ? load_u64le(p) : 0;
    double v;
    memcpy(&v, &x, 8);
    return v;
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
    store_rd_t r = {p, p + n, false};
    arena_reset(&db->replay_arena);
    switch (type) {
    case WAL_REC_SERIES:
        while (r.p < r.end && !r.bad) {
            uint64_t id = store__rd_uv(&r);
            labels_t ls = store__rd_labels(&r, &db->replay_arena);
            if (!r.bad)
                replay_series(db, id, &ls);
        }
        break;
    case WAL_REC_SAMPLES: {
        uint64_t id = 0;
        int64_t ts = 0;
        while (r.p < r.end && !r.bad) {
            id += (uint64_t)zigzag_dec(store__rd_uv(&r));
            ts = (int64_t)((uint64_t)ts + (uint64_t)zigzag_dec(store__rd_uv(&r)));
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
            str_t metric = store__rd_str(&r);
            const uint8_t *t = store__rd_bytes(&r, 1);
            str_t help = store__rd_str(&r), unit = store__rd_str(&r);
            if (!r.bad) /* every field was read: t is set */
                head_set_meta(db->head, metric, (db_mtype_t)*t, help, unit);
        }
        break;
    case WAL_REC_CHECKPOINT:
        while (r.p < r.end && !r.bad) {
            uint64_t id = store__rd_uv(&r);
            labels_t ls = store__rd_labels(&r, &db->replay_arena);
            int64_t ts = zigzag_dec(store__rd_uv(&r));
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

/* A read-only db has no wal_t: a read-only one lives for the replay alone, and what it found is
 * kept for the stats. */
static int replay_read_only(db_t *db, err_t *err)
{
    wal_t *w;
    int rc = wal_open_read_only(db->wal_dir, &w, err);
    if (rc)
        return rc;
    rc = wal_replay(w, replay_record, db, err);
    wal_get_stats(w, &db->ro_wal);
    wal_close(w);
    return rc;
}

int db__replay(db_t *db, err_t *err)
{
    if (db->o.read_only)
        return replay_read_only(db, err);
    return wal_replay(db->wal, replay_record, db, err);
}
