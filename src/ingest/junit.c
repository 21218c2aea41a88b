/*
 * junit.c - JUnit XML reader (expat) and the mapping of a test run to one OTLP trace.
 *
 * Reader: see junit.h for what is accepted. expat calls the handlers below with UTF-8 strings; a
 * stack of element kinds (bounded by max_depth) says what each element means in its place, so an
 * element in an unexpected place (a <system-out> inside surefire's <rerunFailure>, a <property>
 * outside <properties>) is ignored together with its subtree. Text is collected only where it is
 * kept (failure/error/skipped bodies, system-out/err, property text), into one buffer bounded by
 * max_text_bytes. While reading, a relative timeline is laid out in document order: a cursor starts
 * at 0, each case starts at the cursor and moves it by its time, a suite spans from the cursor when
 * it opens to max(cursor when it closes, open + its own time).
 *
 * Mapping (OTEL-LGTM-Skills test conventions):
 *   resource   the caller's attributes (service.name, vcs.*, skill.md.hash, --attr extras)
 *   scope      skillscope.junit
 *   root span  name: <testsuites name>, else the single top-level suite's name, else the file name.
 *              test.run.file, test.run.tests/passed/failed/skipped; status ERROR "N of M tests
 *              failed" when any failed, else OK. A single top-level suite is merged into the root,
 *              and so is the implicit suite of <testcase>s directly under <testsuites>.
 *   suite span name: the suite name (or "(unnamed suite)"); test.suite.name, test.suite.tests /
 *              failed / skipped (nested suites included), test.suite.hostname, code.filepath,
 *              test.suite.system_out/err, test.property.<name> for its properties; ERROR when a
 *              case under it failed.
 *   case span  name: the test case name. test.id (classname + "." + name; when the classname is
 *              empty or equals the name, suite name + "::" + name; else the name), test.name,
 *              test.classname, test.suite.name, test.category, test.result passed|failed|skipped,
 *              test.duration_ms (double, when time was given), code.filepath, code.lineno,
 *              test.failure.kind failure|error, test.failure.message (the message attribute,
 *              else the first line of the failure text, at most 300 bytes), test.failure.type,
 *              test.skip.message, test.reruns (surefire), test.system_out, test.system_err,
 *              test.property.<name>; an "exception" event (exception.type, exception.message,
 *              exception.stacktrace) for a failure with text. Status OK for passed, ERROR with the
 *              failure message (else its type, else "test failed") for failed, UNSET for skipped.
 *   test.category: a property "test.category" or "category" of the case, else of the nearest
 *              enclosing suite that has one, else the classname's last component (split at '.',
 *              '/', '\' and "::") unless the classname is empty or equals the name, else the suite
 *              name (absent when all are empty).
 *   timing     every span is placed on the reader's relative timeline. An anchor turns it into
 *              absolute time: the nearest enclosing suite with a timestamp (its timestamp is where
 *              it opened), else the <testsuites> timestamp (the timeline's 0), else the run is
 *              placed to end at fallback_end_ns (the file's mtime: tools write the file when the
 *              run ends). The root span covers every span under it.
 */
#include "ingest/junit.h"

#include <expat.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "base/buf.h"
#include "base/hash.h"

const junit_limits_t junit_default_limits = {
    .max_depth = 64,
    .max_cases = 1000000,
    .max_suites = 100000,
    .max_props = 1000,
    .max_value_bytes = 8 << 10,
    .max_text_bytes = 16 << 10,
};

#define FEED_BYTES (64u << 10)
#define MAX_TIME_S 1e8 /* about three years: anything longer is not a test duration */
/* The relative timeline saturates here (about 31 years), so sums of many long times cannot
 * overflow; timestamps are accepted up to 2199, so timestamp + timeline stays in int64 ns. */
#define MAX_TIMELINE_NS 1000000000000000000LL
#define MAX_YEAR 2199
#define FIRST_LINE_BYTES 300

typedef enum {
    EL_IGNORED,
    EL_TESTSUITES,
    EL_TESTSUITE,
    EL_TESTCASE,
    EL_PROPERTIES,
    EL_PROPERTY,
    EL_FAILURE,
    EL_ERROR,
    EL_SKIPPED,
    EL_RERUN,
    EL_SYSOUT,
    EL_SYSERR,
} el_t;

typedef struct parser {
    XML_Parser xp;
    const junit_limits_t *lim;
    const char *fname;
    arena_t *a;
    junit_run_t *run;
    err_t *err;
    int rc;
    el_t *stack; /* kinds of the open elements, lim->max_depth entries */
    size_t depth;
    long suite;            /* innermost open suite, -1 */
    long kase;             /* open case, -1 */
    long implicit;         /* the implicit suite, -1 until needed */
    junit_props_t *props;  /* the open <properties>' owner */
    bool capturing;        /* collecting text into text */
    buf_t text;            /* bounded by max_text_bytes + 4 */
    size_t text_dropped;   /* bytes beyond the bound */
    bool case_has_failure; /* the open case's first failure/error is recorded */
    str_t prop_name;       /* the open <property> when its value is its text */
    bool prop_text;        /* the open <property> has no value attribute */
    int64_t cursor_ns;     /* relative timeline, <= MAX_TIMELINE_NS */
} parser_t;

