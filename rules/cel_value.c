/* cel_value.c: CEL values — the arena, equality and ordering, and JSON conversions. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cel_internal.h"

#include "vd_utf8.h"

/* ---- arena ---- */

struct vd_cel_chunk {
  vd_cel_chunk *next;
  size_t size, used;
  max_align_t data[];
};

enum { CEL_ALIGN = sizeof(max_align_t), CEL_MIN_CHUNK = 8192 };

static size_t align_up(size_t n) { return (n + CEL_ALIGN - 1) & ~(size_t)(CEL_ALIGN - 1); }

void vd_cel_arena_init(vd_cel_arena *arena, void *scratch, size_t scratch_size) {
  memset(arena, 0, sizeof *arena);
  /* Align the start of the scratch buffer so every allocation is aligned. */
  uintptr_t p = (uintptr_t)scratch, aligned = (p + CEL_ALIGN - 1) & ~(uintptr_t)(CEL_ALIGN - 1);
  if (scratch && scratch_size > aligned - p) {
    arena->scratch = (unsigned char *)aligned;
    arena->scratch_size = scratch_size - (aligned - p);
  }
}

void vd_cel_arena_reset(vd_cel_arena *arena) {
  vd_cel_chunk *c = arena->chunks;
  while (c) {
    vd_cel_chunk *next = c->next;
    free(c);
    c = next;
  }
  arena->chunks = NULL;
  arena->scratch_used = 0;
  arena->heap_bytes = 0;
}

void vd_cel_arena_free(vd_cel_arena *arena) { vd_cel_arena_reset(arena); }

void *vd_cel_arena_alloc(vd_cel_arena *arena, size_t size) {
  size = align_up(size ? size : 1);
  if (arena->scratch && arena->scratch_size - arena->scratch_used >= size) {
    void *p = arena->scratch + arena->scratch_used;
    arena->scratch_used += size;
    return p;
  }
  vd_cel_chunk *c = arena->chunks;
  if (c && c->size - c->used >= size) {
    void *p = (unsigned char *)c->data + c->used;
    c->used += size;
    return p;
  }
  size_t chunk_size = size > CEL_MIN_CHUNK ? size : CEL_MIN_CHUNK;
  if (c && c->size * 2 > chunk_size && c->size < ((size_t)1 << 24)) chunk_size = c->size * 2;
  if (size > VD_CEL_ARENA_MAX_HEAP || arena->heap_bytes + chunk_size > VD_CEL_ARENA_MAX_HEAP)
    return NULL; /* a runaway evaluation fails with "out of memory" instead of taking the host */
  vd_cel_chunk *n = malloc(sizeof *n + chunk_size);
  if (!n) return NULL;
  n->size = chunk_size;
  n->used = size;
  n->next = c;
  arena->chunks = n;
  arena->heap_chunks++;
  arena->heap_bytes += chunk_size;
  return n->data;
}

size_t vd_cel_arena_heap_chunks(const vd_cel_arena *arena) { return arena->heap_chunks; }

char *cel_arena_strndup(vd_cel_arena *arena, const char *s, size_t len) {
  char *p = vd_cel_arena_alloc(arena, len + 1);
  if (!p) return NULL;
  memcpy(p, s, len);
  p[len] = '\0';
  return p;
}

/* ---- errors ---- */

vd_cel_value cel_error(const char *message, uint32_t offset) {
  vd_cel_value v = {.kind = VD_CEL_ERROR};
  v.v.error.message = message;
  v.v.error.offset = offset;
  return v;
}

