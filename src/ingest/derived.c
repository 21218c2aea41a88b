/*
 * derived.c - owns the derived-metrics state of the running server (span metrics, AI usage):
 * reads its configuration, feeds it the decoded requests and writes its counters on a timer (see
 * derived.h).
 *
 * A flush whose batch the store refuses (WAL queue full, store closing) is simply dropped: the
 * counters are cumulative, so the next flush writes the same totals.
 */
#include "ingest/derived.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/arena.h"
#include "base/clock.h"
#include "base/log.h"
#include "pipeline/genai.h"
#include "pipeline/metreg.h"
#include "pipeline/servicegraph.h"
#include "pipeline/spanmetrics.h"

static struct {
    metreg_t *reg;
    spanmetrics_t *sm;
    genai_t *genai;
    servicegraph_t *graph;
    db_t *db;
    loop_timer_t *timer;
    int64_t flush_ms;
} g;

typedef struct cfg {
    spanmetrics_opts_t span;
    genai_price_t *prices;
    size_t n_prices;
    bool enabled;
    int64_t flush_ms, stale_ms;
    size_t max_series;
} cfg_t;

#define DEFAULT_FLUSH_MS 15000
#define MAX_CFG_DIMS 64
#define MAX_CFG_BUCKETS 64

void derived_observe_traces(const otlp_traces_t *t)
{
    if (!g.reg)
        return;
    spanmetrics_observe(g.sm, t);
    genai_observe_traces(g.genai, t);
    servicegraph_observe(g.graph, t, clock_now_ms());
}

void derived_observe_logs(const otlp_logs_t *l)
{
    if (g.reg)
        genai_observe_logs(g.genai, l);
}

static void flush(void)
{
    db_batch_t *b = db_batch_new();
    if (!b)
        return;
    int64_t now = clock_now_ms();
    servicegraph_expire(g.graph, now);
    if (metreg_flush(g.reg, now, g.flush_ms, b) == 0) {
        db_batch_free(b);
        return;
    }
    int rc = db_commit(g.db, b, NULL, NULL);
    if (rc != 0) {
        db_batch_free(b);
        log_warn("span metrics not written this time", "err=%s", err_name(rc));
    }
}

static void on_timer(void *arg)
{
    (void)arg;
    flush();
}

static const char *scalar(yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int bad_in(err_t *err, const char *file, yaml_node_t *n, const char *section,
                  const char *key, const char *what)
{
    return err_set(err, ERR_INVAL, "%s:%zu: %s%s%s: %s", file ? file : "config",
                   n ? n->start_mark.line + 1 : 0, section, *key ? "." : "", key, what);
}

static int bad(err_t *err, const char *file, yaml_node_t *n, const char *key, const char *what)
{
    return bad_in(err, file, n, "span_metrics", key, what);
}

/* pricing: a list of {model, input, output, cache_read, cache_creation}. */
static int parse_pricing(yaml_document_t *doc, yaml_node_t *node, const char *file, arena_t *a,
                         cfg_t *c, err_t *err)
{
    if (node->type != YAML_SEQUENCE_NODE)
        return bad_in(err, file, node, "pricing", "", "expected a list of {model, input, output}");
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    c->prices = arena_calloc(a, n + 1, sizeof *c->prices);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *e = yaml_document_get_node(doc, node->data.sequence.items.start[i]);
        if (!e || e->type != YAML_MAPPING_NODE)
            return bad_in(err, file, e, "pricing", "", "expected {model, input, output}");
        genai_price_t *p = &c->prices[i];
        for (yaml_node_pair_t *kv = e->data.mapping.pairs.start; kv < e->data.mapping.pairs.top;
             kv++) {
            const char *key = scalar(yaml_document_get_node(doc, kv->key));
            yaml_node_t *v = yaml_document_get_node(doc, kv->value);
            const char *sv = scalar(v);
            if (!key || !sv)
                return bad_in(err, file, v, "pricing", key ? key : "?", "expected a scalar");
            if (strcmp(key, "model") == 0) {
                p->model = arena_strndup(a, sv, strlen(sv));
                continue;
            }
            double *dst = strcmp(key, "input") == 0            ? &p->input
                          : strcmp(key, "output") == 0         ? &p->output
                          : strcmp(key, "cache_read") == 0     ? &p->cache_read
                          : strcmp(key, "cache_creation") == 0 ? &p->cache_creation
                                                               : NULL;
            if (!dst)
                return bad_in(err, file, v, "pricing", key,
                              "unknown key (have: model, input, output, cache_read, "
                              "cache_creation)");
            char *end = NULL;
            *dst = strtod(sv, &end);
            if (end == sv || *end || *dst < 0)
                return bad_in(err, file, v, "pricing", key,
                              "expected a price in USD per million tokens");
        }
        if (!p->model || !*p->model)
            return bad_in(err, file, e, "pricing", "model", "missing");
    }
    c->n_prices = n;
    return 0;
}

