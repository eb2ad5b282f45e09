/* Dates, date ranges and durations in a trip request, against a reference date. */
#include <string.h>

#include "vd_extract_internal.h"

/* ---- holidays -------------------------------------------------------------------------------- */

typedef enum { H_FIXED, H_EASTER, H_NTH_WEEKDAY } holiday_rule;

typedef struct holiday {
  const char *pattern; /* vdx_match pattern, possessives already stripped by the tokenizer */
  holiday_rule rule;
  int month, day; /* H_FIXED: the date; H_NTH_WEEKDAY: month, nth (day), weekday below */
  int weekday;
  int easter_offset; /* H_EASTER */
} holiday;

/* Longer names first: "christmas eve" before "christmas", "easter monday" before "easter". */
static const holiday holidays[] = {
    {"christmas eve", H_FIXED, 12, 24, 0, 0},
    {"xmas eve", H_FIXED, 12, 24, 0, 0},
    {"christmas day", H_FIXED, 12, 25, 0, 0},
    {"xmas day", H_FIXED, 12, 25, 0, 0},
    {"christmas", H_FIXED, 12, 25, 0, 0},
    {"xmas", H_FIXED, 12, 25, 0, 0},
    {"boxing day", H_FIXED, 12, 26, 0, 0},
    {"new year eve", H_FIXED, 12, 31, 0, 0},
    {"new years eve", H_FIXED, 12, 31, 0, 0},
    {"new yrs eve", H_FIXED, 12, 31, 0, 0},
    {"nye", H_FIXED, 12, 31, 0, 0},
    {"hogmanay", H_FIXED, 12, 31, 0, 0},
    {"new year day", H_FIXED, 1, 1, 0, 0},
    {"new years day", H_FIXED, 1, 1, 0, 0},
    {"new year", H_FIXED, 1, 1, 0, 0},
    {"new years", H_FIXED, 1, 1, 0, 0},
    {"new yrs", H_FIXED, 1, 1, 0, 0},
    {"new yr", H_FIXED, 1, 1, 0, 0},
    {"valentine day", H_FIXED, 2, 14, 0, 0},
    {"valentines day", H_FIXED, 2, 14, 0, 0},
    {"valentine", H_FIXED, 2, 14, 0, 0},
    {"valentines", H_FIXED, 2, 14, 0, 0},
    {"st patrick day", H_FIXED, 3, 17, 0, 0},
    {"saint patrick day", H_FIXED, 3, 17, 0, 0},
    {"st paddy day", H_FIXED, 3, 17, 0, 0},
    {"halloween", H_FIXED, 10, 31, 0, 0},
    {"bastille day", H_FIXED, 7, 14, 0, 0},
    {"independence day", H_FIXED, 7, 4, 0, 0},
    {"good friday", H_EASTER, 0, 0, 0, -2},
    {"holy saturday", H_EASTER, 0, 0, 0, -1},
    {"easter saturday", H_EASTER, 0, 0, 0, -1},
    {"easter sunday", H_EASTER, 0, 0, 0, 0},
    {"easter monday", H_EASTER, 0, 0, 0, 1},
    {"easter", H_EASTER, 0, 0, 0, 0},
    {"maundy thursday", H_EASTER, 0, 0, 0, -3},
    {"palm sunday", H_EASTER, 0, 0, 0, -7},
    {"ash wednesday", H_EASTER, 0, 0, 0, -46},
    {"mardi gras", H_EASTER, 0, 0, 0, -47},
    {"shrove tuesday", H_EASTER, 0, 0, 0, -47},
    {"ascension day", H_EASTER, 0, 0, 0, 39},
    {"whit sunday", H_EASTER, 0, 0, 0, 49},
    {"pentecost", H_EASTER, 0, 0, 0, 49},
    {"whit monday", H_EASTER, 0, 0, 0, 50},
    {"thanksgiving", H_NTH_WEEKDAY, 11, 4, 3, 0},
    {"memorial day", H_NTH_WEEKDAY, 5, -1, 0, 0},
    {"labor day", H_NTH_WEEKDAY, 9, 1, 0, 0},
    {"labour day", H_NTH_WEEKDAY, 9, 1, 0, 0},
};
enum { HOLIDAY_COUNT = sizeof holidays / sizeof holidays[0] };

/* The nth (1..5, or -1 = last) weekday of a month, or VDX_NO_DATE. */
static int32_t nth_weekday(int y, int m, int nth, int weekday) {
  if (nth < 0) {
    int32_t last = vdx_days_from_civil(y, m, vdx_days_in_month(y, m));
    return last - ((vdx_weekday_of(last) - weekday + 7) % 7);
  }
  int32_t first = vdx_days_from_civil(y, m, 1);
  int32_t day = first + (weekday - vdx_weekday_of(first) + 7) % 7 + 7 * (nth - 1);
  return day < first + vdx_days_in_month(y, m) ? day : VDX_NO_DATE;
}

