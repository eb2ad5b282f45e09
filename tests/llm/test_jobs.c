/* The job service end to end against the fake provider over real HTTP: streaming, usage and cost,
 * every retry and no-retry path, timeouts and deadlines, repair and fallback, cache, budget,
 * circuit breaker, queue bound, restart. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support_llm_env.h"
#include "vd_test.h"
#include "vd_time.h"

static vd_llm *open_llm(llm_env *env) {
  vd_error err;
  vd_llm *llm = vd_llm_open(&env->cfg, &err);
  ck_assert_msg(llm != NULL, "open: %s", err.message);
  return llm;
}

static const char *str(const json_t *job, const char *key) {
  const char *s = json_string_value(json_object_get(job, key));
  return s ? s : "(null)";
}

static json_int_t num(const json_t *job, const char *key) {
  return json_integer_value(json_object_get(job, key));
}

static size_t pieces(const char *answer, size_t per) { return (strlen(answer) + per - 1) / per; }

static const char paris_answer[] =
    "{\"destination\": \"Paris, France\", \"days\": [{\"day\": 1, \"date\": \"2027-05-01\", "
    "\"activities\": [{\"time\": \"morning\", \"title\": \"Louvre\"}]}]}";

START_TEST(test_anthropic_success_streams_and_costs) {
  llm_env env;
  llm_env_init(&env, VD_LLM_WIRE_ANTHROPIC);
  vd_llm *llm = open_llm(&env);
  json_t *job = llm_env_run(llm, VD_LLM_TASK_ITINERARY, llm_env_kyoto_trip, "itineraries");
  ck_assert_str_eq(str(job, "state"), "succeeded");
  ck_assert_str_eq(str(job, "handled_by"), "llm");
  ck_assert_int_eq(num(job, "attempts"), 1);
  ck_assert_str_eq(str(job, "model"), "fake-large");
  ck_assert_str_eq(str(job, "feature"), "itineraries");
  ck_assert_ptr_nonnull(strstr(str(job, "prompt_version"), "v1@"));
  ck_assert_str_eq(json_string_value(json_object_get(json_object_get(job, "result"), "source")),
                   "llm");
  json_int_t in = num(job, "input_tokens"), out = num(job, "output_tokens");
  ck_assert_int_gt(in, 100);
  ck_assert_int_eq(out, (json_int_t)pieces(llm_env_kyoto_answer, 8));
  double cost = json_real_value(json_object_get(job, "cost_usd"));
  ck_assert_double_eq_tol(cost, ((double)in * 3.0 + (double)out * 15.0) / 1e6, 1e-12);
  ck_assert(json_integer_value(json_object_get(job, "ttft_ms")) >= 0);
  ck_assert(json_integer_value(json_object_get(job, "latency_ms")) >= 0);
  /* The wire: key header, version header, streaming body. */
  json_t *req = fake_provider_last_request(env.fake);
  ck_assert_str_eq(str(req, "path"), "/v1/messages");
  ck_assert_str_eq(str(req, "x_api_key"), LLM_ENV_KEY);
  ck_assert_str_eq(str(req, "anthropic_version"), "2023-06-01");
  json_t *body = json_object_get(req, "body");
  ck_assert(json_is_true(json_object_get(body, "stream")));
  ck_assert_str_eq(str(body, "model"), "fake-large");
  ck_assert_ptr_nonnull(strstr(str(body, "system"), "JSON Schema"));
  json_decref(req);
  /* Events: the tokens reassemble the answer, then "done" carries the job. */
  json_t *events = llm_env_events(llm, str(job, "job_id"));
  char *tokens = llm_env_tokens(events);
  ck_assert_str_eq(tokens, llm_env_kyoto_answer);
  free(tokens);
  ck_assert_int_eq(llm_env_count(events, "done"), 1);
  ck_assert_int_eq(llm_env_count(events, "retry"), 0);
  json_t *last = json_array_get(events, json_array_size(events) - 1);
  ck_assert_str_eq(str(last, "event"), "done");
  vd_buf sse = {0};
  vd_llm_event_sse(last, &sse);
  ck_assert_ptr_nonnull(strstr(sse.data, "event: done\ndata: {"));
  ck_assert(sse.len > 2 && strcmp(sse.data + sse.len - 2, "\n\n") == 0);
  vd_buf_free(&sse);
  json_decref(events);
  /* The ledger has the call, summed per day, task and feature. */
  vd_error err;
  json_t *costs = vd_llm_costs(llm, "2000-01-01", "2999-12-31", &err);
  ck_assert_int_eq(json_array_size(costs), 1);
  json_t *row = json_array_get(costs, 0);
  ck_assert_str_eq(str(row, "task"), "itinerary");
  ck_assert_str_eq(str(row, "feature"), "itineraries");
  ck_assert_int_eq(num(row, "calls"), 1);
  ck_assert_int_eq(num(row, "output_tokens"), out);
  ck_assert_double_eq_tol(vd_llm_spend_today(llm, "itineraries"), cost, 1e-12);
  json_decref(costs);
  vd_llm_stats stats;
  vd_llm_get_stats(llm, &stats);
  ck_assert_uint_eq(stats.succeeded, 1);
  ck_assert_uint_eq(stats.provider_calls, 1);
  ck_assert_int_eq(stats.output_tokens, out);
  json_decref(job);
  vd_llm_close(llm);
  llm_env_done(&env);
}
END_TEST

START_TEST(test_openai_success_with_crlf_and_tiny_chunks) {
  llm_env env;
  llm_env_init(&env, VD_LLM_WIRE_OPENAI);
  fake_provider_set_crlf(env.fake, true);
  fake_provider_set_pacing(env.fake, 0, 1);
  vd_llm *llm = open_llm(&env);
  json_t *job = llm_env_run(llm, VD_LLM_TASK_ITINERARY, llm_env_kyoto_trip, NULL);
  ck_assert_str_eq(str(job, "state"), "succeeded");
  ck_assert_str_eq(str(job, "feature"), "itinerary"); /* the task's name by default */
  ck_assert_int_eq(num(job, "output_tokens"), (json_int_t)strlen(llm_env_kyoto_answer));
  json_t *req = fake_provider_last_request(env.fake);
  ck_assert_str_eq(str(req, "path"), "/v1/chat/completions");
  ck_assert_str_eq(str(req, "authorization"), "Bearer " LLM_ENV_KEY);
  json_t *body = json_object_get(req, "body");
  ck_assert(
      json_is_true(json_object_get(json_object_get(body, "stream_options"), "include_usage")));
  ck_assert_str_eq(str(json_array_get(json_object_get(body, "messages"), 0), "role"), "system");
  json_decref(req);
  json_decref(job);
  vd_llm_close(llm);
  llm_env_done(&env);
}
END_TEST