const char *junit_result_name(junit_result_t r)
{
    switch (r) {
    case JUNIT_PASSED:
        return "passed";
    case JUNIT_SKIPPED:
        return "skipped";
    default:
        return "failed";
    }
}

/* ---- reader helpers ---- */

static int fail_at(parser_t *p, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_at(parser_t *p, int code, const char *fmt, ...)
{
    if (p->rc)
        return p->rc;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line = (int)XML_GetCurrentLineNumber(p->xp);
    int col = (int)XML_GetCurrentColumnNumber(p->xp) + 1;
    p->rc = err_set_at(p->err, code, line, col, "%s:%d:%d: %s", p->fname, line, col, msg);
    XML_StopParser(p->xp, XML_FALSE);
    return p->rc;
}

/* Length of s cut to at most max bytes without splitting a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--;
    return n;
}

/* An arena copy of s cut to max bytes, marked when cut. */
static str_t copy_bounded(arena_t *a, const char *s, size_t len, size_t dropped, size_t max)
{
    size_t keep = utf8_cut(s, len, max);
    dropped += len - keep;
    if (!dropped)
        return arena_str(a, (str_t){s, len});
    char *out = arena_sprintf(a, "%.*s [truncated %zu bytes]", (int)keep, s, dropped);
    return str_cstr(out);
}

static const char *attr(const XML_Char **atts, const char *name)
{
    for (size_t i = 0; atts[i]; i += 2)
        if (strcmp(atts[i], name) == 0)
            return atts[i + 1];
    return NULL;
}

static str_t attr_str(parser_t *p, const XML_Char **atts, const char *name)
{
    const char *v = attr(atts, name);
    if (!v)
        return STR_NULL;
    return copy_bounded(p->a, v, strlen(v), 0, p->lim->max_value_bytes);
}

/* time="..." in seconds: missing or empty is unknown; "1,5" and "1,234.5" are tolerated. */
static int parse_time_attr(parser_t *p, const XML_Char **atts, double *out, bool *has)
{
    const char *v = attr(atts, "time");
    *has = false;
    if (!v)
        return 0;
    while (*v == ' ' || *v == '\t')
        v++;
    if (!*v)
        return 0;
    char tmp[64];
    size_t n = strlen(v), o = 0;
    bool has_dot = strchr(v, '.') != NULL;
    if (n >= sizeof tmp)
        return fail_at(p, ERR_PARSE, "invalid time \"%.40s...\": expected seconds", v);
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (c == ',') {
            if (has_dot)
                continue; /* grouping comma: 1,234.5 */
            c = '.';      /* decimal comma: 1,5 */
        }
        tmp[o++] = c;
    }
    while (o && (tmp[o - 1] == ' ' || tmp[o - 1] == '\t'))
        o--;
    tmp[o] = '\0';
    char *end;
    double d = strtod(tmp, &end);
    bool digits = strspn(tmp, "+-0123456789.eE") == o;
    if (end != tmp + o || !digits || !isfinite(d) || d < 0 || d > MAX_TIME_S)
        return fail_at(p, ERR_PARSE, "invalid time \"%s\": expected seconds, e.g. 0.25", v);
    *out = d;
    *has = true;
    return 0;
}

