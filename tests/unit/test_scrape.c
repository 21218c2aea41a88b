/* test_scrape.c - ingest/scrape: scrape_configs parsing (defaults, every field, errors with
 * file:line and path), the relabelling actions and replacement expansion (hashmod checked against
 * MD5 values computed with Python's hashlib), staleness bookkeeping with stale markers committed
 * to a real store and read back bit-exactly, and a manager built from a config listing its targets
 * (discovered labels, relabelled and dropped targets) on a real server. */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "ingest/scrape.h"
#include "net/http.h"
#include "net/http_client.h"
#include "net/loop.h"
#include "store/db.h"
#include "test.h"

/* ---- helpers ---- */

typedef struct ydoc {
    yaml_document_t doc;
    yaml_node_t *scrape, *global;
    bool ok;
} ydoc_t;

static void ydoc_load(ydoc_t *y, const char *text)
{
    memset(y, 0, sizeof *y);
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, strlen(text));
    y->ok = yaml_parser_load(&p, &y->doc) == 1;
    yaml_parser_delete(&p);
    if (!y->ok)
        return;
    yaml_node_t *root = yaml_document_get_root_node(&y->doc);
    if (!root || root->type != YAML_MAPPING_NODE)
        return;
    for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *k = yaml_document_get_node(&y->doc, pr->key);
        yaml_node_t *v = yaml_document_get_node(&y->doc, pr->value);
        if (!strcmp((const char *)k->data.scalar.value, "scrape_configs"))
            y->scrape = v;
        else if (!strcmp((const char *)k->data.scalar.value, "global"))
            y->global = v;
    }
}

static int parse(const char *text, scrape_config_t **out, err_t *err)
{
    ydoc_t y;
    ydoc_load(&y, text);
    if (!y.ok)
        return -100;
    int rc = scrape_config_parse(&y.doc, y.scrape, y.global, "test.yaml", out, err);
    yaml_document_delete(&y.doc);
    return rc;
}

static void fmt_labels(const labels_t *ls, char *out, size_t cap)
{
    buf_t b = BUF_INIT;
    labels_format(&b, ls);
    snprintf(out, cap, "%s", buf_cstr(&b));
    buf_deinit(&b);
}

/* Parses one job's relabel_configs from YAML, applies them to in (a "{a=\"b\", ...}" selector
 * style list given as name/value pairs) and returns the result as text ("dropped" when dropped). */
static void relabel_case(const char *rules_yaml, const label_t *in, size_t n, char *out, size_t cap)
{
    char text[4096];
    snprintf(text, sizeof text, "scrape_configs:\n  - job_name: j\n    relabel_configs:\n%s",
             rules_yaml);
    scrape_config_t *c = NULL;
    err_t err;
    err_clear(&err);
    if (parse(text, &c, &err) != 0) {
        snprintf(out, cap, "ERR %s", err.msg);
        return;
    }
    arena_t a;
    arena_init(&a, 0);
    labels_t ls = {(label_t *)in, n}, res;
    if (!relabel_apply(c->jobs[0].relabel, c->jobs[0].n_relabel, &ls, &a, &res))
        snprintf(out, cap, "dropped");
    else
        fmt_labels(&res, out, cap);
    arena_deinit(&a);
    scrape_config_free(c);
}

#define L(n, v)                                                                                    \
    {                                                                                              \
        STR(n), STR(v)                                                                             \
    }

#define CHECK_RELABEL(rules, want, ...)                                                            \
    do {                                                                                           \
        const label_t in_[] = {__VA_ARGS__};                                                       \
        char got_[1024];                                                                           \
        relabel_case(rules, in_, sizeof in_ / sizeof in_[0], got_, sizeof got_);                   \
        CHECK_EQ_STR(got_, want);                                                                  \
    } while (0)

/* ---- configuration ---- */

