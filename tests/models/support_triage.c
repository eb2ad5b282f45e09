/* Triage test helpers (support_triage.h). */
#include "support_triage.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <xgboost/c_api.h>

#include "support_models.h"
#include "vd_test.h"

bool triage_read_rows(const char *name, triage_rows *rows) {
  char rel[256], path[4096];
  snprintf(rel, sizeof rel, "data/clinc150/%s", name);
  if (!vd_test_shared_path(rel, path, sizeof path)) return false;
  memset(rows, 0, sizeof *rows);
  size_t size, cap = 0;
  char *data = slurp(path, &size);
  for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
    json_t *j = json_loads(line, 0, NULL);
    ck_assert_ptr_nonnull(j);
    if (rows->count == cap) {
      cap = cap ? cap * 2 : 1024;
      rows->text = realloc(rows->text, cap * sizeof(char *));
      rows->intent = realloc(rows->intent, cap * sizeof(char *));
      ck_assert(rows->text && rows->intent);
    }
    rows->text[rows->count] = strdup(json_string_value(json_object_get(j, "text")));
    rows->intent[rows->count] = strdup(json_string_value(json_object_get(j, "intent")));
    rows->total = ++rows->count;
    json_decref(j);
  }
  free(data);
  return true;
}

void triage_free_rows(triage_rows *rows) {
  for (size_t i = 0; i < rows->total; i++) {
    free(rows->text[i]);
    free(rows->intent[i]);
  }
  free(rows->text);
  free(rows->intent);
  memset(rows, 0, sizeof *rows);
}

double *triage_reference_margins(const char *bundle_dir, const triage_rows *rows) {
  char path[4096];
  snprintf(path, sizeof path, "%s/manifest.json", bundle_dir);
  json_t *manifest = json_load_file(path, 0, NULL);
  ck_assert_ptr_nonnull(manifest);
  vd_text_config cfg;
  ck_assert(
      vd_text_config_from_json(json_object_get(manifest, "featuriser"), "featuriser", &cfg, NULL));
  const json_t *columns = json_object_get(manifest, "columns");
  size_t ncol = json_array_size(columns), k = json_array_size(json_object_get(manifest, "classes"));
  size_t space = (size_t)1 << cfg.hash_bits;
  long *column_of = malloc(space * sizeof(long));
  ck_assert_ptr_nonnull(column_of);
  for (size_t b = 0; b < space; b++) column_of[b] = -1;
  for (size_t c = 0; c < ncol; c++)
    column_of[json_integer_value(json_array_get(columns, c))] = (long)c;
  /* CSR in model columns. */
  size_t *indptr = malloc((rows->count + 1) * sizeof(size_t)), nnz = 0, cap = 1 << 16;
  unsigned *indices = malloc(cap * sizeof(unsigned));
  float *values = malloc(cap * sizeof(float));
  vd_text_features *f = vd_text_features_new();
  indptr[0] = 0;
  for (size_t r = 0; r < rows->count; r++) {
    ck_assert(vd_text_featurise(&cfg, rows->text[r], strlen(rows->text[r]), f, NULL));
    for (size_t i = 0; i < vd_text_features_count(f); i++) {
      long c = column_of[vd_text_features_indices(f)[i]];
      if (c < 0) continue;
      if (nnz == cap) {
        cap *= 2;
        indices = realloc(indices, cap * sizeof(unsigned));
        values = realloc(values, cap * sizeof(float));
      }
      indices[nnz] = (unsigned)c;
      values[nnz++] = vd_text_features_values(f)[i];
    }
    indptr[r + 1] = nnz;
  }
  DMatrixHandle dm;
  ck_assert_int_eq(
      XGDMatrixCreateFromCSREx(indptr, indices, values, rows->count + 1, nnz, ncol, &dm), 0);
  /* XGBoost reads the model file the manifest names (UBJSON or JSON) from a buffer itself. */
  const char *model_file = json_string_value(json_object_get(manifest, "model_file"));
  snprintf(path, sizeof path, "%s/%s", bundle_dir, model_file ? model_file : "model.json");
  size_t size;
  char *json = slurp(path, &size);
  BoosterHandle b = reference_booster(json, size);
  bst_ulong len;
  const float *out;
  ck_assert_msg(XGBoosterPredict(b, dm, 1, 0, 0, &len, &out) == 0, "%s", XGBGetLastError());
  ck_assert_uint_eq(len, rows->count * k);
  double *margins = malloc(len * sizeof(double));
  for (size_t i = 0; i < len; i++) margins[i] = out[i];
  XGBoosterFree(b);
  XGDMatrixFree(dm);
  free(json);
  vd_text_features_free(f);
  free(indptr);
  free(indices);
  free(values);
  free(column_of);
  json_decref(manifest);
  return margins;
}
