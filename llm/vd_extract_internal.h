/* Private to the rules extractor (vd_extract_*.c, vd_gazetteer.c); the public API is
 * vd_extract_rules.h. Tokens, phrase matching, number words, calendar arithmetic, the gazetteer
 * lookup and the date/duration reader that the orchestrator in vd_extract_rules.c combines.
 * Nothing here allocates except vdx_tokenize (the caller frees with vdx_text_free). */
#ifndef VD_EXTRACT_INTERNAL_H
#define VD_EXTRACT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vd_extract_rules.h"

/* ---- tokens ---------------------------------------------------------------------------- */

enum vdx_kind { VDX_WORD, VDX_NUM, VDX_PUNCT };
enum vdx_flag {
  VDX_CAP = 1,   /* first letter written as a capital */
  VDX_UPPER = 2, /* every letter written as a capital (and at least two letters) */
  VDX_ORD = 4,   /* a number written with an ordinal suffix: 12th, 1st */
  VDX_POSS = 8,  /* a possessive 's or ' was stripped: valentine's -> valentine */
  VDX_SENT = 16, /* first token of a sentence */
};

typedef struct vdx_token {
  const char *s; /* lowercase ASCII, not NUL-terminated; points into vdx_text.lower */
  uint16_t len;
  uint8_t kind;
  uint8_t flags;
  int32_t num;    /* value of a VDX_NUM */
  uint8_t digits; /* number of digits of a VDX_NUM */
} vdx_token;

typedef struct vdx_text {
  char *lower; /* folded, lowercased text (owned) */
  vdx_token *tok;
  size_t n;
  char small_lower[1024];
  vdx_token small_tok[256];
} vdx_text;

/* Folds, lowercases and splits text into words, numbers and punctuation. Returns false only on
 * out-of-memory. Uses inline storage for short texts; free with vdx_text_free. */
bool vdx_tokenize(const char *text, size_t len, vdx_text *t);
void vdx_text_free(vdx_text *t);

static inline bool vdx_is(const vdx_token *t, const char *word) {
  if (t->len == 0 || t->s[0] != word[0]) return false;
  for (size_t k = 1; k < t->len; k++)
    if (t->s[k] != word[k]) return false; /* stops at word's NUL, which never equals a letter */
  return word[t->len] == '\0';
}
bool vdx_is_punct(const vdx_token *t, char c);
/* Index of token i's clause boundary: true for , ; : . ! ? ( ) and dashes set apart by spaces. */
bool vdx_is_boundary(const vdx_token *t);

/* Matches `pattern` (words separated by single spaces; a word ending in '*' matches as a prefix;
 * "#" matches any number token) at token i. Between pattern words one hyphen, slash or
 * apostrophe token in the text is skipped. Returns the index after the match, or 0 if none. */
size_t vdx_match_slow(const vdx_text *t, size_t i, const char *pattern);
/* Most calls fail on the first letter: rejected inline, before any call. */
static inline size_t vdx_match(const vdx_text *t, size_t i, const char *pattern) {
  if (i >= t->n || (pattern[0] != '#' && (t->tok[i].len == 0 || t->tok[i].s[0] != pattern[0])))
    return 0;
  return vdx_match_slow(t, i, pattern);
}

/* A cardinal number at token i: digits, words ("seven", "twenty-one", "twenty one", "a dozen").
 * `allow_article`: "a"/"an" count as 1. Sets *value and returns the index after it, 0 if none. */
size_t vdx_number(const vdx_text *t, size_t i, bool allow_article, int *value);
/* An ordinal day at token i: "12th", "twelfth", "twenty-first", and (when allow_plain) "12". */
size_t vdx_ordinal(const vdx_text *t, size_t i, bool allow_plain, int *value);
/* Month name or abbreviation at token i (1..12, 0 if none); "may"/"march" only when `strict` is
 * false or they are not used as verbs (caller's choice). */
int vdx_month(const vdx_token *t);
/* Weekday at token i: 0 = Monday .. 6 = Sunday, -1 if none. */
int vdx_weekday(const vdx_token *t);

/* A typo of `word`: the same first letter, and one adjacent swap, one letter replaced inside a
 * name of 7+ letters (not the last), one adjacent swap (6+ letters), one letter typed twice, or one
 * or two dropped letters (two only for words of 6+ letters after the drop; never just the end cut
 * off, which makes demonyms: Tuscan, German). Used for chat-style spelling. */
bool vdx_typo_of(const char *typo, size_t typo_len, const char *word, size_t word_len);

/* ---- calendar (days since 1970-01-01) ------------------------------------------------------ */

int32_t vdx_days_from_civil(int y, int m, int d);
void vdx_civil_from_days(int32_t days, int *y, int *m, int *d);
int vdx_days_in_month(int y, int m);
int vdx_weekday_of(int32_t days); /* 0 = Monday */
int32_t vdx_easter(int year);     /* Easter Sunday, by the anonymous Gregorian computus */
int32_t vdx_add_months(int32_t days, int months); /* day clamped to the month's length */

/* ---- gazetteer ------------------------------------------------------------------------------- */

typedef struct vdx_place_match {
  size_t start, end;     /* token span [start, end) */
  const char *canonical; /* borrowed from the gazetteer */
  bool is_country;       /* canonical has no ", " */
  bool fuzzy;            /* matched as a typo */
} vdx_place_match;

/* Longest exact alias at token i (respecting cap/upper flags); false if none. */
bool vdx_gazetteer_exact(const vd_gazetteer *g, const vdx_text *t, size_t i, vdx_place_match *m);
/* A typo of a one-word alias, or of the last word of a two-word alias whose first word matches. */
bool vdx_gazetteer_fuzzy(const vd_gazetteer *g, const vdx_text *t, size_t i, vdx_place_match *m);

