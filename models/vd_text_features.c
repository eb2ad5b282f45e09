/* The triage text featuriser: normalisation, n-grams, feature hashing, mapping back to n-grams.
 * The header documents the exact algorithm; this file is its only implementation. */
#include "vd_text_features.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vd_le.h"
#include "vd_utf8.h"

enum {
  HASH_SEED_BASE = 0x5644,
  NUM_PLACEHOLDER_LEN = 5, /* "<num>" */
};

static const char NUM_PLACEHOLDER[] = "<num>";

void vd_text_config_default(vd_text_config *config) {
  config->hash_bits = 18;
  config->word_ngram_max = 2;
  config->char_ngram_min = 3;
  config->char_ngram_max = 5;
  config->char_weight = 0.5;
  config->sublinear_tf = true;
}

bool vd_text_config_check(const vd_text_config *c, vd_error *err) {
  if (c->hash_bits < VD_TEXT_HASH_BITS_MIN || c->hash_bits > VD_TEXT_HASH_BITS_MAX)
    return vd_error_field(err, "hash_bits", "must be in [%d, %d], got %u", VD_TEXT_HASH_BITS_MIN,
                          VD_TEXT_HASH_BITS_MAX, c->hash_bits);
  if (c->word_ngram_max > VD_TEXT_WORD_NGRAM_MAX)
    return vd_error_field(err, "word_ngram_max", "must be in [0, %d], got %u",
                          VD_TEXT_WORD_NGRAM_MAX, c->word_ngram_max);
  if (c->char_ngram_max > VD_TEXT_CHAR_NGRAM_MAX)
    return vd_error_field(err, "char_ngram_max", "must be in [0, %d], got %u",
                          VD_TEXT_CHAR_NGRAM_MAX, c->char_ngram_max);
  if (c->char_ngram_max > 0 && (c->char_ngram_min == 0 || c->char_ngram_min > c->char_ngram_max))
    return vd_error_field(err, "char_ngram_min", "must be in [1, char_ngram_max = %u], got %u",
                          c->char_ngram_max, c->char_ngram_min);
  if (c->char_ngram_max == 0 && c->char_ngram_min != 0)
    return vd_error_field(err, "char_ngram_min", "must be 0 when char_ngram_max is 0");
  if (c->word_ngram_max == 0 && c->char_ngram_max == 0)
    return vd_error_field(err, "word_ngram_max", "no features: word and char n-grams both off");
  if (!(c->char_weight > 0) || !isfinite(c->char_weight))
    return vd_error_field(err, "char_weight", "must be a positive number");
  return true;
}

json_t *vd_text_config_to_json(const vd_text_config *c) {
  return json_pack("{s:s, s:I, s:I, s:I, s:I, s:f, s:s}", "hash", "murmur3_x86_32", "hash_bits",
                   (json_int_t)c->hash_bits, "word_ngram_max", (json_int_t)c->word_ngram_max,
                   "char_ngram_min", (json_int_t)c->char_ngram_min, "char_ngram_max",
                   (json_int_t)c->char_ngram_max, "char_weight", c->char_weight, "tf",
                   c->sublinear_tf ? "log" : "raw");
}

static bool config_uint(const json_t *json, const char *where, const char *key, unsigned *out,
                        vd_error *err) {
  const json_t *v = json_object_get(json, key);
  if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000) {
    char field[2 * VD_ERROR_WHERE_MAX];
    snprintf(field, sizeof field, "%s.%s", where, key);
    return vd_error_field(err, field, "expected a non-negative integer");
  }
  *out = (unsigned)json_integer_value(v);
  return true;
}

