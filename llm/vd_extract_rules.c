/* The rules extractor: combines tokens, the gazetteer and the date reader into the eight trip
 * fields, sentence part by sentence part so that a later correction wins. */
#include "vd_extract_rules.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vd_extract_internal.h"

static const char *const field_names[VD_EXTRACT_FIELD_COUNT] = {
    "destinations", "start_date", "end_date", "nights",
    "adults",       "children",   "budget",   "interests"};

const char *vd_extract_field_name(vd_extract_field field) {
  return (unsigned)field < VD_EXTRACT_FIELD_COUNT ? field_names[field] : NULL;
}

bool vd_extract_field_from_name(const char *name, vd_extract_field *field) {
  for (int f = 0; f < VD_EXTRACT_FIELD_COUNT; f++)
    if (name && strcmp(name, field_names[f]) == 0) {
      *field = (vd_extract_field)f;
      return true;
    }
  return false;
}

/* ---- segments: a correction starts a new part; later parts win ------------------------------- */

enum { MAX_SEGMENTS = 16 };

typedef vdx_ctx ctx;

/* Does a correction start at token i? Returns its kind: 1 = starts here, 2 = "instead" (the
 * clause holding it starts the correction), 0 = none. */
static int correction_at(const ctx *c, size_t i) {
  static const char *const markers[] = {"actually",
                                        "no wait",
                                        "oh wait",
                                        "sorry",
                                        "i meant",
                                        "scratch that",
                                        "change of plan*",
                                        "changed our mind*",
                                        "changed my mind*",
                                        "correction",
                                        "on second thought*",
                                        "hmm",
                                        "make that",
                                        "make it #",
                                        "not anymore",
                                        "update :",
                                        "update ,",
                                        "edit :",
                                        "rather ,",
                                        "but now",
                                        "we'd rather",
                                        "i'd rather",
                                        "would rather",
                                        "but instead"};
  for (size_t k = 0; k < sizeof markers / sizeof markers[0]; k++)
    if (vdx_c_match(c, i, markers[k])) return 1;
  if (vdx_c_is(c, i, "wait") &&
      !(i > 0 && (vdx_c_is(c, i - 1, "can't") || vdx_c_is(c, i - 1, "cant") ||
                  vdx_c_is(c, i - 1, "cannot") || vdx_c_is(c, i - 1, "to"))))
    return 1;
  if (vdx_c_is(c, i, "instead") && !vdx_c_is(c, i + 1, "of")) return 2;
  /* "Originally Madrid, but we switched to Seville", "my wife prefers Florence" */
  if ((vdx_c_match(c, i, "switch* to") || vdx_c_match(c, i, "changed to") ||
       vdx_c_match(c, i, "prefer*") || vdx_c_match(c, i, "go with") ||
       vdx_c_match(c, i, "going with")) &&
      (vdx_c_place(c, i + 1) || vdx_c_place(c, i + 2) || vdx_c_place(c, i + 3)))
    return 1;
  /* "so Florence it is" */
  if (i > 0 && vdx_c_place(c, i - 1) && vdx_c_match(c, i, "it is")) return 2;
  return 0;
}

static void split_segments(ctx *c) {
  size_t n = c->t->n;
  size_t cuts[MAX_SEGMENTS];
  size_t ncut = 0;
  for (size_t i = 0; i < n && ncut + 1 < MAX_SEGMENTS; i++) {
    int kind = correction_at(c, i);
    if (!kind) continue;
    size_t at = i;
    if (kind == 2) {
      while (at > 0 && !vdx_is_boundary(vdx_c_tok(c, at - 1)) && !vdx_c_is(c, at - 1, "so") &&
             !vdx_c_is(c, at - 1, "but") && !vdx_c_is(c, at - 1, "then"))
        at--;
      if (at > 0 && (vdx_c_is(c, at - 1, "so") || vdx_c_is(c, at - 1, "but"))) at--;
    }
    if (ncut && at <= cuts[ncut - 1]) continue;
    if (at == 0) continue;
    cuts[ncut++] = at;
  }
  size_t s = 0;
  for (size_t i = 0; i < n; i++) {
    while (s < ncut && i >= cuts[s]) s++;
    c->seg[i] = (uint8_t)s;
  }
  c->nseg = ncut + 1;
}

/* Negated within its clause: "no hiking", "not into museums", "without the beach". */
static bool negated(const ctx *c, size_t i) {
  for (size_t k = i, steps = 0; k > 0 && steps < 4; steps++) {
    k--;
    const vdx_token *t = vdx_c_tok(c, k);
    if (vdx_is_boundary(t)) return false;
    if (vdx_is(t, "no") || vdx_is(t, "not") || vdx_is(t, "without") || vdx_is(t, "skip") ||
        vdx_is(t, "avoid") || vdx_is(t, "hate") || vdx_is(t, "nor") ||
        (t->len > 3 && memcmp(t->s + t->len - 3, "n't", 3) == 0) || vdx_is(t, "dont") ||
        vdx_is(t, "never"))
      return !(k + 1 < c->t->n && vdx_c_is(c, k + 1, "wait"));
  }
  return false;
}

/* ---- phrase tables ------------------------------------------------------------------------------
 */

typedef struct phrase {
  const char *pattern;
  int value;
} phrase;

enum { LOW = 1, MID, HIGH };

