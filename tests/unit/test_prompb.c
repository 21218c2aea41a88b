/* test_prompb.c - proto/prompb: v1 encode -> snappy -> decode round trips (stale NaN bit-exact,
 * metadata), hand-built v2 requests (symbol resolution, packed and unpacked refs, metadata), the
 * decoders' errors; and ingest/remote_write's POST /api/v1/write through a real server (204, 400
 * with reasons, 415, v2 headers) with the stored samples read back. */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/buf.h"
#include "ingest/remote_write.h"
#include "net/loop.h"
#include "proto/pbwire.h"
#include "proto/prompb.h"
#include "store/db.h"
#include "test.h"

#define STALE_BITS 0x7ff0000000000002ULL

/* Snappy-compresses and uncompresses buf b back into out (what a sender and the receiver do). */
static void snappy_round(const buf_t *b, buf_t *out)
{
    size_t n = snappy_max_compressed_length(buf_len(b));
    char *z = malloc(n);
    REQUIRE(z != NULL);
    REQUIRE(snappy_compress((const char *)b->pos, buf_len(b), z, &n) == SNAPPY_OK);
    size_t raw;
    REQUIRE(snappy_uncompressed_length(z, n, &raw) == SNAPPY_OK);
    CHECK_EQ_U64(raw, buf_len(b));
    buf_reserve(out, raw + 1);
    REQUIRE(snappy_uncompress(z, n, (char *)out->last, &raw) == SNAPPY_OK);
    out->last += raw;
    free(z);
}

TEST(v1_round_trip_through_snappy)
{
    prompb_label_t l1[] = {{STR("__name__"), STR("up")}, {STR("job"), STR("node")}};
    prompb_label_t l2[] = {{STR("__name__"), STR("x_total")}, {STR("a"), STR("\xc3\xa9")}};
    double stale;
    uint64_t sb = STALE_BITS;
    memcpy(&stale, &sb, sizeof stale);
    prompb_sample_t s1[] = {{1, 1000}, {0, 2000}, {-2.5, -3}};
    prompb_sample_t s2[] = {{stale, 5000}, {INFINITY, 6000}};
    prompb_series_t ss[] = {{l1, 2, s1, 3, 0, 0}, {l2, 2, s2, 2, 0, 0}};
    prompb_metadata_t md[] = {{1, STR("x_total"), STR("Things."), STR("")}};
    prompb_write_t w = {ss, 2, md, 1};
    buf_t b = BUF_INIT, raw = BUF_INIT;
    prompb_encode_v1(&b, &w);
    snappy_round(&b, &raw);
    arena_t a;
    arena_init(&a, 0);
    prompb_write_t got;
    err_t err = {0};
    REQUIRE_OK(prompb_decode_v1(raw.pos, buf_len(&raw), &a, &got, &err));
    REQUIRE(got.n_series == 2);
    CHECK_EQ_INT(got.series[0].n_labels, 2);
    CHECK_EQ_STRN(got.series[0].labels[1].value, "node");
    CHECK_EQ_INT(got.series[0].n_samples, 3);
    CHECK_EQ_DBL(got.series[0].samples[2].value, -2.5);
    CHECK_EQ_INT(got.series[0].samples[2].ts_ms, -3);
    CHECK_EQ_DBL(got.series[0].samples[1].value, 0);
    CHECK_EQ_STRN(got.series[1].labels[1].value, "\xc3\xa9");
    uint64_t bits;
    memcpy(&bits, &got.series[1].samples[0].value, sizeof bits);
    CHECK_EQ_U64(bits, STALE_BITS);
    CHECK(isinf(got.series[1].samples[1].value));
    REQUIRE(got.n_metadata == 1);
    CHECK_EQ_INT(got.metadata[0].type, 1);
    CHECK_EQ_STRN(got.metadata[0].family, "x_total");
    CHECK_EQ_STRN(got.metadata[0].help, "Things.");
    CHECK_EQ_INT(got.metadata[0].unit.len, 0);
    /* re-encoding gives the same bytes */
    buf_t b2 = BUF_INIT;
    prompb_encode_v1(&b2, &got);
    CHECK(buf_len(&b2) == buf_len(&b) && memcmp(b2.pos, b.pos, buf_len(&b)) == 0);
    buf_deinit(&b2);
    buf_deinit(&b);
    buf_deinit(&raw);
    arena_deinit(&a);
}

