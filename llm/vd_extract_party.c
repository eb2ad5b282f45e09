/* The party: adults and children from counts, the writer, companions and ages. */
#include <string.h>

#include "vd_extract_internal.h"

typedef enum { N_NONE, N_ADULT, N_CHILD, N_TOTAL, N_COMPANION, N_OFFSPRING } noun_class;

typedef struct noun {
  const char *word;
  uint8_t cls;
  uint8_t implied; /* people in one (parents = 2, couple = 2), 0 = one per count */
  bool plural;
} noun;

static const noun nouns[] = {
    {"adult", N_ADULT, 0, false},
    {"adults", N_ADULT, 0, true},
    {"adlt", N_ADULT, 0, false},
    {"adlts", N_ADULT, 0, true},
    {"grownup", N_ADULT, 0, false},
    {"grownups", N_ADULT, 0, true},
    {"grown", N_ADULT, 0, true},
    {"seniors", N_ADULT, 0, true},
    {"pensioners", N_ADULT, 0, true},
    {"people", N_TOTAL, 0, true},
    {"persons", N_TOTAL, 0, true},
    {"person", N_TOTAL, 0, false},
    {"ppl", N_TOTAL, 0, true},
    {"pax", N_TOTAL, 0, true},
    {"travellers", N_TOTAL, 0, true},
    {"travelers", N_TOTAL, 0, true},
    {"traveller", N_TOTAL, 0, false},
    {"traveler", N_TOTAL, 0, false},
    {"guests", N_TOTAL, 0, true},
    {"guest", N_TOTAL, 0, false},
    {"kid", N_CHILD, 0, false},
    {"kids", N_CHILD, 0, true},
    {"kiddo", N_CHILD, 0, false},
    {"kiddos", N_CHILD, 0, true},
    {"child", N_CHILD, 0, false},
    {"children", N_CHILD, 0, true},
    {"littles", N_CHILD, 0, true},
    {"little", N_NONE, 0, false},
    {"baby", N_CHILD, 0, false},
    {"babies", N_CHILD, 0, true},
    {"toddler", N_CHILD, 0, false},
    {"toddlers", N_CHILD, 0, true},
    {"infant", N_CHILD, 0, false},
    {"infants", N_CHILD, 0, true},
    {"teen", N_CHILD, 0, false},
    {"teens", N_CHILD, 0, true},
    {"teenager", N_CHILD, 0, false},
    {"teenagers", N_CHILD, 0, true},
    {"minors", N_CHILD, 0, true},
    {"twins", N_CHILD, 2, true},
    {"son", N_OFFSPRING, 0, false},
    {"sons", N_OFFSPRING, 0, true},
    {"daughter", N_OFFSPRING, 0, false},
    {"daughters", N_OFFSPRING, 0, true},
    {"boy", N_OFFSPRING, 0, false},
    {"boys", N_OFFSPRING, 0, true},
    {"girl", N_OFFSPRING, 0, false},
    {"grandchildren", N_OFFSPRING, 0, true},
    {"grandkids", N_OFFSPRING, 0, true},
    {"grandson", N_OFFSPRING, 0, false},
    {"granddaughter", N_OFFSPRING, 0, false},
    {"nephew", N_OFFSPRING, 0, false},
    {"niece", N_OFFSPRING, 0, false},
    {"girls", N_OFFSPRING, 0, true},
    {"wife", N_COMPANION, 0, false},
    {"husband", N_COMPANION, 0, false},
    {"hubby", N_COMPANION, 0, false},
    {"partner", N_COMPANION, 0, false},
    {"girlfriend", N_COMPANION, 0, false},
    {"boyfriend", N_COMPANION, 0, false},
    {"gf", N_COMPANION, 0, false},
    {"bf", N_COMPANION, 0, false},
    {"fiance", N_COMPANION, 0, false},
    {"fiancee", N_COMPANION, 0, false},
    {"spouse", N_COMPANION, 0, false},
    {"mum", N_COMPANION, 0, false},
    {"mom", N_COMPANION, 0, false},
    {"mother", N_COMPANION, 0, false},
    {"mam", N_COMPANION, 0, false},
    {"dad", N_COMPANION, 0, false},
    {"father", N_COMPANION, 0, false},
    {"parents", N_COMPANION, 2, true},
    {"grandparents", N_COMPANION, 2, true},
    {"grandparent", N_COMPANION, 0, false},
    {"grandma", N_COMPANION, 0, false},
    {"grandmother", N_COMPANION, 0, false},
    {"grandpa", N_COMPANION, 0, false},
    {"grandfather", N_COMPANION, 0, false},
    {"granny", N_COMPANION, 0, false},
    {"nan", N_COMPANION, 0, false},
    {"nana", N_COMPANION, 0, false},
    {"brother", N_COMPANION, 0, false},
    {"brothers", N_COMPANION, 0, true},
    {"sister", N_COMPANION, 0, false},
    {"sisters", N_COMPANION, 0, true},
    {"friend", N_COMPANION, 0, false},
    {"friends", N_COMPANION, 0, true},
    {"mate", N_COMPANION, 0, false},
    {"mates", N_COMPANION, 0, true},
    {"buddy", N_COMPANION, 0, false},
    {"buddies", N_COMPANION, 0, true},
    {"pal", N_COMPANION, 0, false},
    {"pals", N_COMPANION, 0, true},
    {"colleague", N_COMPANION, 0, false},
    {"colleagues", N_COMPANION, 0, true},
    {"coworkers", N_COMPANION, 0, true},
    {"cousin", N_COMPANION, 0, false},
    {"cousins", N_COMPANION, 0, true},
    {"aunt", N_COMPANION, 0, false},
    {"uncle", N_COMPANION, 0, false},
    {"inlaws", N_COMPANION, 2, true},
    {"bestie", N_COMPANION, 0, false},
    {"couple", N_ADULT, 2, false},
    {"couples", N_ADULT, 2, true},
};

