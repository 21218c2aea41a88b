/* test_lokipb.c - proto/lokipb: the PushRequest walker on hand-built messages (every field,
 * skipped fields, wrong wire types, bad UTF-8, timestamps out of range, every truncation), the JSON
 * decoder (v1 and legacy shapes, both metadata forms, every error with its path), encode/decode
 * round trips; and ingest/loki_push's label-string parser and validation (Loki's messages, the
 * whole request refused on one bad entry), with a valid push committed to a real store and read
 * back. */
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "ingest/loki_push.h"
#include "proto/lokipb.h"
#include "proto/pbwire.h"
#include "store/db.h"
#include "test.h"

#define NOW_NS 1790000000000000000LL /* 2026-09-21 */

/* ---- hand-built protobuf ---- */

static void put_ts(buf_t *b, int64_t sec, int64_t nanos)
{
    size_t m = pb_begin(b, 1);
    pb_opt_varint(b, 1, (uint64_t)sec);
    pb_opt_varint(b, 2, (uint64_t)nanos);
    pb_end(b, m);
}

static void put_pair(buf_t *b, uint32_t num, const char *name, const char *value)
{
    size_t m = pb_begin(b, num);
    pb_put_str(b, 1, str_cstr(name));
    pb_put_str(b, 2, str_cstr(value));
    pb_end(b, m);
}

/* Two streams, every field of every message, plus fields the walker must skip. */
static void build_full(buf_t *b)
{
    size_t s = pb_begin(b, 1);
    pb_put_str(b, 1, STR("{job=\"app\", level=\"info\"}"));
    size_t e = pb_begin(b, 2);
    put_ts(b, 1700000000, 123456789);
    pb_put_str(b, 2, STR("first line"));
    put_pair(b, 3, "trace_id", "0242ac120002");
    put_pair(b, 4, "parsed_label", "skipped");
    put_pair(b, 3, "user", "u1");
    pb_put_varint(b, 9, 77); /* unknown field */
    pb_end(b, e);
    e = pb_begin(b, 2);
    put_ts(b, 1700000001, 0);
    pb_put_str(b, 2, STR("second \xc3\xa9"));
    pb_end(b, e);
    pb_put_varint(b, 3, 0xdeadbeef); /* hash: ignored */
    pb_end(b, s);
    pb_put_str(b, 2, STR("json")); /* format: ignored */
    s = pb_begin(b, 1);
    pb_put_str(b, 1, STR("{job=\"other\"}"));
    e = pb_begin(b, 2);
    put_ts(b, 5, 1);
    pb_end(b, e);
    pb_end(b, s);
}

TEST(decode_every_field)
{
    buf_t b = BUF_INIT;
    build_full(&b);
    arena_t a;
    arena_init(&a, 0);
    lokipb_push_t p;
    err_t err = {0};
    REQUIRE_OK(lokipb_decode(b.pos, buf_len(&b), &a, &p, &err));
    REQUIRE(p.n_streams == 2);
    CHECK_EQ_U64(p.n_entries, 3);
    const lokipb_stream_t *s = &p.streams[0];
    CHECK_EQ_STRN(s->labels_text, "{job=\"app\", level=\"info\"}");
    CHECK(s->labels == NULL);
    REQUIRE(s->n_entries == 2);
    CHECK_EQ_INT(s->entries[0].ts_ns, 1700000000123456789LL);
    CHECK_EQ_STRN(s->entries[0].line, "first line");
    REQUIRE(s->entries[0].n_meta == 2);
    CHECK_EQ_STRN(s->entries[0].meta[0].name, "trace_id");
    CHECK_EQ_STRN(s->entries[0].meta[0].value, "0242ac120002");
    CHECK_EQ_STRN(s->entries[0].meta[1].name, "user");
    CHECK_EQ_STRN(s->entries[0].meta[1].value, "u1");
    CHECK_EQ_INT(s->entries[1].ts_ns, 1700000001000000000LL);
    CHECK_EQ_STRN(s->entries[1].line, "second \xc3\xa9");
    CHECK_EQ_INT(s->entries[1].n_meta, 0);
    CHECK_EQ_STRN(p.streams[1].labels_text, "{job=\"other\"}");
    CHECK_EQ_INT(p.streams[1].entries[0].ts_ns, 5000000001LL);
    CHECK_EQ_INT(p.streams[1].entries[0].line.len, 0);
    /* Zero-copy: strings point into the input. */
    CHECK((const uint8_t *)s->entries[0].line.ptr > b.pos &&
          (const uint8_t *)s->entries[0].line.ptr < b.last);
    arena_deinit(&a);
    buf_deinit(&b);
}