TEST(v1_counts_histograms_and_skips_unknown_fields)
{
    buf_t b = BUF_INIT;
    size_t ts = pb_begin(&b, 1);
    size_t l = pb_begin(&b, 1);
    pb_put_str(&b, 1, STR("__name__"));
    pb_put_str(&b, 2, STR("h"));
    pb_end(&b, l);
    size_t h = pb_begin(&b, 4);
    pb_put_varint(&b, 1, 3);
    pb_end(&b, h);
    size_t e = pb_begin(&b, 3);
    pb_put_double(&b, 2, 1);
    pb_end(&b, e);
    pb_put_varint(&b, 99, 7);
    pb_end(&b, ts);
    pb_put_str(&b, 2, STR("reserved field"));
    arena_t a;
    arena_init(&a, 0);
    prompb_write_t w;
    err_t err = {0};
    REQUIRE_OK(prompb_decode_v1(b.pos, buf_len(&b), &a, &w, &err));
    REQUIRE(w.n_series == 1);
    CHECK_EQ_INT(w.series[0].n_histograms, 1);
    CHECK_EQ_INT(w.series[0].n_exemplars, 1);
    CHECK_EQ_INT(w.series[0].n_samples, 0);
    buf_deinit(&b);
    arena_deinit(&a);
}

TEST(v1_errors)
{
    arena_t a;
    arena_init(&a, 0);
    prompb_write_t w;
    err_t err = {0};
    /* timeseries with varint wire type */
    const uint8_t bad_wire[] = {0x08, 0x01};
    CHECK(prompb_decode_v1(bad_wire, sizeof bad_wire, &a, &w, &err) == ERR_PARSE);
    CHECK(strstr(err.msg, "wire type") != NULL);
    /* truncated length */
    const uint8_t trunc[] = {0x0a, 0x05, 0x0a};
    CHECK(prompb_decode_v1(trunc, sizeof trunc, &a, &w, &err) == ERR_PARSE);
    /* invalid UTF-8 label */
    buf_t b = BUF_INIT;
    size_t ts = pb_begin(&b, 1);
    size_t l = pb_begin(&b, 1);
    pb_put_str(&b, 1, STR("a"));
    pb_put_str(&b, 2, STR("\xff"));
    pb_end(&b, l);
    pb_end(&b, ts);
    CHECK(prompb_decode_v1(b.pos, buf_len(&b), &a, &w, &err) == ERR_PARSE);
    CHECK(strstr(err.msg, "UTF-8") != NULL);
    buf_deinit(&b);
    /* empty request */
    CHECK_OK(prompb_decode_v1(NULL, 0, &a, &w, &err));
    CHECK_EQ_INT(w.n_series, 0);
    arena_deinit(&a);
}

/* A v2 request: symbols "", "__name__", "up", "job", "node", "Help.", "s". */
static void build_v2(buf_t *b, bool packed, uint32_t bad_ref)
{
    const char *syms[] = {"", "__name__", "up", "job", "node", "Help.", "s"};
    for (size_t i = 0; i < 7; i++)
        pb_put_str(b, 4, str_cstr(syms[i]));
    size_t ts = pb_begin(b, 5);
    uint64_t refs[] = {1, 2, 3, bad_ref ? bad_ref : 4};
    if (packed) {
        pb_put_packed_varint(b, 1, refs, 4);
    } else {
        for (int i = 0; i < 4; i++)
            pb_put_varint(b, 1, refs[i]);
    }
    size_t s = pb_begin(b, 2);
    pb_put_double(b, 1, 42);
    pb_put_varint(b, 2, 1234);
    pb_put_varint(b, 3, 1000);
    pb_end(b, s);
    size_t m = pb_begin(b, 5);
    pb_put_varint(b, 1, 2);
    pb_put_varint(b, 3, 5);
    pb_put_varint(b, 4, 6);
    pb_end(b, m);
    pb_end(b, ts);
}

TEST(v2_resolves_symbols)
{
    for (int packed = 0; packed < 2; packed++) {
        buf_t b = BUF_INIT, raw = BUF_INIT;
        build_v2(&b, packed, 0);
        snappy_round(&b, &raw);
        arena_t a;
        arena_init(&a, 0);
        prompb_write_t w;
        err_t err = {0};
        REQUIRE_OK(prompb_decode_v2(raw.pos, buf_len(&raw), &a, &w, &err));
        REQUIRE(w.n_series == 1);
        REQUIRE(w.series[0].n_labels == 2);
        CHECK_EQ_STRN(w.series[0].labels[0].name, "__name__");
        CHECK_EQ_STRN(w.series[0].labels[0].value, "up");
        CHECK_EQ_STRN(w.series[0].labels[1].name, "job");
        CHECK_EQ_STRN(w.series[0].labels[1].value, "node");
        REQUIRE(w.series[0].n_samples == 1);
        CHECK_EQ_DBL(w.series[0].samples[0].value, 42);
        CHECK_EQ_INT(w.series[0].samples[0].ts_ms, 1234);
        REQUIRE(w.n_metadata == 1);
        CHECK_EQ_STRN(w.metadata[0].family, "up");
        CHECK_EQ_INT(w.metadata[0].type, 2);
        CHECK_EQ_STRN(w.metadata[0].help, "Help.");
        CHECK_EQ_STRN(w.metadata[0].unit, "s");
        /* the same bytes as v1: fields 4 and 5 are unknown there, so nothing is decoded */
        REQUIRE_OK(prompb_decode_v1(raw.pos, buf_len(&raw), &a, &w, &err));
        CHECK_EQ_INT(w.n_series, 0);
        buf_deinit(&b);
        buf_deinit(&raw);
        arena_deinit(&a);
    }
}

