/* An integration run of the real `verdict serve`, then on its data folder: every stored trace
 * validates against explain/trace.schema.json, `verdict replay --since` reproduces EVERY decision
 * exactly, `verdict explain` and GET /v1/decisions/{id}/explanation answer, and `verdict shadow`
 * reports a rule change whose effect the test counts independently from the traffic it sent.
 * (Replay reporting differences is tested in tests/engine/test_replay.c.) */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "vd_itest.h"
#include "vd_json_schema.h"
#include "vd_test.h"

enum { MAX_ACTIONS = 8 };

/* Runs a command; returns its exit status and its stdout (caller frees). */
static int run(const char *cmd, char **output) {
  FILE *p = popen(cmd, "r");
  ck_assert_ptr_nonnull(p);
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  size_t got;
  while ((got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
    len += got;
    if (cap - len < 4096) buf = realloc(buf, cap *= 2);
  }
  buf[len] = '\0';
  int status = pclose(p);
  *output = buf;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The rule file of the deployment copy with one more before_model rule: deny every customer who
 * spent more than 500. */
static void write_candidate_rules(const vd_itest_server *s, char *path, size_t size) {
  char original[512];
  snprintf(original, sizeof original, "%s/rules.yaml", s->deployment);
  FILE *f = fopen(original, "r");
  ck_assert_ptr_nonnull(f);
  char *text = NULL;
  size_t n = 0;
  ck_assert(getdelim(&text, &n, '\0', f) > 0);
  fclose(f);
  char *tests = strstr(text, "\ntests:");
  ck_assert_ptr_nonnull(tests);
  snprintf(path, size, "%s/rules-candidate.yaml", s->deployment);
  FILE *out = fopen(path, "w");
  ck_assert_ptr_nonnull(out);
  fwrite(text, 1, (size_t)(tests - text), out);
  fputs(
      "\n  - id: high-spender-pause\n"
      "    description: Customers who spent over $500 are handled by account managers.\n"
      "    stage: before_model\n"
      "    when: subject.history > 500.0\n"
      "    then: { deny: \"Handled by an account manager\" }\n",
      out);
  fputs(tests, out);
  fclose(out);
  free(text);
}

START_TEST(every_decision_replays_identically_and_shadow_counts_are_exact) {
  char **lines = NULL;
  size_t wanted = getenv("VERDICT_UNDER_SANITIZER") ? 60 : 400;
  size_t rows = vd_itest_hillstrom_rows(wanted, &lines);
  if (rows == 0) return; /* skipped: no shared data */
  vd_itest_server s;
  ck_assert(vd_itest_prepare(&s, NULL));
  ck_assert(vd_itest_start(&s));

  /* Independent expectation: for customers with history > 500, every candidate that was not
   * denied becomes denied; other decisions do not change. */
  char keys[64][160];
  size_t counts[64] = {0}, key_count = 0, expected_changed = 0, decisions = 0;
  char first_id[64] = "";
  for (size_t i = 0; i < rows; i++) {
    char *body = vd_itest_hillstrom_request(lines[i], (int)i);
    ck_assert_ptr_nonnull(body);
    json_t *request = json_loads(body, 0, NULL);
    if (i % 5 == 0) { /* some requests ask for one result only (capped candidates) */
      json_object_set_new(request, "max_results", json_integer(1));
      free(body);
      body = json_dumps(request, JSON_COMPACT);
    }
    vd_itest_response r =
        vd_itest_call(&s, "POST", "/v1/promotions/score", "demo-score", body, strlen(body));
    ck_assert_int_eq(r.status, 200);
    decisions++;
    if (!*first_id)
      snprintf(first_id, sizeof first_id, "%s",
               json_string_value(json_object_get(r.json, "decision_id")));
    double history =
        json_number_value(json_object_get(json_object_get(request, "subject"), "history"));
    if (history > 500.0) {
      /* The trace lists every candidate; the response leaves capped ones out: both deployment
       * candidates are in the trace, so count from the stored trace below for capped ones. */
      json_t *trace_r;
      char path[128];
      snprintf(path, sizeof path, "/v1/decisions/%s",
               json_string_value(json_object_get(r.json, "decision_id")));
      vd_itest_response t = vd_itest_call(&s, "GET", path, "demo-compliance", NULL, 0);
      ck_assert_int_eq(t.status, 200);
      trace_r = t.json;
      bool changed = false;
      size_t k;
      json_t *c;
      json_array_foreach(json_object_get(trace_r, "candidates"), k, c) {
        const char *action =
            json_string_value(json_object_get(json_object_get(c, "outcome"), "action"));
        if (strcmp(action, "deny") == 0) continue;
        changed = true;
        char key[160];
        snprintf(key, sizeof key, "%s: %s -> deny",
                 json_string_value(json_object_get(c, "candidate")), action);
        size_t j = 0;
        while (j < key_count && strcmp(keys[j], key) != 0) j++;
        if (j == key_count) snprintf(keys[key_count++], sizeof keys[0], "%s", key);
        counts[j]++;
      }
      if (changed) expected_changed++;
      vd_itest_response_free(&t);
    }
    json_decref(request);
    vd_itest_response_free(&r);
    free(body);
    free(lines[i]);
  }
  free(lines);
  ck_assert_int_gt(expected_changed, 0);

  /* The explanation endpoint answers for a real decision. */
  char path[160];
  snprintf(path, sizeof path, "/v1/decisions/%s/explanation?format=text", first_id);
  vd_itest_response e = vd_itest_call(&s, "GET", path, "demo-compliance", NULL, 0);
  ck_assert_int_eq(e.status, 200);
  ck_assert_ptr_nonnull(strstr(e.content_type, "text/plain"));
  ck_assert_ptr_nonnull(strstr(e.body, "VERSIONS USED"));
  vd_itest_response_free(&e);
  snprintf(path, sizeof path, "/v1/decisions/%s/explanation?format=html", first_id);
  e = vd_itest_call(&s, "GET", path, "demo-compliance", NULL, 0);
  ck_assert_int_eq(e.status, 200);
  ck_assert_ptr_nonnull(strstr(e.body, "<svg"));
  vd_itest_response_free(&e);
  /* Every stored trace validates against the schema. */
  json_t *schema = json_load_file(VERDICT_SOURCE_DIR "/explain/trace.schema.json", 0, NULL);
  ck_assert_ptr_nonnull(schema);
  vd_itest_response all =
      vd_itest_call(&s, "GET", "/v1/decisions?limit=1000", "demo-compliance", NULL, 0);
  ck_assert_int_eq(all.status, 200);
  json_t *stored = json_object_get(all.json, "decisions");
  ck_assert_int_eq(json_array_size(stored), decisions);
  size_t index;
  json_t *trace;
  json_array_foreach(stored, index, trace) {
    vd_diags bad = {0};
    ck_assert_msg(vd_json_schema_validate(schema, trace, &bad), "trace %zu: %s: %s", index,
                  bad.count ? bad.items[0].field : "", bad.count ? bad.items[0].message : "");
  }
  vd_itest_response_free(&all);
  ck_assert_int_eq(vd_itest_stop(&s, SIGTERM), 0);
  char cmd[2048], *out = NULL;
  snprintf(cmd, sizeof cmd, "%s explain %s --format json --data-dir %s", VERDICT_EXE, first_id,
           s.data_dir);
  ck_assert_int_eq(run(cmd, &out), 0);
  json_t *one = json_loads(out, 0, NULL);
  ck_assert_ptr_nonnull(one);
  vd_diags diags = {0};
  ck_assert_msg(vd_json_schema_validate(schema, one, &diags), "%s: %s",
                diags.count ? diags.items[0].field : "", diags.count ? diags.items[0].message : "");
  json_decref(one);
  free(out);

  /* Replay every decision of the run: all identical. */
  snprintf(cmd, sizeof cmd, "%s replay --since 2000-01-01T00:00:00Z --quiet --data-dir %s",
           VERDICT_EXE, s.data_dir);
  int status = run(cmd, &out);
  char expect[128];
  snprintf(expect, sizeof expect, "replayed %zu decisions: %zu identical, 0 different, 0 could",
           decisions, decisions);
  ck_assert_msg(status == 0 && strstr(out, expect), "status %d:\n%s", status, out);
  free(out);
  snprintf(cmd, sizeof cmd, "%s replay %s --data-dir %s", VERDICT_EXE, first_id, s.data_dir);
  ck_assert_int_eq(run(cmd, &out), 0);
  ck_assert_ptr_nonnull(strstr(out, ": identical"));
  free(out);

  /* Shadow evaluation of the new rule: the counts the test expects. */
  char rules[512];
  write_candidate_rules(&s, rules, sizeof rules);
  snprintf(cmd, sizeof cmd, "%s shadow --deployment %s --rules %s --data-dir %s --json",
           VERDICT_EXE, s.deployment, rules, s.data_dir);
  status = run(cmd, &out);
  ck_assert_msg(status == 0, "%s", out);
  json_t *report = json_loads(out, 0, NULL);
  ck_assert_msg(report != NULL, "%s", out);
  ck_assert_int_eq(json_integer_value(json_object_get(report, "compared")), decisions);
  ck_assert_int_eq(json_integer_value(json_object_get(report, "changed")), expected_changed);
  json_t *transitions = json_object_get(report, "transitions");
  ck_assert_int_eq(json_array_size(transitions), key_count);
  size_t i;
  json_t *t;
  json_array_foreach(transitions, i, t) {
    char key[160];
    snprintf(key, sizeof key, "%s: %s -> %s", json_string_value(json_object_get(t, "candidate")),
             json_string_value(json_object_get(t, "before")),
             json_string_value(json_object_get(t, "after")));
    size_t j = 0;
    while (j < key_count && strcmp(keys[j], key) != 0) j++;
    ck_assert_msg(j < key_count, "unexpected transition %s", key);
    ck_assert_int_eq(json_integer_value(json_object_get(t, "count")), counts[j]);
  }
  /* The cause: the new rule, for every changed candidate. */
  size_t total = 0;
  for (size_t j = 0; j < key_count; j++) total += counts[j];
  const json_t *cause = json_array_get(json_object_get(report, "causes"), 0);
  ck_assert_str_eq(json_string_value(json_object_get(cause, "rule")),
                   "high-spender-pause (new) now applies");
  ck_assert_int_eq(json_integer_value(json_object_get(cause, "candidates")), total);
  /* A sample with both traces. */
  const json_t *sample = json_array_get(json_object_get(report, "samples"), 0);
  ck_assert_ptr_nonnull(json_object_get(sample, "before"));
  ck_assert_ptr_nonnull(json_object_get(sample, "after"));
  json_decref(report);
  free(out);
  /* The text report says the same. */
  snprintf(cmd, sizeof cmd, "%s shadow --deployment %s --rules %s --data-dir %s", VERDICT_EXE,
           s.deployment, rules, s.data_dir);
  ck_assert_int_eq(run(cmd, &out), 0);
  char line[128];
  snprintf(line, sizeof line, "decisions changed: %zu of %zu", expected_changed, decisions);
  ck_assert_msg(strstr(out, line), "%s", out);
  ck_assert_ptr_nonnull(strstr(out, "score distribution"));
  free(out);
  json_decref(schema);
  vd_itest_cleanup(&s);
}
END_TEST

START_TEST(serve_refuses_masking_a_field_a_rule_reads) {
  vd_itest_server s;
  ck_assert(vd_itest_prepare(&s, "mask_fields: [subject.id, subject.country]\n"));
  char cmd[1024], *out = NULL;
  snprintf(cmd, sizeof cmd, "%s serve --config %s 2>&1", VERDICT_EXE, s.config);
  int status = run(cmd, &out);
  ck_assert_int_eq(status, 1);
  ck_assert_msg(strstr(out, "mask_fields: subject.country is read by rule region-restriction"),
                "%s", out);
  ck_assert_ptr_null(strstr(out, "subject.id is read"));
  free(out);
  vd_itest_cleanup(&s);
}
END_TEST

int main(void) {
  Suite *suite = suite_create("replay");
  TCase *tc = tcase_create("replay");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, every_decision_replays_identically_and_shadow_counts_are_exact);
  tcase_add_test(tc, serve_refuses_masking_a_field_a_rule_reads);
  suite_add_tcase(suite, tc);
  return vd_test_run(suite);
}
