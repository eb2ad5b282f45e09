/* vd_pan: payment card numbers found in free text are masked (Luhn-checked), nothing else. */
#include <jansson.h>
#include <string.h>
#include <time.h>

#include "vd_pan.h"
#include "vd_test.h"

static char *mask(const char *text, size_t *found) {
  vd_buf out = {0};
  *found = vd_pan_mask(text, strlen(text), &out);
  ck_assert(!out.oom);
  vd_buf_append(&out, "", 0);
  return vd_buf_take(&out);
}

typedef struct pan_case {
  const char *text;
  const char *masked;
  size_t found;
} pan_case;

static const pan_case cases[] = {
    /* the usual ways of writing one */
    {"card 4111111111111111 please", "card ****1111 please", 1},
    {"4111 1111 1111 1111", "****1111", 1},
    {"my card 4111-1111-1111-1111.", "my card ****1111.", 1},
    {"amex 3782 822463 10005 declined", "amex ****0005 declined", 1},
    {"13 digits 4222222222222 ok", "13 digits ****2222 ok", 1},
    {"19 digits 6011000000000000001", "19 digits ****0001", 1},
    /* two in one text, and a card followed by its expiry and CVV */
    {"4111111111111111 and 5500 0055 5555 5559", "****1111 and ****5559", 2},
    {"4111 1111 1111 1111 12 27 123", "****1111 12 27 123", 1},
    {"ref 12 4111 1111 1111 1111", "ref 12 ****1111", 1},
    /* not cards: Luhn-invalid, too short, too long, glued to letters, phone numbers */
    {"order 4111111111111112 shipped", "order 4111111111111112 shipped", 0},
    {"call 555-123-4567", "call 555-123-4567", 0},
    {"tracking 41111111111111110000000", "tracking 41111111111111110000000", 0},
    /* any ASCII punctuation or white space between the groups, up to three characters */
    {"asdf 4111.1111.1111.1111 zxcv", "asdf ****1111 zxcv", 1},
    {"4111/1111/1111/1111", "****1111", 1},
    {"4111_1111_1111_1111", "****1111", 1},
    {"4111\t1111\t1111\t1111", "****1111", 1},
    {"card\n4111\n1111\r\n1111\n1111\nthanks", "card\n****1111\nthanks", 1},
    {"4111  1111  1111  1111", "****1111", 1},
    {"4111 - 1111 - 1111 - 1111", "****1111", 1},
    {"(4111) 1111, 1111; 1111!", "(****1111!", 1},
    {"4111-1111 1111.1111", "****1111", 1},
    /* Unicode spaces, dashes and invisible characters between the groups */
    {"4111\u00a01111\u00a01111\u00a01111 ok", "****1111 ok", 1},
    {"4111\u20071111\u202f1111\u30001111", "****1111", 1},
    {"4111 \u2013 1111 \u2013 1111 \u2013 1111", "****1111", 1},
    {"4111\u20141111\u20121111\u22121111", "****1111", 1},
    {"4111\u200b1111\u00ad1111\ufeff1111", "****1111", 1},
    {"4111\uff0e1111\u30fb1111\u00b71111", "****1111", 1},
    /* glued to letters */
    {"card4111111111111111", "card****1111", 1},
    {"4111111111111111x", "****1111x", 1},
    {"id X4111111111111111 and 4111111111111111Y", "id X****1111 and ****1111Y", 2},
    {"no:4111-1111-1111-1111exp", "no:****1111exp", 1},
    /* digits other than ASCII: full-width, Arabic-Indic, mixed; the mask shows ASCII digits */
    {"\uff14\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11"
     "\uff11\uff11\uff11",
     "****1111", 1},
    {"\u30ab\u30fc\u30c9\uff15\uff15\uff10\uff10\u3000\uff10\uff10\uff15\uff15\u3000"
     "\uff15\uff15\uff15\uff15\u3000\uff15\uff15\uff15\uff19\u3002",
     "\u30ab\u30fc\u30c9****5559\u3002", 1},
    {"\u0664\u0661\u0661\u0661 \u0661\u0661\u0661\u0661 \u0661\u0661\u0661\u0661 "
     "\u0661\u0661\u0661\u0661",
     "****1111", 1},
    {"41\uff11\uff111111 1111 1111", "****1111", 1},
    /* Devanagari, Persian, Bengali, mathematical bold and monospace digits */
    {"\u096a\u0967\u0967\u0967 \u06f1\u06f1\u06f1\u06f1 \u09e7\u09e7\u09e7\u09e7 "
     "\U0001d7cf\U0001d7cf\U0001d7cf\U0001d7f7.",
     "****1111.", 1},
    /* not joined: four or more separators, or a word, between the groups */
    {"4111 1111 1111    1111", "4111 1111 1111    1111", 0},
    {"4111 1111 and 1111 1111", "4111 1111 and 1111 1111", 0},
    {"4111\u00a0\u00a0\u00a0\u00a01111111111111", "4111\u00a0\u00a0\u00a0\u00a01111111111111", 0},
    /* phone numbers, booking references, dates, times and prices (Luhn-invalid or < 13 digits) */
    {"call +1 (555) 123-4567 or +44 20 7946 0958", "call +1 (555) 123-4567 or +44 20 7946 0958", 0},
    {"booking ref ABC123456, PNR X7Y8Z9, order #100234-55",
     "booking ref ABC123456, PNR X7Y8Z9, order #100234-55", 0},
    {"from 2026-12-03 17:45 to 12/24/2026, $1,234.56 or 99.99 EUR",
     "from 2026-12-03 17:45 to 12/24/2026, $1,234.56 or 99.99 EUR", 0},
    {"flight LH 1234 on 03.12.2026 at 10:30, seat 12A, gate 7",
     "flight LH 1234 on 03.12.2026 at 10:30, seat 12A, gate 7", 0},
    {"no digits at all", "no digits at all", 0},
    {"", "", 0},
};

