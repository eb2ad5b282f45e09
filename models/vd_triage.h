/* vd_triage: the request-triage text model — training (`verdict train triage`), the bundle, and
 * native scoring of a text into calibrated intents with token contributions.
 *
 * Bundle (a folder, same conventions as the promotions bundles):
 *   model.ubj      XGBoost's model (multi:softprob over the classes, gblinear) in its binary
 *                  JSON form (UBJSON, common/vd_ubjson.h), or model.json in its JSON form
 *   manifest.json  {"name", "version" (vd_bundle.h: SHA-256 over the manifest and the model
 *                  file), "model_file" ("model.ubj" or
 *                  "model.json"; absent = "model.json"), "task": "multiclass", "kind":
 *                  "text", "featuriser" (vd_text_config_to_json), "columns" (the hash buckets the
 *                  model reads, column j = bucket columns[j]), "classes" (class j = label),
 *                  "out_of_scope_class", "calibration" {"method": "temperature", "temperature"},
 *                  "escalation" {"threshold", "target_rate"}, "metrics" (validation: accuracy,
 *                  OOS recall, ECE before/after, coverage curve), "out_of_fold" (the out-of-fold
 *                  predictions of the training split the temperature and threshold were fitted
 *                  on: rule, folds, metrics, per part), "training" (data hashes, parameters)}
 *
 * Scoring (no XGBoost call): the featuriser's sparse vector, mapped bucket → column, then for
 * each class margin = base_score + bias[class] + Σ weight[column][class] × value — exactly
 * XGBoost's gblinear prediction. Probabilities are softmax(margin / temperature). A request
 * escalates (handled by the LLM layer, not the hot path) when its top intent is the
 * out-of-scope class or its calibrated confidence is below the manifest's threshold.
 *
 * Contributions (for the trace): for the predicted class, each feature contributes weight ×
 * value; a feature's share goes in equal parts to the n-grams of the request that hashed to it,
 * and an n-gram's share in equal parts to its tokens. Token contributions plus `bias` sum to the
 * class margin (up to float rounding).
 *
 * Ownership and threads: vd_triage_load returns an immutable model with one reference; share it
 * between threads freely, vd_triage_retain adds a reference and vd_triage_free drops one (the
 * last frees it). Scoring needs a per-thread vd_triage_scratch (vd_triage_scratch_new, reused
 * for any number of requests, freed with vd_triage_scratch_free); a result's strings and arrays
 * are borrowed from the model or the scratch and valid until the next score on that scratch.
 */
#ifndef VD_TRIAGE_H
#define VD_TRIAGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "vd_error.h"
#include "vd_text_features.h"

enum { VD_TRIAGE_TOP_MAX = 10 };

typedef struct vd_triage_model vd_triage_model;
typedef struct vd_triage_scratch vd_triage_scratch;

/* Loads bundle_dir/manifest.json and the model file it names; checks that the version is the
 * bundle's (vd_bundle.h: manifest and model file) and that model and manifest agree (classes,
 * columns, booster). Errors name the file and the manifest field. */
vd_triage_model *vd_triage_load(const char *bundle_dir, vd_error *err);
/* Loads DATA_DIR/models/<version>/ (the content-addressed store, for replay and stored
 * deployments); accepts the legacy version scheme there (vd_bundle.h), refuses a stored bundle
 * whose content does not hash to `version`. */
vd_triage_model *vd_triage_store_load(const char *data_dir, const char *version, vd_error *err);
vd_triage_model *vd_triage_retain(vd_triage_model *model);
void vd_triage_free(vd_triage_model *model);

const char *vd_triage_name(const vd_triage_model *model);
const char *vd_triage_version(const vd_triage_model *model);
const json_t *vd_triage_manifest(const vd_triage_model *model); /* borrowed */
const vd_text_config *vd_triage_featuriser(const vd_triage_model *model);
size_t vd_triage_class_count(const vd_triage_model *model);
const char *vd_triage_class(const vd_triage_model *model, size_t index);
const char *vd_triage_out_of_scope_class(const vd_triage_model *model);
double vd_triage_temperature(const vd_triage_model *model);
double vd_triage_threshold(const vd_triage_model *model);

vd_triage_scratch *vd_triage_scratch_new(const vd_triage_model *model);
void vd_triage_scratch_free(vd_triage_scratch *scratch);

typedef struct vd_triage_intent {
  const char *intent; /* borrowed from the model */
  double probability; /* calibrated */
  double margin;      /* raw XGBoost margin */
} vd_triage_intent;

typedef struct vd_triage_token_contribution {
  const char *token; /* normalised token ("<num>" for a number), NUL-terminated, borrowed */
  size_t start, end; /* its bytes in the request text */
  double value;      /* share of the predicted class's margin */
} vd_triage_token_contribution;

typedef struct vd_triage_feature_contribution {
  const char *ngrams; /* the request's n-grams behind the feature, "lost luggage | <lugg" */
  unsigned bucket;    /* hash bucket */
  double value;       /* weight × value for the predicted class */
} vd_triage_feature_contribution;

