/* libFuzzer target for the rules extractor and the gazetteer loader.
 *
 * The first byte chooses: even = the rest is a trip request, extracted against a fixed reference
 * date with a small gazetteer; odd = the rest is a gazetteer file. Checks: no crash, no leak, and
 * the extraction always has the eight keys with the right types, real ISO dates, and nights equal
 * to end - start whenever all three are known. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vd_extract_rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char gazetteer_text[] =
    "Zürich\tZurich, Switzerland\nNice\tNice, France\tcap\nLA\tLos Angeles, United States\tupper\n"
    "Rome\tRome, Italy\nRoma\tRome, Italy\nNew York City\tNew York, United States\n"
    "NYC\tNew York, United States\nJapan\tJapan\nKyoto\tKyoto, Japan\nKuala Lumpur\tKuala Lumpur, "
    "Malaysia\nSaint-Tropez\tSaint-Tropez, France\n";

static bool is_date(const json_t *v) {
  const char *s = json_string_value(v);
  if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-') return false;
  int m = atoi(s + 5), d = atoi(s + 8);
  return m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

static long day_number(const char *s) {
  int y = atoi(s), m = atoi(s + 5), d = atoi(s + 8);
  y -= m <= 2;
  long era = (y >= 0 ? y : y - 399) / 400;
  long yoe = y - era * 400;
  long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  vd_error err = {0};
  if (data[0] & 1) {
    vd_gazetteer *g = vd_gazetteer_load_string((const char *)data + 1, size - 1, "fuzz.tsv", &err);
    vd_gazetteer_free(g);
    return 0;
  }
  vd_gazetteer *g =
      vd_gazetteer_load_string(gazetteer_text, sizeof gazetteer_text - 1, "fuzz.tsv", &err);
  if (!g) abort();
  vd_extract_result r;
  if (!vd_extract_rules(g, (const char *)data + 1, size - 1, "2026-12-03", &r, &err)) abort();
  if (json_object_size(r.fields) != VD_EXTRACT_FIELD_COUNT) abort();
  const json_t *start = json_object_get(r.fields, "start_date");
  const json_t *end = json_object_get(r.fields, "end_date");
  const json_t *nights = json_object_get(r.fields, "nights");
  if (!json_is_null(start) && !is_date(start)) abort();
  if (!json_is_null(end) && !is_date(end)) abort();
  if (!json_is_null(nights) && (!json_is_integer(nights) || json_integer_value(nights) < 1))
    abort();
  if (is_date(start) && is_date(end) && json_is_integer(nights) &&
      day_number(json_string_value(end)) - day_number(json_string_value(start)) !=
          json_integer_value(nights))
    abort();
  if (!json_is_array(json_object_get(r.fields, "destinations")) ||
      !json_is_array(json_object_get(r.fields, "interests")))
    abort();
  json_t *missing = vd_extract_missing_fields(r.confident);
  json_t *merged = vd_extract_merge(r.fields, r.confident, NULL);
  if (!json_equal(merged, r.fields)) abort();
  json_decref(merged);
  json_decref(missing);
  json_decref(r.fields);
  vd_gazetteer_free(g);
  return 0;
}
