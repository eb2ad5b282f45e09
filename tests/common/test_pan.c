/* vd_pan: payment card numbers found in free text are masked (Luhn-checked), nothing else. */
#include <string.h>

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
    {"id X4111111111111111 and 4111111111111111Y", "id X4111111111111111 and 4111111111111111Y", 0},
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
  tcase_add_test(tc, every_valid_number_is_masked_in_context);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
