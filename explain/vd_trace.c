#include "vd_trace.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vd_hash.h"
#include "vd_json_path.h"
#include "vd_suggest.h"
#include "vd_time.h"

json_t *vd_trace_mask_value(const json_t *value, const vd_trace_mask *mask) {
  char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
  if (!text) return NULL;
  char hex[VD_SHA256_HEX_SIZE];
  vd_hmac_sha256_hex(mask->key, mask->key_size, text, strlen(text), hex);
  free(text);
  char out[VD_SHA256_HEX_SIZE + 16];
  snprintf(out, sizeof out, "hmac-sha256:%s", hex);
  return json_string(out);
}

/* Masks root[path] in place when present; path is dotted ("id" or "address.zip"). */
static void mask_in(json_t *root, const char *path, const vd_trace_mask *mask) {
  const char *dot = strrchr(path, '.');
  json_t *parent = root;
  if (dot) {
    char *prefix = strndup(path, (size_t)(dot - path));
    parent = prefix ? vd_json_get_path(root, prefix) : NULL;
    free(prefix);
  }
  const char *key = dot ? dot + 1 : path;
  json_t *value = json_is_object(parent) ? json_object_get(parent, key) : NULL;
  if (!value || json_is_null(value)) return;
  json_t *masked = vd_trace_mask_value(value, mask);
  if (masked) json_object_set_new(parent, key, masked);
}

json_t *vd_trace_mask_request(const json_t *request, const vd_trace_mask *mask) {
  json_t *copy = json_deep_copy(request);
  if (!copy || !mask || !json_is_object(copy)) return copy;
  for (size_t i = 0; i < mask->field_count; i++) {
    const char *field = mask->fields[i];
    if (strncmp(field, "candidate.", 10) == 0) {
      mask_in(json_object_get(copy, "candidate"), field + 10, mask);
      json_t *list = json_object_get(copy, "candidates");
      size_t index;
      json_t *item;
      json_array_foreach(list, index, item) mask_in(item, field + 10, mask);
    } else {
      mask_in(copy, field, mask);
    }
  }
  return copy;
}

/* True when masking `mask` hides `field` (the same path, or a section/object above it). */
static bool covers(const char *mask, const char *field) {
  size_t n = strlen(mask);
  return strncmp(mask, field, n) == 0 && (field[n] == '\0' || field[n] == '.');
}

static void refuse(vd_diags *diags, const char *masked, const char *field, const char *reader) {
  char what[512];
  if (strcmp(masked, field) == 0)
    snprintf(what, sizeof what, "%s", field);
  else
    snprintf(what, sizeof what, "%s (which covers %s)", masked, field);
  vd_error e;
  vd_error_field(&e, "mask_fields",
                 "%s is read by %s; a masked value cannot be replayed, so a field "
                 "that rules or the model read cannot be masked (remove it from mask_fields)",
                 what, reader);
  if (diags) vd_diags_add(diags, &e);
}

bool vd_trace_mask_check(const vd_trace_mask *mask, const vd_ruleset *rs, const vd_model *model,
                         vd_diags *diags) {
  if (!mask) return true;
  bool ok = true;
  enum { MAX_FIELDS = 64 };
  for (size_t m = 0; m < mask->field_count; m++) {
    const char *masked = mask->fields[m];
    for (size_t r = 0; rs && r < vd_ruleset_rule_count(rs); r++) {
      const char *fields[MAX_FIELDS];
      size_t n = vd_ruleset_rule_fields(rs, r, fields, MAX_FIELDS);
      for (size_t k = 0; k < n && k < MAX_FIELDS; k++) {
        if (!covers(masked, fields[k])) continue;
        char reader[300];
        snprintf(reader, sizeof reader, "rule %s", vd_ruleset_rule_id(rs, r));
        refuse(diags, masked, fields[k], reader);
        ok = false;
      }
    }
    for (size_t f = 0; model && f < vd_model_feature_count(model); f++) {
      const char *source = vd_model_feature_source(model, f);
      if (!source || !covers(masked, source)) continue;
      char reader[300];
      snprintf(reader, sizeof reader, "model feature %s", vd_model_feature_name(model, f));
      refuse(diags, masked, source, reader);
      ok = false;
    }
  }
  return ok;
}

