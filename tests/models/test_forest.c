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
                         const char *depth, const char *base_score, int iterations, const char *eta,
                         size_t *size) {
  DMatrixHandle dm;
  BoosterHandle b;
  ck_assert_int_eq(XGDMatrixCreateFromMat(x, rows, width, NAN, &dm), 0);
  ck_assert_int_eq(XGDMatrixSetFloatInfo(dm, "label", y, rows), 0);
  ck_assert_int_eq(XGBoosterCreate(&dm, 1, &b), 0);
  const char *params[][2] = {{"objective", "binary:logistic"},
                             {"max_depth", depth},
                             {"eta", eta},
                             {"nthread", "2"},
                             {"tree_method", "hist"},
                             {"base_score", base_score},
                             {"verbosity", "0"},
                             {"min_child_weight", "0.5"}};
  for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
    ck_assert_int_eq(XGBoosterSetParam(b, params[i][0], params[i][1]), 0);
  for (int it = 0; it < iterations; it++) ck_assert_int_eq(XGBoosterUpdateOneIter(b, it, dm), 0);
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
  char *json = train_model(rows.x, rows.rows, rows.width, y, "9", "0.3", 25, "0.3", &size);
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
  json = train_model(rows.x, rows.rows, rows.width, y, "5", "0.3", 25, "0.3", &size);
  compare_all(json, size, rows.x, rows.rows, rows.width, 8, 1);
  free(json);
  free(y);
  free_rows(&rows);
  vd_features_free(features);
}
END_TEST

/* Synthetic rows: continuous, few-valued and binary columns, 1 in 8 cells missing, and a label
 * that depends on several of them (so trees split on many columns, with repeated thresholds). */
static float *synthetic_rows(size_t rows, size_t width, unsigned seed, float **labels) {
  float *x = malloc(rows * width * sizeof *x), *y = malloc(rows * sizeof *y);
  unsigned state = seed;
  for (size_t r = 0; r < rows; r++) {
    double score = 0;
    for (size_t c = 0; c < width; c++) {
      state = state * 1103515245u + 12345u;
      double u = (double)((state >> 8) & 0xffff) / 65536.0;
      float v = c % 3 == 0 ? (float)(u * 100.0) : c % 3 == 1 ? (float)(int)(u * 7.0) : u < 0.4f;
      state = state * 1103515245u + 12345u;
      if ((state >> 16) % 8 == 0) v = NAN;
      x[r * width + c] = v;
      if (!isnan(v)) score += (c % 4 == 0 ? 1.0 : -0.5) * (c % 3 == 0 ? v / 100.0 : v / 3.0);
    }
    state = state * 1103515245u + 12345u;
    y[r] = score + (double)((state >> 16) % 100) / 200.0 > 0.2;
  }
  *labels = y;
  return x;
}

/* Contributions of the tabulated layouts against the per-leaf extend/unwind algorithm (no
 * tables, in double) on every row, and repeated calls bit-identical. */
static void compare_layouts(const char *json, size_t size, const float *x, size_t rows,
                            size_t width) {
  vd_error err = {0};
  vd_forest *fast = vd_forest_load(json, size, "m.json", 8, &err);
  vd_forest *slow = vd_forest_load(json, size, "m.json", 0, &err);
  ck_assert_msg(fast && slow, "%s", err.message);
  ck_assert_uint_eq(vd_forest_layout_of(slow).dense_trees, 0);
  double *a = malloc(3 * (width + 1) * sizeof *a), *b = a + width + 1, *c = b + width + 1;
  double worst = 0;
  for (size_t r = 0; r < rows; r++) {
    vd_forest_contributions(fast, x + r * width, a);
    vd_forest_contributions(slow, x + r * width, b);
    vd_forest_contributions(fast, x + r * width, c);
    ck_assert_msg(memcmp(a, c, (width + 1) * sizeof *a) == 0, "row %zu: not deterministic", r);
    double sum = 0;
    for (size_t k = 0; k <= width; k++) {
      worst = fmax(worst, fabs(a[k] - b[k]));
      sum += a[k];
    }
    float m = vd_forest_margin(fast, x + r * width);
    ck_assert_msg(fabs(sum - (double)m) < 1e-5, "row %zu: sum %.9g, margin %.9g", r, sum,
                  (double)m);
  }
  ck_assert_msg(worst < 2e-6, "tabulated vs per-leaf contributions differ by %g", worst);
  free(a);
  vd_forest_free(fast);
  vd_forest_free(slow);
}

/* Forests of several shapes on synthetic data with missing values: few columns (dense rows over
 * all columns), many columns (dense rows over each tree's columns, and sparse grouped trees when
 * a tree reads more than 16), shallow and deep trees, and more splits than one decision block. */
