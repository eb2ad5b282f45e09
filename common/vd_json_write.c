#include "vd_json_write.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vd_utf8.h"

/* Bytes jansson escapes in a string without JSON_ENSURE_ASCII / JSON_ESCAPE_SLASH: '"', '\\' and
 * the control characters; bytes >= 0x80 start a UTF-8 sequence that must be valid. */
static bool needs_care(unsigned char c) {
  return (unsigned char)(c - 0x20) >= 0x60 || c == '"' || c == '\\'; /* < 0x20 or >= 0x80 */
}

/* Makes room for `extra` more bytes and the NUL after them (vd_buf's contract). */
static bool grow(vd_buf *b, size_t extra) {
  if (b->oom) return false;
  size_t capacity = b->capacity ? b->capacity : 1024;
  while (capacity < b->len + extra + 1) capacity *= 2;
  char *data = realloc(b->data, capacity);
  if (!data) {
    b->oom = true;
    return false;
  }
  b->data = data;
  b->capacity = capacity;
  return true;
}

static inline bool room(vd_buf *b, size_t extra) {
  return b->len + extra + 1 <= b->capacity || grow(b, extra);
}

static inline void put(vd_buf *b, const char *s, size_t n) {
  memcpy(b->data + b->len, s, n);
  b->len += n;
}

typedef signed char bytes16 __attribute__((vector_size(16)));

/* True when one of the 16 bytes of the words a and b needs care (see needs_care): as signed
 * bytes, the control bytes and those >= 0x80 are exactly the ones below 0x20. Vector code (GCC
 * and clang vector extensions: SSE2 on x86-64, NEON on arm64, plain code elsewhere): a few
 * instructions for 16 bytes, its constants in vector registers the callers do not save. */
static inline bool words_need_care(uint64_t a, uint64_t b) {
  uint64_t w[2] = {a, b};
  bytes16 v;
  memcpy(&v, w, sizeof v);
  bytes16 hits = (v < 0x20) | (v == '"') | (v == '\\');
  memcpy(w, &hits, sizeof w);
  return (w[0] | w[1]) != 0;
}

static inline uint64_t load64(const unsigned char *p) {
  uint64_t w;
  memcpy(&w, p, sizeof w);
  return w;
}

/* Copies the plain prefix of s[0, len) (no byte needs care) to dst and returns its length (a
 * shorter prefix may be reported: the caller goes on from there): most strings of a trace (keys,
 * ids, names) are plain ASCII and come out in this one pass, 16 bytes a step and the last 16
 * (for 8 to 15 bytes: two words, 4 to 7: two halves), overlapping what came before — no byte
 * loop and no memcpy call but for strings under 4 bytes. */
static inline size_t copy_plain(const unsigned char *s, size_t len, char *dst) {
  if (len >= 8) {
    size_t i = 0;
    for (; len - i > 16; i += 16) {
      uint64_t a = load64(s + i), b = load64(s + i + 8);
      if (words_need_care(a, b)) return i;
      memcpy(dst + i, &a, 8);
      memcpy(dst + i + 8, &b, 8);
    }
    size_t last = len >= 16 ? len - 16 : 0; /* [last, len) holds the 1 to 16 bytes left */
    uint64_t a = load64(s + last), b = load64(s + len - 8);
    if (words_need_care(a, b)) return i;
    memcpy(dst + last, &a, 8);
    memcpy(dst + len - 8, &b, 8);
    return len;
  }
  if (len >= 4) {
    uint32_t head, tail;
    memcpy(&head, s, 4);
    memcpy(&tail, s + len - 4, 4);
    uint64_t both = head | (uint64_t)tail << 32;
    if (words_need_care(both, both)) return 0;
    memcpy(dst, &head, 4);
    memcpy(dst + len - 4, &tail, 4);
    return len;
  }
  size_t i = 0;
  for (; i < len && !needs_care(s[i]); i++) dst[i] = (char)s[i];
  return i;
}

/* Out of line, so that the plain case saves no registers for it. */
static bool write_escaped(const char *str, size_t len, size_t plain, vd_buf *out)
    __attribute__((noinline));

