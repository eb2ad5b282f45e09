#include "vd_forest.h"

#include <jansson.h>
#include <math.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_PATH_FEATURES = 64, MAX_DEPTH = 256 };

typedef struct node {
  int32_t left; /* -1 for a leaf */
  int32_t right;
  uint32_t feature;
  float value; /* split threshold, or the leaf value */
  uint8_t default_left;
} node;

/* The prediction walk's copy of a node: child[1] is taken when the row goes left. A leaf points
 * at itself, so every tree can be walked a fixed number of steps without branches. The top bit
 * of `feature` is default_left. */
typedef struct walk_node {
  float value;
  uint32_t feature;
  uint32_t child[2];
} walk_node;

enum { DEFAULT_LEFT_BIT = 31 };

/* One split on a leaf's path: the row must go `left` (1) or right (0) at it. */
typedef struct step {
  uint32_t node; /* the split's node index inside its tree */
  uint32_t feature;
  float threshold;
  uint8_t left;
  uint8_t default_left;
  uint8_t slot; /* index of the unique path feature this split belongs to */
} step;

typedef struct leaf {
  size_t first_step;
  size_t first_feature; /* into path_features / zero_fractions */
  size_t table;         /* offset into tables, or SIZE_MAX when computed on the fly */
  uint32_t node;        /* the leaf's node index inside its tree */
  uint16_t steps;
  uint16_t features;
  double value;
} leaf;

/* A grouped tree (≤ 64 nodes, depth ≤ GROUP_MAX_BITS) is cut into subtrees small enough that the
 * TreeSHAP weights of all their leaves together depend on at most GROUP_MAX_BITS split decisions
 * (the subtree root's ancestors and the subtree's own splits). Each group tabulates, for every
 * combination of those decisions, the summed contributions of its leaves per feature: a row then
 * costs one table row per group instead of one per leaf (a depth-4 tree: 4 rows, not 16). */
typedef struct group {
  size_t table;         /* offset into tables; row stride is the tree's pad_width */
  size_t first_bit;     /* into group_bits: the node index of each decision, pad_bits of them */
  size_t first_feature; /* into group_features: pad_width feature indices */
} group;

enum { GROUP_MAX_BITS = 6 };

/* Dense trees: a grouped tree whose splits read at most DENSE_MAX_COLUMNS distinct columns lays
 * every group's table row over the tree's own columns (padded to a multiple of 4 floats), so the
 * groups of a tree are summed four columns at a time and scattered into phi once per tree. When
 * the model has at most DENSE_MAX_COLUMNS features (the shipped one: 15), every grouped tree is
 * dense over all of them (rows of DENSE_MAX_COLUMNS floats, feature c in column c): nothing is
 * scattered, each row is added to a dense double accumulator — the same additions, in the same
 * order, as sparse rows into phi, so the contributions keep their bits. */
enum { DENSE_MAX_COLUMNS = 16 };

/* The splits of dense trees are decided together, in blocks of consecutive trees with at most
 * BLOCK_SLOTS splits: sorted by (column, threshold), the splits of one column that a row sends
 * left are a suffix of its run, found by one binary search over the run's distinct thresholds;
 * a row then sets one byte per split with two memsets per column instead of comparing split by
 * split. Groups read their decisions as bytes at precomputed slots. */
enum { BLOCK_SLOTS = 4096 };

typedef struct decision_block {
  size_t tree_end; /* the block holds the trees from the previous block's tree_end to this */
  size_t first_run, run_count;
  uint32_t slots; /* decision bytes; byte `slots` is always 0 (padding decisions read it) */
} decision_block;

/* The splits of one block on one column, in slots sorted by threshold. */
typedef struct threshold_run {
  uint32_t feature;
  uint32_t first_slot, slot_count;
  uint32_t
      threshold_count; /* distinct thresholds, ascending, at run_thresholds + first_threshold */
  size_t first_threshold;
  /* run_right[first_right + r]: how many of the run's splits a value at or above the r smallest
   * thresholds (and below the next) sends right; threshold_count + 1 entries */
  size_t first_right;
  size_t nan_left; /* into slot_default_left: where a missing value goes, per slot */
} threshold_run;

typedef struct tree {
  size_t first_node;
  size_t node_count;
  size_t depth;
  /* Groups pad their decisions and features to one count per tree so the per-group loops have
   * one trip count per tree: a padding decision reads a leaf's node (always 0), a padding
   * feature adds 0 to the bias slot (overwritten at the end). */
  bool grouped;
  uint16_t pad_bits, pad_width;
  bool dense; /* grouped, rows over the tree's columns (DENSE_MAX_COLUMNS) */
  uint16_t dense_columns, dense_width; /* the tree's columns, and the row stride (multiple of 4) */
  size_t first_column;                 /* into tree_columns */
  size_t first_group;
  size_t group_count;
  uint64_t split_mask; /* trees of ≤ 64 nodes: bit k set when node k is a split */
  size_t first_leaf;
  size_t leaf_count;
  double root_mean; /* expected value of the tree under the cover distribution */
} tree;

struct vd_forest {
  char objective[64];
  bool logistic;
  float base_margin;
  size_t feature_count;
  bool all_columns; /* feature_count <= DENSE_MAX_COLUMNS: dense rows over every column */
  size_t max_depth;
  tree *trees;
  size_t tree_count;
  node *nodes;
  walk_node *walk;
  leaf *leaves;
  step *steps;
  group *groups;
  size_t group_count;
  uint8_t *group_bits;
  uint16_t *group_slots; /* dense trees: group_bits as slots of the tree's decision block */
  uint32_t *group_features;
  uint32_t *tree_columns;
  decision_block *blocks;
  size_t block_count;
  threshold_run *runs;
  float *run_thresholds;
  uint32_t *run_right;
  uint8_t *slot_default_left;
  uint32_t *path_features;
  double *zero_fractions;
  float *tables;
  size_t table_floats;
};

/* ---------- TreeSHAP on one leaf path (Lundberg et al., Algorithm 2, for a fixed path) -------- */

/* Weights for each unique path feature j of a leaf with value v, given its zero fractions z[j]
 * (share of cover following the path) and the row's agreement bits H (one fraction o_j ∈ {0,1}):
 * out[j] = v · (o_j − z_j) · Σ_S |S|!(d−|S|−1)!/d! · Π… — the unique-path polynomial. */
