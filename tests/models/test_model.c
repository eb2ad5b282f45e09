/* Bundles: loading and refusing, scoring, contributions, reasons, schema checks, the store, and
 * concurrent scoring from many threads. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support_models.h"
#include "vd_buf.h"
#include "vd_bundle.h"
#include "vd_cli_verbs.h"
#include "vd_forest.h"
#include "vd_json_write.h"
#include "vd_model.h"
#include "vd_test.h"

static json_t *request(int recency, double history, const char *zip) {
  json_t *r = json_pack("{s:{s:s, s:i, s:f, s:b, s:b, s:b, s:s, s:s}}", "subject", "id", "c1",
                        "recency", recency, "history", history, "mens", 1, "womens", 0, "newbie", 1,
                        "zip_code", zip, "channel", "Web");
  ck_assert(r != NULL);
  return r;
}

static vd_model *load_shipped(void) {
  vd_error err = {0};
  vd_model *m = vd_model_load(SHIPPED_BUNDLE, NULL, &err);
  ck_assert_msg(m != NULL, "%s", err.message);
  return m;
}

START_TEST(shipped_bundle_loads_and_describes_itself) {
  vd_model *m = load_shipped();
  ck_assert_str_eq(vd_model_name(m), "promotions");
  ck_assert_str_eq(vd_model_task(m), "uplift");
  ck_assert_str_eq(vd_model_control(m), "No E-Mail");
  ck_assert_uint_eq(vd_model_arm_count(m), 2);
  char hash[VD_SHA256_HEX_SIZE];
  vd_error err = {0};
  ck_assert(vd_sha256_file_hex(SHIPPED_BUNDLE "/model.json", hash, &err));
  char version[VD_SHA256_HEX_SIZE]; /* the version covers the manifest and model.json */
  ck_assert(vd_bundle_version(vd_model_manifest(m), hash, version, &err));
  ck_assert_str_eq(vd_model_version(m), version);
  ck_assert_str_ne(vd_model_version(m), hash);
  const json_t *v = json_object_get(vd_model_manifest(m), "validation");
  /* the quality bar of the issue, on the held-out split */
  ck_assert(json_real_value(json_object_get(v, "auc")) >= 0.63);
  ck_assert(json_real_value(json_object_get(v, "ece")) <= 0.015);
  ck_assert(json_is_array(
      json_object_get(json_object_get(json_object_get(v, "uplift"), "Mens E-Mail"), "qini_ci95")));
  ck_assert_uint_eq(vd_model_column_count(m), 15);
  ck_assert_str_eq(vd_model_column_name(m, 14), "treatment=Womens E-Mail");
  vd_model *again = vd_model_retain(m);
  vd_model_free(again);
  ck_assert_str_eq(vd_model_name(m), "promotions"); /* still alive after one free */
  vd_model_free(m);
}
END_TEST

/* A result remembers the control margin of the last row it scored (the candidates of a request
 * share it): reused across arms, requests and back, it scores exactly as a fresh result does. */
START_TEST(a_reused_result_scores_as_a_fresh_one) {
  vd_model *m = load_shipped();
  vd_error err = {0};
  json_t *requests[] = {request(2, 650.0, "Rural"), request(9, 29.99, "Urban"),
                        request(2, 650.5, "Rural")};
  const struct {
    size_t request;
    const char *treatment;
  } steps[] = {{0, "Mens E-Mail"}, {0, "Womens E-Mail"}, {1, "Mens E-Mail"},  {2, "Mens E-Mail"},
               {0, "No E-Mail"},   {1, "Womens E-Mail"}, {0, "Womens E-Mail"}};
  vd_model_result reused;
  ck_assert(vd_model_result_init(m, &reused, &err));
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    vd_model_result fresh;
    ck_assert(vd_model_result_init(m, &fresh, &err));
    const json_t *req = requests[steps[i].request];
    ck_assert(vd_model_score(m, req, steps[i].treatment, true, &fresh, &err));
    ck_assert(vd_model_score(m, req, steps[i].treatment, true, &reused, &err));
    ck_assert_msg(reused.margin_control == fresh.margin_control && reused.margin == fresh.margin &&
                      reused.p_control == fresh.p_control && reused.uplift == fresh.uplift,
                  "step %zu: control margin %.9g, fresh %.9g", i, reused.margin_control,
                  fresh.margin_control);
    vd_model_result_free(&fresh);
  }
  vd_model_result_free(&reused);
  for (size_t i = 0; i < 3; i++) json_decref(requests[i]);
  vd_model_free(m);
}
END_TEST

