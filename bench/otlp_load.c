/*
 * otlp_load.c - OTLP/HTTP protobuf load generator for bench/run.sh.
 *
 *   otlp_load --port P --signal metrics|traces|logs [--series N] [--points N] [--batch N]
 *             [--conns N] [--jitter-ms N] [--grpc]
 *
 * Builds requests with the project's OTLP encoder (the server decodes them with its walker),
 * sends them over keep-alive HTTP/1.1 connections (one thread each), or with --grpc as unary
 * OTLP/gRPC Export calls over one HTTP/2 connection per thread (an nghttp2 client session, one
 * call in flight, like the HTTP/1.1 connections), and prints
 *   items=<n> requests=<n> seconds=<wall> bytes=<request bytes> errors=<n>
 * Metrics: <series> gauge series, <points> samples each, 15 s apart ending now (with optional
 * timestamp jitter), values a slow random walk (what scraped gauges look like). Traces: <points>
 * requests worth of 10-span traces. Logs: JSON-ish lines of ~244 bytes from a few services.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/clock.h"
#include "net/grpc.h"
#include "proto/otlp.h"

static int port = 4318, conns = 2, jitter_ms = 0;
static long series = 1000, points = 100, batch = 1000;
static const char *signal_name = "metrics";
static bool use_grpc;

typedef struct job {
    int id;
    long items, requests, errors;
    uint64_t bytes;
} job_t;

static int connect_to(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("connect");
        exit(1);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* ---- OTLP/gRPC: one nghttp2 client session per thread (its connection's fd) ---- */

typedef struct h2_call {
    buf_t msg; /* 5-byte gRPC prefix + body */
    size_t off;
    int grpc_status; /* -1 until the trailers (or a Trailers-Only answer) arrive */
    bool closed;
} h2_call_t;

static _Thread_local nghttp2_session *h2;
static _Thread_local int h2_fd = -1;

static int h2_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                        size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                        void *user)
{
    (void)flags;
    (void)user;
    h2_call_t *c = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (c && namelen == 11 && memcmp(name, "grpc-status", 11) == 0)
        c->grpc_status = valuelen ? atoi((const char *)value) : -1; /* NUL-terminated */
    return 0;
}

static int h2_on_close(nghttp2_session *s, int32_t id, uint32_t err, void *user)
{
    (void)err;
    (void)user;
    h2_call_t *c = nghttp2_session_get_stream_user_data(s, id);
    if (c)
        c->closed = true;
    return 0;
}

static ssize_t h2_read_body(nghttp2_session *s, int32_t id, uint8_t *dst, size_t cap,
                            uint32_t *flags, nghttp2_data_source *src, void *user)
{
    (void)s;
    (void)id;
    (void)user;
    h2_call_t *c = src->ptr;
    size_t n = buf_len(&c->msg) - c->off < cap ? buf_len(&c->msg) - c->off : cap;
    memcpy(dst, c->msg.pos + c->off, n);
    c->off += n;
    if (c->off == buf_len(&c->msg))
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* One unary Export call; returns 200 for grpc-status 0 (the callers count anything else). */
static int grpc_post(int fd, const char *path, const buf_t *body)
{
    if (h2_fd != fd) {
        nghttp2_session_callbacks *cb;
        nghttp2_session_callbacks_new(&cb);
        nghttp2_session_callbacks_set_on_header_callback(cb, h2_on_header);
        nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2_on_close);
        if (h2)
            nghttp2_session_del(h2);
        nghttp2_session_client_new(&h2, cb, NULL);
        nghttp2_session_callbacks_del(cb);
        nghttp2_submit_settings(h2, NGHTTP2_FLAG_NONE, NULL, 0);
        h2_fd = fd;
    }
    const char *method = !strcmp(path, "/v1/traces")
                             ? "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
                         : !strcmp(path, "/v1/logs")
                             ? "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
                             : "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
    h2_call_t c = {.grpc_status = -1};
    buf_init(&c.msg, buf_len(body) + 5);
    grpc_frame_prefix(buf_reserve(&c.msg, 5), false, (uint32_t)buf_len(body));
    c.msg.last += 5;
    buf_append(&c.msg, body->pos, buf_len(body));
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}
    nghttp2_nv hdrs[] = {NV(":method", "POST"),
                         NV(":scheme", "http"),
                         NV(":path", method),
                         NV(":authority", "127.0.0.1"),
                         NV("content-type", "application/grpc"),
                         NV("te", "trailers")};
