#include "vd_features.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vd_buf.h"
#include "vd_json_path.h"
#include "vd_number.h"
#include "vd_utf8.h"

typedef enum missing_policy {
  MISSING_NATIVE,
  MISSING_ERROR,
  MISSING_IMPUTE,
  MISSING_CATEGORY
} missing_policy;
typedef enum unknown_policy { UNKNOWN_OTHER, UNKNOWN_ZERO, UNKNOWN_ERROR } unknown_policy;

typedef struct feature {
  char *name;
  char *source;
  char *column;
  vd_feature_encoding encoding;
  missing_policy missing;
  double impute;
  unknown_policy unknown;
  char **categories;
  size_t category_count;
  size_t first_column; /* index of its first encoded column */
  size_t width;        /* number of encoded columns */
} feature;

struct vd_features {
  feature *items;
  size_t count;
  char **arms;
  size_t arm_count;
  char **column_names;
  size_t *column_feature;
  size_t base_width;
  size_t width;
};

static const char *const encoding_names[] = {"numeric", "bool", "enum"};
static const char *const missing_names[] = {"native", "error", "impute", "category"};
static const char *const unknown_names[] = {"other", "zero", "error"};

static bool pick(const json_t *value, const char *const *names, size_t count, int *out) {
  if (!json_is_string(value)) return false;
  for (size_t i = 0; i < count; i++)
    if (strcmp(json_string_value(value), names[i]) == 0) {
      *out = (int)i;
      return true;
    }
  return false;
}

static char *join_names(const char *const *names, size_t count) {
  vd_buf b = {0};
  for (size_t i = 0; i < count; i++) vd_buf_printf(&b, "%s%s", i ? ", " : "", names[i]);
  return vd_buf_take(&b);
}

static bool fail_choice(vd_error *err, const char *where, size_t index, const char *key,
                        const char *const *names, size_t count, const json_t *got) {
  char *list = join_names(names, count);
  char *text = json_dumps(got, JSON_ENCODE_ANY);
  char path[VD_ERROR_WHERE_MAX];
  snprintf(path, sizeof path, "%s[%zu].%s", where, index, key);
  vd_error_field(err, path, "expected one of %s, got %s", list ? list : "?", text ? text : "?");
  free(list);
  free(text);
  return false;
}

static bool field_error(vd_error *err, const char *where, size_t index, const char *key,
                        const char *message) {
  char path[VD_ERROR_WHERE_MAX];
  if (key)
    snprintf(path, sizeof path, "%s[%zu].%s", where, index, key);
  else
    snprintf(path, sizeof path, "%s[%zu]", where, index);
  return vd_error_field(err, path, "%s", message);
}

static bool valid_source(const char *s) {
  /* identifiers joined by dots, at least two components (section.field) */
  size_t parts = 0;
  const char *p = s;
  while (*p) {
    const char *start = p;
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_')) return false;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
           *p == '_')
      p++;
    if (p == start) return false;
    parts++;
    if (*p == '.') {
      p++;
      if (!*p) return false;
    } else if (*p) {
      return false;
    }
  }
  return parts >= 2;
}

