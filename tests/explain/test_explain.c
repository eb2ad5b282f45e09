/* explain/: the trace's JSON Schema against real promotions traces from the pipeline, reason codes,
 * masking refused on fields rules or the model read, the text and HTML explanations, and trace
 * diffs. (Triage decisions: test_triage_explain.c.) */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vd_buf.h"
#include "vd_bundle.h"
#include "vd_deployment.h"
#include "vd_explain.h"
#include "vd_json_schema.h"
#include "vd_pipeline.h"
#include "vd_reasons.h"
#include "vd_test.h"
#include "vd_trace.h"

static const char *example = VERDICT_SOURCE_DIR "/examples/promotions";

static json_t *customer(const char *id, int recency, double history, bool newbie, int emails,
                        const char *country) {
  return json_pack("{s:{s:s, s:i, s:f, s:b, s:b, s:s, s:b, s:s, s:b, s:i, s:s}}", "subject", "id",
                   id, "recency", recency, "history", history, "mens", 1, "womens", 0, "zip_code",
                   "Urban", "newbie", newbie, "channel", "Web", "marketing_opt_out", 0,
                   "emails_last_30d", emails, "country", country);
}

static vd_deployment *load(const vd_deployment_load_options *options) {
  vd_diags diags = {0};
  vd_deployment *d = vd_deployment_load(example, options, &diags);
  ck_assert_msg(d != NULL, "%s", diags.count ? diags.items[0].message : "?");
  vd_diags_free(&diags);
  return d;
}

/* The trace of one decision (request stolen). */
static json_t *trace_of(const vd_deployment *d, json_t *request, size_t cap,
                        const vd_trace_mask *mask) {
  vd_pipeline_input in = {.request = request,
                          .decision_id = "01a23c2a-7289-7441-81f8-c38f843ea62d",
                          .now_us = 1764000000000000,
                          .max_results = cap,
                          .mask = mask};
  vd_decision out = {0};
  vd_diags violations = {0};
  vd_error err = {0};
  vd_pipeline_status st = vd_pipeline_decide(d, &in, &out, &violations, &err);
  ck_assert_msg(st == VD_PIPELINE_OK, "%s %s", err.message,
                violations.count ? violations.items[0].message : "");
  vd_diags_free(&violations);
  json_t *trace = json_incref(out.trace);
  vd_decision_clear(&out);
  json_decref(request);
  return trace;
}

static json_t *schema(void) {
  json_error_t jerr;
  json_t *s = json_load_file(VERDICT_SOURCE_DIR "/explain/trace.schema.json", 0, &jerr);
  ck_assert_msg(s != NULL, "trace.schema.json: %s", jerr.text);
  vd_error err = {0};
  ck_assert_msg(vd_json_schema_check(s, &err), "%s: %s", err.field, err.message);
  return s;
}

static void assert_valid(const json_t *s, const json_t *trace) {
  vd_diags diags = {0};
  bool ok = vd_json_schema_validate(s, trace, &diags);
  ck_assert_msg(ok, "trace breaks the schema: %s: %s", diags.count ? diags.items[0].field : "",
                diags.count ? diags.items[0].message : "");
  vd_diags_free(&diags);
}

static const json_t *candidate(const json_t *trace, const char *id) {
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(trace, "candidates"), i, c) {
    if (strcmp(json_string_value(json_object_get(c, "candidate")), id) == 0) return c;
  }
  ck_abort_msg("no candidate %s", id);
  return NULL;
}