static int digits_n(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* YYYY-MM-DD[T ]HH:MM:SS[.frac][Z|+HH:MM|+HHMM|-...]; no zone = local time. */
static int parse_timestamp(const char *s, int64_t *ns)
{
    int Y, M, D, h, m, sec;
    size_t n = strlen(s);
    if (n < 19 || digits_n(s, 4, &Y) || s[4] != '-' || digits_n(s + 5, 2, &M) || s[7] != '-' ||
        digits_n(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        digits_n(s + 11, 2, &h) || s[13] != ':' || digits_n(s + 14, 2, &m) || s[16] != ':' ||
        digits_n(s + 17, 2, &sec))
        return -1;
    if (Y < 1970 || Y > MAX_YEAR || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 ||
        sec > 60)
        return -1;
    const char *q = s + 19;
    int64_t frac = 0;
    if (*q == '.' || *q == ',') {
        q++;
        int nd = 0;
        int64_t scale = 100000000;
        for (; *q >= '0' && *q <= '9'; q++, nd++) {
            frac += (*q - '0') * scale;
            scale /= 10;
        }
        if (!nd)
            return -1;
    }
    struct tm tm = {0};
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    time_t t;
    if (!*q) {
        tm.tm_isdst = -1;
        t = mktime(&tm);
    } else {
        int off = 0;
        if ((*q == 'Z' || *q == 'z') && !q[1]) {
            off = 0;
        } else if (*q == '+' || *q == '-') {
            int oh, om;
            const char *z = q + 1;
            if (digits_n(z, 2, &oh))
                return -1;
            z += 2;
            if (*z == ':')
                z++;
            if (digits_n(z, 2, &om) || z[2] || oh > 23 || om > 59)
                return -1;
            off = (oh * 60 + om) * 60 * (*q == '-' ? -1 : 1);
        } else {
            return -1;
        }
        t = timegm(&tm) - off;
    }
    if (t < 0 || t > (time_t)((MAX_YEAR - 1969) * 366LL * 86400))
        return -1; /* before 1970 after a zone offset, or an invalid local time */
    *ns = (int64_t)t * 1000000000 + frac;
    return 0;
}

static int parse_timestamp_attr(parser_t *p, const XML_Char **atts, int64_t *ns, bool *has)
{
    const char *v = attr(atts, "timestamp");
    *has = false;
    if (!v || !*v)
        return 0;
    if (parse_timestamp(v, ns) != 0)
        return fail_at(p, ERR_PARSE,
                       "invalid timestamp \"%.60s\": expected an ISO 8601 date-time such as "
                       "2026-01-02T15:04:05 or 2026-01-02T15:04:05.5+02:00 (years 1970 to 2199)",
                       v);
    *has = true;
    return 0;
}

/* off + t seconds on the relative timeline, saturating at MAX_TIMELINE_NS. */
static int64_t timeline_add(int64_t off, double t)
{
    int64_t d = (int64_t)(t * 1e9); /* t <= MAX_TIME_S: fits */
    return off > MAX_TIMELINE_NS - d ? MAX_TIMELINE_NS : off + d;
}

static void *grow(arena_t *a, void *v, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return v;
    size_t nc = *cap ? *cap * 2 : 8;
    void *nv = arena_alloc(a, nc * size);
    if (n)
        memcpy(nv, v, n * size);
    *cap = nc;
    return nv;
}

static int add_suite(parser_t *p, const XML_Char **atts, bool implicit)
{
    junit_run_t *r = p->run;
    if (r->n_suites >= p->lim->max_suites)
        return fail_at(p, ERR_TOOBIG, "more than %zu test suites", p->lim->max_suites);
    r->suites = grow(p->a, r->suites, r->n_suites, &r->cap_suites, sizeof *r->suites);
    junit_suite_t *s = &r->suites[r->n_suites];
    memset(s, 0, sizeof *s);
    s->parent = implicit ? -1 : p->suite;
    s->implicit = implicit;
    s->start_off_ns = p->cursor_ns;
    if (implicit) {
        s->name = r->name;
    } else {
        s->name = attr_str(p, atts, "name");
        s->hostname = attr_str(p, atts, "hostname");
        s->file = attr_str(p, atts, "file");
        if (!s->file.len)
            s->file = attr_str(p, atts, "filepath");
        if (parse_time_attr(p, atts, &s->time_s, &s->has_time) ||
            parse_timestamp_attr(p, atts, &s->timestamp_ns, &s->has_timestamp))
            return p->rc;
    }
    return (int)r->n_suites++;
}

static void close_suite(parser_t *p, size_t i)
{
    junit_suite_t *s = &p->run->suites[i];
    int64_t end = p->cursor_ns;
    if (s->has_time && timeline_add(s->start_off_ns, s->time_s) > end)
        end = timeline_add(s->start_off_ns, s->time_s);
    s->end_off_ns = end;
    p->cursor_ns = end;
}

static int add_case(parser_t *p, const XML_Char **atts)
{
    junit_run_t *r = p->run;
    if (r->n_cases >= p->lim->max_cases)
        return fail_at(p, ERR_TOOBIG, "more than %zu test cases", p->lim->max_cases);
    r->cases = grow(p->a, r->cases, r->n_cases, &r->cap_cases, sizeof *r->cases);
    junit_case_t *c = &r->cases[r->n_cases];
    memset(c, 0, sizeof *c);
    c->suite = (size_t)p->suite;
    c->name = attr_str(p, atts, "name");
    c->classname = attr_str(p, atts, "classname");
    c->file = attr_str(p, atts, "file");
    if (!c->file.len)
        c->file = attr_str(p, atts, "filepath");
    const char *line = attr(atts, "line");
    if (line && *line) {
        char *end;
        long long v = strtoll(line, &end, 10);
        if (*end || v < 0 || v > INT_MAX || line[0] < '0' || line[0] > '9')
            return fail_at(p, ERR_PARSE, "invalid line \"%.40s\": expected a line number", line);
        c->line = v;
    }
    if (parse_time_attr(p, atts, &c->time_s, &c->has_time))
        return p->rc;
    c->start_off_ns = p->cursor_ns;
    if (c->has_time)
        p->cursor_ns = timeline_add(p->cursor_ns, c->time_s);
    p->case_has_failure = false;
    p->kase = (long)r->n_cases++;
    return 0;
}

static void start_text(parser_t *p)
{
    buf_clear(&p->text);
    p->text_dropped = 0;
    p->capturing = true;
}

static str_t end_text(parser_t *p)
{
    p->capturing = false;
    str_t t = buf_str(&p->text);
    /* Only whitespace (the indentation of an empty element) is no text. */
    size_t i = 0;
    while (i < t.len &&
           (t.ptr[i] == ' ' || t.ptr[i] == '\n' || t.ptr[i] == '\r' || t.ptr[i] == '\t'))
        i++;
    if (i == t.len && !p->text_dropped)
        return STR_NULL;
    return copy_bounded(p->a, t.ptr, t.len, p->text_dropped, p->lim->max_text_bytes);
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    parser_t *p = ud;
    if (p->rc || !p->capturing || len <= 0)
        return;
    size_t room = p->lim->max_text_bytes + 4;
    size_t have = buf_len(&p->text);
    size_t take = have >= room ? 0 : room - have;
    if (take > (size_t)len)
        take = (size_t)len;
    buf_append(&p->text, s, take);
    p->text_dropped += (size_t)len - take;
}

static el_t classify(const char *name, el_t parent, size_t depth)
{
    bool in_suite = parent == EL_TESTSUITE || parent == EL_TESTSUITES;
    if (depth == 1)
        return !strcmp(name, "testsuites")  ? EL_TESTSUITES
               : !strcmp(name, "testsuite") ? EL_TESTSUITE
                                            : EL_IGNORED;
    if (parent == EL_IGNORED)
        return EL_IGNORED;
    if (!strcmp(name, "testsuite"))
        return in_suite ? EL_TESTSUITE : EL_IGNORED;
    if (!strcmp(name, "testcase"))
        return in_suite ? EL_TESTCASE : EL_IGNORED;
    if (!strcmp(name, "properties"))
        return parent == EL_TESTSUITE || parent == EL_TESTCASE ? EL_PROPERTIES : EL_IGNORED;
    if (!strcmp(name, "property"))
        return parent == EL_PROPERTIES ? EL_PROPERTY : EL_IGNORED;
    if (!strcmp(name, "system-out"))
        return parent == EL_TESTSUITE || parent == EL_TESTCASE ? EL_SYSOUT : EL_IGNORED;
    if (!strcmp(name, "system-err"))
        return parent == EL_TESTSUITE || parent == EL_TESTCASE ? EL_SYSERR : EL_IGNORED;
    if (parent != EL_TESTCASE)
        return EL_IGNORED;
    if (!strcmp(name, "failure"))
        return EL_FAILURE;
    if (!strcmp(name, "error"))
        return EL_ERROR;
    if (!strcmp(name, "skipped"))
        return EL_SKIPPED;
    if (!strcmp(name, "flakyFailure") || !strcmp(name, "rerunFailure") ||
        !strcmp(name, "flakyError") || !strcmp(name, "rerunError"))
        return EL_RERUN;
    return EL_IGNORED;
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    parser_t *p = ud;
    if (p->rc)
        return;
    if (p->depth >= p->lim->max_depth) {
        fail_at(p, ERR_TOOBIG, "elements nested deeper than %zu", p->lim->max_depth);
        return;
    }
    el_t parent = p->depth ? p->stack[p->depth - 1] : EL_IGNORED;
    el_t el = classify(name, parent, p->depth + 1);
    p->stack[p->depth++] = el;
    junit_run_t *r = p->run;
    junit_case_t *c = p->kase >= 0 ? &r->cases[p->kase] : NULL;
    switch (el) {
    case EL_IGNORED:
        if (p->depth == 1)
            fail_at(p, ERR_PARSE, "root element <%.60s>: expected <testsuites> or <testsuite>",
                    name);
        break;
    case EL_TESTSUITES:
        r->name = attr_str(p, atts, "name");
        if (parse_time_attr(p, atts, &r->time_s, &r->has_time) == 0)
            parse_timestamp_attr(p, atts, &r->timestamp_ns, &r->has_timestamp);
        break;
    case EL_TESTSUITE: {
        int i = add_suite(p, atts, false);
        if (i >= 0)
            p->suite = i;
        break;
    }
    case EL_TESTCASE:
        if (parent == EL_TESTSUITES) {
            if (p->implicit < 0) {
                int i = add_suite(p, atts, true);
                if (i < 0)
                    break;
                p->implicit = i;
            }
            p->suite = p->implicit;
        }
        add_case(p, atts);
        break;
    case EL_PROPERTIES:
        p->props = c ? &c->props : &r->suites[p->suite].props;
        break;
    case EL_PROPERTY: {
        junit_props_t *ps = p->props;
        if (ps->n >= p->lim->max_props) {
            fail_at(p, ERR_TOOBIG, "more than %zu properties", p->lim->max_props);
            break;
        }
        str_t pname = attr_str(p, atts, "name");
        const char *v = attr(atts, "value");
        if (v) {
            ps->v = grow(p->a, ps->v, ps->n, &ps->cap, sizeof *ps->v);
            ps->v[ps->n++] = (junit_prop_t){pname, attr_str(p, atts, "value")};
        } else {
            p->prop_name = pname;
            p->prop_text = true;
            start_text(p);
        }
        break;
    }
    case EL_FAILURE:
    case EL_ERROR:
        if (!p->case_has_failure) {
            c->result = el == EL_FAILURE ? JUNIT_FAILED : JUNIT_ERROR;
            c->message = attr_str(p, atts, "message");
            c->type = attr_str(p, atts, "type");
            start_text(p);
        }
        break;
    case EL_SKIPPED:
        if (!p->case_has_failure && c->result == JUNIT_PASSED) {
            c->result = JUNIT_SKIPPED;
            c->message = attr_str(p, atts, "message");
            c->type = attr_str(p, atts, "type");
        }
        break;
    case EL_RERUN:
        c->reruns++;
        break;
    case EL_SYSOUT:
    case EL_SYSERR:
        start_text(p);
        break;
    }
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    (void)name;
    parser_t *p = ud;
    if (p->rc)
        return;
    el_t el = p->stack[--p->depth];
    el_t parent = p->depth ? p->stack[p->depth - 1] : EL_IGNORED;
    junit_run_t *r = p->run;
    junit_case_t *c = p->kase >= 0 ? &r->cases[p->kase] : NULL;
    switch (el) {
    case EL_IGNORED:
    case EL_TESTSUITES:
    case EL_RERUN:
    case EL_SKIPPED:
        break;
    case EL_TESTSUITE: {
        close_suite(p, (size_t)p->suite);
        p->suite = r->suites[p->suite].parent;
        break;
    }
    case EL_TESTCASE: {
        junit_suite_t *s = &r->suites[c->suite];
        s->n_cases++;
        if (c->result == JUNIT_SKIPPED) {
            s->n_skipped++;
            r->n_skipped++;
        } else if (c->result == JUNIT_PASSED) {
            r->n_passed++;
        } else {
            s->n_failed++;
            r->n_failed++;
        }
        p->kase = -1;
        if (parent == EL_TESTSUITES) {
            /* The implicit suite spans its cases; it stays open for later ones. */
            s->end_off_ns = p->cursor_ns;
            p->suite = -1;
        }
        break;
    }
    case EL_PROPERTIES:
        p->props = NULL;
        break;
    case EL_PROPERTY:
        if (p->prop_text) {
            str_t v = end_text(p);
            junit_props_t *ps = p->props;
            if (v.len > p->lim->max_value_bytes)
                v = copy_bounded(p->a, v.ptr, v.len, 0, p->lim->max_value_bytes);
            ps->v = grow(p->a, ps->v, ps->n, &ps->cap, sizeof *ps->v);
            ps->v[ps->n++] = (junit_prop_t){p->prop_name, v};
            p->prop_text = false;
        }
        break;
    case EL_FAILURE:
    case EL_ERROR:
        if (!p->case_has_failure) {
            c->text = end_text(p);
            p->case_has_failure = true;
        }
        break;
    case EL_SYSOUT:
    case EL_SYSERR: {
        str_t t = end_text(p);
        str_t *dst;
        if (c)
            dst = el == EL_SYSOUT ? &c->system_out : &c->system_err;
        else
            dst =
                el == EL_SYSOUT ? &r->suites[p->suite].system_out : &r->suites[p->suite].system_err;
        if (t.len)
            *dst = t;
        break;
    }
    }
}

static void XMLCALL on_entity_decl(void *ud, const XML_Char *name, int is_param,
                                   const XML_Char *value, int value_len, const XML_Char *base,
                                   const XML_Char *system_id, const XML_Char *public_id,
                                   const XML_Char *notation)
{
    (void)is_param, (void)value, (void)value_len, (void)base, (void)system_id, (void)public_id,
        (void)notation;
    fail_at(ud, ERR_PARSE, "entity declaration \"%.60s\": DTD entities are not accepted", name);
}

int junit_parse(const void *data, size_t n, const char *fname, const junit_limits_t *lim,
                arena_t *a, junit_run_t *out, err_t *err)
{
    memset(out, 0, sizeof *out);
    parser_t p;
    memset(&p, 0, sizeof p);
    p.lim = lim ? lim : &junit_default_limits;
    p.fname = fname ? fname : "input";
    p.a = a;
    p.run = out;
    p.err = err;
    p.suite = p.kase = p.implicit = -1;
    p.stack = arena_alloc(a, (p.lim->max_depth + 1) * sizeof *p.stack);
    p.xp = XML_ParserCreate(NULL);
    if (!p.xp)
        return err_set(err, ERR_NOMEM, "%s: cannot create an XML parser", p.fname);
    XML_SetUserData(p.xp, &p);
    XML_SetElementHandler(p.xp, on_start, on_end);
    XML_SetCharacterDataHandler(p.xp, on_text);
    XML_SetEntityDeclHandler(p.xp, on_entity_decl);
    const char *s = data;
    size_t off = 0;
    int rc = 0;
    do {
        size_t chunk = n - off > FEED_BYTES ? FEED_BYTES : n - off;
        bool final = off + chunk == n;
        if (XML_Parse(p.xp, s + off, (int)chunk, final) != XML_STATUS_OK) {
            if (p.rc) {
                rc = p.rc;
            } else {
                int line = (int)XML_GetCurrentLineNumber(p.xp);
                int col = (int)XML_GetCurrentColumnNumber(p.xp) + 1;
                rc = err_set_at(err, ERR_PARSE, line, col, "%s:%d:%d: %s", p.fname, line, col,
                                XML_ErrorString(XML_GetErrorCode(p.xp)));
            }
            break;
        }
        off += chunk;
    } while (off < n);
    XML_ParserFree(p.xp);
    buf_deinit(&p.text);
    if (rc)
        return rc;
    /* The implicit suite closes with the run. */
    if (p.implicit >= 0 &&
        out->suites[p.implicit].end_off_ns < out->suites[p.implicit].start_off_ns)
        out->suites[p.implicit].end_off_ns = out->suites[p.implicit].start_off_ns;
    out->total_ns = p.cursor_ns;
    if (out->has_time && timeline_add(0, out->time_s) > out->total_ns)
        out->total_ns = timeline_add(0, out->time_s);
    return 0;
}

/* ---- mapping ---- */

void junit_trace_id(const void *data, size_t n, uint8_t out[16])
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(data, n));
    memcpy(out, c.digest, 16);
    bool zero = true;
    for (int i = 0; i < 16; i++)
        zero = zero && !out[i];
    if (zero)
        out[15] = 1;
}