vd_cel_value cel_errorf(vd_cel_arena *arena, uint32_t offset, const char *fmt, ...) {
  char buf[VD_ERROR_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  char *msg = cel_arena_strndup(arena, buf, strlen(buf));
  return cel_error(msg ? msg : "out of memory", offset);
}

/* ---- UTF-8 ---- */

bool vd_cel_utf8_valid(const char *s, size_t len) { return vd_utf8_valid_prefix(s, len) == len; }

/* ---- kinds ---- */

const char *vd_cel_kind_name(vd_cel_kind kind) {
  switch (kind) {
    case VD_CEL_UNSET:
      return "unset";
    case VD_CEL_NULL:
      return "null_type";
    case VD_CEL_BOOL:
      return "bool";
    case VD_CEL_INT:
      return "int";
    case VD_CEL_UINT:
      return "uint";
    case VD_CEL_DOUBLE:
      return "double";
    case VD_CEL_STRING:
      return "string";
    case VD_CEL_BYTES:
      return "bytes";
    case VD_CEL_LIST:
      return "list";
    case VD_CEL_MAP:
      return "map";
    case VD_CEL_TIMESTAMP:
      return "google.protobuf.Timestamp";
    case VD_CEL_DURATION:
      return "google.protobuf.Duration";
    case VD_CEL_TYPE:
      return "type";
    case VD_CEL_ERROR:
      return "error";
  }
  return "?";
}

bool cel_is_map_key_kind(vd_cel_kind k) {
  return k == VD_CEL_BOOL || k == VD_CEL_INT || k == VD_CEL_UINT || k == VD_CEL_STRING;
}

/* ---- numbers across kinds ---- */

static const double two63 = 9223372036854775808.0, two64 = 18446744073709551616.0;

/* Orders an int or uint against a double as cel-go does: out-of-range doubles order first or
 * last, otherwise the integer is converted to double (so 2^63-1 equals 2^63.0). NaN is unordered.
 */
static bool cmp_double(double x, double d, int *order) {
  if (isnan(x) || isnan(d)) return false;
  *order = x < d ? -1 : (x > d ? 1 : 0);
  return true;
}

static bool cmp_int_double(int64_t i, double d, int *order) {
  if (isnan(d)) return false;
  if (d < -two63) return *order = 1, true;
  if (d > two63) return *order = -1, true;
  return cmp_double((double)i, d, order);
}

static bool cmp_uint_double(uint64_t u, double d, int *order) {
  if (isnan(d)) return false;
  if (d < 0) return *order = 1, true;
  if (d > two64) return *order = -1, true;
  return cmp_double((double)u, d, order);
}

static int cmp_int_uint(int64_t i, uint64_t u) {
  if (i < 0) return -1;
  uint64_t iu = (uint64_t)i;
  return iu < u ? -1 : (iu > u ? 1 : 0);
}

static bool is_number(vd_cel_kind k) {
  return k == VD_CEL_INT || k == VD_CEL_UINT || k == VD_CEL_DOUBLE;
}

static int cmp_bytes(const vd_cel_value *a, const vd_cel_value *b) {
  size_t n = a->v.str.len < b->v.str.len ? a->v.str.len : b->v.str.len;
  int c = n ? memcmp(a->v.str.data, b->v.str.data, n) : 0;
  if (c) return c < 0 ? -1 : 1;
  return a->v.str.len < b->v.str.len ? -1 : (a->v.str.len > b->v.str.len ? 1 : 0);
}

static int cmp_time(const vd_cel_value *a, const vd_cel_value *b) {
  if (a->v.time.seconds != b->v.time.seconds) return a->v.time.seconds < b->v.time.seconds ? -1 : 1;
  return a->v.time.nanos < b->v.time.nanos ? -1 : (a->v.time.nanos > b->v.time.nanos ? 1 : 0);
}

bool cel_compare(const vd_cel_value *a, const vd_cel_value *b, int *order) {
  vd_cel_kind ka = a->kind, kb = b->kind;
  if (is_number(ka) && is_number(kb)) {
    if (ka == kb) {
      switch (ka) {
        case VD_CEL_INT:
          *order = a->v.i < b->v.i ? -1 : a->v.i > b->v.i;
          return true;
        case VD_CEL_UINT:
          *order = a->v.u < b->v.u ? -1 : a->v.u > b->v.u;
          return true;
        default:
          if (isnan(a->v.d) || isnan(b->v.d)) return false;
          *order = a->v.d < b->v.d ? -1 : a->v.d > b->v.d;
          return true;
      }
    }
    if (ka == VD_CEL_INT && kb == VD_CEL_UINT) return *order = cmp_int_uint(a->v.i, b->v.u), true;
    if (ka == VD_CEL_UINT && kb == VD_CEL_INT) return *order = -cmp_int_uint(b->v.i, a->v.u), true;
    if (ka == VD_CEL_INT) return cmp_int_double(a->v.i, b->v.d, order);
    if (ka == VD_CEL_UINT) return cmp_uint_double(a->v.u, b->v.d, order);
    bool ok = kb == VD_CEL_INT ? cmp_int_double(b->v.i, a->v.d, order)
                               : cmp_uint_double(b->v.u, a->v.d, order);
    if (!ok) return false;
    *order = -*order;
    return true;
  }
  if (ka != kb) return false;
  switch (ka) {
    case VD_CEL_BOOL:
      *order = (int)a->v.b - (int)b->v.b;
      return true;
    case VD_CEL_STRING:
    case VD_CEL_BYTES:
      *order = cmp_bytes(a, b);
      return true;
    case VD_CEL_TIMESTAMP:
    case VD_CEL_DURATION:
      *order = cmp_time(a, b);
      return true;
    default:
      return false;
  }
}

long cel_map_find(const vd_cel_map *map, const vd_cel_value *key) {
  for (size_t i = 0; i < map->count; i++)
    if (vd_cel_equal(&map->keys[i], key)) return (long)i;
  return -1;
}

bool vd_cel_equal(const vd_cel_value *a, const vd_cel_value *b) {
  if (is_number(a->kind) && is_number(b->kind)) {
    int order;
    return cel_compare(a, b, &order) && order == 0;
  }
  if (a->kind != b->kind) return false;
  switch (a->kind) {
    case VD_CEL_NULL:
    case VD_CEL_UNSET:
      return true;
    case VD_CEL_BOOL:
      return a->v.b == b->v.b;
    case VD_CEL_STRING:
    case VD_CEL_BYTES:
      return cmp_bytes(a, b) == 0;
    case VD_CEL_TIMESTAMP:
    case VD_CEL_DURATION:
      return cmp_time(a, b) == 0;
    case VD_CEL_TYPE:
      return a->v.type_kind == b->v.type_kind;
    case VD_CEL_LIST:
      if (a->v.list->count != b->v.list->count) return false;
      for (size_t i = 0; i < a->v.list->count; i++)
        if (!vd_cel_equal(&a->v.list->items[i], &b->v.list->items[i])) return false;
      return true;
    case VD_CEL_MAP:
      if (a->v.map->count != b->v.map->count) return false;
      for (size_t i = 0; i < a->v.map->count; i++) {
        long j = cel_map_find(b->v.map, &a->v.map->keys[i]);
        if (j < 0 || !vd_cel_equal(&a->v.map->values[i], &b->v.map->values[j])) return false;
      }
      return true;
    default:
      return false;
  }
}

/* ---- double formatting (Go's strconv.FormatFloat(d, 'g', -1, 64), as cel-go's string()) ---- */

void cel_format_double(double d, char *buf, size_t size) {
  if (isnan(d)) {
    snprintf(buf, size, "NaN");
    return;
  }
  if (isinf(d)) {
    snprintf(buf, size, d > 0 ? "+Inf" : "-Inf");
    return;
  }
  char tmp[64];
  int prec = 1;
  for (; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
    if (strtod(tmp, NULL) == d) break;
  }
  const char *e = strchr(tmp, 'e');
  int exp = e ? (int)strtol(e + 1, NULL, 10) : 0;
  /* Go switches to the exponent form below 1e-4 and, for the shortest form, from 1e6 up; it
   * writes at least two exponent digits, as C does. */
  if (exp < -4 || exp >= 6) {
    snprintf(buf, size, "%s", tmp);
    return;
  }
  int decimals = prec - 1 - exp;
  snprintf(buf, size, "%.*f", decimals > 0 ? decimals : 0, d);
}

/* ---- base64 ---- */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static json_t *base64_json(const unsigned char *s, size_t len) {
  size_t out_len = 4 * ((len + 2) / 3);
  char *out = malloc(out_len + 1);
  if (!out) return NULL;
  size_t o = 0;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)s[i] << 16;
    if (i + 1 < len) v |= (uint32_t)s[i + 1] << 8;
    if (i + 2 < len) v |= s[i + 2];
    out[o++] = b64chars[(v >> 18) & 63];
    out[o++] = b64chars[(v >> 12) & 63];
    out[o++] = i + 1 < len ? b64chars[(v >> 6) & 63] : '=';
    out[o++] = i + 2 < len ? b64chars[v & 63] : '=';
  }
  out[o] = '\0';
  json_t *j = json_stringn(out, o);
  free(out);
  return j;
}

