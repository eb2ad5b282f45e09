/* The triage model: training on a subset, native scoring = XGBoost on every validation row,
 * contributions, calibration, escalation, determinism, bundle checks, threads. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support_models.h"
#include "support_triage.h"
#include "vd_bundle.h"
#include "vd_calibration.h"
#include "vd_hash.h"
#include "vd_test.h"
#include "vd_triage.h"

static char bundle_dir[256];
static bool have_data;
static triage_rows val;

/* Trains a small bundle (every 5th training row, few rounds) and evaluates it on val_path (NULL:
 * the validation split). */
static bool train_small_on(const char *out_dir, const char *val_file) {
  char train_path[4096], val_path[4096];
  if (!vd_test_shared_path("data/clinc150/train.jsonl", train_path, sizeof train_path) ||
      !vd_test_shared_path("data/clinc150/val.jsonl", val_path, sizeof val_path))
    return false;
  if (val_file) snprintf(val_path, sizeof val_path, "%s", val_file);
  vd_triage_train_options o;
  vd_triage_train_defaults(&o);
  o.train_path = train_path;
  o.val_path = val_path;
  o.out_dir = out_dir;
  o.max_train_rows = under_sanitizer() ? 1000 : 3000;
  o.rounds = 6;
  o.max_columns = 3000;
  vd_error err = {0};
  ck_assert_msg(vd_triage_train(&o, NULL, &err), "%s", err.message);
  return true;
}

static bool train_small(const char *out_dir) { return train_small_on(out_dir, NULL); }

static void setup(void) {
  snprintf(bundle_dir, sizeof bundle_dir, "/tmp/vd-triage-test-XXXXXX");
  ck_assert(mkdtemp(bundle_dir) != NULL);
  have_data = train_small(bundle_dir) && triage_read_rows("val.jsonl", &val);
  if (have_data && under_sanitizer()) val.count = 600; /* a sample, same checks */
}

static void teardown(void) {
  if (have_data) triage_free_rows(&val);
}

static vd_triage_model *load(const char *dir) {
  vd_error err = {0};
  vd_triage_model *m = vd_triage_load(dir, &err);
  ck_assert_msg(m != NULL, "%s", err.message);
  return m;
}

START_TEST(native_scores_equal_xgboost_on_every_validation_row) {
  if (!have_data) return;
  vd_triage_model *m = load(bundle_dir);
  double *reference = triage_reference_margins(bundle_dir, &val);
  vd_triage_scratch *s = vd_triage_scratch_new(m);
  size_t k = vd_triage_class_count(m);
  double *margins = malloc(k * sizeof(double)), max_diff = 0;
  for (size_t r = 0; r < val.count; r++) {
    ck_assert(vd_triage_margins(m, s, val.text[r], strlen(val.text[r]), margins, NULL));
    for (size_t c = 0; c < k; c++) {
      double d = fabs(margins[c] - reference[r * k + c]);
      if (d > max_diff) max_diff = d;
    }
  }
  ck_assert_msg(max_diff < 1e-5, "max |native - xgboost| = %g", max_diff);
  free(margins);
  free(reference);
  vd_triage_scratch_free(s);
  vd_triage_free(m);
}
END_TEST

START_TEST(token_and_feature_contributions_sum_to_the_margin) {
  if (!have_data) return;
  vd_triage_model *m = load(bundle_dir);
  vd_triage_scratch *s = vd_triage_scratch_new(m);
  for (size_t r = 0; r < val.count; r += 7) {
    vd_triage_result res;
    const char *text = val.text[r];
    ck_assert(vd_triage_score(m, s, text, strlen(text), 3, true, &res, NULL));
    double tokens = res.bias, features = res.bias;
    for (size_t t = 0; t < res.token_count; t++) {
      tokens += res.tokens[t].value;
      ck_assert_uint_le(res.tokens[t].end, strlen(text));
      ck_assert_uint_lt(res.tokens[t].start, res.tokens[t].end);
    }
    for (size_t i = 0; i < res.feature_count; i++) {
      features += res.features[i].value;
      if (i) ck_assert(fabs(res.features[i - 1].value) >= fabs(res.features[i].value));
      ck_assert(strlen(res.features[i].ngrams) > 0);
    }
    ck_assert_msg(fabs(tokens - res.top[0].margin) < 1e-4, "row %zu: tokens %g, margin %g", r,
                  tokens, res.top[0].margin);
    ck_assert_msg(fabs(features - res.top[0].margin) < 1e-4, "row %zu", r);
  }
  vd_triage_scratch_free(s);
  vd_triage_free(m);
}
END_TEST