START_TEST(masks_pans_and_only_pans) {
  const pan_case *c = &cases[_i];
  size_t found = 0;
  char *out = mask(c->text, &found);
  ck_assert_msg(strcmp(out, c->masked) == 0, "'%s' -> '%s', expected '%s'", c->text, out,
                c->masked);
  ck_assert_uint_eq(found, c->found);
  free(out);
}
END_TEST

/* Bytes that are not UTF-8 break a number and are copied unchanged; an overlong or truncated
 * encoding of a digit is not a digit. */
START_TEST(invalid_utf8_is_copied_and_never_split) {
  static const struct {
    const char *text, *masked;
    size_t found;
  } bad[] = {
      {"\xff"
       "4111 1111 1111 1111\xc3",
       "\xff****1111\xc3", 1},
      {"4111\xff"
       "1111 1111 1111",
       "4111\xff"
       "1111 1111 1111",
       0},
      {"\xc0\xb0"
       "4111111111111111",
       "\xc0\xb0****1111", 1}, /* overlong '0' */
      {"\xef\xbc"
       "4111111111111111\xef\xbc",
       "\xef\xbc****1111\xef\xbc", 1},
      {"\xed\xa0\x80 4111111111111111 \xe2\x80", "\xed\xa0\x80 ****1111 \xe2\x80", 1},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    size_t found = 0;
    char *out = mask(bad[i].text, &found);
    ck_assert_msg(strcmp(out, bad[i].masked) == 0 && found == bad[i].found, "case %zu: %s", i, out);
    free(out);
  }
}
END_TEST

/* Valid UTF-8 stays valid (jansson refuses anything else): a mask never cuts a character. */
START_TEST(masked_text_stays_valid_utf8) {
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t found = 0;
    char *out = mask(cases[i].text, &found);
    json_t *j = json_string(out);
    ck_assert_msg(j != NULL, "case %zu: not UTF-8 after masking", i);
    json_decref(j);
    free(out);
  }
}
END_TEST

/* A card after any number of short digit groups (the first groups of a long run) is still
 * found. */