static int b64_index(char c) {
  const char *p = c ? strchr(b64chars, c) : NULL;
  if (p) return (int)(p - b64chars);
  if (c == '-') return 62; /* URL-safe alphabet too */
  if (c == '_') return 63;
  return -1;
}

static bool base64_decode(const char *s, size_t len, vd_cel_arena *arena, vd_cel_value *out) {
  unsigned char *buf = vd_cel_arena_alloc(arena, len / 4 * 3 + 3);
  if (!buf) return false;
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '=') break;
    int v = b64_index(s[i]);
    if (v < 0) return false;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      buf[o++] = (unsigned char)(acc >> bits);
    }
  }
  *out = vd_cel_bytes(buf, o);
  return true;
}

/* ---- typed JSON ---- */

static json_t *typed(const char *type, json_t *value) {
  if (!value) return NULL;
  return json_pack("{s:s,s:o}", "type", type, "value", value);
}

static json_t *double_json(double d) {
  if (isnan(d)) return json_string("NaN");
  if (isinf(d)) return json_string(d > 0 ? "Infinity" : "-Infinity");
  return json_real(d);
}

static json_t *uint_json(uint64_t u) {
  if (u <= (uint64_t)INT64_MAX) return json_integer((json_int_t)u);
  char buf[32];
  snprintf(buf, sizeof buf, "%" PRIu64, u);
  return json_string(buf);
}

