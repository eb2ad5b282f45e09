#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support_models.h"
#include "vd_buf.h"
#include "vd_csv.h"
#include "vd_test.h"

bool under_sanitizer(void) {
  const char *v = getenv("VERDICT_UNDER_SANITIZER");
  return v && strcmp(v, "1") == 0;
}

char *slurp(const char *path, size_t *size) {
  vd_error err = {0};
  char *text = vd_read_file(path, 1u << 30, size, &err);
  ck_assert_msg(text != NULL, "%s", err.message);
  return text;
}

vd_features *bundle_features(const char *bundle_dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/manifest.json", bundle_dir);
  json_error_t jerr;
  json_t *m = json_load_file(path, 0, &jerr);
  ck_assert_msg(m != NULL, "%s: %s", path, jerr.text);
  vd_error err = {0};
  vd_features *f =
      vd_features_parse(json_object_get(m, "features"),
                        json_object_get(json_object_get(m, "treatment"), "arms"), "features", &err);
  ck_assert_msg(f != NULL, "%s: %s", err.field, err.message);
  json_decref(m);
  return f;
}

bool load_hillstrom(const vd_features *features, size_t max_rows, test_rows *out) {
  char buf[4096];
  const char *path = vd_test_shared_path("data/hillstrom/hillstrom.csv", buf, sizeof buf);
  *out = (test_rows){0};
  if (!path) return false;
  vd_error err = {0};
  vd_csv *csv = vd_csv_open(path, 1u << 30, &err);
  ck_assert_msg(csv != NULL, "%s", err.message);
  const char *const *cells;
  size_t count, header_count;
  ck_assert_int_eq(vd_csv_next(csv, &cells, &count, &err), 1);
  header_count = count;
  size_t nfeat = vd_features_count(features);
  size_t *column_of = calloc(nfeat, sizeof *column_of);
  ck_assert(vd_features_bind_csv(features, cells, count, path, column_of, &err));
  size_t segment = count;
  for (size_t c = 0; c < count; c++)
    if (strcmp(cells[c], "segment") == 0) segment = c;
  ck_assert(segment < count);
  size_t step = under_sanitizer() ? 25 : 1, line = 0, cap = 0;
  out->width = vd_features_width(features);
  while (vd_csv_next(csv, &cells, &count, &err) == 1) {
    if (line++ % step) continue;
    if (max_rows && out->rows == max_rows) break;
    ck_assert_uint_eq(count, header_count);
    if (out->rows == cap) {
      cap = cap ? cap * 2 : 4096;
      out->x = realloc(out->x, cap * out->width * sizeof *out->x);
      out->requests = realloc(out->requests, cap * sizeof(json_t *));
      out->treatment = realloc(out->treatment, cap * sizeof *out->treatment);
      ck_assert(out->x && out->requests && out->treatment);
    }
    json_t *req =
        vd_features_csv_request(features, column_of, cells, count, path, vd_csv_line(csv), &err);
    ck_assert_msg(req != NULL, "%s", err.message);
    float *row = out->x + out->rows * out->width;
    ck_assert_msg(vd_features_encode(features, req, row, &err), "%s", err.message);
    ck_assert_msg(vd_features_set_treatment(features, cells[segment], "No E-Mail", row, &err), "%s",
                  err.message);
    json_t *wrapped = json_object();
    json_object_set_new(wrapped, "subject", json_deep_copy(json_object_get(req, "subject")));
    json_decref(req);
    out->requests[out->rows] = wrapped;
    out->treatment[out->rows] = strdup(cells[segment]);
    out->rows++;
  }
  free(column_of);
  vd_csv_close(csv);
  return true;
}

void free_rows(test_rows *r) {
  for (size_t i = 0; i < r->rows; i++) {
    json_decref(r->requests[i]);
    free(r->treatment[i]);
  }
  free(r->x);
  free(r->requests);
  free(r->treatment);
  *r = (test_rows){0};
}

BoosterHandle reference_booster(const char *json, size_t size) {
  BoosterHandle b;
  ck_assert_int_eq(XGBoosterCreate(NULL, 0, &b), 0);
  ck_assert_msg(XGBoosterLoadModelFromBuffer(b, json, size) == 0, "%s", XGBGetLastError());
  ck_assert_int_eq(XGBoosterSetParam(b, "nthread", "2"), 0);
  return b;
}

float *reference_predict(BoosterHandle b, const float *x, size_t rows, size_t width, int type) {
  DMatrixHandle dm;
  ck_assert_int_eq(XGDMatrixCreateFromMat(x, rows, width, NAN, &dm), 0);
  char config[256];
  snprintf(config, sizeof config,
           "{\"type\": %d, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
           "\"strict_shape\": false}",
           type);
  const bst_ulong *shape;
  bst_ulong dim;
  const float *result;
  ck_assert_msg(XGBoosterPredictFromDMatrix(b, dm, config, &shape, &dim, &result) == 0, "%s",
                XGBGetLastError());
  size_t n = rows * (type == 2 ? width + 1 : 1);
  float *copy = malloc(n * sizeof *copy);
  memcpy(copy, result, n * sizeof *copy);
  XGDMatrixFree(dm);
  return copy;
}

const char *copy_bundle(const char *from, int slot) {
  static char dirs[4][256];
  snprintf(dirs[slot], sizeof dirs[slot], "/tmp/vd-models-test-XXXXXX");
  ck_assert(mkdtemp(dirs[slot]) != NULL);
  DIR *d = opendir(from);
  ck_assert(d != NULL);
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char src[4096], dst[4096];
    snprintf(src, sizeof src, "%s/%s", from, e->d_name);
    snprintf(dst, sizeof dst, "%s/%s", dirs[slot], e->d_name);
    size_t size;
    char *text = slurp(src, &size);
    FILE *f = fopen(dst, "wb");
    ck_assert(f && fwrite(text, 1, size, f) == size);
    fclose(f);
    free(text);
  }
  closedir(d);
  return dirs[slot];
}

void write_text(const char *dir, const char *name, const char *text) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  ck_assert(f != NULL);
  fputs(text, f);
  fclose(f);
}
