#include "vd_pan.h"

#include <stdint.h>
#include <string.h>

#include "vd_utf8.h"

enum {
  PAN_MIN = 13,
  PAN_MAX = 19,
  MAX_SEPARATORS = 3, /* characters between two groups of one number ("4111 - 1111": 3) */
  WINDOW = 32         /* ring of groups; a PAN spans at most PAN_MAX of them */
};

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

/* ---- characters ---- */

typedef enum char_kind { CH_OTHER, CH_DIGIT, CH_SEPARATOR } char_kind;

/* A code point range of one kind; for digits, `first` is the zero of a block of ten. */
typedef struct code_range {
  uint32_t first, last;
} code_range;

/* Decimal digits other than ASCII a card number is plausibly typed with (or pasted from a
 * converter that uses): full-width, Arabic-Indic, extended Arabic-Indic (Persian/Urdu),
 * Devanagari, Bengali, and the five mathematical digit sets. */
static const code_range unicode_digits[] = {
    {0x0660, 0x0669},   {0x06F0, 0x06F9},   {0x0966, 0x096F},   {0x09E6, 0x09EF},
    {0xFF10, 0xFF19},   {0x1D7CE, 0x1D7D7}, {0x1D7D8, 0x1D7E1}, {0x1D7E2, 0x1D7EB},
    {0x1D7EC, 0x1D7F5}, {0x1D7F6, 0x1D7FF},
};

/* Non-ASCII characters that may stand between the groups of a number: every Unicode space
 * (Zs, line and paragraph separators), invisible format characters a tester can slip in (soft
 * hyphen, zero-width space/joiners, word joiner, BOM), dashes (Pd) and the minus sign, dots
 * (middle dot, bullet, ideographic comma and full stop, katakana middle dot) and the full-width
 * forms of ASCII punctuation. */
static const code_range unicode_separators[] = {
    {0x00A0, 0x00A0}, {0x00AD, 0x00AD}, {0x00B7, 0x00B7}, {0x058A, 0x058A}, {0x05BE, 0x05BE},
    {0x1400, 0x1400}, {0x1680, 0x1680}, {0x1806, 0x1806}, {0x180E, 0x180E}, {0x2000, 0x2015},
    {0x2022, 0x2022}, {0x2027, 0x202F}, {0x2043, 0x2043}, {0x205F, 0x2060}, {0x2212, 0x2212},
    {0x2E17, 0x2E17}, {0x2E1A, 0x2E1A}, {0x2E3A, 0x2E3B}, {0x2E40, 0x2E40}, {0x3000, 0x3002},
    {0x301C, 0x301C}, {0x3030, 0x3030}, {0x30A0, 0x30A0}, {0x30FB, 0x30FB}, {0xFE31, 0xFE32},
    {0xFE58, 0xFE58}, {0xFE63, 0xFE63}, {0xFEFF, 0xFEFF}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF20},
    {0xFF3B, 0xFF40}, {0xFF5B, 0xFF65},
};

static const code_range *find_range(const code_range *r, size_t n, uint32_t cp) {
  for (size_t i = 0; i < n; i++)
    if (cp >= r[i].first && cp <= r[i].last) return &r[i];
  return NULL;
}

/* Decodes the UTF-8 character at s[0..len) (len ≥ 1) strictly: an invalid, overlong,
 * surrogate or truncated sequence is one byte of kind CH_OTHER, so runs break there and the
 * bytes are copied unchanged. Returns its width in bytes and its kind; *digit gets a digit's
 * value. */