json_t *vd_cel_to_typed_json(const vd_cel_value *value) {
  char buf[64];
  switch (value->kind) {
    case VD_CEL_NULL:
      return typed("null", json_null());
    case VD_CEL_BOOL:
      return typed("bool", json_boolean(value->v.b));
    case VD_CEL_INT:
      return typed("int", json_integer(value->v.i));
    case VD_CEL_UINT:
      return typed("uint", uint_json(value->v.u));
    case VD_CEL_DOUBLE:
      return typed("double", double_json(value->v.d));
    case VD_CEL_STRING:
      return typed("string", json_stringn(value->v.str.data, value->v.str.len));
    case VD_CEL_BYTES:
      return typed("bytes",
                   base64_json((const unsigned char *)value->v.str.data, value->v.str.len));
    case VD_CEL_TIMESTAMP:
      cel_format_timestamp(value->v.time.seconds, value->v.time.nanos, buf, sizeof buf);
      return typed("timestamp", json_string(buf));
    case VD_CEL_DURATION:
      cel_format_duration(value->v.time.seconds, value->v.time.nanos, buf, sizeof buf);
      return typed("duration", json_string(buf));
    case VD_CEL_TYPE:
      return typed("type", json_string(vd_cel_kind_name(value->v.type_kind)));
    case VD_CEL_LIST: {
      json_t *arr = json_array();
      for (size_t i = 0; arr && i < value->v.list->count; i++)
        if (json_array_append_new(arr, vd_cel_to_typed_json(&value->v.list->items[i]))) {
          json_decref(arr);
          return NULL;
        }
      return typed("list", arr);
    }
    case VD_CEL_MAP: {
      json_t *arr = json_array();
      for (size_t i = 0; arr && i < value->v.map->count; i++) {
        json_t *k = vd_cel_to_typed_json(&value->v.map->keys[i]);
        json_t *v = vd_cel_to_typed_json(&value->v.map->values[i]);
        json_t *pair = k && v ? json_pack("[oo]", k, v) : NULL;
        if (!pair || json_array_append_new(arr, pair)) {
          if (!pair) json_decref(k), json_decref(v);
          json_decref(arr);
          return NULL;
        }
      }
      return typed("map", arr);
    }
    default:
      return NULL;
  }
}

json_t *vd_cel_error_json(const vd_cel_value *error_value) {
  const char *msg =
      error_value->kind == VD_CEL_ERROR ? error_value->v.error.message : "not an error";
  return json_pack("{s:s}", "error", msg ? msg : "error");
}

