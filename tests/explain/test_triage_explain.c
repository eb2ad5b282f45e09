/* Triage decisions in explain/: real traces from the triage pipeline validate against
 * explain/trace.schema.json (and a missing or mistyped field fails), the stored text is exactly
 * the text the rules and the model read (card numbers masked once), every trace replays
 * identically on the stored versions without an LLM job (even where masking the stored text
 * again would change it), a changed outcome is reported, and the explanation reads for a
 * compliance reader in text and HTML.
 *
 * Nothing here hard-codes what the text model answers (it is retrained): expectations about
 * the model come from scoring the same text with the model, and the rule-decided cases come from
 * the rule file. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vd_buf.h"
#include "vd_deployment.h"
#include "vd_explain.h"
#include "vd_json_schema.h"
#include "vd_pan.h"
#include "vd_replay.h"
#include "vd_test.h"
#include "vd_trace.h"
#include "vd_triage_pipeline.h"

static const char *example = VERDICT_SOURCE_DIR "/examples/triage";

/* Rules appended to a copy of the shipped rule file: a before_model phrase that settles the
 * request and asks for an itinerary, so the itinerary/extract escalations do not depend on the
 * model. */
static const char trip_rules[] =
    "  - id: test-trip-route\n"
    "    description: Trip planning requests go to the travel planners (test rule).\n"
    "    stage: before_model\n"
    "    when: 'context.text.contains(\"plan my trip\")'\n"
    "    then: { route: travel_planning }\n"
    "  - id: test-trip-itinerary\n"
    "    stage: before_model\n"
    "    when: 'context.text.contains(\"plan my trip\")'\n"
    "    then: { escalate: itinerary }\n";

typedef struct fixture {
  char dir[64];
  char data[96];
  char rules[128];
  vd_deployment *d;        /* the shipped model, the rule file + trip_rules */
  vd_deployment *fallback; /* the same without a model */
  vd_gazetteer *gazetteer;
  char gazetteer_version[VD_SHA256_HEX_SIZE];
  json_t *schema;
} fixture;

static void copy_rules(fixture *f) {
  size_t size = 0;
  char path[256];
  snprintf(path, sizeof path, "%s/rules.yaml", example);
  char *text = vd_read_file(path, 1 << 20, &size, NULL);
  ck_assert_ptr_nonnull(text);
  char *tests = strstr(text, "\ntests:");
  ck_assert_ptr_nonnull(tests);
  snprintf(f->rules, sizeof f->rules, "%s/rules.yaml", f->dir);
  FILE *out = fopen(f->rules, "w");
  ck_assert_ptr_nonnull(out);
  fprintf(out, "%.*s\n%s%s", (int)(tests - text), text, trip_rules, tests);
  fclose(out);
  free(text);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "cp %s/schema.yaml %s/", example, f->dir);
  ck_assert_int_eq(system(cmd), 0);
}

