/*
 * filelog.h - following JSON-lines log files the way Promtail does, for the server's `sources:`
 * and for `skillscope ship`.
 *
 * Three layers, each usable alone (the server and the ship client share the first two):
 *
 *   1. filelog_map_line: one line of a file -> one Loki entry (stream labels, timestamp, line,
 *      structured metadata). A JSON object line is read with these default field names (the first
 *      one present wins; `fields:` in the config names one field instead):
 *        timestamp  timestamp | time | ts | @timestamp | t  -> the entry's time
 *        level      level | severity | lvl | loglevel      -> metadata `level`
 *        message    message | msg | event                  -> metadata `message` (line: message
 *                                                            makes it the stored line instead)
 *        trace_id   trace_id | traceId | traceid           -> metadata `trace_id` (the name the
 *        span_id    span_id | spanId | spanid                 OTLP log path uses)
 *      Timestamps: RFC3339 strings (fractions, offsets, 'T' or ' '), epoch numbers or digit
 *      strings in s / ms / us / ns chosen by magnitude (< 1e11 s, < 1e14 ms, < 1e17 us, else ns;
 *      fractional seconds allowed); missing or unreadable -> the time the line was read. Every
 * other field becomes structured metadata: nested objects are flattened with '_' (`{"a":{"b":1}}`
 *      -> `a_b="1"`), names sanitised to [a-zA-Z0-9_] as Loki's json parser does, arrays kept as
 *      JSON text, numbers as written by Go, booleans true/false, nulls dropped. The stored line is
 *      the original line (Promtail's behaviour without pipeline stages) unless line: message.
 *      `labels_from_fields` promotes fields (by their metadata name, e.g. level) to stream labels.
 *      A line that is not a JSON object is stored as it is, with the read time, and counted.
 *   2. filelog_follow_*: a follower of one glob pattern: finds matching files (new ones too),
 *      reads complete lines, survives rotation (rename/delete + create: the old file is read to
 *      its end, then the new one from 0), truncation (copytruncate: size below the read offset ->
 *      restart at 0), and partial last lines (held until the newline arrives; flushed only when a
 *      rotated-away file is finished). Lines longer than FILELOG_MAX_LINE_BYTES are truncated and
 *      counted. Files are identified by device + inode + a checksum of their first bytes, so a
 *      reused inode is seen as a new file.
 *   3. filelog_t (filelog_tail.c): the server's tailers (one follower per source) on the event
 * loop: inotify on the source directories plus a 500 ms stat poll, commits through db_commit, and
 * positions in <data-dir>/positions.json (written atomically: temp file, fsync, rename, fsync dir).
 * The saved position of a file advances only after db_commit's callback reported the lines durable,
 * so after a clean shutdown nothing is read twice and nothing acknowledged is lost; after a crash,
 * lines committed since the last save (at most about a second) are read again (at-least-once).
 *
 * Threads: everything runs on the calling thread (the server's loop thread for filelog_t).
 */
#ifndef INGEST_FILELOG_H
#define INGEST_FILELOG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <yaml.h>

#include "base/arena.h"
#include "base/err.h"
#include "base/str.h"
#include "net/loop.h"
#include "store/db.h"
#include "store/labels.h"

/* Longer lines are cut to this length (and counted as truncated). */
#define FILELOG_MAX_LINE_BYTES (256u << 10)
/* Nested objects deeper than this are kept as JSON text. */
#define FILELOG_MAX_DEPTH 16

enum {
    FILELOG_F_TIMESTAMP,
    FILELOG_F_LEVEL,
    FILELOG_F_MESSAGE,
    FILELOG_F_TRACE_ID,
    FILELOG_F_SPAN_ID,
    FILELOG_N_FIELDS
};

/* How lines become entries. Strings are borrowed (the config arena owns them). */
typedef struct filelog_map {
    labels_t labels;                      /* static stream labels (may be empty) */
    const char *fields[FILELOG_N_FIELDS]; /* NULL = the default candidates */
    bool line_message;                    /* store the message instead of the original line */
    bool raw;                             /* format: raw - no JSON parsing at all */
    const char **labels_from_fields;      /* metadata names promoted to stream labels */
    size_t n_labels_from_fields;
} filelog_map_t;

typedef struct filelog_entry {
    labels_t stream; /* map->labels + promoted fields (+ filename when the caller adds it) */
    int64_t ts_ns;
    str_t line;
    labels_t meta;
    bool json; /* false: the line was not a JSON object and is stored as it is */
    bool ts_found;
} filelog_entry_t;

/* Maps one line (without its newline) read at now_ns. Never fails; everything out points to lives
 * in a or in line. Untrusted input: any bytes are fine. */
void filelog_map_line(const filelog_map_t *m, str_t line, int64_t now_ns, arena_t *a,
                      filelog_entry_t *out);
/* A timestamp value as the mapper reads it (exposed for tests): an RFC3339 string or an epoch
 * number in text (s, ms, us or ns by magnitude). false when s is neither. */
bool filelog_parse_time(str_t s, bool is_number, int64_t *ns);

/* ---- configuration (`sources:` in the YAML config) ---- */

typedef struct filelog_source {
    const char *path; /* glob(3) pattern */
    filelog_map_t map;
} filelog_source_t;