#undef NV
    nghttp2_data_provider prd = {.source.ptr = &c, .read_callback = h2_read_body};
    int rc = -1;
    if (nghttp2_submit_request(h2, NULL, hdrs, sizeof hdrs / sizeof hdrs[0], &prd, &c) < 0)
        goto out;
    while (!c.closed) {
        const uint8_t *out;
        ssize_t k;
        while ((k = nghttp2_session_mem_send(h2, &out)) > 0) {
            for (ssize_t w = 0; w < k;) {
                ssize_t r = write(fd, out + w, (size_t)(k - w));
                if (r <= 0)
                    goto out;
                w += r;
            }
        }
        if (k < 0 || c.closed)
            break;
        uint8_t in[65536];
        ssize_t r = read(fd, in, sizeof in);
        if (r <= 0 || nghttp2_session_mem_recv(h2, in, (size_t)r) < 0)
            goto out;
    }
    rc = c.closed && c.grpc_status == 0 ? 200 : 500;
out:
    buf_deinit(&c.msg);
    return rc;
}

/* Sends one request and reads the response; returns the HTTP status. */
static int post(int fd, const char *path, const buf_t *body)
{
    if (use_grpc)
        return grpc_post(fd, path, body);
    char head[256];
    int hn = snprintf(head, sizeof head,
                      "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                      "application/x-protobuf\r\nContent-Length: %zu\r\n\r\n",
                      path, buf_len(body));
    if (write(fd, head, (size_t)hn) != hn)
        return -1;
    size_t off = 0;
    while (off < buf_len(body)) {
        ssize_t w = write(fd, body->pos + off, buf_len(body) - off);
        if (w <= 0)
            return -1;
        off += (size_t)w;
    }
    char resp[8192];
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, resp + got, sizeof resp - 1 - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
        resp[got] = '\0';
        char *end = strstr(resp, "\r\n\r\n");
        if (!end)
            continue;
        const char *cl = strcasestr(resp, "content-length:");
        size_t want = (size_t)(end + 4 - resp) + (cl ? (size_t)atol(cl + 15) : 0);
        while (got < want) {
            r = read(fd, resp + got, sizeof resp - 1 - got);
            if (r <= 0)
                return -1;
            got += (size_t)r;
        }
        return atoi(resp + 9);
    }
}

static otlp_kv_t kv(arena_t *a, const char *k, const char *v)
{
    otlp_kv_t x;
    memset(&x, 0, sizeof x);
    x.key = str_cstr(k);
    x.value.type = OTLP_V_STRING;
    x.value.u.s = str_cstr(arena_strndup(a, v, strlen(v)));
    return x;
}

static void *run_metrics(void *arg)
{
    job_t *j = arg;
    int fd = connect_to();
    int64_t now_ns = clock_now_ns();
    uint64_t rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(j->id + 1);
    double *vals = calloc((size_t)series, sizeof *vals);
    /* Connection j sends the series with index % conns == j, all points in time order. */
    for (long p = 0; p < points; p++) {
        int64_t ts = now_ns - (int64_t)(points - p) * 15000000000LL;
        long s = j->id;
        while (s < series) {
            arena_t a;
            arena_init(&a, 1 << 16);
            long n = 0;
            otlp_metric_t *ms = ARENA_ARRAY(&a, otlp_metric_t, (size_t)batch);
            for (; s < series && n < batch; s += conns, n++) {
                otlp_metric_t *m = &ms[n];
                m->name = str_cstr(arena_sprintf(&a, "bench_gauge_%ld", s % 100));
                m->type = OTLP_METRIC_GAUGE;
                otlp_number_point_t *pt = ARENA_NEW(&a, otlp_number_point_t);
                m->points.number.v = pt;
                m->points.number.n = 1;
                pt->attrs.v = ARENA_ARRAY(&a, otlp_kv_t, 2);
                pt->attrs.v[0] = kv(&a, "shard", arena_sprintf(&a, "%ld", s / 100));
                pt->attrs.v[1] = kv(&a, "region", s % 2 ? "eu" : "us");
                pt->attrs.n = 2;
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                int64_t jit =
                    jitter_ms ? (int64_t)(rng % (uint64_t)(2 * jitter_ms + 1)) - jitter_ms : 0;
                pt->time_ns = (uint64_t)(ts + jit * 1000000);
                vals[s] += (double)(rng % 7) - 3;
                pt->as_double = vals[s];
            }
            otlp_scope_metrics_t sm = {.metrics = ms, .n_metrics = (size_t)n};
            otlp_resource_metrics_t rm;
            memset(&rm, 0, sizeof rm);
            otlp_kv_t res[1] = {kv(&a, "service.name", "bench")};
            rm.resource.attrs.v = res;
            rm.resource.attrs.n = 1;
            rm.scopes = &sm;
            rm.n_scopes = 1;
            otlp_metrics_t req = {.rm = &rm, .n_rm = 1};
            buf_t body;
            buf_init(&body, 1 << 16);
            otlp_pb_encode_metrics(&body, &req);
            int st = post(fd, "/v1/metrics", &body);
            if (st != 200)
                j->errors++;
            j->items += n;
            j->requests++;
            j->bytes += buf_len(&body);
            buf_deinit(&body);
            arena_deinit(&a);
        }
    }
    free(vals);
    close(fd);
    return NULL;
}

