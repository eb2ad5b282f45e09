/* bench_rules: evaluates the example promotions ruleset against 10,000 requests built from real
 * Hillstrom rows and prints p50/p99 per request.
 *
 * One request = bind the (already validated) request, then for each of its two candidates:
 * bind the candidate, evaluate before_model and, unless the rules settled it, bind model scores
 * and evaluate after_model. Validation against the schema is timed separately.
 *
 * usage: bench_rules [--rows N] [--ruleset FILE] [ROWS]   (default 10000 rows, the example
 * promotions ruleset; reads VERDICT_SHARED_DIR/data/hillstrom/hillstrom.csv). Another ruleset
 * must use the promotions schema (bench/run generates 10, 100 and 1,000-rule files) or the triage
 * one: a ruleset on the `triage` schema is fed the CLINC150 validation texts
 * (VERDICT_SHARED_DIR/data/clinc150/val.jsonl, one candidate "request", score.intent = the
 * text's labelled intent). The last line, `RESULT key=value ...`, is for bench/run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vd_args.h"
#include "vd_bench.h"
#include "vd_csv.h"
#include "vd_ruleset.h"
#include "vd_schema.h"
#include "vd_time.h"

/* A request from one CSV row; the marketing fields vary deterministically with the row so every
 * rule of the ruleset fires on some requests. */
static json_t *request_from_row(const char *const *f, size_t row) {
  static const char *const countries[] = {"US", "US", "US", "CA", "US", "DE", "US", "US"};
  char id[32];
  snprintf(id, sizeof id, "h%zu", row);
  return json_pack("{s{sssIsssfsbsbsssbsssbsIss}s[{ss}{ss}]s{ss}}", "subject", "id", id, "recency",
                   (json_int_t)strtol(f[0], NULL, 10), "history_segment", f[1], "history",
                   strtod(f[2], NULL), "mens", strcmp(f[3], "1") == 0, "womens",
                   strcmp(f[4], "1") == 0, "zip_code", f[5], "newbie", strcmp(f[6], "1") == 0,
                   "channel", f[7], "marketing_opt_out", row % 19 == 0, "emails_last_30d",
                   (json_int_t)(row % 6), "country", countries[row % 8], "candidates", "id",
                   "mens-email", "id", "womens-email", "context", "now", "2026-12-03T13:00:00Z");
}

/* Triage requests: one per CLINC150 line, as the triage pipeline maps the API body. */
static size_t triage_requests(const vd_schema *schema, size_t rows, json_t **requests,
                              const char **intents, uint64_t *validate_ns, vd_diags *diags) {
  static const char *const channels[] = {"web", "email", "chat", "phone", "app"};
  static const char *const tiers[] = {"standard", "gold", "platinum"};
  FILE *f = fopen(VERDICT_SHARED_DIR "/data/clinc150/val.jsonl", "r");
  if (!f) {
    fprintf(stderr, "bench_rules: the shared CLINC150 file is absent\n");
    exit(1);
  }
  char line[4096];
  size_t n = 0;
  while (n < rows && fgets(line, sizeof line, f)) {
    json_t *row = json_loads(line, 0, NULL);
    const char *text = json_string_value(json_object_get(row, "text"));
    if (!text) {
      json_decref(row);
      continue;
    }
    char id[32];
    snprintf(id, sizeof id, "t%zu", n);
    json_t *raw =
        json_pack("{s{ssss}s{ssss}s[{ss}]}", "context", "text", text, "channel", channels[n % 5],
                  "subject", "id", id, "tier", tiers[n % 3], "candidates", "id", "request");
    uint64_t t0 = vd_monotonic_ns();
    requests[n] = vd_schema_validate_at(schema, raw, 0, diags);
    validate_ns[n] = vd_monotonic_ns() - t0;
    json_decref(raw);
    if (!requests[n]) {
      fprintf(stderr, "bench_rules: CLINC150 line %zu does not validate: %s\n", n + 1,
              diags->count ? diags->items[0].message : "?");
      exit(1);
    }
    intents[n] = strdup(json_string_value(json_object_get(row, "intent")));
    json_decref(row);
    n++;
  }
  fclose(f);
  return n;
}

