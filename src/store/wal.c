/*
 * wal.c - write-ahead log segments, replay with torn-tail repair, and the group-commit writer.
 *
 * Queue: the owner appends framed records to `pend` under the mutex, plus "marks" (the LSN where
 * a commit ends, or where a new segment begins). The writer thread swaps the whole queue out,
 * writes each run between segment switches with one write(2) (looping only on short writes),
 * syncs per the fsync mode and publishes the new durable LSN, then pokes an eventfd so the event
 * loop runs the completions:
 *   BATCH   one fdatasync per round, however many commits the round holds;
 *   ALWAYS  write + fdatasync per commit mark, publishing after each;
 *   OFF     no fdatasync (only when a segment is finished); durable = written.
 * A segment switch fdatasyncs the old file (except in OFF mode), creates the new one and fsyncs
 * the directory so the file itself survives a crash.
 *
 * Replay maps each segment read-only and walks its records (format in store/format.h); see
 * wal_replay for the corruption policy. Segment numbers only grow; a fresh segment is started on
 * every open so a repaired tail is never appended to. A read-only WAL shares that one reader: it
 * starts at the same checkpoint and stops at the same bad records, but skips the repairs (deleting
 * the older segments, truncating a torn tail) and never starts a writer.
 */
#include "store/wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/crc32c.h"
#include "base/log.h"
#include "store/format.h"
#include "store/internal.h"

#define MARK_COMMIT 1
#define MARK_ROTATE 2
#define PENDING_MAX_DEFAULT (64u << 20)

typedef struct mark {
    uint64_t lsn; /* end of a commit, or first byte of the new segment */
    int kind;
} mark_t;

typedef struct marks {
    mark_t *v;
    size_t n, cap;
} marks_t;

typedef struct segment {
    uint32_t seq;
    uint64_t bytes;
} segment_t;

struct wal {
    char *dir;
    wal_fsync_mode_t mode;
    uint64_t segment_bytes, pending_max;
    int efd;
    bool read_only; /* set at open, never changes */

    /* Owner thread only. */
    uint32_t next_seq; /* number of the segment records are being logically added to */
    uint64_t seg_fill; /* logical bytes in that segment */
    bool started;

    /* Writer thread only. */
    int fd;
    uint32_t fd_seq;
    buf_t wbuf;
    marks_t wmarks;

    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* writer waits for work */
    pthread_cond_t done; /* wal_sync waits for progress */
    /* Guarded by mu. */
    buf_t pend;
    marks_t pmarks;
    uint64_t pend_lsn; /* LSN of the first byte in pend */
    uint64_t durable_lsn;
    int error;
    bool stop, abandon, exited;
    segment_t *segs;
    size_t n_segs, segs_cap;
    uint64_t bytes_written, fsyncs;
    wal_stats_t rstats; /* replay figures */
};

wal_faults_t wal__faults;

void wal__fault_set(int write_at, int torn_at, int fsync_at)
{
    atomic_store(&wal__faults.writes, 0);
    atomic_store(&wal__faults.fsyncs, 0);
    atomic_store(&wal__faults.write_at, write_at);
    atomic_store(&wal__faults.torn_at, torn_at);
    atomic_store(&wal__faults.fsync_at, fsync_at);
}

static void marks_push(marks_t *m, uint64_t lsn, int kind)
{
    if (m->n == m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        mark_t *nv = realloc(m->v, ncap * sizeof *nv);
        if (!nv)
            abort();
        m->v = nv;
        m->cap = ncap;
    }
    m->v[m->n++] = (mark_t){lsn, kind};
}

static void seg_path(const wal_t *w, uint32_t seq, char *out, size_t n)
{
    snprintf(out, n, "%s/%08x", w->dir, seq);
}

/* ---- record framing ---- */