START_TEST(random_forests_of_every_layout_match_xgboost) {
  size_t rows = 2000; /* enough for full trees: the shapes below depend on it */
  struct {
    size_t width;
    const char *depth, *eta; /* a small eta keeps late trees full (many splits) */
    int iterations;
    bool dense, grouped, leaf, blocks;
  } shapes[] = {
      {6, "2", "0.3", 20, true, false, false, false},  /* few columns, shallow */
      {6, "5", "0.02", 200, true, false, false, true}, /* few columns, > 4,096 dense splits */
      {40, "4", "0.3", 20, true, false, false, false}, /* dense over each tree's columns */
      {40, "6", "0.3", 40, true, true, true, false},   /* some read > 16 columns, > 64 nodes */
      {40, "8", "0.3", 10, false, false, true, false}, /* deeper than 6: leaf by leaf */
  };
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    size_t width = shapes[i].width;
    float *y;
    float *x = synthetic_rows(rows, width, 777u + (unsigned)i, &y);
    size_t size;
    char *json = train_model(x, rows, width, y, shapes[i].depth, "0.4", shapes[i].iterations,
                             shapes[i].eta, &size);
    vd_error err = {0};
    vd_forest *f = vd_forest_load(json, size, "m.json", 8, &err);
    ck_assert_msg(f != NULL, "%s", err.message);
    vd_forest_layout l = vd_forest_layout_of(f);
    fprintf(stderr,
            "shape %zu: %zu columns, depth %s: %zu dense, %zu grouped, %zu leaf trees, %zu "
            "decision blocks\n",
            i, width, shapes[i].depth, l.dense_trees, l.grouped_trees, l.leaf_trees,
            l.decision_blocks);
    ck_assert_msg((l.dense_trees > 0) == shapes[i].dense, "shape %zu: dense trees", i);
    ck_assert_msg((l.grouped_trees > 0) == shapes[i].grouped, "shape %zu: grouped trees", i);
    ck_assert_msg((l.leaf_trees > 0) == shapes[i].leaf, "shape %zu: leaf trees", i);
    ck_assert_msg((l.decision_blocks > 1) == shapes[i].blocks, "shape %zu: decision blocks", i);
    vd_forest_free(f);
    size_t checked = under_sanitizer() ? rows / 10 : rows; /* the same forests, fewer rows */
    compare_all(json, size, x, checked, width, 8, 1);
    compare_layouts(json, size, x, checked, width);
    free(json);
    free(x);
    free(y);
  }
}
END_TEST

/* A column whose value equals a split threshold goes right, -0 and 0 are one threshold, and
 * missing values follow each split's default, in the dense layout too. */
START_TEST(dense_decisions_at_thresholds_and_missing) {
  const char *json =
      "{\"learner\": {\"gradient_booster\": {\"name\": \"gbtree\", \"model\": {\"trees\": ["
      "{\"left_children\": [1, 3, 5, -1, -1, -1, -1], \"right_children\": [2, 4, 6, -1, -1, -1, "
      "-1], \"split_indices\": [0, 1, 1, 0, 0, 0, 0], \"split_conditions\": [0.5, 0, -0.0, 0.1, "
      "0.2, 0.3, 0.4], \"default_left\": [1, 0, 1, 0, 0, 0, 0], \"sum_hessian\": [8, 4, 4, 1, 3, "
      "2, 2], \"split_type\": [0, 0, 0, 0, 0, 0, 0], \"categories_nodes\": []},"
      "{\"left_children\": [1, -1, -1], \"right_children\": [2, -1, -1], \"split_indices\": [1, "
      "0, 0], \"split_conditions\": [0, -0.5, 0.5], \"default_left\": [0, 0, 0], "
      "\"sum_hessian\": [2, 1, 1], \"split_type\": [0, 0, 0], \"categories_nodes\": []}], "
      "\"tree_info\": [0, 0]}}, \"learner_model_param\": {\"base_score\": \"5E-1\", "
      "\"num_feature\": \"2\", \"num_class\": \"0\"}, \"objective\": {\"name\": "
      "\"binary:logistic\"}}}";
  float x[][2] = {{0.5f, 0.0f}, {0.4f, -0.0f}, {NAN, NAN},           {0.4f, NAN},
                  {NAN, 1.0f},  {1.0f, -1.0f}, {-INFINITY, INFINITY}};
  size_t rows = sizeof x / sizeof x[0];
  vd_error err = {0};
  vd_forest *f = vd_forest_load(json, strlen(json), "m.json", 8, &err);
  ck_assert_msg(f != NULL, "%s", err.message);
  ck_assert_uint_eq(vd_forest_layout_of(f).dense_trees, 2);
  /* XGBoost does not load a hand-written model (no training config): the per-leaf algorithm is
   * the reference here, and the walk for where each row goes */
  double phi[3];
  vd_forest_contributions(f, x[0], phi); /* 0.5 is not < 0.5: right, then 0 is not < -0: right */
  ck_assert(vd_forest_margin(f, x[0]) == 0.4f + 0.5f);
  ck_assert(fabs(phi[0] + phi[1] + phi[2] - (0.4 + 0.5)) < 1e-6);
  x[0][1] = -0.0f;
  ck_assert(vd_forest_margin(f, x[0]) == 0.4f + 0.5f);
  ck_assert(vd_forest_margin(f, x[2]) == 0.2f + 0.5f); /* left, right, right (the defaults) */
  vd_forest_free(f);
  compare_layouts(json, strlen(json), &x[0][0], rows, 2);
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
  tcase_add_test(tc, random_forests_of_every_layout_match_xgboost);
  tcase_add_test(tc, dense_decisions_at_thresholds_and_missing);
  tcase_add_test(tc, malformed_models_are_refused);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