TEST(config_defaults_and_fields)
{
    scrape_config_t *c = NULL;
    err_t err;
    err_clear(&err);
    REQUIRE_OK(parse("global:\n"
                     "  scrape_interval: 30s\n"
                     "  evaluation_interval: 1m\n"
                     "scrape_configs:\n"
                     "  - job_name: node\n"
                     "    static_configs:\n"
                     "      - targets: ['127.0.0.1:9100', 'host-b:9100']\n"
                     "        labels: {team: infra, env: prod}\n"
                     "      - targets: [h3]\n"
                     "  - job_name: app\n"
                     "    scrape_interval: 5s\n"
                     "    metrics_path: /custom/metrics\n"
                     "    scheme: http\n"
                     "    params: {module: [http_2xx, other], empty: []}\n"
                     "    honor_labels: true\n"
                     "    honor_timestamps: false\n"
                     "    sample_limit: 100\n"
                     "    body_size_limit: 10MiB\n"
                     "    metric_relabel_configs:\n"
                     "      - source_labels: [__name__]\n"
                     "        regex: go_.*\n"
                     "        action: drop\n",
                     &c, &err));
    REQUIRE(c != NULL);
    CHECK_EQ_INT(c->n_jobs, 2);
    const scrape_job_t *j = &c->jobs[0];
    CHECK_EQ_STRN(j->job_name, "node");
    CHECK_EQ_INT(j->interval_ms, 30000);
    CHECK_EQ_INT(j->timeout_ms, 10000);
    CHECK_EQ_STRN(j->metrics_path, "/metrics");
    CHECK(!j->honor_labels);
    CHECK(j->honor_timestamps);
    CHECK_EQ_INT(j->n_statics, 2);
    CHECK_EQ_INT(j->statics[0].n_targets, 2);
    CHECK_EQ_STRN(j->statics[0].targets[1], "host-b:9100");
    CHECK_EQ_INT(j->statics[0].labels.n, 2);
    CHECK_EQ_STRN(j->statics[0].labels.v[0].name, "env"); /* sorted */
    CHECK_EQ_STRN(j->statics[1].targets[0], "h3");
    j = &c->jobs[1];
    CHECK_EQ_INT(j->interval_ms, 5000);
    CHECK_EQ_INT(j->timeout_ms, 5000); /* the global 10s timeout is capped at the interval */
    CHECK_EQ_STRN(j->metrics_path, "/custom/metrics");
    CHECK_EQ_INT(j->n_params, 1);
    CHECK_EQ_STRN(j->params[0].name, "module");
    CHECK_EQ_STRN(j->params[0].value, "http_2xx");
    CHECK(j->honor_labels);
    CHECK(!j->honor_timestamps);
    CHECK_EQ_U64(j->sample_limit, 100);
    CHECK_EQ_U64(j->body_size_limit, 10u << 20);
    CHECK_EQ_INT(j->n_metric_relabel, 1);
    CHECK_EQ_INT(j->metric_relabel[0].action, RELABEL_DROP);
    scrape_config_free(c);

    /* no scrape_configs at all: an empty config */
    REQUIRE_OK(parse("global: {scrape_interval: 15s}\n", &c, &err));
    CHECK_EQ_INT(c->n_jobs, 0);
    CHECK_EQ_INT(c->global_interval_ms, 15000);
    scrape_config_free(c);
    /* Prometheus' defaults */
    REQUIRE_OK(parse("scrape_configs:\n  - job_name: x\n", &c, &err));
    CHECK_EQ_INT(c->jobs[0].interval_ms, 60000);
    CHECK_EQ_INT(c->jobs[0].timeout_ms, 10000);
    scrape_config_free(c);
}