static const phrase budget_phrases[] = {
    {"cheap*", LOW},
    {"shoestring", LOW},
    {"tight budget", LOW},
    {"budget is tight", LOW},
    {"budget tight", LOW},
    {"on a budget", LOW},
    {"low budget", LOW},
    {"limited budget", LOW},
    {"small budget", LOW},
    {"budget hotel*", LOW},
    {"budget friendly", LOW},
    {"budget option*", LOW},
    {"budget accommodation", LOW},
    {"budget travel*", LOW},
    {"hostel*", LOW},
    {"backpack*", LOW},
    {"affordable", LOW},
    {"inexpensive", LOW},
    {"economical", LOW},
    {"frugal", LOW},
    {"low cost", LOW},
    {"bargain*", LOW},
    {"as cheaply as possible", LOW},
    {"low ish", LOW},
    {"mid range", MID},
    {"midrange", MID},
    {"mid priced", MID},
    {"mid level", MID},
    {"mid budget", MID},
    {"moderate*", MID},
    {"3 star", MID},
    {"4 star", MID},
    {"three star", MID},
    {"four star", MID},
    {"nothing fancy", MID},
    {"nothing too fancy", MID},
    {"not too fancy", MID},
    {"nothing too pricey", MID},
    {"not too pricey", MID},
    {"nothing too expensive", MID},
    {"reasonably priced", MID},
    {"reasonable price*", MID},
    {"middle of the road", MID},
    {"not too expensive", MID},
    {"standard hotel*", MID},
    {"luxur*", HIGH},
    {"five star", HIGH},
    {"5 star", HIGH},
    {"splurg*", HIGH},
    {"splash out", HIGH},
    {"money no object", HIGH},
    {"money is no object", HIGH},
    {"money not an issue", HIGH},
    {"money is not an issue", HIGH},
    {"no expense spared", HIGH},
    {"spare no expense", HIGH},
    {"high end", HIGH},
    {"top end", HIGH},
    {"upscale", HIGH},
    {"premium", HIGH},
    {"deluxe", HIGH},
    {"lavish", HIGH},
    {"first class", HIGH},
    {"best hotel*", HIGH},
    {"best suite*", HIGH},
    {"sky is the limit", HIGH},
    {"the sky the limit", HIGH},
    {"big budget", HIGH},
    {"high budget", HIGH},
    {"opulent", HIGH},
};

/* Phrases grouped by first letter (built per call: a few hundred steps, against tens of
 * thousands of comparisons without it), in table order within a letter. */
enum { PHRASE_BUCKETS = 28, MAX_PHRASES = 512 };
typedef struct phrase_index {
  uint16_t order[MAX_PHRASES];
  uint16_t start[PHRASE_BUCKETS + 1];
} phrase_index;

static int bucket_of(char c) {
  if (c >= 'a' && c <= 'z') return c - 'a';
  return c >= '0' && c <= '9' ? 26 : 27;
}

static void index_phrases(const phrase *p, size_t n, phrase_index *ix) {
  uint16_t count[PHRASE_BUCKETS] = {0};
  if (n > MAX_PHRASES) n = MAX_PHRASES;
  for (size_t k = 0; k < n; k++) count[bucket_of(p[k].pattern[0])]++;
  ix->start[0] = 0;
  for (int b = 0; b < PHRASE_BUCKETS; b++) ix->start[b + 1] = (uint16_t)(ix->start[b] + count[b]);
  uint16_t fill[PHRASE_BUCKETS];
  memcpy(fill, ix->start, sizeof fill);
  for (size_t k = 0; k < n; k++) ix->order[fill[bucket_of(p[k].pattern[0])]++] = (uint16_t)k;
}

/* The first phrase of the table matching at token i: its index, and *end after the match. */
static int match_phrase(const ctx *c, size_t i, const phrase *p, const phrase_index *ix,
                        size_t *end) {
  const vdx_token *t = vdx_c_tok(c, i);
  if (t->len == 0) return -1;
  int b = bucket_of(t->s[0]);
  for (uint16_t q = ix->start[b]; q < ix->start[b + 1]; q++) {
    size_t e = vdx_c_match(c, i, p[ix->order[q]].pattern);
    if (e) {
      *end = e;
      return ix->order[q];
    }
  }
  return -1;
}

/* The tier word after "budget" ("budget mid", "budget: low-ish", "budgt high"). */
static int budget_word_tier(const vdx_token *t) {
  if (vdx_is(t, "low") || vdx_is(t, "tight") || vdx_is(t, "small") || vdx_is(t, "limited"))
    return LOW;
  if (vdx_is(t, "mid") || vdx_is(t, "medium") || vdx_is(t, "moderate") || vdx_is(t, "middle") ||
      vdx_is(t, "average"))
    return MID;
  if (vdx_is(t, "high") || vdx_is(t, "big") || vdx_is(t, "large") || vdx_is(t, "unlimited"))
    return HIGH;
  return 0;
}

/* "budget" as written in chat: budgt, budjet, buget. */
static bool budget_word(const vdx_token *t) {
  if (vdx_is(t, "budget") || vdx_is(t, "budgets")) return true;
  if (t->kind != VDX_WORD || t->len < 5 || t->len > 7 || t->s[0] != 'b') return false;
  if (vdx_typo_of(t->s, t->len, "budget", 6)) return true;
  if (t->len == 6) { /* one letter replaced */
    int diff = 0;
    for (int k = 0; k < 6; k++) diff += t->s[k] != "budget"[k];
    return diff == 1;
  }
  return false;
}

enum {
  I_ARCHITECTURE,
  I_ART,
  I_BEACHES,
  I_CYCLING,
  I_DIVING,
  I_FESTIVALS,
  I_FOOD,
  I_HIKING,
  I_HISTORY,
  I_MARKETS,
  I_MUSEUMS,
  I_MUSIC,
  I_NIGHTLIFE,
  I_PHOTOGRAPHY,
  I_SHOPPING,
  I_SKIING,
  I_SPA,
  I_SPORTS,
  I_TEMPLES,
  I_THEME_PARKS,
  I_WILDLIFE,
  I_WINE,
  I_COUNT
};
static const char *const interest_names[I_COUNT] = {
    "architecture", "art",         "beaches",  "cycling", "diving",  "festivals",
    "food",         "hiking",      "history",  "markets", "museums", "music",
    "nightlife",    "photography", "shopping", "skiing",  "spa",     "sports",
    "temples",      "theme parks", "wildlife", "wine"};

