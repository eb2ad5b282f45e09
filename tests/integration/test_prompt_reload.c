/* The real `verdict serve` picks prompt activations up through POST /v1/admin/reload, with the
 * rules: the reload answers the prompt ids now active, and a prompt that no longer loads refuses
 * the whole reload (422) while the previous versions keep serving. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vd_itest.h"
#include "vd_prompts.h"

static const char *reload_prompt(const vd_itest_server *s, long *status, json_t **body) {
  vd_itest_response r = vd_itest_call(s, "POST", "/v1/admin/reload", "demo-admin", NULL, 0);
  *status = r.status;
  *body = r.json ? json_incref(r.json) : NULL;
  vd_itest_response_free(&r);
  return json_string_value(json_object_get(json_object_get(*body, "prompts"), "classify"));
}

START_TEST(test_reload_serves_the_activated_prompt) {
  char prompts[] = "/tmp/verdict-prompts-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(prompts));
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "cp -r %s/examples/prompts/. %s/", VERDICT_SOURCE_DIR, prompts);
  ck_assert_int_eq(system(cmd), 0);
  char v1[600], v2[600];
  snprintf(v1, sizeof v1, "%s/classify/v1.md", prompts);
  snprintf(v2, sizeof v2, "%s/classify/v2.md", prompts);
  snprintf(cmd, sizeof cmd, "sed 's/Keep the provisional/Be brief. Keep the provisional/' %s > %s",
           v1, v2);
  ck_assert_int_eq(system(cmd), 0);
  vd_error err;
  vd_prompt *p1 = vd_prompt_open(prompts, VD_LLM_TASK_CLASSIFY, "v1", &err);
  vd_prompt *p2 = vd_prompt_open(prompts, VD_LLM_TASK_CLASSIFY, "v2", &err);
  ck_assert(p1 && p2);
  char extra[2048];
  snprintf(extra, sizeof extra,
           "llm:\n  prompts_dir: %s\n  catalogue: %s/examples/itineraries/catalogue.json\n"
           "  gazetteer: %s/examples/triage/gazetteer.tsv\n",
           prompts, VERDICT_SOURCE_DIR, VERDICT_SOURCE_DIR);
  vd_itest_server server;
  ck_assert(vd_itest_prepare(&server, extra));
  ck_assert(vd_itest_start(&server));
  long status;
  json_t *body;
  const char *id = reload_prompt(&server, &status, &body);
  ck_assert_int_eq(status, 200);
  ck_assert_msg(id && strcmp(id, vd_prompt_id(p1)) == 0, "%s", id ? id : "(none)");
  json_decref(body);
  /* activate v2 in the server's data folder, as `verdict prompts activate` does */
  ck_assert(vd_prompts_activate(server.data_dir, prompts, VD_LLM_TASK_CLASSIFY, "v2", "v1", "itest",
                                "shorter wording", &err));
  id = reload_prompt(&server, &status, &body);
  ck_assert_int_eq(status, 200);
  ck_assert_msg(id && strcmp(id, vd_prompt_id(p2)) == 0, "%s", id ? id : "(none)");
  json_decref(body);
  /* the active file is edited in place: the reload is refused, naming why */
  FILE *f = fopen(v2, "a");
  fputs("edited\n", f);
  fclose(f);
  reload_prompt(&server, &status, &body);
  ck_assert_int_eq(status, 422);
  char *text = json_dumps(body, 0);
  ck_assert_msg(strstr(text, "changed since"), "%s", text);
  free(text);
  json_decref(body);
  /* rolled back, the server reloads again */
  char restored[VD_PROMPT_ID_SIZE];
  ck_assert(vd_prompts_rollback(server.data_dir, prompts, VD_LLM_TASK_CLASSIFY, "itest", "undo",
                                restored, &err));
  id = reload_prompt(&server, &status, &body);
  ck_assert_int_eq(status, 200);
  ck_assert_str_eq(id, vd_prompt_id(p1));
  json_decref(body);
  ck_assert_int_eq(vd_itest_stop(&server, 15), 0);
  vd_itest_cleanup(&server);
  vd_prompt_free(p1);
  vd_prompt_free(p2);
  snprintf(cmd, sizeof cmd, "rm -rf %s", prompts);
  ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("prompt_reload");
  TCase *tc = tcase_create("reload");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_reload_serves_the_activated_prompt);
  suite_add_tcase(s, tc);
  SRunner *r = srunner_create(s);
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
