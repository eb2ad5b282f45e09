/* The destination gazetteer: aliases folded to lowercase ASCII words, looked up by hash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vd_buf.h"
#include "vd_extract_internal.h"

enum { MAX_ALIAS_TOKENS = 6, MAX_KEY = 160 };
enum { FLAG_CAP = 1, FLAG_UPPER = 2 };

typedef struct entry {
  uint32_t key;       /* offset of the NUL-terminated key in strings */
  uint32_t canonical; /* offset of the canonical name in strings */
  uint16_t key_len;
  uint8_t ntok;
  uint8_t flags;
  uint32_t second; /* offset of the key's last word (two-word aliases), for typo matching */
  uint16_t second_len;
} entry;

struct vd_gazetteer {
  vd_buf strings;
  entry *entries;
  size_t count, capacity;
  uint32_t *table; /* entry index + 1, 0 = empty; open addressing */
  size_t table_size;
  /* For typo matching: entries sorted by first letter, and where each letter starts. */
  uint32_t *by_letter;
  uint32_t letter_start[27];
};

static uint64_t hash_key(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= 1099511628211ull;
  }
  return h;
}

/* Keys join an alias's words with single spaces, skipping the punctuation that may sit inside a
 * name ("Saint-Tropez", "St. Moritz"), so "St Moritz" and "St. Moritz" are one key. */
static bool inner_punct(const vdx_token *t) {
  return t->kind == VDX_PUNCT && (t->s[0] == '-' || t->s[0] == '.');
}

static const char *S(const vd_gazetteer *g, uint32_t off) { return g->strings.data + off; }

static const entry *lookup(const vd_gazetteer *g, const char *key, size_t n) {
  if (g->table_size == 0) return NULL;
  size_t mask = g->table_size - 1;
  for (size_t h = (size_t)hash_key(key, n) & mask;; h = (h + 1) & mask) {
    uint32_t slot = g->table[h];
    if (slot == 0) return NULL;
    const entry *e = &g->entries[slot - 1];
    if (e->key_len == n && memcmp(S(g, e->key), key, n) == 0) return e;
  }
}

static bool rebuild_table(vd_gazetteer *g) {
  size_t size = 64;
  while (size < g->count * 2) size *= 2;
  uint32_t *table = calloc(size, sizeof *table);
  if (!table) return false;
  for (size_t i = 0; i < g->count; i++) {
    const entry *e = &g->entries[i];
    size_t h = (size_t)hash_key(S(g, e->key), e->key_len) & (size - 1);
    while (table[h]) h = (h + 1) & (size - 1);
    table[h] = (uint32_t)(i + 1);
  }
  free(g->table);
  g->table = table;
  g->table_size = size;
  return true;
}

void vd_gazetteer_free(vd_gazetteer *g) {
  if (!g) return;
  vd_buf_free(&g->strings);
  free(g->entries);
  free(g->table);
  free(g->by_letter);
  free(g);
}

size_t vd_gazetteer_alias_count(const vd_gazetteer *g) { return g ? g->count : 0; }

/* Finds an existing canonical string to share, or appends it. */
static uint32_t intern(vd_gazetteer *g, const char *s, size_t n) {
  for (size_t i = g->count; i-- > 0;) {
    const char *c = S(g, g->entries[i].canonical);
    if (strlen(c) == n && memcmp(c, s, n) == 0) return g->entries[i].canonical;
  }
  uint32_t off = (uint32_t)g->strings.len;
  vd_buf_append(&g->strings, s, n);
  vd_buf_append(&g->strings, "", 1);
  return off;
}

