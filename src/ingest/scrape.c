/*
 * scrape.c - the scrape manager: targets, their timers, one scrape = one db batch (scrape.h),
 * and GET /api/v1/targets and /api/v1/targets/metadata.
 *
 * Targets come from static_configs the way Prometheus builds them: the static labels plus
 * __address__, then job, __scrape_interval__, __scrape_timeout__, __metrics_path__, __scheme__
 * and __param_<name> where not already set (these are the discoveredLabels), then
 * relabel_configs (a dropped target is listed under droppedTargets), then :80 is added to an
 * address without a port, __meta_* labels are removed, instance defaults to the address and the
 * labels without a "__" prefix become the target labels. The URL is built from __scheme__,
 * __address__, __metrics_path__ and __param_*.
 *
 * Timing: a target's first scrape is at the slot offset(target) within the interval grid
 * (offset = hash of labels and URL mod interval), then every interval. Each scrape runs
 * http_client with Prometheus' Accept header, the scrape timeout and the body limit; the parser
 * is picked from the response Content-Type.
 *
 * Staleness: every target keeps the set of series (without explicit timestamps) of its last
 * scrape; series missing from the next one, or every series when a scrape fails or the manager
 * stops, get the stale NaN at the scrape's start time, in the same batch as the scrape.
 */
#include "ingest/scrape.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/json.h"
#include "base/log.h"
#include "base/selfmon.h"
#include "base/utf8.h"
#include "net/http_client.h"
#include "proto/expfmt.h"

#define STALE_NAN_BITS 0x7ff0000000000002ULL

typedef enum health { HEALTH_UNKNOWN, HEALTH_UP, HEALTH_DOWN } health_t;

typedef struct tmeta {
    str_t metric;
    db_mtype_t type;
    str_t help, unit;
} tmeta_t;

typedef struct target {
    scrape_manager_t *m;
    const scrape_job_t *job;
    labels_t discovered; /* in m->arena */
    labels_t labels;     /* job, instance and the rest, sorted; in m->arena */
    char *url;           /* m->arena */
    char *global_url;
    int64_t interval_ms, timeout_ms;
    int64_t offset_ms;
    int64_t next_due_ms; /* monotonic */
    loop_timer_t *timer;
    http_call_t *call;
    int64_t start_ms;

    health_t health;
    char last_error[600];
    int64_t last_scrape_ms; /* 0 = never */
    double last_duration_s;

    scrape_seen_t seen; /* series of the last scrape */
    arena_t scratch;

    tmeta_t *meta; /* families of the last successful scrape, in meta_arena[meta_gen] */
    size_t n_meta;
    arena_t meta_arena[2];
    int meta_gen;
    bool internal; /* Skillscope's own metrics, read in process; not listed in /api/v1/targets */
} target_t;

struct scrape_manager {
    loop_t *loop;
    db_t *db;
    scrape_config_t *cfg;
    arena_t arena;
    target_t **targets;
    size_t n_targets;
    labels_t *dropped; /* discovered labels of dropped targets */
    const scrape_job_t **dropped_job;
    size_t n_dropped;
    bool running;
};

/* ---- staleness bookkeeping ---- */

void scrape_seen_init(scrape_seen_t *s)
{
    memset(s, 0, sizeof *s);
    u64map_init(&s->idx);
}

void scrape_seen_deinit(scrape_seen_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].ls.v);
    free(s->v);
    free(s->free_slots);
    u64map_deinit(&s->idx);
    memset(s, 0, sizeof *s);
}

void scrape_seen_begin(scrape_seen_t *s) { s->epoch++; }

/* One malloc block: the label array, then the strings. */
static labels_t labels_dup(const labels_t *ls)
{
    size_t bytes = ls->n * sizeof(label_t);
    for (size_t i = 0; i < ls->n; i++)
        bytes += ls->v[i].name.len + ls->v[i].value.len;
    label_t *v = malloc(bytes ? bytes : 1);
    if (!v)
        abort();
    char *p = (char *)(v + ls->n);
    for (size_t i = 0; i < ls->n; i++) {
        for (int k = 0; k < 2; k++) {
            str_t x = k ? ls->v[i].value : ls->v[i].name;
            if (x.len)
                memcpy(p, x.ptr, x.len);
            if (k)
                v[i].value = (str_t){p, x.len};
            else
                v[i].name = (str_t){p, x.len};
            p += x.len;
        }
    }
    return (labels_t){v, ls->n};
}

int scrape_seen_mark(scrape_seen_t *s, const labels_t *ls, uint64_t hash, bool track)
{
    uint64_t *slot = u64map_get(&s->idx, hash);
    if (slot) {
        scrape_series_t *e = &s->v[*slot - 1];
        if (e->seen_epoch == s->epoch)
            return -1;
        e->seen_epoch = s->epoch;
        e->track = track;
        return 0;
    }
    size_t i;
    if (s->n_free) {
        i = s->free_slots[--s->n_free];
    } else {
        if (s->n == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 256;
            scrape_series_t *nv = realloc(s->v, s->cap * sizeof *nv);
            if (!nv)
                abort();
            s->v = nv;
        }
        i = s->n++;
    }
    s->v[i] = (scrape_series_t){labels_dup(ls), s->epoch, s->epoch, track};
    u64map_put(&s->idx, hash, i + 1);
    s->live++;
    return 1;
}