bool vd_text_config_from_json(const json_t *json, const char *where, vd_text_config *c,
                              vd_error *err) {
  if (!json_is_object(json)) return vd_error_field(err, where, "expected an object");
  const char *hash = json_string_value(json_object_get(json, "hash"));
  char field[2 * VD_ERROR_WHERE_MAX];
  if (!hash || strcmp(hash, "murmur3_x86_32") != 0) {
    snprintf(field, sizeof field, "%s.hash", where);
    return vd_error_field(err, field, "expected \"murmur3_x86_32\"");
  }
  if (!config_uint(json, where, "hash_bits", &c->hash_bits, err) ||
      !config_uint(json, where, "word_ngram_max", &c->word_ngram_max, err) ||
      !config_uint(json, where, "char_ngram_min", &c->char_ngram_min, err) ||
      !config_uint(json, where, "char_ngram_max", &c->char_ngram_max, err))
    return false;
  const json_t *w = json_object_get(json, "char_weight");
  if (!json_is_number(w)) {
    snprintf(field, sizeof field, "%s.char_weight", where);
    return vd_error_field(err, field, "expected a number");
  }
  c->char_weight = json_number_value(w);
  const json_t *tf = json_object_get(json, "tf");
  const char *tf_mode = tf ? json_string_value(tf) : "raw";
  if (!tf_mode || (strcmp(tf_mode, "raw") != 0 && strcmp(tf_mode, "log") != 0)) {
    snprintf(field, sizeof field, "%s.tf", where);
    return vd_error_field(err, field, "expected \"raw\" or \"log\"");
  }
  c->sublinear_tf = strcmp(tf_mode, "log") == 0;
  vd_error local;
  if (!vd_text_config_check(c, &local)) {
    snprintf(field, sizeof field, "%s.%s", where, local.field);
    return vd_error_field(err, field, "%s", local.message);
  }
  return true;
}

/* ---- MurmurHash3 x86 32 ---- */

static uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

uint32_t vd_text_murmur3_32(const void *data, size_t len, uint32_t seed) {
  const uint8_t *p = data;
  const uint32_t c1 = 0xcc9e2d51u, c2 = 0x1b873593u;
  uint32_t h = seed;
  size_t blocks = len / 4;
  for (size_t i = 0; i < blocks; i++) {
    uint32_t k = vd_le_get32(p + 4 * i);
    k *= c1;
    k = rotl32(k, 15);
    k *= c2;
    h ^= k;
    h = rotl32(h, 13);
    h = h * 5 + 0xe6546b64u;
  }
  const uint8_t *tail = p + blocks * 4;
  uint32_t k = 0;
  switch (len & 3) {
    case 3:
      k ^= (uint32_t)tail[2] << 16;
      /* fall through */
    case 2:
      k ^= (uint32_t)tail[1] << 8;
      /* fall through */
    case 1:
      k ^= tail[0];
      k *= c1;
      k = rotl32(k, 15);
      k *= c2;
      h ^= k;
      break;
    default:
      break;
  }
  h ^= (uint32_t)len;
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

/* ---- scratch ---- */

typedef struct token_span {
  size_t offset; /* into norm */
  size_t len;
  size_t start, end; /* in the original text */
  bool number;
} token_span;

typedef struct emission {
  uint32_t bucket;
  uint32_t order;
  float value;
  vd_text_origin origin;
} emission;

struct vd_text_features {
  char *norm;
  size_t norm_len, norm_cap;
  token_span *tokens;
  size_t token_count, token_cap;
  emission *emits;
  size_t emit_count, emit_cap;
  char *key; /* n-gram bytes being hashed */
  size_t key_cap;
  size_t *cp_offsets; /* code point offsets of the padded token */
  size_t cp_cap;
  uint32_t *indices;
  float *values;
  size_t *origin_start; /* count + 1 entries into emits */
  size_t count, feature_cap;
};

vd_text_features *vd_text_features_new(void) { return calloc(1, sizeof(vd_text_features)); }

void vd_text_features_free(vd_text_features *f) {
  if (!f) return;
  free(f->norm);
  free(f->tokens);
  free(f->emits);
  free(f->key);
  free(f->cp_offsets);
  free(f->indices);
  free(f->values);
  free(f->origin_start);
  free(f);
}

/* Grows *array to hold at least `need` items of `size` bytes. */
static bool grow(void **array, size_t *cap, size_t need, size_t size) {
  if (need <= *cap) return true;
  size_t n = *cap ? *cap : 16;
  while (n < need) n *= 2;
  void *p = realloc(*array, n * size);
  if (!p) return false;
  *array = p;
  *cap = n;
  return true;
}

static bool norm_put(vd_text_features *f, const char *bytes, size_t n) {
  if (!grow((void **)&f->norm, &f->norm_cap, f->norm_len + n + 1, 1)) return false;
  memcpy(f->norm + f->norm_len, bytes, n);
  f->norm_len += n;
  return true;
}

/* ---- normalisation ---- */

/* Decodes one UTF-8 code point at s[*i]; returns it, or 0xFFFD for an invalid sequence (one byte
 * consumed). */
static uint32_t utf8_next(const unsigned char *s, size_t len, size_t *i) {
  uint32_t cp;
  size_t n = vd_utf8_decode(s + *i, len - *i, &cp);
  *i += n ? n : 1;
  return n ? cp : 0xFFFD;
}

static size_t utf8_put(uint32_t cp, char out[4]) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | cp >> 6);
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | cp >> 12);
    out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | cp >> 18);
  out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
  out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Latin-1 Supplement and Latin Extended-A letters folded to ASCII. */
