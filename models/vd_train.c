#include "vd_train.h"

#include <errno.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xgboost/c_api.h>

#include "vd_args.h"
#include "vd_buf.h"
#include "vd_bundle.h"
#include "vd_csv.h"
#include "vd_features.h"
#include "vd_forest.h"
#include "vd_model.h"
#include "vd_model_eval.h"
#include "vd_triage.h"
#include "vd_yaml.h"

enum { MAX_DATA_BYTES = 1 << 30 };

typedef enum learner { LEARNER_AUTO, LEARNER_S, LEARNER_T } learner;
static const char *const learner_names[] = {"auto", "s-learner", "t-learner"};

typedef struct spec {
  vd_yaml_doc *doc;
  const json_t *root;
  const char *name, *label, *treatment_column, *control;
  const json_t *arms;
  vd_features *features;
  learner learner;
  double valid_fraction, selection_fraction;
  unsigned long seed;
  size_t bootstrap;
  const json_t *xgboost;
  int num_round;
  const json_t *reasons;
} spec;

typedef struct dataset {
  size_t rows, width;
  float *x;         /* rows × width, treatment columns set to the row's received arm */
  unsigned char *y; /* label */
  int *arm;         /* arm index, or -1 for control */
  char sha256[VD_SHA256_HEX_SIZE];
} dataset;

/* ---------- spec ---------- */

static bool spec_error(const spec *s, const json_t *container, const char *key, vd_error *err,
                       const char *message) {
  return vd_yaml_error(s->doc, container, key, 0, err, "%s: %s", key, message);
}

static const char *required_string(const spec *s, const json_t *obj, const char *key,
                                   vd_error *err) {
  const json_t *v = json_object_get(obj, key);
  if (!json_is_string(v) || !json_string_length(v)) {
    if (v)
      spec_error(s, obj, key, err, "expected a non-empty string");
    else
      vd_yaml_error(s->doc, NULL, NULL, 0, err, "missing required key `%s`", key);
    return NULL;
  }
  return json_string_value(v);
}

/* Turns a field path from vd_features ("features[2].encoding") into a file position: that of
 * the value, or of the nearest enclosing value that exists (for a missing key). */
static void locate_field(const spec *s, vd_error *err) {
  if (!err || !err->field[0]) return;
  char buf[VD_ERROR_WHERE_MAX];
  snprintf(buf, sizeof buf, "%s", err->field);
  const json_t *value = s->root;
  const json_t *found_container = NULL; /* the step that last resolved */
  const char *found_key = NULL;
  size_t found_index = 0;
  char found_key_buf[VD_ERROR_WHERE_MAX] = "";
  for (char *p = buf; *p && value;) {
    const json_t *container = value;
    if (*p == '.') p++;
    if (*p == '[') {
      size_t index = strtoul(p + 1, &p, 10);
      if (*p == ']') p++;
      value = json_array_get(container, index);
      if (value) {
        found_container = container;
        found_key = NULL;
        found_index = index;
      }
    } else {
      size_t len = strcspn(p, ".[");
      char key[VD_ERROR_WHERE_MAX];
      snprintf(key, sizeof key, "%.*s", (int)len, p);
      p += len;
      value = json_object_get(container, key);
      if (value) {
        found_container = container;
        snprintf(found_key_buf, sizeof found_key_buf, "%s", key);
        found_key = found_key_buf;
      }
    }
  }
  int line, column;
  if (found_container &&
      vd_yaml_where(s->doc, found_container, found_key, found_index, &line, &column)) {
    vd_error e = *err;
    vd_error_at(err, vd_yaml_name(s->doc), line, column, "%s: %s", e.field, e.message);
  }
}

static bool number_in(const spec *s, const json_t *obj, const char *key, double lo, double hi,
                      double fallback, double *out, vd_error *err) {
  const json_t *v = json_object_get(obj, key);
  if (!v) {
    *out = fallback;
    return true;
  }
  if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi) {
    char msg[128];
    snprintf(msg, sizeof msg, "expected a number in [%g, %g]", lo, hi);
    return spec_error(s, obj, key, err, msg);
  }
  *out = json_number_value(v);
  return true;
}

static bool only_keys(const spec *s, const json_t *obj, const char *const *keys, size_t n,
                      vd_error *err) {
  const char *key;
  json_t *value;
  json_object_foreach((json_t *)obj, key, value) {
    bool known = false;
    for (size_t i = 0; i < n; i++) known = known || strcmp(key, keys[i]) == 0;
    int line, column;
    if (!known && vd_yaml_where_key(s->doc, obj, key, &line, &column))
      return vd_error_at(err, vd_yaml_name(s->doc), line, column, "unknown key `%s`", key);
    if (!known) return vd_yaml_error(s->doc, obj, key, 0, err, "unknown key `%s`", key);
  }
  return true;
}

