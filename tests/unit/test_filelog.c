/* test_filelog.c - ingest/filelog: the JSON line mapper (timestamps in every accepted form, field
 * defaults and overrides, nested fields, non-JSON and long lines), the sources: config, the
 * positions file round trip, the follower over a temp dir (partial lines, rotation by rename and
 * create, copytruncate, resuming from saved positions, inode reuse), and the store tap. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "ingest/filelog.h"
#include "store/db.h"
#include "test.h"

#define NOW_NS 1700000000000000000LL

static str_t meta_of(const filelog_entry_t *e, const char *name)
{
    return labels_get(&e->meta, name);
}

static void map(const filelog_map_t *m, const char *line, arena_t *a, filelog_entry_t *e)
{
    filelog_map_line(m, str_cstr(line), NOW_NS, a, e);
}

TEST(map_skillmeat_line_defaults)
{
    arena_t a;
    arena_init(&a, 0);
    label_t lv[] = {{STR("service_name"), STR("skillmeat")}};
    filelog_map_t m = {.labels = {lv, 1}};
    const char *line = "{\"timestamp\":\"2026-01-02T03:04:05.123456789Z\",\"level\":\"INFO\","
                       "\"event\":\"skill.loaded\",\"logger\":\"skillmeat.core\","
                       "\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"span_id\":"
                       "\"00f067aa0ba902b7\",\"skill\":{\"name\":\"pdf\",\"version\":2},"
                       "\"tags\":[\"a\",\"b\"],\"ok\":true,\"cost\":0.25,\"gone\":null}";
    filelog_entry_t e;
    map(&m, line, &a, &e);
    CHECK(e.json);
    CHECK(e.ts_found);
    CHECK_EQ_INT(e.ts_ns, 1767323045123456789LL);
    CHECK_EQ_STRN(e.line, line); /* the original line is kept */
    CHECK_EQ_INT(e.stream.n, 1);
    CHECK_EQ_STRN(labels_get(&e.stream, "service_name"), "skillmeat");
    CHECK_EQ_STRN(meta_of(&e, "level"), "INFO");
    CHECK_EQ_STRN(meta_of(&e, "trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    CHECK_EQ_STRN(meta_of(&e, "span_id"), "00f067aa0ba902b7");
    CHECK_EQ_STRN(meta_of(&e, "logger"), "skillmeat.core");
    CHECK_EQ_STRN(meta_of(&e, "skill_name"), "pdf");
    CHECK_EQ_STRN(meta_of(&e, "skill_version"), "2");
    CHECK_EQ_STRN(meta_of(&e, "tags"), "[\"a\",\"b\"]");
    CHECK_EQ_STRN(meta_of(&e, "ok"), "true");
    CHECK_EQ_STRN(meta_of(&e, "cost"), "0.25");
    CHECK(!meta_of(&e, "gone").ptr);
    CHECK(!meta_of(&e, "timestamp").ptr); /* it is the entry's time */
    CHECK(!meta_of(&e, "event").ptr);     /* the message: the line holds it */
    CHECK(!meta_of(&e, "message").ptr);
    arena_deinit(&a);
}

TEST(map_timestamps_every_form)
{
    arena_t a;
    arena_init(&a, 0);
    filelog_map_t m = {0};
    struct {
        const char *line;
        int64_t want;
    } cases[] = {
        {"{\"time\":\"2026-01-02T03:04:05Z\"}", 1767323045000000000LL},
        {"{\"ts\":\"2026-01-02T05:04:05.5+02:00\"}", 1767323045500000000LL},
        {"{\"@timestamp\":\"2026-01-02 03:04:05,250\"}", 1767323045250000000LL}, /* no zone: UTC */
        {"{\"timestamp\":1767323045}", 1767323045000000000LL},
        {"{\"timestamp\":1767323045.25}", 1767323045250000000LL},
        {"{\"timestamp\":1767323045123}", 1767323045123000000LL},
        {"{\"timestamp\":1767323045123456}", 1767323045123456000LL},
        {"{\"timestamp\":1767323045123456789}", 1767323045123456789LL},
        {"{\"timestamp\":\"1767323045123\"}", 1767323045123000000LL},
        {"{\"t\":\"1767323045.5\"}", 1767323045500000000LL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        filelog_entry_t e;
        map(&m, cases[i].line, &a, &e);
        if (e.ts_ns != cases[i].want)
            test_fail_at(__FILE__, __LINE__, "%s: got %lld want %lld", cases[i].line,
                         (long long)e.ts_ns, (long long)cases[i].want);
        CHECK(e.ts_found);
    }
    /* unreadable or missing: the read time, and a bad value stays as metadata */
    filelog_entry_t e;
    map(&m, "{\"timestamp\":\"yesterday\",\"msg\":\"x\"}", &a, &e);
    CHECK_EQ_INT(e.ts_ns, NOW_NS);
    CHECK(!e.ts_found);
    CHECK_EQ_STRN(meta_of(&e, "timestamp"), "yesterday");
    map(&m, "{\"msg\":\"x\"}", &a, &e);
    CHECK_EQ_INT(e.ts_ns, NOW_NS);
    map(&m, "{\"timestamp\":-5}", &a, &e);
    CHECK_EQ_INT(e.ts_ns, NOW_NS);
    map(&m, "{\"timestamp\":true}", &a, &e);
    CHECK_EQ_INT(e.ts_ns, NOW_NS);
    int64_t ns;
    CHECK(!filelog_parse_time(STR("12:00"), false, &ns));
    CHECK(!filelog_parse_time(STR(""), false, &ns));
    CHECK(!filelog_parse_time(STR("99999999999999999999999"), true, &ns));
    arena_deinit(&a);
}

TEST(map_configured_fields_and_line_message)
{
    arena_t a;
    arena_init(&a, 0);
    filelog_map_t m = {0};
    m.fields[FILELOG_F_TIMESTAMP] = "when";
    m.fields[FILELOG_F_LEVEL] = "log.severity"; /* dotted path into a nested object */
    m.fields[FILELOG_F_MESSAGE] = "text";
    m.fields[FILELOG_F_TRACE_ID] = "tid";
    m.line_message = true;
    const char *lff[] = {"level"};
    m.labels_from_fields = lff;
    m.n_labels_from_fields = 1;
    filelog_entry_t e;
    map(&m,
        "{\"when\":1767323045000,\"log\":{\"severity\":\"warn\",\"x\":1},\"text\":\"disk full\","
        "\"tid\":\"abc\",\"timestamp\":\"not me\",\"message\":\"other\"}",
        &a, &e);
    CHECK_EQ_INT(e.ts_ns, 1767323045000000000LL);
    CHECK_EQ_STRN(e.line, "disk full");
    CHECK_EQ_STRN(labels_get(&e.stream, "level"), "warn"); /* promoted */
    CHECK(!meta_of(&e, "level").ptr);
    CHECK_EQ_STRN(meta_of(&e, "trace_id"), "abc");
    CHECK_EQ_STRN(meta_of(&e, "log_x"), "1");
    CHECK_EQ_STRN(meta_of(&e, "timestamp"), "not me"); /* not the configured field */
    CHECK_EQ_STRN(meta_of(&e, "message"), "other");
    arena_deinit(&a);
}

TEST(map_non_json_and_odd_lines)
{
    arena_t a;
    arena_init(&a, 0);
    label_t lv[] = {{STR("job"), STR("x")}};
    filelog_map_t m = {.labels = {lv, 1}};
    const char *bad[] = {"plain text",           "",      "{",
                         "{\"a\":1} trailing",   "[1,2]", "\"str\"",
                         "{\"a\":\"\xff\xfe\"}", "   "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        filelog_entry_t e;
        map(&m, bad[i], &a, &e);
        CHECK(!e.json);
        CHECK_EQ_STRN(e.line, bad[i]);
        CHECK_EQ_INT(e.ts_ns, NOW_NS);
        CHECK_EQ_INT(e.meta.n, 0);
        CHECK_EQ_INT(e.stream.n, 1);
    }
    /* names sanitised as Loki does; duplicates after sanitising keep the first */
    filelog_entry_t e;
    map(&m, "{\"a.b\":\"1\",\"a_b\":\"2\",\"9x\":\"3\",\"k-y\":\"4\"}", &a, &e);
    CHECK_EQ_STRN(meta_of(&e, "a_b"), "1");
    CHECK_EQ_STRN(meta_of(&e, "_9x"), "3");
    CHECK_EQ_STRN(meta_of(&e, "k_y"), "4");
    /* deep nesting stops flattening at FILELOG_MAX_DEPTH and keeps JSON text */
    char deep[512];
    size_t o = 0;
    for (int i = 0; i < 20; i++)
        o += (size_t)snprintf(deep + o, sizeof deep - o, "{\"k\":");
    o += (size_t)snprintf(deep + o, sizeof deep - o, "1");
    for (int i = 0; i < 20; i++)
        deep[o++] = '}';
    deep[o] = 0;
    map(&m, deep, &a, &e);
    CHECK(e.json);
    CHECK_EQ_INT(e.meta.n, 1);
    CHECK(e.meta.n == 1 && e.meta.v[0].value.ptr[0] == '{');
    /* format: raw stores everything as is */
    m.raw = true;
    map(&m, "{\"level\":\"info\"}", &a, &e);
    CHECK(!e.json);
    CHECK_EQ_INT(e.meta.n, 0);
    arena_deinit(&a);
}

/* ---- config ---- */

static int parse_cfg(const char *text, arena_t *a, filelog_source_t **out, size_t *n, err_t *err)
{
    yaml_parser_t p;
    yaml_document_t doc;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, strlen(text));
    int ok = yaml_parser_load(&p, &doc);
    yaml_parser_delete(&p);
    if (!ok)
        return -100;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    yaml_node_t *src = NULL;
    for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top;
         pr++)
        src = yaml_document_get_node(&doc, pr->value);
    int rc = filelog_config_parse(&doc, src, "cfg.yaml", a, out, n, err);
    yaml_document_delete(&doc);
    return rc;
}

