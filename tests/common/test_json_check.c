/* vd_json_check: one JSON object, accepted exactly when jansson accepts it as an object. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "vd_buf.h"
#include "vd_json_check.h"
#include "vd_test.h"

/* What jansson says of the text: 1 an object, 0 refused or not an object, -1 a number it cannot
 * hold (valid JSON that jansson alone refuses: not a grammar question). */
static int jansson_verdict(const char *text, size_t len) {
  json_error_t error;
  json_t *v = json_loadb(text, len, 0, &error);
  if (!v) return strstr(error.text, "too big") || strstr(error.text, "overflow") ? -1 : 0;
  int object = json_is_object(v);
  json_decref(v);
  return object;
}

static bool check(const char *text, size_t len) {
  vd_error err = {0};
  return vd_json_check_object(text, len, NULL, NULL, NULL, &err);
}

START_TEST(accepts_what_jansson_accepts_as_an_object) {
  static const char *const cases[] = {
      "{}", " {\"a\":1} \n", "{\"a\":[1,2,{\"b\":null}],\"c\":true,\"d\":false}",
      "{\"n\":-0.5e+10,\"m\":0,\"k\":1E-3}", "{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\"}",
      "{\"pair\":\"\\ud83d\\ude00\"}", "{\"utf8\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}",
      "{\"a\":1,\"a\":2}", "{\"deep\":[[[[[[[[[[{}]]]]]]]]]]}",
      /* refused */
      "", "   ", "[]", "1", "\"x\"", "{", "}", "{\"a\":1},{\"b\":2}", "{\"a\":1}x", "{\"a\"}",
      "{\"a\":}", "{\"a\":1,}", "{,}", "{\"a\":[1,]}", "{\"a\":[,1]}", "{a:1}", "{\"a\":01}",
      "{\"a\":1.}", "{\"a\":.5}", "{\"a\":+1}", "{\"a\":-}", "{\"a\":1e}", "{\"a\":tru}",
      "{\"a\":nul}", "{\"a\":\"x\\u0000y\"}", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\udc00\"}",
      "{\"a\":\"\\ud800\\u0041\"}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12g4\"}", "{\"a\":\"\xff\"}",
      "{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"tab\there\"}", "{\"a\":\"open}",
      "{\"a\":[1}", "{\"a\":{]}"};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t len = strlen(cases[i]);
    ck_assert_msg(check(cases[i], len) == (jansson_verdict(cases[i], len) == 1), "case %zu: %s", i,
                  cases[i]);
  }
  /* a NUL byte outside and inside a string */
  ck_assert(!check("{\"a\":1}\0", 8));
  ck_assert(!check("{\"a\":\"x\0y\"}", 11));
}
END_TEST

START_TEST(nesting_is_bounded_like_jansson) {
  size_t n = 3000;
  char *text = malloc(2 * n + 8);
  size_t len = 0;
  text[len++] = '{';
  text[len++] = '"';
  text[len++] = 'a';
  text[len++] = '"';
  text[len++] = ':';
  for (size_t i = 0; i < n; i++) text[len++] = '[';
  for (size_t i = 0; i < n; i++) text[len++] = ']';
  text[len++] = '}';
  vd_error err = {0};
  ck_assert(!vd_json_check_object(text, len, NULL, NULL, NULL, &err));
  ck_assert_ptr_nonnull(strstr(err.message, "nesting too deep"));
  ck_assert_int_eq(jansson_verdict(text, len), 0);
  free(text);
}
END_TEST

START_TEST(gives_the_top_level_member) {
  const char *text = "{\"x\":{\"id\":\"inner\"},\"id\":\"01234\",\"y\":[\"id\"]}";
  const char *v = NULL;
  size_t n = 0;
  vd_error err = {0};
  ck_assert(vd_json_check_object(text, strlen(text), "id", &v, &n, &err));
  ck_assert_uint_eq(n, 5);
  ck_assert(memcmp(v, "01234", 5) == 0);
  /* the last of duplicate keys, as jansson keeps it; absent or not a string: NULL */
  const char *dup = "{\"id\":\"first\",\"id\":\"second\"}";
  ck_assert(vd_json_check_object(dup, strlen(dup), "id", &v, &n, &err));
  ck_assert(n == 6 && memcmp(v, "second", 6) == 0);
  const char *num = "{\"id\":\"a\",\"id\":7}";
  ck_assert(vd_json_check_object(num, strlen(num), "id", &v, &n, &err));
  ck_assert_ptr_null(v);
  ck_assert(vd_json_check_object("{\"x\":1}", 7, "id", &v, &n, &err));
  ck_assert_ptr_null(v);
  /* an error names its byte */
  ck_assert(!vd_json_check_object("{\"a\":1},{}", 10, "id", &v, &n, &err));
  ck_assert_ptr_nonnull(strstr(err.message, "more after the object at byte 7"));
}
END_TEST

/* Random damage to a real trace: the checker and jansson agree on every variant. */
START_TEST(agrees_with_jansson_on_damaged_traces) {
  vd_error err = {0};
  size_t size = 0;
  char *trace =
      vd_read_file(VERDICT_SOURCE_DIR "/bench/data/promotions_trace.json", 1 << 20, &size, &err);
  ck_assert_msg(trace, "%s", err.message);
  ck_assert(check(trace, size));
  ck_assert_int_eq(jansson_verdict(trace, size), 1);
  static const char alphabet[] = "{}[]\",:\\0123456789.eE+-tfnul \x01\x80\xc3\xff";
  char *text = malloc(size + 8);
  unsigned seed = 20261203;
  int rounds = getenv("VERDICT_UNDER_SANITIZER") ? 3000 : 30000;
  int refused = 0;
  for (int r = 0; r < rounds; r++) {
    memcpy(text, trace, size);
    size_t len = size;
    int edits = 1 + rand_r(&seed) % 3;
    for (int e = 0; e < edits; e++) {
      size_t at = (size_t)rand_r(&seed) % len;
      char c = alphabet[(size_t)rand_r(&seed) % (sizeof alphabet - 1)];
      switch (rand_r(&seed) % 3) {
        case 0: /* replace */
          text[at] = c;
          break;
        case 1: /* delete */
          memmove(text + at, text + at + 1, len - at - 1);
          len--;
          break;
        default: /* insert */
          memmove(text + at + 1, text + at, len - at);
          text[at] = c;
          len++;
      }
    }
    int want = jansson_verdict(text, len);
    if (want < 0) continue;
    ck_assert_msg(check(text, len) == (want == 1), "round %d: checker and jansson disagree", r);
    refused += want == 0;
  }
  ck_assert_int_gt(refused, rounds / 4); /* the damage did break most variants */
  free(text);
  free(trace);
}
END_TEST

int main(void) {
  Suite *s = suite_create("json_check");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, accepts_what_jansson_accepts_as_an_object);
  tcase_add_test(tc, nesting_is_bounded_like_jansson);
  tcase_add_test(tc, gives_the_top_level_member);
  tcase_add_test(tc, agrees_with_jansson_on_damaged_traces);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
