/*
 * servicegraph.c - pairs client and server spans into service-graph edges (see servicegraph.h).
 *
 * A waiting half is keyed by (trace id, the client span's id): a client span by its own id, a
 * server span by its parent's. The key's hash indexes a u64map whose value is the slot of the
 * half in a vector; collisions between different keys probe hash+1, ... Expiry walks the vector
 * (pending halves are few: they only wait for their peer's export, seconds at most).
 */
#include "pipeline/servicegraph.h"

#include <stdlib.h>
#include <string.h>

#include "base/hash.h"

#define DEFAULT_WAIT_MS 10000
#define DEFAULT_MAX_PENDING 10000
#define SVC_MAX 128

/* Tempo's 0.1 s ... 12.8 s doubling series continued to 409.6 s. */
static const double buckets[] = {0.1,  0.2,  0.4,  0.8,   1.6,   3.2,  6.4,
                                 12.8, 25.6, 51.2, 102.4, 204.8, 409.6};

typedef struct half {
    uint8_t key[24]; /* trace id + client span id */
    bool is_client;
    bool messaging;
    bool failed;
    double seconds;
    int64_t seen_ms;
    char service[SVC_MAX];
} half_t;

struct servicegraph {
    metreg_family_t *requests, *failed, *server_s, *client_s, *unpaired;
    int64_t wait_ms;
    size_t max_pending;
    half_t *pending;
    size_t n_pending, cap_pending;
    u64map_t index;
    uint64_t dropped;
};

