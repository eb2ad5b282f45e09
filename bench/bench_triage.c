/* bench_triage: in-process latency of the triage model over the validation texts — featurise
 * alone, featurise + score (top 3), and featurise + score + token contributions (what a traced
 * request does) — p50/p99/max per request, one thread. Each is measured twice: wall time (what a
 * caller waits, including preemption on a busy machine) and the thread's CPU time (the work
 * itself, independent of other load).
 *
 * usage: bench_triage [BUNDLE_DIR] [PASSES]   (default examples/triage/model, 3 passes over
 * VERDICT_SHARED_DIR/data/clinc150/val.jsonl)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vd_buf.h"
#include "vd_text_features.h"
#include "vd_time.h"
#include "vd_triage.h"

static int compare_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void report(const char *what, uint64_t *ns, size_t n) {
  qsort(ns, n, sizeof *ns, compare_u64);
  double total = 0;
  for (size_t i = 0; i < n; i++) total += (double)ns[i];
  const size_t p50 = n / 2, p99 = (size_t)(0.99 * (double)(n - 1) + 0.5);
  printf("%-34s n=%zu  mean %.2f us  p50 %.2f us  p99 %.2f us  max %.2f us\n", what, n,
         total / (double)n / 1000.0, (double)ns[p50] / 1000.0, (double)ns[p99] / 1000.0,
         (double)ns[n - 1] / 1000.0);
}

int main(int argc, char **argv) {
  const char *bundle = argc > 1 ? argv[1] : VERDICT_SOURCE_DIR "/examples/triage/model";
  size_t passes = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 3;
  if (passes == 0) passes = 3;
  vd_error err = {0};
  size_t size;
  char *data = vd_read_file(VERDICT_SHARED_DIR "/data/clinc150/val.jsonl", 64u << 20, &size, &err);
  if (!data) {
    fprintf(stderr, "bench_triage: %s (the shared data folder is needed)\n", err.message);
    return 1;
  }
  uint64_t t0 = vd_monotonic_ns();
  vd_triage_model *m = vd_triage_load(bundle, &err);
  if (!m) {
    char buf[1024];
    vd_error_format(&err, buf, sizeof buf);
    fprintf(stderr, "bench_triage: %s\n", buf);
    free(data);
    return 1;
  }
  printf("bundle %s: %zu classes, loaded in %.1f ms\n", bundle, vd_triage_class_count(m),
         (double)(vd_monotonic_ns() - t0) / 1e6);
  size_t cap = 4096, count = 0;
  char **texts = malloc(cap * sizeof *texts);
  for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
    json_t *j = json_loads(line, 0, NULL);
    const char *t = json_string_value(json_object_get(j, "text"));
    if (t) {
      if (count == cap) texts = realloc(texts, (cap *= 2) * sizeof *texts);
      texts[count++] = strdup(t);
    }
    json_decref(j);
  }
  size_t n = count * passes;
  if (n == 0) {
    fprintf(stderr, "bench_triage: no texts in the validation file\n");
    free(texts);
    free(data);
    vd_triage_free(m);
    return 1;
  }
  uint64_t *feat = malloc(n * sizeof *feat), *score = malloc(n * sizeof *score),
           *traced = malloc(n * sizeof *traced), *cpu_score = malloc(n * sizeof *cpu_score),
           *cpu_traced = malloc(n * sizeof *cpu_traced);
  vd_triage_scratch *s = vd_triage_scratch_new(m);
  vd_text_features *tf = vd_text_features_new();
  vd_triage_result r;
  size_t escalated = 0;
  for (size_t i = 0; i < count; i++) /* warm-up: grow the scratch */
    vd_triage_score(m, s, texts[i], strlen(texts[i]), 3, true, &r, NULL);
  for (size_t p = 0, at = 0; p < passes; p++) {
    for (size_t i = 0; i < count; i++, at++) {
      size_t len = strlen(texts[i]);
      uint64_t a = vd_monotonic_ns();
      vd_text_featurise(vd_triage_featuriser(m), texts[i], len, tf, NULL);
      uint64_t b = vd_monotonic_ns();
      vd_triage_score(m, s, texts[i], len, 3, false, &r, NULL);
      uint64_t c = vd_monotonic_ns();
      vd_triage_score(m, s, texts[i], len, 3, true, &r, NULL);
      uint64_t d = vd_monotonic_ns();
      uint64_t e = thread_cpu_ns();
      vd_triage_score(m, s, texts[i], len, 3, false, &r, NULL);
      uint64_t f = thread_cpu_ns();
      vd_triage_score(m, s, texts[i], len, 3, true, &r, NULL);
      uint64_t g = thread_cpu_ns();
      cpu_score[at] = f - e;
      cpu_traced[at] = g - f;
      feat[at] = b - a;
      score[at] = c - b;
      traced[at] = d - c;
      escalated += r.escalate;
    }
  }
  printf("%zu requests (%zu texts x %zu passes), %.1f %% escalated\n", n, count, passes,
         100.0 * (double)escalated / (double)n);
  report("featurise", feat, n);
  report("featurise + score (top 3)", score, n);
  report("featurise + score + contributions", traced, n);
  report("cpu: featurise + score (top 3)", cpu_score, n);
  report("cpu: featurise + score + contribs", cpu_traced, n);
  vd_text_features_free(tf);
  vd_triage_scratch_free(s);
  vd_triage_free(m);
  for (size_t i = 0; i < count; i++) free(texts[i]);
  free(texts);
  free(feat);
  free(score);
  free(traced);
  free(cpu_score);
  free(cpu_traced);
  free(data);
  return 0;
}