START_TEST(test_transient_failures_are_retried) {
  llm_env env;
  llm_env_init(&env, VD_LLM_WIRE_ANTHROPIC);
  env.cfg.max_attempts = 6;
  env.cfg.breaker_failures = 10;
  fake_provider_push(env.fake, FAKE_HTTP_529, NULL, 0, NULL);
  fake_provider_push(env.fake, FAKE_HTTP_500, NULL, 0, NULL);
  fake_provider_push(env.fake, FAKE_CUT_MID_STREAM, NULL, 0, NULL);
  fake_provider_push(env.fake, FAKE_ERROR_EVENT, NULL, 0, NULL);
  fake_provider_push(env.fake, FAKE_MALFORMED_EVENT, NULL, 0, NULL);
  vd_llm *llm = open_llm(&env);
  json_t *job = llm_env_run(llm, VD_LLM_TASK_ITINERARY, llm_env_kyoto_trip, NULL);
  ck_assert_str_eq(str(job, "state"), "succeeded");
  ck_assert_int_eq(num(job, "attempts"), 6);
  ck_assert_int_eq(fake_provider_request_count(env.fake), 6);
  json_t *events = llm_env_events(llm, str(job, "job_id"));
  ck_assert_int_eq(llm_env_count(events, "retry"), 5);
  ck_assert_int_ge(llm_env_count(events, "reset"),
                   2); /* the cut and the error event streamed text */
  char *tokens = llm_env_tokens(events);
  ck_assert_str_eq(tokens, llm_env_kyoto_answer); /* after the resets, only the good answer */
  free(tokens);
  const char *kinds[] = {"overloaded_error", "api_error", "connection", "overloaded_error",
                         "protocol_error"};
  int k = 0;
  size_t i;
  json_t *e;
  json_array_foreach(events, i, e) {
    if (strcmp(str(e, "event"), "retry") != 0) continue;
    ck_assert_str_eq(str(json_object_get(e, "data"), "reason"), kinds[k]);
    /* Exponential backoff with jitter: retry n waits in [cap/2, cap], cap = 20 ms * 2^(n-1)
     * up to 200 ms. */
    json_int_t cap = 20 << k;
    if (cap > 200) cap = 200;
    json_int_t delay = num(json_object_get(e, "data"), "delay_ms");
    ck_assert_msg(delay >= cap / 2 && delay <= cap, "retry %d waited %lld ms, cap %lld", k + 1,
                  (long long)delay, (long long)cap);
    k++;
  }
  json_decref(events);
  /* Calls that streamed usage before failing are in the ledger too. */
  vd_error err;
  json_t *costs = vd_llm_costs(llm, "2000-01-01", "2999-12-31", &err);
  ck_assert_int_ge(num(json_array_get(costs, 0), "calls"), 4);
  json_decref(costs);
  vd_llm_stats stats;
  vd_llm_get_stats(llm, &stats);
  ck_assert_uint_eq(stats.retries, 5);
  ck_assert_uint_eq(stats.provider_failures, 5);
  json_decref(job);
  vd_llm_close(llm);
  llm_env_done(&env);
}
END_TEST

START_TEST(test_stream_without_stop_is_a_failure) {
  for (int wire = 0; wire < 2; wire++) {
    llm_env env;
    llm_env_init(&env, (vd_llm_wire)wire);
    env.cfg.max_attempts = 1;
    fake_provider_push(env.fake, FAKE_NO_STOP, NULL, 0, NULL);
    vd_llm *llm = open_llm(&env);
    json_t *job = llm_env_run(llm, VD_LLM_TASK_ITINERARY, llm_env_kyoto_trip, NULL);
    ck_assert_str_eq(str(job, "state"), "fallback");
    ck_assert_str_eq(str(job, "handled_by"), "template");
    ck_assert_ptr_nonnull(strstr(str(job, "reason"), wire ? "[DONE]" : "message_stop"));
    ck_assert_ptr_nonnull(strstr(str(job, "reason"), "incomplete_stream"));
    json_decref(job);
    vd_llm_close(llm);
    llm_env_done(&env);
  }
}
END_TEST

START_TEST(test_429_honours_retry_after) {
  llm_env env;
  llm_env_init(&env, VD_LLM_WIRE_ANTHROPIC);
  fake_provider_push(env.fake, FAKE_HTTP_429, NULL, 0, "1");
  vd_llm *llm = open_llm(&env);
  uint64_t t0 = vd_monotonic_ns();
  json_t *job = llm_env_run(llm, VD_LLM_TASK_ITINERARY, llm_env_kyoto_trip, NULL);
  uint64_t elapsed_ms = (vd_monotonic_ns() - t0) / 1000000;
  ck_assert_str_eq(str(job, "state"), "succeeded");
  ck_assert_int_eq(num(job, "attempts"), 2);
  ck_assert_uint_ge(elapsed_ms, 1000); /* backoff alone would be 10-20 ms */
  json_t *events = llm_env_events(llm, str(job, "job_id"));
  size_t i;
  json_t *e;
  json_array_foreach(events, i, e) {
    if (strcmp(str(e, "event"), "retry") == 0) {
      ck_assert_int_eq(num(json_object_get(e, "data"), "delay_ms"), 1000);
      ck_assert_str_eq(str(json_object_get(e, "data"), "reason"), "rate_limit_error");
    }
  }
  json_decref(events);
  json_decref(job);
  vd_llm_close(llm);
  llm_env_done(&env);
}
END_TEST

START_TEST(test_permanent_errors_are_not_retried) {
  fake_fault faults[] = {FAKE_HTTP_400, FAKE_HTTP_401, FAKE_SPEND_LIMIT};
  const char *kinds[] = {"invalid_request_error", "authentication_error", "spending_limit"};
  for (int wire = 0; wire < 2; wire++)
    for (size_t i = 0; i < 3; i++) {
      llm_env env;
      llm_env_init(&env, (vd_llm_wire)wire);
      fake_provider_push(env.fake, faults[i], NULL, 0, NULL);
      vd_llm *llm = open_llm(&env);
      json_t *job = llm_env_run(llm, VD_LLM_TASK_ITINERARY, llm_env_kyoto_trip, NULL);
      ck_assert_str_eq(str(job, "state"), "fallback");
      ck_assert_int_eq(num(job, "attempts"), 1);
      ck_assert_int_eq(fake_provider_request_count(env.fake), 1);
      ck_assert_msg(
          strstr(str(job, "reason"), kinds[i]) && strstr(str(job, "reason"), "not retried"), "%s",
          str(job, "reason"));
      ck_assert_str_eq(json_string_value(json_object_get(json_object_get(job, "result"), "source")),
                       "template");
      json_decref(job);
      vd_llm_stats stats;
      vd_llm_get_stats(llm, &stats);
      ck_assert(!stats.breaker_open[0]);
      vd_llm_close(llm);
      llm_env_done(&env);
    }
}
END_TEST