/* ---- dates and durations --------------------------------------------------------------------- */

enum { VDX_NO_DATE = INT32_MIN };

typedef enum vdx_role { VDX_ROLE_NONE, VDX_ROLE_START, VDX_ROLE_END } vdx_role;

/* A date as written, before it is resolved to a day: "March 12" (no year), "the 22nd" (day only),
 * "the day after Boxing Day", "this Friday", "a week from Saturday". */
typedef enum vdx_expr_kind {
  VDX_E_NONE,
  VDX_E_FIXED,       /* already a day (today, tomorrow, 2027-04-02, two weeks from today) */
  VDX_E_YMD,         /* month and day, year optional (y = 0) */
  VDX_E_DAY,         /* day of month only: takes the month from its context */
  VDX_E_HOLIDAY,     /* a holiday, year optional */
  VDX_E_WEEKDAY,     /* the next such weekday strictly after the context day */
  VDX_E_NTH_WEEKDAY, /* "the first Saturday of February" (nth = -1: last) */
} vdx_expr_kind;

typedef struct vdx_date_expr {
  uint8_t kind;
  int y, m, d;
  int32_t fixed;
  int holiday; /* index into the holiday table */
  int weekday; /* 0 = Monday */
  int nth;
  int adj_weekday,
      adj_dir;     /* "the Friday before X": the weekday strictly before/after (dir -1/+1) */
  int offset_days; /* added last: "the day after X" (+1), "a week from Saturday" (+7) */
  int offset_months;
} vdx_date_expr;

/* The day of e: the next occurrence on or after not_before where the year (or month) is not
 * written (a weekday: strictly after). VDX_NO_DATE when e cannot be a real date. */
int32_t vdx_resolve(const vdx_date_expr *e, int32_t not_before);

/* One date-like statement found in the text. */
typedef struct vdx_date_fact {
  size_t tok;     /* first token */
  size_t end_tok; /* index after the last token */
  bool range;     /* "X to Y": start and end below are resolved (end after start) */
  int32_t start, end;
  vdx_date_expr single; /* a single date, resolved by the orchestrator against its context */
  vdx_role role;        /* for a single date: start or end (or unknown) */
  bool weak;            /* a guess: a weekend, a date found without any cue */
} vdx_date_fact;

typedef struct vdx_nights_fact {
  size_t tok;
  int nights;
  bool total; /* "9 nights total", "over 12 nights": the whole trip */
  bool leg;   /* followed by a place ("3 nights in Rome"): legs are summed */
  bool weak;  /* read from days, not nights */
} vdx_nights_fact;

typedef struct vdx_dates {
  vdx_date_fact date[24];
  size_t ndates;
  vdx_nights_fact nights[16];
  size_t nnights;
} vdx_dates;

/* Reads every date, range and duration in tokens [0, t->n). is_place[i] is true on the tokens
 * of a destination's name (for "and then 2 in Geneva"). */
void vdx_read_dates(const vdx_text *t, const bool *is_place, int32_t reference, vdx_dates *out);

/* ---- the orchestrator's context (vd_extract_rules.c), shared with the party reader ----------- */

typedef struct vdx_ctx {
  const vdx_text *t;
  const vd_gazetteer *g;
  uint8_t *seg; /* the part (between corrections) of each token */
  size_t nseg;
  bool *is_place; /* the token is part of a destination's name (n + 2 entries) */
} vdx_ctx;

/* Token i, or an empty punctuation token past the end (so look-ahead needs no bounds checks). */
static inline const vdx_token *vdx_c_tok(const vdx_ctx *c, size_t i) {
  static const vdx_token none = {.s = "", .len = 0, .kind = VDX_PUNCT};
  return i < c->t->n ? &c->t->tok[i] : &none;
}
static inline bool vdx_c_is(const vdx_ctx *c, size_t i, const char *w) {
  return vdx_is(vdx_c_tok(c, i), w);
}
static inline size_t vdx_c_match(const vdx_ctx *c, size_t i, const char *p) {
  return vdx_match(c->t, i, p);
}
static inline bool vdx_c_place(const vdx_ctx *c, size_t i) { return i < c->t->n && c->is_place[i]; }

/* ---- party (vd_extract_party.c) ----------------------------------------------------------------
 */

typedef struct vdx_party {
  size_t last_count_tok; /* where the last count was written, for "make it 6" */
  int adults_counted;    /* "2 adults", "two couples", "both adults" (-1 none) */
  int children;          /* children with a known count */
  int companions;        /* adult companions: my wife, 3 mates, our adult son */
  int total;             /* "4 of us", "party of 4", "3 people" (-1 none) */
  bool children_unknown;
  bool companions_unknown;
  bool speaker;      /* the writer travels: me, myself, solo, X and I */
  bool speaker_with; /* ... or goes "with" someone (not said of a "we" group) */
  bool we;
  bool all_adults;
  bool any;
  bool child_mentioned;
  bool counted_any;
  bool family;         /* "a family of four": the split is not said */
  int grown_offspring; /* sons and daughters of 18 or more, among the companions */
} vdx_party;

/* Reads the party of part `seg`; explicit_only: only numbered counts ("so it's two of us"), for a
 * part that corrects an earlier one. */
void vdx_read_party(const vdx_ctx *c, size_t seg, bool explicit_only, vdx_party *p);
/* adults and children of one part (-1 = unknown); children_known is the final children count
 * when this part does not say (for "N of us" minus the children). */
void vdx_party_counts(const vdx_party *p, int children_known, int *adults, int *children);
/* A word for a relative or friend (wife, daughter, mates...). */
bool vdx_relation_noun(const vdx_token *t);

#endif
