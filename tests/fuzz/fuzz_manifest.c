/* Fuzzes the model bundle loader (manifest checks, features, the hash check, the XGBoost JSON
 * reader) and, when a bundle loads, scoring with contributions.
 *
 * Input: manifest.json bytes, then a line "--model.json--", then model.json bytes. Every other
 * input is re-stamped first (vd_bundle_rehash: its version is then the bundle's), so that it gets
 * past the version check; the rest are loaded as they are. The model part is also fed to
 * vd_forest_load directly, so the tree reader is fuzzed whatever the hash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vd_bundle.h"
#include "vd_forest.h"
#include "vd_model.h"

static const char separator[] = "\n--model.json--\n";

static void write_file(const char *dir, const char *name, const uint8_t *data, size_t size) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f) abort();
  if (size && fwrite(data, 1, size, f) != size) abort();
  fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char dir[64];
  if (!dir[0]) {
    snprintf(dir, sizeof dir, "/tmp/vd-fuzz-manifest-XXXXXX");
    if (!mkdtemp(dir)) abort();
  }
  const uint8_t *model = NULL;
  size_t manifest_size = size, model_size = 0;
  for (size_t i = 0; i + sizeof separator - 1 <= size; i++)
    if (memcmp(data + i, separator, sizeof separator - 1) == 0) {
      manifest_size = i;
      model = data + i + sizeof separator - 1;
      model_size = size - i - (sizeof separator - 1);
      break;
    }
  write_file(dir, "manifest.json", data, manifest_size);
  write_file(dir, "model.json", model ? model : (const uint8_t *)"", model_size);
  vd_error err;
  if (model) {
    vd_forest *f = vd_forest_load((const char *)model, model_size, "model.json", 8, &err);
    if (f && vd_forest_feature_count(f) <= 4096) {
      float *row = calloc(vd_forest_feature_count(f), sizeof *row);
      double *phi = calloc(vd_forest_feature_count(f) + 1, sizeof *phi);
      if (row && phi) {
        (void)vd_forest_margin(f, row);
        vd_forest_contributions(f, row, phi);
      }
      free(row);
      free(phi);
    }
    vd_forest_free(f);
  }
  char version[VD_SHA256_HEX_SIZE];
  if (size % 2 == 0) (void)vd_bundle_rehash(dir, version, NULL, &err);
  vd_model *m = vd_model_load(dir, NULL, &err);
  if (!m) return 0;
  vd_model_result r;
  if (vd_model_result_init(m, &r, &err)) {
    json_t *req = json_pack("{s:{s:i, s:f, s:b, s:s}}", "subject", "recency", 3, "history", 120.0,
                            "mens", 1, "zip_code", "Urban");
    for (size_t a = 0; a <= vd_model_arm_count(m); a++) {
      const char *t = a < vd_model_arm_count(m) ? vd_model_arm(m, a) : vd_model_control(m);
      if (vd_model_score(m, req, t, true, &r, &err)) {
        json_decref(vd_model_reasons(m, r.feature_contributions, req, 3, false));
        json_decref(vd_model_result_to_json(m, &r));
      }
    }
    json_decref(req);
    vd_model_result_free(&r);
  }
  vd_model_free(m);
  return 0;
}
