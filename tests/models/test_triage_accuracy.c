/* The shipped triage bundle (examples/triage/model) on the validation split: accuracy must not
 * drop more than 1 point below the manifest's figure; the manifest's other figures are what the
 * bundle really does (the temperature and threshold were fitted on out-of-fold predictions of
 * the training split, so these are out-of-sample figures) and meet issue 7's targets; native
 * scoring equals XGBoost on every row; calibration helped. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "support_models.h"
#include "support_triage.h"
#include "vd_calibration.h"
#include "vd_test.h"
#include "vd_triage.h"

static double metric(const vd_triage_model *m, const char *key) {
  const json_t *v = json_object_get(json_object_get(vd_triage_manifest(m), "metrics"), key);
  ck_assert_msg(json_is_number(v), "manifest metrics.%s is missing", key);
  return json_number_value(v);
}

static double at_threshold(const vd_triage_model *m, const char *key) {
  const json_t *p = json_object_get(
      json_object_get(json_object_get(vd_triage_manifest(m), "metrics"), "at_threshold"), key);
  ck_assert_msg(json_is_number(p), "manifest metrics.at_threshold.%s is missing", key);
  return json_number_value(p);
}

static vd_triage_model *shipped(void) {
  vd_error err = {0};
  vd_triage_model *m = vd_triage_load(TRIAGE_SHIPPED_BUNDLE, &err);
  ck_assert_msg(m != NULL, "the shipped bundle does not load: %s", err.message);
  return m;
}

START_TEST(validation_accuracy_holds_the_recorded_figure) {
  triage_rows val;
  if (!triage_read_rows("val.jsonl", &val)) return;
  vd_triage_model *m = shipped();
  vd_triage_scratch *s = vd_triage_scratch_new(m);
  const char *oos = vd_triage_out_of_scope_class(m);
  size_t in = 0, in_ok = 0, n_oos = 0, oos_ok = 0, in_esc = 0, oos_caught = 0, kept = 0,
         kept_ok = 0;
  double *conf_raw = malloc(val.count * sizeof(double)), *conf = malloc(val.count * sizeof(double));
  bool *correct = malloc(val.count * sizeof(bool));
  size_t k = vd_triage_class_count(m);
  double *margins = malloc(k * sizeof(double)), *p = malloc(k * sizeof(double));
  for (size_t r = 0; r < val.count; r++) {
    vd_triage_result res;
    ck_assert(vd_triage_score(m, s, val.text[r], strlen(val.text[r]), 1, false, &res, NULL));
    bool ok = strcmp(res.top[0].intent, val.intent[r]) == 0;
    correct[r] = ok;
    conf[r] = res.confidence;
    ck_assert(vd_triage_margins(m, s, val.text[r], strlen(val.text[r]), margins, NULL));
    vd_softmax(margins, k, 1.0, p);
    double max = 0;
    for (size_t c = 0; c < k; c++) max = p[c] > max ? p[c] : max;
    conf_raw[r] = max;
    if (strcmp(val.intent[r], oos) == 0) {
      n_oos++;
      oos_ok += ok;
      oos_caught += res.escalate;
    } else {
      in++;
      in_ok += ok;
      in_esc += res.escalate;
    }
    if (!res.escalate) {
      kept++;
      kept_ok += ok;
    }
  }
  double accuracy = (double)in_ok / (double)in, recorded = metric(m, "in_scope_accuracy");
  printf(
      "triage val: in-scope accuracy %.4f (recorded %.4f), OOS recall %.4f, in-scope escalated "
      "%.4f, OOS caught %.4f, hot-path accuracy %.4f\n",
      accuracy, recorded, (double)oos_ok / (double)n_oos, (double)in_esc / (double)in,
      (double)oos_caught / (double)n_oos, (double)kept_ok / (double)kept);
  ck_assert_msg(accuracy >= recorded - 0.01, "in-scope accuracy %.4f dropped below %.4f - 1 point",
                accuracy, recorded);
  /* The manifest's figures are the bundle's own behaviour on this split. */
  ck_assert_double_eq_tol(accuracy, recorded, 1e-9);
  ck_assert_double_eq_tol((double)oos_ok / (double)n_oos, metric(m, "oos_recall"), 1e-9);
  ck_assert_double_eq_tol((double)in_esc / (double)in, at_threshold(m, "in_scope_escalated"), 1e-9);
  ck_assert_double_eq_tol((double)oos_caught / (double)n_oos, at_threshold(m, "oos_caught"), 1e-9);
  ck_assert_double_eq_tol((double)kept_ok / (double)kept, at_threshold(m, "hot_path_accuracy"),
                          1e-9);
  /* Issue 7's targets on this split: >= 92 % in-scope accuracy, at most the manifest's target
   * (15 %) of in-scope requests escalated, >= 85 % of out-of-scope requests caught (answered
   * oos or escalated), >= 96 % accuracy over the requests the hot path answers itself. */
  const json_t *escalation = json_object_get(vd_triage_manifest(m), "escalation");
  double target = json_number_value(json_object_get(escalation, "target_rate"));
  ck_assert_double_eq(target, 0.15);
  ck_assert_msg(accuracy >= 0.92, "in-scope accuracy %.4f < 92 %%", accuracy);
  ck_assert_msg((double)in_esc / (double)in <= target, "%.4f of in-scope requests escalated",
                (double)in_esc / (double)in);
  ck_assert_msg((double)oos_caught / (double)n_oos >= 0.85, "%.4f of OOS caught",
                (double)oos_caught / (double)n_oos);
  ck_assert_msg((double)kept_ok / (double)kept >= 0.96, "hot-path accuracy %.4f",
                (double)kept_ok / (double)kept);
  /* Calibration: the recorded ECEs are reproduced, and scaling improved it. */
  double before = vd_calibration_ece(conf_raw, correct, val.count, VD_CALIBRATION_ECE_BINS);
  double after = vd_calibration_ece(conf, correct, val.count, VD_CALIBRATION_ECE_BINS);
  ck_assert_double_eq_tol(before, metric(m, "ece_before"), 1e-6);
  ck_assert_double_eq_tol(after, metric(m, "ece_after"), 1e-6);
  ck_assert_msg(after < before, "ECE %g -> %g", before, after);
  free(conf_raw);
  free(conf);
  free(correct);
  free(margins);
  free(p);
  vd_triage_scratch_free(s);
  vd_triage_free(m);
  triage_free_rows(&val);
}
END_TEST

