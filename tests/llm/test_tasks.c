/* The three tasks: extract runs the rules first and asks the LLM only for the rest; the template
 * itinerary and the classify fallback; answer extraction; prompts; the `llm:` config section. */
#include <string.h>

#include "support_llm_env.h"
#include "vd_extract_rules.h"
#include "vd_json_schema.h"
#include "vd_llm_tasks.h"
#include "vd_test.h"

static const char *str(const json_t *obj, const char *key) {
  const char *s = json_string_value(json_object_get(obj, key));
  return s ? s : "(null)";
}

static vd_llm *open_llm(llm_env *env) {
  vd_error err;
  vd_llm *llm = vd_llm_open(&env->cfg, &err);
  ck_assert_msg(llm != NULL, "open: %s", err.message);
  return llm;
}

static const char kyoto_text[] =
    "{\"text\": \"Hi, we'd like to visit Kyoto from March 12 to March 15, 2027. It'll be my "
    "husband and me, and we're big on temples and food.\", \"reference_date\": \"2026-12-03\"}";

START_TEST(test_extract_asks_only_for_missing_fields) {
  llm_env env;
  llm_env_init(&env, VD_LLM_WIRE_ANTHROPIC);
  /* The model tries to change a confident field (destinations) and fills the missing budget. */
  fake_provider_set_answer(env.fake,
                           "{\"destinations\": [\"Osaka, Japan\"], \"start_date\": \"2027-03-12\", "
                           "\"end_date\": \"2027-03-15\", \"nights\": 3, \"adults\": 2, "
                           "\"children\": 0, \"budget\": \"high\", \"interests\": [\"food\"]}");
  vd_llm *llm = open_llm(&env);
  json_t *job = llm_env_run(llm, VD_LLM_TASK_EXTRACT, kyoto_text, "triage");
  ck_assert_str_eq(str(job, "state"), "succeeded");
  ck_assert_str_eq(str(job, "model"), "fake-small");
  json_t *result = json_object_get(job, "result");
  ck_assert_str_eq(json_string_value(json_array_get(json_object_get(result, "destinations"), 0)),
                   "Kyoto, Japan");
  ck_assert_int_eq(json_array_size(json_object_get(result, "interests")), 2);
  ck_assert_str_eq(str(result, "budget"), "high");
  /* The request named exactly the fields the rules were not confident about. */
  json_t *input = json_loads(kyoto_text, 0, NULL);
  const char *text = str(input, "text");
  vd_extract_result rules;
  vd_error err;
  vd_gazetteer *g = vd_gazetteer_load(env.cfg.gazetteer_path, &err);
  ck_assert_ptr_nonnull(g);
  ck_assert(vd_extract_rules(g, text, strlen(text), "2026-12-03", &rules, &err));
  json_t *missing = vd_extract_missing_fields(rules.confident);
  char *want = json_dumps(missing, JSON_COMPACT);
  json_t *req = fake_provider_last_request(env.fake);
  const char *content =
      str(json_array_get(json_object_get(json_object_get(req, "body"), "messages"), 0), "content");
  char needle[300];
  snprintf(needle, sizeof needle, "(null or [] when the text does not say): %s", want);
  ck_assert_msg(strstr(content, needle), "%s", content);
  ck_assert_ptr_nonnull(strstr(content, "budget"));
  free(want);
  json_decref(missing);
  json_decref(rules.fields);
  json_decref(req);
  json_decref(job);
  /* Invalid model values twice: the rules' own fields answer. */
  fake_provider_set_answer(env.fake, "{\"budget\": \"luxurious\"}");
  job = llm_env_run(llm, VD_LLM_TASK_EXTRACT,
                    "{\"text\": \"Kyoto for two from March 12 to March 15, 2027.\"}", NULL);
  ck_assert_str_eq(str(job, "state"), "fallback");
  ck_assert_str_eq(str(job, "handled_by"), "rules");
  ck_assert_ptr_nonnull(strstr(str(job, "reason"), "budget"));
  result = json_object_get(job, "result");
  ck_assert_str_eq(str(result, "source"), "rules");
  ck_assert(json_is_null(json_object_get(result, "budget")));
  ck_assert_str_eq(str(result, "start_date"), "2027-03-12");
  json_decref(job);
  /* Every field confident: no provider call at all. */
  int before = fake_provider_request_count(env.fake);
  job = llm_env_run(llm, VD_LLM_TASK_EXTRACT,
                    "{\"text\": \"Looking to book Lisbon, 2027-04-02 to 2027-04-09. Just one "
                    "adult, mid-range hotels please, and we love museums and food.\"}",
                    NULL);
  ck_assert_str_eq(str(job, "state"), "succeeded");
  ck_assert_str_eq(str(job, "handled_by"), "rules");
  ck_assert_int_eq(json_integer_value(json_object_get(job, "attempts")), 0);
  ck_assert_int_eq(fake_provider_request_count(env.fake), before);
  json_decref(job);
  vd_gazetteer_free(g);
  json_decref(input);
  vd_llm_close(llm);
  llm_env_done(&env);
}
END_TEST

