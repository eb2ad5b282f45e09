/* The JSON Schema subset's applicators for documents of several shapes (the decision trace, one
 * shape per kind): const, allOf, if/then/else and $ref to the root's $defs — each reports the
 * violation at the instance's path, and check refuses a dangling or cyclic reference. (The other
 * keywords: tests/llm/test_json_schema.c.) */
#include <string.h>

#include "vd_buf.h"
#include "vd_json_schema.h"
#include "vd_test.h"

static json_t *parse(const char *text) {
  json_error_t e;
  json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
  ck_assert_msg(v != NULL, "bad test JSON: %s: %s", e.text, text);
  return v;
}

/* The diagnostics joined as "field: message; ..." ("" when valid). */
static char *errors_of(const json_t *schema, const char *instance_text) {
  json_t *instance = parse(instance_text);
  vd_diags diags = {0};
  bool ok = vd_json_schema_validate(schema, instance, &diags);
  ck_assert(ok == (diags.count == 0));
  vd_buf b = {0};
  for (size_t i = 0; i < diags.count; i++)
    vd_buf_printf(&b, "%s%s: %s", i ? "; " : "", diags.items[i].field, diags.items[i].message);
  vd_buf_puts(&b, "");
  vd_diags_free(&diags);
  json_decref(instance);
  return vd_buf_take(&b);
}

#define EXPECT(schema, instance, want)      \
  do {                                      \
    char *e_ = errors_of(schema, instance); \
    ck_assert_str_eq(e_, want);             \
    free(e_);                               \
  } while (0)

/* Two shapes told apart by "kind", sharing a definition. */
static const char shapes[] =
    "{\"type\": \"object\", \"required\": [\"kind\"],"
    " \"properties\": {\"kind\": {\"enum\": [\"a\", \"b\"]}},"
    " \"allOf\": ["
    "  {\"if\": {\"properties\": {\"kind\": {\"const\": \"a\"}}}, \"then\": {\"$ref\": "
    "\"#/$defs/a\"}},"
    "  {\"if\": {\"properties\": {\"kind\": {\"const\": \"b\"}}}, \"then\": {\"$ref\": "
    "\"#/$defs/b\"}}],"
    " \"$defs\": {"
    "  \"version\": {\"type\": \"string\", \"minLength\": 3},"
    "  \"a\": {\"required\": [\"kind\", \"x\"], \"additionalProperties\": false,"
    "         \"properties\": {\"kind\": {}, \"x\": {\"$ref\": \"#/$defs/version\"}}},"
    "  \"b\": {\"required\": [\"kind\", \"y\"], \"additionalProperties\": false,"
    "         \"properties\": {\"kind\": {}, \"y\": {\"type\": \"integer\", \"const\": 7}}}}}";

START_TEST(the_discriminator_picks_the_shape_and_reports_its_violations) {
  json_t *s = parse(shapes);
  vd_error err = {0};
  ck_assert_msg(vd_json_schema_check(s, &err), "%s: %s", err.field, err.message);
  EXPECT(s, "{\"kind\": \"a\", \"x\": \"abc\"}", "");
  EXPECT(s, "{\"kind\": \"b\", \"y\": 7}", "");
  /* a's rules for a, through the shared definition */
  EXPECT(s, "{\"kind\": \"a\", \"x\": \"ab\"}",
         "x: string of 2 characters is shorter than minLength 3");
  EXPECT(s, "{\"kind\": \"a\", \"y\": 7}",
         "x: required field is missing; y: unexpected field (allowed: only the declared "
         "properties)");
  /* b's rules for b; const */
  EXPECT(s, "{\"kind\": \"b\", \"y\": 8}", "y: expected 7, got 8");
  EXPECT(s, "{\"kind\": \"b\", \"y\": \"7\"}",
         "y: expected 7, got \"7\"; y: expected integer, got string");
  /* an unknown kind: only the enum */
  EXPECT(s, "{\"kind\": \"c\"}", "kind: \"c\" is not one of [\"a\",\"b\"]");
  json_decref(s);
  /* else: the branch taken when the condition fails */
  s = parse(
      "{\"if\": {\"type\": \"string\"}, \"then\": {\"minLength\": 2}, \"else\": "
      "{\"minimum\": 0}}");
  ck_assert(vd_json_schema_check(s, &err));
  EXPECT(s, "\"a\"", "(root): string of 1 characters is shorter than minLength 2");
  EXPECT(s, "-1", "(root): -1 is below the minimum 0");
  EXPECT(s, "5", "");
  json_decref(s);
}
END_TEST

START_TEST(check_refuses_dangling_and_cyclic_references) {
  static const char cycle[] =
      "{\"$defs\": {\"a\": {\"$ref\": \"#/$defs/b\"}, \"b\": {\"allOf\": [{\"$ref\": "
      "\"#/$defs/a\"}]}}, \"$ref\": \"#/$defs/a\"}";
  const char *bad[] = {
      "{\"$ref\": \"#/$defs/missing\"}",
      "{\"$ref\": \"other.json#/x\"}",
      cycle,
      "{\"properties\": {\"x\": {\"$defs\": {}}}}",
      "{\"then\": {}}",
      "{\"allOf\": []}",
  };
  const char *want[] = {"#/$defs/missing", "other.json#/x", "cycle",
                        "only the root",   "no \"if\"",     "non-empty list"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    json_t *s = parse(bad[i]);
    vd_error err = {0};
    ck_assert_msg(!vd_json_schema_check(s, &err), "accepted %s", bad[i]);
    ck_assert_msg(strstr(err.message, want[i]), "%s: %s", bad[i], err.message);
    json_decref(s);
  }
  /* a recursive definition that descends into the instance is fine */
  json_t *tree = parse(
      "{\"$ref\": \"#/$defs/node\", \"$defs\": {\"node\": {\"type\": \"object\", \"properties\": "
      "{\"kids\": {\"type\": \"array\", \"items\": {\"$ref\": \"#/$defs/node\"}}}}}}");
  vd_error err = {0};
  ck_assert_msg(vd_json_schema_check(tree, &err), "%s", err.message);
  EXPECT(tree, "{\"kids\": [{\"kids\": []}, {\"kids\": [{}]}]}", "");
  EXPECT(tree, "{\"kids\": [{\"kids\": [3]}]}", "kids[0].kids[0]: expected object, got integer");
  json_decref(tree);
}
END_TEST

int main(void) {
  Suite *s = suite_create("json_schema_applicators");
  TCase *tc = tcase_create("applicators");
  tcase_add_test(tc, the_discriminator_picks_the_shape_and_reports_its_violations);
  tcase_add_test(tc, check_refuses_dangling_and_cyclic_references);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
