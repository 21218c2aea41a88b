/*
 * filelog.c - JSON-lines files -> Loki entries: the line mapper, the `sources:` config, the
 * positions file and the follower (ingest/filelog.h); the server's tailers on the event loop that
 * drive them are in filelog_tail.c. `skillscope ship` (cli/ship.c) uses the mapper and the follower
 * directly, so the mapping and the follow/rotation logic exist once.
 *
 * Follower algorithm, per poll: glob(3) the pattern; a matching regular file not tracked yet (by
 * device + inode) is opened and starts at its saved position when the positions file holds one
 * for the same device, inode and first-bytes checksum, at its end for a first scan with from_end,
 * else at 0. A tracked file no longer matched (renamed away or deleted) is "gone": it is still
 * read to its end, and closed once it has been idle at its end for FOLLOW_GONE_IDLE_MS (a writer
 * may still append to the old inode right after a rename) - its partial last line, if any, is
 * flushed then. A file whose size drops below the read offset was truncated (copytruncate): its
 * buffered data is dropped and it is read again from 0 under a new generation, so acks of lines
 * from before the truncation are ignored. Lines are split on '\n' (a '\r' before it is removed);
 * a line longer than FILELOG_MAX_LINE_BYTES keeps its first FILELOG_MAX_LINE_BYTES bytes, the rest
 * up to the newline is skipped, and it is emitted (counted) when its newline arrives.
 */
#include "ingest/filelog.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/crc32c.h"
#include "base/fmtnum.h"
#include "base/json.h"
#include "base/log.h"

#define FOLLOW_READ_CHUNK (64u << 10)
#define FOLLOW_GONE_IDLE_MS 1000
#define FOLLOW_RESCAN_MS 500
#define FP_BYTES 256u
#define MAX_META 256

/* ------------------------------------------------------------------------------------------------
 * The line mapper
 * ---------------------------------------------------------------------------------------------- */

static const char *const default_fields[FILELOG_N_FIELDS][6] = {
    [FILELOG_F_TIMESTAMP] = {"timestamp", "time", "ts", "@timestamp", "t", NULL},
    [FILELOG_F_LEVEL] = {"level", "severity", "lvl", "loglevel", NULL},
    [FILELOG_F_MESSAGE] = {"message", "msg", "event", NULL},
    [FILELOG_F_TRACE_ID] = {"trace_id", "traceId", "traceid", NULL},
    [FILELOG_F_SPAN_ID] = {"span_id", "spanId", "spanid", NULL},
};

/* The metadata names the mapped fields are stored under. */
static const char *const field_meta_name[FILELOG_N_FIELDS] = {
    [FILELOG_F_TIMESTAMP] = NULL,    [FILELOG_F_LEVEL] = "level",
    [FILELOG_F_MESSAGE] = "message", [FILELOG_F_TRACE_ID] = "trace_id",
    [FILELOG_F_SPAN_ID] = "span_id",
};

typedef struct lvec {
    label_t *v;
    size_t n, cap;
} lvec_t;

static void lvec_push(lvec_t *l, arena_t *a, str_t name, str_t value)
{
    for (size_t i = 0; i < l->n; i++)
        if (str_eq(l->v[i].name, name))
            return; /* first one wins (two fields sanitised to the same name) */
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        label_t *nv = arena_alloc(a, ncap * sizeof *nv);
        if (l->n)
            memcpy(nv, l->v, l->n * sizeof *nv);
        l->v = nv;
        l->cap = ncap;
    }
    l->v[l->n++] = (label_t){name, value};
}

static bool all_digits(str_t s, bool allow_dot)
{
    if (!s.len)
        return false;
    bool dot = false;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] == '.' && allow_dot && !dot && i > 0 && i + 1 < s.len) {
            dot = true;
            continue;
        }
        if (!isdigit((unsigned char)s.ptr[i]))
            return false;
    }
    return true;
}

/* Epoch in s/ms/us/ns by magnitude: integer part ip (digits before the dot), fraction digits fr. */
static bool epoch_ns(str_t s, int64_t *ns)
{
    size_t dot = s.len;
    for (size_t i = 0; i < s.len; i++)
        if (s.ptr[i] == '.')
            dot = i;
    if (dot > 19)
        return false;
    uint64_t ip = 0;
    for (size_t i = 0; i < dot; i++)
        ip = ip * 10 + (uint64_t)(s.ptr[i] - '0');
    if (ip == 0)
        return false;
    int64_t scale; /* ns per unit */
    if (ip < 100000000000ULL)
        scale = 1000000000;
    else if (ip < 100000000000000ULL)
        scale = 1000000;
    else if (ip < 100000000000000000ULL)
        scale = 1000;
    else
        scale = 1;
    if (ip > (uint64_t)INT64_MAX / (uint64_t)scale)
        return false;
    int64_t v = (int64_t)ip * scale;
    int64_t frac_scale = scale / 10;
    for (size_t i = dot + 1; i < s.len && frac_scale > 0; i++, frac_scale /= 10)
        v += (s.ptr[i] - '0') * frac_scale;
    *ns = v;
    return true;
}