static vd_llm_tasks *load_tasks(llm_env *env) {
  vd_error err;
  vd_llm_tasks *t = vd_llm_tasks_load(&env->cfg, &err);
  ck_assert_msg(t != NULL, "%s", err.message);
  return t;
}

START_TEST(test_template_itinerary) {
  llm_env env;
  llm_env_init(&env, VD_LLM_WIRE_ANTHROPIC);
  vd_llm_tasks *t = load_tasks(&env);
  vd_error err;
  json_t *raw = json_pack("{s:s,s:s,s:s,s:[s]}", "destination", "kyoto", "start_date", "2027-12-30",
                          "end_date", "2028-01-01", "interests", "Temples");
  json_t *in = vd_llm_tasks_normalise(t, VD_LLM_TASK_ITINERARY, raw, "2026-12-03", &err);
  ck_assert_ptr_nonnull(in);
  json_t *r = vd_llm_tasks_fallback(t, VD_LLM_TASK_ITINERARY, in, NULL, &err);
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(str(r, "source"), "template");
  json_t *days = json_object_get(r, "days");
  ck_assert_int_eq(json_array_size(days), 3);
  const char *dates[] = {"2027-12-30", "2027-12-31", "2028-01-01"};
  for (size_t d = 0; d < 3; d++) {
    json_t *day = json_array_get(days, d);
    ck_assert_str_eq(str(day, "date"), dates[d]);
    ck_assert_int_eq(json_integer_value(json_object_get(day, "day")), (json_int_t)d + 1);
    ck_assert_int_eq(json_array_size(json_object_get(day, "activities")), 3);
  }
  /* The Kyoto catalogue is used, the temples interest first, no activity repeated too soon. */
  json_t *first = json_array_get(json_object_get(json_array_get(days, 0), "activities"), 0);
  ck_assert_str_eq(str(first, "interest"), "temples");
  json_t *second = json_array_get(json_object_get(json_array_get(days, 1), "activities"), 0);
  ck_assert_str_eq(str(second, "interest"), "temples");
  ck_assert_str_ne(str(first, "title"), str(second, "title"));
  /* The template meets the same schema as an LLM answer (without the source mark). */
  json_object_del(r, "source");
  vd_diags diags = {0};
  ck_assert(
      vd_json_schema_validate(vd_llm_tasks_output_schema(t, VD_LLM_TASK_ITINERARY), r, &diags));
  json_decref(r);
  json_decref(raw);
  json_decref(in);
  /* An uncatalogued place gets general activities, and says so. */
  raw = json_pack("{s:s,s:s,s:s}", "destination", "Atlantis", "start_date", "2027-01-01",
                  "end_date", "2027-01-01");
  in = vd_llm_tasks_normalise(t, VD_LLM_TASK_ITINERARY, raw, "2026-12-03", &err);
  r = vd_llm_tasks_fallback(t, VD_LLM_TASK_ITINERARY, in, NULL, &err);
  ck_assert_ptr_nonnull(strstr(str(r, "summary"), "not catalogued"));
  ck_assert_int_eq(json_integer_value(json_object_get(in, "travelers")), 1);
  json_decref(r);
  json_decref(raw);
  json_decref(in);
  vd_llm_tasks_free(t);
  llm_env_done(&env);
}
END_TEST

