/* Schemas: loading, every kind of mistake in a schema file (with its position), request
 * validation messages, normalisation and the canonical version. */
#include <string.h>

#include "vd_schema.h"
#include "vd_test.h"
#include "vd_utf8.h"

static const char *const promotions_schema = VERDICT_SOURCE_DIR "/examples/promotions/schema.yaml";

/* Loads text as a schema expected to fail; returns the formatted diagnostics joined by '\n'. */
static char errors_text[8192];
static const char *schema_errors(const char *text) {
  vd_diags diags = {0};
  vd_schema *s = vd_schema_load_string(text, strlen(text), "s.yaml", &diags);
  ck_assert_msg(s == NULL, "schema unexpectedly loaded:\n%s", text);
  errors_text[0] = '\0';
  for (size_t i = 0; i < diags.count; i++) {
    char line[1024];
    vd_error_format(&diags.items[i], line, sizeof line);
    strncat(errors_text, line, sizeof errors_text - strlen(errors_text) - 2);
    if (i + 1 < diags.count) strcat(errors_text, "\n");
  }
  vd_diags_free(&diags);
  return errors_text;
}

static vd_schema *load_promotions(void) {
  vd_diags diags = {0};
  vd_schema *s = vd_schema_load(promotions_schema, &diags);
  ck_assert_msg(s != NULL, "%s", diags.count ? diags.items[0].message : "?");
  vd_diags_free(&diags);
  return s;
}

static json_t *valid_request(void) {
  return json_pack("{s{sssisfsbsbsssbsssbsiss}s[{ss}{ss}]s{ss}}", "subject", "id", "c1", "recency",
                   6, "history", 329.08, "mens", 1, "womens", 1, "zip_code", "Rural", "newbie", 1,
                   "channel", "Web", "marketing_opt_out", 0, "emails_last_30d", 1, "country", "US",
                   "candidates", "id", "mens-email", "id", "womens-email", "context", "now",
                   "2026-12-03T13:00:00Z");
}

/* Validates and returns the diagnostics joined by '\n' ("" when valid). */
static const char *validation_errors(const vd_schema *s, json_t *request) {
  vd_diags diags = {0};
  json_t *out = vd_schema_validate_at(s, request, 0, &diags);
  errors_text[0] = '\0';
  for (size_t i = 0; i < diags.count; i++) {
    char line[1024];
    vd_error_format(&diags.items[i], line, sizeof line);
    strncat(errors_text, line, sizeof errors_text - strlen(errors_text) - 2);
    if (i + 1 < diags.count) strcat(errors_text, "\n");
  }
  ck_assert_msg((out == NULL) == (diags.count > 0), "result and diagnostics disagree");
  json_decref(out);
  vd_diags_free(&diags);
  json_decref(request);
  return errors_text;
}

START_TEST(loads_the_promotions_schema) {
  vd_schema *s = load_promotions();
  ck_assert_str_eq(vd_schema_name(s), "promotions");
  const vd_schema_field *f = vd_schema_find(s, "subject.recency");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(vd_schema_field_type(f), VD_FIELD_INT);
  ck_assert_int_eq(vd_schema_field_section(f), VD_SECTION_SUBJECT);
  ck_assert_str_eq(vd_schema_field_name(f), "recency");
  double min = 0, max = 0;
  ck_assert(vd_schema_field_min(f, &min) && vd_schema_field_max(f, &max));
  ck_assert(min == 1 && max == 12);
  ck_assert(vd_schema_field_required(f));
  f = vd_schema_find(s, "subject.zip_code");
  ck_assert_int_eq(vd_schema_field_type(f), VD_FIELD_ENUM);
  ck_assert_int_eq(vd_schema_field_enum_count(f), 3);
  ck_assert_str_eq(vd_schema_field_enum_value(f, 1), "Surburban");
  f = vd_schema_find(s, "context.now");
  ck_assert_int_eq(vd_schema_field_type(f), VD_FIELD_TIMESTAMP);
  ck_assert_str_eq(json_string_value(vd_schema_field_default(f)), "now");
  ck_assert_ptr_null(vd_schema_find(s, "subject.nope"));
  ck_assert_int_eq(strlen(vd_schema_version(s)), 64);
  vd_schema_free(s);
}
END_TEST