bool filelog_parse_time(str_t s, bool is_number, int64_t *ns)
{
    (void)is_number;
    if (all_digits(s, true))
        return epoch_ns(s, ns);
    if (s.len < 19 || s.len > 64)
        return false;
    char tmp[72];
    memcpy(tmp, s.ptr, s.len);
    size_t n = s.len;
    if (n > 19 && tmp[19] == ',') /* Python logging: "2026-01-02 03:04:05,678" */
        tmp[19] = '.';
    if (rfc3339_parse_ns(str_from(tmp, n), ns, NULL) == 0)
        return true;
    tmp[n] = 'Z'; /* no zone: UTC */
    return rfc3339_parse_ns(str_from(tmp, n + 1), ns, NULL) == 0;
}

/* A scalar as text; NULL-ptr str for null and containers (arrays/objects: JSON text when
 * as_json). */
static str_t value_text(json_t *v, arena_t *a, bool as_json)
{
    char num[FMTNUM_MAX];
    switch (json_typeof(v)) {
    case JSON_STRING:
        return str_from(json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return arena_str(a, str_cstr(num));
    case JSON_REAL:
        fmt_float_prom(num, json_real_value(v));
        return arena_str(a, str_cstr(num));
    case JSON_TRUE:
        return STR("true");
    case JSON_FALSE:
        return STR("false");
    case JSON_NULL:
        return STR_NULL;
    default:
        if (!as_json)
            return STR_NULL;
        char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!d)
            return STR_NULL;
        str_t r = arena_str(a, str_cstr(d));
        free(d);
        return r;
    }
}

/* Loki's sanitising of a flattened key: [a-zA-Z0-9_], a leading digit gets a '_' prefix. */
static str_t sanitize(arena_t *a, str_t prefix, const char *key, size_t klen)
{
    size_t n = prefix.len + (prefix.len ? 1 : 0) + klen;
    char *p = arena_alloc(a, n + 2);
    size_t o = 0;
    if (prefix.len) {
        memcpy(p, prefix.ptr, prefix.len);
        o = prefix.len;
        p[o++] = '_';
    } else if (klen && isdigit((unsigned char)key[0])) {
        p[o++] = '_';
    }
    for (size_t i = 0; i < klen; i++) {
        unsigned char c = (unsigned char)key[i];
        p[o++] = (char)(isalnum(c) || c == '_' ? c : '_');
    }
    if (!o)
        p[o++] = '_';
    p[o] = 0;
    return str_from(p, o);
}

static void flatten(lvec_t *meta, arena_t *a, json_t *obj, str_t prefix, int depth,
                    json_t *const *skip, size_t *n_dropped)
{
    const char *key;
    size_t klen;
    json_t *v;
    json_object_keylen_foreach(obj, key, klen, v)
    {
        bool skipped = false;
        for (size_t i = 0; i < FILELOG_N_FIELDS; i++)
            if (skip[i] == v)
                skipped = true;
        if (skipped)
            continue;
        str_t name = sanitize(a, prefix, key, klen);
        if (json_is_object(v) && depth + 1 < FILELOG_MAX_DEPTH) {
            flatten(meta, a, v, name, depth + 1, skip, n_dropped);
            continue;
        }
        str_t val = value_text(v, a, true);
        if (!val.ptr || !val.len)
            continue;
        if (meta->n >= MAX_META) {
            (*n_dropped)++;
            continue;
        }
        lvec_push(meta, a, name, val);
    }
}

/* The value of a configured field name: a top-level key, else a dotted path into nested objects
 * ("log.level"). */
static json_t *lookup(json_t *root, const char *name)
{
    json_t *v = json_object_get(root, name);
    if (v || !strchr(name, '.'))
        return v;
    json_t *cur = root;
    const char *p = name;
    while (cur && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (!json_is_object(cur))
            return NULL;
        cur = json_object_getn(cur, p, n);
        p = dot ? dot + 1 : p + n;
    }
    return cur;
}

