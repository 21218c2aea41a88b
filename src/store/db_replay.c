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
 * Read-only opens (db_opts_t.read_only) have no wal_t: wal_replay deletes segments older than the
 * newest checkpoint and truncates a torn tail, so this file reads the segments itself with the
 * same rules (start at the newest segment that begins with a complete checkpoint; stop a segment
 * at its first bad record, counted as a torn tail in the last non-empty segment and as corruption
 * before it) and never changes a file.
 */
#include "store/db.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/varint.h"
#include "store/format.h"
#include "store/head.h"
#include "store/internal.h"
#include "store/labels.h"
#include "store/logs.h"
#include "store/spans.h"
#include "store/wal.h"

/* ---- record decoding ---- */

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

/* ---- read-only replay ---- */

typedef struct seg {
    uint32_t seq;
    uint64_t bytes;
} seg_t;

typedef struct seg_map {
    const uint8_t *p; /* NULL for an empty file */
    size_t n;
} seg_map_t;

static int cmp_seg(const void *a, const void *b)
{
    uint32_t x = ((const seg_t *)a)->seq, y = ((const seg_t *)b)->seq;
    return x < y ? -1 : x > y;
}

/* The segments of the WAL directory in log order; none when the directory does not exist. The
 * caller frees *out. */
static int list_segments(const db_t *db, seg_t **out, size_t *n_out, err_t *err)
{
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(db->wal_dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        return err_set(err, ERR_IO, "open %s: %s", db->wal_dir, strerror(errno));
    }
    seg_t *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *name = e->d_name;
        if (strlen(name) != 8 || strspn(name, "0123456789abcdef") != 8)
            continue;
        char *path = db__path_join(db->wal_dir, name);
        struct stat st;
        bool regular = stat(path, &st) == 0 && S_ISREG(st.st_mode);
        free(path);
        if (!regular)
            continue;
        v = db__grow(v, &cap, n, sizeof *v);
        v[n++] = (seg_t){(uint32_t)strtoul(name, NULL, 16), (uint64_t)st.st_size};
    }
    closedir(d);
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_seg);
    *out = v;
    *n_out = n;
    return 0;
}

static char *seg_path(const db_t *db, uint32_t seq)
{
    char name[16];
    snprintf(name, sizeof name, "%08x", seq);
    return db__path_join(db->wal_dir, name);
}

static int map_segment(const char *path, seg_map_t *m, err_t *err)
{
    m->p = NULL;
    m->n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(err, ERR_IO, "open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return err_set(err, ERR_IO, "stat %s: %s", path, strerror(e));
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return err_set(err, ERR_IO, "mmap %s: %s", path, strerror(e));
        }
        m->p = p;
        m->n = (size_t)st.st_size;
    }
    close(fd);
    return 0;
}

static void unmap_segment(seg_map_t *m)
{
    if (m->p)
        munmap((void *)m->p, m->n);
    m->p = NULL;
}

/* True if the segment begins with a complete checkpoint (see format.h). */
static bool starts_with_checkpoint(const seg_map_t *m)
{
    if (!m->p)
        return false;
    const uint8_t *p = m->p, *end = m->p + m->n;
    for (;;) {
        uint8_t type;
        const uint8_t *pl;
        size_t n;
        if (wal_record_parse(p, end, &type, &pl, &n) != 0)
            return false;
        if (type == WAL_REC_CHECKPOINT_END)
            return true;
        if (type != WAL_REC_CHECKPOINT && type != WAL_REC_METADATA)
            return false;
        p = pl + n;
    }
}

/* Applies the segment's records up to its end or its first bad one. */
static void replay_segment(db_t *db, const char *path, const seg_map_t *m, bool last)
{
    if (!m->p)
        return;
    const uint8_t *p = m->p, *end = m->p + m->n;
    while (p < end) {
        uint8_t type;
        const uint8_t *pl;
        size_t n;
        uint64_t off = (uint64_t)(p - m->p);
        if (wal_record_parse(p, end, &type, &pl, &n) != 0) {
            if (last) {
                log_warn("wal: torn record at the end of the log; read-only, so reading stops "
                         "there and the file is left as it is",
                         "file=%s offset=%llu ignored_bytes=%llu", path, (unsigned long long)off,
                         (unsigned long long)(m->n - off));
                db->ro_wal.corrupt_truncations++;
            } else {
                log_error("wal: corrupt record in the middle of the log; skipping the rest "
                          "of this segment",
                          "file=%s offset=%llu skipped_bytes=%llu", path, (unsigned long long)off,
                          (unsigned long long)(m->n - off));
                db->ro_wal.corrupt_segments++;
            }
            return;
        }
        db->ro_wal.replay_records++;
        db->ro_wal.replay_bytes += WAL_RECORD_HDR + n;
        if (replay_record(db, type, pl, n) != 0)
            log_error("wal: record could not be applied", "file=%s offset=%llu type=%u", path,
                      (unsigned long long)off, type);
        p = pl + n;
    }
}

static int replay_read_only(db_t *db, err_t *err)
{
    seg_t *segs;
    size_t n;
    int rc = list_segments(db, &segs, &n, err);
    if (rc)
        return rc;
    db->ro_wal.segments = n;
    for (size_t i = 0; i < n; i++)
        db->ro_wal.bytes_on_disk += segs[i].bytes;
    /* Newest complete checkpoint wins; what precedes it is already in blocks. */
    size_t start = 0;
    for (size_t i = n; i-- > 0;) {
        char *path = seg_path(db, segs[i].seq);
        seg_map_t m;
        rc = map_segment(path, &m, err);
        free(path);
        if (rc)
            break;
        bool checkpoint = starts_with_checkpoint(&m);
        unmap_segment(&m);
        if (checkpoint) {
            start = i;
            break;
        }
    }
    size_t last = n; /* the last non-empty segment: only there is a bad record a torn tail */
    for (size_t i = n; i-- > start;)
        if (segs[i].bytes > 0) {
            last = i;
            break;
        }
    for (size_t i = start; i < n && !rc; i++) {
        char *path = seg_path(db, segs[i].seq);
        seg_map_t m;
        rc = map_segment(path, &m, err);
        if (!rc)
            replay_segment(db, path, &m, i == last);
        unmap_segment(&m);
        free(path);
    }
    free(segs);
    return rc;
}

int db__replay(db_t *db, err_t *err)
{
    if (db->o.read_only)
        return replay_read_only(db, err);
    return wal_replay(db->wal, replay_record, db, err);
}
