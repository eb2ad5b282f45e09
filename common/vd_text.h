/* vd_text: text written piece by piece into a buffer the caller owns (often on the stack), cut
 * where snprintf(buf, size, ...) of the whole text would cut it: the first size - 1 bytes, always
 * NUL-terminated. For short texts made on every request (a reason's text, a code such as
 * "model:recency:up"): no heap buffer and no printf per piece, where a vd_buf grows on the heap
 * and snprintf parses its format for every "%s".
 *
 *   char code[64];
 *   vd_text t;
 *   vd_text_init(&t, code, sizeof code);
 *   vd_text_puts(&t, "model:");
 *   vd_text_puts(&t, feature);
 *
 * Nothing is allocated; the struct lives on the caller's stack and borrows buf. */
#ifndef VD_TEXT_H
#define VD_TEXT_H

#include <stddef.h>

typedef struct vd_text {
  char *buf;
  size_t size; /* > 0 */
  size_t len;  /* bytes written so far (< size) */
} vd_text;

/* Starts an empty text in buf[0, size); size must be at least 1. */
void vd_text_init(vd_text *t, char *buf, size_t size);
/* Appends s[0, n) (as far as it fits). */
void vd_text_append(vd_text *t, const char *s, size_t n);
/* Appends the NUL-terminated s. */
void vd_text_puts(vd_text *t, const char *s);
/* Appends printf-formatted text. */
void vd_text_printf(vd_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
