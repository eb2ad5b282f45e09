/* Tokens, phrase matching, number words and calendar arithmetic for the rules extractor. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "vd_extract_internal.h"
#include "vd_fold.h"

/* ---- tokenizer ------------------------------------------------------------------------------ */

static bool is_word_char(char c) { return isalpha((unsigned char)c) != 0; }

bool vdx_tokenize(const char *text, size_t len, vdx_text *t) {
  t->lower = t->small_lower;
  t->tok = t->small_tok;
  t->n = 0;
  char *folded = t->small_lower;
  char *heap_folded = NULL;
  if (len + 1 > sizeof t->small_lower) {
    heap_folded = malloc(len + 1);
    if (!heap_folded) return false;
    folded = heap_folded;
  }
  /* Folded with its case kept; each token is lowercased in place once its capitals are noted. */
  size_t flen = vd_fold_ascii(text, len, folded, len + 1);
  size_t cap_tokens = flen / 2 + 2;
  t->lower = folded;
  if (cap_tokens > sizeof t->small_tok / sizeof t->small_tok[0]) {
    t->tok = malloc(cap_tokens * sizeof *t->tok);
    if (!t->tok) {
      free(heap_folded);
      t->lower = t->small_lower;
      t->tok = t->small_tok;
      return false;
    }
  }
  bool sentence_start = true;
  size_t i = 0;
  while (i < flen) {
    char c = folded[i];
    if (isspace((unsigned char)c)) {
      i++;
      continue;
    }
    vdx_token tk = {.s = folded + i, .kind = VDX_PUNCT};
    size_t j = i;
    if (isdigit((unsigned char)c)) {
      int64_t v = 0;
      while (j < flen && isdigit((unsigned char)folded[j])) {
        if (v < 100000000) v = v * 10 + (folded[j] - '0');
        j++;
      }
      tk.kind = VDX_NUM;
      tk.num = (int32_t)v;
      tk.digits = (uint8_t)(j - i > 255 ? 255 : j - i);
      /* 12th, 1st, 22nd, 3rd: the suffix belongs to the number. */
      if (j + 1 < flen + 1 && j + 2 <= flen) {
        char suf[2] = {(char)tolower((unsigned char)folded[j]),
                       (char)tolower((unsigned char)folded[j + 1])};
        bool two = (suf[0] == 's' && suf[1] == 't') || (suf[0] == 'n' && suf[1] == 'd') ||
                   (suf[0] == 'r' && suf[1] == 'd') || (suf[0] == 't' && suf[1] == 'h');
        if (two && (j + 2 == flen || !is_word_char(folded[j + 2]))) {
          tk.flags |= VDX_ORD;
          j += 2;
        }
      }
    } else if (is_word_char(c)) {
      while (j < flen && (is_word_char(folded[j]) ||
                          (folded[j] == '\'' && j + 1 < flen && is_word_char(folded[j + 1]))))
        j++;
      tk.kind = VDX_WORD;
    } else {
      j = i + 1;
    }
    char text_first_letter = folded[i];
    tk.len = (uint16_t)(j - i > 65535 ? 65535 : j - i);
    if (tk.kind == VDX_WORD) {
      size_t letters = 0, upper = 0;
      for (size_t k = 0; k < tk.len; k++) {
        if (isalpha((unsigned char)folded[i + k])) letters++;
        if (isupper((unsigned char)folded[i + k])) upper++;
        folded[i + k] = (char)tolower((unsigned char)folded[i + k]);
      }
      if (isupper((unsigned char)text_first_letter)) tk.flags |= VDX_CAP;
      /* Possessives: valentine's -> valentine, parents' -> parents. */
      if (tk.len > 2 && tk.s[tk.len - 2] == '\'' && tk.s[tk.len - 1] == 's') {
        /* Keep contractions of "is"/"us" that matter as words: let's, it's, that's, he's. */
        static const char *const keep[] = {"let's",   "it's",   "that's", "he's", "she's",
                                           "there's", "what's", "here's", "who's"};
        bool kept = false;
        for (size_t k = 0; k < sizeof keep / sizeof keep[0]; k++)
          if (strlen(keep[k]) == tk.len && memcmp(keep[k], tk.s, tk.len) == 0) kept = true;
        if (!kept) {
          tk.len -= 2;
          tk.flags |= VDX_POSS;
        }
      }
      if (j < flen && folded[j] == '\'') {
        tk.flags |= VDX_POSS;
        j++;
      }
      if (letters >= 2 && upper == letters) tk.flags |= VDX_UPPER;
    }
    if (tk.kind == VDX_PUNCT && c == '\'') {
      i = j;
      continue; /* stray apostrophes carry nothing */
    }
    if (sentence_start && tk.kind != VDX_PUNCT) {
      tk.flags |= VDX_SENT;
      sentence_start = false;
    }
    if (tk.kind == VDX_PUNCT && (c == '.' || c == '!' || c == '?' || c == ':'))
      sentence_start = true;
    t->tok[t->n++] = tk;
    i = j;
  }
  return true;
}

