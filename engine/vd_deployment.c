#include "vd_deployment.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vd_buf.h"
#include "vd_hash.h"
#include "vd_llm.h"
#include "vd_store.h"
#include "vd_suggest.h"
#include "vd_time.h"
#include "vd_yaml.h"

struct vd_deployment {
  atomic_int refs;
  char *name;
  char *kind;
  char *dir;
  vd_ruleset *ruleset;
  vd_model *model;
  vd_triage_model *triage; /* kind triage: the text model (model stays NULL) */
  char *model_error;
  size_t max_results;
  unsigned model_budget_us;
  vd_candidate_def *candidates;
  size_t candidate_count;
  json_t *candidate_doc; /* owns the candidate objects the defs point into */
  json_t *warmup;
  int64_t loaded_us;
  char version[VD_SHA256_HEX_SIZE]; /* SHA-256 of the canonical form (canonical_json) */
};

static void deployment_free(vd_deployment *d) {
  free(d->name);
  free(d->kind);
  free(d->dir);
  vd_ruleset_free(d->ruleset);
  vd_model_free(d->model);
  vd_triage_free(d->triage);
  free(d->model_error);
  free(d->candidates);
  json_decref(d->candidate_doc);
  json_decref(d->warmup);
  free(d);
}

vd_deployment *vd_deployment_retain(vd_deployment *d) {
  if (d) atomic_fetch_add(&d->refs, 1);
  return d;
}

void vd_deployment_release(vd_deployment *d) {
  if (d && atomic_fetch_sub(&d->refs, 1) == 1) deployment_free(d);
}

static char *join_path(const char *dir, const char *name) {
  if (name[0] == '/') return strdup(name);
  size_t n = strlen(dir) + strlen(name) + 2;
  char *out = malloc(n);
  if (out) snprintf(out, n, "%s/%s", dir, name);
  return out;
}

static void add_diag(vd_diags *diags, const vd_error *e) {
  if (diags) vd_diags_add(diags, e);
}

/* Adds a yaml-positioned error to diags; returns false so callers can `return yaml_diag(...)`. */
static bool yaml_diag(vd_diags *diags, const vd_yaml_doc *doc, const json_t *container,
                      const char *key, size_t index, const char *message) {
  vd_error e;
  vd_yaml_error(doc, container, key, index, &e, "%s", message);
  add_diag(diags, &e);
  return false;
}

static const char *string_field(const vd_yaml_doc *doc, const json_t *root, const char *key,
                                bool required, vd_diags *diags) {
  json_t *v = json_object_get(root, key);
  if (!v || json_is_null(v)) {
    if (required) {
      char message[128];
      snprintf(message, sizeof message, "deployment.yaml needs '%s'", key);
      yaml_diag(diags, doc, NULL, NULL, 0, message);
    }
    return NULL;
  }
  if (!json_is_string(v) || json_string_length(v) == 0) {
    char message[128];
    snprintf(message, sizeof message, "'%s' must be a non-empty string", key);
    yaml_diag(diags, doc, root, key, 0, message);
    return NULL;
  }
  return json_string_value(v);
}

static bool check_keys(const vd_yaml_doc *doc, const json_t *root, vd_diags *diags) {
  static const char *const allowed[] = {
      "name",        "kind",       "schema", "rules",           "model",
      "max_results", "candidates", "warmup", "model_budget_us", NULL};
  bool ok = true;
  const char *key;
  json_t *value;
  json_object_foreach((json_t *)root, key, value) {
    bool known = false;
    for (const char *const *a = allowed; *a; a++) known = known || strcmp(*a, key) == 0;
    if (known) continue;
    vd_error e;
    int line = 0, col = 0;
    vd_yaml_where_key(doc, root, key, &line, &col);
    vd_error_at(&e, vd_yaml_name(doc), line, col,
                "unknown key '%s' in deployment.yaml (expected name, kind, schema, rules, model, "
                "max_results, candidates, warmup, model_budget_us)",
                key);
    add_diag(diags, &e);
    ok = false;
  }
  return ok;
}

/* Candidates: each {id, treatment?, ...candidate fields}; the request-facing object drops
 * `treatment` (an engine setting, not a request field) and keeps the rest. */
