/* Rule files: one test per kind of mistake a person makes (exact file:line:col and message),
 * how rules combine, evaluation errors, the trace JSON, the canonical version, threads. */
#include <pthread.h>
#include <string.h>

#include "vd_json_write.h"
#include "vd_ruleset.h"
#include "vd_test.h"

/* A small self-contained schema (inline) so each test reads as one file. */
#define HEAD                                                                                      \
  "ruleset: t\n"                                                                                  \
  "schema: { schema: s, fields: { subject.x: int, subject.flag: { type: bool, default: false }, " \
  "subject.maybe: int, candidate.id: string } }\n"                                                \
  "default_score: 0.5\n"                                                                          \
  "rules:\n"

static char joined[16384];

static const char *join(const vd_diags *diags) {
  joined[0] = '\0';
  for (size_t i = 0; i < diags->count; i++) {
    char line[1024];
    vd_error_format(&diags->items[i], line, sizeof line);
    strncat(joined, line, sizeof joined - strlen(joined) - 2);
    if (i + 1 < diags->count) strcat(joined, "\n");
  }
  return joined;
}

static const char *load_errors(const char *text) {
  vd_diags diags = {0};
  vd_ruleset *rs = vd_ruleset_load_string(text, strlen(text), "r.yaml", NULL, 0, &diags);
  ck_assert_msg(rs == NULL, "unexpectedly loaded:\n%s", text);
  join(&diags);
  vd_diags_free(&diags);
  return joined;
}

static vd_ruleset *load_ok(const char *text) {
  vd_diags diags = {0};
  vd_ruleset *rs = vd_ruleset_load_string(text, strlen(text), "r.yaml", NULL, 0, &diags);
  ck_assert_msg(rs != NULL, "did not load: %s", join(&diags));
  vd_diags_free(&diags);
  return rs;
}

/* ---- one test per kind of mistake ---------------------------------------------------------- */

START_TEST(typo_in_a_field) {
  ck_assert_str_eq(load_errors(HEAD "  - id: a\n    stage: before_model\n    when: subject.flga\n"
                                    "    then: { deny: no }\n"),
                   "r.yaml:7:11: rule a: unknown field subject.flga (did you mean subject.flag?)");
}
END_TEST

START_TEST(typo_inside_a_block_expression_points_into_the_block) {
  ck_assert_str_eq(load_errors(HEAD "  - id: a\n    stage: before_model\n    when: |\n"
                                    "      subject.x > 1 &&\n        subject.flga\n"
                                    "    then: { deny: no }\n"),
                   "r.yaml:9:9: rule a: unknown field subject.flga (did you mean subject.flag?)");
}
END_TEST

START_TEST(wrong_type_in_a_comparison) {
  ck_assert_str_eq(load_errors(HEAD "  - id: a\n    stage: before_model\n"
                                    "    when: subject.x == \"six\"\n    then: { deny: x }\n"),
                   "r.yaml:7:21: rule a: no operator '==' for (int, string)");
}
END_TEST

START_TEST(condition_that_is_not_bool) {
  ck_assert_str_eq(load_errors(HEAD "  - id: a\n    stage: before_model\n    when: subject.x + 1\n"
                                    "    then: { deny: x }\n"),
                   "r.yaml:7:11: rule a: `when` must be a condition (bool), but this expression "
                   "gives int");
}
END_TEST

START_TEST(bad_yaml_indentation) {
  ck_assert_str_eq(load_errors(HEAD "  - id: a\n    stage: before_model\n    when: subject.flag\n"
                                    "   then: { deny: x }\n"),
                   "r.yaml:8:4: did not find expected '-' indicator while parsing a block "
                   "collection");
}
END_TEST

START_TEST(unknown_action) {
  ck_assert_str_eq(load_errors(HEAD "  - id: a\n    stage: before_model\n    when: subject.flag\n"
                                    "    then: { deni: x }\n"),
                   "r.yaml:8:13: rule a: unknown action \"deni\" (did you mean \"deny\"?; actions "
                   "are deny, allow, adjust, route, priority, escalate)");
}
END_TEST

START_TEST(two_actions_in_one_rule) {
  ck_assert_str_eq(load_errors(HEAD "  - id: a\n    stage: before_model\n    when: subject.flag\n"
                                    "    then: { deny: x, adjust: 1 }\n"),
                   "r.yaml:8:11: rule a: `then` has 2 actions (deny, adjust); a rule takes exactly "
                   "one action — split it into one rule per action");
}
END_TEST

START_TEST(duplicate_rule_id) {
  ck_assert_str_eq(
      load_errors(HEAD "  - id: a\n    stage: before_model\n    when: subject.flag\n"
                       "    then: { deny: x }\n"
                       "  - id: a\n    stage: after_model\n    when: true\n"
                       "    then: { adjust: 1 }\n"),
      "r.yaml:9:9: duplicate rule id \"a\" (first defined at line 5); rule ids must be "
      "unique");
}
END_TEST

