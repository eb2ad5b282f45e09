/* `verdict train triage`: featurise, select buckets, train XGBoost, calibrate, evaluate, write the
 * bundle. Everything here is deterministic: same data and options → same bytes. */
#include <errno.h>
#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xgboost/c_api.h>

#include "vd_args.h"
#include "vd_buf.h"
#include "vd_bundle.h"
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
  o->selection = "frequency";
  o->rounds = 14;
  o->eta = 1.0;
  o->lambda = 2e-6;
  o->alpha = 0;
  o->lambda_start = 1e-3;
  o->lambda_decay = 0.6;
  o->holdout = 0.2;
  o->folds = 5;
  o->threshold_rule = "pooled";
  o->model_format = "ubj";
  o->refit = true;
  o->max_depth = 6;
  o->min_child_weight = 0.01;
  o->oos_weight = 1.0;
  o->target_escalation = 0.15;
  o->guard_confidence = 0.95;
  o->guard_window = 3000;
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

/* Maps bucket-space rows to model columns (dropping buckets the model does not read), leaving
 * out the rows with skip[r] (skip may be NULL). */
static bool to_columns(const csr *in, const bool *skip, const int32_t *column_of, csr *out,
                       vd_error *err) {
  out->indptr = malloc((in->rows + 1) * sizeof(size_t));
  if (!out->indptr) return vd_error_set(err, "out of memory");
  out->indptr[0] = 0;
  size_t rows = 0;
  for (size_t r = 0; r < in->rows; r++) {
    if (skip && skip[r]) continue;
    for (size_t j = in->indptr[r]; j < in->indptr[r + 1]; j++) {
      int32_t c = column_of[in->indices[j]];
      if (c >= 0 && !csr_push(out, (unsigned)c, in->values[j]))
        return vd_error_set(err, "out of memory");
    }
    out->indptr[++rows] = out->nnz;
  }
  out->rows = rows;
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
  json_object_set_new(p, "selection", json_string(o->selection));
  json_object_set_new(p, "folds", json_integer(o->folds));
  if (o->folds <= 1) json_object_set_new(p, "holdout", json_real(o->holdout));
  json_object_set_new(p, "threshold_rule", json_string(o->threshold_rule));
  json_object_set_new(p, "target_escalation", json_real(o->target_escalation));
  json_object_set_new(p, "guard_confidence", json_real(o->guard_confidence));
  json_object_set_new(p, "guard_window", json_integer(o->guard_window));
  if (strcmp(o->booster, "gblinear") == 0) {
    json_object_set_new(p, "updater", json_string(o->updater));
    json_object_set_new(p, "lambda", json_real(o->lambda));
    json_object_set_new(p, "lambda_start", json_real(o->lambda_start));
    json_object_set_new(p, "lambda_decay", json_real(o->lambda_decay));
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
  double *conf = malloc((e->n ? e->n : 1) * sizeof(double)); /* a part may be empty */
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

#define MANIFEST_FLAGS (JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(17))

static bool write_json(const char *path, const json_t *j, vd_error *err) {
  char tmp[4096];
  if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
    return vd_error_set(err, "path too long: %s", path);
  FILE *f = vd_fopen_write_regular(tmp, err); /* a FIFO there would block the open */
  if (!f) return false;
  bool ok = json_dumpf(j, f, MANIFEST_FLAGS) == 0;
  if (fclose(f) != 0 || !ok) return vd_error_set(err, "cannot write %s", tmp);
  if (rename(tmp, path) != 0)
    return vd_error_set(err, "cannot rename %s: %s", tmp, strerror(errno));
  return true;
}

/* One trained model: the buckets it reads (its columns) and its booster. */
typedef struct fitted {
  uint32_t *columns; /* column → bucket, increasing */
  size_t column_count;
  int32_t *column_of; /* bucket → column or -1 */
  DMatrixHandle dtrain;
  BoosterHandle booster;
} fitted;

static void fitted_free(fitted *f) {
  free(f->columns);
  free(f->column_of);
  if (f->booster) XGBoosterFree(f->booster);
  if (f->dtrain) XGDMatrixFree(f->dtrain);
  memset(f, 0, sizeof *f);
}

typedef struct trainer {
  const vd_triage_train_options *o;
  FILE *log;
  uint64_t started;
  dataset train, val;
  char **classes;
  size_t k;
  int oos;
  int *train_labels, *val_labels;
  int *fold;        /* per training row: its out-of-fold part (0 .. folds-1), -1 = never held out */
  size_t folds;     /* parts: o->folds, or 1 for the single holdout */
  size_t oof_count; /* rows with fold >= 0: the out-of-fold predictions */
  csr train_buckets, val_buckets;
  fitted stage; /* with --no-refit: the model trained without the single holdout */
  fitted final; /* the shipped model (refit on every training row, or the stage model) */
  double temperature, threshold;
  double aimed_rate; /* the out-of-fold rate the threshold is chosen for (aimed_rate()) */
  double *val_margins;
  json_t *manifest;
} trainer;

static void trainer_free(trainer *t) {
  dataset_free(&t->train);
  dataset_free(&t->val);
  free(t->classes);
  free(t->train_labels);
  free(t->val_labels);
  free(t->fold);
  csr_free(&t->train_buckets);
  csr_free(&t->val_buckets);
  fitted_free(&t->stage);
  fitted_free(&t->final);
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

/* The parts held out for out-of-fold predictions, in file order per intent (the file order keeps
 * paraphrases written together on the same side, so a held-out part is closer to requests the
 * model has not seen):
 * - cross-fitting (folds >= 2): the i-th of an intent's n rows is in part floor(i × folds / n) —
 *   consecutive blocks, every row held out exactly once;
 * - single holdout (folds 1): the last round(share × n) rows of each intent (at least one row of
 *   every intent stays in training) are part 0, the others are never held out. */
static bool assign_folds(trainer *t, vd_error *err) {
  size_t *total = calloc(t->k, sizeof(size_t)), *seen = calloc(t->k, sizeof(size_t));
  t->fold = calloc(t->train.count ? t->train.count : 1, sizeof(int));
  if (!total || !seen || !t->fold) {
    free(total);
    free(seen);
    return vd_error_set(err, "out of memory");
  }
  t->folds = t->o->folds >= 2 ? t->o->folds : 1;
  for (size_t r = 0; r < t->train.count; r++) total[t->train_labels[r]]++;
  t->oof_count = 0;
  for (size_t r = 0; r < t->train.count; r++) {
    size_t c = (size_t)t->train_labels[r], i = seen[c]++;
    if (t->folds >= 2) {
      t->fold[r] = (int)(i * t->folds / total[c]);
    } else {
      size_t held = (size_t)floor(t->o->holdout * (double)total[c] + 0.5);
      if (held >= total[c]) held = total[c] - 1;
      t->fold[r] = i >= total[c] - held ? 0 : -1;
    }
    t->oof_count += t->fold[r] >= 0;
  }
  free(total);
  free(seen);
  if (t->oof_count == 0)
    return vd_error_field(err, "holdout", "%.3g of the training rows holds out no row",
                          t->o->holdout);
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
 * is of class c": how much knowing the bucket tells about some class. Rows with skip[r] are not
 * counted. */
static void chi2_scores(const trainer *t, const bool *skip, scored_bucket *cand, size_t n,
                        const int32_t *slot, uint32_t *counts, const size_t *class_rows,
                        size_t rows) {
  const csr *m = &t->train_buckets;
  for (size_t r = 0; r < m->rows; r++)
    for (size_t j = m->indptr[r]; !(skip && skip[r]) && j < m->indptr[r + 1]; j++)
      if (slot[m->indices[j]] >= 0) /* buckets below min_df are no candidates */
        counts[(size_t)slot[m->indices[j]] * t->k + (size_t)t->train_labels[r]]++;
  double total = (double)rows;
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

/* Columns from the training rows without skip[r]: buckets in at least min_df of those texts;
 * with max_columns, only the max_columns of them in the most texts ("frequency": common words
 * and word pieces carry the context a linear model needs; measured 92.0 % against 90.4 % for
 * chi2 at 8,000 columns on the holdout) or with the highest chi-squared score ("chi2"). Columns
 * are in increasing bucket order. */
static bool select_columns(const trainer *t, const bool *skip, fitted *f, vd_error *err) {
  size_t space = (size_t)1 << t->o->featuriser.hash_bits;
  unsigned min_df = t->o->min_df ? t->o->min_df : 1;
  uint32_t *df = calloc(space, sizeof(uint32_t));
  int32_t *slot = malloc(space * sizeof(int32_t));
  f->column_of = malloc(space * sizeof(int32_t));
  scored_bucket *cand = NULL;
  uint32_t *counts = NULL;
  size_t *class_rows = calloc(t->k, sizeof(size_t));
  bool ok = false;
  if (!df || !slot || !f->column_of || !class_rows) goto oom;
  const csr *m = &t->train_buckets;
  size_t rows = 0;
  for (size_t r = 0; r < m->rows; r++) {
    if (skip && skip[r]) continue;
    rows++;
    class_rows[t->train_labels[r]]++;
    for (size_t j = m->indptr[r]; j < m->indptr[r + 1]; j++) df[m->indices[j]]++;
  }
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
    if (strcmp(t->o->selection, "chi2") == 0) {
      counts = calloc(n * t->k, sizeof(uint32_t));
      if (!counts) goto oom;
      chi2_scores(t, skip, cand, n, slot, counts, class_rows, rows);
    }
    qsort(cand, n, sizeof *cand, by_score_desc);
    n = t->o->max_columns;
    qsort(cand, n, sizeof *cand, by_bucket);
  }
  f->columns = malloc((n ? n : 1) * sizeof(uint32_t));
  if (!f->columns) goto oom;
  for (size_t b = 0; b < space; b++) f->column_of[b] = -1;
  for (size_t i = 0; i < n; i++) {
    f->column_of[cand[i].bucket] = (int32_t)i;
    f->columns[i] = cand[i].bucket;
  }
  f->column_count = n;
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

static json_t *columns_json(const fitted *f) {
  json_t *a = json_array();
  for (size_t j = 0; j < f->column_count; j++)
    json_array_append_new(a, json_integer(f->columns[j]));
  return a;
}

/* Selects the columns and trains a booster on the training rows without skip[r] (all rows when
 * skip is NULL). */
static bool train_model(const trainer *t, const bool *skip, const char *what, fitted *f,
                        vd_error *err) {
  const vd_triage_train_options *o = t->o;
  uint64_t t0 = vd_monotonic_ns();
  csr cols = {0};
  size_t cap = t->train.count ? t->train.count : 1;
  float *labels = calloc(cap, sizeof(float)), *weights = calloc(cap, sizeof(float));
  bool ok = labels && weights;
  if (!ok) vd_error_set(err, "out of memory");
  size_t rows = 0;
  for (size_t r = 0; ok && r < t->train.count; r++) {
    if (skip && skip[r]) continue;
    labels[rows] = (float)t->train_labels[r];
    weights[rows++] = t->train_labels[r] == t->oos ? (float)o->oos_weight : 1.0f;
  }
  ok = ok && select_columns(t, skip, f, err) &&
       to_columns(&t->train_buckets, skip, f->column_of, &cols, err) &&
       make_dmatrix(&cols, f->column_count, &f->dtrain, err) &&
       XGB_OK(XGDMatrixSetFloatInfo(f->dtrain, "label", labels, rows), err) &&
       XGB_OK(XGDMatrixSetFloatInfo(f->dtrain, "weight", weights, rows), err) &&
       XGB_OK(XGBoosterCreate(&f->dtrain, 1, &f->booster), err) &&
       configure_booster(f->booster, o, t->k, err);
  if (ok && t->log)
    fprintf(t->log, "%s: %zu rows, %zu columns (%zu nonzeros)\n", what, rows, f->column_count,
            cols.nnz);
  bool linear = strcmp(o->booster, "gblinear") == 0;
  for (unsigned r = 0; ok && r < o->rounds; r++) {
    if (linear && o->lambda_start > 0) {
      double lambda = fmax(o->lambda, o->lambda_start * pow(o->lambda_decay, (double)r));
      /* Setting one penalty makes XGBoost re-read both: give alpha again with it. */
      ok = set_param(f->booster, "lambda", "%.17g", lambda, err) &&
           set_param(f->booster, "alpha", "%.17g", o->alpha, err);
    }
    ok = ok && XGB_OK(XGBoosterUpdateOneIter(f->booster, (int)r, f->dtrain), err);
    if (ok && t->log && ((r + 1) % 5 == 0 || r + 1 == o->rounds)) {
      fprintf(t->log, "  round %u/%u, %.1f s\n", r + 1, o->rounds,
              (double)(vd_monotonic_ns() - t0) / 1e9);
      fflush(t->log);
    }
  }
  if (ok && t->log)
    fprintf(t->log, "%s: trained %s, %u rounds, in %.2f s\n", what, o->booster, o->rounds,
            (double)(vd_monotonic_ns() - t0) / 1e9);
  free(labels);
  free(weights);
  csr_free(&cols);
  return ok;
}

/* margins[rows × k] of the model for the rows of `buckets` with rows[r] == true (all rows when
 * rows is NULL), from XGBoost's own predictor. */
static bool model_margins(const trainer *t, const fitted *f, const csr *buckets, const bool *rows,
                          size_t n, double *margins, vd_error *err) {
  csr cols = {0};
  DMatrixHandle d = NULL;
  bool *skip = NULL;
  if (rows) {
    skip = malloc(buckets->rows * sizeof(bool));
    if (!skip) return vd_error_set(err, "out of memory");
    for (size_t r = 0; r < buckets->rows; r++) skip[r] = !rows[r];
  }
  bool ok = to_columns(buckets, skip, f->column_of, &cols, err) &&
            make_dmatrix(&cols, f->column_count, &d, err) &&
            xgb_margins(f->booster, d, n, t->k, margins, err);
  if (d) XGDMatrixFree(d);
  csr_free(&cols);
  free(skip);
  return ok;
}

/* Predictions of rows × k margins at a temperature. */
typedef struct predictions {
  int *predicted;
  double *confidence_raw, *confidence;
  bool *correct;
} predictions;

static void predictions_free(predictions *p) {
  free(p->predicted);
  free(p->confidence_raw);
  free(p->confidence);
  free(p->correct);
}

static bool predict(const double *margins, const int *labels, size_t n, size_t k,
                    double temperature, predictions *out, vd_error *err) {
  size_t cap = n ? n : 1;
  out->predicted = calloc(cap, sizeof(int));
  out->confidence_raw = calloc(cap, sizeof(double));
  out->confidence = calloc(cap, sizeof(double));
  out->correct = calloc(cap, sizeof(bool));
  double *p = malloc(k * sizeof(double));
  if (!out->predicted || !out->confidence_raw || !out->confidence || !out->correct || !p) {
    free(p);
    return vd_error_set(err, "out of memory");
  }
  for (size_t i = 0; i < n; i++) {
    const double *m = margins + i * k;
    vd_softmax(m, k, 1.0, p);
    int best = 0;
    for (size_t c = 1; c < k; c++)
      if (p[c] > p[best]) best = (int)c;
    out->predicted[i] = best;
    out->confidence_raw[i] = p[best];
    vd_softmax(m, k, temperature, p);
    out->confidence[i] = p[best];
    out->correct[i] = best == labels[i];
  }
  free(p);
  return true;
}

/* The metrics of margins[n × k] at the trainer's temperature and threshold, into `metrics`.
 * Refuses a model far worse than guessing uniformly (log k): it has diverged. */
static bool metrics_of(const trainer *t, const char *what, const double *margins, const int *labels,
                       size_t n, json_t *metrics, vd_error *err) {
  size_t k = t->k;
  predictions pr = {0};
  if (!predict(margins, labels, n, k, t->temperature, &pr, err)) {
    predictions_free(&pr);
    return false;
  }
  size_t in = 0, in_ok = 0, oos = 0, oos_ok = 0;
  for (size_t i = 0; i < n; i++) {
    if (labels[i] == t->oos) {
      oos++;
      oos_ok += pr.correct[i];
    } else {
      in++;
      in_ok += pr.correct[i];
    }
  }
  double ece_before = vd_calibration_ece(pr.confidence_raw, pr.correct, n, VD_CALIBRATION_ECE_BINS);
  double ece_after = vd_calibration_ece(pr.confidence, pr.correct, n, VD_CALIBRATION_ECE_BINS);
  double nll_before = vd_calibration_nll(margins, labels, n, k, 1.0);
  double nll_after = vd_calibration_nll(margins, labels, n, k, t->temperature);
  bool ok = true;
  if (!isfinite(nll_before) || nll_before > 4 * log((double)k)) {
    ok = vd_error_set(err,
                      "training diverged (%s log-loss %.3g, uniform guessing gives %.3g): "
                      "raise --lambda or --lambda-start, or lower --eta",
                      what, nll_before, log((double)k));
  } else {
    evaluation e = {labels, pr.predicted, pr.confidence, n, t->oos};
    operating_point chosen = at_threshold(&e, t->threshold);
    json_t *curve = json_array();
    for (int g = 0; g <= 19; g++) {
      operating_point q = at_threshold(&e, g * 0.05);
      json_array_append_new(curve, point_json(&q));
    }
    json_object_set_new(metrics, "rows", json_integer((json_int_t)n));
    json_object_set_new(metrics, "in_scope_accuracy",
                        json_real(in ? (double)in_ok / (double)in : 0));
    json_object_set_new(metrics, "oos_recall", json_real(oos ? (double)oos_ok / (double)oos : 0));
    json_object_set_new(metrics, "ece_before", json_real(ece_before));
    json_object_set_new(metrics, "ece_after", json_real(ece_after));
    json_object_set_new(metrics, "nll_before", json_real(nll_before));
    json_object_set_new(metrics, "nll_after", json_real(nll_after));
    json_object_set_new(metrics, "at_threshold", point_json(&chosen));
    json_object_set_new(metrics, "coverage_curve", curve);
    if (t->log)
      fprintf(t->log,
              "%s (%zu rows): in-scope accuracy %.2f %%, OOS recall %.2f %%; ECE %.4f -> %.4f, "
              "NLL %.4f -> %.4f\n  at threshold %.4f: in-scope escalated %.2f %%, OOS caught "
              "%.2f %%, hot-path accuracy %.2f %% over %.2f %% of requests\n",
              what, n, in ? 100.0 * (double)in_ok / (double)in : 0,
              oos ? 100.0 * (double)oos_ok / (double)oos : 0, ece_before, ece_after, nll_before,
              nll_after, t->threshold, 100 * chosen.in_scope_escalated, 100 * chosen.oos_caught,
              100 * chosen.hot_path_accuracy, 100 * chosen.hot_path_share);
  }
  predictions_free(&pr);
  return ok;
}

/* The escalation rate to aim at on the out-of-fold rows so that a window of `window` new in-scope
 * requests stays within `target` with probability `confidence` (one-sided): the largest r with
 * r + z × sqrt(r (1 - r) (1 / window + 1 / n)) <= target, z the normal quantile of confidence —
 * the binomial spread of the window's own rate plus that of the estimate from n out-of-fold
 * rows. A threshold chosen for exactly the target would miss it on about half of such windows.
 * confidence 0 or window 0: the target itself. */
static double aimed_rate(double target, double confidence, unsigned window, size_t n) {
  if (!(confidence > 0) || window == 0 || n == 0) return target;
  double z = gsl_cdf_ugaussian_Pinv(confidence), lo = 0, hi = target;
  double spread = 1.0 / (double)window + 1.0 / (double)n;
  for (int i = 0; i < 60; i++) { /* bisection: the bound grows with r below 1/2 */
    double r = (lo + hi) / 2;
    if (r + z * sqrt(r * (1 - r) * spread) <= target)
      lo = r;
    else
      hi = r;
  }
  return lo;
}

/* The rows of `all` in part f (part[i] of row i) as an evaluation over the buffers given. */
static evaluation part_of(const evaluation *all, const int *part, int f, int *labels,
                          int *predicted, double *confidence) {
  size_t m = 0;
  for (size_t i = 0; i < all->n; i++)
    if (part[i] == f) {
      labels[m] = all->labels[i];
      predicted[m] = all->predicted[i];
      confidence[m++] = all->confidence[i];
    }
  return (evaluation){labels, predicted, confidence, m, all->oos};
}

static size_t in_scope_count(const evaluation *e) {
  size_t in = 0;
  for (size_t i = 0; i < e->n; i++) in += e->labels[i] != e->oos;
  return in;
}

/* The threshold from out-of-fold predictions: "pooled", the highest threshold escalating at most
 * the target share of all out-of-fold in-scope rows; "every_fold", the highest one escalating at
 * most the target share of EACH part's in-scope rows (the smallest of the parts' own thresholds):
 * the parts are blocks of different writers' paraphrases, so their spread is how much the rate
 * moves on text the model has not seen, and the threshold holds for the hardest of them. Each
 * part's own threshold and its rates at the chosen one go to `parts_json`. */
static bool choose_out_of_fold(trainer *t, const evaluation *all, const int *part,
                               json_t *parts_json, vd_error *err) {
  size_t n = all->n ? all->n : 1;
  int *labels = malloc(n * sizeof(int)), *predicted = malloc(n * sizeof(int));
  double *confidence = malloc(n * sizeof(double));
  if (!labels || !predicted || !confidence) {
    free(labels);
    free(predicted);
    free(confidence);
    return vd_error_set(err, "out of memory");
  }
  double rate = t->aimed_rate, pooled = choose_threshold(all, rate), every = 1;
  double *own = calloc(t->folds, sizeof(double));
  for (size_t f = 0; own && f < t->folds; f++) {
    evaluation e = part_of(all, part, (int)f, labels, predicted, confidence);
    own[f] = in_scope_count(&e) ? choose_threshold(&e, rate) : 1;
    every = fmin(every, own[f]);
  }
  bool ok = own != NULL;
  if (!ok) vd_error_set(err, "out of memory");
  t->threshold = strcmp(t->o->threshold_rule, "pooled") == 0 ? pooled : every;
  for (size_t f = 0; ok && f < t->folds; f++) {
    evaluation e = part_of(all, part, (int)f, labels, predicted, confidence);
    operating_point q = at_threshold(&e, t->threshold);
    json_t *j = point_json(&q);
    json_object_set_new(j, "rows", json_integer((json_int_t)e.n));
    json_object_set_new(j, "own_threshold", json_real(own[f]));
    json_array_append_new(parts_json, j);
    if (t->log)
      fprintf(t->log,
              "  part %zu (%zu rows): own threshold %.4f; at %.4f: in-scope escalated %.2f %%, "
              "OOS caught %.0f %%, hot-path accuracy %.2f %%\n",
              f, e.n, own[f], t->threshold, 100 * q.in_scope_escalated, 100 * q.oos_caught,
              100 * q.hot_path_accuracy);
  }
  if (ok && t->log)
    fprintf(t->log, "threshold (%s): %.4f (pooled %.4f, every part %.4f)\n", t->o->threshold_rule,
            t->threshold, pooled, every);
  free(own);
  free(labels);
  free(predicted);
  free(confidence);
  return ok;
}

/* Out-of-fold predictions: each part of the training rows is scored by a model trained without
 * it. The temperature is fitted on all of them, the threshold chosen on them by the threshold
 * rule, and their metrics recorded (manifest "out_of_fold"). With --no-refit the single
 * holdout's model is kept as the stage model. */
static bool calibrate_out_of_fold(trainer *t, vd_error *err) {
  size_t n = t->oof_count, k = t->k, rows = t->train.count;
  double *margins = calloc(n * k, sizeof(double)), *part_margins = calloc(n * k, sizeof(double));
  int *labels = calloc(n, sizeof(int)), *part = calloc(n, sizeof(int));
  bool *in_part = calloc(rows, sizeof(bool));
  predictions pr = {0};
  json_t *metrics = json_object(), *parts = json_array();
  bool ok = margins && part_margins && labels && part && in_part && metrics && parts;
  if (!ok) vd_error_set(err, "out of memory");
  for (size_t f = 0; ok && f < t->folds; f++) {
    size_t m = 0;
    for (size_t r = 0; r < rows; r++) m += in_part[r] = t->fold[r] == (int)f;
    if (m == 0) continue;
    char what[64];
    snprintf(what, sizeof what, "without part %zu of %zu", f, t->folds);
    fitted model = {0};
    ok = train_model(t, in_part, t->folds >= 2 ? what : "without the holdout", &model, err) &&
         model_margins(t, &model, &t->train_buckets, in_part, m, part_margins, err);
    /* Out-of-fold row i is the i-th training row with a part, in file order. */
    for (size_t r = 0, i = 0, j = 0; ok && r < rows; r++) {
      if (t->fold[r] < 0) continue;
      if (in_part[r]) {
        memcpy(margins + i * k, part_margins + j++ * k, k * sizeof(double));
        labels[i] = t->train_labels[r];
        part[i] = (int)f;
      }
      i++;
    }
    if (ok && !t->o->refit)
      t->stage = model;
    else
      fitted_free(&model);
  }
  ok = ok && vd_calibration_fit_temperature(margins, labels, n, k, &t->temperature, err) &&
       predict(margins, labels, n, k, t->temperature, &pr, err);
  if (ok) {
    evaluation e = {labels, pr.predicted, pr.confidence, n, t->oos};
    t->aimed_rate = aimed_rate(t->o->target_escalation, t->o->guard_confidence, t->o->guard_window,
                               in_scope_count(&e));
    if (t->log)
      fprintf(t->log,
              "target %.2f %% of in-scope requests escalated: aiming at %.2f %% out of fold\n",
              100 * t->o->target_escalation, 100 * t->aimed_rate);
    ok = choose_out_of_fold(t, &e, part, parts, err) &&
         metrics_of(t, "out-of-fold", margins, labels, n, metrics, err);
  }
  if (ok) {
    json_t *h = json_pack(
        "{s:s, s:I, s:I, s:s, s:o, s:o}", "rule",
        t->folds >= 2
            ? "cross-fitting: the training rows of each intent in file order cut into `folds` "
              "consecutive parts; each part is predicted by a model trained on the others. The "
              "temperature is fitted on these out-of-fold predictions, the threshold chosen on "
              "them (threshold_rule), and the hyper-parameters were chosen on them"
            : "the last `share` of each intent's training rows in file order, predicted by a "
              "model trained on the others; the temperature and the threshold are fitted on it",
        "folds", (json_int_t)t->folds, "rows", (json_int_t)n, "threshold_rule",
        t->o->threshold_rule, "metrics", metrics, "parts", parts);
    metrics = parts = NULL;
    if (t->folds < 2) json_object_set_new(h, "share", json_real(t->o->holdout));
    evaluation e = {labels, pr.predicted, pr.confidence, n, t->oos};
    json_object_set_new(h, "in_scope_rows", json_integer((json_int_t)in_scope_count(&e)));
    json_object_set_new(t->manifest, "out_of_fold", h);
  }
  json_decref(metrics);
  json_decref(parts);
  predictions_free(&pr);
  free(margins);
  free(part_margins);
  free(labels);
  free(part);
  free(in_part);
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

/* The model file of a bundle: XGBoost's JSON, or its binary form UBJSON (a third of the size,
 * read ~5x faster; both loaded by XGBoost and by vd_triage_load). */
static const char *model_file_of(const vd_triage_train_options *o) {
  return strcmp(o->model_format, "json") == 0 ? "model.json" : "model.ubj";
}

static const char *const MODEL_FILES[] = {"model.json", "model.ubj"};

/* Moves the staged files into the bundle folder, the model first (a reader in between sees the
 * previous manifest with its own model file, or for the same file name a version mismatch, which
 * the loader refuses — never a silently wrong pair), then removes the other format's model file
 * a previous training may have left. */
static bool publish(const char *staging, const char *out_dir, const char *model_file,
                    vd_error *err) {
  const char *files[] = {model_file, "manifest.json"};
  for (size_t i = 0; i < 2; i++) {
    char from[4200], to[4200];
    snprintf(from, sizeof from, "%s/%s", staging, files[i]);
    snprintf(to, sizeof to, "%s/%s", out_dir, files[i]);
    if (rename(from, to) != 0)
      return vd_error_set(err, "cannot move %s to %s: %s", from, to, strerror(errno));
  }
  for (size_t i = 0; i < 2; i++) {
    char stale[4200];
    snprintf(stale, sizeof stale, "%s/%s", out_dir, MODEL_FILES[i]);
    if (strcmp(MODEL_FILES[i], model_file) != 0) unlink(stale);
  }
  rmdir(staging);
  return true;
}

static void discard(const char *staging) {
  const char *files[] = {MODEL_FILES[0], MODEL_FILES[1], "manifest.json"};
  for (size_t i = 0; i < 3; i++) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", staging, files[i]);
    unlink(path);
  }
  rmdir(staging);
}

/* Reads the data, labels it, assigns the out-of-fold parts and featurises every row. */
static bool prepare(trainer *t, vd_error *err) {
  const vd_triage_train_options *o = t->o;
  if (!read_jsonl(o->train_path, o->max_train_rows, &t->train, err) ||
      !read_jsonl(o->val_path, 0, &t->val, err))
    return false;
  t->classes = collect_classes(&t->train, &t->k);
  if (!t->classes) return vd_error_set(err, "out of memory");
  t->oos = class_of(t->classes, t->k, o->out_of_scope);
  if (t->oos < 0)
    return vd_error_set(err, "%s: no training example has the out-of-scope intent \"%s\"",
                        o->train_path, o->out_of_scope);
  vd_text_features *tf = vd_text_features_new();
  if (!tf) return vd_error_set(err, "out of memory");
  bool ok = label_rows(t, &t->train, o->train_path, &t->train_labels, err) &&
            label_rows(t, &t->val, o->val_path, &t->val_labels, err) && assign_folds(t, err) &&
            featurise_all(&o->featuriser, &t->train, tf, &t->train_buckets, err) &&
            featurise_all(&o->featuriser, &t->val, tf, &t->val_buckets, err);
  vd_text_features_free(tf);
  if (ok && t->log)
    fprintf(t->log,
            "%zu training rows (%zu predicted out of fold, %zu parts), %zu validation rows, %zu "
            "classes, featurised in %.2f s\n",
            t->train.count, t->oof_count, t->folds, t->val.count, t->k,
            (double)(vd_monotonic_ns() - t->started) / 1e9);
  return ok;
}

static json_t *manifest_of(const trainer *t, const char *version) {
  const vd_triage_train_options *o = t->o;
  json_t *classes = json_array();
  for (size_t c = 0; c < t->k; c++) json_array_append_new(classes, json_string(t->classes[c]));
  json_t *m =
      json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s}", "name", o->name, "version",
                version, "task", "multiclass", "kind", "text", "booster", o->booster, "featuriser",
                vd_text_config_to_json(&o->featuriser), "columns", columns_json(&t->final),
                "classes", classes, "out_of_scope_class", o->out_of_scope);
  json_object_set_new(m, "model_file", json_string(model_file_of(o)));
  json_object_set_new(
      m, "training",
      json_pack("{s:{s:s, s:I, s:s}, s:{s:s, s:I, s:s}, s:o, s:b}", "train", "file",
                base_name(o->train_path), "rows", (json_int_t)t->train.count, "sha256",
                t->train.sha256, "val", "file", base_name(o->val_path), "rows",
                (json_int_t)t->val.count, "sha256", t->val.sha256, "parameters",
                train_params_json(o, t->k), "refit_on_all_training_rows", o->refit));
  json_object_set_new(
      m, "calibration",
      json_pack("{s:s, s:f, s:I, s:s}", "method", "temperature", "temperature", t->temperature,
                "ece_bins", (json_int_t)VD_CALIBRATION_ECE_BINS, "fitted_on", "out_of_fold"));
  json_object_set_new(m, "escalation",
                      json_pack("{s:f, s:f, s:f, s:{s:f, s:I}, s:s, s:s}", "threshold",
                                t->threshold, "target_rate", o->target_escalation, "aimed_rate",
                                t->aimed_rate, "guard", "confidence", o->guard_confidence, "window",
                                (json_int_t)o->guard_window, "chosen_on", "out_of_fold", "rule",
                                "escalate when the top intent is out_of_scope_class or its "
                                "calibrated probability < threshold"));
  return m;
}

bool vd_triage_train(const vd_triage_train_options *o, FILE *log, vd_error *err) {
  trainer t = {.o = o, .log = log, .started = vd_monotonic_ns()};
  char staging[4096] = "";
  bool ok = false;
  bool linear = strcmp(o->booster, "gblinear") == 0;
  if (!linear && strcmp(o->booster, "gbtree") != 0)
    return vd_error_field(err, "booster", "expected gblinear or gbtree, got \"%s\"", o->booster);
  if (strcmp(o->selection, "frequency") != 0 && strcmp(o->selection, "chi2") != 0)
    return vd_error_field(err, "selection", "expected frequency or chi2, got \"%s\"", o->selection);
  if (!vd_text_config_check(&o->featuriser, err)) return false;
  if (!(o->target_escalation >= 0 && o->target_escalation < 1))
    return vd_error_field(err, "target_escalation", "must be in [0, 1)");
  if (!(o->guard_confidence == 0 || (o->guard_confidence >= 0.5 && o->guard_confidence < 1)))
    return vd_error_field(err, "guard_confidence", "must be 0 (no guard) or in [0.5, 1)");
  if (!(o->holdout > 0 && o->holdout <= 0.5))
    return vd_error_field(err, "holdout", "must be in (0, 0.5]");
  if (o->folds > 20) return vd_error_field(err, "folds", "must be at most 20");
  if (o->folds >= 2 && !o->refit)
    return vd_error_field(err, "folds",
                          "cross-fitting trains one model per part: --no-refit needs --folds 1");
  if (strcmp(o->model_format, "ubj") != 0 && strcmp(o->model_format, "json") != 0)
    return vd_error_field(err, "model_format", "expected ubj or json, got \"%s\"", o->model_format);
  if (strcmp(o->threshold_rule, "every_fold") != 0 && strcmp(o->threshold_rule, "pooled") != 0)
    return vd_error_field(err, "threshold_rule", "expected every_fold or pooled, got \"%s\"",
                          o->threshold_rule);
  if (!(o->lambda_start >= 0) || !(o->lambda_decay > 0 && o->lambda_decay <= 1))
    return vd_error_field(err, "lambda_decay", "lambda_start must be >= 0, lambda_decay in (0, 1]");
  t.manifest = json_object();
  if (!t.manifest || !prepare(&t, err) || !calibrate_out_of_fold(&t, err)) goto done;
  if (o->refit) {
    if (!train_model(&t, NULL, "all training rows", &t.final, err)) goto done;
  } else {
    t.final = t.stage;
    memset(&t.stage, 0, sizeof t.stage);
  }
  t.val_margins = malloc(t.val.count * t.k * sizeof(double));
  if (!t.val_margins) {
    vd_error_set(err, "out of memory");
    goto done;
  }
  json_t *metrics = json_object();
  json_object_set_new(metrics, "split", json_string("validation"));
  json_object_set_new(metrics, "note",
                      json_string("evaluated once with the final model: nothing was fitted or "
                                  "chosen on this split"));
  json_object_set_new(t.manifest, "metrics", metrics);
  if (!model_margins(&t, &t.final, &t.val_buckets, NULL, t.val.count, t.val_margins, err) ||
      !metrics_of(&t, "validation", t.val_margins, t.val_labels, t.val.count, metrics, err))
    goto done;

  /* The bundle is written and checked in a staging folder inside out_dir and only then moved in,
   * so a failed training never leaves a broken or mismatched bundle behind. */
  char model_path[4200], manifest_path[4200];
  if ((size_t)snprintf(staging, sizeof staging, "%s/.staging", o->out_dir) >= sizeof staging) {
    vd_error_set(err, "path too long: %s", o->out_dir);
    goto done;
  }
  if (!make_dir(o->out_dir, err) || !make_dir(staging, err)) goto done;
  snprintf(model_path, sizeof model_path, "%s/%s", staging, model_file_of(o));
  snprintf(manifest_path, sizeof manifest_path, "%s/manifest.json", staging);
  if (!XGB_OK(XGBoosterSaveModel(t.final.booster, model_path), err)) goto done;
  char model_sha[VD_SHA256_HEX_SIZE], version[VD_SHA256_HEX_SIZE];
  if (!vd_sha256_file_hex(model_path, model_sha, err)) goto done;
  {
    json_t *m = manifest_of(&t, model_sha); /* the version is stamped below */
    if (!m || json_object_update(m, t.manifest) != 0) {
      json_decref(m);
      vd_error_set(err, "out of memory");
      goto done;
    }
    json_decref(t.manifest);
    t.manifest = m;
  }
  if (!vd_bundle_stamp(t.manifest, MANIFEST_FLAGS, model_sha, version, err)) goto done;
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
  if (!publish(staging, o->out_dir, model_file_of(o), err)) goto done;
  if (log)
    fprintf(log, "bundle written to %s (version %.12s) in %.2f s total\n", o->out_dir, version,
            (double)(vd_monotonic_ns() - t.started) / 1e9);
  ok = true;
done:
  if (!ok && staging[0]) discard(staging);
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
      {"val", true, NULL, "validation examples: evaluated once, never fitted on (required)"},
      {"out", true, NULL, "bundle folder to write (required)"},
      {"name", true, NULL, "model name in the manifest (default triage)"},
      {"booster", true, NULL, "gblinear (default) or gbtree"},
      {"updater", true, NULL,
       "gblinear updater: shotgun (default; deterministic with 1 thread) or coord_descent"},
      {"rounds", true, NULL, "boosting rounds (default 14)"},
      {"eta", true, NULL, "learning rate (default 1)"},
      {"lambda", true, NULL, "L2 regularisation at the end of the path (default 2e-6)"},
      {"lambda-start", true, NULL,
       "gblinear: L2 of round 0, times --lambda-decay each round down to --lambda (default "
       "1e-3; 0 = --lambda throughout)"},
      {"lambda-decay", true, NULL, "see --lambda-start (default 0.6)"},
      {"alpha", true, NULL, "L1 regularisation, gblinear (default 0)"},
      {"max-depth", true, NULL, "tree depth, gbtree (default 6)"},
      {"min-child-weight", true, NULL, "least hessian in a leaf, gbtree (default 0.01)"},
      {"hash-bits", true, NULL, "feature hashing space 2^N (default 18)"},
      {"word-ngrams", true, NULL, "longest word n-gram (default 2)"},
      {"char-min", true, NULL, "shortest character n-gram, 0 = none (default 3)"},
      {"char-max", true, NULL, "longest character n-gram, 0 = none (default 5)"},
      {"char-weight", true, NULL, "value of a character n-gram (default 0.5)"},
      {"min-df", true, NULL, "keep buckets in at least N training texts (default 2)"},
      {"max-columns", true, NULL, "then keep N buckets (default 8000; 0 = all)"},
      {"selection", true, NULL, "which N: frequency (in the most training texts; default) or chi2"},
      {"model-format", true, NULL,
       "ubj: model.ubj, XGBoost's binary JSON (default; a third of the size, loads ~5x "
       "faster) or json: model.json"},
      {"folds", true, NULL,
       "cross-fitting: cut each intent's training rows (file order) into N parts, predict each "
       "part with a model trained on the others, fit the temperature and choose the threshold "
       "on these out-of-fold predictions (default 5; 1 = a single holdout, see --holdout)"},
      {"threshold-rule", true, NULL,
       "every_fold: the highest threshold escalating at most the target on every part "
       "(default); pooled: on all out-of-fold rows together"},
      {"holdout", true, NULL,
       "with --folds 1: share of each intent's training rows (the last ones) held out "
       "(default 0.2)"},
      {"no-refit", false, NULL,
       "with --folds 1: ship the model trained without the holdout (default: retrain on "
       "every training row)"},
      {"oos-weight", true, NULL, "sample weight of out-of-scope examples (default 1)"},
      {"target-escalation", true, NULL,
       "most in-scope requests to escalate, as a share (default 0.15)"},
      {"guard-confidence", true, NULL,
       "the threshold keeps a window of --guard-window new in-scope requests within the "
       "target with this probability: it is chosen for a lower out-of-fold rate (default "
       "0.95; 0 = for the target itself)"},
      {"guard-window", true, NULL,
       "in-scope requests the target is checked on (default 3000, the validation split's)"},
      {"out-of-scope", true, NULL, "the out-of-scope intent label (default oos)"},
      {"nthread", true, NULL, "XGBoost threads (default 1: shotgun is deterministic only so)"},
      {"max-rows", true, NULL, "use every ceil(rows/N)-th training row (default all)"},
  };
  size_t nopts = sizeof opts / sizeof opts[0];
  size_t npos = 0;
  static const vd_verb_help help = {
      "train triage",
      "usage: verdict train triage --data train.jsonl --val val.jsonl --out DIR [options]\n\n"
      "Trains the request-triage intent model (XGBoost multiclass over hashed word and\n"
      "character n-grams): predicts every training row out of fold (cross-fitting), fits\n"
      "the temperature and chooses the escalation threshold on those predictions,\n"
      "trains on the whole training split, evaluates once on the validation split and\n"
      "writes model.ubj (or model.json) + manifest.json to DIR.",
      NULL};
  int parsed = vd_args_verb(&help, argc, argv, 1, opts, nopts, NULL, 0, &npos, out, errf);
  if (parsed != VD_ARGS_GO_ON) return parsed;
  vd_error e = {0};
  vd_triage_train_options o;
  vd_triage_train_defaults(&o);
  o.train_path = vd_args_get(opts, nopts, "data");
  o.val_path = vd_args_get(opts, nopts, "val");
  o.out_dir = vd_args_get(opts, nopts, "out");
  if (!o.train_path || !o.val_path || !o.out_dir) {
    return vd_args_usage_error("train triage", errf, "--data, --val and --out are required");
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
  if (ok && (v = vd_args_get(opts, nopts, "lambda-start")))
    ok = parse_double(v, "lambda-start", &o.lambda_start, &e);
  if (ok && (v = vd_args_get(opts, nopts, "lambda-decay")))
    ok = parse_double(v, "lambda-decay", &o.lambda_decay, &e);
  if (ok && (v = vd_args_get(opts, nopts, "holdout")))
    ok = parse_double(v, "holdout", &o.holdout, &e);
  if ((v = vd_args_get(opts, nopts, "selection"))) o.selection = v;
  if ((v = vd_args_get(opts, nopts, "threshold-rule"))) o.threshold_rule = v;
  if ((v = vd_args_get(opts, nopts, "model-format"))) o.model_format = v;
  if (ok && (v = vd_args_get(opts, nopts, "folds"))) ok = parse_uint(v, "folds", &o.folds, &e);
  if (vd_args_get(opts, nopts, "no-refit")) o.refit = false;
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
  if (ok && (v = vd_args_get(opts, nopts, "guard-confidence")))
    ok = parse_double(v, "guard-confidence", &o.guard_confidence, &e);
  if (ok && (v = vd_args_get(opts, nopts, "guard-window")))
    ok = parse_uint(v, "guard-window", &o.guard_window, &e);
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
