/* Feature encoding: every encoding and every missing/unknown policy, spec errors, the canonical
 * form, CSV rows turned into requests — and the CSV reader they rely on. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vd_csv.h"
#include "vd_features.h"
#include "vd_json_path.h"
#include "vd_test.h"

static vd_features *parse(const char *features_json, const char *arms_json) {
  json_t *f = json_loads(features_json, 0, NULL);
  json_t *a = arms_json ? json_loads(arms_json, 0, NULL) : NULL;
  ck_assert(f != NULL);
  vd_error err = {0};
  vd_features *fs = vd_features_parse(f, a, "features", &err);
  ck_assert_msg(fs != NULL, "%s: %s", err.field, err.message);
  json_decref(f);
  json_decref(a);
  return fs;
}

static void expect_parse_error(const char *features_json, const char *field, const char *text) {
  json_t *f = json_loads(features_json, 0, NULL);
  ck_assert(f != NULL);
  vd_error err = {0};
  ck_assert(vd_features_parse(f, NULL, "features", &err) == NULL);
  ck_assert_msg(strcmp(err.field, field) == 0, "field %s, wanted %s", err.field, field);
  ck_assert_msg(strstr(err.message, text) != NULL, "\"%s\" lacks \"%s\"", err.message, text);
  json_decref(f);
}

static const char *const SPEC =
    "[{\"name\": \"recency\", \"source\": \"subject.recency\", \"encoding\": \"numeric\"},"
    " {\"name\": \"spend\", \"source\": \"subject.spend\", \"encoding\": \"numeric\","
    "  \"missing\": \"impute\", \"impute\": 2.5},"
    " {\"name\": \"mens\", \"source\": \"subject.mens\", \"encoding\": \"bool\", \"missing\": "
    "\"error\"},"
    " {\"name\": \"zip\", \"source\": \"subject.zip\", \"encoding\": \"enum\","
    "  \"categories\": [\"Urban\", \"Rural\"], \"unknown\": \"other\", \"missing\": \"category\"},"
    " {\"name\": \"channel\", \"source\": \"subject.channel\", \"encoding\": \"enum\","
    "  \"categories\": [\"Web\", \"Phone\"], \"unknown\": \"zero\"},"
    " {\"name\": \"tier\", \"source\": \"subject.tier\", \"encoding\": \"enum\","
    "  \"categories\": [\"gold\"], \"unknown\": \"error\", \"missing\": \"error\"}]";

START_TEST(columns_and_names) {
  vd_features *fs = parse(SPEC, "[\"A\", \"B\"]");
  ck_assert_uint_eq(vd_features_count(fs), 6);
  /* recency, spend, mens, zip×(2 + other + missing), channel×2, tier×1, treatment×2 */
  ck_assert_uint_eq(vd_features_base_width(fs), 10);
  ck_assert_uint_eq(vd_features_width(fs), 12);
  const char *names[] = {"recency",       "spend",     "mens",        "zip=Urban",
                         "zip=Rural",     "zip=other", "zip=missing", "channel=Web",
                         "channel=Phone", "tier=gold", "treatment=A", "treatment=B"};
  for (size_t c = 0; c < 12; c++) ck_assert_str_eq(vd_features_column_name(fs, c), names[c]);
  ck_assert_uint_eq(vd_features_column_feature(fs, 5), 3);
  ck_assert_uint_eq(vd_features_column_feature(fs, 11), 6);
  /* the canonical form parses back to the same encoder, and carries its columns */
  json_t *canon = vd_features_to_json(fs);
  vd_error err = {0};
  json_t *arms = json_pack("[s, s]", "A", "B");
  vd_features *again = vd_features_parse(canon, arms, "features", &err);
  ck_assert_msg(again != NULL, "%s", err.message);
  json_t *canon2 = vd_features_to_json(again);
  ck_assert(json_equal(canon, canon2));
  /* tampered columns are caught */
  json_array_set_new(json_object_get(json_array_get(canon, 3), "columns"), 0, json_string("zip=X"));
  ck_assert(vd_features_parse(canon, arms, "features", &err) == NULL);
  ck_assert_str_eq(err.field, "features[3].columns");
  json_decref(arms);
  json_decref(canon);
  json_decref(canon2);
  vd_features_free(again);
  vd_features_free(fs);
}
END_TEST