bool vd_trace_mask_known(const vd_trace_mask *mask, const vd_schema *const *schemas, size_t count,
                         vd_diags *diags) {
  if (!mask || mask->field_count == 0) return true;
  size_t total = 0;
  for (size_t s = 0; s < count; s++) total += vd_schema_field_count(schemas[s]);
  const char **paths = calloc(total + 1, sizeof *paths);
  if (!paths) {
    vd_error e;
    vd_error_set(&e, "out of memory checking mask_fields");
    if (diags) vd_diags_add(diags, &e);
    return false;
  }
  size_t n = 0;
  for (size_t s = 0; s < count; s++)
    for (size_t f = 0; f < vd_schema_field_count(schemas[s]); f++)
      paths[n++] = vd_schema_field_path(vd_schema_field_at(schemas[s], f));
  bool ok = true;
  for (size_t m = 0; m < mask->field_count; m++) {
    const char *masked = mask->fields[m];
    bool known = false;
    for (size_t i = 0; i < n && !known; i++) known = covers(masked, paths[i]);
    if (known) continue;
    const char *closest = vd_suggest(masked, paths, n);
    vd_error e;
    if (closest)
      vd_error_field(&e, "mask_fields",
                     "%s is not a field of any served schema (did you mean %s?): nothing would "
                     "be masked",
                     masked, closest);
    else
      vd_error_field(&e, "mask_fields",
                     "%s is not a field of any served schema: nothing would be masked", masked);
    if (diags) vd_diags_add(diags, &e);
    ok = false;
  }
  free(paths);
  return ok;
}

void vd_trace_write_versioned(vd_json_emit *e, const char *name, const char *version) {
  vd_json_emit_object(e);
  vd_json_emit_member_string(e, "name", name);
  vd_json_emit_member_string(e, "version", version);
  vd_json_emit_end(e);
}

void vd_trace_write_fallback(vd_json_emit *e, const char *reason, const char *message) {
  if (!reason) {
    vd_json_emit_null(e);
    return;
  }
  vd_json_emit_object(e);
  vd_json_emit_member_string(e, "reason", reason);
  vd_json_emit_member_string(e, "message", message);
  vd_json_emit_end(e);
}

const char *vd_trace_subject_id(const json_t *request, const vd_trace_mask *mask, char *buf,
                                size_t size) {
  const json_t *id = json_object_get(json_object_get(request, "subject"), "id");
  bool masked = false;
  for (size_t i = 0; mask && i < mask->field_count; i++) {
    if (strcmp(mask->fields[i], "subject") == 0) return NULL; /* the whole subject is one HMAC */
    masked = masked || strcmp(mask->fields[i], "subject.id") == 0;
  }
  if (!masked || !id || json_is_null(id)) return json_string_value(id);
  json_t *text = vd_trace_mask_value(id, mask);
  const char *value = json_string_value(text);
  bool fits = value && strlen(value) < size;
  if (fits) memcpy(buf, value, strlen(value) + 1);
  json_decref(text);
  return fits ? buf : NULL;
}

const char *vd_trace_subject_lookup(const char *subject, const vd_trace_mask *mask, char *buf,
                                    size_t size) {
  if (strncmp(subject, "hmac-sha256:", strlen("hmac-sha256:")) == 0) return subject;
  json_t *request = json_pack("{s:{s:s}}", "subject", "id", subject);
  const char *stored = request ? vd_trace_subject_id(request, mask, buf, size) : NULL;
  json_decref(request);
  return stored == buf ? buf : stored ? subject : NULL; /* else: borrowed from request */
}