static bool load_candidates(vd_deployment *d, const vd_yaml_doc *doc, const json_t *root,
                            vd_diags *diags) {
  json_t *list = json_object_get(root, "candidates");
  if (!json_is_array(list) || json_array_size(list) == 0)
    return yaml_diag(diags, doc, list ? root : NULL, list ? "candidates" : NULL, 0,
                     "deployment.yaml needs 'candidates': a list of {id, treatment, ...}");
  size_t n = json_array_size(list);
  d->candidates = calloc(n, sizeof *d->candidates);
  d->candidate_doc = json_array();
  if (!d->candidates || !d->candidate_doc) return false;
  const vd_schema *schema = vd_ruleset_schema(d->ruleset);
  bool ok = true;
  for (size_t i = 0; i < n; i++) {
    json_t *c = json_array_get(list, i);
    const char *id = json_string_value(json_object_get(c, "id"));
    if (!json_is_object(c) || !id || !*id) {
      ok = yaml_diag(diags, doc, list, NULL, i, "a candidate needs an 'id' (a string)");
      continue;
    }
    json_t *treatment = json_object_get(c, "treatment");
    if (treatment && !json_is_string(treatment)) {
      ok = yaml_diag(diags, doc, c, "treatment", 0, "'treatment' must be a string");
      continue;
    }
    for (size_t j = 0; j < d->candidate_count; j++)
      if (d->candidates[j].id && strcmp(d->candidates[j].id, id) == 0)
        ok = yaml_diag(diags, doc, c, "id", 0, "duplicate candidate id");
    json_t *fields = json_deep_copy(c);
    json_object_del(fields, "treatment");
    const char *key;
    json_t *value;
    json_object_foreach(fields, key, value) {
      if (strcmp(key, "id") == 0) continue;
      char path[256];
      snprintf(path, sizeof path, "candidate.%s", key);
      if (!vd_schema_find(schema, path)) {
        char message[384];
        snprintf(message, sizeof message,
                 "candidate field '%s' is not declared in the schema (declare %s there)", key,
                 path);
        ok = yaml_diag(diags, doc, c, key, 0, message);
      }
    }
    json_array_append_new(d->candidate_doc, fields);
    vd_candidate_def *def = &d->candidates[d->candidate_count++];
    def->id = json_string_value(json_object_get(fields, "id"));
    def->treatment = treatment ? json_string_value(treatment) : NULL;
    def->fields = fields;
  }
  /* `treatment` strings are borrowed from the YAML tree; keep them alive in our own doc. */
  if (ok) {
    json_t *treatments = json_array();
    for (size_t i = 0; i < d->candidate_count; i++) {
      json_t *t =
          d->candidates[i].treatment ? json_string(d->candidates[i].treatment) : json_null();
      json_array_append_new(treatments, t);
      d->candidates[i].treatment = json_string_value(t);
    }
    json_array_append_new(d->candidate_doc, treatments);
  }
  return ok;
}

/* The ruleset's canonical form goes into the content-addressed store
 * (DATA_DIR/rulesets/<version>/ruleset.json) so a past decision can be replayed on it. */
static bool store_ruleset(const char *data_dir, const vd_ruleset *rs, vd_diags *diags) {
  vd_error e = {0};
  const char *text = vd_ruleset_canonical(rs);
  vd_store_txn *t = vd_store_begin(data_dir, "rulesets", vd_ruleset_version(rs), &e);
  bool ok = t != NULL;
  if (ok && !vd_store_add_bytes(t, "ruleset.json", text, strlen(text), &e)) {
    vd_store_abort(t);
    ok = false;
  } else if (ok) {
    ok = vd_store_commit(t, NULL, 0, &e);
  }
  if (!ok) {
    vd_error_prefix(&e, "cannot store ruleset %s", vd_ruleset_version(rs));
    add_diag(diags, &e);
  }
  return ok;
}

/* A triage bundle goes to the same content-addressed store as the promotions bundles
 * (DATA_DIR/models/<version>/), for replay. */
static bool store_triage_model(const char *data_dir, const char *bundle,
                               const vd_triage_model *triage, vd_diags *diags) {
  vd_error e = {0};
  vd_store_txn *t = vd_store_begin(data_dir, "models", vd_triage_version(triage), &e);
  bool ok = t && vd_store_add_tree(t, "", bundle, &e);
  if (t && !ok) vd_store_abort(t);
  if (ok) ok = vd_store_commit(t, NULL, 0, &e);
  if (!ok) add_diag(diags, &e);
  return ok;
}