static const noun *noun_at(const vdx_token *t) {
  if (t->kind != VDX_WORD) return NULL;
  for (size_t k = 0; k < sizeof nouns / sizeof nouns[0]; k++)
    if (nouns[k].cls != N_NONE && vdx_is(t, nouns[k].word)) return &nouns[k];
  return NULL;
}

bool vdx_relation_noun(const vdx_token *t) {
  const noun *n = noun_at(t);
  return n && (n->cls == N_COMPANION || n->cls == N_OFFSPRING);
}

static void party_init(vdx_party *p) {
  memset(p, 0, sizeof *p);
  p->adults_counted = -1;
  p->total = -1;
}

/* "N-year-old(s)", "N year old", "N yo", "aged N": sets *age, returns the index after, 0 if none.
 */
static size_t age_adj(const vdx_ctx *c, size_t i, int *age) {
  int value = 0;
  size_t j = vdx_number(c->t, i, false, &value);
  if (!j) return 0;
  if (vdx_is_punct(vdx_c_tok(c, j), '-')) j++;
  size_t k = vdx_c_match(c, j, "year old*");
  if (!k) k = vdx_c_match(c, j, "years old*");
  if (!k) k = vdx_c_match(c, j, "yr old*");
  if (!k) k = vdx_c_match(c, j, "yo");
  if (k) *age = value; /* only once it is an age: "12 2027" is not */
  return k;
}

/* "(ages 6 and 9)", "aged 3, 8 and 16", "(13 and 17)", "(22)": counts the ages into adults and
 * kids. */
static size_t age_list(const vdx_ctx *c, size_t i, int *adults, int *kids) {
  size_t j = i;
  bool paren = false;
  if (vdx_is_punct(vdx_c_tok(c, j), ',') &&
      (vdx_c_is(c, j + 1, "ages") || vdx_c_is(c, j + 1, "aged")))
    j++;
  if (vdx_is_punct(vdx_c_tok(c, j), '(')) {
    paren = true;
    j++;
  }
  bool word = false;
  if (vdx_c_is(c, j, "ages") || vdx_c_is(c, j, "aged") || vdx_c_is(c, j, "age")) {
    word = true;
    j++;
  }
  if (!paren && !word) return 0;
  int a = 0, k = 0;
  for (;;) {
    int v = 0;
    size_t q = vdx_number(c->t, j, false, &v);
    if (!q || v > 110) break;
    if (v >= 18)
      a++;
    else
      k++;
    j = q;
    if (vdx_c_is(c, j, "and") || vdx_is_punct(vdx_c_tok(c, j), ',') ||
        vdx_is_punct(vdx_c_tok(c, j), '&')) {
      j++;
      continue;
    }
    break;
  }
  if (a + k == 0) return 0;
  if (paren && vdx_is_punct(vdx_c_tok(c, j), ')')) j++;
  *adults = a;
  *kids = k;
  return j;
}