static size_t classify(const unsigned char *s, size_t len, char_kind *kind, unsigned *digit) {
  const unsigned char c = s[0];
  *kind = CH_OTHER;
  if (c < 0x80) {
    if (c >= '0' && c <= '9') {
      *kind = CH_DIGIT;
      *digit = c - '0';
    } else if ((c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
               (c >= '{' && c <= '~') || c == ' ' || (c >= '\t' && c <= '\r')) {
      *kind = CH_SEPARATOR;
    }
    return 1;
  }
  uint32_t cp;
  size_t width = vd_utf8_decode(s, len, &cp);
  if (width == 0) return 1; /* not UTF-8: one byte of something else */
  const code_range *r =
      find_range(unicode_digits, sizeof unicode_digits / sizeof *unicode_digits, cp);
  if (r) {
    *kind = CH_DIGIT;
    *digit = cp - r->first;
  } else if (find_range(unicode_separators, sizeof unicode_separators / sizeof *unicode_separators,
                        cp)) {
    *kind = CH_SEPARATOR;
  }
  return width;
}

/* ---- groups of digits ---- */

/* One maximal sequence of digits in the text: its bytes, and its digits (ASCII) when it has
 * at most PAN_MAX of them (count says how many, up to PAN_MAX + 1 meaning "more"). */
typedef struct group {
  size_t start, end;
  unsigned char count;
  char digits[PAN_MAX];
} group;

/* Whether byte c can begin a digit: an ASCII digit or the lead byte of one in unicode_digits. */
static bool may_begin_digit(unsigned char c) {
  return (unsigned)(c - '0') < 10u ||
         (c >= 0xD9 && (c == 0xD9 || c == 0xDB || c == 0xE0 || c == 0xEF || c == 0xF0));
}

/* Finds the next group at or after *pos; false at the end of the text. *joined tells whether
 * only 1..MAX_SEPARATORS separator characters stand between *pos and the group (whether it
 * continues the number of the group that ended at *pos); when !want_joined that is not asked,
 * and neither is it once the answer is no: then bytes that cannot begin a digit are skipped
 * without decoding them (most text has no digit at all). */
static bool next_group(const unsigned char *s, size_t len, size_t *pos, bool want_joined, group *g,
                       bool *joined) {
  size_t p = *pos, separators = 0;
  bool other = !want_joined;
  char_kind kind;
  unsigned digit = 0;
  for (;;) {
    if (other || separators > MAX_SEPARATORS)
      while (p < len && !may_begin_digit(s[p])) p++;
    if (p >= len) {
      *pos = p;
      return false;
    }
    size_t w = classify(s + p, len - p, &kind, &digit);
    if (kind == CH_DIGIT) break;
    if (kind == CH_SEPARATOR)
      separators++;
    else
      other = true;
    p += w;
  }
  *joined = !other && separators <= MAX_SEPARATORS;
  g->start = p;
  g->count = 0;
  for (;;) {
    if (g->count < PAN_MAX) g->digits[g->count] = (char)('0' + digit);
    if (g->count <= PAN_MAX) g->count++;
    p += classify(s + p, len - p, &kind, &digit); /* the digit itself */
    if (p >= len) break;
    classify(s + p, len - p, &kind, &digit);
    if (kind != CH_DIGIT) break;
  }
  g->end = p;
  *pos = p;
  return true;
}

/* The longest PAN made of whole groups starting at w[first]: how many groups it spans (0: none)
 * and its last four digits. Luhn is kept for both parities as the digits come, so each length
 * is checked in O(1). */
static size_t longest_pan(const group *ring, size_t first, size_t n, char last4[4]) {
  unsigned sum_even = 0, sum_odd = 0; /* doubling the digits at even / odd positions */
  size_t digits = 0, best = 0;
  char tail[4] = {0};
  for (size_t k = 0; k < n; k++) {
    const group *g = &ring[(first + k) % WINDOW];
    if (digits + g->count > PAN_MAX) break;
    for (size_t i = 0; i < g->count; i++, digits++) {
      unsigned d = (unsigned)(g->digits[i] - '0');
      unsigned twice = d * 2 > 9 ? d * 2 - 9 : d * 2;
      sum_even += digits % 2 == 0 ? twice : d;
      sum_odd += digits % 2 == 1 ? twice : d;
      tail[digits % 4] = g->digits[i];
    }
    /* Luhn doubles every second digit from the right: with an even count those are the ones
     * at even positions from the left */
    if (digits >= PAN_MIN && (digits % 2 == 0 ? sum_even : sum_odd) % 10 == 0) {
      best = k + 1;
      for (size_t i = 0; i < 4; i++) last4[i] = tail[(digits + i) % 4];
    }
  }
  return best;
}

size_t vd_pan_mask(const char *text, size_t len, vd_buf *out) {
  const unsigned char *s = (const unsigned char *)text;
  group ring[WINDOW];
  size_t first = 0, n = 0; /* the groups of the current number not yet decided */
  size_t pos = 0, copied = 0, found = 0;
  bool more = true, have_next = false;
  group next;
  for (;;) {
    /* take groups while they continue the number, up to as many as one PAN can span */
    while (more && !have_next && n < PAN_MAX) {
      bool joined;
      if (!next_group(s, len, &pos, n > 0, &next, &joined)) {
        more = false;
      } else if (n > 0 && !joined) {
        have_next = true; /* starts another number: decide the current one first */
      } else {
        ring[(first + n++) % WINDOW] = next;
      }
    }
    if (n == 0) {
      if (!have_next) break;
      ring[first] = next;
      n = 1;
      have_next = false;
      continue;
    }
    char last4[4];
    size_t span = longest_pan(ring, first, n, last4);
    if (span == 0) { /* no PAN starts at this group */
      first = (first + 1) % WINDOW;
      n--;
      continue;
    }
    vd_buf_append(out, text + copied, ring[first].start - copied);
    vd_buf_puts(out, "****");
    vd_buf_append(out, last4, 4);
    copied = ring[(first + span - 1) % WINDOW].end;
    found++;
    first = (first + span) % WINDOW;
    n -= span;
  }
  vd_buf_append(out, text + copied, len - copied);
  return found;
}
