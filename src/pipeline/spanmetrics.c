/*
 * spanmetrics.c - span counts, latency histograms and sizes per label set (see spanmetrics.h):
 * builds each span's label set once, hashes it once, and adds to the three families in the
 * registry.
 */
#include "pipeline/spanmetrics.h"

#include <stdlib.h>
#include <string.h>

#include "pipeline/promname.h"

#define MAX_DIMS 64

const char *const spanmetrics_default_dimensions[] = {
    "test.id",
    "test.category",
    "test.result",
    "test.actual_skill",
    "test.expected_skill",
    "claude.model",
    "routing.confidence",
    "skill.name",
    "skill.version",
    "skill.md.hash",
    "vcs.branch",
    "vcs.commit.sha",
    "worker.id",
    "error.type",
    "gen_ai.request.model",
    "gen_ai.operation.name",
    NULL,
};

const double spanmetrics_default_buckets[] = {
    0.002, 0.004, 0.008, 0.016,  0.032,  0.064,  0.128,   0.256,   0.512,   1.024,
    2.048, 4.096, 8.192, 16.384, 32.768, 65.536, 131.072, 262.144, 524.288,
};
const size_t spanmetrics_n_default_buckets =
    sizeof spanmetrics_default_buckets / sizeof spanmetrics_default_buckets[0];

struct spanmetrics {
    str_t *dims;      /* attribute names */
    str_t *dim_label; /* their label names */
    size_t n_dims;
    metreg_family_t *calls, *size, *latency;
    arena_t arena; /* dims */
};

static const str_t kind_names[] = {
    STR("SPAN_KIND_UNSPECIFIED"), STR("SPAN_KIND_INTERNAL"), STR("SPAN_KIND_SERVER"),
    STR("SPAN_KIND_CLIENT"),      STR("SPAN_KIND_PRODUCER"), STR("SPAN_KIND_CONSUMER"),
};
static const str_t status_names[] = {STR("STATUS_CODE_UNSET"), STR("STATUS_CODE_OK"),
                                     STR("STATUS_CODE_ERROR")};

int spanmetrics_new(const spanmetrics_opts_t *o, metreg_t *reg, spanmetrics_t **out, err_t *err)
{
    spanmetrics_opts_t def = {0};
    if (!o)
        o = &def;
    *out = NULL;
    const char *const *dims = o->dimensions;
    size_t n_dims = o->n_dimensions;
    if (!dims)
        for (dims = spanmetrics_default_dimensions, n_dims = 0; dims[n_dims];)
            n_dims++;
    if (n_dims > MAX_DIMS)
        return err_set(err, ERR_INVAL, "span metrics: %zu dimensions (at most %d)", n_dims,
                       MAX_DIMS);
    spanmetrics_t *sm = calloc(1, sizeof *sm);
    if (!sm)
        return err_set(err, ERR_NOMEM, "out of memory");
    arena_init(&sm->arena, 1024);
    sm->dims = arena_alloc(&sm->arena, (n_dims + 1) * sizeof *sm->dims);
    sm->dim_label = arena_alloc(&sm->arena, (n_dims + 1) * sizeof *sm->dim_label);
    for (size_t i = 0; i < n_dims; i++) {
        sm->dims[i] = arena_str(&sm->arena, str_cstr(dims[i]));
        sm->dim_label[i] = promname_label(&sm->arena, str_cstr(dims[i]));
        if (!sm->dim_label[i].len) {
            err_set(err, ERR_INVAL, "span metrics: dimension \"%s\" gives no label name", dims[i]);
            spanmetrics_free(sm);
            return ERR_INVAL;
        }
    }
    sm->n_dims = n_dims;

    const double *b = o->buckets_s ? o->buckets_s : spanmetrics_default_buckets;
    size_t nb = o->buckets_s ? o->n_buckets : spanmetrics_n_default_buckets;
    int rc = metreg_histogram(reg, "traces_spanmetrics_latency", "Span durations in seconds.",
                              "seconds", b, nb, &sm->latency, err);
    if (rc != 0) {
        spanmetrics_free(sm);
        return rc;
    }
    sm->calls =
        metreg_counter(reg, "traces_spanmetrics_calls",
                       "Spans received, by service, name, kind, status and dimensions.", "");
    sm->size = metreg_counter(reg, "traces_spanmetrics_size",
                              "Bytes of the spans received (protobuf encoding).", "");
    if (!sm->calls || !sm->size) {
        spanmetrics_free(sm);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    *out = sm;
    return 0;
}

void spanmetrics_free(spanmetrics_t *sm)
{
    if (!sm)
        return;
    arena_deinit(&sm->arena);
    free(sm);
}

static const otlp_value_t *dim_value(const otlp_span_t *sp, const otlp_resource_t *r, str_t name)
{
    const otlp_value_t *v = otlp_attrs_find(&sp->attrs, name);
    return v ? v : otlp_attrs_find(&r->attrs, name);
}

void spanmetrics_observe(spanmetrics_t *sm, const otlp_traces_t *t)
{
    arena_t a;
    arena_init(&a, 4096);
    label_t lv[MAX_DIMS + 4];
    buf_t enc = BUF_INIT;
    for (size_t r = 0; r < t->n_rs; r++) {
        const otlp_resource_spans_t *rs = &t->rs[r];
        const otlp_value_t *svc = otlp_attrs_get(&rs->resource.attrs, "service.name");
        str_t service = svc ? otlp_value_to_str(svc, &a) : STR("");
        for (size_t s = 0; s < rs->n_scopes; s++) {
            const otlp_scope_spans_t *ss = &rs->scopes[s];
            for (size_t k = 0; k < ss->n_spans; k++) {
                const otlp_span_t *sp = &ss->spans[k];
                size_t n = 0;
                if (service.len)
                    lv[n++] = (label_t){STR("service"), service};
                if (sp->name.len)
                    lv[n++] = (label_t){STR("span_name"), sp->name};
                if (sp->kind >= 0 && sp->kind < 6)
                    lv[n++] = (label_t){STR("span_kind"), kind_names[sp->kind]};
                if (sp->status_code >= 0 && sp->status_code < 3)
                    lv[n++] = (label_t){STR("status_code"), status_names[sp->status_code]};
                for (size_t d = 0; d < sm->n_dims; d++) {
                    const otlp_value_t *v = dim_value(sp, &rs->resource, sm->dims[d]);
                    str_t val = v ? otlp_value_to_str(v, &a) : STR("");
                    if (val.len)
                        lv[n++] = (label_t){sm->dim_label[d], val};
                }
                labels_t ls = {lv, n};
                metreg_labels_normalize(&ls);
                uint64_t h = labels_hash(&ls);
                double dur =
                    sp->end_ns > sp->start_ns ? (double)(sp->end_ns - sp->start_ns) / 1e9 : 0;
                size_t size = sp->raw.len;
                if (!size) { /* decoded from JSON: the size its protobuf encoding has */
                    buf_clear(&enc);
                    otlp_pb_encode_span(&enc, sp);
                    size = buf_len(&enc);
                }
                metreg_add(sm->calls, &ls, h, 1);
                metreg_add(sm->latency, &ls, h, dur);
                metreg_add(sm->size, &ls, h, (double)size);
            }
        }
        arena_reset(&a);
    }
    buf_deinit(&enc);
    arena_deinit(&a);
}
