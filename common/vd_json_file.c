#include "vd_json_file.h"

#include <stdlib.h>

#include "vd_buf.h"

json_t *vd_json_load_file(const char *path, size_t max_size, size_t flags, vd_error *err) {
  size_t size;
  char *text = vd_read_file(path, max_size, &size, err);
  if (!text) return NULL;
  json_error_t jerr;
  json_t *v = json_loadb(text, size, flags, &jerr);
  free(text);
  if (!v) vd_error_at(err, path, jerr.line, jerr.column, "not valid JSON: %s", jerr.text);
  return v;
}
