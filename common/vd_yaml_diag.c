#include "vd_yaml_diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vd_buf.h"
#include "vd_suggest.h"

static bool add_at(const vd_yaml_doc *doc, bool found, int line, int column, vd_diags *diags,
                   const char *message) {
  if (!diags) return false;
  vd_error e;
  if (found)
    vd_error_at(&e, vd_yaml_name(doc), line, column, "%s", message);
  else
    vd_error_at(&e, vd_yaml_name(doc), 0, 0, "%s", message);
  vd_diags_add(diags, &e);
  return false;
}

bool vd_yaml_diag(const vd_yaml_doc *doc, const json_t *container, const char *key, size_t index,
                  vd_diags *diags, const char *fmt, ...) {
  char message[VD_ERROR_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  int line = 0, column = 0;
  bool found = vd_yaml_where(doc, container, key, index, &line, &column);
  return add_at(doc, found, line, column, diags, message);
}

bool vd_yaml_diag_key(const vd_yaml_doc *doc, const json_t *container, const char *key,
                      vd_diags *diags, const char *fmt, ...) {
  char message[VD_ERROR_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  int line = 0, column = 0;
  bool found = vd_yaml_where_key(doc, container, key, &line, &column);
  return add_at(doc, found, line, column, diags, message);
}

bool vd_yaml_check_keys(const vd_yaml_doc *doc, const json_t *object, const char *const *allowed,
                        size_t count, const char *what, vd_diags *diags) {
  bool clean = true;
  const char *key;
  json_t *value;
  json_object_foreach((json_t *)object, key, value) {
    bool known = false;
    for (size_t i = 0; i < count && !known; i++) known = strcmp(key, allowed[i]) == 0;
    if (known) continue;
    clean = false;
    vd_buf expected = {0};
    for (size_t i = 0; i < count; i++) vd_buf_printf(&expected, "%s%s", i ? ", " : "", allowed[i]);
    const char *suggestion = vd_suggest(key, allowed, count);
    if (suggestion)
      vd_yaml_diag_key(doc, object, key, diags,
                       "unknown key \"%s\" in %s (did you mean \"%s\"?; expected one of: %s)", key,
                       what, suggestion, expected.data ? expected.data : "");
    else
      vd_yaml_diag_key(doc, object, key, diags, "unknown key \"%s\" in %s (expected one of: %s)",
                       key, what, expected.data ? expected.data : "");
    vd_buf_free(&expected);
  }
  return clean;
}

const char *vd_yaml_kind(const json_t *value) {
  switch (json_typeof(value)) {
    case JSON_OBJECT:
      return "a mapping";
    case JSON_ARRAY:
      return "a list";
    case JSON_STRING:
      return "a string";
    case JSON_INTEGER:
      return "an integer";
    case JSON_REAL:
      return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
      return "true/false";
    case JSON_NULL:
      return "null";
  }
  return "a value";
}
