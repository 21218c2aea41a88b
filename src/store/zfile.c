/*
 * zfile.c - writing and reading the files of CRC-32C-checked zstd frames that span files and log
 * files are (store/zfile.h, layouts in store/format_spans_logs.h). The writer buffers the file in
 * memory and writes it in ~1 MiB pieces, then fsyncs it once at the end; the reader reads with
 * pread and checks every frame's CRC and content size before it decompresses.
 */
#include "store/zfile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/crc32c.h"

#define ZFILE_FLUSH_BYTES (1u << 20)

/* ---- writer ---- */

int zfile_out_open(zfile_out_t *w, const char *path, const char *magic, uint32_t version, int level,
                   err_t *err)
{
    memset(w, 0, sizeof *w);
    w->path = path;
    w->magic = magic;
    w->version = version;
    w->err = err;
    w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0)
        return err_set(err, ERR_IO, "%s: open: %s", path, strerror(errno));
    w->cctx = ZSTD_createCCtx();
    if (!w->cctx) {
        close(w->fd);
        w->fd = -1;
        return err_set(err, ERR_NOMEM, "%s: zstd context", path);
    }
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, level);
    buf_append(&w->out, magic, 8);
    buf_put_u32le(&w->out, version);
    buf_put_u32le(&w->out, 0);
    return 0;
}

uint64_t zfile_out_pos(const zfile_out_t *w) { return w->off + buf_len(&w->out); }

uint32_t zfile_out_frame(zfile_out_t *w, const buf_t *raw, uint32_t *crc)
{
    size_t bound = ZSTD_compressBound(buf_len(raw));
    buf_clear(&w->comp);
    buf_reserve(&w->comp, bound);
    size_t z = ZSTD_compress2(w->cctx, w->comp.last, bound, raw->pos, buf_len(raw));
    if (ZSTD_isError(z)) {
        if (!w->rc)
            w->rc = err_set(w->err, ERR_IO, "%s: zstd: %s", w->path, ZSTD_getErrorName(z));
        return 0;
    }
    *crc = crc32c(0, w->comp.last, z);
    buf_append(&w->out, w->comp.last, z);
    return (uint32_t)z;
}

void zfile_out_flush(zfile_out_t *w, bool force)
{
    if (w->rc || (!force && buf_len(&w->out) < ZFILE_FLUSH_BYTES))
        return;
    const uint8_t *p = w->out.pos;
    size_t n = buf_len(&w->out);
    while (n) {
        ssize_t k = write(w->fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            w->rc = err_set(w->err, ERR_IO, "%s: write: %s", w->path, strerror(errno));
            return;
        }
        p += k;
        n -= (size_t)k;
    }
    w->off += buf_len(&w->out);
    buf_clear(&w->out);
}

int zfile_out_finish(zfile_out_t *w, uint8_t *ft, size_t n, uint64_t *bytes)
{
    size_t v = n - ZFILE_FOOTER_TAIL_BYTES;
    store_u32le(ft + v, w->version);
    store_u32le(ft + v + 4, crc32c(0, ft, v + 4));
    memcpy(ft + v + 8, w->magic, 8);
    buf_append(&w->out, ft, n);
    zfile_out_flush(w, true);
    if (!w->rc && fsync(w->fd) != 0)
        w->rc = err_set(w->err, ERR_IO, "%s: fsync: %s", w->path, strerror(errno));
    if (close(w->fd) != 0 && !w->rc)
        w->rc = err_set(w->err, ERR_IO, "%s: close: %s", w->path, strerror(errno));
    w->fd = -1;
    if (!w->rc && bytes)
        *bytes = w->off;
    return w->rc;
}

void zfile_out_close(zfile_out_t *w)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    ZSTD_freeCCtx(w->cctx);
    w->cctx = NULL;
    buf_deinit(&w->out);
    buf_deinit(&w->comp);
}

/* ---- reader ---- */