typedef struct kvs {
    otlp_kv_t *v;
    size_t n, cap;
    arena_t *a;
} kvs_t;

static otlp_value_t *kv_add(kvs_t *k, str_t key)
{
    k->v = grow(k->a, k->v, k->n, &k->cap, sizeof *k->v);
    otlp_kv_t *kv = &k->v[k->n++];
    memset(kv, 0, sizeof *kv);
    kv->key = key;
    return &kv->value;
}

static void kv_str(kvs_t *k, const char *key, str_t v)
{
    if (!v.len)
        return;
    otlp_value_t *val = kv_add(k, str_cstr(key));
    val->type = OTLP_V_STRING;
    val->u.s = v;
}

static void kv_int(kvs_t *k, const char *key, int64_t v)
{
    otlp_value_t *val = kv_add(k, str_cstr(key));
    val->type = OTLP_V_INT;
    val->u.i = v;
}

static void kv_props(kvs_t *k, const junit_props_t *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        if (!ps->v[i].name.len)
            continue;
        str_t key = str_cstr(arena_sprintf(k->a, "test.property.%.*s", STR_FMT(ps->v[i].name)));
        otlp_value_t *val = kv_add(k, key);
        val->type = OTLP_V_STRING;
        val->u.s = ps->v[i].value;
    }
}