/* The word that names an intent is the strongest token for it. */
START_TEST(contributions_name_the_driving_words) {
  if (!have_data) return;
  vd_triage_model *m = load(bundle_dir);
  vd_triage_scratch *s = vd_triage_scratch_new(m);
  const char *text = "please translate this into French";
  vd_triage_result res;
  ck_assert(vd_triage_score(m, s, text, strlen(text), 3, true, &res, NULL));
  ck_assert_str_eq(res.top[0].intent, "translate");
  /* "translate" pushes towards translate more than the filler words do. */
  double translate = 0, please = 0, this_ = 0;
  for (size_t t = 0; t < res.token_count; t++) {
    if (strcmp(res.tokens[t].token, "translate") == 0) {
      translate = res.tokens[t].value;
      ck_assert_int_eq(strncmp(text + res.tokens[t].start, "translate", 9), 0);
    }
    if (strcmp(res.tokens[t].token, "please") == 0) please = res.tokens[t].value;
    if (strcmp(res.tokens[t].token, "this") == 0) this_ = res.tokens[t].value;
  }
  ck_assert_msg(translate > 0 && translate > please && translate > this_, "%g %g %g", translate,
                please, this_);
  json_t *j = vd_triage_result_to_json(m, &res, 5);
  ck_assert_str_eq(json_string_value(json_object_get(j, "intent")), "translate");
  ck_assert_uint_eq(json_array_size(json_object_get(j, "top")), 3);
  ck_assert_uint_le(json_array_size(json_object_get(j, "features")), 5);
  ck_assert_uint_eq(json_array_size(json_object_get(j, "tokens")), res.token_count);
  json_decref(j);
  vd_triage_scratch_free(s);
  vd_triage_free(m);
}
END_TEST

START_TEST(probabilities_are_calibrated_softmax_and_escalation_follows_the_threshold) {
  if (!have_data) return;
  vd_triage_model *m = load(bundle_dir);
  vd_triage_scratch *s = vd_triage_scratch_new(m);
  size_t k = vd_triage_class_count(m);
  double *margins = malloc(k * sizeof(double)), *p = malloc(k * sizeof(double));
  double threshold = vd_triage_threshold(m), temperature = vd_triage_temperature(m);
  ck_assert(temperature > 0);
  size_t escalated = 0;
  for (size_t r = 0; r < val.count; r += 3) {
    vd_triage_result res;
    ck_assert(vd_triage_score(m, s, val.text[r], strlen(val.text[r]), 10, false, &res, NULL));
    ck_assert(vd_triage_margins(m, s, val.text[r], strlen(val.text[r]), margins, NULL));
    vd_softmax(margins, k, temperature, p);
    for (size_t t = 0; t < res.top_count; t++) {
      if (t) ck_assert(res.top[t - 1].probability >= res.top[t].probability);
    }
    double max = 0;
    for (size_t c = 0; c < k; c++) max = p[c] > max ? p[c] : max;
    ck_assert_double_eq_tol(res.confidence, max, 1e-9);
    bool oos = strcmp(res.top[0].intent, vd_triage_out_of_scope_class(m)) == 0;
    ck_assert(res.out_of_scope == oos);
    ck_assert(res.low_confidence == (res.confidence < threshold));
    ck_assert(res.escalate == (oos || res.confidence < threshold));
    escalated += res.escalate;
  }
  ck_assert_uint_gt(escalated, 0);
  free(margins);
  free(p);
  vd_triage_scratch_free(s);
  vd_triage_free(m);
}
END_TEST

/* The temperature is fitted on the out-of-fold predictions, so it never makes their NLL worse
 * than T = 1; the validation split gets the same metrics (ECE on a well-trained model:
 * test_triage_accuracy checks the shipped bundle). */
