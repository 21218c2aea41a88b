/*
 * spans.c - the span store's in-memory head and its WAL codec; the immutable span files are in
 * spans_file.c.
 *
 * Head. Spans are kept as fixed-size records in chunks of SPANS_CHUNK records (no per-span malloc);
 * span protobufs are copied into an arena that grows in large blocks; names, service names,
 * resources and scopes are interned in dictionaries keyed by xxh3 hash, so a resource sent with
 * every batch is stored once (the span file writer uses the same spans_dict_t). A u64map from
 * hash(trace id) to (first, last) record links each trace's records into a list (records carry the
 * next index), so a trace lookup touches only its own spans. Times here are start times: min/max
 * are over start_ns. Writing the head sorts its records by (trace id, start) and hands them to
 * the file writer one by one.
 *
 * WAL codec: one record per batch of spans, the ids and times as fixed fields and varints,
 * resources and scopes referenced back when repeated within the batch (layout below).
 */
#include "store/spans.h"

#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/hash.h"
#include "base/varint.h"
#include "proto/pbwire.h"
#include "store/internal.h"

#define SPANS_CHUNK 4096u
#define SPANS_NONE UINT32_MAX

static uint64_t trace_key(const uint8_t id[16])
{
    uint64_t h = hash64(id, 16, 0);
    return h ? h : 1;
}

/* ---- dictionary (spans_dict_t, internal.h) ---- */

void spans__dict_init(spans_dict_t *d)
{
    memset(d, 0, sizeof *d);
    u64map_init(&d->map);
}

void spans__dict_deinit(spans_dict_t *d)
{
    u64map_deinit(&d->map);
    buf_deinit(&d->data);
    free(d->off);
    free(d->len);
    free(d->next);
    memset(d, 0, sizeof *d);
}

void spans__dict_clear(spans_dict_t *d)
{
    if (d->map.cap > 4096) {
        u64map_deinit(&d->map);
        u64map_init(&d->map);
    } else {
        u64map_clear(&d->map);
    }
    buf_clear(&d->data);
    d->n = 0;
}

static str_t dict_get(const spans_dict_t *d, uint32_t id)
{
    return (str_t){(const char *)d->data.pos + d->off[id], d->len[id]};
}

uint32_t spans__dict_intern(spans_dict_t *d, str_t s)
{
    uint64_t h = hash64(s.ptr ? s.ptr : "", s.len, 0x5eed);
    h = h ? h : 1;
    uint64_t *slot = u64map_get(&d->map, h);
    if (slot) {
        for (uint32_t id = (uint32_t)*slot; id != SPANS_NONE; id = d->next[id])
            if (str_eq(dict_get(d, id), s))
                return id;
    }
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 64;
        d->off = db__xrealloc(d->off, d->cap * sizeof *d->off);
        d->len = db__xrealloc(d->len, d->cap * sizeof *d->len);
        d->next = db__xrealloc(d->next, d->cap * sizeof *d->next);
    }
    uint32_t id = (uint32_t)d->n++;
    buf_put_uvarint(&d->data, s.len);
    d->off[id] = (uint32_t)buf_len(&d->data);
    d->len[id] = (uint32_t)s.len;
    buf_append(&d->data, s.ptr, s.len);
    d->next[id] = slot ? (uint32_t)*slot : SPANS_NONE;
    u64map_put(&d->map, h, id);
    return id;
}

static size_t dict_bytes(const spans_dict_t *d)
{
    return (size_t)(d->data.end - d->data.start) + d->cap * 12 + d->map.cap * 16;
}

/* ---- head ---- */

typedef struct hspan {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t parent[8];
    int64_t start_ns, end_ns;
    const char *pb;
    uint32_t pb_len;
    uint32_t name, service, res, scope;
    uint32_t next; /* next record of the same trace-hash list */
    int32_t kind, status;
} hspan_t;

