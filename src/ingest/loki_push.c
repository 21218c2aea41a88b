/*
 * loki_push.c - POST /loki/api/v1/push and /api/prom/push, the Loki push receiver (loki_push.h).
 *
 * Flow, on the loop thread: pick the body format by media type (application/json is JSON, anything
 * else a snappy block-compressed logproto.PushRequest, as Loki's parsePushRequestBody does; a
 * Content-Encoding: snappy header is accepted and means nothing more), decode with proto/lokipb,
 * validate every stream and entry (loki_push_prepare), and only when all of them pass fill one
 * db_batch and commit it. The reply waits for the commit callback: 204 when durable, 503 +
 * Retry-After when the WAL queue is full or the write failed.
 *
 * Validation follows Loki's distributor with its default limits (constants in loki_push.h), with
 * its messages (pkg/validation/validate.go), in this order per stream: the label string parses
 * (ParseLabels), at least one label, no duplicate names, at most 15 names, name and value lengths;
 * then per entry: timestamp, line size, structured metadata (non-empty unique names, at most 128
 * pairs and 64 KiB). Deliberate differences from Loki:
 *   - One invalid stream or entry refuses the whole request (Loki writes the valid streams and
 *     still answers 400), so a client that retries or drops on 400 never leaves half a push stored.
 *   - Out-of-order entries within a stream are accepted whatever their age (the store sorts
 *     them), as Loki 3's unordered writes do within their window; exact duplicates are dropped by
 *     the store as Loki does.
 *   - Loki's reject_old_samples_max_age (168h) is not applied: a shipper catching up on an old
 *     file would otherwise lose whole batches; the store's retention ages data out instead. Only
 *     timestamps at or before the Unix epoch (the zero value senders leave by mistake) are
 *     refused. creation_grace_period (10m into the future) is applied as in Loki.
 * Structured metadata names are normalised as Loki's distributor does
 * (otlptranslate.NormalizeLabel, here pipeline/promname: "trace.id" is stored as trace_id); an
 * empty name, or two names that normalise to the same one in an entry, refuse the request.
 */
#include "ingest/loki_push.h"

#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/utf8.h"
#include "ingest/internal.h"
#include "ingest/otlp.h"
#include "pipeline/promname.h"

typedef struct pending {
    http_req_t *req;
    uint64_t entries;
} pending_t;

/* ---- label strings ---- */

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* "{}" or blank: a set with no labels, which the caller reports as missing labels. */
static bool blank_set(str_t t)
{
    size_t i = 0, n = t.len;
    while (i < n && is_ws(t.ptr[i]))
        i++;
    while (n > i && is_ws(t.ptr[n - 1]))
        n--;
    if (i == n)
        return true;
    if (n - i < 2 || t.ptr[i] != '{' || t.ptr[n - 1] != '}')
        return false;
    for (size_t k = i + 1; k < n - 1; k++)
        if (!is_ws(t.ptr[k]))
            return false;
    return true;
}

/*
 * The selector parser refuses a selector whose matchers all accept "" ({a=""}), which for a label
 * set means "every value is empty", i.e. no labels. To tell that case from a genuine operator
 * error, the text is parsed again with a non-empty sentinel label put in front of the first
 * matcher; only this error path pays for it.
 */
static int reparse_all_empty(str_t text, arena_t *a, matcher_t **ms, size_t *nm)
{
    const char *brace = memchr(text.ptr, '{', text.len);
    if (!brace)
        return ERR_PARSE;
    static const char k_sentinel[] = "__loki_push_sentinel__=\"x\",";
    size_t pre = (size_t)(brace - text.ptr) + 1, n = text.len + sizeof k_sentinel - 1;
    char *s = arena_alloc(a, n);
    memcpy(s, text.ptr, pre);
    memcpy(s + pre, k_sentinel, sizeof k_sentinel - 1);
    memcpy(s + pre + sizeof k_sentinel - 1, text.ptr + pre, text.len - pre);
    err_t ignored;
    err_clear(&ignored);
    int rc = matchers_parse(str_from(s, n), a, ms, nm, &ignored);
    if (rc)
        return rc;
    if (!*nm || !str_eq_cstr((*ms)[0].name, "__loki_push_sentinel__")) {
        matchers_deinit(*ms, *nm); /* the brace was not where the label set starts */
        return ERR_PARSE;
    }
    (*ms)++; /* drop the sentinel */
    (*nm)--;
    return 0;
}

