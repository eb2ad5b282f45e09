#include "vd_model.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vd_buf.h"
#include "vd_bundle.h"
#include "vd_features.h"
#include "vd_forest.h"
#include "vd_json_file.h"
#include "vd_json_path.h"
#include "vd_json_write.h"
#include "vd_store.h"
#include "vd_text.h"

enum { MAX_MANIFEST_BYTES = 16 << 20, MAX_MODEL_BYTES = 512 << 20 };

struct vd_model {
  atomic_int refs;
  json_t *manifest;
  const char *name, *version, *task, *control;
  vd_features *features;
  vd_forest *forest;
  const json_t *reasons;
};

/* ---------- loading ---------- */

static const char *manifest_string(const json_t *m, const char *key, const char *path,
                                   vd_error *err) {
  const json_t *v = json_object_get(m, key);
  if (!json_is_string(v) || !json_string_length(v)) {
    vd_error_set(err, "%s: field \"%s\" is missing or not a non-empty string", path, key);
    return NULL;
  }
  return json_string_value(v);
}

static bool is_hex64(const char *s) {
  if (strlen(s) != 64) return false;
  for (const char *p = s; *p; p++)
    if (!isxdigit((unsigned char)*p) || isupper((unsigned char)*p)) return false;
  return true;
}

static bool type_compatible(vd_feature_encoding enc, vd_field_type t) {
  switch (enc) {
    case VD_ENCODING_NUMERIC:
      return t == VD_FIELD_INT || t == VD_FIELD_DOUBLE;
    case VD_ENCODING_BOOL:
      return t == VD_FIELD_BOOL;
    case VD_ENCODING_ENUM:
      return t == VD_FIELD_ENUM || t == VD_FIELD_STRING;
  }
  return false;
}

static bool check_schema(const vd_model *m, const vd_schema *schema, const char *path,
                         vd_error *err) {
  static const char *const enc_names[] = {"numeric", "bool", "enum"};
  const json_t *features = json_object_get(m->manifest, "features");
  for (size_t i = 0; i < vd_features_count(m->features); i++) {
    const char *source = vd_features_source(m->features, i);
    const vd_schema_field *f = vd_schema_find(schema, source);
    vd_feature_encoding enc = vd_features_encoding(m->features, i);
    if (!f)
      return vd_error_set(err, "%s: feature %s reads %s, which schema %s does not declare", path,
                          vd_features_name(m->features, i), source, vd_schema_name(schema));
    if (!type_compatible(enc, vd_schema_field_type(f)))
      return vd_error_set(err, "%s: feature %s (%s encoding) reads %s, which schema %s types as %s",
                          path, vd_features_name(m->features, i), enc_names[enc], source,
                          vd_schema_name(schema), vd_schema_field_type_name(f));
    const char *unknown =
        json_string_value(json_object_get(json_array_get(features, i), "unknown"));
    if (enc == VD_ENCODING_ENUM && unknown && strcmp(unknown, "error") == 0) {
      if (vd_schema_field_type(f) == VD_FIELD_STRING)
        return vd_error_set(err,
                            "%s: feature %s refuses unknown categories but %s is a free string",
                            path, vd_features_name(m->features, i), source);
      for (size_t k = 0; k < vd_schema_field_enum_count(f); k++) {
        const char *value = vd_schema_field_enum_value(f, k);
        bool known = false;
        for (size_t c = 0; c < vd_features_category_count(m->features, i); c++)
          known = known || strcmp(value, vd_features_category(m->features, i, c)) == 0;
        if (!known)
          return vd_error_set(err,
                              "%s: schema allows %s = \"%s\", which feature %s refuses "
                              "(unknown: error)",
                              path, source, value, vd_features_name(m->features, i));
      }
    }
  }
  return true;
}