static void *run_traces(void *arg)
{
    job_t *j = arg;
    int fd = connect_to();
    int64_t now_ns = clock_now_ns();
    uint64_t rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(j->id + 1);
    for (long r = j->id; r < points; r += conns) {
        arena_t a;
        arena_init(&a, 1 << 16);
        size_t n = (size_t)batch;
        otlp_span_t *sp = ARENA_ARRAY(&a, otlp_span_t, n);
        for (size_t i = 0; i < n; i++) {
            otlp_span_t *s = &sp[i];
            uint64_t trace = (uint64_t)r * 1000003 + i / 10 + 1;
            memcpy(s->trace_id, &trace, 8);
            memcpy(s->trace_id + 8, &rng, 8);
            uint64_t sid = trace * 16 + i % 10 + 1;
            memcpy(s->span_id, &sid, 8);
            if (i % 10) {
                uint64_t pid = trace * 16 + 1;
                memcpy(s->parent_span_id, &pid, 8);
                s->has_parent = true;
            }
            s->name = str_cstr(i % 10 ? "tool.call" : "skill.test");
            s->kind = i % 10 ? OTLP_SPAN_KIND_INTERNAL : OTLP_SPAN_KIND_SERVER;
            s->start_ns = (uint64_t)(now_ns - 60000000000LL + (int64_t)(i * 1000000));
            s->end_ns = s->start_ns + 5000000 + (i % 7) * 1000000;
            s->attrs.v = ARENA_ARRAY(&a, otlp_kv_t, 3);
            s->attrs.v[0] = kv(&a, "test.id", arena_sprintf(&a, "routing-%zu", i % 40));
            s->attrs.v[1] = kv(&a, "test.result", i % 13 ? "passed" : "failed");
            s->attrs.v[2] = kv(&a, "gen_ai.request.model", "claude-sonnet-4");
            s->attrs.n = 3;
            s->status_code = i % 13 ? OTLP_STATUS_OK : OTLP_STATUS_ERROR;
        }
        otlp_scope_spans_t ss;
        memset(&ss, 0, sizeof ss);
        ss.scope.name = STR("bench");
        ss.spans = sp;
        ss.n_spans = n;
        otlp_resource_spans_t rs;
        memset(&rs, 0, sizeof rs);
        otlp_kv_t res[1] = {kv(&a, "service.name", "skill-tests")};
        rs.resource.attrs.v = res;
        rs.resource.attrs.n = 1;
        rs.scopes = &ss;
        rs.n_scopes = 1;
        otlp_traces_t req = {.rs = &rs, .n_rs = 1};
        buf_t body;
        buf_init(&body, 1 << 16);
        otlp_pb_encode_traces(&body, &req);
        if (post(fd, "/v1/traces", &body) != 200)
            j->errors++;
        j->items += (long)n;
        j->requests++;
        j->bytes += buf_len(&body);
        buf_deinit(&body);
        arena_deinit(&a);
    }
    close(fd);
    return NULL;
}

