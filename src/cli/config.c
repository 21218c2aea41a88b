/*
 * config.c - server settings from defaults, a YAML file, SKILLSCOPE_* variables and flags.
 *
 * One table describes every setting once: its flag, environment variable, YAML key, kind (string,
 * port, duration, size, fsync mode, log level) and where it lands in config_t. Loading is three
 * passes over that table in increasing precedence: the YAML file's top-level scalars, then the
 * environment, then the flags. Flags are scanned before anything is read, so an unknown flag or
 * --help is reported without touching files. Every value goes through one setter, so a bad value
 * gets the same message whatever its source, prefixed with where it came from: "--http-port",
 * "SKILLSCOPE_HTTP_PORT" or "skillscope.yaml:4: http_port".
 *
 * The libyaml document is kept in config_t: later parts of the program read their own top-level
 * keys (scrape_configs, rule_files, ...) with config_yaml_get. Those keys are listed in
 * reserved_keys so this file accepts them; a key in neither table is an error, which catches
 * typos like "retenton:".
 */
#include "cli/config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"

enum kind { K_STR, K_PORT, K_DURATION, K_SIZE, K_COUNT, K_FSYNC, K_LEVEL, K_FILE };

typedef struct opt {
    const char *flag; /* without "--" */
    const char *env;
    const char *yaml; /* NULL = not settable from the file */
    const char *metavar;
    const char *help;
    enum kind kind;
    size_t off;
} opt_t;

static const opt_t opts[] = {
    {"data-dir", "SKILLSCOPE_DATA_DIR", "data_dir", "DIR",
     "where data is stored (default ./skillscope-data)", K_STR, offsetof(config_t, data_dir)},
    {"listen", "SKILLSCOPE_LISTEN", "listen", "HOST",
     "address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)", K_STR,
     offsetof(config_t, listen)},
    {"http-port", "SKILLSCOPE_HTTP_PORT", "http_port", "PORT",
     "UI, query APIs and other ingest (default 3000)", K_PORT, offsetof(config_t, http_port)},
    {"otlp-http-port", "SKILLSCOPE_OTLP_HTTP_PORT", "otlp_http_port", "PORT",
     "OTLP/HTTP receiver (default 4318, 0 = off)", K_PORT, offsetof(config_t, otlp_http_port)},
    {"otlp-grpc-port", "SKILLSCOPE_OTLP_GRPC_PORT", "otlp_grpc_port", "PORT",
     "OTLP/gRPC receiver (default 4317, 0 = off)", K_PORT, offsetof(config_t, otlp_grpc_port)},
    {"otlp-grpc-max-recv-bytes", "SKILLSCOPE_OTLP_GRPC_MAX_RECV_BYTES", "otlp_grpc_max_recv_bytes",
     "SIZE", "largest OTLP/gRPC message accepted, compressed or inflated (default 4MiB)", K_SIZE,
     offsetof(config_t, otlp_grpc_max_recv_bytes)},
    {"retention", "SKILLSCOPE_RETENTION", "retention", "DURATION",
     "delete data older than this, e.g. 30d, 12h (default 90d, 0 = forever)", K_DURATION,
     offsetof(config_t, retention_ms)},
    {"retention-size", "SKILLSCOPE_RETENTION_SIZE", "retention_size", "SIZE",
     "delete oldest data beyond this size, e.g. 500MiB (default 10GiB, 0 = unlimited)", K_SIZE,
     offsetof(config_t, retention_bytes)},
    {"wal-fsync", "SKILLSCOPE_WAL_FSYNC", "wal_fsync", "MODE",
     "batch: fsync per group commit (default); always: per request; off: leave it to the OS",
     K_FSYNC, offsetof(config_t, wal_fsync)},
    {"log-level", "SKILLSCOPE_LOG_LEVEL", "log_level", "LEVEL",
     "debug, info (default), warn or error", K_LEVEL, offsetof(config_t, log_level)},
    {"cors-origin", "SKILLSCOPE_CORS_ORIGIN", "cors_origin", "ORIGIN",
     "Access-Control-Allow-Origin for browsers (default *, \"\" = no CORS)", K_STR,
     offsetof(config_t, cors_origin)},
    {"query.timeout", "SKILLSCOPE_QUERY_TIMEOUT", "query_timeout", "DURATION",
     "maximum time a PromQL query may take (default 2m, 0 = no limit)", K_DURATION,
     offsetof(config_t, query_timeout_ms)},
    {"query.max-samples", "SKILLSCOPE_QUERY_MAX_SAMPLES", "query_max_samples", "N",
     "maximum samples a single query may load into memory (default 50000000)", K_COUNT,
     offsetof(config_t, query_max_samples)},
    {"dashboards", "SKILLSCOPE_DASHBOARDS", "dashboards", "DIR",
     "your dashboards (JSON, ours or Grafana's), shown beside the built-in ones; imports through "
     "POST /api/dashboards/db are saved here (default <data-dir>/dashboards)",
     K_STR, offsetof(config_t, dashboards_dir)},
    {"config", "SKILLSCOPE_CONFIG", NULL, "FILE", "YAML configuration file", K_FILE,
     offsetof(config_t, config_file)},
};
#define N_OPTS (sizeof opts / sizeof opts[0])