int zfile_in_open(zfile_in_t *r, const char *path, err_t *err)
{
    memset(r, 0, sizeof *r);
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (r->fd < 0 || fstat(r->fd, &st) != 0)
        return err_set(err, errno == ENOENT ? ERR_NOTFOUND : ERR_IO, "%s: open: %s", path,
                       strerror(errno));
    if (!(r->dctx = ZSTD_createDCtx()))
        return err_set(err, ERR_NOMEM, "%s: zstd context", path);
    r->size = (uint64_t)st.st_size;
    return 0;
}

void zfile_in_close(zfile_in_t *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    ZSTD_freeDCtx(r->dctx);
    r->dctx = NULL;
}

int zfile_in_read(const zfile_in_t *r, void *p, size_t n, uint64_t off)
{
    uint8_t *q = p;
    while (n) {
        ssize_t k = pread(r->fd, q, n, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k == 0 ? ERR_CORRUPT : ERR_IO;
        q += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

int zfile_in_read_crc(const zfile_in_t *r, void *p, size_t n, uint64_t off, uint32_t crc)
{
    int rc = zfile_in_read(r, p, n, off);
    if (!rc && crc32c(0, p, n) != crc)
        rc = ERR_CORRUPT;
    return rc;
}

int zfile_in_frame(const zfile_in_t *r, uint64_t off, uint32_t clen, uint32_t rlen, uint32_t crc,
                   buf_t *comp, buf_t *raw)
{
    buf_clear(comp);
    buf_reserve(comp, clen);
    int rc = zfile_in_read_crc(r, comp->last, clen, off, crc);
    if (rc)
        return rc;
    if (ZSTD_getFrameContentSize(comp->last, clen) != rlen)
        return ERR_CORRUPT; /* checked before allocating rlen bytes */
    buf_clear(raw);
    buf_reserve(raw, rlen ? rlen : 1);
    size_t z = ZSTD_decompressDCtx(r->dctx, raw->last, rlen, comp->last, clen);
    if (ZSTD_isError(z) || z != rlen)
        return ERR_CORRUPT;
    raw->last += rlen;
    return 0;
}

int zfile_in_ends(const zfile_in_t *r, const char *path, const char *kind, const char *magic,
                  uint32_t version, uint8_t *ft, size_t n, err_t *err)
{
    uint8_t hd[ZFILE_HEADER_BYTES];
    if (r->size < ZFILE_HEADER_BYTES + n)
        return ZFILE_CORRUPT(err, kind, path, r->size, "file too short");
    uint64_t fto = r->size - n;
    size_t v = n - ZFILE_FOOTER_TAIL_BYTES;
    int rc;
    if ((rc = zfile_in_read(r, hd, sizeof hd, 0)) || (rc = zfile_in_read(r, ft, n, fto)))
        return err_set(err, rc, "%s: read: %s", path, strerror(errno));
    if (memcmp(hd, magic, 8) != 0 || memcmp(ft + v + 8, magic, 8) != 0)
        return ZFILE_CORRUPT(err, kind, path, 0, "bad magic");
    if (load_u32le(hd + 12) != 0)
        return ZFILE_CORRUPT(err, kind, path, 12, "unknown header flags");
    if (load_u32le(hd + 8) != version || load_u32le(ft + v) != version)
        return err_set(err, ERR_UNSUPPORTED, "%s: %s file version %u not supported", path, kind,
                       load_u32le(hd + 8));
    if (crc32c(0, ft, v + 4) != load_u32le(ft + v + 4))
        return ZFILE_CORRUPT(err, kind, path, fto, "footer checksum mismatch");
    return 0;
}

int zfile_corrupt(err_t *err, const char *kind, const char *path, uint64_t off, const char *what,
                  const char *file, int line)
{
    return err_set(err, ERR_CORRUPT, "%s: corrupt %s file at offset %llu: %s (%s:%d)", path, kind,
                   (unsigned long long)off, what, file, line);
}
