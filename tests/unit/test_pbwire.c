/* test_pbwire.c - proto/pbwire: field reader (every wire type, groups, errors with offsets),
 * packed helpers, UTF-8 validation, and the writer's back-patched lengths. */
#include "base/buf.h"
#include "base/varint.h"
#include "proto/pbwire.h"
#include "test.h"

static int read_all(const uint8_t *p, size_t n, pb_field_t *out, int max, err_t *err)
{
    pb_reader_t r;
    pb_reader_init(&r, p, p, n);
    int k = 0, rc;
    pb_field_t f;
    while ((rc = pb_next(&r, &f, err)) > 0) {
        if (k < max)
            out[k] = f;
        k++;
    }
    return rc < 0 ? rc : k;
}

TEST(reads_every_wire_type)
{
    buf_t b;
    buf_init(&b, 0);
    pb_put_varint(&b, 1, 150);
    pb_put_fixed64(&b, 2, 0x0102030405060708ULL);
    pb_put_str(&b, 3, STR("hello"));
    pb_put_fixed32(&b, 4, 0xdeadbeef);
    pb_put_varint(&b, 536870911, UINT64_MAX);
    pb_put_double(&b, 6, -2.5);
    pb_field_t f[8];
    err_t err = {0};
    REQUIRE(read_all(b.pos, buf_len(&b), f, 8, &err) == 6);
    CHECK_EQ_INT(f[0].num, 1);
    CHECK_EQ_INT(f[0].wire, PB_VARINT);
    CHECK_EQ_U64(f[0].u, 150);
    CHECK_EQ_INT(f[0].off, 0);
    CHECK_EQ_INT(f[1].wire, PB_I64);
    CHECK_EQ_U64(f[1].u, 0x0102030405060708ULL);
    CHECK_EQ_INT(f[2].wire, PB_LEN);
    CHECK_EQ_STRN(((str_t){(const char *)f[2].ptr, f[2].len}), "hello");
    CHECK_EQ_INT(f[3].wire, PB_I32);
    CHECK_EQ_U64(f[3].u, 0xdeadbeef);
    CHECK_EQ_U64(f[4].num, 536870911);
    CHECK_EQ_U64(f[4].u, UINT64_MAX);
    CHECK_EQ_DBL(pb_double(f[5].u), -2.5);
    buf_deinit(&b);
}

TEST(canonical_bytes)
{
    /* the examples from the protobuf encoding guide */
    buf_t b;
    buf_init(&b, 0);
    pb_put_varint(&b, 1, 150);
    CHECK(buf_len(&b) == 3 && memcmp(b.pos, "\x08\x96\x01", 3) == 0);
    buf_clear(&b);
    pb_put_str(&b, 2, STR("testing"));
    CHECK(buf_len(&b) == 9 && memcmp(b.pos, "\x12\x07testing", 9) == 0);
    buf_clear(&b);
    pb_put_sint32(&b, 1, -2);
    CHECK(buf_len(&b) == 2 && memcmp(b.pos, "\x08\x03", 2) == 0);
    buf_clear(&b);
    pb_put_int32(&b, 1, -1); /* sign-extended to 10 bytes */
    CHECK_EQ_INT(buf_len(&b), 11);
    buf_clear(&b);
    pb_put_packed_varint(&b, 4, (const uint64_t[]){3, 270, 86942}, 3);
    CHECK(buf_len(&b) == 8 && memcmp(b.pos, "\x22\x06\x03\x8e\x02\x9e\xa7\x05", 8) == 0);
    buf_deinit(&b);
}

TEST(zigzag_sint32)
{
    CHECK_EQ_INT(pb_sint32(0), 0);
    CHECK_EQ_INT(pb_sint32(1), -1);
    CHECK_EQ_INT(pb_sint32(2), 1);
    CHECK_EQ_INT(pb_sint32(4294967294u), 2147483647);
    CHECK_EQ_INT(pb_sint32(4294967295u), -2147483647 - 1);
    buf_t b;
    buf_init(&b, 0);
    int32_t vals[] = {0, -1, 1, -5, 2147483647, -2147483647 - 1};
    for (size_t i = 0; i < 6; i++)
        pb_put_sint32(&b, 1, vals[i]);
    pb_field_t f[6];
    REQUIRE(read_all(b.pos, buf_len(&b), f, 6, NULL) == 6);
    for (size_t i = 0; i < 6; i++)
        CHECK_EQ_INT(pb_sint32(f[i].u), vals[i]);
    buf_deinit(&b);
}