TEST(decode_empty_and_no_streams)
{
    arena_t a;
    arena_init(&a, 0);
    lokipb_push_t p;
    err_t err = {0};
    REQUIRE_OK(lokipb_decode(NULL, 0, &a, &p, &err));
    CHECK_EQ_INT(p.n_streams, 0);
    buf_t b = BUF_INIT;
    pb_put_str(&b, 2, STR("only format"));
    REQUIRE_OK(lokipb_decode(b.pos, buf_len(&b), &a, &p, &err));
    CHECK_EQ_INT(p.n_streams, 0);
    /* A stream without entries and an entry with a default (epoch) timestamp message. */
    buf_clear(&b);
    size_t s = pb_begin(&b, 1);
    size_t e = pb_begin(&b, 2);
    size_t t = pb_begin(&b, 1);
    pb_end(&b, t);
    pb_end(&b, e);
    pb_end(&b, s);
    REQUIRE_OK(lokipb_decode(b.pos, buf_len(&b), &a, &p, &err));
    REQUIRE(p.n_streams == 1 && p.streams[0].n_entries == 1);
    CHECK_EQ_INT(p.streams[0].entries[0].ts_ns, 0);
    CHECK(p.streams[0].labels_text.ptr == NULL);
    buf_deinit(&b);
    arena_deinit(&a);
}

/* Decodes one stream holding one entry built by fn; returns the decoder's rc. */
static int decode_entry_with(void (*fn)(buf_t *), err_t *err)
{
    buf_t b = BUF_INIT;
    size_t s = pb_begin(&b, 1);
    pb_put_str(&b, 1, STR("{a=\"b\"}"));
    size_t e = pb_begin(&b, 2);
    fn(&b);
    pb_end(&b, e);
    pb_end(&b, s);
    arena_t a;
    arena_init(&a, 0);
    lokipb_push_t p;
    err_clear(err);
    int rc = lokipb_decode(b.pos, buf_len(&b), &a, &p, err);
    arena_deinit(&a);
    buf_deinit(&b);
    return rc;
}

static void e_no_ts(buf_t *b) { pb_put_str(b, 2, STR("line")); }
static void e_nanos_big(buf_t *b) { put_ts(b, 1, 1000000000); }
static void e_nanos_neg(buf_t *b) { put_ts(b, 1, -1); }
static void e_sec_overflow(buf_t *b) { put_ts(b, 9300000000LL, 0); }
static void e_sec_min(buf_t *b) { put_ts(b, -9300000000LL, 0); }
static void e_bad_utf8_line(buf_t *b)
{
    put_ts(b, 1, 0);
    pb_put_str(b, 2, STR("bad \xc0\xaf overlong"));
}
static void e_bad_utf8_meta(buf_t *b)
{
    put_ts(b, 1, 0);
    put_pair(b, 3, "k", "\xed\xa0\x80"); /* a surrogate */
}
static void e_line_varint(buf_t *b)
{
    put_ts(b, 1, 0);
    pb_put_varint(b, 2, 5);
}
static void e_ts_varint(buf_t *b) { pb_put_varint(b, 1, 5); }
static void e_ts_seconds_fixed(buf_t *b)
{
    size_t m = pb_begin(b, 1);
    pb_put_fixed64(b, 1, 5);
    pb_end(b, m);
}
static void e_meta_name_varint(buf_t *b)
{
    put_ts(b, 1, 0);
    size_t m = pb_begin(b, 3);
    pb_put_varint(b, 1, 1);
    pb_end(b, m);
}

TEST(decode_entry_errors)
{
    err_t err;
    CHECK_EQ_INT(decode_entry_with(e_no_ts, &err), ERR_PARSE);
    CHECK(strstr(err.msg, "has no timestamp") != NULL);
    CHECK_EQ_INT(decode_entry_with(e_nanos_big, &err), ERR_PARSE);
    CHECK(strstr(err.msg, "nanos 1000000000 out of range [0, 999999999]") != NULL);
    CHECK_EQ_INT(decode_entry_with(e_nanos_neg, &err), ERR_PARSE);
    CHECK(strstr(err.msg, "nanos -1 out of range") != NULL);
    CHECK_EQ_INT(decode_entry_with(e_sec_overflow, &err), ERR_PARSE);
    CHECK(strstr(err.msg, "9300000000 seconds is out of the range") != NULL);
    CHECK_EQ_INT(decode_entry_with(e_sec_min, &err), ERR_PARSE);
    CHECK_EQ_INT(decode_entry_with(e_bad_utf8_line, &err), ERR_PARSE);
    CHECK(strstr(err.msg, "log line at offset") != NULL && strstr(err.msg, "UTF-8") != NULL);
    CHECK_EQ_INT(decode_entry_with(e_bad_utf8_meta, &err), ERR_PARSE);
    CHECK(strstr(err.msg, "structured metadata value") != NULL);
    CHECK_EQ_INT(decode_entry_with(e_line_varint, &err), ERR_PARSE);
    CHECK(strstr(err.msg, "EntryAdapter field 2") != NULL &&
          strstr(err.msg, "wire type varint, want length-delimited") != NULL);
    CHECK_EQ_INT(decode_entry_with(e_ts_varint, &err), ERR_PARSE);
    CHECK(strstr(err.msg, "EntryAdapter field 1") != NULL);
    CHECK_EQ_INT(decode_entry_with(e_ts_seconds_fixed, &err), ERR_PARSE);
    CHECK(strstr(err.msg, "Timestamp field 1") != NULL);
    CHECK_EQ_INT(decode_entry_with(e_meta_name_varint, &err), ERR_PARSE);
    CHECK(strstr(err.msg, "LabelPairAdapter field 1") != NULL);
}

