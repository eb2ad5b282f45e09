/* The wire formats without a network: request bodies and URLs, both providers' streams decoded
 * (text, cumulative usage, completion, error events, unknown events ignored), and the retry
 * classification of HTTP failures. */
#include <string.h>

#include "vd_llm_provider.h"
#include "vd_test.h"

static void feed(vd_llm_stream *s, const char *type, const char *data) {
  vd_sse_event e = {.type = type, .data = data, .data_len = strlen(data), .id = ""};
  vd_llm_stream_event(s, &e);
}

typedef struct tokens {
  vd_buf seen;
  int calls;
} tokens;

static void on_token(void *ctx, const char *text, size_t len) {
  tokens *t = ctx;
  vd_buf_append(&t->seen, text, len);
  t->calls++;
}

START_TEST(test_request_bodies) {
  json_t *messages = json_pack("[{s:s,s:s}]", "role", "user", "content", "hi");
  json_t *a = vd_llm_request_body(VD_LLM_WIRE_ANTHROPIC, "m-small", "be brief", messages, 100, 0.0);
  ck_assert_str_eq(json_string_value(json_object_get(a, "system")), "be brief");
  ck_assert(json_is_true(json_object_get(a, "stream")));
  ck_assert_int_eq(json_integer_value(json_object_get(a, "max_tokens")), 100);
  ck_assert_int_eq(json_array_size(json_object_get(a, "messages")), 1);
  ck_assert_ptr_null(json_object_get(a, "stream_options"));
  json_t *o = vd_llm_request_body(VD_LLM_WIRE_OPENAI, "m", "be brief", messages, 100, -1);
  json_t *om = json_object_get(o, "messages");
  ck_assert_int_eq(json_array_size(om), 2);
  ck_assert_str_eq(json_string_value(json_object_get(json_array_get(om, 0), "role")), "system");
  ck_assert(json_is_true(json_object_get(json_object_get(o, "stream_options"), "include_usage")));
  ck_assert_ptr_null(json_object_get(o, "temperature"));
  ck_assert_int_eq(json_array_size(messages), 1); /* the caller's list is untouched */
  json_decref(a);
  json_decref(o);
  json_decref(messages);

  char url[128];
  ck_assert(
      vd_llm_endpoint_url(VD_LLM_WIRE_ANTHROPIC, "https://api.anthropic.com/", url, sizeof url));
  ck_assert_str_eq(url, "https://api.anthropic.com/v1/messages");
  ck_assert(vd_llm_endpoint_url(VD_LLM_WIRE_OPENAI, "http://127.0.0.1:8000/v1", url, sizeof url));
  ck_assert_str_eq(url, "http://127.0.0.1:8000/v1/chat/completions");
  ck_assert(!vd_llm_endpoint_url(VD_LLM_WIRE_OPENAI, "http://a-very-long-host.example", url, 10));
}
END_TEST

START_TEST(test_anthropic_stream) {
  tokens t = {0};
  vd_llm_stream s = {.wire = VD_LLM_WIRE_ANTHROPIC, .on_token = on_token, .token_ctx = &t};
  feed(&s, "message_start",
       "{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":"
       "1}}}");
  feed(&s, "content_block_start",
       "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
       "\"text\":\"\"}}");
  feed(&s, "ping", "{\"type\": \"ping\"}");
  feed(&s, "content_block_delta",
       "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":"
       "\"Hel\"}}");
  feed(&s, "future_event", "{\"type\":\"future_event\",\"whatever\":1}");
  feed(&s, "content_block_delta",
       "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\","
       "\"partial_json\":\"lo\"}}");
  feed(&s, "content_block_delta",
       "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\","
       "\"thinking\":\"hmm\"}}");
  feed(&s, "content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}");
  feed(&s, "message_delta",
       "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_"
       "tokens\":7}}");
  ck_assert(!s.complete);
  feed(&s, "message_delta",
       "{\"type\":\"message_delta\",\"delta\":{},\"usage\":{\"output_tokens\":9}}");
  feed(&s, "message_stop", "{\"type\":\"message_stop\"}");
  ck_assert(s.complete);
  ck_assert(!s.failed);
  ck_assert_str_eq(s.text.data, "Hello");
  ck_assert_str_eq(t.seen.data, "Hello");
  ck_assert_int_eq(t.calls, 2);
  ck_assert_int_eq(s.input_tokens, 25);
  ck_assert_int_eq(s.output_tokens, 9); /* cumulative: the last report, not a sum */
  ck_assert_str_eq(s.stop_reason, "end_turn");
  vd_llm_stream_free(&s);
  vd_buf_free(&t.seen);
}
END_TEST

