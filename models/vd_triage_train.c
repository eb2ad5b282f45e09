/* `verdict train triage`: featurise, select buckets, train XGBoost, calibrate, evaluate, write the
 * bundle. Everything here is deterministic: same data and options → same bytes. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xgboost/c_api.h>

#include "vd_args.h"
#include "vd_buf.h"
#include "vd_calibration.h"
#include "vd_hash.h"
#include "vd_model.h"
#include "vd_text_features.h"
#include "vd_time.h"
#include "vd_triage.h"

enum { MAX_DATA_FILE = 256 * 1024 * 1024 };

void vd_triage_train_defaults(vd_triage_train_options *o) {
  memset(o, 0, sizeof *o);
  o->name = "triage";
  o->booster = "gblinear";
  o->updater = "shotgun";
  vd_text_config_default(&o->featuriser);
  o->min_df = 2;
  o->rounds = 15;
  o->eta = 0.25;
  o->lambda = 1e-5;
  o->alpha = 1e-5;
  o->max_depth = 6;
  o->min_child_weight = 0.01;
  o->oos_weight = 1.0;
  o->target_escalation = 0.15;
  o->max_columns = 8000;
  o->nthread = 1;
  o->out_of_scope = "oos";
}

/* ---- data ---- */

typedef struct example {
  char *text;
  char *intent;
} example;

typedef struct dataset {
  example *rows;
  size_t count;
  char sha256[VD_SHA256_HEX_SIZE];
} dataset;

static void dataset_free(dataset *d) {
  for (size_t i = 0; i < d->count; i++) {
    free(d->rows[i].text);
    free(d->rows[i].intent);
  }
  free(d->rows);
  memset(d, 0, sizeof *d);
}

static bool read_jsonl(const char *path, size_t max_rows, dataset *d, vd_error *err) {
  size_t size;
  char *data = vd_read_file(path, MAX_DATA_FILE, &size, err);
  if (!data) return false;
  vd_sha256_hex(data, size, d->sha256);
  size_t cap = 0, line = 0;
  bool ok = true;
  for (char *p = data; ok && *p;) {
    char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    line++;
    if (len > 0) {
      json_error_t je;
      json_t *row = json_loadb(p, len, 0, &je);
      const char *text = json_string_value(json_object_get(row, "text"));
      const char *intent = json_string_value(json_object_get(row, "intent"));
      if (!row) {
        vd_error_at(err, path, (int)line, je.column, "invalid JSON: %s", je.text);
        ok = false;
      } else if (!text || !intent) {
        vd_error_at(err, path, (int)line, 1, "expected {\"text\": string, \"intent\": string}");
        ok = false;
      } else if (d->count == cap) {
        cap = cap ? cap * 2 : 1024;
        example *rows = realloc(d->rows, cap * sizeof *rows);
        if (rows) {
          d->rows = rows;
        } else {
          vd_error_set(err, "out of memory");
          ok = false;
        }
      }
      if (ok) {
        d->rows[d->count].text = strdup(text);
        d->rows[d->count].intent = strdup(intent);
        d->count++;
      }
      json_decref(row);
    }
    p = nl ? nl + 1 : p + len;
  }
  free(data);
  if (ok && d->count == 0) ok = vd_error_at(err, path, 1, 1, "no examples");
  if (ok && max_rows && d->count > max_rows) {
    /* Every stride-th row: a subset that keeps every intent of a file grouped by intent. */
    size_t stride = (d->count + max_rows - 1) / max_rows, kept = 0;
    for (size_t i = 0; i < d->count; i++) {
      if (i % stride == 0) {
        d->rows[kept++] = d->rows[i];
      } else {
        free(d->rows[i].text);
        free(d->rows[i].intent);
      }
    }
    d->count = kept;
  }
  if (!ok) dataset_free(d);
  return ok;
}

static int str_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted distinct intents of the training set. */
static char **collect_classes(const dataset *d, size_t *count) {
  char **all = malloc(d->count * sizeof *all);
  if (!all) return NULL;
  for (size_t i = 0; i < d->count; i++) all[i] = d->rows[i].intent;
  qsort(all, d->count, sizeof *all, str_cmp);
  size_t n = 0;
  for (size_t i = 0; i < d->count; i++)
    if (n == 0 || strcmp(all[n - 1], all[i]) != 0) all[n++] = all[i];
  *count = n;
  return all;
}

static int class_of(char **classes, size_t k, const char *intent) {
  char **hit = bsearch(&intent, classes, k, sizeof *classes, str_cmp);
  return hit ? (int)(hit - classes) : -1;
}

/* ---- sparse matrices ---- */

typedef struct csr {
  size_t *indptr;
  unsigned *indices;
  float *values;
  size_t rows, nnz, cap;
} csr;

static void csr_free(csr *m) {
  free(m->indptr);
  free(m->indices);
  free(m->values);
  memset(m, 0, sizeof *m);
}

static bool csr_push(csr *m, unsigned index, float value) {
  if (m->nnz == m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 65536;
    unsigned *i = realloc(m->indices, cap * sizeof *i);
    if (!i) return false;
    m->indices = i;
    float *v = realloc(m->values, cap * sizeof *v);
    if (!v) return false;
    m->values = v;
    m->cap = cap;
  }
  m->indices[m->nnz] = index;
  m->values[m->nnz++] = value;
  return true;
}