TEST(decode_stream_and_request_errors)
{
    arena_t a;
    arena_init(&a, 0);
    lokipb_push_t p;
    err_t err = {0};
    buf_t b = BUF_INIT;
    pb_put_varint(&b, 1, 3); /* streams as a varint */
    CHECK_EQ_INT(lokipb_decode(b.pos, buf_len(&b), &a, &p, &err), ERR_PARSE);
    CHECK(strstr(err.msg, "PushRequest field 1 at offset 0") != NULL);
    buf_clear(&b);
    size_t s = pb_begin(&b, 1);
    pb_put_str(&b, 1, STR("{a=\"\xff\"}"));
    pb_end(&b, s);
    CHECK_EQ_INT(lokipb_decode(b.pos, buf_len(&b), &a, &p, &err), ERR_PARSE);
    CHECK(strstr(err.msg, "stream labels at offset 2 is not valid UTF-8") != NULL);
    buf_clear(&b);
    s = pb_begin(&b, 1);
    pb_put_str(&b, 3, STR("hash as bytes"));
    pb_end(&b, s);
    CHECK_EQ_INT(lokipb_decode(b.pos, buf_len(&b), &a, &p, &err), ERR_PARSE);
    CHECK(strstr(err.msg, "StreamAdapter field 3") != NULL);
    const uint8_t junk[] = {0xff, 0xff, 0xff};
    CHECK_EQ_INT(lokipb_decode(junk, sizeof junk, &a, &p, &err), ERR_PARSE);
    buf_deinit(&b);
    arena_deinit(&a);
}

TEST(decode_every_truncation)
{
    buf_t b = BUF_INIT;
    build_full(&b);
    size_t n = buf_len(&b), ok = 0;
    for (size_t cut = 0; cut < n; cut++) {
        arena_t a;
        arena_init(&a, 0);
        lokipb_push_t p;
        err_t err = {0};
        /* A copy of exactly cut bytes, so ASan catches any read past the end. */
        uint8_t *c = malloc(cut ? cut : 1);
        memcpy(c, b.pos, cut);
        int rc = lokipb_decode(c, cut, &a, &p, &err);
        if (rc == 0)
            ok++;
        else
            CHECK(strstr(err.msg, "offset") != NULL || strstr(err.msg, "byte") != NULL);
        free(c);
        arena_deinit(&a);
    }
    /* Only the prefixes ending on a top-level field boundary decode (the empty one, the one
     * after the first stream, the one after the format field). */
    CHECK_EQ_U64(ok, 3);
    buf_deinit(&b);
}

TEST(encode_round_trip)
{
    lokipb_pair_t sl[] = {{STR("job"), STR("a\"b\\c\nd")}, {STR("zone"), STR("eu")}};
    lokipb_pair_t m[] = {{STR("k"), STR("v")}};
    lokipb_entry_t e[] = {{1, STR("x"), m, 1}, {-1500000000LL, STR(""), NULL, 0}};
    lokipb_stream_t st[] = {{STR_NULL, sl, 2, e, 2}, {STR("{q=\"r\"}"), NULL, 0, NULL, 0}};
    lokipb_push_t in = {st, 2, 2};
    buf_t b = BUF_INIT;
    lokipb_encode(&b, &in);
    arena_t a;
    arena_init(&a, 0);
    lokipb_push_t out;
    err_t err = {0};
    REQUIRE_OK(lokipb_decode(b.pos, buf_len(&b), &a, &out, &err));
    REQUIRE(out.n_streams == 2 && out.streams[0].n_entries == 2);
    CHECK_EQ_STRN(out.streams[0].labels_text, "{job=\"a\\\"b\\\\c\\nd\", zone=\"eu\"}");
    CHECK_EQ_INT(out.streams[0].entries[0].ts_ns, 1);
    CHECK_EQ_INT(out.streams[0].entries[1].ts_ns, -1500000000LL);
    CHECK_EQ_STRN(out.streams[0].entries[0].meta[0].value, "v");
    CHECK_EQ_STRN(out.streams[1].labels_text, "{q=\"r\"}");
    /* The label text the encoder wrote parses back to the original labels. */
    labels_t ls;
    REQUIRE_OK(loki_push_parse_labels(out.streams[0].labels_text, &a, &ls, &err));
    REQUIRE(ls.n == 2);
    CHECK_EQ_STRN(ls.v[0].value, "a\"b\\c\nd");
    /* Encoding is canonical: encode(decode(encode(x))) == encode(x). */
    buf_t b2 = BUF_INIT;
    lokipb_encode(&b2, &out);
    CHECK(buf_len(&b) == buf_len(&b2) && memcmp(b.pos, b2.pos, buf_len(&b)) == 0);
    buf_deinit(&b2);
    buf_deinit(&b);
    arena_deinit(&a);
}

