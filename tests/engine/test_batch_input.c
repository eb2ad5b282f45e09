/* `verdict score` input: CSV rows → requests by the schema and mapping, JSON Lines, and every
 * way a row or a file can be wrong (with line numbers). */
#define _GNU_SOURCE
#include <float.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vd_batch_input.h"
#include "vd_schema.h"
#include "vd_test.h"
#include "vd_utf8.h"

static const char *schema_path = VERDICT_SOURCE_DIR "/examples/promotions/schema.yaml";
static const char *mapping_path = VERDICT_SOURCE_DIR "/examples/promotions/batch.yaml";
static const char *hillstrom_header =
    "recency,history_segment,history,mens,womens,zip_code,newbie,channel,segment,visit,"
    "conversion,spend\n";

static vd_schema *load_schema(void) {
  vd_diags diags = {0};
  vd_schema *s = vd_schema_load(schema_path, &diags);
  ck_assert_msg(s != NULL, "schema: %s", diags.count ? diags.items[0].message : "?");
  vd_diags_free(&diags);
  return s;
}

/* Writes text[0..len) to a temporary file with the given suffix; the caller unlinks and frees
 * it. */
static char *temp_file_n(const char *suffix, const char *text, size_t len) {
  char *path = NULL;
  ck_assert_int_gt(asprintf(&path, "/tmp/vd-batch-XXXXXX%s", suffix), 0);
  int fd = mkstemps(path, (int)strlen(suffix));
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
  close(fd);
  return path;
}

static char *temp_file(const char *suffix, const char *text) {
  return temp_file_n(suffix, text, strlen(text));
}

static void remove_file(char *path) {
  unlink(path);
  free(path);
}

typedef struct fixture {
  vd_schema *schema;
  vd_batch_mapping *mapping;
  vd_batch_reader *reader;
  char *path;
} fixture;

static vd_batch_reader *open_with(fixture *f, const char *suffix, const char *text,
                                  const char *mapping, vd_error *err) {
  f->schema = load_schema();
  vd_error merr = {0};
  f->mapping = vd_batch_mapping_load(mapping, &merr);
  ck_assert_msg(f->mapping != NULL, "%s", merr.message);
  f->path = temp_file(suffix, text);
  f->reader = vd_batch_reader_open(f->path, VD_BATCH_AUTO, f->schema, f->mapping, err);
  return f->reader;
}

static void fixture_done(fixture *f) {
  vd_batch_reader_close(f->reader);
  vd_batch_mapping_free(f->mapping);
  vd_schema_free(f->schema);
  remove_file(f->path);
}

static json_t *expect_row(vd_batch_reader *r, size_t want_line) {
  json_t *req = NULL;
  size_t line = 0;
  vd_diags diags = {0};
  vd_error err = {0};
  vd_batch_next st = vd_batch_reader_next(r, &req, &line, &diags, &err);
  ck_assert_msg(st == VD_BATCH_ROW, "status %d: %s %s", st, err.message,
                diags.count ? diags.items[0].message : "");
  ck_assert_uint_eq(line, want_line);
  vd_diags_free(&diags);
  return req;
}

/* Expects a rejected row at want_line whose first problem names `field` and contains `text`. */
static void expect_reject(vd_batch_reader *r, size_t want_line, const char *field,
                          const char *text) {
  json_t *req = NULL;
  size_t line = 0;
  vd_diags diags = {0};
  ck_assert_int_eq(vd_batch_reader_next(r, &req, &line, &diags, NULL), VD_BATCH_REJECT);
  ck_assert_ptr_null(req);
  ck_assert_uint_eq(line, want_line);
  ck_assert_uint_ge(diags.count, 1);
  ck_assert_int_eq(diags.items[0].line, (int)want_line);
  if (field) ck_assert_str_eq(diags.items[0].field, field);
  ck_assert_msg(strstr(diags.items[0].message, text), "'%s' lacks '%s'", diags.items[0].message,
                text);
  vd_diags_free(&diags);
}

static void expect_end(vd_batch_reader *r) {
  json_t *req = NULL;
  size_t line = 0;
  ck_assert_int_eq(vd_batch_reader_next(r, &req, &line, NULL, NULL), VD_BATCH_END);
}