static bool path_error(vd_error *err, const char *path, const char *fmt, const char *detail) {
  return vd_error_field(err, path[0] ? path : "$", fmt, detail);
}

static bool parse_uint_text(const char *s, uint64_t *out) {
  if (!*s || *s == '-' || *s == '+') return false;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end) return false;
  *out = v;
  return true;
}

static bool typed_json_at(const json_t *json, vd_cel_arena *arena, vd_cel_value *out,
                          const char *path, vd_error *err);

static bool typed_children(const json_t *value, bool pairs, vd_cel_arena *arena, vd_cel_value *out,
                           const char *path, vd_error *err) {
  if (!json_is_array(value)) return path_error(err, path, "%s: value must be an array", "list/map");
  size_t n = json_array_size(value);
  vd_cel_value *items = vd_cel_arena_alloc(arena, sizeof *items * (n ? n : 1) * (pairs ? 2 : 1));
  if (!items) return vd_error_set(err, "out of memory");
  char sub[VD_ERROR_WHERE_MAX];
  for (size_t i = 0; i < n; i++) {
    const json_t *item = json_array_get(value, i);
    if (pairs) {
      if (!json_is_array(item) || json_array_size(item) != 2)
        return path_error(err, path, "%s: map entries are [key, value] pairs", "map");
      snprintf(sub, sizeof sub, "%s[%zu][0]", path, i);
      if (!typed_json_at(json_array_get(item, 0), arena, &items[i], sub, err)) return false;
      if (!cel_is_map_key_kind(items[i].kind))
        return path_error(err, sub, "%s: map keys must be bool, int, uint or string", "map");
      snprintf(sub, sizeof sub, "%s[%zu][1]", path, i);
      if (!typed_json_at(json_array_get(item, 1), arena, &items[n + i], sub, err)) return false;
    } else {
      snprintf(sub, sizeof sub, "%s[%zu]", path, i);
      if (!typed_json_at(item, arena, &items[i], sub, err)) return false;
    }
  }
  if (pairs) {
    vd_cel_map *m = vd_cel_arena_alloc(arena, sizeof *m);
    if (!m) return vd_error_set(err, "out of memory");
    m->count = n;
    m->keys = items;
    m->values = items + n;
    for (size_t i = 0; i < n; i++)
      for (size_t j = 0; j < i; j++)
        if (vd_cel_equal(&items[i], &items[j]))
          return path_error(err, path, "%s: repeated map key", "map");
    *out = vd_cel_map_value(m);
  } else {
    vd_cel_list *l = vd_cel_arena_alloc(arena, sizeof *l);
    if (!l) return vd_error_set(err, "out of memory");
    l->count = n;
    l->items = items;
    *out = vd_cel_list_value(l);
  }
  return true;
}