static void path_shap(const double *z, size_t d, uint64_t h, double v, double *out) {
  double pw[MAX_PATH_FEATURES + 2];
  pw[0] = 1.0; /* the dummy root element (z = o = 1) */
  for (size_t u = 1; u <= d; u++) {
    double zero = z[u - 1], one = (double)((h >> (u - 1)) & 1u);
    pw[u] = 0.0;
    for (size_t i = u; i-- > 0;) {
      pw[i + 1] += one * pw[i] * (double)(i + 1) / (double)(u + 1);
      pw[i] = zero * pw[i] * (double)(u - i) / (double)(u + 1);
    }
  }
  for (size_t p = 1; p <= d; p++) {
    double one = (double)((h >> (p - 1)) & 1u), zero = z[p - 1];
    double next = pw[d], total = 0.0;
    for (size_t i = d; i-- > 0;) {
      if (one != 0.0) {
        double tmp = next * (double)(d + 1) / ((double)(i + 1) * one);
        total += tmp;
        next = pw[i] - tmp * zero * (double)(d - i) / (double)(d + 1);
      } else if (zero != 0.0) {
        total += (pw[i] / zero) / ((double)(d - i) / (double)(d + 1));
      }
    }
    out[p - 1] = total * (one - zero) * v;
  }
}

/* ---------- loading ---------- */

static bool fail(vd_error *err, const char *name, const char *what) {
  return vd_error_set(err, "%s: %s", name, what);
}

static const json_t *get_path(const json_t *root, const char *const *keys, size_t n) {
  const json_t *v = root;
  for (size_t i = 0; i < n && v; i++) v = json_object_get(v, keys[i]);
  return v;
}

static bool int_array(const json_t *a, size_t n) {
  return json_is_array(a) && json_array_size(a) == n;
}

typedef struct builder {
  vd_forest *f;
  size_t node_cap, leaf_cap, step_cap, feat_cap;
  size_t node_count, leaf_count, step_count, feat_count;
  const json_t *sum_hessian;
  /* The current path from the root, as DFS goes. */
  step path[MAX_DEPTH];
  double path_cover_ratio[MAX_DEPTH];
  size_t depth;
} builder;

static bool grow(void **p, size_t *cap, size_t need, size_t size) {
  if (need <= *cap) return true;
  size_t cap2 = *cap ? *cap : 256;
  while (cap2 < need) cap2 *= 2;
  void *q = realloc(*p, cap2 * size);
  if (!q) return false;
  *p = q;
  *cap = cap2;
  return true;
}

static double cover(const builder *b, size_t local) {
  return (double)(float)json_number_value(json_array_get(b->sum_hessian, local));
}

/* Depth-first over one tree (nodes already copied), collecting each leaf's path. Returns the
 * subtree's mean value. */
static bool visit(builder *b, size_t base, size_t local, double *mean, const char *name,
                  vd_error *err) {
  const node *n = &b->f->nodes[base + local];
  if (b->depth > b->f->max_depth) b->f->max_depth = b->depth;
  if (n->left < 0) {
    /* merge the path's splits into unique features */
    uint32_t feats[MAX_DEPTH];
    double z[MAX_DEPTH];
    size_t d = 0;
    if (!grow((void **)&b->f->steps, &b->step_cap, b->step_count + b->depth, sizeof(step)) ||
        !grow((void **)&b->f->leaves, &b->leaf_cap, b->leaf_count + 1, sizeof(leaf)))
      return fail(err, name, "out of memory");
    for (size_t k = 0; k < b->depth; k++) {
      step s = b->path[k];
      size_t j = 0;
      while (j < d && feats[j] != s.feature) j++;
      if (j == d) {
        feats[d] = s.feature;
        z[d] = 1.0;
        d++;
      }
      z[j] *= b->path_cover_ratio[k];
      s.slot = (uint8_t)j;
      b->f->steps[b->step_count + k] = s;
    }
    if (d > MAX_PATH_FEATURES) return fail(err, name, "a leaf path has more than 64 features");
    if (!grow((void **)&b->f->path_features, &b->feat_cap, b->feat_count + d, sizeof(uint32_t)))
      return fail(err, name, "out of memory");
    double *zf = realloc(b->f->zero_fractions, (b->feat_cap ? b->feat_cap : 1) * sizeof(double));
    if (!zf) return fail(err, name, "out of memory");
    b->f->zero_fractions = zf;
    if (d) { /* a tree that is a single leaf has no path */
      memcpy(b->f->path_features + b->feat_count, feats, d * sizeof *feats);
      memcpy(b->f->zero_fractions + b->feat_count, z, d * sizeof *z);
    }
    b->f->leaves[b->leaf_count++] = (leaf){.first_step = b->step_count,
                                           .first_feature = b->feat_count,
                                           .table = SIZE_MAX,
                                           .node = (uint32_t)local,
                                           .steps = (uint16_t)b->depth,
                                           .features = (uint16_t)d,
                                           .value = (double)n->value};
    b->step_count += b->depth;
    b->feat_count += d;
    *mean = (double)n->value;
    return true;
  }
  if (b->depth >= MAX_DEPTH - 1) return fail(err, name, "a tree is deeper than 255");
  double c = cover(b, local);
  if (!(c > 0.0)) return fail(err, name, "a split node has no cover (sum_hessian)");
  double means[2] = {0, 0};
  int32_t kids[2] = {n->left, n->right};
  node copy = *n;
  for (int side = 0; side < 2; side++) {
    b->path[b->depth] = (step){.node = (uint32_t)local,
                               .feature = copy.feature,
                               .threshold = copy.value,
                               .left = side == 0,
                               .default_left = copy.default_left};
    b->path_cover_ratio[b->depth] = cover(b, (size_t)kids[side]) / c;
    b->depth++;
    bool ok = visit(b, base, (size_t)kids[side], &means[side], name, err);
    b->depth--;
    if (!ok) return false;
  }
  *mean = (means[0] * cover(b, (size_t)kids[0]) + means[1] * cover(b, (size_t)kids[1])) / c;
  return true;
}