void filelog_map_line(const filelog_map_t *m, str_t line, int64_t now_ns, arena_t *a,
                      filelog_entry_t *out)
{
    memset(out, 0, sizeof *out);
    out->ts_ns = now_ns;
    out->line = line;
    lvec_t stream = {0}, meta = {0};
    for (size_t i = 0; i < m->labels.n; i++)
        lvec_push(&stream, a, m->labels.v[i].name, m->labels.v[i].value);

    size_t k = 0;
    while (k < line.len && (line.ptr[k] == ' ' || line.ptr[k] == '\t'))
        k++;
    json_t *root = NULL;
    if (!m->raw && k < line.len && line.ptr[k] == '{')
        root = json_loadb(line.ptr, line.len, 0, NULL);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        out->stream = (labels_t){stream.v, stream.n};
        return;
    }
    out->json = true;

    json_t *found[FILELOG_N_FIELDS] = {0};
    for (int f = 0; f < FILELOG_N_FIELDS; f++) {
        if (m->fields[f]) {
            found[f] = lookup(root, m->fields[f]);
        } else {
            for (int c = 0; default_fields[f][c] && !found[f]; c++)
                found[f] = json_object_get(root, default_fields[f][c]);
        }
        if (json_is_null(found[f]))
            found[f] = NULL;
    }
    if (found[FILELOG_F_TIMESTAMP]) {
        json_t *t = found[FILELOG_F_TIMESTAMP];
        int64_t ns = 0;
        bool ok = false;
        if (json_is_integer(t) && json_integer_value(t) > 0) {
            char num[32];
            snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(t));
            ok = epoch_ns(str_cstr(num), &ns);
        } else if (json_is_real(t) && json_real_value(t) > 0 && json_real_value(t) < 9.2e18) {
            char num[64];
            snprintf(num, sizeof num, "%.6f", json_real_value(t)); /* a double holds us */
            ok = epoch_ns(str_cstr(num), &ns);
        } else if (json_is_string(t)) {
            ok = filelog_parse_time(str_from(json_string_value(t), json_string_length(t)), false,
                                    &ns);
        }
        if (ok && ns > 0) {
            out->ts_ns = ns;
            out->ts_found = true;
        } else {
            found[FILELOG_F_TIMESTAMP] = NULL; /* unreadable: keep it as metadata */
        }
    }
    for (int f = FILELOG_F_LEVEL; f < FILELOG_N_FIELDS; f++) {
        if (!found[f])
            continue;
        str_t v = value_text(found[f], a, true);
        if (f == FILELOG_F_MESSAGE) {
            if (m->line_message)
                out->line = v;
            continue; /* the original line holds it already */
        }
        if (v.len)
            lvec_push(&meta, a, str_cstr(field_meta_name[f]), v);
    }
    size_t dropped = 0;
    flatten(&meta, a, root, STR_NULL, 0, found, &dropped);
    if (out->line.ptr != line.ptr) {
        /* line: message - the message now points into root, which is freed below. */
        out->line = arena_str(a, out->line);
    }
    /* Metadata values point into root: copy before freeing it. */
    for (size_t i = 0; i < meta.n; i++)
        if (meta.v[i].value.ptr)
            meta.v[i].value = arena_str(a, meta.v[i].value);
    json_decref(root);

    for (size_t p = 0; p < m->n_labels_from_fields; p++) {
        str_t name = str_cstr(m->labels_from_fields[p]);
        for (size_t i = 0; i < meta.n; i++) {
            if (!str_eq(meta.v[i].name, name))
                continue;
            bool replaced = false;
            for (size_t j = 0; j < stream.n; j++)
                if (str_eq(stream.v[j].name, name)) {
                    stream.v[j].value = meta.v[i].value;
                    replaced = true;
                }
            if (!replaced)
                lvec_push(&stream, a, name, meta.v[i].value);
            memmove(&meta.v[i], &meta.v[i + 1], (meta.n - i - 1) * sizeof *meta.v);
            meta.n--;
            break;
        }
    }
    out->stream = (labels_t){stream.v, stream.n};
    out->meta = (labels_t){meta.v, meta.n};
}

/* ------------------------------------------------------------------------------------------------
 * Configuration
 * ---------------------------------------------------------------------------------------------- */

static int cfg_err(err_t *err, const char *file, yaml_node_t *n, size_t i, const char *what,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int cfg_err(err_t *err, const char *file, yaml_node_t *n, size_t i, const char *what,
                   const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set(err, ERR_INVAL, "%s:%zu: sources[%zu].%s: %s", file ? file : "config",
                   n ? (size_t)n->start_mark.line + 1 : 0, i, what, msg);
}

static const char *scalar(yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static bool has_glob_error(const char *pat, char *why, size_t cap)
{
    /* glob(3) has no syntax errors; catch what would silently never match. */
    int depth = 0;
    for (const char *p = pat; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            continue;
        }
        if (*p == '[')
            depth++;
        else if (*p == ']' && depth)
            depth--;
    }
    if (depth) {
        snprintf(why, cap, "unclosed '[' in glob \"%s\"", pat);
        return true;
    }
    if (strstr(pat, "**")) {
        snprintf(why, cap,
                 "\"**\" is not supported in glob \"%s\" (use one '*' per directory level)", pat);
        return true;
    }
    return false;
}

static int parse_labels_map(yaml_document_t *doc, yaml_node_t *v, const char *file, arena_t *a,
                            size_t i, labels_t *out, err_t *err)
{
    if (v->type != YAML_MAPPING_NODE)
        return cfg_err(err, file, v, i, "labels", "must be a mapping of label name to value");
    size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    out->v = ARENA_ARRAY(a, label_t, n ? n : 1);
    out->n = 0;
    for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
        yaml_node_t *kn = yaml_document_get_node(doc, pr->key);
        yaml_node_t *vn = yaml_document_get_node(doc, pr->value);
        const char *k = scalar(kn), *val = scalar(vn);
        if (!k || !val)
            return cfg_err(err, file, kn, i, "labels", "label names and values must be scalars");
        if (!label_name_valid(str_cstr(k)) || strncmp(k, "__", 2) == 0)
            return cfg_err(err, file, kn, i, "labels", "invalid label name \"%s\"", k);
        out->v[out->n++] = (label_t){arena_str(a, str_cstr(k)), arena_str(a, str_cstr(val))};
    }
    labels_t tmp = *out;
    if (labels_sort(&tmp) != 0)
        return cfg_err(err, file, v, i, "labels", "duplicate label name");
    return 0;
}

