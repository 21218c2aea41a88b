/*
 * log.h - the process log: one line per event on stderr, logfmt style
 *   ts=2026-11-22T00:15:01.123Z level=info msg="wal replayed" records=12 ms=3
 * so it is readable by a person and greppable by a machine. Thread-safe (one write(2) per line).
 *
 * Usage: log_info("wal replayed", "records=%d ms=%d", n, ms);  log_warn("no data dir", "");
 */
#ifndef BASE_LOG_H
#define BASE_LOG_H

enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(int level);
int log_level(void);
/* msg is quoted as given; kvfmt formats the " key=value" pairs that follow it. */
void log_write(int level, const char *msg, const char *kvfmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

#endif