START_TEST(calibration_is_recorded_in_the_manifest) {
  if (!have_data) return;
  vd_triage_model *m = load(bundle_dir);
  const json_t *manifest = vd_triage_manifest(m);
  const json_t *oof = json_object_get(manifest, "out_of_fold");
  const json_t *metrics_oof = json_object_get(oof, "metrics");
  ck_assert(json_real_value(json_object_get(metrics_oof, "nll_after")) <=
            json_real_value(json_object_get(metrics_oof, "nll_before")));
  ck_assert_int_eq(json_integer_value(json_object_get(metrics_oof, "rows")),
                   json_integer_value(json_object_get(oof, "rows")));
  ck_assert_str_eq(
      json_string_value(json_object_get(json_object_get(manifest, "calibration"), "fitted_on")),
      "out_of_fold");
  const json_t *metrics = json_object_get(manifest, "metrics");
  ck_assert_str_eq(json_string_value(json_object_get(metrics, "split")), "validation");
  ck_assert_int_eq(json_integer_value(json_object_get(metrics, "rows")), (json_int_t)val.total);
  ck_assert(json_is_real(json_object_get(metrics, "ece_before")));
  ck_assert(json_is_real(json_object_get(metrics, "ece_after")));
  ck_assert_uint_eq(json_array_size(json_object_get(metrics, "coverage_curve")), 20);
  ck_assert_uint_eq(json_array_size(json_object_get(metrics_oof, "coverage_curve")), 20);
  vd_triage_free(m);
}
END_TEST

/* Trains a small bundle with the options adjusted by `adjust` into `out` (an empty string: a new
 * temporary folder, written to out). */
static const char *train_small_with(void (*adjust)(vd_triage_train_options *), char *out,
                                    size_t size) {
  char train_path[4096], val_path[4096];
  vd_test_shared_path("data/clinc150/train.jsonl", train_path, sizeof train_path);
  vd_test_shared_path("data/clinc150/val.jsonl", val_path, sizeof val_path);
  if (!out[0]) {
    snprintf(out, size, "/tmp/vd-triage-test-XXXXXX");
    ck_assert(mkdtemp(out) != NULL);
  }
  vd_triage_train_options o;
  vd_triage_train_defaults(&o);
  o.train_path = train_path;
  o.val_path = val_path;
  o.out_dir = out;
  o.max_train_rows = under_sanitizer() ? 1000 : 3000;
  o.rounds = 6;
  o.max_columns = 3000;
  adjust(&o);
  vd_error err = {0};
  ck_assert_msg(vd_triage_train(&o, NULL, &err), "%s", err.message);
  return out;
}

static double number_at(const json_t *j, const char *a, const char *b) {
  const json_t *v = json_object_get(b ? json_object_get(j, a) : j, b ? b : a);
  ck_assert_msg(json_is_number(v), "%s.%s is missing", a, b ? b : "");
  return json_number_value(v);
}

/* Cross-fitting (the default, 5 parts): every training row is predicted once by a model that did
 * not train on it. The threshold is chosen on these predictions for a rate below the target by
 * the guard band (95 %, a window of 3,000): r + 1.645 × sqrt(r(1 - r)(1/3000 + 1/n)) = target,
 * and it is the highest threshold that escalates at most that share of the out-of-fold in-scope
 * rows. */
START_TEST(the_threshold_is_chosen_out_of_fold_with_a_guard_band) {
  if (!have_data) return;
  vd_triage_model *m = load(bundle_dir);
  const json_t *manifest = vd_triage_manifest(m);
  const json_t *oof = json_object_get(manifest, "out_of_fold");
  const json_t *train = json_object_get(json_object_get(manifest, "training"), "train");
  const json_t *esc = json_object_get(manifest, "escalation");
  ck_assert_int_eq(json_integer_value(json_object_get(oof, "folds")), 5);
  ck_assert_uint_eq(json_array_size(json_object_get(oof, "parts")), 5);
  ck_assert_str_eq(json_string_value(json_object_get(oof, "threshold_rule")), "pooled");
  ck_assert_int_eq(json_integer_value(json_object_get(oof, "rows")),
                   json_integer_value(json_object_get(train, "rows")));
  double target = number_at(esc, "target_rate", NULL), aimed = number_at(esc, "aimed_rate", NULL);
  ck_assert_double_eq(number_at(esc, "guard", "confidence"), 0.95);
  ck_assert_double_eq(number_at(esc, "guard", "window"), 3000);
  /* n: the out-of-fold in-scope rows (every training row but the few out-of-scope ones). */
  double n = number_at(oof, "in_scope_rows", NULL);
  ck_assert(n > 0.95 * (double)json_integer_value(json_object_get(oof, "rows")));
  ck_assert(n < (double)json_integer_value(json_object_get(oof, "rows")));
  double bound = aimed + 1.6448536269514722 * sqrt(aimed * (1 - aimed) * (1.0 / 3000 + 1.0 / n));
  ck_assert_msg(fabs(bound - target) < 1e-9, "aimed %g: bound %g, target %g", aimed, bound, target);
  ck_assert_double_lt(aimed, target - 0.01);
  double escalated =
      number_at(json_object_get(oof, "metrics"), "at_threshold", "in_scope_escalated");
  ck_assert_double_le(escalated, aimed);
  ck_assert_double_gt(escalated, aimed - 2.0 / n); /* the highest such threshold */
  vd_triage_free(m);
}
END_TEST

