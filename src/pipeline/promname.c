/*
 * promname.c - OTel metric and attribute names to Prometheus names.
 *
 * Metric names: split the name into tokens at every character outside [a-zA-Z0-9] (':' is kept
 * inside tokens as Prometheus allows it), drop empty tokens, append the unit's Prometheus word(s)
 * unless already present as tokens, then "total" for counters (moved to the end if present) or
 * "ratio" for gauges of unit "1", join with '_', and prefix '_' when the result starts with a
 * digit. Units: the main part is mapped through unit_words ("ms" -> "milliseconds"); "a/b"
 * becomes "<a>_per_<b>" with b through per_words; anything in braces ("{tokens}") is ignored; an
 * unknown unit is used as is after sanitising.
 */
#include "pipeline/promname.h"

#include <ctype.h>
#include <string.h>

#include "base/buf.h"

#define MAX_TOKENS 64

static const struct {
    const char *otel, *prom;
} unit_words[] = {
    {"d", "days"},
    {"h", "hours"},
    {"min", "minutes"},
    {"s", "seconds"},
    {"ms", "milliseconds"},
    {"us", "microseconds"},
    {"ns", "nanoseconds"},
    {"By", "bytes"},
    {"KiBy", "kibibytes"},
    {"MiBy", "mebibytes"},
    {"GiBy", "gibibytes"},
    {"TiBy", "tibibytes"},
    {"KBy", "kilobytes"},
    {"MBy", "megabytes"},
    {"GBy", "gigabytes"},
    {"TBy", "terabytes"},
    {"m", "meters"},
    {"V", "volts"},
    {"A", "amperes"},
    {"J", "joules"},
    {"W", "watts"},
    {"g", "grams"},
    {"Cel", "celsius"},
    {"Hz", "hertz"},
    {"1", ""},
    {"%", "percent"},
};

static const struct {
    const char *otel, *prom;
} per_words[] = {
    {"s", "second"}, {"m", "minute"}, {"h", "hour"}, {"d", "day"},
    {"w", "week"},   {"mo", "month"}, {"y", "year"},
};

static bool name_char(char c) { return isalnum((unsigned char)c) || c == ':'; }

/* Splits s into tokens of name characters. */
static size_t tokenize(str_t s, str_t *tok, size_t max)
{
    size_t n = 0, i = 0;
    while (i < s.len && n < max) {
        while (i < s.len && !name_char(s.ptr[i]))
            i++;
        size_t st = i;
        while (i < s.len && name_char(s.ptr[i]))
            i++;
        if (i > st)
            tok[n++] = (str_t){s.ptr + st, i - st};
    }
    return n;
}

static str_t map_word(str_t u, bool per)
{
    if (per) {
        for (size_t k = 0; k < sizeof per_words / sizeof per_words[0]; k++)
            if (str_eq_cstr(u, per_words[k].otel))
                return str_cstr(per_words[k].prom);
    } else {
        for (size_t k = 0; k < sizeof unit_words / sizeof unit_words[0]; k++)
            if (str_eq_cstr(u, unit_words[k].otel))
                return str_cstr(unit_words[k].prom);
    }
    return u;
}

/* Strips "{...}" annotations and surrounding spaces. */
static str_t strip_braces(arena_t *a, str_t u)
{
    char *out = arena_alloc(a, u.len + 1);
    size_t n = 0;
    int depth = 0;
    for (size_t i = 0; i < u.len; i++) {
        if (u.ptr[i] == '{')
            depth++;
        else if (u.ptr[i] == '}')
            depth = depth ? depth - 1 : 0;
        else if (!depth && !isspace((unsigned char)u.ptr[i]))
            out[n++] = u.ptr[i];
    }
    return (str_t){out, n};
}

static bool has_token(const str_t *tok, size_t n, str_t w)
{
    for (size_t i = 0; i < n; i++)
        if (str_eq(tok[i], w))
            return true;
    return false;
}

str_t promname_metric(arena_t *a, str_t name, str_t unit, promname_kind_t kind)
{
    str_t tok[MAX_TOKENS];
    size_t n = tokenize(name, tok, MAX_TOKENS - 8);

    /* Unit words. */
    str_t u = strip_braces(a, unit);
    str_t main_u = u, per_u = STR_NULL;
    const char *slash = u.len ? memchr(u.ptr, '/', u.len) : NULL;
    if (slash) {
        main_u = (str_t){u.ptr, (size_t)(slash - u.ptr)};
        per_u = (str_t){slash + 1, u.len - (size_t)(slash - u.ptr) - 1};
    }
    str_t utok[8];
    size_t nu = 0;
    if (main_u.len) {
        str_t w = map_word(main_u, false);
        nu += tokenize(w, utok + nu, 4);
    }
    if (per_u.len) {
        str_t w = map_word(per_u, true);
        str_t ptok[3];
        size_t np = tokenize(w, ptok, 3);
        if (np) {
            utok[nu++] = STR("per");
            for (size_t i = 0; i < np && nu < 8; i++)
                utok[nu++] = ptok[i];
        }
    }
    /* Append the unit unless the name already ends with it (Prometheus checks the suffix). */
    bool already = nu && n >= nu;
    for (size_t i = 0; already && i < nu; i++)
        already = str_eq(tok[n - nu + i], utok[i]);
    if (!already && nu && !(nu == 1 && has_token(tok, n, utok[0])))
        for (size_t i = 0; i < nu; i++)
            tok[n++] = utok[i];

    if (kind == PROMNAME_COUNTER) {
        size_t w = 0;
        for (size_t i = 0; i < n; i++) /* "total" moves to the end */
            if (!str_eq_cstr(tok[i], "total"))
                tok[w++] = tok[i];
        n = w;
        tok[n++] = STR("total");
    } else if (kind == PROMNAME_GAUGE && str_eq_cstr(u, "1") && !has_token(tok, n, STR("ratio"))) {
        tok[n++] = STR("ratio");
    }

    buf_t b;
    size_t cap = 2;
    for (size_t i = 0; i < n; i++)
        cap += tok[i].len + 1;
    char *out = arena_alloc(a, cap);
    buf_wrap(&b, out, cap);
    b.last = b.pos; /* empty, writes into out */
    size_t len = 0;
    if (n && isdigit((unsigned char)tok[0].ptr[0]))
        out[len++] = '_';
    for (size_t i = 0; i < n; i++) {
        if (i)
            out[len++] = '_';
        memcpy(out + len, tok[i].ptr, tok[i].len);
        len += tok[i].len;
    }
    out[len] = '\0';
    return (str_t){out, len};
}

str_t promname_label(arena_t *a, str_t name)
{
    bool valid = name.len > 0 && !isdigit((unsigned char)name.ptr[0]) &&
                 !(name.ptr[0] == '_' && (name.len == 1 || name.ptr[1] != '_'));
    for (size_t i = 0; valid && i < name.len; i++)
        valid = isalnum((unsigned char)name.ptr[i]) || name.ptr[i] == '_';
    if (valid)
        return name;
    if (!name.len)
        return name;
    char *out = arena_alloc(a, name.len + 5);
    size_t n = 0;
    if (isdigit((unsigned char)name.ptr[0]))
        n += (size_t)(memcpy(out, "key_", 4), 4);
    else if (name.ptr[0] == '_' && (name.len == 1 || name.ptr[1] != '_'))
        n += (size_t)(memcpy(out, "key", 3), 3);
    for (size_t i = 0; i < name.len; i++)
        out[n++] = isalnum((unsigned char)name.ptr[i]) || name.ptr[i] == '_' ? name.ptr[i] : '_';
    out[n] = '\0';
    return (str_t){out, n};
}