START_TEST(test_answers_and_classify_fallback) {
  llm_env env;
  llm_env_init(&env, VD_LLM_WIRE_ANTHROPIC);
  vd_llm_tasks *t = load_tasks(&env);
  vd_error err;
  json_t *raw = json_pack("{s:s}", "text", "  what   is the meaning of life ");
  json_t *in = vd_llm_tasks_normalise(t, VD_LLM_TASK_CLASSIFY, raw, "2026-12-03", &err);
  ck_assert_str_eq(str(in, "text"), "what is the meaning of life");
  vd_llm_plan plan;
  ck_assert(vd_llm_tasks_plan(t, VD_LLM_TASK_CLASSIFY, in, &plan, &err));
  ck_assert(plan.need_llm);
  ck_assert_ptr_nonnull(
      strstr(json_string_value(json_object_get(json_array_get(plan.messages, 0), "content")),
             "You triage customer requests"));
  vd_buf problems = {0};
  json_t *ok = vd_llm_tasks_accept(t, VD_LLM_TASK_CLASSIFY, in, &plan,
                                   "Here you go:\n```json\n{\"intent\": \"oos\", \"route\": "
                                   "\"human_review\", \"confidence\": 0.4}\n```",
                                   &problems);
  ck_assert_ptr_nonnull(ok);
  ck_assert_str_eq(str(ok, "source"), "llm");
  json_decref(ok);
  ck_assert_ptr_null(
      vd_llm_tasks_accept(t, VD_LLM_TASK_CLASSIFY, in, &plan,
                          "{\"intent\": \"oos\", \"route\": \"x\", \"confidence\": 7}", &problems));
  ck_assert_str_eq(problems.data, "confidence: 7 is above the maximum 1");
  /* Allowed intents (plus "oos") and routes restrict the answer. */
  json_t *limited = json_pack("{s:s,s:[s],s:[s,s]}", "text", "book me a flight", "intents",
                              "book_flight", "routes", "travel_desk", "human_review");
  vd_buf_reset(&problems);
  ck_assert_ptr_null(vd_llm_tasks_accept(
      t, VD_LLM_TASK_CLASSIFY, limited, &plan,
      "{\"intent\": \"book_hotel\", \"route\": \"travel_desk\", \"confidence\": 0.9}", &problems));
  ck_assert_str_eq(problems.data, "intent: \"book_hotel\" is not one of the allowed intents");
  ok = vd_llm_tasks_accept(
      t, VD_LLM_TASK_CLASSIFY, limited, &plan,
      "{\"intent\": \"oos\", \"route\": \"human_review\", \"confidence\": 0.9}", &problems);
  ck_assert_ptr_nonnull(ok);
  json_decref(ok);
  json_decref(limited);
  vd_buf_free(&problems);
  json_t *fb = vd_llm_tasks_fallback(t, VD_LLM_TASK_CLASSIFY, in, &plan, &err);
  ck_assert_str_eq(str(fb, "route"), "human_review");
  ck_assert_str_eq(str(fb, "intent"), "unknown");
  ck_assert_str_eq(str(fb, "source"), "rules");
  json_decref(fb);
  vd_llm_plan_free(&plan);
  json_decref(raw);
  json_decref(in);
  ck_assert_ptr_nonnull(strstr(vd_llm_tasks_prompt_version(t, VD_LLM_TASK_ITINERARY), "v1@"));
  ck_assert_int_eq(strlen(vd_llm_tasks_prompt_version(t, VD_LLM_TASK_ITINERARY)), 15);
  vd_llm_tasks_free(t);
  /* A missing prompt file refuses to load, naming the file. */
  snprintf(env.cfg.tasks[VD_LLM_TASK_CLASSIFY].prompt_version, VD_LLM_NAME_MAX, "v9");
  ck_assert_ptr_null(vd_llm_tasks_load(&env.cfg, &err));
  ck_assert_msg(strstr(err.message, "classify/v9.md"), "%s", err.message);
  snprintf(env.cfg.tasks[VD_LLM_TASK_CLASSIFY].prompt_version, VD_LLM_NAME_MAX, "../x");
  ck_assert_ptr_null(vd_llm_tasks_load(&env.cfg, &err));
  /* A disabled task needs no prompt and reports "none". */
  env.cfg.tasks[VD_LLM_TASK_CLASSIFY].enabled = false;
  t = load_tasks(&env);
  ck_assert_str_eq(vd_llm_tasks_prompt_version(t, VD_LLM_TASK_CLASSIFY), "none");
  vd_llm_tasks_free(t);
  llm_env_done(&env);
}
END_TEST