static void every_fold_without_guard(vd_triage_train_options *o) {
  o->threshold_rule = "every_fold";
  o->guard_confidence = 0;
}

/* The every_fold rule without a guard: the threshold is the highest that escalates at most the
 * target share of the in-scope rows of every part — the smallest of the parts' own thresholds,
 * with no part over the target at it. */
START_TEST(the_every_fold_rule_holds_on_every_part) {
  if (!have_data) return;
  char out[256] = "";
  vd_triage_model *m = load(train_small_with(every_fold_without_guard, out, sizeof out));
  const json_t *manifest = vd_triage_manifest(m);
  const json_t *oof = json_object_get(manifest, "out_of_fold");
  const json_t *parts = json_object_get(oof, "parts");
  double target = number_at(manifest, "escalation", "target_rate"), smallest = 1;
  ck_assert_double_eq(number_at(manifest, "escalation", "aimed_rate"), target);
  json_int_t rows = 0;
  size_t i;
  const json_t *part;
  json_array_foreach(parts, i, part) {
    smallest = fmin(smallest, number_at(part, "own_threshold", NULL));
    ck_assert_double_le(number_at(part, "in_scope_escalated", NULL), target);
    ck_assert_double_eq(number_at(part, "threshold", NULL), vd_triage_threshold(m));
    rows += json_integer_value(json_object_get(part, "rows"));
  }
  ck_assert_int_eq(rows, json_integer_value(json_object_get(oof, "rows")));
  ck_assert_double_eq(vd_triage_threshold(m), smallest);
  vd_triage_free(m);
}
END_TEST

/* --folds 1: the single holdout (the last 20 % of each intent's rows); --no-refit ships its
 * model; cross-fitting refuses --no-refit (there are five models, none trained on every row). */
START_TEST(a_single_holdout_is_still_available) {
  if (!have_data) return;
  char train_path[4096], val_path[4096], out[256];
  vd_test_shared_path("data/clinc150/train.jsonl", train_path, sizeof train_path);
  vd_test_shared_path("data/clinc150/val.jsonl", val_path, sizeof val_path);
  snprintf(out, sizeof out, "/tmp/vd-triage-test-XXXXXX");
  ck_assert(mkdtemp(out) != NULL);
  vd_triage_train_options o;
  vd_triage_train_defaults(&o);
  o.train_path = train_path;
  o.val_path = val_path;
  o.out_dir = out;
  o.max_train_rows = under_sanitizer() ? 1000 : 3000;
  o.rounds = 6;
  o.max_columns = 3000;
  o.refit = false;
  vd_error err = {0};
  ck_assert(!vd_triage_train(&o, NULL, &err));
  ck_assert_str_eq(err.field, "folds");
  o.folds = 1;
  ck_assert_msg(vd_triage_train(&o, NULL, &err), "%s", err.message);
  vd_triage_model *m = load(out);
  const json_t *manifest = vd_triage_manifest(m);
  const json_t *oof = json_object_get(manifest, "out_of_fold");
  json_int_t rows = json_integer_value(json_object_get(
                 json_object_get(json_object_get(manifest, "training"), "train"), "rows")),
             held = json_integer_value(json_object_get(oof, "rows"));
  ck_assert_int_eq(json_integer_value(json_object_get(oof, "folds")), 1);
  ck_assert_msg(held * 10 > rows * 15 / 10 && held * 10 < rows * 25 / 10, "%lld of %lld held out",
                (long long)held, (long long)rows);
  ck_assert_double_eq(json_number_value(json_object_get(oof, "share")), 0.2);
  vd_triage_free(m);
}
END_TEST

/* Nothing is fitted or chosen on the validation split: with another validation file the model,
 * the temperature and the threshold are the same; only the reported metrics change. */
