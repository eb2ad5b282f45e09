/* vd_train: trains an uplift model from a CSV file and a training spec (train.yaml), and writes a
 * model bundle (model.json + manifest.json; see README "Models").
 *
 * Training is deterministic: the split is a seeded shuffle, XGBoost runs with a fixed nthread and
 * seed, the manifest holds no timestamps or paths — the same data and spec give byte-identical
 * files and the same version.
 *
 * Spec (YAML, strict loader common/vd_yaml.h):
 *   model: promotions                  # bundle name
 *   task: uplift
 *   label: visit                       # 0/1 column
 *   treatment: { column: segment, control: No E-Mail, arms: [Mens E-Mail, Womens E-Mail] }
 *   learner: auto                      # auto | s-learner | t-learner (see README)
 *   validation: { fraction: 0.3, seed: 20261203, bootstrap: 1000, selection_fraction: 0.25 }
 *   xgboost: { num_round: 300, max_depth: 4, eta: 0.05, ... }   # any XGBoost parameter
 *   features: [...]                    # vd_features.h
 *   reasons: { history: { up: "...", down: "..." } }           # reason-code texts
 *
 * Ownership: nothing returned needs freeing; files are written under options->out_dir. */
#ifndef VD_TRAIN_H
#define VD_TRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "vd_error.h"
#include "vd_hash.h"

typedef struct vd_train_options {
  const char *data_path;
  const char *spec_path;
  const char *out_dir;
  size_t max_rows; /* 0: every row; otherwise the first max_rows rows (tests) */
  FILE *log;       /* progress and the learner comparison; NULL for silence */
} vd_train_options;

/* Trains and writes the bundle; version gets the model's SHA-256. */
bool vd_train_uplift(const vd_train_options *options, char version[VD_SHA256_HEX_SIZE],
                     vd_error *err);

/* `verdict train promotions --data FILE.csv --spec train.yaml --out DIR` */
int vd_verb_train(int argc, char **argv, FILE *out, FILE *err);

#endif
