/*
 * filelog_tail.c - the server's `sources:` tailers (the filelog_t part of ingest/filelog.h), split
 * from filelog.c, which holds the mapper, config, positions and follower they use.
 *
 * On the loop thread: one follower per source, woken by inotify on its directory, a 500 ms tick
 * (stat poll, positions save, gone-file timeouts) and a zero-delay timer while data is left.
 * Lines are mapped and gathered into batches of at most TAIL_BATCH_LINES lines / TAIL_BATCH_BYTES
 * bytes, each committed with db_commit, at most TAIL_MAX_INFLIGHT at a time. A batch carries, per
 * file it touched, the file's generation and the offset after its last line; when db_commit's
 * callback reports it durable those offsets become the files' acknowledged positions, which are
 * what positions.json records (saved at most once a second, and at filelog_free). A commit refused
 * with ERR_OVERLOAD is retried on the next tick; a failed one (ERR_IO) rewinds every follower to
 * its acknowledged offsets so the lines are read again.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/selfmon.h"
#include "ingest/filelog.h"

/* ------------------------------------------------------------------------------------------------
 * The server's tailers
 * ---------------------------------------------------------------------------------------------- */

#define TAIL_TICK_MS 500
#define TAIL_SAVE_EVERY_MS 1000
#define TAIL_BATCH_LINES 4096
#define TAIL_BATCH_BYTES (4u << 20)
#define TAIL_MAX_INFLIGHT 4

typedef struct tail_ack {
    filelog_file_t *file;
    uint32_t gen;
    uint64_t end_off;
} tail_ack_t;

/* One commit in flight: the files it advances. */
typedef struct tail_commit {
    filelog_t *fl;
    tail_ack_t *acks;
    size_t n_acks, cap_acks;
    size_t lines;
} tail_commit_t;

typedef struct tail_src {
    filelog_t *fl;
    const filelog_source_t *src;
    filelog_follow_t *follow;
    loop_watch_t *watch;
} tail_src_t;

struct filelog {
    loop_t *loop;
    db_t *db;
    char *pos_path;
    filelog_positions_t saved; /* loaded at start: consulted for files found later too */
    tail_src_t *srcs;
    size_t n_srcs;
    loop_timer_t *tick;
    loop_timer_t *kick; /* one-shot "read more now"; NULL when none is pending */
    int inflight;
    bool stopped, dirty;
    int64_t last_save_ms;
    /* the batch being filled */
    db_batch_t *batch;
    tail_commit_t *cur;
    size_t batch_bytes;
    const tail_src_t *cur_src;
    arena_t scratch;
    filelog_stats_t st;
    filelog_stats_t reported; /* what the /metrics counters have been given so far */
    selfmon_counter_t *m_committed, *m_refused, *m_not_json, *m_truncated, *m_rot, *m_trunc;
};

static void tail_run(filelog_t *fl);

static void commit_free(tail_commit_t *c)
{
    for (size_t i = 0; i < c->n_acks; i++)
        filelog_file_unref(c->acks[i].file);
    free(c->acks);
    free(c);
}

static void save_positions(filelog_t *fl)
{
    filelog_positions_t p = {0};
    for (size_t i = 0; i < fl->n_srcs; i++)
        filelog_follow_positions(fl->srcs[i].follow, &p);
    err_t err;
    if (filelog_positions_save(fl->pos_path, &p, &err) != 0)
        log_warn("cannot save file positions", "err=\"%s\"", err.msg);
    filelog_positions_free(&p);
    fl->dirty = false;
    fl->last_save_ms = clock_now_ms();
}