void vdx_text_free(vdx_text *t) {
  if (t->lower != t->small_lower) free(t->lower);
  if (t->tok != t->small_tok) free(t->tok);
  t->lower = NULL;
  t->tok = NULL;
  t->n = 0;
}

bool vdx_is_punct(const vdx_token *t, char c) { return t->kind == VDX_PUNCT && t->s[0] == c; }

bool vdx_is_boundary(const vdx_token *t) {
  if (t->kind != VDX_PUNCT) return false;
  return strchr(",;:.!?()-", t->s[0]) != NULL;
}

static bool skippable_joiner(const vdx_token *t) {
  return t->kind == VDX_PUNCT && (t->s[0] == '-' || t->s[0] == '/');
}

size_t vdx_match_slow(const vdx_text *t, size_t i, const char *pattern) {
  const char *p = pattern;
  bool first = true;
  while (*p) {
    const char *e = strchr(p, ' ');
    size_t plen = e ? (size_t)(e - p) : strlen(p);
    if (!first && i < t->n && skippable_joiner(&t->tok[i]) && !(plen == 1 && p[0] == '-')) i++;
    if (i >= t->n) return 0;
    const vdx_token *tk = &t->tok[i];
    if (plen == 1 && p[0] == '#') {
      if (tk->kind != VDX_NUM) return 0;
    } else if (p[plen - 1] == '*') {
      if (tk->len < plen - 1 || memcmp(tk->s, p, plen - 1) != 0) return 0;
    } else if (tk->len != plen || memcmp(tk->s, p, plen) != 0) {
      return 0;
    }
    i++;
    first = false;
    p += plen;
    if (*p == ' ') p++;
  }
  return i;
}

/* ---- numbers -------------------------------------------------------------------------------- */

static const char *const units[] = {"zero",    "one",     "two",       "three",    "four",
                                    "five",    "six",     "seven",     "eight",    "nine",
                                    "ten",     "eleven",  "twelve",    "thirteen", "fourteen",
                                    "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"};
static const char *const tens[] = {"",      "",      "twenty",  "thirty", "forty",
                                   "fifty", "sixty", "seventy", "eighty", "ninety"};
static const char *const unit_ordinals[] = {
    "zeroth",     "first",     "second",    "third",       "fourth",     "fifth",     "sixth",
    "seventh",    "eighth",    "ninth",     "tenth",       "eleventh",   "twelfth",   "thirteenth",
    "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth", "nineteenth"};
static const char *const tens_ordinals[] = {"", "", "twentieth", "thirtieth"};

static int word_index(const vdx_token *t, const char *const *list, int count) {
  if (t->kind != VDX_WORD) return -1;
  for (int k = 0; k < count; k++)
    if (list[k][0] && vdx_is(t, list[k])) return k;
  return -1;
}

/* Index after an optional hyphen at i. */
static size_t skip_hyphen(const vdx_text *t, size_t i) {
  return i < t->n && vdx_is_punct(&t->tok[i], '-') ? i + 1 : i;
}

size_t vdx_number(const vdx_text *t, size_t i, bool allow_article, int *value) {
  if (i >= t->n) return 0;
  const vdx_token *tk = &t->tok[i];
  if (tk->kind == VDX_NUM) {
    if (tk->flags & VDX_ORD) return 0;
    *value = tk->num;
    return i + 1;
  }
  if (tk->kind != VDX_WORD || !strchr("adefhnostz", tk->s[0]) || tk->s[0] == '\0') return 0;
  if (vdx_is(tk, "half") && i + 2 < t->n && vdx_is(&t->tok[i + 1], "a") &&
      vdx_is(&t->tok[i + 2], "dozen")) {
    *value = 6;
    return i + 3;
  }
  if ((vdx_is(tk, "a") || vdx_is(tk, "an")) && i + 1 < t->n && vdx_is(&t->tok[i + 1], "dozen")) {
    *value = 12;
    return i + 2;
  }
  if (vdx_is(tk, "dozen")) {
    *value = 12;
    return i + 1;
  }
  if (allow_article && (vdx_is(tk, "a") || vdx_is(tk, "an") || vdx_is(tk, "single"))) {
    *value = 1;
    return i + 1;
  }
  int u = word_index(tk, units, 20);
  if (u >= 0) {
    *value = u;
    return i + 1;
  }
  int te = word_index(tk, tens, 10);
  if (te >= 2) {
    *value = te * 10;
    size_t j = skip_hyphen(t, i + 1);
    if (j < t->n) {
      int uu = word_index(&t->tok[j], units, 10);
      if (uu >= 1) {
        *value += uu;
        return j + 1;
      }
    }
    return i + 1;
  }
  return 0;
}

size_t vdx_ordinal(const vdx_text *t, size_t i, bool allow_plain, int *value) {
  if (i >= t->n) return 0;
  const vdx_token *tk = &t->tok[i];
  if (tk->kind == VDX_NUM) {
    if (!(tk->flags & VDX_ORD) && !allow_plain) return 0;
    if (tk->digits > 2 || tk->num < 1 || tk->num > 31) return 0;
    *value = tk->num;
    return i + 1;
  }
  int u = word_index(tk, unit_ordinals, 20);
  if (u >= 1) {
    *value = u;
    return i + 1;
  }
  int te = word_index(tk, tens_ordinals, 4);
  if (te >= 2) {
    *value = te * 10;
    return i + 1;
  }
  te = word_index(tk, tens, 4);
  if (te >= 2) {
    size_t j = skip_hyphen(t, i + 1);
    if (j < t->n) {
      int uu = word_index(&t->tok[j], unit_ordinals, 10);
      if (uu >= 1 && te * 10 + uu <= 31) {
        *value = te * 10 + uu;
        return j + 1;
      }
    }
  }
  return 0;
}

