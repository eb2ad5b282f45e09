/* vd_printable: client text made safe for a line-oriented text report. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "vd_printable.h"
#include "vd_test.h"

static char *printable(const char *s, size_t len) {
  vd_buf b = {0};
  vd_printable_append(&b, s, len);
  ck_assert(!b.oom);
  vd_buf_puts(&b, "");
  return vd_buf_take(&b);
}

static void check(const char *in, size_t len, const char *want) {
  char *got = printable(in, len);
  ck_assert_str_eq(got, want);
  ck_assert(vd_printable_is_plain(in, len) == (strcmp(in, want) == 0 && strlen(in) == len));
  free(got);
}

START_TEST(controls_and_invisible_code_points_are_escaped) {
  check("plain text, Zürich — ok \"q\"", strlen("plain text, Zürich — ok \"q\""),
        "plain text, Zürich — ok \"q\"");
  /* a backslash is escaped itself: a client-typed \n cannot pass for an escaped newline */
  check("typed \\n, real\n", 15, "typed \\\\n, real\\n");
  check("a\nb\r\tc", 6, "a\\nb\\r\\tc");
  check("\x1b[31mred", 8, "\\u001b[31mred");
  check("nul\0x", 5, "nul\\u0000x");
  check("del\x7f", 4, "del\\u007f");
  check("c1\xc2\x85", 4, "c1\\u0085");                             /* NEL */
  check("ls\xe2\x80\xa8ps\xe2\x80\xa9", 10, "ls\\u2028ps\\u2029"); /* line/paragraph separators */
  check(
      "\xe2\x80\xae"
      "evil\xe2\x81\xa6x\xe2\x81\xa9",
      14, "\\u202eevil\\u2066x\\u2069");
  check("zw\xe2\x80\x8b\xef\xbb\xbf\xd8\x9c", 10, "zw\\u200b\\ufeff\\u061c");
  check("bad\xff\xc0\xaf", 6, "bad\\xff\\xc0\\xaf"); /* not UTF-8, overlong '/' */
  check("cut\xe2\x80", 5, "cut\\xe2\\x80");
  check("\xf0\x9f\x98\x80 emoji", 10, "\xf0\x9f\x98\x80 emoji");
}
END_TEST

/* Other code points that show nothing, so text can hide in them: tag characters (U+E0000 to
 * U+E007F, "ASCII smuggling"), the soft hyphen, the Mongolian vowel separator, the interlinear
 * annotation marks, the combining grapheme joiner and the Hangul filler. */
START_TEST(invisible_code_points_are_escaped) {
  check("t\xf3\xa0\x80\x81\xf3\xa0\x81\xa9\xf3\xa0\x81\xbf", 13,
        "t\\U000e0001\\U000e0069\\U000e007f");
  check("t\xf3\xa0\x82\x80", 5, "t\xf3\xa0\x82\x80"); /* U+E0080: not a tag */
  check("soft\xc2\xadhyphen", 12, "soft\\u00adhyphen");
  check("m\xe1\xa0\x8e", 4, "m\\u180e");
  check("\xef\xbf\xb9\xef\xbf\xba\xef\xbf\xbb", 9, "\\ufff9\\ufffa\\ufffb");
  check("\xef\xbf\xbc", 3, "\xef\xbf\xbc"); /* U+FFFC, the object replacement character, shows */
  check("cgj\xcd\x8f", 5, "cgj\\u034f");
  check("h\xe3\x85\xa4", 4, "h\\u3164");
}
END_TEST

int main(void) {
  Suite *s = suite_create("printable");
  TCase *tc = tcase_create("printable");
  tcase_add_test(tc, controls_and_invisible_code_points_are_escaped);
  tcase_add_test(tc, invisible_code_points_are_escaped);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