static bool load_spec(const char *path, spec *s, vd_error *err) {
  *s = (spec){0};
  s->doc = vd_yaml_load_file(path, err);
  if (!s->doc) return false;
  const json_t *root = s->root = vd_yaml_root(s->doc);
  if (!json_is_object(root))
    return vd_yaml_error(s->doc, NULL, NULL, 0, err, "a training spec is a mapping");
  static const char *const top[] = {"model",      "task",    "label",    "treatment", "learner",
                                    "validation", "xgboost", "features", "reasons"};
  if (!only_keys(s, root, top, sizeof top / sizeof top[0], err)) return false;
  if (!(s->name = required_string(s, root, "model", err))) return false;
  const char *task = required_string(s, root, "task", err);
  if (!task) return false;
  if (strcmp(task, "uplift") != 0)
    return spec_error(s, root, "task", err,
                      "only `uplift` is trained by `verdict train promotions`");
  if (!(s->label = required_string(s, root, "label", err))) return false;
  const json_t *t = json_object_get(root, "treatment");
  if (!json_is_object(t))
    return vd_yaml_error(s->doc, NULL, NULL, 0, err,
                         "`treatment` must be a mapping with column, control, arms");
  static const char *const tkeys[] = {"column", "control", "arms"};
  if (!only_keys(s, t, tkeys, 3, err)) return false;
  if (!(s->treatment_column = required_string(s, t, "column", err))) return false;
  if (!(s->control = required_string(s, t, "control", err))) return false;
  s->arms = json_object_get(t, "arms");
  for (size_t i = 0; i < json_array_size(s->arms); i++)
    if (json_is_string(json_array_get(s->arms, i)) &&
        strcmp(json_string_value(json_array_get(s->arms, i)), s->control) == 0)
      return vd_yaml_error(s->doc, s->arms, NULL, i, err, "the control is not an arm");
  s->features = vd_features_parse(json_object_get(root, "features"), s->arms, "features", err);
  if (!s->features) {
    if (err && strncmp(err->field, "treatment.", 10) == 0) {
      vd_error e = *err;
      vd_yaml_error(s->doc, t, "arms", 0, err, "%s", e.message);
    } else {
      locate_field(s, err);
    }
    return false;
  }
  const json_t *l = json_object_get(root, "learner");
  s->learner = LEARNER_AUTO;
  if (l) {
    bool found = false;
    for (int i = 0; i < 3; i++)
      if (json_is_string(l) && strcmp(json_string_value(l), learner_names[i]) == 0) {
        s->learner = (learner)i;
        found = true;
      }
    if (!found) return spec_error(s, root, "learner", err, "expected auto, s-learner or t-learner");
  }
  const json_t *v = json_object_get(root, "validation");
  if (v && !json_is_object(v)) return spec_error(s, root, "validation", err, "expected a mapping");
  static const char *const vkeys[] = {"fraction", "seed", "bootstrap", "selection_fraction"};
  if (v && !only_keys(s, v, vkeys, 4, err)) return false;
  double seed = 1, reps = 1000;
  if (!number_in(s, v, "fraction", 0.05, 0.9, 0.3, &s->valid_fraction, err) ||
      !number_in(s, v, "selection_fraction", 0.05, 0.9, 0.25, &s->selection_fraction, err) ||
      !number_in(s, v, "seed", 0, 4294967295.0, 1, &seed, err) ||
      !number_in(s, v, "bootstrap", 10, 100000, 1000, &reps, err))
    return false;
  s->seed = (unsigned long)seed;
  s->bootstrap = (size_t)reps;
  s->xgboost = json_object_get(root, "xgboost");
  if (!json_is_object(s->xgboost))
    return vd_yaml_error(s->doc, NULL, NULL, 0, err, "missing `xgboost` parameters (a mapping)");
  const json_t *rounds = json_object_get(s->xgboost, "num_round");
  if (!json_is_integer(rounds) || json_integer_value(rounds) < 1 ||
      json_integer_value(rounds) > 100000)
    return spec_error(s, s->xgboost, "num_round", err, "expected an integer in [1, 100000]");
  s->num_round = (int)json_integer_value(rounds);
  const char *key;
  json_t *value;
  json_object_foreach((json_t *)s->xgboost, key, value) {
    if (!json_is_string(value) && !json_is_number(value) && !json_is_boolean(value))
      return spec_error(s, s->xgboost, key, err, "an XGBoost parameter is a scalar");
    if (strcmp(key, "objective") == 0 && strcmp(json_string_value(value), "binary:logistic") != 0)
      return spec_error(s, s->xgboost, key, err, "an uplift model needs binary:logistic");
  }
  s->reasons = json_object_get(root, "reasons");
  if (s->reasons) {
    if (!json_is_object(s->reasons))
      return spec_error(s, root, "reasons", err, "expected a mapping of feature → {up, down}");
    json_object_foreach((json_t *)s->reasons, key, value) {
      bool known = false;
      for (size_t i = 0; i < vd_features_count(s->features); i++)
        known = known || strcmp(vd_features_name(s->features, i), key) == 0;
      if (!known) return spec_error(s, s->reasons, key, err, "not a feature of this model");
      static const char *const rkeys[] = {"up", "down"};
      if (!json_is_object(value)) return spec_error(s, s->reasons, key, err, "expected {up, down}");
      if (!only_keys(s, value, rkeys, 2, err)) return false;
      for (int i = 0; i < 2; i++)
        if (!json_is_string(json_object_get(value, rkeys[i])))
          return vd_yaml_error(s->doc, value, NULL, 0, err, "reasons.%s needs `%s` text", key,
                               rkeys[i]);
    }
  }
  return true;
}

