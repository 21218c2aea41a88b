/*
 * serve.c - `skillscope serve`: the server in the foreground.
 *
 * Start-up order: bind every listener first (a port conflict fails fast, before the store is
 * touched), open the store (takes its lock, replays the WAL), write the pidfile, register the
 * routes, print the banner, run the loop. On the loop: db_event_fd readability runs db_poll
 * (commit completions: ingest replies only after the WAL is durable), a 60 s timer runs
 * db_maintain (cut head to blocks, compaction, retention).
 *
 * Shutdown on SIGINT/SIGTERM: /-/ready turns 503, the HTTP server stops accepting and the gRPC
 * server sends GOAWAY; both wait up to 10 s for in-flight requests and streams, then the loop
 * returns and the store is closed (pending commits finish, the head is flushed, the WAL closed).
 * A second signal skips the wait.
 */
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/version.h"
#include "cli/cli.h"
#include "ingest/derived.h"
#include "ingest/filelog.h"
#include "ingest/ingest.h"
#include "ingest/loki_push.h"
#include "ingest/otlp_grpc.h"
#include "ingest/remote_write.h"
#include "ingest/scrape.h"
#include "ingest/tail.h"
#include "net/grpc.h"
#include "net/http.h"
#include "net/loop.h"
#include "query/api.h"
#include "store/db.h"
#include "web/home.h"
#include "web/dashboards.h"
#include "web/status.h"
#include "web/ui.h"

#define MAINTAIN_INTERVAL_MS 15000
#define SHUTDOWN_GRACE_MS 10000

typedef struct server {
    config_t *cfg;
    loop_t *loop;
    http_server_t *http;
    grpc_server_t *grpc; /* NULL when the gRPC port is off */
    db_t *db;
    filelog_t *files; /* `sources:` tailers, NULL when none */
    tail_t *tail;     /* GET /api/skillscope/tail */
    /* scrape_configs, parsed before the store opens; then owned by the scrape manager */
    scrape_config_t *scrape_cfg;
    scrape_manager_t *scrape;
    int signals;
    int draining; /* servers still finishing their in-flight requests */
} server_t;

static void on_db_event(void *arg)
{
    server_t *s = arg;
    db_poll(s->db);
}

static void on_maintain(void *arg)
{
    server_t *s = arg;
    db_maintain(s->db, clock_now_ms());
}

static void on_drained(void *arg)
{
    server_t *s = arg;
    if (--s->draining <= 0)
        loop_stop(s->loop);
}

static void on_signal(int signo, void *arg)
{
    server_t *s = arg;
    if (s->signals++ > 0) {
        log_warn("second signal: stopping without waiting for requests", "signal=%d", signo);
        loop_stop(s->loop);
        return;
    }
    log_info("shutting down", "signal=%d inflight=%zu", signo, http_server_inflight(s->http));
    status_set_db(NULL);
    scrape_manager_stop(s->scrape); /* targets go away: their series get stale markers */
    s->draining = s->grpc ? 2 : 1;
    http_server_shutdown(s->http, SHUTDOWN_GRACE_MS, on_drained, s);
    if (s->grpc)
        grpc_server_shutdown(s->grpc, SHUTDOWN_GRACE_MS, on_drained, s);
}

static int listen_all(server_t *s, err_t *err)
{
    config_t *c = s->cfg;
    if (http_server_listen(s->http, "main", c->listen, c->http_port, err) != 0)
        return err->code;
    if (c->otlp_http_port &&
        http_server_listen(s->http, "otlp_http", c->listen, c->otlp_http_port, err) != 0)
        return err->code;
    if (c->otlp_grpc_port) {
        grpc_opts_t go = {.max_recv_bytes = (size_t)c->otlp_grpc_max_recv_bytes};
        s->grpc = grpc_server_new(s->loop, &go);
        if (!s->grpc)
            return err_set(err, ERR_NOMEM, "out of memory");
        if (grpc_server_listen(s->grpc, c->listen, c->otlp_grpc_port, err) != 0)
            return err->code;
    }
    return 0;
}

