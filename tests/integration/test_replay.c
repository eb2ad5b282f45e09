/* Integration runs of the real `verdict serve` — promotions, and triage with the LLM layer on
 * the fake provider — then on their data folder: every stored trace validates against
 * explain/trace.schema.json, `verdict replay --since` reproduces EVERY decision exactly (triage
 * ones without an LLM job; their job ids and LLM amendments shown, not compared), `verdict
 * explain` and GET /v1/decisions/{id}/explanation answer, and `verdict shadow` reports a rule
 * change whose effect the test counts independently from the traffic it sent.
 * (Replay reporting differences is tested in tests/engine/test_replay.c.) */
#define _GNU_SOURCE
#include <ctype.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vd_buf.h"
#include "vd_fake_provider.h"
#include "vd_itest.h"
#include "vd_json_schema.h"
#include "vd_test.h"

enum { MAX_ACTIONS = 8 };

/* Runs a command; returns its exit status and its stdout (caller frees). */
static int run(const char *cmd, char **output) {
  FILE *p = popen(cmd, "r");
  ck_assert_ptr_nonnull(p);
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  size_t got;
  while ((got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
    len += got;
    if (cap - len < 4096) buf = realloc(buf, cap *= 2);
  }
  buf[len] = '\0';
  int status = pclose(p);
  *output = buf;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The rule file of the deployment copy with one more before_model rule: deny every customer who
 * spent more than 500. */
static void write_candidate_rules(const vd_itest_server *s, char *path, size_t size) {
  char original[512];
  snprintf(original, sizeof original, "%s/rules.yaml", s->deployment);
  FILE *f = fopen(original, "r");
  ck_assert_ptr_nonnull(f);
  char *text = NULL;
  size_t n = 0;
  ck_assert(getdelim(&text, &n, '\0', f) > 0);
  fclose(f);
  char *tests = strstr(text, "\ntests:");
  ck_assert_ptr_nonnull(tests);
  snprintf(path, size, "%s/rules-candidate.yaml", s->deployment);
  FILE *out = fopen(path, "w");
  ck_assert_ptr_nonnull(out);
  fwrite(text, 1, (size_t)(tests - text), out);
  fputs(
      "\n  - id: test-high-spender-pause\n"
      "    description: Customers who spent over $500 are handled by account managers.\n"
      "    stage: before_model\n"
      "    when: subject.history > 500.0\n"
      "    then: { deny: \"Handled by an account manager\" }\n",
      out);
  fputs(tests, out);
  fclose(out);
  free(text);
}

START_TEST(every_decision_replays_identically_and_shadow_counts_are_exact) {
  char **lines = NULL;
  size_t wanted = getenv("VERDICT_UNDER_SANITIZER") ? 60 : 400;
  size_t rows = vd_itest_hillstrom_rows(wanted, &lines);
  if (rows == 0) return; /* skipped: no shared data */
  vd_itest_server s;
  ck_assert(vd_itest_prepare(&s, NULL));
  ck_assert(vd_itest_start(&s));

  /* Independent expectation: for customers with history > 500, every candidate that was not
   * denied becomes denied; other decisions do not change. */
  char keys[64][160];
  size_t counts[64] = {0}, key_count = 0, expected_changed = 0, decisions = 0;
  char first_id[64] = "";
  for (size_t i = 0; i < rows; i++) {
    char *body = vd_itest_hillstrom_request(lines[i], (int)i);
    ck_assert_ptr_nonnull(body);
    json_t *request = json_loads(body, 0, NULL);
    if (i % 5 == 0) { /* some requests ask for one result only (capped candidates) */
      json_object_set_new(request, "max_results", json_integer(1));
      free(body);
      body = json_dumps(request, JSON_COMPACT);
    }
    vd_itest_response r =
        vd_itest_call(&s, "POST", "/v1/promotions/score", "demo-score", body, strlen(body));
    ck_assert_int_eq(r.status, 200);
    decisions++;
    if (!*first_id)
      snprintf(first_id, sizeof first_id, "%s",
               json_string_value(json_object_get(r.json, "decision_id")));
    double history =
        json_number_value(json_object_get(json_object_get(request, "subject"), "history"));
    if (history > 500.0) {
      /* The trace lists every candidate; the response leaves capped ones out: both deployment
       * candidates are in the trace, so count from the stored trace below for capped ones. */
      json_t *trace_r;
      char path[128];
      snprintf(path, sizeof path, "/v1/decisions/%s",
               json_string_value(json_object_get(r.json, "decision_id")));
      vd_itest_response t = vd_itest_call(&s, "GET", path, "demo-compliance", NULL, 0);
      ck_assert_int_eq(t.status, 200);
      trace_r = t.json;
      bool changed = false;
      size_t k;
      json_t *c;
      json_array_foreach(json_object_get(trace_r, "candidates"), k, c) {
        const char *action =
            json_string_value(json_object_get(json_object_get(c, "outcome"), "action"));
        if (strcmp(action, "deny") == 0) continue;
        changed = true;
        char key[160];
        snprintf(key, sizeof key, "%s: %s -> deny",
                 json_string_value(json_object_get(c, "candidate")), action);
        size_t j = 0;
        while (j < key_count && strcmp(keys[j], key) != 0) j++;
        if (j == key_count) snprintf(keys[key_count++], sizeof keys[0], "%s", key);
        counts[j]++;
      }
      if (changed) expected_changed++;
      vd_itest_response_free(&t);
    }
    json_decref(request);
    vd_itest_response_free(&r);
    free(body);
    free(lines[i]);
  }
  free(lines);
  ck_assert_int_gt(expected_changed, 0);

  /* The explanation endpoint answers for a real decision. */
  char path[160];
  snprintf(path, sizeof path, "/v1/decisions/%s/explanation?format=text", first_id);
  vd_itest_response e = vd_itest_call(&s, "GET", path, "demo-compliance", NULL, 0);
  ck_assert_int_eq(e.status, 200);
  ck_assert_ptr_nonnull(strstr(e.content_type, "text/plain"));
  ck_assert_ptr_nonnull(strstr(e.body, "VERSIONS USED"));
  vd_itest_response_free(&e);
  snprintf(path, sizeof path, "/v1/decisions/%s/explanation?format=html", first_id);
  e = vd_itest_call(&s, "GET", path, "demo-compliance", NULL, 0);
  ck_assert_int_eq(e.status, 200);
  ck_assert_ptr_nonnull(strstr(e.body, "<svg"));
  vd_itest_response_free(&e);
  /* Every stored trace validates against the schema. */
  json_t *schema = json_load_file(VERDICT_SOURCE_DIR "/explain/trace.schema.json", 0, NULL);
  ck_assert_ptr_nonnull(schema);
  vd_itest_response all =
      vd_itest_call(&s, "GET", "/v1/decisions?limit=1000", "demo-compliance", NULL, 0);
  ck_assert_int_eq(all.status, 200);
  json_t *stored = json_object_get(all.json, "decisions");
  ck_assert_int_eq(json_array_size(stored), decisions);
  size_t index;
  json_t *trace;
  json_array_foreach(stored, index, trace) {
    vd_diags bad = {0};
    ck_assert_msg(vd_json_schema_validate(schema, trace, &bad), "trace %zu: %s: %s", index,
                  bad.count ? bad.items[0].field : "", bad.count ? bad.items[0].message : "");
  }
  vd_itest_response_free(&all);
  ck_assert_int_eq(vd_itest_stop(&s, SIGTERM), 0);
  char cmd[2048], *out = NULL;
  snprintf(cmd, sizeof cmd, "%s explain %s --format json --data-dir %s", VERDICT_EXE, first_id,
           s.data_dir);
  ck_assert_int_eq(run(cmd, &out), 0);
  json_t *one = json_loads(out, 0, NULL);
  ck_assert_ptr_nonnull(one);
  vd_diags diags = {0};
  ck_assert_msg(vd_json_schema_validate(schema, one, &diags), "%s: %s",
                diags.count ? diags.items[0].field : "", diags.count ? diags.items[0].message : "");
  json_decref(one);
  free(out);

  /* Replay every decision of the run: all identical. */
  snprintf(cmd, sizeof cmd, "%s replay --since 2000-01-01T00:00:00Z --quiet --data-dir %s",
           VERDICT_EXE, s.data_dir);
  int status = run(cmd, &out);
  char expect[128];
  snprintf(expect, sizeof expect, "replayed %zu decisions: %zu identical, 0 different, 0 could",
           decisions, decisions);
  ck_assert_msg(status == 0 && strstr(out, expect), "status %d:\n%s", status, out);
  free(out);
  snprintf(cmd, sizeof cmd, "%s replay %s --data-dir %s", VERDICT_EXE, first_id, s.data_dir);
  ck_assert_int_eq(run(cmd, &out), 0);
  ck_assert_ptr_nonnull(strstr(out, ": identical"));
  free(out);

  /* Shadow evaluation of the new rule: the counts the test expects. */
  char rules[512];
  write_candidate_rules(&s, rules, sizeof rules);
  snprintf(cmd, sizeof cmd, "%s shadow --deployment %s --rules %s --data-dir %s --json",
           VERDICT_EXE, s.deployment, rules, s.data_dir);
  status = run(cmd, &out);
  ck_assert_msg(status == 0, "%s", out);
  json_t *report = json_loads(out, 0, NULL);
  ck_assert_msg(report != NULL, "%s", out);
  ck_assert_int_eq(json_integer_value(json_object_get(report, "compared")), decisions);
  ck_assert_int_eq(json_integer_value(json_object_get(report, "changed")), expected_changed);
  json_t *transitions = json_object_get(report, "transitions");
  ck_assert_int_eq(json_array_size(transitions), key_count);
  size_t i;
  json_t *t;
  json_array_foreach(transitions, i, t) {
    char key[160];
    snprintf(key, sizeof key, "%s: %s -> %s", json_string_value(json_object_get(t, "candidate")),
             json_string_value(json_object_get(t, "before")),
             json_string_value(json_object_get(t, "after")));
    size_t j = 0;
    while (j < key_count && strcmp(keys[j], key) != 0) j++;
    ck_assert_msg(j < key_count, "unexpected transition %s", key);
    ck_assert_int_eq(json_integer_value(json_object_get(t, "count")), counts[j]);
  }
  /* The cause: the new rule, for every changed candidate. */
  size_t total = 0;
  for (size_t j = 0; j < key_count; j++) total += counts[j];
  const json_t *cause = json_array_get(json_object_get(report, "causes"), 0);
  ck_assert_str_eq(json_string_value(json_object_get(cause, "rule")),
                   "test-high-spender-pause (new) now applies");
  ck_assert_int_eq(json_integer_value(json_object_get(cause, "candidates")), total);
  /* A sample with both traces. */
  const json_t *sample = json_array_get(json_object_get(report, "samples"), 0);
  ck_assert_ptr_nonnull(json_object_get(sample, "before"));
  ck_assert_ptr_nonnull(json_object_get(sample, "after"));
  json_decref(report);
  free(out);
  /* The text report says the same. */
  snprintf(cmd, sizeof cmd, "%s shadow --deployment %s --rules %s --data-dir %s", VERDICT_EXE,
           s.deployment, rules, s.data_dir);
  ck_assert_int_eq(run(cmd, &out), 0);
  char line[128];
  snprintf(line, sizeof line, "decisions changed: %zu of %zu", expected_changed, decisions);
  ck_assert_msg(strstr(out, line), "%s", out);
  ck_assert_ptr_nonnull(strstr(out, "score distribution"));
  /* a candidate denied before the model has no score (it printed "score 0.0000") */
  ck_assert_msg(strstr(out, "-> deny (no score, decided by test-high-spender-pause)"), "%s", out);
  ck_assert_ptr_null(strstr(out, "score 0.0000"));
  free(out);

  /* One damaged row: said and counted, and the others still replay. */
  char db_path[600];
  snprintf(db_path, sizeof db_path, "%s/decisions.db", s.data_dir);
  sqlite3 *db = NULL;
  ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
  char *update =
      sqlite3_mprintf("UPDATE decisions SET trace = X'56445A00' WHERE id = %Q", first_id);
  ck_assert_int_eq(sqlite3_exec(db, update, NULL, NULL, NULL), SQLITE_OK);
  ck_assert_int_eq(sqlite3_changes(db), 1);
  sqlite3_free(update);
  sqlite3_close(db);
  snprintf(cmd, sizeof cmd, "%s replay --since 2000-01-01T00:00:00Z --quiet --data-dir %s",
           VERDICT_EXE, s.data_dir);
  status = run(cmd, &out);
  char damaged[160];
  snprintf(damaged, sizeof damaged, "%s: cannot replay: ", first_id);
  snprintf(expect, sizeof expect, "replayed %zu decisions: %zu identical, 0 different, 1 could",
           decisions, decisions - 1);
  ck_assert_msg(status == 1 && strstr(out, damaged) && strstr(out, expect), "status %d:\n%s",
                status, out);
  free(out);
  json_decref(schema);
  vd_itest_cleanup(&s);
}
END_TEST

/* ---- triage -------------------------------------------------------------------------------- */

static const char classify_answer[] =
    "{\"intent\": \"oos\", \"route\": \"general_support\", \"confidence\": 0.9, \"rationale\": "
    "\"not something we handle\"}";

/* Texts every run sends besides the CLINC150 ones: rule-settled, card numbers (one that masking
 * the stored text again would change), trips, and the refunds the candidate rule reroutes. */
static const char *const fixed_texts[] = {
    "I want to open a chargeback for this order",
    "my lawyer will be in touch about this",
    "my card 4111 1111 1111 1111 was declined at the hotel",
    "card 4111111111111111 1234 5678 9019 was charged twice", /* see test_triage_explain.c */
    "what are fun things to do in Paris from June 3 to June 6",
    "what are fun things to do on a trip",
    "book a flight to Lisbon from May 3 to May 7 for two adults",
    "how do I grow tomatoes on my balcony",
    "I want a refund for my cancelled flight",
    "where is my refund",
    "Refund please, the hotel room was awful",
    "how long does a refund take to reach my card",
    "I want a refund for this fraudulent charge", /* fraud wins: no change */
    "my luggage never showed up, I want a refund",
};

/* The candidate rule file: the triage rules plus a before_model rule sending refunds to
 * payments (after the shipped before_model rules: fraud and legal phrases still win). */
static void write_refund_rules(const vd_itest_server *s, char *path, size_t size) {
  char original[512];
  snprintf(original, sizeof original, "%s/triage/rules.yaml", s->root);
  size_t n = 0;
  char *text = vd_read_file(original, 1 << 20, &n, NULL);
  ck_assert_ptr_nonnull(text);
  char *tests = strstr(text, "\ntests:");
  ck_assert_ptr_nonnull(tests);
  snprintf(path, size, "%s/triage/rules-candidate.yaml", s->root);
  FILE *out = fopen(path, "w");
  ck_assert_ptr_nonnull(out);
  fprintf(out,
          "%.*s\n"
          "  - id: refund-phrase-route\n"
          "    description: Refund requests go to payments without the model.\n"
          "    stage: before_model\n"
          "    when: 'context.text.matches(r\"(?i)\\brefunds?\\b\")'\n"
          "    then: { route: payments }\n"
          "%s",
          (int)(tests - text), text, tests);
  fclose(out);
  free(text);
}

/* The candidate rule's condition, written again in C: "refund" or "refunds" as a word. */
static bool mentions_refund(const char *text) {
  for (const char *p = text; (p = strcasestr(p, "refund")) != NULL; p++) {
    bool start = p == text || !isalnum((unsigned char)p[-1]);
    const char *end = p + 6;
    if (*end == 's' || *end == 'S') end++;
    if (start && !isalnum((unsigned char)*end) && *end != '_') return true;
  }
  return false;
}

static const char *outcome_field(const json_t *trace, const char *field) {
  const json_t *v = json_object_get(
      json_object_get(json_array_get(json_object_get(trace, "candidates"), 0), "outcome"), field);
  return json_is_string(v) ? json_string_value(v) : "none";
}

typedef struct expected {
  char keys[64][160];
  size_t counts[64], key_count, changed, by_field[4];
} expected;

static void expect_transition(expected *x, size_t field, const char *name, const char *before,
                              const char *after) {
  if (strcmp(before, after) == 0) return;
  x->by_field[field]++;
  char key[160];
  snprintf(key, sizeof key, "%s: %s -> %s", name, before, after);
  size_t j = 0;
  while (j < x->key_count && strcmp(x->keys[j], key) != 0) j++;
  if (j == x->key_count) snprintf(x->keys[x->key_count++], sizeof x->keys[0], "%s", key);
  x->counts[j]++;
}

/* Independent expectation for one logged decision under the candidate rule: a refund text the
 * shipped before_model rules did not settle is settled by the new rule — route payments, the
 * default priority (no before_model priority rule applies when no fraud/legal phrase does),
 * handled by the rules, no escalation (no before_model rule asks for one). */
static void expect_refund_rule(expected *x, const json_t *trace) {
  const char *text = json_string_value(json_object_get(json_object_get(trace, "request"), "text"));
  if (!mentions_refund(text) || strcmp(outcome_field(trace, "handled_by"), "rules") == 0) return;
  static const char *const fields[] = {"route", "priority", "handled_by", "escalate"};
  static const char *const after[] = {"payments", "normal", "rules", "none"};
  bool changed = false;
  for (size_t f = 0; f < 4; f++) {
    changed = changed || strcmp(outcome_field(trace, fields[f]), after[f]) != 0;
    expect_transition(x, f, fields[f], outcome_field(trace, fields[f]), after[f]);
  }
  x->changed += changed;
}

static json_t *get_json(const vd_itest_server *s, const char *path) {
  vd_itest_response r = vd_itest_call(s, "GET", path, "demo-compliance", NULL, 0);
  ck_assert_msg(r.status == 200, "%s: %ld %s", path, r.status, r.body);
  json_t *j = json_incref(r.json);
  vd_itest_response_free(&r);
  return j;
}

/* Waits until GET /v1/jobs/{id} is terminal and its amendment is on the decision. */
static void wait_amended(const vd_itest_server *s, const char *job_id, const char *decision_id) {
  char path[160];
  snprintf(path, sizeof path, "/v1/decisions/%s", decision_id);
  for (int i = 0; i < 400; i++) {
    json_t *trace = get_json(s, path);
    size_t amended = json_array_size(json_object_get(trace, "amendments"));
    json_decref(trace);
    if (amended) return;
    usleep(50000);
  }
  ck_abort_msg("job %s left no amendment on %s", job_id, decision_id);
}

START_TEST(triage_decisions_replay_identically_and_shadow_counts_are_exact) {
  char val[512];
  if (!vd_test_shared_path("data/clinc150/val.jsonl", val, sizeof val)) return;
  fake_provider *fake = fake_provider_start();
  ck_assert_ptr_nonnull(fake);
  fake_provider_set_pacing(fake, 0, 64);
  fake_provider_set_answer(fake, classify_answer);
  vd_itest_server s;
  ck_assert(vd_itest_prepare_triage(&s, fake_provider_anthropic_url(fake), 1024));
  ck_assert(vd_itest_start(&s));

  size_t wanted = getenv("VERDICT_UNDER_SANITIZER") ? 40 : 200, sent = 0, step = 0;
  char ids[256][40], jobs[256][40];
  size_t escalated = 0;
  FILE *f = fopen(val, "r");
  ck_assert_ptr_nonnull(f);
  char line[4096];
  size_t fixed = sizeof fixed_texts / sizeof fixed_texts[0];
  while (sent < wanted + fixed) {
    json_t *row = NULL;
    const char *text;
    if (sent < fixed) {
      text = fixed_texts[sent];
    } else {
      if (!fgets(line, sizeof line, f)) break;
      if (step++ % 15) continue; /* every domain and oos */
      row = json_loads(line, 0, NULL);
      text = json_string_value(json_object_get(row, "text"));
    }
    json_t *body = json_pack("{s:s, s:s, s:{s:s}}", "text", text, "channel", "chat", "subject",
                             "id", sent % 3 ? "c-1" : "c-2");
    char *b = json_dumps(body, JSON_COMPACT);
    vd_itest_response r = vd_itest_call(&s, "POST", "/v1/triage", "demo-score", b, strlen(b));
    ck_assert_msg(r.status == 200, "%s: %ld %s", text, r.status, r.body);
    snprintf(ids[sent], sizeof ids[0], "%s",
             json_string_value(json_object_get(r.json, "decision_id")));
    const char *job =
        json_string_value(json_object_get(json_object_get(r.json, "escalation"), "job_id"));
    if (job) snprintf(jobs[escalated++], sizeof jobs[0], "%s", ids[sent]);
    if (job) wait_amended(&s, job, ids[sent]);
    vd_itest_response_free(&r);
    free(b);
    json_decref(body);
    json_decref(row);
    sent++;
  }
  fclose(f);
  ck_assert_uint_gt(escalated, 0);

  /* Every stored triage trace, read back from the running server, validates; expectations for
   * the shadow run come from them. */
  json_t *schema = json_load_file(VERDICT_SOURCE_DIR "/explain/trace.schema.json", 0, NULL);
  ck_assert_ptr_nonnull(schema);
  json_t *list = get_json(&s, "/v1/decisions?kind=triage&limit=1000");
  json_t *stored = json_object_get(list, "decisions");
  ck_assert_uint_eq(json_array_size(stored), sent);
  expected x = {0};
  size_t i;
  json_t *trace;
  json_array_foreach(stored, i, trace) {
    vd_diags bad = {0};
    ck_assert_msg(vd_json_schema_validate(schema, trace, &bad), "trace %zu: %s: %s", i,
                  bad.count ? bad.items[0].field : "", bad.count ? bad.items[0].message : "");
    vd_diags_free(&bad);
    expect_refund_rule(&x, trace);
  }
  json_decref(list);
  ck_assert_uint_gt(x.changed, 0);
  /* ... and one with its amendment, as GET /v1/decisions/{id} returns it */
  char path[200];
  snprintf(path, sizeof path, "/v1/decisions/%s", jobs[0]);
  json_t *amended = get_json(&s, path);
  vd_diags bad = {0};
  ck_assert_msg(vd_json_schema_validate(schema, amended, &bad), "%s: %s",
                bad.count ? bad.items[0].field : "", bad.count ? bad.items[0].message : "");
  ck_assert_uint_gt(json_array_size(json_object_get(amended, "amendments")), 0);
  json_decref(amended);
  /* The explanation of an escalated decision tells its LLM answer. */
  snprintf(path, sizeof path, "/v1/decisions/%s/explanation?format=text", jobs[0]);
  vd_itest_response e = vd_itest_call(&s, "GET", path, "demo-compliance", NULL, 0);
  ck_assert_int_eq(e.status, 200);
  ck_assert_msg(strstr(e.body, "LLM answer:  on "), "%s", e.body);
  ck_assert_ptr_nonnull(strstr(e.body, "Escalation:  an LLM \""));
  vd_itest_response_free(&e);
  snprintf(path, sizeof path, "/v1/decisions/%s/explanation?format=html", ids[2]);
  e = vd_itest_call(&s, "GET", path, "demo-compliance", NULL, 0);
  ck_assert_int_eq(e.status, 200);
  ck_assert_ptr_nonnull(strstr(e.body, "<blockquote class=\"request\">my card ****1111 was"));
  vd_itest_response_free(&e);
  ck_assert_int_eq(vd_itest_stop(&s, SIGTERM), 0);

  /* Replay every decision of the run: all identical, triage ones included. */
  char cmd[2048], *out = NULL;
  snprintf(cmd, sizeof cmd, "%s replay --since 2000-01-01T00:00:00Z --quiet --data-dir %s",
           VERDICT_EXE, s.data_dir);
  int status = run(cmd, &out);
  char expect[160];
  snprintf(expect, sizeof expect,
           "replayed %zu decisions: %zu identical, 0 different, 0 could not be replayed\n"
           "  of them triage: %zu, %zu identical",
           sent, sent, sent, sent);
  ck_assert_msg(status == 0 && strstr(out, expect), "status %d:\n%s\nwanted: %s", status, out,
                expect);
  free(out);
  /* verdict explain --format json is the stored trace with its amendments: valid too */
  snprintf(cmd, sizeof cmd, "%s explain %s --format json --data-dir %s", VERDICT_EXE, jobs[0],
           s.data_dir);
  ck_assert_int_eq(run(cmd, &out), 0);
  json_t *one = json_loads(out, 0, NULL);
  ck_assert_ptr_nonnull(one);
  ck_assert_uint_gt(json_array_size(json_object_get(one, "amendments")), 0);
  ck_assert_msg(vd_json_schema_validate(schema, one, &bad), "%s: %s",
                bad.count ? bad.items[0].field : "", bad.count ? bad.items[0].message : "");
  json_decref(one);
  free(out);
  snprintf(cmd, sizeof cmd, "%s replay %s --data-dir %s", VERDICT_EXE, jobs[0], s.data_dir);
  ck_assert_int_eq(run(cmd, &out), 0);
  ck_assert_msg(strstr(out, ": identical\n") && strstr(out, "not compared (per run)") &&
                    strstr(out, "amendment of ") && strstr(out, "carried over as stored"),
                "%s", out);
  free(out);

  /* Shadow evaluation of the refund rule: the counts the traces above predict. */
  char rules[512];
  write_refund_rules(&s, rules, sizeof rules);
  snprintf(cmd, sizeof cmd, "%s shadow --deployment %s/triage --rules %s --data-dir %s --json",
           VERDICT_EXE, s.root, rules, s.data_dir);
  status = run(cmd, &out);
  ck_assert_msg(status == 0, "%s", out);
  json_t *report = json_loads(out, 0, NULL);
  ck_assert_msg(report != NULL, "%s", out);
  ck_assert_int_eq(json_integer_value(json_object_get(report, "compared")), sent);
  ck_assert_int_eq(json_integer_value(json_object_get(report, "failed")), 0);
  ck_assert_int_eq(json_integer_value(json_object_get(report, "changed")), x.changed);
  static const char *const fields[] = {"route", "priority", "handled_by", "escalate"};
  for (size_t k = 0; k < 4; k++)
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(report, "changed_by_field"), fields[k])),
        x.by_field[k]);
  json_t *transitions = json_object_get(report, "transitions");
  ck_assert_uint_eq(json_array_size(transitions), x.key_count);
  json_t *t;
  json_array_foreach(transitions, i, t) {
    char key[160];
    snprintf(key, sizeof key, "%s: %s -> %s", json_string_value(json_object_get(t, "field")),
             json_string_value(json_object_get(t, "before")),
             json_string_value(json_object_get(t, "after")));
    size_t j = 0;
    while (j < x.key_count && strcmp(x.keys[j], key) != 0) j++;
    ck_assert_msg(j < x.key_count, "unexpected transition %s", key);
    ck_assert_int_eq(json_integer_value(json_object_get(t, "count")), x.counts[j]);
  }
  const json_t *cause = json_array_get(json_object_get(report, "causes"), 0);
  ck_assert_str_eq(json_string_value(json_object_get(cause, "rule")),
                   "refund-phrase-route (new) now applies");
  ck_assert_int_eq(json_integer_value(json_object_get(cause, "candidates")), x.changed);
  /* The rules after the model that the new route kept from being evaluated did not "stop
   * applying": they say so and name the rule that decided first. */
  size_t not_evaluated = 0;
  json_array_foreach(json_object_get(report, "causes"), i, t) {
    const char *rule = json_string_value(json_object_get(t, "rule"));
    ck_assert_msg(!strstr(rule, "no longer applies"), "%s", rule);
    not_evaluated += strcmp(rule,
                            "default-route not evaluated (decided earlier by "
                            "refund-phrase-route)") == 0;
  }
  ck_assert_uint_eq(not_evaluated, 1);
  json_decref(report);
  free(out);
  snprintf(cmd, sizeof cmd, "%s shadow --deployment %s/triage --rules %s --data-dir %s",
           VERDICT_EXE, s.root, rules, s.data_dir);
  ck_assert_int_eq(run(cmd, &out), 0);
  snprintf(expect, sizeof expect, "decisions changed: %zu of %zu", x.changed, sent);
  ck_assert_msg(strstr(out, expect) && strstr(out, "route: "), "%s", out);
  free(out);
  /* the same model as a candidate bundle changes nothing */
  snprintf(cmd, sizeof cmd,
           "%s shadow --deployment %s/triage --model %s/triage/model --data-dir %s", VERDICT_EXE,
           s.root, s.root, s.data_dir);
  ck_assert_int_eq(run(cmd, &out), 0);
  snprintf(expect, sizeof expect, "decisions changed: 0 of %zu", sent);
  ck_assert_msg(strstr(out, expect), "%s", out);
  free(out);
  json_decref(schema);
  vd_itest_cleanup(&s);
  fake_provider_stop(fake);
}
END_TEST

START_TEST(serve_refuses_masking_a_field_a_rule_reads) {
  vd_itest_server s;
  ck_assert(vd_itest_prepare(&s, "mask_fields: [subject.id, subject.country]\n"));
  char cmd[1024], *out = NULL;
  snprintf(cmd, sizeof cmd, "%s serve --config %s 2>&1", VERDICT_EXE, s.config);
  int status = run(cmd, &out);
  ck_assert_int_eq(status, 1);
  ck_assert_msg(strstr(out, "mask_fields: subject.country is read by rule region-restriction"),
                "%s", out);
  ck_assert_ptr_null(strstr(out, "subject.id is read"));
  free(out);
  vd_itest_cleanup(&s);
}
END_TEST

int main(void) {
  Suite *suite = suite_create("replay");
  TCase *tc = tcase_create("replay");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, every_decision_replays_identically_and_shadow_counts_are_exact);
  tcase_add_test(tc, triage_decisions_replay_identically_and_shadow_counts_are_exact);
  tcase_add_test(tc, serve_refuses_masking_a_field_a_rule_reads);
  suite_add_tcase(suite, tc);
  return vd_test_run(suite);
}