static void free_spec(spec *s) {
  vd_features_free(s->features);
  vd_yaml_free(s->doc);
}

/* ---------- data ---------- */

static void free_data(dataset *d) {
  free(d->x);
  free(d->y);
  free(d->arm);
  *d = (dataset){0};
}

static bool load_data(const spec *s, const char *path, size_t max_rows, dataset *d, vd_error *err) {
  *d = (dataset){0};
  if (!vd_sha256_file_hex(path, d->sha256, err)) return false;
  vd_csv *csv = vd_csv_open(path, MAX_DATA_BYTES, err);
  if (!csv) return false;
  const char *const *cells;
  size_t count;
  bool ok = false;
  size_t nfeat = vd_features_count(s->features);
  size_t *column_of = calloc(nfeat, sizeof *column_of);
  size_t capacity = 0, label_col = SIZE_MAX, treat_col = SIZE_MAX;
  int r = vd_csv_next(csv, &cells, &count, err);
  if (r == 0) vd_error_at(err, path, 1, 0, "empty file (no header)");
  if (r <= 0 || !column_of) goto done;
  for (size_t c = 0; c < count; c++) {
    if (strcmp(cells[c], s->label) == 0) label_col = c;
    if (strcmp(cells[c], s->treatment_column) == 0) treat_col = c;
  }
  if (label_col == SIZE_MAX || treat_col == SIZE_MAX) {
    vd_error_at(err, path, 1, 0, "no column \"%s\" in the header",
                label_col == SIZE_MAX ? s->label : s->treatment_column);
    goto done;
  }
  if (!vd_features_bind_csv(s->features, cells, count, path, column_of, err)) goto done;
  size_t header_count = count;
  d->width = vd_features_width(s->features);
  while ((max_rows == 0 || d->rows < max_rows) && (r = vd_csv_next(csv, &cells, &count, err)) > 0) {
    size_t line = vd_csv_line(csv);
    if (count == 1 && !cells[0][0]) continue; /* a blank line */
    if (count != header_count) {
      vd_error_at(err, path, (int)line, 0, "%zu cells, the header has %zu", count, header_count);
      goto done;
    }
    if (d->rows == capacity) {
      capacity = capacity ? capacity * 2 : 4096;
      float *x = realloc(d->x, capacity * d->width * sizeof *x);
      if (x) d->x = x;
      unsigned char *y = realloc(d->y, capacity);
      if (y) d->y = y;
      int *arm = realloc(d->arm, capacity * sizeof *arm);
      if (arm) d->arm = arm;
      if (!x || !y || !arm) {
        vd_error_set(err, "out of memory reading %s", path);
        goto done;
      }
    }
    const char *label = cells[label_col];
    if (strcmp(label, "0") != 0 && strcmp(label, "1") != 0) {
      vd_error_at(err, path, (int)line, 0, "label column %s: \"%s\" is not 0 or 1", s->label,
                  label);
      goto done;
    }
    d->y[d->rows] = label[0] == '1';
    const char *treatment = cells[treat_col];
    d->arm[d->rows] = -2;
    if (strcmp(treatment, s->control) == 0) d->arm[d->rows] = -1;
    for (size_t a = 0; a < vd_features_arm_count(s->features); a++)
      if (strcmp(treatment, vd_features_arm(s->features, a)) == 0) d->arm[d->rows] = (int)a;
    if (d->arm[d->rows] == -2) {
      vd_error_at(err, path, (int)line, 0,
                  "treatment column %s: \"%s\" is neither the control nor an arm",
                  s->treatment_column, treatment);
      goto done;
    }
    json_t *request =
        vd_features_csv_request(s->features, column_of, cells, count, path, line, err);
    if (!request) goto done;
    float *row = d->x + d->rows * d->width;
    bool encoded = vd_features_encode(s->features, request, row, err) &&
                   vd_features_set_treatment(s->features, treatment, s->control, row, err);
    json_decref(request);
    if (!encoded) {
      vd_error_prefix(err, "%s:%zu", path, line);
      goto done;
    }
    d->rows++;
  }
  if (r < 0) goto done;
  if (d->rows < 100) {
    vd_error_set(err, "%s: %zu data rows, too few to train and validate", path, d->rows);
    goto done;
  }
  ok = true;
done:
  free(column_of);
  vd_csv_close(csv);
  if (!ok) free_data(d);
  return ok;
}