TEST(config_errors_name_file_line_and_path)
{
    static const struct {
        const char *yaml;
        const char *msg;
    } cases[] = {
        {"scrape_configs: {a: 1}\n",
         "test.yaml:1: scrape_configs: expected a list of scrape configs"},
        {"scrape_configs:\n  - static_configs: []\n",
         "test.yaml:2: scrape_configs[0]: job_name is required"},
        {"scrape_configs:\n  - job_name: a\n    scheme: https\n",
         "test.yaml:3: scrape_configs[0].scheme: https is not supported: Skillscope scrapes plain "
         "http only (put a local http endpoint or a TLS-terminating proxy in front)"},
        {"scrape_configs:\n  - job_name: a\n    scheme: ftp\n",
         "test.yaml:3: scrape_configs[0].scheme: unknown scheme \"ftp\" (http is supported)"},
        {"scrape_configs:\n  - job_name: a\n\n    scrape_interval: 5x\n",
         "test.yaml:4: scrape_configs[0].scrape_interval: invalid duration \"5x\": "},
        {"scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 10s\n",
         "test.yaml:4: scrape_configs[0]: scrape timeout greater than scrape interval for scrape "
         "config with job name \"a\""},
        {"scrape_configs:\n  - job_name: a\n  - job_name: a\n",
         "test.yaml:3: scrape_configs[1]: found multiple scrape configs with job name \"a\""},
        {"scrape_configs:\n  - job_name: a\n    honor_labels: maybe\n",
         "test.yaml:3: scrape_configs[0].honor_labels: expected true or false, got \"maybe\""},
        {"scrape_configs:\n  - job_name: a\n    sample_limit: -1\n",
         "test.yaml:3: scrape_configs[0].sample_limit: expected a non-negative integer, got "
         "\"-1\""},
        {"scrape_configs:\n  - job_name: a\n    metrics_path: metrics\n",
         "test.yaml:3: scrape_configs[0].metrics_path: must start with '/', got \"metrics\""},
        {"scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: "
         "['http://x:1/metrics']\n",
         "test.yaml:4: scrape_configs[0].static_configs[0].targets[0]: \"http://x:1/metrics\" is "
         "not a valid target: expected host:port (the path goes in metrics_path, the scheme in "
         "scheme)"},
        {"scrape_configs:\n  - job_name: a\n    static_configs:\n      - labels: {1bad: x}\n",
         "test.yaml:4: scrape_configs[0].static_configs[0].labels.1bad: \"1bad\" is not a valid "
         "label name"},
        {"scrape_configs:\n  - job_name: a\n    static_configs:\n      - target: [x]\n",
         "test.yaml:4: scrape_configs[0].static_configs[0].target: unknown field (a static config "
         "has targets and labels)"},
        {"scrape_configs:\n  - job_name: a\n    kubernetes_sd_configs: []\n",
         "test.yaml:3: scrape_configs[0].kubernetes_sd_configs: service discovery is not "
         "supported: list targets in static_configs"},
        {"scrape_configs:\n  - job_name: a\n    tls_config: {}\n",
         "test.yaml:3: scrape_configs[0].tls_config: TLS, authentication and proxies are not "
         "supported (plain http only)"},
        {"scrape_configs:\n  - job_name: a\n    scrape_intervall: 5s\n",
         "test.yaml:3: scrape_configs[0].scrape_intervall: unknown field (supported: job_name, "
         "scrape_interval, scrape_timeout, metrics_path, scheme, params, honor_labels, "
         "honor_timestamps, sample_limit, body_size_limit, static_configs, relabel_configs, "
         "metric_relabel_configs)"},
        {"scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: explode\n",
         "test.yaml:4: scrape_configs[0].relabel_configs[0].action: unknown relabel action "
         "\"explode\" (replace, keep, drop, keepequal, dropequal, hashmod, labelmap, labeldrop, "
         "labelkeep, lowercase, uppercase)"},
        {"scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - regex: '(a'\n"
         "        target_label: x\n",
         "test.yaml:4: scrape_configs[0].relabel_configs[0].regex: invalid regular expression "
         "\"(a\" at offset 2: missing closing parenthesis"},
        {"scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: replace\n",
         "test.yaml:4: scrape_configs[0].relabel_configs[0]: relabel configuration for replace "
         "action requires 'target_label' value"},
        {"scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - target_label: 1x\n",
         "test.yaml:4: scrape_configs[0].relabel_configs[0]: \"1x\" is invalid 'target_label' for "
         "replace action"},
        {"scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: hashmod\n"
         "        target_label: h\n",
         "test.yaml:4: scrape_configs[0].relabel_configs[0]: relabel configuration for hashmod "
         "requires non-zero modulus"},
        {"scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: labeldrop\n"
         "        regex: x\n        target_label: y\n",
         "test.yaml:4: scrape_configs[0].relabel_configs[0]: labeldrop action requires only "
         "'regex', and no other fields"},
        {"scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - source_labels: [a-b]\n"
         "        action: keep\n",
         "test.yaml:4: scrape_configs[0].relabel_configs[0].source_labels[0]: \"a-b\" is not a "
         "valid label name"},
        {"scrape_configs:\n  - job_name: a\n    metric_relabel_configs:\n      - action: keep\n"
         "        regx: a\n",
         "test.yaml:5: scrape_configs[0].metric_relabel_configs[0].regx: unknown field (a "
         "relabel config has action, source_labels, separator, regex, target_label, replacement, "
         "modulus)"},
        {"global:\n  scrape_timeout: 0s\n",
         "test.yaml:2: global.scrape_timeout: duration must be greater than 0, got \"0s\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        scrape_config_t *c = NULL;
        err_t err;
        err_clear(&err);
        int rc = parse(cases[i].yaml, &c, &err);
        if (rc != ERR_PARSE) {
            test_fail_at(__FILE__, __LINE__, "case %zu: rc %d (%s)", i, rc, err.msg);
            scrape_config_free(c);
            continue;
        }
        CHECK(c == NULL);
        if (strncmp(err.msg, cases[i].msg, strlen(cases[i].msg)) != 0)
            test_fail_at(__FILE__, __LINE__, "case %zu:\n  got  %s\n  want %s", i, err.msg,
                         cases[i].msg);
    }
}

/* ---- relabelling ---- */

TEST(relabel_replace)
{
    /* default regex (.*) and replacement $1: copy */
    CHECK_RELABEL("      - source_labels: [a]\n        target_label: b\n", "{a=\"x\", b=\"x\"}",
                  L("a", "x"));
    /* joined sources, captures, ${1} and named groups */
    CHECK_RELABEL("      - source_labels: [a, c]\n        separator: '-'\n"
                  "        regex: '(?P<first>[^-]*)-(.*)'\n        target_label: b\n"
                  "        replacement: '${2}/$first/$$'\n",
                  "{a=\"x\", b=\"y/x/$\", c=\"y\"}", L("a", "x"), L("c", "y"));
    /* no match: nothing happens */
    CHECK_RELABEL("      - source_labels: [a]\n        regex: 'z.*'\n        target_label: b\n"
                  "        replacement: new\n",
                  "{a=\"x\"}", L("a", "x"));
    /* fully anchored: "x" does not match inside "axb" */
    CHECK_RELABEL("      - source_labels: [a]\n        regex: x\n        target_label: b\n"
                  "        replacement: hit\n",
                  "{a=\"axb\"}", L("a", "axb"));
    /* an empty result deletes the target */
    CHECK_RELABEL("      - source_labels: [missing]\n        target_label: a\n", "{}", L("a", "x"));
    /* target label from a template; $1x is the (missing) group "1x", as in Go */
    CHECK_RELABEL("      - source_labels: [a]\n        regex: '(.*)'\n        target_label: "
                  "'t_$1'\n        replacement: '$1x|${1}x'\n",
                  "{a=\"v\", t_v=\"|vx\"}", L("a", "v"));
    /* an invalid expanded target name: nothing happens */
    CHECK_RELABEL("      - source_labels: [a]\n        target_label: '$1'\n", "{a=\"1-x\"}",
                  L("a", "1-x"));
    /* __address__ rewriting, the classic use */
    CHECK_RELABEL("      - source_labels: [__address__]\n        regex: '([^:]+):\\d+'\n"
                  "        target_label: __address__\n        replacement: '${1}:9100'\n",
                  "{__address__=\"host:9100\"}", L("__address__", "host:80"));
}

TEST(relabel_keep_drop_and_equal)
{
    const char *keep = "      - source_labels: [env]\n        regex: prod|stage\n"
                       "        action: keep\n";
    CHECK_RELABEL(keep, "{env=\"prod\"}", L("env", "prod"));
    CHECK_RELABEL(keep, "dropped", L("env", "dev"));
    CHECK_RELABEL(keep, "dropped", L("other", "prod"));
    const char *drop = "      - source_labels: [__name__]\n        regex: 'go_.*'\n"
                       "        action: drop\n";
    CHECK_RELABEL(drop, "dropped", L("__name__", "go_goroutines"));
    CHECK_RELABEL(drop, "{__name__=\"up\"}", L("__name__", "up"));
    const char *keq = "      - source_labels: [a]\n        target_label: b\n"
                      "        action: keepequal\n";
    CHECK_RELABEL(keq, "{a=\"1\", b=\"1\"}", L("a", "1"), L("b", "1"));
    CHECK_RELABEL(keq, "dropped", L("a", "1"), L("b", "2"));
    const char *deq = "      - source_labels: [a]\n        target_label: b\n"
                      "        action: dropequal\n";
    CHECK_RELABEL(deq, "dropped", L("a", "1"), L("b", "1"));
    CHECK_RELABEL(deq, "{a=\"1\", b=\"2\"}", L("a", "1"), L("b", "2"));
}

TEST(relabel_labelmap_labeldrop_labelkeep_case)
{
    CHECK_RELABEL("      - regex: '__meta_(.+)'\n        action: labelmap\n",
                  "{__meta_zone=\"z1\", x=\"1\", zone=\"z1\"}", L("__meta_zone", "z1"),
                  L("x", "1"));
    CHECK_RELABEL("      - regex: 'tmp_.*'\n        action: labeldrop\n", "{keep=\"k\"}",
                  L("tmp_a", "1"), L("keep", "k"), L("tmp_b", "2"));
    CHECK_RELABEL("      - regex: 'job|instance|__name__'\n        action: labelkeep\n",
                  "{__name__=\"m\", job=\"j\"}", L("__name__", "m"), L("job", "j"), L("pod", "p"),
                  L("ns", "n"));
    CHECK_RELABEL("      - source_labels: [a]\n        target_label: lo\n        action: "
                  "lowercase\n      - source_labels: [a]\n        target_label: up\n"
                  "        action: uppercase\n",
                  "{a=\"MiXed\", lo=\"mixed\", up=\"MIXED\"}", L("a", "MiXed"));
}

TEST(relabel_hashmod_matches_md5)
{
    /* expected values: int.from_bytes(hashlib.md5(v).digest()[8:], 'big') % m (Python) */
    static const struct {
        const char *v;
        int mod;
        const char *want;
    } cases[] = {{"foo", 1000, "696"},
                 {"foo", 7, "2"},
                 {"127.0.0.1:9100", 1000, "150"},
                 {"127.0.0.1:9100", 7, "5"},
                 {"", 1000, "958"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char rules[256], want[128];
        snprintf(rules, sizeof rules,
                 "      - source_labels: [a]\n        target_label: h\n        modulus: %d\n"
                 "        action: hashmod\n",
                 cases[i].mod);
        if (cases[i].v[0])
            snprintf(want, sizeof want, "{a=\"%s\", h=\"%s\"}", cases[i].v, cases[i].want);
        else
            snprintf(want, sizeof want, "{h=\"%s\"}", cases[i].want);
        label_t in[] = {{STR("a"), str_cstr(cases[i].v)}};
        char got[256];
        relabel_case(rules, in, 1, got, sizeof got);
        CHECK_EQ_STR(got, want);
    }
    /* two sources joined with the separator: md5("a;b") */
    CHECK_RELABEL("      - source_labels: [a, b]\n        target_label: h\n        modulus: "
                  "1000\n        action: hashmod\n",
                  "{a=\"a\", b=\"b\", h=\"74\"}", L("a", "a"), L("b", "b"));
}

TEST(relabel_rules_apply_in_order)
{
    CHECK_RELABEL("      - source_labels: [a]\n        target_label: b\n"
                  "      - source_labels: [b]\n        regex: x\n        action: drop\n",
                  "dropped", L("a", "x"));
    CHECK_RELABEL("      - source_labels: [a]\n        target_label: b\n"
                  "      - source_labels: [b]\n        regex: y\n        action: drop\n",
                  "{a=\"x\", b=\"x\"}", L("a", "x"));
}

/* ---- staleness ---- */

static void on_ack(void *arg, const db_commit_result_t *res)
{
    int *done = arg;
    *done = res->status == 0 ? 1 : -1;
}

static void commit_wait(db_t *db, db_batch_t *b)
{
    int done = 0;
    if (db_commit(db, b, on_ack, &done) != 0) {
        test_fail_at(__FILE__, __LINE__, "db_commit failed");
        return;
    }
    int64_t deadline = clock_mono_ns() + 10000000000LL;
    while (!done && clock_mono_ns() < deadline) {
        db_poll(db);
        struct pollfd p = {db_event_fd(db), POLLIN, 0};
        poll(&p, 1, 20);
    }
    CHECK_EQ_INT(done, 1);
}

static labels_t mk(arena_t *a, const char *name, const char *inst)
{
    label_t *v = arena_alloc(a, 2 * sizeof *v);
    v[0] = (label_t){STR("__name__"), str_cstr(name)};
    v[1] = (label_t){STR("instance"), str_cstr(inst)};
    return (labels_t){v, 2};
}

TEST(staleness_markers_for_vanished_series)
{
    db_opts_t o;
    db_opts_default(&o);
    o.dir = test_tmpdir();
    o.retention_ms = 0;
    if (log_level() < LOG_WARN)
        log_set_level(LOG_WARN);
    db_t *db;
    err_t err;
    REQUIRE_OK(db_open(&o, &db, &err));
    arena_t a;
    arena_init(&a, 0);
    scrape_seen_t s;
    scrape_seen_init(&s);
    labels_t x = mk(&a, "m", "x"), y = mk(&a, "m", "y"), z = mk(&a, "m", "z");
    labels_t w = mk(&a, "m", "w");
    /* scrape 1 (t=1000): x, y, and z with its own timestamp (never marked stale) */
    db_batch_t *b = db_batch_new();
    scrape_seen_begin(&s);
    CHECK_EQ_INT(scrape_seen_mark(&s, &x, labels_hash(&x), true), 1);
    CHECK_EQ_INT(scrape_seen_mark(&s, &y, labels_hash(&y), true), 1);
    CHECK_EQ_INT(scrape_seen_mark(&s, &z, labels_hash(&z), false), 1);
    CHECK_EQ_INT(scrape_seen_mark(&s, &x, labels_hash(&x), true), -1); /* duplicate */
    db_batch_add_sample(b, &x, 1000, 1);
    db_batch_add_sample(b, &y, 1000, 2);
    db_batch_add_sample(b, &z, 900, 3);
    CHECK_EQ_INT(scrape_seen_end(&s, b, 1000), 0);
    commit_wait(db, b);
    /* scrape 2 (t=2000): only x (known); y gets a stale marker, z (explicit timestamps) none */
    b = db_batch_new();
    scrape_seen_begin(&s);
    CHECK_EQ_INT(scrape_seen_mark(&s, &x, labels_hash(&x), true), 0);
    db_batch_add_sample(b, &x, 2000, 11);
    CHECK_EQ_INT(scrape_seen_end(&s, b, 2000), 1);
    CHECK_EQ_INT(s.live, 1);
    commit_wait(db, b);
    /* scrape 3 fails (t=3000) after seeing x again and a new w: x (stored before) is marked,
     * w (never stored) is not */
    b = db_batch_new();
    scrape_seen_begin(&s);
    CHECK_EQ_INT(scrape_seen_mark(&s, &x, labels_hash(&x), true), 0);
    CHECK_EQ_INT(scrape_seen_mark(&s, &w, labels_hash(&w), true), 1);
    CHECK_EQ_INT(scrape_seen_fail(&s, b, 3000), 1);
    CHECK_EQ_INT(s.live, 0);
    commit_wait(db, b);
    /* scrape 4 (t=4000): y comes back as a new series; the set reuses freed slots */
    b = db_batch_new();
    scrape_seen_begin(&s);
    CHECK_EQ_INT(scrape_seen_mark(&s, &y, labels_hash(&y), true), 1);
    db_batch_add_sample(b, &y, 4000, 4);
    CHECK_EQ_INT(scrape_seen_end(&s, b, 4000), 0);
    commit_wait(db, b);
    /* the target goes away (t=5000): y is marked */
    b = db_batch_new();
    scrape_seen_begin(&s);
    CHECK_EQ_INT(scrape_seen_fail(&s, b, 5000), 1);
    commit_wait(db, b);

    matcher_t *ms;
    size_t n_ms;
    REQUIRE_OK(matchers_parse(STR("m"), &a, &ms, &n_ms, &err));
    db_series_iter_t *it;
    REQUIRE_OK(db_select(db, ms, n_ms, 0, 10000, &a, &it, &err));
    const char *want[] = {"x:1000=1,2000=11,3000=stale,", "y:1000=2,2000=stale,4000=4,5000=stale,",
                          "z:900=3,"};
    size_t i = 0;
    while (db_series_next(it)) {
        char got[256];
        size_t n = (size_t)snprintf(got, sizeof got,
                                    "%.*s:", STR_FMT(labels_get(db_series_labels(it), "instance")));
        int64_t t;
        double v;
        while (db_sample_next(it, &t, &v)) {
            uint64_t bits;
            memcpy(&bits, &v, sizeof bits);
            if (bits == 0x7ff0000000000002ULL)
                n += (size_t)snprintf(got + n, sizeof got - n, "%lld=stale,", (long long)t);
            else
                n += (size_t)snprintf(got + n, sizeof got - n, "%lld=%g,", (long long)t, v);
        }
        REQUIRE(i < 3);
        CHECK_EQ_STR(got, want[i]);
        i++;
    }
    CHECK_EQ_INT(i, 3);
    matchers_deinit(ms, n_ms);
    scrape_seen_deinit(&s);
    arena_deinit(&a);
    db_close(db);
}

/* ---- targets ---- */

static void stop_loop(void *arg) { loop_stop(arg); }

static int http_get(int port, const char *path, buf_t *out, loop_t *l)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    char req[512];
    int n =
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    /* The server runs on l in this thread: drive the loop until the reply is complete. */
    int64_t deadline = clock_mono_ns() + 5000000000LL;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 0) > 0) {
            char tmp[4096];
            ssize_t r = read(fd, tmp, sizeof tmp);
            if (r <= 0)
                break;
            buf_append(out, tmp, (size_t)r);
            continue;
        }
        if (clock_mono_ns() > deadline)
            break;
        loop_timer_start(l, 5, false, stop_loop, l);
        loop_run(l);
    }
    close(fd);
    const char *s = buf_cstr(out);
    return strncmp(s, "HTTP/1.1 ", 9) == 0 ? atoi(s + 9) : -1;
}

