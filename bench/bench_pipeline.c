/* The decision pipeline alone (no HTTP, no decision log): examples/promotions over real Hillstrom
 * rows, every row against every candidate of the deployment, with exact contributions and the
 * full trace, written as text as `verdict serve` asks for it (text_only). Prints p50/p99/p99.9 per
 * decision and the cost of freeing it (the RESULT keys serialise_*: the trace used to be a tree
 * serialised after the decision; the text is now made by decide itself), and one
 * machine-readable `RESULT key=value ...` line (bench/run reads it).
 *   bench_pipeline [--rows N] [--deployment DIR] [--cpu] [ROWS]  (default 10000 rows, the example;
 *   --cpu: the thread's CPU time per decision instead of the wall clock's)
 * With a triage deployment (--deployment examples/triage) it decides CLINC150 validation texts
 * through vd_triage_decide instead. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vd_args.h"
#include "vd_bench.h"
#include "vd_buf.h"
#include "vd_deployment.h"
#include "vd_json_write.h"
#include "vd_pipeline.h"
#include "vd_time.h"
#include "vd_triage_pipeline.h"

/* The calling thread's CPU time (--cpu). */
static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One Hillstrom CSV line → request (quoted history_segment handled). */
static json_t *request_of(char *line, size_t row) {
  char *f[12];
  size_t n = 0;
  char *p = line;
  while (n < 12 && p) {
    if (*p == '"') {
      f[n++] = ++p;
      p = strchr(p, '"');
      if (!p) break;
      *p++ = '\0';
      p = *p == ',' ? p + 1 : NULL;
    } else {
      f[n++] = p;
      p = strchr(p, ',');
      if (p) *p++ = '\0';
    }
  }
  if (n < 8) return NULL;
  char id[32];
  snprintf(id, sizeof id, "row-%zu", row);
  return json_pack("{s:{s:s, s:i, s:s, s:f, s:b, s:b, s:s, s:b, s:s, s:b, s:i, s:s}}", "subject",
                   "id", id, "recency", (int)strtol(f[0], NULL, 10), "history_segment", f[1],
                   "history", strtod(f[2], NULL), "mens", f[3][0] == '1', "womens", f[4][0] == '1',
                   "zip_code", f[5], "newbie", f[6][0] == '1', "channel", f[7], "marketing_opt_out",
                   0, "emails_last_30d", (int)(row % 5), "country", "US");
}

/* --deployment examples/triage: vd_triage_decide over the CLINC150 validation texts (the text
 * masked, rules, the model with token contributions, the trace), the same figures. */