START_TEST(misspelt_key_and_stage) {
  ck_assert_str_eq(load_errors(HEAD "  - id: a\n    stage: before_mdoel\n    whne: subject.flag\n"
                                    "    then: { adjust: \"x\" }\n"),
                   "r.yaml:5:5: rule a has no `when` (its condition)\n"
                   "r.yaml:6:12: rule a: unknown stage before_mdoel (did you mean before_model?) "
                   "(before_model or after_model)\n"
                   "r.yaml:7:5: unknown key \"whne\" in rule a (did you mean \"when\"?; expected "
                   "one of: id, description, stage, priority, when, then)\n"
                   "r.yaml:8:21: rule a: adjust takes a number to add to the score (e.g. adjust: "
                   "0.02), got a string");
}
END_TEST

/* An adjustment whose size could make a score non-finite is refused where it is written (1e308
 * twice passed every check, then each matching request was a 500); the bound itself loads. */
START_TEST(an_adjustment_beyond_the_bound_is_refused) {
  ck_assert_str_eq(
      load_errors(HEAD "  - id: a\n    stage: before_model\n    when: true\n"
                       "    then: { adjust: 1e308 }\n"
                       "  - id: b\n    stage: after_model\n    when: true\n"
                       "    then: { adjust: -1000000.5 }\n"),
      "r.yaml:8:21: rule a: adjust 1e+308 is beyond ±1000000: an adjustment shifts a score (an "
      "uplift is within ±1), and adjustments this large could add up past the range of a double, "
      "failing every decision they match\n"
      "r.yaml:12:21: rule b: adjust -1000000.5 is beyond ±1000000: an adjustment shifts a score "
      "(an "
      "uplift is within ±1), and adjustments this large could add up past the range of a double, "
      "failing every decision they match");
  vd_ruleset *rs = load_ok(HEAD
                           "  - id: a\n    stage: before_model\n    when: true\n"
                           "    then: { adjust: -1000000 }\n");
  vd_ruleset_free(rs);
}
END_TEST

START_TEST(the_two_priorities_are_kept_apart) {
  ck_assert_str_eq(load_errors(HEAD "  - id: a\n    stage: before_model\n    priority: urgent\n"
                                    "    when: subject.flag\n    then: { route: q }\n"),
                   "r.yaml:7:15: rule a: the rule-level `priority` is the EVALUATION ORDER and "
                   "takes a whole number (higher runs first); to set a triage priority, write it "
                   "as the action: then: { priority: urgent }");
  ck_assert_str_eq(load_errors(HEAD "  - id: a\n    stage: before_model\n"
                                    "    when: subject.flag\n    then: { priority: 10 }\n"),
                   "r.yaml:8:23: rule a: `then: { priority: ... }` is the triage priority ACTION "
                   "and takes a level name such as urgent; to order evaluation, write `priority: "
                   "10` at the rule's level, beside `when`");
}
END_TEST

START_TEST(model_scores_only_after_the_model) {
  ck_assert_str_eq(load_errors(HEAD "  - id: a\n    stage: before_model\n"
                                    "    when: subject.flag || score.uplift < 0.1\n"
                                    "    then: { deny: x }\n"),
                   "r.yaml:7:27: rule a: score.uplift is the model's output, so only after_model "
                   "rules can read it (this rule has stage: before_model)");
}
END_TEST

START_TEST(yaml_surprises_are_refused) {
  /* `no` is a string, not false: a deny reason "no" is fine, a condition `no` is a field name. */
  ck_assert_str_eq(load_errors(HEAD "  - id: a\n    stage: before_model\n    when: no\n"
                                    "    then: { deny: x }\n"),
                   "r.yaml:7:11: rule a: unknown field no (schema s has no such field; rules read "
                   "subject.*, candidate.*, context.* and, after the model, score.*)");
  const char *dup = load_errors(HEAD
                                "  - id: a\n    id: b\n    stage: before_model\n"
                                "    when: true\n    then: { deny: x }\n");
  ck_assert_msg(strncmp(dup, "r.yaml:6:5: ", 12) == 0 && strstr(dup, "duplicate"), "%s", dup);
}
END_TEST

START_TEST(file_level_mistakes) {
  ck_assert_str_eq(load_errors("ruleset: t\nschema: missing-schema.yaml\ndefault_score: 0\n"
                               "rules: []\nrule: []\n"),
                   "r.yaml:2:9: cannot read the schema file missing-schema.yaml\n"
                   "r.yaml:5:1: unknown key \"rule\" in the rule file (did you mean \"rules\"?; "
                   "expected one of: ruleset, description, schema, default_score, rules, tests)");
  ck_assert_str_eq(load_errors("ruleset: t\nschema: { schema: s, fields: { subject.x: itn } }\n"
                               "default_score: low\nrules: []\n"),
                   "r.yaml:2:43: unknown type \"itn\" (did you mean \"int\"?) (expected bool, int, "
                   "double, string, enum, timestamp or list<T>)\n"
                   "r.yaml:3:16: default_score must be a number, got a string");
}
END_TEST

