/* vd_replay: deployments stored content-addressed and rebuilt exactly, replay identical on the
 * stored versions, replay reporting differences, an altered store refused, and the replay verb
 * against a decision log. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>
#include "vd_bundle.h"
#include "vd_cli_verbs.h"
#include "vd_decision_log.h"
#include "vd_deployment.h"
#include "vd_pipeline.h"
#include "vd_replay.h"
#include "vd_test.h"
#include "vd_trace.h"

static const char *example = VERDICT_SOURCE_DIR "/examples/promotions";

static json_t *customer(const char *id, int emails) {
  return json_pack("{s:{s:s, s:i, s:f, s:b, s:b, s:s, s:b, s:s, s:b, s:i, s:s}}", "subject", "id",
                   id, "recency", 3, "history", 612.5, "mens", 1, "womens", 0, "zip_code", "Urban",
                   "newbie", 0, "channel", "Web", "marketing_opt_out", 0, "emails_last_30d", emails,
                   "country", "US");
}

static json_t *decide_masked(const vd_deployment *d, json_t *request, const char *id, int64_t now,
                             const vd_trace_mask *mask) {
  vd_pipeline_input in = {
      .request = request, .decision_id = id, .now_us = now, .max_results = 1, .mask = mask};
  vd_decision out = {0};
  vd_diags violations = {0};
  vd_error err = {0};
  ck_assert_msg(vd_pipeline_decide(d, &in, &out, &violations, &err) == VD_PIPELINE_OK, "%s",
                err.message);
  vd_diags_free(&violations);
  json_t *trace = json_incref(out.trace);
  vd_decision_clear(&out);
  json_decref(request);
  return trace;
}

static json_t *decide(const vd_deployment *d, json_t *request, const char *id, int64_t now) {
  return decide_masked(d, request, id, now, NULL);
}

static char *temp_dir(void) {
  char *dir = strdup("/tmp/vd-replay-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  return dir;
}

static void remove_dir(char *dir) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  ck_assert_int_eq(system(cmd), 0);
  free(dir);
}

START_TEST(a_stored_deployment_rebuilds_to_the_same_version_and_replays_identically) {
  char *data = temp_dir();
  vd_diags diags = {0};
  vd_deployment *d =
      vd_deployment_load(example, &(vd_deployment_load_options){.data_dir = data}, &diags);
  ck_assert_msg(d != NULL, "%s", diags.count ? diags.items[0].message : "");
  ck_assert_int_eq(strlen(vd_deployment_version(d)), 64);
  vd_deployment *stored = vd_deployment_load_stored(data, vd_deployment_version(d), &diags);
  ck_assert_msg(stored != NULL, "%s", diags.count ? diags.items[0].message : "");
  ck_assert_str_eq(vd_deployment_version(stored), vd_deployment_version(d));
  ck_assert_str_eq(vd_ruleset_version(vd_deployment_ruleset(stored)),
                   vd_ruleset_version(vd_deployment_ruleset(d)));
  ck_assert_str_eq(vd_model_version(vd_deployment_model(stored)),
                   vd_model_version(vd_deployment_model(d)));
  /* The trace names the version; the replayer rebuilds it from the store: identical. */
  json_t *trace =
      decide(d, customer("c1", 1), "01a23c2a-7289-7441-81f8-c38f843ea62d", 1764000000123456);
  ck_assert_str_eq(
      json_string_value(json_object_get(json_object_get(trace, "deployment"), "version")),
      vd_deployment_version(d));
  vd_replayer *r = vd_replayer_new(data);
  vd_error err = {0};
  json_t *again = vd_replayer_decide(r, trace, &err);
  ck_assert_msg(again != NULL, "%s", err.message);
  size_t total = 1;
  json_decref(vd_trace_diff(trace, again, 10, &total));
  ck_assert_int_eq(total, 0);
  json_decref(again);
  /* A trace with a masked subject.id (a 76-character HMAC where the schema allows 64) still
   * replays identically: no rule reads it, so a stand-in decides the same. */
  const vd_trace_mask mask = {(const unsigned char *)"k", 1, (const char *const[]){"subject.id"},
                              1};
  json_t *masked = decide_masked(d, customer("c1", 1), "01a23c2a-7289-7441-81f8-c38f843ea62e",
                                 1764000000123456, &mask);
  ck_assert_int_eq(
      strncmp(json_string_value(json_object_get(
                  json_object_get(json_object_get(masked, "request"), "subject"), "id")),
              "hmac-sha256:", 12),
      0);
  again = vd_replayer_decide(r, masked, &err);
  ck_assert_msg(again != NULL, "%s", err.message);
  json_decref(vd_trace_diff(masked, again, 10, &total));
  ck_assert_int_eq(total, 0);
  json_decref(again);
  json_decref(masked);
  /* A stored request that differs (here: edited) replays to a different decision. */
  json_t *edited = json_deep_copy(trace);
  json_object_set_new(json_object_get(json_object_get(edited, "request"), "subject"),
                      "emails_last_30d", json_integer(6));
  again = vd_replayer_decide(r, edited, &err);
  ck_assert_ptr_nonnull(again);
  json_t *diff = vd_trace_diff(edited, again, 100, &total);
  ck_assert_int_gt(total, 0);
  bool action_changed = false;
  size_t i;
  json_t *x;
  json_array_foreach(diff, i, x) {
    action_changed = action_changed || strcmp(json_string_value(json_object_get(x, "path")),
                                              "candidates[0].outcome.action") == 0;
  }
  ck_assert(action_changed);
  json_decref(diff);
  json_decref(again);
  json_decref(edited);
  /* An unknown version is an error naming it. */
  json_t *unknown = json_deep_copy(trace);
  json_object_set_new(
      json_object_get(unknown, "deployment"), "version",
      json_string("0000000000000000000000000000000000000000000000000000000000000000"));
  ck_assert_ptr_null(vd_replayer_decide(r, unknown, &err));
  ck_assert_ptr_nonnull(strstr(err.message, "0000000000000000"));
  json_decref(unknown);
  vd_replayer_free(r);
  /* An altered store is refused. */
  char path[1024];
  snprintf(path, sizeof path, "%s/deployments/%s/deployment.json", data, vd_deployment_version(d));
  json_t *doc = json_load_file(path, 0, NULL);
  ck_assert_ptr_nonnull(doc);
  json_object_set_new(doc, "max_results", json_integer(1));
  chmod(path, 0644);
  ck_assert_int_eq(json_dump_file(doc, path, JSON_INDENT(2)), 0);
  json_decref(doc);
  vd_diags_free(&diags);
  ck_assert_ptr_null(vd_deployment_load_stored(data, vd_deployment_version(d), &diags));
  ck_assert_ptr_nonnull(strstr(diags.items[0].message, "altered"));
  vd_diags_free(&diags);
  json_decref(trace);
  vd_deployment_release(stored);
  vd_deployment_release(d);
  remove_dir(data);
}
END_TEST