START_TEST(test_slow_first_token_times_out_and_retries) {
  llm_env env;
  llm_env_init(&env, VD_LLM_WIRE_ANTHROPIC);
  env.cfg.first_token_timeout_ms = 300;
  fake_provider_push(env.fake, FAKE_SLOW_FIRST_TOKEN, NULL, 1500, NULL);
  vd_llm *llm = open_llm(&env);
  uint64_t t0 = vd_monotonic_ns();
  json_t *job = llm_env_run(llm, VD_LLM_TASK_ITINERARY, llm_env_kyoto_trip, NULL);
  uint64_t elapsed_ms = (vd_monotonic_ns() - t0) / 1000000;
  ck_assert_str_eq(str(job, "state"), "succeeded");
  ck_assert_int_eq(num(job, "attempts"), 2);
  ck_assert_uint_lt(elapsed_ms, 1400); /* it did not wait for the slow token */
  json_t *events = llm_env_events(llm, str(job, "job_id"));
  size_t i;
  json_t *e;
  bool seen = false;
  json_array_foreach(events, i, e) {
    if (strcmp(str(e, "event"), "retry") == 0) {
      ck_assert_str_eq(str(json_object_get(e, "data"), "reason"), "first_token_timeout");
      seen = true;
    }
  }
  ck_assert(seen);
  json_decref(events);
  json_decref(job);
  vd_llm_close(llm);
  llm_env_done(&env);
}
END_TEST

/* A short timeout fires when configured, not at the worker's next routine wake-up (it polls at
 * least every 100 ms): compressed-time drills and tight production timeouts depend on it. */
START_TEST(test_short_timeouts_fire_on_time) {
  llm_env env;
  llm_env_init(&env, VD_LLM_WIRE_ANTHROPIC);
  env.cfg.max_attempts = 1;
  env.cfg.first_token_timeout_ms = 30;
  env.cfg.cache_ttl_s = 0;
  fake_provider_set_mode(env.fake, FAKE_SLOW_FIRST_TOKEN, 2000, NULL);
  vd_llm *llm = open_llm(&env);
  json_int_t fastest = 1000000;
  for (int i = 0; i < 3; i++) {
    json_t *j = llm_env_run(llm, VD_LLM_TASK_ITINERARY, llm_env_kyoto_trip, NULL);
    ck_assert_str_eq(str(j, "state"), "fallback");
    ck_assert_ptr_nonnull(strstr(str(j, "reason"), "first_token_timeout"));
    if (num(j, "latency_ms") < fastest) fastest = num(j, "latency_ms");
    json_decref(j);
  }
  ck_assert_msg(fastest >= 30 && fastest < 75, "a 30 ms timeout fired after %lld ms",
                (long long)fastest);
  fake_provider_set_down(env.fake, FAKE_OK);
  vd_llm_close(llm);
  llm_env_done(&env);
}
END_TEST

/* A provider that trickles its answer slower than the job's deadline counts against its breaker:
 * tokens arriving is not health when the answer never completes in time. */
START_TEST(test_slow_drip_past_the_deadline_opens_the_breaker) {
  llm_env env;
  llm_env_init(&env, VD_LLM_WIRE_ANTHROPIC);
  env.cfg.tasks[VD_LLM_TASK_ITINERARY].deadline_ms = 300;
  env.cfg.breaker_failures = 1;
  env.cfg.breaker_cooldown_ms = 60000;
  env.cfg.cache_ttl_s = 0;
  fake_provider_set_mode(env.fake, FAKE_SLOW_DRIP, 40, NULL); /* under the 2 s idle timeout */
  vd_llm *llm = open_llm(&env);
  json_t *a = llm_env_run(llm, VD_LLM_TASK_ITINERARY, llm_env_kyoto_trip, NULL);
  ck_assert_str_eq(str(a, "state"), "fallback");
  ck_assert_ptr_nonnull(strstr(str(a, "reason"), "deadline"));
  json_t *b = llm_env_run(llm, VD_LLM_TASK_ITINERARY, llm_env_kyoto_trip, NULL);
  ck_assert_ptr_nonnull(strstr(str(b, "reason"), "circuit breaker open"));
  ck_assert_int_eq(fake_provider_request_count(env.fake), 1);
  json_decref(a);
  json_decref(b);
  fake_provider_set_down(env.fake, FAKE_OK);
  vd_llm_close(llm);
  llm_env_done(&env);
}
END_TEST

START_TEST(test_deadline_ends_in_fallback) {
  llm_env env;
  llm_env_init(&env, VD_LLM_WIRE_ANTHROPIC);
  env.cfg.tasks[VD_LLM_TASK_ITINERARY].deadline_ms = 400;
  env.cfg.first_token_timeout_ms = 10000;
  env.cfg.breaker_failures = 100;
  /* Mid-call: the first token would come after 3 s. */
  fake_provider_push(env.fake, FAKE_SLOW_FIRST_TOKEN, NULL, 3000, NULL);
  vd_llm *llm = open_llm(&env);
  uint64_t t0 = vd_monotonic_ns();
  json_t *job = llm_env_run(llm, VD_LLM_TASK_ITINERARY, llm_env_kyoto_trip, NULL);
  uint64_t elapsed_ms = (vd_monotonic_ns() - t0) / 1000000;
  ck_assert_str_eq(str(job, "state"), "fallback");
  ck_assert_ptr_nonnull(strstr(str(job, "reason"), "deadline"));
  ck_assert_uint_lt(elapsed_ms, 1500);
  json_decref(job);
  /* Between calls: every call fails and backoff would cross the deadline. */
  env.cfg.backoff_base_ms = 300;
  vd_llm_close(llm);
  llm = open_llm(&env);
  fake_provider_set_down(env.fake, FAKE_HTTP_500);
  job = llm_env_run(llm, VD_LLM_TASK_ITINERARY, llm_env_kyoto_trip, NULL);
  ck_assert_str_eq(str(job, "state"), "fallback");
  ck_assert_msg(strstr(str(job, "reason"), "deadline"), "%s", str(job, "reason"));
  ck_assert_int_lt(num(job, "attempts"), env.cfg.max_attempts);
  json_decref(job);
  vd_llm_close(llm);
  llm_env_done(&env);
}
END_TEST