TEST(config_sources)
{
    arena_t a;
    arena_init(&a, 0);
    filelog_source_t *s;
    size_t n;
    err_t err;
    REQUIRE_OK(parse_cfg("sources:\n"
                         "  - path: /var/log/app/*.jsonl\n"
                         "    labels: {service_name: skillmeat, env: dev}\n"
                         "    format: json\n"
                         "    line: message\n"
                         "    fields: {timestamp: ts, level: severity}\n"
                         "    labels_from_fields: [level]\n"
                         "  - path: /tmp/x.log\n",
                         &a, &s, &n, &err));
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_STR(s[0].path, "/var/log/app/*.jsonl");
    CHECK_EQ_INT(s[0].map.labels.n, 2);
    CHECK(s[0].map.line_message);
    CHECK_EQ_STR(s[0].map.fields[FILELOG_F_TIMESTAMP], "ts");
    CHECK_EQ_STR(s[0].map.fields[FILELOG_F_LEVEL], "severity");
    CHECK(!s[0].map.fields[FILELOG_F_MESSAGE]);
    CHECK_EQ_INT(s[0].map.n_labels_from_fields, 1);
    CHECK_EQ_INT(s[1].map.labels.n, 0);

    struct {
        const char *yaml, *want;
    } bad[] = {
        {"sources:\n  - labels: {a: b}\n", "cfg.yaml:2: sources[0]: path is required"},
        {"sources:\n  - path: /x/[ab.log\n", "unclosed '['"},
        {"sources:\n  - path: /x/**/a.log\n", "\"**\" is not supported"},
        {"sources:\n  - path: ''\n", "sources[0].path: must be a non-empty glob"},
        {"sources:\n  - path: /a\n    labels: {9bad: x}\n", "invalid label name \"9bad\""},
        {"sources:\n  - path: /a\n    format: xml\n", "must be json or raw"},
        {"sources:\n  - path: /a\n    fields: {when: x}\n", "unknown field \"when\""},
        {"sources:\n  - path: /a\n    pth: /b\n", "unknown key \"pth\""},
        {"sources: /var/log\n", "must be a list"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err_clear(&err);
        int rc = parse_cfg(bad[i].yaml, &a, &s, &n, &err);
        CHECK_EQ_INT(rc, ERR_INVAL);
        if (!strstr(err.msg, bad[i].want))
            test_fail_at(__FILE__, __LINE__, "%s: message \"%s\" lacks \"%s\"", bad[i].yaml,
                         err.msg, bad[i].want);
    }
    arena_deinit(&a);
}

/* ---- positions ---- */

TEST(positions_round_trip)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/positions.json", test_tmpdir());
    filelog_positions_t p = {0}, q;
    err_t err;
    REQUIRE_OK(filelog_positions_load(path, &q, &err)); /* missing file: empty */
    CHECK_EQ_INT(q.n, 0);
    filelog_pos_t a = {.path = "/var/log/a \"quoted\".jsonl",
                       .dev = 2049,
                       .ino = 1ULL << 40,
                       .offset = 123456789012ULL,
                       .fp = 0xdeadbeef,
                       .fp_len = 256};
    filelog_pos_t b = {.path = "/b", .dev = 1, .ino = 2, .offset = 0};
    filelog_positions_set(&p, &a);
    filelog_positions_set(&p, &b);
    b.offset = 77; /* replaces */
    filelog_positions_set(&p, &b);
    REQUIRE_OK(filelog_positions_save(path, &p, &err));
    REQUIRE_OK(filelog_positions_load(path, &q, &err));
    CHECK_EQ_INT(q.n, 2);
    const filelog_pos_t *x = filelog_positions_find(&q, 2049, 1ULL << 40);
    REQUIRE(x != NULL);
    CHECK_EQ_STR(x->path, a.path);
    CHECK_EQ_U64(x->offset, 123456789012ULL);
    CHECK_EQ_U64(x->fp, 0xdeadbeef);
    CHECK_EQ_U64(x->fp_len, 256);
    x = filelog_positions_find(&q, 1, 2);
    REQUIRE(x != NULL);
    CHECK_EQ_U64(x->offset, 77);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(access(tmp, F_OK) != 0); /* renamed into place */
    filelog_positions_free(&q);
    filelog_positions_free(&p);
    /* corrupt file: an error naming it, not an empty set */
    FILE *f = fopen(path, "w");
    fputs("{\"files\":[{\"path\":1}]}", f);
    fclose(f);
    CHECK_EQ_INT(filelog_positions_load(path, &q, &err), ERR_PARSE);
    CHECK(strstr(err.msg, "positions.json") != NULL);
    f = fopen(path, "w");
    fputs("{\"files\":[", f);
    fclose(f);
    CHECK_EQ_INT(filelog_positions_load(path, &q, &err), ERR_PARSE);
}

