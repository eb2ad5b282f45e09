/* vd_model_eval: validation statistics for a model on a held-out split — discrimination (AUC),
 * log loss, calibration by decile with its expected calibration error, and uplift quality (Qini
 * coefficient with a bootstrap confidence interval, observed uplift in the top 10/30/50 %).
 * Random numbers come from GSL's MT19937 with an explicit seed, so reports are reproducible.
 *
 * Definitions (also in README "Models"):
 *   - AUC: Mann-Whitney, ties counted one half.
 *   - Calibration: rows sorted by predicted probability, cut into 10 equal-count bins; per bin the
 *     mean prediction and the observed rate. ECE = Σ_b (n_b / n) · |mean_pred_b − observed_b|.
 *   - Qini: rows sorted by predicted uplift (descending; ties kept together). For the top k rows,
 *     Q(k) = R_t(k) − R_c(k) · N_t(k) / N_c(k) incremental responders. With x = k/n and
 *     q(x) = Q(k)/n, the Qini coefficient is ∫₀¹ (q(x) − x · q(1)) dx: the area between the
 *     model's curve and random targeting, in incremental responders per customer. 0 = no better
 *     than random. Its 95 % interval is the percentile bootstrap over rows (resampled with
 *     replacement, the model's ranking fixed).
 *   - Uplift in the top p %: observed response rate of treated minus control rows among the p %
 *     with the highest predicted uplift.
 *
 * Ownership: functions returning json_t * return a new reference. Nothing is kept. */
#ifndef VD_MODEL_EVAL_H
#define VD_MODEL_EVAL_H

#include <jansson.h>
#include <stddef.h>

double vd_eval_auc(const double *score, const unsigned char *label, size_t n);
double vd_eval_log_loss(const double *p, const unsigned char *label, size_t n);
/* {"bins": [{"n", "mean_predicted", "observed", "min_predicted", "max_predicted"}...]}; *ece set.
 */
json_t *vd_eval_calibration(const double *p, const unsigned char *label, size_t n, size_t bins,
                            double *ece);

/* Uplift quality of predicted uplift `uplift` on rows that were treated (treated[i] = 1, the arm
 * in question) or control (0), with outcome label. Returns {"rows", "treated", "control",
 * "observed_uplift", "qini", "qini_ci95": [lo, hi], "qini_bootstrap_se", "top": [{"fraction",
 * "rows", "observed_uplift", "predicted_uplift", "ci95"}...]}. `qini_out` gets the coefficient;
 * `boot_out` (bootstrap_reps values, may be NULL) the Qini of each resample. The resamples depend
 * only on (n, seed): two models scored on the same rows with the same seed are compared on the
 * same resamples (a paired bootstrap). */
json_t *vd_eval_uplift(const double *uplift, const unsigned char *treated,
                       const unsigned char *label, size_t n, size_t bootstrap_reps,
                       unsigned long seed, double *qini_out, double *boot_out);

#endif
