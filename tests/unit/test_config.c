/* test_config.c - cli/config (flags > env > YAML > defaults, messages naming the source) and the
 * cli helpers that do not need a running server binary. */
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/selfmon.h"
#include "cli/cli.h"
#include "cli/config.h"
#include "net/http.h"
#include "net/loop.h"
#include "test.h"
#include "web/status.h"

static const char *env_names[] = {
    "SKILLSCOPE_DATA_DIR",          "SKILLSCOPE_LISTEN",         "SKILLSCOPE_HTTP_PORT",
    "SKILLSCOPE_OTLP_HTTP_PORT",    "SKILLSCOPE_OTLP_GRPC_PORT", "SKILLSCOPE_RETENTION",
    "SKILLSCOPE_RETENTION_SIZE",    "SKILLSCOPE_WAL_FSYNC",      "SKILLSCOPE_LOG_LEVEL",
    "SKILLSCOPE_CORS_ORIGIN",       "SKILLSCOPE_CONFIG",         "SKILLSCOPE_QUERY_TIMEOUT",
    "SKILLSCOPE_QUERY_MAX_SAMPLES",
};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof env_names / sizeof env_names[0]; i++)
        unsetenv(env_names[i]);
}

static const char *write_file(const char *name, const char *text)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

/* Loads with argv built from a NULL-terminated list after the command name. */
static int load(config_t *c, err_t *err, const char *a0, ...)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = "serve";
    va_list ap;
    va_start(ap, a0);
    for (const char *a = a0; a && argc < 31; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    config_init(c);
    err_clear(err);
    return config_load(c, "serve", argc, argv, err);
}

TEST(defaults)
{
    clear_env();
    config_t c;
    err_t err;
    CHECK_OK(load(&c, &err, NULL));
    CHECK_EQ_STR(c.data_dir, "./skillscope-data");
    CHECK_EQ_STR(c.listen, "127.0.0.1");
    CHECK_EQ_INT(c.http_port, 3000);
    CHECK_EQ_INT(c.otlp_http_port, 4318);
    CHECK_EQ_INT(c.otlp_grpc_port, 4317);
    CHECK_EQ_INT(c.retention_ms, 90LL * 86400 * 1000);
    CHECK_EQ_U64(c.retention_bytes, 10ULL << 30);
    CHECK_EQ_INT(c.wal_fsync, WAL_FSYNC_BATCH);
    CHECK_EQ_INT(c.log_level, LOG_INFO);
    CHECK_EQ_STR(c.cors_origin, "*");
    CHECK(c.config_file == NULL);
    CHECK(config_yaml(&c) == NULL);
    CHECK(config_yaml_get(&c, "scrape_configs") == NULL);
    config_deinit(&c);
}

TEST(query_limits)
{
    clear_env();
    config_t c;
    err_t err;
    CHECK_OK(load(&c, &err, NULL));
    CHECK_EQ_INT(c.query_timeout_ms, 2 * 60 * 1000);
    CHECK_EQ_U64(c.query_max_samples, 50000000);
    config_deinit(&c);
    CHECK_OK(load(&c, &err, "--query.timeout", "30s", "--query.max-samples=1000", NULL));
    CHECK_EQ_INT(c.query_timeout_ms, 30000);
    CHECK_EQ_U64(c.query_max_samples, 1000);
    config_deinit(&c);
    CHECK_OK(load(&c, &err, "--query.timeout", "0", NULL));
    CHECK_EQ_INT(c.query_timeout_ms, 0);
    config_deinit(&c);
    const char *yaml = write_file("q.yaml", "query_timeout: 1m\nquery_max_samples: 7\n");
    setenv("SKILLSCOPE_QUERY_MAX_SAMPLES", "9", 1);
    CHECK_OK(load(&c, &err, "--config", yaml, NULL));
    CHECK_EQ_INT(c.query_timeout_ms, 60000);
    CHECK_EQ_U64(c.query_max_samples, 9);
    config_deinit(&c);
    clear_env();
    CHECK_EQ_INT(load(&c, &err, "--query.max-samples", "lots", NULL), ERR_INVAL);
    CHECK_EQ_STR(err.msg, "--query.max-samples: invalid count \"lots\" (want a positive integer)");
    config_deinit(&c);
    CHECK_EQ_INT(load(&c, &err, "--query.max-samples", "-5", NULL), ERR_INVAL);
    config_deinit(&c);
    CHECK_EQ_INT(load(&c, &err, "--query.max-samples", "0", NULL), ERR_INVAL);
    config_deinit(&c);
    CHECK_EQ_INT(load(&c, &err, "--query.timeout", "soon", NULL), ERR_INVAL);
    CHECK(strstr(err.msg, "--query.timeout: invalid duration \"soon\"") == err.msg);
    config_deinit(&c);
}

