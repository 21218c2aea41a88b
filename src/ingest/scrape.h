/*
 * scrape.h - Prometheus-style scraping of /metrics endpoints.
 *
 * Configuration: the `scrape_configs` list of the YAML file given with --config, in Prometheus'
 * own format (global.scrape_interval / scrape_timeout defaults, job_name, scrape_interval,
 * scrape_timeout, metrics_path, scheme (http only), params, honor_labels, honor_timestamps,
 * static_configs, relabel_configs, metric_relabel_configs, sample_limit, body_size_limit).
 * scrape_config.c turns the libyaml nodes into a scrape_config_t (errors name file:line) and holds
 * the relabelling engine; scrape.c runs the targets and serves /api/v1/targets.
 *
 * Each target is scraped on its own timer at a fixed offset within its interval (a hash of the
 * target, as Prometheus spreads load), with the Accept header Prometheus sends; the exposition is
 * parsed by proto/expfmt, target labels are attached (honor_labels decides conflicts: exported_
 * prefix or the scraped value wins), metric_relabel_configs apply, and the samples plus the
 * series up, scrape_duration_seconds, scrape_samples_scraped,
 * scrape_samples_post_metric_relabeling and scrape_series_added are committed in one db batch
 * stamped with the scrape's start time. Series that were in the previous scrape and are missing
 * now get a stale marker; a failed scrape (connection error, HTTP status, parse error, sample
 * limit) stores none of its samples, sets up=0 and marks every series of the last scrape stale,
 * as does stopping the manager (the targets go away).
 *
 * Threads: everything runs on the loop thread.
 */
#ifndef INGEST_SCRAPE_H
#define INGEST_SCRAPE_H

#include <stdbool.h>
#include <stdint.h>

#include <yaml.h>

#include "base/arena.h"
#include "base/err.h"
#include "base/hash.h"
#include "base/str.h"
#include "net/http.h"
#include "net/loop.h"
#include "store/db.h"
#include "store/labels.h"

/* ---- relabelling (Prometheus relabel_config) ---- */

typedef enum relabel_action {
    RELABEL_REPLACE,
    RELABEL_KEEP,
    RELABEL_DROP,
    RELABEL_KEEPEQUAL,
    RELABEL_DROPEQUAL,
    RELABEL_HASHMOD,
    RELABEL_LABELMAP,
    RELABEL_LABELDROP,
    RELABEL_LABELKEEP,
    RELABEL_LOWERCASE,
    RELABEL_UPPERCASE,
} relabel_action_t;

typedef struct relabel_rule {
    relabel_action_t action;
    str_t *source_labels;
    size_t n_source;
    str_t separator; /* default ";" */
    str_t regex;     /* default "(.*)"; matched fully anchored */
    matcher_t re;    /* compiled regex (MATCH_RE) */
    str_t target_label;
    str_t replacement; /* default "$1" */
    uint64_t modulus;
    int line; /* in the config file, for messages */
} relabel_rule_t;

/* Applies rules in order to the label set in (need not be sorted); the result (sorted, no empty
 * values) is allocated in a. Returns false when a keep/drop rule dropped the set. */
bool relabel_apply(const relabel_rule_t *rules, size_t n, const labels_t *in, arena_t *a,
                   labels_t *out);
/* Go regexp Expand of template with the captures of the last match of re on src (the
 * replacement syntax: $1, ${1}, $name, ${name}, $$). Result appended to out. */
void relabel_expand(const matcher_t *re, str_t src, str_t tmpl, buf_t *out);

/* ---- configuration ---- */

typedef struct scrape_param {
    str_t name;
    str_t value; /* the first value, as Prometheus uses */
} scrape_param_t;

typedef struct scrape_static {
    str_t *targets;
    size_t n_targets;
    labels_t labels;
} scrape_static_t;

typedef struct scrape_job {
    str_t job_name;
    int64_t interval_ms, timeout_ms;
    str_t metrics_path; /* default /metrics */
    str_t scheme;       /* http */
    scrape_param_t *params;
    size_t n_params;
    bool honor_labels;
    bool honor_timestamps;    /* default true */
    uint64_t sample_limit;    /* 0 = none */
    uint64_t body_size_limit; /* 0 = the client's default (64 MiB) */
    scrape_static_t *statics;
    size_t n_statics;
    relabel_rule_t *relabel;
    size_t n_relabel;
    relabel_rule_t *metric_relabel;
    size_t n_metric_relabel;
    int line;
} scrape_job_t;