START_TEST(scores_treatment_and_control_with_contributions) {
  vd_model *m = load_shipped();
  vd_model_result r;
  vd_error err = {0};
  ck_assert(vd_model_result_init(m, &r, &err));
  json_t *req = request(2, 650.0, "Rural");
  ck_assert_msg(vd_model_score(m, req, "Womens E-Mail", true, &r, &err), "%s", err.message);
  ck_assert(r.p_treatment > 0 && r.p_treatment < 1 && r.p_control > 0 && r.p_control < 1);
  ck_assert(fabs(r.uplift - (r.p_treatment - r.p_control)) < 1e-15);
  ck_assert(r.p_treatment > r.p_control); /* an e-mail raises visits on this data */
  ck_assert(r.features[14] == 1.0f && r.features[13] == 0.0f); /* treatment=Womens E-Mail */
  ck_assert(r.features[7] == 1.0f);                            /* zip_code=Rural */
  double sum = 0;
  for (size_t c = 0; c <= r.column_count; c++) sum += r.contributions[c];
  ck_assert_msg(fabs(sum - r.margin) < 1e-5, "sum %.9g, margin %.9g", sum, r.margin);
  double fsum = r.contributions[r.column_count];
  for (size_t i = 0; i < r.feature_count; i++) fsum += r.feature_contributions[i];
  ck_assert(fabs(fsum - r.margin) < 1e-5);
  ck_assert(fabs(r.p_treatment - 1 / (1 + exp(-r.margin))) < 1e-6);
  /* the control as treatment: both probabilities are the control's */
  vd_model_result c;
  ck_assert(vd_model_result_init(m, &c, &err));
  ck_assert(vd_model_score(m, req, "No E-Mail", false, &c, &err));
  ck_assert(c.p_treatment == r.p_control && c.uplift == 0.0 && !c.has_contributions);
  /* reasons: strongest first, texts from the manifest with the value filled in */
  json_t *reasons = vd_model_reasons(m, r.feature_contributions, req, 3, false);
  ck_assert_uint_eq(json_array_size(reasons), 3);
  double prev = INFINITY;
  for (size_t i = 0; i < 3; i++) {
    const json_t *o = json_array_get(reasons, i);
    double v = fabs(json_real_value(json_object_get(o, "contribution")));
    ck_assert(v <= prev);
    prev = v;
    const char *text = json_string_value(json_object_get(o, "text"));
    ck_assert(text && !strstr(text, "{value}"));
  }
  /* the reasons against: only contributions that lowered the response, strongest first */
  json_t *against = vd_model_reasons(m, r.feature_contributions, req, 20, true);
  size_t lowering = 0;
  for (size_t i = 0; i < r.feature_count; i++) lowering += r.feature_contributions[i] < 0;
  ck_assert_uint_eq(json_array_size(against), lowering);
  ck_assert_uint_gt(lowering, 0);
  prev = INFINITY;
  for (size_t i = 0; i < json_array_size(against); i++) {
    const json_t *o = json_array_get(against, i);
    ck_assert_str_eq(json_string_value(json_object_get(o, "direction")), "down");
    double v = fabs(json_real_value(json_object_get(o, "contribution")));
    ck_assert(v <= prev);
    prev = v;
  }
  /* the same choice without the JSON, for the reasons written as text */
  vd_model_reason picks[20];
  ck_assert_uint_eq(vd_model_reason_pick(m, r.feature_contributions, 20, true, picks), lowering);
  for (size_t i = 0; i < lowering; i++) {
    const json_t *o = json_array_get(against, i);
    ck_assert(!picks[i].raised);
    ck_assert(picks[i].contribution == json_real_value(json_object_get(o, "contribution")));
    const char *feature = picks[i].feature == vd_model_feature_count(m)
                              ? "treatment"
                              : vd_model_feature_name(m, picks[i].feature);
    ck_assert_str_eq(feature, json_string_value(json_object_get(o, "feature")));
  }
  json_decref(against);
  char text[256];
  vd_model_reason_text(m, 1, true, req, text, sizeof text); /* history */
  ck_assert_str_eq(text, "Spent $650.00 last year, which raised the expected response");
  vd_model_reason_text(m, 5, false, req, text, sizeof text); /* zip_code */
  ck_assert_str_eq(text, "Living in a Rural area lowered the expected response");
  json_t *trace = vd_model_result_to_json(m, &r);
  vd_buf written = {0}; /* the same document as text through the emitter, no tree */
  vd_json_emit e;
  vd_json_emit_text(&e, &written);
  vd_model_result_write(m, &r, &e);
  ck_assert(vd_json_emit_done(&e));
  char *expected = vd_json_dumps_shortest(trace, NULL);
  ck_assert_str_eq(written.data, expected);
  free(expected);
  vd_buf_free(&written);
  ck_assert(json_is_object(json_object_get(trace, "contributions")));
  ck_assert(json_real_value(json_object_get(json_object_get(trace, "features"), "history")) ==
            650.0);
  json_decref(trace);
  json_decref(reasons);
  json_decref(req);
  vd_model_result_free(&c);
  vd_model_result_free(&r);
  vd_model_free(m);
}
END_TEST