static void fixture_init(fixture *f) {
  memset(f, 0, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "/tmp/vd-triage-explain-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(f->dir));
  snprintf(f->data, sizeof f->data, "%s/data", f->dir);
  ck_assert_int_eq(mkdir(f->data, 0700), 0);
  copy_rules(f);
  vd_diags diags = {0};
  f->d = vd_deployment_load(
      example, &(vd_deployment_load_options){.data_dir = f->data, .rules_path = f->rules}, &diags);
  ck_assert_msg(f->d != NULL, "%s", diags.count ? diags.items[0].message : "?");
  ck_assert_ptr_nonnull(vd_deployment_triage(f->d));
  f->fallback = vd_deployment_load(
      example,
      &(vd_deployment_load_options){
          .data_dir = f->data, .rules_path = f->rules, .model_dir = "/nonexistent"},
      &diags);
  ck_assert_msg(f->fallback != NULL, "%s", diags.count ? diags.items[0].message : "?");
  vd_diags_free(&diags);
  vd_error err = {0};
  char path[256];
  snprintf(path, sizeof path, "%s/gazetteer.tsv", example);
  f->gazetteer = vd_triage_gazetteer_open(path, f->data, f->gazetteer_version, &err);
  ck_assert_msg(f->gazetteer != NULL, "%s", err.message);
  json_error_t jerr;
  f->schema = json_load_file(VERDICT_SOURCE_DIR "/explain/trace.schema.json", 0, &jerr);
  ck_assert_msg(f->schema != NULL, "trace.schema.json: %s", jerr.text);
  ck_assert_msg(vd_json_schema_check(f->schema, &err), "%s: %s", err.field, err.message);
}

static void fixture_done(fixture *f) {
  vd_deployment_release(f->d);
  vd_deployment_release(f->fallback);
  vd_gazetteer_free(f->gazetteer);
  json_decref(f->schema);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
  ck_assert_int_eq(system(cmd), 0);
}

/* One served decision, as the service makes it: decided, its escalation recorded (job_id or
 * error), then stored as JSON text and read back (the decision log's round trip). */
static json_t *served(const fixture *f, const vd_deployment *d, const char *text, int n,
                      const vd_trace_mask *mask, const char *job_id, const char *error) {
  json_t *request = json_pack("{s:s, s:s, s:{s:s, s:s}}", "text", text, "channel", "email",
                              "subject", "id", "c-77", "tier", n % 2 ? "gold" : "standard");
  char id[40];
  snprintf(id, sizeof id, "01a23c2a-7289-7441-81f8-%012d", n);
  vd_triage_input in = {.request = request,
                        .decision_id = id,
                        .now_us = 1764000000000000 + n * 1000,
                        .mask = mask,
                        .gazetteer = f->gazetteer,
                        .gazetteer_version = f->gazetteer_version};
  vd_triage_decision out = {0};
  vd_diags violations = {0};
  vd_error err = {0};
  ck_assert_msg(vd_triage_decide(d, &in, &out, &violations, &err) == VD_PIPELINE_OK, "%s %s",
                err.message, violations.count ? violations.items[0].message : "");
  if (out.escalate) vd_triage_record_escalation(&out, job_id, job_id ? NULL : error);
  char *stored = json_dumps(out.trace, JSON_COMPACT);
  json_t *trace = json_loads(stored, 0, NULL);
  ck_assert_ptr_nonnull(trace);
  free(stored);
  vd_triage_decision_clear(&out);
  vd_diags_free(&violations);
  json_decref(request);
  return trace;
}

static const json_t *record_of(const json_t *trace) {
  return json_array_get(json_object_get(trace, "candidates"), 0);
}

static const char *outcome_of(const json_t *trace, const char *field) {
  return json_string_value(json_object_get(json_object_get(record_of(trace), "outcome"), field));
}

static void assert_valid(const fixture *f, const json_t *trace) {
  vd_diags diags = {0};
  bool ok = vd_json_schema_validate(f->schema, trace, &diags);
  ck_assert_msg(ok, "trace %s breaks the schema: %s: %s",
                json_string_value(json_object_get(trace, "id")),
                diags.count ? diags.items[0].field : "", diags.count ? diags.items[0].message : "");
  vd_diags_free(&diags);
}

/* The first violation's field path for a broken copy of trace (edit applied). */
static void assert_breaks(const fixture *f, const json_t *broken, const char *field) {
  vd_diags diags = {0};
  ck_assert(!vd_json_schema_validate(f->schema, broken, &diags));
  ck_assert_msg(diags.count && strcmp(diags.items[0].field, field) == 0, "want %s, got %s: %s",
                field, diags.count ? diags.items[0].field : "(none)",
                diags.count ? diags.items[0].message : "");
  vd_diags_free(&diags);
}

/* A card number that becomes a new one when the masked text is masked again: the digits after
 * the masked card, with its last four in front, pass the Luhn check. */
static void unstable_card_text(char *out, size_t size) {
  for (int x = '0'; x <= '9'; x++) {
    char digits[] = "111112345678901?";
    digits[15] = (char)x;
    if (vd_luhn_valid(digits, 16)) {
      snprintf(out, size, "card 4111111111111111 1234 5678 901%c was charged twice", (char)x);
      return;
    }
  }
  ck_abort_msg("no check digit");
}

static const char *const model_texts[] = {
    "my luggage never showed up after my flight",
    "what is the weather going to be like in paris tomorrow",
    "how do i reset the password of my online account",
    "please tell me a joke",
    "can you recommend a good recipe for lasagna",
    "i want to book a flight to new york next friday",
    "what are good things to do when travelling to lisbon",
};

/* Every kind of triage trace the pipeline writes. */
static json_t *all_kinds(const fixture *f, size_t *count) {
  json_t *traces = json_array();
  const vd_trace_mask mask = {(const unsigned char *)"k", 1, (const char *const[]){"subject.id"},
                              1};
  int n = 0;
  for (size_t i = 0; i < sizeof model_texts / sizeof model_texts[0]; i++)
    json_array_append_new(traces, served(f, f->d, model_texts[i], n++, NULL, "job-1", NULL));
  /* settled by a rule before the model */
  json_array_append_new(traces, served(f, f->d, "I want to open a chargeback for this order", n++,
                                       &mask, NULL, NULL));
  /* card numbers masked, one of them unstable under masking again */
  json_array_append_new(traces, served(f, f->d, "my card 4111 1111 1111 1111 was declined", n++,
                                       NULL, "job-2", NULL));
  char unstable[128];
  unstable_card_text(unstable, sizeof unstable);
  json_array_append_new(traces, served(f, f->d, unstable, n++, NULL, "job-3", NULL));
  /* an itinerary (the gazetteer finds the trip) and one that becomes an extract */
  json_array_append_new(
      traces, served(f, f->d, "please plan my trip to Kyoto from 2027-04-02 to 2027-04-05", n++,
                     NULL, "job-4", NULL));
  json_array_append_new(traces, served(f, f->d, "please plan my trip somewhere", n++, NULL, NULL,
                                       "queue_full: the LLM job queue is full"));
  /* no model: a classify escalation, provisional route */
  json_array_append_new(
      traces, served(f, f->fallback, "my luggage never showed up", n++, NULL, "job-5", NULL));
  *count = json_array_size(traces);
  return traces;
}

START_TEST(real_triage_traces_validate_and_a_broken_one_does_not) {
  fixture f;
  fixture_init(&f);
  size_t n;
  json_t *traces = all_kinds(&f, &n);
  size_t handled[3] = {0}, escalations[3] = {0};
  size_t i;
  json_t *t;
  json_array_foreach(traces, i, t) {
    assert_valid(&f, t);
    ck_assert_int_eq(json_integer_value(json_object_get(t, "trace_version")), VD_TRACE_VERSION);
    const char *h = outcome_of(t, "handled_by");
    handled[strcmp(h, "rules") == 0 ? 0 : strcmp(h, "model") == 0 ? 1 : 2]++;
    const char *e = json_string_value(json_object_get(json_object_get(t, "escalation"), "task"));
    if (e) escalations[strcmp(e, "classify") == 0 ? 0 : strcmp(e, "extract") == 0 ? 1 : 2]++;
  }
  /* the rules settled some, the model others, one is pending the LLM; every task occurs */
  ck_assert_uint_ge(handled[0], 3);
  ck_assert_uint_ge(handled[2], 1);
  ck_assert_uint_ge(escalations[0], 1);
  ck_assert_uint_ge(escalations[1], 1);
  ck_assert_uint_ge(escalations[2], 1);
  /* the no-model trace says why */
  t = json_array_get(traces, n - 1);
  ck_assert_str_eq(json_string_value(json_object_get(json_object_get(t, "fallback"), "reason")),
                   "model_unavailable");
  /* an amendment as the service stores it (read back from the log) validates too */
  json_t *amended = json_deep_copy(t);
  json_object_set_new(
      amended, "amendments",
      json_pack("[{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:f, s:s}, s:s, s:s, s:s}]", "type",
                "llm_escalation", "task", "classify", "job_id", "job-5", "state", "succeeded",
                "handled_by", "llm", "result", "intent", "lost_luggage", "route", "baggage_support",
                "confidence", 0.9, "source", "llm", "final_route", "baggage_support",
                "final_intent", "lost_luggage", "amended_at", "2026-12-03T14:00:00.000000Z"));
  assert_valid(&f, amended);
  /* missing and mistyped fields fail, at their path */
  json_t *scored = json_array_get(traces, 0);
  json_t *broken = json_deep_copy(scored);
  json_object_del(
      json_object_get(json_array_get(json_object_get(broken, "candidates"), 0), "outcome"),
      "handled_by");
  assert_breaks(&f, broken, "candidates[0].outcome.handled_by");
  json_decref(broken);
  broken = json_deep_copy(scored);
  json_t *model =
      json_object_get(json_array_get(json_object_get(broken, "candidates"), 0), "model");
  if (json_is_object(model)) {
    json_object_set_new(model, "confidence", json_string("high"));
    assert_breaks(&f, broken, "candidates[0].model.confidence");
  }
  json_decref(broken);
  broken = json_deep_copy(scored);
  json_object_del(broken, "gazetteer");
  assert_breaks(&f, broken, "gazetteer");
  json_decref(broken);
  broken = json_deep_copy(scored);
  json_object_set_new(json_object_get(broken, "response"), "route", json_integer(3));
  assert_breaks(&f, broken, "response.route");
  json_decref(broken);
  broken = json_deep_copy(scored);
  json_object_set_new(broken, "results", json_array()); /* a promotions field */
  assert_breaks(&f, broken, "results");
  json_decref(broken);
  broken = json_deep_copy(amended);
  json_object_del(json_array_get(json_object_get(broken, "amendments"), 0), "amended_at");
  assert_breaks(&f, broken, "amendments[0].amended_at");
  json_decref(broken);
  json_decref(amended);
  json_decref(traces);
  fixture_done(&f);
}
END_TEST

START_TEST(the_stored_text_is_the_text_the_rules_and_the_model_read) {
  fixture f;
  fixture_init(&f);
  json_t *t =
      served(&f, f.d, "my card 4111 1111 1111 1111 was declined yesterday", 1, NULL, "job", NULL);
  const char *text = json_string_value(json_object_get(json_object_get(t, "request"), "text"));
  ck_assert_str_eq(text, "my card ****1111 was declined yesterday");
  char *all = json_dumps(t, JSON_COMPACT);
  ck_assert_ptr_null(strstr(all, "4111 1111"));
  free(all);
  ck_assert_int_eq(json_integer_value(json_object_get(record_of(t), "cards_masked")), 1);
  /* the rules read exactly the stored text */
  size_t i, reads = 0;
  json_t *r;
  json_array_foreach(json_object_get(json_object_get(record_of(t), "rules"), "rules"), i, r) {
    const json_t *read = json_object_get(json_object_get(r, "read"), "context.text");
    if (!read) continue;
    ck_assert_str_eq(json_string_value(read), text);
    reads++;
  }
  ck_assert_uint_gt(reads, 0);
  /* the model scored the stored text: the same result as scoring it directly, and every token
   * span lies in the stored text */
  const json_t *model = json_object_get(record_of(t), "model");
  ck_assert(json_is_object(model));
  const vd_triage_model *m = vd_deployment_triage(f.d);
  vd_triage_scratch *scratch = vd_triage_scratch_new(m);
  vd_triage_result res = {0};
  vd_error err = {0};
  ck_assert(vd_triage_score(m, scratch, text, strlen(text), 3, true, &res, &err));
  ck_assert_str_eq(json_string_value(json_object_get(model, "intent")), res.top[0].intent);
  ck_assert_double_eq(json_real_value(json_object_get(model, "confidence")), res.confidence);
  ck_assert_int_eq(json_array_size(json_object_get(model, "top")), res.top_count);
  for (size_t k = 0; k < res.top_count; k++)
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(model, "top"), k), "intent")),
                     res.top[k].intent);
  ck_assert_int_eq(json_array_size(json_object_get(model, "tokens")), res.token_count);
  json_array_foreach(json_object_get(model, "tokens"), i, r) {
    json_int_t start = json_integer_value(json_object_get(r, "start"));
    json_int_t end = json_integer_value(json_object_get(r, "end"));
    ck_assert(start >= 0 && start < end && end <= (json_int_t)strlen(text));
    ck_assert_int_eq(start, (json_int_t)res.tokens[i].start);
  }
  vd_triage_scratch_free(scratch);
  json_decref(t);
  fixture_done(&f);
}
END_TEST