/* allow_legacy: accept a version of the legacy scheme (vd_bundle.h), for stored bundles only. */
static vd_model *load_bundle(const char *dir, const vd_schema *schema, bool allow_legacy,
                             vd_error *err) {
  char mpath[4096], tpath[4096];
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    vd_error_set(err, "%s: not a model bundle folder (%s)", dir,
                 stat(dir, &st) != 0 ? strerror(errno) : "not a directory");
    return NULL;
  }
  snprintf(mpath, sizeof mpath, "%s/manifest.json", dir);
  vd_model *m = calloc(1, sizeof *m);
  if (!m) {
    vd_error_set(err, "%s: out of memory", dir);
    return NULL;
  }
  atomic_init(&m->refs, 1);
  char *model_text = NULL;
  size_t model_size = 0;
  m->manifest = vd_json_load_file(mpath, MAX_MANIFEST_BYTES, JSON_REJECT_DUPLICATES, err);
  if (!m->manifest) goto fail;
  if (!json_is_object(m->manifest)) {
    vd_error_set(err, "%s: expected a JSON object", mpath);
    goto fail;
  }
  const json_t *format = json_object_get(m->manifest, "format");
  if (!json_is_string(format) || strcmp(json_string_value(format), VD_MODEL_FORMAT) != 0) {
    vd_error_set(err, "%s: wrong format %s%s%s (expected \"%s\")", mpath, format ? "\"" : "",
                 json_is_string(format) ? json_string_value(format) : "(missing)",
                 format ? "\"" : "", VD_MODEL_FORMAT);
    goto fail;
  }
  const char *model_file;
  if (!(m->name = manifest_string(m->manifest, "name", mpath, err)) ||
      !(m->version = manifest_string(m->manifest, "version", mpath, err)) ||
      !(m->task = manifest_string(m->manifest, "task", mpath, err)) ||
      !(model_file = manifest_string(m->manifest, "model_file", mpath, err)))
    goto fail;
  if (!is_hex64(m->version)) {
    vd_error_set(err, "%s: version is not a lowercase hex SHA-256", mpath);
    goto fail;
  }
  if (strcmp(m->task, "uplift") != 0) {
    vd_error_set(err, "%s: task \"%s\" is not supported (uplift)", mpath, m->task);
    goto fail;
  }
  if (strchr(model_file, '/') || strcmp(model_file, "..") == 0 || model_file[0] == '.') {
    vd_error_set(err, "%s: model_file must be a file name inside the bundle", mpath);
    goto fail;
  }
  const json_t *treatment = json_object_get(m->manifest, "treatment");
  if (!json_is_object(treatment) ||
      !(m->control = manifest_string(treatment, "control", mpath, err))) {
    if (!json_is_object(treatment)) vd_error_set(err, "%s: field \"treatment\" is missing", mpath);
    goto fail;
  }
  vd_error ferr = {0};
  m->features = vd_features_parse(json_object_get(m->manifest, "features"),
                                  json_object_get(treatment, "arms"), "features", &ferr);
  if (!m->features) {
    vd_error_set(err, "%s: %s%s%s", mpath, ferr.field, ferr.field[0] ? ": " : "", ferr.message);
    goto fail;
  }
  for (size_t a = 0; a < vd_features_arm_count(m->features); a++)
    if (strcmp(vd_features_arm(m->features, a), m->control) == 0) {
      vd_error_set(err, "%s: the control \"%s\" is also an arm", mpath, m->control);
      goto fail;
    }
  const json_t *columns = json_object_get(m->manifest, "columns");
  bool same = json_is_array(columns) && json_array_size(columns) == vd_features_width(m->features);
  for (size_t c = 0; same && c < vd_features_width(m->features); c++)
    same = json_is_string(json_array_get(columns, c)) &&
           strcmp(json_string_value(json_array_get(columns, c)),
                  vd_features_column_name(m->features, c)) == 0;
  if (!same) {
    vd_error_set(err, "%s: \"columns\" do not match the features and arms", mpath);
    goto fail;
  }
  m->reasons = json_object_get(m->manifest, "reasons");
  if (m->reasons && !json_is_object(m->reasons)) {
    vd_error_set(err, "%s: \"reasons\" must be an object", mpath);
    goto fail;
  }
  snprintf(tpath, sizeof tpath, "%s/%s", dir, model_file);
  if (!(model_text = vd_read_file(tpath, MAX_MODEL_BYTES, &model_size, err))) goto fail;
  char hash[VD_SHA256_HEX_SIZE];
  vd_sha256_hex(model_text, model_size, hash);
  if (!vd_bundle_check_version(m->manifest, dir, model_file, hash, allow_legacy, err)) goto fail;
  if (!(m->forest =
            vd_forest_load(model_text, model_size, tpath, VD_FOREST_DEFAULT_TABLE_FEATURES, err)))
    goto fail;
  if (strcmp(vd_forest_objective(m->forest), "binary:logistic") != 0) {
    vd_error_set(err, "%s: objective %s, an uplift model needs binary:logistic", tpath,
                 vd_forest_objective(m->forest));
    goto fail;
  }
  if (vd_forest_feature_count(m->forest) != vd_features_width(m->features)) {
    vd_error_set(err, "%s: the model has %zu input columns, the manifest describes %zu", tpath,
                 vd_forest_feature_count(m->forest), vd_features_width(m->features));
    goto fail;
  }
  free(model_text);
  model_text = NULL;
  if (schema && !check_schema(m, schema, mpath, err)) goto fail;
  return m;
