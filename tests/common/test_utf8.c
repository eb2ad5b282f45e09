/* UTF-8: the one decoder every module uses accepts exactly RFC 3629 (the boundaries of each
 * length, no overlongs, no surrogates, nothing above U+10FFFF, no truncated sequence), and
 * escaping invalid bytes keeps every valid character and never cuts one. */
#include <string.h>

#include "vd_test.h"
#include "vd_utf8.h"

/* Decodes the whole of bytes as one sequence: its code point, or -1 when refused. */
static long decode_one(const char *bytes) {
  uint32_t cp = 0;
  size_t len = strlen(bytes);
  size_t n = vd_utf8_decode((const unsigned char *)bytes, len, &cp);
  if (n == 0) return -1;
  ck_assert_uint_eq(n, len);
  return (long)cp;
}

START_TEST(the_decoder_accepts_exactly_rfc_3629) {
  ck_assert_int_eq(decode_one("A"), 'A');
  ck_assert_int_eq(decode_one("\xc2\x80"), 0x80);             /* smallest 2-byte */
  ck_assert_int_eq(decode_one("\xdf\xbf"), 0x7ff);            /* largest 2-byte */
  ck_assert_int_eq(decode_one("\xe0\xa0\x80"), 0x800);        /* smallest 3-byte */
  ck_assert_int_eq(decode_one("\xed\x9f\xbf"), 0xd7ff);       /* just below the surrogates */
  ck_assert_int_eq(decode_one("\xee\x80\x80"), 0xe000);       /* just above them */
  ck_assert_int_eq(decode_one("\xf0\x90\x80\x80"), 0x10000);  /* smallest 4-byte */
  ck_assert_int_eq(decode_one("\xf4\x8f\xbf\xbf"), 0x10ffff); /* the last code point */
  ck_assert_int_eq(decode_one("\xc0\x80"), -1);               /* overlong NUL */
  ck_assert_int_eq(decode_one("\xc1\xbf"), -1);               /* overlong 2-byte */
  ck_assert_int_eq(decode_one("\xe0\x9f\xbf"), -1);           /* overlong 3-byte */
  ck_assert_int_eq(decode_one("\xf0\x8f\xbf\xbf"), -1);       /* overlong 4-byte */
  ck_assert_int_eq(decode_one("\xed\xa0\x80"), -1);           /* a surrogate */
  ck_assert_int_eq(decode_one("\xf4\x90\x80\x80"), -1);       /* above U+10FFFF */
  ck_assert_int_eq(decode_one("\xf5\x80\x80\x80"), -1);
  ck_assert_int_eq(decode_one("\x80"), -1);         /* a lone continuation */
  ck_assert_int_eq(decode_one("\xe2\x82"), -1);     /* truncated */
  ck_assert_int_eq(decode_one("\xe2\x28\xa1"), -1); /* not a continuation */
}
END_TEST

START_TEST(valid_prefix_and_count) {
  const char *text = "Z\xc3\xbcrich \xe2\x82\xac \xf0\x9f\x98\x80";
  ck_assert_uint_eq(vd_utf8_valid_prefix(text, strlen(text)), strlen(text));
  ck_assert_uint_eq(vd_utf8_count(text, strlen(text)), 10);
  const char bad[] = "ab\xc3\xbc\xff\x41";
  ck_assert_uint_eq(vd_utf8_valid_prefix(bad, sizeof bad - 1), 4);
  ck_assert_uint_eq(vd_utf8_valid_prefix("\xe2\x82", 2), 0); /* a sequence cut at the end */
}
END_TEST

START_TEST(escaping_keeps_characters_and_never_cuts_one) {
  char out[64];
  vd_utf8_escape_invalid("caf\xc3\xa9 \xff\xfe ok", out, sizeof out);
  ck_assert_str_eq(out, "caf\xc3\xa9 \\xff\\xfe ok");
  vd_utf8_escape_invalid("\xe2\x82", out, sizeof out); /* a character cut by a buffer upstream */
  ck_assert_str_eq(out, "\\xe2\\x82");
  /* a buffer that ends inside the euro sign's 3 bytes stops before it */
  char small[6];
  vd_utf8_escape_invalid("abc\xe2\x82\xac", small, sizeof small);
  ck_assert_str_eq(small, "abc");
  vd_utf8_escape_invalid("ab\xff", small, sizeof small); /* no room for \xff's 4 characters */
  ck_assert_str_eq(small, "ab");
  char one[1];
  vd_utf8_escape_invalid("abc", one, sizeof one);
  ck_assert_str_eq(one, "");
  ck_assert_uint_eq(vd_utf8_valid_prefix(out, strlen(out)), strlen(out));
}
END_TEST

int main(void) {
  Suite *s = suite_create("utf8");
  TCase *tc = tcase_create("utf8");
  tcase_add_test(tc, the_decoder_accepts_exactly_rfc_3629);
  tcase_add_test(tc, valid_prefix_and_count);
  tcase_add_test(tc, escaping_keeps_characters_and_never_cuts_one);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