START_TEST(real_traces_validate_against_the_schema) {
  json_t *s = schema();
  vd_deployment *d = load(NULL);
  const vd_trace_mask mask = {(const unsigned char *)"k", 1, (const char *const[]){"subject.id"},
                              1};
  json_t *traces[] = {
      trace_of(d, customer("c1", 3, 612.5, false, 1, "US"), 0, NULL), /* offer + low-uplift */
      trace_of(d, customer("c2", 3, 612.5, false, 5, "US"), 0, NULL), /* frequency-cap deny */
      trace_of(d, customer("c3", 2, 300.0, true, 0, "CA"), 1, &mask), /* capped, adjust, masked */
      trace_of(d, customer("c4", 1, 900.0, true, 0, "FR"), 0, NULL),  /* region deny */
  };
  for (size_t i = 0; i < sizeof traces / sizeof traces[0]; i++) assert_valid(s, traces[i]);
  /* Rules only: the model bundle is missing, every candidate falls back. */
  vd_deployment *rules_only = load(&(vd_deployment_load_options){.model_dir = "/nonexistent"});
  json_t *fallback = trace_of(rules_only, customer("c5", 3, 100.0, false, 0, "US"), 0, NULL);
  assert_valid(s, fallback);
  ck_assert_str_eq(
      json_string_value(json_object_get(json_object_get(fallback, "fallback"), "reason")),
      "model_unavailable");
  /* The schema can fail: a reason without text, an unknown outcome action. */
  json_t *broken = json_deep_copy(traces[0]);
  json_t *reason = json_array_get(
      json_object_get(json_array_get(json_object_get(broken, "candidates"), 0), "reasons"), 0);
  json_object_del(reason, "text");
  vd_diags diags = {0};
  ck_assert(!vd_json_schema_validate(s, broken, &diags));
  ck_assert_str_eq(diags.items[0].field, "candidates[0].reasons[0].text");
  vd_diags_free(&diags);
  for (size_t i = 0; i < sizeof traces / sizeof traces[0]; i++) json_decref(traces[i]);
  json_decref(broken);
  json_decref(fallback);
  vd_deployment_release(rules_only);
  vd_deployment_release(d);
  json_decref(s);
}
END_TEST

START_TEST(reason_codes_follow_the_outcome) {
  vd_deployment *d = load(NULL);
  /* Scored and selected: at most four model reasons, strongest first, either sign. */
  json_t *t = trace_of(d, customer("c1", 3, 612.5, false, 1, "US"), 0, NULL);
  const json_t *mens = candidate(t, "mens-email");
  const json_t *reasons = json_object_get(mens, "reasons");
  ck_assert_int_eq(json_array_size(reasons), VD_REASONS_MAX);
  double previous = 1e9;
  size_t i;
  json_t *r;
  json_array_foreach(reasons, i, r) {
    ck_assert_str_eq(json_string_value(json_object_get(r, "kind")), "model");
    double c = fabs(json_real_value(json_object_get(r, "contribution")));
    ck_assert(c <= previous);
    previous = c;
    ck_assert(strlen(json_string_value(json_object_get(r, "text"))) > 10);
  }
  ck_assert_str_eq(json_string_value(json_object_get(json_array_get(reasons, 1), "text")),
                   "Spent $612.50 last year, which raised the expected response");
  ck_assert_str_eq(json_string_value(json_object_get(json_array_get(reasons, 1), "code")),
                   "model:history:up");
  /* The response carries the same reasons as the trace. */
  const json_t *result =
      json_array_get(json_object_get(json_object_get(t, "response"), "results"), 0);
  ck_assert(json_equal(json_object_get(result, "reasons"), (json_t *)reasons));
  /* Denied after the model: the rule first, then only reasons against it. */
  const json_t *womens = json_object_get(candidate(t, "womens-email"), "reasons");
  ck_assert_str_eq(json_string_value(json_object_get(json_array_get(womens, 0), "code")),
                   "low-uplift");
  ck_assert_str_eq(json_string_value(json_object_get(json_array_get(womens, 0), "text")),
                   "Expected uplift below half a percentage point");
  ck_assert_int_gt(json_array_size(womens), 1);
  json_array_foreach(womens, i, r) {
    if (i == 0) continue;
    ck_assert_str_eq(json_string_value(json_object_get(r, "direction")), "down");
    ck_assert(json_real_value(json_object_get(r, "contribution")) < 0);
  }
  json_decref(t);
  /* Settled before the model: exactly the rule that settled it. */
  t = trace_of(d, customer("c2", 3, 612.5, false, 5, "US"), 0, NULL);
  reasons = json_object_get(candidate(t, "mens-email"), "reasons");
  ck_assert_int_eq(json_array_size(reasons), 1);
  ck_assert_str_eq(json_string_value(json_object_get(json_array_get(reasons, 0), "code")),
                   "frequency-cap");
  ck_assert_str_eq(json_string_value(json_object_get(json_array_get(reasons, 0), "kind")), "rule");
  json_decref(t);
  /* Capped out (a cap of one): reasons against only; the ranked one gets the adjust rule. */
  t = trace_of(d, customer("c3", 2, 300.0, true, 0, "CA"), 1, NULL);
  size_t capped = 0;
  json_array_foreach(json_object_get(t, "candidates"), i, r) {
    const char *action =
        json_string_value(json_object_get(json_object_get(r, "outcome"), "action"));
    size_t k;
    json_t *reason;
    if (strcmp(action, "capped") == 0) {
      capped++;
      json_array_foreach(json_object_get(r, "reasons"), k, reason) {
        ck_assert(json_number_value(json_object_get(reason, "contribution")) < 0 ||
                  json_number_value(json_object_get(reason, "adjust")) < 0);
      }
    } else if (strcmp(action, "offer") == 0) {
      const json_t *first = json_array_get(json_object_get(r, "reasons"), 0);
      ck_assert_str_eq(json_string_value(json_object_get(first, "code")), "new-customer-welcome");
      ck_assert_double_eq_tol(json_real_value(json_object_get(first, "adjust")), 0.01, 1e-12);
    }
  }
  ck_assert_int_eq(capped, 1);
  json_decref(t);
  vd_deployment_release(d);
}
END_TEST