static void on_committed(void *arg, const db_commit_result_t *res)
{
    tail_commit_t *c = arg;
    filelog_t *fl = c->fl;
    fl->inflight--;
    if (res->status == 0) {
        for (size_t i = 0; i < c->n_acks; i++)
            filelog_file_ack(c->acks[i].file, c->acks[i].gen, c->acks[i].end_off);
        fl->st.lines_committed += res->logs_accepted;
        fl->st.lines_rejected += res->logs_rejected;
        if (res->logs_rejected)
            log_warn("file log lines refused by the store", "n=%" PRIu64 " reason=\"%s\"",
                     res->logs_rejected, res->reject_reason);
        fl->dirty = true;
    } else {
        /* Not durable: read those lines again from the last acknowledged offsets. */
        fl->st.commit_failures++;
        log_warn("file log commit failed; will read again", "lines=%zu err=%s", c->lines,
                 err_str(res->status));
        for (size_t i = 0; i < fl->n_srcs; i++)
            filelog_follow_rewind(fl->srcs[i].follow);
    }
    commit_free(c);
    if (!fl->stopped)
        tail_run(fl);
}

static void on_kick(void *arg)
{
    filelog_t *fl = arg;
    fl->kick = NULL;
    tail_run(fl);
}

static void kick_soon(filelog_t *fl)
{
    if (!fl->kick && !fl->stopped)
        fl->kick = loop_timer_start(fl->loop, 0, false, on_kick, fl);
}

/* Sends the batch being filled (if any). Returns false when the store is overloaded (the batch
 * is kept for the next tick). */
static bool flush_batch(filelog_t *fl)
{
    if (!fl->batch)
        return true;
    if (!fl->cur->lines) {
        db_batch_free(fl->batch);
        commit_free(fl->cur);
        fl->batch = NULL;
        fl->cur = NULL;
        return true;
    }
    int rc = db_commit(fl->db, fl->batch, on_committed, fl->cur);
    if (rc == ERR_OVERLOAD)
        return false;
    if (rc != 0) {
        /* closing: the lines stay unacknowledged and are read again next time */
        db_batch_free(fl->batch);
        commit_free(fl->cur);
    } else {
        fl->inflight++;
    }
    fl->batch = NULL;
    fl->cur = NULL;
    fl->batch_bytes = 0;
    return true;
}

static bool on_line(void *arg, filelog_file_t *file, str_t line, uint64_t end_off)
{
    filelog_t *fl = arg;
    const tail_src_t *s = fl->cur_src;
    if (!fl->batch) {
        fl->batch = db_batch_new();
        fl->cur = calloc(1, sizeof *fl->cur);
        if (!fl->cur)
            abort();
        fl->cur->fl = fl;
    }
    filelog_entry_t e;
    filelog_map_line(&s->src->map, line, clock_now_ns(), &fl->scratch, &e);
    fl->st.lines_read++;
    if (!e.json && !s->src->map.raw)
        fl->st.non_json_lines++;
    label_t *sv = arena_alloc(&fl->scratch, (e.stream.n + 1) * sizeof *sv);
    if (e.stream.n)
        memcpy(sv, e.stream.v, e.stream.n * sizeof *sv);
    labels_t stream = {sv, e.stream.n};
    if (!labels_get(&stream, "filename").ptr)
        sv[stream.n++] = (label_t){STR("filename"), str_cstr(filelog_file_path(file))};
    db_batch_add_log(fl->batch, &stream, e.ts_ns, e.line, &e.meta);
    arena_reset(&fl->scratch);

    tail_commit_t *c = fl->cur;
    c->lines++;
    tail_ack_t *last = c->n_acks ? &c->acks[c->n_acks - 1] : NULL;
    if (!last || last->file != file) {
        last = NULL;
        for (size_t i = 0; i < c->n_acks; i++)
            if (c->acks[i].file == file)
                last = &c->acks[i];
    }
    if (!last) {
        if (c->n_acks == c->cap_acks) {
            c->cap_acks = c->cap_acks ? c->cap_acks * 2 : 4;
            c->acks = realloc(c->acks, c->cap_acks * sizeof *c->acks);
            if (!c->acks)
                abort();
        }
        last = &c->acks[c->n_acks++];
        last->file = file;
        filelog_file_ref(file);
    }
    last->gen = filelog_file_gen(file);
    last->end_off = end_off;
    fl->batch_bytes += line.len;
    return c->lines < TAIL_BATCH_LINES && fl->batch_bytes < TAIL_BATCH_BYTES;
}

