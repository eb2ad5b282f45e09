/* vd_json_write: a fast serialiser for jansson values, byte-identical to jansson's own
 * json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY).
 *
 * Why: every decision serialises a ~7 KB trace (and its response) on the hot path; jansson's
 * dumper goes through a callback per fragment, a strbuffer and snprintf for every number. This
 * one appends straight into a vd_buf, formats integers and integral reals itself and keeps
 * snprintf("%.17g") only for the other reals (so the text stays exactly what jansson writes:
 * stored traces and replays do not change). Object keys come in insertion order, as jansson
 * dumps them without JSON_SORT_KEYS.
 *
 * Like jansson it refuses (returns false / NULL) a string that is not valid UTF-8 (only
 * json_string_nocheck can make one). It does not detect cycles: pass trees, as every verdict
 * caller does. Nothing is retained; the caller owns `out` and the returned text. */
#ifndef VD_JSON_WRITE_H
#define VD_JSON_WRITE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "vd_buf.h"

/* Appends the compact text of json to out. False on invalid UTF-8 or when out ran out of memory
 * (out->oom); out may then hold a partial text. */
bool vd_json_write_compact(const json_t *json, vd_buf *out);

/* The compact text as a NUL-terminated heap string (free() it), its length in *len when len is
 * not NULL; NULL on failure. Drop-in for json_dumps(json, JSON_COMPACT). */
char *vd_json_dumps_compact(const json_t *json, size_t *len);

/* The same compact text, but every real in the shortest form that reads back as the same double
 * (the fewest of 15, 16 or 17 significant digits, e.g. 0.06285524368286133 where %.17g writes
 * 0.062855243682861328), laid out like jansson's (".0" on integral values, "1e-5"). What
 * `verdict serve` writes for stored traces and every JSON response: one writer for both, and
 * the values parse back exactly. */
bool vd_json_write_shortest(const json_t *json, vd_buf *out);
char *vd_json_dumps_shortest(const json_t *json, size_t *len);
/* vd_json_dumps_shortest(json), and the byte range [*part_start, *part_end) of that text where
 * `part` — a value inside json, found by identity (the same json_t *) — was written: a caller that
 * needs both the whole and the part (a trace and the response inside it) writes once. Both 0
 * when part is not in json. */
char *vd_json_dumps_shortest_part(const json_t *json, const json_t *part, size_t *len,
                                  size_t *part_start, size_t *part_end);

#endif