/* ---- JSON ---- */

static int json_decode(const char *s, arena_t *a, lokipb_push_t *p, err_t *err)
{
    err_clear(err);
    return lokipb_decode_json((const uint8_t *)s, strlen(s), a, p, err);
}

TEST(json_decode_shapes)
{
    arena_t a;
    arena_init(&a, 0);
    lokipb_push_t p;
    err_t err;
    REQUIRE_OK(json_decode(
        "{\"streams\":[{\"stream\":{\"job\":\"app\",\"level\":\"info\"},\"values\":["
        "[\"1570818238000000000\",\"log line\"],"
        "[\"1570818238000000001\",\"with meta\",{\"trace_id\":\"0242ac\",\"user\":\"u1\"}],"
        "[\"+7\",\"categorized\",{\"structuredMetadata\":{\"a\":\"1\"},\"parsed\":{\"p\":\"x\"}}]"
        "]},{\"stream\":{},\"values\":[]},{\"labels\":\"{legacy=\\\"yes\\\"}\",\"entries\":[{"
        "\"ts\":"
        "\"2018-12-18T08:28:06.801064-04:00\",\"line\":\"old\"}]}]}",
        &a, &p, &err));
    REQUIRE(p.n_streams == 3);
    CHECK_EQ_U64(p.n_entries, 4);
    const lokipb_stream_t *s = &p.streams[0];
    CHECK(s->labels_text.ptr == NULL);
    REQUIRE(s->n_labels == 2);
    CHECK_EQ_STRN(s->labels[0].name, "job");
    CHECK_EQ_STRN(s->labels[1].value, "info");
    REQUIRE(s->n_entries == 3);
    CHECK_EQ_INT(s->entries[0].ts_ns, 1570818238000000000LL);
    CHECK_EQ_STRN(s->entries[0].line, "log line");
    REQUIRE(s->entries[1].n_meta == 2);
    CHECK_EQ_STRN(s->entries[1].meta[0].name, "trace_id");
    CHECK_EQ_STRN(s->entries[1].meta[1].value, "u1");
    CHECK_EQ_INT(s->entries[2].ts_ns, 7);
    REQUIRE(s->entries[2].n_meta == 1);
    CHECK_EQ_STRN(s->entries[2].meta[0].name, "a");
    CHECK_EQ_INT(p.streams[1].n_labels, 0);
    CHECK_EQ_INT(p.streams[1].n_entries, 0);
    CHECK_EQ_STRN(p.streams[2].labels_text, "{legacy=\"yes\"}");
    REQUIRE(p.streams[2].n_entries == 1);
    CHECK_EQ_INT(p.streams[2].entries[0].ts_ns, 1545136086801064000LL);
    CHECK_EQ_STRN(p.streams[2].entries[0].line, "old");
    /* The categorised form with only "parsed" carries no structured metadata; a flat object may
     * use the name structuredMetadata for a string value. */
    REQUIRE_OK(json_decode("{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":["
                           "[\"1\",\"x\",{\"parsed\":{\"p\":\"1\"}}],"
                           "[\"2\",\"y\",{\"structuredMetadata\":\"s\"}]]}]}",
                           &a, &p, &err));
    REQUIRE(p.n_streams == 1 && p.streams[0].n_entries == 2);
    CHECK_EQ_INT(p.streams[0].entries[0].n_meta, 0);
    REQUIRE(p.streams[0].entries[1].n_meta == 1);
    CHECK_EQ_STRN(p.streams[0].entries[1].meta[0].name, "structuredMetadata");
    CHECK_EQ_STRN(p.streams[0].entries[1].meta[0].value, "s");
    /* No streams at all is an empty push. */
    REQUIRE_OK(json_decode("{}", &a, &p, &err));
    CHECK_EQ_INT(p.n_streams, 0);
    REQUIRE_OK(json_decode("{\"streams\":null}", &a, &p, &err));
    /* A NUL inside a line survives. */
    REQUIRE_OK(
        json_decode("{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"1\",\"x\\u0000y\"]]}]}",
                    &a, &p, &err));
    CHECK_EQ_INT(p.streams[0].entries[0].line.len, 3);
    arena_deinit(&a);
}

TEST(json_decode_errors)
{
    static const struct {
        const char *body, *want;
    } cases[] = {
        {"[]", "must be a JSON object"},
        {"{\"streams\":{}}", "streams: must be an array, got an object"},
        {"{\"streams\":[1]}", "streams[0]: a stream must be an object"},
        {"{\"streams\":[{\"stream\":[]}]}", "streams[0].stream: must be an object"},
        {"{\"streams\":[{\"stream\":{\"a\":1}}]}",
         "streams[0].stream: value of \"a\" must be a string, got a number"},
        {"{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":{}}]}",
         "streams[0].values: must be an array of entries"},
        {"{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[1570818238000000000,\"x\"]]}]}",
         "streams[0].values[0][0]: timestamp must be a string of Unix epoch nanoseconds, got a "
         "number"},
        {"{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"12a\",\"x\"]]}]}",
         "streams[0].values[0][0]: timestamp \"12a\" is not an integer"},
        {"{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"99999999999999999999\",\"x\"]]}]}",
         "is not an integer number"},
        {"{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"\",\"x\"]]}]}",
         "timestamp \"\" is not an integer"},
        {"{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"1\",\"x\"],[\"1\"]]}]}",
         "streams[0].values[1]: an entry must have 2 or 3 elements"},
        {"{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"1\",\"x\",{},4]]}]}", "got 4"},
        {"{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[\"1\"]}]}",
         "streams[0].values[0]: an entry must be an array"},
        {"{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"1\",null]]}]}",
         "streams[0].values[0][1]: log line must be a string, got null"},
        {"{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"1\",\"x\",[]]]}]}",
         "streams[0].values[0][2]: structured metadata must be an object"},
        {"{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"1\",\"x\",{\"k\":true}]]}]}",
         "streams[0].values[0][2]: value of \"k\" must be a string, got a boolean"},
        {"{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"1\",\"x\",{\"structuredMetadata\":"
         "{\"k\":2}}]]}]}",
         "value of \"k\" must be a string"},
        {"{\"streams\":[{\"stream\":{\"a\":\"b\",\"a\":\"c\"}}]}", "duplicate object key"},
        {"{\"streams\":[{\"stream\":{\"a\":\"b\"}", "invalid JSON at line 1, column"},
        {"{\"streams\":[{\"stream\":{\"a\":\"\xff\"}}]}", "invalid JSON at line 1"},
        {"{\"streams\":[{\"labels\":3}]}", "streams[0].labels: must be a label string"},
        {"{\"streams\":[{\"labels\":\"{a=\\\"b\\\"}\",\"entries\":[{\"ts\":\"yesterday\"}]}]}",
         "streams[0].entries[0]: ts:"},
        {"{\"streams\":[{\"labels\":\"{a=\\\"b\\\"}\",\"entries\":[{\"line\":\"x\"}]}]}",
         "ts must be an RFC3339 timestamp string, got nothing"},
    };
    arena_t a;
    arena_init(&a, 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lokipb_push_t p;
        err_t err;
        int rc = json_decode(cases[i].body, &a, &p, &err);
        CHECK_EQ_INT(rc, ERR_PARSE);
        if (!strstr(err.msg, cases[i].want))
            test_fail_at(__FILE__, __LINE__, "case %zu: \"%s\" lacks \"%s\"", i, err.msg,
                         cases[i].want);
    }
    arena_deinit(&a);
}

