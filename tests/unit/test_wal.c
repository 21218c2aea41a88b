/* test_wal.c - WAL framing, group commit, rotation, checkpoints, torn tails, corruption, faults,
 * read-only replay. */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/crc32c.h"
#include "base/log.h"
#include "store/format.h"
#include "store/internal.h"
#include "store/wal.h"
#include "test.h"

typedef struct got {
    uint32_t seq[4096];
    uint8_t type[4096];
    size_t n;
} got_t;

static int collect(void *arg, uint8_t type, const uint8_t *p, size_t n)
{
    got_t *g = arg;
    if (n < 4 || g->n >= 4096)
        return -1;
    g->type[g->n] = type;
    g->seq[g->n++] = load_u32le(p);
    return 0;
}

static void walpath(char *out, size_t n, const char *sub)
{
    snprintf(out, n, "%s/%s", test_tmpdir(), sub);
}

static wal_t *open_wal(const char *dir, wal_fsync_mode_t mode, uint64_t seg_bytes, got_t *g)
{
    wal_opts_t o = {dir, mode, seg_bytes, 0};
    wal_t *w;
    err_t err;
    if (wal_open(&o, &w, &err) != 0)
        return NULL;
    memset(g, 0, sizeof *g);
    if (wal_replay(w, collect, g, &err) != 0 || wal_start(w, &err) != 0) {
        wal_close(w);
        return NULL;
    }
    return w;
}

/* open_wal with the replay's warnings (torn tails, corruption) silenced. */
static wal_t *open_wal_quiet(const char *dir, wal_fsync_mode_t mode, got_t *g)
{
    int lvl = log_level();
    log_set_level(LOG_ERROR + 1);
    wal_t *w = open_wal(dir, mode, 0, g);
    log_set_level(lvl);
    return w;
}

/* Record i: type SAMPLES, payload = u32 i then i%50 filler bytes. */
static void add_rec(wal_t *w, uint32_t i)
{
    uint8_t p[64];
    store_u32le(p, i);
    memset(p + 4, (int)i, sizeof p - 4);
    wal_add(w, WAL_REC_SAMPLES, p, 4 + i % 50);
}

static uint64_t commit(wal_t *w)
{
    uint64_t lsn = 0;
    wal_commit(w, &lsn);
    return lsn;
}

TEST(roundtrip_and_reopen)
{
    char dir[4096];
    walpath(dir, sizeof dir, "wal");
    got_t *g = calloc(1, sizeof *g);
    wal_t *w = open_wal(dir, WAL_FSYNC_BATCH, 0, g);
    REQUIRE(w);
    CHECK_EQ_INT(g->n, 0);
    uint64_t lsn = 0;
    for (uint32_t i = 0; i < 100; i++) {
        add_rec(w, i);
        if (i % 7 == 6)
            lsn = commit(w);
    }
    lsn = commit(w);
    CHECK_OK(wal_sync(w, lsn));
    int e;
    CHECK(wal_status(w, &e) >= lsn);
    CHECK_EQ_INT(e, 0);
    wal_stats_t st;
    wal_get_stats(w, &st);
    CHECK(st.fsyncs >= 1);
    CHECK_EQ_U64(st.bytes_written, lsn);
    wal_close(w);
    w = open_wal(dir, WAL_FSYNC_BATCH, 0, g);
    REQUIRE(w);
    REQUIRE(g->n == 100);
    for (uint32_t i = 0; i < 100; i++)
        CHECK_EQ_INT(g->seq[i], i);
    /* Records after a restart follow the old ones. */
    add_rec(w, 100);
    wal_close(w);
    w = open_wal(dir, WAL_FSYNC_OFF, 0, g);
    REQUIRE(w);
    CHECK_EQ_INT(g->n, 101);
    wal_close(w);
    free(g);
}

TEST(modes_always_and_off)
{
    wal_fsync_mode_t modes[] = {WAL_FSYNC_ALWAYS, WAL_FSYNC_OFF};
    for (int m = 0; m < 2; m++) {
        char dir[4096];
        walpath(dir, sizeof dir, m ? "off" : "always");
        got_t *g = calloc(1, sizeof *g);
        wal_t *w = open_wal(dir, modes[m], 0, g);
        REQUIRE(w);
        uint64_t lsn = 0;
        for (uint32_t i = 0; i < 20; i++) {
            add_rec(w, i);
            lsn = commit(w);
        }
        CHECK_OK(wal_sync(w, lsn));
        wal_stats_t st;
        wal_get_stats(w, &st);
        if (modes[m] == WAL_FSYNC_OFF)
            CHECK_EQ_U64(st.fsyncs, 0);
        else
            CHECK(st.fsyncs >= 1);
        wal_close(w);
        w = open_wal(dir, modes[m], 0, g);
        REQUIRE(w);
        CHECK_EQ_INT(g->n, 20);
        wal_close(w);
        free(g);
    }
}

