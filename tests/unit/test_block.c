/* test_block.c - block write/read round trips, postings over a block, merging, corruption. */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/log.h"
#include "store/block.h"
#include "store/chunk.h"
#include "test.h"

/* Series i of a test block: {__name__="m", i="<i>", parity="even|odd"}, labels in sorted order. */
typedef struct tser {
    char name[8], num[16];
    label_t l[3];
    labels_t ls;
} tser_t;

static void mkser(tser_t *s, int i)
{
    snprintf(s->num, sizeof s->num, "%04d", i);
    s->l[0] = (label_t){STR("__name__"), STR("m")};
    s->l[1] = (label_t){STR("i"), str_cstr(s->num)};
    s->l[2] = (label_t){STR("parity"), i % 2 ? STR("odd") : STR("even")};
    s->ls = (labels_t){s->l, 3};
}

/* Writes series [first, first+n) with samples t = t0 + k*step, value = i*1000 + k. */
static int write_block(const char *dir, int first, int n, int64_t t0, int64_t step, int samples,
                       char *id)
{
    block_writer_t *w;
    err_t err;
    if (block_writer_new(dir, &w, &err) != 0)
        return -1;
    for (int i = first; i < first + n; i++) {
        tser_t s;
        mkser(&s, i);
        if (block_writer_series_begin(w, &s.ls, &err))
            return -1;
        for (int k = 0; k < samples; k++)
            if (block_writer_sample(w, t0 + k * step, i * 1000.0 + k, &err))
                return -1;
        if (block_writer_series_end(w, &err))
            return -1;
    }
    return block_writer_finish(w, 1, id, &err);
}

static int count_samples(block_t *b, uint64_t ref, int64_t *first_t, double *first_v)
{
    arena_t a;
    arena_init(&a, 0);
    labels_t ls;
    block_chunk_ref_t *c;
    size_t nc;
    int n = 0;
    if (block_series(b, ref, &a, &ls, &c, &nc) == 0) {
        int64_t prev = INT64_MIN;
        for (size_t i = 0; i < nc; i++) {
            uint8_t enc;
            const uint8_t *d;
            size_t len;
            if (block_chunk(b, c[i].off, &enc, &d, &len) != 0) {
                arena_deinit(&a);
                return -1;
            }
            chunk_iter_t it;
            chunk_iter_init_enc(&it, enc, d, len);
            int64_t t;
            double v;
            while (chunk_iter_next(&it, &t, &v)) {
                if (n == 0) {
                    *first_t = t;
                    *first_v = v;
                }
                CHECK(t > prev);
                CHECK(t >= c[i].mint && t <= c[i].maxt);
                prev = t;
                n++;
            }
        }
    }
    arena_deinit(&a);
    return n;
}

TEST(write_open_read)
{
    char dir[4096], id[17], bdir[4200];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    REQUIRE_OK(write_block(dir, 0, 50, 1000, 15000, 1000, id));
    snprintf(bdir, sizeof bdir, "%s/%s", dir, id);
    err_t err;
    CHECK_OK(block_verify(bdir, &err));
    block_t *b;
    REQUIRE_OK(block_open(bdir, &b, &err));
    const block_meta_t *m = block_meta(b);
    CHECK_EQ_U64(m->n_series, 50);
    CHECK_EQ_U64(m->n_samples, 50000);
    CHECK_EQ_U64(m->n_chunks, 50 * ((1000 + BLOCK_CHUNK_SAMPLES - 1) / BLOCK_CHUNK_SAMPLES));
    CHECK_EQ_INT(m->m_mint, 1000);
    CHECK_EQ_INT(m->m_maxt, 1000 + 999 * 15000);
    CHECK_EQ_INT(m->min_t, 1000);
    /* Regular samples compress to well under a byte each. */
    double per = (double)m->files[0].size / (double)m->n_samples;
    CHECK(per < 3.0);

    arena_t a;
    arena_init(&a, 0);
    labels_t ls;
    block_chunk_ref_t *c;
    size_t nc;
    REQUIRE_OK(block_series(b, 7, &a, &ls, &c, &nc));
    CHECK_EQ_STRN(labels_get(&ls, "i"), "0007");
    CHECK_EQ_STRN(labels_get(&ls, "parity"), "odd");
    int64_t t0;
    double v0;
    CHECK_EQ_INT(count_samples(b, 7, &t0, &v0), 1000);
    CHECK_EQ_INT(t0, 1000);
    CHECK_EQ_DBL(v0, 7000);

    matcher_t *ms;
    size_t n;
    REQUIRE_OK(matchers_parse(STR("m{parity=\"even\", i=~\"00[0-1].\"}"), &a, &ms, &n, &err));
    index_reader_t r = block_index_reader(b);
    postings_t p;
    index_select(&r, ms, n, &a, &p);
    CHECK_EQ_INT(p.n, 10); /* 0000..0019 even */
    matchers_deinit(ms, n);
    REQUIRE_OK(matchers_parse(STR("{parity!=\"odd\", __name__=\"m\"}"), &a, &ms, &n, &err));
    index_select(&r, ms, n, &a, &p);
    CHECK_EQ_INT(p.n, 25);
    matchers_deinit(ms, n);
    arena_deinit(&a);
    block_close(b);
}

