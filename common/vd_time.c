#include "vd_time.h"

#include <stdio.h>
#include <time.h>

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

void vd_format_rfc3339_us(int64_t wall_us, char *buf, unsigned size) {
  time_t seconds = (time_t)(wall_us / 1000000);
  long micros = (long)(wall_us % 1000000);
  if (micros < 0) {
    micros += 1000000;
    seconds -= 1;
  }
  struct tm tm;
  gmtime_r(&seconds, &tm);
  char date[24];
  strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf, size, "%s.%06ldZ", date, micros);
}