/*
 * A label set takes only '='. The selector parser would accept !=, =~ and !~ (and compile a regex
 * for each, which a 16 MiB body of {a=~"x",a=~"x",...} would turn into millions of compiles on
 * the loop thread), so those operators are refused here first, with their position, by a scan
 * that skips quoted strings and # comments as the parser's lexer does.
 */
static int check_ops(str_t t, err_t *err)
{
    int line = 1, col = 1;
    char quote = 0;
    for (size_t i = 0; i < t.len; i++, col++) {
        char c = t.ptr[i];
        if (c == '\n') {
            line++;
            col = 0;
        }
        if (quote) {
            if (c == '\\' && quote != '`' && i + 1 < t.len && t.ptr[i + 1] != '\n') {
                i++;
                col++;
            } else if (c == quote) {
                quote = 0;
            }
            continue;
        }
        if (c == '"' || c == '\'' || c == '`') {
            quote = c;
        } else if (c == '#') {
            while (i + 1 < t.len && t.ptr[i + 1] != '\n')
                i++;
        } else if (i + 1 < t.len && ((c == '!' && (t.ptr[i + 1] == '=' || t.ptr[i + 1] == '~')) ||
                                     (c == '=' && t.ptr[i + 1] == '~'))) {
            return err_set_at(err, ERR_PARSE, line, col,
                              "%d:%d: unexpected '%c%c': a label set takes only '='", line, col, c,
                              t.ptr[i + 1]);
        }
    }
    return 0;
}

static const char *match_op(match_type_t t)
{
    switch (t) {
    case MATCH_EQ:
        return "=";
    case MATCH_NEQ:
        return "!=";
    case MATCH_RE:
        return "=~";
    case MATCH_NRE:
        return "!~";
    }
    return "?";
}

/* Sorts, reports a duplicate name (empty values included: {a="", a="b"} names a twice), then
 * drops the labels with empty values. */
static int finish_set(labels_t *ls, err_t *err)
{
    if (labels_sort(ls) != 0) {
        for (size_t i = 1; i < ls->n; i++)
            if (str_eq(ls->v[i - 1].name, ls->v[i].name))
                return err_set(err, ERR_DUPLICATE, "%.*s", STR_FMT(ls->v[i].name));
        return err_set(err, ERR_DUPLICATE, "?");
    }
    size_t k = 0;
    for (size_t i = 0; i < ls->n; i++)
        if (ls->v[i].value.len)
            ls->v[k++] = ls->v[i];
    ls->n = k;
    return 0;
}

int loki_push_parse_labels(str_t text, arena_t *a, labels_t *out, err_t *err)
{
    *out = (labels_t){NULL, 0};
    if (blank_set(text))
        return 0;
    int rc = check_ops(text, err);
    if (rc)
        return rc;
    matcher_t *ms = NULL;
    size_t nm = 0;
    rc = matchers_parse(text, a, &ms, &nm, err);
    matcher_t *all = ms;
    size_t n_all = nm;
    if (rc) {
        /* Only "{a=""}"-like sets end up here successfully; other errors keep the first message. */
        if (!strstr(err->msg, "non-empty matcher") || reparse_all_empty(text, a, &ms, &nm) != 0)
            return ERR_PARSE;
        all = ms - 1;
        n_all = nm + 1;
        err_clear(err);
        rc = 0;
    }
    labels_t ls = {ARENA_ARRAY(a, label_t, nm ? nm : 1), nm};
    for (size_t i = 0; i < nm && !rc; i++) {
        const matcher_t *m = &ms[i];
        if (m->type != MATCH_EQ)
            rc = err_set(err, ERR_PARSE,
                         "unexpected '%s' after label name \"%.*s\": a label set takes only '='",
                         match_op(m->type), STR_FMT(m->name));
        else if (!label_name_valid(m->name))
            rc = err_set(err, ERR_PARSE,
                         "invalid label name \"%.*s\": must match [a-zA-Z_][a-zA-Z0-9_]*",
                         STR_FMT(m->name));
        else if (!utf8_valid(m->value.ptr, m->value.len))
            rc = err_set(err, ERR_PARSE, "value of label \"%.*s\" is not valid UTF-8",
                         STR_FMT(m->name));
        else
            ls.v[i] = (label_t){m->name, m->value};
    }
    matchers_deinit(all, n_all);
    if (rc)
        return rc;
    if ((rc = finish_set(&ls, err)))
        return rc;
    *out = ls;
    return 0;
}