START_TEST(hillstrom_rows_become_typed_requests) {
  char text[1024];
  snprintf(text, sizeof text, "%s%s%s", hillstrom_header,
           "6,3) $200 - $350,329.08,1,0,Rural,1,Web,No E-Mail,0,0,0\n",
           "7,\"2) $100 - $200\",180.65,0,1,Surburban,0,Phone,Womens E-Mail,1,0,0\n");
  fixture f = {0};
  vd_error err = {0};
  ck_assert_msg(open_with(&f, ".csv", text, mapping_path, &err), "%s", err.message);
  ck_assert_int_eq(vd_batch_reader_format(f.reader), VD_BATCH_CSV);
  json_t *req = expect_row(f.reader, 2);
  json_t *subject = json_object_get(req, "subject");
  ck_assert(json_is_integer(json_object_get(subject, "recency")));
  ck_assert_int_eq(json_integer_value(json_object_get(subject, "recency")), 6);
  ck_assert(json_is_real(json_object_get(subject, "history")));
  ck_assert_double_eq_tol(json_real_value(json_object_get(subject, "history")), 329.08, 1e-9);
  ck_assert(json_is_true(json_object_get(subject, "mens")));
  ck_assert(json_is_false(json_object_get(subject, "womens")));
  ck_assert_str_eq(json_string_value(json_object_get(subject, "zip_code")), "Rural");
  ck_assert_str_eq(json_string_value(json_object_get(subject, "history_segment")),
                   "3) $200 - $350");
  ck_assert_str_eq(json_string_value(json_object_get(subject, "id")), "line-2");
  ck_assert_str_eq(json_string_value(json_object_get(subject, "country")), "US"); /* constant */
  ck_assert(json_is_false(json_object_get(subject, "marketing_opt_out")));
  ck_assert_ptr_null(json_object_get(subject, "segment")); /* ignored outcome column */
  ck_assert_ptr_null(json_object_get(subject, "visit"));
  ck_assert_ptr_null(json_object_get(req, "candidates")); /* every candidate of the deployment */
  /* what the rows become is valid against the schema */
  vd_diags diags = {0};
  json_t *normal = vd_schema_validate(f.schema, req, &diags);
  ck_assert_msg(normal != NULL, "%s: %s", diags.count ? diags.items[0].field : "",
                diags.count ? diags.items[0].message : "");
  json_decref(normal);
  json_decref(req);
  req = expect_row(f.reader, 3);
  ck_assert_str_eq(json_string_value(json_object_get(json_object_get(req, "subject"), "id")),
                   "line-3");
  json_decref(req);
  expect_end(f.reader);
  ck_assert_uint_eq(vd_batch_reader_ignored_count(f.reader), 4);
  ck_assert_str_eq(vd_batch_reader_ignored(f.reader, 0), "segment");
  ck_assert_str_eq(json_string_value(json_object_get(vd_batch_reader_columns(f.reader), "recency")),
                   "subject.recency");
  ck_assert_double_eq_tol(vd_batch_reader_progress(f.reader), 1.0, 1e-9);
  fixture_done(&f);
}
END_TEST

START_TEST(bad_cells_reject_the_row_with_line_and_field) {
  char text[1024];
  snprintf(text, sizeof text, "%s%s%s%s%s", hillstrom_header,
           "6,3) $200 - $350,329.08,yes,0,Rural,1,Web,No E-Mail,0,0,0\n", /* line 2: bool */
           "six,3) $200 - $350,abc,1,0,Rural,1,Web,No E-Mail,0,0,0\n",    /* line 3: two */
           "6,3) $200 - $350,329.08,1,0,Rural\n",                         /* line 4: short */
           "5,1) $0 - $100,80.5,1,0,Urban,0,Web,Mens E-Mail,0,0,0\n");    /* line 5: fine */
  fixture f = {0};
  vd_error err = {0};
  ck_assert_msg(open_with(&f, ".csv", text, mapping_path, &err), "%s", err.message);
  expect_reject(f.reader, 2, "subject.mens", "column 4 (mens): expected bool");
  json_t *req = NULL;
  size_t line = 0;
  vd_diags diags = {0};
  ck_assert_int_eq(vd_batch_reader_next(f.reader, &req, &line, &diags, NULL), VD_BATCH_REJECT);
  ck_assert_uint_eq(line, 3);
  ck_assert_uint_eq(diags.count, 2); /* every problem of the row, not only the first */
  ck_assert_str_eq(diags.items[0].field, "subject.recency");
  ck_assert_ptr_nonnull(strstr(diags.items[0].message, "expected int, got \"six\""));
  ck_assert_str_eq(diags.items[1].field, "subject.history");
  ck_assert_str_eq(diags.items[1].file, f.path);
  vd_diags_free(&diags);
  expect_reject(f.reader, 4, NULL, "6 fields, but the header has 12");
  json_decref(expect_row(f.reader, 5)); /* reading goes on after rejects */
  expect_end(f.reader);
  fixture_done(&f);
}
END_TEST