static int n_cb;
static void count_cb(void *arg, str_t s)
{
    (void)arg;
    (void)s;
    n_cb++;
}

TEST(label_names_values)
{
    char dir[4096], id[17], bdir[4200];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    REQUIRE_OK(write_block(dir, 0, 20, 0, 1000, 3, id));
    snprintf(bdir, sizeof bdir, "%s/%s", dir, id);
    block_t *b;
    err_t err;
    REQUIRE_OK(block_open(bdir, &b, &err));
    n_cb = 0;
    block_label_names(b, count_cb, NULL);
    CHECK_EQ_INT(n_cb, 3);
    n_cb = 0;
    block_label_values(b, STR("i"), count_cb, NULL);
    CHECK_EQ_INT(n_cb, 20);
    n_cb = 0;
    block_label_values(b, STR("nope"), count_cb, NULL);
    CHECK_EQ_INT(n_cb, 0);
    block_close(b);
}

TEST(empty_block)
{
    char dir[4096], id[17], bdir[4200];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    REQUIRE_OK(write_block(dir, 0, 0, 0, 1000, 3, id));
    snprintf(bdir, sizeof bdir, "%s/%s", dir, id);
    block_t *b;
    err_t err;
    REQUIRE_OK(block_open(bdir, &b, &err));
    CHECK_EQ_U64(block_meta(b)->n_series, 0);
    arena_t a;
    arena_init(&a, 0);
    matcher_t m;
    matcher_init(&m, MATCH_EQ, STR("__name__"), STR("m"), NULL);
    index_reader_t r = block_index_reader(b);
    postings_t p;
    index_select(&r, &m, 1, &a, &p);
    CHECK_EQ_INT(p.n, 0);
    arena_deinit(&a);
    block_close(b);
}

