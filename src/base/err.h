/*
 * err.h - error codes and error detail for the whole program.
 *
 * A function that can fail returns int: 0 on success or a negative ERR_* code from the table below.
 * Where a person needs detail (parsers, config, HTTP input), the function also takes an err_t * and
 * fills in a message, and for parsers a 1-based line and column. The table is an X-macro so the
 * names and the human strings are generated from one place; codes are append-only.
 */
#ifndef BASE_ERR_H
#define BASE_ERR_H

#include <stddef.h>

#define ERR_TABLE(X)                                                                               \
    X(OK, 0, "success")                                                                            \
    X(NOMEM, -1, "out of memory")                                                                  \
    X(IO, -2, "input/output error")                                                                \
    X(INVAL, -3, "invalid argument")                                                               \
    X(PARSE, -4, "parse error")                                                                    \
    X(CORRUPT, -5, "data corruption detected")                                                     \
    X(NOTFOUND, -6, "not found")                                                                   \
    X(TOOBIG, -7, "too large")                                                                     \
    X(UNSUPPORTED, -8, "unsupported")                                                              \
    X(OVERLOAD, -9, "overloaded, retry later")                                                     \
    X(OUTOFBOUNDS, -10, "out of bounds")                                                           \
    X(DUPLICATE, -11, "duplicate")                                                                 \
    X(EXISTS, -12, "already exists")                                                               \
    X(CLOSED, -13, "closed")                                                                       \
    X(TIMEOUT, -14, "timed out")

enum {
#define ERR_ENUM(name, code, str) ERR_##name = code,
    ERR_TABLE(ERR_ENUM)
#undef ERR_ENUM
};

/* Detail for errors a person reads. msg is always NUL-terminated; line/col are 0 when unknown. */
typedef struct err {
    int code;
    int line;
    int col;
    char msg[512];
} err_t;

/* "NOMEM" for ERR_NOMEM; "UNKNOWN" for codes not in the table. */
const char *err_name(int code);
/* "out of memory" for ERR_NOMEM. */
const char *err_str(int code);

/* Sets err (when non-NULL) and returns code, so callers can write `return err_set(err, ...)`. */
int err_set(err_t *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Like err_set, with a parser position. */
int err_set_at(err_t *err, int code, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Prepends "prefix: " to an existing message. */
void err_prefix(err_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void err_clear(err_t *err);

#endif