static bool load_tree(builder *b, const json_t *t, size_t index, const char *name, vd_error *err) {
  char where[128];
  snprintf(where, sizeof where, "%s: tree %zu", name, index);
  const json_t *left = json_object_get(t, "left_children");
  if (!json_is_array(left) || json_array_size(left) == 0)
    return fail(err, where, "left_children missing or empty");
  size_t n = json_array_size(left);
  const json_t *right = json_object_get(t, "right_children");
  const json_t *split = json_object_get(t, "split_indices");
  const json_t *cond = json_object_get(t, "split_conditions");
  const json_t *dleft = json_object_get(t, "default_left");
  const json_t *hess = json_object_get(t, "sum_hessian");
  const json_t *stype = json_object_get(t, "split_type");
  if (!int_array(right, n) || !int_array(split, n) || !int_array(cond, n) || !int_array(dleft, n) ||
      !int_array(hess, n))
    return fail(err, where, "node arrays missing or of different lengths");
  const json_t *cats = json_object_get(t, "categories_nodes");
  if (json_array_size(cats) > 0) return fail(err, where, "categorical splits are not supported");
  if (!grow((void **)&b->f->nodes, &b->node_cap, b->node_count + n, sizeof(node)))
    return fail(err, where, "out of memory");
  size_t base = b->node_count;
  unsigned char *seen = calloc(n, 1);
  if (!seen) return fail(err, where, "out of memory");
  bool ok = true;
  for (size_t i = 0; i < n && ok; i++) {
    const json_t *l = json_array_get(left, i), *r = json_array_get(right, i);
    const json_t *s = json_array_get(split, i), *c = json_array_get(cond, i);
    const json_t *dl = json_array_get(dleft, i), *h = json_array_get(hess, i);
    if (!json_is_integer(l) || !json_is_integer(r) || !json_is_integer(s) || !json_is_number(c) ||
        !json_is_integer(dl) || !json_is_number(h)) {
      ok = fail(err, where, "a node field has the wrong type");
      break;
    }
    if (stype && json_integer_value(json_array_get(stype, i)) != 0) {
      ok = fail(err, where, "categorical splits are not supported");
      break;
    }
    json_int_t li = json_integer_value(l), ri = json_integer_value(r), si = json_integer_value(s);
    node *nd = &b->f->nodes[base + i];
    nd->value = (float)json_number_value(c);
    nd->default_left = json_integer_value(dl) != 0;
    if (li == -1) {
      if (ri != -1) ok = fail(err, where, "a node has a left child only");
      nd->left = nd->right = -1;
      nd->feature = 0;
      if (!isfinite(nd->value)) ok = fail(err, where, "a leaf value is not finite");
      continue;
    }
    /* XGBoost numbers children after their parent; requiring it rules out cycles. */
    if (li <= (json_int_t)i || ri <= (json_int_t)i || li >= (json_int_t)n || ri >= (json_int_t)n ||
        li == ri || seen[li] || seen[ri]) {
      ok = fail(err, where, "child indices are out of range or shared");
      break;
    }
    seen[li] = seen[ri] = 1;
    if (si < 0 || (size_t)si >= b->f->feature_count) {
      ok = fail(err, where, "a split uses a feature index beyond num_feature");
      break;
    }
    nd->left = (int32_t)li;
    nd->right = (int32_t)ri;
    nd->feature = (uint32_t)si;
  }
  for (size_t i = 1; i < n && ok; i++)
    if (!seen[i]) ok = fail(err, where, "a node is unreachable from the root");
  free(seen);
  if (!ok) return false;
  b->node_count += n;
  tree *tr = &b->f->trees[index];
  for (size_t i = 0; i < n && n <= 64; i++)
    if (b->f->nodes[base + i].left >= 0) tr->split_mask |= (uint64_t)1 << i;
  tr->first_node = base;
  tr->node_count = n;
  tr->first_leaf = b->leaf_count;
  b->sum_hessian = hess;
  b->depth = 0;
  if (!visit(b, base, 0, &tr->root_mean, where, err)) return false;
  tr->leaf_count = b->leaf_count - tr->first_leaf;
  for (size_t i = 0; i < tr->leaf_count; i++)
    if (b->f->leaves[tr->first_leaf + i].steps > tr->depth)
      tr->depth = b->f->leaves[tr->first_leaf + i].steps;
  return true;
}

/* ---------- precomputation ---------- */

/* One group being planned: its decisions (node indices) and the features its leaves read. */
typedef struct group_plan {
  uint32_t root;
  uint8_t bits, width;
  uint8_t node[GROUP_MAX_BITS];
  uint32_t feature[GROUP_MAX_BITS];
} group_plan;

static size_t internal_nodes(const node *nodes, size_t local) {
  if (nodes[local].left < 0) return 0;
  return 1 + internal_nodes(nodes, (size_t)nodes[local].left) +
         internal_nodes(nodes, (size_t)nodes[local].right);
}

static void collect_internal(const node *nodes, size_t local, group_plan *g) {
  if (nodes[local].left < 0) return;
  g->node[g->bits++] = (uint8_t)local;
  collect_internal(nodes, (size_t)nodes[local].left, g);
  collect_internal(nodes, (size_t)nodes[local].right, g);
}

static bool leaf_under(const vd_forest *f, const leaf *l, uint32_t root) {
  if (l->node == root) return true;
  for (size_t k = 0; k < l->steps; k++)
    if (f->steps[l->first_step + k].node == root) return true;
  return false;
}

/* Cuts the subtree at `local` (whose `depth` ancestors are in `above`) into groups: the highest
 * nodes whose ancestors plus own splits fit in GROUP_MAX_BITS decisions. */
static void plan_groups(const vd_forest *f, const tree *tr, size_t local, uint8_t *above,
                        size_t depth, group_plan *plans, size_t *count) {
  const node *nodes = f->nodes + tr->first_node;
  if (depth + internal_nodes(nodes, local) > GROUP_MAX_BITS) {
    above[depth] = (uint8_t)local;
    plan_groups(f, tr, (size_t)nodes[local].left, above, depth + 1, plans, count);
    plan_groups(f, tr, (size_t)nodes[local].right, above, depth + 1, plans, count);
    return;
  }
  group_plan *g = &plans[(*count)++];
  *g = (group_plan){.root = (uint32_t)local, .bits = (uint8_t)depth};
  memcpy(g->node, above, depth);
  collect_internal(nodes, local, g);
  for (size_t i = 0; i < tr->leaf_count; i++) {
    const leaf *l = &f->leaves[tr->first_leaf + i];
    if (!leaf_under(f, l, g->root)) continue;
    for (size_t j = 0; j < l->features; j++) {
      uint32_t feat = f->path_features[l->first_feature + j];
      size_t u = 0;
      while (u < g->width && g->feature[u] != feat) u++;
      if (u == g->width) g->feature[g->width++] = feat;
    }
  }
}