static int bench_triage_deployment(const vd_deployment *d, size_t rows) {
  vd_error err = {0};
  size_t size = 0;
  char *data = vd_read_file(VERDICT_SHARED_DIR "/data/clinc150/val.jsonl", 64u << 20, &size, &err);
  if (!data) {
    fprintf(stderr, "SKIP: %s\n", err.message);
    return 0;
  }
  json_t **requests = calloc(rows, sizeof(json_t *));
  uint64_t *decide = calloc(rows, sizeof(uint64_t)), *dump = calloc(rows, sizeof(uint64_t));
  if (!requests || !decide || !dump) {
    free(requests);
    free(decide);
    free(dump);
    return 1;
  }
  size_t texts = 0;
  for (char *line = strtok(data, "\n"); line && texts < rows; line = strtok(NULL, "\n")) {
    json_t *row = json_loads(line, 0, NULL);
    if (json_is_string(json_object_get(row, "text")))
      requests[texts++] = json_pack("{s:O, s:s, s:{s:s}}", "text", json_object_get(row, "text"),
                                    "channel", "web", "subject", "id", "bench");
    json_decref(row);
  }
  free(data);
  size_t n = 0, escalated = 0, trace_bytes = 0;
  while (n < rows && texts) { /* cycle over the texts up to `rows` decisions */
    vd_triage_input in = {.request = requests[n % texts],
                          .decision_id = "01a23c2a-7289-7441-81f8-c38f843ea62d"};
    vd_triage_decision out = {0};
    uint64_t t0 = vd_monotonic_ns();
    if (vd_triage_decide(d, &in, &out, NULL, &err) != VD_PIPELINE_OK) {
      fprintf(stderr, "text %zu: %s\n", n, err.message);
      for (size_t i = 0; i < texts; i++) json_decref(requests[i]);
      free(requests);
      free(decide);
      free(dump);
      return 1;
    }
    uint64_t t1 = vd_monotonic_ns();
    char *text = vd_json_dumps_compact(out.trace, NULL);
    uint64_t t2 = vd_monotonic_ns();
    decide[n] = t1 - t0;
    dump[n] = t2 - t1;
    trace_bytes += text ? strlen(text) : 0;
    escalated += out.escalate != NULL;
    free(text);
    vd_triage_decision_clear(&out);
    n++;
  }
  vd_bench_sort(decide, n);
  vd_bench_sort(dump, n);
  printf("triage pipeline over %zu decisions (%zu CLINC150 validation texts, %.1f %% escalated):\n",
         n, texts < rows ? texts : rows, 100.0 * (double)escalated / (double)n);
  printf(
      "  decide (mask + rules + model + contributions + trace): p50 %.1f us, p99 %.1f us, "
      "p99.9 %.1f us\n",
      vd_bench_percentile_us(decide, n, 50), vd_bench_percentile_us(decide, n, 99),
      vd_bench_percentile_us(decide, n, 99.9));
  printf("  serialise the trace: p50 %.1f us, p99 %.1f us; %.0f bytes on average\n",
         vd_bench_percentile_us(dump, n, 50), vd_bench_percentile_us(dump, n, 99),
         (double)trace_bytes / (double)n);
  printf(
      "RESULT kind=triage decisions=%zu decide_p50_us=%.2f decide_p99_us=%.2f "
      "decide_p999_us=%.2f serialise_p99_us=%.2f\n",
      n, vd_bench_percentile_us(decide, n, 50), vd_bench_percentile_us(decide, n, 99),
      vd_bench_percentile_us(decide, n, 99.9), vd_bench_percentile_us(dump, n, 99));
  for (size_t i = 0; i < texts; i++) json_decref(requests[i]);
  free(requests);
  free(decide);
  free(dump);
  return 0;
}

