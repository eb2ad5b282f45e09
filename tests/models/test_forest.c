/* The native tree evaluator and TreeSHAP against XGBoost itself, on every Hillstrom row. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "support_models.h"
#include "vd_forest.h"
#include "vd_test.h"

/* Bit-wise equality of two floats. */
static bool same_bits(float a, float b) {
  uint32_t x, y;
  memcpy(&x, &a, sizeof x);
  memcpy(&y, &b, sizeof y);
  return x == y;
}

/* Compares native and XGBoost outputs: predictions on every row of x, contributions on every
 * contrib_step-th row (1 = every row). Returns the max |contribution difference|. */
static double compare_all(const char *json, size_t size, const float *x, size_t rows, size_t width,
                          unsigned table_features, size_t contrib_step) {
  vd_error err = {0};
  vd_forest *f = vd_forest_load(json, size, "model.json", table_features, &err);
  ck_assert_msg(f != NULL, "%s", err.message);
  ck_assert_uint_eq(vd_forest_feature_count(f), width);
  BoosterHandle b = reference_booster(json, size);
  float *margin = reference_predict(b, x, rows, width, 1);
  float *prob = reference_predict(b, x, rows, width, 0);
  size_t crows = (rows + contrib_step - 1) / contrib_step;
  float *sampled = malloc((crows * width + 1) * sizeof *sampled);
  for (size_t r = 0; r < crows; r++)
    memcpy(sampled + r * width, x + r * contrib_step * width, width * sizeof *sampled);
  float *contrib = reference_predict(b, sampled, crows, width, 2);
  free(sampled);
  double *phi = malloc((width + 1) * sizeof *phi);
  double worst = 0, worst_sum = 0;
  for (size_t r = 0; r < rows; r++) {
    const float *row = x + r * width;
    float m = vd_forest_margin(f, row);
    float p = vd_forest_transform(f, m);
    /* bit-identical: compare the bytes, not with a tolerance */
    ck_assert_msg(same_bits(m, margin[r]), "row %zu: margin %.9g vs XGBoost %.9g", r, (double)m,
                  (double)margin[r]);
    ck_assert_msg(same_bits(p, prob[r]), "row %zu: probability %.9g vs XGBoost %.9g", r, (double)p,
                  (double)prob[r]);
    if (r % contrib_step) continue;
    vd_forest_contributions(f, row, phi);
    double sum = 0;
    for (size_t c = 0; c <= width; c++) {
      double d = fabs(phi[c] - (double)contrib[r / contrib_step * (width + 1) + c]);
      if (d > worst) worst = d;
      sum += phi[c];
    }
    if (fabs(sum - (double)m) > worst_sum) worst_sum = fabs(sum - (double)m);
  }
  ck_assert_msg(worst < 1e-5, "max |contribution - XGBoost| = %g", worst);
  ck_assert_msg(worst_sum < 1e-5, "contributions do not sum to the margin: off by %g", worst_sum);
  free(phi);
  free(margin);
  free(prob);
  free(contrib);
  XGBoosterFree(b);
  vd_forest_free(f);
  return worst;
}

START_TEST(shipped_model_matches_xgboost_on_every_row) {
  vd_features *features = bundle_features(SHIPPED_BUNDLE);
  test_rows rows;
  if (!load_hillstrom(features, 0, &rows)) {
    vd_features_free(features);
    return;
  }
  size_t size;
  char *json = slurp(SHIPPED_BUNDLE "/model.json", &size);
  /* As received, then every row as control and as each arm: all treatment columns exercised. */
  double worst = compare_all(json, size, rows.x, rows.rows, rows.width, 8, 1);
  size_t base = vd_features_base_width(features);
  for (int arm = -1; arm < (int)vd_features_arm_count(features); arm++) {
    for (size_t r = 0; r < rows.rows; r++)
      for (size_t a = 0; a < vd_features_arm_count(features); a++)
        rows.x[r * rows.width + base + a] = (int)a == arm ? 1.0f : 0.0f;
    double w = compare_all(json, size, rows.x, rows.rows, rows.width, 8, 20);
    if (w > worst) worst = w;
  }
  fprintf(stderr,
          "shipped model: %zu rows as received (predictions and contributions) and as control "
          "and each arm (predictions; contributions every 20th row): bit-identical predictions, "
          "max |phi diff| %.3g\n",
          rows.rows, worst);
  free(json);
  free_rows(&rows);
  vd_features_free(features);
}
END_TEST

/* Deeper models with missing values (NaN → default branches) and a non-0.5 base score, checked
 * with tabulated subtrees, tabulated leaves and with every leaf computed on the fly. */
static char *train_model(const float *x, size_t rows, size_t width, const float *y,
                         const char *depth, const char *base_score, size_t *size) {
  DMatrixHandle dm;
  BoosterHandle b;
  ck_assert_int_eq(XGDMatrixCreateFromMat(x, rows, width, NAN, &dm), 0);
  ck_assert_int_eq(XGDMatrixSetFloatInfo(dm, "label", y, rows), 0);
  ck_assert_int_eq(XGBoosterCreate(&dm, 1, &b), 0);
  const char *params[][2] = {{"objective", "binary:logistic"},
                             {"max_depth", depth},
                             {"eta", "0.3"},
                             {"nthread", "2"},
                             {"tree_method", "hist"},
                             {"base_score", base_score},
                             {"verbosity", "0"},
                             {"min_child_weight", "0.5"}};
  for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
    ck_assert_int_eq(XGBoosterSetParam(b, params[i][0], params[i][1]), 0);
  for (int it = 0; it < 25; it++) ck_assert_int_eq(XGBoosterUpdateOneIter(b, it, dm), 0);
  bst_ulong len;
  const char *text;
  ck_assert_int_eq(XGBoosterSaveModelToBuffer(b, "{\"format\": \"json\"}", &len, &text), 0);
  char *copy = malloc(len);
  memcpy(copy, text, len);
  *size = len;
  XGBoosterFree(b);
  XGDMatrixFree(dm);
  return copy;
}