static bool typed_json_at(const json_t *json, vd_cel_arena *arena, vd_cel_value *out,
                          const char *path, vd_error *err) {
  const char *type = json_string_value(json_object_get(json, "type"));
  const json_t *value = json_object_get(json, "value");
  if (!json_is_object(json) || !type)
    return path_error(err, path, "%s", "expected a typed value {\"type\": ..., \"value\": ...}");
  if (!value && strcmp(type, "null") != 0)
    return path_error(err, path, "%s", "typed value has no \"value\"");
  if (strcmp(type, "null") == 0) {
    *out = vd_cel_null();
  } else if (strcmp(type, "bool") == 0) {
    if (!json_is_boolean(value))
      return path_error(err, path, "%s", "bool value must be true/false");
    *out = vd_cel_bool(json_is_true(value));
  } else if (strcmp(type, "int") == 0) {
    if (!json_is_integer(value)) return path_error(err, path, "%s", "int value must be an integer");
    *out = vd_cel_int(json_integer_value(value));
  } else if (strcmp(type, "uint") == 0) {
    uint64_t u;
    if (json_is_integer(value) && json_integer_value(value) >= 0)
      u = (uint64_t)json_integer_value(value);
    else if (!json_is_string(value) || !parse_uint_text(json_string_value(value), &u))
      return path_error(err, path, "%s", "uint value must be a non-negative integer");
    *out = vd_cel_uint(u);
  } else if (strcmp(type, "double") == 0) {
    const char *s = json_string_value(value);
    if (json_is_number(value))
      *out = vd_cel_double(json_number_value(value));
    else if (s && strcmp(s, "NaN") == 0)
      *out = vd_cel_double(NAN);
    else if (s && strcmp(s, "Infinity") == 0)
      *out = vd_cel_double(INFINITY);
    else if (s && strcmp(s, "-Infinity") == 0)
      *out = vd_cel_double(-INFINITY);
    else
      return path_error(err, path, "%s", "double value must be a number, NaN or +-Infinity");
  } else if (strcmp(type, "string") == 0) {
    if (!json_is_string(value)) return path_error(err, path, "%s", "string value must be a string");
    size_t n = json_string_length(value);
    char *s = cel_arena_strndup(arena, json_string_value(value), n);
    if (!s) return vd_error_set(err, "out of memory");
    *out = vd_cel_string(s, n);
  } else if (strcmp(type, "bytes") == 0) {
    if (!json_is_string(value) ||
        !base64_decode(json_string_value(value), json_string_length(value), arena, out))
      return path_error(err, path, "%s", "bytes value must be a base64 string");
  } else if (strcmp(type, "timestamp") == 0 || strcmp(type, "duration") == 0) {
    if (!json_is_string(value)) return path_error(err, path, "%s", "value must be a string");
    bool ok =
        type[0] == 't'
            ? vd_cel_timestamp_parse(json_string_value(value), json_string_length(value), out, err)
            : vd_cel_duration_parse(json_string_value(value), json_string_length(value), out, err);
    if (!ok) {
      vd_error_prefix(err, "%s", path[0] ? path : "$");
      return false;
    }
  } else if (strcmp(type, "list") == 0) {
    return typed_children(value, false, arena, out, path, err);
  } else if (strcmp(type, "map") == 0) {
    return typed_children(value, true, arena, out, path, err);
  } else if (strcmp(type, "type") == 0) {
    const char *name = json_string_value(value);
    for (int k = VD_CEL_NULL; name && k <= VD_CEL_TYPE; k++)
      if (strcmp(vd_cel_kind_name((vd_cel_kind)k), name) == 0) {
        *out = (vd_cel_value){.kind = VD_CEL_TYPE, .v.type_kind = (vd_cel_kind)k};
        return true;
      }
    return path_error(err, path, "%s", "unknown type name");
  } else {
    return vd_error_field(err, path[0] ? path : "$", "unsupported type \"%s\"", type);
  }
  return true;
}

bool vd_cel_from_typed_json(const json_t *json, vd_cel_arena *arena, vd_cel_value *out,
                            vd_error *err) {
  return typed_json_at(json, arena, out, "", err);
}

/* ---- plain JSON ---- */