static bool parse_feature(const json_t *spec, size_t index, const char *where, feature *f,
                          vd_error *err) {
  if (!json_is_object(spec)) return field_error(err, where, index, NULL, "expected a mapping");
  static const char *const known[] = {"name",   "source",  "column",     "encoding", "missing",
                                      "impute", "unknown", "categories", "columns"};
  const char *key;
  json_t *value;
  json_object_foreach((json_t *)spec, key, value) {
    bool ok = false;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
      ok = ok || strcmp(key, known[i]) == 0;
    if (!ok) return field_error(err, where, index, key, "unknown key");
  }
  const json_t *name = json_object_get(spec, "name");
  if (!json_is_string(name) || !json_string_length(name))
    return field_error(err, where, index, "name", "expected a non-empty string");
  const json_t *source = json_object_get(spec, "source");
  if (!json_is_string(source) || !valid_source(json_string_value(source)))
    return field_error(err, where, index, "source",
                       "expected a dotted request field path such as subject.recency");
  const json_t *column = json_object_get(spec, "column");
  if (column && !json_is_string(column))
    return field_error(err, where, index, "column", "expected a string");
  int encoding;
  if (!pick(json_object_get(spec, "encoding"), encoding_names, 3, &encoding))
    return fail_choice(
        err, where, index, "encoding", encoding_names, 3,
        json_object_get(spec, "encoding") ? json_object_get(spec, "encoding") : json_null());
  f->encoding = (vd_feature_encoding)encoding;
  f->name = strdup(json_string_value(name));
  f->source = strdup(json_string_value(source));
  f->column = strdup(column ? json_string_value(column) : json_string_value(name));
  if (!f->name || !f->source || !f->column) return vd_error_set(err, "out of memory");

  int missing = MISSING_NATIVE;
  const json_t *m = json_object_get(spec, "missing");
  if (m && !pick(m, missing_names, 4, &missing))
    return fail_choice(err, where, index, "missing", missing_names, 4, m);
  f->missing = (missing_policy)missing;
  if (f->missing == MISSING_CATEGORY && f->encoding != VD_ENCODING_ENUM)
    return field_error(err, where, index, "missing", "`category` applies to enum features only");
  if (f->missing == MISSING_IMPUTE && f->encoding == VD_ENCODING_ENUM)
    return field_error(err, where, index, "missing",
                       "`impute` applies to numeric and bool features (use `category`)");
  const json_t *impute = json_object_get(spec, "impute");
  if (f->missing == MISSING_IMPUTE) {
    if (!json_is_number(impute))
      return field_error(err, where, index, "impute", "expected a number (missing: impute)");
    f->impute = json_number_value(impute);
  } else if (impute) {
    return field_error(err, where, index, "impute", "only allowed with missing: impute");
  }

  const json_t *categories = json_object_get(spec, "categories");
  const json_t *unknown = json_object_get(spec, "unknown");
  if (f->encoding != VD_ENCODING_ENUM) {
    if (categories) return field_error(err, where, index, "categories", "only for enum features");
    if (unknown) return field_error(err, where, index, "unknown", "only for enum features");
    f->width = 1;
    return true;
  }
  int unknown_policy = UNKNOWN_ERROR;
  if (!unknown || !pick(unknown, unknown_names, 3, &unknown_policy))
    return fail_choice(err, where, index, "unknown", unknown_names, 3,
                       unknown ? unknown : json_null());
  f->unknown = (enum unknown_policy)unknown_policy;
  if (!json_is_array(categories) || json_array_size(categories) == 0)
    return field_error(err, where, index, "categories", "expected a non-empty list of strings");
  f->category_count = json_array_size(categories);
  f->categories = calloc(f->category_count, sizeof *f->categories);
  if (!f->categories) return vd_error_set(err, "out of memory");
  for (size_t i = 0; i < f->category_count; i++) {
    const json_t *c = json_array_get(categories, i);
    char path[VD_ERROR_WHERE_MAX];
    snprintf(path, sizeof path, "%s[%zu].categories[%zu]", where, index, i);
    if (!json_is_string(c) || !json_string_length(c))
      return vd_error_field(err, path, "expected a non-empty string");
    for (size_t j = 0; j < i; j++)
      if (strcmp(f->categories[j], json_string_value(c)) == 0)
        return vd_error_field(err, path, "duplicate category \"%s\"", json_string_value(c));
    f->categories[i] = strdup(json_string_value(c));
    if (!f->categories[i]) return vd_error_set(err, "out of memory");
  }
  f->width = f->category_count + (f->unknown == UNKNOWN_OTHER) + (f->missing == MISSING_CATEGORY);
  return true;
}

static char *column_name(const feature *f, size_t k) {
  vd_buf b = {0};
  if (f->encoding != VD_ENCODING_ENUM)
    vd_buf_puts(&b, f->name);
  else if (k < f->category_count)
    vd_buf_printf(&b, "%s=%s", f->name, f->categories[k]);
  else if (f->unknown == UNKNOWN_OTHER && k == f->category_count)
    vd_buf_printf(&b, "%s=other", f->name);
  else
    vd_buf_printf(&b, "%s=missing", f->name);
  return vd_buf_take(&b);
}