START_TEST(the_validation_split_is_only_evaluated) {
  if (!have_data) return;
  char other[256], val_part[300];
  snprintf(other, sizeof other, "/tmp/vd-triage-test-XXXXXX");
  ck_assert(mkdtemp(other) != NULL);
  snprintf(val_part, sizeof val_part, "%s/val-part.jsonl", other);
  FILE *f = fopen(val_part, "w");
  ck_assert_ptr_nonnull(f);
  for (size_t r = 0; r < val.total; r += 7) { /* every 7th row: some of every intent */
    json_t *row = json_pack("{s:s, s:s}", "text", val.text[r], "intent", val.intent[r]);
    char *line = json_dumps(row, JSON_COMPACT);
    fprintf(f, "%s\n", line);
    free(line);
    json_decref(row);
  }
  fclose(f);
  ck_assert(train_small_on(other, val_part));
  vd_triage_model *a = load(bundle_dir), *b = load(other);
  char model_a[VD_SHA256_HEX_SIZE], model_b[VD_SHA256_HEX_SIZE], path[4200];
  snprintf(path, sizeof path, "%s/model.ubj", bundle_dir);
  ck_assert(vd_sha256_file_hex(path, model_a, NULL));
  snprintf(path, sizeof path, "%s/model.ubj", other);
  ck_assert(vd_sha256_file_hex(path, model_b, NULL));
  ck_assert_str_eq(model_a, model_b); /* the same model; the versions differ by the metrics */
  ck_assert_str_ne(vd_triage_version(a), vd_triage_version(b));
  ck_assert_double_eq(vd_triage_temperature(a), vd_triage_temperature(b));
  ck_assert_double_eq(vd_triage_threshold(a), vd_triage_threshold(b));
  const json_t *ma = json_object_get(vd_triage_manifest(a), "metrics"),
               *mb = json_object_get(vd_triage_manifest(b), "metrics");
  ck_assert_int_ne(json_integer_value(json_object_get(ma, "rows")),
                   json_integer_value(json_object_get(mb, "rows")));
  vd_triage_free(a);
  vd_triage_free(b);
}
END_TEST

static double uniform(unsigned long *state) {
  *state = *state * 6364136223846793005ul + 1442695040888963407ul;
  return (double)(*state >> 11) / 9007199254740992.0;
}

/* A synthetic over-confident model: labels drawn from softmax(z), the model reports 3z.
 * Temperature scaling recovers T ≈ 3 and lowers the ECE and the NLL. */
START_TEST(temperature_scaling_fixes_overconfidence) {
  enum { N = 4000, K = 5 };
  double *margins = malloc(N * K * sizeof(double)), *conf_raw = malloc(N * sizeof(double)),
         *conf_cal = malloc(N * sizeof(double));
  int *labels = malloc(N * sizeof(int));
  bool *correct = malloc(N * sizeof(bool));
  unsigned long state = 12345;
  double z[K], p[K];
  for (size_t i = 0; i < N; i++) {
    for (size_t c = 0; c < K; c++) z[c] = 3.0 * uniform(&state);
    vd_softmax(z, K, 1.0, p);
    double u = uniform(&state), acc = 0;
    labels[i] = K - 1;
    for (int c = 0; c < K; c++)
      if (u < (acc += p[c])) {
        labels[i] = c;
        break;
      }
    for (size_t c = 0; c < K; c++) margins[i * K + c] = 3.0 * z[c];
  }
  double t;
  ck_assert(vd_calibration_fit_temperature(margins, labels, N, K, &t, NULL));
  ck_assert_msg(t > 2.5 && t < 3.5, "T = %g", t);
  for (size_t i = 0; i < N; i++) {
    int best = 0;
    for (int c = 1; c < K; c++)
      if (margins[i * K + (size_t)c] > margins[i * K + (size_t)best]) best = c;
    correct[i] = best == labels[i];
    vd_softmax(margins + i * K, K, 1.0, p);
    conf_raw[i] = p[best];
    vd_softmax(margins + i * K, K, t, p);
    conf_cal[i] = p[best];
  }
  double before = vd_calibration_ece(conf_raw, correct, N, 15);
  double after = vd_calibration_ece(conf_cal, correct, N, 15);
  ck_assert_msg(after < before / 2, "ECE %g -> %g", before, after);
  ck_assert(vd_calibration_nll(margins, labels, N, K, t) <
            vd_calibration_nll(margins, labels, N, K, 1.0));
  free(margins);
  free(conf_raw);
  free(conf_cal);
  free(labels);
  free(correct);
}
END_TEST

START_TEST(training_is_deterministic) {
  if (!have_data) return;
  char again[256];
  snprintf(again, sizeof again, "/tmp/vd-triage-test-XXXXXX");
  ck_assert(mkdtemp(again) != NULL);
  ck_assert(train_small(again));
  const char *files[] = {"model.ubj", "manifest.json"};
  for (size_t i = 0; i < 2; i++) {
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/%s", bundle_dir, files[i]);
    snprintf(b, sizeof b, "%s/%s", again, files[i]);
    size_t na, nb;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    ck_assert_msg(na == nb && memcmp(x, y, na) == 0, "%s differs between two trainings", files[i]);
    free(x);
    free(y);
  }
}
END_TEST

