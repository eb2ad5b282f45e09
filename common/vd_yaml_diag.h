/* vd_yaml_diag: collecting many positioned mistakes from one YAML document into a vd_diags list
 * (schema, rule and config loaders report every error, not only the first).
 *
 * Nothing here owns memory beyond what vd_diags_add copies into the list. */
#ifndef VD_YAML_DIAG_H
#define VD_YAML_DIAG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "vd_error.h"
#include "vd_yaml.h"

/* Appends "file:line:col: message" for the value container[key] / container[index] (see
 * vd_yaml_error). diags may be NULL. Always returns false. */
bool vd_yaml_diag(const vd_yaml_doc *doc, const json_t *container, const char *key, size_t index,
                  vd_diags *diags, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* The same at the position of the KEY of container[key] (for unknown or misplaced keys). */
bool vd_yaml_diag_key(const vd_yaml_doc *doc, const json_t *container, const char *key,
                      vd_diags *diags, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Reports every key of `object` not in allowed[0..count) at its key position:
 *   unknown key "feilds" in schema (did you mean "fields"?; expected one of: schema, fields)
 * `what` names the mapping ("schema", "rule opted-out"). Returns true when all keys are known. */
bool vd_yaml_check_keys(const vd_yaml_doc *doc, const json_t *object, const char *const *allowed,
                        size_t count, const char *what, vd_diags *diags);
/* A short name of a JSON value's YAML kind for messages: "a mapping", "a list", "a string",
 * "an integer", "a number", "true/false", "null". */
const char *vd_yaml_kind(const json_t *value);

#endif