static const phrase interest_phrases[] = {
    {"architecture", I_ARCHITECTURE},
    {"architectural", I_ARCHITECTURE},
    {"buildings", I_ARCHITECTURE},
    {"skyscrapers", I_ARCHITECTURE},
    {"gaudi", I_ARCHITECTURE},
    {"street art", I_ART},
    {"art", I_ART},
    {"arts", I_ART},
    {"galleries", I_ART},
    {"gallery", I_ART},
    {"paintings", I_ART},
    {"sculpture*", I_ART},
    {"artwork*", I_ART},
    {"beach*", I_BEACHES},
    {"seaside", I_BEACHES},
    {"sunbath*", I_BEACHES},
    {"sandy", I_BEACHES},
    {"cycling", I_CYCLING},
    {"cycle", I_CYCLING},
    {"bike*", I_CYCLING},
    {"biking", I_CYCLING},
    {"bicycle*", I_CYCLING},
    {"scuba", I_DIVING},
    {"diving", I_DIVING},
    {"dive", I_DIVING},
    {"dives", I_DIVING},
    {"snorkel*", I_DIVING},
    {"festival*", I_FESTIVALS},
    {"carnival*", I_FESTIVALS},
    {"parade*", I_FESTIVALS},
    {"festivities", I_FESTIVALS},
    {"fiesta*", I_FESTIVALS},
    {"oktoberfest", I_FESTIVALS},
    {"mardi gras", I_FESTIVALS},
    {"semana santa", I_FESTIVALS},
    {"fireworks", I_FESTIVALS},
    {"street food", I_FOOD},
    {"food*", I_FOOD},
    {"cuisine", I_FOOD},
    {"restaurant*", I_FOOD},
    {"dining", I_FOOD},
    {"tapas", I_FOOD},
    {"cooking class*", I_FOOD},
    {"cookery", I_FOOD},
    {"tacos", I_FOOD},
    {"taco", I_FOOD},
    {"fondue", I_FOOD},
    {"sushi", I_FOOD},
    {"ramen", I_FOOD},
    {"pizza", I_FOOD},
    {"pasta", I_FOOD},
    {"gastronom*", I_FOOD},
    {"culinary", I_FOOD},
    {"michelin", I_FOOD},
    {"eat", I_FOOD},
    {"eating", I_FOOD},
    {"eatin", I_FOOD},
    {"seafood", I_FOOD},
    {"dim sum", I_FOOD},
    {"barbecue", I_FOOD},
    {"bbq", I_FOOD},
    {"pastries", I_FOOD},
    {"patisserie*", I_FOOD},
    {"cheese", I_FOOD},
    {"chocolate", I_FOOD},
    {"hiking", I_HIKING},
    {"hike", I_HIKING},
    {"hikes", I_HIKING},
    {"hiked", I_HIKING},
    {"trekking", I_HIKING},
    {"trek", I_HIKING},
    {"treks", I_HIKING},
    {"hillwalking", I_HIKING},
    {"hill walking", I_HIKING},
    {"trails", I_HIKING},
    {"history", I_HISTORY},
    {"historic*", I_HISTORY},
    {"castle*", I_HISTORY},
    {"ruins", I_HISTORY},
    {"palace*", I_HISTORY},
    {"ancient", I_HISTORY},
    {"medieval", I_HISTORY},
    {"monument*", I_HISTORY},
    {"heritage", I_HISTORY},
    {"archaeolog*", I_HISTORY},
    {"archeolog*", I_HISTORY},
    {"fortress*", I_HISTORY},
    {"old town", I_HISTORY},
    {"battlefield*", I_HISTORY},
    {"pyramids", I_HISTORY},
    {"roman", I_HISTORY},
    {"forts", I_HISTORY},
    {"market*", I_MARKETS},
    {"souk*", I_MARKETS},
    {"souq*", I_MARKETS},
    {"bazaar*", I_MARKETS},
    {"museum*", I_MUSEUMS},
    {"music", I_MUSIC},
    {"jazz", I_MUSIC},
    {"concert*", I_MUSIC},
    {"gig", I_MUSIC},
    {"gigs", I_MUSIC},
    {"opera", I_MUSIC},
    {"symphony", I_MUSIC},
    {"orchestra*", I_MUSIC},
    {"blues", I_MUSIC},
    {"k pop", I_MUSIC},
    {"kpop", I_MUSIC},
    {"nightlife", I_NIGHTLIFE},
    {"night life", I_NIGHTLIFE},
    {"bars", I_NIGHTLIFE},
    {"bar hopping", I_NIGHTLIFE},
    {"pubs", I_NIGHTLIFE},
    {"pub crawl*", I_NIGHTLIFE},
    {"clubs", I_NIGHTLIFE},
    {"clubbing", I_NIGHTLIFE},
    {"nightclub*", I_NIGHTLIFE},
    {"to party", I_NIGHTLIFE},
    {"partying", I_NIGHTLIFE},
    {"party hard", I_NIGHTLIFE},
    {"hen party", I_NIGHTLIFE},
    {"stag party", I_NIGHTLIFE},
    {"stag do", I_NIGHTLIFE},
    {"hen do", I_NIGHTLIFE},
    {"bachelor party", I_NIGHTLIFE},
    {"bachelorette party", I_NIGHTLIFE},
    {"cocktail*", I_NIGHTLIFE},
    {"photography", I_PHOTOGRAPHY},
    {"photos", I_PHOTOGRAPHY},
    {"photo", I_PHOTOGRAPHY},
    {"photograph*", I_PHOTOGRAPHY},
    {"shopping", I_SHOPPING},
    {"shops", I_SHOPPING},
    {"boutiques", I_SHOPPING},
    {"outlet*", I_SHOPPING},
    {"malls", I_SHOPPING},
    {"ski", I_SKIING},
    {"skiing", I_SKIING},
    {"snowboard*", I_SKIING},
    {"slopes", I_SKIING},
    {"spa", I_SPA},
    {"spas", I_SPA},
    {"hot spring*", I_SPA},
    {"onsen*", I_SPA},
    {"thermal*", I_SPA},
    {"hammam*", I_SPA},
    {"massage*", I_SPA},
    {"wellness", I_SPA},
    {"sauna*", I_SPA},
    {"bathhouse*", I_SPA},
    {"baths", I_SPA},
    {"sports", I_SPORTS},
    {"sport", I_SPORTS},
    {"football", I_SPORTS},
    {"footy", I_SPORTS},
    {"ball game", I_SPORTS},
    {"soccer", I_SPORTS},
    {"rugby", I_SPORTS},
    {"cricket", I_SPORTS},
    {"tennis", I_SPORTS},
    {"golf*", I_SPORTS},
    {"baseball", I_SPORTS},
    {"basketball", I_SPORTS},
    {"hockey", I_SPORTS},
    {"grand prix", I_SPORTS},
    {"f1", I_SPORTS},
    {"formula 1", I_SPORTS},
    {"formula one", I_SPORTS},
    {"stadium*", I_SPORTS},
    {"surfing", I_SPORTS},
    {"surf", I_SPORTS},
    {"temple*", I_TEMPLES},
    {"shrine*", I_TEMPLES},
    {"pagoda*", I_TEMPLES},
    {"monaster*", I_TEMPLES},
    {"theme park*", I_THEME_PARKS},
    {"amusement park*", I_THEME_PARKS},
    {"disney*", I_THEME_PARKS},
    {"universal studios", I_THEME_PARKS},
    {"legoland", I_THEME_PARKS},
    {"water park*", I_THEME_PARKS},
    {"roller coaster*", I_THEME_PARKS},
    {"rollercoaster*", I_THEME_PARKS},
    {"wildlife", I_WILDLIFE},
    {"safari*", I_WILDLIFE},
    {"whale*", I_WILDLIFE},
    {"animals", I_WILDLIFE},
    {"bird watching", I_WILDLIFE},
    {"birdwatching", I_WILDLIFE},
    {"birding", I_WILDLIFE},
    {"penguins", I_WILDLIFE},
    {"dolphins", I_WILDLIFE},
    {"game drive*", I_WILDLIFE},
    {"gorilla*", I_WILDLIFE},
    {"elephants", I_WILDLIFE},
    {"wine*", I_WINE},
    {"winery", I_WINE},
    {"wineries", I_WINE},
    {"vineyard*", I_WINE},
    {"sommelier", I_WINE},
    {"game", I_SPORTS}, /* after "game drive" */
};

