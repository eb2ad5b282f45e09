/* Helpers for the triage model tests: validation rows and XGBoost as the reference scorer over
 * the featuriser's sparse vectors. */
#ifndef SUPPORT_TRIAGE_H
#define SUPPORT_TRIAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "vd_triage.h"

#define TRIAGE_SHIPPED_BUNDLE VERDICT_SOURCE_DIR "/examples/triage/model"

typedef struct triage_rows {
  size_t count; /* rows in use (a test may lower it to sample) */
  size_t total; /* rows read (freed) */
  char **text;
  char **intent;
} triage_rows;

/* Reads shared/data/clinc150/<name> (JSON Lines). False (after printing SKIP) when absent. */
bool triage_read_rows(const char *name, triage_rows *rows);
void triage_free_rows(triage_rows *rows);
/* XGBoost's own margins (rows × classes) for the texts, featurised with the bundle's featuriser
 * and mapped to its columns; the booster is loaded from the bundle's model file. Heap array. */
double *triage_reference_margins(const char *bundle_dir, const triage_rows *rows);

#endif
