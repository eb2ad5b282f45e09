/* vd_bench: what the benchmark programs share — their command line (--rows N, or ROWS as the
 * one positional, next to each program's own options) and percentiles of measured durations.
 * Compiled into every bench/bench_*.c program. Nothing here allocates. */
#ifndef VD_BENCH_H
#define VD_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "vd_args.h"

/* Parses argv against `options`, which must declare "rows". Returns -1 when the program should
 * go on, with *rows = --rows, else the positional, else default_rows (0 also means the default);
 * otherwise the exit code: 0 after printing the usage for --help, 2 after printing the usage
 * and the mistake to stderr. */
int vd_bench_parse(int argc, char **argv, const char *usage, vd_option *options, size_t n_options,
                   size_t default_rows, size_t *rows);

/* Sorts durations (nanoseconds) ascending, in place. */
void vd_bench_sort(uint64_t *ns, size_t n);

/* The p-th percentile (0-100, nearest rank) of n ≥ 1 sorted durations, in microseconds. */
double vd_bench_percentile_us(const uint64_t *sorted_ns, size_t n, double p);

#endif