/* Every candidate's treatment must be one the model knows (an arm or the control): a typo would
 * otherwise fail every decision's model call and serve the candidate on rules alone. */
static bool check_treatments(const vd_deployment *d, const vd_yaml_doc *doc, const json_t *root,
                             vd_diags *diags) {
  if (!d->model) return true;
  bool ok = true;
  const json_t *list = json_object_get(root, "candidates");
  for (size_t i = 0; i < d->candidate_count; i++) {
    const char *t = d->candidates[i].treatment;
    if (!t || strcmp(t, vd_model_control(d->model)) == 0) continue;
    bool known = false;
    vd_buf arms = {0};
    for (size_t a = 0; a < vd_model_arm_count(d->model); a++) {
      known = known || strcmp(t, vd_model_arm(d->model, a)) == 0;
      vd_buf_printf(&arms, "%s'%s'", a ? ", " : "", vd_model_arm(d->model, a));
    }
    if (!known) {
      char message[VD_ERROR_MESSAGE_MAX];
      snprintf(message, sizeof message,
               "candidate %s: treatment '%s' is not one of the model's (%s; control '%s')",
               d->candidates[i].id, t, arms.data ? arms.data : "", vd_model_control(d->model));
      ok = yaml_diag(diags, doc, json_array_get(list, i), "treatment", 0, message);
    }
    vd_buf_free(&arms);
  }
  return ok;
}

/* A triage rule's `escalate` names the LLM task a request is handed to; the task names are fixed,
 * so a typo is refused here rather than fail every such escalation at run time. */
static bool check_escalations(const vd_deployment *d, const char *rules_file, vd_diags *diags) {
  bool ok = true;
  const char *tasks[VD_LLM_TASK_COUNT];
  for (int t = 0; t < VD_LLM_TASK_COUNT; t++) tasks[t] = vd_llm_task_name((vd_llm_task)t);
  for (size_t r = 0; r < vd_ruleset_rule_count(d->ruleset); r++) {
    if (vd_ruleset_rule_action(d->ruleset, r) != VD_ACTION_ESCALATE) continue;
    const char *task = json_string_value(vd_ruleset_rule_argument(d->ruleset, r));
    vd_llm_task parsed;
    if (!task || vd_llm_task_parse(task, &parsed)) continue;
    const char *close = vd_suggest(task, tasks, VD_LLM_TASK_COUNT);
    vd_buf known = {0};
    for (int t = 0; t < VD_LLM_TASK_COUNT; t++)
      vd_buf_printf(&known, "%s%s", t ? ", " : "", tasks[t]);
    vd_error e;
    vd_error_set(&e, "%s: rule %s: escalate '%s' is not an LLM task (%s)%s%s%s", rules_file,
                 vd_ruleset_rule_id(d->ruleset, r), task, known.data ? known.data : "",
                 close ? "; did you mean " : "", close ? close : "", close ? "?" : "");
    vd_buf_free(&known);
    add_diag(diags, &e);
    ok = false;
  }
  return ok;
}

static bool load_model(vd_deployment *d, const vd_yaml_doc *doc, const json_t *root,
                       const vd_deployment_load_options *options, vd_diags *diags) {
  const char *model = options && options->model_dir
                          ? options->model_dir
                          : string_field(doc, root, "model", false, diags);
  if (!model) {
    if (json_object_get(root, "model") && !json_is_null(json_object_get(root, "model")))
      return false;
    d->model_error = strdup("the deployment names no model");
    return true;
  }
  char *bundle = options && options->model_dir ? strdup(model) : join_path(d->dir, model);
  vd_error e;
  bool triage = strcmp(d->kind, "triage") == 0;
  if (triage)
    d->triage = bundle ? vd_triage_load(bundle, &e) : NULL;
  else
    d->model = bundle ? vd_model_load(bundle, vd_ruleset_schema(d->ruleset), &e) : NULL;
  if (!d->model && !d->triage && bundle) {
    char text[VD_ERROR_MESSAGE_MAX + 64];
    vd_error_format(&e, text, sizeof text);
    if (options && options->require_model) {
      vd_error where;
      vd_yaml_error(doc, root, "model", 0, &where, "model bundle %s refused: %s", bundle, text);
      add_diag(diags, &where);
      free(bundle);
      return false;
    }
    size_t n = strlen(text) + strlen(bundle) + 32;
    d->model_error = malloc(n);
    if (d->model_error) snprintf(d->model_error, n, "model bundle %s: %s", bundle, text);
  }
  char version[VD_SHA256_HEX_SIZE];
  if (d->model && options && options->data_dir &&
      !vd_model_store_put(options->data_dir, bundle, version, &e)) {
    add_diag(diags, &e); /* a version that cannot be stored for replay is not served */
    vd_model_free(d->model);
    d->model = NULL;
    free(bundle);
    return false;
  }
  if (d->triage && options && options->data_dir &&
      !store_triage_model(options->data_dir, bundle, d->triage, diags)) {
    vd_triage_free(d->triage);
    d->triage = NULL;
    free(bundle);
    return false;
  }
  free(bundle);
  return d->model != NULL || d->triage != NULL || d->model_error != NULL;
}

