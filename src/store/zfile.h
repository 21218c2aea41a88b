/*
 * zfile.h - what span files (spans_file.c) and log files (logs.c) share: writing a file of
 * CRC-32C-checked zstd frames and tables, and reading it back. Both formats (layouts in
 * store/format_spans_logs.h) open with the same 16-byte header (8-byte magic, u32 version, u32
 * flags = 0) and close with a footer whose last 16 bytes are alike (u32 version, u32 CRC-32C of
 * the footer bytes before them, 8-byte magic); what lies between is each format's own. Internal to
 * src/store.
 */
#ifndef STORE_ZFILE_H
#define STORE_ZFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zstd.h>

#include "base/buf.h"
#include "base/err.h"

#define ZFILE_HEADER_BYTES 16
/* The footer's common tail: version, CRC, magic. */
#define ZFILE_FOOTER_TAIL_BYTES 16

/* A file being written. Bytes are appended to out and written in ~1 MiB pieces. The first error
 * is kept in rc (with err set) and makes later writes do nothing. */
typedef struct zfile_out {
    const char *path; /* borrowed */
    const char *magic;
    uint32_t version;
    int fd, rc;
    err_t *err;
    uint64_t off; /* file offset at which out's content starts */
    buf_t out, comp;
    ZSTD_CCtx *cctx;
} zfile_out_t;

/* Creates (or truncates) path, and puts the header; frames are compressed at zstd level level.
 * magic (8 bytes) and path are borrowed until zfile_out_close. */
int zfile_out_open(zfile_out_t *w, const char *path, const char *magic, uint32_t version, int level,
                   err_t *err);
/* The file offset of the next byte appended. */
uint64_t zfile_out_pos(const zfile_out_t *w);
/* Appends raw as one zstd frame; returns its length (0 on error) and its CRC-32C in *crc. */
uint32_t zfile_out_frame(zfile_out_t *w, const buf_t *raw, uint32_t *crc);
/* Writes what out holds once it reaches 1 MiB, or always when force. */
void zfile_out_flush(zfile_out_t *w, bool force);
/* Fills the last 16 bytes of the footer ft (n bytes, the rest filled by the caller), appends it,
 * writes everything, fsyncs and closes the file. Returns w->rc; on success *bytes (may be NULL) is
 * the file's size. */
int zfile_out_finish(zfile_out_t *w, uint8_t *ft, size_t n, uint64_t *bytes);
/* Frees w's memory, closing the file unsynced when zfile_out_finish was not reached (the caller
 * then removes it). */
void zfile_out_close(zfile_out_t *w);

/* A file being read with pread. */
typedef struct zfile_in {
    int fd;
    uint64_t size;
    ZSTD_DCtx *dctx;
} zfile_in_t;

/* Opens path: ERR_NOTFOUND, ERR_IO or ERR_NOMEM with err set. r is left for zfile_in_close. */
int zfile_in_open(zfile_in_t *r, const char *path, err_t *err);
void zfile_in_close(zfile_in_t *r);
/* Reads n bytes at off: ERR_CORRUPT when the file ends first, ERR_IO (errno says why). */
int zfile_in_read(const zfile_in_t *r, void *p, size_t n, uint64_t off);
/* zfile_in_read, then ERR_CORRUPT unless the bytes' CRC-32C is crc. */
int zfile_in_read_crc(const zfile_in_t *r, void *p, size_t n, uint64_t off, uint32_t crc);
/* Reads the frame [off, off+clen), checks its CRC-32C and decompresses it into raw, which gets
 * exactly rlen bytes (the frame's content size is checked before rlen bytes are allocated); comp
 * is scratch. ERR_CORRUPT or ERR_IO. */
int zfile_in_frame(const zfile_in_t *r, uint64_t off, uint32_t clen, uint32_t rlen, uint32_t crc,
                   buf_t *comp, buf_t *raw);
/* Reads the footer (n bytes at the end) into ft and checks both ends of the file: size, magic,
 * header flags, version and the footer's CRC. Errors (ERR_CORRUPT, ERR_UNSUPPORTED, ERR_IO) name
 * the "<kind> file" at path. */
int zfile_in_ends(const zfile_in_t *r, const char *path, const char *kind, const char *magic,
                  uint32_t version, uint8_t *ft, size_t n, err_t *err);

/* ERR_CORRUPT with "<path>: corrupt <kind> file at offset <off>: <what> (<file>:<line>)". */
#define ZFILE_CORRUPT(err, kind, path, off, what)                                                  \
    zfile_corrupt(err, kind, path, (uint64_t)(off), what, __FILE__, __LINE__)
int zfile_corrupt(err_t *err, const char *kind, const char *path, uint64_t off, const char *what,
                  const char *file, int line);

#endif
