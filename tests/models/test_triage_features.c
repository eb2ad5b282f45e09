/* The triage text featuriser: normalisation, n-grams, hashing, mapping back to the request. */
#include <math.h>
#include <string.h>

#include "vd_test.h"
#include "vd_text_features.h"

/* The normalised tokens of text joined by '|'. */
static void tokens_of(const char *text, char *out, size_t size) {
  vd_text_config c;
  vd_text_config_default(&c);
  vd_text_features *f = vd_text_features_new();
  ck_assert(vd_text_featurise(&c, text, strlen(text), f, NULL));
  size_t at = 0;
  out[0] = '\0';
  for (size_t t = 0; t < vd_text_features_token_count(f); t++) {
    vd_text_token tok = vd_text_features_token(f, t);
    at += (size_t)snprintf(out + at, size - at, "%s%.*s", t ? "|" : "", (int)tok.len, tok.text);
  }
  vd_text_features_free(f);
}

START_TEST(normalises_case_punctuation_and_apostrophes) {
  char out[512];
  tokens_of("What's MY Balance?!  I don't know...", out, sizeof out);
  ck_assert_str_eq(out, "whats|my|balance|i|dont|know");
  tokens_of("  \t\n", out, sizeof out);
  ck_assert_str_eq(out, "");
  tokens_of("l'hôtel, s’il vous plaît", out, sizeof out);
  ck_assert_str_eq(out, "lhotel|sil|vous|plait");
}
END_TEST

START_TEST(folds_latin_diacritics_and_other_scripts) {
  char out[512];
  tokens_of("Café CRÈME Ångström Straße Æsir Łódź Œuvre naïve", out, sizeof out);
  ck_assert_str_eq(out, "cafe|creme|angstrom|strasse|aesir|lodz|oeuvre|naive");
  /* Decomposed form (e + combining acute) folds the same as the precomposed one. */
  tokens_of("Cafe\xcc\x81", out, sizeof out);
  ck_assert_str_eq(out, "cafe");
  tokens_of("ПРИВЕТ Ελλάδα", out, sizeof out);
  ck_assert_str_eq(out, "привет|ελλάδα");
  /* Full-width letters, emoji and invalid UTF-8 bytes. */
  tokens_of("\xef\xbc\xa8\xef\xbd\x89 \xf0\x9f\x98\x80 ok\xff\xfeyes", out, sizeof out);
  ck_assert_str_eq(out, "hi|ok|yes");
}
END_TEST

START_TEST(numbers_become_a_placeholder) {
  char out[512];
  tokens_of("pay $1,200.50 on 12/05 to card 4111-1111-1111-1111 at 3pm", out, sizeof out);
  ck_assert_str_eq(out, "pay|<num>|on|<num>|to|card|<num>|at|<num>|pm");
  /* Digits never reach the tokens (and so never the trace). */
  tokens_of("4111 1111 1111 1111", out, sizeof out);
  ck_assert_str_eq(out, "<num>|<num>|<num>|<num>");
}
END_TEST

START_TEST(token_spans_point_into_the_original_text) {
  vd_text_config c;
  vd_text_config_default(&c);
  vd_text_features *f = vd_text_features_new();
  const char *text = "  Où est l'hôtel? 42";
  ck_assert(vd_text_featurise(&c, text, strlen(text), f, NULL));
  ck_assert_uint_eq(vd_text_features_token_count(f), 4);
  vd_text_token t0 = vd_text_features_token(f, 0), t2 = vd_text_features_token(f, 2),
                t3 = vd_text_features_token(f, 3);
  ck_assert_int_eq(strncmp(text + t0.start, "Où", t0.end - t0.start), 0);
  ck_assert_uint_eq(t0.end - t0.start, strlen("Où"));
  ck_assert_int_eq(strncmp(text + t2.start, "l'hôtel", t2.end - t2.start), 0);
  ck_assert_uint_eq(t2.end - t2.start, strlen("l'hôtel"));
  ck_assert_uint_eq(t3.start, strlen(text) - 2);
  ck_assert_uint_eq(t3.end, strlen(text));
  vd_text_features_free(f);
}
END_TEST

START_TEST(murmur3_matches_the_reference_vectors) {
  /* Published MurmurHash3_x86_32 test vectors. */
  ck_assert_uint_eq(vd_text_murmur3_32("", 0, 0), 0);
  ck_assert_uint_eq(vd_text_murmur3_32("", 0, 1), 0x514E28B7u);
  ck_assert_uint_eq(vd_text_murmur3_32("hello", 5, 0), 0x248BFA47u);
  const char *fox = "The quick brown fox jumps over the lazy dog";
  ck_assert_uint_eq(vd_text_murmur3_32(fox, strlen(fox), 0), 0x2E4FF723u);
  ck_assert_uint_eq(vd_text_murmur3_32("abc", 3, 0), 0xB3DD93FAu);
}
END_TEST

/* Every n-gram the config asks for is emitted once; the vector has unit norm and increasing
 * buckets. */
