/* The strict YAML loader: values, refusals with positions, and position look-ups. */
#include <string.h>

#include "vd_test.h"
#include "vd_yaml.h"

static vd_yaml_doc *load(const char *text, vd_error *err) {
  return vd_yaml_load_string(text, strlen(text), "t.yaml", err);
}

static void expect_error(const char *text, int line, int column, const char *needle) {
  vd_error err;
  vd_yaml_doc *doc = load(text, &err);
  ck_assert_msg(doc == NULL, "expected an error for: %s", text);
  ck_assert_str_eq(err.file, "t.yaml");
  ck_assert_int_eq(err.line, line);
  ck_assert_int_eq(err.column, column);
  ck_assert_msg(strstr(err.message, needle), "message '%s' lacks '%s'", err.message, needle);
}

/* Syntax errors point at what the user wrote, not where libyaml noticed them (the line after). */
START_TEST(syntax_errors_point_at_the_line_written) {
  /* an unclosed brace, quote or bracket, a key without ':': the opening (libyaml's context) */
  expect_error("a: {b: 1\nc: 2\n", 1, 4,
               "while parsing a flow mapping that starts here (noticed at line 2, column 2)");
  expect_error("a: 'x\nb: 1\n", 1, 4,
               "found unexpected end of stream while scanning a quoted scalar that starts here "
               "(noticed at line 3, column 1)");
  expect_error("a: [1, 2\n\n", 1, 4, "while parsing a flow sequence that starts here");
  expect_error("a: 1\nb\n\n\n", 2, 1,
               "could not find expected ':' while scanning a simple key that starts here");
  /* noticed at the start of a blank line or past the end: the end of the last line written */
  expect_error("a: 1\n%YAML 1.1\n\n", 2, 10, "did not find expected <document start>");
  /* noticed at the start of the line that is wrong: that line, as libyaml says */
  expect_error("a: b\n- c\n", 2, 1, "did not find expected key while parsing a block mapping");
  expect_error("a:\n  b: 1\n c: 2\n", 3, 2, "did not find expected key");
  /* libyaml's words come with what a person usually did (the new-user trial's two cases) */
  expect_error("rules:\n  - id: a\n    stage: x\n      when: y\n", 4, 11,
               "mapping values are not allowed in this context (a ':' where none can be: is "
               "this line indented deeper");
  expect_error("a: { deny: \"x }\nb: 1\n", 1, 12, "(a quote never closed?)");
  expect_error("a: {b: 1\nc: 2\n", 1, 4, "(a quote or a '{' never closed");
  expect_error("a: 'x\nb: 1\n", 1, 4, "(a quote never closed?)");
  expect_error("a:\n\t- b\n", 2, 1, "(a tab? YAML indents with spaces only");
}
END_TEST

START_TEST(scalars_get_strict_types) {
  vd_error err;
  vd_yaml_doc *doc = load(
      "a: true\nb: no\nc: 12\nd: -3.5\ne: ~\nf:\ng: '12'\nh: 1e3\ni: yes\nj: 0\nk: 0.25\n", &err);
  ck_assert_ptr_nonnull(doc);
  json_t *r = vd_yaml_root(doc);
  ck_assert(json_is_true(json_object_get(r, "a")));
  ck_assert_str_eq(json_string_value(json_object_get(r, "b")), "no");
  ck_assert_int_eq(json_integer_value(json_object_get(r, "c")), 12);
  ck_assert(json_is_real(json_object_get(r, "d")));
  ck_assert(json_is_null(json_object_get(r, "e")));
  ck_assert(json_is_null(json_object_get(r, "f")));
  ck_assert_str_eq(json_string_value(json_object_get(r, "g")), "12");
  ck_assert(json_is_real(json_object_get(r, "h")));
  ck_assert_str_eq(json_string_value(json_object_get(r, "i")), "yes");
  ck_assert_int_eq(json_integer_value(json_object_get(r, "j")), 0);
  ck_assert(json_real_value(json_object_get(r, "k")) == 0.25);
  vd_yaml_free(doc);
}
END_TEST

START_TEST(duplicate_keys_are_refused) {
  expect_error("rules:\n  - id: a\n    id: b\n", 3, 5,
               "duplicate key 'id' (first defined at line 2)");
}
END_TEST

START_TEST(anchors_aliases_tags_refused) {
  expect_error("a: &x 1\nb: *x\n", 1, 4, "anchors");
  expect_error("a: !!str 1\n", 1, 4, "tags");
}
END_TEST