static bool plain_json_at(const json_t *json, vd_cel_arena *arena, vd_cel_value *out,
                          const char *path, vd_error *err) {
  char sub[VD_ERROR_WHERE_MAX];
  switch (json_typeof(json)) {
    case JSON_NULL:
      *out = vd_cel_null();
      return true;
    case JSON_TRUE:
      *out = vd_cel_bool(true);
      return true;
    case JSON_FALSE:
      *out = vd_cel_bool(false);
      return true;
    case JSON_INTEGER:
      *out = vd_cel_int(json_integer_value(json));
      return true;
    case JSON_REAL:
      *out = vd_cel_double(json_real_value(json));
      return true;
    case JSON_STRING: {
      size_t n = json_string_length(json);
      char *s = cel_arena_strndup(arena, json_string_value(json), n);
      if (!s) return vd_error_set(err, "out of memory");
      *out = vd_cel_string(s, n);
      return true;
    }
    case JSON_ARRAY: {
      size_t n = json_array_size(json);
      vd_cel_list *l = vd_cel_arena_alloc(arena, sizeof *l);
      vd_cel_value *items = vd_cel_arena_alloc(arena, sizeof *items * (n ? n : 1));
      if (!l || !items) return vd_error_set(err, "out of memory");
      for (size_t i = 0; i < n; i++) {
        snprintf(sub, sizeof sub, "%s[%zu]", path, i);
        if (!plain_json_at(json_array_get(json, i), arena, &items[i], sub, err)) return false;
      }
      l->count = n;
      l->items = items;
      *out = vd_cel_list_value(l);
      return true;
    }
    case JSON_OBJECT: {
      size_t n = json_object_size(json), i = 0;
      vd_cel_map *m = vd_cel_arena_alloc(arena, sizeof *m);
      vd_cel_value *kv = vd_cel_arena_alloc(arena, sizeof *kv * 2 * (n ? n : 1));
      if (!m || !kv) return vd_error_set(err, "out of memory");
      const char *key;
      const json_t *v;
      json_object_foreach((json_t *)json, key, v) {
        size_t kl = strlen(key);
        char *k = cel_arena_strndup(arena, key, kl);
        if (!k) return vd_error_set(err, "out of memory");
        kv[i] = vd_cel_string(k, kl);
        snprintf(sub, sizeof sub, "%s%s%s", path, path[0] ? "." : "", key);
        if (!plain_json_at(v, arena, &kv[n + i], sub, err)) return false;
        i++;
      }
      m->count = n;
      m->keys = kv;
      m->values = kv + n;
      *out = vd_cel_map_value(m);
      return true;
    }
  }
  return vd_error_field(err, path[0] ? path : "$", "unsupported JSON value");
}

bool vd_cel_from_json(const json_t *json, vd_cel_arena *arena, vd_cel_value *out, vd_error *err) {
  return plain_json_at(json, arena, out, "", err);
}

json_t *vd_cel_to_json(const vd_cel_value *value) {
  char buf[64];
  switch (value->kind) {
    case VD_CEL_NULL:
      return json_null();
    case VD_CEL_BOOL:
      return json_boolean(value->v.b);
    case VD_CEL_INT:
      return json_integer(value->v.i);
    case VD_CEL_UINT:
      return value->v.u <= (uint64_t)INT64_MAX ? json_integer((json_int_t)value->v.u)
                                               : json_real((double)value->v.u);
    case VD_CEL_DOUBLE:
      return double_json(value->v.d);
    case VD_CEL_STRING:
      return json_stringn(value->v.str.data, value->v.str.len);
    case VD_CEL_BYTES:
      return base64_json((const unsigned char *)value->v.str.data, value->v.str.len);
    case VD_CEL_TIMESTAMP:
      cel_format_timestamp(value->v.time.seconds, value->v.time.nanos, buf, sizeof buf);
      return json_string(buf);
    case VD_CEL_DURATION:
      cel_format_duration(value->v.time.seconds, value->v.time.nanos, buf, sizeof buf);
      return json_string(buf);
    case VD_CEL_TYPE:
      return json_string(vd_cel_kind_name(value->v.type_kind));
    case VD_CEL_LIST: {
      json_t *arr = json_array();
      for (size_t i = 0; arr && i < value->v.list->count; i++)
        if (json_array_append_new(arr, vd_cel_to_json(&value->v.list->items[i]))) {
          json_decref(arr);
          return NULL;
        }
      return arr;
    }
    case VD_CEL_MAP: {
      json_t *obj = json_object();
      for (size_t i = 0; obj && i < value->v.map->count; i++) {
        const vd_cel_value *k = &value->v.map->keys[i];
        char key[64];
        const char *ks = key;
        size_t kl;
        switch (k->kind) {
          case VD_CEL_STRING:
            ks = k->v.str.data, kl = k->v.str.len;
            break;
          case VD_CEL_BOOL:
            kl = (size_t)snprintf(key, sizeof key, "%s", k->v.b ? "true" : "false");
            break;
          case VD_CEL_INT:
            kl = (size_t)snprintf(key, sizeof key, "%" PRId64, k->v.i);
            break;
          default:
            kl = (size_t)snprintf(key, sizeof key, "%" PRIu64, k->v.u);
            break;
        }
        if (json_object_setn_new(obj, ks, kl, vd_cel_to_json(&value->v.map->values[i]))) {
          json_decref(obj);
          return NULL;
        }
      }
      return obj;
    }
    default:
      return NULL;
  }
}