static void forget(scrape_seen_t *s, size_t i)
{
    u64map_del(&s->idx, labels_hash(&s->v[i].ls));
    free(s->v[i].ls.v);
    s->v[i].ls.v = NULL;
    s->live--;
    if (s->n_free == s->cap_free) {
        s->cap_free = s->cap_free ? s->cap_free * 2 : 64;
        uint32_t *nf = realloc(s->free_slots, s->cap_free * sizeof *nf);
        if (!nf)
            abort();
        s->free_slots = nf;
    }
    s->free_slots[s->n_free++] = (uint32_t)i;
}

static double stale_nan(void)
{
    uint64_t bits = STALE_NAN_BITS;
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

size_t scrape_seen_end(scrape_seen_t *s, db_batch_t *b, int64_t ts_ms)
{
    size_t n = 0;
    if (s->live == 0)
        return 0;
    for (size_t i = 0; i < s->n; i++) {
        scrape_series_t *e = &s->v[i];
        if (!e->ls.v || e->seen_epoch == s->epoch)
            continue;
        if (e->track) {
            db_batch_add_sample(b, &e->ls, ts_ms, stale_nan());
            n++;
        }
        forget(s, i);
    }
    return n;
}

size_t scrape_seen_fail(scrape_seen_t *s, db_batch_t *b, int64_t ts_ms)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++) {
        scrape_series_t *e = &s->v[i];
        if (!e->ls.v)
            continue;
        if (e->track && e->born_epoch != s->epoch) {
            db_batch_add_sample(b, &e->ls, ts_ms, stale_nan());
            n++;
        }
        free(e->ls.v);
    }
    u64map_clear(&s->idx);
    s->n = s->n_free = s->live = 0;
    return n;
}

/* ---- durations as Prometheus prints them (model.Duration.String) ---- */

static void fmt_duration(char *out, size_t cap, int64_t ms)
{
    if (ms == 0) {
        snprintf(out, cap, "0s");
        return;
    }
    static const struct {
        const char *u;
        int64_t ms;
    } units[] = {{"y", 365LL * 86400000},
                 {"w", 7LL * 86400000},
                 {"d", 86400000},
                 {"h", 3600000},
                 {"m", 60000},
                 {"s", 1000},
                 {"ms", 1}};
    size_t n = 0;
    out[0] = 0;
    for (size_t i = 0; i < sizeof units / sizeof units[0] && n < cap; i++) {
        int64_t q = ms / units[i].ms;
        if (!q)
            continue;
        ms -= q * units[i].ms;
        n += (size_t)snprintf(out + n, cap - n, "%lld%s", (long long)q, units[i].u);
    }
}

/* ---- building targets ---- */

static void lset(label_t *v, size_t *n, str_t name, str_t value, bool only_if_absent)
{
    for (size_t i = 0; i < *n; i++)
        if (str_eq(v[i].name, name)) {
            if (!only_if_absent || !v[i].value.len)
                v[i].value = value;
            return;
        }
    v[(*n)++] = (label_t){name, value};
}

static bool is_loopback(const char *host)
{
    /* the representations Prometheus' getGlobalURL replaces */
    return !strcmp(host, "localhost") || !strcmp(host, "127.0.0.1") || !strcmp(host, "::1");
}