TEST(segment_rotation_by_size)
{
    char dir[4096];
    walpath(dir, sizeof dir, "wal");
    got_t *g = calloc(1, sizeof *g);
    wal_t *w = open_wal(dir, WAL_FSYNC_BATCH, 300, g);
    REQUIRE(w);
    for (uint32_t i = 0; i < 200; i++) {
        add_rec(w, i);
        if (i % 3 == 0)
            commit(w);
    }
    CHECK_OK(wal_sync(w, commit(w)));
    wal_stats_t st;
    wal_get_stats(w, &st);
    CHECK(st.segments > 10);
    wal_close(w);
    /* No segment exceeds the limit; every record survives, in order. */
    for (uint32_t s = 1; s < 60; s++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%08x", dir, s);
        struct stat sb;
        if (stat(p, &sb) == 0)
            CHECK(sb.st_size <= 300);
    }
    w = open_wal(dir, WAL_FSYNC_BATCH, 300, g);
    REQUIRE(w);
    REQUIRE(g->n == 200);
    for (uint32_t i = 0; i < 200; i++)
        CHECK_EQ_INT(g->seq[i], i);
    wal_close(w);
    free(g);
}

/* Writes segment 1: records 0..9, and segment 2: a checkpoint (1000), its end, then record 11.
 * Returns the number wal_rotate gave the checkpoint's segment, 0 if the WAL did not open. */
static uint32_t write_checkpointed(const char *dir, got_t *g)
{
    wal_t *w = open_wal(dir, WAL_FSYNC_BATCH, 0, g);
    if (!w)
        return 0;
    for (uint32_t i = 0; i < 10; i++)
        add_rec(w, i);
    commit(w);
    uint32_t seq = wal_rotate(w);
    uint8_t ck[4];
    store_u32le(ck, 1000);
    wal_add(w, WAL_REC_CHECKPOINT, ck, 4);
    wal_add(w, WAL_REC_CHECKPOINT_END, NULL, 0);
    CHECK_OK(wal_sync(w, commit(w)));
    add_rec(w, 11);
    CHECK_OK(wal_sync(w, commit(w)));
    wal_close(w);
    return seq;
}

TEST(checkpoint_supersedes_older_segments)
{
    char dir[4096];
    walpath(dir, sizeof dir, "wal");
    got_t *g = calloc(1, sizeof *g);
    uint32_t seq = write_checkpointed(dir, g);
    CHECK_EQ_INT(seq, 2);
    wal_t *w = open_wal_quiet(dir, WAL_FSYNC_BATCH, g);
    REQUIRE(w);
    /* CHECKPOINT(1000), END (payload too short: the callback refuses it, replay goes on), 11 */
    REQUIRE(g->n == 2);
    CHECK_EQ_INT(g->type[0], WAL_REC_CHECKPOINT);
    CHECK_EQ_INT(g->seq[0], 1000);
    CHECK_EQ_INT(g->seq[1], 11);
    char p[4200];
    snprintf(p, sizeof p, "%s/%08x", dir, 1);
    CHECK(access(p, F_OK) != 0);
    wal_close(w);
    free(g);
}

static uint64_t file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Appends half a record and some zeros to seg, as a crash in the middle of a write leaves;
 * returns the size it had before. */
static uint64_t append_torn(const char *seg)
{
    uint64_t good = file_size(seg);
    int fd = open(seg, O_WRONLY | O_APPEND);
    uint8_t junk[40] = {20, 0, 0, 0, 1, 2, 3, 4, WAL_REC_SAMPLES, 9, 9};
    CHECK_EQ_INT(write(fd, junk, sizeof junk), (long long)sizeof junk);
    close(fd);
    return good;
}