/* A bad cell is quoted in the message as UTF-8 whatever it holds: invalid bytes escaped (\xff),
 * a long cell cut on a character boundary; raw, jansson refused the message and the output line
 * carried no error at all. */
START_TEST(a_bad_cell_is_quoted_as_utf8) {
  char long_cell[80];
  snprintf(long_cell, sizeof long_cell, "%063d\xc3\xa9", 1);
  const char *cells[] = {"\xff\xfe", long_cell, "\xe2\x82"};
  const char *shown[] = {"got \"\\xff\\xfe\"", "got \"00000", "got \"\\xe2\\x82\""};
  for (size_t c = 0; c < 3; c++) {
    char text[1024];
    snprintf(text, sizeof text, "%s6,3) $200 - $350,%s,1,0,Rural,1,Web,No E-Mail,0,0,0\n",
             hillstrom_header, cells[c]);
    fixture f = {0};
    vd_error err = {0};
    ck_assert_msg(open_with(&f, ".csv", text, mapping_path, &err), "%s", err.message);
    json_t *req = NULL;
    size_t line = 0;
    vd_diags diags = {0};
    ck_assert_int_eq(vd_batch_reader_next(f.reader, &req, &line, &diags, NULL), VD_BATCH_REJECT);
    ck_assert_uint_eq(diags.count, 1);
    const char *m = diags.items[0].message;
    ck_assert_msg(vd_utf8_valid_prefix(m, strlen(m)) == strlen(m), "cell %zu: not UTF-8: %s", c, m);
    ck_assert_msg(strstr(m, shown[c]), "cell %zu: '%s' lacks '%s'", c, m, shown[c]);
    vd_diags_free(&diags);
    fixture_done(&f);
  }
}
END_TEST

/* A CSV cell's number is read as a JSON line's is (vd_number): hexadecimal is refused with its
 * reason, a subnormal kept exactly, and a NUL byte is no part of a cell. */
START_TEST(csv_numbers_read_as_json_numbers) {
  char text[1024];
  snprintf(text, sizeof text, "%s%s%s%s", hillstrom_header,
           "0x10,3) $200 - $350,329.08,1,0,Rural,1,Web,No E-Mail,0,0,0\n", /* 2: hex int */
           "6,3) $200 - $350,0x1p3,1,0,Rural,1,Web,No E-Mail,0,0,0\n",     /* 3: hex double */
           "6,3) $200 - $350,4.9406564584124654e-324,1,0,Rural,1,Web,No E-Mail,0,0,0\n");
  fixture f = {0};
  vd_error err = {0};
  ck_assert_msg(open_with(&f, ".csv", text, mapping_path, &err), "%s", err.message);
  expect_reject(f.reader, 2, "subject.recency",
                "column 1 (recency): expected int, got \"0x10\": hexadecimal is not a JSON "
                "number: write it in decimal");
  expect_reject(f.reader, 3, "subject.history",
                "column 3 (history): expected a number, got \"0x1p3\": hexadecimal");
  json_t *req = expect_row(f.reader, 4);
  double csv_value = json_real_value(json_object_get(json_object_get(req, "subject"), "history"));
  json_decref(req);
  expect_end(f.reader);
  fixture_done(&f);
  /* the same value on a JSON line */
  fixture j = {0};
  ck_assert_msg(open_with(&j, ".jsonl",
                          "{\"subject\": {\"id\": \"c1\", \"history\": 4.9406564584124654e-324}}\n",
                          mapping_path, &err),
                "%s", err.message);
  req = expect_row(j.reader, 1);
  ck_assert(csv_value ==
            json_real_value(json_object_get(json_object_get(req, "subject"), "history")));
  ck_assert(csv_value == DBL_TRUE_MIN);
  json_decref(req);
  fixture_done(&j);

  /* "6\0junk" would read as 6: refused where the NUL is */
  static const char nul_row[] = "recency,history\n6\0junk,1\n";
  vd_schema *schema = load_schema();
  vd_batch_mapping *mapping = vd_batch_mapping_load(mapping_path, &err);
  char *path = temp_file_n(".csv", nul_row, sizeof nul_row - 1);
  vd_batch_reader *r = vd_batch_reader_open(path, VD_BATCH_AUTO, schema, mapping, &err);
  ck_assert_msg(r != NULL, "%s", err.message);
  json_t *none = NULL;
  size_t line = 0;
  ck_assert_int_eq(vd_batch_reader_next(r, &none, &line, NULL, &err), VD_BATCH_FATAL);
  ck_assert_str_eq(err.message, "a NUL byte in a field (CSV is text)");
  ck_assert_int_eq(err.line, 2);
  ck_assert_int_eq(err.column, 2);
  vd_batch_reader_close(r);
  vd_batch_mapping_free(mapping);
  vd_schema_free(schema);
  remove_file(path);
}
END_TEST

