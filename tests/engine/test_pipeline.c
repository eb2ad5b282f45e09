/* vd_deployment (loading, mistakes, rules-only fallback, the registry's atomic swap) and
 * vd_pipeline (rules → model → rules → rank, the response and the trace, masking). */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vd_buf.h"
#include "vd_deployment.h"
#include "vd_json_write.h"
#include "vd_pipeline.h"
#include "vd_reasons.h"
#include "vd_test.h"

static const char *example = VERDICT_SOURCE_DIR "/examples/promotions";

static json_t *customer(const char *id, int recency, bool newbie, bool opt_out) {
  return json_pack("{s:{s:s, s:i, s:f, s:b, s:b, s:s, s:b, s:s, s:b, s:i, s:s}}", "subject", "id",
                   id, "recency", recency, "history", 329.08, "mens", 1, "womens", 1, "zip_code",
                   "Rural", "newbie", newbie, "channel", "Web", "marketing_opt_out", opt_out,
                   "emails_last_30d", 1, "country", "US");
}

static vd_deployment *load_example(void) {
  vd_diags diags = {0};
  vd_deployment *d = vd_deployment_load(example, NULL, &diags);
  ck_assert_msg(d != NULL, "%s", diags.count ? diags.items[0].message : "?");
  vd_diags_free(&diags);
  return d;
}

static json_t *decide(const vd_deployment *d, json_t *request, const vd_trace_mask *mask,
                      json_t **trace) {
  vd_pipeline_input in = {.request = request,
                          .decision_id = "01a23c2a-7289-7441-81f8-c38f843ea62d",
                          .now_us = 1764000000000000,
                          .mask = mask};
  vd_decision out = {0};
  vd_diags violations = {0};
  vd_error err = {0};
  vd_pipeline_status st = vd_pipeline_decide(d, &in, &out, &violations, &err);
  ck_assert_msg(st == VD_PIPELINE_OK, "%s %s", err.message,
                violations.count ? violations.items[0].message : "");
  vd_diags_free(&violations);
  json_t *response = json_incref(out.response);
  if (trace) *trace = json_incref(out.trace);
  vd_decision_clear(&out);
  json_decref(request);
  return response;
}

static json_t *result_for(json_t *response, const char *candidate) {
  size_t i;
  json_t *r;
  json_array_foreach(json_object_get(response, "results"), i, r) {
    if (strcmp(json_string_value(json_object_get(r, "candidate")), candidate) == 0) return r;
  }
  return NULL;
}