int wal_record_parse(const uint8_t *p, const uint8_t *end, uint8_t *type, const uint8_t **payload,
                     size_t *n)
{
    if (end - p < WAL_RECORD_HDR)
        return ERR_CORRUPT;
    uint32_t len = load_u32le(p), crc = load_u32le(p + 4);
    if (len > WAL_RECORD_MAX || (uint64_t)(end - p - WAL_RECORD_HDR) < len)
        return ERR_CORRUPT;
    if (crc32c(0, p + 8, (size_t)len + 1) != crc)
        return ERR_CORRUPT;
    *type = p[8];
    *payload = p + WAL_RECORD_HDR;
    *n = len;
    return 0;
}

/* ---- open / list ---- */

static int cmp_seg(const void *a, const void *b)
{
    uint32_t x = ((const segment_t *)a)->seq, y = ((const segment_t *)b)->seq;
    return x < y ? -1 : x > y;
}

static void segs_push(wal_t *w, uint32_t seq, uint64_t bytes)
{
    if (w->n_segs == w->segs_cap) {
        size_t ncap = w->segs_cap ? w->segs_cap * 2 : 16;
        segment_t *nv = realloc(w->segs, ncap * sizeof *nv);
        if (!nv)
            abort();
        w->segs = nv;
        w->segs_cap = ncap;
    }
    w->segs[w->n_segs++] = (segment_t){seq, bytes};
}

static int open_wal(const wal_opts_t *o, bool read_only, wal_t **out, err_t *err)
{
    *out = NULL;
    if (!read_only && mkdir(o->dir, 0755) != 0 && errno != EEXIST)
        return err_set(err, ERR_IO, "create %s: %s", o->dir, strerror(errno));
    DIR *d = opendir(o->dir);
    if (!d && !(read_only && errno == ENOENT))
        return err_set(err, ERR_IO, "open %s: %s", o->dir, strerror(errno));
    wal_t *w = calloc(1, sizeof *w);
    if (!w)
        abort();
    w->dir = strdup(o->dir);
    w->mode = o->mode;
    w->segment_bytes = o->segment_bytes ? o->segment_bytes : WAL_SEGMENT_BYTES;
    w->pending_max = o->pending_max_bytes ? o->pending_max_bytes : PENDING_MAX_DEFAULT;
    w->read_only = read_only;
    w->fd = -1;
    w->efd = -1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->wake, NULL);
    pthread_cond_init(&w->done, NULL);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        const char *s = e->d_name;
        if (strlen(s) != 8 || strspn(s, "0123456789abcdef") != 8)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", o->dir, s);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        segs_push(w, (uint32_t)strtoul(s, NULL, 16), (uint64_t)st.st_size);
    }
    if (d)
        closedir(d);
    if (w->n_segs)
        qsort(w->segs, w->n_segs, sizeof *w->segs, cmp_seg);
    w->next_seq = w->n_segs ? w->segs[w->n_segs - 1].seq + 1 : 1;
    *out = w;
    return 0;
}

int wal_open(const wal_opts_t *o, wal_t **out, err_t *err) { return open_wal(o, false, out, err); }

int wal_open_read_only(const char *dir, wal_t **out, err_t *err)
{
    wal_opts_t o = {.dir = dir, .mode = WAL_FSYNC_OFF};
    return open_wal(&o, true, out, err);
}

/* ---- replay ---- */

typedef struct mapped {
    uint8_t *p;
    size_t n;
} mapped_t;

static int map_segment(const wal_t *w, uint32_t seq, mapped_t *m, err_t *err)
{
    char path[4096];
    seg_path(w, seq, path, sizeof path);
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
        madvise(p, (size_t)st.st_size, MADV_SEQUENTIAL);
        m->p = p;
        m->n = (size_t)st.st_size;
    }
    close(fd);
    return 0;
}

static void unmap_segment(mapped_t *m)
{
    if (m->p)
        munmap(m->p, m->n);
    m->p = NULL;
}

/* True if the segment begins with a complete checkpoint (see format.h). */
static bool is_checkpoint_segment(const mapped_t *m)
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