START_TEST(bad_requests_and_treatments_are_refused_with_the_field) {
  vd_model *m = load_shipped();
  vd_model_result r;
  vd_error err = {0};
  ck_assert(vd_model_result_init(m, &r, &err));
  json_t *req = request(2, 650.0, "Rural");
  ck_assert(!vd_model_score(m, req, "Kids E-Mail", false, &r, &err));
  ck_assert_msg(strstr(err.message, "Kids E-Mail") != NULL, "%s", err.message);
  json_object_del(json_object_get(req, "subject"), "recency");
  ck_assert(!vd_model_score(m, req, "Mens E-Mail", false, &r, &err));
  ck_assert_str_eq(err.field, "subject.recency");
  json_object_set_new(json_object_get(req, "subject"), "recency", json_string("six"));
  ck_assert(!vd_model_score(m, req, "Mens E-Mail", false, &r, &err));
  ck_assert_str_eq(err.field, "subject.recency");
  ck_assert_msg(strstr(err.message, "expected a number") != NULL, "%s", err.message);
  /* an unknown zip code goes to the explicit "other" column; a missing one is NaN (native) */
  json_decref(req);
  req = request(2, 650.0, "Moon");
  ck_assert(vd_model_score(m, req, "Mens E-Mail", false, &r, &err));
  ck_assert(r.features[8] == 1.0f && r.features[5] == 0.0f);
  json_object_del(json_object_get(req, "subject"), "zip_code");
  ck_assert(vd_model_score(m, req, "Mens E-Mail", true, &r, &err));
  ck_assert(isnan(r.features[5]) && isnan(r.features[8]));
  json_decref(req);
  vd_model_result_free(&r);
  vd_model_free(m);
}
END_TEST

/* Edits a copy of the shipped bundle, loads it, and expects a refusal naming file and problem. */
static void expect_bad(const char *dir, const char *file_in_message, const char *problem) {
  vd_error err = {0};
  vd_model *m = vd_model_load(dir, NULL, &err);
  ck_assert_msg(m == NULL, "bundle %s was accepted", dir);
  char text[1024];
  vd_error_format(&err, text, sizeof text);
  ck_assert_msg(strstr(text, file_in_message) != NULL, "\"%s\" does not name %s", text,
                file_in_message);
  ck_assert_msg(strstr(text, problem) != NULL, "\"%s\" does not say \"%s\"", text, problem);
}

static void edit_manifest(const char *dir, const char *key, json_t *value) {
  char path[4096];
  snprintf(path, sizeof path, "%s/manifest.json", dir);
  json_t *m = json_load_file(path, 0, NULL);
  ck_assert(m != NULL);
  if (value)
    json_object_set_new(m, key, value);
  else
    json_object_del(m, key);
  ck_assert_int_eq(json_dump_file(m, path, JSON_INDENT(1)), 0);
  json_decref(m);
}

/* Every reason text says the value the customer had: "{value?YES:NO}" for a yes/no input, and
 * a manifest text without a hole gets the value appended (the texts said "Being a new (or
 * returning) customer" whatever the customer was). */
START_TEST(reason_texts_say_the_value_seen) {
  vd_model *m = load_shipped();
  json_t *req = request(3, 650.0, "Rural"); /* mens yes, womens no, newbie yes */
  char text[256];
  vd_model_reason_text(m, 4, true, req, text, sizeof text); /* newbie */
  ck_assert_str_eq(text, "Being a new customer raised the expected response");
  vd_model_reason_text(m, 2, false, req, text, sizeof text); /* mens */
  ck_assert_str_eq(text, "Buying men's merchandise last year lowered the expected response");
  vd_model_reason_text(m, 3, true, req, text, sizeof text); /* womens */
  ck_assert_str_eq(text, "Not buying women's merchandise last year raised the expected response");
  json_object_set_new(json_object_get(req, "subject"), "newbie", json_false());
  vd_model_reason_text(m, 4, false, req, text, sizeof text);
  ck_assert_str_eq(text, "Being a returning customer lowered the expected response");
  vd_model_reason_text(m, vd_model_feature_count(m), true, req, text, sizeof text);
  ck_assert_str_eq(text, "Receiving this e-mail raised the expected response");
  vd_model_free(m);

  /* texts of a bundle's own: no hole, a malformed hole, a hole on a number */
  const char *d = copy_bundle(SHIPPED_BUNDLE, 0);
  edit_manifest(d, "reasons",
                json_pack("{s:{s:s, s:s}, s:{s:s, s:s}}", "newbie", "up", "Being new raised it",
                          "down", "{value?new lowered it", "recency", "up",
                          "{value?recent:old} purchase raised it", "down", "Bought {value}"));
  vd_error err = {0};
  char version[VD_SHA256_HEX_SIZE];
  ck_assert_msg(vd_bundle_rehash(d, version, NULL, &err), "%s", err.message);
  m = vd_model_load(d, NULL, &err);
  ck_assert_msg(m != NULL, "%s", err.message);
  vd_model_reason_text(m, 4, true, req, text, sizeof text);
  ck_assert_str_eq(text, "Being new raised it (newbie: no)");
  vd_model_reason_text(m, 4, false, req, text, sizeof text);
  ck_assert_str_eq(text, "{value?new lowered it (newbie: no)");
  vd_model_reason_text(m, 0, true, req, text, sizeof text);
  ck_assert_str_eq(text, "3 purchase raised it");
  vd_model_reason_text(m, 0, false, req, text, sizeof text);
  ck_assert_str_eq(text, "Bought 3");
  vd_model_reason_text(m, 1, false, req, text, sizeof text); /* none given: generated */
  ck_assert_str_eq(text, "history (650.00) lowered the expected response");
  vd_model_free(m);
  json_decref(req);
}
END_TEST

