#include "vd_json_schema.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vd_buf.h"
#include "vd_utf8.h"

static const char *const type_names[] = {"object", "array",   "string", "integer",
                                         "number", "boolean", "null"};

static bool known_type(const char *name) {
  for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
    if (strcmp(type_names[i], name) == 0) return true;
  return false;
}

static bool check_at(const json_t *root, const json_t *schema, vd_buf *path, vd_error *err);

/* The target of a local reference "#/$defs/NAME", or NULL. */
static const json_t *resolve_ref(const json_t *root, const char *ref) {
  static const char prefix[] = "#/$defs/";
  if (!ref || strncmp(ref, prefix, sizeof prefix - 1) != 0) return NULL;
  return json_object_get(json_object_get(root, "$defs"), ref + sizeof prefix - 1);
}

static bool fail_at(vd_error *err, const vd_buf *path, const char *what, const char *key) {
  return vd_error_field(err, path->len ? path->data : "(root)", "schema: %s \"%s\"", what, key);
}

/* True when following $ref / allOf / if / then / else from schema (applicators that validate the
 * same instance, so a cycle through them would never end) goes deeper than any sane schema. */
static bool applicator_cycle(const json_t *root, const json_t *schema, int depth) {
  if (!json_is_object(schema)) return false;
  if (depth > 64) return true;
  const json_t *ref = json_object_get(schema, "$ref");
  if (ref && applicator_cycle(root, resolve_ref(root, json_string_value(ref)), depth + 1))
    return true;
  size_t i;
  json_t *sub;
  json_array_foreach(json_object_get(schema, "allOf"), i, sub) {
    if (applicator_cycle(root, sub, depth + 1)) return true;
  }
  static const char *const branches[] = {"if", "then", "else"};
  for (size_t b = 0; b < 3; b++)
    if (applicator_cycle(root, json_object_get(schema, branches[b]), depth + 1)) return true;
  return false;
}

static bool check_child(const json_t *root, const json_t *child, vd_buf *path, const char *segment,
                        vd_error *err) {
  size_t saved = path->len;
  vd_buf_printf(path, "%s%s", path->len ? "." : "", segment);
  bool ok = check_at(root, child, path, err);
  path->len = saved;
  if (path->data) path->data[saved] = '\0';
  return ok;
}

static bool check_at(const json_t *root, const json_t *schema, vd_buf *path, vd_error *err) {
  if (!json_is_object(schema)) return fail_at(err, path, "expected an object for", "schema");
  const char *key;
  json_t *value;
  json_object_foreach((json_t *)schema, key, value) {
    if (strcmp(key, "type") == 0) {
      if (json_is_string(value)) {
        if (!known_type(json_string_value(value)))
          return fail_at(err, path, "unknown type", json_string_value(value));
      } else if (json_is_array(value) && json_array_size(value) > 0) {
        size_t i;
        json_t *t;
        json_array_foreach(value, i, t) {
          if (!json_is_string(t) || !known_type(json_string_value(t)))
            return fail_at(err, path, "bad entry in", "type");
        }
      } else {
        return fail_at(err, path, "expected a type name or list of names for", "type");
      }
    } else if (strcmp(key, "properties") == 0) {
      if (!json_is_object(value)) return fail_at(err, path, "expected an object for", key);
      const char *name;
      json_t *sub;
      json_object_foreach(value, name, sub) {
        char segment[300];
        snprintf(segment, sizeof segment, "properties.%s", name);
        if (!check_child(root, sub, path, segment, err)) return false;
      }
    } else if (strcmp(key, "required") == 0) {
      if (!json_is_array(value)) return fail_at(err, path, "expected a list of names for", key);
      size_t i;
      json_t *r;
      json_array_foreach(value, i, r) {
        if (!json_is_string(r)) return fail_at(err, path, "expected names in", key);
      }
    } else if (strcmp(key, "additionalProperties") == 0) {
      if (json_is_false(value) || json_is_true(value)) continue;
      if (!check_child(root, value, path, "additionalProperties", err)) return false;
    } else if (strcmp(key, "items") == 0) {
      if (!check_child(root, value, path, "items", err)) return false;
    } else if (strcmp(key, "enum") == 0) {
      if (!json_is_array(value) || json_array_size(value) == 0)
        return fail_at(err, path, "expected a non-empty list for", key);
    } else if (strcmp(key, "minimum") == 0 || strcmp(key, "maximum") == 0) {
      if (!json_is_number(value)) return fail_at(err, path, "expected a number for", key);
    } else if (strcmp(key, "minItems") == 0 || strcmp(key, "maxItems") == 0 ||
               strcmp(key, "minLength") == 0 || strcmp(key, "maxLength") == 0) {
      if (!json_is_integer(value) || json_integer_value(value) < 0)
        return fail_at(err, path, "expected a non-negative integer for", key);
    } else if (strcmp(key, "$defs") == 0) {
      if (path->len) return fail_at(err, path, "only the root may hold", key);
      if (!json_is_object(value)) return fail_at(err, path, "expected an object for", key);
      const char *name;
      json_t *sub;
      json_object_foreach(value, name, sub) {
        char segment[300];
        snprintf(segment, sizeof segment, "$defs.%s", name);
        if (!check_child(root, sub, path, segment, err)) return false;
      }
    } else if (strcmp(key, "$ref") == 0) {
      if (!resolve_ref(root, json_string_value(value)))
        return fail_at(err, path, "a $ref must name an entry of the root's $defs (#/$defs/NAME):",
                       json_is_string(value) ? json_string_value(value) : "?");
      if (applicator_cycle(root, schema, 0))
        return fail_at(err, path, "references that validate the same value in a cycle:",
                       json_string_value(value));
    } else if (strcmp(key, "allOf") == 0) {
      if (!json_is_array(value) || json_array_size(value) == 0)
        return fail_at(err, path, "expected a non-empty list of schemas for", key);
      size_t i;
      json_t *sub;
      json_array_foreach(value, i, sub) {
        char segment[32];
        snprintf(segment, sizeof segment, "allOf[%zu]", i);
        if (!check_child(root, sub, path, segment, err)) return false;
      }
    } else if (strcmp(key, "if") == 0 || strcmp(key, "then") == 0 || strcmp(key, "else") == 0) {
      if (!json_object_get(schema, "if")) return fail_at(err, path, "no \"if\" for", key);
      if (!check_child(root, value, path, key, err)) return false;
    } else if (strcmp(key, "const") == 0 || strcmp(key, "title") == 0 ||
               strcmp(key, "description") == 0 || strcmp(key, "$schema") == 0) {
      continue; /* const takes any JSON value; the others are annotations */
    } else {
      return fail_at(err, path, "unsupported keyword", key);
    }
  }
  return true;
}