START_TEST(every_triage_trace_replays_identically_without_an_llm_job) {
  fixture f;
  fixture_init(&f);
  size_t n;
  json_t *traces = all_kinds(&f, &n);
  vd_replayer *r = vd_replayer_new(f.data);
  size_t i;
  json_t *t;
  json_array_foreach(traces, i, t) {
    vd_error err = {0};
    json_t *again = vd_replayer_decide(r, t, &err);
    ck_assert_msg(again != NULL, "%s", err.message);
    assert_valid(&f, again);
    json_t *a = vd_trace_decision_view(t), *b = vd_trace_decision_view(again);
    size_t total = 0;
    json_t *diff = vd_trace_diff(a, b, 5, &total);
    ck_assert_msg(total == 0, "trace %zu: %zu differences, first %s", i, total,
                  json_string_value(json_object_get(json_array_get(diff, 0), "path")));
    json_decref(diff);
    /* the requested task is compared; no job was submitted */
    const json_t *esc = json_object_get(again, "escalation");
    if (outcome_of(t, "escalate")) { /* (an itinerary the text cannot fill is an extract) */
      ck_assert_str_eq(
          json_string_value(json_object_get(esc, "task")),
          json_string_value(json_object_get(json_object_get(t, "escalation"), "task")));
      ck_assert(json_is_null(json_object_get(esc, "job_id")));
    } else {
      ck_assert(json_is_null(esc));
    }
    json_decref(a);
    json_decref(b);
    json_decref(again);
  }
  /* the unstable card text: masking the stored text again would change it, replay does not */
  t = json_array_get(traces, sizeof model_texts / sizeof model_texts[0] + 2);
  const char *stored = json_string_value(json_object_get(json_object_get(t, "request"), "text"));
  vd_buf again_masked = {0};
  ck_assert_uint_eq(vd_pan_mask(stored, strlen(stored), &again_masked), 1);
  vd_buf_free(&again_masked);
  /* a different outcome, job id or amendment: only the outcome is a difference */
  json_t *edited = json_deep_copy(json_array_get(traces, 0));
  json_object_set_new(json_object_get(record_of(edited), "outcome"), "route",
                      json_string("somewhere_else"));
  json_t *esc = json_object_get(edited, "escalation");
  if (json_is_object(esc)) json_object_set_new(esc, "job_id", json_string("another-run"));
  json_object_set_new(edited, "amendments", json_pack("[{s:s}]", "type", "llm_escalation"));
  vd_error err = {0};
  json_t *again = vd_replayer_decide(r, edited, &err);
  ck_assert_ptr_nonnull(again);
  json_t *a = vd_trace_decision_view(edited), *b = vd_trace_decision_view(again);
  size_t total = 0;
  json_t *diff = vd_trace_diff(a, b, 5, &total);
  ck_assert_uint_eq(total, 1);
  ck_assert_str_eq(json_string_value(json_object_get(json_array_get(diff, 0), "path")),
                   "candidates[0].outcome.route");
  json_decref(diff);
  json_decref(a);
  json_decref(b);
  json_decref(again);
  json_decref(edited);
  /* a gazetteer version the store does not hold is refused by name */
  edited = json_deep_copy(json_array_get(traces, 0));
  json_object_set_new(
      edited, "gazetteer",
      json_pack("{s:s}", "version",
                "0000000000000000000000000000000000000000000000000000000000000000"));
  ck_assert_ptr_null(vd_replayer_decide(r, edited, &err));
  ck_assert_ptr_nonnull(strstr(err.message, "gazetteer version 0000"));
  json_decref(edited);
  vd_replayer_free(r);
  json_decref(traces);
  fixture_done(&f);
}
END_TEST