/* ---- destinations
 * -------------------------------------------------------------------------------- */

enum { MAX_PLACES = 24 };

typedef struct place {
  vdx_place_match m;
  size_t seg;
  bool excluded; /* an origin, a person's name, "instead of X" */
} place;

static bool origin_or_excluded(const ctx *c, size_t s, size_t e) {
  if (s > 0 && vdx_relation_noun(vdx_c_tok(c, s - 1))) return true; /* "my daughter Florence" */
  if (s >= 2 && (vdx_c_match(c, s - 2, "instead of") || vdx_c_match(c, s - 2, "rather than")))
    return true;
  if (s >= 1 &&
      (vdx_c_is(c, s - 1, "not") || vdx_c_is(c, s - 1, "except") || vdx_c_is(c, s - 1, "scratch") ||
       vdx_c_is(c, s - 1, "forget") || vdx_c_is(c, s - 1, "drop") || vdx_c_is(c, s - 1, "skip") ||
       vdx_c_is(c, s - 1, "cancel") || vdx_c_is(c, s - 1, "minus")))
    return true;
  /* "heading home to Toronto": where they live */
  if (s >= 2 && vdx_c_match(c, s - 2, "home to")) return true;
  if (s >= 2 && vdx_c_match(c, s - 2, "no longer")) return true;
  size_t p = s;
  /* "live in X", "based in X", "home in X" */
  if (p >= 2 &&
      (vdx_c_is(c, p - 1, "in") || vdx_c_is(c, p - 1, "of") || vdx_c_is(c, p - 1, "near"))) {
    const vdx_token *v = vdx_c_tok(c, p - 2);
    if (vdx_is(v, "live") || vdx_is(v, "living") || vdx_is(v, "based") || vdx_is(v, "home") ||
        vdx_is(v, "lives") || vdx_is(v, "reside"))
      return true;
    if (vdx_is(v, "out") && p >= 3 &&
        (vdx_c_is(c, p - 3, "flying") || vdx_c_is(c, p - 3, "fly") || vdx_c_is(c, p - 3, "based")))
      return true;
  }
  if (p >= 1 && vdx_c_is(c, p - 1, "from")) {
    /* "flying (in) from X (to Y)" names the origin; "from X to Y" alone is an itinerary. */
    size_t v = p - 1;
    while (v > 0 &&
           (vdx_c_is(c, v - 1, "in") || vdx_c_is(c, v - 1, "out") || vdx_c_is(c, v - 1, "over") ||
            vdx_c_is(c, v - 1, "down") || vdx_c_is(c, v - 1, "up")))
      v--;
    if (v > 0 &&
        (vdx_c_match(c, v - 1, "fly*") || vdx_c_match(c, v - 1, "flight*") ||
         vdx_c_match(c, v - 1, "depart*") || vdx_c_is(c, v - 1, "coming") ||
         vdx_c_is(c, v - 1, "come") || vdx_c_is(c, v - 1, "we're") || vdx_c_is(c, v - 1, "i'm") ||
         vdx_c_is(c, v - 1, "are") || vdx_c_is(c, v - 1, "am") || vdx_c_is(c, v - 1, "originally")))
      return true;
    if (vdx_c_is(c, e, "to") || vdx_c_is(c, e, "and") || vdx_c_match(c, e, "down to") ||
        vdx_c_match(c, e, "up to"))
      return false;
    if (p >= 2 && (vdx_c_is(c, p - 2, "starting") || vdx_c_is(c, p - 2, "start") ||
                   vdx_c_is(c, p - 2, "begin") || vdx_c_is(c, p - 2, "beginning")))
      return false;
    return true;
  }
  return false;
}