/* Words between a determiner and its noun. */
static bool modifier(const vdx_token *t) {
  static const char *const words[] = {"new",     "little",   "young",    "younger", "older",
                                      "elderly", "eldest",   "youngest", "lovely",  "two",
                                      "teenage", "teenaged", "grown",    "baby",    "adult",
                                      "best",    "old",      "small",    "wee",     "twin"};
  for (size_t k = 0; k < sizeof words / sizeof words[0]; k++)
    if (vdx_is(t, words[k])) return true;
  return false;
}

static bool determiner(const vdx_token *t) {
  return vdx_is(t, "my") || vdx_is(t, "our") || vdx_is(t, "his") || vdx_is(t, "her") ||
         vdx_is(t, "their") || vdx_is(t, "the") || vdx_is(t, "a") || vdx_is(t, "an");
}

/* One noun phrase about people at i: [det] [count] [modifiers] (noun | age) [age list].
 * explicit_only: only numbered counts (for corrections). Returns the index after, 0 if none. */
static size_t person_phrase(const vdx_ctx *c, size_t i, bool explicit_only, vdx_party *p) {
  size_t j = i;
  bool det = false;
  if (determiner(vdx_c_tok(c, j))) {
    det = true;
    j++;
  }
  int count = -1;
  size_t q;
  int tmp = 0;
  if (vdx_c_is(c, j, "both")) {
    count = 2;
    j++;
  } else if (vdx_c_is(c, j, "no") || vdx_c_is(c, j, "zero")) {
    count = 0; /* "no kids" says there are none */
    j++;
  } else if (vdx_c_is(c, j, "twin") || vdx_c_is(c, j, "twins")) {
    if (vdx_c_is(c, j, "twin")) {
      count = 2;
      j++;
    }
  } else if ((q = vdx_number(c->t, j, false, &tmp)) && !age_adj(c, j, &tmp)) {
    vdx_number(c->t, j, false, &count);
    j = q;
  }
  if (det && count < 0 && (vdx_c_is(c, i, "a") || vdx_c_is(c, i, "an"))) count = 1;
  int age = -1;
  bool adult_word = false, baby_word = false;
  for (int guard = 0; guard < 3; guard++) {
    size_t a;
    if ((a = age_adj(c, j, &age))) {
      j = a;
      continue;
    }
    if (vdx_c_is(c, j, "twin")) {
      count = 2;
      j++;
      continue;
    }
    if (modifier(vdx_c_tok(c, j)) &&
        noun_at(vdx_c_tok(c, j + 1 + (vdx_is_punct(vdx_c_tok(c, j + 1), '-') ? 1 : 0)))) {
      if (vdx_c_is(c, j, "adult") || vdx_c_is(c, j, "grown")) adult_word = true;
      if (vdx_c_is(c, j, "baby") || vdx_c_is(c, j, "teenage") || vdx_c_is(c, j, "teenaged") ||
          vdx_c_is(c, j, "little") || vdx_c_is(c, j, "young") || vdx_c_is(c, j, "wee") ||
          vdx_c_is(c, j, "small"))
        baby_word = true;
      j++;
      continue;
    }
    break;
  }
  const noun *n = noun_at(vdx_c_tok(c, j));
  if (n && (vdx_c_tok(c, j)->flags & VDX_POSS) && !n->implied)
    return 0; /* "a girls' trip", "the kids' club", "my husband's birthday" */
  if (n && (vdx_is(vdx_c_tok(c, j), "couple") || vdx_is(vdx_c_tok(c, j), "couples")) &&
      ((vdx_c_is(c, j + 1, "of") && !vdx_c_is(c, j + 2, "us") && !noun_at(vdx_c_tok(c, j + 2))) ||
       (vdx_c_tok(c, j)->flags & VDX_POSS)))
    return 0; /* "a couple of museums", "a couple's massage" */
  bool grown_up = false;
  if (n && vdx_is(vdx_c_tok(c, j), "grown")) {
    /* grown-ups / grown ups */
    size_t g = vdx_c_match(c, j, "grown up*");
    if (!g)
      n = NULL;
    else {
      grown_up = true;
      j = g - 1;
    }
  }
  if (!n && age < 0) {
    if (vdx_c_is(c, j, "little") && (vdx_c_is(c, j + 1, "ones") || vdx_c_is(c, j + 1, "one"))) {
      static const noun little = {"little ones", N_CHILD, 0, true};
      n = &little;
      j++;
    } else {
      return 0;
    }
  }
  size_t end = n ? j + 1 : j;
  if (n && age < 0) {
    /* "our son who is 18", "our son, 19, and ..." */
    int a2 = -1;
    size_t q = 0;
    if (vdx_c_is(c, end, "who") && (vdx_c_is(c, end + 1, "is") || vdx_c_is(c, end + 1, "turns")))
      q = vdx_number(c->t, end + 2, false, &a2);
    else if (vdx_c_is(c, end, "who's"))
      q = vdx_number(c->t, end + 1, false, &a2);
    else if (vdx_is_punct(vdx_c_tok(c, end), ',') && vdx_c_tok(c, end + 1)->kind == VDX_NUM) {
      q = vdx_number(c->t, end + 1, false, &a2);
      const vdx_token *after = vdx_c_tok(c, q);
      if (q && !(after->kind == VDX_PUNCT || vdx_is(after, "and") || q >= c->t->n)) q = 0;
    }
    if (q && a2 >= 0 && a2 < 110) {
      age = a2;
      end = q;
    }
  }
  if (n && n->implied && count < 0)
    count = n->implied; /* parents = 2, twins = 2 */
  else if (n && n->implied && n->cls == N_ADULT)
    count *= n->implied; /* two couples = 4 */
  int list_adults = 0, list_kids = 0;
  size_t l = age_list(c, end, &list_adults, &list_kids);
  if (l) end = l;
  if (explicit_only && count < 0 && !l) return 0;
  if (explicit_only && n && (n->cls == N_COMPANION || n->cls == N_OFFSPRING) && count < 0) return 0;
  /* A bare companion word needs a determiner or a count ("Solo dad" is the writer). */
  if (!det && count < 0 && !l && n && n->cls != N_CHILD && n->cls != N_ADULT) {
    const vdx_token *before = i > 0 ? vdx_c_tok(c, i - 1) : NULL;
    /* ... or to stand in a list: "Grandma, grandpa, my wife and me" */
    const vdx_token *after = vdx_c_tok(c, end);
    bool joined =
        vdx_is_punct(after, ',') || vdx_is(after, "and") ||
        (before && (vdx_is(before, "and") || vdx_is(before, "n") || vdx_is_punct(before, '+') ||
                    vdx_is_punct(before, '&') || vdx_is(before, "with") || vdx_is(before, "w") ||
                    vdx_is(before, "plus") || vdx_is_punct(before, ',')));
    if (!joined) return 0;
  }
  noun_class cls = n ? (noun_class)n->cls : N_OFFSPRING;
  if (cls == N_OFFSPRING) {
    /* a son or daughter is a child unless grown: "adult son", "19-year-old son", "son (22)" */
    bool grown = adult_word || grown_up || age >= 18 ||
                 (age < 0 && !baby_word && l && list_adults > 0 && list_kids == 0);
    cls = grown ? N_COMPANION : N_CHILD;
  }
  if (cls == N_CHILD && age >= 18) cls = N_COMPANION;
  if (count < 0 && l) count = list_adults + list_kids;
  if (count < 0 && n && !n->plural) count = 1;
  if (count < 0 && !n) count = 1; /* "our 15-year-old" */
  /* "my wife", "my boyfriend": a partner travels with the writer */
  if (n && det && vdx_c_is(c, i, "my")) {
    static const char *const partners[] = {"wife",       "husband",   "hubby", "partner",
                                           "girlfriend", "boyfriend", "gf",    "bf",
                                           "fiance",     "fiancee",   "spouse"};
    for (size_t k = 0; k < sizeof partners / sizeof partners[0]; k++)
      if (vdx_is(vdx_c_tok(c, j), partners[k])) p->speaker_with = true;
  }
  p->any = true;
  p->last_count_tok = i;
  p->counted_any = true;
  switch (cls) {
    case N_ADULT:
      if (count < 0) return end; /* "adults" with no count says nothing */
      p->adults_counted = (p->adults_counted < 0 ? 0 : p->adults_counted) + count;
      break;
    case N_TOTAL:
      if (count >= 0) p->total = count;
      break;
    case N_CHILD:
      p->child_mentioned = true;
      if (count < 0)
        p->children_unknown = true;
      else if (l && list_adults > 0 && count == list_adults + list_kids) {
        p->children += list_kids;
        p->companions += list_adults;
      } else {
        p->children += count;
      }
      break;
    case N_COMPANION:
      if (count < 0)
        p->companions_unknown = true;
      else
        p->companions += count;
      if (count > 0 && (!n || n->cls == N_OFFSPRING)) p->grown_offspring += count;
      break;
    default:
      break;
  }
  return end;
}