/* ---------- XGBoost ---------- */

static bool xgb_check(int rc, const char *what, vd_error *err) {
  if (rc == 0) return true;
  return vd_error_set(err, "XGBoost %s failed: %s", what, XGBGetLastError());
}

static void param_text(const json_t *v, char *buf, size_t size) {
  if (json_is_string(v))
    snprintf(buf, size, "%s", json_string_value(v));
  else if (json_is_integer(v))
    snprintf(buf, size, "%lld", (long long)json_integer_value(v));
  else if (json_is_real(v))
    snprintf(buf, size, "%.17g", json_real_value(v));
  else
    snprintf(buf, size, "%d", json_is_true(v) ? 1 : 0);
}

/* The effective XGBoost parameters: the spec's, plus the defaults that make training
 * deterministic and quiet. New reference; num_round excluded. */
static json_t *effective_params(const spec *s) {
  json_t *p = json_object();
  json_object_set_new(p, "objective", json_string("binary:logistic"));
  json_object_set_new(p, "nthread", json_integer(1));
  json_object_set_new(p, "seed", json_integer(0));
  json_object_set_new(p, "verbosity", json_integer(0));
  json_object_set_new(p, "tree_method", json_string("hist"));
  const char *key;
  json_t *value;
  json_object_foreach((json_t *)s->xgboost, key, value) {
    if (strcmp(key, "num_round") != 0) json_object_set(p, key, value);
  }
  return p;
}

/* Trains on rows `idx` of d using the first `cols` columns; returns the model's JSON text. */
static char *xgb_fit(const spec *s, const dataset *d, const size_t *idx, size_t n, size_t cols,
                     size_t *len, vd_error *err) {
  float *x = malloc((n ? n : 1) * cols * sizeof *x);
  float *y = malloc((n ? n : 1) * sizeof *y);
  char *out = NULL;
  DMatrixHandle dm = NULL;
  BoosterHandle b = NULL;
  json_t *params = effective_params(s);
  if (!x || !y || !params) {
    vd_error_set(err, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    memcpy(x + i * cols, d->x + idx[i] * d->width, cols * sizeof *x);
    y[i] = d->y[idx[i]];
  }
  if (!xgb_check(XGDMatrixCreateFromMat(x, n, cols, NAN, &dm), "DMatrix", err) ||
      !xgb_check(XGDMatrixSetFloatInfo(dm, "label", y, n), "labels", err) ||
      !xgb_check(XGBoosterCreate(&dm, 1, &b), "booster", err))
    goto done;
  const char *key;
  json_t *value;
  json_object_foreach(params, key, value) {
    char text[64];
    param_text(value, text, sizeof text);
    if (!xgb_check(XGBoosterSetParam(b, key, text), key, err)) goto done;
  }
  for (int it = 0; it < s->num_round; it++)
    if (!xgb_check(XGBoosterUpdateOneIter(b, it, dm), "training", err)) goto done;
  bst_ulong size;
  const char *text;
  if (!xgb_check(XGBoosterSaveModelToBuffer(b, "{\"format\": \"json\"}", &size, &text), "save",
                 err))
    goto done;
  out = malloc(size + 1);
  if (out) {
    memcpy(out, text, size);
    out[size] = '\0';
    *len = size;
  }
done:
  if (b) XGBoosterFree(b);
  if (dm) XGDMatrixFree(dm);
  json_decref(params);
  free(x);
  free(y);
  return out;
}

/* ---------- learners ---------- */

/* A fitted learner: one forest over all columns (S), or one per arm over the base columns (T:
 * forests[0] control, forests[1 + a] arm a). */
typedef struct fitted {
  learner kind;
  size_t count;
  vd_forest *forests[16];
  char *json[16];
  size_t json_len[16];
} fitted;

static void free_fitted(fitted *f) {
  for (size_t i = 0; i < f->count; i++) {
    vd_forest_free(f->forests[i]);
    free(f->json[i]);
  }
  *f = (fitted){0};
}

static bool fit(const spec *s, const dataset *d, const size_t *idx, size_t n, learner kind,
                fitted *out, vd_error *err) {
  *out = (fitted){.kind = kind};
  size_t arms = vd_features_arm_count(s->features);
  size_t base = vd_features_base_width(s->features);
  size_t groups = kind == LEARNER_S ? 1 : arms + 1;
  if (groups > 16) return vd_error_set(err, "at most 15 arms");
  size_t *sub = malloc(n * sizeof *sub);
  if (!sub) return vd_error_set(err, "out of memory");
  for (size_t g = 0; g < groups; g++) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
      if (kind == LEARNER_S || d->arm[idx[i]] == (int)g - 1) sub[m++] = idx[i];
    out->json[g] =
        xgb_fit(s, d, sub, m, kind == LEARNER_S ? d->width : base, &out->json_len[g], err);
    out->count = g + 1;
    if (!out->json[g] ||
        !(out->forests[g] = vd_forest_load(out->json[g], out->json_len[g], "model.json",
                                           VD_FOREST_DEFAULT_TABLE_FEATURES, err))) {
      free(sub);
      free_fitted(out);
      return false;
    }
  }
  free(sub);
  return true;
}