static int32_t holiday_in(int h, int y) {
  const holiday *hd = &holidays[h];
  switch (hd->rule) {
    case H_FIXED:
      return vdx_days_from_civil(y, hd->month, hd->day);
    case H_EASTER:
      return vdx_easter(y) + hd->easter_offset;
    case H_NTH_WEEKDAY:
      return nth_weekday(y, hd->month, hd->day, hd->weekday);
  }
  return VDX_NO_DATE;
}

static int year_of(int32_t day) {
  int y, m, d;
  vdx_civil_from_days(day, &y, &m, &d);
  return y;
}

int32_t vdx_resolve(const vdx_date_expr *e, int32_t nb) {
  int32_t base = VDX_NO_DATE;
  int y0 = year_of(nb);
  switch ((vdx_expr_kind)e->kind) {
    case VDX_E_NONE:
      return VDX_NO_DATE;
    case VDX_E_FIXED:
      base = e->fixed;
      break;
    case VDX_E_YMD:
      if (e->m < 1 || e->m > 12 || e->d < 1) return VDX_NO_DATE;
      if (e->y) {
        if (e->d > vdx_days_in_month(e->y, e->m)) return VDX_NO_DATE;
        base = vdx_days_from_civil(e->y, e->m, e->d);
      } else {
        for (int y = y0; y <= y0 + 4 && base == VDX_NO_DATE; y++)
          if (e->d <= vdx_days_in_month(y, e->m) && vdx_days_from_civil(y, e->m, e->d) >= nb)
            base = vdx_days_from_civil(y, e->m, e->d);
      }
      break;
    case VDX_E_DAY: {
      int y, m, d;
      vdx_civil_from_days(nb, &y, &m, &d);
      for (int k = 0; k < 3 && base == VDX_NO_DATE; k++) {
        if (e->d <= vdx_days_in_month(y, m) && vdx_days_from_civil(y, m, e->d) >= nb)
          base = vdx_days_from_civil(y, m, e->d);
        if (++m > 12) {
          m = 1;
          y++;
        }
      }
      break;
    }
    case VDX_E_HOLIDAY:
      if (e->y) {
        base = holiday_in(e->holiday, e->y);
      } else {
        for (int y = y0 - 1; y <= y0 + 1 && base == VDX_NO_DATE; y++) {
          int32_t h = holiday_in(e->holiday, y);
          if (h != VDX_NO_DATE && h >= nb) base = h;
        }
      }
      break;
    case VDX_E_WEEKDAY:
      base = nb + 1 + (e->weekday - vdx_weekday_of(nb + 1) + 7) % 7;
      break;
    case VDX_E_NTH_WEEKDAY:
      for (int y = e->y ? e->y : y0; y <= (e->y ? e->y : y0 + 1) && base == VDX_NO_DATE; y++) {
        int32_t day = nth_weekday(y, e->m, e->nth, e->weekday);
        if (day != VDX_NO_DATE && (e->y || day >= nb)) base = day;
      }
      break;
  }
  if (base == VDX_NO_DATE) return VDX_NO_DATE;
  if (e->adj_dir) {
    int32_t step = e->adj_dir;
    int32_t day = base + step;
    while (vdx_weekday_of(day) != e->adj_weekday) day += step;
    base = day;
  }
  if (e->offset_months) base = vdx_add_months(base, e->offset_months);
  return base + e->offset_days;
}

/* ---- parsing --------------------------------------------------------------------------------- */

typedef struct reader {
  const vdx_text *t;
  const bool *is_place;
  int32_t ref;
  vdx_date_expr last_anchor; /* the latest date written, for "the Monday after" */
  bool have_anchor;
  int32_t week_monday; /* "next weekend, Friday to Sunday": the week weekdays fall in */
  bool have_week;
} reader;

static const vdx_token *tok(const reader *r, size_t i) {
  static const vdx_token none = {.s = "", .len = 0, .kind = VDX_PUNCT};
  return i < r->t->n ? &r->t->tok[i] : &none;
}

static bool is(const reader *r, size_t i, const char *w) { return vdx_is(tok(r, i), w); }

static size_t skip_word(const reader *r, size_t i, const char *w) {
  return is(r, i, w) ? i + 1 : i;
}

static size_t skip_comma(const reader *r, size_t i) {
  return vdx_is_punct(tok(r, i), ',') ? i + 1 : i;
}

/* A four-digit year 1990..2100 at i. */
static size_t year_at(const reader *r, size_t i, int *y) {
  const vdx_token *t = tok(r, i);
  if (t->kind != VDX_NUM || t->digits != 4 || t->num < 1990 || t->num > 2100) return 0;
  *y = t->num;
  return i + 1;
}

/* Optional ", 2027" / " 2027" after a date. */
static size_t opt_year(const reader *r, size_t i, int *y) {
  size_t j = year_at(r, skip_comma(r, i), y);
  return j ? j : i;
}