/* Top-level YAML keys read by other parts of the program (through config_yaml_get). A part that
 * starts reading a new key adds it here. */
static const char *const reserved_keys[] = {
    "scrape_configs", "sources",  "rule_files", "alerting", "remote_write", "remote_read",
    "global",         "pipeline", "redaction",  "limits",   "span_metrics", "log_metrics",
    "pricing",        "insights", "llm",        "git",      "notifiers",    "receivers",
    "export",         "upstream", "otlp",       "tail",     "junit",
};

void config_init(config_t *c)
{
    memset(c, 0, sizeof *c);
    arena_init(&c->arena, 1024);
    c->data_dir = "./skillscope-data";
    c->listen = "127.0.0.1";
    c->http_port = 3000;
    c->otlp_http_port = 4318;
    c->otlp_grpc_port = 4317;
    c->otlp_grpc_max_recv_bytes = 4u << 20;
    c->retention_ms = 90LL * 86400 * 1000;
    c->retention_bytes = 10ULL << 30;
    c->wal_fsync = WAL_FSYNC_BATCH;
    c->log_level = LOG_INFO;
    c->cors_origin = "*";
    c->query_timeout_ms = 2 * 60 * 1000;
    c->query_max_samples = 50000000;
}

void config_deinit(config_t *c)
{
    if (c->has_yaml)
        yaml_document_delete(&c->yaml);
    c->has_yaml = false;
    arena_deinit(&c->arena);
}

const char *config_fsync_name(wal_fsync_mode_t m)
{
    switch (m) {
    case WAL_FSYNC_ALWAYS:
        return "always";
    case WAL_FSYNC_OFF:
        return "off";
    default:
        return "batch";
    }
}

