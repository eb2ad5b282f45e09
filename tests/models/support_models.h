/* Helpers for the models tests: the shipped bundle, the Hillstrom rows encoded with its features,
 * and XGBoost as the reference scorer. */
#ifndef SUPPORT_MODELS_H
#define SUPPORT_MODELS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <xgboost/c_api.h>

#include "vd_features.h"

#define SHIPPED_BUNDLE VERDICT_SOURCE_DIR "/examples/promotions/model"
#define PROMOTIONS_SCHEMA VERDICT_SOURCE_DIR "/examples/promotions/schema.yaml"

typedef struct test_rows {
  size_t rows, width;
  float *x;          /* rows × width, treatment columns = the arm the customer received */
  json_t **requests; /* each row as a request {"subject": {...}} */
  char **treatment;  /* the received segment */
} test_rows;

/* True when the suite runs under a sanitizer (VERDICT_UNDER_SANITIZER=1): use a sample. */
bool under_sanitizer(void);
/* Loads the Hillstrom CSV (every row, or every 25th under a sanitizer; max_rows caps it when
 * non-zero) encoded with `features`. False (after printing SKIP) when the shared data is absent. */
bool load_hillstrom(const vd_features *features, size_t max_rows, test_rows *out);
void free_rows(test_rows *rows);
/* The features of a bundle's manifest (caller frees). */
vd_features *bundle_features(const char *bundle_dir);
/* Reads a file into a heap string (caller frees); aborts the test on failure. */
char *slurp(const char *path, size_t *size);
/* An XGBoost booster from a model.json text, nthread=2 (for the reference batch calls). */
BoosterHandle reference_booster(const char *json, size_t size);
/* XGBoost's prediction for all rows: type 0 (transformed), 1 (margin) or 2 (contributions,
 * width + 1 per row). Returns a heap copy. */
float *reference_predict(BoosterHandle booster, const float *x, size_t rows, size_t width,
                         int type);
/* Copies a directory's regular files (a bundle) into a new temporary directory; returns its
 * path (static storage per call slot 0..3). */
const char *copy_bundle(const char *from, int slot);
/* Writes text to dir/name. */
void write_text(const char *dir, const char *name, const char *text);

#endif
