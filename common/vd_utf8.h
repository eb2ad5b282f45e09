/* vd_utf8: UTF-8 as every module reads it — RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF (the same acceptance as jansson's, so text verdict accepts, jansson writes).
 *
 * One decoder for the JSON writer, ASCII folding, the text featuriser, CEL strings and error
 * messages; it is inline because the writer and the featuriser call it per character.
 * No allocation; inputs are borrowed. */
#ifndef VD_UTF8_H
#define VD_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* The length (1-4) of the valid UTF-8 sequence at s, of which `left` (>= 1) bytes are readable,
 * with its code point in *cp; 0 when the bytes there are not one (then *cp is unspecified). */
static inline size_t vd_utf8_decode(const unsigned char *s, size_t left, uint32_t *cp) {
  unsigned char c = s[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  size_t n;
  uint32_t v;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    v = c & 0x1Fu;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    v = c & 0x0Fu;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    v = c & 0x07u;
  } else {
    return 0; /* a continuation byte, an overlong 2-byte lead (C0, C1) or beyond U+10FFFF */
  }
  if (n > left) return 0;
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    v = (v << 6) | (s[i] & 0x3Fu);
  }
  if ((n == 3 && v < 0x800) || (n == 4 && v < 0x10000) || v > 0x10FFFF ||
      (v >= 0xD800 && v <= 0xDFFF))
    return 0;
  *cp = v;
  return n;
}

/* The length of the longest valid UTF-8 prefix of s[0..len): len when all of it is valid. */
size_t vd_utf8_valid_prefix(const char *s, size_t len);

/* len, less the bytes of a character cut short at the end of s[0..len) (text cut to fit a
 * buffer): what is left ends on a character boundary. Bytes before are not looked at. */
size_t vd_utf8_whole_prefix(const char *s, size_t len);

/* The number of code points in valid UTF-8 text (continuation bytes are not counted). */
size_t vd_utf8_count(const char *s, size_t len);

/* Copies the NUL-terminated in to out as valid UTF-8 whatever it holds: valid sequences as they
 * are, every other byte as the four characters \xNN; out is cut at a character boundary to fit
 * size (>= 1) and NUL-terminated. For text that must go into JSON, such as an error message that
 * quotes what a client sent. */
void vd_utf8_escape_invalid(const char *in, char *out, size_t size);

#endif