/* The canonical form of what decides (everything but the folder and the warm-up): settings,
 * candidates with their treatments, and the ruleset and model versions. Its SHA-256 is the
 * deployment's version; the text is stored under DATA_DIR/deployments/<version>/deployment.json
 * (JSON, which the YAML loader reads) so vd_deployment_load_stored can rebuild it for replay. */
static char *canonical_text(const vd_deployment *d) {
  json_t *candidates = json_array();
  for (size_t i = 0; i < d->candidate_count; i++) {
    json_t *c = json_deep_copy(d->candidates[i].fields);
    if (d->candidates[i].treatment)
      json_object_set_new(c, "treatment", json_string(d->candidates[i].treatment));
    json_array_append_new(candidates, c);
  }
  json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:o, s:s, s:o, s:o}", "name", d->name, "kind",
                        d->kind, "max_results", (json_int_t)d->max_results, "model_budget_us",
                        (json_int_t)d->model_budget_us, "candidates", candidates, "ruleset",
                        vd_ruleset_version(d->ruleset), "model",
                        d->model    ? json_string(vd_model_version(d->model))
                        : d->triage ? json_string(vd_triage_version(d->triage))
                                    : json_null(),
                        "model_error", d->model_error ? json_string(d->model_error) : json_null());
  char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(17)) : NULL;
  json_decref(o);
  return text;
}

/* Computes the version and, with a data folder, stores the canonical form. */
static bool seal(vd_deployment *d, const char *data_dir, vd_diags *diags) {
  char *text = canonical_text(d);
  if (!text) return false;
  vd_sha256_hex(text, strlen(text), d->version);
  vd_error e = {0};
  bool ok = true;
  if (data_dir) {
    vd_store_txn *t = vd_store_begin(data_dir, "deployments", d->version, &e);
    ok = t && vd_store_add_bytes(t, "deployment.json", text, strlen(text), &e);
    if (t && !ok) vd_store_abort(t);
    if (ok) ok = vd_store_commit(t, NULL, 0, &e);
    if (!ok) {
      vd_error_prefix(&e, "cannot store deployment %s", d->version);
      add_diag(diags, &e);
    }
  }
  free(text);
  return ok;
}

