#include "vd_schema.h"

#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vd_buf.h"
#include "vd_cel.h"
#include "vd_hash.h"
#include "vd_suggest.h"
#include "vd_time.h"
#include "vd_utf8.h"
#include "vd_yaml.h"
#include "vd_yaml_diag.h"

struct vd_schema_field {
  char *path;       /* "subject.recency" (owned) */
  const char *name; /* into path, after the section */
  size_t index;
  vd_field_section section;
  vd_field_type type, element;
  char *type_name;
  char *description;
  bool required;
  json_t *default_value; /* owned, normalised; NULL when none */
  bool has_min, has_max;
  double min, max;
  long long max_length; /* strings; -1 none */
  long long max_items;  /* lists; -1 none */
  char **enum_values;
  size_t enum_count;
  char *expected; /* "int in [1, 12]" for messages */
};

struct vd_schema {
  atomic_int references;
  char *name;
  char *description;
  vd_schema_field *fields;
  size_t count;
  /* Every proper prefix of a field path ("subject.address" for subject.address.country). */
  char **groups;
  size_t group_count;
  /* Fields and groups sorted by path, for lookups by binary search. */
  const vd_schema_field **by_path;
  json_t *canonical;
  char version[VD_SHA256_HEX_SIZE];
};

static const char *const section_names[] = {"subject", "candidate", "context"};
enum { SECTION_COUNT = 3 };

/* ---- small helpers ------------------------------------------------------------------------- */

/* Load-time copies; running out of memory while loading a rule file is not recoverable. */
static char *dup_string(const char *s) {
  size_t n = strlen(s) + 1;
  char *copy = malloc(n);
  if (!copy) {
    fputs("verdict: out of memory\n", stderr);
    abort();
  }
  memcpy(copy, s, n);
  return copy;
}

static void format_number(char *buf, size_t size, double v) { snprintf(buf, size, "%.15g", v); }

/* A JSON value as shown in messages, cut at 60 bytes on a character boundary (a message cut
 * inside one is not UTF-8: jansson refuses it and the violation is lost). */
static void render_value(const json_t *value, char *buf, size_t size) {
  char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
  if (!text) {
    snprintf(buf, size, "(unprintable)");
    return;
  }
  if (strlen(text) > 60) {
    char head[58];
    vd_utf8_escape_invalid(text, head, sizeof head);
    snprintf(buf, size, "%s...", head);
  } else {
    snprintf(buf, size, "%s", text);
  }
  free(text);
}

static const char *type_word(vd_field_type t) {
  switch (t) {
    case VD_FIELD_BOOL:
      return "bool";
    case VD_FIELD_INT:
      return "int";
    case VD_FIELD_DOUBLE:
      return "double";
    case VD_FIELD_STRING:
      return "string";
    case VD_FIELD_ENUM:
      return "enum";
    case VD_FIELD_LIST:
      return "list";
    case VD_FIELD_TIMESTAMP:
      return "timestamp";
  }
  return "?";
}

static bool parse_scalar_type(const char *s, vd_field_type *t) {
  static const vd_field_type types[] = {VD_FIELD_BOOL,   VD_FIELD_INT,  VD_FIELD_DOUBLE,
                                        VD_FIELD_STRING, VD_FIELD_ENUM, VD_FIELD_TIMESTAMP};
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
    if (strcmp(s, type_word(types[i])) == 0) {
      *t = types[i];
      return true;
    }
  return false;
}

static const char *const type_spellings[] = {"bool",      "int",          "double",
                                             "string",    "enum",         "timestamp",
                                             "list<int>", "list<string>", "list<double>"};

/* Builds "int in [1, 12]" etc. for the element type (or the scalar field). */
static void describe_scalar(const vd_schema_field *f, vd_field_type t, vd_buf *out) {
  if (t == VD_FIELD_ENUM) {
    vd_buf_puts(out, "one of ");
    for (size_t i = 0; i < f->enum_count; i++)
      vd_buf_printf(out, "%s\"%s\"", i ? ", " : "", f->enum_values[i]);
    return;
  }
  if (t == VD_FIELD_TIMESTAMP) {
    vd_buf_puts(out, "timestamp (RFC 3339, e.g. \"2026-12-03T13:26:45Z\")");
    return;
  }
  vd_buf_puts(out, type_word(t));
  char lo[32], hi[32];
  format_number(lo, sizeof lo, f->min);
  format_number(hi, sizeof hi, f->max);
  if ((t == VD_FIELD_INT || t == VD_FIELD_DOUBLE) && f->has_min && f->has_max)
    vd_buf_printf(out, " in [%s, %s]", lo, hi);
  else if ((t == VD_FIELD_INT || t == VD_FIELD_DOUBLE) && f->has_min)
    vd_buf_printf(out, " >= %s", lo);
  else if ((t == VD_FIELD_INT || t == VD_FIELD_DOUBLE) && f->has_max)
    vd_buf_printf(out, " <= %s", hi);
  if (t == VD_FIELD_STRING && f->max_length >= 0)
    vd_buf_printf(out, " of at most %lld characters", f->max_length);
}