vd_features *vd_features_parse(const json_t *features, const json_t *arms, const char *where,
                               vd_error *err) {
  if (!json_is_array(features) || json_array_size(features) == 0) {
    vd_error_field(err, where, "expected a non-empty list of features");
    return NULL;
  }
  vd_features *fs = calloc(1, sizeof *fs);
  if (!fs) return NULL;
  fs->count = json_array_size(features);
  fs->items = calloc(fs->count, sizeof *fs->items);
  if (!fs->items) goto oom;
  for (size_t i = 0; i < fs->count; i++) {
    feature *f = &fs->items[i];
    if (!parse_feature(json_array_get(features, i), i, where, f, err)) goto fail;
    for (size_t j = 0; j < i; j++)
      if (strcmp(fs->items[j].name, f->name) == 0) {
        field_error(err, where, i, "name", "duplicate feature name");
        goto fail;
      }
    f->first_column = fs->base_width;
    fs->base_width += f->width;
  }
  if (arms) {
    if (!json_is_array(arms) || json_array_size(arms) == 0) {
      vd_error_field(err, "treatment.arms", "expected a non-empty list of strings");
      goto fail;
    }
    fs->arm_count = json_array_size(arms);
    fs->arms = calloc(fs->arm_count, sizeof *fs->arms);
    if (!fs->arms) goto oom;
    for (size_t i = 0; i < fs->arm_count; i++) {
      const json_t *a = json_array_get(arms, i);
      if (!json_is_string(a) || !json_string_length(a)) {
        vd_error_field(err, "treatment.arms", "entry %zu: expected a non-empty string", i);
        goto fail;
      }
      for (size_t j = 0; j < i; j++)
        if (strcmp(fs->arms[j], json_string_value(a)) == 0) {
          vd_error_field(err, "treatment.arms", "duplicate arm \"%s\"", json_string_value(a));
          goto fail;
        }
      fs->arms[i] = strdup(json_string_value(a));
      if (!fs->arms[i]) goto oom;
    }
  }
  fs->width = fs->base_width + fs->arm_count;
  fs->column_names = calloc(fs->width, sizeof *fs->column_names);
  fs->column_feature = calloc(fs->width, sizeof *fs->column_feature);
  if (!fs->column_names || !fs->column_feature) goto oom;
  for (size_t i = 0; i < fs->count; i++)
    for (size_t k = 0; k < fs->items[i].width; k++) {
      size_t c = fs->items[i].first_column + k;
      fs->column_feature[c] = i;
      if (!(fs->column_names[c] = column_name(&fs->items[i], k))) goto oom;
    }
  for (size_t a = 0; a < fs->arm_count; a++) {
    vd_buf b = {0};
    vd_buf_printf(&b, "treatment=%s", fs->arms[a]);
    fs->column_feature[fs->base_width + a] = fs->count;
    if (!(fs->column_names[fs->base_width + a] = vd_buf_take(&b))) goto oom;
  }
  /* If a manifest carries `columns`, they must be what this encoder produces. */
  for (size_t i = 0; i < fs->count; i++) {
    const json_t *cols = json_object_get(json_array_get(features, i), "columns");
    if (!cols) continue;
    bool same = json_is_array(cols) && json_array_size(cols) == fs->items[i].width;
    for (size_t k = 0; same && k < fs->items[i].width; k++)
      same = json_is_string(json_array_get(cols, k)) &&
             strcmp(json_string_value(json_array_get(cols, k)),
                    fs->column_names[fs->items[i].first_column + k]) == 0;
    if (!same) {
      field_error(err, where, i, "columns", "do not match the feature's encoding");
      goto fail;
    }
  }
  return fs;
oom:
  vd_error_set(err, "out of memory");
fail:
  vd_features_free(fs);
  return NULL;
}

void vd_features_free(vd_features *fs) {
  if (!fs) return;
  for (size_t i = 0; i < fs->count && fs->items; i++) {
    feature *f = &fs->items[i];
    free(f->name);
    free(f->source);
    free(f->column);
    for (size_t k = 0; k < f->category_count && f->categories; k++) free(f->categories[k]);
    free(f->categories);
  }
  free(fs->items);
  for (size_t a = 0; a < fs->arm_count && fs->arms; a++) free(fs->arms[a]);
  free(fs->arms);
  for (size_t c = 0; c < fs->width && fs->column_names; c++) free(fs->column_names[c]);
  free(fs->column_names);
  free(fs->column_feature);
  free(fs);
}