typedef struct scrape_config {
    arena_t arena;
    int64_t global_interval_ms, global_timeout_ms;
    scrape_job_t *jobs;
    size_t n_jobs;
} scrape_config_t;

/* Reads `scrape_configs` (node, may be NULL = no jobs) and the scrape defaults of `global`
 * (may be NULL) from doc. file names the YAML file in messages: "skillscope.yaml:12:
 * scrape_configs[0].scheme: https is not supported ...". On success *out is owned by the caller
 * (scrape_config_free). */
int scrape_config_parse(yaml_document_t *doc, yaml_node_t *node, yaml_node_t *global,
                        const char *file, scrape_config_t **out, err_t *err);
void scrape_config_free(scrape_config_t *c);

/* ---- targets and the manager ---- */

typedef struct scrape_manager scrape_manager_t;

/* cfg may be NULL (no targets); the manager takes it. Targets are built from the static configs
 * and relabelled here (dropped ones are listed under droppedTargets). db and l must outlive it. */
scrape_manager_t *scrape_manager_new(loop_t *l, db_t *db, scrape_config_t *cfg);
/* Skillscope's own metrics (what its /metrics serves) are stored every 15 s as job
 * "skillscope" with the given instance, read in process rather than over HTTP and not listed in
 * /api/v1/targets, so its ingest and storage health is queryable (the SRE dashboard) with no
 * configuration. A scrape_configs job named "skillscope" replaces this. Call before start. */
#define SCRAPE_SELF_JOB "skillscope"
#define SCRAPE_SELF_INTERVAL_MS 15000
void scrape_manager_add_self(scrape_manager_t *m, const char *instance);
/* Starts every target's timer. */
void scrape_manager_start(scrape_manager_t *m);
/* Stops scraping: cancels timers and scrapes in flight and commits stale markers for every
 * series the targets produced last (the targets go away). Idempotent. */
void scrape_manager_stop(scrape_manager_t *m);
void scrape_manager_free(scrape_manager_t *m);
size_t scrape_manager_n_targets(const scrape_manager_t *m);

/* Registers GET /api/v1/targets and /api/v1/targets/metadata on every listener. m must outlive
 * the routes. */
int scrape_register(http_server_t *srv, scrape_manager_t *m, err_t *err);

/* ---- staleness bookkeeping (exposed for tests) ---- */

/* One series a target produced: its labels (one malloc block), the scrape that last produced it
 * and the one that first did. */
typedef struct scrape_series {
    labels_t ls; /* ls.v == NULL: a free slot */
    uint32_t seen_epoch, born_epoch;
    bool track; /* false for series with their own timestamps: never marked stale */
} scrape_series_t;

/* The series of a target across scrapes. Each scrape is an epoch: scrape_seen_begin starts one,
 * scrape_seen_mark records each series (copying labels only the first time a series appears, so
 * a steady target costs one hash lookup per series), and scrape_seen_end (success) or
 * scrape_seen_fail (failure, or the target going away) writes the stale markers and forgets. */
typedef struct scrape_seen {
    u64map_t idx; /* labels_hash -> 1 + slot */
    scrape_series_t *v;
    size_t n, cap; /* slots used so far (some may be free) */
    uint32_t *free_slots;
    size_t n_free, cap_free;
    uint32_t epoch;
    size_t live;
} scrape_seen_t;

void scrape_seen_init(scrape_seen_t *s);
void scrape_seen_deinit(scrape_seen_t *s);
void scrape_seen_begin(scrape_seen_t *s);
/* Records ls (hash = labels_hash(ls)) in the current scrape: 1 when the series is new, 0 when an
 * earlier scrape had it, -1 when this scrape already had it (a duplicate sample). */
int scrape_seen_mark(scrape_seen_t *s, const labels_t *ls, uint64_t hash, bool track);
/* After a successful scrape: a stale marker at ts_ms in b for every tracked series the scrape did
 * not produce; those are forgotten. Returns the number of markers. */
size_t scrape_seen_end(scrape_seen_t *s, db_batch_t *b, int64_t ts_ms);
/* After a failed scrape (or when the target goes away, after scrape_seen_begin): a stale marker
 * for every tracked series known before the current scrape; everything is forgotten (series first
 * seen in the failed scrape were never stored and get none). Returns the number of markers. */
size_t scrape_seen_fail(scrape_seen_t *s, db_batch_t *b, int64_t ts_ms);

#endif