static int register_routes(server_t *s, int64_t start_ms, err_t *err)
{
    int rc = status_register(s->http, s->db, start_ms);
    if (rc != 0)
        return err_set(err, rc, "cannot register the status routes: %s", err_str(rc));
    if ((rc = ingest_register(s->http, s->db, err)) != 0)
        return rc;
    if ((rc = remote_write_register(s->http, s->db, err)) != 0)
        return rc;
    if ((rc = loki_push_register(s->http, s->db, err)) != 0)
        return rc;
    if (s->grpc && (rc = otlp_grpc_register(s->grpc, s->db, err)) != 0)
        return rc;
    if (!(s->tail = tail_register(s->http, s->db, err)))
        return err->code;
    s->scrape = scrape_manager_new(s->loop, s->db, s->scrape_cfg);
    s->scrape_cfg = NULL;
    if (!s->scrape)
        return err_set(err, ERR_NOMEM, "out of memory");
    char self[320];
    snprintf(self, sizeof self, "%s:%d", cli_client_host(s->cfg, true),
             http_server_port(s->http, "main"));
    scrape_manager_add_self(s->scrape, self);
    if ((rc = scrape_register(s->http, s->scrape, err)) != 0)
        return rc;
    api_set_limits(s->cfg->query_timeout_ms, s->cfg->query_max_samples);
    if ((rc = api_register(s->http, s->db, err)) != 0)
        return rc;
    if ((rc = home_register(s->http, "main")) != 0)
        return err_set(err, rc, "cannot register the home page: %s", err_str(rc));
    if ((rc = ui_register(s->http, "main")) != 0)
        return err_set(err, rc, "cannot register the UI: %s", err_str(rc));
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/dashboards", s->cfg->data_dir);
    if ((rc = dashboards_register(s->http, "main",
                                  s->cfg->dashboards_dir ? s->cfg->dashboards_dir : dir, err)) != 0)
        return rc;
    return 0;
}

static void banner(const config_t *c)
{
    printf("Skillscope %s is running.\n", skillscope_version);
    cli_print_endpoints(stdout, c);
    fflush(stdout);
}