static void json_format(vd_triage_train_options *o) { o->model_format = "json"; }

static bool exists(const char *dir, const char *name) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return access(path, F_OK) == 0;
}

/* The bundle's model is XGBoost's UBJSON (model.ubj) unless --model-format json: the same model
 * in either form scores the same to the bit, XGBoost reads both (native = XGBoost is checked on
 * the UBJSON bundle above), and training into a folder holding the other form removes it. */
START_TEST(model_formats_ubjson_and_json_score_the_same) {
  if (!have_data) return;
  char out[256];
  snprintf(out, sizeof out, "%s", copy_bundle(bundle_dir, 2)); /* holds model.ubj */
  ck_assert(exists(out, "model.ubj"));
  vd_triage_model *a = load(bundle_dir), *b = load(train_small_with(json_format, out, sizeof out));
  ck_assert(exists(out, "model.json") && !exists(out, "model.ubj"));
  ck_assert(!exists(bundle_dir, "model.json"));
  ck_assert_str_eq(json_string_value(json_object_get(vd_triage_manifest(a), "model_file")),
                   "model.ubj");
  ck_assert_str_eq(json_string_value(json_object_get(vd_triage_manifest(b), "model_file")),
                   "model.json");
  ck_assert_str_ne(vd_triage_version(a), vd_triage_version(b)); /* covers the model file */
  ck_assert_double_eq(vd_triage_threshold(a), vd_triage_threshold(b));
  size_t k = vd_triage_class_count(a);
  double *ma = malloc(k * sizeof(double)), *mb = malloc(k * sizeof(double));
  vd_triage_scratch *sa = vd_triage_scratch_new(a), *sb = vd_triage_scratch_new(b);
  for (size_t r = 0; r < val.count; r += 5) {
    ck_assert(vd_triage_margins(a, sa, val.text[r], strlen(val.text[r]), ma, NULL));
    ck_assert(vd_triage_margins(b, sb, val.text[r], strlen(val.text[r]), mb, NULL));
    ck_assert_int_eq(memcmp(ma, mb, k * sizeof(double)), 0);
  }
  double *reference = triage_reference_margins(out, &val); /* XGBoost reading model.json */
  for (size_t r = 0; r < val.count; r += 5) {
    ck_assert(vd_triage_margins(b, sb, val.text[r], strlen(val.text[r]), mb, NULL));
    for (size_t c = 0; c < k; c++) ck_assert(fabs(mb[c] - reference[r * k + c]) < 1e-5);
  }
  free(reference);
  free(ma);
  free(mb);
  vd_triage_scratch_free(sa);
  vd_triage_scratch_free(sb);
  vd_triage_free(a);
  vd_triage_free(b);
}
END_TEST

START_TEST(load_refuses_altered_or_broken_bundles) {
  if (!have_data) return;
  vd_error err = {0};
  /* model.ubj altered: its hash is no longer the version. */
  const char *dir = copy_bundle(bundle_dir, 0);
  char path[4096];
  snprintf(path, sizeof path, "%s/model.ubj", dir);
  FILE *f = fopen(path, "a");
  fputs(" ", f);
  fclose(f);
  ck_assert_ptr_null(vd_triage_load(dir, &err));
  ck_assert_msg(strstr(err.message, "manifest.json: version") && strstr(err.message, "altered") &&
                    strstr(err.message, "model.ubj changed"),
                "%s", err.message);
  /* A manifest with a bad threshold names the field. */
  dir = copy_bundle(bundle_dir, 1);
  snprintf(path, sizeof path, "%s/manifest.json", dir);
  json_t *manifest = json_load_file(path, 0, NULL);
  json_object_set_new(json_object_get(manifest, "escalation"), "threshold", json_real(1.5));
  json_dump_file(manifest, path, 0);
  json_decref(manifest);
  ck_assert_ptr_null(vd_triage_load(dir, &err));
  ck_assert_str_eq(err.field, "escalation.threshold");
  /* A model file named with a path is refused (a bundle never reads outside its folder). */
  dir = copy_bundle(bundle_dir, 2);
  snprintf(path, sizeof path, "%s/manifest.json", dir);
  manifest = json_load_file(path, 0, NULL);
  json_object_set_new(manifest, "model_file", json_string("../model.ubj"));
  json_dump_file(manifest, path, 0);
  ck_assert_ptr_null(vd_triage_load(dir, &err));
  ck_assert_str_eq(err.field, "model_file");
  /* A truncated model.ubj whose hash the manifest matches: the error says where. */
  char model[4096];
  snprintf(model, sizeof model, "%s/model.ubj", dir);
  ck_assert_int_eq(truncate(model, 5000), 0);
  char hex[VD_SHA256_HEX_SIZE];
  json_object_set_new(manifest, "model_file", json_string("model.ubj"));
  json_dump_file(manifest, path, 0);
  json_decref(manifest);
  ck_assert_msg(vd_bundle_rehash(dir, hex, NULL, &err), "%s", err.message);
  ck_assert_ptr_null(vd_triage_load(dir, &err));
  /* (the weights' count is refused first: "byte 200: count 453151 is more than the bytes left") */
  ck_assert_msg(strstr(err.message, "model.ubj: byte ") && strstr(err.message, "bytes left"), "%s",
                err.message);
  /* A missing folder. */
  ck_assert_ptr_null(vd_triage_load("/nonexistent/triage", &err));
  ck_assert(strstr(err.message, "manifest.json") || strstr(err.file, "manifest.json"));
}
END_TEST