static bool config_error(const char *section_json, const char *want_field) {
  vd_llm_config cfg;
  vd_llm_config_defaults(&cfg);
  json_t *section = json_loads(section_json, 0, NULL);
  ck_assert_ptr_nonnull(section);
  vd_error err;
  bool ok = vd_llm_config_from_json(&cfg, section, &err);
  json_decref(section);
  if (ok) return false;
  ck_assert_msg(strcmp(err.field, want_field) == 0, "field %s, want %s (%s)", err.field, want_field,
                err.message);
  return true;
}

START_TEST(test_config_section) {
  unsetenv("ANTHROPIC_API_KEY");
  setenv("ANTHROPIC_BASE_URL", "http://proxy.internal:9000", 1);
  vd_llm_config cfg;
  vd_llm_config_defaults(&cfg);
  ck_assert_str_eq(cfg.providers[0].base_url, "http://proxy.internal:9000");
  ck_assert_str_eq(cfg.providers[0].api_key_env, "ANTHROPIC_API_KEY");
  ck_assert_str_eq(cfg.tiers[VD_LLM_TIER_SMALL].provider, "anthropic");
  ck_assert_int_eq(cfg.tasks[VD_LLM_TASK_ITINERARY].tier, VD_LLM_TIER_LARGE);
  ck_assert_int_eq(cfg.tasks[VD_LLM_TASK_EXTRACT].tier, VD_LLM_TIER_SMALL);
  json_t *section = json_loads(
      "{\"queue_capacity\": 10, \"max_attempts\": 2, \"cache_ttl_s\": 0,"
      " \"providers\": {\"local\": {\"wire\": \"openai\", \"base_url\": "
      "\"http://127.0.0.1:8000/v1\","
      "   \"key_optional\": true}},"
      " \"tiers\": {\"small\": {\"provider\": \"local\", \"model\": \"llama\", "
      "\"usd_per_mtok_input\": 0,"
      "   \"usd_per_mtok_output\": 0}},"
      " \"tasks\": {\"classify\": {\"enabled\": false}, \"itinerary\": {\"deadline_ms\": 5000}},"
      " \"budgets\": {\"itineraries\": 25.5, \"triage\": 5}}",
      0, NULL);
  vd_error err;
  ck_assert_msg(vd_llm_config_from_json(&cfg, section, &err), "%s", err.message);
  json_decref(section);
  ck_assert_int_eq(cfg.queue_capacity, 10);
  ck_assert_int_eq(cfg.provider_count, 3);
  ck_assert_int_eq(cfg.providers[2].wire, VD_LLM_WIRE_OPENAI);
  ck_assert(cfg.providers[2].key_optional);
  ck_assert_str_eq(cfg.tiers[VD_LLM_TIER_SMALL].model, "llama");
  ck_assert(!cfg.tasks[VD_LLM_TASK_CLASSIFY].enabled);
  ck_assert_int_eq(cfg.tasks[VD_LLM_TASK_ITINERARY].deadline_ms, 5000);
  ck_assert_int_eq(cfg.budget_count, 2);
  ck_assert_double_eq(cfg.budgets[0].daily_usd, 25.5);

  ck_assert(config_error("{\"colour\": 1}", "llm.colour"));
  ck_assert(config_error("{\"queue_capacity\": 0}", "llm.queue_capacity"));
  ck_assert(config_error("{\"tiers\": {\"small\": {\"model\": 3}}}", "llm.tiers.small.model"));
  ck_assert(config_error("{\"tiers\": {\"huge\": {}}}", "llm.tiers.huge"));
  ck_assert(config_error("{\"tiers\": {\"small\": {\"provider\": \"nope\"}}}",
                         "llm.tiers.small.provider"));
  ck_assert(config_error("{\"providers\": {\"x\": {\"wire\": \"grpc\", \"base_url\": \"u\"}}}",
                         "llm.providers.x.wire"));
  ck_assert(
      config_error("{\"providers\": {\"x\": {\"wire\": \"openai\"}}}", "llm.providers.x.base_url"));
  ck_assert(
      config_error("{\"tasks\": {\"extract\": {\"tier\": \"medium\"}}}", "llm.tasks.extract.tier"));
  ck_assert(config_error("{\"budgets\": {\"triage\": -1}}", "llm.budgets.triage"));
  ck_assert(config_error("{\"tasks\": {\"summarise\": {}}}", "llm.tasks.summarise"));
}
END_TEST

