/* vd_cel: verdict's subset of Google's Common Expression Language (CEL).
 *
 * Lifecycle: build a vd_cel_env (declare variables with types; each gets a slot index), compile
 * source text against it once (parse + type-check) into an immutable vd_cel_program, then evaluate
 * the program many times, from any number of threads at once, each evaluation with its own
 * activation (variable values by slot) and its own arena (scratch memory for results).
 *
 * Ownership:
 * - vd_cel_env: created by vd_cel_env_new, freed by vd_cel_env_free. It must outlive every
 *   program compiled against it (programs point at its declarations and types).
 * - vd_cel_type: owned by the env that made it (vd_cel_type_list/map) or static (the scalars);
 *   never freed by the caller.
 * - vd_cel_program: created by vd_cel_compile, freed by vd_cel_program_free. Immutable;
 * thread-safe.
 * - vd_cel_value: a plain struct, never owning memory. Strings, bytes, lists and maps point into
 *   (a) the program (constants), (b) the activation the caller passed, or (c) the arena used for
 *   the evaluation. A result stays valid until that arena is reset or freed and as long as the
 *   program and the activation's memory live.
 * - vd_cel_arena: the caller's struct (stack is fine) over a caller-provided scratch buffer.
 *   When the buffer is exhausted the arena falls back to heap chunks, which vd_cel_arena_reset and
 *   vd_cel_arena_free release. An evaluation of a scalar expression (no list/map/string built at
 *   run time) never allocates; one that builds values uses only the scratch buffer when it is
 *   large enough. vd_cel_arena_heap_chunks tells how often the heap was needed.
 */
#ifndef VD_CEL_H
#define VD_CEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vd_error.h"

/* ---- values ---- */

typedef enum vd_cel_kind {
  VD_CEL_UNSET = 0, /* an activation slot with no value (field absent): reading it is an error,
                       has() on it is false. Never the result of an evaluation. */
  VD_CEL_NULL,
  VD_CEL_BOOL,
  VD_CEL_INT,
  VD_CEL_UINT,
  VD_CEL_DOUBLE,
  VD_CEL_STRING, /* valid UTF-8 */
  VD_CEL_BYTES,
  VD_CEL_LIST,
  VD_CEL_MAP,
  VD_CEL_TIMESTAMP, /* seconds since the Unix epoch + nanos in [0, 1e9) */
  VD_CEL_DURATION,  /* seconds + nanos, both with the same sign */
  VD_CEL_TYPE,      /* a type value such as `int` (type_kind names it) */
  VD_CEL_ERROR      /* an evaluation error: message + byte offset in the source */
} vd_cel_kind;

typedef struct vd_cel_list vd_cel_list;
typedef struct vd_cel_map vd_cel_map;

typedef struct vd_cel_value {
  vd_cel_kind kind;
  union {
    bool b;
    int64_t i;
    uint64_t u;
    double d;
    struct {
      const char *data; /* not necessarily NUL-terminated */
      size_t len;
    } str;                   /* STRING and BYTES */
    const vd_cel_list *list; /* LIST */
    const vd_cel_map *map;   /* MAP */
    struct {
      int64_t seconds;
      int32_t nanos;
    } time;                /* TIMESTAMP and DURATION */
    vd_cel_kind type_kind; /* TYPE: the kind it names (VD_CEL_TYPE for `type`) */
    struct {
      const char *message; /* NUL-terminated */
      uint32_t offset;     /* byte offset in the expression source */
    } error;               /* ERROR */
  } v;
} vd_cel_value;

/* A list: count values. A map: count key/value pairs (keys are bool, int, uint or string; unique
 * under CEL equality). Built by the caller (for activations) or by the evaluator (in the arena). */
struct vd_cel_list {
  size_t count;
  const vd_cel_value *items;
};
struct vd_cel_map {
  size_t count;
  const vd_cel_value *keys;
  const vd_cel_value *values;
};

/* Constructors (no allocation; strings are borrowed). They set only the fields the kind uses:
 * zero-filling the whole struct costs more than the evaluation of a comparison. */