START_TEST(encodes_values_and_policies) {
  vd_features *fs = parse(SPEC, "[\"A\", \"B\"]");
  float x[12];
  vd_error err = {0};
  json_t *r = json_loads(
      "{\"subject\": {\"recency\": 3, \"spend\": 10.5, \"mens\": true, \"zip\": \"Rural\","
      " \"channel\": \"Phone\", \"tier\": \"gold\"}}",
      0, NULL);
  ck_assert_msg(vd_features_encode(fs, r, x, &err), "%s", err.message);
  const float want[10] = {3, 10.5f, 1, 0, 1, 0, 0, 0, 1, 1};
  for (size_t c = 0; c < 10; c++) ck_assert_msg(x[c] == want[c], "column %zu", c);
  ck_assert(vd_features_set_treatment(fs, "B", "ctl", x, &err));
  ck_assert(x[10] == 0 && x[11] == 1);
  ck_assert(vd_features_set_treatment(fs, "ctl", "ctl", x, &err));
  ck_assert(x[10] == 0 && x[11] == 0);
  ck_assert(!vd_features_set_treatment(fs, "C", "ctl", x, &err));
  ck_assert(strstr(err.message, "\"C\""));
  /* missing: native → NaN; impute → the value; category → the missing column */
  json_t *s = json_object_get(r, "subject");
  json_object_del(s, "recency");
  json_object_del(s, "spend");
  json_object_set_new(s, "zip", json_null());
  json_object_set_new(s, "channel", json_string("Fax")); /* unknown: zero */
  ck_assert(vd_features_encode(fs, r, x, &err));
  ck_assert(isnan(x[0]) && x[1] == 2.5f);
  ck_assert(x[3] == 0 && x[4] == 0 && x[5] == 0 && x[6] == 1);
  ck_assert(x[7] == 0 && x[8] == 0);
  json_object_set_new(s, "zip", json_string("Moon")); /* unknown: other */
  ck_assert(vd_features_encode(fs, r, x, &err));
  ck_assert(x[5] == 1 && x[3] == 0 && x[6] == 0);
  /* unknown: error, missing: error, wrong types — each names the request field */
  json_object_set_new(s, "tier", json_string("silver"));
  ck_assert(!vd_features_encode(fs, r, x, &err));
  ck_assert_str_eq(err.field, "subject.tier");
  ck_assert(strstr(err.message, "\"silver\" is not one of gold"));
  json_object_set_new(s, "tier", json_string("gold"));
  json_object_del(s, "mens");
  ck_assert(!vd_features_encode(fs, r, x, &err));
  ck_assert_str_eq(err.field, "subject.mens");
  ck_assert(strstr(err.message, "missing"));
  json_object_set_new(s, "mens", json_string("yes"));
  ck_assert(!vd_features_encode(fs, r, x, &err));
  ck_assert(strstr(err.message, "expected a bool"));
  json_object_set_new(s, "mens", json_integer(1)); /* 0/1 integers are bools too */
  json_object_set_new(s, "recency", json_string("3"));
  ck_assert(!vd_features_encode(fs, r, x, &err));
  ck_assert_str_eq(err.field, "subject.recency");
  json_decref(r);
  vd_features_free(fs);
}
END_TEST

START_TEST(spec_errors_name_the_field) {
  expect_parse_error("[]", "features", "non-empty list");
  expect_parse_error("[{\"name\": \"a\", \"source\": \"recency\", \"encoding\": \"numeric\"}]",
                     "features[0].source", "dotted");
  expect_parse_error("[{\"name\": \"a\", \"source\": \"s.a\", \"encoding\": \"text\"}]",
                     "features[0].encoding", "expected one of numeric, bool, enum, got \"text\"");
  expect_parse_error(
      "[{\"name\": \"a\", \"source\": \"s.a\", \"encoding\": \"enum\","
      " \"categories\": [\"x\"]}]",
      "features[0].unknown", "expected one of other, zero, error");
  expect_parse_error(
      "[{\"name\": \"a\", \"source\": \"s.a\", \"encoding\": \"enum\","
      " \"categories\": [\"x\", \"x\"], \"unknown\": \"zero\"}]",
      "features[0].categories[1]", "duplicate");
  expect_parse_error(
      "[{\"name\": \"a\", \"source\": \"s.a\", \"encoding\": \"numeric\","
      " \"missing\": \"impute\"}]",
      "features[0].impute", "expected a number");
  expect_parse_error(
      "[{\"name\": \"a\", \"source\": \"s.a\", \"encoding\": \"numeric\","
      " \"missing\": \"category\"}]",
      "features[0].missing", "enum features only");
  expect_parse_error(
      "[{\"name\": \"a\", \"source\": \"s.a\", \"encoding\": \"numeric\"},"
      " {\"name\": \"a\", \"source\": \"s.b\", \"encoding\": \"numeric\"}]",
      "features[1].name", "duplicate");
  expect_parse_error(
      "[{\"name\": \"a\", \"source\": \"s.a\", \"encoding\": \"numeric\", \"x\": 1}]",
      "features[0].x", "unknown key");
}
END_TEST

static const char *write_tmp(const char *text) {
  static char path[64];
  snprintf(path, sizeof path, "/tmp/vd-csv-XXXXXX");
  int fd = mkstemp(path);
  ck_assert(fd >= 0);
  ck_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
  close(fd);
  return path;
}