/* Applies one value; src names the origin for messages ("--http-port", "SKILLSCOPE_...", ...). */
static int set_value(config_t *c, const opt_t *o, const char *v, const char *src, err_t *err)
{
    char *field = (char *)c + o->off;
    str_t s = str_cstr(v);
    switch (o->kind) {
    case K_STR:
    case K_FILE:
        if (o->kind == K_FILE && !v[0])
            return err_set(err, ERR_INVAL, "%s: empty file name", src);
        if (!v[0] && strcmp(o->flag, "cors-origin") != 0)
            return err_set(err, ERR_INVAL, "%s: must not be empty", src);
        *(const char **)field = arena_strndup(&c->arena, v, s.len);
        return 0;
    case K_PORT: {
        char *end;
        errno = 0;
        long p = strtol(v, &end, 10);
        bool zero_ok = strcmp(o->flag, "http-port") != 0;
        if (!v[0] || *end || errno || p < (zero_ok ? 0 : 1) || p > 65535)
            return err_set(err, ERR_INVAL, "%s: invalid port \"%s\" (want %s..65535)", src, v,
                           zero_ok ? "0" : "1");
        *(int *)field = (int)p;
        return 0;
    }
    case K_DURATION: {
        int64_t ms;
        if (strcmp(v, "0") == 0) {
            ms = 0;
        } else {
            err_t e;
            if (duration_parse_ms(s, &ms, &e) != 0)
                return err_set(err, ERR_INVAL, "%s: %s", src, e.msg);
        }
        *(int64_t *)field = ms;
        return 0;
    }
    case K_SIZE: {
        uint64_t b;
        err_t e;
        if (size_parse_bytes(s, &b, &e) != 0)
            return err_set(err, ERR_INVAL, "%s: %s", src, e.msg);
        *(uint64_t *)field = b;
        return 0;
    }
    case K_COUNT: {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(v, &end, 10);
        if (!v[0] || *end || errno || v[0] == '-' || n == 0)
            return err_set(err, ERR_INVAL, "%s: invalid count \"%s\" (want a positive integer)",
                           src, v);
        *(uint64_t *)field = (uint64_t)n;
        return 0;
    }
    case K_FSYNC:
        if (strcmp(v, "batch") == 0)
            *(wal_fsync_mode_t *)field = WAL_FSYNC_BATCH;
        else if (strcmp(v, "always") == 0)
            *(wal_fsync_mode_t *)field = WAL_FSYNC_ALWAYS;
        else if (strcmp(v, "off") == 0)
            *(wal_fsync_mode_t *)field = WAL_FSYNC_OFF;
        else
            return err_set(err, ERR_INVAL, "%s: invalid value \"%s\" (want batch, always or off)",
                           src, v);
        return 0;
    case K_LEVEL: {
        static const char *const names[] = {"debug", "info", "warn", "error"};
        for (int i = 0; i < 4; i++) {
            if (strcmp(v, names[i]) == 0) {
                *(int *)field = i;
                return 0;
            }
        }
        if (strcmp(v, "warning") == 0) {
            *(int *)field = LOG_WARN;
            return 0;
        }
        return err_set(err, ERR_INVAL,
                       "%s: invalid log level \"%s\" (want debug, info, warn or error)", src, v);
    }
    }
    return ERR_INVAL;
}

static const opt_t *find_flag(const char *name, size_t n)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if (strlen(opts[i].flag) == n && strncmp(opts[i].flag, name, n) == 0)
            return &opts[i];
    return NULL;
}

typedef struct flag_val {
    const opt_t *opt;
    const char *value;
    const char *spelled; /* as typed, for messages */
} flag_val_t;

/* Splits argv into (option, value) pairs without applying them. */
static int scan_flags(config_t *c, const char *cmd, int argc, char **argv, flag_val_t **out,
                      size_t *n_out, err_t *err)
{
    flag_val_t *fv = ARENA_ARRAY(&c->arena, flag_val_t, argc > 0 ? (size_t)argc : 1);
    size_t n = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "-help") == 0)
            return CONFIG_HELP;
        if (a[0] != '-')
            return err_set(err, ERR_INVAL, "unexpected argument \"%s\" (see skillscope %s --help)",
                           a, cmd);
        const char *name = a + (a[1] == '-' ? 2 : 1);
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const opt_t *o = find_flag(name, nlen);
        if (!o)
            return err_set(err, ERR_INVAL, "unknown flag --%.*s (see skillscope %s --help)",
                           (int)nlen, name, cmd);
        const char *v;
        if (eq) {
            v = eq + 1;
        } else {
            if (i + 1 >= argc)
                return err_set(err, ERR_INVAL, "flag --%s needs a value (%s)", o->flag, o->metavar);
            v = argv[++i];
        }
        fv[n].opt = o;
        fv[n].value = v;
        fv[n].spelled = arena_sprintf(&c->arena, "--%s", o->flag);
        n++;
    }
    *out = fv;
    *n_out = n;
    return 0;
}

