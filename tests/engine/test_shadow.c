/* verdict shadow refuses a candidate whose model does not load (a --model bundle, or the
 * deployment's own), with the load error and exit 1 — as a reload refuses it — instead of
 * silently re-deciding everything on the rules alone. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>
#include "vd_cli_verbs.h"
#include "vd_decision_log.h"
#include "vd_deployment.h"
#include "vd_pipeline.h"
#include "vd_test.h"

static const char *example = VERDICT_SOURCE_DIR "/examples/promotions";
static const char *example_rules = VERDICT_SOURCE_DIR "/examples/promotions/rules.yaml";
static const char *triage_example = VERDICT_SOURCE_DIR "/examples/triage";

static void write_file(const char *dir, const char *name, const char *text) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  ck_assert_int_eq(fclose(f), 0);
}

static void run(const char *cmd) { ck_assert_msg(system(cmd) == 0, "%s", cmd); }

/* A data folder whose decision log holds one promotions decision of the example deployment. */
static void log_one_decision(const char *data) {
  vd_diags diags = {0};
  vd_deployment *d =
      vd_deployment_load(example, &(vd_deployment_load_options){.data_dir = data}, &diags);
  ck_assert_msg(d != NULL, "%s", diags.count ? diags.items[0].message : "");
  json_t *request = json_pack("{s:{s:s, s:i, s:f, s:b, s:b, s:s, s:b, s:s, s:b, s:i, s:s}}",
                              "subject", "id", "c1", "recency", 3, "history", 612.5, "mens", 1,
                              "womens", 0, "zip_code", "Urban", "newbie", 0, "channel", "Web",
                              "marketing_opt_out", 0, "emails_last_30d", 1, "country", "US");
  const char *id = "01a23c2a-7289-7441-81f8-c38f843ea650";
  vd_pipeline_input in = {
      .request = request, .decision_id = id, .now_us = 1764000000000000, .max_results = 1};
  vd_decision out = {0};
  vd_diags violations = {0};
  vd_error err = {0};
  ck_assert_msg(vd_pipeline_decide(d, &in, &out, &violations, &err) == VD_PIPELINE_OK, "%s",
                err.message);
  char log_path[1024];
  snprintf(log_path, sizeof log_path, "%s/decisions.db", data);
  vd_decision_log *log = vd_decision_log_open(&(vd_decision_log_config){.path = log_path}, &err);
  ck_assert_msg(log != NULL, "%s", err.message);
  char *text = json_dumps(out.trace, JSON_COMPACT);
  vd_decision_record rec = {.id = id,
                            .kind = "promotions",
                            .subject_id = "c1",
                            .timestamp_us = 1764000000000000,
                            .ruleset_version = vd_ruleset_version(vd_deployment_ruleset(d)),
                            .trace_json = text,
                            .trace_len = strlen(text)};
  ck_assert_int_eq(vd_decision_log_append(log, &rec, &err), VD_LOG_OK);
  vd_decision_log_close(log);
  free(text);
  vd_decision_clear(&out);
  vd_diags_free(&violations);
  vd_diags_free(&diags);
  json_decref(request);
  vd_deployment_release(d);
}

/* Fills argv (10 slots) with `shadow --deployment EXAMPLE --rules EXAMPLE/rules.yaml --data-dir
 * data [--since since]` and returns argc. */
static int example_rules_argv(char **argv, char *data, const char *since) {
  int n = 0;
  argv[n++] = "shadow";
  argv[n++] = "--deployment";
  argv[n++] = (char *)example;
  argv[n++] = "--rules";
  argv[n++] = (char *)example_rules;
  argv[n++] = "--data-dir";
  argv[n++] = data;
  if (since) {
    argv[n++] = "--since";
    argv[n++] = (char *)since;
  }
  argv[n] = NULL;
  return n;
}

/* Runs verdict shadow; its output and errors go to *out_text and *err_text (caller frees). */
static int run_shadow(int argc, char **argv, char **out_text, char **err_text) {
  size_t out_size = 0, err_size = 0;
  FILE *out = open_memstream(out_text, &out_size), *err = open_memstream(err_text, &err_size);
  int status = vd_verb_shadow(argc, argv, out, err);
  fclose(out);
  fclose(err);
  return status;
}

START_TEST(a_candidate_model_that_does_not_load_is_refused) {
  char work[] = "/tmp/vd-shadow-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(work));
  char data[512], junk[512], broken[512], cmd[4096];
  snprintf(data, sizeof data, "%s/data", work);
  snprintf(junk, sizeof junk, "%s/junk-model", work);
  snprintf(broken, sizeof broken, "%s/promotions", work);
  ck_assert_int_eq(mkdir(data, 0755), 0);
  ck_assert_int_eq(mkdir(junk, 0755), 0);
  write_file(junk, "manifest.json", "{\"name\": \"junk\"}");
  write_file(junk, "model.ubj", "\x01\x02junk");
  /* a copy of the example deployment whose own model folder is the junk bundle */
  snprintf(cmd, sizeof cmd, "cp -r %s %s && rm -rf %s/model && cp -r %s %s/model", example, broken,
           broken, junk, broken);
  run(cmd);
  log_one_decision(data);

  /* The log is readable: a candidate that loads is reported (exit 0). */
  char *ok_argv[10];
  FILE *null = fopen("/dev/null", "w");
  ck_assert_int_eq(vd_verb_shadow(example_rules_argv(ok_argv, data, NULL), ok_argv, null, null), 0);

  struct {
    const char *deployment, *flag, *path, *named;
  } refused[] = {
      {example, "--model", "/nonexistent", "/nonexistent"},
      {example, "--model", junk, junk},
      {triage_example, "--model", junk, junk},
      {broken, "--rules", example_rules, "promotions/model refused"},
  };
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    char *argv[] = {"shadow",
                    "--deployment",
                    (char *)refused[i].deployment,
                    (char *)refused[i].flag,
                    (char *)refused[i].path,
                    "--data-dir",
                    data,
                    NULL};
    char *out_text = NULL, *err_text = NULL;
    int status = run_shadow(7, argv, &out_text, &err_text);
    ck_assert_msg(status == 1, "case %zu: exit %d: %s%s", i, status, out_text, err_text);
    ck_assert_msg(strstr(err_text, "does not load") && strstr(err_text, "refused") &&
                      strstr(err_text, refused[i].named),
                  "case %zu: %s", i, err_text);
    ck_assert_str_eq(out_text, ""); /* no report of a rules-only run */
    free(out_text);
    free(err_text);
  }
  fclose(null);
  snprintf(cmd, sizeof cmd, "rm -rf %s", work);
  run(cmd);
}
END_TEST