static otlp_attrs_t kv_done(kvs_t *k) { return (otlp_attrs_t){k->v, k->n}; }

static str_t prop_get(const junit_props_t *ps, const char *name)
{
    for (size_t i = 0; i < ps->n; i++)
        if (str_eq_cstr(ps->v[i].name, name))
            return ps->v[i].value;
    return STR_NULL;
}

static str_t category_prop(const junit_props_t *ps)
{
    str_t v = prop_get(ps, "test.category");
    return v.len ? v : prop_get(ps, "category");
}

static str_t last_component(str_t s)
{
    size_t i = s.len;
    while (i > 0) {
        char ch = s.ptr[i - 1];
        if (ch == '.' || ch == '/' || ch == '\\' || (ch == ':' && i >= 2 && s.ptr[i - 2] == ':'))
            break;
        i--;
    }
    return (str_t){s.ptr + i, s.len - i};
}

/* The first non-blank line of a failure text, cut to FIRST_LINE_BYTES: the message of a failure
 * that has no message attribute (jest-junit). */
static str_t first_line(str_t t)
{
    size_t i = 0;
    while (i < t.len &&
           (t.ptr[i] == ' ' || t.ptr[i] == '\t' || t.ptr[i] == '\r' || t.ptr[i] == '\n'))
        i++;
    size_t e = i;
    while (e < t.len && t.ptr[e] != '\n' && t.ptr[e] != '\r')
        e++;
    while (e > i && (t.ptr[e - 1] == ' ' || t.ptr[e - 1] == '\t'))
        e--;
    return (str_t){t.ptr + i, utf8_cut(t.ptr + i, e - i, FIRST_LINE_BYTES)};
}

