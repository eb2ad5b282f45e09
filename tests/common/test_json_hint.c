/* vd_json_hint: each usual hand-editing mistake gets its cause named, from jansson's own error. */
#include <string.h>

#include "vd_json_hint.h"
#include "vd_test.h"

typedef struct hint_case {
  const char *text;
  size_t size; /* 0: strlen(text) */
  const char *hint;
} hint_case;

static const hint_case cases[] = {
    {"{\"a\": 1,}", 0, "a trailing comma before '}'?"},
    {"[1, 2,]", 0, "a trailing comma before ']'?"},
    {"{\"a\": [1, 2,]}", 0, "a trailing comma before ']'?"},
    {"{\"a\": \"abc", 0, "an unterminated string (no closing '\"')?"},
    {"{\"a\": 1", 0, "the body ends inside an object: a missing '}', or a cut-off body?"},
    {"[1, 2", 0, "the body ends inside an array: a missing ']', or a cut-off body?"},
    {"{'a': 1}", 0, "keys and strings take double quotes, not '"},
    {"{\"a\": 'x'}", 0, "strings take double quotes, not '"},
    {"{a: 1}", 0, "object keys must be strings in double quotes"},
    {"{\"a\": 1 \"b\": 2}", 0, "a missing ',' between members?"},
    {"[1 2]", 0, "a missing ',' between elements?"},
    {"{\"a\" 1}", 0, "a missing ':' after the key?"},
    {"{\"a\": }", 0, "a value is missing after ':'"},
    {"{\"a\": True}", 0, "JSON's literals are lower case: true, false, null"},
    {"{\"a\": NaN}", 0, "JSON has no NaN: use null or a number"},
    {"{\"a\": web}", 0, "text values must be strings in double quotes"},
    {"{\"a\": 1} // note", 0, "JSON has no comments"},
    {"{\"a\": 1} {\"b\": 2}", 0, "more text after the JSON value (one value per body)"},
    {"{\"a\": 1}\0", 9, "a NUL byte in the body"},
    {"{\"a\": \"x\ny\"}", 0,
     "a raw line break or control character inside a string: escape it (\\n, \\t, \\u0000)"},
    {"{\"a\": \"\\q\"}", 0,
     "valid escapes are \\\" \\\\ \\/ \\b \\f \\n \\r \\t and \\u with four hex digits"},
    {"{\"a\": [1, 2}", 0, "a '}' closes an array opened with '['"},
    {"{\"a\": {\"b\": 1]}", 0, "a ']' closes an object opened with '{'"},
    {"{\"a\": 01}", 0, "numbers have no leading zeros"},
    {"{\"a\": .5}", 0, "a number needs a digit before '.' (0.5)"},
    {"{\"a\": 99999999999999999999}", 0, "numbers must fit a 64-bit integer or a double"},
    {"{\"a\": \"\xff\"}", 0, "the body must be UTF-8"},
    {"{\"a\": 1, \"a\": 2}", 0, "each key may appear once in an object"},
    {"", 0, "the body is empty"},
    {"  \n", 0, "the body is empty"},
};

START_TEST(each_mistake_gets_its_hint) {
  const hint_case *c = &cases[_i];
  size_t size = c->size ? c->size : strlen(c->text);
  json_error_t err;
  json_t *doc = json_loadb(c->text, size, JSON_REJECT_DUPLICATES, &err);
  ck_assert_msg(doc == NULL, "%s parsed", c->text);
  char hint[160];
  ck_assert_msg(vd_json_error_hint(c->text, size, &err, hint, sizeof hint), "%s (%s): no hint",
                c->text, err.text);
  ck_assert_msg(strcmp(hint, c->hint) == 0, "%s (%s): '%s', want '%s'", c->text, err.text, hint,
                c->hint);
}
END_TEST

START_TEST(a_small_buffer_is_truncated_not_overrun) {
  json_error_t err;
  ck_assert_ptr_null(json_loads("{\"a\": 1,}", 0, &err));
  char hint[8];
  ck_assert(vd_json_error_hint("{\"a\": 1,}", 9, &err, hint, sizeof hint));
  ck_assert_str_eq(hint, "a trail");
}
END_TEST

int main(void) {
  Suite *s = suite_create("json_hint");
  TCase *tc = tcase_create("json_hint");
  tcase_add_loop_test(tc, each_mistake_gets_its_hint, 0, (int)(sizeof cases / sizeof cases[0]));
  tcase_add_test(tc, a_small_buffer_is_truncated_not_overrun);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