typedef struct latin_fold {
  uint16_t lo, hi;
  const char *to;
} latin_fold;

static const latin_fold LATIN_FOLDS[] = {
    {0xAA, 0xAA, "a"},    {0xB5, 0xB5, "u"},   {0xBA, 0xBA, "o"},    {0xC0, 0xC5, "a"},
    {0xC6, 0xC6, "ae"},   {0xC7, 0xC7, "c"},   {0xC8, 0xCB, "e"},    {0xCC, 0xCF, "i"},
    {0xD0, 0xD0, "d"},    {0xD1, 0xD1, "n"},   {0xD2, 0xD6, "o"},    {0xD8, 0xD8, "o"},
    {0xD9, 0xDC, "u"},    {0xDD, 0xDD, "y"},   {0xDE, 0xDE, "th"},   {0xDF, 0xDF, "ss"},
    {0xE0, 0xE5, "a"},    {0xE6, 0xE6, "ae"},  {0xE7, 0xE7, "c"},    {0xE8, 0xEB, "e"},
    {0xEC, 0xEF, "i"},    {0xF0, 0xF0, "d"},   {0xF1, 0xF1, "n"},    {0xF2, 0xF6, "o"},
    {0xF8, 0xF8, "o"},    {0xF9, 0xFC, "u"},   {0xFD, 0xFD, "y"},    {0xFE, 0xFE, "th"},
    {0xFF, 0xFF, "y"},    {0x100, 0x105, "a"}, {0x106, 0x10D, "c"},  {0x10E, 0x111, "d"},
    {0x112, 0x11B, "e"},  {0x11C, 0x123, "g"}, {0x124, 0x127, "h"},  {0x128, 0x131, "i"},
    {0x132, 0x133, "ij"}, {0x134, 0x135, "j"}, {0x136, 0x138, "k"},  {0x139, 0x142, "l"},
    {0x143, 0x14B, "n"},  {0x14C, 0x151, "o"}, {0x152, 0x153, "oe"}, {0x154, 0x159, "r"},
    {0x15A, 0x161, "s"},  {0x162, 0x167, "t"}, {0x168, 0x173, "u"},  {0x174, 0x175, "w"},
    {0x176, 0x178, "y"},  {0x179, 0x17E, "z"}, {0x17F, 0x17F, "s"},
};

typedef enum char_class {
  CHAR_SEPARATOR,
  CHAR_LETTER,
  CHAR_DIGIT,
  CHAR_APOSTROPHE,
  CHAR_DROP
} char_class;

/* Classifies a code point and writes its folded form (letters only) to out/out_len. */
static char_class classify(uint32_t cp, char out[8], size_t *out_len) {
  *out_len = 0;
  if (cp >= 0xFF01 && cp <= 0xFF5E) cp -= 0xFEE0; /* full-width ASCII */
  if (cp < 0x80) {
    if (cp >= 'A' && cp <= 'Z') cp += 'a' - 'A';
    if (cp >= 'a' && cp <= 'z') {
      out[0] = (char)cp;
      *out_len = 1;
      return CHAR_LETTER;
    }
    if (cp >= '0' && cp <= '9') return CHAR_DIGIT;
    if (cp == '\'') return CHAR_APOSTROPHE;
    return CHAR_SEPARATOR;
  }
  if (cp == 0x2019 || cp == 0x2018 || cp == 0x02BC) return CHAR_APOSTROPHE;
  if (cp >= 0x0300 && cp <= 0x036F) return CHAR_DROP; /* combining diacritics */
  if (cp >= 0xFE00 && cp <= 0xFE0F) return CHAR_DROP; /* variation selectors */
  if (cp >= 0xAA && cp <= 0x17F) {
    for (size_t i = 0; i < sizeof LATIN_FOLDS / sizeof LATIN_FOLDS[0]; i++)
      if (cp >= LATIN_FOLDS[i].lo && cp <= LATIN_FOLDS[i].hi) {
        *out_len = strlen(LATIN_FOLDS[i].to);
        memcpy(out, LATIN_FOLDS[i].to, *out_len);
        return CHAR_LETTER;
      }
    return CHAR_SEPARATOR; /* the remaining Latin-1 symbols: ¡ ¿ « » × ÷ ° ... */
  }
  if (cp < 0xAA) return CHAR_SEPARATOR; /* C1 controls, no-break space */
  if ((cp >= 0x2000 && cp <= 0x2BFF) || (cp >= 0x3000 && cp <= 0x303F) ||
      (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF65) ||
      (cp >= 0x1F000 && cp <= 0x1FAFF) || cp == 0xFFFD || cp == 0xFEFF)
    return CHAR_SEPARATOR; /* punctuation, symbols, arrows, emoji, ideographic punctuation */
  if ((cp >= 0x0391 && cp <= 0x03AB && cp != 0x03A2) || (cp >= 0x0410 && cp <= 0x042F))
    cp += 0x20; /* Greek and Cyrillic capitals */
  else if (cp >= 0x0400 && cp <= 0x040F)
    cp += 0x50;
  *out_len = utf8_put(cp, out);
  return CHAR_LETTER;
}