/* ---- label strings (ingest/loki_push) ---- */

static const char *fmt_ls(const labels_t *ls, arena_t *a)
{
    buf_t b = BUF_INIT;
    labels_format(&b, ls);
    const char *s = arena_strndup(a, (const char *)b.pos, buf_len(&b));
    buf_deinit(&b);
    return s;
}

TEST(parse_labels_valid)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"{job=\"app\", level=\"info\"}", "{job=\"app\", level=\"info\"}"},
        {"{level=\"info\",job=\"app\"}", "{job=\"app\", level=\"info\"}"},
        {"  { b = 'single' , a = `raw\\n` , }  ", "{a=\"raw\\\\n\", b=\"single\"}"},
        {"{a=\"x\\ty\\u00e9\\x41\\101\\\"\"}", "{a=\"x\\ty\xc3\xa9"
                                               "AA\\\"\"}"},
        {"{a=\"\", b=\"kept\"}", "{b=\"kept\"}"},
        {"{\"quoted_name\"=\"v\"}", "{quoted_name=\"v\"}"},
        {"up{job=\"x\"}", "{__name__=\"up\", job=\"x\"}"},
        {"{}", "{}"},
        {"", "{}"},
        {" {  } ", "{}"},
        {"{a=\"\"}", "{}"},
        {"{a=\"\", b=''}", "{}"},
        {"{a=\"=~x\", b='!=\\'', c=`!~\\`}", "{a=\"=~x\", b=\"!='\", c=\"!~\\\\\"}"},
        {"{a=\"b\" # =~ c\n}", "{a=\"b\"}"},
    };
    arena_t a;
    arena_init(&a, 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        labels_t ls;
        err_t err = {0};
        int rc = loki_push_parse_labels(str_cstr(cases[i].in), &a, &ls, &err);
        if (rc) {
            test_fail_at(__FILE__, __LINE__, "case %zu (%s): %s", i, cases[i].in, err.msg);
            continue;
        }
        const char *got = fmt_ls(&ls, &a);
        if (strcmp(got, cases[i].want) != 0)
            test_fail_at(__FILE__, __LINE__, "case %zu: %s != %s", i, got, cases[i].want);
    }
    arena_deinit(&a);
}