START_TEST(validation_names_the_path_and_why) {
  vd_schema *s = load_promotions();
  json_t *r = valid_request();
  json_object_set_new(json_object_get(r, "subject"), "recency", json_string("six"));
  ck_assert_str_eq(validation_errors(s, r),
                   "subject.recency: expected int in [1, 12], got \"six\"");
  r = valid_request();
  json_object_set_new(json_object_get(r, "subject"), "recency", json_integer(13));
  ck_assert_str_eq(validation_errors(s, r), "subject.recency: expected int in [1, 12], got 13");
  r = valid_request();
  json_object_set_new(json_object_get(r, "subject"), "recency", json_real(2.5));
  ck_assert_str_eq(validation_errors(s, r), "subject.recency: expected int in [1, 12], got 2.5");
  r = valid_request();
  json_object_set_new(json_object_get(r, "subject"), "zip_code", json_string("Downtown"));
  ck_assert_str_eq(validation_errors(s, r),
                   "subject.zip_code: expected one of \"Urban\", \"Surburban\", \"Rural\", got "
                   "\"Downtown\"");
  r = valid_request();
  json_object_set_new(json_object_get(r, "subject"), "zip_code", json_string("Suburban"));
  ck_assert_str_eq(validation_errors(s, r),
                   "subject.zip_code: expected one of \"Urban\", \"Surburban\", \"Rural\", got "
                   "\"Suburban\" (did you mean \"Surburban\"?)");
  r = valid_request();
  json_object_set_new(json_object_get(r, "subject"), "history", json_real(-1));
  ck_assert_str_eq(validation_errors(s, r), "subject.history: expected double >= 0, got -1.0");
  r = valid_request();
  json_object_set_new(json_object_get(r, "subject"), "mens", json_string("no"));
  ck_assert_str_eq(validation_errors(s, r), "subject.mens: expected bool, got \"no\"");
  r = valid_request();
  json_object_set_new(json_object_get(r, "subject"), "country", json_string("USA"));
  ck_assert_str_eq(validation_errors(s, r),
                   "subject.country: expected string of at most 2 characters, got a string of 3 "
                   "characters");
  r = valid_request();
  json_object_set_new(json_object_get(r, "context"), "now", json_string("yesterday"));
  ck_assert_str_eq(validation_errors(s, r),
                   "context.now: expected timestamp (RFC 3339, e.g. \"2026-12-03T13:26:45Z\"), "
                   "got \"yesterday\"");
  vd_schema_free(s);
}
END_TEST

START_TEST(validation_reports_every_violation) {
  vd_schema *s = load_promotions();
  json_t *r = valid_request();
  json_t *subject = json_object_get(r, "subject");
  json_object_set_new(subject, "recency", json_string("six"));
  json_object_del(subject, "marketing_opt_out");
  json_object_set_new(subject, "marketing_optout", json_true());
  json_object_set_new(json_array_get(json_object_get(r, "candidates"), 1), "id",
                      json_string("kids-email"));
  ck_assert_str_eq(validation_errors(s, r),
                   "subject.recency: expected int in [1, 12], got \"six\"\n"
                   "subject.marketing_opt_out: missing required field (expected bool)\n"
                   "subject.marketing_optout: unknown field (did you mean "
                   "subject.marketing_opt_out?)\n"
                   "candidates[1].id: expected one of \"mens-email\", \"womens-email\", got "
                   "\"kids-email\"");
  vd_schema_free(s);
}
END_TEST

START_TEST(validation_rejects_bad_shapes) {
  vd_schema *s = load_promotions();
  json_t *r = valid_request();
  json_object_set_new(r, "subject", json_integer(3));
  ck_assert_str_eq(validation_errors(s, r), "subject: expected an object, got 3");
  r = valid_request();
  json_object_set_new(r, "candidates", json_string("mens-email"));
  ck_assert_str_eq(validation_errors(s, r),
                   "candidates: expected a list of candidate objects, got \"mens-email\"");
  ck_assert_str_eq(validation_errors(s, json_string("x")),
                   "request: expected a JSON object, got \"x\"");
  r = valid_request();
  json_object_set_new(json_object_get(r, "context"), "weather", json_string("rain"));
  ck_assert_str_eq(validation_errors(s, r),
                   "context.weather: unknown field (schema promotions declares no such field)");
  vd_schema_free(s);
}
END_TEST

/* A value shown in a message is cut at 60 bytes: on a character boundary, so the message stays
 * UTF-8 (cut inside "é", jansson refused the message and the error vanished from the answer). */
START_TEST(a_cut_value_keeps_whole_characters) {
  vd_schema *s = load_promotions();
  char zip[128] = "R";
  for (int i = 0; i < 40; i++) strcat(zip, "\xc3\xa9");
  char other[128];
  snprintf(other, sizeof other,
           "%055d\xc3\xa9"
           "bbbbbbbbbb",
           0); /* "é" across byte 57 */
  const char *values[] = {zip, other};
  for (size_t v = 0; v < 2; v++) {
    json_t *r = valid_request();
    json_object_set_new(json_object_get(r, "subject"), "zip_code", json_string(values[v]));
    const char *text = validation_errors(s, r);
    ck_assert_msg(vd_utf8_valid_prefix(text, strlen(text)) == strlen(text), "not UTF-8: %s", text);
    ck_assert_msg(strstr(text, "...") && strstr(text, "got \""), "%s", text);
    json_t *as_json = json_string(text);
    ck_assert_msg(as_json != NULL, "jansson refuses: %s", text);
    json_decref(as_json);
  }
  char *shown = strstr(errors_text, "got \"");
  ck_assert_ptr_nonnull(shown);
  ck_assert_msg(strncmp(shown + 5, other, 55) == 0, "the whole first part is kept: %s", shown);
  vd_schema_free(s);
}
END_TEST

