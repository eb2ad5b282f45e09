#include "vd_utf8.h"

#include <stdio.h>
#include <string.h>

size_t vd_utf8_valid_prefix(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  uint32_t cp;
  while (i < len) {
    size_t n = vd_utf8_decode(p + i, len - i, &cp);
    if (!n) break;
    i += n;
  }
  return i;
}

size_t vd_utf8_count(const char *s, size_t len) {
  size_t count = 0;
  for (size_t i = 0; i < len; i++)
    if (((unsigned char)s[i] & 0xC0) != 0x80) count++;
  return count;
}

void vd_utf8_escape_invalid(const char *in, char *out, size_t size) {
  const unsigned char *p = (const unsigned char *)in;
  size_t len = strlen(in), i = 0, w = 0;
  uint32_t cp;
  while (i < len) {
    size_t n = vd_utf8_decode(p + i, len - i, &cp);
    if (n) {
      if (w + n >= size) break;
      memcpy(out + w, p + i, n);
      w += n;
      i += n;
    } else {
      if (w + 4 >= size) break;
      snprintf(out + w, size - w, "\\x%02x", p[i]);
      w += 4;
      i++;
    }
  }
  out[w] = '\0';
}

size_t vd_utf8_whole_prefix(const char *s, size_t len) {
  const unsigned char *u = (const unsigned char *)s;
  size_t start = len, back = 0;
  while (start > 0 && back < 3 && (u[start - 1] & 0xC0) == 0x80) start--, back++;
  if (start == 0 || u[start - 1] < 0xC0) return len; /* ends on ASCII or stray continuations */
  unsigned char lead = u[start - 1];
  size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
  return len - (start - 1) < need ? start - 1 : len;
}