static char *describe_field(const vd_schema_field *f) {
  vd_buf out = {0};
  if (f->type == VD_FIELD_LIST) {
    vd_buf_printf(&out, "%s", f->type_name);
    if (f->max_items >= 0) vd_buf_printf(&out, " of at most %lld items", f->max_items);
    if (f->element == VD_FIELD_ENUM || f->has_min || f->has_max || f->max_length >= 0) {
      vd_buf_puts(&out, " (each ");
      describe_scalar(f, f->element, &out);
      vd_buf_puts(&out, ")");
    }
  } else {
    describe_scalar(f, f->type, &out);
  }
  return vd_buf_take(&out);
}

static void add_field_diag(vd_diags *diags, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void add_field_diag(vd_diags *diags, const char *path, const char *fmt, ...) {
  if (!diags) return;
  char message[VD_ERROR_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  vd_error e;
  vd_error_field(&e, path, "%s", message);
  vd_diags_add(diags, &e);
}

/* Where a value sits in the request: prefix ("subject", "candidates[1]"), then an optional name
 * and list index. Formatted only when there is something to report. */
typedef struct field_path {
  const char *prefix;
  const char *name; /* NULL: none */
  long index;       /* -1: none */
} field_path;

static void format_path(const field_path *p, char *buf, size_t size) {
  int n = snprintf(buf, size, "%s%s%s", p->prefix, p->name ? "." : "", p->name ? p->name : "");
  if (p->index >= 0 && n >= 0 && (size_t)n < size)
    snprintf(buf + n, size - (size_t)n, "[%ld]", p->index);
}

/* ---- checking one value against a field ---------------------------------------------------- */

/* Checks a scalar of type t; returns a new normalised value or NULL (adding a diag at path). */
static json_t *check_scalar(const vd_schema_field *f, vd_field_type t, const json_t *value,
                            const field_path *where, vd_diags *diags) {
  vd_buf expected = {0};
  json_t *result = NULL;
  bool length_error = false;
  switch (t) {
    case VD_FIELD_BOOL:
      if (json_is_boolean(value)) result = json_incref((json_t *)value);
      break;
    case VD_FIELD_INT: {
      double d;
      json_int_t i;
      if (json_is_integer(value)) {
        i = json_integer_value(value);
        d = (double)i;
      } else if (json_is_real(value) && json_real_value(value) == floor(json_real_value(value)) &&
                 fabs(json_real_value(value)) < 9007199254740992.0) {
        d = json_real_value(value);
        i = (json_int_t)d;
      } else {
        break;
      }
      if ((f->has_min && d < f->min) || (f->has_max && d > f->max)) break;
      result = json_integer(i);
      break;
    }
    case VD_FIELD_DOUBLE: {
      if (!json_is_number(value)) break;
      double d = json_number_value(value);
      if (!isfinite(d) || (f->has_min && d < f->min) || (f->has_max && d > f->max)) break;
      result = json_real(d);
      break;
    }
    case VD_FIELD_STRING:
      if (!json_is_string(value)) break;
      if (f->max_length >= 0 &&
          (long long)vd_utf8_count(json_string_value(value), json_string_length(value)) >
              f->max_length) {
        length_error = true;
        break;
      }
      result = json_incref((json_t *)value);
      break;
    case VD_FIELD_ENUM:
      if (!json_is_string(value)) break;
      for (size_t k = 0; k < f->enum_count && !result; k++)
        if (strcmp(json_string_value(value), f->enum_values[k]) == 0)
          result = json_incref((json_t *)value);
      break;
    case VD_FIELD_TIMESTAMP: {
      vd_cel_value parsed;
      if (json_is_string(value) && vd_cel_timestamp_parse(json_string_value(value),
                                                          json_string_length(value), &parsed, NULL))
        result = json_incref((json_t *)value);
      break;
    }
    case VD_FIELD_LIST:
      break;
  }
  if (!result) {
    char path[VD_ERROR_WHERE_MAX];
    format_path(where, path, sizeof path);
    describe_scalar(f, t, &expected);
    char got[80];
    render_value(value, got, sizeof got);
    const char *typo = t == VD_FIELD_ENUM && json_is_string(value)
                           ? vd_suggest(json_string_value(value),
                                        (const char *const *)f->enum_values, f->enum_count)
                           : NULL;
    if (length_error)
      add_field_diag(diags, path, "expected %s, got a string of %zu characters",
                     expected.data ? expected.data : "",
                     vd_utf8_count(json_string_value(value), json_string_length(value)));
    else if (typo)
      add_field_diag(diags, path, "expected %s, got %s (did you mean \"%s\"?)",
                     expected.data ? expected.data : "", got, typo);
    else
      add_field_diag(diags, path, "expected %s, got %s", expected.data ? expected.data : "", got);
  }
  vd_buf_free(&expected);
  return result;
}

static json_t *check_value(const vd_schema_field *f, const json_t *value, const field_path *where,
                           vd_diags *diags) {
  if (f->type != VD_FIELD_LIST) return check_scalar(f, f->type, value, where, diags);
  char got[80];
  char path[VD_ERROR_WHERE_MAX];
  format_path(where, path, sizeof path);
  if (!json_is_array(value)) {
    render_value(value, got, sizeof got);
    add_field_diag(diags, path, "expected %s, got %s", f->expected, got);
    return NULL;
  }
  if (f->max_items >= 0 && (long long)json_array_size(value) > f->max_items) {
    add_field_diag(diags, path, "expected %s, got %zu items", f->expected, json_array_size(value));
    return NULL;
  }
  json_t *out = json_array();
  bool ok = true;
  size_t i;
  json_t *item;
  json_array_foreach(value, i, item) {
    field_path item_where = *where;
    item_where.index = (long)i;
    json_t *checked = check_scalar(f, f->element, item, &item_where, diags);
    if (!checked)
      ok = false;
    else
      json_array_append_new(out, checked);
  }
  if (!ok) {
    json_decref(out);
    return NULL;
  }
  return out;
}

/* ---- loading ------------------------------------------------------------------------------- */

static bool is_identifier(const char *s, size_t n) {
  if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
    return false;
  for (size_t i = 1; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
          (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
      return false;
  return true;
}

/* Checks "section.a.b": every segment an identifier, a known section. */
static bool valid_path(const char *path, vd_field_section *section, const char **why) {
  const char *dot = strchr(path, '.');
  if (!dot) {
    *why = "a field path is SECTION.NAME, e.g. subject.recency";
    return false;
  }
  size_t n = (size_t)(dot - path);
  bool known = false;
  for (int s = 0; s < SECTION_COUNT && !known; s++)
    if (strlen(section_names[s]) == n && strncmp(path, section_names[s], n) == 0) {
      *section = (vd_field_section)s;
      known = true;
    }
  if (!known) {
    *why = strncmp(path, "score.", 6) == 0 ? "score.* is reserved for the model's outputs"
                                           : "a field path starts with subject., candidate. or "
                                             "context.";
    return false;
  }
  const char *p = dot + 1;
  for (;;) {
    const char *next = strchr(p, '.');
    size_t len = next ? (size_t)(next - p) : strlen(p);
    if (!is_identifier(p, len)) {
      *why = "each part of a field path is an identifier (letters, digits, _)";
      return false;
    }
    if (!next) break;
    p = next + 1;
  }
  return true;
}

static const char *const field_keys[] = {"type", "description", "required", "default",  "min",
                                         "max",  "max_length",  "values",   "max_items"};
static const char *const schema_keys[] = {"schema", "description", "fields"};

typedef struct loader {
  const vd_yaml_doc *doc;
  vd_diags *diags;
  size_t errors;
} loader;

#define LOAD_ERROR(L, container, key, index, ...) \
  ((L)->errors++, vd_yaml_diag((L)->doc, container, key, index, (L)->diags, __VA_ARGS__))

static bool read_bound(loader *L, json_t *spec, const char *key, vd_schema_field *f, bool *has,
                       double *bound) {
  json_t *v = json_object_get(spec, key);
  if (!v) return true;
  vd_field_type t = f->type == VD_FIELD_LIST ? f->element : f->type;
  if (t != VD_FIELD_INT && t != VD_FIELD_DOUBLE)
    return LOAD_ERROR(L, spec, key, 0, "%s applies to int and double fields only, not to %s", key,
                      f->type_name);
  if (!json_is_number(v))
    return LOAD_ERROR(L, spec, key, 0, "%s must be a number, got %s", key, vd_yaml_kind(v));
  double d = json_number_value(v);
  if (t == VD_FIELD_INT && d != floor(d))
    return LOAD_ERROR(L, spec, key, 0, "%s of an int field must be a whole number", key);
  *has = true;
  *bound = d;
  return true;
}

static bool read_count(loader *L, json_t *spec, const char *key, bool applies,
                       const char *applies_to, long long *out) {
  json_t *v = json_object_get(spec, key);
  *out = -1;
  if (!v) return true;
  if (!applies) return LOAD_ERROR(L, spec, key, 0, "%s applies to %s fields only", key, applies_to);
  if (!json_is_integer(v) || json_integer_value(v) < 0)
    return LOAD_ERROR(L, spec, key, 0, "%s must be a whole number >= 0", key);
  *out = json_integer_value(v);
  return true;
}

static void free_field(vd_schema_field *f) {
  free(f->path);
  free(f->type_name);
  free(f->description);
  json_decref(f->default_value);
  for (size_t i = 0; i < f->enum_count; i++) free(f->enum_values[i]);
  free(f->enum_values);
  free(f->expected);
}

static bool load_field(loader *L, json_t *fields, const char *path, vd_schema_field *f) {
  size_t errors_before = L->errors;
  memset(f, 0, sizeof *f);
  f->max_length = f->max_items = -1;
  f->path = dup_string(path);
  f->description = dup_string("");
  const char *why = NULL;
  if (!valid_path(path, &f->section, &why)) {
    const char *typo = NULL;
    const char *dot = strchr(path, '.');
    if (dot) {
      char head[32];
      snprintf(head, sizeof head, "%.*s", (int)(dot - path), path);
      typo = vd_suggest(head, section_names, SECTION_COUNT);
    }
    L->errors++;
    if (typo)
      vd_yaml_diag_key(L->doc, fields, path, L->diags, "field \"%s\": %s (did you mean \"%s.\"?)",
                       path, why, typo);
    else
      vd_yaml_diag_key(L->doc, fields, path, L->diags, "field \"%s\": %s", path, why);
    return false;
  }
  f->name = f->path + strlen(section_names[f->section]) + 1;
  json_t *spec = json_object_get(fields, path);
  json_t *shorthand = NULL;
  if (json_is_string(spec)) { /* `subject.id: string` */
    shorthand = json_pack("{sO}", "type", spec);
    spec = shorthand;
  } else if (!json_is_object(spec)) {
    LOAD_ERROR(L, fields, path, 0,
               "field \"%s\" needs a type: write `%s: int` or `%s: { type: int, ... }`, not %s",
               path, path, path, vd_yaml_kind(spec));
    return false;
  }
  char what[VD_ERROR_WHERE_MAX + 8];
  snprintf(what, sizeof what, "field %s", path);
  if (!vd_yaml_check_keys(L->doc, spec, field_keys, sizeof field_keys / sizeof field_keys[0], what,
                          L->diags))
    L->errors++;
  /* Errors inside a shorthand point at the shorthand value itself. */
  json_t *where = shorthand ? fields : spec;
#define WHERE_KEY(k) (shorthand ? path : (k))
  json_t *type = json_object_get(spec, "type");
  if (!type) {
    LOAD_ERROR(L, fields, path, 0,
               "field \"%s\" has no type (bool, int, double, string, enum, "
               "timestamp or list<T>)",
               path);
    json_decref(shorthand);
    return false;
  }
  if (!json_is_string(type)) {
    LOAD_ERROR(L, where, WHERE_KEY("type"), 0, "type must be a string, got %s", vd_yaml_kind(type));
    json_decref(shorthand);
    return false;
  }
  const char *tname = json_string_value(type);
  size_t tlen = strlen(tname);
  bool type_ok;
  if (tlen > 6 && strncmp(tname, "list<", 5) == 0 && tname[tlen - 1] == '>') {
    char inner[32];
    snprintf(inner, sizeof inner, "%.*s", (int)(tlen - 6), tname + 5);
    f->type = VD_FIELD_LIST;
    type_ok = parse_scalar_type(inner, &f->element);
  } else {
    type_ok = parse_scalar_type(tname, &f->type);
    f->element = f->type;
  }
  if (!type_ok) {
    const char *typo =
        vd_suggest(tname, type_spellings, sizeof type_spellings / sizeof type_spellings[0]);
    LOAD_ERROR(L, where, WHERE_KEY("type"), 0,
               "unknown type \"%s\"%s%s%s (expected bool, int, double, string, enum, timestamp or "
               "list<T>)",
               tname, typo ? " (did you mean \"" : "", typo ? typo : "", typo ? "\"?)" : "");
    json_decref(shorthand);
    return false;
  }
  f->type_name = dup_string(tname);
  json_t *description = json_object_get(spec, "description");
  if (description) {
    if (json_is_string(description)) {
      free(f->description);
      f->description = dup_string(json_string_value(description));
    } else {
      LOAD_ERROR(L, spec, "description", 0, "description must be a string, got %s",
                 vd_yaml_kind(description));
    }
  }
  json_t *required = json_object_get(spec, "required");
  if (required) {
    if (json_is_boolean(required))
      f->required = json_is_true(required);
    else
      LOAD_ERROR(L, spec, "required", 0, "required must be true or false, got %s",
                 vd_yaml_kind(required));
  }
  read_bound(L, spec, "min", f, &f->has_min, &f->min);
  read_bound(L, spec, "max", f, &f->has_max, &f->max);
  if (f->has_min && f->has_max && f->min > f->max)
    LOAD_ERROR(L, spec, "min", 0, "min (%g) is greater than max (%g)", f->min, f->max);
  read_count(L, spec, "max_length", f->element == VD_FIELD_STRING, "string", &f->max_length);
  read_count(L, spec, "max_items", f->type == VD_FIELD_LIST, "list", &f->max_items);
  json_t *values = json_object_get(spec, "values");
  if (f->element == VD_FIELD_ENUM) {
    if (!json_is_array(values) || json_array_size(values) == 0) {
      if (values)
        LOAD_ERROR(L, spec, "values", 0,
                   "an enum field needs `values`: a non-empty list of strings");
      else
        LOAD_ERROR(L, fields, path, 0, "an enum field needs `values`: a non-empty list of strings");
    } else {
      f->enum_values = calloc(json_array_size(values), sizeof *f->enum_values);
      size_t i;
      json_t *v;
      json_array_foreach(values, i, v) {
        if (!json_is_string(v)) {
          LOAD_ERROR(L, values, NULL, i, "enum values are strings, got %s (quote it)",
                     vd_yaml_kind(v));
          continue;
        }
        const char *text = json_string_value(v);
        bool duplicate = false;
        for (size_t k = 0; k < f->enum_count && !duplicate; k++)
          duplicate = f->enum_values[k] && strcmp(f->enum_values[k], text) == 0;
        if (duplicate) {
          LOAD_ERROR(L, values, NULL, i, "enum value \"%s\" is listed twice", json_string_value(v));
          continue;
        }
        f->enum_values[f->enum_count++] = dup_string(json_string_value(v));
      }
    }
  } else if (values) {
    LOAD_ERROR(L, spec, "values", 0, "values applies to enum fields only, not to %s", f->type_name);
  }
  f->expected = describe_field(f);
  json_t *def = json_object_get(spec, "default");
  if (def && !json_is_null(def) && L->errors == errors_before) {
    if (f->required) {
      LOAD_ERROR(L, spec, "default", 0,
                 "a required field has no default (drop `required: true` or the default)");
    } else if (f->type == VD_FIELD_TIMESTAMP && json_is_string(def) &&
               strcmp(json_string_value(def), "now") == 0) {
      f->default_value = json_incref(def);
    } else {
      vd_diags found = {0};
      field_path where = {path, NULL, -1};
      f->default_value = check_value(f, def, &where, &found);
      for (size_t i = 0; i < found.count; i++)
        LOAD_ERROR(L, spec, "default", 0, "the default does not fit the field: %s",
                   found.items[i].message);
      vd_diags_free(&found);
    }
  }
#undef WHERE_KEY
  json_decref(shorthand);
  return L->errors == errors_before;
}

/* The canonical JSON of one field: every setting spelt out. */
static json_t *canonical_field(const vd_schema_field *f) {
  json_t *o = json_object();
  json_object_set_new(o, "type", json_string(f->type_name));
  json_object_set_new(o, "required", json_boolean(f->required));
  if (f->description[0]) json_object_set_new(o, "description", json_string(f->description));
  if (f->default_value) json_object_set(o, "default", f->default_value);
  bool integral = f->element == VD_FIELD_INT;
  if (f->has_min)
    json_object_set_new(o, "min", integral ? json_integer((json_int_t)f->min) : json_real(f->min));
  if (f->has_max)
    json_object_set_new(o, "max", integral ? json_integer((json_int_t)f->max) : json_real(f->max));
  if (f->max_length >= 0) json_object_set_new(o, "max_length", json_integer(f->max_length));
  if (f->max_items >= 0) json_object_set_new(o, "max_items", json_integer(f->max_items));
  if (f->enum_count) {
    json_t *values = json_array();
    for (size_t i = 0; i < f->enum_count; i++)
      json_array_append_new(values, json_string(f->enum_values[i]));
    json_object_set_new(o, "values", values);
  }
  return o;
}

static void add_group(vd_schema *s, const char *path, size_t len) {
  for (size_t i = 0; i < s->group_count; i++)
    if (strlen(s->groups[i]) == len && strncmp(s->groups[i], path, len) == 0) return;
  char **grown = realloc(s->groups, (s->group_count + 1) * sizeof *grown);
  if (!grown) return;
  s->groups = grown;
  char *g = malloc(len + 1);
  if (!g) return;
  memcpy(g, path, len);
  g[len] = '\0';
  s->groups[s->group_count++] = g;
}

static int compare_group(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_group(const vd_schema *s, const char *path) {
  return s->group_count &&
         bsearch(&path, s->groups, s->group_count, sizeof *s->groups, compare_group) != NULL;
}

static int compare_field_path(const void *a, const void *b) {
  return strcmp((*(const vd_schema_field *const *)a)->path,
                (*(const vd_schema_field *const *)b)->path);
}

vd_schema *vd_schema_from_yaml(const vd_yaml_doc *doc, const json_t *value, vd_diags *diags) {
  loader L = {.doc = doc, .diags = diags};
  json_t *root = (json_t *)value;
  if (!json_is_object(root)) {
    vd_yaml_diag(doc, NULL, NULL, 0, diags,
                 "a schema is a mapping with `schema: NAME` and `fields:`, got %s",
                 vd_yaml_kind(root));
    return NULL;
  }
  if (!vd_yaml_check_keys(doc, root, schema_keys, sizeof schema_keys / sizeof schema_keys[0],
                          "the schema", diags))
    L.errors++;
  json_t *name = json_object_get(root, "schema");
  if (!json_is_string(name) || !json_string_length(name)) {
    if (name)
      LOAD_ERROR(&L, root, "schema", 0, "schema (the schema's name) must be a non-empty string");
    else
      LOAD_ERROR(&L, NULL, NULL, 0, "missing `schema: NAME` (the schema's name)");
  }
  json_t *description = json_object_get(root, "description");
  if (description && !json_is_string(description))
    LOAD_ERROR(&L, root, "description", 0, "description must be a string, got %s",
               vd_yaml_kind(description));
  json_t *fields = json_object_get(root, "fields");
  if (!json_is_object(fields) || json_object_size(fields) == 0) {
    if (fields)
      LOAD_ERROR(&L, root, "fields", 0,
                 "fields must be a mapping of field paths to types, e.g. `subject.recency: int`");
    else
      LOAD_ERROR(&L, NULL, NULL, 0, "missing `fields:` (the request fields and their types)");
    return NULL;
  }
  vd_schema *s = calloc(1, sizeof *s);
  atomic_init(&s->references, 1);
  s->fields = calloc(json_object_size(fields), sizeof *s->fields);
  const char *path;
  json_t *spec;
  json_object_foreach(fields, path, spec) {
    vd_schema_field *f = &s->fields[s->count];
    if (load_field(&L, fields, path, f)) {
      f->index = s->count++;
    } else {
      free_field(f);
    }
  }
  /* A field cannot also be a group of fields (subject.a and subject.a.b). */
  for (size_t i = 0; i < s->count; i++) {
    const char *p = s->fields[i].path;
    if (!p) continue;
    for (const char *dot = strchr(p, '.'); dot; dot = strchr(dot + 1, '.'))
      add_group(s, p, dot - p);
  }
  if (s->group_count) qsort(s->groups, s->group_count, sizeof *s->groups, compare_group);
  for (size_t i = 0; i < s->count; i++)
    if (is_group(s, s->fields[i].path))
      LOAD_ERROR(&L, fields, s->fields[i].path, 0,
                 "field \"%s\" is also the parent of other fields; a field is either a value or a "
                 "group of fields",
                 s->fields[i].path);
  if (L.errors) {
    vd_schema_free(s);
    return NULL;
  }
  s->by_path = calloc(s->count ? s->count : 1, sizeof(const vd_schema_field *));
  if (!s->by_path) {
    vd_schema_free(s);
    return NULL;
  }
  for (size_t i = 0; i < s->count; i++) s->by_path[i] = &s->fields[i];
  qsort(s->by_path, s->count, sizeof(const vd_schema_field *), compare_field_path);
  s->name = dup_string(json_string_value(name));
  s->description = dup_string(description ? json_string_value(description) : "");
  json_t *canonical_fields = json_object();
  for (size_t i = 0; i < s->count; i++)
    json_object_set_new(canonical_fields, s->fields[i].path, canonical_field(&s->fields[i]));
  s->canonical = json_pack("{sssO}", "schema", s->name, "fields", canonical_fields);
  json_decref(canonical_fields);
  if (s->description[0])
    json_object_set_new(s->canonical, "description", json_string(s->description));
  char *text = json_dumps(s->canonical, JSON_COMPACT | JSON_SORT_KEYS);
  vd_sha256_hex(text, strlen(text), s->version);
  free(text);
  return s;
}

vd_schema *vd_schema_load_string(const char *text, size_t len, const char *name, vd_diags *diags) {
  vd_error e;
  vd_yaml_doc *doc = vd_yaml_load_string(text, len, name, &e);
  if (!doc) {
    if (diags) vd_diags_add(diags, &e);
    return NULL;
  }
  vd_schema *s = vd_schema_from_yaml(doc, vd_yaml_root(doc), diags);
  vd_yaml_free(doc);
  return s;
}

vd_schema *vd_schema_load(const char *path, vd_diags *diags) {
  vd_error e;
  vd_yaml_doc *doc = vd_yaml_load_file(path, &e);
  if (!doc) {
    if (diags) vd_diags_add(diags, &e);
    return NULL;
  }
  vd_schema *s = vd_schema_from_yaml(doc, vd_yaml_root(doc), diags);
  vd_yaml_free(doc);
  return s;
}

vd_schema *vd_schema_retain(vd_schema *schema) {
  if (schema) atomic_fetch_add(&schema->references, 1);
  return schema;
}

void vd_schema_free(vd_schema *s) {
  if (!s || atomic_fetch_sub(&s->references, 1) != 1) return;
  for (size_t i = 0; i < s->count; i++) free_field(&s->fields[i]);
  free(s->fields);
  for (size_t i = 0; i < s->group_count; i++) free(s->groups[i]);
  free(s->groups);
  free(s->by_path);
  free(s->name);
  free(s->description);
  json_decref(s->canonical);
  free(s);
}

/* ---- accessors ----------------------------------------------------------------------------- */

const char *vd_schema_name(const vd_schema *s) { return s->name; }
const char *vd_schema_version(const vd_schema *s) { return s->version; }
const json_t *vd_schema_canonical(const vd_schema *s) { return s->canonical; }
size_t vd_schema_field_count(const vd_schema *s) { return s->count; }
const vd_schema_field *vd_schema_field_at(const vd_schema *s, size_t i) {
  return i < s->count ? &s->fields[i] : NULL;
}
const vd_schema_field *vd_schema_find(const vd_schema *s, const char *path) {
  size_t lo = 0, hi = s->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int order = strcmp(path, s->by_path[mid]->path);
    if (order == 0) return s->by_path[mid];
    if (order < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}
const char *vd_schema_field_path(const vd_schema_field *f) { return f->path; }
size_t vd_schema_field_index(const vd_schema_field *f) { return f->index; }
vd_field_section vd_schema_field_section(const vd_schema_field *f) { return f->section; }
const char *vd_schema_field_name(const vd_schema_field *f) { return f->name; }
vd_field_type vd_schema_field_type(const vd_schema_field *f) { return f->type; }
vd_field_type vd_schema_field_element_type(const vd_schema_field *f) { return f->element; }
const char *vd_schema_field_type_name(const vd_schema_field *f) { return f->type_name; }
const char *vd_schema_field_description(const vd_schema_field *f) { return f->description; }
bool vd_schema_field_required(const vd_schema_field *f) { return f->required; }
const json_t *vd_schema_field_default(const vd_schema_field *f) { return f->default_value; }
bool vd_schema_field_min(const vd_schema_field *f, double *min) {
  if (f->has_min && min) *min = f->min;
  return f->has_min;
}
bool vd_schema_field_max(const vd_schema_field *f, double *max) {
  if (f->has_max && max) *max = f->max;
  return f->has_max;
}
size_t vd_schema_field_enum_count(const vd_schema_field *f) { return f->enum_count; }
const char *vd_schema_field_enum_value(const vd_schema_field *f, size_t i) {
  return i < f->enum_count ? f->enum_values[i] : NULL;
}

/* ---- validation ---------------------------------------------------------------------------- */

typedef struct validation {
  const vd_schema *schema;
  int64_t now_us;
  vd_diags *diags;
  size_t errors;
} validation;

/* Walks a dotted name ("address.country") inside obj; NULL when any step is absent. */
static const json_t *walk(const json_t *obj, const char *name) {
  char part[VD_ERROR_WHERE_MAX];
  while (json_is_object(obj)) {
    const char *dot = strchr(name, '.');
    if (!dot) return json_object_get(obj, name);
    snprintf(part, sizeof part, "%.*s", (int)(dot - name), name);
    obj = json_object_get(obj, part);
    name = dot + 1;
  }
  return NULL;
}

static void place(json_t *obj, const char *name, json_t *value) {
  char part[VD_ERROR_WHERE_MAX];
  for (;;) {
    const char *dot = strchr(name, '.');
    if (!dot) {
      json_object_set_new(obj, name, value);
      return;
    }
    snprintf(part, sizeof part, "%.*s", (int)(dot - name), name);
    json_t *child = json_object_get(obj, part);
    if (!child) {
      child = json_object();
      json_object_set_new(obj, part, child);
    }
    obj = child;
    name = dot + 1;
  }
}

static void suggest_field(const vd_schema *s, vd_field_section section, const char *schema_path,
                          char *buf, size_t size) {
  const char *candidates[256];
  size_t n = 0;
  for (size_t i = 0; i < s->count && n < 256; i++)
    if (s->fields[i].section == section) candidates[n++] = s->fields[i].path;
  const char *best = vd_suggest(schema_path, candidates, n);
  if (best)
    snprintf(buf, size, "unknown field (did you mean %s?)", best);
  else
    snprintf(buf, size, "unknown field (schema %s declares no such field)", s->name);
}

/* Reports keys of obj (at schema path prefix, JSON path display) that no field declares. */
static void check_unknown(validation *V, vd_field_section section, const json_t *obj,
                          const char *schema_prefix, const char *json_prefix) {
  const char *key;
  json_t *value;
  json_object_foreach((json_t *)obj, key, value) {
    char schema_path[VD_ERROR_WHERE_MAX], json_path[VD_ERROR_WHERE_MAX];
    size_t prefix_len = strlen(schema_prefix), key_len = strlen(key);
    if (prefix_len + key_len + 2 > sizeof schema_path)
      key_len = sizeof schema_path - prefix_len - 2;
    memcpy(schema_path, schema_prefix, prefix_len);
    schema_path[prefix_len] = '.';
    memcpy(schema_path + prefix_len + 1, key, key_len);
    schema_path[prefix_len + 1 + key_len] = '\0';
    const vd_schema_field *f = vd_schema_find(V->schema, schema_path);
    if (f && f->section == section) continue;
    snprintf(json_path, sizeof json_path, "%s.%s", json_prefix, key);
    if (is_group(V->schema, schema_path)) {
      if (json_is_object(value)) {
        check_unknown(V, section, value, schema_path, json_path);
      } else if (!json_is_null(value)) {
        char got[80];
        render_value(value, got, sizeof got);
        V->errors++;
        add_field_diag(V->diags, json_path, "expected an object (it holds the fields %s.*), got %s",
                       schema_path, got);
      }
      continue;
    }
    char message[VD_ERROR_MESSAGE_MAX];
    suggest_field(V->schema, section, schema_path, message, sizeof message);
    V->errors++;
    add_field_diag(V->diags, json_path, "%s", message);
  }
}

/* Validates one section object; returns the normalised object (new) or NULL on errors. */
static json_t *validate_section(validation *V, vd_field_section section, const json_t *obj,
                                const char *json_prefix) {
  size_t errors_before = V->errors;
  if (obj && !json_is_object(obj) && !json_is_null(obj)) {
    char got[80];
    render_value(obj, got, sizeof got);
    V->errors++;
    add_field_diag(V->diags, json_prefix, "expected an object, got %s", got);
    return NULL;
  }
  if (json_is_null(obj)) obj = NULL;
  json_t *out = json_object();
  for (size_t i = 0; i < V->schema->count; i++) {
    const vd_schema_field *f = &V->schema->fields[i];
    if (f->section != section) continue;
    field_path where = {json_prefix, f->name, -1};
    const json_t *value = obj ? walk(obj, f->name) : NULL;
    if (value && !json_is_null(value)) {
      json_t *checked = check_value(f, value, &where, V->diags);
      if (checked)
        place(out, f->name, checked);
      else
        V->errors++;
    } else if (f->default_value) {
      if (f->type == VD_FIELD_TIMESTAMP && json_is_string(f->default_value) &&
          strcmp(json_string_value(f->default_value), "now") == 0) {
        char now[40];
        vd_format_rfc3339_us(V->now_us, now, sizeof now);
        place(out, f->name, json_string(now));
      } else {
        place(out, f->name, json_deep_copy(f->default_value));
      }
    } else if (f->required) {
      V->errors++;
      char json_path[VD_ERROR_WHERE_MAX];
      format_path(&where, json_path, sizeof json_path);
      add_field_diag(V->diags, json_path, "missing required field (expected %s)", f->expected);
    }
  }
  if (obj) check_unknown(V, section, obj, section_names[section], json_prefix);
  if (V->errors != errors_before) {
    json_decref(out);
    return NULL;
  }
  return out;
}

const json_t *vd_schema_field_get(const vd_schema_field *f, const json_t *source) {
  if (f->section != VD_SECTION_CANDIDATE)
    source = json_object_get(source, section_names[f->section]);
  if (!source) return NULL;
  if (!strchr(f->name, '.')) return json_object_get(source, f->name);
  return walk(source, f->name);
}

json_t *vd_schema_validate_at(const vd_schema *schema, const json_t *request, int64_t now_us,
                              vd_diags *diags) {
  validation V = {.schema = schema, .now_us = now_us, .diags = diags};
  if (!json_is_object(request)) {
    char got[80];
    render_value(request, got, sizeof got);
    add_field_diag(diags, "request", "expected a JSON object, got %s", got);
    return NULL;
  }
  /* The API's own top-level keys are copied; the sections are rebuilt below. */
  json_t *out = json_object();
  const char *top_key;
  json_t *top_value;
  json_object_foreach((json_t *)request, top_key, top_value) {
    if (strcmp(top_key, "subject") != 0 && strcmp(top_key, "context") != 0 &&
        strcmp(top_key, "candidate") != 0 && strcmp(top_key, "candidates") != 0)
      json_object_set_new(out, top_key, json_deep_copy(top_value));
  }
  json_t *subject =
      validate_section(&V, VD_SECTION_SUBJECT, json_object_get(request, "subject"), "subject");
  if (subject) json_object_set_new(out, "subject", subject);
  json_t *context =
      validate_section(&V, VD_SECTION_CONTEXT, json_object_get(request, "context"), "context");
  if (context) json_object_set_new(out, "context", context);
  const json_t *candidate = json_object_get(request, "candidate");
  if (candidate) {
    json_t *c = validate_section(&V, VD_SECTION_CANDIDATE, candidate, "candidate");
    if (c) json_object_set_new(out, "candidate", c);
  }
  const json_t *candidates = json_object_get(request, "candidates");
  if (candidates) {
    if (!json_is_array(candidates)) {
      char got[80];
      render_value(candidates, got, sizeof got);
      V.errors++;
      add_field_diag(diags, "candidates", "expected a list of candidate objects, got %s", got);
    } else {
      json_t *list = json_array();
      size_t i;
      json_t *item;
      json_array_foreach(candidates, i, item) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "candidates[%zu]", i);
        if (!json_is_object(item)) {
          char got[80];
          render_value(item, got, sizeof got);
          V.errors++;
          add_field_diag(diags, prefix, "expected a candidate object, got %s", got);
          continue;
        }
        json_t *c = validate_section(&V, VD_SECTION_CANDIDATE, item, prefix);
        if (c) json_array_append_new(list, c);
      }
      json_object_set_new(out, "candidates", list);
    }
  }
  if (V.errors) {
    json_decref(out);
    return NULL;
  }
  return out;
}

json_t *vd_schema_validate(const vd_schema *schema, const json_t *request, vd_diags *diags) {
  return vd_schema_validate_at(schema, request, vd_wall_us(), diags);
}