TEST(merge_copies_and_dedupes)
{
    char dir[4096], id1[17], id2[17], id3[17], id4[17], path[4200];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    /* b1: series 0..29 at t 0..; b2: series 20..49 later (adjacent); b3 overlaps b1 in time. */
    REQUIRE_OK(write_block(dir, 0, 30, 0, 1000, 100, id1));
    REQUIRE_OK(write_block(dir, 20, 30, 100000, 1000, 100, id2));
    REQUIRE_OK(write_block(dir, 0, 5, 500, 1000, 100, id3));
    block_t *in[3];
    err_t err;
    const char *ids[] = {id1, id2, id3};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, ids[i]);
        REQUIRE_OK(block_open(path, &in[i], &err));
    }
    block_writer_t *w;
    REQUIRE_OK(block_writer_new(dir, &w, &err));
    REQUIRE_OK(block_merge_metrics(w, in, 3, INT64_MIN, INT64_MAX, &err));
    REQUIRE_OK(block_writer_finish(w, 2, id4, &err));
    snprintf(path, sizeof path, "%s/%s", dir, id4);
    CHECK_OK(block_verify(path, &err));
    block_t *out;
    REQUIRE_OK(block_open(path, &out, &err));
    const block_meta_t *m = block_meta(out);
    CHECK_EQ_U64(m->n_series, 50);
    CHECK_EQ_INT(m->level, 2);
    /* 50 series x 100 + 10 series x 100 (b2 part of 20..29) + 5 series x 100 more timestamps
     * from b3 (t = 500 + k*1000 never equals a b1 timestamp). */
    CHECK_EQ_U64(m->n_samples, 5000 + 1000 + 500);
    int64_t t0;
    double v0;
    CHECK_EQ_INT(count_samples(out, 0, &t0, &v0), 200);
    CHECK_EQ_INT(count_samples(out, 25, &t0, &v0), 200);
    CHECK_EQ_INT(count_samples(out, 40, &t0, &v0), 100);
    CHECK_EQ_INT(t0, 100000);
    block_close(out);
    /* Merging a block with itself dedupes everything; a time window trims. */
    block_t *twice[2] = {in[0], in[0]};
    REQUIRE_OK(block_writer_new(dir, &w, &err));
    REQUIRE_OK(block_merge_metrics(w, twice, 2, 10000, 19999, &err));
    REQUIRE_OK(block_writer_finish(w, 2, id4, &err));
    snprintf(path, sizeof path, "%s/%s", dir, id4);
    REQUIRE_OK(block_open(path, &out, &err));
    CHECK_EQ_U64(block_meta(out)->n_samples, 30 * 10);
    block_close(out);
    for (int i = 0; i < 3; i++)
        block_close(in[i]);
}

static void flip(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    uint8_t b;
    if (pread(fd, &b, 1, off) == 1) {
        b ^= 0x10;
        CHECK_EQ_INT(pwrite(fd, &b, 1, off), 1);
    }
    close(fd);
}

TEST(corruption_detected)
{
    char dir[4096], id[17], bdir[4200], path[4300];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    REQUIRE_OK(write_block(dir, 0, 10, 0, 1000, 50, id));
    snprintf(bdir, sizeof bdir, "%s/%s", dir, id);
    err_t err;
    block_t *b;
    /* A flipped chunk byte fails that chunk's CRC, nothing else. */
    snprintf(path, sizeof path, "%s/chunks", bdir);
    flip(path, 20);
    REQUIRE_OK(block_open(bdir, &b, &err));
    int64_t t;
    double v;
    CHECK_EQ_INT(count_samples(b, 0, &t, &v), -1);
    CHECK_EQ_INT(count_samples(b, 1, &t, &v), 50);
    block_close(b);
    CHECK_EQ_INT(block_verify(bdir, &err), ERR_CORRUPT);
    flip(path, 20);
    CHECK_OK(block_verify(bdir, &err));
    /* A flipped index byte is caught at open, with the file named. */
    snprintf(path, sizeof path, "%s/index", bdir);
    flip(path, 30);
    CHECK_EQ_INT(block_open(bdir, &b, &err), ERR_CORRUPT);
    CHECK(strstr(err.msg, "index") != NULL);
    flip(path, 30);
    snprintf(path, sizeof path, "%s/meta", bdir);
    flip(path, 20);
    CHECK_EQ_INT(block_open(bdir, &b, &err), ERR_CORRUPT);
    CHECK(strstr(err.msg, "meta") != NULL);
}

TEST(writer_rejects_misuse)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    block_writer_t *w;
    err_t err;
    REQUIRE_OK(block_writer_new(dir, &w, &err));
    tser_t a, b;
    mkser(&a, 1);
    mkser(&b, 0);
    REQUIRE_OK(block_writer_series_begin(w, &a.ls, &err));
    CHECK_OK(block_writer_sample(w, 10, 1, &err));
    CHECK_EQ_INT(block_writer_sample(w, 10, 1, &err), ERR_INVAL);
    CHECK_OK(block_writer_series_end(w, &err));
    CHECK_EQ_INT(block_writer_series_begin(w, &b.ls, &err), ERR_INVAL);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s", block_writer_dir(w));
    block_writer_abort(w);
    CHECK(access(tmp, F_OK) != 0);
}