TEST(parse_labels_errors)
{
    static const struct {
        const char *in;
        int rc;
        const char *want;
    } cases[] = {
        {"{a!=\"b\"}", ERR_PARSE, "1:3: unexpected '!=': a label set takes only '='"},
        {"{a=~\"b.*\"}", ERR_PARSE, "1:3: unexpected '=~'"},
        {"{a!~\"b\"}", ERR_PARSE, "unexpected '!~'"},
        {"{a=~\".*\"}", ERR_PARSE, "unexpected '=~'"},
        {"{a=\"\",\n b!=\"x\"}", ERR_PARSE, "2:3: unexpected '!='"},
        {"{\"a.b\"=\"c\"}", ERR_PARSE, "invalid label name \"a.b\""},
        {"{a=\"b\", a=\"c\"}", ERR_DUPLICATE, "a"},
        {"{b=\"\", b=\"x\"}", ERR_DUPLICATE, "b"},
        {"{a=\"b\"", ERR_PARSE, "1:7: unexpected end of input inside braces"},
        {"{a=\"b}", ERR_PARSE, "unterminated quoted string"},
        {"{a=\"b\nc\"}", ERR_PARSE, "unterminated quoted string"},
        {"{a=\"b\"} extra", ERR_PARSE, "after the selector"},
        {"{a=b}", ERR_PARSE, "expected a quoted string"},
        {"{1a=\"b\"}", ERR_PARSE, "expected a label name"},
        {"{a=\"\\q\"}", ERR_PARSE, "unknown escape sequence"},
        {"{a=\"\\xff\"}", ERR_PARSE, "value of label \"a\" is not valid UTF-8"},
        {"{a=\"\\ud800\"}", ERR_PARSE, "invalid Unicode code point"},
        {"job", ERR_PARSE, ""}, /* a bare metric name: no braces is fine for PromQL... */
    };
    arena_t a;
    arena_init(&a, 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0] - 1; i++) {
        labels_t ls;
        err_t err = {0};
        int rc = loki_push_parse_labels(str_cstr(cases[i].in), &a, &ls, &err);
        if (rc != cases[i].rc || !strstr(err.msg, cases[i].want))
            test_fail_at(__FILE__, __LINE__, "case %zu (%s): rc %d, \"%s\" lacks \"%s\"", i,
                         cases[i].in, rc, err.msg, cases[i].want);
    }
    /* ...and becomes {__name__="job"}, as ParseMetric makes it. */
    labels_t ls;
    err_t err = {0};
    REQUIRE_OK(loki_push_parse_labels(STR("job"), &a, &ls, &err));
    CHECK_EQ_STR(fmt_ls(&ls, &a), "{__name__=\"job\"}");
    arena_deinit(&a);
}

/* ---- validation (ingest/loki_push) ---- */

static int prepare_json(const char *body, arena_t *a, db_batch_t **out, err_t *err)
{
    lokipb_push_t p;
    err_clear(err);
    int rc = lokipb_decode_json((const uint8_t *)body, strlen(body), a, &p, err);
    if (rc)
        return 1000 + rc;
    return loki_push_prepare(&p, NOW_NS, a, out, err);
}

