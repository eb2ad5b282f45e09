/* vd_json_path: dotted field paths ("subject.recency") into jansson objects.
 *
 * A path is object keys joined by '.'; no array indexing. Ownership: vd_json_get_path returns a
 * borrowed reference; vd_json_set_path steals `value` (also on failure). */
#ifndef VD_JSON_PATH_H
#define VD_JSON_PATH_H

#include <jansson.h>
#include <stdbool.h>

#include "vd_error.h"

/* The value at path, or NULL when a component is absent or not an object. */
json_t *vd_json_get_path(const json_t *root, const char *path);
/* Sets root[path] = value, creating intermediate objects. False (err names the path) when an
 * intermediate value exists and is not an object. */
bool vd_json_set_path(json_t *root, const char *path, json_t *value, vd_error *err);

#endif
