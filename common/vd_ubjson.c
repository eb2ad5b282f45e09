/* Universal Binary JSON → jansson (see vd_ubjson.h). A recursive descent over the bytes; every
 * read is bounds-checked against the end of the input. */
#include "vd_ubjson.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vd_buf.h"

typedef struct reader {
  const unsigned char *p, *start, *end;
  /* Elements of typed containers of null, true or false (no bytes each) still to be allowed in
   * the whole input: VD_UBJSON_ZERO_PAYLOAD_PER_BYTE per byte of it. */
  size_t zero_payload_left;
  vd_error *err;
} reader;

static bool fail(reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(reader *r, const char *fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return vd_error_set(r->err, "byte %zu: %s", (size_t)(r->p - r->start), buf);
}

static bool need(reader *r, size_t n) {
  if ((size_t)(r->end - r->p) >= n) return true;
  return fail(r, "truncated: %zu more bytes expected", n - (size_t)(r->end - r->p));
}

static uint64_t big_endian(const unsigned char *p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) v = v << 8 | p[i];
  return v;
}

/* An integer of type `marker` (i, U, I, l, L) into *out. */
static bool read_int(reader *r, unsigned char marker, long long *out) {
  size_t n = marker == 'i' || marker == 'U' ? 1 : marker == 'I' ? 2 : marker == 'l' ? 4 : 8;
  if (!need(r, n)) return false;
  uint64_t v = big_endian(r->p, n);
  r->p += n;
  if (marker == 'U') {
    *out = (long long)v;
  } else { /* two's complement of n bytes, sign-extended */
    uint64_t sign = (uint64_t)1 << (8 * n - 1);
    *out = (v & sign) ? (long long)(v - sign) - (long long)(sign - 1) - 1 : (long long)v;
  }
  return true;
}

static bool is_int_marker(unsigned char m) {
  return m == 'i' || m == 'U' || m == 'I' || m == 'l' || m == 'L';
}

/* A length or count (`what`): an integer with its marker, >= 0 and at most `limit`. */
static bool read_length(reader *r, const char *what, size_t limit, size_t *out) {
  if (!need(r, 1)) return false;
  unsigned char m = *r->p;
  if (!is_int_marker(m))
    return fail(r, "expected an integer marker (i, U, I, l, L) for a %s, got 0x%02x", what, m);
  r->p++;
  long long v = 0;
  if (!read_int(r, m, &v)) return false;
  if (v < 0) return fail(r, "%s %lld is negative", what, v);
  if ((unsigned long long)v > limit)
    return fail(r, "%s %lld is more than the bytes left can hold", what, v);
  *out = (size_t)v;
  return true;
}

static json_t *read_value(reader *r, unsigned char marker, int depth);

/* The bytes a value of `marker` takes at least (for bounding counts of typed containers). */
static size_t min_size(unsigned char marker) {
  switch (marker) {
    case 'Z':
    case 'T':
    case 'F':
    case 'N':
      return 0;
    case 'I':
      return 2;
    case 'l':
    case 'd':
      return 4;
    case 'L':
    case 'D':
      return 8;
    default:
      return 1;
  }
}

static json_t *read_string(reader *r) {
  size_t len = 0;
  if (!read_length(r, "string length", (size_t)(r->end - r->p), &len)) return NULL;
  if (!need(r, len)) return NULL;
  json_t *s = json_stringn((const char *)r->p, len);
  if (!s) {
    fail(r, "a string of %zu bytes is not valid UTF-8", len);
    return NULL;
  }
  r->p += len;
  return s;
}

/* After '[' or '{': the optional "$type" and "#count". *type 0 = none, *count SIZE_MAX = none. */
static bool container_header(reader *r, bool is_object, unsigned char *type, size_t *count) {
  *type = 0;
  *count = SIZE_MAX;
  if (r->p < r->end && *r->p == '$') {
    r->p++;
    if (!need(r, 1)) return false;
    *type = *r->p++;
    if (r->p >= r->end || *r->p != '#')
      return fail(r, "a typed container ('$') needs a count ('#')");
  }
  if (r->p < r->end && *r->p == '#') {
    r->p++;
    /* Each element takes at least `per` bytes (an object's key at least 2 more); elements of no
     * bytes (a typed array of null or booleans) draw on the input's budget for them, so that
     * nested counts cannot multiply into more memory than the input justifies. */
    size_t left = (size_t)(r->end - r->p);
    size_t per = (*type ? min_size(*type) : 1) + (is_object ? 2 : 0);
    if (per) return read_length(r, "count", left / per, count);
    const unsigned char *at = r->p;
    if (!read_length(r, "count", SIZE_MAX, count)) return false;
    if (*count > r->zero_payload_left) {
      r->p = at;
      return fail(r,
                  "count %zu of '%c' elements (no bytes each) is more than the input's %zu bytes "
                  "justify (%zu more such elements at most, %d per input byte)",
                  *count, *type, (size_t)(r->end - r->start), r->zero_payload_left,
                  VD_UBJSON_ZERO_PAYLOAD_PER_BYTE);
    }
    r->zero_payload_left -= *count;
  }
  return true;
}