/* Adds one target (or a dropped one) from a static config entry. */
static void add_target(scrape_manager_t *m, const scrape_job_t *j, const scrape_static_t *st,
                       str_t address)
{
    arena_t *a = &m->arena;
    size_t cap = st->labels.n + 8 + j->n_params;
    label_t *v = ARENA_ARRAY(a, label_t, cap);
    size_t n = 0;
    for (size_t i = 0; i < st->labels.n; i++)
        v[n++] = st->labels.v[i];
    lset(v, &n, STR("__address__"), address, false);
    char iv[32], to[32];
    fmt_duration(iv, sizeof iv, j->interval_ms);
    fmt_duration(to, sizeof to, j->timeout_ms);
    lset(v, &n, STR("job"), j->job_name, true);
    lset(v, &n, STR("__scrape_interval__"), arena_str(a, str_cstr(iv)), true);
    lset(v, &n, STR("__scrape_timeout__"), arena_str(a, str_cstr(to)), true);
    lset(v, &n, STR("__metrics_path__"), j->metrics_path, true);
    lset(v, &n, STR("__scheme__"), j->scheme, true);
    for (size_t i = 0; i < j->n_params; i++) {
        char *nm = arena_sprintf(a, "__param_%.*s", STR_FMT(j->params[i].name));
        lset(v, &n, str_cstr(nm), j->params[i].value, false);
    }
    labels_t disc = {v, n};
    labels_sort(&disc);

    labels_t rl;
    if (!relabel_apply(j->relabel, j->n_relabel, &disc, a, &rl)) {
        if (m->n_dropped % 16 == 0) {
            m->dropped = realloc(m->dropped, (m->n_dropped + 16) * sizeof *m->dropped);
            m->dropped_job = realloc(m->dropped_job, (m->n_dropped + 16) * sizeof(void *));
            if (!m->dropped || !m->dropped_job)
                abort();
        }
        m->dropped_job[m->n_dropped] = j;
        m->dropped[m->n_dropped++] = disc;
        return;
    }
    str_t addr = labels_get(&rl, "__address__");
    if (!addr.len) {
        log_warn("scrape target skipped", "job=\"%.*s\" err=\"no address after relabelling\"",
                 STR_FMT(j->job_name));
        return;
    }
    /* Add the default port as Prometheus 2.x does. */
    bool has_port = false;
    if (addr.ptr[0] == '[')
        has_port = addr.len > 2 && memchr(addr.ptr, ']', addr.len) && addr.ptr[addr.len - 1] != ']';
    else
        has_port = memchr(addr.ptr, ':', addr.len) != NULL;
    if (!has_port)
        addr = str_cstr(arena_sprintf(a, "%.*s:80", STR_FMT(addr)));
    if (memchr(addr.ptr, '/', addr.len)) {
        log_warn("scrape target skipped", "job=\"%.*s\" err=\"%.*s is not a valid hostname\"",
                 STR_FMT(j->job_name), STR_FMT(addr));
        return;
    }
    int64_t interval = j->interval_ms, timeout = j->timeout_ms;
    err_t e;
    err_clear(&e);
    str_t s = labels_get(&rl, "__scrape_interval__");
    if (s.len && (duration_parse_ms(s, &interval, &e) != 0 || interval <= 0)) {
        log_warn("scrape target skipped", "job=\"%.*s\" err=\"bad __scrape_interval__ %.*s\"",
                 STR_FMT(j->job_name), STR_FMT(s));
        return;
    }
    s = labels_get(&rl, "__scrape_timeout__");
    if (s.len && (duration_parse_ms(s, &timeout, &e) != 0 || timeout <= 0)) {
        log_warn("scrape target skipped", "job=\"%.*s\" err=\"bad __scrape_timeout__ %.*s\"",
                 STR_FMT(j->job_name), STR_FMT(s));
        return;
    }
    if (timeout > interval) {
        log_warn("scrape target skipped",
                 "job=\"%.*s\" err=\"scrape timeout greater than scrape interval\"",
                 STR_FMT(j->job_name));
        return;
    }
    /* URL: scheme://address path ?params */
    buf_t u = BUF_INIT;
    str_t scheme = labels_get(&rl, "__scheme__");
    str_t path = labels_get(&rl, "__metrics_path__");
    buf_printf(&u, "%.*s://%.*s%.*s", STR_FMT(scheme.len ? scheme : STR("http")), STR_FMT(addr),
               STR_FMT(path));
    bool q = memchr(path.ptr ? path.ptr : "", '?', path.len) != NULL;
    for (size_t i = 0; i < rl.n; i++) {
        if (!str_starts_with(rl.v[i].name, "__param_"))
            continue;
        buf_putc(&u, q ? '&' : '?');
        q = true;
        str_t pn = str_from(rl.v[i].name.ptr + 8, rl.v[i].name.len - 8);
        for (int part = 0; part < 2; part++) {
            str_t x = part ? rl.v[i].value : pn;
            for (size_t k = 0; k < x.len; k++) {
                unsigned char c = (unsigned char)x.ptr[k];
                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '~')
                    buf_putc(&u, (char)c);
                else
                    buf_printf(&u, "%%%02X", c);
            }
            if (!part)
                buf_putc(&u, '=');
        }
    }
    char *url = arena_strndup(a, (const char *)u.pos, buf_len(&u));
    buf_deinit(&u);
    if (scheme.len && !str_eq_cstr(scheme, "http")) {
        log_warn("scrape target skipped",
                 "job=\"%.*s\" url=\"%s\" err=\"scheme %.*s is not supported (http only)\"",
                 STR_FMT(j->job_name), url, STR_FMT(scheme));
        return;
    }
    target_t *t = calloc(1, sizeof *t);
    if (!t)
        abort();
    t->m = m;
    t->job = j;
    t->discovered = disc;
    t->url = url;
    /* global URL: a loopback host replaced by this machine's name. */
    char *host = NULL, *target = NULL;
    int port;
    t->global_url = t->url;
    if (http_url_split(t->url, &host, &port, &target, &e) == 0 && is_loopback(host)) {
        char hn[256];
        if (gethostname(hn, sizeof hn) == 0) {
            hn[sizeof hn - 1] = 0;
            t->global_url = arena_sprintf(a, "http://%s:%d%s", hn, port, target);
        }
    }
    free(host);
    free(target);
    /* final labels: no "__" names; instance defaults to the address */
    label_t *fv = ARENA_ARRAY(a, label_t, rl.n + 1);
    size_t fn = 0;
    bool has_instance = false;
    for (size_t i = 0; i < rl.n; i++) {
        if (str_starts_with(rl.v[i].name, "__"))
            continue;
        has_instance |= str_eq_cstr(rl.v[i].name, "instance");
        fv[fn++] = rl.v[i];
    }
    if (!has_instance)
        fv[fn++] = (label_t){STR("instance"), addr};
    t->labels = (labels_t){fv, fn};
    labels_sort(&t->labels);
    t->interval_ms = interval;
    t->timeout_ms = timeout;
    uint64_t h = labels_hash(&t->labels) ^ hash64(t->url, strlen(t->url), 0);
    t->offset_ms = (int64_t)(h % (uint64_t)interval);
    scrape_seen_init(&t->seen);
    arena_init(&t->scratch, 65536);
    arena_init(&t->meta_arena[0], 4096);
    arena_init(&t->meta_arena[1], 4096);
    m->targets = realloc(m->targets, (m->n_targets + 1) * sizeof *m->targets);
    if (!m->targets)
        abort();
    m->targets[m->n_targets++] = t;
}