/* "and" and the writer's "I"/"me", also as written in a few European languages ("Helene et moi",
 * "Jonas und ich"), which travellers often keep when writing in English. */
static bool and_word(const vdx_token *t) {
  return vdx_is(t, "and") || vdx_is(t, "n") || vdx_is_punct(t, '&') || vdx_is(t, "et") ||
         vdx_is(t, "und") || vdx_is(t, "y") || vdx_is(t, "e") || vdx_is(t, "og") ||
         vdx_is(t, "och") || vdx_is(t, "en");
}

static bool self_word(const vdx_token *t) {
  return vdx_is(t, "i") || vdx_is(t, "me") || vdx_is(t, "moi") || vdx_is(t, "ich") ||
         vdx_is(t, "yo") || vdx_is(t, "io") || vdx_is(t, "jeg") || vdx_is(t, "jag") ||
         vdx_is(t, "ik");
}

/* The writer travels: "me", "myself", "solo", "X and I", "with my ..." */
static bool speaker_at(const vdx_ctx *c, size_t i) {
  const vdx_token *t = vdx_c_tok(c, i);
  const vdx_token *prev = i > 0 ? vdx_c_tok(c, i - 1) : NULL;
  const vdx_token *next = vdx_c_tok(c, i + 1);
  if (vdx_is(t, "myself") || vdx_is(t, "solo") || vdx_is(t, "alone") ||
      vdx_c_match(c, i, "on my own") || vdx_c_match(c, i, "by myself"))
    return true;
  if (vdx_is(t, "me")) {
    if (prev && (vdx_is(prev, "just") || vdx_is(prev, "only") || vdx_is(prev, "and") ||
                 vdx_is_punct(prev, ',') || vdx_is_punct(prev, '(') || vdx_is_punct(prev, '&') ||
                 vdx_is_punct(prev, '+') || vdx_is(prev, "it's") || vdx_is(prev, "n")))
      return true;
    if (vdx_is(next, "and") || vdx_is_punct(next, ',') || vdx_is_punct(next, '+') ||
        vdx_is(next, "n") || vdx_is_punct(next, '&') || vdx_is(next, "plus") ||
        vdx_is_punct(next, ')') || vdx_is(next, "with") || vdx_is(next, "w"))
      return !prev || !(vdx_is(prev, "send") || vdx_is(prev, "give") || vdx_is(prev, "tell") ||
                        vdx_is(prev, "email") || vdx_is(prev, "call") || vdx_is(prev, "let") ||
                        vdx_is(prev, "help") || vdx_is(prev, "show") || vdx_is(prev, "quote"));
    if (prev && vdx_is(prev, "for") && (next->kind == VDX_PUNCT || i + 1 >= c->t->n)) return true;
    return false;
  }
  if (self_word(t) && !vdx_is(t, "me") && prev && and_word(prev)) return true;
  if (vdx_is(t, "i") && vdx_is(next, "and")) return true;
  return false;
}