static void collect_stats(filelog_t *fl)
{
    uint64_t trunc = 0, rot = 0, tr = 0, open_files = 0;
    for (size_t i = 0; i < fl->n_srcs; i++) {
        filelog_follow_stats_t st;
        filelog_follow_get_stats(fl->srcs[i].follow, &st);
        trunc += st.truncated_lines;
        rot += st.rotations;
        tr += st.truncations;
        open_files += st.files_open;
    }
    fl->st.truncated_lines = trunc;
    fl->st.rotations = rot;
    fl->st.truncations = tr;
    fl->st.files_open = open_files;
}

/* Reads and commits until the files are drained, the in-flight limit is reached, or the store
 * pushes back. */
static void tail_run(filelog_t *fl)
{
    if (fl->stopped)
        return;
    uint64_t trunc_before = fl->st.truncated_lines;
    bool more = false;
    for (int round = 0; round < 8; round++) {
        if (fl->batch && !flush_batch(fl))
            return; /* overloaded: the tick retries */
        if (fl->inflight >= TAIL_MAX_INFLIGHT)
            return; /* on_committed runs us again */
        more = false;
        for (size_t i = 0; i < fl->n_srcs; i++) {
            fl->cur_src = &fl->srcs[i];
            if (filelog_follow_poll(fl->srcs[i].follow, TAIL_BATCH_BYTES, on_line, fl))
                more = true;
            if (fl->batch &&
                !(fl->cur->lines < TAIL_BATCH_LINES && fl->batch_bytes < TAIL_BATCH_BYTES)) {
                more = true;
                break;
            }
        }
        if (!flush_batch(fl))
            return;
        if (!more)
            break;
    }
    collect_stats(fl);
    if (fl->st.truncated_lines > trunc_before)
        log_warn("file log lines longer than the limit were truncated",
                 "n=%" PRIu64 " limit_bytes=%u", fl->st.truncated_lines - trunc_before,
                 FILELOG_MAX_LINE_BYTES);
    if (more)
        kick_soon(fl);
}

/* Brings the /metrics counters up to date with fl->st. */
static void report(filelog_t *fl)
{
    filelog_stats_t *r = &fl->reported, *st = &fl->st;
    selfmon_counter_add(fl->m_committed, (double)(st->lines_committed - r->lines_committed));
    selfmon_counter_add(fl->m_refused, (double)(st->lines_rejected - r->lines_rejected));
    selfmon_counter_add(fl->m_not_json, (double)(st->non_json_lines - r->non_json_lines));
    selfmon_counter_add(fl->m_truncated, (double)(st->truncated_lines - r->truncated_lines));
    selfmon_counter_add(fl->m_rot, (double)(st->rotations - r->rotations));
    selfmon_counter_add(fl->m_trunc, (double)(st->truncations - r->truncations));
    *r = *st;
}

static void on_tick(void *arg)
{
    filelog_t *fl = arg;
    tail_run(fl);
    collect_stats(fl);
    report(fl);
    if (fl->dirty && clock_now_ms() - fl->last_save_ms >= TAIL_SAVE_EVERY_MS)
        save_positions(fl);
}

static void on_inotify(void *arg)
{
    tail_src_t *s = arg;
    filelog_follow_drain(s->follow);
    tail_run(s->fl);
}