static size_t find_places(ctx *c, place *out) {
  size_t n = 0;
  for (size_t i = 0; i < c->t->n && n < MAX_PLACES;) {
    vdx_place_match m;
    const vdx_token *t = vdx_c_tok(c, i);
    bool found = vdx_gazetteer_exact(c->g, c->t, i, &m);
    if (!found && t->kind == VDX_WORD && t->len >= 5 && vdx_month(t) == 0 && vdx_weekday(t) < 0)
      found = vdx_gazetteer_fuzzy(c->g, c->t, i, &m);
    if (!found) {
      i++;
      continue;
    }
    if (strcmp(m.canonical, "-") == 0) { /* "South America", "Brussels sprouts": no place */
      i = m.end;
      continue;
    }
    place *p = &out[n++];
    p->m = m;
    p->seg = c->seg[i];
    p->excluded = origin_or_excluded(c, m.start, m.end);
    for (size_t k = m.start; k < m.end; k++) c->is_place[k] = true;
    i = m.end;
  }
  return n;
}

/* Segment rules: a later part naming places replaces the earlier ones, unless it adds to them. */
static bool adds_places(const ctx *c, size_t seg) {
  for (size_t i = 0; i < c->t->n; i++) {
    if (c->seg[i] != seg) continue;
    if (vdx_c_is(c, i, "also") || vdx_c_is(c, i, "too") || vdx_c_match(c, i, "as well") ||
        vdx_c_is(c, i, "add") || vdx_c_is(c, i, "plus"))
      return true;
  }
  return false;
}

static json_t *destinations_json(const ctx *c, place *pl, size_t n, bool *confident) {
  bool keep[MAX_PLACES] = {0};
  bool have = false;
  for (size_t s = 0; s < c->nseg; s++) {
    bool any = false;
    for (size_t k = 0; k < n; k++)
      if (pl[k].seg == s && !pl[k].excluded) any = true;
    if (!any) continue;
    if (have && !adds_places(c, s))
      for (size_t k = 0; k < n; k++) keep[k] = false;
    for (size_t k = 0; k < n; k++)
      if (pl[k].seg == s && !pl[k].excluded) keep[k] = true;
    have = true;
  }
  json_t *arr = json_array();
  bool fuzzy = false;
  for (size_t k = 0; k < n; k++) {
    if (!keep[k]) continue;
    const char *name = pl[k].m.canonical;
    bool dup = false;
    for (size_t q = 0; q < json_array_size(arr); q++)
      if (strcmp(json_string_value(json_array_get(arr, q)), name) == 0) dup = true;
    /* A country alone only when no place inside it is named. */
    if (pl[k].m.is_country) {
      size_t len = strlen(name);
      for (size_t q = 0; q < n; q++) {
        if (!keep[q] || pl[q].m.is_country) continue;
        const char *comma = strstr(pl[q].m.canonical, ", ");
        if (comma && strlen(comma + 2) == len && memcmp(comma + 2, name, len) == 0) dup = true;
      }
    }
    if (dup) continue;
    fuzzy |= pl[k].m.fuzzy;
    json_array_append_new(arr, json_string(name));
  }
  *confident = json_array_size(arr) > 0 && !fuzzy;
  return arr;
}

/* ---- the whole extraction -------------------------------------------------------------------- */

static bool parse_reference(const char *s, int32_t *day) {
  if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-') return false;
  for (int k = 0; k < 10; k++)
    if (k != 4 && k != 7 && !isdigit((unsigned char)s[k])) return false;
  int y = (int)strtol(s, NULL, 10), m = (int)strtol(s + 5, NULL, 10);
  int d = (int)strtol(s + 8, NULL, 10);
  if (y < 1900 || y > 2200 || m < 1 || m > 12 || d < 1 || d > vdx_days_in_month(y, m)) return false;
  *day = vdx_days_from_civil(y, m, d);
  return true;
}

static json_t *date_json(int32_t day) {
  if (day == VDX_NO_DATE) return json_null();
  int y, m, d;
  vdx_civil_from_days(day, &y, &m, &d);
  char buf[16];
  snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, m, d);
  return json_string(buf);
}

static json_t *count_json(int v) { return v >= 0 ? json_integer(v) : json_null(); }

typedef struct trip_dates {
  int32_t start, end;
  int nights;
  bool start_sure, end_sure, nights_sure;
} trip_dates;