START_TEST(emits_word_and_char_ngrams_with_unit_norm) {
  vd_text_config c = {.hash_bits = 20,
                      .word_ngram_max = 2,
                      .char_ngram_min = 3,
                      .char_ngram_max = 4,
                      .char_weight = 0.5};
  vd_text_features *f = vd_text_features_new();
  const char *text = "lost my luggage";
  ck_assert(vd_text_featurise(&c, text, strlen(text), f, NULL));
  size_t n = vd_text_features_count(f), origins = 0, words = 0, chars = 0;
  const uint32_t *idx = vd_text_features_indices(f);
  const float *val = vd_text_features_values(f);
  double norm = 0;
  for (size_t i = 0; i < n; i++) {
    if (i) ck_assert_uint_lt(idx[i - 1], idx[i]);
    ck_assert_uint_lt(idx[i], 1u << 20);
    norm += (double)val[i] * val[i];
    for (size_t o = 0; o < vd_text_features_origin_count(f, i); o++) {
      vd_text_origin org = vd_text_features_origin(f, i, o);
      origins++;
      if (org.kind == VD_TEXT_WORD_NGRAM)
        words++;
      else
        chars++;
    }
  }
  ck_assert_double_eq_tol(norm, 1.0, 1e-6);
  /* words: 3 unigrams + 2 bigrams; chars over "<lost>" (6 cps), "<my>" (4), "<luggage>" (9):
   * 3-grams 4 + 2 + 7, 4-grams 3 + 1 + 6. */
  ck_assert_uint_eq(words, 5);
  ck_assert_uint_eq(chars, 13 + 10);
  ck_assert_uint_eq(origins, 28);
  vd_text_features_free(f);
}
END_TEST

/* A hashed feature maps back to the n-grams (and so the words) that produced it. */
START_TEST(maps_features_back_to_ngrams) {
  vd_text_config c = {.hash_bits = 24,
                      .word_ngram_max = 2,
                      .char_ngram_min = 3,
                      .char_ngram_max = 3,
                      .char_weight = 1.0};
  vd_text_features *f = vd_text_features_new();
  const char *text = "Lost luggage, lost!";
  ck_assert(vd_text_featurise(&c, text, strlen(text), f, NULL));
  bool saw_bigram = false, saw_char = false, saw_twice = false;
  for (size_t i = 0; i < vd_text_features_count(f); i++) {
    size_t no = vd_text_features_origin_count(f, i);
    for (size_t o = 0; o < no; o++) {
      vd_text_origin org = vd_text_features_origin(f, i, o);
      char buf[64];
      vd_text_origin_format(f, &org, buf, sizeof buf);
      if (strcmp(buf, "lost luggage") == 0) {
        saw_bigram = true;
        ck_assert_uint_eq(org.first_token, 0);
        ck_assert_uint_eq(org.token_count, 2);
      }
      if (strcmp(buf, "ge>") == 0) {
        saw_char = true;
        ck_assert_uint_eq(org.first_token, 1);
      }
      /* "lost" occurs twice: one bucket with two origins, value summed. */
      if (strcmp(buf, "lost") == 0 && org.kind == VD_TEXT_WORD_NGRAM && no == 2) saw_twice = true;
    }
  }
  ck_assert(saw_bigram);
  ck_assert(saw_char);
  ck_assert(saw_twice);
  /* Truncation reports the full length. */
  vd_text_origin big = {VD_TEXT_WORD_NGRAM, 0, 2, 0, 0};
  char small[5];
  ck_assert_uint_eq(vd_text_origin_format(f, &big, small, sizeof small), strlen("lost luggage"));
  ck_assert_str_eq(small, "lost");
  vd_text_features_free(f);
}
END_TEST

/* Hashing is stable: the same text gives the same vector whatever came before on the same
 * scratch, and case/diacritics/number variants give identical vectors. */
START_TEST(hashing_is_stable_and_normalisation_invariant) {
  vd_text_config c;
  vd_text_config_default(&c);
  vd_text_features *a = vd_text_features_new(), *b = vd_text_features_new();
  const char *x = "Où est mon hôtel? Réservation 12345";
  const char *y = "ou est MON hotel --- reservation 999";
  ck_assert(vd_text_featurise(&c, "a very long text to grow the scratch first, a very long text",
                              60, a, NULL));
  ck_assert(vd_text_featurise(&c, x, strlen(x), a, NULL));
  ck_assert(vd_text_featurise(&c, y, strlen(y), b, NULL));
  ck_assert_uint_eq(vd_text_features_count(a), vd_text_features_count(b));
  for (size_t i = 0; i < vd_text_features_count(a); i++) {
    ck_assert_uint_eq(vd_text_features_indices(a)[i], vd_text_features_indices(b)[i]);
    ck_assert_float_eq(vd_text_features_values(a)[i], vd_text_features_values(b)[i]);
  }
  /* The bucket of a word is the documented function: murmur3(word, 0x5644 + 1) mod 2^bits. */
  ck_assert(vd_text_featurise(&c, "hello", 5, a, NULL));
  uint32_t expected = vd_text_murmur3_32("hello", 5, 0x5644 + 1) & ((1u << c.hash_bits) - 1);
  bool found = false;
  for (size_t i = 0; i < vd_text_features_count(a); i++)
    found |= vd_text_features_indices(a)[i] == expected;
  ck_assert(found);
  vd_text_features_free(a);
  vd_text_features_free(b);
}
END_TEST