static void *run_logs(void *arg)
{
    job_t *j = arg;
    int fd = connect_to();
    int64_t now_ns = clock_now_ns();
    static const char *levels[] = {"info", "info", "info", "debug", "warn", "error"};
    static const char *paths[] = {"/api/skills", "/api/skills/route", "/api/agents/run", "/healthz",
                                  "/api/tests/results"};
    uint64_t rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(j->id + 1);
    long seq = 0;
    for (long r = j->id; r < points; r += conns) {
        arena_t a;
        arena_init(&a, 1 << 16);
        size_t n = (size_t)batch;
        otlp_log_t *lg = ARENA_ARRAY(&a, otlp_log_t, n);
        for (size_t i = 0; i < n; i++, seq++) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            otlp_log_t *l = &lg[i];
            l->time_ns = (uint64_t)(now_ns - 3600000000000LL + (r * (long)n + (long)i) * 1000000LL);
            const char *lvl = levels[rng % 6];
            l->body.type = OTLP_V_STRING;
            l->body.u.s = str_cstr(arena_sprintf(
                &a,
                "{\"level\":\"%s\",\"ts\":\"2026-11-22T00:%02ld:%02ld.%03ldZ\",\"msg\":\"request "
                "completed\",\"method\":\"GET\",\"path\":\"%s\",\"status\":%d,\"duration_ms\":%llu,"
                "\"user_id\":\"u-%llu\",\"request_id\":\"%016llx\",\"bytes\":%llu}",
                lvl, (seq / 60000) % 60, (seq / 1000) % 60, seq % 1000, paths[rng % 5],
                rng % 17 ? 200 : 500, (unsigned long long)(rng % 900),
                (unsigned long long)(rng % 5000), (unsigned long long)rng,
                (unsigned long long)(rng % 100000)));
            l->severity_text = str_cstr(lvl);
            l->severity_number = 9;
        }
        otlp_scope_logs_t sl;
        memset(&sl, 0, sizeof sl);
        sl.logs = lg;
        sl.n_logs = n;
        otlp_resource_logs_t rl;
        memset(&rl, 0, sizeof rl);
        otlp_kv_t res[1] = {kv(&a, "service.name", r % 3 ? "skills-api" : "agent-runner")};
        rl.resource.attrs.v = res;
        rl.resource.attrs.n = 1;
        rl.scopes = &sl;
        rl.n_scopes = 1;
        otlp_logs_t req = {.rl = &rl, .n_rl = 1};
        buf_t body;
        buf_init(&body, 1 << 18);
        otlp_pb_encode_logs(&body, &req);
        if (post(fd, "/v1/logs", &body) != 200)
            j->errors++;
        j->items += (long)n;
        j->requests++;
        j->bytes += buf_len(&body);
        buf_deinit(&body);
        arena_deinit(&a);
    }
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(argv[i], "--port"))
            port = atoi(v), i++;
        else if (!strcmp(argv[i], "--signal"))
            signal_name = v, i++;
        else if (!strcmp(argv[i], "--series"))
            series = atol(v), i++;
        else if (!strcmp(argv[i], "--points"))
            points = atol(v), i++;
        else if (!strcmp(argv[i], "--batch"))
            batch = atol(v), i++;
        else if (!strcmp(argv[i], "--conns"))
            conns = atoi(v), i++;
        else if (!strcmp(argv[i], "--jitter-ms"))
            jitter_ms = atoi(v), i++;
        else if (!strcmp(argv[i], "--grpc"))
            use_grpc = true;
        else {
            fprintf(stderr, "otlp_load: unknown flag %s\n", argv[i]);
            return 2;
        }
    }
    void *(*fn)(void *) = !strcmp(signal_name, "traces") ? run_traces
                          : !strcmp(signal_name, "logs") ? run_logs
                                                         : run_metrics;
    pthread_t th[64];
    job_t jobs[64];
    if (conns > 64)
        conns = 64;
    int64_t t0 = clock_mono_ns();
    for (int i = 0; i < conns; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].id = i;
        pthread_create(&th[i], NULL, fn, &jobs[i]);
    }
    long items = 0, reqs = 0, errs = 0;
    uint64_t bytes = 0;
    for (int i = 0; i < conns; i++) {
        pthread_join(th[i], NULL);
        items += jobs[i].items;
        reqs += jobs[i].requests;
        errs += jobs[i].errors;
        bytes += jobs[i].bytes;
    }
    double secs = (double)(clock_mono_ns() - t0) / 1e9;
    printf("items=%ld requests=%ld seconds=%.3f bytes=%llu errors=%ld\n", items, reqs, secs,
           (unsigned long long)bytes, errs);
    return errs ? 1 : 0;
}