static int truncate_segment(const wal_t *w, uint32_t seq, uint64_t off, err_t *err)
{
    char path[4096];
    seg_path(w, seq, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(err, ERR_IO, "open %s: %s", path, strerror(errno));
    if (ftruncate(fd, (off_t)off) != 0 || fdatasync(fd) != 0) {
        int e = errno;
        close(fd);
        return err_set(err, ERR_IO, "truncate %s: %s", path, strerror(e));
    }
    close(fd);
    return 0;
}

/* A bad record at off in segment i: in the last non-empty segment a torn tail (truncated there,
 * or only counted when read-only), before it corruption (counted, the file kept). Unmaps m. */
static int bad_record(wal_t *w, size_t i, bool last, mapped_t *m, uint64_t off, err_t *err)
{
    char path[4096];
    seg_path(w, w->segs[i].seq, path, sizeof path);
    unsigned long long o = off, rest = m->n - off;
    unmap_segment(m);
    if (!last) {
        log_error("wal: corrupt record in the middle of the log; skipping the rest of this segment",
                  "file=%s offset=%llu skipped_bytes=%llu", path, o, rest);
        w->rstats.corrupt_segments++;
        return 0;
    }
    w->rstats.corrupt_truncations++;
    if (w->read_only) {
        log_warn("wal: torn record at the end of the log; read-only, so reading stops there and "
                 "the file is left as it is",
                 "file=%s offset=%llu ignored_bytes=%llu", path, o, rest);
        return 0;
    }
    log_warn("wal: torn record at the end of the log, truncating",
             "file=%s offset=%llu dropped_bytes=%llu", path, o, rest);
    int rc = truncate_segment(w, w->segs[i].seq, off, err);
    if (!rc)
        w->segs[i].bytes = off;
    return rc;
}

int wal_replay(wal_t *w, wal_replay_cb cb, void *arg, err_t *err)
{
    int64_t t0 = clock_mono_ns();
    size_t start = 0;
    /* Newest complete checkpoint wins; what precedes it is already in blocks. */
    for (size_t i = w->n_segs; i-- > 0;) {
        mapped_t m;
        int rc = map_segment(w, w->segs[i].seq, &m, err);
        if (rc)
            return rc;
        bool ck = is_checkpoint_segment(&m);
        unmap_segment(&m);
        if (ck) {
            start = i;
            break;
        }
    }
    if (start > 0 && !w->read_only) {
        wal_remove_before(w, w->segs[start].seq);
        start = 0;
    }
    size_t last = w->n_segs; /* the last non-empty segment: only there is a bad record torn */
    for (size_t i = w->n_segs; i-- > start;)
        if (w->segs[i].bytes > 0) {
            last = i;
            break;
        }
    for (size_t i = start; i < w->n_segs; i++) {
        mapped_t m;
        int rc = map_segment(w, w->segs[i].seq, &m, err);
        if (rc)
            return rc;
        if (!m.p)
            continue;
        const uint8_t *p = m.p, *end = m.p + m.n;
        while (p < end) {
            uint8_t type;
            const uint8_t *pl;
            size_t n;
            uint64_t off = (uint64_t)(p - m.p);
            if (wal_record_parse(p, end, &type, &pl, &n) != 0) {
                rc = bad_record(w, i, i == last, &m, off, err);
                if (rc)
                    return rc;
                break;
            }
            w->rstats.replay_records++;
            w->rstats.replay_bytes += WAL_RECORD_HDR + n;
            if (cb(arg, type, pl, n) != 0) {
                char path[4096];
                seg_path(w, w->segs[i].seq, path, sizeof path);
                log_error("wal: record could not be applied", "file=%s offset=%llu type=%u", path,
                          (unsigned long long)off, type);
            }
            p = pl + n;
        }
        unmap_segment(&m);
    }
    log_debug("wal replayed", "records=%llu ms=%lld", (unsigned long long)w->rstats.replay_records,
              (long long)((clock_mono_ns() - t0) / 1000000));
    return 0;
}

int store__fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ERR_IO;
    int rc = fsync(fd) == 0 ? 0 : ERR_IO;
    close(fd);
    return rc;
}