static bool load_body(vd_deployment *d, const vd_yaml_doc *doc, const json_t *root,
                      const vd_deployment_load_options *options, vd_diags *diags) {
  if (!json_is_object(root))
    return yaml_diag(diags, doc, NULL, NULL, 0, "deployment.yaml must be a mapping");
  bool ok = check_keys(doc, root, diags);
  const char *name = string_field(doc, root, "name", true, diags);
  const char *kind = string_field(doc, root, "kind", true, diags);
  const char *rules = string_field(doc, root, "rules", true, diags);
  const char *schema = string_field(doc, root, "schema", false, diags);
  if (!name || !kind || !rules) return false;
  if (!vd_deployment_kind_known(kind))
    ok = yaml_diag(diags, doc, root, "kind", 0, "kind must be 'promotions' or 'triage'");
  d->name = strdup(name);
  d->kind = strdup(kind);
  json_t *max = json_object_get(root, "max_results");
  d->max_results = 0;
  if (max && !(json_is_integer(max) && json_integer_value(max) >= 1))
    ok = yaml_diag(diags, doc, root, "max_results", 0, "max_results must be an integer >= 1");
  else if (max)
    d->max_results = (size_t)json_integer_value(max);
  json_t *budget = json_object_get(root, "model_budget_us");
  if (budget && !(json_is_integer(budget) && json_integer_value(budget) >= 1 &&
                  json_integer_value(budget) <= 10000000))
    ok = yaml_diag(diags, doc, root, "model_budget_us", 0,
                   "model_budget_us must be an integer in [1, 10000000] (microseconds)");
  else if (budget)
    d->model_budget_us = (unsigned)json_integer_value(budget);
  json_t *warmup = json_object_get(root, "warmup");
  if (warmup && !json_is_object(warmup))
    ok = yaml_diag(diags, doc, root, "warmup", 0, "warmup must be a request mapping");
  else if (warmup)
    d->warmup = json_deep_copy(warmup);

  bool override_rules = options && options->rules_path;
  char *rules_path = override_rules ? strdup(options->rules_path) : join_path(d->dir, rules);
  size_t before = diags ? diags->count : 0;
  d->ruleset = rules_path ? vd_ruleset_load(rules_path, diags) : NULL;
  free(rules_path);
  if (!d->ruleset) {
    if (diags && diags->count == before) {
      vd_error e;
      vd_error_set(&e, "the rule file %s/%s was refused", d->dir, rules);
      add_diag(diags, &e);
    }
    return false;
  }
  if (schema && !override_rules) {
    char *schema_path = join_path(d->dir, schema);
    vd_schema *s = schema_path ? vd_schema_load(schema_path, diags) : NULL;
    if (!s)
      ok = false;
    else if (strcmp(vd_schema_version(s), vd_schema_version(vd_ruleset_schema(d->ruleset))) != 0)
      ok = yaml_diag(diags, doc, root, "schema", 0,
                     "this schema differs from the one the rule file names: point both at the "
                     "same file");
    vd_schema_free(s);
    free(schema_path);
  }
  if (!load_candidates(d, doc, root, diags)) ok = false;
  if (ok && options && options->data_dir && !store_ruleset(options->data_dir, d->ruleset, diags))
    ok = false;
  if (ok && !load_model(d, doc, root, options, diags)) ok = false;
  if (ok && !check_treatments(d, doc, root, diags)) ok = false;
  if (ok && strcmp(d->kind, "triage") == 0 && !check_escalations(d, rules, diags)) ok = false;
  if (ok && !seal(d, options ? options->data_dir : NULL, diags)) ok = false;
  return ok;
}

vd_deployment *vd_deployment_load(const char *dir, const vd_deployment_load_options *options,
                                  vd_diags *diags) {
  vd_deployment *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  atomic_init(&d->refs, 1);
  d->dir = strdup(dir);
  d->loaded_us = vd_wall_us();
  char *path = join_path(dir, "deployment.yaml");
  vd_error e;
  vd_yaml_doc *doc = path ? vd_yaml_load_file(path, &e) : NULL;
  free(path);
  if (!doc) {
    add_diag(diags, &e);
    deployment_free(d);
    return NULL;
  }
  bool ok = load_body(d, doc, vd_yaml_root(doc), options, diags);
  vd_yaml_free(doc);
  if (!ok) {
    deployment_free(d);
    return NULL;
  }
  return d;
}

/* Rebuilds a stored deployment version: its settings and candidates from deployment.json, the
 * ruleset and the model from their own stores. Any missing or altered piece is an error. */