START_TEST(bad_bundles_are_refused_with_file_and_problem) {
  expect_bad("/nonexistent/bundle", "/nonexistent/bundle", "not a model bundle folder");
  const char *d = copy_bundle(SHIPPED_BUNDLE, 0);
  char path[4096];
  snprintf(path, sizeof path, "%s/manifest.json", d);
  unlink(path);
  expect_bad(d, "manifest.json", "cannot open");

  d = copy_bundle(SHIPPED_BUNDLE, 0);
  write_text(d, "manifest.json", "{\"format\": \"verdict-model-bundle/1\", \"name\": ");
  expect_bad(d, "manifest.json", "not valid JSON");

  d = copy_bundle(SHIPPED_BUNDLE, 0);
  edit_manifest(d, "format", json_string("sklearn-pickle"));
  expect_bad(d, "manifest.json", "wrong format");

  d = copy_bundle(SHIPPED_BUNDLE, 0);
  edit_manifest(d, "version", NULL);
  expect_bad(d, "manifest.json", "\"version\" is missing");

  d = copy_bundle(SHIPPED_BUNDLE, 0);
  edit_manifest(d, "columns", json_pack("[s]", "recency"));
  expect_bad(d, "manifest.json", "\"columns\" do not match");

  d = copy_bundle(SHIPPED_BUNDLE, 0);
  edit_manifest(
      d, "features",
      json_pack("[{s:s, s:s, s:s}]", "name", "x", "source", "subject.x", "encoding", "text"));
  expect_bad(d, "manifest.json", "features[0].encoding");

  d = copy_bundle(SHIPPED_BUNDLE, 0);
  edit_manifest(d, "task", json_string("multiclass"));
  expect_bad(d, "manifest.json", "not supported");

  /* model.json corrupted by one byte: the content hash no longer matches */
  d = copy_bundle(SHIPPED_BUNDLE, 0);
  snprintf(path, sizeof path, "%s/model.json", d);
  size_t size;
  char *text = slurp(path, &size);
  text[size / 2] = text[size / 2] == '1' ? '2' : '1';
  FILE *f = fopen(path, "wb");
  fwrite(text, 1, size, f);
  fclose(f);
  expect_bad(d, "manifest.json", "is not the bundle's content hash");

  /* a model.json that is not an XGBoost model, with the bundle re-stamped to match */
  d = copy_bundle(SHIPPED_BUNDLE, 0);
  write_text(d, "model.json", "{\"not\": \"a model\"}");
  char hash[VD_SHA256_HEX_SIZE];
  vd_error err = {0};
  ck_assert_msg(vd_bundle_rehash(d, hash, NULL, &err), "%s", err.message);
  expect_bad(d, "model.json", "not an XGBoost gbtree JSON model");

  /* the model of another bundle (different columns) under a matching version */
  d = copy_bundle(SHIPPED_BUNDLE, 0);
  json_t *model = json_loadb(text, size, 0, NULL);
  ck_assert(model != NULL);
  json_object_set_new(json_object_get(json_object_get(model, "learner"), "learner_model_param"),
                      "num_feature", json_string("20"));
  char *other = json_dumps(model, JSON_COMPACT);
  write_text(d, "model.json", other);
  ck_assert_msg(vd_bundle_rehash(d, hash, NULL, &err), "%s", err.message);
  expect_bad(d, "model.json", "the model has 20 input columns, the manifest describes 15");
  free(other);
  json_decref(model);

  d = copy_bundle(SHIPPED_BUNDLE, 0);
  snprintf(path, sizeof path, "%s/model.json", d);
  unlink(path);
  expect_bad(d, "model.json", "cannot open");
  free(text);
}
END_TEST

static vd_schema *schema_from(const char *text) {
  vd_diags diags = {0};
  vd_schema *s = vd_schema_load_string(text, strlen(text), "schema.yaml", &diags);
  ck_assert_msg(s != NULL, "%s", diags.count ? diags.items[0].message : "?");
  vd_diags_free(&diags);
  return s;
}