/* A JSON string: the plain case inline, the rest (escapes, UTF-8 checks) in write_escaped. */
static inline bool write_string(const char *str, size_t len, vd_buf *out) {
  if (!room(out, len + 2)) return false; /* escapes make more room as they come */
  char *dst = out->data + out->len;
  dst[0] = '"';
  size_t plain = copy_plain((const unsigned char *)str, len, dst + 1);
  if (plain < len) {
    out->len++;
    return write_escaped(str, len, plain, out);
  }
  dst[len + 1] = '"';
  out->len += len + 2;
  return true;
}

/* The string after its opening quote (write_string made room for it unescaped and the closing
 * quote), going on after the first `plain` bytes, known plain. */
static bool write_escaped(const char *str, size_t len, size_t plain, vd_buf *out) {
  const unsigned char *s = (const unsigned char *)str;
  size_t run = 0; /* start of the bytes not yet copied (the plain prefix is copied again) */
  for (size_t i = plain; i < len;) {
    /* most of a trace's text is plain ASCII: 16 bytes a step, then byte by byte */
    while (len - i >= 16 && !words_need_care(load64(s + i), load64(s + i + 8))) i += 16;
    while (i < len && !needs_care(s[i])) i++;
    if (i == len) break;
    unsigned char c = s[i];
    if (c >= 0x80) {
      uint32_t cp;
      size_t n = vd_utf8_decode(s + i, len - i, &cp);
      if (!n) return false;
      i += n;
      continue;
    }
    put(out, str + run, i - run);
    if (!room(out, 6 + (len - i) + 1)) return false;
    char *p = out->data + out->len;
    p[0] = '\\';
    out->len += 2;
    switch (c) {
      case '"':
        p[1] = '"';
        break;
      case '\\':
        p[1] = '\\';
        break;
      case '\b':
        p[1] = 'b';
        break;
      case '\f':
        p[1] = 'f';
        break;
      case '\n':
        p[1] = 'n';
        break;
      case '\r':
        p[1] = 'r';
        break;
      case '\t':
        p[1] = 't';
        break;
      default: {
        static const char hex[] = "0123456789ABCDEF"; /* jansson writes \\u%04X */
        p[1] = 'u';
        p[2] = '0';
        p[3] = '0';
        p[4] = hex[c >> 4];
        p[5] = hex[c & 15];
        out->len += 4;
      }
    }
    run = ++i;
  }
  put(out, str + run, len - run);
  out->data[out->len++] = '"';
  return true;
}

