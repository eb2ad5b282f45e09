#include "vd_number.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static const char *skip_digits(const char *p, const char *end) {
  while (p < end && is_digit(*p)) p++;
  return p;
}

/* Why text that is not a number at p (the integer part) fails to start one. */
static bool no_integer_part(const char *p, const char *end, vd_error *err) {
  size_t left = (size_t)(end - p);
  if (p < end && *p == '.') return vd_error_set(err, "no digit before the '.' (write 0.5, not .5)");
  if ((left >= 3 && strncasecmp(p, "inf", 3) == 0) || (left >= 3 && strncasecmp(p, "nan", 3) == 0))
    return vd_error_set(err, "infinity and NaN are not JSON numbers");
  return vd_error_set(err, "not a number as JSON writes one (-12, 3.5, 1e-9)");
}

size_t vd_number_span(const char *text, size_t len) {
  const char *p = text, *end = text + len;
  if (p < end && *p == '-') p++;
  if (p == end || !is_digit(*p)) return 0;
  p = *p == '0' ? p + 1 : skip_digits(p, end);
  if (p + 1 < end && *p == '.' && is_digit(p[1])) p = skip_digits(p + 1, end);
  if (p < end && (*p == 'e' || *p == 'E')) {
    const char *q = p + 1;
    if (q < end && (*q == '+' || *q == '-')) q++;
    if (q < end && is_digit(*q)) p = skip_digits(q, end);
  }
  return (size_t)(p - text);
}

/* Why a number stops being one at text[n] (n < len, after a whole integer part). */
static bool stops_early(const char *text, size_t n, vd_error *err) {
  bool fraction = memchr(text, '.', n) != NULL;
  bool exponent = memchr(text, 'e', n) != NULL || memchr(text, 'E', n) != NULL;
  char c = text[n];
  if (c == '.' && !fraction && !exponent)
    return vd_error_set(err, "no digit after the '.' (write 5.0 or 5, not 5.)");
  if ((c == 'e' || c == 'E') && !exponent) return vd_error_set(err, "no digits in the exponent");
  return vd_error_set(err, "unexpected text after the number");
}

bool vd_number_parse(const char *text, size_t len, vd_number *out, vd_error *err) {
  const char *p = text, *end = text + len;
  if (len == 0) return vd_error_set(err, "no digits (an empty text)");
  if (memchr(text, '\0', len)) return vd_error_set(err, "a NUL byte inside the number");
  if (strchr(" \t\r\n\v\f", text[0]) || strchr(" \t\r\n\v\f", text[len - 1]))
    return vd_error_set(err, "spaces around the number (JSON numbers have none)");
  if (*p == '+') return vd_error_set(err, "a leading '+' (JSON numbers have none: write 5)");
  if (*p == '-') p++;
  if (p + 1 < end && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
    return vd_error_set(err, "hexadecimal is not a JSON number: write it in decimal");
  if (p + 1 < end && p[0] == '0' && is_digit(p[1]))
    return vd_error_set(err, "a leading zero (write 7, not 07)");
  if (p == end || !is_digit(*p)) return no_integer_part(p, end, err);
  size_t n = vd_number_span(text, len);
  if (n != len) return stops_early(text, n, err);
  bool integer = !memchr(text, '.', len) && !memchr(text, 'e', len) && !memchr(text, 'E', len);
  /* strtod/strtoll need a terminated copy; the grammar above bounds what they can read. */
  char small[64];
  char *copy = len < sizeof small ? small : malloc(len + 1);
  if (!copy) return vd_error_set(err, "out of memory");
  memcpy(copy, text, len);
  copy[len] = '\0';
  bool ok = true;
  errno = 0;
  out->is_integer = integer;
  out->integer = integer ? strtoll(copy, NULL, 10) : 0;
  if (integer && errno == ERANGE)
    ok = vd_error_set(err, "beyond the 64-bit integer range (as in a JSON body)");
  /* an integer's double is the integer's, as jansson's (-0 is 0); a real's strtod's, ERANGE on
   * underflow included: kept, as jansson keeps it */
  out->real = integer ? (double)out->integer : strtod(copy, NULL);
  if (ok && isinf(out->real)) ok = vd_error_set(err, "beyond the range of a double");
  if (copy != small) free(copy);
  return ok;
}