static int parse_source(yaml_document_t *doc, yaml_node_t *node, const char *file, arena_t *a,
                        size_t i, filelog_source_t *s, err_t *err)
{
    memset(s, 0, sizeof *s);
    if (node->type != YAML_MAPPING_NODE)
        return err_set(err, ERR_INVAL, "%s:%zu: sources[%zu]: must be a mapping with a path",
                       file ? file : "config", (size_t)node->start_mark.line + 1, i);
    for (yaml_node_pair_t *pr = node->data.mapping.pairs.start; pr < node->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *kn = yaml_document_get_node(doc, pr->key);
        yaml_node_t *v = yaml_document_get_node(doc, pr->value);
        const char *k = scalar(kn);
        if (!k)
            return cfg_err(err, file, kn, i, "?", "keys must be scalars");
        if (!strcmp(k, "path")) {
            const char *p = scalar(v);
            if (!p || !*p)
                return cfg_err(err, file, v, i, "path", "must be a non-empty glob pattern");
            char why[300];
            if (has_glob_error(p, why, sizeof why))
                return cfg_err(err, file, v, i, "path", "%s", why);
            s->path = arena_strndup(a, p, strlen(p));
        } else if (!strcmp(k, "labels")) {
            int rc = parse_labels_map(doc, v, file, a, i, &s->map.labels, err);
            if (rc)
                return rc;
        } else if (!strcmp(k, "format")) {
            const char *f = scalar(v);
            if (f && !strcmp(f, "json"))
                s->map.raw = false;
            else if (f && !strcmp(f, "raw"))
                s->map.raw = true;
            else
                return cfg_err(err, file, v, i, "format", "must be json or raw, got \"%s\"",
                               f ? f : "?");
        } else if (!strcmp(k, "line")) {
            const char *f = scalar(v);
            if (f && !strcmp(f, "original"))
                s->map.line_message = false;
            else if (f && !strcmp(f, "message"))
                s->map.line_message = true;
            else
                return cfg_err(err, file, v, i, "line", "must be original or message, got \"%s\"",
                               f ? f : "?");
        } else if (!strcmp(k, "fields")) {
            if (v->type != YAML_MAPPING_NODE)
                return cfg_err(err, file, v, i, "fields", "must be a mapping like {timestamp: ts}");
            for (yaml_node_pair_t *fp = v->data.mapping.pairs.start; fp < v->data.mapping.pairs.top;
                 fp++) {
                const char *fk = scalar(yaml_document_get_node(doc, fp->key));
                const char *fv = scalar(yaml_document_get_node(doc, fp->value));
                static const char *const names[FILELOG_N_FIELDS] = {"timestamp", "level", "message",
                                                                    "trace_id", "span_id"};
                int which = -1;
                for (int f = 0; fk && f < FILELOG_N_FIELDS; f++)
                    if (!strcmp(fk, names[f]))
                        which = f;
                if (which < 0)
                    return cfg_err(err, file, yaml_document_get_node(doc, fp->key), i, "fields",
                                   "unknown field \"%s\" (timestamp, level, message, trace_id, "
                                   "span_id)",
                                   fk ? fk : "?");
                if (!fv || !*fv)
                    return cfg_err(err, file, yaml_document_get_node(doc, fp->value), i, "fields",
                                   "field name for %s must be a non-empty string", fk);
                s->map.fields[which] = arena_strndup(a, fv, strlen(fv));
            }
        } else if (!strcmp(k, "labels_from_fields")) {
            if (v->type != YAML_SEQUENCE_NODE)
                return cfg_err(err, file, v, i, "labels_from_fields",
                               "must be a list of field names");
            size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
            s->map.labels_from_fields = ARENA_ARRAY(a, const char *, n ? n : 1);
            for (yaml_node_item_t *it = v->data.sequence.items.start;
                 it < v->data.sequence.items.top; it++) {
                const char *f = scalar(yaml_document_get_node(doc, *it));
                if (!f || !label_name_valid(str_cstr(f)))
                    return cfg_err(err, file, v, i, "labels_from_fields",
                                   "\"%s\" is not a valid label name", f ? f : "?");
                s->map.labels_from_fields[s->map.n_labels_from_fields++] =
                    arena_strndup(a, f, strlen(f));
            }
        } else {
            return cfg_err(err, file, kn, i, k,
                           "unknown key \"%s\" (path, labels, format, line, fields, "
                           "labels_from_fields)",
                           k);
        }
    }
    if (!s->path)
        return err_set(err, ERR_INVAL, "%s:%zu: sources[%zu]: path is required",
                       file ? file : "config", (size_t)node->start_mark.line + 1, i);
    return 0;
}