/* Start, end and nights: each part's statements, later parts winning, then the third derived. */
static void combine_dates(const ctx *c, const vdx_dates *d, int32_t ref, int bare_nights,
                          size_t bare_nights_seg, trip_dates *out) {
  int32_t start = VDX_NO_DATE, end = VDX_NO_DATE;
  int nights = -1;
  int start_seg = -1, end_seg = -1, nights_seg = -1;
  bool start_sure = false, end_sure = false, nights_sure = false;
  for (size_t s = 0; s < c->nseg; s++) {
    int32_t ss = VDX_NO_DATE, se = VDX_NO_DATE;
    bool ss_sure = true, se_sure = true;
    /* ranges first */
    for (size_t k = 0; k < d->ndates; k++) {
      const vdx_date_fact *f = &d->date[k];
      if (c->seg[f->tok] != s || !f->range) continue;
      if (ss == VDX_NO_DATE) ss = f->start;
      se = f->end;
    }
    /* single dates with a cue */
    for (size_t k = 0; k < d->ndates; k++) {
      const vdx_date_fact *f = &d->date[k];
      if (c->seg[f->tok] != s || f->range || f->role != VDX_ROLE_START || ss != VDX_NO_DATE)
        continue;
      int32_t day = vdx_resolve(&f->single, ref);
      if (day != VDX_NO_DATE) {
        ss = day;
        ss_sure = !f->weak;
      }
    }
    /* an uncued date written before the first cued end is the start ("Amsterdam next Friday,
     * back Sunday") */
    if (ss == VDX_NO_DATE) {
      size_t first_end = SIZE_MAX;
      for (size_t k = 0; k < d->ndates; k++)
        if (c->seg[d->date[k].tok] == s && !d->date[k].range && d->date[k].role == VDX_ROLE_END &&
            d->date[k].tok < first_end)
          first_end = d->date[k].tok;
      for (size_t k = 0; k < d->ndates && ss == VDX_NO_DATE; k++) {
        const vdx_date_fact *f = &d->date[k];
        if (c->seg[f->tok] != s || f->range || f->role != VDX_ROLE_NONE || f->tok > first_end ||
            first_end == SIZE_MAX || f->weak)
          continue;
        int32_t day = vdx_resolve(&f->single, ref - (f->single.kind == VDX_E_WEEKDAY ? 1 : 0));
        if (day != VDX_NO_DATE) ss = day;
      }
    }
    for (size_t k = 0; k < d->ndates; k++) {
      const vdx_date_fact *f = &d->date[k];
      if (c->seg[f->tok] != s || f->range || f->role != VDX_ROLE_END) continue;
      int32_t from = ss != VDX_NO_DATE ? ss : start != VDX_NO_DATE ? start : ref;
      int32_t day = vdx_resolve(&f->single, from + (f->single.kind == VDX_E_WEEKDAY ? 0 : 1));
      if (day != VDX_NO_DATE) {
        se = day;
        se_sure = !f->weak;
      }
    }
    /* single dates with no cue fill what the cued ones left open: the start, then the end */
    for (size_t k = 0; k < d->ndates; k++) {
      const vdx_date_fact *f = &d->date[k];
      if (c->seg[f->tok] != s || f->range || f->role != VDX_ROLE_NONE) continue;
      int weekday_adjust = f->single.kind == VDX_E_WEEKDAY ? 1 : 0;
      if (ss == VDX_NO_DATE) {
        int32_t day = vdx_resolve(&f->single, ref - weekday_adjust);
        if (day == VDX_NO_DATE || (se != VDX_NO_DATE && day >= se)) continue;
        ss = day;
        ss_sure = !f->weak;
      } else if (se == VDX_NO_DATE) {
        int32_t day = vdx_resolve(&f->single, ss + 1 - weekday_adjust);
        if (day == VDX_NO_DATE) continue;
        se = day;
        se_sure = false;
      }
    }
    if (ss != VDX_NO_DATE) {
      start = ss;
      start_seg = (int)s;
      start_sure = ss_sure;
    }
    if (se != VDX_NO_DATE) {
      end = se;
      end_seg = (int)s;
      end_sure = se_sure;
    }
    /* nights: a total wins, legs add up, otherwise the last duration */
    int total = -1, legs = 0, nlegs = 0, last = -1;
    bool weak = false;
    for (size_t k = 0; k < d->nnights; k++) {
      const vdx_nights_fact *f = &d->nights[k];
      if (c->seg[f->tok] != s) continue;
      if (f->total) total = f->nights;
      if (f->leg) {
        legs += f->nights;
        nlegs++;
      }
      last = f->nights;
      weak = f->weak;
    }
    int sn = total >= 0 ? total : nlegs >= 2 ? legs : last;
    if ((int)bare_nights_seg == (int)s && bare_nights > 0) {
      sn = bare_nights;
      weak = false;
    }
    if (sn > 0) {
      nights = sn;
      nights_seg = (int)s;
      nights_sure = !weak;
    }
  }
  if (start != VDX_NO_DATE && end != VDX_NO_DATE && end <= start) {
    if (end_seg >= start_seg)
      start = VDX_NO_DATE;
    else
      end = VDX_NO_DATE;
  }
  if (start != VDX_NO_DATE && end != VDX_NO_DATE) {
    int span = (int)(end - start);
    if (nights > 0 && nights != span && nights_seg > start_seg && nights_seg > end_seg) {
      end = start + nights; /* "actually make it 6 nights" moves the departure */
      end_sure = nights_sure;
    } else {
      nights = span;
      nights_sure = start_sure && end_sure;
    }
  } else if (start != VDX_NO_DATE && nights > 0) {
    end = start + nights;
    end_sure = start_sure && nights_sure;
  } else if (end != VDX_NO_DATE && nights > 0) {
    start = end - nights;
    start_sure = end_sure && nights_sure;
  }
  out->start = start;
  out->end = end;
  out->nights = nights;
  out->start_sure = start != VDX_NO_DATE && start_sure;
  out->end_sure = end != VDX_NO_DATE && end_sure;
  out->nights_sure = nights > 0 && nights_sure;
}

