/*
 * test_traceql_examples.c - Tempo's TraceQL parse corpus (../shared/specs/tempo/
 * traceql_test_examples.yaml, read with libyaml) against our parser.
 *
 *   valid:           each parses, or is refused with ERR_UNSUPPORTED (outside the subset)
 *   parse_fails:     each is refused (ERR_PARSE, or ERR_UNSUPPORTED when it uses a feature we
 *   validate_fails:  reject before reaching the error Tempo reports)
 *   unsupported:     each is refused
 * Every error must carry "parse error at line L, col C: ". The valid queries outside the subset,
 * with our message, must equal tests/data/traceql/out_of_subset.txt (regenerate it with
 * TRACEQL_EXAMPLES_WRITE=1 after a deliberate change), so the subset's edge is reviewed in diffs.
 * Counts are printed per list.
 */
#include <stdlib.h>
#include <yaml.h>

#include "base/buf.h"
#include "query/traceql.h"
#include "test.h"

#define LIST_PATH "tests/data/traceql/out_of_subset.txt"

typedef struct lists {
    char *name[8];
    char **q[8];
    size_t n[8];
    size_t n_lists;
} lists_t;

static bool load_yaml(const char *path, lists_t *l)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    yaml_event_t ev;
    int depth = 0, cur = -1;
    bool expect_key = true; /* at depth 1: keys and values alternate */
    bool ok = true;
    for (;;) {
        if (!yaml_parser_parse(&p, &ev)) {
            ok = false;
            break;
        }
        yaml_event_type_t t = ev.type;
        if (t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT)
            depth++;
        else if (t == YAML_MAPPING_END_EVENT || t == YAML_SEQUENCE_END_EVENT) {
            depth--;
            expect_key = true;
        } else if (t == YAML_SCALAR_EVENT) {
            const char *v = (const char *)ev.data.scalar.value;
            if (depth == 1 && expect_key && l->n_lists < 8) {
                cur = (int)l->n_lists++;
                l->name[cur] = strdup(v);
                expect_key = false;
            } else if (depth == 1) {
                expect_key = true; /* a scalar value (dump: with nothing) */
            } else if (depth == 2 && cur >= 0) {
                l->q[cur] = realloc(l->q[cur], (l->n[cur] + 1) * sizeof(char *));
                l->q[cur][l->n[cur]++] = strndup(v, ev.data.scalar.length);
            }
        }
        bool end = t == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
        if (end)
            break;
    }
    yaml_parser_delete(&p);
    fclose(f);
    return ok;
}

static void free_lists(lists_t *l)
{
    for (size_t i = 0; i < l->n_lists; i++) {
        for (size_t k = 0; k < l->n[i]; k++)
            free(l->q[i][k]);
        free(l->q[i]);
        free(l->name[i]);
    }
}

/* One line per query: newlines and tabs in queries escaped so the file stays line-based. */
static void put_escaped(buf_t *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\n')
            buf_puts(b, "\\n");
        else if (*s == '\t')
            buf_puts(b, "\\t");
        else if (*s == '\r')
            buf_puts(b, "\\r");
        else
            buf_putc(b, *s);
    }
}

/* Prints how many valid queries each refusal reason covers (positions and the metrics function
 * name stripped, so "TraceQL metrics (rate()) ..." and "(count_over_time()) ..." group). */
static void print_reasons(str_t list)
{
    char *reason[64];
    size_t count[64], n = 0;
    const char *p = list.ptr, *end = list.ptr + list.len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            nl = end;
        const char *tab = memchr(p, '\t', (size_t)(nl - p));
        const char *colon = tab ? strstr(tab, ": ") : NULL;
        if (*p != '#' && colon && colon < nl) {
            const char *r = colon + 2;
            size_t len = (size_t)(nl - r);
            if (!strncmp(r, "TraceQL metrics (", 17))
                len = 15;
            else if (!strncmp(r, "structural operator ", 20))
                len = 19;
            else if (!strncmp(r, "intrinsic ", 10))
                len = 9;
            size_t k = 0;
            while (k < n && (strlen(reason[k]) != len || strncmp(reason[k], r, len)))
                k++;
            if (k == n && n < 64) {
                reason[n] = strndup(r, len);
                count[n++] = 0;
            }
            if (k < n)
                count[k]++;
        }
        p = nl + 1;
    }
    for (size_t k = 0; k < n; k++) {
        printf("traceql examples out of subset: %3zu  %s\n", count[k], reason[k]);
        free(reason[k]);
    }
}