START_TEST(missing_reason_texts_are_listed_with_their_generated_text) {
  vd_deployment *d = load(NULL);
  json_t *none = vd_reasons_missing(vd_deployment_model(d));
  ck_assert_int_eq(json_array_size(none), 0); /* the shipped manifest has every text */
  json_decref(none);
  vd_deployment_release(d);
  /* A bundle copy whose manifest lacks recency's "down" text. */
  char dir[] = "/tmp/vd-explain-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "cp -r %s/model %s/model", example, dir);
  ck_assert_int_eq(system(cmd), 0);
  char path[512];
  snprintf(path, sizeof path, "%s/model/manifest.json", dir);
  json_t *manifest = json_load_file(path, 0, NULL);
  ck_assert_ptr_nonnull(manifest);
  json_object_del(json_object_get(json_object_get(manifest, "reasons"), "recency"), "down");
  ck_assert_int_eq(json_dump_file(manifest, path, JSON_INDENT(2)), 0);
  json_decref(manifest);
  snprintf(path, sizeof path, "%s/model", dir);
  char version[VD_SHA256_HEX_SIZE]; /* an edited manifest is a new version: stamp it */
  vd_error err = {0};
  ck_assert_msg(vd_bundle_rehash(path, version, NULL, &err), "%s", err.message);
  d = load(&(vd_deployment_load_options){.model_dir = path});
  ck_assert_ptr_nonnull(vd_deployment_model(d));
  json_t *missing = vd_reasons_missing(vd_deployment_model(d));
  ck_assert_int_eq(json_array_size(missing), 1);
  const json_t *m = json_array_get(missing, 0);
  ck_assert_str_eq(json_string_value(json_object_get(m, "feature")), "recency");
  ck_assert_str_eq(json_string_value(json_object_get(m, "direction")), "down");
  ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(m, "generated")), "lowered"));
  json_decref(missing);
  vd_deployment_release(d);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* A mask entry naming no served field would silently mask nothing: refused, with did-you-mean. */
START_TEST(masking_an_unknown_field_is_refused) {
  vd_deployment *d = load(NULL);
  const vd_schema *schemas[] = {vd_deployment_schema(d)};
  vd_diags diags = {0};
  vd_trace_mask known = {NULL, 0, (const char *const[]){"subject.id", "subject"}, 2};
  ck_assert(vd_trace_mask_known(&known, schemas, 1, &diags));
  ck_assert_int_eq(diags.count, 0);
  vd_trace_mask typo = {NULL, 0, (const char *const[]){"subject.idd", "billing.card"}, 2};
  ck_assert(!vd_trace_mask_known(&typo, schemas, 1, &diags));
  ck_assert_int_eq(diags.count, 2);
  ck_assert_str_eq(diags.items[0].field, "mask_fields");
  ck_assert_msg(
      strstr(diags.items[0].message,
             "subject.idd is not a field of any served schema (did you mean subject.id?)"),
      "%s", diags.items[0].message);
  ck_assert_msg(strstr(diags.items[1].message, "billing.card is not a field of any served schema"),
                "%s", diags.items[1].message);
  vd_diags_free(&diags);
  vd_deployment_release(d);
}
END_TEST