scrape_manager_t *scrape_manager_new(loop_t *l, db_t *db, scrape_config_t *cfg)
{
    scrape_manager_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->loop = l;
    m->db = db;
    m->cfg = cfg;
    arena_init(&m->arena, 8192);
    for (size_t i = 0; cfg && i < cfg->n_jobs; i++) {
        const scrape_job_t *j = &cfg->jobs[i];
        for (size_t s = 0; s < j->n_statics; s++)
            for (size_t k = 0; k < j->statics[s].n_targets; k++)
                add_target(m, j, &j->statics[s], j->statics[s].targets[k]);
    }
    return m;
}

void scrape_manager_add_self(scrape_manager_t *m, const char *instance)
{
    for (size_t i = 0; m->cfg && i < m->cfg->n_jobs; i++)
        if (str_eq(m->cfg->jobs[i].job_name, STR(SCRAPE_SELF_JOB)))
            return; /* the user's own job for it wins */
    scrape_job_t *j = ARENA_ARRAY(&m->arena, scrape_job_t, 1);
    memset(j, 0, sizeof *j);
    j->job_name = STR(SCRAPE_SELF_JOB);
    j->interval_ms = j->timeout_ms = SCRAPE_SELF_INTERVAL_MS;
    j->metrics_path = STR("/metrics");
    j->scheme = STR("http");
    j->honor_timestamps = true;
    scrape_static_t *st = ARENA_ARRAY(&m->arena, scrape_static_t, 1);
    memset(st, 0, sizeof *st);
    size_t n = m->n_targets;
    add_target(m, j, st, arena_str(&m->arena, str_cstr(instance)));
    if (m->n_targets > n)
        m->targets[n]->internal = true;
}

size_t scrape_manager_n_targets(const scrape_manager_t *m) { return m ? m->n_targets : 0; }

/* ---- one scrape ---- */

static void on_tick(void *arg);

/* The first slot is aligned on the wall-clock interval grid (so targets keep their phase across
 * restarts, as in Prometheus); later slots follow the monotonic clock, so a wall-clock step
 * neither stalls nor bunches scrapes. next_due_ms is in monotonic ms. */
static void schedule(target_t *t)
{
    int64_t mono = clock_mono_ns() / 1000000;
    if (!t->next_due_ms) {
        int64_t now = clock_now_ms();
        int64_t due = now - now % t->interval_ms + t->offset_ms;
        if (due < now)
            due += t->interval_ms;
        t->next_due_ms = mono + (due - now);
    } else {
        t->next_due_ms += t->interval_ms;
        if (t->next_due_ms < mono) /* fell behind (a stalled loop): skip missed slots */
            t->next_due_ms += ((mono - t->next_due_ms) / t->interval_ms + 1) * t->interval_ms;
    }
    t->timer = loop_timer_start(t->m->loop, t->next_due_ms - mono, false, on_tick, t);
}

typedef struct family {
    str_t name;
    db_mtype_t type;
    str_t help, unit;
} family_t;

typedef struct ingest_state {
    target_t *t;
    db_batch_t *b;
    scrape_seen_t *seen;
    uint64_t scraped, post, added;
    family_t *fam;
    size_t n_fam, cap_fam;
    u64map_t fam_idx;
    char *err;
    size_t err_cap;
} ingest_state_t;

static family_t *family_of(ingest_state_t *st, str_t name)
{
    uint64_t h = hash_str(name) | 1;
    uint64_t *slot = u64map_get(&st->fam_idx, h);
    if (slot && str_eq(st->fam[*slot - 1].name, name))
        return &st->fam[*slot - 1];
    if (slot)
        return NULL; /* hash collision: the later family has no metadata */
    if (st->n_fam == st->cap_fam) {
        st->cap_fam = st->cap_fam ? st->cap_fam * 2 : 64;
        st->fam = realloc(st->fam, st->cap_fam * sizeof *st->fam);
        if (!st->fam)
            abort();
    }
    family_t *f = &st->fam[st->n_fam++];
    memset(f, 0, sizeof *f);
    f->name = name;
    u64map_put(&st->fam_idx, h, st->n_fam);
    return f;
}

static db_mtype_t mtype_of(expfmt_type_t t)
{
    switch (t) {
    case EXPFMT_COUNTER:
        return DB_MTYPE_COUNTER;
    case EXPFMT_GAUGE:
        return DB_MTYPE_GAUGE;
    case EXPFMT_HISTOGRAM:
        return DB_MTYPE_HISTOGRAM;
    case EXPFMT_GAUGEHISTOGRAM:
        return DB_MTYPE_GAUGEHISTOGRAM;
    case EXPFMT_SUMMARY:
        return DB_MTYPE_SUMMARY;
    case EXPFMT_INFO:
        return DB_MTYPE_INFO;
    case EXPFMT_STATESET:
        return DB_MTYPE_STATESET;
    default:
        return DB_MTYPE_UNKNOWN;
    }
}

static bool has_name(const label_t *v, size_t n, str_t name)
{
    for (size_t i = 0; i < n; i++)
        if (str_eq(v[i].name, name))
            return true;
    return false;
}

/* The sample's labels with the target's attached (Prometheus' mutateSampleLabels, before
 * metric relabelling). */
