/*
 * fuzz_params.c - the query APIs' parsers of untrusted request parameters: form decoding, the
 * Prometheus and Loki time/duration/limit/direction syntaxes, label-name unescaping and Tempo
 * trace ids.
 *
 * Input: the first byte picks the parser, the rest is the parameter value. Beyond "no crash, no
 * UB", it asserts round trips: a parsed Prometheus time formatted back with fmt_ts_prom parses to
 * the same ms (within the range where float seconds keep ms precision), and a parsed trace id
 * printed as 32 hex digits parses to the same bytes.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/fmtnum.h"
#include "proto/otlp.h"
#include "query/api.h"
#include "query/params.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t op = data[0];
    str_t s = {(const char *)data + 1, size - 1};
    err_t err;
    arena_t a;
    arena_init(&a, 0);
    switch (op % 10) {
    case 0: {
        params_t p;
        params_init(&p, &a);
        params_parse(&p, s, &err);
        for (size_t i = 0; i < p.n; i++)
            assert(params_get(&p, "x").ptr == NULL || params_count(&p, "x") > 0);
        (void)params_nth(&p, "match[]", 1);
        break;
    }
    case 1: {
        int64_t ms, ms2;
        if (params_prom_time(s, 0, &ms, &err) == 0 && ms > -1000000000000000LL &&
            ms < 1000000000000000LL) {
            char tmp[FMTNUM_MAX];
            size_t n = fmt_ts_prom(tmp, ms);
            assert(params_prom_time((str_t){tmp, n}, 0, &ms2, &err) == 0);
            assert(ms == ms2);
        }
        break;
    }
    case 2: {
        int64_t ns;
        params_prom_duration(s, &ns, &err);
        params_loki_duration(s, &ns, &err);
        break;
    }
    case 3: {
        int64_t lim;
        uint32_t ulim;
        if (params_prom_limit(s, &lim, &err) == 0)
            assert(lim >= 0);
        if (params_loki_limit(s, &ulim, &err) == 0)
            assert(ulim > 0);
        params_atoi(s, &lim, &err);
        params_parse_int(s, &lim, &err);
        break;
    }
    case 4: {
        int64_t ns;
        params_loki_time(s, 0, &ns, &err);
        break;
    }
    case 5: {
        /* start, end and since separated by NUL bytes. */
        str_t part[3] = {STR_NULL, STR_NULL, STR_NULL};
        size_t k = 0, from = 0;
        for (size_t i = 0; i <= s.len && k < 3; i++) {
            if (i == s.len || s.ptr[i] == '\0') {
                part[k++] = (str_t){s.ptr + from, i - from};
                from = i + 1;
            }
        }
        int64_t st, en;
        params_loki_bounds(part[0], part[1], part[2], 1700000000000000000LL, &st, &en, &err);
        break;
    }
    case 6: {
        bool back;
        params_loki_direction(s, &back, &err);
        break;
    }
    case 7: {
        buf_t b = BUF_INIT;
        params_quote(&b, s);
        assert(buf_len(&b) >= 2 && b.pos[0] == '"' && b.last[-1] == '"');
        buf_deinit(&b);
        break;
    }
    case 8: {
        str_t n = prom_api_unescape_name(s, &a);
        assert(n.len <= s.len * 2 + 1);
        break;
    }
    case 9: {
        uint8_t id[16], id2[16];
        if (tempo_api_parse_trace_id(s, id, &err) == 0) {
            char hex[33];
            otlp_hex(hex, id, 16);
            assert(tempo_api_parse_trace_id(str_cstr(hex), id2, &err) == 0);
            assert(memcmp(id, id2, 16) == 0);
        }
        break;
    }
    }
    arena_deinit(&a);
    return 0;
}