/* A copy of the example deployment in a temp folder, with deployment.yaml replaced. */
static char *temp_deployment(const char *deployment_yaml) {
  char *dir = strdup("/tmp/verdict-dep-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char command[1024];
  snprintf(command, sizeof command, "cp -r '%s'/. '%s'", example, dir);
  ck_assert_int_eq(system(command), 0);
  if (deployment_yaml) {
    char path[512];
    snprintf(path, sizeof path, "%s/deployment.yaml", dir);
    FILE *f = fopen(path, "w");
    fputs(deployment_yaml, f);
    fclose(f);
  }
  return dir;
}

static void remove_dir(char *dir) {
  char command[512];
  snprintf(command, sizeof command, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(command), 0);
  free(dir);
}

START_TEST(loads_the_example_deployment) {
  vd_deployment *d = load_example();
  ck_assert_str_eq(vd_deployment_name(d), "promotions");
  ck_assert_str_eq(vd_deployment_kind(d), "promotions");
  ck_assert_ptr_nonnull(vd_deployment_model(d));
  ck_assert_ptr_null(vd_deployment_model_error(d));
  ck_assert_uint_eq(vd_deployment_candidate_count(d), 2);
  ck_assert_str_eq(vd_deployment_candidate(d, 0)->id, "mens-email");
  ck_assert_str_eq(vd_deployment_candidate(d, 0)->treatment, "Mens E-Mail");
  ck_assert_str_eq(vd_deployment_find_candidate(d, "womens-email")->treatment, "Womens E-Mail");
  ck_assert_ptr_null(vd_deployment_find_candidate(d, "sms"));
  ck_assert_ptr_nonnull(vd_deployment_warmup(d));
  json_t *described = vd_deployment_describe(d);
  ck_assert_str_eq(
      json_string_value(json_object_get(json_object_get(described, "ruleset"), "version")),
      vd_ruleset_version(vd_deployment_ruleset(d)));
  json_decref(described);
  vd_deployment_release(d);
}
END_TEST

START_TEST(scores_rank_and_combine) {
  vd_deployment *d = load_example();
  json_t *trace = NULL;
  json_t *r = decide(d, customer("c1", 6, true, false), NULL, &trace);
  ck_assert_str_eq(json_string_value(json_object_get(r, "decision_id")),
                   "01a23c2a-7289-7441-81f8-c38f843ea62d");
  ck_assert(json_is_null(json_object_get(r, "fallback")));
  json_t *results = json_object_get(r, "results");
  ck_assert_int_eq(json_array_size(results), 2);
  double first = json_real_value(json_object_get(json_array_get(results, 0), "score"));
  double second = json_real_value(json_object_get(json_array_get(results, 1), "score"));
  ck_assert(first >= second);
  json_t *top = json_array_get(results, 0);
  ck_assert_int_eq(json_integer_value(json_object_get(top, "rank")), 1);
  ck_assert_str_eq(json_string_value(json_object_get(top, "action")), "offer");
  json_t *model = json_object_get(top, "model");
  ck_assert_double_eq_tol(json_real_value(json_object_get(top, "score")),
                          json_real_value(json_object_get(model, "uplift")), 1e-12);
  ck_assert_int_eq(json_array_size(json_object_get(top, "reasons")), VD_REASONS_MAX);
  /* The trace: every rule evaluated per candidate, the model's vector and contributions. */
  json_t *c0 = json_array_get(json_object_get(trace, "candidates"), 0);
  size_t rules = vd_ruleset_rule_count(vd_deployment_ruleset(d));
  ck_assert_int_eq(json_array_size(json_object_get(json_object_get(c0, "rules"), "rules")), rules);
  json_t *m = json_object_get(c0, "model");
  double sum = json_real_value(json_object_get(m, "bias"));
  const char *key;
  json_t *phi;
  json_object_foreach(json_object_get(m, "contributions"), key, phi) sum += json_real_value(phi);
  ck_assert_double_eq_tol(sum, json_real_value(json_object_get(m, "margin")), 1e-4);
  ck_assert(json_equal(json_object_get(trace, "response"), r));
  ck_assert_int_eq(json_integer_value(json_object_get(trace, "trace_version")), 1);
  ck_assert_str_eq(json_string_value(json_object_get(trace, "timestamp")),
                   "2025-11-24T16:00:00.000000Z");
  json_decref(trace);
  json_decref(r);

  /* A new customer (recency <= 3) gets the welcome adjustment on top of the uplift. */
  r = decide(d, customer("c2", 2, true, false), NULL, NULL);
  json_t *mens = result_for(r, "mens-email");
  ck_assert_ptr_nonnull(mens);
  double uplift = json_real_value(json_object_get(json_object_get(mens, "model"), "uplift"));
  ck_assert_double_eq_tol(json_real_value(json_object_get(mens, "score")), uplift + 0.01, 1e-12);
  bool named = false;
  size_t i;
  json_t *reason;
  json_array_foreach(json_object_get(mens, "reasons"), i, reason) named =
      named ||
      strcmp(json_string_value(json_object_get(reason, "code")), "new-customer-welcome") == 0;
  ck_assert(named);
  json_decref(r);
  vd_deployment_release(d);
}
END_TEST

START_TEST(a_deny_rule_settles_without_the_model) {
  vd_deployment *d = load_example();
  json_t *trace = NULL;
  json_t *r = decide(d, customer("c3", 6, false, true), NULL, &trace);
  size_t i;
  json_t *res;
  json_array_foreach(json_object_get(r, "results"), i, res) {
    ck_assert(json_is_false(json_object_get(res, "eligible")));
    ck_assert_str_eq(json_string_value(json_object_get(res, "action")), "deny");
    ck_assert(json_is_null(json_object_get(res, "rank")));
    ck_assert_ptr_null(json_object_get(res, "model"));
    json_t *reason = json_array_get(json_object_get(res, "reasons"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(reason, "code")), "opted-out");
  }
  ck_assert(json_is_null(json_object_get(r, "fallback"))); /* a deciding rule is no fallback */
  json_t *c0 = json_array_get(json_object_get(trace, "candidates"), 0);
  ck_assert(json_is_null(json_object_get(c0, "model")));
  json_decref(trace);
  json_decref(r);
  vd_deployment_release(d);
}
END_TEST

START_TEST(request_options_and_violations) {
  vd_deployment *d = load_example();
  json_t *req = customer("c4", 6, false, false);
  json_object_set_new(req, "max_results", json_integer(1));
  json_t *r = decide(d, req, NULL, NULL);
  ck_assert_int_eq(json_array_size(json_object_get(r, "results")), 1);
  json_decref(r);

  req = customer("c4", 6, false, false);
  json_object_set_new(req, "candidates", json_pack("[{s:s}]", "id", "womens-email"));
  json_object_set_new(req, "explain", json_string("full"));
  r = decide(d, req, NULL, NULL);
  json_t *only = json_array_get(json_object_get(r, "results"), 0);
  ck_assert_int_eq(json_array_size(json_object_get(r, "results")), 1);
  ck_assert_str_eq(json_string_value(json_object_get(only, "candidate")), "womens-email");
  ck_assert(json_is_object(json_object_get(json_object_get(only, "explanation"), "rules")));
  json_decref(r);

  req = customer("c5", 6, false, false);
  json_object_set_new(req, "candidates",
                      json_pack("[{s:s}, {s:s}]", "id", "sms", "id", "mens-email"));
  json_object_set_new(req, "explain", json_string("everything"));
  json_object_set_new(json_object_get(req, "subject"), "recency", json_string("six"));
  vd_pipeline_input in = {.request = req, .decision_id = "x"};
  vd_decision out = {0};
  vd_diags v = {0};
  vd_error err = {0};
  ck_assert_int_eq(vd_pipeline_decide(d, &in, &out, &v, &err), VD_PIPELINE_INVALID);
  bool sms = false, explain = false, recency = false;
  for (size_t i = 0; i < v.count; i++) {
    sms = sms || strcmp(v.items[i].field, "candidates[0].id") == 0;
    explain = explain || strcmp(v.items[i].field, "explain") == 0;
    recency = recency || strcmp(v.items[i].field, "subject.recency") == 0;
  }
  ck_assert_msg(sms && explain && recency, "%zu violations", v.count);
  ck_assert_ptr_null(out.response);
  vd_diags_free(&v);
  json_decref(req);
  vd_deployment_release(d);
}
END_TEST

START_TEST(masked_fields_are_keyed_hmacs_in_the_trace) {
  vd_deployment *d = load_example();
  const char *fields[] = {"subject.id", "candidate.id"};
  vd_trace_mask mask = {(const unsigned char *)"k1-secret", 9, fields, 2};
  vd_trace_mask other = {(const unsigned char *)"k2-secret", 9, fields, 2};
  json_t *t1 = NULL, *t2 = NULL, *t3 = NULL;
  json_t *req = customer("alice", 6, false, false);
  json_object_set_new(req, "candidates", json_pack("[{s:s}]", "id", "mens-email"));
  json_decref(decide(d, req, &mask, &t1));
  json_decref(decide(d, customer("alice", 6, false, false), &mask, &t2));
  json_decref(decide(d, customer("alice", 6, false, false), &other, &t3));
  const char *m1 = json_string_value(
      json_object_get(json_object_get(json_object_get(t1, "request"), "subject"), "id"));
  const char *m2 = json_string_value(
      json_object_get(json_object_get(json_object_get(t2, "request"), "subject"), "id"));
  const char *m3 = json_string_value(
      json_object_get(json_object_get(json_object_get(t3, "request"), "subject"), "id"));
  ck_assert_int_eq(strncmp(m1, "hmac-sha256:", 12), 0);
  ck_assert_int_eq(strlen(m1), 12 + 64);
  ck_assert_str_eq(m1, m2); /* equal values mask equally under one key */
  ck_assert_str_ne(m1, m3); /* and differently under another */
  const char *cid = json_string_value(json_object_get(
      json_array_get(json_object_get(json_object_get(t1, "request"), "candidates"), 0), "id"));
  ck_assert_int_eq(strncmp(cid, "hmac-sha256:", 12), 0);
  char *text = json_dumps(json_object_get(t1, "request"), 0);
  ck_assert_ptr_null(strstr(text, "alice"));
  free(text);
  json_decref(t1);
  json_decref(t2);
  json_decref(t3);
  vd_deployment_release(d);
}
END_TEST

/* The trace and the response are written once, as text, straight from the pipeline (no tree);
 * the trees a caller may ask for are that text read back, and text_only skips them. */
START_TEST(the_trace_and_the_response_are_one_text) {
  vd_deployment *d = load_example();
  const char *fields[] = {"subject.id"};
  vd_trace_mask mask = {(const unsigned char *)"k1-secret", 9, fields, 1};
  json_t *request = customer("c1", 6, false, false);
  json_object_set_new(request, "explain", json_string("full"));
  vd_pipeline_input in = {.request = request,
                          .decision_id = "01a23c2a-7289-7441-81f8-c38f843ea62d",
                          .now_us = 1764000000000000,
                          .mask = &mask};
  vd_decision out = {0}, text = {0};
  vd_error err = {0};
  ck_assert_int_eq(vd_pipeline_decide(d, &in, &out, NULL, &err), VD_PIPELINE_OK);
  ck_assert_ptr_nonnull(out.trace_text);
  ck_assert_uint_eq(out.trace_len, strlen(out.trace_text));
  char *again = vd_json_dumps_shortest(out.trace, NULL);
  ck_assert_str_eq(again, out.trace_text);
  free(again);
  ck_assert_ptr_eq(out.response, json_object_get(out.trace, "response"));
  char *response = vd_json_dumps_shortest(out.response, NULL);
  ck_assert_uint_eq(out.response_len, strlen(response));
  ck_assert(memcmp(out.trace_text + out.response_start, response, out.response_len) == 0);
  free(response);
  /* the members in the order of vd_trace.h and vd_pipeline.h */
  const char *head =
      "{\"trace_version\":1,\"id\":\"01a23c2a-7289-7441-81f8-c38f843ea62d\",\"kind\":"
      "\"promotions\",\"timestamp\":\"2025-11-24T16:00:00.000000Z\",\"deployment\":{\"name\":"
      "\"promotions\",\"version\":";
  ck_assert_msg(strncmp(out.trace_text, head, strlen(head)) == 0, "%.200s", out.trace_text);
  ck_assert_ptr_nonnull(strstr(out.trace_text,
                               "\"candidates\":[{\"candidate\":\"mens-email\","
                               "\"treatment\":\"Mens E-Mail\",\"rules\":{"
                               "\"decision\":"));
  ck_assert_ptr_nonnull(strstr(out.trace_text,
                               "}],\"max_results_cap\":null,\"response\":{"
                               "\"decision_id\":"));
  ck_assert_ptr_nonnull(strstr(out.trace_text, "\"outcome\":{\"eligible\":true,\"action\":"));
  ck_assert_ptr_nonnull(strstr(out.trace_text, "\"fallback\":null},\"timings_us\":{\"validate\":"));
  ck_assert(strncmp(out.trace_text + out.response_start, "{\"decision_id\":", 15) == 0);
  /* explain: full puts the trace's record of each candidate into its result */
  json_t *result = json_array_get(json_object_get(out.response, "results"), 0);
  const char *id = json_string_value(json_object_get(result, "candidate"));
  size_t i;
  json_t *record;
  json_array_foreach(json_object_get(out.trace, "candidates"), i, record) {
    if (strcmp(json_string_value(json_object_get(record, "candidate")), id) == 0)
      ck_assert(json_equal(record, json_object_get(result, "explanation")));
  }
  /* the decision log's subject column: the id as the trace stores it (masked) */
  const char *stored = json_string_value(
      json_object_get(json_object_get(json_object_get(out.trace, "request"), "subject"), "id"));
  ck_assert_ptr_nonnull(out.subject_id);
  ck_assert_str_eq(out.subject_id, stored);
  ck_assert(strncmp(stored, "hmac-sha256:", 12) == 0);

  in.text_only = true;
  ck_assert_int_eq(vd_pipeline_decide(d, &in, &text, NULL, &err), VD_PIPELINE_OK);
  ck_assert_ptr_null(text.trace);
  ck_assert_ptr_null(text.response);
  ck_assert_str_eq(text.subject_id, stored);
  json_t *parsed = json_loadb(text.trace_text, text.trace_len, 0, NULL);
  ck_assert_ptr_nonnull(parsed);
  json_object_del(parsed, "timings_us");
  json_t *first = json_deep_copy(out.trace);
  json_object_del(first, "timings_us");
  ck_assert(json_equal(parsed, first));
  json_decref(parsed);
  json_decref(first);
  vd_decision_clear(&out);
  vd_decision_clear(&text);
  ck_assert_ptr_null(out.trace_text);

  /* the whole subject masked: no subject column (the trace holds one HMAC for it) */
  const char *whole[] = {"subject"};
  vd_trace_mask subject = {(const unsigned char *)"k1-secret", 9, whole, 1};
  in.mask = &subject;
  ck_assert_int_eq(vd_pipeline_decide(d, &in, &text, NULL, &err), VD_PIPELINE_OK);
  ck_assert_ptr_null(text.subject_id);
  vd_decision_clear(&text);
  in.mask = NULL;
  ck_assert_int_eq(vd_pipeline_decide(d, &in, &text, NULL, &err), VD_PIPELINE_OK);
  ck_assert_str_eq(text.subject_id, "c1");
  vd_decision_clear(&text);
  json_decref(request);
  vd_deployment_release(d);
}
END_TEST

START_TEST(missing_model_serves_rules_only_with_fallback) {
  char *dir = temp_deployment(
      "name: p\nkind: promotions\nrules: rules.yaml\nmodel: no-such-bundle\nmax_results: 2\n"
      "candidates:\n  - {id: mens-email, treatment: Mens E-Mail}\n"
      "  - {id: womens-email, treatment: Womens E-Mail}\n");
  vd_diags diags = {0};
  vd_deployment *d = vd_deployment_load(dir, NULL, &diags);
  ck_assert_msg(d != NULL, "%s", diags.count ? diags.items[0].message : "?");
  ck_assert_ptr_null(vd_deployment_model(d));
  ck_assert_ptr_nonnull(strstr(vd_deployment_model_error(d), "no-such-bundle"));
  json_t *trace = NULL;
  json_t *r = decide(d, customer("c6", 2, true, false), NULL, &trace);
  json_t *fallback = json_object_get(r, "fallback");
  ck_assert_str_eq(json_string_value(json_object_get(fallback, "reason")), "model_unavailable");
  double base = vd_ruleset_default_score(vd_deployment_ruleset(d));
  json_t *mens = result_for(r, "mens-email");
  ck_assert_ptr_null(json_object_get(mens, "model"));
  ck_assert_double_eq_tol(json_real_value(json_object_get(mens, "score")), base + 0.01, 1e-12);
  ck_assert(json_is_null(json_object_get(r, "model")));
  ck_assert_str_eq(json_string_value(json_object_get(json_object_get(trace, "fallback"), "reason")),
                   "model_unavailable");
  json_decref(trace);
  json_decref(r);
  vd_deployment_release(d);

  /* On a reload the same mistake is an error: the last good model must keep serving. */
  vd_deployment_load_options reload = {.require_model = true};
  ck_assert_ptr_null(vd_deployment_load(dir, &reload, &diags));
  ck_assert_ptr_nonnull(strstr(diags.items[diags.count - 1].message, "no-such-bundle"));
  vd_diags_free(&diags);
  remove_dir(dir);
}
END_TEST

START_TEST(model_budget_spent_falls_back_for_the_rest) {
  char *dir = temp_deployment(
      "name: p\nkind: promotions\nrules: rules.yaml\nmodel: model\nmodel_budget_us: 1\n"
      "candidates:\n  - {id: mens-email, treatment: Mens E-Mail}\n"
      "  - {id: womens-email, treatment: Womens E-Mail}\n");
  vd_diags diags = {0};
  vd_deployment *d = vd_deployment_load(dir, NULL, &diags);
  ck_assert_msg(d != NULL, "%s", diags.count ? diags.items[0].message : "?");
  json_t *r = decide(d, customer("c8", 6, false, false), NULL, NULL);
  /* The first candidate is scored (the budget is checked before each one), the second is not. */
  ck_assert_ptr_nonnull(json_object_get(result_for(r, "mens-email"), "model"));
  ck_assert_ptr_null(json_object_get(result_for(r, "womens-email"), "model"));
  ck_assert_str_eq(json_string_value(json_object_get(json_object_get(r, "fallback"), "reason")),
                   "model_budget_exceeded");
  json_decref(r);
  vd_deployment_release(d);
  vd_diags_free(&diags);
  remove_dir(dir);
}
END_TEST

/* The model reads only the request and the treatment: a candidate whose treatment was already
 * scored in this decision shares that result — identical figures, and no budget spent on it. */
START_TEST(candidates_sharing_a_treatment_share_its_score) {
  char *dir = temp_deployment(
      "name: p\nkind: promotions\nrules: rules.yaml\nmodel: model\nmodel_budget_us: 1\n"
      "candidates:\n  - {id: mens-email, treatment: Mens E-Mail}\n"
      "  - {id: womens-email, treatment: Womens E-Mail}\n"
      "  - {id: mens-summer, treatment: Mens E-Mail}\n");
  char command[1024]; /* the schema names the candidate ids a deployment may have */
  snprintf(command, sizeof command,
           "sed -i 's/values: \\[mens-email, womens-email\\]/values: [mens-email, womens-email, "
           "mens-summer]/' '%s/schema.yaml'",
           dir);
  ck_assert_int_eq(system(command), 0);
  vd_diags diags = {0};
  vd_deployment *d = vd_deployment_load(dir, NULL, &diags);
  ck_assert_msg(d != NULL, "%s", diags.count ? diags.items[0].message : "?");
  json_t *r = decide(d, customer("c9", 6, false, false), NULL, NULL);
  json_t *first = json_object_get(result_for(r, "mens-email"), "model");
  json_t *shared = json_object_get(result_for(r, "mens-summer"), "model");
  ck_assert_ptr_nonnull(first);
  ck_assert_msg(shared != NULL, "the budget was spent on a treatment already scored");
  ck_assert(json_equal(first, shared));
  ck_assert_ptr_null(json_object_get(result_for(r, "womens-email"), "model"));
  json_decref(r);
  vd_deployment_release(d);
  vd_diags_free(&diags);
  remove_dir(dir);
}
END_TEST

/* Appends rules (YAML list items) to DIR/rules.yaml, before its tests. */
static void add_rules(const char *dir, const char *items) {
  char path[512];
  snprintf(path, sizeof path, "%s/rules.yaml", dir);
  size_t size = 0;
  vd_error read_err = {0};
  char *rules = vd_read_file(path, 1 << 20, &size, &read_err);
  ck_assert_msg(rules != NULL, "%s", read_err.message);
  char *tests = strstr(rules, "\ntests:");
  ck_assert_ptr_nonnull(tests);
  FILE *f = fopen(path, "w");
  fprintf(f, "%.*s\n%s", (int)(tests - rules), rules, items);
  fputs(tests, f);
  fclose(f);
  free(rules);
}

/* Adjust rules that could sum past the range of a double (a score that cannot be ranked or
 * answered, so every decision they matched failed) are refused when the deployment loads, each
 * named at its value; the pipeline's own finiteness check stays as a last guard. */
START_TEST(an_adjustment_that_could_overflow_refuses_the_deployment) {
  char *dir = temp_deployment(NULL);
  add_rules(dir,
            "  - id: huge-0\n    stage: before_model\n    when: subject.id == \"overflow\"\n"
            "    then: { adjust: 1.0e308 }\n  - id: huge-1\n    stage: before_model\n"
            "    when: subject.id == \"overflow\"\n    then: { adjust: 1.0e308 }\n");
  vd_diags diags = {0};
  ck_assert_ptr_null(vd_deployment_load(dir, NULL, &diags));
  char all[4096] = "";
  for (size_t i = 0; i < diags.count; i++)
    snprintf(all + strlen(all), sizeof all - strlen(all), "%s:%d:%d: %s\n", diags.items[i].file,
             diags.items[i].line, diags.items[i].column, diags.items[i].message);
  ck_assert_msg(strstr(all, "rules.yaml:") && strstr(all, "rule huge-0: adjust 1e+308 is beyond") &&
                    strstr(all, "rule huge-1: adjust 1e+308 is beyond"),
                "%s", all);
  vd_diags_free(&diags);
  remove_dir(dir);
}
END_TEST

/* A value the schema accepts but the model cannot read (beyond a float) is the client's mistake:
 * a violation naming the field, never a silent fallback to rules alone. */
START_TEST(a_value_beyond_the_model_is_a_violation) {
  vd_deployment *d = load_example();
  json_t *request = customer("c11", 6, false, false);
  json_object_set_new(json_object_get(request, "subject"), "history", json_real(1e308));
  vd_pipeline_input in = {.request = request,
                          .decision_id = "01a23c2a-7289-7441-81f8-c38f843ea62d"};
  vd_decision out = {0};
  vd_diags violations = {0};
  vd_error err = {0};
  ck_assert_int_eq(vd_pipeline_decide(d, &in, &out, &violations, &err), VD_PIPELINE_INVALID);
  ck_assert_uint_eq(violations.count, 1);
  ck_assert_str_eq(violations.items[0].field, "subject.history");
  ck_assert_msg(strstr(violations.items[0].message, "beyond what the model reads"), "%s",
                violations.items[0].message);
  ck_assert_ptr_null(out.response);
  vd_diags_free(&violations);
  json_decref(request);
  vd_deployment_release(d);
}
END_TEST

/* The LLM task names are fixed: an escalate naming another is refused at load (the rule named,
 * with did-you-mean), also when no test of the rule file covers it. */
START_TEST(an_unknown_escalation_task_is_refused) {
  char *dir = strdup("/tmp/verdict-dep-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char command[1024];
  snprintf(command, sizeof command, "cp -r '%s'/. '%s'", VERDICT_SOURCE_DIR "/examples/triage",
           dir);
  ck_assert_int_eq(system(command), 0);
  add_rules(dir,
            "  - id: typo-escalation\n    stage: before_model\n"
            "    when: context.text == \"never sent\"\n    then: { escalate: clasify }\n");
  vd_diags diags = {0};
  ck_assert_ptr_null(vd_deployment_load(dir, NULL, &diags));
  bool found = false;
  for (size_t i = 0; i < diags.count; i++)
    found = found || strstr(diags.items[i].message,
                            "rule typo-escalation: escalate 'clasify' is not an LLM task "
                            "(extract, itinerary, classify); did you mean classify?");
  ck_assert_msg(found, "%s", diags.count ? diags.items[0].message : "no error");
  vd_diags_free(&diags);
  remove_dir(dir);
}
END_TEST

typedef struct bad_deployment {
  const char *yaml;
  const char *says;
  int line;
} bad_deployment;

static const bad_deployment bad[] = {
    {"name: p\nkind: promotions\nrules: rules.yaml\ncandidates: [{id: a}]\nmodle: model\n",
     "unknown key 'modle'", 5},
    {"name: p\nkind: promotions\nrules: rules.yaml\ncandidates:\n  - {id: mens-email, colour: "
     "red}\n",
     "candidate.colour", 5},
    {"name: p\nkind: promotions\nrules: rules.yaml\ncandidates:\n  - {id: mens-email}\n"
     "  - {id: mens-email}\n",
     "duplicate candidate id", 6},
    {"name: p\nkind: promotions\ncandidates: [{id: a}]\n", "needs 'rules'", 1},
    {"name: p\nkind: lottery\nrules: rules.yaml\ncandidates: [{id: a}]\n", "kind must be", 2},
    {"name: p\nkind: promotions\nrules: rules.yaml\nmax_results: 0\ncandidates: [{id: a}]\n",
     "max_results", 4},
    {"name: p\nkind: promotions\nrules: rules.yaml\nmodel: model\ncandidates:\n"
     "  - {id: mens-email, treatment: Mens E-Mail}\n  - {id: womens-email, treatment: Womens "
     "E-mail}\n",
     "treatment 'Womens E-mail' is not one of the model's ('Mens E-Mail', 'Womens E-Mail'; control "
     "'No E-Mail')",
     7},
};

START_TEST(deployment_mistakes_are_named) {
  const bad_deployment *b = &bad[_i];
  char *dir = temp_deployment(b->yaml);
  vd_diags diags = {0};
  ck_assert_ptr_null(vd_deployment_load(dir, NULL, &diags));
  bool found = false;
  for (size_t i = 0; i < diags.count; i++)
    if (strstr(diags.items[i].message, b->says)) {
      found = true;
      ck_assert_int_eq(diags.items[i].line, b->line);
      ck_assert_ptr_nonnull(strstr(diags.items[i].file, "deployment.yaml"));
    }
  ck_assert_msg(found, "no error says '%s' (first: %s)", b->says,
                diags.count ? diags.items[0].message : "none");
  vd_diags_free(&diags);
  remove_dir(dir);
}
END_TEST

START_TEST(a_rule_file_failing_its_tests_is_refused) {
  char *dir = temp_deployment(NULL);
  char command[1024];
  /* Make the opt-out rule deny nobody: its own test now fails. */
  snprintf(command, sizeof command,
           "sed -i 's/when: subject.marketing_opt_out$/when: subject.marketing_opt_out \\&\\& "
           "false/' '%s/rules.yaml'",
           dir);
  ck_assert_int_eq(system(command), 0);
  vd_diags diags = {0};
  ck_assert_ptr_null(vd_deployment_load(dir, NULL, &diags));
  ck_assert_int_gt(diags.count, 0);
  vd_diags_free(&diags);
  remove_dir(dir);
}
END_TEST

START_TEST(registry_swaps_while_holders_keep_their_version) {
  vd_registry *reg = vd_registry_new();
  vd_deployment *v1 = load_example();
  vd_registry_install(reg, v1);
  vd_deployment *held = vd_registry_acquire_kind(reg, "promotions");
  ck_assert_ptr_eq(held, v1);
  vd_deployment *v2 = load_example();
  vd_registry_install(reg, v2); /* v1 is released by the registry, still held by us */
  ck_assert_uint_eq(vd_registry_count(reg), 1);
  vd_deployment *now = vd_registry_acquire_kind(reg, "promotions");
  ck_assert_ptr_eq(now, v2);
  /* The held version still decides (its memory is intact until the last release). */
  json_t *r = decide(held, customer("c7", 6, false, false), NULL, NULL);
  ck_assert_int_eq(json_array_size(json_object_get(r, "results")), 2);
  json_decref(r);
  vd_deployment_release(held);
  vd_deployment_release(now);
  ck_assert_ptr_null(vd_registry_acquire_kind(reg, "triage"));
  vd_registry_free(reg);
}
END_TEST

int main(void) {
  Suite *s = suite_create("pipeline");
  TCase *tc = tcase_create("pipeline");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, loads_the_example_deployment);
  tcase_add_test(tc, scores_rank_and_combine);
  tcase_add_test(tc, a_deny_rule_settles_without_the_model);
  tcase_add_test(tc, request_options_and_violations);
  tcase_add_test(tc, masked_fields_are_keyed_hmacs_in_the_trace);
  tcase_add_test(tc, the_trace_and_the_response_are_one_text);
  tcase_add_test(tc, missing_model_serves_rules_only_with_fallback);
  tcase_add_test(tc, model_budget_spent_falls_back_for_the_rest);
  tcase_add_test(tc, candidates_sharing_a_treatment_share_its_score);
  tcase_add_test(tc, an_adjustment_that_could_overflow_refuses_the_deployment);
  tcase_add_test(tc, a_value_beyond_the_model_is_a_violation);
  tcase_add_test(tc, an_unknown_escalation_task_is_refused);
  tcase_add_loop_test(tc, deployment_mistakes_are_named, 0, sizeof bad / sizeof bad[0]);
  tcase_add_test(tc, a_rule_file_failing_its_tests_is_refused);
  tcase_add_test(tc, registry_swaps_while_holders_keep_their_version);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