fail:
  free(model_text);
  vd_model_free(m);
  return NULL;
}

vd_model *vd_model_load(const char *dir, const vd_schema *schema, vd_error *err) {
  return load_bundle(dir, schema, false, err);
}

vd_model *vd_model_retain(vd_model *m) {
  atomic_fetch_add(&m->refs, 1);
  return m;
}

void vd_model_free(vd_model *m) {
  if (!m || atomic_fetch_sub(&m->refs, 1) != 1) return;
  vd_forest_free(m->forest);
  vd_features_free(m->features);
  json_decref(m->manifest);
  free(m);
}

const char *vd_model_name(const vd_model *m) { return m->name; }
const char *vd_model_version(const vd_model *m) { return m->version; }
const char *vd_model_task(const vd_model *m) { return m->task; }
const json_t *vd_model_manifest(const vd_model *m) { return m->manifest; }
const char *vd_model_control(const vd_model *m) { return m->control; }
size_t vd_model_arm_count(const vd_model *m) { return vd_features_arm_count(m->features); }
const char *vd_model_arm(const vd_model *m, size_t a) { return vd_features_arm(m->features, a); }
size_t vd_model_feature_count(const vd_model *m) { return vd_features_count(m->features); }
const char *vd_model_feature_name(const vd_model *m, size_t i) {
  return vd_features_name(m->features, i);
}
const char *vd_model_feature_source(const vd_model *m, size_t i) {
  return vd_features_source(m->features, i);
}
size_t vd_model_column_count(const vd_model *m) { return vd_features_width(m->features); }
const char *vd_model_column_name(const vd_model *m, size_t c) {
  return vd_features_column_name(m->features, c);
}

/* ---------- scoring ---------- */

bool vd_model_result_init(const vd_model *m, vd_model_result *r, vd_error *err) {
  *r = (vd_model_result){0};
  r->column_count = vd_features_width(m->features);
  r->feature_count = vd_features_count(m->features) + 1;
  r->features = calloc(r->column_count, sizeof *r->features);
  r->contributions = calloc(r->column_count + 1, sizeof *r->contributions);
  r->feature_contributions = calloc(r->feature_count, sizeof *r->feature_contributions);
  r->control_row = calloc(r->column_count, sizeof *r->control_row);
  if (!r->features || !r->contributions || !r->feature_contributions || !r->control_row) {
    vd_model_result_free(r);
    return vd_error_set(err, "out of memory");
  }
  return true;
}

void vd_model_result_free(vd_model_result *r) {
  free(r->features);
  free(r->contributions);
  free(r->feature_contributions);
  free(r->control_row);
  *r = (vd_model_result){0};
}

/* The margin of the control row in r->features: the forest's, or the one remembered for the same
 * row of the same model (bit for bit: a margin depends on the row's floats alone). */
static float control_margin(const vd_model *m, vd_model_result *r) {
  size_t bytes = r->column_count * sizeof *r->features;
  if (r->control_model == m && memcmp(r->control_row, r->features, bytes) == 0)
    return r->control_margin;
  r->control_margin = vd_forest_margin(m->forest, r->features);
  memcpy(r->control_row, r->features, bytes);
  r->control_model = m;
  return r->control_margin;
}

bool vd_model_score(const vd_model *m, const json_t *request, const char *treatment,
                    bool want_contributions, vd_model_result *r, vd_error *err) {
  if (r->column_count != vd_features_width(m->features))
    return vd_error_set(err, "result was initialised for another model");
  if (!treatment) return vd_error_set(err, "no treatment given for model %s", m->name);
  if (!vd_features_encode(m->features, request, r->features, err)) return false;
  size_t base = vd_features_base_width(m->features), arms = vd_features_arm_count(m->features);
  for (size_t a = 0; a < arms; a++) r->features[base + a] = 0.0f;
  float control = control_margin(m, r);
  if (!vd_features_set_treatment(m->features, treatment, m->control, r->features, err))
    return false;
  bool is_control = strcmp(treatment, m->control) == 0;
  float margin = is_control ? control : vd_forest_margin(m->forest, r->features);
  r->margin = margin;
  r->margin_control = control;
  r->p_treatment = vd_forest_transform(m->forest, margin);
  r->p_control = vd_forest_transform(m->forest, control);
  r->uplift = r->p_treatment - r->p_control;
  r->has_contributions = want_contributions;
  if (want_contributions) {
    vd_forest_contributions(m->forest, r->features, r->contributions);
    for (size_t i = 0; i < r->feature_count; i++) r->feature_contributions[i] = 0;
    for (size_t c = 0; c < r->column_count; c++)
      r->feature_contributions[vd_features_column_feature(m->features, c)] += r->contributions[c];
  }
  return true;
}

