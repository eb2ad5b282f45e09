/* vd_time: RFC 3339 timestamps are written exactly as gmtime_r + strftime("%Y-%m-%dT%H:%M:%S")
 * + ".%06ldZ" write them, for every date (4-digit years are written digit by digit). */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vd_test.h"
#include "vd_time.h"

/* The reference: the C library's calendar and strftime. */
static void by_strftime(int64_t wall_us, char *buf, size_t size) {
  time_t seconds = (time_t)(wall_us / 1000000);
  long micros = (long)(wall_us % 1000000);
  if (micros < 0) {
    micros += 1000000;
    seconds -= 1;
  }
  struct tm tm;
  ck_assert_ptr_nonnull(gmtime_r(&seconds, &tm));
  char date[24];
  strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf, size, "%s.%06ldZ", date, micros);
}

static void assert_like_strftime(int64_t wall_us) {
  char got[40], expected[40];
  vd_format_rfc3339_us(wall_us, got, sizeof got);
  by_strftime(wall_us, expected, sizeof expected);
  ck_assert_msg(strcmp(got, expected) == 0, "%lld: %s, strftime %s", (long long)wall_us, got,
                expected);
}

START_TEST(timestamps_are_written_like_strftime) {
  const int64_t second = 1000000, day = 86400 * second;
  const int64_t edges[] = {0,
                           -1,
                           1,
                           second - 1,
                           -second,
                           -second - 1,
                           day - 1,
                           -day,
                           951782400 * second,          /* 2000-02-29 */
                           -2203891200LL * second,      /* 1900-03-01 */
                           4107456000LL * second - 1,   /* 2100-02-28T23:59:59.999999 */
                           1780000000123456LL,          /* a decision's time */
                           -30610224000LL * second,     /* 1000-01-01: the first 4-digit year */
                           -30610224000LL * second - 1, /* 999-12-31T23:59:59.999999 */
                           253402300799LL * second + 999999, /* 9999-12-31T23:59:59.999999 */
                           253402300800LL * second};         /* 10000-01-01 */
  for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) assert_like_strftime(edges[i]);
  uint64_t x = 88172645463325252u; /* every second of 0900 to 10100, and microseconds */
  for (int i = 0; i < 200000; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    int64_t span = 290000000000LL * second;
    assert_like_strftime((int64_t)(x % (uint64_t)span) - 33000000000LL * second);
  }
}
END_TEST

START_TEST(a_short_buffer_is_cut_like_snprintf) {
  char expected[40];
  by_strftime(1780000000123456LL, expected, sizeof expected);
  for (unsigned size = 1; size <= 32; size++) {
    char got[40];
    memset(got, 'x', sizeof got);
    vd_format_rfc3339_us(1780000000123456LL, got, size);
    size_t kept = size - 1 < strlen(expected) ? size - 1 : strlen(expected);
    ck_assert_uint_eq(strlen(got), kept); /* the first size - 1 bytes, NUL-terminated */
    ck_assert(strncmp(got, expected, kept) == 0);
    ck_assert(got[size] == 'x');
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("time");
  TCase *tc = tcase_create("time");
  tcase_add_test(tc, timestamps_are_written_like_strftime);
  tcase_add_test(tc, a_short_buffer_is_cut_like_snprintf);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