filelog_t *filelog_start(loop_t *l, db_t *db, const char *data_dir, const filelog_source_t *src,
                         size_t n, err_t *err)
{
    filelog_t *fl = calloc(1, sizeof *fl);
    if (!fl)
        abort();
    fl->loop = l;
    fl->db = db;
    size_t plen = strlen(data_dir) + sizeof "/positions.json";
    fl->pos_path = malloc(plen);
    if (!fl->pos_path)
        abort();
    snprintf(fl->pos_path, plen, "%s/positions.json", data_dir);
    arena_init(&fl->scratch, 16384);
    static const char *const lines_help = "JSON log file lines (sources:) by outcome";
    fl->m_committed =
        selfmon_counter("skillscope_filelog_lines_total", lines_help, "outcome=\"committed\"");
    fl->m_refused =
        selfmon_counter("skillscope_filelog_lines_total", lines_help, "outcome=\"refused\"");
    fl->m_not_json =
        selfmon_counter("skillscope_filelog_lines_total", lines_help, "outcome=\"not_json\"");
    fl->m_truncated =
        selfmon_counter("skillscope_filelog_lines_total", lines_help, "outcome=\"truncated\"");
    fl->m_rot = selfmon_counter("skillscope_filelog_rotations_total",
                                "Followed log files renamed or deleted away", NULL);
    fl->m_trunc = selfmon_counter("skillscope_filelog_truncations_total",
                                  "Followed log files truncated (copytruncate)", NULL);
    if (filelog_positions_load(fl->pos_path, &fl->saved, err) != 0) {
        err_prefix(err, "cannot read the file positions (move the file away to read every "
                        "source again from its start)");
        filelog_free(fl);
        return NULL;
    }
    fl->srcs = calloc(n ? n : 1, sizeof *fl->srcs);
    if (!fl->srcs)
        abort();
    fl->n_srcs = n;
    for (size_t i = 0; i < n; i++) {
        tail_src_t *s = &fl->srcs[i];
        s->fl = fl;
        s->src = &src[i];
        s->follow = filelog_follow_new(src[i].path, &fl->saved, false);
        int fd = filelog_follow_fd(s->follow);
        if (fd >= 0)
            s->watch = loop_watch_fd(l, fd, on_inotify, s);
        log_info("following log files", "path=\"%s\" inotify=%s", src[i].path,
                 fd >= 0 ? "yes" : "no");
    }
    fl->last_save_ms = clock_now_ms();
    fl->tick = loop_timer_start(l, TAIL_TICK_MS, true, on_tick, fl);
    tail_run(fl);
    return fl;
}

void filelog_stop(filelog_t *fl)
{
    if (!fl || fl->stopped)
        return;
    fl->stopped = true;
    if (fl->tick)
        loop_timer_stop(fl->tick);
    fl->tick = NULL;
    if (fl->kick)
        loop_timer_stop(fl->kick);
    fl->kick = NULL;
    for (size_t i = 0; i < fl->n_srcs; i++) {
        if (fl->srcs[i].watch)
            loop_watch_stop(fl->srcs[i].watch);
        fl->srcs[i].watch = NULL;
    }
    if (fl->batch) { /* never committed: read again next time */
        db_batch_free(fl->batch);
        commit_free(fl->cur);
        fl->batch = NULL;
        fl->cur = NULL;
    }
}

void filelog_free(filelog_t *fl)
{
    if (!fl)
        return;
    filelog_stop(fl);
    if (fl->srcs && fl->inflight == 0)
        save_positions(fl);
    else if (fl->inflight)
        log_warn("file positions not saved: commits still in flight", "n=%d", fl->inflight);
    for (size_t i = 0; i < fl->n_srcs; i++)
        filelog_follow_free(fl->srcs[i].follow);
    free(fl->srcs);
    filelog_positions_free(&fl->saved);
    arena_deinit(&fl->scratch);
    free(fl->pos_path);
    free(fl);
}

void filelog_get_stats(const filelog_t *fl, filelog_stats_t *st)
{
    *st = fl->st;
    uint64_t open_files = 0;
    for (size_t i = 0; i < fl->n_srcs; i++) {
        filelog_follow_stats_t fs;
        filelog_follow_get_stats(fl->srcs[i].follow, &fs);
        open_files += fs.files_open;
    }
    st->files_open = open_files;
}