static inline vd_cel_value vd_cel_null(void) {
  vd_cel_value r;
  r.kind = VD_CEL_NULL;
  r.v.u = 0;
  return r;
}
static inline vd_cel_value vd_cel_bool(bool b) {
  vd_cel_value r;
  r.kind = VD_CEL_BOOL;
  r.v.u = 0;
  r.v.b = b;
  return r;
}
static inline vd_cel_value vd_cel_int(int64_t i) {
  vd_cel_value r;
  r.kind = VD_CEL_INT;
  r.v.i = i;
  return r;
}
static inline vd_cel_value vd_cel_uint(uint64_t u) {
  vd_cel_value r;
  r.kind = VD_CEL_UINT;
  r.v.u = u;
  return r;
}
static inline vd_cel_value vd_cel_double(double d) {
  vd_cel_value r;
  r.kind = VD_CEL_DOUBLE;
  r.v.d = d;
  return r;
}
/* s must be valid UTF-8 (see vd_cel_utf8_valid) and outlive the value. */
static inline vd_cel_value vd_cel_string(const char *s, size_t len) {
  vd_cel_value r;
  r.kind = VD_CEL_STRING;
  r.v.str.data = s;
  r.v.str.len = len;
  return r;
}
static inline vd_cel_value vd_cel_bytes(const void *s, size_t len) {
  vd_cel_value r;
  r.kind = VD_CEL_BYTES;
  r.v.str.data = (const char *)s;
  r.v.str.len = len;
  return r;
}
static inline vd_cel_value vd_cel_list_value(const vd_cel_list *list) {
  vd_cel_value r;
  r.kind = VD_CEL_LIST;
  r.v.list = list;
  return r;
}
static inline vd_cel_value vd_cel_map_value(const vd_cel_map *map) {
  vd_cel_value r;
  r.kind = VD_CEL_MAP;
  r.v.map = map;
  return r;
}
bool vd_cel_utf8_valid(const char *s, size_t len);

/* Parses an RFC 3339 timestamp ("2026-12-03T13:26:45.5Z", "...+01:00"), years 0001..9999. */
bool vd_cel_timestamp_parse(const char *s, size_t len, vd_cel_value *out, vd_error *err);
/* Parses a CEL/Go duration ("1h30m", "-1.5s", "250ms", "3us", "10ns"), at most ±10000 years. */
bool vd_cel_duration_parse(const char *s, size_t len, vd_cel_value *out, vd_error *err);

/* CEL's name of a value's type: "int", "list", "map", "google.protobuf.Timestamp", ... */
const char *vd_cel_kind_name(vd_cel_kind kind);

/* CEL equality (heterogeneous numbers compare by value; different kinds are unequal). Neither
 * argument may be an error. */
bool vd_cel_equal(const vd_cel_value *a, const vd_cel_value *b);

/* ---- arena ---- */

typedef struct vd_cel_chunk vd_cel_chunk;
/* An arena never holds more heap than this: an evaluation that needs more fails with an
 * "out of memory" error value. Comprehensions are also bounded to 1,000,000 steps. */
#define VD_CEL_ARENA_MAX_HEAP ((size_t)256 << 20)
typedef struct vd_cel_arena { /* fields are private: use the functions */
  unsigned char *scratch;
  size_t scratch_size, scratch_used;
  vd_cel_chunk *chunks;
  size_t heap_chunks; /* chunks allocated since init (a statistic for tests and benches) */
  size_t heap_bytes;  /* in the current chunks; capped at VD_CEL_ARENA_MAX_HEAP */
} vd_cel_arena;

/* scratch may be NULL/0 (then everything goes to the heap). */
void vd_cel_arena_init(vd_cel_arena *arena, void *scratch, size_t scratch_size);
/* Forgets every value made in the arena; frees heap chunks. */
void vd_cel_arena_reset(vd_cel_arena *arena);
void vd_cel_arena_free(vd_cel_arena *arena);
/* Aligned memory from the arena, or NULL when out of memory. */
void *vd_cel_arena_alloc(vd_cel_arena *arena, size_t size);
size_t vd_cel_arena_heap_chunks(const vd_cel_arena *arena);

/* ---- types and environment ---- */

typedef struct vd_cel_type vd_cel_type;
typedef struct vd_cel_env vd_cel_env;

/* Static scalar types. */
const vd_cel_type *vd_cel_type_dyn(void);
/* The type of a kind: NULL, BOOL..BYTES, TIMESTAMP, DURATION, TYPE; LIST is list(dyn), MAP is
 * map(dyn, dyn); NULL for UNSET and ERROR. */
