/* vd_forest: a native evaluator over an XGBoost (1.7, gbtree, binary:logistic or
 * reg:squarederror) JSON model — predictions bit-identical to XGBoost's CPU predictor, and exact
 * path-dependent TreeSHAP contributions equal to XGBoost's pred_contribs.
 *
 * Predictions walk the trees and add leaf values in float, in tree order, onto the float base
 * margin — exactly XGBoost's arithmetic. Contributions use precomputation at load: for every leaf
 * the unique features on its path and their cover fractions are fixed, so a row only decides
 * which of them it "agrees" with (a bit mask H), and the TreeSHAP weights of every H can be
 * tabulated (Fast TreeSHAP v2 style). Small trees (≤ 64 nodes, depth ≤ 6) go one step further:
 * they are cut into subtrees whose leaves together depend on ≤ 6 split decisions, and one table
 * row per subtree holds the summed weights of all its leaves — a depth-4 tree costs 4 table rows
 * per row instead of 16. Those rows are dense over the tree's columns (over all columns for
 * models of ≤ 16 features) and summed 4 floats at a time; their splits are decided with one
 * binary search per column over the sorted thresholds (see vd_forest_layout). Other trees tabulate
 * per leaf (leaves with at most `max_table_features` unique features) or run the exact
 * extend/unwind path algorithm for their H at call time.
 *
 * Ownership: vd_forest_load returns an immutable forest freed with vd_forest_free; every
 * function taking a const forest is safe to call from any number of threads at once. */
#ifndef VD_FOREST_H
#define VD_FOREST_H

#include <stdbool.h>
#include <stddef.h>

#include "vd_error.h"

typedef struct vd_forest vd_forest;

enum { VD_FOREST_DEFAULT_TABLE_FEATURES = 8 };

/* Parses XGBoost's JSON model text. `name` is used in errors ("model.json: ..."). Refuses other
 * boosters (dart, gblinear), multi-class/multi-target models, categorical splits and malformed
 * trees. max_table_features: leaves with more unique path features are computed on the fly (0
 * = never tabulate). */
vd_forest *vd_forest_load(const char *json_text, size_t size, const char *name,
                          unsigned max_table_features, vd_error *err);
void vd_forest_free(vd_forest *forest);

size_t vd_forest_feature_count(const vd_forest *forest);
size_t vd_forest_tree_count(const vd_forest *forest);
size_t vd_forest_max_depth(const vd_forest *forest);
const char *vd_forest_objective(const vd_forest *forest);
/* Bytes of precomputed TreeSHAP tables (for operators: memory per loaded model). */
size_t vd_forest_table_bytes(const vd_forest *forest);

/* How the trees are laid out for TreeSHAP (for tests and operators). Dense trees (≤ 64 nodes,
 * depth ≤ 6, ≤ 16 distinct columns) read one table row per subtree over the tree's columns;
 * grouped trees do the same over sparse feature lists; the other trees work leaf by leaf. The
 * splits of dense trees are decided per block of consecutive trees (≤ 4,096 splits a block). */
typedef struct vd_forest_layout {
  size_t dense_trees, grouped_trees, leaf_trees;
  size_t decision_blocks;
} vd_forest_layout;
vd_forest_layout vd_forest_layout_of(const vd_forest *forest);

/* Raw margin for one row of vd_forest_feature_count() floats (NaN = missing). */
float vd_forest_margin(const vd_forest *forest, const float *row);
/* The objective's transform of a margin (sigmoid for binary:logistic), as XGBoost computes it. */
float vd_forest_transform(const vd_forest *forest, float margin);

/* Exact TreeSHAP: phi[0 .. feature_count) per feature, phi[feature_count] = bias (expected
 * value). They sum to the margin (up to float rounding). phi is overwritten. */
void vd_forest_contributions(const vd_forest *forest, const float *row, double *phi);

#endif