START_TEST(shipped_native_scores_equal_xgboost_on_every_validation_row) {
  triage_rows val;
  if (!triage_read_rows("val.jsonl", &val)) return;
  if (under_sanitizer()) val.count = 500;
  vd_triage_model *m = shipped();
  double *reference = triage_reference_margins(TRIAGE_SHIPPED_BUNDLE, &val);
  vd_triage_scratch *s = vd_triage_scratch_new(m);
  size_t k = vd_triage_class_count(m);
  double *margins = malloc(k * sizeof(double)), max_diff = 0;
  for (size_t r = 0; r < val.count; r++) {
    ck_assert(vd_triage_margins(m, s, val.text[r], strlen(val.text[r]), margins, NULL));
    for (size_t c = 0; c < k; c++)
      max_diff = fmax(max_diff, fabs(margins[c] - reference[r * k + c]));
  }
  ck_assert_msg(max_diff < 1e-5, "max |native - xgboost| = %g", max_diff);
  free(margins);
  free(reference);
  vd_triage_scratch_free(s);
  vd_triage_free(m);
  triage_free_rows(&val);
}
END_TEST

/* 8,000 columns × 151 classes of dense weights are ~16 MB of XGBoost JSON but 4.8 MB of its
 * UBJSON (float32); more columns buy little accuracy (README "Triage model") and cost load time
 * and repository size. */
START_TEST(shipped_bundle_is_small) {
  vd_triage_model *m = shipped();
  ck_assert_str_eq(json_string_value(json_object_get(vd_triage_manifest(m), "model_file")),
                   "model.ubj");
  vd_triage_free(m);
  struct stat st;
  ck_assert_int_eq(stat(TRIAGE_SHIPPED_BUNDLE "/model.ubj", &st), 0);
  ck_assert_msg(st.st_size < 6 * 1024 * 1024, "model.ubj is %lld bytes", (long long)st.st_size);
  ck_assert_int_ne(stat(TRIAGE_SHIPPED_BUNDLE "/model.json", &st), 0); /* no stale copy */
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("triage_accuracy");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, validation_accuracy_holds_the_recorded_figure);
  tcase_add_test(tc, shipped_native_scores_equal_xgboost_on_every_validation_row);
  tcase_add_test(tc, shipped_bundle_is_small);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return vd_test_run(suite()); }