static bool load_stored_body(vd_deployment *d, const char *data_dir, const vd_yaml_doc *doc,
                             const json_t *root, vd_diags *diags) {
  vd_error e = {0};
  const char *name = json_string_value(json_object_get(root, "name"));
  const char *kind = json_string_value(json_object_get(root, "kind"));
  const char *ruleset = json_string_value(json_object_get(root, "ruleset"));
  const char *model = json_string_value(json_object_get(root, "model"));
  const char *model_error = json_string_value(json_object_get(root, "model_error"));
  if (!name || !kind || !ruleset)
    return yaml_diag(diags, doc, NULL, NULL, 0, "a stored deployment needs name, kind, ruleset");
  d->name = strdup(name);
  d->kind = strdup(kind);
  d->max_results = (size_t)json_integer_value(json_object_get(root, "max_results"));
  d->model_budget_us = (unsigned)json_integer_value(json_object_get(root, "model_budget_us"));
  char path[4096];
  if (!vd_store_path(data_dir, "rulesets", ruleset, path, sizeof path, &e)) {
    add_diag(diags, &e);
    return false;
  }
  strncat(path, "/ruleset.json", sizeof path - strlen(path) - 1);
  d->ruleset = vd_ruleset_load(path, diags);
  if (!d->ruleset) return false;
  if (strcmp(vd_ruleset_version(d->ruleset), ruleset) != 0) {
    vd_error_set(&e, "stored ruleset %s loads as version %s: the store was altered", ruleset,
                 vd_ruleset_version(d->ruleset));
    add_diag(diags, &e);
    return false;
  }
  if (!load_candidates(d, doc, root, diags)) return false;
  if (model && strcmp(kind, "triage") == 0) { /* the text model, from the same store */
    d->triage = vd_triage_store_load(data_dir, model, &e);
    if (!d->triage) {
      add_diag(diags, &e);
      return false;
    }
  } else if (model) {
    d->model = vd_model_store_load(data_dir, model, vd_ruleset_schema(d->ruleset), &e);
    if (!d->model) {
      add_diag(diags, &e);
      return false;
    }
  } else {
    d->model_error = strdup(model_error ? model_error : "the deployment names no model");
  }
  return true;
}

vd_deployment *vd_deployment_load_stored(const char *data_dir, const char *version,
                                         vd_diags *diags) {
  vd_deployment *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  atomic_init(&d->refs, 1);
  d->loaded_us = vd_wall_us();
  vd_error e = {0};
  char dir[4096];
  vd_yaml_doc *doc = NULL;
  bool ok = vd_store_path(data_dir, "deployments", version, dir, sizeof dir, &e);
  if (ok) {
    d->dir = strdup(dir);
    char *path = join_path(dir, "deployment.json");
    doc = path ? vd_yaml_load_file(path, &e) : NULL;
    free(path);
    ok = doc != NULL;
  }
  if (!ok) add_diag(diags, &e);
  ok = ok && load_stored_body(d, data_dir, doc, vd_yaml_root(doc), diags);
  vd_yaml_free(doc);
  if (ok) {
    char *text = canonical_text(d);
    ok = text != NULL;
    if (ok) vd_sha256_hex(text, strlen(text), d->version);
    free(text);
    if (ok && strcmp(d->version, version) != 0) {
      vd_error_set(&e, "stored deployment %s rebuilds as version %s: the store was altered",
                   version, d->version);
      add_diag(diags, &e);
      ok = false;
    }
  }
  if (!ok) {
    deployment_free(d);
    return NULL;
  }
  return d;
}

const char *vd_deployment_version(const vd_deployment *d) { return d->version; }
const char *vd_deployment_name(const vd_deployment *d) { return d->name; }
const char *vd_deployment_kind(const vd_deployment *d) { return d->kind; }
bool vd_deployment_kind_known(const char *kind) {
  return strcmp(kind, "promotions") == 0 || strcmp(kind, "triage") == 0;
}
const vd_triage_model *vd_deployment_triage(const vd_deployment *d) { return d->triage; }
const char *vd_deployment_dir(const vd_deployment *d) { return d->dir; }
const vd_ruleset *vd_deployment_ruleset(const vd_deployment *d) { return d->ruleset; }
const vd_schema *vd_deployment_schema(const vd_deployment *d) {
  return vd_ruleset_schema(d->ruleset);
}
const vd_model *vd_deployment_model(const vd_deployment *d) { return d->model; }
const char *vd_deployment_model_error(const vd_deployment *d) {
  return d->model ? NULL : d->model_error;
}
size_t vd_deployment_max_results(const vd_deployment *d) { return d->max_results; }
unsigned vd_deployment_model_budget_us(const vd_deployment *d) { return d->model_budget_us; }
size_t vd_deployment_candidate_count(const vd_deployment *d) { return d->candidate_count; }
const vd_candidate_def *vd_deployment_candidate(const vd_deployment *d, size_t index) {
  return index < d->candidate_count ? &d->candidates[index] : NULL;
}
const vd_candidate_def *vd_deployment_find_candidate(const vd_deployment *d, const char *id) {
  for (size_t i = 0; i < d->candidate_count; i++)
    if (strcmp(d->candidates[i].id, id) == 0) return &d->candidates[i];
  return NULL;
}
const json_t *vd_deployment_warmup(const vd_deployment *d) { return d->warmup; }
int64_t vd_deployment_loaded_us(const vd_deployment *d) { return d->loaded_us; }

