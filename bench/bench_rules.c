/* bench_rules: evaluates the example promotions ruleset against 10,000 requests built from real
 * Hillstrom rows and prints p50/p99 per request.
 *
 * One request = bind the (already validated) request, then for each of its two candidates:
 * bind the candidate, evaluate before_model and, unless the rules settled it, bind model scores
 * and evaluate after_model. Validation against the schema is timed separately.
 *
 * usage: bench_rules [ROWS]   (default 10000; reads
 * VERDICT_SHARED_DIR/data/hillstrom/hillstrom.csv)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vd_csv.h"
#include "vd_ruleset.h"
#include "vd_schema.h"
#include "vd_time.h"

static int compare_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static double percentile_us(uint64_t *ns, size_t n, double p) {
  size_t index = (size_t)(p * (double)(n - 1) + 0.5);
  return (double)ns[index] / 1000.0;
}

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

int main(int argc, char **argv) {
  size_t rows = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 10000;
  if (rows == 0) rows = 10000;
  const char *data = VERDICT_SHARED_DIR "/data/hillstrom/hillstrom.csv";
  vd_error err;
  vd_csv *csv = vd_csv_open(data, 64 * 1024 * 1024, &err);
  if (!csv) {
    fprintf(stderr, "bench_rules: %s (the shared data folder is needed)\n", err.message);
    return 1;
  }
  vd_diags diags = {0};
  vd_ruleset *rs = vd_ruleset_load(VERDICT_SOURCE_DIR "/examples/promotions/rules.yaml", &diags);
  if (!rs) {
    fprintf(stderr, "bench_rules: the example ruleset does not load\n");
    vd_csv_close(csv);
    return 1;
  }
  const vd_schema *schema = vd_ruleset_schema(rs);
  json_t **requests = calloc(rows, sizeof(json_t *));
  uint64_t *validate_ns = calloc(rows, sizeof *validate_ns);
  uint64_t *eval_ns = calloc(rows, sizeof *eval_ns);
  const char *const *fields;
  size_t count, n = 0;
  vd_csv_next(csv, &fields, &count, &err); /* header */
  while (n < rows && vd_csv_next(csv, &fields, &count, &err) == 1 && count >= 8) {
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
  qsort(eval_ns, n, sizeof *eval_ns, compare_u64);
  qsort(validate_ns, n, sizeof *validate_ns, compare_u64);
  printf(
      "bench_rules: %zu requests (Hillstrom rows), %zu candidates, %zu rules, %.2f rules "
      "evaluated per candidate, %.1f %% denied\n",
      n, candidates, vd_ruleset_rule_count(rs), (double)evaluated / (double)candidates,
      100.0 * (double)denied / (double)candidates);
  printf("rules per request (2 candidates, both stages): p50 %.3f us  p99 %.3f us\n",
         percentile_us(eval_ns, n, 0.50), percentile_us(eval_ns, n, 0.99));
  printf("schema validation per request:                 p50 %.3f us  p99 %.3f us\n",
         percentile_us(validate_ns, n, 0.50), percentile_us(validate_ns, n, 0.99));
  for (size_t i = 0; i < n; i++) json_decref(requests[i]);
  free(requests);
  free(eval_ns);
  free(validate_ns);
  vd_rules_outcome_free(outcome);
  vd_rules_frame_free(frame);
  vd_ruleset_free(rs);
  vd_diags_free(&diags);
  return 0;
}