static labels_t attach_target_labels(const target_t *t, const expfmt_entry_t *e, arena_t *a)
{
    const labels_t *tl = &t->labels;
    size_t cap = e->n_labels + 1 + 2 * tl->n;
    label_t *v = arena_alloc(a, cap * sizeof *v);
    size_t n = 0;
    v[n++] = (label_t){STR("__name__"), e->name};
    for (size_t i = 0; i < e->n_labels; i++)
        if (e->labels[i].value.len)
            v[n++] = (label_t){e->labels[i].name, e->labels[i].value};
    size_t n_exposed = n;
    if (t->job->honor_labels) {
        for (size_t i = 0; i < tl->n; i++)
            if (!has_name(v, n_exposed, tl->v[i].name))
                v[n++] = tl->v[i];
        return (labels_t){v, n};
    }
    /* Conflicts: the exposed value moves to exported_<name> (prefix repeated while taken). */
    label_t *conf = arena_alloc(a, (tl->n ? tl->n : 1) * sizeof *conf);
    size_t nc = 0;
    for (size_t i = 0; i < tl->n; i++) {
        bool found = false;
        for (size_t k = 0; k < n_exposed; k++)
            if (str_eq(v[k].name, tl->v[i].name)) {
                conf[nc++] = v[k];
                v[k].value = tl->v[i].value;
                found = true;
                break;
            }
        if (!found)
            v[n++] = tl->v[i];
    }
    /* shortest names first, as Prometheus resolves them */
    for (size_t i = 1; i < nc; i++)
        for (size_t k = i; k > 0 && conf[k].name.len < conf[k - 1].name.len; k--) {
            label_t x = conf[k];
            conf[k] = conf[k - 1];
            conf[k - 1] = x;
        }
    for (size_t i = 0; i < nc; i++) {
        str_t nm = conf[i].name;
        for (;;) {
            nm = str_cstr(arena_sprintf(a, "exported_%.*s", STR_FMT(nm)));
            bool taken = has_name(v, n, nm);
            for (size_t k = 0; k < i && !taken; k++)
                taken = str_eq(conf[k].name, nm);
            if (!taken)
                break;
        }
        conf[i].name = nm;
        v[n++] = conf[i];
    }
    return (labels_t){v, n};
}

/* Parses the body into st->b. Returns false with st->err set on any error. */
static bool ingest_body(ingest_state_t *st, str_t body, expfmt_format_t fmt)
{
    target_t *t = st->t;
    const scrape_job_t *j = t->job;
    arena_t *a = &t->scratch;
    expfmt_parser_t p;
    expfmt_init(&p, body, fmt, a);
    expfmt_entry_t e;
    err_t err;
    err_clear(&err);
    int rc;
    bool ok = true;
    while ((rc = expfmt_next(&p, &e, &err)) == 1) {
        if (e.kind != EXPFMT_SAMPLE) {
            family_t *f = family_of(st, e.name);
            if (!f)
                continue;
            if (e.kind == EXPFMT_TYPE)
                f->type = mtype_of(e.type);
            else if (e.kind == EXPFMT_HELP)
                f->help = e.text;
            else
                f->unit = e.text;
            continue;
        }
        st->scraped++;
        for (size_t i = 0; i < e.n_labels; i++)
            if (!utf8_valid(e.labels[i].value.ptr, e.labels[i].value.len)) {
                snprintf(st->err, st->err_cap, "line %d: invalid UTF-8 in the value of label %.*s",
                         e.line, STR_FMT(e.labels[i].name));
                ok = false;
                goto out;
            }
        labels_t ls = attach_target_labels(t, &e, a);
        if (j->n_metric_relabel) {
            if (!relabel_apply(j->metric_relabel, j->n_metric_relabel, &ls, a, &ls))
                continue;
        } else if (labels_sort(&ls) != 0) {
            snprintf(st->err, st->err_cap, "line %d: duplicate label names in %.*s", e.line,
                     STR_FMT(e.name));
            ok = false;
            goto out;
        }
        if (!labels_get(&ls, "__name__").len) {
            snprintf(st->err, st->err_cap,
                     "line %d: __name__ label is missing after metric relabelling", e.line);
            ok = false;
            goto out;
        }
        st->post++;
        if (j->sample_limit && st->post > j->sample_limit) {
            snprintf(st->err, st->err_cap, "sample limit exceeded (limit %llu)",
                     (unsigned long long)j->sample_limit);
            ok = false;
            goto out;
        }
        uint64_t h = labels_hash(&ls);
        bool explicit_ts = e.has_ts && j->honor_timestamps;
        int mark = scrape_seen_mark(st->seen, &ls, h, !explicit_ts);
        if (mark < 0)
            continue; /* a duplicate series within one scrape: the first sample wins */
        st->added += (uint64_t)mark;
        double v = e.value;
        uint64_t bits;
        memcpy(&bits, &v, sizeof bits);
        if (bits == STALE_NAN_BITS) /* only Skillscope writes stale markers */
            v = NAN;
        db_batch_add_sample(st->b, &ls, explicit_ts ? e.ts_ms : t->start_ms, v);
    }
    if (rc < 0) {
        snprintf(st->err, st->err_cap, "%s", err.msg);
        ok = false;
    }
out:
    expfmt_deinit(&p);
    return ok;
}

