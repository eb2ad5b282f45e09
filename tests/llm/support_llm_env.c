#include "support_llm_env.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vd_buf.h"

const char llm_env_kyoto_trip[] =
    "{\"destination\": \"Kyoto, Japan\", \"start_date\": \"2027-03-12\", \"end_date\": "
    "\"2027-03-13\", \"travelers\": 2, \"interests\": [\"temples\", \"Food\"]}";

const char llm_env_kyoto_answer[] =
    "{\"destination\": \"Kyoto, Japan\", \"summary\": \"Temples and food.\", \"days\": ["
    "{\"day\": 1, \"date\": \"2027-03-12\", \"activities\": ["
    "{\"time\": \"morning\", \"title\": \"Fushimi Inari\", \"interest\": \"temples\"},"
    "{\"time\": \"evening\", \"title\": \"Pontocho dinner\", \"interest\": \"food\"}]},"
    "{\"day\": 2, \"date\": \"2027-03-13\", \"activities\": ["
    "{\"time\": \"afternoon\", \"title\": \"Nishiki Market\", \"description\": \"Street "
    "food.\"}]}]}";

void llm_env_init(llm_env *env, vd_llm_wire wire) {
  memset(env, 0, sizeof *env);
  snprintf(env->dir, sizeof env->dir, "/tmp/verdict-llm-test-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(env->dir));
  env->fake = fake_provider_start();
  ck_assert_ptr_nonnull(env->fake);
  fake_provider_set_answer(env->fake, llm_env_kyoto_answer);
  setenv(LLM_ENV_KEY_VAR, LLM_ENV_KEY, 1);
  vd_llm_config *c = &env->cfg;
  vd_llm_config_defaults(c);
  snprintf(c->data_dir, sizeof c->data_dir, "%s/data", env->dir);
  snprintf(c->prompts_dir, sizeof c->prompts_dir, "%s/examples/prompts", VERDICT_SOURCE_DIR);
  snprintf(c->catalogue_path, sizeof c->catalogue_path, "%s/examples/itineraries/catalogue.json",
           VERDICT_SOURCE_DIR);
  snprintf(c->gazetteer_path, sizeof c->gazetteer_path, "%s/examples/triage/gazetteer.tsv",
           VERDICT_SOURCE_DIR);
  c->provider_count = 1;
  vd_llm_provider_config *p = &c->providers[0];
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "fake");
  p->wire = wire;
  snprintf(p->base_url, sizeof p->base_url, "%s",
           wire == VD_LLM_WIRE_OPENAI ? fake_provider_openai_url(env->fake)
                                      : fake_provider_anthropic_url(env->fake));
  snprintf(p->api_key_env, sizeof p->api_key_env, LLM_ENV_KEY_VAR);
  vd_llm_tier_config *s = &c->tiers[VD_LLM_TIER_SMALL], *l = &c->tiers[VD_LLM_TIER_LARGE];
  snprintf(s->provider, sizeof s->provider, "fake");
  snprintf(s->model, sizeof s->model, "fake-small");
  s->usd_per_mtok_input = 1.0, s->usd_per_mtok_output = 5.0, s->max_output_tokens = 512;
  snprintf(l->provider, sizeof l->provider, "fake");
  snprintf(l->model, sizeof l->model, "fake-large");
  l->usd_per_mtok_input = 3.0, l->usd_per_mtok_output = 15.0, l->max_output_tokens = 2048;
  c->backoff_base_ms = 20;
  c->backoff_max_ms = 200;
  c->first_token_timeout_ms = 2000;
  c->idle_timeout_ms = 2000;
  c->breaker_failures = 3;
  c->breaker_cooldown_ms = 60000;
  c->jitter_seed = 42;
}

void llm_env_done(llm_env *env) {
  fake_provider_stop(env->fake);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", env->dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", env->dir);
}

json_t *llm_env_run(vd_llm *llm, vd_llm_task task, const char *input_json, const char *feature) {
  json_t *input = json_loads(input_json, 0, NULL);
  ck_assert_ptr_nonnull(input);
  char id[VD_LLM_JOB_ID_SIZE];
  vd_error err;
  vd_llm_submit_opts opts = {.feature = feature};
  vd_llm_submit_status st = vd_llm_submit(llm, task, input, &opts, id, &err);
  json_decref(input);
  ck_assert_msg(st == VD_LLM_SUBMITTED || st == VD_LLM_CACHED, "submit: %d %s", st, err.message);
  ck_assert_msg(vd_llm_wait(llm, id, 20000), "job %s did not finish", id);
  json_t *job = vd_llm_job(llm, id);
  ck_assert_ptr_nonnull(job);
  return job;
}

json_t *llm_env_events(vd_llm *llm, const char *job_id) {
  json_t *all = json_array();
  uint64_t cursor = 0;
  bool finished = false;
  for (int i = 0; i < 400 && !finished; i++) {
    vd_error err;
    json_t *batch = vd_llm_events(llm, job_id, &cursor, 50, &finished, &err);
    ck_assert_ptr_nonnull(batch);
    json_array_extend(all, batch);
    json_decref(batch);
  }
  ck_assert(finished);
  return all;
}

int llm_env_count(const json_t *events, const char *name) {
  int n = 0;
  size_t i;
  json_t *e;
  json_array_foreach(events, i, e) {
    if (strcmp(json_string_value(json_object_get(e, "event")), name) == 0) n++;
  }
  return n;
}

char *llm_env_tokens(const json_t *events) {
  vd_buf b = {0};
  vd_buf_puts(&b, "");
  size_t i;
  json_t *e;
  json_array_foreach(events, i, e) {
    const char *name = json_string_value(json_object_get(e, "event"));
    if (strcmp(name, "reset") == 0) vd_buf_reset(&b);
    if (strcmp(name, "token") == 0)
      vd_buf_puts(&b, json_string_value(json_object_get(json_object_get(e, "data"), "text")));
  }
  return vd_buf_take(&b);
}
