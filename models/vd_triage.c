/* The triage model bundle: load, native gblinear scoring, calibrated top-k, token contributions. */
#include "vd_triage.h"

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vd_buf.h"
#include "vd_bundle.h"
#include "vd_calibration.h"
#include "vd_hash.h"
#include "vd_json_file.h"
#include "vd_store.h"
#include "vd_ubjson.h"

enum { MAX_MODEL_FILE = 512 * 1024 * 1024, MAX_MANIFEST_FILE = 16 * 1024 * 1024 };

struct vd_triage_model {
  atomic_int refs;
  json_t *manifest;
  const char *name, *version, *oos_class;
  const char *model_file; /* "model.json" or "model.ubj" (manifest "model_file") */
  vd_text_config featuriser;
  size_t k; /* classes */
  const char **classes;
  size_t columns;     /* model columns */
  int32_t *column_of; /* bucket → column, -1 when the model does not read the bucket */
  float *weights;     /* columns × k, column-major per class: weights[col * k + class] */
  float *bias;        /* k: base_score + the class bias, as XGBoost adds them */
  double temperature, threshold;
};

struct vd_triage_scratch {
  vd_text_features *tf;
  size_t k;
  float *margins;
  double *dmargins;
  double *probs;
  double *token_values;
  size_t token_cap;
  vd_triage_token_contribution *tokens;
  vd_triage_feature_contribution *features;
  size_t *feature_text; /* offsets into text for features[i].ngrams */
  size_t *token_text;
  size_t features_cap;
  vd_buf text;
};

/* ---- loading ---- */

static bool manifest_error(vd_error *err, const char *path, const char *field, const char *why) {
  vd_error_field(err, field, "%s", why);
  vd_error_prefix(err, "%s", path);
  return false;
}

static const char *manifest_string(const json_t *m, const char *key, const char *path,
                                   vd_error *err) {
  const char *s = json_string_value(json_object_get(m, key));
  if (!s || !*s) manifest_error(err, path, key, "expected a non-empty string");
  return s;
}

static bool parse_base_score(const json_t *model, double *base, vd_error *err) {
  const json_t *p = json_object_get(json_object_get(model, "learner"), "learner_model_param");
  const char *s = json_string_value(json_object_get(p, "base_score"));
  if (!s) return vd_error_field(err, "learner.learner_model_param.base_score", "missing");
  char *end;
  *base = strtod(s, &end);
  if (*end) return vd_error_field(err, "learner.learner_model_param.base_score", "not a number");
  return true;
}

