/* `verdict expr`: typed results, evaluation errors (exit 0), syntax errors and bad arguments
 * (exit 2 with the message and a caret), --help. Calls the verb function directly. */
#include <stdlib.h>
#include <string.h>

#include "vd_cel.h"
#include "vd_test.h"

int vd_verb_expr(int argc, char **argv, FILE *out, FILE *err);

typedef struct outcome {
  int rc;
  char *out, *err;
} outcome;

static outcome expr(const char *a1, const char *a2, const char *a3) {
  char *argv[5] = {"expr", (char *)a1, (char *)a2, (char *)a3, NULL};
  int argc = 1 + (a1 != NULL) + (a2 != NULL) + (a3 != NULL);
  outcome o;
  size_t n1, n2;
  FILE *out = open_memstream(&o.out, &n1), *err = open_memstream(&o.err, &n2);
  o.rc = vd_verb_expr(argc, argv, out, err);
  fclose(out);
  fclose(err);
  return o;
}

static void done(outcome *o) {
  free(o->out);
  free(o->err);
}

START_TEST(typed_result) {
  outcome o = expr("x + 1", "--vars", "{\"x\": {\"type\": \"int\", \"value\": 2}}");
  ck_assert_int_eq(o.rc, 0);
  ck_assert_str_eq(o.out, "{\"type\":\"int\",\"value\":3}\n");
  done(&o);
  o = expr("subject.recency > 2 && subject.tags.exists(t, t == 'vip')", "--vars",
           "{\"subject.recency\": {\"type\": \"int\", \"value\": 3}, \"subject.tags\": {\"type\": "
           "\"list\", \"value\": [{\"type\": \"string\", \"value\": \"vip\"}]}}");
  ck_assert_int_eq(o.rc, 0);
  ck_assert_str_eq(o.out, "{\"type\":\"bool\",\"value\":true}\n");
  done(&o);
  o = expr("{'k': b'\\xff'}", NULL, NULL);
  ck_assert_str_eq(o.out,
                   "{\"type\":\"map\",\"value\":[[{\"type\":\"string\",\"value\":\"k\"},"
                   "{\"type\":\"bytes\",\"value\":\"/w==\"}]]}\n");
  done(&o);
}
END_TEST

START_TEST(evaluation_error_is_exit_0) {
  outcome o = expr("1 / 0", NULL, NULL);
  ck_assert_int_eq(o.rc, 0);
  ck_assert_str_eq(o.out, "{\"error\":\"division by zero\"}\n");
  done(&o);
}
END_TEST

START_TEST(syntax_error_is_exit_2_with_caret) {
  outcome o = expr("1 +\n  (2 * ", NULL, NULL);
  ck_assert_int_eq(o.rc, 2);
  ck_assert_str_eq(o.out, "");
  ck_assert_str_eq(o.err,
                   "verdict expr: <expr>:2:8: unexpected end of expression\n    (2 * \n"
                   "         ^\n");
  done(&o);
  o = expr("y > 1", "--vars", "{\"x\": {\"type\": \"int\", \"value\": 2}}");
  ck_assert_int_eq(o.rc, 2);
  ck_assert(strstr(o.err, "1:1: undeclared reference to 'y'"));
  done(&o);
}
END_TEST

START_TEST(bad_arguments_are_exit_2) {
  outcome o = expr(NULL, NULL, NULL);
  ck_assert_int_eq(o.rc, 2);
  ck_assert(strstr(o.err, "expected one expression"));
  done(&o);
  o = expr("1", "--vars", "{not json");
  ck_assert_int_eq(o.rc, 2);
  ck_assert(strstr(o.err, "--vars:"));
  done(&o);
  o = expr("x", "--vars", "{\"x\": {\"type\": \"int\", \"value\": \"three\"}}");
  ck_assert_int_eq(o.rc, 2);
  ck_assert_msg(strstr(o.err, "--vars: x: $: int value must be an integer"), "%s", o.err);
  done(&o);
  o = expr("1", "--frob", NULL);
  ck_assert_int_eq(o.rc, 2);
  done(&o);
  o = expr("--help", NULL, NULL);
  ck_assert_int_eq(o.rc, 0);
  ck_assert(strstr(o.out, "usage: verdict expr EXPR [--vars JSON]"));
  done(&o);
}
END_TEST

int main(void) {
  Suite *s = suite_create("cel_expr_verb");
  TCase *tc = tcase_create("expr");
  tcase_add_test(tc, typed_result);
  tcase_add_test(tc, evaluation_error_is_exit_0);
  tcase_add_test(tc, syntax_error_is_exit_2_with_caret);
  tcase_add_test(tc, bad_arguments_are_exit_2);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