START_TEST(test_anthropic_errors) {
  vd_llm_stream s = {.wire = VD_LLM_WIRE_ANTHROPIC};
  feed(&s, "error",
       "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}");
  ck_assert(s.failed);
  ck_assert(s.error_retryable);
  ck_assert_str_eq(s.error_type, "overloaded_error");
  vd_llm_stream_free(&s);
  vd_llm_stream p = {.wire = VD_LLM_WIRE_ANTHROPIC};
  feed(&p, "error",
       "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"bad\"}}");
  ck_assert(p.failed);
  ck_assert(!p.error_retryable);
  vd_llm_stream_free(&p);
  vd_llm_stream m = {.wire = VD_LLM_WIRE_ANTHROPIC};
  feed(&m, "content_block_delta", "{\"type\": \"content_block_delta\", \"delta\": {\"text\": ");
  ck_assert(m.failed);
  ck_assert_str_eq(m.error_type, "protocol_error");
  vd_llm_stream_free(&m);
}
END_TEST

START_TEST(test_openai_stream) {
  vd_llm_stream s = {.wire = VD_LLM_WIRE_OPENAI};
  feed(&s, "message",
       "{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_"
       "reason\":null}],\"usage\":null}");
  feed(&s, "message",
       "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"{\\\"a\\\"\"},\"finish_reason\":null}],"
       "\"usage\":null}");
  feed(&s, "message", "{\"choices\":[{\"index\":1,\"delta\":{\"content\":\"IGNORED\"}}]}");
  feed(&s, "message",
       "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\":1}\"},\"finish_reason\":\"stop\"}]}");
  feed(&s, "message",
       "{\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3,\"total_tokens\":"
       "15}}");
  ck_assert(!s.complete);
  feed(&s, "message", "[DONE]");
  ck_assert(s.complete);
  ck_assert_str_eq(s.text.data, "{\"a\":1}");
  ck_assert_int_eq(s.input_tokens, 12);
  ck_assert_int_eq(s.output_tokens, 3);
  ck_assert_str_eq(s.stop_reason, "stop");
  vd_llm_stream_free(&s);
  vd_llm_stream e = {.wire = VD_LLM_WIRE_OPENAI};
  feed(&e, "message", "{\"error\":{\"message\":\"Overloaded\",\"type\":\"overloaded_error\"}}");
  ck_assert(e.failed && e.error_retryable);
  vd_llm_stream_free(&e);
}
END_TEST

START_TEST(test_http_classification) {
  vd_llm_failure f = vd_llm_classify_http(
      429,
      "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow down\"}}",
      "2", 0);
  ck_assert(f.retryable && !f.spending_limit);
  ck_assert_int_eq(f.retry_after_ms, 2000);
  ck_assert_str_eq(f.kind, "rate_limit_error");
  f = vd_llm_classify_http(
      429,
      "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"cap\","
      "\"details\":{\"error_code\":\"enforced_spend_limit_reached\"}}}",
      NULL, 0);
  ck_assert(!f.retryable && f.spending_limit);
  f = vd_llm_classify_http(429,
                           "{\"error\":{\"message\":\"quota\",\"type\":\"insufficient_quota\","
                           "\"code\":\"insufficient_quota\"}}",
                           NULL, 0);
  ck_assert(!f.retryable && f.spending_limit);
  f = vd_llm_classify_http(402, NULL, NULL, 0);
  ck_assert(!f.retryable && f.spending_limit);
  int retried[] = {408, 409, 500, 502, 503, 504, 529};
  for (size_t i = 0; i < sizeof retried / sizeof retried[0]; i++)
    ck_assert_msg(vd_llm_classify_http(retried[i], "not json", NULL, 0).retryable, "%d",
                  retried[i]);
  int final[] = {400, 401, 403, 404, 413, 422};
  for (size_t i = 0; i < sizeof final / sizeof final[0]; i++)
    ck_assert_msg(!vd_llm_classify_http(final[i], "", NULL, 0).retryable, "%d", final[i]);
  f = vd_llm_classify_http(
      529,
      "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}",
      NULL, 0);
  ck_assert_str_eq(f.kind, "overloaded_error");
  ck_assert_str_eq(f.message, "HTTP 529: Overloaded");
  ck_assert_int_eq(f.retry_after_ms, -1);
}
END_TEST

START_TEST(test_retry_after_forms) {
  ck_assert_int_eq(vd_llm_parse_retry_after("0.25", 0), 250);
  ck_assert_int_eq(vd_llm_parse_retry_after(" 3 ", 0), 3000);
  ck_assert_int_eq(vd_llm_parse_retry_after("soon", 0), -1);
  ck_assert_int_eq(vd_llm_parse_retry_after("-1", 0), -1);
  /* An HTTP date 5 s after "now" (Thu, 03 Dec 2026 13:00:00 GMT = 1796302800). */
  ck_assert_int_eq(vd_llm_parse_retry_after("Thu, 03 Dec 2026 13:00:05 GMT", 1796302800), 5000);
  ck_assert_int_eq(vd_llm_parse_retry_after("Thu, 03 Dec 2026 12:00:00 GMT", 1796302800), 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("provider");
  TCase *tc = tcase_create("wire");
  tcase_add_test(tc, test_request_bodies);
  tcase_add_test(tc, test_anthropic_stream);
  tcase_add_test(tc, test_anthropic_errors);
  tcase_add_test(tc, test_openai_stream);
  tcase_add_test(tc, test_http_classification);
  tcase_add_test(tc, test_retry_after_forms);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
