/* Every file the LLM module reads at a user's word is refused at once when it is not a regular
 * file: a FIFO named as the activity catalogue hung `verdict serve` at start (jansson's
 * json_load_file waits for a writer), /dev/zero was read until "'[' or '{' expected". */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support_llm_env.h"
#include "vd_llm_tasks.h"
#include "vd_prompts.h"
#include "vd_test.h"

int vd_verb_llm(int argc, char **argv, FILE *out, FILE *err);

static char *slurp(FILE *f) {
  fflush(f);
  long size = ftell(f);
  rewind(f);
  char *text = calloc(1, (size_t)size + 1);
  if (size > 0 && fread(text, 1, (size_t)size, f) != (size_t)size) text[0] = '\0';
  fclose(f);
  return text;
}

/* Runs `verdict llm ARGV` and returns its exit code; *err_text is its stderr (free it). */
static int run_llm(int argc, char **argv, char **err_text) {
  FILE *out = tmpfile(), *err = tmpfile();
  int rc = vd_verb_llm(argc, argv, out, err);
  free(slurp(out));
  *err_text = slurp(err);
  return rc;
}

START_TEST(catalogue_fifo_and_device_are_refused_by_name) {
  alarm(30); /* without the fix the load blocks for ever */
  llm_env env;
  llm_env_init(&env, VD_LLM_WIRE_OPENAI);
  char fifo[400];
  snprintf(fifo, sizeof fifo, "%s/catalogue.json", env.dir);
  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
  snprintf(env.cfg.catalogue_path, sizeof env.cfg.catalogue_path, "%s", fifo);
  vd_error err = {0};
  ck_assert_ptr_null(vd_llm_tasks_load(&env.cfg, &err));
  ck_assert_msg(strstr(err.message, "activity catalogue") && strstr(err.message, fifo) &&
                    strstr(err.message, "is a FIFO"),
                "%s", err.message);
  snprintf(env.cfg.catalogue_path, sizeof env.cfg.catalogue_path, "/dev/zero");
  ck_assert_ptr_null(vd_llm_tasks_load(&env.cfg, &err));
  ck_assert_msg(strstr(err.message, "/dev/zero is a character device"), "%s", err.message);
  /* A broken catalogue still says where. */
  char broken[400];
  snprintf(broken, sizeof broken, "%s/broken.json", env.dir);
  FILE *f = fopen(broken, "w");
  fputs("{\n  \"a\": ]\n}\n", f);
  fclose(f);
  snprintf(env.cfg.catalogue_path, sizeof env.cfg.catalogue_path, "%s", broken);
  ck_assert_ptr_null(vd_llm_tasks_load(&env.cfg, &err));
  ck_assert_str_eq(err.file, broken);
  ck_assert_int_eq(err.line, 2);
  ck_assert_msg(strstr(err.message, "activity catalogue: not valid JSON"), "%s", err.message);
  unlink(fifo);
  unlink(broken);
  llm_env_done(&env);
}
END_TEST

START_TEST(input_file_and_store_fifos_are_refused) {
  alarm(30);
  char dir[] = "/tmp/vd-llm-fifo-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char fifo[100], arg[110];
  snprintf(fifo, sizeof fifo, "%s/input.json", dir);
  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
  snprintf(arg, sizeof arg, "@%s", fifo);
  char *run_argv[] = {"llm", "run", "itinerary", "--input", arg, NULL};
  char *err_text;
  ck_assert_int_eq(run_llm(5, run_argv, &err_text), 2);
  ck_assert_msg(strstr(err_text, fifo) && strstr(err_text, "is a FIFO"), "%s", err_text);
  free(err_text);
  /* The store the read-only verbs open. */
  char store[100];
  snprintf(store, sizeof store, "%s/llm.sqlite", dir);
  ck_assert_int_eq(mkfifo(store, 0600), 0);
  char *costs_argv[] = {"llm", "costs", "--data-dir", dir, NULL};
  ck_assert_int_ne(run_llm(4, costs_argv, &err_text), 0);
  ck_assert_msg(strstr(err_text, store) && strstr(err_text, "is a FIFO"), "%s", err_text);
  free(err_text);
  unlink(store);
  ck_assert_int_ne(run_llm(4, costs_argv, &err_text), 0);
  ck_assert_msg(strstr(err_text, "no LLM store at"), "%s", err_text);
  free(err_text);
  unlink(fifo);
  rmdir(dir);
}
END_TEST

START_TEST(prompt_history_fifo_is_refused) {
  alarm(30);
  char dir[] = "/tmp/vd-llm-fifo-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  vd_error err = {0};
  /* No history yet: an empty list. */
  json_t *history = vd_prompts_history(dir, VD_LLM_TASK_CLASSIFY, &err);
  ck_assert_msg(history != NULL, "%s", err.message);
  ck_assert_int_eq(json_array_size(history), 0);
  json_decref(history);
  char sub[100], fifo[120];
  snprintf(sub, sizeof sub, "%s/prompts", dir);
  ck_assert_int_eq(mkdir(sub, 0700), 0);
  snprintf(fifo, sizeof fifo, "%s/history.jsonl", sub);
  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
  ck_assert_ptr_null(vd_prompts_history(dir, VD_LLM_TASK_CLASSIFY, &err));
  ck_assert_msg(strstr(err.message, fifo) && strstr(err.message, "is a FIFO"), "%s", err.message);
  unlink(fifo);
  rmdir(sub);
  rmdir(dir);
}
END_TEST

int main(void) {
  Suite *s = suite_create("llm_fifo_inputs");
  TCase *tc = tcase_create("fifo");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, catalogue_fifo_and_device_are_refused_by_name);
  tcase_add_test(tc, input_file_and_store_fifos_are_refused);
  tcase_add_test(tc, prompt_history_fifo_is_refused);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
