#include "vd_model_eval.h"

#include <gsl/gsl_rng.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

/* Sorts indices by key (descending when `desc`), ties by index, so the order is deterministic. */
typedef struct keyed {
  double key;
  size_t index;
} keyed;

static int cmp_asc(const void *a, const void *b) {
  const keyed *x = a, *y = b;
  if (x->key < y->key) return -1;
  if (x->key > y->key) return 1;
  return (x->index > y->index) - (x->index < y->index);
}

static keyed *sorted(const double *v, size_t n, bool desc) {
  keyed *k = malloc((n ? n : 1) * sizeof *k);
  if (!k) return NULL;
  for (size_t i = 0; i < n; i++) k[i] = (keyed){desc ? -v[i] : v[i], i};
  qsort(k, n, sizeof *k, cmp_asc);
  return k;
}

double vd_eval_auc(const double *score, const unsigned char *label, size_t n) {
  keyed *k = sorted(score, n, false);
  if (!k) return NAN;
  double pos = 0, neg = 0, rank_sum = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && k[j].key == k[i].key) j++;
    double avg_rank = (double)(i + 1 + j) / 2.0; /* ranks i+1 .. j */
    for (size_t m = i; m < j; m++)
      if (label[k[m].index]) {
        rank_sum += avg_rank;
        pos++;
      }
    i = j;
  }
  neg = (double)n - pos;
  free(k);
  if (pos == 0 || neg == 0) return NAN;
  return (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg);
}

double vd_eval_log_loss(const double *p, const unsigned char *label, size_t n) {
  double sum = 0;
  for (size_t i = 0; i < n; i++) {
    double q = fmin(fmax(p[i], 1e-15), 1 - 1e-15);
    sum -= label[i] ? log(q) : log1p(-q);
  }
  return n ? sum / (double)n : NAN;
}

json_t *vd_eval_calibration(const double *p, const unsigned char *label, size_t n, size_t bins,
                            double *ece) {
  keyed *k = sorted(p, n, false);
  json_t *list = json_array();
  *ece = 0;
  for (size_t b = 0; k && b < bins; b++) {
    size_t lo = n * b / bins, hi = n * (b + 1) / bins;
    if (hi <= lo) continue;
    double sp = 0, sy = 0;
    for (size_t i = lo; i < hi; i++) {
      sp += k[i].key;
      sy += label[k[i].index];
    }
    double m = (double)(hi - lo), mp = sp / m, obs = sy / m;
    *ece += m / (double)n * fabs(mp - obs);
    json_t *bin = json_object();
    json_object_set_new(bin, "n", json_integer((json_int_t)(hi - lo)));
    json_object_set_new(bin, "min_predicted", json_real(k[lo].key));
    json_object_set_new(bin, "max_predicted", json_real(k[hi - 1].key));
    json_object_set_new(bin, "mean_predicted", json_real(mp));
    json_object_set_new(bin, "observed", json_real(obs));
    json_array_append_new(list, bin);
  }
  free(k);
  json_t *out = json_object();
  json_object_set_new(out, "bins", list);
  return out;
}

enum { TOP_COUNT = 3 };
static const double top_fractions[TOP_COUNT] = {0.1, 0.3, 0.5};

/* Qini coefficient and top-p % uplifts for rows in `order` with multiplicities `weight`. */
typedef struct uplift_stats {
  double qini;
  double top[TOP_COUNT];
} uplift_stats;

static double rate_gap(double rt, double nt, double rc, double nc) {
  if (nt <= 0 || nc <= 0) return NAN;
  return rt / nt - rc / nc;
}

static uplift_stats compute(const keyed *order, size_t n, const unsigned *weight,
                            const unsigned char *treated, const unsigned char *label) {
  uplift_stats s = {0};
  double total = 0;
  for (size_t i = 0; i < n; i++) total += weight ? weight[order[i].index] : 1;
  double nt = 0, nc = 0, rt = 0, rc = 0, seen = 0;
  double prev_x = 0, prev_q = 0, area = 0;
  size_t next_top = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && order[j].key == order[i].key) j++; /* a tie group moves together */
    for (size_t m = i; m < j; m++) {
      size_t r = order[m].index;
      double w = weight ? weight[r] : 1;
      if (w == 0) continue;
      seen += w;
      if (treated[r]) {
        nt += w;
        rt += w * label[r];
      } else {
        nc += w;
        rc += w * label[r];
      }
      while (next_top < TOP_COUNT && seen >= top_fractions[next_top] * total) {
        s.top[next_top] = rate_gap(rt, nt, rc, nc);
        next_top++;
      }
    }
    double q = (nc > 0 ? rt - rc * nt / nc : 0) / total;
    double x = seen / total;
    area += (x - prev_x) * (q + prev_q) / 2;
    prev_x = x;
    prev_q = q;
    i = j;
  }
  s.qini = area - prev_q / 2; /* minus the area under the random line to (1, q(1)) */
  return s;
}

