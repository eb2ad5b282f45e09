/* vd_number reads a number written as text exactly as jansson reads one in a JSON body: the same
 * texts accepted, with the same kind (integer or real) and value, the same refused — so a CSV
 * cell and a JSON line agree — and each refusal says why. */
#include <float.h>
#include <jansson.h>
#include <string.h>

#include "vd_number.h"
#include "vd_test.h"

/* Texts with nothing around them (jansson skips whitespace around a whole document, so spaces
 * are checked apart, below). */
static const char *const texts[] = {"0",
                                    "-0",
                                    "7",
                                    "-12",
                                    "329.08",
                                    "0.1",
                                    "1e5",
                                    "1E+5",
                                    "2.5e-3",
                                    "-0.0",
                                    "9223372036854775807",
                                    "-9223372036854775808",
                                    "9223372036854775808",     /* one past int64 */
                                    "4.9406564584124654e-324", /* the least subnormal */
                                    "2.2250738585072009e-308", /* the largest one */
                                    "2.2250738585072014e-308", /* DBL_MIN */
                                    "1.7976931348623157e308",  /* DBL_MAX */
                                    "1e-400",                  /* rounds to 0 */
                                    "1e400",
                                    "-1e400",
                                    "0x10",
                                    "0X1F",
                                    "-0x10",
                                    "+5",
                                    "07",
                                    "-07",
                                    "00",
                                    ".5",
                                    "5.",
                                    "-",
                                    "1e",
                                    "1e+",
                                    "inf",
                                    "-inf",
                                    "nan",
                                    "NaN",
                                    "Infinity",
                                    "1.5.2",
                                    "12abc",
                                    "1,5",
                                    "--1",
                                    "e5",
                                    "0.",
                                    "1_000",
                                    "true",
                                    "\"5\"",
                                    ""};

START_TEST(texts_agree_with_a_json_body) {
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    const char *t = texts[i];
    json_error_t jerr;
    json_t *j = json_loadb(t, strlen(t), JSON_DECODE_ANY, &jerr);
    bool json_ok = json_is_number(j);
    vd_number n;
    vd_error err = {0};
    bool ok = vd_number_parse(t, strlen(t), &n, &err);
    ck_assert_msg(ok == json_ok, "\"%s\": vd_number %s, a JSON body %s (%s)", t,
                  ok ? "accepts" : "refuses", json_ok ? "accepts" : "refuses",
                  ok ? jerr.text : err.message);
    if (ok) {
      ck_assert_msg(n.is_integer == json_is_integer(j), "\"%s\": kind differs", t);
      if (n.is_integer) ck_assert_int_eq(n.integer, json_integer_value(j));
      ck_assert_msg(
          n.real == json_number_value(j) && signbit(n.real) == signbit(json_number_value(j)),
          "\"%s\": %.17g, JSON %.17g", t, n.real, json_number_value(j));
    } else {
      ck_assert_msg(strlen(err.message) > 10, "\"%s\": no reason", t);
    }
    json_decref(j);
  }
}
END_TEST

START_TEST(subnormals_and_extremes_keep_their_value) {
  vd_number n;
  vd_error err = {0};
  ck_assert(vd_number_parse("4.9406564584124654e-324", 23, &n, &err));
  ck_assert(!n.is_integer && n.real == DBL_TRUE_MIN);
  ck_assert(vd_number_parse("1.7976931348623157e308", 22, &n, &err));
  ck_assert(n.real == DBL_MAX);
  ck_assert(vd_number_parse("-9223372036854775808", 20, &n, &err));
  ck_assert(n.is_integer && n.integer == INT64_MIN);
}
END_TEST

START_TEST(refusals_say_why) {
  static const struct {
    const char *text;
    size_t len;
    const char *why;
  } cases[] = {
      {"0x10", 4, "hexadecimal is not a JSON number: write it in decimal"},
      {"+5", 2, "a leading '+'"},
      {"07", 2, "a leading zero (write 7, not 07)"},
      {".5", 2, "no digit before the '.'"},
      {"5.", 2, "no digit after the '.'"},
      {"1e", 2, "no digits in the exponent"},
      {"inf", 3, "infinity and NaN are not JSON numbers"},
      {" 5", 2, "spaces around the number"},
      {"5 ", 2, "spaces around the number"},
      {"12\0abc", 6, "a NUL byte inside the number"},
      {"12abc", 5, "unexpected text after the number"},
      {"1e400", 5, "beyond the range of a double"},
      {"9223372036854775808", 19, "beyond the 64-bit integer range"},
      {"", 0, "no digits"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    vd_number n;
    vd_error err = {0};
    ck_assert_msg(!vd_number_parse(cases[i].text, cases[i].len, &n, &err), "%s accepted",
                  cases[i].text);
    ck_assert_msg(strstr(err.message, cases[i].why), "%s: '%s' lacks '%s'", cases[i].text,
                  err.message, cases[i].why);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("number");
  TCase *tc = tcase_create("number");
  tcase_add_test(tc, texts_agree_with_a_json_body);
  tcase_add_test(tc, subnormals_and_extremes_keep_their_value);
  tcase_add_test(tc, refusals_say_why);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