START_TEST(card_after_many_groups) {
  for (int groups = 0; groups < 48; groups++) {
    vd_buf text = {0};
    for (int i = 0; i < groups; i++) vd_buf_puts(&text, "7 ");
    vd_buf_puts(&text, "4111 1111 1111 1111 thanks");
    vd_buf_append(&text, "", 0);
    size_t found = 0;
    char *out = mask(text.data, &found);
    ck_assert_msg(found >= 1 && !strstr(out, "1111 1111 1111 1111"), "%d: %s", groups, out);
    free(out);
    vd_buf_free(&text);
  }
}
END_TEST

static double cpu_seconds_to_mask(const char *text, size_t len) {
  vd_buf out = {0};
  struct timespec a, b;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
  vd_pan_mask(text, len, &out);
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
  ck_assert(!out.oom && out.len > 0);
  vd_buf_free(&out);
  return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
}

/* Many digit groups joined by separators: the time grows with the length, not its square
 * (8 times the text takes well under 8 * 8 times as long). */
START_TEST(many_digit_groups_in_linear_time) {
  const size_t small = 40000;
  vd_buf text = {0};
  for (size_t i = 0; i < 8 * small; i++) vd_buf_puts(&text, i % 3 ? "7 " : "1-");
  ck_assert(!text.oom);
  double t_small = 0, t_large = 0;
  for (int rep = 0; rep < 3; rep++) { /* best of three: the machine is shared */
    double s1 = cpu_seconds_to_mask(text.data, 2 * small);
    double s8 = cpu_seconds_to_mask(text.data, 16 * small);
    if (rep == 0 || s1 < t_small) t_small = s1;
    if (rep == 0 || s8 < t_large) t_large = s8;
  }
  ck_assert_msg(t_large < 20 * t_small + 0.01, "1x: %.4f s, 8x: %.4f s", t_small, t_large);
  vd_buf_free(&text);
}
END_TEST

START_TEST(luhn) {
  ck_assert(vd_luhn_valid("4111111111111111", 16));
  ck_assert(vd_luhn_valid("79927398713", 11));
  ck_assert(!vd_luhn_valid("79927398710", 11));
  ck_assert(!vd_luhn_valid("", 0));
}
END_TEST

/* Whatever surrounds it, no full number survives: every generated PAN is masked. */
START_TEST(every_valid_number_is_masked_in_context) {
  static const char *const around[][2] = {
      {"", ""}, {"pay with ", " now"}, {"(", ")"}, {"card:", ","}, {"\"", "\""}};
  char pan[20], text[128];
  for (unsigned seed = 1; seed < 400; seed++) {
    size_t len = 13 + seed % 7;
    unsigned x = seed * 2654435761u;
    for (size_t i = 0; i + 1 < len; i++) {
      x = x * 1103515245u + 12345u;
      pan[i] = (char)('0' + (x >> 16) % 10);
    }
    for (int d = '0'; d <= '9'; d++) { /* the check digit that makes it valid */
      pan[len - 1] = (char)d;
      if (vd_luhn_valid(pan, len)) break;
    }
    pan[len] = '\0';
    const char *const *a = around[seed % 5];
    snprintf(text, sizeof text, "%s%s%s", a[0], pan, a[1]);
    size_t found = 0;
    char *out = mask(text, &found);
    ck_assert_msg(found == 1 && !strstr(out, pan), "%s -> %s", text, out);
    free(out);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("pan");
  TCase *tc = tcase_create("pan");
  tcase_add_loop_test(tc, masks_pans_and_only_pans, 0, (int)(sizeof cases / sizeof cases[0]));
  tcase_add_test(tc, luhn);
  tcase_add_test(tc, invalid_utf8_is_copied_and_never_split);
  tcase_add_test(tc, masked_text_stays_valid_utf8);
  tcase_add_test(tc, card_after_many_groups);
  tcase_add_test(tc, many_digit_groups_in_linear_time);
  tcase_add_test(tc, every_valid_number_is_masked_in_context);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