TEST(nested_back_patch_long_lengths)
{
    /* content of 0, 127, 128, 300 and 20000 bytes: the length varint grows and content slides */
    size_t sizes[] = {0, 127, 128, 300, 20000};
    for (size_t s = 0; s < 5; s++) {
        buf_t b;
        buf_init(&b, 0);
        pb_put_varint(&b, 1, 7);
        size_t outer = pb_begin(&b, 2);
        size_t inner = pb_begin(&b, 3);
        for (size_t i = 0; i < sizes[s]; i++)
            buf_putc(&b, (char)('a' + i % 26));
        pb_end(&b, inner);
        pb_put_varint(&b, 4, 9);
        pb_end(&b, outer);
        pb_field_t f[4];
        REQUIRE(read_all(b.pos, buf_len(&b), f, 4, NULL) == 2);
        CHECK_EQ_INT(f[1].num, 2);
        pb_field_t g[4];
        REQUIRE(read_all(f[1].ptr, f[1].len, g, 4, NULL) == 2);
        CHECK_EQ_INT(g[0].len, sizes[s]);
        CHECK(sizes[s] == 0 ||
              (g[0].ptr[0] == 'a' && g[0].ptr[sizes[s] - 1] == 'a' + (sizes[s] - 1) % 26));
        CHECK_EQ_U64(g[1].u, 9);
        CHECK_EQ_INT(f[1].len, 1 + uvarint_len(sizes[s]) + sizes[s] + 2);
        buf_deinit(&b);
    }
}

TEST(back_patch_survives_buffer_slide)
{
    /* pos > start: marks are offsets from pos, so sliding/growing keeps them valid */
    buf_t b;
    buf_init(&b, 16);
    buf_append(&b, "xxxxxxxx", 8);
    b.pos += 8;
    size_t m = pb_begin(&b, 1);
    for (int i = 0; i < 1000; i++)
        buf_putc(&b, 'z');
    pb_end(&b, m);
    pb_field_t f;
    REQUIRE(read_all(b.pos, buf_len(&b), &f, 1, NULL) == 1);
    CHECK_EQ_INT(f.len, 1000);
    buf_deinit(&b);
}