START_TEST(deep_model_with_missing_values_matches_xgboost) {
  vd_features *features = bundle_features(SHIPPED_BUNDLE);
  test_rows rows;
  if (!load_hillstrom(features, under_sanitizer() ? 0 : 4000, &rows)) {
    vd_features_free(features);
    return;
  }
  float *y = malloc(rows.rows * sizeof *y);
  unsigned state = 12345;
  for (size_t r = 0; r < rows.rows; r++) {
    state = state * 1103515245u + 12345u;
    y[r] = (rows.x[r * rows.width + 1] > 200.0f) ^ ((state >> 16) % 5 == 0); /* history-driven */
    for (size_t c = 0; c < rows.width; c++) {
      state = state * 1103515245u + 12345u;
      if ((state >> 16) % 8 == 0) rows.x[r * rows.width + c] = NAN;
    }
  }
  size_t size;
  char *json = train_model(rows.x, rows.rows, rows.width, y, "9", "0.3", &size);
  vd_error err = {0};
  vd_forest *probe = vd_forest_load(json, size, "deep.json", 8, &err);
  ck_assert_msg(probe != NULL, "%s", err.message);
  ck_assert_uint_ge(vd_forest_max_depth(probe), 9); /* some paths have > 8 unique features */
  vd_forest_free(probe);
  compare_all(json, size, rows.x, rows.rows, rows.width, 8, 1); /* tables and on the fly */
  compare_all(json, size, rows.x, rows.rows, rows.width, 0, 1); /* every leaf on the fly */
  free(json);
  /* depth 5 (≤ 63 nodes): every tree is cut into tabulated subtrees, with NaN defaults and
   * features repeated along paths */
  json = train_model(rows.x, rows.rows, rows.width, y, "5", "0.3", &size);
  compare_all(json, size, rows.x, rows.rows, rows.width, 8, 1);
  free(json);
  free(y);
  free_rows(&rows);
  vd_features_free(features);
}
END_TEST

static void expect_refused(const char *json, const char *needle) {
  vd_error err = {0};
  vd_forest *f = vd_forest_load(json, strlen(json), "m.json", 8, &err);
  ck_assert_msg(f == NULL, "accepted: %s", json);
  ck_assert_msg(strstr(err.message, needle) != NULL, "message \"%s\" lacks \"%s\"", err.message,
                needle);
  ck_assert_msg(strncmp(err.message, "m.json", 6) == 0 || strcmp(err.file, "m.json") == 0,
                "message does not name the file: %s", err.message);
}

#define LEARNER(booster, trees)                                                                    \
  "{\"learner\": {\"gradient_booster\": {\"name\": \"" booster "\", \"model\": {\"trees\": " trees \
  ", \"tree_info\": [0]}}, \"learner_model_param\": {\"base_score\": \"5E-1\", "                   \
  "\"num_feature\": \"2\", \"num_class\": \"0\"}, \"objective\": {\"name\": "                      \
  "\"binary:logistic\"}}}"
#define TREE(left, right, split)                                                             \
  "[{\"left_children\": " left ", \"right_children\": " right ", \"split_indices\": " split  \
  ", \"split_conditions\": [0.5, 0.1, -0.1], \"default_left\": [0, 0, 0], \"sum_hessian\": " \
  "[2, 1, 1], \"split_type\": [0, 0, 0], \"categories_nodes\": []}]"

START_TEST(malformed_models_are_refused) {
  expect_refused("{", "not valid JSON");
  expect_refused(LEARNER("dart", TREE("[1,-1,-1]", "[2,-1,-1]", "[0,0,0]")), "gbtree");
  expect_refused(LEARNER("gbtree", TREE("[1,-1,-1]", "[2,-1,-1]", "[5,0,0]")),
                 "beyond num_feature");
  expect_refused(LEARNER("gbtree", TREE("[0,-1,-1]", "[2,-1,-1]", "[0,0,0]")), "out of range");
  expect_refused(LEARNER("gbtree", TREE("[1,-1]", "[2,-1,-1]", "[0,0,0]")), "different lengths");
  /* a good one loads */
  const char *good = LEARNER("gbtree", TREE("[1,-1,-1]", "[2,-1,-1]", "[0,0,0]"));
  vd_error err = {0};
  vd_forest *f = vd_forest_load(good, strlen(good), "m.json", 8, &err);
  ck_assert_msg(f != NULL, "%s", err.message);
  float row[2] = {0.2f, 0.0f};
  ck_assert(vd_forest_margin(f, row) == 0.1f);
  row[0] = NAN; /* default right */
  ck_assert(vd_forest_margin(f, row) == -0.1f);
  double phi[3];
  row[0] = 0.2f;
  vd_forest_contributions(f, row, phi);
  /* tables hold floats: exact to ~1e-9 */
  ck_assert(fabs(phi[0] - 0.1) < 1e-7 && phi[1] == 0.0 && fabs(phi[2]) < 1e-12);
  vd_forest_free(f);
}
END_TEST

int main(void) {
  Suite *s = suite_create("models/forest");
  TCase *tc = tcase_create("forest");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, shipped_model_matches_xgboost_on_every_row);
  tcase_add_test(tc, deep_model_with_missing_values_matches_xgboost);
  tcase_add_test(tc, malformed_models_are_refused);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