/* A misspelt key is named with the key it was probably meant to be. */
START_TEST(test_config_typos_get_did_you_mean) {
  static const char *const cases[][2] = {
      {"{\"max_attempt\": 3}", "llm.max_attempt: unknown key (did you mean \"max_attempts\"?)"},
      {"{\"tiers\": {\"smal\": {}}}", "llm.tiers.smal: unknown key (did you mean \"small\"?)"},
      {"{\"tasks\": {\"classify\": {\"dedline_ms\": 5}}}",
       "llm.tasks.classify.dedline_ms: unknown key (did you mean \"deadline_ms\"?)"},
      {"{\"colour\": 1}", "llm.colour: unknown key"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    vd_llm_config cfg;
    vd_llm_config_defaults(&cfg);
    json_t *section = json_loads(cases[i][0], 0, NULL);
    vd_error err;
    ck_assert(!vd_llm_config_from_json(&cfg, section, &err));
    ck_assert_str_eq(err.message, cases[i][1]);
    json_decref(section);
  }
}
END_TEST

START_TEST(test_openai_defaults_when_only_its_key_is_set) {
  unsetenv("ANTHROPIC_API_KEY");
  setenv("OPENAI_API_KEY", "sk-x", 1);
  unsetenv("OPENAI_BASE_URL");
  vd_llm_config cfg;
  vd_llm_config_defaults(&cfg);
  ck_assert_str_eq(cfg.tiers[VD_LLM_TIER_LARGE].provider, "openai");
  ck_assert_str_eq(cfg.providers[1].base_url, "https://api.openai.com/v1");
  unsetenv("OPENAI_API_KEY");
}
END_TEST

int main(void) {
  Suite *s = suite_create("llm_tasks");
  TCase *tc = tcase_create("tasks");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_extract_asks_only_for_missing_fields);
  tcase_add_test(tc, test_template_itinerary);
  tcase_add_test(tc, test_answers_and_classify_fallback);
  tcase_add_test(tc, test_config_section);
  tcase_add_test(tc, test_config_typos_get_did_you_mean);
  tcase_add_test(tc, test_openai_defaults_when_only_its_key_is_set);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