static json_t *read_array(reader *r, int depth) {
  unsigned char type;
  size_t count;
  if (!container_header(r, false, &type, &count)) return NULL;
  json_t *a = json_array();
  if (!a || count == 0) return a;
  for (size_t i = 0; count == SIZE_MAX || i < count; i++) {
    unsigned char m = type;
    if (!m) {
      if (!need(r, 1)) break;
      m = *r->p++;
      if (m == 'N') {
        i--;
        continue;
      }
      if (m == ']' && count == SIZE_MAX) return a;
    }
    json_t *v = read_value(r, m, depth + 1);
    if (!v || json_array_append_new(a, v) != 0) break;
    if (i + 1 == count) return a;
  }
  json_decref(a);
  return NULL;
}

static json_t *read_object(reader *r, int depth) {
  unsigned char type;
  size_t count;
  if (!container_header(r, true, &type, &count)) return NULL;
  json_t *o = json_object();
  if (!o || count == 0) return o;
  for (size_t i = 0; count == SIZE_MAX || i < count; i++) {
    if (count == SIZE_MAX) {
      if (!need(r, 1)) break;
      if (*r->p == 'N') {
        r->p++;
        i--;
        continue;
      }
      if (*r->p == '}') {
        r->p++;
        return o;
      }
    }
    json_t *key = read_string(r); /* keys are a length and bytes, no 'S' marker */
    if (!key) break;
    if (memchr(json_string_value(key), 0, json_string_length(key))) {
      /* jansson's own parser refuses such keys: a value this reader returns must stay loadable
       * as JSON text too */
      fail(r, "an object key holds a NUL byte");
      json_decref(key);
      break;
    }
    unsigned char m = type;
    if (!m) {
      if (!need(r, 1)) {
        json_decref(key);
        break;
      }
      m = *r->p++;
    }
    json_t *v = read_value(r, m, depth + 1);
    bool ok = v && json_object_setn_new(o, json_string_value(key), json_string_length(key), v) == 0;
    json_decref(key);
    if (!ok) break;
    if (i + 1 == count) return o;
  }
  json_decref(o);
  return NULL;
}

static json_t *read_value(reader *r, unsigned char marker, int depth) {
  if (depth > VD_UBJSON_MAX_DEPTH) {
    fail(r, "nested deeper than %d", VD_UBJSON_MAX_DEPTH);
    return NULL;
  }
  long long i = 0;
  switch (marker) {
    case 'Z':
      return json_null();
    case 'T':
      return json_true();
    case 'F':
      return json_false();
    case 'i':
    case 'U':
    case 'I':
    case 'l':
    case 'L':
      return read_int(r, marker, &i) ? json_integer(i) : NULL;
    case 'd':
    case 'D': {
      size_t n = marker == 'd' ? 4 : 8;
      if (!need(r, n)) return NULL;
      uint64_t bits = big_endian(r->p, n);
      double d;
      if (n == 4) {
        uint32_t b32 = (uint32_t)bits;
        float f;
        memcpy(&f, &b32, sizeof f);
        d = f;
      } else {
        memcpy(&d, &bits, sizeof d);
      }
      /* JSON has no NaN or infinity (jansson's json_real refuses them), and a model weight that
       * is one makes every score it touches one. */
      if (!isfinite(d)) {
        fail(r, "float%d %s is not a finite number", n == 4 ? 32 : 64,
             isnan(d) ? "NaN"
             : d > 0  ? "+infinity"
                      : "-infinity");
        return NULL;
      }
      r->p += n;
      return json_real(d);
    }
    case 'C':
      if (!need(r, 1)) return NULL;
      if (*r->p > 0x7f) {
        fail(r, "char 0x%02x is not ASCII", *r->p);
        return NULL;
      }
      return json_stringn((const char *)r->p++, 1);
    case 'S':
      return read_string(r);
    case '[':
      return read_array(r, depth);
    case '{':
      return read_object(r, depth);
    case 'H':
      r->p--;
      fail(r, "high-precision numbers ('H') are not supported");
      return NULL;
    default:
      r->p--;
      fail(r, "unknown type marker 0x%02x", marker);
      return NULL;
  }
}

json_t *vd_ubjson_loadb(const void *data, size_t len, vd_error *err) {
  size_t budget = len > SIZE_MAX / VD_UBJSON_ZERO_PAYLOAD_PER_BYTE
                      ? SIZE_MAX
                      : len * VD_UBJSON_ZERO_PAYLOAD_PER_BYTE;
  reader r = {data, data, (const unsigned char *)data + len, budget, err};
  vd_error_clear(err);
  while (r.p < r.end && *r.p == 'N') r.p++;
  if (!need(&r, 1)) return NULL;
  json_t *v = read_value(&r, *r.p++, 0);
  if (v && r.p != r.end) {
    fail(&r, "%zu trailing bytes after the value", (size_t)(r.end - r.p));
    json_decref(v);
    return NULL;
  }
  if (!v && err && !err->message[0]) vd_error_set(err, "out of memory");
  return v;
}

json_t *vd_ubjson_load_file(const char *path, size_t max_size, vd_error *err) {
  size_t size;
  char *data = vd_read_file(path, max_size, &size, err);
  if (!data) return NULL;
  json_t *v = vd_ubjson_loadb(data, size, err);
  free(data);
  if (!v) vd_error_prefix(err, "%s", path);
  return v;
}