/* ---- follower ---- */

typedef struct got {
    char lines[64][512];
    uint64_t end[64];
    filelog_file_t *file[64];
    int n;
    int stop_after; /* 0 = never */
} got_t;

static bool collect(void *arg, filelog_file_t *f, str_t line, uint64_t end_off)
{
    got_t *g = arg;
    if (g->n < 64) {
        snprintf(g->lines[g->n], sizeof g->lines[0], "%.*s", STR_FMT(line));
        g->end[g->n] = end_off;
        g->file[g->n] = f;
    }
    g->n++;
    return !(g->stop_after && g->n >= g->stop_after);
}

static void append(const char *path, const char *text)
{
    FILE *f = fopen(path, "a");
    fputs(text, f);
    fclose(f);
}

static void poll_all(filelog_follow_t *fw, got_t *g)
{
    while (filelog_follow_poll(fw, 0, collect, g))
        ;
}

TEST(follow_lines_partial_and_crlf)
{
    char dir[4096], path[4200], pat[4200];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    snprintf(path, sizeof path, "%s/a.jsonl", dir);
    snprintf(pat, sizeof pat, "%s/*.jsonl", dir);
    append(path, "one\ntwo\r\nthr");
    filelog_follow_t *fw = filelog_follow_new(pat, NULL, false);
    got_t g = {0};
    poll_all(fw, &g);
    CHECK_EQ_INT(g.n, 2);
    CHECK_EQ_STR(g.lines[0], "one");
    CHECK_EQ_STR(g.lines[1], "two");
    CHECK_EQ_U64(g.end[1], 9);
    append(path, "ee\n");
    poll_all(fw, &g);
    CHECK_EQ_INT(g.n, 3);
    CHECK_EQ_STR(g.lines[2], "three");
    CHECK_EQ_U64(g.end[2], 15);
    /* a file created later is read from its start */
    char p2[4200];
    snprintf(p2, sizeof p2, "%s/b.jsonl", dir);
    append(p2, "bee\n");
    poll_all(fw, &g);
    CHECK_EQ_INT(g.n, 4);
    CHECK_EQ_STR(g.lines[3], "bee");
    /* stopping early keeps the rest for the next poll */
    append(path, "x1\nx2\nx3\n");
    g.stop_after = 5;
    filelog_follow_poll(fw, 0, collect, &g);
    CHECK_EQ_INT(g.n, 5);
    g.stop_after = 0;
    poll_all(fw, &g);
    CHECK_EQ_INT(g.n, 7);
    CHECK_EQ_STR(g.lines[6], "x3");
    filelog_follow_free(fw);
}