static bool begin_token(vd_text_features *f, size_t start, bool number) {
  if (!grow((void **)&f->tokens, &f->token_cap, f->token_count + 1, sizeof(token_span)))
    return false;
  f->tokens[f->token_count++] =
      (token_span){.offset = f->norm_len, .len = 0, .start = start, .end = start, .number = number};
  return true;
}

static void end_token(vd_text_features *f, size_t end) {
  token_span *t = &f->tokens[f->token_count - 1];
  t->len = f->norm_len - t->offset;
  t->end = end;
}

typedef enum tok_state { IN_NOTHING, IN_WORD, IN_NUMBER } tok_state;

static bool tokenise(vd_text_features *f, const char *text, size_t len) {
  const unsigned char *s = (const unsigned char *)text;
  tok_state state = IN_NOTHING;
  size_t i = 0;
  while (i < len) {
    size_t at = i;
    uint32_t cp = utf8_next(s, len, &i);
    char folded[8];
    size_t folded_len;
    char_class cls = classify(cp, folded, &folded_len);
    if (state == IN_NUMBER) {
      if (cls == CHAR_DIGIT) {
        f->tokens[f->token_count - 1].end = i;
        continue;
      }
      /* A separator between digits stays inside the number: 1,200.50  12/05  4111-1111. */
      if (cp < 0x80 && strchr(".,:/-", (int)cp) && i < len && s[i] >= '0' && s[i] <= '9') continue;
      end_token(f, f->tokens[f->token_count - 1].end);
      state = IN_NOTHING;
    }
    switch (cls) {
      case CHAR_LETTER:
        if (state != IN_WORD) {
          if (!begin_token(f, at, false)) return false;
          state = IN_WORD;
        }
        if (!norm_put(f, folded, folded_len)) return false;
        f->tokens[f->token_count - 1].end = i;
        break;
      case CHAR_DIGIT:
        if (state == IN_WORD) end_token(f, f->tokens[f->token_count - 1].end);
        if (!begin_token(f, at, true) || !norm_put(f, NUM_PLACEHOLDER, NUM_PLACEHOLDER_LEN))
          return false;
        f->tokens[f->token_count - 1].end = i;
        state = IN_NUMBER;
        break;
      case CHAR_APOSTROPHE:
      case CHAR_DROP:
        break; /* inside a word: joins it; elsewhere: nothing */
      case CHAR_SEPARATOR:
        if (state == IN_WORD) end_token(f, f->tokens[f->token_count - 1].end);
        state = IN_NOTHING;
        break;
    }
  }
  if (state != IN_NOTHING) end_token(f, f->tokens[f->token_count - 1].end);
  /* A word made only of dropped marks has no letters: remove empty tokens. */
  size_t kept = 0;
  for (size_t t = 0; t < f->token_count; t++)
    if (f->tokens[t].len > 0) f->tokens[kept++] = f->tokens[t];
  f->token_count = kept;
  return true;
}

/* ---- n-grams ---- */