START_TEST(validation_normalises) {
  vd_schema *s = load_promotions();
  json_t *r = valid_request();
  json_t *subject = json_object_get(r, "subject");
  json_object_set_new(subject, "recency", json_real(6.0));      /* integral real → int */
  json_object_set_new(subject, "history", json_integer(300));   /* int → double */
  json_object_set_new(subject, "history_segment", json_null()); /* null = absent */
  json_object_del(r, "context");                                /* context.now: default now */
  json_object_set_new(r, "explain", json_string("full"));       /* API keys pass through */
  vd_diags diags = {0};
  json_t *out = vd_schema_validate_at(s, r, 1764768405123456, &diags);
  ck_assert_ptr_nonnull(out);
  json_t *osub = json_object_get(out, "subject");
  ck_assert(json_is_integer(json_object_get(osub, "recency")));
  ck_assert_int_eq(json_integer_value(json_object_get(osub, "recency")), 6);
  ck_assert(json_is_real(json_object_get(osub, "history")));
  ck_assert_ptr_null(json_object_get(osub, "history_segment"));
  ck_assert_str_eq(json_string_value(json_object_get(json_object_get(out, "context"), "now")),
                   "2025-12-03T13:26:45.123456Z");
  ck_assert_str_eq(json_string_value(json_object_get(out, "explain")), "full");
  ck_assert_int_eq(json_array_size(json_object_get(out, "candidates")), 2);
  /* the input is untouched */
  ck_assert(json_is_real(json_object_get(subject, "recency")));
  json_decref(out);
  json_decref(r);
  vd_schema_free(s);
}
END_TEST

START_TEST(nested_fields_and_lists) {
  const char *text =
      "schema: t\n"
      "fields:\n"
      "  subject.address.country: { type: string, default: US }\n"
      "  subject.tags: { type: \"list<enum>\", values: [a, b], max_items: 2 }\n"
      "  subject.scores: { type: \"list<int>\", min: 0 }\n";
  vd_diags diags = {0};
  vd_schema *s = vd_schema_load_string(text, strlen(text), "t.yaml", &diags);
  ck_assert_ptr_nonnull(s);
  ck_assert_str_eq(vd_schema_field_name(vd_schema_find(s, "subject.address.country")),
                   "address.country");
  json_t *r = json_pack("{s{s[ss]s[ii]}}", "subject", "tags", "a", "b", "scores", 1, 2);
  json_t *out = vd_schema_validate_at(s, r, 0, &diags);
  ck_assert_ptr_nonnull(out);
  ck_assert_str_eq(json_string_value(json_object_get(
                       json_object_get(json_object_get(out, "subject"), "address"), "country")),
                   "US");
  json_decref(out);
  json_decref(r);
  ck_assert_str_eq(
      validation_errors(s, json_pack("{s{s[sss]}}", "subject", "tags", "a", "b", "a")),
      "subject.tags: expected list<enum> of at most 2 items (each one of \"a\", \"b\"), got 3 "
      "items");
  ck_assert_str_eq(validation_errors(s, json_pack("{s{s[ii]}}", "subject", "scores", 1, -4)),
                   "subject.scores[1]: expected int >= 0, got -4");
  ck_assert_str_eq(validation_errors(s, json_pack("{s{si}}", "subject", "address", 3)),
                   "subject.address: expected an object (it holds the fields subject.address.*), "
                   "got 3");
  ck_assert_str_eq(
      validation_errors(s, json_pack("{s{s{ss}}}", "subject", "address", "county", "x")),
      "subject.address.county: unknown field (did you mean subject.address.country?)");
  vd_schema_free(s);
}
END_TEST