START_TEST(a_literal_that_no_enum_value_equals) {
  ck_assert_str_eq(
      load_errors("ruleset: t\n"
                  "schema: { schema: s, fields: { subject.zip: { type: enum, values: [Urban, "
                  "Surburban, Rural] } } }\n"
                  "default_score: 0\n"
                  "rules:\n"
                  "  - id: a\n    stage: before_model\n"
                  "    when: subject.zip == 'Suburban' || subject.zip in ['Rural', \"Town\"]\n"
                  "    then: { deny: x }\n"),
      "r.yaml:7:26: rule a: \"Suburban\" is not one of the values of subject.zip, so it can never "
      "be equal (did you mean \"Surburban\"?) (the values are Urban, Surburban, Rural)\n"
      "r.yaml:7:65: rule a: \"Town\" is not one of the values of subject.zip, so it can never be "
      "equal (the values are Urban, Surburban, Rural)");
}
END_TEST

START_TEST(a_rule_that_is_not_a_mapping) {
  /* (found by the fuzzer: a non-mapping rule followed by another rule crashed the id check) */
  ck_assert_str_eq(
      load_errors(HEAD "  - just text\n  - { id: a, stage: before_model, when: 'true', "
                       "then: { deny: x } }\n"),
      "r.yaml:5:5: rule #1 must be a mapping (id, stage, when, then), got a string");
}
END_TEST

START_TEST(tests_are_checked_and_a_failing_test_refuses_the_file) {
  ck_assert_str_eq(
      load_errors(HEAD "  - id: a\n    stage: before_model\n    when: subject.flag\n"
                       "    then: { deny: x }\n"
                       "tests:\n"
                       "  - name: flagged\n    input: { subject: { x: 1, flag: true } }\n"
                       "    expect: { eligible: true, fired: [b], decided_by: aa }\n"),
      "r.yaml:12:39: test \"flagged\": no rule has id \"b\" (did you mean \"a\"?)\n"
      "r.yaml:12:55: test \"flagged\": no rule has id \"aa\" (did you mean \"a\"?)");
  ck_assert_str_eq(
      load_errors(HEAD "  - id: a\n    stage: before_model\n    when: subject.flag\n"
                       "    then: { deny: x }\n"
                       "tests:\n"
                       "  - name: flagged\n    input: { subject: { x: 1, flag: true } }\n"
                       "    expect: { eligible: true, fired: [] }\n"),
      "r.yaml:10:5: test \"flagged\" failed: eligible: expected true, got false; "
      "fired: expected [], got [a]");
  ck_assert_str_eq(load_errors(HEAD "  - id: a\n    stage: before_model\n    when: subject.flag\n"
                                    "    then: { deny: x }\n"
                                    "tests:\n"
                                    "  - name: bad input\n    input: { subject: { x: one } }\n"
                                    "    expect: { eligible: true }\n"),
                   "r.yaml:10:5: test \"bad input\" failed: the input does not match the schema: "
                   "subject.x: expected int, got \"one\"");
}
END_TEST

START_TEST(the_example_ruleset_loads_and_passes_its_tests) {
  vd_diags diags = {0};
  vd_ruleset *rs = vd_ruleset_load(VERDICT_SOURCE_DIR "/examples/promotions/rules.yaml", &diags);
  ck_assert_msg(rs != NULL, "%s", join(&diags));
  ck_assert_str_eq(vd_ruleset_name(rs), "promotions");
  ck_assert_int_eq(vd_ruleset_rule_count(rs), 7);
  ck_assert_int_ge(vd_ruleset_test_count(rs), 7);
  for (size_t i = 0; i < vd_ruleset_test_count(rs); i++) {
    vd_ruleset_test_result r;
    vd_ruleset_run_test(rs, i, &r);
    ck_assert_msg(r.passed, "%s: %s", r.name, r.difference);
  }
  /* evaluation order: the stage's rules by rule-level priority, highest first */
  ck_assert_str_eq(vd_ruleset_rule_id(rs, 0), "opted-out");
  ck_assert_str_eq(vd_ruleset_rule_id(rs, 1), "frequency-cap");
  ck_assert_str_eq(vd_ruleset_rule_id(rs, 6), "low-uplift");
  ck_assert(vd_ruleset_stage_reads_candidate(rs, VD_STAGE_BEFORE_MODEL));
  ck_assert(!vd_ruleset_stage_reads_candidate(rs, VD_STAGE_AFTER_MODEL));
  /* the stored canonical form loads back (with its tests) to the same version, for replay */
  const char *canonical = vd_ruleset_canonical(rs);
  vd_ruleset *back =
      vd_ruleset_load_string(canonical, strlen(canonical), "ruleset.json", NULL, 0, &diags);
  ck_assert_msg(back != NULL, "%s", join(&diags));
  ck_assert_str_eq(vd_ruleset_version(back), vd_ruleset_version(rs));
  ck_assert_str_eq(vd_schema_version(vd_ruleset_schema(back)),
                   vd_schema_version(vd_ruleset_schema(rs)));
  vd_ruleset_free(back);
  vd_ruleset_free(rs);
  vd_diags_free(&diags);
}
END_TEST