int filelog_config_parse(yaml_document_t *doc, yaml_node_t *node, const char *file, arena_t *a,
                         filelog_source_t **out, size_t *n_out, err_t *err)
{
    *out = NULL;
    *n_out = 0;
    if (!node)
        return 0;
    if (node->type != YAML_SEQUENCE_NODE)
        return err_set(err, ERR_INVAL,
                       "%s:%zu: sources: must be a list of {path: GLOB, labels: {...}} entries",
                       file ? file : "config", (size_t)node->start_mark.line + 1);
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    filelog_source_t *v = ARENA_ARRAY(a, filelog_source_t, n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *it = yaml_document_get_node(doc, node->data.sequence.items.start[i]);
        int rc = parse_source(doc, it, file, a, i, &v[i], err);
        if (rc)
            return rc;
    }
    *out = v;
    *n_out = n;
    return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Positions
 * ---------------------------------------------------------------------------------------------- */

void filelog_positions_free(filelog_positions_t *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i].path);
    free(p->v);
    memset(p, 0, sizeof *p);
}

const filelog_pos_t *filelog_positions_find(const filelog_positions_t *p, uint64_t dev,
                                            uint64_t ino)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->v[i].dev == dev && p->v[i].ino == ino)
            return &p->v[i];
    return NULL;
}

void filelog_positions_set(filelog_positions_t *p, const filelog_pos_t *e)
{
    filelog_pos_t *d = (filelog_pos_t *)filelog_positions_find(p, e->dev, e->ino);
    if (!d) {
        if (p->n == p->cap) {
            p->cap = p->cap ? p->cap * 2 : 8;
            filelog_pos_t *nv = realloc(p->v, p->cap * sizeof *nv);
            if (!nv)
                abort();
            p->v = nv;
        }
        d = &p->v[p->n++];
    } else {
        free(d->path);
    }
    *d = *e;
    d->path = strdup(e->path ? e->path : "");
    if (!d->path)
        abort();
}

/* The file format (one JSON object, keys in this order when written):
 *   {"version":1,"files":[{"path":"/var/log/a.jsonl","dev":2049,"ino":131,"offset":1234,
 *                          "fp":3735928559,"fp_len":256}, ...]}
 * dev/ino identify the file; fp is the CRC32C of its first fp_len bytes (catches inode reuse). */
int filelog_positions_load(const char *path, filelog_positions_t *p, err_t *err)
{
    memset(p, 0, sizeof *p);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) {
        if (access(path, F_OK) != 0 && errno == ENOENT)
            return 0;
        return err_set(err, ERR_PARSE, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    }
    json_t *files = json_object_get(root, "files");
    if (!json_is_array(files)) {
        json_decref(root);
        return err_set(err, ERR_PARSE, "%s: no \"files\" array", path);
    }
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f)
    {
        json_t *jp = json_object_get(f, "path"), *jd = json_object_get(f, "dev"),
               *ji = json_object_get(f, "ino"), *jo = json_object_get(f, "offset"),
               *jf = json_object_get(f, "fp"), *jl = json_object_get(f, "fp_len");
        if (!json_is_string(jp) || !json_is_integer(jd) || !json_is_integer(ji) ||
            !json_is_integer(jo) || json_integer_value(jo) < 0) {
            json_decref(root);
            filelog_positions_free(p);
            return err_set(err, ERR_PARSE, "%s: files[%zu]: needs path, dev, ino and offset", path,
                           i);
        }
        filelog_pos_t e = {
            .path = (char *)json_string_value(jp),
            .dev = (uint64_t)json_integer_value(jd),
            .ino = (uint64_t)json_integer_value(ji),
            .offset = (uint64_t)json_integer_value(jo),
            .fp = json_is_integer(jf) ? (uint32_t)json_integer_value(jf) : 0,
            .fp_len = json_is_integer(jl) ? (uint32_t)json_integer_value(jl) : 0,
        };
        filelog_positions_set(p, &e);
    }
    json_decref(root);
    return 0;
}