bool vd_json_schema_check(const json_t *schema, vd_error *err) {
  vd_buf path = {0};
  bool ok = check_at(schema, schema, &path, err);
  vd_buf_free(&path);
  return ok;
}

/* ---- validation ---- */

static const char *type_of(const json_t *v) {
  switch (json_typeof(v)) {
    case JSON_OBJECT:
      return "object";
    case JSON_ARRAY:
      return "array";
    case JSON_STRING:
      return "string";
    case JSON_INTEGER:
      return "integer";
    case JSON_REAL:
      return "number";
    case JSON_TRUE:
    case JSON_FALSE:
      return "boolean";
    case JSON_NULL:
      return "null";
  }
  return "unknown";
}

static bool has_type(const json_t *v, const char *name) {
  if (strcmp(name, "number") == 0) return json_is_number(v);
  if (strcmp(name, "integer") == 0) {
    if (json_is_integer(v)) return true;
    /* 3.0 is an integer in JSON Schema. */
    return json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
           isfinite(json_real_value(v));
  }
  return strcmp(type_of(v), name) == 0;
}

static void add(vd_diags *diags, const vd_buf *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add(vd_diags *diags, const vd_buf *path, const char *fmt, ...) {
  char message[VD_ERROR_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  vd_error e;
  vd_error_field(&e, path->len ? path->data : "(root)", "%s", message);
  vd_diags_add(diags, &e);
}

static void validate_at(const json_t *root, const json_t *schema, const json_t *v, vd_buf *path,
                        vd_diags *diags);

static void push_key(vd_buf *path, const char *key) {
  vd_buf_printf(path, "%s%s", path->len ? "." : "", key);
}

static void restore(vd_buf *path, size_t saved) {
  path->len = saved;
  if (path->data) path->data[saved] = '\0';
}

static void validate_object(const json_t *root, const json_t *schema, const json_t *v, vd_buf *path,
                            vd_diags *diags) {
  const json_t *props = json_object_get(schema, "properties");
  const json_t *required = json_object_get(schema, "required");
  const json_t *additional = json_object_get(schema, "additionalProperties");
  size_t i;
  json_t *r;
  json_array_foreach((json_t *)required, i, r) {
    const char *name = json_string_value(r);
    if (name && !json_object_get(v, name)) {
      size_t saved = path->len;
      push_key(path, name);
      add(diags, path, "required field is missing");
      restore(path, saved);
    }
  }
  const char *key;
  json_t *child;
  json_object_foreach((json_t *)v, key, child) {
    const json_t *sub = props ? json_object_get(props, key) : NULL;
    size_t saved = path->len;
    push_key(path, key);
    if (sub) {
      validate_at(root, sub, child, path, diags);
    } else if (json_is_false(additional)) {
      add(diags, path, "unexpected field (allowed: only the declared properties)");
    } else if (json_is_object(additional)) {
      validate_at(root, additional, child, path, diags);
    }
    restore(path, saved);
  }
}

/* The applicators: $ref, allOf and if/then/else (each validates v against further schemas). */
static void validate_applicators(const json_t *root, const json_t *schema, const json_t *v,
                                 vd_buf *path, vd_diags *diags) {
  const json_t *ref = json_object_get(schema, "$ref");
  if (ref) validate_at(root, resolve_ref(root, json_string_value(ref)), v, path, diags);
  size_t i;
  json_t *sub;
  json_array_foreach(json_object_get(schema, "allOf"), i, sub)
      validate_at(root, sub, v, path, diags);
  const json_t *cond = json_object_get(schema, "if");
  if (cond) {
    vd_diags probe = {0};
    validate_at(root, cond, v, path, &probe);
    const json_t *branch = json_object_get(schema, probe.count == 0 ? "then" : "else");
    vd_diags_free(&probe);
    if (branch) validate_at(root, branch, v, path, diags);
  }
}

static void validate_at(const json_t *root, const json_t *schema, const json_t *v, vd_buf *path,
                        vd_diags *diags) {
  if (!schema) return;
  validate_applicators(root, schema, v, path, diags);
  const json_t *constant = json_object_get(schema, "const");
  if (constant && !json_equal(constant, v)) {
    char *want = json_dumps(constant, JSON_COMPACT | JSON_ENCODE_ANY);
    char *got = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    add(diags, path, "expected %s, got %s", want ? want : "?", got ? got : "?");
    free(want);
    free(got);
  }
  const json_t *type = json_object_get(schema, "type");
  if (type) {
    bool ok = false;
    vd_buf expected = {0};
    if (json_is_string(type)) {
      ok = has_type(v, json_string_value(type));
      vd_buf_puts(&expected, json_string_value(type));
    } else {
      size_t i;
      json_t *t;
      json_array_foreach(type, i, t) {
        if (has_type(v, json_string_value(t))) ok = true;
        vd_buf_printf(&expected, "%s%s", i ? " or " : "", json_string_value(t));
      }
    }
    if (!ok) {
      add(diags, path, "expected %s, got %s", expected.data ? expected.data : "?", type_of(v));
      vd_buf_free(&expected);
      return; /* the other keywords would only repeat the mismatch */
    }
    vd_buf_free(&expected);
  }
  const json_t *enumeration = json_object_get(schema, "enum");
  if (enumeration) {
    bool found = false;
    size_t i;
    json_t *e;
    json_array_foreach(enumeration, i, e) {
      if (json_equal(e, v)) found = true;
    }
    if (!found) {
      char *allowed = json_dumps(enumeration, JSON_COMPACT | JSON_ENCODE_ANY);
      char *got = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
      add(diags, path, "%s is not one of %s", got ? got : "?", allowed ? allowed : "?");
      free(allowed);
      free(got);
    }
  }
  if (json_is_number(v)) {
    double x = json_number_value(v);
    const json_t *min = json_object_get(schema, "minimum");
    const json_t *max = json_object_get(schema, "maximum");
    if (min && x < json_number_value(min))
      add(diags, path, "%g is below the minimum %g", x, json_number_value(min));
    if (max && x > json_number_value(max))
      add(diags, path, "%g is above the maximum %g", x, json_number_value(max));
  }
  if (json_is_string(v)) {
    size_t n = vd_utf8_count(json_string_value(v), json_string_length(v));
    const json_t *min = json_object_get(schema, "minLength");
    const json_t *max = json_object_get(schema, "maxLength");
    if (min && (json_int_t)n < json_integer_value(min))
      add(diags, path, "string of %zu characters is shorter than minLength %lld", n,
          (long long)json_integer_value(min));
    if (max && (json_int_t)n > json_integer_value(max))
      add(diags, path, "string of %zu characters is longer than maxLength %lld", n,
          (long long)json_integer_value(max));
  }
  if (json_is_array(v)) {
    size_t n = json_array_size(v);
    const json_t *min = json_object_get(schema, "minItems");
    const json_t *max = json_object_get(schema, "maxItems");
    if (min && (json_int_t)n < json_integer_value(min))
      add(diags, path, "%zu items, fewer than minItems %lld", n,
          (long long)json_integer_value(min));
    if (max && (json_int_t)n > json_integer_value(max))
      add(diags, path, "%zu items, more than maxItems %lld", n, (long long)json_integer_value(max));
    const json_t *items = json_object_get(schema, "items");
    if (items) {
      size_t i;
      json_t *item;
      json_array_foreach(v, i, item) {
        size_t saved = path->len;
        vd_buf_printf(path, "[%zu]", i);
        validate_at(root, items, item, path, diags);
        restore(path, saved);
      }
    }
  }
  if (json_is_object(v)) validate_object(root, schema, v, path, diags);
}

bool vd_json_schema_validate(const json_t *schema, const json_t *instance, vd_diags *diags) {
  size_t before = diags->count;
  vd_buf path = {0};
  validate_at(schema, schema, instance, &path, diags);
  vd_buf_free(&path);
  return diags->count == before;
}