START_TEST(leading_zero_and_range_refused) {
  expect_error("zip: 02134\n", 1, 6, "leading zero");
  expect_error("n: 99999999999999999999\n", 1, 4, "64-bit range");
}
END_TEST

START_TEST(bad_indentation_has_position) {
  vd_error err;
  ck_assert_ptr_null(load("rules:\n  - id: a\n   when: x\n", &err));
  ck_assert_int_eq(err.line, 3);
  ck_assert(err.column > 0);
}
END_TEST

START_TEST(multiple_documents_refused) {
  expect_error("a: 1\n---\nb: 2\n", 2, 1, "one YAML document");
}
END_TEST

START_TEST(positions_of_values_and_keys) {
  vd_error err;
  vd_yaml_doc *doc = load("ruleset: p\nrules:\n  - id: opt\n    when: subject.x\n", &err);
  ck_assert_ptr_nonnull(doc);
  json_t *rules = json_object_get(vd_yaml_root(doc), "rules");
  json_t *rule = json_array_get(rules, 0);
  int line, column;
  ck_assert(vd_yaml_where(doc, rule, "when", 0, &line, &column));
  ck_assert_int_eq(line, 4);
  ck_assert_int_eq(column, 11);
  ck_assert(vd_yaml_where_key(doc, rule, "when", &line, &column));
  ck_assert_int_eq(column, 5);
  ck_assert(vd_yaml_where(doc, rules, NULL, 0, &line, &column));
  ck_assert_int_eq(line, 3);
  ck_assert_int_eq(column, 5);
  ck_assert(vd_yaml_where_in_scalar(doc, rule, "when", 0, 8, &line, &column));
  ck_assert_int_eq(line, 4);
  ck_assert_int_eq(column, 19);
  vd_error e;
  vd_yaml_error(doc, rule, "id", 0, &e, "duplicate id '%s'", "opt");
  ck_assert_int_eq(e.line, 3);
  ck_assert_int_eq(e.column, 9);
  size_t len;
  const char *src = vd_yaml_source_line(doc, 4, &len);
  ck_assert_int_eq((int)len, 19);
  ck_assert_int_eq(strncmp(src, "    when: subject.x", 19), 0);
  vd_yaml_free(doc);
}
END_TEST

START_TEST(positions_inside_block_and_quoted_scalars) {
  vd_error err;
  vd_yaml_doc *doc = load("a: |\n  x > 1 &&\n    y < 2\nb: \"q + r\"\n", &err);
  ck_assert_ptr_nonnull(doc);
  json_t *r = vd_yaml_root(doc);
  int line, column;
  /* offset 11 is 'y' on the second content line: "x > 1 &&\n  y < 2" */
  ck_assert(vd_yaml_where_in_scalar(doc, r, "a", 0, 11, &line, &column));
  ck_assert_int_eq(line, 3);
  ck_assert_int_eq(column, 5);
  ck_assert(vd_yaml_where_in_scalar(doc, r, "b", 0, 4, &line, &column));
  ck_assert_int_eq(line, 4);
  ck_assert_int_eq(column, 9);
  vd_yaml_free(doc);
}
END_TEST

START_TEST(deep_nesting_is_bounded) {
  char text[4000];
  size_t n = 0;
  for (int i = 0; i < 300; i++) text[n++] = '[';
  text[n] = '\0';
  vd_error err;
  ck_assert_ptr_null(load(text, &err));
}
END_TEST

START_TEST(missing_file_is_an_error) {
  vd_error err;
  ck_assert_ptr_null(vd_yaml_load_file("/nonexistent/x.yaml", &err));
  ck_assert_ptr_nonnull(strstr(err.message, "cannot open /nonexistent/x.yaml"));
}
END_TEST

int main(void) {
  Suite *s = suite_create("yaml");
  TCase *tc = tcase_create("strict");
  tcase_add_test(tc, scalars_get_strict_types);
  tcase_add_test(tc, duplicate_keys_are_refused);
  tcase_add_test(tc, anchors_aliases_tags_refused);
  tcase_add_test(tc, leading_zero_and_range_refused);
  tcase_add_test(tc, bad_indentation_has_position);
  tcase_add_test(tc, multiple_documents_refused);
  tcase_add_test(tc, positions_of_values_and_keys);
  tcase_add_test(tc, positions_inside_block_and_quoted_scalars);
  tcase_add_test(tc, deep_nesting_is_bounded);
  tcase_add_test(tc, missing_file_is_an_error);
  tcase_add_test(tc, syntax_errors_point_at_the_line_written);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