void vdx_read_party(const vdx_ctx *c, size_t seg, bool explicit_only, vdx_party *p) {
  party_init(p);
  size_t n = c->t->n;
  for (size_t i = 0; i < n;) {
    if (c->seg[i] != seg) {
      i++;
      continue;
    }
    size_t j;
    int v = 0;
    /* N of us / the N of us / N of them */
    size_t a = vdx_c_is(c, i, "the") || vdx_c_is(c, i, "all") ? i + 1 : i;
    if ((j = vdx_number(c->t, a, false, &v)) &&
        (vdx_c_match(c, j, "of us") || vdx_c_match(c, j, "of them"))) {
      /* "the two of us and our baby": the others come on top */
      const vdx_token *next = vdx_c_tok(c, j + 2);
      if (vdx_is(next, "and") || vdx_is(next, "plus") || vdx_is(next, "with") ||
          vdx_is_punct(next, '+'))
        p->adults_counted = (p->adults_counted < 0 ? 0 : p->adults_counted) + v;
      else
        p->total = v;
      p->any = true;
      p->counted_any = true;
      p->last_count_tok = i;
      i = j + 2;
      continue;
    }
    /* party / group / family of N; we are N */
    if ((vdx_c_match(c, i, "party of") || vdx_c_match(c, i, "group of") ||
         vdx_c_match(c, i, "family of")) &&
        (j = vdx_number(c->t, i + 2, false, &v)) && !noun_at(vdx_c_tok(c, j))) {
      p->total = v;
      p->family = vdx_c_is(c, i, "family");
      p->any = true;
      p->counted_any = true;
      p->last_count_tok = i;
      i = j;
      continue;
    }
    /* "us two", "we two": the writer and one more */
    if (!explicit_only && (vdx_c_match(c, i, "us two") || vdx_c_match(c, i, "we two") ||
                           vdx_c_match(c, i, "us 2") || vdx_c_match(c, i, "the pair of us"))) {
      p->adults_counted = (p->adults_counted < 0 ? 0 : p->adults_counted) + 2;
      p->any = true;
      i += 2;
      continue;
    }
    /* "a trip for 4", "a table for two": everyone */
    if (!explicit_only &&
        (vdx_c_is(c, i, "trip") || vdx_c_is(c, i, "holiday") || vdx_c_is(c, i, "getaway") ||
         vdx_c_is(c, i, "break") || vdx_c_is(c, i, "vacation") || vdx_c_is(c, i, "booking") ||
         vdx_c_is(c, i, "room") || vdx_c_is(c, i, "villa") || vdx_c_is(c, i, "apartment") ||
         vdx_c_is(c, i, "accommodation")) &&
        vdx_c_is(c, i + 1, "for") && (j = vdx_number(c->t, i + 2, false, &v)) && v >= 1 &&
        v < 100 &&
        (vdx_c_tok(c, j)->kind == VDX_PUNCT || j >= c->t->n || vdx_c_match(c, j, "of us"))) {
      p->total = v;
      p->any = true;
      p->counted_any = true;
      p->last_count_tok = i;
      i = j;
      continue;
    }
    if ((vdx_c_match(c, i, "we are") || vdx_c_match(c, i, "we're") ||
         vdx_c_match(c, i, "there are")) &&
        (j = vdx_number(c->t, i + (vdx_c_is(c, i, "we're") ? 1 : 2), false, &v)) &&
        !noun_at(vdx_c_tok(c, j)) && !vdx_c_match(c, j, "of")) {
      p->total = v;
      p->any = true;
      p->counted_any = true;
      p->last_count_tok = i;
      i = j;
      continue;
    }
    if (!explicit_only) {
      if (vdx_c_match(c, i, "all adults") || vdx_c_match(c, i, "all grown up*") ||
          vdx_c_match(c, i, "all grownups") || vdx_c_match(c, i, "all over 18") ||
          vdx_c_match(c, i, "all in our twenties") || vdx_c_match(c, i, "all in our thirties") ||
          vdx_c_match(c, i, "all in our forties") || vdx_c_match(c, i, "all in our twenties") ||
          vdx_c_match(c, i, "all adult")) {
        p->all_adults = true;
        p->any = true;
      }
      /* Two names: "Niccolo and Giulia here" */
      if ((vdx_c_tok(c, i)->flags & VDX_CAP) && and_word(vdx_c_tok(c, i + 1)) &&
          (vdx_c_tok(c, i + 2)->flags & VDX_CAP) &&
          (vdx_c_is(c, i + 3, "here") || vdx_is_punct(vdx_c_tok(c, i + 3), ':') ||
           vdx_is_punct(vdx_c_tok(c, i + 3), '-')) &&
          !vdx_c_place(c, i) && !vdx_c_place(c, i + 2) && !noun_at(vdx_c_tok(c, i)) &&
          !noun_at(vdx_c_tok(c, i + 2))) {
        p->adults_counted = (p->adults_counted < 0 ? 0 : p->adults_counted) + 2;
        p->any = true;
        i += 4;
        continue;
      }
      /* "Asa and I": a named companion */
      if ((vdx_c_tok(c, i)->flags & VDX_CAP) &&
          !(vdx_c_tok(c, i)->flags & VDX_SENT && determiner(vdx_c_tok(c, i))) &&
          vdx_c_tok(c, i)->kind == VDX_WORD && !noun_at(vdx_c_tok(c, i)) &&
          and_word(vdx_c_tok(c, i + 1)) && self_word(vdx_c_tok(c, i + 2)) && !c->is_place[i] &&
          !vdx_c_is(c, i, "i") && !(i > 0 && vdx_relation_noun(vdx_c_tok(c, i - 1)))) {
        p->companions++;
        p->speaker = true;
        p->any = true;
        i += 3;
        continue;
      }
      if (speaker_at(c, i)) {
        p->speaker = true;
        p->any = true;
      }
      /* "with my daughter", "w/ 3 mates", "travelling with 2 friends": the writer comes too */
      if (vdx_c_is(c, i, "with") || vdx_c_is(c, i, "w")) {
        size_t q = vdx_is_punct(vdx_c_tok(c, i + 1), '/') ? i + 2 : i + 1;
        int count = 0;
        if (vdx_c_is(c, q, "my") || vdx_number(c->t, q, true, &count) ||
            vdx_relation_noun(vdx_c_tok(c, q)))
          p->speaker_with = true;
      }
      const vdx_token *t = vdx_c_tok(c, i);
      if (vdx_is(t, "we") || vdx_is(t, "we're") || vdx_is(t, "we'd") || vdx_is(t, "we've") ||
          vdx_is(t, "we'll") || vdx_is(t, "us") || vdx_is(t, "our") || vdx_is(t, "ours"))
        p->we = true;
    }
    if ((j = person_phrase(c, i, explicit_only, p))) {
      i = j;
      continue;
    }
    i++;
  }
}