static void span_id(const uint8_t tid[16], uint64_t kind, uint64_t index, uint8_t out[8])
{
    uint64_t h = hash64(tid, 16, kind << 48 ^ index);
    if (!h)
        h = 1;
    store_u64le(out, h);
}

static uint64_t abs_ns(int64_t base, int64_t off)
{
    int64_t t = base + off;
    return t < 0 ? 0 : (uint64_t)t;
}

/* What the span builders share: per suite the absolute time of its timeline's 0, the counts of
 * its cases (nested suites included) and its span id; the time range covered so far. */
typedef struct mapctx {
    const junit_run_t *run;
    const junit_map_opts_t *o;
    arena_t *a;
    int64_t run_base;
    int64_t *base;
    size_t *tests, *failed, *skipped;
    uint8_t (*suite_ids)[8];
    uint8_t root_id[8];
    size_t top;  /* the last top-level suite */
    bool merged; /* exactly one top-level suite: it is the root span */
    uint64_t lo, hi;
} mapctx_t;

static void layout(mapctx_t *m)
{
    const junit_run_t *run = m->run;
    size_t ns = run->n_suites, n_top = 0;
    arena_t *a = m->a;
    m->base = ARENA_ARRAY(a, int64_t, ns + 1);
    m->tests = ARENA_ARRAY(a, size_t, ns + 1);
    m->failed = ARENA_ARRAY(a, size_t, ns + 1);
    m->skipped = ARENA_ARRAY(a, size_t, ns + 1);
    m->suite_ids = arena_alloc(a, (ns + 1) * 8);
    m->run_base = run->has_timestamp ? run->timestamp_ns : m->o->fallback_end_ns - run->total_ns;
    for (size_t i = 0; i < ns; i++) {
        const junit_suite_t *s = &run->suites[i];
        if (s->has_timestamp)
            m->base[i] = s->timestamp_ns - s->start_off_ns;
        else
            m->base[i] = s->parent >= 0 ? m->base[s->parent] : m->run_base;
        if (s->parent < 0) {
            n_top++;
            m->top = i;
        }
    }
    for (size_t i = ns; i-- > 0;) { /* children come after their parent */
        const junit_suite_t *s = &run->suites[i];
        m->tests[i] += s->n_cases;
        m->failed[i] += s->n_failed;
        m->skipped[i] += s->n_skipped;
        if (s->parent >= 0) {
            m->tests[s->parent] += m->tests[i];
            m->failed[s->parent] += m->failed[i];
            m->skipped[s->parent] += m->skipped[i];
        }
    }
    m->merged = n_top == 1;
    span_id(m->o->trace_id, 1, 0, m->root_id);
    for (size_t i = 0; i < ns; i++) {
        if ((m->merged && i == m->top) || run->suites[i].implicit)
            memcpy(m->suite_ids[i], m->root_id, 8);
        else
            span_id(m->o->trace_id, 2, i, m->suite_ids[i]);
    }
    m->lo = UINT64_MAX;
    m->hi = 0;
}