json_t *vd_features_to_json(const vd_features *fs) {
  json_t *list = json_array();
  for (size_t i = 0; i < fs->count; i++) {
    const feature *f = &fs->items[i];
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(f->name));
    json_object_set_new(o, "source", json_string(f->source));
    json_object_set_new(o, "column", json_string(f->column));
    json_object_set_new(o, "encoding", json_string(encoding_names[f->encoding]));
    json_object_set_new(o, "missing", json_string(missing_names[f->missing]));
    if (f->missing == MISSING_IMPUTE) json_object_set_new(o, "impute", json_real(f->impute));
    if (f->encoding == VD_ENCODING_ENUM) {
      json_t *cats = json_array();
      for (size_t k = 0; k < f->category_count; k++)
        json_array_append_new(cats, json_string(f->categories[k]));
      json_object_set_new(o, "categories", cats);
      json_object_set_new(o, "unknown", json_string(unknown_names[f->unknown]));
    }
    json_t *cols = json_array();
    for (size_t k = 0; k < f->width; k++)
      json_array_append_new(cols, json_string(fs->column_names[f->first_column + k]));
    json_object_set_new(o, "columns", cols);
    json_array_append_new(list, o);
  }
  return list;
}

size_t vd_features_count(const vd_features *fs) { return fs->count; }
const char *vd_features_name(const vd_features *fs, size_t i) { return fs->items[i].name; }
const char *vd_features_source(const vd_features *fs, size_t i) { return fs->items[i].source; }
const char *vd_features_csv_column(const vd_features *fs, size_t i) { return fs->items[i].column; }
vd_feature_encoding vd_features_encoding(const vd_features *fs, size_t i) {
  return fs->items[i].encoding;
}
size_t vd_features_category_count(const vd_features *fs, size_t i) {
  return fs->items[i].category_count;
}
const char *vd_features_category(const vd_features *fs, size_t i, size_t k) {
  return fs->items[i].categories[k];
}
size_t vd_features_width(const vd_features *fs) { return fs->width; }
size_t vd_features_base_width(const vd_features *fs) { return fs->base_width; }
const char *vd_features_column_name(const vd_features *fs, size_t c) { return fs->column_names[c]; }
size_t vd_features_column_feature(const vd_features *fs, size_t c) { return fs->column_feature[c]; }
size_t vd_features_arm_count(const vd_features *fs) { return fs->arm_count; }
const char *vd_features_arm(const vd_features *fs, size_t a) { return fs->arms[a]; }

static bool encode_missing(const feature *f, float *out, vd_error *err) {
  switch (f->missing) {
    case MISSING_NATIVE:
      for (size_t k = 0; k < f->width; k++) out[k] = NAN;
      return true;
    case MISSING_IMPUTE:
      out[0] = (float)f->impute;
      return true;
    case MISSING_CATEGORY:
      for (size_t k = 0; k < f->width; k++) out[k] = 0.0f;
      out[f->width - 1] = 1.0f;
      return true;
    case MISSING_ERROR:
      break;
  }
  return vd_error_field(err, f->source, "missing, and feature %s does not allow missing values",
                        f->name);
}

static bool encode_one(const feature *f, const json_t *v, float *out, vd_error *err) {
  if (!v || json_is_null(v)) return encode_missing(f, out, err);
  switch (f->encoding) {
    case VD_ENCODING_NUMERIC:
      if (!json_is_number(v)) break;
      out[0] = (float)json_number_value(v);
      if (!isfinite(out[0]))
        return vd_error_field(
            err, f->source,
            "%g is beyond what the model reads (a float, at most %g) for feature %s",
            json_number_value(v), (double)FLT_MAX, f->name);
      return true;
    case VD_ENCODING_BOOL:
      if (json_is_boolean(v)) {
        out[0] = json_is_true(v) ? 1.0f : 0.0f;
        return true;
      }
      if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1)) {
        out[0] = (float)json_integer_value(v);
        return true;
      }
      break;
    case VD_ENCODING_ENUM: {
      if (!json_is_string(v)) break;
      const char *s = json_string_value(v);
      for (size_t k = 0; k < f->width; k++) out[k] = 0.0f;
      for (size_t k = 0; k < f->category_count; k++)
        if (strcmp(s, f->categories[k]) == 0) {
          out[k] = 1.0f;
          return true;
        }
      if (f->unknown == UNKNOWN_OTHER) {
        out[f->category_count] = 1.0f;
        return true;
      }
      if (f->unknown == UNKNOWN_ZERO) return true;
      char *list = join_names((const char *const *)f->categories, f->category_count);
      vd_error_field(err, f->source, "category \"%s\" is not one of %s (feature %s)", s,
                     list ? list : "?", f->name);
      free(list);
      return false;
    }
  }
  static const char *const wanted[] = {"a number", "a bool", "a string"};
  return vd_error_field(err, f->source, "expected %s for feature %s (%s encoding)",
                        wanted[f->encoding], f->name, encoding_names[f->encoding]);
}