/* ---- validation ---- */

/* Label sets and names in messages are cut at these many bytes (with "...") so that a message
 * about an over-long label still shows what it is about. */
#define MSG_LABELS_BYTES 300
#define MSG_NAME_BYTES 80

static const char *clip(arena_t *a, const char *s, size_t n, size_t max)
{
    if (n <= max)
        return arena_strndup(a, s, n);
    while (max && ((unsigned char)s[max] & 0xc0) == 0x80) /* do not split a UTF-8 sequence */
        max--;
    return arena_sprintf(a, "%.*s...", (int)max, s);
}

static const char *clip_str(arena_t *a, str_t s) { return clip(a, s.ptr, s.len, MSG_NAME_BYTES); }

static const char *fmt_labels(arena_t *a, const labels_t *ls)
{
    buf_t b = BUF_INIT;
    labels_format(&b, ls);
    const char *s = clip(a, (const char *)b.pos, buf_len(&b), MSG_LABELS_BYTES);
    buf_deinit(&b);
    return s;
}

/* JSON streams: the object's pairs, with names checked as the label-string parser checks them. */
static int json_labels(const lokipb_stream_t *s, arena_t *a, labels_t *out, err_t *err)
{
    labels_t ls = {ARENA_ARRAY(a, label_t, s->n_labels ? s->n_labels : 1), s->n_labels};
    for (size_t i = 0; i < s->n_labels; i++) {
        ls.v[i] = (label_t){s->labels[i].name, s->labels[i].value};
        if (!label_name_valid(s->labels[i].name))
            return err_set(err, ERR_PARSE,
                           "invalid label name \"%.*s\": must match [a-zA-Z_][a-zA-Z0-9_]*",
                           STR_FMT(s->labels[i].name));
    }
    int rc = finish_set(&ls, err);
    if (!rc)
        *out = ls;
    return rc;
}

/* The stream's labels as Loki prints them in messages, for the label-parse error. */
static const char *raw_labels_text(const lokipb_stream_t *s, arena_t *a)
{
    if (s->labels_text.ptr || !s->n_labels)
        return arena_strndup(a, s->labels_text.ptr ? s->labels_text.ptr : "", s->labels_text.len);
    labels_t ls = {ARENA_ARRAY(a, label_t, s->n_labels), s->n_labels};
    for (size_t i = 0; i < s->n_labels; i++)
        ls.v[i] = (label_t){s->labels[i].name, s->labels[i].value};
    (void)labels_sort(&ls); /* Go prints a JSON label map sorted by name */
    return fmt_labels(a, &ls);
}

static int stream_labels(const lokipb_stream_t *s, arena_t *a, labels_t *ls, err_t *err)
{
    err_t perr;
    err_clear(&perr);
    int rc = s->labels_text.ptr ? loki_push_parse_labels(s->labels_text, a, ls, &perr)
                                : json_labels(s, a, ls, &perr);
    if (rc == ERR_DUPLICATE)
        return err_set(err, ERR_PARSE, "stream '%s' has duplicate label name: '%s'",
                       raw_labels_text(s, a), perr.msg);
    if (rc)
        return err_set(err, ERR_PARSE, "Error parsing labels '%s' with error: %s",
                       raw_labels_text(s, a), perr.msg[0] ? perr.msg : err_str(rc));
    if (!ls->n)
        return err_set(err, ERR_PARSE, "error at least one label pair is required per stream");
    if (ls->n > LOKI_PUSH_MAX_LABEL_NAMES)
        return err_set(err, ERR_PARSE, "entry for stream '%s' has %zu label names; limit %d",
                       fmt_labels(a, ls), ls->n, LOKI_PUSH_MAX_LABEL_NAMES);
    for (size_t i = 0; i < ls->n; i++) {
        if (ls->v[i].name.len > LOKI_PUSH_MAX_LABEL_NAME_BYTES)
            return err_set(err, ERR_PARSE, "stream '%s' has label name too long: '%s'",
                           fmt_labels(a, ls), clip_str(a, ls->v[i].name));
        if (ls->v[i].value.len > LOKI_PUSH_MAX_LABEL_VALUE_BYTES)
            return err_set(err, ERR_PARSE, "stream '%s' has label value too long: '%s'",
                           fmt_labels(a, ls), clip_str(a, ls->v[i].value));
    }
    return 0;
}