struct spans_head {
    hspan_t **chunks;
    size_t n_chunks, cap_chunks;
    uint64_t n;
    arena_t pbs;
    spans_dict_t strs, res, scopes;
    u64map_t traces; /* trace_key -> first << 32 | last */
    int64_t min_ns, max_ns;
};

static hspan_t *hs_at(const spans_head_t *h, uint64_t i)
{
    return &h->chunks[i / SPANS_CHUNK][i % SPANS_CHUNK];
}

spans_head_t *spans_head_new(void)
{
    spans_head_t *h = calloc(1, sizeof *h);
    if (!h)
        abort();
    arena_init(&h->pbs, 64 << 10);
    spans__dict_init(&h->strs);
    spans__dict_init(&h->res);
    spans__dict_init(&h->scopes);
    u64map_init(&h->traces);
    h->min_ns = INT64_MAX;
    h->max_ns = INT64_MIN;
    return h;
}

void spans_head_free(spans_head_t *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n_chunks; i++)
        free(h->chunks[i]);
    free(h->chunks);
    arena_deinit(&h->pbs);
    spans__dict_deinit(&h->strs);
    spans__dict_deinit(&h->res);
    spans__dict_deinit(&h->scopes);
    u64map_deinit(&h->traces);
    free(h);
}

void spans_head_reset(spans_head_t *h)
{
    /* Keep one chunk for reuse; the rest go back to the allocator. */
    for (size_t i = 1; i < h->n_chunks; i++)
        free(h->chunks[i]);
    h->n_chunks = h->n_chunks ? 1 : 0;
    h->n = 0;
    arena_reset(&h->pbs);
    spans__dict_deinit(&h->strs);
    spans__dict_deinit(&h->res);
    spans__dict_deinit(&h->scopes);
    spans__dict_init(&h->strs);
    spans__dict_init(&h->res);
    spans__dict_init(&h->scopes);
    u64map_deinit(&h->traces);
    u64map_init(&h->traces);
    h->min_ns = INT64_MAX;
    h->max_ns = INT64_MIN;
}

void spans_head_append(spans_head_t *h, const db_span_t *s)
{
    if (h->n / SPANS_CHUNK >= h->n_chunks) {
        if (h->n_chunks == h->cap_chunks) {
            h->cap_chunks = h->cap_chunks ? h->cap_chunks * 2 : 16;
            h->chunks = db__xrealloc(h->chunks, h->cap_chunks * sizeof *h->chunks);
        }
        h->chunks[h->n_chunks++] = db__xrealloc(NULL, SPANS_CHUNK * sizeof(hspan_t));
    }
    uint64_t i = h->n++;
    hspan_t *r = hs_at(h, i);
    memcpy(r->trace_id, s->trace_id, 16);
    memcpy(r->span_id, s->span_id, 8);
    memcpy(r->parent, s->parent_span_id, 8);
    r->start_ns = s->start_ns;
    r->end_ns = s->end_ns;
    r->pb_len = (uint32_t)s->span_pb.len;
    char *pb = s->span_pb.len ? arena_alloc(&h->pbs, s->span_pb.len) : NULL;
    if (pb)
        memcpy(pb, s->span_pb.ptr, s->span_pb.len);
    r->pb = pb;
    r->name = spans__dict_intern(&h->strs, s->name);
    r->service = spans__dict_intern(&h->strs, s->service_name);
    r->res = spans__dict_intern(&h->res, s->resource_pb);
    r->scope = spans__dict_intern(&h->scopes, s->scope_pb);
    r->kind = s->kind;
    r->status = s->status_code;
    r->next = SPANS_NONE;
    uint64_t key = trace_key(s->trace_id);
    uint64_t *slot = u64map_get(&h->traces, key);
    if (slot) {
        hs_at(h, (uint32_t)*slot)->next = (uint32_t)i;
        *slot = (*slot & 0xffffffff00000000ULL) | (uint32_t)i;
    } else {
        u64map_put(&h->traces, key, i << 32 | i);
    }
    if (s->start_ns < h->min_ns)
        h->min_ns = s->start_ns;
    if (s->start_ns > h->max_ns)
        h->max_ns = s->start_ns;
}