START_TEST(the_replay_verb_reads_the_log) {
  char *data = temp_dir();
  vd_diags diags = {0};
  vd_deployment *d =
      vd_deployment_load(example, &(vd_deployment_load_options){.data_dir = data}, &diags);
  ck_assert_ptr_nonnull(d);
  char log_path[512];
  snprintf(log_path, sizeof log_path, "%s/decisions.db", data);
  vd_error err = {0};
  vd_decision_log *log = vd_decision_log_open(&(vd_decision_log_config){.path = log_path}, &err);
  ck_assert_msg(log != NULL, "%s", err.message);
  const char *ids[] = {"01a23c2a-7289-7441-81f8-c38f843ea620",
                       "01a23c2a-7289-7441-81f8-c38f843ea621"};
  for (int i = 0; i < 2; i++) {
    json_t *trace = decide(d, customer("c1", i * 5), ids[i], 1764000000000000 + i);
    char *text = json_dumps(trace, JSON_COMPACT);
    vd_decision_record rec = {.id = ids[i],
                              .kind = "promotions",
                              .subject_id = "c1",
                              .timestamp_us = 1764000000000000 + i,
                              .ruleset_version = vd_ruleset_version(vd_deployment_ruleset(d)),
                              .trace_json = text,
                              .trace_len = strlen(text)};
    ck_assert_int_eq(vd_decision_log_append(log, &rec, &err), VD_LOG_OK);
    free(text);
    json_decref(trace);
  }
  vd_decision_log_close(log);
  char *argv[] = {"replay", (char *)ids[1], "--data-dir", data, NULL};
  char *out_text = NULL;
  size_t out_size = 0;
  FILE *out = open_memstream(&out_text, &out_size);
  FILE *errf = fopen("/dev/null", "w");
  ck_assert_int_eq(vd_verb_replay(4, argv, out, errf), 0);
  fclose(out);
  ck_assert_ptr_nonnull(strstr(out_text, ": identical"));
  free(out_text);
  char *range[] = {"replay", "--since", "2025-01-01T00:00:00Z", "--data-dir", data, NULL};
  out = open_memstream(&out_text, &out_size);
  ck_assert_int_eq(vd_verb_replay(5, range, out, errf), 0);
  fclose(out);
  ck_assert_ptr_nonnull(strstr(out_text, "replayed 2 decisions: 2 identical, 0 different"));
  free(out_text);
  /* one decision is one: "replayed 1 decision", not "1 decisions" */
  char *first[] = {"replay",
                   "--since",
                   "2025-01-01T00:00:00Z",
                   "--until",
                   "2025-11-24T16:00:00.000001Z",
                   "--data-dir",
                   data,
                   NULL};
  out = open_memstream(&out_text, &out_size);
  ck_assert_int_eq(vd_verb_replay(7, first, out, errf), 0);
  fclose(out);
  ck_assert_msg(strstr(out_text, "replayed 1 decision: 1 identical, 0 different"), "%s", out_text);
  free(out_text);
  /* an explicit bound at the epoch is a bound (0 was read as "none"), and a bad one is named */
  char *epoch[] = {
      "replay", "--since", "1960-01-01T00:00:00Z", "--until", "1970-01-01T00:00:00Z", "--data-dir",
      data,     NULL};
  out = open_memstream(&out_text, &out_size);
  ck_assert_int_eq(vd_verb_replay(7, epoch, out, errf), 0);
  fclose(out);
  ck_assert_ptr_nonnull(strstr(out_text, "replayed 0 decisions"));
  free(out_text);
  char *bad_until[] = {"replay", "--since", "2025-01-01T00:00:00Z", "--until", "soon", "--data-dir",
                       data,     NULL};
  char *err_text = NULL;
  size_t err_size = 0;
  FILE *errs = open_memstream(&err_text, &err_size);
  ck_assert_int_eq(vd_verb_replay(7, bad_until, errf, errs), 2);
  fclose(errs);
  ck_assert_msg(strstr(err_text, "--until must be an RFC 3339 time") && strstr(err_text, "'soon'"),
                "%s", err_text);
  free(err_text);
  /* Usage mistakes exit 2; an unknown id exits 1. */
  char *bad[] = {"replay", "--data-dir", data, NULL};
  ck_assert_int_eq(vd_verb_replay(3, bad, stdout, errf), 2);
  char *missing[] = {"replay", "01a23c2a-7289-7441-81f8-c38f843ea629", "--data-dir", data, NULL};
  ck_assert_int_eq(vd_verb_replay(4, missing, stdout, errf), 1);
  char *nolog[] = {"replay", (char *)ids[0], "--data-dir", "/nonexistent", NULL};
  ck_assert_int_eq(vd_verb_replay(4, nolog, stdout, errf), 1);
  /* verdict explain on the same log: text by default, json is the trace; usage mistakes exit 2. */
  char *explain[] = {"explain", (char *)ids[1], "--data-dir", data, NULL};
  out = open_memstream(&out_text, &out_size);
  ck_assert_int_eq(vd_verb_explain(4, explain, out, errf), 0);
  fclose(out);
  ck_assert_ptr_nonnull(strstr(out_text,
                               "mens-email       NOT OFFERED: declined by rule "
                               "frequency-cap"));
  ck_assert_ptr_nonnull(strstr(out_text, "At most four marketing e-mails in 30 days."));
  free(out_text);
  char *as_json[] = {"explain", (char *)ids[0], "--format", "json", "--data-dir", data, NULL};
  out = open_memstream(&out_text, &out_size);
  ck_assert_int_eq(vd_verb_explain(6, as_json, out, errf), 0);
  fclose(out);
  json_t *parsed = json_loads(out_text, 0, NULL);
  ck_assert_str_eq(json_string_value(json_object_get(parsed, "id")), ids[0]);
  json_decref(parsed);
  free(out_text);
  char *bad_format[] = {"explain", (char *)ids[0], "--format", "pdf", "--data-dir", data, NULL};
  ck_assert_int_eq(vd_verb_explain(6, bad_format, stdout, errf), 2);
  char *no_rules[] = {"shadow", "--deployment", (char *)example, "--data-dir", data, NULL};
  ck_assert_int_eq(vd_verb_shadow(5, no_rules, stdout, errf), 2);
  char *bad_rules[] = {
      "shadow", "--deployment", (char *)example, "--rules", "/nonexistent.yaml", "--data-dir", data,
      NULL};
  ck_assert_int_eq(vd_verb_shadow(7, bad_rules, stdout, errf), 1);
  fclose(errf);
  vd_diags_free(&diags);
  vd_deployment_release(d);
  remove_dir(data);
}
END_TEST

