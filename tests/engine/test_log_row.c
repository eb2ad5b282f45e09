/* A decision row as the journal holds it: written and read back field for field, and every
 * damaged form refused with a message rather than read as another row. */
#include <stdlib.h>
#include <string.h>

#include "vd_log_row.h"
#include "vd_test.h"

static vd_log_row sample(void) {
  static const char trace[] = "{\"decision_id\":\"d-1\"}";
  vd_log_row row = {.timestamp_us = -5, .trace_len = sizeof trace - 1};
  const char *values[VD_ROW_FIELDS] = {"d-1", "promotions", NULL, "rules@1", "", trace};
  for (int i = 0; i < VD_ROW_FIELDS; i++) {
    row.field[i] = values[i];
    row.field_len[i] = values[i] ? (uint32_t)strlen(values[i]) : 0;
  }
  return row;
}

static unsigned char *written(const vd_log_row *row, size_t *size) {
  *size = vd_log_row_size(row, NULL);
  ck_assert_uint_gt(*size, 0);
  unsigned char *out = malloc(*size);
  vd_log_row_write(row, out);
  return out;
}

START_TEST(a_row_reads_back_as_written) {
  vd_log_row row = sample(), back;
  size_t size = 0;
  unsigned char *payload = written(&row, &size);
  vd_error err = {0};
  ck_assert_msg(vd_log_row_read(payload, size, &back, &err), "%s", err.message);
  ck_assert_int_eq(back.timestamp_us, -5);
  ck_assert_uint_eq(back.trace_len, row.trace_len);
  ck_assert(!back.blob);
  for (int i = 0; i < VD_ROW_FIELDS; i++) {
    ck_assert_int_eq(back.field[i] == NULL,
                     row.field[i] == NULL); /* none stays none, "" stays "" */
    ck_assert_uint_eq(back.field_len[i], row.field_len[i]);
    if (row.field[i]) ck_assert(memcmp(back.field[i], row.field[i], row.field_len[i]) == 0);
  }
  free(payload);
}
END_TEST

START_TEST(every_cut_is_refused) {
  vd_log_row row = sample(), back;
  size_t size = 0;
  unsigned char *payload = written(&row, &size);
  for (size_t len = 0; len < size; len++) {
    vd_error err = {0};
    ck_assert_msg(!vd_log_row_read(payload, len, &back, &err), "a row cut at %zu was read", len);
    ck_assert_str_ne(err.message, "");
  }
  free(payload);
}
END_TEST

START_TEST(extra_bytes_another_format_and_missing_fields_are_refused) {
  vd_log_row row = sample(), back;
  size_t size = 0;
  unsigned char *payload = written(&row, &size);
  unsigned char *longer = calloc(1, size + 1);
  memcpy(longer, payload, size);
  vd_error err = {0};
  ck_assert(!vd_log_row_read(longer, size + 1, &back, &err));
  ck_assert_str_eq(err.message, "a decision row has 1 bytes too many");
  payload[0] = VD_LOG_ROW_FORMAT + 1;
  ck_assert(!vd_log_row_read(payload, size, &back, &err));
  ck_assert_str_eq(err.message, "not a decision row of format 1");
  free(payload);
  row.field[VD_ROW_KIND] = NULL;
  payload = written(&row, &size);
  ck_assert(!vd_log_row_read(payload, size, &back, &err));
  ck_assert_str_eq(err.message, "a decision row lacks its id, kind or trace");
  free(payload);
  free(longer);
}
END_TEST

int main(void) {
  Suite *suite = suite_create("log_row");
  TCase *tc = tcase_create("log_row");
  tcase_add_test(tc, a_row_reads_back_as_written);
  tcase_add_test(tc, every_cut_is_refused);
  tcase_add_test(tc, extra_bytes_another_format_and_missing_fields_are_refused);
  suite_add_tcase(suite, tc);
  return vd_test_run(suite);
}
