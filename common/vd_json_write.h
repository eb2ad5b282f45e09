/* vd_json_write: a fast serialiser for jansson values, byte-identical to jansson's own
 * json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY), and vd_json_emit (below): the same text
 * written piece by piece with no tree at all.
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

/* ---- vd_json_emit: one document written piece by piece ----------------------------------------
 * A document's shape is described once, as a sequence of calls, and comes out either as text
 * (appended to a vd_buf: byte-identical to vd_json_write_shortest of the same tree, with no tree
 * built) or as a jansson tree — so the trace's hot path writes text while other callers that
 * need a json_t get one from the same code.
 *
 *   vd_json_emit e;
 *   vd_json_emit_text(&e, &buf);            (or vd_json_emit_tree(&e))
 *   vd_json_emit_object(&e);
 *   vd_json_emit_key(&e, "id"); vd_json_emit_string(&e, id);
 *   vd_json_emit_end(&e);
 *   ok = vd_json_emit_done(&e);             (tree: json_t *t = vd_json_emit_take(&e))
 *
 * Inside an object every value follows a key; the key (borrowed, until its value is emitted)
 * is written with its value. Like jansson's json_object_set_new(obj, key, json_real(NaN)), a
 * non-finite real is left out together with its key (JSON has no NaN). A NULL string or value
 * is written as null. Failures (invalid UTF-8, no memory, a value without its key, nesting
 * beyond VD_JSON_EMIT_DEPTH) stick: later calls do nothing and done/take report them. The struct
 * lives on the caller's stack; its fields are private. */
enum { VD_JSON_EMIT_DEPTH = 64 };

typedef struct vd_json_emit {
  vd_buf *text;                            /* text mode: the output; NULL in tree mode */
  json_t *root, *open[VD_JSON_EMIT_DEPTH]; /* tree mode: the result and the open containers */
  const char *key;                         /* the pending key */
  unsigned depth;
  unsigned long long objects, nonempty; /* bit d: container d is an object / has a member */
  bool rooted;                          /* text mode: the document's value has begun */
  bool failed;
} vd_json_emit;

void vd_json_emit_text(vd_json_emit *e, vd_buf *out);
void vd_json_emit_tree(vd_json_emit *e);
void vd_json_emit_object(vd_json_emit *e);
void vd_json_emit_array(vd_json_emit *e);
void vd_json_emit_end(vd_json_emit *e); /* closes the innermost object or array */
void vd_json_emit_key(vd_json_emit *e, const char *key);
void vd_json_emit_string(vd_json_emit *e, const char *s);
void vd_json_emit_real(vd_json_emit *e, double v);
void vd_json_emit_integer(vd_json_emit *e, json_int_t v);
void vd_json_emit_bool(vd_json_emit *e, bool v);
void vd_json_emit_null(vd_json_emit *e);
/* An object member: vd_json_emit_key then the value, in one call. */
void vd_json_emit_member_string(vd_json_emit *e, const char *key, const char *s);
void vd_json_emit_member_real(vd_json_emit *e, const char *key, double v);
void vd_json_emit_member_integer(vd_json_emit *e, const char *key, json_int_t v);
void vd_json_emit_member_bool(vd_json_emit *e, const char *key, bool v);
/* A jansson value (borrowed; the tree mode stores a deep copy). */
void vd_json_emit_value(vd_json_emit *e, const json_t *v);
/* A value already written as compact JSON text (e.g. by another text emitter): copied as is;
 * the tree mode parses it. The text may lie in this emitter's own output buffer (a piece written
 * there earlier): it is found again after the buffer grows. */
void vd_json_emit_raw(vd_json_emit *e, const char *json_text, size_t len);
/* Text mode: true when the document is complete and nothing failed (the text is NUL-terminated).
 * Tree mode: true when nothing failed so far. */
bool vd_json_emit_done(vd_json_emit *e);
/* Tree mode: the finished document (a new reference), or NULL after a failure. */
json_t *vd_json_emit_take(vd_json_emit *e);

#endif