/* ---- combination semantics ----------------------------------------------------------------- */

typedef struct run {
  vd_rules_frame *frame;
  vd_rules_outcome *outcome;
  json_t *request;
} run;

/* Evaluates before_model, then after_model with `uplift` unless settled (uplift < 0: no model). */
static run evaluate(const vd_ruleset *rs, const char *request_json, double uplift) {
  run r;
  json_error_t jerr;
  json_t *raw = json_loads(request_json, 0, &jerr);
  ck_assert_msg(raw != NULL, "%s", jerr.text);
  vd_diags diags = {0};
  r.request = vd_schema_validate_at(vd_ruleset_schema(rs), raw, 0, &diags);
  ck_assert_msg(r.request != NULL, "%s", join(&diags));
  json_decref(raw);
  r.frame = vd_rules_frame_new(rs);
  r.outcome = vd_rules_outcome_new(rs);
  vd_error e;
  ck_assert(vd_rules_frame_bind_request(r.frame, r.request, &e));
  ck_assert(vd_rules_frame_bind_candidate(r.frame, json_object_get(r.request, "candidate"), &e));
  ck_assert_msg(vd_ruleset_eval_stage(rs, r.frame, VD_STAGE_BEFORE_MODEL, r.outcome, &e), "%s",
                e.message);
  if (uplift >= 0 && !vd_rules_outcome_settled(r.outcome)) {
    vd_rules_scores s = {.uplift = uplift, .value = uplift};
    vd_rules_frame_bind_scores(r.frame, &s);
    ck_assert_msg(vd_ruleset_eval_stage(rs, r.frame, VD_STAGE_AFTER_MODEL, r.outcome, &e), "%s",
                  e.message);
  }
  vd_diags_free(&diags);
  return r;
}

static void run_free(run *r) {
  vd_rules_outcome_free(r->outcome);
  vd_rules_frame_free(r->frame);
  json_decref(r->request);
}

static const char *fired(const vd_rules_outcome *o) {
  const char *ids[32];
  size_t n = vd_rules_outcome_fired(o, ids, 32);
  joined[0] = '\0';
  for (size_t i = 0; i < n && i < 32; i++) {
    if (i) strcat(joined, ",");
    strcat(joined, ids[i]);
  }
  return joined;
}

START_TEST(evaluation_order_is_priority_then_file_order) {
  vd_ruleset *rs =
      load_ok(HEAD
              "  - { id: low, stage: before_model, when: 'true', then: { deny: L } }\n"
              "  - { id: high, stage: before_model, priority: 5, when: 'true',\n"
              "      then: { deny: H } }\n"
              "  - { id: also-low, stage: before_model, when: 'true', then: { deny: A } }\n");
  run r = evaluate(rs, "{\"subject\": {\"x\": 1}, \"candidate\": {\"id\": \"c\"}}", -1);
  ck_assert_str_eq(vd_rules_outcome_decided_by(r.outcome), "high");
  ck_assert_str_eq(vd_rules_outcome_reason(r.outcome), "H");
  /* a deny settles at once: the other rules are not evaluated */
  ck_assert_int_eq(vd_rules_outcome_evaluated(r.outcome), 1);
  run_free(&r);
  vd_ruleset_free(rs);
}
END_TEST

START_TEST(deny_beats_an_earlier_allow) {
  vd_ruleset *rs = load_ok(HEAD
                           "  - { id: vip, stage: before_model, priority: 9, when: subject.x > 0,\n"
                           "      then: { allow: VIP } }\n"
                           "  - { id: vip2, stage: before_model, priority: 8, when: 'true',\n"
                           "      then: { allow: second } }\n"
                           "  - { id: block, stage: before_model, when: subject.flag,\n"
                           "      then: { deny: blocked } }\n");
  run r =
      evaluate(rs, "{\"subject\": {\"x\": 1, \"flag\": true}, \"candidate\": {\"id\": \"c\"}}", -1);
  ck_assert_int_eq(vd_rules_outcome_decision(r.outcome), VD_DECISION_DENY);
  ck_assert_str_eq(vd_rules_outcome_decided_by(r.outcome), "block");
  ck_assert_str_eq(fired(r.outcome), "vip,vip2,block");
  run_free(&r);
  /* without the deny, the FIRST allow decides; the second is recorded but changes nothing */
  r = evaluate(rs, "{\"subject\": {\"x\": 1}, \"candidate\": {\"id\": \"c\"}}", 0.5);
  ck_assert_int_eq(vd_rules_outcome_decision(r.outcome), VD_DECISION_ALLOW);
  ck_assert_str_eq(vd_rules_outcome_decided_by(r.outcome), "vip");
  ck_assert_str_eq(vd_rules_outcome_reason(r.outcome), "VIP");
  ck_assert(vd_rules_outcome_settled(r.outcome));
  ck_assert_int_eq(vd_rules_outcome_evaluated(r.outcome), 3); /* after_model skipped */
  run_free(&r);
  vd_ruleset_free(rs);
}
END_TEST