/* Words after a number that make it a count, not a day of the month. */
static bool count_noun(const vdx_token *t) {
  static const char *const nouns[] = {"night",    "nights", "nts",    "nites", "days",  "day",
                                      "weeks",    "week",   "adults", "adult", "kids",  "kid",
                                      "children", "people", "of",     "star",  "stars", "pm",
                                      "am",       "hours",  "h"};
  for (size_t k = 0; k < sizeof nouns / sizeof nouns[0]; k++)
    if (vdx_is(t, nouns[k])) return true;
  return false;
}

/* "may" and "march" are also verbs: a month name needs a day or year next to it anyway. */
static int month_at(const reader *r, size_t i) { return vdx_month(tok(r, i)); }

/* Full weekday names only: "sun", "sat", "wed" are words too. */
static int weekday_full(const reader *r, size_t i) {
  const vdx_token *t = tok(r, i);
  int w = vdx_weekday(t);
  return w >= 0 && t->len >= 6 ? w : -1;
}

static size_t holiday_at(const reader *r, size_t i, int *h) {
  for (int k = 0; k < HOLIDAY_COUNT; k++) {
    size_t j = vdx_match(r->t, i, holidays[k].pattern);
    if (j) {
      *h = k;
      return j;
    }
  }
  return 0;
}

static size_t parse_expr(reader *r, size_t i, vdx_date_expr *e);

/* Day number written as a day of month: ordinal, or a plain number <= 31 (1-2 digits). */
static size_t day_number(const reader *r, size_t i, bool allow_plain, int *d) {
  size_t j = vdx_ordinal(r->t, i, allow_plain, d);
  if (!j) return 0;
  if (tok(r, i)->kind == VDX_NUM && !(tok(r, i)->flags & VDX_ORD) && count_noun(tok(r, j)))
    return 0;
  return j;
}

/* "the day before|after X", "the Friday before|after X", "the Monday after" (X = last anchor). */
static size_t parse_modified(reader *r, size_t i, vdx_date_expr *e) {
  size_t j = skip_word(r, i, "the");
  int wd = -1;
  bool day = false;
  if (is(r, j, "day")) {
    day = true;
  } else {
    wd = weekday_full(r, j);
    if (wd < 0) return 0;
  }
  j++;
  int dir = is(r, j, "before") ? -1 : is(r, j, "after") ? 1 : 0;
  if (!dir) return 0;
  j++;
  vdx_date_expr inner = {0};
  size_t k = parse_expr(r, j, &inner);
  if (!k) {
    if (!r->have_anchor) return 0; /* "leave the day after" (the date just named) */
    inner = r->last_anchor;
    k = j;
  }
  if (inner.adj_dir || inner.offset_days) return 0; /* one modifier at a time */
  r->last_anchor = inner;
  r->have_anchor = true;
  *e = inner;
  if (day) {
    e->offset_days = dir;
  } else {
    e->adj_weekday = wd;
    e->adj_dir = dir;
  }
  return k;
}

/* "N days|weeks|months from|after ANCHOR" and "in N days|weeks". */
static size_t unit_days(const reader *r, size_t i, int *days, int *months) {
  const vdx_token *t = tok(r, i);
  *months = 0;
  if (vdx_is(t, "day") || vdx_is(t, "days")) {
    *days = 1;
  } else if (vdx_is(t, "week") || vdx_is(t, "weeks") || vdx_is(t, "wk") || vdx_is(t, "wks")) {
    *days = 7;
  } else if (vdx_is(t, "fortnight") || vdx_is(t, "fortnights")) {
    *days = 14;
  } else if (vdx_is(t, "month") || vdx_is(t, "months")) {
    *days = 0;
    *months = 1;
  } else {
    return 0;
  }
  return i + 1;
}

static size_t parse_offset(reader *r, size_t i, vdx_date_expr *e) {
  int n = 0, per = 0, months = 0;
  bool in_form = is(r, i, "in");
  size_t j = vdx_number(r->t, in_form ? i + 1 : i, true, &n);
  if (!j && (is(r, in_form ? i + 1 : i, "fortnight"))) {
    n = 1;
    j = in_form ? i + 1 : i;
  }
  if (!j || n < 1 || n > 400) return 0;
  size_t k = unit_days(r, j, &per, &months);
  if (!k) return 0;
  if (in_form) {
    k = skip_word(r, k, "time");
    *e = (vdx_date_expr){.kind = VDX_E_FIXED, .fixed = r->ref};
    e->offset_days = n * per;
    e->offset_months = n * months;
    return k;
  }
  if (is(r, k, "on") && weekday_full(r, k + 1) >= 0 && per == 7 && !months) {
    /* "a week on Friday" (British): the Friday after this coming one */
    *e = (vdx_date_expr){.kind = VDX_E_WEEKDAY, .weekday = weekday_full(r, k + 1)};
    e->offset_days = 7 * n;
    return k + 2;
  }
  if (!is(r, k, "from") && !is(r, k, "after")) return 0;
  k++;
  vdx_date_expr anchor = {0};
  size_t m = 0;
  if (is(r, k, "today") || is(r, k, "now")) {
    anchor = (vdx_date_expr){.kind = VDX_E_FIXED, .fixed = r->ref};
    m = k + 1;
  } else if (weekday_full(r, k) >= 0) {
    anchor = (vdx_date_expr){.kind = VDX_E_WEEKDAY, .weekday = weekday_full(r, k)};
    m = k + 1;
  } else {
    m = parse_expr(r, k, &anchor);
  }
  if (!m || anchor.offset_days || anchor.offset_months) return 0;
  *e = anchor;
  e->offset_days = n * per;
  e->offset_months = n * months;
  return m;
}

