#include "vd_json_check.h"

#include <stdint.h>
#include <string.h>

#include "vd_number.h"
#include "vd_utf8.h"

typedef struct scan {
  const unsigned char *start, *p, *end;
  vd_error *err;
} scan;

static bool fail(scan *s, const char *why) {
  vd_error_set(s->err, "not one JSON object: %s at byte %zu", why, (size_t)(s->p - s->start));
  return false;
}

static void skip_space(scan *s) {
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

/* Four hex digits after "\u" (s->p at the first); their value in *unit. */
static bool hex4(scan *s, unsigned *unit) {
  if (s->end - s->p < 4) return fail(s, "a short \\u escape");
  *unit = 0;
  for (int i = 0; i < 4; i++) {
    unsigned char c = s->p[i];
    unsigned d = 16u;
    if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
    if (c >= 'a' && c <= 'f') d = (unsigned)(c - 'a') + 10u;
    if (c >= 'A' && c <= 'F') d = (unsigned)(c - 'A') + 10u;
    if (d == 16) return fail(s, "a \\u escape with a non-hex digit");
    *unit = *unit << 4 | d;
  }
  s->p += 4;
  return true;
}

/* Bytes a string's scan must stop at: the quote, the backslash, control characters, and the
 * lead bytes of multi-byte UTF-8 (checked by vd_utf8_decode); everything else is skipped in one
 * tight loop — most of a trace is plain ASCII inside strings. */
static bool stops_string(unsigned char c) { return c == '"' || c == '\\' || c < 0x20 || c >= 0x80; }

/* A string, s->p at its opening quote; leaves s->p past the closing one. */
static bool string(scan *s) {
  s->p++;
  while (s->p < s->end) {
    while (s->p < s->end && !stops_string(*s->p)) s->p++;
    if (s->p == s->end) break;
    unsigned char c = *s->p;
    if (c == '"') {
      s->p++;
      return true;
    }
    if (c < 0x20) return fail(s, "a control character inside a string");
    if (c >= 0x80) {
      uint32_t cp;
      size_t n = vd_utf8_decode(s->p, (size_t)(s->end - s->p), &cp);
      if (!n) return fail(s, "invalid UTF-8");
      s->p += n;
      continue;
    }
    s->p++;
    if (c != '\\') continue;
    if (s->p == s->end) break;
    c = *s->p++;
    if (c != 'u') {
      if (!strchr("\"\\/bfnrt", c)) return fail(s, "an invalid escape");
      continue;
    }
    unsigned unit = 0;
    if (!hex4(s, &unit)) return false;
    if (unit == 0) return fail(s, "an escaped NUL (\\u0000)");
    if (unit >= 0xDC00 && unit <= 0xDFFF) return fail(s, "a lone low surrogate");
    if (unit >= 0xD800 && unit <= 0xDBFF) {
      unsigned low = 0;
      if (s->end - s->p < 2 || s->p[0] != '\\' || s->p[1] != 'u')
        return fail(s, "a high surrogate without its low half");
      s->p += 2;
      if (!hex4(s, &low)) return false;
      if (low < 0xDC00 || low > 0xDFFF) return fail(s, "a high surrogate without its low half");
    }
  }
  return fail(s, "an unterminated string");
}

/* A number (vd_number's grammar); one cut short ("1.", "1e", "01") is malformed, not a number
 * followed by something else. */
static bool number(scan *s) {
  size_t n = vd_number_span((const char *)s->p, (size_t)(s->end - s->p));
  s->p += n;
  if (!n || (s->p < s->end && strchr(".eE0123456789", *s->p))) return fail(s, "a malformed number");
  return true;
}

static bool literal(scan *s, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
    return fail(s, "an unexpected character");
  s->p += n;
  return true;
}

bool vd_json_check_object(const char *text, size_t len, const char *key, const char **value,
                          size_t *value_len, vd_error *err) {
  scan s = {(const unsigned char *)text, (const unsigned char *)text,
            (const unsigned char *)text + len, err};
  if (value) {
    *value = NULL;
    *value_len = 0;
  }
  size_t key_len = key ? strlen(key) : 0;
  char open[VD_JSON_CHECK_MAX_DEPTH]; /* '{' or '[' per level */
  size_t depth = 0;
  enum { MEMBER_OR_END, MEMBER, ELEMENT_OR_END, VALUE, AFTER_VALUE } state = VALUE;
  bool wanted = false; /* the value coming is the top-level object's `key` */
  skip_space(&s);
  if (s.p == s.end || *s.p != '{') return fail(&s, "it does not start with '{'");
  for (;;) {
    skip_space(&s);
    if (s.p == s.end) {
      if (depth == 0 && state == AFTER_VALUE) return true;
      return fail(&s, "the text ends early");
    }
    unsigned char c = *s.p;
    switch (state) {
      case MEMBER_OR_END:
      case ELEMENT_OR_END:
        if (c == (state == MEMBER_OR_END ? '}' : ']')) {
          s.p++;
          depth--;
          state = AFTER_VALUE;
          break;
        }
        state = state == MEMBER_OR_END ? MEMBER : VALUE;
        break;
      case MEMBER: {
        if (c != '"') return fail(&s, "a member without a quoted name");
        const unsigned char *name = s.p + 1;
        if (!string(&s)) return false;
        wanted = key && depth == 1 && (size_t)(s.p - 1 - name) == key_len &&
                 memcmp(name, key, key_len) == 0;
        skip_space(&s);
        if (s.p == s.end || *s.p != ':') return fail(&s, "a member name without ':'");
        s.p++;
        state = VALUE;
        break;
      }
      case VALUE:
        if (c == '{' || c == '[') {
          if (depth == VD_JSON_CHECK_MAX_DEPTH) return fail(&s, "nesting too deep");
          if (wanted && value) *value = NULL; /* the last `key` is not a string */
          open[depth++] = (char)c;
          s.p++;
          state = c == '{' ? MEMBER_OR_END : ELEMENT_OR_END;
          wanted = false;
          break;
        }
        if (depth == 0) return fail(&s, "it does not start with '{'");
        if (c == '"') {
          const unsigned char *from = s.p + 1;
          if (!string(&s)) return false;
          if (wanted && value) {
            *value = (const char *)from;
            *value_len = (size_t)(s.p - 1 - from);
          }
        } else {
          if (wanted && value) *value = NULL;
          if (c == '-' || (c >= '0' && c <= '9')) {
            if (!number(&s)) return false;
          } else if (!literal(&s, c == 't' ? "true" : c == 'f' ? "false" : "null")) {
            return false;
          }
        }
        wanted = false;
        state = AFTER_VALUE;
        break;
      case AFTER_VALUE:
        if (depth == 0) return fail(&s, "more after the object");
        if (c == ',') {
          s.p++;
          state = open[depth - 1] == '{' ? MEMBER : VALUE;
        } else if (c == (open[depth - 1] == '{' ? '}' : ']')) {
          s.p++;
          depth--;
        } else {
          return fail(&s, open[depth - 1] == '{' ? "a member not followed by ',' or '}'"
                                                 : "an element not followed by ',' or ']'");
        }
        break;
    }
  }
}