static char *render(const json_t *trace, const vd_ruleset *rs, vd_explain_format format) {
  vd_buf b = {0};
  vd_error err = {0};
  ck_assert_msg(vd_explain_render(trace, rs, format, &b, &err), "%s", err.message);
  return vd_buf_take(&b);
}

/* The token with the largest |contribution| (what the bar chart shows first). */
static const char *strongest_token(const json_t *model) {
  const char *best = NULL;
  double size = -1;
  size_t i;
  json_t *tok;
  json_array_foreach(json_object_get(model, "tokens"), i, tok) {
    double v = json_number_value(json_object_get(tok, "contribution"));
    if ((v < 0 ? -v : v) > size) {
      size = v < 0 ? -v : v;
      best = json_string_value(json_object_get(tok, "token"));
    }
  }
  return best;
}

START_TEST(a_triage_explanation_reads_for_a_compliance_reader) {
  fixture f;
  fixture_init(&f);
  const vd_ruleset *rs = vd_deployment_ruleset(f.d);
  /* scored by the model */
  json_t *t = served(&f, f.d, model_texts[0], 0, NULL, "job-1", NULL);
  const json_t *model = json_object_get(record_of(t), "model");
  ck_assert(json_is_object(model));
  char *text = render(t, rs, VD_EXPLAIN_TEXT);
  char want[512];
  snprintf(want, sizeof want, "It recognised the request as \"%s\" with %.1f%% confidence.",
           json_string_value(json_object_get(model, "intent")),
           100 * json_real_value(json_object_get(model, "confidence")));
  ck_assert_msg(strstr(text, want), "%s\n---\n%s", want, text);
  ck_assert_ptr_nonnull(strstr(text, "Request:  \"my luggage never showed up after my flight\""));
  snprintf(want, sizeof want, "  Route:       %s", outcome_of(t, "route"));
  ck_assert_msg(strstr(text, want), "%s", text);
  ck_assert_ptr_nonnull(strstr(text, "Most likely intents: 1. "));
  ck_assert_ptr_nonnull(strstr(text, "The words that drove it"));
  snprintf(want, sizeof want, "    %-26s", strongest_token(model));
  ck_assert_msg(strstr(text, want), "no bar for %s:\n%s", strongest_token(model), text);
  ck_assert_ptr_nonnull(strstr(text, "looked at context.text = my luggage never showed up"));
  ck_assert_ptr_nonnull(strstr(text, "looked at score.intent = "));
  ck_assert_ptr_nonnull(strstr(text, f.gazetteer_version));
  ck_assert_ptr_nonnull(strstr(text, vd_triage_version(vd_deployment_triage(f.d))));
  free(text);
  json_decref(t);
  /* settled by a rule, with the rule's description */
  t = served(&f, f.d, "I want to open a chargeback for this order", 1, NULL, NULL, NULL);
  text = render(t, rs, VD_EXPLAIN_TEXT);
  ck_assert_msg(strstr(text, "(set by rule fraud-phrase-route)"), "%s", text);
  ck_assert_ptr_nonnull(strstr(text, "the rules alone, before the model"));
  ck_assert_ptr_nonnull(strstr(text, "The model was not consulted: rule fraud-phrase-route"));
  ck_assert_ptr_nonnull(strstr(text, "- fraud-phrase-route: APPLIED"));
  ck_assert_ptr_nonnull(strstr(text, "Escalation:  none"));
  free(text);
  json_decref(t);
  /* two route rules apply: the first one's route stands, the other says so */
  t = served(&f, f.d, "please plan my trip, or I open a chargeback", 4, NULL, NULL, "x");
  text = render(t, rs, VD_EXPLAIN_TEXT);
  ck_assert_msg(strstr(text,
                       "- test-trip-route: applied, but rule fraud-phrase-route had already "
                       "set the route (the first wins)"),
                "%s", text);
  ck_assert_ptr_nonnull(strstr(text, "Route:       payments (set by rule fraud-phrase-route)"));
  free(text);
  json_decref(t);
  /* no model: a classify escalation, then the LLM's answer stored as an amendment */
  t = served(&f, f.fallback, "my luggage never showed up", 2, NULL,
             "0193a0f0-0000-7000-8000-000000000001", NULL);
  text = render(t, rs, VD_EXPLAIN_TEXT);
  ck_assert_msg(strstr(text,
                       "an LLM \"classify\" job, asked for because the model was not "
                       "available; handed to the LLM layer as job "
                       "0193a0f0-0000-7000-8000-000000000001"),
                "%s", text);
  ck_assert_ptr_nonnull(strstr(text, "LLM answer:  no answer stored on the decision yet"));
  ck_assert_ptr_nonnull(strstr(text, "The model was not available"));
  free(text);
  json_object_set_new(
      t, "amendments",
      json_pack("[{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}]", "type", "llm_escalation", "task",
                "classify", "job_id", "j", "state", "succeeded", "handled_by", "llm", "final_route",
                "baggage_support", "final_intent", "lost_luggage", "amended_at",
                "2026-12-03T14:00:05.000000Z"));
  text = render(t, rs, VD_EXPLAIN_TEXT);
  ck_assert_msg(strstr(text,
                       "LLM answer:  on 2026-12-03 at 14:00:05 UTC the \"classify\" job "
                       "was answered by the LLM: intent lost_luggage, route baggage_support (this "
                       "replaces the provisional route above)"),
                "%s", text);
  free(text);
  /* HTML: the same, self-contained, escaped */
  char *html = render(t, rs, VD_EXPLAIN_HTML);
  ck_assert_ptr_nonnull(strstr(html, "<!DOCTYPE html>"));
  ck_assert_ptr_nonnull(strstr(html, "where a customer's request goes"));
  ck_assert_ptr_nonnull(strstr(html, "<blockquote class=\"request\">my luggage never showed up"));
  ck_assert_ptr_nonnull(strstr(html, "<b>on 2026-12-03 at 14:00:05 UTC the &quot;classify&quot;"));
  ck_assert_ptr_null(strstr(html, "<script"));
  ck_assert_ptr_null(strstr(html, "src="));
  free(html);
  json_decref(t);
  t = served(&f, f.d, "<b>my luggage</b> & my flight", 3, NULL, NULL, "rejected: no");
  html = render(t, rs, VD_EXPLAIN_HTML);
  ck_assert_ptr_nonnull(strstr(html, "&lt;b&gt;my luggage&lt;/b&gt; &amp; my flight"));
  ck_assert_ptr_null(strstr(html, "<b>my luggage"));
  if (json_is_object(json_object_get(record_of(t), "model"))) {
    ck_assert_ptr_nonnull(strstr(html, "<svg"));
    ck_assert_ptr_nonnull(strstr(html, "Most likely intents"));
  }
  free(html);
  json_decref(t);
  fixture_done(&f);
}
END_TEST

