/*
 * genai.c - AI-usage metrics from GenAI spans and Claude Code events (see genai.h).
 *
 * Each observation builds a small label set on the stack (values borrowed from the request or
 * formatted into a per-call arena), normalises and hashes it, and adds to one registry family.
 */
#include "pipeline/genai.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"

#define MAX_PRICES 256

struct genai {
    metreg_family_t *requests, *tokens, *cost, *duration, *errors, *tool_calls, *decisions;
    genai_price_t *prices;
    size_t n_prices;
    arena_t arena; /* price model names */
};

/* Model request durations: 50 ms to 10 min. */
static const double duration_buckets[] = {0.05, 0.1, 0.25, 0.5, 1,   2.5, 5,
                                          10,   20,  30,   60,  120, 300, 600};

int genai_new(metreg_t *reg, const genai_price_t *prices, size_t n_prices, genai_t **out,
              err_t *err)
{
    *out = NULL;
    if (n_prices > MAX_PRICES)
        return err_set(err, ERR_INVAL, "pricing: %zu entries (at most %d)", n_prices, MAX_PRICES);
    genai_t *g = calloc(1, sizeof *g);
    if (!g)
        return err_set(err, ERR_NOMEM, "out of memory");
    arena_init(&g->arena, 1024);
    g->prices = arena_alloc(&g->arena, (n_prices + 1) * sizeof *g->prices);
    for (size_t i = 0; i < n_prices; i++) {
        g->prices[i] = prices[i];
        g->prices[i].model = arena_strndup(&g->arena, prices[i].model, strlen(prices[i].model));
    }
    g->n_prices = n_prices;
    int rc = metreg_histogram(
        reg, "genai_request_duration_seconds", "Duration of model requests in seconds.", "seconds",
        duration_buckets, sizeof duration_buckets / sizeof duration_buckets[0], &g->duration, err);
    if (rc != 0) {
        genai_free(g);
        return rc;
    }
    g->requests = metreg_counter(reg, "genai_requests", "Completed model requests.", "");
    g->tokens = metreg_counter(reg, "genai_tokens", "Tokens used, by type.", "");
    g->cost = metreg_counter(reg, "genai_cost_usd",
                             "Cost of model requests in US dollars (reported, else priced).", "");
    g->errors = metreg_counter(reg, "genai_errors", "Failed model requests.", "");
    g->tool_calls = metreg_counter(reg, "genai_tool_calls", "Tool calls by outcome.", "");
    g->decisions =
        metreg_counter(reg, "genai_tool_decisions", "Tool permission decisions (Claude Code).", "");
    if (!g->requests || !g->tokens || !g->cost || !g->errors || !g->tool_calls || !g->decisions) {
        genai_free(g);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    *out = g;
    return 0;
}

void genai_free(genai_t *g)
{
    if (!g)
        return;
    arena_deinit(&g->arena);
    free(g);
}

/* ---- attribute helpers ---- */

static const otlp_value_t *attr(const otlp_attrs_t *a, const char *key)
{
    return otlp_attrs_get(a, key);
}

static str_t attr_str(const otlp_attrs_t *a, const char *key, arena_t *ar)
{
    const otlp_value_t *v = attr(a, key);
    return v ? otlp_value_to_str(v, ar) : STR("");
}

/* A number given as int, double or numeric string (Claude Code sends both); NAN when absent. */
static double attr_num(const otlp_attrs_t *a, const char *key)
{
    const otlp_value_t *v = attr(a, key);
    if (!v)
        return NAN;
    switch (v->type) {
    case OTLP_V_INT:
        return (double)v->u.i;
    case OTLP_V_DOUBLE:
        return v->u.d;
    case OTLP_V_STRING: {
        char tmp[64];
        if (v->u.s.len == 0 || v->u.s.len >= sizeof tmp)
            return NAN;
        memcpy(tmp, v->u.s.ptr, v->u.s.len);
        tmp[v->u.s.len] = '\0';
        char *end;
        double d = strtod(tmp, &end);
        return *end ? NAN : d;
    }
    default:
        return NAN;
    }
}

static double first_num(const otlp_attrs_t *a, const char *k1, const char *k2)
{
    double d = attr_num(a, k1);
    return isnan(d) && k2 ? attr_num(a, k2) : d;
}

static const genai_price_t *price_for(const genai_t *g, str_t model)
{
    const genai_price_t *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < g->n_prices; i++) {
        size_t n = strlen(g->prices[i].model);
        if (n <= model.len && n >= best_len && memcmp(model.ptr, g->prices[i].model, n) == 0) {
            best = &g->prices[i];
            best_len = n;
        }
    }
    return best;
}