/* P(label | arm) for row r; arm -1 = control. */
static double predict(const spec *s, const fitted *f, const dataset *d, size_t r, int arm,
                      float *scratch) {
  memcpy(scratch, d->x + r * d->width, d->width * sizeof *scratch);
  size_t base = vd_features_base_width(s->features);
  for (size_t a = 0; a < vd_features_arm_count(s->features); a++)
    scratch[base + a] = (int)a == arm ? 1.0f : 0.0f;
  const vd_forest *forest = f->kind == LEARNER_S ? f->forests[0] : f->forests[arm + 1];
  return vd_forest_transform(forest, vd_forest_margin(forest, scratch));
}

/* Metrics on rows idx: AUC/log loss/calibration for the arm each row received, and per arm the
 * uplift report. New reference; *mean_qini gets the mean Qini coefficient over arms. */
static json_t *evaluate(const spec *s, const fitted *f, const dataset *d, const size_t *idx,
                        size_t n, double *mean_qini, double *auc_out, double *ece_out,
                        double *boot_mean) {
  size_t arms = vd_features_arm_count(s->features);
  double *p = malloc(n * sizeof *p), *u = malloc(n * sizeof *u);
  unsigned char *y = malloc(n), *t = malloc(n);
  float *scratch = malloc(d->width * sizeof *scratch);
  double *boot = malloc(s->bootstrap * sizeof *boot);
  json_t *out = json_object();
  if (!p || !u || !y || !t || !scratch || !boot) goto done;
  if (boot_mean)
    for (size_t r = 0; r < s->bootstrap; r++) boot_mean[r] = 0;
  for (size_t i = 0; i < n; i++) {
    p[i] = predict(s, f, d, idx[i], d->arm[idx[i]], scratch);
    y[i] = d->y[idx[i]];
  }
  double ece;
  double auc = vd_eval_auc(p, y, n);
  json_object_set_new(out, "rows", json_integer((json_int_t)n));
  json_object_set_new(out, "auc", json_real(auc));
  json_object_set_new(out, "log_loss", json_real(vd_eval_log_loss(p, y, n)));
  json_t *cal = vd_eval_calibration(p, y, n, 10, &ece);
  json_object_set_new(out, "ece", json_real(ece));
  json_object_set_new(out, "calibration", cal);
  json_t *uplift = json_object();
  *mean_qini = 0;
  for (size_t a = 0; a < arms; a++) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
      int arm = d->arm[idx[i]];
      if (arm != (int)a && arm != -1) continue;
      u[m] = predict(s, f, d, idx[i], (int)a, scratch) - predict(s, f, d, idx[i], -1, scratch);
      t[m] = arm == (int)a;
      y[m] = d->y[idx[i]];
      m++;
    }
    double qini = 0;
    json_t *rep = vd_eval_uplift(u, t, y, m, s->bootstrap, s->seed + a, &qini, boot);
    if (rep) json_object_set_new(uplift, vd_features_arm(s->features, a), rep);
    *mean_qini += qini / (double)arms;
    if (boot_mean)
      for (size_t r = 0; r < s->bootstrap; r++) boot_mean[r] += boot[r] / (double)arms;
  }
  json_object_set_new(out, "uplift", uplift);
  json_object_set_new(out, "mean_qini", json_real(*mean_qini));
  if (auc_out) *auc_out = auc;
  if (ece_out) *ece_out = ece;
done:
  free(p);
  free(u);
  free(y);
  free(t);
  free(scratch);
  free(boot);
  return out;
}

/* ---------- bundle ---------- */

static bool write_file(const char *dir, const char *name, const char *data, size_t len,
                       vd_error *err) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = vd_fopen_write_regular(path, err); /* a FIFO there would block the open */
  if (!f) return false;
  bool ok = fwrite(data, 1, len, f) == len;
  ok = (fclose(f) == 0) && ok;
  if (!ok) return vd_error_set(err, "cannot write %s: %s", path, strerror(errno));
  return true;
}

static bool make_dirs(const char *dir, vd_error *err) {
  char path[4096];
  snprintf(path, sizeof path, "%s", dir);
  for (char *p = path + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return vd_error_set(err, "cannot create %s: %s", path, strerror(errno));
      *p = '/';
    }
  if (mkdir(path, 0755) != 0 && errno != EEXIST)
    return vd_error_set(err, "cannot create %s: %s", path, strerror(errno));
  return true;
}