/* Featurises every row into bucket space. */
static bool featurise_all(const vd_text_config *cfg, const dataset *d, vd_text_features *tf,
                          csr *out, vd_error *err) {
  out->indptr = malloc((d->count + 1) * sizeof(size_t));
  if (!out->indptr) return vd_error_set(err, "out of memory");
  out->indptr[0] = 0;
  for (size_t r = 0; r < d->count; r++) {
    if (!vd_text_featurise(cfg, d->rows[r].text, strlen(d->rows[r].text), tf, err)) return false;
    size_t n = vd_text_features_count(tf);
    const uint32_t *idx = vd_text_features_indices(tf);
    const float *val = vd_text_features_values(tf);
    for (size_t j = 0; j < n; j++)
      if (!csr_push(out, idx[j], val[j])) return vd_error_set(err, "out of memory");
    out->indptr[r + 1] = out->nnz;
  }
  out->rows = d->count;
  return true;
}

/* Maps bucket-space rows to model columns (dropping buckets the model does not read). */
static bool to_columns(const csr *in, const int32_t *column_of, csr *out, vd_error *err) {
  out->indptr = malloc((in->rows + 1) * sizeof(size_t));
  if (!out->indptr) return vd_error_set(err, "out of memory");
  out->indptr[0] = 0;
  for (size_t r = 0; r < in->rows; r++) {
    for (size_t j = in->indptr[r]; j < in->indptr[r + 1]; j++) {
      int32_t c = column_of[in->indices[j]];
      if (c >= 0 && !csr_push(out, (unsigned)c, in->values[j]))
        return vd_error_set(err, "out of memory");
    }
    out->indptr[r + 1] = out->nnz;
  }
  out->rows = in->rows;
  return true;
}

/* ---- XGBoost ---- */