START_TEST(schema_mismatches_are_refused) {
  vd_diags diags = {0};
  vd_schema *good = vd_schema_load(PROMOTIONS_SCHEMA, &diags);
  ck_assert_msg(good != NULL, "%s", diags.count ? diags.items[0].message : "?");
  vd_error err = {0};
  vd_model *m = vd_model_load(SHIPPED_BUNDLE, good, &err);
  ck_assert_msg(m != NULL, "the shipped schema and bundle disagree: %s", err.message);
  vd_model_free(m);
  vd_schema_free(good);

  static const char *const base =
      "schema: t\nfields:\n  subject.recency: { type: int }\n  subject.mens: { type: bool }\n"
      "  subject.womens: { type: bool }\n  subject.newbie: { type: bool }\n"
      "  subject.zip_code: { type: enum, values: [Urban, Surburban, Rural] }\n"
      "  subject.channel: { type: string }\n";
  vd_buf b = {0};
  vd_buf_printf(&b, "%s  subject.history: { type: string }\n", base);
  vd_schema *wrong_type = schema_from(b.data);
  ck_assert(vd_model_load(SHIPPED_BUNDLE, wrong_type, &err) == NULL);
  ck_assert_msg(strstr(err.message, "manifest.json") &&
                    strstr(err.message, "subject.history, which schema t types as string"),
                "%s", err.message);
  vd_schema_free(wrong_type);
  vd_schema *missing = schema_from(base);
  ck_assert(vd_model_load(SHIPPED_BUNDLE, missing, &err) == NULL);
  ck_assert_msg(strstr(err.message, "reads subject.history, which schema t does not declare"), "%s",
                err.message);
  vd_schema_free(missing);
  vd_buf_free(&b);
}
END_TEST

START_TEST(store_keeps_versions_by_content) {
  char data[] = "/tmp/vd-models-store-XXXXXX";
  ck_assert(mkdtemp(data) != NULL);
  char version[VD_SHA256_HEX_SIZE];
  vd_error err = {0};
  ck_assert_msg(vd_model_store_put(data, SHIPPED_BUNDLE, version, &err), "%s", err.message);
  vd_model *shipped = load_shipped();
  ck_assert_str_eq(version, vd_model_version(shipped));
  ck_assert(vd_model_store_put(data, SHIPPED_BUNDLE, version, &err)); /* idempotent */
  vd_model *stored = vd_model_store_load(data, version, NULL, &err);
  ck_assert_msg(stored != NULL, "%s", err.message);
  ck_assert_str_eq(vd_model_version(stored), version);
  /* the stored copy scores exactly like the original */
  vd_model_result a, b;
  ck_assert(vd_model_result_init(shipped, &a, &err) && vd_model_result_init(stored, &b, &err));
  json_t *req = request(5, 120.5, "Urban");
  ck_assert(vd_model_score(shipped, req, "Mens E-Mail", true, &a, &err));
  ck_assert(vd_model_score(stored, req, "Mens E-Mail", true, &b, &err));
  ck_assert(a.margin == b.margin && a.p_control == b.p_control);
  ck_assert(memcmp(a.contributions, b.contributions, (a.column_count + 1) * sizeof(double)) == 0);
  json_decref(req);
  vd_model_result_free(&a);
  vd_model_result_free(&b);
  vd_model_free(stored);
  vd_model_free(shipped);
  ck_assert(vd_model_store_load(data, "abc", NULL, &err) == NULL);
  ck_assert(strstr(err.message, "not a model version"));
  char missing[VD_SHA256_HEX_SIZE];
  memset(missing, 'a', 64);
  missing[64] = '\0';
  ck_assert(vd_model_store_load(data, missing, NULL, &err) == NULL);
  ck_assert(strstr(err.message, missing));
  /* a tampered stored bundle is refused */
  char path[4096];
  snprintf(path, sizeof path, "%s/models/%s/model.json", data, version);
  FILE *f = fopen(path, "ab");
  fputs(" ", f);
  fclose(f);
  ck_assert(vd_model_store_load(data, version, NULL, &err) == NULL);
  ck_assert_msg(strstr(err.message, "is not the bundle's content hash"), "%s", err.message);
}
END_TEST

/* Every reason text of a bundle's manifest with " [edited]" appended. */
static void edit_reason_texts(const char *dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/manifest.json", dir);
  json_t *m = json_load_file(path, 0, NULL);
  ck_assert(m != NULL);
  const char *feature, *direction;
  json_t *texts, *text;
  json_object_foreach(json_object_get(m, "reasons"), feature, texts) {
    json_object_foreach(texts, direction, text) {
      char edited[512];
      snprintf(edited, sizeof edited, "%s [edited]", json_string_value(text));
      json_string_set(text, edited);
    }
  }
  ck_assert_int_eq(json_dump_file(m, path, JSON_INDENT(2)), 0);
  json_decref(m);
}