static void add_report(target_t *t, db_batch_t *b, const char *name, double v)
{
    arena_t *a = &t->scratch;
    label_t *lv = arena_alloc(a, (t->labels.n + 1) * sizeof *lv);
    lv[0] = (label_t){STR("__name__"), str_cstr(name)};
    memcpy(lv + 1, t->labels.v, t->labels.n * sizeof *lv);
    labels_t ls = {lv, t->labels.n + 1};
    labels_sort(&ls);
    db_batch_add_sample(b, &ls, t->start_ms, v);
}

/* Process-wide counters on /metrics (counters only: they outlive any manager). */
static selfmon_counter_t *m_scrapes_ok, *m_scrapes_failed, *m_scrape_samples;

static void selfmon_init(void)
{
    if (m_scrapes_ok)
        return;
    const char *help = "Scrapes of configured /metrics targets, by result.";
    m_scrapes_ok = selfmon_counter("skillscope_scrapes_total", help, "result=\"success\"");
    m_scrapes_failed = selfmon_counter("skillscope_scrapes_total", help, "result=\"failure\"");
    m_scrape_samples = selfmon_counter("skillscope_scrape_samples_total",
                                       "Samples from scrapes handed to the store (after metric "
                                       "relabelling, without the up/scrape_* series).",
                                       NULL);
}

static void on_committed(void *arg, const db_commit_result_t *res)
{
    (void)arg;
    if (res->status)
        log_warn("scrape commit failed", "err=%s", err_name(res->status));
    else if (res->samples_rejected)
        log_debug("scrape samples refused by the store", "n=%llu reason=\"%s\"",
                  (unsigned long long)res->samples_rejected, res->reject_reason);
}

static void commit(scrape_manager_t *m, db_batch_t *b)
{
    int rc = db_commit(m->db, b, on_committed, NULL);
    if (rc != 0) {
        log_warn("scrape batch not stored", "err=%s", err_name(rc));
        db_batch_free(b);
    }
}

static void keep_metadata(target_t *t, const ingest_state_t *st)
{
    int g = !t->meta_gen;
    arena_reset(&t->meta_arena[g]);
    tmeta_t *v = ARENA_ARRAY(&t->meta_arena[g], tmeta_t, st->n_fam ? st->n_fam : 1);
    for (size_t i = 0; i < st->n_fam; i++) {
        v[i].metric = arena_str(&t->meta_arena[g], st->fam[i].name);
        v[i].type = st->fam[i].type;
        v[i].help = arena_str(&t->meta_arena[g], st->fam[i].help);
        v[i].unit = arena_str(&t->meta_arena[g], st->fam[i].unit);
    }
    t->meta = v;
    t->n_meta = st->n_fam;
    t->meta_gen = g;
}

/* Ends a scrape: body is NULL with error set when the request failed. */
static void finish_scrape(target_t *t, const char *error, str_t body, const char *content_type,
                          double duration_s)
{
    scrape_manager_t *m = t->m;
    char errbuf[600];
    errbuf[0] = 0;
    ingest_state_t st = {.t = t, .b = db_batch_new()};
    st.seen = &t->seen;
    st.err = errbuf;
    st.err_cap = sizeof errbuf;
    u64map_init(&st.fam_idx);
    scrape_seen_begin(st.seen);
    bool ok = false;
    if (error)
        snprintf(errbuf, sizeof errbuf, "%s", error);
    else
        ok = ingest_body(&st, body, expfmt_format_of(content_type));
    if (!ok) {
        db_batch_free(st.b); /* nothing of a failed scrape is stored */
        st.b = db_batch_new();
        st.added = 0;
        scrape_seen_fail(st.seen, st.b, t->start_ms);
    } else {
        scrape_seen_end(st.seen, st.b, t->start_ms);
        for (size_t i = 0; i < st.n_fam; i++)
            db_batch_add_metadata(st.b, st.fam[i].name, st.fam[i].type, st.fam[i].help,
                                  st.fam[i].unit);
        keep_metadata(t, &st);
    }
    add_report(t, st.b, "up", ok ? 1 : 0);
    add_report(t, st.b, "scrape_duration_seconds", duration_s);
    add_report(t, st.b, "scrape_samples_scraped", (double)st.scraped);
    add_report(t, st.b, "scrape_samples_post_metric_relabeling", (double)st.post);
    add_report(t, st.b, "scrape_series_added", (double)st.added);
    selfmon_counter_add(ok ? m_scrapes_ok : m_scrapes_failed, 1);
    if (ok)
        selfmon_counter_add(m_scrape_samples, (double)st.post);
    t->health = ok ? HEALTH_UP : HEALTH_DOWN;
    snprintf(t->last_error, sizeof t->last_error, "%s", ok ? "" : errbuf);
    t->last_scrape_ms = t->start_ms;
    t->last_duration_s = duration_s;
    if (!ok)
        log_debug("scrape failed", "url=\"%s\" err=\"%s\"", t->url, errbuf);
    commit(m, st.b);
    free(st.fam);
    u64map_deinit(&st.fam_idx);
    arena_reset(&t->scratch);
}