/* Decimal digits of v ending at `end`; returns the first digit. */
static char *digits_of(uint64_t v, char *end) {
  do {
    *--end = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  return end;
}

static void write_integer(json_int_t v, vd_buf *out) {
  char buf[24];
  uint64_t magnitude = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  char *p = digits_of(magnitude, buf + sizeof buf);
  if (v < 0) *--p = '-';
  put(out, p, (size_t)(buf + sizeof buf - p));
}

static const uint64_t p10[] = {1u,
                               10u,
                               100u,
                               1000u,
                               10000u,
                               100000u,
                               1000000u,
                               10000000u,
                               100000000u,
                               1000000000u,
                               10000000000u,
                               100000000000u,
                               1000000000000u,
                               10000000000000u,
                               100000000000000u,
                               1000000000000000u,
                               10000000000000000u,
                               100000000000000000u,
                               1000000000000000000u,
                               10000000000000000000u};

/* The first 17 significant digits of a (1e-6 <= a < 1e17) without printf: *whole is
 * floor(a * 10^k) with k = 16 - X (X the decimal exponent, in *x), computed exactly in 128-bit
 * integers (mantissa < 2^53, 10^k <= 10^22 < 2^74); *tail tells how the cut-off rest compares
 * with half a unit of the 17th digit (-1, 0, 1) and *inexact whether any rest was cut. False when
 * a is outside the range (the caller uses snprintf). */
static bool first_17_digits(double a, uint64_t *whole_out, int *x_out, int *k_out, int *tail,
                            bool *inexact) {
  if (!(a >= 1e-6 && a < 1e17)) return false;
  uint64_t bits; /* a is normal here: a = (2^52 + fraction bits) * 2^(exponent - 1075) */
  memcpy(&bits, &a, sizeof bits);
  int exponent = (int)(bits >> 52 & 0x7ffu);
  uint64_t mantissa = (bits & ((UINT64_C(1) << 52) - 1)) | (UINT64_C(1) << 52);
  int shift = 1075 - exponent; /* a = mantissa * 2^-shift */
  /* floor(log10(a)) to within 2 from the binary exponent e = exponent - 1023: floor(e log10 2)
   * (78913 / 2^18 ~ log10 2), rounded down for a < 1 too (C division rounds a negative quotient
   * up: one attempt more for most numbers of a trace); the attempts below settle it exactly
   * (whole must have 17 digits) */
  int scaled_e = (exponent - 1023) * 78913;
  int x = scaled_e >= 0 ? scaled_e / (1 << 18) : -((-scaled_e + (1 << 18) - 1) / (1 << 18));
  for (int attempt = 0; attempt < 5; attempt++) {
    int k = 16 - x;
    if (k < 0 || k > 22) return false;
    unsigned __int128 scaled =
        (unsigned __int128)mantissa * (k > 19 ? (unsigned __int128)p10[19] * p10[k - 19] : p10[k]);
    unsigned __int128 whole, rest = 0, half = 0;
    if (shift > 0) {
      if (shift >= 127) return false;
      whole = scaled >> shift;
      rest = scaled & ((((unsigned __int128)1) << shift) - 1);
      half = ((unsigned __int128)1) << (shift - 1);
    } else {
      if (-shift > 10) return false;
      whole = scaled << -shift;
    }
    if (whole >= p10[17]) {
      x++;
      continue;
    }
    if (whole < p10[16]) {
      x--;
      continue;
    }
    *whole_out = (uint64_t)whole;
    *x_out = x;
    *k_out = k;
    *tail = rest > half ? 1 : rest == half && shift > 0 ? 0 : -1;
    *inexact = rest != 0;
    return true;
  }
  return false;
}

/* The 8 decimal digits of v < 10^8 at p, two at a time from a table. */
static void eight_digits(uint32_t v, char *p) {
  static const char pairs[] =
      "00010203040506070809101112131415161718192021222324252627282930313233"
      "34353637383940414243444546474849505152535455565758596061626364656667"
      "6869707172737475767778798081828384858687888990919293949596979899";
  uint32_t high = v / 10000, low = v % 10000;
  memcpy(p, pairs + 2 * (high / 100), 2);
  memcpy(p + 2, pairs + 2 * (high % 100), 2);
  memcpy(p + 4, pairs + 2 * (low / 100), 2);
  memcpy(p + 6, pairs + 2 * (low % 100), 2);
}

/* The 17 decimal digits of v < 10^17 at p (leading zeros included). */
static void seventeen_digits(uint64_t v, char *p) {
  p[0] = (char)('0' + v / 10000000000000000u);
  eight_digits((uint32_t)(v / 100000000u % 100000000u), p + 1);
  eight_digits((uint32_t)(v % 100000000u), p + 9);
}

/* glibc's %g layout of the `precision` digits q (X = x) as jansson writes them: fixed notation
 * for -5 < X < 17, else d.ddde-0X with the exponent's leading zero stripped; trailing zeros
 * dropped, ".0" kept on an integral value. Returns the length (buf >= 32 bytes), 0 when X is out
 * of the range this handles. */
static size_t layout_g(bool negative, uint64_t q, int precision, int x, char *buf) {
  if (q == p10[precision]) { /* rounding carried into a new digit */
    q = p10[precision - 1];
    x++;
  }
  if (x >= 17 || x < -6) return 0;
  char digits[17];
  seventeen_digits(q * p10[17 - precision], digits); /* '0's after the precision's digits */
  int last = 16;                                     /* %g drops trailing zeros */
  while (last > 0 && digits[last] == '0') last--;
  size_t n = 0;
  if (negative) buf[n++] = '-';
  if (x < -4) { /* d.ddde-0X, jansson strips the exponent's leading zero */
    buf[n++] = digits[0];
    if (last > 0) {
      buf[n++] = '.';
      memcpy(buf + n, digits + 1, (size_t)last);
      n += (size_t)last;
    }
    buf[n++] = 'e';
    buf[n++] = '-';
    buf[n++] = (char)('0' - x);
    return n;
  }
  if (x < 0) {
    buf[n++] = '0';
    buf[n++] = '.';
    for (int i = 0; i < -x - 1; i++) buf[n++] = '0';
    memcpy(buf + n, digits, (size_t)last + 1);
    return n + (size_t)last + 1;
  }
  memcpy(buf + n, digits, (size_t)x + 1);
  n += (size_t)x + 1;
  if (last > x) {
    buf[n++] = '.';
    memcpy(buf + n, digits + x + 1, (size_t)(last - x));
    n += (size_t)(last - x);
  } else {
    buf[n++] = '.'; /* jansson: a real always shows a '.' or an 'e' */
    buf[n++] = '0';
  }
  return n;
}

/* %.17g without printf for 1e-6 <= |v| < 1e17 (most trace numbers): the 17 digits
 * round-half-even. With `shortest`, the fewest of 15, 16 or 17 digits that read back as v: the
 * 15 (16) digit rounding of the exact value comes from the same 17 digits and the rest, and it
 * reads back as v when c / 10^k == |v| — c (< 2^53) and 10^k (k <= 22) are exact doubles, so
 * that is one correctly rounded division, what strtod does with the text. A 16-digit c beyond
 * 2^53 (from 9007199254740993 on: one value in ten) is no exact double, but it needs no check:
 * c >= 2^53 + 1 puts the spacing of 16-digit decimals near |v| (10^-kp) below |v| / 2^53, and
 * that is below ulp(v) (|v| < 2^53 ulp(v), 53-bit significand), so the 16-digit rounding lies
 * within half an ulp of v and always reads back — what snprintf's %.16g and strtod found when
 * this case went to format_shortest. Returns the length written to buf (>= 32 bytes), 0 when v
 * is outside the range (the caller uses snprintf). */
static size_t format_g(double v, bool shortest, char *buf) {
  double a = fabs(v);
  uint64_t whole;
  int x, k, tail;
  bool inexact;
  if (!first_17_digits(a, &whole, &x, &k, &tail, &inexact)) return 0;
  static const double p10d[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  for (int precision = 15; shortest && precision < 17; precision++) {
    uint64_t d = p10[17 - precision], c = whole / d, r = whole % d;
    if (r > d / 2 || (r == d / 2 && (inexact || (c & 1)))) c++; /* half-even on the exact value */
    int kp = k - (17 - precision);
    if (kp < 0 || kp > 22) return 0;
    if (c > (UINT64_C(1) << 53) || (double)c / p10d[kp] == a)
      return layout_g(signbit(v), c, precision, x, buf);
  }
  uint64_t q = whole + (tail > 0 || (tail == 0 && (whole & 1)));
  return layout_g(signbit(v), q, 17, x, buf);
}

/* The shortest of %.15g, %.16g and %.17g that reads back as v (%.15g is the shortest form
 * whenever any of at most 15 digits is: %g drops trailing zeros), with snprintf + strtod: the
 * values format_g cannot take. A subnormal carries fewer than 15 significant digits (5e-324 is
 * one), so its %.15g is not its shortest: it tries every precision from 1. Returns the length
 * written to buf (40 bytes of room), 0 on error. */
static size_t format_shortest(double v, char *buf) {
  for (int precision = fabs(v) < DBL_MIN ? 1 : 15; precision <= 17; precision++) {
    int n = snprintf(buf, 40, "%.*g", precision, v);
    if (n > 0 && n < 40 && (precision == 17 || strtod(buf, NULL) == v)) return (size_t)n;
  }
  return 0;
}

/* jansson's jsonp_dtostr with precision 17: "%.17g", ".0" appended when the text has neither '.'
 * nor 'e', and the exponent stripped of its '+' and leading zeros. Integral values below 1e17
 * print as their digits under %.17g, so they skip snprintf. Needs 40 bytes of room. With
 * `shortest`, the digits are the shortest that read back as v (format_shortest), laid out the
 * same way. */
static void write_real(double v, bool shortest, vd_buf *out) {
  if (v == floor(v) && fabs(v) < 1e17) {
    char buf[28];
    char *end = buf + 24;
    char *p = digits_of((uint64_t)fabs(v), end);
    if (signbit(v)) *--p = '-';
    end[0] = '.';
    end[1] = '0';
    put(out, p, (size_t)(end + 2 - p));
    return;
  }
  char *buf = out->data + out->len;
  size_t fast = format_g(v, shortest, buf);
  if (fast) {
    out->len += fast;
    return;
  }
  int n = shortest ? (int)format_shortest(v, buf) : snprintf(buf, 40, "%.17g", v);
  if (n <= 0 || n >= 40) {
    out->oom = true;
    return;
  }
  size_t len = (size_t)n;
  char *e = memchr(buf, 'e', len);
  if (!e) {
    if (!memchr(buf, '.', len)) {
      buf[len++] = '.';
      buf[len++] = '0';
    }
  } else {
    char *start = e + 1, *end = e + 2;
    if (*start == '-') start++;
    while (*end == '0') end++;
    if (end != start) {
      memmove(start, end, (size_t)(buf + len - end));
      len -= (size_t)(end - start);
    }
  }
  out->len += len;
}

/* How to write, and where the text of one marked value went. */
typedef struct writer {
  bool shortest;
  const json_t *part; /* may be NULL */
  size_t part_start, part_end;
  bool part_found;
} writer;

static bool write_value(const json_t *json, writer *w, vd_buf *out);

static bool write_node(const json_t *json, writer *w, vd_buf *out) {
  bool shortest = w->shortest;
  if (!json || !room(out, 40)) return false; /* any scalar but a string, or one bracket */
  switch (json_typeof(json)) {
    case JSON_NULL:
      put(out, "null", 4);
      break;
    case JSON_TRUE:
      put(out, "true", 4);
      break;
    case JSON_FALSE:
      put(out, "false", 5);
      break;
    case JSON_INTEGER:
      write_integer(json_integer_value(json), out);
      break;
    case JSON_REAL:
      write_real(json_real_value(json), shortest, out);
      break;
    case JSON_STRING:
      return write_string(json_string_value(json), json_string_length(json), out);
    case JSON_ARRAY: {
      out->data[out->len++] = '[';
      size_t n = json_array_size(json);
      for (size_t i = 0; i < n; i++) {
        if (i) {
          if (!room(out, 1)) return false;
          out->data[out->len++] = ',';
        }
        if (!write_value(json_array_get(json, i), w, out)) return false;
      }
      if (!room(out, 1)) return false;
      out->data[out->len++] = ']';
      break;
    }
    case JSON_OBJECT: {
      out->data[out->len++] = '{';
      bool first = true;
      /* json_object_iter walks insertion order, which is what json_dumps writes. */
      for (void *it = json_object_iter((json_t *)json); it;
           it = json_object_iter_next((json_t *)json, it)) {
        if (!first) {
          if (!room(out, 1)) return false;
          out->data[out->len++] = ',';
        }
        first = false;
        if (!write_string(json_object_iter_key(it), json_object_iter_key_len(it), out) ||
            !room(out, 1))
          return false;
        out->data[out->len++] = ':';
        if (!write_value(json_object_iter_value(it), w, out)) return false;
      }
      if (!room(out, 1)) return false;
      out->data[out->len++] = '}';
      break;
    }
    default:
      return false;
  }
  return !out->oom;
}

static bool write_value(const json_t *json, writer *w, vd_buf *out) {
  if (json != w->part) return write_node(json, w, out);
  w->part_start = out->len;
  bool ok = write_node(json, w, out);
  w->part_end = out->len;
  w->part_found = true;
  return ok;
}

static bool write_text(const json_t *json, writer *w, vd_buf *out) {
  bool ok = json && write_value(json, w, out);
  if (out->data) out->data[out->len] = '\0';
  return ok && !out->oom;
}

/* A first buffer that holds a whole trace (~8-10 KB) or response: no realloc chain while writing.
 */
enum { FIRST_CAPACITY = 16 * 1024 };

static char *dumps(const json_t *json, writer *w, size_t *len) {
  vd_buf b = {0};
  if (json_is_object(json) || json_is_array(json)) {
    b.data = malloc(FIRST_CAPACITY);
    if (b.data) b.capacity = FIRST_CAPACITY;
  }
  if (!write_text(json, w, &b)) {
    vd_buf_free(&b);
    return NULL;
  }
  if (len) *len = b.len;
  return vd_buf_take(&b);
}

bool vd_json_write_compact(const json_t *json, vd_buf *out) {
  writer w = {.shortest = false};
  return write_text(json, &w, out);
}

char *vd_json_dumps_compact(const json_t *json, size_t *len) {
  writer w = {.shortest = false};
  return dumps(json, &w, len);
}

bool vd_json_write_shortest(const json_t *json, vd_buf *out) {
  writer w = {.shortest = true};
  return write_text(json, &w, out);
}

char *vd_json_dumps_shortest(const json_t *json, size_t *len) {
  writer w = {.shortest = true};
  return dumps(json, &w, len);
}

char *vd_json_dumps_shortest_part(const json_t *json, const json_t *part, size_t *len,
                                  size_t *part_start, size_t *part_end) {
  writer w = {.shortest = true, .part = part};
  char *text = dumps(json, &w, len);
  *part_start = w.part_found ? w.part_start : 0;
  *part_end = w.part_found ? w.part_end : 0;
  return text;
}

/* ---- vd_json_emit ------------------------------------------------------------------------ */

void vd_json_emit_text(vd_json_emit *e, vd_buf *out) { *e = (vd_json_emit){.text = out}; }

void vd_json_emit_tree(vd_json_emit *e) { *e = (vd_json_emit){0}; }

static bool emit_fail(vd_json_emit *e) {
  e->failed = true;
  return false;
}

static bool in_object(const vd_json_emit *e) {
  return e->depth > 0 && (e->objects >> (e->depth - 1) & 1u);
}

/* Text mode: the separator and the pending key before a value. False when the emitter failed or
 * the value cannot go here (no key inside an object, a second root). */
static bool emit_begin(vd_json_emit *e) {
  if (e->failed) return false;
  const char *key = e->key;
  e->key = NULL;
  if (in_object(e) && !key) return emit_fail(e);
  if (!e->text) return true;
  vd_buf *b = e->text;
  if (e->depth == 0) {
    if (e->rooted) return emit_fail(e); /* one document per emitter */
    e->rooted = true;
    return true;
  }
  unsigned long long bit = 1ull << (e->depth - 1);
  if (e->nonempty & bit) {
    if (!room(b, 1)) return emit_fail(e);
    b->data[b->len++] = ',';
  }
  e->nonempty |= bit;
  if (key && (!write_string(key, strlen(key), b) || !room(b, 1))) return emit_fail(e);
  if (key) b->data[b->len++] = ':';
  return true;
}

/* Tree mode: attaches v (stolen) where the next value goes. */
static bool emit_attach(vd_json_emit *e, json_t *v, const char *key) {
  if (!v) return emit_fail(e);
  bool attached;
  if (e->depth == 0)
    attached = !e->root && (e->root = v) != NULL;
  else if (key)
    attached = json_object_set_new(e->open[e->depth - 1], key, v) == 0;
  else
    attached = json_array_append_new(e->open[e->depth - 1], v) == 0;
  if (!attached) {
    if (e->depth == 0) json_decref(v);
    return emit_fail(e);
  }
  return true;
}

/* One scalar or parsed value in tree mode (stolen), after emit_begin. */
static void emit_tree_value(vd_json_emit *e, const char *key, json_t *v) { emit_attach(e, v, key); }

static void emit_open(vd_json_emit *e, bool object) {
  const char *key = e->key;
  if (!emit_begin(e)) return;
  if (e->depth == VD_JSON_EMIT_DEPTH) {
    emit_fail(e);
    return;
  }
  if (e->text) {
    if (!room(e->text, 1)) {
      emit_fail(e);
      return;
    }
    e->text->data[e->text->len++] = object ? '{' : '[';
  } else {
    json_t *c = object ? json_object() : json_array();
    if (!emit_attach(e, c, key)) return;
    e->open[e->depth] = c; /* borrowed: its parent (or root) holds it */
  }
  unsigned long long bit = 1ull << e->depth;
  e->nonempty &= ~bit;
  if (object)
    e->objects |= bit;
  else
    e->objects &= ~bit;
  e->depth++;
}

void vd_json_emit_object(vd_json_emit *e) { emit_open(e, true); }

void vd_json_emit_array(vd_json_emit *e) { emit_open(e, false); }

void vd_json_emit_end(vd_json_emit *e) {
  if (e->failed) return;
  if (e->depth == 0 || e->key) {
    emit_fail(e);
    return;
  }
  bool object = in_object(e);
  e->depth--;
  if (!e->text) return;
  if (!room(e->text, 1)) {
    emit_fail(e);
    return;
  }
  e->text->data[e->text->len++] = object ? '}' : ']';
}

void vd_json_emit_key(vd_json_emit *e, const char *key) {
  if (e->failed) return;
  if (!in_object(e) || e->key || !key) emit_fail(e);
  e->key = key;
}

/* A value that may be NULL (then null is written): false when it was NULL or cannot go here;
 * *key gets the pending key (for the tree mode). */
static bool begin_non_null(vd_json_emit *e, const void *value, const char **key) {
  if (!value) {
    vd_json_emit_null(e);
    return false;
  }
  *key = e->key;
  return emit_begin(e);
}

void vd_json_emit_string(vd_json_emit *e, const char *s) {
  const char *key;
  if (!begin_non_null(e, s, &key)) return;
  if (!e->text)
    emit_tree_value(e, key, json_string(s));
  else if (!write_string(s, strlen(s), e->text))
    emit_fail(e);
}

/* emit_begin, then (text mode) room for `extra` bytes: false when nothing is to be written;
 * *key gets the pending key (for the tree mode). */
static bool begin_scalar(vd_json_emit *e, size_t extra, const char **key) {
  *key = e->key;
  if (!emit_begin(e)) return false;
  return !e->text || room(e->text, extra) || emit_fail(e);
}

void vd_json_emit_real(vd_json_emit *e, double v) {
  if (!isfinite(v)) { /* left out with its key, as jansson leaves out json_real(NaN) */
    e->key = NULL;
    return;
  }
  const char *key;
  if (!begin_scalar(e, 40, &key)) return;
  if (!e->text) {
    emit_tree_value(e, key, json_real(v));
    return;
  }
  write_real(v, true, e->text);
  if (e->text->oom) emit_fail(e);
}

void vd_json_emit_integer(vd_json_emit *e, json_int_t v) {
  const char *key;
  if (!begin_scalar(e, 24, &key)) return;
  if (e->text)
    write_integer(v, e->text);
  else
    emit_tree_value(e, key, json_integer(v));
}

/* A literal: null, true or false. */
static void emit_literal(vd_json_emit *e, const char *text, json_t *tree_value) {
  const char *key;
  size_t n = strlen(text);
  if (!begin_scalar(e, n, &key)) return;
  if (e->text)
    put(e->text, text, n);
  else
    emit_tree_value(e, key, tree_value);
}

void vd_json_emit_bool(vd_json_emit *e, bool v) {
  emit_literal(e, v ? "true" : "false", e->text ? NULL : json_boolean(v));
}

void vd_json_emit_null(vd_json_emit *e) { emit_literal(e, "null", e->text ? NULL : json_null()); }

void vd_json_emit_value(vd_json_emit *e, const json_t *v) {
  const char *key;
  if (!begin_non_null(e, v, &key)) return;
  writer w = {.shortest = true};
  if (!e->text)
    emit_tree_value(e, key, json_deep_copy(v));
  else if (!write_value(v, &w, e->text))
    emit_fail(e);
}

void vd_json_emit_raw(vd_json_emit *e, const char *json_text, size_t len) {
  /* json_text may be a piece written earlier into the same buffer, which the separator, the key
   * or the copy itself can move (realloc): keep its offset, not its address */
  const vd_buf *b = e->text;
  uintptr_t at = (uintptr_t)json_text, data = b ? (uintptr_t)b->data : 0;
  bool inside = b && b->data && at >= data && at < data + b->len;
  size_t offset = inside ? (size_t)(at - data) : 0;
  const char *key;
  if (!begin_scalar(e, len, &key)) return;
  if (e->text)
    put(e->text, inside ? e->text->data + offset : json_text, len);
  else
    emit_tree_value(e, key, json_loadb(json_text, len, JSON_DECODE_ANY, NULL));
}

void vd_json_emit_member_string(vd_json_emit *e, const char *key, const char *s) {
  vd_json_emit_key(e, key);
  vd_json_emit_string(e, s);
}

void vd_json_emit_member_real(vd_json_emit *e, const char *key, double v) {
  vd_json_emit_key(e, key);
  vd_json_emit_real(e, v);
}

void vd_json_emit_member_integer(vd_json_emit *e, const char *key, json_int_t v) {
  vd_json_emit_key(e, key);
  vd_json_emit_integer(e, v);
}

void vd_json_emit_member_bool(vd_json_emit *e, const char *key, bool v) {
  vd_json_emit_key(e, key);
  vd_json_emit_bool(e, v);
}

bool vd_json_emit_done(vd_json_emit *e) {
  if (e->failed) return false;
  if (!e->text) return true;
  if (e->depth != 0 || e->key || e->text->oom || !e->text->data) return false;
  e->text->data[e->text->len] = '\0';
  return true;
}

json_t *vd_json_emit_take(vd_json_emit *e) {
  json_t *root = e->root;
  e->root = NULL;
  if (e->failed || e->depth != 0 || e->text) {
    json_decref(root);
    return NULL;
  }
  return root;
}
