/* test_promname.c - OTel -> Prometheus metric and label names (Prometheus' OTLP receiver rules). */
#include "pipeline/promname.h"
#include "test.h"

static void check_metric(const char *name, const char *unit, promname_kind_t kind, const char *want)
{
    arena_t a;
    arena_init(&a, 0);
    str_t got = promname_metric(&a, str_cstr(name), str_cstr(unit), kind);
    CHECK_EQ_STRN(got, want);
    arena_deinit(&a);
}

TEST(metric_names)
{
    check_metric("http.server.duration", "s", PROMNAME_HISTOGRAM, "http_server_duration_seconds");
    check_metric("http.server.request.duration", "ms", PROMNAME_HISTOGRAM,
                 "http_server_request_duration_milliseconds");
    check_metric("claude_code.token.usage", "tokens", PROMNAME_COUNTER,
                 "claude_code_token_usage_tokens_total");
    check_metric("claude_code.cost.usage", "USD", PROMNAME_COUNTER,
                 "claude_code_cost_usage_USD_total");
    check_metric("claude_code.session.count", "", PROMNAME_COUNTER,
                 "claude_code_session_count_total");
    check_metric("claude_code.active_time.total", "s", PROMNAME_COUNTER,
                 "claude_code_active_time_seconds_total");
    check_metric("system.memory.utilization", "1", PROMNAME_GAUGE,
                 "system_memory_utilization_ratio");
    check_metric("requests", "{request}", PROMNAME_COUNTER, "requests_total");
    check_metric("throughput", "By/s", PROMNAME_GAUGE, "throughput_bytes_per_second");
    check_metric("process.runtime.duration_seconds", "s", PROMNAME_GAUGE,
                 "process_runtime_duration_seconds");
    check_metric("2xx.count", "", PROMNAME_GAUGE, "_2xx_count");
    check_metric("queue..depth__now", "", PROMNAME_GAUGE, "queue_depth_now");
}

TEST(label_names)
{
    arena_t a;
    arena_init(&a, 0);
    CHECK_EQ_STRN(promname_label(&a, STR("service.name")), "service_name");
    CHECK_EQ_STRN(promname_label(&a, STR("http.status_code")), "http_status_code");
    CHECK_EQ_STRN(promname_label(&a, STR("1st")), "key_1st");
    CHECK_EQ_STRN(promname_label(&a, STR("_private")), "key_private");
    CHECK_EQ_STRN(promname_label(&a, STR("__reserved")), "__reserved");
    CHECK_EQ_STRN(promname_label(&a, STR("ok_name")), "ok_name");
    CHECK_EQ_STRN(promname_label(&a, STR("k8s/pod-name")), "k8s_pod_name");
    arena_deinit(&a);
}
