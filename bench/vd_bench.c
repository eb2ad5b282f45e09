#include "vd_bench.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

int vd_bench_parse(int argc, char **argv, const char *usage, vd_option *options, size_t n_options,
                   size_t default_rows, size_t *rows) {
  const char *positionals[1];
  size_t npos = 0;
  bool help = false;
  vd_error err = {0};
  if (!vd_args_parse(argc, argv, 1, options, n_options, positionals, 1, &npos, &help, &err) ||
      help) {
    fprintf(help ? stdout : stderr, "usage: %s\n%s\n", usage, help ? "" : err.message);
    return help ? 0 : 2;
  }
  const char *rows_arg = vd_args_get(options, n_options, "rows");
  if (!rows_arg && npos) rows_arg = positionals[0];
  *rows = rows_arg ? (size_t)strtoul(rows_arg, NULL, 10) : 0;
  if (*rows == 0) *rows = default_rows;
  return -1;
}

static int compare_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

void vd_bench_sort(uint64_t *ns, size_t n) { qsort(ns, n, sizeof *ns, compare_u64); }

double vd_bench_percentile_us(const uint64_t *sorted_ns, size_t n, double p) {
  size_t index = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
  return (double)sorted_ns[index] / 1e3;
}
