/* vd_model: a loaded model bundle, scoring one request for one candidate (treatment), exact
 * TreeSHAP contributions, reason codes, and the content-addressed store of bundles.
 *
 * A bundle is a folder holding model.json (XGBoost's JSON model) and manifest.json (format
 * VD_MODEL_FORMAT: name, version = SHA-256 over the manifest and model.json (vd_bundle.h), task,
 * features with their request source fields and encodings, treatment arms and control, training
 * data hash, parameters, validation metrics, reason texts). See README "Models".
 *
 * Scoring runs on a native evaluator over the bundle's trees (vd_forest.h): predictions are
 * bit-identical to XGBoost's, contributions equal XGBoost's pred_contribs; XGBoost itself is not
 * called at serving time.
 *
 * Ownership and threads: vd_model_load returns a model with one reference; vd_model_retain adds
 * one, vd_model_free drops one and frees at zero (atomic counting, so a server can swap models
 * while requests still hold the old one). A loaded model is immutable: any number of threads may
 * score with it at once, each with its own vd_model_result. Strings and JSON returned by the
 * accessors are borrowed from the model. */
#ifndef VD_MODEL_H
#define VD_MODEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "vd_error.h"
#include "vd_hash.h"
#include "vd_json_write.h"
#include "vd_schema.h"

#define VD_MODEL_FORMAT "verdict-model-bundle/1"

typedef struct vd_model vd_model;

/* Loads and checks a bundle folder. Refuses (NULL, err naming the file and the problem) a
 * missing folder or file, invalid JSON, a manifest of another format or with missing/ill-typed
 * fields, a version that is not the bundle's (vd_bundle.h: an edited manifest or model.json;
 * the error says to run `verdict models rehash` after a deliberate edit), a model the native
 * evaluator cannot run, columns that do not match the features, and — when schema is non-NULL — a
 * feature whose source field the schema lacks or types incompatibly (numeric ← int/double, bool ←
 * bool, enum ← enum/string; an enum value the schema allows but the model refuses with unknown:
 * error).
 */
vd_model *vd_model_load(const char *bundle_dir, const vd_schema *schema, vd_error *err);
vd_model *vd_model_retain(vd_model *model);
void vd_model_free(vd_model *model);

const char *vd_model_name(const vd_model *model);
const char *vd_model_version(const vd_model *model); /* vd_bundle_version of the bundle */
const char *vd_model_task(const vd_model *model);    /* "uplift" */
const json_t *vd_model_manifest(const vd_model *model);
const char *vd_model_control(const vd_model *model); /* the control treatment value */
size_t vd_model_arm_count(const vd_model *model);
const char *vd_model_arm(const vd_model *model, size_t arm);
/* Input features (as in the manifest) and encoded model columns. */
size_t vd_model_feature_count(const vd_model *model);
const char *vd_model_feature_name(const vd_model *model, size_t feature);
const char *vd_model_feature_source(const vd_model *model, size_t feature);
size_t vd_model_column_count(const vd_model *model);
const char *vd_model_column_name(const vd_model *model, size_t column);

/* One candidate's scores. Allocate per thread with vd_model_result_init (sized for the model),
 * reuse across calls with that model, release with vd_model_result_free. */
typedef struct vd_model_result {
  double p_treatment;    /* P(response | the candidate's treatment) */
  double p_control;      /* P(response | control) */
  double uplift;         /* p_treatment − p_control */
  double margin;         /* raw margin (log-odds) of the treatment prediction */
  double margin_control; /* raw margin of the control prediction */
  size_t column_count;
  float *features; /* the encoded row for the treatment (NaN = missing) */
  bool has_contributions;
  double *contributions; /* column_count + 1: TreeSHAP per column, then the bias; sum = margin */
  size_t feature_count;  /* input features + 1 (the last is the treatment) */
  double *feature_contributions; /* columns summed per input feature, then the treatment */
  /* Private to vd_model_score: the control row it last scored and that row's margin. Every
   * candidate of a request has the same control row, so the candidates after the first (other
   * arms) skip one of their two walks of the forest. */
  float *control_row;
  float control_margin;
  const vd_model *control_model; /* NULL: none remembered */
} vd_model_result;

bool vd_model_result_init(const vd_model *model, vd_model_result *result, vd_error *err);
void vd_model_result_free(vd_model_result *result);

/* Scores a normalised request for one treatment value (an arm, or the control). With
 * want_contributions, fills contributions for the treatment prediction. Errors name the request
 * field ("subject.zip_code: ...") or the treatment. */
bool vd_model_score(const vd_model *model, const json_t *request, const char *treatment,
                    bool want_contributions, vd_model_result *result, vd_error *err);

/* The reason text of an input feature (index feature_count = the treatment) for a direction:
 * the manifest's text with its holes filled from the request — "{value}" is the value as text,
 * "{value?YES:NO}" YES or NO for a boolean (the value as text for any other) — or a generated
 * one. Every text says the value seen: a manifest text without a hole gets " (FEATURE: VALUE)"
 * appended (the treatment has no value). Writes into buf. */
void vd_model_reason_text(const vd_model *model, size_t feature, bool raised, const json_t *request,
                          char *buf, size_t size);
/* The `max` strongest non-zero feature contributions as JSON, strongest first:
 * [{"feature", "source", "value", "contribution", "direction": "up"/"down", "text"}...];
 * only_lowering keeps the ones that lowered the expected response (the reasons against).
 * feature_contributions is a result's (vd_model_feature_count() + 1 values, the last the
 * treatment). New reference. */
json_t *vd_model_reasons(const vd_model *model, const double *feature_contributions,
                         const json_t *request, size_t max, bool only_lowering);
/* Which features those reasons are, without the JSON: out[0..returned) in the same order
 * (out holds at least min(max, vd_model_feature_count() + 1) entries). */
typedef struct vd_model_reason {
  size_t feature; /* an input feature, or vd_model_feature_count(): the treatment */
  bool raised;    /* the contribution raised the expected response */
  double contribution;
} vd_model_reason;
size_t vd_model_reason_pick(const vd_model *model, const double *feature_contributions, size_t max,
                            bool only_lowering, vd_model_reason *out);
/* For the trace: {"features": {column: value|null}, "contributions": {column: phi},
 * "bias", "margin", "p_treatment", "p_control", "uplift", "margin_control"}. New reference. */
json_t *vd_model_result_to_json(const vd_model *model, const vd_model_result *result);
/* The same document written through an emitter (text on the decision's hot path, no tree). */
void vd_model_result_write(const vd_model *model, const vd_model_result *result, vd_json_emit *e);

/* Content-addressed store (common/vd_store.h, kind "models"): copies a bundle (after checking it
 * loads) into DATA_DIR/models/<version>/ atomically; storing the same version again keeps the
 * stored one. version gets the bundle's version. */
bool vd_model_store_put(const char *data_dir, const char *bundle_dir,
                        char version[VD_SHA256_HEX_SIZE], vd_error *err);
/* Loads DATA_DIR/models/<version>/ (for replay); refuses a stored bundle whose content does not
 * hash to `version`. Accepts there a version of the legacy scheme (vd_bundle.h), which the
 * decision logs written before name. */
vd_model *vd_model_store_load(const char *data_dir, const char *version, const vd_schema *schema,
                              vd_error *err);

#endif