/* The text form escapes what a client wrote: no forged lines, no live terminal escapes. */
START_TEST(the_text_form_escapes_client_text) {
  fixture f;
  fixture_init(&f);
  const vd_ruleset *rs = vd_deployment_ruleset(f.d);
  json_t *t = served(&f, f.d,
                     "my luggage\n  Channel:  phone\nOUTCOME\n  Route: payments "
                     "\x1b[31mred\xe2\x80\xa8next\xe2\x80\xaereversed",
                     5, NULL, NULL, NULL);
  json_object_set_new(json_object_get(json_object_get(t, "request"), "subject"), "id",
                      json_string("c-1\r\nOUTCOME\n  Route:       payments\x7f"));
  char *text = render(t, rs, VD_EXPLAIN_TEXT);
  ck_assert_msg(!strstr(text, "\n  Channel:  phone") && !strstr(text, "\n  Route: payments") &&
                    !strstr(text, "\n  Route:       payments"),
                "%s", text);
  ck_assert_msg(!strchr(text, '\x1b') && !strchr(text, '\r') && !strchr(text, '\x7f') &&
                    !strstr(text, "\xe2\x80\xa8") && !strstr(text, "\xe2\x80\xae"),
                "%s", text);
  ck_assert_msg(strstr(text,
                       "Request:  \"my luggage\\n  Channel:  phone\\nOUTCOME\\n  Route: "
                       "payments \\u001b[31mred\\u2028next\\u202ereversed\""),
                "%s", text);
  ck_assert_msg(strstr(text, "Customer: c-1\\r\\nOUTCOME\\n  Route:       payments\\u007f\n"), "%s",
                text);
  /* the values the rules read are the same escaped text */
  ck_assert_msg(strstr(text, "looked at context.text = my luggage\\n  Channel:"), "%s", text);
  const char *first = strstr(text, "\nOUTCOME\n");
  ck_assert_ptr_nonnull(first);
  ck_assert_ptr_null(strstr(first + 1, "\nOUTCOME\n"));
  free(text);
  json_decref(t);
  fixture_done(&f);
}
END_TEST

int main(void) {
  Suite *s = suite_create("triage_explain");
  TCase *tc = tcase_create("triage");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, real_triage_traces_validate_and_a_broken_one_does_not);
  tcase_add_test(tc, the_stored_text_is_the_text_the_rules_and_the_model_read);
  tcase_add_test(tc, every_triage_trace_replays_identically_without_an_llm_job);
  tcase_add_test(tc, a_triage_explanation_reads_for_a_compliance_reader);
  tcase_add_test(tc, the_text_form_escapes_client_text);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