static void on_response(void *arg, const http_client_resp_t *r)
{
    target_t *t = arg;
    t->call = NULL;
    double dur = (double)r->duration_ns / 1e9;
    char msg[600];
    if (r->error) {
        snprintf(msg, sizeof msg, "Get \"%s\": %s", t->url, r->error);
        finish_scrape(t, msg, STR_NULL, NULL, dur);
    } else if (r->status != 200) {
        snprintf(msg, sizeof msg, "server returned HTTP status %d", r->status);
        finish_scrape(t, msg, STR_NULL, NULL, dur);
    } else {
        finish_scrape(t, NULL, r->body, http_call_header(r->call, "Content-Type"), dur);
    }
}

static void on_tick(void *arg)
{
    target_t *t = arg;
    t->timer = NULL; /* one-shot timers free themselves */
    schedule(t);
    if (t->call)
        return; /* the previous scrape is still running (cannot outlive its timeout) */
    t->start_ms = clock_now_ms();
    if (t->internal) {
        int64_t t0 = clock_mono_ns();
        buf_t body = BUF_INIT;
        selfmon_write(&body);
        finish_scrape(t, NULL, (str_t){(const char *)body.pos, buf_len(&body)},
                      "text/plain; version=0.0.4", (double)(clock_mono_ns() - t0) / 1e9);
        buf_deinit(&body);
        return;
    }
    char timeout_hdr[64];
    snprintf(timeout_hdr, sizeof timeout_hdr, "X-Prometheus-Scrape-Timeout-Seconds: %g",
             (double)t->timeout_ms / 1000.0);
    const char *headers[] = {"Accept: " EXPFMT_ACCEPT, timeout_hdr, NULL};
    http_client_req_t req = {
        .url = t->url,
        .headers = headers,
        .timeout_ms = t->timeout_ms,
        .max_body_bytes = t->job->body_size_limit,
        .accept_gzip = true,
    };
    err_t err;
    err_clear(&err);
    if (http_client_send(t->m->loop, &req, on_response, t, &t->call, &err) != 0) {
        char msg[600];
        snprintf(msg, sizeof msg, "Get \"%s\": %s", t->url, err.msg);
        finish_scrape(t, msg, STR_NULL, NULL, 0);
    }
}

void scrape_manager_start(scrape_manager_t *m)
{
    if (!m || m->running)
        return;
    m->running = true;
    selfmon_init();
    size_t configured = 0; /* the user's targets, not the internal self-monitoring one */
    for (size_t i = 0; i < m->n_targets; i++) {
        schedule(m->targets[i]);
        configured += !m->targets[i]->internal;
    }
    if (configured || m->n_dropped)
        log_info("scraping", "targets=%zu dropped=%zu", configured, m->n_dropped);
}

void scrape_manager_stop(scrape_manager_t *m)
{
    if (!m || !m->running)
        return;
    m->running = false;
    db_batch_t *b = db_batch_new();
    int64_t now = clock_now_ms();
    size_t n = 0;
    for (size_t i = 0; i < m->n_targets; i++) {
        target_t *t = m->targets[i];
        if (t->timer)
            loop_timer_stop(t->timer);
        t->timer = NULL;
        if (t->call)
            http_call_cancel(t->call);
        t->call = NULL;
        scrape_seen_begin(&t->seen);
        n += scrape_seen_fail(&t->seen, b, now);
    }
    if (n)
        commit(m, b);
    else
        db_batch_free(b);
}

void scrape_manager_free(scrape_manager_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_targets; i++) {
        target_t *t = m->targets[i];
        if (t->timer)
            loop_timer_stop(t->timer);
        if (t->call)
            http_call_cancel(t->call);
        scrape_seen_deinit(&t->seen);
        arena_deinit(&t->scratch);
        arena_deinit(&t->meta_arena[0]);
        arena_deinit(&t->meta_arena[1]);
        free(t);
    }
    free(m->targets);
    free(m->dropped);
    free(m->dropped_job);
    arena_deinit(&m->arena);
    scrape_config_free(m->cfg);
    free(m);
}

/* ---- /api/v1/targets ---- */

static void reply_error(http_req_t *r, const char *msg)
{
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj(&w);
    jw_key(&w, "status");
    jw_cstr(&w, "error");
    jw_key(&w, "errorType");
    jw_cstr(&w, "bad_data");
    jw_key(&w, "error");
    jw_cstr(&w, msg);
    jw_end(&w);
    http_reply_buf(r, 400, "application/json", &b);
}

static bool ieq(str_t s, const char *w)
{
    return s.len == strlen(w) && strncasecmp(s.ptr, w, s.len) == 0;
}