/* Appends " [edited]" to every reason text of the bundle's manifest (what a product team does to
 * reword an explanation). */
static void edit_reason_texts(const char *bundle) {
  char path[1200];
  snprintf(path, sizeof path, "%s/manifest.json", bundle);
  json_t *m = json_load_file(path, 0, NULL);
  ck_assert_ptr_nonnull(m);
  const char *feature, *direction;
  json_t *texts, *text;
  json_object_foreach(json_object_get(m, "reasons"), feature, texts) {
    json_object_foreach(texts, direction, text) {
      char edited[512];
      snprintf(edited, sizeof edited, "%s [edited]", json_string_value(text));
      json_string_set(text, edited);
    }
  }
  ck_assert_int_eq(json_dump_file(m, path, JSON_INDENT(2)), 0);
  json_decref(m);
}

static bool stored_model(const char *data, const char *version) {
  char path[1200];
  snprintf(path, sizeof path, "%s/models/%s/manifest.json", data, version);
  return access(path, F_OK) == 0;
}

/* A bundle's version covers its manifest: rewording a reason text gives a new model version and
 * a new deployment version, the store keeps both bundles side by side, and each decision replays
 * identically on the manifest it was made with (a stale manifest under an unchanged version made
 * the decisions after the edit replay with the old texts). */