START_TEST(masking_a_field_that_is_read_is_refused) {
  vd_deployment *d = load(NULL);
  const vd_ruleset *rs = vd_deployment_ruleset(d);
  const vd_model *model = vd_deployment_model(d);
  vd_diags diags = {0};
  vd_trace_mask ok = {NULL, 0, (const char *const[]){"subject.id"}, 1};
  ck_assert(vd_trace_mask_check(&ok, rs, model, &diags));
  ck_assert_int_eq(diags.count, 0);
  vd_trace_mask country = {NULL, 0, (const char *const[]){"subject.country"}, 1};
  ck_assert(!vd_trace_mask_check(&country, rs, model, &diags));
  ck_assert_int_eq(diags.count, 1);
  ck_assert_ptr_nonnull(strstr(diags.items[0].message,
                               "subject.country is read by rule "
                               "region-restriction"));
  ck_assert_str_eq(diags.items[0].field, "mask_fields");
  vd_diags_free(&diags);
  /* recency: a rule and a model feature read it; both are named. */
  vd_trace_mask recency = {NULL, 0, (const char *const[]){"subject.recency"}, 1};
  ck_assert(!vd_trace_mask_check(&recency, rs, model, &diags));
  ck_assert_int_eq(diags.count, 2);
  ck_assert_ptr_nonnull(strstr(diags.items[0].message, "rule new-customer-welcome"));
  ck_assert_ptr_nonnull(strstr(diags.items[1].message, "model feature recency"));
  vd_diags_free(&diags);
  /* A whole section covers the fields under it. */
  vd_trace_mask subject = {NULL, 0, (const char *const[]){"subject"}, 1};
  ck_assert(!vd_trace_mask_check(&subject, rs, model, &diags));
  ck_assert_ptr_nonnull(strstr(diags.items[0].message, "subject (which covers subject."));
  vd_diags_free(&diags);
  vd_deployment_release(d);
}
END_TEST

static char *render(const json_t *trace, const vd_ruleset *rs, vd_explain_format f) {
  vd_buf b = {0};
  vd_error err = {0};
  ck_assert_msg(vd_explain_render(trace, rs, f, &b, &err), "%s", err.message);
  return vd_buf_take(&b);
}

START_TEST(text_explanation_reads_for_a_compliance_reader) {
  vd_deployment *d = load(NULL);
  const vd_ruleset *rs = vd_deployment_ruleset(d);
  json_t *t = trace_of(d, customer("c2", 3, 612.5, false, 5, "US"), 0, NULL);
  char *text = render(t, rs, VD_EXPLAIN_TEXT);
  ck_assert_ptr_nonnull(strstr(text, "DECISION 01a23c2a-7289-7441-81f8-c38f843ea62d"));
  ck_assert_ptr_nonnull(strstr(text, "Customer: c2"));
  ck_assert_ptr_nonnull(
      strstr(text, "mens-email       NOT OFFERED: declined by rule frequency-cap"));
  ck_assert_ptr_nonnull(strstr(text,
                               "1. Already received 4 marketing e-mails in the last 30 days "
                               "(rule frequency-cap)"));
  ck_assert_ptr_nonnull(strstr(text, "looked at subject.emails_last_30d = 5"));
  ck_assert_ptr_nonnull(strstr(text, "- frequency-cap: APPLIED"));
  ck_assert_ptr_nonnull(strstr(text, "At most four marketing e-mails in 30 days."));
  ck_assert_ptr_nonnull(strstr(text, "The model was not consulted"));
  ck_assert_ptr_nonnull(strstr(text, vd_ruleset_version(rs)));
  ck_assert_ptr_nonnull(strstr(text, vd_deployment_version(d)));
  free(text);
  json_decref(t);
  /* Scored: the estimate in percent and the contributions as a bar chart. */
  t = trace_of(d, customer("c1", 3, 612.5, false, 1, "US"), 0, NULL);
  text = render(t, rs, VD_EXPLAIN_TEXT);
  ck_assert_ptr_nonnull(strstr(text, "mens-email       OFFERED (rank 1)"));
  ck_assert_ptr_nonnull(strstr(text, "chance of a response with this offer:"));
  ck_assert_ptr_nonnull(strstr(text, "expected difference (uplift):"));
  ck_assert_ptr_nonnull(strstr(text, "|########################\n")); /* the largest bar */
  ck_assert_ptr_nonnull(strstr(text, "#|"));                          /* a negative one */
  ck_assert_ptr_nonnull(strstr(text, vd_model_version(vd_deployment_model(d))));
  /* the bars are per model column, the reasons per input: the chart says so */
  ck_assert_ptr_nonnull(strstr(text, "What moved the model's estimate, per model column"));
  ck_assert_ptr_nonnull(strstr(text,
                               "the principal reasons above\n  are per input, its columns "
                               "added up, so their figures can differ from the bars:"));
  ck_assert_ptr_nonnull(strstr(text, "treatment=Mens E-Mail"));
  free(text);
  /* Without the ruleset, rules still show by id. */
  text = render(t, NULL, VD_EXPLAIN_TEXT);
  ck_assert_ptr_nonnull(strstr(text, "- low-uplift: APPLIED"));
  ck_assert_ptr_null(strstr(text, "At most four marketing e-mails"));
  free(text);
  json_decref(t);
  vd_deployment_release(d);
}
END_TEST