static const char *base_name(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

static json_t *reason_texts(const spec *s) {
  json_t *out = json_object();
  for (size_t i = 0; i < vd_features_count(s->features); i++) {
    const char *name = vd_features_name(s->features, i);
    const json_t *given = json_object_get(s->reasons, name);
    json_t *r = json_object();
    if (given) {
      json_object_set(r, "up", json_object_get(given, "up"));
      json_object_set(r, "down", json_object_get(given, "down"));
    } else {
      char text[256];
      snprintf(text, sizeof text, "%s ({value}) raised the expected response", name);
      json_object_set_new(r, "up", json_string(text));
      snprintf(text, sizeof text, "%s ({value}) lowered the expected response", name);
      json_object_set_new(r, "down", json_string(text));
    }
    json_object_set_new(out, name, r);
  }
  json_t *t = json_object();
  json_object_set_new(t, "up", json_string("Receiving this e-mail raised the expected response"));
  json_object_set_new(t, "down",
                      json_string("Receiving this e-mail lowered the expected response"));
  json_object_set_new(out, "treatment", t);
  return out;
}

static void shuffle_split(const dataset *d, unsigned long seed, size_t **order) {
  *order = malloc(d->rows * sizeof **order);
  if (!*order) return;
  for (size_t i = 0; i < d->rows; i++) (*order)[i] = i;
  gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(rng, seed);
  gsl_ran_shuffle(rng, *order, d->rows, sizeof **order);
  gsl_rng_free(rng);
}

static int cmp_size(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return (x > y) - (x < y);
}

static void log_eval(FILE *log, const char *what, const json_t *e) {
  if (!log) return;
  fprintf(
      log, "%-28s AUC %.4f  log loss %.4f  ECE %.4f  mean Qini %.5f", what,
      json_real_value(json_object_get(e, "auc")), json_real_value(json_object_get(e, "log_loss")),
      json_real_value(json_object_get(e, "ece")), json_real_value(json_object_get(e, "mean_qini")));
  const char *arm;
  json_t *rep;
  json_object_foreach(json_object_get(e, "uplift"), arm, rep) {
    const json_t *ci = json_object_get(rep, "qini_ci95");
    fprintf(log, "  [%s %.5f (%.5f, %.5f)]", arm, json_real_value(json_object_get(rep, "qini")),
            json_real_value(json_array_get(ci, 0)), json_real_value(json_array_get(ci, 1)));
  }
  fprintf(log, "\n");
}

bool vd_train_uplift(const vd_train_options *o, char version[VD_SHA256_HEX_SIZE], vd_error *err) {
  spec s;
  dataset d = {0};
  size_t *order = NULL;
  fitted cand[2] = {0}, final = {0};
  json_t *comparison = json_object(), *manifest = NULL, *validation = NULL;
  char *manifest_text = NULL;
  bool ok = false;
  if (!load_spec(o->spec_path, &s, err)) goto done;
  if (!load_data(&s, o->data_path, o->max_rows, &d, err)) goto done;
  shuffle_split(&d, s.seed, &order);
  if (!order) {
    vd_error_set(err, "out of memory");
    goto done;
  }
  size_t n_valid = (size_t)llround(s.valid_fraction * (double)d.rows);
  size_t n_train = d.rows - n_valid;
  const size_t *valid = order, *train = order + n_valid;
  /* Sorted index lists: the trainer sees rows in file order, whatever the shuffle. */
  qsort(order, n_valid, sizeof *order, cmp_size);
  qsort(order + n_valid, n_train, sizeof *order, cmp_size);
  if (o->log)
    fprintf(o->log, "%s: %zu rows (sha256 %.12s…), %zu train, %zu validation\n",
            base_name(o->data_path), d.rows, d.sha256, n_train, n_valid);

  /* Learner selection on a split of the training part only; the validation split stays unseen. */
  size_t *sel = malloc(n_train * sizeof *sel);
  if (!sel) goto done;
  memcpy(sel, train, n_train * sizeof *sel);
  {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, s.seed + 1000);
    gsl_ran_shuffle(rng, sel, n_train, sizeof *sel);
    gsl_rng_free(rng);
  }
  size_t n_sel = (size_t)llround(s.selection_fraction * (double)n_train);
  qsort(sel, n_sel, sizeof *sel, cmp_size);
  qsort(sel + n_sel, n_train - n_sel, sizeof *sel, cmp_size);
  /* Both learners are scored on the same selection rows with the same bootstrap resamples, so
   * the difference of their Qini coefficients gets a paired interval. */
  double q[2] = {0, 0};
  double *boot[2] = {calloc(s.bootstrap, sizeof(double)), calloc(s.bootstrap, sizeof(double))};
  learner kinds[2] = {LEARNER_S, LEARNER_T};
  for (int k = 0; k < 2; k++) {
    if (!boot[k] || !fit(&s, &d, sel + n_sel, n_train - n_sel, kinds[k], &cand[k], err)) {
      if (!boot[k]) vd_error_set(err, "out of memory");
      free(sel);
      free(boot[0]);
      free(boot[1]);
      goto done;
    }
    json_t *e = evaluate(&s, &cand[k], &d, sel, n_sel, &q[k], NULL, NULL, boot[k]);
    log_eval(o->log, learner_names[kinds[k]], e);
    json_object_del(e, "calibration");
    json_object_set_new(comparison, learner_names[kinds[k]], e);
    free_fitted(&cand[k]);
  }
  free(sel);
  for (size_t r = 0; r < s.bootstrap; r++) boot[1][r] -= boot[0][r]; /* T − S per resample */
  gsl_sort(boot[1], 1, s.bootstrap);
  double lo = gsl_stats_quantile_from_sorted_data(boot[1], 1, s.bootstrap, 0.025);
  double hi = gsl_stats_quantile_from_sorted_data(boot[1], 1, s.bootstrap, 0.975);
  free(boot[0]);
  free(boot[1]);
  json_t *diff = json_object();
  json_object_set_new(diff, "t_minus_s_mean_qini", json_real(q[1] - q[0]));
  json_t *ci = json_array();
  json_array_append_new(ci, json_real(lo));
  json_array_append_new(ci, json_real(hi));
  json_object_set_new(diff, "ci95_paired_bootstrap", ci);
  json_object_set_new(comparison, "difference", diff);
  /* The simpler learner (one model, every row informs every arm) unless the other one is
   * measurably better: the paired interval of the Qini difference excludes zero. */
  learner chosen = s.learner != LEARNER_AUTO ? s.learner : (lo > 0 ? LEARNER_T : LEARNER_S);
  char reason[512];
  if (s.learner != LEARNER_AUTO)
    snprintf(reason, sizeof reason, "set in the spec (learner: %s)", learner_names[chosen]);
  else if (chosen == LEARNER_T)
    snprintf(reason, sizeof reason,
             "auto: the t-learner's mean Qini %.5f beats the s-learner's %.5f on the selection "
             "split, paired 95%% interval of the difference [%.5f, %.5f] above zero",
             q[1], q[0], lo, hi);
  else
    snprintf(reason, sizeof reason,
             "auto: mean Qini on the selection split s-learner %.5f, t-learner %.5f; the paired "
             "95%% interval of the difference (t − s) [%.5f, %.5f] %s, so the single model "
             "that learns from every row is kept",
             q[0], q[1], lo, hi, hi < 0 ? "is below zero (s is better)" : "includes zero");
  if (chosen == LEARNER_T) {
    vd_error_set(err,
                 "%s: the t-learner won the selection (%s); its bundle needs one model per arm, "
                 "which this version does not ship — set `learner: s-learner` to override",
                 o->spec_path, reason);
    goto done;
  }
  if (o->log) fprintf(o->log, "learner: %s — %s\n", learner_names[chosen], reason);

  if (!fit(&s, &d, train, n_train, chosen, &final, err)) goto done;
  double auc, ece, qini;
  validation = evaluate(&s, &final, &d, valid, n_valid, &qini, &auc, &ece, NULL);
  log_eval(o->log, "validation (held out)", validation);
  char model_sha[VD_SHA256_HEX_SIZE];
  vd_sha256_hex(final.json[0], final.json_len[0], model_sha);

  manifest = json_object();
  json_object_set_new(manifest, "format", json_string(VD_MODEL_FORMAT));
  json_object_set_new(manifest, "name", json_string(s.name));
  json_object_set_new(manifest, "version", json_string(model_sha)); /* stamped below */
  json_object_set_new(manifest, "task", json_string("uplift"));
  json_object_set_new(manifest, "model_file", json_string("model.json"));
  json_object_set_new(manifest, "objective", json_string("binary:logistic"));
  json_object_set_new(manifest, "label", json_string(s.label));
  json_t *treatment = json_object();
  json_object_set_new(treatment, "column", json_string(s.treatment_column));
  json_object_set_new(treatment, "control", json_string(s.control));
  json_object_set(treatment, "arms", (json_t *)s.arms);
  json_object_set_new(treatment, "encoding",
                      json_string("one column per arm, treatment=<arm> (all 0 = control)"));
  json_object_set_new(manifest, "treatment", treatment);
  json_t *lj = json_object();
  json_object_set_new(lj, "chosen", json_string(learner_names[chosen]));
  json_object_set_new(lj, "reason", json_string(reason));
  json_object_set_new(lj, "selection_rows", json_integer((json_int_t)n_sel));
  json_object_set_new(lj, "comparison", comparison);
  comparison = NULL;
  json_object_set_new(manifest, "learner", lj);
  json_object_set_new(manifest, "features", vd_features_to_json(s.features));
  json_t *cols = json_array();
  for (size_t c = 0; c < vd_features_width(s.features); c++)
    json_array_append_new(cols, json_string(vd_features_column_name(s.features, c)));
  json_object_set_new(manifest, "columns", cols);
  json_t *data = json_object();
  json_object_set_new(data, "file", json_string(base_name(o->data_path)));
  json_object_set_new(data, "sha256", json_string(d.sha256));
  json_object_set_new(data, "rows", json_integer((json_int_t)d.rows));
  json_object_set_new(data, "train_rows", json_integer((json_int_t)n_train));
  json_object_set_new(data, "validation_rows", json_integer((json_int_t)n_valid));
  json_object_set_new(manifest, "training_data", data);
  json_t *params = effective_params(&s);
  json_object_set_new(params, "num_round", json_integer(s.num_round));
  json_object_set_new(manifest, "parameters", params);
  json_t *split = json_object();
  json_object_set_new(split, "fraction", json_real(s.valid_fraction));
  json_object_set_new(split, "seed", json_integer((json_int_t)s.seed));
  json_object_set_new(split, "method", json_string("GSL MT19937 shuffle of the rows"));
  json_object_set_new(validation, "split", split);
  json_object_set_new(manifest, "validation", validation);
  validation = NULL;
  json_object_set_new(manifest, "reasons", reason_texts(&s));
  const size_t manifest_flags = JSON_INDENT(2) | JSON_REAL_PRECISION(10);
  if (!vd_bundle_stamp(manifest, manifest_flags, model_sha, version, err)) goto done;
  manifest_text = json_dumps(manifest, manifest_flags);
  if (!manifest_text) {
    vd_error_set(err, "out of memory");
    goto done;
  }
  if (!make_dirs(o->out_dir, err) ||
      !write_file(o->out_dir, "model.json", final.json[0], final.json_len[0], err))
    goto done;
  size_t mlen = strlen(manifest_text);
  manifest_text[mlen] = '\0';
  vd_buf mb = {0};
  vd_buf_puts(&mb, manifest_text);
  vd_buf_puts(&mb, "\n");
  ok = !mb.oom && write_file(o->out_dir, "manifest.json", mb.data, mb.len, err);
  vd_buf_free(&mb);
  if (ok && o->log)
    fprintf(o->log, "wrote %s/model.json and manifest.json, version %s\n", o->out_dir, version);
done:
  json_decref(comparison);
  json_decref(validation);
  json_decref(manifest);
  free(manifest_text);
  free_fitted(&final);
  free(order);
  free_data(&d);
  free_spec(&s);
  return ok;
}

