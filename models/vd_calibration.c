/* Temperature scaling with GSL's Brent minimiser; expected calibration error. */
#include "vd_calibration.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_min.h>
#include <math.h>
#include <stdlib.h>

void vd_softmax(const double *margins, size_t k, double temperature, double *out) {
  double max = -INFINITY;
  for (size_t c = 0; c < k; c++)
    if (margins[c] > max) max = margins[c];
  double sum = 0;
  for (size_t c = 0; c < k; c++) {
    out[c] = exp((margins[c] - max) / temperature);
    sum += out[c];
  }
  for (size_t c = 0; c < k; c++) out[c] /= sum;
}

double vd_calibration_nll(const double *margins, const int *labels, size_t n, size_t k,
                          double temperature) {
  double total = 0;
  for (size_t i = 0; i < n; i++) {
    const double *m = margins + i * k;
    double max = -INFINITY;
    for (size_t c = 0; c < k; c++)
      if (m[c] > max) max = m[c];
    double sum = 0;
    for (size_t c = 0; c < k; c++) sum += exp((m[c] - max) / temperature);
    total += log(sum) - (m[labels[i]] - max) / temperature;
  }
  return n ? total / (double)n : 0;
}

typedef struct nll_problem {
  const double *margins;
  const int *labels;
  size_t n, k;
} nll_problem;

static double nll_of_log_t(double log_t, void *p) {
  const nll_problem *q = p;
  return vd_calibration_nll(q->margins, q->labels, q->n, q->k, exp(log_t));
}

bool vd_calibration_fit_temperature(const double *margins, const int *labels, size_t n, size_t k,
                                    double *temperature, vd_error *err) {
  if (n == 0 || k < 2) return vd_error_set(err, "calibration needs rows and at least 2 classes");
  nll_problem problem = {margins, labels, n, k};
  gsl_function f = {nll_of_log_t, &problem};
  /* A coarse grid over log T finds a bracket (Brent needs f(guess) below both ends). */
  enum { GRID = 24 };
  const double lo = log(0.05), hi = log(20.0);
  double best_x = lo, best_f = INFINITY;
  int best = 0;
  for (int g = 0; g <= GRID; g++) {
    double x = lo + (hi - lo) * g / GRID, v = nll_of_log_t(x, &problem);
    if (v < best_f) best_f = v, best_x = x, best = g;
  }
  if (best == 0 || best == GRID) { /* the optimum is at a bound: take the bound */
    *temperature = exp(best_x);
    return true;
  }
  double a = lo + (hi - lo) * (best - 1) / GRID, b = lo + (hi - lo) * (best + 1) / GRID;
  gsl_error_handler_t *old = gsl_set_error_handler_off();
  gsl_min_fminimizer *m = gsl_min_fminimizer_alloc(gsl_min_fminimizer_brent);
  if (!m) {
    gsl_set_error_handler(old);
    return vd_error_set(err, "out of memory");
  }
  int status = gsl_min_fminimizer_set(m, &f, best_x, a, b);
  for (int iter = 0; status == GSL_SUCCESS && iter < 100; iter++) {
    status = gsl_min_fminimizer_iterate(m);
    if (status != GSL_SUCCESS) break;
    status = gsl_min_test_interval(gsl_min_fminimizer_x_lower(m), gsl_min_fminimizer_x_upper(m),
                                   1e-6, 0.0);
    if (status == GSL_SUCCESS) break;
    if (status == GSL_CONTINUE) status = GSL_SUCCESS;
  }
  double x = gsl_min_fminimizer_x_minimum(m);
  gsl_min_fminimizer_free(m);
  gsl_set_error_handler(old);
  if (status != GSL_SUCCESS)
    return vd_error_set(err, "temperature minimiser failed: %s", gsl_strerror(status));
  *temperature = exp(x);
  return true;
}

double vd_calibration_ece(const double *confidence, const bool *correct, size_t n, size_t bins) {
  if (n == 0 || bins == 0) return 0;
  double *conf_sum = calloc(bins, sizeof(double)), *hits = calloc(bins, sizeof(double));
  size_t *count = calloc(bins, sizeof(size_t));
  double ece = NAN;
  if (conf_sum && hits && count) {
    for (size_t i = 0; i < n; i++) {
      size_t b = (size_t)(confidence[i] * (double)bins);
      if (b >= bins) b = bins - 1;
      conf_sum[b] += confidence[i];
      hits[b] += correct[i] ? 1 : 0;
      count[b]++;
    }
    ece = 0;
    for (size_t b = 0; b < bins; b++)
      if (count[b]) ece += fabs(hits[b] - conf_sum[b]) / (double)n;
  }
  free(conf_sum);
  free(hits);
  free(count);
  return ece;
}