uint64_t spans_head_count(const spans_head_t *h) { return h->n; }
uint64_t spans_head_traces(const spans_head_t *h) { return h->traces.len; }
int64_t spans_head_min_ns(const spans_head_t *h) { return h->min_ns; }
int64_t spans_head_max_ns(const spans_head_t *h) { return h->max_ns; }

uint64_t spans_head_bytes(const spans_head_t *h)
{
    return h->pbs.total_bytes + h->n_chunks * SPANS_CHUNK * sizeof(hspan_t) + dict_bytes(&h->strs) +
           dict_bytes(&h->res) + dict_bytes(&h->scopes) + h->traces.cap * 16;
}

static void hs_to_span(const spans_head_t *h, const hspan_t *r, db_span_t *s)
{
    memcpy(s->trace_id, r->trace_id, 16);
    memcpy(s->span_id, r->span_id, 8);
    memcpy(s->parent_span_id, r->parent, 8);
    s->start_ns = r->start_ns;
    s->end_ns = r->end_ns;
    s->name = dict_get(&h->strs, r->name);
    s->service_name = dict_get(&h->strs, r->service);
    s->kind = r->kind;
    s->status_code = r->status;
    s->resource_pb = dict_get(&h->res, r->res);
    s->scope_pb = dict_get(&h->scopes, r->scope);
    s->span_pb = (str_t){r->pb, r->pb_len};
}

static bool in_range(int64_t t, int64_t mint, int64_t maxt) { return t >= mint && t <= maxt; }

typedef struct ordkey {
    int64_t start;
    uint32_t pos;
} ordkey_t;

static int ordkey_cmp(const void *a, const void *b)
{
    const ordkey_t *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

size_t spans_head_trace(spans_head_t *h, const uint8_t trace_id[16], int64_t mint_ns,
                        int64_t maxt_ns, void (*cb)(void *arg, const db_span_t *s), void *arg)
{
    uint64_t *slot = u64map_get(&h->traces, trace_key(trace_id));
    if (!slot)
        return 0;
    ordkey_t *keys = NULL;
    size_t n = 0, cap = 0;
    for (uint32_t i = (uint32_t)(*slot >> 32); i != SPANS_NONE; i = hs_at(h, i)->next) {
        const hspan_t *r = hs_at(h, i);
        if (memcmp(r->trace_id, trace_id, 16) != 0)
            continue;
        if (maxt_ns > 0 && !in_range(r->start_ns, mint_ns, maxt_ns))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            keys = db__xrealloc(keys, cap * sizeof *keys);
        }
        keys[n++] = (ordkey_t){r->start_ns, i};
    }
    if (n)
        qsort(keys, n, sizeof *keys, ordkey_cmp);
    for (size_t i = 0; i < n; i++) {
        db_span_t s;
        hs_to_span(h, hs_at(h, keys[i].pos), &s);
        cb(arg, &s);
    }
    free(keys);
    return n;
}

bool spans_head_scan(spans_head_t *h, int64_t mint_ns, int64_t maxt_ns,
                     bool (*cb)(void *arg, const db_span_t *s), void *arg)
{
    if (h->n == 0 || h->max_ns < mint_ns || h->min_ns > maxt_ns)
        return true;
    for (uint64_t i = 0; i < h->n; i++) {
        const hspan_t *r = hs_at(h, i);
        if (!in_range(r->start_ns, mint_ns, maxt_ns))
            continue;
        db_span_t s;
        hs_to_span(h, r, &s);
        if (!cb(arg, &s))
            return false;
    }
    return true;
}

/* ---- writing the head (the file itself: spans_file.c) ---- */

typedef struct sortkey {
    uint8_t trace_id[16];
    int64_t start;
    uint32_t pos;
} sortkey_t;

