/*
 * main.c - unit test runner: runs every registered TEST (or those of one suite, or one test),
 * prints one line per failure with file:line, and ends with "N passed, N failed".
 *
 * Usage: test_unit [SUITE [TEST]]
 */
#include <ftw.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "test.h"

#define MAX_TESTS 4096

static struct {
    char suite[64];
    const char *name;
    test_fn fn;
} tests[MAX_TESTS];
static int n_tests;
int test_failed_now;
static char tmpdir[4096];

void test_register(const char *file, const char *name, test_fn fn)
{
    if (n_tests >= MAX_TESTS)
        abort();
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    if (strncmp(base, "test_", 5) == 0)
        base += 5;
    size_t n = strcspn(base, ".");
    if (n >= sizeof tests[0].suite)
        n = sizeof tests[0].suite - 1;
    memcpy(tests[n_tests].suite, base, n);
    tests[n_tests].suite[n] = '\0';
    tests[n_tests].name = name;
    tests[n_tests].fn = fn;
    n_tests++;
}

static const char *cur_suite, *cur_name;

void test_fail_at(const char *file, int line, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printf("FAIL %s.%s %s:%d: %s\n", cur_suite, cur_name, file, line, msg);
    fflush(stdout);
    test_failed_now = 1;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

const char *test_tmpdir(void)
{
    if (!tmpdir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/skillscope-unit-XXXXXX", t ? t : "/tmp");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            abort();
        }
    }
    return tmpdir;
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!getenv("TEST_VERBOSE"))
        log_set_level(LOG_WARN); /* the modules' info lines would bury the test output */
    for (int i = 0; i < n_tests; i++) {
        if (argc > 1 && strcmp(argv[1], tests[i].suite) != 0)
            continue;
        if (argc > 2 && strcmp(argv[2], tests[i].name) != 0)
            continue;
        cur_suite = tests[i].suite;
        cur_name = tests[i].name;
        test_failed_now = 0;
        tmpdir[0] = '\0';
        tests[i].fn();
        if (tmpdir[0]) {
            if (!test_failed_now)
                nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
            else
                printf("     kept %s\n", tmpdir);
        }
        if (test_failed_now)
            failed++;
        else
            passed++;
        if (getenv("TEST_VERBOSE"))
            printf("%s %s.%s\n", test_failed_now ? "fail" : "ok  ", cur_suite, cur_name);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