TEST(tempo_examples_corpus)
{
    const char *dir = getenv("SKILLSCOPE_SPECS");
    char path[1024];
    snprintf(path, sizeof path, "%s/tempo/traceql_test_examples.yaml",
             dir ? dir : "../shared/specs");
    lists_t l;
    memset(&l, 0, sizeof l);
    REQUIRE(load_yaml(path, &l));
    REQUIRE(l.n_lists >= 4);
    buf_t out = BUF_INIT;
    buf_puts(&out,
             "# Valid queries of Tempo's traceql_test_examples.yaml that Skillscope refuses as "
             "outside its\n# TraceQL subset, with the message it gives. Generated by "
             "tests/unit/test_traceql_examples.c\n# (TRACEQL_EXAMPLES_WRITE=1); the test "
             "fails when this list changes.\n");
    for (size_t i = 0; i < l.n_lists; i++) {
        bool valid = !strcmp(l.name[i], "valid");
        size_t ok = 0, unsupported = 0, rejected = 0;
        for (size_t k = 0; k < l.n[i]; k++) {
            arena_t a;
            arena_init(&a, 0);
            tql_query_t *q = NULL;
            err_t err = {0};
            int rc = traceql_parse(str_cstr(l.q[i][k]), &a, &q, &err);
            if (rc == 0) {
                ok++;
                traceql_free(q);
                if (!valid)
                    test_fail_at(__FILE__, __LINE__, "%s: accepted: %s", l.name[i], l.q[i][k]);
            } else {
                if (!strstr(err.msg, "parse error at line ") || err.line < 1 || err.col < 1)
                    test_fail_at(__FILE__, __LINE__, "%s: %s: unpositioned error: %s", l.name[i],
                                 l.q[i][k], err.msg);
                if (getenv("TRACEQL_EXAMPLES_VERBOSE"))
                    printf("%s\t%s\t%s\n", l.name[i], l.q[i][k], err.msg);
                if (rc == ERR_UNSUPPORTED) {
                    unsupported++;
                    if (!strstr(err.msg, "not supported"))
                        test_fail_at(__FILE__, __LINE__, "%s: %s: unclear message: %s", l.name[i],
                                     l.q[i][k], err.msg);
                } else {
                    rejected++;
                }
                if (valid && rc != ERR_UNSUPPORTED)
                    test_fail_at(__FILE__, __LINE__, "valid query refused as a parse error: %s: %s",
                                 l.q[i][k], err.msg);
                if (valid && rc == ERR_UNSUPPORTED) {
                    put_escaped(&out, l.q[i][k]);
                    buf_putc(&out, '\t');
                    buf_puts(&out, err.msg);
                    buf_putc(&out, '\n');
                }
            }
            arena_deinit(&a);
        }
        if (l.n[i])
            printf("traceql examples %-15s %3zu queries: %3zu parse, %3zu refused as unsupported, "
                   "%3zu refused as invalid\n",
                   l.name[i], l.n[i], ok, unsupported, rejected);
    }
    print_reasons(buf_str(&out));
    if (getenv("TRACEQL_EXAMPLES_WRITE")) {
        FILE *f = fopen(LIST_PATH, "wb");
        REQUIRE(f);
        fwrite(out.pos, 1, buf_len(&out), f);
        fclose(f);
    } else {
        FILE *f = fopen(LIST_PATH, "rb");
        buf_t want = BUF_INIT;
        if (f) {
            char tmp[4096];
            size_t n;
            while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
                buf_append(&want, tmp, n);
            fclose(f);
        }
        if (!str_eq(buf_str(&want), buf_str(&out)))
            test_fail_at(__FILE__, __LINE__,
                         "%s differs from the parser's refusals (rerun with "
                         "TRACEQL_EXAMPLES_WRITE=1 and review the diff)",
                         LIST_PATH);
        buf_deinit(&want);
    }
    buf_deinit(&out);
    free_lists(&l);
}