static size_t parse_expr(reader *r, size_t i, vdx_date_expr *e) {
  *e = (vdx_date_expr){0};
  size_t j;
  int y = 0, m = 0, d = 0, wd = -1, h = -1;
  /* Relative days. */
  size_t a = skip_word(r, i, "the");
  if ((j = vdx_match(r->t, a, "day after tomorrow"))) {
    *e = (vdx_date_expr){.kind = VDX_E_FIXED, .fixed = r->ref + 2};
    return j;
  }
  if (is(r, i, "today") || is(r, i, "tonight")) {
    *e = (vdx_date_expr){.kind = VDX_E_FIXED, .fixed = r->ref};
    return i + 1;
  }
  if (is(r, i, "tomorrow") || is(r, i, "tmrw") || is(r, i, "tmr")) {
    *e = (vdx_date_expr){.kind = VDX_E_FIXED, .fixed = r->ref + 1};
    return i + 1;
  }
  if ((j = parse_modified(r, i, e))) return j;
  if ((j = parse_offset(r, i, e))) return j;
  /* this/coming/next Friday */
  if (is(r, i, "this") || is(r, i, "coming") || is(r, i, "next")) {
    bool next = is(r, i, "next");
    size_t k = skip_word(r, i + 1, "coming");
    wd = weekday_full(r, k);
    if (wd >= 0) {
      int32_t day = r->ref + (wd - vdx_weekday_of(r->ref) + 7) % 7;
      if (day == r->ref && next) day += 7;
      /* "next Friday" said early in a week means the Friday of the following week. */
      if (next && (day - r->ref) < 7 && wd > vdx_weekday_of(r->ref)) day += 7;
      *e = (vdx_date_expr){.kind = VDX_E_FIXED, .fixed = day};
      return k + 1;
    }
  }
  /* ISO 2027-04-02 */
  if (year_at(r, i, &y) && vdx_is_punct(tok(r, i + 1), '-') && tok(r, i + 2)->kind == VDX_NUM &&
      vdx_is_punct(tok(r, i + 3), '-') && tok(r, i + 4)->kind == VDX_NUM) {
    m = tok(r, i + 2)->num;
    d = tok(r, i + 4)->num;
    if (m >= 1 && m <= 12 && d >= 1 && d <= vdx_days_in_month(y, m)) {
      *e = (vdx_date_expr){.kind = VDX_E_YMD, .y = y, .m = m, .d = d};
      return i + 5;
    }
  }
  /* 12.06.2027: day first, as written with dots in Europe */
  if (tok(r, i)->kind == VDX_NUM && tok(r, i)->digits <= 2 && vdx_is_punct(tok(r, i + 1), '.') &&
      tok(r, i + 2)->kind == VDX_NUM && tok(r, i + 2)->digits <= 2 &&
      vdx_is_punct(tok(r, i + 3), '.') && year_at(r, i + 4, &y)) {
    d = tok(r, i)->num;
    m = tok(r, i + 2)->num;
    if (m >= 1 && m <= 12 && d >= 1 && d <= vdx_days_in_month(y, m)) {
      *e = (vdx_date_expr){.kind = VDX_E_YMD, .y = y, .m = m, .d = d};
      return i + 5;
    }
    return 0;
  }
  /* 12/03/2027 or 03/12/2027 when unambiguous */
  if (tok(r, i)->kind == VDX_NUM && vdx_is_punct(tok(r, i + 1), '/') &&
      tok(r, i + 2)->kind == VDX_NUM && vdx_is_punct(tok(r, i + 3), '/') && year_at(r, i + 4, &y)) {
    int p = tok(r, i)->num, q = tok(r, i + 2)->num;
    if (p > 12 && q <= 12) {
      d = p;
      m = q;
    } else if (q > 12 && p <= 12) {
      d = q;
      m = p;
    }
    if (m && d <= vdx_days_in_month(y, m)) {
      *e = (vdx_date_expr){.kind = VDX_E_YMD, .y = y, .m = m, .d = d};
      return i + 5;
    }
    return 0;
  }
  /* the first Saturday of February [2027] */
  {
    size_t k = skip_word(r, i, "the");
    int nth = 0;
    static const char *const nths[] = {"first", "second", "third", "fourth", "last"};
    for (int q = 0; q < 5; q++)
      if (is(r, k, nths[q])) nth = q == 4 ? -1 : q + 1;
    if (!nth && tok(r, k)->kind == VDX_NUM && (tok(r, k)->flags & VDX_ORD) && tok(r, k)->num <= 4)
      nth = tok(r, k)->num;
    if (nth && (wd = weekday_full(r, k + 1)) >= 0 && (is(r, k + 2, "of") || is(r, k + 2, "in")) &&
        (m = month_at(r, k + 3))) {
      size_t end = opt_year(r, k + 4, &y);
      *e = (vdx_date_expr){.kind = VDX_E_NTH_WEEKDAY, .y = y, .m = m, .nth = nth, .weekday = wd};
      return end;
    }
  }
  /* Optional weekday prefix: "Saturday 13 March", "Wed, March 17". */
  size_t b = i;
  if (vdx_weekday(tok(r, b)) >= 0) {
    size_t k = skip_comma(r, b + 1);
    if (month_at(r, k) || day_number(r, skip_word(r, k, "the"), true, &d)) b = k;
  }
  /* March 12[th][, 2027] */
  if ((m = month_at(r, b))) {
    size_t k = b + 1;
    if (vdx_is_punct(tok(r, k), '.') && tok(r, b)->len <= 4) k++; /* "Mar. 5" */
    k = skip_word(r, k, "the");
    size_t after = day_number(r, k, true, &d);
    if (after && !vdx_is_punct(tok(r, after), ':')) {
      size_t end = opt_year(r, after, &y);
      *e = (vdx_date_expr){.kind = VDX_E_YMD, .y = y, .m = m, .d = d};
      return end;
    }
  }
  /* [the] 12[th] [of] March[, 2027] */
  {
    size_t k = skip_word(r, b, "the");
    size_t after = day_number(r, k, true, &d);
    if (after) {
      size_t mm = skip_word(r, after, "of");
      if ((m = month_at(r, mm))) {
        size_t end = opt_year(r, mm + 1, &y);
        *e = (vdx_date_expr){.kind = VDX_E_YMD, .y = y, .m = m, .d = d};
        return end;
      }
    }
  }
  /* Holidays [2027] */
  if ((j = holiday_at(r, i, &h))) {
    size_t end = j;
    int hy = 0;
    size_t yj = year_at(r, j, &hy);
    if (yj) end = yj;
    *e = (vdx_date_expr){.kind = VDX_E_HOLIDAY, .holiday = h, .y = hy};
    return end;
  }
  /* the 14th / the nineteenth (day of month only) */
  if (is(r, i, "the")) {
    const vdx_token *n = tok(r, i + 1);
    bool ordinal = n->kind == VDX_WORD || (n->flags & VDX_ORD);
    size_t after = ordinal ? day_number(r, i + 1, false, &d) : 0;
    static const char *const not_days[] = {"anniversary", "birthday", "century", "time",
                                           "floor",       "row",      "place",   "day",
                                           "night",       "week",     "trip"};
    bool count = false;
    for (size_t q = 0; after && q < sizeof not_days / sizeof not_days[0]; q++)
      if (is(r, after, not_days[q])) count = true;
    if (after && !count && weekday_full(r, after) < 0) {
      *e = (vdx_date_expr){.kind = VDX_E_DAY, .d = d};
      return after;
    }
  }
  return 0;
}