TEST(torn_tail_is_truncated)
{
    char dir[4096], seg[4200];
    walpath(dir, sizeof dir, "wal");
    got_t *g = calloc(1, sizeof *g);
    wal_t *w = open_wal(dir, WAL_FSYNC_BATCH, 0, g);
    REQUIRE(w);
    for (uint32_t i = 0; i < 30; i++)
        add_rec(w, i);
    CHECK_OK(wal_sync(w, commit(w)));
    wal_close(w);
    snprintf(seg, sizeof seg, "%s/%08x", dir, 1);
    uint64_t good = append_torn(seg);
    w = open_wal_quiet(dir, WAL_FSYNC_BATCH, g);
    REQUIRE(w);
    CHECK_EQ_INT(g->n, 30);
    CHECK_EQ_U64(file_size(seg), good);
    wal_stats_t st;
    wal_get_stats(w, &st);
    CHECK_EQ_U64(st.corrupt_truncations, 1);
    wal_close(w);
    /* Truncating any number of bytes off the end keeps every whole record before the cut. */
    size_t prev = 30;
    for (uint64_t cut = 1; cut < 60; cut += 7) {
        CHECK_EQ_INT(truncate(seg, (off_t)(good - cut)), 0);
        w = open_wal_quiet(dir, WAL_FSYNC_BATCH, g);
        REQUIRE(w);
        CHECK(g->n < prev);
        prev = g->n;
        for (size_t i = 0; i < g->n; i++)
            CHECK_EQ_INT(g->seq[i], i);
        wal_close(w);
        good = file_size(seg);
    }
    free(g);
}

TEST(mid_log_corruption_skips_segment_rest)
{
    char dir[4096], seg[4200];
    walpath(dir, sizeof dir, "wal");
    got_t *g = calloc(1, sizeof *g);
    wal_t *w = open_wal(dir, WAL_FSYNC_BATCH, 0, g);
    REQUIRE(w);
    for (uint32_t i = 0; i < 10; i++)
        add_rec(w, i);
    commit(w);
    wal_rotate(w);
    for (uint32_t i = 10; i < 20; i++)
        add_rec(w, i);
    CHECK_OK(wal_sync(w, commit(w)));
    wal_close(w);
    /* Flip a payload byte of record 5 in segment 1. */
    snprintf(seg, sizeof seg, "%s/%08x", dir, 1);
    uint64_t off = 0;
    for (uint32_t i = 0; i < 5; i++)
        off += WAL_RECORD_HDR + 4 + i % 50;
    int fd = open(seg, O_RDWR);
    uint8_t b;
    CHECK_EQ_INT(pread(fd, &b, 1, (off_t)off + WAL_RECORD_HDR + 1), 1);
    b ^= 0x40;
    CHECK_EQ_INT(pwrite(fd, &b, 1, (off_t)off + WAL_RECORD_HDR + 1), 1);
    close(fd);
    uint64_t before = file_size(seg);
    w = open_wal_quiet(dir, WAL_FSYNC_BATCH, g);
    REQUIRE(w);
    REQUIRE(g->n == 15);
    for (uint32_t i = 0; i < 5; i++)
        CHECK_EQ_INT(g->seq[i], i);
    for (uint32_t i = 5; i < 15; i++)
        CHECK_EQ_INT(g->seq[i], i + 5);
    CHECK_EQ_U64(file_size(seg), before); /* kept for inspection */
    wal_stats_t st;
    wal_get_stats(w, &st);
    CHECK_EQ_U64(st.corrupt_segments, 1);
    wal_close(w);
    free(g);
}

static int cmp_name(const void *a, const void *b) { return strcmp(a, b); }

/* The directory's entries, each with its size and a checksum of its bytes, one a line (sorted
 * by name, as segment names sort by number). The caller frees it. */
