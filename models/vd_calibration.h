/* vd_calibration: probability calibration of a multiclass model by temperature scaling, and its
 * measure, the expected calibration error.
 *
 * Temperature scaling (Guo et al., 2017) divides every margin by one T > 0 before the softmax:
 * it changes no prediction, only how sure the probabilities are. T is fitted on held-out data by
 * minimising the mean negative log-likelihood with GSL's Brent minimiser over log T.
 *
 * Arrays are caller-owned; nothing is kept. margins is row-major, n rows × k classes. */
#ifndef VD_CALIBRATION_H
#define VD_CALIBRATION_H

#include <stdbool.h>
#include <stddef.h>

#include "vd_error.h"

enum { VD_CALIBRATION_ECE_BINS = 15 };

/* out[0 .. k) = softmax(margins / temperature), computed stably. */
void vd_softmax(const double *margins, size_t k, double temperature, double *out);
/* Mean negative log-likelihood of labels under softmax(margins / temperature). */
double vd_calibration_nll(const double *margins, const int *labels, size_t n, size_t k,
                          double temperature);
/* Fits T in [0.05, 20]. False (err set) on empty input or a minimiser failure. */
bool vd_calibration_fit_temperature(const double *margins, const int *labels, size_t n, size_t k,
                                    double *temperature, vd_error *err);
/* Expected calibration error of the top-class confidence: the confidence range [0, 1] in `bins`
 * equal bins, Σ_b (|b| / n) × |accuracy(b) − mean confidence(b)|. */
double vd_calibration_ece(const double *confidence, const bool *correct, size_t n, size_t bins);

#endif