START_TEST(adjustments_add_up_over_both_stages) {
  vd_ruleset *rs =
      load_ok(HEAD
              "  - { id: a, stage: before_model, when: 'true', then: { adjust: 0.25 } }\n"
              "  - { id: b, stage: before_model, when: subject.x > 5,\n"
              "      then: { adjust: -0.5 } }\n"
              "  - { id: c, stage: after_model, when: score.uplift > 0.1,\n"
              "      then: { adjust: 1 } }\n");
  run r = evaluate(rs, "{\"subject\": {\"x\": 9}, \"candidate\": {\"id\": \"c\"}}", 0.2);
  ck_assert_double_eq_tol(vd_rules_outcome_adjust(r.outcome), 0.75, 1e-12);
  ck_assert_int_eq(vd_rules_outcome_decision(r.outcome), VD_DECISION_OPEN);
  ck_assert_str_eq(fired(r.outcome), "a,b,c");
  run_free(&r);
  r = evaluate(rs, "{\"subject\": {\"x\": 1}, \"candidate\": {\"id\": \"c\"}}", 0.05);
  ck_assert_double_eq_tol(vd_rules_outcome_adjust(r.outcome), 0.25, 1e-12);
  run_free(&r);
  vd_ruleset_free(rs);
}
END_TEST

START_TEST(route_priority_escalate_first_match_wins) {
  vd_ruleset *rs =
      load_ok(HEAD
              "  - { id: p1, stage: before_model, when: 'true', then: { priority: high } }\n"
              "  - { id: p2, stage: before_model, when: 'true', then: { priority: low } }\n"
              "  - { id: e1, stage: before_model, when: 'true', then: { escalate: summarise } }\n"
              "  - { id: r1, stage: before_model, when: subject.flag, then: { route: fraud } }\n"
              "  - { id: r2, stage: before_model, when: 'true', then: { route: general } }\n");
  run r =
      evaluate(rs, "{\"subject\": {\"x\": 1, \"flag\": true}, \"candidate\": {\"id\": \"c\"}}", -1);
  const char *by = NULL;
  ck_assert_str_eq(vd_rules_outcome_value(r.outcome, VD_ACTION_PRIORITY, &by), "high");
  ck_assert_str_eq(by, "p1");
  ck_assert_str_eq(vd_rules_outcome_value(r.outcome, VD_ACTION_ESCALATE, NULL), "summarise");
  ck_assert_str_eq(vd_rules_outcome_value(r.outcome, VD_ACTION_ROUTE, &by), "fraud");
  ck_assert_str_eq(by, "r1");
  ck_assert(vd_rules_outcome_settled(r.outcome)); /* a route settles */
  ck_assert_int_eq(vd_rules_outcome_decision(r.outcome), VD_DECISION_OPEN);
  run_free(&r);
  vd_ruleset_free(rs);
}
END_TEST

START_TEST(evaluation_errors_fail_closed) {
  /* subject.maybe is optional without default: reading it when absent is an error. */
  vd_ruleset *rs = load_ok(HEAD
                           "  - { id: boost, stage: before_model, when: subject.maybe > 1,\n"
                           "      then: { adjust: 1 } }\n"
                           "  - { id: guard, stage: before_model, when: subject.maybe < 0,\n"
                           "      then: { deny: guarded } }\n");
  run r = evaluate(rs, "{\"subject\": {\"x\": 1}, \"candidate\": {\"id\": \"c\"}}", -1);
  ck_assert_int_eq(vd_rules_outcome_errors(r.outcome), 2);
  ck_assert_double_eq(vd_rules_outcome_adjust(r.outcome), 0); /* errored adjust: not matched */
  ck_assert_int_eq(vd_rules_outcome_decision(r.outcome), VD_DECISION_DENY); /* errored deny */
  ck_assert_str_eq(vd_rules_outcome_decided_by(r.outcome), "guard");
  ck_assert_str_eq(fired(r.outcome), ""); /* neither counts as matched in the trace */
  json_t *j = vd_rules_outcome_to_json(r.outcome);
  json_t *guard = json_array_get(json_object_get(j, "rules"), 1);
  ck_assert_str_eq(json_string_value(json_object_get(guard, "id")), "guard");
  ck_assert(json_is_false(json_object_get(guard, "matched")));
  ck_assert_ptr_nonnull(json_string_value(json_object_get(guard, "error")));
  json_decref(j);
  run_free(&r);
  /* with the field present, both rules evaluate normally */
  r = evaluate(rs, "{\"subject\": {\"x\": 1, \"maybe\": 5}, \"candidate\": {\"id\": \"c\"}}", -1);
  ck_assert_int_eq(vd_rules_outcome_errors(r.outcome), 0);
  ck_assert_int_eq(vd_rules_outcome_decision(r.outcome), VD_DECISION_OPEN);
  ck_assert_double_eq(vd_rules_outcome_adjust(r.outcome), 1);
  run_free(&r);
  vd_ruleset_free(rs);
}
END_TEST