json_t *vd_deployment_describe(const vd_deployment *d) {
  char loaded[40];
  vd_format_rfc3339_us(d->loaded_us, loaded, sizeof loaded);
  const vd_schema *schema = vd_deployment_schema(d);
  json_t *candidates = json_array();
  for (size_t i = 0; i < d->candidate_count; i++)
    json_array_append_new(candidates, json_string(d->candidates[i].id));
  json_t *model = d->model    ? json_pack("{s:s, s:s}", "name", vd_model_name(d->model), "version",
                                          vd_model_version(d->model))
                  : d->triage ? json_pack("{s:s, s:s}", "name", vd_triage_name(d->triage),
                                          "version", vd_triage_version(d->triage))
                              : json_null();
  return json_pack(
      "{s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s}, s:o, s:o, s:o}", "name", d->name, "kind",
      d->kind, "dir", d->dir, "loaded_at", loaded, "ruleset", "name", vd_ruleset_name(d->ruleset),
      "version", vd_ruleset_version(d->ruleset), "schema", "name", vd_schema_name(schema),
      "version", vd_schema_version(schema), "model", model, "model_error",
      d->model || d->triage ? json_null() : json_string(d->model_error ? d->model_error : ""),
      "candidates", candidates);
}

/* ---- Registry ------------------------------------------------------------------------------ */

struct vd_registry {
  pthread_mutex_t lock; /* guards the slots; held only to swap or take a reference */
  vd_deployment **slots;
  size_t count;
  size_t capacity;
};

vd_registry *vd_registry_new(void) {
  vd_registry *r = calloc(1, sizeof *r);
  if (r) pthread_mutex_init(&r->lock, NULL);
  return r;
}

void vd_registry_free(vd_registry *r) {
  if (!r) return;
  for (size_t i = 0; i < r->count; i++) vd_deployment_release(r->slots[i]);
  free(r->slots);
  pthread_mutex_destroy(&r->lock);
  free(r);
}

void vd_registry_install(vd_registry *r, vd_deployment *d) {
  vd_deployment *old = NULL;
  pthread_mutex_lock(&r->lock);
  size_t i = 0;
  while (i < r->count && strcmp(r->slots[i]->name, d->name) != 0) i++;
  if (i < r->count) {
    old = r->slots[i];
    r->slots[i] = d;
  } else {
    if (r->count == r->capacity) {
      size_t cap = r->capacity ? r->capacity * 2 : 4;
      vd_deployment **grown = realloc(r->slots, cap * sizeof(vd_deployment *));
      if (!grown) {
        pthread_mutex_unlock(&r->lock);
        vd_deployment_release(d);
        return;
      }
      r->slots = grown;
      r->capacity = cap;
    }
    r->slots[r->count++] = d;
  }
  pthread_mutex_unlock(&r->lock);
  vd_deployment_release(old); /* freed now, or when its last request finishes */
}

vd_deployment *vd_registry_acquire_kind(vd_registry *r, const char *kind) {
  vd_deployment *found = NULL;
  pthread_mutex_lock(&r->lock);
  for (size_t i = 0; i < r->count && !found; i++)
    if (strcmp(r->slots[i]->kind, kind) == 0) found = vd_deployment_retain(r->slots[i]);
  pthread_mutex_unlock(&r->lock);
  return found;
}

size_t vd_registry_count(vd_registry *r) {
  pthread_mutex_lock(&r->lock);
  size_t n = r->count;
  pthread_mutex_unlock(&r->lock);
  return n;
}

vd_deployment *vd_registry_acquire_at(vd_registry *r, size_t index) {
  pthread_mutex_lock(&r->lock);
  vd_deployment *d = index < r->count ? vd_deployment_retain(r->slots[index]) : NULL;
  pthread_mutex_unlock(&r->lock);
  return d;
}
