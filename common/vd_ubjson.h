/* vd_ubjson: reads Universal Binary JSON (https://ubjson.org, draft 12) into jansson values — the
 * binary form of XGBoost's JSON model (a model saved as `*.ubj`, XGBoost >= 1.6), a third of the
 * size of the text form and read without parsing decimal numbers.
 *
 * Supported: null (Z), no-op (N, skipped), true/false (T/F), integers (i, U, I, l, L: big-endian,
 * to json_integer), float32/float64 (d, D: to json_real, a float32 exactly; NaN and infinities
 * are refused, as JSON has none), char (C), strings
 * (S, UTF-8 checked), arrays and objects, with or without the optimised `$` type and `#` count.
 * Not supported (a clear error): high-precision numbers (H), which XGBoost does not write, and
 * object keys holding a NUL byte (JSON text with them does not load in jansson either).
 * Limits: nesting depth VD_UBJSON_MAX_DEPTH; every count and length is checked against the bytes
 * left, so a corrupt length cannot make it allocate more than the input justifies. Elements that
 * take no bytes (a typed array `[$Z#`, `[$T#`, `[$F#` of null or booleans) are bounded in total,
 * over the whole input, to VD_UBJSON_ZERO_PAYLOAD_PER_BYTE per input byte: nested counts of them
 * would otherwise multiply (362 bytes reached 650 MB).
 *
 * Errors say where: "byte 1234: string length -1 is negative" (err->message; with
 * vd_ubjson_load_file, err->file is the path).
 *
 * Ownership: both functions return a new reference (json_decref it), or NULL with err set. */
#ifndef VD_UBJSON_H
#define VD_UBJSON_H

#include <jansson.h>
#include <stddef.h>

#include "vd_error.h"

enum { VD_UBJSON_MAX_DEPTH = 128, VD_UBJSON_ZERO_PAYLOAD_PER_BYTE = 16 };

/* Decodes exactly one value filling data[0 .. len) (trailing bytes are an error). */
json_t *vd_ubjson_loadb(const void *data, size_t len, vd_error *err);
/* Reads the file (at most max_size bytes) and decodes it. */
json_t *vd_ubjson_load_file(const char *path, size_t max_size, vd_error *err);

#endif