void vd_trace_write_head(vd_json_emit *e, const vd_trace_header *h, const json_t *request,
                         const vd_trace_mask *mask) {
  char timestamp[40];
  vd_format_rfc3339_us(h->timestamp_us, timestamp, sizeof timestamp);
  vd_json_emit_object(e);
  vd_json_emit_member_integer(e, "trace_version", VD_TRACE_VERSION);
  vd_json_emit_member_string(e, "id", h->id);
  vd_json_emit_member_string(e, "kind", h->kind);
  vd_json_emit_member_string(e, "timestamp", timestamp);
  vd_json_emit_key(e, "deployment");
  vd_trace_write_versioned(e, h->deployment, h->deployment_version);
  vd_json_emit_key(e, "request");
  if (mask && mask->field_count) {
    json_t *masked = vd_trace_mask_request(request, mask);
    vd_json_emit_value(e, masked);
    json_decref(masked);
  } else {
    vd_json_emit_value(e, request); /* nothing to mask: written as is, no copy */
  }
  vd_json_emit_key(e, "ruleset");
  vd_trace_write_versioned(e, h->ruleset_name, h->ruleset_version);
  vd_json_emit_key(e, "schema");
  vd_trace_write_versioned(e, h->schema_name, h->schema_version);
  vd_json_emit_key(e, "model");
  if (h->model_version)
    vd_trace_write_versioned(e, h->model_name ? h->model_name : "", h->model_version);
  else
    vd_json_emit_null(e);
  vd_json_emit_key(e, "fallback");
  vd_trace_write_fallback(e, h->fallback_reason, h->fallback_message);
}

void vd_trace_write_cap(vd_json_emit *e, const vd_trace_header *h) {
  vd_json_emit_key(e, "max_results_cap");
  if (h->max_results_cap)
    vd_json_emit_integer(e, (json_int_t)h->max_results_cap);
  else
    vd_json_emit_null(e);
}

void vd_trace_write_timings(vd_json_emit *e, double validate_us, double rules_us, double model_us,
                            double total_us) {
  vd_json_emit_key(e, "timings_us");
  vd_json_emit_object(e);
  vd_json_emit_member_real(e, "validate", validate_us);
  vd_json_emit_member_real(e, "rules", rules_us);
  vd_json_emit_member_real(e, "model", model_us);
  vd_json_emit_member_real(e, "total", total_us);
  vd_json_emit_end(e);
}

json_t *vd_trace_begin(const vd_trace_header *h, const json_t *request, const vd_trace_mask *mask) {
  vd_json_emit e;
  vd_json_emit_tree(&e);
  vd_trace_write_head(&e, h, request, mask);
  vd_json_emit_key(&e, "candidates");
  vd_json_emit_array(&e);
  vd_json_emit_end(&e);
  vd_trace_write_cap(&e, h);
  vd_json_emit_end(&e);
  return vd_json_emit_take(&e);
}

void vd_trace_add_candidate(json_t *trace, json_t *candidate) {
  json_array_append_new(json_object_get(trace, "candidates"), candidate);
}

void vd_trace_finish(json_t *trace, json_t *response, double validate_us, double rules_us,
                     double model_us, double total_us) {
  json_object_set(trace, "response", response);
  /* the emitter writes members of an object: a one-member object, whose member moves over */
  vd_json_emit e;
  vd_json_emit_tree(&e);
  vd_json_emit_object(&e);
  vd_trace_write_timings(&e, validate_us, rules_us, model_us, total_us);
  vd_json_emit_end(&e);
  json_t *holder = vd_json_emit_take(&e);
  json_object_set(trace, "timings_us", json_object_get(holder, "timings_us"));
  json_decref(holder);
}

typedef struct diff_state {
  json_t *out;
  size_t max, total;
  vd_trace_leeway *leeway; /* NULL: exact */
} diff_state;

static bool within_tolerance(const vd_trace_leeway *leeway, const json_t *a, const json_t *b) {
  if (leeway->real_tolerance <= 0 || !json_is_number(a) || !json_is_number(b) ||
      (json_is_integer(a) && json_is_integer(b)))
    return false;
  double x = json_number_value(a), y = json_number_value(b);
  double scale = fmax(1.0, fmax(fabs(x), fabs(y)));
  return fabs(x - y) <= leeway->real_tolerance * scale;
}

