/* bench_extract: the rules extractor's accuracy per field and per slice on a golden file, and its
 * speed.
 *
 *   bench_extract [--golden FILE] [--gazetteer FILE] [--json] [--failures] [--repeat N]
 *
 * Defaults: ../shared/data/extraction/golden.jsonl and examples/triage/gazetteer.tsv. Prints the
 * Markdown tables (or the JSON report with --json); --repeat N times N passes over the file and
 * prints the mean microseconds per request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vd_extract_rules.h"
#include "vd_time.h"

static int usage(FILE *out, int code) {
  fprintf(out,
          "usage: bench_extract [--golden FILE] [--gazetteer FILE] [--json] [--failures] "
          "[--repeat N]\n");
  return code;
}

int main(int argc, char **argv) {
  const char *golden = VERDICT_SHARED_DIR "/data/extraction/golden.jsonl";
  const char *gazetteer = VERDICT_SOURCE_DIR "/examples/triage/gazetteer.tsv";
  bool json = false, failures = false;
  long repeat = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0) return usage(stdout, 0);
    if (strcmp(argv[i], "--json") == 0)
      json = true;
    else if (strcmp(argv[i], "--failures") == 0)
      failures = true;
    else if (strcmp(argv[i], "--golden") == 0 && i + 1 < argc)
      golden = argv[++i];
    else if (strcmp(argv[i], "--gazetteer") == 0 && i + 1 < argc)
      gazetteer = argv[++i];
    else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) {
      char *end = NULL;
      repeat = strtol(argv[++i], &end, 10);
      if (!end || *end || repeat < 1) {
        fprintf(stderr, "bench_extract: --repeat needs a positive integer, got \"%s\"\n", argv[i]);
        return 2;
      }
    } else {
      fprintf(stderr, "bench_extract: unknown or incomplete option \"%s\"\n", argv[i]);
      return usage(stderr, 2);
    }
  }
  vd_error err = {0};
  char msg[1024];
  vd_gazetteer *g = vd_gazetteer_load(gazetteer, &err);
  if (!g) {
    vd_error_format(&err, msg, sizeof msg);
    fprintf(stderr, "bench_extract: %s\n", msg);
    return 1;
  }
  vd_extract_eval *e = vd_extract_eval_golden(g, golden, &err);
  if (!e) {
    vd_error_format(&err, msg, sizeof msg);
    fprintf(stderr, "bench_extract: %s\n", msg);
    vd_gazetteer_free(g);
    return 1;
  }
  if (json) {
    json_t *report = vd_extract_eval_json(e);
    json_dumpf(report, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
    fputc('\n', stdout);
    json_decref(report);
  } else {
    vd_extract_eval_print(e, stdout, failures);
  }
  vd_extract_eval_free(e);
  if (repeat > 0) {
    uint64_t t0 = vd_monotonic_ns();
    for (long r = 0; r < repeat; r++) {
      vd_extract_eval *again = vd_extract_eval_golden(g, golden, &err);
      vd_extract_eval_free(again);
    }
    double total_ms = (double)(vd_monotonic_ns() - t0) / 1e6;
    printf("\n%ld passes over %s in %.1f ms (file reading and JSON parsing included)\n", repeat,
           golden, total_ms);
  }
  vd_gazetteer_free(g);
  return 0;
}