START_TEST(test_invalid_output_gets_one_repair) {
  llm_env env;
  llm_env_init(&env, VD_LLM_WIRE_ANTHROPIC);
  fake_provider_push(env.fake, FAKE_OK, "Sure! {not json", 0, NULL);
  vd_llm *llm = open_llm(&env);
  json_t *job = llm_env_run(llm, VD_LLM_TASK_ITINERARY, llm_env_kyoto_trip, NULL);
  ck_assert_str_eq(str(job, "state"), "succeeded");
  ck_assert(json_is_true(json_object_get(job, "repaired")));
  ck_assert_int_eq(num(job, "attempts"), 2);
  json_t *req = fake_provider_last_request(env.fake);
  json_t *messages = json_object_get(json_object_get(req, "body"), "messages");
  ck_assert_int_eq(json_array_size(messages), 3);
  ck_assert_str_eq(str(json_array_get(messages, 1), "role"), "assistant");
  ck_assert_str_eq(str(json_array_get(messages, 1), "content"), "Sure! {not json");
  ck_assert_ptr_nonnull(strstr(str(json_array_get(messages, 2), "content"), "not a JSON object"));
  json_decref(req);
  json_decref(job);
  /* Schema-invalid twice: the repair fails too, so the template answers. */
  fake_provider_push(env.fake, FAKE_OK, "{\"destination\": \"Kyoto\", \"days\": []}", 0, NULL);
  fake_provider_push(env.fake, FAKE_OK, "```json\n{\"destination\": \"Kyoto\"}\n```", 0, NULL);
  job = llm_env_run(llm, VD_LLM_TASK_ITINERARY,
                    "{\"destination\": \"Lisbon, Portugal\", \"start_date\": \"2027-04-02\", "
                    "\"end_date\": \"2027-04-04\"}",
                    NULL);
  ck_assert_str_eq(str(job, "state"), "fallback");
  ck_assert_str_eq(str(job, "handled_by"), "template");
  ck_assert_ptr_nonnull(strstr(str(job, "reason"), "after one repair"));
  ck_assert_ptr_nonnull(strstr(str(job, "reason"), "days: required field is missing"));
  json_t *days = json_object_get(json_object_get(job, "result"), "days");
  ck_assert_int_eq(json_array_size(days), 3);
  json_decref(job);
  /* Days that do not match the trip are refused like schema errors. */
  fake_provider_push(
      env.fake, FAKE_OK,
      "{\"destination\": \"Kyoto, Japan\", \"days\": [{\"day\": 1, \"date\": "
      "\"2027-03-12\", \"activities\": [{\"time\": \"morning\", \"title\": \"x\"}]}]}",
      0, NULL);
  job = llm_env_run(llm, VD_LLM_TASK_ITINERARY,
                    "{\"destination\": \"Kyoto, Japan\", \"start_date\": \"2027-03-12\", "
                    "\"end_date\": \"2027-03-13\", \"travelers\": 3}",
                    NULL);
  ck_assert_str_eq(str(job, "state"), "succeeded"); /* the repair produced the default answer */
  ck_assert(json_is_true(json_object_get(job, "repaired")));
  json_decref(job);
  vd_llm_stats stats;
  vd_llm_get_stats(llm, &stats);
  ck_assert_uint_eq(stats.repairs, 3);
  vd_llm_close(llm);
  llm_env_done(&env);
}
END_TEST

START_TEST(test_cache_hits_and_ttl) {
  llm_env env;
  llm_env_init(&env, VD_LLM_WIRE_ANTHROPIC);
  env.cfg.cache_ttl_s = 2;
  vd_llm *llm = open_llm(&env);
  json_t *first = llm_env_run(llm, VD_LLM_TASK_ITINERARY, llm_env_kyoto_trip, NULL);
  ck_assert_str_eq(str(first, "state"), "succeeded");
  /* Same trip, different spacing and interest order/case: the normalised input is the same. */
  json_t *input = json_loads(
      "{\"interests\": [\"food\", \"temples\"], \"destination\": \"Kyoto,   Japan\", "
      "\"start_date\": \"2027-03-12\", \"end_date\": \"2027-03-13\", \"travelers\": 2}",
      0, NULL);
  char id[VD_LLM_JOB_ID_SIZE];
  vd_error err;
  ck_assert_int_eq(vd_llm_submit(llm, VD_LLM_TASK_ITINERARY, input, NULL, id, &err), VD_LLM_CACHED);
  json_t *second = vd_llm_job(llm, id);
  ck_assert_str_eq(str(second, "state"), "succeeded");
  ck_assert_str_eq(str(second, "handled_by"), "cache");
  ck_assert(json_is_true(json_object_get(second, "cache_hit")));
  ck_assert(json_equal(json_object_get(first, "result"), json_object_get(second, "result")));
  ck_assert_int_eq(fake_provider_request_count(env.fake), 1);
  vd_llm_stats stats;
  vd_llm_get_stats(llm, &stats);
  ck_assert_uint_eq(stats.cache_lookups, 2);
  ck_assert_uint_eq(stats.cache_hits, 1);
  vd_buf metrics = {0};
  vd_llm_metrics_text(llm, &metrics);
  ck_assert_ptr_nonnull(strstr(metrics.data, "\nverdict_llm_cache_hit_ratio 0.500000\n"));
  ck_assert_ptr_nonnull(strstr(metrics.data, "# TYPE verdict_llm_cache_hits_total counter\n"));
  ck_assert_ptr_nonnull(strstr(metrics.data, "verdict_llm_jobs_total{outcome=\"succeeded\"} 2\n"));
  ck_assert_ptr_nonnull(strstr(metrics.data, "verdict_llm_breaker_open{provider=\"fake\"} 0\n"));
  vd_buf_free(&metrics);
  /* Errors are never cached: a fallback leaves no entry. */
  const char *other =
      "{\"destination\": \"Paris, France\", \"start_date\": \"2027-05-01\", "
      "\"end_date\": \"2027-05-01\"}";
  fake_provider_push(env.fake, FAKE_HTTP_401, NULL, 0, NULL);
  json_t *failed = llm_env_run(llm, VD_LLM_TASK_ITINERARY, other, NULL);
  ck_assert_str_eq(str(failed, "state"), "fallback");
  fake_provider_push(env.fake, FAKE_OK, paris_answer, 0, NULL);
  json_t *again = llm_env_run(llm, VD_LLM_TASK_ITINERARY, other, NULL);
  ck_assert_str_eq(str(again, "handled_by"), "llm");
  /* The TTL expires. */
  sleep(3);
  ck_assert_int_eq(vd_llm_submit(llm, VD_LLM_TASK_ITINERARY, input, NULL, id, &err),
                   VD_LLM_SUBMITTED);
  ck_assert(vd_llm_wait(llm, id, 20000));
  json_decref(input);
  json_decref(first);
  json_decref(second);
  json_decref(failed);
  json_decref(again);
  vd_llm_close(llm);
  llm_env_done(&env);
}
END_TEST

