/* bench_llm: what an LLM job costs the caller that submits it.
 *
 *   bench_llm [--dir DIR] [--jobs N]
 *
 * Submits N itinerary jobs with no provider key (so every job runs its template fallback, the
 * cheapest complete path: store, queue, worker, template, store, done) and reports the submit
 * latency the caller saw (p50/p99/max; each submit stores the job durably before returning) and
 * how long the worker took to settle all of them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vd_args.h"
#include "vd_llm.h"
#include "vd_time.h"

static int compare(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  vd_option options[] = {
      {.name = "dir", .takes_value = true, .help = "data folder (default /tmp/bench-llm)"},
      {.name = "jobs", .takes_value = true, .help = "jobs to submit (default 2000)"},
  };
  bool help = false;
  size_t npos = 0;
  vd_error err;
  if (!vd_args_parse(argc, argv, 1, options, 2, NULL, 0, &npos, &help, &err) || help) {
    fprintf(help ? stdout : stderr, "usage: bench_llm [--dir DIR] [--jobs N]\n");
    return help ? 0 : 2;
  }
  const char *dir = vd_args_get(options, 2, "dir");
  const char *jobs_arg = vd_args_get(options, 2, "jobs");
  size_t jobs = jobs_arg ? strtoul(jobs_arg, NULL, 10) : 2000;
  if (jobs == 0) jobs = 1;
  vd_llm_config cfg;
  vd_llm_config_defaults(&cfg);
  snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", dir ? dir : "/tmp/bench-llm");
  snprintf(cfg.prompts_dir, sizeof cfg.prompts_dir, "%s/examples/prompts", VERDICT_SOURCE_DIR);
  snprintf(cfg.catalogue_path, sizeof cfg.catalogue_path, "%s/examples/itineraries/catalogue.json",
           VERDICT_SOURCE_DIR);
  snprintf(cfg.gazetteer_path, sizeof cfg.gazetteer_path, "%s/examples/triage/gazetteer.tsv",
           VERDICT_SOURCE_DIR);
  for (size_t p = 0; p < cfg.provider_count; p++)
    snprintf(cfg.providers[p].api_key_env, sizeof cfg.providers[p].api_key_env,
             "BENCH_LLM_NO_SUCH_KEY");
  cfg.queue_capacity = jobs + 1;
  vd_llm *llm = vd_llm_open(&cfg, &err);
  if (!llm) {
    fprintf(stderr, "bench_llm: %s\n", err.message);
    return 1;
  }
  uint64_t *lat = calloc(jobs, sizeof *lat);
  char(*ids)[VD_LLM_JOB_ID_SIZE] = calloc(jobs, sizeof *ids);
  json_t *input = json_pack("{s:s,s:s,s:s,s:i,s:[s,s]}", "destination", "Kyoto, Japan",
                            "start_date", "2027-03-12", "end_date", "2027-03-15", "travelers", 2,
                            "interests", "temples", "food");
  uint64_t t0 = vd_monotonic_ns();
  for (size_t i = 0; i < jobs; i++) {
    uint64_t a = vd_monotonic_ns();
    vd_llm_submit_status st = vd_llm_submit(llm, VD_LLM_TASK_ITINERARY, input, NULL, ids[i], &err);
    lat[i] = vd_monotonic_ns() - a;
    if (st != VD_LLM_SUBMITTED) {
      fprintf(stderr, "bench_llm: submit %zu: %s\n", i, err.message);
      free(lat);
      free(ids);
      json_decref(input);
      vd_llm_close(llm);
      return 1;
    }
  }
  uint64_t submitted = vd_monotonic_ns();
  for (size_t i = 0; i < jobs; i++) vd_llm_wait(llm, ids[i], 60000);
  uint64_t settled = vd_monotonic_ns();
  vd_llm_stats stats;
  vd_llm_get_stats(llm, &stats);
  qsort(lat, jobs, sizeof *lat, compare);
  size_t p50 = jobs / 2, p99 = jobs * 99 / 100;
  printf("bench_llm: %zu itinerary jobs (template fallback, no provider key)\n", jobs);
  printf("  submit latency: p50 %.1f us, p99 %.1f us, max %.1f us (%.0f submits/s)\n",
         (double)lat[p50] / 1e3, (double)lat[p99] / 1e3, (double)lat[jobs - 1] / 1e3,
         (double)jobs / ((double)(submitted - t0) / 1e9));
  printf("  all settled %.1f ms after the first submit (%.0f jobs/s); fallback %llu\n",
         (double)(settled - t0) / 1e6, (double)jobs / ((double)(settled - t0) / 1e9),
         (unsigned long long)stats.fallback);
  json_decref(input);
  free(lat);
  free(ids);
  vd_llm_close(llm);
  return 0;
}