TEST(v2_errors)
{
    arena_t a;
    arena_init(&a, 0);
    prompb_write_t w;
    err_t err = {0};
    buf_t b = BUF_INIT;
    build_v2(&b, true, 99);
    CHECK(prompb_decode_v2(b.pos, buf_len(&b), &a, &w, &err) == ERR_PARSE);
    CHECK(strstr(err.msg, "out of range") != NULL);
    buf_clear(&b);
    pb_put_str(&b, 4, STR("x"));
    size_t ts = pb_begin(&b, 5);
    pb_end(&b, ts);
    CHECK(prompb_decode_v2(b.pos, buf_len(&b), &a, &w, &err) == ERR_PARSE);
    CHECK(strstr(err.msg, "symbols[0]") != NULL);
    buf_clear(&b);
    pb_put_str(&b, 4, STR(""));
    pb_put_str(&b, 4, STR("a"));
    ts = pb_begin(&b, 5);
    uint64_t refs[] = {1, 1, 1};
    pb_put_packed_varint(&b, 1, refs, 3);
    pb_end(&b, ts);
    CHECK(prompb_decode_v2(b.pos, buf_len(&b), &a, &w, &err) == ERR_PARSE);
    CHECK(strstr(err.msg, "odd") != NULL);
    buf_deinit(&b);
    arena_deinit(&a);
}

/* ---- the receiver, POST /api/v1/write, through a real server ---- */

typedef struct rw_srv {
    loop_t *loop;
    http_server_t *http;
    db_t *db;
    pthread_t th;
    int port;
} rw_srv_t;

static void on_db(void *arg) { db_poll(((rw_srv_t *)arg)->db); }

static void *rw_loop(void *arg)
{
    loop_run(((rw_srv_t *)arg)->loop);
    return NULL;
}

/* POSTs body (snappy-compressed here) with the given Content-Type; the response into out. */
static int rw_post(int port, const char *ctype, const buf_t *pb, buf_t *out)
{
    size_t zn = snappy_max_compressed_length(buf_len(pb));
    char *z = malloc(zn + 512);
    if (!z || snappy_compress((const char *)pb->pos, buf_len(pb), z, &zn) != SNAPPY_OK) {
        free(z);
        return -1;
    }
    char head[512];
    int hn = snprintf(head, sizeof head,
                      "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      "Content-Encoding: snappy\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                      ctype, zn);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int status = -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        send(fd, head, (size_t)hn, MSG_NOSIGNAL) == hn &&
        send(fd, z, zn, MSG_NOSIGNAL) == (ssize_t)zn) {
        struct timeval tv = {10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        for (;;) {
            uint8_t *p = buf_reserve(out, 65536);
            ssize_t n = recv(fd, p, 65536, 0);
            if (n <= 0)
                break;
            out->last += n;
        }
        sscanf(buf_cstr(out), "HTTP/1.%*d %d", &status);
    }
    close(fd);
    free(z);
    return status;
}

