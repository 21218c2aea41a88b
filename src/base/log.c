/* log.c - stderr logger, one write(2) per line so concurrent threads do not interleave. */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static int min_level = LOG_INFO;
static const char *names[] = {"debug", "info", "warn", "error"};

void log_set_level(int level) { min_level = level; }
int log_level(void) { return min_level; }

void log_write(int level, const char *msg, const char *kvfmt, ...)
{
    if (level < min_level)
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n =
        snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=\"%s\"",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ts.tv_nsec / 1000000,
                 names[level < 0   ? 0
                       : level > 3 ? 3
                                   : level],
                 msg);
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    if (kvfmt && kvfmt[0] && n < (int)sizeof line - 3) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, kvfmt);
        int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, kvfmt, ap);
        va_end(ap);
        n += m < 0 ? 0 : m;
        if (n > (int)sizeof line - 2)
            n = (int)sizeof line - 2;
    }
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
