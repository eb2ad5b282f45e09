/* Fuzzes card-number masking (common/vd_pan.h) on arbitrary bytes. Invariants, each an abort:
 * - valid UTF-8 in, valid UTF-8 out (a mask never cuts a character);
 * - no run of 13..19 ASCII digits passing Luhn survives between ASCII non-digits (or the ends
 *   of the text); next to a non-ASCII character it may be part of a longer number of full-width
 *   or other Unicode digits, which is not a card (by design, like a longer run of ASCII digits);
 * - the output is never longer than the input (every mask replaces at least 13 digits with 8
 *   bytes) and the count of masks fits the bytes removed. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vd_buf.h"
#include "vd_pan.h"

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* A run of 13..19 ASCII digits passing Luhn, between ASCII non-digits or the text's ends. */
static bool has_bare_pan(const char *s, size_t len) {
  for (size_t i = 0; i < len;) {
    if (!is_digit(s[i])) {
      i++;
      continue;
    }
    size_t j = i;
    while (j < len && is_digit(s[j])) j++;
    bool ascii_around =
        (i == 0 || (unsigned char)s[i - 1] < 0x80) && (j == len || (unsigned char)s[j] < 0x80);
    if (ascii_around && j - i >= 13 && j - i <= 19 && vd_luhn_valid(s + i, j - i)) return true;
    i = j;
  }
  return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  vd_buf out = {0};
  size_t found = vd_pan_mask(text, size, &out);
  if (out.oom) abort();
  if (out.len > size) abort();
  if (found * 5 > size - out.len) abort(); /* each mask removes at least 13 - 8 bytes */
  if (has_bare_pan(out.data, out.len)) abort();
  json_t *in = json_stringn(text, size);
  if (in) {
    json_t *masked = json_stringn(out.data ? out.data : "", out.len);
    if (!masked) abort();
    json_decref(masked);
    json_decref(in);
  }
  vd_buf_free(&out);
  return 0;
}
