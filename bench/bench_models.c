/* Single-row scoring cost of the promotions model: the native evaluator and TreeSHAP next to
 * XGBoost's own calls on the same rows, in the same run.
 *
 *   build/bench_models [--rows N] [--bundle DIR] [--data CSV]
 *
 * Rows are the Hillstrom customers (default: the first 10,000), each scored for the arm it
 * received. Timings are per call, p50/p99 in microseconds, after a warm-up. XGBoost runs with
 * nthread=1 and one reused proxy DMatrix for in-place prediction (its fastest single-row path);
 * pred_contribs needs a DMatrix, created per row. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xgboost/c_api.h>

#include "vd_args.h"
#include "vd_buf.h"
#include "vd_csv.h"
#include "vd_features.h"
#include "vd_forest.h"
#include "vd_model.h"
#include "vd_time.h"

enum { WARMUP = 1000 };

typedef struct rows {
  size_t n, width;
  float *x;
  json_t **requests;
  char **treatment;
} rows;

/* Bit-wise equality of two floats (the native evaluator must reproduce XGBoost exactly). */
static bool same_bits(float a, float b) {
  uint32_t x, y;
  memcpy(&x, &a, sizeof x);
  memcpy(&y, &b, sizeof y);
  return x == y;
}

static void free_rows(rows *r) {
  for (size_t i = 0; i < r->n; i++) {
    json_decref(r->requests[i]);
    free(r->treatment[i]);
  }
  free(r->requests);
  free(r->treatment);
  free(r->x);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void percentiles(double *t, size_t n, double *p50, double *p99) {
  qsort(t, n, sizeof *t, cmp_double);
  *p50 = t[n / 2];
  *p99 = t[(size_t)((double)n * 0.99)];
}

static bool load_rows(const vd_features *f, const char *path, size_t max, rows *r, vd_error *err) {
  vd_csv *csv = vd_csv_open(path, 1u << 30, err);
  if (!csv) return false;
  const char *const *cells;
  size_t count;
  size_t cols[64], segment = SIZE_MAX;
  if (vd_csv_next(csv, &cells, &count, err) != 1 ||
      !vd_features_bind_csv(f, cells, count, path, cols, err)) {
    vd_csv_close(csv);
    return false;
  }
  for (size_t c = 0; c < count; c++)
    if (strcmp(cells[c], "segment") == 0) segment = c;
  r->width = vd_features_width(f);
  r->x = malloc(max * r->width * sizeof *r->x);
  r->requests = calloc(max, sizeof(json_t *));
  r->treatment = calloc(max, sizeof *r->treatment);
  while (r->n < max && vd_csv_next(csv, &cells, &count, err) == 1) {
    json_t *req = vd_features_csv_request(f, cols, cells, count, path, vd_csv_line(csv), err);
    if (!req || segment >= count) break;
    float *row = r->x + r->n * r->width;
    if (!vd_features_encode(f, req, row, err) ||
        !vd_features_set_treatment(f, cells[segment], "No E-Mail", row, err)) {
      json_decref(req);
      break;
    }
    r->requests[r->n] = req;
    r->treatment[r->n] = strdup(cells[segment]);
    r->n++;
  }
  vd_csv_close(csv);
  return r->n > 0;
}

typedef struct xgb {
  BoosterHandle booster;
  DMatrixHandle proxy;
  char config[256];
} xgb;

static const float *xgb_inplace(xgb *x, const float *row, size_t width) {
  char iface[256];
  snprintf(iface, sizeof iface,
           "{\"data\": [%llu, true], \"shape\": [1, %zu], \"typestr\": \"<f4\", \"version\": 3}",
           (unsigned long long)(uintptr_t)row, width);
  const bst_ulong *shape;
  bst_ulong dim;
  const float *out;
  if (XGBoosterPredictFromDense(x->booster, iface, x->config, x->proxy, &shape, &dim, &out) != 0) {
    fprintf(stderr, "XGBoost: %s\n", XGBGetLastError());
    exit(1);
  }
  return out;
}

static const float *xgb_contribs(xgb *x, const float *row, size_t width) {
  DMatrixHandle dm;
  const bst_ulong *shape;
  bst_ulong dim;
  const float *out;
  if (XGDMatrixCreateFromMat(row, 1, width, NAN, &dm) != 0 ||
      XGBoosterPredictFromDMatrix(x->booster, dm,
                                  "{\"type\": 2, \"training\": false, \"iteration_begin\": 0, "
                                  "\"iteration_end\": 0, \"strict_shape\": false}",
                                  &shape, &dim, &out) != 0) {
    fprintf(stderr, "XGBoost: %s\n", XGBGetLastError());
    exit(1);
  }
  XGDMatrixFree(dm); /* out stays valid: it lives in the booster's thread-local buffer */
  return out;
}

static void line(const char *what, double *t, size_t n, double *p50, double *p99) {
  percentiles(t, n, p50, p99);
  printf("  %-58s %8.2f %8.2f\n", what, *p50, *p99);
}

int main(int argc, char **argv) {
  vd_option options[] = {
      {"rows", true, NULL, "rows to time (default 10000, at least 10000 for the report)"},
      {"bundle", true, NULL, "model bundle (default examples/promotions/model)"},
      {"data", true, NULL, "CSV (default ../shared/data/hillstrom/hillstrom.csv)"},
  };
  bool help = false;
  size_t npos = 0;
  vd_error err = {0};
  if (!vd_args_parse(argc, argv, 1, options, 3, NULL, 0, &npos, &help, &err) || help) {
    fprintf(help ? stdout : stderr,
            "usage: bench_models [--rows N] [--bundle DIR] [--data CSV]\n%s\n",
            help ? "" : err.message);
    return help ? 0 : 2;
  }
  const char *bundle = vd_args_get(options, 3, "bundle");
  const char *data = vd_args_get(options, 3, "data");
  const char *rows_arg = vd_args_get(options, 3, "rows");
  if (!bundle) bundle = VERDICT_SOURCE_DIR "/examples/promotions/model";
  if (!data) data = VERDICT_SHARED_DIR "/data/hillstrom/hillstrom.csv";
  size_t n = rows_arg ? strtoul(rows_arg, NULL, 10) : 10000;
  if (n < 10) n = 10;

  vd_model *model = vd_model_load(bundle, NULL, &err);
  if (!model) {
    fprintf(stderr, "bench_models: %s\n", err.message);
    return 1;
  }
  const json_t *man = vd_model_manifest(model);
  vd_features *f = vd_features_parse(json_object_get(man, "features"),
                                     json_object_get(json_object_get(man, "treatment"), "arms"),
                                     "features", &err);
  rows r = {0};
  if (!f || !load_rows(f, data, n, &r, &err)) {
    fprintf(stderr, "bench_models: %s\n", err.message);
    free_rows(&r);
    return 1;
  }
  n = r.n;
  char path[4096];
  snprintf(path, sizeof path, "%s/model.json", bundle);
  size_t size;
  char *json = vd_read_file(path, 1u << 30, &size, &err);
  vd_forest *forest =
      json ? vd_forest_load(json, size, path, VD_FOREST_DEFAULT_TABLE_FEATURES, &err) : NULL;
  xgb x = {0};
  if (!forest || XGBoosterCreate(NULL, 0, &x.booster) != 0 ||
      XGBoosterLoadModelFromBuffer(x.booster, json, size) != 0 ||
      XGBoosterSetParam(x.booster, "nthread", "1") != 0 || XGProxyDMatrixCreate(&x.proxy) != 0) {
    fprintf(stderr, "bench_models: cannot load %s: %s\n", path,
            forest ? XGBGetLastError() : err.message);
    free_rows(&r);
    return 1;
  }
  snprintf(x.config, sizeof x.config,
           "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
           "\"strict_shape\": false, \"missing\": NaN, \"cache_id\": 0}");
  size_t w = r.width;
  double *t = malloc(n * sizeof *t);
  float *control = malloc(w * sizeof *control);
  double *phi = malloc((w + 1) * sizeof *phi);
  vd_model_result res;
  vd_model_result_init(model, &res, &err);
  size_t base = vd_features_base_width(f);
  printf(
      "bench_models: %s (%zu trees, max depth %zu, %zu columns, TreeSHAP tables %.1f MB), %zu "
      "rows\n",
      vd_model_version(model), vd_forest_tree_count(forest), vd_forest_max_depth(forest), w,
      (double)vd_forest_table_bytes(forest) / 1e6, n);

  /* warm-up: first XGBoost prediction after load is slow, caches */
  for (size_t i = 0; i < WARMUP; i++) {
    const float *row = r.x + (i % n) * w;
    (void)vd_forest_margin(forest, row);
    (void)xgb_inplace(&x, row, w);
    vd_model_score(model, r.requests[i % n], r.treatment[i % n], true, &res, &err);
  }
  /* correctness on the same rows, so the timings compare equal work */
  size_t mismatches = 0;
  for (size_t i = 0; i < n; i++) {
    const float *row = r.x + i * w;
    float p = vd_forest_transform(forest, vd_forest_margin(forest, row));
    if (!same_bits(p, *xgb_inplace(&x, row, w))) mismatches++;
  }
  printf("native vs XGBoost in-place probabilities: %zu of %zu rows differ (bit-wise)\n\n",
         mismatches, n);
  printf("  %-58s %8s %8s\n", "single-row cost, µs", "p50", "p99");
  double np50, np99, xp50, xp99, tc50, tc99, xtc50, xtc99, full50, full99, xc50, xc99, xfull50,
      xfull99, nc50, nc99;
  volatile float sink = 0;
  for (size_t i = 0; i < n; i++) {
    const float *row = r.x + i * w;
    uint64_t t0 = vd_monotonic_ns();
    sink += vd_forest_transform(forest, vd_forest_margin(forest, row));
    t[i] = (double)(vd_monotonic_ns() - t0) / 1e3;
  }
  line("native predict (one row, encoded)", t, n, &np50, &np99);
  for (size_t i = 0; i < n; i++) {
    const float *row = r.x + i * w;
    uint64_t t0 = vd_monotonic_ns();
    sink += *xgb_inplace(&x, row, w);
    t[i] = (double)(vd_monotonic_ns() - t0) / 1e3;
  }
  line("XGBoost in-place predict (proxy DMatrix, nthread=1)", t, n, &xp50, &xp99);
  for (size_t i = 0; i < n; i++) {
    uint64_t t0 = vd_monotonic_ns();
    vd_model_score(model, r.requests[i], r.treatment[i], false, &res, &err);
    t[i] = (double)(vd_monotonic_ns() - t0) / 1e3;
    sink += (float)res.uplift;
  }
  line("native treatment + control (vd_model_score: encode JSON, 2 predictions)", t, n, &tc50,
       &tc99);
  for (size_t i = 0; i < n; i++) {
    const float *row = r.x + i * w;
    memcpy(control, row, w * sizeof *control);
    for (size_t a = base; a < w; a++) control[a] = 0;
    uint64_t t0 = vd_monotonic_ns();
    sink += *xgb_inplace(&x, row, w);
    sink += *xgb_inplace(&x, control, w);
    t[i] = (double)(vd_monotonic_ns() - t0) / 1e3;
  }
  line("XGBoost treatment + control (2 in-place predictions)", t, n, &xtc50, &xtc99);
  for (size_t i = 0; i < n; i++) {
    const float *row = r.x + i * w;
    uint64_t t0 = vd_monotonic_ns();
    vd_forest_contributions(forest, row, phi);
    t[i] = (double)(vd_monotonic_ns() - t0) / 1e3;
    sink += (float)phi[0];
  }
  line("native exact TreeSHAP contributions (one row)", t, n, &nc50, &nc99);
  for (size_t i = 0; i < n; i++) {
    uint64_t t0 = vd_monotonic_ns();
    vd_model_score(model, r.requests[i], r.treatment[i], true, &res, &err);
    t[i] = (double)(vd_monotonic_ns() - t0) / 1e3;
    sink += (float)res.contributions[0];
  }
  line("native treatment + control + exact contributions (vd_model_score)", t, n, &full50, &full99);
  double worst = 0;
  for (size_t i = 0; i < n; i++) {
    const float *row = r.x + i * w;
    uint64_t t0 = vd_monotonic_ns();
    const float *c = xgb_contribs(&x, row, w);
    t[i] = (double)(vd_monotonic_ns() - t0) / 1e3;
    vd_forest_contributions(forest, row, phi);
    for (size_t k = 0; k <= w; k++) worst = fmax(worst, fabs(phi[k] - (double)c[k]));
  }
  line("XGBoost pred_contribs (one-row DMatrix)", t, n, &xc50, &xc99);
  for (size_t i = 0; i < n; i++) {
    const float *row = r.x + i * w;
    memcpy(control, row, w * sizeof *control);
    for (size_t a = base; a < w; a++) control[a] = 0;
    uint64_t t0 = vd_monotonic_ns();
    sink += *xgb_inplace(&x, row, w);
    sink += *xgb_inplace(&x, control, w);
    sink += xgb_contribs(&x, row, w)[0];
    t[i] = (double)(vd_monotonic_ns() - t0) / 1e3;
  }
  line("XGBoost treatment + control + pred_contribs", t, n, &xfull50, &xfull99);
  printf("\n  max |native − XGBoost| contribution over these rows: %.3g\n", worst);
  printf(
      "  ratios XGBoost / native (p50, p99): predict %.1fx %.1fx; treatment+control %.1fx "
      "%.1fx; contributions %.1fx %.1fx; all three %.1fx %.1fx\n",
      xp50 / np50, xp99 / np99, xtc50 / tc50, xtc99 / tc99, xc50 / nc50, xc99 / nc99,
      xfull50 / full50, xfull99 / full99);
  printf("  targets: predict p50 <= 5 µs: %s; treatment+control+contributions p99 <= 100 µs: %s\n",
         np50 <= 5 ? "met" : "MISSED", full99 <= 100 ? "met" : "MISSED");
  (void)sink;
  vd_model_result_free(&res);
  free(t);
  free(control);
  free(phi);
  XGDMatrixFree(x.proxy);
  XGBoosterFree(x.booster);
  vd_forest_free(forest);
  free(json);
  vd_model_free(model);
  vd_features_free(f);
  free_rows(&r);
  return 0;
}