START_TEST(schema_file_mistakes_are_positioned) {
  ck_assert_str_eq(schema_errors("schema: t\nfields:\n  subject.recency: { type: integer }\n"),
                   "s.yaml:3:28: unknown type \"integer\" (expected bool, int, double, string, "
                   "enum, timestamp or list<T>)");
  ck_assert_str_eq(schema_errors("schema: t\nfields:\n  subject.recency: { type: itn }\n"),
                   "s.yaml:3:28: unknown type \"itn\" (did you mean \"int\"?) (expected bool, int, "
                   "double, string, enum, timestamp or list<T>)");
  ck_assert_str_eq(schema_errors("schema: t\nfields:\n  subjet.recency: int\n"),
                   "s.yaml:3:3: field \"subjet.recency\": a field path starts with subject., "
                   "candidate. or context. (did you mean \"subject.\"?)");
  ck_assert_str_eq(schema_errors("schema: t\nfields:\n  score.uplift: double\n"),
                   "s.yaml:3:3: field \"score.uplift\": score.* is reserved for the model's "
                   "outputs");
  ck_assert_str_eq(
      schema_errors("schema: t\nfields:\n  subject.r: { type: int, min: 5, max: 1 }\n"),
      "s.yaml:3:32: min (5) is greater than max (1)");
  ck_assert_str_eq(schema_errors("schema: t\nfields:\n  subject.z: { type: enum }\n"),
                   "s.yaml:3:14: an enum field needs `values`: a non-empty list of strings");
  ck_assert_str_eq(
      schema_errors("schema: t\nfields:\n  subject.r: { type: int, max: 12, default: 20 }\n"),
      "s.yaml:3:45: the default does not fit the field: expected int <= 12, got 20");
  ck_assert_str_eq(schema_errors("schema: t\nfields:\n  subject.r: { type: int, mni: 1 }\n"),
                   "s.yaml:3:27: unknown key \"mni\" in field subject.r (did you mean \"min\"?; "
                   "expected one of: type, description, required, default, min, max, max_length, "
                   "values, max_items)");
  ck_assert_str_eq(schema_errors("schema: t\nfields:\n  subject.s: { type: string, min: 1 }\n"),
                   "s.yaml:3:35: min applies to int and double fields only, not to string");
  ck_assert_str_eq(schema_errors("schema: t\nfields:\n  subject.a: int\n  subject.a.b: int\n"),
                   "s.yaml:3:14: field \"subject.a\" is also the parent of other fields; a field "
                   "is either a value or a group of fields");
  ck_assert_str_eq(schema_errors("schema: t\nfeilds:\n  subject.a: int\n"),
                   "s.yaml:2:1: unknown key \"feilds\" in the schema (did you mean \"fields\"?; "
                   "expected one of: schema, description, fields)\n"
                   "s.yaml:1:1: missing `fields:` (the request fields and their types)");
  ck_assert_str_eq(
      schema_errors("schema: t\nfields:\n  subject.z: { type: enum, values: [a, a] }\n"),
      "s.yaml:3:40: enum value \"a\" is listed twice");
  /* YAML's own surprises are refused by the loader with a position. */
  const char *dup = schema_errors("schema: t\nfields:\n  subject.a: int\n  subject.a: bool\n");
  ck_assert_msg(strncmp(dup, "s.yaml:4:", 9) == 0 && strstr(dup, "duplicate"), "%s", dup);
  const char *indent = schema_errors("schema: t\nfields:\n  subject.a: int\n subject.b: int\n");
  ck_assert_msg(strncmp(indent, "s.yaml:4:", 9) == 0, "%s", indent);
}
END_TEST

START_TEST(version_ignores_formatting) {
  const char *a = "schema: t\nfields:\n  subject.r: { type: int, min: 1 }\n  subject.s: string\n";
  const char *b =
      "# a comment\nschema: 't'\nfields:\n  subject.r:\n    min: 1\n    type: int   # same\n"
      "  subject.s:\n    type: string\n    required: false\n";
  const char *c = "schema: t\nfields:\n  subject.r: { type: int, min: 2 }\n  subject.s: string\n";
  vd_schema *sa = vd_schema_load_string(a, strlen(a), "a", NULL);
  vd_schema *sb = vd_schema_load_string(b, strlen(b), "b", NULL);
  vd_schema *sc = vd_schema_load_string(c, strlen(c), "c", NULL);
  ck_assert(sa && sb && sc);
  ck_assert_str_eq(vd_schema_version(sa), vd_schema_version(sb));
  ck_assert_str_ne(vd_schema_version(sa), vd_schema_version(sc));
  vd_schema_free(sa);
  vd_schema_free(sb);
  vd_schema_free(sc);
}
END_TEST

int main(void) {
  Suite *s = suite_create("schema");
  TCase *t = tcase_create("schema");
  tcase_add_test(t, loads_the_promotions_schema);
  tcase_add_test(t, validation_names_the_path_and_why);
  tcase_add_test(t, validation_reports_every_violation);
  tcase_add_test(t, validation_rejects_bad_shapes);
  tcase_add_test(t, validation_normalises);
  tcase_add_test(t, a_cut_value_keeps_whole_characters);
  tcase_add_test(t, nested_fields_and_lists);
  tcase_add_test(t, schema_file_mistakes_are_positioned);
  tcase_add_test(t, version_ignores_formatting);
  suite_add_tcase(s, t);
  return vd_test_run(s);
}
