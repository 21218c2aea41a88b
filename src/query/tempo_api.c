/*
 * tempo_api.c - Tempo's trace-by-id endpoints and /api/echo (see api.h, specs/TEMPO-API.md §2).
 *
 * The store keeps each span as three protobuf blobs (Resource, InstrumentationScope, Span), so a
 * trace is answered by splicing: spans are grouped by identical resource bytes, then identical
 * scope bytes, in first-seen order, and written as OTLP TracesData
 *   TracesData{ 1: ResourceSpans{ 1: Resource, 2: ScopeSpans{ 1: Scope, 2: Span... } }... }
 * which is wire-identical to tempopb.Trace. The v2 endpoint wraps it as TraceByIDResponse{1: Trace}
 * (status COMPLETE = 0 is the proto3 default and so not written). Without Accept:
 * application/protobuf the same bytes are decoded with the OTLP walker and written as OTLP/JSON:
 * v1 as {"batches":[...]} (Tempo renames the first "resourceSpans" key for compatibility), v2 as
 * {"trace":{"resourceSpans":[...]}}. Unknown trace: 404 with an empty body, as current Tempo.
 */
#include <stdio.h>
#include <string.h>

#include "base/json.h"
#include "proto/otlp.h"
#include "proto/pbwire.h"
#include "query/api.h"

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Length of the UTF-8 sequence at p as Go's range loop steps it (1 for an invalid byte). */
static size_t rune_len(const unsigned char *p, size_t left)
{
    size_t n = *p < 0x80             ? 1
               : (*p & 0xe0) == 0xc0 ? 2
               : (*p & 0xf0) == 0xe0 ? 3
               : (*p & 0xf8) == 0xf0 ? 4
                                     : 1;
    if (n > left)
        return 1;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 1;
    return n;
}

int tempo_api_parse_trace_id(str_t hex, uint8_t id[16], err_t *err)
{
    const unsigned char *s = (const unsigned char *)hex.ptr;
    for (size_t i = 0; i < hex.len;) {
        size_t n = rune_len(s + i, hex.len - i);
        if (hexval(s[i]) < 0) {
            bool valid = n > 1 || s[i] < 0x80;
            return err_set(err, ERR_PARSE,
                           "trace IDs can only contain hex characters: invalid character '%.*s' "
                           "at position %zu",
                           valid ? (int)n : 3, valid ? (const char *)s + i : "\xef\xbf\xbd", i + 1);
        }
        i += n;
    }
    size_t bytes = (hex.len + 1) / 2;
    if (bytes > 16)
        return err_set(err, ERR_PARSE, "trace IDs can't be larger than 128 bits");
    memset(id, 0, 16);
    /* Right-align the digits: an odd count gets a leading zero nibble. */
    uint8_t *o = id + 16 - bytes;
    size_t i = 0;
    if (hex.len % 2) {
        *o++ = (uint8_t)hexval(s[0]);
        i = 1;
    }
    for (; i < hex.len; i += 2)
        *o++ = (uint8_t)(hexval(s[i]) << 4 | hexval(s[i + 1]));
    return 0;
}

/* ---- grouping spans by resource and scope ---- */

typedef struct scope_grp {
    str_t scope_pb;
    str_t *spans;
    size_t n, cap;
} scope_grp_t;

typedef struct res_grp {
    str_t resource_pb;
    scope_grp_t *scopes;
    size_t n, cap;
} res_grp_t;

typedef struct trace_acc {
    arena_t *a;
    res_grp_t *v;
    size_t n, cap;
    size_t last; /* the group of the previous span: consecutive spans usually share it */
    size_t spans;
} trace_acc_t;

#define GROW(a, arr, n, cap, T)                                                                    \
    do {                                                                                           \
        if ((n) == (cap)) {                                                                        \
            size_t c_ = (cap) ? (cap)*2 : 4;                                                       \
            T *v_ = ARENA_ARRAY((a), T, c_);                                                       \
            if (n)                                                                                 \
                memcpy(v_, (arr), (n) * sizeof(T));                                                \
            (arr) = v_;                                                                            \
            (cap) = c_;                                                                            \
        }                                                                                          \
    } while (0)

static void add_span(void *arg, const db_span_t *s)
{
    trace_acc_t *t = arg;
    res_grp_t *r = NULL;
    if (t->n && str_eq(t->v[t->last].resource_pb, s->resource_pb)) {
        r = &t->v[t->last];
    } else {
        for (size_t i = 0; i < t->n && !r; i++)
            if (str_eq(t->v[i].resource_pb, s->resource_pb)) {
                r = &t->v[i];
                t->last = i;
            }
    }
    if (!r) {
        GROW(t->a, t->v, t->n, t->cap, res_grp_t);
        r = &t->v[t->n];
        memset(r, 0, sizeof *r);
        r->resource_pb = arena_str(t->a, s->resource_pb);
        t->last = t->n++;
    }
    scope_grp_t *g = NULL;
    for (size_t i = r->n; i-- > 0 && !g;)
        if (str_eq(r->scopes[i].scope_pb, s->scope_pb))
            g = &r->scopes[i];
    if (!g) {
        GROW(t->a, r->scopes, r->n, r->cap, scope_grp_t);
        g = &r->scopes[r->n++];
        memset(g, 0, sizeof *g);
        g->scope_pb = arena_str(t->a, s->scope_pb);
    }
    GROW(t->a, g->spans, g->n, g->cap, str_t);
    g->spans[g->n++] = arena_str(t->a, s->span_pb);
    t->spans++;
}