/* Runs the server with configuration c until a signal stops it. Returns the exit code. */
static int serve_run(config_t *c)
{
    int64_t start_ms = clock_now_ms();
    log_set_level(c->log_level);
    err_t err;
    err_clear(&err);
    server_t s = {.cfg = c};
    int code = CLI_EXIT_ERROR;
    loop_watch_t *watch = NULL;

    s.loop = loop_new(&err);
    if (!s.loop) {
        fprintf(stderr, "skillscope serve: %s\n", err.msg);
        return CLI_EXIT_ERROR;
    }
    s.http = http_server_new(s.loop);
    if (!s.http) {
        fprintf(stderr, "skillscope serve: out of memory\n");
        goto out;
    }
    http_server_set_cors_origin(s.http, c->cors_origin);
    if (loop_on_signals(s.loop, on_signal, &s, &err) != 0) {
        fprintf(stderr, "skillscope serve: %s\n", err.msg);
        goto out;
    }
    if (c->otlp_grpc_max_recv_bytes == 0 || c->otlp_grpc_max_recv_bytes > (1u << 31)) {
        fprintf(stderr,
                "skillscope serve: --otlp-grpc-max-recv-bytes: %llu bytes is out of range (1B .. "
                "2GiB)\n",
                (unsigned long long)c->otlp_grpc_max_recv_bytes);
        code = CLI_EXIT_USAGE;
        goto out;
    }
    if (listen_all(&s, &err) != 0) {
        fprintf(stderr, "skillscope serve: cannot listen on %s\n", err.msg);
        goto out;
    }
    filelog_source_t *sources = NULL;
    size_t n_sources = 0;
    if (filelog_config_parse(config_yaml(c), config_yaml_get(c, "sources"), c->config_file,
                             &c->arena, &sources, &n_sources, &err) != 0) {
        fprintf(stderr, "skillscope serve: %s\n", err.msg);
        code = CLI_EXIT_USAGE;
        goto out;
    }
    if (scrape_config_parse(config_yaml(c), config_yaml_get(c, "scrape_configs"),
                            config_yaml_get(c, "global"), c->config_file, &s.scrape_cfg,
                            &err) != 0) {
        fprintf(stderr, "skillscope serve: %s\n", err.msg);
        code = CLI_EXIT_USAGE;
        goto out;
    }

    db_opts_t o;
    db_opts_default(&o);
    o.dir = c->data_dir;
    o.retention_ms = c->retention_ms;
    o.retention_bytes = c->retention_bytes;
    o.fsync_mode = c->wal_fsync;
    int rc = db_open(&o, &s.db, &err);
    if (rc != 0) {
        if (rc == ERR_EXISTS) {
            pid_t pid = cli_pidfile_pid(c);
            fprintf(stderr,
                    "skillscope serve: data directory %s is in use by another skillscope "
                    "process%s",
                    c->data_dir, pid ? "" : "\n");
            if (pid)
                fprintf(stderr, " (pid %d; stop it with skillscope stop --data-dir %s)\n", (int)pid,
                        c->data_dir);
        } else {
            fprintf(stderr, "skillscope serve: cannot open %s: %s\n", c->data_dir, err.msg);
        }
        goto out;
    }
    if (cli_pidfile_write(c, &err) != 0)
        log_warn("cannot write the pidfile", "err=\"%s\"", err.msg);
    char *abs_dir = realpath(c->data_dir, NULL);
    status_set_data_dir(abs_dir ? abs_dir : c->data_dir);
    free(abs_dir);
    if (register_routes(&s, start_ms, &err) != 0) {
        fprintf(stderr, "skillscope serve: %s\n", err.msg);
        goto out;
    }
    derived_config_t dc = {config_yaml(c), config_yaml_get(c, "span_metrics"),
                           config_yaml_get(c, "pricing"), c->config_file};
    if (derived_start(s.loop, s.db, &dc, &err) != 0) {
        fprintf(stderr, "skillscope serve: %s\n", err.msg);
        goto out;
    }
    watch = loop_watch_fd(s.loop, db_event_fd(s.db), on_db_event, &s);
    loop_timer_start(s.loop, MAINTAIN_INTERVAL_MS, true, on_maintain, &s);
    if (!watch) {
        fprintf(stderr, "skillscope serve: cannot watch the store's event fd\n");
        goto out;
    }
    if (n_sources &&
        !(s.files = filelog_start(s.loop, s.db, c->data_dir, sources, n_sources, &err))) {
        fprintf(stderr, "skillscope serve: %s\n", err.msg);
        goto out;
    }
    scrape_manager_start(s.scrape);
    banner(c);
    log_info("started", "version=%s data_dir=\"%s\" startup_ms=%lld", skillscope_version,
             c->data_dir, (long long)(clock_now_ms() - start_ms));
    if (loop_run(s.loop) != 0) {
        log_error("event loop failed", "backend=libevent");
        goto out;
    }
    code = CLI_EXIT_OK;

out:
    derived_stop();
    dashboards_free();
    status_set_db(NULL);
    if (watch)
        loop_watch_stop(watch);
    tail_free(s.tail);     /* ends live-view streams before the store goes */
    filelog_stop(s.files); /* no new commits; those in flight finish in db_close */
    scrape_manager_stop(s.scrape);
    scrape_manager_free(s.scrape);
    scrape_config_free(s.scrape_cfg);
    if (s.db) {
        db_close(s.db);
        cli_pidfile_remove(c);
        log_info("stopped", "data_dir=\"%s\"", c->data_dir);
    }
    filelog_free(s.files); /* saves the positions the store acknowledged */
    http_server_free(s.http);
    grpc_server_free(s.grpc);
    loop_free(s.loop);
    return code;
}

int cli_serve_main(int argc, char **argv)
{
    config_t c;
    config_init(&c);
    int code = cli_config(&c, "serve", argc, argv,
                          "Runs Skillscope in the foreground: receives OTLP traces, metrics and "
                          "logs,\nstores them in the data directory and serves the UI and the "
                          "Prometheus, Loki\nand Tempo APIs. Stops cleanly on Ctrl-C or SIGTERM.");
    if (code < 0)
        code = serve_run(&c);
    config_deinit(&c);
    return code;
}
