/* vd_json_hint: the probable cause of a JSON syntax error, in words a person fixing the text by
 * hand understands ("a trailing comma before '}'?", "an unterminated string (no closing '\"')?").
 *
 * jansson says where the parser stopped and what it expected; this looks at that message and at the
 * text around the position to name the usual mistake. Nothing is allocated: the hint is written to
 * the caller's buffer. */
#ifndef VD_JSON_HINT_H
#define VD_JSON_HINT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Fills out (NUL-terminated, truncated to size) with a hint for the error jansson reported while
 * decoding text[0..size) and returns true, or returns false (out = "") when no usual mistake fits.
 */
bool vd_json_error_hint(const char *text, size_t size, const json_error_t *error, char *out,
                        size_t out_size);

#endif