START_TEST(test_daily_budget_sends_jobs_to_fallback) {
  llm_env env;
  llm_env_init(&env, VD_LLM_WIRE_ANTHROPIC);
  env.cfg.budget_count = 1;
  snprintf(env.cfg.budgets[0].feature, sizeof env.cfg.budgets[0].feature, "itineraries");
  /* A call may cost up to (body bytes) x $3 + 4096 (the prompt's max_tokens) x $15 per Mtok:
   * ~$0.068 for this trip. $0.1 holds one such call, never two at once. */
  env.cfg.budgets[0].daily_usd = 0.1;
  vd_llm *llm = open_llm(&env);
  json_t *a = llm_env_run(llm, VD_LLM_TASK_ITINERARY, llm_env_kyoto_trip, "itineraries");
  ck_assert_str_eq(str(a, "state"), "succeeded");
  double spent = vd_llm_spend_today(llm, "itineraries");
  ck_assert(spent > 0 && spent < 0.01);
  /* Two calls at once: the second would overrun the budget if both wrote their maximum, so it
   * goes to the fallback without a call while the first is in flight. */
  const char *other =
      "{\"destination\": \"Paris, France\", \"start_date\": \"2027-05-01\", "
      "\"end_date\": \"2027-05-01\"}";
  fake_provider_set_pacing(env.fake, 20, 8);
  fake_provider_push(env.fake, FAKE_OK, paris_answer, 0, NULL);
  vd_error err;
  char slow_id[VD_LLM_JOB_ID_SIZE], over_id[VD_LLM_JOB_ID_SIZE];
  vd_llm_submit_opts opts = {.feature = "itineraries"};
  json_t *slow_in = json_loads(other, 0, NULL);
  ck_assert_int_eq(vd_llm_submit(llm, VD_LLM_TASK_ITINERARY, slow_in, &opts, slow_id, &err),
                   VD_LLM_SUBMITTED);
  json_t *over_in = json_loads(llm_env_kyoto_trip, 0, NULL);
  json_object_set_new(over_in, "travelers", json_integer(3)); /* not the cached trip */
  ck_assert_int_eq(vd_llm_submit(llm, VD_LLM_TASK_ITINERARY, over_in, &opts, over_id, &err),
                   VD_LLM_SUBMITTED);
  ck_assert(vd_llm_wait(llm, slow_id, 20000) && vd_llm_wait(llm, over_id, 20000));
  json_t *b = vd_llm_job(llm, over_id);
  ck_assert_str_eq(str(b, "state"), "fallback");
  ck_assert_ptr_nonnull(strstr(str(b, "reason"), "daily LLM budget of feature itineraries spent"));
  ck_assert_ptr_nonnull(strstr(str(b, "reason"), "calls in flight hold $0.06"));
  ck_assert_int_eq(num(b, "attempts"), 0);
  json_t *slow = vd_llm_job(llm, slow_id);
  ck_assert_str_eq(str(slow, "handled_by"), "llm");
  ck_assert_int_eq(fake_provider_request_count(env.fake), 2);
  ck_assert(vd_llm_spend_today(llm, "itineraries") <= 0.1);
  fake_provider_set_pacing(env.fake, 0, 8);
  /* Another feature has no budget and still calls the provider. */
  char *over_text = json_dumps(over_in, JSON_COMPACT);
  json_t *c = llm_env_run(llm, VD_LLM_TASK_ITINERARY, over_text, "partners");
  free(over_text);
  ck_assert_str_eq(str(c, "handled_by"), "llm");
  ck_assert_int_eq(fake_provider_request_count(env.fake), 3);
  vd_llm_stats stats;
  vd_llm_get_stats(llm, &stats);
  ck_assert_uint_eq(stats.budget_fallbacks, 1);
  vd_llm_close(llm);
  /* A budget smaller than one call's worst case allows no call at all. */
  env.cfg.budgets[0].daily_usd = 0.01;
  llm = open_llm(&env);
  const char *fresh = /* not in the cache */
      "{\"destination\": \"Paris, France\", \"start_date\": \"2027-05-01\", "
      "\"end_date\": \"2027-05-01\", \"travelers\": 5}";
  json_t *d = llm_env_run(llm, VD_LLM_TASK_ITINERARY, fresh, "itineraries");
  ck_assert_str_eq(str(d, "state"), "fallback");
  ck_assert_ptr_nonnull(strstr(str(d, "reason"), "this call could cost up to $0.06"));
  ck_assert_int_eq(fake_provider_request_count(env.fake), 3);
  json_decref(slow_in);
  json_decref(over_in);
  json_decref(a);
  json_decref(b);
  json_decref(slow);
  json_decref(c);
  json_decref(d);
  vd_llm_close(llm);
  llm_env_done(&env);
}
END_TEST

START_TEST(test_circuit_breaker_opens_and_recovers) {
  llm_env env;
  llm_env_init(&env, VD_LLM_WIRE_ANTHROPIC);
  env.cfg.max_attempts = 1;
  env.cfg.breaker_failures = 2;
  env.cfg.breaker_cooldown_ms = 300;
  env.cfg.cache_ttl_s = 0;
  fake_provider_set_down(env.fake, FAKE_HTTP_529);
  vd_llm *llm = open_llm(&env);
  for (int i = 0; i < 2; i++) {
    json_t *j = llm_env_run(llm, VD_LLM_TASK_ITINERARY, llm_env_kyoto_trip, NULL);
    ck_assert_str_eq(str(j, "state"), "fallback");
    ck_assert_ptr_nonnull(strstr(str(j, "reason"), "overloaded_error"));
    json_decref(j);
  }
  vd_llm_stats stats;
  vd_llm_get_stats(llm, &stats);
  ck_assert(stats.breaker_open[0]);
  json_t *j = llm_env_run(llm, VD_LLM_TASK_ITINERARY, llm_env_kyoto_trip, NULL);
  ck_assert_str_eq(str(j, "state"), "fallback");
  ck_assert_ptr_nonnull(strstr(str(j, "reason"), "circuit breaker open for provider fake"));
  ck_assert_int_eq(num(j, "attempts"), 0);
  ck_assert_int_eq(fake_provider_request_count(env.fake), 2); /* no call while open */
  json_decref(j);
  /* After the cooldown one trial call goes through; it succeeds and closes the breaker. */
  fake_provider_set_down(env.fake, FAKE_OK);
  usleep(400 * 1000);
  j = llm_env_run(llm, VD_LLM_TASK_ITINERARY, llm_env_kyoto_trip, NULL);
  ck_assert_str_eq(str(j, "state"), "succeeded");
  json_decref(j);
  vd_llm_get_stats(llm, &stats);
  ck_assert(!stats.breaker_open[0]);
  ck_assert_uint_eq(stats.breaker_fallbacks, 1);
  ck_assert_uint_eq(stats.breaker_trips, 1);  /* opened once */
  ck_assert_uint_eq(stats.breaker_trials, 1); /* the one half-open call */
  vd_buf metrics = {0};
  vd_llm_metrics_text(llm, &metrics);
  ck_assert_ptr_nonnull(strstr(metrics.data, "verdict_llm_breaker_trips_total 1\n"));
  vd_buf_free(&metrics);
  vd_llm_close(llm);
  llm_env_done(&env);
}
END_TEST