static bool add_line(vd_gazetteer *g, const char *name, int line, const char *alias, size_t alen,
                     const char *canon, size_t clen, const char *flags, size_t flen,
                     vd_error *err) {
  if (alen == 0) return vd_error_at(err, name, line, 1, "empty alias");
  if (clen == 0) return vd_error_at(err, name, line, (int)alen + 2, "empty canonical name");
  for (size_t k = 0; k < clen; k++)
    if ((unsigned char)canon[k] >= 0x80 || (unsigned char)canon[k] < 0x20)
      return vd_error_at(err, name, line, (int)(alen + 2 + k),
                         "canonical name must be plain ASCII (\"Zurich, Switzerland\")");
  uint8_t fl = 0;
  if (flen == 3 && memcmp(flags, "cap", 3) == 0) {
    fl = FLAG_CAP;
  } else if (flen == 5 && memcmp(flags, "upper", 5) == 0) {
    fl = FLAG_UPPER;
  } else if (flen != 0) {
    return vd_error_at(err, name, line, (int)(alen + clen + 3),
                       "unknown flag \"%.*s\" (expected cap or upper)", (int)flen, flags);
  }
  vdx_text t;
  if (!vdx_tokenize(alias, alen, &t)) return vd_error_set(err, "out of memory");
  char key[MAX_KEY];
  size_t klen = 0, ntok = 0, second = 0;
  bool ok = true;
  for (size_t i = 0; i < t.n && ok; i++) {
    const vdx_token *tk = &t.tok[i];
    if (tk->kind == VDX_PUNCT) {
      if (!inner_punct(tk) && !vdx_is_punct(tk, '\'')) ok = false;
      continue;
    }
    if (klen + tk->len + 1 >= sizeof key || ntok >= MAX_ALIAS_TOKENS) {
      ok = false;
      break;
    }
    if (klen) key[klen++] = ' ';
    second = klen;
    memcpy(key + klen, tk->s, tk->len);
    klen += tk->len;
    ntok++;
  }
  vdx_text_free(&t);
  if (!ok || ntok == 0)
    return vd_error_at(err, name, line, 1,
                       "alias \"%.*s\" must be 1 to %d words of letters and digits (with - . ')",
                       (int)alen, alias, MAX_ALIAS_TOKENS);
  const entry *dup = lookup(g, key, klen);
  if (dup) {
    if (strlen(S(g, dup->canonical)) == clen && memcmp(S(g, dup->canonical), canon, clen) == 0)
      return true;
    return vd_error_at(err, name, line, 1, "alias \"%.*s\" already names \"%s\"", (int)alen, alias,
                       S(g, dup->canonical));
  }
  if (g->count == g->capacity) {
    size_t cap = g->capacity ? g->capacity * 2 : 512;
    entry *e = realloc(g->entries, cap * sizeof *e);
    if (!e) return vd_error_set(err, "out of memory");
    g->entries = e;
    g->capacity = cap;
  }
  entry e = {.key_len = (uint16_t)klen, .ntok = (uint8_t)ntok, .flags = fl};
  e.canonical = intern(g, canon, clen);
  e.key = (uint32_t)g->strings.len;
  vd_buf_append(&g->strings, key, klen);
  vd_buf_append(&g->strings, "", 1);
  e.second = e.key + (uint32_t)second;
  e.second_len = (uint16_t)(klen - second);
  if (g->strings.oom) return vd_error_set(err, "out of memory");
  g->entries[g->count++] = e;
  if (g->count * 2 > g->table_size && !rebuild_table(g)) return vd_error_set(err, "out of memory");
  if (g->table_size) {
    /* Insert the new entry (rebuild_table already did when it ran). */
    if (!lookup(g, key, klen)) {
      size_t h = (size_t)hash_key(key, klen) & (g->table_size - 1);
      while (g->table[h]) h = (h + 1) & (g->table_size - 1);
      g->table[h] = (uint32_t)g->count;
    }
  }
  return true;
}

