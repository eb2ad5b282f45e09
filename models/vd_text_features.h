/* vd_text_features: the text featuriser of the triage model. The SAME code turns a request's text
 * into model input at training (`verdict train triage`) and at serving time (vd_triage_score), so
 * the two cannot drift apart.
 *
 * 1. Normalisation (vd_text_features_tokens gives the result):
 *    - UTF-8 is decoded; invalid bytes count as separators.
 *    - Case folding: ASCII, Latin-1/Latin Extended-A, Greek and Cyrillic capitals to lower case.
 *    - Latin diacritics are folded to the base letter ("é" → "e", "ß" → "ss", "æ" → "ae",
 *      "ł" → "l"); combining marks (U+0300–U+036F) are dropped; full-width ASCII is narrowed.
 *    - Apostrophes inside a word join it ("don't" → "dont", "what’s" → "whats").
 *    - A number (digits, with . , : / - between digits: "1,200.50", "12/05", "4111-1111") becomes
 *      the placeholder token "<num>" — digits never reach the model or the trace.
 *    - Every other character (punctuation, symbols, spaces) separates tokens.
 * 2. Features, each hashed into a fixed space of 2^hash_bits buckets:
 *    - word n-grams for n = 1 .. word_ngram_max (tokens joined by one space), value 1 each;
 *    - character n-grams for n = char_ngram_min .. char_ngram_max over each word padded as
 *      "<word>" (code points, not bytes; not for "<num>"), value char_weight each;
 *    - values of the same bucket add up (raw term frequency), or with sublinear_tf ("tf": "log")
 *      n hits of one kind on a bucket count 1 + ln n times the kind's value (a word repeated in
 *      a request does not outweigh the rest of it); the vector is then scaled to unit L2 norm.
 * 3. The hash is MurmurHash3 x86 32-bit (Austin Appleby's, public domain) of the n-gram's bytes
 *    with seed 0x5644 + kind (1 word n-gram, 2 char n-gram); bucket = hash mod 2^hash_bits.
 *    Changing any of these is a model-breaking change: a model records the config it was
 *    trained with (vd_text_config_to_json) and serves with exactly that config.
 * 4. Mapping back: every bucket of the result lists the n-grams of the request that fell into it
 *    (vd_text_features_origin*), so a contribution per bucket can be shown as words and shared
 *    out over the tokens that produced it.
 *
 * Cost: a few µs for a typical request; no allocation once the scratch has grown to the request
 * size.
 *
 * Ownership: a vd_text_features is a per-thread scratch + result, created with
 * vd_text_features_new, reused for any number of texts, freed with vd_text_features_free. Its
 * results (tokens, indices, values, origins) are borrowed and valid until the next
 * vd_text_featurise on the same object. vd_text_config is a plain value.
 */
#ifndef VD_TEXT_FEATURES_H
#define VD_TEXT_FEATURES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vd_error.h"

enum {
  VD_TEXT_HASH_BITS_MIN = 8,
  VD_TEXT_HASH_BITS_MAX = 24,
  VD_TEXT_WORD_NGRAM_MAX = 4,
  VD_TEXT_CHAR_NGRAM_MAX = 8,
};

typedef struct vd_text_config {
  unsigned hash_bits;      /* space = 2^hash_bits buckets */
  unsigned word_ngram_max; /* 1 = words only, 2 = words and pairs of words, ... */
  unsigned char_ngram_min; /* 0 with char_ngram_max 0: no character n-grams */
  unsigned char_ngram_max;
  double char_weight; /* value of one character n-gram relative to a word n-gram */
  bool sublinear_tf;  /* a bucket hit n times by n-grams of one kind is worth 1 + ln n, not n */
} vd_text_config;

/* The defaults (the configuration the shipped triage model was chosen with). */
void vd_text_config_default(vd_text_config *config);
/* Checks ranges; err names the bad field ("char_ngram_min: must be <= char_ngram_max"). */
bool vd_text_config_check(const vd_text_config *config, vd_error *err);
/* {"hash": "murmur3_x86_32", "hash_bits": 18, "word_ngram_max": 2, ..., "tf": "log"|"raw"}.
 * New reference. */
json_t *vd_text_config_to_json(const vd_text_config *config);
/* Parses the object above (every field required but "tf", which defaults to "raw" as in bundles
 * written before it existed; "hash" must match); err->field is prefixed with `where`
 * ("manifest.featuriser.hash_bits"). */
bool vd_text_config_from_json(const json_t *json, const char *where, vd_text_config *config,
                              vd_error *err);

/* MurmurHash3 x86 32-bit (exposed for tests and documentation of the bucket function). */
uint32_t vd_text_murmur3_32(const void *data, size_t len, uint32_t seed);

typedef struct vd_text_features vd_text_features;

vd_text_features *vd_text_features_new(void);
void vd_text_features_free(vd_text_features *features);

/* Featurises text[0 .. len). False (err set) only when out of memory. */
bool vd_text_featurise(const vd_text_config *config, const char *text, size_t len,
                       vd_text_features *features, vd_error *err);

/* Normalised tokens of the last text: token i is text[0 .. len) (not NUL-terminated) and came
 * from bytes [start, end) of the original text. */
typedef struct vd_text_token {
  const char *text;
  size_t len;
  size_t start;
  size_t end;
} vd_text_token;

size_t vd_text_features_token_count(const vd_text_features *features);
vd_text_token vd_text_features_token(const vd_text_features *features, size_t token);

/* The sparse vector: count() distinct buckets in increasing order, with their values. */
size_t vd_text_features_count(const vd_text_features *features);
const uint32_t *vd_text_features_indices(const vd_text_features *features);
const float *vd_text_features_values(const vd_text_features *features);

typedef enum vd_text_ngram_kind {
  VD_TEXT_WORD_NGRAM = 1,
  VD_TEXT_CHAR_NGRAM = 2
} vd_text_ngram_kind;

/* One n-gram of the request that fell into a bucket: tokens [first_token, first_token +
 * token_count); for a character n-gram (token_count 1) the code points [char_offset, char_offset +
 * char_len) of the padded "<token>". */
typedef struct vd_text_origin {
  vd_text_ngram_kind kind;
  size_t first_token;
  size_t token_count;
  size_t char_offset;
  size_t char_len;
} vd_text_origin;

/* The n-grams behind feature i (0 <= i < count()), in the order they occur in the text. */
size_t vd_text_features_origin_count(const vd_text_features *features, size_t feature);
vd_text_origin vd_text_features_origin(const vd_text_features *features, size_t feature,
                                       size_t origin);
/* The n-gram as text ("lost luggage", "<lugg"), NUL-terminated, truncated to size. Returns the
 * full length (as snprintf). */
size_t vd_text_origin_format(const vd_text_features *features, const vd_text_origin *origin,
                             char *buf, size_t size);

#endif