int filelog_positions_save(const char *path, const filelog_positions_t *p, err_t *err)
{
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj(&w);
    jw_key(&w, "version");
    jw_int(&w, 1);
    jw_key(&w, "files");
    jw_arr(&w);
    for (size_t i = 0; i < p->n; i++) {
        const filelog_pos_t *e = &p->v[i];
        jw_obj(&w);
        jw_key(&w, "path");
        jw_cstr(&w, e->path ? e->path : "");
        jw_key(&w, "dev");
        jw_uint(&w, e->dev);
        jw_key(&w, "ino");
        jw_uint(&w, e->ino);
        jw_key(&w, "offset");
        jw_uint(&w, e->offset);
        jw_key(&w, "fp");
        jw_uint(&w, e->fp);
        jw_key(&w, "fp_len");
        jw_uint(&w, e->fp_len);
        jw_end(&w);
    }
    jw_end(&w);
    jw_end(&w);
    buf_putc(&b, '\n');

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 8);
    if (!tmp)
        abort();
    snprintf(tmp, plen + 8, "%s.tmp", path);
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = err_set(err, ERR_IO, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    const uint8_t *q = b.pos;
    size_t left = buf_len(&b);
    while (left) {
        ssize_t n = write(fd, q, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = err_set(err, ERR_IO, "%s: write: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            goto out;
        }
        q += n;
        left -= (size_t)n;
    }
    if (fsync(fd) != 0) {
        rc = err_set(err, ERR_IO, "%s: fsync: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        rc = err_set(err, ERR_IO, "rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
        goto out;
    }
    /* fsync the directory so the rename itself is durable. */
    char *dir = strdup(path);
    if (!dir)
        abort();
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = 0;
    else if (slash)
        *slash = 0;
    else
        strcpy(dir, ".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(dir);
out:
    free(tmp);
    buf_deinit(&b);
    return rc;
}

/* ------------------------------------------------------------------------------------------------
 * Follower
 * ---------------------------------------------------------------------------------------------- */

struct filelog_file {
    filelog_follow_t *owner;
    filelog_file_t *next;
    char *path;
    int fd; /* -1 once finished */
    uint64_t dev, ino;
    uint64_t line_off;  /* file offset of buf's first byte */
    uint64_t extra;     /* bytes of an over-long line skipped after buf's FILELOG_MAX_LINE_BYTES */
    uint64_t acked_off; /* durable */
    uint32_t gen;       /* bumped on truncation; acks of older generations are ignored */
    uint32_t fp, fp_len;
    buf_t buf;
    size_t scan_from; /* bytes of buf already searched for '\n' */
    bool overlong;
    bool gone;
    bool seen;
    int refs;
    int64_t idle_since_ms;
};

struct filelog_follow {
    char *pattern;
    char *dir; /* the directory inotify watches (pattern's directory when it has no wildcard) */
    int ino_fd, ino_wd;
    const filelog_positions_t *pos;
    bool from_end, scanned;
    bool need_scan; /* inotify saw files appear, move or go */
    int64_t last_scan_ms;
    filelog_file_t *files; /* discovery order */
    filelog_follow_stats_t st;
};

static bool has_wild(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '*' || s[i] == '?' || s[i] == '[')
            return true;
    return false;
}

static void watch_dir(filelog_follow_t *f)
{
    if (f->ino_fd < 0 || f->ino_wd >= 0 || !f->dir)
        return;
    f->ino_wd = inotify_add_watch(f->ino_fd, f->dir,
                                  IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                      IN_CLOSE_WRITE | IN_ATTRIB);
}

filelog_follow_t *filelog_follow_new(const char *pattern, const filelog_positions_t *pos,
                                     bool from_end)
{
    filelog_follow_t *f = calloc(1, sizeof *f);
    if (!f)
        abort();
    f->pattern = strdup(pattern);
    if (!f->pattern)
        abort();
    f->pos = pos;
    f->from_end = from_end;
    f->ino_wd = -1;
    const char *slash = strrchr(pattern, '/');
    if (slash && !has_wild(pattern, (size_t)(slash - pattern))) {
        size_t n = slash == pattern ? 1 : (size_t)(slash - pattern);
        f->dir = strndup(pattern, n);
    } else if (!slash) {
        f->dir = strdup(".");
    }
    f->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    watch_dir(f);
    return f;
}

static void file_close_fd(filelog_file_t *x)
{
    if (x->fd >= 0) {
        close(x->fd);
        x->fd = -1;
    }
    buf_deinit(&x->buf);
}

static void file_free(filelog_file_t *x)
{
    file_close_fd(x);
    free(x->path);
    free(x);
}

void filelog_follow_free(filelog_follow_t *f)
{
    if (!f)
        return;
    for (filelog_file_t *x = f->files, *nx; x; x = nx) {
        nx = x->next;
        file_free(x);
    }
    if (f->ino_fd >= 0)
        close(f->ino_fd);
    free(f->dir);
    free(f->pattern);
    free(f);
}

int filelog_follow_fd(filelog_follow_t *f) { return f->ino_fd; }

void filelog_follow_drain(filelog_follow_t *f)
{
    char ev[4096];
    while (f->ino_fd >= 0) {
        ssize_t n = read(f->ino_fd, ev, sizeof ev);
        if (n <= 0)
            break;
        for (ssize_t o = 0; o + (ssize_t)sizeof(struct inotify_event) <= n;) {
            struct inotify_event *e = (struct inotify_event *)(void *)(ev + o);
            if (e->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF))
                f->ino_wd = -1; /* the directory went away: re-add on the next scan */
            if (e->mask & (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_IGNORED |
                           IN_Q_OVERFLOW | IN_ATTRIB))
                f->need_scan = true;
            o += (ssize_t)sizeof *e + e->len;
        }
    }
}

static void fingerprint(int fd, uint32_t *fp, uint32_t *fp_len)
{
    char b[FP_BYTES];
    ssize_t n = pread(fd, b, sizeof b, 0);
    if (n < 0)
        n = 0;
    *fp = crc32c(0, b, (size_t)n);
    *fp_len = (uint32_t)n;
}

/* True when the file behind fd still starts with the bytes the saved entry saw. */
static bool fingerprint_ok(int fd, const filelog_pos_t *e)
{
    if (e->fp_len > FP_BYTES)
        return false;
    char b[FP_BYTES];
    ssize_t n = pread(fd, b, e->fp_len, 0);
    return n == (ssize_t)e->fp_len && crc32c(0, b, (size_t)n) == e->fp;
}

static filelog_file_t *file_open(filelog_follow_t *f, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return NULL;
    }
    filelog_file_t *x = calloc(1, sizeof *x);
    if (!x)
        abort();
    x->owner = f;
    x->path = strdup(path);
    if (!x->path)
        abort();
    x->fd = fd;
    x->dev = (uint64_t)st.st_dev;
    x->ino = (uint64_t)st.st_ino;
    x->idle_since_ms = clock_now_ms();
    const filelog_pos_t *e = f->pos ? filelog_positions_find(f->pos, x->dev, x->ino) : NULL;
    uint64_t start = 0;
    if (e && e->offset <= (uint64_t)st.st_size && fingerprint_ok(fd, e))
        start = e->offset;
    else if (!f->scanned && f->from_end)
        start = (uint64_t)st.st_size;
    x->line_off = x->acked_off = start;
    fingerprint(fd, &x->fp, &x->fp_len);
    return x;
}