static size_t index_of(const uint8_t *a, size_t n, uint32_t v) {
  size_t i = 0;
  while (i < n && a[i] != v) i++;
  return i;
}

/* The group's table: for every combination `bits` of its decisions (bit p = the row went left
 * at node g->node[p]), the summed TreeSHAP weights of its leaves per feature — feature u of the
 * group at column[u] of a row of `stride` floats. */
static void fill_group_table(const vd_forest *f, const tree *tr, const group_plan *g,
                             const uint8_t *column, size_t stride, float *table) {
  double w[MAX_PATH_FEATURES], sum[GROUP_MAX_BITS];
  for (uint64_t bits = 0; bits < ((uint64_t)1 << g->bits); bits++) {
    memset(sum, 0, sizeof sum);
    for (size_t i = 0; i < tr->leaf_count; i++) {
      const leaf *l = &f->leaves[tr->first_leaf + i];
      if (!leaf_under(f, l, g->root)) continue;
      uint64_t h = ((uint64_t)1 << l->features) - 1;
      for (size_t k = 0; k < l->steps; k++) {
        const step *s = &f->steps[l->first_step + k];
        uint64_t went_left = (bits >> index_of(g->node, g->bits, s->node)) & 1u;
        if (went_left != s->left) h &= ~((uint64_t)1 << s->slot);
      }
      path_shap(f->zero_fractions + l->first_feature, l->features, h, l->value, w);
      for (size_t j = 0; j < l->features; j++) {
        uint32_t feat = f->path_features[l->first_feature + j];
        size_t u = 0;
        while (g->feature[u] != feat) u++;
        sum[u] += w[j];
      }
    }
    for (size_t u = 0; u < g->width; u++) table[bits * stride + column[u]] = (float)sum[u];
  }
}

/* The distinct columns a tree's splits read, in node order (a tree of ≤ 64 nodes); returns how
 * many. */
static size_t split_columns(const vd_forest *f, const tree *tr, uint32_t *out) {
  size_t n = 0;
  for (size_t k = 0; k < tr->node_count; k++) {
    const node *nd = &f->nodes[tr->first_node + k];
    if (nd->left < 0) continue;
    size_t j = 0;
    while (j < n && out[j] != nd->feature) j++;
    if (j == n) out[n++] = nd->feature;
  }
  return n;
}

/* Plans every grouped tree's groups (into f->groups, sized) and returns the table floats they
 * need; plans are kept in `plans` (one array of up to 64 per tree) for filling. */
static bool build_groups(vd_forest *f, unsigned max_table_features, group_plan **plans_out,
                         size_t *floats, const char *name, vd_error *err) {
  group_plan *plans = NULL;
  size_t plan_count = 0, plan_cap = 0, bits = 0, feats = 0, columns = 0;
  for (size_t t = 0; t < f->tree_count; t++) {
    tree *tr = &f->trees[t];
    size_t widest = 0;
    for (size_t i = 0; i < tr->leaf_count; i++)
      if (f->leaves[tr->first_leaf + i].features > widest)
        widest = f->leaves[tr->first_leaf + i].features;
    tr->grouped = tr->node_count <= 64 && tr->depth <= GROUP_MAX_BITS && tr->node_count > 1 &&
                  widest <= max_table_features;
    if (!tr->grouped) continue;
    if (!grow((void **)&plans, &plan_cap, plan_count + 64, sizeof *plans)) {
      free(plans);
      return fail(err, name, "out of memory for the TreeSHAP tables");
    }
    uint8_t above[GROUP_MAX_BITS];
    size_t n = 0;
    plan_groups(f, tr, 0, above, 0, plans + plan_count, &n);
    tr->first_group = plan_count;
    tr->group_count = n;
    for (size_t i = 0; i < n; i++) {
      const group_plan *g = &plans[plan_count + i];
      if (g->bits > tr->pad_bits) tr->pad_bits = g->bits;
      if (g->width > tr->pad_width) tr->pad_width = g->width;
    }
    uint32_t cols[64];
    size_t nc = split_columns(f, tr, cols);
    tr->dense = nc <= DENSE_MAX_COLUMNS;
    if (f->all_columns) {
      tr->dense_columns = (uint16_t)f->feature_count;
      tr->dense_width = DENSE_MAX_COLUMNS;
    } else if (tr->dense) {
      tr->dense_columns = (uint16_t)nc;
      tr->dense_width = (uint16_t)((nc + 3) & ~(size_t)3);
      tr->first_column = columns;
      columns += nc;
    }
    size_t stride = tr->dense ? tr->dense_width : tr->pad_width;
    for (size_t i = 0; i < n; i++) *floats += ((size_t)1 << plans[plan_count + i].bits) * stride;
    bits += n * tr->pad_bits;
    feats += n * tr->pad_width;
    plan_count += n;
  }
  f->group_count = plan_count;
  f->groups = calloc(plan_count ? plan_count : 1, sizeof *f->groups);
  f->group_bits = calloc(bits ? bits : 1, sizeof *f->group_bits);
  f->group_slots = calloc(bits ? bits : 1, sizeof *f->group_slots);
  f->group_features = calloc(feats ? feats : 1, sizeof *f->group_features);
  f->tree_columns = calloc(columns ? columns : 1, sizeof *f->tree_columns);
  *plans_out = plans;
  if (!f->groups || !f->group_bits || !f->group_slots || !f->group_features || !f->tree_columns)
    return fail(err, name, "out of memory for the TreeSHAP tables");
  return true;
}