/* ---- facts ----------------------------------------------------------------------------------- */

/* The role that the words just before token i give a date. */
static vdx_role role_before(const reader *r, size_t i) {
  size_t k = i;
  for (int steps = 0; steps < 4 && k > 0; steps++) {
    k--;
    const vdx_token *t = tok(r, k);
    if (vdx_is(t, "on") || vdx_is(t, "the") || vdx_is(t, "of") || vdx_is(t, "in") ||
        vdx_is(t, "by") || vdx_is(t, "at") || vdx_is(t, "now") || vdx_is(t, "around") ||
        vdx_is(t, "date") || vdx_is(t, "is") || vdx_is(t, "be") || vdx_is(t, "day"))
      continue;
    if (vdx_is_punct(t, '-') && k > 0) continue;                  /* check-in / check-out */
    if ((t->flags & VDX_CAP) && !(t->flags & VDX_SENT)) continue; /* "arrive in Rome on 5 May" */
    if (vdx_is(t, "in") || vdx_is(t, "out")) continue;
    if (t->kind == VDX_PUNCT) return VDX_ROLE_NONE;
    /* "leaving for Amsterdam next Friday", "off to Rome on the 3rd": the way out */
    if ((vdx_is(t, "for") || vdx_is(t, "to")) && k > 0 &&
        (vdx_match(r->t, k - 1, "leav*") || vdx_match(r->t, k - 1, "depart*") ||
         vdx_match(r->t, k - 1, "head*") || vdx_match(r->t, k - 1, "fly*") ||
         vdx_is(tok(r, k - 1), "off") || vdx_is(tok(r, k - 1), "go") ||
         vdx_is(tok(r, k - 1), "going") || vdx_is(tok(r, k - 1), "travel*")))
      return VDX_ROLE_START;
    if (vdx_match(r->t, k, "arriv*") || vdx_match(r->t, k, "arrival") ||
        vdx_match(r->t, k, "land*") || vdx_is(t, "from") || vdx_is(t, "starting") ||
        vdx_is(t, "start") || vdx_is(t, "begin") || vdx_is(t, "beginning") ||
        vdx_is(t, "checkin") || (vdx_is(t, "check") && is(r, k + 1, "-") && is(r, k + 2, "in")) ||
        (vdx_is(t, "check") && is(r, k + 1, "in")))
      return VDX_ROLE_START;
    if (vdx_is(t, "check") || vdx_is(t, "checkout") || vdx_match(r->t, k, "leav*") ||
        vdx_match(r->t, k, "depart*") || vdx_is(t, "until") || vdx_is(t, "till") ||
        vdx_is(t, "til") || vdx_match(r->t, k, "return*") || vdx_is(t, "back") ||
        vdx_is(t, "home") || vdx_is(t, "ending") || vdx_is(t, "end"))
      return VDX_ROLE_END;
    if (vdx_is(t, "fly") || vdx_is(t, "flying") || vdx_is(t, "go") || vdx_is(t, "going") ||
        vdx_is(t, "travel") || vdx_is(t, "travelling") || vdx_is(t, "traveling"))
      return VDX_ROLE_START;
    return VDX_ROLE_NONE;
  }
  return VDX_ROLE_NONE;
}