/* A rule file's own text (a rule's description, its deny message) reaches the text explanation
 * escaped like client text: no terminal escape, forged line or bidi override gets through. */
START_TEST(text_explanation_escapes_the_rule_files_text) {
  char dir[] = "/tmp/vd-explain-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char cmd[1024], rules[512];
  /* sed writes YAML escapes (\e, \n, \u202e) into double-quoted strings */
  snprintf(cmd, sizeof cmd,
           "cp %s/schema.yaml %s/ && sed -e 's|description: At most four marketing e-mails in "
           "30 days.|description: \"At most four\\\\e[31m e-mails\\\\nForged: line\\\\u202e\"|' "
           "-e 's|deny: \"Already received 4 marketing|deny: \"Already\\\\e[2J received 4 "
           "marketing|' %s/rules.yaml > %s/rules.yaml",
           example, dir, example, dir);
  ck_assert_int_eq(system(cmd), 0);
  snprintf(rules, sizeof rules, "%s/rules.yaml", dir);
  vd_deployment *d = load(&(vd_deployment_load_options){.rules_path = rules});
  const vd_ruleset *rs = vd_deployment_ruleset(d);
  json_t *t = trace_of(d, customer("c2", 3, 612.5, false, 5, "US"), 0, NULL);
  char *text = render(t, rs, VD_EXPLAIN_TEXT);
  ck_assert_msg(strstr(text, "        At most four\\u001b[31m e-mails\\nForged: line\\u202e\n"),
                "%s", text);
  ck_assert_msg(strstr(text, "declines the offer (\"Already\\u001b[2J received 4"), "%s", text);
  ck_assert_ptr_null(strchr(text, '\x1b'));
  ck_assert_ptr_null(strstr(text, "\nForged"));
  ck_assert_ptr_null(strstr(text, "\u202e"));
  free(text);
  json_decref(t);
  vd_deployment_release(d);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(html_explanation_is_self_contained_and_escaped) {
  vd_deployment *d = load(NULL);
  json_t *t = trace_of(d, customer("<b>x&y</b>", 3, 612.5, false, 1, "US"), 0, NULL);
  char *html = render(t, vd_deployment_ruleset(d), VD_EXPLAIN_HTML);
  ck_assert_ptr_nonnull(strstr(html, "<!DOCTYPE html>"));
  ck_assert_ptr_nonnull(strstr(html, "<svg"));
  ck_assert_ptr_nonnull(strstr(html, "<rect"));
  ck_assert_ptr_nonnull(strstr(html, "&lt;b&gt;x&amp;y&lt;/b&gt;"));
  ck_assert_ptr_null(strstr(html, "<b>x&y"));
  ck_assert_ptr_null(strstr(html, "<script"));
  ck_assert_ptr_null(strstr(html, "src="));
  ck_assert_ptr_null(strstr(html, "href="));
  ck_assert_ptr_nonnull(strstr(html, "<code>subject.country</code> = US"));
  ck_assert_ptr_nonnull(strstr(html, "Expected uplift below half a percentage point"));
  ck_assert_ptr_nonnull(strstr(html, "Each bar is one model column's contribution"));
  ck_assert_ptr_nonnull(strstr(html,
                               "the principal reasons above are per input, its columns "
                               "added up, so their figures can differ from the bars."));
  free(html);
  json_decref(t);
  /* Terminal escapes (an OSC title sequence ESC ] ... BEL), other controls and bidi overrides are
   * escaped as in the text form, then HTML-escaped: curl in a terminal prints the page raw. */
  t = trace_of(
      d, customer("c-<b>\"x'\x1b]0;title\x07\xc2\x9b\xe2\x80\xae\\n", 3, 612.5, false, 1, "US"), 0,
      NULL);
  html = render(t, vd_deployment_ruleset(d), VD_EXPLAIN_HTML);
  ck_assert_msg(strstr(html, "c-&lt;b&gt;&quot;x&#39;\\u001b]0;title\\u0007\\u009b\\u202e\\\\n"),
                "%s", html);
  ck_assert_ptr_null(strchr(html, '\x1b'));
  ck_assert_ptr_null(strchr(html, '\x07'));
  ck_assert_ptr_null(strstr(html, "\xc2\x9b"));
  ck_assert_ptr_null(strstr(html, "\xe2\x80\xae"));
  free(html);
  json_decref(t);
  /* A masked subject id reads "(masked)". */
  const vd_trace_mask mask = {(const unsigned char *)"k", 1, (const char *const[]){"subject.id"},
                              1};
  t = trace_of(d, customer("c9", 3, 612.5, false, 1, "US"), 0, &mask);
  char *text = render(t, NULL, VD_EXPLAIN_TEXT);
  ck_assert_ptr_nonnull(strstr(text, "Customer: (masked)"));
  free(text);
  json_decref(t);
  /* Not a trace. */
  vd_buf b = {0};
  vd_error err = {0};
  json_t *junk = json_pack("{s:i}", "x", 1);
  ck_assert(!vd_explain_render(junk, NULL, VD_EXPLAIN_TEXT, &b, &err));
  json_decref(junk);
  vd_buf_free(&b);
  vd_explain_format f;
  ck_assert(vd_explain_format_parse("html", &f) && f == VD_EXPLAIN_HTML);
  ck_assert(!vd_explain_format_parse("pdf", &f));
  vd_deployment_release(d);
}
END_TEST

START_TEST(trace_diff_names_each_difference_and_ignores_timings) {
  vd_deployment *d = load(NULL);
  json_t *a = trace_of(d, customer("c1", 3, 612.5, false, 1, "US"), 0, NULL);
  json_t *b = trace_of(d, customer("c1", 3, 612.5, false, 1, "US"), 0, NULL);
  size_t total = 99;
  json_t *diff = vd_trace_diff(a, b, 10, &total);
  ck_assert_int_eq(total, 0); /* timings differ between the two runs, nothing else */
  json_decref(diff);
  json_t *outcome = json_object_get(json_array_get(json_object_get(b, "candidates"), 1), "outcome");
  json_object_set_new(outcome, "action", json_string("offer"));
  json_object_del(json_object_get(b, "deployment"), "version");
  diff = vd_trace_diff(a, b, 10, &total);
  ck_assert_int_eq(total, 2);
  ck_assert_str_eq(json_string_value(json_object_get(json_array_get(diff, 0), "path")),
                   "deployment.version");
  ck_assert_str_eq(json_string_value(json_object_get(json_array_get(diff, 0), "missing")), "after");
  ck_assert_str_eq(json_string_value(json_object_get(json_array_get(diff, 1), "path")),
                   "candidates[1].outcome.action");
  json_decref(diff);
  diff = vd_trace_diff(a, b, 1, &total);
  ck_assert_int_eq(json_array_size(diff), 1);
  ck_assert_int_eq(total, 2);
  json_decref(diff);
  json_decref(a);
  json_decref(b);
  vd_deployment_release(d);
}
END_TEST

/* Across verdict builds float rounding may move contributions by ~1e-8: replay's diff lets reals
 * within VD_TRACE_REAL_TOLERANCE pass (counted), and nothing else. */
START_TEST(trace_diff_within_tolerance_counts_rounding_only) {
  json_t *a = json_pack("{s:f, s:f, s:i, s:s}", "phi", 0.42361969072427286, "score", 0.125, "rank",
                        1, "action", "offer");
  json_t *b = json_deep_copy(a);
  json_object_set_new(b, "phi", json_real(0.4236196871879656)); /* 3.5e-9 away */
  size_t total = 0;
  vd_trace_leeway leeway = {.real_tolerance = VD_TRACE_REAL_TOLERANCE};
  json_t *diff = vd_trace_diff(a, b, 10, &total);
  ck_assert_int_eq(total, 1); /* the exact diff sees it */
  json_decref(diff);
  diff = vd_trace_diff_within(a, b, &leeway, 10, &total);
  ck_assert_int_eq(total, 0);
  ck_assert_int_eq(leeway.rounded, 1);
  json_decref(diff);
  json_object_set_new(b, "score", json_real(0.126)); /* a real change */
  json_object_set_new(b, "rank", json_integer(2));   /* integers are compared exactly */
  diff = vd_trace_diff_within(a, b, &leeway, 10, &total);
  ck_assert_int_eq(total, 2);
  ck_assert_int_eq(leeway.rounded, 1);
  json_decref(diff);
  json_object_set_new(b, "rank", json_integer(1));
  json_object_set_new(b, "score", json_real(1e7 + 1.0)); /* relative: 1e-7 of 1e7 */
  json_object_set_new(a, "score", json_real(1e7));
  diff = vd_trace_diff_within(a, b, &leeway, 10, &total);
  ck_assert_int_eq(total, 0);
  ck_assert_int_eq(leeway.rounded, 2);
  json_decref(diff);
  json_decref(a);
  json_decref(b);
}
END_TEST

/* A later build may word a reason differently (48d747b said the customer's value in every text):
 * with reason_wording, a reason's text passes (counted) while its code and every other string are
 * still compared exactly. */
START_TEST(trace_diff_lets_reason_wording_pass_not_codes) {
  json_t *a = json_pack("{s:[{s:[{s:s, s:s}]}], s:s, s:{s:s}}", "candidates", "reasons", "code",
                        "model.newbie", "text", "Being a new customer", "action", "offer",
                        "explanation", "text", "plain");
  json_t *b = json_deep_copy(a);
  json_t *reason = json_array_get(
      json_object_get(json_array_get(json_object_get(b, "candidates"), 0), "reasons"), 0);
  json_object_set_new(reason, "text", json_string("Being a new customer (newbie: yes)"));
  size_t total = 0;
  vd_trace_leeway exact_reals = {.real_tolerance = VD_TRACE_REAL_TOLERANCE};
  json_decref(vd_trace_diff_within(a, b, &exact_reals, 10, &total));
  ck_assert_int_eq(total, 1); /* without reason_wording it is a difference */
  vd_trace_leeway leeway = {.real_tolerance = VD_TRACE_REAL_TOLERANCE, .reason_wording = true};
  json_decref(vd_trace_diff_within(a, b, &leeway, 10, &total));
  ck_assert_int_eq(total, 0);
  ck_assert_int_eq(leeway.reworded, 1);
  json_object_set_new(reason, "code", json_string("model.mens")); /* a code is decision-bearing */
  json_object_set_new(json_object_get(b, "explanation"), "text", json_string("other"));
  json_decref(vd_trace_diff_within(a, b, &leeway, 10, &total));
  ck_assert_int_eq(total, 2); /* the code, and a "text" that is not a reason's */
  ck_assert_int_eq(leeway.reworded, 1);
  json_decref(a);
  json_decref(b);
}
END_TEST

int main(void) {
  Suite *s = suite_create("explain");
  TCase *tc = tcase_create("explain");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, real_traces_validate_against_the_schema);
  tcase_add_test(tc, reason_codes_follow_the_outcome);
  tcase_add_test(tc, missing_reason_texts_are_listed_with_their_generated_text);
  tcase_add_test(tc, masking_a_field_that_is_read_is_refused);
  tcase_add_test(tc, masking_an_unknown_field_is_refused);
  tcase_add_test(tc, text_explanation_reads_for_a_compliance_reader);
  tcase_add_test(tc, html_explanation_is_self_contained_and_escaped);
  tcase_add_test(tc, text_explanation_escapes_the_rule_files_text);
  tcase_add_test(tc, trace_diff_names_each_difference_and_ignores_timings);
  tcase_add_test(tc, trace_diff_within_tolerance_counts_rounding_only);
  tcase_add_test(tc, trace_diff_lets_reason_wording_pass_not_codes);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