TEST(precedence_flags_env_yaml)
{
    clear_env();
    const char *yaml = write_file("s.yaml", "# settings\n"
                                            "data_dir: /from/yaml\n"
                                            "http_port: 1111\n"
                                            "otlp_http_port: 1112\n"
                                            "retention: 30d\n"
                                            "retention_size: 1GiB\n"
                                            "wal_fsync: always\n"
                                            "log_level: debug\n"
                                            "listen: 0.0.0.0\n");
    config_t c;
    err_t err;
    /* YAML only. */
    CHECK_OK(load(&c, &err, "--config", yaml, NULL));
    CHECK_EQ_STR(c.data_dir, "/from/yaml");
    CHECK_EQ_INT(c.http_port, 1111);
    CHECK_EQ_INT(c.otlp_http_port, 1112);
    CHECK_EQ_INT(c.otlp_grpc_port, 4317);
    CHECK_EQ_INT(c.retention_ms, 30LL * 86400 * 1000);
    CHECK_EQ_U64(c.retention_bytes, 1ULL << 30);
    CHECK_EQ_INT(c.wal_fsync, WAL_FSYNC_ALWAYS);
    CHECK_EQ_INT(c.log_level, LOG_DEBUG);
    CHECK_EQ_STR(c.listen, "0.0.0.0");
    CHECK_EQ_STR(c.config_file, yaml);
    config_deinit(&c);

    /* Env beats YAML; the file can come from the environment too. */
    setenv("SKILLSCOPE_CONFIG", yaml, 1);
    setenv("SKILLSCOPE_HTTP_PORT", "2222", 1);
    setenv("SKILLSCOPE_WAL_FSYNC", "off", 1);
    setenv("SKILLSCOPE_DATA_DIR", "", 1); /* empty = unset */
    CHECK_OK(load(&c, &err, NULL));
    CHECK_EQ_INT(c.http_port, 2222);
    CHECK_EQ_INT(c.wal_fsync, WAL_FSYNC_OFF);
    CHECK_EQ_STR(c.data_dir, "/from/yaml");
    CHECK_EQ_INT(c.otlp_http_port, 1112);
    config_deinit(&c);

    /* Flags beat both, in both spellings. */
    CHECK_OK(load(&c, &err, "--http-port", "3333", "--wal-fsync=batch", "--data-dir=/flag", NULL));
    CHECK_EQ_INT(c.http_port, 3333);
    CHECK_EQ_INT(c.wal_fsync, WAL_FSYNC_BATCH);
    CHECK_EQ_STR(c.data_dir, "/flag");
    CHECK_EQ_INT(c.retention_ms, 30LL * 86400 * 1000);
    config_deinit(&c);

    /* The last of a repeated flag wins. */
    CHECK_OK(load(&c, &err, "--http-port", "1", "--http-port", "2", NULL));
    CHECK_EQ_INT(c.http_port, 2);
    config_deinit(&c);
    clear_env();
}