static bool emit(vd_text_features *f, const vd_text_config *c, const char *key, size_t key_len,
                 vd_text_ngram_kind kind, float value, vd_text_origin origin) {
  if (!grow((void **)&f->emits, &f->emit_cap, f->emit_count + 1, sizeof(emission))) return false;
  uint32_t h = vd_text_murmur3_32(key, key_len, HASH_SEED_BASE + (uint32_t)kind);
  uint32_t mask = (c->hash_bits >= 32) ? 0xFFFFFFFFu : ((1u << c->hash_bits) - 1u);
  f->emits[f->emit_count] = (emission){
      .bucket = h & mask, .order = (uint32_t)f->emit_count, .value = value, .origin = origin};
  f->emit_count++;
  return true;
}

static bool word_ngrams(vd_text_features *f, const vd_text_config *c) {
  for (size_t n = 1; n <= c->word_ngram_max; n++) {
    for (size_t first = 0; first + n <= f->token_count; first++) {
      size_t key_len = 0;
      for (size_t k = 0; k < n; k++) key_len += f->tokens[first + k].len + 1;
      if (!grow((void **)&f->key, &f->key_cap, key_len, 1)) return false;
      size_t at = 0;
      for (size_t k = 0; k < n; k++) {
        const token_span *t = &f->tokens[first + k];
        if (k) f->key[at++] = ' ';
        memcpy(f->key + at, f->norm + t->offset, t->len);
        at += t->len;
      }
      vd_text_origin o = {VD_TEXT_WORD_NGRAM, first, n, 0, 0};
      if (!emit(f, c, f->key, at, VD_TEXT_WORD_NGRAM, 1.0f, o)) return false;
    }
  }
  return true;
}

/* Writes "<token>" into f->key and its code point offsets into f->cp_offsets; returns the code
 * point count (the offsets array has count + 1 entries). */
static bool pad_token(vd_text_features *f, const token_span *t, size_t *cp_count) {
  size_t len = t->len + 2;
  if (!grow((void **)&f->key, &f->key_cap, len, 1) ||
      !grow((void **)&f->cp_offsets, &f->cp_cap, len + 1, sizeof(size_t)))
    return false;
  f->key[0] = '<';
  memcpy(f->key + 1, f->norm + t->offset, t->len);
  f->key[len - 1] = '>';
  size_t n = 0;
  for (size_t b = 0; b < len; b++)
    if (((unsigned char)f->key[b] & 0xC0) != 0x80) f->cp_offsets[n++] = b;
  f->cp_offsets[n] = len;
  *cp_count = n;
  return true;
}

static bool char_ngrams(vd_text_features *f, const vd_text_config *c) {
  if (c->char_ngram_max == 0) return true;
  for (size_t t = 0; t < f->token_count; t++) {
    if (f->tokens[t].number) continue;
    size_t cps;
    if (!pad_token(f, &f->tokens[t], &cps)) return false;
    for (size_t n = c->char_ngram_min; n <= c->char_ngram_max; n++) {
      for (size_t i = 0; i + n <= cps; i++) {
        size_t from = f->cp_offsets[i], to = f->cp_offsets[i + n];
        vd_text_origin o = {VD_TEXT_CHAR_NGRAM, t, 1, i, n};
        /* emit() may not grow f->key, so hashing straight from it is safe. */
        if (!emit(f, c, f->key + from, to - from, VD_TEXT_CHAR_NGRAM, (float)c->char_weight, o))
          return false;
      }
    }
  }
  return true;
}

static int emission_cmp(const void *a, const void *b) {
  const emission *x = a, *y = b;
  if (x->bucket != y->bucket) return x->bucket < y->bucket ? -1 : 1;
  return x->order < y->order ? -1 : (x->order > y->order);
}

