/* test_selfmon.c - base/selfmon: registry semantics, exposition format, thread safety. */
#include <pthread.h>
#include <stdlib.h>

#include "base/buf.h"
#include "base/selfmon.h"
#include "test.h"

/* The text of out between the line starting with from (inclusive) and the next "# HELP". */
static char *family_text(buf_t *out, const char *from)
{
    const char *all = buf_cstr(out);
    const char *p = strstr(all, from);
    if (!p)
        return strdup("");
    const char *end = strstr(p + 1, "# HELP ");
    size_t n = end ? (size_t)(end - p) : strlen(p);
    char *s = malloc(n + 1);
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

TEST(counter_register_returns_existing)
{
    selfmon_counter_t *a = selfmon_counter("test_sm_reg_total", "Help.", "k=\"a\"");
    selfmon_counter_t *b = selfmon_counter("test_sm_reg_total", "Help.", "k=\"a\"");
    selfmon_counter_t *c = selfmon_counter("test_sm_reg_total", "Help.", "k=\"b\"");
    CHECK(a == b);
    CHECK(a != c);
    selfmon_counter_add(a, 2);
    selfmon_counter_add(b, 0.5);
    CHECK_EQ_DBL(selfmon_counter_get(a), 2.5);
    CHECK_EQ_DBL(selfmon_counter_get(c), 0);
}

TEST(exposition_groups_families)
{
    selfmon_counter_t *x = selfmon_counter("test_sm_items_total", "Items seen.",
                                           "signal=\"spans\",outcome=\"accepted\"");
    selfmon_counter_t *y = selfmon_counter("test_sm_other_total", "Other.", NULL);
    selfmon_counter_t *z = selfmon_counter("test_sm_items_total", "Items seen.",
                                           "signal=\"spans\",outcome=\"refused\"");
    selfmon_counter_add(x, 3);
    selfmon_counter_add(y, 1);
    selfmon_counter_add(z, 1e21);
    buf_t out = BUF_INIT;
    selfmon_write(&out);
    char *fam = family_text(&out, "# HELP test_sm_items_total");
    CHECK_EQ_STR(fam, "# HELP test_sm_items_total Items seen.\n"
                      "# TYPE test_sm_items_total counter\n"
                      "test_sm_items_total{signal=\"spans\",outcome=\"accepted\"} 3\n"
                      "test_sm_items_total{signal=\"spans\",outcome=\"refused\"} 1e+21\n");
    free(fam);
    fam = family_text(&out, "# HELP test_sm_other_total");
    CHECK_EQ_STR(fam, "# HELP test_sm_other_total Other.\n"
                      "# TYPE test_sm_other_total counter\n"
                      "test_sm_other_total 1\n");
    free(fam);
    /* Each family's HELP appears exactly once. */
    const char *all = buf_cstr(&out);
    const char *first = strstr(all, "# HELP test_sm_items_total");
    CHECK(first && !strstr(first + 1, "# HELP test_sm_items_total"));
    buf_deinit(&out);
}

TEST(histogram_exposition)
{
    static const double bounds[] = {0.1, 1, 10};
    selfmon_histogram_t *h =
        selfmon_histogram("test_sm_latency_seconds", "Latency.", "route=\"/x\"", bounds, 3);
    selfmon_histogram_observe(h, 0.05);
    selfmon_histogram_observe(h, 0.1); /* le is inclusive */
    selfmon_histogram_observe(h, 5);
    selfmon_histogram_observe(h, 100);
    CHECK_EQ_U64(selfmon_histogram_count(h), 4);
    CHECK_EQ_DBL(selfmon_histogram_sum(h), 105.15);
    static const double none[] = {1};
    selfmon_histogram_observe(
        selfmon_histogram("test_sm_plain", "Plain\\help\nline.", NULL, none, 1), 2);
    buf_t out = BUF_INIT;
    selfmon_write(&out);
    char *fam = family_text(&out, "# HELP test_sm_latency_seconds");
    CHECK_EQ_STR(fam, "# HELP test_sm_latency_seconds Latency.\n"
                      "# TYPE test_sm_latency_seconds histogram\n"
                      "test_sm_latency_seconds_bucket{route=\"/x\",le=\"0.1\"} 2\n"
                      "test_sm_latency_seconds_bucket{route=\"/x\",le=\"1\"} 2\n"
                      "test_sm_latency_seconds_bucket{route=\"/x\",le=\"10\"} 3\n"
                      "test_sm_latency_seconds_bucket{route=\"/x\",le=\"+Inf\"} 4\n"
                      "test_sm_latency_seconds_sum{route=\"/x\"} 105.15\n"
                      "test_sm_latency_seconds_count{route=\"/x\"} 4\n");
    free(fam);
    fam = family_text(&out, "# HELP test_sm_plain");
    CHECK_EQ_STR(fam, "# HELP test_sm_plain Plain\\\\help\\nline.\n"
                      "# TYPE test_sm_plain histogram\n"
                      "test_sm_plain_bucket{le=\"1\"} 0\n"
                      "test_sm_plain_bucket{le=\"+Inf\"} 1\n"
                      "test_sm_plain_sum 2\n"
                      "test_sm_plain_count 1\n");
    free(fam);
    buf_deinit(&out);
}

static double fixed_value(void *arg) { return *(double *)arg; }

TEST(gauge_fn_and_replace)
{
    static double v1 = 7, v2 = 9;
    selfmon_gauge_fn("test_sm_gauge", "A gauge.", NULL, fixed_value, &v1);
    buf_t out = BUF_INIT;
    selfmon_write(&out);
    char *fam = family_text(&out, "# HELP test_sm_gauge");
    CHECK_EQ_STR(fam,
                 "# HELP test_sm_gauge A gauge.\n# TYPE test_sm_gauge gauge\ntest_sm_gauge 7\n");
    free(fam);
    selfmon_gauge_fn("test_sm_gauge", "A gauge.", NULL, fixed_value, &v2);
    buf_clear(&out);
    selfmon_write(&out);
    fam = family_text(&out, "# HELP test_sm_gauge");
    CHECK_EQ_STR(fam,
                 "# HELP test_sm_gauge A gauge.\n# TYPE test_sm_gauge gauge\ntest_sm_gauge 9\n");
    free(fam);
    buf_deinit(&out);
}

TEST(process_metrics_present)
{
    buf_t out = BUF_INIT;
    selfmon_write(&out);
    const char *all = buf_cstr(&out);
    CHECK(strstr(all, "# TYPE process_cpu_seconds_total counter\n") != NULL);
    CHECK(strstr(all, "# TYPE process_resident_memory_bytes gauge\n") != NULL);
    CHECK(strstr(all, "# TYPE process_start_time_seconds gauge\n") != NULL);
    CHECK(strstr(all, "# TYPE process_open_fds gauge\n") != NULL);
    const char *rss = strstr(all, "\nprocess_resident_memory_bytes ");
    REQUIRE(rss != NULL);
    CHECK(strtod(rss + 31, NULL) > 1e5);
    const char *start = strstr(all, "\nprocess_start_time_seconds ");
    REQUIRE(start != NULL);
    CHECK(strtod(start + 28, NULL) > 1.6e9);
    const char *fds = strstr(all, "\nprocess_open_fds ");
    REQUIRE(fds != NULL);
    CHECK(strtod(fds + 18, NULL) >= 3);
    buf_deinit(&out);
}

TEST(counter_sum_matches_pairs)
{
    selfmon_counter_add(
        selfmon_counter("test_sm_recv_total", "R.", "signal=\"spans\",outcome=\"accepted\""), 10);
    selfmon_counter_add(
        selfmon_counter("test_sm_recv_total", "R.", "signal=\"spans\",outcome=\"refused\""), 2);
    selfmon_counter_add(
        selfmon_counter("test_sm_recv_total", "R.", "signal=\"logs\",outcome=\"accepted\""), 5);
    selfmon_counter_add(
        selfmon_counter("test_sm_recv_total", "R.", "signal=\"spansx\",outcome=\"accepted\""), 100);
    CHECK_EQ_DBL(selfmon_counter_sum("test_sm_recv_total", "signal=\"spans\""), 12);
    CHECK_EQ_DBL(selfmon_counter_sum("test_sm_recv_total", "outcome=\"accepted\",signal=\"spans\""),
                 10);
    CHECK_EQ_DBL(selfmon_counter_sum("test_sm_recv_total", NULL), 117);
    CHECK_EQ_DBL(selfmon_counter_sum("test_sm_nonexistent_total", NULL), 0);
}

static void *adder(void *arg)
{
    selfmon_counter_t *c = selfmon_counter("test_sm_threads_total", "T.", NULL);
    static const double b[] = {1};
    selfmon_histogram_t *h = selfmon_histogram("test_sm_threads_hist", "T.", NULL, b, 1);
    for (int i = 0; i < 100000; i++) {
        selfmon_counter_add(c, 1);
        selfmon_histogram_observe(h, 0.5);
    }
    return arg;
}

TEST(concurrent_updates_are_exact)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, adder, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ_DBL(selfmon_counter_get(selfmon_counter("test_sm_threads_total", "T.", NULL)), 400000);
    static const double b[] = {1};
    selfmon_histogram_t *h = selfmon_histogram("test_sm_threads_hist", "T.", NULL, b, 1);
    CHECK_EQ_U64(selfmon_histogram_count(h), 400000);
    CHECK_EQ_DBL(selfmon_histogram_sum(h), 200000);
}
