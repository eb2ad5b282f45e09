/* vd_text: a text written piece by piece into a fixed buffer is cut exactly where snprintf of
 * the whole text would cut it. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "vd_test.h"
#include "vd_text.h"

/* The same pieces through vd_text: puts, append (a part of a string), printf. */
static void write_pieces(vd_text *t) {
  vd_text_puts(t, "model:");
  vd_text_append(t, "recency-and-more", 7);
  vd_text_puts(t, "");
  vd_text_printf(t, ":%s (%lld, %.2f)", "up", -42LL, 329.075);
  vd_text_puts(t, " Zürich");
}

START_TEST(a_text_is_cut_where_snprintf_cuts_it) {
  char whole[128];
  int n = snprintf(whole, sizeof whole, "model:%s:%s (%lld, %.2f) Zürich", "recency", "up", -42LL,
                   329.075);
  ck_assert_int_gt(n, 0);
  for (size_t size = 1; size <= (size_t)n + 3; size++) {
    char expected[128], got[128];
    memset(got, 'x', sizeof got);
    snprintf(expected, size, "%s", whole);
    vd_text t;
    vd_text_init(&t, got, size);
    write_pieces(&t);
    ck_assert_str_eq(got, expected);
    ck_assert_uint_eq(t.len, strlen(expected));
    ck_assert_msg(got[size] == 'x', "size %zu: wrote past the buffer", size);
  }
}
END_TEST

START_TEST(an_empty_text_is_an_empty_string) {
  char buf[4] = "abc";
  vd_text t;
  vd_text_init(&t, buf, sizeof buf);
  ck_assert_str_eq(buf, "");
  ck_assert_uint_eq(t.len, 0);
  vd_text_printf(&t, "%s", "");
  ck_assert_str_eq(buf, "");
}
END_TEST

int main(void) {
  Suite *s = suite_create("text");
  TCase *tc = tcase_create("text");
  tcase_add_test(tc, a_text_is_cut_where_snprintf_cuts_it);
  tcase_add_test(tc, an_empty_text_is_an_empty_string);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