typedef struct vd_triage_result {
  size_t top_count;
  vd_triage_intent top[VD_TRIAGE_TOP_MAX]; /* top[0] is the predicted intent */
  double confidence;                       /* top[0].probability */
  bool out_of_scope;                       /* top[0] is the out-of-scope class */
  bool low_confidence;                     /* confidence < threshold */
  bool escalate;                           /* out_of_scope || low_confidence */
  /* With want_contributions: */
  double bias; /* base_score + the class bias: contributions + bias = top[0].margin */
  size_t token_count;
  const vd_triage_token_contribution *tokens; /* in text order */
  size_t feature_count;
  const vd_triage_feature_contribution *features; /* by decreasing |value| */
} vd_triage_result;

/* Scores text[0 .. len): the top_k (1 .. VD_TRIAGE_TOP_MAX) intents by probability and, with
 * want_contributions, the token and feature contributions to the predicted intent's margin.
 * False only when out of memory. */
bool vd_triage_score(const vd_triage_model *model, vd_triage_scratch *scratch, const char *text,
                     size_t len, size_t top_k, bool want_contributions, vd_triage_result *result,
                     vd_error *err);
/* Raw margins of every class (class_count() values) for the featurised text, the same numbers
 * XGBoost's predict with output_margin gives. */
bool vd_triage_margins(const vd_triage_model *model, vd_triage_scratch *scratch, const char *text,
                       size_t len, double *margins, vd_error *err);

/* The result for the trace: {"intent", "confidence", "top": [{intent, probability}],
 * "escalate", "reason" ("out_of_scope"|"low_confidence"|null), "margin", "bias",
 * "tokens": [{token, start, end, contribution}], "features": [{ngrams, contribution}] (at most
 * max_features, largest first)}. New reference. */
json_t *vd_triage_result_to_json(const vd_triage_model *model, const vd_triage_result *result,
                                 size_t max_features);

/* ---- training ---- */

typedef struct vd_triage_train_options {
  const char *train_path; /* JSON Lines {"text", "intent"} */
  const char *val_path;   /* the same; evaluated once with the final model, never fitted on */
  const char *out_dir;    /* bundle folder (created; existing model files replaced) */
  const char *name;       /* manifest name, default "triage" */
  const char *booster;    /* "gblinear" (default) or "gbtree" */
  const char *updater;    /* gblinear: "shotgun" (default; with nthread 1 the same cyclic
                             coordinate descent as "coord_descent", ~5x faster) or "coord_descent" */
  vd_text_config featuriser;
  unsigned min_df;           /* keep buckets present in >= min_df training texts */
  unsigned max_columns;      /* then the max_columns best (see selection); 0 = all */
  const char *selection;     /* "frequency" (most training texts first, default) or "chi2" */
  unsigned rounds;           /* boosting rounds */
  double eta, lambda, alpha; /* gblinear: learning rate, L2, L1 (per row-normalised data) */
  /* gblinear regularisation path: round r trains with max(lambda, lambda_start × lambda_decay^r)
   * (0 = lambda throughout). Coordinate descent on the softmax diverges from a cold start with
   * a small lambda; starting strong and relaxing it is stable and ends at the small lambda. */
  double lambda_start, lambda_decay;
  unsigned max_depth;      /* gbtree */
  double min_child_weight; /* gbtree */
  double oos_weight;       /* sample weight of out-of-scope training rows */
  /* Out-of-fold predictions of training rows fit the temperature and choose the threshold:
   * folds >= 2: cross-fitting — each intent's rows in file order cut into `folds` consecutive
   * parts, each part predicted by a model trained on the others (default 5); folds 1: a single
   * holdout, the last `holdout` share of each intent's rows. */
  unsigned folds;
  double holdout;
  /* "pooled" (default): the highest threshold escalating at most the aimed rate (see
   * guard_confidence) of all out-of-fold in-scope rows; "every_fold": of EVERY part's. */
  const char *threshold_rule;
  const char *model_format; /* "ubj" (default: model.ubj) or "json" (model.json) */
  bool refit;               /* then retrain on every training row (default true; false needs
                               folds 1 and ships the holdout's model) */
  double target_escalation; /* share of in-scope requests the threshold may escalate */
  /* Guard band: the threshold is chosen for the largest out-of-fold rate r with
   * r + z·sqrt(r(1-r)(1/guard_window + 1/n)) <= target_escalation (z: normal quantile of
   * guard_confidence, n: out-of-fold in-scope rows), so that a window of guard_window new
   * in-scope requests stays within the target with probability guard_confidence (default 0.95,
   * 3000; 0 = aim at the target itself). */
  double guard_confidence;
  unsigned guard_window;
  unsigned nthread;         /* XGBoost threads; 1 keeps training deterministic */
  const char *out_of_scope; /* the out-of-scope label, default "oos" */
  size_t max_train_rows;    /* 0 = all; else every ceil(rows / N)-th row (tests) */
} vd_triage_train_options;

void vd_triage_train_defaults(vd_triage_train_options *options);
/* Predicts the training rows out of fold (see folds), fits the temperature and chooses the
 * threshold on those predictions, trains on the whole training split (refit), evaluates once on
 * the validation split and writes the bundle. Progress and the metrics go to log (may be NULL).
 * Deterministic: the same data and options give the same bytes. */
bool vd_triage_train(const vd_triage_train_options *options, FILE *log, vd_error *err);

/* `verdict train triage --data train.jsonl --val val.jsonl --out DIR [options]`; argv[0] is
 * "triage". */
int vd_verb_train_triage(int argc, char **argv, FILE *out, FILE *err);

#endif
