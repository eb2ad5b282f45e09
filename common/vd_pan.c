#include "vd_pan.h"

#include <stdint.h>
#include <string.h>

enum { PAN_MIN = 13, PAN_MAX = 19, MAX_GROUPS = 32 };

bool vd_luhn_valid(const char *digits, size_t count) {
  unsigned sum = 0;
  bool twice = false;
  for (size_t i = count; i-- > 0;) {
    unsigned d = (unsigned)(digits[i] - '0');
    if (twice) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    twice = !twice;
  }
  return count > 0 && sum % 10 == 0;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alnum(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* One group of consecutive digits inside a run: its bytes in the text. */
typedef struct group {
  size_t start, end;
} group;

/* Digits of groups [a, b] into out (at most PAN_MAX); returns the count, or PAN_MAX + 1 when
 * there are more. */
static size_t gather(const char *text, const group *g, size_t a, size_t b, char *out) {
  size_t n = 0;
  for (size_t i = a; i <= b; i++)
    for (size_t p = g[i].start; p < g[i].end; p++) {
      if (n == PAN_MAX) return PAN_MAX + 1;
      out[n++] = text[p];
    }
  return n;
}

static void emit_mask(vd_buf *out, const char *digits, size_t n) {
  vd_buf_puts(out, "****");
  vd_buf_append(out, digits + n - 4, 4);
}

/* Masks the PANs inside one run of digit groups text[g[0].start .. g[count-1].end), copying the
 * rest (separators and groups that are not part of a PAN) unchanged. */
static size_t mask_run(const char *text, const group *g, size_t count, vd_buf *out) {
  size_t found = 0;
  size_t copied = g[0].start; /* text before this is already in out */
  size_t a = 0;
  while (a < count) {
    bool matched = false;
    char digits[PAN_MAX + 1];
    for (size_t b = count; b-- > a;) { /* longest first */
      size_t n = gather(text, g, a, b, digits);
      if (n < PAN_MIN || n > PAN_MAX || !vd_luhn_valid(digits, n)) continue;
      vd_buf_append(out, text + copied, g[a].start - copied);
      emit_mask(out, digits, n);
      copied = g[b].end;
      found++;
      a = b + 1;
      matched = true;
      break;
    }
    if (!matched) a++;
  }
  vd_buf_append(out, text + copied, g[count - 1].end - copied);
  return found;
}

size_t vd_pan_mask(const char *text, size_t len, vd_buf *out) {
  size_t found = 0;
  size_t i = 0;
  size_t plain = 0; /* start of the text not yet copied */
  while (i < len) {
    if (!is_digit(text[i]) || (i > 0 && is_alnum(text[i - 1]))) {
      i++;
      continue;
    }
    /* A run: digit groups joined by single spaces or dashes. */
    group g[MAX_GROUPS];
    size_t count = 0;
    size_t p = i;
    for (;;) {
      size_t start = p;
      while (p < len && is_digit(text[p])) p++;
      if (count < MAX_GROUPS) g[count++] = (group){start, p};
      if (p + 1 < len && (text[p] == ' ' || text[p] == '-') && is_digit(text[p + 1]) &&
          count < MAX_GROUPS) {
        p++;
        continue;
      }
      break;
    }
    size_t end = g[count - 1].end;
    /* glued to a letter ("A4111...x"): not a card number written on its own */
    bool glued = end < len && is_alnum(text[end]) && !is_digit(text[end]);
    vd_buf_append(out, text + plain, i - plain);
    if (glued)
      vd_buf_append(out, text + i, end - i);
    else
      found += mask_run(text, g, count, out);
    plain = end;
    i = end;
  }
  vd_buf_append(out, text + plain, len - plain);
  return found;
}
