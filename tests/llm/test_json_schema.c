/* The JSON Schema subset: every keyword accepts what it should and reports what it should not,
 * with the field path; unsupported keywords are refused at check time. */
#include <string.h>

#include "vd_buf.h"
#include "vd_json_schema.h"
#include "vd_test.h"

static json_t *parse(const char *text) {
  json_error_t e;
  json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
  ck_assert_msg(v != NULL, "bad test JSON: %s", e.text);
  return v;
}

/* Validates and returns the diagnostics joined as "field: message; ...". */
static char *errors_of(const char *schema_text, const char *instance_text) {
  json_t *schema = parse(schema_text);
  json_t *instance = parse(instance_text);
  vd_error err;
  ck_assert_msg(vd_json_schema_check(schema, &err), "schema refused: %s", err.message);
  vd_diags diags = {0};
  bool ok = vd_json_schema_validate(schema, instance, &diags);
  ck_assert(ok == (diags.count == 0));
  vd_buf b = {0};
  for (size_t i = 0; i < diags.count; i++)
    vd_buf_printf(&b, "%s%s: %s", i ? "; " : "", diags.items[i].field, diags.items[i].message);
  vd_buf_puts(&b, "");
  vd_diags_free(&diags);
  json_decref(schema);
  json_decref(instance);
  return vd_buf_take(&b);
}

#define EXPECT_VALID(s, i)                              \
  do {                                                  \
    char *e_ = errors_of(s, i);                         \
    ck_assert_msg(e_[0] == '\0', "unexpected: %s", e_); \
    free(e_);                                           \
  } while (0)

#define EXPECT_ERRORS(s, i, want) \
  do {                            \
    char *e_ = errors_of(s, i);   \
    ck_assert_str_eq(e_, want);   \
    free(e_);                     \
  } while (0)

static const char person[] =
    "{\"type\":\"object\",\"required\":[\"name\",\"age\"],\"additionalProperties\":false,"
    "\"properties\":{\"name\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":5},"
    "\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":130},"
    "\"tags\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":2,\"items\":{\"enum\":[\"a\",\"b\"]}}"
    ","
    "\"nick\":{\"type\":[\"string\",\"null\"]}}}";

START_TEST(test_valid_documents) {
  EXPECT_VALID(person, "{\"name\":\"Ann\",\"age\":30}");
  EXPECT_VALID(person, "{\"name\":\"Zoë\",\"age\":30.0,\"tags\":[\"a\",\"b\"],\"nick\":null}");
  EXPECT_VALID("{\"type\":\"number\"}", "3");
  EXPECT_VALID("{}", "{\"anything\":[1,2]}");
  EXPECT_VALID("{\"additionalProperties\":{\"type\":\"integer\"}}", "{\"x\":1,\"y\":2}");
}
END_TEST

START_TEST(test_violations_with_paths) {
  EXPECT_ERRORS(person, "{\"age\":-1,\"extra\":true}",
                "name: required field is missing; age: -1 is below the minimum 0; "
                "extra: unexpected field (allowed: only the declared properties)");
  EXPECT_ERRORS(person, "{\"name\":\"A\",\"age\":1.5}",
                "name: string of 1 characters is shorter than minLength 2; "
                "age: expected integer, got number");
  EXPECT_ERRORS(person, "{\"name\":\"Abcdef\",\"age\":131,\"tags\":[]}",
                "name: string of 6 characters is longer than maxLength 5; "
                "age: 131 is above the maximum 130; tags: 0 items, fewer than minItems 1");
  EXPECT_ERRORS(person, "{\"name\":\"Ann\",\"age\":3,\"tags\":[\"a\",\"c\",\"b\"],\"nick\":4}",
                "tags: 3 items, more than maxItems 2; tags[1]: \"c\" is not one of [\"a\",\"b\"]; "
                "nick: expected string or null, got integer");
  EXPECT_ERRORS(person, "[1]", "(root): expected object, got array");
  EXPECT_ERRORS(
      "{\"items\":{\"properties\":{\"d\":{\"type\":\"array\",\"items\":{\"type\":\"boolean\"}}}}}",
      "[{\"d\":[true]},{\"d\":[false,0]}]", "[1].d[1]: expected boolean, got integer");
}
END_TEST

START_TEST(test_check_refuses_unsupported) {
  const char *bad[] = {"{\"oneOf\":[]}",
                       "{\"type\":\"int\"}",
                       "{\"required\":\"x\"}",
                       "{\"minItems\":-1}",
                       "{\"properties\":{\"a\":{\"pattern\":\"x\"}}}",
                       "{\"enum\":[]}",
                       "[]"};
  const char *want[] = {"unsupported keyword \"oneOf\"",
                        "unknown type \"int\"",
                        "list of names",
                        "non-negative integer",
                        "unsupported keyword \"pattern\"",
                        "non-empty list",
                        "expected an object"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    json_t *s = parse(bad[i]);
    vd_error err;
    ck_assert_msg(!vd_json_schema_check(s, &err), "accepted %s", bad[i]);
    ck_assert_msg(strstr(err.message, want[i]), "%s: %s", bad[i], err.message);
    json_decref(s);
  }
  json_t *s = parse("{\"properties\":{\"a\":{\"pattern\":\"x\"}}}");
  vd_error err;
  vd_json_schema_check(s, &err);
  ck_assert_str_eq(err.field, "properties.a");
  json_decref(s);
}
END_TEST

int main(void) {
  Suite *s = suite_create("json_schema");
  TCase *tc = tcase_create("subset");
  tcase_add_test(tc, test_valid_documents);
  tcase_add_test(tc, test_violations_with_paths);
  tcase_add_test(tc, test_check_refuses_unsupported);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