START_TEST(blank_lines_and_multiline_fields_keep_line_numbers) {
  const char *text =
      "recency,history,mens,womens,zip_code,newbie,channel,id\n"
      "\n"
      "3,10.5,1,1,Urban,0,Web,\"a\nb\"\n" /* line 3, spans two lines */
      "4,11,0,1,Rural,1,Phone,c9\r\n";    /* line 5, CRLF */
  fixture f = {0};
  vd_error err = {0};
  ck_assert_msg(open_with(&f, ".csv", text, NULL, &err), "%s", err.message);
  json_t *req = expect_row(f.reader, 3);
  ck_assert_str_eq(json_string_value(json_object_get(json_object_get(req, "subject"), "id")),
                   "a\nb"); /* the id column wins over line-N */
  json_decref(req);
  req = expect_row(f.reader, 5);
  json_t *subject = json_object_get(req, "subject");
  ck_assert_str_eq(json_string_value(json_object_get(subject, "id")), "c9");
  ck_assert_str_eq(json_string_value(json_object_get(subject, "channel")), "Phone");
  ck_assert(json_is_real(json_object_get(subject, "history"))); /* "11" in a double field */
  json_decref(req);
  expect_end(f.reader);
  fixture_done(&f);
}
END_TEST

START_TEST(a_byte_order_mark_is_not_part_of_the_header) {
  fixture f = {0};
  vd_error err = {0};
  ck_assert_msg(open_with(&f, ".csv", "\xEF\xBB\xBFrecency,history\r\n3,1.5\r\n", NULL, &err), "%s",
                err.message);
  json_t *req = expect_row(f.reader, 2);
  ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(req, "subject"), "recency")),
                   3);
  json_decref(req);
  fixture_done(&f);
}
END_TEST

START_TEST(an_unknown_column_is_an_error_at_the_header) {
  fixture f = {0};
  vd_error err = {0};
  ck_assert_ptr_null(open_with(&f, ".csv", "recency,histroy\n1,2\n", NULL, &err));
  ck_assert_str_eq(err.file, f.path);
  ck_assert_int_eq(err.line, 1);
  ck_assert_int_eq(err.column, 9);
  ck_assert_ptr_nonnull(strstr(err.message, "column 2 ('histroy') fills no field"));
  ck_assert_ptr_nonnull(strstr(err.message, "csv.ignore"));
  fixture_done(&f);
}
END_TEST

START_TEST(a_candidate_column_is_refused) {
  fixture f = {0};
  vd_error err = {0};
  ck_assert_ptr_null(open_with(&f, ".csv", "recency,candidate.id\n1,mens-email\n", NULL, &err));
  ck_assert_ptr_nonnull(strstr(err.message, "candidate field"));
  fixture_done(&f);
}
END_TEST

START_TEST(an_unterminated_quote_is_fatal) {
  fixture f = {0};
  vd_error err = {0};
  ck_assert(open_with(&f, ".csv", "recency,history\n1,2\n\"3,4\n", NULL, &err));
  json_decref(expect_row(f.reader, 2));
  json_t *req = NULL;
  size_t line = 0;
  ck_assert_int_eq(vd_batch_reader_next(f.reader, &req, &line, NULL, &err), VD_BATCH_FATAL);
  ck_assert_ptr_nonnull(strstr(err.message, "unterminated"));
  ck_assert_str_eq(err.file, f.path);
  ck_assert_int_ge(err.line, 3); /* where the reader noticed: the end of the file */
  fixture_done(&f);
}
END_TEST