static void h_targets(http_req_t *r, void *arg)
{
    scrape_manager_t *m = arg;
    str_t state = http_req_param(r, "state");
    str_t pool = http_req_param(r, "scrapePool");
    bool show_active = !state.len || ieq(state, "any") || ieq(state, "active");
    bool show_dropped = !state.len || ieq(state, "any") || ieq(state, "dropped");
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj(&w);
    jw_key(&w, "status");
    jw_cstr(&w, "success");
    jw_key(&w, "data");
    jw_obj(&w);
    jw_key(&w, "activeTargets");
    jw_arr(&w);
    target_t **sorted = NULL;
    if (show_active && m->n_targets) {
        sorted = malloc(m->n_targets * sizeof *sorted);
        if (!sorted)
            abort();
        memcpy(sorted, m->targets, m->n_targets * sizeof *sorted);
        for (size_t i = 1; i < m->n_targets; i++) /* stable: by pool, then config order */
            for (size_t k = i;
                 k > 0 && str_cmp(sorted[k]->job->job_name, sorted[k - 1]->job->job_name) < 0;
                 k--) {
                target_t *x = sorted[k];
                sorted[k] = sorted[k - 1];
                sorted[k - 1] = x;
            }
    }
    for (size_t i = 0; show_active && i < m->n_targets; i++) {
        const target_t *t = sorted[i];
        if (t->internal || (pool.len && !str_eq(pool, t->job->job_name)))
            continue;
        jw_obj(&w);
        jw_key(&w, "discoveredLabels");
        labels_write_json(&w, &t->discovered);
        jw_key(&w, "labels");
        labels_write_json(&w, &t->labels);
        jw_key(&w, "scrapePool");
        jw_str(&w, t->job->job_name);
        jw_key(&w, "scrapeUrl");
        jw_cstr(&w, t->url);
        jw_key(&w, "globalUrl");
        jw_cstr(&w, t->global_url);
        jw_key(&w, "lastError");
        jw_cstr(&w, t->last_error);
        jw_key(&w, "lastScrape");
        if (t->last_scrape_ms) {
            char ts[40];
            rfc3339_format_ms(ts, t->last_scrape_ms);
            jw_cstr(&w, ts);
        } else {
            jw_cstr(&w, "0001-01-01T00:00:00Z");
        }
        jw_key(&w, "lastScrapeDuration");
        jw_double(&w, t->last_duration_s);
        jw_key(&w, "health");
        jw_cstr(&w, t->health == HEALTH_UP ? "up" : t->health == HEALTH_DOWN ? "down" : "unknown");
        char d[32];
        fmt_duration(d, sizeof d, t->interval_ms);
        jw_key(&w, "scrapeInterval");
        jw_cstr(&w, d);
        fmt_duration(d, sizeof d, t->timeout_ms);
        jw_key(&w, "scrapeTimeout");
        jw_cstr(&w, d);
        jw_end(&w);
    }
    free(sorted);
    jw_end(&w);
    jw_key(&w, "droppedTargets");
    jw_arr(&w);
    for (size_t i = 0; show_dropped && i < m->n_dropped; i++) {
        if (pool.len && !str_eq(pool, m->dropped_job[i]->job_name))
            continue;
        jw_obj(&w);
        jw_key(&w, "discoveredLabels");
        labels_write_json(&w, &m->dropped[i]);
        jw_end(&w);
    }
    jw_end(&w);
    jw_end(&w);
    jw_end(&w);
    http_reply_buf(r, 200, "application/json", &b);
}

static void h_targets_metadata(http_req_t *r, void *arg)
{
    scrape_manager_t *m = arg;
    arena_t *a = http_req_arena(r);
    str_t match = http_req_param(r, "match_target");
    str_t metric = http_req_param(r, "metric");
    str_t limit_s = http_req_param(r, "limit");
    long long limit = -1;
    if (limit_s.len) {
        char *end;
        char *tmp = arena_strndup(a, limit_s.ptr, limit_s.len);
        limit = strtoll(tmp, &end, 10);
        if (*end) {
            reply_error(r, "invalid parameter \"limit\": not a number");
            return;
        }
    }
    matcher_t *ms = NULL;
    size_t n_ms = 0;
    err_t err;
    err_clear(&err);
    if (match.len && matchers_parse(match, a, &ms, &n_ms, &err) != 0) {
        char msg[600];
        snprintf(msg, sizeof msg, "invalid parameter \"match_target\": %s", err.msg);
        reply_error(r, msg);
        return;
    }
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj(&w);
    jw_key(&w, "status");
    jw_cstr(&w, "success");
    jw_key(&w, "data");
    jw_arr(&w);
    long long count = 0;
    for (size_t i = 0; i < m->n_targets && (limit < 0 || count < limit); i++) {
        const target_t *t = m->targets[i];
        if (n_ms && !matchers_match(ms, n_ms, &t->labels))
            continue;
        for (size_t k = 0; k < t->n_meta && (limit < 0 || count < limit); k++) {
            const tmeta_t *md = &t->meta[k];
            if (metric.len && !str_eq(metric, md->metric))
                continue;
            jw_obj(&w);
            jw_key(&w, "target");
            labels_write_json(&w, &t->labels);
            jw_key(&w, "metric");
            jw_str(&w, md->metric);
            jw_key(&w, "type");
            static const char *const tn[] = {"unknown",        "counter", "gauge", "histogram",
                                             "gaugehistogram", "summary", "info",  "stateset"};
            jw_cstr(&w, (unsigned)md->type < 8 ? tn[md->type] : "unknown");
            jw_key(&w, "help");
            jw_str(&w, md->help);
            jw_key(&w, "unit");
            jw_str(&w, md->unit);
            jw_end(&w);
            count++;
        }
    }
    matchers_deinit(ms, n_ms);
    jw_end(&w);
    jw_end(&w);
    http_reply_buf(r, 200, "application/json", &b);
}

int scrape_register(http_server_t *srv, scrape_manager_t *m, err_t *err)
{
    int rc = http_route(srv, NULL, HTTP_GET, "/api/v1/targets", h_targets, m, NULL);
    if (rc == 0)
        rc = http_route(srv, NULL, HTTP_GET, "/api/v1/targets/metadata", h_targets_metadata, m,
                        NULL);
    if (rc != 0)
        return err_set(err, rc, "cannot register /api/v1/targets: %s", err_str(rc));
    return 0;
}
