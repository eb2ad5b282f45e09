/* `verdict llm run|job|costs` against the fake provider, configured through a config file's
 * `llm:` section (paths relative to the file), and its usage errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support_llm_env.h"
#include "vd_test.h"

int vd_verb_llm(int argc, char **argv, FILE *out, FILE *err);

typedef struct captured {
  int rc;
  char *out;
  char *err;
} captured;

static char *slurp(FILE *f) {
  fflush(f);
  long size = ftell(f);
  rewind(f);
  char *text = calloc(1, (size_t)size + 1);
  if (size > 0 && fread(text, 1, (size_t)size, f) != (size_t)size) text[0] = '\0';
  fclose(f);
  return text;
}

static captured call(int argc, char **argv) {
  FILE *out = tmpfile(), *err = tmpfile();
  captured c = {.rc = vd_verb_llm(argc, argv, out, err)};
  c.out = slurp(out);
  c.err = slurp(err);
  return c;
}

static void release(captured *c) {
  free(c->out);
  free(c->err);
}

START_TEST(test_run_job_costs) {
  llm_env env;
  llm_env_init(&env, VD_LLM_WIRE_OPENAI);
  char config[400];
  snprintf(config, sizeof config, "%s/verdict.yaml", env.dir);
  FILE *f = fopen(config, "w");
  fprintf(
      f,
      "llm:\n"
      "  data_dir: state\n"
      "  prompts_dir: %s/examples/prompts\n"
      "  providers:\n"
      "    local: {wire: openai, base_url: \"%s\", api_key_env: NO_SUCH_VAR, key_optional: true}\n"
      "  tiers:\n"
      "    small: {provider: local, model: tiny, usd_per_mtok_input: 0, usd_per_mtok_output: 0}\n"
      "    large: {provider: local, model: big, usd_per_mtok_input: 1, usd_per_mtok_output: 2}\n",
      VERDICT_SOURCE_DIR, fake_provider_openai_url(env.fake));
  fclose(f);
  char input[1024];
  snprintf(input, sizeof input, "%s", llm_env_kyoto_trip);
  char *run_argv[] = {"llm", "run", "itinerary", "--config", config, "--input", input, NULL};
  captured c = call(7, run_argv);
  ck_assert_msg(c.rc == 0, "rc %d: %s", c.rc, c.err);
  /* The streamed answer first, then the record. */
  ck_assert(strncmp(c.out, llm_env_kyoto_answer, strlen(llm_env_kyoto_answer)) == 0);
  json_t *job = json_loads(c.out + strlen(llm_env_kyoto_answer), 0, NULL);
  ck_assert_ptr_nonnull(job);
  ck_assert_str_eq(json_string_value(json_object_get(job, "state")), "succeeded");
  ck_assert_str_eq(json_string_value(json_object_get(job, "model")), "big");
  char id[64];
  snprintf(id, sizeof id, "%s", json_string_value(json_object_get(job, "job_id")));
  json_decref(job);
  release(&c);
  /* The store is in the config file's folder: state/llm.sqlite. */
  char store[400];
  snprintf(store, sizeof store, "%s/state/llm.sqlite", env.dir);
  FILE *s = fopen(store, "r");
  ck_assert_ptr_nonnull(s);
  fclose(s);
  char *job_argv[] = {"llm", "job", id, "--config", config, NULL};
  c = call(5, job_argv);
  ck_assert_int_eq(c.rc, 0);
  ck_assert_ptr_nonnull(strstr(c.out, "\"handled_by\": \"llm\""));
  ck_assert_ptr_null(strstr(c.out, "\"input\""));
  release(&c);
  char *costs_argv[] = {"llm", "costs", "--config", config, NULL};
  c = call(4, costs_argv);
  ck_assert_int_eq(c.rc, 0);
  json_t *rows = json_loads(c.out, 0, NULL);
  ck_assert_int_eq(json_array_size(rows), 1);
  ck_assert_str_eq(json_string_value(json_object_get(json_array_get(rows, 0), "task")),
                   "itinerary");
  json_decref(rows);
  release(&c);
  llm_env_done(&env);
}
END_TEST

START_TEST(test_usage_errors) {
  char *none[] = {"llm", NULL};
  captured c = call(1, none);
  ck_assert_int_eq(c.rc, 2);
  release(&c);
  char *task[] = {"llm", "run", "summarise", "--input", "{}", "--data-dir", "/tmp/vd-no", NULL};
  c = call(7, task);
  ck_assert_int_eq(c.rc, 2);
  ck_assert_ptr_nonnull(strstr(c.err, "unknown task \"summarise\""));
  release(&c);
  char *bad_json[] = {"llm", "run", "itinerary", "--input", "{oops", NULL};
  c = call(5, bad_json);
  ck_assert_int_eq(c.rc, 2);
  ck_assert_ptr_nonnull(strstr(c.err, "--input (argument):1:"));
  release(&c);
  /* A server config without an `llm:` mapping is refused by name. */
  char engine_config[] = "/tmp/vd-llm-cli-XXXXXX";
  int fd = mkstemp(engine_config);
  ck_assert_int_ge(fd, 0);
  const char *text = "listen: 127.0.0.1:0\n";
  ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  char *no_section[] = {"llm", "costs", "--config", engine_config, NULL};
  c = call(4, no_section);
  unlink(engine_config);
  ck_assert_int_eq(c.rc, 2);
  ck_assert_ptr_nonnull(strstr(c.err, "has no `llm:` section"));
  release(&c);
  char *help[] = {"llm", "--help", NULL};
  c = call(2, help);
  ck_assert_int_eq(c.rc, 0);
  ck_assert_ptr_nonnull(strstr(c.out, "usage: verdict llm run TASK"));
  release(&c);
}
END_TEST

int main(void) {
  Suite *s = suite_create("llm_cli");
  TCase *tc = tcase_create("cli");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_run_job_costs);
  tcase_add_test(tc, test_usage_errors);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
