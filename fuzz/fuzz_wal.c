/*
 * fuzz_wal.c - WAL segment bytes from disk through the record framing and the full replay.
 *
 * The input is one segment file. Checked properties:
 *   1. wal_replay delivers exactly the records wal_record_parse finds walking the bytes from the
 *      start (stopping at the first bad one), in order and byte for byte, and truncates the file
 *      right after the last good record (a torn tail is repaired, never fatal).
 *   2. Re-framing those records with wal_add and replaying the result gives the same records
 *      (encode/decode round trip).
 *   3. db_open over the segment (every payload decoder: series, samples, metadata, checkpoints,
 *      spans, logs) never crashes or leaks, whatever the payloads hold.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "store/db.h"
#include "store/format.h"
#include "store/internal.h"
#include "store/wal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct rec {
    uint8_t type;
    const uint8_t *p;
    size_t n;
} rec_t;

typedef struct recs {
    rec_t *v;
    size_t n, cap;
    uint8_t **copies; /* replayed payloads (valid only during the callback) */
} recs_t;

static void push(recs_t *r, uint8_t type, const uint8_t *p, size_t n, bool copy)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->v = realloc(r->v, r->cap * sizeof *r->v);
        r->copies = realloc(r->copies, r->cap * sizeof *r->copies);
    }
    r->copies[r->n] = NULL;
    if (copy) {
        r->copies[r->n] = malloc(n ? n : 1);
        if (n)
            memcpy(r->copies[r->n], p, n);
        p = r->copies[r->n];
    }
    r->v[r->n++] = (rec_t){type, p, n};
}

static void recs_free(recs_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->copies[i]);
    free(r->v);
    free(r->copies);
    memset(r, 0, sizeof *r);
}

static int collect(void *arg, uint8_t type, const uint8_t *p, size_t n)
{
    push(arg, type, p, n, true);
    return 0;
}

static void check_same(const recs_t *a, const recs_t *b)
{
    if (a->n != b->n)
        abort();
    for (size_t i = 0; i < a->n; i++)
        if (a->v[i].type != b->v[i].type || a->v[i].n != b->v[i].n ||
            (a->v[i].n && memcmp(a->v[i].p, b->v[i].p, a->v[i].n) != 0))
            abort();
}

static char root[256];

static void rm_rf(const char *p)
{
    struct stat st;
    if (stat(p, &st) == 0 && store__rmtree(p) != 0)
        abort();
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n))
        abort();
    fclose(f);
}

static void replay_dir(const char *wdir, recs_t *out)
{
    wal_opts_t o = {wdir, WAL_FSYNC_OFF, 0, 0};
    wal_t *w;
    err_t err;
    if (wal_open(&o, &w, &err) != 0)
        abort();
    if (wal_replay(w, collect, out, &err) != 0)
        abort();
    wal_close(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    log_set_level(LOG_ERROR + 1);
    if (!root[0]) {
        snprintf(root, sizeof root, "%s/fuzz-wal-XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(root))
            abort();
    }
    /* 1. Replay equals a plain walk, and the tail is cut after the last good record. */
    recs_t want = {0}, got = {0}, again = {0};
    const uint8_t *p = data, *end = data + size;
    for (;;) {
        uint8_t type;
        const uint8_t *pl;
        size_t n;
        if (wal_record_parse(p, end, &type, &pl, &n) != 0)
            break;
        push(&want, type, pl, n, false);
        p = pl + n;
    }
    size_t good = (size_t)(p - data);
    char dir[512], wdir[600], seg[700];
    snprintf(dir, sizeof dir, "%s/d", root);
    rm_rf(dir);
    mkdir(dir, 0755);
    snprintf(wdir, sizeof wdir, "%s/wal", dir);
    mkdir(wdir, 0755);
    snprintf(seg, sizeof seg, "%s/00000001", wdir);
    write_file(seg, data, size);
    replay_dir(wdir, &got);
    check_same(&want, &got);
    struct stat st;
    if (stat(seg, &st) != 0 || (size_t)st.st_size != good)
        abort();

    /* 2. Re-framed records replay identically. */
    char wdir2[700];
    snprintf(wdir2, sizeof wdir2, "%s/wal2", dir);
    wal_opts_t o = {wdir2, WAL_FSYNC_OFF, 0, 0};
    wal_t *w;
    err_t err;
    if (wal_open(&o, &w, &err) != 0 || wal_start(w, &err) != 0)
        abort();
    for (size_t i = 0; i < want.n; i++)
        wal_add(w, want.v[i].type, want.v[i].p, want.v[i].n);
    uint64_t lsn;
    if (wal_commit(w, &lsn) != 0 || wal_sync(w, lsn) != 0)
        abort();
    wal_close(w);
    replay_dir(wdir2, &again);
    check_same(&want, &again);
    recs_free(&want);
    recs_free(&got);
    recs_free(&again);

    /* 3. The whole engine replays it (every payload decoder), then shuts down. */
    rm_rf(wdir2);
    db_opts_t dopts;
    db_opts_default(&dopts);
    dopts.dir = dir;
    dopts.fsync_mode = WAL_FSYNC_OFF;
    dopts.retention_ms = 0;
    db_t *db;
    if (db_open(&dopts, &db, &err) == 0)
        db__abandon(db);
    rm_rf(dir);
    return 0;
}