bool vd_extract_rules(const vd_gazetteer *gazetteer, const char *text, size_t len,
                      const char *reference_date, vd_extract_result *out, vd_error *err) {
  if (!out) return vd_error_set(err, "vd_extract_rules: out is NULL");
  out->fields = NULL;
  out->confident = 0;
  if (!text) return vd_error_field(err, "text", "text is missing");
  int32_t ref;
  if (!parse_reference(reference_date, &ref))
    return vd_error_field(err, "reference_date", "expected a date YYYY-MM-DD, got \"%s\"",
                          reference_date ? reference_date : "(null)");
  vdx_text t;
  if (!vdx_tokenize(text, len, &t)) return vd_error_set(err, "out of memory");
  uint8_t seg_small[256];
  bool place_small[258];
  uint8_t *seg = t.n <= sizeof seg_small ? seg_small : malloc(t.n);
  bool *is_place = t.n + 2 <= sizeof place_small / sizeof place_small[0]
                       ? place_small
                       : malloc((t.n + 2) * sizeof *is_place);
  if (!seg || !is_place) {
    if (seg != seg_small) free(seg);
    if (is_place != place_small) free(is_place);
    vdx_text_free(&t);
    return vd_error_set(err, "out of memory");
  }
  memset(is_place, 0, (t.n + 2) * sizeof *is_place);
  ctx c = {.t = &t, .g = gazetteer, .seg = seg, .is_place = is_place};
  memset(seg, 0, t.n);
  place places[MAX_PLACES];
  size_t nplaces = find_places(&c, places);
  split_segments(&c);
  for (size_t k = 0; k < nplaces; k++) places[k].seg = seg[places[k].m.start];
  vdx_dates dates;
  vdx_read_dates(&t, is_place, ref, &dates);

  /* party, part by part: the first part that speaks of the party is read fully, later ones
   * only for counts ("so it's two of us", "just one kid"). */
  int adults = -1, children = -1;
  bool party_seen = false;
  vdx_party parts[MAX_SEGMENTS];
  size_t last_count_tok = 0;
  bool have_count = false;
  for (size_t s = 0; s < c.nseg; s++) {
    vdx_read_party(&c, s, party_seen, &parts[s]);
    if (parts[s].any) party_seen = true;
    if (parts[s].counted_any) {
      last_count_tok = parts[s].last_count_tok;
      have_count = true;
    }
  }
  for (size_t s = 0; s < c.nseg; s++) {
    int a, k;
    vdx_party_counts(&parts[s], -1, &a, &k);
    if (k >= 0 || (parts[s].child_mentioned && parts[s].children_unknown)) children = k;
  }
  for (size_t s = 0; s < c.nseg; s++) {
    int a, k;
    vdx_party_counts(&parts[s], children, &a, &k);
    if (a >= 0)
      adults = a;
    else if (parts[s].any && parts[s].companions_unknown)
      adults = -1;
  }
  /* "make it 6": a bare number in a correction applies to the last count written before it. */
  int bare_nights = -1;
  size_t bare_nights_seg = 0;
  for (size_t i = 0; i + 2 < t.n; i++) {
    if (!(vdx_c_match(&c, i, "make it #") || vdx_c_match(&c, i, "make that #")) || seg[i] == 0)
      continue;
    size_t j = i + 2;
    int v = t.tok[j].num;
    const vdx_token *after = vdx_c_tok(&c, j + 1);
    if (after->kind == VDX_WORD && !vdx_is(after, "instead")) continue; /* has its own unit */
    size_t last_nights_tok = 0;
    bool have_nights = false;
    for (size_t k = 0; k < dates.nnights; k++)
      if (dates.nights[k].tok < i) {
        last_nights_tok = dates.nights[k].tok;
        have_nights = true;
      }
    if (have_nights && (!have_count || last_nights_tok > last_count_tok || last_count_tok > i)) {
      bare_nights = v;
      bare_nights_seg = seg[i];
    } else if (have_count && last_count_tok < i) {
      adults = v;
    }
  }

  trip_dates td;
  combine_dates(&c, &dates, ref, bare_nights, bare_nights_seg, &td);

  /* budget: the last tier written wins */
  int budget = 0;
  phrase_index ix;
  index_phrases(budget_phrases, sizeof budget_phrases / sizeof budget_phrases[0], &ix);
  for (size_t i = 0; i < t.n; i++) {
    int tier = 0;
    size_t e = 0;
    int k = match_phrase(&c, i, budget_phrases, &ix, &e);
    if (k >= 0) tier = budget_phrases[k].value;
    if (!tier && budget_word(&t.tok[i])) {
      size_t j = i + 1;
      if (vdx_c_is(&c, j, "is") || vdx_is_punct(vdx_c_tok(&c, j), ':') || vdx_c_is(&c, j, "of"))
        j++;
      tier = budget_word_tier(vdx_c_tok(&c, j));
    }
    if (tier && !negated(&c, i)) budget = tier;
  }

  /* interests: per part; negations remove, "instead" replaces */
  index_phrases(interest_phrases, sizeof interest_phrases / sizeof interest_phrases[0], &ix);
  uint32_t acc = 0;
  for (size_t s = 0; s < c.nseg; s++) {
    uint32_t pos = 0, neg = 0;
    bool instead = false;
    for (size_t i = 0; i < t.n; i++) {
      if (seg[i] != s) continue;
      if (vdx_c_is(&c, i, "instead")) instead = true;
      if (c.is_place[i]) continue;
      size_t e = 0;
      int k = match_phrase(&c, i, interest_phrases, &ix, &e);
      if (k < 0) continue;
      uint32_t bit = 1u << interest_phrases[k].value;
      if (negated(&c, i))
        neg |= bit;
      else
        pos |= bit;
      i = e - 1;
    }
    acc &= ~neg;
    if (instead && pos && s > 0)
      acc = pos;
    else
      acc |= pos;
  }

  bool dest_sure = false;
  json_t *fields = json_object();
  json_object_set_new(fields, "destinations", destinations_json(&c, places, nplaces, &dest_sure));
  json_object_set_new(fields, "start_date", date_json(td.start));
  json_object_set_new(fields, "end_date", date_json(td.end));
  json_object_set_new(fields, "nights", count_json(td.nights > 0 ? td.nights : -1));
  json_object_set_new(fields, "adults", count_json(adults));
  json_object_set_new(fields, "children", count_json(children));
  static const char *const tiers[] = {NULL, "low", "mid", "high"};
  json_object_set_new(fields, "budget", budget ? json_string(tiers[budget]) : json_null());
  json_t *interests = json_array();
  for (int k = 0; k < I_COUNT; k++)
    if (acc & (1u << k)) json_array_append_new(interests, json_string(interest_names[k]));
  json_object_set_new(fields, "interests", interests);

  unsigned sure = 0;
  if (dest_sure) sure |= VD_EXTRACT_BIT(VD_EXTRACT_DESTINATIONS);
  if (td.start_sure) sure |= VD_EXTRACT_BIT(VD_EXTRACT_START_DATE);
  if (td.end_sure) sure |= VD_EXTRACT_BIT(VD_EXTRACT_END_DATE);
  if (td.nights_sure) sure |= VD_EXTRACT_BIT(VD_EXTRACT_NIGHTS);
  if (adults >= 0) sure |= VD_EXTRACT_BIT(VD_EXTRACT_ADULTS);
  if (children >= 0 && adults >= 0) sure |= VD_EXTRACT_BIT(VD_EXTRACT_CHILDREN);
  if (budget) sure |= VD_EXTRACT_BIT(VD_EXTRACT_BUDGET);
  if (acc) sure |= VD_EXTRACT_BIT(VD_EXTRACT_INTERESTS);

  if (seg != seg_small) free(seg);
  if (is_place != place_small) free(is_place);
  vdx_text_free(&t);
  if (!fields || !interests) {
    json_decref(fields);
    return vd_error_set(err, "out of memory");
  }
  out->fields = fields;
  out->confident = sure;
  return true;
}

