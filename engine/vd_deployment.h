/* vd_deployment: a deployment folder loaded into one immutable, reference-counted version, and the
 * registry that swaps versions atomically on reload.
 *
 * A deployment folder holds deployment.yaml and the files it names (paths relative to it):
 *
 *   name: promotions              # unique within a server
 *   kind: promotions              # promotions | triage: which endpoint serves it
 *   schema: schema.yaml           # optional: must be the schema the rule file names
 *   rules: rules.yaml             # loaded, type-checked and its own tests run
 *   model: model                  # optional model bundle folder
 *   max_results: 2                # results per request at most (a request may ask for fewer)
 *   candidates:                   # what a request without `candidates` is scored against
 *     - id: mens-email
 *       treatment: Mens E-Mail    # the model's treatment value for this candidate
 *       # further keys are candidate.* fields and must be declared in the schema
 *   warmup: { subject: {...} }    # optional request scored once after loading (readiness)
 *   model_budget_us: 2000         # optional: the model's time budget per decision
 *
 * Loading refuses the version on any mistake in deployment.yaml, the schema or the rules (every
 * error goes to diags). A model that is missing or fails to load is handled as DESIGN.md §1 says:
 * on a first load the deployment serves rules-only (vd_deployment_model_error says why, and every
 * decision carries that fallback); on a reload it is an error, so the previous version — with its
 * model — keeps serving.
 *
 * Ownership: vd_deployment_load returns a version with one reference; vd_deployment_retain /
 * vd_deployment_release count references (thread-safe) and the last release frees it. Everything
 * a version exposes is borrowed from it and immutable. The registry owns one reference to each
 * current version; vd_registry_acquire hands out another one that the caller releases when its
 * request is done, so a request finishes on the version it started with even across a swap.
 */
#ifndef VD_DEPLOYMENT_H
#define VD_DEPLOYMENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vd_error.h"
#include "vd_model.h"
#include "vd_ruleset.h"
#include "vd_triage.h"

typedef struct vd_deployment vd_deployment;

typedef struct vd_candidate_def {
  const char *id;
  const char *treatment; /* NULL when the deployment has no model treatment for it */
  const json_t *fields;  /* the candidate object a request gets ({"id": ..., other fields}) */
} vd_candidate_def;

typedef struct vd_deployment_load_options {
  /* The data folder: rule files and model bundles are copied into its content-addressed store
   * (DATA_DIR/rulesets/<version>/ruleset.json, DATA_DIR/models/<version>/) for replay. NULL: no
   * store. */
  const char *data_dir;
  /* True for a reload: a model that fails to load is then an error instead of a fallback. */
  bool require_model;
  /* What-if evaluation (verdict shadow): a rule file and/or model bundle used instead of the ones
   * deployment.yaml names (paths as given; NULL = deployment.yaml's). With rules_path, the
   * deployment's `schema:` is not compared (the candidate rule file names its own). */
  const char *rules_path;
  const char *model_dir;
} vd_deployment_load_options;

vd_deployment *vd_deployment_load(const char *dir, const vd_deployment_load_options *options,
                                  vd_diags *diags);
/* Rebuilds the deployment version `version` exactly as it served, from the data folder's
 * content-addressed store (DATA_DIR/deployments/<version>/deployment.json, which names the
 * stored ruleset and model versions), for replay. NULL + diags when a piece is missing or its
 * content no longer hashes to its version. */
vd_deployment *vd_deployment_load_stored(const char *data_dir, const char *version,
                                         vd_diags *diags);
vd_deployment *vd_deployment_retain(vd_deployment *d);
void vd_deployment_release(vd_deployment *d);

const char *vd_deployment_name(const vd_deployment *d);
const char *vd_deployment_kind(const vd_deployment *d);
/* Whether kind names a decision kind verdict serves: "promotions" or "triage". */
bool vd_deployment_kind_known(const char *kind);
/* SHA-256 of the canonical form of everything that decides: settings, candidates (with
 * treatments), ruleset version and model version. In every trace as deployment.version. */
const char *vd_deployment_version(const vd_deployment *d);
const char *vd_deployment_dir(const vd_deployment *d);
const vd_ruleset *vd_deployment_ruleset(const vd_deployment *d);
const vd_schema *vd_deployment_schema(const vd_deployment *d);
/* The model, or NULL when serving rules-only. */
const vd_model *vd_deployment_model(const vd_deployment *d);
/* kind triage: the text model (models/vd_triage.h), or NULL when serving rules-only (then
 * vd_deployment_model_error says why). vd_deployment_model is always NULL for triage. */
const vd_triage_model *vd_deployment_triage(const vd_deployment *d);
/* Why there is no model ("model bundle model/: manifest.json: ..."), or NULL. */
const char *vd_deployment_model_error(const vd_deployment *d);
size_t vd_deployment_max_results(const vd_deployment *d);
/* The model's time budget per decision in µs (0 = none): candidates still unscored when it is
 * spent fall back to rules only (reason "model_budget_exceeded"); the first open candidate is
 * always scored. */
unsigned vd_deployment_model_budget_us(const vd_deployment *d);
size_t vd_deployment_candidate_count(const vd_deployment *d);
const vd_candidate_def *vd_deployment_candidate(const vd_deployment *d, size_t index);
const vd_candidate_def *vd_deployment_find_candidate(const vd_deployment *d, const char *id);
/* The warm-up request (borrowed), or NULL. */
const json_t *vd_deployment_warmup(const vd_deployment *d);
/* Wall-clock time (Unix µs) the version was loaded. */
int64_t vd_deployment_loaded_us(const vd_deployment *d);
/* {"name", "kind", "dir", "loaded_at", "ruleset": {"name", "version"}, "schema": {...},
 *  "model": {"name", "version"} | null, "model_error": ..., "candidates": [ids]} (new ref). */
json_t *vd_deployment_describe(const vd_deployment *d);

/* ---- The registry of current versions ------------------------------------------------------ */

typedef struct vd_registry vd_registry;

/* An empty registry; the caller frees it with vd_registry_free (which releases its versions). */
vd_registry *vd_registry_new(void);
void vd_registry_free(vd_registry *r);
/* Installs a version as the current one of its name (replacing any, which is released once the
 * requests using it are done). Takes over the caller's reference. */
void vd_registry_install(vd_registry *r, vd_deployment *d);
/* The current version serving `kind`, with a reference for the caller, or NULL. */
vd_deployment *vd_registry_acquire_kind(vd_registry *r, const char *kind);
/* Number of deployments installed. */
size_t vd_registry_count(vd_registry *r);
/* The current version at index (in install order), with a reference, or NULL. */
vd_deployment *vd_registry_acquire_at(vd_registry *r, size_t index);

#endif