static json_t *ci_pair(double *values, size_t n) {
  gsl_sort(values, 1, n);
  json_t *a = json_array();
  json_array_append_new(a, json_real(gsl_stats_quantile_from_sorted_data(values, 1, n, 0.025)));
  json_array_append_new(a, json_real(gsl_stats_quantile_from_sorted_data(values, 1, n, 0.975)));
  return a;
}

/* NaN cannot go into JSON: a statistic that is undefined (no rows of one group) becomes null. */
static json_t *real_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

json_t *vd_eval_uplift(const double *uplift, const unsigned char *treated,
                       const unsigned char *label, size_t n, size_t reps, unsigned long seed,
                       double *qini_out, double *boot_out) {
  keyed *order = sorted(uplift, n, true);
  unsigned *weight = calloc(n ? n : 1, sizeof *weight);
  double *boot = malloc((reps ? reps : 1) * (TOP_COUNT + 1) * sizeof *boot);
  gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
  if (!order || !weight || !boot || !rng) {
    free(order);
    free(weight);
    free(boot);
    if (rng) gsl_rng_free(rng);
    return NULL;
  }
  gsl_rng_set(rng, seed);
  uplift_stats full = compute(order, n, NULL, treated, label);
  for (size_t r = 0; r < reps; r++) {
    for (size_t i = 0; i < n; i++) weight[i] = 0;
    for (size_t i = 0; i < n; i++) weight[gsl_rng_uniform_int(rng, n)]++;
    uplift_stats s = compute(order, n, weight, treated, label);
    boot[r] = s.qini;
    if (boot_out) boot_out[r] = s.qini;
    for (size_t t = 0; t < TOP_COUNT; t++) boot[(t + 1) * reps + r] = s.top[t];
  }
  double nt = 0, rt = 0, rc = 0, pred_sum[TOP_COUNT] = {0};
  for (size_t i = 0; i < n; i++) {
    nt += treated[i];
    rt += treated[i] ? label[i] : 0;
    rc += treated[i] ? 0 : label[i];
  }
  json_t *out = json_object();
  json_object_set_new(out, "rows", json_integer((json_int_t)n));
  json_object_set_new(out, "treated", json_integer((json_int_t)nt));
  json_object_set_new(out, "control", json_integer((json_int_t)(n - (size_t)nt)));
  json_object_set_new(out, "observed_uplift", real_or_null(rate_gap(rt, nt, rc, (double)n - nt)));
  json_object_set_new(out, "qini", json_real(full.qini));
  json_object_set_new(out, "qini_bootstrap_se", json_real(gsl_stats_sd(boot, 1, reps)));
  json_object_set_new(out, "qini_ci95", ci_pair(boot, reps));
  json_object_set_new(out, "bootstrap_reps", json_integer((json_int_t)reps));
  json_t *tops = json_array();
  for (size_t t = 0; t < TOP_COUNT; t++) {
    size_t k = (size_t)ceil(top_fractions[t] * (double)n);
    for (size_t i = 0; i < k && i < n; i++) pred_sum[t] += uplift[order[i].index];
    json_t *o = json_object();
    json_object_set_new(o, "fraction", json_real(top_fractions[t]));
    json_object_set_new(o, "rows", json_integer((json_int_t)k));
    json_object_set_new(o, "observed_uplift", real_or_null(full.top[t]));
    json_object_set_new(o, "predicted_uplift", json_real(k ? pred_sum[t] / (double)k : 0));
    json_object_set_new(o, "ci95", ci_pair(boot + (t + 1) * reps, reps));
    json_array_append_new(tops, o);
  }
  json_object_set_new(out, "top", tops);
  if (qini_out) *qini_out = full.qini;
  free(order);
  free(weight);
  free(boot);
  gsl_rng_free(rng);
  return out;
}