START_TEST(csv_rows_become_requests) {
  vd_features *fs = parse(SPEC, NULL);
  const char *path = write_tmp(
      "recency,spend,mens,zip,channel,tier\r\n3,,1,\"Rural\",Web,gold\r\n"
      "x,1,1,Urban,Web,gold\n4,1,maybe,Urban,Web,gold\n0x10,1,1,Urban,Web,gold\n"
      "4.9406564584124654e-324,1,1,Urban,Web,gold\n");
  vd_error err = {0};
  vd_csv *csv = vd_csv_open(path, 1 << 20, &err);
  const char *const *cells;
  size_t count, cols[6];
  ck_assert_int_eq(vd_csv_next(csv, &cells, &count, &err), 1);
  ck_assert(vd_features_bind_csv(fs, cells, count, path, cols, &err));
  ck_assert_int_eq(vd_csv_next(csv, &cells, &count, &err), 1);
  ck_assert_uint_eq(vd_csv_line(csv), 2);
  json_t *r = vd_features_csv_request(fs, cols, cells, count, path, 2, &err);
  ck_assert_msg(r != NULL, "%s", err.message);
  ck_assert(json_real_value(vd_json_get_path(r, "subject.recency")) == 3.0);
  ck_assert(vd_json_get_path(r, "subject.spend") == NULL); /* empty cell: absent */
  ck_assert(json_is_true(vd_json_get_path(r, "subject.mens")));
  ck_assert_str_eq(json_string_value(vd_json_get_path(r, "subject.zip")), "Rural");
  json_decref(r);
  ck_assert_int_eq(vd_csv_next(csv, &cells, &count, &err), 1);
  ck_assert(vd_features_csv_request(fs, cols, cells, count, path, 3, &err) == NULL);
  ck_assert(strstr(err.message, "column recency: \"x\" is not a number") && err.line == 3);
  ck_assert_int_eq(vd_csv_next(csv, &cells, &count, &err), 1);
  ck_assert(vd_features_csv_request(fs, cols, cells, count, path, 4, &err) == NULL);
  ck_assert(strstr(err.message, "not 1/0/true/false"));
  /* a numeric cell reads as a JSON body's number (vd_number), as in batch scoring: hexadecimal
   * refused with its reason, a subnormal kept exactly */
  ck_assert_int_eq(vd_csv_next(csv, &cells, &count, &err), 1);
  ck_assert(vd_features_csv_request(fs, cols, cells, count, path, 5, &err) == NULL);
  ck_assert_msg(strstr(err.message,
                       "column recency: \"0x10\" is not a number: hexadecimal is not a JSON "
                       "number: write it in decimal") &&
                    err.line == 5,
                "%s", err.message);
  ck_assert_int_eq(vd_csv_next(csv, &cells, &count, &err), 1);
  r = vd_features_csv_request(fs, cols, cells, count, path, 6, &err);
  ck_assert_msg(r != NULL, "%s", err.message);
  ck_assert(json_real_value(vd_json_get_path(r, "subject.recency")) == DBL_TRUE_MIN);
  json_decref(r);
  ck_assert_int_eq(vd_csv_next(csv, &cells, &count, &err), 0);
  vd_csv_close(csv);
  /* the header lacks a feature's column */
  const char *header[] = {"recency"};
  ck_assert(!vd_features_bind_csv(fs, header, 1, "f.csv", cols, &err));
  ck_assert(strstr(err.message, "no column \"spend\""));
  unlink(path);
  vd_features_free(fs);
}
END_TEST

START_TEST(csv_reader_quotes_and_errors) {
  const char *path = write_tmp("a,\"b,c\",\"say \"\"hi\"\"\"\n\"multi\nline\",x\n\n\"open\n");
  vd_error err = {0};
  vd_csv *csv = vd_csv_open(path, 1 << 20, &err);
  const char *const *cells;
  size_t count;
  ck_assert_int_eq(vd_csv_next(csv, &cells, &count, &err), 1);
  ck_assert_uint_eq(count, 3);
  ck_assert_str_eq(cells[1], "b,c");
  ck_assert_str_eq(cells[2], "say \"hi\"");
  ck_assert_int_eq(vd_csv_next(csv, &cells, &count, &err), 1);
  ck_assert_str_eq(cells[0], "multi\nline");
  ck_assert_uint_eq(vd_csv_line(csv), 2);
  ck_assert_int_eq(vd_csv_next(csv, &cells, &count, &err), 1); /* blank line */
  ck_assert(count == 1 && cells[0][0] == '\0');
  ck_assert_int_eq(vd_csv_next(csv, &cells, &count, &err), -1);
  ck_assert(strstr(err.message, "unterminated"));
  ck_assert_int_eq(err.line, 6);
  vd_csv_close(csv);
  unlink(path);
  path = write_tmp("a\"b\n");
  csv = vd_csv_open(path, 1 << 20, &err);
  ck_assert_int_eq(vd_csv_next(csv, &cells, &count, &err), -1);
  ck_assert(strstr(err.message, "quote inside an unquoted field"));
  vd_csv_close(csv);
  unlink(path);
  ck_assert(vd_csv_open("/nonexistent.csv", 100, &err) == NULL);
}
END_TEST

int main(void) {
  Suite *s = suite_create("models/features");
  TCase *tc = tcase_create("features");
  tcase_add_test(tc, columns_and_names);
  tcase_add_test(tc, encodes_values_and_policies);
  tcase_add_test(tc, spec_errors_name_the_field);
  tcase_add_test(tc, csv_rows_become_requests);
  tcase_add_test(tc, csv_reader_quotes_and_errors);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