static long param_long(const json_t *model, const char *key) {
  const json_t *p = json_object_get(json_object_get(model, "learner"), "learner_model_param");
  const char *s = json_string_value(json_object_get(p, key));
  return s ? strtol(s, NULL, 10) : -1;
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Reads XGBoost's gblinear model (JSON, or its binary form UBJSON for a `.ubj` file) into weights
 * and bias. */
static bool load_linear(vd_triage_model *m, const char *model_path, vd_error *err) {
  json_t *model;
  if (ends_with(model_path, ".ubj")) {
    model = vd_ubjson_load_file(model_path, MAX_MODEL_FILE, err);
    if (!model) return false;
  } else {
    model = vd_json_load_file(model_path, MAX_MODEL_FILE, 0, err);
    if (!model) return false;
  }
  bool ok = false;
  const json_t *gb = json_object_get(json_object_get(model, "learner"), "gradient_booster");
  const char *booster = json_string_value(json_object_get(gb, "name"));
  const json_t *w = json_object_get(json_object_get(gb, "model"), "weights");
  double base = 0;
  if (!booster || strcmp(booster, "gblinear") != 0) {
    vd_error_field(err, "learner.gradient_booster.name",
                   "expected gblinear (the only booster served natively), got %s",
                   booster ? booster : "nothing");
  } else if (param_long(model, "num_class") != (long)m->k) {
    vd_error_field(err, "learner.learner_model_param.num_class",
                   "the model has %ld classes, the manifest %zu", param_long(model, "num_class"),
                   m->k);
  } else if (param_long(model, "num_feature") != (long)m->columns) {
    vd_error_field(err, "learner.learner_model_param.num_feature",
                   "the model has %ld features, the manifest %zu columns",
                   param_long(model, "num_feature"), m->columns);
  } else if (!json_is_array(w) || json_array_size(w) != (m->columns + 1) * m->k) {
    vd_error_field(err, "learner.gradient_booster.model.weights",
                   "expected (num_feature + 1) × num_class numbers");
  } else if (parse_base_score(model, &base, err)) {
    m->weights = malloc(m->columns * m->k * sizeof(float));
    m->bias = malloc(m->k * sizeof(float));
    if (!m->weights || !m->bias) {
      vd_error_set(err, "out of memory");
    } else {
      ok = true;
      for (size_t i = 0; ok && i < json_array_size(w); i++) {
        const json_t *v = json_array_get(w, i);
        if (!json_is_number(v)) {
          ok = vd_error_field(err, "learner.gradient_booster.model.weights",
                              "item %zu is not a number", i);
          break;
        }
        float f = (float)json_number_value(v);
        if (i < m->columns * m->k)
          m->weights[i] = f;
        else /* XGBoost: psum = bias[class] + base_score, in float */
          m->bias[i - m->columns * m->k] = f + (float)base;
      }
    }
  }
  if (!ok) vd_error_prefix(err, "%s", model_path);
  json_decref(model);
  return ok;
}

static bool load_manifest(vd_triage_model *m, const char *path, vd_error *err) {
  m->manifest = vd_json_load_file(path, MAX_MANIFEST_FILE, 0, err);
  if (!m->manifest) return false;
  const json_t *j = m->manifest;
  if (!(m->name = manifest_string(j, "name", path, err)) ||
      !(m->version = manifest_string(j, "version", path, err)))
    return false;
  const char *task = json_string_value(json_object_get(j, "task"));
  const char *kind = json_string_value(json_object_get(j, "kind"));
  if (!task || strcmp(task, "multiclass") != 0)
    return manifest_error(err, path, "task", "expected \"multiclass\"");
  if (!kind || strcmp(kind, "text") != 0)
    return manifest_error(err, path, "kind", "expected \"text\" (a triage bundle)");
  if (!vd_text_config_from_json(json_object_get(j, "featuriser"), "featuriser", &m->featuriser,
                                err)) {
    vd_error_prefix(err, "%s", path);
    return false;
  }
  const json_t *classes = json_object_get(j, "classes");
  if (!json_is_array(classes) || json_array_size(classes) < 2)
    return manifest_error(err, path, "classes", "expected an array of at least 2 labels");
  m->k = json_array_size(classes);
  m->classes = calloc(m->k, sizeof(char *));
  if (!m->classes) return vd_error_set(err, "out of memory");
  for (size_t c = 0; c < m->k; c++)
    if (!(m->classes[c] = json_string_value(json_array_get(classes, c))))
      return manifest_error(err, path, "classes", "every label must be a string");
  if (!(m->oos_class = manifest_string(j, "out_of_scope_class", path, err))) return false;
  bool found = false;
  for (size_t c = 0; c < m->k; c++) found |= strcmp(m->classes[c], m->oos_class) == 0;
  if (!found) return manifest_error(err, path, "out_of_scope_class", "is not one of the classes");
  const json_t *columns = json_object_get(j, "columns");
  size_t space = (size_t)1 << m->featuriser.hash_bits;
  if (!json_is_array(columns) || json_array_size(columns) == 0)
    return manifest_error(err, path, "columns", "expected an array of hash buckets");
  m->columns = json_array_size(columns);
  m->column_of = malloc(space * sizeof(int32_t));
  if (!m->column_of) return vd_error_set(err, "out of memory");
  for (size_t b = 0; b < space; b++) m->column_of[b] = -1;
  json_int_t prev = -1;
  for (size_t c = 0; c < m->columns; c++) {
    const json_t *v = json_array_get(columns, c);
    json_int_t b = json_is_integer(v) ? json_integer_value(v) : -1;
    if (b <= prev || b >= (json_int_t)space)
      return manifest_error(err, path, "columns",
                            "expected increasing bucket numbers below 2^hash_bits");
    m->column_of[b] = (int32_t)c;
    prev = b;
  }
  const json_t *t = json_object_get(json_object_get(j, "calibration"), "temperature");
  m->temperature = json_is_number(t) ? json_number_value(t) : -1;
  if (!(m->temperature > 0))
    return manifest_error(err, path, "calibration.temperature", "expected a positive number");
  const json_t *th = json_object_get(json_object_get(j, "escalation"), "threshold");
  m->threshold = json_is_number(th) ? json_number_value(th) : -1;
  if (!(m->threshold >= 0 && m->threshold <= 1))
    return manifest_error(err, path, "escalation.threshold", "expected a number in [0, 1]");
  const char *booster = json_string_value(json_object_get(j, "booster"));
  if (!booster || strcmp(booster, "gblinear") != 0)
    return manifest_error(err, path, "booster",
                          "expected \"gblinear\" (the booster served natively)");
  /* The model file: a name inside the bundle folder, never a path (bundles before it: JSON). */
  const json_t *file = json_object_get(j, "model_file");
  m->model_file = file ? json_string_value(file) : "model.json";
  if (!m->model_file ||
      (strcmp(m->model_file, "model.json") != 0 && strcmp(m->model_file, "model.ubj") != 0))
    return manifest_error(err, path, "model_file", "expected \"model.json\" or \"model.ubj\"");
  return true;
}

/* allow_legacy: accept a version of the legacy scheme (vd_bundle.h), for stored bundles only. */
static vd_triage_model *load_bundle(const char *dir, bool allow_legacy, vd_error *err) {
  vd_triage_model *m = calloc(1, sizeof *m);
  if (!m) {
    vd_error_set(err, "out of memory");
    return NULL;
  }
  atomic_init(&m->refs, 1);
  char manifest_path[4096], model_path[4096];
  snprintf(manifest_path, sizeof manifest_path, "%s/manifest.json", dir);
  char hex[VD_SHA256_HEX_SIZE];
  bool ok = load_manifest(m, manifest_path, err);
  if (ok) {
    snprintf(model_path, sizeof model_path, "%s/%s", dir, m->model_file);
    ok = vd_sha256_file_hex(model_path, hex, err);
  }
  if (ok) ok = vd_bundle_check_version(m->manifest, dir, m->model_file, hex, allow_legacy, err);
  if (ok) ok = load_linear(m, model_path, err);
  if (!ok) {
    vd_triage_free(m);
    return NULL;
  }
  return m;
}

vd_triage_model *vd_triage_load(const char *dir, vd_error *err) {
  return load_bundle(dir, false, err);
}

vd_triage_model *vd_triage_store_load(const char *data_dir, const char *version, vd_error *err) {
  char dir[4200];
  if (!vd_store_path(data_dir, "models", version, dir, sizeof dir, err)) return NULL;
  /* A stored bundle may carry a legacy version (the model file's hash alone): the decision logs
   * written before the version covered the manifest name those versions, and their replays load
   * them from here. The stored copy is still checked against that version. */
  vd_triage_model *m = load_bundle(dir, true, err);
  if (m && strcmp(m->version, version) != 0) {
    vd_error_set(err, "%s: holds version %s, not %s", dir, m->version, version);
    vd_triage_free(m);
    return NULL;
  }
  return m;
}

vd_triage_model *vd_triage_retain(vd_triage_model *m) {
  if (m) atomic_fetch_add(&m->refs, 1);
  return m;
}

void vd_triage_free(vd_triage_model *m) {
  if (!m || atomic_fetch_sub(&m->refs, 1) > 1) return;
  free(m->classes);
  free(m->column_of);
  free(m->weights);
  free(m->bias);
  json_decref(m->manifest);
  free(m);
}

const char *vd_triage_name(const vd_triage_model *m) { return m->name; }
const char *vd_triage_version(const vd_triage_model *m) { return m->version; }
const json_t *vd_triage_manifest(const vd_triage_model *m) { return m->manifest; }
const vd_text_config *vd_triage_featuriser(const vd_triage_model *m) { return &m->featuriser; }
size_t vd_triage_class_count(const vd_triage_model *m) { return m->k; }
const char *vd_triage_class(const vd_triage_model *m, size_t i) { return m->classes[i]; }
const char *vd_triage_out_of_scope_class(const vd_triage_model *m) { return m->oos_class; }
double vd_triage_temperature(const vd_triage_model *m) { return m->temperature; }
double vd_triage_threshold(const vd_triage_model *m) { return m->threshold; }

/* ---- scoring ---- */

vd_triage_scratch *vd_triage_scratch_new(const vd_triage_model *m) {
  vd_triage_scratch *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->k = m->k;
  s->tf = vd_text_features_new();
  s->margins = malloc(m->k * sizeof(float));
  s->probs = malloc(m->k * sizeof(double));
  s->dmargins = malloc(m->k * sizeof(double));
  if (!s->tf || !s->margins || !s->probs || !s->dmargins) {
    vd_triage_scratch_free(s);
    return NULL;
  }
  return s;
}

void vd_triage_scratch_free(vd_triage_scratch *s) {
  if (!s) return;
  vd_text_features_free(s->tf);
  free(s->margins);
  free(s->probs);
  free(s->dmargins);
  free(s->token_values);
  free(s->tokens);
  free(s->token_text);
  free(s->features);
  free(s->feature_text);
  vd_buf_free(&s->text);
  free(s);
}

/* A margin or probability that overflowed (finite weights can sum past float's range): named with
 * the model and its file, instead of a NaN that no JSON can hold ("out of memory" downstream). */
static bool finite_or_fail(const vd_triage_model *m, const char *what, size_t cls, double value,
                           vd_error *err) {
  if (isfinite(value)) return true;
  return vd_error_set(err,
                      "triage model %s (%s, version %.12s…): the %s of intent %s is %g, not a "
                      "finite number — its weights overflow; retrain the model",
                      m->name, m->model_file, m->version, what, m->classes[cls], value);
}

/* Featurises and fills s->margins exactly as XGBoost's gblinear predictor does (float sums,
 * features in increasing column order). */
static bool compute_margins(const vd_triage_model *m, vd_triage_scratch *s, const char *text,
                            size_t len, vd_error *err) {
  if (s->k != m->k) return vd_error_set(err, "scratch was made for another model");
  if (!vd_text_featurise(&m->featuriser, text, len, s->tf, err)) return false;
  const size_t k = m->k;
  memcpy(s->margins, m->bias, k * sizeof(float));
  size_t n = vd_text_features_count(s->tf);
  const uint32_t *idx = vd_text_features_indices(s->tf);
  const float *val = vd_text_features_values(s->tf);
  /* Buckets increase, and column_of is increasing in the bucket, so columns are in order. */
  for (size_t i = 0; i < n; i++) {
    int32_t col = m->column_of[idx[i]];
    if (col < 0) continue;
    const float *w = m->weights + (size_t)col * k;
    const float v = val[i];
    for (size_t c = 0; c < k; c++) s->margins[c] += v * w[c];
  }
  for (size_t c = 0; c < k; c++)
    if (!finite_or_fail(m, "margin", c, s->margins[c], err)) return false;
  return true;
}

bool vd_triage_margins(const vd_triage_model *m, vd_triage_scratch *s, const char *text, size_t len,
                       double *margins, vd_error *err) {
  if (!compute_margins(m, s, text, len, err)) return false;
  for (size_t c = 0; c < m->k; c++) margins[c] = s->margins[c];
  return true;
}

/* Grows the per-token arrays to hold `tokens` and the per-feature arrays `features` items. */
static bool reserve(vd_triage_scratch *s, size_t tokens, size_t features) {
  if (tokens + 1 > s->token_cap) {
    size_t cap = 2 * (tokens + 1);
    double *v = realloc(s->token_values, cap * sizeof *v);
    if (v) s->token_values = v;
    vd_triage_token_contribution *t = realloc(s->tokens, cap * sizeof *t);
    if (t) s->tokens = t;
    size_t *o = realloc(s->token_text, cap * sizeof *o);
    if (o) s->token_text = o;
    if (!v || !t || !o) return false;
    s->token_cap = cap;
  }
  if (features + 1 > s->features_cap) {
    size_t cap = 2 * (features + 1);
    vd_triage_feature_contribution *f = realloc(s->features, cap * sizeof *f);
    if (f) s->features = f;
    size_t *o = realloc(s->feature_text, cap * sizeof *o);
    if (o) s->feature_text = o;
    if (!f || !o) return false;
    s->features_cap = cap;
  }
  return true;
}

static int by_abs_value(const void *a, const void *b) {
  const vd_triage_feature_contribution *x = a, *y = b;
  double ax = fabs(x->value), ay = fabs(y->value);
  if (ax != ay) return ax > ay ? -1 : 1;
  return x->bucket < y->bucket ? -1 : (x->bucket > y->bucket);
}

static bool contributions(const vd_triage_model *m, vd_triage_scratch *s, int cls,
                          vd_triage_result *r, vd_error *err) {
  const vd_text_features *tf = s->tf;
  size_t ntok = vd_text_features_token_count(tf), n = vd_text_features_count(tf);
  if (!reserve(s, ntok, n)) return vd_error_set(err, "out of memory");
  vd_buf_reset(&s->text);
  for (size_t t = 0; t < ntok; t++) s->token_values[t] = 0;
  const uint32_t *idx = vd_text_features_indices(tf);
  const float *val = vd_text_features_values(tf);
  size_t nf = 0;
  char piece[256];
  for (size_t i = 0; i < n; i++) {
    int32_t col = m->column_of[idx[i]];
    if (col < 0) continue;
    double value = (double)val[i] * (double)m->weights[(size_t)col * m->k + (size_t)cls];
    if (value == 0) continue;
    size_t origins = vd_text_features_origin_count(tf, i);
    s->feature_text[nf] = s->text.len;
    size_t text_start = s->text.len;
    for (size_t o = 0; o < origins; o++) {
      vd_text_origin org = vd_text_features_origin(tf, i, o);
      double share = value / (double)origins / (double)org.token_count;
      for (size_t t = 0; t < org.token_count; t++) s->token_values[org.first_token + t] += share;
      vd_text_origin_format(tf, &org, piece, sizeof piece);
      /* The same n-gram twice in a request is listed once. */
      bool seen = false;
      const char *from = s->text.data ? s->text.data + text_start : NULL;
      for (const char *p = from; p && !seen && p < s->text.data + s->text.len;) {
        const char *bar = strstr(p, " | ");
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        seen = l == strlen(piece) && memcmp(p, piece, l) == 0;
        p = bar ? bar + 3 : p + l;
      }
      if (seen) continue;
      if (s->text.len > text_start) vd_buf_puts(&s->text, " | ");
      vd_buf_puts(&s->text, piece);
    }
    vd_buf_append(&s->text, "", 1); /* keep the NUL inside: each string ends in the buffer */
    s->features[nf].bucket = idx[i];
    s->features[nf].value = value;
    nf++;
  }
  for (size_t t = 0; t < ntok; t++) {
    vd_text_token tok = vd_text_features_token(tf, t);
    s->token_text[t] = s->text.len;
    vd_buf_append(&s->text, tok.text, tok.len);
    vd_buf_append(&s->text, "", 1);
    s->tokens[t] = (vd_triage_token_contribution){NULL, tok.start, tok.end, s->token_values[t]};
  }
  if (s->text.oom) return vd_error_set(err, "out of memory");
  for (size_t i = 0; i < nf; i++) s->features[i].ngrams = s->text.data + s->feature_text[i];
  for (size_t t = 0; t < ntok; t++) s->tokens[t].token = s->text.data + s->token_text[t];
  qsort(s->features, nf, sizeof *s->features, by_abs_value);
  r->bias = m->bias[cls];
  r->token_count = ntok;
  r->tokens = s->tokens;
  r->feature_count = nf;
  r->features = s->features;
  return true;
}

bool vd_triage_score(const vd_triage_model *m, vd_triage_scratch *s, const char *text, size_t len,
                     size_t top_k, bool want_contributions, vd_triage_result *r, vd_error *err) {
  memset(r, 0, sizeof *r);
  if (!compute_margins(m, s, text, len, err)) return false;
  const size_t k = m->k;
  /* The same softmax (vd_calibration.h) as training used to choose the threshold, so a request
   * exactly at the threshold is treated the same way here and there. */
  for (size_t c = 0; c < k; c++) s->dmargins[c] = s->margins[c];
  vd_softmax(s->dmargins, k, m->temperature, s->probs);
  for (size_t c = 0; c < k; c++)
    if (!finite_or_fail(m, "probability", c, s->probs[c], err)) return false;
  if (top_k < 1) top_k = 1;
  if (top_k > VD_TRIAGE_TOP_MAX) top_k = VD_TRIAGE_TOP_MAX;
  if (top_k > k) top_k = k;
  int chosen[VD_TRIAGE_TOP_MAX] = {0};
  for (size_t t = 0; t < top_k; t++) {
    int best = -1;
    for (size_t c = 0; c < k; c++) {
      bool taken = false;
      for (size_t u = 0; u < t; u++) taken |= chosen[u] == (int)c;
      if (!taken && (best < 0 || s->probs[c] > s->probs[best])) best = (int)c;
    }
    chosen[t] = best;
    r->top[t] = (vd_triage_intent){m->classes[best], s->probs[best], s->margins[best]};
  }
  r->top_count = top_k;
  r->confidence = r->top[0].probability;
  r->out_of_scope = strcmp(r->top[0].intent, m->oos_class) == 0;
  r->low_confidence = r->confidence < m->threshold;
  r->escalate = r->out_of_scope || r->low_confidence;
  if (want_contributions) return contributions(m, s, chosen[0], r, err);
  return true;
}

json_t *vd_triage_result_to_json(const vd_triage_model *m, const vd_triage_result *r,
                                 size_t max_features) {
  (void)m;
  json_t *top = json_array();
  for (size_t t = 0; t < r->top_count; t++)
    json_array_append_new(top, json_pack("{s:s, s:f}", "intent", r->top[t].intent, "probability",
                                         r->top[t].probability));
  const char *reason = r->out_of_scope     ? "out_of_scope"
                       : r->low_confidence ? "low_confidence"
                                           : NULL;
  json_t *j = json_pack("{s:s, s:f, s:o, s:b, s:o, s:f}", "intent", r->top[0].intent, "confidence",
                        r->confidence, "top", top, "escalate", r->escalate, "reason",
                        reason ? json_string(reason) : json_null(), "margin", r->top[0].margin);
  if (r->tokens) {
    json_t *tokens = json_array(), *features = json_array();
    for (size_t t = 0; t < r->token_count; t++)
      json_array_append_new(
          tokens, json_pack("{s:s, s:I, s:I, s:f}", "token", r->tokens[t].token, "start",
                            (json_int_t)r->tokens[t].start, "end", (json_int_t)r->tokens[t].end,
                            "contribution", r->tokens[t].value));
    for (size_t i = 0; i < r->feature_count && i < max_features; i++)
      json_array_append_new(features, json_pack("{s:s, s:f}", "ngrams", r->features[i].ngrams,
                                                "contribution", r->features[i].value));
    json_object_set_new(j, "bias", json_real(r->bias));
    json_object_set_new(j, "tokens", tokens);
    json_object_set_new(j, "features", features);
  }
  return j;
}