/* ---------- reasons ---------- */

/* The value as a reason says it: "missing", the string, the integer, the real with 2 decimals,
 * "yes" or "no". */
static void value_text(const json_t *v, vd_text *t) {
  if (!v || json_is_null(v))
    vd_text_puts(t, "missing");
  else if (json_is_string(v))
    vd_text_puts(t, json_string_value(v));
  else if (json_is_integer(v))
    vd_text_printf(t, "%lld", (long long)json_integer_value(v));
  else if (json_is_real(v))
    vd_text_printf(t, "%.2f", json_real_value(v));
  else
    vd_text_puts(t, json_is_true(v) ? "yes" : "no");
}

/* Appends tmpl with its holes filled (vd_model_reason_text); v is the value, text its text. A
 * "{value?" without its ':' and '}' is written as it stands. Returns whether tmpl had a hole. */
static bool fill_template(vd_text *t, const char *tmpl, const json_t *v, const char *text) {
  static const char hole[] = "{value";
  bool filled = false;
  for (const char *p = tmpl; *p;) {
    const char *at = strstr(p, hole);
    if (!at) {
      vd_text_puts(t, p);
      break;
    }
    vd_text_append(t, p, (size_t)(at - p));
    const char *q = at + strlen(hole);
    const char *colon = *q == '?' ? strchr(q, ':') : NULL;
    const char *close = colon ? strchr(colon, '}') : NULL;
    if (*q == '}') {
      vd_text_puts(t, text);
      p = q + 1;
    } else if (close) {
      if (json_is_boolean(v))
        vd_text_append(t, json_is_true(v) ? q + 1 : colon + 1,
                       (size_t)(json_is_true(v) ? colon - q - 1 : close - colon - 1));
      else
        vd_text_puts(t, text);
      p = close + 1;
    } else {
      vd_text_append(t, at, strlen(hole));
      p = q;
      continue;
    }
    filled = true;
  }
  return filled;
}

void vd_model_reason_text(const vd_model *m, size_t feature, bool raised, const json_t *request,
                          char *buf, size_t size) {
  if (size == 0) return;
  bool is_treatment = feature >= vd_features_count(m->features);
  const char *name = is_treatment ? "treatment" : vd_features_name(m->features, feature);
  const json_t *texts = json_object_get(m->reasons, name);
  const char *tmpl = json_string_value(json_object_get(texts, raised ? "up" : "down"));
  const json_t *v =
      is_treatment ? NULL : vd_json_get_path(request, vd_features_source(m->features, feature));
  char value[128];
  vd_text value_out, out;
  vd_text_init(&value_out, value, sizeof value);
  vd_text_init(&out, buf, size);
  value_text(v, &value_out);
  if (!tmpl) {
    vd_text_printf(&out, "%s (%s) %s the expected response", name, value,
                   raised ? "raised" : "lowered");
  } else if (!fill_template(&out, tmpl, v, value) && !is_treatment) {
    vd_text_printf(&out, " (%s: %s)", name, value); /* a text must say what the customer had */
  }
}

size_t vd_model_reason_pick(const vd_model *m, const double *phi, size_t max, bool only_lowering,
                            vd_model_reason *out) {
  size_t n = vd_features_count(m->features) + 1, picked = 0;
  for (; picked < max && picked < n; picked++) {
    size_t best = n;
    for (size_t i = 0; i < n; i++) {
      bool used = false;
      for (size_t k = 0; k < picked && !used; k++) used = out[k].feature == i;
      if (!used && !(only_lowering && phi[i] >= 0) && (best == n || fabs(phi[i]) > fabs(phi[best])))
        best = i;
    }
    if (best == n || phi[best] == 0.0) break;
    out[picked] =
        (vd_model_reason){.feature = best, .raised = phi[best] > 0, .contribution = phi[best]};
  }
  return picked;
}