int tempo_api_trace_pb(db_t *db, const uint8_t id[16], buf_t *out)
{
    arena_t a;
    arena_init(&a, 0);
    trace_acc_t t = {.a = &a};
    int rc = db_trace_get(db, id, 0, 0, add_span, &t);
    if (rc == 0 && !t.spans)
        rc = ERR_NOTFOUND;
    for (size_t i = 0; rc == 0 && i < t.n; i++) {
        const res_grp_t *r = &t.v[i];
        size_t m1 = pb_begin(out, 1);
        pb_put_bytes(out, 1, r->resource_pb.ptr, r->resource_pb.len);
        for (size_t j = 0; j < r->n; j++) {
            const scope_grp_t *g = &r->scopes[j];
            size_t m2 = pb_begin(out, 2);
            pb_put_bytes(out, 1, g->scope_pb.ptr, g->scope_pb.len);
            for (size_t k = 0; k < g->n; k++)
                pb_put_bytes(out, 2, g->spans[k].ptr, g->spans[k].len);
            pb_end(out, m2);
        }
        pb_end(out, m1);
    }
    arena_deinit(&a);
    return rc;
}

/* Tempo's start/end checks (Unix seconds, ParseInt); the window is not used to narrow the lookup,
 * since the trace-id index finds the whole trace anyway. */
static bool check_window(const api_in_t *in, api_out_t *out)
{
    int64_t v[2] = {0, 0};
    bool set[2] = {false, false};
    const char *names[2] = {"start", "end"};
    err_t err;
    for (int i = 0; i < 2; i++) {
        str_t s = params_get(&in->params, names[i]);
        if (!s.len)
            continue;
        set[i] = true;
        if (params_parse_int(s, &v[i], &err) != 0) {
            buf_printf(&out->body, "invalid %s: %s", names[i], err.msg);
            out->status = 400;
            out->content_type = "text/plain; charset=utf-8";
            return false;
        }
    }
    if (set[0] && set[1] && v[1] <= v[0]) {
        buf_printf(&out->body,
                   "http parameter start must be before end. received start=%lld end=%lld",
                   (long long)v[0], (long long)v[1]);
        out->status = 400;
        out->content_type = "text/plain; charset=utf-8";
        return false;
    }
    return true;
}

void tempo_api_trace(db_t *db, const api_in_t *in, bool v2, api_out_t *out)
{
    uint8_t id[16];
    err_t err;
    buf_clear(&out->body);
    if (tempo_api_parse_trace_id(in->tail, id, &err) != 0) {
        buf_puts(&out->body, err.msg);
        out->status = 400;
        out->content_type = "text/plain; charset=utf-8";
        return;
    }
    if (!check_window(in, out))
        return;
    buf_t pb = BUF_INIT;
    if (tempo_api_trace_pb(db, id, &pb) != 0) {
        buf_deinit(&pb);
        out->status = 404;
        out->content_type = NULL;
        return;
    }
    out->status = 200;
    if (in->accept && strstr(in->accept, "application/protobuf")) {
        out->content_type = "application/protobuf";
        if (v2)
            pb_put_bytes(&out->body, 1, pb.pos, buf_len(&pb));
        else
            buf_append(&out->body, pb.pos, buf_len(&pb));
        buf_deinit(&pb);
        return;
    }
    out->content_type = "application/json";
    otlp_traces_t t;
    if (otlp_pb_decode_traces(pb.pos, buf_len(&pb), in->a, &t, &err) != 0) {
        buf_deinit(&pb);
        buf_printf(&out->body, "stored trace is unreadable: %s", err.msg);
        out->status = 500;
        out->content_type = "text/plain; charset=utf-8";
        return;
    }
    jw_t w;
    if (v2) {
        buf_puts(&out->body, "{\"trace\":");
        jw_init(&w, &out->body);
        otlp_json_write_traces(&w, &t);
        buf_putc(&out->body, '}');
    } else {
        static const char key[] = "{\"resourceSpans\":";
        size_t mark = buf_len(&out->body);
        jw_init(&w, &out->body);
        otlp_json_write_traces(&w, &t);
        uint8_t *p = out->body.pos + mark;
        if (buf_len(&out->body) - mark >= sizeof key - 1 && !memcmp(p, key, sizeof key - 1)) {
            static const char v1[] = "{\"batches\":";
            size_t shrink = (sizeof key - 1) - (sizeof v1 - 1);
            memcpy(p, v1, sizeof v1 - 1);
            memmove(p + sizeof v1 - 1, p + sizeof key - 1,
                    buf_len(&out->body) - mark - (sizeof key - 1));
            out->body.last -= shrink;
        }
    }
    buf_deinit(&pb);
}

void tempo_api_echo(db_t *db, const api_in_t *in, api_out_t *out)
{
    (void)db;
    (void)in;
    buf_clear(&out->body);
    buf_puts(&out->body, "echo");
    out->status = 200;
    out->content_type = "text/plain; charset=utf-8";
}
