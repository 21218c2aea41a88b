/*
 * derived.c - owns the span-metrics state of the running server: reads its configuration, feeds
 * it the decoded traces requests and writes its counters on a timer (see derived.h).
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
#include "pipeline/spanmetrics.h"

static struct {
    spanmetrics_t *sm;
    db_t *db;
    loop_timer_t *timer;
} g;

#define MAX_CFG_DIMS 64
#define MAX_CFG_BUCKETS 64

void derived_observe_traces(const otlp_traces_t *t)
{
    if (g.sm)
        spanmetrics_observe(g.sm, t);
}

static void flush(void)
{
    db_batch_t *b = db_batch_new();
    if (!b)
        return;
    if (spanmetrics_flush(g.sm, clock_now_ms(), b) == 0) {
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

static int bad(err_t *err, const char *file, yaml_node_t *n, const char *key, const char *what)
{
    return err_set(err, ERR_INVAL, "%s:%zu: span_metrics.%s: %s", file ? file : "config",
                   n ? n->start_mark.line + 1 : 0, key, what);
}

/* Fills o from node; strings live in a. */
static int parse(yaml_document_t *doc, yaml_node_t *node, const char *file, arena_t *a,
                 spanmetrics_opts_t *o, bool *enabled, err_t *err)
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
            *enabled = strcasecmp(sv, "true") == 0;
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
            o->dimensions = dims;
            o->n_dimensions = n;
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
            o->buckets_s = bs;
            o->n_buckets = n;
        } else if (strcmp(key, "flush_interval") == 0 || strcmp(key, "stale_after") == 0) {
            int64_t ms;
            if (!sv || duration_parse_ms(str_cstr(sv), &ms, &e) != 0 || ms <= 0)
                return bad(err, file, v, key, "expected a positive duration such as 15s");
            if (key[0] == 'f')
                o->flush_interval_ms = ms;
            else
                o->stale_ms = ms;
        } else if (strcmp(key, "max_series") == 0) {
            char *end = NULL;
            long long n = sv ? strtoll(sv, &end, 10) : 0;
            if (!sv || end == sv || *end || n <= 0)
                return bad(err, file, v, key, "expected a positive integer");
            o->max_series = (size_t)n;
        } else {
            return bad(err, file, v, key,
                       "unknown key (have: enabled, dimensions, histogram_buckets, "
                       "flush_interval, stale_after, max_series)");
        }
    }
    return 0;
}

int derived_start(loop_t *l, db_t *db, yaml_document_t *doc, yaml_node_t *node, const char *file,
                  err_t *err)
{
    spanmetrics_opts_t o = {0};
    bool enabled = true;
    arena_t a;
    arena_init(&a, 1024);
    int rc = node ? parse(doc, node, file, &a, &o, &enabled, err) : 0;
    if (rc == 0 && enabled && (rc = spanmetrics_new(&o, &g.sm, err)) == 0) {
        g.db = db;
        g.timer = loop_timer_start(l, spanmetrics_flush_interval_ms(g.sm), true, on_timer, NULL);
        if (!g.timer) {
            spanmetrics_free(g.sm);
            g.sm = NULL;
            rc = err_set(err, ERR_NOMEM, "cannot start the span metrics timer");
        }
    }
    arena_deinit(&a);
    return rc;
}

void derived_stop(void)
{
    if (!g.sm)
        return;
    loop_timer_stop(g.timer);
    flush();
    spanmetrics_free(g.sm);
    memset(&g, 0, sizeof g);
}