START_TEST(trace_json_lists_rules_and_values_read) {
  vd_ruleset *rs = load_ok(
      HEAD
      "  - { id: a, stage: before_model, when: subject.x > 3 && candidate.id == 'c',\n"
      "      then: { adjust: 0.5 } }\n"
      "  - { id: b, stage: after_model, when: score.uplift < 0.01, then: { deny: low } }\n");
  run r = evaluate(rs, "{\"subject\": {\"x\": 7}, \"candidate\": {\"id\": \"c\"}}", 0.001);
  json_t *j = vd_rules_outcome_to_json(r.outcome);
  char *text = json_dumps(j, JSON_COMPACT);
  ck_assert_str_eq(text,
                   "{\"decision\":\"deny\",\"decided_by\":\"b\",\"reason\":\"low\",\"adjust\":0.5,"
                   "\"rules\":[{\"id\":\"a\",\"stage\":\"before_model\",\"action\":\"adjust\","
                   "\"matched\":true,\"read\":{\"subject.x\":7,\"candidate.id\":\"c\"}},"
                   "{\"id\":\"b\",\"stage\":\"after_model\",\"action\":\"deny\",\"matched\":true,"
                   "\"read\":{\"score.uplift\":0.001}}]}");
  /* the same document as text through the emitter (the decision's hot path), no tree */
  vd_buf written = {0};
  vd_json_emit e;
  vd_json_emit_text(&e, &written);
  vd_rules_outcome_write(r.outcome, &e);
  ck_assert(vd_json_emit_done(&e));
  ck_assert_str_eq(written.data, text);
  vd_buf_free(&written);
  free(text);
  json_decref(j);
  run_free(&r);
  vd_ruleset_free(rs);
}
END_TEST

START_TEST(misuse_is_an_error_not_a_crash) {
  vd_ruleset *rs = load_ok(HEAD
                           "  - { id: b, stage: after_model, when: score.uplift < 0.01,\n"
                           "      then: { deny: low } }\n");
  vd_rules_frame *f = vd_rules_frame_new(rs);
  vd_rules_outcome *o = vd_rules_outcome_new(rs);
  json_t *req = json_pack("{s{si}s{ss}}", "subject", "x", 1, "candidate", "id", "c");
  vd_error e;
  ck_assert(vd_rules_frame_bind_request(f, req, &e));
  ck_assert(vd_rules_frame_bind_candidate(f, json_object_get(req, "candidate"), &e));
  ck_assert(!vd_ruleset_eval_stage(rs, f, VD_STAGE_AFTER_MODEL, o, &e));
  ck_assert_str_eq(e.message,
                   "after_model rules need the model's scores (vd_rules_frame_bind_scores)");
  ck_assert(vd_ruleset_eval_stage(rs, f, VD_STAGE_BEFORE_MODEL, o, &e));
  ck_assert(!vd_ruleset_eval_stage(rs, f, VD_STAGE_BEFORE_MODEL, o, &e));
  json_decref(req);
  vd_rules_outcome_free(o);
  vd_rules_frame_free(f);
  vd_ruleset_free(rs);
}
END_TEST