bool vd_features_encode(const vd_features *fs, const json_t *request, float *out, vd_error *err) {
  for (size_t i = 0; i < fs->count; i++) {
    const feature *f = &fs->items[i];
    if (!encode_one(f, vd_json_get_path(request, f->source), out + f->first_column, err))
      return false;
  }
  return true;
}

bool vd_features_set_treatment(const vd_features *fs, const char *treatment, const char *control,
                               float *out, vd_error *err) {
  bool found = control && strcmp(treatment, control) == 0;
  for (size_t a = 0; a < fs->arm_count; a++) {
    bool on = strcmp(treatment, fs->arms[a]) == 0;
    out[fs->base_width + a] = on ? 1.0f : 0.0f;
    found = found || on;
  }
  if (!found)
    return vd_error_set(err,
                        "treatment \"%s\" is neither an arm of the model nor its control \"%s\"",
                        treatment, control ? control : "");
  return true;
}

bool vd_features_bind_csv(const vd_features *fs, const char *const *header, size_t count,
                          const char *file, size_t *column_of, vd_error *err) {
  for (size_t i = 0; i < fs->count; i++) {
    column_of[i] = count;
    for (size_t c = 0; c < count; c++)
      if (strcmp(header[c], fs->items[i].column) == 0) column_of[i] = c;
    if (column_of[i] == count)
      return vd_error_at(err, file, 1, 0, "no column \"%s\" (feature %s) in the header",
                         fs->items[i].column, fs->items[i].name);
  }
  return true;
}

json_t *vd_features_csv_request(const vd_features *fs, const size_t *column_of,
                                const char *const *cells, size_t count, const char *file,
                                size_t line, vd_error *err) {
  json_t *request = json_object();
  for (size_t i = 0; i < fs->count; i++) {
    const feature *f = &fs->items[i];
    if (column_of[i] >= count) {
      vd_error_at(err, file, (int)line, 0, "the row has %zu cells, column %s is missing", count,
                  f->column);
      json_decref(request);
      return NULL;
    }
    const char *cell = cells[column_of[i]];
    if (!*cell) continue; /* empty cell: the field is absent */
    json_t *value = NULL;
    if (f->encoding == VD_ENCODING_NUMERIC) {
      /* read as a JSON body's number is (vd_number): training and serving agree on the text */
      vd_number n;
      vd_error why = {0};
      if (!vd_number_parse(cell, strlen(cell), &n, &why)) {
        char shown[65]; /* cut on a character boundary, invalid bytes as \xHH */
        vd_utf8_escape_invalid(cell, shown, sizeof shown);
        vd_error_at(err, file, (int)line, 0, "column %s: \"%s\" is not a number: %s", f->column,
                    shown, why.message);
        json_decref(request);
        return NULL;
      }
      value = json_real(n.real);
    } else if (f->encoding == VD_ENCODING_BOOL) {
      if (strcmp(cell, "1") == 0 || strcmp(cell, "true") == 0)
        value = json_true();
      else if (strcmp(cell, "0") == 0 || strcmp(cell, "false") == 0)
        value = json_false();
      else {
        vd_error_at(err, file, (int)line, 0, "column %s: \"%s\" is not 1/0/true/false", f->column,
                    cell);
        json_decref(request);
        return NULL;
      }
    } else {
      value = json_string(cell);
    }
    if (!vd_json_set_path(request, f->source, value, err)) {
      json_decref(request);
      return NULL;
    }
  }
  return request;
}
