/* vd_yaml: the strict YAML loader behind every YAML file verdict reads (schemas, rules, config,
 * training specs, deployments).
 *
 * It turns one YAML document into a jansson value and remembers where every value came from, so
 * that any later check can name file:line:column. It refuses what makes YAML surprising:
 *   - duplicate keys, anchors and aliases, tags, more than one document, non-string keys;
 *   - only `true` and `false` are booleans (`yes`, `no`, `on`, `off` stay strings);
 *   - `null`, `~` and an empty value are null;
 *   - unquoted decimal integers become json integers (a leading zero, as in `007`, is refused:
 *     quote it if it is a string), unquoted decimals with a point or exponent become json reals;
 *   - every quoted or block scalar is a string.
 *
 * Ownership: a vd_yaml_doc owns its json tree and its copy of the source text; values borrowed
 * from it (vd_yaml_root) live until vd_yaml_free. Take json_incref() to keep a value longer.
 * A loaded document is read-only and may be shared between threads.
 */
#ifndef VD_YAML_H
#define VD_YAML_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "vd_error.h"

typedef struct vd_yaml_doc vd_yaml_doc;

/* Files larger than this are refused (no configuration or rule file is anywhere near it). */
enum { VD_YAML_MAX_BYTES = 16 * 1024 * 1024 };

/* Loads a file. On failure returns NULL with err set to file:line:col and why. */
vd_yaml_doc *vd_yaml_load_file(const char *path, vd_error *err);
/* Loads text; `name` is used as the file name in positions and errors. */
vd_yaml_doc *vd_yaml_load_string(const char *text, size_t len, const char *name, vd_error *err);
void vd_yaml_free(vd_yaml_doc *doc);

/* The document's root value (borrowed). An empty document is json null. */
json_t *vd_yaml_root(const vd_yaml_doc *doc);
/* The file name given at load. */
const char *vd_yaml_name(const vd_yaml_doc *doc);

/* Position (1-based) of the value container[key] (container is an object) or container[index]
 * (an array; key NULL). container NULL asks for the root. False when unknown. */
bool vd_yaml_where(const vd_yaml_doc *doc, const json_t *container, const char *key, size_t index,
                   int *line, int *column);
/* Position of the key itself of container[key]. */
bool vd_yaml_where_key(const vd_yaml_doc *doc, const json_t *container, const char *key, int *line,
                       int *column);
/* Position of byte `offset` inside the string scalar at container[key] / container[index],
 * for errors inside an expression string (plain, quoted, or block `|` / `>` scalars). */
bool vd_yaml_where_in_scalar(const vd_yaml_doc *doc, const json_t *container, const char *key,
                             size_t index, size_t offset, int *line, int *column);
/* Sets err to the position of container[key] / container[index] and the message; returns false.
 * When the position is unknown, the error carries the file name only. */
bool vd_yaml_error(const vd_yaml_doc *doc, const json_t *container, const char *key, size_t index,
                   vd_error *err, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* The text of source line `line` (1-based) without its newline, for printing under an error;
 * *length gets its length. NULL when out of range. Borrowed from the document. */
const char *vd_yaml_source_line(const vd_yaml_doc *doc, int line, size_t *length);

#endif