START_TEST(one_frame_many_candidates_and_requests) {
  /* Rules that read only subject/context are evaluated once per request and reused for the
   * other candidates; rebinding the request starts afresh. */
  vd_ruleset *rs =
      load_ok(HEAD
              "  - { id: big, stage: before_model, when: subject.x > 3, then: { adjust: 1 } }\n"
              "  - { id: broken, stage: before_model, when: subject.maybe > 0,\n"
              "      then: { adjust: 5 } }\n"
              "  - { id: only-c2, stage: before_model, when: candidate.id == 'c2',\n"
              "      then: { deny: no c2 } }\n");
  json_t *r1 =
      json_pack("{s{si}s[{ss}{ss}]}", "subject", "x", 9, "candidates", "id", "c1", "id", "c2");
  json_t *r2 =
      json_pack("{s{sisi}s[{ss}]}", "subject", "x", 1, "maybe", 1, "candidates", "id", "c1");
  vd_rules_frame *f = vd_rules_frame_new(rs);
  vd_rules_outcome *o = vd_rules_outcome_new(rs);
  vd_error e;
  ck_assert(vd_rules_frame_bind_request(f, r1, &e));
  for (int c = 0; c < 2; c++) {
    const json_t *cand = json_array_get(json_object_get(r1, "candidates"), (size_t)c);
    ck_assert(vd_rules_frame_bind_candidate(f, cand, &e));
    vd_rules_outcome_reset(o);
    ck_assert(vd_ruleset_eval_stage(rs, f, VD_STAGE_BEFORE_MODEL, o, &e));
    ck_assert_double_eq(vd_rules_outcome_adjust(o), 1);
    ck_assert_int_eq(vd_rules_outcome_errors(o), 1);
    ck_assert_int_eq(vd_rules_outcome_decision(o), c == 0 ? VD_DECISION_OPEN : VD_DECISION_DENY);
    json_t *j = vd_rules_outcome_to_json(o);
    json_t *big = json_array_get(json_object_get(j, "rules"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(big, "read"), "subject.x")),
                     9);
    ck_assert_ptr_nonnull(json_object_get(json_array_get(json_object_get(j, "rules"), 1), "error"));
    json_decref(j);
  }
  ck_assert(vd_rules_frame_bind_request(f, r2, &e));
  ck_assert(
      vd_rules_frame_bind_candidate(f, json_array_get(json_object_get(r2, "candidates"), 0), &e));
  vd_rules_outcome_reset(o);
  ck_assert(vd_ruleset_eval_stage(rs, f, VD_STAGE_BEFORE_MODEL, o, &e));
  ck_assert_double_eq(vd_rules_outcome_adjust(o), 5); /* big no longer matches, broken does */
  ck_assert_int_eq(vd_rules_outcome_errors(o), 0);
  json_decref(r1);
  json_decref(r2);
  vd_rules_outcome_free(o);
  vd_rules_frame_free(f);
  vd_ruleset_free(rs);
}
END_TEST

START_TEST(has_lists_and_time_zones_in_conditions) {
  /* The file's own tests must pass for it to load: has() on an absent optional field is false
   * (no error), lists bind as CEL lists, timestamps honour a time zone. */
  vd_ruleset *rs = load_ok(
      "ruleset: t\n"
      "schema: { schema: s, fields: { subject.x: int, subject.maybe: int, subject.tags: "
      "\"list<string>\", context.now: timestamp } }\n"
      "default_score: 0\n"
      "rules:\n"
      "  - { id: guarded, stage: before_model, when: \"has(subject.maybe) && subject.maybe > 1\", "
      "then: { deny: big } }\n"
      "  - { id: tagged, stage: before_model, when: \"has(subject.tags) && 'vip' in "
      "subject.tags\", then: { adjust: 1 } }\n"
      "  - { id: late, stage: before_model, when: \"has(context.now) && "
      "context.now.getHours('America/New_York') >= 22\", then: { adjust: -1 } }\n"
      "tests:\n"
      "  - name: absent maybe is not an error\n"
      "    input: { subject: { x: 1 } }\n"
      "    expect: { eligible: true, fired: [], errors: 0 }\n"
      "  - name: present maybe\n"
      "    input: { subject: { x: 1, maybe: 5 } }\n"
      "    expect: { eligible: false, decided_by: guarded }\n"
      "  - name: vip tag\n"
      "    input: { subject: { x: 1, tags: [a, vip] } }\n"
      "    expect: { fired: [tagged], adjust: 1 }\n"
      "  - name: late in New York\n"
      "    input: { subject: { x: 1 }, context: { now: \"2026-12-04T03:30:00Z\" } }\n"
      "    expect: { fired: [late], adjust: -1 }\n");
  ck_assert_int_eq(vd_ruleset_test_count(rs), 4);
  vd_ruleset_free(rs);
}
END_TEST

/* ---- versions ------------------------------------------------------------------------------ */