/* ---- writer ---- */

static int fault_hit(atomic_int *at, atomic_int *count)
{
    int k = atomic_load_explicit(at, memory_order_relaxed);
    if (!k)
        return 0;
    return atomic_fetch_add(count, 1) + 1 == k;
}

/* Writes all n bytes; returns 0 or an errno. */
static int write_all(int fd, const uint8_t *p, size_t n)
{
    if (atomic_load_explicit(&wal__faults.write_at, memory_order_relaxed) ||
        atomic_load_explicit(&wal__faults.torn_at, memory_order_relaxed)) {
        int k = atomic_fetch_add(&wal__faults.writes, 1) + 1;
        if (k == atomic_load(&wal__faults.write_at))
            return EIO;
        if (k == atomic_load(&wal__faults.torn_at)) {
            ssize_t r = write(fd, p, n / 2);
            (void)r;
            return EIO;
        }
    }
    while (n) {
        ssize_t r = write(fd, p, n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int sync_fd(wal_t *w, int fd)
{
    if (fault_hit(&wal__faults.fsync_at, &wal__faults.fsyncs))
        return EIO;
    if (fdatasync(fd) != 0)
        return errno;
    pthread_mutex_lock(&w->mu);
    w->fsyncs++;
    pthread_mutex_unlock(&w->mu);
    return 0;
}

static int open_segment(wal_t *w, uint32_t seq)
{
    char path[4096];
    seg_path(w, seq, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno;
    if (store__fsync_dir(w->dir) != 0) {
        close(fd);
        return EIO;
    }
    w->fd = fd;
    w->fd_seq = seq;
    pthread_mutex_lock(&w->mu);
    segs_push(w, seq, 0);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

static void account_write(wal_t *w, size_t n)
{
    pthread_mutex_lock(&w->mu);
    w->bytes_written += n;
    for (size_t i = w->n_segs; i-- > 0;)
        if (w->segs[i].seq == w->fd_seq) {
            w->segs[i].bytes += n;
            break;
        }
    pthread_mutex_unlock(&w->mu);
}

static void publish(wal_t *w, uint64_t lsn, int error)
{
    pthread_mutex_lock(&w->mu);
    if (error) {
        if (!w->error)
            log_error("wal: write failed; no further commits will be acknowledged",
                      "error=\"%s\" segment=%08x", strerror(error), w->fd_seq);
        w->error = ERR_IO;
    } else if (lsn > w->durable_lsn) {
        w->durable_lsn = lsn;
    }
    pthread_cond_broadcast(&w->done);
    pthread_mutex_unlock(&w->mu);
    uint64_t one = 1;
    ssize_t r = write(w->efd, &one, sizeof one);
    (void)r;
}

/* Writes [p, p+n) into the current segment. Returns 0 or an errno. */
static int emit(wal_t *w, const uint8_t *p, size_t n)
{
    if (!n)
        return 0;
    int e = write_all(w->fd, p, n);
    if (!e)
        account_write(w, n);
    return e;
}

static int switch_segment(wal_t *w)
{
    if (w->mode != WAL_FSYNC_OFF) {
        int e = sync_fd(w, w->fd);
        if (e)
            return e;
    }
    close(w->fd);
    w->fd = -1;
    return open_segment(w, w->fd_seq + 1);
}

/* One round: everything in wbuf/wmarks, the first byte at LSN base. */
static int write_round(wal_t *w, uint64_t base)
{
    const uint8_t *p = w->wbuf.pos;
    uint64_t lsn = base, end = base + buf_len(&w->wbuf);
    int e = 0;
    for (size_t i = 0; i < w->wmarks.n && !e; i++) {
        mark_t mk = w->wmarks.v[i];
        e = emit(w, p + (lsn - base), (size_t)(mk.lsn - lsn));
        lsn = mk.lsn;
        if (e)
            break;
        if (mk.kind == MARK_ROTATE) {
            e = switch_segment(w);
        } else if (w->mode == WAL_FSYNC_ALWAYS) {
            e = sync_fd(w, w->fd);
            if (!e)
                publish(w, lsn, 0);
        }
    }
    if (!e)
        e = emit(w, p + (lsn - base), (size_t)(end - lsn));
    if (!e && w->mode == WAL_FSYNC_BATCH && end > base)
        e = sync_fd(w, w->fd);
    if (!e && w->mode != WAL_FSYNC_ALWAYS)
        publish(w, end, 0);
    return e;
}

static void *writer_main(void *arg)
{
    wal_t *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (!w->stop && buf_len(&w->pend) == 0 && w->pmarks.n == 0)
            pthread_cond_wait(&w->wake, &w->mu);
        if (w->abandon || (w->stop && buf_len(&w->pend) == 0 && w->pmarks.n == 0)) {
            pthread_mutex_unlock(&w->mu);
            break;
        }
        buf_t tb = w->pend;
        w->pend = w->wbuf;
        w->wbuf = tb;
        marks_t tm = w->pmarks;
        w->pmarks = w->wmarks;
        w->wmarks = tm;
        uint64_t base = w->pend_lsn;
        w->pend_lsn += buf_len(&w->wbuf);
        int failed = w->error;
        pthread_mutex_unlock(&w->mu);

        if (!failed) {
            int e = write_round(w, base);
            if (e)
                publish(w, 0, e);
        }
        buf_clear(&w->wbuf);
        w->wmarks.n = 0;
    }
    if (w->fd >= 0 && !w->abandon) {
        pthread_mutex_lock(&w->mu);
        int failed = w->error;
        pthread_mutex_unlock(&w->mu);
        if (!failed && fdatasync(w->fd) != 0)
            publish(w, 0, errno);
    }
    pthread_mutex_lock(&w->mu);
    w->exited = true;
    pthread_cond_broadcast(&w->done);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int wal_start(wal_t *w, err_t *err)
{
    if (w->read_only)
        return err_set(err, ERR_UNSUPPORTED, "WAL %s is open read-only", w->dir);
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0)
        return err_set(err, ERR_IO, "eventfd: %s", strerror(errno));
    int e = open_segment(w, w->next_seq);
    if (e)
        return err_set(err, ERR_IO, "create WAL segment %s/%08x: %s", w->dir, w->next_seq,
                       strerror(e));
    w->seg_fill = 0;
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        close(w->fd);
        w->fd = -1;
        return err_set(err, ERR_IO, "cannot start the WAL writer thread");
    }
    w->started = true;
    return 0;
}

/* ---- owner-thread API ---- */

void wal_add(wal_t *w, uint8_t type, const void *payload, size_t n)
{
    if (w->read_only)
        return;
    size_t rec = WAL_RECORD_HDR + n;
    pthread_mutex_lock(&w->mu);
    if (w->error) {
        pthread_mutex_unlock(&w->mu);
        return;
    }
    if (w->seg_fill > 0 && w->seg_fill + rec > w->segment_bytes) {
        marks_push(&w->pmarks, w->pend_lsn + buf_len(&w->pend), MARK_ROTATE);
        w->next_seq++;
        w->seg_fill = 0;
    }
    uint8_t *p = buf_reserve(&w->pend, rec);
    store_u32le(p, (uint32_t)n);
    p[8] = type;
    if (n)
        memcpy(p + WAL_RECORD_HDR, payload, n);
    store_u32le(p + 4, crc32c(0, p + 8, n + 1));
    w->pend.last += rec;
    w->seg_fill += rec;
    pthread_mutex_unlock(&w->mu);
}

int wal_commit(wal_t *w, uint64_t *lsn)
{
    if (w->read_only) {
        *lsn = 0;
        return ERR_UNSUPPORTED;
    }
    pthread_mutex_lock(&w->mu);
    *lsn = w->pend_lsn + buf_len(&w->pend);
    int rc = w->error;
    if (buf_len(&w->pend) > 0 && !rc) {
        marks_push(&w->pmarks, *lsn, MARK_COMMIT);
        pthread_cond_signal(&w->wake);
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

uint32_t wal_rotate(wal_t *w)
{
    if (w->read_only)
        return w->next_seq;
    pthread_mutex_lock(&w->mu);
    marks_push(&w->pmarks, w->pend_lsn + buf_len(&w->pend), MARK_ROTATE);
    w->next_seq++;
    w->seg_fill = 0;
    uint32_t seq = w->next_seq;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
    return seq;
}

bool wal_overloaded(wal_t *w)
{
    pthread_mutex_lock(&w->mu);
    bool r = buf_len(&w->pend) > w->pending_max;
    pthread_mutex_unlock(&w->mu);
    return r;
}

int wal_event_fd(const wal_t *w) { return w->efd; }

uint64_t wal_status(wal_t *w, int *error)
{
    uint64_t v;
    ssize_t r = read(w->efd, &v, sizeof v);
    (void)r;
    pthread_mutex_lock(&w->mu);
    uint64_t lsn = w->durable_lsn;
    *error = w->error;
    pthread_mutex_unlock(&w->mu);
    return lsn;
}

uint64_t wal_durable(wal_t *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t lsn = w->durable_lsn;
    pthread_mutex_unlock(&w->mu);
    return lsn;
}

int wal_sync(wal_t *w, uint64_t lsn)
{
    pthread_mutex_lock(&w->mu);
    if (buf_len(&w->pend))
        pthread_cond_signal(&w->wake);
    while (w->durable_lsn < lsn && !w->error && !w->exited && w->started)
        pthread_cond_wait(&w->done, &w->mu);
    int rc = w->durable_lsn >= lsn ? 0 : ERR_IO;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

void wal_remove_before(wal_t *w, uint32_t seq)
{
    if (w->read_only)
        return;
    pthread_mutex_lock(&w->mu);
    size_t k = 0;
    for (size_t i = 0; i < w->n_segs; i++) {
        if (w->segs[i].seq < seq) {
            char path[4096];
            seg_path(w, w->segs[i].seq, path, sizeof path);
            if (unlink(path) != 0 && errno != ENOENT)
                log_warn("wal: cannot remove segment", "file=%s error=\"%s\"", path,
                         strerror(errno));
        } else {
            w->segs[k++] = w->segs[i];
        }
    }
    bool removed = k != w->n_segs;
    w->n_segs = k;
    pthread_mutex_unlock(&w->mu);
    if (removed)
        store__fsync_dir(w->dir);
}

void wal_get_stats(wal_t *w, wal_stats_t *st)
{
    pthread_mutex_lock(&w->mu);
    *st = w->rstats;
    st->bytes_written = w->bytes_written;
    st->fsyncs = w->fsyncs;
    st->segments = w->n_segs;
    st->bytes_on_disk = 0;
    for (size_t i = 0; i < w->n_segs; i++)
        st->bytes_on_disk += w->segs[i].bytes;
    pthread_mutex_unlock(&w->mu);
}

static void wal_free(wal_t *w)
{
    if (w->fd >= 0)
        close(w->fd);
    if (w->efd >= 0)
        close(w->efd);
    buf_deinit(&w->pend);
    buf_deinit(&w->wbuf);
    free(w->pmarks.v);
    free(w->wmarks.v);
    free(w->segs);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->done);
    free(w->dir);
    free(w);
}

static void stop_writer(wal_t *w, bool abandon)
{
    if (!w->started)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    w->abandon = abandon;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    w->started = false;
}

void wal_close(wal_t *w)
{
    if (!w)
        return;
    stop_writer(w, false);
    wal_free(w);
}

void wal__abandon(wal_t *w)
{
    if (!w)
        return;
    stop_writer(w, true);
    wal_free(w);
}