/* A holiday named as an occasion, not as a day: "for New Year", "Christmas markets". */
static bool occasion(const reader *r, size_t start, size_t end, const vdx_date_expr *e) {
  if (e->kind != VDX_E_HOLIDAY || e->adj_dir || e->offset_days) return false;
  const vdx_token *before = start ? tok(r, start - 1) : tok(r, r->t->n);
  static const char *const preps[] = {"for", "4", "over", "around", "during", "at", "this", "last"};
  for (size_t k = 0; k < sizeof preps / sizeof preps[0]; k++)
    if (vdx_is(before, preps[k])) return true;
  static const char *const nouns[] = {
      "market",  "markets",  "lights",   "party",  "parties",     "dinner",       "break",
      "holiday", "holidays", "vacation", "trip",   "tree",        "shopping",     "festivities",
      "season",  "week",     "time",     "period", "celebration", "celebrations", "fireworks",
      "spirit",  "getaway",  "weekend",  "in"};
  for (size_t k = 0; k < sizeof nouns / sizeof nouns[0]; k++)
    if (is(r, end, nouns[k])) return true;
  return false;
}

static void add_date(vdx_dates *out, const vdx_date_fact *f) {
  if (out->ndates < sizeof out->date / sizeof out->date[0]) out->date[out->ndates++] = *f;
}

static void add_nights(vdx_dates *out, const vdx_nights_fact *f) {
  if (out->nnights < sizeof out->nights / sizeof out->nights[0]) out->nights[out->nnights++] = *f;
}

static bool connector(const reader *r, size_t i) {
  return vdx_is_punct(tok(r, i), '-') || is(r, i, "to") || is(r, i, "through") ||
         is(r, i, "thru") || is(r, i, "till") || is(r, i, "until") || is(r, i, "til");
}

