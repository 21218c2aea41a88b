/*
 * config.h - the server's settings, from flags, SKILLSCOPE_* environment variables and an
 * optional YAML file, in that order of precedence over the built-in defaults.
 *
 *   flag               env                          YAML key        default
 *   --data-dir         SKILLSCOPE_DATA_DIR          data_dir        ./skillscope-data
 *   --listen           SKILLSCOPE_LISTEN            listen          127.0.0.1
 *   --http-port        SKILLSCOPE_HTTP_PORT         http_port       3000
 *   --otlp-http-port   SKILLSCOPE_OTLP_HTTP_PORT    otlp_http_port  4318 (0 = off)
 *   --otlp-grpc-port   SKILLSCOPE_OTLP_GRPC_PORT    otlp_grpc_port  4317 (0 = off)
 *   --otlp-grpc-max-recv-bytes SKILLSCOPE_OTLP_GRPC_MAX_RECV_BYTES otlp_grpc_max_recv_bytes 4MiB
 *   --retention        SKILLSCOPE_RETENTION         retention       90d  (0 = forever)
 *   --retention-size   SKILLSCOPE_RETENTION_SIZE    retention_size  10GiB (0 = unlimited)
 *   --wal-fsync        SKILLSCOPE_WAL_FSYNC         wal_fsync       batch (always | off)
 *   --log-level        SKILLSCOPE_LOG_LEVEL         log_level       info (debug | warn | error)
 *   --cors-origin      SKILLSCOPE_CORS_ORIGIN       cors_origin     *
 *   --dashboards DIR   SKILLSCOPE_DASHBOARDS        dashboards      <data-dir>/dashboards
 *   --config FILE      SKILLSCOPE_CONFIG            -               none
 *
 * Flags are "--name value" or "--name=value". Top-level YAML keys that no issue owns yet are
 * errors; the keys owned by other parts (scrape_configs, rule_files, alerting, remote_write, ...)
 * are accepted here and read by their owners through config_yaml_get().
 */
#ifndef CLI_CONFIG_H
#define CLI_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include <yaml.h>

#include "base/arena.h"
#include "base/err.h"
#include "store/db.h"

/* config_load's return value when --help / -h was given. */
#define CONFIG_HELP 1

typedef struct config {
    const char *data_dir;
    const char *listen;
    int http_port;
    int otlp_http_port; /* 0 = off */
    int otlp_grpc_port; /* 0 = off */
    /* the largest OTLP/gRPC message accepted, compressed or inflated */
    uint64_t otlp_grpc_max_recv_bytes;
    int64_t retention_ms;
    uint64_t retention_bytes;
    wal_fsync_mode_t wal_fsync;
    int log_level; /* LOG_* */
    const char *cors_origin;
    int64_t query_timeout_ms;   /* PromQL evaluation time limit; 0 = none */
    uint64_t query_max_samples; /* samples one query may hold in memory */
    const char *dashboards_dir; /* NULL = <data_dir>/dashboards */
    const char *config_file;    /* NULL when none */

    arena_t arena;        /* the strings above */
    yaml_document_t yaml; /* valid when has_yaml */
    bool has_yaml;
} config_t;

/* Sets the defaults. */
void config_init(config_t *c);
void config_deinit(config_t *c);

/* Reads the YAML file (from --config or SKILLSCOPE_CONFIG), then the environment, then the flags in
 * argv[1..argc) (argv[0] is the subcommand name, cmd, used in messages). Returns 0, CONFIG_HELP,
 * or ERR_INVAL / ERR_PARSE / ERR_IO with a message naming the flag, variable or file:line, e.g.
 * "unknown flag --prot (see skillscope serve --help)" or "--retention: invalid duration \"9x\"". */
int config_load(config_t *c, const char *cmd, int argc, char **argv, err_t *err);

/* Prints the flag table (for each subcommand's --help). */
void config_usage(FILE *f);

/* The value node of a top-level key of the YAML file, or NULL when there is no file or no such
 * key. The node belongs to the document in c. */
yaml_node_t *config_yaml_get(config_t *c, const char *key);
yaml_document_t *config_yaml(config_t *c);

/* "batch", "always", "off". */
const char *config_fsync_name(wal_fsync_mode_t m);

#endif