static int sortkey_cmp(const void *a, const void *b)
{
    const sortkey_t *x = a, *y = b;
    int c = memcmp(x->trace_id, y->trace_id, 16);
    if (c)
        return c;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Hands the head's spans to the file writer in (trace id, start) order. */
typedef struct head_iter {
    const spans_head_t *h;
    const sortkey_t *keys;
    uint64_t i;
} head_iter_t;

static bool head_iter_next(void *arg, db_span_t *s)
{
    head_iter_t *it = arg;
    if (it->i >= it->h->n)
        return false;
    hs_to_span(it->h, hs_at(it->h, it->keys[it->i++].pos), s);
    return true;
}

int spans_head_write(spans_head_t *h, const char *path, uint64_t *bytes, err_t *err)
{
    sortkey_t *keys = db__xrealloc(NULL, h->n * sizeof *keys);
    for (uint64_t i = 0; i < h->n; i++) {
        const hspan_t *r = hs_at(h, i);
        memcpy(keys[i].trace_id, r->trace_id, 16);
        keys[i].start = r->start_ns;
        keys[i].pos = (uint32_t)i;
    }
    qsort(keys, h->n, sizeof *keys, sortkey_cmp);
    head_iter_t it = {h, keys, 0};
    int rc = spans__file_write(path, head_iter_next, &it, bytes, err);
    free(keys);
    return rc;
}

/* ---- WAL codec ----
 * Payload: u8 version (1), uvarint n, then n spans:
 *   16 trace id, 8 span id, 8 parent id, zz start_ns, zz (end_ns - start_ns),
 *   uvarint len + name, uvarint len + service name, zz kind, zz status,
 *   resource: uvarint r (0: new, bytes follow as uvarint len + bytes; k: same as the k-th new
 *   resource of this payload, 1-based), scope: the same scheme, uvarint len + span protobuf.
 */

#define SPANS_WAL_VERSION 1

static void put_ref(buf_t *out, str_t s, str_t *seen, size_t *n_seen, size_t max_seen)
{
    for (size_t i = *n_seen; i-- > 0;) {
        if (str_eq(seen[i], s)) {
            buf_put_uvarint(out, i + 1);
            return;
        }
    }
    buf_put_uvarint(out, 0);
    buf_put_uvarint(out, s.len);
    buf_put_str(out, s);
    if (*n_seen < max_seen)
        seen[(*n_seen)++] = s;
}

void spans_wal_encode(buf_t *out, const db_span_t *spans, size_t n)
{
    enum { MAX_SEEN = 16 };
    str_t res[MAX_SEEN], scopes[MAX_SEEN];
    size_t n_res = 0, n_scopes = 0;
    buf_putc(out, SPANS_WAL_VERSION);
    buf_put_uvarint(out, n);
    for (size_t i = 0; i < n; i++) {
        const db_span_t *s = &spans[i];
        buf_append(out, s->trace_id, 16);
        buf_append(out, s->span_id, 8);
        buf_append(out, s->parent_span_id, 8);
        store__put_zz(out, s->start_ns);
        store__put_zz(out, (int64_t)((uint64_t)s->end_ns - (uint64_t)s->start_ns));
        buf_put_uvarint(out, s->name.len);
        buf_put_str(out, s->name);
        buf_put_uvarint(out, s->service_name.len);
        buf_put_str(out, s->service_name);
        store__put_zz(out, s->kind);
        store__put_zz(out, s->status_code);
        put_ref(out, s->resource_pb, res, &n_res, MAX_SEEN);
        put_ref(out, s->scope_pb, scopes, &n_scopes, MAX_SEEN);
        buf_put_uvarint(out, s->span_pb.len);
        buf_put_str(out, s->span_pb);
    }
}

static str_t get_ref(store_rd_t *r, str_t *seen, size_t *n_seen, size_t max_seen)
{
    uint64_t k = store__rd_uv(r);
    if (k == 0) {
        str_t s = store__rd_str(r);
        if (!r->bad && *n_seen < max_seen)
            seen[(*n_seen)++] = s;
        return s;
    }
    if (k > *n_seen) {
        r->bad = true;
        return STR_NULL;
    }
    return seen[k - 1];
}

/* One pass over the payload; cb NULL only validates. */
static int wal_walk(const uint8_t *p, size_t len, void (*cb)(void *arg, const db_span_t *s),
                    void *arg)
{
    enum { MAX_SEEN = 16 };
    str_t res[MAX_SEEN], scopes[MAX_SEEN];
    size_t n_res = 0, n_scopes = 0;
    store_rd_t r = {p, p + len, false};
    const uint8_t *ver = store__rd_bytes(&r, 1);
    if (!ver || *ver != SPANS_WAL_VERSION)
        return ERR_CORRUPT;
    uint64_t n = store__rd_uv(&r);
    if (r.bad || n > len / 32)
        return ERR_CORRUPT;
    for (uint64_t i = 0; i < n; i++) {
        db_span_t s;
        const uint8_t *ids = store__rd_bytes(&r, 32);
        if (!ids)
            return ERR_CORRUPT;
        memcpy(s.trace_id, ids, 16);
        memcpy(s.span_id, ids + 16, 8);
        memcpy(s.parent_span_id, ids + 24, 8);
        s.start_ns = zigzag_dec(store__rd_uv(&r));
        s.end_ns = (int64_t)((uint64_t)s.start_ns + (uint64_t)zigzag_dec(store__rd_uv(&r)));
        s.name = store__rd_str(&r);
        s.service_name = store__rd_str(&r);
        s.kind = (int)zigzag_dec(store__rd_uv(&r));
        s.status_code = (int)zigzag_dec(store__rd_uv(&r));
        s.resource_pb = get_ref(&r, res, &n_res, MAX_SEEN);
        s.scope_pb = get_ref(&r, scopes, &n_scopes, MAX_SEEN);
        s.span_pb = store__rd_str(&r);
        if (r.bad)
            return ERR_CORRUPT;
        if (cb)
            cb(arg, &s);
    }
    return r.p == r.end ? 0 : ERR_CORRUPT;
}

int spans_wal_decode(const uint8_t *p, size_t n, void (*cb)(void *arg, const db_span_t *s),
                     void *arg)
{
    int rc = wal_walk(p, n, NULL, NULL);
    return rc ? rc : wal_walk(p, n, cb, arg);
}

/* ---- scans with a column prefilter (db.h: db_spans_scan_pre) ---- */

typedef struct pre_scan {
    bool (*pre)(void *arg, const db_span_t *s);
    bool (*cb)(void *arg, const db_span_t *s);
    void *arg;
} pre_scan_t;

static bool head_pre_cb(void *arg, const db_span_t *s)
{
    pre_scan_t *p = arg;
    return !p->pre(p->arg, s) || p->cb(p->arg, s);
}

void db_spans_scan_pre(db_t *db, int64_t mint_ns, int64_t maxt_ns,
                       bool (*pre)(void *arg, const db_span_t *s),
                       bool (*cb)(void *arg, const db_span_t *s), void *arg)
{
    /* Blocks in db order, then the head, as db_spans_scan; the span files skip pages outside
     * the window by their page index. */
    for (size_t i = 0; i < db->n_blocks; i++) {
        if (!db->blocks[i].spans)
            continue;
        if (!spans_file_scan_pre(db->blocks[i].spans, mint_ns, maxt_ns, pre, cb, arg))
            return;
    }
    pre_scan_t p = {pre, cb, arg};
    spans_head_scan(db->spans, mint_ns, maxt_ns, head_pre_cb, &p);
}

void spans_traces_data(buf_t *b, const db_span_t *s)
{
    size_t rs = pb_begin(b, 1);
    pb_put_bytes(b, 1, s->resource_pb.ptr, s->resource_pb.len);
    size_t ss = pb_begin(b, 2);
    pb_put_bytes(b, 1, s->scope_pb.ptr, s->scope_pb.len);
    pb_put_bytes(b, 2, s->span_pb.ptr, s->span_pb.len);
    pb_end(b, ss);
    pb_end(b, rs);
}