static int entry_meta(const labels_t *ls, const lokipb_entry_t *e, arena_t *a, labels_t *meta,
                      err_t *err)
{
    *meta = (labels_t){NULL, 0};
    if (!e->n_meta)
        return 0;
    if (e->n_meta > LOKI_PUSH_MAX_META_ENTRIES)
        return err_set(err, ERR_PARSE,
                       "stream '%s' has too many structured metadata labels: '%zu', limit: '%d'. "
                       "Please see `limits_config.max_structured_metadata_entries_count` or "
                       "contact your Loki administrator to increase it.",
                       fmt_labels(a, ls), e->n_meta, LOKI_PUSH_MAX_META_ENTRIES);
    size_t bytes = 0;
    labels_t m = {ARENA_ARRAY(a, label_t, e->n_meta), e->n_meta};
    for (size_t i = 0; i < e->n_meta; i++) {
        const lokipb_pair_t *p = &e->meta[i];
        if (!p->name.len)
            return err_set(err, ERR_PARSE,
                           "stream '%s' has structured metadata with an empty name (value '%s')",
                           fmt_labels(a, ls), clip_str(a, p->value));
        bytes += p->name.len + p->value.len;
        m.v[i] = (label_t){promname_label(a, p->name), p->value};
    }
    if (bytes > LOKI_PUSH_MAX_META_BYTES)
        return err_set(err, ERR_PARSE,
                       "stream '%s' has structured metadata too large: '%zu' bytes, limit: '%u' "
                       "bytes. Please see `limits_config.max_structured_metadata_size` or contact "
                       "your Loki administrator to increase it.",
                       fmt_labels(a, ls), bytes, LOKI_PUSH_MAX_META_BYTES);
    if (labels_sort(&m) != 0) {
        for (size_t i = 1; i < m.n; i++)
            if (str_eq(m.v[i - 1].name, m.v[i].name))
                return err_set(err, ERR_PARSE,
                               "stream '%s' has duplicate structured metadata name: '%s' (after "
                               "replacing characters outside [a-zA-Z0-9_] with '_')",
                               fmt_labels(a, ls), clip_str(a, m.v[i].name));
    }
    *meta = m;
    return 0;
}

static int check_entry(const labels_t *ls, const lokipb_entry_t *e, int64_t now_ns, arena_t *a,
                       err_t *err)
{
    char t[40];
    if (e->ts_ns <= 0)
        return err_set(err, ERR_PARSE,
                       "entry for stream '%s' has an invalid timestamp: %lld ns is not after the "
                       "Unix epoch",
                       fmt_labels(a, ls), (long long)e->ts_ns);
    if (e->ts_ns > now_ns && e->ts_ns - now_ns > LOKI_PUSH_GRACE_NS) {
        rfc3339_format_ms(t, e->ts_ns / 1000000);
        return err_set(err, ERR_PARSE, "entry for stream '%s' has timestamp too new: %s",
                       fmt_labels(a, ls), t);
    }
    if (e->line.len > LOKI_PUSH_MAX_LINE_BYTES)
        return err_set(err, ERR_PARSE,
                       "Max entry size '%u' bytes exceeded for stream '%s' while adding an entry "
                       "with length '%zu' bytes",
                       LOKI_PUSH_MAX_LINE_BYTES, fmt_labels(a, ls), e->line.len);
    return 0;
}