static bool build_tables(vd_forest *f, unsigned max_table_features, const char *name,
                         vd_error *err) {
  group_plan *plans = NULL;
  size_t total = 0;
  if (!build_groups(f, max_table_features, &plans, &total, name, err)) {
    free(plans);
    return false;
  }
  for (size_t t = 0; t < f->tree_count; t++) {
    const tree *tr = &f->trees[t];
    if (tr->grouped) continue;
    for (size_t i = 0; i < tr->leaf_count; i++) {
      leaf *l = &f->leaves[tr->first_leaf + i];
      if (l->features > max_table_features) continue;
      l->table = total;
      total += ((size_t)1 << l->features) * l->features;
    }
  }
  f->table_floats = total;
  f->tables = calloc(total ? total : 1, sizeof *f->tables);
  if (!f->tables) {
    free(plans);
    return fail(err, name, "out of memory for the TreeSHAP tables");
  }
  size_t table = 0, bit = 0, feat = 0;
  for (size_t t = 0; t < f->tree_count; t++) {
    const tree *tr = &f->trees[t];
    if (!tr->grouped) continue;
    /* any leaf's node: the row never "goes left" there, so a padding decision reads 0 */
    uint8_t leaf_node = (uint8_t)f->leaves[tr->first_leaf].node;
    uint32_t *cols = f->tree_columns + tr->first_column;
    if (tr->dense && !f->all_columns) split_columns(f, tr, cols);
    size_t stride = tr->dense ? tr->dense_width : tr->pad_width;
    for (size_t i = 0; i < tr->group_count; i++) {
      const group_plan *g = &plans[tr->first_group + i];
      group *out = &f->groups[tr->first_group + i];
      *out = (group){.table = table, .first_bit = bit, .first_feature = feat};
      for (size_t p = 0; p < tr->pad_bits; p++)
        f->group_bits[bit++] = p < g->bits ? g->node[p] : leaf_node;
      for (size_t u = 0; u < tr->pad_width; u++)
        f->group_features[feat++] = u < g->width ? g->feature[u] : (uint32_t)f->feature_count;
      uint8_t column[GROUP_MAX_BITS];
      for (size_t u = 0; u < g->width; u++) {
        column[u] = (uint8_t)u;
        if (f->all_columns) {
          column[u] = (uint8_t)g->feature[u];
        } else if (tr->dense) {
          column[u] = 0;
          while (cols[column[u]] != g->feature[u]) column[u]++; /* g's features are the tree's */
        }
      }
      fill_group_table(f, tr, g, column, stride, f->tables + table); /* the padding stays 0 */
      table += ((size_t)1 << g->bits) * stride;
    }
  }
  free(plans);
  double w[MAX_PATH_FEATURES];
  for (size_t t = 0; t < f->tree_count; t++) {
    const tree *tr = &f->trees[t];
    if (tr->grouped) continue;
    for (size_t i = 0; i < tr->leaf_count; i++) {
      const leaf *l = &f->leaves[tr->first_leaf + i];
      if (l->table == SIZE_MAX) continue;
      for (uint64_t h = 0; h < ((uint64_t)1 << l->features); h++) {
        path_shap(f->zero_fractions + l->first_feature, l->features, h, l->value, w);
        for (size_t j = 0; j < l->features; j++)
          f->tables[l->table + h * l->features + j] = (float)w[j];
      }
    }
  }
  return true;
}

/* One split of a dense tree, for sorting a block's splits by (column, threshold). */
typedef struct split_ref {
  float threshold;
  uint32_t feature;
  uint32_t node; /* index into f->nodes */
  uint8_t default_left;
} split_ref;

static int compare_splits(const void *pa, const void *pb) {
  const split_ref *a = pa, *b = pb;
  if (a->feature != b->feature) return a->feature < b->feature ? -1 : 1;
  if (a->threshold < b->threshold) return -1;
  if (b->threshold < a->threshold) return 1;
  return (a->node > b->node) - (a->node < b->node); /* a total order: the same layout every load */
}

/* Sorts one block's splits into runs per column and gives each its slot. */
static void plan_block(vd_forest *f, decision_block *bl, split_ref *batch, size_t n,
                       uint16_t *node_slot, size_t *runs, size_t *thresholds, size_t *rights,
                       size_t nan) {
  qsort(batch, n, sizeof *batch, compare_splits);
  bl->first_run = *runs;
  for (size_t i = 0; i < n; i++) {
    node_slot[batch[i].node] = (uint16_t)i;
    f->slot_default_left[nan + i] = batch[i].default_left;
    if (i == 0 || batch[i].feature != batch[i - 1].feature) {
      f->runs[(*runs)++] = (threshold_run){.feature = batch[i].feature,
                                           .first_slot = (uint32_t)i,
                                           .first_threshold = *thresholds,
                                           .first_right = *rights,
                                           .nan_left = nan + i};
      f->run_right[(*rights)++] = 0;
    }
    threshold_run *r = &f->runs[*runs - 1];
    r->slot_count++;
    if (i == r->first_slot || batch[i - 1].threshold < batch[i].threshold) {
      f->run_thresholds[(*thresholds)++] = batch[i].threshold;
      r->threshold_count++;
      (*rights)++;
    }
    f->run_right[*rights - 1] = r->slot_count;
  }
  bl->run_count = *runs - bl->first_run;
  bl->slots = (uint32_t)n;
}

/* Cuts the trees into decision blocks and points every dense group's decisions at its slots. */
static bool build_decisions(vd_forest *f, const char *name, vd_error *err) {
  size_t splits = 0;
  for (size_t t = 0; t < f->tree_count; t++)
    if (f->trees[t].dense) splits += (size_t)__builtin_popcountll(f->trees[t].split_mask);
  f->blocks = calloc(f->tree_count ? f->tree_count : 1, sizeof *f->blocks);
  f->runs = calloc(splits ? splits : 1, sizeof *f->runs);
  f->run_thresholds = calloc(splits ? splits : 1, sizeof *f->run_thresholds);
  f->run_right = calloc(2 * splits + 1, sizeof *f->run_right);
  f->slot_default_left = calloc(splits ? splits : 1, 1);
  const tree *last = &f->trees[f->tree_count - 1]; /* a forest has ≥ 1 tree */
  size_t nodes = last->first_node + last->node_count;
  uint16_t *node_slot = calloc(nodes ? nodes : 1, sizeof *node_slot);
  split_ref *batch = malloc(BLOCK_SLOTS * sizeof *batch);
  if (!f->blocks || !f->runs || !f->run_thresholds || !f->run_right || !f->slot_default_left ||
      !node_slot || !batch) {
    free(node_slot);
    free(batch);
    return fail(err, name, "out of memory for the TreeSHAP tables");
  }
  size_t t = 0, runs = 0, thresholds = 0, rights = 0, nan = 0;
  while (t < f->tree_count) {
    decision_block *bl = &f->blocks[f->block_count++];
    size_t n = 0, first_tree = t;
    for (; t < f->tree_count; t++) {
      const tree *tr = &f->trees[t];
      if (!tr->dense) continue;
      if (n + (size_t)__builtin_popcountll(tr->split_mask) > BLOCK_SLOTS) break;
      for (size_t k = 0; k < tr->node_count; k++) {
        const node *nd = &f->nodes[tr->first_node + k];
        if (nd->left >= 0)
          batch[n++] = (split_ref){.threshold = nd->value,
                                   .feature = nd->feature,
                                   .node = (uint32_t)(tr->first_node + k),
                                   .default_left = nd->default_left};
      }
    }
    bl->tree_end = t;
    plan_block(f, bl, batch, n, node_slot, &runs, &thresholds, &rights, nan);
    nan += n;
    for (size_t u = first_tree; u < t; u++) {
      const tree *tr = &f->trees[u];
      if (!tr->dense) continue;
      for (size_t i = 0; i < tr->group_count; i++) {
        const group *g = &f->groups[tr->first_group + i];
        for (size_t p = 0; p < tr->pad_bits; p++) {
          size_t k = tr->first_node + f->group_bits[g->first_bit + p];
          /* a padding decision names a leaf: it reads the block's always-0 byte */
          f->group_slots[g->first_bit + p] = f->nodes[k].left >= 0 ? node_slot[k] : (uint16_t)n;
        }
      }
    }
  }
  free(node_slot);
  free(batch);
  return true;
}