START_TEST(json_lines_pass_through_with_errors_by_line) {
  const char *text =
      "{\"subject\": {\"id\": \"c1\", \"recency\": 3}}\n"
      "\n"
      "{\"subject\": {\"id\": \"c2\",}\n"
      "[1, 2]\n"
      "  {\"subject\": {\"id\": \"c3\"}, \"candidates\": [{\"id\": \"mens-email\"}]}\n";
  fixture f = {0};
  vd_error err = {0};
  ck_assert_msg(open_with(&f, ".jsonl", text, NULL, &err), "%s", err.message);
  ck_assert_int_eq(vd_batch_reader_format(f.reader), VD_BATCH_JSONL);
  json_t *req = expect_row(f.reader, 1);
  ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(req, "subject"), "recency")),
                   3);
  json_decref(req);
  expect_reject(f.reader, 3, NULL, "invalid JSON at column");
  expect_reject(f.reader, 4, NULL, "must be a JSON object");
  req = expect_row(f.reader, 5);
  ck_assert_uint_eq(json_array_size(json_object_get(req, "candidates")), 1);
  json_decref(req);
  expect_end(f.reader);
  fixture_done(&f);
}
END_TEST

START_TEST(format_is_sniffed_without_an_extension) {
  fixture f = {0};
  vd_error err = {0};
  ck_assert(open_with(&f, ".txt", "\n  {\"subject\": {}}\n", NULL, &err));
  ck_assert_int_eq(vd_batch_reader_format(f.reader), VD_BATCH_JSONL);
  fixture_done(&f);
  fixture g = {0};
  ck_assert(open_with(&g, ".txt", "recency\n3\n", NULL, &err));
  ck_assert_int_eq(vd_batch_reader_format(g.reader), VD_BATCH_CSV);
  fixture_done(&g);
  vd_batch_format fmt;
  ck_assert(vd_batch_format_parse("jsonl", &fmt) && fmt == VD_BATCH_JSONL);
  ck_assert(!vd_batch_format_parse("xml", &fmt));
}
END_TEST

START_TEST(mapping_file_mistakes_name_their_position) {
  vd_error err = {0};
  char *bad = temp_file(".yaml", "csv:\n  colums: {a: subject.id}\n");
  ck_assert_ptr_null(vd_batch_mapping_load(bad, &err));
  ck_assert_int_eq(err.line, 2);
  ck_assert_ptr_nonnull(strstr(err.message, "did you mean 'columns'"));
  remove_file(bad);
  bad = temp_file(".yaml", "csv:\n  columns: {a: 3}\n");
  ck_assert_ptr_null(vd_batch_mapping_load(bad, &err));
  ck_assert_ptr_nonnull(strstr(err.message, "must be a string"));
  remove_file(bad);
  /* a constant for a field the schema lacks: found when the reader opens, at its line */
  char *mapping = temp_file(".yaml", "csv:\n  constants:\n    subject.countri: US\n");
  fixture f = {0};
  ck_assert_ptr_null(open_with(&f, ".csv", "recency\n3\n", mapping, &err));
  ck_assert_int_eq(err.line, 3);
  ck_assert_ptr_nonnull(strstr(err.message, "did you mean 'subject.country'"));
  fixture_done(&f);
  remove_file(mapping);
  /* a mapped column, and one mapped to a field that does not exist */
  mapping = temp_file(".yaml", "csv:\n  columns: {customer: subject.id, r: subject.rec}\n");
  fixture g = {0};
  ck_assert_ptr_null(open_with(&g, ".csv", "customer,r\nx,3\n", mapping, &err));
  ck_assert_ptr_nonnull(strstr(err.message, "column 2 ('r')"));
  ck_assert_int_eq(err.column, 10);
  fixture_done(&g);
  remove_file(mapping);
}
END_TEST

