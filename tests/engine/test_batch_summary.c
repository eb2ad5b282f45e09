/* The batch summary: decisions by action, fallbacks, rejected rows grouped by reason; and the
 * output line of a rejected row. */
#include <stdlib.h>
#include <string.h>

#include "vd_batch.h"
#include "vd_test.h"

static json_t *response(const char *a1, const char *a2, const char *fallback) {
  json_t *r = json_pack("{s:s, s:[{s:s}, {s:s}]}", "decision_id", "x", "results", "action", a1,
                        "action", a2);
  json_object_set_new(
      r, "fallback",
      fallback ? json_pack("{s:s, s:s}", "reason", fallback, "message", "m") : json_null());
  return r;
}

static void add_problem(vd_diags *d, const char *field, const char *message) {
  vd_error e = {0};
  vd_error_field(&e, field, "%s", message);
  vd_diags_add(d, &e);
}

START_TEST(counts_actions_fallbacks_and_reasons) {
  vd_batch_summary *s = vd_batch_summary_new();
  json_t *r1 = response("offer", "deny", NULL), *r2 = response("offer", "offer", "model_error");
  vd_batch_summary_decided(s, r1);
  vd_batch_summary_decided(s, r2);
  json_decref(r1);
  json_decref(r2);
  vd_diags a = {0}, b = {0}, c = {0};
  add_problem(&a, "subject.recency", "expected int in [1, 12], got 13");
  add_problem(&a, "subject.recency", "expected int in [1, 12], got 13"); /* once per row */
  add_problem(&b, "subject.recency", "expected int in [1, 12], got 14");
  add_problem(&b, "subject.country", "required field is missing");
  add_problem(&c, "subject.country", "required field is missing");
  vd_batch_summary_rejected(s, 7, &a);
  vd_batch_summary_rejected(s, 9, &b);
  vd_batch_summary_rejected(s, 4, &c); /* out of order: first_line is the first seen */
  json_t *j = vd_batch_summary_json(s);
  ck_assert_int_eq(json_integer_value(json_object_get(j, "rows")), 5);
  ck_assert_int_eq(json_integer_value(json_object_get(j, "decided")), 2);
  ck_assert_int_eq(json_integer_value(json_object_get(j, "rejected")), 3);
  json_t *actions = json_object_get(j, "actions");
  ck_assert_int_eq(json_integer_value(json_object_get(actions, "offer")), 3);
  ck_assert_int_eq(json_integer_value(json_object_get(actions, "deny")), 1);
  ck_assert_int_eq(
      json_integer_value(json_object_get(json_object_get(j, "fallbacks"), "model_error")), 1);
  json_t *reasons = json_object_get(j, "reject_reasons");
  ck_assert_uint_eq(json_array_size(reasons), 2);
  json_t *r0 = json_array_get(reasons, 0), *r1b = json_array_get(reasons, 1);
  /* both recency rows group under one reason, values left out; ties: earliest line first */
  ck_assert_str_eq(json_string_value(json_object_get(r0, "reason")),
                   "subject.recency: expected int in [1, 12]");
  ck_assert_int_eq(json_integer_value(json_object_get(r0, "rows")), 2);
  ck_assert_int_eq(json_integer_value(json_object_get(r0, "first_line")), 7);
  ck_assert_str_eq(json_string_value(json_object_get(r1b, "reason")),
                   "subject.country: required field is missing");
  ck_assert_int_eq(json_integer_value(json_object_get(r1b, "first_line")), 9);

  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  vd_batch_summary_print(s, f);
  fclose(f);
  ck_assert_ptr_nonnull(strstr(text, "rows: 5 (decided 2, rejected 3)"));
  ck_assert_ptr_nonnull(strstr(text, "offer        3"));
  ck_assert_ptr_nonnull(strstr(text, "model_error  1"));
  ck_assert_ptr_nonnull(
      strstr(text, "     2  subject.recency: expected int in [1, 12] (first at line 7)"));
  free(text);
  json_decref(j);
  vd_diags_free(&a);
  vd_diags_free(&b);
  vd_diags_free(&c);
  vd_batch_summary_free(s);
}
END_TEST

START_TEST(many_distinct_reasons_spill_into_other) {
  vd_batch_summary *s = vd_batch_summary_new();
  for (int i = 0; i < 100; i++) {
    vd_diags d = {0};
    char field[32];
    snprintf(field, sizeof field, "subject.f%d", i);
    add_problem(&d, field, "bad");
    vd_batch_summary_rejected(s, (size_t)i + 2, &d);
    vd_diags_free(&d);
  }
  json_t *j = vd_batch_summary_json(s);
  json_t *reasons = json_object_get(j, "reject_reasons");
  json_t *last = json_array_get(reasons, json_array_size(reasons) - 1);
  ck_assert_str_eq(json_string_value(json_object_get(last, "reason")), "(other reasons)");
  size_t total = 0, i;
  json_t *r;
  json_array_foreach(reasons, i, r) total += (size_t)json_integer_value(json_object_get(r, "rows"));
  ck_assert_uint_eq(total, 100);
  json_decref(j);
  vd_batch_summary_free(s);
}
END_TEST

START_TEST(reject_line_is_the_api_error_body_with_line) {
  vd_diags d = {0};
  add_problem(&d, "subject.mens", "column 4 (mens): expected bool (1, 0, true or false)");
  vd_error plain = {0};
  vd_error_set(&plain, "6 fields, but the header has 12");
  vd_diags_add(&d, &plain);
  json_t *j = vd_batch_reject_json(12, &d);
  ck_assert_int_eq(json_integer_value(json_object_get(j, "line")), 12);
  json_t *e = json_object_get(j, "error");
  ck_assert_str_eq(json_string_value(json_object_get(e, "code")), "invalid_request");
  ck_assert_str_eq(json_string_value(json_object_get(e, "field")), "subject.mens");
  ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(e, "message")),
                               "breaks the schema in 2 places: subject.mens: column 4"));
  json_t *v = json_object_get(e, "violations");
  ck_assert_uint_eq(json_array_size(v), 2);
  ck_assert(json_is_null(json_object_get(json_array_get(v, 1), "field")));
  json_decref(j);
  vd_diags_free(&d);
}
END_TEST

int main(void) {
  Suite *s = suite_create("batch_summary");
  TCase *tc = tcase_create("batch_summary");
  tcase_add_test(tc, counts_actions_fallbacks_and_reasons);
  tcase_add_test(tc, many_distinct_reasons_spill_into_other);
  tcase_add_test(tc, reject_line_is_the_api_error_body_with_line);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