START_TEST(test_no_key_means_fallback_without_a_call) {
  llm_env env;
  llm_env_init(&env, VD_LLM_WIRE_ANTHROPIC);
  unsetenv(LLM_ENV_KEY_VAR);
  vd_llm *llm = open_llm(&env);
  json_t *j = llm_env_run(llm, VD_LLM_TASK_ITINERARY, llm_env_kyoto_trip, NULL);
  ck_assert_str_eq(str(j, "state"), "fallback");
  ck_assert_str_eq(str(j, "reason"),
                   "no API key for provider fake: " LLM_ENV_KEY_VAR " is not set");
  ck_assert_int_eq(fake_provider_request_count(env.fake), 0);
  json_decref(j);
  vd_llm_close(llm);
  /* A task may refuse to fall back: then the job fails, with the reason. */
  env.cfg.tasks[VD_LLM_TASK_ITINERARY].allow_fallback = false;
  llm = open_llm(&env);
  j = llm_env_run(llm, VD_LLM_TASK_ITINERARY, llm_env_kyoto_trip, NULL);
  ck_assert_str_eq(str(j, "state"), "failed");
  ck_assert(json_is_null(json_object_get(j, "result")));
  json_decref(j);
  vd_llm_close(llm);
  llm_env_done(&env);
}
END_TEST

START_TEST(test_queue_is_bounded_and_submit_does_not_block) {
  llm_env env;
  llm_env_init(&env, VD_LLM_WIRE_ANTHROPIC);
  env.cfg.queue_capacity = 2;
  env.cfg.cache_ttl_s = 0;
  fake_provider_set_pacing(env.fake, 30, 8); /* ~1.5 s per answer */
  vd_llm *llm = open_llm(&env);
  json_t *input = json_loads(llm_env_kyoto_trip, 0, NULL);
  char ids[3][VD_LLM_JOB_ID_SIZE];
  vd_error err;
  uint64_t t0 = vd_monotonic_ns();
  ck_assert_int_eq(vd_llm_submit(llm, VD_LLM_TASK_ITINERARY, input, NULL, ids[0], &err),
                   VD_LLM_SUBMITTED);
  ck_assert_int_eq(vd_llm_submit(llm, VD_LLM_TASK_ITINERARY, input, NULL, ids[1], &err),
                   VD_LLM_SUBMITTED);
  ck_assert_int_eq(vd_llm_submit(llm, VD_LLM_TASK_ITINERARY, input, NULL, ids[2], &err),
                   VD_LLM_QUEUE_FULL);
  uint64_t submit_ms = (vd_monotonic_ns() - t0) / 1000000;
  ck_assert_uint_lt(submit_ms, 500);
  ck_assert_ptr_nonnull(strstr(err.message, "queue is full"));
  ck_assert_str_eq(ids[2], "");
  vd_llm_stats stats;
  vd_llm_get_stats(llm, &stats);
  ck_assert_uint_eq(stats.rejected_queue_full, 1);
  ck_assert_uint_eq(stats.queued + stats.running, 2);
  ck_assert(vd_llm_wait(llm, ids[0], 20000));
  ck_assert(vd_llm_wait(llm, ids[1], 20000));
  ck_assert_int_eq(vd_llm_submit(llm, VD_LLM_TASK_ITINERARY, input, NULL, ids[2], &err),
                   VD_LLM_SUBMITTED);
  ck_assert(vd_llm_wait(llm, ids[2], 20000));
  json_decref(input);
  vd_llm_close(llm);
  llm_env_done(&env);
}
END_TEST

START_TEST(test_restart_resumes_running_jobs) {
  llm_env env;
  llm_env_init(&env, VD_LLM_WIRE_ANTHROPIC);
  fake_provider_push(env.fake, FAKE_SLOW_FIRST_TOKEN, NULL, 1500, NULL);
  vd_llm *llm = open_llm(&env);
  json_t *input = json_loads(llm_env_kyoto_trip, 0, NULL);
  char id[VD_LLM_JOB_ID_SIZE];
  vd_error err;
  ck_assert_int_eq(vd_llm_submit(llm, VD_LLM_TASK_ITINERARY, input, NULL, id, &err),
                   VD_LLM_SUBMITTED);
  json_decref(input);
  for (int i = 0; i < 100 && fake_provider_request_count(env.fake) == 0; i++) usleep(10000);
  usleep(50000);
  json_t *j = vd_llm_job(llm, id);
  ck_assert_str_eq(str(j, "state"), "running");
  json_decref(j);
  vd_llm_close(llm); /* the process "stops" mid-call */
  llm = open_llm(&env);
  ck_assert(vd_llm_wait(llm, id, 20000));
  j = vd_llm_job(llm, id);
  ck_assert_str_eq(str(j, "state"), "succeeded");
  ck_assert_int_eq(num(j, "attempts"), 2);
  json_decref(j);
  vd_llm_close(llm);
  /* A third instance finds the finished job in the store, events included. */
  llm = open_llm(&env);
  j = vd_llm_job(llm, id);
  ck_assert_str_eq(str(j, "state"), "succeeded");
  ck_assert_ptr_null(json_object_get(j, "input"));
  json_decref(j);
  uint64_t cursor = 0;
  bool finished = false;
  json_t *events = vd_llm_events(llm, id, &cursor, 10, &finished, &err);
  ck_assert(finished);
  ck_assert_int_eq(json_array_size(events), 1);
  json_decref(events);
  /* A client resuming mid-stream (Last-Event-ID 40) still gets the end. */
  cursor = 40;
  events = vd_llm_events(llm, id, &cursor, 10, &finished, &err);
  ck_assert(finished);
  ck_assert_int_eq(json_array_size(events), 1);
  ck_assert_int_eq(num(json_array_get(events, 0), "seq"), 41);
  json_decref(events);
  ck_assert_ptr_null(vd_llm_events(llm, "no-such-job", &cursor, 10, &finished, &err));
  ck_assert_ptr_nonnull(strstr(err.message, "no job"));
  vd_llm_close(llm);
  llm_env_done(&env);
}
END_TEST

static void count_done(void *ctx, const json_t *job) {
  json_t *seen = ctx;
  json_array_append_new(seen, json_deep_copy(job));
}