static void cover(mapctx_t *m, const otlp_span_t *sp)
{
    m->lo = sp->start_ns < m->lo ? sp->start_ns : m->lo;
    m->hi = sp->end_ns > m->hi ? sp->end_ns : m->hi;
}

/* test.category: see the rule at the top of the file. */
static str_t case_category(const junit_run_t *run, const junit_case_t *c, bool qualified)
{
    str_t cat = category_prop(&c->props);
    for (long j = (long)c->suite; !cat.len && j >= 0; j = run->suites[j].parent)
        cat = category_prop(&run->suites[j].props);
    if (!cat.len && qualified)
        cat = last_component(c->classname);
    return cat.len ? cat : run->suites[c->suite].name;
}

static void map_failure(mapctx_t *m, const junit_case_t *c, otlp_span_t *sp, kvs_t *k)
{
    kv_str(k, "test.failure.kind", c->result == JUNIT_FAILED ? STR("failure") : STR("error"));
    str_t msg = c->message.len ? c->message : first_line(c->text);
    kv_str(k, "test.failure.message", msg);
    kv_str(k, "test.failure.type", c->type);
    sp->status_code = OTLP_STATUS_ERROR;
    sp->status_message = msg.len                     ? msg
                         : c->type.len               ? c->type
                         : c->result == JUNIT_FAILED ? STR("test failed")
                                                     : STR("test error");
    if (!c->text.len && !c->message.len)
        return;
    otlp_event_t *ev = ARENA_NEW(m->a, otlp_event_t);
    ev->time_ns = sp->end_ns;
    ev->name = STR("exception");
    kvs_t ek = {.a = m->a};
    kv_str(&ek, "exception.type", c->type);
    kv_str(&ek, "exception.message", c->message);
    kv_str(&ek, "exception.stacktrace", c->text);
    ev->attrs = kv_done(&ek);
    sp->events = ev;
    sp->n_events = 1;
}

static void map_case(mapctx_t *m, size_t i, otlp_span_t *sp)
{
    const junit_case_t *c = &m->run->cases[i];
    const junit_suite_t *s = &m->run->suites[c->suite];
    arena_t *a = m->a;
    memcpy(sp->trace_id, m->o->trace_id, 16);
    span_id(m->o->trace_id, 3, i, sp->span_id);
    memcpy(sp->parent_span_id, m->suite_ids[c->suite], 8);
    sp->has_parent = true;
    sp->name = c->name.len ? c->name : STR("(unnamed test)");
    sp->kind = OTLP_SPAN_KIND_INTERNAL;
    sp->start_ns = abs_ns(m->base[c->suite], c->start_off_ns);
    sp->end_ns = sp->start_ns + (c->has_time ? (uint64_t)(c->time_s * 1e9) : 0);
    cover(m, sp);

    kvs_t k = {.a = a};
    bool qualified = c->classname.len && !str_eq(c->classname, c->name);
    str_t id = c->name;
    if (qualified)
        id = str_cstr(arena_sprintf(a, "%.*s.%.*s", STR_FMT(c->classname), STR_FMT(c->name)));
    else if (s->name.len)
        id = str_cstr(arena_sprintf(a, "%.*s::%.*s", STR_FMT(s->name), STR_FMT(c->name)));
    kv_str(&k, "test.id", id);
    kv_str(&k, "test.name", c->name);
    kv_str(&k, "test.classname", c->classname);
    kv_str(&k, "test.suite.name", s->name);
    kv_str(&k, "test.category", case_category(m->run, c, qualified));
    kv_str(&k, "test.result", str_cstr(junit_result_name(c->result)));
    if (c->has_time) {
        otlp_value_t *v = kv_add(&k, STR("test.duration_ms"));
        v->type = OTLP_V_DOUBLE;
        v->u.d = c->time_s * 1000.0;
    }
    kv_str(&k, "code.filepath", c->file);
    if (c->line > 0)
        kv_int(&k, "code.lineno", c->line);
    if (c->result == JUNIT_FAILED || c->result == JUNIT_ERROR) {
        map_failure(m, c, sp, &k);
    } else if (c->result == JUNIT_SKIPPED) {
        kv_str(&k, "test.skip.message", c->message);
        sp->status_code = OTLP_STATUS_UNSET;
    } else {
        sp->status_code = OTLP_STATUS_OK;
    }
    if (c->reruns)
        kv_int(&k, "test.reruns", c->reruns);
    kv_str(&k, "test.system_out", c->system_out);
    kv_str(&k, "test.system_err", c->system_err);
    kv_props(&k, &c->props);
    sp->attrs = kv_done(&k);
}

