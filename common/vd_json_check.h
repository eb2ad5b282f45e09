/* vd_json_check: is a text exactly one JSON object, as jansson would accept it — without
 * building it.
 *
 * For text that is served as it is stored (the decision log's listing copies stored traces into
 * its response): a damaged or forged row must be an error, not invalid JSON or extra records in
 * the answer, and parsing each row into a tree only to check it would cost what serving the
 * stored text saves. The grammar is RFC 8259's with jansson's defaults: strings of valid UTF-8
 * (vd_utf8), escapes as the RFC lists them, no \u0000, surrogates only in pairs, nesting at most
 * VD_JSON_CHECK_MAX_DEPTH (jansson's own limit), nothing but white space after the object.
 *
 * No allocation; the text is borrowed, and *value points into it. */
#ifndef VD_JSON_CHECK_H
#define VD_JSON_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "vd_error.h"

enum { VD_JSON_CHECK_MAX_DEPTH = 2048 };

/* True when text[0..len) is one JSON object. When key is not NULL, *value and *value_len get the
 * raw bytes (between the quotes, escapes not decoded) of the string value of the object's own
 * member `key` (the last one, as jansson keeps the last of duplicate keys), or NULL/0 when there
 * is none or it is not a string. False with err saying what is wrong and at which byte. */
bool vd_json_check_object(const char *text, size_t len, const char *key, const char **value,
                          size_t *value_len, vd_error *err);

#endif