int loki_push_prepare(const lokipb_push_t *push, int64_t now_ns, arena_t *a, db_batch_t **out,
                      err_t *err)
{
    *out = NULL;
    if (!push->n_streams)
        return 0;
    labels_t *sl = ARENA_ARRAY(a, labels_t, push->n_streams);
    labels_t *meta = ARENA_ARRAY(a, labels_t, push->n_entries ? push->n_entries : 1);
    size_t k = 0;
    for (size_t i = 0; i < push->n_streams; i++) {
        const lokipb_stream_t *s = &push->streams[i];
        int rc = stream_labels(s, a, &sl[i], err);
        for (size_t j = 0; j < s->n_entries && !rc; j++) {
            const lokipb_entry_t *e = &s->entries[j];
            if (!(rc = check_entry(&sl[i], e, now_ns, a, err)))
                rc = entry_meta(&sl[i], e, a, &meta[k++], err);
        }
        if (rc)
            return rc;
    }
    if (!push->n_entries)
        return 0;
    db_batch_t *b = db_batch_new();
    k = 0;
    for (size_t i = 0; i < push->n_streams; i++) {
        const lokipb_stream_t *s = &push->streams[i];
        for (size_t j = 0; j < s->n_entries; j++, k++)
            db_batch_add_log(b, &sl[i], s->entries[j].ts_ns, s->entries[j].line,
                             meta[k].n ? &meta[k] : NULL);
    }
    *out = b;
    return 0;
}

/* ---- HTTP ---- */

static void committed(void *arg, const db_commit_result_t *res)
{
    pending_t *p = arg;
    if (res->status) {
        ingest_count(OTLP_SIGNAL_LOGS, 0, p->entries);
        log_error("loki push commit failed", "err=%s", err_name(res->status));
        ingest__reply_not_durable(p->req, "log entries");
        return;
    }
    ingest_count(OTLP_SIGNAL_LOGS, res->logs_accepted, res->logs_rejected);
    if (res->logs_rejected) {
        http_reply_text(p->req, 400, "%llu of %llu entries were refused: %s",
                        (unsigned long long)res->logs_rejected, (unsigned long long)p->entries,
                        res->reject_reason);
        return;
    }
    http_reply(p->req, 204, NULL, NULL, 0);
}

static void handle(http_req_t *req, void *arg)
{
    db_t *db = arg;
    bool json = str_eq_cstr(http_req_media_type(req), "application/json");
    str_t body = http_req_body(req);
    arena_t *a = http_req_arena(req);
    if (!json && !ingest__snappy_body(req, body, HTTP_DEFAULT_MAX_DECODED_BYTES, &body))
        return;
    lokipb_push_t push;
    err_t err;
    err_clear(&err);
    int rc = json ? lokipb_decode_json((const uint8_t *)body.ptr, body.len, a, &push, &err)
                  : lokipb_decode((const uint8_t *)body.ptr, body.len, a, &push, &err);
    if (rc) {
        http_reply_text(req, 400, "%s: %s",
                        json ? "invalid JSON push request"
                             : "invalid push request (snappy-compressed logproto.PushRequest)",
                        err.msg[0] ? err.msg : err_str(rc));
        return;
    }
    db_batch_t *batch = NULL;
    if ((rc = loki_push_prepare(&push, clock_now_ns(), a, &batch, &err))) {
        ingest_count(OTLP_SIGNAL_LOGS, 0, push.n_entries);
        http_reply_text(req, 400, "%s", err.msg);
        return;
    }
    if (!batch) {
        http_reply(req, 204, NULL, NULL, 0);
        return;
    }
    pending_t *p = ARENA_NEW(a, pending_t);
    p->req = req;
    p->entries = push.n_entries;
    rc = db_commit(db, batch, committed, p);
    if (rc) {
        db_batch_free(batch);
        ingest_count(OTLP_SIGNAL_LOGS, 0, push.n_entries);
        ingest__reply_refused(req, rc);
    }
}

int loki_push_register(http_server_t *srv, db_t *db, err_t *err)
{
    static const char *const paths[] = {"/loki/api/v1/push", "/api/prom/push"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        int rc = http_route(srv, NULL, HTTP_POST, paths[i], handle, db, NULL);
        if (rc)
            return err_set(err, rc, "registering %s failed", paths[i]);
    }
    return 0;
}