/* A suite's span (for the merged suite: the root's suite attributes, status and name left to
 * map_root). */
static void map_suite(mapctx_t *m, size_t i, otlp_span_t *sp, bool is_root)
{
    const junit_suite_t *s = &m->run->suites[i];
    memcpy(sp->trace_id, m->o->trace_id, 16);
    memcpy(sp->span_id, m->suite_ids[i], 8);
    if (!is_root) {
        memcpy(sp->parent_span_id, s->parent >= 0 ? m->suite_ids[s->parent] : m->root_id, 8);
        sp->has_parent = true;
    }
    sp->name = s->name.len ? s->name : STR("(unnamed suite)");
    sp->kind = OTLP_SPAN_KIND_INTERNAL;
    sp->start_ns = abs_ns(m->base[i], s->start_off_ns);
    sp->end_ns = abs_ns(m->base[i], s->end_off_ns);
    if (sp->end_ns < sp->start_ns)
        sp->end_ns = sp->start_ns;
    cover(m, sp);
    kvs_t k = {.a = m->a};
    kv_str(&k, "test.suite.name", s->name);
    kv_int(&k, "test.suite.tests", (int64_t)m->tests[i]);
    kv_int(&k, "test.suite.failed", (int64_t)m->failed[i]);
    kv_int(&k, "test.suite.skipped", (int64_t)m->skipped[i]);
    kv_str(&k, "test.suite.hostname", s->hostname);
    kv_str(&k, "code.filepath", s->file);
    kv_str(&k, "test.suite.system_out", s->system_out);
    kv_str(&k, "test.suite.system_err", s->system_err);
    kv_props(&k, &s->props);
    sp->attrs = kv_done(&k);
    if (is_root)
        return;
    sp->status_code = m->failed[i] ? OTLP_STATUS_ERROR : OTLP_STATUS_OK;
    if (m->failed[i])
        sp->status_message =
            str_cstr(arena_sprintf(m->a, "%zu of %zu tests failed", m->failed[i], m->tests[i]));
}

/* The root span; root already holds the merged suite's span when m->merged. */
static void map_root(mapctx_t *m, otlp_span_t *root)
{
    const junit_run_t *run = m->run;
    kvs_t k = {.a = m->a};
    if (m->merged) {
        k.v = root->attrs.v;
        k.n = k.cap = root->attrs.n;
    } else {
        memcpy(root->trace_id, m->o->trace_id, 16);
        memcpy(root->span_id, m->root_id, 8);
        root->kind = OTLP_SPAN_KIND_INTERNAL;
    }
    root->name = run->name.len                               ? run->name
                 : m->merged && run->suites[m->top].name.len ? run->suites[m->top].name
                 : m->o->file_name.len                       ? m->o->file_name
                                                             : STR("junit");
    if (m->lo == UINT64_MAX)
        m->lo = m->hi = abs_ns(m->run_base, 0);
    root->start_ns = m->lo;
    root->end_ns = m->hi;
    kv_str(&k, "test.run.file", m->o->file_name);
    kv_int(&k, "test.run.tests", (int64_t)run->n_cases);
    kv_int(&k, "test.run.passed", (int64_t)run->n_passed);
    kv_int(&k, "test.run.failed", (int64_t)run->n_failed);
    kv_int(&k, "test.run.skipped", (int64_t)run->n_skipped);
    root->attrs = kv_done(&k);
    root->status_code = run->n_failed ? OTLP_STATUS_ERROR : OTLP_STATUS_OK;
    if (run->n_failed)
        root->status_message =
            str_cstr(arena_sprintf(m->a, "%zu of %zu tests failed", run->n_failed, run->n_cases));
}

void junit_to_otlp(const junit_run_t *run, const junit_map_opts_t *o, arena_t *a,
                   otlp_traces_t *out)
{
    mapctx_t m = {.run = run, .o = o, .a = a};
    layout(&m);
    otlp_span_t *spans = ARENA_ARRAY(a, otlp_span_t, run->n_suites + run->n_cases + 1);
    otlp_span_t root;
    memset(&root, 0, sizeof root);
    size_t n = 0;
    for (size_t i = 0; i < run->n_cases; i++)
        map_case(&m, i, &spans[n++]);
    for (size_t i = 0; i < run->n_suites; i++) {
        bool is_root = m.merged && i == m.top;
        if (run->suites[i].implicit && !is_root)
            continue; /* its cases hang under the root */
        map_suite(&m, i, is_root ? &root : &spans[n++], is_root);
    }
    map_root(&m, &root);
    spans[n++] = root; /* last: see junit.h */

    otlp_resource_spans_t *rs = ARENA_NEW(a, otlp_resource_spans_t);
    rs->resource.attrs = (otlp_attrs_t){(otlp_kv_t *)o->res_kv, o->n_res_kv};
    rs->scopes = ARENA_NEW(a, otlp_scope_spans_t);
    rs->n_scopes = 1;
    rs->scopes->scope.name = STR("skillscope.junit");
    rs->scopes->scope.version = o->scope_version;
    rs->scopes->spans = spans;
    rs->scopes->n_spans = n;
    out->rs = rs;
    out->n_rs = 1;
}