/* Whether path is a reason's wording: "...reasons[N].text". */
static bool is_reason_text(const char *path) {
  size_t n = strlen(path);
  const char *suffix = "].text";
  size_t k = strlen(suffix);
  if (n < k || strcmp(path + n - k, suffix) != 0) return false;
  const char *open = path + n - k;
  while (open > path && open[-1] >= '0' && open[-1] <= '9') open--;
  static const char key[] = "reasons[";
  return open != path + n - k && (size_t)(open - path) >= sizeof key - 1 &&
         memcmp(open - (sizeof key - 1), key, sizeof key - 1) == 0;
}

static void diff_add(diff_state *st, const char *path, const json_t *a, const json_t *b) {
  st->total++;
  if (json_array_size(st->out) >= st->max) return;
  json_t *d = json_pack("{s:s, s:O, s:O}", "path", *path ? path : "(root)", "before",
                        a ? a : json_null(), "after", b ? b : json_null());
  if (!a || !b) json_object_set_new(d, "missing", json_string(a ? "after" : "before"));
  json_array_append_new(st->out, d);
}

static void diff_walk(diff_state *st, const char *path, const json_t *a, const json_t *b) {
  if (json_is_object(a) && json_is_object(b)) {
    const char *key;
    json_t *va;
    json_object_foreach((json_t *)a, key, va) {
      if (!*path && strcmp(key, "timings_us") == 0) continue;
      size_t n = strlen(path) + strlen(key) + 2;
      char *sub = malloc(n);
      if (!sub) return;
      snprintf(sub, n, "%s%s%s", path, *path ? "." : "", key);
      const json_t *vb = json_object_get(b, key);
      if (vb)
        diff_walk(st, sub, va, vb);
      else
        diff_add(st, sub, va, NULL);
      free(sub);
    }
    json_t *vb;
    json_object_foreach((json_t *)b, key, vb) {
      if ((!*path && strcmp(key, "timings_us") == 0) || json_object_get(a, key)) continue;
      size_t n = strlen(path) + strlen(key) + 2;
      char *sub = malloc(n);
      if (!sub) return;
      snprintf(sub, n, "%s%s%s", path, *path ? "." : "", key);
      diff_add(st, sub, NULL, vb);
      free(sub);
    }
    return;
  }
  if (json_is_array(a) && json_is_array(b) && json_array_size(a) == json_array_size(b)) {
    for (size_t i = 0; i < json_array_size(a); i++) {
      size_t n = strlen(path) + 24;
      char *sub = malloc(n);
      if (!sub) return;
      snprintf(sub, n, "%s[%zu]", path, i);
      diff_walk(st, sub, json_array_get(a, i), json_array_get(b, i));
      free(sub);
    }
    return;
  }
  if (json_equal((json_t *)a, (json_t *)b)) return;
  vd_trace_leeway *leeway = st->leeway;
  if (leeway && within_tolerance(leeway, a, b))
    leeway->rounded++;
  else if (leeway && leeway->reason_wording && json_is_string(a) && json_is_string(b) &&
           is_reason_text(path))
    leeway->reworded++;
  else
    diff_add(st, path, a, b);
}

json_t *vd_trace_diff_within(const json_t *before, const json_t *after, vd_trace_leeway *leeway,
                             size_t max, size_t *total) {
  diff_state st = {.out = json_array(), .max = max, .leeway = leeway};
  if (leeway) leeway->rounded = leeway->reworded = 0;
  diff_walk(&st, "", before, after);
  if (total) *total = st.total;
  return st.out;
}

json_t *vd_trace_diff(const json_t *before, const json_t *after, size_t max, size_t *total) {
  return vd_trace_diff_within(before, after, NULL, max, total);
}

static void drop_submission(json_t *escalation) {
  if (!json_is_object(escalation)) return;
  json_object_del(escalation, "job_id");
  json_object_del(escalation, "error");
}

json_t *vd_trace_decision_view(const json_t *trace) {
  json_t *view = json_deep_copy(trace);
  if (!json_is_object(view)) return view;
  json_object_del(view, "timings_us");
  json_object_del(view, "amendments");
  drop_submission(json_object_get(view, "escalation"));
  drop_submission(json_object_get(json_object_get(view, "response"), "escalation"));
  return view;
}