/* "X to Y", "10-14 May", "Jan 8th through the 14th", "this Friday through Sunday". */
static size_t parse_range(reader *r, size_t i, vdx_dates *out) {
  size_t s = i;
  bool between = false;
  if (is(r, s, "from"))
    s++;
  else if (is(r, s, "between")) {
    s++;
    between = true;
  }
  vdx_date_expr a = {0}, b = {0};
  vdx_date_expr before = r->last_anchor;
  bool had_before = r->have_anchor;
  size_t j = parse_expr(r, s, &a);
  bool bare_a = false;
  if (!j && weekday_full(r, s) >= 0) {
    a = (vdx_date_expr){.kind = VDX_E_WEEKDAY, .weekday = weekday_full(r, s)};
    j = s + 1;
  }
  if (!j) {
    /* a bare day before a range connector: "10-14 May", "from 3 to 7 April" */
    int d = 0;
    j = day_number(r, skip_word(r, s, "the"), true, &d);
    if (!j) return 0;
    a = (vdx_date_expr){.kind = VDX_E_DAY, .d = d};
    bare_a = true;
  }
  bool conn = connector(r, j) || (between && is(r, j, "and"));
  if (!conn) return 0;
  size_t k = j + 1;
  r->last_anchor = a;
  r->have_anchor = a.kind != VDX_E_DAY;
  size_t end = parse_expr(r, k, &b);
  if (!end) {
    int d = 0;
    int wd = weekday_full(r, k);
    if (wd >= 0) {
      b = (vdx_date_expr){.kind = VDX_E_WEEKDAY, .weekday = wd};
      end = k + 1;
    } else {
      size_t q = skip_word(r, k, "the");
      end = day_number(r, q, true, &d);
      if (!end || bare_a) return 0;
      b = (vdx_date_expr){.kind = VDX_E_DAY, .d = d};
      end = opt_year(r, end, &b.y);
    }
  }
  /* Weekdays of a week just named: "next weekend, Friday to Sunday" */
  if (a.kind == VDX_E_WEEKDAY && r->have_week) {
    int32_t day = vdx_resolve(&a, r->week_monday - 1);
    a = (vdx_date_expr){.kind = VDX_E_FIXED, .fixed = day};
  }
  /* Days alone take the month of the date written before: "make that the 13th to the 16th" */
  if (a.kind == VDX_E_DAY && b.kind == VDX_E_DAY && had_before && before.kind == VDX_E_YMD)
    a = (vdx_date_expr){.kind = VDX_E_YMD, .y = before.y, .m = before.m, .d = a.d};
  /* Share the month and year written on one side. */
  if (a.kind == VDX_E_DAY && b.kind == VDX_E_YMD) {
    a = (vdx_date_expr){.kind = VDX_E_YMD, .y = b.y, .m = b.m, .d = a.d};
  } else if (bare_a) {
    return 0;
  }
  if (b.kind == VDX_E_DAY && a.kind == VDX_E_YMD && b.y && !a.y) a.y = b.y;
  if (a.kind == VDX_E_YMD && b.kind == VDX_E_YMD && !a.y && b.y) {
    a.y = b.y;
    if (a.m > b.m || (a.m == b.m && a.d > b.d)) a.y--;
  }
  int32_t start = vdx_resolve(&a, r->ref);
  if (start == VDX_NO_DATE) return 0;
  vdx_date_expr bb = b;
  if (bb.kind == VDX_E_DAY && bb.y) bb.y = 0;
  int32_t stop = vdx_resolve(&bb, start + (bb.kind == VDX_E_WEEKDAY ? 0 : 1));
  if (stop == VDX_NO_DATE || stop <= start || stop - start > 366) return 0;
  vdx_date_fact f = {.tok = i, .end_tok = end, .range = true, .start = start, .end = stop};
  add_date(out, &f);
  r->last_anchor = b.kind == VDX_E_WEEKDAY || b.kind == VDX_E_DAY ? a : b;
  r->have_anchor = true;
  return end;
}

/* Durations: "5 nights", "a fortnight", "two weeks", "six-night stay", "and then 2 in Geneva". */
static size_t parse_duration(reader *r, size_t i, vdx_dates *out) {
  int n = 0;
  size_t j = vdx_number(r->t, i, true, &n);
  bool fortnight_alone = false;
  if (!j && is(r, i, "fortnight")) {
    n = 1;
    j = i;
    fortnight_alone = true;
  }
  /* chat style drops the article at the start: "wk in rome", "Week in Lisbon?" */
  if (!j && (tok(r, i)->flags & VDX_SENT) &&
      (is(r, i, "wk") || is(r, i, "week") || is(r, i, "fortnight")) &&
      (is(r, i + 1, "in") || is(r, i + 1, "at") || r->is_place[i + 1])) {
    n = 1;
    j = i;
    fortnight_alone = true;
  }
  if ((!j && !fortnight_alone) || n < 1 || n > 365) return 0;
  if (tok(r, i)->kind == VDX_NUM && tok(r, i)->digits > 3) return 0;
  /* vague: "a few days", "several nights", "a week or two", "2-3 weeks", "5 or 6 nights" */
  if (i > 0 && (is(r, i - 1, "few") || is(r, i - 1, "several") || is(r, i - 1, "couple"))) return 0;
  if (i > 1 && (vdx_is_punct(tok(r, i - 1), '-') || is(r, i - 1, "to") || is(r, i - 1, "or"))) {
    int before = 0;
    if (vdx_number(r->t, i - 2, false, &before) == i - 1) return 0;
  }
  size_t k = j;
  if (vdx_is_punct(tok(r, k), '-') && tok(r, k + 1)->kind == VDX_NUM) return 0;
  if (is(r, k, "to") || is(r, k, "or")) {
    int n2 = 0;
    if (vdx_number(r->t, k + 1, false, &n2)) return 0;
  }
  k = (vdx_is_punct(tok(r, k), '-')) ? k + 1 : k;
  const vdx_token *u = tok(r, k);
  int per = 0;
  bool weak = false;
  if (vdx_is(u, "night") || vdx_is(u, "nights") || vdx_is(u, "nts") || vdx_is(u, "nt") ||
      vdx_is(u, "nites") || vdx_is(u, "nite") || vdx_is(u, "nighter")) {
    per = 1;
  } else if (vdx_is(u, "week") || vdx_is(u, "weeks") || vdx_is(u, "wk") || vdx_is(u, "wks")) {
    per = 7;
  } else if (vdx_is(u, "fortnight") || vdx_is(u, "fortnights")) {
    per = 14;
  } else if (vdx_is(u, "day") || vdx_is(u, "days")) {
    if (n == 1) return 0; /* "a day trip to Nara", "a day at Disneyland": not the stay */
    per = 1;
    weak = true;
  } else if (fortnight_alone) {
    return 0;
  }
  if (per == 0) {
    /* "and then 2 in Geneva": a further leg after a "N nights in X" leg */
    size_t p = is(r, j, "more") ? j + 1 : j;
    bool leg_before = out->nnights > 0 && out->nights[out->nnights - 1].leg;
    if (leg_before && (is(r, p, "in") || is(r, p, "at")) && r->is_place[p + 1] && !is(r, i, "a") &&
        !is(r, i, "an")) {
      vdx_nights_fact f = {
          .tok = i, .nights = n, .leg = true, .weak = out->nights[out->nnights - 1].weak};
      add_nights(out, &f);
      return p + 1;
    }
    return 0;
  }
  if (fortnight_alone) k = i;
  size_t end = k + 1;
  if (is(r, end, "or") || is(r, end, "to")) return 0;
  vdx_nights_fact f = {.tok = i, .nights = n * per, .weak = weak};
  if (is(r, end, "total") || is(r, end, "altogether") || is(r, end, "overall") ||
      vdx_match(r->t, end, "in total") || is(r, end, "across") ||
      (i > 0 && (is(r, i - 1, "over") || (i > 1 && vdx_match(r->t, i - 2, "total of")))))
    f.total = true;
  size_t p = end;
  if (is(r, p, "stay") || is(r, p, "trip") || is(r, p, "holiday")) p++;
  if (is(r, p, "in") || is(r, p, "at") || is(r, p, "around")) p++;
  if (p < r->t->n && r->is_place[p] && !f.total) f.leg = true;
  size_t q = i > 0 && (vdx_is_punct(tok(r, i - 1), '(') || vdx_is_punct(tok(r, i - 1), ',') ||
                       vdx_is_punct(tok(r, i - 1), ':') || vdx_is_punct(tok(r, i - 1), '-'))
                 ? i - 1
                 : i;
  if (q > 0 && r->is_place[q - 1] && !f.total) f.leg = true; /* "Milan (2 nights)" */
  add_nights(out, &f);
  return end;
}