START_TEST(config_round_trips_and_rejects_bad_values) {
  vd_text_config c, d;
  vd_text_config_default(&c);
  json_t *j = vd_text_config_to_json(&c);
  vd_error e;
  ck_assert(vd_text_config_from_json(j, "featuriser", &d, &e));
  ck_assert_uint_eq(d.hash_bits, c.hash_bits);
  ck_assert_uint_eq(d.char_ngram_max, c.char_ngram_max);
  ck_assert_double_eq(d.char_weight, c.char_weight);
  json_object_set_new(j, "hash_bits", json_integer(40));
  ck_assert(!vd_text_config_from_json(j, "featuriser", &d, &e));
  ck_assert_str_eq(e.field, "featuriser.hash_bits");
  json_object_set_new(j, "hash_bits", json_integer(18));
  json_object_set_new(j, "hash", json_string("fnv1a"));
  ck_assert(!vd_text_config_from_json(j, "featuriser", &d, &e));
  ck_assert_str_eq(e.field, "featuriser.hash");
  json_decref(j);
  vd_text_config bad = c;
  bad.char_ngram_min = 6;
  bad.char_ngram_max = 4;
  ck_assert(!vd_text_config_check(&bad, &e));
  ck_assert_str_eq(e.field, "char_ngram_min");
}
END_TEST

/* The value of a word's bucket, unnormalised: the ratio to another word's bucket. */
static double word_value_ratio(const vd_text_config *c, const char *text, const char *word,
                               const char *other) {
  vd_text_features *f = vd_text_features_new();
  ck_assert(vd_text_featurise(c, text, strlen(text), f, NULL));
  uint32_t mask = (1u << c->hash_bits) - 1u;
  uint32_t a = vd_text_murmur3_32(word, strlen(word), 0x5644 + 1) & mask,
           b = vd_text_murmur3_32(other, strlen(other), 0x5644 + 1) & mask;
  double va = 0, vb = 0;
  for (size_t i = 0; i < vd_text_features_count(f); i++) {
    if (vd_text_features_indices(f)[i] == a) va = vd_text_features_values(f)[i];
    if (vd_text_features_indices(f)[i] == b) vb = vd_text_features_values(f)[i];
  }
  vd_text_features_free(f);
  ck_assert(vb > 0);
  return va / vb;
}

/* Raw term frequency: a word said three times weighs 3; sublinear: 1 + ln 3. */
START_TEST(sublinear_tf_damps_repeated_words) {
  vd_text_config c = {.hash_bits = 24, .word_ngram_max = 1, .char_weight = 1.0};
  const char *text = "help help help me";
  ck_assert_double_eq_tol(word_value_ratio(&c, text, "help", "me"), 3.0, 1e-5);
  c.sublinear_tf = true;
  ck_assert_double_eq_tol(word_value_ratio(&c, text, "help", "me"), 1.0 + log(3.0), 1e-5);
  /* The mode is part of the config: "tf" in the JSON, "raw" when absent (older bundles). */
  json_t *j = vd_text_config_to_json(&c);
  ck_assert_str_eq(json_string_value(json_object_get(j, "tf")), "log");
  vd_text_config d;
  vd_error e;
  ck_assert(vd_text_config_from_json(j, "featuriser", &d, &e));
  ck_assert(d.sublinear_tf);
  json_object_del(j, "tf");
  ck_assert(vd_text_config_from_json(j, "featuriser", &d, &e));
  ck_assert(!d.sublinear_tf);
  json_object_set_new(j, "tf", json_string("sqrt"));
  ck_assert(!vd_text_config_from_json(j, "featuriser", &d, &e));
  ck_assert_str_eq(e.field, "featuriser.tf");
  json_decref(j);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("triage_features");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, normalises_case_punctuation_and_apostrophes);
  tcase_add_test(tc, folds_latin_diacritics_and_other_scripts);
  tcase_add_test(tc, numbers_become_a_placeholder);
  tcase_add_test(tc, token_spans_point_into_the_original_text);
  tcase_add_test(tc, murmur3_matches_the_reference_vectors);
  tcase_add_test(tc, emits_word_and_char_ngrams_with_unit_norm);
  tcase_add_test(tc, maps_features_back_to_ngrams);
  tcase_add_test(tc, hashing_is_stable_and_normalisation_invariant);
  tcase_add_test(tc, config_round_trips_and_rejects_bad_values);
  tcase_add_test(tc, sublinear_tf_damps_repeated_words);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return vd_test_run(suite()); }