const vd_cel_type *vd_cel_type_of_kind(vd_cel_kind kind);
/* Parametrised types, owned by env. NULL on out-of-memory. */
const vd_cel_type *vd_cel_type_list(vd_cel_env *env, const vd_cel_type *elem);
const vd_cel_type *vd_cel_type_map(vd_cel_env *env, const vd_cel_type *key,
                                   const vd_cel_type *value);
/* Writes "list(int)", "map(string, dyn)", ... into buf. */
void vd_cel_type_format(const vd_cel_type *type, char *buf, size_t size);

vd_cel_env *vd_cel_env_new(void);
void vd_cel_env_free(vd_cel_env *env);
/* Declares a variable; name may be qualified ("subject.recency"): an expression that spells it
 * reads the slot directly (the longest declared prefix of a select chain wins, as in CEL).
 * Slots are numbered 0, 1, 2... in declaration order. Fails on a duplicate or malformed name. */
bool vd_cel_env_declare(vd_cel_env *env, const char *name, const vd_cel_type *type, size_t *slot,
                        vd_error *err);
size_t vd_cel_env_slot_count(const vd_cel_env *env);
const char *vd_cel_env_slot_name(const vd_cel_env *env, size_t slot);
const vd_cel_type *vd_cel_env_slot_type(const vd_cel_env *env, size_t slot);
/* Slot of a declared name, or false. */
bool vd_cel_env_lookup(const vd_cel_env *env, const char *name, size_t *slot);

/* ---- compile and evaluate ---- */

typedef struct vd_cel_program vd_cel_program;

/* Parses and type-checks source (len bytes, need not be NUL-terminated). On failure returns NULL
 * and sets err: message "...", err->line/err->column (1-based; column counts characters) within
 * the expression, and *error_offset (if non-NULL) to the byte offset of the mistake, so a caller
 * can map it into its own file. err->file is left empty. */
vd_cel_program *vd_cel_compile(const vd_cel_env *env, const char *source, size_t len,
                               size_t *error_offset, vd_error *err);
void vd_cel_program_free(vd_cel_program *program);
/* The static type of the program's result (e.g. to insist that a rule condition is bool). */
const vd_cel_type *vd_cel_program_type(const vd_cel_program *program);
/* The distinct slots the program may read, in source order (count = vd_cel_program_ref_count). */
size_t vd_cel_program_ref_count(const vd_cel_program *program);
const size_t *vd_cel_program_refs(const vd_cel_program *program);

/* Evaluates program with slots[0..slot_count) as the variables' values (slot_count must be at
 * least the env's slot count at compile time). Writes the result to *result (an ERROR value for
 * an evaluation error; the message then stays valid as long as the arena and program do).
 * If read_slots is non-NULL (capacity vd_cel_program_ref_count), it receives the slots the
 * evaluation actually read, each once, in the order first read, and *read_count their number.
 * Returns true unless the result is an error. Thread-safe: the program is only read. */
bool vd_cel_eval(const vd_cel_program *program, const vd_cel_value *slots, size_t slot_count,
                 vd_cel_arena *arena, vd_cel_value *result, size_t *read_slots, size_t *read_count);

/* ---- JSON ---- */

/* Typed JSON, the conformance format: {"type":"int","value":3}; types null bool int uint double
 * string bytes(base64) list map([[k,v],...]) type timestamp(RFC 3339 string) duration("1.5s").
 * Non-finite doubles are "NaN"/"Infinity"/"-Infinity"; uint above 2^63-1 is a decimal string.
 * Returns a new reference, or NULL for an ERROR value (use vd_cel_error_json). */
json_t *vd_cel_to_typed_json(const vd_cel_value *value);
/* {"error": "message"} */
json_t *vd_cel_error_json(const vd_cel_value *error_value);
/* Builds a value from typed JSON; memory (strings, lists) comes from arena. err names the JSON
 * path (err->field) of a mistake. */
bool vd_cel_from_typed_json(const json_t *json, vd_cel_arena *arena, vd_cel_value *out,
                            vd_error *err);
/* Plain JSON: null bool int(integer) double(real) string list(array) map(object, string keys).
 * Strings are copied into the arena. */
bool vd_cel_from_json(const json_t *json, vd_cel_arena *arena, vd_cel_value *out, vd_error *err);
/* Value → plain JSON: bytes → base64 string, timestamp → RFC 3339 string, duration → "1.5s",
 * type → its name, map keys → strings, uint above 2^63-1 → real. NULL for an ERROR value. */
json_t *vd_cel_to_json(const vd_cel_value *value);

#endif