int main(int argc, char **argv) {
  vd_option options[] = {
      {"rows", true, NULL, "Hillstrom rows to evaluate (default 10000)"},
      {"ruleset", true, NULL, "rule file (default examples/promotions/rules.yaml)"},
  };
  const size_t n_options = sizeof options / sizeof options[0];
  size_t rows;
  int rc = vd_bench_parse(argc, argv, "bench_rules [--rows N] [--ruleset FILE]", options, n_options,
                          10000, &rows);
  if (rc >= 0) return rc;
  const char *ruleset_path = vd_args_get(options, n_options, "ruleset");
  if (!ruleset_path) ruleset_path = VERDICT_SOURCE_DIR "/examples/promotions/rules.yaml";
  const char *data = VERDICT_SHARED_DIR "/data/hillstrom/hillstrom.csv";
  vd_error err;
  vd_csv *csv = vd_csv_open(data, 64 * 1024 * 1024, &err);
  if (!csv) {
    fprintf(stderr, "bench_rules: %s (the shared data folder is needed)\n", err.message);
    return 1;
  }
  vd_diags diags = {0};
  vd_ruleset *rs = vd_ruleset_load(ruleset_path, &diags);
  if (!rs) {
    fprintf(stderr, "bench_rules: %s does not load: %s\n", ruleset_path,
            diags.count ? diags.items[0].message : "?");
    vd_csv_close(csv);
    return 1;
  }
  const vd_schema *schema = vd_ruleset_schema(rs);
  json_t **requests = calloc(rows, sizeof(json_t *));
  uint64_t *validate_ns = calloc(rows, sizeof *validate_ns);
  uint64_t *eval_ns = calloc(rows, sizeof *eval_ns);
  const char **intents = calloc(rows, sizeof(const char *));
  const char *const *fields;
  size_t count, n = 0;
  bool triage = strcmp(vd_schema_name(schema), "triage") == 0;
  if (triage) n = triage_requests(schema, rows, requests, intents, validate_ns, &diags);
  vd_csv_next(csv, &fields, &count, &err); /* header */
  while (!triage && n < rows && vd_csv_next(csv, &fields, &count, &err) == 1 && count >= 8) {
    json_t *raw = request_from_row(fields, n);
    uint64_t t0 = vd_monotonic_ns();
    requests[n] = vd_schema_validate_at(schema, raw, 0, &diags);
    validate_ns[n] = vd_monotonic_ns() - t0;
    json_decref(raw);
    if (!requests[n]) {
      fprintf(stderr, "bench_rules: row %zu does not validate: %s\n", n + 2,
              diags.count ? diags.items[0].message : "?");
      exit(1);
    }
    n++;
  }
  vd_csv_close(csv);
  vd_rules_frame *frame = vd_rules_frame_new(rs);
  vd_rules_outcome *outcome = vd_rules_outcome_new(rs);
  size_t denied = 0, evaluated = 0, candidates = 0;
  for (int pass = 0; pass < 2; pass++) { /* the first pass warms the caches */
    for (size_t i = 0; i < n; i++) {
      uint64_t t0 = vd_monotonic_ns();
      vd_rules_frame_bind_request(frame, requests[i], &err);
      const json_t *list = json_object_get(requests[i], "candidates");
      for (size_t c = 0; c < json_array_size(list); c++) {
        vd_rules_frame_bind_candidate(frame, json_array_get(list, c), &err);
        vd_rules_outcome_reset(outcome);
        vd_ruleset_eval_stage(rs, frame, VD_STAGE_BEFORE_MODEL, outcome, &err);
        if (!vd_rules_outcome_settled(outcome)) {
          double uplift = (double)((i * 7 + c * 3) % 40) / 1000.0; /* 0 .. 0.039 */
          vd_rules_scores scores = {.uplift = uplift, .value = uplift};
          if (triage)
            scores = (vd_rules_scores){.value = 0.9, .confidence = 0.9, .intent = intents[i]};
          vd_rules_frame_bind_scores(frame, &scores);
          vd_ruleset_eval_stage(rs, frame, VD_STAGE_AFTER_MODEL, outcome, &err);
        }
        if (pass) {
          denied += vd_rules_outcome_decision(outcome) == VD_DECISION_DENY;
          evaluated += vd_rules_outcome_evaluated(outcome);
          candidates++;
        }
      }
      eval_ns[i] = vd_monotonic_ns() - t0;
    }
  }
  vd_bench_sort(eval_ns, n);
  vd_bench_sort(validate_ns, n);
  printf(
      "bench_rules: %zu requests (Hillstrom rows), %zu candidates, %zu rules, %.2f rules "
      "evaluated per candidate, %.1f %% denied\n",
      n, candidates, vd_ruleset_rule_count(rs), (double)evaluated / (double)candidates,
      100.0 * (double)denied / (double)candidates);
  printf("rules per request (all candidates, both stages): p50 %.3f us  p99 %.3f us\n",
         vd_bench_percentile_us(eval_ns, n, 50), vd_bench_percentile_us(eval_ns, n, 99));
  printf("schema validation per request:                 p50 %.3f us  p99 %.3f us\n",
         vd_bench_percentile_us(validate_ns, n, 50), vd_bench_percentile_us(validate_ns, n, 99));
  printf(
      "RESULT rules=%zu evaluated_per_candidate=%.2f eval_p50_us=%.3f eval_p99_us=%.3f "
      "eval_p999_us=%.3f validate_p50_us=%.3f validate_p99_us=%.3f\n",
      vd_ruleset_rule_count(rs), (double)evaluated / (double)candidates,
      vd_bench_percentile_us(eval_ns, n, 50), vd_bench_percentile_us(eval_ns, n, 99),
      vd_bench_percentile_us(eval_ns, n, 99.9), vd_bench_percentile_us(validate_ns, n, 50),
      vd_bench_percentile_us(validate_ns, n, 99));
  for (size_t i = 0; i < n; i++) {
    json_decref(requests[i]);
    free((char *)intents[i]);
  }
  free(requests);
  free(intents);
  free(eval_ns);
  free(validate_ns);
  vd_rules_outcome_free(outcome);
  vd_rules_frame_free(frame);
  vd_ruleset_free(rs);
  vd_diags_free(&diags);
  return 0;
}
