/*
 * selfmon.c - the process-wide metrics registry behind /metrics.
 *
 * Metrics live in append-only structures that are never freed: a family (one name, help, type)
 * per metric name and a series (one label set) per registration, each found through a small
 * chained hash table keyed by xxh3 of the strings. Registration and the snapshot taken by
 * selfmon_write hold one mutex; value updates never do: counters and histogram sums are doubles
 * updated with a compare-and-swap loop on their bit pattern, bucket counts are atomic integers.
 * selfmon_write copies the series list (and gauge callbacks) under the lock, then formats and calls
 * the gauge callbacks without it, so a callback may itself register metrics.
 */
#include "base/selfmon.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "base/fmtnum.h"
#include "base/hash.h"

enum kind { K_COUNTER, K_COUNTER_FN, K_GAUGE_FN, K_HISTOGRAM };

#define N_BUCKETS 1024

typedef struct family family_t;
typedef struct series series_t;

struct family {
    const char *name;
    const char *help;
    enum kind kind;
    series_t *first, *last;
    family_t *next; /* registration order */
    family_t *hash_next;
};

struct series {
    family_t *fam;
    enum kind kind;
    const char *labels;
    series_t *fam_next; /* next series of the same family */
    series_t *hash_next;
    double (*fn)(void *arg);
    void *arg;
};

struct selfmon_counter {
    series_t s;
    _Atomic uint64_t bits;
};