START_TEST(version_is_stable_under_reformatting) {
  const char *a = HEAD
      "  - id: a\n    stage: before_model\n    when: subject.x > 3\n"
      "    then: { deny: \"too big\" }\n";
  const char *b =
      "# the same rules, reformatted\n"
      "ruleset: 't'\n"
      "default_score: 0.50\n"
      "schema:\n  schema: s\n  fields:\n    subject.x: { type: int }\n"
      "    subject.flag:\n      default: false\n      type: bool\n"
      "    subject.maybe: int\n    candidate.id: string\n"
      "rules:\n  - then:\n      deny: too big   # a comment\n    when: |\n      subject.x > 3\n"
      "    priority: 0\n    stage: before_model\n    id: a\n";
  const char *c = HEAD
      "  - id: a\n    stage: before_model\n    when: subject.x > 4\n"
      "    then: { deny: \"too big\" }\n";
  vd_ruleset *ra = load_ok(a), *rb = load_ok(b), *rc = load_ok(c);
  ck_assert_str_eq(vd_ruleset_version(ra), vd_ruleset_version(rb));
  ck_assert_str_ne(vd_ruleset_version(ra), vd_ruleset_version(rc));
  /* the canonical form is itself a loadable rule file with the same version */
  const char *canonical = vd_ruleset_canonical(ra);
  vd_ruleset *back = load_ok(canonical);
  ck_assert_str_eq(vd_ruleset_version(back), vd_ruleset_version(ra));
  vd_ruleset_free(back);
  vd_ruleset_free(ra);
  vd_ruleset_free(rb);
  vd_ruleset_free(rc);
}
END_TEST

/* ---- threads ------------------------------------------------------------------------------- */

typedef struct worker {
  const vd_ruleset *rs;
  json_t *request;
  int denied;
} worker;

static void *work(void *arg) {
  worker *w = arg;
  vd_rules_frame *f = vd_rules_frame_new(w->rs);
  vd_rules_outcome *o = vd_rules_outcome_new(w->rs);
  vd_error e;
  vd_rules_frame_bind_request(f, w->request, &e);
  for (int i = 0; i < 2000; i++) {
    vd_rules_frame_bind_candidate(f, json_object_get(w->request, "candidate"), &e);
    vd_rules_outcome_reset(o);
    vd_ruleset_eval_stage(w->rs, f, VD_STAGE_BEFORE_MODEL, o, &e);
    w->denied += vd_rules_outcome_decision(o) == VD_DECISION_DENY;
  }
  vd_rules_outcome_free(o);
  vd_rules_frame_free(f);
  return NULL;
}

START_TEST(one_ruleset_many_threads) {
  vd_ruleset *rs = load_ok(HEAD
                           "  - { id: a, stage: before_model, when: subject.x > 3,\n"
                           "      then: { deny: big } }\n");
  worker w[4];
  pthread_t t[4];
  for (int i = 0; i < 4; i++) {
    w[i] =
        (worker){rs, json_pack("{s{si}s{ss}}", "subject", "x", i * 2, "candidate", "id", "c"), 0};
    pthread_create(&t[i], NULL, work, &w[i]);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    ck_assert_int_eq(w[i].denied, i * 2 > 3 ? 2000 : 0);
    json_decref(w[i].request);
  }
  vd_ruleset_free(rs);
}
END_TEST

int main(void) {
  Suite *s = suite_create("ruleset");
  TCase *m = tcase_create("mistakes");
  tcase_add_test(m, typo_in_a_field);
  tcase_add_test(m, typo_inside_a_block_expression_points_into_the_block);
  tcase_add_test(m, wrong_type_in_a_comparison);
  tcase_add_test(m, condition_that_is_not_bool);
  tcase_add_test(m, bad_yaml_indentation);
  tcase_add_test(m, unknown_action);
  tcase_add_test(m, two_actions_in_one_rule);
  tcase_add_test(m, duplicate_rule_id);
  tcase_add_test(m, misspelt_key_and_stage);
  tcase_add_test(m, an_adjustment_beyond_the_bound_is_refused);
  tcase_add_test(m, the_two_priorities_are_kept_apart);
  tcase_add_test(m, model_scores_only_after_the_model);
  tcase_add_test(m, yaml_surprises_are_refused);
  tcase_add_test(m, file_level_mistakes);
  tcase_add_test(m, a_literal_that_no_enum_value_equals);
  tcase_add_test(m, a_rule_that_is_not_a_mapping);
  tcase_add_test(m, tests_are_checked_and_a_failing_test_refuses_the_file);
  tcase_add_test(m, the_example_ruleset_loads_and_passes_its_tests);
  suite_add_tcase(s, m);
  TCase *c = tcase_create("combination");
  tcase_add_test(c, evaluation_order_is_priority_then_file_order);
  tcase_add_test(c, deny_beats_an_earlier_allow);
  tcase_add_test(c, adjustments_add_up_over_both_stages);
  tcase_add_test(c, route_priority_escalate_first_match_wins);
  tcase_add_test(c, evaluation_errors_fail_closed);
  tcase_add_test(c, trace_json_lists_rules_and_values_read);
  tcase_add_test(c, misuse_is_an_error_not_a_crash);
  tcase_add_test(c, one_frame_many_candidates_and_requests);
  tcase_add_test(c, has_lists_and_time_zones_in_conditions);
  tcase_add_test(c, version_is_stable_under_reformatting);
  tcase_add_test(c, one_ruleset_many_threads);
  suite_add_tcase(s, c);
  return vd_test_run(s);
}