int main(int argc, char **argv) {
  vd_option options[] = {
      {"rows", true, NULL, "Hillstrom rows to decide (default 10000)"},
      {"deployment", true, NULL, "deployment folder (default examples/promotions)"},
      {"cpu", false, NULL,
       "time each promotion decision on the thread's CPU clock: leaves out the time other "
       "processes held the core (a loaded machine's preemptions)"},
  };
  const size_t n_options = sizeof options / sizeof options[0];
  size_t rows;
  int rc = vd_bench_parse(argc, argv, "bench_pipeline [--rows N] [--deployment DIR] [--cpu]",
                          options, n_options, 10000, &rows);
  if (rc >= 0) return rc;
  uint64_t (*clock_ns)(void) =
      vd_args_get(options, n_options, "cpu") ? thread_cpu_ns : vd_monotonic_ns;
  const char *dir = vd_args_get(options, n_options, "deployment");
  vd_diags diags = {0};
  vd_deployment *d =
      vd_deployment_load(dir ? dir : VERDICT_SOURCE_DIR "/examples/promotions", NULL, &diags);
  if (!d) {
    for (size_t i = 0; i < diags.count; i++) fprintf(stderr, "%s\n", diags.items[i].message);
    return 1;
  }
  if (strcmp(vd_deployment_kind(d), "triage") == 0) {
    int rc = bench_triage_deployment(d, rows);
    vd_deployment_release(d);
    return rc;
  }
  FILE *csv = fopen(VERDICT_SHARED_DIR "/data/hillstrom/hillstrom.csv", "r");
  if (!csv) {
    fprintf(stderr, "SKIP: the shared Hillstrom file is absent\n");
    return 0;
  }
  json_t **requests = calloc(rows, sizeof(json_t *));
  if (!requests) return 1;
  char line[512];
  size_t n = 0;
  if (!fgets(line, sizeof line, csv)) { /* the header */
    fclose(csv);
    free(requests);
    return 1;
  }
  while (n < rows && fgets(line, sizeof line, csv)) {
    line[strcspn(line, "\r\n")] = '\0';
    requests[n] = request_of(line, n);
    if (requests[n]) n++;
  }
  fclose(csv);
  uint64_t *decide = n ? calloc(n, sizeof(uint64_t)) : NULL;
  uint64_t *dump = n ? calloc(n, sizeof(uint64_t)) : NULL;
  uint64_t *total = n ? calloc(n, sizeof(uint64_t)) : NULL;
  size_t trace_bytes = 0;
  if (!decide || !dump || !total) {
    free(decide);
    free(dump);
    free(total);
    free(requests);
    return 1;
  }
  size_t offers = 0;
  for (size_t i = 0; i < n; i++) {
    /* text_only: what `verdict serve` asks for — the trace and the response as text */
    vd_pipeline_input in = {.request = requests[i],
                            .decision_id = "01a23c2a-7289-7441-81f8-c38f843ea62d",
                            .text_only = true};
    vd_decision out = {0};
    vd_error err = {0};
    uint64_t t0 = clock_ns();
    if (vd_pipeline_decide(d, &in, &out, NULL, &err) != VD_PIPELINE_OK) {
      fprintf(stderr, "row %zu: %s\n", i, err.message);
      free(decide);
      free(dump);
      free(total);
      free(requests);
      return 1;
    }
    uint64_t t1 = clock_ns();
    /* the text must be what the shortest-reals writer makes of it as a tree (outside the timing) */
    json_t *tree = json_loadb(out.trace_text, out.trace_len, 0, NULL);
    char *reference = vd_json_dumps_shortest(tree, NULL);
    json_decref(tree);
    bool same = reference && strcmp(out.trace_text, reference) == 0;
    free(reference);
    if (!same) {
      fprintf(stderr, "row %zu: the trace text does not read back to itself\n", i);
      vd_decision_clear(&out);
      free(decide);
      free(dump);
      free(total);
      free(requests);
      return 1;
    }
    trace_bytes += out.trace_len;
    offers += strstr(out.trace_text, "\"offer\"") != NULL;
    uint64_t t2 = clock_ns();
    vd_decision_clear(&out);
    uint64_t t3 = clock_ns();
    decide[i] = t1 - t0;
    dump[i] = t3 - t2;
    total[i] = t1 - t0 + t3 - t2;
  }
  vd_bench_sort(decide, n);
  vd_bench_sort(dump, n);
  vd_bench_sort(total, n);
  size_t candidates = vd_deployment_candidate_count(d);
  printf("pipeline over %zu Hillstrom rows x %zu candidates (%zu with an offer):\n", n, candidates,
         offers);
  printf(
      "  decide (rules + model + contributions + trace and response as text): p50 %.1f us, p99 "
      "%.1f us, p99.9 %.1f us\n",
      vd_bench_percentile_us(decide, n, 50), vd_bench_percentile_us(decide, n, 99),
      vd_bench_percentile_us(decide, n, 99.9));
  printf("  free the decision (serialise_* in RESULT):       p50 %.1f us, p99 %.1f us\n",
         vd_bench_percentile_us(dump, n, 50), vd_bench_percentile_us(dump, n, 99));
  printf("  trace size: %.0f bytes on average\n", (double)trace_bytes / (double)n);
  printf(
      "RESULT rows=%zu candidates=%zu decide_p50_us=%.2f decide_p99_us=%.2f decide_p999_us=%.2f "
      "serialise_p50_us=%.2f serialise_p99_us=%.2f total_p50_us=%.2f total_p99_us=%.2f "
      "total_p999_us=%.2f trace_bytes=%.0f\n",
      n, candidates, vd_bench_percentile_us(decide, n, 50), vd_bench_percentile_us(decide, n, 99),
      vd_bench_percentile_us(decide, n, 99.9), vd_bench_percentile_us(dump, n, 50),
      vd_bench_percentile_us(dump, n, 99), vd_bench_percentile_us(total, n, 50),
      vd_bench_percentile_us(total, n, 99), vd_bench_percentile_us(total, n, 99.9),
      (double)trace_bytes / (double)n);
  for (size_t i = 0; i < n; i++) json_decref(requests[i]);
  free(requests);
  free(decide);
  free(dump);
  free(total);
  vd_deployment_release(d);
  return 0;
}