struct selfmon_histogram {
    series_t s;
    double *bounds;
    size_t n_bounds;
    _Atomic uint64_t *buckets; /* n_bounds + 1 (last is +Inf), not cumulative */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_bits;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static family_t *fam_head, *fam_tail;
static size_t n_series;
static family_t *fam_hash[N_BUCKETS];
static series_t *series_hash[N_BUCKETS];

static uint64_t dbl_bits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static double bits_dbl(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static void atomic_add_dbl(_Atomic uint64_t *p, double v)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(p, &old, dbl_bits(bits_dbl(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

static const char *nz(const char *s) { return s ? s : ""; }

static size_t series_slot(const char *name, const char *labels)
{
    uint64_t h = hash64(name, strlen(name), 0);
    h = hash64(labels, strlen(labels), h);
    return (size_t)(h & (N_BUCKETS - 1));
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (!p) {
        fprintf(stderr, "skillscope: out of memory in selfmon\n");
        abort();
    }
    return p;
}

/* Called with mu held. */
static family_t *family_get(const char *name, const char *help, enum kind kind)
{
    size_t slot = (size_t)(hash64(name, strlen(name), 0) & (N_BUCKETS - 1));
    for (family_t *f = fam_hash[slot]; f; f = f->hash_next) {
        if (strcmp(f->name, name) != 0)
            continue;
        bool fn_counter = (f->kind == K_COUNTER || f->kind == K_COUNTER_FN) &&
                          (kind == K_COUNTER || kind == K_COUNTER_FN);
        if (f->kind != kind && !fn_counter) {
            fprintf(stderr, "skillscope: metric %s registered with two different types\n", name);
            abort();
        }
        return f;
    }
    family_t *f = xcalloc(1, sizeof *f);
    f->name = name;
    f->help = nz(help);
    f->kind = kind;
    f->hash_next = fam_hash[slot];
    fam_hash[slot] = f;
    if (fam_tail)
        fam_tail->next = f;
    else
        fam_head = f;
    fam_tail = f;
    return f;
}

/* Called with mu held. Aborts when the series exists with another kind (a programming error). */
static series_t *series_find(const char *name, const char *labels, enum kind kind)
{
    for (series_t *s = series_hash[series_slot(name, labels)]; s; s = s->hash_next) {
        if (strcmp(s->fam->name, name) != 0 || strcmp(s->labels, labels) != 0)
            continue;
        if (s->kind != kind) {
            fprintf(stderr, "skillscope: metric %s{%s} registered twice with different types\n",
                    name, labels);
            abort();
        }
        return s;
    }
    return NULL;
}

/* Called with mu held; s is zeroed memory of the right type. */
static void series_link(series_t *s, family_t *f, enum kind kind, const char *labels)
{
    s->fam = f;
    s->kind = kind;
    s->labels = labels;
    size_t slot = series_slot(f->name, labels);
    s->hash_next = series_hash[slot];
    series_hash[slot] = s;
    if (f->last)
        f->last->fam_next = s;
    else
        f->first = s;
    f->last = s;
    n_series++;
}

selfmon_counter_t *selfmon_counter(const char *name, const char *help, const char *labels)
{
    labels = nz(labels);
    pthread_mutex_lock(&mu);
    series_t *s = series_find(name, labels, K_COUNTER);
    if (s) {
        pthread_mutex_unlock(&mu);
        return (selfmon_counter_t *)s;
    }
    family_t *f = family_get(name, help, K_COUNTER);
    selfmon_counter_t *c = xcalloc(1, sizeof *c);
    series_link(&c->s, f, K_COUNTER, labels);
    pthread_mutex_unlock(&mu);
    return c;
}

void selfmon_counter_add(selfmon_counter_t *c, double v) { atomic_add_dbl(&c->bits, v); }

double selfmon_counter_get(const selfmon_counter_t *c)
{
    return bits_dbl(atomic_load_explicit(&((selfmon_counter_t *)c)->bits, memory_order_relaxed));
}

static void register_fn(const char *name, const char *help, const char *labels, enum kind kind,
                        double (*fn)(void *), void *arg)
{
    labels = nz(labels);
    pthread_mutex_lock(&mu);
    series_t *s = series_find(name, labels, kind);
    if (!s) {
        family_t *f = family_get(name, help, kind);
        s = xcalloc(1, sizeof *s);
        series_link(s, f, kind, labels);
    }
    s->fn = fn;
    s->arg = arg;
    pthread_mutex_unlock(&mu);
}

void selfmon_gauge_fn(const char *name, const char *help, const char *labels,
                      double (*fn)(void *arg), void *arg)
{
    register_fn(name, help, labels, K_GAUGE_FN, fn, arg);
}

void selfmon_counter_fn(const char *name, const char *help, const char *labels,
                        double (*fn)(void *arg), void *arg)
{
    register_fn(name, help, labels, K_COUNTER_FN, fn, arg);
}

selfmon_histogram_t *selfmon_histogram(const char *name, const char *help, const char *labels,
                                       const double *bounds, size_t n_bounds)
{
    labels = nz(labels);
    pthread_mutex_lock(&mu);
    series_t *s = series_find(name, labels, K_HISTOGRAM);
    if (s) {
        pthread_mutex_unlock(&mu);
        return (selfmon_histogram_t *)s;
    }
    family_t *f = family_get(name, help, K_HISTOGRAM);
    selfmon_histogram_t *h = xcalloc(1, sizeof *h);
    h->bounds = xcalloc(n_bounds ? n_bounds : 1, sizeof *h->bounds);
    if (n_bounds)
        memcpy(h->bounds, bounds, n_bounds * sizeof *bounds);
    h->n_bounds = n_bounds;
    h->buckets = xcalloc(n_bounds + 1, sizeof *h->buckets);
    series_link(&h->s, f, K_HISTOGRAM, labels);
    pthread_mutex_unlock(&mu);
    return h;
}

void selfmon_histogram_observe(selfmon_histogram_t *h, double v)
{
    size_t lo = 0, hi = h->n_bounds; /* first bound >= v, or n_bounds for +Inf */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (h->bounds[mid] >= v)
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add_explicit(&h->buckets[lo], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_add_dbl(&h->sum_bits, v);
}

unsigned long long selfmon_histogram_count(const selfmon_histogram_t *h)
{
    return atomic_load_explicit(&((selfmon_histogram_t *)h)->count, memory_order_relaxed);
}

double selfmon_histogram_sum(const selfmon_histogram_t *h)
{
    return bits_dbl(
        atomic_load_explicit(&((selfmon_histogram_t *)h)->sum_bits, memory_order_relaxed));
}

/* True when the pair k="v" (given as text) appears as a whole pair in labels. */
static bool has_pair(const char *labels, const char *pair, size_t n)
{
    size_t len = strlen(labels);
    for (size_t i = 0; i + n <= len; i++) {
        if ((i == 0 || labels[i - 1] == ',') && memcmp(labels + i, pair, n) == 0 &&
            (i + n == len || labels[i + n] == ','))
            return true;
    }
    return false;
}

static bool labels_match(const char *labels, const char *match)
{
    if (!match)
        return true;
    const char *p = match;
    while (*p) {
        /* A pair ends at the first comma outside quotes. */
        const char *q = p;
        bool in_q = false;
        for (; *q && (in_q || *q != ','); q++) {
            if (*q == '\\' && in_q && q[1])
                q++;
            else if (*q == '"')
                in_q = !in_q;
        }
        if (q > p && !has_pair(labels, p, (size_t)(q - p)))
            return false;
        p = *q ? q + 1 : q;
    }
    return true;
}

double selfmon_counter_sum(const char *name, const char *match)
{
    double sum = 0;
    pthread_mutex_lock(&mu);
    size_t slot = (size_t)(hash64(name, strlen(name), 0) & (N_BUCKETS - 1));
    family_t *f = fam_hash[slot];
    while (f && strcmp(f->name, name) != 0)
        f = f->hash_next;
    if (f && (f->kind == K_COUNTER || f->kind == K_COUNTER_FN)) {
        for (series_t *s = f->first; s; s = s->fam_next)
            if (s->kind == K_COUNTER && labels_match(s->labels, match))
                sum += selfmon_counter_get((selfmon_counter_t *)s);
    }
    pthread_mutex_unlock(&mu);
    return sum;
}

/* ---- process metrics from /proc ---- */

static bool read_file(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(out, 1, cap - 1, f);
    fclose(f);
    out[n] = '\0';
    return n > 0;
}

/* Field k (1-based, as in proc(5)) of /proc/self/stat; 0 when unavailable. */
static double proc_stat_field(int k)
{
    char buf[2048];
    if (!read_file("/proc/self/stat", buf, sizeof buf))
        return 0;
    char *p = strrchr(buf, ')'); /* comm may contain spaces */
    if (!p)
        return 0;
    p++;
    for (int i = 3; i <= k; i++) {
        char *end;
        while (*p == ' ')
            p++;
        if (i == k)
            return strtod(p, &end);
        while (*p && *p != ' ')
            p++;
    }
    return 0;
}

static double proc_rss(void *arg)
{
    (void)arg;
    char buf[256];
    unsigned long size = 0, rss = 0;
    if (!read_file("/proc/self/statm", buf, sizeof buf) || sscanf(buf, "%lu %lu", &size, &rss) != 2)
        return 0;
    return (double)rss * (double)sysconf(_SC_PAGESIZE);
}

static double proc_vsize(void *arg)
{
    (void)arg;
    return proc_stat_field(23);
}

static double proc_cpu(void *arg)
{
    (void)arg;
    return (proc_stat_field(14) + proc_stat_field(15)) / (double)sysconf(_SC_CLK_TCK);
}

static double proc_start(void *arg)
{
    (void)arg;
    char buf[8192];
    if (!read_file("/proc/stat", buf, sizeof buf))
        return 0;
    const char *p = strstr(buf, "\nbtime ");
    if (!p)
        return 0;
    double btime = strtod(p + 7, NULL);
    return btime + proc_stat_field(22) / (double)sysconf(_SC_CLK_TCK);
}

static double proc_fds(void *arg)
{
    (void)arg;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    double n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory stream's own fd */
}

static double proc_max_fds(void *arg)
{
    (void)arg;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    return rl.rlim_cur == RLIM_INFINITY ? 0 : (double)rl.rlim_cur;
}

static pthread_once_t proc_once = PTHREAD_ONCE_INIT;

static void register_process(void)
{
    selfmon_counter_fn("process_cpu_seconds_total",
                       "Total user and system CPU time spent in seconds.", NULL, proc_cpu, NULL);
    selfmon_gauge_fn("process_resident_memory_bytes", "Resident memory size in bytes.", NULL,
                     proc_rss, NULL);
    selfmon_gauge_fn("process_virtual_memory_bytes", "Virtual memory size in bytes.", NULL,
                     proc_vsize, NULL);
    selfmon_gauge_fn("process_start_time_seconds",
                     "Start time of the process since unix epoch in seconds.", NULL, proc_start,
                     NULL);
    selfmon_gauge_fn("process_open_fds", "Number of open file descriptors.", NULL, proc_fds, NULL);
    selfmon_gauge_fn("process_max_fds", "Maximum number of open file descriptors.", NULL,
                     proc_max_fds, NULL);
}

/* ---- exposition ---- */

static void put_help(buf_t *out, const char *help)
{
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            buf_puts(out, "\\\\");
        else if (*p == '\n')
            buf_puts(out, "\\n");
        else
            buf_putc(out, *p);
    }
}

static void put_value(buf_t *out, double v)
{
    char num[FMTNUM_MAX];
    fmt_float_prom(num, v);
    buf_putc(out, ' ');
    buf_puts(out, num);
    buf_putc(out, '\n');
}

static void put_series_name(buf_t *out, const char *name, const char *suffix, const char *labels,
                            const char *le)
{
    buf_puts(out, name);
    buf_puts(out, suffix);
    if (!labels[0] && !le)
        return;
    buf_putc(out, '{');
    buf_puts(out, labels);
    if (le) {
        if (labels[0])
            buf_putc(out, ',');
        buf_puts(out, "le=\"");
        buf_puts(out, le);
        buf_putc(out, '"');
    }
    buf_putc(out, '}');
}

static void write_histogram(buf_t *out, const selfmon_histogram_t *hc)
{
    selfmon_histogram_t *h = (selfmon_histogram_t *)hc;
    const char *name = h->s.fam->name, *labels = h->s.labels;
    uint64_t cum = 0;
    char le[FMTNUM_MAX];
    for (size_t i = 0; i <= h->n_bounds; i++) {
        cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (i < h->n_bounds)
            fmt_float_prom(le, h->bounds[i]);
        else
            strcpy(le, "+Inf");
        put_series_name(out, name, "_bucket", labels, le);
        put_value(out, (double)cum);
    }
    put_series_name(out, name, "_sum", labels, NULL);
    put_value(out, selfmon_histogram_sum(h));
    put_series_name(out, name, "_count", labels, NULL);
    /* The count is the +Inf bucket so the two always agree within one scrape. */
    put_value(out, (double)cum);
}

typedef struct snap {
    series_t *s;
    double (*fn)(void *);
    void *arg;
    bool first_of_family;
} snap_t;

void selfmon_write(buf_t *out)
{
    pthread_once(&proc_once, register_process);
    pthread_mutex_lock(&mu);
    size_t n = n_series, i = 0;
    snap_t *snap = xcalloc(n ? n : 1, sizeof *snap);
    for (family_t *f = fam_head; f; f = f->next)
        for (series_t *s = f->first; s && i < n; s = s->fam_next, i++)
            snap[i] = (snap_t){s, s->fn, s->arg, s == f->first};
    pthread_mutex_unlock(&mu);

    static const char *type_names[] = {"counter", "counter", "gauge", "histogram"};
    for (size_t k = 0; k < i; k++) {
        series_t *s = snap[k].s;
        family_t *f = s->fam;
        if (snap[k].first_of_family) {
            buf_puts(out, "# HELP ");
            buf_puts(out, f->name);
            buf_putc(out, ' ');
            put_help(out, f->help);
            buf_puts(out, "\n# TYPE ");
            buf_puts(out, f->name);
            buf_putc(out, ' ');
            buf_puts(out, type_names[f->kind]);
            buf_putc(out, '\n');
        }
        if (f->kind == K_HISTOGRAM) {
            write_histogram(out, (selfmon_histogram_t *)s);
            continue;
        }
        double v = snap[k].fn ? snap[k].fn(snap[k].arg) : selfmon_counter_get((void *)s);
        put_series_name(out, f->name, "", s->labels, NULL);
        put_value(out, v);
    }
    free(snap);
}