TEST(follow_long_lines_truncated)
{
    char path[4200], pat[4200];
    snprintf(path, sizeof path, "%s/long.log", test_tmpdir());
    snprintf(pat, sizeof pat, "%s/*.log", test_tmpdir());
    size_t big = FILELOG_MAX_LINE_BYTES * 2 + 1000;
    char *s = malloc(big + 16);
    memset(s, 'x', big);
    memcpy(s + big, "\nok\n", 5);
    FILE *f = fopen(path, "w");
    fwrite(s, 1, big + 4, f);
    fclose(f);
    filelog_follow_t *fw = filelog_follow_new(pat, NULL, false);
    got_t g = {0};
    poll_all(fw, &g);
    CHECK_EQ_INT(g.n, 2);
    CHECK_EQ_INT(strlen(g.lines[0]), 511); /* clipped by the test buffer; see end offset */
    CHECK_EQ_U64(g.end[0], big + 1);
    CHECK_EQ_STR(g.lines[1], "ok");
    filelog_follow_stats_t st;
    filelog_follow_get_stats(fw, &st);
    CHECK_EQ_U64(st.truncated_lines, 1);
    filelog_follow_free(fw);
    free(s);
}

TEST(follow_rotation_rename_create_and_copytruncate)
{
    char dir[4096], path[4200], old[4200], pat[4200];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    snprintf(path, sizeof path, "%s/app.jsonl", dir);
    snprintf(old, sizeof old, "%s/app.jsonl.1", dir);
    snprintf(pat, sizeof pat, "%s/app.jsonl", dir);
    append(path, "a1\na2\n");
    filelog_follow_t *fw = filelog_follow_new(pat, NULL, false);
    got_t g = {0};
    poll_all(fw, &g);
    CHECK_EQ_INT(g.n, 2);
    /* the writer adds a line, rotation renames, the writer still appends to the old inode, and a
     * new file appears */
    append(path, "a3\n");
    REQUIRE(rename(path, old) == 0);
    append(old, "a4-after-rename\n");
    append(path, "b1\n");
    poll_all(fw, &g);
    CHECK_EQ_INT(g.n, 5);
    CHECK_EQ_STR(g.lines[2], "a3");
    CHECK_EQ_STR(g.lines[3], "a4-after-rename");
    CHECK_EQ_STR(g.lines[4], "b1");
    CHECK(g.file[4] != g.file[2]);
    CHECK_EQ_STR(filelog_file_path(g.file[2]), path); /* the stream keeps its name */
    filelog_follow_stats_t st;
    filelog_follow_get_stats(fw, &st);
    CHECK_EQ_U64(st.rotations, 1);
    CHECK_EQ_U64(st.files_open, 2);
    /* the old file is closed once it has been idle at its end for a while */
    usleep(1100 * 1000);
    poll_all(fw, &g);
    filelog_follow_get_stats(fw, &st);
    CHECK_EQ_U64(st.files_open, 1);

    /* copytruncate: copy, truncate in place, continue writing */
    append(path, "b2\n");
    poll_all(fw, &g);
    CHECK_EQ_INT(g.n, 6);
    REQUIRE(truncate(path, 0) == 0);
    append(path, "c1\n");
    poll_all(fw, &g);
    CHECK_EQ_INT(g.n, 7);
    CHECK_EQ_STR(g.lines[6], "c1");
    CHECK_EQ_U64(g.end[6], 3);
    filelog_follow_get_stats(fw, &st);
    CHECK_EQ_U64(st.truncations, 1);
    /* a partial line of a rotated-away file is flushed when the file is done */
    append(path, "tail-no-newline");
    REQUIRE(unlink(path) == 0);
    poll_all(fw, &g); /* sees it gone, reads the partial line and holds it */
    CHECK_EQ_INT(g.n, 7);
    usleep(1100 * 1000);
    poll_all(fw, &g);
    CHECK_EQ_INT(g.n, 8);
    CHECK_EQ_STR(g.lines[7], "tail-no-newline");
    filelog_follow_free(fw);
}