static vd_model *load_ok(const char *dir) {
  vd_error err = {0};
  vd_model *m = vd_model_load(dir, NULL, &err);
  ck_assert_msg(m != NULL, "%s", err.message);
  return m;
}

/* The version covers the manifest: a reworded reason text is refused under the old version (the
 * error says to rehash), re-stamping gives a new version that loads with the new text, and only
 * the version's value changes in the file. */
START_TEST(an_edited_manifest_needs_a_new_version) {
  vd_model *shipped = load_shipped();
  const char *d = copy_bundle(SHIPPED_BUNDLE, 0);
  edit_reason_texts(d);
  vd_error err = {0};
  ck_assert(vd_model_load(d, NULL, &err) == NULL);
  ck_assert_msg(strstr(err.message, "manifest.json: version") &&
                    strstr(err.message, "verdict models rehash") &&
                    strstr(err.message, "reason text"),
                "%s", err.message);
  char version[VD_SHA256_HEX_SIZE], again[VD_SHA256_HEX_SIZE];
  bool changed = false;
  ck_assert_msg(vd_bundle_rehash(d, version, &changed, &err), "%s", err.message);
  ck_assert(changed);
  ck_assert_str_ne(version, vd_model_version(shipped));
  char path[4096];
  snprintf(path, sizeof path, "%s/manifest.json", d);
  size_t size;
  char *stamped = slurp(path, &size);
  ck_assert(vd_bundle_rehash(d, again, &changed, &err)); /* idempotent */
  ck_assert(!changed);
  ck_assert_str_eq(again, version);
  vd_model *m = load_ok(d);
  ck_assert_str_eq(vd_model_version(m), version);
  json_t *req = request(3, 650.0, "Rural");
  char text[256];
  vd_model_reason_text(m, 4, true, req, text, sizeof text);
  ck_assert_msg(strstr(text, "[edited]"), "%s", text);
  /* the text of the file is the edited one with only the version's value replaced */
  const char *unstamped_dir = copy_bundle(SHIPPED_BUNDLE, 1);
  edit_reason_texts(unstamped_dir);
  snprintf(path, sizeof path, "%s/manifest.json", unstamped_dir);
  size_t unstamped_size;
  char *unstamped = slurp(path, &unstamped_size);
  const char *old_at = strstr(unstamped, vd_model_version(shipped));
  ck_assert(old_at != NULL && size == unstamped_size);
  size_t at = (size_t)(old_at - unstamped);
  ck_assert(memcmp(stamped, unstamped, at) == 0 && memcmp(stamped + at, version, 64) == 0 &&
            memcmp(stamped + at + 64, unstamped + at + 64, size - at - 64) == 0);
  /* A bundle of the scheme before (version = SHA-256 of model.json alone) is refused as such */
  d = copy_bundle(SHIPPED_BUNDLE, 2);
  char model_sha[VD_SHA256_HEX_SIZE];
  ck_assert(vd_sha256_file_hex(SHIPPED_BUNDLE "/model.json", model_sha, &err));
  edit_manifest(d, "version", json_string(model_sha));
  ck_assert(vd_model_load(d, NULL, &err) == NULL);
  ck_assert_msg(strstr(err.message, "alone") && strstr(err.message, "verdict models rehash"), "%s",
                err.message);
  free(stamped);
  free(unstamped);
  json_decref(req);
  vd_model_free(m);
  vd_model_free(shipped);
}
END_TEST

/* The store keeps the bundle before and after a manifest edit side by side, each under its own
 * version with its own manifest; and a stored bundle of the scheme before (version = the model
 * file's hash, as the stores and decision logs written before hold) still loads from the store
 * — but not as a bundle given directly. */