static filelog_file_t *find_file(filelog_follow_t *f, uint64_t dev, uint64_t ino)
{
    for (filelog_file_t *x = f->files; x; x = x->next)
        if (x->fd >= 0 && x->dev == dev && x->ino == ino)
            return x;
    return NULL;
}

static void scan(filelog_follow_t *f)
{
    watch_dir(f);
    for (filelog_file_t *x = f->files; x; x = x->next)
        x->seen = false;
    glob_t g;
    memset(&g, 0, sizeof g);
    int rc = glob(f->pattern, GLOB_NOSORT, NULL, &g);
    if (rc == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            struct stat st;
            if (stat(g.gl_pathv[i], &st) != 0 || !S_ISREG(st.st_mode))
                continue;
            filelog_file_t *x = find_file(f, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
            if (x) {
                x->seen = true;
                if (x->gone) /* came back under a matching name */
                    x->gone = false;
                continue;
            }
            x = file_open(f, g.gl_pathv[i]);
            if (!x)
                continue;
            x->seen = true;
            /* append: older files are read first */
            filelog_file_t **tail = &f->files;
            while (*tail)
                tail = &(*tail)->next;
            *tail = x;
            f->st.files_open++;
        }
    }
    globfree(&g);
    for (filelog_file_t *x = f->files; x; x = x->next)
        if (x->fd >= 0 && !x->seen && !x->gone) {
            x->gone = true;
            x->idle_since_ms = clock_now_ms();
            f->st.rotations++;
        }
    f->scanned = true;
}

/* Emits complete lines from x's buffer. Returns false when fn asked to stop. */
static bool split_lines(filelog_follow_t *f, filelog_file_t *x, filelog_line_fn fn, void *arg)
{
    for (;;) {
        size_t len = buf_len(&x->buf);
        const char *base = (const char *)x->buf.pos;
        const char *nl =
            x->scan_from < len ? memchr(base + x->scan_from, '\n', len - x->scan_from) : NULL;
        if (!nl) {
            if (len > FILELOG_MAX_LINE_BYTES) {
                x->extra += len - FILELOG_MAX_LINE_BYTES;
                x->buf.last = x->buf.pos + FILELOG_MAX_LINE_BYTES;
                x->overlong = true;
            }
            x->scan_from = buf_len(&x->buf);
            return true;
        }
        size_t k = (size_t)(nl - base);
        size_t line_len = k;
        if (x->overlong || line_len > FILELOG_MAX_LINE_BYTES) {
            if (line_len > FILELOG_MAX_LINE_BYTES)
                line_len = FILELOG_MAX_LINE_BYTES;
            f->st.truncated_lines++;
        } else if (line_len && base[line_len - 1] == '\r') {
            line_len--;
        }
        uint64_t consumed = k + 1 + x->extra;
        uint64_t end_off = x->line_off + consumed;
        f->st.lines++;
        f->st.bytes += consumed;
        bool go = fn(arg, x, str_from(base, line_len), end_off);
        x->buf.pos += k + 1;
        x->line_off = end_off;
        x->extra = 0;
        x->overlong = false;
        x->scan_from = 0;
        if (!go)
            return false;
    }
}