START_TEST(test_classify_hook_and_route_check) {
  llm_env env;
  llm_env_init(&env, VD_LLM_WIRE_ANTHROPIC);
  json_t *seen = json_array();
  env.cfg.on_done = count_done;
  env.cfg.on_done_ctx = seen;
  fake_provider_push(env.fake, FAKE_OK,
                     "{\"intent\": \"book_hotel\", \"route\": \"mars_desk\", \"confidence\": 0.8}",
                     0, NULL);
  fake_provider_push(
      env.fake, FAKE_OK,
      "{\"intent\": \"book_hotel\", \"route\": \"travel_desk\", \"confidence\": 0.8}", 0, NULL);
  vd_llm *llm = open_llm(&env);
  json_t *input = json_pack("{s:s,s:{s:s,s:s,s:f},s:[s,s]}", "text", "I need a room in Rome",
                            "provisional", "intent", "oos", "route", "human_review", "confidence",
                            0.3, "routes", "travel_desk", "human_review");
  char id[VD_LLM_JOB_ID_SIZE];
  vd_error err;
  vd_llm_submit_opts opts = {.ref = "decision-123"};
  ck_assert_int_eq(vd_llm_submit(llm, VD_LLM_TASK_CLASSIFY, input, &opts, id, &err),
                   VD_LLM_SUBMITTED);
  ck_assert(vd_llm_wait(llm, id, 20000));
  json_t *j = vd_llm_job(llm, id);
  ck_assert_str_eq(str(j, "state"), "succeeded");
  ck_assert(json_is_true(json_object_get(j, "repaired"))); /* mars_desk is not an allowed route */
  ck_assert_str_eq(str(json_object_get(j, "result"), "route"), "travel_desk");
  ck_assert_str_eq(str(j, "model"), "fake-small");
  json_decref(j);
  /* Provider down: the provisional route stands, marked as the rules' answer. */
  fake_provider_push(env.fake, FAKE_HTTP_401, NULL, 0, NULL);
  json_object_set_new(input, "text", json_string("I need a room somewhere"));
  ck_assert_int_eq(vd_llm_submit(llm, VD_LLM_TASK_CLASSIFY, input, &opts, id, &err),
                   VD_LLM_SUBMITTED);
  ck_assert(vd_llm_wait(llm, id, 20000));
  vd_llm_close(llm); /* the hook has run for both before close returns */
  ck_assert_int_eq(json_array_size(seen), 2);
  json_t *second = json_array_get(seen, 1);
  ck_assert_str_eq(str(second, "ref"), "decision-123");
  ck_assert_str_eq(str(second, "state"), "fallback");
  ck_assert_str_eq(str(json_object_get(second, "result"), "route"), "human_review");
  ck_assert_str_eq(str(json_object_get(second, "result"), "source"), "rules");
  json_decref(input);
  json_decref(seen);
  llm_env_done(&env);
}
END_TEST