TEST(prepare_refuses_with_loki_messages)
{
    char big_line[300000 + 200];
    snprintf(big_line, sizeof big_line,
             "{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"1\",\"%0300000d\"]]}]}", 0);
    char many_meta[8000];
    size_t n =
        (size_t)snprintf(many_meta, sizeof many_meta,
                         "{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"1\",\"x\",{");
    for (int i = 0; i < 129; i++)
        n += (size_t)snprintf(many_meta + n, sizeof many_meta - n, "%s\"k%d\":\"v\"", i ? "," : "",
                              i);
    snprintf(many_meta + n, sizeof many_meta - n, "}]]}]}");
    char many_labels[2000];
    n = (size_t)snprintf(many_labels, sizeof many_labels, "{\"streams\":[{\"stream\":{");
    for (int i = 0; i < 16; i++)
        n += (size_t)snprintf(many_labels + n, sizeof many_labels - n, "%s\"l%02d\":\"v\"",
                              i ? "," : "", i);
    snprintf(many_labels + n, sizeof many_labels - n, "},\"values\":[[\"1\",\"x\"]]}]}");
    char long_name[1200];
    snprintf(long_name, sizeof long_name, "{\"streams\":[{\"stream\":{\"%01025d\":\"v\"}}]}", 0);
    char long_name2[1200];
    snprintf(long_name2, sizeof long_name2, "{\"streams\":[{\"stream\":{\"a%01024d\":\"v\"}}]}", 0);
    char long_value[2200];
    snprintf(long_value, sizeof long_value, "{\"streams\":[{\"stream\":{\"a\":\"%02049d\"}}]}", 0);

    const struct {
        const char *body, *want;
    } cases[] = {
        {"{\"streams\":[{\"stream\":{},\"values\":[[\"1\",\"x\"]]}]}",
         "error at least one label pair is required per stream"},
        {"{\"streams\":[{\"stream\":{\"a\":\"\"},\"values\":[[\"1\",\"x\"]]}]}",
         "error at least one label pair is required per stream"},
        {"{\"streams\":[{\"labels\":\"{}\",\"entries\":[]}]}",
         "error at least one label pair is required per stream"},
        {"{\"streams\":[{\"stream\":{\"a-b\":\"c\"}}]}",
         "Error parsing labels '{a-b=\"c\"}' with error: invalid label name \"a-b\""},
        {"{\"streams\":[{\"labels\":\"{a=\\\"b\\\"\",\"entries\":[]}]}",
         "Error parsing labels '{a=\"b\"' with error: 1:7: unexpected end of input"},
        {"{\"streams\":[{\"labels\":\"{a=\\\"b\\\",a=\\\"c\\\"}\",\"entries\":[]}]}",
         "stream '{a=\"b\",a=\"c\"}' has duplicate label name: 'a'"},
        {many_labels, "has 16 label names; limit 15"},
        {long_name2, "has label name too long: 'a000"},
        {long_value, "has label value too long: '000"},
        {"{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"0\",\"x\"]]}]}",
         "entry for stream '{a=\"b\"}' has an invalid timestamp: 0 ns is not after the Unix epoch"},
        {"{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"-5\",\"x\"]]}]}",
         "-5 ns is not after"},
        {"{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"1790000601000000000\",\"x\"]]}]}",
         "entry for stream '{a=\"b\"}' has timestamp too new: 2026-09-21T14:23:21"},
        {big_line, "Max entry size '262144' bytes exceeded for stream '{a=\"b\"}' while adding an "
                   "entry with length '300000' bytes"},
        {many_meta, "has too many structured metadata labels: '129', limit: '128'"},

        {"{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"1\",\"x\",{\"\":\"1\"}]]}]}",
         "has structured metadata with an empty name (value '1')"},
    };
    (void)long_name;
    arena_t a;
    arena_init(&a, 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        db_batch_t *b = (db_batch_t *)&a; /* must come back NULL */
        err_t err;
        int rc = prepare_json(cases[i].body, &a, &b, &err);
        CHECK_EQ_INT(rc, ERR_PARSE);
        CHECK(b == NULL);
        if (!strstr(err.msg, cases[i].want))
            test_fail_at(__FILE__, __LINE__, "case %zu: \"%.300s\" lacks \"%s\"", i, err.msg,
                         cases[i].want);
    }
    arena_deinit(&a);
}

TEST(prepare_meta_size_and_duplicates)
{
    /* 64 KiB of metadata is the limit: one byte over is refused. */
    size_t cap = 70000;
    char *body = malloc(cap);
    REQUIRE(body != NULL);
    snprintf(body, cap,
             "{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"1\",\"x\",{\"k\":\"%065536d\"}"
             "]]}]}",
             0);
    arena_t a;
    arena_init(&a, 0);
    db_batch_t *b = NULL;
    err_t err;
    CHECK_EQ_INT(prepare_json(body, &a, &b, &err), ERR_PARSE);
    CHECK(strstr(err.msg, "structured metadata too large: '65537' bytes, limit: '65536' bytes") !=
          NULL);
    snprintf(body, cap,
             "{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"1\",\"x\",{\"k\":\"%065534d\"}"
             "]]}]}",
             0);
    REQUIRE_OK(prepare_json(body, &a, &b, &err));
    REQUIRE(b != NULL);
    db_batch_free(b);
    free(body);
    /* Protobuf can carry the same metadata name twice; JSON cannot (duplicate keys). */
    lokipb_pair_t m[] = {{STR("k"), STR("1")}, {STR("k"), STR("2")}};
    lokipb_entry_t e = {1, STR("x"), m, 2};
    lokipb_stream_t s = {STR("{a=\"b\"}"), NULL, 0, &e, 1};
    lokipb_push_t p = {&s, 1, 1};
    b = NULL;
    CHECK_EQ_INT(loki_push_prepare(&p, NOW_NS, &a, &b, &err), ERR_PARSE);
    CHECK(strstr(err.msg, "has duplicate structured metadata name: 'k'") != NULL);
    CHECK(b == NULL);
    arena_deinit(&a);
}

