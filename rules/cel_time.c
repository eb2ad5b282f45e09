/* cel_time.c: timestamps and durations — RFC 3339 and Go-style duration parsing/formatting,
 * civil calendar arithmetic, and time zones read from the system tz database (TZif files,
 * RFC 8536, including the POSIX TZ rule for instants after the last transition). The process's
 * TZ is never consulted or changed: every zone is an explicit, immutable value. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cel_internal.h"

/* ---- civil calendar (days since 1970-01-01, proleptic Gregorian) ---- */

static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int days_in_month(int64_t y, int m) {
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

static int64_t floor_div(int64_t a, int64_t b) {
  return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

void cel_civil_from_unix(int64_t t, cel_civil *out) {
  int64_t days = floor_div(t, 86400), secs = t - days * 86400;
  civil_from_days(days, &out->year, &out->month, &out->day);
  out->hour = (int)(secs / 3600);
  out->minute = (int)(secs / 60 % 60);
  out->second = (int)(secs % 60);
  out->yday = (int)(days - days_from_civil(out->year, 1, 1));
  out->wday = (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday */
}

/* ---- parsing ---- */

static bool digits(const char *s, size_t len, size_t *pos, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (*pos >= len || s[*pos] < '0' || s[*pos] > '9') return false;
    v = v * 10 + (s[(*pos)++] - '0');
  }
  *out = v;
  return true;
}

static bool expect_char(const char *s, size_t len, size_t *pos, char c1, char c2) {
  if (*pos >= len || (s[*pos] != c1 && s[*pos] != c2)) return false;
  (*pos)++;
  return true;
}

bool vd_cel_timestamp_parse(const char *s, size_t len, vd_cel_value *out, vd_error *err) {
  size_t p = 0;
  int y, mo, d, h, mi, sec, nanos = 0, oh = 0, om = 0, sign = 0;
  if (!digits(s, len, &p, 4, &y) || !expect_char(s, len, &p, '-', '-') ||
      !digits(s, len, &p, 2, &mo) || !expect_char(s, len, &p, '-', '-') ||
      !digits(s, len, &p, 2, &d) || !expect_char(s, len, &p, 'T', 't') ||
      !digits(s, len, &p, 2, &h) || !expect_char(s, len, &p, ':', ':') ||
      !digits(s, len, &p, 2, &mi) || !expect_char(s, len, &p, ':', ':') ||
      !digits(s, len, &p, 2, &sec))
    goto bad;
  if (p < len && s[p] == '.') {
    p++;
    int n = 0;
    while (p < len && s[p] >= '0' && s[p] <= '9') {
      if (n < 9) nanos = nanos * 10 + (s[p] - '0');
      n++;
      p++;
    }
    if (n == 0) goto bad;
    for (; n < 9; n++) nanos *= 10;
  }
  if (p < len && (s[p] == 'Z' || s[p] == 'z')) {
    p++;
  } else if (p < len && (s[p] == '+' || s[p] == '-')) {
    sign = s[p++] == '-' ? -1 : 1;
    if (!digits(s, len, &p, 2, &oh) || !expect_char(s, len, &p, ':', ':') ||
        !digits(s, len, &p, 2, &om) || oh > 23 || om > 59)
      goto bad;
  } else {
    goto bad;
  }
  if (p != len || y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
      mi > 59 || sec > 59)
    goto bad;
  int64_t t =
      days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - sign * (oh * 3600 + om * 60);
  if (t < CEL_MIN_SECONDS || t > CEL_MAX_SECONDS)
    return vd_error_set(err, "timestamp '%.*s' is outside 0001-01-01 to 9999-12-31", (int)len, s);
  out->kind = VD_CEL_TIMESTAMP;
  out->v.time.seconds = t;
  out->v.time.nanos = nanos;
  return true;
bad:
  return vd_error_set(err, "'%.*s' is not an RFC 3339 timestamp (like 2026-12-03T13:26:45Z)",
                      (int)(len > 64 ? 64 : len), s);
}

bool cel_duration_normalise(__int128 total, vd_cel_value *out) {
  __int128 limit = (__int128)CEL_MAX_DURATION_SECONDS * 1000000000;
  if (total > limit || total < -limit) return false;
  out->kind = VD_CEL_DURATION;
  out->v.time.seconds = (int64_t)(total / 1000000000);
  out->v.time.nanos = (int32_t)(total % 1000000000);
  return true;
}

bool vd_cel_duration_parse(const char *s, size_t len, vd_cel_value *out, vd_error *err) {
  size_t p = 0;
  bool neg = false;
  if (p < len && (s[p] == '-' || s[p] == '+')) neg = s[p++] == '-';
  __int128 total = 0;
  if (p == len) goto bad;
  if (len - p == 1 && s[p] == '0') return cel_duration_normalise(0, out);
  while (p < len) {
    __int128 whole = 0;
    int64_t frac = 0, scale = 1;
    size_t start = p;
    while (p < len && s[p] >= '0' && s[p] <= '9') {
      whole = whole * 10 + (s[p++] - '0');
      if (whole > (__int128)1 << 80) goto range;
    }
    bool had_whole = p > start;
    if (p < len && s[p] == '.') {
      p++;
      size_t fs = p;
      while (p < len && s[p] >= '0' && s[p] <= '9') {
        if (scale < 1000000000000000000LL / 10) {
          frac = frac * 10 + (s[p] - '0');
          scale *= 10;
        }
        p++;
      }
      if (p == fs && !had_whole) goto bad;
    } else if (!had_whole) {
      goto bad;
    }
    int64_t unit;
    if (p + 1 < len && s[p] == 'n' && s[p + 1] == 's')
      unit = 1, p += 2;
    else if (p + 1 < len && s[p] == 'u' && s[p + 1] == 's')
      unit = 1000, p += 2;
    else if (p + 2 < len && (unsigned char)s[p] == 0xC2 && (unsigned char)s[p + 1] == 0xB5 &&
             s[p + 2] == 's')
      unit = 1000, p += 3; /* µs */
    else if (p + 1 < len && s[p] == 'm' && s[p + 1] == 's')
      unit = 1000000, p += 2;
    else if (p < len && s[p] == 's')
      unit = 1000000000, p += 1;
    else if (p < len && s[p] == 'm')
      unit = 60LL * 1000000000, p += 1;
    else if (p < len && s[p] == 'h')
      unit = 3600LL * 1000000000, p += 1;
    else
      goto bad;
    total += whole * unit + (__int128)frac * unit / scale;
    if (total > (__int128)CEL_MAX_DURATION_SECONDS * 1000000000) goto range;
  }
  if (!cel_duration_normalise(neg ? -total : total, out)) goto range;
  return true;
range:
  return vd_error_set(err, "duration '%.*s' is out of range (at most 10000 years)",
                      (int)(len > 64 ? 64 : len), s);
bad:
  return vd_error_set(err, "'%.*s' is not a duration (like 1h30m, 2.5s, 300ms)",
                      (int)(len > 64 ? 64 : len), s);
}

/* ---- formatting ---- */

static void fraction(int32_t nanos, char *buf, size_t size) {
  if (!nanos) {
    buf[0] = '\0';
    return;
  }
  char digits9[16];
  snprintf(digits9, sizeof digits9, "%09d", nanos);
  int n = 9;
  while (n > 0 && digits9[n - 1] == '0') n--;
  snprintf(buf, size, ".%.*s", n, digits9);
}

void cel_format_timestamp(int64_t seconds, int32_t nanos, char *buf, size_t size) {
  cel_civil c;
  cel_civil_from_unix(seconds, &c);
  char frac[16];
  fraction(nanos, frac, sizeof frac);
  snprintf(buf, size, "%04" PRId64 "-%02d-%02dT%02d:%02d:%02d%sZ", c.year, c.month, c.day, c.hour,
           c.minute, c.second, frac);
}

void cel_format_duration(int64_t seconds, int32_t nanos, char *buf, size_t size) {
  bool neg = seconds < 0 || nanos < 0;
  uint64_t s = (uint64_t)(seconds < 0 ? -seconds : seconds);
  char frac[16];
  fraction(nanos < 0 ? -nanos : nanos, frac, sizeof frac);
  snprintf(buf, size, "%s%" PRIu64 "%ss", neg ? "-" : "", s, frac);
}

/* ---- time zones ---- */

typedef struct posix_rule {
  char kind; /* 'J' (1-365, no Feb 29), 'N' (0-365), 'M' (month.week.day) */
  int a, b, c;
  int32_t time; /* seconds after local midnight */
} posix_rule;

struct cel_zone {
  bool fixed;
  int32_t offset; /* fixed zones */
  const unsigned char *times, *indexes, *types;
  uint32_t time_count, type_count, time_width;
  bool has_rule, rule_has_dst;
  int32_t std_offset, dst_offset;
  posix_rule start, end;
};

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static int64_t be64(const unsigned char *p) {
  return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static bool posix_name(const char **s) {
  const char *p = *s;
  if (*p == '<') {
    while (*p && *p != '>') p++;
    if (*p != '>') return false;
    *s = p + 1;
    return true;
  }
  while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) p++;
  if (p - *s < 3) return false;
  *s = p;
  return true;
}

/* [+-]hh[:mm[:ss]] */
static bool posix_time(const char **s, int32_t *out) {
  const char *p = *s;
  int sign = 1;
  if (*p == '+' || *p == '-') sign = *p++ == '-' ? -1 : 1;
  int32_t parts[3] = {0, 0, 0};
  for (int i = 0; i < 3; i++) {
    if (*p < '0' || *p > '9') {
      if (i == 0) return false;
      break;
    }
    int v = 0;
    while (*p >= '0' && *p <= '9') v = v * 10 + (*p++ - '0');
    parts[i] = v;
    if (*p != ':' || i == 2) break;
    p++;
  }
  *out = sign * (parts[0] * 3600 + parts[1] * 60 + parts[2]);
  *s = p;
  return true;
}

static bool posix_date(const char **s, posix_rule *r) {
  const char *p = *s;
  int v[3] = {0, 0, 0};
  if (*p == 'M') {
    r->kind = 'M';
    p++;
    for (int i = 0; i < 3; i++) {
      if (*p < '0' || *p > '9') return false;
      while (*p >= '0' && *p <= '9') v[i] = v[i] * 10 + (*p++ - '0');
      if (i < 2 && *p++ != '.') return false;
    }
    if (v[0] < 1 || v[0] > 12 || v[1] < 1 || v[1] > 5 || v[2] > 6) return false;
  } else {
    r->kind = 'N';
    if (*p == 'J') r->kind = 'J', p++;
    if (*p < '0' || *p > '9') return false;
    while (*p >= '0' && *p <= '9') v[0] = v[0] * 10 + (*p++ - '0');
  }
  r->a = v[0], r->b = v[1], r->c = v[2];
  r->time = 7200;
  if (*p == '/' && (p++, !posix_time(&p, &r->time))) return false;
  *s = p;
  return true;
}

static bool parse_posix_tz(const char *s, cel_zone *z) {
  int32_t off;
  if (!posix_name(&s) || !posix_time(&s, &off)) return false;
  z->std_offset = -off;
  z->has_rule = true;
  if (!*s) return true;
  if (!posix_name(&s)) return false;
  z->rule_has_dst = true;
  z->dst_offset = z->std_offset + 3600;
  if (*s && *s != ',') {
    if (!posix_time(&s, &off)) return false;
    z->dst_offset = -off;
  }
  if (*s != ',') return false; /* no rule: zic always writes one for DST zones */
  s++;
  if (!posix_date(&s, &z->start) || *s++ != ',' || !posix_date(&s, &z->end)) return false;
  return *s == '\0';
}

/* Day (days since epoch) a POSIX rule falls on in year y. */
static int64_t rule_day(const posix_rule *r, int64_t y) {
  if (r->kind == 'J') {
    int64_t day = days_from_civil(y, 1, 1) + r->a - 1;
    if (is_leap(y) && r->a >= 60) day++;
    return day;
  }
  if (r->kind == 'N') return days_from_civil(y, 1, 1) + r->a;
  int64_t first = days_from_civil(y, r->a, 1);
  int wday = (int)(((first % 7) + 11) % 7);
  int day = 1 + (r->c - wday + 7) % 7 + (r->b - 1) * 7;
  while (day > days_in_month(y, r->a)) day -= 7;
  return first + day - 1;
}

static int32_t rule_offset(const cel_zone *z, int64_t t) {
  if (!z->rule_has_dst) return z->std_offset;
  cel_civil c;
  cel_civil_from_unix(t + z->std_offset, &c);
  int64_t start = rule_day(&z->start, c.year) * 86400 + z->start.time - z->std_offset;
  int64_t end = rule_day(&z->end, c.year) * 86400 + z->end.time - z->dst_offset;
  bool dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
  return dst ? z->dst_offset : z->std_offset;
}

int32_t cel_zone_offset(const cel_zone *z, int64_t t) {
  if (z->fixed) return z->offset;
  const unsigned char *type0 = z->types;
  if (z->time_count == 0) return z->has_rule ? rule_offset(z, t) : (int32_t)be32(type0);
  int64_t first = z->time_width == 8 ? be64(z->times) : (int32_t)be32(z->times);
  if (t < first) return (int32_t)be32(type0);
  size_t lo = 0, hi = z->time_count; /* last transition <= t */
  while (hi - lo > 1) {
    size_t mid = (lo + hi) / 2;
    int64_t tm = z->time_width == 8 ? be64(z->times + mid * 8) : (int32_t)be32(z->times + mid * 4);
    if (tm <= t)
      lo = mid;
    else
      hi = mid;
  }
  if (lo == z->time_count - 1 && z->has_rule) return rule_offset(z, t);
  unsigned idx = z->indexes[lo];
  return (int32_t)be32(z->types + 6 * idx);
}

static bool parse_tzif(const unsigned char *data, size_t size, cel_zone *z) {
  if (size < 44 || memcmp(data, "TZif", 4) != 0) return false;
  uint32_t counts[6];
  for (int i = 0; i < 6; i++) counts[i] = be32(data + 20 + 4 * i);
  /* isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt */
  size_t v1 = (size_t)counts[3] * 5 + (size_t)counts[4] * 6 + counts[5] + (size_t)counts[2] * 8 +
              counts[1] + counts[0];
  const unsigned char *h = data;
  size_t width = 4;
  if (data[4] >= '2') {
    if (size < 44 + v1 + 44) return false;
    h = data + 44 + v1;
    if (memcmp(h, "TZif", 4) != 0) return false;
    for (int i = 0; i < 6; i++) counts[i] = be32(h + 20 + 4 * i);
    width = 8;
  }
  size_t body = (size_t)counts[3] * (width + 1) + (size_t)counts[4] * 6 + counts[5] +
                (size_t)counts[2] * (width + 4) + counts[1] + counts[0];
  if (counts[4] == 0 || (size_t)(data + size - h) < 44 + body) return false;
  z->times = h + 44;
  z->indexes = z->times + (size_t)counts[3] * width;
  z->types = z->indexes + counts[3];
  z->time_count = counts[3];
  z->type_count = counts[4];
  z->time_width = (uint32_t)width;
  for (uint32_t i = 0; i < z->time_count; i++)
    if (z->indexes[i] >= z->type_count) return false;
  if (width == 8) {
    const unsigned char *footer = h + 44 + body, *end = data + size;
    if (footer < end && *footer == '\n') {
      const unsigned char *nl = memchr(footer + 1, '\n', (size_t)(end - footer - 1));
      if (nl && nl > footer + 1) {
        char tz[128];
        size_t n = (size_t)(nl - footer - 1);
        if (n < sizeof tz) {
          memcpy(tz, footer + 1, n);
          tz[n] = '\0';
          if (!parse_posix_tz(tz, z)) z->has_rule = false;
        }
      }
    }
  }
  return true;
}

static bool valid_zone_name(const char *s, size_t len) {
  if (len == 0 || len > 200 || s[0] == '/') return false;
  bool component_start = true;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (component_start && c == '.') return false; /* no "..", no hidden files */
    component_start = c == '/';
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-' || c == '+' || c == '/' || c == '.'))
      return false;
  }
  return true;
}

const cel_zone *cel_zone_load(const char *name, size_t len, vd_cel_arena *arena, const char **why) {
  cel_zone *z = vd_cel_arena_alloc(arena, sizeof *z);
  if (!z) return *why = "out of memory", NULL;
  memset(z, 0, sizeof *z);
  if ((len == 3 && memcmp(name, "UTC", 3) == 0) || (len == 1 && name[0] == 'Z')) {
    z->fixed = true;
    return z;
  }
  if (len == 6 && (name[0] == '+' || name[0] == '-') && name[3] == ':') {
    size_t p = 1;
    int h, m;
    if (digits(name, len, &p, 2, &h) && p++ && digits(name, len, &p, 2, &m) && h <= 23 && m <= 59) {
      z->fixed = true;
      z->offset = (name[0] == '-' ? -1 : 1) * (h * 3600 + m * 60);
      return z;
    }
  }
  if (!valid_zone_name(name, len)) return *why = "not a time-zone name or ±HH:MM offset", NULL;
  char path[256];
  snprintf(path, sizeof path, "/usr/share/zoneinfo/%.*s", (int)len, name);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return *why = "unknown time zone (not in /usr/share/zoneinfo)", NULL;
  struct stat st;
  unsigned char *data = NULL;
  size_t got = 0;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && st.st_size < (1 << 20)) {
    data = vd_cel_arena_alloc(arena, (size_t)st.st_size);
    while (data && got < (size_t)st.st_size) {
      ssize_t r = read(fd, data + got, (size_t)st.st_size - got);
      if (r <= 0) break;
      got += (size_t)r;
    }
  }
  close(fd);
  if (!data || got != (size_t)st.st_size || !parse_tzif(data, got, z))
    return *why = "the time-zone file is not a valid TZif file", NULL;
  return z;
}