void vdx_read_dates(const vdx_text *t, const bool *is_place, int32_t reference, vdx_dates *out) {
  reader r = {.t = t, .is_place = is_place, .ref = reference};
  out->ndates = 0;
  out->nnights = 0;
  size_t i = 0;
  while (i < t->n) {
    size_t j;
    if ((j = parse_range(&r, i, out))) {
      i = j;
      continue;
    }
    vdx_date_expr e;
    if ((j = parse_expr(&r, i, &e))) {
      if (!occasion(&r, i, j, &e)) {
        vdx_date_fact f = {.tok = i, .end_tok = j, .single = e, .role = role_before(&r, i)};
        add_date(out, &f);
      }
      if (!e.adj_dir && !e.offset_days && !e.offset_months) {
        r.last_anchor = e;
        r.have_anchor = true;
      }
      i = j;
      continue;
    }
    /* "on Saturday", "leaving Sunday": a weekday with a cue */
    int wd = weekday_full(&r, i);
    if (wd >= 0) {
      vdx_role role = role_before(&r, i);
      if (role != VDX_ROLE_NONE || (i > 0 && is(&r, i - 1, "on"))) {
        vdx_date_fact f = {.tok = i, .end_tok = i + 1, .role = role, .weak = role == VDX_ROLE_NONE};
        f.single = (vdx_date_expr){.kind = VDX_E_WEEKDAY, .weekday = wd};
        add_date(out, &f);
        i++;
        continue;
      }
    }
    /* this/next weekend: the Saturday, a guess */
    size_t w = 0;
    int weeks_ahead = 0;
    if ((w = vdx_match(t, i, "this coming weekend")) || (w = vdx_match(t, i, "this weekend")) ||
        (w = vdx_match(t, i, "the coming weekend")) || (w = vdx_match(t, i, "coming weekend"))) {
      weeks_ahead = 0;
    } else if ((w = vdx_match(t, i, "the weekend after next")) ||
               (w = vdx_match(t, i, "weekend after next"))) {
      weeks_ahead = 2;
    } else if ((w = vdx_match(t, i, "next weekend"))) {
      weeks_ahead = 1;
    }
    if (w) {
      int32_t sat = reference + (5 - vdx_weekday_of(reference) + 7) % 7 + 7 * weeks_ahead;
      r.week_monday = sat - 5;
      r.have_week = true;
      vdx_date_fact f = {.tok = i, .end_tok = w, .role = VDX_ROLE_START, .weak = true};
      f.single = (vdx_date_expr){.kind = VDX_E_FIXED, .fixed = sat};
      add_date(out, &f);
      i = w;
      continue;
    }
    if ((w = vdx_match(t, i, "next week")) && !is(&r, w, "end")) {
      r.week_monday = reference + 7 - vdx_weekday_of(reference); /* no date, but a week */
      r.have_week = true;
      i = w;
      continue;
    }
    if ((j = parse_duration(&r, i, out))) {
      i = j;
      continue;
    }
    i++;
  }
}