/* Words only, no regularisation (and no regularisation path), full steps: the coordinate updater
 * diverges, and the trainer refuses to write the bundle. */
#define SHIPPED_TRIAGE VERDICT_SOURCE_DIR "/examples/triage/model"

/* The triage bundle's version covers its manifest too (vd_bundle.h): an edited threshold is
 * refused until re-stamped, then loads under a new version; the store keeps both; a stored bundle
 * of the scheme before (version = the model file's hash) loads from the store only. */
START_TEST(an_edited_triage_manifest_needs_a_new_version) {
  vd_error err = {0};
  vd_triage_model *shipped = vd_triage_load(SHIPPED_TRIAGE, &err);
  ck_assert_msg(shipped != NULL, "%s", err.message);
  const char *dir = copy_bundle(SHIPPED_TRIAGE, 0);
  char path[4096];
  snprintf(path, sizeof path, "%s/manifest.json", dir);
  json_t *manifest = json_load_file(path, 0, NULL);
  json_object_set_new(json_object_get(manifest, "escalation"), "threshold", json_real(0.5));
  ck_assert_int_eq(json_dump_file(manifest, path, JSON_INDENT(2) | JSON_SORT_KEYS), 0);
  json_decref(manifest);
  ck_assert_ptr_null(vd_triage_load(dir, &err));
  ck_assert_msg(strstr(err.message, "verdict models rehash"), "%s", err.message);
  char version[VD_SHA256_HEX_SIZE];
  ck_assert_msg(vd_bundle_rehash(dir, version, NULL, &err), "%s", err.message);
  vd_triage_model *edited = vd_triage_load(dir, &err);
  ck_assert_msg(edited != NULL, "%s", err.message);
  ck_assert_str_eq(vd_triage_version(edited), version);
  ck_assert_str_ne(version, vd_triage_version(shipped));
  ck_assert_double_eq(vd_triage_threshold(edited), 0.5);
  vd_triage_free(edited);
  /* an old-scheme bundle as an earlier build stored it */
  char data[] = "/tmp/vd-triage-store-XXXXXX", model_sha[VD_SHA256_HEX_SIZE];
  ck_assert(mkdtemp(data) != NULL);
  ck_assert(vd_sha256_file_hex(SHIPPED_TRIAGE "/model.ubj", model_sha, &err));
  char stored[1024], cmd[4096];
  snprintf(stored, sizeof stored, "%s/models", data);
  ck_assert_int_eq(mkdir(stored, 0755), 0);
  snprintf(stored, sizeof stored, "%s/models/%s", data, model_sha);
  snprintf(cmd, sizeof cmd, "cp -r %s %s", SHIPPED_TRIAGE, stored);
  ck_assert_int_eq(system(cmd), 0);
  snprintf(path, sizeof path, "%s/manifest.json", stored);
  manifest = json_load_file(path, 0, NULL);
  json_object_set_new(manifest, "version", json_string(model_sha));
  ck_assert_int_eq(json_dump_file(manifest, path, JSON_INDENT(2) | JSON_SORT_KEYS), 0);
  json_decref(manifest);
  vd_triage_model *old = vd_triage_store_load(data, model_sha, &err);
  ck_assert_msg(old != NULL, "%s", err.message);
  ck_assert_str_eq(vd_triage_version(old), model_sha);
  vd_triage_free(old);
  ck_assert_ptr_null(vd_triage_load(stored, &err));
  ck_assert_msg(strstr(err.message, "alone"), "%s", err.message);
  char missing[VD_SHA256_HEX_SIZE];
  memset(missing, 'a', 64);
  missing[64] = '\0';
  ck_assert_ptr_null(vd_triage_store_load(data, missing, &err));
  vd_triage_free(shipped);
}
END_TEST