START_TEST(store_keeps_edited_bundles_side_by_side_and_old_scheme_ones) {
  char data[] = "/tmp/vd-models-store-XXXXXX";
  ck_assert(mkdtemp(data) != NULL);
  char before[VD_SHA256_HEX_SIZE], after[VD_SHA256_HEX_SIZE];
  vd_error err = {0};
  ck_assert_msg(vd_model_store_put(data, SHIPPED_BUNDLE, before, &err), "%s", err.message);
  const char *d = copy_bundle(SHIPPED_BUNDLE, 0);
  edit_reason_texts(d);
  ck_assert(!vd_model_store_put(data, d, after, &err)); /* not stamped: refused */
  ck_assert(vd_bundle_rehash(d, after, NULL, &err));
  ck_assert_msg(vd_model_store_put(data, d, after, &err), "%s", err.message);
  ck_assert_str_ne(before, after);
  vd_model *a = vd_model_store_load(data, before, NULL, &err),
           *b = vd_model_store_load(data, after, NULL, &err);
  ck_assert_msg(a && b, "%s", err.message);
  json_t *req = request(3, 650.0, "Rural");
  char ta[256], tb[256];
  vd_model_reason_text(a, 4, true, req, ta, sizeof ta);
  vd_model_reason_text(b, 4, true, req, tb, sizeof tb);
  ck_assert_msg(!strstr(ta, "[edited]") && strstr(tb, "[edited]"), "%s / %s", ta, tb);
  vd_model_free(a);
  vd_model_free(b);

  /* an old-scheme stored bundle, as an earlier build wrote it */
  char model_sha[VD_SHA256_HEX_SIZE], dir[4200], cmd[8600];
  ck_assert(vd_sha256_file_hex(SHIPPED_BUNDLE "/model.json", model_sha, &err));
  snprintf(dir, sizeof dir, "%s/models/%s", data, model_sha);
  snprintf(cmd, sizeof cmd, "cp -r %s %s", SHIPPED_BUNDLE, dir);
  ck_assert_int_eq(system(cmd), 0);
  edit_manifest(dir, "version", json_string(model_sha));
  vd_model *old = vd_model_store_load(data, model_sha, NULL, &err);
  ck_assert_msg(old != NULL, "%s", err.message);
  ck_assert_str_eq(vd_model_version(old), model_sha);
  vd_model_reason_text(old, 4, true, req, ta, sizeof ta);
  ck_assert_msg(!strstr(ta, "[edited]"), "%s", ta);
  vd_model_free(old);
  ck_assert(vd_model_load(dir, NULL, &err) == NULL); /* directly: re-stamp it first */
  /* an old-scheme stored bundle whose model.json was altered after it was stored is refused (the
   * old scheme never covered its manifest) */
  snprintf(cmd, sizeof cmd, "%s/model.json", dir);
  FILE *f = fopen(cmd, "ab");
  ck_assert(f != NULL);
  fputs(" ", f);
  fclose(f);
  ck_assert(vd_model_store_load(data, model_sha, NULL, &err) == NULL);
  ck_assert_msg(strstr(err.message, "is not the bundle's content hash"), "%s", err.message);
  json_decref(req);
}
END_TEST

static int run_models(int argc, char **argv, char **out_text, char **err_text) {
  size_t out_size, err_size;
  FILE *out = open_memstream(out_text, &out_size), *err = open_memstream(err_text, &err_size);
  int status = vd_verb_models(argc, argv, out, err);
  fclose(out);
  fclose(err);
  return status;
}

/* `verdict models rehash|version`: usage, stamping, and checking. */
START_TEST(the_models_verb_rehashes_and_checks) {
  char *o, *e;
  char *help[] = {"models", "--help", NULL};
  ck_assert_int_eq(run_models(2, help, &o, &e), 0);
  ck_assert(strstr(o, "verdict models rehash DIR"));
  free(o);
  free(e);
  char *none[] = {"models", NULL};
  ck_assert_int_eq(run_models(1, none, &o, &e), 2);
  ck_assert_msg(strstr(e, "expected rehash or version"), "%s", e);
  free(o);
  free(e);
  char *unknown[] = {"models", "stamp", "x", NULL};
  ck_assert_int_eq(run_models(3, unknown, &o, &e), 2);
  free(o);
  free(e);
  char *no_dir[] = {"models", "rehash", NULL};
  ck_assert_int_eq(run_models(2, no_dir, &o, &e), 2);
  free(o);
  free(e);
  char *d = strdup(copy_bundle(SHIPPED_BUNDLE, 3));
  edit_reason_texts(d);
  char *check[] = {"models", "version", d, NULL};
  ck_assert_int_eq(run_models(3, check, &o, &e), 1);
  ck_assert_msg(strstr(e, "verdict models rehash"), "%s", e);
  free(o);
  free(e);
  char *rehash[] = {"models", "rehash", d, NULL};
  ck_assert_int_eq(run_models(3, rehash, &o, &e), 0);
  ck_assert_msg(strstr(o, "(stamped)"), "%s", o);
  free(o);
  free(e);
  ck_assert_int_eq(run_models(3, check, &o, &e), 0);
  vd_model *m = load_ok(d);
  ck_assert_msg(strstr(o, vd_model_version(m)), "%s", o);
  vd_model_free(m);
  free(o);
  free(e);
  char *missing[] = {"models", "rehash", "/nonexistent/bundle", NULL};
  ck_assert_int_eq(run_models(3, missing, &o, &e), 1);
  ck_assert_msg(strstr(e, "/nonexistent/bundle/manifest.json"), "%s", e);
  free(o);
  free(e);
  free(d);
}
END_TEST

/* ---------- concurrency ---------- */

typedef struct worker {
  const vd_model *model;
  const test_rows *rows;
  size_t first, step;
  double *out; /* per row: margin, p_control, then contributions */
  size_t stride;
  int failures;
} worker;

