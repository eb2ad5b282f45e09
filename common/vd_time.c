#include "vd_time.h"

#include <stdio.h>
#include <time.h>

#include "vd_text.h"

uint64_t vd_monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t vd_wall_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The first and last second of 4-digit years (1000-01-01 and 9999-12-31T23:59:59 UTC): the
 * dates the formatter below writes itself. */
enum { FIRST_4_DIGIT_SECOND = -30610224000LL, LAST_4_DIGIT_SECOND = 253402300799LL };

/* Days since 1970-01-01 as a proleptic Gregorian date (H. Hinnant's civil_from_days). */
static void civil_from_days(int64_t days, int64_t *year, unsigned *month, unsigned *day) {
  days += 719468; /* from 0000-03-01 */
  int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  unsigned doe = (unsigned)(days - era * 146097);                       /* [0, 146096] */
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
  unsigned mp = (5 * doy + 2) / 153;                                    /* March = 0 */
  *day = doy - (153 * mp + 2) / 5 + 1;
  *month = mp < 10 ? mp + 3 : mp - 9;
  *year = (int64_t)yoe + era * 400 + (*month <= 2);
}

/* v's last n decimal digits at p. */
static void put_digits(char *p, unsigned long v, int n) {
  for (int i = n - 1; i >= 0; i--, v /= 10) p[i] = (char)('0' + v % 10);
}

void vd_format_rfc3339_us(int64_t wall_us, char *buf, unsigned size) {
  int64_t seconds = wall_us / 1000000;
  long micros = (long)(wall_us % 1000000);
  if (micros < 0) {
    micros += 1000000;
    seconds -= 1;
  }
  if (seconds < FIRST_4_DIGIT_SECOND || seconds > LAST_4_DIGIT_SECOND) {
    /* other years as strftime's %Y writes them */
    time_t t = (time_t)seconds;
    struct tm tm;
    gmtime_r(&t, &tm);
    char date[24];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, size, "%s.%06ldZ", date, micros);
    return;
  }
  /* Written digit by digit: every decision stamps its trace (gmtime_r, strftime and snprintf
   * took ~2,500 instructions). */
  int64_t days = (seconds >= 0 ? seconds : seconds - 86399) / 86400;
  unsigned long second_of_day = (unsigned long)(seconds - days * 86400);
  int64_t year;
  unsigned month, day;
  civil_from_days(days, &year, &month, &day);
  char text[] = "YYYY-MM-DDTHH:MM:SS.uuuuuuZ";
  put_digits(text, (unsigned long)year, 4);
  put_digits(text + 5, month, 2);
  put_digits(text + 8, day, 2);
  put_digits(text + 11, second_of_day / 3600, 2);
  put_digits(text + 14, second_of_day / 60 % 60, 2);
  put_digits(text + 17, second_of_day % 60, 2);
  put_digits(text + 20, (unsigned long)micros, 6);
  if (size == 0) return;
  vd_text out; /* cut as snprintf cuts */
  vd_text_init(&out, buf, size);
  vd_text_append(&out, text, sizeof text - 1);
}