/* ---- label sets ---- */

typedef struct lset {
    label_t v[8];
    size_t n;
} lset_t;

static void put(lset_t *s, const char *name, str_t value)
{
    if (value.len && s->n < 8)
        s->v[s->n++] = (label_t){str_cstr(name), value};
}

static void add(metreg_family_t *f, lset_t *s, double v)
{
    if (isnan(v) || v < 0)
        return;
    labels_t ls = {s->v, s->n};
    metreg_labels_normalize(&ls);
    metreg_add(f, &ls, labels_hash(&ls), v);
}

/* tokens[4]: input, output, cache_read, cache_creation (NAN when unknown). */
static void model_request(genai_t *g, str_t service, str_t model, str_t op, str_t agent,
                          const double tokens[4], double cost, double duration_s)
{
    static const char *const types[4] = {"input", "output", "cache_read", "cache_creation"};
    lset_t s = {0};
    put(&s, "service", service);
    put(&s, "model", model);
    put(&s, "operation", op);
    put(&s, "agent", agent);
    add(g->requests, &s, 1);
    for (int i = 0; i < 4; i++) {
        lset_t t = {0};
        put(&t, "service", service);
        put(&t, "model", model);
        put(&t, "agent", agent);
        put(&t, "type", str_cstr(types[i]));
        add(g->tokens, &t, tokens[i]);
    }
    if (isnan(cost)) {
        const genai_price_t *p = price_for(g, model);
        if (p) {
            const double per[4] = {p->input, p->output, p->cache_read, p->cache_creation};
            cost = 0;
            for (int i = 0; i < 4; i++)
                if (!isnan(tokens[i]))
                    cost += tokens[i] * per[i] / 1e6;
        }
    }
    lset_t c = {0};
    put(&c, "service", service);
    put(&c, "model", model);
    put(&c, "agent", agent);
    add(g->cost, &c, cost);
    lset_t d = {0};
    put(&d, "service", service);
    put(&d, "model", model);
    put(&d, "operation", op);
    add(g->duration, &d, duration_s);
}

static void model_error(genai_t *g, str_t service, str_t model, str_t error)
{
    lset_t s = {0};
    put(&s, "service", service);
    put(&s, "model", model);
    put(&s, "error", error.len ? error : STR("error"));
    add(g->errors, &s, 1);
}

static void tool_call(genai_t *g, str_t service, str_t tool, bool ok)
{
    lset_t s = {0};
    put(&s, "service", service);
    put(&s, "tool", tool);
    put(&s, "outcome", ok ? STR("success") : STR("failure"));
    add(g->tool_calls, &s, 1);
}

/* ---- spans ---- */