static const char *body_of(buf_t *b)
{
    const char *s = buf_cstr(b);
    const char *p = strstr(s, "\r\n\r\n");
    return p ? p + 4 : "";
}

TEST(targets_endpoint_lists_active_and_dropped)
{
    err_t err;
    err_clear(&err);
    scrape_config_t *c = NULL;
    REQUIRE_OK(parse("scrape_configs:\n"
                     "  - job_name: b-job\n"
                     "    scrape_interval: 1h\n"
                     "    params: {module: [m1]}\n"
                     "    static_configs:\n"
                     "      - targets: ['127.0.0.1:1', 'localhost', 'drop-me:1']\n"
                     "        labels: {team: t}\n"
                     "    relabel_configs:\n"
                     "      - source_labels: [__address__]\n"
                     "        regex: 'drop-me:.*'\n"
                     "        action: drop\n"
                     "      - target_label: instance\n"
                     "        source_labels: [__address__]\n"
                     "        regex: 'localhost'\n"
                     "        replacement: renamed\n"
                     "  - job_name: a-job\n"
                     "    scrape_interval: 90s\n"
                     "    metrics_path: /m\n",
                     &c, &err));
    loop_t *l = loop_new(&err);
    REQUIRE(l != NULL);
    http_server_t *srv = http_server_new(l);
    REQUIRE_OK(http_server_listen(srv, "main", "127.0.0.1", 0, &err));
    scrape_manager_t *m = scrape_manager_new(l, NULL, c); /* not started: no db needed */
    REQUIRE(m != NULL);
    CHECK_EQ_INT(scrape_manager_n_targets(m), 2);
    REQUIRE_OK(scrape_register(srv, m, &err));
    int port = http_server_port(srv, "main");
    buf_t b = BUF_INIT;
    CHECK_EQ_INT(http_get(port, "/api/v1/targets", &b, l), 200);
    const char *body = body_of(&b);
    CHECK(strstr(body, "{\"status\":\"success\",\"data\":{\"activeTargets\":[{\"discoveredLabels\":"
                       "{\"__address__\":\"127.0.0.1:1\",\"__metrics_path__\":\"/metrics\","
                       "\"__param_module\":\"m1\",\"__scheme__\":\"http\",\"__scrape_interval__\":"
                       "\"1h\",\"__scrape_timeout__\":\"10s\",\"job\":\"b-job\",\"team\":\"t\"},"
                       "\"labels\":{\"instance\":\"127.0.0.1:1\",\"job\":\"b-job\",\"team\":\"t\"},"
                       "\"scrapePool\":\"b-job\",\"scrapeUrl\":\"http://127.0.0.1:1/"
                       "metrics?module=m1\",") == body);
    CHECK(strstr(body, "\"lastError\":\"\",\"lastScrape\":\"0001-01-01T00:00:00Z\","
                       "\"lastScrapeDuration\":0,\"health\":\"unknown\",\"scrapeInterval\":\"1h\","
                       "\"scrapeTimeout\":\"10s\"}") != NULL);
    /* the address without a port gets :80; the relabelled instance */
    CHECK(strstr(body, "\"labels\":{\"instance\":\"renamed\",\"job\":\"b-job\",\"team\":\"t\"},"
                       "\"scrapePool\":\"b-job\",\"scrapeUrl\":\"http://localhost:80/"
                       "metrics?module=m1\"") != NULL);
    CHECK(strstr(body, "\"droppedTargets\":[{\"discoveredLabels\":{\"__address__\":\"drop-me:1\","
                       "\"__metrics_path__\":\"/metrics\",\"__param_module\":\"m1\",\"__scheme__\":"
                       "\"http\",\"__scrape_interval__\":\"1h\",\"__scrape_timeout__\":\"10s\","
                       "\"job\":\"b-job\",\"team\":\"t\"}}]}}") != NULL);
    /* a-job has no targets: nothing listed for it */
    CHECK(strstr(body, "a-job") == NULL);
    buf_clear(&b);
    CHECK_EQ_INT(http_get(port, "/api/v1/targets?state=dropped", &b, l), 200);
    CHECK(strstr(body_of(&b), "{\"status\":\"success\",\"data\":{\"activeTargets\":[],"
                              "\"droppedTargets\":[{") == body_of(&b));
    buf_clear(&b);
    CHECK_EQ_INT(http_get(port, "/api/v1/targets?state=active", &b, l), 200);
    CHECK(strstr(body_of(&b), "\"droppedTargets\":[]}}") != NULL);
    buf_clear(&b);
    CHECK_EQ_INT(
        http_get(port, "/api/v1/targets/metadata?match_target=%7Bjob%3D%22b-job%22%7D", &b, l),
        200);
    CHECK_EQ_STR(body_of(&b), "{\"status\":\"success\",\"data\":[]}");
    buf_clear(&b);
    CHECK_EQ_INT(http_get(port, "/api/v1/targets/metadata?match_target=%7Bjob%3D", &b, l), 400);
    CHECK(strstr(body_of(&b), "\"errorType\":\"bad_data\"") != NULL);
    buf_deinit(&b);
    scrape_manager_free(m);
    http_server_free(srv);
    loop_free(l);

    /* nothing configured: empty lists */
    l = loop_new(&err);
    srv = http_server_new(l);
    REQUIRE_OK(http_server_listen(srv, "main", "127.0.0.1", 0, &err));
    m = scrape_manager_new(l, NULL, NULL);
    REQUIRE_OK(scrape_register(srv, m, &err));
    b = BUF_INIT;
    CHECK_EQ_INT(http_get(http_server_port(srv, "main"), "/api/v1/targets", &b, l), 200);
    CHECK_EQ_STR(body_of(&b),
                 "{\"status\":\"success\",\"data\":{\"activeTargets\":[],\"droppedTargets\":[]}}");
    buf_deinit(&b);
    scrape_manager_free(m);
    http_server_free(srv);
    loop_free(l);
}