TEST(bad_values_name_their_source)
{
    clear_env();
    config_t c;
    err_t err;
    CHECK_EQ_INT(load(&c, &err, "--prot", "1", NULL), ERR_INVAL);
    CHECK_EQ_STR(err.msg, "unknown flag --prot (see skillscope serve --help)");
    config_deinit(&c);
    CHECK_EQ_INT(load(&c, &err, "--http-port=99999", NULL), ERR_INVAL);
    CHECK_EQ_STR(err.msg, "--http-port: invalid port \"99999\" (want 1..65535)");
    config_deinit(&c);
    CHECK_EQ_INT(load(&c, &err, "--http-port", "0", NULL), ERR_INVAL);
    config_deinit(&c);
    CHECK_OK(load(&c, &err, "--otlp-http-port", "0", "--otlp-grpc-port=0", NULL));
    CHECK_EQ_INT(c.otlp_http_port, 0);
    config_deinit(&c);
    CHECK_EQ_INT(load(&c, &err, "--retention", "9x", NULL), ERR_INVAL);
    CHECK_EQ_STR(err.msg, "--retention: invalid duration \"9x\": unknown unit \"x\" (use y w d h m "
                          "s ms)");
    config_deinit(&c);
    CHECK_OK(load(&c, &err, "--retention", "0", "--retention-size", "0", NULL));
    CHECK_EQ_INT(c.retention_ms, 0);
    CHECK_EQ_U64(c.retention_bytes, 0);
    config_deinit(&c);
    CHECK_EQ_INT(load(&c, &err, "--retention-size", "lots", NULL), ERR_INVAL);
    CHECK(strncmp(err.msg, "--retention-size: invalid size \"lots\"", 37) == 0);
    config_deinit(&c);
    CHECK_EQ_INT(load(&c, &err, "--wal-fsync", "sometimes", NULL), ERR_INVAL);
    CHECK_EQ_STR(err.msg, "--wal-fsync: invalid value \"sometimes\" (want batch, always or off)");
    config_deinit(&c);
    CHECK_EQ_INT(load(&c, &err, "--log-level", "loud", NULL), ERR_INVAL);
    CHECK(strstr(err.msg, "--log-level: invalid log level \"loud\"") == err.msg);
    config_deinit(&c);
    CHECK_EQ_INT(load(&c, &err, "--data-dir", NULL), ERR_INVAL);
    CHECK_EQ_STR(err.msg, "flag --data-dir needs a value (DIR)");
    config_deinit(&c);
    CHECK_EQ_INT(load(&c, &err, "extra", NULL), ERR_INVAL);
    CHECK_EQ_STR(err.msg, "unexpected argument \"extra\" (see skillscope serve --help)");
    config_deinit(&c);
    CHECK_EQ_INT(load(&c, &err, "--http-port", "1", "-h", NULL), CONFIG_HELP);
    config_deinit(&c);
    CHECK_OK(load(&c, &err, "--cors-origin", "", NULL));
    CHECK_EQ_STR(c.cors_origin, "");
    config_deinit(&c);

    setenv("SKILLSCOPE_OTLP_HTTP_PORT", "x1", 1);
    CHECK_EQ_INT(load(&c, &err, NULL), ERR_INVAL);
    CHECK_EQ_STR(err.msg, "SKILLSCOPE_OTLP_HTTP_PORT: invalid port \"x1\" (want 0..65535)");
    config_deinit(&c);
    /* A flag overrides the variable, so the variable is not even parsed. */
    CHECK_OK(load(&c, &err, "--otlp-http-port", "5", NULL));
    CHECK_EQ_INT(c.otlp_http_port, 5);
    config_deinit(&c);
    clear_env();
}