vd_gazetteer *vd_gazetteer_load_string(const char *text, size_t len, const char *name,
                                       vd_error *err) {
  vd_gazetteer *g = calloc(1, sizeof *g);
  if (!g) {
    vd_error_set(err, "out of memory");
    return NULL;
  }
  int line = 0;
  size_t pos = 0;
  while (pos < len) {
    line++;
    const char *s = text + pos;
    const char *nl = memchr(s, '\n', len - pos);
    size_t n = nl ? (size_t)(nl - s) : len - pos;
    pos += n + (nl ? 1 : 0);
    if (n && s[n - 1] == '\r') n--;
    size_t lead = 0;
    while (lead < n && (s[lead] == ' ' || s[lead] == '\t')) lead++;
    if (lead == n || s[lead] == '#') continue;
    const char *tab1 = memchr(s, '\t', n);
    if (!tab1) {
      vd_error_at(err, name, line, (int)n + 1,
                  "expected alias<TAB>canonical[<TAB>flags], found no tab");
      vd_gazetteer_free(g);
      return NULL;
    }
    size_t alen = (size_t)(tab1 - s);
    const char *c = tab1 + 1;
    size_t rest = n - alen - 1;
    const char *tab2 = memchr(c, '\t', rest);
    size_t clen = tab2 ? (size_t)(tab2 - c) : rest;
    const char *f = tab2 ? tab2 + 1 : c + clen;
    size_t flen = tab2 ? rest - clen - 1 : 0;
    if (flen && memchr(f, '\t', flen)) {
      vd_error_at(err, name, line, (int)(f - s) + 1, "too many columns (at most 3)");
      vd_gazetteer_free(g);
      return NULL;
    }
    if (!add_line(g, name, line, s, alen, c, clen, f, flen, err)) {
      vd_gazetteer_free(g);
      return NULL;
    }
  }
  if (g->count == 0) {
    vd_error_at(err, name, line, 1, "the gazetteer has no aliases");
    vd_gazetteer_free(g);
    return NULL;
  }
  g->by_letter = malloc(g->count * sizeof *g->by_letter);
  if (!g->by_letter) {
    vd_error_set(err, "out of memory");
    vd_gazetteer_free(g);
    return NULL;
  }
  size_t filled = 0;
  for (int letter = 0; letter < 26; letter++) {
    g->letter_start[letter] = (uint32_t)filled;
    for (size_t k = 0; k < g->count; k++)
      if (S(g, g->entries[k].key)[0] == 'a' + letter) g->by_letter[filled++] = (uint32_t)k;
  }
  g->letter_start[26] = (uint32_t)filled;
  return g;
}

vd_gazetteer *vd_gazetteer_load(const char *path, vd_error *err) {
  size_t size = 0;
  char *text = vd_read_file(path, 16u << 20, &size, err);
  if (!text) return NULL;
  vd_gazetteer *g = vd_gazetteer_load_string(text, size, path, err);
  free(text);
  return g;
}

/* ---- matching -------------------------------------------------------------------------------- */

static bool flags_allow(const entry *e, const vdx_text *t, size_t start, size_t end) {
  if (e->flags & FLAG_CAP) {
    const vdx_token *first = &t->tok[start];
    if (!(first->flags & VDX_CAP)) return false;
    if (!(first->flags & VDX_SENT)) return true;
    /* A capital at a sentence start proves nothing ("Nice weather..."): the name must stand
     * alone there ("Nice, please", "Nice in June"). */
    if (end >= t->n) return true;
    const vdx_token *next = &t->tok[end];
    static const char *const joiners[] = {"and", "or", "then", "in", "for", "from", "to", "is"};
    if (next->kind == VDX_PUNCT) return true;
    for (size_t k = 0; k < sizeof joiners / sizeof joiners[0]; k++)
      if (vdx_is(next, joiners[k])) return true;
    return false;
  }
  if (e->flags & FLAG_UPPER) {
    for (size_t i = start; i < end; i++)
      if (t->tok[i].kind == VDX_WORD && !(t->tok[i].flags & VDX_UPPER)) return false;
  }
  return true;
}

static void fill_match(const vd_gazetteer *g, const entry *e, size_t start, size_t end, bool fuzzy,
                       vdx_place_match *m) {
  m->start = start;
  m->end = end;
  m->canonical = S(g, e->canonical);
  m->is_country = strstr(m->canonical, ", ") == NULL;
  m->fuzzy = fuzzy;
}

bool vdx_gazetteer_exact(const vd_gazetteer *g, const vdx_text *t, size_t i, vdx_place_match *m) {
  if (!g || i >= t->n || t->tok[i].kind == VDX_PUNCT) return false;
  char key[MAX_KEY];
  size_t klen = 0, words = 0;
  const entry *best = NULL;
  size_t best_end = 0;
  for (size_t j = i; j < t->n && words < MAX_ALIAS_TOKENS; j++) {
    const vdx_token *tk = &t->tok[j];
    if (tk->kind == VDX_PUNCT) {
      if (inner_punct(tk)) continue;
      break;
    }
    if (klen + tk->len + 1 >= sizeof key) break;
    if (klen) key[klen++] = ' ';
    memcpy(key + klen, tk->s, tk->len);
    klen += tk->len;
    words++;
    const entry *e = lookup(g, key, klen);
    if (e && flags_allow(e, t, i, j + 1)) {
      best = e;
      best_end = j + 1;
    }
  }
  if (!best) return false;
  fill_match(g, best, i, best_end, false, m);
  return true;
}