TEST(follow_resume_from_positions)
{
    char dir[4096], path[4200], pat[4200];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    snprintf(path, sizeof path, "%s/r.log", dir);
    snprintf(pat, sizeof pat, "%s/*.log", dir);
    append(path, "l1\nl2\nl3\n");
    filelog_follow_t *fw = filelog_follow_new(pat, NULL, false);
    got_t g = {0};
    poll_all(fw, &g);
    REQUIRE(g.n == 3);
    /* only the first two lines were acknowledged */
    filelog_file_ack(g.file[1], filelog_file_gen(g.file[1]), g.end[1]);
    filelog_file_ack(g.file[0], filelog_file_gen(g.file[0]), g.end[0]);     /* never goes back */
    filelog_file_ack(g.file[2], filelog_file_gen(g.file[2]) + 1, g.end[2]); /* stale gen */
    filelog_positions_t p = {0};
    filelog_follow_positions(fw, &p);
    REQUIRE(p.n == 1);
    CHECK_EQ_U64(p.v[0].offset, 6);
    filelog_follow_free(fw);

    /* a restart resumes after l2 */
    fw = filelog_follow_new(pat, &p, false);
    got_t h = {0};
    poll_all(fw, &h);
    CHECK_EQ_INT(h.n, 1);
    CHECK_EQ_STR(h.lines[0], "l3");
    filelog_follow_free(fw);

    /* the same inode with different first bytes (rewritten / reused) starts over */
    FILE *f = fopen(path, "r+");
    fputs("X", f);
    fclose(f);
    fw = filelog_follow_new(pat, &p, false);
    got_t k = {0};
    poll_all(fw, &k);
    CHECK_EQ_INT(k.n, 3);
    CHECK_EQ_STR(k.lines[0], "X1");
    filelog_follow_free(fw);

    /* from_end: a first scan without a position starts at the end */
    fw = filelog_follow_new(pat, NULL, true);
    got_t m = {0};
    poll_all(fw, &m);
    CHECK_EQ_INT(m.n, 0);
    append(path, "l4\n");
    poll_all(fw, &m);
    CHECK_EQ_INT(m.n, 1);
    CHECK_EQ_STR(m.lines[0], "l4");
    filelog_follow_free(fw);
    filelog_positions_free(&p);
}