TEST(prepare_one_bad_stream_refuses_all)
{
    arena_t a;
    arena_init(&a, 0);
    db_batch_t *b = NULL;
    err_t err;
    CHECK_EQ_INT(
        prepare_json("{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"1\",\"ok\"]]},"
                     "{\"stream\":{\"a\":\"c\"},\"values\":[[\"2\",\"ok\"],[\"x\",\"bad\"]]}]}",
                     &a, &b, &err),
        1000 + ERR_PARSE);
    CHECK(b == NULL);
    CHECK_EQ_INT(
        prepare_json("{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"1\",\"ok\"]]},"
                     "{\"stream\":{},\"values\":[[\"2\",\"ok\"]]}]}",
                     &a, &b, &err),
        ERR_PARSE);
    CHECK(b == NULL);
    /* Empty pushes are valid and produce no batch. */
    REQUIRE_OK(prepare_json("{\"streams\":[]}", &a, &b, &err));
    CHECK(b == NULL);
    REQUIRE_OK(prepare_json("{\"streams\":[{\"stream\":{\"a\":\"b\"}}]}", &a, &b, &err));
    CHECK(b == NULL);
    arena_deinit(&a);
}

typedef struct got {
    int n;
    char text[4][160];
} got_t;

static bool collect(void *arg, const db_log_entry_t *e)
{
    got_t *g = arg;
    if (g->n >= 4)
        return false;
    buf_t b = BUF_INIT;
    buf_printf(&b, "%lld ", (long long)e->ts_ns);
    labels_format(&b, e->stream);
    buf_printf(&b, " %.*s", STR_FMT(e->line));
    if (e->meta && e->meta->n) {
        buf_putc(&b, ' ');
        labels_format(&b, e->meta);
    }
    snprintf(g->text[g->n++], sizeof g->text[0], "%s", buf_cstr(&b));
    buf_deinit(&b);
    return true;
}

TEST(prepare_commit_read_back)
{
    db_opts_t o;
    db_opts_default(&o);
    o.dir = test_tmpdir();
    db_t *db;
    err_t err = {0};
    REQUIRE_OK(db_open(&o, &db, &err));
    arena_t a;
    arena_init(&a, 0);
    /* Out of order within the stream, labels unsorted and with an empty one, metadata unsorted. */
    lokipb_pair_t m[] = {{STR("user"), STR("u1")}, {STR("trace.id"), STR("abc")}};
    lokipb_entry_t e[] = {
        {3000, STR("third"), NULL, 0}, {1000, STR("first"), m, 2}, {2000, STR("second"), NULL, 0}};
    lokipb_stream_t s = {STR("{zone=\"eu\", job=\"app\", empty=\"\"}"), NULL, 0, e, 3};
    lokipb_push_t p = {&s, 1, 3};
    db_batch_t *b = NULL;
    REQUIRE_OK(loki_push_prepare(&p, NOW_NS, &a, &b, &err));
    REQUIRE(b != NULL);
    CHECK_EQ_U64(db_batch_items(b), 3);
    REQUIRE_OK(db_commit(db, b, NULL, NULL));
    matcher_t *ms;
    size_t nm;
    REQUIRE_OK(matchers_parse(STR("{job=\"app\"}"), &a, &ms, &nm, &err));
    got_t g = {0};
    REQUIRE_OK(db_logs_select(db, ms, nm, 0, INT64_MAX, false, 0, collect, &g, &err));
    REQUIRE(g.n == 3);
    CHECK_EQ_STR(g.text[0],
                 "1000 {job=\"app\", zone=\"eu\"} first {trace_id=\"abc\", user=\"u1\"}");
    CHECK_EQ_STR(g.text[1], "2000 {job=\"app\", zone=\"eu\"} second");
    CHECK_EQ_STR(g.text[2], "3000 {job=\"app\", zone=\"eu\"} third");
    db_close(db);
    arena_deinit(&a);
}