vd_forest *vd_forest_load(const char *text, size_t size, const char *name,
                          unsigned max_table_features, vd_error *err) {
  json_error_t jerr;
  json_t *root = json_loadb(text, size, 0, &jerr);
  if (!root) {
    vd_error_at(err, name, jerr.line, jerr.column, "not valid JSON: %s", jerr.text);
    return NULL;
  }
  vd_forest *f = calloc(1, sizeof *f);
  builder b = {.f = f};
  if (!f) goto oom;
  const json_t *learner = json_object_get(root, "learner");
  const char *booster_keys[] = {"gradient_booster", "name"};
  const json_t *booster = get_path(learner, booster_keys, 2);
  if (!json_is_string(booster) || strcmp(json_string_value(booster), "gbtree") != 0) {
    fail(err, name, "not an XGBoost gbtree JSON model (learner.gradient_booster.name)");
    goto fail;
  }
  const char *obj_keys[] = {"objective", "name"};
  const json_t *objective = get_path(learner, obj_keys, 2);
  if (!json_is_string(objective)) {
    fail(err, name, "learner.objective.name is missing");
    goto fail;
  }
  snprintf(f->objective, sizeof f->objective, "%s", json_string_value(objective));
  f->logistic = strcmp(f->objective, "binary:logistic") == 0;
  if (!f->logistic && strcmp(f->objective, "reg:squarederror") != 0) {
    vd_error_set(err, "%s: objective %s is not supported (binary:logistic, reg:squarederror)", name,
                 f->objective);
    goto fail;
  }
  const json_t *param = json_object_get(learner, "learner_model_param");
  const json_t *base = json_object_get(param, "base_score");
  const json_t *nfeat = json_object_get(param, "num_feature");
  const json_t *nclass = json_object_get(param, "num_class");
  if (!json_is_string(base) || !json_is_string(nfeat)) {
    fail(err, name, "learner.learner_model_param.base_score/num_feature missing");
    goto fail;
  }
  if (nclass && strcmp(json_string_value(nclass), "0") != 0) {
    fail(err, name, "multi-class models are not supported");
    goto fail;
  }
  char *end;
  float base_score = strtof(json_string_value(base), &end);
  long features = strtol(json_string_value(nfeat), NULL, 10);
  if (*end || features <= 0 || features > 1000000 ||
      (f->logistic && !(base_score > 0.0f && base_score < 1.0f))) {
    fail(err, name, "base_score or num_feature out of range");
    goto fail;
  }
  f->feature_count = (size_t)features;
  f->all_columns = f->feature_count <= DENSE_MAX_COLUMNS;
  /* XGBoost's ProbToMargin, in float. */
  f->base_margin = f->logistic ? -logf(1.0f / base_score - 1.0f) : base_score;
  const char *tree_keys[] = {"gradient_booster", "model", "trees"};
  const json_t *trees = get_path(learner, tree_keys, 3);
  const char *info_keys[] = {"gradient_booster", "model", "tree_info"};
  const json_t *info = get_path(learner, info_keys, 3);
  if (!json_is_array(trees) || json_array_size(trees) == 0 ||
      !int_array(info, json_array_size(trees))) {
    fail(err, name, "no trees (learner.gradient_booster.model.trees/tree_info)");
    goto fail;
  }
  f->tree_count = json_array_size(trees);
  f->trees = calloc(f->tree_count, sizeof *f->trees);
  if (!f->trees) goto oom;
  for (size_t i = 0; i < f->tree_count; i++) {
    if (json_integer_value(json_array_get(info, i)) != 0) {
      fail(err, name, "tree_info names a second output group");
      goto fail;
    }
    if (!load_tree(&b, json_array_get(trees, i), i, name, err)) goto fail;
  }
  if (!build_tables(f, max_table_features, name, err) || !build_decisions(f, name, err)) goto fail;
  f->walk = malloc((b.node_count ? b.node_count : 1) * sizeof *f->walk);
  if (!f->walk) goto oom;
  for (size_t t = 0; t < f->tree_count; t++)
    for (size_t k = 0; k < f->trees[t].node_count; k++) {
      const node *n = &f->nodes[f->trees[t].first_node + k];
      walk_node *w = &f->walk[f->trees[t].first_node + k];
      w->value = n->value;
      w->feature = n->feature | (n->left >= 0 && n->default_left ? 1u << DEFAULT_LEFT_BIT : 0);
      w->child[1] = n->left >= 0 ? (uint32_t)n->left : (uint32_t)k;
      w->child[0] = n->left >= 0 ? (uint32_t)n->right : (uint32_t)k;
    }
  json_decref(root);
  return f;
oom:
  vd_error_set(err, "%s: out of memory", name);
fail:
  json_decref(root);
  vd_forest_free(f);
  return NULL;
}

void vd_forest_free(vd_forest *f) {
  if (!f) return;
  free(f->trees);
  free(f->nodes);
  free(f->walk);
  free(f->leaves);
  free(f->steps);
  free(f->path_features);
  free(f->zero_fractions);
  free(f->tables);
  free(f->groups);
  free(f->group_bits);
  free(f->group_slots);
  free(f->group_features);
  free(f->tree_columns);
  free(f->blocks);
  free(f->runs);
  free(f->run_thresholds);
  free(f->run_right);
  free(f->slot_default_left);
  free(f);
}