TEST(remote_write_receiver)
{
    rw_srv_t t;
    memset(&t, 0, sizeof t);
    db_opts_t o;
    db_opts_default(&o);
    o.dir = test_tmpdir();
    o.fsync_mode = WAL_FSYNC_OFF;
    o.retention_ms = 0;
    err_t err = {0};
    REQUIRE_OK(db_open(&o, &t.db, &err));
    t.loop = loop_new(&err);
    REQUIRE(t.loop);
    t.http = http_server_new(t.loop);
    REQUIRE_OK(http_server_listen(t.http, "main", "127.0.0.1", 0, &err));
    REQUIRE_OK(remote_write_register(t.http, t.db, &err));
    loop_watch_t *watch = loop_watch_fd(t.loop, db_event_fd(t.db), on_db, &t);
    REQUIRE(watch);
    t.port = http_server_port(t.http, "main");
    REQUIRE(pthread_create(&t.th, NULL, rw_loop, &t) == 0);

    double stale;
    uint64_t sb = STALE_BITS;
    memcpy(&stale, &sb, sizeof stale);
    prompb_label_t l1[] = {{STR("__name__"), STR("rw_up")}, {STR("job"), STR("node")}};
    prompb_sample_t s1[] = {{1, 1000}, {stale, 2000}};
    prompb_series_t ss[] = {{l1, 2, s1, 2, 0, 0}};
    prompb_metadata_t md[] = {{2, STR("rw_up"), STR("Up."), STR("")}};
    prompb_write_t w = {ss, 1, md, 1};
    buf_t pb = BUF_INIT, r = BUF_INIT;
    prompb_encode_v1(&pb, &w);
    CHECK_EQ_INT(rw_post(t.port, "application/x-protobuf", &pb, &r), 204);
    buf_clear(&r);
    CHECK_EQ_INT(
        rw_post(t.port, "application/x-protobuf;proto=io.prometheus.write.v3.Request", &pb, &r),
        415);
    buf_clear(&r);
    CHECK_EQ_INT(rw_post(t.port, "application/json", &pb, &r), 415);
    buf_clear(&r);

    /* unsorted labels: refused whole, with the reason */
    prompb_label_t l2[] = {{STR("job"), STR("x")}, {STR("__name__"), STR("rw_bad")}};
    prompb_series_t bad[] = {{l2, 2, s1, 1, 0, 0}};
    prompb_write_t wb = {bad, 1, NULL, 0};
    buf_clear(&pb);
    prompb_encode_v1(&pb, &wb);
    CHECK_EQ_INT(rw_post(t.port, "application/x-protobuf", &pb, &r), 400);
    CHECK(strstr(buf_cstr(&r), "labels not sorted by name") != NULL);
    buf_clear(&r);
    /* missing __name__ */
    prompb_label_t l3[] = {{STR("job"), STR("x")}};
    prompb_series_t noname[] = {{l3, 1, s1, 1, 0, 0}};
    prompb_write_t wn = {noname, 1, NULL, 0};
    buf_clear(&pb);
    prompb_encode_v1(&pb, &wn);
    CHECK_EQ_INT(rw_post(t.port, "application/x-protobuf", &pb, &r), 400);
    CHECK(strstr(buf_cstr(&r), "missing __name__") != NULL);
    buf_clear(&r);

    /* v2 with the written-counts headers */
    buf_clear(&pb);
    build_v2(&pb, true, 0);
    CHECK_EQ_INT(
        rw_post(t.port, "application/x-protobuf;proto=io.prometheus.write.v2.Request", &pb, &r),
        204);
    CHECK(strcasestr(buf_cstr(&r), "X-Prometheus-Remote-Write-Samples-Written: 1") != NULL);
    buf_clear(&r);
    /* garbage after snappy: 400 */
    buf_clear(&pb);
    buf_append(&pb, "\x0a\x05\x0a", 3);
    CHECK_EQ_INT(rw_post(t.port, "application/x-protobuf", &pb, &r), 400);

    loop_stop(t.loop);
    pthread_join(t.th, NULL);
    loop_watch_stop(watch);
    http_server_free(t.http);
    loop_free(t.loop);

    /* what was stored: rw_up's two samples (stale marker bit-exact) and up from v2 */
    arena_t a;
    arena_init(&a, 0);
    matcher_t m;
    REQUIRE_OK(matcher_init(&m, MATCH_EQ, STR("__name__"), STR("rw_up"), &err));
    db_series_iter_t *it;
    REQUIRE_OK(db_select(t.db, &m, 1, 0, 10000, &a, &it, &err));
    REQUIRE(db_series_next(it));
    int64_t ts;
    double v;
    REQUIRE(db_sample_next(it, &ts, &v));
    CHECK_EQ_INT(ts, 1000);
    CHECK_EQ_DBL(v, 1);
    REQUIRE(db_sample_next(it, &ts, &v));
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    CHECK_EQ_U64(bits, STALE_BITS);
    CHECK(!db_series_next(it));
    matcher_deinit(&m);
    REQUIRE_OK(matcher_init(&m, MATCH_EQ, STR("__name__"), STR("up"), &err));
    REQUIRE_OK(db_select(t.db, &m, 1, 0, 10000, &a, &it, &err));
    REQUIRE(db_series_next(it));
    REQUIRE(db_sample_next(it, &ts, &v));
    CHECK_EQ_INT(ts, 1234);
    CHECK_EQ_DBL(v, 42);
    matcher_deinit(&m);
    REQUIRE_OK(matcher_init(&m, MATCH_EQ, STR("__name__"), STR("rw_bad"), &err));
    REQUIRE_OK(db_select(t.db, &m, 1, 0, 10000, &a, &it, &err));
    CHECK(!db_series_next(it));
    matcher_deinit(&m);
    arena_deinit(&a);
    buf_deinit(&pb);
    buf_deinit(&r);
    db_close(t.db);
}