int servicegraph_new(metreg_t *reg, int64_t wait_ms, size_t max_pending, servicegraph_t **out,
                     err_t *err)
{
    *out = NULL;
    servicegraph_t *sg = calloc(1, sizeof *sg);
    if (!sg)
        return err_set(err, ERR_NOMEM, "out of memory");
    sg->wait_ms = wait_ms > 0 ? wait_ms : DEFAULT_WAIT_MS;
    sg->max_pending = max_pending ? max_pending : DEFAULT_MAX_PENDING;
    u64map_init(&sg->index);
    size_t nb = sizeof buckets / sizeof buckets[0];
    int rc = metreg_histogram(reg, "traces_service_graph_request_server_seconds",
                              "Server-side duration of requests between two services.", "seconds",
                              buckets, nb, &sg->server_s, err);
    if (rc == 0)
        rc = metreg_histogram(reg, "traces_service_graph_request_client_seconds",
                              "Client-side duration of requests between two services.", "seconds",
                              buckets, nb, &sg->client_s, err);
    if (rc != 0) {
        servicegraph_free(sg);
        return rc;
    }
    sg->requests =
        metreg_counter(reg, "traces_service_graph_request", "Requests between two services.", "");
    sg->failed = metreg_counter(reg, "traces_service_graph_request_failed",
                                "Failed requests between two services.", "");
    sg->unpaired = metreg_counter(reg, "traces_service_graph_unpaired_spans",
                                  "Client or server spans whose peer never arrived.", "");
    if (!sg->requests || !sg->failed || !sg->unpaired) {
        servicegraph_free(sg);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    *out = sg;
    return 0;
}

void servicegraph_free(servicegraph_t *sg)
{
    if (!sg)
        return;
    free(sg->pending);
    u64map_deinit(&sg->index);
    free(sg);
}

size_t servicegraph_pending(const servicegraph_t *sg) { return sg->n_pending; }
uint64_t servicegraph_dropped(const servicegraph_t *sg) { return sg->dropped; }

static void add(metreg_family_t *f, label_t *lv, size_t n, double v)
{
    labels_t ls = {lv, n};
    metreg_labels_normalize(&ls);
    metreg_add(f, &ls, labels_hash(&ls), v);
}

static void edge(servicegraph_t *sg, const half_t *client, const half_t *server)
{
    label_t lv[3] = {
        {STR("client"), str_cstr(client->service)},
        {STR("server"), str_cstr(server->service)},
        {STR("connection_type"), client->messaging ? STR("messaging_system") : STR("")}};
    add(sg->requests, lv, 3, 1);
    if (client->failed || server->failed)
        add(sg->failed, lv, 3, 1);
    add(sg->client_s, lv, 3, client->seconds);
    add(sg->server_s, lv, 3, server->seconds);
}

static ssize_t find(const servicegraph_t *sg, const uint8_t key[24], uint64_t h)
{
    for (uint64_t k = h;; k++) {
        uint64_t *idx = u64map_get(&sg->index, k);
        if (!idx)
            return -1;
        if (memcmp(sg->pending[*idx].key, key, 24) == 0)
            return (ssize_t)*idx;
    }
}

static void reindex(servicegraph_t *sg)
{
    u64map_clear(&sg->index);
    for (size_t i = 0; i < sg->n_pending; i++) {
        uint64_t k = hash64(sg->pending[i].key, 24, 0);
        while (u64map_get(&sg->index, k))
            k++;
        u64map_put(&sg->index, k, i);
    }
}

/* The map key under which slot i is indexed. */
static uint64_t slot_key(const servicegraph_t *sg, size_t i)
{
    uint64_t k = hash64(sg->pending[i].key, 24, 0);
    for (;; k++) {
        uint64_t *idx = u64map_get(&sg->index, k);
        if (idx && *idx == i)
            return k;
    }
}

/* Removes slot i, moving the last half into it. */
static void remove_at(servicegraph_t *sg, size_t i)
{
    uint64_t k = slot_key(sg, i);
    u64map_del(&sg->index, k);
    size_t last = sg->n_pending - 1;
    if (i != last) {
        uint64_t lk = slot_key(sg, last);
        sg->pending[i] = sg->pending[last];
        u64map_put(&sg->index, lk, i);
    }
    sg->n_pending--;
    if (u64map_get(&sg->index, k + 1)) /* a probe chain went through k: rebuild it */
        reindex(sg);
}

/* Pairs h with its waiting peer, or makes it wait. */
static void offer(servicegraph_t *sg, const half_t *h)
{
    uint64_t hash = hash64(h->key, 24, 0);
    ssize_t i = find(sg, h->key, hash);
    if (i >= 0 && sg->pending[i].is_client != h->is_client) {
        half_t peer = sg->pending[i];
        edge(sg, h->is_client ? h : &peer, h->is_client ? &peer : h);
        remove_at(sg, (size_t)i);
        return;
    }
    if (i >= 0)
        return; /* the same half again (a retried export) */
    if (sg->n_pending >= sg->max_pending) {
        sg->dropped++;
        return;
    }
    if (sg->n_pending == sg->cap_pending) {
        size_t cap = sg->cap_pending ? sg->cap_pending * 2 : 64;
        half_t *nv = realloc(sg->pending, cap * sizeof *nv);
        if (!nv) {
            sg->dropped++;
            return;
        }
        sg->pending = nv;
        sg->cap_pending = cap;
    }
    sg->pending[sg->n_pending] = *h;
    uint64_t k = hash;
    while (u64map_get(&sg->index, k))
        k++;
    u64map_put(&sg->index, k, sg->n_pending++);
}

void servicegraph_observe(servicegraph_t *sg, const otlp_traces_t *t, int64_t now_ms)
{
    for (size_t r = 0; r < t->n_rs; r++) {
        const otlp_resource_spans_t *rs = &t->rs[r];
        const otlp_value_t *svc = otlp_attrs_get(&rs->resource.attrs, "service.name");
        str_t service = svc && svc->type == OTLP_V_STRING ? svc->u.s : STR("");
        for (size_t s = 0; s < rs->n_scopes; s++)
            for (size_t k = 0; k < rs->scopes[s].n_spans; k++) {
                const otlp_span_t *sp = &rs->scopes[s].spans[k];
                bool client =
                    sp->kind == OTLP_SPAN_KIND_CLIENT || sp->kind == OTLP_SPAN_KIND_PRODUCER;
                bool server =
                    sp->kind == OTLP_SPAN_KIND_SERVER || sp->kind == OTLP_SPAN_KIND_CONSUMER;
                if (!(client || (server && sp->has_parent)))
                    continue;
                half_t h;
                memset(&h, 0, sizeof h);
                memcpy(h.key, sp->trace_id, 16);
                memcpy(h.key + 16, client ? sp->span_id : sp->parent_span_id, 8);
                h.is_client = client;
                h.messaging =
                    sp->kind == OTLP_SPAN_KIND_PRODUCER || sp->kind == OTLP_SPAN_KIND_CONSUMER;
                h.failed = sp->status_code == OTLP_STATUS_ERROR;
                h.seconds =
                    sp->end_ns > sp->start_ns ? (double)(sp->end_ns - sp->start_ns) / 1e9 : 0;
                h.seen_ms = now_ms;
                size_t n = service.len < SVC_MAX - 1 ? service.len : SVC_MAX - 1;
                memcpy(h.service, service.ptr, n);
                h.service[n] = '\0';
                offer(sg, &h);
            }
    }
}

void servicegraph_expire(servicegraph_t *sg, int64_t now_ms)
{
    size_t w = 0;
    for (size_t i = 0; i < sg->n_pending; i++) {
        half_t *h = &sg->pending[i];
        if (now_ms - h->seen_ms <= sg->wait_ms) {
            sg->pending[w++] = *h;
            continue;
        }
        label_t lv[1] = {{h->is_client ? STR("client") : STR("server"), str_cstr(h->service)}};
        add(sg->unpaired, lv, 1, 1);
    }
    if (w != sg->n_pending) {
        sg->n_pending = w;
        reindex(sg);
    }
}