/* ---- helpers for the LLM side -----------------------------------------------------------------
 */

json_t *vd_extract_missing_fields(unsigned confident) {
  json_t *arr = json_array();
  for (int f = 0; f < VD_EXTRACT_FIELD_COUNT; f++)
    if (!(confident & VD_EXTRACT_BIT(f))) json_array_append_new(arr, json_string(field_names[f]));
  return arr;
}

json_t *vd_extract_merge(const json_t *rules_fields, unsigned confident, const json_t *llm_fields) {
  json_t *out = json_object();
  for (int f = 0; f < VD_EXTRACT_FIELD_COUNT; f++) {
    const json_t *v = json_object_get(rules_fields, field_names[f]);
    if (!(confident & VD_EXTRACT_BIT(f)) && json_is_object(llm_fields)) {
      const json_t *l = json_object_get(llm_fields, field_names[f]);
      if (l) v = l;
    }
    json_object_set_new(out, field_names[f], v ? json_deep_copy(v) : json_null());
  }
  return out;
}

/* Interests as a set: sorted, unique strings. */
static bool same_string_set(const json_t *a, const json_t *b) {
  size_t na = json_array_size(a), nb = json_array_size(b);
  for (size_t i = 0; i < na; i++) {
    const char *s = json_string_value(json_array_get(a, i));
    if (!s) return false;
    bool found = false;
    for (size_t j = 0; j < nb && !found; j++) {
      const char *t = json_string_value(json_array_get(b, j));
      found = t && strcmp(s, t) == 0;
    }
    if (!found) return false;
  }
  for (size_t j = 0; j < nb; j++) {
    const char *t = json_string_value(json_array_get(b, j));
    if (!t) return false;
    bool found = false;
    for (size_t i = 0; i < na && !found; i++)
      found = strcmp(t, json_string_value(json_array_get(a, i))) == 0;
    if (!found) return false;
  }
  return true;
}

bool vd_extract_field_equal(vd_extract_field field, const json_t *expected, const json_t *actual) {
  bool en = !expected || json_is_null(expected), an = !actual || json_is_null(actual);
  if (field == VD_EXTRACT_INTERESTS || field == VD_EXTRACT_DESTINATIONS) {
    if (en || an)
      return en && an ? true : (json_array_size(expected) == 0 && json_array_size(actual) == 0);
    if (!json_is_array(expected) || !json_is_array(actual)) return false;
    if (field == VD_EXTRACT_INTERESTS) return same_string_set(expected, actual);
    return json_equal(expected, actual) != 0;
  }
  if (en || an) return en && an;
  if (field == VD_EXTRACT_NIGHTS || field == VD_EXTRACT_ADULTS || field == VD_EXTRACT_CHILDREN) {
    if (!json_is_number(expected) || !json_is_number(actual)) return false;
    return json_number_value(expected) == json_number_value(actual);
  }
  return json_equal(expected, actual) != 0;
}