START_TEST(set_values_are_converted_by_the_schema) {
  fixture f = {0};
  f.schema = load_schema();
  f.mapping = vd_batch_mapping_load(mapping_path, NULL);
  vd_error err = {0};
  ck_assert(vd_batch_mapping_set(f.mapping, "subject.emails_last_30d=3", &err));
  ck_assert(vd_batch_mapping_set(f.mapping, "subject.country=CA", &err));
  ck_assert(!vd_batch_mapping_set(f.mapping, "no-equals", &err));
  f.path = temp_file(".csv", "recency,history\n3,1.5\n");
  f.reader = vd_batch_reader_open(f.path, VD_BATCH_AUTO, f.schema, f.mapping, &err);
  ck_assert_msg(f.reader != NULL, "%s", err.message);
  json_t *req = expect_row(f.reader, 2);
  json_t *subject = json_object_get(req, "subject");
  ck_assert_int_eq(json_integer_value(json_object_get(subject, "emails_last_30d")), 3);
  ck_assert_str_eq(json_string_value(json_object_get(subject, "country")), "CA"); /* over file */
  json_decref(req);
  vd_batch_reader_close(f.reader);
  ck_assert(vd_batch_mapping_set(f.mapping, "subject.mens=maybe", &err));
  f.reader = vd_batch_reader_open(f.path, VD_BATCH_AUTO, f.schema, f.mapping, &err);
  ck_assert_ptr_null(f.reader);
  ck_assert_ptr_nonnull(strstr(err.message, "--set subject.mens"));
  ck_assert_ptr_nonnull(strstr(err.message, "expected bool"));
  fixture_done(&f);
}
END_TEST

START_TEST(the_whole_hillstrom_file_maps_without_a_reject) {
  char path[512];
  if (!vd_test_shared_path("data/hillstrom/hillstrom.csv", path, sizeof path)) return;
  vd_schema *schema = load_schema();
  vd_batch_mapping *mapping = vd_batch_mapping_load(mapping_path, NULL);
  vd_error err = {0};
  vd_batch_reader *r = vd_batch_reader_open(path, VD_BATCH_AUTO, schema, mapping, &err);
  ck_assert_msg(r != NULL, "%s", err.message);
  size_t rows = 0, line = 0, last = 1;
  json_t *req = NULL;
  vd_diags diags = {0};
  vd_batch_next st;
  bool sanitizer = getenv("VERDICT_UNDER_SANITIZER") != NULL;
  while ((st = vd_batch_reader_next(r, &req, &line, &diags, &err)) == VD_BATCH_ROW) {
    ck_assert_uint_eq(line, last + 1);
    last = line;
    if (!sanitizer || rows % 50 == 0) { /* every row is valid against the schema */
      json_t *normal = vd_schema_validate(schema, req, &diags);
      ck_assert_msg(normal != NULL, "line %zu: %s", line,
                    diags.count ? diags.items[0].message : "");
      json_decref(normal);
    }
    json_decref(req);
    rows++;
  }
  ck_assert_int_eq(st, VD_BATCH_END);
  ck_assert_uint_eq(rows, 48000);
  vd_diags_free(&diags);
  vd_batch_reader_close(r);
  vd_batch_mapping_free(mapping);
  vd_schema_free(schema);
}
END_TEST

int main(void) {
  Suite *s = suite_create("batch_input");
  TCase *tc = tcase_create("batch_input");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, hillstrom_rows_become_typed_requests);
  tcase_add_test(tc, bad_cells_reject_the_row_with_line_and_field);
  tcase_add_test(tc, a_bad_cell_is_quoted_as_utf8);
  tcase_add_test(tc, csv_numbers_read_as_json_numbers);
  tcase_add_test(tc, blank_lines_and_multiline_fields_keep_line_numbers);
  tcase_add_test(tc, a_byte_order_mark_is_not_part_of_the_header);
  tcase_add_test(tc, an_unknown_column_is_an_error_at_the_header);
  tcase_add_test(tc, a_candidate_column_is_refused);
  tcase_add_test(tc, an_unterminated_quote_is_fatal);
  tcase_add_test(tc, json_lines_pass_through_with_errors_by_line);
  tcase_add_test(tc, format_is_sniffed_without_an_extension);
  tcase_add_test(tc, mapping_file_mistakes_name_their_position);
  tcase_add_test(tc, set_values_are_converted_by_the_schema);
  tcase_add_test(tc, the_whole_hillstrom_file_maps_without_a_reject);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
