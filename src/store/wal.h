/*
 * wal.h - the write-ahead log: CRC'd records in numbered segment files, written by one writer
 * thread that group-commits (one write(2) and one fdatasync for everything queued since its last
 * round). Record framing and segment rules are in store/format.h.
 *
 * Threads: wal_add / wal_commit / wal_rotate / wal_status and the replay run on the owner's thread
 * (the event loop); the writer thread only touches the pending queue under the mutex and its own
 * file descriptor. Progress is reported as an LSN: the count of record bytes ever queued. A commit
 * is durable once wal_status reports a durable LSN >= the LSN wal_commit returned for it.
 * After a failed write or fsync the WAL stops acknowledging anything (every later status carries
 * ERR_IO): what the kernel kept after a failed fsync is unknowable, so nothing more is promised.
 *
 * A read-only WAL (wal_open_read_only) only lists and replays: it creates, deletes and truncates
 * nothing, so a process that does not own the data directory can read it (see db_opts_t.read_only).
 */
#ifndef STORE_WAL_H
#define STORE_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "store/db.h"

typedef struct wal wal_t;

typedef struct wal_opts {
    const char *dir; /* the segment directory itself, created if missing */
    wal_fsync_mode_t mode;
    uint64_t segment_bytes;     /* 0 = WAL_SEGMENT_BYTES */
    uint64_t pending_max_bytes; /* 0 = 64 MiB: wal_overloaded() beyond this */
} wal_opts_t;

typedef struct wal_stats {
    uint64_t bytes_written, fsyncs, segments, bytes_on_disk;
    uint64_t replay_records, replay_bytes, corrupt_truncations, corrupt_segments;
} wal_stats_t;

/* Opens (creating) the directory and lists its segments. Nothing is written until wal_start. */
int wal_open(const wal_opts_t *o, wal_t **out, err_t *err);
/* Opens dir for replay only: nothing is created (a missing dir is an empty WAL), deleted or
 * truncated, and nothing can be written (see the read-only notes on the functions below). */
int wal_open_read_only(const char *dir, wal_t **out, err_t *err);

/* Called once per valid record, in log order; p is valid during the call only. A non-zero return
 * is logged with the segment and offset and replay continues. */
typedef int (*wal_replay_cb)(void *arg, uint8_t type, const uint8_t *p, size_t n);
/* Replays from the newest complete checkpoint segment (older segments are deleted), truncates a
 * torn tail, and logs mid-log corruption (see format.h). Read-only, the older segments stay and
 * a torn tail is only counted (corrupt_truncations): reading stops there. Fails only on I/O
 * errors. */
int wal_replay(wal_t *w, wal_replay_cb cb, void *arg, err_t *err);
/* Opens a fresh segment after the existing ones and starts the writer thread. ERR_UNSUPPORTED
 * when read-only. */
int wal_start(wal_t *w, err_t *err);

/* Queues one record (copied). Dropped silently once the WAL has failed (the commit reports it)
 * and when it is read-only. */
void wal_add(wal_t *w, uint8_t type, const void *payload, size_t n);
/* Ends a commit: wakes the writer and sets *lsn to the LSN that must become durable for it.
 * ERR_IO when the WAL has failed (the commit's records were not kept), ERR_UNSUPPORTED when it is
 * read-only. */
int wal_commit(wal_t *w, uint64_t *lsn);
/* Records queued after this go into a new segment; returns that segment's number. Read-only:
 * nothing changes and the number a new segment would get is returned. */
uint32_t wal_rotate(wal_t *w);
/* True when the queue holds more than pending_max_bytes (callers answer ERR_OVERLOAD). */
bool wal_overloaded(wal_t *w);
/* Readable when the durable LSN moved or the WAL failed; wal_status drains it. */
int wal_event_fd(const wal_t *w);
/* The durable LSN; *error = 0 or ERR_IO once the WAL has failed. */
uint64_t wal_status(wal_t *w, int *error);
/* The durable LSN, without draining the event fd. */
uint64_t wal_durable(wal_t *w);
/* Blocks until lsn is durable (0) or the WAL failed (ERR_IO). */
int wal_sync(wal_t *w, uint64_t lsn);
/* Deletes every segment numbered below seq (after a checkpoint made them redundant). Does nothing
 * when read-only. */
void wal_remove_before(wal_t *w, uint32_t seq);
void wal_get_stats(wal_t *w, wal_stats_t *st);
/* Writes and syncs what is queued, stops the writer and frees w. */
void wal_close(wal_t *w);
/* Crash simulation for tests: stops the writer without writing what is queued. */
void wal__abandon(wal_t *w);

/* Parses one record at [p, end): 0 and the record's fields, or ERR_CORRUPT when it is short,
 * oversized or fails its CRC. Exposed for the fuzzer and the replay. */
int wal_record_parse(const uint8_t *p, const uint8_t *end, uint8_t *type, const uint8_t **payload,
                     size_t *n);

#endif