/* Over 0 decisions (a window the log holds none in) the report says so instead of printing a
 * distribution of nothing (+nan). */
START_TEST(no_decisions_are_reported_as_such) {
  char work[] = "/tmp/vd-shadow-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(work));
  char data[512], cmd[1024];
  snprintf(data, sizeof data, "%s/data", work);
  ck_assert_int_eq(mkdir(data, 0755), 0);
  log_one_decision(data); /* logged 2025-11-24 */
  char *argv[10];
  char *out_text = NULL, *err_text = NULL;
  int status = run_shadow(example_rules_argv(argv, data, "2026-01-01T00:00:00Z"), argv, &out_text,
                          &err_text);
  ck_assert_msg(status == 0, "exit %d: %s%s", status, out_text, err_text);
  ck_assert_msg(strstr(out_text,
                       "no decisions: the decision log holds no decision of deployment "
                       "promotions from 2026-01-01T00:00:00Z; nothing to compare"),
                "%s", out_text);
  ck_assert_msg(!strstr(out_text, "nan"), "%s", out_text);
  free(out_text);
  free(err_text);
  snprintf(cmd, sizeof cmd, "rm -rf %s", work);
  run(cmd);
}
END_TEST

/* Only the candidates the model scored are in a score distribution: a candidate a rule denies
 * before the model has a 0 in its trace that nothing computed. A candidate rule set denying every
 * candidate of the logged decision before the model leaves the "after" side empty: count 0 and,
 * in --json, null statistics (a mean of nothing is no number, not 0.0). */
START_TEST(denied_candidates_are_not_scores) {
  char work[] = "/tmp/vd-shadow-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(work));
  char data[512], cmd[1024], rules[512];
  snprintf(data, sizeof data, "%s/data", work);
  ck_assert_int_eq(mkdir(data, 0755), 0);
  log_one_decision(data);
  snprintf(cmd, sizeof cmd, "cp %s/schema.yaml %s/ && cp %s %s/rules.yaml", example, work,
           example_rules, work);
  run(cmd);
  snprintf(rules, sizeof rules, "%s/rules.yaml", work);
  /* the new rule goes first under `rules:` (the file's own tests never use history 612.5) */
  snprintf(cmd, sizeof cmd,
           "sed -i 's/^rules:$/rules:\\n  - id: pause-this-customer\\n    stage: before_model\\n"
           "    when: subject.history == 612.5\\n    then: { deny: Paused }\\n/' %s",
           rules);
  run(cmd);
  char *argv[12];
  int argc = example_rules_argv(argv, data, NULL);
  argv[4] = rules;
  argv[argc++] = "--json";
  argv[argc] = NULL;
  char *out_text = NULL, *err_text = NULL;
  int status = run_shadow(argc, argv, &out_text, &err_text);
  ck_assert_msg(status == 0, "exit %d: %s%s", status, out_text, err_text);
  json_error_t je;
  json_t *report = json_loads(out_text, 0, &je);
  ck_assert_msg(report != NULL, "%s: %s", je.text, out_text);
  ck_assert_int_eq(json_integer_value(json_object_get(report, "compared")), 1);
  const json_t *scores = json_object_get(report, "scores");
  const json_t *before = json_object_get(scores, "before"),
               *after = json_object_get(scores, "after");
  ck_assert_int_ge(json_integer_value(json_object_get(before, "count")), 1);
  ck_assert_msg(json_is_real(json_object_get(before, "mean")), "%s", out_text);
  ck_assert_msg(json_integer_value(json_object_get(after, "count")) == 0, "%s", out_text);
  const char *stats[] = {"mean", "p10", "p50", "p90"};
  for (int i = 0; i < 4; i++)
    ck_assert_msg(json_is_null(json_object_get(after, stats[i])), "after.%s: %s", stats[i],
                  out_text);
  json_decref(report);
  free(out_text);
  free(err_text);
  /* the text report says so too */
  argv[--argc] = NULL;
  status = run_shadow(argc, argv, &out_text, &err_text);
  ck_assert_msg(status == 0, "exit %d: %s%s", status, out_text, err_text);
  ck_assert_msg(strstr(out_text, "after  (     0 scores)          no scores"), "%s", out_text);
  ck_assert_msg(strstr(out_text, "(no score, decided by pause-this-customer)"), "%s", out_text);
  free(out_text);
  free(err_text);
  snprintf(cmd, sizeof cmd, "rm -rf %s", work);
  run(cmd);
}
END_TEST

int main(void) {
  Suite *s = suite_create("shadow");
  TCase *tc = tcase_create("shadow");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, a_candidate_model_that_does_not_load_is_refused);
  tcase_add_test(tc, no_decisions_are_reported_as_such);
  tcase_add_test(tc, denied_candidates_are_not_scores);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