START_TEST(test_invalid_input_is_rejected_with_field) {
  llm_env env;
  llm_env_init(&env, VD_LLM_WIRE_ANTHROPIC);
  vd_llm *llm = open_llm(&env);
  struct {
    vd_llm_task task;
    const char *input, *field;
  } cases[] = {
      {VD_LLM_TASK_ITINERARY,
       "{\"destination\": \"Rome\", \"start_date\": \"2027-05-03\", \"end_date\": \"2027-05-01\"}",
       "end_date"},
      {VD_LLM_TASK_ITINERARY,
       "{\"destination\": \"Rome\", \"start_date\": \"2027-02-30\", \"end_date\": \"2027-05-01\"}",
       "start_date"},
      {VD_LLM_TASK_ITINERARY,
       "{\"destination\": \"Rome\", \"start_date\": \"2027-05-01\", \"end_date\": \"2027-07-01\"}",
       "end_date"},
      {VD_LLM_TASK_ITINERARY,
       "{\"destination\": \"Rome\", \"start_date\": \"2027-05-01\", \"end_date\": \"2027-05-02\", "
       "\"travelers\": 0}",
       "travelers"},
      {VD_LLM_TASK_ITINERARY, "{\"start_date\": \"2027-05-01\", \"end_date\": \"2027-05-02\"}",
       "destination"},
      {VD_LLM_TASK_EXTRACT, "{\"text\": \"\"}", "text"},
      {VD_LLM_TASK_EXTRACT, "{\"text\": \"x\", \"reference_date\": \"tomorrow!!\"}",
       "reference_date"},
      {VD_LLM_TASK_CLASSIFY, "{\"text\": \"x\", \"colour\": 1}", "colour"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *input = json_loads(cases[i].input, 0, NULL);
    char id[VD_LLM_JOB_ID_SIZE];
    vd_error err;
    ck_assert_int_eq(vd_llm_submit(llm, cases[i].task, input, NULL, id, &err), VD_LLM_REJECTED);
    ck_assert_msg(strcmp(err.field, cases[i].field) == 0, "case %zu: field %s (%s)", i, err.field,
                  err.message);
    json_decref(input);
  }
  vd_llm_stats stats;
  vd_llm_get_stats(llm, &stats);
  ck_assert_uint_eq(stats.rejected_invalid, sizeof cases / sizeof cases[0]);
  ck_assert_uint_eq(stats.submitted, 0);
  vd_llm_close(llm);
  llm_env_done(&env);
}
END_TEST

static int compare_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Every token is relayed as it arrives: the median delay between the fake handing a text event to
 * its socket and a subscriber holding it is a few milliseconds (one scheduling hiccup on a busy
 * machine does not move a median). */
START_TEST(test_tokens_reach_subscribers_within_milliseconds) {
  llm_env env;
  llm_env_init(&env, VD_LLM_WIRE_ANTHROPIC);
  fake_provider_set_pacing(env.fake, 25, 16);
  fake_provider_push(env.fake, FAKE_SLOW_FIRST_TOKEN, NULL, 300, NULL);
  vd_llm *llm = open_llm(&env);
  json_t *input = json_loads(llm_env_kyoto_trip, 0, NULL);
  char id[VD_LLM_JOB_ID_SIZE];
  vd_error err;
  ck_assert_int_eq(vd_llm_submit(llm, VD_LLM_TASK_ITINERARY, input, NULL, id, &err),
                   VD_LLM_SUBMITTED);
  json_decref(input);
  uint64_t received[FAKE_MAX_SENT];
  size_t count = 0;
  uint64_t cursor = 0;
  bool finished = false;
  while (!finished) {
    json_t *batch = vd_llm_events(llm, id, &cursor, 2000, &finished, &err);
    ck_assert_ptr_nonnull(batch);
    uint64_t now = vd_monotonic_ns();
    size_t i;
    json_t *e;
    json_array_foreach(batch, i, e) {
      if (strcmp(str(e, "event"), "token") == 0 && count < FAKE_MAX_SENT) received[count++] = now;
    }
    json_decref(batch);
  }
  uint64_t sent[FAKE_MAX_SENT];
  size_t sent_count = fake_provider_text_sent_ns(env.fake, sent, FAKE_MAX_SENT);
  ck_assert_uint_eq(sent_count, count);
  ck_assert_uint_ge(count, 10);
  uint64_t lag[FAKE_MAX_SENT];
  for (size_t i = 0; i < count; i++) lag[i] = received[i] - sent[i];
  qsort(lag, count, sizeof lag[0], compare_u64);
  size_t middle = count / 2;
  double median_ms = (double)lag[middle] / 1e6, first_ms = (double)(received[0] - sent[0]) / 1e6;
  fprintf(stderr,
          "tokens relayed: %zu, median provider→subscriber %.3f ms, first %.3f ms, max %.3f ms\n",
          count, median_ms, first_ms, (double)lag[count - 1] / 1e6);
  ck_assert_msg(median_ms < 20.0, "median relay delay %.3f ms", median_ms);
  json_t *job = vd_llm_job(llm, id);
  ck_assert_int_ge(num(job, "ttft_ms"), 300); /* the provider's slowness shows in the record */
  json_decref(job);
  /* A client reconnecting with the done event's id (its Last-Event-ID) is answered at once with
   * that event again and the end, not kept waiting for events that will never come. */
  uint64_t done_seq = cursor, t0 = vd_monotonic_ns();
  json_t *again = vd_llm_events(llm, id, &cursor, 5000, &finished, &err);
  ck_assert(finished);
  ck_assert_uint_lt(vd_monotonic_ns() - t0, 1000000000u);
  ck_assert_int_eq(json_array_size(again), 1);
  ck_assert_str_eq(str(json_array_get(again, 0), "event"), "done");
  ck_assert_int_eq(num(json_array_get(again, 0), "seq"), (json_int_t)done_seq);
  json_decref(again);
  vd_llm_close(llm);
  llm_env_done(&env);
}
END_TEST

/* Finished jobs keep their token events only while they are among the 64 newest: memory stays
 * bounded, and an old job's events still end with "done" carrying the whole result. */
START_TEST(test_old_jobs_drop_token_events) {
  llm_env env;
  llm_env_init(&env, VD_LLM_WIRE_ANTHROPIC);
  env.cfg.cache_ttl_s = 0;
  vd_llm *llm = open_llm(&env);
  char first[VD_LLM_JOB_ID_SIZE] = "", last[VD_LLM_JOB_ID_SIZE] = "";
  for (int i = 0; i < 66; i++) {
    json_t *job = llm_env_run(llm, VD_LLM_TASK_ITINERARY, llm_env_kyoto_trip, NULL);
    ck_assert_str_eq(str(job, "state"), "succeeded");
    snprintf(i == 0 ? first : last, VD_LLM_JOB_ID_SIZE, "%s", str(job, "job_id"));
    json_decref(job);
  }
  json_t *old = llm_env_events(llm, first);
  ck_assert_int_eq(llm_env_count(old, "token"), 0);
  ck_assert_int_eq(llm_env_count(old, "done"), 1);
  json_t *done = json_array_get(old, json_array_size(old) - 1);
  ck_assert_int_gt(num(done, "seq"), (json_int_t)json_array_size(old)); /* seq numbers kept */
  ck_assert_int_eq(json_array_size(json_object_get(
                       json_object_get(json_object_get(done, "data"), "result"), "days")),
                   2);
  json_t *recent = llm_env_events(llm, last);
  ck_assert_int_eq(llm_env_count(recent, "token"), (int)pieces(llm_env_kyoto_answer, 8));
  json_decref(old);
  json_decref(recent);
  vd_llm_close(llm);
  llm_env_done(&env);
}
END_TEST

START_TEST(test_unreachable_provider_is_retried_then_falls_back) {
  llm_env env;
  llm_env_init(&env, VD_LLM_WIRE_ANTHROPIC);
  snprintf(env.cfg.providers[0].base_url, sizeof env.cfg.providers[0].base_url,
           "http://127.0.0.1:1"); /* nothing listens on port 1 */
  env.cfg.max_attempts = 3;
  vd_llm *llm = open_llm(&env);
  json_t *job = llm_env_run(llm, VD_LLM_TASK_CLASSIFY, "{\"text\": \"hello\"}", NULL);
  ck_assert_str_eq(str(job, "state"), "fallback");
  ck_assert_int_eq(num(job, "attempts"), 3);
  ck_assert_msg(strstr(str(job, "reason"), "(connection) after 3 attempts"), "%s",
                str(job, "reason"));
  json_decref(job);
  vd_llm_stats stats;
  vd_llm_get_stats(llm, &stats);
  ck_assert(stats.breaker_open[0]); /* three connection failures = the breaker threshold */
  vd_llm_close(llm);
  llm_env_done(&env);
}
END_TEST

int main(void) {
  Suite *s = suite_create("llm_jobs");
  TCase *tc = tcase_create("jobs");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_anthropic_success_streams_and_costs);
  tcase_add_test(tc, test_openai_success_with_crlf_and_tiny_chunks);
  tcase_add_test(tc, test_transient_failures_are_retried);
  tcase_add_test(tc, test_stream_without_stop_is_a_failure);
  tcase_add_test(tc, test_429_honours_retry_after);
  tcase_add_test(tc, test_permanent_errors_are_not_retried);
  tcase_add_test(tc, test_slow_first_token_times_out_and_retries);
  tcase_add_test(tc, test_deadline_ends_in_fallback);
  tcase_add_test(tc, test_invalid_output_gets_one_repair);
  tcase_add_test(tc, test_cache_hits_and_ttl);
  tcase_add_test(tc, test_daily_budget_sends_jobs_to_fallback);
  tcase_add_test(tc, test_short_timeouts_fire_on_time);
  tcase_add_test(tc, test_slow_drip_past_the_deadline_opens_the_breaker);
  tcase_add_test(tc, test_circuit_breaker_opens_and_recovers);
  tcase_add_test(tc, test_no_key_means_fallback_without_a_call);
  tcase_add_test(tc, test_queue_is_bounded_and_submit_does_not_block);
  tcase_add_test(tc, test_restart_resumes_running_jobs);
  tcase_add_test(tc, test_classify_hook_and_route_check);
  tcase_add_test(tc, test_invalid_input_is_rejected_with_field);
  tcase_add_test(tc, test_tokens_reach_subscribers_within_milliseconds);
  tcase_add_test(tc, test_old_jobs_drop_token_events);
  tcase_add_test(tc, test_unreachable_provider_is_retried_then_falls_back);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
