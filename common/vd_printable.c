#include "vd_printable.h"

#include <stdint.h>
#include <stdio.h>

#include "vd_utf8.h"

/* The backslash is the escape character itself: copied as is, a client-typed "\n" would read as
 * an escaped newline. */
static bool non_printing(uint32_t cp) {
  return cp < 0x20 || cp == '\\' || (cp >= 0x7F && cp <= 0x9F) || cp == 0x00AD || cp == 0x034F ||
         cp == 0x061C || cp == 0x180E || (cp >= 0x200B && cp <= 0x200F) ||
         (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x2069) || cp == 0x3164 ||
         cp == 0xFEFF || (cp >= 0xFFF9 && cp <= 0xFFFB) || (cp >= 0xE0000 && cp <= 0xE007F);
}

bool vd_printable_is_plain(const char *text, size_t len) {
  const unsigned char *s = (const unsigned char *)text;
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    size_t n = vd_utf8_decode(s + i, len - i, &cp);
    if (n == 0 || non_printing(cp)) return false;
    i += n;
  }
  return true;
}

void vd_printable_append(vd_buf *b, const char *text, size_t len) {
  const unsigned char *s = (const unsigned char *)text;
  size_t plain = 0; /* start of the run not yet copied */
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    size_t n = vd_utf8_decode(s + i, len - i, &cp);
    if (n != 0 && !non_printing(cp)) {
      i += n;
      continue;
    }
    vd_buf_append(b, text + plain, i - plain);
    if (n == 0)
      vd_buf_printf(b, "\\x%02x", s[i]), n = 1;
    else if (cp == '\n')
      vd_buf_puts(b, "\\n");
    else if (cp == '\r')
      vd_buf_puts(b, "\\r");
    else if (cp == '\t')
      vd_buf_puts(b, "\\t");
    else if (cp == '\\')
      vd_buf_puts(b, "\\\\");
    else if (cp > 0xFFFF)
      vd_buf_printf(b, "\\U%08x", (unsigned)cp);
    else
      vd_buf_printf(b, "\\u%04x", (unsigned)cp);
    i += n;
    plain = i;
  }
  vd_buf_append(b, text + plain, len - plain);
}

void vd_printable_prefix(const char *text, size_t len, char *out, size_t size) {
  size_t w = 0;
  for (size_t i = 0; i < len && i < 40 && w + 5 < size; i++) {
    unsigned char c = (unsigned char)text[i];
    if (c >= 0x20 && c < 0x7f && c != '\\')
      out[w++] = (char)c;
    else
      w += (size_t)snprintf(out + w, size - w, "\\x%02x", c);
  }
  if (len > 40 && w + 4 < size) w += (size_t)snprintf(out + w, size - w, "...");
  out[w] = '\0';
}