static void *score_rows(void *arg) {
  worker *w = arg;
  vd_model_result r;
  vd_error err = {0};
  if (!vd_model_result_init(w->model, &r, &err)) {
    w->failures++;
    return NULL;
  }
  static const char *const treatments[] = {"Mens E-Mail", "Womens E-Mail", "No E-Mail"};
  for (size_t i = w->first; i < w->rows->rows; i += w->step) {
    if (!vd_model_score(w->model, w->rows->requests[i], treatments[i % 3], true, &r, &err)) {
      w->failures++;
      continue;
    }
    double *o = w->out + i * w->stride;
    o[0] = r.margin;
    o[1] = r.p_control;
    memcpy(o + 2, r.contributions, (r.column_count + 1) * sizeof(double));
  }
  vd_model_result_free(&r);
  return NULL;
}

START_TEST(concurrent_scoring_matches_single_threaded) {
  vd_model *m = load_shipped();
  vd_features *features = bundle_features(SHIPPED_BUNDLE);
  test_rows rows;
  if (!load_hillstrom(features, under_sanitizer() ? 0 : 20000, &rows)) {
    vd_features_free(features);
    vd_model_free(m);
    return;
  }
  size_t stride = vd_model_column_count(m) + 3;
  double *single = calloc(rows.rows * stride, sizeof *single);
  double *multi = calloc(rows.rows * stride, sizeof *multi);
  worker one = {m, &rows, 0, 1, single, stride, 0};
  score_rows(&one);
  ck_assert_int_eq(one.failures, 0);
  enum { THREADS = 8 };
  pthread_t threads[THREADS];
  worker workers[THREADS];
  /* interleaved rows, so threads hit the same trees at the same time */
  for (int t = 0; t < THREADS; t++) {
    workers[t] = (worker){m, &rows, (size_t)t, THREADS, multi, stride, 0};
    ck_assert_int_eq(pthread_create(&threads[t], NULL, score_rows, &workers[t]), 0);
  }
  for (int t = 0; t < THREADS; t++) {
    pthread_join(threads[t], NULL);
    ck_assert_int_eq(workers[t].failures, 0);
  }
  ck_assert_msg(memcmp(single, multi, rows.rows * stride * sizeof *single) == 0,
                "results differ between single- and multi-threaded scoring");
  free(single);
  free(multi);
  free_rows(&rows);
  vd_features_free(features);
  vd_model_free(m);
}
END_TEST

/* Every row of the data: the model's scores are the native forest's, which test_forest proves
 * equal to XGBoost; here the contributions of the treatment prediction sum to its margin. */
START_TEST(contributions_sum_to_margin_on_every_row) {
  vd_model *m = load_shipped();
  vd_features *features = bundle_features(SHIPPED_BUNDLE);
  test_rows rows;
  if (!load_hillstrom(features, 0, &rows)) {
    vd_features_free(features);
    vd_model_free(m);
    return;
  }
  vd_model_result r;
  vd_error err = {0};
  ck_assert(vd_model_result_init(m, &r, &err));
  double worst = 0;
  for (size_t i = 0; i < rows.rows; i++) {
    ck_assert(vd_model_score(m, rows.requests[i], rows.treatment[i], true, &r, &err));
    ck_assert(memcmp(r.features, rows.x + i * rows.width, rows.width * sizeof(float)) == 0);
    double sum = 0;
    for (size_t c = 0; c <= r.column_count; c++) sum += r.contributions[c];
    if (fabs(sum - r.margin) > worst) worst = fabs(sum - r.margin);
  }
  ck_assert_msg(worst < 1e-5, "contributions miss the margin by up to %g", worst);
  vd_model_result_free(&r);
  free_rows(&rows);
  vd_features_free(features);
  vd_model_free(m);
}
END_TEST

int main(void) {
  Suite *s = suite_create("models/model");
  TCase *tc = tcase_create("model");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, shipped_bundle_loads_and_describes_itself);
  tcase_add_test(tc, scores_treatment_and_control_with_contributions);
  tcase_add_test(tc, a_reused_result_scores_as_a_fresh_one);
  tcase_add_test(tc, reason_texts_say_the_value_seen);
  tcase_add_test(tc, bad_requests_and_treatments_are_refused_with_the_field);
  tcase_add_test(tc, bad_bundles_are_refused_with_file_and_problem);
  tcase_add_test(tc, schema_mismatches_are_refused);
  tcase_add_test(tc, store_keeps_versions_by_content);
  tcase_add_test(tc, an_edited_manifest_needs_a_new_version);
  tcase_add_test(tc, store_keeps_edited_bundles_side_by_side_and_old_scheme_ones);
  tcase_add_test(tc, the_models_verb_rehashes_and_checks);
  tcase_add_test(tc, concurrent_scoring_matches_single_threaded);
  tcase_add_test(tc, contributions_sum_to_margin_on_every_row);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