size_t vd_forest_feature_count(const vd_forest *f) { return f->feature_count; }
size_t vd_forest_tree_count(const vd_forest *f) { return f->tree_count; }
size_t vd_forest_max_depth(const vd_forest *f) { return f->max_depth; }
const char *vd_forest_objective(const vd_forest *f) { return f->objective; }
size_t vd_forest_table_bytes(const vd_forest *f) { return f->table_floats * sizeof(float); }

vd_forest_layout vd_forest_layout_of(const vd_forest *f) {
  vd_forest_layout out = {.decision_blocks = f->block_count};
  for (size_t t = 0; t < f->tree_count; t++) {
    if (f->trees[t].dense)
      out.dense_trees++;
    else if (f->trees[t].grouped)
      out.grouped_trees++;
    else
      out.leaf_trees++;
  }
  return out;
}

/* ---------- evaluation ---------- */

static inline bool goes_left(float v, float threshold, uint8_t default_left) {
  return isnan(v) ? default_left != 0 : v < threshold;
}

/* 1 when the row goes left at n: v < threshold, or missing (NaN) with default_left. */
static inline uint32_t went_left_at(const walk_node *n, const float *row) {
  float v = row[n->feature & ~(1u << DEFAULT_LEFT_BIT)];
  return (uint32_t)(v < n->value) | ((n->feature >> DEFAULT_LEFT_BIT) & (uint32_t)(v != v));
}

float vd_forest_margin(const vd_forest *f, const float *row) {
  float sum = f->base_margin;
  size_t t = 0;
  /* Four trees walked side by side overlap their memory and compare latencies; their leaf
   * values are still added one tree at a time, in order, as XGBoost does. */
  for (; t + 4 <= f->tree_count; t += 4) {
    const tree *tr = f->trees + t;
    const walk_node *a = f->walk + tr[0].first_node, *b = f->walk + tr[1].first_node;
    const walk_node *c = f->walk + tr[2].first_node, *d = f->walk + tr[3].first_node;
    size_t depth = tr[0].depth;
    for (int k = 1; k < 4; k++)
      if (tr[k].depth > depth) depth = tr[k].depth;
    uint32_t ia = 0, ib = 0, ic = 0, id = 0;
    for (size_t k = 0; k < depth; k++) {
      ia = a[ia].child[went_left_at(&a[ia], row)];
      ib = b[ib].child[went_left_at(&b[ib], row)];
      ic = c[ic].child[went_left_at(&c[ic], row)];
      id = d[id].child[went_left_at(&d[id], row)];
    }
    sum += a[ia].value;
    sum += b[ib].value;
    sum += c[ic].value;
    sum += d[id].value;
  }
  for (; t < f->tree_count; t++) {
    const walk_node *a = f->walk + f->trees[t].first_node;
    uint32_t i = 0;
    for (size_t k = 0; k < f->trees[t].depth; k++) i = a[i].child[went_left_at(&a[i], row)];
    sum += a[i].value;
  }
  return sum;
}

float vd_forest_transform(const vd_forest *f, float margin) {
  return f->logistic ? 1.0f / (1.0f + expf(-margin)) : margin;
}

typedef float v4f __attribute__((vector_size(16)));

/* Sets decided[slot] to 1 for every split of the block that the row goes left at. */
static void decide_block(const vd_forest *f, const decision_block *bl, const float *row,
                         uint8_t *decided) {
  for (size_t i = 0; i < bl->run_count; i++) {
    const threshold_run *r = &f->runs[bl->first_run + i];
    float v = row[r->feature];
    uint8_t *out = decided + r->first_slot;
    if (isnan(v)) {
      memcpy(out, f->slot_default_left + r->nan_left, r->slot_count);
      continue;
    }
    /* how many distinct thresholds are ≤ v: their splits send v right, the rest left */
    const float *u = f->run_thresholds + r->first_threshold;
    size_t below = 0, n = r->threshold_count;
    while (n > 0) {
      size_t half = n / 2;
      if (v < u[below + half]) {
        n = half;
      } else {
        below += half + 1;
        n -= half + 1;
      }
    }
    uint32_t right = f->run_right[r->first_right + below];
    memset(out, 0, right);
    memset(out + right, 1, r->slot_count - right);
  }
  decided[bl->slots] = 0;
}

/* The table row a dense group reads: bit p of its index is the decision at slots[p]. */
static inline const float *dense_row(const vd_forest *f, const tree *tr, const group *g,
                                     const uint8_t *decided) {
  const uint16_t *slots = f->group_slots + g->first_bit;
  size_t i = 0;
  switch (tr->pad_bits) { /* GROUP_MAX_BITS = 6 */
    case 6:
      i |= (size_t)decided[slots[5]] << 5;
      __attribute__((fallthrough));
    case 5:
      i |= (size_t)decided[slots[4]] << 4;
      __attribute__((fallthrough));
    case 4:
      i |= (size_t)decided[slots[3]] << 3;
      __attribute__((fallthrough));
    case 3:
      i |= (size_t)decided[slots[2]] << 2;
      __attribute__((fallthrough));
    case 2:
      i |= (size_t)decided[slots[1]] << 1;
      __attribute__((fallthrough));
    default:
      i |= (size_t)decided[slots[0]];
  }
  return f->tables + g->table + i * tr->dense_width;
}

static inline v4f load4(const float *p) {
  v4f x;
  memcpy(&x, p, sizeof x);
  return x;
}

/* A dense tree over every column: its groups' rows added to acc in double, group by group —
 * the additions the sparse rows made, in the same order, plus exact additions of 0 for the
 * columns a subtree does not read, so the sums are the same bits. */