#define XGB_OK(call, err) \
  ((call) == 0 ? true : vd_error_set(err, "XGBoost: %s failed: %s", #call, XGBGetLastError()))

static bool make_dmatrix(const csr *m, size_t columns, DMatrixHandle *out, vd_error *err) {
  return XGB_OK(
      XGDMatrixCreateFromCSREx(m->indptr, m->indices, m->values, m->rows + 1, m->nnz, columns, out),
      err);
}

static bool set_param(BoosterHandle b, const char *key, const char *fmt, double value,
                      vd_error *err) {
  char buf[64];
  snprintf(buf, sizeof buf, fmt, value);
  if (XGBoosterSetParam(b, key, buf) != 0)
    return vd_error_set(err, "XGBoost parameter %s=%s: %s", key, buf, XGBGetLastError());
  return true;
}

static json_t *train_params_json(const vd_triage_train_options *o, size_t k) {
  json_t *p = json_pack("{s:s, s:s, s:I, s:I, s:f, s:I, s:f, s:I}", "booster", o->booster,
                        "objective", "multi:softprob", "num_class", (json_int_t)k, "rounds",
                        (json_int_t)o->rounds, "eta", o->eta, "nthread", (json_int_t)o->nthread,
                        "oos_weight", o->oos_weight, "min_df", (json_int_t)o->min_df);
  json_object_set_new(p, "max_columns", json_integer(o->max_columns));
  if (strcmp(o->booster, "gblinear") == 0) {
    json_object_set_new(p, "updater", json_string(o->updater));
    json_object_set_new(p, "lambda", json_real(o->lambda));
    json_object_set_new(p, "alpha", json_real(o->alpha));
  } else {
    json_object_set_new(p, "tree_method", json_string("hist"));
    json_object_set_new(p, "max_depth", json_integer(o->max_depth));
    json_object_set_new(p, "min_child_weight", json_real(o->min_child_weight));
    json_object_set_new(p, "lambda", json_real(o->lambda));
  }
  return p;
}

static bool configure_booster(BoosterHandle b, const vd_triage_train_options *o, size_t k,
                              vd_error *err) {
  bool linear = strcmp(o->booster, "gblinear") == 0;
  if (XGBoosterSetParam(b, "booster", o->booster) != 0 ||
      XGBoosterSetParam(b, "objective", "multi:softprob") != 0 ||
      XGBoosterSetParam(b, "seed", "0") != 0 || XGBoosterSetParam(b, "verbosity", "0") != 0)
    return vd_error_set(err, "XGBoost: %s", XGBGetLastError());
  if (!set_param(b, "num_class", "%.0f", (double)k, err) ||
      !set_param(b, "nthread", "%.0f", (double)o->nthread, err) ||
      !set_param(b, "eta", "%.17g", o->eta, err) ||
      !set_param(b, "lambda", "%.17g", o->lambda, err))
    return false;
  if (linear) {
    if (XGBoosterSetParam(b, "updater", o->updater) != 0)
      return vd_error_set(err, "XGBoost: %s", XGBGetLastError());
    return set_param(b, "alpha", "%.17g", o->alpha, err);
  }
  if (XGBoosterSetParam(b, "tree_method", "hist") != 0)
    return vd_error_set(err, "XGBoost: %s", XGBGetLastError());
  /* Softmax hessians are about 2p(1 - p) ≈ 2 / classes per row at the start: the default
   * min_child_weight of 1 would forbid nearly every split with 151 classes. */
  return set_param(b, "max_depth", "%.0f", (double)o->max_depth, err) &&
         set_param(b, "min_child_weight", "%.17g", o->min_child_weight, err);
}

/* margins[n × k] from XGBoost's own predictor. */
static bool xgb_margins(BoosterHandle b, DMatrixHandle d, size_t n, size_t k, double *margins,
                        vd_error *err) {
  bst_ulong len;
  const float *out;
  if (!XGB_OK(XGBoosterPredict(b, d, 1, 0, 0, &len, &out), err)) return false;
  if (len != n * k)
    return vd_error_set(err, "XGBoost predicted %lu values, expected %zu", (unsigned long)len,
                        n * k);
  for (size_t i = 0; i < n * k; i++) margins[i] = out[i];
  return true;
}

/* ---- evaluation ---- */

typedef struct operating_point {
  double threshold;
  double in_scope_escalated; /* share of in-scope requests escalated */
  double oos_caught;         /* share of OOS requests answered oos or escalated */
  double hot_path_accuracy;  /* accuracy over the requests not escalated */
  double hot_path_share;     /* share of all requests not escalated */
} operating_point;

typedef struct evaluation {
  const int *labels;
  const int *predicted;
  const double *confidence;
  size_t n;
  int oos;
} evaluation;

static operating_point at_threshold(const evaluation *e, double t) {
  size_t in = 0, in_esc = 0, oos = 0, oos_caught = 0, kept = 0, kept_ok = 0;
  for (size_t i = 0; i < e->n; i++) {
    bool escalated = e->predicted[i] == e->oos || e->confidence[i] < t;
    if (e->labels[i] == e->oos) {
      oos++;
      oos_caught += escalated;
    } else {
      in++;
      in_esc += escalated;
    }
    if (!escalated) {
      kept++;
      kept_ok += e->predicted[i] == e->labels[i];
    }
  }
  return (operating_point){
      t, in ? (double)in_esc / (double)in : 0, oos ? (double)oos_caught / (double)oos : 0,
      kept ? (double)kept_ok / (double)kept : 1, e->n ? (double)kept / (double)e->n : 0};
}

static int dbl_cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The highest threshold that escalates at most `rate` of the in-scope requests. */
static double choose_threshold(const evaluation *e, double rate) {
  size_t in = 0, forced = 0, m = 0;
  double *conf = malloc(e->n * sizeof(double));
  if (!conf) return 0;
  for (size_t i = 0; i < e->n; i++) {
    if (e->labels[i] == e->oos) continue;
    in++;
    if (e->predicted[i] == e->oos)
      forced++;
    else
      conf[m++] = e->confidence[i];
  }
  qsort(conf, m, sizeof(double), dbl_cmp);
  double allowed = floor(rate * (double)in + 1e-9) - (double)forced;
  double t = 0;
  if (allowed >= 1 && m > 0) t = conf[(size_t)allowed < m ? (size_t)allowed : m - 1];
  /* Ties at conf[allowed] stay on the hot path (escalate is conf < t). */
  free(conf);
  return t;
}

static json_t *point_json(const operating_point *p) {
  return json_pack("{s:f, s:f, s:f, s:f, s:f}", "threshold", p->threshold, "in_scope_escalated",
                   p->in_scope_escalated, "oos_caught", p->oos_caught, "hot_path_accuracy",
                   p->hot_path_accuracy, "hot_path_share", p->hot_path_share);
}

/* ---- training ---- */

/* The manifest names data files without their folder: it holds no paths (same bytes anywhere). */
static const char *base_name(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

static bool make_dir(const char *path, vd_error *err) {
  if (mkdir(path, 0777) == 0 || errno == EEXIST) return true;
  return vd_error_set(err, "cannot create %s: %s", path, strerror(errno));
}

static bool write_json(const char *path, const json_t *j, vd_error *err) {
  char tmp[4096];
  if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
    return vd_error_set(err, "path too long: %s", path);
  if (json_dump_file(j, tmp, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(17)) != 0)
    return vd_error_set(err, "cannot write %s", tmp);
  if (rename(tmp, path) != 0)
    return vd_error_set(err, "cannot rename %s: %s", tmp, strerror(errno));
  return true;
}

typedef struct trainer {
  const vd_triage_train_options *o;
  FILE *log;
  dataset train, val;
  char **classes;
  size_t k;
  int oos;
  int *train_labels, *val_labels;
  csr train_buckets, val_buckets, train_cols, val_cols;
  uint32_t *columns; /* column → bucket */
  size_t column_count;
  int32_t *column_of; /* bucket → column or -1 */
  DMatrixHandle dtrain, dval;
  BoosterHandle booster;
  double *val_margins;
  json_t *manifest;
} trainer;

static void trainer_free(trainer *t) {
  dataset_free(&t->train);
  dataset_free(&t->val);
  free(t->classes);
  free(t->train_labels);
  free(t->val_labels);
  csr_free(&t->train_buckets);
  csr_free(&t->val_buckets);
  csr_free(&t->train_cols);
  csr_free(&t->val_cols);
  free(t->columns);
  free(t->column_of);
  if (t->dtrain) XGDMatrixFree(t->dtrain);
  if (t->dval) XGDMatrixFree(t->dval);
  if (t->booster) XGBoosterFree(t->booster);
  free(t->val_margins);
  json_decref(t->manifest);
}

static bool label_rows(trainer *t, const dataset *d, const char *path, int **labels,
                       vd_error *err) {
  *labels = malloc(d->count * sizeof(int));
  if (!*labels) return vd_error_set(err, "out of memory");
  for (size_t i = 0; i < d->count; i++) {
    (*labels)[i] = class_of(t->classes, t->k, d->rows[i].intent);
    if ((*labels)[i] < 0)
      return vd_error_set(err, "%s: row %zu: intent \"%s\" does not occur in the training data",
                          path, i + 1, d->rows[i].intent);
  }
  return true;
}

typedef struct scored_bucket {
  uint32_t bucket;
  double score;
} scored_bucket;

static int by_score_desc(const void *a, const void *b) {
  const scored_bucket *x = a, *y = b;
  if (x->score != y->score) return x->score > y->score ? -1 : 1;
  return x->bucket < y->bucket ? -1 : (x->bucket > y->bucket);
}

static int by_bucket(const void *a, const void *b) {
  uint32_t x = ((const scored_bucket *)a)->bucket, y = ((const scored_bucket *)b)->bucket;
  return x < y ? -1 : (x > y);
}

/* The largest chi-squared statistic over the classes of "the text has bucket b" against "the text
 * is of class c": how much knowing the bucket tells about some class. */
static void chi2_scores(const trainer *t, scored_bucket *cand, size_t n, const int32_t *slot,
                        uint32_t *counts, const size_t *class_rows) {
  const csr *m = &t->train_buckets;
  for (size_t r = 0; r < m->rows; r++)
    for (size_t j = m->indptr[r]; j < m->indptr[r + 1]; j++)
      if (slot[m->indices[j]] >= 0) /* buckets below min_df are no candidates */
        counts[(size_t)slot[m->indices[j]] * t->k + (size_t)t->train_labels[r]]++;
  double total = (double)m->rows;
  for (size_t i = 0; i < n; i++) {
    const uint32_t *cnt = counts + i * t->k;
    double with = 0;
    for (size_t c = 0; c < t->k; c++) with += cnt[c];
    double best = 0;
    for (size_t c = 0; c < t->k; c++) {
      double a = cnt[c], b = with - a, cc = (double)class_rows[c] - a, d = total - a - b - cc;
      double den = (a + cc) * (b + d) * (a + b) * (cc + d);
      double chi2 = den > 0 ? total * (a * d - b * cc) * (a * d - b * cc) / den : 0;
      if (chi2 > best) best = chi2;
    }
    cand[i].score = best;
  }
}

/* Columns: buckets in at least min_df training texts; with max_columns, only the max_columns of
 * them with the highest chi-squared score. Columns are in increasing bucket order. */
static bool select_columns(trainer *t, vd_error *err) {
  size_t space = (size_t)1 << t->o->featuriser.hash_bits;
  unsigned min_df = t->o->min_df ? t->o->min_df : 1;
  uint32_t *df = calloc(space, sizeof(uint32_t));
  int32_t *slot = malloc(space * sizeof(int32_t));
  t->column_of = malloc(space * sizeof(int32_t));
  scored_bucket *cand = NULL;
  uint32_t *counts = NULL;
  size_t *class_rows = calloc(t->k, sizeof(size_t));
  bool ok = false;
  if (!df || !slot || !t->column_of || !class_rows) goto oom;
  for (size_t j = 0; j < t->train_buckets.nnz; j++) df[t->train_buckets.indices[j]]++;
  size_t n = 0;
  for (size_t b = 0; b < space; b++) n += df[b] >= min_df;
  cand = malloc((n ? n : 1) * sizeof *cand);
  if (!cand) goto oom;
  n = 0;
  for (size_t b = 0; b < space; b++) {
    slot[b] = -1;
    if (df[b] >= min_df) {
      slot[b] = (int32_t)n;
      cand[n++] = (scored_bucket){(uint32_t)b, (double)df[b]};
    }
  }
  if (t->o->max_columns && n > t->o->max_columns) {
    counts = calloc(n * t->k, sizeof(uint32_t));
    if (!counts) goto oom;
    for (size_t r = 0; r < t->train.count; r++) class_rows[t->train_labels[r]]++;
    chi2_scores(t, cand, n, slot, counts, class_rows);
    qsort(cand, n, sizeof *cand, by_score_desc);
    n = t->o->max_columns;
    qsort(cand, n, sizeof *cand, by_bucket);
  }
  t->columns = malloc((n ? n : 1) * sizeof(uint32_t));
  if (!t->columns) goto oom;
  for (size_t b = 0; b < space; b++) t->column_of[b] = -1;
  for (size_t i = 0; i < n; i++) {
    t->column_of[cand[i].bucket] = (int32_t)i;
    t->columns[i] = cand[i].bucket;
  }
  t->column_count = n;
  ok = n > 0 || vd_error_set(err, "no feature occurs in min_df = %u training texts", min_df);
  goto done;
oom:
  vd_error_set(err, "out of memory");
done:
  free(df);
  free(slot);
  free(cand);
  free(counts);
  free(class_rows);
  return ok;
}

static json_t *columns_json(const trainer *t) {
  json_t *a = json_array();
  for (size_t j = 0; j < t->column_count; j++)
    json_array_append_new(a, json_integer(t->columns[j]));
  return a;
}

static bool evaluate(trainer *t, const char *model_path, json_t *metrics, vd_error *err) {
  size_t n = t->val.count, k = t->k;
  int *pred = malloc(n * sizeof(int));
  double *conf_raw = malloc(n * sizeof(double)), *conf = malloc(n * sizeof(double));
  bool *correct = malloc(n * sizeof(bool));
  double *p = malloc(k * sizeof(double));
  bool ok = pred && conf_raw && conf && correct && p;
  if (!ok) {
    vd_error_set(err, "out of memory");
    goto done;
  }
  double temperature;
  ok = vd_calibration_fit_temperature(t->val_margins, t->val_labels, n, k, &temperature, err);
  if (!ok) goto done;
  size_t in = 0, in_ok = 0, oos = 0, oos_ok = 0;
  for (size_t i = 0; i < n; i++) {
    const double *m = t->val_margins + i * k;
    vd_softmax(m, k, 1.0, p);
    int best = 0;
    for (size_t c = 1; c < k; c++)
      if (p[c] > p[best]) best = (int)c;
    pred[i] = best;
    conf_raw[i] = p[best];
    vd_softmax(m, k, temperature, p);
    conf[i] = p[best];
    correct[i] = best == t->val_labels[i];
    if (t->val_labels[i] == t->oos) {
      oos++;
      oos_ok += correct[i];
    } else {
      in++;
      in_ok += correct[i];
    }
  }
  double ece_before = vd_calibration_ece(conf_raw, correct, n, VD_CALIBRATION_ECE_BINS);
  double ece_after = vd_calibration_ece(conf, correct, n, VD_CALIBRATION_ECE_BINS);
  double nll_before = vd_calibration_nll(t->val_margins, t->val_labels, n, k, 1.0);
  double nll_after = vd_calibration_nll(t->val_margins, t->val_labels, n, k, temperature);
  /* A model far worse than guessing uniformly (log k) has diverged: refuse to write it. */
  if (!isfinite(nll_before) || nll_before > 4 * log((double)k)) {
    ok = vd_error_set(err,
                      "training diverged (validation log-loss %.3g, uniform guessing gives %.3g): "
                      "raise --lambda or lower --eta",
                      nll_before, log((double)k));
    goto done;
  }
  evaluation e = {t->val_labels, pred, conf, n, t->oos};
  double threshold = choose_threshold(&e, t->o->target_escalation);
  operating_point chosen = at_threshold(&e, threshold);
  json_t *curve = json_array();
  for (int g = 0; g <= 19; g++) {
    operating_point q = at_threshold(&e, g * 0.05);
    json_array_append_new(curve, point_json(&q));
  }
  json_object_set_new(metrics, "rows", json_integer((json_int_t)n));
  json_object_set_new(metrics, "in_scope_accuracy", json_real(in ? (double)in_ok / (double)in : 0));
  json_object_set_new(metrics, "oos_recall", json_real(oos ? (double)oos_ok / (double)oos : 0));
  json_object_set_new(metrics, "ece_before", json_real(ece_before));
  json_object_set_new(metrics, "ece_after", json_real(ece_after));
  json_object_set_new(metrics, "nll_before", json_real(nll_before));
  json_object_set_new(metrics, "nll_after", json_real(nll_after));
  json_object_set_new(metrics, "at_threshold", point_json(&chosen));
  json_object_set_new(metrics, "coverage_curve", curve);
  json_object_set_new(t->manifest, "calibration",
                      json_pack("{s:s, s:f, s:I}", "method", "temperature", "temperature",
                                temperature, "ece_bins", (json_int_t)VD_CALIBRATION_ECE_BINS));
  json_object_set_new(t->manifest, "escalation",
                      json_pack("{s:f, s:f, s:s}", "threshold", threshold, "target_rate",
                                t->o->target_escalation, "rule",
                                "escalate when the top intent is out_of_scope_class or its "
                                "calibrated probability < threshold"));
  if (t->log) {
    fprintf(t->log,
            "validation (%zu rows): in-scope accuracy %.2f %%, OOS recall %.2f %%\n"
            "calibration: T = %.4f, ECE %.4f -> %.4f, NLL %.4f -> %.4f\n"
            "threshold %.4f (target %.0f %% in-scope escalated): in-scope escalated %.2f %%, OOS "
            "caught %.2f %%, hot-path accuracy %.2f %% over %.2f %% of requests\n",
            n, 100.0 * (double)in_ok / (double)in, oos ? 100.0 * (double)oos_ok / (double)oos : 0,
            temperature, ece_before, ece_after, nll_before, nll_after, threshold,
            100 * t->o->target_escalation, 100 * chosen.in_scope_escalated, 100 * chosen.oos_caught,
            100 * chosen.hot_path_accuracy, 100 * chosen.hot_path_share);
  }
  (void)model_path;
done:
  free(pred);
  free(conf_raw);
  free(conf);
  free(correct);
  free(p);
  return ok;
}

/* Native scores of every validation row against XGBoost's; the largest difference. */
static bool native_check(trainer *t, const char *out_dir, double *max_diff, vd_error *err) {
  vd_triage_model *m = vd_triage_load(out_dir, err);
  if (!m) return false;
  vd_triage_scratch *s = vd_triage_scratch_new(m);
  double *margins = malloc(t->k * sizeof(double));
  bool ok = s && margins;
  *max_diff = 0;
  for (size_t i = 0; ok && i < t->val.count; i++) {
    const char *text = t->val.rows[i].text;
    ok = vd_triage_margins(m, s, text, strlen(text), margins, err);
    for (size_t c = 0; ok && c < t->k; c++) {
      double d = fabs(margins[c] - t->val_margins[i * t->k + c]);
      if (d > *max_diff) *max_diff = d;
    }
  }
  free(margins);
  vd_triage_scratch_free(s);
  vd_triage_free(m);
  return ok;
}

static const char *const BUNDLE_FILES[] = {"model.json", "manifest.json"};

/* Moves the staged files into the bundle folder (model first: a reader in between sees a version
 * mismatch, which the loader refuses, never a silently wrong pair). */
static bool publish(const char *staging, const char *out_dir, vd_error *err) {
  for (size_t i = 0; i < 2; i++) {
    char from[4200], to[4200];
    snprintf(from, sizeof from, "%s/%s", staging, BUNDLE_FILES[i]);
    snprintf(to, sizeof to, "%s/%s", out_dir, BUNDLE_FILES[i]);
    if (rename(from, to) != 0)
      return vd_error_set(err, "cannot move %s to %s: %s", from, to, strerror(errno));
  }
  rmdir(staging);
  return true;
}

static void discard(const char *staging) {
  for (size_t i = 0; i < 2; i++) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", staging, BUNDLE_FILES[i]);
    unlink(path);
  }
  rmdir(staging);
}

bool vd_triage_train(const vd_triage_train_options *o, FILE *log, vd_error *err) {
  trainer t = {.o = o, .log = log};
  char staging[4096] = "";
  bool ok = false;
  uint64_t t0 = vd_monotonic_ns();
  bool linear = strcmp(o->booster, "gblinear") == 0;
  if (!linear && strcmp(o->booster, "gbtree") != 0) {
    vd_error_field(err, "booster", "expected gblinear or gbtree, got \"%s\"", o->booster);
    return false;
  }
  if (!vd_text_config_check(&o->featuriser, err)) return false;
  if (!(o->target_escalation >= 0 && o->target_escalation < 1))
    return vd_error_field(err, "target_escalation", "must be in [0, 1)");
  vd_text_features *tf = vd_text_features_new();
  if (!tf) return vd_error_set(err, "out of memory");
  if (!read_jsonl(o->train_path, o->max_train_rows, &t.train, err) ||
      !read_jsonl(o->val_path, 0, &t.val, err))
    goto done;
  t.classes = collect_classes(&t.train, &t.k);
  if (!t.classes) {
    vd_error_set(err, "out of memory");
    goto done;
  }
  t.oos = class_of(t.classes, t.k, o->out_of_scope);
  if (t.oos < 0) {
    vd_error_set(err, "%s: no training example has the out-of-scope intent \"%s\"", o->train_path,
                 o->out_of_scope);
    goto done;
  }
  if (!label_rows(&t, &t.train, o->train_path, &t.train_labels, err) ||
      !label_rows(&t, &t.val, o->val_path, &t.val_labels, err))
    goto done;
  if (!featurise_all(&o->featuriser, &t.train, tf, &t.train_buckets, err) ||
      !featurise_all(&o->featuriser, &t.val, tf, &t.val_buckets, err) || !select_columns(&t, err) ||
      !to_columns(&t.train_buckets, t.column_of, &t.train_cols, err) ||
      !to_columns(&t.val_buckets, t.column_of, &t.val_cols, err))
    goto done;
  uint64_t t1 = vd_monotonic_ns();
  if (log)
    fprintf(log,
            "%zu training rows, %zu validation rows, %zu classes, %zu columns (%zu nonzeros), "
            "featurised in %.2f s\n",
            t.train.count, t.val.count, t.k, t.column_count, t.train_cols.nnz,
            (double)(t1 - t0) / 1e9);
  if (!make_dmatrix(&t.train_cols, t.column_count, &t.dtrain, err) ||
      !make_dmatrix(&t.val_cols, t.column_count, &t.dval, err))
    goto done;
  {
    float *labels = malloc(t.train.count * sizeof(float)),
          *weights = malloc(t.train.count * sizeof(float));
    if (!labels || !weights) {
      free(labels);
      free(weights);
      vd_error_set(err, "out of memory");
      goto done;
    }
    for (size_t i = 0; i < t.train.count; i++) {
      labels[i] = (float)t.train_labels[i];
      weights[i] = t.train_labels[i] == t.oos ? (float)o->oos_weight : 1.0f;
    }
    float *val_labels = malloc(t.val.count * sizeof(float));
    for (size_t i = 0; val_labels && i < t.val.count; i++) val_labels[i] = (float)t.val_labels[i];
    bool set = val_labels &&
               XGB_OK(XGDMatrixSetFloatInfo(t.dval, "label", val_labels, t.val.count), err) &&
               XGB_OK(XGDMatrixSetFloatInfo(t.dtrain, "label", labels, t.train.count), err) &&
               XGB_OK(XGDMatrixSetFloatInfo(t.dtrain, "weight", weights, t.train.count), err);
    free(labels);
    free(weights);
    free(val_labels);
    if (!set) {
      if (!val_labels) vd_error_set(err, "out of memory");
      goto done;
    }
  }
  if (!XGB_OK(XGBoosterCreate(&t.dtrain, 1, &t.booster), err) ||
      !configure_booster(t.booster, o, t.k, err))
    goto done;
  for (unsigned r = 0; r < o->rounds; r++) {
    if (!XGB_OK(XGBoosterUpdateOneIter(t.booster, (int)r, t.dtrain), err)) goto done;
    if (log && ((r + 1) % 5 == 0 || r + 1 == o->rounds)) {
      const char *names[] = {"val"};
      const char *eval = NULL;
      if (XGBoosterEvalOneIter(t.booster, (int)r, &t.dval, names, 1, &eval) == 0)
        fprintf(log, "  round %u/%u, %.1f s, %s\n", r + 1, o->rounds,
                (double)(vd_monotonic_ns() - t1) / 1e9,
                strchr(eval, '\t') ? strchr(eval, '\t') + 1 : eval);
      fflush(log);
    }
  }
  uint64_t t2 = vd_monotonic_ns();
  if (log)
    fflush(log), fprintf(log, "trained %s, %u rounds, in %.2f s\n", o->booster, o->rounds,
                         (double)(t2 - t1) / 1e9);
  t.val_margins = malloc(t.val.count * t.k * sizeof(double));
  if (!t.val_margins) {
    vd_error_set(err, "out of memory");
    goto done;
  }
  if (!xgb_margins(t.booster, t.dval, t.val.count, t.k, t.val_margins, err)) goto done;

  /* The bundle is written and checked in a staging folder inside out_dir and only then moved in,
   * so a failed training never leaves a broken or mismatched bundle behind. */
  char model_path[4200], manifest_path[4200];
  if ((size_t)snprintf(staging, sizeof staging, "%s/.staging", o->out_dir) >= sizeof staging) {
    vd_error_set(err, "path too long: %s", o->out_dir);
    goto done;
  }
  if (!make_dir(o->out_dir, err) || !make_dir(staging, err)) goto done;
  snprintf(model_path, sizeof model_path, "%s/model.json", staging);
  snprintf(manifest_path, sizeof manifest_path, "%s/manifest.json", staging);
  if (!XGB_OK(XGBoosterSaveModel(t.booster, model_path), err)) goto done;
  char version[VD_SHA256_HEX_SIZE];
  if (!vd_sha256_file_hex(model_path, version, err)) goto done;
  {
    json_t *classes = json_array();
    for (size_t c = 0; c < t.k; c++) json_array_append_new(classes, json_string(t.classes[c]));
    t.manifest =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s}", "name", o->name, "version",
                  version, "task", "multiclass", "kind", "text", "booster", o->booster,
                  "featuriser", vd_text_config_to_json(&o->featuriser), "columns", columns_json(&t),
                  "classes", classes, "out_of_scope_class", o->out_of_scope);
    json_object_set_new(t.manifest, "training",
                        json_pack("{s:{s:s, s:I, s:s}, s:{s:s, s:I, s:s}, s:o}", "train", "file",
                                  base_name(o->train_path), "rows", (json_int_t)t.train.count,
                                  "sha256", t.train.sha256, "val", "file", base_name(o->val_path),
                                  "rows", (json_int_t)t.val.count, "sha256", t.val.sha256,
                                  "parameters", train_params_json(o, t.k)));
  }
  json_t *metrics = json_object();
  json_object_set_new(t.manifest, "metrics", metrics);
  if (!evaluate(&t, model_path, metrics, err)) goto done;
  if (!write_json(manifest_path, t.manifest, err)) goto done;
  if (linear) {
    double diff;
    if (!native_check(&t, staging, &diff, err)) goto done;
    if (log)
      fprintf(log, "native scoring vs XGBoost on %zu validation rows: max |diff| = %.3g\n",
              t.val.count, diff);
    if (diff >= 1e-5) {
      vd_error_set(err, "native scoring differs from XGBoost by %g", diff);
      goto done;
    }
  }
  if (!publish(staging, o->out_dir, err)) goto done;
  if (log)
    fprintf(log, "bundle written to %s (version %.12s) in %.2f s total\n", o->out_dir, version,
            (double)(vd_monotonic_ns() - t0) / 1e9);
  ok = true;
done:
  if (!ok && staging[0]) discard(staging);
  vd_text_features_free(tf);
  trainer_free(&t);
  return ok;
}