/* Reads the `sources:` sequence node of doc (file names the config file in messages). *out lives
 * in a. ERR_INVAL with "file:line: sources[0].path: ..." for a missing path, a bad glob, unknown
 * keys, a bad label name or a wrong type. */
int filelog_config_parse(yaml_document_t *doc, yaml_node_t *node, const char *file, arena_t *a,
                         filelog_source_t **out, size_t *n_out, err_t *err);

/* ---- positions (<data-dir>/positions.json) ---- */

typedef struct filelog_pos {
    char *path;
    uint64_t dev, ino;
    uint64_t offset; /* bytes acknowledged */
    uint32_t fp;     /* CRC32C of the first fp_len bytes of the file */
    uint32_t fp_len;
} filelog_pos_t;

typedef struct filelog_positions {
    filelog_pos_t *v;
    size_t n, cap;
} filelog_positions_t;

void filelog_positions_free(filelog_positions_t *p);
/* Loads path; a missing file is an empty set (0). ERR_PARSE with the reason for a corrupt one. */
int filelog_positions_load(const char *path, filelog_positions_t *p, err_t *err);
/* Writes path atomically (path.tmp, fsync, rename, fsync of the directory). */
int filelog_positions_save(const char *path, const filelog_positions_t *p, err_t *err);
/* The entry for dev/ino, NULL when none. */
const filelog_pos_t *filelog_positions_find(const filelog_positions_t *p, uint64_t dev,
                                            uint64_t ino);
/* Adds or replaces the entry for dev/ino (path copied). */
void filelog_positions_set(filelog_positions_t *p, const filelog_pos_t *e);

/* ---- follower: one glob pattern ---- */

typedef struct filelog_follow filelog_follow_t;
typedef struct filelog_file filelog_file_t;

/* One complete line of file f; end_off is the offset just past its newline. The line is valid
 * during the call only. Return false to stop reading for this poll. */
typedef bool (*filelog_line_fn)(void *arg, filelog_file_t *f, str_t line, uint64_t end_off);

typedef struct filelog_follow_stats {
    uint64_t lines, bytes, truncated_lines, rotations, truncations, files_open;
} filelog_follow_stats_t;

/* pattern is copied; pos (may be NULL) is borrowed for the follower's life. A file starts at its
 * saved position in pos when that entry still describes it (device, inode, first-bytes checksum,
 * size), else - found by the first scan with from_end - at its end, else at 0 (so files appearing
 * later are read whole). */
filelog_follow_t *filelog_follow_new(const char *pattern, const filelog_positions_t *pos,
                                     bool from_end);
void filelog_follow_free(filelog_follow_t *f);
/* Reads new data, calling fn per line, at most max_bytes of input per call (0 = no limit). The
 * pattern is globbed again when inotify reported files created, moved or deleted, when inotify
 * cannot watch the directory, and at least every 500 ms. Returns true when data is left to read
 * (call again soon). */
bool filelog_follow_poll(filelog_follow_t *f, size_t max_bytes, filelog_line_fn fn, void *arg);
/* An inotify fd (non-blocking) that turns readable when a watched directory changes, or -1 when
 * inotify is unavailable (polling alone then). Drain it with filelog_follow_drain. */
int filelog_follow_fd(filelog_follow_t *f);
void filelog_follow_drain(filelog_follow_t *f);
/* Discards buffered data of f and reads again from its acknowledged offset (after a failed
 * commit). */
void filelog_follow_rewind(filelog_follow_t *f);
void filelog_follow_get_stats(const filelog_follow_t *f, filelog_follow_stats_t *st);
/* The file's generation (bumped on truncation and rewind); pass it back with the ack. */
uint32_t filelog_file_gen(const filelog_file_t *file);
/* Records that every line of file up to end_off is durable (positions advance only here); acks of
 * an older generation are ignored. */
void filelog_file_ack(filelog_file_t *file, uint32_t gen, uint64_t end_off);
/* The path the file was found at (kept after a rename, so its stream stays the same). */
const char *filelog_file_path(const filelog_file_t *file);
/* Appends the acknowledged position of every open file to p. */
void filelog_follow_positions(const filelog_follow_t *f, filelog_positions_t *p);
/* Keeps file alive while lines of it are in flight (ack/unref pair up with ref). */
void filelog_file_ref(filelog_file_t *file);
void filelog_file_unref(filelog_file_t *file);

/* ---- the server's tailers ---- */

typedef struct filelog filelog_t;

typedef struct filelog_stats {
    uint64_t lines_read, lines_committed, lines_rejected, non_json_lines, truncated_lines;
    uint64_t rotations, truncations, commit_failures, files_open;
} filelog_stats_t;

/* Starts one follower per source on loop l, committing to db, positions in data_dir. sources
 * stay borrowed (keep the config alive). Without inotify the followers poll every 500 ms. NULL
 * with err set when the positions file cannot be read (the message names it). */
filelog_t *filelog_start(loop_t *l, db_t *db, const char *data_dir, const filelog_source_t *src,
                         size_t n, err_t *err);
/* Stops reading (no new commits). Commits in flight still complete through db_poll / db_close;
 * call filelog_free after db_close to save the final positions. */
void filelog_stop(filelog_t *fl);
/* Saves the positions and frees fl. */
void filelog_free(filelog_t *fl);
void filelog_get_stats(const filelog_t *fl, filelog_stats_t *st);

#endif