/* Common words that are also a dropped-letter typo of a place name (hungry ~ Hungary). */
static bool common_word(const vdx_token *tk) {
  static const char *const words[] = {
      "hungry",     "german",    "settle",    "bright",   "mania",     "swede",    "spain",
      "stays",      "staying",   "beach",     "beaches",  "parks",     "boats",    "coast",
      "could",      "would",     "should",    "there",    "where",     "their",    "these",
      "those",      "which",     "while",     "about",    "after",     "other",    "place",
      "plans",      "plane",     "planes",    "train",    "trains",    "hotel",    "hotels",
      "cheap",      "great",     "start",     "month",    "weeks",     "nights",   "night",
      "adults",     "party",     "price",     "money",    "tours",     "mates",    "kids",
      "guide",      "south",     "north",     "islands",  "island",    "castle",   "palace",
      "market",     "temple",    "museum",    "ruins",    "bars",      "clubs",    "lakes",
      "mountains",  "cities",    "countries", "culture",  "sights",    "really",   "thanks",
      "please",     "maybe",     "somewhere", "anywhere", "trip",      "trips",    "travel",
      "family",     "friends",   "romantic",  "roman",    "rooms",     "spring",   "summer",
      "winter",     "autumn",    "holiday",   "holidays", "christmas", "easter",   "weekend",
      "budget",     "luxury",    "hostel",    "hostels",  "dinner",    "lunch",    "breakfast",
      "flight",     "flights",   "direct",    "return",   "leaving",   "arriving", "visit",
      "visiting",   "going",     "heading",   "looking",  "thinking",  "wanna",    "gonna",
      "mostly",     "mainly",    "around",    "between",  "through",   "sorry",    "actually",
      "instead",    "canal",     "canals",    "french",   "italian",   "spanish",  "greek",
      "thai",       "swiss",     "dutch",     "irish",    "scottish",  "british",  "english",
      "japanese",   "chinese",   "mexican",   "indian",   "turkish",   "polish",   "danish",
      "swedish",    "norwegian", "finnish",   "austrian", "belgian",   "croatian", "czech",
      "portuguese", "american",  "canadian",  "brazilian"};
  for (size_t k = 0; k < sizeof words / sizeof words[0]; k++)
    if (vdx_is(tk, words[k])) return true;
  return false;
}

bool vdx_gazetteer_fuzzy(const vd_gazetteer *g, const vdx_text *t, size_t i, vdx_place_match *m) {
  if (!g || i >= t->n) return false;
  const vdx_token *a = &t->tok[i];
  if (a->kind != VDX_WORD) return false;
  const vdx_token *b = i + 1 < t->n && t->tok[i + 1].kind == VDX_WORD ? &t->tok[i + 1] : NULL;
  bool a_loose = a->len >= 5 && !common_word(a);
  if (b && common_word(b)) b = NULL;
  if (!a_loose && !b) return false;
  if (a->s[0] < 'a' || a->s[0] > 'z') return false;
  int letter = a->s[0] - 'a';
  for (uint32_t q = g->letter_start[letter]; q < g->letter_start[letter + 1]; q++) {
    const entry *e = &g->entries[g->by_letter[q]];
    if (e->flags) continue; /* aliases that are common words never match loosely */
    const char *key = S(g, e->key);
    if (e->ntok == 1) {
      if (a_loose && key[0] == a->s[0] && vdx_typo_of(a->s, a->len, key, e->key_len)) {
        fill_match(g, e, i, i + 1, true, m);
        return true;
      }
    } else if (e->ntok == 2 && b) {
      size_t first_len = (size_t)e->key_len - e->second_len - 1;
      if (first_len == a->len && memcmp(key, a->s, a->len) == 0 &&
          vdx_typo_of(b->s, b->len, S(g, e->second), e->second_len)) {
        fill_match(g, e, i, i + 2, true, m);
        return true;
      }
    }
  }
  return false;
}