/* ---- the verb ---- */

static bool parse_uint(const char *s, const char *name, unsigned *out, vd_error *err) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (!*s || *end || errno || v > 1000000000ul)
    return vd_error_set(err, "--%s: expected a non-negative integer, got \"%s\"", name, s);
  *out = (unsigned)v;
  return true;
}

static bool parse_double(const char *s, const char *name, double *out, vd_error *err) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (!*s || *end || errno || !isfinite(v))
    return vd_error_set(err, "--%s: expected a number, got \"%s\"", name, s);
  *out = v;
  return true;
}

int vd_verb_train_triage(int argc, char **argv, FILE *out, FILE *errf) {
  vd_option opts[] = {
      {"data", true, NULL, "training examples, JSON Lines {\"text\", \"intent\"} (required)"},
      {"val", true, NULL, "validation examples: calibration, threshold, metrics (required)"},
      {"out", true, NULL, "bundle folder to write (required)"},
      {"name", true, NULL, "model name in the manifest (default triage)"},
      {"booster", true, NULL, "gblinear (default) or gbtree"},
      {"updater", true, NULL,
       "gblinear updater: shotgun (default; deterministic with 1 thread) or coord_descent"},
      {"rounds", true, NULL, "boosting rounds (default 15)"},
      {"eta", true, NULL, "learning rate (default 0.25)"},
      {"lambda", true, NULL, "L2 regularisation (default 1e-5)"},
      {"alpha", true, NULL, "L1 regularisation, gblinear (default 1e-5)"},
      {"max-depth", true, NULL, "tree depth, gbtree (default 6)"},
      {"min-child-weight", true, NULL, "least hessian in a leaf, gbtree (default 0.01)"},
      {"hash-bits", true, NULL, "feature hashing space 2^N (default 18)"},
      {"word-ngrams", true, NULL, "longest word n-gram (default 2)"},
      {"char-min", true, NULL, "shortest character n-gram, 0 = none (default 3)"},
      {"char-max", true, NULL, "longest character n-gram, 0 = none (default 5)"},
      {"char-weight", true, NULL, "value of a character n-gram (default 0.3)"},
      {"min-df", true, NULL, "keep buckets in at least N training texts (default 2)"},
      {"max-columns", true, NULL,
       "then keep the N buckets with the best chi-squared (default 8000; 0 = all)"},
      {"oos-weight", true, NULL, "sample weight of out-of-scope examples (default 1)"},
      {"target-escalation", true, NULL, "share of in-scope requests to escalate (default 0.15)"},
      {"out-of-scope", true, NULL, "the out-of-scope intent label (default oos)"},
      {"nthread", true, NULL, "XGBoost threads (default 1: shotgun is deterministic only so)"},
      {"max-rows", true, NULL, "use every ceil(rows/N)-th training row (default all)"},
  };
  size_t nopts = sizeof opts / sizeof opts[0];
  bool help = false;
  size_t npos = 0;
  vd_error e;
  if (!vd_args_parse(argc, argv, 1, opts, nopts, NULL, 0, &npos, &help, &e)) {
    fprintf(errf, "verdict train triage: %s (see --help)\n", e.message);
    return 2;
  }
  if (help) {
    fprintf(out,
            "usage: verdict train triage --data train.jsonl --val val.jsonl --out DIR [options]\n\n"
            "Trains the request-triage intent model (XGBoost multiclass over hashed word and\n"
            "character n-grams), calibrates it on the validation split (temperature scaling),\n"
            "chooses the escalation threshold and writes model.json + manifest.json to DIR.\n\n"
            "options:\n");
    for (size_t i = 0; i < nopts; i++) fprintf(out, "  --%-18s %s\n", opts[i].name, opts[i].help);
    return 0;
  }
  vd_triage_train_options o;
  vd_triage_train_defaults(&o);
  o.train_path = vd_args_get(opts, nopts, "data");
  o.val_path = vd_args_get(opts, nopts, "val");
  o.out_dir = vd_args_get(opts, nopts, "out");
  if (!o.train_path || !o.val_path || !o.out_dir) {
    fprintf(errf, "verdict train triage: --data, --val and --out are required (see --help)\n");
    return 2;
  }
  const char *v;
  bool ok = true;
  if ((v = vd_args_get(opts, nopts, "name"))) o.name = v;
  if ((v = vd_args_get(opts, nopts, "booster"))) o.booster = v;
  if ((v = vd_args_get(opts, nopts, "updater"))) o.updater = v;
  if ((v = vd_args_get(opts, nopts, "out-of-scope"))) o.out_of_scope = v;
  if (ok && (v = vd_args_get(opts, nopts, "rounds"))) ok = parse_uint(v, "rounds", &o.rounds, &e);
  if (ok && (v = vd_args_get(opts, nopts, "eta"))) ok = parse_double(v, "eta", &o.eta, &e);
  if (ok && (v = vd_args_get(opts, nopts, "lambda"))) ok = parse_double(v, "lambda", &o.lambda, &e);
  if (ok && (v = vd_args_get(opts, nopts, "alpha"))) ok = parse_double(v, "alpha", &o.alpha, &e);
  if (ok && (v = vd_args_get(opts, nopts, "min-child-weight")))
    ok = parse_double(v, "min-child-weight", &o.min_child_weight, &e);
  if (ok && (v = vd_args_get(opts, nopts, "max-depth")))
    ok = parse_uint(v, "max-depth", &o.max_depth, &e);
  if (ok && (v = vd_args_get(opts, nopts, "hash-bits")))
    ok = parse_uint(v, "hash-bits", &o.featuriser.hash_bits, &e);
  if (ok && (v = vd_args_get(opts, nopts, "word-ngrams")))
    ok = parse_uint(v, "word-ngrams", &o.featuriser.word_ngram_max, &e);
  if (ok && (v = vd_args_get(opts, nopts, "char-min")))
    ok = parse_uint(v, "char-min", &o.featuriser.char_ngram_min, &e);
  if (ok && (v = vd_args_get(opts, nopts, "char-max")))
    ok = parse_uint(v, "char-max", &o.featuriser.char_ngram_max, &e);
  if (ok && (v = vd_args_get(opts, nopts, "char-weight")))
    ok = parse_double(v, "char-weight", &o.featuriser.char_weight, &e);
  if (ok && (v = vd_args_get(opts, nopts, "min-df"))) ok = parse_uint(v, "min-df", &o.min_df, &e);
  if (ok && (v = vd_args_get(opts, nopts, "max-columns")))
    ok = parse_uint(v, "max-columns", &o.max_columns, &e);
  if (ok && (v = vd_args_get(opts, nopts, "oos-weight")))
    ok = parse_double(v, "oos-weight", &o.oos_weight, &e);
  if (ok && (v = vd_args_get(opts, nopts, "target-escalation")))
    ok = parse_double(v, "target-escalation", &o.target_escalation, &e);
  if (ok && (v = vd_args_get(opts, nopts, "nthread")))
    ok = parse_uint(v, "nthread", &o.nthread, &e);
  if (ok && (v = vd_args_get(opts, nopts, "max-rows"))) {
    unsigned rows = 0;
    ok = parse_uint(v, "max-rows", &rows, &e);
    o.max_train_rows = rows;
  }
  if (ok && (o.nthread < 1 || o.nthread > 64))
    ok = vd_error_set(&e, "--nthread: must be in [1, 64]");
  if (ok && o.rounds < 1) ok = vd_error_set(&e, "--rounds: must be at least 1");
  if (!ok) {
    fprintf(errf, "verdict train triage: %s\n", e.message);
    return 2;
  }
  if (!vd_triage_train(&o, out, &e)) {
    char buf[1024];
    vd_error_format(&e, buf, sizeof buf);
    fprintf(errf, "verdict train triage: %s\n", buf);
    return 2;
  }
  return 0;
}