static void observe_span(genai_t *g, str_t service, const otlp_span_t *sp, arena_t *a)
{
    const otlp_attrs_t *at = &sp->attrs;
    str_t model = attr_str(at, "gen_ai.request.model", a);
    if (!model.len)
        model = attr_str(at, "gen_ai.response.model", a);
    str_t op = attr_str(at, "gen_ai.operation.name", a);
    str_t tool = attr_str(at, "gen_ai.tool.name", a);
    if (!model.len && !op.len && !tool.len)
        return;
    bool failed = sp->status_code == OTLP_STATUS_ERROR;
    if (str_eq(op, STR("execute_tool")) || (tool.len && !model.len)) {
        tool_call(g, service, tool.len ? tool : sp->name, !failed);
        return;
    }
    if (failed) {
        model_error(g, service, model, attr_str(at, "error.type", a));
        return;
    }
    double tokens[4] = {
        first_num(at, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
        first_num(at, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"),
        first_num(at, "gen_ai.usage.cache_read.input_tokens",
                  "gen_ai.usage.cache_read_input_tokens"),
        first_num(at, "gen_ai.usage.cache_creation.input_tokens",
                  "gen_ai.usage.cache_creation_input_tokens"),
    };
    double dur = sp->end_ns > sp->start_ns ? (double)(sp->end_ns - sp->start_ns) / 1e9 : 0;
    model_request(g, service, model, op, attr_str(at, "gen_ai.agent.name", a), tokens, NAN, dur);
}

void genai_observe_traces(genai_t *g, const otlp_traces_t *t)
{
    arena_t a;
    arena_init(&a, 1024);
    for (size_t r = 0; r < t->n_rs; r++) {
        const otlp_resource_spans_t *rs = &t->rs[r];
        str_t service = attr_str(&rs->resource.attrs, "service.name", &a);
        for (size_t s = 0; s < rs->n_scopes; s++)
            for (size_t k = 0; k < rs->scopes[s].n_spans; k++)
                observe_span(g, service, &rs->scopes[s].spans[k], &a);
        arena_reset(&a);
    }
    arena_deinit(&a);
}

/* ---- Claude Code events ---- */

static void observe_event(genai_t *g, str_t service, const otlp_log_t *l, arena_t *a)
{
    const otlp_attrs_t *at = &l->attrs;
    str_t ev = l->event_name.len ? l->event_name : attr_str(at, "event.name", a);
    if (str_starts_with(ev, "claude_code."))
        ev = (str_t){ev.ptr + 12, ev.len - 12};
    if (str_eq(ev, STR("api_request"))) {
        double tokens[4] = {attr_num(at, "input_tokens"), attr_num(at, "output_tokens"),
                            attr_num(at, "cache_read_tokens"),
                            attr_num(at, "cache_creation_tokens")};
        model_request(g, service, attr_str(at, "model", a), STR("chat"),
                      attr_str(at, "agent.name", a), tokens, attr_num(at, "cost_usd"),
                      attr_num(at, "duration_ms") / 1000);
    } else if (str_eq(ev, STR("api_error"))) {
        str_t code = attr_str(at, "status_code", a);
        model_error(g, service, attr_str(at, "model", a), code.len ? code : STR("error"));
    } else if (str_eq(ev, STR("tool_result"))) {
        str_t ok = attr_str(at, "success", a);
        tool_call(g, service, attr_str(at, "tool_name", a), str_eq(ok, STR("true")));
    } else if (str_eq(ev, STR("tool_decision"))) {
        lset_t s = {0};
        put(&s, "service", service);
        put(&s, "tool", attr_str(at, "tool_name", a));
        put(&s, "decision", attr_str(at, "decision", a));
        add(g->decisions, &s, 1);
    }
}

void genai_observe_logs(genai_t *g, const otlp_logs_t *l)
{
    arena_t a;
    arena_init(&a, 1024);
    for (size_t r = 0; r < l->n_rl; r++) {
        const otlp_resource_logs_t *rl = &l->rl[r];
        str_t service = attr_str(&rl->resource.attrs, "service.name", &a);
        for (size_t s = 0; s < rl->n_scopes; s++)
            for (size_t k = 0; k < rl->scopes[s].n_logs; k++)
                observe_event(g, service, &rl->scopes[s].logs[k], &a);
        arena_reset(&a);
    }
    arena_deinit(&a);
}
