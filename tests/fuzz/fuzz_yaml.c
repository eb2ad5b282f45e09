/* Fuzzes the strict YAML loader and its position look-ups over arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>

#include "vd_yaml.h"

static void visit(const vd_yaml_doc *doc, const json_t *node) {
  int line, column;
  if (json_is_object(node)) {
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)node, key, value) {
      vd_yaml_where(doc, node, key, 0, &line, &column);
      vd_yaml_where_key(doc, node, key, &line, &column);
      if (json_is_string(value))
        vd_yaml_where_in_scalar(doc, node, key, 0, json_string_length(value), &line, &column);
      visit(doc, value);
    }
  } else if (json_is_array(node)) {
    for (size_t i = 0; i < json_array_size(node); i++) {
      vd_yaml_where(doc, node, NULL, i, &line, &column);
      visit(doc, json_array_get(node, i));
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  vd_error err;
  vd_yaml_doc *doc = vd_yaml_load_string((const char *)data, size, "fuzz.yaml", &err);
  if (!doc) return 0;
  visit(doc, vd_yaml_root(doc));
  size_t len;
  for (int line = 0; line < 4; line++) vd_yaml_source_line(doc, line, &len);
  vd_yaml_free(doc);
  return 0;
}