TEST(yaml_errors_and_reserved_keys)
{
    clear_env();
    config_t c;
    err_t err;
    const char *y = write_file("typo.yaml", "data_dir: x\nretenton: 5d\n");
    CHECK_EQ_INT(load(&c, &err, "--config", y, NULL), ERR_PARSE);
    char want[4200];
    snprintf(want, sizeof want, "%s:2: unknown setting \"retenton\"", y);
    CHECK_EQ_STR(err.msg, want);
    config_deinit(&c);

    y = write_file("badval.yaml", "http_port: 3000\nretention_size: 12 apples\n");
    CHECK_EQ_INT(load(&c, &err, "--config", y, NULL), ERR_INVAL);
    snprintf(want, sizeof want, "%s:2: retention_size: invalid size", y);
    CHECK(strncmp(err.msg, want, strlen(want)) == 0);
    config_deinit(&c);

    y = write_file("nested.yaml", "http_port:\n  - 1\n");
    CHECK_EQ_INT(load(&c, &err, "--config", y, NULL), ERR_PARSE);
    CHECK(strstr(err.msg, "http_port: expected a single value") != NULL);
    config_deinit(&c);

    y = write_file("list.yaml", "- a\n- b\n");
    CHECK_EQ_INT(load(&c, &err, "--config", y, NULL), ERR_PARSE);
    CHECK(strstr(err.msg, "the top level must be a mapping") != NULL);
    config_deinit(&c);

    y = write_file("syntax.yaml", "a: [\n");
    CHECK_EQ_INT(load(&c, &err, "--config", y, NULL), ERR_PARSE);
    snprintf(want, sizeof want, "%s:2:1: ", y);
    CHECK(strncmp(err.msg, want, strlen(want)) == 0);
    config_deinit(&c);

    CHECK_EQ_INT(load(&c, &err, "--config", "/nonexistent/s.yaml", NULL), ERR_IO);
    CHECK_EQ_STR(err.msg, "/nonexistent/s.yaml: No such file or directory");
    config_deinit(&c);

    y = write_file("empty.yaml", "");
    CHECK_OK(load(&c, &err, "--config", y, NULL));
    CHECK(config_yaml_get(&c, "scrape_configs") == NULL);
    config_deinit(&c);

    /* Keys owned by later parts are accepted and reachable. */
    y = write_file("full.yaml", "http_port: 4000\n"
                                "scrape_configs:\n"
                                "  - job_name: app\n"
                                "    static_configs: [{targets: ['localhost:9100']}]\n"
                                "rule_files: [rules/*.yaml]\n"
                                "remote_write:\n  - url: http://vm:8428/api/v1/write\n");
    CHECK_OK(load(&c, &err, "--config", y, NULL));
    CHECK_EQ_INT(c.http_port, 4000);
    yaml_node_t *sc = config_yaml_get(&c, "scrape_configs");
    REQUIRE(sc != NULL);
    CHECK_EQ_INT(sc->type, YAML_SEQUENCE_NODE);
    CHECK_EQ_INT(sc->data.sequence.items.top - sc->data.sequence.items.start, 1);
    yaml_node_t *rf = config_yaml_get(&c, "rule_files");
    REQUIRE(rf != NULL);
    yaml_node_t *first = yaml_document_get_node(config_yaml(&c), *rf->data.sequence.items.start);
    CHECK_EQ_STR((const char *)first->data.scalar.value, "rules/*.yaml");
    CHECK(config_yaml_get(&c, "alerting") == NULL);
    config_deinit(&c);
}

TEST(client_host_mapping)
{
    config_t c;
    config_init(&c);
    CHECK_EQ_STR(cli_client_host(&c, true), "127.0.0.1");
    c.listen = "0.0.0.0";
    CHECK_EQ_STR(cli_client_host(&c, false), "127.0.0.1");
    c.listen = "::";
    CHECK_EQ_STR(cli_client_host(&c, true), "[::1]");
    CHECK_EQ_STR(cli_client_host(&c, false), "::1");
    c.listen = "fe80::1";
    CHECK_EQ_STR(cli_client_host(&c, true), "[fe80::1]");
    c.listen = "10.1.2.3";
    CHECK_EQ_STR(cli_client_host(&c, true), "10.1.2.3");
    config_deinit(&c);
}

TEST(pidfile_roundtrip)
{
    config_t c;
    config_init(&c);
    c.data_dir = test_tmpdir();
    CHECK_EQ_INT(cli_pidfile_pid(&c), 0);
    err_t err;
    CHECK_OK(cli_pidfile_write(&c, &err));
    /* This process is a test runner, not `skillscope serve`: never trusted as a server. */
    CHECK_EQ_INT(cli_pidfile_pid(&c), 0);
    char path[4096];
    cli_pidfile_path(&c, path, sizeof path);
    CHECK(access(path, F_OK) == 0);
    cli_pidfile_remove(&c);
    CHECK(access(path, F_OK) != 0);
    config_deinit(&c);
}

static void h_json(http_req_t *r, void *arg)
{
    (void)arg;
    http_reply(r, 200, "application/json", "{\"ok\":true}", 11);
}

static void *run_loop(void *arg)
{
    loop_run(arg);
    return NULL;
}