static char *dir_snapshot(const char *dir)
{
    buf_t b = BUF_INIT;
    char names[16][256];
    size_t n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return strdup("(none)");
    struct dirent *e;
    while ((e = readdir(d)) && n < 16)
        if (e->d_name[0] != '.')
            snprintf(names[n++], sizeof names[0], "%s", e->d_name);
    closedir(d);
    qsort(names, n, sizeof names[0], cmp_name);
    for (size_t i = 0; i < n; i++) {
        char path[4400], line[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        uint32_t crc = 0;
        uint64_t size = 0;
        FILE *f = fopen(path, "rb");
        uint8_t chunk[4096];
        size_t k;
        while (f && (k = fread(chunk, 1, sizeof chunk, f)) > 0) {
            crc = crc32c(crc, chunk, k);
            size += k;
        }
        if (f)
            fclose(f);
        int len =
            snprintf(line, sizeof line, "%s %llu %08x\n", names[i], (unsigned long long)size, crc);
        buf_append(&b, line, (size_t)len);
    }
    buf_append(&b, "", 1);
    char *out = strdup((const char *)b.pos);
    buf_deinit(&b);
    return out;
}

static wal_t *open_read_only(const char *dir, got_t *g, wal_stats_t *st)
{
    wal_t *w;
    err_t err;
    if (wal_open_read_only(dir, &w, &err) != 0)
        return NULL;
    memset(g, 0, sizeof *g);
    int lvl = log_level();
    log_set_level(LOG_ERROR + 1);
    int rc = wal_replay(w, collect, g, &err);
    log_set_level(lvl);
    if (rc != 0) {
        wal_close(w);
        return NULL;
    }
    wal_get_stats(w, st);
    return w;
}

TEST(read_only_replay_changes_nothing)
{
    char dir[4096], seg[4200];
    walpath(dir, sizeof dir, "wal");
    got_t *g = calloc(1, sizeof *g);
    REQUIRE(write_checkpointed(dir, g) == 2);
    /* A torn write at the end of the log, after record 11. */
    snprintf(seg, sizeof seg, "%s/%08x", dir, 2);
    uint64_t good = append_torn(seg);
    char seg1[4200];
    snprintf(seg1, sizeof seg1, "%s/%08x", dir, 1);
    uint64_t on_disk = file_size(seg1) + file_size(seg);
    char *before = dir_snapshot(dir);
    CHECK(strstr(before, "00000001 ") != NULL);
    CHECK(strstr(before, "00000003") == NULL);

    /* Twice, to show the first left nothing behind for the second to find different. */
    for (int round = 0; round < 2; round++) {
        wal_stats_t st;
        wal_t *w = open_read_only(dir, g, &st);
        REQUIRE(w);
        /* From the checkpoint on (END is refused by collect), up to the torn record. */
        REQUIRE(g->n == 2);
        CHECK_EQ_INT(g->type[0], WAL_REC_CHECKPOINT);
        CHECK_EQ_INT(g->seq[0], 1000);
        CHECK_EQ_INT(g->seq[1], 11);
        CHECK_EQ_U64(st.replay_records, 3);
        CHECK_EQ_U64(st.corrupt_truncations, 1);
        CHECK_EQ_U64(st.corrupt_segments, 0);
        CHECK_EQ_U64(st.segments, 2);
        CHECK_EQ_U64(st.bytes_on_disk, on_disk);
        CHECK_EQ_U64(st.bytes_written, 0);
        /* Nothing can be written, rotated away or deleted. */
        err_t err;
        CHECK_EQ_INT(wal_start(w, &err), ERR_UNSUPPORTED);
        add_rec(w, 99);
        uint64_t lsn = 1;
        CHECK_EQ_INT(wal_commit(w, &lsn), ERR_UNSUPPORTED);
        CHECK_EQ_U64(lsn, 0);
        CHECK(!wal_overloaded(w));
        wal_rotate(w);
        wal_remove_before(w, 100);
        wal_get_stats(w, &st);
        CHECK_EQ_U64(st.segments, 2);
        wal_close(w);
        char *after = dir_snapshot(dir);
        CHECK_EQ_STR(after, before);
        free(after);
    }
    free(before);

    /* A writer's open still repairs: the older segment goes, the tail is cut. */
    wal_t *w = open_wal_quiet(dir, WAL_FSYNC_BATCH, g);
    REQUIRE(w);
    CHECK_EQ_INT(g->n, 2);
    CHECK_EQ_U64(file_size(seg), good);
    CHECK(access(seg1, F_OK) != 0);
    wal_close(w);
    free(g);
}

TEST(read_only_open_of_a_missing_directory_creates_nothing)
{
    char dir[4096];
    walpath(dir, sizeof dir, "absent");
    got_t *g = calloc(1, sizeof *g);
    wal_stats_t st;
    wal_t *w = open_read_only(dir, g, &st);
    REQUIRE(w);
    CHECK_EQ_INT(g->n, 0);
    CHECK_EQ_U64(st.segments, 0);
    err_t err;
    CHECK_EQ_INT(wal_start(w, &err), ERR_UNSUPPORTED);
    wal_close(w);
    struct stat sb;
    CHECK(stat(dir, &sb) != 0);
    free(g);
}

/* Commits one record at a time; returns how many were acknowledged (prefix), checking that no
 * commit after the first failure is reported durable. */
static uint32_t run_with_fault(const char *dir, wal_fsync_mode_t mode, int wat, int tat, int fat,
                               uint32_t n, got_t *g)
{
    wal_t *w = open_wal(dir, mode, 0, g);
    if (!w)
        return 0;
    int lvl = log_level();
    log_set_level(LOG_ERROR + 1);
    wal__fault_set(wat, tat, fat);
    uint32_t acked = 0;
    bool failed = false;
    for (uint32_t i = 0; i < n; i++) {
        add_rec(w, i);
        uint64_t lsn;
        int rc = wal_commit(w, &lsn);
        if (rc == 0)
            rc = wal_sync(w, lsn);
        if (rc == 0) {
            CHECK(!failed);
            if (!failed)
                acked = i + 1;
        } else {
            failed = true;
        }
    }
    int e;
    wal_status(w, &e);
    CHECK(failed == (e != 0));
    wal__abandon(w);
    wal__fault_set(0, 0, 0);
    log_set_level(lvl);
    return acked;
}

TEST(faults_never_lose_acked_records)
{
    wal_fsync_mode_t modes[] = {WAL_FSYNC_BATCH, WAL_FSYNC_ALWAYS, WAL_FSYNC_OFF};
    for (int m = 0; m < 3; m++) {
        for (int kind = 0; kind < 3; kind++) {
            if (kind == 2 && modes[m] == WAL_FSYNC_OFF)
                continue;
            for (int k = 1; k <= 9; k += 4) {
                char dir[4096];
                snprintf(dir, sizeof dir, "%s/f%d_%d_%d", test_tmpdir(), m, kind, k);
                got_t *g = calloc(1, sizeof *g);
                uint32_t acked = run_with_fault(dir, modes[m], kind == 0 ? k : 0, kind == 1 ? k : 0,
                                                kind == 2 ? k : 0, 20, g);
                CHECK(acked < 20);
                wal_t *w = open_wal_quiet(dir, modes[m], g);
                REQUIRE(w);
                /* Every acknowledged record is there, in order, exactly once. */
                CHECK(g->n >= acked);
                for (size_t i = 0; i < g->n; i++)
                    CHECK_EQ_INT(g->seq[i], i);
                wal_close(w);
                free(g);
            }
        }
    }
}

TEST(overload_and_event_fd)
{
    char dir[4096];
    walpath(dir, sizeof dir, "wal");
    wal_opts_t o = {dir, WAL_FSYNC_BATCH, 0, 1000};
    wal_t *w;
    err_t err;
    REQUIRE_OK(wal_open(&o, &w, &err));
    got_t *g = calloc(1, sizeof *g);
    REQUIRE_OK(wal_replay(w, collect, g, &err));
    /* Not started yet: the queue only fills. */
    CHECK(!wal_overloaded(w));
    for (uint32_t i = 0; i < 40; i++)
        add_rec(w, i);
    CHECK(wal_overloaded(w));
    REQUIRE_OK(wal_start(w, &err));
    uint64_t lsn = commit(w);
    CHECK_OK(wal_sync(w, lsn));
    CHECK(!wal_overloaded(w));
    /* The writer signals the event fd just after publishing the durable LSN that wal_sync
     * waits for, so wait for readability rather than racing it. */
    struct pollfd pfd = {wal_event_fd(w), POLLIN, 0};
    CHECK_EQ_INT(poll(&pfd, 1, 10000), 1);
    uint64_t v;
    CHECK_EQ_INT(read(wal_event_fd(w), &v, sizeof v), 8);
    wal_close(w);
    free(g);
}

TEST(record_parse_rejects_bad_frames)
{
    buf_t b = BUF_INIT;
    uint8_t hdr[9] = {3, 0, 0, 0, 0, 0, 0, 0, WAL_REC_SERIES};
    buf_append(&b, hdr, 9);
    buf_append(&b, "abc", 3);
    uint8_t type;
    const uint8_t *p;
    size_t n;
    CHECK_EQ_INT(wal_record_parse(b.pos, b.last, &type, &p, &n), ERR_CORRUPT);
    buf_deinit(&b);
    uint8_t big[9] = {0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 1};
    CHECK_EQ_INT(wal_record_parse(big, big + 9, &type, &p, &n), ERR_CORRUPT);
    CHECK_EQ_INT(wal_record_parse(big, big + 3, &type, &p, &n), ERR_CORRUPT);
}