START_TEST(training_refuses_a_diverged_model) {
  if (!have_data) return;
  char train_path[4096], val_path[4096], out[256];
  vd_test_shared_path("data/clinc150/train.jsonl", train_path, sizeof train_path);
  vd_test_shared_path("data/clinc150/val.jsonl", val_path, sizeof val_path);
  snprintf(out, sizeof out, "/tmp/vd-triage-test-XXXXXX");
  ck_assert(mkdtemp(out) != NULL);
  vd_triage_train_options o;
  vd_triage_train_defaults(&o);
  o.train_path = train_path;
  o.val_path = val_path;
  o.out_dir = out;
  o.max_train_rows = 3000;
  o.max_columns = 3000;
  o.rounds = 10;
  o.eta = 1.0;
  o.lambda = 0;
  o.lambda_start = 0; /* no regularisation path either */
  o.alpha = 0;
  o.featuriser.char_ngram_min = o.featuriser.char_ngram_max = 0;
  vd_error err = {0};
  ck_assert(!vd_triage_train(&o, NULL, &err));
  ck_assert_msg(strstr(err.message, "diverged"), "%s", err.message);
  /* Nothing is left behind: no manifest, no model, no staging folder. */
  const char *names[] = {"manifest.json", "model.json", "model.ubj", ".staging"};
  for (size_t i = 0; i < 4; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out, names[i]);
    ck_assert_msg(access(path, F_OK) != 0, "%s was left behind", path);
  }
}
END_TEST

typedef struct worker {
  vd_triage_model *model;
  size_t from;
  int mismatches;
} worker;

static void *score_all(void *arg) {
  worker *w = arg;
  vd_triage_scratch *s = vd_triage_scratch_new(w->model), *check = vd_triage_scratch_new(w->model);
  for (size_t r = w->from; r < val.count; r += 2) {
    vd_triage_result a, b;
    vd_triage_score(w->model, s, val.text[r], strlen(val.text[r]), 3, true, &a, NULL);
    vd_triage_score(w->model, check, val.text[r], strlen(val.text[r]), 3, false, &b, NULL);
    if (a.top[0].intent != b.top[0].intent || a.confidence != b.confidence) w->mismatches++;
  }
  vd_triage_scratch_free(s);
  vd_triage_scratch_free(check);
  return NULL;
}

START_TEST(one_model_scores_from_many_threads) {
  if (!have_data) return;
  vd_triage_model *m = load(bundle_dir);
  worker w[2] = {{vd_triage_retain(m), 0, 0}, {vd_triage_retain(m), 1, 0}};
  vd_triage_free(m); /* the workers hold the remaining references */
  pthread_t th[2];
  for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, score_all, &w[i]);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  ck_assert_int_eq(w[0].mismatches + w[1].mismatches, 0);
  vd_triage_free(w[0].model);
  vd_triage_free(w[1].model);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("triage_model");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 300);
  tcase_add_unchecked_fixture(tc, setup, teardown);
  tcase_add_test(tc, native_scores_equal_xgboost_on_every_validation_row);
  tcase_add_test(tc, token_and_feature_contributions_sum_to_the_margin);
  tcase_add_test(tc, contributions_name_the_driving_words);
  tcase_add_test(tc, probabilities_are_calibrated_softmax_and_escalation_follows_the_threshold);
  tcase_add_test(tc, calibration_is_recorded_in_the_manifest);
  tcase_add_test(tc, the_threshold_is_chosen_out_of_fold_with_a_guard_band);
  tcase_add_test(tc, the_every_fold_rule_holds_on_every_part);
  tcase_add_test(tc, a_single_holdout_is_still_available);
  tcase_add_test(tc, the_validation_split_is_only_evaluated);
  tcase_add_test(tc, temperature_scaling_fixes_overconfidence);
  tcase_add_test(tc, training_is_deterministic);
  tcase_add_test(tc, model_formats_ubjson_and_json_score_the_same);
  tcase_add_test(tc, load_refuses_altered_or_broken_bundles);
  tcase_add_test(tc, an_edited_triage_manifest_needs_a_new_version);
  tcase_add_test(tc, one_model_scores_from_many_threads);
  tcase_add_test(tc, training_refuses_a_diverged_model);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return vd_test_run(suite()); }