int vdx_month(const vdx_token *t) {
  static const char *const names[] = {"january",   "february", "march",    "april",
                                      "may",       "june",     "july",     "august",
                                      "september", "october",  "november", "december"};
  static const char *const abbrev[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec"};
  if (t->kind != VDX_WORD) return 0;
  for (int m = 0; m < 12; m++)
    if (vdx_is(t, names[m]) || vdx_is(t, abbrev[m])) return m + 1;
  if (vdx_is(t, "sept")) return 9;
  return 0;
}

int vdx_weekday(const vdx_token *t) {
  static const char *const names[] = {"monday", "tuesday",  "wednesday", "thursday",
                                      "friday", "saturday", "sunday"};
  static const char *const abbrev[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
  if (t->kind != VDX_WORD) return -1;
  for (int d = 0; d < 7; d++)
    if (vdx_is(t, names[d]) || vdx_is(t, abbrev[d])) return d;
  if (vdx_is(t, "tues")) return 1;
  if (vdx_is(t, "thurs")) return 3;
  return -1;
}

bool vdx_typo_of(const char *typo, size_t tn, const char *word, size_t wn) {
  if (tn < 5 || wn < 5 || typo[0] != word[0]) return false;
  if (tn == wn) {
    /* One adjacent swap, everything else equal. */
    size_t k = 0;
    while (k < tn && typo[k] == word[k]) k++;
    if (k + 1 >= tn || tn < 6) return false;
    if (typo[k] == word[k + 1] && typo[k + 1] == word[k] &&
        memcmp(typo + k + 2, word + k + 2, tn - k - 2) == 0)
      return true;
    /* One letter replaced inside a long name: "barcalona". */
    return tn >= 7 && k + 1 < tn && memcmp(typo + k + 1, word + k + 1, tn - k - 1) == 0;
  }
  if (tn == wn + 1) {
    /* One letter typed twice: "dublinn", "barcelonna". */
    for (size_t k = 1; k < tn; k++)
      if (typo[k] == typo[k - 1] && memcmp(typo, word, k) == 0 &&
          memcmp(typo + k + 1, word + k, tn - k - 1) == 0)
        return true;
    return false;
  }
  if (tn > wn || wn - tn > 2 || (wn - tn == 2 && tn < 6)) return false;
  /* A cut-off word is another word ("Tuscan" ~ Tuscany, "German" ~ Germany), not a typo. */
  if (memcmp(typo, word, tn) == 0) return false;
  /* Dropped letters: typo is a subsequence of word. */
  size_t a = 0;
  for (size_t b = 0; b < wn && a < tn; b++)
    if (typo[a] == word[b]) a++;
  return a == tn;
}

/* ---- calendar ---------------------------------------------------------------------------------
 */

/* Howard Hinnant's days_from_civil / civil_from_days. */
int32_t vdx_days_from_civil(int y, int m, int d) {
  y -= m <= 2;
  int era = (y >= 0 ? y : y - 399) / 400;
  int yoe = y - era * 400;
  int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void vdx_civil_from_days(int32_t z, int *y, int *m, int *d) {
  z += 719468;
  int era = (z >= 0 ? z : z - 146096) / 146097;
  int doe = z - era * 146097;
  int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int yy = yoe + era * 400;
  int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = yy + (*m <= 2);
}

int vdx_days_in_month(int y, int m) {
  static const int len[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
  return len[(m - 1) % 12];
}

int vdx_weekday_of(int32_t days) {
  /* 1970-01-01 was a Thursday (3 with Monday = 0). */
  int w = (int)((days % 7 + 7 + 3) % 7);
  return w;
}

int32_t vdx_easter(int year) {
  int a = year % 19, b = year / 100, c = year % 100, d = b / 4, e = b % 4;
  int f = (b + 8) / 25, g = (b - f + 1) / 3, h = (19 * a + b - d - g + 15) % 30;
  int i = c / 4, k = c % 4, l = (32 + 2 * e + 2 * i - h - k) % 7;
  int m = (a + 11 * h + 22 * l) / 451;
  int month = (h + l - 7 * m + 114) / 31, day = (h + l - 7 * m + 114) % 31 + 1;
  return vdx_days_from_civil(year, month, day);
}

int32_t vdx_add_months(int32_t days, int months) {
  int y, m, d;
  vdx_civil_from_days(days, &y, &m, &d);
  int total = y * 12 + (m - 1) + months;
  y = total / 12;
  m = total % 12 + 1;
  int dim = vdx_days_in_month(y, m);
  return vdx_days_from_civil(y, m, d > dim ? dim : d);
}
