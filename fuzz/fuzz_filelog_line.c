/*
 * fuzz_filelog_line.c - the JSON-lines mapper of ingest/filelog (lines come from files anyone may
 * write) on untrusted bytes.
 *
 * Each input is one line, mapped under the default field names and under a configuration with
 * renamed and dotted fields, line: message and a promoted field. Invariants checked: a line that
 * is not a JSON object comes back unchanged with no metadata; every metadata name is a valid label
 * name and appears once; the static labels are kept; the timestamp is positive. The input is also
 * given to the timestamp parser as a string.
 */
#include <stdio.h>
#include <stdlib.h>

#include "base/arena.h"
#include "ingest/filelog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const filelog_map_t *m, str_t line, const filelog_entry_t *e)
{
    if (!e->json && !str_eq(e->line, line)) {
        fprintf(stderr, "a non-JSON line changed\n");
        abort();
    }
    if (!e->json && e->meta.n) {
        fprintf(stderr, "a non-JSON line got metadata\n");
        abort();
    }
    if (e->ts_ns <= 0) {
        fprintf(stderr, "timestamp %lld is not positive\n", (long long)e->ts_ns);
        abort();
    }
    for (size_t i = 0; i < e->meta.n; i++) {
        if (!label_name_valid(e->meta.v[i].name)) {
            fprintf(stderr, "invalid metadata name \"%.*s\"\n", STR_FMT(e->meta.v[i].name));
            abort();
        }
        for (size_t j = 0; j < i; j++)
            if (str_eq(e->meta.v[i].name, e->meta.v[j].name)) {
                fprintf(stderr, "metadata name \"%.*s\" twice\n", STR_FMT(e->meta.v[i].name));
                abort();
            }
    }
    for (size_t i = 0; i < m->labels.n; i++) {
        str_t v = labels_get(&e->stream, "job");
        if (!v.ptr) {
            fprintf(stderr, "static label lost\n");
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena_t a;
    arena_init(&a, 0);
    str_t line = {(const char *)data, size};
    label_t lv[] = {{STR("job"), STR("fuzz")}};
    filelog_map_t m1 = {.labels = {lv, 1}};
    filelog_entry_t e;
    filelog_map_line(&m1, line, 1700000000000000000LL, &a, &e);
    check(&m1, line, &e);

    filelog_map_t m2 = {.labels = {lv, 1}, .line_message = true};
    m2.fields[FILELOG_F_TIMESTAMP] = "a.b";
    m2.fields[FILELOG_F_LEVEL] = "lvl.x.y";
    m2.fields[FILELOG_F_MESSAGE] = "m";
    const char *lff[] = {"level", "k", "job"};
    m2.labels_from_fields = lff;
    m2.n_labels_from_fields = 3;
    filelog_map_line(&m2, line, 1700000000000000000LL, &a, &e);
    check(&m2, line, &e);

    int64_t ns;
    (void)filelog_parse_time(line, false, &ns);
    arena_deinit(&a);
    return 0;
}