TEST(packed_helpers)
{
    buf_t b;
    buf_init(&b, 0);
    uint64_t u[] = {1, 0, UINT64_MAX};
    double d[] = {0.5, -1, 1e300};
    pb_put_packed_fixed64(&b, 6, u, 3);
    pb_put_packed_double(&b, 7, d, 3);
    pb_put_packed_varint(&b, 2, u, 3);
    pb_put_packed_varint(&b, 9, u, 0); /* nothing */
    pb_field_t f[4];
    REQUIRE(read_all(b.pos, buf_len(&b), f, 4, NULL) == 3);
    CHECK_EQ_INT(f[0].len, 24);
    CHECK_EQ_U64(load_u64le(f[0].ptr + 16), UINT64_MAX);
    CHECK_EQ_DBL(pb_double(load_u64le(f[1].ptr + 16)), 1e300);
    CHECK_EQ_INT(pb_packed_varint_count(f[2].ptr, f[2].len), 3);
    CHECK_EQ_INT(pb_packed_varint_count((const uint8_t *)"\x80", 1), -1);
    CHECK_EQ_INT(pb_packed_varint_count((const uint8_t *)"", 0), 0);
    CHECK_EQ_INT(
        pb_packed_varint_count((const uint8_t *)"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 10),
        -1);
    CHECK_EQ_INT(
        pb_packed_varint_count((const uint8_t *)"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10), 1);
    buf_deinit(&b);
}

static void expect_error(const char *bytes, size_t n, const char *want_substr)
{
    err_t err = {0};
    pb_field_t f[8];
    int rc = read_all((const uint8_t *)bytes, n, f, 8, &err);
    CHECK_EQ_INT(rc, ERR_PARSE);
    if (!strstr(err.msg, want_substr))
        test_fail_at(__FILE__, __LINE__, "error \"%s\" does not contain \"%s\"", err.msg,
                     want_substr);
}

TEST(errors_name_what_and_where)
{
    expect_error("\x08", 1, "truncated or overlong varint in field 1 at byte 1");
    expect_error("\x08\x01\x12\x05"
                 "abc",
                 7, "truncated length-delimited field 2 at byte 4");
    expect_error("\x09\x01\x02", 3, "truncated fixed64 field 1 at byte 1");
    expect_error("\x0d\x01\x02", 3, "truncated fixed32 field 1 at byte 1");
    expect_error("\x00\x01", 2, "invalid field number 0 at byte 0");
    expect_error("\x0e", 1, "invalid wire type 6");
    expect_error("\x0f", 1, "invalid wire type 7");
    expect_error("\x08\x01\x0c", 3, "unexpected end-group field 1 at byte 2");
    expect_error("\x0b\x08\x01", 3, "unterminated group 1");
    expect_error("\x0b\x14", 2, "end-group 2 at byte 1 does not match group 1");
    expect_error("\x80", 1, "truncated or overlong field tag at byte 0");
    expect_error("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 11, "overlong varint");
    expect_error("\x12\xff\xff\xff\xff\x0f", 6, "need 4294967295 bytes, 0 left");
    /* field number 2^29 */
    expect_error("\x80\x80\x80\x80\x10", 5, "invalid field number 536870912");
}

TEST(groups_are_skipped_as_a_unit)
{
    /* field 1 varint, group 2 { field 3 varint, group 4 {} }, field 5 varint */
    const char in[] = "\x08\x01\x13\x18\x07\x23\x24\x14\x28\x02";
    pb_field_t f[4];
    err_t err = {0};
    REQUIRE(read_all((const uint8_t *)in, sizeof in - 1, f, 4, &err) == 3);
    CHECK_EQ_INT(f[1].wire, PB_SGROUP);
    CHECK_EQ_INT(f[1].num, 2);
    CHECK_EQ_INT(f[1].len, 4);
    CHECK_EQ_U64(f[2].u, 2);
    /* nesting bomb */
    char deep[200];
    for (int i = 0; i < 100; i++)
        deep[i] = 0x0b;
    for (int i = 0; i < 100; i++)
        deep[100 + i] = 0x0c;
    CHECK_EQ_INT(read_all((const uint8_t *)deep, sizeof deep, f, 4, &err), ERR_PARSE);
    CHECK(strstr(err.msg, "groups nested deeper than 64") != NULL);
    CHECK_EQ_INT(read_all((const uint8_t *)deep + 40, 120, f, 4, &err), 1);
}

TEST(offsets_are_relative_to_base)
{
    const uint8_t in[] = {0x08, 0x01, 0x12, 0x03, 0x08, 0x01, 0x10};
    pb_reader_t r;
    pb_field_t f;
    err_t err = {0};
    pb_reader_init(&r, in, in + 4, 3);
    CHECK_EQ_INT(pb_next(&r, &f, &err), 1);
    CHECK_EQ_INT(f.off, 4);
    CHECK_EQ_INT(pb_next(&r, &f, &err), ERR_PARSE);
    CHECK(strstr(err.msg, "at byte 7") != NULL);
}

TEST(utf8_validation)
{
    CHECK(pb_utf8_valid((const uint8_t *)"", 0));
    CHECK(pb_utf8_valid((const uint8_t *)"plain ascii text, longer than eight", 35));
    CHECK(pb_utf8_valid((const uint8_t *)"\xc3\xbc\xe2\x82\xac\xf0\x9f\x98\x80", 9));
    CHECK(!pb_utf8_valid((const uint8_t *)"abcdefgh\xff", 9));
    CHECK(!pb_utf8_valid((const uint8_t *)"\xc0\xaf", 2));         /* overlong */
    CHECK(!pb_utf8_valid((const uint8_t *)"\xe0\x80\xaf", 3));     /* overlong */
    CHECK(!pb_utf8_valid((const uint8_t *)"\xed\xa0\x80", 3));     /* surrogate */
    CHECK(!pb_utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    CHECK(!pb_utf8_valid((const uint8_t *)"\xe2\x82", 2));         /* truncated */
    CHECK(!pb_utf8_valid((const uint8_t *)"\x80", 1));
    CHECK(pb_utf8_valid((const uint8_t *)"a\0b", 3));
}