/* ---------- the verb ---------- */

int vd_verb_train(int argc, char **argv, FILE *out, FILE *err) {
  /* `verdict train triage ...` is the text model's trainer (vd_triage.h). */
  if (argc >= 2 && strcmp(argv[1], "triage") == 0)
    return vd_verb_train_triage(argc - 1, argv + 1, out, err);
  vd_option options[] = {
      {"data", true, NULL,
       "the training CSV (header row; e.g. ../shared/data/hillstrom/hillstrom.csv)"},
      {"spec", true, NULL, "the training spec (YAML, e.g. examples/promotions/train.yaml)"},
      {"out", true, NULL, "the bundle folder to write (model.json, manifest.json)"},
      {"quiet", false, NULL, "print only the version"},
  };
  const size_t n = sizeof options / sizeof options[0];
  const char *positionals[1];
  size_t npos = 0;
  static const vd_verb_help help = {
      "train",
      "usage: verdict train promotions --data FILE.csv --spec train.yaml --out DIR\n"
      "       verdict train triage --data train.jsonl --val val.jsonl --out DIR (see "
      "'verdict train triage --help')\n\n"
      "Trains an uplift model (XGBoost) and writes a model bundle: model.json and\n"
      "manifest.json with the features, treatment arms, parameters and validation metrics.\n"
      "Same data and spec give byte-identical files and the same version.",
      NULL};
  int parsed = vd_args_verb(&help, argc, argv, 1, options, n, positionals, 1, &npos, out, err);
  if (parsed != VD_ARGS_GO_ON) return parsed;
  vd_error e = {0};
  if (npos != 1 || strcmp(positionals[0], "promotions") != 0) {
    fprintf(err, "verdict train: expected the model kind `promotions` (got %s)\n",
            npos ? positionals[0] : "nothing");
    return 2;
  }
  vd_train_options o = {.data_path = vd_args_get(options, n, "data"),
                        .spec_path = vd_args_get(options, n, "spec"),
                        .out_dir = vd_args_get(options, n, "out"),
                        .log = vd_args_get(options, n, "quiet") ? NULL : err};
  if (!o.data_path || !o.spec_path || !o.out_dir) {
    fprintf(err, "verdict train: --data, --spec and --out are required\n");
    return 2;
  }
  char version[VD_SHA256_HEX_SIZE];
  if (!vd_train_uplift(&o, version, &e)) {
    char msg[1024];
    vd_error_format(&e, msg, sizeof msg);
    fprintf(err, "verdict train: %s\n", msg);
    return 2;
  }
  fprintf(out, "%s\n", version);
  return 0;
}