json_t *vd_model_reasons(const vd_model *m, const double *phi, const json_t *request, size_t max,
                         bool only_lowering) {
  json_t *out = json_array();
  size_t n = vd_features_count(m->features) + 1;
  vd_model_reason *picks = calloc(max < n ? max + 1 : n, sizeof *picks);
  if (!picks) return out;
  size_t count = vd_model_reason_pick(m, phi, max, only_lowering, picks);
  for (size_t k = 0; k < count; k++) {
    size_t best = picks[k].feature;
    bool is_treatment = best + 1 == n;
    char text[512];
    vd_model_reason_text(m, best, picks[k].raised, request, text, sizeof text);
    json_t *o = json_object();
    json_object_set_new(
        o, "feature",
        json_string(is_treatment ? "treatment" : vd_features_name(m->features, best)));
    if (!is_treatment) {
      const char *source = vd_features_source(m->features, best);
      json_object_set_new(o, "source", json_string(source));
      const json_t *v = vd_json_get_path(request, source);
      json_object_set_new(o, "value", v ? json_deep_copy(v) : json_null());
    }
    json_object_set_new(o, "contribution", json_real(picks[k].contribution));
    json_object_set_new(o, "direction", json_string(picks[k].raised ? "up" : "down"));
    json_object_set_new(o, "text", json_string(text));
    json_array_append_new(out, o);
  }
  free(picks);
  return out;
}

void vd_model_result_write(const vd_model *m, const vd_model_result *r, vd_json_emit *e) {
  vd_json_emit_object(e);
  vd_json_emit_key(e, "features");
  vd_json_emit_object(e);
  for (size_t c = 0; c < r->column_count; c++) {
    vd_json_emit_key(e, vd_features_column_name(m->features, c));
    if (isnan(r->features[c]))
      vd_json_emit_null(e);
    else
      vd_json_emit_real(e, r->features[c]);
  }
  vd_json_emit_end(e);
  vd_json_emit_member_real(e, "margin", r->margin);
  vd_json_emit_member_real(e, "margin_control", r->margin_control);
  vd_json_emit_member_real(e, "p_treatment", r->p_treatment);
  vd_json_emit_member_real(e, "p_control", r->p_control);
  vd_json_emit_member_real(e, "uplift", r->uplift);
  if (r->has_contributions) {
    vd_json_emit_key(e, "contributions");
    vd_json_emit_object(e);
    for (size_t c = 0; c < r->column_count; c++) {
      vd_json_emit_member_real(e, vd_features_column_name(m->features, c), r->contributions[c]);
    }
    vd_json_emit_end(e);
    vd_json_emit_member_real(e, "bias", r->contributions[r->column_count]);
  }
  vd_json_emit_end(e);
}

json_t *vd_model_result_to_json(const vd_model *m, const vd_model_result *r) {
  vd_json_emit e;
  vd_json_emit_tree(&e);
  vd_model_result_write(m, r, &e);
  return vd_json_emit_take(&e);
}

/* ---------- content-addressed store ---------- */

bool vd_model_store_put(const char *data_dir, const char *bundle_dir,
                        char version[VD_SHA256_HEX_SIZE], vd_error *err) {
  vd_model *m = vd_model_load(bundle_dir, NULL, err); /* only a bundle that loads is stored */
  if (!m) return false;
  snprintf(version, VD_SHA256_HEX_SIZE, "%s", m->version);
  const char *files[] = {"manifest.json",
                         json_string_value(json_object_get(m->manifest, "model_file"))};
  vd_store_txn *t = vd_store_begin(data_dir, "models", version, err);
  bool ok = t != NULL;
  for (int i = 0; ok && i < 2; i++) {
    char from[4096];
    snprintf(from, sizeof from, "%s/%s", bundle_dir, files[i]);
    ok = vd_store_add_file(t, files[i], from, err);
  }
  if (t && !ok) vd_store_abort(t);
  if (ok) ok = vd_store_commit(t, NULL, 0, err);
  vd_model_free(m);
  return ok;
}

vd_model *vd_model_store_load(const char *data_dir, const char *version, const vd_schema *schema,
                              vd_error *err) {
  if (!is_hex64(version)) {
    vd_error_set(err, "\"%s\" is not a model version (a lowercase hex SHA-256)", version);
    return NULL;
  }
  char dir[4200];
  if (!vd_store_path(data_dir, "models", version, dir, sizeof dir, err)) return NULL;
  /* A stored bundle may carry a legacy version (the model file's hash alone): the decision logs
   * written before the version covered the manifest name those versions, and their replays load
   * them from here. The stored copy is still checked against that version. */
  vd_model *m = load_bundle(dir, schema, true, err);
  if (m && strcmp(m->version, version) != 0) {
    vd_error_set(err, "%s: holds version %s, not %s", dir, m->version, version);
    vd_model_free(m);
    return NULL;
  }
  return m;
}