static const char *scalar(yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int load_yaml(config_t *c, const char *path, err_t *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(err, ERR_IO, "%s: %s", path, strerror(errno));
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    int ok = yaml_parser_load(&p, &c->yaml);
    int rc = 0;
    if (!ok) {
        rc = err_set(err, ERR_PARSE, "%s:%zu:%zu: %s%s%s", path, p.problem_mark.line + 1,
                     p.problem_mark.column + 1, p.problem ? p.problem : "invalid YAML",
                     p.context ? " " : "", p.context ? p.context : "");
    }
    yaml_parser_delete(&p);
    fclose(f);
    if (!ok)
        return rc;
    c->has_yaml = true;

    yaml_node_t *root = yaml_document_get_root_node(&c->yaml);
    if (!root || (root->type == YAML_SCALAR_NODE && !root->data.scalar.length))
        return 0; /* empty file */
    if (root->type != YAML_MAPPING_NODE)
        return err_set(err, ERR_PARSE, "%s:%zu: the top level must be a mapping of settings", path,
                       root->start_mark.line + 1);
    for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *k = yaml_document_get_node(&c->yaml, pr->key);
        yaml_node_t *v = yaml_document_get_node(&c->yaml, pr->value);
        const char *key = scalar(k);
        size_t line = k ? k->start_mark.line + 1 : 0;
        if (!key)
            return err_set(err, ERR_PARSE, "%s:%zu: keys must be plain strings", path, line);
        const opt_t *o = NULL;
        for (size_t i = 0; i < N_OPTS; i++)
            if (opts[i].yaml && strcmp(opts[i].yaml, key) == 0)
                o = &opts[i];
        if (!o) {
            bool reserved = false;
            for (size_t i = 0; i < sizeof reserved_keys / sizeof reserved_keys[0]; i++)
                reserved |= strcmp(reserved_keys[i], key) == 0;
            if (reserved)
                continue;
            return err_set(err, ERR_PARSE, "%s:%zu: unknown setting \"%s\"", path, line, key);
        }
        const char *val = scalar(v);
        char src[600];
        snprintf(src, sizeof src, "%s:%zu: %s", path, line, key);
        if (!val)
            return err_set(err, ERR_PARSE, "%s: expected a single value", src);
        if ((rc = set_value(c, o, val, src, err)) != 0)
            return rc;
    }
    return 0;
}

int config_load(config_t *c, const char *cmd, int argc, char **argv, err_t *err)
{
    flag_val_t *fv = NULL;
    size_t n = 0;
    int rc = scan_flags(c, cmd, argc, argv, &fv, &n, err);
    if (rc != 0)
        return rc;

    const char *file = getenv("SKILLSCOPE_CONFIG");
    if (file && !file[0])
        file = NULL;
    for (size_t i = 0; i < n; i++)
        if (fv[i].opt->kind == K_FILE)
            file = fv[i].value;
    if (file) {
        if (!file[0])
            return err_set(err, ERR_INVAL, "--config: empty file name");
        c->config_file = arena_strndup(&c->arena, file, strlen(file));
        if ((rc = load_yaml(c, c->config_file, err)) != 0)
            return rc;
    }
    for (size_t i = 0; i < N_OPTS; i++) {
        const char *v = getenv(opts[i].env);
        bool flagged = false; /* a flag overrides the variable, even a malformed one */
        for (size_t k = 0; k < n; k++)
            flagged |= fv[k].opt == &opts[i];
        if (!v || opts[i].kind == K_FILE || flagged)
            continue;
        if (!v[0] && strcmp(opts[i].flag, "cors-origin") != 0)
            continue; /* an empty variable counts as unset, except where "" means "off" */
        if ((rc = set_value(c, &opts[i], v, opts[i].env, err)) != 0)
            return rc;
    }
    for (size_t i = 0; i < n; i++)
        if ((rc = set_value(c, fv[i].opt, fv[i].value, fv[i].spelled, err)) != 0)
            return rc;
    return 0;
}

void config_usage(FILE *f)
{
    for (size_t i = 0; i < N_OPTS; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s %s", opts[i].flag, opts[i].metavar);
        fprintf(f, "  %-26s %s\n  %-26s [env %s]\n", left, opts[i].help, "", opts[i].env);
    }
}

yaml_document_t *config_yaml(config_t *c) { return c->has_yaml ? &c->yaml : NULL; }

yaml_node_t *config_yaml_get(config_t *c, const char *key)
{
    if (!c->has_yaml)
        return NULL;
    yaml_node_t *root = yaml_document_get_root_node(&c->yaml);
    if (!root || root->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top;
         pr++) {
        const char *k = scalar(yaml_document_get_node(&c->yaml, pr->key));
        if (k && strcmp(k, key) == 0)
            return yaml_document_get_node(&c->yaml, pr->value);
    }
    return NULL;
}