/* ---- the outbound client's URL handling (net/http_client, used by scrape) ---- */

TEST(http_url_split_cases)
{
    static const struct {
        const char *url;
        int rc;
        const char *host;
        int port;
        const char *target;
    } cases[] = {
        {"http://127.0.0.1:9100/metrics", 0, "127.0.0.1", 9100, "/metrics"},
        {"http://example.com/m?a=1&b=%20", 0, "example.com", 80, "/m?a=1&b=%20"},
        {"http://host:8080", 0, "host", 8080, "/"},
        {"http://host?x=1", 0, "host", 80, "/?x=1"},
        {"http://[::1]:9090/metrics#frag", 0, "::1", 9090, "/metrics"},
        {"HTTP://h/", 0, "h", 80, "/"},
        {"https://h/metrics", ERR_UNSUPPORTED, NULL, 0, NULL},
        {"ftp://h/", ERR_UNSUPPORTED, NULL, 0, NULL},
        {"h:80/metrics", ERR_INVAL, NULL, 0, NULL},
        {"http://:80/", ERR_INVAL, NULL, 0, NULL},
        {"http://h:0/", ERR_INVAL, NULL, 0, NULL},
        {"http://h:65536/", ERR_INVAL, NULL, 0, NULL},
        {"http://h:8x/", ERR_INVAL, NULL, 0, NULL},
        {"http://h:/", ERR_INVAL, NULL, 0, NULL},
        {"http://user@h/", ERR_INVAL, NULL, 0, NULL},
        {"http://[::1/", ERR_INVAL, NULL, 0, NULL},
        {"http://h/a b", ERR_INVAL, NULL, 0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *host = NULL, *target = NULL;
        int port = 0;
        err_t err;
        err_clear(&err);
        int rc = http_url_split(cases[i].url, &host, &port, &target, &err);
        if (rc != cases[i].rc) {
            test_fail_at(__FILE__, __LINE__, "%s: rc %d, want %d (%s)", cases[i].url, rc,
                         cases[i].rc, err.msg);
        } else if (rc == 0) {
            CHECK_EQ_STR(host, cases[i].host);
            CHECK_EQ_INT(port, cases[i].port);
            CHECK_EQ_STR(target, cases[i].target);
        } else {
            CHECK(strstr(err.msg, cases[i].url) != NULL || rc == ERR_INVAL);
        }
        free(host);
        free(target);
    }
}

/* A raw TCP responder on the loop: answers each connection with a canned byte string right away
 * (without reading the request: the client runs on the same loop), then half-closes. The
 * accepted sockets stay open until the case ends, so unread request bytes cause no reset. */
typedef struct canned {
    int lfd;
    const char *reply;
    size_t reply_len;
    loop_watch_t *w;
    int fds[8];
    int n_fds;
} canned_t;

static void canned_accept(void *arg)
{
    canned_t *c = arg;
    int fd = accept(c->lfd, NULL, NULL);
    if (fd < 0)
        return;
    if (c->reply_len && write(fd, c->reply, c->reply_len) < 0) {
        /* the client may have gone; nothing to do */
    }
    shutdown(fd, SHUT_WR);
    if (c->n_fds < 8)
        c->fds[c->n_fds++] = fd;
    else
        close(fd);
}

static void canned_close(canned_t *c)
{
    loop_watch_stop(c->w);
    close(c->lfd);
    for (int i = 0; i < c->n_fds; i++)
        close(c->fds[i]);
}

static int canned_listen(canned_t *c, loop_t *l)
{
    c->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(c->lfd, (struct sockaddr *)&sa, sizeof sa);
    listen(c->lfd, 8);
    socklen_t sl = sizeof sa;
    getsockname(c->lfd, (struct sockaddr *)&sa, &sl);
    c->w = loop_watch_fd(l, c->lfd, canned_accept, c);
    return ntohs(sa.sin_port);
}

typedef struct got {
    bool done;
    int status;
    char error[600];
    buf_t body;
    char ctype[64];
    loop_t *l;
} got_t;

static void on_got(void *arg, const http_client_resp_t *r)
{
    got_t *g = arg;
    g->done = true;
    g->status = r->status;
    snprintf(g->error, sizeof g->error, "%s", r->error ? r->error : "");
    buf_put_str(&g->body, r->body);
    const char *ct = http_call_header(r->call, "content-type");
    snprintf(g->ctype, sizeof g->ctype, "%s", ct ? ct : "");
    loop_stop(g->l);
}

static void fetch(loop_t *l, const char *url, size_t max_body, int64_t timeout_ms, got_t *g)
{
    memset(g, 0, sizeof *g);
    g->l = l;
    http_client_req_t req = {
        .url = url, .max_body_bytes = max_body, .timeout_ms = timeout_ms, .accept_gzip = true};
    err_t err;
    err_clear(&err);
    if (http_client_send(l, &req, on_got, g, NULL, &err) != 0) {
        snprintf(g->error, sizeof g->error, "send: %s", err.msg);
        return;
    }
    CHECK(!g->done); /* never called back from inside send */
    loop_run(l);
}

TEST(http_client_framings_and_errors)
{
    err_t err;
    loop_t *l = loop_new(&err);
    REQUIRE(l != NULL);
    static const char gz_hello[] = {
        0x1f,       (char)0x8b, 8,    0,          0,          0,          0,    0, 0,
        3,          (char)0xcb, 0x48, (char)0xcd, (char)0xc9, (char)0xc9, 0x07, 0, (char)0x86,
        (char)0xa6, 0x10,       0x36, 5,          0,          0,          0};
    char gz_reply[256];
    int gzn = snprintf(gz_reply, sizeof gz_reply,
                       "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %zu\r\n\r\n",
                       sizeof gz_hello);
    memcpy(gz_reply + gzn, gz_hello, sizeof gz_hello);
    static const struct {
        const char *reply;
        int status;
        const char *body;
        const char *error;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello", 200,
         "hello", ""},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2;ext=1\r\nlo\r\n0\r\n"
         "X-Trailer: 1\r\n\r\n",
         200, "hello", ""},
        {"HTTP/1.0 404 Not Found\r\n\r\nnope", 404, "nope", ""},
        {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", 204, "", ""},
        {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", 0, "",
         "connection closed before the response was complete"},
        {"SSH-2.0-OpenSSH\r\n\r\n", 0, "", "malformed HTTP status line \"SSH-2.0-OpenSSH\""},
        {"HTTP/1.1 200 OK\r\nbad header line\r\n\r\n", 0, "",
         "malformed response header \"bad header line\""},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, "",
         "malformed chunk size \"zz\""},
        {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 0, "", "response body exceeds 64 bytes"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\nffffffffffffffff\r\n", 0,
         "", "response body exceeds 64 bytes"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
         "28\r\n0123456789012345678901234567890123456789\r\n"
         "28\r\n0123456789012345678901234567890123456789\r\n0\r\n\r\n",
         0, "", "response body exceeds 64 bytes"},
        {"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 1\r\n\r\nx", 0, "",
         "unsupported Content-Encoding \"br\""},
        {"", 0, "", "connection closed by the server before a response"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0] + 1; i++) {
        canned_t c = {0};
        if (i < sizeof cases / sizeof cases[0]) {
            c.reply = cases[i].reply;
            c.reply_len = strlen(cases[i].reply);
        } else {
            c.reply = gz_reply;
            c.reply_len = (size_t)gzn + sizeof gz_hello;
        }
        int port = canned_listen(&c, l);
        char url[64];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/m", port);
        got_t g;
        fetch(l, url, 64, 5000, &g);
        if (i < sizeof cases / sizeof cases[0]) {
            CHECK_EQ_INT(g.status, cases[i].status);
            CHECK_EQ_STR(buf_cstr(&g.body), cases[i].body);
            CHECK_EQ_STR(g.error, cases[i].error);
        } else {
            CHECK_EQ_INT(g.status, 200);
            CHECK_EQ_STR(buf_cstr(&g.body), "hello"); /* gzip decoded */
        }
        buf_deinit(&g.body);
        canned_close(&c);
    }
    /* connection refused: a port nobody listens on */
    canned_t c = {0};
    int port = canned_listen(&c, l);
    loop_watch_stop(c.w);
    close(c.lfd);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/m", port);
    got_t g;
    fetch(l, url, 0, 5000, &g);
    CHECK_EQ_INT(g.status, 0);
    CHECK_EQ_STR(g.error, "connect: Connection refused");
    buf_deinit(&g.body);
    /* a server that accepts and never answers: the deadline */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(lfd, (struct sockaddr *)&sa, sizeof sa);
    listen(lfd, 8);
    socklen_t sl = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/m", ntohs(sa.sin_port));
    fetch(l, url, 0, 150, &g);
    CHECK_EQ_STR(g.error, "timed out after 150 ms");
    buf_deinit(&g.body);
    close(lfd);
    /* https is refused synchronously */
    http_client_req_t req = {.url = "https://127.0.0.1/"};
    err_clear(&err);
    CHECK_EQ_INT(http_client_send(l, &req, on_got, &g, NULL, &err), ERR_UNSUPPORTED);
    CHECK(strstr(err.msg, "https is not supported") != NULL);
    loop_free(l);
}