/* ---- the store tap ---- */

typedef struct tapped {
    size_t batches, logs, samples;
    double last_v;
    char line[64];
} tapped_t;

static void on_tap(void *arg, const db_batch_t *b, const db_commit_result_t *res)
{
    tapped_t *t = arg;
    (void)res;
    t->batches++;
    t->logs += db_batch_n_logs(b);
    t->samples += db_batch_n_samples(b);
    if (db_batch_n_logs(b)) {
        db_log_entry_t e;
        db_batch_log_at(b, 0, &e);
        snprintf(t->line, sizeof t->line, "%.*s", STR_FMT(e.line));
    }
    if (db_batch_n_samples(b)) {
        const labels_t *ls;
        int64_t ts;
        db_batch_sample_at(b, db_batch_n_samples(b) - 1, &ls, &ts, &t->last_v);
    }
}

static void wait_commits(db_t *db)
{
    for (int i = 0; i < 200; i++) {
        db_poll(db);
        usleep(5000);
    }
}

TEST(db_tap_sees_durable_batches)
{
    db_opts_t o;
    db_opts_default(&o);
    o.dir = test_tmpdir();
    db_t *db;
    err_t err;
    REQUIRE_OK(db_open(&o, &db, &err));
    tapped_t t = {0};
    label_t sl[] = {{STR("job"), STR("x")}};
    labels_t stream = {sl, 1};
    label_t ml[] = {{STR("__name__"), STR("c_total")}, {STR("job"), STR("x")}};
    labels_t series = {ml, 2};
    int64_t now = clock_now_ms();

    db_batch_t *b = db_batch_new(); /* before any tap: not shown */
    db_batch_add_log(b, &stream, now * 1000000, STR("before"), NULL);
    REQUIRE_OK(db_commit(db, b, NULL, NULL));
    wait_commits(db);
    REQUIRE_OK(db_tap_add(db, on_tap, &t));
    b = db_batch_new();
    db_batch_add_log(b, &stream, now * 1000000 + 1, STR("after"), NULL);
    db_batch_add_delta(b, &series, 0, now, 2);
    REQUIRE_OK(db_commit(db, b, NULL, NULL));
    b = db_batch_new();
    db_batch_add_delta(b, &series, 0, now + 1, 3);
    REQUIRE_OK(db_commit(db, b, NULL, NULL));
    wait_commits(db);
    CHECK_EQ_INT(t.batches, 2);
    CHECK_EQ_INT(t.logs, 1);
    CHECK_EQ_STR(t.line, "after");
    CHECK_EQ_INT(t.samples, 2);
    CHECK_EQ_DBL(t.last_v, 5); /* the cumulative value stored, not the delta */
    db_tap_remove(db, on_tap, &t);
    b = db_batch_new();
    db_batch_add_log(b, &stream, now * 1000000 + 2, STR("gone"), NULL);
    REQUIRE_OK(db_commit(db, b, NULL, NULL));
    wait_commits(db);
    CHECK_EQ_INT(t.batches, 2);
    /* a tap left registered at close sees the last batches and nothing leaks */
    REQUIRE_OK(db_tap_add(db, on_tap, &t));
    b = db_batch_new();
    db_batch_add_log(b, &stream, now * 1000000 + 3, STR("last"), NULL);
    REQUIRE_OK(db_commit(db, b, NULL, NULL));
    db_close(db);
    CHECK_EQ_INT(t.batches, 3);
}
