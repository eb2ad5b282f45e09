#include "vd_text.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void vd_text_init(vd_text *t, char *buf, size_t size) {
  *t = (vd_text){.buf = buf, .size = size, .len = 0};
  buf[0] = '\0';
}

void vd_text_append(vd_text *t, const char *s, size_t n) {
  size_t room = t->size - 1 - t->len;
  if (n > room) n = room;
  memcpy(t->buf + t->len, s, n);
  t->len += n;
  t->buf[t->len] = '\0';
}

void vd_text_puts(vd_text *t, const char *s) { vd_text_append(t, s, strlen(s)); }

void vd_text_printf(vd_text *t, const char *fmt, ...) {
  size_t room = t->size - t->len; /* with the NUL */
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(t->buf + t->len, room, fmt, ap);
  va_end(ap);
  if (n > 0) t->len += (size_t)n < room ? (size_t)n : room - 1;
}