static void dense_tree_all_columns(const vd_forest *f, const tree *tr, const uint8_t *decided,
                                   double *acc) {
#if defined(__SSE2__) /* every x86-64: pairs of floats widened and added two at a time */
  __m128d a0 = _mm_loadu_pd(acc), a1 = _mm_loadu_pd(acc + 2), a2 = _mm_loadu_pd(acc + 4);
  __m128d a3 = _mm_loadu_pd(acc + 6), a4 = _mm_loadu_pd(acc + 8), a5 = _mm_loadu_pd(acc + 10);
  __m128d a6 = _mm_loadu_pd(acc + 12), a7 = _mm_loadu_pd(acc + 14);
  for (size_t i = 0; i < tr->group_count; i++) {
    const float *row = dense_row(f, tr, &f->groups[tr->first_group + i], decided);
    __m128 x = _mm_loadu_ps(row), y = _mm_loadu_ps(row + 4);
    a0 = _mm_add_pd(a0, _mm_cvtps_pd(x));
    a1 = _mm_add_pd(a1, _mm_cvtps_pd(_mm_movehl_ps(x, x)));
    a2 = _mm_add_pd(a2, _mm_cvtps_pd(y));
    a3 = _mm_add_pd(a3, _mm_cvtps_pd(_mm_movehl_ps(y, y)));
    x = _mm_loadu_ps(row + 8);
    y = _mm_loadu_ps(row + 12);
    a4 = _mm_add_pd(a4, _mm_cvtps_pd(x));
    a5 = _mm_add_pd(a5, _mm_cvtps_pd(_mm_movehl_ps(x, x)));
    a6 = _mm_add_pd(a6, _mm_cvtps_pd(y));
    a7 = _mm_add_pd(a7, _mm_cvtps_pd(_mm_movehl_ps(y, y)));
  }
  _mm_storeu_pd(acc, a0);
  _mm_storeu_pd(acc + 2, a1);
  _mm_storeu_pd(acc + 4, a2);
  _mm_storeu_pd(acc + 6, a3);
  _mm_storeu_pd(acc + 8, a4);
  _mm_storeu_pd(acc + 10, a5);
  _mm_storeu_pd(acc + 12, a6);
  _mm_storeu_pd(acc + 14, a7);
#else /* the same additions, one column at a time */
  for (size_t i = 0; i < tr->group_count; i++) {
    const float *row = dense_row(f, tr, &f->groups[tr->first_group + i], decided);
    for (size_t k = 0; k < DENSE_MAX_COLUMNS; k++) acc[k] += (double)row[k];
  }
#endif
}

/* A dense tree over its own columns: its groups' rows summed in float, then added to phi. */
static void dense_tree(const vd_forest *f, const tree *tr, const uint8_t *decided, double *phi) {
  const size_t nv = tr->dense_width / 4;
  v4f acc[DENSE_MAX_COLUMNS / 4] = {{0}};
  for (size_t i = 0; i < tr->group_count; i++) {
    const float *row = dense_row(f, tr, &f->groups[tr->first_group + i], decided);
    for (size_t v = 0; v < nv; v++) acc[v] += load4(row + 4 * v);
  }
  float sum[DENSE_MAX_COLUMNS];
  memcpy(sum, acc, sizeof sum);
  const uint32_t *cols = f->tree_columns + tr->first_column;
  for (size_t j = 0; j < tr->dense_columns; j++) phi[cols[j]] += (double)sum[j];
}

/* A tree that is not dense: grouped over sparse feature lists, or leaf by leaf. */
static void sparse_tree(const vd_forest *f, const tree *tr, const float *row, double *phi) {
  double w[MAX_PATH_FEATURES];
  /* Trees of at most 64 nodes: decide every split once, as bits, instead of once per leaf. */
  bool small = tr->node_count <= 64;
  uint64_t went_left = 0;
  if (small) { /* branch-free over every node; the leaves' bits are then cleared */
    const walk_node *nodes = f->walk + tr->first_node;
    for (size_t k = 0; k < tr->node_count; k++)
      went_left |= (uint64_t)went_left_at(&nodes[k], row) << k;
    went_left &= tr->split_mask;
  }
  if (tr->grouped) {
    const size_t nb = tr->pad_bits, nw = tr->pad_width;
    for (size_t i = 0; i < tr->group_count; i++) {
      const group *g = &f->groups[tr->first_group + i];
      const uint8_t *decisions = f->group_bits + g->first_bit;
      size_t row_index = 0;
      for (size_t p = 0; p < nb; p++) row_index |= (size_t)((went_left >> decisions[p]) & 1u) << p;
      const float *entry = f->tables + g->table + row_index * nw;
      const uint32_t *feats = f->group_features + g->first_feature;
      for (size_t j = 0; j < nw; j++) phi[feats[j]] += (double)entry[j];
    }
    return;
  }
  for (size_t i = 0; i < tr->leaf_count; i++) {
    const leaf *l = &f->leaves[tr->first_leaf + i];
    uint64_t h = ((uint64_t)1 << l->features) - 1; /* l->features <= 64 */
    if (l->features == 64) h = UINT64_MAX;
    const step *s = f->steps + l->first_step;
    if (small)
      for (size_t k = 0; k < l->steps; k++)
        h &= ~((uint64_t)(((went_left >> s[k].node) & 1u) != s[k].left) << s[k].slot);
    else
      for (size_t k = 0; k < l->steps; k++)
        if (goes_left(row[s[k].feature], s[k].threshold, s[k].default_left) != (s[k].left != 0))
          h &= ~((uint64_t)1 << s[k].slot);
    const uint32_t *feats = f->path_features + l->first_feature;
    if (l->table != SIZE_MAX) {
      const float *entry = f->tables + l->table + h * l->features;
      for (size_t j = 0; j < l->features; j++) phi[feats[j]] += (double)entry[j];
    } else {
      path_shap(f->zero_fractions + l->first_feature, l->features, h, l->value, w);
      for (size_t j = 0; j < l->features; j++) phi[feats[j]] += w[j];
    }
  }
}

void vd_forest_contributions(const vd_forest *f, const float *row, double *phi) {
  memset(phi, 0, (f->feature_count + 1) * sizeof *phi);
  double bias = (double)f->base_margin;
  uint8_t decided[BLOCK_SLOTS + 1];
  double acc[DENSE_MAX_COLUMNS] = {0}; /* dense trees over every column */
  size_t t = 0;
  for (size_t b = 0; b < f->block_count; b++) {
    const decision_block *bl = &f->blocks[b];
    decide_block(f, bl, row, decided);
    for (; t < bl->tree_end; t++) {
      const tree *tr = &f->trees[t];
      bias += tr->root_mean;
      if (tr->dense && f->all_columns)
        dense_tree_all_columns(f, tr, decided, acc);
      else if (tr->dense)
        dense_tree(f, tr, decided, phi);
      else
        sparse_tree(f, tr, row, phi);
    }
  }
  if (f->all_columns)
    for (size_t j = 0; j < f->feature_count; j++) phi[j] += acc[j];
  phi[f->feature_count] = bias;
}