/* adults and children of one part (-1 = unknown); children_known is the final children count
 * when this part does not say (for "N of us" minus the children). */
void vdx_party_counts(const vdx_party *p, int children_known, int *adults, int *children) {
  *adults = -1;
  *children = -1;
  if (!p->any) return;
  if (p->child_mentioned)
    *children = p->children_unknown ? -1 : p->children;
  else if (p->all_adults || p->adults_counted >= 0 || p->speaker || p->speaker_with ||
           p->companions || p->total >= 0)
    *children = 0;
  if (p->family && p->total >= 0 && !p->child_mentioned && !p->all_adults &&
      p->adults_counted < 0) {
    *adults = -1; /* "a family of four" could be any mix of adults and children */
    *children = -1;
    return;
  }
  int kids = *children >= 0 ? *children : children_known;
  if (p->adults_counted >= 0) {
    /* "2 adults: me and my wife" names the same two; a grown son comes on top ("two adults and
     * our son who is 18") */
    int named = (p->speaker ? 1 : 0) + p->companions - p->grown_offspring;
    *adults = (named > p->adults_counted ? named : p->adults_counted) + p->grown_offspring;
  } else if (p->total >= 0) {
    if (p->all_adults) {
      *adults = p->total;
      *children = 0;
    } else if (kids >= 0) {
      *adults = p->total - kids;
      if (*adults < 0) *adults = -1;
    }
  } else if (p->companions_unknown) {
    *adults = -1;
  } else if (p->speaker || (p->speaker_with && !p->we) || (p->we && p->companions > 0)) {
    *adults = 1 + p->companions;
  } else if (p->companions > 0 && !p->we) {
    *adults = p->companions;
  }
}