/* Fills o from node; strings live in a. */
static int parse(yaml_document_t *doc, yaml_node_t *node, const char *file, arena_t *a, cfg_t *c,
                 err_t *err)
{
    if (node->type != YAML_MAPPING_NODE)
        return bad(err, file, node, "", "expected a mapping");
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        const char *key = scalar(yaml_document_get_node(doc, p->key));
        yaml_node_t *v = yaml_document_get_node(doc, p->value);
        const char *sv = scalar(v);
        err_t e;
        if (!key)
            return bad(err, file, v, "?", "keys must be strings");
        if (strcmp(key, "enabled") == 0) {
            if (!sv || (strcasecmp(sv, "true") != 0 && strcasecmp(sv, "false") != 0))
                return bad(err, file, v, key, "expected true or false");
            c->enabled = strcasecmp(sv, "true") == 0;
        } else if (strcmp(key, "dimensions") == 0) {
            if (v->type != YAML_SEQUENCE_NODE)
                return bad(err, file, v, key, "expected a list of attribute names");
            size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
            if (n > MAX_CFG_DIMS)
                return bad(err, file, v, key, "too many dimensions (at most 64)");
            const char **dims = arena_alloc(a, (n + 1) * sizeof *dims);
            for (size_t i = 0; i < n; i++) {
                yaml_node_t *it = yaml_document_get_node(doc, v->data.sequence.items.start[i]);
                if (!scalar(it) || !*scalar(it))
                    return bad(err, file, it, key, "expected an attribute name");
                dims[i] = arena_strndup(a, scalar(it), strlen(scalar(it)));
            }
            c->span.dimensions = dims;
            c->span.n_dimensions = n;
        } else if (strcmp(key, "histogram_buckets") == 0) {
            if (v->type != YAML_SEQUENCE_NODE)
                return bad(err, file, v, key, "expected a list of seconds");
            size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
            if (n == 0 || n > MAX_CFG_BUCKETS)
                return bad(err, file, v, key, "expected 1 to 64 bucket bounds");
            double *bs = arena_alloc(a, n * sizeof *bs);
            for (size_t i = 0; i < n; i++) {
                yaml_node_t *it = yaml_document_get_node(doc, v->data.sequence.items.start[i]);
                const char *s = scalar(it);
                char *end = NULL;
                bs[i] = s ? strtod(s, &end) : 0;
                if (!s || end == s || *end)
                    return bad(err, file, it, key, "expected a number of seconds");
            }
            c->span.buckets_s = bs;
            c->span.n_buckets = n;
        } else if (strcmp(key, "flush_interval") == 0 || strcmp(key, "stale_after") == 0) {
            int64_t ms;
            if (!sv || duration_parse_ms(str_cstr(sv), &ms, &e) != 0 || ms <= 0)
                return bad(err, file, v, key, "expected a positive duration such as 15s");
            if (key[0] == 'f')
                c->flush_ms = ms;
            else
                c->stale_ms = ms;
        } else if (strcmp(key, "max_series") == 0) {
            char *end = NULL;
            long long n = sv ? strtoll(sv, &end, 10) : 0;
            if (!sv || end == sv || *end || n <= 0)
                return bad(err, file, v, key, "expected a positive integer");
            c->max_series = (size_t)n;
        } else {
            return bad(err, file, v, key,
                       "unknown key (have: enabled, dimensions, histogram_buckets, "
                       "flush_interval, stale_after, max_series)");
        }
    }
    return 0;
}

int derived_start(loop_t *l, db_t *db, const derived_config_t *dc, err_t *err)
{
    cfg_t c = {.enabled = true, .flush_ms = DEFAULT_FLUSH_MS};
    arena_t a;
    arena_init(&a, 1024);
    int rc = dc->span_metrics ? parse(dc->doc, dc->span_metrics, dc->file, &a, &c, err) : 0;
    if (rc == 0 && dc->pricing)
        rc = parse_pricing(dc->doc, dc->pricing, dc->file, &a, &c, err);
    if (rc != 0 || !c.enabled)
        goto out;
    if (!(g.reg = metreg_new(c.stale_ms, c.max_series))) {
        rc = err_set(err, ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = spanmetrics_new(&c.span, g.reg, &g.sm, err)) != 0 ||
        (rc = genai_new(g.reg, c.prices, c.n_prices, &g.genai, err)) != 0 ||
        (rc = servicegraph_new(g.reg, 0, 0, &g.graph, err)) != 0)
        goto out;
    g.db = db;
    g.flush_ms = c.flush_ms;
    if (!(g.timer = loop_timer_start(l, c.flush_ms, true, on_timer, NULL)))
        rc = err_set(err, ERR_NOMEM, "cannot start the span metrics timer");
out:
    if (rc != 0) {
        spanmetrics_free(g.sm);
        genai_free(g.genai);
        servicegraph_free(g.graph);
        metreg_free(g.reg);
        memset(&g, 0, sizeof g);
    }
    arena_deinit(&a);
    return rc;
}

void derived_stop(void)
{
    if (!g.reg)
        return;
    loop_timer_stop(g.timer);
    flush();
    spanmetrics_free(g.sm);
    genai_free(g.genai);
    servicegraph_free(g.graph);
    metreg_free(g.reg);
    memset(&g, 0, sizeof g);
}