TEST(http_client_against_server)
{
    err_t err;
    loop_t *l = loop_new(&err);
    REQUIRE(l != NULL);
    http_server_t *s = http_server_new(l);
    REQUIRE_OK(http_server_listen(s, "main", "127.0.0.1", 0, &err));
    REQUIRE_OK(http_route(s, NULL, HTTP_GET, "/x", h_json, NULL, NULL));
    int port = http_server_port(s, "main");
    pthread_t th;
    pthread_create(&th, NULL, run_loop, l);
    int status = 0;
    buf_t body = BUF_INIT;
    CHECK_OK(cli_http_get("127.0.0.1", port, "/x", 2000, &status, &body, &err));
    CHECK_EQ_INT(status, 200);
    CHECK_EQ_STRN(buf_str(&body), "{\"ok\":true}");
    buf_clear(&body);
    CHECK_OK(cli_http_get("127.0.0.1", port, "/missing", 2000, &status, &body, &err));
    CHECK_EQ_INT(status, 404);
    buf_deinit(&body);
    loop_stop(l);
    pthread_join(th, NULL);
    http_server_free(s);
    loop_free(l);
    /* Nothing listens there any more. */
    CHECK_EQ_INT(cli_http_get("127.0.0.1", port, "/x", 2000, &status, &body, &err), ERR_IO);
    CHECK_EQ_STR(err.msg, "Connection refused");
    buf_deinit(&body);
}

/* The status endpoints as serve registers them, before the store is open (db NULL). */
TEST(status_endpoints_without_store)
{
    err_t err;
    loop_t *l = loop_new(&err);
    REQUIRE(l != NULL);
    http_server_t *s = http_server_new(l);
    REQUIRE_OK(http_server_listen(s, "main", "127.0.0.1", 0, &err));
    REQUIRE_OK(status_register(s, NULL, clock_now_ms() - 5000));
    status_set_data_dir(test_tmpdir());
    selfmon_counter_add(selfmon_counter("skillscope_received_items_total", "Items.",
                                        "signal=\"logs\",outcome=\"accepted\""),
                        3);
    int port = http_server_port(s, "main");
    pthread_t th;
    pthread_create(&th, NULL, run_loop, l);
    int status = 0;
    buf_t body = BUF_INIT;
    CHECK_OK(cli_http_get("127.0.0.1", port, "/-/healthy", 2000, &status, &body, &err));
    CHECK_EQ_INT(status, 200);
    CHECK_EQ_STRN(buf_str(&body), "Skillscope is Healthy.\n");
    buf_clear(&body);
    CHECK_OK(cli_http_get("127.0.0.1", port, "/-/ready", 2000, &status, &body, &err));
    CHECK_EQ_INT(status, 503);
    buf_clear(&body);
    CHECK_OK(cli_http_get("127.0.0.1", port, "/api/skillscope/status", 2000, &status, &body, &err));
    CHECK_EQ_INT(status, 200);
    const char *j = buf_cstr(&body);
    CHECK(strstr(j, "\"ready\":false") != NULL);
    CHECK(strstr(j, "\"logs\":{\"received\":") != NULL);
    CHECK(strstr(j, "\"storage\"") == NULL);
    CHECK(strstr(j, "\"uptime_seconds\":5") != NULL);
    char addr[64];
    snprintf(addr, sizeof addr, "\"address\":\"127.0.0.1:%d\"", port);
    CHECK(strstr(j, addr) != NULL);
    buf_clear(&body);
    CHECK_OK(cli_http_get("127.0.0.1", port, "/metrics", 2000, &status, &body, &err));
    CHECK_EQ_INT(status, 200);
    j = buf_cstr(&body);
    CHECK(strstr(j, "\nskillscope_ready 0\n") != NULL);
    CHECK(strstr(j, "# TYPE process_resident_memory_bytes gauge\n") != NULL);
    CHECK(strstr(j, "skillscope_http_requests_total{handler=\"/-/ready\",code=\"5xx\"} ") != NULL);
    CHECK(strstr(j, "# TYPE skillscope_data_dir_bytes gauge\n") != NULL);
    buf_deinit(&body);
    loop_stop(l);
    pthread_join(th, NULL);
    http_server_free(s);
    loop_free(l);
    status_set_data_dir(NULL);
}