/* Reads x to its current end (or until the budget is spent). Returns false when fn stopped. */
static bool read_file(filelog_follow_t *f, filelog_file_t *x, size_t *budget, filelog_line_fn fn,
                      void *arg, bool *more)
{
    struct stat st;
    if (fstat(x->fd, &st) != 0)
        return true;
    uint64_t read_off = x->line_off + buf_len(&x->buf) + x->extra;
    if ((uint64_t)st.st_size < read_off) {
        /* copytruncate: start over at 0 */
        f->st.truncations++;
        buf_clear(&x->buf);
        x->line_off = x->acked_off = 0;
        x->extra = 0;
        x->overlong = false;
        x->scan_from = 0;
        x->gen++;
        fingerprint(x->fd, &x->fp, &x->fp_len);
        read_off = 0;
    }
    if (x->fp_len < FP_BYTES && (uint64_t)st.st_size > x->fp_len)
        fingerprint(x->fd, &x->fp, &x->fp_len);
    bool progressed = false;
    if (buf_len(&x->buf) && !split_lines(f, x, fn, arg)) {
        *more = true; /* lines left over from a poll that stopped early */
        return false;
    }
    while (read_off < (uint64_t)st.st_size) {
        if (*budget == 0) {
            *more = true;
            return true;
        }
        if (buf_len(&x->buf) == 0)
            buf_clear(&x->buf); /* reuse the buffer from its start */
        else if (x->buf.pos - x->buf.start > (ptrdiff_t)(x->buf.end - x->buf.start) / 2) {
            size_t n = buf_len(&x->buf);
            memmove(x->buf.start, x->buf.pos, n);
            x->buf.pos = x->buf.start;
            x->buf.last = x->buf.start + n;
        }
        size_t want = FOLLOW_READ_CHUNK;
        if ((uint64_t)st.st_size - read_off < want)
            want = (size_t)((uint64_t)st.st_size - read_off);
        uint8_t *dst = buf_reserve(&x->buf, want);
        ssize_t n = pread(x->fd, dst, want, (off_t)read_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        x->buf.last += n;
        read_off += (uint64_t)n;
        *budget = *budget > (size_t)n ? *budget - (size_t)n : 0;
        progressed = true;
        if (!split_lines(f, x, fn, arg)) {
            *more = true;
            return false;
        }
    }
    int64_t now = clock_now_ms();
    if (progressed)
        x->idle_since_ms = now;
    if (x->gone && read_off >= (uint64_t)st.st_size &&
        now - x->idle_since_ms >= FOLLOW_GONE_IDLE_MS) {
        /* Finished with a rotated-away file: flush its partial last line and close it. */
        if (buf_len(&x->buf)) {
            size_t len = buf_len(&x->buf);
            uint64_t end_off = x->line_off + len + x->extra;
            if (x->overlong)
                f->st.truncated_lines++;
            f->st.lines++;
            f->st.bytes += len + x->extra;
            fn(arg, x, buf_str(&x->buf), end_off);
            buf_clear(&x->buf);
            x->line_off = end_off;
            x->extra = 0;
        }
        file_close_fd(x);
        f->st.files_open--;
    }
    return true;
}

static void reap(filelog_follow_t *f)
{
    for (filelog_file_t **pp = &f->files; *pp;) {
        filelog_file_t *x = *pp;
        if (x->fd < 0 && x->refs == 0) {
            *pp = x->next;
            file_free(x);
        } else {
            pp = &x->next;
        }
    }
}

bool filelog_follow_poll(filelog_follow_t *f, size_t max_bytes, filelog_line_fn fn, void *arg)
{
    /* Globbing and stat'ing every match is the costly part of a poll: do it when inotify saw the
     * directory change (or cannot tell us), and every FOLLOW_RESCAN_MS in any case (rotation
     * inside a wildcard directory, missed events). Plain appends only need the reads below. */
    filelog_follow_drain(f);
    int64_t now = clock_now_ms();
    if (!f->scanned || f->need_scan || f->ino_fd < 0 || f->ino_wd < 0 || !f->dir ||
        now - f->last_scan_ms >= FOLLOW_RESCAN_MS) {
        f->need_scan = false;
        f->last_scan_ms = now;
        scan(f);
    }
    size_t budget = max_bytes ? max_bytes : SIZE_MAX;
    bool more = false;
    for (filelog_file_t *x = f->files; x; x = x->next) {
        if (x->fd < 0)
            continue;
        if (!read_file(f, x, &budget, fn, arg, &more))
            break;
    }
    reap(f);
    return more;
}

void filelog_follow_rewind(filelog_follow_t *f)
{
    for (filelog_file_t *x = f->files; x; x = x->next) {
        if (x->fd < 0)
            continue;
        buf_clear(&x->buf);
        x->line_off = x->acked_off;
        x->extra = 0;
        x->overlong = false;
        x->scan_from = 0;
        x->gen++;
    }
}

void filelog_follow_get_stats(const filelog_follow_t *f, filelog_follow_stats_t *st)
{
    *st = f->st;
}

uint32_t filelog_file_gen(const filelog_file_t *file) { return file->gen; }

void filelog_file_ack(filelog_file_t *file, uint32_t gen, uint64_t end_off)
{
    if (gen == file->gen && end_off > file->acked_off)
        file->acked_off = end_off;
}

const char *filelog_file_path(const filelog_file_t *file) { return file->path; }

void filelog_file_ref(filelog_file_t *file) { file->refs++; }

void filelog_file_unref(filelog_file_t *file)
{
    if (file->refs > 0)
        file->refs--;
}

void filelog_follow_positions(const filelog_follow_t *f, filelog_positions_t *p)
{
    for (filelog_file_t *x = f->files; x; x = x->next) {
        if (x->fd < 0)
            continue; /* finished (rotated away and read to its end) */
        if (x->fp_len < FP_BYTES)
            fingerprint(x->fd, &x->fp, &x->fp_len);
        filelog_pos_t e = {.path = x->path,
                           .dev = x->dev,
                           .ino = x->ino,
                           .offset = x->acked_off,
                           .fp = x->fp,
                           .fp_len = x->fp_len};
        filelog_positions_set(p, &e);
    }
}