START_TEST(an_edited_manifest_is_a_new_version_and_both_replay) {
  char *data = temp_dir(), *work = temp_dir();
  char cmd[2048], deployment[1024], bundle[1100];
  snprintf(deployment, sizeof deployment, "%s/promotions", work);
  snprintf(bundle, sizeof bundle, "%s/model", deployment);
  snprintf(cmd, sizeof cmd, "cp -r %s %s", example, deployment);
  ck_assert_int_eq(system(cmd), 0);
  vd_diags diags = {0};
  vd_deployment_load_options options = {.data_dir = data};
  vd_deployment *before = vd_deployment_load(deployment, &options, &diags);
  ck_assert_msg(before != NULL, "%s", diags.count ? diags.items[0].message : "");
  json_t *old_trace =
      decide(before, customer("c1", 1), "01a23c2a-7289-7441-81f8-c38f843ea630", 1764000000000000);
  char old_model[VD_SHA256_HEX_SIZE];
  snprintf(old_model, sizeof old_model, "%s", vd_model_version(vd_deployment_model(before)));

  edit_reason_texts(bundle);
  /* Until it is re-stamped, the edited bundle is refused, saying what to do. */
  vd_error err = {0};
  ck_assert_ptr_null(vd_model_load(bundle, NULL, &err));
  ck_assert_msg(strstr(err.message, "manifest.json") && strstr(err.message, "models rehash"), "%s",
                err.message);
  char new_model[VD_SHA256_HEX_SIZE];
  bool changed = false;
  ck_assert_msg(vd_bundle_rehash(bundle, new_model, &changed, &err), "%s", err.message);
  ck_assert(changed);
  ck_assert_str_ne(new_model, old_model);
  vd_deployment *after = vd_deployment_load(deployment, &options, &diags);
  ck_assert_msg(after != NULL, "%s", diags.count ? diags.items[0].message : "");
  ck_assert_str_eq(vd_model_version(vd_deployment_model(after)), new_model);
  ck_assert_str_ne(vd_deployment_version(after), vd_deployment_version(before));
  ck_assert(stored_model(data, old_model) && stored_model(data, new_model));
  json_t *new_trace =
      decide(after, customer("c1", 1), "01a23c2a-7289-7441-81f8-c38f843ea631", 1764000000000001);
  char *old_text = json_dumps(old_trace, 0), *new_text = json_dumps(new_trace, 0);
  ck_assert_ptr_null(strstr(old_text, "[edited]"));
  ck_assert_ptr_nonnull(strstr(new_text, "[edited]"));
  free(old_text);
  free(new_text);
  vd_replayer *r = vd_replayer_new(data);
  json_t *traces[] = {old_trace, new_trace};
  for (int i = 0; i < 2; i++) {
    json_t *again = vd_replayer_decide(r, traces[i], &err);
    ck_assert_msg(again != NULL, "%s", err.message);
    size_t total = 1;
    json_t *diff = vd_trace_diff(traces[i], again, 10, &total);
    char *shown = json_dumps(diff, 0);
    ck_assert_msg(total == 0, "decision %d replays different: %s", i, shown);
    free(shown);
    json_decref(diff);
    json_decref(again);
  }
  vd_replayer_free(r);
  json_decref(old_trace);
  json_decref(new_trace);
  vd_deployment_release(before);
  vd_deployment_release(after);
  vd_diags_free(&diags);
  remove_dir(work);
  remove_dir(data);
}
END_TEST

int main(void) {
  Suite *s = suite_create("replay");
  TCase *tc = tcase_create("replay");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, a_stored_deployment_rebuilds_to_the_same_version_and_replays_identically);
  tcase_add_test(tc, the_replay_verb_reads_the_log);
  tcase_add_test(tc, an_edited_manifest_is_a_new_version_and_both_replay);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