bool vd_text_featurise(const vd_text_config *c, const char *text, size_t len, vd_text_features *f,
                       vd_error *err) {
  f->norm_len = 0;
  f->token_count = 0;
  f->emit_count = 0;
  f->count = 0;
  if (!tokenise(f, text, len) || !word_ngrams(f, c) || !char_ngrams(f, c))
    return vd_error_set(err, "out of memory featurising a text of %zu bytes", len);
  if (f->norm) f->norm[f->norm_len] = '\0';
  if (f->emit_count) qsort(f->emits, f->emit_count, sizeof(emission), emission_cmp);
  if (!grow((void **)&f->indices, &f->feature_cap, f->emit_count + 1, sizeof(uint32_t)))
    return vd_error_set(err, "out of memory");
  size_t cap = f->feature_cap;
  float *values = realloc(f->values, cap * sizeof(float));
  if (!values) return vd_error_set(err, "out of memory");
  f->values = values;
  size_t *starts = realloc(f->origin_start, (cap + 1) * sizeof(size_t));
  if (!starts) return vd_error_set(err, "out of memory");
  f->origin_start = starts;
  double norm2 = 0;
  size_t n = 0;
  for (size_t e = 0; e < f->emit_count;) {
    size_t end = e, hits[3] = {0, 0, 0};
    double v = 0;
    while (end < f->emit_count && f->emits[end].bucket == f->emits[e].bucket) {
      v += f->emits[end].value;
      hits[f->emits[end++].origin.kind]++;
    }
    if (c->sublinear_tf) {
      v = 0;
      if (hits[VD_TEXT_WORD_NGRAM]) v += 1.0 + log((double)hits[VD_TEXT_WORD_NGRAM]);
      if (hits[VD_TEXT_CHAR_NGRAM])
        v += (float)c->char_weight * (1.0 + log((double)hits[VD_TEXT_CHAR_NGRAM]));
    }
    f->indices[n] = f->emits[e].bucket;
    f->values[n] = (float)v;
    f->origin_start[n] = e;
    norm2 += v * v;
    n++;
    e = end;
  }
  f->origin_start[n] = f->emit_count;
  f->count = n;
  if (norm2 > 0) {
    double scale = 1.0 / sqrt(norm2);
    for (size_t i = 0; i < n; i++) f->values[i] = (float)(f->values[i] * scale);
  }
  return true;
}

size_t vd_text_features_token_count(const vd_text_features *f) { return f->token_count; }

vd_text_token vd_text_features_token(const vd_text_features *f, size_t token) {
  const token_span *t = &f->tokens[token];
  return (vd_text_token){f->norm + t->offset, t->len, t->start, t->end};
}

size_t vd_text_features_count(const vd_text_features *f) { return f->count; }
const uint32_t *vd_text_features_indices(const vd_text_features *f) { return f->indices; }
const float *vd_text_features_values(const vd_text_features *f) { return f->values; }

size_t vd_text_features_origin_count(const vd_text_features *f, size_t feature) {
  return f->origin_start[feature + 1] - f->origin_start[feature];
}

vd_text_origin vd_text_features_origin(const vd_text_features *f, size_t feature, size_t origin) {
  return f->emits[f->origin_start[feature] + origin].origin;
}

/* Byte range of code point `index` of s[0 .. len). */
static void code_point_at(const char *s, size_t len, size_t index, size_t *from, size_t *to) {
  size_t b = 0;
  for (size_t k = 0; k < index && b < len; k++) {
    b++;
    while (b < len && ((unsigned char)s[b] & 0xC0) == 0x80) b++;
  }
  size_t e = b < len ? b + 1 : len;
  while (e < len && ((unsigned char)s[e] & 0xC0) == 0x80) e++;
  *from = b;
  *to = e;
}

static void put_bytes(char *buf, size_t size, size_t *total, const char *p, size_t n) {
  for (size_t k = 0; k < n; k++, (*total)++)
    if (size && *total < size - 1) buf[*total] = p[k];
}

size_t vd_text_origin_format(const vd_text_features *f, const vd_text_origin *o, char *buf,
                             size_t size) {
  size_t total = 0;
  if (o->kind == VD_TEXT_WORD_NGRAM) {
    for (size_t k = 0; k < o->token_count; k++) {
      const token_span *t = &f->tokens[o->first_token + k];
      if (k) put_bytes(buf, size, &total, " ", 1);
      put_bytes(buf, size, &total, f->norm + t->offset, t->len);
    }
  } else {
    /* Code point positions in the padded "<token>": 0 is '<', 1 .. cps the token, cps + 1 '>'. */
    const token_span *t = &f->tokens[o->first_token];
    const char *s = f->norm + t->offset;
    for (size_t cp = o->char_offset; cp < o->char_offset + o->char_len; cp++) {
      size_t from, to;
      if (cp == 0) {
        put_bytes(buf, size, &total, "<", 1);
        continue;
      }
      code_point_at(s, t->len, cp - 1, &from, &to);
      if (from >= t->len)
        put_bytes(buf, size, &total, ">", 1);
      else
        put_bytes(buf, size, &total, s + from, to - from);
    }
  }
  if (size) buf[total < size ? total : size - 1] = '\0';
  return total;
}
